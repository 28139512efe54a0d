/* cgroup v2 isolation backend: <root>/<prefix>/<vm>/{emulator,vcpuN} as a threaded subtree, with
 * cpuset partitions when they can form. The rules it follows are measured in notes/cgroup-v2.md. */
#include "isolation_backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cgroupfs.h"
#include "macro.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define DEFAULT_CGROUP2_ROOT "/sys/fs/cgroup"
#define DEFAULT_PREFIX "qemu"
#define EMULATOR_SET "emulator"
/* Bounds on names we turn into directories and on the VMs we are willing to look at. */
#define CG_NAME_MAX 200
#define MAX_OTHER_VMS 4096
#define MAX_QEMU_THREADS 65536

struct cgroup_v2 {
	char *root;  /* absolute; the cgroup2 mount or a delegated directory */
	int root_fd; /* O_PATH; every path below is relative to it */
	const char *prefix;
	const char *vm;
	bool top_root; /* root is the hierarchy's root cgroup (always a partition root) */
	const struct ql_logger *log;

	/* What apply did, for rescan/release. */
	pid_t qemu_pid;
	char *origin; /* absolute cgroup dir qemu came from; NULL if unknown */
	pid_t *vcpu_tids;
	size_t n_vcpu_tids;
	bool created_vm; /* <prefix>/<vm> is ours: release may empty and remove it */
	bool partitioned;
	bool warned; /* the AUTO fallback warning is said once */
};

/* A live VM found under the prefix. */
struct other_vm {
	char name[NAME_MAX + 1];
	struct cpu_list *vcpu_cpus; /* union of its vcpuN sets */
	struct cpu_list *vm_cpus;   /* its <vm>/cpuset.cpus (all CPUs it asked for) */
	bool partition;		    /* its <vm> is a valid partition root */
};

static void other_vms_free(struct other_vm *o, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cpu_list_free(o[i].vcpu_cpus);
		cpu_list_free(o[i].vm_cpus);
	}
	free(o);
}

enum partition_state {
	PART_MEMBER,
	PART_ROOT,
	PART_ISOLATED,
	PART_INVALID,
	PART_NONE, /* no such file: the hierarchy root, or cpuset not enabled */
};

static void cgroup_v2_free_state(void *p);
static void cgroup_v2_freep(struct cgroup_v2 **s)
{
	cgroup_v2_free_state(*s);
}

static struct cgroup_v2 *state(struct isolation *iso)
{
	return iso->state;
}

/* A cgroup directory name we create ourselves: one component, printable, not a control file. */
static bool cgroup_name_is_valid(const char *n)
{
	if (!n || !*n || strlen(n) > CG_NAME_MAX || streq(n, ".") || streq(n, ".."))
		return false;
	for (const char *p = n; *p; p++)
		if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	/* Names like "cgroup.procs" or "cpuset.cpus" clash with the interface files. */
	if (strncmp(n, "cgroup.", 7) == 0 || strncmp(n, "cpuset.", 7) == 0)
		return false;
	return true;
}

static char *path_join(const char *a, const char *b, const char *c)
{
	char *s = NULL;
	if (asprintf(&s, "%s%s%s%s%s", a, b ? "/" : "", b ? b : "", c ? "/" : "", c ? c : "") < 0)
		return NULL;
	return s;
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

/* ---- small file helpers relative to root_fd ---- */

static int cg_write(struct cgroup_v2 *s, const char *dir, const char *file, const char *value,
		    struct ql_error *err)
{
	_cleanup_free_ char *rel = dir ? path_join(dir, file, NULL) : strdup(file);
	if (!rel)
		return ql_error_set(err, ENOMEM, "out of memory");
	return cgroupfs_write(s->root_fd, rel, value, s->log, s->root, err);
}

static int cg_read(struct cgroup_v2 *s, const char *dir, const char *file, char **ret,
		   struct ql_error *err)
{
	_cleanup_free_ char *rel = dir ? path_join(dir, file, NULL) : strdup(file);
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
	_cleanup_free_ char *rel = dir ? path_join(dir, file, NULL) : strdup(file);
	if (!rel)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = cgroupfs_read_cpus(s->root_fd, rel, ret, err);
	if (r < 0)
		ql_error_prefix(err, "%s: ", s->root);
	return r;
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

/* Parses the partition file; ret_reason gets the whole text for messages. The kernel may add
 * " invalid (reason)" after the type, and older 6.1 kernels no reason at all. */
static enum partition_state cg_partition(struct cgroup_v2 *s, const char *dir, char **ret_text)
{
	_cleanup_free_ char *text = NULL;
	if (cg_read(s, dir, "cpuset.cpus.partition", &text, NULL) < 0)
		return PART_NONE;
	enum partition_state st = PART_INVALID;
	if (streq(text, "member"))
		st = PART_MEMBER;
	else if (streq(text, "root"))
		st = PART_ROOT;
	else if (streq(text, "isolated"))
		st = PART_ISOLATED;
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

/* Child directories of rel (cgroups), up to max. */
static int cg_list_children(struct cgroup_v2 *s, const char *rel, char ***ret, struct ql_error *err)
{
	int fd = openat(s->root_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return ql_error_set_errno(err, errno, "opening `%s/%s`", s->root, rel);
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return ql_error_set_errno(err, e, "reading `%s/%s`", s->root, rel);
	}
	_cleanup_strv_free_ char **names = calloc(1, sizeof(char *));
	size_t n = 0;
	struct dirent *de;
	while (names && (de = readdir(d))) {
		if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (n >= MAX_OTHER_VMS)
			break;
		char **nn = reallocarray(names, n + 2, sizeof(char *));
		if (!nn) {
			strv_free(names);
			names = NULL;
			break;
		}
		names = nn;
		if (!(names[n] = strdup(de->d_name))) {
			strv_free(names);
			names = NULL;
			break;
		}
		names[++n] = NULL;
	}
	closedir(d);
	if (!names)
		return ql_error_set(err, ENOMEM, "out of memory");
	*ret = TAKE_PTR(names);
	return 0;
}

/* ---- probe / usable ---- */

static int cgroup_v2_probe(struct isolation *iso, struct ql_error *err)
{
	const char *root = iso->cfg.cgroup2_root ? iso->cfg.cgroup2_root : DEFAULT_CGROUP2_ROOT;
	const char *prefix = iso->cfg.prefix ? iso->cfg.prefix : DEFAULT_PREFIX;
	struct statfs sfs;

	if (root[0] != '/')
		return ql_error_set(err, EINVAL, "cgroup2 root `%s` is not an absolute path", root);
	if (statfs(root, &sfs) < 0)
		return ql_error_set_errno(err, errno == ENOENT ? ENOENT : ENOTSUP,
					  "cgroup v2: cannot access `%s`", root);
	if (sfs.f_type != CGROUP2_SUPER_MAGIC)
		return ql_error_set(err, ENOTSUP, "cgroup v2: `%s` is not a cgroup2 filesystem",
				    root);
	if (!cgroup_name_is_valid(prefix))
		return ql_error_set(err, EINVAL, "cgroup v2: invalid prefix `%s`", prefix);
	if (!cgroup_name_is_valid(iso->cfg.vm_name))
		return ql_error_set(err, EINVAL, "cgroup v2: VM name `%s` cannot name a cgroup",
				    iso->cfg.vm_name ? iso->cfg.vm_name : "");

	_cleanup_(cgroup_v2_freep) struct cgroup_v2 *s = calloc(1, sizeof(*s));
	if (!s)
		return ql_error_set(err, ENOMEM, "out of memory");
	s->root_fd = -1;
	s->prefix = prefix;
	s->vm = iso->cfg.vm_name;
	s->log = iso->cfg.log;
	s->root = strdup(root);
	if (!s->root)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = cgroupfs_open_dir(root, &s->root_fd, err);
	if (r < 0)
		return ql_error_set(err, r == -ENOENT ? ENOENT : ENOTSUP,
				    "cgroup v2: cannot open `%s`: %s", root, strerror(-r));

	_cleanup_free_ char *ctrl = NULL;
	r = cg_read(s, NULL, "cgroup.controllers", &ctrl, err);
	if (r < 0)
		return ql_error_set(err, ENOTSUP, "cgroup v2: cannot read `%s/cgroup.controllers`",
				    root);
	if (!word_in_list(ctrl, "cpuset"))
		return ql_error_set(
		    err, ENOTSUP,
		    "cgroup v2: the cpuset controller is not available in `%s` "
		    "(cgroup.controllers: \"%s\"; on hybrid hosts it is bound to v1)",
		    root, ctrl);

	/* The hierarchy root has no cgroup.type. */
	s->top_root = !cg_exists(s, "cgroup.type");
	if (!s->top_root) {
		/* A delegated directory that holds processes cannot have domain children with
		 * cpuset (it would become an implicit threaded root). */
		_cleanup_free_ pid_t *pids = NULL;
		size_t n = 0;
		if (cgroupfs_read_pids(s->root_fd, "cgroup.procs", &pids, &n, NULL) == 0 && n > 0)
			return ql_error_set(
			    err, ENOTSUP,
			    "cgroup v2: delegated cgroup `%s` holds %zu process(es); "
			    "move them into a child cgroup first",
			    root, n);
	}
	iso->state = TAKE_PTR(s);
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
	if (cg_exists(s, s->prefix) && cg_partition(s, s->prefix, NULL) == PART_ROOT &&
	    cg_read_cpus(s, s->prefix, "cpuset.cpus", &p, NULL) == 0)
		for (int x = cpu_list_next(p, -1); x >= 0; x = cpu_list_next(p, x))
			if (cpu_list_add(u, (unsigned)x) < 0)
				return ql_error_set(err, ENOMEM, "out of memory");
	*ret = TAKE_PTR(u);
	return 0;
}

static int cgroup_v2_usable_cpus(struct isolation *iso, struct cpu_list **ret, struct ql_error *err)
{
	return read_usable(state(iso), ret, err);
}

/* ---- plan computations ---- */

static int vcpu_set_cpus(const struct isolation_plan *plan, struct cpu_list **ret,
			 struct ql_error *err)
{
	struct cpu_list *l = cpu_list_new(0);
	if (!l)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < plan->n_vcpus; i++)
		if (cpu_list_add(l, plan->vcpus[i].host_cpu) < 0) {
			cpu_list_free(l);
			return ql_error_set(err, ERANGE, "host CPU %u is out of range",
					    plan->vcpus[i].host_cpu);
		}
	*ret = l;
	return 0;
}

/* Emulator CPUs: the user's list, else every usable CPU no vCPU (ours or a live VM's) is pinned
 * to, else every usable CPU but ours, else all of them (shared with the vCPUs). */
static struct cpu_list *emulator_cpus(const struct isolation_plan *plan,
				      const struct cpu_list *usable, const struct cpu_list *mine,
				      const struct cpu_list *others_vcpus)
{
	if (plan->emulator_cpus)
		return cpu_list_dup(plan->emulator_cpus);
	struct cpu_list *e = cpu_list_dup(usable);
	if (!e)
		return NULL;
	cpu_list_subtract(e, mine);
	if (others_vcpus)
		cpu_list_subtract(e, others_vcpus);
	if (!cpu_list_is_empty(e))
		return e;
	cpu_list_free(e);
	e = cpu_list_dup(usable);
	if (e)
		cpu_list_subtract(e, mine);
	if (e && cpu_list_is_empty(e)) {
		cpu_list_free(e);
		e = cpu_list_dup(usable);
	}
	return e;
}

static char *fmt_cpus(const struct cpu_list *l)
{
	char *t = l ? cpu_list_format(l) : NULL;
	return t ? t : strdup("?");
}

static const char *mode_name(enum ql_isolate m)
{
	return m == QL_ISOLATE_TRUE ? "required" : m == QL_ISOLATE_FALSE ? "off" : "auto";
}

static char *cgroup_v2_describe(struct isolation *iso, const struct isolation_plan *plan)
{
	struct cgroup_v2 *s = state(iso);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	_cleanup_cpu_list_ struct cpu_list *usable = NULL, *mine = NULL, *emu = NULL;
	read_usable(s, &usable, NULL);
	vcpu_set_cpus(plan, &mine, NULL);
	if (usable && mine)
		emu = emulator_cpus(plan, usable, mine, NULL);
	_cleanup_free_ char *emu_text = fmt_cpus(emu), *usable_text = fmt_cpus(usable);

	fprintf(f, "cgroup v2 at %s (usable CPUs %s, partitions: %s)\n", s->root, usable_text,
		mode_name(iso->cfg.mode));
	fprintf(f, "  %s/%s: prefix (domain, +cpuset)\n", s->root, s->prefix);
	fprintf(f, "  %s/%s/%s: qemu process%s\n", s->root, s->prefix, s->vm,
		iso->cfg.mode == QL_ISOLATE_FALSE ? "" : " (partition root when possible)");
	fprintf(f, "  %s/%s/%s/%s: threaded, cpus %s, all non-vCPU threads\n", s->root, s->prefix,
		s->vm, EMULATOR_SET, emu_text);
	for (int c = mine ? cpu_list_next(mine, -1) : -1; c >= 0; c = cpu_list_next(mine, c)) {
		fprintf(
		    f, "  %s/%s/%s/vcpu%d: threaded, cpus %d%s:", s->root, s->prefix, s->vm, c, c,
		    iso->cfg.mode == QL_ISOLATE_FALSE ? "" : " (isolated partition when possible)");
		for (size_t i = 0; i < plan->n_vcpus; i++)
			if ((int)plan->vcpus[i].host_cpu == c)
				fprintf(f, " vCPU %d", plan->vcpus[i].cpu_index);
		fputc('\n', f);
	}
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
	enum partition_state st = cg_partition(s, dir, NULL);
	if (st == PART_NONE || st == PART_MEMBER)
		return 0;
	return cg_write(s, dir, "cpuset.cpus.partition", "member", err);
}

/* Removes <prefix>/<name> and its children; the caller made sure no task is left (or moved
 * them). Best effort over all children; returns the first error. */
static int remove_vm_tree(struct cgroup_v2 *s, const char *name, struct ql_error *err)
{
	_cleanup_free_ char *vm_rel = path_join(s->prefix, name, NULL);
	if (!vm_rel)
		return ql_error_set(err, ENOMEM, "out of memory");
	if (!cg_exists(s, vm_rel))
		return 0;
	_cleanup_strv_free_ char **kids = NULL;
	int ret = cg_list_children(s, vm_rel, &kids, err);
	if (ret < 0)
		return ret;
	/* Isolated children first: a parent's partition cannot be reset under them. */
	for (char **k = kids; *k; k++) {
		_cleanup_free_ char *rel = path_join(vm_rel, *k, NULL);
		if (!rel)
			return ql_error_set(err, ENOMEM, "out of memory");
		struct ql_error e = {0};
		if (reset_partition(s, rel, &e) < 0 && ret == 0)
			ret = ql_error_set(err, e.code, "%s", e.msg ? e.msg : "reset partition");
		ql_error_clear(&e);
	}
	for (char **k = kids; *k; k++) {
		_cleanup_free_ char *rel = path_join(vm_rel, *k, NULL);
		if (!rel)
			return ql_error_set(err, ENOMEM, "out of memory");
		struct ql_error e = {0};
		if (cgroupfs_rmdir(s->root_fd, rel, s->log, s->root, &e) < 0 && ret == 0)
			ret = ql_error_set(err, e.code, "%s", e.msg ? e.msg : "rmdir");
		ql_error_clear(&e);
	}
	struct ql_error e = {0};
	if (reset_partition(s, vm_rel, &e) < 0 && ret == 0)
		ret = ql_error_set(err, e.code, "%s", e.msg ? e.msg : "reset partition");
	ql_error_clear(&e);
	if (cgroupfs_rmdir(s->root_fd, vm_rel, s->log, s->root, &e) < 0 && ret == 0)
		ret = ql_error_set(err, e.code, "%s", e.msg ? e.msg : "rmdir");
	ql_error_clear(&e);
	return ret;
}

/* Smallest CPU of from that is not in not; -1 when none. */
static int pick_cpu(const struct cpu_list *from, const struct cpu_list * not )
{
	for (int c = cpu_list_next(from, -1); c >= 0; c = cpu_list_next(from, c))
		if (!not || !cpu_list_has(not, (unsigned)c))
			return c;
	return -1;
}

/* After a VM left: remove the prefix when no VM remains, else shrink a partitioned prefix to
 * the remaining VMs plus one CPU it keeps for itself, so the freed CPUs return to the host. */
static int tidy_prefix(struct cgroup_v2 *s, struct ql_error *err)
{
	if (!cg_exists(s, s->prefix))
		return 0;
	_cleanup_strv_free_ char **kids = NULL;
	int r = cg_list_children(s, s->prefix, &kids, err);
	if (r < 0)
		return r;
	if (!kids[0]) {
		r = reset_partition(s, s->prefix, err);
		if (r < 0)
			return r;
		return cgroupfs_rmdir(s->root_fd, s->prefix, s->log, s->root, err);
	}
	if (cg_partition(s, s->prefix, NULL) != PART_ROOT)
		return 0;
	_cleanup_cpu_list_ struct cpu_list *keep = cpu_list_new(0), *cur = NULL;
	if (!keep)
		return ql_error_set(err, ENOMEM, "out of memory");
	r = cg_read_cpus(s, s->prefix, "cpuset.cpus", &cur, err);
	if (r < 0)
		return r;
	for (char **k = kids; *k; k++) {
		_cleanup_free_ char *rel = path_join(s->prefix, *k, NULL);
		_cleanup_cpu_list_ struct cpu_list *c = NULL;
		if (!rel)
			return ql_error_set(err, ENOMEM, "out of memory");
		if (cg_read_cpus(s, rel, "cpuset.cpus", &c, NULL) < 0 || cpu_list_is_empty(c))
			return 0; /* a VM relying on inheritance: leave the prefix as it is */
		for (int x = cpu_list_next(c, -1); x >= 0; x = cpu_list_next(c, x))
			cpu_list_add(keep, (unsigned)x);
	}
	int spare = pick_cpu(cur, keep);
	if (spare < 0)
		return 0;
	cpu_list_add(keep, (unsigned)spare);
	if (cpu_list_equal(keep, cur))
		return 0;
	_cleanup_free_ char *text = cpu_list_format(keep);
	if (!text)
		return ql_error_set(err, ENOMEM, "out of memory");
	return cg_write(s, s->prefix, "cpuset.cpus", text, err);
}

/* Absolute directory of the cgroup qemu is in now (from /proc/PID/cgroup "0::/path"), mapped
 * through the cgroup2 mount that holds our root. NULL when it cannot be determined. */
static char *process_cgroup_dir(struct cgroup_v2 *s, pid_t pid)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return NULL;
	char line[PATH_MAX + 16];
	_cleanup_free_ char *cg = NULL;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			cg = strdup(line + 3);
			break;
		}
	fclose(f);
	if (!cg || cg[0] != '/')
		return NULL;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return NULL;
	char *best = NULL;
	size_t best_len = 0;
	char mi[4096];
	while (fgets(mi, sizeof(mi), f)) {
		char *sep = strstr(mi, " - cgroup2 ");
		if (!sep)
			continue;
		char mroot[PATH_MAX], mpoint[PATH_MAX];
		if (sscanf(mi, "%*s %*s %*s %4095s %4095s", mroot, mpoint) != 2)
			continue;
		size_t ml = strlen(mpoint), rl = strlen(mroot);
		/* Our root must lie in this mount; prefer the deepest such mount. */
		if (strncmp(s->root, mpoint, ml) != 0 ||
		    (s->root[ml] != '/' && s->root[ml] != '\0'))
			continue;
		if (ml < best_len && best)
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
	fclose(f);
	if (best && !*best) {
		free(best);
		best = strdup("/");
	}
	return best;
}

/* Moves every process of our VM cgroup back where qemu came from (or to the root), so the
 * directories can go. Processes listed there are ours by construction. */
static int move_processes_out(struct cgroup_v2 *s, const char *vm_rel, struct ql_error *err)
{
	_cleanup_free_ char *procs = path_join(vm_rel, "cgroup.procs", NULL);
	if (!procs)
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	if (cgroupfs_read_pids(s->root_fd, procs, &pids, &n, NULL) < 0 || n == 0)
		return 0;
	int ret = 0;
	for (size_t i = 0; i < n; i++) {
		char v[16];
		snprintf(v, sizeof(v), "%d", (int)pids[i]);
		int r = -ENOENT;
		if (s->origin) {
			_cleanup_close_ int fd = -1;
			struct ql_error e = {0};
			if (cgroupfs_open_dir(s->origin, &fd, &e) == 0)
				r = cgroupfs_write(fd, "cgroup.procs", v, s->log, s->origin, &e);
			ql_error_clear(&e);
		}
		if (r < 0) {
			struct ql_error e = {0};
			r = cgroupfs_write(s->root_fd, "cgroup.procs", v, s->log, s->root, &e);
			if (r < 0 && r != -ESRCH && ret == 0)
				ret = ql_error_set(err, e.code, "moving qemu out of its cgroup: %s",
						   e.msg ? e.msg : "");
			ql_error_clear(&e);
		}
	}
	return ret;
}

static int release_locked(struct cgroup_v2 *s, struct ql_error *err)
{
	_cleanup_free_ char *vm_rel = path_join(s->prefix, s->vm, NULL);
	if (!vm_rel)
		return ql_error_set(err, ENOMEM, "out of memory");
	int ret = 0;
	struct ql_error e = {0};
	/* Only a tree this launcher made: a namesake that runs is another launcher's. */
	if (s->created_vm && cg_exists(s, vm_rel)) {
		if (move_processes_out(s, vm_rel, &e) < 0 && ret == 0)
			ret = ql_error_set(err, e.code, "%s", e.msg ? e.msg : "");
		ql_error_clear(&e);
		if (remove_vm_tree(s, s->vm, &e) < 0 && ret == 0)
			ret = ql_error_set(err, e.code, "%s", e.msg ? e.msg : "");
		ql_error_clear(&e);
	}
	if (tidy_prefix(s, &e) < 0 && ret == 0)
		ret = ql_error_set(err, e.code, "%s", e.msg ? e.msg : "");
	ql_error_clear(&e);
	if (ret == 0)
		s->created_vm = false;
	s->partitioned = false;
	return ret;
}

static int cgroup_v2_release(struct isolation *iso, struct ql_error *err)
{
	struct cgroup_v2 *s = state(iso);
	if (!s || s->root_fd < 0)
		return 0;
	bool took = iso->lock_fd < 0;
	if (took) {
		int r = isolation_lock(iso, s->root, err);
		if (r < 0)
			return r;
	}
	int r = release_locked(s, err);
	if (took)
		isolation_unlock(iso);
	return r;
}

/* ---- apply ---- */

/* Looks at every VM under the prefix: live ones are returned, dead ones (a SIGKILLed launcher
 * leaves sets without tasks) are removed. Our own name alive means it already runs. */
static int scan_prefix(struct cgroup_v2 *s, struct other_vm **ret, size_t *ret_n,
		       struct ql_error *err)
{
	_cleanup_strv_free_ char **kids = NULL;
	int r = cg_list_children(s, s->prefix, &kids, err);
	if (r < 0)
		return r;
	size_t n = strv_length(kids), k = 0;
	struct other_vm *o = calloc(n + 1, sizeof(*o));
	if (!o)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *rel = path_join(s->prefix, kids[i], NULL);
		if (!rel) {
			other_vms_free(o, k);
			return ql_error_set(err, ENOMEM, "out of memory");
		}
		if (!cg_populated(s, rel)) {
			ql_log(s->log, QL_LOG_INFO, "reclaiming stale cgroup %s/%s (no tasks left)",
			       s->root, rel);
			r = remove_vm_tree(s, kids[i], err);
			if (r < 0) {
				other_vms_free(o, k);
				ql_error_prefix(err, "reclaiming stale `%s/%s`: ", s->root, rel);
				return r;
			}
			continue;
		}
		if (streq(kids[i], s->vm)) {
			other_vms_free(o, k);
			return ql_error_set(err, EBUSY, "VM `%s` is already running (%s/%s)", s->vm,
					    s->root, rel);
		}
		struct other_vm *v = &o[k++];
		snprintf(v->name, sizeof(v->name), "%s", kids[i]);
		v->vcpu_cpus = cpu_list_new(0);
		if (cg_read_cpus(s, rel, "cpuset.cpus", &v->vm_cpus, NULL) < 0)
			v->vm_cpus = cpu_list_new(0);
		v->partition = cg_partition(s, rel, NULL) == PART_ROOT;
		_cleanup_strv_free_ char **sets = NULL;
		if (!v->vcpu_cpus || !v->vm_cpus || cg_list_children(s, rel, &sets, err) < 0) {
			other_vms_free(o, k);
			return err && err->code ? -err->code
						: ql_error_set(err, ENOMEM, "out of memory");
		}
		for (char **c = sets; *c; c++) {
			if (strncmp(*c, "vcpu", 4) != 0)
				continue;
			_cleanup_free_ char *srel = path_join(rel, *c, NULL);
			_cleanup_cpu_list_ struct cpu_list *cc = NULL;
			if (srel && cg_read_cpus(s, srel, "cpuset.cpus", &cc, NULL) == 0)
				for (int x = cpu_list_next(cc, -1); x >= 0;
				     x = cpu_list_next(cc, x))
					cpu_list_add(v->vcpu_cpus, (unsigned)x);
		}
	}
	*ret = o;
	*ret_n = k;
	return 0;
}

static int check_affinity(pid_t tid, const struct cpu_list *want, struct ql_error *err)
{
	_cleanup_cpu_list_ struct cpu_list *got = cpu_list_new(want->nbits);
	if (!got)
		return ql_error_set(err, ENOMEM, "out of memory");
	/* The kernel insists on a mask at least nr_cpu_ids wide; grow until it fits. */
	for (;;) {
		if (sched_getaffinity(tid, got->nbytes, got->set) == 0)
			break;
		if (errno == ESRCH)
			return -ESRCH;
		if (errno != EINVAL || got->nbits >= CPU_LIST_MAX_CPUS)
			return ql_error_set_errno(err, errno, "reading the affinity of thread %d",
						  (int)tid);
		cpu_list_free(got);
		if (!(got = cpu_list_new(CPU_LIST_MAX_CPUS)))
			return ql_error_set(err, ENOMEM, "out of memory");
	}
	if (!cpu_list_equal(got, want)) {
		_cleanup_free_ char *g = fmt_cpus(got), *w = fmt_cpus(want);
		return ql_error_set(err, EIO, "thread %d runs on CPUs %s instead of %s", (int)tid,
				    g, w);
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
	if (!cpu_list_equal(eff, want)) {
		_cleanup_free_ char *g = fmt_cpus(eff), *w = fmt_cpus(want);
		return ql_error_set(err, EIO,
				    "%s/%s: cpuset.cpus.effective is %s instead of %s (CPUs not "
				    "available to this cgroup?)",
				    s->root, rel, g, w);
	}
	return 0;
}

static int write_cpus(struct cgroup_v2 *s, const char *rel, const struct cpu_list *cpus,
		      struct ql_error *err)
{
	_cleanup_free_ char *text = cpu_list_format(cpus);
	if (!text)
		return ql_error_set(err, ENOMEM, "out of memory");
	return cg_write(s, rel, "cpuset.cpus", text, err);
}

/* Writes a partition type and reads it back: the write "succeeds" even when the kernel
 * cannot form the partition. ret_reason gets the kernel's text on -EINVAL. */
static int set_partition(struct cgroup_v2 *s, const char *rel, const char *type, char **ret_reason,
			 struct ql_error *err)
{
	int r = cg_write(s, rel, "cpuset.cpus.partition", type, err);
	if (r == -EINVAL || r == -EOPNOTSUPP) {
		/* Kernels before 6.1 reject `isolated` at the write itself; that is a refusal like
		 * an "invalid" read-back, so `auto` can still fall back to plain placement. */
		if (ret_reason && asprintf(ret_reason, "the kernel refused \"%s\" for %s/%s (%s)",
					   type, s->root, rel, strerror(-r)) < 0)
			*ret_reason = NULL;
		return r;
	}
	if (r < 0)
		return r;
	_cleanup_free_ char *text = NULL;
	enum partition_state st = cg_partition(s, rel, &text);
	enum partition_state want = streq(type, "root") ? PART_ROOT : PART_ISOLATED;
	if (st == want)
		return 0;
	ql_log(s->log, QL_LOG_DEBUG, "%s/%s/cpuset.cpus.partition reads \"%s\"", s->root, rel,
	       text ? text : "?");
	if (ret_reason) {
		if (asprintf(ret_reason, "%s/%s is \"%s\"", s->root, rel, text ? text : "?") < 0)
			*ret_reason = NULL;
	}
	return -EINVAL;
}

struct apply_ctx {
	struct cgroup_v2 *s;
	const struct isolation_plan *plan;
	enum ql_isolate mode;
	char *vm_rel;
	struct cpu_list *usable, *mine, *emu, *vm_cpus, *others_vcpus, *others_part;
	struct other_vm *others;
	size_t n_others;
	enum partition_state prefix_state;
	bool prefix_was_root; /* a partition root kept by other live VMs */
	bool want_partitions;
	char *why_not; /* reason partitions cannot form */
};

static void apply_ctx_done(struct apply_ctx *c)
{
	free(c->vm_rel);
	cpu_list_free(c->usable);
	cpu_list_free(c->mine);
	cpu_list_free(c->emu);
	cpu_list_free(c->vm_cpus);
	cpu_list_free(c->others_vcpus);
	cpu_list_free(c->others_part);
	other_vms_free(c->others, c->n_others);
	free(c->why_not);
}

static int conflicts(struct apply_ctx *c, struct ql_error *err)
{
	for (size_t i = 0; i < c->n_others; i++) {
		struct other_vm *o = &c->others[i];
		for (size_t k = 0; k < c->plan->n_vcpus; k++) {
			unsigned cpu = c->plan->vcpus[k].host_cpu;
			if (cpu_list_has(o->vcpu_cpus, cpu) ||
			    (o->partition && cpu_list_has(o->vm_cpus, cpu)))
				return ql_error_set(err, EBUSY,
						    "host CPU %u (vCPU %d) is already used by the "
						    "running VM `%s` (%s/%s/%s)",
						    cpu, c->plan->vcpus[k].cpu_index, o->name,
						    c->s->root, c->s->prefix, o->name);
		}
		if (c->plan->emulator_cpus)
			for (int x = cpu_list_next(c->emu, -1); x >= 0;
			     x = cpu_list_next(c->emu, x))
				if (cpu_list_has(o->vcpu_cpus, (unsigned)x) ||
				    (o->partition && cpu_list_has(o->vm_cpus, (unsigned)x)))
					return ql_error_set(
					    err, EBUSY,
					    "emulator CPU %d is already used by the "
					    "running VM `%s`",
					    x, o->name);
	}
	return 0;
}

static void set_why_not(struct apply_ctx *c, const char *fmt, ...) _printf_(2, 3);
static void set_why_not(struct apply_ctx *c, const char *fmt, ...)
{
	if (c->why_not)
		return;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&c->why_not, fmt, ap) < 0)
		c->why_not = NULL;
	va_end(ap);
}

/* Can the kernel form prefix(root) > vm(root) > vcpuN(isolated)? Every ancestor must be a
 * partition and every parent partition must keep at least one CPU. Computes the prefix CPUs. */
static bool partitions_possible(struct apply_ctx *c, struct cpu_list **ret_prefix_cpus)
{
	struct cgroup_v2 *s = c->s;
	if (!s->top_root) {
		enum partition_state st = cg_partition(s, NULL, NULL);
		if (st != PART_ROOT) {
			set_why_not(c,
				    "%s is not a partition root (make it one or use the top of the "
				    "hierarchy)",
				    s->root);
			return false;
		}
	}
	_cleanup_cpu_list_ struct cpu_list *tmp = cpu_list_dup(c->emu);
	if (!tmp)
		return false;
	cpu_list_subtract(tmp, c->mine);
	if (!cpu_list_equal(tmp, c->emu)) {
		set_why_not(c, "the emulator threads share CPUs with vCPUs; set emulator_pinning "
			       "to a CPU not used by vCPUs");
		return false;
	}
	if (c->n_others > 0 && !c->prefix_was_root) {
		set_why_not(c, "other VMs in %s/%s run without partitions", s->root, s->prefix);
		return false;
	}
	if (c->prefix_state == PART_INVALID) {
		set_why_not(c, "%s/%s is an invalid partition", s->root, s->prefix);
		return false;
	}

	_cleanup_cpu_list_ struct cpu_list *pcpus = NULL;
	if (c->prefix_was_root) {
		if (cg_read_cpus(s, s->prefix, "cpuset.cpus", &pcpus, NULL) < 0)
			return false;
	} else if (!(pcpus = cpu_list_new(0))) {
		return false;
	}
	for (int x = cpu_list_next(c->vm_cpus, -1); x >= 0; x = cpu_list_next(c->vm_cpus, x))
		cpu_list_add(pcpus, (unsigned)x);
	/* The prefix keeps one CPU no VM partition takes. */
	_cleanup_cpu_list_ struct cpu_list *taken = cpu_list_dup(c->vm_cpus);
	if (!taken)
		return false;
	for (int x = cpu_list_next(c->others_part, -1); x >= 0;
	     x = cpu_list_next(c->others_part, x))
		cpu_list_add(taken, (unsigned)x);
	if (pick_cpu(pcpus, taken) < 0) {
		/* The highest free CPU: the low ones usually do the host's housekeeping. */
		int spare = -1;
		for (int x = cpu_list_next(c->usable, -1); x >= 0; x = cpu_list_next(c->usable, x))
			if (!cpu_list_has(pcpus, (unsigned)x))
				spare = x;
		if (spare >= 0)
			cpu_list_add(pcpus, (unsigned)spare);
	}
	_cleanup_cpu_list_ struct cpu_list *left = cpu_list_dup(c->usable);
	if (!left)
		return false;
	cpu_list_subtract(left, pcpus);
	if (pick_cpu(pcpus, taken) < 0 || cpu_list_is_empty(left)) {
		_cleanup_free_ char *u = fmt_cpus(c->usable), *v = fmt_cpus(c->vm_cpus);
		set_why_not(c,
			    "the VM's CPUs %s leave too few of the usable CPUs %s: %s and %s/%s "
			    "must each keep one CPU; pin the emulator to fewer CPUs "
			    "(emulator_pinning)",
			    v, u, s->root, s->root, s->prefix);
		return false;
	}
	*ret_prefix_cpus = TAKE_PTR(pcpus);
	return true;
}

/* Threads of pid from /proc/PID/task. */
static int list_tids(pid_t pid, pid_t **ret, size_t *ret_n, struct ql_error *err)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/task", (int)pid);
	DIR *d = opendir(p);
	if (!d)
		return ql_error_set_errno(err, errno, "listing the threads of qemu (pid %d)",
					  (int)pid);
	pid_t *v = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long t = strtol(de->d_name, &end, 10);
		if (*end || t <= 0 || t > INT_MAX)
			continue;
		if (n >= MAX_QEMU_THREADS) {
			free(v);
			closedir(d);
			return ql_error_set(err, E2BIG, "qemu (pid %d) has more than %d threads",
					    (int)pid, MAX_QEMU_THREADS);
		}
		pid_t *nv = reallocarray(v, n + 1, sizeof(*v));
		if (!nv) {
			free(v);
			closedir(d);
			return ql_error_set(err, ENOMEM, "out of memory");
		}
		v = nv;
		v[n++] = (pid_t)t;
	}
	closedir(d);
	*ret = v;
	*ret_n = n;
	return 0;
}

static bool is_vcpu_tid(const struct isolation_plan *plan, pid_t tid)
{
	for (size_t i = 0; i < plan->n_vcpus; i++)
		if (plan->vcpus[i].tid == tid)
			return true;
	return false;
}

static int write_tid(struct cgroup_v2 *s, const char *rel, pid_t tid, struct ql_error *err)
{
	char v[16];
	snprintf(v, sizeof(v), "%d", (int)tid);
	return cg_write(s, rel, "cgroup.threads", v, err);
}

static int apply_locked(struct isolation *iso, struct apply_ctx *c, struct ql_error *err)
{
	struct cgroup_v2 *s = c->s;
	const struct isolation_plan *plan = c->plan;
	int r;

	if (plan->qemu_pid <= 0 || plan->n_vcpus == 0)
		return ql_error_set(err, EINVAL, "cgroup v2: nothing to place");
	for (size_t i = 0; i < plan->n_vcpus; i++)
		if (!thread_belongs_to(plan->qemu_pid, plan->vcpus[i].tid))
			return ql_error_set(err, ESRCH,
					    "thread %d of vCPU %d is not a thread of qemu",
					    (int)plan->vcpus[i].tid, plan->vcpus[i].cpu_index);
	r = vcpu_set_cpus(plan, &c->mine, err);
	if (r < 0)
		return r;

	/* The root must hand cpuset down; the hierarchy root may hold processes, a delegated
	 * one was checked to be empty in probe. */
	_cleanup_free_ char *sc = NULL;
	r = cg_read(s, NULL, "cgroup.subtree_control", &sc, err);
	if (r < 0)
		return r;
	if (!word_in_list(sc, "cpuset")) {
		r = cg_write(s, NULL, "cgroup.subtree_control", "+cpuset", err);
		if (r < 0)
			return r;
	}
	r = cgroupfs_mkdir(s->root_fd, s->prefix, true, s->log, s->root, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *psc = NULL;
	r = cg_read(s, s->prefix, "cgroup.subtree_control", &psc, err);
	if (r < 0)
		return r;
	if (!word_in_list(psc, "cpuset")) {
		r = cg_write(s, s->prefix, "cgroup.subtree_control", "+cpuset", err);
		if (r < 0)
			return r;
	}

	r = scan_prefix(s, &c->others, &c->n_others, err);
	if (r < 0)
		return r;
	c->prefix_state = cg_partition(s, s->prefix, NULL);
	c->prefix_was_root = c->n_others > 0 && c->prefix_state == PART_ROOT;
	if (c->n_others == 0 && c->prefix_state != PART_MEMBER && c->prefix_state != PART_NONE) {
		/* Left over from VMs that are gone: start from a plain prefix. */
		r = reset_partition(s, s->prefix, err);
		if (r < 0)
			return r;
		c->prefix_state = PART_MEMBER;
	}
	if (c->n_others == 0) {
		/* CPUs a dead partitioned run left on the prefix would limit us: inherit again
		 * ("\n": an empty write might not reach the kernel). */
		_cleanup_free_ char *pc = NULL;
		if (cg_read(s, s->prefix, "cpuset.cpus", &pc, NULL) == 0 && *pc) {
			r = cg_write(s, s->prefix, "cpuset.cpus", "\n", err);
			if (r < 0)
				return r;
		}
	}

	r = read_usable(s, &c->usable, err);
	if (r < 0)
		return r;
	if (!(c->others_vcpus = cpu_list_new(0)) || !(c->others_part = cpu_list_new(0)))
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < c->n_others; i++)
		for (int x = cpu_list_next(c->others[i].vm_cpus, -1); x >= 0;
		     x = cpu_list_next(c->others[i].vm_cpus, x)) {
			if (c->others[i].partition)
				cpu_list_add(c->others_part, (unsigned)x);
		}
	for (size_t i = 0; i < c->n_others; i++)
		for (int x = cpu_list_next(c->others[i].vcpu_cpus, -1); x >= 0;
		     x = cpu_list_next(c->others[i].vcpu_cpus, x))
			cpu_list_add(c->others_vcpus, (unsigned)x);
	_cleanup_cpu_list_ struct cpu_list *busy = cpu_list_dup(c->others_vcpus);
	if (!busy)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (int x = cpu_list_next(c->others_part, -1); x >= 0;
	     x = cpu_list_next(c->others_part, x))
		cpu_list_add(busy, (unsigned)x);
	c->emu = emulator_cpus(plan, c->usable, c->mine, busy);
	if (!c->emu)
		return ql_error_set(err, ENOMEM, "out of memory");
	r = conflicts(c, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < plan->n_vcpus; i++)
		if (!cpu_list_has(c->usable, plan->vcpus[i].host_cpu)) {
			_cleanup_free_ char *u = fmt_cpus(c->usable);
			return ql_error_set(
			    err, EINVAL, "host CPU %u (vCPU %d) is not among the CPUs of %s (%s)",
			    plan->vcpus[i].host_cpu, plan->vcpus[i].cpu_index, s->root, u);
		}
	if (plan->emulator_cpus && (cpu_list_is_empty(plan->emulator_cpus) ||
				    !cpu_list_is_subset(plan->emulator_cpus, c->usable))) {
		_cleanup_free_ char *e = fmt_cpus(plan->emulator_cpus), *u = fmt_cpus(c->usable);
		return ql_error_set(err, EINVAL,
				    "emulator CPUs %s are not among the CPUs of %s (%s)", e,
				    s->root, u);
	}
	if (!plan->emulator_cpus && cpu_list_is_subset(c->emu, c->mine))
		ql_log(s->log, QL_LOG_WARNING,
		       "no CPU is left for qemu's emulator threads: they share the vCPUs' CPUs");
	if (!(c->vm_cpus = cpu_list_dup(c->emu)))
		return ql_error_set(err, ENOMEM, "out of memory");
	for (int x = cpu_list_next(c->mine, -1); x >= 0; x = cpu_list_next(c->mine, x))
		cpu_list_add(c->vm_cpus, (unsigned)x);

	_cleanup_cpu_list_ struct cpu_list *prefix_cpus = NULL;
	bool partitions = false;
	if (c->mode != QL_ISOLATE_FALSE)
		partitions = partitions_possible(c, &prefix_cpus);
	if (c->mode == QL_ISOLATE_TRUE && !partitions)
		return ql_error_set(
		    err, EINVAL, "isolate_cpus: true, but cgroup v2 cannot form CPU partitions: %s",
		    c->why_not ? c->why_not : "unknown reason");
	if (c->prefix_was_root && !partitions) {
		/* A member VM inside a partitioned prefix only gets CPUs the prefix owns. */
		_cleanup_cpu_list_ struct cpu_list *pc = NULL;
		r = cg_read_cpus(s, s->prefix, "cpuset.cpus", &pc, err);
		if (r < 0)
			return r;
		for (int x = cpu_list_next(c->vm_cpus, -1); x >= 0;
		     x = cpu_list_next(c->vm_cpus, x))
			cpu_list_add(pc, (unsigned)x);
		_cleanup_cpu_list_ struct cpu_list *left = cpu_list_dup(c->usable);
		if (!left)
			return ql_error_set(err, ENOMEM, "out of memory");
		cpu_list_subtract(left, pc);
		if (cpu_list_is_empty(left))
			return ql_error_set(err, EBUSY,
					    "cannot place VM `%s` without a partition inside the "
					    "partitioned %s/%s (it would take every CPU of %s); "
					    "set emulator_pinning to CPUs not used by vCPUs",
					    s->vm, s->root, s->prefix, s->root);
		prefix_cpus = TAKE_PTR(pc);
	}

	/* Where qemu lives now, to put it back on release. */
	free(s->origin);
	s->origin = process_cgroup_dir(s, plan->qemu_pid);

	r = cgroupfs_mkdir(s->root_fd, c->vm_rel, false, s->log, s->root, err);
	if (r < 0)
		return r;
	s->created_vm = true;
	s->qemu_pid = plan->qemu_pid;
	char pidtext[16];
	snprintf(pidtext, sizeof(pidtext), "%d", (int)plan->qemu_pid);
	r = cg_write(s, c->vm_rel, "cgroup.procs", pidtext, err);
	if (r < 0)
		return r;

	/* Children: mkdir all, then "threaded" on every one (a domain sibling of a threaded
	 * cgroup reads "domain invalid"), then +cpuset on the VM. */
	_cleanup_free_ char *emu_rel = path_join(c->vm_rel, EMULATOR_SET, NULL);
	if (!emu_rel)
		return ql_error_set(err, ENOMEM, "out of memory");
	r = cgroupfs_mkdir(s->root_fd, emu_rel, false, s->log, s->root, err);
	if (r < 0)
		return r;
	for (int x = cpu_list_next(c->mine, -1); x >= 0; x = cpu_list_next(c->mine, x)) {
		_cleanup_free_ char *name = vcpu_set_rel(c->vm_rel, (unsigned)x);
		if (!name)
			return ql_error_set(err, ENOMEM, "out of memory");
		r = cgroupfs_mkdir(s->root_fd, name, false, s->log, s->root, err);
		if (r < 0)
			return r;
	}
	r = cg_write(s, emu_rel, "cgroup.type", "threaded", err);
	if (r < 0)
		return r;
	for (int x = cpu_list_next(c->mine, -1); x >= 0; x = cpu_list_next(c->mine, x)) {
		_cleanup_free_ char *name = vcpu_set_rel(c->vm_rel, (unsigned)x);
		if (!name)
			return ql_error_set(err, ENOMEM, "out of memory");
		r = cg_write(s, name, "cgroup.type", "threaded", err);
		if (r < 0)
			return r;
	}
	r = cg_write(s, c->vm_rel, "cgroup.subtree_control", "+cpuset", err);
	if (r < 0)
		return r;

	/* CPUs top-down; every set's CPUs before any partition, because a later cpus write into
	 * a member sibling can invalidate an isolated partition for good. */
	if (prefix_cpus) {
		r = write_cpus(s, s->prefix, prefix_cpus, err);
		if (r < 0)
			return r;
	}
	r = write_cpus(s, c->vm_rel, c->vm_cpus, err);
	if (r < 0)
		return r;
	r = write_cpus(s, emu_rel, c->emu, err);
	if (r < 0)
		return r;
	for (int x = cpu_list_next(c->mine, -1); x >= 0; x = cpu_list_next(c->mine, x)) {
		char v[16];
		_cleanup_free_ char *name = vcpu_set_rel(c->vm_rel, (unsigned)x);
		if (!name)
			return ql_error_set(err, ENOMEM, "out of memory");
		snprintf(v, sizeof(v), "%d", x);
		r = cg_write(s, name, "cpuset.cpus", v, err);
		if (r < 0)
			return r;
	}

	if (partitions) {
		_cleanup_free_ char *reason = NULL;
		bool ok = true;
		if (!c->prefix_was_root)
			ok = set_partition(s, s->prefix, "root", &reason, err) == 0;
		if (ok)
			ok = set_partition(s, c->vm_rel, "root", &reason, err) == 0;
		for (int x = cpu_list_next(c->mine, -1); ok && x >= 0;
		     x = cpu_list_next(c->mine, x)) {
			_cleanup_free_ char *name = vcpu_set_rel(c->vm_rel, (unsigned)x);
			if (!name)
				return ql_error_set(err, ENOMEM, "out of memory");
			ok = set_partition(s, name, "isolated", &reason, err) == 0;
		}
		if (!ok) {
			if (!reason)
				return -(err && err->code ? err->code : EIO);
			if (c->mode == QL_ISOLATE_TRUE)
				return ql_error_set(
				    err, EINVAL,
				    "isolate_cpus: true, but the kernel refused the CPU "
				    "partition: %s; give the emulator threads CPUs of "
				    "their own (emulator_pinning) and leave at least one "
				    "CPU outside the VM",
				    reason);
			/* AUTO: undo the partitions bottom-up and keep plain placement. */
			for (int x = cpu_list_next(c->mine, -1); x >= 0;
			     x = cpu_list_next(c->mine, x)) {
				_cleanup_free_ char *name = vcpu_set_rel(c->vm_rel, (unsigned)x);
				if (!name)
					return ql_error_set(err, ENOMEM, "out of memory");
				r = reset_partition(s, name, err);
				if (r < 0)
					return r;
			}
			r = reset_partition(s, c->vm_rel, err);
			if (r >= 0 && !c->prefix_was_root)
				r = reset_partition(s, s->prefix, err);
			if (r < 0)
				return r;
			if (!s->warned)
				ql_log(s->log, QL_LOG_WARNING,
				       "CPU isolation unavailable (%s); vCPUs are pinned without "
				       "keeping other tasks off their CPUs",
				       reason);
			s->warned = true;
			partitions = false;
		}
	} else if (c->mode == QL_ISOLATE_AUTO && !s->warned) {
		ql_log(s->log, QL_LOG_WARNING,
		       "CPU isolation unavailable (%s); vCPUs are pinned without keeping other "
		       "tasks off their CPUs",
		       c->why_not ? c->why_not : "partitions cannot form");
		s->warned = true;
	}
	s->partitioned = partitions;

	/* Threads last: vCPUs to their sets, everything else to emulator. Never cgroup.procs,
	 * which would move every thread. */
	for (size_t i = 0; i < plan->n_vcpus; i++) {
		_cleanup_free_ char *name = vcpu_set_rel(c->vm_rel, plan->vcpus[i].host_cpu);
		if (!name)
			return ql_error_set(err, ENOMEM, "out of memory");
		r = write_tid(s, name, plan->vcpus[i].tid, err);
		if (r < 0)
			return r;
	}
	_cleanup_free_ pid_t *tids = NULL;
	size_t n_tids = 0;
	r = list_tids(plan->qemu_pid, &tids, &n_tids, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_tids; i++) {
		if (is_vcpu_tid(plan, tids[i]))
			continue;
		r = write_tid(s, emu_rel, tids[i], err);
		if (r == -ESRCH)
			continue;
		if (r < 0)
			return r;
	}

	/* Read everything back. A VM partition keeps only what its isolated children leave. */
	r = check_effective(s, c->vm_rel, partitions ? c->emu : c->vm_cpus, err);
	if (r < 0)
		return r;
	r = check_effective(s, emu_rel, c->emu, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < plan->n_vcpus; i++) {
		unsigned cpu = plan->vcpus[i].host_cpu;
		_cleanup_free_ char *name = vcpu_set_rel(c->vm_rel, cpu);
		if (!name)
			return ql_error_set(err, ENOMEM, "out of memory");
		_cleanup_cpu_list_ struct cpu_list *want = cpu_list_new(cpu + 1);
		if (!want || cpu_list_add(want, cpu) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
		r = check_effective(s, name, want, err);
		if (r < 0)
			return r;
		r = check_affinity(plan->vcpus[i].tid, want, err);
		if (r < 0) {
			ql_error_prefix(err, "vCPU %d: ", plan->vcpus[i].cpu_index);
			return r == -ESRCH
				   ? ql_error_set(err, ESRCH, "vCPU %d thread %d vanished",
						  plan->vcpus[i].cpu_index, (int)plan->vcpus[i].tid)
				   : r;
		}
		ql_log(s->log, QL_LOG_DEBUG, "vCPU %d (thread %d) -> host CPU %u%s",
		       plan->vcpus[i].cpu_index, (int)plan->vcpus[i].tid, cpu,
		       partitions ? " (isolated partition)" : "");
	}
	for (size_t i = 0; i < n_tids; i++) {
		if (is_vcpu_tid(plan, tids[i]))
			continue;
		r = check_affinity(tids[i], c->emu, err);
		if (r == -ESRCH)
			continue;
		if (r < 0)
			return r;
	}

	free(s->vcpu_tids);
	s->vcpu_tids = calloc(plan->n_vcpus, sizeof(pid_t));
	if (!s->vcpu_tids)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < plan->n_vcpus; i++)
		s->vcpu_tids[i] = plan->vcpus[i].tid;
	s->n_vcpu_tids = plan->n_vcpus;
	_cleanup_free_ char *emu_text = fmt_cpus(c->emu);
	ql_log(s->log, QL_LOG_INFO, "cgroup v2: %s/%s ready (emulator CPUs %s%s)", s->root,
	       c->vm_rel, emu_text, partitions ? ", vCPU CPUs isolated" : "");
	(void)iso;
	return 0;
}

static int cgroup_v2_apply(struct isolation *iso, const struct isolation_plan *plan,
			   struct ql_error *err)
{
	struct cgroup_v2 *s = state(iso);
	if (!s || s->root_fd < 0)
		return ql_error_set(err, EINVAL, "cgroup v2 backend was not probed");
	struct apply_ctx c = {.s = s, .plan = plan, .mode = iso->cfg.mode};
	if (!(c.vm_rel = path_join(s->prefix, s->vm, NULL)))
		return ql_error_set(err, ENOMEM, "out of memory");
	bool took = iso->lock_fd < 0;
	int r = 0;
	if (took)
		r = isolation_lock(iso, s->root, err);
	if (r >= 0) {
		r = apply_locked(iso, &c, err);
		if (r < 0) {
			/* Undo what this call did (release_locked only touches our own tree). */
			struct ql_error e = {0};
			release_locked(s, &e);
			ql_error_clear(&e);
		}
	}
	if (took && iso->lock_fd >= 0)
		isolation_unlock(iso);
	apply_ctx_done(&c);
	if (r < 0)
		ql_error_prefix(err, "cgroup v2: ");
	return r;
}

/* Moves threads qemu created after apply (and anything that wandered into a vCPU set) to
 * the emulator set. */
static int cgroup_v2_rescan(struct isolation *iso, struct ql_error *err)
{
	struct cgroup_v2 *s = state(iso);
	if (!s || s->qemu_pid <= 0 || !s->n_vcpu_tids)
		return 0;
	_cleanup_free_ char *emu_rel = NULL;
	if (asprintf(&emu_rel, "%s/%s/%s", s->prefix, s->vm, EMULATOR_SET) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_free_ char *suffix = NULL;
	if (asprintf(&suffix, "/%s/%s/%s", s->prefix, s->vm, EMULATOR_SET) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_free_ pid_t *tids = NULL;
	size_t n = 0;
	int r = list_tids(s->qemu_pid, &tids, &n, err);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	for (size_t i = 0; i < n; i++) {
		bool vcpu = false;
		for (size_t k = 0; k < s->n_vcpu_tids; k++)
			vcpu |= s->vcpu_tids[k] == tids[i];
		if (vcpu)
			continue;
		char p[96], line[PATH_MAX + 16];
		snprintf(p, sizeof(p), "/proc/%d/task/%d/cgroup", (int)s->qemu_pid, (int)tids[i]);
		FILE *f = fopen(p, "re");
		if (!f)
			continue;
		bool in_emu = false;
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = '\0';
			size_t ll = strlen(line), sl = strlen(suffix);
			if (strncmp(line, "0::", 3) == 0 && ll >= sl &&
			    streq(line + ll - sl, suffix))
				in_emu = true;
		}
		fclose(f);
		if (in_emu)
			continue;
		r = write_tid(s, emu_rel, tids[i], err);
		if (r < 0 && r != -ESRCH)
			return r;
	}
	return 0;
}

static void cgroup_v2_free_state(void *p)
{
	struct cgroup_v2 *s = p;
	if (!s)
		return;
	if (s->root_fd >= 0)
		close(s->root_fd);
	free(s->root);
	free(s->origin);
	free(s->vcpu_tids);
	free(s);
}

const struct isolation_backend isolation_backend_cgroup_v2 = {
    .kind = ISOLATION_CGROUP_V2,
    .probe = cgroup_v2_probe,
    .usable_cpus = cgroup_v2_usable_cpus,
    .describe = cgroup_v2_describe,
    .apply = cgroup_v2_apply,
    .rescan = cgroup_v2_rescan,
    .release = cgroup_v2_release,
    .free_state = cgroup_v2_free_state,
};
