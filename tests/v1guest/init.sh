#!/bin/busybox sh
# /init of the cpuset v1 test guest: no cgroup is mounted (cgroup2 would bind the cpuset
# controller), only an empty tmpfs at /sys/fs/cgroup for the launcher to mount cpuset below.
# Results as "V1TAP: " lines on the serial console, then power off (panic=-1 + -no-reboot end
# qemu on a crash).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
if mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup; then
	echo "V1GUEST: kernel $(uname -r) cpus=$(nproc)"
	# Bounded, so a hung step still ends in the sentinel and a poweroff.
	timeout 60 sh /guest-test.sh
else
	echo "V1TAP: not ok - mounting a tmpfs at /sys/fs/cgroup in the guest"
fi
echo "V1GUEST-DONE"
poweroff -f
