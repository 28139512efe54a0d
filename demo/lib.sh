# The demo's decisions that need no root and change nothing: which cgroup backend the launcher
# will pick. Sourced by run-demo.sh and by tests/integration/demo.sh, which feeds it fake hosts.
# shellcheck shell=bash

# cpuset_v1_mount MOUNTINFO: the mount point of the first cgroup v1 hierarchy that has the cpuset
# controller, or nothing. Exact on purpose: a miss sends the demo to the host's real cpuset root,
# where the launcher moves every task of the host. A mountinfo line has a variable number of
# optional fields (none, "shared:N", "shared:N master:M", ...) ended by "-"; the fs type is the
# field after it, then the source, then the super options (the controllers, comma-separated).
# The mount point's octal escapes (\040 for a space) are undone.
cpuset_v1_mount() {
	local mp
	mp=$(awk '{
		for (i = 7; i <= NF && $i != "-"; i++)
			;
		if (i > NF || $(i + 1) != "cgroup")
			next
		n = split($(i + 3), opt, ",")
		for (k = 1; k <= n; k++)
			if (opt[k] == "cpuset") {
				print $5
				exit
			}
	}' "$1")
	[ -n "$mp" ] && printf '%b\n' "$mp"
	return 0
}

# cgroup_backend MOUNTINFO CGROUP2_ROOT: v1, v2 or none, in the launcher's order of choice
# (qemu-launcher(1), CPU ISOLATION): cpuset v1 where a hierarchy has it, else cgroup v2.
cgroup_backend() {
	if [ -n "$(cpuset_v1_mount "$1")" ]; then
		echo v1
	elif [ -e "$2/cgroup.controllers" ]; then
		echo v2
	else
		echo none
	fi
}
