/* Planning for the cpuset v1 backend, pure (no I/O, unit-tested): from the CPUs of the prefix set
 * and the VMs already running under it, which CPUs the pool keeps before and after this VM's
 * vCPUs leave it, which CPUs the VM's sets get, and every conflict, named. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cpulist.h"
#include "error.h"
#include "isolation.h"

/* The live VMs under <prefix>: the union of their cpuN sets, of their emulator sets, and the
 * owner of each CPU. */
struct v1_owner {
	unsigned cpu;
	bool emulator; /* an emulator CPU (emulator_pinning), not a vCPU's */
	char *vm;
};
struct v1_others {
	struct cpu_list *vcpu_cpus;
	/* Other VMs may share an emulator CPU, but no vCPU may take one: the pool leaves a
	 * vCPU's CPU, the other VM's emulator set keeps it (cpuset_v1_plan.c, check_cpus). */
	struct cpu_list *emulator_cpus;
	/* Who holds each CPU of both lists, read only for conflict messages: a short list, not an
	 * array over every possible CPU, which this start-up path would zero and free each time. */
	struct v1_owner *owners;
	size_t n_owners;
	bool ours_running;
	size_t live; /* VMs with tasks (ours included when it runs) */
};
int v1_others_init(struct v1_others *o);
/* Records that VM `name` holds a set for `cpu`: its vCPU set, or its emulator set. */
int v1_others_add(struct v1_others *o, const char *name, unsigned cpu, bool emulator);
/* The VM holding `cpu` for a vCPU (or for its emulator), the first one recorded, or NULL. */
const char *v1_others_owner(const struct v1_others *o, unsigned cpu, bool emulator);
void v1_others_done(struct v1_others *o);

struct v1_host {
	const char *p_disp, *vm;       /* <mount>/<prefix> and the VM's name, for messages */
	const struct cpu_list *p_cpus; /* cpuset.cpus of <prefix> */
	const struct v1_others *others;
};

struct v1_plan {
	struct cpu_list *vcpus;	      /* distinct host CPUs of the vCPUs: one cpuN set each */
	struct cpu_list *vm;	      /* <vm>: vCPU and emulator CPUs */
	struct cpu_list *pool_before; /* the pool while threads move: all but other VMs' vCPUs */
	struct cpu_list *pool_after;  /* the pool once our vCPUs are placed */
};
void v1_plan_done(struct v1_plan *p);

/* -EBUSY naming the VM that holds a CPU (or runs under our name); -EINVAL for CPUs outside
 * the prefix; -EBUSY when nothing would be left for the pool. */
int v1_plan_build(const struct v1_host *h, const struct isolation_plan *req, struct v1_plan *ret,
		  struct ql_error *err);

/* The pool after a VM left, while others run: prefix CPUs minus their vCPUs. */
struct cpu_list *v1_plan_pool_after_release(const struct cpu_list *p_cpus,
					    const struct v1_others *others);
