/* Pure planning of the cgroup v2 layout (see cgroup_v2_plan.h). */
#include "cgroup_v2_plan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

enum cg2_partition cg2_partition_parse(const char *text)
{
	if (streq(text, "member"))
		return CG2_PART_MEMBER;
	if (streq(text, "root"))
		return CG2_PART_ROOT;
	if (streq(text, "isolated"))
		return CG2_PART_ISOLATED;
	return CG2_PART_INVALID;
}

struct cg2_tidy cg2_plan_tidy(enum cg2_partition prefix_partition, bool prefix_has_cpus,
			      size_t n_others)
{
	struct cg2_tidy t = {0};
	if (n_others > 0)
		return t;
	t.reset_partition =
	    prefix_partition != CG2_PART_MEMBER && prefix_partition != CG2_PART_NONE;
	t.clear_cpus = prefix_has_cpus;
	return t;
}

void cg2_plan_done(struct cg2_plan *p)
{
	cpu_list_free(p->vcpus);
	cpu_list_free(p->emulator);
	cpu_list_free(p->vm);
	cpu_list_free(p->prefix);
	free(p->why_not);
	*p = (struct cg2_plan){0};
}

/* Smallest CPU of from that is not in not; -1 when none. */
static int pick_cpu(const struct cpu_list *from, const struct cpu_list * not )
{
	for (int c = cpu_list_next(from, -1); c >= 0; c = cpu_list_next(from, c))
		if (!not || !cpu_list_has(not, (unsigned)c))
			return c;
	return -1;
}

/* Largest CPU of from that is not in not; -1 when none. The prefix's spare: the low CPUs usually
 * do the host's housekeeping. */
static int pick_highest_cpu(const struct cpu_list *from, const struct cpu_list * not )
{
	int found = -1;
	for (int c = cpu_list_next(from, -1); c >= 0; c = cpu_list_next(from, c))
		if (!not || !cpu_list_has(not, (unsigned)c))
			found = c;
	return found;
}

static void why_not(struct cg2_plan *p, const char *fmt, ...) _printf_(2, 3);
static void why_not(struct cg2_plan *p, const char *fmt, ...)
{
	if (p->why_not)
		return;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&p->why_not, fmt, ap) < 0)
		p->why_not = NULL;
	va_end(ap);
}

/* Emulator CPUs: the user's list, else every usable CPU no vCPU (ours or a live VM's) is pinned
 * to, else every usable CPU but ours, else all of them (shared with the vCPUs). */
static struct cpu_list *emulator_cpus(const struct isolation_plan *req,
				      const struct cpu_list *usable, const struct cpu_list *mine,
				      const struct cpu_list *busy)
{
	if (req->emulator_cpus)
		return cpu_list_dup(req->emulator_cpus);
	struct cpu_list *e = cpu_list_dup(usable);
	if (!e)
		return NULL;
	cpu_list_subtract(e, mine);
	cpu_list_subtract(e, busy);
	if (!cpu_list_is_empty(e))
		return e;
	memcpy(e->set, usable->set, usable->nbytes);
	cpu_list_subtract(e, mine);
	if (cpu_list_is_empty(e))
		memcpy(e->set, usable->set, usable->nbytes);
	return e;
}

/* A CPU of ours that another live VM holds (its vCPU sets, or all of a partitioned VM). */
static const struct cg2_other_vm *holder(const struct cg2_host *h, unsigned cpu)
{
	for (size_t i = 0; i < h->n_others; i++) {
		const struct cg2_other_vm *o = &h->others[i];
		if (cpu_list_has(o->vcpu_cpus, cpu) ||
		    (o->partition && cpu_list_has(o->vm_cpus, cpu)))
			return o;
	}
	return NULL;
}

/* " (vCPU N)" after a host CPU in a message; "" when the vCPU's index is not known. */
static const char *vcpu_note(char buf[32], int cpu_index)
{
	if (cpu_index < 0)
		return "";
	snprintf(buf, 32, " (vCPU %d)", cpu_index);
	return buf;
}

static int check_cpus(const struct cg2_host *h, const struct isolation_plan *req,
		      const struct cg2_plan *p, struct ql_error *err)
{
	for (size_t k = 0; k < req->n_vcpus; k++) {
		unsigned cpu = req->vcpus[k].host_cpu;
		const struct cg2_other_vm *o = holder(h, cpu);
		char note[32];
		if (o)
			return ql_error_set(err, EBUSY,
					    "host CPU %u%s is already used by the running VM `%s` "
					    "(%s/%s/%s)",
					    cpu, vcpu_note(note, req->vcpus[k].cpu_index), o->name,
					    h->root, h->prefix, o->name);
	}
	if (req->emulator_cpus)
		for (int x = cpu_list_next(p->emulator, -1); x >= 0;
		     x = cpu_list_next(p->emulator, x)) {
			const struct cg2_other_vm *o = holder(h, (unsigned)x);
			if (o)
				return ql_error_set(
				    err, EBUSY,
				    "emulator CPU %d is already used by the running "
				    "VM `%s`",
				    x, o->name);
		}
	for (size_t i = 0; i < req->n_vcpus; i++)
		if (!cpu_list_has(h->usable, req->vcpus[i].host_cpu)) {
			_cleanup_free_ char *u = cpu_list_show(h->usable);
			char note[32];
			return ql_error_set(err, EINVAL,
					    "host CPU %u%s is not among the CPUs of %s (%s)",
					    req->vcpus[i].host_cpu,
					    vcpu_note(note, req->vcpus[i].cpu_index), h->root, u);
		}
	if (req->emulator_cpus && (cpu_list_is_empty(req->emulator_cpus) ||
				   !cpu_list_is_subset(req->emulator_cpus, h->usable))) {
		_cleanup_free_ char *e = cpu_list_show(req->emulator_cpus),
				    *u = cpu_list_show(h->usable);
		return ql_error_set(err, EINVAL,
				    "emulator CPUs %s are not among the CPUs of %s (%s)", e,
				    h->root, u);
	}
	return 0;
}

/* Can the kernel form prefix(root) > vm(root) > vcpuN(isolated)? Every ancestor must be a
 * partition and every parent partition must keep at least one CPU. Sets p->prefix. */
static bool partitions_possible(const struct cg2_host *h, struct cg2_plan *p,
				const struct cpu_list *others_part)
{
	if (!h->top_root && h->root_partition != CG2_PART_ROOT) {
		why_not(p,
			"%s is not a partition root (make it one or use the top of the hierarchy)",
			h->root);
		return false;
	}
	for (int x = cpu_list_next(p->emulator, -1); x >= 0; x = cpu_list_next(p->emulator, x))
		if (cpu_list_has(p->vcpus, (unsigned)x)) {
			why_not(p,
				"the emulator threads share CPUs with vCPUs; set emulator_pinning "
				"to a CPU not used by vCPUs");
			return false;
		}
	if (h->n_others > 0 && !p->prefix_was_root) {
		why_not(p, "other VMs in %s/%s run without partitions", h->root, h->prefix);
		return false;
	}
	if (h->prefix_partition == CG2_PART_INVALID) {
		why_not(p, "%s/%s is an invalid partition", h->root, h->prefix);
		return false;
	}
	_cleanup_cpu_list_ struct cpu_list *pcpus =
	    p->prefix_was_root && h->prefix_cpus ? cpu_list_dup(h->prefix_cpus) : cpu_list_new(0);
	_cleanup_cpu_list_ struct cpu_list *taken = cpu_list_dup(p->vm);
	_cleanup_cpu_list_ struct cpu_list *left = cpu_list_dup(h->usable);
	if (!pcpus || !taken || !left || cpu_list_merge(pcpus, p->vm) < 0 ||
	    cpu_list_merge(taken, others_part) < 0)
		return false;
	/* The prefix keeps one CPU no VM partition takes: the highest free one, since the low
	 * ones usually do the host's housekeeping. */
	if (pick_cpu(pcpus, taken) < 0) {
		int spare = pick_highest_cpu(h->usable, pcpus);
		if (spare >= 0 && cpu_list_add(pcpus, (unsigned)spare) < 0)
			return false;
	}
	cpu_list_subtract(left, pcpus);
	if (pick_cpu(pcpus, taken) < 0 || cpu_list_is_empty(left)) {
		_cleanup_free_ char *u = cpu_list_show(h->usable), *v = cpu_list_show(p->vm);
		why_not(p,
			"the VM's CPUs %s leave too few of the usable CPUs %s: %s and %s/%s must "
			"each keep one CPU; pin the emulator to fewer CPUs (emulator_pinning)",
			v, u, h->root, h->root, h->prefix);
		return false;
	}
	p->prefix = TAKE_PTR(pcpus);
	return true;
}

/* A member VM inside a partitioned prefix only gets CPUs the prefix owns: widen it. */
static int widen_partitioned_prefix(const struct cg2_host *h, struct cg2_plan *p,
				    struct ql_error *err)
{
	_cleanup_cpu_list_ struct cpu_list *pc =
	    h->prefix_cpus ? cpu_list_dup(h->prefix_cpus) : cpu_list_new(0);
	_cleanup_cpu_list_ struct cpu_list *left = cpu_list_dup(h->usable);
	if (!pc || !left || cpu_list_merge(pc, p->vm) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	cpu_list_subtract(left, pc);
	if (cpu_list_is_empty(left))
		return ql_error_set(err, EBUSY,
				    "cannot place VM `%s` without a partition inside the "
				    "partitioned %s/%s (it would take every CPU of %s); set "
				    "emulator_pinning to CPUs not used by vCPUs",
				    h->vm, h->root, h->prefix, h->root);
	cpu_list_free(p->prefix);
	p->prefix = TAKE_PTR(pc);
	return 0;
}

/* Inside a partitioned prefix the emulator CPUs chosen for us must not take the prefix's own
 * spare (a CPU of it no VM's partition holds) nor the root's last free CPU: each must keep one,
 * and with every free CPU the start was refused although CPUs were free. Into busy, which the
 * choice avoids while anything else is left. */
static int keep_for_partitions(const struct cg2_host *h, const struct cg2_plan *p,
			       struct cpu_list *busy)
{
	_cleanup_cpu_list_ struct cpu_list *root_free = cpu_list_dup(h->usable);
	if (!root_free)
		return -ENOMEM;
	if (h->prefix_cpus) {
		cpu_list_subtract(root_free, h->prefix_cpus);
		if (cpu_list_merge(busy, h->prefix_cpus) < 0) /* the partitions' are busy already */
			return -ENOMEM;
	}
	cpu_list_subtract(root_free, p->vcpus);
	cpu_list_subtract(root_free, busy);
	/* the lowest: the low CPUs usually do the host's housekeeping */
	int root_keeps = cpu_list_next(root_free, -1);
	return root_keeps >= 0 && cpu_list_add(busy, (unsigned)root_keeps) < 0 ? -ENOMEM : 0;
}

static int plan_cpus(const struct cg2_host *h, const struct isolation_plan *req, struct cg2_plan *p,
		     struct cpu_list *others_part, struct ql_error *err)
{
	_cleanup_cpu_list_ struct cpu_list *busy = cpu_list_new(0);
	if (!busy)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = isolation_plan_host_cpus(req, &p->vcpus, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < h->n_others; i++) {
		if (h->others[i].partition && cpu_list_merge(others_part, h->others[i].vm_cpus) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
		if (cpu_list_merge(busy, h->others[i].vcpu_cpus) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
	}
	if (cpu_list_merge(busy, others_part) < 0 ||
	    (p->prefix_was_root && !req->emulator_cpus && keep_for_partitions(h, p, busy) < 0) ||
	    !(p->emulator = emulator_cpus(req, h->usable, p->vcpus, busy)))
		return ql_error_set(err, ENOMEM, "out of memory");
	r = check_cpus(h, req, p, err);
	if (r < 0)
		return r;
	p->emulator_shares_vcpus = !req->emulator_cpus && cpu_list_is_subset(p->emulator, p->vcpus);
	if (!(p->vm = cpu_list_dup(p->emulator)) || cpu_list_merge(p->vm, p->vcpus) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	return 0;
}

/* isolate_cpus: true without emulator_pinning, and the default emulator CPUs (every CPU the vCPUs
 * leave) keep none for the root and the prefix, so no partition could form and the start was
 * refused although enough CPUs were there. The user asked for isolation and named no emulator
 * CPUs: take one for them (the lowest CPU the vCPUs leave after the root's, the low ones usually
 * doing the host's housekeeping), which keeps the host's share of CPUs as large as partitions
 * allow. Only for a prefix no other VM uses: with other VMs, keep_for_partitions has already
 * left the prefix and the root theirs. 0 with p unchanged when too few CPUs are free. */
static int emulator_for_partitions(const struct cg2_host *h, struct cg2_plan *p,
				   const struct cpu_list *others_part, struct ql_error *err)
{
	_cleanup_cpu_list_ struct cpu_list *free_cpus = cpu_list_dup(h->usable);
	if (!free_cpus)
		return ql_error_set(err, ENOMEM, "out of memory");
	cpu_list_subtract(free_cpus, p->vcpus);
	int root_keeps = pick_cpu(free_cpus, NULL),
	    prefix_keeps = pick_highest_cpu(free_cpus, NULL);
	int emu = root_keeps < 0 ? -1 : cpu_list_next(free_cpus, root_keeps);
	if (emu < 0 || emu >= prefix_keeps)
		return 0;
	_cleanup_cpu_list_ struct cpu_list *e = cpu_list_new(0), *vm = cpu_list_dup(p->vcpus);
	if (!e || !vm || cpu_list_add(e, (unsigned)emu) < 0 || cpu_list_add(vm, (unsigned)emu) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	struct cg2_plan try = {.vcpus = p->vcpus, .emulator = e, .vm = vm};
	if (!partitions_possible(h, &try, others_part)) {
		free(try.why_not);
		return 0;
	}
	cpu_list_free(p->emulator);
	cpu_list_free(p->vm);
	cpu_list_free(p->prefix);
	free(p->why_not);
	p->emulator = TAKE_PTR(e);
	p->vm = TAKE_PTR(vm);
	p->prefix = try.prefix;
	p->why_not = NULL;
	p->partitions = p->emulator_chosen = true;
	return 0;
}

int cg2_plan_build(const struct cg2_host *h, const struct isolation_plan *req, enum ql_isolate mode,
		   struct cg2_plan *ret, struct ql_error *err)
{
	struct cg2_plan p = {0};
	_cleanup_cpu_list_ struct cpu_list *others_part = cpu_list_new(0);
	if (!others_part)
		return ql_error_set(err, ENOMEM, "out of memory");
	p.prefix_was_root = h->n_others > 0 && h->prefix_partition == CG2_PART_ROOT;
	int r = plan_cpus(h, req, &p, others_part, err);
	/* Emulator CPUs without vcpu_pinning (a libvirt <emulatorpin> alone imports so): qemu is
	 * only confined to them, as cpuset v1 does. isolate_cpus is about the vCPUs' CPUs, and a
	 * partition here would take the emulator CPUs from every other task instead. */
	p.emulator_only = r == 0 && cpu_list_is_empty(p.vcpus);
	if (r == 0 && mode != QL_ISOLATE_FALSE && !p.emulator_only)
		p.partitions = partitions_possible(h, &p, others_part);
	if (r == 0 && mode == QL_ISOLATE_TRUE && !p.partitions && !p.emulator_only &&
	    !req->emulator_cpus && h->n_others == 0)
		r = emulator_for_partitions(h, &p, others_part, err);
	if (r == 0 && mode == QL_ISOLATE_TRUE && !p.partitions && !p.emulator_only)
		r = ql_error_set(err, EINVAL,
				 "isolate_cpus: true, but cgroup v2 cannot form CPU partitions: %s",
				 p.why_not ? p.why_not : "unknown reason");
	if (r == 0 && p.prefix_was_root && !p.partitions)
		r = widen_partitioned_prefix(h, &p, err);
	if (r < 0) {
		cg2_plan_done(&p);
		return r;
	}
	*ret = p;
	return 0;
}

int cg2_plan_shrunk_prefix(const struct cpu_list *cur, const struct cpu_list *const *vm_cpus,
			   size_t n, struct cpu_list **ret)
{
	*ret = NULL;
	_cleanup_cpu_list_ struct cpu_list *keep = cpu_list_new(0);
	if (!keep)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!vm_cpus[i] || cpu_list_is_empty(vm_cpus[i]))
			return 0; /* a VM relying on inheritance: leave the prefix as it is */
		if (cpu_list_merge(keep, vm_cpus[i]) < 0)
			return -ENOMEM;
	}
	/* the highest, as the prefix's spare was picked when it was made: it stays where it was,
	 * and the low CPUs go back first */
	int spare = pick_highest_cpu(cur, keep);
	if (spare < 0)
		return 0;
	if (cpu_list_add(keep, (unsigned)spare) < 0)
		return -ENOMEM;
	if (!cpu_list_equal(keep, cur))
		*ret = TAKE_PTR(keep);
	return 0;
}
