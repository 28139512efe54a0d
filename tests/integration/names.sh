# NAME is a file name stem inside the config dir, never a path: every trick (traversal, absolute
# paths, subdirectories, hidden files, over-long or empty names, option look-alikes, terminal
# escapes, non-regular files) exits 125 with a plain message and starts nothing. Each refused
# NAME has a valid decoy definition where a path-following launcher would find it, whose
# binary leaves a mark if anything ever runs it.
. "$(dirname "$0")/lib.sh"
plan 77

MARK=$SCRATCH/ran
printf '#!/bin/sh\ntouch %s\n' "$MARK" >"$SCRATCH/qemu"
chmod 755 "$SCRATCH/qemu"
decoy() { printf 'launcher:\n  binary: %s\nqemu:\n- nodefaults\n' "$SCRATCH/qemu" >"$1"; }

# refused DESCRIPTION NAME FRAGMENT: exit 125, one line naming the problem, nothing run.
refused() {
	local desc=$1 name=$2 fragment=$3 rc
	rm -f "$MARK"
	timeout 10 "$QL" -- "$name" >"$SCRATCH/out" 2>"$SCRATCH/err" </dev/null
	rc=$?
	expect_eq "$desc: exit 125" 125 "$rc"
	if grep -qF -- "$fragment" "$SCRATCH/err" && [ ! -s "$SCRATCH/out" ]; then
		ok "$desc: says \"$fragment\""
	else
		not_ok "$desc: says \"$fragment\""
		diag "stderr: $(head -c 300 "$SCRATCH/err")"
	fi
	check "$desc: nothing executed" test ! -e "$MARK"
}

mkdir -p "$CONF/sub" "$SCRATCH/outside"
decoy "$SCRATCH/x.yml"
refused "../x" "../x" "invalid VM name"
decoy "$SCRATCH/outside/vm.yml"
refused "absolute path" "$SCRATCH/outside/vm" "invalid VM name"
refused "/etc/passwd" /etc/passwd "invalid VM name"
decoy "$CONF/sub/b.yml"
refused "a/b (subdirectory)" sub/b "invalid VM name"
refused "empty NAME" "" "the VM name is empty"
decoy "$CONF/.hidden.yml"
refused ".hidden" .hidden "invalid VM name"
long=$(printf 'v%.0s' $(seq 1 65))
decoy "$CONF/$long.yml"
refused "65-byte NAME" "$long" "longer than 64 bytes"
refused "4 KiB NAME" "$(printf 'v%.0s' $(seq 1 4096))" "longer than 64 bytes"
decoy "$CONF/-x.yml"
refused "option look-alike after --" -x "invalid VM name"
decoy "$CONF/x.yml"
refused "x.yml names x.yml.yml, not x.yml" x.yml "x.yml.yml\` does not exist"

# A name that is really a terminal escape must not reach the terminal raw.
refused "escape sequence in NAME" "$(printf 'a\033[31mred')" "invalid VM name"
if grep -q $'\033' "$SCRATCH/err"; then
	not_ok "escape sequence in NAME: not echoed raw to the terminal"
	diag "stderr: $(cat -v "$SCRATCH/err")"
else
	ok "escape sequence in NAME: not echoed raw to the terminal"
fi

# Not regular files: refused at once (a FIFO must not block the launcher waiting for a writer).
mkfifo "$CONF/fifo.yml"
refused "FIFO as NAME.yml" fifo "not a regular file"
mkdir "$CONF/dir.yml"
refused "directory as NAME.yml" dir "not a regular file"
ln -s /dev/zero "$CONF/zero.yml"
refused "symlink to /dev/zero" zero "not a regular file"

# Positive controls: the longest allowed name and the allowed punctuation work, and --list
# shows exactly the valid names.
max=$(printf 'v%.0s' $(seq 1 64))
decoy "$CONF/$max.yml"
timeout 10 "$QL" --check "$max" >/dev/null 2>"$SCRATCH/err"
expect_eq "64-byte NAME is accepted (--check)" 0 $?
decoy "$CONF/vm_1.a-b+c.yml"
timeout 10 "$QL" --check vm_1.a-b+c >/dev/null 2>"$SCRATCH/err"
expect_eq "NAME with _ . - + is accepted (--check)" 0 $?
listed=" $(timeout 10 "$QL" --list 2>/dev/null | tr '\n' ' ')"
if [[ $listed == *" $max "* && $listed == *" vm_1.a-b+c "* && $listed == *" x "* &&
	$listed != *hidden* && $listed != *" -x "* && $listed != *" $long "* ]]; then
	ok "--list shows the valid names and none of the invalid ones"
else
	not_ok "--list shows the valid names and none of the invalid ones"
	diag "listed:$listed"
fi
check "no check or list ever executed the binary" test ! -e "$MARK"

# --- issue 10 item 11 ---------------------------------------------------------------------------
# Names that would clash in a cgroup directory (beside `pool` and the interface files) are
# refused before anything is read, not found out later by a backend that falls back to affinity.
for n in pool tasks notify_on_release cgroup.procs cpuset.cpus; do
	decoy "$CONF/$n.yml"
	refused "reserved NAME $n" "$n" "the VM name \`$n\` is reserved"
done
# A prefix that is hidden (--status and the tidy-up skip dot directories) or reserved.
for pfx in .hidden pool tasks; do
	rm -f "$MARK"
	QEMU_LAUNCHER_CPUSET_PREFIX=$pfx timeout 10 "$QL" x >/dev/null 2>"$SCRATCH/err" </dev/null
	rc=$?
	if [ $rc = 125 ] && grep -q "QEMU_LAUNCHER_CPUSET_PREFIX \`$pfx\` must be a single directory name that does not start with" "$SCRATCH/err" &&
		[ ! -e "$MARK" ]; then
		ok "QEMU_LAUNCHER_CPUSET_PREFIX=$pfx: refused early (125), nothing run"
	else
		not_ok "QEMU_LAUNCHER_CPUSET_PREFIX=$pfx: refused early (125), nothing run"
		diag "exit $rc: $(cat "$SCRATCH/err")"
	fi
done
# Invalid UTF-8 in NAME is shown escaped, byte by byte, as control characters are.
timeout 10 "$QL" -- $'v\xff\xc3' >/dev/null 2>"$SCRATCH/err"
expect_eq "NAME with invalid UTF-8: exit 125" 125 $?
check "NAME with invalid UTF-8: shown as \\xff\\xc3" grep -qF 'invalid VM name `v\xff\xc3`' "$SCRATCH/err"
check "NAME with invalid UTF-8: no raw byte reaches the terminal" bash -c "! LC_ALL=C grep -q \$'[\\x80-\\xff]' '$SCRATCH/err'"
timeout 10 "$QL" --status -- $'a\033[31m\xff' >"$SCRATCH/out" 2>"$SCRATCH/err"
expect_eq "--status with an escape sequence as NAME: refused, 125" 125 $?
check "--status NAME: nothing raw reaches the terminal" bash -c "! LC_ALL=C grep -q \$'[\\x1b\\x80-\\xff]' '$SCRATCH/out' '$SCRATCH/err'"
# Conflicting modes are a usage error, whatever their order; repeating one is not.
conflict() {
	local desc=$1
	shift
	rm -f "$MARK"
	timeout 10 "$QL" "$@" >"$SCRATCH/out" 2>"$SCRATCH/err" </dev/null
	local rc=$?
	if [ $rc = 2 ] && grep -q "cannot be combined" "$SCRATCH/err" && [ ! -s "$SCRATCH/out" ] &&
		[ ! -e "$MARK" ]; then
		ok "$desc: usage error (2)"
	else
		not_ok "$desc: usage error (2)"
		diag "exit $rc: $(cat "$SCRATCH/err")"
	fi
}
conflict "-n -s NAME" -n -s x
conflict "--dry-run --check NAME" --dry-run --check x
conflict "--check --dry-run NAME" --check --dry-run x
conflict "--list --status" --list --status
conflict "--status --import" --status --import -- qemu-system-x86_64
timeout 10 "$QL" -n -n x >/dev/null 2>&1
expect_eq "the same mode twice (-n -n) is fine" 0 $?
check "... and nothing was executed by any of them" test ! -e "$MARK"
