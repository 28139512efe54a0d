#!/bin/busybox sh
# VFIO, run by /init inside the TCG guest (q35, an emulated VT-d with intel_iommu=on; slot 5 holds
# an nvme drive (function 0, driver nvme) and an edu device (function 1, no driver) in one IOMMU
# group; slot 6 a lone edu): the real /qemu-launcher with /fake-qemu, which opens the group the way
# qemu does. Unmanaged refusal, --dry-run, a busy member refused, managed binding there and back
# byte for byte, SIGKILLed launcher (guardian, then the next start), device node ownership for
# `user:`, a group shared by two definitions, --status.
PLAN=64
. /guest-lib.sh

PCI=/sys/bus/pci/devices
J=/run/qemu-launcher/journal
NV=0000:00:05.0
EDU=0000:00:05.1
EDU2=0000:00:06.0
tap "PLAN $PLAN"
if [ ! -x "$QL" ]; then
	skipn $PLAN "no static qemu-launcher in the guest"
	exit 0
fi
for m in $(cat /lib/modules/vfio.order 2>/dev/null); do
	insmod /lib/modules/$m.ko 2>$T/insmod.err || diag "insmod $m: $(cat $T/insmod.err)"
done
# The harness always gives this guest an IOMMU (intel-iommu, intel_iommu=on) and the vfio
# modules: without a group or vfio-pci the setup broke, which must not read as a skip.
if [ ! -e $PCI/$EDU/iommu_group ] || [ ! -d /sys/bus/pci/drivers/vfio-pci ]; then
	diag "$(ls -l $PCI/ 2>&1 | tr '\n' ' ')"
	failn $PLAN "no IOMMU group or no vfio-pci driver in the guest: $(cat $T/insmod.err 2>/dev/null)"
	exit 0
fi
export QEMU_LAUNCHER_CONFIG_DIR=/etc/ql
mkdir -p /etc/ql

grp() { g=$(readlink $PCI/$1/iommu_group) && echo "${g##*/}"; }
drv() {
	d=$(readlink $PCI/$1/driver 2>/dev/null)
	echo "${d##*/}"
}
ovr() { cat $PCI/$1/driver_override; }
state() { for a in $NV $EDU $EDU2; do echo "$a $(drv $a) $(ovr $a)"; done; }
same_state() { state >$T/now && cmp -s $T/before $T/now; }
no_fake() { [ -z "$(pidof fake-qemu)" ]; }
show_diff() { state | while read -r l; do diag "now: $l"; done; }
# vdef NAME ADDR [LAUNCHER-LINES]: a pinned VM (so the launcher logs "guest started") with one
# vfio-pci device.
vdef() {
	cat >/etc/ql/$1.yml <<EOT
launcher:
  binary: $FQ
  vcpu_pinning: [0]
  isolate_cpus: false
  shutdown_timeout: 5
${3:-}
qemu:
- smp: 1
- name: guest=$1,debug-threads=on
- device: [vfio-pci, host: "$2"]
EOT
}
MANAGED="  vfio:
    managed: true"

G=$(grp $EDU)
G2=$(grp $EDU2)
diag "groups: nvme $NV: $(grp $NV), edu $EDU: $G, edu $EDU2: $G2; vfio modules: $(cat /lib/modules/vfio.order | tr '\n' ' ')"
state >$T/before
diag "before: $(tr '\n' ';' <$T/before)"
check "nvme and edu (functions of slot 5) share an IOMMU group, the lone edu has its own" \
	test "$(grp $NV)" = "$G" -a "$G2" != "$G"
eq "nvme is on its driver, both edu devices unbound, no driver_override" \
	"$NV nvme (null);$EDU  (null);$EDU2  (null);" "$(tr '\n' ';' <$T/before)"

# --- 1. unmanaged: refused, nothing changed -----------------------------------------------------
vdef plain $EDU
"$QL" plain >$T/plain.out 2>$T/plain.err </dev/null
eq "unmanaged, group not viable: exit 125" 125 $?
check "... naming nvme on its driver and the unbound edu qemu takes" \
	grep -q "IOMMU group $G is not viable: $NV (bound to nvme), $EDU (unbound; qemu takes it)" $T/plain.err || dump_err plain
check "... saying how managed: true would do it" grep -q "vfio: {managed: true}" $T/plain.err
unchanged_not_run() { same_state && ! grep -q fake-qemu $T/plain.err; }
check "... nothing changed, fake-qemu never ran" unchanged_not_run

# --- 2. --dry-run lists every write --------------------------------------------------------------
vdef m $EDU "$MANAGED"
"$QL" --dry-run m >$T/dry.out 2>$T/dry.err
eq "managed --dry-run: exit 0" 0 $?
check "--dry-run lists nvme's driver_override, unbind and probe" \
	sh -c "grep -q '^# vfio: would write $PCI/$NV/driver_override: (null) -> vfio-pci\$' $T/dry.out &&
	grep -q '^# vfio: would write /sys/bus/pci/drivers/nvme/unbind: $NV\$' $T/dry.out &&
	grep -q '^# vfio: would write /sys/bus/pci/drivers_probe: $NV (given back to nvme at the end)\$' $T/dry.out" ||
	sed 's/^/# /' $T/dry.out | while read -r l; do tap "$l"; done
check "--dry-run lists the edu's driver_override and probe (left unbound at the end)" \
	grep -q "^# vfio: would write /sys/bus/pci/drivers_probe: $EDU (left unbound at the end)\$" $T/dry.out
check "--dry-run changed nothing" same_state

# --- 3. a member the host uses is not taken ------------------------------------------------------
if [ ! -e /proc/swaps ]; then
	skipn 4 "the guest kernel has no swap support (no /proc/swaps)"
elif mkswap /dev/nvme0n1 >$T/swapset.err 2>&1 && swapon /dev/nvme0n1 2>>$T/swapset.err; then
	"$QL" m >$T/swap.out 2>$T/swap.err </dev/null
	eq "managed, nvme0n1 in use as swap: exit 125" 125 $?
	check "... naming the swap" grep -q "$NV (nvme) is in use by the host and is not moved to vfio-pci: nvme0n1 is in use as swap" $T/swap.err || dump_err swap
	check "... nothing changed, no journal record" sh -c "[ -z \"\$(ls $J 2>/dev/null)\" ]"
	check "... drivers as before" same_state
	swapoff /dev/nvme0n1
else
	failn 4 "mkswap/swapon of /dev/nvme0n1: $(tail -n1 $T/swapset.err)"
fi

# --- 4. managed: bound for the VM's lifetime, given back byte for byte ---------------------------
ql m
MP=$LP
check "managed VM m started" started m || dump_err m
eq "nvme and edu are on vfio-pci while it runs" "vfio-pci vfio-pci" "$(drv $NV) $(drv $EDU)"
eq "... with driver_override vfio-pci" "vfio-pci vfio-pci" "$(ovr $NV) $(ovr $EDU)"
check "fake-qemu opened /dev/vfio/$G, put it in a container and took the device fd" \
	grep -q "fake-qemu: vfio $EDU: /dev/vfio/$G open, device fd" $T/m.err || dump_err m
check "-d traced the writes" grep -q "write $PCI/$NV/driver_override: vfio-pci" $T/m.err
check "two bind records in the journal" test "$(ls $J | wc -l)" -eq 2
"$QL" --status m >$T/status.out 2>&1
check "--status shows the group's devices and drivers" \
	sh -c "grep -q '^  $EDU *$G *vfio-pci *assigned' $T/status.out && grep -q '^  $NV *$G *vfio-pci *group member' $T/status.out" ||
	sed 's/^/# /' $T/status.out | while read -r l; do tap "$l"; done

# a second definition with a device of the same group
vdef m3 $NV "$MANAGED"
"$QL" --check m3 >$T/m3check.out 2>$T/m3check.err
check "--check reports the group shared with definition m" \
	grep -q "warning: .*vfio-pci $NV: its IOMMU group $G is also used by definition \`m\`" $T/m3check.err || dump_err m3check
"$QL" m3 >$T/m3.out 2>$T/m3.err </dev/null
eq "starting it while m runs: exit 125" 125 $?
check "... the group is m's" grep -q "IOMMU group $G is in use by VM m" $T/m3.err || dump_err m3

stop $MP
eq "m stopped by SIGTERM: exit 0" 0 $?
check "every driver and driver_override is back, byte for byte" same_state || show_diff
check "the journal is empty" sh -c "[ -z \"\$(ls $J)\" ]"
traced_back() {
	grep -q "write /sys/bus/pci/drivers/vfio-pci/unbind: $NV" $T/m.err &&
		grep -qF "write $PCI/$NV/driver_override: \x0a" $T/m.err &&
		grep -q "write /sys/bus/pci/drivers/nvme/bind: $NV" $T/m.err
}
check "-d traced the way back: unbind from vfio-pci, driver_override cleared, bind to nvme" \
	traced_back || dump_err m

# --- 4b. qemu fails at start: everything given back ---------------------------------------------
sed "s|binary: $FQ|binary: /bin/false|" /etc/ql/m.yml >/etc/ql/mfail.yml
"$QL" -d mfail >$T/mfail.out 2>$T/mfail.err </dev/null
eq "managed, qemu exits 1 at start: the launcher exits with qemu's status" 1 $?
moved_and_back() { grep -q "write $PCI/$NV/driver_override: vfio-pci" $T/mfail.err && same_state; }
check "... the devices were moved, and every driver and driver_override is back" \
	moved_and_back || dump_err mfail

# --- 5. a driver_override of the user's own, byte for byte -------------------------------------
echo none >$PCI/$EDU2/driver_override
state >$T/before
vdef m2 $EDU2 "$MANAGED"
ql m2
check "managed VM m2 (the lone edu, driver_override \`none\`) started" started m2 || dump_err m2
eq "the edu is on vfio-pci" vfio-pci "$(drv $EDU2)"
stop $LP
eq "m2 stopped: exit 0" 0 $?
eq "its driver_override is \`none\` again and it is unbound again" "none " "$(ovr $EDU2) $(drv $EDU2)"

# --- 6. launcher SIGKILLed: its guardian gives the drivers back ----------------------------------
ql m
check "m started again" started m || dump_err m
kill -KILL $LP
wait $LP 2>/dev/null
wait_for 15 no_fake
wait_for 15 same_state
check "launcher SIGKILLed: the guardian gave every driver back" same_state || show_diff

# --- 6b. launcher SIGKILLed after the binding, before qemu: the guardian forked before it ----------
stopped() { grep -q "^State:.*stopped" /proc/$1/status 2>/dev/null; }
QEMU_LAUNCHER_TEST_STOP_AT=vfio-bound "$QL" -d m >$T/early.out 2>$T/early.err </dev/null &
LP=$!
wait_for 15 stopped $LP
eq "launcher stopped after moving the group (QEMU_LAUNCHER_TEST_STOP_AT=vfio-bound), no qemu yet" \
	"vfio-pci vfio-pci stopped none" \
	"$(drv $NV) $(drv $EDU) $(stopped $LP && echo stopped) $(no_fake && echo none)"
kill -KILL $LP
wait $LP 2>/dev/null
wait_for 15 same_state
check "SIGKILLed before qemu existed: the guardian gave every driver back" same_state || { show_diff; dump_err early; }

# --- 6c. two managed launchers starting at once with one group: the second waits for the
# first's moves and is refused (both could pass the check before either had moved a device, and
# one then took the group from under the other's VM) -----------------------------------------------
QEMU_LAUNCHER_TEST_STOP_AT=vfio-checked "$QL" -d m >$T/race.out 2>$T/race.err </dev/null &
AP=$!
wait_for 15 stopped $AP
check "m stopped after its check, before moving a device (QEMU_LAUNCHER_TEST_STOP_AT=vfio-checked)" \
	sh -c "grep -q '^State:.*stopped' /proc/$AP/status" || dump_err race
"$QL" m3 >$T/m3race.out 2>$T/m3race.err </dev/null &
BP=$!
# it holds the VFIO start-up lock's file open while it waits for m's flock on it
b_at_lock() { ls -l /proc/$BP/fd 2>/dev/null | grep -q '/\.vfio\.lock$'; }
wait_for 15 b_at_lock
b_waits() { b_at_lock && kill -0 $BP && [ "$(drv $NV) $(drv $EDU)" = "nvme " ]; }
check "m3, same group, meanwhile: it waits for m's moves, and has moved nothing" b_waits ||
	show_diff
kill -CONT $AP
wait $BP
eq "m3: exit 125 once m has moved the group" 125 $?
check "... the group is m's" grep -q "IOMMU group $G is in use by VM m" $T/m3race.err || dump_err m3race
started_race() { grep -q "guest started" $T/race.err; }
wait_for 15 started_race
check "m started" started_race || dump_err race
stop $AP
eq "m stopped: exit 0" 0 $?
check "every driver and driver_override is back" same_state || show_diff

# --- 7. launcher and guardian SIGKILLed: the next start gives them back, and takes them again --
ql m
check "m started a third time" started m
GP=$(guardian_of "$LP")
check "its guardian runs" test -n "$GP"
kill -KILL $GP $LP
wait $LP 2>/dev/null
wait_for 15 no_fake
eq "with no guardian left nvme stays on vfio-pci" vfio-pci "$(drv $NV)"
ql m
check "the next start of m gives back its dead launcher's records" \
	grep -q "gave back m's change to $PCI/$NV" $T/m.err || dump_err m
check "... then, planning from the host as it is now, moves the group to vfio-pci again and starts" \
	test "$(drv $NV) $(drv $EDU)" = "vfio-pci vfio-pci" -a -n "$(grep 'guest started' $T/m.err)"
stop $LP
check "after its exit every driver and driver_override is the original" same_state || show_diff

# --- 8. the device node for `user:` ------------------------------------------------------------
# the lone edu on vfio-pci by hand: the group is viable and /dev/vfio/$G2 exists, root's, 0600
chmod 755 / # the initramfs root comes from a 0700 temporary directory: uid 65534 must reach /fake-qemu
echo vfio-pci >$PCI/$EDU2/driver_override
echo $EDU2 >/sys/bus/pci/drivers_probe
node_before=$(stat -c '%u:%g:%a' /dev/vfio/$G2 2>&1)
vdef u $EDU2 "  user: 65534
  group: 65534"
"$QL" --dry-run u >$T/udry.out 2>&1
check "--dry-run lists the device node's chown" \
	grep -q "^# vfio: would chown/chmod /dev/vfio/$G2: 0:0:0600 -> 65534:65534:0600\$" $T/udry.out ||
	sed 's/^/# /' $T/udry.out | while read -r l; do tap "$l"; done
ql u
check "unmanaged VM u (user 65534) started" started u || dump_err u
eq "/dev/vfio/$G2 belongs to 65534:65534 while it runs (was $node_before)" "65534:65534:600" \
	"$(stat -c '%u:%g:%a' /dev/vfio/$G2)"
check "fake-qemu, as uid 65534, opened the group" grep -q "fake-qemu: vfio $EDU2: /dev/vfio/$G2 open, device fd [0-9]* (uid 65534)" $T/u.err || dump_err u
stop $LP
eq "u stopped: exit 0" 0 $?
eq "/dev/vfio/$G2 has its owner and mode back" "$node_before" "$(stat -c '%u:%g:%a' /dev/vfio/$G2)"
echo $EDU2 >/sys/bus/pci/drivers/vfio-pci/unbind
echo none >$PCI/$EDU2/driver_override

# managed and `user:`: the node the binding makes is given to the user, then released with it
vdef mu $EDU2 "$MANAGED
  user: 65534
  group: 65534"
ql mu
check "managed VM mu (user 65534) started" started mu || dump_err mu
eq "the edu is on vfio-pci and /dev/vfio/$G2 is 65534's" "vfio-pci 65534:65534:600" \
	"$(drv $EDU2) $(stat -c '%u:%g:%a' /dev/vfio/$G2 2>&1)"
check "fake-qemu, as uid 65534, opened the group" grep -q "fake-qemu: vfio $EDU2: /dev/vfio/$G2 open, device fd [0-9]* (uid 65534)" $T/mu.err || dump_err mu
"$QL" --status --json mu >$T/mu.json 2>&1
check "--status --json lists the device, its group and driver" \
	sh -c "tr -d ' \n' <$T/mu.json | grep -q '\"vfio\":\[{\"address\":\"$EDU2\",\"iommu_group\":\"$G2\",\"driver\":\"vfio-pci\",\"assigned\":true}\]'" ||
	sed 's/^/# /' $T/mu.json | while read -r l; do tap "$l"; done
stop $LP
eq "mu stopped: exit 0" 0 $?
eq "the edu is unbound with driver_override none again, its node gone with the group" "none  absent" \
	"$(ovr $EDU2) $(drv $EDU2) $(test -e /dev/vfio/$G2 && echo present || echo absent)"
check "the journal is empty at the end" sh -c "[ -z \"\$(ls $J)\" ]"
