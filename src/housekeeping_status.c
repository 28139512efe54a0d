/* --status for housekeeping: the journal's records of running launchers compared with the
 * kernel's values now (drift), and irqbalance; as text and as the JSON "housekeeping" object. */
#include "housekeeping_status.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpulist.h"
#include "housekeeping.h"
#include "journal.h"
#include "json_cleanup.h"
#include "macro.h"

enum value_form { SCALAR, LIST, MASK };

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && streq(s + a - b, suffix);
}

/* The values housekeeping writes (other modules' records, hugepage pools, are theirs). */
static bool is_housekeeping(const char *path, enum value_form *ret_form)
{
	*ret_form = SCALAR;
	if (strncmp(path, JOURNAL_TASK_PREFIX, strlen(JOURNAL_TASK_PREFIX)) == 0 ||
	    (strstr(path, "/proc/irq/") && ends_with(path, "/smp_affinity_list"))) {
		*ret_form = LIST;
		return true;
	}
	if (ends_with(path, "/proc/irq/default_smp_affinity") ||
	    ends_with(path, "/workqueue/cpumask") ||
	    ends_with(path, "/workqueue/devices/writeback/cpumask")) {
		*ret_form = MASK;
		return true;
	}
	return ends_with(path, "/proc/sys/vm/stat_interval") ||
	       ends_with(path, "/proc/sys/kernel/sched_rt_runtime_us") ||
	       (strstr(path, "/sched/fair_server/cpu") && ends_with(path, "/runtime"));
}

static char *trimmed(const char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		n--;
	return strndup(s, n);
}

static int parse_cpus(const char *text, enum value_form form, struct cpu_list **ret)
{
	struct ql_error e = {0};
	int r = form == MASK ? hk_mask_parse(text, ret) : cpu_list_parse(text, ret, &e);
	ql_error_clear(&e);
	return r;
}

void housekeeping_status_free(struct housekeeping_status *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_held; i++)
		free(s->held[i].vm);
	free(s->held);
	for (size_t i = 0; i < s->n_drift; i++) {
		struct hk_drift *d = &s->drift[i];
		free(d->vm);
		free(d->path);
		free(d->irq_name);
		free(d->wrote);
		free(d->now);
		free(d->back);
	}
	free(s->drift);
	free(s->journal_dir);
	free(s->journal_error);
	strv_free(s->problems);
	free(s);
}

size_t housekeeping_status_problems(const struct housekeeping_status *s)
{
	return s ? strv_length(s->problems) : 0;
}

static int add_problem(struct housekeeping_status *s, char *line)
{
	if (!line)
		return -ENOMEM;
	size_t n = strv_length(s->problems);
	char **v = realloc(s->problems, (n + 2) * sizeof(char *));
	if (!v) {
		free(line);
		return -ENOMEM;
	}
	v[n] = line;
	v[n + 1] = NULL;
	s->problems = v;
	return 0;
}

static int hold(struct housekeeping_status *s, const struct journal_entry *e)
{
	_cleanup_free_ char *vm = ql_escape(e->owner);
	if (!vm)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_held; i++)
		if (s->held[i].pid == e->pid && streq(s->held[i].vm, vm)) {
			s->held[i].values++;
			return 0;
		}
	struct hk_held *v = realloc(s->held, (s->n_held + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->held = v;
	v[s->n_held] = (struct hk_held){
	    .vm = ql_escape(e->owner), .pid = e->pid, .alive = e->alive, .values = 1};
	if (!v[s->n_held].vm)
		return -ENOMEM;
	s->n_held++;
	return 0;
}

/* The CPUs a record's write took out of the value (the host's original less what it wrote): with
 * several VMs each wrote what it found less its own CPUs, so together they took out the union
 * of the running VMs' CPUs. NULL when a value does not parse (or ENOMEM). */
static struct cpu_list *taken_out(const struct journal_entry *e, enum value_form form)
{
	struct cpu_list *o = NULL;
	_cleanup_cpu_list_ struct cpu_list *w = NULL;
	if (parse_cpus(e->orig, form, &o) < 0)
		return NULL;
	if (parse_cpus(e->new_value, form, &w) < 0) {
		cpu_list_free(o);
		return NULL;
	}
	cpu_list_subtract(o, w);
	return o;
}

static int add_drift(struct housekeeping_status *s, const struct journal_entry *e, const char *now,
		     char *back)
{
	struct hk_drift *v = realloc(s->drift, (s->n_drift + 1) * sizeof(*v));
	if (!v) {
		free(back);
		return -ENOMEM;
	}
	s->drift = v;
	struct hk_drift *d = &v[s->n_drift++];
	*d = (struct hk_drift){.irq = -1, .back = back};
	const char *irq = strstr(e->path, "/proc/irq/");
	if (irq && ends_with(e->path, "/smp_affinity_list")) {
		d->irq = atoi(irq + strlen("/proc/irq/"));
		_cleanup_free_ char *dir =
		    strndup(e->path, strlen(e->path) - strlen("/smp_affinity_list"));
		d->irq_name = dir ? housekeeping_irq_names(dir) : NULL;
	}
	_cleanup_free_ char *wrote = trimmed(e->new_value), *nowt = trimmed(now);
	if (!wrote || !nowt || !(d->vm = ql_escape(e->owner)) || !(d->path = ql_escape(e->path)) ||
	    !(d->wrote = ql_escape(wrote)) || !(d->now = ql_escape(nowt)))
		return -ENOMEM;
	char *line = NULL;
	char what[96] = "";
	if (d->irq >= 0)
		snprintf(what, sizeof(what), "IRQ %d%s%.40s%s: ", d->irq, d->irq_name ? " (" : "",
			 d->irq_name ? d->irq_name : "", d->irq_name ? ")" : "");
	int pid = 0;
	if (sscanf(e->path, JOURNAL_TASK_PREFIX "%d:", &pid) == 1 && pid > 0) {
		/* a kernel thread's CPUs: its name says more than task:PID:START */
		char comm_path[64];
		snprintf(comm_path, sizeof(comm_path), "/proc/%d/comm", pid);
		_cleanup_free_ char *comm = NULL, *shown = NULL;
		if (journal_read_current(comm_path, &comm, NULL) == 0 && (shown = trimmed(comm))) {
			_cleanup_free_ char *esc = ql_escape(shown);
			if (esc)
				snprintf(what, sizeof(what), "kernel thread %.40s: ", esc);
		}
	}
	if (back && *back) {
		if (asprintf(&line,
			     "%s%s is %s: CPUs %s, kept clear for VM %s, are back (irqbalance, or "
			     "changed by hand)",
			     what, d->path, d->now, back, d->vm) < 0)
			line = NULL;
	} else if (asprintf(&line,
			    "%s%s is %s, but qemu-launcher wrote %s for VM %s (changed since)",
			    what, d->path, d->now, d->wrote, d->vm) < 0) {
		line = NULL;
	}
	return add_problem(s, line);
}

/* Does another running launcher's record for the same path hold the value now? (Scalars: the
 * last writer's value stands while any of them runs.) */
static bool any_wrote(const struct journal_entry *v, size_t n, const char *path, const char *now)
{
	_cleanup_free_ char *nt = trimmed(now);
	for (size_t i = 0; nt && i < n; i++) {
		if (!v[i].alive || v[i].kind != JOURNAL_SET || !streq(v[i].path, path))
			continue;
		_cleanup_free_ char *w = trimmed(v[i].new_value);
		if (w && streq(w, nt))
			return true;
	}
	return false;
}

static bool seen_path(const struct journal_entry *v, size_t upto, const char *path,
		      const char *only)
{
	for (size_t i = 0; i < upto; i++)
		if (v[i].alive && v[i].kind == JOURNAL_SET && streq(v[i].path, path) &&
		    (!only || streq(v[i].owner, only)))
			return true;
	return false;
}

/* One drift line per value (the first launcher whose write it lost). */
static int check_entry(struct housekeeping_status *s, const struct journal_entry *v, size_t n,
		       size_t i, enum value_form form, const char *only)
{
	const struct journal_entry *e = &v[i];
	if (seen_path(v, i, e->path, only))
		return 0;
	_cleanup_free_ char *now = NULL;
	struct ql_error err = {0};
	int r = journal_read_current(e->path, &now, &err);
	ql_error_clear(&err);
	if (r == -ENOMEM)
		return r;
	if (r < 0) /* an IRQ freed, a kernel thread ended: nothing left to drift */
		return 0;
	if (form == SCALAR)
		return any_wrote(v, n, e->path, now) ? 0 : add_drift(s, e, now, NULL);
	/* CPU values: a CPU one of the running launchers took out is back */
	_cleanup_cpu_list_ struct cpu_list *cur = NULL;
	if (parse_cpus(now, form, &cur) < 0)
		return add_drift(s, e, now, NULL);
	for (size_t k = 0; k < n; k++) {
		if (!v[k].alive || v[k].kind != JOURNAL_SET || !streq(v[k].path, e->path) ||
		    (only && !streq(v[k].owner, only)))
			continue;
		_cleanup_cpu_list_ struct cpu_list *taken = taken_out(&v[k], form);
		if (!taken)
			continue; /* not ours to judge: a value we did not write as CPUs */
		_cleanup_cpu_list_ struct cpu_list *back = cpu_list_dup(cur);
		if (!back)
			return -ENOMEM;
		/* back = cur & taken */
		_cleanup_cpu_list_ struct cpu_list *outside = cpu_list_dup(cur);
		if (!outside)
			return -ENOMEM;
		cpu_list_subtract(outside, taken);
		cpu_list_subtract(back, outside);
		if (cpu_list_is_empty(back))
			continue;
		char *list = cpu_list_format(back);
		if (!list)
			return -ENOMEM;
		return add_drift(s, &v[k], now, list);
	}
	return 0;
}

int housekeeping_status_collect(const char *journal_dir, const char *root, const char *only,
				struct housekeeping_status **ret, struct ql_error *err)
{
	struct housekeeping_status *s = calloc(1, sizeof(*s));
	if (!s || !(s->problems = calloc(1, sizeof(char *))) ||
	    !(s->journal_dir = ql_escape(journal_dir))) {
		housekeeping_status_free(s);
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	struct journal_entry *v = NULL;
	size_t n = 0;
	struct ql_error e = {0};
	bool exists = access(journal_dir, F_OK) == 0 || errno != ENOENT;
	int r = journal_list(journal_dir, &v, &n, &e);
	if (r == -ENOMEM) {
		housekeeping_status_free(s);
		*err = e;
		return r;
	}
	s->journal = !exists ? HK_JOURNAL_ABSENT : r < 0 ? HK_JOURNAL_UNREADABLE : HK_JOURNAL_READ;
	if (r < 0 && !(s->journal_error = ql_escape(e.msg)))
		r = -ENOMEM;
	else
		r = 0;
	ql_error_clear(&e);
	bool irqs_held = false;
	for (size_t i = 0; r == 0 && i < n; i++) {
		enum value_form form;
		if (v[i].kind != JOURNAL_SET || !is_housekeeping(v[i].path, &form) ||
		    (only && !streq(v[i].owner, only)))
			continue;
		r = hold(s, &v[i]);
		if (r == 0 && v[i].alive) {
			irqs_held |= strstr(v[i].path, "/proc/irq/") != NULL;
			r = check_entry(s, v, n, i, form, only);
		}
	}
	journal_entries_free(v, n);
	pid_t ib = r == 0 ? housekeeping_irqbalance_pid(root) : 0;
	if (ib < 0)
		r = (int)ib;
	s->irqbalance = ib > 0 ? ib : 0;
	s->irqbalance_harms = s->irqbalance && irqs_held;
	if (r == 0 && s->irqbalance_harms) {
		char *line = NULL;
		if (asprintf(
			&line,
			"irqbalance is running (pid %d): it moves IRQs back onto the vCPU CPUs; "
			"stop it, or set IRQBALANCE_BANNED_CPULIST to the vCPU CPUs",
			(int)s->irqbalance) < 0)
			line = NULL;
		r = add_problem(s, line);
	}
	if (r < 0) {
		housekeeping_status_free(s);
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	*ret = s;
	return 0;
}

void housekeeping_status_format(const struct housekeeping_status *s, FILE *f)
{
	if (!s || (s->journal != HK_JOURNAL_UNREADABLE && s->n_held == 0))
		return;
	if (s->journal == HK_JOURNAL_UNREADABLE) {
		fprintf(f, "\nHousekeeping: not checked (%s; --status as root reads it)\n",
			s->journal_error ? s->journal_error : s->journal_dir);
		return;
	}
	fprintf(f, "\nHousekeeping: host values held (journal %s)\n", s->journal_dir);
	for (size_t i = 0; i < s->n_held; i++) {
		const struct hk_held *h = &s->held[i];
		if (h->alive)
			fprintf(f, "  VM %s: %zu value(s), launcher pid %d\n", h->vm, h->values,
				(int)h->pid);
		else
			fprintf(
			    f,
			    "  VM %s: %zu value(s); its launcher (pid %d) is gone: its guardian "
			    "or the next start gives them back\n",
			    h->vm, h->values, (int)h->pid);
	}
	if (s->irqbalance)
		fprintf(f, "  irqbalance: running (pid %d)\n", (int)s->irqbalance);
	else
		fputs("  irqbalance: not running\n", f);
	for (char **p = s->problems; p && *p; p++)
		fprintf(f, "  ! %s\n", *p);
}

static json_object *str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *cpu_array(const char *list)
{
	_cleanup_cpu_list_ struct cpu_list *l = NULL;
	if (!list || parse_cpus(list, LIST, &l) < 0)
		return NULL;
	_cleanup_json_ json_object *a = json_object_new_array();
	for (int c = cpu_list_next(l, -1); a && c >= 0; c = cpu_list_next(l, c))
		if (!json_push(a, json_object_new_int(c)))
			return NULL;
	return TAKE_PTR(a);
}

json_object *housekeeping_status_json(const struct housekeeping_status *s)
{
	static const char *const states[] = {
	    [HK_JOURNAL_ABSENT] = "absent",
	    [HK_JOURNAL_READ] = "read",
	    [HK_JOURNAL_UNREADABLE] = "unreadable",
	};
	_cleanup_json_ json_object *o = json_object_new_object();
	json_object *held = json_object_new_array(), *drift = json_object_new_array(),
		    *problems = json_object_new_array();
	if (!o || !json_put(o, "held", held, true) || !json_put(o, "drift", drift, true) ||
	    !json_put(o, "problems", problems, true) ||
	    !json_put(o, "journal", json_object_new_string(states[s->journal]), true) ||
	    !json_put(o, "journal_error", str_or_null(s->journal_error), s->journal_error) ||
	    !json_put(o, "irqbalance_pid",
		      s->irqbalance ? json_object_new_int(s->irqbalance) : NULL, s->irqbalance) ||
	    !json_put(o, "consistent", json_object_new_boolean(!s->problems[0]), true))
		return NULL;
	for (size_t i = 0; i < s->n_held; i++) {
		json_object *h = json_object_new_object();
		if (!json_push(held, h) ||
		    !json_put(h, "vm", json_object_new_string(s->held[i].vm), true) ||
		    !json_put(h, "launcher_pid", json_object_new_int(s->held[i].pid), true) ||
		    !json_put(h, "launcher_running", json_object_new_boolean(s->held[i].alive),
			      true) ||
		    !json_put(h, "values", json_object_new_int64((int64_t)s->held[i].values), true))
			return NULL;
	}
	for (size_t i = 0; i < s->n_drift; i++) {
		const struct hk_drift *d = &s->drift[i];
		json_object *x = json_object_new_object();
		if (!json_push(drift, x) ||
		    !json_put(x, "vm", json_object_new_string(d->vm), true) ||
		    !json_put(x, "path", json_object_new_string(d->path), true) ||
		    !json_put(x, "irq", d->irq >= 0 ? json_object_new_int(d->irq) : NULL,
			      d->irq >= 0) ||
		    !json_put(x, "irq_name", str_or_null(d->irq_name), d->irq_name) ||
		    !json_put(x, "wrote", json_object_new_string(d->wrote), true) ||
		    !json_put(x, "now", json_object_new_string(d->now), true) ||
		    !json_put(x, "cpus_back", d->back ? cpu_array(d->back) : NULL, d->back))
			return NULL;
	}
	for (char **p = s->problems; *p; p++)
		if (!json_push(problems, json_object_new_string(*p)))
			return NULL;
	return TAKE_PTR(o);
}
