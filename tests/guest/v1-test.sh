#!/bin/busybox sh
# cpuset v1 tests on a real ROOT hierarchy, run by /init inside the TCG guest (6 CPUs, nothing
# mounted at /sys/fs/cgroup but an empty tmpfs). The real /qemu-launcher mounts the cpuset
# hierarchy itself at its default path, moves every task of the root cpuset into the pool and
# returns them; /fake-qemu stands in for qemu. Prints "V1TAP: ..." lines; the host numbers them.
M=/sys/fs/cgroup/cpuset
P=$M/qemu
PLAN=86

. /guest-lib.sh
# tcs/taff PID TID: a thread's cpuset path and Cpus_allowed_list; cs PID: the main thread's.
tcs() { cat "/proc/$1/task/$2/cpuset" 2>/dev/null; }
taff() { sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "/proc/$1/task/$2/status" 2>/dev/null; }
cs() { tcs "$1" "$1"; }
# PF_KTHREAD in /proc/PID/stat's flags (field 9; the comm may hold spaces, so cut after ") ").
is_kthread() {
	read -r l <"/proc/$1/stat" 2>/dev/null || return 1
	set -- ${l##*\) }
	[ $(($7 & 0x200000)) -ne 0 ]
}
# count_tasks FILE user|kernel
count_tasks() {
	c=0
	for p in $(cat "$1" 2>/dev/null); do
		if is_kthread "$p"; then k=kernel; else k=user; fi
		[ "$k" = "$2" ] && c=$((c + 1))
	done
	echo $c
}
# "policy rt_priority" of a thread: /proc/TID/stat fields 41 and 40 (no chrt in busybox).
sched_of() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $39, $38}'; }
mounted_cpuset() { awk -v m="$M" '$2 == m && $3 == "cgroup" && $4 ~ /(^|,)cpuset(,|$)/' /proc/mounts | grep -q .; }
sets() { [ -d "$P" ] && (cd "$P" && find . -mindepth 1 -type d | sed 's|^\./||' | sort | tr '\n' ' ' | sed 's/ $//'); }
# inspect PID...: "<sets below the root> <1 if PID is in the root's tasks>..." of the cpuset
# hierarchy, mounted at $M or not (the kernel keeps an unmounted hierarchy that has sets; the
# test mounts it at $T/cs to look).
inspect() {
	d=$M
	if ! mounted_cpuset; then
		d=$T/cs
		mkdir -p $d
		mount -t cgroup -o cpuset cpuset $d || return
	fi
	echo "$(find $d -mindepth 1 -type d | wc -l)" $(for p in "$@"; do grep -cx "$p" $d/tasks; done)
	[ $d = $M ] || umount $d
}
nfake() { pidof fake-qemu | wc -w; }

tap "PLAN $PLAN"
mkdir -p /etc/ql
export QEMU_LAUNCHER_CONFIG_DIR=/etc/ql
unset QEMU_LAUNCHER_CPUSET_MOUNT_PATH QEMU_LAUNCHER_CPUSET_PREFIX
if [ ! -x "$QL" ]; then
	skipn $PLAN "no static qemu-launcher in the guest"
	exit 0
fi
sleep 300 &
SL=$!

# --- 0. the starting point --------------------------------------------------------------------
eq "no cgroup hierarchy is mounted before the launcher runs" "" \
	"$(awk '$3 == "cgroup" || $3 == "cgroup2"' /proc/mounts)"
check "the default mount path $M does not exist yet" absent $M
eq "guest has 6 CPUs" 6 "$(nproc)"

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 1. one VM: the launcher mounts, moves every task, pins, undoes everything -----------------
def s "2, 3" 2 "  scheduler: fifo
  priority: 10"
"$QL" -n s >$T/s.plan 2>&1
check "--dry-run: the plan says the hierarchy gets mounted at $M, and changes nothing" \
	sh -c "grep -qxF '# cpuset v1 at $M (the cpuset hierarchy gets mounted there)' $T/s.plan && [ ! -e $M ]"
ql s
check "s: launcher started the guest" started s || dump_err s
S0=$(tid_named "$Q" "CPU 0/TCG")
S1=$(tid_named "$Q" "CPU 1/TCG")
check "s: the launcher mounted the cpuset v1 hierarchy at $M" mounted_cpuset
check "-d: traces mkdir and mount of $M" \
	sh -c "grep -qxF 'qemu-launcher: debug: mkdir $M' $T/s.err && grep -qx 'qemu-launcher: debug: mount -t cgroup -o cpuset [^ ]* $M' $T/s.err"
MV=$(sed -n "s|.*tasks of $M into $P/pool: moved \([0-9]*\) tasks, \([0-9]*\) kernel threads refused, [0-9]* vanished, \([0-9]*\) failed.*|\1 \2 \3|p" $T/s.err)
set -- ${MV:-none none none} # a missing line fails all three, not "0 failed"
diag "moved $1 tasks, $2 kernel threads refused, $3 failed"
check "-d: reports the tasks moved from the root into pool (> 0)" [ "$1" -gt 0 ]
check "-d: reports kernel threads that refused (> 0)" [ "$2" -gt 0 ]
eq "-d: no task failed to move" 0 "$3"
eq "init (pid 1), this shell and a sleeper are in the pool" "/qemu/pool /qemu/pool /qemu/pool" \
	"$(cs 1) $(cs $$) $(cs $SL)"
eq "the root cpuset keeps no user task" 0 "$(count_tasks $M/tasks user)"
check "the root cpuset still holds the kernel threads that refused" [ "$(count_tasks $M/tasks kernel)" -gt 0 ]
check "kernel threads that accept are in the pool" [ "$(count_tasks $P/pool/tasks kernel)" -gt 0 ]
eq "layout: pool, s, s/cpu2, s/cpu3" "pool s s/cpu2 s/cpu3" "$(sets)"
eq "pool runs on every CPU but the pinned 2,3" "0-1,4-5" "$(rd $P/pool/cpuset.cpus)"
eq "init and the sleeper may run on 0-1,4-5 only" "0-1,4-5 0-1,4-5" "$(aff 1) $(aff $SL)"
eq "s: vCPU 0 thread is in /qemu/s/cpu2 and may run on CPU 2 only" "/qemu/s/cpu2 2" \
	"$(tcs $Q $S0) $(taff $Q $S0)"
eq "s: vCPU 1 thread is in /qemu/s/cpu3 and may run on CPU 3 only" "/qemu/s/cpu3 3" \
	"$(tcs $Q $S1) $(taff $Q $S1)"
eq "s: cpu2 and cpu3 hold exactly their vCPU thread" "$S0 $S1" "$(rd $P/s/cpu2/tasks) $(rd $P/s/cpu3/tasks)"
eq "s: qemu's main thread stays in the pool" "/qemu/pool 0-1,4-5" "$(cs $Q) $(aff $Q)"
eq "s: vCPU threads run SCHED_FIFO (policy 1) priority 10" "1 10 1 10" "$(sched_of $S0) $(sched_of $S1)"
eq "s: qemu's main thread keeps SCHED_OTHER" "0 0" "$(sched_of $Q)"
nx_in_pool() {
	NX=$(tid_named "$Q" kvm-nx-lpage-re)
	[ -n "$NX" ] && [ "$(tcs $Q $NX)" = /qemu/pool ] && [ "$(rd $P/s/cpu2/tasks)" = "$S0" ]
}
check "s: a thread born in vCPU 0's set after cont is moved to the pool (rescan)" wait_for 10 nx_in_pool
SQ=$Q
stop $LP
eq "s: SIGTERM -> launcher exits 0" 0 $?
check "s: qemu is gone" gone "$SQ"
check "-d: traces the unmount and the removal of $M" \
	sh -c "grep -qF 'debug: umount $M' $T/s.err && grep -qF 'debug: rmdir $M' $T/s.err"
unmounted() { ! awk -v m="$M" '$2 == m' /proc/mounts | grep -q . && [ ! -e $M ]; }
check "after the last VM the hierarchy is unmounted and $M removed" unmounted
eq "init, this shell and the sleeper are back in the root cpuset" "/ / /" "$(cs 1) $(cs $$) $(cs $SL)"
eq "... and may run on every CPU again" "0-5 0-5" "$(aff 1) $(aff $SL)"
eq "remounted by the test: no set is left in the hierarchy, pid 1 is in its root" "0 1" \
	"$(inspect 1)"

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 2. two VMs on disjoint CPUs, a third overlapping one refused ------------------------------
def a "2, 3" 2
def b "4, 5" 2
def c "3" 1
ql a
AL=$LP AQ=$Q
check "a: started" started a || dump_err a
A0=$(tid_named $AQ "CPU 0/TCG")
A1=$(tid_named $AQ "CPU 1/TCG")
ql b
BL=$LP BQ=$Q
check "b: started" started b || dump_err b
B0=$(tid_named $BQ "CPU 0/TCG")
B1=$(tid_named $BQ "CPU 1/TCG")
"$QL" -n b >$T/b.plan 2>&1
check "b: finds the hierarchy mounted (dry run: plain \"cpuset v1 at $M\"; -d: no mount)" \
	sh -c "grep -qxF '# cpuset v1 at $M' $T/b.plan && ! grep -qF 'debug: mount ' $T/b.err"
eq "a: vCPUs in cpu2/cpu3, on CPUs 2/3" "/qemu/a/cpu2 2 /qemu/a/cpu3 3" \
	"$(tcs $AQ $A0) $(taff $AQ $A0) $(tcs $AQ $A1) $(taff $AQ $A1)"
eq "b: vCPUs in cpu4/cpu5, on CPUs 4/5" "/qemu/b/cpu4 4 /qemu/b/cpu5 5" \
	"$(tcs $BQ $B0) $(taff $BQ $B0) $(tcs $BQ $B1) $(taff $BQ $B1)"
eq "both pinned at once: layout" "a a/cpu2 a/cpu3 b b/cpu4 b/cpu5 pool" "$(sets)"
eq "pool is 0-1 with both VMs" "0-1" "$(rd $P/pool/cpuset.cpus)"
eq "init, the sleeper and both qemu main threads run on 0-1" "0-1 0-1 0-1 0-1" \
	"$(aff 1) $(aff $SL) $(aff $AQ) $(aff $BQ)"
snap() {
	for f in a/cpuset.cpus a/cpu2/tasks a/cpu3/tasks b/cpuset.cpus b/cpu4/tasks b/cpu5/tasks; do
		printf '%s=%s ' $f "$(rd $P/$f)"
	done
	printf '%s ' "$(tcs $AQ $A0)" "$(taff $AQ $A0)" "$(tcs $AQ $A1)" "$(taff $AQ $A1)" \
		"$(tcs $BQ $B0)" "$(taff $BQ $B0)" "$(tcs $BQ $B1)" "$(taff $BQ $B1)" "$(ls /proc/$AQ/task /proc/$BQ/task | tr '\n' ,)"
}
BEFORE=$(snap)
timeout 20 "$QL" c >$T/c.out 2>$T/c.err </dev/null
eq "c (wants CPU 3): exit 125" 125 $?
check "c: the refusal names a" contains $T/c.err "host CPU 3 is pinned by running VM \`a\`" || dump_err c
check "c: no set of c is left" absent $P/c
nfake_is() { [ "$(nfake)" = "$1" ]; }
wait_for 5 nfake_is 2
eq "c: its qemu is gone (only a's and b's remain)" 2 "$(nfake)"
eq "c: a and b untouched (sets, tasks, threads, affinities)" "$BEFORE" "$(snap)"
eq "c: pool still 0-1" "0-1" "$(rd $P/pool/cpuset.cpus)"

stop $AL
eq "a: SIGTERM -> exit 0" 0 $?
check "a: its sets are gone" absent $P/a
check "the hierarchy stays mounted while b runs" mounted_cpuset
eq "a's CPUs 2,3 are back in the pool" "0-3" "$(rd $P/pool/cpuset.cpus)"
eq "b stays pinned" "/qemu/b/cpu4 4 /qemu/b/cpu5 5" \
	"$(tcs $BQ $B0) $(taff $BQ $B0) $(tcs $BQ $B1) $(taff $BQ $B1)"
eq "init and the sleeper stay in the pool, now on 0-3" "/qemu/pool 0-3 /qemu/pool 0-3" \
	"$(cs 1) $(aff 1) $(cs $SL) $(aff $SL)"
stop $BL
eq "b: SIGTERM -> exit 0" 0 $?
check "b: everything of ours is removed" absent $P
eq "init, this shell and the sleeper are back in the root cpuset, on every CPU" "/ / / 0-5 0-5" \
	"$(cs 1) $(cs $$) $(cs $SL) $(aff 1) $(aff $SL)"
eq "the hierarchy (mounted or not) has no set left; pid 1, this shell, the sleeper in its root" \
	"0 1 1 1" "$(inspect 1 $$ $SL)"

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 3. a SIGKILLed launcher: qemu follows, its guardian gives everything back --------------
def k "2" 1
def k2 "2" 1
ql k
KL=$LP KQ=$Q
check "k: started" started k || dump_err k
kill -KILL $KL
wait $KL 2>/dev/null
wait_for 10 gone "$KQ"
check "k: launcher SIGKILLed -> qemu ended with it (PDEATHSIG)" gone "$KQ"
wait_for 5 absent $P
check "k: within 5 s its guardian removed every set (k was the last VM)" absent $P
eq "k: the guardian returned init to the root cpuset" "/" "$(cs 1)"
ql k2
K2L=$LP K2Q=$Q
check "k2 (same CPU 2): started" started k2 || dump_err k2
check "k2: found nothing left to reclaim" sh -c "! grep -q 'reclaiming the cpusets' $T/k2.err"
check "k2: k's sets are gone" absent $P/k
eq "k2: its vCPU got CPU 2" "/qemu/k2/cpu2 2" \
	"$(tcs $K2Q $(tid_named $K2Q "CPU 0/TCG")) $(taff $K2Q $(tid_named $K2Q "CPU 0/TCG"))"
stop $K2L
eq "k2: SIGTERM -> exit 0" 0 $?
check "k2: everything of ours is removed" absent $P
eq "after k2 every task is back in the root cpuset" "/ / 0-5" "$(cs 1) $(cs $SL) $(aff 1)"
eq "after k2: no set left in the hierarchy; pid 1 and the sleeper in its root" "0 1 1" \
	"$(inspect 1 $SL)"

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 4. a VM ends between another's prepare and its placement: the pool it gave back counts ------
# h has no thread names, so it is placed after its answer, which fake-qemu holds (FAKE_QEMU_HOLD)
def a "2" 1
cat >/etc/ql/h.yml <<EOT
launcher:
  binary: $FQ
  vcpu_pinning: [3]
  shutdown_timeout: 5
qemu:
- smp: 1
EOT
ql a
AL=$LP
check "a (CPU 2): started" started a || dump_err a
mkdir -p $T/hold
FAKE_QEMU_HOLD=$T/hold "$QL" -d h >$T/h.out 2>$T/h.err </dev/null &
HL=$!
# held by fake-qemu, and prepared: the launcher says so once qemu greeted, and its prepare runs
# beside qemu's start-up, so being held alone does not show it done
h_held() { [ -e $T/hold/at-build ] && grep -q "qemu greeted; the host is prepared" $T/h.err; }
wait_for 15 h_held
eq "h (CPU 3) prepared, its qemu held while building: the pool leaves out 2 and 3" "0-1,4-5" \
	"$(rd $P/pool/cpuset.cpus)"
stop $AL
eq "a ends meanwhile (SIGTERM -> exit 0), its CPU 2 back in the pool" "0 0-2,4-5" \
	"$? $(rd $P/pool/cpuset.cpus)"
touch $T/hold/go
wait_for 15 started h
check "h: placed and started all the same (before, its pool check failed: EIO)" started h ||
	dump_err h
HQ=$(sed -n 's/.*qemu running as pid \([0-9]*\).*/\1/p' $T/h.err | head -n1)
HT=$(tid_named "$HQ" "CPU 0/TCG")
eq "h: qemu in the pool on its CPUs now, the vCPU on CPU 3" "/qemu/pool 0-2,4-5 3" \
	"$(cs $HQ) $(aff $HQ) $(taff $HQ $HT)"
stop $HL
eq "h: SIGTERM -> exit 0, everything of ours removed" "0 absent" "$? $(absent $P && echo absent)"

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 5. two prefixes on the launcher's own mount: the last VM of one leaves the hierarchy mounted
# while the other's sets are in it (unmounted, the kernel keeps it detached, sets and all) ---------
def p1 "2" 1
def p2 "3" 1
ql p1
P1L=$LP
check "p1 (prefix qemu): started" started p1 || dump_err p1
export QEMU_LAUNCHER_CPUSET_PREFIX=other
ql p2
P2L=$LP
unset QEMU_LAUNCHER_CPUSET_PREFIX
check "p2 (prefix other): started" started p2 || dump_err p2
stop $P1L
eq "p1: SIGTERM -> exit 0" 0 $?
check "p1 was its prefix's last VM: the hierarchy stays mounted all the same, p2's sets in it" \
	sh -c "awk -v m=$M '\$2 == m' /proc/mounts | grep -q . && [ -d $M/other/p2 ]"
stop $P2L
eq "p2: SIGTERM -> exit 0" 0 $?
# (the mount point p1 made stays, empty: p2 cannot tell whether a launcher made it)
check "after the other prefix's last VM the hierarchy is unmounted" \
	sh -c "! awk -v m=$M '\$2 == m' /proc/mounts | grep -q ."
rmdir $M 2>/dev/null

diag "uptime $(cut -d" " -f1 /proc/uptime)"
# --- 6. another VM's emulator CPU: shared as an emulator CPU, refused to a vCPU (the pool would
# leave it while that VM's emulator set keeps it, beside the vCPU) ------------------------------
def e1 "2" 1 "  emulator_pinning: 4"
ql e1
E1L=$LP
check "e1 (vCPU on 2, emulator_pinning: 4): started" started e1 || dump_err e1
def e2 "4" 1
"$QL" e2 >$T/e2.out 2>$T/e2.err </dev/null
eq "e2 (vCPU on 4, e1's emulator CPU): refused, exit 125" 125 $?
check "... naming e1's emulator_pinning" grep -q "host CPU 4 is an emulator CPU of running VM \`e1\`" $T/e2.err
check "... no set of e2 is made" absent $P/e2
def e3 "5" 1 "  emulator_pinning: 4"
ql e3
E3L=$LP
check "e3 (vCPU on 5, emulator_pinning: 4, shared with e1): started" started e3 || dump_err e3
stop $E3L
eq "e3: SIGTERM -> exit 0" 0 $?
stop $E1L
eq "e1: SIGTERM -> exit 0, everything of ours removed" "0 absent" "$? $(absent $P && echo absent)"

kill $SL
mounted_cpuset && umount $M
diag "guest test done, uptime $(cut -d' ' -f1 /proc/uptime)"
