/* Unit tests of the CPU list parser, formatter and set operations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cpulist.h"

static struct cpu_list *parse_ok(const char *text)
{
	struct ql_error err = {0};
	struct cpu_list *l = NULL;
	int r = cpu_list_parse(text, &l, &err);
	if (r < 0)
		print_error("parse `%s` failed: %s\n", text, err.msg);
	assert_int_equal(r, 0);
	assert_non_null(l);
	assert_null(err.msg);
	return l;
}

static void assert_roundtrip(const char *text, const char *canonical, size_t count)
{
	_cleanup_cpu_list_ struct cpu_list *l = parse_ok(text);
	_cleanup_free_ char *s = cpu_list_format(l);
	assert_non_null(s);
	assert_string_equal(s, canonical);
	assert_int_equal(cpu_list_count(l), count);
	/* The canonical form parses back to the same set. */
	_cleanup_cpu_list_ struct cpu_list *again = parse_ok(s);
	assert_true(cpu_list_equal(l, again));
}

static void test_parse_valid(void **state)
{
	assert_roundtrip("", "", 0);
	assert_roundtrip("\n", "", 0);
	assert_roundtrip("0", "0", 1);
	assert_roundtrip("3", "3", 1);
	assert_roundtrip("0-3", "0-3", 4);
	assert_roundtrip("0-3,8,10-11", "0-3,8,10-11", 7);
	assert_roundtrip("0-3,8,10-11\n", "0-3,8,10-11", 7);
	assert_roundtrip("1 \t\n", "1", 1);
	assert_roundtrip("5-5", "5", 1);
	/* Unordered, overlapping and adjacent parts merge into canonical ranges. */
	assert_roundtrip("8,0-3,2,4", "0-4,8", 6);
	assert_roundtrip("1,0", "0-1", 2);
	assert_roundtrip("0,2,4,6", "0,2,4,6", 4);
	assert_roundtrip("007", "7", 1);
	assert_roundtrip("63,64,127-128", "63-64,127-128", 4);
	assert_roundtrip("8191", "8191", 1);
	assert_roundtrip("0-8191", "0-8191", CPU_LIST_MAX_CPUS);
}

static void test_parse_content(void **state)
{
	_cleanup_cpu_list_ struct cpu_list *l = parse_ok("0-3,8,10-11");
	for (unsigned c = 0; c < 20; c++)
		assert_int_equal(cpu_list_has(l, c), c <= 3 || c == 8 || c == 10 || c == 11);
	assert_false(cpu_list_has(l, 100000));
	assert_int_equal(cpu_list_last(l), 11);
}

static void assert_parse_fails(const char *text, int code, const char *quoted)
{
	struct ql_error err = {0};
	struct cpu_list *l = (struct cpu_list *)0x1;
	int r = cpu_list_parse(text, &l, &err);
	if (r != -code)
		print_error("`%s`: got %d (%s)\n", text, r, err.msg ? err.msg : "");
	assert_int_equal(r, -code);
	assert_int_equal(err.code, code);
	/* ret untouched on failure */
	assert_ptr_equal(l, (struct cpu_list *)0x1);
	assert_non_null(err.msg);
	if (!strstr(err.msg, quoted))
		print_error("message `%s` does not quote `%s`\n", err.msg, quoted);
	assert_non_null(strstr(err.msg, quoted));
	ql_error_clear(&err);
}

static void test_parse_invalid(void **state)
{
	assert_parse_fails("3-1", EINVAL, "`3-1`");
	assert_parse_fails("1,,2", EINVAL, "empty entry");
	assert_parse_fails(",1", EINVAL, "empty entry");
	assert_parse_fails("1,", EINVAL, "empty entry");
	assert_parse_fails("-1", EINVAL, "`-1`");
	assert_parse_fails("+1", EINVAL, "`+1`");
	assert_parse_fails(" 1", EINVAL, "` 1`");
	assert_parse_fails("a", EINVAL, "`a`");
	assert_parse_fails("1-", EINVAL, "`1-`");
	assert_parse_fails("1-a", EINVAL, "`1-a`");
	assert_parse_fails("1-2-3", EINVAL, "`1-2-3`");
	assert_parse_fails("1x", EINVAL, "`1x`");
	assert_parse_fails("1 ,2", EINVAL, "`1 `");
	assert_parse_fails("1, 2", EINVAL, "` 2`");
	assert_parse_fails("0-7:2/4", EINVAL, "`0-7:2/4`");
	assert_parse_fails("0x1", EINVAL, "`0x1`");
	assert_parse_fails("1\n2", EINVAL, "`1\n2`");
	assert_parse_fails("8192", ERANGE, "`8192`");
	assert_parse_fails("0-8192", ERANGE, "`0-8192`");
	assert_parse_fails("4294967296", ERANGE, "`4294967296`");
	assert_parse_fails("18446744073709551616", ERANGE, "`18446744073709551616`");
	assert_parse_fails("1-99999999999999999999999", ERANGE, "`1-99999999999999999999999`");
	/* The message names the whole list too. */
	struct ql_error err = {0};
	struct cpu_list *l = NULL;
	assert_int_equal(cpu_list_parse("0-3,x", &l, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "invalid CPU list `0-3,x`: `x` is not a CPU number or range N-M");
	ql_error_clear(&err);
	/* A NULL error object is allowed. */
	assert_int_equal(cpu_list_parse("9-2", &l, NULL), -EINVAL);
	assert_null(l);
}

static void test_add_remove_grow(void **state)
{
	_cleanup_cpu_list_ struct cpu_list *l = cpu_list_new(0);
	assert_non_null(l);
	assert_true(cpu_list_is_empty(l));
	assert_int_equal(cpu_list_last(l), -1);
	assert_int_equal(cpu_list_next(l, -1), -1);
	size_t small = l->nbits;
	assert_int_equal(l->nbytes, CPU_ALLOC_SIZE(1));

	assert_int_equal(cpu_list_add(l, 5), 0);
	assert_int_equal(cpu_list_add(l, 5000), 0); /* grows */
	assert_true(l->nbits > small);
	assert_true(l->nbits >= 5001);
	assert_int_equal(l->nbytes, CPU_ALLOC_SIZE(l->nbits));
	assert_true(cpu_list_has(l, 5));
	assert_true(cpu_list_has(l, 5000));
	assert_int_equal(cpu_list_count(l), 2);
	assert_int_equal(cpu_list_last(l), 5000);
	assert_int_equal(cpu_list_add(l, CPU_LIST_MAX_CPUS), -ERANGE);
	assert_int_equal(cpu_list_add(l, CPU_LIST_MAX_CPUS - 1), 0);
	assert_int_equal(cpu_list_add(l, 5), 0); /* idempotent */
	assert_int_equal(cpu_list_count(l), 3);

	_cleanup_free_ char *s = cpu_list_format(l);
	assert_string_equal(s, "5,5000,8191");

	cpu_list_remove(l, 5000);
	cpu_list_remove(l, 100000); /* beyond the mask: no-op */
	assert_false(cpu_list_has(l, 5000));
	assert_int_equal(cpu_list_count(l), 2);
	cpu_list_remove(l, 5);
	cpu_list_remove(l, 8191);
	assert_true(cpu_list_is_empty(l));

	assert_null(cpu_list_new(CPU_LIST_MAX_CPUS + 1));
	assert_int_equal(errno, ERANGE);
	cpu_list_free(NULL);
}

static void test_iterate(void **state)
{
	_cleanup_cpu_list_ struct cpu_list *l = parse_ok("0,7-9,64,1000,8191");
	int expected[] = {0, 7, 8, 9, 64, 1000, 8191};
	size_t i = 0;
	for (int c = cpu_list_next(l, -1); c >= 0; c = cpu_list_next(l, c)) {
		assert_true(i < ELEMENTSOF(expected));
		assert_int_equal(c, expected[i++]);
	}
	assert_int_equal(i, ELEMENTSOF(expected));
	assert_int_equal(cpu_list_next(l, 8191), -1);
	assert_int_equal(cpu_list_next(l, 100000), -1);
	assert_int_equal(cpu_list_next(l, 1), 7);
}

static void test_set_ops(void **state)
{
	_cleanup_cpu_list_ struct cpu_list *a = parse_ok("0-3,8");
	_cleanup_cpu_list_ struct cpu_list *big = parse_ok("0-3,8,5000");
	_cleanup_cpu_list_ struct cpu_list *b = parse_ok("2,3");
	_cleanup_cpu_list_ struct cpu_list *empty = parse_ok("");

	/* Sets of different allocation sizes compare by content. */
	_cleanup_cpu_list_ struct cpu_list *a_big = cpu_list_new(6000);
	for (int c = cpu_list_next(a, -1); c >= 0; c = cpu_list_next(a, c))
		assert_int_equal(cpu_list_add(a_big, (unsigned)c), 0);
	assert_true(a_big->nbytes > a->nbytes);
	assert_true(cpu_list_equal(a, a_big));
	assert_true(cpu_list_equal(a_big, a));
	assert_false(cpu_list_equal(a, big));
	assert_false(cpu_list_equal(big, a));

	assert_true(cpu_list_is_subset(b, a));
	assert_false(cpu_list_is_subset(a, b));
	assert_true(cpu_list_is_subset(a, big));
	assert_false(cpu_list_is_subset(big, a));
	assert_true(cpu_list_is_subset(empty, a));
	assert_true(cpu_list_is_subset(empty, empty));
	assert_false(cpu_list_is_subset(a, empty));

	_cleanup_cpu_list_ struct cpu_list *d = cpu_list_dup(big);
	assert_true(cpu_list_equal(d, big));
	cpu_list_subtract(d, b);
	_cleanup_free_ char *s = cpu_list_format(d);
	assert_string_equal(s, "0-1,8,5000");
	cpu_list_subtract(d, a_big); /* larger other */
	_cleanup_free_ char *s2 = cpu_list_format(d);
	assert_string_equal(s2, "5000");
	cpu_list_subtract(a, big); /* smaller l, larger other */
	assert_true(cpu_list_is_empty(a));
	/* big untouched by dup/subtract */
	_cleanup_free_ char *s3 = cpu_list_format(big);
	assert_string_equal(s3, "0-3,8,5000");
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void test_read_file(void **state)
{
	char dir[] = "/tmp/test_cpulist.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/list", dir);
	struct ql_error err = {0};
	struct cpu_list *l = NULL;

	write_file(path, "0-1,4\n", 6);
	assert_int_equal(cpu_list_read_file(path, &l, &err), 0);
	_cleanup_free_ char *s = cpu_list_format(l);
	assert_string_equal(s, "0-1,4");
	cpu_list_free(l);
	l = NULL;

	write_file(path, "\n", 1); /* e.g. /sys/devices/system/cpu/isolated */
	assert_int_equal(cpu_list_read_file(path, &l, &err), 0);
	assert_true(cpu_list_is_empty(l));
	cpu_list_free(l);
	l = NULL;

	write_file(path, "0-1x\n", 5);
	assert_int_equal(cpu_list_read_file(path, &l, &err), -EINVAL);
	assert_null(l);
	assert_non_null(strstr(err.msg, path)); /* names the file */
	assert_non_null(strstr(err.msg, "`0-1x`"));
	ql_error_clear(&err);

	write_file(path, "0\0001", 3);
	assert_int_equal(cpu_list_read_file(path, &l, &err), -EINVAL);
	ql_error_clear(&err);

	/* Larger than any real CPU list: refused without reading it all. */
	size_t big = 1024 * 1024;
	char *junk = malloc(big);
	assert_non_null(junk);
	memset(junk, '1', big);
	write_file(path, junk, big);
	free(junk);
	assert_int_equal(cpu_list_read_file(path, &l, &err), -EFBIG);
	ql_error_clear(&err);

	assert_int_equal(unlink(path), 0);
	assert_int_equal(cpu_list_read_file(path, &l, &err), -ENOENT);
	assert_non_null(strstr(err.msg, path));
	ql_error_clear(&err);
	assert_int_equal(rmdir(dir), 0);
}

static void test_read_sysfs(void **state)
{
	/* The real kernel file: the CPUs this process may run on must be online. */
	struct ql_error err = {0};
	_cleanup_cpu_list_ struct cpu_list *online = NULL;
	assert_int_equal(cpu_list_read_file("/sys/devices/system/cpu/online", &online, &err), 0);
	assert_false(cpu_list_is_empty(online));
	cpu_set_t mask;
	assert_int_equal(sched_getaffinity(0, sizeof(mask), &mask), 0);
	for (unsigned c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &mask))
			assert_true(cpu_list_has(online, c));
	assert_int_equal(cpu_list_count(online), (size_t)sysconf(_SC_NPROCESSORS_ONLN));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_valid),	  cmocka_unit_test(test_parse_content),
	    cmocka_unit_test(test_parse_invalid), cmocka_unit_test(test_add_remove_grow),
	    cmocka_unit_test(test_iterate),	  cmocka_unit_test(test_set_ops),
	    cmocka_unit_test(test_read_file),	  cmocka_unit_test(test_read_sysfs),
	};
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
