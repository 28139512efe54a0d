# NAME is a file name stem inside the config dir, never a path: every trick (traversal, absolute
# paths, subdirectories, hidden files, over-long or empty names, option look-alikes, terminal
# escapes, non-regular files) exits 125 with a plain message and starts nothing. Each refused
# NAME has a valid decoy definition where a path-following launcher would find it, whose
# binary leaves a mark if anything ever runs it.
. "$(dirname "$0")/lib.sh"
plan 47

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
