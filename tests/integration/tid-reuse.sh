#!/bin/bash
# A thread id checked is the thread moved: qemu reports its vCPU (or I/O) threads, the launcher
# checks they are qemu's and records their start times, then waits for the cross-launcher lock
# before it moves them. Here the test holds that lock, the stand-in qemu ends the reported
# thread meanwhile, and the freed id is handed to another thread on purpose: to a stranger
# process (it must stay exactly where it was: cpuset, allowed CPUs, scheduler) or to a new
# thread of qemu itself (the start-time check must catch it). Either way the start fails with
# 125, cont is never sent, and nothing is left behind. And qemu's own pid, once qemu is reaped,
# goes to a stranger before the affinity backend's release: untouched too.
# Everything runs in a pid namespace of its own (unshare --pid --mount-proc), so the test can
# choose which id the next thread gets through that namespace's own ns_last_pid; the host's
# pid allocation is never touched. The lock is that of a subtree nested one level below the
# test's own cpuset, so holding it stalls no other launcher on the host.
NTESTS=45
if [ -z "${QL_TID_NS:-}" ]; then
	if [ "$(id -u)" = 0 ] && unshare --pid --fork --mount-proc true 2>/dev/null; then
		exec unshare --pid --fork --mount-proc --kill-child \
			env QL_TID_NS=$$ bash "$0" "$@"
	fi
	. "$(dirname "$0")/lib.sh"
	plan $NTESTS
	[ "$(id -u)" = 0 ] || skip_all "needs root (a pid namespace, cpuset v1)"
	skip_all "unshare --pid --fork --mount-proc is not available"
fi
. "$(dirname "$0")/lib.sh"
plan $NTESTS

command -v python3 >/dev/null || skip_all "python3 is needed for the stand-in qemu"
require_cpuset_v1

# $CS/$TD holds the delegated mount path m (whose parent, $CS/$TD, is the lock directory) and a
# sibling set `other` for the stranger.
TD=qltest-tid-$QL_TID_NS
nested_delegated_cpuset "$TD"
mkdir "$CS/$TD/other"
cat "$CS/cpuset.cpus" >"$CS/$TD/other/cpuset.cpus"
cat "$CS/cpuset.mems" >"$CS/$TD/other/cpuset.mems"
M_CPUS=$(cat "$M/cpuset.cpus")
delegated_sleeper
. "$(dirname "$0")/stand-in.sh"

exec {LOCKFD}<"$LOCKDIR"
hold_lock() { flock -n "$LOCKFD"; }
drop_lock() { flock -u "$LOCKFD"; }

# The launcher has recorded the threads and now polls for the lock: its vCPU map is logged and
# it sleeps in wait_for_lock (clock_nanosleep or nanosleep, nothing else sleeps on this path).
waiting_for_lock() {
	grep -q "vCPU 0 (socket 0 core 0 thread 0) thread [0-9]* -> host CPU $PIN" "$LERR" &&
		read -r nr _ <"/proc/$L/syscall" && { [ "$nr" = 230 ] || [ "$nr" = 35 ]; }
}

# The launcher prepares its sets (under the lock) while the stand-in holds back its answer to
# query-cpus-fast; the prepare's last step shrinks the pool. Then the test takes the lock and
# lets the answer go: the launcher records the threads and waits for the lock before it moves
# them.
lock_after_prepare() {
	wait_until 10 test -e "$MARK/at-cpus"
	wait_until 10 grep -q "pool/cpuset.cpus <- " "$LERR"
	wait_until 10 hold_lock || diag "could not take the lock on $LOCKDIR"
	touch "$MARK/answer-cpus"
}

# stranger TID CPU: a process that gets exactly that id (ns_last_pid), in the set `other`, allowed
# CPU only, SCHED_OTHER; prints its pid. Nothing else forks in this namespace meanwhile (the
# launcher waits for the lock, the stand-in idles).
stranger() {
	python3 - "$1" "$CS/$TD/other/tasks" "$2" <<'EOF'
import os, sys, time
tid, tasks, cpu = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for attempt in range(50):
    open("/proc/sys/kernel/ns_last_pid", "w").write(str(tid - 1))
    pid = os.fork()
    if pid == 0:
        if os.getpid() == tid:
            os.execvp("sleep", ["sleep", "1000"])
        os._exit(0)
    if pid == tid:
        break
    os.waitpid(pid, 0)  # another process had the id for a moment: again, once it is free
    while os.path.exists("/proc/%d" % tid):
        time.sleep(0.01)
open(tasks, "w").write(str(pid))
os.sched_setaffinity(pid, {cpu})
print(pid)
EOF
}
# settle DESC: a launcher that wrongly went on to run the guest is stopped, so one failure does
# not wait for the 60 s bound and leave its sets to the next case.
settle() {
	if wait_until 15 pid_gone "$L"; then ok "$1: the launcher ends by itself"; else
		not_ok "$1: the launcher ends by itself"
		kill -TERM "$L"
	fi
}
# state_of PID: where a process is and how it is scheduled, in one line.
state_of() { echo "$(cat "/proc/$1/cpuset") $(allowed_of "$1" "$1") $(policy_of "$1")"; }

# vCPU 0 gets host CPU $PIN and SCHED_FIFO 10: the moves a stranger must never see.
FAKE_LAUNCHER='  scheduler: fifo
  priority: 10'

# --- the tid goes to a stranger process while the launcher waits for the lock ---------------
fake_def stranger "retire@cpus"
bg_case stranger
lock_after_prepare
check "the launcher recorded the vCPU threads and waits for the lock" wait_until 15 waiting_for_lock
touch "$MARK/retire-now"
wait_until 10 test -s "$MARK/retired"
T=$(cat "$MARK/retired")
stranger "$T" 0 >"$SCRATCH/stranger"
S=$(cat "$SCRATCH/stranger")
register_pid "$S"
expect_eq "the stranger got the reported vCPU thread's id" "$T" "$S"
BEFORE=$(state_of "$S")
expect_eq "the stranger: its own set, CPU 0, SCHED_OTHER" "/$TD/other 0 SCHED_OTHER 0" "$BEFORE"
drop_lock
settle "vCPU thread id reused by a stranger before the move"
finish "vCPU thread id reused by a stranger before the move" 125
check_shown "... the message names the thread" grep -q "thread $T is not a thread of qemu" "$LERR"
check "... cont was never sent" bash -c "! grep -qx 'cmd cont' '$MARK/log'"
check "... the stranger was never written into a set" bash -c "! grep -q 'tasks <- $T\$' '$LERR'"
expect_eq "... the stranger's cpuset, CPUs and scheduler are untouched" "$BEFORE" "$(state_of "$S")"
kill -KILL "$S"

# --- the tid goes to a new thread of qemu itself: only the start time tells them apart -----------
fake_def respawn "respawn@cpus"
bg_case respawn
lock_after_prepare
check "the launcher recorded the vCPU threads and waits for the lock (respawn)" wait_until 15 waiting_for_lock
touch "$MARK/retire-now"
wait_until 10 test -s "$MARK/respawned"
read -r T NEW <"$MARK/respawned"
expect_eq "qemu's new thread got the ended vCPU thread's id" "$T" "$NEW"
drop_lock
settle "vCPU thread id reused by another thread of qemu"
finish "vCPU thread id reused by another thread of qemu" 125
check_shown "... the start-time check names the thread" grep -q "thread $T ended while it was being pinned" "$LERR"
check "... cont was never sent" bash -c "! grep -qx 'cmd cont' '$MARK/log'"
# It was moved into the vCPU set (it is qemu's, so the cgroup check lets it through), but the
# identity check right after the placement stops the run before any scheduling.
check "... it was placed (a thread of qemu), then caught" grep -q "cpu$PIN/tasks <- $T\$" "$LERR"
check "... and never re-prioritised" bash -c "! grep -q 'thread $T: scheduler' '$LERR'"
expect_eq "... its scheduling when qemu ended: SCHED_OTHER 0" "0 0" \
	"$(awk -v t="$T" '$1 == t {print $2, $3}' "$MARK/final" 2>/dev/null)"

# --- an I/O thread's id goes to a stranger: no affinity, no scheduler for it ------------------
FAKE_LAUNCHER='  emulator_pinning: 0
  iothread_pinning: { io0: 0 }
  iothread_scheduler: fifo
  iothread_priority: 5'
FAKE_QEMU='- fakeretire: io0
- object: [ iothread, id: io0 ]'
fake_def io_stranger "retire@cpus"
unset FAKE_QEMU
bg_case io_stranger
lock_after_prepare
check "the launcher recorded the I/O thread and waits for the lock" wait_until 15 waiting_for_lock
touch "$MARK/retire-now"
wait_until 10 test -s "$MARK/retired"
T=$(cat "$MARK/retired")
stranger "$T" "$PIN" >"$SCRATCH/stranger"
S=$(cat "$SCRATCH/stranger")
register_pid "$S"
expect_eq "the stranger got the reported I/O thread's id" "$T" "$S"
# (it may run on CPU $PIN only, so the I/O thread's affinity, CPU 0, would show on it)
BEFORE=$(state_of "$S")
expect_eq "the stranger: its own set, CPU $PIN, SCHED_OTHER" "/$TD/other $PIN SCHED_OTHER 0" "$BEFORE"
drop_lock
settle "I/O thread id reused by a stranger before the move"
finish "I/O thread id reused by a stranger before the move" 125
check_shown "... the identity check names the thread" grep -q "thread $T ended while it was being pinned" "$LERR"
check "... cont was never sent" bash -c "! grep -qx 'cmd cont' '$MARK/log'"
expect_eq "... the stranger's cpuset, CPUs and scheduler are untouched" "$BEFORE" "$(state_of "$S")"
kill -KILL "$S"

# --- the undo of a failed placement fails: the release at the end tries again ---------------------
# The reported vCPU thread ends while the launcher waits for the lock, so the placement fails
# (the thread is not qemu's any more) and is undone under the lock. A set of the test's own two
# levels into the VM's set, with a task in it, makes that undo fail (the launcher moves qemu's
# threads out of its sets, not a stranger's out of a set below them). The launcher stops itself
# once qemu is reaped (a test hook), the test takes its set away, and the release at the end must
# then remove everything: it once took the failed undo for done and left the sets behind.
unset FAKE_LAUNCHER
fake_def undo_busy "retire@cpus"
QEMU_LAUNCHER_TEST_STOP_AT=qemu-reaped bg_case undo_busy
lock_after_prepare
check "the launcher waits for the lock (undo_busy)" wait_until 15 waiting_for_lock
touch "$MARK/retire-now"
wait_until 10 test -s "$MARK/retired"
V=$M/qemu/undo_busy
mkdir -p "$V/x/y"
for d in "$V/x" "$V/x/y"; do
	cat "$V/cpuset.cpus" >"$d/cpuset.cpus"
	cat "$V/cpuset.mems" >"$d/cpuset.mems"
done
sleep 1000 &
B=$!
register_pid "$B"
echo "$B" >"$V/x/y/tasks"
drop_lock
check_shown "the vCPU thread ended before its move: the undo fails on the test's busy set" \
	wait_until 15 grep -q "undoing a failed placement: removing .*/undo_busy/x" "$LERR"
check "... the launcher reaps qemu and stops before its release" \
	wait_until 10 grep -q '^State:.*T' "/proc/$L/status"
check "... the VM's set is still there" test -d "$V"
echo "$B" >"$M/tasks"
kill -KILL "$B"
{ wait "$B"; } 2>/dev/null
rmdir "$V/x/y" "$V/x"
kill -CONT "$L"
finish "the undo of a failed placement failed, the release at the end tried again" 125
check "... cont was never sent" bash -c "! grep -qx 'cmd cont' '$MARK/log'"

# --- affinity only: qemu's pid reused between its reap and the release --------------------------
# The affinity backend's release reset every thread it listed under qemu's pid to the launcher's
# own CPUs: once qemu is reaped, whatever process got that pid. The launcher stops itself right
# after the reap (a test hook), a stranger takes qemu's pid, then the release runs.
FAKE_LAUNCHER='  isolate_cpus: false
  scheduler: fifo
  priority: 10'
fake_def aff_reaped ""
QEMU_LAUNCHER_TEST_STOP_AT=qemu-reaped bg_case aff_reaped
check "affinity only: the stand-in is pinned and gets cont" wait_until 15 sent cont
F=$(fake_pid)
kill -KILL "$F"
check "qemu SIGKILLed: the launcher reaps it and stops before its release" \
	wait_until 10 grep -q '^State:.*T' "/proc/$L/status"
stranger "$F" "$PIN" >"$SCRATCH/stranger"
S=$(cat "$SCRATCH/stranger")
register_pid "$S"
expect_eq "the stranger got qemu's pid" "$F" "$S"
BEFORE=$(state_of "$S")
kill -CONT "$L"
finish "affinity only, qemu's pid reused before the release" 137
expect_eq "... the stranger's cpuset, CPUs and scheduler are untouched" "$BEFORE" "$(state_of "$S")"
kill -KILL "$S"
unset FAKE_LAUNCHER

# --- the lock is not held: the same stand-in starts normally (the cues alone change nothing) ----
unset FAKE_LAUNCHER
fake_def plain ""
bg_case plain
check "without the lock held, the stand-in is pinned and gets cont" wait_until 15 sent cont
kill -TERM "$L"
finish "plain run, SIGTERM" 0
