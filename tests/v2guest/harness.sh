# Shared host side of the TCG guest tests (cgroup-v2.sh, cpuset-v1-guest.sh): prerequisites, the
# Debian cloud kernel, static builds of the launcher and fake-qemu, the busybox initramfs, the
# boot and the TAP numbering of the "<TAG>: " lines the guest prints on its serial console.
# Sourced with SRC, BUILD and W (this test's work dir) set. The kernel and the static build are
# kept in GUEST_CACHE ($BUILD/v2guest) and shared by every guest test.
GUEST_CACHE=$BUILD/v2guest
mkdir -p "$W" "$GUEST_CACHE"
LOG=$W/build.log
: >"$LOG"
guest_start=$SECONDS

skip_all() {
	# run-tests.sh counts a plan of 0 as a failure: one skipped test instead.
	echo "1..1"
	echo "ok 1 # SKIP $*"
	exit 0
}
fail_all() {
	echo "1..1"
	echo "not ok 1 - $1"
	[ -s "$LOG" ] && tail -n 30 "$LOG" | sed 's/^/# /'
	exit 1
}

guest_prereqs() {
	command -v qemu-system-x86_64 >/dev/null || skip_all "qemu-system-x86_64 is not installed"
	BUSYBOX=$(command -v busybox) || skip_all "busybox-static is not installed"
	# ldd fails on a static binary; the guest has no libc to offer a dynamic one.
	ldd "$BUSYBOX" >/dev/null 2>&1 && skip_all "$BUSYBOX is not static (install busybox-static)"
	command -v cpio >/dev/null || skip_all "cpio is not installed"
}

# The current cloud flavour: $GUEST_CACHE/vmlinuz, and in $GUEST_MODULES the two modules the
# demo's guest loads to hear the ACPI power button (button.ko, evdev.ko; the rest is dropped).
guest_kernel() {
	KERNEL=$GUEST_CACHE/vmlinuz
	GUEST_MODULES=$GUEST_CACHE/modules
	[ -s "$KERNEL" ] && [ -s "$GUEST_MODULES/button.ko" ] && [ -s "$GUEST_MODULES/evdev.ko" ] && return 0
	local pkg dl
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>>"$LOG" |
		sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n1)
	[ -n "$pkg" ] || skip_all "cannot resolve linux-image-cloud-amd64 with apt-cache"
	dl=$(mktemp -d "$GUEST_CACHE/dl.XXXXXX")
	if (cd "$dl" && apt-get download "$pkg" && dpkg -x "$pkg"_*.deb root) >>"$LOG" 2>&1 &&
		cp "$dl"/root/boot/vmlinuz-* "$KERNEL.tmp" 2>>"$LOG"; then
		mkdir -p "$GUEST_MODULES"
		cp "$dl"/root/lib/modules/*/kernel/drivers/acpi/button.ko \
			"$dl"/root/lib/modules/*/kernel/drivers/input/evdev.ko "$GUEST_MODULES/" 2>>"$LOG"
		mv "$KERNEL.tmp" "$KERNEL"
	fi
	rm -rf "$dl" "$KERNEL.tmp"
	[ -s "$KERNEL" ] || skip_all "could not download $pkg (offline?)"
}

# Static libql.a, qemu-launcher ($STATIC/qemu-launcher when LAUNCHER_OK=1) and $W/fake-qemu.
guest_static() {
	STATIC=$GUEST_CACHE/static
	if [ ! -f "$STATIC/build.ninja" ]; then
		meson setup "$STATIC" "$SRC" -Dprefer_static=true -Dc_link_args=-static -Dtests=false \
			-Dbuildtype=release >>"$LOG" 2>&1 || fail_all "meson setup of the static build"
	fi
	ninja -C "$STATIC" libql.a >>"$LOG" 2>&1 || fail_all "static libql.a builds"
	LAUNCHER_OK=1
	ninja -C "$STATIC" qemu-launcher >>"$LOG" 2>&1 || LAUNCHER_OK=0
	STATIC_LIBS=$(pkg-config --static --libs libfyaml json-c 2>>"$LOG") ||
		STATIC_LIBS="-lfyaml -ljson-c"
	cc -O1 -static -pthread -o "$W/fake-qemu" "$SRC/tests/v2guest/fake-qemu.c" >>"$LOG" 2>&1 ||
		fail_all "fake-qemu builds"
}

# A fresh initramfs tree with busybox in $GUEST_ROOT (removed on exit).
guest_new_root() {
	GUEST_ROOT=$(mktemp -d "$W/initrd.XXXXXX")
	trap 'rm -rf "$GUEST_ROOT"' EXIT
	mkdir -p "$GUEST_ROOT"/{bin,proc,sys,dev,tmp,etc}
	cp "$BUSYBOX" "$GUEST_ROOT/bin/busybox"
	cp "$SRC/tests/v2guest/guest-lib.sh" "$GUEST_ROOT/guest-lib.sh" # TAP helpers of guest-test.sh
}

# Packs $GUEST_ROOT into $W/initrd.cpio.gz.
guest_pack() {
	strip "$GUEST_ROOT"/fake-qemu "$GUEST_ROOT"/v2drive "$GUEST_ROOT"/qemu-launcher 2>/dev/null
	(cd "$GUEST_ROOT" && find . | cpio -o -H newc --quiet | gzip -1) >"$W/initrd.cpio.gz" ||
		fail_all "initramfs builds"
	GUEST_PREP=$((SECONDS - guest_start))
}

# Boots the initramfs under TCG with 6 CPUs (/dev/kvm hangs on these machines), killed after
# TIMEOUT seconds. Sets GUEST_QRC and GUEST_BOOT (seconds); the console is in $W/serial.log.
guest_boot() {
	local t0=$SECONDS
	timeout -s KILL "$1" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 6 \
		-m 512 -M q35 -nodefaults -no-user-config -display none -serial stdio \
		-kernel "$KERNEL" -initrd "$W/initrd.cpio.gz" -no-reboot \
		-append 'console=ttyS0 quiet panic=-1' </dev/null >"$W/serial.log" 2>&1
	GUEST_QRC=$?
	GUEST_BOOT=$((SECONDS - t0))
}

# guest_report TAG DONE: TAP from the "TAG: " lines (a "PLAN n" line first), plus three of its
# own: the guest reached the DONE sentinel, the static launcher built, every planned test ran.
guest_report() {
	local tag=$1 done=$2 planned count line
	tr -d '\r' <"$W/serial.log" | sed -n "s/^$tag: //p" >"$W/results"
	planned=$(sed -n 's/^PLAN \([0-9]*\)$/\1/p' "$W/results" | head -n1)
	planned=${planned:-0}
	echo "1..$((planned + 3))"
	n=0
	emit() {
		n=$((n + 1))
		echo "$1 $n$2"
	}
	if grep -q "^$done" <(tr -d '\r' <"$W/serial.log"); then
		emit ok " - the guest booted, ran the tests and powered off (qemu exit $GUEST_QRC, ${GUEST_BOOT}s)"
	else
		emit "not ok" " - the guest finished (qemu exit $GUEST_QRC after ${GUEST_BOOT}s; see $W/serial.log)"
		tr -d '\r' <"$W/serial.log" | grep -v "^$tag" | tail -n 25 | sed 's/^/# /'
	fi
	if [ "$LAUNCHER_OK" = 1 ]; then
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
	echo "# prepare ${GUEST_PREP}s, guest ${GUEST_BOOT}s"
}
