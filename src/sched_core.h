/* Core scheduling (PR_SCHED_CORE, Linux >= 5.14 with CONFIG_SCHED_CORE): threads with one cookie
 * may run on the SMT siblings of one core together, never beside a thread of another cookie. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* 0 when core scheduling can be used here; -EOPNOTSUPP otherwise, err saying why ("the kernel
 * has no core scheduling": built without CONFIG_SCHED_CORE; or no SMT to schedule). */
int sched_core_available(struct ql_error *err);

/* Gives thread tid a new cookie of its own (PR_SCHED_CORE_CREATE, scope thread). */
int sched_core_create(pid_t tid, struct ql_error *err);

/* Gives each of tids[] the cookie of thread `from`: one cookie for a whole VM. A short-lived
 * helper thread pulls the cookie (SHARE_FROM) and pushes it (SHARE_TO), so no thread of the
 * launcher keeps a VM's cookie. */
int sched_core_share(pid_t from, const pid_t *tids, size_t n, struct ql_error *err);

/* Thread tid's cookie (0: none), for reading back what was set. */
int sched_core_get(pid_t tid, uint64_t *ret_cookie, struct ql_error *err);
