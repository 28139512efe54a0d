/* Pure planning of the cpuset v1 layout (see cpuset_v1_plan.h). */
#include "cpuset_v1_plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

int v1_others_init(struct v1_others *o)
{
	*o = (struct v1_others){0};
	o->vcpu_cpus = cpu_list_new(0);
	o->emulator_cpus = cpu_list_new(0);
	if (!o->vcpu_cpus || !o->emulator_cpus) {
		v1_others_done(o);
		return -ENOMEM;
	}
	return 0;
}

int v1_others_add(struct v1_others *o, const char *name, unsigned cpu, bool emulator)
{
	struct cpu_list *cpus = emulator ? o->emulator_cpus : o->vcpu_cpus;
	if (cpu >= CPU_LIST_MAX_CPUS)
		return -ERANGE;
	if (cpu_list_has(cpus, cpu))
		return 0;
	struct v1_owner *n = reallocarray(o->owners, o->n_owners + 1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	o->owners = n;
	if (!(n[o->n_owners].vm = strdup(name)))
		return -ENOMEM;
	n[o->n_owners].emulator = emulator;
	n[o->n_owners++].cpu = cpu;
	return cpu_list_add(cpus, cpu) < 0 ? -ENOMEM : 0;
}

const char *v1_others_owner(const struct v1_others *o, unsigned cpu, bool emulator)
{
	for (size_t i = 0; i < o->n_owners; i++)
		if (o->owners[i].cpu == cpu && o->owners[i].emulator == emulator)
			return o->owners[i].vm;
	return NULL;
}

void v1_others_done(struct v1_others *o)
{
	for (size_t i = 0; i < o->n_owners; i++)
		free(o->owners[i].vm);
	free(o->owners);
	cpu_list_free(o->vcpu_cpus);
	cpu_list_free(o->emulator_cpus);
	*o = (struct v1_others){0};
}

void v1_plan_done(struct v1_plan *p)
{
	cpu_list_free(p->vcpus);
	cpu_list_free(p->vm);
	cpu_list_free(p->pool_before);
	cpu_list_free(p->pool_after);
	*p = (struct v1_plan){0};
}

/* Each CPU of `cpus` must be free of other VMs' vCPUs and inside the prefix; a vCPU's also of
 * their emulator CPUs (those they may share with ours). */
static int check_cpus(const struct v1_host *h, const struct cpu_list *cpus, const char *role,
		      bool vcpus, struct ql_error *err)
{
	for (int c = cpu_list_next(cpus, -1); c >= 0; c = cpu_list_next(cpus, c)) {
		if (cpu_list_has(h->others->vcpu_cpus, (unsigned)c))
			return ql_error_set(err, EBUSY,
					    "%shost CPU %d is pinned by running VM `%s`", role, c,
					    v1_others_owner(h->others, (unsigned)c, false));
		if (vcpus && cpu_list_has(h->others->emulator_cpus, (unsigned)c))
			return ql_error_set(
			    err, EBUSY,
			    "host CPU %d is an emulator CPU of running VM `%s` (its "
			    "emulator_pinning), which a vCPU cannot have to itself",
			    c, v1_others_owner(h->others, (unsigned)c, true));
		if (!cpu_list_has(h->p_cpus, (unsigned)c)) {
			_cleanup_free_ char *t = cpu_list_format(h->p_cpus);
			return ql_error_set(err, EINVAL,
					    "%shost CPU %d is not among the CPUs of `%s` (%s)",
					    role, c, h->p_disp, t ? t : "?");
		}
	}
	return 0;
}

int v1_plan_build(const struct v1_host *h, const struct isolation_plan *req, struct v1_plan *ret,
		  struct ql_error *err)
{
	if (h->others->ours_running)
		return ql_error_set(err, EBUSY, "VM `%s` is already running (`%s/%s` has tasks)",
				    h->vm, h->p_disp, h->vm);
	struct v1_plan p = {0};
	int r = isolation_plan_host_cpus(req, &p.vcpus, err);
	if (r == 0)
		r = check_cpus(h, p.vcpus, "", true, err);
	if (r == 0 && req->emulator_cpus)
		r = check_cpus(h, req->emulator_cpus, "emulator_pinning: ", false, err);
	if (r == 0 && (!(p.vm = cpu_list_dup(p.vcpus)) ||
		       (req->emulator_cpus && cpu_list_merge(p.vm, req->emulator_cpus) < 0) ||
		       !(p.pool_before = cpu_list_dup(h->p_cpus))))
		r = ql_error_set(err, ENOMEM, "out of memory");
	if (r == 0) {
		cpu_list_subtract(p.pool_before, h->others->vcpu_cpus);
		if (!(p.pool_after = cpu_list_dup(p.pool_before)))
			r = ql_error_set(err, ENOMEM, "out of memory");
	}
	if (r == 0) {
		cpu_list_subtract(p.pool_after, p.vcpus);
		if (cpu_list_is_empty(p.pool_after)) {
			_cleanup_free_ char *t = cpu_list_format(p.pool_before);
			r = ql_error_set(
			    err, EBUSY,
			    "pinning leaves no CPU for `%s/pool` (free CPUs: %s); keep "
			    "at least one host CPU unpinned",
			    h->p_disp, t && *t ? t : "none");
		}
	}
	if (r < 0) {
		v1_plan_done(&p);
		return r;
	}
	*ret = p;
	return 0;
}

struct cpu_list *v1_plan_pool_after_release(const struct cpu_list *p_cpus,
					    const struct v1_others *others)
{
	struct cpu_list *pool = cpu_list_dup(p_cpus);
	if (pool)
		cpu_list_subtract(pool, others->vcpu_cpus);
	return pool;
}
