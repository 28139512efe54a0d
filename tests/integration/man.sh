# The manual pages: both render with scdoc (and groff) without warnings, and they cannot silently
# fall behind the code: every option of --help, every launcher key of the parser's key table,
# every QEMU_LAUNCHER_* variable and every exit code of main.c has its entry, and the
# specification's example in the three forms documented in qemu-launcher.yml(5) gives the command
# line the page says it gives.
. "$(dirname "$0")/lib.sh"
TOP=$(cd "$(dirname "$0")/../.." && pwd)
MAN1=$TOP/man/qemu-launcher.1.scd
MAN5=$TOP/man/qemu-launcher.yml.5.scd

# What the code offers, collected before the plan so the count follows the code.
help=$("$QL" --help 2>&1)
# "  -n, --dry-run   ..." -> "n dry-run"
mapfile -t opts < <(sed -nE 's/^  -([A-Za-z]), --([a-z][a-z-]*).*/\1 \2/p' <<<"$help")
mapfile -t longs_anywhere < <(grep -oE -- '--[a-z][a-z-]+' <<<"$help" | sort -u)
mapfile -t keys < <(sed -n '/launcher_keys\[\] = {/,/NULL/p' "$TOP/src/definition.c" |
	sed -nE 's/^[[:space:]]*"([a-z_]+)",?/\1/p')
mapfile -t vars < <(grep -ohE 'QEMU_LAUNCHER_[A-Z0-9_]+' "$TOP"/src/*.c | sort -u)
mapfile -t codes < <(sed -nE 's/^#define EXIT_[A-Z_]+ ([0-9]+).*/\1/p' "$TOP/src/main.c")
# the points QEMU_LAUNCHER_TEST_STOP_AT can name: streq(..test_stop_at, "NAME")
mapfile -t stops < <(grep -ohE 'test_stop_at, "[a-z-]+"' "$TOP"/src/*.c | sed -E 's/.*"(.*)"/\1/' | sort -u)

plan $((6 + 1 + ${#opts[@]} + ${#longs_anywhere[@]} + ${#keys[@]} + ${#vars[@]} + ${#codes[@]} + 2 * ${#stops[@]} + 1 + 4))

# --- rendering ------------------------------------------------------------------------------
for page in "$MAN1" "$MAN5"; do
	name=$(basename "$page" .scd)
	if ! command -v scdoc >/dev/null; then
		skip "$name renders with scdoc: scdoc is not installed"
		skip "$name: groff finds nothing to warn about: scdoc is not installed"
		continue
	fi
	scdoc <"$page" >"$SCRATCH/$name" 2>"$SCRATCH/$name.err"
	rc=$?
	if [ $rc -eq 0 ] && [ ! -s "$SCRATCH/$name.err" ] && [ -s "$SCRATCH/$name" ]; then
		ok "$name renders with scdoc, no message"
	else
		not_ok "$name renders with scdoc, no message"
		diag "scdoc exit $rc" "$(cat "$SCRATCH/$name.err")"
	fi
	if command -v groff >/dev/null; then
		groff -t -man -ww -z -Tutf8 "$SCRATCH/$name" >"$SCRATCH/$name.groff" 2>&1
		if [ -s "$SCRATCH/$name.groff" ]; then
			not_ok "$name: groff -ww finds nothing to warn about"
			diag "$(head -n 5 "$SCRATCH/$name.groff")"
		else
			ok "$name: groff -ww finds nothing to warn about"
		fi
	else
		skip "$name: groff finds nothing to warn about: groff is not installed"
	fi
done

# scdoc markup left over in the output means a formatting mistake (e.g. `_` after a symbol).
if command -v scdoc >/dev/null && command -v groff >/dev/null; then
	stray=$(for n in qemu-launcher.1 qemu-launcher.yml.5; do
		groff -t -man -Tutf8 -P-cbou "$SCRATCH/$n" 2>/dev/null | grep -nE '_[A-Z][A-Za-z]*_([^A-Za-z0-9_*]|$)|\*[a-z-]+\*'
	done)
	if [ -z "$stray" ]; then ok "no unformatted *bold* or _underline_ markup in the output"; else
		not_ok "no unformatted *bold* or _underline_ markup in the output"
		diag "$stray"
	fi
	check "the rendered pages have the required sections" bash -c "
		groff -t -man -Tutf8 -P-cbou '$SCRATCH/qemu-launcher.1' 2>/dev/null | grep -q '^DIFFERENCES FROM THE ORIGINAL SPECIFICATION' &&
		groff -t -man -Tutf8 -P-cbou '$SCRATCH/qemu-launcher.1' 2>/dev/null | grep -q '^EXIT STATUS' &&
		groff -t -man -Tutf8 -P-cbou '$SCRATCH/qemu-launcher.yml.5' 2>/dev/null | grep -q '^LAUNCHER KEYS'"
else
	skip "no unformatted markup: scdoc or groff is not installed"
	skip "required sections: scdoc or groff is not installed"
fi

spec_opts_in_help() {
	grep -q -- '-v, --verbose' <<<"$help" && grep -q -- '-d, --debug' <<<"$help" &&
		grep -q -- '-h, --help' <<<"$help"
}
check "--help lists at least the options of the specification (-v, -d, -h)" spec_opts_in_help

# --- the pages follow the code ----------------------------------------------------------------
# scdoc source escapes `_` as `\_`.
esc() { sed 's/_/\\\\_/g' <<<"$1"; }

for o in "${opts[@]}"; do
	short=${o% *} long=${o#* }
	# an entry of OPTIONS: "*-n*, *--dry-run*" at the start of a line
	if grep -qE -- "^\*-$short\*, \*--$long\*" "$MAN1"; then
		ok "qemu-launcher(1) OPTIONS has an entry for -$short, --$long"
	else
		not_ok "qemu-launcher(1) OPTIONS has an entry for -$short, --$long"
	fi
done
for l in "${longs_anywhere[@]}"; do
	check "qemu-launcher(1) mentions $l (from --help)" grep -qF -- "*$l*" "$MAN1"
done

for k in "${keys[@]}"; do
	e=$(esc "$k")
	# an entry of LAUNCHER KEYS: "*key*: type" or one name of "*a*, *b*, *c*: type"
	if grep -qE -- "^(\*[a-z\\\\_]+\*, )*\*$e\*(:|,)" "$MAN5"; then
		ok "qemu-launcher.yml(5) LAUNCHER KEYS has an entry for \`$k\`"
	else
		not_ok "qemu-launcher.yml(5) LAUNCHER KEYS has an entry for \`$k\`"
	fi
done

for v in "${vars[@]}"; do
	check "qemu-launcher(1) ENVIRONMENT has an entry for $v" grep -qx -- "\*$(esc "$v")\*" "$MAN1"
done

for c in "${codes[@]}"; do
	check "qemu-launcher(1) EXIT STATUS has a row for $c (main.c)" grep -qx -- "|\[ $c" "$MAN1"
done

stop_entry=$(awk '/^\*QEMU\\_LAUNCHER\\_TEST\\_STOP\\_AT\*$/ {f = 1} f && /^$/ {exit} f' "$MAN1")
stop_row=$(grep '^| `QEMU_LAUNCHER_TEST_STOP_AT`' "$TOP/README.md")
for s in "${stops[@]}"; do
	check "qemu-launcher(1) QEMU_LAUNCHER_TEST_STOP_AT names $s (src/)" grep -qF -- "*$s*" <<<"$stop_entry"
	check "README's QEMU_LAUNCHER_TEST_STOP_AT row names $s (src/)" grep -qF -- "\`$s\`" <<<"$stop_row"
done
# the directory is the build's (-Dconfigdir, the prefix): the Debian package's is another
setuid_section=$(awk '/^# SETUID MODE$/ {f = 1; next} f && /^# / {exit} f' "$MAN1")
check "qemu-launcher(1) SETUID MODE names the compiled-in configuration directory, not one path" \
	grep -q 'compiled-in configuration directory' <<<"$setuid_section"

# --- the documented example gives the documented command line ---------------------------------
# The fenced block after the line that starts with $1.
block_after() {
	awk -v start="$1" 'index($0, start) == 1 {f = 1; next}
		f && /^```$/ {n++; if (n == 2) exit; next}
		f && n == 1' "$MAN5"
}
block_after "Structured" >"$CONF/doc-structured.yml"
block_after "As strings" >"$CONF/doc-strings.yml"
block_after "Mixed:" >"$CONF/doc-mixed.yml"
documented=$(block_after "*qemu-launcher --dry-run* prints" | tr '\n' ' ' | sed 's/ *$//')
s=$("$QL" --dry-run doc-structured 2>&1 | head -n1)
expect_eq "qemu-launcher.yml(5): the structured example gives the documented command line" "$documented" "$s"
expect_eq "qemu-launcher.yml(5): the strings example gives the same" "$documented" \
	"$("$QL" --dry-run doc-strings 2>&1 | head -n1)"
expect_eq "qemu-launcher.yml(5): the mixed example gives the same" "$documented" \
	"$("$QL" --dry-run doc-mixed 2>&1 | head -n1)"
expect_eq "qemu-launcher.yml(5): the specification's own files give the same" "$documented" \
	"$(QEMU_LAUNCHER_CONFIG_DIR=$TOP/tests/data/defs "$QL" --dry-run readme-mixed 2>&1 | head -n1)"
