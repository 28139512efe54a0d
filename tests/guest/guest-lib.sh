# Helpers for the scripts that run inside the TCG test guests (busybox sh): TAP lines, waiting,
# threads and their CPUs, and the launcher started in the background. /init exports TAP_PREFIX
# (V1TAP, V2TAP) so the host can pick the lines out of the serial console, and BACKEND (v1, v2).
FQ=/fake-qemu
QL=/qemu-launcher
T=/tmp
tap() { echo "$TAP_PREFIX: $*"; }
ok() { tap "ok - $*"; }
nok() { tap "not ok - $*"; }
diag() { tap "# $*"; }
check() {
	d=$1
	shift
	if "$@"; then ok "$d"; else
		nok "$d"
		return 1
	fi
}
eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else
		nok "$1"
		diag "expected '$2', got '$3'"
		return 1
	fi
}
# failn N MESSAGE: N failed results (a setup that broke, where a skip would hide it)
failn() {
	n=$1
	shift
	while [ "$n" -gt 0 ]; do
		nok "$*"
		n=$((n - 1))
	done
}
skipn() {
	n=$1
	shift
	while [ "$n" -gt 0 ]; do
		tap "ok # SKIP $*"
		n=$((n - 1))
	done
}
# wait_for SECONDS COMMAND...
wait_for() {
	t=$(($1 * 20))
	shift
	while ! "$@"; do
		t=$((t - 1))
		[ $t -le 0 ] && return 1
		sleep 0.05
	done
	return 0
}
absent() { [ ! -e "$1" ]; }
# an empty pid is not gone: a check of a pid never captured must fail
gone() { [ -n "$1" ] && ! kill -0 "$1" 2>/dev/null; }
# guardian_of PID: launcher PID's guardian, its child that runs no exec and so keeps the
# launcher's name (not any other qemu-launcher process: an earlier run's guardian may linger)
guardian_of() {
	for c in $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
		[ "$(cat "/proc/$c/comm" 2>/dev/null)" = qemu-launcher ] && echo "$c"
	done | head -n1
}
# ended, or a zombie its parent has not reaped yet (a guardian, orphaned by its launcher's death)
ended() { [ ! -d "/proc/$1" ] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
rd() { cat "$1" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
contains() { grep -qF -- "$2" "$1"; }
# Thread of process $1 whose comm is $2.
tid_named() {
	for t in /proc/$1/task/*; do
		if [ "$(cat "$t/comm" 2>/dev/null)" = "$2" ]; then
			echo "${t##*/}"
			return
		fi
	done
}
# aff TID: the CPUs a thread (or a process's main thread) may run on.
aff() { sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null; }
# dump_err NAME: the end of $T/NAME.err as TAP comments.
dump_err() { sed 's/^/# /' "$T/$1.err" | tail -n 25 | while read -r l; do tap "$l"; done; }
# Stops a background launcher (or driver) with SIGTERM and returns its exit status.
stop() {
	kill -TERM "$1" 2>/dev/null
	wait "$1"
}

# def NAME PINS SMP [LAUNCHER-LINES]: /etc/ql/NAME.yml running fake-qemu.
def() {
	mkdir -p /etc/ql
	cat >/etc/ql/$1.yml <<EOT
launcher:
  binary: $FQ
  vcpu_pinning: [$2]
  shutdown_timeout: 5
${4:-}
qemu:
- smp: $3
- name: guest=$1,debug-threads=on
EOT
}
# fresh_logs NAME: $T/NAME.out and .err emptied before a job that writes them starts: its own
# redirections truncate them only once it runs, and a wait for a line (ql's "guest started")
# would meanwhile find an earlier run's.
fresh_logs() {
	: >"$T/$1.out"
	: >"$T/$1.err"
}
# ql NAME: the launcher with -d in the background (log $T/NAME.err, pid $LP), waits for the
# guest to run; Q = qemu's pid.
ql() {
	fresh_logs "$1"
	"$QL" -d "$1" >"$T/$1.out" 2>"$T/$1.err" </dev/null &
	LP=$!
	wait_for 15 started "$1"
	Q=$(sed -n 's/.*qemu running as pid \([0-9]*\).*/\1/p' "$T/$1.err" | head -n1)
	started "$1"
}
started() { grep -q "guest started" "$T/$1.err"; }
