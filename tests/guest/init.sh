#!/bin/busybox sh
# /init of the TCG test guests. The kernel command line names the backend and the test script
# (ql.backend=v1|v2|hk|hkbench|topo ql.test=FILE, see tests/guest/harness.sh): v2 gets a pure cgroup2 hierarchy
# owned by the test; v1 gets only an empty tmpfs at /sys/fs/cgroup for the launcher to mount
# cpuset below (a mounted cgroup2 would bind the cpuset controller). Results are "<TAG>TAP: "
# lines on the serial console, then power off (panic=-1 + -no-reboot end qemu on a crash).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
for a in $(cat /proc/cmdline); do
	case $a in
	ql.backend=*) BACKEND=${a#*=} ;;
	ql.test=*) TEST=${a#*=} ;;
	ql.timeout=*) TEST_TIMEOUT=${a#*=} ;;
	esac
done
TAG=$(echo "$BACKEND" | tr a-z A-Z)
export BACKEND TAP_PREFIX=${TAG}TAP
case $BACKEND in
v2 | hk | hkbench) mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup ;;
v1) mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup ;;
topo | mem | vfio) true ;; # the host topology, NUMA hugepage pools, PCI devices: no cgroups
*) false ;;
esac
if [ $? = 0 ]; then
	echo "${TAG}GUEST: kernel $(uname -r) cpus=$(nproc) test=$TEST"
	# Bounded, so a hung step still ends in the sentinel and a poweroff.
	timeout "${TEST_TIMEOUT:-60}" sh "/$TEST"
else
	echo "$TAP_PREFIX: not ok - preparing /sys/fs/cgroup for backend '$BACKEND' in the guest"
fi
echo "${TAG}GUEST-DONE"
poweroff -f
