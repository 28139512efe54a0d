# TAP helpers for the scripts that run inside the TCG test guests (busybox sh). The caller sets
# TAP_PREFIX (V1TAP, V2TAP) so the host can pick its lines out of the serial console.
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
gone() { ! kill -0 "$1" 2>/dev/null; }
rd() { cat "$1" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
