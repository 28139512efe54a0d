#!/bin/bash
# vCPU pinning without cpusets (sched_setaffinity) and scheduling, against the real kernel:
# unprivileged pinning as `nobody`, isolate_cpus true/auto without a cpuset backend, scheduler
# policies read back from the kernel; a guest another monitor lets run before the launcher's cont,
# and -incoming, refused.
. "$(dirname "$0")/lib.sh"
NTESTS=37
plan $NTESTS

NCPU=$(nproc --all)
[ "$NCPU" -ge 2 ] || skip_all "needs 2 host CPUs"
PIN=$((NCPU - 1))
ALL=$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status)
# No cpuset backend anywhere: an existing, non-empty directory that is no cgroup.
NOCG=$SCRATCH/not-a-cpuset
mkdir -p "$NOCG/x"
export QEMU_LAUNCHER_CPUSET_MOUNT_PATH=$NOCG


vm_def() { # vm_def NAME LAUNCHER_LINES
	{
		printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n%s\nqemu:\n' "$QEMU" "$2"
		guest_opts idle
		printf -- '- smp: [ 2, sockets: 1, cores: 2, threads: 1 ]\n'
		printf -- '- name: [ %s, debug-threads: on ]\n- S\n' "$1"
	} | def "$1"
}
# run_bg NAME [nobody|idle]: starts the launcher in the background (as nobody, or as SCHED_IDLE)
# and waits for the paused guest.
run_bg() {
	Q="" # stop_bg must not kill an earlier run's qemu pid when this one has none
	fresh_logs "$1"
	if [ "${2:-}" = idle ]; then
		timeout -s KILL 60 chrt -i 0 "$QL" -d "$1" >"$LOUT" 2>"$LERR" </dev/null &
	elif [ "${2:-}" = nobody ]; then
		timeout -s KILL 60 setpriv --reuid=65534 --regid=65534 --clear-groups \
			env QEMU_LAUNCHER_CONFIG_DIR="$CONF" QEMU_LAUNCHER_CPUSET_MOUNT_PATH="$NOCG" \
			"$QL" -d "$1" >"$LOUT" 2>"$LERR" </dev/null &
	else
		timeout -s KILL 60 "$QL" -d "$1" >"$LOUT" 2>"$LERR" </dev/null &
	fi
	LPID=$!
	register_pid "$LPID"
	if wait_until 20 grep -q "guest left paused" "$LERR"; then
		# this launcher's own qemu (by name, a foreign qemu with the same -name could be taken)
		Q=$(sed -n 's/.*qemu running as pid \([0-9]*\).*/\1/p' "$LERR" | head -n1)
		[ -n "$Q" ] && return 0
	fi
	diag "launcher output:" "$(cat "$LERR")"
	return 1
}
# Kills qemu; the launcher then exits 128+9 (qemu's death by SIGKILL). That status is expected
# and no result, so it must not become this script's exit status when stop_bg runs last.
stop_bg() {
	[ -n "${Q:-}" ] && kill -KILL "$Q" 2>/dev/null
	wait "$LPID" 2>/dev/null
	return 0
}

# --- unprivileged affinity pinning ----------------------------------------------------------
chmod 755 "$CONF"
vm_def aff "  isolate_cpus: false
  vcpu_pinning: [ $PIN ]"
chmod 644 "$CONF/aff.yml"
if setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$QL"; then
	check "as nobody with isolate_cpus: false: VM started and pinned" run_bg aff nobody
	expect_eq "as nobody: qemu runs as uid 65534" 65534 "$(awk '/^Uid:/ {print $2}' "/proc/$Q/status")"
	V0=$(thread_of "$Q" "CPU 0/TCG")
	V1=$(thread_of "$Q" "CPU 1/TCG")
	expect_eq "as nobody: vCPU 0 affinity is host CPU $PIN" "$PIN" "$(allowed_of "$Q" "$V0")"
	expect_eq "as nobody: unpinned vCPU 1 keeps the launcher's affinity" "$ALL" "$(allowed_of "$Q" "$V1")"
	expect_eq "as nobody: qemu's main thread keeps the launcher's affinity" "$ALL" "$(allowed_of "$Q" "$Q")"
	# (-v names the backend: "CPU isolation backend: NAME")
	check "as nobody: the backend is affinity (-v names it, no task moved into a set)" \
		bash -c "grep -qx 'qemu-launcher: CPU isolation backend: affinity' '$LERR' &&
			! grep -q 'CPU isolation backend: [^a]' '$LERR' && ! grep -q 'write .*/tasks <- ' '$LERR' &&
			grep -q 'sched_setaffinity thread $V0 (vCPU 0) -> $PIN' '$LERR'"
	check "as nobody: -d traces sched_setaffinity" grep -q "sched_setaffinity thread $V0 (vCPU 0) -> $PIN" "$LERR"
	# launch.c give_way_to_qemu: any user may switch to SCHED_BATCH
	expect_eq "as nobody: the launcher gives way to qemu (SCHED_BATCH)" "SCHED_BATCH 0" "$(policy_of "$(launcher_of "$LPID")")"
	expect_eq "as nobody: qemu's main thread keeps SCHED_OTHER" "SCHED_OTHER 0" "$(policy_of "$Q")"
	stop_bg
	expect_eq "as nobody: no directory created at the mount path" "x" "$(ls "$NOCG")"

	vm_def affrt "  isolate_cpus: false
  scheduler: fifo
  priority: 5
  vcpu_pinning: [ $PIN ]"
	chmod 644 "$CONF/affrt.yml"
	timeout -s KILL 30 setpriv --reuid=65534 --regid=65534 --clear-groups \
		env QEMU_LAUNCHER_CONFIG_DIR="$CONF" "$QL" -v affrt >/dev/null 2>"$SCRATCH/affrt.err" </dev/null
	expect_eq "as nobody, SCHED_FIFO: exit 125" 125 $?
	check "as nobody, SCHED_FIFO: the error names CAP_SYS_NICE" grep -q "setting SCHED_FIFO on vCPU 0 needs CAP_SYS_NICE (run as root)" "$SCRATCH/affrt.err"
	# by its pid from this launcher's own -v log, not by its -name (another VM may have it)
	RTQ=$(sed -n 's/.*qemu running as pid \([0-9]*\).*/\1/p' "$SCRATCH/affrt.err" | head -n1)
	check "as nobody, SCHED_FIFO: qemu is gone" wait_until 5 pid_gone "$RTQ"
else
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13; do skip "nobody cannot execute $QL (build dir not world-readable)"; done
fi

# --- RT safety: a FIFO vCPU where ordinary tasks may still run --------------------------------
vm_def rtaff "  isolate_cpus: false
  scheduler: fifo
  priority: 5
  vcpu_pinning: [ $PIN ]"
"$QL" --dry-run rtaff >/dev/null 2>"$SCRATCH/rtaff.err"
check "fifo vCPUs without isolation: the warning names the throttling gaps the guest sees" \
	grep -Eq "warning: .*fifo vCPUs on CPUs where ordinary tasks may still run.*stalls for up to [0-9]+ ms at a time" "$SCRATCH/rtaff.err"

# --- isolate_cpus without a cpuset backend --------------------------------------------------
vm_def isotrue "  isolate_cpus: true
  vcpu_pinning: [ $PIN ]"
timeout -s KILL 30 "$QL" isotrue >/dev/null 2>"$SCRATCH/isotrue.err" </dev/null
expect_eq "isolate_cpus: true without a cpuset backend: exit 125" 125 $?
check "isolate_cpus: true: the message says why" grep -q "isolate_cpus is true but no cpuset backend is usable" "$SCRATCH/isotrue.err"

vm_def isoauto "  vcpu_pinning: [ $PIN ]
  emulator_pinning: 0"
check "isolate_cpus: auto without a cpuset backend: VM started" run_bg isoauto
check "isolate_cpus: auto: warns that CPUs are pinned but not isolated" grep -q "warning: CPUs are pinned but not isolated" "$LERR"
V0=$(thread_of "$Q" "CPU 0/TCG")
V1=$(thread_of "$Q" "CPU 1/TCG")
expect_eq "auto -> affinity: vCPU 0 on host CPU $PIN" "$PIN" "$(allowed_of "$Q" "$V0")"
expect_eq "auto -> affinity, emulator_pinning: main thread on CPU 0" 0 "$(allowed_of "$Q" "$Q")"
expect_eq "auto -> affinity, emulator_pinning: unpinned vCPU 1 on CPU 0" 0 "$(allowed_of "$Q" "$V1")"
stop_bg

# --- scheduling -----------------------------------------------------------------------------
if [ "$(id -u)" = 0 ]; then
	vm_def rronly "  scheduler: rr
  priority: 7"
	check "scheduler without pinning: VM started" run_bg rronly
	V0=$(thread_of "$Q" "CPU 0/TCG")
	V1=$(thread_of "$Q" "CPU 1/TCG")
	expect_eq "scheduler without pinning: vCPU 0 SCHED_RR 7" "SCHED_RR|SCHED_RESET_ON_FORK 7" "$(policy_of "$V0")"
	expect_eq "scheduler without pinning: vCPU 1 SCHED_RR 7" "SCHED_RR|SCHED_RESET_ON_FORK 7" "$(policy_of "$V1")"
	expect_eq "scheduler without pinning: main thread stays SCHED_OTHER" "SCHED_OTHER 0" "$(policy_of "$Q")"
	expect_eq "scheduler without pinning: the launcher gives way to qemu (SCHED_BATCH)" "SCHED_BATCH 0" "$(policy_of "$(launcher_of "$LPID")")"
	check "scheduler without pinning: warns about starving other tasks" grep -q "without pinning.*sched_rt_runtime_us" "$LERR"
	stop_bg

	# a policy the caller gave the launcher is its own choice: kept, and qemu inherits it
	vm_def idlel "  vcpu_pinning: [ $PIN ]"
	check "launcher started as SCHED_IDLE: VM started" run_bg idlel idle
	expect_eq "launcher started as SCHED_IDLE: it keeps SCHED_IDLE" "SCHED_IDLE 0" "$(policy_of "$(launcher_of "$LPID")")"
	expect_eq "launcher started as SCHED_IDLE: qemu's main thread inherited it" "SCHED_IDLE 0" "$(policy_of "$Q")"
	stop_bg

	vm_def dl "  scheduler: deadline
  sched_runtime: 1000000
  sched_deadline: 10000000
  sched_period: 10000000"
	check "SCHED_DEADLINE: VM started" run_bg dl
	V0=$(thread_of "$Q" "CPU 0/TCG")
	expect_eq "SCHED_DEADLINE: vCPU 0 reads back runtime/deadline/period" "SCHED_DEADLINE|SCHED_RESET_ON_FORK 1000000/10000000/10000000" "$(chrt -p "$V0" | awk -F': ' '/policy/ {p=$2} /parameters/ {print p, $2}')"
	stop_bg
else
	for i in 1 2 3 4 5 6 7 8 9 10 11; do skip "scheduling needs root"; done
fi

# --- the guest runs before the launcher's cont: refused -----------------------------------------
# An HMP monitor whose input holds `c`: qemu runs it as soon as its main loop does, before or
# after the launcher's monitor is negotiated (a RESUME before the pinning ends, or none at cont).
pinned_def() { # pinned_def NAME EXTRA_QEMU_LINES
	{
		printf 'launcher:\n  binary: %s\n  isolate_cpus: false\n  vcpu_pinning: [ %s ]\nqemu:\n' "$QEMU" "$PIN"
		guest_opts idle
		printf '%s' "$2"
	} | def "$1"
}
mkfifo "$SCRATCH/hmp.in" "$SCRATCH/hmp.out"
pinned_def hmpcont "- chardev: [ pipe, id: hmp, path: $SCRATCH/hmp ]
- mon: [ chardev: hmp, mode: readline ]
"
printf 'c\n' >"$SCRATCH/hmp.in" &
register_pid $!
timeout -s KILL 30 "$QL" -v hmpcont >/dev/null 2>"$SCRATCH/hmpcont.err" </dev/null
rc=$?
expect_eq "an HMP monitor's c before the launcher's cont: exit 125" 125 "$rc"
[ "$rc" = 125 ] || diag "launcher output:" "$(cat "$SCRATCH/hmpcont.err")"
check "an HMP monitor's c: the message says another monitor let the guest run" \
	grep -Eq "resumed \(RESUME\) before it was pinned: another monitor let it run|without starting the guest \(no RESUME\): another monitor" "$SCRATCH/hmpcont.err"
Q=$(sed -n 's/.*qemu running as pid \([0-9]*\).*/\1/p' "$SCRATCH/hmpcont.err")
spawned_qemu_gone() { [ -n "$Q" ] && pid_gone "$Q"; }
check "an HMP monitor's c: qemu is gone" wait_until 5 spawned_qemu_gone

# -incoming: cont only sets qemu to start the guest once migrated, and no RESUME comes.
pinned_def incoming "- incoming: defer
"
timeout -s KILL 30 "$QL" incoming >/dev/null 2>"$SCRATCH/incoming.err" </dev/null
expect_eq "qemu waiting for a migration (-incoming): exit 125" 125 $?
check "-incoming: the message says cont did not start the guest" \
	grep -q "qemu answered cont without starting the guest (no RESUME)" "$SCRATCH/incoming.err"
