/* Unit tests of the pinning orchestration without root: host CPU checks with FILE:LINE:COL,
 * mapping pins onto query-cpus-fast results, and the affinity backend applied to threads of
 * this very process (standing in for qemu's vCPU threads). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pinning.h"
#include "proc.h"

/* A definition with these pins and qemu entries after -nodefaults. */
static struct definition *parse_def_with(const char *pins, const char *qemu)
{
	char text[2048];
	snprintf(text, sizeof(text),
		 "launcher:\n"
		 "  binary: /usr/bin/qemu-system-x86_64\n"
		 "  isolate_cpus: false\n"
		 "%s"
		 "qemu:\n"
		 "- nodefaults\n%s",
		 pins, qemu);
	struct ql_error err = {0};
	struct definition *d = NULL;
	int r = definition_parse("t.yml", text, strlen(text), &d, &err);
	if (r < 0)
		print_error("definition: %s\n", err.msg);
	assert_int_equal(r, 0);
	return d;
}

static struct definition *parse_def(const char *pins)
{
	return parse_def_with(pins, "");
}

static const struct isolation_config cfg = {
    .vm_name = "unit",
    .mount_path = "/nonexistent/cpuset",
    .prefix = "qemu",
    .mode = QL_ISOLATE_FALSE,
};

static void test_nonexistent_cpu_has_position(void **state)
{
	_cleanup_definition_ struct definition *d =
	    parse_def("  vcpu_pinning:\n    0:\n      0:\n        0: 8000\n");
	struct pinning *p = NULL;
	struct ql_error err = {0};
	assert_int_equal(pinning_prepare(d, &cfg, &p, &err), -EINVAL);
	assert_null(p);
	assert_non_null(strstr(err.msg, "t.yml:7:12: vCPU (socket 0 core 0 thread 0): host CPU "
					"8000 does not exist"));
	ql_error_clear(&err);
}

struct worker {
	pthread_t thread;
	pid_t tid;
	int ready;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	pthread_mutex_lock(&w->lock);
	w->tid = (pid_t)syscall(SYS_gettid);
	w->ready = 1;
	pthread_cond_broadcast(&w->cond);
	while (!w->stop)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void worker_start(struct worker *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	assert_int_equal(pthread_create(&w->thread, NULL, worker_main, w), 0);
	pthread_mutex_lock(&w->lock);
	while (!w->ready)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

static void worker_stop(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
}

static struct pinning *prepare_ok(const struct definition *d)
{
	struct pinning *p = NULL;
	struct ql_error err = {0};
	int r = pinning_prepare(d, &cfg, &p, &err);
	if (r < 0)
		print_error("prepare: %s\n", err.msg);
	assert_int_equal(r, 0);
	return p;
}

static void test_missing_vcpu_has_position(void **state)
{
	/* (a nested entry outside -smp is refused before qemu starts: one -smp cannot follow,
	 * with clusters, is left to qemu's answer) */
	_cleanup_definition_ struct definition *d =
	    parse_def("  vcpu_pinning:\n    1:\n      0:\n        0: 0\n");
	struct pinning *early = NULL;
	struct ql_error err = {0};
	assert_int_equal(pinning_prepare(d, &cfg, &early, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.yml:7:12: vCPU (socket 1 core 0 thread 0) is outside "
					"-smp's 1 socket x 1 core x 1 thread"));
	ql_error_clear(&err);
	_cleanup_definition_ struct definition *dc = parse_def_with(
	    "  vcpu_pinning:\n    1:\n      0:\n        0: 0\n", "- smp: 2,clusters=2\n");
	_cleanup_pinning_ struct pinning *p = prepare_ok(dc);
	struct worker w;
	worker_start(&w);
	struct qmp_cpu cpus[] = {{.cpu_index = 0, .thread_id = w.tid, 0, 0, 0, 0}};
	assert_int_equal(pinning_apply(p, getpid(), cpus, 1, NULL, 0, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "t.yml:7:12: vcpu_pinning names vCPU (socket 1 core 0 "
					"thread 0), but qemu has no such vCPU"));
	ql_error_clear(&err);
	worker_stop(&w);
}

static void test_shared_thread_refused(void **state)
{
	_cleanup_definition_ struct definition *d = parse_def("  vcpu_pinning: [ 0, 0 ]\n");
	_cleanup_pinning_ struct pinning *p = prepare_ok(d);
	struct worker w;
	worker_start(&w);
	struct qmp_cpu cpus[] = {{0, w.tid, 0, 0, 0, 0}, {1, w.tid, 0, 1, 0, 0}};
	struct ql_error err = {0};
	assert_int_equal(pinning_apply(p, getpid(), cpus, 2, NULL, 0, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "on one thread"));
	ql_error_clear(&err);
	worker_stop(&w);
}

static void test_foreign_thread_refused(void **state)
{
	_cleanup_definition_ struct definition *d = parse_def("  vcpu_pinning: [ 0 ]\n");
	_cleanup_pinning_ struct pinning *p = prepare_ok(d);
	/* PID 1 is never a thread of this process */
	struct qmp_cpu cpus[] = {{0, 1, 0, 0, 0, 0}};
	struct ql_error err = {0};
	assert_int_equal(pinning_apply(p, getpid(), cpus, 1, NULL, 0, &err), -ESRCH);
	assert_non_null(strstr(err.msg, "not a thread of qemu"));
	ql_error_clear(&err);
}

/* The identity pinning checks before and after placement: a thread's start time, found only
 * under its own process. */
static void test_thread_start_time(void **state)
{
	struct worker w;
	worker_start(&w);
	unsigned long long a = 0, b = 0, self = 0;
	assert_int_equal(proc_thread_starttime(getpid(), w.tid, &a), 0);
	assert_int_equal(proc_thread_starttime(getpid(), w.tid, &b), 0);
	assert_true(a == b);
	assert_int_equal(proc_thread_starttime(getpid(), getpid(), &self), 0);
	assert_true(self <= a); /* the worker started after the process */
	/* a thread of another process is not found under ours */
	assert_int_equal(proc_thread_starttime(getpid(), 1, &a), -ESRCH);
	worker_stop(&w);
}

static int affinity_of(pid_t tid, cpu_set_t *set)
{
	CPU_ZERO(set);
	return sched_getaffinity(tid, sizeof(*set), set);
}

static void test_affinity_apply_and_release(void **state)
{
	_cleanup_definition_ struct definition *d = parse_def("  vcpu_pinning: [ 0 ]\n");
	_cleanup_pinning_ struct pinning *p = prepare_ok(d);
	_cleanup_free_ char *plan = pinning_describe(p);
	assert_non_null(plan);
	assert_non_null(strstr(plan, "vCPU 0 -> host CPU 0"));
	assert_non_null(strstr(plan, "affinity"));

	struct worker vcpu, other;
	worker_start(&vcpu);
	worker_start(&other);
	cpu_set_t before, s;
	assert_int_equal(affinity_of(other.tid, &before), 0);

	struct qmp_cpu cpus[] = {{0, vcpu.tid, -1, -1, -1, -1}};
	struct ql_error err = {0};
	int r = pinning_apply(p, getpid(), cpus, 1, NULL, 0, &err);
	if (r < 0)
		print_error("apply: %s\n", err.msg);
	assert_int_equal(r, 0);
	assert_int_equal(affinity_of(vcpu.tid, &s), 0);
	assert_int_equal(CPU_COUNT(&s), 1);
	assert_true(CPU_ISSET(0, &s));
	assert_int_equal(affinity_of(other.tid, &s), 0);
	assert_true(CPU_EQUAL(&s, &before)); /* no emulator_pinning: others untouched */

	assert_int_equal(pinning_release(p, &err), 0);
	assert_int_equal(affinity_of(vcpu.tid, &s), 0);
	assert_true(CPU_EQUAL(&s, &before)); /* back to the launcher's own affinity */
	worker_stop(&vcpu);
	worker_stop(&other);
}

/* With dies, a nested pin's core counts within its socket across the dies, as the cpu-index
 * order does (qemu's core-id counts within a die): with 2 cores a die, core 2 is die 1's core 0. */
static void test_nested_pin_across_dies(void **state)
{
	_cleanup_definition_ struct definition *d =
	    parse_def_with("  vcpu_pinning:\n    0:\n      2:\n        0: 0\n",
			   "- smp: 4,sockets=1,dies=2,cores=2,threads=1\n");
	_cleanup_pinning_ struct pinning *p = prepare_ok(d);
	struct worker die0, die1;
	worker_start(&die0);
	worker_start(&die1);
	cpu_set_t before, s;
	assert_int_equal(affinity_of(die0.tid, &before), 0);
	/* cpu-index, thread, socket-id, core-id, thread-id, die-id */
	struct qmp_cpu cpus[] = {{0, die0.tid, 0, 0, 0, 0}, {2, die1.tid, 0, 0, 0, 1}};
	struct ql_error err = {0};
	int r = pinning_apply(p, getpid(), cpus, 2, NULL, 0, &err);
	if (r < 0)
		print_error("apply: %s\n", err.msg);
	assert_int_equal(r, 0);
	assert_int_equal(affinity_of(die1.tid, &s), 0);
	assert_int_equal(CPU_COUNT(&s), 1);
	assert_true(CPU_ISSET(0, &s));
	assert_int_equal(affinity_of(die0.tid, &s), 0);
	assert_true(CPU_EQUAL(&s, &before)); /* die 0's core 0 is not the pin's */
	assert_int_equal(pinning_release(p, &err), 0);
	worker_stop(&die0);
	worker_stop(&die1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nonexistent_cpu_has_position),
	    cmocka_unit_test(test_missing_vcpu_has_position),
	    cmocka_unit_test(test_shared_thread_refused),
	    cmocka_unit_test(test_foreign_thread_refused),
	    cmocka_unit_test(test_thread_start_time),
	    cmocka_unit_test(test_affinity_apply_and_release),
	    cmocka_unit_test(test_nested_pin_across_dies),
	};
	return cmocka_run_group_tests_name("pinning_plan", tests, NULL, NULL);
}
