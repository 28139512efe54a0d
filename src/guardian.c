/* The guardian of one run (see guardian.h). It holds one end of a socket pair whose other end only
 * the launcher has: EOF without the dismiss message means the launcher died (or handed over).
 * qemu and the launcher are watched through pidfds (opened before the clone, or qemu's passed
 * over the socket once qemu exists), so no pid it waits for or signals can have been reused.
 *
 * Until the launcher is gone the guardian runs in the launcher's address space, on a stack of
 * its own, with the launcher's thread pointer: it must not touch libc state (errno, malloc,
 * stdio), so it makes its system calls itself (sys()) and reads only its own block (struct
 * block), which the launcher never changes after the clone. Once the launcher is gone it
 * replaces itself with the launcher's binary (execveat on a descriptor opened before the clone,
 * so an upgrade of the file meanwhile changes nothing), which undoes the run's host changes as
 * the argv it was given says. */
#include "guardian.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "macro.h"
#include "privileges.h"

/* How long qemu may take to end on its parent-death SIGTERM before the guardian kills it. */
#define QEMU_GRACE_MS 2000
/* The guardian's stack: its frames are a few hundred bytes; a guard page lies below it. */
#define STACK_SIZE (64u << 10)
#define MAX_CLOSE_FDS 8
/* The undo's whole environment: never the caller's (LD_PRELOAD and all, as root). */
#define UNDO_ENV "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

#define MSG_QEMU 'q'
#define MSG_DISMISS 'x'

/* Everything the guardian reads, at the top of its mapping, above its stack: written before the
 * clone, never changed after it. */
struct block {
	int sock;	    /* its end of the socket pair */
	int qemu_pidfd;	    /* -1 until qemu exists */
	int launcher_pidfd; /* to wait for the launcher's end after an EOF */
	int exe_fd;	    /* the launcher's binary (O_PATH) */
	bool become_root;   /* setuid: ruid 0 too, so the caller cannot signal it */
	int close_fds[MAX_CLOSE_FDS + 1];
	char **argv;
	char *envp[2];
	char strings[]; /* argv's and envp's */
};

/* The launcher's side: only its end of the socket. The guardian's mapping (stack and block) is
 * never unmapped once it runs: it outlives the launcher's run, dismissed or not. */
struct guardian {
	int sock; /* the launcher's end: MSG_QEMU with a pidfd, MSG_DISMISS, or EOF */
};

/* ---- the guardian's side: system calls that leave errno (the launcher's) alone ---- */

#if defined(__x86_64__) || defined(__aarch64__)
#define SHARES_MEMORY 1
#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))

/* A system call's result, -errno on failure; no libc involved. */
NO_SANITIZE static long sys(long nr, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
#else
	register long x8 __asm__("x8") = nr, x0 __asm__("x0") = a, x1 __asm__("x1") = b,
			 x2 __asm__("x2") = c, x3 __asm__("x3") = d, x4 __asm__("x4") = e,
			 x5 __asm__("x5") = f;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory", "cc");
	return x0;
#endif
}
#else
/* Elsewhere the guardian is a fork, with memory of its own: libc's wrapper will do. */
#define SHARES_MEMORY 0
#define NO_SANITIZE
static long sys(long nr, long a, long b, long c, long d, long e, long f)
{
	long r = syscall(nr, a, b, c, d, e, f);
	return r < 0 ? -errno : r;
}
#endif

#define SYS1(nr, a) sys(nr, (long)(a), 0, 0, 0, 0, 0)

/* Waits (no timeout: timeout_ms < 0) until the process behind pidfd has ended: true once it
 * has, false when the time ran out. */
NO_SANITIZE static bool wait_ended(int pidfd, int timeout_ms)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	struct timespec ts = {.tv_sec = timeout_ms / 1000,
			      .tv_nsec = (timeout_ms % 1000) * 1000000L};
	long n;
	/* ppoll writes the time left back into ts: a retry after EINTR waits only for the rest */
	do
		n = sys(SYS_ppoll, (long)&p, 1, timeout_ms < 0 ? 0 : (long)&ts, 0, 0, 0);
	while (n == -EINTR);
	return n > 0;
}

/* One message byte, and the fd passed with it (SCM_RIGHTS) into *ret_fd (-1: none). */
NO_SANITIZE static long recv_msg(int sock, char *ret_byte, int *ret_fd)
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
	long n = sys(SYS_recvmsg, sock, (long)&msg, MSG_CMSG_CLOEXEC, 0, 0, 0);
	/* one descriptor at most is ever sent (CMSG_NXTHDR would be a call into libc) */
	struct cmsghdr *h = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
	    h->cmsg_len == CMSG_LEN(sizeof(int)))
		*ret_fd = *(const int *)(const void *)CMSG_DATA(h);
	return n;
}

NO_SANITIZE static _noreturn_ void leave(int status)
{
	for (;;)
		SYS1(SYS_exit, status);
}

NO_SANITIZE static int guard(void *arg)
{
	const struct block *b = arg;
	/* nothing for stdin/stdout: a caller reading the launcher's output to its end must not
	 * wait for the guardian (stderr stays, for the undo's messages) */
	long null = sys(SYS_openat, AT_FDCWD, (long)"/dev/null", O_RDWR | O_CLOEXEC, 0, 0, 0);
	if (null >= 0) {
		sys(SYS_dup3, null, 0, 0, 0, 0, 0);
		sys(SYS_dup3, null, 1, 0, 0, 0, 0);
		SYS1(SYS_close, null);
	}
	for (const int *fd = b->close_fds; *fd >= 0; fd++)
		SYS1(SYS_close, *fd);
	/* Only the launcher's death or its dismissal ends the wait: not the terminal's signals to
	 * the process group, and (setuid) not the caller, who may not signal a root process. Nor
	 * SIGPIPE: its undo (reclaim mode, after the exec, which keeps ignored signals ignored)
	 * logs to a stderr nobody may read any more. The kernel's sigaction: handler, flags,
	 * restorer, mask. */
	static const int ignored[] = {SIGINT,  SIGHUP,	SIGTERM, SIGQUIT,
				      SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE};
	const unsigned long ign[4] = {(unsigned long)SIG_IGN, 0, 0, 0};
	for (size_t i = 0; i < ELEMENTSOF(ignored); i++)
		sys(SYS_rt_sigaction, ignored[i], (long)ign, 0, 8, 0, 0);
	if (b->become_root)
		sys(SYS_setresuid, 0, 0, 0, 0, 0, 0);

	int qemu = b->qemu_pidfd;
	for (;;) {
		char byte = 0;
		int fd;
		long n = recv_msg(b->sock, &byte, &fd);
		if (n == -EINTR)
			continue;
		if (n == 1 && byte == MSG_DISMISS)
			leave(0); /* the launcher unwound by itself */
		if (n == 1 && byte == MSG_QEMU && fd >= 0) {
			if (qemu >= 0)
				SYS1(SYS_close, qemu);
			qemu = fd;
			continue;
		}
		if (fd >= 0)
			SYS1(SYS_close, fd);
		if (n <= 0)
			break; /* EOF: the launcher died, or handed its undo over */
	}
	/* The undo must find the launcher gone: its journal records are given back as a dead
	 * launcher's, and its memory is no longer shared with anyone but this process. */
	wait_ended(b->launcher_pidfd, -1);
	/* Without a pidfd qemu never started, or had just been forked: its parent-death signal
	 * ends it (hugepages it still holds become surplus pages, freed when it exits). */
	if (qemu >= 0 && !wait_ended(qemu, QEMU_GRACE_MS)) {
		sys(SYS_pidfd_send_signal, qemu, SIGKILL, 0, 0, 0, 0);
		wait_ended(qemu, -1);
	}
	sys(SYS_execveat, b->exe_fd, (long)"", (long)b->argv, (long)b->envp, AT_EMPTY_PATH, 0);
	static const char failed[] = "qemu-launcher: warning: after the launcher was killed: "
				     "cannot run its undo; the next start gives the host back\n";
	sys(SYS_write, 2, (long)failed, sizeof(failed) - 1, 0, 0, 0);
	leave(1);
}

/* ---- the launcher's side ---- */

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

/* The guardian's mapping: a guard page, its stack, then its block with argv copied in (no
 * environment: the undo must not run with the caller's, LD_PRELOAD and all, as root). */
static struct block *map_block(char *const *argv, void **ret_map, size_t *ret_size)
{
	size_t n = 0, bytes = sizeof(UNDO_ENV);
	for (; argv[n]; n++)
		bytes += strlen(argv[n]) + 1;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t block = sizeof(struct block) + bytes + (n + 1) * sizeof(char *) + _Alignof(char *);
	size_t size = page + STACK_SIZE + (block + page - 1) / page * page;
	char *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return NULL;
	(void)mprotect(map, page, PROT_NONE);
	struct block *b = (struct block *)(void *)(map + page + STACK_SIZE);
	uintptr_t at = ((uintptr_t)b->strings + bytes + _Alignof(char *) - 1) &
		       ~(uintptr_t)(_Alignof(char *) - 1);
	b->argv = (char **)at;
	char *s = b->strings;
	b->envp[0] = s;
	s = stpcpy(s, UNDO_ENV) + 1;
	b->envp[1] = NULL;
	for (size_t i = 0; i < n; i++) {
		b->argv[i] = s;
		s = stpcpy(s, argv[i]) + 1;
	}
	b->argv[n] = NULL;
	*ret_map = map;
	*ret_size = size;
	return b;
}

int guardian_start(pid_t qemu_pid, char *const *undo_argv, const int *close_fds,
		   struct guardian **ret, struct ql_error *err)
{
	size_t n_close = 0;
	while (close_fds && close_fds[n_close] >= 0)
		n_close++;
	/* one slot is the guardian's own socket end */
	if (n_close >= MAX_CLOSE_FDS)
		return ql_error_set(err, E2BIG, "the guardian closes at most %d descriptors",
				    MAX_CLOSE_FDS - 1);
	_cleanup_close_ int qemu = qemu_pid > 0 ? pidfd_open_(qemu_pid) : -1;
	if (qemu_pid > 0 && qemu < 0)
		return ql_error_set_errno(err, errno, "pidfd_open of qemu (pid %d)", (int)qemu_pid);
	_cleanup_close_ int self = pidfd_open_(getpid());
	if (self < 0)
		return ql_error_set_errno(err, errno, "pidfd_open of the launcher");
	_cleanup_close_ int exe = open("/proc/self/exe", O_PATH | O_CLOEXEC);
	if (exe < 0)
		return ql_error_set_errno(err, errno, "open /proc/self/exe");
	int fds[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
		return ql_error_set_errno(err, errno, "socketpair");
	_cleanup_close_ int theirs = fds[0], ours = fds[1];
	_cleanup_free_ struct guardian *g = calloc(1, sizeof(*g));
	if (!g)
		return ql_error_set(err, ENOMEM, "out of memory");
	void *map = NULL;
	size_t map_size = 0;
	struct block *b = map_block(undo_argv, &map, &map_size);
	if (!b)
		return ql_error_set_errno(err, errno, "mapping the guardian's stack");
	b->sock = theirs;
	b->qemu_pidfd = qemu;
	b->launcher_pidfd = self;
	b->exe_fd = exe;
	b->become_root = geteuid() == 0 && privileges_caller_uid() != 0;
	size_t n = 0;
	b->close_fds[n++] = ours;
	for (size_t i = 0; i < n_close; i++)
		b->close_fds[n++] = close_fds[i];
	b->close_fds[n] = -1;

	pid_t pid = -1;
	/* Born shielded (setuid: real uid root, the terminal's stop signals ignored): until its
	 * own setresuid the caller could stop or kill it, and a stopped guardian keeps the run's
	 * records from every later start. */
	privileges_shield();
	if (SHARES_MEMORY && !RUNNING_ON_VALGRIND) /* valgrind runs no clone but a thread's */
		pid = clone(guard, b, CLONE_VM | SIGCHLD, b);
	if (pid < 0) {
		pid = fork();
		if (pid == 0)
			_exit(guard(b));
	}
	privileges_unshield();
	if (pid < 0) {
		int e = errno;
		munmap(map, map_size);
		return ql_error_set_errno(err, e, "starting the guardian");
	}
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
	/* EOF without the dismiss message: what the launcher's death looks like. The mapping
	 * stays: the guardian runs on it until the launcher has exited. */
	close(g->sock);
	free(g);
}

void guardian_dismiss(struct guardian *g)
{
	if (!g)
		return;
	/* Not waited for: it reads the message (before the EOF that follows it) and exits on its
	 * own, a few microseconds on. Waiting cost the launcher's exit ~0.1 ms, two wake-ups of a
	 * CPU (bench/RESULTS.md). And while it lives, the launcher's exit leaves it the address
	 * space they share to tear down. Its stack stays mapped for it: the launcher is about to
	 * exit, and a launcher that lives on after its run keeps only that mapping. Its parent
	 * after the launcher's exit (init, or a subreaper) reaps it. */
	(void)send_msg(g->sock, MSG_DISMISS, -1);
	/* Had the message not gone through, the EOF alone would read as the launcher's death: the
	 * guardian then runs the undo once the launcher has exited, and finds nothing left to do
	 * (never wait for it here: it waits for the launcher's end first). */
	close(g->sock);
	free(g);
}
