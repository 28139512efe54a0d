#!/bin/busybox sh
# housekeeping, run by /init inside the TCG guest (6 CPUs, the guest's own IRQs, workqueues and
# sysctls): the real /qemu-launcher with /fake-qemu moves every movable IRQ, the default IRQ
# affinity, both workqueue cpumasks and vm.stat_interval off the vCPU CPUs before the guest runs,
# two overlapping VMs keep the union clear, and every exit (SIGTERM, SIGKILL of the launcher:
# its guardian) gives every value back byte for byte. The guest has an NVMe disk: its queue IRQs
# are managed (the kernel places them, EIO on a write), so they must be named, not fatal, and
# left exactly as found.
PLAN=62
. /guest-lib.sh

IRQ=/proc/irq
WQ=/sys/devices/virtual/workqueue/cpumask
WB=/sys/bus/workqueue/devices/writeback/cpumask
SI=/proc/sys/vm/stat_interval
# snap: every value housekeeping may touch, one "path: value" line each.
snap() {
	for f in $IRQ/default_smp_affinity $IRQ/*/smp_affinity_list $WQ $WB $SI; do
		echo "$f: $(cat "$f" 2>/dev/null)"
	done
}
# clear_of CPUS LOGS: every IRQ avoids the CPUs ("4 5"), or one of LOGS names it as refused.
clear_of() {
	bad=""
	for irqd in $IRQ/[0-9]*; do
		n=${irqd##*/}
		cpus=$(cat $irqd/smp_affinity_list)
		if list_has "$cpus" "$1" && ! cat $2 | grep -Eq "IRQ $n( \([^)]*\))? refuses to move"; then
			bad="$bad $n:$cpus"
		fi
	done
	[ -z "$bad" ] || diag "IRQs still on CPUs $1:$bad"
	[ -z "$bad" ]
}
# list_has LIST CPUS: does the CPU list LIST contain any CPU of CPUS ("4 5")?
list_has() {
	for c in $(echo "$1" | tr ',' ' '); do
		lo=${c%-*}
		hi=${c#*-}
		for w in $2; do
			[ "$w" -ge "$lo" ] && [ "$w" -le "$hi" ] && return 0
		done
	done
	return 1
}
# kt_snap: "PID START CPUS" of every kernel thread that may move (PF_KTHREAD, not
# PF_NO_SETAFFINITY); kt_moved CPUS LOG: each is off CPUS or named in LOG as staying;
# kt_same BEFORE: every thread of BEFORE still alive (same pid and start) has its CPUs back.
kt_snap() {
	for st in /proc/[0-9]*/stat; do
		l=$(cat "$st" 2>/dev/null) || continue
		set -- ${l##*) }
		f=$7
		start=${20}
		pid=${st#/proc/}
		pid=${pid%/stat}
		echo "$f" | awk '{exit !(and($1, 2097152) && !and($1, 67108864))}' &&
			echo "$pid $start $(aff "$pid")"
	done
}
kt_moved() {
	kt_snap | while read -r pid start cpus; do
		comm=$(cat /proc/$pid/comm 2>/dev/null)
		# excused only by the launcher's word about this very thread
		if list_has "$cpus" "$1" && ! grep -qF "kernel thread $comm stays on CPUs" "$2"; then
			diag "kernel thread $pid ($comm) on $cpus"
			echo bad
		fi
	done | grep -q bad && return 1
	return 0
}
kt_same() {
	while read -r pid start cpus; do
		l=$(cat /proc/$pid/stat 2>/dev/null) || continue
		set -- ${l##*) }
		[ "${20}" = "$start" ] || continue
		now=$(aff "$pid")
		[ "$now" = "$cpus" ] || echo "$pid $cpus -> $now"
	done <"$1" >$T/kt-diff
	[ -s $T/kt-diff ] && diag "kernel threads not restored: $(tr '\n' ' ' <$T/kt-diff)"
	[ ! -s $T/kt-diff ]
}
# nvme_snap: "N NAME SMP_AFFINITY SMP_AFFINITY_LIST" of every NVMe IRQ (/proc/interrupts names).
nvme_snap() {
	sed -n 's/^ *\([0-9]*\):.* \(nvme[0-9]*q[0-9]*\)$/\1 \2/p' /proc/interrupts |
		while read -r n name; do
			echo "$n $name $(cat $IRQ/$n/smp_affinity) $(cat $IRQ/$n/smp_affinity_list)"
		done
}
# nvme_refused CPUS LOG: the NVMe queue IRQs (not the admin queue q0) that were on CPUS before:
# each must be named in LOG as refusing to move ("IRQ N (nvme0qK) refuses") and still hold its
# values byte for byte; prints their count, or "bad".
nvme_refused() {
	k=0
	while read -r n name mask list; do
		case $name in *q0) continue ;; esac
		list_has "$list" "$1" || continue
		k=$((k + 1))
		grep -q "IRQ $n ($name) refuses to move" "$2" || { diag "IRQ $n ($name) not named"; echo bad; }
		now="$(cat $IRQ/$n/smp_affinity) $(cat $IRQ/$n/smp_affinity_list)"
		[ "$now" = "$mask $list" ] || { diag "IRQ $n ($name): $mask $list -> $now"; echo bad; }
	done <$T/nvme-before
	echo $k
}
# journal_clean_of_refused: no journal record names an IRQ that refused (nothing to give back).
journal_clean_of_refused() {
	grep -h "refuses to move" $T/hk.err | sed -n "s/.*housekeeping: IRQ \([0-9][0-9]*\) .*/\1/p" >$T/refused
	[ -s $T/refused ] || return 1
	while read -r n; do
		grep -l "^$IRQ/$n/smp_affinity_list\$" /run/qemu-launcher/journal/* 2>/dev/null
	done <$T/refused >$T/refused-rec
	[ ! -s $T/refused-rec ] || diag "records: $(cat $T/refused-rec)"
	[ ! -s $T/refused-rec ]
}
# json_has FILE PATTERN: the JSON document, without blanks and newlines, matches PATTERN.
json_has() { tr -d ' \n' <"$1" | grep -q "$2"; }
no_fake() { [ -z "$(pidof fake-qemu)" ]; }

tap "PLAN $PLAN"
if [ ! -x "$QL" ]; then
	skipn $PLAN "no static qemu-launcher in the guest"
	exit 0
fi
export QEMU_LAUNCHER_CONFIG_DIR=/etc/ql
def hk 4,5 2 "  housekeeping: true"
def hk2 3 1 "  housekeeping:
    irqs: true
    workqueues: true"
snap >$T/before
nvme_snap >$T/nvme-before
diag "NVMe IRQs: $(tr '\n' ' ' <$T/nvme-before)"
check "the guest has NVMe queue IRQs (a managed IRQ per queue)" \
	test "$(grep -vc 'q0 ' $T/nvme-before)" -ge 2
kt_snap >$T/kt-before
diag "$(wc -l <$T/kt-before) movable kernel threads"
diag "before: $(tr '\n' ' ' <$T/before)"

# --- 1. --dry-run lists every write, changes nothing ----------------------------------------
"$QL" --dry-run hk >$T/dry.out 2>$T/dry.err
eq "--dry-run exits 0" 0 $?
check "--dry-run lists the default IRQ affinity write" \
	grep -q "^# housekeeping: $IRQ/default_smp_affinity: 3f -> f\$" $T/dry.out || dump_err dry
check "--dry-run lists the workqueue and writeback cpumask writes" \
	sh -c "grep -q '^# housekeeping: $WQ: 3f -> f\$' $T/dry.out && grep -q '^# housekeeping: $WB: 3f -> f\$' $T/dry.out"
check "--dry-run lists vm.stat_interval 1 -> 10" grep -q "^# housekeeping: $SI: 1 -> 10\$" $T/dry.out
check "--dry-run lists kthreadd's move" grep -q "^# housekeeping: kernel thread kthreadd: task:2:[0-9]*: 0-5 -> 0-3\$" $T/dry.out
check "--dry-run names the NVMe queue IRQs it would try to move" \
	grep -q "^# housekeeping: IRQ [0-9]* (nvme0q[56]): $IRQ/[0-9]*/smp_affinity_list: [45] -> 0-3\$" $T/dry.out
snap >$T/after-dry
dry_unchanged() { cmp -s $T/before $T/after-dry && kt_same $T/kt-before; }
check "--dry-run changed nothing (the kernel threads' CPUs too)" dry_unchanged

# --- 2. one VM on CPUs 4-5 ------------------------------------------------------------------
ql hk
HP=$LP
check "VM hk (vCPUs on 4,5, housekeeping: true) started" started hk || dump_err hk
eq "default_smp_affinity lost CPUs 4-5" "0f" "$(cat $IRQ/default_smp_affinity)"
eq "unbound workqueue cpumask lost CPUs 4-5" "0f" "$(cat $WQ)"
eq "writeback cpumask lost CPUs 4-5" "0f" "$(cat $WB)"
eq "vm.stat_interval raised to 10" "10" "$(cat $SI)"
check "every IRQ is off CPUs 4-5 or named as refused" clear_of "4 5" $T/hk.err
check "-d traced the writes" grep -q "write $SI: 10" $T/hk.err
check "kthreadd and every unbound kernel thread are off CPUs 4-5" kt_moved "4 5" $T/hk.err
check "the per-CPU kernel threads that stay are counted in a warning" \
	grep -q "warning: housekeeping: [0-9]* per-CPU kernel threads .* stay on the vCPU CPUs" $T/hk.err
# the timer and cascade IRQs are not movable (EIO): a warning, and the VM runs
check "IRQs the kernel refuses to move are named in a warning, not fatal" grep -q "warning: housekeeping: IRQ [0-9]* refuses to move" $T/hk.err
diag "$(grep 'refuses to move' $T/hk.err | tr '\n' ' ')"
nvme_refused "4 5" $T/hk.err >$T/nvme-refused
eq "the NVMe queue IRQs on CPUs 4-5 are named as refusing and left byte for byte as found" \
	"" "$(grep bad $T/nvme-refused)"
check "... and there is at least one (a real managed IRQ was tried)" \
	test "$(tail -n1 $T/nvme-refused)" -ge 1
check "the journal holds no record for an IRQ that refused" journal_clean_of_refused
a0=$(awk '$2 ~ /q0$/ {print $1}' $T/nvme-before | head -n1)
check "the NVMe admin queue IRQ (not managed) moved off CPUs 4-5" \
	sh -c "[ -n '$a0' ] && ! echo \"\$(cat $IRQ/$a0/smp_affinity_list)\" | grep -q '[45]'"

# --- 2b. --status: what the launcher holds, and drift behind its back -------------------------
"$QL" --status hk >$T/st0.out 2>&1
eq "--status hk is consistent while nothing drifted" 0 $? || sed 's/^/# /' $T/st0.out | while read -r l; do tap "$l"; done
check "--status names the values VM hk holds and its launcher" \
	grep -q "^  VM hk: [0-9]* value(s), launcher pid $HP\$" $T/st0.out
check "--status says irqbalance is not running" grep -q "^  irqbalance: not running\$" $T/st0.out
was=$(cat $IRQ/$a0/smp_affinity_list)
echo 0-5 >$IRQ/$a0/smp_affinity_list
"$QL" --status hk >$T/st1.out 2>&1
eq "an IRQ moved back onto the vCPU CPUs behind the launcher's back: --status exits 1" 1 $?
check "... and names it, its handler and the CPUs that came back" \
	grep -q "^  ! IRQ $a0 (nvme0q0): $IRQ/$a0/smp_affinity_list is 0-5: CPUs 4-5, kept clear for VM hk, are back" $T/st1.out ||
	sed 's/^/# /' $T/st1.out | while read -r l; do tap "$l"; done
"$QL" --status --json hk >$T/st1.json 2>&1
check "--status --json carries the drift (irq, handler, wrote, now, the CPUs back)" \
	json_has $T/st1.json "\"irq\":$a0,\"irq_name\":\"nvme0q0\",\"wrote\":\"$was\",\"now\":\"0-5\",\"cpus_back\":\[4,5\]"
echo "$was" >$IRQ/$a0/smp_affinity_list
kt_was=$(aff 2)
taskset -p 3f 2 >/dev/null
"$QL" --status hk >$T/stk.out 2>&1
eq "kthreadd given CPUs 4-5 back behind the launcher's back: --status exits 1" 1 $?
check "... and names the kernel thread and the CPUs" \
	grep -q "^  ! kernel thread kthreadd: task:2:[0-9]* is 0-5: CPUs 4-5, kept clear for VM hk, are back" $T/stk.out ||
	sed 's/^/# /' $T/stk.out | while read -r l; do tap "$l"; done
taskset -pc "$kt_was" 2 >/dev/null
"$QL" --status hk >$T/stk2.out 2>&1
eq "kthreadd put back where the launcher had it: --status is consistent again (exit 0)" 0 $? ||
	sed 's/^/# /' $T/stk2.out | while read -r l; do tap "$l"; done
printf '#!/bin/sh\nwhile :; do sleep 1; done\n' >$T/irqbalance
chmod +x $T/irqbalance
$T/irqbalance &
IB=$!
wait_for 5 sh -c "[ \"\$(cat /proc/$IB/comm)\" = irqbalance ]"
"$QL" --status --json hk >$T/st2.json 2>&1
eq "irqbalance running while VM hk holds IRQs: --status --json exits 1" 1 $?
ib_named() { json_has $T/st2.json "\"irqbalance_pid\":$IB,\"consistent\":false" && json_has $T/st2.json '"drift":\[\]'; }
check "... names its pid, and the IRQ put back is no longer drift" ib_named
kill $IB
wait $IB 2>/dev/null
"$QL" --status hk >$T/st3.out 2>&1
eq "with irqbalance gone and the IRQ back where the launcher put it: consistent again" 0 $?

# --- 3. a second VM on CPU 3: the union stays clear --------------------------------------------
ql hk2
H2=$LP
check "VM hk2 (vCPU on 3) started" started hk2 || dump_err hk2
eq "default_smp_affinity: union of both VMs' CPUs clear" "07" "$(cat $IRQ/default_smp_affinity)"
eq "workqueue cpumask: union clear" "07" "$(cat $WQ)"
check "every IRQ is off CPUs 3-5 or refused" clear_of "3 4 5" "$T/hk.err $T/hk2.err"
stop $HP
eq "hk stopped by SIGTERM (exit 0)" 0 $?
# stat_interval was hk's alone (hk2 leaves it): its original comes back with hk
eq "hk's exit leaves hk2's isolation (the shared values) in place, gives back its own" "07 07 1" \
	"$(cat $IRQ/default_smp_affinity) $(cat $WQ) $(cat $SI)"
stop $H2
snap >$T/after-two
check "the last VM out gives every value back byte for byte" cmp -s $T/before $T/after-two ||
	diff $T/before $T/after-two | while read -r l; do diag "$l"; done
check "every kernel thread has its CPUs back" kt_same $T/kt-before || { dump_err hk; ls -la /run/qemu-launcher/journal | while read -r l; do diag "$l"; done; }

# --- 4. SIGKILL of the launcher: its guardian gives everything back -----------------------------
ql hk
check "VM hk started again" started hk || dump_err hk
eq "housekeeping applied again" "0f 10" "$(cat $WQ) $(cat $SI)"
G=$(guardian_of "$LP")
kill -KILL $LP
wait $LP 2>/dev/null
wait_for 15 no_fake
# the guardian's undo gives the newest record back first: a value back is no sign the older
# ones are; the guardian's end is
wait_for 10 ended "$G"
snap >$T/after-kill
check "launcher SIGKILLed: its guardian restores every value byte for byte" \
	sh -c "[ -n '$G' ] && cmp -s $T/before $T/after-kill" ||
	diff $T/before $T/after-kill | while read -r l; do diag "$l"; done
check "... and every kernel thread's CPUs" kt_same $T/kt-before

# --- 5. launcher and guardian both SIGKILLed: the next start gives the values back -------------
ql hk
check "VM hk started a third time" started hk
G=$(guardian_of "$LP")
check "its guardian runs (a second qemu-launcher process)" test -n "$G"
kill -KILL $G $LP
wait $LP 2>/dev/null
wait_for 15 no_fake
eq "with no guardian left the values stay changed" "0f 10" "$(cat $WQ) $(cat $SI)"
ql hk2
check "the next start (hk2) recovers hk's records" grep -q "gave back hk's change to $SI" $T/hk2.err ||
	dump_err hk2
eq "... and applies its own housekeeping (CPU 3 only)" "37 1" "$(cat $WQ) $(cat $SI)"
stop $LP
snap >$T/after-recover
check "after the next VM's exit every value is the original, byte for byte" cmp -s $T/before $T/after-recover ||
	diff $T/before $T/after-recover | while read -r l; do diag "$l"; done

# --- 6. explicit RT throttling: sched_rt_runtime_us while the VM runs; a fair server the kernel
# lacks is an error in --check ------------------------------------------------------------------
RT=/proc/sys/kernel/sched_rt_runtime_us
rt0=$(cat $RT)
def hkrt 5 1 "  housekeeping:
    rt_runtime_us: 980000"
def hkfs 5 1 "  housekeeping:
    fair_server_runtime_ns: 0"
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
"$QL" --check hkfs >$T/fs.out 2>$T/fs.err
eq "--check with fair_server_runtime_ns on a kernel without a fair server exits 125" 125 $?
check "... naming the missing file and why" grep -q \
	"housekeeping.fair_server_runtime_ns: \`/sys/kernel/debug/sched/fair_server/cpu5/period\` does not exist: this kernel does not have it" $T/fs.err ||
	dump_err fs
"$QL" --dry-run hkrt >$T/rtdry.out 2>&1
check "--dry-run lists the sched_rt_runtime_us write" grep -q "^# housekeeping: $RT: $rt0 -> 980000\$" $T/rtdry.out
ql hkrt
check "VM hkrt started" started hkrt || dump_err hkrt
eq "kernel.sched_rt_runtime_us is 980000 while it runs" 980000 "$(cat $RT)"
echo "$rt0" >$RT
"$QL" --status hkrt >$T/strt.out 2>&1
eq "sched_rt_runtime_us changed behind the launcher's back: --status exits 1" 1 $?
check "... and says what it is and what was written" \
	grep -q "^  ! $RT is $rt0, but qemu-launcher wrote 980000 for VM hkrt (changed since)\$" $T/strt.out ||
	sed 's/^/# /' $T/strt.out | while read -r l; do tap "$l"; done
echo 980000 >$RT
kill -KILL $LP
wait $LP 2>/dev/null
wait_for 15 no_fake
rt_back() { [ "$(cat $RT)" = "$rt0" ]; }
wait_for 10 rt_back
eq "launcher SIGKILLed: its guardian gives sched_rt_runtime_us back" "$rt0" "$(cat $RT)"

# --- 7. real-time throttling off: the warning says so, not that the throttling protects ---------
echo -1 >$RT
def hkoff "5, 5" 2 "  scheduler: fifo
  priority: 1"
"$QL" --check hkoff >$T/off.out 2>$T/off.err
check "sched_rt_runtime_us = -1: fifo vCPUs sharing a CPU are told that throttling is off" \
	grep -q "real-time throttling is off (kernel.sched_rt_runtime_us = -1)" $T/off.err || dump_err off
eq "... and --check changed nothing (sched_rt_runtime_us still -1)" -1 "$(cat $RT)"
echo "$rt0" >$RT
