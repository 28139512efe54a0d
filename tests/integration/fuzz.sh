# libFuzzer smoke run: builds the clang fuzz build dir (build-fuzz/, see fuzz/meson.build) if it
# is missing and runs each target for 30 s on its seed corpus under ASan/UBSan. ok when nothing
# crashed, leaked or hung; a finding is copied to build-fuzz/ to reproduce with
# `build-fuzz/fuzz/fuzz_NAME build-fuzz/crash-...`. Long runs: see the top of fuzz/meson.build.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ_BUILD=$ROOT/build-fuzz
SECONDS_PER_TARGET=${QL_FUZZ_SECONDS:-30}
TARGETS=(definition yaml qmp qemu_value)
plan $((1 + 2 * ${#TARGETS[@]}))

have_toolchain() {
	command -v clang >/dev/null &&
		# libFuzzer's runtime (libclang-rt-14-dev); clang alone cannot link -fsanitize=fuzzer
		echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
		clang -x c -fsanitize=fuzzer -o "$SCRATCH/probe" - 2>/dev/null
}
if ! have_toolchain; then
	"$ROOT/scripts/install-deps.sh" --dev >/dev/null 2>&1
fi
if ! have_toolchain; then
	for ((i = 0; i < 1 + 2 * ${#TARGETS[@]}; i++)); do
		skip "clang with libFuzzer (packages clang libclang-rt-14-dev) cannot be installed"
	done
	exit 0
fi

# Reuses an existing build-fuzz/ (ninja rebuilds what changed); creates it otherwise.
built=true
if [ ! -f "$FUZZ_BUILD/build.ninja" ]; then
	CC=clang meson setup "$FUZZ_BUILD" "$ROOT" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false >"$SCRATCH/setup.log" 2>&1 || built=false
fi
targets=()
for t in "${TARGETS[@]}"; do targets+=("fuzz/fuzz_$t"); done
if $built && ninja -C "$FUZZ_BUILD" "${targets[@]}" >"$SCRATCH/build.log" 2>&1; then
	ok "fuzz targets build (clang, -fsanitize=fuzzer,address,undefined)"
else
	not_ok "fuzz targets build (clang, -fsanitize=fuzzer,address,undefined)"
	diag "$(tail -n 20 "$SCRATCH/setup.log" "$SCRATCH/build.log" 2>/dev/null)"
fi

for t in "${TARGETS[@]}"; do
	bin=$FUZZ_BUILD/fuzz/fuzz_$t
	work=$SCRATCH/corpus-$t
	mkdir -p "$work" "$SCRATCH/art-$t"
	# fuzz_yaml reads definitions too: the same seeds
	seeds=("$ROOT/fuzz/corpus/${t/yaml/definition}")
	# the definition corpus under tests/ grows with every new case; use it directly as well
	case $t in definition | yaml) seeds+=("$ROOT/tests/data/defs") ;; esac
	timeout -s KILL $((SECONDS_PER_TARGET + 90)) "$bin" -max_total_time="$SECONDS_PER_TARGET" \
		-timeout=10 -max_len=65536 -print_final_stats=1 \
		-artifact_prefix="$SCRATCH/art-$t/" "$work" "${seeds[@]}" >"$SCRATCH/$t.log" 2>&1
	rc=$?
	found=$(ls "$SCRATCH/art-$t")
	if [ $rc -eq 0 ] && [ -z "$found" ]; then
		ok "fuzz_$t: no crash, leak or hang in ${SECONDS_PER_TARGET} s"
	else
		not_ok "fuzz_$t: no crash, leak or hang in ${SECONDS_PER_TARGET} s (exit $rc)"
		grep -m1 -A12 -E "ERROR: |runtime error|Sanitizer" "$SCRATCH/$t.log" | sed 's/^/# /'
		for f in $found; do
			cp "$SCRATCH/art-$t/$f" "$FUZZ_BUILD/$f" && diag "input kept as $FUZZ_BUILD/$f"
		done
	fi
	# A harness that returns at once would "pass" too: demand real work was done.
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$SCRATCH/$t.log")
	if [ "${runs:-0}" -ge 1000 ]; then
		ok "fuzz_$t: ran ${runs} inputs"
	else
		not_ok "fuzz_$t: ran ${runs:-no} inputs (expected at least 1000)"
		diag "$(tail -n 5 "$SCRATCH/$t.log")"
	fi
done
