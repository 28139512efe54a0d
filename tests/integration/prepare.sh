#!/bin/bash
# The two steps of a cpuset v1 start (issue 11): while qemu builds its machine the launcher
# prepares everything that needs no thread id (sets, pool, qemu in its VM set, the pool shrunk),
# and only once query-cpus-fast names the vCPU threads does it move them and narrow the VM set.
# Checked in the window between the two (a stand-in qemu pauses before answering query-cpus-fast)
# against the real kernel, in a delegated subtree: the layout, that another launcher sees the
# CPU as taken and changes nothing, and the final layout after cont. Faults in and around the
# window (signals, a failing vCPU move) are faults.sh's.
. "$(dirname "$0")/lib.sh"
NTESTS=21
plan $NTESTS

command -v python3 >/dev/null || skip_all "python3 is needed for the stand-in qemu"
require_cpuset_v1

TD=qltest-prepare-$$
nested_delegated_cpuset "$TD" # the lock on M's parent is this test's own
TD=$TD/m                      # the cpuset paths expected below are M's
M_CPUS=$(cat "$M/cpuset.cpus")
delegated_sleeper

FAKE=$SCRATCH/fake-qemu
install -m 755 "$(dirname "$0")/fake-qemu.py" "$FAKE"

# stand_in NAME MARK [LAUNCHER-KEY-LINES]: a 2-vCPU stand-in, vCPU 0 on $PIN, pausing 4 s before
# it answers query-cpus-fast.
stand_in() {
	mkdir -p "$2"
	{
		printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  vcpu_pinning: [ %s ]\n' "$FAKE" "$PIN"
		[ -n "${3:-}" ] && printf '%s\n' "$3"
		printf 'qemu:\n- fake: "pause@cpus"\n- fakemark: %s\n- fakepause: "4"\n' "$2"
	} | def "$1"
}
sent() { grep -qx "cmd $1" "$2/log" 2>/dev/null; }
in_set() { grep -qx "$2" "$1/tasks" 2>/dev/null; }

# --- the window: prepared, vCPUs not placed yet ---------------------------------------------
MK=$SCRATCH/w1
stand_in w1 "$MK"
ql_start w1 -d
wait_until 10 test -e "$MK/at-cpus"
FP=$(cat "$MK/pid")
V=$M/qemu/w1
check "window: qemu's process is in its VM set" wait_until 5 in_set "$V" "$FP"
# the prepare runs while the stand-in answers: its last step is the pool giving up CPU $PIN
wait_until 5 grep -qx "$POOL_EXPECT" "$M/qemu/pool/cpuset.cpus"
expect_eq "window: the vCPU set exists and is still empty" "" "$(cat "$V/cpu$PIN/tasks" 2>&1)"
expect_eq "window: the pool has given up CPU $PIN already" "$POOL_EXPECT" "$(cat "$M/qemu/pool/cpuset.cpus")"
expect_eq "window: the subtree's task is in the pool" "/$TD/qemu/pool" "$(cat "/proc/$SLEEPER/cpuset")"
expect_eq "window: the VM set spans the pool's CPUs while qemu starts in it" "$M_CPUS" "$(cat "$V/cpuset.cpus")"
expect_eq "window: so qemu is not confined to the vCPU's CPU" "$M_CPUS" "$(allowed_of "$FP" "$FP")"
check "window: cont not sent" bash -c "! grep -qx 'cmd cont' '$MK/log'"

# Another VM on the same CPU, started in the window: refused, naming the first, nothing touched.
MK2=$SCRATCH/w2
stand_in w2 "$MK2"
timeout -s KILL 30 "$QL" w2 >/dev/null 2>"$SCRATCH/w2.err" </dev/null
expect_eq "window: a second VM on CPU $PIN is refused" 125 $?
check "... naming the VM that holds the CPU" grep -q "host CPU $PIN is pinned by running VM \`w1\`" "$SCRATCH/w2.err"
check "... and the first VM's sets are untouched" in_set "$V" "$FP"
expect_eq "... no set of the second VM" "no" "$([ -e "$M/qemu/w2" ] && echo yes || echo no)"

# --- after query-cpus-fast: the vCPU moves, the VM set narrowed -------------------------------
wait_until 15 sent cont "$MK"
check "placed: cont sent" sent cont "$MK"
V0=$(awk '{print $1}' "$V/cpu$PIN/tasks" 2>/dev/null)
expect_eq "placed: one vCPU thread in cpu$PIN" 1 "$(wc -l <"$V/cpu$PIN/tasks")"
expect_eq "placed: qemu's main thread in the pool" "/$TD/qemu/pool" "$(cpuset_of "$FP" "$FP")"
expect_eq "placed: the VM set keeps the vCPU's CPU only" "$PIN" "$(cat "$V/cpuset.cpus")"
check "placed: -d traced the vCPU move" grep -q "write $M/qemu/w1/cpu$PIN/tasks <- $V0" "$LERR"
kill -TERM "$(launcher_of "$LPID")"
wait "$LPID"
expect_eq "stopped: exit 0" 0 $?
wait_until 5 test ! -e "$M/qemu"
expect_eq "stopped: no set left, the subtree's task back" "none /$TD" \
	"$( (cd "$M" && find . -mindepth 1 -type d | grep -q . && echo sets) || echo none) $(cat "/proc/$SLEEPER/cpuset")"

# --- emulator_pinning: qemu starts in its emulator set, its home ------------------------------
EMU=$((PIN == 0 ? 1 : 0))
MK=$SCRATCH/e1
stand_in e1 "$MK" "  emulator_pinning: [ $EMU ]"
ql_start e1
wait_until 10 test -e "$MK/at-cpus"
FP=$(cat "$MK/pid")
check "emulator_pinning, window: qemu's process is in the emulator set" \
	wait_until 5 in_set "$M/qemu/e1/emulator" "$FP"
expect_eq "emulator_pinning, window: the VM set has the vCPU and emulator CPUs" \
	"$(printf '%s\n' "$EMU" "$PIN" | sort -n | paste -sd, | sed 's/^0,1$/0-1/')" "$(cat "$M/qemu/e1/cpuset.cpus")"
wait_until 15 sent cont "$MK"
kill -TERM "$(launcher_of "$LPID")"
wait "$LPID"
expect_eq "emulator_pinning: exit 0, no set left" "0 none" \
	"$? $(wait_until 5 test ! -e "$M/qemu" && echo none || echo sets)"
