#!/bin/bash
# Hugepages for guest RAM against the real kernel and real qemu (TCG): a private hugetlbfs, a
# 32 MiB memory-backend-file with prealloc=on. The host's 2 MiB pool is raised by what is missing
# and back to the value this test found after a normal exit, SIGTERM, a SIGKILLed launcher (its
# guardian, or the next start when the guardian is killed too) and a refusal.
. "$(dirname "$0")/lib.sh"
NTESTS=34
plan $NTESTS

POOL=/sys/kernel/mm/hugepages/hugepages-2048kB
[ "$(id -u)" = 0 ] || skip_all "needs root to change nr_hugepages"
[ -w "$POOL/nr_hugepages" ] || skip_all "no writable 2 MiB hugepage pool at $POOL"
ORIG=$(cat "$POOL/nr_hugepages")
MNT=$SCRATCH/huge
mkdir "$MNT"
mount -t hugetlbfs -o pagesize=2M none "$MNT" || skip_all "cannot mount hugetlbfs"
# Always: the pool as found, the mount gone, then lib.sh's cleanup.
restore() {
	_cleanup_pids_only
	umount "$MNT" 2>/dev/null
	[ "$(cat "$POOL/nr_hugepages")" = "$ORIG" ] || echo "$ORIG" >"$POOL/nr_hugepages"
}
_cleanup_pids_only() {
	local p
	_cleanup_pids
	# the qemus this test saw (a killed launcher's qemu dies on its own within seconds): by the
	# pid seen, and only while that pid is still a qemu on this test's mount
	[ -f "$SCRATCH/qemus" ] || return 0
	for p in $(sort -u "$SCRATCH/qemus"); do
		grep -qa "mem-path=$MNT" "/proc/$p/cmdline" 2>/dev/null && kill -KILL "$p" 2>/dev/null
	done
}
trap 'restore; _cleanup' EXIT
export QEMU_LAUNCHER_JOURNAL_DIR=$SCRATCH/journal
FREE=$(( $(cat "$POOL/free_hugepages") - $(cat "$POOL/resv_hugepages") ))
NEED=16
MISSING=$(( NEED > FREE ? NEED - FREE : 0 ))
[ "$MISSING" -gt 0 ] || skip_all "the host already has $FREE free 2 MiB pages: nothing to reserve"

vm_def() { # vm_def NAME MODE exit|idle
	{
		printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  hugepages: %s\nqemu:\n' "$QEMU" "$2"
		guest_opts "$3" | sed 's/^- machine: .*/- machine: [ pc, accel: tcg, memory-backend: ram0 ]/; s/^- m: 16/- m: 32/'
		printf -- '- object: [ memory-backend-file, id: ram0, size: 32M, mem-path: %s, prealloc: on ]\n' "$MNT"
	} | def "$1"
}
nr() { cat "$POOL/nr_hugepages"; }
nr_is() { [ "$(nr)" = "$1" ]; }
# test_qemus: the pids of the qemus on this test's mount, also noted for the cleanup to end.
test_qemus() {
	local q
	q=$(pgrep -f "mem-path=$MNT")
	[ -n "$q" ] && printf '%s\n' $q | tee -a "$SCRATCH/qemus"
}
qemu_of_test() { test_qemus | head -n1; }

# 1-2: not enough free pages, no reservation asked: refused before qemu starts, nothing touched
vm_def short check exit
"$QL" short >"$SCRATCH/short.out" 2>"$SCRATCH/short.err"
expect_eq "a short pool without \`reserve\` exits 125" 125 $?
if grep -q "not enough hugepages: 2048 kB pages on any node: $NEED needed, $FREE free" "$SCRATCH/short.err" &&
	nr_is "$ORIG" && [ -z "$(qemu_of_test)" ]; then
	ok "the refusal names size, node, needed and free; qemu never started; pool unchanged"
else
	not_ok "refusal message or state"
	diag "$(cat "$SCRATCH/short.err")" "nr_hugepages $(nr), expected $ORIG"
fi

# 2b: --check and --dry-run foresee that refusal (exit 0: the pool may fill before a start)
"$QL" --check short >"$SCRATCH/shortc.out" 2>"$SCRATCH/shortc.err"
rc=$?
if [ "$rc" = 0 ] && grep -q "warning: .*short.yml: a start now would be refused (exit 125): not enough hugepages: 2048 kB pages on any node: $NEED needed, $FREE free" "$SCRATCH/shortc.err" &&
	"$QL" --dry-run short | grep -qx '# hugepages: pages are missing: the start would be refused (`hugepages: reserve` reserves them)'; then
	ok "--check warns that a start now would be refused, naming the pool; --dry-run says so"
else
	not_ok "--check/--dry-run of a short pool"
	diag "--check exit $rc" "$(cat "$SCRATCH/shortc.err")"
fi

# 3: --dry-run lists the write and makes none
vm_def res reserve idle
out=$("$QL" --dry-run res)
if grep -q "^# would write $POOL/nr_hugepages: $ORIG -> $((ORIG + MISSING))" <<<"$out" &&
	grep -qx "# would write /proc/sys/vm/compact_memory: 1 (compaction first, nothing to give back)" <<<"$out" &&
	nr_is "$ORIG"; then
	ok "--dry-run lists the compaction and nr_hugepages writes and changes nothing"
else
	not_ok "--dry-run"
	diag "$out"
fi

# 4: more than the host's MemAvailable (a typo, 64T for 64G): --dry-run says the start would be
# refused (only --dry-run here: it writes nothing; the refusal itself is tested in test_hugepages)
{
	printf 'launcher:\n  binary: %s\n  hugepages: reserve\nqemu:\n' "$QEMU"
	printf -- '- object: [ memory-backend-file, id: ram0, size: 64T, mem-path: %s ]\n' "$MNT"
} | def typo
out=$("$QL" --dry-run typo)
avail=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
if grep -q "^# hugepages: reserving [0-9]* kB is more than the host's available [0-9]* kB: the start would be refused" <<<"$out" &&
	nr_is "$ORIG"; then
	ok "--dry-run of 64T of hugepages says the start would be refused (MemAvailable ${avail} kB)"
else
	not_ok "--dry-run of 64T of hugepages"
	diag "$out"
fi

# 5: a backend bound to one node without prealloc gets a warning from --check (the kernel
# promises hugepages per host only), one with prealloc=on none (both may be warned that the pool
# is short now)
for pre in off on; do
	{
		printf 'launcher:\n  binary: %s\n  hugepages: check\nqemu:\n' "$QEMU"
		printf -- '- object: [ memory-backend-file, id: ram0, size: 4M, mem-path: %s, host-nodes: 0, policy: bind, prealloc: %s ]\n' "$MNT" "$pre"
	} | def "bound-$pre"
done
off=$("$QL" --check bound-off 2>&1)
on=$("$QL" --check bound-on 2>&1)
if grep -q "warning: hugepages: memory backend \`ram0\` takes its 2048 kB hugepages from node 0 only as the guest touches them (no prealloc=on)" <<<"$off" &&
	! grep -q "warning: hugepages: memory backend" <<<"$on" && grep -q ": OK$" <<<"$on"; then
	ok "--check warns of a node-bound backend without prealloc, not of one with it"
else
	not_ok "--check of node-bound backends"
	diag "$off" "$on"
fi

# 6-12: a reserved run: the pool grows, guest RAM is on 2 MiB pages, SIGTERM gives it all back
ql_start res -d
if wait_until 20 grep -q "QMP connected" "$LERR"; then ok "the VM with reserved pages started"; else
	not_ok "the VM with reserved pages started"
	diag "$(cat "$LERR")"
fi
expect_eq "nr_hugepages raised by the missing pages while the VM runs" "$((ORIG + MISSING))" "$(nr)"
Q=$(qemu_of_test)
if [ -n "$Q" ] && awk -v m="$MNT/" 'index($0, m) {f=1; next} /^[0-9a-f]+-/ {f=0} f && /^KernelPageSize:/ {print $2}' \
	"/proc/$Q/smaps" | grep -qx 2048; then
	ok "guest RAM is mapped from the hugetlbfs with 2048 kB kernel pages"
else
	not_ok "guest RAM on hugepages"
	diag "$(grep -A3 "$MNT" "/proc/$Q/smaps" 2>&1 | head -5)"
fi
expect_eq "one journal record for the reservation" 1 "$(ls "$QEMU_LAUNCHER_JOURNAL_DIR" | wc -l)"
# --status: the pages qemu mapped (prealloc=on: all of them) and the launcher's reservation
st=$("$QL" --status res)
if grep -Eqx "  hugepages 2048 kB: $NEED in use by qemu( \(node [0-9]+: $NEED\))?; $MISSING reserved by its launcher" <<<"$st"; then
	ok "--status shows the pages in use and the reservation"
else
	not_ok "--status hugepages line"
	diag "$st"
fi
"$QL" --status --json res >"$SCRATCH/res.json"
if python3 - "$SCRATCH/res.json" "$NEED" "$MISSING" "$POOL/nr_hugepages" "$(launcher_of "$LPID")" \
	"$(dirname "$0")/../../schema/status.schema.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
need, missing, path, launcher = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
try:
    import jsonschema
    schema = json.load(open(sys.argv[6]))
    jsonschema.validators.validator_for(schema)(schema).validate(doc)
except ImportError:
    pass
h = doc["vms"][0]["hugepages"]
assert sum(p["pages"] for p in h["in_use"] if p["page_kb"] == 2048) == need, h
assert h["reserved"] == [{"page_kb": 2048, "node": None, "pages": missing, "path": path,
                          "launcher_pid": launcher, "launcher_alive": True}], h
assert h["notes"] == [], h
PY
then ok "--status --json: in_use, reserved (path, launcher) and the schema"; else
	not_ok "--status --json hugepages"
	diag "$(cat "$SCRATCH/res.json")"
fi
kill -TERM "$(launcher_of "$LPID")"
wait "$LPID"
if nr_is "$ORIG" && [ -z "$(ls "$QEMU_LAUNCHER_JOURNAL_DIR")" ]; then
	ok "after SIGTERM nr_hugepages is back to $ORIG and the journal is empty"
else
	not_ok "after SIGTERM: nr_hugepages $(nr), expected $ORIG; journal: $(ls "$QEMU_LAUNCHER_JOURNAL_DIR")"
fi

# 13-14: a guest that exits by itself
vm_def gone reserve exit
timeout 60 "$QL" gone >/dev/null 2>"$SCRATCH/gone.err"
expect_eq "the exiting guest's status is qemu's" 11 $?
expect_eq "after qemu's own exit nr_hugepages is back" "$ORIG" "$(nr)"

# 15-18: the launcher SIGKILLed: its guardian gives the pages back within seconds
ql_start res -d
wait_until 20 grep -q "QMP connected" "$LERR"
if nr_is "$((ORIG + MISSING))"; then ok "reserved again"; else
	not_ok "reserved again: nr_hugepages $(nr), expected $((ORIG + MISSING))"
	diag "$(cat "$LERR")"
fi
kill -KILL "$(launcher_of "$LPID")"
if wait_until 15 nr_is "$ORIG"; then ok "after SIGKILL the guardian gave the pages back"; else
	not_ok "after SIGKILL: nr_hugepages $(nr), expected $ORIG"
fi

# the launcher SIGKILLed right after its reservation (journal record written, nr_hugepages
# raised), before qemu even started: its guardian, forked before the first host change, gives
# the pages back (a test-only stop point holds the launcher there)
stopped() { [ "$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)" = T ]; }
QEMU_LAUNCHER_TEST_STOP_AT=hugepages-reserved ql_start res -d
L=
wait_until 20 eval 'L=$(launcher_of "$LPID") && [ -n "$L" ] && stopped "$L"'
if [ -n "$L" ] && stopped "$L" && nr_is "$((ORIG + MISSING))" && [ -z "$(qemu_of_test)" ]; then
	ok "the launcher stopped right after reserving, before qemu started"
else
	not_ok "stop after reserving: launcher ${L:-?}, nr_hugepages $(nr), qemu $(qemu_of_test)"
	diag "$(cat "$LERR")"
fi
kill -KILL "$L"
if wait_until 15 nr_is "$ORIG"; then
	ok "killed right after reserving: the guardian gave the pages back"
else
	not_ok "killed right after reserving: nr_hugepages $(nr), expected $ORIG (left for the next start)"
	echo "$ORIG" >"$POOL/nr_hugepages" # the next cases start from the pool as found
	rm -f "$QEMU_LAUNCHER_JOURNAL_DIR"/*
fi

# the same with a stderr nobody reads any more (a log reader gone): the guardian, forked before
# the launcher ignores SIGPIPE, must not die of it at its undo's first line (-d), the pages kept
mkfifo "$SCRATCH/err.fifo"
cat "$SCRATCH/err.fifo" >"$SCRATCH/fifo.log" &
READER=$!
register_pid "$READER"
QEMU_LAUNCHER_TEST_STOP_AT=hugepages-reserved timeout -s KILL 60 "$QL" -d res >/dev/null \
	2>"$SCRATCH/err.fifo" </dev/null &
LPID=$!
register_pid "$LPID"
L=
wait_until 20 eval 'L=$(launcher_of "$LPID") && [ -n "$L" ] && stopped "$L"'
kill "$READER"
wait "$READER" 2>/dev/null
kill -KILL "$L"
if wait_until 15 nr_is "$ORIG"; then
	ok "stderr unread, killed right after reserving: the guardian gave the pages back"
else
	not_ok "stderr unread: nr_hugepages $(nr), expected $ORIG (left for the next start)"
	diag "$(tail -n 5 "$SCRATCH/fifo.log")"
	echo "$ORIG" >"$POOL/nr_hugepages"
	rm -f "$QEMU_LAUNCHER_JOURNAL_DIR"/*
fi

# 19-21: the launcher and its guardian both SIGKILLed: the next start gives them back
# res_left_behind: VM res started, then its launcher and guardian SIGKILLed (qemu ends on its
# parent-death signal): its reservation stays behind for the next start.
res_left_behind() {
	ql_start res -d
	wait_until 20 grep -q "QMP connected" "$LERR"
	L=$(launcher_of "$LPID")
	Q=$(qemu_of_test)
	G=$(guardian_of "$L")
	kill -KILL "$G" "$L"
	wait_until 10 pid_gone "$Q"
}
res_left_behind
expect_eq "launcher and guardian killed: the reservation stays behind" "$((ORIG + MISSING))" "$(nr)"
vm_def next ignore exit
timeout 60 "$QL" -v next >/dev/null 2>"$SCRATCH/next.err"
if nr_is "$ORIG" && grep -q "gave back res's change to $POOL/nr_hugepages" "$SCRATCH/next.err"; then
	ok "the next start gave the dead launcher's pages back and said so"
else
	not_ok "next start: nr_hugepages $(nr), expected $ORIG"
	diag "$(cat "$SCRATCH/next.err")"
fi
expect_eq "the journal is empty" "" "$(ls "$QEMU_LAUNCHER_JOURNAL_DIR")"

# 22-24: killed both again, and the next start is of a VM that needs the pages itself: it counts
# the pools again once the dead launcher's pages are given back (counted free before, they were
# given back and not reserved again, and qemu's preallocation failed)
res_left_behind
timeout 60 "$QL" -v gone >/dev/null 2>"$SCRATCH/again.err"
expect_eq "the next start needing the pages: its guest runs (qemu's status 11)" 11 $?
check "... it gave the dead launcher's pages back, then reserved what was missing" bash -c \
	"grep -q \"gave back res's change\" '$SCRATCH/again.err' && grep -q 'hugepages: reserved $MISSING of $MISSING' '$SCRATCH/again.err'"
expect_eq "... and gave them back at its end" "$ORIG" "$(nr)"

# two start-ups at once: the second counts the free pages only once the first one's qemu has
# mapped its own (before, both counted the same free pages: the second reserved nothing, its
# qemu took the first one's pages, and the first one's preallocation failed). The first is held
# right after its reservation (the test stop point), holding the hugepage start-up lock.
vm_def twin reserve idle
QEMU_LAUNCHER_TEST_STOP_AT=hugepages-reserved ql_start res -d
A_LPID=$LPID A_ERR=$LERR
L=
wait_until 20 eval 'L=$(launcher_of "$A_LPID") && [ -n "$L" ] && stopped "$L"'
A=$L
ql_start twin -d
B_LPID=$LPID B_ERR=$LERR
sleep 1
if [ -z "$(qemu_of_test)" ] && nr_is "$((ORIG + MISSING))" && kill -0 "$B_LPID" &&
	! grep -q "hugepages: reserved" "$B_ERR"; then
	ok "start-ups at once: the second waits while the first, stopped after reserving, holds the lock"
else
	not_ok "start-ups at once: the second waits while the first, stopped after reserving, holds the lock"
	diag "qemu $(qemu_of_test), nr_hugepages $(nr)" "$(cat "$B_ERR")"
fi
kill -CONT "$A"
wait_until 30 grep -q "QMP connected" "$A_ERR"
wait_until 30 grep -q "QMP connected" "$B_ERR"
sleep 0.5
if [ "$(test_qemus | wc -l)" = 2 ] && grep -q "hugepages: reserved $NEED of $NEED" "$B_ERR" &&
	nr_is "$((ORIG + MISSING + NEED))"; then
	ok "... then both guests run, the second on pages it reserved itself"
else
	not_ok "... then both guests run, the second on pages it reserved itself"
	diag "$(tail -n 5 "$A_ERR")" "$(tail -n 5 "$B_ERR")" "nr_hugepages $(nr)"
fi
kill -TERM "$(launcher_of "$A_LPID")" "$(launcher_of "$B_LPID")"
wait "$A_LPID" "$B_LPID"
check "... and both give their pages back" wait_until 10 nr_is "$ORIG"

# a VM ends while another one's start-up holds the lock, having counted the ended VM's pages as
# free: the ended one gives them back only once the other's qemu has mapped them (before, it gave
# them back at once and the other's preallocation failed). The ending launcher is held before
# its give-back (the test stop point "giving-back"), the starting one after its count.
vm_def taking reserve idle
QEMU_LAUNCHER_TEST_STOP_AT=giving-back ql_start res -d
X_LPID=$LPID X_ERR=$LERR
wait_until 20 grep -q "QMP connected" "$X_ERR"
X=$(launcher_of "$X_LPID")
kill -KILL "$(qemu_of_test)"
wait_until 10 stopped "$X"
QEMU_LAUNCHER_TEST_STOP_AT=hugepages-reserved ql_start taking -d
Y_LPID=$LPID Y_ERR=$LERR
L=
wait_until 20 eval 'L=$(launcher_of "$Y_LPID") && [ -n "$L" ] && stopped "$L"'
Y=$L
if stopped "$X" && stopped "$Y" && nr_is "$((ORIG + MISSING))" && ! grep -q "hugepages: reserved" "$Y_ERR"; then
	ok "a VM ended (its give-back held), another counted its pages free and reserved none"
else
	not_ok "a VM ended (its give-back held), another counted its pages free and reserved none"
	diag "nr_hugepages $(nr)" "$(tail -n 5 "$Y_ERR")"
fi
kill -CONT "$X"
sleep 1
check "... the ended one waits for the lock: its pages are not given back yet" \
	bash -c "kill -0 $X && [ \"\$(cat $POOL/nr_hugepages)\" = $((ORIG + MISSING)) ]"
kill -CONT "$Y"
if wait_until 20 grep -q "QMP connected" "$Y_ERR" && [ -n "$(qemu_of_test)" ]; then
	ok "... the other's guest runs on the pages it counted"
else
	not_ok "... the other's guest runs on the pages it counted"
	diag "$(tail -n 5 "$Y_ERR")" "nr_hugepages $(nr)"
fi
wait "$X_LPID"
expect_eq "... then the ended one gave its pages back and exited (its qemu's status, 137)" 137 "$?"
kill -TERM "$(launcher_of "$Y_LPID")"
wait "$Y_LPID"
check "... and at the end the pool is as found" wait_until 10 nr_is "$ORIG"
