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

register_pid() { CLEANUP_PIDS+=("$1"); }
register_cgroup() { CLEANUP_CGROUPS+=("$1"); }

# A pid has ended when it is gone or a zombie (PID 1 here reaps orphans only every ~2 s).
pid_gone() {
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

_cleanup() {
	local p
	for p in "${CLEANUP_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	for p in "${CLEANUP_PIDS[@]}"; do
		wait_until 5 pid_gone "$p"
	done
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

# Starts the launcher in the background: ql_start NAME [ARGS...]; sets LPID and LOUT/LERR files.
ql_start() {
	local name=$1
	shift
	LOUT=$SCRATCH/$name.out
	LERR=$SCRATCH/$name.err
	timeout -s KILL 60 "$QL" "$@" "$name" >"$LOUT" 2>"$LERR" </dev/null &
	LPID=$!
	register_pid "$LPID"
}
# The real launcher pid under timeout(1).
launcher_of() { child_of "$1"; }
