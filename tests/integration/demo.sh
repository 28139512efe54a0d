# The demo's cheap checks (the demo itself boots two guests and takes ~30 s: run ./run-demo.sh):
# its scripts parse, --help and a bad option answer without root or a build, the guest harness it
# sources still keeps the power button modules its guest loads, and demo/lib.sh, fed fake hosts,
# finds the cpuset v1 mount exactly and writes the definition whose layout the backend can isolate
# (cgroup v2 partitions: qemu-launcher(1), CPU ISOLATION), which --dry-run takes.
. "$(dirname "$0")/lib.sh"
TOP=$(cd "$(dirname "$0")/../.." && pwd)
plan 24
check "run-demo.sh parses (bash -n)" bash -n "$TOP/run-demo.sh"
check "demo/init.sh parses (sh -n)" sh -n "$TOP/demo/init.sh"
check "demo/loop.sh parses (sh -n)" sh -n "$TOP/demo/loop.sh"
check "demo/lib.sh parses (bash -n)" bash -n "$TOP/demo/lib.sh"
out=$("$TOP/run-demo.sh" --help 2>&1) && rc=0 || rc=$?
expect_eq "run-demo.sh --help exits 0" 0 "$rc"
check "run-demo.sh --help names --console" grep -q -- "--console" <<<"$out"
"$TOP/run-demo.sh" --bogus >/dev/null 2>&1 && rc=0 || rc=$?
expect_eq "run-demo.sh with an unknown option exits 2 (usage)" 2 "$rc"
# As a user, from another directory, by a relative path: it re-runs itself under sudo (a stand-in
# that only prints what it was given) by a path that works after its cd.
FAKE=$SCRATCH/fake-sudo
mkdir -p "$FAKE" "$SCRATCH/elsewhere"
printf '#!/bin/sh\n[ "$1" = -u ] && echo 1000 || exec /usr/bin/id "$@"\n' >"$FAKE/id"
printf '#!/bin/sh\nfor a; do [ "${a#-}" = "$a" ] && { echo "$a"; exit 0; }; done\n' >"$FAKE/sudo"
chmod +x "$FAKE"/*
rel=$(realpath --relative-to="$SCRATCH/elsewhere" "$TOP/run-demo.sh")
again=$(cd "$SCRATCH/elsewhere" && PATH=$FAKE:$PATH bash "$rel" 2>&1)
check "run-demo.sh run as $rel re-runs itself under sudo by its absolute path ($again)" \
	test "$again" = "$TOP/run-demo.sh" -a -f "$again"
harness=$TOP/tests/guest/harness.sh
if grep -q 'GUEST_MODULES=' "$harness" && grep -q 'button.ko' "$harness" && grep -q 'evdev.ko' "$harness"; then
	ok "the guest harness keeps button.ko and evdev.ko in \$GUEST_MODULES for the demo's guest"
else
	not_ok "the guest harness keeps button.ko and evdev.ko in \$GUEST_MODULES for the demo's guest"
fi

# --- demo/lib.sh on fake hosts -------------------------------------------------------------------
# shellcheck source=demo/lib.sh
. "$TOP/demo/lib.sh"
MI=$SCRATCH/mountinfo
# mountinfo LINE...: a fake /proc/self/mountinfo
mountinfo() { printf '%s\n' "$@" >"$MI"; }
TMPFS='30 22 0:27 / /sys/fs/cgroup rw,relatime shared:4 - tmpfs tmpfs rw,mode=755'
mountinfo "$TMPFS" '33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset'
expect_eq "cpuset v1 mount, no optional field" /sys/fs/cgroup/cpuset "$(cpuset_v1_mount "$MI")"
mountinfo "$TMPFS" '33 30 0:30 / /sys/fs/cgroup/cpuset rw,nosuid shared:9 master:3 - cgroup cgroup rw,cpuset,cpu'
expect_eq "cpuset v1 mount with two optional fields (field 9 is \"-\" there)" /sys/fs/cgroup/cpuset \
	"$(cpuset_v1_mount "$MI")"
mountinfo "$TMPFS" '33 30 0:30 / /sys/fs/cgroup/cpu\040set rw shared:9 - cgroup none rw,cpuacct,cpuset'
expect_eq "cpuset v1 mount point with a space (\\040), any source name" "/sys/fs/cgroup/cpu set" \
	"$(cpuset_v1_mount "$MI")"
mountinfo "$TMPFS" '40 30 0:37 / /sys/fs/cgroup/unified rw shared:5 - cgroup2 cgroup rw,nsdelegate' \
	'41 30 0:38 / /sys/fs/cgroup/x rw - cgroup cgroup rw,name=cpuset_like' \
	'42 30 0:39 / /mnt/cpuset rw - tmpfs cgroup rw,cpuset'
expect_eq "no cpuset v1 mount: cgroup2, a named hierarchy, a tmpfs named cgroup" "" "$(cpuset_v1_mount "$MI")"
mkdir -p "$SCRATCH/cg2"
: >"$SCRATCH/cg2/cgroup.controllers"
mountinfo "$TMPFS" '33 30 0:30 / /sys/fs/cgroup/cpuset rw shared:9 master:3 - cgroup cgroup rw,cpuset'
expect_eq "backend: v1 where a hierarchy has cpuset, even beside cgroup2" v1 "$(cgroup_backend "$MI" "$SCRATCH/cg2")"
mountinfo '40 22 0:37 / /sys/fs/cgroup rw shared:5 - cgroup2 cgroup2 rw,nsdelegate'
expect_eq "backend: v2 on a pure cgroup2 host" v2 "$(cgroup_backend "$MI" "$SCRATCH/cg2")"
expect_eq "backend: none without either" none "$(cgroup_backend "$MI" "$SCRATCH/nothing")"

# layout_of N BACKEND: the definition demo_layout and write_def_file give a fake N-CPU host, as
# "isolate_cpus vCPU0-CPU,vCPU1-CPU emulator_pinning compare" (- for no emulator_pinning).
DEFS=$SCRATCH/defs
mkdir -p "$DEFS"
layout_of() {
	local f=$DEFS/demo-$1-$2.yml
	demo_layout "$1" "$2"
	write_def_file "$f" "$isolate" tour /boot/vmlinuz-demo "$SCRATCH/initrd.gz"
	echo "$(awk '$1 == "isolate_cpus:" {print $2}' "$f")" \
		"$(awk '$1 == "0:" && NF >= 2 && $2 ~ /^[0-9]+$/ {print $2}' "$f" | paste -sd,)" \
		"$(awk '$1 == "emulator_pinning:" {print $2}' "$f" | grep . || echo -)" "$compare"
}
expect_eq "cgroup v2, 5 CPUs: vCPUs on 1 and 2, emulator_pinning 3 (root keeps 0, the prefix 4)" \
	"true 1,2 3 yes" "$(layout_of 5 v2)"
expect_eq "cgroup v2, 8 CPUs: the same" "true 1,2 3 yes" "$(layout_of 8 v2)"
expect_eq "cgroup v2, 4 CPUs: both vCPUs on 1, emulator_pinning 2 (root keeps 0, the prefix 3)" \
	"true 1,1 2 yes" "$(layout_of 4 v2)"
expect_eq "cgroup v2, 3 CPUs: no partitions possible: isolate_cpus auto, no comparison" \
	"auto 1,2 - no" "$(layout_of 3 v2)"
expect_eq "cgroup v2, 2 CPUs: the same" "auto 1,1 - no" "$(layout_of 2 v2)"
expect_eq "cpuset v1, 3 CPUs: vCPUs on 1 and 2, no emulator_pinning (as before)" "true 1,2 - yes" "$(layout_of 3 v1)"
# the definition the demo writes on this host's CPU count with a cpuset v1 hierarchy
n=$(nproc --all)
layout_of "$n" v1 >/dev/null
cp "$DEFS/demo-$n-v1.yml" "$CONF/demo.yml"
out=$("$QL" --config-dir "$CONF" --dry-run demo 2>&1) && rc=0 || rc=$?
expect_eq "--dry-run takes the cpuset v1 definition written for this $n-CPU host" "0 yes" \
	"$rc $(grep -q '^qemu-system-x86_64 -name demo,debug-threads=on ' <<<"$out" && echo yes)"
[ "$rc" = 0 ] || sed "s/^/# /" <<<"$out"

# A launcher stand-in whose first child is a guardian stand-in (sleep), its second "qemu".
mkdir -p "$SCRATCH/qemu-bin"
cp "$(readlink -f "$(command -v sleep)")" "$SCRATCH/qemu-bin/qemu-system-x86_64"
bash -c 'sleep 30 & "$1" 30 & wait' _ "$SCRATCH/qemu-bin/qemu-system-x86_64" &
launcher=$!
register_pid "$launcher"
disown "$launcher" # killed at the end: no job message in the output
# both children forked and exec'd (a child still running bash has not yet)
both_children() {
	local c n=0
	for c in $(pgrep -P "$launcher"); do
		[ "$(readlink "/proc/$c/exe")" != "$(readlink -f "$BASH")" ] || return 1
		n=$((n + 1))
	done
	[ "$n" -eq 2 ]
}
wait_until 5 both_children
for c in $(pgrep -P "$launcher"); do register_pid "$c"; done
q=$(qemu_child "$launcher" "$SCRATCH/qemu-bin/qemu-system-x86_64")
expect_eq "qemu_child picks the child that runs qemu, not the guardian beside it" \
	"$SCRATCH/qemu-bin/qemu-system-x86_64" "$(readlink "/proc/$q/exe" 2>/dev/null)"
