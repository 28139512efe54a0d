/* A small process that outlives a SIGKILLed launcher: when the launcher dies without dismissing
 * it, it waits for qemu to end (SIGKILL after a grace), then undoes the run's host changes, so
 * the host is not left confined until some other launcher happens to start. */
#pragma once

#include <sys/types.h>

#include "error.h"
#include "log.h"

struct guardian;

/* Forks the guardian for qemu_pid, or (qemu_pid 0) before qemu exists: before the first host
 * change, so a launcher killed right after it is covered too; guardian_watch names qemu then.
 * undo(userdata) runs in the guardian after the launcher's death and qemu's end. close_fds
 * (-1 terminated) are closed in the guardian (the launcher's QMP channel and signalfd must not
 * live on in it). */
int guardian_start(pid_t qemu_pid, int (*undo)(void *userdata, struct ql_error *err),
		   void *userdata, const int *close_fds, const struct ql_logger *log,
		   struct guardian **ret, struct ql_error *err);

/* qemu has started: the guardian waits for it to end (SIGKILL after a grace) before undoing. */
int guardian_watch(struct guardian *g, pid_t qemu_pid, struct ql_error *err);

/* The launcher unwound by itself: the guardian exits without acting. Accepts NULL. */
void guardian_dismiss(struct guardian *g);
static inline void guardian_dismissp(struct guardian **g)
{
	guardian_dismiss(*g);
}
#define _cleanup_guardian_ _cleanup_(guardian_dismissp)

/* The launcher's own undo failed (its release gave up waiting for another launcher's lock): the
 * guardian undoes the changes now, as after a SIGKILL, outliving the launcher if need be. Accepts
 * NULL. */
void guardian_hand_over(struct guardian *g);
