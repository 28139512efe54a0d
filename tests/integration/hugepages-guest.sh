#!/bin/bash
# Hugepages per NUMA node on a whole (guest) host: a TCG guest with two NUMA nodes (CPUs 0-1 and
# 2-3, 256 MiB each) runs tests/guest/mem-test.sh with the static launcher and fake-qemu, which
# maps, mbinds and preallocates its memory-backend-file like qemu: per-node reservations,
# pages from the bound node, --status, exact per-node give-back (SIGTERM, a SIGKILLed launcher,
# a refusal), a short node named, and per-node preallocation contexts. The guest's pools only,
# never this machine's. TCG only (never KVM).
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${QL_BUILD_DIR:-$SRC/build}
. "$SRC/tests/guest/harness.sh"

guest_setup mem
guest_pack
GUEST_QEMU_ARGS="-object memory-backend-ram,id=m0,size=256M -object memory-backend-ram,id=m1,size=256M
	-numa node,nodeid=0,cpus=0-1,memdev=m0 -numa node,nodeid=1,cpus=2-3,memdev=m1"
guest_boot mem-test.sh 4 "${MEMGUEST_TIMEOUT:-180}"
guest_report
