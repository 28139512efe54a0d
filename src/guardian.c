/* The guardian of one run (see guardian.h). It holds the read end of a pipe whose write end only
 * the launcher has: EOF without the dismiss byte means the launcher died. qemu is watched through
 * a pidfd, so the pid it signals cannot have been reused. */
#include "guardian.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"

/* How long qemu may take to end on its parent-death SIGTERM before the guardian kills it. */
#define QEMU_GRACE_MS 2000

struct guardian {
	pid_t pid;
	int pipe_fd; /* write end; the dismiss byte, then close */
};

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_send_signal_(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* True once the process behind pidfd has ended (or within timeout_ms: false). */
static bool wait_ended(int pidfd, int timeout_ms)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	int n;
	while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	return n > 0;
}

static _noreturn_ void guard(int pipe_fd, int pidfd, int (*undo)(void *, struct ql_error *),
			     void *userdata, const struct ql_logger *log)
{
	/* Only the launcher's death or its dismissal ends the wait: not the terminal's signals to
	 * the process group, and (setuid) not the caller, who may not signal a root process. */
	static const int ignored[] = {SIGINT, SIGHUP, SIGTERM, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU};
	struct sigaction ign = {.sa_handler = SIG_IGN};
	for (size_t i = 0; i < ELEMENTSOF(ignored); i++)
		sigaction(ignored[i], &ign, NULL);
	if (geteuid() == 0 && getuid() != 0)
		(void)setresuid(0, 0, 0);
	char byte;
	ssize_t n;
	while ((n = read(pipe_fd, &byte, 1)) < 0 && errno == EINTR)
		;
	if (n == 1)
		_exit(0); /* dismissed: the launcher unwound by itself */
	if (!wait_ended(pidfd, QEMU_GRACE_MS)) {
		pidfd_send_signal_(pidfd, SIGKILL);
		wait_ended(pidfd, -1);
	}
	struct ql_error err = {0};
	int r = undo(userdata, &err);
	if (r < 0)
		ql_log(log, QL_LOG_WARNING, "after the launcher was killed: %s", err.msg);
	else
		ql_log(log, QL_LOG_INFO, "after the launcher was killed: host changes undone");
	_exit(r < 0 ? 1 : 0);
}

int guardian_start(pid_t qemu_pid, int (*undo)(void *userdata, struct ql_error *err),
		   void *userdata, const int *close_fds, const struct ql_logger *log,
		   struct guardian **ret, struct ql_error *err)
{
	_cleanup_close_ int pidfd = pidfd_open_(qemu_pid);
	if (pidfd < 0)
		return ql_error_set_errno(err, errno, "pidfd_open of qemu (pid %d)", (int)qemu_pid);
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return ql_error_set_errno(err, errno, "pipe");
	_cleanup_close_ int rd = fds[0], wr = fds[1];
	_cleanup_free_ struct guardian *g = calloc(1, sizeof(*g));
	if (!g)
		return ql_error_set(err, ENOMEM, "out of memory");
	pid_t pid = fork();
	if (pid < 0)
		return ql_error_set_errno(err, errno, "fork");
	if (pid == 0) {
		/* nothing for stdin/stdout: a caller reading the launcher's output to its end must
		 * not wait for the guardian (stderr stays, for its one message) */
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		close(wr);
		for (const int *fd = close_fds; fd && *fd >= 0; fd++)
			close(*fd);
		guard(rd, pidfd, undo, userdata, log);
	}
	g->pid = pid;
	g->pipe_fd = TAKE_FD(wr);
	*ret = TAKE_PTR(g);
	return 0;
}

void guardian_hand_over(struct guardian *g)
{
	if (!g)
		return;
	/* EOF without the dismissal byte: what the launcher's death looks like */
	close(g->pipe_fd);
	free(g);
}

void guardian_dismiss(struct guardian *g)
{
	if (!g)
		return;
	char byte = 'x';
	while (write(g->pipe_fd, &byte, 1) < 0 && errno == EINTR)
		;
	close(g->pipe_fd);
	/* it exits at once; reap it (SIGCHLD is blocked and read through the signalfd) */
	while (waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
		;
	free(g);
}
