#!/bin/bash
# VFIO passthrough checked before anything starts (--check, --dry-run and a run): a vfio-pci
# device that does not exist, one without an IOMMU group on this host, and (in a fake sysfs tree
# through QEMU_LAUNCHER_SYSFS_ROOT) a viable group and one whose audio function keeps its host
# driver. Reads sysfs only; this machine's devices are never touched.
. "$(dirname "$0")/lib.sh"
NTESTS=24
plan $NTESTS

# The marker stand-in for qemu: leaves a file if anything ever executes it.
printf '#!/bin/sh\ntouch %s/ran\n' "$SCRATCH" >"$SCRATCH/marker-qemu"
chmod 755 "$SCRATCH/marker-qemu"
vdef() { printf 'launcher:\n  binary: %s\nqemu:\n- nodefaults\n- device: [ vfio-pci, host: "%s" ]\n' "$SCRATCH/marker-qemu" "$2" | def "$1"; }

vdef gone 0000:7e:1f.7
"$QL" --check gone >/dev/null 2>"$SCRATCH/gone.err"
expect_eq "a device that does not exist: --check exit 125" 125 "$?"
check "... positioned, naming it" grep -q "gone.yml:5:3: vfio-pci 0000:7e:1f.7: no such PCI device on this host" "$SCRATCH/gone.err"

# a real device of this host without an IOMMU group (the IOMMU is off here)
DEV=""
for d in /sys/bus/pci/devices/*; do
	[ -e "$d/iommu_group" ] || { DEV=$(basename "$d"); break; }
done
if [ -n "$DEV" ]; then
	vdef noiommu "$DEV"
	"$QL" noiommu >/dev/null 2>"$SCRATCH/noiommu.err" </dev/null
	expect_eq "a device without an IOMMU group: a run exits 125" 125 "$?"
	check "... says the IOMMU is off and how to turn it on" grep -q "vfio-pci $DEV: the IOMMU is off .*intel_iommu=on" "$SCRATCH/noiommu.err"
else
	skip "every PCI device of this host has an IOMMU group"
	skip "every PCI device of this host has an IOMMU group"
fi

# a fake sysfs: group 7 = a GPU on vfio-pci and its audio function on snd_hda_intel
F=$SCRATCH/sysfs
fake_dev() { # fake_dev ADDR GROUP DRIVER CLASS
	mkdir -p "$F/sys/bus/pci/devices/$1" "$F/sys/kernel/iommu_groups/$2/devices/$1"
	echo "$4" >"$F/sys/bus/pci/devices/$1/class"
	ln -s "../../../../kernel/iommu_groups/$2" "$F/sys/bus/pci/devices/$1/iommu_group"
	ln -s "../../../bus/pci/drivers/$3" "$F/sys/bus/pci/devices/$1/driver"
}
fake_dev 0000:0a:00.0 7 vfio-pci 0x030000
fake_dev 0000:0a:00.1 7 snd_hda_intel 0x040300
fake_dev 0000:0b:00.0 8 vfio-pci 0x030000
vdef badgroup 0000:0a:00.0
QEMU_LAUNCHER_SYSFS_ROOT=$F "$QL" --check badgroup >/dev/null 2>"$SCRATCH/bad.err"
expect_eq "a group with a member on its host driver: --check exit 125" 125 "$?"
check "... names the member, its driver and the fix" grep -q "IOMMU group 7 is not viable: 0000:0a:00.1 (bound to snd_hda_intel); .*driver_override" "$SCRATCH/bad.err"
QEMU_LAUNCHER_SYSFS_ROOT=$F "$QL" --dry-run badgroup >/dev/null 2>"$SCRATCH/baddry.err"
expect_eq "... --dry-run still shows the plan (exit 0)" 0 "$?"
check "... with a warning that a run would stop there" grep -q "warning: .*IOMMU group 7 is not viable.*(a run would stop here)" "$SCRATCH/baddry.err"
vdef good 0000:0b:00.0
QEMU_LAUNCHER_SYSFS_ROOT=$F "$QL" --check good >"$SCRATCH/good.out" 2>&1
expect_eq "a viable group: --check exit 0" 0 "$?"
check "... OK" grep -q "good.yml: OK" "$SCRATCH/good.out"
check "nothing was ever executed" test ! -e "$SCRATCH/ran"

# --- vfio: {managed: true} on the fake tree (plans and refusals only: nothing is run) -----------
mkdir -p "$F/sys/bus/pci/drivers/vfio-pci"
for a in 0000:0a:00.0 0000:0a:00.1 0000:0b:00.0; do echo "(null)" >"$F/sys/bus/pci/devices/$a/driver_override"; done
mdef() { printf 'launcher:\n  binary: %s\n  vfio:\n    managed: %s\nqemu:\n- nodefaults\n- device: '"'"'{"driver": "vfio-pci", "host": "%s"}'"'"'\n' "$SCRATCH/marker-qemu" "$2" "$3" | def "$1"; }
mdef managed true 0000:0a:00.0
QEMU_LAUNCHER_SYSFS_ROOT=$F "$QL" --dry-run managed >"$SCRATCH/managed.out" 2>"$SCRATCH/managed.err"
expect_eq "managed, JSON -device form: --dry-run exit 0" 0 "$?"
check "... lists the audio function's driver_override, unbind and probe" \
	grep -qF "# vfio: would write $F/sys/bus/pci/devices/0000:0a:00.1/driver_override: (null) -> vfio-pci" "$SCRATCH/managed.out"
check "... and its driver given back at the end" \
	grep -qF "# vfio: would write $F/sys/bus/pci/drivers_probe: 0000:0a:00.1 (given back to snd_hda_intel at the end)" "$SCRATCH/managed.out"
# two definitions with devices of group 7
mdef other true 0000:0a:00.1
QEMU_LAUNCHER_SYSFS_ROOT=$F "$QL" --check other >/dev/null 2>"$SCRATCH/shared.err"
check "--check warns about another definition sharing the IOMMU group" \
	grep -q "warning: .*other.yml:7:3: vfio-pci 0000:0a:00.1: its IOMMU group 7 is also used by definition \`managed\`" "$SCRATCH/shared.err"
# a run on the fake tree: the writes land in plain files, no kernel moves the device, so the
# read-back fails; the launcher gives everything back and never starts qemu
mkdir -p "$F/sys/bus/pci/drivers/snd_hda_intel"
: >"$F/sys/bus/pci/drivers/snd_hda_intel/unbind"
: >"$F/sys/bus/pci/drivers_probe"
QEMU_LAUNCHER_SYSFS_ROOT=$F QEMU_LAUNCHER_JOURNAL_DIR=$SCRATCH/journal "$QL" -d managed >/dev/null 2>"$SCRATCH/run.err" </dev/null
expect_eq "managed run where the device does not land on vfio-pci: exit 125" 125 "$?"
check "... says so" grep -q "vfio: 0000:0a:00.1 did not land on vfio-pci (it is on snd_hda_intel)" "$SCRATCH/run.err"
check "... after writing driver_override, unbind and probe (traced with -d)" \
	grep -q "debug: write $F/sys/bus/pci/drivers_probe: 0000:0a:00.1" "$SCRATCH/run.err"
check "... gave driver_override back and left no journal record" \
	sh -c "grep -q 'debug: write $F/sys/bus/pci/devices/0000:0a:00.1/driver_override: \\\\x0a' '$SCRATCH/run.err' && [ -z \"\$(ls '$SCRATCH/journal')\" ]"
echo "(null)" >"$F/sys/bus/pci/devices/0000:0a:00.1/driver_override"
# the audio function's disk (say) is mounted: refused
mkdir -p "$F/sys/bus/pci/devices/0000:0a:00.1/host0/block/sdz" "$F/sys/class/block" "$F/proc/self"
echo 8:240 >"$F/sys/bus/pci/devices/0000:0a:00.1/host0/block/sdz/dev"
ln -s ../../bus/pci/devices/0000:0a:00.1/host0/block/sdz "$F/sys/class/block/sdz"
echo "40 1 8:240 / /mnt/z rw - ext4 /dev/sdz rw" >"$F/proc/self/mountinfo"
QEMU_LAUNCHER_SYSFS_ROOT=$F "$QL" --check managed >/dev/null 2>"$SCRATCH/busy.err"
expect_eq "managed, a member's disk is mounted: --check exit 125" 125 "$?"
check "... naming the mount" grep -q "0000:0a:00.1 (snd_hda_intel) is in use by the host and is not moved to vfio-pci: sdz is mounted on /mnt/z" "$SCRATCH/busy.err"
printf 'launcher:\n  binary: /bin/true\n  vfio:\n    managed: maybe\nqemu:\n- nodefaults\n' | def badkey
"$QL" --check badkey >/dev/null 2>"$SCRATCH/badkey.err"
expect_eq "vfio.managed must be a boolean: exit 125" 125 "$?"
check "... positioned" grep -q "badkey.yml:4:14: " "$SCRATCH/badkey.err"
check "nothing was ever executed (managed tests)" test ! -e "$SCRATCH/ran"
