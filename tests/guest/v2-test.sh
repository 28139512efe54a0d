#!/bin/busybox sh
# cgroup v2 tests, run by /init inside the TCG guest (6 CPUs, a pure cgroup2 tree nobody else
# uses). Drives the backend through /v2drive and, when present, the real /qemu-launcher, with
# /fake-qemu standing in for qemu. Prints "V2TAP: ..." lines; the host turns them into TAP.
CG=/sys/fs/cgroup
DRV=/v2drive
PLAN=128

. /guest-lib.sh

# drv TAG ARGS...: v2drive in the background; output in $T/TAG.{out,err}, pid in $DP.
drv() {
	tag=$1
	shift
	fresh_logs "$tag"
	"$DRV" "$@" >"$T/$tag.out" 2>"$T/$tag.err" &
	DP=$!
}
ready() { grep -q '^READY' "$T/$1.out"; }
qpid() { sed -n 's/^READY //p' "$T/$1.out"; }

tap "PLAN $PLAN"
echo +cpuset >$CG/cgroup.subtree_control

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 1. placement without partitions (isolate_cpus auto, emulator on the leftover CPUs) -------
drv a -d a 3,4 -- $FQ -smp 2 -name guest=a
wait_for 15 ready a
check "driver a: placement applied (READY)" ready a
eq "backend chosen on a cgroup2 host is cgroup v2" "BACKEND cgroup v2" "$(head -n1 $T/a.out)"
A=$(qpid a)
V0=$(tid_named "$A" "CPU 0/TCG")
V1=$(tid_named "$A" "CPU 1/TCG")
RCU=$(tid_named "$A" call_rcu)
eq "prefix cgroup.type is domain" "domain" "$(rd $CG/qemu/cgroup.type)"
eq "VM cgroup.type is domain threaded" "domain threaded" "$(rd $CG/qemu/a/cgroup.type)"
eq "emulator, vcpu3, vcpu4 are threaded" "threaded threaded threaded" \
	"$(rd $CG/qemu/a/emulator/cgroup.type) $(rd $CG/qemu/a/vcpu3/cgroup.type) $(rd $CG/qemu/a/vcpu4/cgroup.type)"
eq "qemu's pid is the VM cgroup's only process" "$A" "$(rd $CG/qemu/a/cgroup.procs)"
eq "prefix holds no process" "" "$(rd $CG/qemu/cgroup.procs)"
eq "vcpu3 holds exactly vCPU 0's thread, vcpu4 vCPU 1's" "$V0 $V1" \
	"$(rd $CG/qemu/a/vcpu3/cgroup.threads) $(rd $CG/qemu/a/vcpu4/cgroup.threads)"
eq "vCPU 0 thread runs only on CPU 3" "3" "$(aff "$V0")"
eq "vCPU 1 thread runs only on CPU 4" "4" "$(aff "$V1")"
eq "main and call_rcu threads run on the leftover CPUs 0-2,5" "0-2,5 0-2,5" "$(aff "$A") $(aff "$RCU")"
check "non-vCPU threads are in emulator/cgroup.threads" \
	sh -c "grep -qx $A $CG/qemu/a/emulator/cgroup.threads && grep -qx $RCU $CG/qemu/a/emulator/cgroup.threads"
eq "auto without own emulator CPUs: vcpu3 stays a member partition" "member" \
	"$(rd $CG/qemu/a/vcpu3/cpuset.cpus.partition)"
eq "auto fallback is reported once" "1" "$(grep -c 'isolation unavailable' $T/a.err)"

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 2. conflict: a second VM wants CPU 4 -----------------------------------------------------
"$DRV" b 4 -- $FQ -smp 1 >$T/b.out 2>$T/b.err
eq "conflicting VM is refused (exit 125)" 125 $?
check "the refusal names the VM that owns the CPU" contains $T/b.err "running VM \`a\`"
check "the refused VM left no cgroup behind" absent $CG/qemu/b
check "the running VM is untouched by the refusal" test "$(aff "$V1")" = 4 -a -d $CG/qemu/a/vcpu4

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 3. release while qemu still runs ----------------------------------------------------------
stop "$DP"
eq "driver a released cleanly" 0 $?
check "release reported" contains $T/a.out RELEASED
eq "qemu was moved back to the cgroup it came from" "QEMU-CGROUP 0::/" "$(grep QEMU-CGROUP $T/a.out)"
check "the whole tree is gone after release (prefix removed)" absent $CG/qemu

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 4. isolate_cpus: true without emulator_pinning: one emulator CPU is taken so that partitions
# form (0 stays the root's, 5 the prefix's, 1 the emulator's, 2 the host's); with too few CPUs for
# that, refused with nothing left ---------------------------------------------------------------
drv t -d --mode true t 3,4 -- $FQ -smp 2
TD=$DP
wait_for 15 ready t
check "isolate true, vCPUs on 3,4, no emulator CPUs named: READY" ready t || dump_err t
TQ=$(qpid t)
eq "... prefix root, VM root, vcpu3 and vcpu4 isolated" "root root isolated isolated" \
	"$(rd $CG/qemu/cpuset.cpus.partition) $(rd $CG/qemu/t/cpuset.cpus.partition) $(rd $CG/qemu/t/vcpu3/cpuset.cpus.partition) $(rd $CG/qemu/t/vcpu4/cpuset.cpus.partition)"
eq "... vCPUs on 3 and 4, the emulator threads on CPU 1 alone" "3 4 1 1" \
	"$(aff "$(tid_named "$TQ" "CPU 0/TCG")") $(aff "$(tid_named "$TQ" "CPU 1/TCG")") $(aff "$TQ") $(rd $CG/qemu/t/emulator/cpuset.cpus)"
eq "... the host keeps CPUs 0 and 2 (5 is the prefix's spare)" "0,2 0,2" \
	"$(rd $CG/cpuset.cpus.effective) $(aff $$)"
check "... the choice is said (-d)" contains $T/t.err "emulator threads get CPU 1" || dump_err t
stop "$TD"
eq "... released" 0 $?
check "... nothing left, every CPU back" \
	sh -c "[ ! -e $CG/qemu ] && [ \"\$(cat $CG/cpuset.cpus.effective)\" = 0-5 ]"
"$DRV" --mode true t 1,2,3,4 -- $FQ -smp 4 >$T/t.out 2>$T/t.err
eq "isolate true, vCPUs on 1-4: no CPU left for the emulator besides the root's and the prefix's (125)" \
	125 $?
check "the message says what to change (emulator_pinning)" contains $T/t.err emulator_pinning
check "nothing left behind after the refused isolation" absent $CG/qemu

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 5. partitions: two isolated VMs, a third refused -------------------------------------------
drv p --mode true --emulator 2 p 3 -- $FQ -smp 1
PD=$DP
wait_for 15 ready p
check "partitioned VM p: READY" ready p || dump_err p
P=$(qpid p)
PV=$(tid_named "$P" "CPU 0/TCG")
eq "partitions: prefix root, VM root, vcpu3 isolated" "root root isolated" \
	"$(rd $CG/qemu/cpuset.cpus.partition) $(rd $CG/qemu/p/cpuset.cpus.partition) $(rd $CG/qemu/p/vcpu3/cpuset.cpus.partition)"
eq "p: vCPU on 3, emulator threads on 2" "3 2" "$(aff "$PV") $(aff "$P")"
eq "isolated CPUs 2,3 (and the prefix's spare 5) left the root's effective set" "0-1,4" \
	"$(rd $CG/cpuset.cpus.effective)"
eq "other tasks (this shell) can no longer run on the VM's CPUs" "0-1,4" "$(aff $$)"

drv q --mode true --emulator 1 q 4 -- $FQ -smp 1
QD=$DP
wait_for 15 ready q
check "second partitioned VM q: READY" ready q || dump_err q
Q=$(qpid q)
QV=$(tid_named "$Q" "CPU 0/TCG")
eq "q: vcpu4 isolated, VM root" "root isolated" \
	"$(rd $CG/qemu/q/cpuset.cpus.partition) $(rd $CG/qemu/q/vcpu4/cpuset.cpus.partition)"
eq "q: vCPU on 4, emulator on 1" "4 1" "$(aff "$QV") $(aff "$Q")"
eq "p still isolated after q joined" "isolated 3" \
	"$(rd $CG/qemu/p/vcpu3/cpuset.cpus.partition) $(aff "$PV")"

"$DRV" --mode true --emulator 0 r 3 -- $FQ -smp 1 >$T/r.out 2>$T/r.err
eq "third VM on p's CPU 3 is refused (125)" 125 $?
check "the refusal names p" contains $T/r.err "running VM \`p\`" || dump_err r

stop "$PD"
eq "p released" 0 $?
check "p's tree is gone" absent $CG/qemu/p
eq "q keeps its isolated partition after p left" "isolated 4" \
	"$(rd $CG/qemu/q/vcpu4/cpuset.cpus.partition) $(aff "$QV")"
eq "p's CPUs 2,3 are back in the root's effective set (q keeps 1, 4 and the spare 5)" "0,2-3" \
	"$(rd $CG/cpuset.cpus.effective)"
stop "$QD"
eq "q released" 0 $?
check "everything is gone after the last VM" absent $CG/qemu
eq "all CPUs are back for other tasks" "0-5 0-5" "$(rd $CG/cpuset.cpus.effective) $(aff $$)"

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 5c. a VM without emulator_pinning joins a partitioned prefix: the CPUs chosen for its
# emulator leave the prefix its spare and the root a CPU, so it gets partitions too (with every
# free CPU for its emulator it was refused: "it would take every CPU") ---------------------------
drv p --mode true --emulator 2 p 3 -- $FQ -smp 1
PD=$DP
wait_for 15 ready p
check "5c: partitioned VM p: READY" ready p || dump_err p
drv s s 4 -- $FQ -smp 1
SD=$DP
wait_for 15 ready s
check "5c: VM s, vCPU on 4 and no emulator_pinning, joins p's partitioned prefix: READY" ready s ||
	dump_err s
S=$(qpid s)
eq "5c: s gets partitions too, its emulator on CPU 1 (0 stays the root's, 5 the prefix's)" \
	"root isolated 4 1 0" \
	"$(rd $CG/qemu/s/cpuset.cpus.partition) $(rd $CG/qemu/s/vcpu4/cpuset.cpus.partition) $(aff "$(tid_named "$S" "CPU 0/TCG")") $(aff "$S") $(rd $CG/cpuset.cpus.effective)"
stop "$SD"
eq "5c: s released" 0 $?
stop "$PD"
eq "5c: p released, everything is gone" "0 absent" "$? $(absent $CG/qemu && echo absent)"

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 5b. auto, and the kernel refuses the partition (a sibling's CPUs overlap the prefix's):
# placement without it, and the prefix gets its parent's CPUs back, so a second VM on other CPUs
# fits in (it stayed narrowed to the first VM's CPUs and a spare: the second one's were not in it)
mkdir $CG/blk
echo 0-5 >$CG/blk/cpuset.cpus
drv f -d --emulator 2 f 3 -- $FQ -smp 1
FD=$DP
wait_for 15 ready f
check "auto, the kernel refusing the partition: f is placed all the same (READY)" ready f ||
	dump_err f
check "... and says isolation is unavailable" contains $T/f.err "isolation unavailable"
eq "... f's vcpu3 is a member, and the prefix has its parent's CPUs again" \
	"member $(rd $CG/cpuset.cpus.effective)" \
	"$(rd $CG/qemu/f/vcpu3/cpuset.cpus.partition) $(rd $CG/qemu/cpuset.cpus)"
drv g -d --emulator 0 g 1 -- $FQ -smp 1
GD=$DP
wait_for 15 ready g
check "a second VM on CPUs 0-1 meanwhile: READY" ready g || dump_err g
eq "g: its vCPU runs on CPU 1, f's on CPU 3" "1 3" \
	"$(aff "$(tid_named "$(qpid g)" "CPU 0/TCG")") $(aff "$(tid_named "$(qpid f)" "CPU 0/TCG")")"
stop "$GD"
eq "g released" 0 $?
stop "$FD"
eq "f released" 0 $?
check "everything is gone after both" absent $CG/qemu
rmdir $CG/blk

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 6. reclaim after the launcher was SIGKILLed -----------------------------------------------
drv k --mode true --emulator 2 k 3 -- $FQ -smp 1
KD=$DP
wait_for 15 ready k
K=$(qpid k)
kill -KILL "$KD"
wait "$KD" 2>/dev/null
wait_for 10 gone "$K"
check "killed driver: qemu died with it (PDEATHSIG)" gone "$K"
eq "a stale tree is left behind (no tasks, partition still set)" "populated 0 isolated" \
	"$(grep populated $CG/qemu/k/cgroup.events) $(rd $CG/qemu/k/vcpu3/cpuset.cpus.partition)"
drv k2 --mode true --emulator 2 k2 3 -- $FQ -smp 1
K2D=$DP
wait_for 15 ready k2
check "a new VM on the same CPU starts (stale tree reclaimed)" ready k2 || dump_err k2
check "the stale VM's cgroup is gone" absent $CG/qemu/k
eq "the new VM got CPU 3 as an isolated partition" "isolated 3" \
	"$(rd $CG/qemu/k2/vcpu3/cpuset.cpus.partition) $(aff "$(tid_named "$(qpid k2)" "CPU 0/TCG")")"
stop "$K2D"
check "after release nothing is left" absent $CG/qemu

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 6b. prepare, then an apply on other CPUs than prepared: refused, nothing left -------------
"$DRV" --mode true --emulator 2 --prepare 3 m 4 -- $FQ -smp 1 >$T/m.out 2>$T/m.err
eq "apply on CPU 4 after a prepare on CPU 3 fails (125)" 125 $?
check "the message says the placement differs from the prepared one" contains $T/m.err \
	"differs from the prepared one" || dump_err m
check "nothing left behind after the refused apply" absent $CG/qemu
"$DRV" --mode true --emulator 2 --prepare 3,4 m2 3,4 -- $FQ -smp 2 >$T/m2.out 2>$T/m2.err &
M2D=$!
wait_for 15 ready m2
eq "prepare then apply on the same CPUs through the backend: isolated, vCPUs on 3 and 4" \
	"isolated isolated 3 4" "$(rd $CG/qemu/m2/vcpu3/cpuset.cpus.partition) $(rd $CG/qemu/m2/vcpu4/cpuset.cpus.partition) $(aff "$(tid_named "$(qpid m2)" "CPU 0/TCG")") $(aff "$(tid_named "$(qpid m2)" "CPU 1/TCG")")" || dump_err m2
stop "$M2D"
check "... and released" absent $CG/qemu

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 7. delegated subtree (systemd Delegate=yes): placement without partitions ------------------
mkdir $CG/deleg
drv d --root $CG/deleg d 5 -- $FQ -smp 1
DD=$DP
wait_for 15 ready d
check "delegated root: READY" ready d || dump_err d
eq "delegated root: tree under the delegated dir, vCPU on 5" "domain threaded 5" \
	"$(rd $CG/deleg/qemu/d/cgroup.type) $(aff "$(tid_named "$(qpid d)" "CPU 0/TCG")")"
stop "$DD"
check "delegated root: our tree is gone, the delegated dir stays" \
	sh -c "[ ! -e $CG/deleg/qemu ] && [ -d $CG/deleg ]"
rmdir $CG/deleg

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 8. the real launcher with fake-qemu ---------------------------------------------------------
# lt_placed: the launcher's VM lt has both vCPU threads in their sets.
lt_placed() { [ -n "$(cat $CG/qemu/lt/vcpu3/cgroup.threads $CG/qemu/lt/vcpu4/cgroup.threads 2>/dev/null | sed -n 2p)" ]; }
no_fake() { [ -z "$(pidof fake-qemu)" ]; }
if [ -x "$QL" ]; then
	mkdir -p /etc/ql
	cat >/etc/ql/lt.yml <<EOT
launcher:
  binary: $FQ
  isolate_cpus: true
  emulator_pinning: 2
  vcpu_pinning: [3, 4]
  shutdown_timeout: 5
qemu:
- smp: 2
- name: guest=lt,debug-threads=on
- nodefaults
EOT
	cat >/etc/ql/lc.yml <<EOT
launcher:
  binary: $FQ
  vcpu_pinning: [4]
qemu:
- smp: 1
EOT
	cat >/etc/ql/lx.yml <<EOT
launcher:
  binary: $FQ
  isolate_cpus: true
  vcpu_pinning: [1, 2, 3, 4]
qemu:
- smp: 4
EOT
	export QEMU_LAUNCHER_CONFIG_DIR=/etc/ql
	"$QL" -v lt >$T/lt.out 2>$T/lt.err </dev/null &
	LP=$!
	wait_for 15 lt_placed
	LQ=$(cat $CG/qemu/lt/cgroup.procs 2>/dev/null)
	check "launcher: VM lt is placed" test -n "$LQ" || dump_err lt
	L0=$(tid_named "$LQ" "CPU 0/TCG")
	eq "launcher: vCPU threads on 3 and 4, emulator on 2" "3 4 2" \
		"$(aff "$L0") $(aff "$(tid_named "$LQ" "CPU 1/TCG")") $(aff "$LQ")"
	eq "launcher: isolate_cpus true gives isolated partitions" "root isolated isolated" \
		"$(rd $CG/qemu/lt/cpuset.cpus.partition) $(rd $CG/qemu/lt/vcpu3/cpuset.cpus.partition) $(rd $CG/qemu/lt/vcpu4/cpuset.cpus.partition)"
	# vCPU 0 starts a thread on its first run (like KVM's kvm-nx-lpage-re): the rescan moves it.
	nx_moved() {
		NX=$(tid_named "$LQ" kvm-nx-lpage-re)
		[ -n "$NX" ] && [ "$(aff "$NX")" = 2 ] && [ "$(rd $CG/qemu/lt/vcpu3/cgroup.threads)" = "$L0" ]
	}
	wait_for 10 nx_moved
	check "launcher: a thread born in vCPU 0's set after cont is moved to the emulator set" nx_moved
	timeout 20 "$QL" lc >$T/lc.out 2>$T/lc.err </dev/null
	eq "launcher: a VM wanting CPU 4 exits 125" 125 $?
	check "launcher: the refusal names lt" contains $T/lc.err "running VM \`lt\`" || dump_err lc
	kill -TERM "$LP"
	wait "$LP"
	eq "launcher: SIGTERM -> powerdown -> qemu's exit status 0" 0 $?
	check "launcher: nothing left after exit" absent $CG/qemu || dump_err lt

	timeout 20 "$QL" lx >$T/lx.out 2>$T/lx.err </dev/null
	eq "launcher: isolate_cpus true without CPUs for the emulator exits 125" 125 $?
	check "launcher: ... says to set emulator_pinning" contains $T/lx.err emulator_pinning || dump_err lx
	wait_for 5 no_fake
	check "launcher: ... and leaves no cgroup and no qemu behind" sh -c "[ ! -e $CG/qemu ] && [ -z \"\$(pidof fake-qemu)\" ]"

	"$QL" lt >$T/lt2.out 2>$T/lt2.err </dev/null &
	LP=$!
	wait_for 15 lt_placed
	LQ=$(cat $CG/qemu/lt/cgroup.procs 2>/dev/null)
	kill -KILL "$LP"
	wait "$LP" 2>/dev/null
	wait_for 10 no_fake
	wait_for 5 absent $CG/qemu
	check "launcher SIGKILLed: qemu follows (PDEATHSIG), its guardian removes the tree" \
		sh -c "[ -n '$LQ' ] && [ -z \"\$(pidof fake-qemu)\" ] && [ ! -e $CG/qemu ]"
	"$QL" lt >$T/lt3.out 2>$T/lt3.err </dev/null &
	LP=$!
	wait_for 15 lt_placed
	LQ=$(cat $CG/qemu/lt/cgroup.procs 2>/dev/null)
	eq "launcher: the next start isolates again" "isolated 3" \
		"$(rd $CG/qemu/lt/vcpu3/cpuset.cpus.partition) $(aff "$(tid_named "$LQ" "CPU 0/TCG")")"
	kill -TERM "$LP"
	wait "$LP"
	check "launcher: clean exit after the rerun" sh -c "[ $? = 0 ] && [ ! -e $CG/qemu ]" || dump_err lt3
else
	skipn 14 "no static qemu-launcher in the guest"
fi

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 8b. emulator_pinning without vcpu_pinning (what a libvirt import of an <emulatorpin> alone
# gives): <vm>/emulator and no vcpuN set, every thread of qemu in it on the emulator CPUs, no
# partition (no vCPU CPU to isolate), nothing left after the stop -------------------------------
# le_def [LAUNCHER-LINE]: /etc/ql/le.yml, two unpinned vCPUs, emulator_pinning 1-2.
le_def() {
	mkdir -p /etc/ql
	cat >/etc/ql/le.yml <<EOT
launcher:
  binary: $FQ
  emulator_pinning: 1-2
  shutdown_timeout: 5
${1:-}
qemu:
- smp: 2
- name: guest=le,debug-threads=on
EOT
}
# le_sets: the child cgroups of <vm>.
le_sets() { echo $(cd $CG/qemu/le 2>/dev/null && for d in */; do [ -d "$d" ] && echo "${d%/}"; done); }
# le_all_in: every thread of qemu ($Q) is in <vm>/emulator and none in <vm>, vCPU 0's thread born
# at cont (kvm-nx-lpage-re) among them.
le_all_in() {
	[ -n "$(tid_named "$Q" kvm-nx-lpage-re)" ] &&
		[ "$(ls /proc/$Q/task | sort -n | tr '\n' ' ')" = \
			"$(sort -n $CG/qemu/le/emulator/cgroup.threads 2>/dev/null | tr '\n' ' ')" ] &&
		[ -z "$(cat $CG/qemu/le/cgroup.threads 2>/dev/null)" ]
}
# le_affs: the distinct affinities of qemu's threads.
le_affs() { for t in /proc/$Q/task/*; do aff "${t##*/}"; done | sort -u | tr '\n' ' ' | sed 's/ $//'; }
# le_parts: the partition types of the prefix, <vm> and its emulator set.
le_parts() {
	echo "$(rd $CG/qemu/cpuset.cpus.partition) $(rd $CG/qemu/le/cpuset.cpus.partition) $(rd $CG/qemu/le/emulator/cpuset.cpus.partition)"
}
if [ -x "$QL" ]; then
	le_def
	check "emulator only: a definition with emulator_pinning and no vcpu_pinning starts" ql le ||
		dump_err le
	eq "emulator only: <vm> has the emulator set and no vcpuN" "emulator" "$(le_sets)"
	wait_for 10 le_all_in
	check "emulator only: every thread of qemu (vCPUs, main, the one born at cont) is in <vm>/emulator, none in <vm>" \
		le_all_in
	eq "emulator only: each thread of qemu runs on the emulator CPUs 1-2, the set's effective CPUs" \
		"1-2 1-2" "$(le_affs) $(rd $CG/qemu/le/emulator/cpuset.cpus.effective)"
	eq "emulator only, auto: no partition (no vCPU CPU to isolate), no isolation warning" \
		"member member member 0" "$(le_parts) $(grep -c 'isolation unavailable' $T/le.err)"
	kill -TERM "$LP"
	wait "$LP"
	rc=$?
	wait_for 5 no_fake
	eq "emulator only: SIGTERM -> exit 0, no cgroup and no qemu left" "0 absent" \
		"$rc $(absent $CG/qemu && echo absent)$(pidof fake-qemu)" || dump_err le

	le_def "  isolate_cpus: true"
	check "emulator only, isolate_cpus: true: starts all the same (qemu confined to 1-2)" ql le ||
		dump_err le
	wait_for 10 le_all_in
	eq "... no partition anywhere, every thread in <vm>/emulator on 1-2" \
		"member member member yes 1-2" \
		"$(le_parts) $(le_all_in && echo yes) $(le_affs)"
	kill -TERM "$LP"
	wait "$LP"
	rc=$?
	wait_for 5 no_fake
	eq "... SIGTERM -> exit 0, no cgroup and no qemu left" "0 absent" \
		"$rc $(absent $CG/qemu && echo absent)$(pidof fake-qemu)" || dump_err le
else
	skipn 9 "no static qemu-launcher in the guest"
fi

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 9. the launcher's two steps: prepare at qemu's greeting, the vCPU moves after its answers --
# fake-qemu holds its answer to qmp_capabilities, as qemu does while it builds its machine
# (FAKE_QEMU_HOLD, tests/guest/fake-qemu.c): in that window the sets, their CPUs and partitions
# exist and qemu waits in <vm> on the emulator CPU.
# held NAME: the stand-in of run NAME waits before its answer, and the launcher is past its
# prepare (it logs "qemu greeted" after it: the stand-in holds from its first read on).
held() { [ -e "$T/hold-$1/at-build" ] && grep -q "qemu greeted" "$T/$1.err"; }
# ql_held NAME: the launcher with -d on definition NAME in the background (pid LP), its stand-in
# holding; Q = qemu's pid.
ql_held() {
	rm -rf "$T/hold-$1"
	mkdir -p "$T/hold-$1"
	fresh_logs "$1"
	FAKE_QEMU_HOLD=$T/hold-$1 "$QL" -d "$1" >"$T/$1.out" 2>"$T/$1.err" </dev/null &
	LP=$!
	wait_for 15 held "$1"
	Q=$(sed -n 's/.*qemu running as pid \([0-9]*\).*/\1/p' "$T/$1.err" | head -n1)
}
# W: the VM's directory; one line per set: "<set> <cpuset.cpus> <partition> <threads>".
sets_of() {
	for s in "" emulator vcpu3 vcpu4; do
		echo "${s:-vm} $(rd $W/$s/cpuset.cpus) $(rd $W/$s/cpuset.cpus.partition) $(cat $W/$s/cgroup.threads 2>/dev/null | wc -l)"
	done | tr '\n' ';'
}
if [ -x "$QL" ]; then
	# without thread names the vCPUs wait for the answer: the window shows the prepare alone
	sed -i 's/^- name: guest=lt,debug-threads=on$/- name: guest=lt/' /etc/ql/lt.yml
	W=$CG/qemu/lt
	ql_held lt
	check "window: the stand-in holds its answers (it builds its machine)" held lt || dump_err lt
	WQ0=$(tid_named "$Q" "CPU 0/TCG")
	NT=$(ls /proc/$Q/task | wc -l)
	eq "window: prefix root; <vm> 2-4 root with all $NT threads of qemu; emulator 2; vcpu3, vcpu4 isolated and empty" \
		"vm 2-4 root $NT;emulator 2 member 0;vcpu3 3 isolated 0;vcpu4 4 isolated 0;root" \
		"$(sets_of)$(rd $CG/qemu/cpuset.cpus.partition)"
	eq "window: <vm> is domain threaded, its sets threaded" "domain threaded threaded threaded threaded" \
		"$(rd $W/cgroup.type) $(rd $W/emulator/cgroup.type) $(rd $W/vcpu3/cgroup.type) $(rd $W/vcpu4/cgroup.type)"
	eq "window: qemu's process is in <vm>" "$Q" "$(rd $W/cgroup.procs)"
	eq "window: qemu's main and vCPU threads run on the emulator CPU only" "2 2" "$(aff "$Q") $(aff "$WQ0")"
	check "window: the guest has not been started" sh -c "! grep -q 'guest started' $T/lt.err"
	BEFORE=$(sets_of)
	timeout 20 "$QL" lc >$T/lc2.out 2>$T/lc2.err </dev/null
	eq "window: a VM wanting CPU 4 meanwhile is refused (125)" 125 $?
	check "... naming lt" contains $T/lc2.err "running VM \`lt\`" || dump_err lc2
	eq "... and lt's sets are untouched" "$BEFORE" "$(sets_of)"
	touch "$T/hold-lt/go"
	wait_for 15 started lt
	check "after the answers: the guest started" started lt || dump_err lt
	# vCPU 0's thread born at cont (kvm-nx-lpage-re) reaches the emulator set by the rescan
	PLACED="vm 2-4 root 0;emulator 2 member $((NT - 1));vcpu3 3 isolated 1;vcpu4 4 isolated 1;"
	settled() { [ "$(sets_of)" = "$PLACED" ]; }
	wait_for 10 settled
	eq "placed: vcpu3 and vcpu4 hold one vCPU thread each, the emulator set the others, <vm> none" \
		"$PLACED" "$(sets_of)"
	eq "placed: vCPU threads on 3 and 4, qemu's main thread on 2" "3 4 2" \
		"$(aff "$WQ0") $(aff "$(tid_named "$Q" "CPU 1/TCG")") $(aff "$Q")"
	kill -TERM "$LP"
	wait "$LP"
	eq "placed: SIGTERM -> exit 0, nothing left" "0 absent" "$? $(absent $CG/qemu && echo absent)"

	# Release after a prepare alone: qemu dies in the window ...
	ql_held lt
	check "qemu dies in the window: it was held" held lt
	touch "$T/hold-lt/die"
	wait "$LP"
	eq "... the launcher exits with qemu's status 1" 1 $?
	check "... and leaves no cgroup and no qemu behind" sh -c "[ ! -e $CG/qemu ] && [ -z \"\$(pidof fake-qemu)\" ]" || dump_err lt
	check "... the window's sets had been made" grep -q "write $CG/qemu/lt/vcpu3/cpuset.cpus.partition <- isolated" $T/lt.err
	# ... or the launcher is told to stop there.
	ql_held lt
	check "SIGTERM in the window: it was held" held lt
	kill -TERM "$LP"
	wait "$LP"
	eq "... the launcher exits with qemu's status 0" 0 $?
	check "... and leaves no cgroup and no qemu behind" sh -c "[ ! -e $CG/qemu ] && [ -z \"\$(pidof fake-qemu)\" ]" || dump_err lt
	check "... it said it did not start the guest" contains $T/lt.err "not starting the guest"
	# ... or the launcher is SIGKILLed there: qemu follows, the guardian reclaims the sets.
	ql_held lt
	WIN="$(held lt && echo held) $(rd $CG/qemu/lt/vcpu3/cpuset.cpus.partition)"
	kill -KILL "$LP"
	wait "$LP" 2>/dev/null
	wait_for 10 no_fake
	wait_for 5 absent $CG/qemu
	# held with its tree prepared when killed: else "no tree" proves nothing
	check "SIGKILL in the window: qemu follows, the guardian removes the prepared tree" \
		sh -c "[ '$WIN' = 'held isolated' ] && [ -n '$Q' ] && [ -z \"\$(pidof fake-qemu)\" ] && [ ! -e $CG/qemu ]"
	# With thread names the vCPUs are placed in the window already (pinning_apply_early), cont
	# follows qmp_capabilities' answer, and the answer to query-cpus-fast after it confirms them.
	sed -i 's/^- name: guest=lt$/- name: guest=lt,debug-threads=on/' /etc/ql/lt.yml
	ql_held lt
	EARLY="vm 2-4 root 0;emulator 2 member $((NT - 2));vcpu3 3 isolated 1;vcpu4 4 isolated 1;"
	early_placed() { [ "$(sets_of)" = "$EARLY" ]; }
	wait_for 10 early_placed
	eq "named threads: in the window vcpu3 and vcpu4 hold a vCPU thread each already" \
		"$EARLY" "$(sets_of)"
	check "named threads: the guest has not been started" sh -c "! grep -q 'guest started' $T/lt.err"
	touch "$T/hold-lt/go"
	wait_for 15 started lt
	check "named threads: cont came before any query-cpus-fast, whose answer after it listed the threads placed by their names" \
		sh -c "grep -q 'query-cpus-fast lists the threads placed by their names' $T/lt.err && grep -q 'guest started' $T/lt.err && ! grep -q 'asking qemu before cont' $T/lt.err" || dump_err lt
	kill -TERM "$LP"
	wait "$LP"
	eq "named threads: SIGTERM -> exit 0, nothing left" "0 absent" "$? $(absent $CG/qemu && echo absent)"
else
	skipn 26 "no static qemu-launcher in the guest"
fi

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 10. a cpuset v1 mount path on a host whose cgroup2 holds the cpuset controller: mounting v1
# there would fail, so the v1 backend refuses before touching anything and says why ----------
if [ -x "$QL" ]; then
	mkdir -p /tmp/not-a-cpuset
	QEMU_LAUNCHER_CPUSET_MOUNT_PATH=/tmp/not-a-cpuset QEMU_LAUNCHER_CGROUP2_ROOT=/tmp/not-a-cpuset \
		"$QL" --dry-run lt >$T/v1m.out 2>$T/v1m.err </dev/null
	check "cpuset v1 where cgroup2 has cpuset: refused, naming the reason" contains $T/v1m.err \
		"cpuset v1: the cpuset controller is bound to cgroup v2; it cannot be mounted as cpuset v1 at \`/tmp/not-a-cpuset\`" ||
		dump_err v1m
	check "... nothing mounted or created there" sh -c \
		"! grep -q ' /tmp/not-a-cpuset ' /proc/self/mountinfo && [ -z \"\$(ls -A /tmp/not-a-cpuset)\" ]"
else
	skipn 2 "no static qemu-launcher in the guest"
fi

tap "# guest test done, uptime $(cut -d' ' -f1 /proc/uptime)"
