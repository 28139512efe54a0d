#!/bin/bash
# Locked memory sized and preallocation placed, against the real kernel and real qemu (TCG):
# `rlimit_memlock: auto` (guest RAM + 1 GiB) in --dry-run and applied, --check's warning for a
# definition that locks memory without the limit, and a prealloc=on backend in a pinned VM whose
# preallocation threads run on the emulator CPUs through the thread-context qemu-launcher adds; a
# backend bound to host node 0 gets a context of its own on that node's emulator CPUs, which real
# qemu takes.
. "$(dirname "$0")/lib.sh"
NTESTS=17
plan $NTESTS

GIB=$((1 << 30))
MIB=$((1 << 20))
NCPU=$(nproc --all)
# No cpuset backend: the launcher pins with sched_setaffinity and moves no host task.
NOCG=$SCRATCH/not-a-cpuset
mkdir -p "$NOCG/x"
export QEMU_LAUNCHER_CPUSET_MOUNT_PATH=$NOCG

mem_def() { # mem_def NAME LAUNCHER_LINES QEMU_LINES
	{
		printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\n%s\nqemu:\n' "$QEMU" "$2"
		guest_opts idle | sed '/^- m: 16/d'
		printf '%s\n' "$3"
	} | def "$1"
}

# 1: -m alone: guest RAM is -m
mem_def plain '  rlimit_memlock: auto' '- m: 64'
out=$("$QL" --dry-run plain)
check "--dry-run shows auto as -m + 1 GiB" \
	grep -qx "# rlimit_memlock: auto: RLIMIT_MEMLOCK $((64 * MIB + GIB)) bytes (guest RAM $((64 * MIB)) + 1 GiB for qemu and VFIO)" <<<"$out"

# 2: NUMA nodes made of backends: -m is not counted twice; an extra backend (a DIMM) is
mem_def numa '  rlimit_memlock: auto' '- m: [ 64M, slots: 2, maxmem: 1G ]
- object: [ memory-backend-ram, id: m0, size: 32M ]
- object: [ memory-backend-ram, id: m1, size: 32M ]
- numa: [ node, nodeid: 0, memdev: m0 ]
- numa: [ node, nodeid: 1, memdev: m1 ]
- object: [ memory-backend-ram, id: dimm0, size: 128M ]'
out=$("$QL" --dry-run numa)
check "--dry-run: backends of -numa memdev= replace -m, other backends add to it" \
	grep -q "RLIMIT_MEMLOCK $((192 * MIB + GIB)) bytes (guest RAM $((192 * MIB))" <<<"$out"

# 3-6: --check and locked memory. Raising the hard limit needs CAP_SYS_RESOURCE.
HARD=$(ulimit -H -l)
CANNOT_RAISE=0
if [ "$HARD" != unlimited ] && [ $((HARD * 1024)) -lt $((16 * MIB + GIB)) ] &&
	(( ((0x$(awk '/^CapEff:/ {print $2}' /proc/self/status) >> 24) & 1) == 0 )); then
	CANNOT_RAISE=1
fi
mem_def lock '' '- m: 64
- overcommit: mem-lock=on'
# (any process may lower its own soft limit: the test makes the limit it warns about itself)
SOFT=64
err=$( (ulimit -S -l "$SOFT" && "$QL" --check lock) 2>&1 >/dev/null)
check "--check warns on mem-lock=on without rlimit_memlock under the current limit" \
	grep -q "mem-lock=on locks memory but the current RLIMIT_MEMLOCK (no rlimit_memlock) is $((SOFT * 1024)) bytes, below the $((64 * MIB + GIB))" <<<"$err"
mem_def vfio '  rlimit_memlock: 512M' '- m: 64
- device: [ vfio-pci, host: "0000:00:00.0" ]'
# a fake sysfs in which that device's IOMMU group is viable (this host has no IOMMU, and the
# VFIO check runs first)
VF=$SCRATCH/vfio-sysfs
mkdir -p "$VF/sys/bus/pci/devices/0000:00:00.0" "$VF/sys/kernel/iommu_groups/1/devices/0000:00:00.0"
ln -s ../../../../kernel/iommu_groups/1 "$VF/sys/bus/pci/devices/0000:00:00.0/iommu_group"
ln -s ../../../bus/pci/drivers/vfio-pci "$VF/sys/bus/pci/devices/0000:00:00.0/driver"
err=$(QEMU_LAUNCHER_SYSFS_ROOT=$VF "$QL" --check vfio 2>&1 >/dev/null)
check "--check warns on vfio-pci with a too small rlimit_memlock" \
	grep -q "vfio-pci locks memory but rlimit_memlock is $((512 * MIB)) bytes" <<<"$err"
mem_def lockauto '  rlimit_memlock: auto' '- m: 64
- overcommit: mem-lock=on'
err=$("$QL" --check lockauto 2>&1 >/dev/null)
if [ "$CANNOT_RAISE" = 1 ]; then
	check "with rlimit_memlock: auto above the hard limit and no CAP_SYS_RESOURCE, --check says a start would fail" \
		grep -q "rlimit_memlock asks for $((64 * MIB + GIB)) bytes, above the hard limit of $((HARD * 1024)) bytes, and this launcher lacks CAP_SYS_RESOURCE" <<<"$err"
else
	expect_eq "no warning with rlimit_memlock: auto" "" "$err"
fi
mem_def nolock '' '- m: 64'
err=$("$QL" --check nolock 2>&1 >/dev/null)
expect_eq "no warning for a definition that locks nothing" "" "$err"

# 7: auto applied. Raising the hard limit needs CAP_SYS_RESOURCE: refused, or seen in qemu.
mem_def run '  rlimit_memlock: auto' '- m: 16
- S'
if [ "$CANNOT_RAISE" = 1 ]; then
	timeout 30 "$QL" run >/dev/null 2>"$SCRATCH/run.err"
	rc=$?
	if [ $rc = 125 ] && grep -q "setting RLIMIT_MEMLOCK (rlimit_memlock) failed: Operation not permitted" "$SCRATCH/run.err"; then
		ok "above the hard limit without CAP_SYS_RESOURCE: exit 125 naming the step"
	else
		not_ok "refusal above the hard limit"
		diag "exit $rc" "$(cat "$SCRATCH/run.err")"
	fi
else
	# -v: "QMP connected" is an INFO line (and "guest left paused" comes only for a pinned VM):
	# then qemu has long exec'd with its limits set
	ql_start run -v
	wait_until 20 grep -q "QMP connected" "$LERR"
	Q=$(sed -n 's/.*qemu running as pid \([0-9]*\).*/\1/p' "$LERR" | head -n1)
	lim=$(awk '/^Max locked memory/ {print $4}' "/proc/$Q/limits" 2>/dev/null)
	expect_eq "qemu runs with RLIMIT_MEMLOCK guest RAM + 1 GiB" "$((16 * MIB + GIB))" "$lim"
	kill "$(launcher_of "$LPID")"
fi

# 8-14: preallocation threads on the emulator CPUs
if [ "$NCPU" -lt 2 ]; then
	skip_all "needs 2 host CPUs (one for the vCPU, one for the emulator)"
fi
EMU=0
VCPU=$((NCPU - 1))
PRE='- object: [ memory-backend-ram, id: ram0, size: 1G, prealloc: on, prealloc-threads: 2 ]'
pre_def() { # pre_def NAME LAUNCHER_LINES [BINARY]
	mem_def "$1" "  vcpu_pinning: [ $VCPU ]
  emulator_pinning: $EMU
$2" "- m: 1G
$PRE
- name: [ $1, debug-threads: on ]
- S" 
	[ -z "${3:-}" ] || sed -i "s|^  binary: .*|  binary: $3|" "$CONF/$1.yml"
}
sed_machine() { sed -i 's/^- machine: .*/- machine: [ pc, accel: tcg, memory-backend: ram0 ]/' "$CONF/$1.yml"; }
pre_def pre ''
sed_machine pre
out=$("$QL" --dry-run pre 2>/dev/null)
first=$(head -n1 <<<"$out")
if grep -qx "# qemu-launcher adds for the preallocation threads: -object thread-context,id=qemu-launcher-prealloc,cpu-affinity=$EMU" <<<"$out" &&
	grep -qx '# qemu-launcher adds prealloc-context=qemu-launcher-prealloc to memory backend `ram0`' <<<"$out" &&
	! grep -q prealloc-context <<<"$first"; then
	ok "--dry-run says what it adds (thread-context on the emulator CPUs, prealloc-context); the pasteable line stays the definition's"
else
	not_ok "--dry-run for a prealloc backend"
	diag "$out"
fi

# Samples qemu's threads while it preallocates: "tid comm affinity" lines, until -S is reached
# (a thread that ends between the reads leaves a short line, not counted).
ql_start pre -d
# qemu itself, not the `qemu -object help` the launcher asks first
qemu_up() { L=$(launcher_of "$LPID") && [ -n "$L" ] && Q=$(pgrep -P "$L" -f debug-threads | head -n1) && [ -n "$Q" ]; }
L="" Q=""
wait_until 20 qemu_up
: >"$SCRATCH/threads"
for _ in $(seq 1 1500); do
	[ -d "/proc/$Q" ] || break
	for t in /proc/"$Q"/task/*; do
		printf '%s %s %s\n' "${t##*/}" "$(cat "$t/comm" 2>/dev/null)" \
			"$(awk '/^Cpus_allowed_list:/ {print $2}' "$t/status" 2>/dev/null)"
	done >>"$SCRATCH/threads"
	grep -q "guest left paused" "$LERR" && break
done
tr '\0' ' ' <"/proc/$Q/cmdline" >"$SCRATCH/cmdline" 2>/dev/null
if grep -q -- "-object thread-context,id=qemu-launcher-prealloc,cpu-affinity=$EMU" "$SCRATCH/cmdline" &&
	grep -q "memory-backend-ram,id=ram0,size=1G,prealloc=on,prealloc-threads=2,prealloc-context=qemu-launcher-prealloc" "$SCRATCH/cmdline"; then
	ok "qemu got the thread-context object and the backend's prealloc-context"
else
	not_ok "qemu's command line"
	diag "$(cat "$SCRATCH/cmdline")"
fi
if wait_until 20 grep -q "guest left paused" "$LERR"; then
	ok "qemu accepted them and reached prelaunch"
else
	not_ok "qemu accepted them"
	diag "$(cat "$LERR")"
fi
seen=$(awk '$2 == "touch_pages" && NF == 3 {print $3}' "$SCRATCH/threads" | sort -u)
if [ -z "$seen" ]; then
	skip "no preallocation thread was caught running (1 GiB preallocated too fast to sample)"
else
	expect_eq "every preallocation thread seen ran on the emulator CPUs only" "$EMU" "$seen"
fi
kill "$L" 2>/dev/null
wait_until 10 pid_gone "$L"

# 12: no pinning: nothing added, nor with a scheduler alone (the context would cover every CPU)
mem_def nopin '' "- m: 1G
$PRE"
sed_machine nopin
mem_def schedonly '  scheduler: batch' "- m: 1G
$PRE"
sed_machine schedonly
out=$("$QL" --dry-run nopin; "$QL" --dry-run schedonly)
if grep -q "thread-context\|prealloc-context" <<<"$out" || ! grep -q "scheduler batch" <<<"$out"; then
	not_ok "no pinning, nothing added"
	diag "$out"
else
	ok "without pinning nothing is added, nor with a scheduler alone"
fi

# 13: the user's own prealloc-context is kept
pre_def own ''
sed_machine own
sed -i 's/prealloc-threads: 2 ]/prealloc-threads: 2, prealloc-context: mine ]/' "$CONF/own.yml"
out=$("$QL" --dry-run own 2>/dev/null)
check "a backend's own prealloc-context is kept and said" \
	grep -qx '# prealloc: backend `ram0` names its own prealloc-context: kept' <<<"$out"

# 14: one preallocation thread: qemu may populate in its main thread; --dry-run says so
pre_def one ''
sed_machine one
sed -i 's/, prealloc-threads: 2 ]/ ]/' "$CONF/one.yml"
out=$("$QL" --dry-run one 2>/dev/null)
check "a backend with one preallocation thread is noted" \
	grep -qx '# prealloc: backend `ram0` has one preallocation thread: qemu may populate it in its main thread, not in the context (prealloc-threads=2 or more)' <<<"$out"

# 15: a qemu without thread-context (QEMU < 7.2): a note, nothing added
OLD=$SCRATCH/old-qemu
printf '#!/bin/sh\necho "List of user creatable objects:"\necho "  iothread"\necho "  memory-backend-ram"\n' >"$OLD"
chmod 755 "$OLD"
pre_def old '' "$OLD"
sed_machine old
out=$("$QL" --dry-run old 2>/dev/null)
if grep -q "prealloc: $OLD does not list thread-context (QEMU < 7.2?)" <<<"$out" && ! grep -q "thread-context,id" <<<"$out"; then
	ok "a qemu without thread-context: a note in --dry-run, nothing added"
else
	not_ok "old qemu"
	diag "$out"
fi

# 16-17: a backend bound to host node 0: its own context on the emulator CPUs of node 0, which
# real qemu accepts (this host's node 0 holds the emulator CPU)
N0CPUS=$(cat /sys/devices/system/node/node0/cpulist 2>/dev/null)
pre_def node ''
sed_machine node
sed -i 's/prealloc-threads: 2 ]/prealloc-threads: 2, host-nodes: 0, policy: bind ]/; s/size: 1G,/size: 64M,/; s/^- m: 1G/- m: 64M/' "$CONF/node.yml"
if [ -z "$N0CPUS" ]; then
	skip "no NUMA node 0 CPU list on this host"
	skip "no NUMA node 0 CPU list on this host"
else
	out=$("$QL" --dry-run node 2>&1)
	if grep -qx "# qemu-launcher adds for the preallocation threads: -object thread-context,id=qemu-launcher-prealloc-node0,cpu-affinity=$EMU" <<<"$out" &&
		grep -qx '# qemu-launcher adds prealloc-context=qemu-launcher-prealloc-node0 to memory backend `ram0`' <<<"$out"; then
		ok "--dry-run: a backend bound to node 0 gets a context on node 0's emulator CPUs ($EMU of $N0CPUS)"
	else
		not_ok "--dry-run for a node-bound backend"
		diag "$out"
	fi
	ql_start node -v
	if wait_until 30 grep -q "guest left paused" "$LERR"; then
		ok "qemu accepted the node's thread-context and the backend bound to node 0"
	else
		not_ok "qemu with the node-0 context"
		diag "$(cat "$LERR")"
	fi
	kill "$(launcher_of "$LPID")" 2>/dev/null
	wait "$LPID" 2>/dev/null
fi
