/* --status for memory (see hugepages_status.h). numa_maps marks a hugetlb mapping `huge` and counts
 * its pages per node (N<node>=<pages>, kernelpagesize_kB=<size>; fs/proc/task_mmu.c); without
 * CONFIG_NUMA, smaps' Shared_Hugetlb + Private_Hugetlb (kB) over KernelPageSize give the count. */
#include "hugepages_status.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "journal.h"
#include "json_cleanup.h"
#include "macro.h"

void hugepages_use_free(struct hugepages_use *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n_resv; i++)
		free(u->resv[i].path);
	free(u->resv);
	free(u->used);
	free(u->used_note);
	free(u->resv_note);
	free(u);
}

static int count_add(struct hugepages_use *u, unsigned long page_kb, int node, long pages)
{
	for (size_t i = 0; i < u->n_used; i++)
		if (u->used[i].page_kb == page_kb && u->used[i].node == node) {
			u->used[i].pages += pages;
			return 0;
		}
	struct hugepages_count *v = reallocarray(u->used, u->n_used + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	u->used = v;
	v[u->n_used++] = (struct hugepages_count){page_kb, node, pages};
	return 0;
}

/* One numa_maps line: "ADDR POLICY [file=PATH] huge ... N0=3 N1=5 kernelpagesize_kB=2048". The
 * path's spaces and '=' are escaped by the kernel, so the tokens split cleanly. */
static int numa_maps_line(struct hugepages_use *u, char *line)
{
	unsigned long kb = 0;
	bool huge = false;
	struct {
		int node;
		long pages;
	} nodes[64];
	size_t n = 0;
	for (char *save = NULL, *t = strtok_r(line, " \n", &save); t;
	     t = strtok_r(NULL, " \n", &save)) {
		char *end;
		if (streq(t, "huge"))
			huge = true;
		else if (strncmp(t, "kernelpagesize_kB=", 18) == 0)
			kb = strtoul(t + 18, NULL, 10);
		else if (t[0] == 'N' && t[1] >= '0' && t[1] <= '9' && n < ELEMENTSOF(nodes)) {
			long node = strtol(t + 1, &end, 10);
			if (*end == '=' && node < 65536) {
				nodes[n].node = (int)node;
				nodes[n++].pages = strtol(end + 1, NULL, 10);
			}
		}
	}
	if (!huge || !kb)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (nodes[i].pages > 0 && count_add(u, kb, nodes[i].node, nodes[i].pages) < 0)
			return -ENOMEM;
	return 0;
}

int hugepages_use_read_smaps(struct hugepages_use *u, FILE *f)
{
	char line[512];
	unsigned long kb = 0;
	long held = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long v;
		if (sscanf(line, "KernelPageSize: %lu kB", &v) == 1)
			kb = v;
		else if (sscanf(line, "Shared_Hugetlb: %lu kB", &v) == 1 ||
			 sscanf(line, "Private_Hugetlb: %lu kB", &v) == 1)
			held += (long)v;
		else if (strncmp(line, "VmFlags:", 8) == 0) { /* a mapping's last line */
			if (held > 0 && kb > 4 && count_add(u, kb, -1, held / (long)kb) < 0)
				return -ENOMEM;
			kb = 0;
			held = 0;
		}
	}
	return 0;
}

static int read_use(struct hugepages_use *u, pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/numa_maps", (int)pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	bool numa = f != NULL;
	if (!f && errno == ENOENT) { /* no CONFIG_NUMA (or qemu ended: smaps says the same) */
		snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
		f = fopen(path, "re");
	}
	/* another user's qemu (ptrace access): not ours to see, and every VM would say so */
	if (!f && (errno == EACCES || errno == EPERM))
		return 0;
	if (!f) {
		if (asprintf(&u->used_note, "hugepages in use unknown: %s: %s", path,
			     strerror(errno)) < 0) {
			u->used_note = NULL;
			return -ENOMEM;
		}
		return 0;
	}
	return numa ? hugepages_use_read_numa_maps(u, f) : hugepages_use_read_smaps(u, f);
}

int hugepages_use_read_numa_maps(struct hugepages_use *u, FILE *f)
{
	/* a line is short but its file name may be long: read whole lines */
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0)
		if (numa_maps_line(u, line) < 0)
			return -ENOMEM;
	return 0;
}

/* ".../hugepages-2048kB/nr_hugepages" with "/nodeN/" before it: the pool a record raised. */
bool hugepages_pool_of_path(const char *path, unsigned long *ret_kb, int *ret_node)
{
	const char *h = strstr(path, "/hugepages-");
	char *end;
	if (!h)
		return false;
	unsigned long kb = strtoul(h + 11, &end, 10);
	if (!kb || !streq(end, "kB/nr_hugepages"))
		return false;
	int node = -1;
	for (const char *p = strstr(path, "/node"); p && p < h; p = strstr(p + 1, "/node")) {
		long v = strtol(p + 5, &end, 10);
		if (end > p + 5 && *end == '/' && v >= 0 && v < 65536)
			node = (int)v;
	}
	*ret_kb = kb;
	*ret_node = node;
	return true;
}

/* The launcher of a qemu: its parent (PPid of /proc/PID/status); 0 when unknown. */
static pid_t parent_of(pid_t pid)
{
	char path[64], line[128];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	int ppid = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "PPid: %d", &ppid) == 1)
			break;
	return (pid_t)ppid;
}

static int read_reservations(struct hugepages_use *u, const char *journal_dir, const char *name,
			     pid_t qemu_pid)
{
	struct journal_entry *v = NULL;
	size_t n = 0;
	struct ql_error e = {0};
	if (journal_list(journal_dir, &v, &n, &e) < 0) {
		int r = asprintf(&u->resv_note,
				 "hugepages reserved unknown: the journal is not readable (%s)",
				 e.msg ? e.msg : "?");
		ql_error_clear(&e);
		if (r < 0)
			u->resv_note = NULL;
		return r < 0 ? -ENOMEM : 0;
	}
	pid_t launcher = qemu_pid ? parent_of(qemu_pid) : 0;
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		unsigned long kb;
		int node;
		/* this VM's records: those of its launcher, or of one that died (its qemu may live
		 * on, orphaned, with both killed) */
		if (v[i].kind != JOURNAL_ADD || !streq(v[i].owner, name) ||
		    (v[i].alive && v[i].pid != launcher) ||
		    !hugepages_pool_of_path(v[i].path, &kb, &node))
			continue;
		struct hugepages_reservation *nv =
		    reallocarray(u->resv, u->n_resv + 1, sizeof(*nv));
		if (!nv) {
			ret = -ENOMEM;
			break;
		}
		u->resv = nv;
		nv[u->n_resv] = (struct hugepages_reservation){
		    .page_kb = kb,
		    .node = node,
		    .pages = v[i].delta,
		    .path = ql_escape(v[i].path),
		    .launcher = v[i].pid,
		    .alive = v[i].alive,
		};
		if (!nv[u->n_resv++].path)
			ret = -ENOMEM;
	}
	journal_entries_free(v, n);
	return ret;
}

/* By page size, then node (the whole host's pool first): the order --status prints. */
static int cmp_count(const void *a, const void *b)
{
	const struct hugepages_count *x = a, *y = b;
	if (x->page_kb != y->page_kb)
		return x->page_kb < y->page_kb ? -1 : 1;
	return (x->node > y->node) - (x->node < y->node);
}

static int cmp_resv(const void *a, const void *b)
{
	const struct hugepages_reservation *x = a, *y = b;
	if (x->page_kb != y->page_kb)
		return x->page_kb < y->page_kb ? -1 : 1;
	return (x->node > y->node) - (x->node < y->node);
}

int hugepages_status_collect(const char *journal_dir, const char *name, pid_t qemu_pid,
			     struct hugepages_use **ret)
{
	*ret = NULL;
	struct hugepages_use *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	int r = qemu_pid ? read_use(u, qemu_pid) : 0;
	if (r == 0)
		r = read_reservations(u, journal_dir, name, qemu_pid);
	/* an unreadable journal only matters next to pages in use */
	if (r == 0 && u->resv_note && !u->n_used) {
		free(u->resv_note);
		u->resv_note = NULL;
	}
	if (r < 0 || (!u->n_used && !u->n_resv && !u->used_note && !u->resv_note)) {
		hugepages_use_free(u);
		return r;
	}
	if (u->n_used > 1)
		qsort(u->used, u->n_used, sizeof(*u->used), cmp_count);
	if (u->n_resv > 1)
		qsort(u->resv, u->n_resv, sizeof(*u->resv), cmp_resv);
	*ret = u;
	return 0;
}

/* --- output ------------------------------------------------------------------------------- */

static bool has_size(const struct hugepages_use *u, size_t before, unsigned long kb, bool resv)
{
	for (size_t i = 0; i < before; i++)
		if ((resv ? u->resv[i].page_kb : u->used[i].page_kb) == kb)
			return true;
	return false;
}

/* "16 in use by qemu (node 0: 8, node 1: 8)" */
static void format_used(const struct hugepages_use *u, unsigned long kb, FILE *f)
{
	long total = 0;
	size_t nodes = 0;
	for (size_t i = 0; i < u->n_used; i++)
		if (u->used[i].page_kb == kb) {
			total += u->used[i].pages;
			nodes += u->used[i].node >= 0;
		}
	fprintf(f, "%ld in use by qemu", total);
	if (!nodes)
		return;
	const char *sep = " (";
	for (size_t i = 0; i < u->n_used; i++)
		if (u->used[i].page_kb == kb && u->used[i].node >= 0) {
			fprintf(f, "%snode %d: %ld", sep, u->used[i].node, u->used[i].pages);
			sep = ", ";
		}
	fputc(')', f);
}

/* "; 16 reserved by its launcher (node 0: 8, node 1: 8)", and a dead launcher's separately */
static void format_reserved(const struct hugepages_use *u, unsigned long kb, bool alive, FILE *f)
{
	long total = 0;
	size_t nodes = 0;
	pid_t who = 0;
	for (size_t i = 0; i < u->n_resv; i++)
		if (u->resv[i].page_kb == kb && u->resv[i].alive == alive) {
			total += u->resv[i].pages;
			nodes += u->resv[i].node >= 0;
			who = u->resv[i].launcher;
		}
	if (!total && !alive)
		return;
	if (alive)
		fprintf(f, "; %ld reserved by its launcher", total);
	else
		fprintf(f,
			"; %ld still reserved by a killed launcher (pid %d): the next start gives "
			"them back",
			total, (int)who);
	if (!nodes)
		return;
	const char *sep = " (";
	for (size_t i = 0; i < u->n_resv; i++)
		if (u->resv[i].page_kb == kb && u->resv[i].alive == alive && u->resv[i].node >= 0) {
			fprintf(f, "%snode %d: %ld", sep, u->resv[i].node, u->resv[i].pages);
			sep = ", ";
		}
	fputc(')', f);
}

static void format_size(const struct hugepages_use *u, unsigned long kb, FILE *f)
{
	fprintf(f, "  hugepages %lu kB: ", kb);
	format_used(u, kb, f);
	if (u->resv_note)
		fprintf(f, "; reservation unknown");
	else
		format_reserved(u, kb, true, f);
	format_reserved(u, kb, false, f);
	fputc('\n', f);
}

void hugepages_status_format(const struct hugepages_use *u, FILE *f)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n_used; i++)
		if (!has_size(u, i, u->used[i].page_kb, false))
			format_size(u, u->used[i].page_kb, f);
	for (size_t i = 0; i < u->n_resv; i++)
		if (!has_size(u, i, u->resv[i].page_kb, true) &&
		    !has_size(u, u->n_used, u->resv[i].page_kb, false))
			format_size(u, u->resv[i].page_kb, f);
	if (u->used_note)
		fprintf(f, "  note: %s\n", u->used_note);
	if (u->resv_note)
		fprintf(f, "  note: %s\n", u->resv_note);
}

static json_object *pool_json(unsigned long kb, int node, long pages)
{
	json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	if (!json_put(o, "page_kb", json_object_new_int64((int64_t)kb), true) ||
	    !json_put(o, "node", node >= 0 ? json_object_new_int(node) : NULL, node >= 0) ||
	    !json_put(o, "pages", json_object_new_int64(pages), true)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* A JSON string must be UTF-8: the texts here are ASCII but for a path's bytes (already escaped
 * below 0x20), which become '?'. */
static json_object *ascii(const char *s)
{
	_cleanup_free_ char *c = strdup(s);
	if (!c)
		return NULL;
	for (char *p = c; *p; p++)
		if ((unsigned char)*p >= 0x7f)
			*p = '?';
	return json_object_new_string(c);
}

json_object *hugepages_status_json(const struct hugepages_use *u)
{
	json_object *o = json_object_new_object();
	bool ok = o && json_put(o, "in_use", json_object_new_array(), true) &&
		  json_put(o, "reserved", json_object_new_array(), true) &&
		  json_put(o, "notes", json_object_new_array(), true);
	if (!ok) {
		json_object_put(o);
		return NULL;
	}
	json_object *used = json_object_object_get(o, "in_use"),
		    *resv = json_object_object_get(o, "reserved"),
		    *notes = json_object_object_get(o, "notes");
	if (u && u->used_note)
		ok = json_push(notes, ascii(u->used_note));
	if (ok && u && u->resv_note)
		ok = json_push(notes, ascii(u->resv_note));
	for (size_t i = 0; ok && u && i < u->n_used; i++)
		ok = json_push(used,
			       pool_json(u->used[i].page_kb, u->used[i].node, u->used[i].pages));
	for (size_t i = 0; ok && u && i < u->n_resv; i++) {
		const struct hugepages_reservation *r = &u->resv[i];
		json_object *p = pool_json(r->page_kb, r->node, r->pages);
		ok = json_push(resv, p) && json_put(p, "path", ascii(r->path), true) &&
		     json_put(p, "launcher_pid", json_object_new_int(r->launcher), true) &&
		     json_put(p, "launcher_alive", json_object_new_boolean(r->alive), true);
	}
	if (!ok) {
		json_object_put(o);
		return NULL;
	}
	return o;
}
