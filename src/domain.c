/* Names of the domain enums: one string table (see domain.h). */
#include "domain.h"

#include <string.h>

#include "macro.h"

static const char *const sched_names[] = {
    [QL_SCHED_UNSET] = NULL,	      [QL_SCHED_OTHER] = "other", [QL_SCHED_BATCH] = "batch",
    [QL_SCHED_IDLE] = "idle",	      [QL_SCHED_FIFO] = "fifo",	  [QL_SCHED_RR] = "rr",
    [QL_SCHED_DEADLINE] = "deadline",
};

const char *ql_sched_policy_name(enum ql_sched_policy p)
{
	if ((size_t)p < ELEMENTSOF(sched_names) && sched_names[p])
		return sched_names[p];
	return "unset";
}

enum ql_sched_policy ql_sched_policy_from_name(const char *name)
{
	for (size_t p = 1; p < ELEMENTSOF(sched_names); p++)
		if (streq(name, sched_names[p]))
			return (enum ql_sched_policy)p;
	return QL_SCHED_UNSET;
}
