#!/bin/bash
# The helper scripts, driven with stand-ins for the programs they call (nothing is installed, no
# test suite runs): scripts/install-deps.sh's package list and how it passes apt-get's environment
# through sudo; run-tests.sh in a scratch copy of the tree with a stand-in meson whose test list
# holds a few tiny tests (its per-test timeouts, its summary line on every way out, its setup).
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
plan 13

# --- scripts/install-deps.sh as a user with sudo, on a host that has none of the packages -------
FAKE=$SCRATCH/fake-apt
mkdir -p "$FAKE"
APT_LOG=$SCRATCH/apt-get.log
printf '#!/bin/sh\n[ "$1" = -u ] && echo 1000 || exec /usr/bin/id "$@"\n' >"$FAKE/id"
printf '#!/bin/sh\nexit 1\n' >"$FAKE/dpkg-query"
# sudo's default env_reset: the command sees only a fresh environment (PATH kept for the fakes)
printf '#!/bin/sh\nexec env -i PATH="$PATH" "$@"\n' >"$FAKE/sudo"
printf '#!/bin/sh\necho "DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-unset} $*" >>"%s"\n' "$APT_LOG" >"$FAKE/apt-get"
chmod +x "$FAKE"/*
PATH=$FAKE:$PATH sh "$ROOT/scripts/install-deps.sh" >/dev/null 2>&1
install=$(grep ' install ' "$APT_LOG")
check "install-deps.sh installs build-essential (dpkg-buildpackage needs it)" \
	grep -qw build-essential <<<"$install"
check "install-deps.sh's apt-get install sees DEBIAN_FRONTEND=noninteractive through sudo" \
	grep -q '^DEBIAN_FRONTEND=noninteractive ' <<<"$install"
: >"$APT_LOG"
PATH=$FAKE:$PATH sh "$ROOT/scripts/install-deps.sh" --demo >/dev/null 2>&1
check "install-deps.sh --demo installs, and leaves the test-only packages out" \
	bash -c 'grep -q " install " "$1" && ! grep -qw -e build-essential -e lintian "$1"' _ "$APT_LOG"

# --- run-tests.sh -----------------------------------------------------------------------------
TREE=$SCRATCH/tree
mkdir -p "$TREE/scripts" "$TREE/tests/integration" "$SCRATCH/fake-meson"
cp "$ROOT/run-tests.sh" "$TREE/"
printf '#!/bin/sh\nexit 0\n' >"$TREE/scripts/install-deps.sh"
: >"$TREE/tests/integration/lib.sh" # the one script that is no test
MESON_LOG=$SCRATCH/meson.log
TESTS_JSON=$SCRATCH/tests.json
# meson: `setup` is logged and writes build.ninja (fails with FAIL_SETUP=1); `introspect` prints
# $TESTS_JSON. ninja builds nothing.
cat >"$SCRATCH/fake-meson/meson" <<FAKE
#!/bin/bash
echo "\$*" >>"$MESON_LOG"
case \$1 in
setup)
	[ "\${FAIL_SETUP:-}" = 1 ] && { mkdir -p "$TREE/build/meson-private"; exit 1; }
	for a in "\${@:2}"; do case \$a in -*) ;; *) mkdir -p "$TREE/\$a" && : >"$TREE/\$a/build.ninja"; break ;; esac; done ;;
introspect) cat "$TESTS_JSON" ;;
esac
FAKE
printf '#!/bin/sh\nexit 0\n' >"$SCRATCH/fake-meson/ninja"
chmod +x "$SCRATCH/fake-meson"/* "$TREE/scripts/install-deps.sh"
# fake_test NAME SUITE TIMEOUT SCRIPT: one entry of meson's test list, a bash -c SCRIPT.
fake_test() {
	python3 -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "suite": ["qemu-launcher:" + sys.argv[2]],
		"timeout": int(sys.argv[3]), "cmd": ["bash", "-c", sys.argv[4]], "env": {}}))' "$@"
}
{
	echo "["
	fake_test quick unit 30 'echo 1..1; echo ok 1 - fine'
	echo ","
	fake_test hung integration 1 'echo 1..2; echo ok 1 - first; sleep 20; echo ok 2 - second'
	echo ","
	# deaf to SIGTERM: timeout's -k 10 has to kill it
	fake_test deaf integration 1 'trap "" TERM; echo 1..1; sleep 20; echo ok 1 - late'
	echo "]"
} >"$TESTS_JSON"
# run_tests ARG...: the scratch copy's output in $RT_OUT, its status in $RT_RC.
RT_OUT=$SCRATCH/run-tests.out
run_tests() {
	PATH=$SCRATCH/fake-meson:$PATH bash "$TREE/run-tests.sh" "$@" >"$RT_OUT" 2>&1
	RT_RC=$?
}

mkdir -p "$TREE/build/meson-private" # a setup that failed left the directory
start=$SECONDS
run_tests
took=$((SECONDS - start))
expect_eq "run-tests.sh sets up a build directory that has no build.ninja" "setup build" \
	"$(grep '^setup' "$MESON_LOG")"
check "run-tests.sh: a test past its meson timeout is killed and reported as timed out" \
	grep -qx "not ok - integration/hung timed out after 1 s (tests/meson.build's timeout)" "$RT_OUT"
check "run-tests.sh: a test deaf to SIGTERM is killed 10 s later and reported as timed out" \
	grep -qx "not ok - integration/deaf timed out after 1 s (tests/meson.build's timeout)" "$RT_OUT"
expect_eq "run-tests.sh counts the timeouts as failures" "2 passed, 2 failed, 0 skipped 1" \
	"$(tail -n1 "$RT_OUT") $RT_RC"
check "run-tests.sh did not wait for the hung tests (took $took s)" test "$took" -lt 18
grep -q "timed out" "$RT_OUT" || sed "s/^/# /" "$RT_OUT"

: >"$MESON_LOG"
run_tests nomatch
expect_eq "run-tests.sh with a filter that matches nothing fails, with the summary line" \
	"0 passed, 1 failed, 0 skipped 1" "$(tail -n1 "$RT_OUT") $RT_RC"
check "run-tests.sh says no test matched" grep -q 'no registered test matches "nomatch"' "$RT_OUT"
expect_eq "run-tests.sh does not set up a build directory that has build.ninja" "" "$(grep '^setup' "$MESON_LOG")"

rm -f "$TREE/build/build.ninja"
: >"$TREE/build/meson-private/coredata.dat" # set up once, build.ninja lost since
run_tests quick
expect_eq "run-tests.sh reconfigures a set-up build directory that lost build.ninja" \
	"setup --reconfigure build" "$(grep '^setup' "$MESON_LOG")"

rm -r "$TREE/build"
FAIL_SETUP=1 run_tests
expect_eq "run-tests.sh: a failed meson setup ends with the summary line and status 1" \
	"0 passed, 1 failed, 0 skipped 1" "$(tail -n1 "$RT_OUT") $RT_RC"
