/* Validation of VM names and cgroup prefixes (see names.h). */
#include "names.h"

#include <string.h>

#include "macro.h"

bool vm_name_is_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > QL_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' ||
			  (i > 0 && (c == '.' || c == '-' || c == '+'));
		if (!ok)
			return false;
	}
	return true;
}

bool cgroup_name_is_reserved(const char *name)
{
	/* `pool` is the launcher's own set; the others are cgroup v1 and v2 core files. */
	static const char *const files[] = {"pool", "tasks", "notify_on_release", "release_agent"};
	for (size_t i = 0; i < ELEMENTSOF(files); i++)
		if (streq(name, files[i]))
			return true;
	/* Interface files are "<controller>.<name>" (cgroup.procs, cpuset.cpus, cpu.max, ...). */
	static const char *const controllers[] = {
	    "cgroup",  "cpuset",  "cpu",      "cpuacct",    "memory",  "io",   "blkio", "devices",
	    "freezer", "net_cls", "net_prio", "perf_event", "hugetlb", "pids", "rdma",	"misc",
	};
	const char *dot = strchr(name, '.');
	if (!dot)
		return false;
	size_t n = (size_t)(dot - name);
	for (size_t i = 0; i < ELEMENTSOF(controllers); i++)
		if (strlen(controllers[i]) == n && strncmp(name, controllers[i], n) == 0)
			return true;
	return false;
}

bool cgroup_prefix_is_valid(const char *prefix)
{
	return *prefix && prefix[0] != '.' && !strchr(prefix, '/') &&
	       strlen(prefix) <= QL_NAME_MAX && !cgroup_name_is_reserved(prefix);
}
