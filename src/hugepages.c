/* Hugepages for guest RAM (see hugepages.h). The kernel's pools: the whole host's under
 * /sys/kernel/mm/hugepages/hugepages-<kB>kB/ and each node's under
 * /sys/devices/system/node/nodeN/hugepages/hugepages-<kB>kB/ (Documentation/admin-guide/mm/
 * hugetlbpage.rst); a backend bound to one node takes its pages from that node's pool. */
#include "hugepages.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>

#include "cmdline.h"
#include "macro.h"
#include "qemu_value.h"
#include "vfio.h"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

long hugepages_hugetlbfs_page_kb(const char *path)
{
	struct statfs st;
	if (statfs(path, &st) < 0) {
		/* qemu creates a file it is given by name: its directory tells */
		_cleanup_free_ char *dir = strdup(path);
		if (!dir)
			return -ENOMEM;
		char *slash = strrchr(dir, '/');
		if (!slash)
			return -errno;
		*(slash == dir ? slash + 1 : slash) = '\0';
		/* a path that does not exist yet is qemu's to report */
		if (statfs(dir, &st) < 0)
			return errno == ENOENT ? 0 : -errno;
	}
	if ((unsigned long)st.f_type != HUGETLBFS_MAGIC)
		return 0;
	return (long)(st.f_bsize / 1024);
}

/* --- qemu's option values (qemu_value.h) --------------------------------------------------- */

static bool is_on(const char *v)
{
	return v && (streq(v, "on") || streq(v, "yes") || streq(v, "true") || streq(v, "y"));
}

/* qemu's size syntax: a number with an optional K/M/G/T/P/E suffix in either case (qemu upper-cases
 * it: `4g` is 4 GiB), or B for bytes; a bare number is in default_shift units (bytes for objects,
 * MiB for -m). */
static int parse_size(const char *s, unsigned default_shift, uint64_t *ret)
{
	char *end;
	errno = 0;
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	double x = strtod(s, &end);
	if (errno || end == s)
		return -EINVAL;
	static const char suffixes[] = "KMGTPE";
	unsigned shift = default_shift;
	if (*end) {
		char c = (char)toupper((unsigned char)*end);
		const char *p = strchr(suffixes, c);
		if (c == 'B')
			shift = 0;
		else if (p && *p)
			shift = 10 * (unsigned)(p - suffixes + 1);
		else
			return -EINVAL;
		if (end[1])
			return -EINVAL;
	}
	double bytes = x * (double)(1ULL << shift);
	if (bytes >= 18446744073709551616.0)
		return -ERANGE;
	*ret = (uint64_t)bytes;
	return 0;
}

/* The one node of host-nodes when the policy keeps pages there (bind, preferred); -1 otherwise. */
static int bound_node(const struct qemu_value *kv)
{
	const char *policy = qemu_value_get(kv, "policy");
	if (!policy || !(streq(policy, "bind") || streq(policy, "preferred")))
		return -1;
	int node = -1;
	for (size_t i = 0; i < kv->n; i++) {
		if (!kv->values[i] || !streq(kv->keys[i], "host-nodes"))
			continue;
		char *end;
		long v = strtol(kv->values[i], &end, 10);
		if (*end || v < 0 || (node >= 0 && node != v))
			return -1; /* a range or several nodes: the kernel chooses among them */
		node = (int)v;
	}
	return node;
}

char *hugepages_backend_warning(const struct mem_backend *b)
{
	char *s = NULL;
	if (b->node < 0 || b->prealloc ||
	    asprintf(
		&s,
		"memory backend `%s` takes its %lu kB hugepages from node %d only as the guest "
		"touches them (no prealloc=on): the kernel promises hugepages per host, not "
		"per node, so until then they count as free on node %d, also to the next VM "
		"started; prealloc=on takes them at the start",
		b->id, b->page_kb, b->node, b->node) < 0)
		return NULL;
	return s;
}

void mem_backends_free(struct mem_backend *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].id);
	free(v);
}

static int add_backend(struct mem_backend **v, size_t *n, const char *id, uint64_t bytes,
		       unsigned long page_kb, int node, bool prealloc, size_t option)
{
	struct mem_backend *nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = (struct mem_backend){.bytes = bytes,
				      .page_kb = page_kb,
				      .node = node,
				      .prealloc = prealloc,
				      .option = option};
	if (!(nv[*n].id = strdup(id)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

static bool is_memory_backend(const char *type)
{
	return type && (streq(type, "memory-backend-file") || streq(type, "memory-backend-memfd") ||
			streq(type, "memory-backend-ram") || streq(type, "memory-backend-epc"));
}

/* The memory options of d. all: every memory backend (page_kb 0 when not on hugepages) and the
 * layout facts in *lay; otherwise the hugepage-backed ones only. */
static int parse_memory(const struct definition *d, hugetlbfs_page_kb_fn page_kb,
			unsigned long default_kb, bool all, struct mem_backend **ret, size_t *ret_n,
			struct mem_layout *lay, struct ql_error *err)
{
	struct mem_backend *v = NULL;
	size_t n = 0;
	uint64_t ram = 128ULL << 20; /* qemu's default -m */
	const char *mem_path = NULL;
	size_t mem_path_opt = 0;
	bool mem_prealloc = false, ram_in_backends = false;
	int r = 0;
	struct ql_shown s;
	for (size_t i = 0; i < d->n_options && r == 0; i++) {
		const struct qemu_option *o = &d->options[i];
		if (qemu_option_is(o, "mem-prealloc"))
			mem_prealloc = true;
		/* a -device only counts when it is vfio-pci: the rest are not even built */
		bool layout =
		    all && (qemu_option_is(o, "numa") || qemu_option_is(o, "machine") ||
			    qemu_option_is(o, "M") /* -machine's other name */ ||
			    qemu_option_is(o, "overcommit") || vfio_option_may_be_device(o));
		if (!o->has_value || !(qemu_option_is(o, "m") || qemu_option_is(o, "mem-path") ||
				       qemu_option_is(o, "object") || layout))
			continue;
		_cleanup_free_ char *val = cmdline_option_value(o);
		struct qemu_value kv = {0};
		int pr = val ? qemu_value_parse(val, &kv) : -ENOMEM;
		if (pr == -EINVAL)
			continue; /* not JSON qemu takes: its to report */
		if (pr < 0) {
			r = ql_error_set(err, ENOMEM, "out of memory");
			break;
		}
		if (layout) {
			/* guest RAM made of backends: -m is not allocated a second time */
			if ((streq(o->name, "numa") && qemu_value_get(&kv, "memdev")) ||
			    ((streq(o->name, "machine") || streq(o->name, "M")) &&
			     qemu_value_get(&kv, "memory-backend")))
				ram_in_backends = true;
			if (streq(o->name, "overcommit") && is_on(qemu_value_get(&kv, "mem-lock")))
				lay->mem_lock = true;
			if (streq(o->name, "device") && vfio_is_device_value(val))
				lay->vfio = true; /* also the JSON form */
		} else if (streq(o->name, "mem-path")) {
			mem_path = o->is_scalar ? o->scalar : NULL;
			mem_path_opt = i;
		} else if (streq(o->name, "m")) {
			const char *size = qemu_value_implied(&kv, "size");
			if (size && parse_size(size, 20, &ram) < 0)
				r = ql_error_set(err, EINVAL,
						 "%s:%u:%u: `-m` size `%s` is not a size", d->path,
						 o->mark.line, o->mark.column, ql_show(&s, size));
		} else {
			const char *type = qemu_value_implied(&kv, "qom-type");
			const char *id = qemu_value_get(&kv, "id");
			bool file = type && streq(type, "memory-backend-file");
			bool memfd = type && streq(type, "memory-backend-memfd");
			long kb = 0;
			if (file && qemu_value_get(&kv, "mem-path"))
				kb = page_kb(qemu_value_get(&kv, "mem-path"));
			else if (memfd && is_on(qemu_value_get(&kv, "hugetlb"))) {
				uint64_t hs = (uint64_t)default_kb << 10;
				if (qemu_value_get(&kv, "hugetlbsize") &&
				    parse_size(qemu_value_get(&kv, "hugetlbsize"), 0, &hs) < 0)
					r = ql_error_set(
					    err, EINVAL,
					    "%s:%u:%u: `hugetlbsize` `%s` is not a size", d->path,
					    o->mark.line, o->mark.column,
					    ql_show(&s, qemu_value_get(&kv, "hugetlbsize")));
				kb = (long)(hs >> 10);
			}
			uint64_t bytes = 0;
			if (r == 0 && kb < 0)
				r = ql_error_set_errno(
				    err, (int)-kb, "%s:%u:%u: cannot tell the page size of `%s`",
				    d->path, o->mark.line, o->mark.column,
				    ql_show(&s, qemu_value_get(&kv, "mem-path")));
			else if (r == 0 && kb > 0 &&
				 parse_size(qemu_value_get(&kv, "size"), 0, &bytes) < 0) {
				const char *size = qemu_value_get(&kv, "size");
				struct ql_shown s2;
				r = ql_error_set(
				    err, EINVAL,
				    size ? "%s:%u:%u: memory backend `%s`: `size` `%s` is "
					   "not a size"
					 : "%s:%u:%u: memory backend `%s` needs a `size`%s",
				    d->path, o->mark.line, o->mark.column,
				    ql_show(&s, id ? id : "?"), size ? ql_show(&s2, size) : "");
			} else if (r == 0 && all && kb == 0 && is_memory_backend(type) &&
				   parse_size(qemu_value_get(&kv, "size"), 0, &bytes) < 0)
				bytes = 0; /* qemu's to report */
			if (r == 0 && (kb > 0 || (all && is_memory_backend(type))) &&
			    add_backend(&v, &n, id ? id : "?", bytes, (unsigned long)kb,
					bound_node(&kv), is_on(qemu_value_get(&kv, "prealloc")),
					i) < 0)
				r = ql_error_set(err, ENOMEM, "out of memory");
		}
		qemu_value_done(&kv);
	}
	if (r == 0 && mem_path) {
		long kb = page_kb(mem_path);
		if (kb < 0)
			r = ql_error_set_errno(err, (int)-kb,
					       "%s: cannot tell the page size of `%s`", d->path,
					       ql_show(&s, mem_path));
		else if (kb > 0 && add_backend(&v, &n, "-mem-path", ram, (unsigned long)kb, -1,
					       mem_prealloc, mem_path_opt) < 0)
			r = ql_error_set(err, ENOMEM, "out of memory");
	}
	if (r < 0) {
		mem_backends_free(v, n);
		return r;
	}
	if (all) {
		/* saturated: sizes near 2^64 must not wrap to a small sum (a limit too low) */
		lay->guest_ram = ram_in_backends ? 0 : ram;
		for (size_t k = 0; k < n; k++)
			if (!streq(v[k].id, "-mem-path") && /* that is -m's RAM */
			    __builtin_add_overflow(lay->guest_ram, v[k].bytes, &lay->guest_ram))
				lay->guest_ram = UINT64_MAX;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int mem_backends_parse(const struct definition *d, hugetlbfs_page_kb_fn page_kb,
		       unsigned long default_kb, struct mem_backend **ret, size_t *ret_n,
		       struct ql_error *err)
{
	return parse_memory(d, page_kb, default_kb, false, ret, ret_n, NULL, err);
}

int mem_layout_parse(const struct definition *d, hugetlbfs_page_kb_fn page_kb,
		     unsigned long default_kb, struct mem_layout *ret, struct ql_error *err)
{
	struct mem_layout l = {0};
	int r = parse_memory(d, page_kb, default_kb, true, &l.v, &l.n, &l, err);
	if (r == 0)
		*ret = l;
	return r;
}

void mem_layout_done(struct mem_layout *l)
{
	mem_backends_free(l->v, l->n);
	*l = (struct mem_layout){0};
}

/* --- the pools ---------------------------------------------------------------------------- */

void hugepages_plan_done(struct hugepages_plan *p)
{
	for (size_t i = 0; p->v && i < p->n; i++) {
		free(p->v[i].nr_path);
		free(p->v[i].compact_path);
	}
	free(p->v);
	*p = (struct hugepages_plan){0};
}

static int pool_dir(const char *sysroot, unsigned long kb, int node, char **ret)
{
	int r = node < 0
		    ? asprintf(ret, "%s/sys/kernel/mm/hugepages/hugepages-%lukB",
			       streq(sysroot, "/") ? "" : sysroot, kb)
		    : asprintf(ret, "%s/sys/devices/system/node/node%d/hugepages/hugepages-%lukB",
			       streq(sysroot, "/") ? "" : sysroot, node, kb);
	return r < 0 ? -ENOMEM : 0;
}

static int read_long(const char *dir, const char *file, long *ret, struct ql_error *err)
{
	_cleanup_free_ char *path = path_join(dir, file);
	if (!path)
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return ql_error_set_errno(err, errno, "read `%s`", path);
	if (fscanf(f, "%ld", ret) != 1)
		return ql_error_set(err, EINVAL, "`%s` does not hold a number", path);
	return 0;
}

int hugepages_meminfo_kb(const char *sysroot, const char *field, long long *ret,
			 struct ql_error *err)
{
	_cleanup_free_ char *path = path_join(sysroot, "proc/meminfo");
	if (!path)
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return ql_error_set_errno(err, errno, "read `%s`", path);
	size_t fl = strlen(field);
	char line[256];
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, fl) == 0 && line[fl] == ':' &&
		    sscanf(line + fl + 1, "%lld kB", ret) == 1)
			return 0;
	return ql_error_set(err, EINVAL, "`%s` has no %s", path, field);
}

/* What the missing pages of every pool come to, in kB. */
static long long missing_kb(const struct hugepages_plan *p)
{
	long long kb = 0;
	for (size_t k = 0; k < p->n; k++)
		kb += (long long)p->v[k].missing * (long long)p->v[k].page_kb;
	return kb;
}

int hugepages_plan_compute(const char *sysroot, const struct mem_backend *b, size_t n,
			   struct hugepages_plan *ret, struct ql_error *err)
{
	struct hugepages_plan p = {0};
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		long pages = (long)((b[i].bytes + ((uint64_t)b[i].page_kb << 10) - 1) /
				    ((uint64_t)b[i].page_kb << 10));
		size_t k = 0;
		while (k < p.n && !(p.v[k].page_kb == b[i].page_kb && p.v[k].node == b[i].node))
			k++;
		if (k == p.n) {
			struct hugepage_need *v = realloc(p.v, (p.n + 1) * sizeof(*v));
			if (!v) {
				r = ql_error_set(err, ENOMEM, "out of memory");
				break;
			}
			p.v = v;
			p.v[p.n++] =
			    (struct hugepage_need){.page_kb = b[i].page_kb, .node = b[i].node};
		}
		p.v[k].needed += pages;
	}
	for (size_t k = 0; k < p.n && r == 0; k++) {
		struct hugepage_need *h = &p.v[k];
		_cleanup_free_ char *dir = NULL;
		long resv = 0;
		const char *root = streq(sysroot, "/") ? "" : sysroot;
		if (pool_dir(sysroot, h->page_kb, h->node, &dir) < 0 ||
		    !(h->nr_path = path_join(dir, "nr_hugepages")) ||
		    (h->node < 0
			 ? asprintf(&h->compact_path, "%s/proc/sys/vm/compact_memory", root)
			 : asprintf(&h->compact_path, "%s/sys/devices/system/node/node%d/compact",
				    root, h->node)) < 0) {
			h->compact_path = NULL;
			r = ql_error_set(err, ENOMEM, "out of memory");
			break;
		}
		if (access(dir, F_OK) < 0) {
			r = ql_error_set_errno(
			    err, errno, "this host has no %lu kB hugepages%s (`%s`)", h->page_kb,
			    h->node >= 0 ? " on that node" : "", dir);
			break;
		}
		r = read_long(dir, "nr_hugepages", &h->nr, err);
		if (r == 0)
			r = read_long(dir, "free_hugepages", &h->free, err);
		/* free pages promised to mappings not yet faulted in are not ours; the kernel
		 * counts those per host only, and grants a mapping bound to a node no more than
		 * the host's free less those, whatever the node has */
		if (r == 0 && h->node < 0)
			r = read_long(dir, "resv_hugepages", &resv, err);
		h->free = h->free > resv ? h->free - resv : 0;
		if (r == 0 && h->node >= 0) {
			_cleanup_free_ char *host = NULL;
			long host_free = 0;
			if (pool_dir(sysroot, h->page_kb, -1, &host) < 0) {
				r = ql_error_set(err, ENOMEM, "out of memory");
				break;
			}
			r = read_long(host, "free_hugepages", &host_free, err);
			if (r == 0)
				r = read_long(host, "resv_hugepages", &resv, err);
			host_free = host_free > resv ? host_free - resv : 0;
			if (r == 0 && h->free > host_free)
				h->free = host_free;
		}
	}
	/* A node's free pages are also the host's: those the VM takes on a node are not free for
	 * its backends that may use any node. */
	for (size_t k = 0; k < p.n && r == 0; k++)
		for (size_t g = 0; g < p.n && p.v[k].node < 0; g++)
			if (p.v[g].node >= 0 && p.v[g].page_kb == p.v[k].page_kb) {
				long taken =
				    p.v[g].needed < p.v[g].free ? p.v[g].needed : p.v[g].free;
				p.v[k].free = p.v[k].free > taken ? p.v[k].free - taken : 0;
			}
	bool missing = false;
	for (size_t k = 0; k < p.n && r == 0; k++) {
		p.v[k].missing = p.v[k].needed > p.v[k].free ? p.v[k].needed - p.v[k].free : 0;
		missing |= p.v[k].missing > 0;
	}
	p.avail_kb = -1;
	if (r == 0 && missing)
		r = hugepages_meminfo_kb(sysroot, "MemAvailable", &p.avail_kb, err);
	if (r < 0) {
		hugepages_plan_done(&p);
		return r;
	}
	*ret = p;
	return 0;
}

static void node_name(char *buf, size_t size, int node)
{
	if (node < 0)
		snprintf(buf, size, "any node");
	else
		snprintf(buf, size, "node %d", node);
}

/* One pool's shortfall, "; " between pools: "2048 kB pages on node 1: 3 needed, 0 free". */
static void print_short(FILE *f, const struct hugepage_need *h, bool *any)
{
	char node[32];
	node_name(node, sizeof(node), h->node);
	fprintf(f, "%s%lu kB pages on %s: %ld needed, %ld free", *any ? "; " : "", h->page_kb, node,
		h->needed, h->free);
	*any = true;
}

int hugepages_plan_refusal(const struct hugepages_plan *p, enum ql_hugepages mode, char **ret)
{
	*ret = NULL;
	if (mode == QL_HUGEPAGES_RESERVE && p->avail_kb >= 0 && missing_kb(p) > p->avail_kb)
		return asprintf(ret,
				"not enough hugepages, and reserving the %lld kB missing would "
				"take more than the host's available memory (MemAvailable %lld "
				"kB), so none is reserved",
				missing_kb(p), p->avail_kb) < 0
			   ? (*ret = NULL, -ENOMEM)
			   : 0;
	if (mode != QL_HUGEPAGES_CHECK)
		return 0;
	char *msg = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&msg, &len);
	if (!f)
		return -ENOMEM;
	bool any = false;
	fputs("not enough hugepages: ", f);
	for (size_t k = 0; k < p->n; k++)
		if (p->v[k].missing > 0)
			print_short(f, &p->v[k], &any);
	fputs(" (`hugepages: reserve` in the launcher section reserves what is missing)", f);
	if (fclose(f) != 0) {
		free(msg);
		return -ENOMEM;
	}
	if (any)
		*ret = msg;
	else
		free(msg);
	return 0;
}

char *hugepages_plan_describe(const struct hugepages_plan *p, enum ql_hugepages mode)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	for (size_t k = 0; k < p->n; k++) {
		const struct hugepage_need *h = &p->v[k];
		char node[32];
		node_name(node, sizeof(node), h->node);
		fprintf(f, "hugepages: %lu kB pages on %s: %ld needed, %ld free\n", h->page_kb,
			node, h->needed, h->free);
		if (h->missing && mode == QL_HUGEPAGES_RESERVE)
			fprintf(
			    f,
			    "would write %s: 1 (compaction first, nothing to give back)\n"
			    "would write %s: %ld -> %ld (reserving %ld, given back at the end)\n",
			    h->compact_path, h->nr_path, h->nr, h->nr + h->missing, h->missing);
	}
	if (mode == QL_HUGEPAGES_RESERVE && p->avail_kb >= 0 && missing_kb(p) > p->avail_kb)
		fprintf(f,
			"hugepages: reserving %lld kB is more than the host's available %lld kB: "
			"the start would be refused\n",
			missing_kb(p), p->avail_kb);
	if (mode == QL_HUGEPAGES_CHECK && missing_kb(p) > 0)
		fputs("hugepages: pages are missing: the start would be refused (`hugepages: "
		      "reserve` reserves them)\n",
		      f);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* Asks the kernel to defragment before a large allocation (an action, not a setting: nothing to
 * give back). Best effort. */
static void compact(const struct hugepage_need *h, const struct ql_logger *log)
{
	ql_log(log, QL_LOG_DEBUG, "write %s: 1", h->compact_path);
	_cleanup_fclose_ FILE *f = fopen(h->compact_path, "we");
	if (!f || fputs("1", f) < 0)
		ql_log(log, QL_LOG_INFO, "no compaction before reserving hugepages (`%s`)",
		       h->compact_path);
}

int hugepages_apply(struct hugepages_plan *p, enum ql_hugepages mode, struct journal *j,
		    const struct ql_logger *log, struct ql_error *err)
{
	if (mode == QL_HUGEPAGES_IGNORE)
		return 0;
	/* what --check and --dry-run foresee; with CHECK that is all there is to it */
	_cleanup_free_ char *refusal = NULL;
	if (hugepages_plan_refusal(p, mode, &refusal) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	if (refusal)
		return ql_error_set(err, ENOMEM, "%s", refusal);
	if (mode != QL_HUGEPAGES_RESERVE)
		return 0;
	char *msg = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&msg, &len);
	if (!f)
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_free_ char *msg_owner = NULL;
	bool short_any = false;
	for (size_t k = 0; k < p->n; k++) {
		struct hugepage_need *h = &p->v[k];
		char node[32];
		node_name(node, sizeof(node), h->node);
		long not_reserved = h->missing;
		if (h->missing) {
			compact(h, log);
			long got = 0;
			struct ql_error e = {0};
			int r = journal_add(j, h->nr_path, h->missing, &got, &e);
			if (r < 0)
				ql_log(log, QL_LOG_WARNING, "reserving hugepages: %s", e.msg);
			ql_error_clear(&e);
			ql_log(log, QL_LOG_INFO,
			       "hugepages: reserved %ld of %ld %lu kB pages on %s", got, h->missing,
			       h->page_kb, node);
			not_reserved = h->missing - got;
		}
		if (not_reserved <= 0)
			continue;
		print_short(f, h, &short_any);
		fprintf(f, ", %ld could not be reserved", not_reserved);
	}
	if (fclose(f) != 0) {
		free(msg);
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	msg_owner = msg;
	if (!short_any)
		return 0;
	/* all or nothing: a partial reservation would only be held by a VM that never runs */
	struct ql_error e = {0};
	if (journal_undo_own(j, &e) < 0)
		ql_log(log, QL_LOG_WARNING, "giving back hugepages: %s", e.msg);
	ql_error_clear(&e);
	return ql_error_set(err, ENOMEM, "not enough hugepages: %s", msg);
}
