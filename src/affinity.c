/* Isolation backend "affinity": pins with sched_setaffinity(2) only. Needs no cgroups and works
 * unprivileged for the user's own qemu, but does not keep other tasks off the pinned CPUs. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isolation_backend.h"
#include "macro.h"
#include "proc.h"

struct affinity_state {
	const struct ql_logger *log;
	struct cpu_list *original; /* the launcher's own affinity: what qemu inherited */
	pid_t qemu_pid;
	struct vcpu_placement *vcpus;
	size_t n_vcpus;
	struct cpu_list *emulator; /* NULL: non-vCPU threads keep `original` */
	pid_t *keep;		   /* threads the caller places itself (I/O threads) */
	size_t n_keep;
};

/* Sets and reads back. A thread that vanished meanwhile (ESRCH) is reported as -ESRCH. */
static int set_affinity(pid_t tid, const struct cpu_list *cpus, const struct ql_logger *log,
			const char *what, struct ql_error *err)
{
	_cleanup_free_ char *text = cpu_list_format(cpus);
	if (sched_setaffinity(tid, cpus->nbytes, cpus->set) < 0) {
		int e = errno;
		if (e == ESRCH)
			return -ESRCH;
		return ql_error_set_errno(err, e,
					  "setting the CPU affinity of %s (thread %d) to %s", what,
					  (int)tid, text ? text : "?");
	}
	/* The kernel clips a mask to the thread's cpuset; anything else than what we asked for
	 * means the thread is not where the plan says. */
	int r = proc_check_affinity(tid, cpus, err);
	if (r < 0) {
		if (r != -ESRCH)
			ql_error_prefix(err, "%s: ", what);
		return r;
	}
	ql_log(log, QL_LOG_DEBUG, "sched_setaffinity thread %d (%s) -> %s", (int)tid, what,
	       text ? text : "?");
	return 0;
}

static const struct vcpu_placement *find_vcpu(const struct affinity_state *s, pid_t tid)
{
	for (size_t i = 0; i < s->n_vcpus; i++)
		if (s->vcpus[i].tid == tid)
			return &s->vcpus[i];
	return NULL;
}

static void affinity_free_state(void *p)
{
	struct affinity_state *s = p;
	if (!s)
		return;
	cpu_list_free(s->original);
	cpu_list_free(s->emulator);
	free(s->vcpus);
	free(s->keep);
	free(s);
}

static int affinity_probe(const struct isolation_config *cfg, void **ret_state,
			  struct ql_error *err)
{
	struct affinity_state *s = calloc(1, sizeof(*s));
	if (!s)
		return ql_error_set(err, ENOMEM, "out of memory");
	s->log = cfg->log;
	int r = proc_thread_affinity(0, &s->original, err);
	if (r < 0) {
		affinity_free_state(s);
		return r;
	}
	*ret_state = s;
	return 0;
}

static int affinity_usable_cpus(void *state, struct cpu_list **ret, struct ql_error *err)
{
	struct affinity_state *s = state;
	struct cpu_list *l = cpu_list_dup(s->original);
	if (!l)
		return ql_error_set(err, ENOMEM, "out of memory");
	*ret = l;
	return 0;
}

static char *affinity_describe(void *state, const struct isolation_plan *plan)
{
	_cleanup_free_ char *emu =
	    plan->emulator_cpus ? cpu_list_format(plan->emulator_cpus) : NULL;
	char *out = NULL;
	if (asprintf(
		&out,
		"affinity (sched_setaffinity): each vCPU thread gets its host CPU; qemu's other "
		"threads %s%s; other tasks of the host may still run on the pinned CPUs\n",
		emu ? "go to CPUs " : "keep the launcher's affinity", emu ? emu : "") < 0)
		return NULL;
	return out;
}

/* Every thread qemu still has goes back to the launcher's own affinity (which it inherited). */
static int affinity_reset_all(struct affinity_state *s, const struct ql_logger *log,
			      struct ql_error *err)
{
	if (s->qemu_pid <= 0)
		return 0;
	_cleanup_free_ pid_t *tids = NULL;
	size_t n = 0;
	int r = proc_list_tids(s->qemu_pid, &tids, &n, NULL);
	if (r < 0)
		return 0; /* qemu is gone: nothing to undo */
	int ret = 0;
	for (size_t i = 0; i < n; i++) {
		r = set_affinity(tids[i], s->original, log, "qemu thread", err);
		if (r < 0 && r != -ESRCH && ret == 0)
			ret = r;
	}
	return ret;
}

/* Non-vCPU threads go to the emulator CPUs; a new thread inherits its creator's (maybe a
 * vCPU's) mask, so without emulator CPUs they get the original mask. */
static int affinity_place_others(struct affinity_state *s, const struct ql_logger *log,
				 struct ql_error *err)
{
	_cleanup_free_ pid_t *tids = NULL;
	size_t n = 0;
	int r = proc_list_tids(s->qemu_pid, &tids, &n, err);
	if (r < 0)
		return r;
	const struct cpu_list *target = s->emulator ? s->emulator : s->original;
	for (size_t i = 0; i < n; i++) {
		bool keep = find_vcpu(s, tids[i]) != NULL;
		for (size_t k = 0; k < s->n_keep; k++)
			keep |= s->keep[k] == tids[i];
		if (keep)
			continue;
		_cleanup_cpu_list_ struct cpu_list *cur = NULL;
		if (proc_thread_affinity(tids[i], &cur, NULL) < 0)
			continue; /* vanished */
		if (cpu_list_equal(cur, target))
			continue;
		r = set_affinity(tids[i], target, log, "qemu emulator thread", err);
		if (r < 0 && r != -ESRCH)
			return r;
	}
	return 0;
}

static int affinity_apply(void *state, const struct isolation_plan *plan, struct ql_error *err)
{
	struct affinity_state *s = state;
	const struct ql_logger *log = s->log;

	free(s->vcpus);
	cpu_list_free(s->emulator);
	s->emulator = NULL;
	s->vcpus = calloc(plan->n_vcpus ? plan->n_vcpus : 1, sizeof(*s->vcpus));
	if (!s->vcpus)
		return ql_error_set(err, ENOMEM, "out of memory");
	memcpy(s->vcpus, plan->vcpus, plan->n_vcpus * sizeof(*s->vcpus));
	s->n_vcpus = plan->n_vcpus;
	s->qemu_pid = plan->qemu_pid;
	if (plan->emulator_cpus && !(s->emulator = cpu_list_dup(plan->emulator_cpus)))
		return ql_error_set(err, ENOMEM, "out of memory");
	free(s->keep);
	s->n_keep = 0;
	if (!(s->keep = calloc(plan->n_keep ? plan->n_keep : 1, sizeof(pid_t))))
		return ql_error_set(err, ENOMEM, "out of memory");
	memcpy(s->keep, plan->keep_tids, plan->n_keep * sizeof(pid_t));
	s->n_keep = plan->n_keep;

	/* on failure the facade calls release, which resets every thread */
	for (size_t i = 0; i < s->n_vcpus; i++) {
		_cleanup_cpu_list_ struct cpu_list *one = cpu_list_of_one(s->vcpus[i].host_cpu);
		if (!one)
			return ql_error_set(err, ENOMEM, "out of memory");
		char what[32];
		snprintf(what, sizeof(what), "vCPU %d", s->vcpus[i].cpu_index);
		int r = set_affinity(s->vcpus[i].tid, one, log, what, err);
		if (r == -ESRCH)
			return ql_error_set(err, ESRCH, "vCPU %d (thread %d) vanished",
					    s->vcpus[i].cpu_index, (int)s->vcpus[i].tid);
		if (r < 0)
			return r;
	}
	return s->emulator ? affinity_place_others(s, log, err) : 0;
}

static int affinity_rescan(void *state, struct ql_error *err)
{
	struct affinity_state *s = state;
	if (s->qemu_pid <= 0)
		return 0;
	return affinity_place_others(s, s->log, err);
}

/* The release resets qemu's threads by listing its pid: reaped, that pid may be another
 * process's. */
static void affinity_qemu_reaped(void *state)
{
	((struct affinity_state *)state)->qemu_pid = 0;
}

static int affinity_release(void *state, struct ql_error *err)
{
	struct affinity_state *s = state;
	int r = affinity_reset_all(s, s->log, err);
	s->qemu_pid = 0;
	return r;
}

const struct isolation_backend isolation_backend_affinity = {
    .name = "affinity",
    .isolates = false,
    .probe = affinity_probe,
    .usable_cpus = affinity_usable_cpus,
    .describe = affinity_describe,
    .apply = affinity_apply,
    .rescan = affinity_rescan,
    .qemu_reaped = affinity_qemu_reaped,
    .release = affinity_release,
    .free_state = affinity_free_state,
};
