/* flock with a bound: the cross-launcher locks (the cpuset hierarchy's, hugepage start-ups') are
 * waited for a while, then the wait fails naming the process that holds them. */
#pragma once

#include "error.h"

/* flock(fd, LOCK_EX), tried with a back-off of up to 50 ms between tries for wait_ms. On timeout
 * (ETIMEDOUT) the message names the holder (from /proc/locks), the lock (`what` and its `path`:
 * "the lock on `DIR`"), and ends with `tail` ("" for none). */
int lock_wait(int fd, int wait_ms, const char *what, const char *path, const char *tail,
	      struct ql_error *err);
