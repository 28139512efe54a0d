# The demo's decisions that need no root and change nothing: which cgroup backend the launcher
# will pick, where the vCPUs go, the VM's definition, which child of the launcher is qemu. Sourced
# by run-demo.sh and by tests/integration/demo.sh, which feeds it fake hosts.
# shellcheck shell=bash

# cpuset_v1_mount MOUNTINFO: the mount point of the first cgroup v1 hierarchy that has the cpuset
# controller, or nothing. Exact on purpose: a miss sends the demo to the host's real cpuset root,
# where the launcher moves every task of the host. A mountinfo line has a variable number of
# optional fields (none, "shared:N", "shared:N master:M", ...) ended by "-"; the fs type is the
# field after it, then the source, then the super options (the controllers, comma-separated).
# The mount point's octal escapes (\040 for a space) are undone.
cpuset_v1_mount() {
	local mp
	mp=$(awk '{
		for (i = 7; i <= NF && $i != "-"; i++)
			;
		if (i > NF || $(i + 1) != "cgroup")
			next
		n = split($(i + 3), opt, ",")
		for (k = 1; k <= n; k++)
			if (opt[k] == "cpuset") {
				print $5
				exit
			}
	}' "$1")
	[ -n "$mp" ] && printf '%b\n' "$mp"
	return 0
}

# cgroup_backend MOUNTINFO CGROUP2_ROOT: v1, v2 or none, in the launcher's order of choice
# (qemu-launcher(1), CPU ISOLATION): cpuset v1 where a hierarchy has it, else cgroup v2.
cgroup_backend() {
	if [ -n "$(cpuset_v1_mount "$1")" ]; then
		echo v1
	elif [ -e "$2/cgroup.controllers" ]; then
		echo v2
	else
		echo none
	fi
}

# demo_layout NCPU BACKEND: sets cpu_a and cpu_b (the host CPUs of vCPU 0 and 1), emu (the
# emulator_pinning, "" for none), isolate (isolate_cpus of the isolated boot) and compare (yes
# when the cpuset-vs-affinity measurement can show something).
# cpuset v1 (and no backend, where the launcher refuses): vCPU 0 -> CPU 1, vCPU 1 -> CPU 2 (CPU 1
# too on a 2-CPU host), CPU 0 keeps the rest. cgroup v2 isolates only with CPU partitions
# (qemu-launcher(1), CPU ISOLATION): the cgroup2 root keeps a CPU (0 here), the prefix cgroup
# keeps one no VM takes (the launcher picks the highest free), and the VM's partition is its vCPU
# CPUs plus emulator CPUs apart from them; the default emulator set (every CPU the vCPUs leave)
# would take the rest, so it is named. That needs 4 CPUs: on 2 or 3 the VM runs pinned only.
# shellcheck disable=SC2034 # the caller reads them
demo_layout() {
	local ncpu=$1 backend=$2
	cpu_a=1 cpu_b=$(($1 >= 3 ? 2 : 1)) emu="" isolate=true compare=yes
	[ "$backend" = v2 ] || return 0
	if [ "$ncpu" -ge 5 ]; then
		emu=3
	elif [ "$ncpu" -eq 4 ]; then
		cpu_b=1 emu=2
	else
		isolate=auto compare=no
	fi
}

# write_def_file FILE ISOLATE MODE KERNEL INITRD: the VM's definition with the layout of demo_layout
# (ISOLATE: its isolate_cpus, false = affinity only; MODE: the guest's demo= mode).
write_def_file() {
	local why="true: cpusets keep other tasks off the vCPU CPUs; false: affinity only"
	[ "$2" = auto ] && why="auto: cgroup v2 partitions need 4 CPUs: pinned, not isolated, here"
	{
		cat <<DEF
# A 2-vCPU Linux guest, each vCPU pinned to a host CPU (see qemu-launcher.yml(5)).
launcher:
  binary: qemu-system-x86_64
  shutdown_timeout: 20       # seconds between system_powerdown and quit
  isolate_cpus: $2          # $why
  vcpu_pinning:
    0:          # socket 0
      0:        # core 0
        0: $cpu_a   # thread 0 -> host CPU $cpu_a
      1:
        0: $cpu_b
DEF
		[ -z "$emu" ] || cat <<DEF
  emulator_pinning: $emu   # qemu's other threads, apart from the vCPUs: cgroup v2 partitions need it
DEF
		cat <<DEF
qemu:
- name: [ demo, debug-threads: on ]       # thread names "CPU 0/TCG": how --status finds vCPUs
- machine: [ q35, accel: tcg ]            # TCG: no KVM needed
- smp: [ 2, sockets: 1, cores: 2, threads: 1 ]
- m: 256
- nodefaults
- no-user-config
- nographic
- serial: mon:stdio                       # the guest's console on qemu's stdio (Ctrl-a x quits)
- kernel: $4
- initrd: $5
- append: console=ttyS0 quiet panic=-1 demo=$3
- no-reboot
DEF
	} >"$1"
}

# qemu_child LAUNCHER-PID BINARY: the launcher's child that runs BINARY (a path, as
# /proc/PID/exe shows it). The launcher's guardian is its child too, and may come first.
qemu_child() {
	local p
	for p in $(pgrep -P "$1"); do
		if [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$2" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}
