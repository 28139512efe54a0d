# Host side of the TCG guest tests (tests/integration/cgroup-v2.sh, cpuset-v1-guest.sh,
# topology-guest.sh):
# prerequisites, the Debian cloud kernel, static builds of the launcher and fake-qemu, one busybox
# initramfs holding every in-guest script of tests/guest/, the boots (one per test script, each
# with its own CPU count) and the TAP numbering of the "<TAG>TAP: " lines they print on their
# serial console. Sourced with SRC and BUILD set; call guest_setup BACKEND first. The kernel and
# the static build are kept in GUEST_CACHE ($BUILD/guest) and shared by every guest test.
GUEST_CACHE=$BUILD/guest
guest_start=$SECONDS
GUEST_BOOTS=()
GUEST_REBOOTED=()

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

# guest_vfio_modules TREE: vfio-pci and vfio_iommu_type1 of the unpacked kernel package TREE, with
# every module they depend on (modinfo -F depends, or the module's own "depends=" string where
# kmod is not installed), copied to $GUEST_MODULES and listed in load order in vfio.order.
guest_vfio_modules() {
	local tree=$1 order=() seen=" " m f
	modfile() {
		find "$tree" \( -name "$1.ko" -o -name "$(echo "$1" | tr _ -).ko" -o \
			-name "$(echo "$1" | tr - _).ko" \) | head -n1
	}
	moddeps() {
		local f
		f=$(modfile "$1")
		[ -n "$f" ] || return 0
		if command -v modinfo >/dev/null; then
			modinfo -F depends "$f"
		else
			tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | head -n1
		fi | tr ',' ' '
	}
	visit() {
		case $seen in *" $1 "*) return 0 ;; esac
		seen="$seen$1 "
		local d
		for d in $(moddeps "$1"); do visit "$d"; done
		order+=("$1")
	}
	visit vfio-pci
	visit vfio_iommu_type1
	for m in "${order[@]}"; do
		f=$(modfile "$m")
		[ -n "$f" ] && cp "$f" "$GUEST_MODULES/$m.ko" || return 1
	done
	printf '%s\n' "${order[@]}" >"$GUEST_MODULES/vfio.order"
}

# Every module vfio.order lists is in the cache.
guest_vfio_cached() {
	local m
	[ -s "$GUEST_MODULES/vfio.order" ] || return 1
	while read -r m; do [ -s "$GUEST_MODULES/$m.ko" ] || return 1; done <"$GUEST_MODULES/vfio.order"
}

# The current cloud flavour: $GUEST_CACHE/vmlinuz, and in $GUEST_MODULES the two modules the
# demo's guest loads to hear the ACPI power button (button.ko, evdev.ko) and the VFIO modules
# (guest_vfio_modules); the rest is dropped.
guest_kernel() {
	KERNEL=$GUEST_CACHE/vmlinuz
	GUEST_MODULES=$GUEST_CACHE/modules
	[ -s "$KERNEL" ] && [ -s "$GUEST_MODULES/button.ko" ] && [ -s "$GUEST_MODULES/evdev.ko" ] &&
		guest_vfio_cached && return 0
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
		guest_vfio_modules "$dl/root/lib/modules" 2>>"$LOG"
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
	cc -O1 -static -pthread -o "$W/fake-qemu" "$SRC/tests/guest/fake-qemu.c" >>"$LOG" 2>&1 ||
		fail_all "fake-qemu builds"
}

# guest_setup v1|v2: everything up to a fresh initramfs tree in $GUEST_ROOT (removed on exit)
# with busybox, /init, every in-guest script, fake-qemu and the launcher. Sets W ($GUEST_CACHE/
# BACKEND, this test's work dir), LOG and TAG (V1, V2).
guest_setup() {
	BACKEND=$1
	TAG=$(echo "$BACKEND" | tr a-z A-Z)
	W=$GUEST_CACHE/$BACKEND
	mkdir -p "$W"
	LOG=$W/build.log
	: >"$LOG"
	guest_prereqs
	guest_kernel
	guest_static
	GUEST_ROOT=$(mktemp -d "$W/initrd.XXXXXX")
	trap 'rm -rf "$GUEST_ROOT"' EXIT
	mkdir -p "$GUEST_ROOT"/{bin,proc,sys,dev,tmp,etc}
	cp "$BUSYBOX" "$GUEST_ROOT/bin/busybox"
	cp "$SRC/tests/guest/init.sh" "$GUEST_ROOT/init"
	cp "$SRC"/tests/guest/*.sh "$GUEST_ROOT/"
	rm -f "$GUEST_ROOT/harness.sh" "$GUEST_ROOT/init.sh"
	cp "$W/fake-qemu" "$GUEST_ROOT/"
	[ "$LAUNCHER_OK" = 1 ] && cp "$STATIC/qemu-launcher" "$GUEST_ROOT/"
	chmod 755 "$GUEST_ROOT"/init "$GUEST_ROOT"/fake-qemu
}

# guest_tool NAME: tests/guest/NAME.c linked statically with libql.a, into the guest as /NAME.
guest_tool() {
	cc -O1 -static -pthread -std=gnu11 -D_GNU_SOURCE -I"$SRC/src" -o "$GUEST_ROOT/$1" \
		"$SRC/tests/guest/$1.c" "$STATIC/libql.a" $STATIC_LIBS >>"$LOG" 2>&1 ||
		fail_all "$1 builds"
}

# Packs $GUEST_ROOT into $W/initrd.cpio.gz.
guest_pack() {
	strip "$GUEST_ROOT"/fake-qemu "$GUEST_ROOT"/qemu-launcher "$GUEST_ROOT"/v2drive 2>/dev/null
	(cd "$GUEST_ROOT" && find . | cpio -o -H newc --quiet | gzip -1) >"$W/initrd.cpio.gz" ||
		fail_all "initramfs builds"
	GUEST_PREP=$((SECONDS - guest_start))
}

# guest_boot SCRIPT CPUS TIMEOUT: boots the initramfs under TCG (/dev/kvm hangs on these machines)
# with CPUS vCPUs to run /SCRIPT; qemu is killed after TIMEOUT seconds, the script 10 s before.
# The console goes to $W/SCRIPT.log; the exit status and seconds to GUEST_QRC_/GUEST_SECS_<n>.
# A boot whose kernel never reaches /init (its first line, "<TAG>GUEST: kernel ...") within
# GUEST_BOOT_WAIT seconds is booted once more: TCG has hung in early boot here, rarely, with not
# a line on the console (a normal boot takes 2-5 s). Nothing of the project has run by then.
# loglevel=5 after quiet: a soft lockup's or RCU stall's stack is printed at the default level
# (4), which quiet alone keeps off the console, and a hang is judged by that stack.
guest_boot() {
	local t0 n=${#GUEST_BOOTS[@]} try q rc
	GUEST_BOOTS+=("$1")
	for try in 1 2; do
		t0=$SECONDS
		# GUEST_CPU / GUEST_QEMU_ARGS / GUEST_APPEND: a test's own CPU model, extra options
		# (NUMA nodes, devices) and kernel command line (intel_iommu=on)
		timeout -s KILL "$3" qemu-system-x86_64 -accel tcg,thread=multi -cpu "${GUEST_CPU:-max}" \
			-smp "$2" ${GUEST_QEMU_ARGS:-} -m 512 -M q35 -nodefaults -no-user-config -display none -serial stdio \
			-kernel "$KERNEL" -initrd "$W/initrd.cpio.gz" -no-reboot \
			-append "console=ttyS0 quiet loglevel=5 panic=-1 ${GUEST_APPEND:+$GUEST_APPEND }ql.backend=$BACKEND ql.test=$1 ql.timeout=$(($3 - 10))" \
			</dev/null >"$W/$1.log" 2>&1 &
		q=$!
		while kill -0 "$q" 2>/dev/null && ! grep -q "GUEST: kernel" "$W/$1.log" &&
			[ $((SECONDS - t0)) -lt "${GUEST_BOOT_WAIT:-60}" ]; do
			sleep 0.2
		done
		if [ "$try" = 1 ] && kill -0 "$q" 2>/dev/null && ! grep -q "GUEST: kernel" "$W/$1.log"; then
			kill -TERM "$q" # timeout(1) hands it to qemu
			wait "$q"
			GUEST_REBOOTED+=("$1")
			continue
		fi
		wait "$q"
		rc=$?
		break
	done
	eval "GUEST_QRC_$n=\$rc GUEST_SECS_$n=\$((SECONDS - t0))"
}

# TAP from the "<TAG>TAP: " lines of every boot (each prints a "PLAN n" line first), plus its
# own: the static launcher built; per boot, the guest reached its sentinel and every planned test
# of it ran.
guest_report() {
	local i b planned=() total=0 count line p qrc secs
	for i in "${!GUEST_BOOTS[@]}"; do
		b=${GUEST_BOOTS[$i]}
		tr -d '\r' <"$W/$b.log" | sed -n "s/^${TAG}TAP: //p" >"$W/$b.results"
		p=$(sed -n 's/^PLAN \([0-9]*\)$/\1/p' "$W/$b.results" | head -n1)
		planned[$i]=${p:-0}
		total=$((total + ${p:-0} + 2))
	done
	echo "1..$((total + 1))"
	n=0
	emit() {
		n=$((n + 1))
		echo "$1 $n$2"
	}
	if [ "$LAUNCHER_OK" = 1 ]; then
		emit ok " - static qemu-launcher builds for the guest"
	else
		emit "not ok" " - static qemu-launcher builds for the guest (see $LOG)"
	fi
	for i in "${!GUEST_BOOTS[@]}"; do
		b=${GUEST_BOOTS[$i]}
		eval "qrc=\$GUEST_QRC_$i secs=\$GUEST_SECS_$i"
		if grep -q "^${TAG}GUEST-DONE" <(tr -d '\r' <"$W/$b.log"); then
			emit ok " - $b: the guest booted, ran its tests and powered off (qemu exit $qrc, ${secs}s)"
		else
			emit "not ok" " - $b: the guest finished (qemu exit $qrc after ${secs}s; see $W/$b.log)"
			tr -d '\r' <"$W/$b.log" | grep -v "^${TAG}TAP" | tail -n 25 | sed 's/^/# /'
		fi
		count=0
		while IFS= read -r line; do
			case $line in
			"PLAN "*) ;;
			"# "*) echo "$line" ;;
			"ok # SKIP"*) emit ok " # SKIP ${line#ok # SKIP }"; count=$((count + 1)) ;;
			"ok - "*) emit ok " - $b: ${line#ok - }"; count=$((count + 1)) ;;
			"not ok - "*) emit "not ok" " - $b: ${line#not ok - }"; count=$((count + 1)) ;;
			*) echo "# $line" ;;
			esac
		done <"$W/$b.results"
		if [ "$count" -eq "${planned[$i]}" ] && [ "${planned[$i]}" -gt 0 ]; then
			emit ok " - $b: the guest ran all ${planned[$i]} planned tests"
		else
			emit "not ok" " - $b: the guest ran $count of ${planned[$i]} planned tests"
		fi
		echo "# $b: guest ${secs}s"
	done
	for b in "${GUEST_REBOOTED[@]}"; do
		echo "# $b: booted twice (the first boot's kernel printed nothing in ${GUEST_BOOT_WAIT:-60} s)"
	done
	# A short plan (a guest died early) is reported by the runner too; pad so the numbers stay
	# honest.
	while [ $n -lt $((total + 1)) ]; do emit "not ok" " - (missing guest result)"; done
	echo "# prepare ${GUEST_PREP}s"
}
