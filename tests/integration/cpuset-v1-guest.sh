#!/bin/bash
# cpuset v1 backend on a real ROOT hierarchy with 6 CPUs: the host has 2 CPUs and its tests may
# only use a delegated subtree, so a small TCG guest (Debian's cloud kernel + busybox initramfs)
# runs tests/v1guest/guest-test.sh with the static launcher and fake-qemu. There the launcher
# mounts the cpuset hierarchy itself, moves every task of the root cpuset into the pool (kernel
# threads refuse), pins two disjoint VMs, refuses a third and returns everything. The guest prints
# "V1TAP:" lines on its serial console; this script numbers them as TAP. TCG only (never KVM).
# Shared build and boot steps: tests/v2guest/harness.sh.
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${QL_BUILD_DIR:-$SRC/build}
W=$BUILD/v1guest
GUEST_TIMEOUT=${V1GUEST_TIMEOUT:-120}
. "$SRC/tests/v2guest/harness.sh"

guest_prereqs
guest_kernel
guest_static

guest_new_root
cp "$SRC/tests/v1guest/init.sh" "$GUEST_ROOT/init"
cp "$SRC/tests/v1guest/guest-test.sh" "$GUEST_ROOT/guest-test.sh"
cp "$W/fake-qemu" "$GUEST_ROOT/"
[ "$LAUNCHER_OK" = 1 ] && cp "$STATIC/qemu-launcher" "$GUEST_ROOT/"
chmod 755 "$GUEST_ROOT"/init "$GUEST_ROOT"/fake-qemu
guest_pack

guest_boot "$GUEST_TIMEOUT"
guest_report V1TAP V1GUEST-DONE
