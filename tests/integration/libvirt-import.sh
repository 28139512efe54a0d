#!/bin/bash
# --import --libvirt-xml through the binary: every domain XML of tests/data/libvirt/ imported with
# its qemu argv gives a definition that validates against the definition schema, whose launcher
# keys are the expected ones and whose qemu list --dry-run turns back into the same argv (the
# CPUs of host-fit.xml exist on any 2-CPU host, so that one runs through --dry-run with its
# pinning; the others name CPUs of bigger hosts, so their launcher keys are dropped for the
# dry run). Every element that does not map is warned about, with FILE:LINE.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=$ROOT/tests/data/libvirt
plan 24

load_args() {
	ARGS=()
	local line
	while IFS= read -r line || [ -n "$line" ]; do
		[ "${line:0:1}" = "#" ] && continue
		ARGS+=("$line")
	done <"$1"
}
same_argv() {
	local first
	first=$("$QL" --dry-run "$1" 2>"$SCRATCH/dry.err" | head -n1) || { cat "$SCRATCH/dry.err"; return 1; }
	eval "GOT=( $first )"
	[ "${#GOT[@]}" -eq "${#ARGS[@]}" ] || { diag "argc ${#ARGS[@]} became ${#GOT[@]}"; return 1; }
	local i
	for i in "${!ARGS[@]}"; do
		[ "${ARGS[$i]}" = "${GOT[$i]}" ] || { diag "argv[$i]: '${ARGS[$i]}' became '${GOT[$i]}'"; return 1; }
	done
}
launcher_keys() { sed -n '/^launcher:/,/^qemu:/p' "$1" | sed '1d;$d' | tr '\n' ';'; }
schema_ok() {
	python3 - "$ROOT/schema/qemu-launcher.schema.json" "$1" <<'PY'
import json, sys, yaml, jsonschema
jsonschema.validate(yaml.safe_load(open(sys.argv[2])), json.load(open(sys.argv[1])))
PY
}

# import NAME: $CONF/NAME.yml from DATA/NAME.{xml,args}; warnings in $SCRATCH/NAME.err
import() {
	load_args "$DATA/$1.args"
	"$QL" --import --libvirt-xml "$DATA/$1.xml" -- "${ARGS[@]}" >"$CONF/$1.yml" 2>"$SCRATCH/$1.err"
}

import host-fit
expect_eq "host-fit: exit 0, no warning" "0 " "$? $(cat "$SCRATCH/host-fit.err")"
expect_eq "host-fit: pinning, emulator, fifo 5, memlock" \
	"  binary: qemu-system-x86_64;  vcpu_pinning: [ 1 ];  emulator_pinning: 0;  scheduler: fifo;  priority: 5;  rlimit_memlock: true;" \
	"$(launcher_keys "$CONF/host-fit.yml")"
check "host-fit: --dry-run gives back the same argv" same_argv host-fit
check "host-fit: --dry-run plans vCPU 0 on host CPU 1 with fifo 5" \
	bash -c "'$QL' --dry-run host-fit | grep -q '^# vCPU 0 -> host CPU 1\$' &&
		'$QL' --dry-run host-fit | grep -q '^# scheduler fifo priority 5 '"

for n in vfio-gaming realtime hugepages; do
	import $n
	expect_eq "$n: exit 0" 0 $?
	check "$n: the definition validates against the schema" schema_ok "$CONF/$n.yml"
	# the host CPUs of a 16-thread host do not exist here: the qemu list alone round-trips
	sed -i '/^  \(vcpu_pinning\|emulator_pinning\|scheduler\|priority\|rlimit_memlock\):/d; /^  iothread_pinning:/,/^  [a-z]/{/^    /d; /^  iothread_pinning:/d}' "$CONF/$n.yml"
	check "$n: --dry-run gives back the same argv" same_argv $n
done
load_args "$DATA/vfio-gaming.args"
"$QL" --import --libvirt-xml "$DATA/vfio-gaming.xml" -- "${ARGS[@]}" 2>/dev/null >"$SCRATCH/v.yml"
expect_eq "vfio-gaming: vcpupin, emulatorpin and iothreadpin mapped" \
	"  binary: /usr/bin/qemu-system-x86_64;  vcpu_pinning: [ 2, 10, 3, 11, 4, 12, 5, 13 ];  emulator_pinning: '0-1,8-9';  iothread_pinning:;    iothread1: '0-1,8-9';" \
	"$(launcher_keys "$SCRATCH/v.yml")"
expect_eq "vfio-gaming: nothing warned about" "" "$(cat "$SCRATCH/vfio-gaming.err")"
check "realtime: emulatorsched and nosharepages warned about" \
	bash -c "grep -q 'realtime.xml:19: <emulatorsched' '$SCRATCH/realtime.err' && grep -q 'realtime.xml:9: <memoryBacking><nosharepages>' '$SCRATCH/realtime.err'"
expect_eq "hugepages: hugepages, numatune, partial pins and vcpusched all warned about" \
	"9 1 1 1" \
	"$(grep -c 'warning: .*hugepages.xml:[0-9]*: ' "$SCRATCH/hugepages.err") $(grep -c '<hugepages> (1 GiB pages): .*`hugepages` key' "$SCRATCH/hugepages.err") $(grep -c '<numatune> not imported' "$SCRATCH/hugepages.err") $(grep -c '<vcpusched> rr 10 for vCPU(s) 1-3 not imported' "$SCRATCH/hugepages.err")"

# an I/O thread outside <emulatorpin> or on a vCPU's CPU: made to fit, so --check passes
cat >"$SCRATCH/io.xml" <<'EOF'
<domain><name>io</name><vcpu>1</vcpu><cputune><vcpupin vcpu='0' cpuset='1'/>
<emulatorpin cpuset='1'/><iothreadpin iothread='1' cpuset='0'/>
<iothreadpin iothread='2' cpuset='0-1'/></cputune></domain>
EOF
"$QL" --import --libvirt-xml "$SCRATCH/io.xml" -- qemu-system-x86_64 -smp 1 -object iothread,id=iothread1 \
	-object iothread,id=iothread2 >"$CONF/io.yml" 2>"$SCRATCH/io.err"
check "iothreadpin outside emulatorpin / on a vCPU's CPU: the import passes --check" "$QL" --check io
expect_eq "... with a warning for each change" "1 1" \
	"$(grep -c "io.xml:2: <iothreadpin iothread='1' cpuset='0'>: CPU(s) 0 added to emulator_pinning" "$SCRATCH/io.err") $(grep -c "io.xml:3: <iothreadpin iothread='2' cpuset='0-1'>: CPU(s) 1 left out of iothread_pinning" "$SCRATCH/io.err")"

# U+2028 in the domain name: still one comment line for a YAML 1.1 reader (PyYAML)
printf '<domain><name>a&#x2028;extra: x</name><vcpu>1</vcpu></domain>' >"$SCRATCH/n.xml"
"$QL" --import --libvirt-xml "$SCRATCH/n.xml" -- qemu -m 1 >"$SCRATCH/n.yml" 2>/dev/null
expect_eq "U+2028 in the domain name does not end the header comment for PyYAML" \
	"{'launcher': {'binary': 'qemu'}, 'qemu': [{'m': 1}]}" \
	"$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1])))' "$SCRATCH/n.yml" 2>&1)"

# refusals: nothing on stdout, exit 125, FILE:LINE
printf '<domain><name>x</name>\n<vcpu>1</vcpu>\n' >"$SCRATCH/bad.xml"
"$QL" --import --libvirt-xml "$SCRATCH/bad.xml" -- qemu -m 1 >"$SCRATCH/bad.out" 2>"$SCRATCH/bad.err"
expect_eq "malformed XML: exit 125, no output" "125 0" "$? $(wc -c <"$SCRATCH/bad.out")"
check "... the message names FILE:LINE:COL" grep -q "^qemu-launcher: $SCRATCH/bad.xml:3:1: " "$SCRATCH/bad.err"
"$QL" --import --libvirt-xml "$SCRATCH/none.xml" -- qemu >/dev/null 2>&1
expect_eq "missing XML file: exit 125" 125 $?
"$QL" --libvirt-xml "$DATA/host-fit.xml" --dry-run x >/dev/null 2>&1
expect_eq "--libvirt-xml without --import: usage error" 2 $?
