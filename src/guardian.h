/* A small process that outlives a SIGKILLed launcher: when the launcher dies without dismissing
 * it, it waits for qemu to end (SIGKILL after a grace), then undoes the run's host changes, so
 * the host is not left confined until some other launcher happens to start.
 *
 * It shares the launcher's memory (clone with CLONE_VM, no new address space) and only waits
 * until then: a fork of the launcher cost each start 2.3-2.9 ms of wall time and 4-5 ms of CPU
 * beside qemu's start-up on this project's 2-CPU benchmark host (page tables copied, then every
 * page the launcher writes faulted again; bench/RESULTS.md). The undo itself runs in a fresh
 * exec of the launcher's own binary with the argv it was given (reclaim.h), once the launcher
 * is gone. Where the process cannot share memory (valgrind, or an architecture without the
 * raw system calls below) it is a fork that does the same. */
#pragma once

#include <sys/types.h>

#include "error.h"

struct guardian;

/* Starts the guardian for qemu_pid, or (qemu_pid 0) before qemu exists: before the first host
 * change, so a launcher killed right after it is covered too; guardian_watch names qemu then.
 * undo_argv (NULL-terminated, argv[0] first) is what the launcher's binary is run with after the
 * launcher's death and qemu's end; it is copied. close_fds (-1 terminated, at most 7: -E2BIG
 * otherwise) are closed in the guardian (the launcher's QMP channel and signalfd must not live
 * on in it). */
int guardian_start(pid_t qemu_pid, char *const *undo_argv, const int *close_fds,
		   struct guardian **ret, struct ql_error *err);

/* qemu has started: the guardian waits for it to end (SIGKILL after a grace) before undoing. */
int guardian_watch(struct guardian *g, pid_t qemu_pid, struct ql_error *err);

/* The launcher unwound by itself: the guardian exits without acting, on its own a moment later
 * (not waited for; its stack stays mapped for it). Accepts NULL. */
void guardian_dismiss(struct guardian *g);
static inline void guardian_dismissp(struct guardian **g)
{
	guardian_dismiss(*g);
}
#define _cleanup_guardian_ _cleanup_(guardian_dismissp)

/* The launcher's own undo failed (its release gave up waiting for another launcher's lock): the
 * guardian undoes the changes once the launcher has exited, as after a SIGKILL. Accepts NULL. */
void guardian_hand_over(struct guardian *g);
