#!/bin/bash
# The host topology as a real kernel reports it for a guest with SMT siblings, two sockets (two
# L3 groups) and two NUMA nodes: a TCG guest (-smp sockets=2,cores=2,threads=2, -numa) runs
# tests/guest/topology.sh with the static launcher (--topology, --suggest, --check) and coredrive
# (PR_SCHED_CORE where the kernel has it). TCG only (never KVM); the shared guest harness.
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${QL_BUILD_DIR:-$SRC/build}
. "$SRC/tests/guest/harness.sh"

guest_setup topo
guest_tool coredrive
guest_pack
# vendor=GenuineIntel: -cpu max is AMD-flavoured without topoext, and Linux then sees no SMT
# siblings at all; with Intel's CPUID leaf 0xB it sees the thread pairs -smp asks for.
GUEST_CPU=max,vendor=GenuineIntel
GUEST_QEMU_ARGS="-object memory-backend-ram,id=m0,size=256M -object memory-backend-ram,id=m1,size=256M
	-numa node,nodeid=0,cpus=0-3,memdev=m0 -numa node,nodeid=1,cpus=4-7,memdev=m1"
guest_boot topology.sh 8,sockets=2,cores=2,threads=2 "${TOPOGUEST_TIMEOUT:-180}"
guest_report
