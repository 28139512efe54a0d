#!/bin/bash
# Demo: installs what is missing, builds, starts a 2-vCPU VM (TCG, a tiny self-contained guest)
# with every vCPU pinned, shows where each qemu thread runs and in which cpuset, then shuts the
# VM down gracefully and shows that nothing was left behind. Needs root (sudo) for cpusets.
set -eu
cd "$(dirname "$0")"
if [ "$(id -u)" -ne 0 ]; then
	exec sudo --preserve-env=PATH "$0" "$@"
fi
./scripts/install-deps.sh --demo
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
QL=$PWD/build/qemu-launcher

work=$(mktemp -d /tmp/qemu-launcher-demo.XXXXXX)
chmod 755 "$work"
demo_cpuset=""
cleanup() {
	[ -n "${lpid:-}" ] && kill -KILL "$lpid" 2>/dev/null || true
	[ -n "$demo_cpuset" ] && rmdir "$demo_cpuset" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# The guest: a 64 KiB BIOS whose reset vector halts the CPU forever (cli; hlt; jmp $-2).
head -c 65520 /dev/zero >"$work/guest.bin"
printf '\xfa\xf4\xeb\xfd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' >>"$work/guest.bin"

# Pin the two vCPUs away from CPU 0 (it keeps the other tasks); on a 2-CPU host both share CPU 1.
ncpu=$(nproc --all)
cpu_a=1
cpu_b=$((ncpu >= 3 ? 2 : 1))
mkdir "$work/vms"
cat >"$work/vms/demo.yml" <<EOF
# A 2-vCPU VM with each vCPU pinned to a host CPU (see qemu-launcher.yml(5)).
launcher:
  binary: qemu-system-x86_64
  shutdown_timeout: 2
  vcpu_pinning:
    0:          # socket 0
      0:        # core 0
        0: $cpu_a   # thread 0 -> host CPU $cpu_a
      1:
        0: $cpu_b
qemu:
- name: [ demo, debug-threads: on ]
- machine: [ pc, accel: tcg ]
- smp: [ 2, sockets: 1, cores: 2, threads: 1 ]
- m: 32
- nodefaults
- display: none
- bios: $work/guest.bin
EOF
export QEMU_LAUNCHER_CONFIG_DIR=$work/vms

# Where a cpuset v1 hierarchy is mounted (as on this kind of host), work in a subtree of our own
# so the demo does not move the host's other tasks; with cgroup v2 the launcher's own
# <root>/qemu/<vm> tree is already private.
v1=$(awk '$9 == "cgroup" && $NF ~ /cpuset/ {print $5; exit}' /proc/self/mountinfo)
if [ -n "$v1" ]; then
	demo_cpuset=$v1/qemu-launcher-demo
	mkdir -p "$demo_cpuset"
	cat "$v1/cpuset.cpus" >"$demo_cpuset/cpuset.cpus"
	cat "$v1/cpuset.mems" >"$demo_cpuset/cpuset.mems"
	echo $$ >"$demo_cpuset/tasks"
	export QEMU_LAUNCHER_CPUSET_MOUNT_PATH=$demo_cpuset
fi

echo "== The definition ($work/vms/demo.yml):"
cat "$work/vms/demo.yml"
echo
echo "== What would run (--dry-run):"
"$QL" --dry-run demo
echo
echo "== Starting the VM (-v):"
"$QL" -v demo &
lpid=$!
qpid=""
for _ in $(seq 100); do
	qpid=$(pgrep -P "$lpid" || true)
	[ -n "$qpid" ] && grep -q "CPU 1/TCG" /proc/"$qpid"/task/*/comm 2>/dev/null && break
	sleep 0.1
done
sleep 1
echo
echo "== qemu's threads, read from the kernel:"
printf '%-8s %-18s %-14s %s\n' TID THREAD CPUS_ALLOWED CPUSET
for t in /proc/"$qpid"/task/*; do
	printf '%-8s %-18s %-14s %s\n' "${t##*/}" "$(cat "$t/comm")" \
		"$(awk '/^Cpus_allowed_list/ {print $2}' "$t/status")" "$(cat "$t/cpuset" 2>/dev/null)"
done
echo
echo "== The same, as qemu-launcher --status reports it (compared with the definition):"
"$QL" --status demo || true
echo
echo "== Stopping the VM with SIGTERM (system_powerdown, then quit after shutdown_timeout):"
kill -TERM "$lpid"
wait "$lpid" && rc=0 || rc=$?
lpid=""
echo "qemu-launcher exited with status $rc"
echo
if [ -n "$demo_cpuset" ]; then
	echo $$ >"$v1/tasks"
	left=$(find "$demo_cpuset" -mindepth 1 -type d)
	echo "== Left behind in $demo_cpuset: ${left:-nothing}"
else
	left=$(find /sys/fs/cgroup/qemu -mindepth 1 -type d 2>/dev/null || true)
	echo "== Left behind under /sys/fs/cgroup/qemu: ${left:-nothing}"
fi
