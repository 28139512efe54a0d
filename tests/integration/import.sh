#!/bin/bash
# --import through the binary: every command line in tests/data/import/*.args is imported, the
# definition is run through --dry-run, and the argv the shell reads back from its first line must
# be the original argv, element by element. Plus refusals, warnings and exit codes.
. "$(dirname "$0")/lib.sh"
DATA=$(cd "$(dirname "$0")/../data/import" && pwd)
FILES=("$DATA"/*.args)
plan $((3 * ${#FILES[@]} + 15))

# load_args FILE: ARGS=( argv ) - one argument per line, `#` lines are comments.
load_args() {
	ARGS=()
	local line
	while IFS= read -r line || [ -n "$line" ]; do
		[ "${line:0:1}" = "#" ] && continue
		ARGS+=("$line")
	done <"$1"
}
# same_argv NAME: the --dry-run of NAME reproduces ARGS exactly.
same_argv() {
	local first
	first=$("$QL" --dry-run "$1" 2>"$SCRATCH/dry.err" | head -n1) || return 1
	eval "GOT=( $first )"
	if [ ${#GOT[@]} -ne ${#ARGS[@]} ]; then
		diag "argc ${#ARGS[@]} became ${#GOT[@]}"
		return 1
	fi
	local i
	for i in "${!ARGS[@]}"; do
		if [ "${ARGS[$i]}" != "${GOT[$i]}" ]; then
			diag "argv[$i]: '${ARGS[$i]}' became '${GOT[$i]}'"
			return 1
		fi
	done
}

for f in "${FILES[@]}"; do
	n=$(basename "$f" .args)
	load_args "$f"
	"$QL" --import -- "${ARGS[@]}" >"$CONF/$n.yml" 2>"$SCRATCH/$n.err"
	expect_eq "$n: --import exits 0" 0 $?
	expect_eq "$n: no warning for a command line it represents exactly" "" "$(cat "$SCRATCH/$n.err")"
	check "$n: --dry-run gives back the same argv (${#ARGS[@]} words)" same_argv "$n"
done

# the structured form is what a person would write
ARGS=(qemu-system-x86_64 -drive 'file=/vm/a,,b.img,if=none' -nographic -smp 8,sockets=1,cores=4,threads=2)
"$QL" --import -- "${ARGS[@]}" >"$CONF/s.yml"
expect_eq "structured form with an unescaped comma in the value" \
	"- drive: [ file: '/vm/a,b.img', if: none ]
- nographic
- smp: [ 8, sockets: 1, cores: 4, threads: 2 ]" "$(sed -n '/^qemu:/,$p' "$CONF/s.yml" | tail -n +2)"
check "structured form round-trips" same_argv s
check "the imported definition passes --check" "$QL" --check s

# an old flag (gone from qemu 7.2) does not swallow the option after it
"$QL" --import -- qemu-system-x86_64 -localtime -m 512 -std-vga -nographic >"$CONF/old.yml" 2>"$SCRATCH/old.err"
expect_eq "old flags: each is a flag, no warning" "- localtime;- m: 512;- std-vga;- nographic;" \
	"$(sed -n '/^qemu:/,$p' "$CONF/old.yml" | tail -n +2 | tr '\n' ';')$(cat "$SCRATCH/old.err")"

# a JSON value (libvirt >= 7) is one string, and --dry-run gives it back byte for byte
ARGS=(qemu-system-x86_64 -blockdev '{"driver":"file","filename":"/vm/a=b,c.img","node-name":"d"}' -nographic)
"$QL" --import -- "${ARGS[@]}" >"$CONF/j.yml"
expect_eq "JSON value: one scalar" "- blockdev: '{\"driver\":\"file\",\"filename\":\"/vm/a=b,c.img\",\"node-name\":\"d\"}'" \
	"$(grep '^- blockdev' "$CONF/j.yml")"
check "JSON value: --dry-run gives back the same argv" same_argv j

# a positional disk image is what qemu reads as -hda: imported as such, with a warning
"$QL" --import qemu disk.img -m 64 >"$CONF/p.yml" 2>"$SCRATCH/p.err"
expect_eq "positional argument: exit 0 (also without --)" 0 $?
check "positional argument: warned about" grep -q "positional argument \`disk.img\` imported as \`-hda disk.img\`" "$SCRATCH/p.err"
expect_eq "positional argument: becomes -hda" "qemu -hda disk.img -m 64" "$("$QL" --dry-run p | head -n1)"

"$QL" --import -- qemu -nographic -m >"$SCRATCH/o" 2>"$SCRATCH/e"
expect_eq "an option without its value: exit 125" 125 $?
check "... names the option" grep -q "option \`-m\` needs a value" "$SCRATCH/e"
expect_eq "... prints no partial definition" "" "$(cat "$SCRATCH/o")"
"$QL" --import -- qemu -name "$(printf '\xff')" >/dev/null 2>"$SCRATCH/e"
expect_eq "invalid UTF-8: exit 125" 125 $?
"$QL" --import >/dev/null 2>"$SCRATCH/e"
expect_eq "--import without a command line: usage error 2" 2 $?
check "--help mentions --import" bash -c "'$QL' --help | grep -q -- '--import -- QEMU'"
