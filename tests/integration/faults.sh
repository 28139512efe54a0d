#!/bin/bash
# Faults at every phase of a pinned start, against the real kernel (cpuset v1, delegated test
# subtree as in pin-cpuset.sh): qemu dying, the launcher signalled or SIGKILLed, lying or
# vanishing vCPU threads, a cgroup write failing part-way. Each case checks the exit status, that
# qemu is gone when it should be, and zero residue: no set under the subtree, the subtree's task
# back in it, no stray process.
# The phases are driven by a stand-in qemu (python3) that speaks QMP on fd 3 like qemu 7.2 and
# acts on cue: ACTION@PHASE, PHASE in start (before the greeting), caps, cpus (the queries),
# answered (query-cpus-fast answered: the launcher pins), cont (pinned, guest not started),
# resumed (RESUME sent, the reply to cont not yet), running (0.3 s after cont); ACTION exit:N,
# kill (SIGKILL itself), pause (tell the test, then go on after PAUSE_S), hang, lie (report a TID
# that is not its own), vanish (report a vCPU thread that already ended; at caps: end them after
# PAUSE_S, the machine build), newvcpu (at caps: after PAUSE_S, a thread named as a vCPU that
# query-cpus-fast does not list), resume (a RESUME event, as when another monitor let the guest
# run). Real qemu covers the running VM.
. "$(dirname "$0")/lib.sh"
NTESTS=196
plan $NTESTS

command -v python3 >/dev/null || skip_all "python3 is needed for the stand-in qemu"
require_cpuset_v1

TD=qltest-faults-$$
nested_delegated_cpuset "$TD" # the lock on M's parent is this test's own
TD=$TD/m                      # the cpuset paths expected below are M's
M_CPUS=$(cat "$M/cpuset.cpus")

# A task of the delegated subtree: moved to the pool while a VM runs, back afterwards.
delegated_sleeper

. "$(dirname "$0")/stand-in.sh"

# --- the stand-in itself works: pinned, cont, quit on SIGTERM ---------------------------------
fake_def sane ""
bg_case sane
wait_until 10 sent cont
check "stand-in: the launcher pins it and sends cont" sent cont
expect_eq "stand-in: its vCPU 0 thread is in the cpu$PIN set" 1 "$(wc -l <"$M/qemu/sane/cpu$PIN/tasks")"
kill -TERM "$L"
finish "stand-in stopped by SIGTERM" 0

# --- qemu dies at each phase ----------------------------------------------------------------
fake_def d_start "exit:3@start"
run_case "qemu exits 3 before its greeting" d_start 3
fake_def d_caps "exit:4@caps"
run_case "qemu exits 4 on qmp_capabilities" d_caps 4
fake_def d_answered "kill@answered"
run_case "qemu SIGKILLed while its threads are pinned" d_answered 137
fake_def d_cpus "kill@cpus"
run_case "qemu SIGKILLed during query-cpus-fast" d_cpus 137
fake_def d_cont "exit:5@cont"
run_case "qemu exits 5 after pinning, on cont" d_cont 5
check "qemu exits after pinning: the launcher had pinned it (sets were traced)" grep -q "write $M/qemu/d_cont/cpu$PIN/tasks" "$SCRATCH/d_cont.err"
# The guest ends before qemu's reply to cont is read: that is the guest's end, not a failed start.
for st in 0 7; do
	fake_def d_res$st "exit:$st@resumed"
	run_case "qemu exits $st after RESUME, before its reply to cont" d_res$st $st
	check "... not reported as a start that failed" \
		bash -c "! grep -q 'during startup\|did not start' '$SCRATCH/d_res$st.err'"
done
fake_def d_run "exit:6@running"
run_case "qemu exits 6 after cont (guest running)" d_run 6
fake_def d_runk "kill@running"
run_case "qemu SIGKILLed after cont" d_runk 137

# --- json-c missing once qemu is spawned (src/jsonc.c loads it for QMP, after the spawn) -------
# Hidden by a bind mount of /dev/null over the library, in a mount namespace of this case only.
JSONC=$(ldconfig -p | awk '$1 == "libjson-c.so.5" { print $NF; exit }')
fake_def nojsonc ""
if [ -n "$JSONC" ] && [ -e "$JSONC" ]; then
	timeout -s KILL 40 unshare -m --propagation private sh -c \
		'mount --bind /dev/null "$1" && exec "$2" -d nojsonc' _ "$JSONC" "$QL" \
		>"$SCRATCH/nojsonc.out" 2>"$SCRATCH/nojsonc.err" </dev/null
	rc=$?
	expect_eq "json-c missing after the spawn: exit 125" 125 "$rc"
	check "json-c missing: qemu had been spawned" grep -q "qemu running as pid" "$SCRATCH/nojsonc.err"
	check "json-c missing: the message names the package" \
		grep -q "needs json-c (libjson-c5)" "$SCRATCH/nojsonc.err"
	no_residue "json-c missing after the spawn"
else
	for i in 1 2 3 4; do skip "json-c missing: ldconfig does not list libjson-c.so.5"; done
fi

# --- qemu misbehaves ------------------------------------------------------------------------
# Another monitor let the guest run: its RESUME comes before the answer, or while the launcher
# pins (read just before cont).
for phase in cpus answered; do
	fake_def res_$phase "resume@$phase"
	run_case "qemu's guest resumed by another monitor (RESUME at $phase): refused" res_$phase 125
	check "resumed at $phase: the message says so" grep -q "resumed (RESUME) before it was pinned" "$SCRATCH/res_$phase.err"
	check "resumed at $phase: cont was never carried out" bash -c "! grep -qx 'cmd cont' '$MARK/log'"
done

# --- vCPU threads placed by their names while qemu builds the machine (pinning_apply_early) ----
# The pause at capabilities is the machine being built: the launcher's 3 ms ticks see the names.
# (-smp: how many vCPUs the launcher waits to see named, the stand-in has 2; -name
# debug-threads=on: the launcher looks for names only then, and then asks query-cpus-fast only
# after cont, to check them)
NAMED='- fakenames: "true"
- smp: 2
- name: [ named, debug-threads: on ]'
# placed_at_cont DESC NAME: what the stand-in recorded at cont, by qemu's own vCPU numbers
placed_at_cont() {
	check_shown "$1: at cont vCPU 0 is alone in the cpu$PIN set" \
		grep -qx "vcpu0 ${M#"$CS"}/qemu/$2/cpu$PIN $PIN" "$MARK/placement"
	check_shown "$1: at cont vCPU 1 is in the pool" \
		grep -q "^vcpu1 ${M#"$CS"}/qemu/pool " "$MARK/placement"
}
# asked_before_cont: the stand-in got query-cpus-fast before cont
asked_before_cont() { grep -x "cmd query-cpus-fast\|cmd cont" "$MARK/log" | head -n1 | grep -qx "cmd query-cpus-fast"; }
cont_first() { ! asked_before_cont; }
# asked_after_cont: cont, then query-cpus-fast
asked_after_cont() { sent cont && grep -qx "cmd query-cpus-fast" "$MARK/log" && cont_first; }
FAKE_QEMU=$NAMED fake_def named "pause@caps"
bg_case named
wait_until 15 sent cont
check_shown "named vCPU threads: placed before qemu's answer" \
	grep -q "vCPU threads placed by their names, before qemu's answer" "$LERR"
check_shown "named vCPU threads: cont without query-cpus-fast before it" cont_first
wait_until 10 grep -q "query-cpus-fast lists" "$LERR"
check_shown "named vCPU threads: qemu's answer after cont lists the same threads" \
	grep -q "query-cpus-fast lists the threads placed by their names" "$LERR"
placed_at_cont "named vCPU threads" named
kill -TERM "$L"
finish "named vCPU threads, SIGTERM" 0

# Without debug-threads=on in -name the launcher does not look (qemu would not name them).
FAKE_QEMU='- fakenames: "true"
- smp: 2' fake_def unnamed "pause@caps"
bg_case unnamed
wait_until 15 sent cont
unnamed_placed() { ! grep -q 'placed by their names' "$LERR" && grep -q 'vCPU 0 (socket' "$LERR" && asked_before_cont; }
check_shown "no debug-threads in -name: placed after qemu's answer, asked before cont" unnamed_placed
kill -TERM "$L"
finish "no debug-threads in -name, SIGTERM" 0

# A vCPU thread the names did not show when the vCPUs were placed (a -device cpu is made after
# the -smp ones): qemu's answer decides before cont, and places what it lists.
FAKE_QEMU=$NAMED fake_def named_new "newvcpu@caps"
bg_case named_new
wait_until 15 sent cont
asked_again() { grep -q 'asking qemu before cont' "$LERR" && asked_before_cont; }
check_shown "a vCPU thread named after the placement: qemu is asked before cont" asked_again
placed_at_cont "a vCPU thread named after the placement" named_new
kill -TERM "$L"
finish "a vCPU thread named after the placement, SIGTERM" 0

# Names that lie (vCPU 0's and 1's swapped): the guest starts on the threads they showed, and
# qemu's answer after cont says otherwise: the VM is stopped, nothing stays changed.
FAKE_QEMU='- fakenames: "swap"
- smp: 2
- name: [ swapped, debug-threads: on ]' fake_def swapped "pause@caps"
run_case "swapped names: stopped once qemu's answer after cont disagrees" swapped 125
check "swapped names: the message says the answer disagreed" \
	grep -q "lists other vCPU threads than its thread names did" "$SCRATCH/swapped.err"
check "swapped names: qemu was asked only after cont" asked_after_cont

# The threads placed early end before qemu has built its machine: their ids may be anyone's.
FAKE_QEMU=$NAMED fake_def named_vanish "vanish@caps"
run_case "named vCPU threads that end while qemu builds its machine: refused" named_vanish 125
check "named, ended: the message says a thread ended while pinned" \
	grep -q "ended while it was being pinned" "$SCRATCH/named_vanish.err"
check "named, ended: cont was never sent" bash -c "! grep -qx 'cmd cont' '$MARK/log'"

# A stop signal, or SIGKILL, once the vCPU threads are placed by their names, before qemu has
# built its machine: nothing stays changed, the guest never runs.
FAKE_QEMU=$NAMED fake_def named_term "pause@caps" 5
bg_case named_term
wait_until 10 grep -q "placed by their names" "$LERR"
expect_eq "named, SIGTERM while qemu builds: vCPU 0 was in its set" 1 "$(wc -l <"$M/qemu/named_term/cpu$PIN/tasks")"
kill -TERM "$L"
finish "named, SIGTERM while qemu builds its machine" 0
check "named, SIGTERM while qemu builds: cont was never sent" bash -c "! grep -qx 'cmd cont' '$MARK/log'"
FAKE_QEMU=$NAMED fake_def named_kill "pause@caps" 30
bg_case named_kill
wait_until 10 grep -q "placed by their names" "$LERR"
F=$(fake_pid)
kill -KILL "$L"
check "named, launcher SIGKILLed while qemu builds: qemu ends (PDEATHSIG)" wait_until 10 pid_gone "$F"
{ wait "$LPID"; } 2>/dev/null
no_residue "named, launcher SIGKILLed while qemu builds"

FAKE_LIE=$SLEEPER fake_def lie "lie@cpus"
run_case "qemu reports a TID that is not its own: refused" lie 125
check "lying TID: the message names the thread" grep -Eq "thread $SLEEPER\b.*is not a thread of" "$SCRATCH/lie.err"
check "lying TID: cont was never sent" bash -c "! grep -qx 'cmd cont' '$MARK/log'"

fake_def vanish "vanish@cpus"
run_case "a vCPU thread that ended before pinning: refused" vanish 125
check "vanished thread: cont was never sent" bash -c "! grep -qx 'cmd cont' '$MARK/log'"

fake_def hang_start "hang@start"
ql_start hang_start -d
L=""
wait_until 10 nonempty fake_pid
L=$(launcher_of "$LPID")
sleep 0.3
kill -TERM "$L"
check "qemu hangs before its greeting: SIGTERM ends the launcher within 5 s" wait_until 5 pid_gone "$L"
finish "qemu hanging before greeting, SIGTERM" 0

# --- qemu closes QMP during start-up: a failed start, whatever qemu's own status ------------
fake_def c_caps "close@caps"
run_case "qemu closes QMP on qmp_capabilities and keeps running: launcher failure" c_caps 125
check "closed during the handshake: the message names the phase" grep -q "closed its QMP channel during the QMP handshake" "$SCRATCH/c_caps.err"
fake_def c_answered "close@answered"
run_case "qemu closes QMP while its threads are pinned: launcher failure" c_answered 125
check "closed while pinned: the message names the phase" grep -Eq "closed its QMP channel (while its threads were pinned|before the guest started)" "$SCRATCH/c_answered.err"
fake_def c_cpus "close@cpus"
run_case "qemu closes QMP during query-cpus-fast: launcher failure" c_cpus 125
check "closed during query-cpus-fast: the message names the phase" grep -q "during query-cpus-fast" "$SCRATCH/c_cpus.err"
fake_def z_answered "exit:0@answered"
run_case "qemu exits 0 while its threads are pinned: launcher failure, not success" z_answered 125
check "exit 0 during start-up: the message says the VM did not start" grep -Eq "exited with status 0 (while its threads were pinned|before the guest started \(cont\)): the VM did not start" "$SCRATCH/z_answered.err"

# --- a stop signal while qemu stalls a start-up question takes effect at once -----------------
for stall in caps cpus; do
	fake_def h_$stall "hang@$stall"
	ql_start h_$stall -d
	wait_until 10 nonempty launcher_of "$LPID"
	L=$(launcher_of "$LPID")
	wait_until 10 grep -qx "phase $stall" "$MARK/log"
	kill -TERM "$L"
	check "qemu stalls at $stall: SIGTERM ends the launcher within 5 s" wait_until 5 pid_gone "$L"
	finish "qemu stalling at $stall, SIGTERM" 0
	check "stalled at $stall: cont was never sent" bash -c "! grep -qx 'cmd cont' '$MARK/log'"
done

# --- the launcher gets SIGTERM/SIGINT/SIGHUP at each phase ------------------------------------
for sig in TERM INT HUP; do
	# Before the greeting: qemu is stopped at once, nothing was pinned.
	# (3 s: the signal must land inside the pause even when a loaded host is slow to notice it)
	fake_def s_start_$sig "pause@start" 3
	bg_case s_start_$sig
	wait_until 10 test -e "$MARK/at-start"
	kill -$sig "$L"
	finish "SIG$sig before the greeting" 0
	check_shown "SIG$sig before the greeting: no QMP command was sent" bash -c "! grep -q '^cmd' '$MARK/log'"

	# During the queries: pinning completes, but the guest never runs.
	# (3 s, as above: the signal must land while the stand-in still holds the answer back)
	fake_def s_cpus_$sig "pause@cpus" 3
	bg_case s_cpus_$sig
	wait_until 10 test -e "$MARK/at-cpus"
	kill -$sig "$L"
	finish "SIG$sig during query-cpus-fast" 0
	# qemu is told to quit; a stand-in that does not answer within 2 s (a slow, loaded host)
	# gets SIGTERM instead: either way it ended (no residue above) and the guest never ran
	check_shown "SIG$sig during the queries: cont was never sent" \
		bash -c "! grep -qx 'cmd cont' '$MARK/log'"

	# Pinned, cont on its way: the guest started, then the shutdown ladder runs.
	fake_def s_cont_$sig "pause@cont"
	bg_case s_cont_$sig
	wait_until 10 test -e "$MARK/at-cont"
	kill -$sig "$L"
	finish "SIG$sig after pinning, during cont" 0
	check "SIG$sig during cont: powerdown, then quit" \
		bash -c "grep -qx 'cmd system_powerdown' '$MARK/log' && grep -qx 'cmd quit' '$MARK/log'"
done

# Running: real qemu, pinned.
real_def() {
	{
		printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  vcpu_pinning: [ %s ]\nqemu:\n' "$QEMU" "$PIN"
		guest_opts idle
		printf -- '- smp: 2\n'
	} | def "$1"
}
running() { grep -q "guest started" "$LERR"; }
for sig in TERM INT HUP; do
	real_def r_$sig
	bg_case r_$sig
	wait_until 20 running
	Q=$(child_of "$L")
	kill -$sig "$L"
	finish "real qemu running, SIG$sig" 0
	check "real qemu running, SIG$sig: qemu is gone" pid_gone "$Q"
done

# Two signals in a row: the second escalates, still nothing left.
real_def r_twice
sed -i 's/shutdown_timeout: 1/shutdown_timeout: 30/' "$CONF/r_twice.yml"
bg_case r_twice
wait_until 20 running
kill -TERM "$L"
wait_until 5 grep -q system_powerdown "$LERR"
kill -TERM "$L"
finish "real qemu, SIGTERM twice (escalation to quit)" 0

# qemu killed from outside while running.
real_def r_kill
bg_case r_kill
wait_until 20 running
Q=$(child_of "$L")
kill -KILL "$Q"
finish "real qemu SIGKILLed while running" 137

# --- qemu SIGKILLed in the phases not covered above: its own status, nothing left ------------
for phase in start caps cont; do
	fake_def qk_$phase "kill@$phase"
	run_case "qemu SIGKILLed at $phase" qk_$phase 137
done

# --- QMP closed before the greeting, after pinning, and while running ----------------------
fake_def c_start "close@start"
run_case "qemu closes QMP before its greeting and keeps running: launcher failure" c_start 125
fake_def c_cont "close@cont"
run_case "qemu closes QMP on cont (pinned) and keeps running: launcher failure" c_cont 125
fake_def c_run "close@running"
bg_case c_run
wait_until 10 grep -qx "phase running" "$MARK/log"
sleep 0.3
kill -TERM "$L"
finish "qemu closes QMP while the guest runs, then SIGTERM (no QMP: qemu gets SIGTERM)" 0

# --- the launcher SIGSTOPped in each phase, then continued: the run goes on as if nothing
# happened (and stops cleanly) --------------------------------------------------------------------
for phase in start cpus answered cont; do
	fake_def st_$phase "pause@$phase" 2
	bg_case st_$phase
	wait_until 10 test -e "$MARK/at-$phase"
	kill -STOP "$L"
	sleep 1
	kill -CONT "$L"
	check "launcher SIGSTOPped at $phase and continued: the guest starts" wait_until 15 sent cont
	kill -TERM "$L"
	finish "launcher SIGSTOPped at $phase, continued, SIGTERM" 0
done
fake_def st_run ""
bg_case st_run
wait_until 10 sent cont
kill -STOP "$L"
sleep 1
kill -CONT "$L"
check "launcher SIGSTOPped while running and continued: it still supervises" bash -c "sleep 0.5; grep -Eq '^State:\s+[RSD]' /proc/$L/status"
kill -TERM "$L"
finish "launcher SIGSTOPped while running, continued, SIGTERM" 0

# --- the launcher is SIGKILLed at each phase, then started again (reclaim) ----------------------
for phase in start cpus cont; do
	fake_def k_$phase "pause@$phase" 30
	bg_case k_$phase
	wait_until 10 test -e "$MARK/at-$phase"
	F=$(fake_pid)
	kill -KILL "$L"
	check "launcher SIGKILLed at $phase: qemu ends (PDEATHSIG)" wait_until 10 pid_gone "$F"
	{ wait "$LPID"; } 2>/dev/null
	# The guardian gives the host back within seconds, without waiting for another start.
	no_residue "launcher SIGKILLed at $phase, before any other start"
	# The same VM again: reclaims whatever the killed launcher left, runs, stops cleanly.
	fake_def k_$phase ""
	bg_case k_$phase
	wait_until 10 sent cont
	check "after SIGKILL at $phase: the VM starts again" sent cont
	kill -TERM "$L"
	finish "after SIGKILL at $phase, rerun and SIGTERM" 0
done

real_def k_run
bg_case k_run
wait_until 20 running
Q=$(child_of "$L")
kill -KILL "$L"
check "launcher SIGKILLed while real qemu runs: qemu ends (PDEATHSIG)" wait_until 10 pid_gone "$Q"
{ wait "$LPID"; } 2>/dev/null
no_residue "launcher SIGKILLed while running: the pool, its sets and the subtree's task are back"
# Another VM on the same CPU finds nothing stale: the guardian already gave everything back.
fake_def k_other ""
bg_case k_other
wait_until 10 sent cont
check "another VM on the same CPU starts after the killed run" sent cont
check "... with nothing left to reclaim" bash -c "! grep -q 'reclaiming the cpusets' '$LERR'"
kill -TERM "$L"
finish "reclaiming VM stopped" 0

# --- a cgroup write fails part-way -------------------------------------------------------------
# The vCPU set loses its CPU while qemu is being queried: prefix, pool and the VM's sets were made
# while qemu initialised (prepare), the vCPU move fails (a set without CPUs refuses tasks).
# Everything done so far must be undone.
# (4 s: the change must land before the launcher gets its answer, also on a loaded host)
fake_def shrink "pause@cpus" 4
bg_case shrink
wait_until 10 test -e "$MARK/at-cpus"
# the prepare runs while the stand-in answers: its last step is the pool giving up CPU $PIN
wait_until 10 grep -qx "$POOL_EXPECT" "$M/qemu/pool/cpuset.cpus"
echo >"$M/qemu/shrink/cpu$PIN/cpuset.cpus" || diag "emptying the cpu$PIN set failed"
wait "$LPID"
rc=$?
expect_eq "subtree shrunk under the launcher: exit 125" 125 "$rc"
# (a set without CPUs refuses tasks with ENOSPC; the -d trace lines name cpu$PIN too: not those)
check "subtree shrunk: the error is explained (moving vCPU 0 into cpu$PIN: no space left)" \
	bash -c "grep -v '^qemu-launcher: debug: ' '$LERR' | grep -q 'pinning vCPU 0: writing .*/cpu$PIN/tasks.: No space left on device'"
check "subtree shrunk: cont was never sent" bash -c "! grep -qx 'cmd cont' '$MARK/log'"
no_residue "subtree shrunk under the launcher"

# A set with a task of ours in it, named like the VM: the VM counts as running and is refused;
# the foreign set and its task are untouched.
mkdir -p "$M/qemu/busy"
for f in cpus mems; do cat "$M/cpuset.$f" >"$M/qemu/cpuset.$f"; cat "$M/cpuset.$f" >"$M/qemu/busy/cpuset.$f"; done
sleep 1000 &
BUSY=$!
register_pid "$BUSY"
echo "$BUSY" >"$M/qemu/busy/tasks"
fake_def busy ""
timeout -s KILL 30 "$QL" busy >/dev/null 2>"$SCRATCH/busy.err" </dev/null
expect_eq "a live set named like the VM: exit 125" 125 $?
check "a live set named like the VM: says it is running" grep -q "already running" "$SCRATCH/busy.err"
check "a live set named like the VM: its qemu never got cont" bash -c "! grep -qx 'cmd cont' '$MARK/log' 2>/dev/null"
expect_eq "a live set named like the VM: its task stays" "/$TD/qemu/busy" "$(cat /proc/$BUSY/cpuset)"
kill -KILL "$BUSY"
wait "$BUSY" 2>/dev/null
rmdir "$M/qemu/busy" "$M/qemu"
no_residue "after the live-set case"

# A stale prefix without pool (left by hand): the launcher adopts it and cleans it up.
mkdir "$M/qemu"
for f in cpus mems; do cat "$M/cpuset.$f" >"$M/qemu/cpuset.$f"; done
fake_def adopt ""
bg_case adopt
wait_until 10 sent cont
check "a pre-existing empty prefix: the VM starts" sent cont
kill -TERM "$L"
finish "a pre-existing empty prefix" 0
