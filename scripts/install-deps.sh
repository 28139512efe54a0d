#!/bin/sh
# Installs the Debian packages qemu-launcher needs to build, test and demo (only what is missing).
set -eu
# --demo: only what building and running a VM needs; default: everything the test suite uses.
PKGS="meson ninja-build pkg-config gcc libc6-dev libfyaml-dev libjson-c-dev libxml2-dev libcmocka-dev
scdoc qemu-system-x86 util-linux procps busybox-static cpio"
[ "${1:-}" = "--demo" ] || PKGS="$PKGS python3 python3-yaml python3-jsonschema
zsh fish clang libclang-rt-14-dev valgrind debhelper dpkg-dev build-essential fakeroot lintian
libcap2-bin"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "Installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
# through env: sudo's env_reset drops a variable set in front of it
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
