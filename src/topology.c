/* Host CPU topology from sysfs (read once, then pure data), and the suggestion and the checks
 * that follow from it. Only the reading part does I/O. */
#include "topology.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmdline.h"
#include "smp.h"

/* sysfs ids are small numbers; a file longer than this is not one. */
#define ID_FILE_MAX 32
/* Linux has at most 1024 NUMA nodes (NODES_SHIFT 10) and a few cache levels per CPU. */
#define NODES_MAX 1024
#define CACHE_INDEX_MAX 16

/* ---- reading ------------------------------------------------------------------------------- */

_printf_(2, 3) static char *sys_path(const char *root, const char *fmt, ...)
{
	/* "/" is the host: messages name /sys/..., not //sys/... */
	size_t rl = strlen(root);
	while (rl > 0 && root[rl - 1] == '/')
		rl--;
	_cleanup_free_ char *rest = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&rest, fmt, ap);
	va_end(ap);
	if (r < 0)
		return NULL;
	char *p = NULL;
	if (asprintf(&p, "%.*s%s", (int)rl, root, rest) < 0)
		return NULL;
	return p;
}

/* Reads a small number file; -ENOENT when absent. */
static int read_id(const char *path, unsigned *ret, struct ql_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT
				       : ql_error_set_errno(err, errno, "open `%s`", path);
	char buf[ID_FILE_MAX + 1];
	ssize_t n;
	do
		n = read(fd, buf, ID_FILE_MAX);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return ql_error_set_errno(err, errno, "read `%s`", path);
	buf[n] = '\0';
	char *end;
	errno = 0;
	long v = strtol(buf, &end, 10);
	while (*end == '\n' || *end == ' ')
		end++;
	/* -1: "no package" on some architectures; keep it as one group */
	if (errno || end == buf || *end || v < -1 || v > 0xFFFFFF)
		return ql_error_set(err, EINVAL, "`%s` does not hold a small number", path);
	*ret = (unsigned)(v < 0 ? 0xFFFFFFu : (unsigned long)v);
	return 0;
}

/* A CPU list file that may be missing (offline, isolated): missing is empty. */
static int read_optional_list(const char *path, struct cpu_list **ret, struct ql_error *err)
{
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		*ret = cpu_list_new(1);
		return *ret ? 0 : ql_error_set(err, ENOMEM, "out of memory");
	}
	return cpu_list_read_file(path, ret, err);
}

static void groups_free(struct topology_group *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cpu_list_free(g[i].cpus);
	free(g);
}

void topology_free(struct host_topology *t)
{
	if (!t)
		return;
	cpu_list_free(t->possible);
	cpu_list_free(t->online);
	cpu_list_free(t->offline);
	cpu_list_free(t->isolated);
	for (size_t i = 0; i < t->n_cores; i++)
		cpu_list_free(t->cores[i].cpus);
	free(t->cores);
	groups_free(t->packages, t->n_packages);
	groups_free(t->l3, t->n_l3);
	groups_free(t->nodes, t->n_nodes);
	free(t->core_of);
	free(t);
}

static int group_find(const struct topology_group *g, size_t n, unsigned cpu)
{
	for (size_t i = 0; i < n; i++)
		if (cpu_list_has(g[i].cpus, cpu))
			return (int)i;
	return -1;
}

/* Appends a group (taking cpus); its index, or -ENOMEM. */
static int group_add(struct topology_group **g, size_t *n, unsigned id, struct cpu_list *cpus)
{
	struct topology_group *ng = realloc(*g, (*n + 1) * sizeof(**g));
	if (!ng) {
		cpu_list_free(cpus);
		return -ENOMEM;
	}
	*g = ng;
	ng[*n] = (struct topology_group){id, cpus};
	return (int)(*n)++;
}

/* Only online CPUs count: an offline CPU still appears in its siblings' lists on some kernels. */
static struct cpu_list *online_part(const struct host_topology *t, struct cpu_list *l,
				    unsigned self)
{
	if (cpu_list_add(l, self) < 0)
		return NULL;
	for (int c = cpu_list_next(l, -1); c >= 0; c = cpu_list_next(l, c))
		if (!cpu_list_has(t->online, (unsigned)c))
			cpu_list_remove(l, (unsigned)c);
	return l;
}

static int read_cpu(struct host_topology *t, const char *root, unsigned cpu, struct ql_error *err)
{
	_cleanup_free_ char *pkg_path =
	    sys_path(root, "/sys/devices/system/cpu/cpu%u/topology/physical_package_id", cpu);
	_cleanup_free_ char *core_path =
	    sys_path(root, "/sys/devices/system/cpu/cpu%u/topology/core_id", cpu);
	/* core_cpus_list since Linux 5.4; thread_siblings_list is its older name */
	_cleanup_free_ char *sib_path =
	    sys_path(root, "/sys/devices/system/cpu/cpu%u/topology/core_cpus_list", cpu);
	_cleanup_free_ char *old_sib_path =
	    sys_path(root, "/sys/devices/system/cpu/cpu%u/topology/thread_siblings_list", cpu);
	if (!pkg_path || !core_path || !sib_path || !old_sib_path)
		return ql_error_set(err, ENOMEM, "out of memory");

	unsigned pkg, core_id;
	int r = read_id(pkg_path, &pkg, err);
	if (r == -ENOENT)
		return ql_error_set(err, ENOENT, "`%s` is missing (CPU %u is online)", pkg_path,
				    cpu);
	if (r < 0)
		return r;
	r = read_id(core_path, &core_id, err);
	if (r == -ENOENT)
		return ql_error_set(err, ENOENT, "`%s` is missing", core_path);
	if (r < 0)
		return r;

	int pi = -1;
	for (size_t i = 0; i < t->n_packages; i++)
		if (t->packages[i].id == pkg)
			pi = (int)i;
	if (pi < 0) {
		struct cpu_list *l = cpu_list_new(cpu + 1);
		if (!l || (pi = group_add(&t->packages, &t->n_packages, pkg, l)) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
	}
	if (cpu_list_add(t->packages[pi].cpus, cpu) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");

	if (t->core_of[cpu] < 0) {
		_cleanup_cpu_list_ struct cpu_list *sib = NULL;
		const char *which = access(sib_path, F_OK) == 0 ? sib_path : old_sib_path;
		r = cpu_list_read_file(which, &sib, err);
		if (r < 0)
			return r;
		if (!online_part(t, sib, cpu))
			return ql_error_set(err, ENOMEM, "out of memory");
		struct topology_core *nc = realloc(t->cores, (t->n_cores + 1) * sizeof(*nc));
		if (!nc)
			return ql_error_set(err, ENOMEM, "out of memory");
		t->cores = nc;
		size_t ci = t->n_cores++;
		nc[ci] = (struct topology_core){pkg, core_id, TAKE_PTR(sib), -1, -1};
		/* a sibling already placed elsewhere means sysfs contradicts itself: first wins */
		for (int c = cpu_list_next(nc[ci].cpus, -1); c >= 0;
		     c = cpu_list_next(nc[ci].cpus, c)) {
			if ((size_t)c >= t->n_core_of || t->core_of[c] >= 0)
				cpu_list_remove(nc[ci].cpus, (unsigned)c);
			else
				t->core_of[c] = (int)ci;
		}
		size_t n = cpu_list_count(nc[ci].cpus);
		if (n > t->smt)
			t->smt = (unsigned)n;
	}

	/* the L3 group: the level-3 cache's shared_cpu_list */
	if (group_find(t->l3, t->n_l3, cpu) >= 0)
		return 0;
	for (unsigned i = 0; i < CACHE_INDEX_MAX; i++) {
		_cleanup_free_ char *lvl_path =
		    sys_path(root, "/sys/devices/system/cpu/cpu%u/cache/index%u/level", cpu, i);
		_cleanup_free_ char *shared_path = sys_path(
		    root, "/sys/devices/system/cpu/cpu%u/cache/index%u/shared_cpu_list", cpu, i);
		if (!lvl_path || !shared_path)
			return ql_error_set(err, ENOMEM, "out of memory");
		unsigned level;
		r = read_id(lvl_path, &level, err);
		if (r == -ENOENT)
			break;
		if (r < 0)
			return r;
		if (level != 3)
			continue;
		struct cpu_list *shared = NULL;
		r = cpu_list_read_file(shared_path, &shared, err);
		if (r < 0)
			return r;
		if (!online_part(t, shared, cpu)) {
			cpu_list_free(shared);
			return ql_error_set(err, ENOMEM, "out of memory");
		}
		/* CPUs already in an earlier group stay there */
		for (size_t g = 0; g < t->n_l3; g++)
			cpu_list_subtract(shared, t->l3[g].cpus);
		if (group_add(&t->l3, &t->n_l3, (unsigned)t->n_l3, shared) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
		break;
	}
	return 0;
}

static int cmp_group_id(const void *a, const void *b)
{
	const struct topology_group *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int read_nodes(struct host_topology *t, const char *root, struct ql_error *err)
{
	_cleanup_free_ char *dir_path = sys_path(root, "/sys/devices/system/node");
	if (!dir_path)
		return ql_error_set(err, ENOMEM, "out of memory");
	DIR *dir = opendir(dir_path);
	if (!dir)
		return errno == ENOENT ? 0 : ql_error_set_errno(err, errno, "open `%s`", dir_path);
	int r = 0;
	struct dirent *de;
	while ((de = readdir(dir))) {
		unsigned id;
		char tail;
		if (sscanf(de->d_name, "node%u%c", &id, &tail) != 1 || id >= NODES_MAX)
			continue;
		_cleanup_free_ char *path =
		    sys_path(root, "/sys/devices/system/node/node%u/cpulist", id);
		if (!path) {
			r = ql_error_set(err, ENOMEM, "out of memory");
			break;
		}
		struct cpu_list *cpus = NULL;
		r = cpu_list_read_file(path, &cpus, err);
		if (r < 0)
			break;
		if (group_add(&t->nodes, &t->n_nodes, id, cpus) < 0) {
			r = ql_error_set(err, ENOMEM, "out of memory");
			break;
		}
	}
	closedir(dir);
	if (r < 0)
		return r;
	qsort(t->nodes, t->n_nodes, sizeof(*t->nodes), cmp_group_id);
	return 0;
}

int topology_read(const char *root, struct host_topology **ret, struct ql_error *err)
{
	_cleanup_topology_ struct host_topology *t = calloc(1, sizeof(*t));
	if (!t)
		return ql_error_set(err, ENOMEM, "out of memory");
	static const char *const lists[] = {"possible", "online", "offline", "isolated"};
	struct cpu_list **dest[] = {&t->possible, &t->online, &t->offline, &t->isolated};
	for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
		_cleanup_free_ char *path = sys_path(root, "/sys/devices/system/cpu/%s", lists[i]);
		if (!path)
			return ql_error_set(err, ENOMEM, "out of memory");
		int r = i < 2 ? cpu_list_read_file(path, dest[i], err)
			      : read_optional_list(path, dest[i], err);
		if (r < 0)
			return r;
	}
	int last = cpu_list_last(t->online);
	if (last < 0)
		return ql_error_set(err, EINVAL, "no CPU is online");
	t->n_core_of = (size_t)last + 1;
	if (!(t->core_of = malloc(t->n_core_of * sizeof(int))))
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < t->n_core_of; i++)
		t->core_of[i] = -1;
	t->smt = 1;

	for (int c = cpu_list_next(t->online, -1); c >= 0; c = cpu_list_next(t->online, c)) {
		int r = read_cpu(t, root, (unsigned)c, err);
		if (r < 0)
			return r;
	}
	qsort(t->packages, t->n_packages, sizeof(*t->packages), cmp_group_id);
	int r = read_nodes(t, root, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < t->n_cores; i++) {
		int first = cpu_list_next(t->cores[i].cpus, -1);
		t->cores[i].l3 = group_find(t->l3, t->n_l3, (unsigned)first);
		t->cores[i].node = group_find(t->nodes, t->n_nodes, (unsigned)first);
	}
	*ret = TAKE_PTR(t);
	return 0;
}

int topology_core_of(const struct host_topology *t, unsigned cpu)
{
	return cpu < t->n_core_of ? t->core_of[cpu] : -1;
}

int topology_l3_of(const struct host_topology *t, unsigned cpu)
{
	int c = topology_core_of(t, cpu);
	return c < 0 ? -1 : t->cores[c].l3;
}

int topology_node_of(const struct host_topology *t, unsigned cpu)
{
	int c = topology_core_of(t, cpu);
	return c < 0 ? -1 : t->cores[c].node;
}

/* ---- --topology ----------------------------------------------------------------------------- */

static void put_list(FILE *f, const struct cpu_list *l)
{
	_cleanup_free_ char *s = cpu_list_format(l);
	fputs(!s ? "?" : *s ? s : "none", f);
}

char *topology_format(const struct host_topology *t)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	fputs("online: ", f);
	put_list(f, t->online);
	fputs("\noffline: ", f);
	put_list(f, t->offline);
	fputs("\nisolated: ", f);
	put_list(f, t->isolated);
	fprintf(f, "\nthreads per core: %u\n", t->smt);
	for (size_t p = 0; p < t->n_packages; p++) {
		fprintf(f, "package %u: CPUs ", t->packages[p].id);
		put_list(f, t->packages[p].cpus);
		fputc('\n', f);
		for (size_t i = 0; i < t->n_cores; i++) {
			const struct topology_core *c = &t->cores[i];
			if (c->package != t->packages[p].id)
				continue;
			fprintf(f, "  core %u: CPUs ", c->core_id);
			put_list(f, c->cpus);
			/* "(L3 0, node 0)": the list itself holds commas */
			if (c->l3 >= 0)
				fprintf(f, " (L3 %u", t->l3[c->l3].id);
			if (c->node >= 0)
				fprintf(f, "%s node %u", c->l3 >= 0 ? "," : " (",
					t->nodes[c->node].id);
			fputs(c->l3 >= 0 || c->node >= 0 ? ")\n" : "\n", f);
		}
	}
	for (size_t i = 0; i < t->n_l3; i++) {
		fprintf(f, "L3 %u: CPUs ", t->l3[i].id);
		put_list(f, t->l3[i].cpus);
		fputc('\n', f);
	}
	for (size_t i = 0; i < t->n_nodes; i++) {
		fprintf(f, "node %u: CPUs ", t->nodes[i].id);
		put_list(f, t->nodes[i].cpus);
		fputc('\n', f);
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* ---- --suggest ------------------------------------------------------------------------------ */

enum level { LEVEL_L3, LEVEL_NODE, LEVEL_HOST };

/* Whether core c is in group g of a level, and in NUMA node index `node` (-1: any). */
static bool core_in(const struct topology_core *c, enum level level, size_t g, int node)
{
	if (node >= 0 && c->node != node)
		return false;
	return level == LEVEL_L3 ? c->l3 == (int)g : level == LEVEL_NODE ? c->node == (int)g : true;
}

/* Up to `want` cores of group g that can hold `threads` vCPUs, cores the user isolated first;
 * core 0 (the first core) stays the host's. Returns how many were written to out. */
static size_t group_candidates(const struct host_topology *t, enum level level, size_t g, int node,
			       unsigned threads, size_t *out, size_t want)
{
	size_t n = 0;
	bool any_isolated = !cpu_list_is_empty(t->isolated);
	for (int pass = any_isolated ? 0 : 1; pass < 2; pass++)
		for (size_t i = 1; i < t->n_cores && n < want; i++) {
			const struct topology_core *c = &t->cores[i];
			if (!core_in(c, level, g, node) || cpu_list_count(c->cpus) < threads)
				continue;
			bool iso = any_isolated && cpu_list_is_subset(c->cpus, t->isolated);
			if ((pass == 0) != iso)
				continue;
			out[n++] = i;
		}
	return n;
}

static int cmp_core_index(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/* need cores of one group of a level (inside node `node` unless -1). */
static bool pick_one(const struct host_topology *t, enum level level, size_t n_groups, int node,
		     size_t need, unsigned threads, size_t *out)
{
	for (size_t g = 0; g < n_groups; g++)
		if (group_candidates(t, level, g, node, threads, out, need) == need) {
			qsort(out, need, sizeof(*out), cmp_core_index);
			return true;
		}
	return false;
}

/* need cores spread evenly over the fewest groups of a level (inside node `node` unless -1):
 * one guest socket per group. 0 when no spread fits, else the number of groups. */
static unsigned pick_spread(const struct host_topology *t, enum level level, size_t n_groups,
			    int node, size_t need, unsigned threads, size_t *out)
{
	for (size_t k = 2; k <= n_groups && k <= need; k++) {
		if (need % k)
			continue;
		size_t per = need / k, got = 0;
		for (size_t g = 0; g < n_groups && got < k; g++)
			if (group_candidates(t, level, g, node, threads, out + got * per, per) ==
			    per)
				got++;
		if (got == k) {
			for (size_t s = 0; s < k; s++)
				qsort(out + s * per, per, sizeof(*out), cmp_core_index);
			return (unsigned)k;
		}
	}
	return 0;
}

/* Chooses `need` cores into out (socket by socket) and the number of guest sockets, preferring
 * in this order: one L3 group within one NUMA node; one L3 group (Sub-NUMA Clustering splits
 * one over nodes); L3 groups of one node, one guest socket each (so the guest sees as many L3
 * caches as it uses); L3 groups of several nodes likewise; one node; nodes, one guest socket
 * each; anything. false when the host has too few cores. */
static bool pick_cores(const struct host_topology *t, size_t need, unsigned threads, size_t *out,
		       unsigned *ret_sockets)
{
	unsigned k;
	*ret_sockets = 1;
	for (size_t n = 0; t->n_l3 && n < t->n_nodes; n++)
		if (pick_one(t, LEVEL_L3, t->n_l3, (int)n, need, threads, out))
			return true;
	if (t->n_l3 && pick_one(t, LEVEL_L3, t->n_l3, -1, need, threads, out))
		return true;
	if (t->n_l3 > 1) {
		for (size_t n = 0; n < t->n_nodes; n++)
			if ((k = pick_spread(t, LEVEL_L3, t->n_l3, (int)n, need, threads, out))) {
				*ret_sockets = k;
				return true;
			}
		if ((k = pick_spread(t, LEVEL_L3, t->n_l3, -1, need, threads, out))) {
			*ret_sockets = k;
			return true;
		}
	}
	/* without L3 information, nodes are the next best thing */
	if (!t->n_l3 && t->n_nodes) {
		if (pick_one(t, LEVEL_NODE, t->n_nodes, -1, need, threads, out))
			return true;
		if ((k = pick_spread(t, LEVEL_NODE, t->n_nodes, -1, need, threads, out))) {
			*ret_sockets = k;
			return true;
		}
	}
	if (group_candidates(t, LEVEL_HOST, 0, -1, threads, out, need) != need)
		return false;
	qsort(out, need, sizeof(*out), cmp_core_index);
	return true;
}

/* "L3 groups 0,1" / "node 0": the groups of one level the chosen CPUs touch. */
static struct cpu_list *groups_touched(const struct host_topology *t, const struct cpu_list *cpus,
				       bool l3)
{
	struct cpu_list *ids = cpu_list_new(1);
	if (!ids)
		return NULL;
	for (int c = cpu_list_next(cpus, -1); c >= 0; c = cpu_list_next(cpus, c)) {
		int g = l3 ? topology_l3_of(t, (unsigned)c) : topology_node_of(t, (unsigned)c);
		if (g >= 0 && cpu_list_add(ids, l3 ? t->l3[g].id : t->nodes[g].id) < 0) {
			cpu_list_free(ids);
			return NULL;
		}
	}
	return ids;
}

int topology_suggest(const struct host_topology *t, unsigned n_vcpus, char **ret_yaml,
		     struct ql_error *err)
{
	if (n_vcpus == 0)
		return ql_error_set(err, EINVAL, "no vCPUs to place");
	if (t->n_cores < 2)
		return ql_error_set(err, ENOSPC,
				    "this host has one core: nothing is left for the host if the "
				    "vCPUs get it");
	/* SMT siblings become guest threads when the count allows: the guest then schedules
	 * knowing which of its vCPUs share a core, as they really do. Too few cores with that
	 * many threads online (a hybrid CPU's efficiency cores have one, an offline sibling):
	 * one vCPU per core. */
	unsigned threads = t->smt > 1 && n_vcpus % t->smt == 0 ? t->smt : 1;
	_cleanup_free_ size_t *picked = calloc(n_vcpus, sizeof(*picked));
	if (!picked)
		return ql_error_set(err, ENOMEM, "out of memory");
	unsigned sockets;
	bool paired = pick_cores(t, n_vcpus / threads, threads, picked, &sockets);
	bool unpaired = !paired && threads > 1;
	if (unpaired && pick_cores(t, n_vcpus, 1, picked, &sockets))
		threads = 1;
	else if (!paired) {
		_cleanup_free_ size_t *all = calloc(t->n_cores, sizeof(*all));
		_cleanup_free_ char *host = cpu_list_format(t->cores[0].cpus);
		size_t fit =
		    all ? group_candidates(t, LEVEL_HOST, 0, -1, threads, all, t->n_cores) : 0;
		return ql_error_set(err, ENOSPC,
				    "%u vCPUs need %u host cores with %u thread%s each besides "
				    "the first core (CPUs %s, left to the host); this host has %zu",
				    n_vcpus, n_vcpus / threads, threads, threads > 1 ? "s" : "",
				    host ? host : "?", fit);
	}
	size_t need = n_vcpus / threads;
	unsigned cores = (unsigned)(need / sockets);

	_cleanup_cpu_list_ struct cpu_list *used = cpu_list_new(1);
	if (!used)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < need; i++) {
		const struct cpu_list *cc = t->cores[picked[i]].cpus;
		unsigned k = 0;
		for (int c = cpu_list_next(cc, -1); c >= 0 && k < threads;
		     c = cpu_list_next(cc, c), k++)
			if (cpu_list_add(used, (unsigned)c) < 0)
				return ql_error_set(err, ENOMEM, "out of memory");
	}
	_cleanup_cpu_list_ struct cpu_list *l3s = groups_touched(t, used, true);
	_cleanup_cpu_list_ struct cpu_list *nodes = groups_touched(t, used, false);
	_cleanup_free_ char *used_s = cpu_list_format(used);
	_cleanup_free_ char *host_s = cpu_list_format(t->cores[0].cpus);
	_cleanup_free_ char *l3_s = l3s ? cpu_list_format(l3s) : NULL;
	_cleanup_free_ char *node_s = nodes ? cpu_list_format(nodes) : NULL;
	if (!l3s || !nodes || !used_s || !host_s || !l3_s || !node_s)
		return ql_error_set(err, ENOMEM, "out of memory");

	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return ql_error_set(err, ENOMEM, "out of memory");
	fprintf(f, "# %u vCPU%s as %u socket%s x %u core%s x %u thread%s on host CPU%s %s", n_vcpus,
		n_vcpus > 1 ? "s" : "", sockets, sockets > 1 ? "s" : "", cores,
		cores > 1 ? "s" : "", threads, threads > 1 ? "s" : "", n_vcpus > 1 ? "s" : "",
		used_s);
	if (t->n_l3)
		fprintf(f, " (L3 group%s %s", cpu_list_count(l3s) > 1 ? "s" : "", l3_s);
	if (t->n_nodes)
		fprintf(f, "%s NUMA node%s %s", t->n_l3 ? "," : " (",
			cpu_list_count(nodes) > 1 ? "s" : "", node_s);
	fprintf(f,
		"%s;\n# the first core (CPUs %s) is left to the host and qemu's other threads.\n",
		t->n_l3 || t->n_nodes ? ")" : "", host_s);
	if (unpaired)
		fprintf(f,
			"# One vCPU per host core (too few free cores with %u threads online): "
			"keep their SMT siblings free.\n",
			t->smt);
	else if (threads == 1 && t->smt > 1)
		fprintf(f,
			"# One vCPU per host core (%u vCPUs do not pair into %u-thread cores): "
			"keep their SMT siblings free.\n",
			n_vcpus, t->smt);
	if (cpu_list_count(l3s) > sockets)
		fputs("# The vCPUs span more L3 groups than guest sockets: the guest will assume "
		      "caches it does not have.\n",
		      f);
	if (cpu_list_count(nodes) > 1)
		fputs("# The vCPUs span NUMA nodes: add -numa nodes (with memory) matching the "
		      "guest sockets.\n",
		      f);
	fputs(
	    "# Printed only, nothing was changed: replace vcpu_pinning, emulator_pinning and -smp\n"
	    "# in the definition with these.\n",
	    f);
	fputs("launcher:\n  vcpu_pinning:\n", f);
	for (unsigned s = 0; s < sockets; s++) {
		fprintf(f, "    %u:\n", s);
		for (unsigned c = 0; c < cores; c++) {
			const struct cpu_list *cc = t->cores[picked[s * cores + c]].cpus;
			fprintf(f, "      %u: {", c);
			unsigned k = 0;
			for (int h = cpu_list_next(cc, -1); h >= 0 && k < threads;
			     h = cpu_list_next(cc, h), k++)
				fprintf(f, "%s %u: %d", k ? "," : "", k, h);
			fputs(" }\n", f);
		}
	}
	fprintf(f, "  emulator_pinning: %s\n", host_s);
	fprintf(f, "qemu:\n- smp: [ %u, sockets: %u, cores: %u, threads: %u ]\n", n_vcpus, sockets,
		cores, threads);
	if (fclose(f) != 0) {
		free(out);
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	*ret_yaml = out;
	return 0;
}

int topology_suggest_for(const struct host_topology *t, const struct definition *d, char **ret_yaml,
			 struct ql_error *err)
{
	struct smp_topology smp = smp_topology_of(d);
	if (!smp.known || smp.cpus == 0)
		return ql_error_set(
		    err, EINVAL,
		    "%s: the vCPU count of its -smp cannot be followed (clusters or "
		    "a number qemu would refuse)",
		    d->path);
	return topology_suggest(t, smp.cpus, ret_yaml, err);
}

/* ---- --check -------------------------------------------------------------------------------- */

struct warnings {
	char **v;
	size_t n;
};

_printf_(2, 3) static int warn(struct warnings *w, const char *fmt, ...)
{
	char **nv = realloc(w->v, (w->n + 2) * sizeof(char *));
	if (!nv)
		return -ENOMEM;
	w->v = nv;
	nv[w->n] = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&nv[w->n], fmt, ap);
	va_end(ap);
	if (r < 0) {
		nv[w->n] = NULL;
		return -ENOMEM;
	}
	nv[++w->n] = NULL;
	return 0;
}

/* The guest NUMA nodes' vCPU lists from `-numa node,...,cpus=A-B,cpus=C`. false when the guest
 * shows no node or assigns its CPUs another way (`-numa cpu`, a node without cpus=): then the
 * mapping is qemu's and is not checked. */
static int guest_numa_nodes(const struct definition *d, struct cpu_list ***ret, size_t *ret_n,
			    bool *ret_known)
{
	struct cpu_list **nodes = NULL;
	size_t n = 0;
	bool known = true;
	int r = 0;
	for (size_t i = 0; i < d->n_options && known; i++) {
		if (!qemu_option_is(&d->options[i], "numa") || !d->options[i].has_value)
			continue;
		_cleanup_free_ char *v = cmdline_option_value(&d->options[i]);
		if (!v) {
			r = -ENOMEM;
			break;
		}
		char *save = NULL, *tok = strtok_r(v, ",", &save);
		if (!tok || streq(tok, "dist") || streq(tok, "hmat-lb") || streq(tok, "hmat-cache"))
			continue;
		if (!streq(tok, "node")) {
			known = false;
			break;
		}
		struct cpu_list *cpus = cpu_list_new(1);
		struct cpu_list **nn = cpus ? realloc(nodes, (n + 1) * sizeof(*nodes)) : NULL;
		if (!nn) {
			cpu_list_free(cpus);
			r = -ENOMEM;
			break;
		}
		nodes = nn;
		nodes[n++] = cpus;
		bool any = false;
		while ((tok = strtok_r(NULL, ",", &save))) {
			if (strncmp(tok, "cpus=", 5) != 0)
				continue;
			struct ql_error ignored = {0};
			_cleanup_cpu_list_ struct cpu_list *part = NULL;
			if (cpu_list_parse(tok + 5, &part, &ignored) < 0) {
				ql_error_clear(&ignored);
				known = false;
				break;
			}
			for (int c = cpu_list_next(part, -1); c >= 0; c = cpu_list_next(part, c))
				if (cpu_list_add(cpus, (unsigned)c) < 0)
					r = -ENOMEM;
			any = true;
		}
		if (!any)
			known = false;
	}
	if (r < 0 || !known) {
		for (size_t i = 0; i < n; i++)
			cpu_list_free(nodes[i]);
		free(nodes);
		nodes = NULL;
		n = 0;
	}
	*ret = nodes;
	*ret_n = n;
	*ret_known = known;
	return r;
}

/* Warns when the vCPUs of cpu-indexes that the guest sees as one L3 domain or NUMA node (a
 * predicate on the index) touch more than one host group. */
static int check_span(const struct host_topology *t, const struct definition *d, const long *idx,
		      bool (*member)(long idx, const void *ctx), const void *ctx, bool l3,
		      const char *what, struct warnings *w)
{
	_cleanup_cpu_list_ struct cpu_list *hosts = cpu_list_new(1), *groups = cpu_list_new(1);
	if (!hosts || !groups)
		return -ENOMEM;
	const struct vcpu_pin *mark = NULL;
	for (size_t i = 0; i < d->n_pins; i++) {
		if (idx[i] < 0 || !member(idx[i], ctx))
			continue;
		unsigned h = d->pins[i].host_cpu;
		int g = l3 ? topology_l3_of(t, h) : topology_node_of(t, h);
		if (g < 0)
			continue;
		if (!mark)
			mark = &d->pins[i];
		if (cpu_list_add(hosts, h) < 0 ||
		    cpu_list_add(groups, l3 ? t->l3[g].id : t->nodes[g].id) < 0)
			return -ENOMEM;
	}
	if (cpu_list_count(groups) < 2)
		return 0;
	_cleanup_free_ char *hs = cpu_list_format(hosts), *gs = cpu_list_format(groups);
	if (!hs || !gs)
		return -ENOMEM;
	if (l3)
		return warn(w,
			    "%s:%u:%u: the vCPUs of %s run on host CPUs %s, which belong to L3 "
			    "groups %s: the guest assumes they share one L3 cache; give each host "
			    "L3 group its own guest socket (-smp sockets=)",
			    d->path, mark->mark.line, mark->mark.column, what, hs, gs);
	return warn(w,
		    "%s:%u:%u: the vCPUs of %s run on host CPUs %s, which belong to NUMA nodes %s: "
		    "the guest assumes their memory is equally near; show the host nodes with "
		    "-numa node,cpus=",
		    d->path, mark->mark.line, mark->mark.column, what, hs, gs);
}

struct range {
	long lo, hi;
};
static bool in_range(long idx, const void *ctx)
{
	const struct range *r = ctx;
	return idx >= r->lo && idx < r->hi;
}
static bool in_list(long idx, const void *ctx)
{
	return cpu_list_has(ctx, (unsigned)idx);
}
static bool always(long idx, const void *ctx)
{
	return true;
}

/* Whether pin i is the first, in the definition's order, in its group of `per` cpu-indexes (a
 * guest core, a guest die): each group is looked at once, from its first pin, however large the
 * indexes. */
static bool first_in_group(const long *idx, size_t i, long per)
{
	if (idx[i] < 0)
		return false; /* not known: in no group */
	for (size_t k = 0; k < i; k++)
		if (idx[k] / per == idx[i] / per)
			return false;
	return true;
}

/* Separate guest cores on SMT siblings of one host core: the guest schedules them as cores of
 * their own, each with a whole core's throughput. Warned once per host core. */
static int check_sibling_cores(const struct host_topology *t, const struct definition *d,
			       const long *idx, const struct smp_topology *smp, struct warnings *w)
{
	if (!smp->known || t->smt < 2)
		return 0;
	_cleanup_cpu_list_ struct cpu_list *warned = cpu_list_new(t->n_cores);
	if (!warned)
		return -ENOMEM;
	int r = 0;
	for (size_t j = 1; j < d->n_pins && r >= 0; j++) {
		const struct vcpu_pin *b = &d->pins[j];
		int cb = topology_core_of(t, b->host_cpu);
		if (cb < 0 || idx[j] < 0 || cpu_list_has(warned, (unsigned)cb))
			continue;
		for (size_t i = 0; i < j; i++) {
			const struct vcpu_pin *a = &d->pins[i];
			if (idx[i] < 0 || topology_core_of(t, a->host_cpu) != cb ||
			    a->host_cpu == b->host_cpu ||
			    idx[i] / smp->threads == idx[j] / smp->threads)
				continue;
			r = cpu_list_add(warned, (unsigned)cb);
			if (r >= 0)
				r = warn(
				    w,
				    "%s:%u:%u: vCPUs %ld and %ld are separate guest cores but "
				    "run on host CPUs %u and %u, SMT siblings of one host core: "
				    "the guest takes each for a whole core; make them threads of "
				    "one guest core (-smp threads=) or pin them to other cores",
				    d->path, b->mark.line, b->mark.column, idx[i], idx[j],
				    a->host_cpu, b->host_cpu);
			break;
		}
	}
	return r;
}

static int check_pins(const struct host_topology *t, const struct definition *d, const long *idx,
		      const struct smp_topology *smp, struct warnings *w)
{
	int r = 0;

	/* guest threads of one guest core on one host core */
	if (smp->known && smp->threads > 1)
		for (size_t i = 0; i < d->n_pins && r >= 0; i++) {
			if (!first_in_group(idx, i, smp->threads))
				continue;
			const struct vcpu_pin *a = &d->pins[i];
			int ca = topology_core_of(t, a->host_cpu);
			for (size_t j = 0; j < d->n_pins && ca >= 0; j++) {
				const struct vcpu_pin *b = &d->pins[j];
				int cb = topology_core_of(t, b->host_cpu);
				if (idx[j] < 0 || idx[j] / smp->threads != idx[i] / smp->threads ||
				    cb < 0 || cb == ca)
					continue;
				_cleanup_free_ char *sa = cpu_list_format(t->cores[ca].cpus);
				r = warn(
				    w,
				    "%s:%u:%u: vCPUs %ld and %ld are threads of one guest core "
				    "but run on host CPUs %u and %u, which are not SMT siblings "
				    "(the siblings of host CPU %u are %s)",
				    d->path, b->mark.line, b->mark.column, idx[i], idx[j],
				    a->host_cpu, b->host_cpu, a->host_cpu, sa ? sa : "?");
				break;
			}
		}
	if (r >= 0)
		r = check_sibling_cores(t, d, idx, smp, w);

	/* one guest die (a socket unless -smp has dies) shares one L3 cache in qemu's CPUID */
	if (smp->known && t->n_l3 > 1) {
		long per = (long)smp->cores * smp->threads;
		for (size_t i = 0; i < d->n_pins && r >= 0; i++) {
			if (!first_in_group(idx, i, per))
				continue;
			long die = idx[i] / per;
			struct range rg = {die * per, (die + 1) * per};
			char what[64];
			if (smp->dies > 1)
				snprintf(what, sizeof(what), "guest socket %ld die %ld",
					 die / smp->dies, die % smp->dies);
			else
				snprintf(what, sizeof(what), "guest socket %ld", die);
			r = check_span(t, d, idx, in_range, &rg, true, what, w);
		}
	}

	/* NUMA nodes the guest does not show */
	if (t->n_nodes > 1 && r >= 0) {
		struct cpu_list **gnodes = NULL;
		size_t n_gnodes = 0;
		bool known;
		r = guest_numa_nodes(d, &gnodes, &n_gnodes, &known);
		if (r >= 0 && known && n_gnodes == 0)
			r = check_span(t, d, idx, always, NULL, false,
				       "a guest without -numa nodes", w);
		for (size_t g = 0; g < n_gnodes && r >= 0; g++) {
			char what[64];
			snprintf(what, sizeof(what), "guest NUMA node %zu", g);
			r = check_span(t, d, idx, in_list, gnodes[g], false, what, w);
		}
		for (size_t g = 0; g < n_gnodes; g++)
			cpu_list_free(gnodes[g]);
		free(gnodes);
	}
	return r;
}

int topology_check(const struct host_topology *t, const struct definition *d, char ***ret_warnings,
		   struct ql_error *err)
{
	struct warnings w = {0};
	struct smp_topology smp = smp_topology_of(d);
	_cleanup_free_ long *idx = calloc(d->n_pins + 1, sizeof(long));
	int r = idx ? 0 : -ENOMEM;
	for (size_t i = 0; i < d->n_pins && r >= 0; i++)
		idx[i] = smp_cpu_index(&smp, &d->pins[i]);
	if (r >= 0 && d->n_pins)
		r = check_pins(t, d, idx, &smp, &w);

	if (r >= 0 && d->emulator_cpus && d->n_pins) {
		_cleanup_cpu_list_ struct cpu_list *both = cpu_list_new(1);
		if (!both)
			r = -ENOMEM;
		for (size_t i = 0; i < d->n_pins && r >= 0; i++)
			if (cpu_list_has(d->emulator_cpus, d->pins[i].host_cpu))
				r = cpu_list_add(both, d->pins[i].host_cpu);
		if (r >= 0 && !cpu_list_is_empty(both)) {
			_cleanup_free_ char *s = cpu_list_format(both);
			r = s ? warn(&w,
				     "%s: emulator_pinning CPUs %s also run vCPUs: qemu's I/O and "
				     "emulation threads take time from those vCPUs",
				     d->path, s)
			      : -ENOMEM;
		}
	}
	if (r >= 0 && !w.v && !(w.v = calloc(1, sizeof(char *))))
		r = -ENOMEM;
	if (r < 0) {
		strv_free(w.v);
		return ql_error_set(err, -r, "out of memory");
	}
	*ret_warnings = w.v;
	return 0;
}
