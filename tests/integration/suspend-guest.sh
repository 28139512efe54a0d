#!/bin/bash
# A guest asleep (suspended to RAM, S3) when the launcher is asked to stop: qemu presses no power
# button into S3, so the launcher wakes it (system_wakeup) and then presses its power button until
# it powers off or the shutdown timeout. A real Linux guest (the guest harness's Debian cloud
# kernel, a busybox initramfs whose acpid handles the power button) suspends itself at boot; TCG.
. "$(dirname "$0")/lib.sh"
NTESTS=14
plan $NTESTS
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${QL_BUILD_DIR:-$SRC/build}
LOG=$SCRATCH/guest-kernel.log
lib_skip_all=$(declare -f skip_all)
. "$SRC/tests/guest/harness.sh"
eval "$lib_skip_all" # the plan's, not the harness's one-test plan
fail_all() { fail_rest "$1"; } # a harness failure fails the rest, never skips it
guest_prereqs
mkdir -p "$GUEST_CACHE"
guest_kernel

# The initramfs: on boot it suspends to RAM; its power button powers it off (ql_pwr=off) or puts
# it back to sleep (ql_pwr=sleep), saying so on the serial console.
root=$SCRATCH/initrd
mkdir -p "$root"/{bin,proc,sys,dev,tmp,etc,lib/modules}
cp "$BUSYBOX" "$root/bin/busybox"
cp "$GUEST_MODULES"/button.ko "$GUEST_MODULES"/evdev.ko "$root/lib/modules/"
cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
insmod /lib/modules/evdev.ko && insmod /lib/modules/button.ko
mkdir -p /etc/acpi/PWRF
case " $(cat /proc/cmdline) " in
*" ql_pwr=sleep "*) act='echo "guest: power button -> sleep"; echo mem >/sys/power/state' ;;
*) act='echo "guest: power button -> poweroff"; poweroff -f' ;;
esac
printf '#!/bin/sh\nexec >/dev/console\n%s\n' "$act" >/etc/acpi/PWRF/00000080
chmod +x /etc/acpi/PWRF/00000080
acpid -c /etc/acpi -l /tmp/acpid.log
echo "guest: suspending"
echo mem >/sys/power/state
echo "guest: resumed"
while :; do sleep 3600; done
EOF
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$SCRATCH/initrd.gz"

vm_def() { # vm_def NAME off|sleep SHUTDOWN_TIMEOUT
	cat <<EOF | def "$1"
launcher:
  binary: $QEMU
  shutdown_timeout: $3
qemu:
- machine: [ pc, accel: tcg ]
- m: 256
- nodefaults
- display: none
- serial: file:$SCRATCH/$1.serial
- kernel: $KERNEL
- initrd: $SCRATCH/initrd.gz
- append: console=ttyS0 quiet ql_pwr=$2
- no-reboot
EOF
}
serial_has() { grep -q "$2" "$SCRATCH/$1.serial" 2>/dev/null; }
# stop_asleep NAME: starts the VM, waits for the guest to sleep, sends the launcher SIGTERM and
# waits for it to end; RC its status, TOOK the seconds from the signal.
stop_asleep() {
	ql_start "$1" -v
	L=""
	wait_until 10 nonempty launcher_of "$LPID"
	L=$(launcher_of "$LPID")
	if ! wait_until 50 grep -q "qemu event SUSPEND" "$LERR"; then
		diag "no SUSPEND: $(tail -n5 "$LERR")" "$(tail -n3 "$SCRATCH/$1.serial" 2>/dev/null)"
	fi
	local t0=$SECONDS
	kill -TERM "$L"
	wait "$LPID"
	RC=$?
	TOOK=$((SECONDS - t0))
}

# 1-7: woken, it hears its power button and powers off
vm_def off off 20
stop_asleep off
check "the guest suspended itself to RAM (qemu's SUSPEND)" grep -q "qemu event SUSPEND" "$LERR"
check "on SIGTERM the launcher wakes it (system_wakeup)" grep -q "waking the sleeping guest to power it down (system_wakeup)" "$LERR"
check "... and the guest resumed" serial_has off "guest: resumed"
check "... then its power button is pressed once it is awake" grep -q "pressing its power button" "$LERR"
check "the guest powered itself off on its power button" serial_has off "power button -> poweroff"
check "... without the launcher telling qemu to quit" bash -c "! grep -q 'telling qemu to quit' '$LERR'"
expect_eq "... and the launcher exits with qemu's status 0 (took ${TOOK} s of the 20 s)" 0 "$RC"

# 8-14: its power button puts it back to sleep: it is not woken again, qemu quits at the deadline
vm_def sleep sleep 6
stop_asleep sleep
check "sleep: woken on SIGTERM" grep -q "waking the sleeping guest to power it down (system_wakeup)" "$LERR"
check "sleep: its power button put it back to sleep" serial_has sleep "power button -> sleep"
check "sleep: the launcher saw it go back to sleep" grep -q "the guest went back to sleep" "$LERR"
expect_eq "sleep: woken once only (one resume on its console)" 1 "$(grep -c 'guest: resumed' "$SCRATCH/sleep.serial")"
check "sleep: at the deadline qemu is told to quit" grep -q "telling qemu to quit" "$LERR"
check "sleep: ... after the 6 s shutdown timeout, not before (took ${TOOK} s)" [ "$TOOK" -ge 5 -a "$TOOK" -le 20 ]
expect_eq "sleep: the launcher exits 0 (qemu quit)" 0 "$RC"
