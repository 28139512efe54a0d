#!/bin/busybox sh
# /init of the demo guest (run-demo.sh): says what its kernel sees, hands the ACPI power button to
# busybox acpid (-> poweroff), then either runs a CPU-bound loop on vCPU 0 or gives a shell.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp

echo "guest: Linux $(uname -r), $(nproc) CPUs online ($(cat /sys/devices/system/cpu/online))"
dmesg | sed -n 's/^\[[ 0-9.]*\] //; /smp: Brought up/p' | sed 's/^/guest: kernel: /'

# system_powerdown presses the ACPI power button: button.ko turns it into KEY_POWER on an input
# device (evdev.ko), acpid runs /etc/acpi/PWRF/00000080 for it.
insmod /lib/modules/evdev.ko && insmod /lib/modules/button.ko ||
	echo "guest: cannot load the power button driver"
mkdir -p /etc/acpi/PWRF
cat >/etc/acpi/PWRF/00000080 <<'EOF'
#!/bin/sh
echo "guest: ACPI power button pressed -> powering off" >/dev/console
sync
poweroff -f
EOF
chmod +x /etc/acpi/PWRF/00000080
acpid -c /etc/acpi -l /tmp/acpid.log
echo "guest: acpid waits for the ACPI power button"

case " $(cat /proc/cmdline) " in
*" demo=console "*)
	cat <<'EOF'
guest: -------------------------------------------------------------------------
guest: This is the guest's shell on your terminal (serial console on qemu's stdio).
guest: Try: nproc; cat /proc/interrupts; sh /loop.sh (a CPU-bound loop, Ctrl-c stops it)
guest: Leave: Ctrl-a x (qemu quits), or `poweroff -f` (the guest powers off).
guest: -------------------------------------------------------------------------
EOF
	while :; do setsid cttyhack sh -l; done
	;;
*)
	taskset -c 0 sh /loop.sh &
	echo "guest: CPU-bound loop started on vCPU 0 (pid $!)"
	while :; do sleep 3600; done
	;;
esac
