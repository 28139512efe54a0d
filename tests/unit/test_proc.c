/* Unit tests of thread holds against the real kernel: the test's own threads and a child
 * process play qemu's threads and a stranger. A held thread of this process passes, a thread id of
 * another process is named as the bad one, a thread that ended is found by the one poll, and the
 * sorted listing answers membership. A thread's files open only for a thread of the process named,
 * and read only while that thread lives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"

struct gate {
	pthread_mutex_t m;
	pthread_cond_t c;
	pid_t tid;
	bool go;
};

static void *parked(void *arg)
{
	struct gate *g = arg;
	pthread_mutex_lock(&g->m);
	g->tid = (pid_t)syscall(SYS_gettid);
	pthread_cond_broadcast(&g->c);
	while (!g->go)
		pthread_cond_wait(&g->c, &g->m);
	pthread_mutex_unlock(&g->m);
	return NULL;
}

static void start_parked(struct gate *g, pthread_t *t)
{
	*g = (struct gate){.m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER};
	assert_int_equal(pthread_create(t, NULL, parked, g), 0);
	pthread_mutex_lock(&g->m);
	while (!g->tid)
		pthread_cond_wait(&g->c, &g->m);
	pthread_mutex_unlock(&g->m);
}

static void end_parked(struct gate *g, pthread_t t)
{
	pthread_mutex_lock(&g->m);
	g->go = true;
	pthread_cond_broadcast(&g->c);
	pthread_mutex_unlock(&g->m);
	assert_int_equal(pthread_join(t, NULL), 0);
}

/* pthread_join returns once the kernel has cleared the thread's id (as it releases its memory),
 * a moment before it marks the thread exited for pidfds: a loaded host stretches that moment.
 * What proc_threads_ended says once it does (waiting 5 s at most). */
static ssize_t ended_after_join(pid_t pid, const struct proc_thread_hold *h, size_t n)
{
	ssize_t r = -1;
	for (int i = 0; i < 5000 && (r = proc_threads_ended(pid, h, n)) < 0; i++)
		usleep(1000);
	return r;
}

static void unhold_all(struct proc_thread_hold *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		proc_thread_unhold(&h[i]);
}

static void test_held_threads_of_this_process(void **state)
{
	(void)state;
	struct gate g1, g2;
	pthread_t t1, t2;
	start_parked(&g1, &t1);
	start_parked(&g2, &t2);
	pid_t self = getpid();
	struct proc_thread_hold h[3];
	assert_int_equal(proc_thread_hold(self, self, &h[0]), 0);
	assert_int_equal(proc_thread_hold(self, g1.tid, &h[1]), 0);
	assert_int_equal(proc_thread_hold(self, g2.tid, &h[2]), 0);
	size_t bad = 99;
	struct ql_error err = {0};
	assert_int_equal(proc_threads_held_by(self, h, 3, &bad, &err), 0);
	assert_int_equal(bad, 99);
	assert_int_equal(proc_threads_ended(self, h, 3), -1);

	/* the second parked thread ends: the poll names it, and so does the check */
	end_parked(&g2, t2);
	assert_int_equal(ended_after_join(self, h, 3), 2);
	assert_true(proc_thread_ended(self, &h[2]));
	assert_int_equal(proc_threads_held_by(self, h, 3, &bad, &err), -ESRCH);
	assert_int_equal(bad, 2);

	end_parked(&g1, t1);
	assert_int_equal(ended_after_join(self, h, 2), 1);
	unhold_all(h, 3);
	ql_error_clear(&err);
}

static void test_stranger_is_named(void **state)
{
	(void)state;
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	pid_t self = getpid();
	struct proc_thread_hold h[2];
	assert_int_equal(proc_thread_hold(self, self, &h[0]), 0);
	/* a live thread id that is another process's: the hold succeeds, the check names it */
	int hr = proc_thread_hold(self, child, &h[1]);
	size_t bad = 99;
	struct ql_error err = {0};
	if (hr == 0) {
		assert_int_equal(proc_threads_held_by(self, h, 2, &bad, &err), -ESRCH);
		assert_int_equal(bad, 1);
		proc_thread_unhold(&h[1]);
	} else {
		/* no thread pidfds: the start time lookup refuses it at once */
		assert_int_equal(hr, -ESRCH);
	}
	proc_thread_unhold(&h[0]);
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, NULL, 0), child);

	/* a process that is gone cannot be listed */
	assert_true(proc_threads_held_by(child, h, 0, &bad, &err) < 0);
	assert_non_null(err.msg);
	ql_error_clear(&err);
}

static void test_sorted_listing(void **state)
{
	(void)state;
	struct gate g;
	pthread_t t;
	start_parked(&g, &t);
	pid_t *tids = NULL;
	size_t n = 0;
	struct ql_error err = {0};
	assert_int_equal(proc_list_tids_sorted(getpid(), &tids, &n, &err), 0);
	assert_true(n >= 2);
	for (size_t i = 1; i < n; i++)
		assert_true(tids[i - 1] < tids[i]);
	assert_true(proc_tids_contain(tids, n, getpid()));
	assert_true(proc_tids_contain(tids, n, g.tid));
	assert_false(proc_tids_contain(tids, n, getppid()));
	assert_false(proc_tids_contain(tids, 0, getpid()));
	free(tids);
	end_parked(&g, t);
}

static void test_thread_files(void **state)
{
	(void)state;
	struct gate g;
	pthread_t t;
	start_parked(&g, &t);
	assert_int_equal(pthread_setname_np(t, "CPU 3/TCG"), 0);
	pid_t self = getpid();
	char comm[PROC_COMM_SIZE];
	assert_int_equal(proc_thread_comm(self, g.tid, comm), 0);
	assert_string_equal(comm, "CPU 3/TCG");
	assert_int_equal(proc_qemu_vcpu_index(comm), 3);
	unsigned long long start = 0;
	assert_int_equal(proc_thread_starttime(self, g.tid, &start), 0);
	assert_true(start > 0);

	/* a live thread id of another process: its files are not this process's thread's */
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	int by_comm = proc_thread_comm(self, child, comm);
	int by_open = proc_thread_open(self, child, "status");
	int by_start = proc_thread_starttime(self, child, &start);
	/* ended before any assertion, which would leave it paused for good */
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, NULL, 0), child);
	assert_int_equal(by_comm, -ESRCH);
	assert_int_equal(by_open, -ESRCH);
	assert_int_equal(by_start, -ESRCH);
	assert_true(proc_thread_open(self, child, "comm") < 0);

	/* a file opened while the thread lived reads nothing once it has ended */
	int fd = proc_thread_open(self, g.tid, "comm");
	assert_true(fd >= 0);
	end_parked(&g, t);
	char buf[64];
	ssize_t n = 0;
	for (int i = 0; i < 5000 && (n = pread(fd, buf, sizeof(buf), 0)) > 0; i++)
		usleep(1000);
	assert_int_equal(n, -1);
	assert_int_equal(errno, ESRCH);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_held_threads_of_this_process),
	    cmocka_unit_test(test_stranger_is_named),
	    cmocka_unit_test(test_sorted_listing),
	    cmocka_unit_test(test_thread_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
