#!/bin/bash
# --status against the real kernel: a VM pinned with the cpuset v1 backend in a delegated test
# subtree (as pin-cpuset.sh) is found from its sets, every qemu thread is listed with what the
# kernel says, a consistent VM exits 0, and threads this script moves by hand (a vCPU out of its
# set, a non-vCPU thread into a vCPU set, a vCPU's affinity) are flagged with exit 1. A VM pinned
# with the affinity backend is found through its launcher. Only processes this script started are
# touched.
. "$(dirname "$0")/lib.sh"
NTESTS=33
plan $NTESTS

require_cpuset_v1

TD=qltest-status-$$
nested_delegated_cpuset "$TD" # the lock on M's parent is this test's own
TD=$TD/m                      # the cpuset paths expected below are M's
# no cgroup v2 prefix of anyone else is looked at
export QEMU_LAUNCHER_CGROUP2_ROOT=$SCRATCH/no-cgroup2


VM=st$$
{
	printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n' "$QEMU"
	printf '  scheduler: fifo\n  priority: 7\n'
	printf '  vcpu_pinning:\n    0:\n      0:\n        0: %s\n' "$PIN"
	printf 'qemu:\n'
	guest_opts idle
	printf -- '- smp: [ 2, sockets: 1, cores: 2, threads: 1 ]\n'
	printf -- '- name: [ %s, debug-threads: on ]\n- S\n' "$VM"
} | def "$VM"

ql_start "$VM" -d
if ! wait_until 20 grep -q "guest left paused" "$LERR"; then
	diag "launcher output:" "$(cat "$LERR")"
	fail_rest "the pinned VM did not start"
fi
STARTED=$SECONDS
L=$(launcher_of "$LPID")
Q=$(child_of "$L")
# timeout(1) does not pass a SIGKILL on: the cleanup must end the launcher and qemu by pid
register_pid "$L"
register_pid "$Q"
V0=$(thread_of "$Q" "CPU 0/TCG")
V1=$(thread_of "$Q" "CPU 1/TCG")
IO=$(thread_of "$Q" "IO mon_iothread")

"$QL" --status "$VM" >"$SCRATCH/s1" 2>&1
expect_eq "a VM placed as its definition says: exit 0" 0 $?
check "names the VM, its qemu pid and its set directory" \
	grep -q "^VM $VM: qemu pid $Q, cpuset v1 at $M/qemu/$VM\$" "$SCRATCH/s1"
check "lists vCPU 0 with its allowed CPUs, FIFO 7 and its set" \
	grep -Eq "^  $V0 +CPU 0/TCG +$PIN +fifo 7 +/$TD/qemu/$VM/cpu$PIN\$" "$SCRATCH/s1"
check "lists the unpinned vCPU 1 in the pool" \
	grep -Eq "^  $V1 +CPU 1/TCG +[0-9,-]+ +other +/$TD/qemu/pool\$" "$SCRATCH/s1"
check "lists qemu's main thread" grep -Eq "^  $Q +qemu-system-x86 " "$SCRATCH/s1"
expect_eq "every qemu thread is listed" "$(ls /proc/$Q/task | wc -l)" "$(grep -Ec '^  [0-9]+ ' "$SCRATCH/s1")"
check "no difference is flagged" bash -c "! grep -q '^  !' '$SCRATCH/s1'"

"$QL" --status >"$SCRATCH/all" 2>&1
check "without NAME the VM is listed too" grep -q "^VM $VM: qemu pid $Q" "$SCRATCH/all"

"$QL" --status nosuchvm$$ >"$SCRATCH/none" 2>&1
expect_eq "a NAME that does not run: exit 1" 1 $?
check "... and says so" grep -q "VM nosuchvm$$ is not running" "$SCRATCH/none"
"$QL" --status a b >/dev/null 2>&1
expect_eq "two NAMEs: usage error" 2 $?

# The launcher's rescans (100 ms, 1 s, 5 s after start) would undo a move: wait them out.
while [ $((SECONDS - STARTED)) -lt 7 ]; do sleep 0.5; done

echo "$IO" >"$M/qemu/$VM/cpu$PIN/tasks"
"$QL" --status "$VM" >"$SCRATCH/s2" 2>&1
expect_eq "a non-vCPU thread moved into the vCPU set: exit 1" 1 $?
check "... flagged by TID and name" \
	grep -q "^  ! thread $IO (IO mon_iothread) is not a vCPU but is inside vCPU set cpu$PIN\$" "$SCRATCH/s2"
echo "$IO" >"$M/qemu/pool/tasks"

echo "$V0" >"$M/qemu/pool/tasks"
"$QL" --status "$VM" >"$SCRATCH/s3" 2>&1
expect_eq "vCPU 0 moved out of its set: exit 1" 1 $?
check "... flagged: not in its set" \
	grep -q "^  ! vCPU 0 (thread $V0) is not in its set cpu$PIN but in /$TD/qemu/pool\$" "$SCRATCH/s3"
check "... flagged: may run on other CPUs" grep -q "^  ! vCPU 0 (thread $V0) may run on CPUs .*, vcpu_pinning says host CPU $PIN\$" "$SCRATCH/s3"
check "... the difference count is printed" grep -q "^2 difference(s) from the definitions\$" "$SCRATCH/s3"
echo "$V0" >"$M/qemu/$VM/cpu$PIN/tasks"

chrt -f -p 3 "$V0"
"$QL" --status "$VM" >"$SCRATCH/s4" 2>&1
expect_eq "vCPU 0's priority changed: exit 1" 1 $?
check "... flagged with both priorities" \
	grep -q "^  ! vCPU 0 (thread $V0) runs fifo 3, the definition says fifo 7\$" "$SCRATCH/s4"
chrt -f -p 7 "$V0"
"$QL" --status "$VM" >/dev/null 2>&1
expect_eq "everything put back: exit 0 again" 0 $?

# --- a VM pinned with the affinity backend: no sets, found through its launcher ------------
AVM=sta$$
{
	printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  isolate_cpus: false\n' "$QEMU"
	printf '  vcpu_pinning: [ %s ]\n' "$PIN"
	printf 'qemu:\n'
	guest_opts idle
	printf -- '- smp: 2\n- name: [ %s, debug-threads: on ]\n- S\n' "$AVM"
} | def "$AVM"
ql_start "$AVM" -d
if wait_until 20 grep -q "guest left paused" "$LERR"; then
	AL=$(launcher_of "$LPID")
	AQ=$(child_of "$AL")
	register_pid "$AL"
	register_pid "$AQ"
	AV0=$(thread_of "$AQ" "CPU 0/TCG")
	"$QL" --status "$AVM" >"$SCRATCH/a1" 2>&1
	expect_eq "affinity VM: exit 0" 0 $?
	check "affinity VM: found through its launcher" \
		grep -q "^VM $AVM: qemu pid $AQ, no cgroup sets (affinity backend or not pinned)\$" "$SCRATCH/a1"
	taskset -p -c 0-$PIN "$AV0" >/dev/null
	"$QL" --status "$AVM" >"$SCRATCH/a2" 2>&1
	expect_eq "affinity VM: vCPU 0 widened by hand: exit 1" 1 $?
	check "affinity VM: ... flagged" grep -q "^  ! vCPU 0 (thread $AV0) may run on CPUs 0-$PIN, vcpu_pinning says host CPU $PIN\$" "$SCRATCH/a2"
else
	diag "launcher output:" "$(cat "$LERR")"
	for i in 1 2 3 4; do not_ok "affinity VM did not start"; done
fi

# a qemu whose thread name carries a terminal escape and a C1 control (a user's own qemu names
# its threads as it likes): --status shows them escaped
EVM=esc$$
install -m 755 "$(dirname "$0")/fake-qemu.py" "$SCRATCH/fake-qemu"
printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  isolate_cpus: false\n  vcpu_pinning: [ %s ]\nqemu:\n- fakecomm: "evil\\\\x1b[31m\\\\x9b8m"\n' \
	"$SCRATCH/fake-qemu" "$PIN" | def "$EVM"
ql_start "$EVM" -d
wait_until 20 grep -q "guest started" "$LERR"
EL=$(launcher_of "$LPID")
register_pid "$EL"
"$QL" --status "$EVM" >"$SCRATCH/e1" 2>&1
check "a thread name with an escape sequence: no raw control byte reaches the terminal" \
	bash -c "! grep -q \$'\\033' '$SCRATCH/e1'"
check "... nor a C1 control (U+009B, CSI to some terminals)" bash -c "! grep -q \$'\\xc2\\x9b' '$SCRATCH/e1'"
check "... both are shown escaped" grep -qF 'evil\x1b[31m\xc2\x9b8m' "$SCRATCH/e1"
"$QL" --status --json "$EVM" >"$SCRATCH/e1.json" 2>&1
check "--status --json: no raw escape or C1 control either" \
	bash -c "! grep -q -e \$'\\033' -e \$'\\xc2\\x9b' '$SCRATCH/e1.json' && grep -q 'evil' '$SCRATCH/e1.json'"
kill -TERM "$EL"

# a program that is merely called qemu-launcher (any user can make one) is not a launcher: its
# children are not listed as VMs
mkdir -m 755 "$SCRATCH/fake"
cp /bin/bash "$SCRATCH/fake/qemu-launcher"
"$SCRATCH/fake/qemu-launcher" -c 'sleep 300; true' "fakevm$$" &
FAKEL=$!
register_pid "$FAKEL"
wait_until 5 nonempty child_of "$FAKEL"
register_pid "$(child_of "$FAKEL")"
"$QL" --status >"$SCRATCH/all" 2>&1
check "a fake qemu-launcher's child is not listed as a VM" bash -c "! grep -q 'fakevm$$' '$SCRATCH/all'"

# both VMs are stopped the way a user would, so their launchers undo every host change
kill -TERM "$L" ${AL:+"$AL"} 2>/dev/null
wait_until 20 pid_gone "$L"
if [ -n "${AL:-}" ]; then wait_until 20 pid_gone "$AL"; fi

# what a launcher and its guardian, both SIGKILLed, would leave: a pool holding a task off a CPU
# with no VM set at all. --status says so (and exits 1) instead of "no running VM found".
wait_until 10 test ! -d "$M/qemu/$VM"
mkdir -p "$M/qemu/pool"
cat "$M/cpuset.cpus" >"$M/qemu/cpuset.cpus"
cat "$M/cpuset.mems" >"$M/qemu/cpuset.mems"
echo 0 >"$M/qemu/pool/cpuset.cpus"
cat "$M/cpuset.mems" >"$M/qemu/pool/cpuset.mems"
delegated_sleeper
echo "$SLEEPER" >"$M/qemu/pool/tasks"
QEMU_LAUNCHER_CPUSET_MOUNT_PATH=$M "$QL" --status >"$SCRATCH/confined" 2>&1
expect_eq "a pool confining a task with no VM running: exit 1" 1 "$?"
check "... it is reported with the set and its CPUs" grep -q "^! 1 task(s) are confined in $M/qemu/pool (CPUs 0) although no VM runs" "$SCRATCH/confined"
QEMU_LAUNCHER_CPUSET_MOUNT_PATH=$M "$QL" --status --json >"$SCRATCH/confined.json" 2>&1
expect_eq "... --status --json: exit 1 too" 1 "$?"
expect_eq "... the JSON names it in host_problems, the text's sentence, and counts it" \
	"$(sed -n 's/^! //p' "$SCRATCH/confined") 1 False" \
	"$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("\n".join(d["host_problems"]), d["differences"], d["consistent"])' "$SCRATCH/confined.json")"
echo "$SLEEPER" >"$M/tasks"
rmdir "$M/qemu/pool" "$M/qemu"
