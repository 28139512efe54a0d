#!/bin/bash
# housekeeping on a whole host: a small TCG guest (6 CPUs, its own IRQs, workqueues and sysctls;
# never this machine's) runs tests/guest/hk-test.sh with the static launcher and a qemu stand-in:
# before/after values of every IRQ, both workqueue cpumasks and vm.stat_interval, two overlapping
# VMs, and a SIGKILLed launcher's guardian; an NVMe disk gives it managed queue IRQs the kernel
# refuses to move. TCG only (never KVM).
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${QL_BUILD_DIR:-$SRC/build}
. "$SRC/tests/guest/harness.sh"

guest_setup hk
guest_pack
# a small blank disk: the guest kernel's built-in nvme driver gives one managed IRQ per queue
truncate -s 4M "$W/nvme.img"
GUEST_QEMU_ARGS="-drive if=none,id=n0,file=$W/nvme.img,format=raw -device nvme,drive=n0,serial=qlhk"
guest_boot hk-test.sh 6 "${HKGUEST_TIMEOUT:-150}"
guest_report
