# The stand-in qemu (fake-qemu.py) and the case helpers faults.sh and tid-reuse.sh share: a
# definition per case, running it to its end or in the background, and the residue check (no set
# under the delegated subtree $M, its task $SLEEPER back in it, no stray stand-in or qemu).
# Needs lib.sh, require_cpuset_v1, delegated_cpuset, delegated_sleeper and M_CPUS first.

FAKE=$SCRATCH/fake-qemu
install -m 755 "$(dirname "$0")/fake-qemu.py" "$FAKE"

subdirs() { (cd "$1" && find . -mindepth 1 -type d | sed 's|^\./||' | sort); }
MARKN=0
# fake_def NAME CUES [PAUSE]: a 2-vCPU stand-in with vCPU 0 pinned to host CPU $PIN; sets MARK.
# FAKE_LAUNCHER and FAKE_QEMU add lines to the `launcher:` and `qemu:` sections.
fake_def() {
	MARKN=$((MARKN + 1))
	MARK=$SCRATCH/mark$MARKN
	mkdir -p "$MARK"
	{
		printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  vcpu_pinning: [ %s ]\n' "$FAKE" "$PIN"
		[ -n "${FAKE_LAUNCHER:-}" ] && printf '%s\n' "$FAKE_LAUNCHER"
		printf 'qemu:\n- fake: "%s"\n- fakemark: %s\n- fakepause: "%s"\n' "$2" "$MARK" "${3:-1.5}"
		[ -n "${FAKE_LIE:-}" ] && printf -- '- fakelie: "%s"\n' "$FAKE_LIE"
		[ -n "${FAKE_QEMU:-}" ] && printf '%s\n' "$FAKE_QEMU"
	} | def "$1"
}
# The stand-in's pid, once it wrote it.
fake_pid() { cat "$MARK/pid" 2>/dev/null; }
# residue: what a finished case left behind, one line each; empty when clean.
residue() {
	local s p
	s=$(subdirs "$M" | tr '\n' ' ')
	[ -n "$s" ] && echo "sets: $s"
	[ "$(cat "/proc/$SLEEPER/cpuset")" = "${M#"$CS"}" ] || echo "subtree task in $(cat "/proc/$SLEEPER/cpuset")"
	[ "$(cat "$M/tasks")" = "$SLEEPER" ] || echo "subtree tasks: $(cat "$M/tasks" | tr '\n' ' ')"
	for p in $(pgrep -f "$FAKE|$BIOS_IDLE"); do
		pid_gone "$p" || echo "process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
	done
	[ "$(cat "$M/cpuset.cpus")" = "$M_CPUS" ] || echo "subtree cpus $(cat "$M/cpuset.cpus")"
}
no_residue() {
	local r
	wait_until 5 empty residue
	r=$(residue)
	if [ -z "$r" ]; then ok "$1: no residue"; else
		not_ok "$1: no residue"
		diag "$r"
	fi
}
# run_case DESC NAME EXPECTED_STATUS: runs NAME to its end (bounded), checks status and residue.
run_case() {
	timeout -s KILL 40 "$QL" -d "$2" >"$SCRATCH/$2.out" 2>"$SCRATCH/$2.err" </dev/null
	local rc=$?
	if [ "$rc" = "$3" ]; then ok "$1: exit $3"; else
		not_ok "$1: exit $3"
		diag "got $rc" "$(tail -n 5 "$SCRATCH/$2.err")"
	fi
	no_residue "$1"
}
# bg_case NAME: starts NAME in the background (sets LPID, LERR, L).
bg_case() {
	ql_start "$1" -d
	wait_until 10 nonempty launcher_of "$LPID"
	L=$(launcher_of "$LPID")
}
# finish DESC EXPECTED_STATUS: waits for the background launcher and checks status and residue.
finish() {
	wait "$LPID"
	local rc=$?
	if [ "$rc" = "$2" ]; then ok "$1: exit $2"; else
		not_ok "$1: exit $2"
		diag "got $rc" "$(tail -n 5 "$LERR")"
	fi
	no_residue "$1"
}
sent() { grep -qx "cmd $1" "$MARK/log" 2>/dev/null; }
# check_shown DESC COMMAND...: check, and on failure what the launcher and the stand-in said.
check_shown() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else
		not_ok "$desc"
		diag "launcher:" "$(grep -v debug "$LERR" | tail -n 8)" "stand-in:" "$(cat "$MARK/log" 2>/dev/null)"
	fi
}
