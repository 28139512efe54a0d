/* The wait loop: poll() on a signalfd and the QMP socket, with a deadline only while a shutdown
 * step or a rescan is due. */
#include "supervise.h"

#include "memtrim.h"
#include "notify.h"

#include <poll.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>

#define QUIT_GRACE_MS 5000
#define SIGINT_GRACE_MS 2000
/* How often a woken guest's power button is pressed (see press_after_wakeup). */
#define WOKEN_PRESS_MS 1000

static const int rescan_after_ms[] = {100, 1000, 5000};
/* Without rescans, when the start-up heap and code are given back (memtrim): never right after
 * cont, where it would compete with qemu's main thread for the pool's CPU. With rescans it
 * happens after the last one. */
#define TRIM_AFTER_MS 1000

int supervise_signals_setup(sigset_t *ret_old_mask, int *ret_sigfd, struct ql_error *err)
{
	sigset_t mask;
	sigemptyset(&mask);
	/* A stop signal our caller ignores stays ignored (nohup's SIGHUP, SIGINT in a script's
	 * background job), as in any program: blocked, the kernel would queue it for the signalfd
	 * all the same. */
	static const int stop_signals[] = {SIGTERM, SIGINT, SIGHUP};
	for (size_t i = 0; i < ELEMENTSOF(stop_signals); i++) {
		struct sigaction old;
		if (sigaction(stop_signals[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			sigaddset(&mask, stop_signals[i]);
	}
	sigaddset(&mask, SIGCHLD);
	/* An ignored SIGCHLD, which exec keeps from a parent, would have the kernel reap qemu
	 * itself: every waitpid would fail with ECHILD and qemu's status be lost. */
	signal(SIGCHLD, SIG_DFL);
	/* A write to a qemu that just died must be an EPIPE, not our death. */
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &mask, ret_old_mask) < 0)
		return ql_error_set_errno(err, errno, "sigprocmask");
	int fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return ql_error_set_errno(err, errno, "signalfd");
	*ret_sigfd = fd;
	return 0;
}

static bool is_stop_signal(int sig)
{
	return sig == SIGTERM || sig == SIGINT || sig == SIGHUP;
}

int supervise_take_stop_signal(int sigfd)
{
	struct signalfd_siginfo si;
	int stop = 0;
	while (read(sigfd, &si, sizeof(si)) == sizeof(si))
		if (is_stop_signal((int)si.ssi_signo) && !stop)
			stop = (int)si.ssi_signo;
	return stop;
}

enum stage {
	STAGE_RUNNING,
	STAGE_SIGINT_GRACE, /* a terminal's Ctrl-C reached qemu as well; let it quit itself */
	STAGE_POWERDOWN,
	STAGE_QUIT,
	STAGE_KILLED,
};

struct loop {
	const struct supervise_params *p;
	struct qmp *qmp;
	enum stage stage;
	int64_t deadline; /* -1: none */
	bool waking;	  /* the guest slept at the stop signal and was woken to power down */
	int64_t press_at; /* the next press of a woken guest's power button; -1: not pressed yet */
	size_t next_rescan;
	int64_t started;
	bool trimmed;
};

static void send_or_signal(struct loop *l, const char *command, int fallback_signal)
{
	struct ql_error e = {0};
	if (!l->qmp || qmp_send(l->qmp, command, &e) < 0)
		kill(l->p->pid, fallback_signal);
	ql_error_clear(&e);
}

/* Moves one rung down the ladder. */
static void escalate(struct loop *l)
{
	const struct supervise_params *p = l->p;
	int64_t now = now_ms();

	switch (l->stage) {
	case STAGE_RUNNING:
	case STAGE_SIGINT_GRACE:
		if (*p->guest_running && p->shutdown_timeout > 0 && l->qmp) {
			/* asleep, it hears no power button: qemu presses none into S3 */
			l->waking = *p->guest_suspended;
			const char *cmd = l->waking ? "system_wakeup" : "system_powerdown";
			ql_log(p->log, QL_LOG_INFO, "%s (%s), waiting up to %us",
			       l->waking ? "waking the sleeping guest to power it down"
					 : "asking the guest to power down",
			       cmd, p->shutdown_timeout);
			send_or_signal(l, cmd, SIGTERM);
			l->stage = STAGE_POWERDOWN;
			l->deadline = now + (int64_t)p->shutdown_timeout * 1000;
			break;
		}
		/* A paused guest cannot react to ACPI: quit at once. */
		__attribute__((fallthrough));
	case STAGE_POWERDOWN:
		ql_log(p->log, QL_LOG_INFO, "telling qemu to quit");
		send_or_signal(l, "quit", SIGTERM);
		l->stage = STAGE_QUIT;
		l->deadline = now + QUIT_GRACE_MS;
		break;
	case STAGE_QUIT:
		ql_log(p->log, QL_LOG_WARNING, "qemu (pid %d) did not quit; killing it",
		       (int)p->pid);
		kill(p->pid, SIGKILL);
		l->stage = STAGE_KILLED;
		l->deadline = -1;
		break;
	case STAGE_KILLED:
		break;
	}
}

/* A woken guest hears its power button only once its OS has resumed: on resume Linux clears the
 * button's status that qemu's wake-up sets, and until it has re-armed the button a press is lost.
 * No event says when that is, so the button is pressed at the wake-up and every WOKEN_PRESS_MS
 * after it until the guest ends or the deadline; a second press while a guest shuts down is
 * ignored (systemd-logind, Windows). A guest that goes back to sleep (its power button suspends
 * it) is not woken again: the deadline has qemu quit. */
static void press_after_wakeup(struct loop *l)
{
	if (l->stage != STAGE_POWERDOWN || !l->qmp)
		return;
	if (*l->p->guest_suspended) {
		if (l->press_at >= 0) {
			ql_log(l->p->log, QL_LOG_INFO,
			       "the guest went back to sleep: waiting for the deadline");
			l->waking = false;
		}
		return;
	}
	int64_t now = now_ms();
	if (l->press_at >= 0 && now < l->press_at)
		return;
	ql_log(l->p->log, l->press_at < 0 ? QL_LOG_INFO : QL_LOG_DEBUG,
	       "the guest is awake: pressing its power button (system_powerdown)%s",
	       l->press_at < 0 ? ", again every second" : "");
	send_or_signal(l, "system_powerdown", SIGTERM);
	l->press_at = now + WOKEN_PRESS_MS;
}

static void on_stop_signal(struct loop *l, int sig)
{
	ql_log(l->p->log, QL_LOG_INFO, "received %s", strsignal(sig));
	if (l->stage == STAGE_RUNNING)
		notify_send("STOPPING=1\nSTATUS=shutting the VM down");
	if (sig == SIGINT && l->stage == STAGE_RUNNING) {
		l->stage = STAGE_SIGINT_GRACE;
		l->deadline = deadline_ms(SIGINT_GRACE_MS);
		return;
	}
	escalate(l);
}

_idle_ static int next_timeout(const struct loop *l)
{
	int64_t now = now_ms(), when = l->deadline;
	if (l->waking && l->press_at >= 0 && (when < 0 || l->press_at < when))
		when = l->press_at;
	if (l->p->rescan && l->next_rescan < ELEMENTSOF(rescan_after_ms)) {
		int64_t r = l->started + rescan_after_ms[l->next_rescan];
		if (when < 0 || r < when)
			when = r;
	}
	if (!l->p->rescan && !l->trimmed && (when < 0 || l->started + TRIM_AFTER_MS < when))
		when = l->started + TRIM_AFTER_MS;
	if (when < 0)
		return -1;
	return when <= now ? 0 : (int)(when - now);
}

_idle_ static void on_timeout(struct loop *l)
{
	int64_t now = now_ms();
	if (l->p->rescan && l->next_rescan < ELEMENTSOF(rescan_after_ms) &&
	    now >= l->started + rescan_after_ms[l->next_rescan]) {
		l->next_rescan++;
		struct ql_error e = {0};
		if (l->p->rescan(l->p->userdata, &e) < 0)
			ql_log(l->p->log, QL_LOG_WARNING, "%s", e.msg ? e.msg : "rescan failed");
		ql_error_clear(&e);
		/* The rescans fault cgroup code back in; after the last one the launcher only
		 * sleeps, so shed it again. */
		if (l->next_rescan == ELEMENTSOF(rescan_after_ms))
			memtrim_after_startup();
	}
	if (!l->p->rescan && !l->trimmed && now >= l->started + TRIM_AFTER_MS) {
		l->trimmed = true;
		memtrim_after_startup();
	}
	if (l->waking)
		press_after_wakeup(l);
	if (l->deadline >= 0 && now >= l->deadline)
		escalate(l);
}

_idle_ int supervise_wait(const struct supervise_params *p, int *ret_wait_status,
			  struct ql_error *err)
{
	struct loop l = {
	    .p = p, .qmp = p->qmp, .deadline = -1, .press_at = -1, .started = now_ms()};

	if (p->pending_signal)
		on_stop_signal(&l, p->pending_signal);

	for (;;) {
		int status;
		pid_t w = waitpid(p->pid, &status, WNOHANG);
		if (w == p->pid) {
			*ret_wait_status = status;
			return 0;
		}
		if (w < 0 && errno != EINTR)
			return ql_error_set_errno(err, errno, "waitpid");

		struct pollfd fds[2] = {
		    {.fd = p->sigfd, .events = POLLIN},
		    {.fd = l.qmp ? qmp_fd(l.qmp) : -1,
		     .events = POLLIN | (l.qmp && qmp_wants_write(l.qmp) ? POLLOUT : 0)},
		};
		int n = poll(fds, 2, next_timeout(&l));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ql_error_set_errno(err, errno, "poll");
		}
		if (n == 0) {
			on_timeout(&l);
			continue;
		}
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(p->sigfd, &si, sizeof(si)) == sizeof(si))
				if (is_stop_signal((int)si.ssi_signo))
					on_stop_signal(&l, (int)si.ssi_signo);
		}
		if (l.qmp && (fds[1].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR))) {
			struct ql_error e = {0};
			if (qmp_process_input(l.qmp, &e) < 0) {
				/* qemu closed QMP: it is exiting; SIGCHLD follows. Stop watching.
				 */
				ql_log(p->log, QL_LOG_INFO, "qemu closed its QMP connection");
				l.qmp = NULL;
			}
			ql_error_clear(&e);
			if (l.waking) /* (the check here: the idle loop's code stays small) */
				press_after_wakeup(&l); /* on its WAKEUP */
		}
		if (l.deadline >= 0 && now_ms() >= l.deadline)
			on_timeout(&l);
	}
}

void supervise_terminate(pid_t pid, struct qmp *qmp, int *ret_wait_status)
{
	struct ql_error e = {0};
	/* qemu may close the channel before its reply to quit arrives; that is success too. */
	int r = qmp ? qmp_execute(qmp, "quit", 2000, &e) : -ENOTCONN;
	if (r < 0 && r != -ECONNRESET)
		kill(pid, SIGTERM);
	ql_error_clear(&e);

	int64_t deadline = deadline_ms(QUIT_GRACE_MS);
	int status = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR))
			break;
		if (now_ms() >= deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		/* SIGCHLD is blocked and consumed by the signalfd; a short sleep is the simple
		 * way to wait here, and this path only runs on a failed start. */
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (ret_wait_status)
		*ret_wait_status = status;
}
