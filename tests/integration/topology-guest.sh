#!/bin/bash
# The host topology as a real kernel reports it for a guest with SMT siblings, two sockets (two
# L3 groups) and two NUMA nodes: a TCG guest (-smp sockets=2,cores=2,threads=2, -numa) runs
# tests/topoguest/init.sh with the static launcher (--topology, --suggest, --check) and
# coredrive (PR_SCHED_CORE on a kernel that has SMT). TCG only (never KVM). Shares the boot
# recipe's pieces with the cgroup v2 guest (tests/v2guest/harness.sh).
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${QL_BUILD_DIR:-$SRC/build}
W=$BUILD/topoguest
. "$SRC/tests/v2guest/harness.sh"
GUEST_CACHE=$BUILD/v2guest # the kernel and static build of the other guest tests
mkdir -p "$GUEST_CACHE"

guest_prereqs
guest_kernel
guest_static
cc -O1 -static -pthread -std=gnu11 -D_GNU_SOURCE -I"$SRC/src" -o "$W/coredrive" \
	"$SRC/tests/topoguest/coredrive.c" "$STATIC/libql.a" >>"$LOG" 2>&1 ||
	fail_all "coredrive builds"

guest_new_root
cp "$SRC/tests/topoguest/init.sh" "$GUEST_ROOT/init"
cp "$W/coredrive" "$GUEST_ROOT/"
[ "$LAUNCHER_OK" = 1 ] && cp "$STATIC/qemu-launcher" "$GUEST_ROOT/"
chmod 755 "$GUEST_ROOT"/init "$GUEST_ROOT"/coredrive
guest_pack

# vendor=GenuineIntel: -cpu max is AMD-flavoured without topoext, and Linux then sees no SMT
# siblings at all; with Intel's CPUID leaf 0xB it sees the thread pairs -smp asks for.
t0=$SECONDS
timeout -s KILL "${TOPOGUEST_TIMEOUT:-180}" qemu-system-x86_64 -accel tcg,thread=multi \
	-cpu max,vendor=GenuineIntel \
	-smp 8,sockets=2,cores=2,threads=2 -m 512 -M q35 \
	-object memory-backend-ram,id=m0,size=256M -object memory-backend-ram,id=m1,size=256M \
	-numa node,nodeid=0,cpus=0-3,memdev=m0 -numa node,nodeid=1,cpus=4-7,memdev=m1 \
	-nodefaults -no-user-config -display none -serial stdio -kernel "$KERNEL" \
	-initrd "$W/initrd.cpio.gz" -no-reboot -append 'console=ttyS0 quiet panic=-1' \
	</dev/null >"$W/serial.log" 2>&1
GUEST_QRC=$?
GUEST_BOOT=$((SECONDS - t0))
guest_report TOPOTAP TOPOGUEST-DONE
