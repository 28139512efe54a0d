/* --status for the cgroup backends: reads the VMs a backend's layout holds (<base>/<vm>/<set>)
 * from the kernel. Each backend describes its layout; this walks it. Reads only. */
#pragma once

#include "isolation.h"

struct cgroup_layout {
	const char *backend;	 /* the backend's name, for the report */
	const char *vcpu_prefix; /* per-CPU set names: "cpu" (v1) or "vcpu" (v2) + N */
	const char *ids_file;	 /* thread ids of a set: "tasks" or "cgroup.threads" */
	const char *procs_file;	 /* qemu's pid in the VM directory when no set holds it; or NULL */
};

/* Adds every VM directory under base (skipping "pool", hidden names and `only` mismatches). A
 * missing base is no VM. */
int cgroup_inspect(const char *base, const struct cgroup_layout *layout, const char *only,
		   struct isolation_vm_list *acc, struct ql_error *err);

/* "cpu3" with prefix "cpu" -> 3; -1 for any other name. */
int cgroup_set_cpu(const char *name, const char *prefix);
