#!/bin/bash
# The cross-launcher lock (SECURITY.md, "The cross-launcher lock"): a launcher never waits for
# another's lock for more than a bounded time, names the holder and changes nothing; there is one
# lock however the mount path is spelled; and a setuid launcher cannot be stopped by its caller
# while it waits for or holds the lock. The lock is the parent of the mount path, so the
# delegated subtree is nested one level deeper ($CS/$TD/m): the lock on $CS/$TD is this test's
# own and no other launcher on the host ever waits for it.
. "$(dirname "$0")/lib.sh"
NTESTS=46
plan $NTESTS
require_cpuset_v1
command -v flock >/dev/null || skip_all "flock (util-linux) is missing"

TD=qltest-lock-$$
L=$CS/$TD
mkdir "$L"
register_cgroup "$L"
cat "$CS/cpuset.cpus" >"$L/cpuset.cpus"
cat "$CS/cpuset.mems" >"$L/cpuset.mems"
M=$L/m
mkdir "$M"
cat "$L/cpuset.cpus" >"$M/cpuset.cpus"
cat "$L/cpuset.mems" >"$M/cpuset.mems"
export QEMU_LAUNCHER_CPUSET_MOUNT_PATH=$M
unset QEMU_LAUNCHER_CPUSET_PREFIX

{
	printf 'launcher:\n  binary: %s\n  vcpu_pinning: [ %s ]\nqemu:\n' "$QEMU" "$PIN"
	guest_opts exit
} | def pinned

# hold_lock: a stand-in for a stopped launcher: holds the flock on $L until killed. Sets HOLDER.
# (-o: the sleep does not inherit the lock, so ending flock(1) releases it.) hold_lock FILE holds
# FILE's instead.
hold_lock() {
	flock -o "${1:-$L}" sleep 300 &
	HOLDER=$!
	register_pid "$HOLDER"
	wait_until 5 grep -q " FLOCK .* $HOLDER " /proc/locks
	HOLDER_SLEEP=$(child_of "$HOLDER")
	register_pid "$HOLDER_SLEEP"
}
release_lock() {
	kill "$HOLDER" "$HOLDER_SLEEP"
	wait "$HOLDER" 2>/dev/null
	wait_until 5 bash -c "! grep -q ' FLOCK .* $HOLDER ' /proc/locks"
}
qemu_gone() { ! pgrep -f "^[^ ]*qemu-system-x86_64 .*$BIOS_EXIT" >/dev/null; }
no_sets() { [ -z "$(find "$M" -mindepth 1 -type d)" ]; }

# --- a holder that never lets go ------------------------------------------------------------
hold_lock
t0=$SECONDS
timeout -s KILL 60 "$QL" pinned >"$SCRATCH/held.out" 2>"$SCRATCH/held.err" </dev/null
rc=$?
took=$((SECONDS - t0))
expect_eq "lock held elsewhere: exit 125" 125 "$rc"
check "lock held elsewhere: gives up within the bound (10 s, took ${took} s)" [ "$took" -ge 9 -a "$took" -le 25 ]
check "lock held elsewhere: the message names the holder's pid" grep -q "process $HOLDER has held the lock on \`$L\` for over 10 s" "$SCRATCH/held.err"
check "lock held elsewhere: no host change was made" no_sets
check "lock held elsewhere: qemu is gone" qemu_gone

# --- the same hierarchy spelled differently takes the same lock ---------------------------
QEMU_LAUNCHER_CPUSET_MOUNT_PATH=$M/. timeout -s KILL 60 "$QL" pinned >"$SCRATCH/dot.out" 2>"$SCRATCH/dot.err" </dev/null
expect_eq "mount path \$M/.: the same lock, exit 125" 125 "$?"
check "mount path \$M/.: the message names the holder" grep -q "process $HOLDER has held the lock" "$SCRATCH/dot.err"
ln -s "$M" "$SCRATCH/mlink"
QEMU_LAUNCHER_CPUSET_MOUNT_PATH=$SCRATCH/mlink timeout -s KILL 60 "$QL" pinned >"$SCRATCH/link.out" 2>"$SCRATCH/link.err" </dev/null
expect_eq "mount path through a symlink: the same lock, exit 125" 125 "$?"
check "nothing was changed by either" no_sets
release_lock

# --- an empty directory as the mount path would mount the host's live hierarchy again ----------
# (under another name and another lock): the launcher uses it where it is mounted, and says so.
# Only --dry-run here: a run would use the host's hierarchy, which tests never change.
mkdir "$SCRATCH/empty"
QEMU_LAUNCHER_CPUSET_MOUNT_PATH=$SCRATCH/empty "$QL" --dry-run pinned >"$SCRATCH/empty.out" 2>&1
expect_eq "empty directory as mount path: --dry-run exit 0" 0 "$?"
check "... --dry-run says the host's hierarchy at $CS is used instead of a new mount" \
	grep -q "^# $SCRATCH/empty would mount the host's cpuset hierarchy, already mounted at $CS: that is used" "$SCRATCH/empty.out"

# --- once free, the launcher runs -------------------------------------------------------------
timeout -s KILL 60 "$QL" pinned >"$SCRATCH/free.out" 2>"$SCRATCH/free.err" </dev/null
expect_eq "lock free: the VM runs to its end (exit 11)" 11 "$?"
check "lock free: no residue" no_sets

# --- setuid: the caller cannot stop its launcher while it waits for or holds the lock ----------
if ! command -v setpriv >/dev/null; then
	for ((i = TEST_NUM; i < NTESTS; i++)); do skip "setpriv (util-linux) is missing"; done
	exit 0
fi
SU=$SCRATCH/su
mkdir -m 755 "$SU"
cp "$QL_BUILD_DIR/tests/lockdrive" "$SU/lockdrive"
chown root:root "$SU/lockdrive"
chmod 4755 "$SU/lockdrive"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
uid_of() { awk '/^Uid:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
uid_is() { [ "$(uid_of "$1")" = "$2" ]; }
# stop_refused PID: the caller's SIGSTOP to PID fails with EPERM (kill's status 1 alone would
# also be ESRCH: a process that is gone)
stop_refused() {
	local rc
	as_nobody kill -STOP "$1" 2>"$SCRATCH/stop-refused.err"
	rc=$?
	[ $rc = 1 ] && grep -qi "not permitted" "$SCRATCH/stop-refused.err" ||
		{ diag "kill -STOP $1 as nobody: exit $rc, $(cat "$SCRATCH/stop-refused.err")"; false; }
}

hold_lock
mkfifo "$SCRATCH/in"
as_nobody "$SU/lockdrive" "$M" shielded "$PIN" <"$SCRATCH/in" >"$SCRATCH/drv.out" 2>"$SCRATCH/drv.err" &
DRVW=$!
register_pid "$DRVW"
exec 8>"$SCRATCH/in"
wait_until 5 grep -q '^PID' "$SCRATCH/drv.out"
DRV=$(awk '/^PID/ {print $2}' "$SCRATCH/drv.out")
register_pid "$DRV"
wait_until 5 uid_is "$DRV" 0
expect_eq "setuid, waiting for the lock: its real uid is root (the caller may not signal it)" 0 "$(uid_of "$DRV")"
as_nobody kill -STOP "$DRV" 2>"$SCRATCH/stop.err"
expect_eq "setuid, waiting for the lock: the caller's SIGSTOP is refused" 1 "$?"
check "setuid, waiting for the lock: the caller's SIGSTOP fails with EPERM" grep -qi "not permitted" "$SCRATCH/stop.err"
check "setuid, waiting: the launcher is not stopped" bash -c "! grep -q '^State:.*T' /proc/$DRV/status"
release_lock
check "setuid: once the lock is free, it places the vCPU" wait_until 15 grep -qx APPLIED "$SCRATCH/drv.out"
expect_eq "setuid, after the locked section: the caller's real uid is back" "$(id -u nobody)" "$(uid_of "$DRV")"
as_nobody kill -0 "$DRV"
expect_eq "setuid, after the locked section: the caller may signal it again" 0 "$?"
# The release is a locked section too: held at its start (the test has the lock again), the
# driver is shielded the same way, and its sets wait for it.
hold_lock 8>&- # (the holder must not keep the driver's stdin open)
exec 8>&-
wait_until 5 uid_is "$DRV" 0
expect_eq "setuid, releasing (waiting for the lock): its real uid is root" 0 "$(uid_of "$DRV")"
check "setuid, releasing: the caller's SIGSTOP is refused (EPERM)" stop_refused "$DRV"
kill -TSTP "$DRV"
sleep 0.3
check "setuid, releasing: SIGTSTP (a terminal sends it past that check) is ignored" \
	bash -c "! grep -q '^State:.*T' /proc/$DRV/status"
kill -CONT "$DRV"
check "setuid, releasing: its sets are still there meanwhile" bash -c "! [ -z \"\$(find '$M' -mindepth 1 -type d)\" ]"
release_lock
wait "$DRVW"
expect_eq "setuid driver: released and exited 0" 0 "$?"
check "setuid driver: no residue" no_sets

# --- setuid: the journal's locks shield it the same way ----------------------------------------
# (journaldrive: the journal's locks as the launcher takes them, for a setuid copy run as nobody
# with a journal directory of the test's.)
cp "$QL_BUILD_DIR/tests/journaldrive" "$SU/journaldrive"
chown root:root "$SU/journaldrive"
chmod 4755 "$SU/journaldrive"
JD=$SCRATCH/journal
mkdir -m 700 "$JD"
install -m 600 /dev/null "$JD/.lock"
KNOB=$SCRATCH/knob
echo old >"$KNOB"
mkfifo "$SCRATCH/jin"
# jcmd CMD ANSWER: sends CMD, waits for ANSWER as the driver's last line
jcmd() { echo "$1" >&7; wait_until 15 bash -c "tail -n1 '$SCRATCH/jd.out' | grep -q '^$2'"; }
stopped() { grep -q '^State:.*T' "/proc/$1/status"; }
hold_lock "$JD/.lock"
as_nobody "$SU/journaldrive" "$JD" "$KNOB" 1500 <"$SCRATCH/jin" >"$SCRATCH/jd.out" 2>"$SCRATCH/jd.err" &
JDW=$!
register_pid "$JDW"
exec 7>"$SCRATCH/jin"
wait_until 5 grep -q '^PID' "$SCRATCH/jd.out"
JDP=$(awk '/^PID/ {print $2}' "$SCRATCH/jd.out")
register_pid "$JDP"
expect_eq "journal driver: started as the caller" "$(id -u nobody)" "$(uid_of "$JDP")"
# a wait that ends in failure lifts the shield too
jcmd "set never" ERR
check "setuid, the journal's lock held past its bound: the change fails naming the holder" \
	grep -q "process $HOLDER has held the journal's lock" "$SCRATCH/jd.out"
expect_eq "... and its real uid is the caller's again" "$(id -u nobody)" "$(uid_of "$JDP")"
expect_eq "... the knob untouched" old "$(cat "$KNOB")"
# a wait that ends when the holder lets go
echo "set new" >&7
wait_until 5 uid_is "$JDP" 0
expect_eq "setuid, waiting for the journal's lock: its real uid is root" 0 "$(uid_of "$JDP")"
check "setuid, waiting for the journal's lock: the caller's SIGSTOP is refused (EPERM)" stop_refused "$JDP"
kill -TSTP "$JDP"
sleep 0.2
check "setuid, waiting for the journal's lock: SIGTSTP is ignored" bash -c "! stopped $JDP"
kill -CONT "$JDP"
release_lock
check "once the journal's lock is free, the change is made" wait_until 10 grep -qx SET "$SCRATCH/jd.out"
expect_eq "... the knob written" new "$(cat "$KNOB")"
expect_eq "after the journal's locked section: the caller's real uid is back" "$(id -u nobody)" "$(uid_of "$JDP")"
# the hugepage start-up lock, held across sections under the directory's lock
jcmd huge HUGE
expect_eq "setuid, holding the hugepage start-up lock: its real uid is root" 0 "$(uid_of "$JDP")"
check "setuid, holding the hugepage start-up lock: the caller's SIGSTOP is refused (EPERM)" stop_refused "$JDP"
jcmd "set newer" SET
expect_eq "a locked section inside it: the knob written" newer "$(cat "$KNOB")"
expect_eq "... and its end does not lift the hugepage lock's shield" 0 "$(uid_of "$JDP")"
jcmd unhuge UNHUGE
expect_eq "the hugepage start-up lock let go: the caller's real uid is back" "$(id -u nobody)" "$(uid_of "$JDP")"
# SIGTSTP is signal 20: bit 19 of SigIgn
tstp_heeded() { (( ((0x$(awk '/^SigIgn:/ {print $2}' "/proc/$1/status") >> 19) & 1) == 0 )); }
check "... and the terminal's stop signals are no longer ignored" tstp_heeded "$JDP"
# the VFIO start-up lock
jcmd vfio VFIO
expect_eq "setuid, holding the VFIO start-up lock: its real uid is root" 0 "$(uid_of "$JDP")"
jcmd unvfio UNVFIO
expect_eq "the VFIO start-up lock let go: the caller's real uid is back" "$(id -u nobody)" "$(uid_of "$JDP")"
exec 7>&-
wait "$JDW"
expect_eq "journal driver: gave its records back and exited 0" 0 "$?"
expect_eq "... the knob as found" old "$(cat "$KNOB")"
