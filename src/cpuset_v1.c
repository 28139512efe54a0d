/* Isolation backend "cpuset v1" (the specification's design): M/<prefix>/pool holds every other
 * task on the unpinned CPUs, M/<prefix>/<vm>/cpuN holds only the vCPU thread(s) of host CPU N.
 * The per-VM directory records ownership in the kernel itself, so conflicts name the VM and a
 * killed launcher's sets (no tasks left) are reclaimed by the next start. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroupfs.h"
#include "cgroup_inspect.h"
#include "cpuset_v1_plan.h"
#include "isolation_backend.h"
#include "macro.h"
#include "mount_of.h"
#include "names.h"
#include "proc.h"
#include "readfile.h"

/* Bound on /proc/self/mountinfo: a host running thousands of containers has a few MiB. */
#define MOUNTINFO_MAX (16u << 20)
/* The source of the mounts we make: whichever launcher releases the last VM recognises them in
 * mountinfo and unmounts, also when another launcher (maybe a killed one) mounted. */
#define MOUNT_SOURCE "qemu-launcher"

struct cpuset_v1_state {
	const struct isolation_config *cfg;
	const struct ql_logger *log;
	char *mount_path;    /* M, canonical */
	char *requested;     /* the mount path asked for, when M is the host's hierarchy instead */
	char *p_disp;	     /* M/<prefix>, for messages */
	bool delegated;	     /* M is below the hierarchy root */
	bool need_mount;     /* M is not a cpuset mount yet; apply mounts it */
	bool mounted;	     /* we mounted M: umount on release */
	bool launcher_mount; /* M was mounted by another launcher (source MOUNT_SOURCE) */
	bool created_mount_dir;
	bool touched;	 /* apply changed something; release has work to do */
	bool vm_created; /* P/<vm> is ours (never remove a running twin's sets) */
	ino_t vm_ino;	 /* ... the one this launcher made (a namesake may replace it) */

	pid_t qemu_pid;
	struct vcpu_placement *vcpus;
	size_t n_vcpus;
	struct cpu_list *emulator; /* NULL: qemu's other threads stay in pool */
	bool prepared;		   /* prepare is done; plan says what it made */
	struct v1_plan plan;
	int warm_fd; /* qemu's start set's tasks file from prepare to place (keep_warm), or -1 */
};

/* ---- names and mountinfo ---- */

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_mountinfo(char *s)
{
	char *out = s;
	for (char *in = s; *in; in++) {
		if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' &&
		    in[3] >= '0' && in[3] <= '7') {
			*out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
			in += 3;
		} else {
			*out++ = *in;
		}
	}
	*out = '\0';
}

static bool option_present(const char *opts, const char *opt)
{
	size_t len = strlen(opt);
	for (const char *p = opts; p && *p;) {
		size_t n = strcspn(p, ",");
		if (n == len && strncmp(p, opt, len) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

static bool path_is_under(const char *path, const char *mnt)
{
	if (streq(mnt, "/"))
		return true;
	size_t n = strlen(mnt);
	return strncmp(path, mnt, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The mount that holds a path, as mountinfo tells (owned strings: this sits in the probe's stack
 * frame, where PATH_MAX arrays cost a fresh stack page each). */
struct mount_match {
	char *mountpoint;
	char fstype[64];
	char source[64];
	bool has_cpuset;
	bool cgroup2_with_cpuset; /* some cgroup2 mount offers cpuset: v1 mounting would fail (only
				   * found when asked) */
	/* where the cpuset v1 hierarchy's root is mounted already, or NULL: mounting it anywhere
	 * else gives that same hierarchy (the kernel has one per controller) */
	char *cpuset_root;
};

static void mount_match_done(struct mount_match *m)
{
	free(m->mountpoint);
	free(m->cpuset_root);
	*m = (struct mount_match){0};
}

/* Whether the cgroup2 hierarchy mounted at mp offers the cpuset controller. */
static bool cgroup2_offers_cpuset(const char *mp)
{
	_cleanup_free_ char *ctl = NULL, *text = NULL;
	if (asprintf(&ctl, "%s/cgroup.controllers", mp) < 0 ||
	    read_small_file(AT_FDCWD, ctl, 0, 4096, &text, NULL) < 0)
		return false;
	char *save = NULL;
	for (char *w = strtok_r(text, " \n", &save); w; w = strtok_r(NULL, " \n", &save))
		if (streq(w, "cpuset"))
			return true;
	return false;
}

/* A path on a cpuset v1 hierarchy (the usual case) needs nothing else of the mount table: its
 * one mount, asked of the kernel (statmount). -1 when that mount is not one, or the kernel cannot
 * tell: mountinfo then. */
static int cpuset_v1_mount_of(const char *path, struct mount_match *ret)
{
	_cleanup_(mount_of_done) struct mount_of m = {0};
	if (mount_of(path, &m) < 0 || !streq(m.fstype, "cgroup") ||
	    !option_present(m.options, "cpuset"))
		return -1;
	*ret = (struct mount_match){.mountpoint = TAKE_PTR(m.mountpoint), .has_cpuset = true};
	snprintf(ret->fstype, sizeof(ret->fstype), "%s", m.fstype);
	snprintf(ret->source, sizeof(ret->source), "%s", m.source);
	return 0;
}

/* Finds the mount containing path (longest mount point prefix; later lines win ties, they are
 * mounted on top). With `cgroup2`, also whether a cgroup2 mount offers cpuset (a file more to
 * read per cgroup2 mount: only a launcher about to mount asks). */
static int find_mount(const char *path, bool cgroup2, struct mount_match *ret, struct ql_error *err)
{
	/* cpuset_root and cgroup2_with_cpuset are only read of a path on no cpuset mount */
	if (!cgroup2 && cpuset_v1_mount_of(path, ret) == 0)
		return 0;
	/* In one read, not in stdio's 1 KiB steps (the table costs the kernel ~2 us a line to
	 * write: 48 us for 25 mounts on the bench host, before qemu is spawned). */
	_cleanup_free_ char *table = NULL;
	int r = read_small_file(AT_FDCWD, "/proc/self/mountinfo", 0, MOUNTINFO_MAX, &table, NULL);
	if (r < 0)
		return ql_error_set_errno(err, -r, "reading /proc/self/mountinfo");
	_cleanup_(mount_match_done) struct mount_match best = {0};
	size_t best_len = 0;
	for (char *line = table, *next; line && *line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		/* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
		char *save = NULL, *tok[5] = {0};
		char *p = line;
		size_t i;
		for (i = 0; i < 5; i++, p = NULL)
			if (!(tok[i] = strtok_r(p, " ", &save)))
				break;
		if (i < 5)
			continue;
		char *fstype = NULL, *superopts = NULL, *t;
		while ((t = strtok_r(NULL, " \n", &save)))
			if (streq(t, "-"))
				break;
		fstype = strtok_r(NULL, " \n", &save);
		char *source = strtok_r(NULL, " \n", &save);
		superopts = strtok_r(NULL, " \n", &save);
		if (!fstype)
			continue;
		char *mp = tok[4];
		unescape_mountinfo(mp);
		bool cpuset = superopts && option_present(superopts, "cpuset");
		if (cgroup2 && streq(fstype, "cgroup2") && cgroup2_offers_cpuset(mp))
			best.cgroup2_with_cpuset = true;
		size_t len = strlen(mp);
		if (streq(fstype, "cgroup") && cpuset && streq(tok[3], "/") && !best.cpuset_root &&
		    !(best.cpuset_root = strdup(mp)))
			return ql_error_set(err, ENOMEM, "out of memory");
		if (path_is_under(path, mp) && len >= best_len) {
			best_len = len;
			free(best.mountpoint);
			if (!(best.mountpoint = strdup(mp)))
				return ql_error_set(err, ENOMEM, "out of memory");
			snprintf(best.fstype, sizeof(best.fstype), "%s", fstype);
			snprintf(best.source, sizeof(best.source), "%s", source ? source : "");
			best.has_cpuset = streq(fstype, "cgroup") && cpuset;
		}
	}
	if (!best.mountpoint)
		return ql_error_set(err, ENOENT, "no mount contains `%s`", path);
	*ret = best;
	best = (struct mount_match){0};
	return 0;
}

static bool dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return false;
	struct dirent *de;
	bool empty = true;
	while ((de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
			empty = false;
			break;
		}
	closedir(d);
	return empty;
}

/* The canonical form of M, also when M itself does not exist yet (its parent must). */
static int canonical_mount_path(const char *path, char **ret, struct ql_error *err)
{
	char *real = realpath(path, NULL);
	if (real) {
		*ret = real;
		return 0;
	}
	if (errno != ENOENT)
		return ql_error_set_errno(err, errno, "resolving `%s`", path);
	_cleanup_free_ char *copy = strdup(path);
	if (!copy)
		return ql_error_set(err, ENOMEM, "out of memory");
	char *slash = strrchr(copy, '/');
	if (!slash || !slash[1])
		return ql_error_set(err, EINVAL, "`%s` is not a usable cpuset mount path", path);
	*slash = '\0';
	_cleanup_free_ char *parent = realpath(*copy ? copy : "/", NULL);
	if (!parent)
		return ql_error_set_errno(err, errno, "resolving the parent of `%s`", path);
	if (asprintf(ret, "%s/%s", streq(parent, "/") ? "" : parent, slash + 1) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	return 0;
}

/* ---- probe ---- */

static void cpuset_v1_free_state(void *p)
{
	struct cpuset_v1_state *s = p;
	if (!s)
		return;
	closep(&s->warm_fd);
	free(s->mount_path);
	free(s->requested);
	free(s->p_disp);
	free(s->vcpus);
	cpu_list_free(s->emulator);
	v1_plan_done(&s->plan);
	free(s);
}

static int cpuset_v1_probe(const struct isolation_config *cfg, void **ret_state,
			   struct ql_error *err)
{
	if (!cfg->vm_name || !vm_name_is_valid(cfg->vm_name) ||
	    cgroup_name_is_reserved(cfg->vm_name))
		return ql_error_set(err, EINVAL, "VM name `%s` cannot name a cpuset directory",
				    cfg->vm_name ? cfg->vm_name : "");
	if (!cgroup_prefix_is_valid(cfg->prefix))
		return ql_error_set(err, EINVAL,
				    "cpuset prefix `%s` must be one plain directory name",
				    cfg->prefix);

	_cleanup_free_ char *m = NULL;
	int r = canonical_mount_path(cfg->mount_path, &m, err);
	if (r < 0)
		return r;
	_cleanup_(mount_match_done) struct mount_match mm = {0};
	r = find_mount(m, false, &mm, err);
	if (r < 0)
		return r;

	bool need_mount = false, delegated = false, s_launcher_mount = false;
	_cleanup_free_ char *requested = NULL;
	struct stat st;
	bool exists = stat(m, &st) == 0;
	if (mm.has_cpuset) {
		if (!exists || !S_ISDIR(st.st_mode))
			return ql_error_set(
			    err, ENOENT,
			    "`%s` does not exist in the cpuset hierarchy mounted at "
			    "`%s`",
			    m, mm.mountpoint);
		delegated = !streq(m, mm.mountpoint);
	} else if (streq(mm.fstype, "cgroup") || streq(mm.fstype, "cgroup2")) {
		return ql_error_set(err, ENOTSUP,
				    "`%s` is on a %s hierarchy without the cpuset controller", m,
				    streq(mm.fstype, "cgroup2") ? "cgroup2" : "cgroup v1");
	} else if (mm.cpuset_root && (!exists || (S_ISDIR(st.st_mode) && dir_is_empty(m)))) {
		/* Mounting here would give the host's live hierarchy under another name (and
		 * another lock): use it where it is, as the host's. */
		ql_log(cfg->log, QL_LOG_INFO,
		       "`%s`: the cpuset hierarchy is already mounted at `%s`; using it there", m,
		       mm.cpuset_root);
		if (!(requested = strdup(m)))
			return ql_error_set(err, ENOMEM, "out of memory");
		free(m);
		if (!(m = strdup(mm.cpuset_root)))
			return ql_error_set(err, ENOMEM, "out of memory");
		s_launcher_mount = streq(mm.source, MOUNT_SOURCE) && streq(mm.mountpoint, m);
	} else {
		if (exists && (!S_ISDIR(st.st_mode) || !dir_is_empty(m)))
			return ql_error_set(err, ENOTSUP,
					    "`%s` is neither a cpuset mount nor an empty directory",
					    m);
		if (!cfg->may_mount)
			return ql_error_set(err, EPERM,
					    "`%s` is not a cpuset mount and mounting there is not "
					    "allowed",
					    m);
		_cleanup_(mount_match_done) struct mount_match all = {0};
		if (find_mount(m, true, &all, NULL) == 0 && all.cgroup2_with_cpuset)
			return ql_error_set(
			    err, ENOTSUP,
			    "the cpuset controller is bound to cgroup v2; it cannot be "
			    "mounted as cpuset v1 at `%s`",
			    m);
		need_mount = true;
	}

	struct cpuset_v1_state *s = calloc(1, sizeof(*s));
	if (!s)
		return ql_error_set(err, ENOMEM, "out of memory");
	s->warm_fd = -1;
	s->need_mount = need_mount;
	s->delegated = delegated;
	s->launcher_mount =
	    s_launcher_mount || (mm.has_cpuset && !delegated && streq(mm.source, MOUNT_SOURCE));
	s->requested = TAKE_PTR(requested);
	if (asprintf(&s->p_disp, "%s/%s", m, cfg->prefix) < 0) {
		free(s);
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	s->mount_path = TAKE_PTR(m);
	s->cfg = cfg;
	s->log = cfg->log;
	*ret_state = s;
	return 0;
}

/* Every launcher using this mount path locks its parent: it exists before we mount there, and
 * it is the same however the path was spelled (mount_path is canonical). */
static int cpuset_v1_lock_dir(void *state, char **ret, struct ql_error *err)
{
	struct cpuset_v1_state *s = state;
	const char *slash = strrchr(s->mount_path, '/');
	*ret = slash == s->mount_path ? strdup("/")
				      : strndup(s->mount_path, (size_t)(slash - s->mount_path));
	if (!*ret)
		return ql_error_set(err, ENOMEM, "out of memory");
	return 0;
}

static int cpuset_v1_usable_cpus(void *state, struct cpu_list **ret, struct ql_error *err)
{
	struct cpuset_v1_state *s = state;
	/* A fresh mount shows the hierarchy root, which always spans every online CPU. */
	if (s->need_mount)
		return cpu_list_read_file("/sys/devices/system/cpu/online", ret, err);
	_cleanup_close_ int mfd = -1;
	int r = cgroupfs_open_dir(s->mount_path, &mfd, err);
	if (r < 0)
		return r;
	return cgroupfs_read_cpus(mfd, "cpuset.cpus", ret, err);
}

static char *cpuset_v1_describe(void *state, const struct isolation_plan *plan)
{
	struct cpuset_v1_state *s = state;
	const char *vm = s->cfg->vm_name;
	_cleanup_cpu_list_ struct cpu_list *mine = cpu_list_new(64);
	if (!mine)
		return NULL;
	for (size_t i = 0; i < plan->n_vcpus; i++)
		if (cpu_list_add(mine, plan->vcpus[i].host_cpu) < 0)
			return NULL;
	/* the VM's set holds both, as one list the kernel would print (not "1,0" nor ",1") */
	_cleanup_cpu_list_ struct cpu_list *vm_cpus = cpu_list_dup(mine);
	if (!vm_cpus || (plan->emulator_cpus && cpu_list_merge(vm_cpus, plan->emulator_cpus) < 0))
		return NULL;
	_cleanup_free_ char *mine_text =
	    cpu_list_is_empty(mine) ? strdup("(none)") : cpu_list_format(mine);
	_cleanup_free_ char *vm_text = cpu_list_format(vm_cpus);
	_cleanup_free_ char *emu_text =
	    plan->emulator_cpus ? cpu_list_format(plan->emulator_cpus) : NULL;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	if (s->requested)
		fprintf(f,
			"%s would mount the host's cpuset hierarchy, already mounted at %s: "
			"that is used\n",
			s->requested, s->mount_path);
	fprintf(f, "cpuset v1 at %s%s%s\n", s->mount_path,
		s->need_mount ? " (the cpuset hierarchy gets mounted there)" : "",
		s->delegated ? " (delegated subtree: only its own tasks move)" : "");
	fprintf(f, "  %s  cpus and mems of %s\n", s->p_disp, s->mount_path);
	fprintf(f, "  %s/pool  every other task of %s; all its CPUs except pinned vCPU CPUs %s\n",
		s->p_disp, s->mount_path, mine_text ? mine_text : "");
	fprintf(f, "  %s/%s  cpus %s\n", s->p_disp, vm, vm_text ? vm_text : "");
	for (int c = cpu_list_next(mine, -1); c >= 0; c = cpu_list_next(mine, c)) {
		fprintf(f, "  %s/%s/cpu%d  cpus %d: vCPU", s->p_disp, vm, c, c);
		for (size_t i = 0; i < plan->n_vcpus; i++)
			if (plan->vcpus[i].host_cpu == (unsigned)c && plan->vcpus[i].cpu_index >= 0)
				fprintf(f, " %d", plan->vcpus[i].cpu_index);
		fprintf(f, " thread(s)\n");
	}
	if (emu_text)
		fprintf(f, "  %s/%s/emulator  cpus %s: qemu's other threads\n", s->p_disp, vm,
			emu_text);
	else
		fprintf(f, "  qemu's other threads stay in %s/pool\n", s->p_disp);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* ---- helpers on the tree ---- */

/* Subdirectories of dirfd/rel (names, NULL-terminated). */
static int list_subdirs(int dirfd, const char *rel, char ***ret, struct ql_error *err)
{
	int fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return ql_error_set_errno(err, errno, "opening `%s`", rel);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return ql_error_set_errno(err, errno, "listing `%s`", rel);
	}
	size_t n = 0;
	_cleanup_strv_free_ char **names = calloc(1, sizeof(char *));
	if (!names) {
		closedir(d);
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		char **nn = reallocarray(names, n + 2, sizeof(char *));
		if (!nn) {
			closedir(d);
			return ql_error_set(err, ENOMEM, "out of memory");
		}
		names = nn;
		if (!(names[n] = strdup(de->d_name))) {
			closedir(d);
			return ql_error_set(err, ENOMEM, "out of memory");
		}
		names[++n] = NULL;
	}
	closedir(d);
	*ret = TAKE_PTR(names);
	return 0;
}

static char *join(const char *a, const char *b)
{
	char *out = NULL;
	if (asprintf(&out, "%s/%s", a, b) < 0)
		return NULL;
	return out;
}

/* <vm>/cpu<N>[/file], allocated (no name is too long for it). */
static char *vcpu_set_file(const char *vm, unsigned cpu, const char *file)
{
	char *s = NULL;
	if (asprintf(&s, "%s/cpu%u%s%s", vm, cpu, file ? "/" : "", file ? file : "") < 0)
		return NULL;
	return s;
}

/* Tasks in dirfd/rel and in its direct subdirectories (a VM's set and its cpuN/emulator). */
static int count_subtree_tasks(int dirfd, const char *rel, size_t *ret, struct ql_error *err)
{
	size_t total = 0, n = 0;
	_cleanup_free_ char *tasks = join(rel, "tasks");
	_cleanup_free_ pid_t *pids = NULL;
	if (!tasks)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = cgroupfs_read_pids(dirfd, tasks, &pids, &n, err);
	if (r < 0)
		return r;
	total += n;
	_cleanup_strv_free_ char **children = NULL;
	r = list_subdirs(dirfd, rel, &children, err);
	if (r < 0)
		return r;
	for (char **c = children; *c; c++) {
		_cleanup_free_ char *sub = join(rel, *c);
		_cleanup_free_ char *subtasks = sub ? join(sub, "tasks") : NULL;
		_cleanup_free_ pid_t *sp = NULL;
		if (!subtasks)
			return ql_error_set(err, ENOMEM, "out of memory");
		r = cgroupfs_read_pids(dirfd, subtasks, &sp, &n, err);
		if (r < 0)
			return r;
		total += n;
	}
	*ret = total;
	return 0;
}

/* Removes dirfd/rel and its direct subdirectories. */
static int remove_subtree(int dirfd, const char *rel, const struct ql_logger *log, const char *disp,
			  struct ql_error *err)
{
	_cleanup_strv_free_ char **children = NULL;
	int r = list_subdirs(dirfd, rel, &children, err);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	for (char **c = children; *c; c++) {
		_cleanup_free_ char *sub = join(rel, *c);
		if (!sub)
			return ql_error_set(err, ENOMEM, "out of memory");
		r = cgroupfs_rmdir(dirfd, sub, log, disp, err);
		if (r < 0)
			return r;
	}
	return cgroupfs_rmdir(dirfd, rel, log, disp, err);
}

static int write_cpus(int dirfd, const char *rel, const struct cpu_list *cpus,
		      const struct ql_logger *log, const char *disp, struct ql_error *err)
{
	_cleanup_free_ char *text = cpu_list_format(cpus);
	_cleanup_free_ char *file = join(rel, "cpuset.cpus");
	if (!text || !file)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = cgroupfs_write(dirfd, file, text, log, disp, err);
	if (r < 0)
		return r;
	_cleanup_cpu_list_ struct cpu_list *back = NULL;
	r = cgroupfs_read_cpus(dirfd, file, &back, err);
	if (r < 0)
		return r;
	if (!cpu_list_equal(back, cpus)) {
		_cleanup_free_ char *got = cpu_list_format(back);
		return ql_error_set(err, EIO, "`%s/%s` reads back `%s` after writing `%s`", disp,
				    file, got ? got : "?", text);
	}
	return 0;
}

/* cpus then mems (a set with empty mems refuses tasks with ENOSPC). */
static int configure_set(int dirfd, const char *rel, const struct cpu_list *cpus, const char *mems,
			 const struct ql_logger *log, const char *disp, struct ql_error *err)
{
	int r = write_cpus(dirfd, rel, cpus, log, disp, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *file = join(rel, "cpuset.mems");
	if (!file)
		return ql_error_set(err, ENOMEM, "out of memory");
	return cgroupfs_write(dirfd, file, mems, log, disp, err);
}

/* A new set: one that exists already is an error (EEXIST). */
static int make_set(int dirfd, const char *rel, const struct cpu_list *cpus, const char *mems,
		    const struct ql_logger *log, const char *disp, struct ql_error *err)
{
	int r = cgroupfs_mkdir(dirfd, rel, false, log, disp, err);
	return r < 0 ? r : configure_set(dirfd, rel, cpus, mems, log, disp, err);
}

static bool pid_in(const pid_t *pids, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

/* After placing tid into set rel: the kernel must list it there and its allowed CPUs must be
 * within the set's, not none. Within, not equal: since Linux 6.2 a task keeps the mask its own
 * sched_setaffinity asked for across fork, exec and moves, and gets the set's CPUs narrowed to
 * it; qemu inherits a launcher's (systemd's CPUAffinity=, taskset), and its threads then stay
 * on those CPUs of the set, still off every other VM's and this one's vCPU CPUs. */
static int verify_placement(int dirfd, const char *rel, pid_t pid, pid_t tid,
			    const struct cpu_list *cpus, const char *disp, struct ql_error *err)
{
	_cleanup_free_ char *tasks = join(rel, "tasks");
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	if (!tasks)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = cgroupfs_read_pids(dirfd, tasks, &pids, &n, err);
	if (r < 0)
		return r;
	if (!pid_in(pids, n, tid))
		return ql_error_set(err, EIO, "thread %d is not listed in `%s/%s` after moving it",
				    (int)tid, disp, tasks);
	_cleanup_cpu_list_ struct cpu_list *allowed = NULL;
	r = proc_thread_affinity(tid, &allowed, err);
	if (r == -ESRCH)
		return ql_error_set(err, ESRCH, "thread %d of %d is gone", (int)tid, (int)pid);
	if (r < 0)
		return r;
	if (!cpu_list_is_subset(allowed, cpus) || cpu_list_is_empty(allowed)) {
		_cleanup_free_ char *a = cpu_list_format(allowed), *w = cpu_list_format(cpus);
		return ql_error_set(err, EIO, "thread %d may run on CPUs %s, not %s as `%s/%s`",
				    (int)tid, a ? a : "?", w ? w : "?", disp, rel);
	}
	return 0;
}

/* After all vCPU moves: each thread listed in its cpu<N> set and allowed exactly CPU N. Reads a
 * set's tasks file once per run of vCPUs sharing it, and affinity by syscall, so pinning many
 * vCPUs stays linear (one re-read per vCPU made 64 vCPUs on one CPU quadratic). */
static int verify_vcpus(int dirfd, const char *vm, const struct vcpu_placement *vcpus, size_t n,
			const char *disp, struct ql_error *err)
{
	_cleanup_free_ pid_t *pids = NULL;
	size_t n_pids = 0;
	long listed_cpu = -1;
	_cleanup_cpu_list_ struct cpu_list *allowed = cpu_list_new(CPU_LIST_MAX_CPUS);
	if (!allowed)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct vcpu_placement *v = &vcpus[i];
		_cleanup_free_ char *tasks = vcpu_set_file(vm, v->host_cpu, "tasks");
		if (!tasks)
			return ql_error_set(err, ENOMEM, "out of memory");
		if (listed_cpu != (long)v->host_cpu) {
			free(TAKE_PTR(pids));
			int r = cgroupfs_read_pids(dirfd, tasks, &pids, &n_pids, err);
			if (r < 0)
				return r;
			listed_cpu = v->host_cpu;
		}
		if (!pid_in(pids, n_pids, v->tid))
			return ql_error_set(
			    err, EIO,
			    "pinning vCPU %d: thread %d is not listed in `%s/%s` after "
			    "moving it",
			    v->cpu_index, (int)v->tid, disp, tasks);
		if (sched_getaffinity(v->tid, allowed->nbytes, allowed->set) < 0)
			return ql_error_set_errno(err, errno, "reading the affinity of thread %d",
						  (int)v->tid);
		if (cpu_list_count(allowed) != 1 || !cpu_list_has(allowed, v->host_cpu)) {
			_cleanup_free_ char *a = cpu_list_format(allowed);
			return ql_error_set(
			    err, EIO, "pinning vCPU %d: thread %d may run on CPUs %s, not only %u",
			    v->cpu_index, (int)v->tid, a ? a : "?", v->host_cpu);
		}
	}
	return 0;
}

static int write_pid(int dirfd, const char *file, pid_t pid, const struct ql_logger *log,
		     const char *disp, struct ql_error *err)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	return cgroupfs_write(dirfd, file, buf, log, disp, err);
}

/* Moves the tasks pids lists into to_file one id per write, tolerating kernel threads that
 * refuse (EINVAL) and tasks that exited (ESRCH). Only a summary is logged: M may hold hundreds
 * of tasks. */
static int move_tasks(const pid_t *pids, size_t n, int to_fd, const char *to_file,
		      const struct ql_logger *log, const char *what, struct ql_error *err)
{
	size_t moved = 0, refused = 0, vanished = 0, failed = 0;
	int first_failure = 0;
	if (n == 0)
		return 0;
	_cleanup_close_ int fd = -1; /* one open for the burst: the kernel takes one id per write */
	int r = cgroupfs_open_file(to_fd, to_file, &fd, NULL, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct ql_error e = {0};
		char id[24];
		snprintf(id, sizeof(id), "%d", (int)pids[i]);
		r = cgroupfs_write_fd(fd, to_file, id, NULL, NULL, &e);
		ql_error_clear(&e);
		if (r == 0)
			moved++;
		else if (r == -EINVAL)
			refused++;
		else if (r == -ESRCH)
			vanished++;
		else if (failed++ == 0)
			first_failure = r;
	}
	ql_log(log, QL_LOG_DEBUG,
	       "%s: moved %zu tasks, %zu kernel threads refused, %zu vanished, %zu failed", what,
	       moved, refused, vanished, failed);
	/* a task the kernel keeps where it was (a security module's EPERM, a deadline task's
	 * EBUSY) stays on CPUs this run may give a vCPU: said, not hidden in -d */
	if (failed)
		ql_log(log, QL_LOG_WARNING,
		       "%s: %zu of %zu tasks could not be moved (%s): they stay where they were",
		       what, failed, n, strerror(-first_failure));
	return 0;
}

/* Every task listed in from_file to to_file (move_tasks). */
static int move_all_tasks(int from_fd, const char *from_file, int to_fd, const char *to_file,
			  const struct ql_logger *log, const char *what, struct ql_error *err)
{
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	int r = cgroupfs_read_pids(from_fd, from_file, &pids, &n, err);
	return r < 0 ? r : move_tasks(pids, n, to_fd, to_file, log, what, err);
}

/* Parses "cpuN". */
static int cpu_dir_number(const char *name)
{
	if (strncmp(name, "cpu", 3) != 0 || !name[3])
		return -1;
	char *end;
	errno = 0;
	long v = strtol(name + 3, &end, 10);
	if (errno || *end || v < 0 || v >= CPU_LIST_MAX_CPUS || name[3] == '+' || name[3] == '-')
		return -1;
	return (int)v;
}

/* The cpuN sets and the emulator set of one live VM into o. */
static int record_vm(int pfd, const char *name, struct v1_others *o, struct ql_error *err)
{
	_cleanup_strv_free_ char **children = NULL;
	int r = list_subdirs(pfd, name, &children, err);
	if (r < 0)
		return r;
	for (char **c = children; *c; c++) {
		int cpu = cpu_dir_number(*c);
		if (cpu >= 0 && v1_others_add(o, name, (unsigned)cpu, false) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
		if (!streq(*c, "emulator"))
			continue;
		_cleanup_free_ char *set = join(name, "emulator");
		_cleanup_free_ char *file = set ? join(set, "cpuset.cpus") : NULL;
		_cleanup_cpu_list_ struct cpu_list *emu = NULL;
		if (!file)
			return ql_error_set(err, ENOMEM, "out of memory");
		/* gone meanwhile (that VM ended): nothing to record */
		if (cgroupfs_read_cpus(pfd, file, &emu, NULL) < 0)
			continue;
		for (int e = cpu_list_next(emu, -1); e >= 0; e = cpu_list_next(emu, e))
			if (v1_others_add(o, name, (unsigned)e, true) < 0)
				return ql_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

/* Looks at every VM set in P: reclaims those without tasks (their launcher was killed) and
 * records the CPUs of live ones. */
static int scan_vms(struct cpuset_v1_state *s, int pfd, struct v1_others *o, struct ql_error *err)
{
	if (v1_others_init(o) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_strv_free_ char **names = NULL;
	int r = list_subdirs(pfd, ".", &names, err);
	for (char **name = names; r == 0 && *name; name++) {
		if (streq(*name, "pool"))
			continue;
		size_t ntasks = 0;
		r = count_subtree_tasks(pfd, *name, &ntasks, err);
		if (r == 0 && ntasks == 0) {
			ql_log(s->log, QL_LOG_INFO,
			       "reclaiming the cpusets of VM `%s` (no tasks left; its launcher did "
			       "not clean up)",
			       *name);
			r = remove_subtree(pfd, *name, s->log, s->p_disp, err);
			continue;
		}
		/* a running twin of our VM still owns its CPUs (planning refuses to start then) */
		if (r == 0 && streq(*name, s->cfg->vm_name))
			o->ours_running = true;
		if (r == 0)
			r = record_vm(pfd, *name, o, err);
		if (r == 0)
			o->live++;
	}
	if (r < 0)
		v1_others_done(o);
	return r;
}

/* ---- mount ---- */

static int mount_hierarchy(struct cpuset_v1_state *s, struct ql_error *err)
{
	if (mkdir(s->mount_path, 0755) == 0) {
		s->created_mount_dir = true;
		ql_log(s->log, QL_LOG_DEBUG, "mkdir %s", s->mount_path);
	} else if (errno != EEXIST) {
		return ql_error_set_errno(err, errno, "creating `%s`", s->mount_path);
	}
	if (mount(MOUNT_SOURCE, s->mount_path, "cgroup", 0, "cpuset") < 0) {
		int e = errno;
		if (s->created_mount_dir && rmdir(s->mount_path) == 0)
			s->created_mount_dir = false;
		if (e == EBUSY)
			return ql_error_set(err, e,
					    "mounting the cpuset hierarchy at `%s`: the cpuset "
					    "controller is in use by another hierarchy (EBUSY)",
					    s->mount_path);
		return ql_error_set_errno(err, e, "mounting the cpuset hierarchy at `%s`",
					  s->mount_path);
	}
	s->mounted = true;
	ql_log(s->log, QL_LOG_DEBUG, "mount -t cgroup -o cpuset %s %s", MOUNT_SOURCE,
	       s->mount_path);
	return 0;
}

/* Sets below M other than ours: another prefix's (QEMU_LAUNCHER_CPUSET_PREFIX), or anyone's. */
static bool mount_has_sets(const char *mount_path)
{
	_cleanup_close_ int fd = -1;
	return cgroupfs_open_dir(mount_path, &fd, NULL) == 0 && cgroupfs_subdirs(fd, ".") > 0;
}

static void unmount_hierarchy(struct cpuset_v1_state *s)
{
	/* unmounted, a hierarchy with sets stays (detached), its tasks stranded in them */
	if ((s->mounted || s->launcher_mount) && mount_has_sets(s->mount_path)) {
		ql_log(s->log, QL_LOG_INFO, "leaving `%s` mounted: it holds other sets",
		       s->mount_path);
		return;
	}
	if (s->mounted || s->launcher_mount) {
		if (umount2(s->mount_path, 0) == 0) {
			s->mounted = false;
			s->launcher_mount = false;
			ql_log(s->log, QL_LOG_DEBUG, "umount %s", s->mount_path);
		} else {
			ql_log(s->log, QL_LOG_WARNING, "could not unmount `%s`: %s", s->mount_path,
			       strerror(errno));
		}
	}
	if (!s->mounted && s->created_mount_dir && rmdir(s->mount_path) == 0) {
		s->created_mount_dir = false;
		ql_log(s->log, QL_LOG_DEBUG, "rmdir %s", s->mount_path);
	}
}

/* ---- release ---- */

/* qemu was reaped: no thread of it is left to move (kill(2) also finds a zombie). */
static bool qemu_reaped(const struct cpuset_v1_state *s)
{
	return s->qemu_pid <= 0 || (kill(s->qemu_pid, 0) < 0 && errno == ESRCH);
}

/* After a normal run (qemu reaped, the sets known from prepare): removes them without listing
 * or reading anything. False when that did not work, to do it the long way. */
static bool remove_known_sets(struct cpuset_v1_state *s, int pfd)
{
	const char *vm = s->cfg->vm_name;
	if (!s->plan.vcpus || !qemu_reaped(s))
		return false;
	for (int c = cpu_list_next(s->plan.vcpus, -1); c >= 0;
	     c = cpu_list_next(s->plan.vcpus, c)) {
		_cleanup_free_ char *rel = vcpu_set_file(vm, (unsigned)c, NULL);
		if (!rel || cgroupfs_rmdir(pfd, rel, s->log, s->p_disp, NULL) < 0)
			return false;
	}
	_cleanup_free_ char *emu = s->emulator ? join(vm, "emulator") : NULL;
	if (s->emulator && (!emu || cgroupfs_rmdir(pfd, emu, s->log, s->p_disp, NULL) < 0))
		return false;
	return cgroupfs_rmdir(pfd, vm, s->log, s->p_disp, NULL) == 0;
}

/* qemu's remaining threads (alive or not yet reaped) leave our sets, then the sets go. */
static int remove_vm_sets(struct cpuset_v1_state *s, int mfd, int pfd, bool have_pool,
			  struct ql_error *err)
{
	const char *vm = s->cfg->vm_name;
	if (remove_known_sets(s, pfd)) {
		s->vm_created = false;
		return 0;
	}
	_cleanup_strv_free_ char **children = NULL;
	_cleanup_free_ char *own = join(vm, "tasks");
	if (own) /* qemu starts in the VM set itself */
		move_all_tasks(pfd, own, have_pool ? pfd : mfd, have_pool ? "pool/tasks" : "tasks",
			       s->log, vm, NULL);
	if (list_subdirs(pfd, vm, &children, NULL) == 0)
		for (char **c = children; *c; c++) {
			_cleanup_free_ char *sub = join(vm, *c);
			_cleanup_free_ char *from = sub ? join(sub, "tasks") : NULL;
			if (!from)
				continue;
			if (have_pool)
				move_all_tasks(pfd, from, pfd, "pool/tasks", s->log, sub, NULL);
			else
				move_all_tasks(pfd, from, mfd, "tasks", s->log, sub, NULL);
		}
	int r = remove_subtree(pfd, vm, s->log, s->p_disp, err);
	if (r == 0)
		s->vm_created = false;
	return r;
}

/* Might P hold a VM set still (ours gone)? With only the pool below P there is nothing to list:
 * the end of the last VM, its teardown spared a listing (about 40 us on a slow host,
 * bench/RESULTS.md). */
static bool may_hold_vm_sets(int pfd, bool have_pool)
{
	return cgroupfs_subdirs(pfd, ".") != (have_pool ? 1 : 0);
}

/* The last VM is gone: the pool's tasks go back to M and the pool is removed. A task may be
 * forked into the pool while we move: the moves repeat while the rmdir finds tasks, and before a
 * pool with tasks is emptied it gets P's CPUs back, so a task that still stays is not left on
 * the pool's narrowed CPUs. */
static int empty_pool(struct cpuset_v1_state *s, int mfd, int pfd, struct ql_error *err)
{
	bool widened = false;
	int r;
	for (int i = 0;; i++) {
		/* best effort, as the rmdir tells whether it worked */
		_cleanup_free_ pid_t *pids = NULL;
		size_t n = 0;
		if (cgroupfs_read_pids(pfd, "pool/tasks", &pids, &n, NULL) < 0)
			n = 0;
		if (n > 0 && !widened) {
			_cleanup_cpu_list_ struct cpu_list *p_cpus = NULL;
			if (cgroupfs_read_cpus(pfd, "cpuset.cpus", &p_cpus, NULL) == 0)
				write_cpus(pfd, "pool", p_cpus, s->log, s->p_disp, NULL);
			widened = true;
		}
		move_tasks(pids, n, mfd, "tasks", s->log, "pool back to the mount path", NULL);
		if (i == 0 && s->cfg->test_stop_at && streq(s->cfg->test_stop_at, "pool-emptied"))
			raise(SIGSTOP); /* tests: a task forked into the pool now */
		r = cgroupfs_rmdir(pfd, "pool", s->log, s->p_disp, err);
		if (r != -EBUSY || i == 2)
			break;
		ql_error_clear(err);
	}
	return r;
}

/* With our sets gone: shrink the pool to what running VMs leave, or, when no VM is left, give
 * the pool's tasks back to M and remove pool and P. ret_last: no VM is left. */
static int tidy_pool(struct cpuset_v1_state *s, int mfd, int pfd, bool have_pool, bool *ret_last,
		     struct ql_error *err)
{
	struct v1_others o;
	int r = 0;
	if (may_hold_vm_sets(pfd, have_pool))
		r = scan_vms(s, pfd, &o, err);
	else if (v1_others_init(&o) < 0)
		r = ql_error_set(err, ENOMEM, "out of memory");
	*ret_last = false;
	if (r < 0)
		return r;
	/* scan_vms removed the dead ones and counted the running VMs */
	bool others = o.live > 0;
	*ret_last = !others;
	if (others && have_pool) {
		_cleanup_cpu_list_ struct cpu_list *p_cpus = NULL, *pool = NULL;
		r = cgroupfs_read_cpus(pfd, "cpuset.cpus", &p_cpus, err);
		if (r == 0 && !(pool = v1_plan_pool_after_release(p_cpus, &o)))
			r = ql_error_set(err, ENOMEM, "out of memory");
		if (r == 0)
			r = write_cpus(pfd, "pool", pool, s->log, s->p_disp, err);
	} else if (!others) {
		if (have_pool)
			r = empty_pool(s, mfd, pfd, err);
		if (r == 0)
			r = cgroupfs_rmdir(mfd, s->cfg->prefix, s->log, s->mount_path, err);
	}
	v1_others_done(&o);
	return r;
}

/* Tears down our sets and, when no VM is left, pool and P (their tasks back to M). Works from
 * what the kernel shows, so it also serves as the undo of a half-done apply. */
static int cpuset_v1_release(void *state, struct ql_error *err)
{
	struct cpuset_v1_state *s = state;
	closep(&s->warm_fd);
	if (!s->touched)
		return 0;
	int ret = 0;
	/* Unmounting while another VM's sets exist would only detach the hierarchy (the kernel
	 * keeps it) and strand the pool's tasks: only the launcher of the last VM unmounts. */
	bool last = true;
	_cleanup_close_ int mfd = -1, pfd = -1;
	_cleanup_free_ char *p = join(s->mount_path, s->cfg->prefix);
	if (!p)
		return ql_error_set(err, ENOMEM, "out of memory");
	/* nothing left to undo when M or P is gone */
	if (cgroupfs_open_dir(s->mount_path, &mfd, NULL) == 0 &&
	    cgroupfs_open_dir(p, &pfd, NULL) == 0) {
		struct stat st;
		bool have_pool = fstatat(pfd, "pool", &st, AT_SYMLINK_NOFOLLOW) == 0;
		/* A release held back (the lock, a stop) after qemu ended may find the VM's
		 * name taken by another launcher, which reclaimed the empty sets: not ours. */
		ino_t ino = cgroupfs_ino(pfd, s->cfg->vm_name);
		if (s->vm_created && s->vm_ino && ino && ino != s->vm_ino) {
			ql_log(s->log, QL_LOG_INFO,
			       "cpuset v1: %s/%s is another launcher's now: left alone", s->p_disp,
			       s->cfg->vm_name);
			s->vm_created = false;
		}
		if (s->vm_created)
			ret = remove_vm_sets(s, mfd, pfd, have_pool, err);
		struct ql_error e = {0};
		int r = tidy_pool(s, mfd, pfd, have_pool, &last, ret ? &e : err);
		ql_error_clear(&e);
		if (r < 0 && ret == 0)
			ret = r;
	}
	if (ret == 0) {
		s->touched = false;
		s->prepared = false;
		/* our own descriptors would keep the mount busy */
		closep(&pfd);
		closep(&mfd);
		pfd = mfd = -1;
		if (last)
			unmount_hierarchy(s);
	}
	return ret;
}

/* A run that died: its sets have no task left, so the scan in tidy_pool removes them like any
 * stale ones, and the pool gets their CPUs back (or, with no VM left, everything goes). */
static int cpuset_v1_reclaim(void *state, struct ql_error *err)
{
	struct cpuset_v1_state *s = state;
	_cleanup_close_ int mfd = -1, pfd = -1;
	_cleanup_free_ char *p = join(s->mount_path, s->cfg->prefix);
	if (!p)
		return ql_error_set(err, ENOMEM, "out of memory");
	if (cgroupfs_open_dir(s->mount_path, &mfd, NULL) < 0 ||
	    cgroupfs_open_dir(p, &pfd, NULL) < 0)
		return 0; /* nothing of ours exists */
	struct stat st;
	bool have_pool = fstatat(pfd, "pool", &st, AT_SYMLINK_NOFOLLOW) == 0, last = false;
	int r = tidy_pool(s, mfd, pfd, have_pool, &last, err);
	if (r < 0 || !last)
		return r;
	closep(&pfd);
	closep(&mfd);
	pfd = mfd = -1;
	/* the run may have mounted the hierarchy itself after this state was made */
	_cleanup_(mount_match_done) struct mount_match mm = {0};
	if (find_mount(s->mount_path, false, &mm, NULL) == 0 &&
	    streq(mm.mountpoint, s->mount_path) && streq(mm.source, MOUNT_SOURCE))
		s->launcher_mount = true;
	unmount_hierarchy(s);
	return 0;
}

/* ---- apply ---- */

/* What the plan needs from M and P (P created with M's CPUs and memory nodes if missing). */
struct v1_tree {
	int mfd, pfd;
	struct cpu_list *p_cpus;
	char *p_mems;
};

static void v1_tree_done(struct v1_tree *t)
{
	closep(&t->mfd);
	closep(&t->pfd);
	cpu_list_free(t->p_cpus);
	free(t->p_mems);
}

static int open_prefix(struct cpuset_v1_state *s, struct v1_tree *t, struct ql_error *err)
{
	const char *prefix = s->cfg->prefix;
	_cleanup_cpu_list_ struct cpu_list *m_cpus = NULL;
	_cleanup_free_ char *mems = NULL, *p = join(s->mount_path, prefix);
	int r = p ? cgroupfs_open_dir(s->mount_path, &t->mfd, err)
		  : ql_error_set(err, ENOMEM, "out of memory");
	if (r == 0)
		r = cgroupfs_read_cpus(t->mfd, "cpuset.cpus", &m_cpus, err);
	if (r == 0)
		r = cgroupfs_read(t->mfd, "cpuset.mems", &mems, err);
	if (r < 0)
		return r;
	if (cpu_list_is_empty(m_cpus) || !*mems)
		return ql_error_set(err, ENOSPC,
				    "`%s` has no CPUs or no memory nodes (cpuset.cpus/cpuset.mems "
				    "empty)",
				    s->mount_path);
	r = cgroupfs_mkdir(t->mfd, prefix, false, s->log, s->mount_path, err);
	if (r == 0) {
		s->touched = true;
		r = configure_set(t->mfd, prefix, m_cpus, mems, s->log, s->mount_path, err);
	} else if (r == -EEXIST) {
		ql_error_clear(err);
		s->touched = true;
		r = 0;
	}
	if (r == 0)
		r = cgroupfs_open_dir(p, &t->pfd, err);
	if (r == 0)
		r = cgroupfs_read_cpus(t->pfd, "cpuset.cpus", &t->p_cpus, err);
	if (r == 0)
		r = cgroupfs_read(t->pfd, "cpuset.mems", &t->p_mems, err);
	return r;
}

/* Every task of M into the pool. A task not yet moved may fork meanwhile, and its child is born
 * in M after the listing: the passes repeat over the tasks not seen before (kernel threads,
 * which refuse, are seen once), three at the most. */
static int move_host_tasks(struct cpuset_v1_state *s, struct v1_tree *t, const char *what,
			   struct ql_error *err)
{
	_cleanup_free_ pid_t *seen = NULL;
	size_t n_seen = 0;
	for (int pass = 0; pass < 3; pass++) {
		_cleanup_free_ pid_t *pids = NULL;
		size_t n = 0;
		int r = cgroupfs_read_pids(t->mfd, "tasks", &pids, &n, err);
		if (r < 0)
			return r;
		if (pass == 0 && s->cfg->test_stop_at && streq(s->cfg->test_stop_at, "host-listed"))
			raise(SIGSTOP); /* tests: a task forked into M now */
		size_t n_new = 0;
		for (size_t i = 0; i < n; i++)
			if (!proc_tids_contain(seen, n_seen, pids[i]))
				pids[n_new++] = pids[i];
		if (n_new == 0)
			break;
		r = move_tasks(pids, n_new, t->pfd, "pool/tasks", s->log, what, err);
		if (r < 0)
			return r;
		pid_t *v = reallocarray(seen, n_seen + n_new, sizeof(*v));
		if (!v)
			return ql_error_set(err, ENOMEM, "out of memory");
		memcpy(v + n_seen, pids, n_new * sizeof(*v));
		seen = v;
		n_seen += n_new;
		proc_sort_tids(seen, n_seen);
	}
	return 0;
}

/* pool, and on first use every task of M into it. */
static int ensure_pool(struct cpuset_v1_state *s, struct v1_tree *t, const struct v1_plan *p,
		       struct ql_error *err)
{
	struct stat st;
	if (fstatat(t->pfd, "pool", &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	int r = make_set(t->pfd, "pool", p->pool_before, t->p_mems, s->log, s->p_disp, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *what = NULL;
	if (asprintf(&what, "tasks of %s into %s/pool", s->mount_path, s->p_disp) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	return move_host_tasks(s, t, what, err);
}

/* P/<vm>, its emulator set (with emulator_pinning) and one cpuN set per vCPU CPU. */
static int create_vm_sets(struct cpuset_v1_state *s, struct v1_tree *t, const struct v1_plan *p,
			  struct ql_error *err)
{
	const char *vm = s->cfg->vm_name;
	int r = cgroupfs_mkdir(t->pfd, vm, false, s->log, s->p_disp, err);
	if (r < 0)
		return r;
	s->vm_created = true;
	s->vm_ino = cgroupfs_ino(t->pfd, vm);
	/* qemu initialises in the VM set without emulator_pinning: on every CPU the pool had, as
	 * it would have without isolation; place narrows the set once qemu has left it */
	r = configure_set(t->pfd, vm, s->emulator ? p->vm : p->pool_before, t->p_mems, s->log,
			  s->p_disp, err);
	_cleanup_free_ char *emu_rel = join(vm, "emulator");
	if (r == 0 && !emu_rel)
		r = ql_error_set(err, ENOMEM, "out of memory");
	if (r == 0 && s->emulator)
		r = make_set(t->pfd, emu_rel, s->emulator, t->p_mems, s->log, s->p_disp, err);
	for (int c = cpu_list_next(p->vcpus, -1); r == 0 && c >= 0;
	     c = cpu_list_next(p->vcpus, c)) {
		_cleanup_free_ char *rel = vcpu_set_file(vm, (unsigned)c, NULL);
		_cleanup_cpu_list_ struct cpu_list *one = cpu_list_of_one((unsigned)c);
		r = rel && one ? make_set(t->pfd, rel, one, t->p_mems, s->log, s->p_disp, err)
			       : ql_error_set(err, ENOMEM, "out of memory");
	}
	return r;
}

/* Where qemu lives from prepare to place: its emulator set (its home) with emulator_pinning, else
 * the VM set itself (on the pool's CPUs until place). Either way the VM's sets hold a task from
 * prepare on, so no other launcher takes them for a dead run's and reclaims them before the vCPUs
 * arrive. */
static char *start_set(const struct cpuset_v1_state *s)
{
	return s->emulator ? join(s->cfg->vm_name, "emulator") : strdup(s->cfg->vm_name);
}

/* qemu (every thread it has so far; later ones are born there) into its start set, read back. */
static int place_qemu(struct cpuset_v1_state *s, struct v1_tree *t, const struct v1_plan *p,
		      struct ql_error *err)
{
	_cleanup_free_ char *set = start_set(s);
	_cleanup_free_ char *procs = set ? join(set, "cgroup.procs") : NULL;
	_cleanup_free_ char *tasks = set ? join(set, "tasks") : NULL;
	if (!procs || !tasks)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = write_pid(t->pfd, procs, s->qemu_pid, s->log, s->p_disp, err);
	if (r == 0)
		r = verify_placement(t->pfd, set, s->qemu_pid, s->qemu_pid,
				     s->emulator ? s->emulator : p->pool_before, s->p_disp, err);
	closep(&s->warm_fd);
	if (r == 0)
		r = cgroupfs_open_file(t->pfd, tasks, &s->warm_fd, s->p_disp, err);
	return r;
}

/* Keeps the kernel's migration lock (cgroup_threadgroup_rwsem) out of its fast-reader mode until
 * place: a task migration after about one RCU grace period without one waits for a whole grace
 * period first (10-15 ms on the bench host, bench/RESULTS.md), and qemu building a 64-vCPU
 * machine takes 190 ms after prepare's migrations. Writing qemu's main thread id into the tasks
 * file of the set it is in migrates nothing (the kernel drops a move to the same css_set) but
 * enters and leaves the lock as a writer, which restarts that window. Best effort: a failure
 * (qemu gone) only costs the wait it was to spare. */
static void cpuset_v1_keep_warm(void *state)
{
	struct cpuset_v1_state *s = state;
	cgroupfs_keep_warm(&s->warm_fd, s->qemu_pid);
}

/* Keeps the request for place, rescan and release. */
static int remember(struct cpuset_v1_state *s, const struct isolation_plan *req,
		    struct ql_error *err)
{
	free(s->vcpus);
	cpu_list_free(s->emulator);
	s->emulator = NULL;
	s->n_vcpus = 0;
	s->qemu_pid = req->qemu_pid;
	if (!(s->vcpus = calloc(req->n_vcpus ? req->n_vcpus : 1, sizeof(*s->vcpus))) ||
	    (req->emulator_cpus && !(s->emulator = cpu_list_dup(req->emulator_cpus))))
		return ql_error_set(err, ENOMEM, "out of memory");
	memcpy(s->vcpus, req->vcpus, req->n_vcpus * sizeof(*s->vcpus));
	s->n_vcpus = req->n_vcpus;
	return 0;
}

/* Everything but the vCPU moves, while qemu initialises: prefix, pool (the mount path's tasks
 * in it), the VM's sets, qemu into its start set, and the pool shrunk to what it keeps. */
static int cpuset_v1_prepare(void *state, const struct isolation_plan *req, struct ql_error *err)
{
	struct cpuset_v1_state *s = state;
	_cleanup_(v1_tree_done) struct v1_tree t = {.mfd = -1, .pfd = -1};
	_cleanup_(v1_plan_done) struct v1_plan p = {0};
	struct v1_others o = {0};
	v1_plan_done(&s->plan);
	s->prepared = false;
	int r = remember(s, req, err);
	if (r == 0 && s->need_mount && !s->mounted) {
		s->touched = true;
		r = mount_hierarchy(s, err);
	}
	if (r == 0)
		r = open_prefix(s, &t, err);
	if (r == 0)
		r = scan_vms(s, t.pfd, &o, err);
	if (r < 0)
		return r;
	struct v1_host h = {
	    .p_disp = s->p_disp, .vm = s->cfg->vm_name, .p_cpus = t.p_cpus, .others = &o};
	r = v1_plan_build(&h, req, &p, err);
	v1_others_done(&o);
	if (r == 0)
		r = ensure_pool(s, &t, &p, err);
	if (r == 0)
		r = create_vm_sets(s, &t, &p, err);
	if (r == 0)
		r = place_qemu(s, &t, &p, err);
	/* qemu has left the pool: it can give up the vCPUs' CPUs already */
	if (r == 0)
		r = write_cpus(t.pfd, "pool", p.pool_after, s->log, s->p_disp, err);
	if (r == 0) {
		s->plan = p;
		p = (struct v1_plan){0};
		s->prepared = true;
	}
	return r;
}

/* The open tasks file of each cpuN set a burst of moves writes to (one write per thread id). */
struct tasks_fds {
	int *fd;
	unsigned *cpu;
	size_t n;
};

static void tasks_fds_done(struct tasks_fds *f)
{
	for (size_t i = 0; i < f->n; i++)
		closep(&f->fd[i]);
	free(f->fd);
	free(f->cpu);
}

static int tasks_fd_of(struct cpuset_v1_state *s, int pfd, struct tasks_fds *f, unsigned cpu,
		       int *ret, struct ql_error *err)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->cpu[i] == cpu) {
			*ret = f->fd[i];
			return 0;
		}
	_cleanup_free_ char *tasks = vcpu_set_file(s->cfg->vm_name, cpu, "tasks");
	if (!tasks)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = cgroupfs_open_file(pfd, tasks, &f->fd[f->n], s->p_disp, err);
	if (r < 0)
		return r;
	f->cpu[f->n] = cpu;
	*ret = f->fd[f->n++];
	return 0;
}

/* qemu in the pool, on the pool's CPUs: those of the prepare, or, when another VM ended since
 * (its release gave the pool its CPUs back), the pool's now, if they still leave out every CPU
 * of this VM's vCPUs. */
static int verify_in_pool(struct cpuset_v1_state *s, int pfd, struct ql_error *err)
{
	struct ql_error e = {0};
	int r = verify_placement(pfd, "pool", s->qemu_pid, s->qemu_pid, s->plan.pool_after,
				 s->p_disp, &e);
	_cleanup_cpu_list_ struct cpu_list *now = NULL;
	if (r == -EIO && cgroupfs_read_cpus(pfd, "pool/cpuset.cpus", &now, NULL) == 0 &&
	    !cpu_list_equal(now, s->plan.pool_after)) {
		bool apart = true;
		for (size_t i = 0; i < s->n_vcpus; i++)
			apart &= !cpu_list_has(now, s->vcpus[i].host_cpu);
		if (apart) {
			ql_error_clear(&e);
			r = verify_placement(pfd, "pool", s->qemu_pid, s->qemu_pid, now, s->p_disp,
					     &e);
		}
	}
	int ret = 0;
	ql_error_keep_first(r, &e, &ret, err);
	return ret;
}

/* With qemu's thread ids: qemu to its home (the pool, unless it is in its emulator set already),
 * then each vCPU thread into its cpuN set (a later cgroup.procs write would pull the vCPUs
 * back), then the VM set narrowed to its vCPUs. Every placement is read back. */
static int place_threads(struct cpuset_v1_state *s, int pfd, struct ql_error *err)
{
	const char *vm = s->cfg->vm_name;
	int r = 0;
	if (!s->emulator) {
		r = write_pid(pfd, "pool/cgroup.procs", s->qemu_pid, s->log, s->p_disp, err);
		if (r == 0)
			r = verify_in_pool(s, pfd, err);
	}
	_cleanup_(tasks_fds_done) struct tasks_fds f = {
	    .fd = calloc(s->n_vcpus ? s->n_vcpus : 1, sizeof(int)),
	    .cpu = calloc(s->n_vcpus ? s->n_vcpus : 1, sizeof(unsigned)),
	};
	if (r == 0 && (!f.fd || !f.cpu))
		r = ql_error_set(err, ENOMEM, "out of memory");
	/* one listing for the burst: a lookup per thread was 0.2 ms of 64 vCPUs */
	_cleanup_free_ pid_t *tids = NULL;
	size_t n_tids = 0;
	if (r == 0)
		r = proc_list_tids_sorted(s->qemu_pid, &tids, &n_tids, err);
	for (size_t i = 0; r == 0 && i < s->n_vcpus; i++) {
		const struct vcpu_placement *v = &s->vcpus[i];
		if (!proc_tids_contain(tids, n_tids, v->tid))
			return ql_error_set(err, ESRCH,
					    "vCPU %d thread %d is not a thread of qemu (%d)",
					    v->cpu_index, (int)v->tid, (int)s->qemu_pid);
		char id[24];
		snprintf(id, sizeof(id), "%d", (int)v->tid);
		_cleanup_free_ char *file = vcpu_set_file(vm, v->host_cpu, "tasks");
		int fd = -1;
		r = file ? tasks_fd_of(s, pfd, &f, v->host_cpu, &fd, err)
			 : ql_error_set(err, ENOMEM, "out of memory");
		if (r == 0)
			r = cgroupfs_write_fd(fd, file, id, s->log, s->p_disp, err);
		if (r < 0)
			ql_error_prefix(err, "pinning vCPU %d: ", v->cpu_index);
	}
	if (r == 0)
		r = verify_vcpus(pfd, vm, s->vcpus, s->n_vcpus, s->p_disp, err);
	/* qemu has left the VM set: it keeps the vCPUs' CPUs only */
	if (r == 0 && !s->emulator)
		r = write_cpus(pfd, vm, s->plan.vm, s->log, s->p_disp, err);
	return r;
}

/* The plan of apply must be the one prepared, with thread ids now. */
static int same_cpus_as_prepared(const struct cpuset_v1_state *s, const struct isolation_plan *req,
				 struct ql_error *err)
{
	_cleanup_cpu_list_ struct cpu_list *cpus = NULL;
	int r = isolation_plan_host_cpus(req, &cpus, err);
	if (r < 0)
		return r;
	if (req->n_vcpus != s->n_vcpus || req->qemu_pid != s->qemu_pid ||
	    !cpu_list_equal(cpus, s->plan.vcpus))
		return ql_error_set(err, EINVAL, "the placement differs from the prepared one");
	return 0;
}

static int cpuset_v1_apply(void *state, const struct isolation_plan *req, struct ql_error *err)
{
	struct cpuset_v1_state *s = state;
	int r = s->prepared ? same_cpus_as_prepared(s, req, err) : cpuset_v1_prepare(s, req, err);
	if (r < 0)
		return r;
	memcpy(s->vcpus, req->vcpus, req->n_vcpus * sizeof(*s->vcpus));
	closep(&s->warm_fd);
	_cleanup_close_ int pfd = -1;
	_cleanup_free_ char *pdir = join(s->mount_path, s->cfg->prefix);
	r = pdir ? cgroupfs_open_dir(pdir, &pfd, err) : ql_error_set(err, ENOMEM, "out of memory");
	if (r == 0)
		r = place_threads(s, pfd, err);
	return r;
}

/* Threads qemu created after apply start in their creator's set (KVM's kvm-nx-lpage-re inherits
 * its vCPU's): anything in a cpuN set that is not that set's vCPU goes to pool/emulator. */
static int cpuset_v1_rescan(void *state, struct ql_error *err)
{
	struct cpuset_v1_state *s = state;
	const char *vm = s->cfg->vm_name;
	_cleanup_close_ int pfd = -1;
	_cleanup_free_ char *p = join(s->mount_path, s->cfg->prefix);
	_cleanup_free_ char *home = s->emulator ? join(vm, "emulator/tasks") : strdup("pool/tasks");
	_cleanup_cpu_list_ struct cpu_list *vcpu_cpus = cpu_list_new(0);
	if (!p || !home || !vcpu_cpus)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = cgroupfs_open_dir(p, &pfd, err);
	for (size_t i = 0; r == 0 && i < s->n_vcpus; i++)
		if (cpu_list_add(vcpu_cpus, s->vcpus[i].host_cpu) < 0)
			r = ql_error_set(err, ENOMEM, "out of memory");
	for (int c = cpu_list_next(vcpu_cpus, -1); r == 0 && c >= 0;
	     c = cpu_list_next(vcpu_cpus, c)) {
		_cleanup_free_ char *tasks = vcpu_set_file(vm, (unsigned)c, "tasks");
		_cleanup_free_ pid_t *pids = NULL;
		size_t n = 0;
		r = tasks ? cgroupfs_read_pids(pfd, tasks, &pids, &n, err)
			  : ql_error_set(err, ENOMEM, "out of memory");
		for (size_t i = 0; r == 0 && i < n; i++) {
			bool is_vcpu = false;
			for (size_t j = 0; j < s->n_vcpus; j++)
				is_vcpu |= s->vcpus[j].tid == pids[i] &&
					   s->vcpus[j].host_cpu == (unsigned)c;
			if (is_vcpu)
				continue;
			ql_log(s->log, QL_LOG_DEBUG,
			       "thread %d appeared in %s/%s/cpu%d; moving it out", (int)pids[i],
			       s->p_disp, vm, c);
			r = write_pid(pfd, home, pids[i], s->log, s->p_disp, err);
			if (r == -ESRCH)
				r = 0;
		}
	}
	return r;
}

static const struct cgroup_layout cpuset_v1_layout = {
    .backend = "cpuset v1",
    .vcpu_prefix = "cpu",
    .ids_file = "tasks",
    .procs_file = NULL,
};

static int cpuset_v1_inspect(const struct isolation_config *cfg, const char *only,
			     struct isolation_vm_list *acc, struct ql_error *err)
{
	_cleanup_free_ char *base = join(cfg->mount_path, cfg->prefix);
	if (!base)
		return ql_error_set(err, ENOMEM, "out of memory");
	size_t first = acc->n;
	int r = cgroup_inspect(base, &cpuset_v1_layout, only, acc, err);
	if (r < 0 || only)
		return r;
	for (size_t i = first; i < acc->n; i++)
		if (acc->vms[i].qemu_pid)
			return 0; /* a live VM: the pool is where it keeps the host's tasks */
	/* No VM runs, yet the pool holds tasks off the CPUs it lacks: nobody undid a run. */
	_cleanup_close_ int pfd = -1;
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	if (cgroupfs_open_dir(base, &pfd, NULL) < 0 ||
	    cgroupfs_read_pids(pfd, "pool/tasks", &pids, &n, NULL) < 0 || n == 0)
		return 0;
	_cleanup_free_ char *cpus = NULL;
	(void)cgroupfs_read(pfd, "pool/cpuset.cpus", &cpus, NULL);
	if (!(acc->confined_set = join(base, "pool")) ||
	    !(acc->confined_cpus = strdup(cpus ? cpus : "?")))
		return ql_error_set(err, ENOMEM, "out of memory");
	acc->confined_tasks = n;
	return 0;
}

const struct isolation_backend isolation_backend_cpuset_v1 = {
    .name = "cpuset v1",
    .isolates = true,
    .probe = cpuset_v1_probe,
    .lock_dir = cpuset_v1_lock_dir,
    .usable_cpus = cpuset_v1_usable_cpus,
    .describe = cpuset_v1_describe,
    .prepare = cpuset_v1_prepare,
    .keep_warm = cpuset_v1_keep_warm,
    .apply = cpuset_v1_apply,
    .rescan = cpuset_v1_rescan,
    .release = cpuset_v1_release,
    .reclaim = cpuset_v1_reclaim,
    .inspect = cpuset_v1_inspect,
    .free_state = cpuset_v1_free_state,
};
