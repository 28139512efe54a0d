# The demo's cheap checks (the demo itself boots two guests and takes ~30 s: run ./run-demo.sh):
# its scripts parse, --help and a bad option answer without root or a build, the guest harness it
# sources still keeps the power button modules its guest loads, and demo/lib.sh, fed fake hosts,
# finds the cpuset v1 mount exactly.
. "$(dirname "$0")/lib.sh"
TOP=$(cd "$(dirname "$0")/../.." && pwd)
plan 15
check "run-demo.sh parses (bash -n)" bash -n "$TOP/run-demo.sh"
check "demo/init.sh parses (sh -n)" sh -n "$TOP/demo/init.sh"
check "demo/loop.sh parses (sh -n)" sh -n "$TOP/demo/loop.sh"
check "demo/lib.sh parses (bash -n)" bash -n "$TOP/demo/lib.sh"
out=$("$TOP/run-demo.sh" --help 2>&1) && rc=0 || rc=$?
expect_eq "run-demo.sh --help exits 0" 0 "$rc"
check "run-demo.sh --help names --console" grep -q -- "--console" <<<"$out"
"$TOP/run-demo.sh" --bogus >/dev/null 2>&1 && rc=0 || rc=$?
expect_eq "run-demo.sh with an unknown option exits 2 (usage)" 2 "$rc"
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
