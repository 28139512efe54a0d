/* Unit tests of the PR_SCHED_CORE wrappers against this kernel: where it has no core scheduling
 * (no CONFIG_SCHED_CORE: EINVAL; no SMT: ENODEV) every call must say so plainly; where it has,
 * a cookie is created and read back on this thread. Sharing one with other threads is shown in
 * the guest (tests/guest/coredrive.c), whose kernel has core scheduling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sched_core.h"

#ifndef PR_SCHED_CORE
#define PR_SCHED_CORE 62
#endif

/* The kernel's own answer, asked without the module: -errno of a GET on ourselves. */
static int raw_get(void)
{
	uint64_t cookie = 0;
	return prctl(PR_SCHED_CORE, 0 /* GET */, 0, 0 /* thread */, (unsigned long)&cookie) < 0
		   ? -errno
		   : 0;
}

static pid_t self_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void test_refusal_when_absent(void **state)
{
	int raw = raw_get();
	assert_true(raw == -EINVAL || raw == -ENODEV);
	struct ql_error err = {0};
	assert_int_equal(sched_core_available(&err), -EOPNOTSUPP);
	assert_non_null(strstr(err.msg, "the kernel has no core scheduling"));
	ql_error_clear(&err);

	assert_int_equal(sched_core_create(self_tid(), &err), -EOPNOTSUPP);
	assert_int_equal(err.code, EOPNOTSUPP);
	assert_non_null(strstr(err.msg, "the kernel has no core scheduling"));
	ql_error_clear(&err);

	uint64_t cookie = 42;
	assert_int_equal(sched_core_get(self_tid(), &cookie, &err), -EOPNOTSUPP);
	assert_int_equal(cookie, 42); /* untouched on failure */
	ql_error_clear(&err);

	pid_t tids[] = {self_tid()};
	assert_int_equal(sched_core_share(self_tid(), tids, 1, &err), -EOPNOTSUPP);
	assert_non_null(strstr(err.msg, "the kernel has no core scheduling"));
	ql_error_clear(&err);
}

static void test_cookies_when_present(void **state)
{
	struct ql_error err = {0};
	assert_int_equal(sched_core_available(&err), 0);
	uint64_t before = 0, after = 0;
	assert_int_equal(sched_core_get(self_tid(), &before, &err), 0);
	assert_int_equal(sched_core_create(self_tid(), &err), 0);
	assert_int_equal(sched_core_get(self_tid(), &after, &err), 0);
	assert_true(after != 0 && after != before);
	/* a missing thread is named */
	assert_int_equal(sched_core_create(0x3fffffff, &err), -ESRCH);
	assert_non_null(strstr(err.msg, "no such thread"));
	ql_error_clear(&err);
}

int main(void)
{
	/* cmocka reports a skip as "not ok # SKIP", so run the test that fits this kernel: the
	 * other path is exercised on a kernel that has (or lacks) core scheduling */
	const struct CMUnitTest absent[] = {cmocka_unit_test(test_refusal_when_absent)};
	const struct CMUnitTest present[] = {cmocka_unit_test(test_cookies_when_present)};
	if (raw_get() == 0)
		return cmocka_run_group_tests(present, NULL, NULL);
	return cmocka_run_group_tests(absent, NULL, NULL);
}
