/* The guardian of one run (see guardian.h). It holds one end of a socket pair whose other end only
 * the launcher has: EOF without the dismiss message means the launcher died. qemu is watched
 * through a pidfd (opened before the fork, or passed over the socket once qemu exists), so the
 * pid it signals cannot have been reused. */
#include "guardian.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"

/* How long qemu may take to end on its parent-death SIGTERM before the guardian kills it. */
#define QEMU_GRACE_MS 2000

struct guardian {
	pid_t pid;
	int sock; /* the launcher's end: MSG_QEMU with a pidfd, MSG_DISMISS, or EOF */
};

#define MSG_QEMU 'q'
#define MSG_DISMISS 'x'

/* One message byte, and the fd passed with it (SCM_RIGHTS) into *ret_fd (-1: none). */
static ssize_t recv_msg(int sock, char *ret_byte, int *ret_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov = {.iov_base = ret_byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = c.buf,
			     .msg_controllen = sizeof(c.buf)};
	*ret_fd = -1;
	ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	for (struct cmsghdr *h = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; h; h = CMSG_NXTHDR(&msg, h))
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
		    h->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(ret_fd, CMSG_DATA(h), sizeof(int));
	return n;
}

static int send_msg(int sock, char byte, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&c, 0, sizeof(c));
		msg.msg_control = c.buf;
		msg.msg_controllen = sizeof(c.buf);
		struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof(int));
	}
	ssize_t n;
	while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return n == 1 ? 0 : -errno;
}

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

static _noreturn_ void guard(int sock, int pidfd, int (*undo)(void *, struct ql_error *),
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
	for (;;) {
		char byte = 0;
		int fd;
		ssize_t n = recv_msg(sock, &byte, &fd);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 1 && byte == MSG_DISMISS)
			_exit(0); /* the launcher unwound by itself */
		if (n == 1 && byte == MSG_QEMU && fd >= 0) {
			if (pidfd >= 0)
				close(pidfd);
			pidfd = fd;
			continue;
		}
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			break; /* EOF: the launcher died */
	}
	/* Without a pidfd qemu never started, or had just been forked: its parent-death signal
	 * ends it (hugepages it still holds become surplus pages, freed when it exits). */
	if (pidfd >= 0 && !wait_ended(pidfd, QEMU_GRACE_MS)) {
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
	_cleanup_close_ int pidfd = qemu_pid > 0 ? pidfd_open_(qemu_pid) : -1;
	if (qemu_pid > 0 && pidfd < 0)
		return ql_error_set_errno(err, errno, "pidfd_open of qemu (pid %d)", (int)qemu_pid);
	int fds[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
		return ql_error_set_errno(err, errno, "socketpair");
	_cleanup_close_ int theirs = fds[0], ours = fds[1];
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
		close(ours);
		for (const int *fd = close_fds; fd && *fd >= 0; fd++)
			close(*fd);
		guard(theirs, pidfd, undo, userdata, log);
	}
	g->pid = pid;
	g->sock = TAKE_FD(ours);
	*ret = TAKE_PTR(g);
	return 0;
}

int guardian_watch(struct guardian *g, pid_t qemu_pid, struct ql_error *err)
{
	_cleanup_close_ int pidfd = pidfd_open_(qemu_pid);
	if (pidfd < 0)
		return ql_error_set_errno(err, errno, "pidfd_open of qemu (pid %d)", (int)qemu_pid);
	int r = send_msg(g->sock, MSG_QEMU, pidfd);
	if (r < 0)
		return ql_error_set_errno(err, -r, "telling the guardian about qemu");
	return 0;
}

void guardian_hand_over(struct guardian *g)
{
	if (!g)
		return;
	/* EOF without the dismiss message: what the launcher's death looks like */
	close(g->sock);
	free(g);
}

void guardian_dismiss(struct guardian *g)
{
	if (!g)
		return;
	(void)send_msg(g->sock, MSG_DISMISS, -1);
	close(g->sock);
	/* it exits at once; reap it (SIGCHLD is blocked and read through the signalfd) */
	while (waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
		;
	free(g);
}
