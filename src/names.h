/* Names the user gives that become file and cgroup directory names: the VM NAME and the cpuset
 * prefix. One rule set, shared by the CLI, the config reader and the cgroup backends. */
#pragma once

#include <stdbool.h>

#define QL_NAME_MAX 64

/* NAME is a file name stem: [A-Za-z0-9_][A-Za-z0-9._+-]*, at most QL_NAME_MAX bytes. */
bool vm_name_is_valid(const char *name);

/* The name would clash with a cgroup interface file (`tasks`, `cgroup.procs`, `cpuset.cpus`,
 * `notify_on_release`, ...) or with a directory the launcher makes beside the VMs (`pool`). */
bool cgroup_name_is_reserved(const char *name);

/* A cpuset prefix: one plain directory name (no `/`), not hidden (no leading `.`: the launcher
 * and `--status` skip those), at most QL_NAME_MAX bytes, not reserved. */
bool cgroup_prefix_is_valid(const char *prefix);
