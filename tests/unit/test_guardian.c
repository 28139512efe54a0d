/* Unit tests of guardian_start's refusals: a list of descriptors to close longer than the
 * guardian's block holds is refused with E2BIG, before anything is started or opened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>

#include "error.h"
#include "guardian.h"

static size_t open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	size_t n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_too_many_fds_refused(void **state)
{
	char *argv[] = {"qemu-launcher", NULL};
	const int fds[] = {10, 11, 12, 13, 14, 15, 16, 17, -1};
	struct guardian *g = NULL;
	struct ql_error err = {0};
	size_t before = open_fds();
	assert_int_equal(guardian_start(0, argv, fds, &g, &err), -E2BIG);
	assert_null(g);
	assert_non_null(err.msg);
	assert_int_equal(open_fds(), before); /* no pidfd, socket or mapping left open */
	ql_error_clear(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_too_many_fds_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
