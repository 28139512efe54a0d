/* PR_SCHED_CORE wrappers: create, share and read back core-scheduling cookies of threads, with
 * "the kernel has no core scheduling" told apart from other failures. */
#include "sched_core.h"

#include <errno.h>
#include <pthread.h>
#include <sys/prctl.h>

#ifndef PR_SCHED_CORE
#define PR_SCHED_CORE 62
#define PR_SCHED_CORE_GET 0
#define PR_SCHED_CORE_CREATE 1
#define PR_SCHED_CORE_SHARE_TO 2
#define PR_SCHED_CORE_SHARE_FROM 3
#endif
/* enum pid_type in the kernel: the cookie goes to one thread only */
#define SCOPE_THREAD 0

static int core_prctl(unsigned long cmd, pid_t tid, unsigned long arg)
{
	if (prctl(PR_SCHED_CORE, cmd, (unsigned long)tid, SCOPE_THREAD, arg) < 0)
		return -errno;
	return 0;
}

/* Why core scheduling is unusable, when it is: a kernel without CONFIG_SCHED_CORE does not know
 * the option (EINVAL); one with it refuses every command on a host without SMT (ENODEV,
 * kernel/sched/core_sched.c). A GET on ourselves has no other way to fail with those. */
static int unavailable(struct ql_error *err)
{
	uint64_t cookie = 0;
	int r = core_prctl(PR_SCHED_CORE_GET, 0, (unsigned long)&cookie);
	if (r == -EINVAL)
		return ql_error_set(err, EOPNOTSUPP,
				    "the kernel has no core scheduling (PR_SCHED_CORE needs Linux "
				    ">= 5.14 built with CONFIG_SCHED_CORE)");
	if (r == -ENODEV)
		return ql_error_set(err, EOPNOTSUPP,
				    "the kernel has no core scheduling here: the host has no SMT "
				    "(or it is switched off), so there are no siblings to share");
	return 0;
}

/* A failed command: unavailable, else the command's own error. */
static int command_failed(int r, const char *what, pid_t tid, struct ql_error *err)
{
	if ((r == -EINVAL || r == -ENODEV) && unavailable(err) < 0)
		return -EOPNOTSUPP;
	if (r == -ESRCH)
		return ql_error_set(err, ESRCH, "core scheduling: %s thread %d: no such thread",
				    what, (int)tid);
	return ql_error_set_errno(err, -r, "core scheduling: %s thread %d", what, (int)tid);
}

int sched_core_available(struct ql_error *err)
{
	return unavailable(err);
}

int sched_core_create(pid_t tid, struct ql_error *err)
{
	int r = core_prctl(PR_SCHED_CORE_CREATE, tid, 0);
	return r < 0 ? command_failed(r, "creating a cookie for", tid, err) : 0;
}

int sched_core_get(pid_t tid, uint64_t *ret_cookie, struct ql_error *err)
{
	uint64_t cookie = 0; /* the kernel wants an 8-byte aligned address */
	int r = core_prctl(PR_SCHED_CORE_GET, tid, (unsigned long)&cookie);
	if (r < 0)
		return command_failed(r, "reading the cookie of", tid, err);
	*ret_cookie = cookie;
	return 0;
}

struct share_job {
	pid_t from;
	const pid_t *tids;
	size_t n;
	int r;
	pid_t failed_tid;
};

static void *share_thread(void *arg)
{
	struct share_job *job = arg;
	job->failed_tid = job->from;
	job->r = core_prctl(PR_SCHED_CORE_SHARE_FROM, job->from, 0);
	for (size_t i = 0; i < job->n && job->r == 0; i++) {
		job->failed_tid = job->tids[i];
		job->r = core_prctl(PR_SCHED_CORE_SHARE_TO, job->tids[i], 0);
	}
	return NULL;
}

int sched_core_share(pid_t from, const pid_t *tids, size_t n, struct ql_error *err)
{
	struct share_job job = {.from = from, .tids = tids, .n = n};
	pthread_t th;
	int r = pthread_create(&th, NULL, share_thread, &job);
	if (r != 0)
		return ql_error_set_errno(err, r, "core scheduling: starting a helper thread");
	pthread_join(th, NULL);
	if (job.r < 0)
		return command_failed(job.r,
				      job.failed_tid == from ? "taking the cookie of"
							     : "sharing a cookie with",
				      job.failed_tid, err);
	return 0;
}
