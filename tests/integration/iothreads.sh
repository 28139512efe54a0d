#!/bin/bash
# I/O threads and core scheduling: `iothread_pinning` places qemu's `-object iothread` threads
# (found with query-iothreads) on their host CPUs before the guest runs, with the affinity
# backend and with cpuset v1 in a delegated subtree, and keeps them there through the rescans;
# an id the definition does not create, or CPUs of a vCPU, are positioned errors before anything
# starts. `core_scheduling` is refused where the kernel has no core scheduling (vm) or warned
# about (auto). Real qemu under TCG; only processes this script started are touched.
. "$(dirname "$0")/lib.sh"
NTESTS=30
plan $NTESTS
require_cpuset_v1
IOCPU=0

io_def() { # io_def NAME ISOLATE IOCPU [EXTRA LAUNCHER LINES]
	{
		printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  isolate_cpus: %s\n' "$QEMU" "$2"
		printf '  vcpu_pinning: [ %s ]\n  iothread_pinning:\n    io0: %s\n%s' "$PIN" "$3" "${4:-}"
		printf 'qemu:\n'
		guest_opts idle
		printf -- '- object: [ iothread, id: io0 ]\n- name: [ %s, debug-threads: on ]\n- S\n' "$1"
	} | def "$1"
}

# --dry-run shows the plan
io_def dry false "$IOCPU"
"$QL" --dry-run dry >"$SCRATCH/dry.out" 2>&1
expect_eq "--dry-run: exit 0" 0 "$?"
check "--dry-run: lists the I/O thread's CPUs" grep -q "^# I/O thread io0 -> host CPUs $IOCPU\$" "$SCRATCH/dry.out"

# --- affinity backend ----------------------------------------------------------------------------
io_def aff false "$IOCPU" "  iothread_scheduler: fifo
  iothread_priority: 5
"
ql_start aff -d
if wait_until 20 grep -q "guest left paused" "$LERR"; then
	AL=$(launcher_of "$LPID")
	AQ=$(child_of "$AL")
	register_pid "$AL"
	register_pid "$AQ"
	IO=$(thread_of "$AQ" "IO io0")
	V0=$(thread_of "$AQ" "CPU 0/TCG")
	expect_eq "affinity: the I/O thread runs on CPU $IOCPU" "$IOCPU" "$(allowed_of "$AQ" "$IO")"
	expect_eq "affinity: vCPU 0 runs on CPU $PIN" "$PIN" "$(allowed_of "$AQ" "$V0")"
	check "affinity: -d traced the I/O thread's placement" grep -q "I/O thread io0 (thread $IO) -> host CPUs $IOCPU" "$LERR"
	expect_eq "iothread_scheduler: the I/O thread runs FIFO 5 (reset on fork)" "SCHED_FIFO|SCHED_RESET_ON_FORK 5" "$(policy_of "$IO")"
	expect_eq "iothread_scheduler: the vCPUs keep their policy" "SCHED_OTHER 0" "$(policy_of "$V0")"
	sleep 1.3 # past the 0.1 s and 1 s rescans, which reset other threads' affinity
	expect_eq "affinity: the rescans leave the I/O thread where it is" "$IOCPU" "$(allowed_of "$AQ" "$IO")"
	kill -TERM "$AL"
	wait "$LPID"
	expect_eq "affinity: SIGTERM, exit 0" 0 "$?"
else
	diag "$(cat "$LERR")"
	for i in 1 2 3 4 5 6 7; do not_ok "affinity VM with an I/O thread did not start"; done
fi

# --- cpuset v1 -------------------------------------------------------------------------------------
TD=qltest-io-$$
nested_delegated_cpuset "$TD" # the lock on M's parent is this test's own
TD=$TD/m                      # the cpuset paths expected below are M's
io_def cs auto "$IOCPU"
ql_start cs -d
if wait_until 20 grep -q "guest left paused" "$LERR"; then
	CL=$(launcher_of "$LPID")
	CQ=$(child_of "$CL")
	register_pid "$CL"
	register_pid "$CQ"
	IO=$(thread_of "$CQ" "IO io0")
	V0=$(thread_of "$CQ" "CPU 0/TCG")
	expect_eq "cpuset: the I/O thread stays with qemu's other threads in the pool" "/$TD/qemu/pool" "$(cpuset_of "$CQ" "$IO")"
	expect_eq "cpuset: the I/O thread runs on CPU $IOCPU" "$IOCPU" "$(allowed_of "$CQ" "$IO")"
	expect_eq "cpuset: vCPU 0 alone in its set on CPU $PIN" "/$TD/qemu/cs/cpu$PIN $PIN" "$(cpuset_of "$CQ" "$V0") $(allowed_of "$CQ" "$V0")"
	sleep 1.3
	expect_eq "cpuset: after the rescans the I/O thread is still on CPU $IOCPU" "$IOCPU" "$(allowed_of "$CQ" "$IO")"
	"$QL" --status cs >"$SCRATCH/st1" 2>&1
	expect_eq "--status: placed as the definition says, exit 0" 0 "$?"
	# (inside the pool it cannot be moved: the pool has CPU $IOCPU only)
	echo "$IO" >"$M/tasks"
	taskset -p -c "$PIN" "$IO" >/dev/null
	"$QL" --status cs >"$SCRATCH/st2" 2>&1
	expect_eq "--status: the I/O thread moved by hand, exit 1" 1 "$?"
	check "--status: ... flagged" grep -q "^  ! I/O thread io0 (thread $IO) may run on CPUs $PIN, iothread_pinning says $IOCPU\$" "$SCRATCH/st2"
	kill -TERM "$CL"
	wait "$LPID"
	expect_eq "cpuset: SIGTERM, exit 0" 0 "$?"
	check "cpuset: no set left" test -z "$(find "$M" -mindepth 1 -type d)"
else
	diag "$(cat "$LERR")"
	for i in 1 2 3 4 5 6 7 8 9; do not_ok "cpuset VM with an I/O thread did not start"; done
fi

# --- refusals before anything starts ---------------------------------------------------------------
{
	printf 'launcher:\n  binary: %s\n  isolate_cpus: false\n  iothread_pinning:\n    nosuch: %s\n' "$QEMU" "$IOCPU"
	printf 'qemu:\n- object: [ iothread, id: io0 ]\n- name: [ nosuch, debug-threads: on ]\n'
} | def nosuch
"$QL" -v nosuch >/dev/null 2>"$SCRATCH/nosuch.err" </dev/null
expect_eq "an id the definition does not create: exit 125" 125 "$?"
check "... a positioned error naming it" grep -q "nosuch.yml:5:5: iothread_pinning: I/O thread \`nosuch\`: no \`- object: \[iothread, id: ...\]\` in \`qemu:\` creates it" "$SCRATCH/nosuch.err"
check "... qemu never started (-v names no qemu pid)" bash -c "! grep -q 'qemu running as pid' '$SCRATCH/nosuch.err'"
io_def overlap false "$PIN"
"$QL" overlap >/dev/null 2>"$SCRATCH/overlap.err" </dev/null
expect_eq "an I/O thread on a vCPU's CPU: exit 125" 125 "$?"
check "... says I/O threads belong off the vCPUs" grep -q "overlap.yml:[0-9]*:[0-9]*: iothread_pinning: I/O thread \`io0\`: its CPUs include a vCPU's host CPU" "$SCRATCH/overlap.err"

io_def iodl false "$IOCPU" "  iothread_scheduler: deadline
"
"$QL" --check iodl >/dev/null 2>"$SCRATCH/iodl.err"
expect_eq "iothread_scheduler: deadline is refused, exit 125" 125 "$?"
check "... with its position" grep -q "iodl.yml:[0-9]*:[0-9]*: \`iothread_scheduler\` must be one of batch, fifo, idle, other, rr, got \`deadline\`" "$SCRATCH/iodl.err"
io_def iofifo false "$IOCPU" "  iothread_scheduler: rr
"
"$QL" --check iofifo >/dev/null 2>"$SCRATCH/iofifo.err"
expect_eq "iothread_scheduler: rr without iothread_priority, exit 125" 125 "$?"

# --- core scheduling --------------------------------------------------------------------------------
io_def core false "$IOCPU" "  core_scheduling: vm
"
# Whether the kernel has it is asked of the kernel, as src/sched_core.c does (a GET on oneself:
# EINVAL without CONFIG_SCHED_CORE, ENODEV without SMT), not of the launcher under test.
kernel_has_core_sched() {
	python3 - <<'PY'
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
cookie = ctypes.c_uint64(0)
U = ctypes.c_ulong
# prctl(PR_SCHED_CORE = 62, PR_SCHED_CORE_GET = 0, pid 0 = self, PIDTYPE_PID = 0, &cookie)
sys.exit(0 if libc.prctl(ctypes.c_int(62), U(0), U(0), U(0), ctypes.byref(cookie)) == 0 else 1)
PY
}
if kernel_has_core_sched; then
	"$QL" --check core >/dev/null 2>"$SCRATCH/corecheck.err"
	expect_eq "core_scheduling: vm where the kernel has it: --check accepts it" 0 "$?"
	for i in 1 2 3; do skip "the kernel has core scheduling (the refusal is tested where it has none)"; done
else
	"$QL" -v core >/dev/null 2>"$SCRATCH/core.err" </dev/null
	expect_eq "core_scheduling: vm on a kernel without it: exit 125" 125 "$?"
	check "... the message names the missing kernel feature" grep -q "core.yml:[0-9]*:[0-9]*: core_scheduling: the kernel has no core scheduling" "$SCRATCH/core.err"
	check "... qemu never started (-v names no qemu pid)" bash -c "! grep -q 'qemu running as pid' '$SCRATCH/core.err'"
	io_def coreauto false "$IOCPU" "  core_scheduling: auto
"
	"$QL" --dry-run coreauto >/dev/null 2>"$SCRATCH/coreauto.err"
	check "core_scheduling: auto without it: a warning, and the plan goes on" grep -q "warning: .*core_scheduling: auto: the kernel has no core scheduling" "$SCRATCH/coreauto.err"
fi
