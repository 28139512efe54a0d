# The demo's cheap checks (the demo itself boots two guests and takes ~30 s: run ./run-demo.sh):
# its scripts parse, --help and a bad option answer without root or a build, and the guest
# harness it sources still keeps the power button modules its guest loads.
. "$(dirname "$0")/lib.sh"
TOP=$(cd "$(dirname "$0")/../.." && pwd)
plan 7
check "run-demo.sh parses (bash -n)" bash -n "$TOP/run-demo.sh"
check "demo/init.sh parses (sh -n)" sh -n "$TOP/demo/init.sh"
check "demo/loop.sh parses (sh -n)" sh -n "$TOP/demo/loop.sh"
out=$("$TOP/run-demo.sh" --help 2>&1) && rc=0 || rc=$?
expect_eq "run-demo.sh --help exits 0" 0 "$rc"
check "run-demo.sh --help names --console" grep -q -- "--console" <<<"$out"
"$TOP/run-demo.sh" --bogus >/dev/null 2>&1 && rc=0 || rc=$?
expect_eq "run-demo.sh with an unknown option exits 2 (usage)" 2 "$rc"
harness=$TOP/tests/guest/harness.sh
if grep -q 'GUEST_MODULES=' "$harness" && grep -q 'button.ko' "$harness" && grep -q 'evdev.ko' "$harness"; then
	ok "the guest harness keeps button.ko and evdev.ko in \$GUEST_MODULES for the demo's guest"
else
	not_ok "the guest harness keeps button.ko and evdev.ko in \$GUEST_MODULES for the demo's guest"
fi
