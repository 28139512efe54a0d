/* Loads NAME.yml: the generic YAML tree (yaml_tree.c) -> a strictly validated struct
 * definition. */
#include "definition.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "yaml_tree.h"
/* ------------------------------------------------------------------------------------------ */
/* Error reporting: every message is "PATH:LINE:COL: message", the first error wins. */

struct ctx {
	const char *path;
	struct ql_error *err;
	struct definition *d;
};

_printf_(3, 4) static int fail(struct ctx *c, struct ql_mark m, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = yaml_error_at(c->err, c->path, m, fmt, ap);
	va_end(ap);
	return r;
}

static int oom(struct ctx *c)
{
	return ql_error_set(c->err, ENOMEM, "%s: out of memory", c->path);
}

/* ------------------------------------------------------------------------------------------ */
/* Typed scalars. */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return SIZE_MAX;
	size_t prev[65], cur[65];
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof(prev));
	}
	return prev[lb];
}

/* The closest of `choices` (NULL-terminated) within edit distance 2, or NULL. */
static const char *near_miss(const char *word, const char *const *choices)
{
	const char *best = NULL;
	size_t best_d = 3;
	for (size_t i = 0; choices[i]; i++) {
		size_t dist = edit_distance(word, choices[i]);
		if (dist < best_d && dist < strlen(choices[i])) {
			best = choices[i];
			best_d = dist;
		}
	}
	return best;
}

static int fail_unknown(struct ctx *c, const struct ynode *key, const char *what,
			const char *const *choices)
{
	struct ql_shown s;
	const char *guess = near_miss(key->text, choices);
	if (guess)
		return fail(c, key->mark, "unknown %s `%s`; did you mean `%s`?", what,
			    ql_show(&s, key->text), guess);
	return fail(c, key->mark, "unknown %s `%s`", what, ql_show(&s, key->text));
}

static int expect_scalar(struct ctx *c, const struct ynode *v, const char *key, const char *want)
{
	if (v->type == YN_SCALAR && !v->null)
		return 0;
	return fail(c, v->mark, "`%s` must be %s, got %s", key, want, ynode_kind(v));
}

static int get_bool(struct ctx *c, const struct ynode *v, const char *key, bool *ret)
{
	int r = expect_scalar(c, v, key, "`true` or `false`");
	if (r < 0)
		return r;
	if (v->plain && streq(v->text, "true"))
		*ret = true;
	else if (v->plain && streq(v->text, "false"))
		*ret = false;
	else {
		struct ql_shown s;
		return fail(c, v->mark, "`%s` must be `true` or `false`, got %s`%s`", key,
			    v->plain ? "" : "quoted ", ql_show(&s, v->text));
	}
	return 0;
}

/* One of names[0..n) (NULL entries skipped), as its index; want lists them for the message. */
static int get_keyword(struct ctx *c, const struct ynode *v, const char *key,
		       const char *const *names, size_t n, const char *want, size_t *ret)
{
	int r = expect_scalar(c, v, key, want);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (names[i] && streq(v->text, names[i])) {
			*ret = i;
			return 0;
		}
	struct ql_shown s;
	return fail(c, v->mark, "`%s` must be %s, got `%s`", key, want, ql_show(&s, v->text));
}

enum int_result { INT_OK, INT_NOT_NUMBER, INT_RANGE };

/* Strict decimal: digits only; no sign (the man page's integers have none, and `-0` would be a
 * second spelling of 0: `user: -0` meaning root), no 0x/0o, no '_', no spaces. */
static enum int_result parse_decimal(const char *s, uint64_t *ret)
{
	if (*s < '0' || *s > '9')
		return INT_NOT_NUMBER;
	uint64_t v = 0;
	bool overflow = false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return INT_NOT_NUMBER;
		unsigned dgt = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - dgt) / 10)
			overflow = true;
		else
			v = v * 10 + dgt;
	}
	if (overflow)
		return INT_RANGE;
	*ret = v;
	return INT_OK;
}

static int get_uint(struct ctx *c, const struct ynode *v, const char *key, uint64_t min,
		    uint64_t max, uint64_t *ret)
{
	struct ql_shown s;
	int r = expect_scalar(c, v, key, "an integer");
	if (r < 0)
		return r;
	if (!v->plain)
		return fail(c, v->mark, "`%s` must be an integer, got the quoted string `%s`", key,
			    ql_show(&s, v->text));
	if (v->text[0] == '+' || v->text[0] == '-')
		return fail(c, v->mark,
			    "`%s` must be a decimal integer without a sign (%" PRIu64 " to %" PRIu64
			    "), got `%s`",
			    key, min, max, ql_show(&s, v->text));
	uint64_t x = 0;
	enum int_result ir = parse_decimal(v->text, &x);
	if (ir == INT_NOT_NUMBER)
		return fail(c, v->mark, "`%s` must be a decimal integer, got `%s`", key,
			    ql_show(&s, v->text));
	if (ir == INT_RANGE || x < min || x > max)
		return fail(c, v->mark,
			    "`%s` must be between %" PRIu64 " and %" PRIu64 ", got `%s`", key, min,
			    max, ql_show(&s, v->text));
	*ret = x;
	return 0;
}

/* A string value: any non-null scalar, taken as written. */
static int get_string(struct ctx *c, const struct ynode *v, const char *key, char **ret)
{
	int r = expect_scalar(c, v, key, "a string");
	if (r < 0)
		return r;
	char *s = strdup(v->text);
	if (!s)
		return oom(c);
	free(*ret);
	*ret = s;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* launcher: */

static const char *const launcher_keys[] = {
    "binary",
    "clear_env",
    "env",
    "debug",
    "user",
    "group",
    "umask",
    "working_directory",
    "scheduler",
    "priority",
    "sched_runtime",
    "sched_deadline",
    "sched_period",
    "vcpu_pinning",
    "isolate_cpus",
    "emulator_pinning",
    "iothread_pinning",
    "iothread_scheduler",
    "iothread_priority",
    "core_scheduling",
    "rlimit_memlock",
    "shutdown_timeout",
    "hugepages",
    "housekeeping",
    "vfio",
    NULL,
};

static const char *const top_keys[] = {"launcher", "qemu", NULL};

/* Where each scheduling key was written, for the cross-key checks. */
struct sched_marks {
	const struct ynode *scheduler_key, *scheduler, *priority_key, *priority;
	const struct ynode *runtime_key, *runtime, *deadline_key, *deadline, *period_key, *period;
};

static int valid_env_name(const char *s)
{
	return s[0] != '\0' && !strchr(s, '=');
}

static int parse_env(struct ctx *c, const struct ynode *v)
{
	struct definition *d = c->d;
	if (v->type != YN_MAP)
		return fail(c, v->mark, "`env` must be a mapping of NAME: value, got %s",
			    ynode_kind(v));
	size_t n = ynode_count(v);
	char **env = reallocarray(NULL, n + 1, sizeof(char *));
	if (!env)
		return oom(c);
	env[0] = NULL;
	strv_free(d->env);
	d->env = env;
	for (size_t i = 0; i < n; i++) {
		const struct ynode *k = map_key(v, i), *val = map_value(v, i);
		struct ql_shown s;
		if (!valid_env_name(k->text))
			return fail(c, k->mark,
				    "invalid environment variable name `%s` (must be non-empty "
				    "and without `=`)",
				    ql_show(&s, k->text));
		if (val->type != YN_SCALAR)
			return fail(c, val->mark,
				    "environment variable `%s` must be a scalar, got %s",
				    ql_show(&s, k->text), ynode_kind(val));
		if (val->null)
			return fail(c, k->mark,
				    "environment variable `%s` has no value (write `%s: ''` for an "
				    "empty one)",
				    ql_show(&s, k->text), ql_show(&s, k->text));
		if (asprintf(&env[i], "%s=%s", k->text, val->text) < 0) {
			env[i] = NULL;
			return oom(c);
		}
		env[i + 1] = NULL;
	}
	return 0;
}

/* Grows the buffer for getpwnam_r & co. up to a bound (NSS entries can be big, not unbounded). */
#define PW_BUF_MAX (1024 * 1024)

static int lookup_user(struct ctx *c, const struct ynode *v, bool by_id, uid_t uid)
{
	struct definition *d = c->d;
	struct ql_shown s;
	size_t size = 1024;
	for (;;) {
		_cleanup_free_ char *buf = malloc(size);
		if (!buf)
			return oom(c);
		struct passwd pw, *res = NULL;
		int r = by_id ? getpwuid_r(uid, &pw, buf, size, &res)
			      : getpwnam_r(v->text, &pw, buf, size, &res);
		if (r == ERANGE && size < PW_BUF_MAX) {
			size *= 2;
			continue;
		}
		/* getpwuid_r(3): these mean "no such entry"; anything else is a failed lookup,
		 * which must not pass for a user id without passwd entry (its groups would go) */
		bool missing = r == 0 || r == ENOENT || r == ESRCH || r == EBADF || r == EPERM;
		if (!missing)
			return fail(c, v->mark, "looking up user `%s`: %s", ql_show(&s, v->text),
				    strerror(r));
		if (!res) {
			if (by_id) /* a numeric id need not exist in passwd */
				return 0;
			return fail(c, v->mark, "unknown user `%s`", ql_show(&s, v->text));
		}
		char *name = strdup(pw.pw_name);
		if (!name)
			return oom(c);
		free(d->user_name);
		d->user_name = name;
		d->user = pw.pw_uid;
		d->user_gid = pw.pw_gid;
		return 0;
	}
}

static int lookup_group(struct ctx *c, const struct ynode *v)
{
	struct ql_shown s;
	size_t size = 1024;
	for (;;) {
		_cleanup_free_ char *buf = malloc(size);
		if (!buf)
			return oom(c);
		struct group gr, *res = NULL;
		int r = getgrnam_r(v->text, &gr, buf, size, &res);
		if (r == ERANGE && size < PW_BUF_MAX) {
			size *= 2;
			continue;
		}
		if (r != 0)
			return fail(c, v->mark, "looking up group `%s`: %s", ql_show(&s, v->text),
				    strerror(r));
		if (!res)
			return fail(c, v->mark, "unknown group `%s`", ql_show(&s, v->text));
		c->d->group = gr.gr_gid;
		return 0;
	}
}

/* A plain scalar starting like a number is an id (and must be a valid one); anything else,
 * including any quoted text, is a name. */
static bool looks_numeric(const struct ynode *v)
{
	return v->plain &&
	       (v->text[0] == '-' || v->text[0] == '+' || (v->text[0] >= '0' && v->text[0] <= '9'));
}

#define MAX_ID 4294967294ULL /* (uid_t)-1 means "unchanged" to setresuid */

static int parse_user(struct ctx *c, const struct ynode *v)
{
	struct definition *d = c->d;
	int r = expect_scalar(c, v, "user", "a user id or name");
	if (r < 0)
		return r;
	free(d->user_name);
	d->user_name = NULL;
	d->user_mark = v->mark;
	if (looks_numeric(v)) {
		uint64_t id;
		r = get_uint(c, v, "user", 0, MAX_ID, &id);
		if (r < 0)
			return r;
		d->user = (uid_t)id;
		d->has_user = true;
		return lookup_user(c, v, true, d->user);
	}
	d->has_user = true;
	return lookup_user(c, v, false, 0);
}

static int parse_group(struct ctx *c, const struct ynode *v)
{
	struct definition *d = c->d;
	int r = expect_scalar(c, v, "group", "a group id or name");
	if (r < 0)
		return r;
	d->has_group = true;
	if (looks_numeric(v)) {
		uint64_t id;
		r = get_uint(c, v, "group", 0, MAX_ID, &id);
		if (r < 0)
			return r;
		d->group = (gid_t)id;
		return 0;
	}
	return lookup_group(c, v);
}

/* An octal mode mask as umask(1) writes it (`022`, `0027`, `77`; quoted or not, since YAML 1.1
 * readers take a plain `022` for octal and 1.2 ones for decimal): digits 0-7 only, no sign, at
 * most 0777 (the bits umask(2) honours). */
static int parse_umask(struct ctx *c, const struct ynode *v)
{
	struct ql_shown s;
	int r = expect_scalar(c, v, "umask", "an octal mask such as `022`");
	if (r < 0)
		return r;
	const char *t = v->text;
	unsigned long x = 0;
	bool ok = *t && strlen(t) <= 4;
	for (; ok && *t; t++) {
		ok = *t >= '0' && *t <= '7';
		x = x * 8 + (unsigned long)(*t - '0');
	}
	if (!ok || x > 0777)
		return fail(c, v->mark,
			    "`umask` must be an octal mask from 000 to 0777 (digits 0-7, no sign), "
			    "got `%s`",
			    ql_show(&s, v->text));
	c->d->has_umask = true;
	c->d->umask = (mode_t)x;
	return 0;
}

static int parse_scheduler(struct ctx *c, const struct ynode *v)
{
	static const char *const choices[] = {"batch", "deadline", "fifo", "idle",
					      "other", "rr",	   NULL};
	int r = expect_scalar(c, v, "scheduler", "one of batch, deadline, fifo, idle, other, rr");
	if (r < 0)
		return r;
	enum ql_sched_policy p = ql_sched_policy_from_name(v->text);
	if (p != QL_SCHED_UNSET) {
		c->d->scheduler = p;
		return 0;
	}
	struct ql_shown s;
	const char *guess = near_miss(v->text, choices);
	return fail(c, v->mark,
		    "unknown scheduler `%s` (one of batch, deadline, fifo, idle, other, rr)%s%s%s",
		    ql_show(&s, v->text), guess ? "; did you mean `" : "", guess ? guess : "",
		    guess ? "`?" : "");
}

static int pin_add(struct ctx *c, int socket, int core, int thread, int index,
		   const struct ynode *cpu)
{
	struct definition *d = c->d;
	uint64_t host;
	int r = get_uint(c, cpu, "vcpu_pinning", 0, CPU_LIST_MAX_CPUS - 1, &host);
	if (r < 0)
		return r;
	struct vcpu_pin *pins = reallocarray(d->pins, d->n_pins + 1, sizeof(*pins));
	if (!pins)
		return oom(c);
	d->pins = pins;
	d->pins[d->n_pins++] = (struct vcpu_pin){
	    .socket = socket,
	    .core = core,
	    .thread = thread,
	    .index = index,
	    .host_cpu = (unsigned)host,
	    .mark = cpu->mark,
	};
	return 0;
}

static int pin_level_key(struct ctx *c, const struct ynode *k, const char *level, int *ret)
{
	uint64_t x;
	/* the key message names the level, e.g. "vcpu_pinning socket" */
	char what[48];
	snprintf(what, sizeof(what), "vcpu_pinning %s", level);
	int r = get_uint(c, k, what, 0, CPU_LIST_MAX_CPUS - 1, &x);
	if (r < 0)
		return r;
	*ret = (int)x;
	return 0;
}

static int cmp_pin(const void *pa, const void *pb)
{
	const struct vcpu_pin *a = *(const struct vcpu_pin *const *)pa;
	const struct vcpu_pin *b = *(const struct vcpu_pin *const *)pb;
	if (a->socket != b->socket)
		return a->socket < b->socket ? -1 : 1;
	if (a->core != b->core)
		return a->core < b->core ? -1 : 1;
	if (a->thread != b->thread)
		return a->thread < b->thread ? -1 : 1;
	return ql_mark_before(a->mark, b->mark) ? -1 : (ql_mark_before(b->mark, a->mark) ? 1 : 0);
}

/* The duplicate-key check compares keys as written, but `0:` and `00:` name the same vCPU: refuse
 * any vCPU pinned twice, at its earliest repetition. */
static int check_duplicate_pins(struct ctx *c)
{
	struct definition *d = c->d;
	if (d->n_pins < 2)
		return 0;
	_cleanup_free_ const struct vcpu_pin **sorted =
	    reallocarray(NULL, d->n_pins, sizeof(*sorted));
	if (!sorted)
		return oom(c);
	for (size_t i = 0; i < d->n_pins; i++)
		sorted[i] = &d->pins[i];
	qsort(sorted, d->n_pins, sizeof(*sorted), cmp_pin);
	const struct vcpu_pin *dup = NULL, *first = NULL;
	for (size_t g = 0, i; g < d->n_pins; g = i) {
		for (i = g + 1;
		     i < d->n_pins && sorted[i]->socket == sorted[g]->socket &&
		     sorted[i]->core == sorted[g]->core && sorted[i]->thread == sorted[g]->thread;
		     i++)
			;
		/* sorted[g] is the group's first in document order, sorted[g + 1] its repetition */
		if (i - g > 1 && (!dup || ql_mark_before(sorted[g + 1]->mark, dup->mark))) {
			dup = sorted[g + 1];
			first = sorted[g];
		}
	}
	if (dup)
		return fail(c, dup->mark,
			    "vCPU (socket %d core %d thread %d) is pinned twice (first at line %u)",
			    dup->socket, dup->core, dup->thread, first->mark.line);
	return 0;
}

static int parse_vcpu_pinning(struct ctx *c, const struct ynode *key, const struct ynode *v)
{
	struct definition *d = c->d;
	static const char *const levels[] = {"socket", "core", "thread"};
	free(d->pins);
	d->pins = NULL;
	d->n_pins = 0;
	d->pins_mark = key->mark;

	if (v->type == YN_SEQ) {
		if (v->n_items == 0)
			return fail(c, v->mark, "`vcpu_pinning` is empty");
		d->pins_flat = true;
		for (size_t i = 0; i < v->n_items; i++) {
			int r = pin_add(c, -1, -1, -1, (int)i, v->items[i]);
			if (r < 0)
				return r;
		}
		return 0;
	}
	if (v->type != YN_MAP)
		return fail(
		    c, v->mark,
		    "`vcpu_pinning` must be a mapping (socket: core: thread: host CPU) or a "
		    "list of host CPUs, got %s",
		    ynode_kind(v));
	d->pins_flat = false;

	const struct ynode *sockets = v;
	if (ynode_count(sockets) == 0)
		return fail(c, v->mark, "`vcpu_pinning` is empty");
	for (size_t si = 0; si < ynode_count(sockets); si++) {
		int ids[3];
		int r = pin_level_key(c, map_key(sockets, si), levels[0], &ids[0]);
		if (r < 0)
			return r;
		const struct ynode *cores = map_value(sockets, si);
		if (cores->type != YN_MAP || ynode_count(cores) == 0)
			return fail(c, cores->mark,
				    "vcpu_pinning socket %d must be a non-empty mapping of core: "
				    "thread: host CPU, got %s",
				    ids[0],
				    cores->type == YN_MAP ? "an empty mapping" : ynode_kind(cores));
		for (size_t ci = 0; ci < ynode_count(cores); ci++) {
			r = pin_level_key(c, map_key(cores, ci), levels[1], &ids[1]);
			if (r < 0)
				return r;
			const struct ynode *threads = map_value(cores, ci);
			if (threads->type != YN_MAP || ynode_count(threads) == 0)
				return fail(c, threads->mark,
					    "vcpu_pinning socket %d core %d must be a non-empty "
					    "mapping of thread: host CPU, got %s",
					    ids[0], ids[1],
					    threads->type == YN_MAP ? "an empty mapping"
								    : ynode_kind(threads));
			for (size_t ti = 0; ti < ynode_count(threads); ti++) {
				r = pin_level_key(c, map_key(threads, ti), levels[2], &ids[2]);
				if (r < 0)
					return r;
				r = pin_add(c, ids[0], ids[1], ids[2], -1, map_value(threads, ti));
				if (r < 0)
					return r;
			}
		}
	}
	return check_duplicate_pins(c);
}

static int parse_isolate(struct ctx *c, const struct ynode *v)
{
	int r = expect_scalar(c, v, "isolate_cpus", "`auto`, `true` or `false`");
	if (r < 0)
		return r;
	if (streq(v->text, "auto"))
		c->d->isolate_cpus = QL_ISOLATE_AUTO;
	else if (v->plain && streq(v->text, "true"))
		c->d->isolate_cpus = QL_ISOLATE_TRUE;
	else if (v->plain && streq(v->text, "false"))
		c->d->isolate_cpus = QL_ISOLATE_FALSE;
	else {
		struct ql_shown s;
		return fail(c, v->mark,
			    "`isolate_cpus` must be `auto`, `true` or `false`, got %s`%s`",
			    v->plain ? "" : "quoted ", ql_show(&s, v->text));
	}
	return 0;
}

static int parse_hugepages(struct ctx *c, const struct ynode *v)
{
	static const char *const names[] = {
	    [QL_HUGEPAGES_CHECK] = "check",
	    [QL_HUGEPAGES_RESERVE] = "reserve",
	    [QL_HUGEPAGES_IGNORE] = "ignore",
	};
	size_t i = 0;
	int r = get_keyword(c, v, "hugepages", names, ELEMENTSOF(names),
			    "`check`, `reserve` or `ignore`", &i);
	if (r == 0)
		c->d->hugepages = (enum ql_hugepages)i;
	return r;
}

/* housekeeping.rt_runtime_us: -1 (the kernel's "no throttling") or 0 to INT32_MAX. */
static int get_rt_runtime(struct ctx *c, const struct ynode *v, long *ret)
{
	if (v->type == YN_SCALAR && v->plain && v->text[0] == '-') {
		if (streq(v->text, "-1")) {
			*ret = -1;
			return 0;
		}
		struct ql_shown s;
		return fail(
		    c, v->mark,
		    "`housekeeping.rt_runtime_us` must be -1 (no throttling) or 0 to %d, got "
		    "`%s`",
		    INT32_MAX, ql_show(&s, v->text));
	}
	uint64_t x = 0;
	int r = get_uint(c, v, "housekeeping.rt_runtime_us", 0, INT32_MAX, &x);
	*ret = (long)x;
	return r;
}

/* housekeeping: `true`/`false`, or a mapping choosing irqs, workqueues, kthreads and
 * stat_interval; `true` means all four, with vm.stat_interval raised to 10 s. The RT throttling
 * values are only ever taken as written in the mapping: they trade host safety for latency. */
static int parse_housekeeping(struct ctx *c, const struct ynode *key, const struct ynode *v)
{
	static const char *const keys[] = {"irqs",
					   "workqueues",
					   "kthreads",
					   "stat_interval",
					   "rt_runtime_us",
					   "fair_server_runtime_ns",
					   NULL};
	struct ql_housekeeping *h = &c->d->housekeeping;
	c->d->housekeeping_mark = key->mark;
	if (v->type == YN_SCALAR) {
		bool on = false;
		int r = get_bool(c, v, "housekeeping", &on);
		if (r < 0)
			return r;
		*h = (struct ql_housekeeping){.on = on,
					      .irqs = on,
					      .workqueues = on,
					      .kthreads = on,
					      .stat_interval = on ? 10 : 0};
		return 0;
	}
	if (v->type != YN_MAP)
		return fail(c, v->mark,
			    "`housekeeping` must be `true`, `false` or a mapping of irqs, "
			    "workqueues, kthreads, stat_interval, got %s",
			    ynode_kind(v));
	*h = (struct ql_housekeeping){.on = true};
	for (size_t i = 0; i < ynode_count(v); i++) {
		const struct ynode *k = map_key(v, i), *val = map_value(v, i);
		uint64_t x = 0;
		int r;
		if (streq(k->text, "irqs"))
			r = get_bool(c, val, "housekeeping.irqs", &h->irqs);
		else if (streq(k->text, "kthreads"))
			r = get_bool(c, val, "housekeeping.kthreads", &h->kthreads);
		else if (streq(k->text, "workqueues"))
			r = get_bool(c, val, "housekeeping.workqueues", &h->workqueues);
		else if (streq(k->text, "stat_interval")) {
			r = get_uint(c, val, "housekeeping.stat_interval", 0, 3600, &x);
			h->stat_interval = (unsigned)x;
		} else if (streq(k->text, "rt_runtime_us")) {
			r = get_rt_runtime(c, val, &h->rt_runtime_us);
			h->rt_runtime_set = true;
		} else if (streq(k->text, "fair_server_runtime_ns")) {
			r = get_uint(c, val, "housekeeping.fair_server_runtime_ns", 0,
				     10000000000ULL, &h->fair_server_runtime_ns);
			h->fair_server_set = true;
		} else
			r = fail_unknown(c, k, "housekeeping key", keys);
		if (r < 0)
			return r;
	}
	return 0;
}

/* vfio: a mapping; `managed: true` lets the launcher move the VFIO devices' IOMMU groups to
 * vfio-pci for the VM's lifetime (vfio.h). */
static int parse_vfio(struct ctx *c, const struct ynode *v)
{
	static const char *const keys[] = {"managed", NULL};
	if (v->type != YN_MAP)
		return fail(c, v->mark, "`vfio` must be a mapping (`managed: true`), got %s",
			    ynode_kind(v));
	for (size_t i = 0; i < ynode_count(v); i++) {
		const struct ynode *k = map_key(v, i), *val = map_value(v, i);
		int r = streq(k->text, "managed")
			    ? get_bool(c, val, "vfio.managed", &c->d->vfio_managed)
			    : fail_unknown(c, k, "vfio key", keys);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A host CPU list as `emulator_pinning` and `iothread_pinning` take it: "0-1,4", a CPU number
 * or a list of CPU numbers; never empty. */
static int parse_cpu_list_value(struct ctx *c, const struct ynode *v, const char *what,
				struct cpu_list **ret)
{
	_cleanup_cpu_list_ struct cpu_list *l = NULL;
	struct ql_shown s;

	if (v->type == YN_SCALAR && !v->null) {
		struct ql_error e = {0};
		int r = cpu_list_parse(v->text, &l, &e);
		if (r < 0) {
			r = r == -ENOMEM ? oom(c)
					 : fail(c, v->mark, "`%s`: %s", what,
						e.msg ? e.msg : "invalid CPU list");
			ql_error_clear(&e);
			return r;
		}
	} else if (v->type == YN_SEQ) {
		l = cpu_list_new(64);
		if (!l)
			return oom(c);
		for (size_t i = 0; i < v->n_items; i++) {
			uint64_t cpu;
			int r = get_uint(c, v->items[i], what, 0, CPU_LIST_MAX_CPUS - 1, &cpu);
			if (r < 0)
				return r;
			if (cpu_list_add(l, (unsigned)cpu) < 0)
				return oom(c);
		}
	} else {
		return fail(
		    c, v->mark,
		    "`%s` must be a host CPU list (\"0-1,4\"), a CPU number or a list of CPU "
		    "numbers, got %s",
		    what, ynode_kind(v));
	}
	if (cpu_list_is_empty(l))
		return fail(c, v->mark, "`%s` is empty%s%s%s", what,
			    v->type == YN_SCALAR ? " (`" : "",
			    v->type == YN_SCALAR ? ql_show(&s, v->text) : "",
			    v->type == YN_SCALAR ? "`)" : "");
	*ret = TAKE_PTR(l);
	return 0;
}

static int parse_emulator_pinning(struct ctx *c, const struct ynode *v)
{
	struct cpu_list *l = NULL;
	int r = parse_cpu_list_value(c, v, "emulator_pinning", &l);
	if (r < 0)
		return r;
	cpu_list_free(c->d->emulator_cpus);
	c->d->emulator_cpus = l;
	c->d->emulator_mark = v->mark;
	return 0;
}

/* iothread_pinning: { ID: CPUS, ... }; whether qemu creates each ID is checked against the
 * qemu list once the whole definition is read (pinning.c). */
static int parse_iothread_pinning(struct ctx *c, const struct ynode *v)
{
	struct definition *d = c->d;
	if (v->type != YN_MAP)
		return fail(c, v->mark,
			    "`iothread_pinning` must map I/O thread ids (`-object iothread,id=ID`) "
			    "to host CPU lists, got %s",
			    ynode_kind(v));
	size_t n = ynode_count(v);
	if (n == 0)
		return fail(c, v->mark, "`iothread_pinning` is empty");
	if (!(d->iothread_pins = calloc(n, sizeof(*d->iothread_pins))))
		return oom(c);
	for (size_t i = 0; i < n; i++) {
		const struct ynode *k = map_key(v, i), *val = map_value(v, i);
		struct iothread_pin *pin = &d->iothread_pins[d->n_iothread_pins];
		if (k->text[0] == '\0')
			return fail(c, k->mark, "`iothread_pinning`: empty I/O thread id");
		int r = parse_cpu_list_value(c, val, "iothread_pinning", &pin->cpus);
		if (r < 0)
			return r;
		pin->id = k->text;
		pin->mark = k->mark;
		d->n_iothread_pins++;
	}
	return 0;
}

/* iothread_scheduler/iothread_priority: like scheduler/priority, for the pinned I/O threads
 * (deadline needs per-thread budgets and is not offered). */
static int check_iothread_sched(struct ctx *c, const struct ynode *sched_key,
				const struct ynode *sched, const struct ynode *prio_key,
				const struct ynode *prio)
{
	struct definition *d = c->d;
	if (sched && !d->n_iothread_pins)
		return fail(
		    c, sched_key->mark,
		    "`iothread_scheduler` applies to the I/O threads of `iothread_pinning`, "
		    "and there is none");
	if (prio && !sched)
		return fail(c, prio_key->mark, "`iothread_priority` needs `iothread_scheduler`");
	if (!sched)
		return 0;
	enum ql_sched_policy p = ql_sched_policy_from_name(sched->text);
	struct ql_shown s;
	if (p == QL_SCHED_UNSET || p == QL_SCHED_DEADLINE)
		return fail(c, sched->mark,
			    "`iothread_scheduler` must be one of batch, fifo, idle, other, rr, got "
			    "`%s`",
			    ql_show(&s, sched->text));
	bool rt = p == QL_SCHED_FIFO || p == QL_SCHED_RR;
	uint64_t x = 0;
	if (prio) {
		int r = get_uint(c, prio, "iothread_priority", rt ? 1 : 0, rt ? 99 : 0, &x);
		if (r < 0)
			return r;
	} else if (rt) {
		return fail(c, sched->mark,
			    "iothread_scheduler `%s` needs an `iothread_priority` between 1 and 99",
			    ql_sched_policy_name(p));
	}
	d->iothread_scheduler = p;
	d->iothread_priority = (int)x;
	return 0;
}

static int parse_core_sched(struct ctx *c, const struct ynode *v)
{
	static const char *const names[] = {
	    [QL_CORE_SCHED_OFF] = "off",
	    [QL_CORE_SCHED_AUTO] = "auto",
	    [QL_CORE_SCHED_VM] = "vm",
	    [QL_CORE_SCHED_VCPU] = "vcpu",
	};
	size_t i = QL_CORE_SCHED_OFF;
	/* a plain `false` is `off` too */
	int r = v->type == YN_SCALAR && v->plain && streq(v->text, "false")
		    ? 0
		    : get_keyword(c, v, "core_scheduling", names, ELEMENTSOF(names),
				  "`off`, `auto`, `vm` or `vcpu`", &i);
	if (r == 0) {
		c->d->core_sched = (enum ql_core_sched)i;
		c->d->core_sched_mark = v->mark;
	}
	return r;
}

static int parse_memlock(struct ctx *c, const struct ynode *v)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {
	    {"", 0},	 {"K", 10},   {"M", 20},   {"G", 30},	{"T", 40},
	    {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40},
	};
	struct definition *d = c->d;
	struct ql_shown s;
	int r = expect_scalar(c, v, "rlimit_memlock",
			      "`true`, `false`, `auto` or a size such as `16G`");
	if (r < 0)
		return r;
	if (v->plain && streq(v->text, "true")) {
		d->memlock = QL_MEMLOCK_UNLIMITED;
		return 0;
	}
	if (v->plain && streq(v->text, "false")) {
		d->memlock = QL_MEMLOCK_UNCHANGED;
		return 0;
	}
	if (v->plain && streq(v->text, "auto")) {
		d->memlock = QL_MEMLOCK_AUTO;
		return 0;
	}
	const char *p = v->text;
	uint64_t x = 0;
	bool overflow = false;
	if (!v->plain || *p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned dgt = (unsigned)(*p - '0');
		if (x > (UINT64_MAX - dgt) / 10)
			overflow = true;
		else
			x = x * 10 + dgt;
	}
	for (size_t i = 0; i < ELEMENTSOF(units); i++) {
		if (!streq(p, units[i].suffix))
			continue;
		if (overflow || x > (UINT64_MAX >> units[i].shift))
			return fail(c, v->mark, "`rlimit_memlock` size `%s` is too large",
				    ql_show(&s, v->text));
		if (x == 0)
			return fail(
			    c, v->mark,
			    "`rlimit_memlock` size must not be zero (write `false` to leave "
			    "the limit unchanged)");
		d->memlock = QL_MEMLOCK_BYTES;
		d->memlock_bytes = x << units[i].shift;
		return 0;
	}
bad:
	return fail(c, v->mark,
		    "`rlimit_memlock` must be `true`, `false`, `auto` or a size (bytes, or with K, "
		    "M, G, T, KiB, MiB, GiB, TiB), got %s`%s`",
		    v->plain ? "" : "quoted ", ql_show(&s, v->text));
}

static int check_scheduling(struct ctx *c, const struct sched_marks *sm)
{
	struct definition *d = c->d;
	const char *name = ql_sched_policy_name(d->scheduler);

	if (d->scheduler != QL_SCHED_DEADLINE) {
		const struct ynode *stray = sm->runtime_key    ? sm->runtime_key
					    : sm->deadline_key ? sm->deadline_key
							       : sm->period_key;
		/* report the first one written */
		if (sm->deadline_key && ql_mark_before(sm->deadline_key->mark, stray->mark))
			stray = sm->deadline_key;
		if (sm->period_key && ql_mark_before(sm->period_key->mark, stray->mark))
			stray = sm->period_key;
		if (stray)
			return fail(c, stray->mark, "`%s` is only valid with `scheduler: deadline`",
				    stray->text);
	}
	if (sm->priority_key && d->scheduler == QL_SCHED_UNSET)
		return fail(c, sm->priority_key->mark, "`priority` needs `scheduler`");

	switch (d->scheduler) {
	case QL_SCHED_UNSET:
		return 0;
	case QL_SCHED_FIFO:
	case QL_SCHED_RR:
		if (!d->has_priority)
			return fail(c, sm->scheduler->mark,
				    "scheduler `%s` needs a `priority` between 1 and 99", name);
		if (d->priority < 1 || d->priority > 99)
			return fail(c, sm->priority->mark,
				    "priority for scheduler `%s` must be between 1 and 99, got %d",
				    name, d->priority);
		return 0;
	case QL_SCHED_OTHER:
	case QL_SCHED_BATCH:
	case QL_SCHED_IDLE:
		if (d->has_priority && d->priority != 0)
			return fail(c, sm->priority->mark,
				    "scheduler `%s` only takes priority 0, got %d", name,
				    d->priority);
		d->has_priority = true;
		d->priority = 0;
		return 0;
	case QL_SCHED_DEADLINE:
		if (d->has_priority && d->priority != 0)
			return fail(c, sm->priority->mark,
				    "scheduler `deadline` takes no priority (or 0), got %d",
				    d->priority);
		d->has_priority = true;
		d->priority = 0;
		if (!sm->runtime)
			return fail(c, sm->scheduler->mark,
				    "scheduler `deadline` needs `sched_runtime` (ns)");
		if (!sm->deadline)
			return fail(c, sm->scheduler->mark,
				    "scheduler `deadline` needs `sched_deadline` (ns)");
		if (!sm->period)
			d->sched_period = d->sched_deadline;
		if (d->sched_runtime < 1024)
			return fail(c, sm->runtime->mark,
				    "`sched_runtime` must be at least 1024 ns, got %" PRIu64,
				    d->sched_runtime);
		if (d->sched_runtime > d->sched_deadline)
			return fail(c, sm->runtime->mark,
				    "`sched_runtime` (%" PRIu64
				    ") must not exceed `sched_deadline` "
				    "(%" PRIu64 ")",
				    d->sched_runtime, d->sched_deadline);
		if (d->sched_deadline > d->sched_period)
			return fail(c, sm->period->mark,
				    "`sched_deadline` (%" PRIu64 ") must not exceed `sched_period` "
				    "(%" PRIu64 ")",
				    d->sched_deadline, d->sched_period);
		return 0;
	}
	return 0;
}

static int parse_launcher(struct ctx *c, const struct ynode *key, const struct ynode *v)
{
	struct definition *d = c->d;
	struct sched_marks sm = {0};
	const struct ynode *io_sched_key = NULL, *io_sched = NULL, *io_prio_key = NULL,
			   *io_prio = NULL;
	struct ql_shown s;
	const struct ynode *binary = NULL;
	int r = 0;

	if (v->type != YN_MAP)
		return fail(c, v->null ? key->mark : v->mark,
			    "`launcher` must be a mapping (with at least `binary`), got %s",
			    ynode_kind(v));

	for (size_t i = 0; i < ynode_count(v) && r == 0; i++) {
		const struct ynode *k = map_key(v, i), *val = map_value(v, i);
		const char *n = k->text;
		uint64_t x = 0;

		if (streq(n, "binary")) {
			binary = val;
			r = get_string(c, val, n, &d->binary);
			if (r == 0 && d->binary[0] == '\0')
				r = fail(c, val->mark, "`binary` must not be empty");
		} else if (streq(n, "clear_env")) {
			r = get_bool(c, val, n, &d->clear_env);
		} else if (streq(n, "env")) {
			r = parse_env(c, val);
		} else if (streq(n, "debug")) {
			r = get_bool(c, val, n, &d->debug);
		} else if (streq(n, "user")) {
			r = parse_user(c, val);
		} else if (streq(n, "group")) {
			r = parse_group(c, val);
		} else if (streq(n, "umask")) {
			r = parse_umask(c, val);
		} else if (streq(n, "working_directory")) {
			r = get_string(c, val, n, &d->working_directory);
			if (r == 0 && d->working_directory[0] != '/')
				r = fail(c, val->mark,
					 "`working_directory` must be an absolute path, got `%s`",
					 ql_show(&s, d->working_directory));
		} else if (streq(n, "scheduler")) {
			sm.scheduler_key = k;
			sm.scheduler = val;
			r = parse_scheduler(c, val);
		} else if (streq(n, "priority")) {
			sm.priority_key = k;
			sm.priority = val;
			/* the per-policy range is checked once the policy is known */
			r = get_uint(c, val, n, 0, 99, &x);
			d->has_priority = r == 0;
			d->priority = (int)x;
		} else if (streq(n, "sched_runtime")) {
			sm.runtime_key = k;
			sm.runtime = val;
			r = get_uint(c, val, n, 0, INT64_MAX, &d->sched_runtime);
		} else if (streq(n, "sched_deadline")) {
			sm.deadline_key = k;
			sm.deadline = val;
			r = get_uint(c, val, n, 0, INT64_MAX, &d->sched_deadline);
		} else if (streq(n, "sched_period")) {
			sm.period_key = k;
			sm.period = val;
			r = get_uint(c, val, n, 0, INT64_MAX, &d->sched_period);
		} else if (streq(n, "vcpu_pinning")) {
			r = parse_vcpu_pinning(c, k, val);
		} else if (streq(n, "isolate_cpus")) {
			r = parse_isolate(c, val);
		} else if (streq(n, "emulator_pinning")) {
			r = parse_emulator_pinning(c, val);
		} else if (streq(n, "iothread_pinning")) {
			r = parse_iothread_pinning(c, val);
		} else if (streq(n, "core_scheduling")) {
			r = parse_core_sched(c, val);
		} else if (streq(n, "iothread_scheduler")) {
			io_sched_key = k;
			r = expect_scalar(c, val, n, "one of batch, fifo, idle, other, rr");
			io_sched = val;
		} else if (streq(n, "iothread_priority")) {
			io_prio_key = k;
			io_prio = val;
		} else if (streq(n, "rlimit_memlock")) {
			r = parse_memlock(c, val);
		} else if (streq(n, "hugepages")) {
			r = parse_hugepages(c, val);
		} else if (streq(n, "housekeeping")) {
			r = parse_housekeeping(c, k, val);
		} else if (streq(n, "vfio")) {
			r = parse_vfio(c, val);
		} else if (streq(n, "shutdown_timeout")) {
			r = get_uint(c, val, n, 0, 86400, &x);
			d->shutdown_timeout = (unsigned)x;
		} else {
			r = fail_unknown(c, k, "launcher key", launcher_keys);
		}
	}
	if (r < 0)
		return r;
	if (!binary)
		return fail(c, key->mark, "`launcher` needs `binary` (the qemu binary to run)");
	if (d->housekeeping.on && d->n_pins == 0)
		return fail(c, d->housekeeping_mark,
			    "`housekeeping` needs `vcpu_pinning` (the CPUs to keep clear)");
	r = check_iothread_sched(c, io_sched_key, io_sched, io_prio_key, io_prio);
	return r < 0 ? r : check_scheduling(c, &sm);
}

/* ------------------------------------------------------------------------------------------ */
/* qemu: */

/* Whether a scalar holds `=` or `,` (or, with blanks, whitespace: space, \t \n \v \f \r). Names
 * and keys are short and there are thousands: a loop beats strpbrk's set-up. */
static bool has_separator(const struct ynode *n, bool blanks)
{
	for (size_t i = 0; i < n->len; i++) {
		char ch = n->text[i];
		if (ch == '=' || ch == ',' || (blanks && (ch == ' ' || (ch >= '\t' && ch <= '\r'))))
			return true;
	}
	return false;
}

static int check_option_name(struct ctx *c, const struct ynode *n)
{
	struct ql_shown s, s2;
	const char *t = n->text;
	if (t[0] == '\0')
		return fail(c, n->mark, "empty option name");
	if (t[0] == '-')
		return fail(c, n->mark,
			    "option names are written without `-`: write `%s`, not `%s`",
			    ql_show(&s, t + strspn(t, "-")), ql_show(&s2, t));
	if (has_separator(n, true))
		return fail(c, n->mark,
			    "invalid option name `%s` (no whitespace, `=` or `,`; put values after "
			    "`:`)",
			    ql_show(&s, t));
	return 0;
}

/* Parts borrow the document's text (it lives as long as the definition); o->parts was sized
 * for every part of the option up front, in the document's memory. */
static void part_add(struct qemu_option *o, const char *key, const char *value)
{
	o->parts[o->n_parts++] = (struct qemu_part){.key = (char *)key, .value = (char *)value};
}

/* Number of parts an option value gives (a mapping item counts each of its keys). */
static size_t count_parts(const struct ynode *v)
{
	if (v->type == YN_MAP)
		return ynode_count(v);
	size_t n = 0;
	for (size_t i = 0; i < v->n_items; i++)
		n += v->items[i]->type == YN_MAP ? ynode_count(v->items[i]) : 1;
	return n;
}

/* A mapping of part key -> scalar value, each pair one `key=value` part. */
static int parse_part_map(struct ctx *c, struct qemu_option *o, const struct ynode *m)
{
	struct ql_shown s;
	if (ynode_count(m) == 0)
		return fail(c, m->mark, "option `%s`: empty mapping", o->name);
	for (size_t i = 0; i < ynode_count(m); i++) {
		const struct ynode *k = map_key(m, i), *v = map_value(m, i);
		if (k->text[0] == '\0' || has_separator(k, false))
			return fail(c, k->mark,
				    "option `%s`: invalid key `%s` (must be non-empty, without `=` "
				    "or `,`)",
				    o->name, ql_show(&s, k->text));
		if (v->type != YN_SCALAR)
			return fail(
			    c, v->mark,
			    "option `%s`: the value of `%s` must be a scalar, got %s (nested "
			    "too deeply)",
			    o->name, ql_show(&s, k->text), ynode_kind(v));
		part_add(o, k->text, v->null ? NULL : v->text);
	}
	return 0;
}

static int parse_option(struct ctx *c, const struct ynode *item, struct qemu_option *o)
{
	struct ql_shown s;
	const struct ynode *name, *v;
	int r;

	if (item->type == YN_SCALAR) {
		if (item->null)
			return fail(c, item->mark, "empty `qemu` entry");
		r = check_option_name(c, item);
		if (r < 0)
			return r;
		o->mark = item->mark;
		o->name = item->text;
		return 0;
	}
	if (item->type == YN_SEQ)
		return fail(c, item->mark,
			    "a `qemu` entry must be `- flag` or `- option: value`, got a sequence");
	if (ynode_count(item) == 0)
		return fail(c, item->mark, "empty `qemu` entry");
	if (ynode_count(item) > 1)
		return fail(c, map_key(item, 1)->mark,
			    "one option per `qemu` entry: start a new `- %s: ...` item for `%s`",
			    ql_show(&s, map_key(item, 1)->text),
			    ql_show(&s, map_key(item, 1)->text));

	name = map_key(item, 0);
	v = map_value(item, 0);
	r = check_option_name(c, name);
	if (r < 0)
		return r;
	o->mark = name->mark;
	o->name = name->text;
	o->has_value = true;

	if (v->type == YN_SCALAR) {
		if (v->null)
			return fail(c, name->mark,
				    "option `%s` has no value (write `- %s` for a flag)", o->name,
				    o->name);
		o->is_scalar = true;
		o->scalar = v->text;
		return 0;
	}
	o->parts = yaml_doc_alloc(c->d->doc, count_parts(v) * sizeof(*o->parts));
	if (!o->parts)
		return oom(c);
	if (v->type == YN_MAP)
		return parse_part_map(c, o, v);
	if (v->n_items == 0)
		return fail(c, v->mark, "option `%s` has an empty list", o->name);
	for (size_t i = 0; i < v->n_items; i++) {
		const struct ynode *p = v->items[i];
		if (p->type == YN_SEQ)
			return fail(c, p->mark,
				    "option `%s`: a part must be a scalar or `key: value`, got a "
				    "sequence (nested too deeply)",
				    o->name);
		if (p->type == YN_MAP) {
			r = parse_part_map(c, o, p);
		} else if (p->len == 0) {
			r = fail(c, p->mark, "option `%s`: empty part", o->name);
		} else {
			part_add(o, NULL, p->text);
			r = 0;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_qemu(struct ctx *c, const struct ynode *key, const struct ynode *v)
{
	struct definition *d = c->d;
	d->qemu_mark = key->mark;
	if (v->type == YN_SCALAR && v->null)
		return 0; /* `qemu:` with nothing: no options */
	if (v->type != YN_SEQ)
		return fail(c, v->mark, "`qemu` must be a list of options, got %s", ynode_kind(v));
	/* the options and their parts live with the document their strings point into */
	d->options = yaml_doc_alloc(d->doc, v->n_items * sizeof(*d->options));
	if (!d->options)
		return oom(c);
	for (size_t i = 0; i < v->n_items; i++) {
		d->n_options = i + 1;
		int r = parse_option(c, v->items[i], &d->options[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------ */

static int parse_root(struct ctx *c, const struct ynode *root)
{
	const struct ynode *launcher = NULL, *qemu = NULL;
	if (!root || (root->type == YN_SCALAR && root->null))
		return fail(c, root ? root->mark : (struct ql_mark){1, 1},
			    "definition is empty (expected `launcher:` and `qemu:`)");
	if (root->type != YN_MAP)
		return fail(c, root->mark,
			    "a definition must be a mapping with `launcher:` and `qemu:`, got %s",
			    ynode_kind(root));
	for (size_t i = 0; i < ynode_count(root); i++) {
		const struct ynode *k = map_key(root, i), *v = map_value(root, i);
		int r;
		if (streq(k->text, "launcher")) {
			launcher = k;
			r = parse_launcher(c, k, v);
		} else if (streq(k->text, "qemu")) {
			qemu = k;
			r = parse_qemu(c, k, v);
		} else {
			bool misplaced = false;
			for (size_t j = 0; launcher_keys[j]; j++)
				misplaced |= streq(k->text, launcher_keys[j]);
			if (misplaced) {
				struct ql_shown s;
				r = fail(c, k->mark,
					 "unknown key `%s`; it belongs under `launcher:`",
					 ql_show(&s, k->text));
			} else {
				r = fail_unknown(c, k, "key", top_keys);
			}
		}
		if (r < 0)
			return r;
	}
	if (!launcher)
		return fail(c, root->mark,
			    "missing `launcher:` section (it needs at least `binary`)");
	/* Without it qemu would start with no options at all (and its defaults: a VGA window,
	 * a NIC, ...); the specification's own implementation refuses it too. `qemu: []`
	 * states that on purpose. */
	if (!qemu)
		return fail(c, root->mark,
			    "missing `qemu:` section (the list of qemu options; write `qemu: []` "
			    "for none)");
	return 0;
}

int definition_parse(const char *path, const char *text, size_t len, struct definition **ret,
		     struct ql_error *err)
{
	_cleanup_definition_ struct definition *d = calloc(1, sizeof(*d));
	if (!d)
		return ql_error_set(err, ENOMEM, "%s: out of memory", path);
	struct ctx c = {.path = path, .err = err, .d = d};
	d->path = strdup(path);
	d->env = calloc(1, sizeof(char *));
	if (!d->path || !d->env)
		return oom(&c);
	d->shutdown_timeout = 60;
	d->isolate_cpus = QL_ISOLATE_AUTO;
	d->memlock = QL_MEMLOCK_UNCHANGED;

	if (!text && len == 0)
		text = "";
	if (!text)
		return ql_error_set(err, EINVAL, "%s: no definition text", path);
	static const struct yaml_tree_limits limits = {
	    .max_bytes = DEFINITION_MAX_BYTES,
	    .max_depth = DEFINITION_MAX_DEPTH,
	    .max_nodes = DEFINITION_MAX_NODES,
	};
	int r = yaml_tree_parse(path, text, len, &limits, &d->doc, err);
	if (r < 0)
		return r;
	r = parse_root(&c, d->doc->root);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(d);
	return 0;
}

void definition_free(struct definition *d)
{
	if (!d)
		return;
	free(d->path);
	free(d->binary);
	strv_free(d->env);
	free(d->user_name);
	free(d->working_directory);
	free(d->pins);
	cpu_list_free(d->emulator_cpus);
	for (size_t i = 0; i < d->n_iothread_pins; i++)
		cpu_list_free(d->iothread_pins[i].cpus);
	free(d->iothread_pins);
	yaml_doc_free(d->doc); /* with the options, their parts and strings */
	free(d);
}

bool definition_wants_pinning(const struct definition *d)
{
	return d->n_pins > 0 || d->scheduler != QL_SCHED_UNSET || d->emulator_cpus ||
	       d->n_iothread_pins > 0 || d->core_sched != QL_CORE_SCHED_OFF;
}
