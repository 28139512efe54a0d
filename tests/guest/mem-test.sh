#!/bin/busybox sh
# Hugepages per NUMA node, run by /init inside the TCG guest (4 CPUs, two NUMA nodes of 256 MiB:
# CPUs 0-1 on node 0, 2-3 on node 1; the guest's own pools, never the host's): the real
# /qemu-launcher with /fake-qemu (which maps, mbinds and preallocates memory-backend-file like
# qemu) reserves each node's pool under /sys/devices/system/node/nodeN/hugepages/, the pages come
# from the bound node, --status shows use and reservation per node, every exit (SIGTERM, a
# SIGKILLed launcher's guardian, a refusal) gives back exactly what was reserved per node, a short
# node is named, and the plan (--dry-run) gives a bound backend's preallocation context that
# node's CPUs (fake-qemu makes no thread-context: real qemu's threads are checked by memory.sh).
PLAN=17
. /guest-lib.sh

tap "PLAN $PLAN"
HP=hugepages/hugepages-2048kB
N0=/sys/devices/system/node/node0/$HP
N1=/sys/devices/system/node/node1/$HP
export QEMU_LAUNCHER_CONFIG_DIR=/etc/ql QEMU_LAUNCHER_JOURNAL_DIR=/tmp/journal
mkdir -p /etc/ql /mnt/huge
if ! [ -w "$N1/nr_hugepages" ] || ! mount -t hugetlbfs -o pagesize=2M none /mnt/huge; then
	skipn "$PLAN" "the guest kernel has no 2 MiB pool on node 1 or no hugetlbfs"
	exit 0
fi
diag "node 0 CPUs $(cat /sys/devices/system/node/node0/cpulist), node 1 CPUs $(cat /sys/devices/system/node/node1/cpulist)"
nr() { echo "$(cat $N0/nr_hugepages) $(cat $N1/nr_hugepages)"; }
pools_are() { [ "$(nr)" = "$1" ]; }
# hdef NAME MODE SIZE0 SIZE1 [LAUNCHER-LINES]: two hugetlbfs backends, one bound to each node.
hdef() {
	cat >/etc/ql/$1.yml <<EOT
launcher:
  binary: $FQ
  shutdown_timeout: 5
  hugepages: $2
${5:-}
qemu:
- m: 16
- name: guest=$1,debug-threads=on
- object: [ memory-backend-file, id: m0, size: $3, mem-path: /mnt/huge, host-nodes: 0, policy: bind, prealloc: on, prealloc-threads: 2 ]
- object: [ memory-backend-file, id: m1, size: $4, mem-path: /mnt/huge, host-nodes: 1, policy: bind, prealloc: on, prealloc-threads: 2 ]
EOT
}
# qm NAME: the launcher in the background; waits for fake-qemu to greet (Q its pid).
qm() {
	fresh_logs "$1"
	"$QL" -d "$1" >"$T/$1.out" 2>"$T/$1.err" </dev/null &
	LP=$!
	wait_for 20 grep -q "QMP connected" "$T/$1.err"
	Q=$(sed -n 's/.*qemu running as pid \([0-9]*\).*/\1/p' "$T/$1.err" | head -n1)
	grep -q "QMP connected" "$T/$1.err"
}
# node_pages PID NODE: the hugetlb pages of PID on NODE (numa_maps).
node_pages() {
	awk -v n="N$2=" '/ huge / { for (i = 1; i <= NF; i++) if (index($i, n) == 1) s += substr($i, length(n) + 1) } END { print s + 0 }' "/proc/$1/numa_maps"
}

# 1: --dry-run lists one write per node, nothing changes
hdef two reserve 4M 6M
out=$("$QL" --dry-run two 2>&1)
if echo "$out" | grep -qx "# would write $N0/nr_hugepages: 0 -> 2 (reserving 2, given back at the end)" &&
	echo "$out" | grep -qx "# would write $N1/nr_hugepages: 0 -> 3 (reserving 3, given back at the end)" &&
	[ "$(nr)" = "0 0" ]; then
	ok "--dry-run lists the write to each node's pool and makes none"
else
	nok "--dry-run per node"
	echo "$out" | while read -r l; do diag "$l"; done
fi

# 2-6: a run: each node's pool raised by its own need, the pages from the bound node
if qm two; then ok "the VM with a backend on each node started"; else
	nok "the VM with a backend on each node started"
	dump_err two
fi
eq "node 0's pool holds 2 pages, node 1's 3" "2 3" "$(nr)"
eq "the node-1 backend's pages are on node 1, the node-0 one's on node 0" "2 3" \
	"$(node_pages "$Q" 0) $(node_pages "$Q" 1)"
st=$("$QL" --status two 2>&1)
if echo "$st" | grep -qx "  hugepages 2048 kB: 5 in use by qemu (node 0: 2, node 1: 3); 5 reserved by its launcher (node 0: 2, node 1: 3)"; then
	ok "--status: pages in use and reserved, per node"
else
	nok "--status: pages in use and reserved, per node"
	echo "$st" | while read -r l; do diag "$l"; done
fi
stop "$LP"
eq "after SIGTERM both nodes' pools are back" "0 0" "$(nr)"

# 7-8: give-back is exact per node: a page that was there before stays
echo 1 >$N0/nr_hugepages
qm two || dump_err two
eq "node 0 had 1 free page: it was raised by 1 only, node 1 by 3" "2 3" "$(nr)"
stop "$LP"
eq "after the run node 0 is back to its 1 page, node 1 to 0" "1 0" "$(nr)"
echo 0 >$N0/nr_hugepages

# 9-10: the guardian gives each node back after a SIGKILLed launcher
qm two || dump_err two
held=$(nr)
G=$(guardian_of "$LP")
kill -KILL "$LP"
# the pools it held before the kill and a guardian are part of it: a run that never reserved
# anything leaves "0 0" and an empty journal too
if [ "$held" = "2 3" ] && [ -n "$G" ] && wait_for 15 pools_are "0 0"; then
	ok "after SIGKILL the guardian gave both nodes back"
else
	nok "after SIGKILL: pools $held before the kill, $(nr) after (expected 2 3, then 0 0); guardian '$G'"
fi
# a record goes once its value is back, the guardian's keeper file last: its end says all is done
wait_for 10 ended "$G"
eq "the journal is empty" "" "$(ls /tmp/journal)"

# 11-12: check only, node 1 short (node 0 has its pages): refused, naming node 1 alone
echo 2 >$N0/nr_hugepages
hdef short check 4M 6M
"$QL" short >/dev/null 2>"$T/short.err"
eq "a short node without reserve: exit 125" 125 $?
if grep -q "not enough hugepages: 2048 kB pages on node 1: 3 needed, 0 free (" "$T/short.err" &&
	! grep -q "on node 0" "$T/short.err" && [ "$(nr)" = "2 0" ]; then
	ok "the refusal names size, node 1, needed and free; node 0 is not named; nothing changed"
else
	nok "refusal of a short node"
	dump_err short
fi
echo 0 >$N0/nr_hugepages

# 13-14: reserve, but node 1 cannot hold the pages (400 MiB on a 256 MiB node): refused naming
# how many could not be reserved, and node 0's reservation is given back too
hdef huge reserve 4M 400M
"$QL" huge >/dev/null 2>"$T/huge.err"
eq "a node that cannot be filled: exit 125" 125 $?
if grep -Eq "not enough hugepages: 2048 kB pages on node 1: 200 needed, 0 free, [0-9]+ could not be reserved" "$T/huge.err" &&
	[ "$(nr)" = "0 0" ] && [ -z "$(ls /tmp/journal)" ]; then
	ok "the refusal names what could not be reserved on node 1; both pools back at 0"
else
	nok "refusal after a partial reservation: pools $(nr)"
	dump_err huge
fi

# 15-17: the plan puts the preallocation context of a bound backend on that node's emulator CPUs
N1CPUS=$(cat /sys/devices/system/node/node1/cpulist)
hdef pin reserve 4M 6M "  vcpu_pinning: [ 3 ]
  emulator_pinning: 0-2"
out=$("$QL" --dry-run pin 2>&1)
if echo "$out" | grep -q -- "-object thread-context,id=qemu-launcher-prealloc-node0,cpu-affinity=0-1 -object thread-context,id=qemu-launcher-prealloc-node1,cpu-affinity=2" &&
	echo "$out" | grep -qx '# qemu-launcher adds prealloc-context=qemu-launcher-prealloc-node1 to memory backend `m1`'; then
	ok "--dry-run: each bound backend's context on its node's emulator CPUs (node 1: $N1CPUS, emulator 0-2)"
else
	nok "--dry-run prealloc contexts per node"
	echo "$out" | while read -r l; do diag "$l"; done
fi
hdef pin2 reserve 4M 6M "  vcpu_pinning: [ 3 ]
  emulator_pinning: 0-1"
out=$("$QL" --dry-run pin2 2>&1)
if echo "$out" | grep -q "warning.*memory backend \`m1\` is bound to host node 1, where no emulator CPU is (emulator CPUs 0-1)" &&
	echo "$out" | grep -qx '# qemu-launcher adds prealloc-context=qemu-launcher-prealloc to memory backend `m1`'; then
	ok "no emulator CPU on the node: a warning, and the emulator CPUs' context"
else
	nok "fallback to the emulator CPUs"
	echo "$out" | while read -r l; do diag "$l"; done
fi
eq "the dry runs changed no pool" "0 0" "$(nr)"
