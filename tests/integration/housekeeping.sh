#!/bin/bash
# housekeeping with the built launcher and real qemu (TCG), against a fake /proc and /sys tree
# (QEMU_LAUNCHER_SYSFS_ROOT: this machine's own IRQs, workqueues and sysctls are never written;
# the whole-host test is housekeeping-guest): --dry-run lists every write, a run makes them before
# the guest starts and gives every value back byte for byte on SIGTERM and, through the guardian,
# when the launcher is SIGKILLed.
. "$(dirname "$0")/lib.sh"
NTESTS=21
plan $NTESTS

[ "$(id -u)" = 0 ] || skip_all "needs root (the journal of host values)"
ONLINE=$(cat /sys/devices/system/cpu/online)
LAST=$(awk -F'[-,]' '{print $NF}' /sys/devices/system/cpu/online)
[ "$LAST" -ge 1 ] || skip_all "needs 2 CPUs (one for the vCPU, one kept for the host)"
ROOT=$SCRATCH/root
export QEMU_LAUNCHER_SYSFS_ROOT=$ROOT QEMU_LAUNCHER_JOURNAL_DIR=$SCRATCH/journal
put() { mkdir -p "$(dirname "$ROOT/$1")" && printf '%s\n' "$2" >"$ROOT/$1"; }
put sys/devices/system/cpu/online "$ONLINE"
put proc/irq/default_smp_affinity "$(printf '%x' $(((1 << (LAST + 1)) - 1)))"
put proc/irq/1/smp_affinity_list "$ONLINE"
put proc/irq/9/smp_affinity_list "$LAST"
put proc/irq/14/smp_affinity_list 0
put sys/devices/virtual/workqueue/cpumask "$(cat "$ROOT/proc/irq/default_smp_affinity")"
put sys/bus/workqueue/devices/writeback/cpumask "$(cat "$ROOT/proc/irq/default_smp_affinity")"
put proc/sys/vm/stat_interval 1
snap() { (cd "$ROOT" && find . -type f | sort | xargs grep -H '') ; }
snap >"$SCRATCH/before"
KEEP=$(printf '%x' $(((1 << LAST) - 1))) # every CPU but the last
HOST=0-$((LAST - 1))
[ "$LAST" = 1 ] && HOST=0

{
	printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  isolate_cpus: false\n' "$QEMU"
	printf '  vcpu_pinning: [ %s ]\n  housekeeping: true\nqemu:\n' "$LAST"
	guest_opts idle
	printf -- '- name: [ hk, debug-threads: on ]\n'
} | def hk

"$QL" --dry-run hk >"$SCRATCH/dry.out" 2>"$SCRATCH/dry.err"
if grep -qx "# housekeeping: $ROOT/proc/irq/9/smp_affinity_list: $LAST -> $HOST" "$SCRATCH/dry.out" &&
	grep -qx "# housekeeping: $ROOT/proc/sys/vm/stat_interval: 1 -> 10" "$SCRATCH/dry.out" &&
	! grep -q "irq/14" "$SCRATCH/dry.out"; then
	ok "--dry-run lists every write as PATH: OLD -> NEW (none for an IRQ already clear)"
else
	not_ok "--dry-run lists the writes"
	diag "$(cat "$SCRATCH/dry.out" "$SCRATCH/dry.err")"
fi
snap >"$SCRATCH/after-dry"
check "--dry-run writes nothing" cmp -s "$SCRATCH/before" "$SCRATCH/after-dry"

started() { grep -q "guest started" "$LERR"; }
ql_start hk -d
wait_until 30 started
check "the guest starts with housekeeping on" started || diag "$(cat "$LERR")"
expect_eq "IRQ 9 (only on the vCPU CPU) moved to the host's CPUs; IRQ 1 lost the vCPU CPU" \
	"$HOST $HOST" \
	"$(cat "$ROOT/proc/irq/9/smp_affinity_list") $(cat "$ROOT/proc/irq/1/smp_affinity_list")"
expect_eq "default_smp_affinity, workqueue and writeback cpumasks, stat_interval" "$KEEP $KEEP $KEEP 10" \
	"$(for f in proc/irq/default_smp_affinity sys/devices/virtual/workqueue/cpumask \
		sys/bus/workqueue/devices/writeback/cpumask proc/sys/vm/stat_interval; do
		cat "$ROOT/$f"
		echo
	done | xargs)"
check "-d traces each write" grep -q "debug: write $ROOT/proc/sys/vm/stat_interval: 10" "$LERR"
kill -TERM "$(launcher_of "$LPID")"
wait "$LPID"
snap >"$SCRATCH/after-term"
check "SIGTERM: every value back, byte for byte" cmp -s "$SCRATCH/before" "$SCRATCH/after-term" ||
	diag "$(diff "$SCRATCH/before" "$SCRATCH/after-term")"

ql_start hk -v
wait_until 30 started
check "started again, housekeeping applied" sh -c "grep -q 'guest started' '$LERR' && grep -qx 10 '$ROOT/proc/sys/vm/stat_interval'"
L=$(launcher_of "$LPID")
G=$(guardian_of "$L")
check "the launcher has its guardian" test -n "$G"
kill -KILL "$L"
si_back() { [ "$(cat "$ROOT/proc/sys/vm/stat_interval")" = 1 ]; }
# its undo gives the newest record back first (stat_interval): only its end says all are back
wait_until 20 pid_gone "${G:-0}"
snap >"$SCRATCH/after-kill"
check "SIGKILLed launcher: its guardian gives every value back, byte for byte" \
	cmp -s "$SCRATCH/before" "$SCRATCH/after-kill" || diag "$(diff "$SCRATCH/before" "$SCRATCH/after-kill")"
expect_eq "the journal holds no record afterwards" "" "$(ls "$SCRATCH/journal")"

# A killed launcher's values stay while its guardian has not given them back: another VM's start
# does not take them from under its qemu (which may still use them). The guardian is stopped
# first, as while it waits for a slow qemu teardown, so the other start surely comes first. The
# launcher runs in this shell's process group, without timeout(1): that group is not orphaned by
# the launcher's death, which would continue the stopped guardian.
{
	printf 'launcher:\n  binary: %s\nqemu:\n' "$QEMU"
	guest_opts exit
} | def other
LERR=$SCRATCH/hk.err
"$QL" -v hk >/dev/null 2>"$LERR" </dev/null &
L=$!
register_pid "$L"
wait_until 30 started
Q=$(child_of "$L")
G=$(guardian_of "$L")
register_pid "$G"
kill -STOP "$G"
kill -KILL "$L"
{ wait "$L"; } 2>/dev/null
timeout 30 "$QL" -v other >/dev/null 2>"$SCRATCH/other.err"
held() { grep -q '^State:.*T' "/proc/$G/status"; }
check "the killed launcher's guardian is still held when the other start ends" held
if grep -q "gave back hk's change" "$SCRATCH/other.err" || ! grep -qx 10 "$ROOT/proc/sys/vm/stat_interval"; then
	not_ok "another start meanwhile leaves the killed launcher's values alone"
	diag "$(cat "$SCRATCH/other.err")" "journal: $(ls -A "$SCRATCH/journal" | xargs)"
else
	ok "another start meanwhile leaves the killed launcher's values alone"
fi
kill -CONT "$G"
check "the guardian, continued, gives them back" wait_until 20 si_back
check "... qemu has ended" wait_until 10 pid_gone "$Q"
wait_until 20 pid_gone "$G" # the newest record comes back first: the rest by the guardian's end
snap >"$SCRATCH/after-kill2"
check "... every value, byte for byte" \
	cmp -s "$SCRATCH/before" "$SCRATCH/after-kill2" || diag "$(diff "$SCRATCH/before" "$SCRATCH/after-kill2")"
expect_eq "the journal holds nothing afterwards, no keeper either" "" "$(ls -A "$SCRATCH/journal" | grep -v '\.lock$')"

# The explicit RT values: a fair server file the kernel lacks is an error in --check (125, naming
# it), never a silent skip; with the files there, --dry-run lists both writes.
{
	printf 'launcher:\n  binary: %s\n  isolate_cpus: false\n' "$QEMU"
	printf '  vcpu_pinning: [ %s ]\n  housekeeping:\n    rt_runtime_us: -1\n' "$LAST"
	printf '    fair_server_runtime_ns: 0\nqemu:\n'
	guest_opts idle
} | def hkrt
put proc/sys/kernel/sched_rt_runtime_us 950000
put proc/sys/kernel/sched_rt_period_us 1000000
"$QL" --check hkrt >"$SCRATCH/rt.out" 2>"$SCRATCH/rt.err"
expect_eq "--check: a vCPU CPU without a fair server file exits 125" 125 "$?"
check "... naming the file" grep -q \
	"housekeeping.fair_server_runtime_ns: \`$ROOT/sys/kernel/debug/sched/fair_server/cpu$LAST/period\` does not exist" \
	"$SCRATCH/rt.err" || diag "$(cat "$SCRATCH/rt.err")"
put "sys/kernel/debug/sched/fair_server/cpu$LAST/runtime" 50000000
put "sys/kernel/debug/sched/fair_server/cpu$LAST/period" 1000000000
"$QL" --dry-run hkrt >"$SCRATCH/rt.out" 2>"$SCRATCH/rt.err"
check "with the files there, --dry-run lists sched_rt_runtime_us and the vCPU CPU's fair server" \
	sh -c "grep -qx '# housekeeping: $ROOT/proc/sys/kernel/sched_rt_runtime_us: 950000 -> -1' '$SCRATCH/rt.out' &&
		grep -qx '# housekeeping: $ROOT/sys/kernel/debug/sched/fair_server/cpu$LAST/runtime: 50000000 -> 0' '$SCRATCH/rt.out'" ||
	diag "$(cat "$SCRATCH/rt.out" "$SCRATCH/rt.err")"

# --status by another user than root: the journal (0700) cannot be read, and the section says
# so rather than reporting nothing held.
if command -v setpriv >/dev/null; then
	setpriv --reuid=65534 --regid=65534 --clear-groups "$QL" --status >"$SCRATCH/st.out" 2>&1
	check "--status as uid 65534: housekeeping not checked, the journal named" \
		grep -q "^Housekeeping: not checked (open journal directory \`$SCRATCH/journal\`: Permission denied" \
		"$SCRATCH/st.out" || diag "$(cat "$SCRATCH/st.out")"
else
	skip "setpriv (util-linux) is not installed"
fi
