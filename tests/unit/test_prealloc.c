/* Unit tests of where the preallocation threads run: the emulator CPUs on a bound backend's
 * node (or all emulator CPUs when none is there), and the thread-context objects and
 * prealloc-context values the plan adds, read against this host's real node CPU lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "prealloc.h"

static struct cpu_list *list(const char *text)
{
	struct cpu_list *l = NULL;
	struct ql_error err = {0};
	assert_int_equal(cpu_list_parse(text, &l, &err), 0);
	return l;
}

static void test_context_cpus(void **state)
{
	(void)state;
	static const struct {
		const char *emulator, *node, *want;
		bool fallback;
	} cases[] = {
	    {"0-1", NULL, "0-1", false},	/* not bound: every emulator CPU */
	    {"0-3", "2-3,6", "2-3", false},	/* the emulator CPUs on the node */
	    {"0,2,4", "0-1,4-5", "0,4", false}, /* a node's CPUs need not be contiguous */
	    {"0-1", "2-3", "0-1", true},	/* none on the node: all, with a warning */
	    {"0-1", "", "0-1", true},		/* a memory-only node */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		_cleanup_cpu_list_ struct cpu_list *emu = list(cases[i].emulator);
		_cleanup_cpu_list_ struct cpu_list *node =
		    cases[i].node ? list(cases[i].node) : NULL;
		_cleanup_cpu_list_ struct cpu_list *got = NULL;
		bool fallback = !cases[i].fallback;
		assert_int_equal(prealloc_context_cpus(emu, node, &got, &fallback), 0);
		char *s = cpu_list_format(got);
		assert_string_equal(s, cases[i].want);
		assert_int_equal(fallback, cases[i].fallback);
		free(s);
	}
}

static struct definition *parse(const char *text)
{
	struct definition *d = NULL;
	struct ql_error err = {0};
	int r = definition_parse("t.yml", text, strlen(text), &d, &err);
	if (r < 0)
		print_error("%s\n", err.msg);
	assert_int_equal(r, 0);
	return d;
}

static long no_hugetlbfs(const char *path)
{
	(void)path;
	return 0;
}

/* The plan on this host: a backend bound to node 0 gets a context on the emulator CPUs of
 * node 0, an unbound one the emulator CPUs' context, one bound to a node that does not exist
 * the emulator CPUs and a warning. */
static void test_plan(void **state)
{
	(void)state;
	struct cpu_list *node0 = NULL;
	struct ql_error err = {0};
	if (cpu_list_read_file("/sys/devices/system/node/node0/cpulist", &node0, &err) < 0 ||
	    cpu_list_is_empty(node0) || sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		ql_error_clear(&err);
		cpu_list_free(node0);
		print_message("# skip: no NUMA node 0 with CPUs, or one CPU: nothing to choose\n");
		skip();
	}
	int emu = cpu_list_next(node0, -1), vcpu = emu == 0 ? 1 : 0;
	char *text = NULL;
	assert_true(
	    asprintf(&text,
		     "launcher:\n  binary: qemu\n  vcpu_pinning: [ %d ]\n  emulator_pinning: %d\n"
		     "qemu:\n- m: 1G\n"
		     "- object: [ memory-backend-ram, id: a, size: 512M, prealloc: on, "
		     "prealloc-threads: 2, host-nodes: 0, policy: bind ]\n"
		     "- object: [ memory-backend-ram, id: b, size: 256M, prealloc: on, "
		     "prealloc-threads: 2 ]\n"
		     "- object: [ memory-backend-ram, id: c, size: 256M, prealloc: on, "
		     "prealloc-threads: 2, host-nodes: 4095, policy: bind ]\n"
		     /* JSON: a member would have to be added; left as written */
		     "- object: '{\"qom-type\": \"memory-backend-ram\", \"id\": \"d\", "
		     "\"size\": 1048576, \"prealloc\": true}'\n",
		     vcpu, emu) > 0);
	_cleanup_definition_ struct definition *d = parse(text);
	free(text);
	struct mem_layout l = {0};
	assert_int_equal(mem_layout_parse(d, no_hugetlbfs, 2048, &l, &err), 0);
	struct prealloc_plan p = {0};
	assert_int_equal(prealloc_plan_new(d, &l, false, &p, &err), 0);
	char want[128];
	assert_int_equal(p.n, 3);
	assert_string_equal(p.args[0], "-object");
	snprintf(want, sizeof(want),
		 "thread-context,id=qemu-launcher-prealloc-node0,cpu-affinity=%d", emu);
	assert_string_equal(p.args[1], want);
	snprintf(want, sizeof(want), "thread-context,id=qemu-launcher-prealloc,cpu-affinity=%d",
		 emu);
	assert_string_equal(p.args[3], want);
	assert_null(p.args[4]); /* b and c share the emulator CPUs' context */
	assert_string_equal(p.contexts[0], "qemu-launcher-prealloc-node0");
	assert_string_equal(p.contexts[1], "qemu-launcher-prealloc");
	assert_string_equal(p.contexts[2], "qemu-launcher-prealloc");
	assert_non_null(strstr(p.values[0], ",prealloc-context=qemu-launcher-prealloc-node0"));
	assert_non_null(p.warnings);
	assert_non_null(strstr(p.warnings[0], "memory backend `c` is bound to host node 4095"));
	assert_null(p.warnings[1]);
	bool noted = false;
	for (char **n = p.notes; n && *n; n++)
		noted |= strstr(*n, "backend `d` is written in JSON") != NULL;
	assert_true(noted);
	prealloc_plan_done(&p);
	mem_layout_done(&l);
	cpu_list_free(node0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_context_cpus),
	    cmocka_unit_test(test_plan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
