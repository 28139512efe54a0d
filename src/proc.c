/* Threads of a process and their affinity, from /proc and sched_getaffinity(2). */
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"

int proc_list_tids(pid_t pid, pid_t **ret, size_t *ret_n, struct ql_error *err)
{
	char path[32];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	_cleanup_closedir_ DIR *d = opendir(path);
	if (!d)
		return ql_error_set_errno(err, errno, "listing the threads of process %d",
					  (int)pid);
	_cleanup_free_ pid_t *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long t = strtol(de->d_name, &end, 10);
		if (*end || t <= 0 || t > INT_MAX)
			continue;
		if (n >= PROC_MAX_THREADS)
			return ql_error_set(err, E2BIG, "process %d has more than %d threads",
					    (int)pid, PROC_MAX_THREADS);
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			pid_t *nv = reallocarray(v, ncap, sizeof(*v));
			if (!nv)
				return ql_error_set(err, ENOMEM, "out of memory");
			v = nv;
			cap = ncap;
		}
		v[n++] = (pid_t)t;
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* Through /proc/<tid>, never /proc/<pid>/task/<tid>: a file opened there stays in the dentry
 * cache below the process's directory, and reaping the process walks that directory. Measured:
 * the reap took 0.3-8 ms instead of 8-64 us in 16 of 100 launches, in none through /proc/<tid>
 * (bench/RESULTS.md). Most likely why, from a trace: qemu's last thread tells the parent it has
 * ended before it drops its own entries; the launcher, woken, preempted it on its CPU and walked
 * over those entries, already on that thread's list, until the scheduler's tick let it go on.
 * The check comes after the open: a read that succeeds then read a thread that lived when it was
 * pid's, and a thread id names one live thread. It stats /proc/<pid>/task/<tid>, the thread's
 * directory alone, none of its files: with that, no reap of those 100 went over 64 us. */
int proc_thread_open(pid_t pid, pid_t tid, const char *file)
{
	if (pid <= 0 || tid <= 0)
		return -ESRCH;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)tid, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!proc_thread_belongs_to(pid, tid)) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}

int proc_thread_comm(pid_t pid, pid_t tid, char buf[PROC_COMM_SIZE])
{
	_cleanup_close_ int fd = proc_thread_open(pid, tid, "comm");
	if (fd < 0)
		return fd;
	ssize_t n = read(fd, buf, PROC_COMM_SIZE - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int proc_qemu_vcpu_index(const char *comm)
{
	if (strncmp(comm, "CPU ", 4) != 0 || comm[4] < '0' || comm[4] > '9')
		return -1;
	char *end;
	long v = strtol(comm + 4, &end, 10);
	return *end == '/' && v < PROC_MAX_VCPU_INDEX ? (int)v : -1;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

void proc_sort_tids(pid_t *v, size_t n)
{
	if (n > 1) /* an empty list may be NULL, which qsort must not get */
		qsort(v, n, sizeof(*v), cmp_pid);
}

int proc_list_tids_sorted(pid_t pid, pid_t **ret, size_t *ret_n, struct ql_error *err)
{
	int r = proc_list_tids(pid, ret, ret_n, err);
	if (r == 0)
		proc_sort_tids(*ret, *ret_n);
	return r;
}

bool proc_tids_contain(const pid_t *sorted, size_t n, pid_t tid)
{
	/* bsearch's base must not be NULL, even for no elements (an empty list may be) */
	return n && bsearch(&tid, sorted, n, sizeof(*sorted), cmp_pid) != NULL;
}

bool proc_thread_belongs_to(pid_t pid, pid_t tid)
{
	if (pid <= 0 || tid <= 0)
		return false;
	char path[48];
	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)pid, (int)tid);
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int proc_thread_affinity(pid_t tid, struct cpu_list **ret, struct ql_error *err)
{
	_cleanup_cpu_list_ struct cpu_list *got = cpu_list_new(0);
	if (!got)
		return ql_error_set(err, ENOMEM, "out of memory");
	/* The kernel insists on a mask at least nr_cpu_ids wide; grow once to the maximum. */
	while (sched_getaffinity(tid, got->nbytes, got->set) < 0) {
		if (errno == ESRCH)
			return -ESRCH;
		if (errno != EINVAL || got->nbits >= CPU_LIST_MAX_CPUS)
			return ql_error_set_errno(err, errno, "reading the affinity of thread %d",
						  (int)tid);
		cpu_list_free(got);
		if (!(got = cpu_list_new(CPU_LIST_MAX_CPUS)))
			return ql_error_set(err, ENOMEM, "out of memory");
	}
	*ret = TAKE_PTR(got);
	return 0;
}

static int check_affinity(pid_t tid, const struct cpu_list *want, bool within, struct ql_error *err)
{
	_cleanup_cpu_list_ struct cpu_list *got = NULL;
	int r = proc_thread_affinity(tid, &got, err);
	if (r < 0)
		return r;
	if (within ? cpu_list_is_subset(got, want) && !cpu_list_is_empty(got)
		   : cpu_list_equal(got, want))
		return 0;
	_cleanup_free_ char *g = cpu_list_format(got), *w = cpu_list_format(want);
	return ql_error_set(err, EIO, "thread %d may run on CPUs %s instead of %s%s", (int)tid,
			    g ? g : "?", within ? "within " : "", w ? w : "?");
}

int proc_check_affinity(pid_t tid, const struct cpu_list *want, struct ql_error *err)
{
	return check_affinity(tid, want, false, err);
}

int proc_check_affinity_within(pid_t tid, const struct cpu_list *within, struct ql_error *err)
{
	return check_affinity(tid, within, true, err);
}

pid_t proc_tgid(pid_t tid)
{
	char path[32], line[128];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		int v;
		if (sscanf(line, "Tgid: %d", &v) == 1)
			return v > 0 ? (pid_t)v : 0;
	}
	return 0;
}

int proc_thread_starttime(pid_t pid, pid_t tid, unsigned long long *ret)
{
	char buf[1024];
	_cleanup_close_ int fd = proc_thread_open(pid, tid, "stat");
	if (fd < 0)
		return -ESRCH;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	/* comm (field 2) may hold spaces and parentheses: count fields after its last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return -EPROTO;
	int field = 2;
	for (p++; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	unsigned long long v;
	if (field != 22 || sscanf(p, "%llu", &v) != 1)
		return -EPROTO;
	*ret = v;
	return 0;
}

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* linux/pidfd.h of Linux 6.9 */
#endif

int proc_thread_hold(pid_t pid, pid_t tid, struct proc_thread_hold *ret)
{
	*ret = (struct proc_thread_hold){.tid = tid, .pidfd = -1};
	if (pid <= 0 || tid <= 0)
		return -ESRCH;
	int fd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
	if (fd < 0 && errno == ESRCH)
		return -ESRCH;
	if (fd < 0) /* a kernel without thread pidfds (EINVAL), or no fd left */
		return proc_thread_starttime(pid, tid, &ret->start);
	ret->pidfd = fd;
	return 0;
}

int proc_threads_held_by(pid_t pid, const struct proc_thread_hold *h, size_t n, size_t *ret_bad,
			 struct ql_error *err)
{
	_cleanup_free_ pid_t *tids = NULL;
	size_t n_tids = 0;
	int r = proc_list_tids_sorted(pid, &tids, &n_tids, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (!proc_tids_contain(tids, n_tids, h[i].tid)) {
			*ret_bad = i;
			return -ESRCH;
		}
	ssize_t ended = proc_threads_ended(pid, h, n);
	if (ended >= 0) {
		*ret_bad = (size_t)ended;
		return -ESRCH;
	}
	return 0;
}

bool proc_thread_ended(pid_t pid, const struct proc_thread_hold *h)
{
	if (h->pidfd >= 0) {
		struct pollfd p = {.fd = h->pidfd, .events = POLLIN};
		return poll(&p, 1, 0) != 0; /* readable once the thread exited; errors count too */
	}
	unsigned long long start;
	return proc_thread_starttime(pid, h->tid, &start) < 0 || start != h->start;
}

ssize_t proc_threads_ended(pid_t pid, const struct proc_thread_hold *h, size_t n)
{
	_cleanup_free_ struct pollfd *pfd = calloc(n ? n : 1, sizeof(*pfd));
	/* one poll for every pidfd (a negative fd is skipped, its revents 0) */
	int polled = pfd ? 0 : -1;
	for (size_t i = 0; pfd && i < n; i++)
		pfd[i] = (struct pollfd){.fd = h[i].pidfd, .events = POLLIN};
	if (pfd)
		polled = poll(pfd, n, 0);
	for (size_t i = 0; i < n; i++) {
		bool ended = h[i].pidfd >= 0 && polled >= 0 ? pfd[i].revents != 0
							    : proc_thread_ended(pid, &h[i]);
		if (ended)
			return (ssize_t)i;
	}
	return -1;
}

void proc_thread_unhold(struct proc_thread_hold *h)
{
	if (h->pidfd >= 0)
		close(h->pidfd);
	h->pidfd = -1;
}
