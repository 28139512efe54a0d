/* Preallocation on the right CPUs (see prealloc.h). qemu's side (7.2: backends/hostmem.c,
 * util/oslib-posix.c touch_all_pages, qemu-options.hx `-object thread-context`): the
 * preallocation threads are created by the context's thread and inherit its cpu-affinity. */
#include "prealloc.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmdline.h"
#include "cpulist.h"
#include "macro.h"

void prealloc_plan_done(struct prealloc_plan *p)
{
	strv_free(p->args);
	free(p->argv_index);
	strv_free(p->values);
	strv_free(p->ids);
	strv_free(p->contexts);
	strv_free(p->notes);
	strv_free(p->warnings);
	*p = (struct prealloc_plan){0};
}

_printf_(2, 0) static int strv_vpush(char ***strv, const char *fmt, va_list ap)
{
	size_t n = strv_length(*strv);
	char **v = realloc(*strv, (n + 2) * sizeof(char *));
	if (!v)
		return -ENOMEM;
	*strv = v;
	v[n + 1] = NULL;
	int r = vasprintf(&v[n], fmt, ap);
	return r < 0 ? (v[n] = NULL, -ENOMEM) : 0;
}

_printf_(2, 3) static int note(struct prealloc_plan *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = strv_vpush(&p->notes, fmt, ap);
	va_end(ap);
	return r;
}

_printf_(2, 3) static int warning(struct prealloc_plan *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = strv_vpush(&p->warnings, fmt, ap);
	va_end(ap);
	return r;
}

/* `BINARY -object help` lists thread-context (qemu >= 7.2). Runs the binary with the
 * launcher's credentials: never called in setuid mode. False when it cannot be told. */
static bool qemu_has_thread_context(const char *binary)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return false;
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (dup2(fds[1], 1) < 0 || (null >= 0 && (dup2(null, 0) < 0 || dup2(null, 2) < 0)))
			_exit(127);
		execlp(binary, binary, "-object", "help", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		return false;
	}
	char buf[4096];
	size_t len = 0;
	bool found = false;
	for (;;) {
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		if (poll(&pfd, 1, 5000) <= 0)
			break; /* a qemu that does not answer in 5 s is not waited for */
		ssize_t k = read(fds[0], buf + len, sizeof(buf) - 1 - len);
		if (k <= 0)
			break;
		len += (size_t)k;
		buf[len] = '\0';
		if (strstr(buf, "thread-context")) {
			found = true;
			break;
		}
		/* keep the tail: a name may straddle two reads */
		if (len > sizeof(buf) / 2) {
			memmove(buf, buf + len - 64, 64);
			len = 64;
		}
	}
	close(fds[0]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return found;
}

/* emulator_pinning, else the online CPUs without a pinned vCPU; NULL when none is left. */
static int emulator_cpus(const struct definition *d, struct cpu_list **ret, struct ql_error *err)
{
	*ret = NULL;
	if (d->emulator_cpus) {
		*ret = cpu_list_dup(d->emulator_cpus);
		return *ret ? 0 : ql_error_set(err, ENOMEM, "out of memory");
	}
	struct cpu_list *l = NULL;
	int r = cpu_list_read_file("/sys/devices/system/cpu/online", &l, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < d->n_pins; i++)
		cpu_list_remove(l, d->pins[i].host_cpu);
	if (cpu_list_is_empty(l))
		cpu_list_free(l);
	else
		*ret = l;
	return 0;
}

int prealloc_context_cpus(const struct cpu_list *emulator, const struct cpu_list *node_cpus,
			  struct cpu_list **ret, bool *ret_fallback)
{
	struct cpu_list *l = cpu_list_dup(emulator);
	if (!l)
		return -ENOMEM;
	*ret_fallback = false;
	if (node_cpus) {
		for (int c = cpu_list_next(emulator, -1); c >= 0; c = cpu_list_next(emulator, c))
			if (!cpu_list_has(node_cpus, (unsigned)c))
				cpu_list_remove(l, (unsigned)c);
		if (cpu_list_is_empty(l)) {
			cpu_list_free(l);
			if (!(l = cpu_list_dup(emulator)))
				return -ENOMEM;
			*ret_fallback = true;
		}
	}
	*ret = l;
	return 0;
}

/* The thread-context of a node (-1: of the emulator CPUs): the one made for an earlier backend,
 * or a new `-object thread-context` on cpus in p->args. Its id; NULL on ENOMEM. */
static const char *context_for(struct prealloc_plan *p, const struct cpu_list *cpus, int node)
{
	_cleanup_free_ char *list = cpu_list_format(cpus), *id = NULL, *prefix = NULL;
	if (!list ||
	    (node < 0 ? asprintf(&id, "%s", PREALLOC_CONTEXT_ID)
		      : asprintf(&id, "%s-node%d", PREALLOC_CONTEXT_ID, node)) < 0 ||
	    asprintf(&prefix, "thread-context,id=%s,", id) < 0)
		return NULL;
	size_t n = strv_length(p->args);
	for (size_t i = 1; i < n; i += 2)
		if (strncmp(p->args[i], prefix, strlen(prefix)) == 0)
			return p->args[i] + strlen("thread-context,id=");
	/* cpu-affinity takes one CPU or range per occurrence */
	char *obj = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&obj, &len);
	if (!f)
		return NULL;
	fputs(prefix, f);
	const char *sep = "";
	for (char *save = NULL, *t = strtok_r(list, ",", &save); t;
	     t = strtok_r(NULL, ",", &save), sep = ",")
		fprintf(f, "%scpu-affinity=%s", sep, t);
	if (fclose(f) != 0) {
		free(obj);
		return NULL;
	}
	char **v = realloc(p->args, (n + 3) * sizeof(char *));
	if (!v) {
		free(obj);
		return NULL;
	}
	p->args = v;
	v[n + 2] = NULL;
	v[n + 1] = NULL;
	if (!(v[n] = strdup("-object"))) {
		free(obj);
		return NULL;
	}
	v[n + 1] = obj;
	/* the id, ended by its comma: the caller copies it up to there */
	return obj + strlen("thread-context,id=");
}

/* The CPUs of host node `node` (/sys/devices/system/node/nodeN/cpulist); NULL when unreadable. */
static struct cpu_list *node_cpus_of(int node)
{
	char path[96];
	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist", node);
	struct cpu_list *l = NULL;
	struct ql_error e = {0};
	if (cpu_list_read_file(path, &l, &e) < 0)
		l = NULL;
	ql_error_clear(&e);
	return l;
}

static int take(struct prealloc_plan *ret, struct prealloc_plan *p)
{
	*ret = *p;
	*p = (struct prealloc_plan){0};
	return 0;
}

static size_t value_index(const struct definition *d, size_t option)
{
	size_t k = 1;
	for (size_t j = 0; j < option; j++)
		k += d->options[j].has_value ? 2 : 1;
	return k + 1;
}

int prealloc_plan_new(const struct definition *d, const struct mem_layout *l, bool probe,
		      struct prealloc_plan *ret, struct ql_error *err)
{
	_cleanup_(prealloc_plan_done) struct prealloc_plan p = {0};
	*ret = p;
	if (!definition_wants_pinning(d))
		return 0;
	size_t want = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (!l->v[i].prealloc)
			continue;
		if (streq(l->v[i].id, "-mem-path")) {
			if (note(&p,
				 "%s: -mem-prealloc has no prealloc-context: its threads run "
				 "where qemu runs",
				 "prealloc") < 0)
				return ql_error_set(err, ENOMEM, "out of memory");
			continue;
		}
		want++;
	}
	if (!want) {
		return take(ret, &p);
	}
	_cleanup_(cpu_list_freep) struct cpu_list *cpus = NULL;
	int r = emulator_cpus(d, &cpus, err);
	if (r < 0)
		return r;
	if (!cpus) {
		if (note(&p, "%s: no CPU is left outside the vCPUs' for the preallocation threads",
			 "prealloc") < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
		return take(ret, &p);
	}
	if (probe && !qemu_has_thread_context(d->binary)) {
		if (note(&p,
			 "prealloc: %s does not list thread-context (QEMU < 7.2?): the "
			 "preallocation threads may run on the vCPUs' CPUs",
			 d->binary) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
		return take(ret, &p);
	}
	p.argv_index = calloc(want, sizeof(size_t));
	p.values = calloc(want + 1, sizeof(char *));
	p.ids = calloc(want + 1, sizeof(char *));
	p.contexts = calloc(want + 1, sizeof(char *));
	if (!p.argv_index || !p.values || !p.ids || !p.contexts)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < l->n; i++) {
		const struct mem_backend *b = &l->v[i];
		if (!b->prealloc || streq(b->id, "-mem-path"))
			continue;
		_cleanup_free_ char *val = cmdline_option_value(&d->options[b->option]);
		if (!val)
			return ql_error_set(err, ENOMEM, "out of memory");
		/* the JSON form would need a member added: left as written */
		if (val[0] == '{') {
			if (note(&p,
				 "prealloc: backend `%s` is written in JSON: no prealloc-context "
				 "added "
				 "(its key=value form gets one)",
				 b->id) < 0)
				return ql_error_set(err, ENOMEM, "out of memory");
			continue;
		}
		if (strstr(val, "prealloc-context=")) {
			if (note(&p, "prealloc: backend `%s` names its own prealloc-context: kept",
				 b->id) < 0)
				return ql_error_set(err, ENOMEM, "out of memory");
			continue;
		}
		/* qemu 7.2 populates with a single thread in its main thread (MADV_POPULATE_WRITE,
		 * Linux >= 5.14): the context only places two or more */
		const char *t = strstr(val, "prealloc-threads=");
		if ((!t || strtol(t + 17, NULL, 10) < 2) &&
		    note(
			&p,
			"prealloc: backend `%s` has one preallocation thread: qemu may populate it "
			"in its main thread, not in the context (prealloc-threads=2 or more)",
			b->id) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
		/* a backend bound to one node: its pages are touched from that node's CPUs */
		_cleanup_cpu_list_ struct cpu_list *node_cpus =
		    b->node >= 0 ? node_cpus_of(b->node) : NULL;
		_cleanup_cpu_list_ struct cpu_list *ctx = NULL;
		bool fallback = false;
		if (prealloc_context_cpus(cpus, node_cpus, &ctx, &fallback) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
		if (b->node >= 0 && (fallback || !node_cpus)) {
			_cleanup_free_ char *emu = cpu_list_show(cpus);
			if (warning(&p,
				    "prealloc: memory backend `%s` is bound to host node %d, %s "
				    "(emulator CPUs %s): its preallocation threads run on the "
				    "emulator CPUs",
				    b->id, b->node,
				    node_cpus ? "where no emulator CPU is"
					      : "whose CPU list cannot be read",
				    emu ? emu : "?") < 0)
				return ql_error_set(err, ENOMEM, "out of memory");
		}
		const char *at = context_for(&p, ctx, fallback || !node_cpus ? -1 : b->node);
		_cleanup_free_ char *id = at ? strndup(at, strcspn(at, ",")) : NULL;
		p.argv_index[p.n] = value_index(d, b->option);
		if (!id || asprintf(&p.values[p.n], "%s,prealloc-context=%s", val, id) < 0) {
			p.values[p.n] = NULL;
			return ql_error_set(err, ENOMEM, "out of memory");
		}
		if (!(p.ids[p.n] = strdup(b->id)) || !(p.contexts[p.n] = strdup(id)))
			return ql_error_set(err, ENOMEM, "out of memory"); /* values[n] is freed */
		p.n++;
	}
	return take(ret, &p);
}
