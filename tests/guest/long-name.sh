#!/bin/busybox sh
# Long VM names and two-digit host CPUs on either backend (BACKEND from /init; the guest has 12
# CPUs), with the real /qemu-launcher and /fake-qemu. A VM name may be 64 bytes (QL_NAME_MAX):
# its directory must carry the whole name, and the set of host CPU 10 must never be folded onto
# CPU 1's by a path cut short (cgroup v2 once formatted "%s/vcpu%d" into 32 bytes: a 64-byte name
# failed with "File exists", a 21-byte one silently put vCPU 1's thread into vcpu1).
PLAN=16

. /guest-lib.sh
case $BACKEND in
v2) VMS=/sys/fs/cgroup/qemu SET=vcpu THREADS=cgroup.threads ;;
v1) VMS=/sys/fs/cgroup/cpuset/qemu SET=cpu THREADS=tasks ;;
esac
export QEMU_LAUNCHER_CONFIG_DIR=/etc/ql
# subdirs DIR: the directories in DIR, sorted, on one line.
subdirs() { find "$1" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sed 's|.*/||' | sort | tr '\n' ' ' | sed 's/ $//'; }

# only_thread FILE TID: the set's threads file lists TID alone.
only_thread() { [ "$(rd "$1")" = "$2" ]; }
# vm_case NAME "CPU..." [LAUNCHER-LINES]: vCPU k pinned to the k-th CPU; 5 + (number of CPUs)
# results: started, directory, its sets, one per vCPU (alone in its set, on its CPU), clean exit.
vm_case() {
	name=$1 cpus=$2 label="${#1}-byte name"
	pins=$(echo $cpus | sed 's/ /, /g')
	n=$(echo $cpus | wc -w)
	def "$name" "$pins" "$n" "${3:-}"
	ql "$name"
	check "$label: the launcher started the guest" started "$name" || dump_err "$name"
	check "$label: the VM's directory has the whole name" test -d "$VMS/$name"
	# cgroup v2 always has an emulator set; cpuset v1 only for emulator_pinning (else the pool).
	emu=
	case $BACKEND/${3:-} in v2/* | *emulator_pinning*) emu=emulator ;; esac
	want=$(for d in $emu $(for c in $cpus; do echo $SET$c; done); do echo $d; done | sort | tr '\n' ' ')
	eq "$label: its sets are exactly ${want% }" "${want% }" "$(subdirs "$VMS/$name")"
	k=0
	for c in $cpus; do
		tid=$(tid_named "$Q" "CPU $k/TCG")
		# vCPU 0 starts a helper thread on its first run, born in its set: the rescan moves it
		wait_for 10 only_thread "$VMS/$name/$SET$c/$THREADS" "$tid"
		eq "$label: vCPU $k's thread is alone in $SET$c, which has CPU $c, and runs on CPU $c" \
			"$tid $c $c" "$(rd "$VMS/$name/$SET$c/$THREADS") $(rd "$VMS/$name/$SET$c/cpuset.cpus") $(aff "$tid")"
		k=$((k + 1))
	done
	stop "$LP"
	eq "$label: SIGTERM -> the launcher exits 0" 0 $?
	check "$label: nothing is left under $VMS" absent "$VMS"
}

tap "PLAN $PLAN"
if [ ! -x "$QL" ]; then
	skipn $PLAN "no static qemu-launcher in the guest"
	exit 0
fi
eq "the guest has 12 CPUs" 12 "$(nproc)"
N64=$(printf '%-64s' vm-with-the-longest-name-a-definition-may-have | tr ' ' x)
# isolate_cpus: true also takes cgroup v2's partition path (cpuset v1 always isolates).
vm_case "$N64" "1 10 11" "  isolate_cpus: true
  emulator_pinning: 0"
# 21 bytes: "qemu/NAME/vcpu10" is 33 bytes, so a 32-byte buffer made it "qemu/NAME/vcpu1".
vm_case "$(printf '%-21s' vm-21 | tr ' ' x)" "1 10"
diag "guest test done, uptime $(cut -d' ' -f1 /proc/uptime)"
