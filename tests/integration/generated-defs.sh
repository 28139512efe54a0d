# Malformed definitions too big, too odd or too empty to commit, generated here: a zero-byte
# file, whitespace only, a file over the size bound, a huge scalar and a huge key, 500000 levels
# of nesting, more nodes than allowed, random bytes, a BOM at the start. Each exits 125 within
# seconds with a short FILE:LINE:COL message and executes nothing.
. "$(dirname "$0")/lib.sh"
plan 36

MARK=$SCRATCH/ran
STANDIN=$SCRATCH/qemu
printf '#!/bin/sh\ntouch %s\n' "$MARK" >"$STANDIN"
chmod 755 "$STANDIN"
L="launcher:
  binary: $STANDIN
"

# bad NAME POS FRAGMENT (definition on stdin): exit 125, "FILE:POS: ...FRAGMENT...", a message
# of bounded size (user text is shortened), within 20 s, nothing executed.
bad() {
	local name=$1 pos=$2 fragment=$3 rc start=$SECONDS
	cat >"$CONF/$name.yml"
	rm -f "$MARK"
	timeout 20 "$QL" "$name" >/dev/null 2>"$SCRATCH/err" </dev/null
	rc=$?
	local msg
	msg=$(head -c 4096 "$SCRATCH/err" | head -n1)
	expect_eq "$name: exit 125 (in $((SECONDS - start)) s)" 125 "$rc"
	if [[ $msg == "qemu-launcher: $CONF/$name.yml:$pos: "*"$fragment"* ]] &&
		[ "$(wc -c <"$SCRATCH/err")" -lt 1024 ]; then
		ok "$name: $pos: $fragment"
	else
		not_ok "$name: $pos: $fragment"
		diag "got: $(head -c 300 "$SCRATCH/err")"
	fi
	check "$name: nothing executed" test ! -e "$MARK"
}

IN=$SCRATCH/in
# repeat N STRING: STRING N times, fast.
repeat() { head -c "$1" /dev/zero | tr '\0' "$2"; }

bad zero-bytes 1:1 "definition is empty" </dev/null
printf '   \n\n\t\n  \n' >"$IN"
bad whitespace-only 1:1 "definition is empty" <"$IN"
printf -- '---\n...\n' >"$IN"
bad only-markers 1:1 "definition is empty" <"$IN"
{
	printf '%s' "$L"
	printf 'qemu:\n'
	yes -- '- nographic' | head -n 100000
} >"$IN"
bad over-size-bound 1:1 "larger than 1048576 bytes" <"$IN"

{
	printf '%s' "$L"
	printf '  priority: '
	repeat 1000000 9
	printf '\n'
} >"$IN"
bad huge-scalar 3:13 "must be between 0 and 99, got \`999999" <"$IN"

{
	printf '%s' "$L"
	printf '  '
	repeat 1000000 k
	printf ': 1\n'
} >"$IN"
bad huge-key 3:3 "unknown launcher key \`kkkk" <"$IN"

{
	printf '%sqemu:\n- name: ' "$L"
	repeat 500000 '['
} >"$IN"
bad deep-flow-nesting 4:22 "nesting deeper than 16 levels" <"$IN"

{
	printf '%sqemu:\n' "$L"
	for i in $(seq 0 40); do
		repeat $((2 * i)) ' '
		printf -- '- a:\n'
	done
} >"$IN"
bad deep-block-nesting 11:17 "nesting deeper than 16 levels" <"$IN"

{
	printf '%sqemu: [' "$L"
	repeat 120000 'S' | sed 's/S/S,/g'
	printf ']\n'
} >"$IN"
bad too-many-nodes 3:199994 "more than 100000 nodes" <"$IN"

{
	printf '\xef\xbb\xbf%s' "$L"
	printf '  debug: yes\n'
} >"$IN"
bad bom-at-start 3:10 "\`debug\` must be \`true\` or \`false\`, got \`yes\`" <"$IN"

{
	printf '%s' "$L" | sed 's/$/\r/'
	printf '  shutdown_timeout: x\r\n'
} >"$IN"
bad crlf-everywhere 3:21 "must be a decimal integer, got \`x\`" <"$IN"

# Binary garbage (a fixed byte sequence covering all 256 values): refused, never a crash.
# shellcheck disable=SC2059 # the format is made of octal escapes only
printf "$(awk 'BEGIN { for (i = 0; i < 4096; i++) printf "\\%03o", (i * 167 + 13) % 256 }')" >"$IN"
bad binary-bytes 1:2 "invalid UTF-8 (byte 0xb4)" <"$IN"
