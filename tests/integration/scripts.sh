#!/bin/bash
# The helper scripts, driven with stand-ins for the programs they call (nothing is installed, no
# test suite runs): scripts/install-deps.sh's package list and how it passes apt-get's environment
# through sudo.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
plan 3

# --- scripts/install-deps.sh as a user with sudo, on a host that has none of the packages -------
FAKE=$SCRATCH/fake-apt
mkdir -p "$FAKE"
APT_LOG=$SCRATCH/apt-get.log
printf '#!/bin/sh\n[ "$1" = -u ] && echo 1000 || exec /usr/bin/id "$@"\n' >"$FAKE/id"
printf '#!/bin/sh\nexit 1\n' >"$FAKE/dpkg-query"
# sudo's default env_reset: the command sees only a fresh environment (PATH kept for the fakes)
printf '#!/bin/sh\nexec env -i PATH="$PATH" "$@"\n' >"$FAKE/sudo"
printf '#!/bin/sh\necho "DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-unset} $*" >>"%s"\n' "$APT_LOG" >"$FAKE/apt-get"
chmod +x "$FAKE"/*
PATH=$FAKE:$PATH sh "$ROOT/scripts/install-deps.sh" >/dev/null 2>&1
install=$(grep ' install ' "$APT_LOG")
check "install-deps.sh installs build-essential (dpkg-buildpackage needs it)" \
	grep -qw build-essential <<<"$install"
check "install-deps.sh's apt-get install sees DEBIAN_FRONTEND=noninteractive through sudo" \
	grep -q '^DEBIAN_FRONTEND=noninteractive ' <<<"$install"
: >"$APT_LOG"
PATH=$FAKE:$PATH sh "$ROOT/scripts/install-deps.sh" --demo >/dev/null 2>&1
check "install-deps.sh --demo leaves the test-only packages out" \
	bash -c '! grep -qw -e build-essential -e lintian "$1"' _ "$APT_LOG"
