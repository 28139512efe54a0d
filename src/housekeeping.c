/* Housekeeping while a VM runs: plans the IRQ, workqueue and vmstat writes that keep the host's
 * own work off the vCPU CPUs (pure, from a root tree), and applies them through the journal. */
#include "housekeeping.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "proc.h"

#define IRQ_DIR "proc/irq"
#define DEFAULT_AFFINITY "proc/irq/default_smp_affinity"
#define WQ_CPUMASK "sys/devices/virtual/workqueue/cpumask"
#define WRITEBACK_CPUMASK "sys/bus/workqueue/devices/writeback/cpumask"
#define STAT_INTERVAL "proc/sys/vm/stat_interval"
#define ONLINE "sys/devices/system/cpu/online"
#define RT_RUNTIME "proc/sys/kernel/sched_rt_runtime_us"
#define RT_PERIOD "proc/sys/kernel/sched_rt_period_us"
#define FAIR_SERVER "sys/kernel/debug/sched/fair_server"
#define PF_KTHREAD 0x00200000UL
#define PF_NO_SETAFFINITY 0x04000000UL /* per-CPU kernel threads: bound by the kernel */

void housekeeping_plan_done(struct housekeeping_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].path);
		free(p->v[i].old);
		free(p->v[i].new_value);
		free(p->v[i].kthread);
		free(p->v[i].irq_name);
	}
	free(p->v);
	strv_free(p->notes);
	*p = (struct housekeeping_plan){0};
}

/* root + "/" + rel, with "/" as the real root giving "/rel". */
static char *at(const char *root, const char *rel)
{
	char *s = NULL;
	if (asprintf(&s, "%s/%s", streq(root, "/") ? "" : root, rel) < 0)
		return NULL;
	return s;
}

/* A small kernel file's text, trailing whitespace dropped. -errno. */
static int read_text(const char *path, char **ret)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	if (ferror(f))
		return -EIO;
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		n--;
	buf[n] = '\0';
	if (!(*ret = strdup(buf)))
		return -ENOMEM;
	return 0;
}

int hk_mask_parse(const char *text, struct cpu_list **ret)
{
	_cleanup_cpu_list_ struct cpu_list *l = cpu_list_new(64);
	if (!l)
		return -ENOMEM;
	size_t len = strlen(text);
	while (len > 0 && isspace((unsigned char)text[len - 1]))
		len--;
	if (len == 0)
		return -EINVAL;
	unsigned bit = 0;
	for (size_t i = len; i-- > 0;) {
		char c = text[i];
		if (c == ',')
			continue;
		if (!isxdigit((unsigned char)c))
			return -EINVAL;
		unsigned v =
		    (unsigned)(isdigit((unsigned char)c) ? c - '0'
							 : tolower((unsigned char)c) - 'a' + 10);
		for (unsigned b = 0; b < 4; b++, bit++)
			if (v & (1u << b)) {
				int r = cpu_list_add(l, bit);
				if (r < 0)
					return r;
			}
	}
	*ret = TAKE_PTR(l);
	return 0;
}

char *hk_mask_format(const struct cpu_list *l)
{
	int last = cpu_list_last(l);
	size_t groups = last < 0 ? 1 : (size_t)last / 32 + 1;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	for (size_t g = groups; g-- > 0;) {
		unsigned word = 0;
		for (unsigned b = 0; b < 32; b++)
			if (cpu_list_has(l, (unsigned)(g * 32 + b)))
				word |= 1u << b;
		/* the kernel's form: the first group unpadded, the others 8 digits */
		fprintf(f, g == groups - 1 ? "%x" : ",%08x", word);
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static int add_write(struct housekeeping_plan *p, char *path, char *old, char *new_value, int irq)
{
	struct hk_write *v = realloc(p->v, (p->n + 1) * sizeof(*v));
	if (!v) {
		free(path);
		free(old);
		free(new_value);
		return -ENOMEM;
	}
	p->v = v;
	p->v[p->n++] =
	    (struct hk_write){.path = path, .old = old, .new_value = new_value, .irq = irq};
	return 0;
}

static int add_note(struct housekeeping_plan *p, const char *fmt, ...) _printf_(2, 3);
static int add_note(struct housekeeping_plan *p, const char *fmt, ...)
{
	size_t n = strv_length(p->notes);
	char **v = realloc(p->notes, (n + 2) * sizeof(char *));
	if (!v)
		return -ENOMEM;
	p->notes = v;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&v[n], fmt, ap);
	va_end(ap);
	if (r < 0) {
		v[n] = NULL;
		return -ENOMEM;
	}
	v[n + 1] = NULL;
	return 0;
}

enum form { LIST, MASK };

/* Plans "path minus the vCPU CPUs" (fallback when nothing would be left). The file's absence is
 * *ret_absent, not an error (a kernel without the knob; an IRQ gone meanwhile). */
static int plan_cpus(struct housekeeping_plan *p, const char *root, const char *rel, enum form form,
		     const struct cpu_list *vcpus, const struct cpu_list *fallback, int irq,
		     struct cpu_list **ret_new, bool *ret_absent, struct ql_error *err)
{
	_cleanup_free_ char *path = at(root, rel);
	_cleanup_free_ char *old = NULL, *new_value = NULL;
	_cleanup_cpu_list_ struct cpu_list *cur = NULL;
	if (!path)
		return ql_error_set(err, ENOMEM, "out of memory");
	*ret_absent = false;
	int r = read_text(path, &old);
	if (r == -ENOENT) {
		*ret_absent = true;
		return 0;
	}
	if (r < 0)
		return ql_error_set_errno(err, -r, "housekeeping: read `%s`", path);
	struct ql_error e = {0};
	r = form == MASK ? hk_mask_parse(old, &cur) : cpu_list_parse(old, &cur, &e);
	ql_error_clear(&e);
	if (r < 0)
		return ql_error_set(err, EINVAL, "housekeeping: `%s` holds `%s`, not a CPU %s",
				    path, old, form == MASK ? "mask" : "list");
	_cleanup_cpu_list_ struct cpu_list *want = cpu_list_dup(cur);
	if (!want)
		return ql_error_set(err, ENOMEM, "out of memory");
	cpu_list_subtract(want, vcpus);
	if (cpu_list_is_empty(want)) {
		cpu_list_free(want);
		if (!(want = cpu_list_dup(fallback)))
			return ql_error_set(err, ENOMEM, "out of memory");
	}
	if (!cpu_list_equal(want, cur)) {
		new_value = form == MASK ? hk_mask_format(want) : cpu_list_format(want);
		if (!new_value ||
		    add_write(p, TAKE_PTR(path), TAKE_PTR(old), TAKE_PTR(new_value), irq) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
	}
	if (ret_new)
		*ret_new = TAKE_PTR(want);
	return 0;
}

static int irq_cmp(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	return x < y ? -1 : x > y;
}

char *housekeeping_irq_names(const char *irq_dir)
{
	_cleanup_closedir_ DIR *d = opendir(irq_dir);
	if (!d)
		return NULL;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	bool any = false, ok = true;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_type == DT_DIR && de->d_name[0] != '.') {
			/* a handler's name may carry a network interface's, which a container's
			 * root names as it likes: escaped for every terminal and JSON it reaches */
			_cleanup_free_ char *name = ql_escape(de->d_name);
			ok = ok && name;
			fprintf(f, "%s%s", any ? "," : "", name ? name : "");
			any = true;
		}
	if (fclose(f) != 0 || !any || !ok) {
		free(out);
		return NULL;
	}
	return out;
}

static char *irq_names(const char *root, unsigned irq)
{
	char rel[64];
	snprintf(rel, sizeof(rel), IRQ_DIR "/%u", irq);
	_cleanup_free_ char *dir = at(root, rel);
	return dir ? housekeeping_irq_names(dir) : NULL;
}

/* The IRQ numbers under root/proc/irq, ascending. */
static int list_irqs(const char *root, unsigned **ret, size_t *ret_n, struct ql_error *err)
{
	_cleanup_free_ char *dir = at(root, IRQ_DIR);
	if (!dir)
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return ql_error_set_errno(err, errno, "housekeeping: open `%s`", dir);
	_cleanup_free_ unsigned *v = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		errno = 0;
		unsigned long x = strtoul(de->d_name, &end, 10);
		if (!isdigit((unsigned char)de->d_name[0]) || *end || errno || x > 1u << 24)
			continue;
		unsigned *nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv)
			return ql_error_set(err, ENOMEM, "out of memory");
		v = nv;
		v[n++] = (unsigned)x;
	}
	if (n)
		qsort(v, n, sizeof(*v), irq_cmp);
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

pid_t housekeeping_irqbalance_pid(const char *root)
{
	_cleanup_free_ char *dir = at(root, "proc");
	_cleanup_closedir_ DIR *d = dir ? opendir(dir) : NULL;
	if (!dir)
		return -ENOMEM;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		_cleanup_free_ char *comm_path = NULL, *comm = NULL;
		if (asprintf(&comm_path, "%s/%s/comm", dir, de->d_name) < 0)
			return -ENOMEM;
		if (read_text(comm_path, &comm) == 0 && streq(comm, "irqbalance"))
			return (pid_t)strtol(de->d_name, NULL, 10);
	}
	return 0;
}

/* irqbalance moves IRQs back onto every CPU it sees as idle, the vCPU CPUs included. */
static int note_irqbalance(struct housekeeping_plan *p, const char *root)
{
	pid_t pid = housekeeping_irqbalance_pid(root);
	if (pid <= 0)
		return pid;
	return add_note(p,
			"irqbalance is running (pid %d): it will move IRQs back onto the vCPU "
			"CPUs; stop it, or give it IRQBALANCE_BANNED_CPULIST=<the vCPU CPUs>",
			(int)pid);
}

int hk_parse_stat(const char *stat, char **ret_comm, unsigned long *ret_flags,
		  unsigned long long *ret_start)
{
	/* the name may hold spaces and parentheses: it ends at the last ')' */
	const char *open = strchr(stat, '('), *close = strrchr(stat, ')');
	if (!open || !close || close < open)
		return -EINVAL;
	unsigned long flags = 0;
	unsigned long long start = 0;
	/* fields 3 (state) to 22 (starttime) */
	if (sscanf(close + 1,
		   " %*c %*d %*d %*d %*d %*d %lu %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d "
		   "%llu",
		   &flags, &start) != 2)
		return -EINVAL;
	if (!(*ret_comm = strndup(open + 1, (size_t)(close - open - 1))))
		return -ENOMEM;
	*ret_flags = flags;
	*ret_start = start;
	return 0;
}

/* kthreadd and every unbound kernel thread off the vCPU CPUs. Only on the real /proc: the plan's
 * writes are sched_setaffinity calls on these pids, never to be made from a test tree. Per-CPU
 * threads (ksoftirqd, migration, kworker/N) cannot move: a note says how many stay. */
static int plan_kthreads(struct housekeeping_plan *p, const struct cpu_list *vcpus,
			 const struct cpu_list *keep, struct ql_error *err)
{
	_cleanup_closedir_ DIR *d = opendir("/proc");
	if (!d)
		return ql_error_set_errno(err, errno, "housekeeping: open `/proc`");
	unsigned per_cpu = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
		_cleanup_free_ char *stat_path = NULL, *stat = NULL, *comm = NULL, *path = NULL;
		_cleanup_free_ char *old = NULL, *nv = NULL;
		_cleanup_cpu_list_ struct cpu_list *cur = NULL, *want = NULL;
		unsigned long flags;
		unsigned long long start;
		if (asprintf(&stat_path, "/proc/%d/stat", (int)pid) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
		/* threads end at any time: one that is gone is skipped */
		if (read_text(stat_path, &stat) < 0 ||
		    hk_parse_stat(stat, &comm, &flags, &start) < 0 || !(flags & PF_KTHREAD) ||
		    proc_thread_affinity(pid, &cur, NULL) < 0)
			continue;
		if (flags & PF_NO_SETAFFINITY) {
			_cleanup_cpu_list_ struct cpu_list *both = cpu_list_dup(cur);
			if (!both)
				return ql_error_set(err, ENOMEM, "out of memory");
			cpu_list_subtract(both, keep);
			per_cpu += !cpu_list_is_empty(both);
			continue;
		}
		if (!(want = cpu_list_dup(cur)))
			return ql_error_set(err, ENOMEM, "out of memory");
		cpu_list_subtract(want, vcpus);
		if (cpu_list_is_empty(want)) {
			cpu_list_free(want);
			if (!(want = cpu_list_dup(keep)))
				return ql_error_set(err, ENOMEM, "out of memory");
		}
		if (cpu_list_equal(want, cur))
			continue;
		if (asprintf(&path, JOURNAL_TASK_PREFIX "%d:%llu", (int)pid, start) < 0 ||
		    !(old = cpu_list_format(cur)) || !(nv = cpu_list_format(want)) ||
		    add_write(p, TAKE_PTR(path), TAKE_PTR(old), TAKE_PTR(nv), -1) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
		p->v[p->n - 1].kthread = TAKE_PTR(comm);
	}
	if (per_cpu &&
	    add_note(p,
		     "%u per-CPU kernel threads (ksoftirqd, migration, kworker/N...) stay on the "
		     "vCPU CPUs: the kernel binds them there",
		     per_cpu) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	return 0;
}

/* A number from a kernel file that must exist: what = the key asking for it, for the message. */
static int read_number(const char *root, const char *rel, const char *what, char **ret_path,
		       char **ret_text, long long *ret, struct ql_error *err)
{
	_cleanup_free_ char *path = at(root, rel), *text = NULL;
	if (!path)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = read_text(path, &text);
	if (r == -ENOENT)
		return ql_error_set(
		    err, ENOENT,
		    "housekeeping.%s: `%s` does not exist: this kernel does not "
		    "have it%s",
		    what, path,
		    strstr(rel, "sys/kernel/debug/")
			? " (the fair server came with Linux 6.12), or debugfs is not "
			  "mounted at /sys/kernel/debug"
			: "");
	if (r < 0)
		return ql_error_set_errno(err, -r, "housekeeping.%s: read `%s`", what, path);
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno || end == text || *end)
		return ql_error_set(err, EINVAL, "housekeeping.%s: `%s` holds `%s`, not a number",
				    what, path, text);
	*ret = v;
	if (ret_path)
		*ret_path = TAKE_PTR(path);
	if (ret_text)
		*ret_text = TAKE_PTR(text);
	return 0;
}

static int plan_number(struct housekeeping_plan *p, char *path, char *old, long long value)
{
	char *nv = NULL;
	if (asprintf(&nv, "%lld", value) < 0) {
		free(path);
		free(old);
		return -ENOMEM;
	}
	if (strtoll(old, NULL, 10) == value) { /* already so: nothing to write or give back */
		free(path);
		free(old);
		free(nv);
		return 0;
	}
	return add_write(p, path, old, nv, -1);
}

/* kernel.sched_rt_runtime_us as written in the definition; the kernel refuses a runtime above
 * the period, so that is said before anything starts. */
static int plan_rt_runtime(struct housekeeping_plan *p, const char *root, long want,
			   struct ql_error *err)
{
	char *path = NULL, *old = NULL;
	long long cur, period;
	int r = read_number(root, RT_PERIOD, "rt_runtime_us", NULL, NULL, &period, err);
	if (r == 0)
		r = read_number(root, RT_RUNTIME, "rt_runtime_us", &path, &old, &cur, err);
	if (r < 0)
		return r;
	if (want > period) {
		free(path);
		free(old);
		return ql_error_set(
		    err, EINVAL,
		    "housekeeping.rt_runtime_us: %ld is above kernel.sched_rt_period_us "
		    "(%lld): the kernel refuses a runtime longer than its period",
		    want, period);
	}
	return plan_number(p, path, old, want) < 0 ? ql_error_set(err, ENOMEM, "out of memory") : 0;
}

/* The fair server's runtime on each vCPU CPU (debugfs, Linux 6.12+): an absent file is an error
 * (--check says so), never a silent skip: the user asked for the value. */
static int plan_fair_server(struct housekeeping_plan *p, const char *root,
			    const struct cpu_list *vcpus, uint64_t want, struct ql_error *err)
{
	for (int c = cpu_list_next(vcpus, -1); c >= 0; c = cpu_list_next(vcpus, c)) {
		char rel[96];
		char *path = NULL, *old = NULL;
		long long cur, period;
		snprintf(rel, sizeof(rel), FAIR_SERVER "/cpu%d/period", c);
		int r = read_number(root, rel, "fair_server_runtime_ns", NULL, NULL, &period, err);
		snprintf(rel, sizeof(rel), FAIR_SERVER "/cpu%d/runtime", c);
		if (r == 0)
			r = read_number(root, rel, "fair_server_runtime_ns", &path, &old, &cur,
					err);
		if (r < 0)
			return r;
		if ((long long)want > period) {
			free(path);
			free(old);
			return ql_error_set(
			    err, EINVAL,
			    "housekeeping.fair_server_runtime_ns: %llu is above CPU "
			    "%d's fair server period (%lld ns): the kernel refuses it",
			    (unsigned long long)want, c, period);
		}
		if (plan_number(p, path, old, (long long)want) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

int housekeeping_plan_compute(const char *root, const struct ql_housekeeping *h,
			      const struct cpu_list *vcpus, struct housekeeping_plan *ret,
			      struct ql_error *err)
{
	struct housekeeping_plan p = {0};
	_cleanup_free_ char *online_path = at(root, ONLINE);
	_cleanup_cpu_list_ struct cpu_list *keep = NULL, *def = NULL;
	_cleanup_free_ unsigned *irqs = NULL;
	size_t n_irqs = 0;
	bool absent = false;
	int r;
	if (!online_path)
		return ql_error_set(err, ENOMEM, "out of memory");
	r = cpu_list_read_file(online_path, &keep, err);
	if (r < 0)
		return r;
	cpu_list_subtract(keep, vcpus);
	if (cpu_list_is_empty(keep)) {
		_cleanup_free_ char *s = cpu_list_format(vcpus);
		return ql_error_set(err, EINVAL,
				    "housekeeping: the vCPUs take every online CPU (%s): none is "
				    "left for the host's interrupts and kernel work",
				    s ? s : "?");
	}
	if (h->irqs) {
		r = plan_cpus(&p, root, DEFAULT_AFFINITY, MASK, vcpus, keep, -1, &def, &absent,
			      err);
		/* an IRQ whose every CPU is a vCPU's goes where new IRQs go now */
		if (r == 0 && (absent || !def) && !(def = cpu_list_dup(keep)))
			r = ql_error_set(err, ENOMEM, "out of memory");
		if (r == 0)
			r = list_irqs(root, &irqs, &n_irqs, err);
		for (size_t i = 0; r == 0 && i < n_irqs; i++) {
			char rel[64];
			snprintf(rel, sizeof(rel), IRQ_DIR "/%u/smp_affinity_list", irqs[i]);
			size_t before = p.n;
			r = plan_cpus(&p, root, rel, LIST, vcpus, def, (int)irqs[i], NULL, &absent,
				      err);
			if (r == 0 && p.n > before)
				p.v[p.n - 1].irq_name = irq_names(root, irqs[i]);
		}
		if (r == 0 && note_irqbalance(&p, root) < 0)
			r = ql_error_set(err, ENOMEM, "out of memory");
	}
	static const char *const wq[] = {WQ_CPUMASK, WRITEBACK_CPUMASK};
	for (size_t i = 0; h->workqueues && r == 0 && i < ELEMENTSOF(wq); i++) {
		r = plan_cpus(&p, root, wq[i], MASK, vcpus, keep, -1, NULL, &absent, err);
		if (r == 0 && absent && add_note(&p, "/%s is absent: left alone", wq[i]) < 0)
			r = ql_error_set(err, ENOMEM, "out of memory");
	}
	if (r == 0 && h->kthreads && streq(root, "/"))
		r = plan_kthreads(&p, vcpus, keep, err);
	if (r == 0 && h->stat_interval) {
		_cleanup_free_ char *path = at(root, STAT_INTERVAL), *old = NULL, *nv = NULL;
		if (!path)
			r = ql_error_set(err, ENOMEM, "out of memory");
		else if ((r = read_text(path, &old)) < 0)
			r = ql_error_set_errno(err, -r, "housekeeping: read `%s`", path);
		/* raised only: a host already quieter keeps its value */
		else if (strtoul(old, NULL, 10) < h->stat_interval) {
			if (asprintf(&nv, "%u", h->stat_interval) < 0 ||
			    add_write(&p, TAKE_PTR(path), TAKE_PTR(old), TAKE_PTR(nv), -1) < 0)
				r = ql_error_set(err, ENOMEM, "out of memory");
		}
	}
	if (r == 0 && h->rt_runtime_set)
		r = plan_rt_runtime(&p, root, h->rt_runtime_us, err);
	if (r == 0 && h->fair_server_set)
		r = plan_fair_server(&p, root, vcpus, h->fair_server_runtime_ns, err);
	if (r < 0) {
		housekeeping_plan_done(&p);
		return r;
	}
	*ret = p;
	return 0;
}

char *housekeeping_plan_describe(const struct housekeeping_plan *p)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	bool ok = true;
	if (p->n == 0)
		fprintf(f, "housekeeping: nothing to change\n");
	for (size_t i = 0; i < p->n; i++) {
		_cleanup_free_ char *w =
		    journal_describe_write(p->v[i].path, p->v[i].old, p->v[i].new_value);
		if (!w)
			ok = false;
		else if (p->v[i].kthread)
			fprintf(f, "housekeeping: kernel thread %s: %s\n", p->v[i].kthread, w);
		else if (p->v[i].irq_name)
			fprintf(f, "housekeeping: IRQ %d (%s): %s\n", p->v[i].irq, p->v[i].irq_name,
				w);
		else
			fprintf(f, "housekeeping: %s\n", w);
	}
	for (size_t i = 0; p->notes && p->notes[i]; i++)
		fprintf(f, "housekeeping: %s\n", p->notes[i]);
	if (fclose(f) != 0 || !ok) {
		free(out);
		return NULL;
	}
	return out;
}

int housekeeping_apply(const struct housekeeping_plan *p, struct journal *j,
		       const struct ql_logger *log, struct ql_error *err)
{
	if (p->n && !j)
		return ql_error_set(err, EPERM,
				    "housekeeping: no journal of host changes (is the launcher "
				    "root?)");
	unsigned moved = 0, refused = 0;
	for (size_t i = 0; i < p->n; i++) {
		const struct hk_write *w = &p->v[i];
		struct ql_error e = {0};
		int r = journal_set(j, w->path, w->new_value, &e);
		if (r == -EIO && w->irq >= 0) {
			/* managed IRQs (per-queue NVMe, virtio...) are the kernel's to place */
			ql_log(log, QL_LOG_WARNING,
			       "housekeeping: IRQ %d%s%s%s refuses to move (EIO: a managed or "
			       "unmovable IRQ): it stays on CPUs %s",
			       w->irq, w->irq_name ? " (" : "", w->irq_name ? w->irq_name : "",
			       w->irq_name ? ")" : "", w->old);
			refused++;
		} else if (r < 0 && w->kthread) {
			ql_log(log, QL_LOG_WARNING,
			       "housekeeping: kernel thread %s stays on CPUs %s: %s", w->kthread,
			       w->old, e.msg);
			refused++;
		} else if (r < 0) {
			ql_error_prefix(&e, "housekeeping: ");
			*err = e;
			return r;
		} else if (w->irq >= 0) {
			moved++;
		}
		ql_error_clear(&e);
	}
	for (size_t i = 0; p->notes && p->notes[i]; i++)
		ql_log(log, QL_LOG_WARNING, "housekeeping: %s", p->notes[i]);
	ql_log(log, QL_LOG_INFO,
	       "housekeeping: %zu host values changed, %u IRQs moved, %u refused to move",
	       p->n - refused, moved, refused);
	return 0;
}

int housekeeping_start(const char *root, const struct ql_housekeeping *h,
		       const struct cpu_list *vcpus, struct journal *j, const struct ql_logger *log,
		       struct ql_error *err)
{
	/* without a journal nothing can be changed: housekeeping_apply says so if need be */
	_cleanup_journal_unlock_ int lock = -1;
	int r = j ? journal_lock_housekeeping(j, &lock, err) : 0;
	if (r < 0) {
		ql_error_prefix(err, "housekeeping: ");
		return r;
	}
	struct housekeeping_plan p = {0};
	r = housekeeping_plan_compute(root, h, vcpus, &p, err);
	if (r == 0)
		r = housekeeping_apply(&p, j, log, err);
	housekeeping_plan_done(&p);
	return r;
}
