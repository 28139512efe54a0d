/* Drives src/sched_core.c inside the TCG guest (which has SMT): one cookie created for a thread,
 * shared to a second one, read back on both; the calling thread keeps none. Prints one line:
 * "absent: REASON", "ok COOKIE", or "fail: WHY". */
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sched_core.h"

static pid_t tids[2];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int ready, stop;

static void *worker(void *arg)
{
	pthread_mutex_lock(&lock);
	tids[(long)arg] = (pid_t)syscall(SYS_gettid);
	ready++;
	pthread_cond_broadcast(&cond);
	while (!stop)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	return NULL;
}

int main(void)
{
	struct ql_error err = {0};
	if (sched_core_available(&err) < 0) {
		printf("absent: %s\n", err.msg);
		return 0;
	}
	pthread_t th[2];
	for (long i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	pthread_mutex_lock(&lock);
	while (ready < 2)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);

	uint64_t a = 0, b = 0, self = 1;
	int r = sched_core_create(tids[0], &err);
	if (r == 0)
		r = sched_core_share(tids[0], &tids[1], 1, &err);
	if (r == 0)
		r = sched_core_get(tids[0], &a, &err);
	if (r == 0)
		r = sched_core_get(tids[1], &b, &err);
	if (r == 0)
		r = sched_core_get((pid_t)syscall(SYS_gettid), &self, &err);
	if (r < 0)
		printf("fail: %s\n", err.msg);
	else if (a == 0 || a != b || self != 0)
		printf("fail: cookies %llx %llx, the caller's %llx\n", (unsigned long long)a,
		       (unsigned long long)b, (unsigned long long)self);
	else
		printf("ok %llx\n", (unsigned long long)a);

	pthread_mutex_lock(&lock);
	stop = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	return 0;
}
