#!/bin/busybox sh
# Inside the TCG guest of bench/isolation-guest.sh (the guest kernel is the whole host here: its
# own IRQs, kernel threads and tasks): a spinning 1-vCPU stand-in (/fake-qemu, FAKE_QEMU_SPIN=1)
# pinned to CPU $VCPU by the real launcher, the guest loaded (a busy loop per CPU, NVMe writes
# with fsync, a 1 ms timer loop), measured per configuration over $WINDOW seconds: device IRQs on
# the vCPU CPU (/proc/interrupts deltas), which other tasks ran there (sched_switch through
# tracefs), the vCPU thread's involuntary switches. Counts only: TCG time says nothing about a
# real host's latencies. One "ROW" line per configuration and round on the console.
. /guest-lib.sh
VCPU=3
WINDOW=${WINDOW:-5}
ROUNDS=${ROUNDS:-2}
export QEMU_LAUNCHER_CONFIG_DIR=/etc/ql FAKE_QEMU_SPIN=1
say() { echo "$TAP_PREFIX: $*"; }

# qemu's other threads on CPU 2 in every row (partitions need the root and the launcher's
# prefix to keep a CPU each)
def affinity $VCPU 1 "  emulator_pinning: 2
  isolate_cpus: false"
def affinity_hk $VCPU 1 "  emulator_pinning: 2
  isolate_cpus: false
  housekeeping: true"
def cpuset $VCPU 1 "  emulator_pinning: 2
  isolate_cpus: true"
def cpuset_hk $VCPU 1 "  emulator_pinning: 2
  isolate_cpus: true
  housekeeping: true"

# --- the load ------------------------------------------------------------------------------------
LOAD=""
for c in $(seq 0 $(($(nproc) - 1))); do
	sh -c 'while :; do :; done' &
	LOAD="$LOAD $!"
done
DISK=$(ls /dev/nvme0n1 2>/dev/null)
for i in 1 2; do
	[ -n "$DISK" ] || break
	sh -c "while :; do dd if=/dev/zero of=$DISK bs=4k count=16 seek=$((i * 64)) conv=fsync 2>/dev/null; done" &
	LOAD="$LOAD $!"
done
sh -c 'while :; do usleep 1000; done' &
LOAD="$LOAD $!"
# A movable device IRQ that lands on the vCPU CPU, as irqbalance may place one: the serial port's,
# kept busy. Housekeeping's journal gives the 3 back after each VM, so every row starts alike.
TTY_IRQ=$(awk '$NF == "ttyS0" { sub(":", "", $1); print $1 }' /proc/interrupts)
[ -n "$TTY_IRQ" ] && echo $VCPU >/proc/irq/$TTY_IRQ/smp_affinity_list
sh -c 'while :; do echo ................ >/dev/ttyS0; usleep 20000; done' &
LOAD="$LOAD $!"
say "# load: $(nproc) busy loops, NVMe writes: ${DISK:-none}, a 1 ms timer loop, serial writes every 20 ms (ttyS0: IRQ ${TTY_IRQ:-?} on CPU $(cat /proc/irq/$TTY_IRQ/smp_affinity_list 2>/dev/null)) (pids$LOAD)"

TR=/sys/kernel/tracing
mount -t tracefs tracefs $TR 2>/dev/null
[ -w $TR/tracing_on ] && [ -e $TR/events/sched/sched_switch/enable ] && TRACE=1 || TRACE=0
say "# sched_switch tracing: $([ $TRACE = 1 ] && echo tracefs || echo 'absent: /proc/PID/stat fallback')"
MASK=$(printf '%x' $((1 << VCPU)))

# irq_col FILE: "N COUNT NAME" of every numbered IRQ's count on CPU $VCPU.
irq_col() {
	awk -v c=$((VCPU + 2)) '$1 ~ /^[0-9]+:$/ { sub(":", "", $1); print $1, $c, $NF }' "$1"
}
# tasks_fallback: "PID COMM" of every task whose last CPU (stat field 39) is $VCPU.
tasks_fallback() {
	for st in /proc/[0-9]*/task/[0-9]*/stat; do
		l=$(cat "$st" 2>/dev/null) || continue
		comm=${l#*(}
		comm=${comm%)*}
		set -- ${l##*) }
		[ "${37}" = "$VCPU" ] && echo "$comm"
	done
}

measure() {
	conf=$1
	round=$2
	"$QL" -d $conf >$T/$conf.out 2>$T/$conf.err </dev/null &
	LP=$!
	# a loaded TCG guest can take a while: not ql's 15 s
	if ! wait_for 90 started $conf; then
		say "# $conf round $round: did not start in 90 s: $(tail -n 5 $T/$conf.err | tr '\n' ' ')"
		stop $LP >/dev/null
		return
	fi
	Q=$(sed -n 's/.*qemu running as pid \([0-9]*\).*/\1/p' $T/$conf.err | head -n1)
	vt=$(tid_named $Q "CPU 0/TCG")
	sleep 1
	cat /proc/interrupts >$T/irq-a
	nv_a=$(sed -n 's/^nonvoluntary_ctxt_switches:[[:space:]]*//p' /proc/$Q/task/$vt/status)
	if [ $TRACE = 1 ]; then
		echo 0 >$TR/tracing_on
		echo >$TR/trace
		echo $MASK >$TR/tracing_cpumask
		echo 1 >$TR/events/sched/sched_switch/enable
		echo 1 >$TR/tracing_on
	else
		tasks_fallback >$T/fb-a
	fi
	sleep $WINDOW
	if [ $TRACE = 1 ]; then
		echo 0 >$TR/tracing_on
		sed -n 's/.* next_comm=\(.*\) next_pid=\([0-9]*\) .*/\1/p' $TR/trace >$T/ran
	else
		tasks_fallback >$T/fb-b
		cat $T/fb-a $T/fb-b >$T/ran
	fi
	cat /proc/interrupts >$T/irq-b
	nv_b=$(sed -n 's/^nonvoluntary_ctxt_switches:[[:space:]]*//p' /proc/$Q/task/$vt/status)
	stop $LP >/dev/null
	irq_col $T/irq-a >$T/ca
	irq_col $T/irq-b >$T/cb
	# device IRQs on the vCPU CPU: per IRQ "N(NAME)+DELTA", and the total per second
	devs=$(awk 'NR == FNR { a[$1] = $2; next } { d = $2 - a[$1]; if (d > 0) { printf "%s%s(%s)+%d", s, $1, $3, d; s = "," } }' $T/ca $T/cb)
	total=$(awk 'NR == FNR { a[$1] = $2; next } { d = $2 - a[$1]; if (d > 0) t += d } END { print t + 0 }' $T/ca $T/cb)
	# other tasks that ran on it: switches into each (not the vCPU, not the idle task)
	others=$(grep -v -e '^CPU 0/TCG$' -e '^swapper/' $T/ran | sort | uniq -c | sort -rn |
		awk '{ n = $1; $1 = ""; sub(/^ /, ""); printf "%s%s:%d", s, $0, n; s = "," }')
	n_others=$(grep -v -e '^CPU 0/TCG$' -e '^swapper/' $T/ran | sort -u | wc -l)
	say "ROW conf=$conf round=$round window=$WINDOW dev_irqs=$total dev_irqs_per_s=$(awk -v t=$total -v w=$WINDOW 'BEGIN { printf "%.1f", t / w }') invol_per_s=$(awk -v a=$nv_a -v b=$nv_b -v w=$WINDOW 'BEGIN { printf "%.1f", (b - a) / w }') tasks=$n_others irqs=[${devs}] ran=[${others}]"
}

for round in $(seq 1 $ROUNDS); do
	for conf in affinity affinity_hk cpuset cpuset_hk; do
		measure $conf $round
	done
done
for p in $LOAD; do kill $p 2>/dev/null; done
say "# done"
