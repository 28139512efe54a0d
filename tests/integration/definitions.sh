# The built binary over the definition corpus: every malformed definition exits 125 with a
# FILE:LINE:COL message naming the problem and starts nothing; the specification's three forms
# of its example give the same command line.
. "$(dirname "$0")/lib.sh"
DEFS=$(cd "$(dirname "$0")/../data/defs" && pwd)
bad=("$DEFS"/bad/*.yml)
plan $((${#bad[@]} + 11))

# A qemu stand-in that leaves a mark if anything ever executes it.
printf '#!/bin/sh\ntouch %s/ran\n' "$SCRATCH" >"$SCRATCH/qemu"
chmod 755 "$SCRATCH/qemu"

for f in "${bad[@]}"; do
	name=$(basename "$f" .yml)
	expect=$(sed -n '1s/^# expect: //p' "$f")
	# Point every definition's binary at the stand-in without moving any line or column.
	sed "s|binary: qemu-system-x86_64|binary: $SCRATCH/qemu|" "$f" >"$CONF/$name.yml"
	timeout 20 "$QL" "$name" >/dev/null 2>"$SCRATCH/err"
	rc=$?
	msg=$(head -n1 "$SCRATCH/err")
	pos=${expect%%: *}      # LINE:COL
	fragment=${expect#*: } # text the message must contain
	if [ $rc -eq 125 ] && [[ "$msg" == "qemu-launcher: $CONF/$name.yml:$pos: "*"$fragment"* ]]; then
		ok "bad/$name: 125, $expect"
	else
		not_ok "bad/$name"
		diag "exit $rc, expected 125" "got:      $msg" "expected: $CONF/$name.yml:$expect"
	fi
done
check "no malformed definition executed anything" test ! -e "$SCRATCH/ran"

# A nested vcpu_pinning entry outside -smp would name another vCPU's index: refused at its
# position before qemu starts (the parser leaves it to the pinning, which knows -smp).
cat >"$CONF/outside.yml" <<EOF
launcher:
  binary: $SCRATCH/qemu
  vcpu_pinning:
    0:
      0: { 0: 0, 2: 0 }
qemu:
- smp: [ 2, threads: 2 ]
EOF
timeout 20 "$QL" outside >/dev/null 2>"$SCRATCH/err"
expect_eq "a nested pin outside -smp: exit 125, nothing run" "125 no" "$? $([ -e "$SCRATCH/ran" ] && echo ran || echo no)"
expect_eq "... at its position, naming -smp's topology" \
	"qemu-launcher: $CONF/outside.yml:5:21: vCPU (socket 0 core 0 thread 2) is outside -smp's 1 socket x 1 core x 2 threads" \
	"$(head -n1 "$SCRATCH/err")"

# A numeric user without a passwd entry, run with group 0, would keep root's group: refused at
# the key's position (a check made after parsing, which must still point at the definition).
u=54321
while getent passwd "$u" >/dev/null; do u=$((u + 1)); done
printf 'launcher:\n  binary: %s\n  user: %s\nqemu:\n- smp: 1\n' "$SCRATCH/qemu" "$u" >"$CONF/nopw.yml"
if [ "$(id -g)" = 0 ]; then
	"$QL" --check nopw >/dev/null 2>"$SCRATCH/err"
	expect_eq "user $u without a passwd entry, group 0: exit 125 at the key's position" \
		"125 qemu-launcher: $CONF/nopw.yml:3:9: \`user\` $u has no passwd entry, so qemu would keep group 0 (root's): name a \`group\` too" \
		"$? $(head -n1 "$SCRATCH/err")"
else
	skip "not run with group 0: the launcher keeps the caller's group then"
fi

# The host's refusal of an emulator CPU points at the key's value, as a pin's does.
printf 'launcher:\n  binary: %s\n  emulator_pinning: "0,4000"\nqemu:\n- smp: 1\n' "$SCRATCH/qemu" >"$CONF/emu4000.yml"
"$QL" --check emu4000 >/dev/null 2>"$SCRATCH/err"
expect_eq "emulator_pinning on a CPU the host lacks: exit 125 at the value's position" \
	"125 qemu-launcher: $CONF/emu4000.yml:3:21: emulator_pinning: host CPU 4000 does not exist" \
	"$? $(head -n1 "$SCRATCH/err" | sed 's/ (this host has CPUs .*//')"

export QEMU_LAUNCHER_CONFIG_DIR=$DEFS
# same_line A B: both are the same command line of the example's qemu (two failed --dry-runs
# would print the same nothing)
same_line() {
	[[ "$1" == "qemu-system-x86_64 -name 'my virtual machine' "* ]] && [ "$1" = "$2" ] ||
		{ diag "structured: $1" "other:      $2"; false; }
}
s=$("$QL" --dry-run readme-structured | head -n1)
check "specification example: strings form == structured form" same_line "$s" "$("$QL" --dry-run readme-strings | head -n1)"
check "specification example: mixed form == structured form" same_line "$s" "$("$QL" --dry-run readme-mixed | head -n1)"

# libfyaml is loaded only for what the fast reader gives up on (src/fyaml.h): the dynamic loader's
# own log of the libraries it opens (LD_DEBUG=files) shows whether it was.
libs=$(LD_DEBUG=files "$QL" --dry-run readme-structured 2>&1 >/dev/null)
check "a plain definition is read without loading libfyaml" \
	bash -c '! grep -q "file=libfyaml" <<<"$1"' _ "$libs"
printf 'launcher:\n  binary: %s\nqemu:\n- name: >-\n    folded\n    text\n' "$SCRATCH/qemu" \
	>"$CONF/block.yml"
libs=$(QEMU_LAUNCHER_CONFIG_DIR=$CONF LD_DEBUG=files "$QL" --dry-run block 2>&1 >/dev/null)
check "a folded block scalar (left to libfyaml) loads it on demand and parses" \
	bash -c 'grep -q "file=libfyaml.so.0 \[0\];  dynamically loaded by" <<<"$1" &&
		grep -q "^$2 -name '"'"'folded text'"'"'$" <<<"$3"' _ "$libs" "$SCRATCH/qemu" \
	"$(QEMU_LAUNCHER_CONFIG_DIR=$CONF "$QL" --dry-run block 2>&1)"

# json-c likewise is loaded only where JSON starts (src/jsonc.h): qemu's QMP channel, --status
# --json. Reading, checking and printing a definition leave it out; every launch test speaks QMP
# through it.
libs=$(LD_DEBUG=files "$QL" --check readme-structured 2>&1 >/dev/null)
check "--check of a definition runs without loading json-c" \
	bash -c '! grep -q "file=libjson-c" <<<"$1"' _ "$libs"
libs=$(LD_DEBUG=files "$QL" --status --json 2>&1 >/dev/null)
check "--status --json loads json-c on demand" \
	bash -c 'grep -q "file=libjson-c.so.5 \[0\];  dynamically loaded by" <<<"$1"' _ "$libs"
