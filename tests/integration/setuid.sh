#!/bin/bash
# Setuid mode (SECURITY.md, "What setuid mode promises"): a copy of the launcher installed
# setuid-root in a scratch dir, run as `nobody`. Every override and every untrusted definition is
# refused with a plain message and nothing runs; a root-owned definition runs qemu as the caller
# with a rebuilt environment.
# The setuid binary only reads the compiled-in config dir, so this test puts its definitions in
# /usr/local/etc/qemu-launcher (creating it if absent and removing it afterwards; if it exists,
# only files named qltest-su-* are added and removed). Runs are serialised by a lock file.
. "$(dirname "$0")/lib.sh"
NTESTS=106
plan $NTESTS

[ "$(id -u)" = 0 ] || skip_all "needs root to install a setuid-root copy"
command -v setpriv >/dev/null || skip_all "setpriv (util-linux) is missing"

SU=$SCRATCH/su
mkdir -m 755 "$SU"
cp "$QL" "$SU/qemu-launcher"
chown root:root "$SU/qemu-launcher"
chmod 4755 "$SU/qemu-launcher"
SUQL=$SU/qemu-launcher
# The marker stand-in for qemu: leaves a file if anything ever executes it (as any user).
MARK=$SCRATCH/mark
mkdir -m 1777 "$MARK"
printf '#!/bin/sh\ntouch %s/ran-$$\n' "$MARK" >"$SU/marker-qemu"
chmod 755 "$SU/marker-qemu"
nothing_ran() { [ -z "$(ls -A "$MARK")" ]; }

SYSCONF=/usr/local/etc/qemu-launcher
# In /run, which only root writes (a root `>` in /tmp follows whatever symlink another user put
# there), and appended to, never truncated. A lock still held after 60 s is a run that hangs
# (this test takes seconds), not a facility the host lacks: the rest fails.
exec 9>>/run/qemu-launcher-setuid-test.lock
flock -w 60 9 || fail_rest "another setuid test held /run/qemu-launcher-setuid-test.lock for 60 s"
CREATED_SYSCONF=""
if [ ! -e "$SYSCONF" ]; then
	mkdir -p "$(dirname "$SYSCONF")"
	mkdir -m 755 "$SYSCONF"
	CREATED_SYSCONF=1
fi
P=qltest-su-$$
HUGE_MNT="" HUGE_ORIG=""
HUGE_POOL=/sys/kernel/mm/hugepages/hugepages-2048kB
su_cleanup() {
	rm -f "$SYSCONF/$P"-*.yml
	[ -n "$HUGE_MNT" ] && umount "$HUGE_MNT" 2>/dev/null
	[ -n "$HUGE_ORIG" ] && [ "$(cat "$HUGE_POOL/nr_hugepages")" != "$HUGE_ORIG" ] &&
		echo "$HUGE_ORIG" >"$HUGE_POOL/nr_hugepages"
	[ -n "$CREATED_SYSCONF" ] && { chown root:root "$SYSCONF"; chmod 755 "$SYSCONF"; rmdir "$SYSCONF"; }
	_cleanup
}
trap su_cleanup EXIT
# sdef SUFFIX: writes a root-owned 0644 $SYSCONF/$P-SUFFIX.yml from stdin.
sdef() {
	cat >"$SYSCONF/$P-$1.yml"
	chown root:root "$SYSCONF/$P-$1.yml"
	chmod 644 "$SYSCONF/$P-$1.yml"
}
# as_nobody CMD...: runs CMD as nobody:nogroup, no supplementary groups, without the suite's
# QEMU_LAUNCHER_CONFIG_DIR.
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups env -u QEMU_LAUNCHER_CONFIG_DIR "$@"; }

# Host state that a refused run must not change.
CS=/sys/fs/cgroup/cpuset
host_state() { # (other tests may add their own sets under $CS meanwhile: look at ours only)
	grep -c cgroup /proc/self/mountinfo
	ls -d "$CS/qemu" 2>/dev/null
}
STATE0=$(host_state)

# refused DESC EXPECTED_MESSAGE_REGEX [env VAR=VAL...] -- ARGS: exit 125, the message, nothing run.
refused() {
	local desc=$1 re=$2
	shift 2
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	(cd "${RCWD:-$PWD}" && as_nobody "${envs[@]}" timeout -s KILL 20 "$SUQL" "$@") \
		>/dev/null 2>"$SCRATCH/refused.err" </dev/null
	local rc=$?
	if [ $rc = 125 ] && grep -Eq -- "$re" "$SCRATCH/refused.err" && nothing_ran; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "exit $rc, stderr: $(cat "$SCRATCH/refused.err")" "marker: $(ls "$MARK")"
	fi
}

printf 'launcher:\n  binary: %s\nqemu:\n- nodefaults\n' "$SU/marker-qemu" | sdef marker
# The marker definition itself is trusted: as root (not setuid mode) through --config-dir it runs.
as_nobody "$SUQL" --version | grep -q "^qemu-launcher " && ok "the setuid copy runs as nobody" ||
	not_ok "the setuid copy runs as nobody"

# --- overrides of where things are: refused before anything is read -------------------------
refused "QEMU_LAUNCHER_CONFIG_DIR is refused" \
	"QEMU_LAUNCHER_CONFIG_DIR is not honoured when qemu-launcher runs setuid" \
	QEMU_LAUNCHER_CONFIG_DIR=$CONF -- "$P-marker"
refused "QEMU_LAUNCHER_CONFIG_DIR set to the default dir is still refused" \
	"QEMU_LAUNCHER_CONFIG_DIR is not honoured" QEMU_LAUNCHER_CONFIG_DIR=$SYSCONF -- "$P-marker"
refused "QEMU_LAUNCHER_CONFIG_DIR set but empty is refused" \
	"QEMU_LAUNCHER_CONFIG_DIR is not honoured" QEMU_LAUNCHER_CONFIG_DIR= -- "$P-marker"
refused "--config-dir is refused" "--config-dir is not accepted when qemu-launcher runs setuid" \
	-- --config-dir "$SYSCONF" "$P-marker"
refused "--config-dir with --list is refused" "--config-dir is not accepted" \
	-- --list --config-dir "$CONF"
refused "QEMU_LAUNCHER_CPUSET_MOUNT_PATH is refused" \
	"QEMU_LAUNCHER_CPUSET_MOUNT_PATH is not honoured" \
	QEMU_LAUNCHER_CPUSET_MOUNT_PATH=$SCRATCH/mnt -- "$P-marker"
refused "QEMU_LAUNCHER_CPUSET_PREFIX is refused" "QEMU_LAUNCHER_CPUSET_PREFIX is not honoured" \
	QEMU_LAUNCHER_CPUSET_PREFIX=evil -- "$P-marker"
refused "QEMU_LAUNCHER_CGROUP2_ROOT is refused" "QEMU_LAUNCHER_CGROUP2_ROOT is not honoured" \
	QEMU_LAUNCHER_CGROUP2_ROOT=$SCRATCH -- "$P-marker"
refused "QEMU_LAUNCHER_TEST_STOP_AT (a test hook) is refused" \
	"QEMU_LAUNCHER_TEST_STOP_AT is not honoured" QEMU_LAUNCHER_TEST_STOP_AT=x -- "$P-marker"
refused "--dry-run with an override is refused as well" "QEMU_LAUNCHER_CPUSET_PREFIX is not honoured" \
	QEMU_LAUNCHER_CPUSET_PREFIX=x -- --dry-run "$P-marker"

# The guardian's reclaim mode (after a killed launcher) takes its paths from argv: only the
# guardian, never a caller, may run it.
refused "the guardian's reclaim mode is refused to a caller" "is the guardian's own mode" \
	-- --reclaim-after-kill name=x "backend=cpuset v1" mount=/sys/fs/cgroup/cpuset prefix=qemu

# --- untrusted definitions --------------------------------------------------------------------
printf 'launcher:\n  binary: %s\nqemu:\n- nodefaults\n' "$SU/marker-qemu" | sdef userowned
chown nobody "$SYSCONF/$P-userowned.yml"
refused "a definition owned by the caller is refused" \
	"definition \`$SYSCONF/$P-userowned.yml\` is not owned by root" -- "$P-userowned"
refused "... also for --dry-run (nothing of it is printed)" "is not owned by root" -- --dry-run "$P-userowned"

printf 'launcher:\n  binary: %s\nqemu:\n- nodefaults\n' "$SU/marker-qemu" | sdef groupw
chmod 664 "$SYSCONF/$P-groupw.yml"
refused "a group-writable definition is refused" \
	"definition \`$SYSCONF/$P-groupw.yml\` is writable by group or others" -- "$P-groupw"
printf 'launcher:\n  binary: %s\nqemu:\n- nodefaults\n' "$SU/marker-qemu" | sdef otherw
chmod 646 "$SYSCONF/$P-otherw.yml"
refused "an other-writable definition is refused" "is writable by group or others" -- "$P-otherw"

# A symlink named like a definition, pointing at a trusted root-owned definition.
cp "$SYSCONF/$P-marker.yml" "$SCRATCH/target.yml"
chmod 644 "$SCRATCH/target.yml"
ln -s "$SCRATCH/target.yml" "$SYSCONF/$P-link.yml"
refused "a symlinked definition is refused, saying it is a symlink" \
	"$SYSCONF/$P-link.yml\` is a symbolic link" -- "$P-link"
ln -s "$SYSCONF/$P-marker.yml" "$SYSCONF/$P-link2.yml"
refused "a symlink to a trusted definition in the same dir is refused too" "is a symbolic link" -- "$P-link2"

printf 'launcher:\n  binary: marker-qemu\nqemu:\n- nodefaults\n' | sdef relbin
refused "a bare binary name (PATH lookup) is refused" \
	"\`binary\` must be an absolute path when qemu-launcher runs setuid" -- "$P-relbin"
# ... even when the caller's cwd holds such a file (execve would run ./marker-qemu).
RCWD=$SU refused "a bare binary name is refused with the binary in the caller's cwd" \
	"must be an absolute path" -- "$P-relbin"
printf 'launcher:\n  binary: ./marker-qemu\nqemu:\n- nodefaults\n' | sdef relbin2
RCWD=$SU refused "a relative path with a slash (./marker-qemu) is refused" \
	"must be an absolute path" -- "$P-relbin2"
printf 'launcher:\n  binary: su/marker-qemu\nqemu:\n- nodefaults\n' | sdef relbin3
RCWD=$SCRATCH refused "a relative path (su/marker-qemu) is refused" "must be an absolute path" -- "$P-relbin3"

if [ -n "$CREATED_SYSCONF" ]; then
	chown nobody "$SYSCONF"
	refused "a config dir owned by the caller is refused" \
		"config dir \`$SYSCONF\` is not owned by root" -- "$P-marker"
	chown root "$SYSCONF"
	chmod 775 "$SYSCONF"
	refused "a group-writable config dir is refused" \
		"config dir \`$SYSCONF\` is writable by group or others" -- "$P-marker"
	chmod 755 "$SYSCONF"
else
	skip "$SYSCONF existed before the test; its ownership is not changed"
	skip "$SYSCONF existed before the test; its mode is not changed"
fi
refused "a NAME with a path is refused" "invalid VM name" -- "../../../tmp/x"

# --- a definition the caller may not read is not shown to them (issue 10 item 8) --------------
SECRET=qltest-s3cret-$$
printf 'launcher:\n  binary: %s\nqemu:\n- nodefaults\n- drive: file=/dev/null,password=%s\n' \
	"$SU/marker-qemu" "$SECRET" | sdef secret
chmod 600 "$SYSCONF/$P-secret.yml"
printf 'launcher:\n  binary: %s\n  %s: 1\nqemu:\n- nodefaults\n' "$SU/marker-qemu" "$SECRET" | sdef secretbad
chmod 600 "$SYSCONF/$P-secretbad.yml"
# hidden DESC ARGS...: exit 125, says the caller may not read it, shows nothing of it, runs nothing.
hidden() {
	local desc=$1
	shift
	as_nobody timeout -s KILL 20 "$SUQL" "$@" >"$SCRATCH/hidden.out" 2>&1 </dev/null
	local rc=$?
	if [ $rc = 125 ] && grep -q "is not readable by you (uid 65534)" "$SCRATCH/hidden.out" &&
		! grep -q "$SECRET" "$SCRATCH/hidden.out" && nothing_ran; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "exit $rc, output: $(cat "$SCRATCH/hidden.out")"
	fi
}
hidden "a root-only (0600) definition: --dry-run shows nothing of it" --dry-run "$P-secret"
hidden "... --check neither" --check "$P-secret"
hidden "... and it is not run (qemu's command line would be in /proc/PID/cmdline for all)" "$P-secret"
hidden "an invalid root-only definition: the parse error does not quote it" --check "$P-secretbad"
chown root:nogroup "$SYSCONF/$P-secret.yml"
chmod 640 "$SYSCONF/$P-secret.yml"
as_nobody timeout -s KILL 20 "$SUQL" --dry-run "$P-secret" >"$SCRATCH/hidden.out" 2>&1 </dev/null
check "readable through the caller's real group (0640 root:nogroup): --dry-run works" \
	grep -q "password=$SECRET" "$SCRATCH/hidden.out"
chmod 600 "$SYSCONF/$P-secret.yml"

expect_eq "refusals changed nothing: same cgroup mounts, no $CS/qemu" "$STATE0" "$(host_state)"
as_nobody "$SU/marker-qemu"
check "the marker stand-in leaves its marker when run (so 'nothing ran' means something)" test -n "$(ls -A "$MARK")"
rm -f "$MARK"/*
as_nobody timeout 20 "$SUQL" "$P-marker" </dev/null >/dev/null 2>&1
check "... and the trusted root-owned marker definition does run it in setuid mode" test -n "$(ls -A "$MARK")"
rm -f "$MARK"/*

# --- a root-owned definition runs qemu as the caller ------------------------------------------
{
	printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  env:\n    QL_DEF_VAR: from-definition\nqemu:\n' "$QEMU_PATH"
	guest_opts idle
} | sdef run
# su_start SUFFIX SETPRIV_ARGS...: starts the setuid launcher in the background as a caller
# with an environment of its own; sets LPID, L (launcher), Q (qemu), LERR.
su_start() {
	local name=$P-$1
	shift
	LERR=$SCRATCH/$name.err
	# The caller's session as a hostile or careless caller leaves it: umask 000, a working
	# directory of their own, session variables pointing at their files.
	(umask 000 && cd "$CALLER_CWD" && exec env \
		QL_CALLER_SECRET=leaked TERM=xterm-test HOME=/root USER=root PATH=/tmp/evil:/usr/bin:/bin \
		DISPLAY=:99 XAUTHORITY=/tmp/caller-xauth XDG_RUNTIME_DIR=/run/user/65534 \
		PULSE_SERVER=unix:/tmp/caller-pulse LC_ALL=/tmp/caller-locale LANG=C.UTF-8 TZ="${SU_TZ:-/tmp/caller-tz}" \
		timeout -s KILL 60 setpriv "$@" env -u QEMU_LAUNCHER_CONFIG_DIR "$SUQL" -v "$name" \
		>/dev/null 2>"$LERR" </dev/null) &
	LPID=$!
	register_pid "$LPID"
	L="" Q=""
	wait_until 10 nonempty grandchild_of "$LPID"
	L=$(launcher_of "$LPID")
	# (qemu once it execs: the launcher's guardian is a child of it too)
	wait_until 10 nonempty qemu_child_of "$L"
	Q=$(qemu_child_of "$L")
	wait_until 5 grep -q "qemu running as pid" "$LERR"
	# the start-up over: a stop signal during it ends qemu without the shutdown ladder (the
	# launcher then reports qemu's SIGTERM, 143; seen once on a loaded host)
	wait_until 10 grep -q "QMP connected" "$LERR"
	QS+=("$Q")
	[ -n "$Q" ] && register_pid "$Q"
}
QS=()
CALLER_CWD=$SCRATCH/caller-cwd
mkdir -m 777 "$CALLER_CWD"
qemu_child_of() {
	local c
	for c in $(pgrep -P "$1"); do
		[ "$(readlink "/proc/$c/exe" 2>/dev/null)" = "$QEMU_PATH" ] && echo "$c" && return
	done
}
su_start run --reuid=nobody --regid=nogroup --groups=100
check "root-owned definition: qemu is running" qemu_execd
expect_eq "the launcher itself runs setuid (real uid nobody, effective root)" "65534 0 0" \
	"$(awk '/^Uid:/ {print $2, $3, $4}' "/proc/$L/status")"
expect_eq "qemu Uid: the caller in all four fields" "65534 65534 65534 65534" \
	"$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$Q/status")"
expect_eq "qemu Gid: the caller's group in all four fields" "65534 65534 65534 65534" \
	"$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$Q/status")"
expect_eq "qemu Groups: exactly the caller's supplementary groups" "100" \
	"$(awk '/^Groups:/ {$1=""; print}' "/proc/$Q/status" | xargs)"
expect_eq "qemu holds no capabilities" "0000000000000000 0000000000000000" \
	"$(awk '/^CapEff:/ {e=$2} /^CapPrm:/ {p=$2} END {print e, p}' "/proc/$Q/status")"
env=$(tr '\0' '\n' <"/proc/$Q/environ")
check "env: a variable the caller set is absent" bash -c "! grep -q QL_CALLER_SECRET <<<'$env'"
check "env: PATH is rebuilt (not the caller's)" grep -qx "PATH=/usr/local/bin:/usr/bin:/bin" <<<"$env"
check "env: HOME is the caller's passwd home, not the caller's HOME" grep -qx "HOME=$(getent passwd nobody | cut -d: -f6)" <<<"$env"
check "env: USER is the caller's name" grep -qx "USER=nobody" <<<"$env"
check "env: LOGNAME is the caller's name" grep -qx "LOGNAME=nobody" <<<"$env"
check "env: TERM is kept (display/terminal variables)" grep -qx "TERM=xterm-test" <<<"$env"
check "env: the definition's env is added" grep -qx "QL_DEF_VAR=from-definition" <<<"$env"
check "env: qemu running as the caller keeps the caller's session (DISPLAY, LC_ALL)" \
	bash -c "grep -qx 'DISPLAY=:99' <<<'$env' && grep -qx 'LC_ALL=/tmp/caller-locale' <<<'$env'"
expect_eq "qemu as the caller keeps the caller's umask" "0000" "$(awk '/^Umask:/ {print $2}' "/proc/$Q/status")"
expect_eq "qemu as the caller keeps the caller's working directory" "$CALLER_CWD" "$(readlink "/proc/$Q/cwd")"
expect_eq "env: nothing else of the caller's (only the kept display/locale variables)" "" \
	"$(grep -Ev '^(PATH|HOME|USER|LOGNAME|TERM|DISPLAY|WAYLAND_DISPLAY|XAUTHORITY|XDG_RUNTIME_DIR|PULSE_SERVER|LANG|LC_ALL|TZ|QL_DEF_VAR)=' <<<"$env")"
# The caller may stop their own VM: SIGTERM from nobody reaches the setuid launcher.
setpriv --reuid=nobody --regid=nogroup --clear-groups kill -TERM "$L"
wait "$LPID"
expect_eq "SIGTERM from the caller: graceful stop, status 0" 0 $?
check "SIGTERM from the caller: qemu is gone" pid_gone "$Q"
check "SIGTERM from the caller: the ladder ran" grep -q "telling qemu to quit" "$LERR"

su_start run --reuid=nobody --regid=nogroup --clear-groups
# ("qemu " only when qemu runs: with none, the Groups line read would be empty too)
expect_eq "--clear-groups caller: qemu has no supplementary groups" "qemu " \
	"$(qemu_execd && echo qemu) $(awk '/^Groups:/ {$1=""; print}' "/proc/$Q/status" | xargs)"
kill -KILL "$L"
check "setuid launcher SIGKILLed: qemu (running as the caller) ends too (PDEATHSIG survives the drop)" \
	wait_until 10 pid_gone "$Q"
{ wait "$LPID"; } 2>/dev/null

# --- user: in a root-owned definition ----------------------------------------------------------
{
	printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  user: daemon\nqemu:\n' "$QEMU_PATH"
	guest_opts idle
} | sdef asdaemon
su_start asdaemon --reuid=nobody --regid=nogroup --groups=100
DUID=$(id -u daemon) DGID=$(id -g daemon)
expect_eq "user: daemon: qemu Uid all four fields" "$DUID $DUID $DUID $DUID" \
	"$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$Q/status")"
expect_eq "user: daemon: qemu Gid is daemon's primary group" "$DGID $DGID $DGID $DGID" \
	"$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$Q/status")"
expect_eq "user: daemon: Groups are daemon's, not the caller's" "$(id -G daemon | tr ' ' '\n' | sort -n | xargs)" \
	"$(awk '/^Groups:/ {$1=""; print}' "/proc/$Q/status" | tr ' ' '\n' | sort -n | xargs)"
env=$(tr '\0' '\n' <"/proc/$Q/environ")
check "user: daemon: HOME and USER are daemon's" bash -c "grep -qx 'USER=daemon' <<<'$env' && grep -qx 'HOME=$(getent passwd daemon | cut -d: -f6)' <<<'$env'"
check "user: daemon: the caller's variable is absent" bash -c "! grep -q QL_CALLER_SECRET <<<'$env'"
expect_eq "user: daemon: none of the caller's session variables (DISPLAY, XAUTHORITY, ..., LC_ALL, TZ)" "" \
	"$(grep -E '^(DISPLAY|XAUTHORITY|XDG_RUNTIME_DIR|PULSE_SERVER|LC_ALL|TZ|WAYLAND_DISPLAY)=' <<<"$env")"
check "user: daemon: TERM and a plain LANG are kept" \
	bash -c "grep -qx 'TERM=xterm-test' <<<'$env' && grep -qx 'LANG=C.UTF-8' <<<'$env'"
expect_eq "user: daemon: umask 022, not the caller's 000" "0022" "$(awk '/^Umask:/ {print $2}' "/proc/$Q/status")"
expect_eq "user: daemon: working directory is daemon's home, not the caller's" \
	"$(getent passwd daemon | cut -d: -f6)" "$(readlink "/proc/$Q/cwd")"
kill -KILL "$L"
check "user: daemon: SIGKILLed launcher takes qemu along" wait_until 10 pid_gone "$Q"
{ wait "$LPID"; } 2>/dev/null

{
	printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  user: daemon\n  umask: 0027\n  working_directory: /tmp\nqemu:\n' "$QEMU_PATH"
	guest_opts idle
} | sdef asdaemon2
su_start asdaemon2 --reuid=nobody --regid=nogroup --clear-groups
expect_eq "umask: 0027 in the definition: qemu's umask" "0027" "$(awk '/^Umask:/ {print $2}' "/proc/$Q/status")"
expect_eq "working_directory: /tmp in the definition: qemu's working directory" "/tmp" "$(readlink "/proc/$Q/cwd")"
kill -KILL "$L"
check "umask/working_directory: SIGKILLed launcher takes qemu along" wait_until 10 pid_gone "$Q"
{ wait "$LPID"; } 2>/dev/null

{
	printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  group: 100\nqemu:\n' "$QEMU_PATH"
	guest_opts idle
} | sdef asgroup
su_start asgroup --reuid=nobody --regid=nogroup --clear-groups
expect_eq "group: 100 alone: qemu keeps the caller's uid" "65534 65534 65534 65534" \
	"$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$Q/status")"
expect_eq "group: 100 alone: Gid 100 in all four fields" "100 100 100 100" \
	"$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$Q/status")"
# A group the caller lacks is a privilege of qemu's own: the caller's display session still
# reaches it (qemu runs as the caller), but no locale or zone file, umask or directory of theirs.
env=$(tr '\0' '\n' <"/proc/$Q/environ")
check "group: 100 the caller lacks: the caller's display session is kept (DISPLAY, XAUTHORITY)" \
	bash -c "grep -qx 'DISPLAY=:99' <<<'$env' && grep -qx 'XAUTHORITY=/tmp/caller-xauth' <<<'$env'"
expect_eq "group: 100 the caller lacks: no locale or zone file of the caller's (LC_ALL, TZ paths)" "" \
	"$(grep -E '^(LC_ALL|TZ)=' <<<"$env")"
check "group: 100 the caller lacks: a plain LANG is kept" grep -qx 'LANG=C.UTF-8' <<<"$env"
expect_eq "group: 100 the caller lacks: umask 022 and working directory /, not the caller's" \
	"0022 /" "$(awk '/^Umask:/ {print $2}' "/proc/$Q/status") $(readlink "/proc/$Q/cwd")"
kill -TERM "$L"
wait "$LPID"
expect_eq "group: 100: stopped with status 0" 0 $?

SU_TZ=Europe/Berlin su_start asgroup --reuid=nobody --regid=nogroup --clear-groups
check "group: 100 the caller lacks: a zone under zoneinfo is kept (TZ=Europe/Berlin)" \
	grep -qx 'TZ=Europe/Berlin' <(tr '\0' '\n' <"/proc/$Q/environ")
kill -TERM "$L"
wait "$LPID"

su_start asgroup --reuid=nobody --regid=nogroup --groups=100
env=$(tr '\0' '\n' <"/proc/$Q/environ")
check "group: 100 the caller has: the caller's session as it is (LC_ALL, TZ paths kept)" \
	bash -c "grep -qx 'LC_ALL=/tmp/caller-locale' <<<'$env' && grep -qx 'TZ=/tmp/caller-tz' <<<'$env'"
expect_eq "group: 100 the caller has: the caller's umask and working directory" \
	"0000 $CALLER_CWD" "$(awk '/^Umask:/ {print $2}' "/proc/$Q/status") $(readlink "/proc/$Q/cwd")"
kill -TERM "$L"
wait "$LPID"
expect_eq "group: 100 the caller has: stopped with status 0" 0 $?

# A caller who never reads stderr (here a pipe already full) must not stall a setuid launcher:
# it may hold the host-wide cpuset lock when it logs. Its messages wait, written once the run is
# over; meanwhile qemu starts and stops as asked.
mkfifo "$SCRATCH/full-stderr"
exec 7<>"$SCRATCH/full-stderr"
head -c 65536 /dev/zero >&7
(cd / && exec setpriv --reuid=nobody --regid=nogroup --clear-groups env -u QEMU_LAUNCHER_CONFIG_DIR \
	timeout -s KILL 60 "$SUQL" -d "$P-run" >/dev/null 2>"$SCRATCH/full-stderr" </dev/null) &
LPID=$!
register_pid "$LPID"
Q=""
wait_until 10 nonempty grandchild_of "$LPID"
L=$(launcher_of "$LPID")
wait_until 10 nonempty child_of "$L"
Q=$(child_of "$L")
check "stderr never read: the setuid launcher still starts qemu" wait_until 10 qemu_execd
[ -n "$Q" ] && register_pid "$Q"
as_nobody kill -TERM "$L"
check "stderr never read: qemu still stops when asked" wait_until 15 pid_gone "$Q"
timeout 20 cat <&7 >"$SCRATCH/drained" &
DRAIN=$!
register_pid "$DRAIN"
wait "$LPID"
expect_eq "stderr never read: the launcher exits 0 once it can write" 0 $?
# the drainer has read the launcher's last line (not a fixed time: its read may lag behind)
wait_until 5 grep -qa "qemu ended; exit status" "$SCRATCH/drained"
kill "$DRAIN" 2>/dev/null
wait "$DRAIN" 2>/dev/null
exec 7>&-
# the first lines (after the pipe's old content) and the last one, as a -v run prints them
drained_in_order() {
	local t
	t=$(tr -d '\0' <"$SCRATCH/drained" | grep -v '^qemu-launcher: debug: ')
	[[ $(sed -n 2p <<<"$t") == "qemu-launcher: qemu running as pid $Q" ]] &&
		[[ $(tail -n1 <<<"$t") == "qemu-launcher: qemu ended; exit status 0" ]]
}
check "stderr never read: its messages come afterwards, whole and in order" drained_in_order

# A definition that asks for more than the caller could do: qemu exits, nothing is left.
{
	printf 'launcher:\n  binary: %s\nqemu:\n' "$QEMU_PATH"
	guest_opts exit
} | sdef exit
as_nobody timeout 30 "$SUQL" "$P-exit" >/dev/null 2>&1 </dev/null
expect_eq "exit guest in setuid mode: qemu's status (11)" 11 $?

# --- what the caller can see of the root side ---------------------------------------------------
as_nobody timeout 20 "$SUQL" --list >"$SCRATCH/list" 2>&1
check "--list in setuid mode lists the trusted dir" grep -qx "$P-run" "$SCRATCH/list"
as_nobody timeout 20 "$SUQL" --dry-run "$P-run" >"$SCRATCH/dry" 2>&1
check "--dry-run of a trusted definition works in setuid mode" grep -q "^$QEMU_PATH -machine pc,accel=tcg" "$SCRATCH/dry"
as_nobody timeout 20 "$SUQL" --dry-run "$P-relbin" >"$SCRATCH/dry" 2>&1
expect_eq "--dry-run of a relative binary in setuid mode: exit 125" 125 $?
# --- modes that need no privilege run with the caller's rights alone ------------------------------
# A root-only domain XML: with root's rights --import showed its name, root element and libxml2's
# messages about it, and opened FIFOs and devices.
mkdir -m 700 "$SCRATCH/private"
printf '<domain><name>qltest-secret-name</name><vcpu>1</vcpu></domain>\n' >"$SCRATCH/private/d.xml"
chmod 600 "$SCRATCH/private/d.xml"
as_nobody timeout 20 "$SUQL" --import --libvirt-xml "$SCRATCH/private/d.xml" -- "$QEMU_PATH" \
	>"$SCRATCH/imp.out" 2>"$SCRATCH/imp.err" </dev/null
expect_eq "--import of a root-only libvirt XML in setuid mode: exit 125" 125 $?
check "... refused with the caller's rights: Permission denied" grep -q "Permission denied" "$SCRATCH/imp.err"
check "... and nothing of it is shown" bash -c "! grep -q qltest-secret-name '$SCRATCH/imp.out' '$SCRATCH/imp.err'"
cp "$SCRATCH/private/d.xml" "$SCRATCH/public.xml"
chmod 644 "$SCRATCH/public.xml"
as_nobody timeout 20 "$SUQL" --import --libvirt-xml "$SCRATCH/public.xml" -- "$QEMU_PATH" \
	>"$SCRATCH/imp.out" 2>"$SCRATCH/imp.err" </dev/null
check "--import of an XML the caller may read still works in setuid mode" grep -q "qltest-secret-name" "$SCRATCH/imp.out"
# a FIFO with no writer: refused at once, not waited on
mkfifo -m 666 "$SCRATCH/fifo.xml"
as_nobody timeout 10 "$SUQL" --import --libvirt-xml "$SCRATCH/fifo.xml" -- "$QEMU_PATH" \
	>/dev/null 2>"$SCRATCH/imp.err" </dev/null
expect_eq "--import --libvirt-xml of a FIFO: exit 125 at once (not 124: waiting for a writer)" 125 $?
check "... the FIFO is not a regular file" grep -q "not a regular file" "$SCRATCH/imp.err"

# File capabilities give an unprivileged caller privileges with no change of ids, which setuid
# mode's checks key on: such an install is refused before anything else, so --config-dir cannot
# show a definition the caller may not read.
if command -v setcap >/dev/null; then
	cp "$QL" "$SU/ql-cap"
	chmod 755 "$SU/ql-cap"
	mkdir -m 700 "$SCRATCH/capsecret"
	printf 'launcher:\n  binary: /usr/bin/qemu\nqemu:\n- object: [ secret, id: s, data: qltest-cap-secret ]\n' \
		>"$SCRATCH/capsecret/v.yml"
	if setcap cap_dac_read_search+ep "$SU/ql-cap" 2>/dev/null; then
		as_nobody timeout 20 "$SU/ql-cap" --config-dir "$SCRATCH/capsecret" --dry-run v \
			>"$SCRATCH/cap.out" 2>"$SCRATCH/cap.err" </dev/null
		expect_eq "a copy with file capabilities, run by nobody: exit 125" 125 $?
		check "... refused with a plain message" grep -q "file capabilities" "$SCRATCH/cap.err"
		check "... and the root-only definition is not shown" \
			bash -c "! grep -q qltest-cap-secret '$SCRATCH/cap.out' '$SCRATCH/cap.err'"
		timeout 20 "$SU/ql-cap" --config-dir "$SCRATCH/capsecret" --dry-run v >"$SCRATCH/cap.out" 2>&1
		check "... root may still run that copy" grep -q qltest-cap-secret "$SCRATCH/cap.out"
	else
		for i in 1 2 3 4; do skip "file capabilities: setcap fails on $SU (no security xattrs there)"; done
	fi
else
	for i in 1 2 3 4; do skip "file capabilities: setcap (libcap2-bin) is missing"; done
fi

# Hugepages: the start-up lock is held from the count of free pages through qemu's spawn until
# its first answer, the launcher shielded from its caller meanwhile (lock.sh shows the shield);
# qemu inherits none of it, and the launcher is the caller's to signal again once it is let go.
# (The journal is the default one: setuid refuses another.)
HM=$SCRATCH/huge
mkdir "$HM"
if [ -w "$HUGE_POOL/nr_hugepages" ] && mount -t hugetlbfs -o pagesize=2M,mode=1777 none "$HM" 2>/dev/null; then
	HUGE_MNT=$HM
	HUGE_ORIG=$(cat "$HUGE_POOL/nr_hugepages")
	{
		printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n  hugepages: reserve\nqemu:\n' "$QEMU_PATH"
		guest_opts idle | sed 's/^- machine: .*/- machine: [ pc, accel: tcg, memory-backend: ram0 ]/; s/^- m: 16/- m: 32/'
		printf -- '- object: [ memory-backend-file, id: ram0, size: 32M, mem-path: %s, prealloc: on ]\n' "$HM"
	} | sdef huge
	su_start huge --reuid=nobody --regid=nogroup --clear-groups
	check "hugepages, setuid: qemu runs" qemu_execd
	expect_eq "hugepages, setuid: qemu Uid is the caller's in all four fields" "65534 65534 65534 65534" \
		"$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$Q/status")"
	# SIGTSTP is signal 20: bit 19 of SigIgn
	tstp_heeded() { (( ((0x$(awk '/^SigIgn:/ {print $2}' "/proc/$1/status") >> 19) & 1) == 0 )); }
	check "hugepages, setuid: qemu does not ignore the terminal's SIGTSTP (the shield's)" tstp_heeded "$Q"
	ruid_is_caller() { [ "$(awk '/^Uid:/ {print $2}' "/proc/$1/status")" = 65534 ]; }
	check "hugepages, setuid: once qemu answered, the launcher's real uid is the caller's again" \
		wait_until 10 ruid_is_caller "$L"
	as_nobody kill -TERM "$L"
	expect_eq "hugepages, setuid: the caller may stop it" 0 $?
	wait "$LPID"
	expect_eq "hugepages, setuid: stopped with status 0" 0 $?
	expect_eq "hugepages, setuid: the pool is back as found" "$HUGE_ORIG" "$(cat "$HUGE_POOL/nr_hugepages")"
else
	for i in 1 2 3 4 5 6 7; do skip "hugepages: no writable 2 MiB pool or hugetlbfs here"; done
fi

expect_eq "the whole test changed nothing on the host: cgroup mounts, no $CS/qemu" "$STATE0" "$(host_state)"
left=""
for q in "${QS[@]}"; do pid_gone "$q" || left="$left $q"; done
expect_eq "no qemu of the test is left" "" "$left"
