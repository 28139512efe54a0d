/* Unit tests of the hugepage plan: which backends of a definition are on hugepages (page size,
 * node, size), pages per pool against a fake sysfs tree, and reserve/check against it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "hugepages.h"

static char root[64];

/* Paths under /huge are a 2 MiB hugetlbfs, /giant a 1 GiB one, the rest ordinary. */
static long fake_page_kb(const char *path)
{
	if (strncmp(path, "/huge", 5) == 0)
		return 2048;
	if (strncmp(path, "/giant", 6) == 0)
		return 1048576;
	return 0;
}

static struct definition *parse(const char *qemu)
{
	char *text = NULL;
	assert_true(asprintf(&text, "launcher:\n  binary: qemu\nqemu:\n%s", qemu) > 0);
	struct definition *d = NULL;
	struct ql_error err = {0};
	int r = definition_parse("t.yml", text, strlen(text), &d, &err);
	if (r < 0)
		print_error("%s\n", err.msg);
	assert_int_equal(r, 0);
	free(text);
	return d;
}

static void put(const char *dir, const char *file, const char *value)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s%s' && printf '%%s\\n' '%s' >'%s%s/%s'", root, dir,
		 value, root, dir, file);
	assert_int_equal(system(cmd), 0);
}

static long get(const char *dir, const char *file)
{
	char path[512];
	snprintf(path, sizeof(path), "%s%s/%s", root, dir, file);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	long v = -1;
	assert_int_equal(fscanf(f, "%ld", &v), 1);
	fclose(f);
	return v;
}

#define POOL2M "/sys/kernel/mm/hugepages/hugepages-2048kB"
#define NODE1_1G "/sys/devices/system/node/node1/hugepages/hugepages-1048576kB"

static int setup(void **state)
{
	strcpy(root, "/tmp/test_hugepages.XXXXXX");
	assert_non_null(mkdtemp(root));
	put(POOL2M, "nr_hugepages", "10");
	put(POOL2M, "free_hugepages", "6");
	put(POOL2M, "resv_hugepages", "2");
	put(NODE1_1G, "nr_hugepages", "1");
	put(NODE1_1G, "free_hugepages", "1");
	/* a node's pool comes with the host's of its size */
	put("/sys/kernel/mm/hugepages/hugepages-1048576kB", "nr_hugepages", "1");
	put("/sys/kernel/mm/hugepages/hugepages-1048576kB", "free_hugepages", "1");
	put("/sys/kernel/mm/hugepages/hugepages-1048576kB", "resv_hugepages", "0");
	put("/proc/sys/vm", "compact_memory", "");
	put("/proc", "meminfo", "MemTotal:       16384000 kB\nMemAvailable:    8388608 kB");
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void test_backends(void **state)
{
	_cleanup_definition_ struct definition *d = parse(
	    "- m: 3G\n"
	    "- object: [ memory-backend-file, id: a, size: 1G, mem-path: /huge/vm, prealloc: on ]\n"
	    "- object: memory-backend-file,id=plain,size=1G,mem-path=/dev/shm\n"
	    "- object: [ memory-backend-memfd, id: b, size: 2G, hugetlb: on, hugetlbsize: 1G,\n"
	    "            host-nodes: 1, policy: bind ]\n"
	    "- object: [ memory-backend-memfd, id: c, size: 5M, hugetlb: on, host-nodes: 0-1,\n"
	    "            policy: bind ]\n"
	    "- numa: [ node, memdev: a ]\n");
	struct mem_backend *b = NULL;
	size_t n = 0;
	struct ql_error err = {0};
	assert_int_equal(mem_backends_parse(d, fake_page_kb, 2048, &b, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(b[0].id, "a");
	assert_int_equal(b[0].bytes, 1ULL << 30);
	assert_int_equal(b[0].page_kb, 2048);
	assert_int_equal(b[0].node, -1);
	assert_true(b[0].prealloc);
	assert_string_equal(b[1].id, "b");
	assert_int_equal(b[1].page_kb, 1048576);
	assert_int_equal(b[1].node, 1);
	assert_false(b[1].prealloc);
	/* a range of nodes: the kernel chooses, the whole host's pool counts */
	assert_string_equal(b[2].id, "c");
	assert_int_equal(b[2].node, -1);
	assert_int_equal(b[2].page_kb, 2048);
	/* bound to one node and taken only as touched: warned; preallocated or any node: not */
	_cleanup_free_ char *w = hugepages_backend_warning(&b[1]);
	assert_non_null(w);
	assert_non_null(strstr(w, "memory backend `b` takes its 1048576 kB hugepages from node 1 "
				  "only as the guest touches them (no prealloc=on)"));
	assert_null(hugepages_backend_warning(&b[0]));
	assert_null(hugepages_backend_warning(&b[2]));
	mem_backends_free(b, n);

	/* the JSON form (libvirt's): the same backend */
	_cleanup_definition_ struct definition *j = parse(
	    "- object: '{\"qom-type\": \"memory-backend-file\", \"id\": \"j\\\"1\", \"size\": "
	    "10485760, \"mem-path\": \"/huge/j\", \"prealloc\": true, \"host-nodes\": [1], "
	    "\"policy\": \"bind\"}'\n"
	    "- object: '{\"qom-type\": \"memory-backend-file\", \"id\": \"k\", '\n");
	assert_int_equal(mem_backends_parse(j, fake_page_kb, 2048, &b, &n, &err), 0);
	assert_int_equal(n, 1); /* the malformed one is qemu's to report */
	assert_string_equal(b[0].id, "j\"1");
	assert_int_equal(b[0].bytes, 10ULL << 20);
	assert_int_equal(b[0].page_kb, 2048);
	assert_int_equal(b[0].node, 1);
	assert_true(b[0].prealloc);
	assert_null(hugepages_backend_warning(&b[0]));
	mem_backends_free(b, n);
}

static void test_mem_path_takes_m(void **state)
{
	_cleanup_definition_ struct definition *d =
	    parse("- m: [ size: 512, maxmem: 2G ]\n- mem-path: /huge\n- mem-prealloc\n");
	struct mem_backend *b = NULL;
	size_t n = 0;
	struct ql_error err = {0};
	assert_int_equal(mem_backends_parse(d, fake_page_kb, 2048, &b, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(b[0].id, "-mem-path");
	assert_int_equal(b[0].bytes, 512ULL << 20); /* -m without a unit is MiB */
	assert_true(b[0].prealloc);
	mem_backends_free(b, n);
}

static void test_bad_size(void **state)
{
	_cleanup_definition_ struct definition *d =
	    parse("- object: [ memory-backend-memfd, id: x, size: lots, hugetlb: on ]\n");
	struct mem_backend *b = NULL;
	size_t n = 0;
	struct ql_error err = {0};
	assert_int_equal(mem_backends_parse(d, fake_page_kb, 2048, &b, &n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.yml:4:"));
	assert_non_null(strstr(err.msg, "memory backend `x`: `size` `lots` is not a size"));
	ql_error_clear(&err);
	_cleanup_definition_ struct definition *none =
	    parse("- object: [ memory-backend-memfd, id: y, hugetlb: on ]\n");
	assert_int_equal(mem_backends_parse(none, fake_page_kb, 2048, &b, &n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "memory backend `y` needs a `size`"));
	ql_error_clear(&err);
}

/* qemu reads a size's suffix in either case (it upper-cases it): 4g is 4 GiB, not an error */
static void test_lowercase_suffixes(void **state)
{
	_cleanup_definition_ struct definition *d =
	    parse("- m: 4g\n- mem-path: /huge\n"
		  "- object: [ memory-backend-file, id: a, size: 512m, mem-path: /huge/a ]\n"
		  "- object: [ memory-backend-memfd, id: b, size: 3k, hugetlb: on ]\n"
		  "- object: [ memory-backend-memfd, id: c, size: 1t, hugetlb: on ]\n"
		  "- object: [ memory-backend-memfd, id: e, size: 4096b, hugetlb: on ]\n");
	struct mem_backend *b = NULL;
	size_t n = 0;
	struct ql_error err = {0};
	int r = mem_backends_parse(d, fake_page_kb, 2048, &b, &n, &err);
	if (r < 0)
		print_error("%s\n", err.msg);
	assert_int_equal(r, 0);
	assert_int_equal(n, 5);
	assert_int_equal(b[0].bytes, 512ULL << 20);
	assert_int_equal(b[1].bytes, 3ULL << 10);
	assert_int_equal(b[2].bytes, 1ULL << 40);
	assert_int_equal(b[3].bytes, 4096);
	assert_string_equal(b[4].id, "-mem-path");
	assert_int_equal(b[4].bytes, 4ULL << 30);
	mem_backends_free(b, n);
}

static void plan_of(const char *qemu, struct hugepages_plan *p)
{
	_cleanup_definition_ struct definition *d = parse(qemu);
	struct mem_backend *b = NULL;
	size_t n = 0;
	struct ql_error err = {0};
	assert_int_equal(mem_backends_parse(d, fake_page_kb, 2048, &b, &n, &err), 0);
	int r = hugepages_plan_compute(root, b, n, p, &err);
	if (r < 0)
		print_error("%s\n", err.msg);
	assert_int_equal(r, 0);
	mem_backends_free(b, n);
}

static void test_plan_and_reserve(void **state)
{
	struct hugepages_plan p = {0};
	/* 10 MiB + 9 MiB (rounded up to 5 pages) of 2 MiB pages; 2 GiB of 1 GiB pages on node 1 */
	plan_of("- object: [ memory-backend-file, id: a, size: 10M, mem-path: /huge/a ]\n"
		"- object: [ memory-backend-file, id: b, size: 9M, mem-path: /huge/b ]\n"
		"- object: [ memory-backend-file, id: g, size: 2G, mem-path: /giant,\n"
		"            host-nodes: 1, policy: bind ]\n",
		&p);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.v[0].page_kb, 2048);
	assert_int_equal(p.v[0].needed, 10);
	assert_int_equal(p.v[0].free, 4); /* 6 free, 2 promised */
	assert_int_equal(p.v[0].missing, 6);
	assert_int_equal(p.v[1].node, 1);
	assert_int_equal(p.v[1].needed, 2);
	assert_int_equal(p.v[1].missing, 1);
	_cleanup_free_ char *desc = hugepages_plan_describe(&p, QL_HUGEPAGES_RESERVE);
	assert_non_null(strstr(desc, "hugepages: 2048 kB pages on any node: 10 needed, 4 free\n"));
	assert_non_null(strstr(desc, POOL2M "/nr_hugepages: 10 -> 16"));
	assert_non_null(strstr(desc, "1048576 kB pages on node 1: 2 needed, 1 free"));

	/* check only: refused, naming every short pool; nothing written */
	struct ql_error err = {0};
	assert_int_equal(hugepages_apply(&p, QL_HUGEPAGES_CHECK, NULL, NULL, &err), -ENOMEM);
	assert_non_null(strstr(err.msg, "2048 kB pages on any node: 10 needed, 4 free; "
					"1048576 kB pages on node 1: 2 needed, 1 free"));
	ql_error_clear(&err);
	assert_int_equal(get(POOL2M, "nr_hugepages"), 10);
	/* ... which --check foresees in the same words; reserve foresees nothing here (the
	 * fake host's 8 GiB MemAvailable covers what is missing) and ignore never refuses */
	_cleanup_free_ char *refusal = NULL, *none = NULL;
	assert_int_equal(hugepages_plan_refusal(&p, QL_HUGEPAGES_CHECK, &refusal), 0);
	assert_non_null(refusal);
	assert_non_null(strstr(refusal,
			       "not enough hugepages: 2048 kB pages on any node: 10 needed, "
			       "4 free; 1048576 kB pages on node 1: 2 needed, 1 free (`"));
	assert_int_equal(hugepages_plan_refusal(&p, QL_HUGEPAGES_RESERVE, &none), 0);
	assert_null(none);
	assert_int_equal(hugepages_plan_refusal(&p, QL_HUGEPAGES_IGNORE, &none), 0);
	assert_null(none);
	long long avail = p.avail_kb;
	p.avail_kb = 1024; /* less than the 6 x 2 MiB + 1 GiB missing */
	assert_int_equal(hugepages_plan_refusal(&p, QL_HUGEPAGES_RESERVE, &none), 0);
	assert_non_null(none);
	assert_non_null(
	    strstr(none, "more than the host's available memory (MemAvailable 1024 kB)"));
	p.avail_kb = avail;

	/* reserve: a regular file takes any value, so both pools are raised, then given back */
	char jdir[128];
	snprintf(jdir, sizeof(jdir), "%s/journal", root);
	_cleanup_journal_ struct journal *j = NULL;
	assert_int_equal(journal_open(jdir, "t", NULL, &j, &err), 0);
	assert_int_equal(hugepages_apply(&p, QL_HUGEPAGES_RESERVE, j, NULL, &err), 0);
	assert_int_equal(get(POOL2M, "nr_hugepages"), 16);
	assert_int_equal(get(NODE1_1G, "nr_hugepages"), 2);
	assert_int_equal(journal_undo_own(j, &err), 0);
	assert_int_equal(get(POOL2M, "nr_hugepages"), 10);
	assert_int_equal(get(NODE1_1G, "nr_hugepages"), 1);
	hugepages_plan_done(&p);
}

/* Reserving more than the host's MemAvailable (a typo: 4T for 4G) is refused before any write:
 * the kernel would take every free page it can find. */
static void test_reserve_bounded_by_available(void **state)
{
	struct hugepages_plan p = {0};
	plan_of("- object: [ memory-backend-file, id: a, size: 9G, mem-path: /huge/a ]\n", &p);
	assert_int_equal(p.avail_kb, 8388608);
	assert_int_equal(p.v[0].missing, 4608 - 4);
	_cleanup_free_ char *desc = hugepages_plan_describe(&p, QL_HUGEPAGES_RESERVE);
	assert_non_null(strstr(desc, "is more than the host's available 8388608 kB: the start "
				     "would be refused"));
	char jdir[128];
	snprintf(jdir, sizeof(jdir), "%s/journal", root);
	_cleanup_journal_ struct journal *j = NULL;
	struct ql_error err = {0};
	assert_int_equal(journal_open(jdir, "t", NULL, &j, &err), 0);
	assert_int_equal(hugepages_apply(&p, QL_HUGEPAGES_RESERVE, j, NULL, &err), -ENOMEM);
	assert_non_null(strstr(err.msg, "reserving the 9428992 kB missing would take more than "
					"the host's available memory (MemAvailable 8388608 kB)"));
	ql_error_clear(&err);
	assert_int_equal(get(POOL2M, "nr_hugepages"), 10); /* nothing written */
	hugepages_plan_done(&p);

	/* just under it: reserved */
	plan_of("- object: [ memory-backend-file, id: a, size: 8G, mem-path: /huge/a ]\n", &p);
	assert_int_equal(hugepages_apply(&p, QL_HUGEPAGES_RESERVE, j, NULL, &err), 0);
	assert_int_equal(get(POOL2M, "nr_hugepages"), 10 + 4096 - 4);
	assert_int_equal(journal_undo_own(j, &err), 0);
	assert_int_equal(get(POOL2M, "nr_hugepages"), 10);
	hugepages_plan_done(&p);
}

/* A node's free pages are the host's too: a node-bound backend's pages are not counted again
 * for a backend that may use any node. */
static void test_node_pages_counted_once(void **state)
{
	put("/sys/kernel/mm/hugepages/hugepages-1048576kB", "nr_hugepages", "1");
	put("/sys/kernel/mm/hugepages/hugepages-1048576kB", "free_hugepages", "1");
	put("/sys/kernel/mm/hugepages/hugepages-1048576kB", "resv_hugepages", "0");
	struct hugepages_plan p = {0};
	plan_of("- object: [ memory-backend-file, id: g, size: 1G, mem-path: /giant,\n"
		"            host-nodes: 1, policy: bind ]\n"
		"- object: [ memory-backend-file, id: h, size: 1G, mem-path: /giant/h ]\n",
		&p);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.v[0].node, 1);
	assert_int_equal(p.v[0].missing, 0); /* node 1's free page */
	assert_int_equal(p.v[1].node, -1);
	assert_int_equal(p.v[1].free, 0); /* the same page */
	assert_int_equal(p.v[1].missing, 1);
	hugepages_plan_done(&p);
}

/* The kernel grants a mapping bound to a node no more than the host's free pages less those
 * promised to mappings not yet faulted in (resv), whatever the node has free: the host has 6
 * free and 2 promised, node 0 has 6 free, a 12M backend bound to it lacks 2 pages. */
static void test_node_pool_within_host_resv(void **state)
{
	put("/sys/devices/system/node/node0/hugepages/hugepages-2048kB", "nr_hugepages", "6");
	put("/sys/devices/system/node/node0/hugepages/hugepages-2048kB", "free_hugepages", "6");
	struct hugepages_plan p = {0};
	plan_of("- object: [ memory-backend-file, id: n, size: 12M, mem-path: /huge/n,\n"
		"            host-nodes: 0, policy: bind, prealloc: on ]\n",
		&p);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.v[0].node, 0);
	assert_int_equal(p.v[0].needed, 6);
	assert_int_equal(p.v[0].free, 4);
	assert_int_equal(p.v[0].missing, 2);
	hugepages_plan_done(&p);
}

static void test_missing_pool(void **state)
{
	_cleanup_definition_ struct definition *d =
	    parse("- object: [ memory-backend-file, id: g, size: 1G, mem-path: /giant,\n"
		  "            host-nodes: 3, policy: bind ]\n");
	struct mem_backend *b = NULL;
	size_t n = 0;
	struct hugepages_plan p = {0};
	struct ql_error err = {0};
	assert_int_equal(mem_backends_parse(d, fake_page_kb, 2048, &b, &n, &err), 0);
	assert_int_equal(hugepages_plan_compute(root, b, n, &p, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "no 1048576 kB hugepages on that node"));
	ql_error_clear(&err);
	mem_backends_free(b, n);
}

/* The whole guest RAM (rlimit_memlock: auto): -m plus every backend, -m not counted again when
 * backends make the RAM; what locks memory. */
static void test_layout(void **state)
{
	static const struct {
		const char *qemu;
		uint64_t ram;
		bool mem_lock, vfio;
		size_t n;
	} cases[] = {
	    {"- m: 2G\n", 2ULL << 30, false, false, 0},
	    {"- smp: 2\n", 128ULL << 20, false, false, 0}, /* qemu's default -m */
	    /* -mem-path is -m's RAM, on hugepages */
	    {"- m: 512\n- mem-path: /huge\n- overcommit: mem-lock=on\n", 512ULL << 20, true, false,
	     1},
	    {"- m: 1G\n- object: memory-backend-ram,id=a,size=512M,prealloc=on\n"
	     "- object: memory-backend-file,id=b,size=512M,mem-path=/huge/x\n"
	     "- numa: node,memdev=a\n- numa: node,memdev=b\n- device: [ vfio-pci, host: 1:0.0 ]\n",
	     1ULL << 30, false, true, 2},
	    {"- m: 1G\n- object: [ memory-backend-memfd, id: r, size: 1G ]\n"
	     "- machine: [ pc, memory-backend: r ]\n- object: [ memory-backend-ram, id: d, size: "
	     "256M ]\n"
	     "- device: driver=vfio-pci,host=1:0.0\n- overcommit: [ mem-lock: off ]\n",
	     (1ULL << 30) + (256ULL << 20), false, true, 2},
	    /* the JSON form of -device */
	    {"- m: 1G\n- device: '{\"driver\": \"vfio-pci\", \"host\": \"1:0.0\"}'\n", 1ULL << 30,
	     false, true, 0},
	    /* the JSON form of -object, as libvirt writes it: lists repeat their key, nested
	     * objects are skipped, escapes undone */
	    {"- machine: pc,memory-backend=pc.ram\n- m: size=4194304k\n"
	     "- object: '{\"qom-type\":\"memory-backend-ram\",\"id\":\"pc.ram\",\"x\":{\"a\":[1]},"
	     "\"size\":4294967296, \"host-nodes\": [0, 1], \"policy\": \"bind\"}'\n"
	     "- overcommit: mem-lock=on\n",
	     4ULL << 30, true, false, 1},
	    /* a hotplug DIMM's backend adds to -m */
	    {"- m: [ 1G, slots: 1, maxmem: 2G ]\n- object: memory-backend-ram,id=d,size=512M\n",
	     (1ULL << 30) + (512ULL << 20), false, false, 1},
	    /* -M is -machine: its memory-backend is the RAM, -m not counted again */
	    {"- M: pc,memory-backend=r\n- m: 1G\n- object: memory-backend-ram,id=r,size=1G\n",
	     1ULL << 30, false, false, 1},
	    /* sizes near 2^64 saturate: wrapped, 8E + 8E would be 0 and lock nothing */
	    {"- m: 8E\n- object: memory-backend-ram,id=d,size=8E\n", UINT64_MAX, false, false, 1},
	    /* an escaped key and single quotes, as qemu's JSON reader takes them */
	    {"- m: 1G\n- object: \"{'qom-type': 'memory-backend-ram', 'si\\\\u007ae': '2G', "
	     "'id': 'x'}\"\n",
	     3ULL << 30, false, false, 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		_cleanup_definition_ struct definition *d = parse(cases[i].qemu);
		struct mem_layout l = {0};
		struct ql_error err = {0};
		assert_int_equal(mem_layout_parse(d, fake_page_kb, 2048, &l, &err), 0);
		assert_true(l.guest_ram == cases[i].ram);
		assert_int_equal(l.mem_lock, cases[i].mem_lock);
		assert_int_equal(l.vfio, cases[i].vfio);
		assert_int_equal(l.n, cases[i].n);
		mem_layout_done(&l);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backends),
	    cmocka_unit_test(test_mem_path_takes_m),
	    cmocka_unit_test(test_bad_size),
	    cmocka_unit_test(test_lowercase_suffixes),
	    cmocka_unit_test(test_layout),
	    cmocka_unit_test_setup_teardown(test_reserve_bounded_by_available, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plan_and_reserve, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_node_pages_counted_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_node_pool_within_host_resv, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_pool, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
