#!/bin/bash
# The whole-host isolation rows: what a spinning vCPU pinned to CPU 3 of a 4-CPU TCG guest sees
# under load, with and without cpuset isolation and housekeeping (bench/isolation-guest-run.sh
# runs inside; the guest kernel is the "host", never this machine's). Counts per configuration:
# device IRQs on the vCPU CPU per second, the other tasks that ran there (sched_switch), the vCPU
# thread's involuntary switches per second. Uses the guest harness of the tests (Debian's cloud
# kernel, a static launcher; TCG only). Env: WINDOW (s per measurement, 5), ROUNDS (2).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${QL_BUILD_DIR:-$SRC/build}
[ -d "$BUILD" ] || meson setup "$BUILD" "$SRC" >/dev/null
. "$SRC/tests/guest/harness.sh"

guest_setup hkbench
cp "$SRC/bench/isolation-guest-run.sh" "$GUEST_ROOT/"
truncate -s 4M "$W/nvme.img"
GUEST_QEMU_ARGS="-drive if=none,id=n0,file=$W/nvme.img,format=raw -device nvme,drive=n0,serial=qlbench"
WINDOW=${WINDOW:-5} ROUNDS=${ROUNDS:-2}
# the harness passes no environment into the guest: the script's defaults are edited in
sed -i "s/^WINDOW=.*/WINDOW=$WINDOW/; s/^ROUNDS=.*/ROUNDS=$ROUNDS/" "$GUEST_ROOT/isolation-guest-run.sh"
guest_pack
echo "# booting a 4-CPU TCG guest: $ROUNDS rounds x 4 configurations x ${WINDOW}s"
guest_boot isolation-guest-run.sh 4 $((90 + ROUNDS * 4 * (WINDOW + 25)))
tr -d '\r' <"$W/isolation-guest-run.sh.log" | sed -n 's/^HKBENCHTAP: //p' >"$W/bench.out"
grep '^#' "$W/bench.out"
grep -q '^ROW ' "$W/bench.out" || {
	echo "no results (see $W/isolation-guest-run.sh.log)"
	exit 1
}

# One line per row: the median over rounds of IRQs/s, involuntary switches/s and other tasks,
# then every round's details.
printf '\n| configuration (whole guest host, vCPU on CPU 3) | device IRQs/s on CPU 3 | vCPU involuntary switches/s | other tasks that ran on CPU 3 |\n|---|---:|---:|---:|\n'
for conf in affinity affinity_hk cpuset cpuset_hk; do
	case $conf in
	affinity) label="affinity only" ;;
	affinity_hk) label="affinity + housekeeping" ;;
	cpuset) label="cpuset isolation" ;;
	cpuset_hk) label="cpuset isolation + housekeeping" ;;
	esac
	grep "^ROW conf=$conf " "$W/bench.out" | awk -v label="$label" '
		function med(a, n,   i, j, t) {
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		{
			for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			n++; irq[n] = v["dev_irqs_per_s"]; inv[n] = v["invol_per_s"]; tk[n] = v["tasks"]
		}
		END { if (n) printf "| %s | %.1f | %.1f | %s |\n", label, med(irq, n), med(inv, n), med(tk, n) }'
done
echo
grep '^ROW ' "$W/bench.out" | sed 's/^ROW /- /'
