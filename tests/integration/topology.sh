# --topology on this very host agrees with sysfs and lscpu; --suggest prints a plan that --check
# and --dry-run accept; --check warns where the pinning hides the host's layout. Fake hosts
# (SMT, NUMA, CCDs, 256 CPUs) are covered by tests/unit/test_topology.c.
. "$(dirname "$0")/lib.sh"
plan 10

out=$SCRATCH/topology
"$QL" --topology >"$out" 2>"$SCRATCH/err"
rc=$?
expect_eq "--topology exits 0" 0 "$rc"
[ $rc -eq 0 ] || diag "$(cat "$SCRATCH/err")"
expect_eq "online CPUs as /sys says" "online: $(cat /sys/devices/system/cpu/online)" \
	"$(grep '^online: ' "$out")"

# Every core line lists exactly the kernel's SMT siblings of each of its CPUs.
bad=""
while read -r list; do
	for cpu in $(python3 -c 'import sys
for part in sys.argv[1].split(","):
    a, _, b = part.partition("-")
    print(*range(int(a), int(b or a) + 1))' "$list"); do
		f=/sys/devices/system/cpu/cpu$cpu/topology/core_cpus_list
		[ -e "$f" ] || f=/sys/devices/system/cpu/cpu$cpu/topology/thread_siblings_list
		[ "$(cat "$f")" = "$list" ] || bad="$bad cpu$cpu:$list/$(cat "$f")"
	done
done < <(sed -n 's/^  core [0-9]*: CPUs \([0-9,-]*\)\( .*\)\{0,1\}$/\1/p' "$out")
# The host's cores from sysfs (the online CPUs' sibling lists), not from the output under test:
# without any core line the loop above finds nothing wrong.
n_cores=$(for c in /sys/devices/system/cpu/cpu[0-9]*; do
	[ "$(cat "$c/online" 2>/dev/null || echo 1)" = 1 ] || continue
	cat "$c/topology/core_cpus_list" 2>/dev/null || cat "$c/topology/thread_siblings_list"
done | sort -u | wc -l)
n_lines=$(grep -c '^  core ' "$out")
[ "$n_lines" = "$n_cores" ] || bad="$bad $n_lines core lines for the kernel's $n_cores cores"
expect_eq "every core's CPUs are the kernel's siblings, one line per core" "" "$bad"

# Cores, packages, L3 groups and nodes group the CPUs as lscpu does.
same_as_lscpu() {
	python3 - "$out" <<'PY'
import subprocess, sys
def cpus(text):
    s = set()
    for part in text.split(","):
        a, _, b = part.partition("-")
        s.update(range(int(a), int(b or a) + 1))
    return frozenset(s)
ours = {"core": set(), "socket": set(), "l3": set(), "node": set()}
for line in open(sys.argv[1]):
    words = line.split()
    if line.startswith("  core "):
        ours["core"].add(cpus(words[3]))
    elif line.startswith("package "):
        ours["socket"].add(cpus(words[3]))
    elif line.startswith("L3 "):
        ours["l3"].add(cpus(words[3]))
    elif line.startswith("node "):
        ours["node"].add(cpus(words[3]))
p = subprocess.run(["lscpu", "-p=CPU,CORE,SOCKET,NODE,CACHE"], capture_output=True, text=True,
                   check=True)
theirs = {k: {} for k in ours}
l3_col = None
for line in p.stdout.splitlines():
    if line.startswith("# CPU,"):
        header = line[2:].split(",")
        l3_col = header.index("L3") if "L3" in header else None
    if line.startswith("#"):
        continue
    f = line.split(",")
    cpu, core, sock, node = int(f[0]), f[1], f[2], f[3]
    l3 = f[l3_col] if l3_col is not None and l3_col < len(f) else ""
    theirs["core"].setdefault(core, set()).add(cpu)
    theirs["socket"].setdefault(sock, set()).add(cpu)
    if node:
        theirs["node"].setdefault(node, set()).add(cpu)
    if l3:
        theirs["l3"].setdefault(l3, set()).add(cpu)
ok = True
for k in ours:
    t = {frozenset(v) for v in theirs[k].values()}
    if t != ours[k]:
        print(f"# {k}: ours {sorted(map(sorted, ours[k]))} lscpu {sorted(map(sorted, t))}")
        ok = False
sys.exit(0 if ok else 1)
PY
}
if command -v lscpu >/dev/null; then
	check "cores, packages, L3 groups and nodes as lscpu -p shows them" same_as_lscpu
else
	skip "lscpu is not installed"
fi

cat >"$CONF/two.yml" <<EOF2
launcher:
  binary: $QEMU
  isolate_cpus: false
qemu:
- smp: 1
EOF2
"$QL" --suggest two >"$SCRATCH/suggestion" 2>"$SCRATCH/err"
rc=$?
if [ "$n_cores" -lt 2 ]; then
	expect_eq "--suggest on a one-core host: 125" 125 "$rc"
	skip "--suggest's plan: this host has one core"
	skip "--suggest's plan passes --check: this host has one core"
else
	expect_eq "--suggest exits 0" 0 "$rc"
	first_core=$(sed -n 's/^  core [0-9]*: CPUs \([0-9,-]*\)\( .*\)\{0,1\}$/\1/p' "$out" | head -n1)
	host_cpu=$(sed -n 's/^      0: { 0: \([0-9]*\) }$/\1/p' "$SCRATCH/suggestion")
	if grep -qx "  emulator_pinning: $first_core" "$SCRATCH/suggestion" && [ -n "$host_cpu" ] &&
		grep -qx -- "- smp: \[ 1, sockets: 1, cores: 1, threads: 1 \]" "$SCRATCH/suggestion"; then
		ok "--suggest: first core ($first_core) for the host, the vCPU on CPU $host_cpu"
	else
		not_ok "--suggest's plan"
		diag "$(cat "$SCRATCH/suggestion")"
	fi
	# The suggestion pasted into a definition: --check has nothing to say about it.
	{
		printf 'launcher:\n  binary: %s\n  isolate_cpus: false\n' "$QEMU"
		sed -n '/^  vcpu_pinning:/,$p' "$SCRATCH/suggestion"
	} >"$CONF/pasted.yml"
	"$QL" --check pasted >"$SCRATCH/check" 2>"$SCRATCH/err"
	rc=$?
	if [ $rc -eq 0 ] && [ ! -s "$SCRATCH/err" ] && "$QL" --dry-run pasted | grep -q -- \
		"-smp 1,sockets=1,cores=1,threads=1" ; then
		ok "the pasted suggestion passes --check without warnings"
	else
		not_ok "the pasted suggestion passes --check"
		diag "exit $rc" "$(cat "$SCRATCH/err")"
	fi
fi

# More vCPUs than the host has: a plain refusal, nothing printed on stdout.
cat >"$CONF/huge.yml" <<EOF2
launcher:
  binary: $QEMU
qemu:
- smp: 8192
EOF2
"$QL" --suggest huge >"$SCRATCH/suggestion" 2>"$SCRATCH/err"
rc=$?
if [ $rc -eq 125 ] && [ ! -s "$SCRATCH/suggestion" ] && grep -q "8192 vCPUs need" "$SCRATCH/err"; then
	ok "--suggest for more vCPUs than the host has: 125 and why"
else
	not_ok "--suggest for too many vCPUs"
	diag "exit $rc" "$(cat "$SCRATCH/err")"
fi

# emulator_pinning on a vCPU's CPU: a warning, still valid.
last=$(cpu_last=$(cat /sys/devices/system/cpu/online); echo "${cpu_last##*[,-]}")
cat >"$CONF/overlap.yml" <<EOF2
launcher:
  binary: $QEMU
  isolate_cpus: false
  vcpu_pinning: [$last]
  emulator_pinning: $last
qemu:
- smp: 1
EOF2
"$QL" --check overlap >/dev/null 2>"$SCRATCH/err"
rc=$?
if [ $rc -eq 0 ] && grep -q "warning: $CONF/overlap.yml: emulator_pinning CPUs $last also run vCPUs" "$SCRATCH/err"; then
	ok "--check warns when emulator_pinning overlaps a vCPU's CPU"
else
	not_ok "--check emulator overlap warning"
	diag "exit $rc" "$(cat "$SCRATCH/err")"
fi

"$QL" --topology extra >/dev/null 2>&1
expect_eq "--topology NAME is a usage error" 2 "$?"
