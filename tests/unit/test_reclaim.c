/* Unit tests of the guardian's undo description: reclaim_argv's argv parses back (reclaim_parse)
 * to the same fields, with or without sets and journal; anything else is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "macro.h"
#include "reclaim.h"

static void round_trip(const struct reclaim_what *w, struct reclaim_what *back, char ***argv)
{
	struct ql_error err = {0};
	assert_int_equal(reclaim_argv(w, argv, &err), 0);
	assert_string_equal((*argv)[1], RECLAIM_ARG);
	assert_int_equal(reclaim_parse(*argv + 2, back, &err), 0);
}

static void test_everything_round_trips(void **state)
{
	(void)state;
	struct reclaim_what w = {.vm_name = "vm-1",
				 .backend = "cpuset v1",
				 .iso = {.mount_path = "/sys/fs/cgroup/cpuset/t x",
					 .cgroup2_root = "/sys/fs/cgroup",
					 .prefix = "qemu",
					 .mode = QL_ISOLATE_TRUE,
					 .may_mount = true},
				 .journal_dir = "/run/qemu-launcher/journal",
				 .log_level = 2,
				 .careful = true};
	_cleanup_strv_free_ char **argv = NULL;
	struct reclaim_what b;
	round_trip(&w, &b, &argv);
	assert_string_equal(b.vm_name, "vm-1");
	assert_string_equal(b.iso.vm_name, "vm-1");
	assert_string_equal(b.backend, "cpuset v1");
	assert_string_equal(b.iso.mount_path, "/sys/fs/cgroup/cpuset/t x");
	assert_string_equal(b.iso.cgroup2_root, "/sys/fs/cgroup");
	assert_string_equal(b.iso.prefix, "qemu");
	assert_int_equal(b.iso.mode, QL_ISOLATE_TRUE);
	assert_true(b.iso.may_mount);
	assert_string_equal(b.journal_dir, "/run/qemu-launcher/journal");
	assert_int_equal(b.log_level, 2);
	assert_true(b.careful);
}

static void test_nothing_but_the_name(void **state)
{
	(void)state;
	struct reclaim_what w = {.vm_name = "vm", .log_level = 0};
	_cleanup_strv_free_ char **argv = NULL;
	struct reclaim_what b;
	round_trip(&w, &b, &argv);
	assert_string_equal(b.vm_name, "vm");
	assert_null(b.backend);
	assert_null(b.journal_dir);
	assert_int_equal(b.log_level, 0);
	assert_false(b.careful);
}

static void refused(const char *const *args)
{
	struct ql_error err = {0};
	struct reclaim_what b;
	assert_int_equal(reclaim_parse((char *const *)args, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, RECLAIM_ARG));
	ql_error_clear(&err);
}

static void test_anything_else_refused(void **state)
{
	(void)state;
	refused((const char *const[]){"name=vm", "bogus=1", NULL});
	refused((const char *const[]){"name=vm", "no-equals", NULL});
	refused((const char *const[]){"name=vm", "isolate=9", NULL});
	refused((const char *const[]){"name=vm", "log=3", NULL});
	refused((const char *const[]){"name=vm", "log=", NULL});
	refused((const char *const[]){"name=vm", "careful=10", NULL});
	refused((const char *const[]){"backend=cpuset v1", NULL}); /* no name */
	refused((const char *const[]){NULL});
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_everything_round_trips),
	    cmocka_unit_test(test_nothing_but_the_name),
	    cmocka_unit_test(test_anything_else_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
