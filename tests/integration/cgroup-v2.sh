#!/bin/bash
# cgroup v2 backend, tested where cgroup v2 cpuset really exists: a small TCG guest (Debian's cloud
# kernel + busybox initramfs, 6 vCPUs) runs tests/v2guest/guest-test.sh against a pure cgroup2
# tree with static builds of the launcher, a backend driver and a qemu stand-in. The guest prints
# "V2TAP:" lines on its serial console; this script numbers them as TAP. TCG only (never KVM).
# Needs: qemu-system-x86 busybox-static cpio, a C toolchain, static libfyaml/json-c, and the
# cloud kernel package (fetched once with apt-get download; cached as $BUILD/v2guest/vmlinuz).
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${QL_BUILD_DIR:-$SRC/build}
W=$BUILD/v2guest
GUEST_TIMEOUT=${V2GUEST_TIMEOUT:-150}
mkdir -p "$W"
LOG=$W/build.log
: >"$LOG"
start=$SECONDS

skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}
fail_all() {
	echo "1..1"
	echo "not ok 1 - $1"
	[ -s "$LOG" ] && tail -n 30 "$LOG" | sed 's/^/# /'
	exit 1
}

command -v qemu-system-x86_64 >/dev/null || skip_all "qemu-system-x86_64 is not installed"
BUSYBOX=$(command -v busybox) || skip_all "busybox-static is not installed"
# ldd fails on a static binary; the guest has no libc to offer a dynamic one.
ldd "$BUSYBOX" >/dev/null 2>&1 && skip_all "$BUSYBOX is not static (install busybox-static)"
command -v cpio >/dev/null || skip_all "cpio is not installed"

# --- kernel: the current cloud flavour, only its vmlinuz is kept -------------------------------
if [ ! -s "$W/vmlinuz" ]; then
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>>"$LOG" |
		sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n1)
	[ -n "$pkg" ] || skip_all "cannot resolve linux-image-cloud-amd64 with apt-cache"
	dl=$(mktemp -d "$W/dl.XXXXXX")
	if (cd "$dl" && apt-get download "$pkg" && dpkg -x "$pkg"_*.deb root) >>"$LOG" 2>&1 &&
		cp "$dl"/root/boot/vmlinuz-* "$W/vmlinuz.tmp" 2>>"$LOG"; then
		mv "$W/vmlinuz.tmp" "$W/vmlinuz"
	fi
	rm -rf "$dl" "$W/vmlinuz.tmp"
	[ -s "$W/vmlinuz" ] || skip_all "could not download $pkg (offline?)"
fi

# --- static binaries for the guest --------------------------------------------------------------
S=$W/static
if [ ! -f "$S/build.ninja" ]; then
	meson setup "$S" "$SRC" -Dprefer_static=true -Dc_link_args=-static -Dtests=false \
		-Dbuildtype=release >>"$LOG" 2>&1 || fail_all "meson setup of the static build"
fi
ninja -C "$S" libql.a >>"$LOG" 2>&1 || fail_all "static libql.a builds"
launcher_ok=1
ninja -C "$S" qemu-launcher >>"$LOG" 2>&1 || launcher_ok=0
LIBS=$(pkg-config --static --libs libfyaml json-c 2>>"$LOG") || LIBS="-lfyaml -ljson-c"
cc -O1 -static -pthread -o "$W/fake-qemu" "$SRC/tests/v2guest/fake-qemu.c" >>"$LOG" 2>&1 ||
	fail_all "fake-qemu builds"
cc -O1 -static -pthread -std=gnu11 -D_GNU_SOURCE -I"$SRC/src" -o "$W/v2drive" \
	"$SRC/tests/v2guest/v2drive.c" "$S/libql.a" $LIBS >>"$LOG" 2>&1 || fail_all "v2drive builds"

# --- initramfs ---------------------------------------------------------------------------------
root=$(mktemp -d "$W/initrd.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,proc,sys,dev,tmp,etc}
cp "$BUSYBOX" "$root/bin/busybox"
cp "$SRC/tests/v2guest/init.sh" "$root/init"
cp "$SRC/tests/v2guest/guest-test.sh" "$root/guest-test.sh"
cp "$W/fake-qemu" "$W/v2drive" "$root/"
[ $launcher_ok = 1 ] && cp "$S/qemu-launcher" "$root/"
chmod 755 "$root"/init "$root"/fake-qemu "$root"/v2drive
strip "$root"/fake-qemu "$root"/v2drive "$root"/qemu-launcher 2>/dev/null
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$W/initrd.cpio.gz" ||
	fail_all "initramfs builds"
prep=$((SECONDS - start))

# --- boot (TCG: /dev/kvm hangs on these machines) ----------------------------------------------
t0=$SECONDS
timeout -s KILL "$GUEST_TIMEOUT" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 6 \
	-m 512 -M q35 -nodefaults -no-user-config -display none -serial stdio \
	-kernel "$W/vmlinuz" -initrd "$W/initrd.cpio.gz" -no-reboot \
	-append 'console=ttyS0 quiet panic=-1' </dev/null >"$W/serial.log" 2>&1
qrc=$?
boot=$((SECONDS - t0))

# --- results -----------------------------------------------------------------------------------
tr -d '\r' <"$W/serial.log" | sed -n 's/^V2TAP: //p' >"$W/results"
planned=$(sed -n 's/^PLAN \([0-9]*\)$/\1/p' "$W/results" | head -n1)
planned=${planned:-0}
echo "1..$((planned + 3))"
n=0
emit() {
	n=$((n + 1))
	echo "$1 $n$2"
}
if grep -q '^V2GUEST-DONE' <(tr -d '\r' <"$W/serial.log"); then
	emit ok " - the guest booted, ran the tests and powered off (qemu exit $qrc, ${boot}s)"
else
	emit "not ok" " - the guest finished (qemu exit $qrc after ${boot}s; see $W/serial.log)"
	tr -d '\r' <"$W/serial.log" | grep -v '^V2TAP' | tail -n 25 | sed 's/^/# /'
fi
if [ $launcher_ok = 1 ]; then
	emit ok " - static qemu-launcher builds for the guest"
else
	emit "not ok" " - static qemu-launcher builds for the guest (see $LOG)"
fi
count=0
while IFS= read -r line; do
	case $line in
	"PLAN "*) ;;
	"# "*) echo "$line" ;;
	"ok # SKIP"*) emit ok " # SKIP ${line#ok # SKIP }"; count=$((count + 1)) ;;
	"ok - "*) emit ok " - ${line#ok - }"; count=$((count + 1)) ;;
	"not ok - "*) emit "not ok" " - ${line#not ok - }"; count=$((count + 1)) ;;
	*) echo "# $line" ;;
	esac
done <"$W/results"
if [ "$count" -eq "$planned" ] && [ "$planned" -gt 0 ]; then
	emit ok " - the guest ran all $planned planned tests"
else
	emit "not ok" " - the guest ran $count of $planned planned tests"
fi
# A short plan (guest died early) is reported by the runner too; pad so the numbers stay honest.
while [ $n -lt $((planned + 3)) ]; do emit "not ok" " - (missing guest result)"; done
echo "# prepare ${prep}s, guest ${boot}s"
