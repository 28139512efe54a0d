#!/bin/bash
# Faults in the releasing phase: qemu has ended (by itself, or told to quit after a stop signal)
# and the launcher is tearing down its cpusets under the cross-launcher lock when it is SIGKILLed
# (its guardian must give the host back), or SIGSTOPped and continued (it must finish the job);
# and qemu already gone when a stopped launcher comes back; or another launcher keeps the lock
# through the release, or from the prepare on, so that the start fails too (its guardian takes
# over). Each case ends with no set under the delegated subtree, its task back in it, no
# stand-in, no guardian left, and the exit status that tells what happened (qemu's own, or 137
# for the killed launcher).
# The window is hit deterministically: the launcher's stderr (-d traces every cgroup write) goes
# through stderr-gate.py, which blocks it at its first message after "qemu closed its QMP
# connection" — its first step of the release, inside the lock (checked through /proc/locks).
# The stand-in lingers 1.5 s between closing QMP and exiting, so the gate is shut in time, also on
# a loaded host ("deterministically": the gate has that long). The subtree is nested ($CS/$TD/m):
# the lock held meanwhile is this test's own.
. "$(dirname "$0")/lib.sh"
NTESTS=73
plan $NTESTS

command -v python3 >/dev/null || skip_all "python3 is needed for the stand-in qemu"
require_cpuset_v1

TD=qltest-rel-$$
nested_delegated_cpuset "$TD"
M_CPUS=$(cat "$M/cpuset.cpus")
delegated_sleeper
. "$(dirname "$0")/stand-in.sh"

GATE=$SCRATCH/stderr-gate
install -m 755 "$(dirname "$0")/stderr-gate.py" "$GATE"
LOCK_INO=$(stat -c %i "$LOCKDIR")
FAKE_QEMU='- fakelinger: "1.5"'

GN=0
# gated_start NAME: starts NAME (-d) in the background with its stderr through the gate, shut at
# the first message after QMP is closed. Sets LPID, L, LERR and FIFO.
gated_start() {
	GN=$((GN + 1))
	FIFO=$SCRATCH/gate$GN
	LERR=$SCRATCH/$1.err
	mkfifo "$FIFO"
	"$GATE" "$FIFO" "$LERR" "qemu closed its QMP connection" &
	register_pid $!
	wait_until 5 test -e "$FIFO.ready"
	timeout -s KILL 60 "$QL" -d "$1" >"$SCRATCH/$1.out" 2>"$FIFO" </dev/null &
	LPID=$!
	register_pid "$LPID"
	wait_until 10 nonempty launcher_of "$LPID"
	L=$(launcher_of "$LPID")
}
open_gate() { touch "$FIFO.open"; }
holds_lock() { grep -Eq "FLOCK +ADVISORY +WRITE +$1 [0-9a-f]+:[0-9a-f]+:$LOCK_INO " /proc/locks; }
# The launcher is blocked writing a message of its release: the gate is shut, it holds the lock
# and sits in write(2).
in_release() {
	test -e "$FIFO.filled" && holds_lock "$L" &&
		read -r nr _ <"/proc/$L/syscall" && [ "$nr" = 1 ]
}
stopped() { grep -q '^State:.*T' "/proc/$1/status"; }
# gated DESC NAME: after the launcher entered the release: it is held there, mid-way (its vCPU
# set removed, the VM's set not yet). Sets GUARD (its guardian).
gated() {
	check "$1: the launcher is held inside its release, holding the lock" wait_until 20 in_release
	check "$1: ... mid-way (vCPU set gone, the VM's set still there)" \
		test ! -e "$M/qemu/$2/cpu$PIN" -a -d "$M/qemu/$2"
	GUARD=$(guardian_of "$L")
}
# guardian_done DESC: the killed launcher's guardian gave the host back and ended.
guardian_done() {
	check "$1: the guardian gives the host back" \
		wait_until 10 grep -q "after the launcher was killed: host changes undone" "$LERR"
	check "$1: ... and ends" wait_until 10 pid_gone "${GUARD:-0}"
}

# --- qemu exits by itself; the launcher SIGKILLed inside the release --------------------------
fake_def x_kill "exit:6@running"
gated_start x_kill
wait_until 10 sent cont
gated "qemu exited 6, launcher SIGKILLed" x_kill
kill -KILL "$L"
open_gate
finish "qemu exited 6, launcher SIGKILLed in the release" 137
guardian_done "qemu exited 6, launcher SIGKILLed in the release"

# --- qemu exits by itself; the launcher SIGSTOPped inside the release, then continued -----------
fake_def x_stop "exit:6@running"
gated_start x_stop
wait_until 10 sent cont
gated "qemu exited 6, launcher SIGSTOPped" x_stop
kill -STOP "$L"
open_gate
sleep 0.5
check "qemu exited 6, SIGSTOPped: the launcher stays stopped, holding the lock" \
	bash -c "grep -q '^State:.*T' /proc/$L/status && grep -Eq 'FLOCK +ADVISORY +WRITE +$L ' /proc/locks"
check "qemu exited 6, SIGSTOPped: its sets are still there meanwhile" test -d "$M/qemu/x_stop"
kill -CONT "$L"
finish "qemu exited 6, launcher SIGSTOPped in the release and continued" 6
check "... it reports qemu's own status" grep -q "qemu ended; exit status 6" "$LERR"
# dismissed, not waited for: it leaves on its own a moment after the launcher, without acting
check "... its guardian was dismissed: it ends" wait_until 5 pid_gone "${GUARD:-0}"
check "... and undid nothing after the launcher" bash -c '! grep -q "after the launcher was killed" "$0"' "$LERR"

# --- a stop was requested; the launcher SIGKILLed inside the release ---------------------------
fake_def t_kill ""
gated_start t_kill
wait_until 10 sent cont
kill -TERM "$L"
gated "SIGTERM, launcher SIGKILLed" t_kill
kill -KILL "$L"
open_gate
finish "SIGTERM, then the launcher SIGKILLed in the release" 137
guardian_done "SIGTERM, then the launcher SIGKILLed in the release"
check "... qemu had been told to quit" sent quit

# --- a stop was requested; the launcher SIGSTOPped inside the release, then continued ---------
fake_def t_stop ""
gated_start t_stop
wait_until 10 sent cont
kill -TERM "$L"
gated "SIGTERM, launcher SIGSTOPped" t_stop
kill -STOP "$L"
open_gate
sleep 0.5
check "SIGTERM, SIGSTOPped: the launcher stays stopped, holding the lock" \
	bash -c "grep -q '^State:.*T' /proc/$L/status && grep -Eq 'FLOCK +ADVISORY +WRITE +$L ' /proc/locks"
kill -CONT "$L"
finish "SIGTERM, launcher SIGSTOPped in the release and continued" 0
# dismissed, not waited for: it leaves on its own a moment after the launcher, without acting
check "... its guardian was dismissed: it ends" wait_until 5 pid_gone "${GUARD:-0}"
check "... and undid nothing after the launcher" bash -c '! grep -q "after the launcher was killed" "$0"' "$LERR"

# --- qemu already gone when the launcher comes to release --------------------------------------
# The launcher is stopped while the guest runs, qemu is SIGKILLed meanwhile: once continued, the
# launcher reaps it, reports its status, and releases.
fake_def gone_cont ""
bg_case gone_cont
wait_until 10 sent cont
F=$(fake_pid)
kill -STOP "$L"
kill -KILL "$F"
check "qemu SIGKILLed under a stopped launcher: it ends (a zombie until reaped)" wait_until 10 pid_gone "$F"
kill -CONT "$L"
finish "qemu already gone when the launcher was continued" 137
check "... the status is qemu's (killed by SIGKILL: 128 + 9)" grep -q "qemu ended; exit status 137" "$LERR"

# ... and the stopped launcher SIGKILLed instead: the guardian finds qemu gone and cleans up.
fake_def gone_kill ""
bg_case gone_kill
wait_until 10 sent cont
F=$(fake_pid)
GUARD=$(guardian_of "$L")
kill -STOP "$L"
kill -KILL "$F"
wait_until 10 pid_gone "$F"
kill -KILL "$L"
{ wait "$LPID"; } 2>/dev/null
no_residue "qemu gone, then its stopped launcher SIGKILLed"
guardian_done "qemu gone, then its stopped launcher SIGKILLed"

# --- another launcher keeps the lock through the whole release: this one gives up after the 10 s
# bound (a warning; its status stays qemu's), and its guardian undoes everything once the lock is
# free, without waiting for another start --------------------------------------------------------
fake_def stuck ""
bg_case stuck
wait_until 10 sent cont
GUARD=$(guardian_of "$L")
exec {LOCKFD}<"$LOCKDIR"
check "the test holds the lock while the VM runs" wait_until 5 flock -n "$LOCKFD"
kill -TERM "$L"
wait "$LPID"
expect_eq "lock held through the release: the launcher ends with qemu's status" 0 "$?"
check "... warning that the guardian takes over" grep -q "undoing host changes: .*has held the lock.*(the guardian tries again now)" "$LERR"
check "... the sets are still there while the lock is held" test -d "$M/qemu/stuck"
flock -u "$LOCKFD"
exec {LOCKFD}<&-
no_residue "lock held through the release, then freed"
guardian_done "lock held through the release, then freed"

# --- another launcher takes the lock once this one's host is prepared, and keeps it: the start
# gives up after the 10 s bound, so does its unwind, and its guardian undoes the prepare once the
# lock is free (before, the failed start dismissed it and the sets stayed until the next start) --
fake_def stuck_start "pause@cpus" 4
bg_case stuck_start
check "lock taken after the prepare: the host is prepared" wait_until 10 test -d "$M/qemu/stuck_start"
GUARD=$(guardian_of "$L")
exec {LOCKFD}<"$LOCKDIR"
wait_until 5 flock -n "$LOCKFD"
wait "$LPID"
expect_eq "lock taken after the prepare: the start fails (125)" 125 "$?"
check "... without claiming that no host change was made" bash -c "! grep -q 'no host change was made' '$LERR'"
check "... warning that the guardian takes over" grep -q "undoing host changes: .*has held the lock.*(the guardian tries again now)" "$LERR"
check "... the prepared sets are still there while the lock is held" test -d "$M/qemu/stuck_start"
flock -u "$LOCKFD"
exec {LOCKFD}<&-
no_residue "lock taken after the prepare, then freed"
guardian_done "lock taken after the prepare, then freed"

# --- a release held back after qemu's end (the launcher stopped there: a setuid caller may stop
# it) while a second launcher starts the same VM: that one reclaims the empty sets and makes its
# own, which the late release must leave alone (it removed them, and the pool's tasks went back)
fake_def twin ""
QEMU_LAUNCHER_TEST_STOP_AT=qemu-reaped bg_case twin
wait_until 10 sent cont
A=$L ALPID=$LPID
mv "$LERR" "$SCRATCH/twin-a.err" # the second launcher's log takes the name
kill -KILL "$(fake_pid)"
check "twin: the first launcher reaps its qemu and stops before its release" \
	wait_until 10 grep -q '^State:.*T' "/proc/$A/status"
fake_def twin ""
bg_case twin
check "twin: a second launcher of the same VM starts meanwhile" wait_until 15 sent cont
B_TID=$(cat "$M/qemu/twin/cpu$PIN/tasks" 2>/dev/null)
kill -CONT "$A"
wait "$ALPID"
expect_eq "twin: the late release ends with its qemu's status (137)" 137 "$?"
check "twin: ... it leaves the second launcher's sets alone" test -d "$M/qemu/twin/cpu$PIN"
expect_eq "twin: ... the second launcher's vCPU is still alone in its set" "$B_TID" \
	"$(cat "$M/qemu/twin/cpu$PIN/tasks" 2>/dev/null)"
check "twin: ... and says so" grep -q "is another launcher's now: left alone" "$SCRATCH/twin-a.err"
kill -TERM "$L"
finish "twin: the second launcher, SIGTERM" 0

# --- the last VM's release, stopped right after it moved the pool's tasks back (a test hook): a
# task that enters the pool meanwhile (forked there) goes back to the subtree too, and the pool
# has every CPU again first, so such a task is never left on the pool's narrowed CPUs
fake_def pool_late ""
QEMU_LAUNCHER_TEST_STOP_AT=pool-emptied bg_case pool_late
wait_until 10 sent cont
kill -TERM "$L"
check "late pool task: the launcher stops once the pool's tasks went back" wait_until 10 stopped "$L"
sleep 1000 &
LATE=$!
register_pid "$LATE"
echo "$LATE" >"$M/qemu/pool/tasks"
expect_eq "late pool task: the pool has the subtree's CPUs back first" "$M_CPUS" \
	"$(cat "$M/qemu/pool/cpuset.cpus" 2>/dev/null)"
kill -CONT "$L"
wait "$LPID"
expect_eq "late pool task: the launcher ends with qemu's status (0 after SIGTERM)" 0 "$?"
expect_eq "late pool task: ... the task went back to the subtree" "${M#"$CS"}" \
	"$(cat "/proc/$LATE/cpuset")"
kill "$LATE"
wait "$LATE" 2>/dev/null
no_residue "late pool task"

# --- the mirror at the start: a task born in the subtree once the launcher listed its tasks (a
# fork by a task not moved yet) goes to the pool too, by a second pass over what is new --------
fake_def host_late ""
QEMU_LAUNCHER_TEST_STOP_AT=host-listed bg_case host_late
check "late subtree task: the launcher stops once it listed the subtree's tasks" \
	wait_until 10 stopped "$L"
sleep 1000 &
LATE=$!
register_pid "$LATE"
echo "$LATE" >"$M/tasks"
kill -CONT "$L"
check "late subtree task: the VM starts" wait_until 10 sent cont
expect_eq "late subtree task: ... the task is in the pool, as the ones listed are" \
	"${M#"$CS"}/qemu/pool ${M#"$CS"}/qemu/pool" "$(cat "/proc/$SLEEPER/cpuset") $(cat "/proc/$LATE/cpuset")"
kill -TERM "$L"
wait "$LPID"
expect_eq "late subtree task: SIGTERM, exit 0" 0 "$?"
kill "$LATE"
wait "$LATE" 2>/dev/null
no_residue "late subtree task"

# --- after all that, a VM on the same CPU starts with nothing to reclaim -----------------------
unset FAKE_QEMU
fake_def after ""
bg_case after
check "a VM on the same CPU starts afterwards" wait_until 10 sent cont
check "... with nothing left to reclaim" bash -c "! grep -q 'reclaiming the cpusets' '$LERR'"
kill -TERM "$L"
finish "the VM afterwards, SIGTERM" 0
