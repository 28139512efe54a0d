/* Per-thread scheduling policy with sched_setattr(2) (raw syscall: glibc 2.36 has no wrapper),
 * always with SCHED_FLAG_RESET_ON_FORK so qemu's helper threads do not inherit real-time. */
#include "vcpu_sched.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SCHED_FLAG_RESET_ON_FORK
#define SCHED_FLAG_RESET_ON_FORK 0x01
#endif
#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif
#define CAP_SYS_NICE_BIT 23

/* The kernel's struct sched_attr, version 0 (48 bytes). Defined here because <linux/sched/types.h>
 * and glibc's <sched.h> do not mix well across versions. */
struct kernel_sched_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;
	uint64_t sched_deadline;
	uint64_t sched_period;
};

static int sys_sched_setattr(pid_t tid, struct kernel_sched_attr *attr)
{
	return (int)syscall(SYS_sched_setattr, tid, attr, 0);
}

static int sys_sched_getattr(pid_t tid, struct kernel_sched_attr *attr)
{
	return (int)syscall(SYS_sched_getattr, tid, attr, sizeof(*attr), 0);
}

/* Each policy's kernel number and the name messages use for it (the definition's names are
 * ql_sched_policy_name()). Indexed by enum ql_sched_policy. */
static const struct {
	int kernel;
	const char *label;
} policies[] = {
    [QL_SCHED_UNSET] = {-1, "(unset)"},
    [QL_SCHED_OTHER] = {SCHED_OTHER, "SCHED_OTHER"},
    [QL_SCHED_BATCH] = {SCHED_BATCH, "SCHED_BATCH"},
    [QL_SCHED_IDLE] = {SCHED_IDLE, "SCHED_IDLE"},
    [QL_SCHED_FIFO] = {SCHED_FIFO, "SCHED_FIFO"},
    [QL_SCHED_RR] = {SCHED_RR, "SCHED_RR"},
    [QL_SCHED_DEADLINE] = {SCHED_DEADLINE, "SCHED_DEADLINE"},
};

static int kernel_policy(enum ql_sched_policy p)
{
	return (size_t)p < ELEMENTSOF(policies) ? policies[p].kernel : -1;
}

static const char *policy_label(enum ql_sched_policy p)
{
	return (size_t)p < ELEMENTSOF(policies) ? policies[p].label : "(unset)";
}

enum ql_sched_policy sched_policy_of_kernel(int policy)
{
	for (size_t i = 0; i < ELEMENTSOF(policies); i++)
		if (policies[i].kernel == policy && policy >= 0)
			return (enum ql_sched_policy)i;
	return QL_SCHED_UNSET;
}

bool sched_policy_is_realtime(enum ql_sched_policy p)
{
	return p == QL_SCHED_FIFO || p == QL_SCHED_RR;
}

void sched_params_from_definition(const struct definition *d, struct sched_params *ret)
{
	struct sched_params sp = {.policy = d->scheduler};
	if (d->has_priority && sched_policy_is_realtime(d->scheduler))
		sp.priority = d->priority;
	if (d->scheduler == QL_SCHED_DEADLINE) {
		sp.runtime = d->sched_runtime;
		sp.deadline = d->sched_deadline;
		sp.period = d->sched_period;
	}
	*ret = sp;
}

static bool have_cap_sys_nice(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return false;
	char line[256];
	bool have = false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "CapEff:", 7) == 0) {
			unsigned long long caps = strtoull(line + 7, NULL, 16);
			have = (caps >> CAP_SYS_NICE_BIT) & 1;
			break;
		}
	}
	fclose(f);
	return have;
}

bool sched_rt_runtime_us(long *ret)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/sys/kernel/sched_rt_runtime_us", "re");
	return f && fscanf(f, "%ld", ret) == 1;
}

int sched_save(pid_t tid, struct sched_saved *ret, struct ql_error *err)
{
	struct kernel_sched_attr a = {.size = sizeof(a)};
	if (sys_sched_getattr(tid, &a) < 0)
		return ql_error_set_errno(err, errno, "reading the scheduling policy of thread %d",
					  (int)tid);
	*ret = (struct sched_saved){
	    .policy = a.sched_policy,
	    .flags = a.sched_flags,
	    .nice = a.sched_nice,
	    .priority = a.sched_priority,
	    .runtime = a.sched_runtime,
	    .deadline = a.sched_deadline,
	    .period = a.sched_period,
	};
	return 0;
}

static int explain_setattr_error(int errnum, const struct sched_params *sp, const char *what,
				 struct ql_error *err)
{
	const char *label = policy_label(sp->policy);
	if (errnum == EPERM && !have_cap_sys_nice())
		return ql_error_set(err, EPERM, "setting %s on %s needs CAP_SYS_NICE (run as root)",
				    label, what);
	if (errnum == EPERM && sp->policy == QL_SCHED_DEADLINE)
		return ql_error_set(err, EPERM,
				    "setting SCHED_DEADLINE on %s was refused: the kernel only "
				    "admits deadline threads whose CPU affinity spans their whole "
				    "root domain, so a pinned deadline vCPU needs an exclusive "
				    "cpuset",
				    what);
	if (errnum == EPERM)
		return ql_error_set(err, EPERM,
				    "setting %s on %s was refused although CAP_SYS_NICE is held: "
				    "the thread's cpu cgroup probably has no real-time budget "
				    "(cpu.rt_runtime_us = 0)",
				    label, what);
	if (errnum == EBUSY && sp->policy == QL_SCHED_DEADLINE)
		return ql_error_set(err, EBUSY,
				    "setting SCHED_DEADLINE on %s: the kernel's admission control "
				    "refused runtime %" PRIu64 " ns / period %" PRIu64
				    " ns (not enough deadline bandwidth on its CPUs)",
				    what, sp->runtime, sp->period ? sp->period : sp->deadline);
	return ql_error_set_errno(err, errnum, "setting %s priority %d on %s (thread)", label,
				  sp->priority, what);
}

int sched_apply(pid_t tid, const struct sched_params *sp, const char *what, struct ql_error *err)
{
	int policy = kernel_policy(sp->policy);
	if (policy < 0)
		return 0;

	/* Keep the thread's nice value: sched_setattr would otherwise reset it to 0. */
	struct kernel_sched_attr cur = {.size = sizeof(cur)};
	if (sys_sched_getattr(tid, &cur) < 0)
		return ql_error_set_errno(
		    err, errno, "reading the scheduling policy of %s (thread %d)", what, (int)tid);

	struct kernel_sched_attr a = {
	    .size = sizeof(a),
	    .sched_policy = (uint32_t)policy,
	    .sched_flags = SCHED_FLAG_RESET_ON_FORK,
	    .sched_nice = cur.sched_nice,
	};
	if (sched_policy_is_realtime(sp->policy))
		a.sched_priority = (uint32_t)sp->priority;
	if (sp->policy == QL_SCHED_DEADLINE) {
		a.sched_nice = 0;
		a.sched_runtime = sp->runtime;
		a.sched_deadline = sp->deadline;
		a.sched_period = sp->period;
	}
	if (sys_sched_setattr(tid, &a) < 0)
		return explain_setattr_error(errno, sp, what, err);

	struct kernel_sched_attr back = {.size = sizeof(back)};
	if (sys_sched_getattr(tid, &back) < 0)
		return ql_error_set_errno(err, errno, "reading back the scheduling policy of %s",
					  what);
	bool ok = back.sched_policy == a.sched_policy && back.sched_priority == a.sched_priority &&
		  (back.sched_flags & SCHED_FLAG_RESET_ON_FORK);
	if (sp->policy == QL_SCHED_DEADLINE)
		ok = ok && back.sched_runtime == a.sched_runtime &&
		     back.sched_deadline == a.sched_deadline &&
		     /* the kernel reports period = deadline when none was given */
		     (a.sched_period == 0 || back.sched_period == a.sched_period);
	if (!ok)
		return ql_error_set(
		    err, EIO,
		    "%s (thread %d) reads back policy %u priority %u flags 0x%" PRIx64
		    " after setting %s priority %d",
		    what, (int)tid, back.sched_policy, back.sched_priority, back.sched_flags,
		    policy_label(sp->policy), sp->priority);
	return 0;
}

int sched_restore(pid_t tid, const struct sched_saved *saved, struct ql_error *err)
{
	struct kernel_sched_attr a = {
	    .size = sizeof(a),
	    .sched_policy = saved->policy,
	    .sched_flags = saved->flags & SCHED_FLAG_RESET_ON_FORK,
	    .sched_nice = saved->nice,
	    .sched_priority = saved->priority,
	    .sched_runtime = saved->runtime,
	    .sched_deadline = saved->deadline,
	    .sched_period = saved->period,
	};
	if (sys_sched_setattr(tid, &a) < 0) {
		if (errno == ESRCH)
			return 0;
		return ql_error_set_errno(err, errno,
					  "restoring the scheduling policy of thread %d", (int)tid);
	}
	return 0;
}
