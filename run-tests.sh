#!/bin/bash
# The whole test suite: installs what is missing, builds, runs unit and integration tests (real
# qemu under TCG, real cpusets in a delegated subtree, cgroup v2 in a TCG guest) and ends with
# "N passed, N failed, N skipped".
#   ./run-tests.sh            everything
#   ./run-tests.sh --asan     the same against an ASan/UBSan build (build-asan/)
#   ./run-tests.sh FILTER     only the tests whose SUITE/NAME contains FILTER (unit, integration,
#                             slow, cgroup-v2, ...)
# The tests and their suites are registered in tests/meson.build (`meson test -C build --suite
# unit` runs the same unit tests); this script reads that list and counts every TAP line itself.
set -u
cd "$(dirname "$0")"
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

./scripts/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
if [ ! -d "$BUILD" ]; then
	meson setup "$BUILD" $SANITIZE >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
fi
ninja -C "$BUILD" >/dev/null || { ninja -C "$BUILD"; echo "0 passed, 1 failed"; exit 1; }

export QL_BUILD_DIR=$PWD/$BUILD QL=$PWD/$BUILD/qemu-launcher CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

pass=0 fail=0 skipped=0
failed_names=()

# Runs one TAP producer and counts its results; a crash, a plan that does not match what ran, or a
# non-zero exit status (even after a complete plan) is a failure.
run_tap() {
	local name=$1
	shift
	echo "=== $name"
	local out rc planned=0 seen=0 line
	out=$(mktemp)
	"$@" >"$out" 2>&1
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
	if [ "$seen" -lt "$planned" ] || [ "$planned" -eq 0 ]; then
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

# One line per registered test, suites in the order unit, integration, slow: the suite/name,
# then the command with the environment meson gives it, shell-quoted.
list_tests() {
	meson introspect "$BUILD" --tests | python3 -c '
import json, shlex, sys
order = {"unit": 0, "integration": 1, "slow": 2}
tests = []
for t in json.load(sys.stdin):
    suite = t["suite"][0].split(":")[-1] if t["suite"] else "other"
    cmd = ["env"] + ["%s=%s" % kv for kv in sorted(t["env"].items())] + t["cmd"]
    tests.append((order.get(suite, 3), suite + "/" + t["name"], cmd))
for _, name, cmd in sorted(tests, key=lambda t: t[0]):
    print(shlex.quote(name), " ".join(shlex.quote(c) for c in cmd))
'
}
tests=$(list_tests) || { echo "0 passed, 1 failed"; exit 1; }
while IFS= read -r line; do
	eval "set -- $line"
	case $1 in *"$FILTER"*) ;; *) continue ;; esac
	name=$1
	shift
	run_tap "$name" "$@"
done <<<"$tests"

# A script nobody registered would silently never run.
for t in tests/integration/*.sh; do
	n=$(basename "$t" .sh)
	case $n in lib | stand-in) continue ;; esac # sourced by the tests, not tests themselves
	if ! grep -q "^[a-z]*/$n " <<<"$tests" && ! grep -q "^'[a-z]*/$n' " <<<"$tests"; then
		fail=$((fail + 1))
		failed_names+=("$t is not registered in tests/meson.build")
	fi
done

if [ ${#failed_names[@]} -gt 0 ]; then
	echo
	echo "Failures:"
	printf '  %s\n' "${failed_names[@]}"
fi
echo
echo "$pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ]
