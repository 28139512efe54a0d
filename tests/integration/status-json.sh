#!/bin/bash
# --status --json against the real kernel: a VM pinned with the cpuset v1 backend in a delegated
# test subtree and one pinned with the affinity backend are running; the document must validate
# against schema/status.schema.json, carry the same facts as /proc (every thread, its allowed
# CPUs, set and scheduling) and as the text --status, and keep the exit status (0 consistent,
# 1 after this script moves a vCPU out of its set, 2 for --json without --status).
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SCHEMA=$ROOT/schema/status.schema.json
NTESTS=15
plan $NTESTS

python3 -c 'import jsonschema' 2>/dev/null || skip_all "python3-jsonschema is not installed"
require_cpuset_v1

TD=qltest-sjson-$$
nested_delegated_cpuset "$TD" # the lock on M's parent is this test's own
TD=$TD/m                      # the cpuset paths expected below are M's
export QEMU_LAUNCHER_CGROUP2_ROOT=$SCRATCH/no-cgroup2

# validate FILE: the document follows the schema (the schema itself checked first).
validate() {
	python3 - "$SCHEMA" "$1" <<'PY'
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
errors = list(cls(schema).iter_errors(json.load(open(sys.argv[2]))))
for e in errors:
    print("# %s: %s" % ("/".join(map(str, e.absolute_path)), e.message))
sys.exit(1 if errors else 0)
PY
}
# jq_py FILE EXPR: prints the Python expression EXPR evaluated with d = the document.
jq_py() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

VM=sj$$
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
register_pid "$L"
register_pid "$Q"
V0=$(thread_of "$Q" "CPU 0/TCG")

AVM=sja$$
{
	printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  isolate_cpus: false\n' "$QEMU"
	printf '  vcpu_pinning: [ %s ]\n' "$PIN"
	printf 'qemu:\n'
	guest_opts idle
	printf -- '- smp: 2\n- name: [ %s, debug-threads: on ]\n- S\n' "$AVM"
} | def "$AVM"
ql_start "$AVM" -d
if ! wait_until 20 grep -q "guest left paused" "$LERR"; then
	diag "launcher output:" "$(cat "$LERR")"
	fail_rest "the affinity VM did not start"
fi
AL=$(launcher_of "$LPID")
AQ=$(child_of "$AL")
register_pid "$AL"
register_pid "$AQ"

"$QL" --status --json >"$SCRATCH/all.json" 2>"$SCRATCH/all.err"
rc=$?
# other sessions' launchers on this host may show up here too: only ours are looked at
expect_eq "without NAME: exit status as \"consistent\" says, both VMs consistent" \
	"$([ "$(jq_py "$SCRATCH/all.json" 'd["consistent"]')" = True ] && echo 0 || echo 1) True True" \
	"$rc $(jq_py "$SCRATCH/all.json" '" ".join(str(v["consistent"]) for v in d["vms"] if v["name"] in ("'"$VM"'", "'"$AVM"'"))')"
check "the document validates against schema/status.schema.json" validate "$SCRATCH/all.json"
expect_eq "format and version" "qemu-launcher-status 1" \
	"$(jq_py "$SCRATCH/all.json" 'd["format"], d["version"]' | tr -d "(),'")"
expect_eq "both VMs with their backend, qemu pid and set directory" \
	"$VM cpuset-v1 $Q $M/qemu/$VM|$AVM affinity $AQ None" \
	"$(jq_py "$SCRATCH/all.json" '"|".join("%s %s %s %s" % (v["name"], v["backend"], v["qemu_pid"], v["set_dir"]) for v in d["vms"] if v["name"] in ("'"$VM"'", "'"$AVM"'"))')"

"$QL" --status --json "$VM" >"$SCRATCH/one.json"
expect_eq "with NAME: exit 0" 0 $?
check "with NAME: validates" validate "$SCRATCH/one.json"
expect_eq "every qemu thread is in it, by tid" "$(ls /proc/$Q/task | sort -n | tr '\n' ' ')" \
	"$(jq_py "$SCRATCH/one.json" '" ".join(str(t["tid"]) for t in d["vms"][0]["threads"]) + " "')"
expect_eq "vCPU 0: its CPUs, set, fifo 7 with reset-on-fork, as the kernel has them" \
	"$V0 0 $(allowed_of "$Q" "$V0") [$PIN] $PIN /$TD/qemu/$VM/cpu$PIN fifo 7 True" \
	"$(jq_py "$SCRATCH/one.json" '" ".join(" ".join(str(x) for x in (t["tid"], t["vcpu"], t["cpus_allowed"], t["cpus"], t["vcpu_set_cpu"], t["set"], t["policy"], t["priority"], t["reset_on_fork"])) for t in d["vms"][0]["threads"] if t["tid"] == '"$V0"')')"
"$QL" --status "$VM" >"$SCRATCH/one.txt"
expect_eq "the text --status lists the same threads in the same sets" \
	"$(awk '/^  [0-9]+ / {print $1, $NF}' "$SCRATCH/one.txt")" \
	"$(jq_py "$SCRATCH/one.json" '"\n".join("%d %s" % (t["tid"], t["set"]) for t in d["vms"][0]["threads"])')"

"$QL" --status --json nosuchvm$$ >"$SCRATCH/none.json"
expect_eq "a NAME that does not run: exit 1, as without --json" 1 $?
expect_eq "... no VM, not consistent" "0 False" \
	"$(jq_py "$SCRATCH/none.json" 'len(d["vms"]), d["consistent"]' | tr -d "(),")"
"$QL" --json "$VM" >/dev/null 2>&1
expect_eq "--json without --status: usage error" 2 $?

# the launcher's rescans (100 ms, 1 s, 5 s after start) would undo a move: wait them out
while [ $((SECONDS - STARTED)) -lt 7 ]; do sleep 0.5; done
echo "$V0" >"$M/qemu/pool/tasks"
"$QL" --status --json "$VM" >"$SCRATCH/drift.json"
expect_eq "vCPU 0 moved out of its set: exit 1, as without --json" 1 $?
check "the drifted document validates" validate "$SCRATCH/drift.json"
expect_eq "the drift is in problems, the same sentences as the text output" \
	"$("$QL" --status "$VM" | sed -n 's/^  ! //p')" \
	"$(jq_py "$SCRATCH/drift.json" '"\n".join(d["vms"][0]["problems"])')"
echo "$V0" >"$M/qemu/$VM/cpu$PIN/tasks"

kill -TERM "$L" "$AL" 2>/dev/null
wait_until 20 pid_gone "$L"
wait_until 20 pid_gone "$AL"
