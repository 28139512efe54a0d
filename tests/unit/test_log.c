/* Unit tests of ql_log: a message reaches the logger's fn formatted, at or below its max_level;
 * beyond it, and with no logger or fn, it is dropped before fn (and the formatting) runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "log.h"

struct seen {
	int calls;
	enum ql_log_level level;
	char msg[64];
};

static void record(void *userdata, enum ql_log_level level, const char *msg)
{
	struct seen *s = userdata;
	s->calls++;
	s->level = level;
	snprintf(s->msg, sizeof(s->msg), "%s", msg);
}

static void test_formatted_up_to_max_level(void **state)
{
	struct seen s = {0};
	struct ql_logger lg = {.fn = record, .userdata = &s, .max_level = QL_LOG_INFO};
	ql_log(&lg, QL_LOG_WARNING, "cpu%d of %s", 3, "vm1");
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.level, QL_LOG_WARNING);
	assert_string_equal(s.msg, "cpu3 of vm1");
	ql_log(&lg, QL_LOG_INFO, "step %s", "two");
	assert_int_equal(s.calls, 2);
	assert_string_equal(s.msg, "step two");
}

static void test_beyond_max_level_dropped(void **state)
{
	struct seen s = {0};
	struct ql_logger lg = {.fn = record, .userdata = &s, .max_level = QL_LOG_INFO};
	ql_log(&lg, QL_LOG_DEBUG, "write %s", "tasks");
	assert_int_equal(s.calls, 0);
	struct ql_logger quiet = {.fn = record, .userdata = &s}; /* the default: warnings only */
	ql_log(&quiet, QL_LOG_INFO, "step");
	assert_int_equal(s.calls, 0);
	ql_log(&quiet, QL_LOG_WARNING, "careful");
	assert_int_equal(s.calls, 1);
}

static void test_no_logger(void **state)
{
	/* never formatted: a %s of this pointer would crash */
	const char *bad = (const char *)1;
	ql_log(NULL, QL_LOG_WARNING, "nobody %s", bad);
	struct ql_logger no_fn = {.max_level = QL_LOG_DEBUG};
	ql_log(&no_fn, QL_LOG_WARNING, "nobody %s", bad);
	struct seen s = {0};
	struct ql_logger low = {.fn = record, .userdata = &s, .max_level = QL_LOG_WARNING};
	ql_log(&low, QL_LOG_DEBUG, "too low %s", bad);
	assert_int_equal(s.calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_formatted_up_to_max_level),
	    cmocka_unit_test(test_beyond_max_level_dropped),
	    cmocka_unit_test(test_no_logger),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
