/* Supervision of a running qemu: waits for it while draining QMP, turns SIGTERM/SIGHUP/SIGINT
 * into the graceful shutdown ladder (powerdown, a sleeping guest woken first -> quit -> SIGKILL),
 * runs scheduled rescans.
 * Event driven: no wake-ups while nothing happens. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "log.h"
#include "qmp.h"

/* Blocks SIGTERM, SIGINT and SIGHUP (each unless the caller ignores it) and SIGCHLD (set to its
 * default action), ignores SIGPIPE and returns a signalfd for them; ret_old_mask receives the mask
 * qemu should get back. */
int supervise_signals_setup(sigset_t *ret_old_mask, int *ret_sigfd, struct ql_error *err);

/* Non-blocking: the terminating signal (SIGTERM/SIGINT/SIGHUP) that arrived, 0 if none; other
 * signals read meanwhile (SIGCHLD) are left for the caller's waitpid. */
int supervise_take_stop_signal(int sigfd);

struct supervise_params {
	pid_t pid;
	struct qmp *qmp; /* may be NULL (QMP already gone) */
	int sigfd;
	/* false while paused/prelaunch: stopping is immediate. The caller's, kept up to date
	 * from qemu's events while supervise_wait reads them. */
	const bool *guest_running;
	/* true while the guest sleeps (qemu's SUSPEND, until WAKEUP): a stop signal wakes it
	 * before it asks it to power down. The caller's, kept up to date the same way. */
	const bool *guest_suspended;
	unsigned shutdown_timeout; /* seconds to wait after system_powerdown */
	int pending_signal;	   /* a stop signal taken before supervision began, or 0 */
	/* Called ~0.1 s, 1 s and 5 s after the start (threads qemu creates late). */
	int (*rescan)(void *userdata, struct ql_error *err);
	void *userdata;
	const struct ql_logger *log;
};

/* Returns once qemu has been reaped, with its wait status. */
int supervise_wait(const struct supervise_params *p, int *ret_wait_status, struct ql_error *err);

/* Ends qemu quickly (quit over QMP, then SIGKILL after a few seconds) and reaps it; for failures
 * during startup. */
void supervise_terminate(pid_t pid, struct qmp *qmp, int *ret_wait_status);
