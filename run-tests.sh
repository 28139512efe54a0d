#!/bin/bash
# The whole test suite: installs what is missing, builds, runs unit and integration tests (real
# qemu under TCG, real cpusets in a delegated subtree, cgroup v2 in a TCG guest) and ends with
# "N passed, N failed, N skipped".
#   ./run-tests.sh            everything
#   ./run-tests.sh --asan     the same against an ASan/UBSan build (build-asan/)
#   ./run-tests.sh FILTER     only the tests whose SUITE/NAME contains FILTER (unit, integration,
#                             slow, cgroup-v2, ...)
# The tests and their suites are registered in tests/meson.build (`meson test -C build --suite
# unit` runs the same unit tests); this script reads that list, with each test's timeout, and
# counts every TAP line itself.
set -u
pass=0 fail=0 skipped=0
failed_names=()
# The failures, then the line the README promises; printed on every way out.
summary() {
	if [ ${#failed_names[@]} -gt 0 ]; then
		echo
		echo "Failures:"
		printf '  %s\n' "${failed_names[@]}"
	fi
	echo
	echo "$pass passed, $fail failed, $skipped skipped"
}
# give_up REASON: a step before the tests failed; nothing runs, the summary still ends the output.
give_up() {
	fail=$((fail + 1))
	failed_names+=("$1")
	summary
	exit 1
}
cd "$(dirname "$0")" || give_up "cannot cd to $(dirname "$0")"
BUILD=build
SANITIZE=""
FILTER=""
for a in "$@"; do
	case $a in
	# UBSan halts on its first report (as UBSAN_OPTIONS says below); compiled to recover, it
	# would also make gcc see "continues with a NULL argument" paths and refuse to build.
	--asan) BUILD=build-asan SANITIZE="-Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fno-sanitize-recover=all" ;;
	*) FILTER=$a ;;
	esac
done

./scripts/install-deps.sh || give_up "scripts/install-deps.sh failed"
# build.ninja, not the directory: a setup that failed leaves the directory behind. Such a
# directory holds no coredata and takes a plain setup again; one that was set up and lost
# build.ninja needs --reconfigure (plain setup calls it configured and changes nothing).
if [ ! -f "$BUILD/build.ninja" ]; then
	reconfigure=""
	[ -f "$BUILD/meson-private/coredata.dat" ] && reconfigure=--reconfigure
	# shellcheck disable=SC2086 # $SANITIZE is a list of options
	meson setup $reconfigure "$BUILD" $SANITIZE >/dev/null ||
		give_up "meson setup $BUILD failed (see $BUILD/meson-logs/meson-log.txt)"
fi
ninja -C "$BUILD" >/dev/null || { ninja -C "$BUILD"; give_up "ninja -C $BUILD failed"; }

export QL_BUILD_DIR=$PWD/$BUILD QL=$PWD/$BUILD/qemu-launcher CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# run_tap NAME TIMEOUT COMMAND...: runs one TAP producer and counts its results; a crash, a plan
# that does not match what ran, a non-zero exit status (even after a complete plan) or running
# past TIMEOUT seconds (tests/meson.build's; 0: none) is a failure. timeout(1) signals the test's
# whole process group, and -k 10 kills a test that ignores SIGTERM: one hung test must not hang
# the suite (and CI) without a summary.
run_tap() {
	local name=$1 limit=$2
	shift 2
	echo "=== $name"
	local out rc planned=0 seen=0 line start=$SECONDS
	out=$(mktemp)
	if [ "$limit" -gt 0 ]; then
		timeout -k 10 "$limit" "$@" >"$out" 2>&1
	else
		"$@" >"$out" 2>&1
	fi
	rc=$?
	while IFS= read -r line; do
		echo "$line"
		case $line in
		1..*) planned=${line#1..}; planned=${planned%% *} ;;
		# cmocka writes its skips as "not ok N # SKIP name": the directive decides, as in TAP
		"ok "*"# SKIP"* | "ok "*"# skip"* | "not ok "*"# SKIP"*) skipped=$((skipped + 1)); seen=$((seen + 1)) ;;
		"ok "*) pass=$((pass + 1)); seen=$((seen + 1)) ;;
		"not ok "*) fail=$((fail + 1)); seen=$((seen + 1)); failed_names+=("$name: ${line#not ok }") ;;
		esac
	done <"$out"
	rm -f "$out"
	# 124: timeout's SIGTERM ended it; 137: its SIGKILL did (or a SIGKILL from elsewhere, which
	# the time taken tells apart)
	if [ "$limit" -gt 0 ] && { [ "$rc" -eq 124 ] || { [ "$rc" -eq 137 ] && [ $((SECONDS - start)) -ge "$limit" ]; }; }; then
		fail=$((fail + 1))
		failed_names+=("$name: timed out after $limit s (ran $seen of $planned planned tests)")
		echo "not ok - $name timed out after $limit s (tests/meson.build's timeout)"
	elif [ "$seen" -lt "$planned" ] || [ "$planned" -eq 0 ]; then
		fail=$((fail + 1))
		failed_names+=("$name: ran $seen of $planned planned tests (exit $rc)")
		echo "not ok - $name ended early (exit $rc)"
	elif [ "$seen" -gt "$planned" ]; then
		# a plan that no longer matches the script: results past it would count unchecked
		fail=$((fail + 1))
		failed_names+=("$name: ran $seen tests but planned $planned")
		echo "not ok - $name ran more tests than its plan"
	elif [ "$rc" -ne 0 ]; then
		fail=$((fail + 1))
		failed_names+=("$name: exited with status $rc after its plan")
		echo "not ok - $name exited with status $rc"
	fi
}

# One line per registered test, suites in the order unit, integration, slow: the suite/name, its
# timeout in seconds (0: none), then the command with the environment meson gives it,
# shell-quoted.
list_tests() {
	meson introspect "$BUILD" --tests | python3 -c '
import json, shlex, sys
order = {"unit": 0, "integration": 1, "slow": 2}
tests = []
for t in json.load(sys.stdin):
    suite = t["suite"][0].split(":")[-1] if t["suite"] else "other"
    cmd = ["env"] + ["%s=%s" % kv for kv in sorted(t["env"].items())] + t["cmd"]
    timeout = max(int(t.get("timeout") or 0), 0)
    tests.append((order.get(suite, 3), suite + "/" + t["name"], timeout, cmd))
for _, name, timeout, cmd in sorted(tests, key=lambda t: t[0]):
    print(shlex.quote(name), timeout, " ".join(shlex.quote(c) for c in cmd))
'
}
tests=$(list_tests) || give_up "meson introspect $BUILD --tests failed"
ran=0
while IFS= read -r line; do
	[ -n "$line" ] || continue
	eval "set -- $line"
	case $1 in *"$FILTER"*) ;; *) continue ;; esac
	name=$1 limit=$2
	shift 2
	# an ASan/UBSan build runs two to three times slower than the one the timeouts were set for
	[ -n "$SANITIZE" ] && limit=$((limit * 3))
	ran=$((ran + 1))
	run_tap "$name" "$limit" "$@"
done <<<"$tests"
# A filter that matches nothing (a typo) must not read as a clean run.
if [ "$ran" -eq 0 ]; then
	fail=$((fail + 1))
	failed_names+=("no registered test matches \"$FILTER\"")
fi

# A script nobody registered would silently never run.
for t in tests/integration/*.sh; do
	n=$(basename "$t" .sh)
	case $n in lib | stand-in) continue ;; esac # sourced by the tests, not tests themselves
	if ! grep -q "^[a-z]*/$n " <<<"$tests" && ! grep -q "^'[a-z]*/$n' " <<<"$tests"; then
		fail=$((fail + 1))
		failed_names+=("$t is not registered in tests/meson.build")
	fi
done

summary
[ "$fail" -eq 0 ]
