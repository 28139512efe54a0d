#!/bin/bash
# cgroup v2 backend, tested where cgroup v2 cpuset really exists: a small TCG guest (Debian's cloud
# kernel + busybox initramfs, 6 vCPUs) runs tests/v2guest/guest-test.sh against a pure cgroup2
# tree with static builds of the launcher, a backend driver and a qemu stand-in. The guest prints
# "V2TAP:" lines on its serial console; this script numbers them as TAP. TCG only (never KVM).
# Needs: qemu-system-x86 busybox-static cpio, a C toolchain, static libfyaml/json-c, and the
# cloud kernel package (fetched once with apt-get download; cached as $BUILD/v2guest/vmlinuz).
# The shared steps are in tests/v2guest/harness.sh.
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${QL_BUILD_DIR:-$SRC/build}
W=$BUILD/v2guest
GUEST_TIMEOUT=${V2GUEST_TIMEOUT:-150}
. "$SRC/tests/v2guest/harness.sh"

guest_prereqs
guest_kernel
guest_static
cc -O1 -static -pthread -std=gnu11 -D_GNU_SOURCE -I"$SRC/src" -o "$W/v2drive" \
	"$SRC/tests/v2guest/v2drive.c" "$STATIC/libql.a" $STATIC_LIBS >>"$LOG" 2>&1 ||
	fail_all "v2drive builds"

guest_new_root
cp "$SRC/tests/v2guest/init.sh" "$GUEST_ROOT/init"
cp "$SRC/tests/v2guest/guest-test.sh" "$GUEST_ROOT/guest-test.sh"
cp "$W/fake-qemu" "$W/v2drive" "$GUEST_ROOT/"
[ "$LAUNCHER_OK" = 1 ] && cp "$STATIC/qemu-launcher" "$GUEST_ROOT/"
chmod 755 "$GUEST_ROOT"/init "$GUEST_ROOT"/fake-qemu "$GUEST_ROOT"/v2drive
guest_pack

guest_boot "$GUEST_TIMEOUT"
guest_report V2TAP V2GUEST-DONE
