#!/bin/busybox sh
# /init of the cgroup-v2 test guest: a pure cgroup2 hierarchy owned by the test, results as
# "V2TAP: " lines on the serial console, then power off (panic=-1 + -no-reboot end qemu on a crash).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
if mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup; then
	echo "V2GUEST: kernel $(uname -r) cpus=$(nproc)"
	# Bounded, so a hung step still ends in the sentinel and a poweroff.
	timeout 100 sh /guest-test.sh
else
	echo "V2TAP: not ok - mounting cgroup2 in the guest"
fi
echo "V2GUEST-DONE"
poweroff -f
