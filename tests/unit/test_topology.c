/* Unit tests of the host topology module on fake sysfs trees built here (SMT2, no SMT, 2 NUMA
 * nodes, 2 L3 groups, offline and isolated CPUs, 256 CPUs): reading, the --topology text, the
 * --suggest plan (which must itself pass --check) and the --check warnings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "smp.h"
#include "topology.h"

/* A host: cores are numbered 0..n_cores-1 across packages; CPU c is thread c / n_cores of core
 * c % n_cores (Intel's numbering: siblings are n_cores apart). Groups are consecutive cores. */
struct fake {
	unsigned cpus, smt, packages;
	unsigned l3_groups; /* 0: no L3 cache in sysfs */
	unsigned nodes;	    /* 0: no /sys/devices/system/node */
	const char *offline, *isolated;
	bool no_isolated_file;
};

static char root[64];

__attribute__((format(printf, 2, 3))) static void put(const char *content, const char *fmt, ...)
{
	char rel[512], path[700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s%s", root, rel);
	for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", content);
	fclose(f);
}

static int rm_entry(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(p);
}

static void drop_tree(void)
{
	if (root[0])
		nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	root[0] = '\0';
}

static char *list_of(unsigned first, unsigned last, unsigned stride, unsigned n_per)
{
	/* "first-last" or, for siblings, "a,b,c" */
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	if (n_per)
		for (unsigned i = 0; i < n_per; i++)
			fprintf(f, "%s%u", i ? "," : "", first + i * stride);
	else
		fprintf(f, first == last ? "%u" : "%u-%u", first, last);
	fclose(f);
	return s;
}

static struct host_topology *make(const struct fake *h)
{
	drop_tree();
	strcpy(root, "/tmp/ql-topo-XXXXXX");
	assert_non_null(mkdtemp(root));
	unsigned n_cores = h->cpus / h->smt;
	unsigned per_pkg = n_cores / h->packages;
	_cleanup_cpu_list_ struct cpu_list *off = NULL;
	struct ql_error err = {0};
	assert_int_equal(cpu_list_parse(h->offline ? h->offline : "", &off, &err), 0);

	char *all = list_of(0, h->cpus - 1, 0, 0);
	put(all, "/sys/devices/system/cpu/possible");
	_cleanup_cpu_list_ struct cpu_list *online = NULL;
	assert_int_equal(cpu_list_parse(all, &online, &err), 0);
	cpu_list_subtract(online, off);
	_cleanup_free_ char *on = cpu_list_format(online), *offs = cpu_list_format(off);
	put(on, "/sys/devices/system/cpu/online");
	put(offs, "/sys/devices/system/cpu/offline");
	if (!h->no_isolated_file)
		put(h->isolated ? h->isolated : "", "/sys/devices/system/cpu/isolated");
	free(all);

	for (unsigned c = 0; c < h->cpus; c++) {
		if (cpu_list_has(off, c))
			continue; /* the kernel removes an offline CPU's topology/ and cache/ */
		unsigned core = c % n_cores;
		char num[16];
		snprintf(num, sizeof(num), "%u", core / per_pkg);
		put(num, "/sys/devices/system/cpu/cpu%u/topology/physical_package_id", c);
		snprintf(num, sizeof(num), "%u", core % per_pkg);
		put(num, "/sys/devices/system/cpu/cpu%u/topology/core_id", c);
		_cleanup_free_ char *sib = list_of(core, 0, n_cores, h->smt);
		put(sib, "/sys/devices/system/cpu/cpu%u/topology/thread_siblings_list", c);
		put(sib, "/sys/devices/system/cpu/cpu%u/topology/core_cpus_list", c);
		put("1", "/sys/devices/system/cpu/cpu%u/cache/index0/level", c);
		put(sib, "/sys/devices/system/cpu/cpu%u/cache/index0/shared_cpu_list", c);
		put("2", "/sys/devices/system/cpu/cpu%u/cache/index1/level", c);
		put(sib, "/sys/devices/system/cpu/cpu%u/cache/index1/shared_cpu_list", c);
		if (h->l3_groups) {
			unsigned per_l3 = n_cores / h->l3_groups, g = core / per_l3;
			_cleanup_cpu_list_ struct cpu_list *l3 = cpu_list_new(h->cpus);
			for (unsigned t = 0; t < h->smt; t++)
				for (unsigned k = g * per_l3; k < (g + 1) * per_l3; k++)
					cpu_list_add(l3, k + t * n_cores);
			_cleanup_free_ char *s = cpu_list_format(l3);
			put("3", "/sys/devices/system/cpu/cpu%u/cache/index2/level", c);
			put(s, "/sys/devices/system/cpu/cpu%u/cache/index2/shared_cpu_list", c);
		}
	}
	for (unsigned n = 0; n < h->nodes; n++) {
		unsigned per_node = n_cores / h->nodes;
		_cleanup_cpu_list_ struct cpu_list *l = cpu_list_new(h->cpus);
		for (unsigned t = 0; t < h->smt; t++)
			for (unsigned k = n * per_node; k < (n + 1) * per_node; k++)
				if (!cpu_list_has(off, k + t * n_cores))
					cpu_list_add(l, k + t * n_cores);
		_cleanup_free_ char *s = cpu_list_format(l);
		put(s, "/sys/devices/system/node/node%u/cpulist", n);
	}
	struct host_topology *t = NULL;
	int r = topology_read(root, &t, &err);
	if (r < 0)
		print_error("topology_read: %s\n", err.msg);
	assert_int_equal(r, 0);
	return t;
}

static struct definition *parse(const char *body)
{
	char text[4096];
	snprintf(text, sizeof(text), "launcher:\n  binary: /usr/bin/qemu-system-x86_64\n%s", body);
	struct ql_error err = {0};
	struct definition *d = NULL;
	int r = definition_parse("t.yml", text, strlen(text), &d, &err);
	if (r < 0)
		print_error("definition: %s\n%s\n", err.msg, text);
	assert_int_equal(r, 0);
	return d;
}

/* The suggestion's YAML document without its comments: what a user pastes. Not inlined: GCC
 * 12 at -O2 then takes the returned text for a pointer to the local `yaml` itself
 * (-Wdangling-pointer). */
__attribute__((noinline)) static char *suggest(const struct host_topology *t, unsigned n)
{
	char *yaml = NULL;
	struct ql_error err = {0};
	int r = topology_suggest(t, n, &yaml, &err);
	if (r < 0)
		print_error("suggest: %s\n", err.msg);
	assert_int_equal(r, 0);
	return yaml;
}

static const char *body_of(const char *yaml)
{
	const char *b = strstr(yaml, "launcher:\n");
	assert_non_null(b);
	return b + strlen("launcher:\n");
}

static char **check(const struct host_topology *t, const char *def_body)
{
	_cleanup_definition_ struct definition *d = parse(def_body);
	char **w = NULL;
	struct ql_error err = {0};
	assert_int_equal(topology_check(t, d, &w, &err), 0);
	return w;
}

/* The suggestion is a valid definition fragment, asks for n vCPUs, and --check finds nothing
 * to warn about except what `allowed` names. */
static void assert_suggestion_consistent(const struct host_topology *t, const char *yaml,
					 unsigned n, const char *allowed)
{
	_cleanup_definition_ struct definition *d = parse(body_of(yaml));
	assert_int_equal(smp_topology_of(d).cpus, n);
	assert_int_equal(d->n_pins, n);
	_cleanup_strv_free_ char **w = NULL;
	struct ql_error err = {0};
	assert_int_equal(topology_check(t, d, &w, &err), 0);
	for (char **i = w; *i; i++) {
		if (allowed && strstr(*i, allowed))
			continue;
		print_error("unexpected warning: %s\n", *i);
		fail();
	}
}

static int teardown(void **state)
{
	drop_tree();
	return 0;
}

/* ---- SMT2: 8 CPUs, 4 cores, siblings 0,4 1,5 2,6 3,7 ---------------------------------------- */

static const struct fake smt2 = {.cpus = 8, .smt = 2, .packages = 1, .l3_groups = 1, .nodes = 1};

static void test_smt2_read_and_format(void **state)
{
	_cleanup_topology_ struct host_topology *t = make(&smt2);
	assert_int_equal(t->n_cores, 4);
	assert_int_equal(t->smt, 2);
	assert_int_equal(t->n_packages, 1);
	assert_int_equal(t->n_l3, 1);
	assert_int_equal(t->n_nodes, 1);
	assert_int_equal(topology_core_of(t, 5), 1);
	assert_int_equal(topology_core_of(t, 8), -1);
	_cleanup_free_ char *s = topology_format(t);
	assert_string_equal(s, "online: 0-7\n"
			       "offline: none\n"
			       "isolated: none\n"
			       "threads per core: 2\n"
			       "package 0: CPUs 0-7\n"
			       "  core 0: CPUs 0,4 (L3 0, node 0)\n"
			       "  core 1: CPUs 1,5 (L3 0, node 0)\n"
			       "  core 2: CPUs 2,6 (L3 0, node 0)\n"
			       "  core 3: CPUs 3,7 (L3 0, node 0)\n"
			       "L3 0: CPUs 0-7\n"
			       "node 0: CPUs 0-7\n");
}

static void test_smt2_suggest_pairs_siblings(void **state)
{
	_cleanup_topology_ struct host_topology *t = make(&smt2);
	_cleanup_free_ char *y = suggest(t, 4);
	assert_string_equal(body_of(y), "  vcpu_pinning:\n"
					"    0:\n"
					"      0: { 0: 1, 1: 5 }\n"
					"      1: { 0: 2, 1: 6 }\n"
					"  emulator_pinning: 0,4\n"
					"qemu:\n"
					"- smp: [ 4, sockets: 1, cores: 2, threads: 2 ]\n");
	assert_suggestion_consistent(t, y, 4, NULL);
	/* an odd count does not pair: one vCPU per core, siblings left free */
	_cleanup_free_ char *odd = suggest(t, 3);
	assert_non_null(strstr(odd, "- smp: [ 3, sockets: 1, cores: 3, threads: 1 ]"));
	assert_non_null(strstr(odd, "      2: { 0: 3 }\n"));
	assert_non_null(strstr(odd, "keep their SMT siblings free"));
	assert_suggestion_consistent(t, odd, 3, NULL);
}

static void test_smt2_too_many(void **state)
{
	_cleanup_topology_ struct host_topology *t = make(&smt2);
	char *y = NULL;
	struct ql_error err = {0};
	assert_int_equal(topology_suggest(t, 8, &y, &err), -ENOSPC);
	assert_null(y);
	assert_non_null(strstr(err.msg, "4 host cores with 2 threads each besides the first core "
					"(CPUs 0,4, left to the host); this host has 3"));
	ql_error_clear(&err);
}

static void test_smt2_check_split_siblings(void **state)
{
	_cleanup_topology_ struct host_topology *t = make(&smt2);
	/* guest core 0 = vCPUs 0,1 on host CPUs 1 and 2: different host cores */
	_cleanup_strv_free_ char **w = check(t, "  vcpu_pinning:\n"
						"    0:\n"
						"      0: { 0: 1, 1: 2 }\n"
						"      1: { 0: 3, 1: 7 }\n"
						"qemu:\n"
						"- smp: [ 4, sockets: 1, cores: 2, threads: 2 ]\n");
	assert_int_equal(strv_length(w), 1);
	assert_string_equal(w[0], "t.yml:5:21: vCPUs 0 and 1 are threads of one guest core but "
				  "run on host CPUs 1 and 2, which are not SMT siblings (the "
				  "siblings of host CPU 1 are 1,5)");
	/* the flat form is checked through -smp too */
	_cleanup_strv_free_ char **flat = check(t, "  vcpu_pinning: [1, 5, 2, 3]\n"
						   "qemu:\n"
						   "- smp: [ 4, threads: 2 ]\n");
	assert_int_equal(strv_length(flat), 1);
	assert_non_null(strstr(flat[0], "vCPUs 2 and 3 are threads of one guest core"));
	/* threads: 1 -- nothing is a guest sibling, nothing to warn */
	_cleanup_strv_free_ char **none = check(t, "  vcpu_pinning: [1, 2]\nqemu:\n- smp: 2\n");
	assert_int_equal(strv_length(none), 0);
}

static void test_smt2_check_sibling_cores(void **state)
{
	_cleanup_topology_ struct host_topology *t = make(&smt2);
	/* two guest cores on the siblings 1 and 5 of one host core */
	_cleanup_strv_free_ char **w = check(t, "  vcpu_pinning: [1, 5]\nqemu:\n- smp: 2\n");
	assert_int_equal(strv_length(w), 1);
	assert_string_equal(w[0],
			    "t.yml:3:21: vCPUs 0 and 1 are separate guest cores but run on "
			    "host CPUs 1 and 5, SMT siblings of one host core: the guest "
			    "takes each for a whole core; make them threads of one guest core "
			    "(-smp threads=) or pin them to other cores");
	/* once per host core */
	_cleanup_strv_free_ char **two = check(t, "  vcpu_pinning: [1, 5, 2, 6]\n"
						  "qemu:\n"
						  "- smp: [ 4, cores: 4 ]\n");
	assert_int_equal(strv_length(two), 2);
	assert_non_null(strstr(two[1], "vCPUs 2 and 3 are separate guest cores"));
	/* threads of one guest core there: what the guest is told is true */
	_cleanup_strv_free_ char **pair = check(t, "  vcpu_pinning: [1, 5]\n"
						   "qemu:\n"
						   "- smp: [ 2, threads: 2 ]\n");
	assert_int_equal(strv_length(pair), 0);
	/* two vCPUs on one host CPU are not siblings */
	_cleanup_strv_free_ char **same = check(t, "  vcpu_pinning: [1, 1]\nqemu:\n- smp: 2\n");
	assert_int_equal(strv_length(same), 0);
}

static void test_check_emulator_overlap(void **state)
{
	_cleanup_topology_ struct host_topology *t = make(&smt2);
	_cleanup_strv_free_ char **w = check(t, "  vcpu_pinning: [1, 5]\n"
						"  emulator_pinning: 0,5\n"
						"qemu:\n"
						"- smp: [ 2, threads: 2 ]\n");
	assert_int_equal(strv_length(w), 1);
	assert_string_equal(w[0], "t.yml: emulator_pinning CPUs 5 also run vCPUs: qemu's I/O "
				  "and emulation threads take time from those vCPUs");
}

/* ---- no SMT ---------------------------------------------------------------------------------- */

static void test_no_smt(void **state)
{
	static const struct fake h = {
	    .cpus = 4, .smt = 1, .packages = 1, .l3_groups = 1, .nodes = 1};
	_cleanup_topology_ struct host_topology *t = make(&h);
	assert_int_equal(t->smt, 1);
	assert_int_equal(t->n_cores, 4);
	_cleanup_free_ char *y = suggest(t, 3);
	assert_string_equal(body_of(y), "  vcpu_pinning:\n"
					"    0:\n"
					"      0: { 0: 1 }\n"
					"      1: { 0: 2 }\n"
					"      2: { 0: 3 }\n"
					"  emulator_pinning: 0\n"
					"qemu:\n"
					"- smp: [ 3, sockets: 1, cores: 3, threads: 1 ]\n");
	assert_suggestion_consistent(t, y, 3, NULL);
	assert_null(strstr(y, "SMT siblings free"));
}

/* ---- 2 NUMA nodes: 2 packages x 4 cores x 2 threads, one L3 and node per package ------------- */

static const struct fake numa2 = {.cpus = 16, .smt = 2, .packages = 2, .l3_groups = 2, .nodes = 2};

static void test_numa2(void **state)
{
	_cleanup_topology_ struct host_topology *t = make(&numa2);
	assert_int_equal(t->n_packages, 2);
	assert_int_equal(t->n_nodes, 2);
	assert_int_equal(topology_node_of(t, 12), 1);
	_cleanup_free_ char *s = topology_format(t);
	assert_non_null(
	    strstr(s, "package 1: CPUs 4-7,12-15\n  core 0: CPUs 4,12 (L3 1, node 1)\n"));
	assert_non_null(strstr(s, "node 0: CPUs 0-3,8-11\nnode 1: CPUs 4-7,12-15\n"));

	/* 6 vCPUs fit node 0 besides its first core */
	_cleanup_free_ char *small = suggest(t, 6);
	assert_non_null(strstr(small, "on host CPUs 1-3,9-11 (L3 group 0, NUMA node 0)"));
	assert_suggestion_consistent(t, small, 6, NULL);
	/* 8 vCPUs do not: all of node 1 (whose first core is not the host's) */
	_cleanup_free_ char *eight = suggest(t, 8);
	assert_non_null(strstr(eight, "on host CPUs 4-7,12-15 (L3 group 1, NUMA node 1)"));
	assert_suggestion_consistent(t, eight, 8, NULL);
	/* 12 vCPUs: two guest sockets, one per node; the guest still lacks -numa */
	_cleanup_free_ char *big = suggest(t, 12);
	assert_non_null(strstr(big, "- smp: [ 12, sockets: 2, cores: 3, threads: 2 ]"));
	assert_non_null(strstr(big, "add -numa nodes"));
	assert_suggestion_consistent(t, big, 12, "NUMA nodes 0-1");
}

static void test_numa2_check(void **state)
{
	_cleanup_topology_ struct host_topology *t = make(&numa2);
	/* one guest socket over both packages: L3 and NUMA both hidden */
	_cleanup_strv_free_ char **w = check(t, "  vcpu_pinning: [1, 5]\nqemu:\n- smp: 2\n");
	assert_int_equal(strv_length(w), 2);
	assert_string_equal(w[0], "t.yml:3:18: the vCPUs of guest socket 0 run on host CPUs 1,5, "
				  "which belong to L3 groups 0-1: the guest assumes they share one "
				  "L3 cache; give each host L3 group its own guest socket (-smp "
				  "sockets=)");
	assert_non_null(strstr(w[1], "the vCPUs of a guest without -numa nodes run on host CPUs "
				     "1,5, which belong to NUMA nodes 0-1"));
	/* two guest sockets and matching -numa nodes: nothing hidden */
	_cleanup_strv_free_ char **ok = check(t, "  vcpu_pinning: [1, 5]\n"
						 "qemu:\n"
						 "- smp: [ 2, sockets: 2 ]\n"
						 "- numa: [ node, nodeid: 0, cpus: 0 ]\n"
						 "- numa: [ node, nodeid: 1, cpus: 1 ]\n");
	assert_int_equal(strv_length(ok), 0);
	/* -numa nodes that do not follow the host's */
	_cleanup_strv_free_ char **bad = check(t, "  vcpu_pinning: [1, 5]\n"
						  "qemu:\n"
						  "- smp: [ 2, sockets: 2 ]\n"
						  "- numa: node,nodeid=0,cpus=0-1\n");
	assert_int_equal(strv_length(bad), 1);
	assert_non_null(strstr(bad[0], "the vCPUs of guest NUMA node 0 run on host CPUs 1,5"));
}

/* ---- 2 L3 groups in one package and node (two CCDs) ------------------------------------------ */

static void test_two_l3_groups(void **state)
{
	static const struct fake h = {
	    .cpus = 16, .smt = 2, .packages = 1, .l3_groups = 2, .nodes = 1};
	_cleanup_topology_ struct host_topology *t = make(&h);
	assert_int_equal(t->n_l3, 2);
	assert_int_equal(topology_l3_of(t, 12), 1);
	_cleanup_free_ char *s = topology_format(t);
	assert_non_null(strstr(s, "L3 0: CPUs 0-3,8-11\nL3 1: CPUs 4-7,12-15\n"));

	_cleanup_free_ char *six = suggest(t, 6);
	assert_non_null(strstr(six, "on host CPUs 1-3,9-11 (L3 group 0, NUMA node 0)"));
	_cleanup_free_ char *eight = suggest(t, 8);
	assert_non_null(strstr(eight, "on host CPUs 4-7,12-15 (L3 group 1,"));
	/* 12 vCPUs need both CCDs: one guest socket each, so the guest sees two L3 caches */
	_cleanup_free_ char *twelve = suggest(t, 12);
	assert_non_null(strstr(twelve, "- smp: [ 12, sockets: 2, cores: 3, threads: 2 ]"));
	assert_non_null(strstr(twelve, "    1:\n      0: { 0: 4, 1: 12 }\n"));
	assert_suggestion_consistent(t, twelve, 12, NULL);

	_cleanup_strv_free_ char **w = check(t, "  vcpu_pinning: [1, 9, 4, 12]\n"
						"qemu:\n"
						"- smp: [ 4, threads: 2 ]\n");
	assert_int_equal(strv_length(w), 1);
	assert_non_null(strstr(w[0], "vCPUs of guest socket 0 run on host CPUs 1,4,9,12, which "
				     "belong to L3 groups 0-1"));
	_cleanup_strv_free_ char **ok = check(t, "  vcpu_pinning: [1, 9, 4, 12]\n"
						 "qemu:\n"
						 "- smp: [ 4, sockets: 2, threads: 2 ]\n");
	assert_int_equal(strv_length(ok), 0);
}

/* ---- offline and isolated CPUs -----------------------------------------------------------------
 */

static void test_offline_cpus(void **state)
{
	static const struct fake h = {.cpus = 8,
				      .smt = 2,
				      .packages = 1,
				      .l3_groups = 1,
				      .nodes = 1,
				      .offline = "5",
				      .isolated = "3,7"};
	_cleanup_topology_ struct host_topology *t = make(&h);
	assert_int_equal(topology_core_of(t, 5), -1);
	assert_int_equal(cpu_list_count(t->cores[1].cpus), 1);
	_cleanup_free_ char *s = topology_format(t);
	assert_non_null(strstr(s, "online: 0-4,6-7\noffline: 5\nisolated: 3,7\n"));
	assert_non_null(strstr(s, "  core 1: CPUs 1 (L3 0, node 0)\n"));
	/* a core with an offline sibling cannot hold a guest core of two threads; the isolated
	 * core comes first */
	_cleanup_free_ char *y = suggest(t, 4);
	assert_non_null(strstr(y, "      0: { 0: 2, 1: 6 }\n      1: { 0: 3, 1: 7 }\n"));
	_cleanup_free_ char *two = suggest(t, 2);
	assert_non_null(strstr(two, "      0: { 0: 3, 1: 7 }\n"));
	assert_suggestion_consistent(t, y, 4, NULL);
}

/* Cores of one thread beside cores of two: a hybrid CPU's efficiency cores, or offline siblings.
 * Cores 0-1 have two threads online (0,8 1,9), cores 2-7 one (2-7). */
static void test_hybrid_falls_back_to_one_thread(void **state)
{
	static const struct fake h = {
	    .cpus = 16, .smt = 2, .packages = 1, .l3_groups = 1, .nodes = 1, .offline = "10-15"};
	_cleanup_topology_ struct host_topology *t = make(&h);
	/* 4 vCPUs would pair into 2 two-thread cores besides the first, and only core 1 has two:
	 * one vCPU per core, not a refusal */
	_cleanup_free_ char *y = suggest(t, 4);
	assert_non_null(strstr(y, "- smp: [ 4, sockets: 1, cores: 4, threads: 1 ]"));
	assert_non_null(strstr(y, "too few free cores with 2 threads online"));
	assert_suggestion_consistent(t, y, 4, NULL);
	/* 2 vCPUs still pair on core 1 */
	_cleanup_free_ char *two = suggest(t, 2);
	assert_non_null(strstr(two, "      0: { 0: 1, 1: 9 }\n"));
	/* neither fits: the count is of the cores that can hold two threads */
	char *none = NULL;
	struct ql_error err = {0};
	assert_int_equal(topology_suggest(t, 16, &none, &err), -ENOSPC);
	assert_non_null(strstr(err.msg,
			       "16 vCPUs need 8 host cores with 2 threads each besides "
			       "the first core (CPUs 0,8, left to the host); this host has 1"));
	ql_error_clear(&err);
}

/* Sub-NUMA Clustering: one L3 group over two NUMA nodes (cores 0-3 node 0, 4-7 node 1). */
static void test_snc_one_l3_two_nodes(void **state)
{
	static const struct fake h = {
	    .cpus = 16, .smt = 2, .packages = 1, .l3_groups = 1, .nodes = 2};
	_cleanup_topology_ struct host_topology *t = make(&h);
	/* node 1 holds 4 cores: the vCPUs stay in it, not over both nodes */
	_cleanup_free_ char *y = suggest(t, 8);
	assert_non_null(strstr(y, "on host CPUs 4-7,12-15 (L3 group 0, NUMA node 1)"));
	assert_suggestion_consistent(t, y, 8, NULL);
	/* more than a node holds: the one L3 group, over both nodes */
	_cleanup_free_ char *big = suggest(t, 10);
	assert_non_null(strstr(big, "(L3 group 0, NUMA nodes 0-1)"));
}

/* ---- 256 CPUs: 2 packages x 64 cores x 2 threads, 8 CCDs of 8 cores per package, 2 nodes ------
 */

static void test_256_cpus(void **state)
{
	static const struct fake h = {.cpus = 256,
				      .smt = 2,
				      .packages = 2,
				      .l3_groups = 16,
				      .nodes = 2,
				      .no_isolated_file = true};
	_cleanup_topology_ struct host_topology *t = make(&h);
	assert_int_equal(t->n_cores, 128);
	assert_int_equal(t->n_l3, 16);
	assert_true(cpu_list_is_empty(t->isolated));
	assert_int_equal(topology_core_of(t, 255), 127);
	assert_int_equal(topology_l3_of(t, 255), 15);
	_cleanup_free_ char *s = topology_format(t);
	assert_non_null(strstr(s, "  core 63: CPUs 127,255 (L3 15, node 1)\n"));
	assert_non_null(strstr(s, "L3 15: CPUs 120-127,248-255\n"));

	/* 16 vCPUs: the first CCD has lost its first core to the host, the second is whole */
	_cleanup_free_ char *y = suggest(t, 16);
	assert_non_null(strstr(y, "on host CPUs 8-15,136-143 (L3 group 1, NUMA node 0)"));
	assert_suggestion_consistent(t, y, 16, NULL);
	/* 32 vCPUs: two whole CCDs of node 0, one guest socket each */
	_cleanup_free_ char *big = suggest(t, 32);
	assert_non_null(strstr(big, "on host CPUs 8-23,136-151 (L3 groups 1-2, NUMA node 0)"));
	assert_non_null(strstr(big, "- smp: [ 32, sockets: 2, cores: 8, threads: 2 ]"));
	assert_suggestion_consistent(t, big, 32, NULL);
}

/* ---- missing pieces -----------------------------------------------------------------------------
 */

static void test_no_cache_no_nodes_one_core(void **state)
{
	static const struct fake h = {.cpus = 2, .smt = 2, .packages = 1};
	_cleanup_topology_ struct host_topology *t = make(&h);
	assert_int_equal(t->n_l3, 0);
	assert_int_equal(t->n_nodes, 0);
	_cleanup_free_ char *s = topology_format(t);
	assert_non_null(strstr(s, "  core 0: CPUs 0-1\n"));
	char *y = NULL;
	struct ql_error err = {0};
	assert_int_equal(topology_suggest(t, 1, &y, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "this host has one core"));
	ql_error_clear(&err);
}

static void test_broken_tree(void **state)
{
	/* make() writes the sysfs tree the broken file goes into */
	_cleanup_topology_ struct host_topology *good = make(&smt2);
	assert_non_null(good);
	char path[128];
	snprintf(path, sizeof(path), "%s/sys/devices/system/cpu/cpu3/topology/core_id", root);
	FILE *f = fopen(path, "w");
	fputs("three\n", f);
	fclose(f);
	struct host_topology *t = NULL;
	struct ql_error err = {0};
	assert_int_equal(topology_read(root, &t, &err), -EINVAL);
	assert_null(t);
	assert_non_null(strstr(err.msg, "cpu3/topology/core_id` does not hold a small number"));
	ql_error_clear(&err);
	assert_int_equal(topology_read("/nonexistent", &t, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/sys/devices/system/cpu/possible"));
	ql_error_clear(&err);
}

static void test_smp_topology(void **state)
{
	_cleanup_definition_ struct definition *none = parse("qemu:\n- m: 1G\n");
	struct smp_topology s = smp_topology_of(none);
	assert_true(s.known);
	assert_int_equal(s.cpus, 1);
	_cleanup_definition_ struct definition *d =
	    parse("qemu:\n- smp: [ 8, sockets: 2, threads: 2 ]\n");
	s = smp_topology_of(d);
	assert_int_equal(s.cpus, 8);
	assert_int_equal(s.cores, 2);
	struct vcpu_pin pin = {.socket = 1, .core = 1, .thread = 0, .index = -1};
	assert_int_equal(smp_cpu_index(&s, &pin), 6);
	/* outside the topology (2 sockets x 2 cores x 2 threads): no index, not another vCPU's */
	static const struct vcpu_pin outside[] = {
	    {.socket = 0, .core = 0, .thread = 2, .index = -1},
	    {.socket = 0, .core = 2, .thread = 0, .index = -1},
	    {.socket = 2, .core = 0, .thread = 0, .index = -1}};
	for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++)
		assert_int_equal(smp_cpu_index(&s, &outside[i]), -1);
	/* qemu 7.2 works out omitted threads last, from maxcpus; cpus defaults to maxcpus */
	static const struct {
		const char *smp;
		unsigned cpus, sockets, cores, threads;
	} cases[] = {
	    {"8,sockets=1,cores=4", 8, 1, 4, 2},
	    {"maxcpus=8,sockets=1,cores=4", 8, 1, 4, 2},
	    {"maxcpus=2,sockets=1,cores=1", 2, 1, 1, 2},
	    {"4,maxcpus=8,sockets=2", 4, 2, 4, 1},
	    {"6", 6, 1, 6, 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "qemu:\n- smp: '%s'\n", cases[i].smp);
		_cleanup_definition_ struct definition *c = parse(text);
		struct smp_topology t = smp_topology_of(c);
		assert_true(t.known);
		assert_int_equal(t.cpus, cases[i].cpus);
		assert_int_equal(t.sockets, cases[i].sockets);
		assert_int_equal(t.cores, cases[i].cores);
		assert_int_equal(t.threads, cases[i].threads);
	}
	/* repeated -smp options merge, the later keys winning */
	_cleanup_definition_ struct definition *two =
	    parse("qemu:\n- smp: 4\n- smp: [ sockets: 2, threads: 2 ]\n");
	s = smp_topology_of(two);
	assert_true(s.known);
	assert_int_equal(s.cpus, 4);
	assert_int_equal(s.cores, 1);
	/* a product that is not maxcpus: qemu refuses it */
	_cleanup_definition_ struct definition *bad = parse("qemu:\n- smp: 3,sockets=2,cores=2\n");
	assert_false(smp_topology_of(bad).known);
	/* factors whose product wraps to 0 in 32 bits (65536 * 65536), or overflows 64: refused,
	 * not a division by zero */
	static const char *const huge[] = {
	    "qemu:\n- smp: [ 4, sockets: 65536, threads: 65536 ]\n",
	    "qemu:\n- smp: [ 4, sockets: 65536, cores: 65536 ]\n",
	    "qemu:\n- smp: [ 4, cores: 65536, threads: 65536 ]\n",
	    "qemu:\n- smp: [ 4, sockets: 999999, dies: 999999, cores: 999999, threads: 999999 ]\n",
	    "qemu:\n- smp: [ sockets: 65536, dies: 65536, cores: 65536, threads: 65536 ]\n",
	};
	for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
		_cleanup_definition_ struct definition *h = parse(huge[i]);
		assert_false(smp_topology_of(h).known);
	}
	_cleanup_definition_ struct definition *cl = parse("qemu:\n- smp: 4,clusters=2\n");
	assert_false(smp_topology_of(cl).known);
	char *y = NULL;
	struct ql_error err = {0};
	_cleanup_topology_ struct host_topology *t = make(&smt2);
	assert_int_equal(topology_suggest_for(t, cl, &y, &err), -EINVAL);
	ql_error_clear(&err);
	assert_int_equal(topology_suggest_for(t, d, &y, &err), -ENOSPC);
	ql_error_clear(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_smt2_read_and_format, teardown),
	    cmocka_unit_test_teardown(test_smt2_suggest_pairs_siblings, teardown),
	    cmocka_unit_test_teardown(test_smt2_too_many, teardown),
	    cmocka_unit_test_teardown(test_smt2_check_split_siblings, teardown),
	    cmocka_unit_test_teardown(test_check_emulator_overlap, teardown),
	    cmocka_unit_test_teardown(test_no_smt, teardown),
	    cmocka_unit_test_teardown(test_numa2, teardown),
	    cmocka_unit_test_teardown(test_numa2_check, teardown),
	    cmocka_unit_test_teardown(test_two_l3_groups, teardown),
	    cmocka_unit_test_teardown(test_offline_cpus, teardown),
	    cmocka_unit_test_teardown(test_hybrid_falls_back_to_one_thread, teardown),
	    cmocka_unit_test_teardown(test_smt2_check_sibling_cores, teardown),
	    cmocka_unit_test_teardown(test_snc_one_l3_two_nodes, teardown),
	    cmocka_unit_test_teardown(test_256_cpus, teardown),
	    cmocka_unit_test_teardown(test_no_cache_no_nodes_one_core, teardown),
	    cmocka_unit_test_teardown(test_broken_tree, teardown),
	    cmocka_unit_test_teardown(test_smp_topology, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
