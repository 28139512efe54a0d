#!/bin/bash
# cgroup v2 backend, tested where cgroup v2 cpuset really exists: a small TCG guest (Debian's cloud
# kernel + busybox initramfs) runs tests/guest/v2-test.sh (6 vCPUs) against a pure cgroup2 tree
# with static builds of the launcher, a backend driver (v2drive) and a qemu stand-in, then
# tests/guest/long-name.sh (12 vCPUs: a 64-byte VM name and two-digit host CPUs). The guest
# prints "V2TAP:" lines on its serial console; tests/guest/harness.sh numbers them as TAP. TCG
# only (never KVM). Needs: qemu-system-x86 busybox-static cpio, a C toolchain, static
# libfyaml/json-c, and the cloud kernel package (fetched once with apt-get download; cached as
# $BUILD/guest/vmlinuz).
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${QL_BUILD_DIR:-$SRC/build}
. "$SRC/tests/guest/harness.sh"

guest_setup v2
guest_tool v2drive
guest_pack
guest_boot v2-test.sh 6 "${V2GUEST_TIMEOUT:-150}"
guest_boot long-name.sh 12 "${V2GUEST_TIMEOUT:-150}"
guest_report
