/* The domain's small enums (scheduling policy, isolation mode) and their names: shared by the
 * definition loader and the isolation code without the latter depending on definition.h. */
#pragma once

enum ql_sched_policy {
	QL_SCHED_UNSET = 0,
	QL_SCHED_OTHER,
	QL_SCHED_BATCH,
	QL_SCHED_IDLE,
	QL_SCHED_FIFO,
	QL_SCHED_RR,
	QL_SCHED_DEADLINE,
};

enum ql_isolate {
	QL_ISOLATE_AUTO = 0, /* isolate when a cpuset backend is usable, else affinity */
	QL_ISOLATE_TRUE,     /* require a cpuset backend */
	QL_ISOLATE_FALSE,    /* affinity only */
};

/* The name a definition uses (`fifo`, ...); "unset" for QL_SCHED_UNSET. */
const char *ql_sched_policy_name(enum ql_sched_policy p);

/* The policy a definition's name stands for; QL_SCHED_UNSET when `name` is none of them. */
enum ql_sched_policy ql_sched_policy_from_name(const char *name);
