# Shared helpers for the integration tests: TAP output, scratch dirs, guest images, cleanup.
# Every test script sources this, calls `plan N`, and uses `ok`/`not_ok`/`check`/`skip`.
# Cleanup kills only the pids a test registered and removes only the paths it registered.

set -u
QL=${QL:-${QL_BUILD_DIR:-build}/qemu-launcher}
QEMU=${QEMU:-qemu-system-x86_64}
TEST_NUM=0
CLEANUP_PIDS=()
CLEANUP_CGROUPS=()
SCRATCH=$(mktemp -d /tmp/ql-test.XXXXXX)
chmod 755 "$SCRATCH" # qemu may run as nobody and must read the guest images
CONF=$SCRATCH/conf
mkdir -p "$CONF"
export QEMU_LAUNCHER_CONFIG_DIR=$CONF

plan() { echo "1..$1"; }
ok() { TEST_NUM=$((TEST_NUM + 1)); echo "ok $TEST_NUM - $*"; }
not_ok() { TEST_NUM=$((TEST_NUM + 1)); echo "not ok $TEST_NUM - $*"; }
skip() { TEST_NUM=$((TEST_NUM + 1)); echo "ok $TEST_NUM # SKIP $*"; }
diag() { printf '# %s\n' "$@"; }
# check DESCRIPTION COMMAND...: ok when the command succeeds.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else
		not_ok "$1"
		diag "expected: $2" "actual:   $3"
	fi
}

# start_of PID: the process's start time (field 22 of /proc/PID/stat); empty once it is gone.
start_of() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	s=${s##*) }
	# shellcheck disable=SC2086 # the fields after the comm, split on purpose
	set -- $s
	echo "${20}"
}
# register_pid PID: ended at the test's exit, and only while PID is still the process registered
# (its start time unchanged): a pid reaped long before may by then belong to someone else.
register_pid() { [ -n "${1:-}" ] && CLEANUP_PIDS+=("$1:$(start_of "$1")"); return 0; }
register_cgroup() { CLEANUP_CGROUPS+=("$1"); }
# registered_alive PID START: PID still runs and is the process that started at START.
registered_alive() { [ -n "$2" ] && [ "$(start_of "$1")" = "$2" ] && ! pid_gone "$1"; }
not_registered_alive() { ! registered_alive "$@"; }

# A pid has ended when it is gone or a zombie (PID 1 here reaps orphans only every ~2 s). No pid
# (empty, or 0) has not been seen to end: a check of a process never found must not pass.
pid_gone() {
	[ -n "${1:-}" ] && [ "$1" != 0 ] || return 1
	local st
	st=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 0
	[ -z "$st" ] || [ "$st" = Z ]
}
# wait_until SECONDS COMMAND...: polls until the command succeeds.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	while ! "$@"; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.05
	done
}
# The qemu process a launcher started (its only child).
child_of() { pgrep -P "$1" | head -n1; }
# The guardian of launcher $1: its child that runs no exec, so it keeps the launcher's name.
guardian_of() { pgrep -P "$1" -x qemu-launcher | head -n1; }
# The child of PID's child: the qemu of a launcher started under timeout(1) or valgrind.
grandchild_of() {
	local c
	c=$(child_of "$1")
	[ -n "$c" ] && child_of "$c"
}
# nonempty COMMAND... / empty COMMAND...: whether the command prints something. For wait_until,
# which runs its arguments again on every try: a "$(...)" among them is expanded only once, before
# the first, so `wait_until 10 test -n "$(launcher_of $LPID)"` polled a constant (empty when the
# launcher was not forked yet: a 10 s stall that made signal tests miss their window).
nonempty() { [ -n "$("$@")" ]; }
empty() { [ -z "$("$@")" ]; }

# _cleanup_pids: SIGKILLs the registered processes that still run. A timeout(1) wrapper leads a
# process group of its own and does not pass a SIGKILL on: its whole group goes (the launcher
# under it, and its qemu and guardian, which call no setsid/setpgid).
_cleanup_pids() {
	local e p s
	for e in "${CLEANUP_PIDS[@]}"; do
		p=${e%%:*} s=${e#*:}
		registered_alive "$p" "$s" || continue
		if [ "$(ps -o pgid= -p "$p" 2>/dev/null | tr -d ' ')" = "$p" ]; then
			kill -KILL -- "-$p" 2>/dev/null
		else
			kill -KILL "$p" 2>/dev/null
		fi
	done
	for e in "${CLEANUP_PIDS[@]}"; do
		wait_until 5 not_registered_alive "${e%%:*}" "${e#*:}"
	done
}
_cleanup() {
	_cleanup_pids
	local i
	for ((i = ${#CLEANUP_CGROUPS[@]} - 1; i >= 0; i--)); do
		rmdir_tree "${CLEANUP_CGROUPS[$i]}"
	done
	rm -rf "$SCRATCH"
}
trap _cleanup EXIT

# Removes a cgroup directory tree bottom-up, moving any task left inside to its top's parent.
rmdir_tree() {
	local top=$1 d t
	[ -d "$top" ] || return 0
	local parent
	parent=$(dirname "$top")
	while read -r d; do
		for t in $(cat "$d/tasks" 2>/dev/null); do
			echo "$t" >"$parent/tasks" 2>/dev/null
		done
		rmdir "$d" 2>/dev/null || { sleep 0.2; rmdir "$d" 2>/dev/null; }
	done < <(find "$top" -depth -type d)
}

# Self-contained guests: a 64 KiB BIOS whose reset vector (last 16 bytes) holds the code.
# exit guest: writes 'X' to COM1, then isa-debug-exit with 5 -> qemu exits with (5<<1)|1 = 11.
mk_bios_exit() {
	head -c 65520 /dev/zero >"$1"
	printf '\xb0\x58\xba\xf8\x03\xee\xb0\x05\xe6\xf4\xf4\xeb\xfe\x00\x00\x00' >>"$1"
	chmod 644 "$1"
}
# idle guest: cli; hlt; jmp back - sits there forever at no CPU cost.
mk_bios_idle() {
	head -c 65520 /dev/zero >"$1"
	printf '\xfa\xf4\xeb\xfd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' >>"$1"
	chmod 644 "$1"
}
BIOS_EXIT=$SCRATCH/exit.bin
BIOS_IDLE=$SCRATCH/idle.bin
mk_bios_exit "$BIOS_EXIT"
mk_bios_idle "$BIOS_IDLE"
QEMU_PATH=$(command -v "$QEMU")

# def NAME: writes $CONF/NAME.yml from stdin.
def() { cat >"$CONF/$1.yml"; }

# Common qemu list entries for a TCG guest that needs no disk.
guest_opts() { # guest_opts exit|idle
	local bios=$BIOS_EXIT
	[ "$1" = idle ] && bios=$BIOS_IDLE
	cat <<EOT
- machine: [ pc, accel: tcg ]
- nodefaults
- display: none
- m: 16
- bios: $bios
- device: [ isa-debug-exit, iobase: 0xf4, iosize: 0x04 ]
EOT
}

# fresh_logs NAME: LOUT and LERR for a launcher started in the background, emptied before the
# job starts: its own redirections truncate them only once it runs, and a wait for a line would
# meanwhile find an earlier run's.
fresh_logs() {
	LOUT=$SCRATCH/$1.out
	LERR=$SCRATCH/$1.err
	: >"$LOUT"
	: >"$LERR"
}
# Starts the launcher in the background: ql_start NAME [ARGS...]; sets LPID and LOUT/LERR files.
ql_start() {
	local name=$1
	shift
	fresh_logs "$name"
	timeout -s KILL 60 "$QL" "$@" "$name" >"$LOUT" 2>"$LERR" </dev/null &
	LPID=$!
	register_pid "$LPID"
}
# The real launcher pid under timeout(1).
launcher_of() { child_of "$1"; }
# qemu_execd: $Q is set and runs qemu's binary. The launcher's child is seen as soon as it is
# forked: only after its exec are its uid, limits and environment qemu's own.
QEMU_EXE=$(readlink -f "$QEMU_PATH")
qemu_execd() { [ -n "${Q:-}" ] && [ "$(readlink "/proc/$Q/exe" 2>/dev/null)" = "$QEMU_EXE" ]; }

# fail_rest REASON: the rest of the plan (NTESTS) fails, when a step the test relies on did not
# happen (skip_all is for a facility the host lacks, not for the launcher failing).
fail_rest() {
	local i
	for ((i = TEST_NUM; i < NTESTS; i++)); do not_ok "$1"; done
	exit 1
}
# skip_all REASON: the rest of the plan (NTESTS) is skipped, e.g. when a facility is absent.
skip_all() {
	local i
	for ((i = TEST_NUM; i < NTESTS; i++)); do skip "$1"; done
	exit 0
}

# require_cpuset_v1: skips the file unless we are root with a writable cpuset v1 hierarchy and
# 2 CPUs (vCPUs go to the last one, the pool keeps the others). Sets CS, NCPU, PIN, POOL_EXPECT.
CS=/sys/fs/cgroup/cpuset
require_cpuset_v1() {
	[ "$(id -u)" = 0 ] || skip_all "needs root for cpuset v1"
	grep -q ' - cgroup [^ ]* [^ ]*cpuset' /proc/self/mountinfo && [ -w "$CS/cpuset.cpus" ] ||
		skip_all "no writable cpuset v1 hierarchy at $CS"
	NCPU=$(nproc --all)
	[ "$NCPU" -ge 2 ] || skip_all "needs 2 host CPUs (one for vCPUs, one for the pool)"
	PIN=$((NCPU - 1))
	POOL_EXPECT=$([ "$PIN" -eq 1 ] && echo 0 || echo "0-$((PIN - 1))")
}

# delegated_cpuset NAME: creates $CS/NAME with all CPUs and memory nodes (removed at exit) and
# points the launcher at it, so it only ever moves tasks this test put there. Sets M.
delegated_cpuset() {
	M=$CS/$1
	mkdir "$M"
	register_cgroup "$M"
	cat "$CS/cpuset.cpus" >"$M/cpuset.cpus"
	cat "$CS/cpuset.mems" >"$M/cpuset.mems"
	export QEMU_LAUNCHER_CPUSET_MOUNT_PATH=$M
	unset QEMU_LAUNCHER_CPUSET_PREFIX
}

# nested_delegated_cpuset NAME: delegated_cpuset one level deeper ($CS/NAME/m). The launchers'
# lock is on the mount path's parent, here $CS/NAME: this test's own, so holding it (or a
# launcher stopped inside it) stalls no other launcher on the host. Sets M and LOCKDIR.
nested_delegated_cpuset() {
	mkdir "$CS/$1"
	register_cgroup "$CS/$1"
	cat "$CS/cpuset.cpus" >"$CS/$1/cpuset.cpus"
	cat "$CS/cpuset.mems" >"$CS/$1/cpuset.mems"
	delegated_cpuset "$1/m"
	LOCKDIR=$CS/$1
}

# delegated_sleeper: a task of our own inside $M (stands for "every task of the mount path"):
# the launcher must move it to the pool and back. Sets SLEEPER.
delegated_sleeper() {
	sleep 1000 &
	SLEEPER=$!
	register_pid "$SLEEPER"
	echo "$SLEEPER" >"$M/tasks"
}

# thread_of QEMU_PID COMM: the TID whose comm is COMM (qemu runs with debug-threads=on).
thread_of() {
	local t
	for t in /proc/$1/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] && { basename "$t"; return 0; }
	done
	return 1
}
cpuset_of() { cat "/proc/$1/task/$2/cpuset" 2>/dev/null; }
allowed_of() { awk '/^Cpus_allowed_list:/ {print $2}' "/proc/$1/task/$2/status" 2>/dev/null; }
# policy_of TID: "SCHED_FIFO|SCHED_RESET_ON_FORK 10"
policy_of() { chrt -p "$1" 2>/dev/null | awk -F': ' '/policy/ {p=$2} /priority/ {print p, $2}'; }
