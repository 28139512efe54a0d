#!/bin/bash
# VFIO on a real kernel: a small TCG guest (q35 with an emulated VT-d, intel_iommu=on, Debian's
# vfio modules; never this machine's devices) runs tests/guest/vfio-test.sh with the static
# launcher and a qemu stand-in that opens the group as qemu does: managed binding there and back,
# a busy member refused, a SIGKILLed launcher, device node ownership, a shared group. TCG only.
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${QL_BUILD_DIR:-$SRC/build}
. "$SRC/tests/guest/harness.sh"

guest_setup vfio
mkdir -p "$GUEST_ROOT/lib/modules"
if guest_vfio_cached; then
	while read -r m; do
		cp "$GUEST_MODULES/$m.ko" "$GUEST_ROOT/lib/modules/"
	done <"$GUEST_MODULES/vfio.order"
	cp "$GUEST_MODULES/vfio.order" "$GUEST_ROOT/lib/modules/"
else
	# the kernel came, so its vfio modules should have: a broken setup, not a missing facility
	fail_all "the guest kernel's vfio modules are not in $GUEST_MODULES (guest_vfio_modules)"
fi
guest_pack
truncate -s 16M "$W/nvme.img"
# slot 5: an nvme drive and an edu device as functions 0 and 1 (one IOMMU group, no ACS between
# functions); slot 6: a lone edu. intel-iommu first: it must exist before what it translates for.
GUEST_QEMU_ARGS="-device intel-iommu -drive if=none,id=nv,file=$W/nvme.img,format=raw
-device nvme,serial=ql,drive=nv,addr=05.0,multifunction=on -device edu,addr=05.1
-device edu,addr=06.0" GUEST_APPEND="intel_iommu=on" \
	guest_boot vfio-test.sh 2 "${VFIOGUEST_TIMEOUT:-240}"
rm -f "$W/nvme.img"
guest_report
