#!/bin/bash
# cpuset v1 backend on a real ROOT hierarchy: the host has 2 CPUs and its tests may only use a
# delegated subtree, so a small TCG guest (Debian's cloud kernel + busybox initramfs) runs
# tests/guest/v1-test.sh (6 vCPUs) with the static launcher and fake-qemu. There the launcher
# mounts the cpuset hierarchy itself, moves every task of the root cpuset into the pool (kernel
# threads refuse), pins two disjoint VMs, refuses a third and returns everything. A second boot
# runs tests/guest/long-name.sh (12 vCPUs: a 64-byte VM name and two-digit host CPUs). The guest
# prints "V1TAP:" lines on its serial console; tests/guest/harness.sh numbers them as TAP. TCG
# only (never KVM).
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${QL_BUILD_DIR:-$SRC/build}
. "$SRC/tests/guest/harness.sh"

guest_setup v1
guest_pack
guest_boot v1-test.sh 6 "${V1GUEST_TIMEOUT:-120}"
guest_boot long-name.sh 12 "${V1GUEST_TIMEOUT:-120}"
guest_report
