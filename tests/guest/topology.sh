# In the topology test guest (-smp sockets=2,cores=2,threads=2, two NUMA nodes; see
# tests/integration/topology-guest.sh): the launcher's --topology, --suggest and --check against a
# kernel with real SMT siblings, L3 groups and nodes, and core scheduling where the kernel has it.
. /guest-lib.sh
tap "PLAN 9"
QL=/qemu-launcher
C=/tmp/conf
mkdir -p $C

$QL --topology >/tmp/topo 2>&1
check "--topology runs" [ $? -eq 0 ] || sed "s/^/$TAP_PREFIX: # /" /tmp/topo
eq "threads per core" "threads per core: 2" "$(grep '^threads per core' /tmp/topo)"
eq "two packages" "package 0: CPUs 0-3|package 1: CPUs 4-7" \
	"$(grep '^package' /tmp/topo | tr '\n' '|' | sed 's/|$//')"
eq "cores are the guest's thread pairs, on their nodes" \
	"0-1 (L3 0, node 0)|2-3 (L3 0, node 0)|4-5 (L3 1, node 1)|6-7 (L3 1, node 1)" \
	"$(sed -n 's/^  core [0-9]*: CPUs //p' /tmp/topo | tr '\n' '|' | sed 's/|$//')"
bad=""
for c in 0 1 2 3 4 5 6 7; do
	s=$(cat /sys/devices/system/cpu/cpu$c/topology/thread_siblings_list)
	grep -q "^  core [0-9]*: CPUs $s " /tmp/topo || bad="$bad cpu$c:$s"
done
eq "every core line is the kernel's sibling list" "" "$bad"
eq "NUMA nodes" "node 0: CPUs 0-3|node 1: CPUs 4-7" \
	"$(grep '^node' /tmp/topo | tr '\n' '|' | sed 's/|$//')"
grep '^L3' /tmp/topo | sed "s/^/$TAP_PREFIX: # /"

printf 'launcher:\n  binary: /bin/true\n  isolate_cpus: false\nqemu:\n- smp: 4\n' >$C/four.yml
$QL -C $C --suggest four >/tmp/sugg 2>&1
eq "--suggest 4 vCPUs: one socket on the second L3 group and node, first core to the host" \
	"0: { 0: 4, 1: 5 }|1: { 0: 6, 1: 7 }|emulator_pinning: 0-1|- smp: [ 4, sockets: 1, cores: 2, threads: 2 ]" \
	"$(grep -E '^      [01]: |^  emulator_pinning|^- smp' /tmp/sugg | sed 's/^ *//' | tr '\n' '|' | sed 's/|$//')" ||
	sed "s/^/$TAP_PREFIX: # /" /tmp/sugg

printf 'launcher:\n  binary: /bin/true\n  isolate_cpus: false\n  vcpu_pinning: [1, 2, 3, 4]\nqemu:\n- smp: [ 4, threads: 2 ]\n' >$C/bad.yml
$QL -C $C --check bad >/tmp/check 2>&1
if grep -q "vCPUs 0 and 1 are threads of one guest core but run on host CPUs 1 and 2" /tmp/check &&
	grep -q "vCPUs of guest socket 0 run on host CPUs 1-4, which belong to L3 groups 0-1" /tmp/check &&
	grep -q "belong to NUMA nodes 0-1" /tmp/check; then
	ok "--check: split siblings, L3 groups and NUMA nodes the guest does not see"
else
	nok "--check warnings"
	sed "s/^/$TAP_PREFIX: # /" /tmp/check
fi

r=$(/coredrive)
case $r in
ok*) ok "core scheduling: a cookie created, shared to a second thread and read back ($r)" ;;
absent:*) tap "ok # SKIP core scheduling: ${r#absent: }" ;;
*) nok "core scheduling: $r" ;;
esac
