#!/bin/bash
# The examples/ definitions and the JSON Schema: every example gives a qemu command line with
# --dry-run and passes --check where this host has the CPUs it names (else --check says exactly
# which host CPU is missing); every example, every good test definition and every imported
# real-world command line validates against schema/qemu-launcher.schema.json, and bad
# definitions the schema can judge on its own are rejected by it.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
EX=$ROOT/examples
SCHEMA=$ROOT/schema/qemu-launcher.schema.json
EXAMPLES=("$EX"/*.yml)
GOOD=("$ROOT"/tests/data/defs/*.yml)
# Bad definitions whose fault is visible to a schema (the others need the host, several keys at
# once, or the YAML text itself: anchors, duplicate keys, UTF-8...).
BAD=(binary-sequence empty-binary emulator-pinning-mapping env-bad-name env-sequence
	isolate-cpus-bad launcher-scalar launcher-typo memlock-lowercase-suffix memlock-zero
	missing-binary missing-launcher qemu-option-empty-list qemu-option-leading-dash
	qemu-option-name-space qemu-option-no-value qemu-option-sequence-entry
	qemu-option-two-keys qemu-part-key-comma qemu-part-nested-sequence qemu-part-value-mapping
	qemu-scalar rr-priority-too-high scheduler-unknown shutdown-timeout-float
	shutdown-timeout-too-big top-misplaced-launcher-key top-sequence top-typo user-negative
	vcpu-pinning-core-scalar vcpu-pinning-empty vcpu-pinning-flat-quoted
	vcpu-pinning-host-cpu-too-big vcpu-pinning-socket-not-integer vcpu-pinning-string
	deadline-runtime-too-small umask-too-big)
IMPORTS=("$ROOT"/tests/data/import/*.args)
NTESTS=$((3 * ${#EXAMPLES[@]} + 3 + ${#EXAMPLES[@]} + ${#GOOD[@]} + ${#IMPORTS[@]} + ${#BAD[@]} + 1))
plan $NTESTS

cp "${EXAMPLES[@]}" "$CONF/"
for f in "${EXAMPLES[@]}"; do
	n=$(basename "$f" .yml)
	bin=$(awk '/^  binary:/ {print $2; exit}' "$f")
	pins=$(awk '/^qemu:/ {exit} /^  [a-z_]+:/ {p = $0 ~ /^  (vcpu_pinning|emulator_pinning):/} p' "$f" |
		grep -oE '(: |\[ |, |^ +[0-9]+: )[0-9]+' | grep -oE '[0-9]+$' | sort -un)
	missing=""
	for c in $pins; do [ -e "/sys/devices/system/cpu/cpu$c" ] || { missing=$c; break; }; done
	"$QL" --dry-run "$n" >"$SCRATCH/$n.dry" 2>"$SCRATCH/$n.dryerr"
	rc=$?
	"$QL" --check "$n" >"$SCRATCH/$n.chk" 2>"$SCRATCH/$n.chkerr"
	crc=$?
	if [ -z "$missing" ]; then
		expect_eq "$n: --dry-run exits 0" 0 $rc
		check "$n: --dry-run prints the qemu command line" grep -q "^$bin -name " "$SCRATCH/$n.dry"
		expect_eq "$n: --check says OK" "0 $CONF/$n.yml: OK" "$crc $(cat "$SCRATCH/$n.chk")"
	else
		# written for a bigger host: both say exactly which CPU is missing, nothing else
		expect_eq "$n: --dry-run on this host: exit 125 (host CPU $missing missing)" 125 $rc
		check "$n: --check names the missing host CPU $missing" \
			grep -Eq "^qemu-launcher: $CONF/$n.yml:[0-9]+:[0-9]+: .*host CPU $missing does not exist \(this host has CPUs [0-9,-]+\)\$" "$SCRATCH/$n.chkerr"
		# without its pinning the same file gives its qemu command line
		awk '/^  (vcpu_pinning|emulator_pinning|isolate_cpus|scheduler|priority):/ {skip=1; next}
		     /^  [a-z_]+:/ || /^[a-z]/ {skip=0} !skip' "$f" >"$CONF/$n-unpinned.yml"
		"$QL" --dry-run "$n-unpinned" >"$SCRATCH/$n.dry" 2>"$SCRATCH/$n.dryerr"
		expect_eq "$n: without its pinning --dry-run gives the command line" "0 yes" \
			"$? $(grep -q "^$bin -name " "$SCRATCH/$n.dry" && echo yes)"
	fi
done
expect_eq "the VFIO example keeps SMT siblings together (-smp 8 as 1x4x2)" "yes" \
	"$(grep -q -- '-smp 8,sockets=1,cores=4,threads=2 ' "$SCRATCH/vfio-gaming.dry" && echo yes)"
# An example offered for the systemd unit must let a stop finish: the launcher waits
# shutdown_timeout, then 5 s after `quit` (qemu-launcher(1), RUNNING UNDER SYSTEMD).
stop_sec=$(sed -n 's/^TimeoutStopSec=//p' "$ROOT/systemd/qemu-launcher@.service.in")
too_long=""
for f in $(grep -l 'qemu-launcher@' "${EXAMPLES[@]}"); do
	t=$(awk '/^  shutdown_timeout:/ {print $2; exit}' "$f")
	[ $((${t:-60} + 5)) -lt "$stop_sec" ] || too_long="$too_long $(basename "$f"):${t:-60}"
done
expect_eq "examples for the systemd unit: shutdown_timeout + 5 < TimeoutStopSec ($stop_sec)" "" "$too_long"
# /run/qemu-launcher exists only once the launcher journals a host change, root's and 0700: qemu
# could not make a socket there on a fresh host, nor as the definition's user.
check "no example puts a socket or file in the launcher's own /run/qemu-launcher" \
	bash -c 'hits=$(grep -n "/run/qemu-launcher" "$@"); [ -z "$hits" ] || { sed "s/^/# /" <<<"$hits"; false; }' \
	_ "${EXAMPLES[@]}"

# --- the schema ---------------------------------------------------------------------------
if ! /usr/bin/python3 -c 'import jsonschema, yaml' 2>/dev/null; then
	for ((i = TEST_NUM; i < NTESTS; i++)); do skip "python3-jsonschema and python3-yaml are not installed"; done
	exit 0
fi
# validate FILE...: one line per file, "OK" or the first schema error. YAML is read as PyYAML
# does (YAML 1.1), then passed through JSON as yaml-language-server sees it (mapping keys as
# strings, dates as text).
validate() {
	/usr/bin/python3 - "$SCHEMA" "$@" <<'PY'
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
v = jsonschema.Draft7Validator(schema)
for path in sys.argv[2:]:
    try:
        data = json.loads(json.dumps(yaml.safe_load(open(path, encoding="utf-8")), default=str))
    except Exception as e:
        print("YAML", type(e).__name__)
        continue
    errs = sorted(v.iter_errors(data), key=lambda e: list(e.absolute_path))
    print("OK" if not errs else "INVALID " + "/".join(map(str, errs[0].absolute_path)) + ": " + errs[0].message[:120])
PY
}
i=0
for f in "${EXAMPLES[@]}" "${GOOD[@]}"; do
	res=$(validate "$f")
	expect_eq "schema accepts $(basename "$(dirname "$f")")/$(basename "$f")" OK "$res"
done
for f in "${IMPORTS[@]}"; do
	n=$(basename "$f" .args)
	mapfile -t ARGS < <(grep -v '^#' "$f")
	"$QL" --import -- "${ARGS[@]}" >"$SCRATCH/imp-$n.yml" 2>/dev/null
	expect_eq "schema accepts the import of $n.args" OK "$(validate "$SCRATCH/imp-$n.yml")"
done
for b in "${BAD[@]}"; do
	res=$(validate "$ROOT/tests/data/defs/bad/$b.yml")
	case $res in
	INVALID*) ok "schema rejects bad/$b.yml" ;;
	*) not_ok "schema rejects bad/$b.yml"; diag "got: $res" ;;
	esac
done
check "the schema itself is a valid draft-07 schema" /usr/bin/python3 -c "
import json, jsonschema; jsonschema.Draft7Validator.check_schema(json.load(open('$SCHEMA')))"
