#!/bin/bash
# vCPU pinning with the cpuset v1 backend, against the real kernel: the launcher is pointed at a
# delegated test cpuset (QEMU_LAUNCHER_CPUSET_MOUNT_PATH=/sys/fs/cgroup/cpuset/<testdir>) so it
# only ever moves tasks this script put there. vCPUs go to the last host CPU, the pool keeps
# the others.
. "$(dirname "$0")/lib.sh"
NTESTS=80
plan $NTESTS

require_cpuset_v1 # vCPUs go to CPU $PIN; CPU 0 .. PIN-1 stay in the pool
ONLINE=$(cat /sys/devices/system/cpu/online)

TD=qltest-pin-$$
nested_delegated_cpuset "$TD" # the lock on M's parent is this test's own
TD=$TD/m                      # the cpuset paths expected below are M's

# subdirs DIR: the cgroup directories below DIR (relative), one per line, sorted.
subdirs() { (cd "$1" && find . -mindepth 1 -type d | sed 's|^\./||' | sort); }

# pinned_def NAME PINS [EXTRA_LAUNCHER_LINES]: a paused 2-vCPU TCG VM (-S in the definition).
pinned_def() {
	{
		printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n' "$QEMU"
		printf '%s\n' "$2"
		[ $# -ge 3 ] && printf '%s\n' "$3"
		printf 'qemu:\n'
		guest_opts idle
		printf -- '- smp: [ 2, sockets: 1, cores: 2, threads: 1 ]\n'
		printf -- '- name: [ %s, debug-threads: on ]\n- S\n' "$1"
	} | def "$1"
}
# Starts NAME and waits until the launcher says the guest stays paused (pinning done).
start_pinned() {
	ql_start "$1" -d
	if wait_until 20 grep -q "guest left paused" "$LERR"; then
		L=$(launcher_of "$LPID")
		Q=$(child_of "$L")
		return 0
	fi
	diag "launcher output:" "$(cat "$LERR")"
	L=$(launcher_of "$LPID")
	Q=$(child_of "$L")
	return 1
}

# A task of the delegated subtree (stands for "every task of M"): it must move to the pool and
# back.
delegated_sleeper

# --- one VM: vCPU 0 pinned, vCPU 1 not, SCHED_FIFO ------------------------------------------
pinned_def vm1 "  scheduler: fifo
  priority: 10
  vcpu_pinning:
    0:
      0:
        0: $PIN"
check "--dry-run of the nested form names the vCPU of its cpu set by its cpu-index" \
	grep -q "/qemu/vm1/cpu$PIN  cpus $PIN: vCPU 0 thread" <("$QL" --dry-run vm1 2>&1)
{
	printf 'launcher:\n  binary: %s\n  vcpu_pinning: [ %s ]\n  emulator_pinning: 0\nqemu:\n' "$QEMU" "$PIN"
	guest_opts idle
} | def emu0
[ "$PIN" = 1 ] && vmcpus=0-1 || vmcpus=0,$PIN
check "--dry-run: the VM set's CPUs are vCPUs' and emulator's as one kernel list ($vmcpus)" \
	grep -qx "  /[^ ]*/qemu/emu0  cpus $vmcpus" <("$QL" --dry-run emu0 2>&1 | sed -n 's/^# //p')
check "vm1 started and pinned while paused (-S): placement is in force before the guest runs" start_pinned vm1
V0=$(thread_of "$Q" "CPU 0/TCG")
V1=$(thread_of "$Q" "CPU 1/TCG")
check "vCPU threads found (CPU 0/TCG, CPU 1/TCG)" test -n "$V0" -a -n "$V1"
expect_eq "layout: prefix, pool, VM set and one cpuN set" "qemu
qemu/pool
qemu/vm1
qemu/vm1/cpu$PIN" "$(subdirs "$M")"
expect_eq "vCPU 0 thread is in <M>/qemu/vm1/cpu$PIN" "/$TD/qemu/vm1/cpu$PIN" "$(cpuset_of "$Q" "$V0")"
expect_eq "vCPU 0 may run only on host CPU $PIN" "$PIN" "$(allowed_of "$Q" "$V0")"
expect_eq "cpu$PIN set holds exactly the vCPU 0 thread" "$V0" "$(cat "$M/qemu/vm1/cpu$PIN/tasks")"
expect_eq "cpu$PIN set: cpuset.cpus" "$PIN" "$(cat "$M/qemu/vm1/cpu$PIN/cpuset.cpus")"
expect_eq "pool lost the pinned CPU" "$POOL_EXPECT" "$(cat "$M/qemu/pool/cpuset.cpus")"
expect_eq "prefix set keeps the CPUs of the mount path" "$(cat "$M/cpuset.cpus")" "$(cat "$M/qemu/cpuset.cpus")"
expect_eq "cpu_exclusive is not set on the prefix" 0 "$(cat "$M/qemu/cpuset.cpu_exclusive")"
bad=""
for t in /proc/$Q/task/*; do
	tid=$(basename "$t")
	[ "$tid" = "$V0" ] && continue
	[ "$(cpuset_of "$Q" "$tid")" = "/$TD/qemu/pool" ] || bad="$bad $tid:$(cpuset_of "$Q" "$tid")"
	[ "$(allowed_of "$Q" "$tid")" = "$POOL_EXPECT" ] || bad="$bad $tid:$(allowed_of "$Q" "$tid")"
done
expect_eq "every other qemu thread (unpinned vCPU 1 too) is in the pool, off CPU $PIN" "" "$bad"
expect_eq "vCPU 0: SCHED_FIFO priority 10, reset-on-fork" "SCHED_FIFO|SCHED_RESET_ON_FORK 10" "$(policy_of "$V0")"
expect_eq "vCPU 1 (not pinned) keeps SCHED_OTHER" "SCHED_OTHER 0" "$(policy_of "$V1")"
expect_eq "qemu main thread keeps SCHED_OTHER" "SCHED_OTHER 0" "$(policy_of "$Q")"
check "-d prints the pinning map" grep -q "vCPU 0 (socket 0 core 0 thread 0) thread $V0 -> host CPU $PIN" "$LERR"
check "-d traces cgroup writes" grep -q "write $M/qemu/vm1/cpu$PIN/tasks <- $V0" "$LERR"
expect_eq "a task of the delegated subtree was moved to the pool" "/$TD/qemu/pool" "$(cat /proc/$SLEEPER/cpuset)"
expect_eq "... and now runs off the pinned CPU" "$POOL_EXPECT" "$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/$SLEEPER/status)"
VM1_L=$L VM1_Q=$Q VM1_LPID=$LPID VM1_V0=$V0

# A thread that lands in a vCPU set later (as KVM's kvm-nx-lpage-re does) is moved out by the
# launcher's rescans (100 ms, 1 s, 5 s after start).
RCU=$(thread_of "$Q" "IO mon_iothread")
echo "$RCU" >"$M/qemu/vm1/cpu$PIN/tasks"
in_pool() { [ "$(cpuset_of "$VM1_Q" "$RCU")" = "/$TD/qemu/pool" ]; }
check "rescan: a non-vCPU thread put into cpu$PIN is moved back to the pool" wait_until 8 in_pool
check "rescan: -d says so" grep -q "thread $RCU appeared in $M/qemu/vm1/cpu$PIN; moving it out" "$LERR"

# After the last rescan the launcher drops its start-up code from its page tables and keeps only
# its idle code (the ql_idle section: the supervision loop): the code pages resident in its
# binary's mapping are that section's, or a page it runs would have faulted a 64 KiB window back.
text_kb() { # resident KiB of PID's mapping of the launcher's code
	awk -v exe="$(readlink -f "$QL")" '/^[0-9a-f]+-[0-9a-f]+ / {on = $2 == "r-xp" && $6 == exe}
		on && /^Rss:/ {kb += $2} END {print kb + 0}' "/proc/$1/smaps"
}
read -r IDLE_AT IDLE_SIZE < <(readelf -SW "$QL" | awk '$2 == "ql_idle" {print $4, $6}')
IDLE_KB=$(((((0x${IDLE_AT:-0} + 0x${IDLE_SIZE:-0} + 4095) / 4096) - 0x${IDLE_AT:-0} / 4096) * 4))
trimmed() { [ "$(text_kb "$VM1_L")" -le "$IDLE_KB" ]; }
check "the binary has an idle code section (ql_idle)" test -n "${IDLE_SIZE:-}"
check "idle after its rescans, the launcher keeps only its idle code resident (<= $IDLE_KB KiB)" \
	wait_until 8 trimmed
sleep 1
expect_eq "... and its waiting faults none back" "yes" "$(trimmed && echo yes || echo "no: $(text_kb "$VM1_L") KiB")"

# --- a second VM wanting the same CPU is refused, naming the first --------------------------
pinned_def intruder "  vcpu_pinning:
    0:
      0:
        0: $PIN"
timeout -s KILL 30 "$QL" intruder >"$SCRATCH/intr.out" 2>"$SCRATCH/intr.err" </dev/null
expect_eq "overlapping VM: exit 125" 125 $?
check "overlapping VM: the error names the running VM" grep -q "host CPU $PIN is pinned by running VM \`vm1\`" "$SCRATCH/intr.err"
check "overlapping VM: no set of it is left" test ! -e "$M/qemu/intruder"
check "overlapping VM: its qemu is gone" bash -c "! pgrep -f 'name [i]ntruder,' >/dev/null"
expect_eq "overlapping VM: vm1's vCPU is still pinned" "/$TD/qemu/vm1/cpu$PIN" "$(cpuset_of "$VM1_Q" "$VM1_V0")"
expect_eq "overlapping VM: the pool still excludes CPU $PIN" "$POOL_EXPECT" "$(cat "$M/qemu/pool/cpuset.cpus")"

timeout -s KILL 30 "$QL" vm1 >/dev/null 2>"$SCRATCH/twin.err" </dev/null
expect_eq "the same VM started twice: exit 125" 125 $?
check "the same VM started twice: says it is already running" grep -q "VM \`vm1\` is already running" "$SCRATCH/twin.err"
expect_eq "the same VM started twice: the running one keeps its sets" "/$TD/qemu/vm1/cpu$PIN" "$(cpuset_of "$VM1_Q" "$VM1_V0")"

if [ "$NCPU" -ge 3 ]; then
	pinned_def other "  vcpu_pinning:
    0:
      0:
        0: $((PIN - 1))"
	start_pinned other
	OV0=$(thread_of "$Q" "CPU 0/TCG")
	expect_eq "disjoint second VM: its vCPU is pinned to CPU $((PIN - 1))" "/$TD/qemu/other/cpu$((PIN - 1))" "$(cpuset_of "$Q" "$OV0")"
	expect_eq "disjoint second VM: pool excludes both VMs' CPUs" "$([ "$PIN" -eq 2 ] && echo 0 || echo "0-$((PIN - 2))")" "$(cat "$M/qemu/pool/cpuset.cpus")"
	kill -KILL "$Q"
	wait "$LPID"
	expect_eq "disjoint second VM gone: pool gets its CPU back" "$POOL_EXPECT" "$(cat "$M/qemu/pool/cpuset.cpus")"
else
	skip "disjoint second VM needs 3 host CPUs (have $NCPU); cpuset-v1-guest.sh covers it on 6 guest CPUs"
	skip "disjoint second VM needs 3 host CPUs (have $NCPU); cpuset-v1-guest.sh covers it on 6 guest CPUs"
	skip "disjoint second VM needs 3 host CPUs (have $NCPU); cpuset-v1-guest.sh covers it on 6 guest CPUs"
fi

# --- qemu killed: everything unwinds ---------------------------------------------------------
kill -KILL "$VM1_Q"
wait "$VM1_LPID"
expect_eq "qemu SIGKILLed: launcher exits 128+9" 137 $?
expect_eq "qemu SIGKILLed: no cpuset of ours is left" "" "$(subdirs "$M")"
expect_eq "qemu SIGKILLed: the delegated subtree's task is back in it" "/$TD" "$(cat /proc/$SLEEPER/cpuset)"
check "qemu SIGKILLed: -d traced the removal" grep -q "rmdir $M/qemu/pool" "$LERR"

# --- bad pinning: nothing is left behind -----------------------------------------------------
# A vCPU past -smp's count: found in qemu's answer, then qemu is quit. (A nested entry outside
# -smp's topology is refused before qemu starts: definitions.sh.)
pinned_def nosuch "  vcpu_pinning: [ $PIN, $PIN, $PIN ]"
timeout -s KILL 30 "$QL" nosuch >/dev/null 2>"$SCRATCH/nosuch.err" </dev/null
expect_eq "pin for a vCPU qemu does not have: exit 125" 125 $?
check "pin for a vCPU qemu does not have: FILE:LINE:COL of the pin" grep -q "$CONF/nosuch.yml:[0-9]*:[0-9]*: vcpu_pinning names vCPU 2, but qemu has no such vCPU" "$SCRATCH/nosuch.err"
expect_eq "pin for a vCPU qemu does not have: no cpuset left" "" "$(subdirs "$M")"
check "pin for a vCPU qemu does not have: qemu is gone" bash -c "! pgrep -f 'name [n]osuch,' >/dev/null"

BADCPU=$((NCPU + 3))
pinned_def badcpu "  vcpu_pinning:
    0:
      0:
        0: $BADCPU"
timeout -s KILL 30 "$QL" badcpu >/dev/null 2>"$SCRATCH/badcpu.err" </dev/null
expect_eq "host CPU $BADCPU that does not exist: exit 125" 125 $?
check "host CPU $BADCPU: FILE:LINE:COL and the reason" grep -q "$CONF/badcpu.yml:[0-9]*:[0-9]*: vCPU (socket 0 core 0 thread 0): host CPU $BADCPU does not exist" "$SCRATCH/badcpu.err"
expect_eq "host CPU $BADCPU: no cpuset created" "" "$(subdirs "$M")"
check "host CPU $BADCPU: qemu was never started" bash -c "! pgrep -f 'name [b]adcpu,' >/dev/null"

# every usable CPU pinned: nothing left for the pool
pinned_def allcpus "  vcpu_pinning: [ $(seq -s ', ' 0 $PIN) ]"
timeout -s KILL 30 "$QL" allcpus >/dev/null 2>"$SCRATCH/all.err" </dev/null
expect_eq "pinning every CPU of the mount path: exit 125" 125 $?
check "pinning every CPU: the message says why" grep -q "keep at least one" "$SCRATCH/all.err"

# --- a SIGKILLed launcher: its guardian gives the sets back within seconds ----------------------
check "stale run: vm1 pinned again" start_pinned vm1
# The guardian waits inside the launcher's own memory, not in a fork of it (guardian.h); qemu, an
# exec, has its own. kcmp(2) with KCMP_VM tells whether two processes share their memory.
same_mm() {
	python3 - "$1" "$2" <<'PY'
import ctypes, os, sys
nr = {"x86_64": 312, "aarch64": 272}[os.uname().machine]
sys.exit(0 if ctypes.CDLL(None).syscall(nr, int(sys.argv[1]), int(sys.argv[2]), 1, 0, 0) == 0 else 1)
PY
}
not() { ! "$@"; }
G=$(guardian_of "$L")
case $(uname -m) in
x86_64 | aarch64)
	check "stale run: the guardian (pid ${G:-none}) shares the launcher's memory" same_mm "$L" "${G:-0}"
	check "stale run: ... which qemu does not" not same_mm "$L" "$Q"
	;;
*)
	skip "the guardian is a fork on $(uname -m): no raw system calls there"
	skip "the guardian is a fork on $(uname -m)"
	;;
esac
kill -KILL "$L"
check "stale run: qemu ends with its launcher (PDEATHSIG)" wait_until 10 pid_gone "$Q"
wait "$LPID" 2>/dev/null
check "stale run: the guardian removed the killed launcher's sets within 5 s" wait_until 5 test ! -d "$M/qemu/vm1"
check "stale run: ... and ended" wait_until 5 pid_gone "${G:-0}"
pinned_def vm2 "  vcpu_pinning:
    0:
      0:
        0: $PIN"
check "stale run: another VM can take CPU $PIN" start_pinned vm2
check "stale run: the next start found nothing to reclaim" bash -c "! grep -q 'reclaiming the cpusets' '$LERR'"
expect_eq "stale run: layout now has vm2 only" "qemu
qemu/pool
qemu/vm2
qemu/vm2/cpu$PIN" "$(subdirs "$M")"
kill -TERM "$L"
wait "$LPID"
expect_eq "SIGTERM: launcher exits with qemu's status" 0 $?
expect_eq "SIGTERM: no cpuset left" "" "$(subdirs "$M")"

# --- two launchers racing for one CPU: the lock lets exactly one win ------------------------
for n in racea raceb; do
	pinned_def $n "  vcpu_pinning: [ $PIN ]"
done
ql_start racea -d
RA_PID=$LPID RA_ERR=$LERR RA_START=$(start_of "$LPID")
ql_start raceb -d
RB_PID=$LPID RB_ERR=$LERR RB_START=$(start_of "$LPID")
settled() { # one paused, the other refused
	{ grep -q "guest left paused" "$RA_ERR" && pid_gone "$RB_PID"; } ||
		{ grep -q "guest left paused" "$RB_ERR" && pid_gone "$RA_PID"; }
}
check "race: one launcher pinned, the other ended" wait_until 20 settled
expect_eq "race: the loser names the winner" 1 "$(cat "$RA_ERR" "$RB_ERR" | grep -c "host CPU $PIN is pinned by running VM \`race[ab]\`")"
expect_eq "race: exactly one VM set exists" 1 "$(subdirs "$M" | grep -c '^qemu/race[ab]$')"
# the winner stopped by the pid of its launcher, under this test's own timeout(1) (still running:
# it waits for the launcher); shutdown_timeout: 1, the ladder ends qemu and releases the sets
for p in "$RA_PID:$RA_START" "$RB_PID:$RB_START"; do
	registered_alive "${p%%:*}" "${p#*:}" || continue
	l=$(launcher_of "${p%%:*}")
	[ -n "$l" ] && kill -TERM "$l"
done
wait "$RA_PID" "$RB_PID" 2>/dev/null
check "race: everything removed afterwards" wait_until 5 empty subdirs "$M"

# --- emulator_pinning and the flat list form -------------------------------------------------
pinned_def emu "  vcpu_pinning: [ $PIN ]
  emulator_pinning: 0"
check "emulator_pinning: VM started" start_pinned emu
V0=$(thread_of "$Q" "CPU 0/TCG")
V1=$(thread_of "$Q" "CPU 1/TCG")
expect_eq "flat form: vCPU 0 (cpu-index 0) is in cpu$PIN" "/$TD/qemu/emu/cpu$PIN" "$(cpuset_of "$Q" "$V0")"
expect_eq "emulator_pinning: qemu's main thread is in the emulator set" "/$TD/qemu/emu/emulator" "$(cpuset_of "$Q" "$Q")"
expect_eq "emulator_pinning: the unpinned vCPU 1 stays with the emulator threads" "/$TD/qemu/emu/emulator" "$(cpuset_of "$Q" "$V1")"
expect_eq "emulator_pinning: emulator threads may run on CPU 0 only" 0 "$(allowed_of "$Q" "$Q")"
expect_eq "emulator_pinning: VM set spans vCPU and emulator CPUs" "0-$PIN" "$(cat "$M/qemu/emu/cpuset.cpus")"
# Placed by qemu's thread names while it built the machine, most likely (pinning_apply_early):
# then its answer named the same threads.
check "emulator_pinning: no thread name disagreed with qemu's answer" \
	bash -c "! grep -q 'placing them again' '$LERR'"
grep -q "placed by their names, before qemu's answer" "$LERR" || diag "emu: placed after qemu's answer"
kill -KILL "$Q"
wait "$LPID"
expect_eq "emulator_pinning: everything removed after qemu ended" "" "$(subdirs "$M")"

# --- a launcher with an affinity of its own (systemd's CPUAffinity=, taskset): since Linux 6.2
# qemu keeps that mask in its sets, narrowed to theirs; its emulator threads stay within the
# emulator set, and the start goes on (it used to fail: their CPUs were not the whole set) -----
pinned_def narrow "  vcpu_pinning: [ $PIN ]
  emulator_pinning: 0-$PIN"
fresh_logs narrow
timeout -s KILL 60 taskset -c 0 "$QL" -d narrow >"$LOUT" 2>"$LERR" </dev/null &
LPID=$!
register_pid "$LPID"
check "under taskset -c 0, emulator_pinning 0-$PIN: the VM starts" wait_until 20 grep -q "guest left paused" "$LERR"
L=$(launcher_of "$LPID")
Q=$(child_of "$L")
V0=$(thread_of "$Q" "CPU 0/TCG")
expect_eq "... qemu's main thread is in the emulator set" "/$TD/qemu/narrow/emulator" "$(cpuset_of "$Q" "$Q")"
# (before Linux 6.2 a move gave a task its set's CPUs whatever it had asked for)
IFS=. read -r KMAJ KMIN _ < <(uname -r)
if [ "$KMAJ" -gt 6 ] || { [ "$KMAJ" = 6 ] && [ "${KMIN%%[!0-9]*}" -ge 2 ]; }; then NARROW=0; else NARROW=0-$PIN; fi
expect_eq "... on the launcher's CPU 0 only (Linux 6.2 on), within the set's 0-$PIN" "$NARROW" "$(allowed_of "$Q" "$Q")"
expect_eq "... vCPU 0 on CPU $PIN, its set's, all the same" "/$TD/qemu/narrow/cpu$PIN $PIN" "$(cpuset_of "$Q" "$V0") $(allowed_of "$Q" "$V0")"
kill -TERM "$L"
wait "$LPID"
expect_eq "... SIGTERM: exit 0" 0 $?
expect_eq "... everything removed" "" "$(subdirs "$M")"
