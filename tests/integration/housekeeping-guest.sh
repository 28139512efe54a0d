#!/bin/bash
# housekeeping on a whole host: a small TCG guest (6 CPUs, its own IRQs, workqueues and sysctls;
# never this machine's) runs tests/guest/hk-test.sh with the static launcher and a qemu stand-in:
# before/after values of every IRQ, both workqueue cpumasks and vm.stat_interval, two overlapping
# VMs, and a SIGKILLed launcher's guardian. TCG only (never KVM).
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${QL_BUILD_DIR:-$SRC/build}
. "$SRC/tests/guest/harness.sh"

guest_setup hk
guest_pack
guest_boot hk-test.sh 6 "${HKGUEST_TIMEOUT:-150}"
guest_report
