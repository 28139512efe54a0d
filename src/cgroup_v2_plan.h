/* Planning for the cgroup v2 backend, pure (no I/O, unit-tested): from what the kernel shows
 * (usable CPUs, partition states, the VMs already under the prefix) and the request, which CPUs
 * each set of <root>/<prefix>/<vm>/{emulator,vcpuN} gets and whether CPU partitions can form.
 * The kernel rules it follows are in doc/cgroup-v2.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cpulist.h"
#include "definition.h"
#include "error.h"
#include "isolation.h"

enum cg2_partition {
	CG2_PART_MEMBER,
	CG2_PART_ROOT,
	CG2_PART_ISOLATED,
	CG2_PART_INVALID,
	CG2_PART_NONE, /* no such file: the hierarchy root, or cpuset not enabled */
};

/* "member", "root", "isolated"; anything else (" invalid (reason)") is invalid. */
enum cg2_partition cg2_partition_parse(const char *text);

/* A live VM found under the prefix. */
struct cg2_other_vm {
	const char *name;
	const struct cpu_list *vcpu_cpus; /* union of its vcpuN sets */
	const struct cpu_list *vm_cpus;	  /* its cpuset.cpus (all CPUs it asked for) */
	bool partition;			  /* its <vm> is a valid partition root */
};

struct cg2_host {
	const char *root, *prefix, *vm; /* for messages only */
	const struct cpu_list
	    *usable;   /* root's effective CPUs + those our partitioned prefix holds */
	bool top_root; /* root is the hierarchy's root cgroup (always a partition) */
	enum cg2_partition root_partition;   /* a delegated root's */
	enum cg2_partition prefix_partition; /* after tidy-up */
	const struct cpu_list *prefix_cpus;  /* the prefix's cpuset.cpus */
	const struct cg2_other_vm *others;
	size_t n_others;
};

/* Before planning: what to reset on a prefix that VMs no longer use. */
struct cg2_tidy {
	bool reset_partition; /* a partition left by VMs that are gone */
	bool clear_cpus;      /* CPUs a dead partitioned run left on the prefix: inherit again */
};
struct cg2_tidy cg2_plan_tidy(enum cg2_partition prefix_partition, bool prefix_has_cpus,
			      size_t n_others);

struct cg2_plan {
	struct cpu_list *vcpus;	    /* distinct host CPUs of the vCPUs: one vcpuN set each */
	struct cpu_list *emulator;  /* the emulator set */
	struct cpu_list *vm;	    /* the VM set: emulator and vCPU CPUs */
	struct cpu_list *prefix;    /* to write to the prefix first; NULL: leave it */
	bool partitions;	    /* form prefix(root) > vm(root) > vcpuN(isolated) */
	bool prefix_was_root;	    /* the prefix is a partition other live VMs keep */
	bool emulator_shares_vcpus; /* no CPU was left for the emulator threads (a warning) */
	bool emulator_only;	    /* no vCPU pinned: emulator set alone, no partition */
	bool emulator_chosen;	    /* isolate_cpus: true took one emulator CPU for partitions */
	char *why_not;		    /* why partitions cannot form (for the `auto` warning) */
};
void cg2_plan_done(struct cg2_plan *p);

/* Conflicts with other VMs are -EBUSY naming the VM; CPUs outside `usable` -EINVAL;
 * isolate_cpus: true without a possible partition -EINVAL with the reason; without emulator CPUs
 * it first tries one emulator CPU of its own (emulator_chosen). A request with
 * emulator CPUs and no vCPU plans the emulator set alone and never a partition, whatever the
 * mode: there is no vCPU CPU to isolate. */
int cg2_plan_build(const struct cg2_host *h, const struct isolation_plan *req, enum ql_isolate mode,
		   struct cg2_plan *ret, struct ql_error *err);

/* After a VM left a partitioned prefix: the remaining VMs' CPUs plus one spare the prefix keeps
 * for itself, so freed CPUs return to the host. ret NULL: leave the prefix as it is. */
int cg2_plan_shrunk_prefix(const struct cpu_list *cur, const struct cpu_list *const *vm_cpus,
			   size_t n, struct cpu_list **ret);
