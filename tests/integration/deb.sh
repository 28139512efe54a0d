#!/bin/bash
# The Debian package: debian/ builds with `dpkg-buildpackage -us -uc -b` from a copy of the
# sources (the checkout stays clean), lintian finds no error, `dpkg -i` installs the binary, man
# pages, unit, completions, schemas and examples where Debian 12 looks for them, the installed
# binary runs and reads /etc/qemu-launcher, and `dpkg --purge` leaves every path the package
# holds as it was before (compared before/after). A host that already has a qemu-launcher package
# is not touched.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NTESTS=15
plan $NTESTS

[ "$(id -u)" = 0 ] || skip_all "needs root for dpkg -i"
for t in dpkg-buildpackage dh fakeroot dpkg-deb; do
	command -v $t >/dev/null || skip_all "$t is not installed (scripts/install-deps.sh)"
done
if dpkg-query -W -f='${Status}' qemu-launcher 2>/dev/null | grep -q "installed"; then
	skip_all "a qemu-launcher package is installed on this host: not touching it"
fi

# --- build from a copy ----------------------------------------------------------------------
SRC=$SCRATCH/src/qemu-launcher
mkdir -p "$SRC"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$ROOT" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$SRC"
else
	tar -C "$ROOT" --exclude='./build*' --exclude=./.git -cf - . | tar -xf - -C "$SRC"
fi
STATUS_BEFORE=$(git -C "$ROOT" status --porcelain 2>/dev/null)
(cd "$SRC" && timeout 900 dpkg-buildpackage -us -uc -b) >"$SCRATCH/build.log" 2>&1
rc=$?
DEB=$(ls "$SCRATCH"/src/qemu-launcher_*_*.deb 2>/dev/null | head -n1)
if [ $rc -ne 0 ] || [ -z "$DEB" ]; then
	not_ok "dpkg-buildpackage -us -uc -b builds the package (exit $rc)"
	tail -n 30 "$SCRATCH/build.log" | sed 's/^/# /'
	skip_all "no package was built"
fi
ok "dpkg-buildpackage -us -uc -b builds $(basename "$DEB")"
expect_eq "the checkout is left as it was" "$STATUS_BEFORE" "$(git -C "$ROOT" status --porcelain 2>/dev/null)"
if command -v lintian >/dev/null; then
	lintian --fail-on error "$DEB" >"$SCRATCH/lintian.log" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then ok "lintian: no error"; else
		not_ok "lintian: no error"
		grep '^E:' "$SCRATCH/lintian.log" | sed 's/^/# /'
	fi
else
	skip "lintian is not installed"
fi

mapfile -t CONTENTS < <(dpkg-deb -c "$DEB" | awk '{print substr($6, 2)}' | sed 's|/$||' | grep -v '^$')
want="/usr/bin/qemu-launcher /usr/share/man/man1/qemu-launcher.1.gz
/usr/share/man/man5/qemu-launcher.yml.5.gz /lib/systemd/system/qemu-launcher@.service
/usr/share/bash-completion/completions/qemu-launcher /usr/share/zsh/vendor-completions/_qemu-launcher
/usr/share/fish/vendor_completions.d/qemu-launcher.fish /usr/share/qemu-launcher/qemu-launcher.schema.json
/usr/share/qemu-launcher/status.schema.json /usr/share/doc/qemu-launcher/examples/vfio-gaming.yml
/usr/share/doc/qemu-launcher/examples/headless-server.yml /etc/qemu-launcher"
missing=""
for p in $want; do printf '%s\n' "${CONTENTS[@]}" | grep -qx "$p" || missing="$missing $p"; done
expect_eq "the package holds binary, man pages, unit, completions, schemas, examples, config dir" "" "$missing"

# --- install, use, remove -------------------------------------------------------------------
# every path the package holds (and its parents): absent, or its type and mode
snapshot() {
	local p
	for p in "${CONTENTS[@]}"; do
		if [ -e "$p" ] || [ -L "$p" ]; then stat -c '%n %F %a %U' "$p"; else echo "$p absent"; fi
	done
	dpkg-query -W -f='${Status}\n' qemu-launcher 2>&1 | sed 's/^/status: /'
}
BEFORE=$(snapshot)
# dpkg waits for nobody: retry while another dpkg/apt holds the lock
dpkg_retry() {
	local i
	for i in $(seq 60); do
		"$@" >"$SCRATCH/dpkg.log" 2>&1 && return 0
		grep -q "lock" "$SCRATCH/dpkg.log" || return 1
		sleep 1
	done
	return 1
}
purge() { dpkg_retry dpkg --purge qemu-launcher; }
INSTALLED=0
trap '[ $INSTALLED = 1 ] && purge; _cleanup' EXIT
if dpkg_retry dpkg -i "$DEB"; then
	INSTALLED=1
	ok "dpkg -i installs it"
else
	not_ok "dpkg -i installs it"
	sed 's/^/# /' "$SCRATCH/dpkg.log"
fi
unset QEMU_LAUNCHER_CONFIG_DIR
expect_eq "/usr/bin/qemu-launcher --version" "qemu-launcher $(sed -n "s/^  version : '\(.*\)',/\1/p" "$ROOT/meson.build")" \
	"$(/usr/bin/qemu-launcher --version 2>&1)"
EX=/usr/share/doc/qemu-launcher/examples
expect_eq "--check of an installed example" "$EX/headless-server.yml: OK" \
	"$(/usr/bin/qemu-launcher -C "$EX" --check headless-server 2>&1)"
check "the packaged build reads definitions from /etc/qemu-launcher" \
	bash -c "/usr/bin/qemu-launcher --check nosuchvm$$ 2>&1 | grep -q '/etc/qemu-launcher/nosuchvm$$.yml'"
check "the unit runs /usr/bin/qemu-launcher and names /etc/qemu-launcher" \
	bash -c "grep -q '^ExecStart=/usr/bin/qemu-launcher %i$' /lib/systemd/system/qemu-launcher@.service &&
		grep -q '/etc/qemu-launcher/%i.yml' /lib/systemd/system/qemu-launcher@.service"
if command -v man >/dev/null; then
	expect_eq "man finds both pages" \
		"/usr/share/man/man1/qemu-launcher.1.gz /usr/share/man/man5/qemu-launcher.yml.5.gz" \
		"$(echo $(man -w qemu-launcher 2>&1) $(man -w 5 qemu-launcher.yml 2>&1))"
else
	skip "man is not installed"
fi
if command -v fish >/dev/null; then
	check "fish finds the installed completion" \
		bash -c "HOME=$SCRATCH fish -c 'complete -C\"qemu-launcher --sta\"' | grep -q '^--status'"
else
	skip "fish is not installed"
fi
if command -v zsh >/dev/null; then
	check "the zsh completion is in zsh's default fpath" \
		zsh -fc '(( ${fpath[(I)/usr/share/zsh/vendor-completions]} ))'
else
	skip "zsh is not installed"
fi
if purge; then
	INSTALLED=0
	ok "dpkg --purge removes it"
else
	not_ok "dpkg --purge removes it"
	sed 's/^/# /' "$SCRATCH/dpkg.log"
fi
AFTER=$(snapshot)
expect_eq "every path of the package is as before the install" "$BEFORE" "$AFTER"
check "dpkg knows no qemu-launcher any more" \
	bash -c "! dpkg-query -W -f='\${Status}' qemu-launcher 2>/dev/null | grep -q installed"
