/* Unit tests of the housekeeping plan on a fake /proc and /sys tree: which IRQs, cpumasks and
 * sysctls are written and to what, the hex mask form, and the apply through a real journal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "housekeeping.h"
#include "housekeeping_status.h"

static char root[64];

static void put(const char *rel, const char *value)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p \"$(dirname '%s/%s')\" && printf '%%s\\n' '%s' >'%s/%s'", root, rel,
		 value, root, rel);
	assert_int_equal(system(cmd), 0);
}

static char *get(const char *rel)
{
	char path[512], buf[256] = "";
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strdup(buf);
}

/* A 4-CPU host: IRQ 0 everywhere, IRQ 9 on 2-3 only (all vCPU CPUs), IRQ 24 on 0 already. */
static int setup(void **state)
{
	(void)state;
	strcpy(root, "/tmp/ql-hk-XXXXXX");
	assert_non_null(mkdtemp(root));
	put("sys/devices/system/cpu/online", "0-3");
	put("proc/irq/default_smp_affinity", "f");
	put("proc/irq/0/smp_affinity_list", "0-3");
	put("proc/irq/9/smp_affinity_list", "2-3");
	put("proc/irq/9/nvme0q3/.keep", ""); /* a handler's directory names the IRQ */
	put("proc/irq/24/smp_affinity_list", "0");
	put("sys/devices/virtual/workqueue/cpumask", "f");
	put("sys/bus/workqueue/devices/writeback/cpumask", "f");
	put("proc/sys/vm/stat_interval", "1");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd);
}

static struct cpu_list *cpus(const char *s)
{
	struct cpu_list *l = NULL;
	struct ql_error err = {0};
	assert_int_equal(cpu_list_parse(s, &l, &err), 0);
	return l;
}

static const struct hk_write *find(const struct housekeeping_plan *p, const char *rel)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i].path, path) == 0)
			return &p->v[i];
	return NULL;
}

static void test_mask_forms(void **state)
{
	(void)state;
	struct cpu_list *l = NULL;
	assert_int_equal(hk_mask_parse("f\n", &l), 0);
	char *s = cpu_list_format(l);
	assert_string_equal(s, "0-3");
	free(s);
	cpu_list_free(l);
	assert_int_equal(hk_mask_parse("00000001,00000000,80000003", &l), 0);
	s = cpu_list_format(l);
	assert_string_equal(s, "0-1,31,64");
	free(s);
	s = hk_mask_format(l);
	assert_string_equal(s, "1,00000000,80000003");
	free(s);
	cpu_list_free(l);
	assert_int_equal(hk_mask_parse("xyz", &l), -EINVAL);
	assert_int_equal(hk_mask_parse("", &l), -EINVAL);
	l = cpus("");
	s = hk_mask_format(l);
	assert_string_equal(s, "0");
	free(s);
	cpu_list_free(l);
}

/* A handler's name may carry a network interface's (iavf-IFNAME-TxRx-0), which a container's
 * root names as it likes: it reached --status, its JSON and --dry-run raw. */
static void test_irq_names_escaped(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_hk_irq.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/iavf-\x1b[2J\x07\xff-TxRx-0", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	char *names = housekeeping_irq_names(dir);
	assert_string_equal(names, "iavf-\\x1b[2J\\x07\\xff-TxRx-0");
	free(names);
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void test_plan_all(void **state)
{
	(void)state;
	struct ql_housekeeping h = {
	    .on = true, .irqs = true, .workqueues = true, .stat_interval = 10};
	struct cpu_list *v = cpus("2-3");
	struct housekeeping_plan p = {0};
	struct ql_error err = {0};
	assert_int_equal(housekeeping_plan_compute(root, &h, v, &p, &err), 0);
	const struct hk_write *w = find(&p, "proc/irq/default_smp_affinity");
	assert_non_null(w);
	assert_string_equal(w->old, "f");
	assert_string_equal(w->new_value, "3");
	assert_int_equal(w->irq, -1);
	assert_non_null(w = find(&p, "proc/irq/0/smp_affinity_list"));
	assert_string_equal(w->old, "0-3");
	assert_string_equal(w->new_value, "0-1");
	assert_int_equal(w->irq, 0);
	/* every CPU of IRQ 9 is a vCPU's: it goes where new IRQs go */
	assert_non_null(w = find(&p, "proc/irq/9/smp_affinity_list"));
	assert_string_equal(w->new_value, "0-1");
	assert_string_equal(w->irq_name, "nvme0q3");
	assert_null(find(&p, "proc/irq/0/smp_affinity_list")->irq_name);
	/* IRQ 24 is already clear: not written */
	assert_null(find(&p, "proc/irq/24/smp_affinity_list"));
	assert_non_null(w = find(&p, "sys/devices/virtual/workqueue/cpumask"));
	assert_string_equal(w->new_value, "3");
	assert_non_null(w = find(&p, "sys/bus/workqueue/devices/writeback/cpumask"));
	assert_string_equal(w->new_value, "3");
	assert_non_null(w = find(&p, "proc/sys/vm/stat_interval"));
	assert_string_equal(w->old, "1");
	assert_string_equal(w->new_value, "10");
	assert_int_equal(p.n, 6);
	/* IRQs in ascending order (9 before 24, not readdir's or the string order) */
	size_t i9 = 0, i0 = 0;
	for (size_t i = 0; i < p.n; i++) {
		if (p.v[i].irq == 9)
			i9 = i;
		if (p.v[i].irq == 0)
			i0 = i;
	}
	assert_true(i0 < i9);
	char *d = housekeeping_plan_describe(&p);
	assert_non_null(d);
	assert_non_null(strstr(d, "housekeeping: "));
	assert_non_null(strstr(d, "/proc/irq/0/smp_affinity_list: 0-3 -> 0-1"));
	assert_non_null(strstr(d, "stat_interval: 1 -> 10"));
	assert_non_null(strstr(d, "housekeeping: IRQ 9 (nvme0q3): "));
	free(d);
	housekeeping_plan_done(&p);
	cpu_list_free(v);
}

static void test_plan_parts(void **state)
{
	(void)state;
	struct cpu_list *v = cpus("1");
	struct housekeeping_plan p = {0};
	struct ql_error err = {0};
	/* only the workqueues; stat_interval already higher than asked is not lowered */
	put("proc/sys/vm/stat_interval", "30");
	struct ql_housekeeping h = {.on = true, .workqueues = true, .stat_interval = 10};
	assert_int_equal(housekeeping_plan_compute(root, &h, v, &p, &err), 0);
	assert_int_equal(p.n, 2);
	assert_string_equal(p.v[0].new_value, "d");
	assert_null(find(&p, "proc/sys/vm/stat_interval"));
	housekeeping_plan_done(&p);
	/* a kernel without the writeback knob: a note, not an error */
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/sys/bus'", root);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(housekeeping_plan_compute(root, &h, v, &p, &err), 0);
	assert_int_equal(p.n, 1);
	assert_non_null(p.notes);
	assert_non_null(strstr(p.notes[0], "writeback/cpumask is absent"));
	housekeeping_plan_done(&p);
	cpu_list_free(v);
}

static void test_parse_stat(void **state)
{
	(void)state;
	char *comm = NULL;
	unsigned long flags = 0;
	unsigned long long start = 0;
	/* a kworker (PF_KTHREAD | PF_NO_SETAFFINITY...), a name with spaces and parentheses */
	assert_int_equal(hk_parse_stat("23 (kworker/u12:1 (x) y) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 "
				       "0 0 20 0 1 0 57 0 0 18446744073709551615",
				       &comm, &flags, &start),
			 0);
	assert_string_equal(comm, "kworker/u12:1 (x) y");
	assert_int_equal(flags, 69238880);
	assert_int_equal(start, 57);
	free(comm);
	assert_int_equal(hk_parse_stat("23 kworker", &comm, &flags, &start), -EINVAL);
	assert_int_equal(hk_parse_stat("23 (k) I 2", &comm, &flags, &start), -EINVAL);
}

/* irqbalance would move the IRQs back: named in a note (a process whose comm is irqbalance) */
static void test_irqbalance_noted(void **state)
{
	(void)state;
	put("proc/4242/comm", "irqbalance");
	put("proc/77/comm", "bash");
	struct cpu_list *v = cpus("3");
	struct housekeeping_plan p = {0};
	struct ql_error err = {0};
	struct ql_housekeeping h = {.on = true, .irqs = true};
	assert_int_equal(housekeeping_plan_compute(root, &h, v, &p, &err), 0);
	assert_non_null(p.notes);
	assert_non_null(strstr(p.notes[0], "irqbalance is running (pid 4242)"));
	assert_null(p.notes[1]);
	housekeeping_plan_done(&p);
	/* without irqs, irqbalance is not our business */
	h = (struct ql_housekeeping){.on = true, .workqueues = true};
	assert_int_equal(housekeeping_plan_compute(root, &h, v, &p, &err), 0);
	assert_null(p.notes);
	housekeeping_plan_done(&p);
	cpu_list_free(v);
}

static void test_plan_refuses_all_cpus(void **state)
{
	(void)state;
	struct cpu_list *v = cpus("0-3");
	struct housekeeping_plan p = {0};
	struct ql_error err = {0};
	struct ql_housekeeping h = {.on = true, .irqs = true};
	assert_int_equal(housekeeping_plan_compute(root, &h, v, &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "every online CPU (0-3)"));
	ql_error_clear(&err);
	cpu_list_free(v);
	/* a corrupt value is named */
	put("proc/irq/9/smp_affinity_list", "banana");
	v = cpus("3");
	assert_int_equal(housekeeping_plan_compute(root, &h, v, &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "proc/irq/9/smp_affinity_list"));
	ql_error_clear(&err);
	cpu_list_free(v);
}

/* Two VMs: the second plans from what the first wrote, so the union stays clear; the first out
 * leaves the values alone, the last out writes the originals back byte for byte. */
static void test_apply_two_vms(void **state)
{
	(void)state;
	char jdir[128];
	snprintf(jdir, sizeof(jdir), "%s/journal", root);
	struct ql_housekeeping h = {
	    .on = true, .irqs = true, .workqueues = true, .stat_interval = 10};
	struct ql_error err = {0};
	struct journal *a = NULL, *b = NULL;
	assert_int_equal(journal_open(jdir, "a", NULL, &a, &err), 0);
	assert_int_equal(journal_open(jdir, "b", NULL, &b, &err), 0);
	struct cpu_list *va = cpus("3"), *vb = cpus("2");
	struct housekeeping_plan p = {0};
	assert_int_equal(housekeeping_plan_compute(root, &h, va, &p, &err), 0);
	assert_int_equal(housekeeping_apply(&p, a, NULL, &err), 0);
	housekeeping_plan_done(&p);
	char *s = get("proc/irq/0/smp_affinity_list");
	assert_string_equal(s, "0-2");
	free(s);
	/* plan and apply in one step, under the lock launchers share: waited for within the
	 * journal's bound (it was waited for forever), naming the holder, nothing changed */
	char lock[600];
	snprintf(lock, sizeof(lock), "%s/.housekeeping.lock", jdir);
	int held = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(held >= 0);
	assert_int_equal(flock(held, LOCK_EX), 0); /* another open file: another holder */
	journal_set_lock_wait_ms(b, 200);
	assert_int_equal(housekeeping_start(root, &h, vb, b, NULL, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "housekeeping: "));
	assert_non_null(strstr(err.msg, "has held the housekeeping lock"));
	ql_error_clear(&err);
	s = get("proc/irq/0/smp_affinity_list");
	assert_string_equal(s, "0-2");
	free(s);
	close(held);
	assert_int_equal(housekeeping_start(root, &h, vb, b, NULL, &err), 0);
	s = get("proc/irq/0/smp_affinity_list");
	assert_string_equal(s, "0-1");
	free(s);
	s = get("proc/irq/default_smp_affinity");
	assert_string_equal(s, "3");
	free(s);
	/* IRQ 9 (2-3) went to the default of the moment: 0-2 after a, then 0-1 after b */
	s = get("proc/irq/9/smp_affinity_list");
	assert_string_equal(s, "0-1");
	free(s);
	assert_int_equal(journal_undo_own(a, &err), 0);
	s = get("sys/devices/virtual/workqueue/cpumask");
	assert_string_equal(s, "3");
	free(s);
	assert_int_equal(journal_undo_own(b, &err), 0);
	s = get("proc/irq/0/smp_affinity_list");
	assert_string_equal(s, "0-3\n");
	free(s);
	s = get("proc/irq/9/smp_affinity_list");
	assert_string_equal(s, "2-3\n");
	free(s);
	s = get("proc/irq/default_smp_affinity");
	assert_string_equal(s, "f\n");
	free(s);
	s = get("sys/devices/virtual/workqueue/cpumask");
	assert_string_equal(s, "f\n");
	free(s);
	s = get("proc/sys/vm/stat_interval");
	assert_string_equal(s, "1\n");
	free(s);
	journal_free(a);
	journal_free(b);
	cpu_list_free(va);
	cpu_list_free(vb);
}

/* --status: the values a running launcher wrote, compared with the kernel's now. Two VMs: a
 * CPU value that still lacks every VM's CPUs is no drift although it is not a's own write (b
 * wrote after a); a CPU coming back, a changed sysctl and irqbalance are problems. */
static void test_status_drift(void **state)
{
	(void)state;
	char jdir[128];
	snprintf(jdir, sizeof(jdir), "%s/journal", root);
	struct ql_housekeeping h = {
	    .on = true, .irqs = true, .workqueues = true, .stat_interval = 10};
	struct ql_error err = {0};
	struct journal *a = NULL, *b = NULL;
	struct housekeeping_status *st = NULL;
	/* no journal yet: nothing held, nothing to say */
	assert_int_equal(housekeeping_status_collect(jdir, root, NULL, &st, &err), 0);
	assert_int_equal(st->journal, HK_JOURNAL_ABSENT);
	assert_int_equal(housekeeping_status_problems(st), 0);
	housekeeping_status_free(st);
	assert_int_equal(journal_open(jdir, "a", NULL, &a, &err), 0);
	assert_int_equal(journal_open(jdir, "b", NULL, &b, &err), 0);
	struct cpu_list *va = cpus("3"), *vb = cpus("2");
	assert_int_equal(housekeeping_start(root, &h, va, a, NULL, &err), 0);
	assert_int_equal(housekeeping_start(root, &h, vb, b, NULL, &err), 0);
	assert_int_equal(housekeeping_status_collect(jdir, root, NULL, &st, &err), 0);
	assert_int_equal(st->journal, HK_JOURNAL_READ);
	assert_int_equal(housekeeping_status_problems(st), 0);
	/* a: default, 0, 9, two cpumasks, stat_interval; b: the same but stat_interval (10 already)
	 */
	assert_int_equal(st->n_held, 2);
	assert_int_equal(st->held[0].values + st->held[1].values, 11);
	assert_true(st->held[0].alive);
	housekeeping_status_free(st);

	/* behind the launchers' back: IRQ 9 gets CPU 3 again, vm.stat_interval goes to 1 */
	put("proc/irq/9/smp_affinity_list", "0-1,3");
	put("proc/sys/vm/stat_interval", "1");
	put("proc/4242/comm", "irqbalance");
	assert_int_equal(housekeeping_status_collect(jdir, root, NULL, &st, &err), 0);
	assert_int_equal(st->n_drift, 2);
	assert_int_equal(housekeeping_status_problems(st), 3);
	const struct hk_drift *d = st->drift[0].irq == 9 ? &st->drift[0] : &st->drift[1];
	assert_int_equal(d->irq, 9);
	assert_string_equal(d->irq_name, "nvme0q3");
	assert_string_equal(d->now, "0-1,3");
	assert_string_equal(d->back, "3");
	assert_string_equal(d->vm, "a"); /* a's write (0-2) took CPU 3 out */
	assert_int_equal(st->irqbalance, 4242);
	assert_true(st->irqbalance_harms);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	housekeeping_status_format(st, f);
	fclose(f);
	assert_non_null(strstr(text, "  ! IRQ 9 (nvme0q3): "));
	assert_non_null(
	    strstr(text, "smp_affinity_list is 0-1,3: CPUs 3, kept clear for VM a, are back"));
	assert_non_null(strstr(text, "stat_interval is 1, but qemu-launcher wrote 10 for VM a"));
	assert_non_null(strstr(text, "  ! irqbalance is running (pid 4242)"));
	free(text);
	json_object *o = housekeeping_status_json(st);
	assert_non_null(o);
	const char *js = json_object_to_json_string_ext(o, JSON_C_TO_STRING_SPACED);
	assert_non_null(strstr(js, "\"irq\": 9") ? strstr(js, "\"irq\": 9")
						 : strstr(js, "\"irq\":9"));
	json_object_put(o);
	housekeeping_status_free(st);

	/* only VM b: b did not write vm.stat_interval; its write of IRQ 9 (the host's 2-3 made
	 * 0-1) took CPU 3 out as well, so that drift is b's too */
	assert_int_equal(housekeeping_status_collect(jdir, root, "b", &st, &err), 0);
	assert_int_equal(st->n_held, 1);
	assert_int_equal(st->n_drift, 1);
	assert_string_equal(st->drift[0].vm, "b");
	assert_int_equal(st->drift[0].irq, 9);
	housekeeping_status_free(st);
	assert_int_equal(journal_undo_own(b, &err), 0);
	assert_int_equal(journal_undo_own(a, &err), 0);
	journal_free(a);
	journal_free(b);
	cpu_list_free(va);
	cpu_list_free(vb);
}

/* The RT throttling values, explicit: sched_rt_runtime_us and each vCPU CPU's fair server
 * runtime; a runtime above the period, or a fair server file the kernel lacks, is an error
 * naming it (what --check shows); applied through the journal and given back byte for byte. */
static void test_rt_throttling(void **state)
{
	(void)state;
	put("proc/sys/kernel/sched_rt_runtime_us", "950000");
	put("proc/sys/kernel/sched_rt_period_us", "1000000");
	for (int c = 2; c <= 3; c++) {
		char rel[96];
		snprintf(rel, sizeof(rel), "sys/kernel/debug/sched/fair_server/cpu%d/runtime", c);
		put(rel, "50000000");
		snprintf(rel, sizeof(rel), "sys/kernel/debug/sched/fair_server/cpu%d/period", c);
		put(rel, "1000000000");
	}
	struct ql_housekeeping h = {.on = true,
				    .rt_runtime_set = true,
				    .rt_runtime_us = -1,
				    .fair_server_set = true,
				    .fair_server_runtime_ns = 0};
	struct cpu_list *v = cpus("2-3");
	struct housekeeping_plan p = {0};
	struct ql_error err = {0};
	assert_int_equal(housekeeping_plan_compute(root, &h, v, &p, &err), 0);
	assert_int_equal(p.n, 3);
	const struct hk_write *w = find(&p, "proc/sys/kernel/sched_rt_runtime_us");
	assert_non_null(w);
	assert_string_equal(w->old, "950000");
	assert_string_equal(w->new_value, "-1");
	assert_non_null(w = find(&p, "sys/kernel/debug/sched/fair_server/cpu3/runtime"));
	assert_string_equal(w->old, "50000000");
	assert_string_equal(w->new_value, "0");
	/* only the vCPU CPUs */
	assert_null(find(&p, "sys/kernel/debug/sched/fair_server/cpu0/runtime"));

	char jdir[128];
	snprintf(jdir, sizeof(jdir), "%s/journal", root);
	struct journal *j = NULL;
	assert_int_equal(journal_open(jdir, "rt", NULL, &j, &err), 0);
	assert_int_equal(housekeeping_apply(&p, j, NULL, &err), 0);
	char *s = get("proc/sys/kernel/sched_rt_runtime_us");
	assert_string_equal(s, "-1");
	free(s);
	s = get("sys/kernel/debug/sched/fair_server/cpu2/runtime");
	assert_string_equal(s, "0");
	free(s);
	assert_int_equal(journal_undo_own(j, &err), 0);
	s = get("proc/sys/kernel/sched_rt_runtime_us");
	assert_string_equal(s, "950000\n");
	free(s);
	s = get("sys/kernel/debug/sched/fair_server/cpu2/runtime");
	assert_string_equal(s, "50000000\n");
	free(s);
	journal_free(j);
	housekeeping_plan_done(&p);

	/* a value the host already has: nothing to write */
	h.fair_server_set = false;
	h.rt_runtime_us = 950000;
	assert_int_equal(housekeeping_plan_compute(root, &h, v, &p, &err), 0);
	assert_int_equal(p.n, 0);
	housekeeping_plan_done(&p);
	/* above the period */
	h.rt_runtime_us = 2000000;
	assert_int_equal(housekeeping_plan_compute(root, &h, v, &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "housekeeping.rt_runtime_us: 2000000 is above "
					"kernel.sched_rt_period_us (1000000)"));
	ql_error_clear(&err);
	/* CPU 1 has no fair server file: an error naming it, not a silent skip */
	h.rt_runtime_set = false;
	h.fair_server_set = true;
	cpu_list_free(v);
	v = cpus("1-2");
	assert_int_equal(housekeeping_plan_compute(root, &h, v, &p, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "housekeeping.fair_server_runtime_ns: `"));
	assert_non_null(strstr(err.msg, "/sys/kernel/debug/sched/fair_server/cpu1/period` does not "
					"exist: this kernel does not have it (the fair server came "
					"with Linux 6.12), or debugfs is not mounted"));
	ql_error_clear(&err);
	cpu_list_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mask_forms),
	    cmocka_unit_test(test_parse_stat),
	    cmocka_unit_test(test_irq_names_escaped),
	    cmocka_unit_test_setup_teardown(test_plan_all, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plan_parts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_irqbalance_noted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plan_refuses_all_cpus, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_apply_two_vms, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_status_drift, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rt_throttling, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
