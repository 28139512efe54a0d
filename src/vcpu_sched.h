/* Scheduling policy of single threads (vCPUs) through sched_setattr(2), read back after every
 * change. Named vcpu_sched.h, not sched.h: with -Isrc a local sched.h would shadow <sched.h>. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "definition.h"
#include "error.h"

struct sched_params {
	enum ql_sched_policy policy;	    /* QL_SCHED_UNSET: nothing to do */
	int priority;			    /* fifo/rr: 1..99; others: 0 */
	uint64_t runtime, deadline, period; /* ns, deadline only */
};

/* A thread's scheduling attributes as the kernel reports them, to restore them on undo. */
struct sched_saved {
	uint32_t policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
};

/* Fills params from the definition's launcher keys. */
void sched_params_from_definition(const struct definition *d, struct sched_params *ret);

/* Saves the thread's current attributes. */
int sched_save(pid_t tid, struct sched_saved *ret, struct ql_error *err);

/* Sets policy/priority (deadline: runtime/deadline/period) with SCHED_FLAG_RESET_ON_FORK, keeping
 * the thread's nice value, then reads the attributes back and compares. `what` names the thread
 * in messages ("vCPU 0"). EPERM explains the missing capability. */
int sched_apply(pid_t tid, const struct sched_params *sp, const char *what, struct ql_error *err);

/* Puts saved attributes back (best effort on undo; a vanished thread is not an error). */
int sched_restore(pid_t tid, const struct sched_saved *saved, struct ql_error *err);

/* True for SCHED_FIFO and SCHED_RR (the policies that can starve a shared CPU). */
bool sched_policy_is_realtime(enum ql_sched_policy p);

/* The policy a kernel SCHED_* number (without SCHED_RESET_ON_FORK) is; QL_SCHED_UNSET when it is
 * none we know. */
enum ql_sched_policy sched_policy_of_kernel(int policy);

/* The throttling setting (kernel.sched_rt_runtime_us: -1 is "no throttling") into *ret; false
 * when unreadable. For warnings. */
bool sched_rt_runtime_us(long *ret);
