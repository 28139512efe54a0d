/* Unit tests of the pure isolation planning (cpuset_v1_plan.c, cgroup_v2_plan.c) on many host
 * shapes: 1 to 256 CPUs, other VMs present, CPUs outside the usable set (offline or not
 * delegated), partitions that cannot form. No kernel is touched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup_v2_plan.h"
#include "cpuset_v1_plan.h"

/* ---- helpers ---- */

static struct cpu_list *cpus(const char *text)
{
	struct cpu_list *l = NULL;
	struct ql_error err = {0};
	assert_int_equal(cpu_list_parse(text, &l, &err), 0);
	return l;
}

static void assert_cpus(const struct cpu_list *l, const char *want)
{
	assert_non_null(l);
	char *got = cpu_list_format(l);
	assert_string_equal(got, want);
	free(got);
}

/* A request: vCPU i on host CPU host[i]. */
struct request {
	struct vcpu_placement v[300];
	struct isolation_plan plan;
};

static void request(struct request *r, const unsigned *host, size_t n, const char *emulator)
{
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < n; i++)
		r->v[i] = (struct vcpu_placement){
		    .cpu_index = (int)i, .tid = 1000 + (pid_t)i, .host_cpu = host[i]};
	r->plan = (struct isolation_plan){.qemu_pid = 999,
					  .vcpus = r->v,
					  .n_vcpus = n,
					  .emulator_cpus = emulator ? cpus(emulator) : NULL};
}

static void request_done(struct request *r)
{
	cpu_list_free((struct cpu_list *)r->plan.emulator_cpus);
}

/* ---- cgroup v2 ---- */

struct v2_case {
	struct cpu_list *usable, *prefix_cpus;
	struct cg2_other_vm others[4];
	struct cpu_list *owned[8];
	size_t n_owned;
	struct cg2_host h;
};

static void v2_host(struct v2_case *c, const char *usable)
{
	memset(c, 0, sizeof(*c));
	c->usable = cpus(usable);
	c->h = (struct cg2_host){.root = "/sys/fs/cgroup",
				 .prefix = "qemu",
				 .vm = "vm",
				 .usable = c->usable,
				 .top_root = true,
				 .prefix_partition = CG2_PART_MEMBER,
				 .others = c->others};
}

static void v2_other(struct v2_case *c, const char *name, const char *vcpus, const char *vm,
		     bool partition)
{
	struct cpu_list *a = cpus(vcpus), *b = cpus(vm);
	c->owned[c->n_owned++] = a;
	c->owned[c->n_owned++] = b;
	c->others[c->h.n_others++] = (struct cg2_other_vm){name, a, b, partition};
}

static void v2_done(struct v2_case *c)
{
	cpu_list_free(c->usable);
	cpu_list_free(c->prefix_cpus);
	for (size_t i = 0; i < c->n_owned; i++)
		cpu_list_free(c->owned[i]);
}

static void test_v2_partitions_with_emulator_cpu(void **state)
{
	(void)state;
	struct v2_case c;
	struct request r;
	v2_host(&c, "0-5");
	request(&r, (unsigned[]){2, 3}, 2, "1");
	struct cg2_plan p;
	struct ql_error err = {0};
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, &err), 0);
	assert_cpus(p.vcpus, "2-3");
	assert_cpus(p.emulator, "1");
	assert_cpus(p.vm, "1-3");
	assert_true(p.partitions);
	/* the prefix keeps the highest free CPU for itself; the root keeps 0 and 4 */
	assert_cpus(p.prefix, "1-3,5");
	assert_false(p.emulator_shares_vcpus);
	cg2_plan_done(&p);
	request_done(&r);
	v2_done(&c);
}

static void test_v2_default_emulator_takes_the_rest_so_no_partition(void **state)
{
	(void)state;
	struct v2_case c;
	struct request r;
	v2_host(&c, "0-3");
	request(&r, (unsigned[]){2, 3}, 2, NULL);
	struct cg2_plan p;
	struct ql_error err = {0};
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, &err), 0);
	assert_cpus(p.emulator, "0-1");
	assert_cpus(p.vm, "0-3");
	assert_false(p.partitions);
	assert_non_null(strstr(p.why_not, "leave too few"));
	assert_null(p.prefix);
	cg2_plan_done(&p);

	/* isolate_cpus: true makes that an error with the reason */
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_TRUE, &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "cannot form CPU partitions"));
	assert_non_null(strstr(err.msg, "leave too few"));
	ql_error_clear(&err);
	request_done(&r);
	v2_done(&c);
}

/* isolate_cpus: true with no emulator_pinning takes one emulator CPU of its own, so that the root
 * and the prefix each keep one: the lowest CPU the vCPUs leave stays the root's, the highest the
 * prefix's, the next lowest is the emulator's and the rest stay the host's. auto still gives the
 * emulator every CPU the vCPUs leave (no partition), and too few CPUs are still refused. */
static void test_v2_true_takes_one_emulator_cpu(void **state)
{
	(void)state;
	static const struct {
		const char *usable;
		unsigned vcpus[2];
		const char *emulator, *prefix, *vm; /* emulator NULL: refused */
	} cases[] = {
	    {"0-5", {2, 3}, "1", "1-3,5", "1-3"},
	    {"0-3", {1, 1}, "2", "1-3", "1-2"},
	    {"0-7", {6, 7}, "1", "1,5-7", "1,6-7"},
	    {"0-3", {2, 3}, NULL, NULL, NULL}, /* 0 the root's, 1 the prefix's: none left */
	    {"0-2", {1, 1}, NULL, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct v2_case c;
		struct request r;
		struct cg2_plan p;
		struct ql_error err = {0};
		v2_host(&c, cases[i].usable);
		request(&r, cases[i].vcpus, 2, NULL);
		int rc = cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_TRUE, &p, &err);
		if (!cases[i].emulator) {
			assert_int_equal(rc, -EINVAL);
			assert_non_null(strstr(err.msg, "leave too few"));
			ql_error_clear(&err);
		} else {
			if (rc < 0)
				print_error("case %zu: %s\n", i, err.msg);
			assert_int_equal(rc, 0);
			assert_true(p.partitions);
			assert_true(p.emulator_chosen);
			assert_null(p.why_not);
			assert_cpus(p.emulator, cases[i].emulator);
			assert_cpus(p.prefix, cases[i].prefix);
			assert_cpus(p.vm, cases[i].vm);
			cg2_plan_done(&p);
			/* auto leaves the emulator every CPU the vCPUs leave, as before */
			assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, &err),
					 0);
			assert_false(p.partitions);
			assert_false(p.emulator_chosen);
			_cleanup_cpu_list_ struct cpu_list *rest = cpus(cases[i].usable);
			cpu_list_subtract(rest, p.vcpus);
			assert_true(cpu_list_equal(p.emulator, rest));
			cg2_plan_done(&p);
		}
		request_done(&r);
		v2_done(&c);
	}
}

/* run-demo.sh's layouts on a cgroup v2 host (no cpuset v1): with 5 CPUs vCPUs on 1 and 2, the
 * emulator on 3; with 4 both vCPUs on 1, the emulator on 2. Each must partition with
 * isolate_cpus: true (a stock Debian 12 host); with 3 CPUs none can, so the demo asks for auto. */
static void test_v2_demo_layouts_partition(void **state)
{
	(void)state;
	static const struct {
		const char *usable, *emulator;
		unsigned vcpus[2];
		bool partitions;
	} layouts[] = {
	    {"0-4", "3", {1, 2}, true},
	    {"0-3", "2", {1, 1}, true},
	    {"0-2", "2", {1, 1}, false},
	};
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		struct v2_case c;
		struct request r;
		struct cg2_plan p;
		struct ql_error err = {0};
		v2_host(&c, layouts[i].usable);
		request(&r, layouts[i].vcpus, 2, layouts[i].emulator);
		int rc = cg2_plan_build(&c.h, &r.plan,
					layouts[i].partitions ? QL_ISOLATE_TRUE : QL_ISOLATE_AUTO,
					&p, &err);
		if (rc < 0)
			print_error("layout %zu: %s\n", i, err.msg);
		assert_int_equal(rc, 0);
		assert_int_equal(p.partitions, layouts[i].partitions);
		cg2_plan_done(&p);
		if (!layouts[i].partitions) { /* none can: true is refused, not merely not taken */
			assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_TRUE, &p, &err),
					 -EINVAL);
			ql_error_clear(&err);
		}
		request_done(&r);
		v2_done(&c);
	}
}

static void test_v2_off_never_partitions(void **state)
{
	(void)state;
	struct v2_case c;
	struct request r;
	v2_host(&c, "0-7");
	request(&r, (unsigned[]){6, 7}, 2, "1");
	struct cg2_plan p;
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_FALSE, &p, NULL), 0);
	assert_false(p.partitions);
	assert_null(p.prefix);
	cg2_plan_done(&p);
	request_done(&r);
	v2_done(&c);
}

static void test_v2_one_cpu_shares_emulator(void **state)
{
	(void)state;
	struct v2_case c;
	struct request r;
	v2_host(&c, "0");
	request(&r, (unsigned[]){0}, 1, NULL);
	struct cg2_plan p;
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, NULL), 0);
	assert_cpus(p.emulator, "0");
	assert_true(p.emulator_shares_vcpus);
	assert_false(p.partitions);
	assert_non_null(strstr(p.why_not, "share CPUs with vCPUs"));
	cg2_plan_done(&p);
	request_done(&r);
	v2_done(&c);
}

static void test_v2_conflicts_name_the_other_vm(void **state)
{
	(void)state;
	struct v2_case c;
	struct request r;
	struct ql_error err = {0};
	struct cg2_plan p;
	v2_host(&c, "0-7");
	c.h.prefix_partition = CG2_PART_ROOT;
	v2_other(&c, "gamer", "2", "1-2", false);
	v2_other(&c, "rt", "5", "4-5", true);

	request(&r, (unsigned[]){3, 2}, 2, NULL);
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, &err), -EBUSY);
	assert_non_null(
	    strstr(err.msg, "host CPU 2 (vCPU 1) is already used by the running VM `gamer`"));
	ql_error_clear(&err);
	request_done(&r);
	/* a vCPU whose index is not known (a nested pin under an -smp not followed) is not
	 * called vCPU -1 */
	request(&r, (unsigned[]){3, 2}, 2, NULL);
	r.v[1].cpu_index = -1;
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "host CPU 2 is already used by the running VM `gamer`"));
	ql_error_clear(&err);
	request_done(&r);

	/* a partitioned VM owns all of its CPUs, not only its vCPUs' */
	request(&r, (unsigned[]){4}, 1, NULL);
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "`rt`"));
	ql_error_clear(&err);
	request_done(&r);

	/* emulator_pinning onto another VM's vCPU */
	request(&r, (unsigned[]){6}, 1, "5");
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "emulator CPU 5 is already used by the running VM `rt`"));
	ql_error_clear(&err);
	request_done(&r);
	v2_done(&c);
}

static void test_v2_default_emulator_avoids_other_vms(void **state)
{
	(void)state;
	struct v2_case c;
	struct request r;
	v2_host(&c, "0-7");
	v2_other(&c, "a", "1", "0-1", false);
	v2_other(&c, "b", "6", "6-7", true);
	request(&r, (unsigned[]){2, 3}, 2, NULL);
	struct cg2_plan p;
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, NULL), 0);
	assert_cpus(p.emulator, "0,4-5");
	/* other VMs without partitions (prefix is a member): none for us either */
	assert_false(p.partitions);
	assert_non_null(strstr(p.why_not, "run without partitions"));
	cg2_plan_done(&p);
	request_done(&r);
	v2_done(&c);
}

static void test_v2_cpu_outside_usable(void **state)
{
	(void)state;
	struct v2_case c;
	struct request r;
	struct ql_error err = {0};
	struct cg2_plan p;
	/* CPU 5 offline (or outside a delegated root) */
	v2_host(&c, "0-4,6-7");
	request(&r, (unsigned[]){5}, 1, NULL);
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, &err), -EINVAL);
	assert_non_null(strstr(
	    err.msg, "host CPU 5 (vCPU 0) is not among the CPUs of /sys/fs/cgroup (0-4,6-7)"));
	ql_error_clear(&err);
	request_done(&r);

	request(&r, (unsigned[]){4}, 1, "5");
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "emulator CPUs 5 are not among"));
	ql_error_clear(&err);
	request_done(&r);
	v2_done(&c);
}

static void test_v2_delegated_root_must_be_partition(void **state)
{
	(void)state;
	struct v2_case c;
	struct request r;
	v2_host(&c, "0-7");
	c.h.top_root = false;
	c.h.root_partition = CG2_PART_MEMBER;
	request(&r, (unsigned[]){6, 7}, 2, "1");
	struct cg2_plan p;
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, NULL), 0);
	assert_false(p.partitions);
	assert_non_null(strstr(p.why_not, "is not a partition root"));
	cg2_plan_done(&p);
	c.h.root_partition = CG2_PART_ROOT;
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, NULL), 0);
	assert_true(p.partitions);
	cg2_plan_done(&p);
	request_done(&r);
	v2_done(&c);
}

static void test_v2_join_partitioned_prefix(void **state)
{
	(void)state;
	struct v2_case c;
	struct request r;
	v2_host(&c, "0-7");
	c.h.prefix_partition = CG2_PART_ROOT;
	c.prefix_cpus = cpus("1-3,7");
	c.h.prefix_cpus = c.prefix_cpus;
	v2_other(&c, "first", "2-3", "1-3", true);
	/* partitioned: the prefix grows by our VM */
	request(&r, (unsigned[]){5, 6}, 2, "4");
	struct cg2_plan p;
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, NULL), 0);
	assert_true(p.prefix_was_root);
	assert_true(p.partitions);
	assert_cpus(p.prefix, "1-7");
	cg2_plan_done(&p);
	request_done(&r);

	/* no emulator_pinning: the CPUs chosen for the emulator leave the prefix its spare (7)
	 * and the root a CPU (0), so the partitions form; with every free CPU (0,4,6-7) neither
	 * partitions nor a member VM fitted, and the start was refused although CPUs were free */
	request(&r, (unsigned[]){5}, 1, NULL);
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, NULL), 0);
	assert_cpus(p.emulator, "4,6");
	assert_true(p.partitions);
	assert_cpus(p.prefix, "1-7");
	cg2_plan_done(&p);
	request_done(&r);

	/* emulator shared with the vCPUs: no partition, but the prefix must still own our CPUs */
	request(&r, (unsigned[]){5, 6}, 2, "5");
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, NULL), 0);
	assert_false(p.partitions);
	assert_cpus(p.prefix, "1-3,5-7");
	cg2_plan_done(&p);
	request_done(&r);
	v2_done(&c);
}

/* emulator_pinning without vcpu_pinning (a libvirt <emulatorpin> alone): the emulator set only,
 * no partition in any mode, still no CPU another VM holds. */
static void test_v2_emulator_only(void **state)
{
	(void)state;
	struct v2_case c;
	struct request r;
	struct ql_error err = {0};
	struct cg2_plan p;
	v2_host(&c, "0-5");
	request(&r, NULL, 0, "1-2");
	for (enum ql_isolate mode = QL_ISOLATE_AUTO; mode <= QL_ISOLATE_FALSE; mode++) {
		assert_int_equal(cg2_plan_build(&c.h, &r.plan, mode, &p, &err), 0);
		assert_true(cpu_list_is_empty(p.vcpus));
		assert_cpus(p.emulator, "1-2");
		assert_cpus(p.vm, "1-2");
		assert_true(p.emulator_only);
		assert_false(p.partitions);
		assert_false(p.emulator_shares_vcpus);
		assert_null(p.why_not);
		assert_null(p.prefix);
		cg2_plan_done(&p);
	}
	request_done(&r);
	v2_done(&c);

	/* beside a partitioned VM: the prefix grows by the emulator CPUs, its CPUs stay its own */
	v2_host(&c, "0-7");
	c.h.prefix_partition = CG2_PART_ROOT;
	c.prefix_cpus = cpus("3-4,7");
	c.h.prefix_cpus = c.prefix_cpus;
	v2_other(&c, "rt", "4", "3-4", true);
	request(&r, NULL, 0, "1-2");
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_TRUE, &p, &err), 0);
	assert_true(p.emulator_only);
	assert_false(p.partitions);
	assert_cpus(p.prefix, "1-4,7");
	cg2_plan_done(&p);
	request_done(&r);
	request(&r, NULL, 0, "2-3");
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "emulator CPU 3 is already used by the running VM `rt`"));
	ql_error_clear(&err);
	request_done(&r);
	v2_done(&c);
}

static void test_v2_256_cpus(void **state)
{
	(void)state;
	struct v2_case c;
	struct request r;
	v2_host(&c, "0-255");
	unsigned host[64];
	for (unsigned i = 0; i < 64; i++)
		host[i] = 192 + i;
	request(&r, host, 64, "1");
	struct cg2_plan p;
	assert_int_equal(cg2_plan_build(&c.h, &r.plan, QL_ISOLATE_AUTO, &p, NULL), 0);
	assert_cpus(p.vcpus, "192-255");
	assert_cpus(p.vm, "1,192-255");
	assert_true(p.partitions);
	assert_cpus(p.prefix, "1,191-255");
	cg2_plan_done(&p);
	request_done(&r);
	v2_done(&c);
}

static void test_v2_tidy_and_shrink(void **state)
{
	(void)state;
	struct cg2_tidy t = cg2_plan_tidy(CG2_PART_ROOT, true, 0);
	assert_true(t.reset_partition);
	assert_true(t.clear_cpus);
	t = cg2_plan_tidy(CG2_PART_INVALID, false, 0);
	assert_true(t.reset_partition);
	assert_false(t.clear_cpus);
	t = cg2_plan_tidy(CG2_PART_ROOT, true, 2); /* other VMs keep it */
	assert_false(t.reset_partition);
	assert_false(t.clear_cpus);
	t = cg2_plan_tidy(CG2_PART_NONE, false, 0);
	assert_false(t.reset_partition);

	struct cpu_list *cur = cpus("1-7"), *a = cpus("2-3"), *empty = cpus(""), *out = NULL;
	const struct cpu_list *left[] = {a};
	assert_int_equal(cg2_plan_shrunk_prefix(cur, left, 1, &out), 0);
	assert_cpus(out, "2-3,7"); /* the remaining VM plus the highest spare, as when it was made */
	cpu_list_free(out);
	const struct cpu_list *inheriting[] = {a, empty};
	assert_int_equal(cg2_plan_shrunk_prefix(cur, inheriting, 2, &out), 0);
	assert_null(out);
	cpu_list_free(cur);
	cur = cpus("2-3,7");
	assert_int_equal(cg2_plan_shrunk_prefix(cur, left, 1, &out), 0);
	assert_null(out); /* already that */
	cpu_list_free(cur);
	cpu_list_free(a);
	cpu_list_free(empty);

	assert_int_equal(cg2_partition_parse("root"), CG2_PART_ROOT);
	assert_int_equal(cg2_partition_parse("isolated"), CG2_PART_ISOLATED);
	assert_int_equal(cg2_partition_parse("member"), CG2_PART_MEMBER);
	assert_int_equal(cg2_partition_parse("root invalid (Parent is not a partition root)"),
			 CG2_PART_INVALID);
}

/* ---- cpuset v1 ---- */

static void test_v1_pool_gives_up_vcpu_cpus(void **state)
{
	(void)state;
	struct v1_others o;
	assert_int_equal(v1_others_init(&o), 0);
	struct cpu_list *p_cpus = cpus("0-3");
	struct v1_host h = {.p_disp = "/m/qemu", .vm = "vm", .p_cpus = p_cpus, .others = &o};
	struct request r;
	request(&r, (unsigned[]){3, 2}, 2, NULL);
	struct v1_plan p;
	assert_int_equal(v1_plan_build(&h, &r.plan, &p, NULL), 0);
	assert_cpus(p.vcpus, "2-3");
	assert_cpus(p.vm, "2-3");
	assert_cpus(p.pool_before, "0-3");
	assert_cpus(p.pool_after, "0-1");
	v1_plan_done(&p);
	request_done(&r);

	request(&r, (unsigned[]){3}, 1, "1");
	assert_int_equal(v1_plan_build(&h, &r.plan, &p, NULL), 0);
	assert_cpus(p.vm, "1,3");
	assert_cpus(p.pool_after, "0-2"); /* emulator CPUs are not taken from the pool */
	v1_plan_done(&p);
	request_done(&r);
	cpu_list_free(p_cpus);
	v1_others_done(&o);
}

/* Another VM's emulator CPU may be ours too, but no vCPU of ours may take it: the pool would
 * leave it while that VM's emulator set keeps it, its threads beside our vCPU. */
static void test_v1_others_emulator_cpus(void **state)
{
	(void)state;
	struct v1_others o;
	struct ql_error err = {0};
	struct v1_plan p;
	struct request r;
	assert_int_equal(v1_others_init(&o), 0);
	assert_int_equal(v1_others_add(&o, "a", 1, false), 0);
	assert_int_equal(v1_others_add(&o, "a", 3, true), 0);
	assert_string_equal(v1_others_owner(&o, 3, true), "a");
	assert_null(v1_others_owner(&o, 3, false));
	assert_null(v1_others_owner(&o, 1, true));
	struct cpu_list *p_cpus = cpus("0-5");
	struct v1_host h = {.p_disp = "/m/qemu", .vm = "vm", .p_cpus = p_cpus, .others = &o};

	request(&r, (unsigned[]){3}, 1, NULL);
	assert_int_equal(v1_plan_build(&h, &r.plan, &p, &err), -EBUSY);
	assert_string_equal(err.msg, "host CPU 3 is an emulator CPU of running VM `a` (its "
				     "emulator_pinning), which a vCPU cannot have to itself");
	ql_error_clear(&err);
	request_done(&r);

	/* shared as an emulator CPU: fine, and it stays in the pool */
	request(&r, (unsigned[]){4}, 1, "3");
	assert_int_equal(v1_plan_build(&h, &r.plan, &p, &err), 0);
	assert_cpus(p.vm, "3-4");
	assert_cpus(p.pool_after, "0,2-3,5");
	v1_plan_done(&p);
	request_done(&r);
	cpu_list_free(p_cpus);
	v1_others_done(&o);
}

static void test_v1_conflicts_and_limits(void **state)
{
	(void)state;
	struct v1_others o;
	struct ql_error err = {0};
	struct v1_plan p;
	struct request r;
	assert_int_equal(v1_others_init(&o), 0);
	assert_int_equal(v1_others_add(&o, "other", 2, false), 0);
	/* the first VM recorded is named */
	assert_int_equal(v1_others_add(&o, "late", 2, false), 0);
	assert_int_equal(v1_others_add(&o, "big", CPU_LIST_MAX_CPUS - 1, false), 0);
	assert_int_equal(v1_others_add(&o, "big", CPU_LIST_MAX_CPUS, false), -ERANGE);
	assert_string_equal(v1_others_owner(&o, CPU_LIST_MAX_CPUS - 1, false), "big");
	assert_null(v1_others_owner(&o, 3, false));
	struct cpu_list *p_cpus = cpus("0-3");
	struct v1_host h = {.p_disp = "/m/qemu", .vm = "vm", .p_cpus = p_cpus, .others = &o};

	request(&r, (unsigned[]){1, 2}, 2, NULL);
	assert_int_equal(v1_plan_build(&h, &r.plan, &p, &err), -EBUSY);
	assert_string_equal(err.msg, "host CPU 2 is pinned by running VM `other`");
	ql_error_clear(&err);
	request_done(&r);

	request(&r, (unsigned[]){1}, 1, "2");
	assert_int_equal(v1_plan_build(&h, &r.plan, &p, &err), -EBUSY);
	assert_string_equal(err.msg,
			    "emulator_pinning: host CPU 2 is pinned by running VM `other`");
	ql_error_clear(&err);
	request_done(&r);

	request(&r, (unsigned[]){5}, 1, NULL);
	assert_int_equal(v1_plan_build(&h, &r.plan, &p, &err), -EINVAL);
	assert_string_equal(err.msg, "host CPU 5 is not among the CPUs of `/m/qemu` (0-3)");
	ql_error_clear(&err);
	request_done(&r);

	/* CPUs 0,1,3 are free; taking all three leaves the pool nothing */
	request(&r, (unsigned[]){0, 1, 3}, 3, NULL);
	assert_int_equal(v1_plan_build(&h, &r.plan, &p, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "leaves no CPU for `/m/qemu/pool` (free CPUs: 0-1,3)"));
	ql_error_clear(&err);
	request_done(&r);

	o.ours_running = true;
	request(&r, (unsigned[]){0}, 1, NULL);
	assert_int_equal(v1_plan_build(&h, &r.plan, &p, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "VM `vm` is already running"));
	ql_error_clear(&err);
	request_done(&r);
	cpu_list_free(p_cpus);
	v1_others_done(&o);
}

static void test_v1_256_cpus_many_vms(void **state)
{
	(void)state;
	struct v1_others o;
	assert_int_equal(v1_others_init(&o), 0);
	char name[16];
	for (unsigned vm = 0; vm < 3; vm++)
		for (unsigned c = 0; c < 32; c++) {
			snprintf(name, sizeof(name), "vm%u", vm);
			assert_int_equal(v1_others_add(&o, name, 64 + vm * 32 + c, false), 0);
		}
	struct cpu_list *p_cpus = cpus("0-255");
	struct v1_host h = {.p_disp = "/m/qemu", .vm = "new", .p_cpus = p_cpus, .others = &o};
	unsigned host[64];
	for (unsigned i = 0; i < 64; i++)
		host[i] = 192 + i;
	struct request r;
	request(&r, host, 64, NULL);
	struct v1_plan p;
	assert_int_equal(v1_plan_build(&h, &r.plan, &p, NULL), 0);
	assert_cpus(p.pool_before, "0-63,160-255");
	assert_cpus(p.pool_after, "0-63,160-191");
	v1_plan_done(&p);
	request_done(&r);

	/* after a VM left, the pool gets everything the others do not pin */
	struct cpu_list *pool = v1_plan_pool_after_release(p_cpus, &o);
	assert_cpus(pool, "0-63,160-255");
	cpu_list_free(pool);

	struct ql_error err = {0};
	request(&r, (unsigned[]){100}, 1, NULL);
	assert_int_equal(v1_plan_build(&h, &r.plan, &p, &err), -EBUSY);
	assert_string_equal(err.msg, "host CPU 100 is pinned by running VM `vm1`");
	ql_error_clear(&err);
	request_done(&r);
	cpu_list_free(p_cpus);
	v1_others_done(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_v2_partitions_with_emulator_cpu),
	    cmocka_unit_test(test_v2_default_emulator_takes_the_rest_so_no_partition),
	    cmocka_unit_test(test_v2_off_never_partitions),
	    cmocka_unit_test(test_v2_true_takes_one_emulator_cpu),
	    cmocka_unit_test(test_v2_demo_layouts_partition),
	    cmocka_unit_test(test_v2_one_cpu_shares_emulator),
	    cmocka_unit_test(test_v2_conflicts_name_the_other_vm),
	    cmocka_unit_test(test_v2_default_emulator_avoids_other_vms),
	    cmocka_unit_test(test_v2_cpu_outside_usable),
	    cmocka_unit_test(test_v2_delegated_root_must_be_partition),
	    cmocka_unit_test(test_v2_join_partitioned_prefix),
	    cmocka_unit_test(test_v2_emulator_only),
	    cmocka_unit_test(test_v2_256_cpus),
	    cmocka_unit_test(test_v2_tidy_and_shrink),
	    cmocka_unit_test(test_v1_pool_gives_up_vcpu_cpus),
	    cmocka_unit_test(test_v1_conflicts_and_limits),
	    cmocka_unit_test(test_v1_others_emulator_cpus),
	    cmocka_unit_test(test_v1_256_cpus_many_vms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
