#!/bin/bash
# Shell completion: completion/qemu-launcher.bash is sourced into bash and driven like readline
# does (COMP_WORDS/COMP_CWORD); COMPREPLY must hold the options and the VM NAMEs of the config
# dir (QEMU_LAUNCHER_CONFIG_DIR, or -C/--config-dir given on the line). The fish one is driven
# with fish's own `complete -C` when fish is installed; the zsh one is syntax-checked when zsh is
# installed.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
plan 35

for n in alpha beta gamma; do printf 'launcher:\n  binary: qemu\nqemu: []\n' >"$CONF/$n.yml"; done
OTHER=$SCRATCH/other
mkdir -p "$OTHER/sub"
printf 'launcher:\n  binary: qemu\nqemu: []\n' >"$OTHER/delta.yml"
mkdir -p "$SCRATCH/bin"
ln -s "$(cd "$(dirname "$QL")" && pwd)/$(basename "$QL")" "$SCRATCH/bin/qemu-launcher"

# complete WORD...: the last word is the one being completed; prints COMPREPLY sorted, one line.
complete_line() {
	PATH=$SCRATCH/bin:$PATH bash -c '
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_qemu_launcher
		printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " " | sed "s/ \$//"
	' _ "$ROOT/completion/qemu-launcher.bash" "$@"
}

check "the completion file is valid bash and registers itself" \
	bash -c ". '$ROOT/completion/qemu-launcher.bash' && complete -p qemu-launcher | grep -q _qemu_launcher"
expect_eq "long options" "--check --config-dir" "$(complete_line qemu-launcher --c)"
expect_eq "all of --d..." "--debug --dry-run" "$(complete_line qemu-launcher --d)"
expect_eq "--import and --status are offered" "--import" "$(complete_line qemu-launcher --im)"
expect_eq "VM names from QEMU_LAUNCHER_CONFIG_DIR" "alpha beta gamma" "$(complete_line qemu-launcher '')"
expect_eq "VM names filtered by prefix" "beta" "$(complete_line qemu-launcher -d b)"
expect_eq "VM names after --status" "gamma" "$(complete_line qemu-launcher --status g)"
expect_eq "-C DIR on the line is honoured" "delta" "$(complete_line qemu-launcher -C "$OTHER" '')"
expect_eq "--config-dir=DIR on the line is honoured" "delta" \
	"$(complete_line qemu-launcher --config-dir = "$OTHER" --dry-run '')"
expect_eq "directories after -C" "$OTHER/sub" "$(complete_line qemu-launcher -C "$OTHER/s")"
expect_eq "after --import: the separator or --libvirt-xml" "-- --libvirt-xml" "$(complete_line qemu-launcher --import '')"
expect_eq "after --import --libvirt-xml: files" "$OTHER/delta.yml" "$(complete_line qemu-launcher --import --libvirt-xml "$OTHER/d")"
expect_eq "after --import --libvirt-xml FILE: only the separator" "--" "$(complete_line qemu-launcher --import --libvirt-xml x.xml '')"
check "after --import --libvirt-xml FILE --: qemu binaries" \
	bash -c "[[ ' $(complete_line qemu-launcher --import --libvirt-xml x.xml -- qemu-system-x86) ' == *' qemu-system-x86_64 '* ]]"
expect_eq "--json is offered" "--json" "$(complete_line qemu-launcher --status --js)"
expect_eq "--topology and --suggest are offered" "--suggest --topology" \
	"$(complete_line qemu-launcher --su) $(complete_line qemu-launcher --to)"
check "after --import --: qemu binaries (commands)" \
	bash -c "[[ ' $(complete_line qemu-launcher --import -- qemu-system-x86) ' == *' qemu-system-x86_64 '* ]]"
if command -v zsh >/dev/null; then
	check "zsh completion parses" zsh -n "$ROOT/completion/_qemu-launcher"
else
	skip "zsh is not installed"
fi

# fish: `complete -C LINE` prints what fish would offer (candidate<TAB>description)
fish_line() {
	PATH=$SCRATCH/bin:$PATH HOME=$SCRATCH fish -c 'source $argv[1]; complete -C"$argv[2]"' \
		"$ROOT/completion/qemu-launcher.fish" "$1" 2>&1 | cut -f1 | sort | tr '\n' ' ' | sed 's/ $//'
}
if command -v fish >/dev/null; then
	check "fish completion parses" fish -n "$ROOT/completion/qemu-launcher.fish"
	expect_eq "fish: long options" "--check --config-dir" "$(fish_line 'qemu-launcher --c')"
	expect_eq "fish: VM names from QEMU_LAUNCHER_CONFIG_DIR, no files" "alpha beta gamma" "$(fish_line 'qemu-launcher ')"
	expect_eq "fish: VM names after options" "beta" "$(fish_line 'qemu-launcher -d b')"
	expect_eq "fish: -C DIR on the line is honoured" "delta" "$(fish_line "qemu-launcher -C $OTHER ")"
	expect_eq "fish: --config-dir=DIR on the line is honoured" "delta" \
		"$(fish_line "qemu-launcher --config-dir=$OTHER --dry-run ")"
	expect_eq "fish: directories after -C" "$OTHER/sub/" "$(fish_line "qemu-launcher -C $OTHER/s")"
	expect_eq "fish: nothing after --list" "" "$(fish_line 'qemu-launcher --list ')"
	expect_eq "fish: --json" "--json" "$(fish_line 'qemu-launcher --status --js')"
	expect_eq "fish: --topology and --suggest" "--suggest --topology" \
		"$(fish_line 'qemu-launcher --su'; echo -n ' '; fish_line 'qemu-launcher --to')"
	expect_eq "fish: nothing after --topology (it takes no NAME)" "" "$(fish_line 'qemu-launcher --topology ')"
	expect_eq "fish: VM names after --suggest" "alpha beta gamma" "$(fish_line 'qemu-launcher --suggest ')"
	expect_eq "fish: after --import: the separator or --libvirt-xml" "-- --libvirt-xml" \
		"$(fish_line 'qemu-launcher --import -')"
	expect_eq "fish: after --import --libvirt-xml: files" "$OTHER/delta.yml" \
		"$(fish_line "qemu-launcher --import --libvirt-xml $OTHER/d")"
	check "fish: after --import --: qemu binaries" \
		bash -c "[[ ' $(fish_line 'qemu-launcher --import -- qemu-system-x86') ' == *' qemu-system-x86_64 '* ]]"
	expect_eq "fish: qemu arguments are files" "$OTHER/delta.yml" \
		"$(fish_line "qemu-launcher --import -- qemu-system-x86_64 -drive $OTHER/d")"
	expect_eq "fish: no launcher option after --import --" "" \
		"$(fish_line 'qemu-launcher --import -- qemu-system-x86_64 --dry')"
else
	for _ in $(seq 17); do skip "fish is not installed"; done
fi
