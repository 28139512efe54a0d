#!/bin/bash
# Load: 8 launchers released at the same instant on one delegated cpuset subtree, 20 rounds.
# Four VMs pin vCPU 0 to the same host CPU through cpusets (they conflict), two pin it with plain
# affinity (isolate_cpus: false; no conflict), two real qemu VMs are unpinned. Every outcome
# must be either a VM that ran correctly placed (the stand-in qemu records its threads' cpuset
# and allowed CPUs at the moment of cont) or a refusal naming another VM of the round; after
# each round the subtree is exactly as before (recursive listing, tasks, cpus).
. "$(dirname "$0")/lib.sh"
ROUNDS=${QL_LOAD_ROUNDS:-20}
NTESTS=$((ROUNDS * 3 + 3))
plan $NTESTS

command -v python3 >/dev/null || skip_all "python3 is needed for the stand-in qemu"
require_cpuset_v1

TD=qltest-load-$$
nested_delegated_cpuset "$TD" # the lock on M's parent is this test's own
TD=$TD/m                      # the cpuset paths expected below are M's
delegated_sleeper

FAKE=$SCRATCH/fake-qemu
install -m 755 "$(dirname "$0")/fake-qemu.py" "$FAKE"

# The state that must survive every round.
snapshot() {
	(cd "$M" && find . | sort)
	echo "tasks: $(sort -n "$M/tasks" | tr '\n' ' ')"
	echo "cpus: $(cat "$M/cpuset.cpus") mems: $(cat "$M/cpuset.mems")"
}
BEFORE=$(snapshot)

PINNED="p1 p2 p3 p4" AFFINE="a1 a2" PLAIN="u1 u2"
for n in $PINNED $AFFINE; do
	{
		printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  vcpu_pinning: [ %s ]\n' "$FAKE" "$PIN"
		case $n in a*) printf '  isolate_cpus: false\n' ;; esac
		# Short-lived: the "guest" ends 0.3 s after cont with status 11, like the exit guest.
		printf 'qemu:\n- fake: "exit:11@running"\n- fakemark: %s/mark-%s\n' "$SCRATCH" "$n"
	} | def "$n"
done
for n in $PLAIN; do
	{
		printf 'launcher:\n  binary: %s\nqemu:\n' "$QEMU"
		guest_opts exit
	} | def "$n"
done
ALL="$PINNED $AFFINE $PLAIN"

FIFO=$SCRATCH/start
mkfifo "$FIFO"
# judge NAME STATUS: empty when the outcome is acceptable, else why not.
judge() {
	local n=$1 rc=$2 err=$SCRATCH/$1.err mk=$SCRATCH/mark-$1 other
	case $n in
	p*)
		if [ "$rc" = 11 ]; then
			local want="main /$TD/qemu/pool $POOL_EXPECT
vcpu0 /$TD/qemu/$n/cpu$PIN $PIN
vcpu1 /$TD/qemu/pool $POOL_EXPECT"
			[ "$(cat "$mk/placement" 2>/dev/null)" = "$want" ] ||
				echo "$n ran but was placed: $(tr '\n' ';' <"$mk/placement" 2>/dev/null)"
		elif [ "$rc" = 125 ]; then
			other=$(sed -n "s/.*host CPU $PIN is pinned by running VM \`\(p[1-4]\)\`.*/\1/p" "$err")
			if [ -z "$other" ] || [ "$other" = "$n" ]; then
				echo "$n refused without naming another VM: $(cat "$err")"
			elif grep -qx "cmd cont" "$mk/log" 2>/dev/null; then
				echo "$n was refused but its guest got cont"
			fi
		else
			echo "$n: unexpected exit $rc: $(tail -n 3 "$err")"
		fi
		;;
	a*)
		# Affinity only: the vCPU may run on $PIN alone; no cgroup of the subtree is used.
		[ "$rc" = 11 ] || { echo "$n: exit $rc: $(tail -n 3 "$err")"; return; }
		# (without a placement the awk below prints nothing: no placement is no proof)
		grep -q '^vcpu0 ' "$mk/placement" 2>/dev/null || { echo "$n: no placement recorded at cont"; return; }
		awk -v pin="$PIN" -v td="/$TD" '$1 == "vcpu0" && $3 != pin { print "vcpu0 allowed " $3 }
			index($2, td) == 1 { print $1 " in " $2 }' "$mk/placement" | sed "s/^/$n: /"
		;;
	u*) [ "$rc" = 11 ] || echo "$n: exit $rc: $(tail -n 3 "$err")" ;;
	esac
}

bad_rounds=0 wins=0 refusals=0
t0=$SECONDS
for ((round = 1; round <= ROUNDS; round++)); do
	rm -rf "$SCRATCH"/mark-*
	pids=()
	for n in $ALL; do
		mkdir -p "$SCRATCH/mark-$n"
		# Each launcher blocks opening the FIFO until the test opens its write end: one release.
		( exec 3<"$FIFO"; exec timeout -s KILL 60 "$QL" "$n" >/dev/null 2>"$SCRATCH/$n.err" </dev/null ) &
		pids+=($!)
		register_pid $!
	done
	# Give every subshell time to block in open(); the write end stays open for the round so a
	# late one cannot hang.
	blocked() { local p; for p in "${pids[@]}"; do [ "$(cat /proc/$p/wchan 2>/dev/null)" = wait_for_partner ] || return 1; done; }
	wait_until 2 blocked
	exec 4>"$FIFO"
	problems=""
	i=0
	for n in $ALL; do
		wait "${pids[$i]}"
		rc=$?
		i=$((i + 1))
		p=$(judge "$n" "$rc")
		[ -n "$p" ] && problems="$problems$p"$'\n'
		case $n:$rc in p*:11) wins=$((wins + 1)) ;; p*:125) refusals=$((refusals + 1)) ;; esac
	done
	exec 4>&-
	expect_eq "round $round: every launcher ran correctly placed or was refused naming another VM" "" "${problems%$'\n'}"
	settled() { [ "$(snapshot)" = "$BEFORE" ]; }
	wait_until 5 settled
	expect_eq "round $round: the subtree is exactly as before" "$BEFORE" "$(snapshot)"
	left=""
	for p in $(pgrep -f "$FAKE|$BIOS_EXIT"); do pid_gone "$p" || left="$left $p"; done
	expect_eq "round $round: no qemu left" "" "$left"
	[ -n "$problems" ] && bad_rounds=$((bad_rounds + 1))
done
diag "$ROUNDS rounds in $((SECONDS - t0)) s: $wins pinned runs, $refusals refusals of the conflicting VMs"
check "the conflicting VMs were really contended (some were refused)" test "$refusals" -gt 0
check "... and every round had at least one pinned run" test "$wins" -ge "$ROUNDS"
expect_eq "all rounds clean" 0 "$bad_rounds"
