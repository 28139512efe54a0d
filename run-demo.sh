#!/bin/bash
# Demo: boots a real Linux guest (Debian's cloud kernel + a busybox initramfs, TCG) with 2 pinned
# vCPUs, shows the guest's and the host's view, measures what pinning buys under host load
# (cpuset vs affinity only), then powers the guest down and shows nothing was left behind.
# Needs root for cpusets; on cpuset v1 it works in a cpuset subtree of its own, and it touches only
# what it started.
set -eu
usage() {
	cat <<'EOF'
usage: ./run-demo.sh [--console]
  (no option)  the tour: definition, --dry-run, the guest booting with 2 pinned vCPUs, --status,
               the vCPU's share of its CPU under host load (cpuset vs affinity), graceful stop
  --console    boot the same VM and leave you at the guest's shell (Ctrl-a x quits qemu)
Needs root (re-runs itself with sudo), qemu (TCG, no KVM) and Debian's apt-get (the guest kernel).
EOF
}
mode=tour
case ${1:-} in
"") ;;
--console) mode=console ;;
-h | --help) usage; exit 0 ;;
*) usage >&2; exit 2 ;;
esac
# Absolute: after the cd, a relative $0 (run from another directory) names nothing.
here=$(cd "$(dirname "$0")" && pwd) || exit 1
cd "$here" || exit 1
if [ "$(id -u)" -ne 0 ]; then
	exec sudo --preserve-env=PATH "$here/${0##*/}" "$@"
fi

# shellcheck source=demo/lib.sh
. demo/lib.sh
bold="" off=""
[ -t 1 ] && bold=$'\033[1m' off=$'\033[0m'
step() { # step TITLE EXPLANATION
	printf '\n%s== %s%s\n%s\n' "$bold" "$1" "$off" "$2"
}
die() {
	echo "run-demo: $*" >&2
	exit 1
}

# Run through sudo (its re-exec above, or by hand), the demo writes build/ as root: the objects
# and the guest-kernel cache build/guest. It goes back to the user on every way out, or a later
# ./run-tests.sh as that user cannot rebuild. Building before the re-exec would not be enough:
# the guest kernel is fetched into build/guest after it, and ninja may regenerate files as root.
give_back_build() {
	if [ -n "${SUDO_UID:-}" ] && [ "$SUDO_UID" != 0 ] && [ -d "$here/build" ]; then
		chown -R -h "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$here/build" || true
	fi
}
trap give_back_build EXIT

echo "Preparing: packages, build, guest kernel and initramfs ..."
./scripts/install-deps.sh --demo
# build.ninja, not the directory: a failed setup leaves the directory (as in run-tests.sh)
if [ ! -f build/build.ninja ]; then
	if [ -f build/meson-private/coredata.dat ]; then
		meson setup --reconfigure build >/dev/null
	else
		meson setup build >/dev/null
	fi
fi
ninja -C build >/dev/null
QL=$PWD/build/qemu-launcher

work=$(mktemp -d /tmp/qemu-launcher-demo.XXXXXX)
chmod 755 "$work"
demo_cpuset=""
v1=""
lpid=""
loops=()
cleanup() {
	local p d t
	for p in "${loops[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	if [ -n "$lpid" ]; then
		# The launcher's own way out undoes its cpusets; SIGKILL only if it does not finish.
		kill -TERM "$lpid" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$lpid" 2>/dev/null || break; sleep 0.3; done
		kill -KILL "$lpid" 2>/dev/null || true
		wait "$lpid" 2>/dev/null || true
	fi
	if [ -n "$demo_cpuset" ] && [ -d "$demo_cpuset" ]; then
		echo $$ >"$v1/tasks" 2>/dev/null || true
		# Whatever is left is ours (the subtree holds only this demo's tasks): out, then remove.
		while read -r d; do
			for t in $(cat "$d/tasks" 2>/dev/null); do echo "$t" >"$v1/tasks" 2>/dev/null || true; done
			rmdir "$d" 2>/dev/null || true
		done < <(find "$demo_cpuset" -depth -type d)
	fi
	rm -rf "$work"
	give_back_build
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The guest kernel comes from the test harness (same apt-get download, same cache in build/).
SRC=$PWD BUILD=$PWD/build
# shellcheck source=tests/guest/harness.sh
. tests/guest/harness.sh
skip_all() { die "$* (see $LOG)"; }
fail_all() { die "$* (see $LOG)"; }
mkdir -p "$GUEST_CACHE"
LOG=$work/guest-kernel.log
guest_prereqs
guest_kernel

# The initramfs: static busybox, the power button modules, demo/init.sh and the guest's loop.
root=$work/initrd
mkdir -p "$root"/{bin,proc,sys,dev,tmp,etc,lib/modules}
cp "$BUSYBOX" "$root/bin/busybox"
cp "$GUEST_MODULES"/button.ko "$GUEST_MODULES"/evdev.ko "$root/lib/modules/"
install -m 755 demo/init.sh "$root/init"
cp demo/loop.sh "$root/loop.sh"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# Where the vCPUs go depends on the backend the launcher will pick (demo_layout in demo/lib.sh).
ncpu=$(nproc --all)
[ "$ncpu" -ge 2 ] || die "needs 2 host CPUs (one for the vCPUs, one for everything else)"
backend=$(cgroup_backend /proc/self/mountinfo /sys/fs/cgroup)
demo_layout "$ncpu" "$backend"
mkdir "$work/vms"
# write_def ISOLATE MODE: the VM's definition (ISOLATE: $isolate = cpusets, false = affinity only).
write_def() { write_def_file "$work/vms/demo.yml" "$1" "$2" "$KERNEL" "$work/initrd.gz"; }
export QEMU_LAUNCHER_CONFIG_DIR=$work/vms

# With a cpuset v1 hierarchy, work in a subtree of our own: the launcher then moves only this
# demo's tasks (its shell and what it starts) into the pool, never the host's other processes.
v1=$(cpuset_v1_mount /proc/self/mountinfo)
if [ "$backend" = v1 ] && [ -n "$v1" ]; then
	demo_cpuset=$v1/qemu-launcher-demo.$$
	mkdir "$demo_cpuset"
	cat "$v1/cpuset.cpus" >"$demo_cpuset/cpuset.cpus"
	cat "$v1/cpuset.mems" >"$demo_cpuset/cpuset.mems"
	echo $$ >"$demo_cpuset/tasks"
	export QEMU_LAUNCHER_CPUSET_MOUNT_PATH=$demo_cpuset
fi

if [ "$mode" = console ]; then
	write_def "$isolate" console
	cat <<EOF

Booting the guest with its serial console on this terminal (qemu's stdio stays yours: the
launcher talks to qemu over a private socket). The vCPUs are pinned before the guest runs.
From another terminal: sudo QEMU_LAUNCHER_CPUSET_MOUNT_PATH=${demo_cpuset:-/sys/fs/cgroup/cpuset} \\
    QEMU_LAUNCHER_CONFIG_DIR=$work/vms $QL --status demo
Ctrl-a x quits qemu; \`poweroff -f\` in the guest powers it off.

EOF
	rc=0
	"$QL" demo || rc=$?
	echo
	echo "qemu-launcher exited with status $rc"
	exit "$rc"
fi

# wait_line PATTERN SECONDS: waits for a console line matching PATTERN.
wait_line() {
	local deadline=$((SECONDS + $2))
	until grep -q -- "$1" "$console" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || return 1
		kill -0 "$lpid" 2>/dev/null || return 1
		sleep 0.2
	done
}
# show_lines PATTERN: the console lines matching PATTERN, indented.
show_lines() { tr -d '\r' <"$console" | grep -o -- "$1.*" | sed 's/^/    | /'; }
# boot ISOLATE: starts the launcher in the background (console in $console), waits for the loop.
boot() {
	write_def "$1" tour
	console=$work/console-$1.log
	: >"$console"
	"$QL" demo >"$console" 2>"$work/launcher-$1.err" </dev/null &
	lpid=$!
	wait_line "iterations/s" 90 || {
		cat "$work/launcher-$1.err" "$console" >&2
		die "the guest did not start its loop"
	}
	qpid=$(qemu_child "$lpid" "$(readlink -f "$(command -v qemu-system-x86_64)")") ||
		die "no child of the launcher (pid $lpid) runs qemu-system-x86_64"
}
# vcpu_tid N: the TID of qemu's "CPU N/TCG" thread.
vcpu_tid() {
	local t
	for t in /proc/"$qpid"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = "CPU $1/TCG" ] && { echo "${t##*/}"; return; }
	done
}
# others_on_cpu OURS: how many threads are runnable on CPU cpu_a right now that are not in OURS
# (" tid tid ... "): the host's other users, which a delegated subtree does not move.
others_on_cpu() {
	cat /proc/[0-9]*/task/*/stat 2>/dev/null | awk -v cpu="$cpu_a" -v ours="$1" '
		{
			comm = $0; sub(/^[0-9]+ \(/, "", comm); sub(/\) [^)]*$/, "", comm)
			s = $0; sub(/.*\) /, "", s); split(s, f, " ") # f[1] is field 3 of stat
			if (f[1] == "R" && f[37] == cpu && index(ours, " " $1 " ") == 0 &&
			    comm != "cat" && comm != "awk" && comm != "mawk" && comm != "run-demo.sh")
				n++
		}
		END { print n + 0 }'
}
# share SECONDS: measures vCPU 0's run time and run-queue wait (schedstat) over about SECONDS;
# sets SHARE (percent of the time it wanted its CPU that it, or vCPU 1 when both share one host
# CPU, had it), RUN_MS, WAIT_MS and VCPU1_MS (vCPU 1's run time), and
# from 5 samples/s LOOPS_ON (% of samples a busy loop was on cpu_a) and OTHERS (mean runnable
# threads of other users on cpu_a).
share() {
	local tid tid1 r0 w0 r1 w1 s0 s1 i p stat f ours samples=0 on_cpu=0 polls=0 others=0
	tid=$(vcpu_tid 0)
	tid1=$(vcpu_tid 1)
	ours=" $(ls "/proc/$qpid/task" | tr '\n' ' ') ${loops[*]} $$ "
	read -r s0 _ <"/proc/$qpid/task/$tid1/schedstat"
	read -r r0 w0 _ <"/proc/$qpid/task/$tid/schedstat"
	for ((i = 0; i < $1 * 5; i++)); do
		for p in "${loops[@]}"; do
			read -r stat <"/proc/$p/stat" 2>/dev/null || continue
			read -ra f <<<"${stat##*) }" # f[0] is field 3; f[36] the CPU it last ran on
			samples=$((samples + 1))
			[ "${f[36]}" = "$cpu_a" ] && on_cpu=$((on_cpu + 1))
		done
		others=$((others + $(others_on_cpu "$ours")))
		polls=$((polls + 1))
		sleep 0.2
	done
	read -r r1 w1 _ <"/proc/$qpid/task/$tid/schedstat"
	read -r s1 _ <"/proc/$qpid/task/$tid1/schedstat"
	VCPU1_MS=$(((s1 - s0) / 1000000))
	LOOPS_ON=$((on_cpu * 100 / (samples + (samples == 0))))
	OTHERS=$(awk -v o="$others" -v p="$polls" 'BEGIN { printf "%.1f", o / (p + (p == 0)) }')
	RUN_MS=$(((r1 - r0) / 1000000))
	WAIT_MS=$(((w1 - w0) / 1000000))
	SHARE=$((RUN_MS * 100 / (RUN_MS + WAIT_MS + (RUN_MS + WAIT_MS == 0))))
	# With both vCPUs on one host CPU, vCPU 0 also waits for vCPU 1: count the VM's share.
	if [ "$cpu_b" = "$cpu_a" ]; then
		SHARE=$(((RUN_MS + VCPU1_MS) * 100 / (RUN_MS + WAIT_MS + (RUN_MS + WAIT_MS == 0))))
		if ((SHARE > 100)); then SHARE=100; fi
	fi
}
# load_on / load_off: two busy loops per host CPU, children of this shell (so in its cpuset).
load_on() {
	local i
	for ((i = 0; i < 2 * ncpu; i++)); do
		(while :; do :; done) &
		loops+=($!)
	done
}
load_off() {
	local p
	for p in "${loops[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	for p in "${loops[@]}"; do wait "$p" 2>/dev/null || true; done
	loops=()
}
# pinning_live LABEL: the measurement under load, with the guest's own loop rate beside it.
pinning_live() {
	local before
	load_on
	echo "  started ${#loops[@]} busy loops (pids ${loops[*]}) in cpuset $(cat "/proc/${loops[0]}/cpuset")"
	sleep 1
	before=$(tr -d '\r' <"$console" | grep -c "iterations/s")
	share 5
	load_off
	echo "  guest's loop meanwhile:"
	tr -d '\r' <"$console" | grep "iterations/s" | tail -n +"$((before + 1))" | head -n 4 | sed 's/^/    | /'
	echo "  on CPU $cpu_a meanwhile (5 samples/s): the busy loops in $LOOPS_ON% of samples;" \
		"other runnable threads (not this demo's): $OTHERS on average"
	if [ "$cpu_b" = "$cpu_a" ]; then
		printf '  %s: vCPU 0 ran %d ms and waited %d ms for host CPU %d, while vCPU 1 (on the same CPU\n' \
			"$1" "$RUN_MS" "$WAIT_MS" "$cpu_a"
		printf '  on this %d-CPU host) ran %d ms -> the VM had %s%d%%%s of CPU %d\n' \
			"$ncpu" "$VCPU1_MS" "$bold" "$SHARE" "$off" "$cpu_a"
	else
		printf '  %s: vCPU 0 ran %d ms and waited %d ms for host CPU %d -> %s%d%%%s of its CPU\n' \
			"$1" "$RUN_MS" "$WAIT_MS" "$cpu_a" "$bold" "$SHARE" "$off"
	fi
}
# stop: SIGTERM to the launcher and its exit status in $rc.
stop() {
	kill -TERM "$lpid"
	rc=0
	wait "$lpid" || rc=$?
	lpid=""
}

write_def "$isolate" tour
where="vCPU 0 -> CPU $cpu_a, vCPU 1 -> CPU $cpu_b."
[ -z "$emu" ] || where="$where qemu's other threads -> CPU $emu: on cgroup v2 the VM's partition
needs them apart from the vCPUs, the root keeps CPU 0 and the launcher's qemu cgroup CPU $((ncpu - 1))."
step "The definition ($work/vms/demo.yml)" \
	"A qemu command line as YAML, plus where each vCPU runs: $where"
cat "$work/vms/demo.yml"
if [ "$compare" = no ]; then
	echo
	echo "  cgroup v2 keeps other tasks off CPUs only with CPU partitions, and here they need 4 CPUs:"
	echo "  one the cgroup2 root keeps, one the launcher's qemu cgroup keeps, and the VM's vCPUs and"
	echo "  qemu's other threads apart from each other. This host has $ncpu, so the VM is pinned but not"
	echo "  isolated (isolate_cpus: auto), and the cpuset-vs-affinity comparison is left out."
fi

step "What would run (--dry-run)" \
	"The exact qemu command and pinning plan; nothing is started or changed."
"$QL" --dry-run demo

step "Booting the guest" \
	"qemu starts paused (-S), the launcher pins both vCPU threads, then lets the guest run; its console:"
t0=$SECONDS
boot "$isolate"
show_lines "guest: "
echo "  (booted and looping after $((SECONDS - t0)) s under TCG)"

view="vCPU threads alone on CPU $cpu_a/$cpu_b, qemu's other threads in the pool off them."
keeper="the launcher's cpusets keep"
if [ "$backend" = v2 ]; then
	keeper="the launcher's CPU partitions (cgroup v2) keep"
	if [ -n "$emu" ]; then
		view="vCPU threads alone on CPU $cpu_a/$cpu_b, qemu's other threads in the VM's emulator set on CPU $emu."
	else # the default emulator set: every CPU the vCPUs leave, CPU 0 on 2 or 3 CPUs
		view="vCPU threads pinned to CPU $cpu_a/$cpu_b (no partition keeps others off), qemu's other threads in the VM's emulator set on CPU 0."
	fi
fi
step "The host's view (qemu-launcher --status)" \
	"Read back from the kernel: $view"
"$QL" --status demo || true

if [ "$compare" = yes ]; then
	step "The point of pinning, live: cpusets" \
		"Busy loops started now on the host: $keeper them off CPU $cpu_a."
	pinning_live "cpuset  "
	share_cpuset=$SHARE
	others_cpuset=$OTHERS
	stop
	echo "  (stopped this VM: exit status $rc; now the same VM with isolate_cpus: false)"

	step "The same VM pinned by affinity only (isolate_cpus: false)" \
		"The vCPU thread is still bound to CPU $cpu_a, but nothing keeps other tasks away from it."
	boot false
	pinning_live "affinity"
	share_affinity=$SHARE
	who="vCPU 0"
	[ "$cpu_b" = "$cpu_a" ] && who="The VM's vCPUs"
	printf '\n  %s%s had host CPU %d %d%% of the time with cpusets, %d%% with affinity only.%s\n' \
		"$bold" "$who" "$cpu_a" "$share_cpuset" "$share_affinity" "$off"
	if [ -n "$demo_cpuset" ]; then
		echo "  (In its own cpuset subtree the demo moves only its own tasks: other threads of this host"
		echo "  still run on CPU $cpu_a in both runs; at the real cpuset root the launcher moves them too.)"
	fi
	if awk -v o="$others_cpuset" 'BEGIN { exit !(o >= 0.5) }'; then
		echo "  Note: this host is busy (load average $(cut -d' ' -f1 /proc/loadavg); $others_cpuset other threads"
		echo "  were runnable on CPU $cpu_a during the cpuset run): those numbers are theirs as much as ours."
	fi
else
	echo
	echo "  (no cpuset-vs-affinity comparison on this host: see above)"
fi

step "Graceful stop" \
	"SIGTERM -> the launcher sends system_powerdown -> the guest's acpid powers off -> qemu exits 0."
stop
show_lines "guest: ACPI"
show_lines "reboot: Power down"
echo "  qemu-launcher exited with status $rc"
[ -n "$qpid" ] && left_p=$(ps -o pid=,comm= -p "$qpid" || true)
echo "  qemu (pid $qpid) still running: ${left_p:-no}"
if [ -n "$demo_cpuset" ]; then
	left=$(find "$demo_cpuset" -mindepth 1 -type d)
	echo "  cpusets left in $demo_cpuset: ${left:-none}"
	echo $$ >"$v1/tasks"
	rmdir "$demo_cpuset" && echo "  removed the demo's own subtree $demo_cpuset"
	demo_cpuset=""
else
	left=$(find /sys/fs/cgroup/qemu/demo -type d 2>/dev/null || true)
	echo "  cgroups left under /sys/fs/cgroup/qemu/demo: ${left:-none}"
fi
echo
echo "Done in $SECONDS s."
exit "$rc"
