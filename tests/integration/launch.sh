# Launching without pinning: exit statuses, stdio, signals, environment, identity, limits, fds.
# Drives the built binary against real qemu (TCG).
. "$(dirname "$0")/lib.sh"
plan 72

# Waits until the launcher started by ql_start has a qemu child; sets L (launcher) and Q (qemu).
wait_qemu() {
	wait_until 10 nonempty grandchild_of "$LPID"
	L=$(launcher_of $LPID)
	Q=$(child_of "$L")
}
# With -v: also wait until the QMP handshake is done, so a signal meets the supervision loop and
# not the start sequence (which has its own, shorter path: see faults.sh).
wait_supervised() {
	wait_qemu
	wait_until 20 grep -q "QMP connected" "$LERR"
}

# --- exit statuses --------------------------------------------------------------------------
{
	printf 'launcher:\n  binary: %s\nqemu:\n' "$QEMU"
	guest_opts exit
} | def exit11
timeout 60 "$QL" exit11 >/dev/null 2>"$SCRATCH/e"
expect_eq "qemu's own exit status is the launcher's (guest exits with 11)" 11 $?

def serial <<EOT
launcher:
  binary: $QEMU
qemu:
- machine: [ pc, accel: tcg ]
- nographic
- m: 16
- bios: $BIOS_EXIT
- device: [ isa-debug-exit, iobase: 0xf4, iosize: 0x04 ]
EOT
out=$(timeout 60 "$QL" serial </dev/null 2>/dev/null)
rc=$?
expect_eq "-nographic: exit status 11" 11 $rc
check "-nographic: the guest's serial output reaches the launcher's stdout" grep -q X <<<"$out"

{
	printf 'launcher:\n  binary: %s\nqemu:\n' "$QEMU"
	guest_opts exit
	printf -- '- serial: stdio\n'
} | def serialstdio
out=$(timeout 60 "$QL" serialstdio </dev/null 2>/dev/null)
expect_eq "-serial stdio: the guest's serial output is on stdout" X "$out"

printf 'launcher:\n  binary: /nonexistent/qemu-system-x86_64\nqemu:\n- nodefaults\n' | def notfound
timeout 20 "$QL" notfound >/dev/null 2>"$SCRATCH/e"
expect_eq "binary not found: exit 127" 127 $?
check "binary not found: the message names the binary" grep -q "/nonexistent/qemu-system-x86_64.*not found" "$SCRATCH/e"

printf 'launcher:\n  binary: no-such-qemu-binary\nqemu: []\n' | def notfound_path
timeout 20 "$QL" notfound_path >/dev/null 2>&1
expect_eq "binary not found on PATH: exit 127" 127 $?

printf '#!/bin/sh\nexit 0\n' >"$SCRATCH/noexec"
chmod 644 "$SCRATCH/noexec"
printf 'launcher:\n  binary: %s\nqemu: []\n' "$SCRATCH/noexec" | def noexec
timeout 20 "$QL" noexec >/dev/null 2>"$SCRATCH/e"
expect_eq "binary not executable: exit 126" 126 $?

printf 'launcher:\n  binary: %s\n  clear_env: maybe\n' "$QEMU" | def badbool
timeout 20 "$QL" badbool >/dev/null 2>"$SCRATCH/e"
expect_eq "invalid definition: exit 125" 125 $?
check "invalid definition: FILE:LINE:COL message" grep -q "^qemu-launcher: $CONF/badbool.yml:3:14: " "$SCRATCH/e"

timeout 20 "$QL" >/dev/null 2>&1
expect_eq "no NAME: usage error, exit 2" 2 $?
timeout 20 "$QL" --no-such-option x >/dev/null 2>&1
expect_eq "unknown option: exit 2" 2 $?
timeout 20 "$QL" does-not-exist >/dev/null 2>"$SCRATCH/e"
expect_eq "missing definition: exit 125" 125 $?
timeout 20 "$QL" ../etc/passwd >/dev/null 2>"$SCRATCH/e"
expect_eq "NAME with a path: exit 125" 125 $?

printf 'launcher:\n  binary: %s\nqemu:\n- nodefaults\n- display: none\n- machine: no-such-machine\n' "$QEMU" | def failing
timeout 20 "$QL" failing >/dev/null 2>"$SCRATCH/e"
expect_eq "qemu failing at startup: qemu's status (1)" 1 $?
check "qemu failing at startup: qemu's own message is shown" grep -q "^qemu-system-x86_64: unsupported machine type" "$SCRATCH/e"
check "qemu failing at startup: the launcher says qemu failed, with its status" grep -q "qemu exited with status 1 during startup" "$SCRATCH/e"

# --- a running VM: QMP channel, environment, fds, signals -----------------------------------
{
	printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  env:\n    QL_TEST_VAR: "a b,c"\nqemu:\n' "$QEMU"
	guest_opts idle
} | def idle
: >"$SCRATCH/inherited-fd"
exec 7<"$SCRATCH/inherited-fd" # an inherited fd that must not leak into qemu
QL_INHERITED=yes ql_start idle -v
exec 7<&-
wait_supervised
check "qemu is running under the launcher" test -n "$Q"
cmd=$(tr '\0' ' ' <"/proc/$Q/cmdline")
check "QMP on a private socket fd" grep -q -- "-chardev socket,id=qemu-launcher-qmp,fd=3 -mon chardev=qemu-launcher-qmp,mode=control" <<<"$cmd"
check "no -qmp option at all" bash -c "! tr '\\0' '\\n' </proc/$Q/cmdline | grep -qx -- -qmp"
check "fd 3 of qemu is a socket" bash -c "readlink /proc/$Q/fd/3 | grep -q '^socket:'"
check "an fd the launcher inherited did not leak into qemu" bash -c "! ls -l /proc/$Q/fd | grep -q '$SCRATCH/inherited-fd'"
check "the leak check can see a leaked fd (the launcher itself holds it until exec)" bash -c "ls -l /proc/$L/fd | grep -q '$SCRATCH/inherited-fd'"
env=$(tr '\0' '\n' <"/proc/$Q/environ")
check "env: definition variable passed verbatim" grep -qx "QL_TEST_VAR=a b,c" <<<"$env"
check "env: launcher's environment inherited without clear_env" grep -qx "QL_INHERITED=yes" <<<"$env"
kill -TERM "$L"
wait "$LPID"
expect_eq "SIGTERM: graceful shutdown ends with qemu's status 0" 0 $?
check "SIGTERM: system_powerdown was tried first" grep -q "system_powerdown" "$LERR"
check "SIGTERM: then quit after shutdown_timeout" grep -q "telling qemu to quit" "$LERR"
check "SIGTERM: qemu is gone" pid_gone "$Q"

# SIGHUP behaves like SIGTERM; a second signal escalates straight to quit.
sed -i 's/shutdown_timeout: 1/shutdown_timeout: 30/' "$CONF/idle.yml"
ql_start idle -v
wait_supervised
kill -HUP "$L"
wait_until 5 grep -q system_powerdown "$LERR"
check "SIGHUP: system_powerdown" grep -q system_powerdown "$LERR"
kill -TERM "$L"
wait "$LPID"
expect_eq "SIGHUP then SIGTERM: the second signal escalates to quit, status 0" 0 $?
check "escalation: quit was sent" grep -q "telling qemu to quit" "$LERR"
check "escalation: qemu is gone" pid_gone "$Q"

# SIGINT alone (not from a terminal, so qemu does not see it): a grace period, then the ladder.
sed -i 's/shutdown_timeout: 30/shutdown_timeout: 1/' "$CONF/idle.yml"
ql_start idle -v
wait_supervised
kill -INT "$L"
wait "$LPID"
expect_eq "SIGINT: qemu ends, status 0" 0 $?
check "SIGINT: the ladder ran (powerdown, quit)" grep -q "telling qemu to quit" "$LERR"
check "SIGINT: qemu is gone" pid_gone "$Q"

# qemu killed by a signal: 128+N
ql_start idle
wait_qemu
kill -KILL "$Q"
wait "$LPID"
expect_eq "qemu killed by SIGKILL: exit 137" 137 $?

# launcher SIGKILLed: PDEATHSIG ends qemu
ql_start idle
wait_qemu
kill -KILL "$L"
check "launcher SIGKILLed: qemu ends (PR_SET_PDEATHSIG)" wait_until 10 pid_gone "$Q"

# ... also a qemu that switches to another user (-runas): the kernel drops its parent-death signal
# then, and the launcher's guardian ends it instead
{
	printf 'launcher:\n  binary: %s\nqemu:\n- runas: nobody\n' "$QEMU"
	guest_opts idle
} | def runas
ql_start runas -v
wait_supervised
register_pid "$Q" # ended at the test's exit should the guardian not do it
check "-runas: qemu runs as nobody once set up" wait_until 10 grep -Eq "^Uid:\s+65534\s" "/proc/$Q/status"
kill -KILL "$L"
check "launcher SIGKILLed, qemu with -runas: qemu ends all the same (the guardian)" wait_until 10 pid_gone "$Q"

# --- clear_env, user/group, rlimit ----------------------------------------------------------
{
	printf 'launcher:\n  binary: %s\n  clear_env: true\n  user: nobody\n  group: 65534\n' "$QEMU"
	printf '  rlimit_memlock: 4M\n  env:\n    ONLY: this\nqemu:\n'
	guest_opts idle
} | def ident
ql_start ident
wait_qemu
wait_until 10 qemu_execd
expect_eq "clear_env: only the definition's variables" "ONLY=this" "$(tr '\0' '\n' <"/proc/$Q/environ")"
expect_eq "user: qemu runs as uid 65534 (real, effective, saved, fs)" "65534 65534 65534 65534" "$(awk '/^Uid:/ {print $2, $3, $4, $5}' /proc/$Q/status)"
expect_eq "group: qemu runs as gid 65534" "65534 65534 65534 65534" "$(awk '/^Gid:/ {print $2, $3, $4, $5}' /proc/$Q/status)"
expect_eq "user: supplementary groups are the user's" "65534" "$(awk '/^Groups:/ {print $2}' /proc/$Q/status)"
expect_eq "rlimit_memlock: 4M soft and hard" "4194304 4194304" "$(awk '/^Max locked memory/ {print $4, $5}' /proc/$Q/limits)"
kill -TERM "$L"
wait "$LPID"

sed -i 's/rlimit_memlock: 4M/rlimit_memlock: true/' "$CONF/ident.yml"
cap_eff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
if (((0x$cap_eff >> 24) & 1)); then
	ql_start ident
	wait_qemu
	wait_until 10 qemu_execd
	expect_eq "rlimit_memlock: true gives unlimited" "unlimited unlimited" "$(awk '/^Max locked memory/ {print $4, $5}' /proc/$Q/limits)"
	kill -TERM "$L"
	wait "$LPID"
	# The refusal path needs a launcher without CAP_SYS_RESOURCE: drop it from the bounding
	# and inheritable sets, so not even root's exec gets it back.
	NOCAP=(setpriv --bounding-set=-sys_resource --inh-caps=-sys_resource)
else
	skip "rlimit_memlock: true gives unlimited: needs CAP_SYS_RESOURCE, which this test lacks"
	NOCAP=()
fi
timeout 20 "${NOCAP[@]}" "$QL" ident >/dev/null 2>"$SCRATCH/e"
expect_eq "rlimit_memlock: true without CAP_SYS_RESOURCE: exit 125" 125 $?
check "rlimit_memlock: the refusal is explained" grep -q "RLIMIT_MEMLOCK.*Operation not permitted" "$SCRATCH/e"

# --- CLI modes ------------------------------------------------------------------------------
check "--help exits 0 and shows usage" bash -c "'$QL' --help | grep -q '^Usage: qemu-launcher'"
check "--version" bash -c "'$QL' --version | grep -q '^qemu-launcher [0-9]'"
expect_eq "--list shows the definitions" "badbool exit11 failing ident idle noexec notfound notfound_path runas serial serialstdio" "$("$QL" --list | tr '\n' ' ' | sed 's/ $//')"
check "--check accepts a valid definition" "$QL" --check idle
"$QL" -n idle >"$SCRATCH/dry" 2>&1
check "--dry-run prints the shell-quoted command line" grep -q "^$QEMU -machine pc,accel=tcg -nodefaults -display none" "$SCRATCH/dry"
printf '#!/bin/sh\ntouch %s/ran\n' "$SCRATCH" >"$SCRATCH/marker-qemu"
chmod 755 "$SCRATCH/marker-qemu"
printf 'launcher:\n  binary: %s\nqemu:\n- nodefaults\n' "$SCRATCH/marker-qemu" | def marker
"$QL" --dry-run marker >/dev/null 2>&1
"$QL" --check marker >/dev/null 2>&1
check "--dry-run and --check execute nothing" test ! -e "$SCRATCH/ran"

# --- the caller's signal dispositions -------------------------------------------------------
# A parent that ignores SIGCHLD passes that on through exec; left so, the kernel would reap qemu
# itself and qemu's status would be lost.
IGNCHLD=(python3 -c 'import os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
os.execv(sys.argv[1], sys.argv[1:])')
timeout 60 "${IGNCHLD[@]}" "$QL" exit11 >/dev/null 2>"$SCRATCH/e"
expect_eq "SIGCHLD ignored by the caller: qemu's own exit status is the launcher's (11)" 11 $?
timeout 20 "${IGNCHLD[@]}" "$QL" failing >/dev/null 2>"$SCRATCH/e"
expect_eq "SIGCHLD ignored by the caller, qemu failing at startup: qemu's status (1)" 1 $?
check "... the launcher says qemu failed, with its status" grep -q "qemu exited with status 1 during startup" "$SCRATCH/e"

# nohup: SIGHUP is ignored, and stays so in the launcher
fresh_logs idle
timeout -s KILL 60 nohup "$QL" -v idle >"$LOUT" 2>"$LERR" </dev/null &
LPID=$!
register_pid "$LPID"
wait_supervised
kill -HUP "$L"
sleep 1
check "nohup: a SIGHUP the caller ignores is ignored by the launcher: qemu runs on" \
	bash -c "grep -Eq '^State:\s+[RS]' /proc/$Q/status"
check "... and nothing was asked of it" bash -c "! grep -Eq 'received|system_powerdown|quit' '$LERR'"
kill -TERM "$L"
wait "$LPID"
expect_eq "nohup: SIGTERM still shuts the VM down, status 0" 0 $?
check "... through system_powerdown" grep -q "system_powerdown" "$LERR"

# A guest the definition leaves paused (-S) and the user continues through a monitor of their own
# is running: a SIGTERM asks it to power down. And a running guest the user pauses there is told
# to quit at once (ACPI cannot reach it).
USER_QMP=$SCRATCH/user-qmp.sock
{
	printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\nqemu:\n' "$QEMU"
	guest_opts idle
	printf -- '- qmp: [ "unix:%s", server: on, wait: off ]\n' "$USER_QMP"
} | def usermon
{
	cat "$CONF/usermon.yml"
	printf -- '- S\n'
} | def usermon_s
# user_qmp COMMAND: COMMAND on the user's own QMP socket; prints qemu's reply line.
user_qmp() {
	timeout 10 python3 - "$USER_QMP" "$1" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()  # the greeting
for cmd in ("qmp_capabilities", sys.argv[2]):
    f.write(json.dumps({"execute": cmd}) + "\n")
    f.flush()
    while True:
        line = json.loads(f.readline())
        if "return" in line or "error" in line:
            break
print(json.dumps(line))
PY
}
ql_start usermon_s -v
wait_supervised
wait_until 10 test -S "$USER_QMP"
expect_eq "-S: the guest is paused (the user's monitor)" '{"return": {"status": "prelaunch", "singlestep": false, "running": false}}' "$(user_qmp query-status)"
user_qmp cont >/dev/null
check "-S: the user continued the guest (RESUME)" wait_until 10 grep -q "qemu event RESUME" "$LERR"
kill -TERM "$L"
wait "$LPID"
expect_eq "-S, continued by the user, SIGTERM: status 0" 0 $?
check "... the guest was asked to power down first" grep -q "asking the guest to power down" "$LERR"
rm -f "$USER_QMP"
ql_start usermon -v
wait_supervised
wait_until 10 test -S "$USER_QMP"
user_qmp stop >/dev/null
check "a running guest paused by the user (STOP)" wait_until 10 grep -q "qemu event STOP" "$LERR"
kill -TERM "$L"
wait "$LPID"
expect_eq "paused by the user, SIGTERM: status 0" 0 $?
check "... no power-down asked of a paused guest" bash -c "! grep -q 'asking the guest to power down' '$LERR'"
check "... qemu told to quit at once" grep -q "telling qemu to quit" "$LERR"

# A user id without passwd entry has no group of its own: run by root, qemu would keep group 0.
U=54321
while getent passwd "$U" >/dev/null; do U=$((U + 1)); done
{
	printf 'launcher:\n  binary: %s\n  user: %s\nqemu:\n' "$QEMU" "$U"
	guest_opts exit
} | def rootgroup
timeout 20 "$QL" rootgroup >/dev/null 2>"$SCRATCH/e"
expect_eq "user id without passwd entry and no group, run by root: exit 125" 125 $?
check "... the message says to name a group" grep -q "no passwd entry, so qemu would keep group 0 (root's): name a \`group\` too" "$SCRATCH/e"
printf '  group: %s\n' "$U" | sed -i "/^  user: /r /dev/stdin" "$CONF/rootgroup.yml"
timeout 60 "$QL" rootgroup >/dev/null 2>"$SCRATCH/e"
expect_eq "... with a group it runs (the guest exits with 11)" 11 $?
