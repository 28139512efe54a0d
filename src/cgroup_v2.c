/* Isolation backend "cgroup v2": <root>/<prefix>/<vm>/{emulator,vcpuN} as a threaded subtree,
 * with cpuset partitions when they can form. What goes where is planned in cgroup_v2_plan.c;
 * this file reads the kernel's state, applies the plan and reads every placement back. The
 * kernel's rules it depends on, as measured: doc/cgroup-v2.md. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cgroup_inspect.h"
#include "cgroup_v2_plan.h"
#include "cgroupfs.h"
#include "isolation_backend.h"
#include "macro.h"
#include "names.h"
#include "proc.h"
#include "readfile.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define EMULATOR_SET "emulator"
/* Bound on the VMs we are willing to look at under the prefix. */
#define MAX_OTHER_VMS 4096

static const struct cgroup_layout cgroup_v2_layout = {
    .backend = "cgroup v2",
    .vcpu_prefix = "vcpu",
    .ids_file = "cgroup.threads",
    .procs_file = "cgroup.procs",
};

struct cgroup_v2 {
	const struct isolation_config *cfg;
	char *root;    /* absolute; the cgroup2 mount or a delegated directory */
	int root_fd;   /* O_PATH; every path below is relative to it */
	char *vm_rel;  /* <prefix>/<vm> */
	bool top_root; /* root is the hierarchy's root cgroup (always a partition root) */
	const struct ql_logger *log;

	/* What apply did, for rescan/release. */
	pid_t qemu_pid;
	char *origin;	  /* absolute cgroup dir qemu came from; NULL if unknown */
	pid_t *vcpu_tids; /* once apply placed qemu's threads (never NULL then, with no vCPU too) */
	size_t n_vcpu_tids;
	bool created_vm; /* <prefix>/<vm> is ours: release may empty and remove it */
	ino_t vm_ino;	 /* ... the one this launcher made (a namesake may replace it) */
	bool warned;	 /* the `auto` fallback warning is said once */

	/* From prepare to apply: the sets made, so apply only places threads. */
	bool prepared;
	struct cg2_plan plan;
	bool partitioned;	/* the vCPU sets are isolated partitions */
	size_t prepared_vcpus;	/* the request's vCPUs and whether it named emulator CPUs, */
	bool prepared_emulator; /* for apply's same-plan check */
	int warm_fd;		/* <vm>/cgroup.threads for keep_warm, or -1 */
};

/* A live VM found under the prefix (owns what cg2_other_vm borrows). */
struct other_vm {
	char *name;
	struct cpu_list *vcpu_cpus;
	struct cpu_list *vm_cpus;
	bool partition;
};

struct other_vms {
	struct other_vm *v;
	size_t n;
};

static void other_vms_done(struct other_vms *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->v[i].name);
		cpu_list_free(o->v[i].vcpu_cpus);
		cpu_list_free(o->v[i].vm_cpus);
	}
	free(o->v);
	*o = (struct other_vms){0};
}

static void cgroup_v2_free_state(void *p)
{
	struct cgroup_v2 *s = p;
	if (!s)
		return;
	closep(&s->root_fd);
	closep(&s->warm_fd);
	cg2_plan_done(&s->plan);
	free(s->root);
	free(s->vm_rel);
	free(s->origin);
	free(s->vcpu_tids);
	free(s);
}
static void cgroup_v2_freep(struct cgroup_v2 **s)
{
	cgroup_v2_free_state(*s);
}

/* What prepare made is done with (placed, released, or prepared anew). */
static void forget_prepared(struct cgroup_v2 *s)
{
	closep(&s->warm_fd);
	cg2_plan_done(&s->plan);
	s->prepared = false;
}

/* <vm_rel>/vcpu<cpu>. Allocated: VM names may be long, and a fixed buffer once truncated
 * "qemu/<long name>/vcpu10" into ".../vcpu1" or into the VM directory itself. */
static char *vcpu_set_rel(const char *vm_rel, unsigned cpu)
{
	char *s = NULL;
	if (asprintf(&s, "%s/vcpu%u", vm_rel, cpu) < 0)
		return NULL;
	return s;
}

/* ---- small file helpers relative to root_fd (dir NULL: the root itself) ---- */

static char *rel_of(const char *dir, const char *file)
{
	return dir ? path_join(dir, file) : strdup(file);
}

static int cg_write(struct cgroup_v2 *s, const char *dir, const char *file, const char *value,
		    struct ql_error *err)
{
	_cleanup_free_ char *rel = rel_of(dir, file);
	if (!rel)
		return ql_error_set(err, ENOMEM, "out of memory");
	return cgroupfs_write(s->root_fd, rel, value, s->log, s->root, err);
}

static int cg_read(struct cgroup_v2 *s, const char *dir, const char *file, char **ret,
		   struct ql_error *err)
{
	_cleanup_free_ char *rel = rel_of(dir, file);
	if (!rel)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = cgroupfs_read(s->root_fd, rel, ret, err);
	if (r < 0)
		ql_error_prefix(err, "%s: ", s->root);
	return r;
}

static int cg_read_cpus(struct cgroup_v2 *s, const char *dir, const char *file,
			struct cpu_list **ret, struct ql_error *err)
{
	_cleanup_free_ char *rel = rel_of(dir, file);
	if (!rel)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = cgroupfs_read_cpus(s->root_fd, rel, ret, err);
	if (r < 0)
		ql_error_prefix(err, "%s: ", s->root);
	return r;
}

static int write_cpus(struct cgroup_v2 *s, const char *rel, const struct cpu_list *cpus,
		      struct ql_error *err)
{
	_cleanup_free_ char *text = cpu_list_format(cpus);
	if (!text)
		return ql_error_set(err, ENOMEM, "out of memory");
	return cg_write(s, rel, "cpuset.cpus", text, err);
}

static int write_tid(struct cgroup_v2 *s, const char *rel, pid_t tid, struct ql_error *err)
{
	char v[16];
	snprintf(v, sizeof(v), "%d", (int)tid);
	return cg_write(s, rel, "cgroup.threads", v, err);
}

static bool cg_exists(struct cgroup_v2 *s, const char *rel)
{
	return faccessat(s->root_fd, rel, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* "populated 1" in cgroup.events: some task lives in the subtree. */
static bool cg_populated(struct cgroup_v2 *s, const char *dir)
{
	_cleanup_free_ char *text = NULL;
	if (cg_read(s, dir, "cgroup.events", &text, NULL) < 0)
		return false;
	const char *p = strstr(text, "populated ");
	return p && p[10] == '1';
}

/* The partition file; ret_text gets the whole text for messages. The kernel may add
 * " invalid (reason)" after the type, and older 6.1 kernels no reason at all. */
static enum cg2_partition cg_partition(struct cgroup_v2 *s, const char *dir, char **ret_text)
{
	_cleanup_free_ char *text = NULL;
	if (cg_read(s, dir, "cpuset.cpus.partition", &text, NULL) < 0)
		return CG2_PART_NONE;
	enum cg2_partition st = cg2_partition_parse(text);
	if (ret_text)
		*ret_text = TAKE_PTR(text);
	return st;
}

static bool word_in_list(const char *list, const char *word)
{
	size_t wl = strlen(word);
	for (const char *p = list; (p = strstr(p, word)); p += wl)
		if ((p == list || p[-1] == ' ' || p[-1] == '\n') &&
		    (p[wl] == '\0' || p[wl] == ' ' || p[wl] == '\n'))
			return true;
	return false;
}

/* Child directories (cgroups) of rel, at most MAX_OTHER_VMS. */
static int cg_list_children(struct cgroup_v2 *s, const char *rel, char ***ret, struct ql_error *err)
{
	int fd = openat(s->root_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return ql_error_set_errno(err, errno, "opening `%s/%s`", s->root, rel);
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return ql_error_set_errno(err, e, "reading `%s/%s`", s->root, rel);
	}
	_cleanup_strv_free_ char **names = calloc(1, sizeof(char *));
	if (!names)
		return ql_error_set(err, ENOMEM, "out of memory");
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < MAX_OTHER_VMS) {
		if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		char **nn = reallocarray(names, n + 2, sizeof(char *));
		if (!nn)
			return ql_error_set(err, ENOMEM, "out of memory");
		names = nn;
		names[n + 1] = NULL;
		if (!(names[n] = strdup(de->d_name)))
			return ql_error_set(err, ENOMEM, "out of memory");
		n++;
	}
	*ret = TAKE_PTR(names);
	return 0;
}

/* ---- probe, lock, usable CPUs, describe ---- */

/* A delegated directory that holds processes cannot have domain children with cpuset (it would
 * become an implicit threaded root). */
static int check_delegated_root(struct cgroup_v2 *s, struct ql_error *err)
{
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	if (cgroupfs_read_pids(s->root_fd, "cgroup.procs", &pids, &n, NULL) == 0 && n > 0)
		return ql_error_set(err, ENOTSUP,
				    "delegated cgroup `%s` holds %zu process(es); move them into a "
				    "child cgroup first",
				    s->root, n);
	return 0;
}

static int cgroup_v2_probe(const struct isolation_config *cfg, void **ret_state,
			   struct ql_error *err)
{
	const char *root = cfg->cgroup2_root;
	struct statfs sfs;
	if (root[0] != '/')
		return ql_error_set(err, EINVAL, "cgroup2 root `%s` is not an absolute path", root);
	if (statfs(root, &sfs) < 0)
		return ql_error_set_errno(err, errno == ENOENT ? ENOENT : ENOTSUP,
					  "cannot access `%s`", root);
	if (sfs.f_type != CGROUP2_SUPER_MAGIC)
		return ql_error_set(err, ENOTSUP, "`%s` is not a cgroup2 filesystem", root);
	if (!cgroup_prefix_is_valid(cfg->prefix))
		return ql_error_set(err, EINVAL, "invalid prefix `%s`", cfg->prefix);
	if (!cfg->vm_name || !vm_name_is_valid(cfg->vm_name) ||
	    cgroup_name_is_reserved(cfg->vm_name))
		return ql_error_set(err, EINVAL, "VM name `%s` cannot name a cgroup",
				    cfg->vm_name ? cfg->vm_name : "");

	_cleanup_(cgroup_v2_freep) struct cgroup_v2 *s = calloc(1, sizeof(*s));
	if (!s)
		return ql_error_set(err, ENOMEM, "out of memory");
	s->root_fd = s->warm_fd = -1;
	s->cfg = cfg;
	s->log = cfg->log;
	if (!(s->root = strdup(root)) || !(s->vm_rel = path_join(cfg->prefix, cfg->vm_name)))
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = cgroupfs_open_dir(root, &s->root_fd, err);
	if (r < 0)
		return ql_error_set(err, r == -ENOENT ? ENOENT : ENOTSUP, "cannot open `%s`: %s",
				    root, strerror(-r));
	_cleanup_free_ char *ctrl = NULL;
	if (cg_read(s, NULL, "cgroup.controllers", &ctrl, err) < 0)
		return ql_error_set(err, ENOTSUP, "cannot read `%s/cgroup.controllers`", root);
	if (!word_in_list(ctrl, "cpuset"))
		return ql_error_set(
		    err, ENOTSUP,
		    "the cpuset controller is not available in `%s` "
		    "(cgroup.controllers: \"%s\"; on hybrid hosts it is bound to v1)",
		    root, ctrl);
	/* The hierarchy root has no cgroup.type. */
	s->top_root = !cg_exists(s, "cgroup.type");
	if (!s->top_root && (r = check_delegated_root(s, err)) < 0)
		return r;
	*ret_state = TAKE_PTR(s);
	return 0;
}

static int cgroup_v2_lock_dir(void *state, char **ret, struct ql_error *err)
{
	struct cgroup_v2 *s = state;
	if (!(*ret = strdup(s->root)))
		return ql_error_set(err, ENOMEM, "out of memory");
	return 0;
}

/* The root's effective CPUs plus all CPUs our partitioned prefix holds: a partition removes its
 * CPUs from the root's effective set, yet they are ours to hand out (or to report as taken by a
 * named VM). */
static int read_usable(struct cgroup_v2 *s, struct cpu_list **ret, struct ql_error *err)
{
	_cleanup_cpu_list_ struct cpu_list *u = NULL, *p = NULL;
	int r = cg_read_cpus(s, NULL, "cpuset.cpus.effective", &u, err);
	if (r < 0)
		return r;
	const char *prefix = s->cfg->prefix;
	if (cg_exists(s, prefix) && cg_partition(s, prefix, NULL) == CG2_PART_ROOT &&
	    cg_read_cpus(s, prefix, "cpuset.cpus", &p, NULL) == 0 && cpu_list_merge(u, p) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	*ret = TAKE_PTR(u);
	return 0;
}

static int cgroup_v2_usable_cpus(void *state, struct cpu_list **ret, struct ql_error *err)
{
	return read_usable(state, ret, err);
}

static const char *mode_name(enum ql_isolate m)
{
	return m == QL_ISOLATE_TRUE ? "required" : m == QL_ISOLATE_FALSE ? "off" : "auto";
}

static char *cgroup_v2_describe(void *state, const struct isolation_plan *req)
{
	struct cgroup_v2 *s = state;
	bool part = s->cfg->mode != QL_ISOLATE_FALSE;
	_cleanup_cpu_list_ struct cpu_list *usable = NULL;
	struct cg2_plan plan = {0};
	if (read_usable(s, &usable, NULL) == 0) {
		struct cg2_host h = {.root = s->root,
				     .prefix = s->cfg->prefix,
				     .vm = s->cfg->vm_name,
				     .usable = usable,
				     .top_root = true};
		/* the emulator CPUs isolate_cpus: true would take, else those of no partition */
		if (s->cfg->mode != QL_ISOLATE_TRUE ||
		    cg2_plan_build(&h, req, QL_ISOLATE_TRUE, &plan, NULL) < 0)
			(void)cg2_plan_build(&h, req, QL_ISOLATE_FALSE, &plan, NULL);
	}
	_cleanup_free_ char *emu = cpu_list_show(plan.emulator),
			    *usable_text = cpu_list_show(usable);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		cg2_plan_done(&plan);
		return NULL;
	}
	const char *R = s->root, *P = s->cfg->prefix, *V = s->cfg->vm_name;
	fprintf(f, "cgroup v2 at %s (usable CPUs %s, partitions: %s)\n", R, usable_text,
		mode_name(s->cfg->mode));
	fprintf(f, "  %s/%s: prefix (domain, +cpuset)\n", R, P);
	fprintf(f, "  %s/%s/%s: qemu process%s\n", R, P, V,
		part && !plan.emulator_only ? " (partition root when possible)" : "");
	fprintf(f, "  %s/%s/%s/%s: threaded, cpus %s, %s\n", R, P, V, EMULATOR_SET, emu,
		plan.emulator_only ? "all threads (no vCPU is pinned)" : "all non-vCPU threads");
	for (int c = plan.vcpus ? cpu_list_next(plan.vcpus, -1) : -1; c >= 0;
	     c = cpu_list_next(plan.vcpus, c)) {
		fprintf(f, "  %s/%s/%s/vcpu%d: threaded, cpus %d%s:", R, P, V, c, c,
			part ? " (isolated partition when possible)" : "");
		for (size_t i = 0; i < req->n_vcpus; i++)
			if ((int)req->vcpus[i].host_cpu == c && req->vcpus[i].cpu_index >= 0)
				fprintf(f, " vCPU %d", req->vcpus[i].cpu_index);
		fputc('\n', f);
	}
	cg2_plan_done(&plan);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- removal (release and reclaim share it) ---- */

/* Sets a partition back to member so its CPUs return to the parent before the directory goes. */
static int reset_partition(struct cgroup_v2 *s, const char *dir, struct ql_error *err)
{
	enum cg2_partition st = cg_partition(s, dir, NULL);
	if (st == CG2_PART_NONE || st == CG2_PART_MEMBER)
		return 0;
	return cg_write(s, dir, "cpuset.cpus.partition", "member", err);
}

/* Removes <prefix>/<name> and its children; the caller made sure no task is left (or moved
 * them). Best effort over all children; returns the first error. */
static int remove_vm_tree(struct cgroup_v2 *s, const char *name, struct ql_error *err)
{
	_cleanup_free_ char *vm_rel = path_join(s->cfg->prefix, name);
	if (!vm_rel)
		return ql_error_set(err, ENOMEM, "out of memory");
	if (!cg_exists(s, vm_rel))
		return 0;
	_cleanup_strv_free_ char **kids = NULL;
	int ret = cg_list_children(s, vm_rel, &kids, err);
	if (ret < 0)
		return ret;
	struct ql_error e = {0};
	/* Isolated children first: a parent's partition cannot be reset under them. */
	for (int pass = 0; pass < 2; pass++)
		for (char **k = kids; *k; k++) {
			_cleanup_free_ char *rel = path_join(vm_rel, *k);
			if (!rel)
				return ql_error_set(err, ENOMEM, "out of memory");
			int r = pass == 0 ? reset_partition(s, rel, &e)
					  : cgroupfs_rmdir(s->root_fd, rel, s->log, s->root, &e);
			ql_error_keep_first(r, &e, &ret, err);
		}
	ql_error_keep_first(reset_partition(s, vm_rel, &e), &e, &ret, err);
	ql_error_keep_first(cgroupfs_rmdir(s->root_fd, vm_rel, s->log, s->root, &e), &e, &ret, err);
	return ret;
}

/* After a VM left: remove the prefix when no VM remains, else shrink a partitioned prefix to
 * the remaining VMs plus one CPU it keeps for itself, so the freed CPUs return to the host. */
static int tidy_prefix(struct cgroup_v2 *s, struct ql_error *err)
{
	const char *prefix = s->cfg->prefix;
	int subdirs = cgroupfs_subdirs(s->root_fd, prefix);
	if (subdirs < 0)
		return 0;
	/* the last VM's end need not list the prefix to find it empty */
	_cleanup_strv_free_ char **kids = NULL;
	int r = subdirs == 0 ? 0 : cg_list_children(s, prefix, &kids, err);
	if (r < 0)
		return r;
	if (!kids || !kids[0]) {
		r = reset_partition(s, prefix, err);
		return r < 0 ? r : cgroupfs_rmdir(s->root_fd, prefix, s->log, s->root, err);
	}
	if (cg_partition(s, prefix, NULL) != CG2_PART_ROOT)
		return 0;
	_cleanup_cpu_list_ struct cpu_list *cur = NULL, *shrunk = NULL;
	r = cg_read_cpus(s, prefix, "cpuset.cpus", &cur, err);
	if (r < 0)
		return r;
	size_t n = strv_length(kids);
	_cleanup_free_ struct cpu_list **vm_cpus = calloc(n, sizeof(*vm_cpus));
	if (!vm_cpus)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *rel = path_join(prefix, kids[i]);
		if (rel)
			(void)cg_read_cpus(s, rel, "cpuset.cpus", &vm_cpus[i], NULL);
	}
	r = cg2_plan_shrunk_prefix(cur, (const struct cpu_list *const *)vm_cpus, n, &shrunk);
	for (size_t i = 0; i < n; i++)
		cpu_list_free(vm_cpus[i]);
	if (r < 0)
		return ql_error_set(err, -r, "out of memory");
	return shrunk ? write_cpus(s, prefix, shrunk, err) : 0;
}

/* Absolute directory of the cgroup qemu is in now (from /proc/PID/cgroup "0::/path"), mapped
 * through the cgroup2 mount that holds our root. NULL when it cannot be determined. */
static char *process_cgroup_dir(struct cgroup_v2 *s, pid_t pid)
{
	char p[32];
	snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)pid);
	_cleanup_free_ char *cg = NULL;
	{
		_cleanup_fclose_ FILE *f = fopen(p, "re");
		if (!f)
			return NULL;
		char line[PATH_MAX + 16];
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "0::", 3) == 0) {
				line[strcspn(line, "\n")] = '\0';
				cg = strdup(line + 3);
				break;
			}
	}
	if (!cg || cg[0] != '/')
		return NULL;
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return NULL;
	char *best = NULL;
	size_t best_len = 0;
	char mi[4096];
	while (fgets(mi, sizeof(mi), f)) {
		char mroot[PATH_MAX], mpoint[PATH_MAX];
		if (!strstr(mi, " - cgroup2 ") ||
		    sscanf(mi, "%*s %*s %*s %4095s %4095s", mroot, mpoint) != 2)
			continue;
		size_t ml = strlen(mpoint), rl = strlen(mroot);
		/* Our root must lie in this mount; prefer the deepest such mount. */
		if (strncmp(s->root, mpoint, ml) != 0 ||
		    (s->root[ml] != '/' && s->root[ml] != '\0') || (best && ml < best_len))
			continue;
		const char *rest;
		if (streq(mroot, "/"))
			rest = cg;
		else if (strncmp(cg, mroot, rl) == 0 && (cg[rl] == '/' || cg[rl] == '\0'))
			rest = cg + rl;
		else
			continue;
		char *cand = NULL;
		if (asprintf(&cand, "%s%s", streq(mpoint, "/") ? "" : mpoint,
			     streq(rest, "/") ? "" : rest) < 0)
			continue;
		free(best);
		best = cand;
		best_len = ml;
	}
	if (best && !*best) {
		free(best);
		best = strdup("/");
	}
	return best;
}

/* Moves every process of our VM cgroup back where qemu came from (or to the root), so the
 * directories can go. Processes listed there are ours by construction. */
static int move_processes_out(struct cgroup_v2 *s, struct ql_error *err)
{
	_cleanup_free_ char *procs = path_join(s->vm_rel, "cgroup.procs");
	if (!procs)
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	if (cgroupfs_read_pids(s->root_fd, procs, &pids, &n, NULL) < 0 || n == 0)
		return 0;
	_cleanup_close_ int origin_fd = -1;
	if (s->origin && cgroupfs_open_dir(s->origin, &origin_fd, NULL) < 0)
		origin_fd = -1;
	int ret = 0;
	for (size_t i = 0; i < n; i++) {
		char v[16];
		snprintf(v, sizeof(v), "%d", (int)pids[i]);
		struct ql_error e = {0};
		int r = -ENOENT;
		if (origin_fd >= 0)
			r = cgroupfs_write(origin_fd, "cgroup.procs", v, s->log, s->origin, &e);
		ql_error_clear(&e);
		if (r < 0)
			r = cgroupfs_write(s->root_fd, "cgroup.procs", v, s->log, s->root, &e);
		if (r == -ESRCH)
			r = 0;
		if (r < 0)
			ql_error_prefix(&e, "moving qemu out of its cgroup: ");
		ql_error_keep_first(r, &e, &ret, err);
	}
	return ret;
}

static int cgroup_v2_release(void *state, struct ql_error *err)
{
	struct cgroup_v2 *s = state;
	int ret = 0;
	struct ql_error e = {0};
	forget_prepared(s);
	/* Only the tree this launcher made: a namesake is another launcher's, also one made
	 * since this release was held back (the lock, a stop) and the empty tree reclaimed. */
	ino_t ino = cgroupfs_ino(s->root_fd, s->vm_rel);
	if (s->created_vm && ino && (!s->vm_ino || ino == s->vm_ino)) {
		ql_error_keep_first(move_processes_out(s, &e), &e, &ret, err);
		ql_error_keep_first(remove_vm_tree(s, s->cfg->vm_name, &e), &e, &ret, err);
	}
	ql_error_keep_first(tidy_prefix(s, &e), &e, &ret, err);
	if (ret == 0)
		s->created_vm = false;
	return ret;
}

static int scan_prefix(struct cgroup_v2 *s, struct other_vms *o, struct ql_error *err);

/* A run that died: its VM cgroup has no task left, so the scan removes it like any stale one. */
static int cgroup_v2_reclaim(void *state, struct ql_error *err)
{
	struct cgroup_v2 *s = state;
	if (!cg_exists(s, s->cfg->prefix))
		return 0;
	struct other_vms o = {0};
	int r = scan_prefix(s, &o, err);
	other_vms_done(&o);
	if (r == -EBUSY) /* our name is alive: another launcher's VM by now */
		ql_error_clear(err), r = 0;
	return r < 0 ? r : tidy_prefix(s, err);
}

/* ---- prepare and apply: read the kernel's state, plan, create, place, read back ---- */

/* <root> and <prefix> hand cpuset down; the prefix exists. */
static int prepare_prefix(struct cgroup_v2 *s, struct ql_error *err)
{
	const char *prefix = s->cfg->prefix;
	for (int level = 0; level < 2; level++) {
		const char *dir = level == 0 ? NULL : prefix;
		if (level == 1) {
			int r = cgroupfs_mkdir(s->root_fd, prefix, true, s->log, s->root, err);
			if (r < 0)
				return r;
		}
		_cleanup_free_ char *sc = NULL;
		int r = cg_read(s, dir, "cgroup.subtree_control", &sc, err);
		if (r < 0)
			return r;
		if (!word_in_list(sc, "cpuset") &&
		    (r = cg_write(s, dir, "cgroup.subtree_control", "+cpuset", err)) < 0)
			return r;
	}
	return 0;
}

/* One live VM's sets: the union of its vcpuN sets, its own CPUs and partition state. */
static int read_other_vm(struct cgroup_v2 *s, const char *name, struct other_vm *v,
			 struct ql_error *err)
{
	_cleanup_free_ char *rel = path_join(s->cfg->prefix, name);
	_cleanup_strv_free_ char **sets = NULL;
	if (!rel || !(v->name = strdup(name)) || !(v->vcpu_cpus = cpu_list_new(0)))
		return ql_error_set(err, ENOMEM, "out of memory");
	if (cg_read_cpus(s, rel, "cpuset.cpus", &v->vm_cpus, NULL) < 0 &&
	    !(v->vm_cpus = cpu_list_new(0)))
		return ql_error_set(err, ENOMEM, "out of memory");
	v->partition = cg_partition(s, rel, NULL) == CG2_PART_ROOT;
	int r = cg_list_children(s, rel, &sets, err);
	if (r < 0)
		return r;
	for (char **c = sets; *c; c++) {
		if (cgroup_set_cpu(*c, "vcpu") < 0)
			continue;
		_cleanup_free_ char *srel = path_join(rel, *c);
		_cleanup_cpu_list_ struct cpu_list *cc = NULL;
		if (srel && cg_read_cpus(s, srel, "cpuset.cpus", &cc, NULL) == 0 &&
		    cpu_list_merge(v->vcpu_cpus, cc) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

/* Every VM under the prefix: live ones are returned, dead ones (a SIGKILLed launcher leaves
 * sets without tasks) are removed. Our own name alive means it already runs. */
static int scan_prefix(struct cgroup_v2 *s, struct other_vms *o, struct ql_error *err)
{
	_cleanup_strv_free_ char **kids = NULL;
	int r = cg_list_children(s, s->cfg->prefix, &kids, err);
	if (r < 0)
		return r;
	if (!(o->v = calloc(strv_length(kids) + 1, sizeof(*o->v))))
		return ql_error_set(err, ENOMEM, "out of memory");
	for (char **k = kids; *k; k++) {
		_cleanup_free_ char *rel = path_join(s->cfg->prefix, *k);
		if (!rel)
			return ql_error_set(err, ENOMEM, "out of memory");
		if (!cg_populated(s, rel)) {
			ql_log(s->log, QL_LOG_INFO, "reclaiming stale cgroup %s/%s (no tasks left)",
			       s->root, rel);
			r = remove_vm_tree(s, *k, err);
			if (r < 0) {
				ql_error_prefix(err, "reclaiming stale `%s/%s`: ", s->root, rel);
				return r;
			}
			continue;
		}
		if (streq(*k, s->cfg->vm_name))
			return ql_error_set(err, EBUSY, "VM `%s` is already running (%s/%s)",
					    s->cfg->vm_name, s->root, rel);
		r = read_other_vm(s, *k, &o->v[o->n++], err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Everything the plan needs from the kernel, after tidying a prefix no VM uses any more. */
struct host_state {
	struct other_vms others;
	struct cg2_other_vm *views;
	struct cpu_list *usable, *prefix_cpus;
	struct cg2_host h;
};

static void host_state_done(struct host_state *hs)
{
	other_vms_done(&hs->others);
	free(hs->views);
	cpu_list_free(hs->usable);
	cpu_list_free(hs->prefix_cpus);
}

static int read_host(struct cgroup_v2 *s, struct host_state *hs, struct ql_error *err)
{
	const char *prefix = s->cfg->prefix;
	int r = scan_prefix(s, &hs->others, err);
	if (r < 0)
		return r;
	enum cg2_partition pstate = cg_partition(s, prefix, NULL);
	_cleanup_free_ char *pc = NULL;
	(void)cg_read(s, prefix, "cpuset.cpus", &pc, NULL);
	struct cg2_tidy tidy = cg2_plan_tidy(pstate, pc && *pc, hs->others.n);
	if (tidy.reset_partition) {
		if ((r = reset_partition(s, prefix, err)) < 0)
			return r;
		pstate = CG2_PART_MEMBER;
	}
	/* "\n": an empty write might not reach the kernel. */
	if (tidy.clear_cpus && (r = cg_write(s, prefix, "cpuset.cpus", "\n", err)) < 0)
		return r;
	if ((r = read_usable(s, &hs->usable, err)) < 0)
		return r;
	(void)cg_read_cpus(s, prefix, "cpuset.cpus", &hs->prefix_cpus, NULL);
	if (!(hs->views = calloc(hs->others.n + 1, sizeof(*hs->views))))
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < hs->others.n; i++) {
		const struct other_vm *o = &hs->others.v[i];
		hs->views[i] =
		    (struct cg2_other_vm){o->name, o->vcpu_cpus, o->vm_cpus, o->partition};
	}
	hs->h = (struct cg2_host){
	    .root = s->root,
	    .prefix = prefix,
	    .vm = s->cfg->vm_name,
	    .usable = hs->usable,
	    .top_root = s->top_root,
	    .root_partition = s->top_root ? CG2_PART_ROOT : cg_partition(s, NULL, NULL),
	    .prefix_partition = pstate,
	    .prefix_cpus = hs->prefix_cpus,
	    .others = hs->views,
	    .n_others = hs->others.n,
	};
	return 0;
}

/* The VM's child sets: "emulator" then "vcpuN" for each planned CPU (relative to the root). */
static int child_sets(struct cgroup_v2 *s, const struct cg2_plan *p, char ***ret,
		      struct ql_error *err)
{
	size_t n = cpu_list_count(p->vcpus), k = 0;
	_cleanup_strv_free_ char **v = calloc(n + 2, sizeof(char *));
	if (!v || !(v[k++] = path_join(s->vm_rel, EMULATOR_SET)))
		return ql_error_set(err, ENOMEM, "out of memory");
	for (int x = cpu_list_next(p->vcpus, -1); x >= 0; x = cpu_list_next(p->vcpus, x))
		if (!(v[k++] = vcpu_set_rel(s->vm_rel, (unsigned)x)))
			return ql_error_set(err, ENOMEM, "out of memory");
	*ret = TAKE_PTR(v);
	return 0;
}

/* <vm> with qemu in it, then its child sets: mkdir all, then "threaded" on every one (a domain
 * sibling of a threaded cgroup reads "domain invalid"), then +cpuset on the VM. */
static int create_sets(struct cgroup_v2 *s, char **sets, pid_t qemu_pid, struct ql_error *err)
{
	int r = cgroupfs_mkdir(s->root_fd, s->vm_rel, false, s->log, s->root, err);
	if (r < 0)
		return r;
	s->created_vm = true;
	s->vm_ino = cgroupfs_ino(s->root_fd, s->vm_rel);
	s->qemu_pid = qemu_pid;
	char pidtext[16];
	snprintf(pidtext, sizeof(pidtext), "%d", (int)qemu_pid);
	if ((r = cg_write(s, s->vm_rel, "cgroup.procs", pidtext, err)) < 0)
		return r;
	for (char **set = sets; *set; set++)
		if ((r = cgroupfs_mkdir(s->root_fd, *set, false, s->log, s->root, err)) < 0)
			return r;
	for (char **set = sets; *set; set++)
		if ((r = cg_write(s, *set, "cgroup.type", "threaded", err)) < 0)
			return r;
	return cg_write(s, s->vm_rel, "cgroup.subtree_control", "+cpuset", err);
}

/* CPUs top-down; every set's CPUs before any partition, because a later cpus write into a
 * member sibling can invalidate an isolated partition for good. */
static int write_set_cpus(struct cgroup_v2 *s, const struct cg2_plan *p, char **sets,
			  struct ql_error *err)
{
	int r = 0;
	if (p->prefix && (r = write_cpus(s, s->cfg->prefix, p->prefix, err)) < 0)
		return r;
	if ((r = write_cpus(s, s->vm_rel, p->vm, err)) < 0 ||
	    (r = write_cpus(s, sets[0], p->emulator, err)) < 0)
		return r;
	char **set = sets + 1;
	for (int x = cpu_list_next(p->vcpus, -1); x >= 0; x = cpu_list_next(p->vcpus, x), set++) {
		char v[16];
		snprintf(v, sizeof(v), "%d", x);
		if ((r = cg_write(s, *set, "cpuset.cpus", v, err)) < 0)
			return r;
	}
	return 0;
}

/* Writes a partition type and reads it back: the write "succeeds" even when the kernel cannot
 * form the partition. ret_reason gets the kernel's text on -EINVAL. */
static int set_partition(struct cgroup_v2 *s, const char *rel, const char *type, char **ret_reason,
			 struct ql_error *err)
{
	int r = cg_write(s, rel, "cpuset.cpus.partition", type, err);
	if (r == -EINVAL || r == -EOPNOTSUPP) {
		/* Kernels before 6.1 reject `isolated` at the write itself; that is a refusal like
		 * an "invalid" read-back, so `auto` can still fall back to plain placement. */
		if (asprintf(ret_reason, "the kernel refused \"%s\" for %s/%s (%s)", type, s->root,
			     rel, strerror(-r)) < 0)
			*ret_reason = NULL;
		return r;
	}
	if (r < 0)
		return r;
	_cleanup_free_ char *text = NULL;
	enum cg2_partition st = cg_partition(s, rel, &text);
	if (st == (streq(type, "root") ? CG2_PART_ROOT : CG2_PART_ISOLATED))
		return 0;
	ql_log(s->log, QL_LOG_DEBUG, "%s/%s/cpuset.cpus.partition reads \"%s\"", s->root, rel,
	       text ? text : "?");
	if (asprintf(ret_reason, "%s/%s is \"%s\"", s->root, rel, text ? text : "?") < 0)
		*ret_reason = NULL;
	return -EINVAL;
}

/* prefix(root) > vm(root) > vcpuN(isolated). A refusal is an error for isolate_cpus: true;
 * for `auto` the partitions are undone bottom-up and placement goes on without them (said
 * once). Sets *ret_formed. */
static int form_partitions(struct cgroup_v2 *s, const struct cg2_plan *p, char **sets,
			   bool *ret_formed, struct ql_error *err)
{
	*ret_formed = false;
	enum ql_isolate mode = s->cfg->mode;
	if (p->emulator_only) {
		/* not "isolation unavailable": no vCPU is pinned, so there is nothing to isolate */
		ql_log(s->log, QL_LOG_DEBUG,
		       "no vCPU is pinned: all of qemu's threads go to the emulator set, without a "
		       "partition");
		return 0;
	}
	if (!p->partitions) {
		if (mode == QL_ISOLATE_AUTO && !s->warned)
			ql_log(s->log, QL_LOG_WARNING,
			       "CPU isolation unavailable (%s); vCPUs are pinned without keeping "
			       "other tasks off their CPUs",
			       p->why_not ? p->why_not : "partitions cannot form");
		s->warned = true;
		return 0;
	}
	_cleanup_free_ char *reason = NULL;
	int r = 0;
	if (!p->prefix_was_root)
		r = set_partition(s, s->cfg->prefix, "root", &reason, err);
	if (r == 0)
		r = set_partition(s, s->vm_rel, "root", &reason, err);
	for (char **set = sets + 1; r == 0 && *set; set++)
		r = set_partition(s, *set, "isolated", &reason, err);
	if (r == 0) {
		*ret_formed = true;
		return 0;
	}
	if (!reason)
		return r;
	if (mode == QL_ISOLATE_TRUE)
		return ql_error_set(err, EINVAL,
				    "isolate_cpus: true, but the kernel refused the CPU partition: "
				    "%s; give the emulator threads CPUs of their own "
				    "(emulator_pinning) and leave at least one CPU outside the VM",
				    reason);
	ql_error_clear(err);
	for (char **set = sets + 1; *set; set++)
		if ((r = reset_partition(s, *set, err)) < 0)
			return r;
	if ((r = reset_partition(s, s->vm_rel, err)) < 0 ||
	    (!p->prefix_was_root && (r = reset_partition(s, s->cfg->prefix, err)) < 0))
		return r;
	/* The prefix had been narrowed to this VM's CPUs and a spare, for its partition: as a
	 * member it gets its parent's CPUs (the kernel refuses it none while it has sets), or a VM
	 * on other CPUs would not fit in. */
	_cleanup_cpu_list_ struct cpu_list *parent = NULL;
	if (!p->prefix_was_root &&
	    ((r = cg_read_cpus(s, NULL, "cpuset.cpus.effective", &parent, err)) < 0 ||
	     (r = write_cpus(s, s->cfg->prefix, parent, err)) < 0))
		return r;
	if (!s->warned)
		ql_log(
		    s->log, QL_LOG_WARNING,
		    "CPU isolation unavailable (%s); vCPUs are pinned without keeping other tasks "
		    "off their CPUs",
		    reason);
	s->warned = true;
	return 0;
}

static bool is_vcpu_tid(const struct isolation_plan *req, pid_t tid)
{
	for (size_t i = 0; i < req->n_vcpus; i++)
		if (req->vcpus[i].tid == tid)
			return true;
	return false;
}

/* vCPUs to their sets, every other thread of TIDS (qemu's, listed by apply) to emulator. Never
 * cgroup.procs, which would move every thread. A thread born after the listing stays in <vm>,
 * on the emulator's CPUs, until rescan moves it. */
static int place_threads(struct cgroup_v2 *s, const struct isolation_plan *req, char **sets,
			 const pid_t *tids, size_t n_tids, struct ql_error *err)
{
	for (size_t i = 0; i < req->n_vcpus; i++) {
		_cleanup_free_ char *rel = vcpu_set_rel(s->vm_rel, req->vcpus[i].host_cpu);
		if (!rel)
			return ql_error_set(err, ENOMEM, "out of memory");
		int r = write_tid(s, rel, req->vcpus[i].tid, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < n_tids; i++) {
		if (is_vcpu_tid(req, tids[i]))
			continue;
		int r = write_tid(s, sets[0], tids[i], err);
		if (r < 0 && r != -ESRCH)
			return r;
	}
	return 0;
}

/* Reads back cpuset.cpus.effective of rel and compares. */
static int check_effective(struct cgroup_v2 *s, const char *rel, const struct cpu_list *want,
			   struct ql_error *err)
{
	_cleanup_cpu_list_ struct cpu_list *eff = NULL;
	int r = cg_read_cpus(s, rel, "cpuset.cpus.effective", &eff, err);
	if (r < 0)
		return r;
	if (cpu_list_equal(eff, want))
		return 0;
	_cleanup_free_ char *g = cpu_list_show(eff), *w = cpu_list_show(want);
	return ql_error_set(err, EIO,
			    "%s/%s: cpuset.cpus.effective is %s instead of %s (CPUs not available "
			    "to this cgroup?)",
			    s->root, rel, g, w);
}

/* Every set's effective CPUs as the plan says. A VM partition keeps only what its isolated
 * children leave. */
static int verify_sets(struct cgroup_v2 *s, const struct cg2_plan *p, bool partitioned, char **sets,
		       struct ql_error *err)
{
	int r = check_effective(s, s->vm_rel, partitioned ? p->emulator : p->vm, err);
	if (r == 0)
		r = check_effective(s, sets[0], p->emulator, err);
	char **set = sets + 1;
	for (int x = cpu_list_next(p->vcpus, -1); r == 0 && x >= 0;
	     x = cpu_list_next(p->vcpus, x), set++) {
		_cleanup_cpu_list_ struct cpu_list *want = cpu_list_of_one((unsigned)x);
		r = want ? check_effective(s, *set, want, err)
			 : ql_error_set(err, ENOMEM, "out of memory");
	}
	return r;
}

/* Every thread's affinity as the plan says: vCPUs on their CPU, the others within the emulator's
 * (proc_check_affinity_within: qemu keeps the launcher's own narrower mask there). */
static int verify_threads(struct cgroup_v2 *s, const struct isolation_plan *req,
			  const struct cg2_plan *p, bool partitioned, const pid_t *tids,
			  size_t n_tids, struct ql_error *err)
{
	int r = 0;
	for (size_t i = 0; r == 0 && i < req->n_vcpus; i++) {
		const struct vcpu_placement *v = &req->vcpus[i];
		_cleanup_cpu_list_ struct cpu_list *want = cpu_list_of_one(v->host_cpu);
		if (!want)
			return ql_error_set(err, ENOMEM, "out of memory");
		r = proc_check_affinity(v->tid, want, err);
		if (r == -ESRCH)
			return ql_error_set(err, ESRCH, "vCPU %d thread %d vanished", v->cpu_index,
					    (int)v->tid);
		if (r < 0)
			ql_error_prefix(err, "vCPU %d: ", v->cpu_index);
		else
			ql_log(s->log, QL_LOG_DEBUG, "vCPU %d (thread %d) -> host CPU %u%s",
			       v->cpu_index, (int)v->tid, v->host_cpu,
			       partitioned ? " (isolated partition)" : "");
	}
	for (size_t i = 0; r == 0 && i < n_tids; i++)
		if (!is_vcpu_tid(req, tids[i]) &&
		    (r = proc_check_affinity_within(tids[i], p->emulator, err)) == -ESRCH)
			r = 0;
	return r;
}

/* vCPUs, or emulator CPUs alone (emulator_pinning without vcpu_pinning: every thread of qemu
 * goes to the emulator set). */
static int check_request(const struct isolation_plan *req, struct ql_error *err)
{
	if (req->qemu_pid <= 0 || (req->n_vcpus == 0 && !req->emulator_cpus))
		return ql_error_set(err, EINVAL, "nothing to place");
	return 0;
}

/* The vCPU thread ids are among qemu's threads, TIDS sorted (apply only: prepare has none yet). */
static int check_vcpu_tids(const struct isolation_plan *req, const pid_t *tids, size_t n_tids,
			   struct ql_error *err)
{
	for (size_t i = 0; i < req->n_vcpus; i++)
		if (!proc_tids_contain(tids, n_tids, req->vcpus[i].tid))
			return ql_error_set(err, ESRCH,
					    "thread %d of vCPU %d is not a thread of qemu",
					    (int)req->vcpus[i].tid, req->vcpus[i].cpu_index);
	return 0;
}

static int remember(struct cgroup_v2 *s, const struct isolation_plan *req, struct ql_error *err)
{
	free(s->vcpu_tids);
	s->n_vcpu_tids = 0;
	if (!(s->vcpu_tids = calloc(req->n_vcpus ? req->n_vcpus : 1, sizeof(pid_t))))
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < req->n_vcpus; i++)
		s->vcpu_tids[i] = req->vcpus[i].tid;
	s->n_vcpu_tids = req->n_vcpus;
	return 0;
}

/* Everything that needs no thread id: the prefix, the plan from the kernel's state, <vm> with
 * qemu in it and its child sets, their CPUs and partitions, each read back. Forming the vCPUs'
 * isolated partitions while they are empty is valid (a partition needs CPUs, not tasks) and the
 * same order apply always had: qemu's threads wait in <vm>, which keeps the emulator CPUs once
 * the partitions took theirs (all the VM's CPUs without partitions), until place moves them. */
static int prepare_sets(struct cgroup_v2 *s, const struct isolation_plan *req, struct ql_error *err)
{
	_cleanup_(host_state_done) struct host_state hs = {0};
	_cleanup_(cg2_plan_done) struct cg2_plan p = {0};
	_cleanup_strv_free_ char **sets = NULL;
	bool partitioned = false;
	forget_prepared(s);
	int r = prepare_prefix(s, err);
	if (r == 0)
		r = read_host(s, &hs, err);
	if (r == 0)
		r = cg2_plan_build(&hs.h, req, s->cfg->mode, &p, err);
	if (r < 0)
		return r;
	if (p.emulator_shares_vcpus)
		ql_log(s->log, QL_LOG_WARNING,
		       "no CPU is left for qemu's emulator threads: they share the vCPUs' CPUs");
	if (p.emulator_chosen) {
		_cleanup_free_ char *emu = cpu_list_show(p.emulator);
		ql_log(s->log, QL_LOG_INFO,
		       "isolate_cpus: true without emulator_pinning: qemu's emulator threads get "
		       "CPU %s, so that CPU partitions can form",
		       emu);
	}
	/* Where qemu lives now, to put it back on release. */
	free(s->origin);
	s->origin = process_cgroup_dir(s, req->qemu_pid);
	r = child_sets(s, &p, &sets, err);
	if (r == 0)
		r = create_sets(s, sets, req->qemu_pid, err);
	if (r == 0)
		r = write_set_cpus(s, &p, sets, err);
	if (r == 0)
		r = form_partitions(s, &p, sets, &partitioned, err);
	if (r == 0)
		r = verify_sets(s, &p, partitioned, sets, err);
	if (r < 0)
		return r;
	s->plan = p;
	p = (struct cg2_plan){0};
	s->partitioned = partitioned;
	s->prepared_vcpus = req->n_vcpus;
	s->prepared_emulator = req->emulator_cpus != NULL;
	s->prepared = true;
	return 0;
}

static int cgroup_v2_prepare(void *state, const struct isolation_plan *req, struct ql_error *err)
{
	struct cgroup_v2 *s = state;
	int r = check_request(req, err);
	if (r == 0)
		r = prepare_sets(s, req, err);
	if (r < 0)
		return r;
	/* keep_warm's file; without it only the wait it spares is lost */
	_cleanup_free_ char *threads = path_join(s->vm_rel, "cgroup.threads");
	if (threads)
		(void)cgroupfs_open_file(s->root_fd, threads, &s->warm_fd, s->root, NULL);
	return 0;
}

/* Keeps the kernel's migration lock (cgroup_threadgroup_rwsem) out of its fast-reader mode from
 * prepare to place: a task migration after about one RCU grace period without one waits for a
 * whole grace period first (10-15 ms on the bench host, bench/RESULTS.md), and qemu may take
 * longer than that to build its machine after prepare's migrations. Writing qemu's main thread
 * id into cgroup.threads of <vm>, where it is, migrates nothing (the kernel skips a move to the
 * same css_set) but takes and drops the lock as a writer, which restarts that window. Best
 * effort: a failure (qemu gone) only costs the wait it was to spare. */
static void cgroup_v2_keep_warm(void *state)
{
	struct cgroup_v2 *s = state;
	cgroupfs_keep_warm(&s->warm_fd, s->qemu_pid);
}

/* apply after a prepare: the same qemu on the same host CPUs, thread ids now. */
static int same_plan_as_prepared(const struct cgroup_v2 *s, const struct isolation_plan *req,
				 struct ql_error *err)
{
	_cleanup_cpu_list_ struct cpu_list *cpus = NULL;
	int r = isolation_plan_host_cpus(req, &cpus, err);
	if (r < 0)
		return r;
	bool same_emulator =
	    req->emulator_cpus
		? s->prepared_emulator && cpu_list_equal(req->emulator_cpus, s->plan.emulator)
		: !s->prepared_emulator;
	if (req->qemu_pid != s->qemu_pid || req->n_vcpus != s->prepared_vcpus ||
	    !cpu_list_equal(cpus, s->plan.vcpus) || !same_emulator)
		return ql_error_set(err, EINVAL, "the placement differs from the prepared one");
	return 0;
}

/* With the vCPU thread ids, in the sets prepare made: the threads placed, every set and thread
 * read back, the vCPUs remembered for rescan. */
static int place_prepared(struct cgroup_v2 *s, const struct isolation_plan *req, const pid_t *tids,
			  size_t n_tids, struct ql_error *err)
{
	const struct cg2_plan *p = &s->plan;
	_cleanup_strv_free_ char **sets = NULL;
	int r = child_sets(s, p, &sets, err);
	if (r == 0)
		r = place_threads(s, req, sets, tids, n_tids, err);
	if (r == 0)
		r = verify_sets(s, p, s->partitioned, sets, err);
	if (r == 0)
		r = verify_threads(s, req, p, s->partitioned, tids, n_tids, err);
	if (r == 0)
		r = remember(s, req, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *emu = cpu_list_show(p->emulator);
	ql_log(s->log, QL_LOG_INFO, "cgroup v2: %s/%s ready (emulator CPUs %s%s)", s->root,
	       s->vm_rel, emu, s->partitioned ? ", vCPU CPUs isolated" : "");
	return 0;
}

/* After a prepare only the threads move; without one (a caller that does not prepare) the sets
 * are made first. The thread ids are checked before any of it, against one listing of qemu's
 * threads that also says which threads go to emulator. */
static int cgroup_v2_apply(void *state, const struct isolation_plan *req, struct ql_error *err)
{
	struct cgroup_v2 *s = state;
	_cleanup_free_ pid_t *tids = NULL;
	size_t n_tids = 0;
	int r = check_request(req, err);
	if (r == 0)
		r = proc_list_tids_sorted(req->qemu_pid, &tids, &n_tids, err);
	if (r == 0)
		r = check_vcpu_tids(req, tids, n_tids, err);
	if (r == 0)
		r = s->prepared ? same_plan_as_prepared(s, req, err) : prepare_sets(s, req, err);
	if (r < 0)
		return r;
	closep(&s->warm_fd);
	r = place_prepared(s, req, tids, n_tids, err);
	forget_prepared(s);
	return r;
}

/* Moves threads qemu created after apply (and anything that wandered into a vCPU set) to the
 * emulator set. */
static int cgroup_v2_rescan(void *state, struct ql_error *err)
{
	struct cgroup_v2 *s = state;
	if (s->qemu_pid <= 0 || !s->vcpu_tids)
		return 0;
	_cleanup_free_ char *emu_rel = path_join(s->vm_rel, EMULATOR_SET), *suffix = NULL;
	if (!emu_rel || asprintf(&suffix, "/%s", emu_rel) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_free_ pid_t *tids = NULL;
	size_t n = 0;
	int r = proc_list_tids(s->qemu_pid, &tids, &n, err);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	size_t sl = strlen(suffix);
	for (size_t i = 0; i < n; i++) {
		bool vcpu = false;
		for (size_t k = 0; k < s->n_vcpu_tids; k++)
			vcpu |= s->vcpu_tids[k] == tids[i];
		if (vcpu)
			continue;
		_cleanup_close_ int fd = proc_thread_open(s->qemu_pid, tids[i], "cgroup");
		_cleanup_free_ char *text = NULL;
		if (fd < 0 || read_small_fd(fd, PROC_CGROUP_FILE_MAX, &text, NULL) < 0)
			continue; /* ended meanwhile */
		bool in_emu = false;
		for (char *line = text, *next; *line; line = next) {
			size_t ll = strcspn(line, "\n");
			next = line + ll + (line[ll] != '\0');
			if (strncmp(line, "0::", 3) == 0 && ll >= sl &&
			    strncmp(line + ll - sl, suffix, sl) == 0)
				in_emu = true;
		}
		if (in_emu)
			continue;
		r = write_tid(s, emu_rel, tids[i], err);
		if (r < 0 && r != -ESRCH)
			return r;
	}
	return 0;
}

static int cgroup_v2_inspect(const struct isolation_config *cfg, const char *only,
			     struct isolation_vm_list *acc, struct ql_error *err)
{
	/* On a cgroup v1 host the v2 root may be the v1 tmpfs: a prefix there is not ours. */
	struct statfs sfs;
	if (statfs(cfg->cgroup2_root, &sfs) < 0 || sfs.f_type != CGROUP2_SUPER_MAGIC)
		return 0;
	_cleanup_free_ char *base = path_join(cfg->cgroup2_root, cfg->prefix);
	if (!base)
		return ql_error_set(err, ENOMEM, "out of memory");
	return cgroup_inspect(base, &cgroup_v2_layout, only, acc, err);
}

const struct isolation_backend isolation_backend_cgroup_v2 = {
    .name = "cgroup v2",
    .isolates = true,
    .probe = cgroup_v2_probe,
    .lock_dir = cgroup_v2_lock_dir,
    .usable_cpus = cgroup_v2_usable_cpus,
    .describe = cgroup_v2_describe,
    .prepare = cgroup_v2_prepare,
    .keep_warm = cgroup_v2_keep_warm,
    .apply = cgroup_v2_apply,
    .rescan = cgroup_v2_rescan,
    .release = cgroup_v2_release,
    .reclaim = cgroup_v2_reclaim,
    .inspect = cgroup_v2_inspect,
    .free_state = cgroup_v2_free_state,
};
