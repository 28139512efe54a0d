/* --status: what the kernel says about the running VMs (their cgroup sets, every qemu thread's
 * allowed CPUs, set and scheduling), compared with the definitions. Nothing here writes. */
#include "status.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpulist.h"
#include "definition.h"
#include "housekeeping_status.h"
#include "hugepages_status.h"
#include "isolation.h"
#include "macro.h"
#include "readfile.h"
#include "proc.h"
#include "smp.h"
#include "vcpu_sched.h"

#define SMALL_FILE_MAX 4096
/* Highest cpu-index we map from a definition (qemu's own limit for x86 is 1024/4096). */
#define MAX_VCPU_INDEX PROC_MAX_VCPU_INDEX

/* ---- small readers ------------------------------------------------------------------------ */

/* One of thread tid's /proc files (proc_thread_open), newlines stripped; at most max bytes. */
static int read_thread_file(pid_t pid, pid_t tid, const char *file, size_t max, char **ret)
{
	_cleanup_close_ int fd = proc_thread_open(pid, tid, file);
	if (fd < 0)
		return fd;
	size_t len;
	int r = read_small_fd(fd, max, ret, &len);
	if (r < 0)
		return r;
	strip_newlines(*ret, &len);
	return 0;
}

static int read_thread_small(pid_t pid, pid_t tid, const char *file, char **ret)
{
	return read_thread_file(pid, tid, file, SMALL_FILE_MAX, ret);
}

/* The value of `key:` in a /proc status file open as fd (taken), leading whitespace skipped. */
static int status_field_fd(int fd, const char *key, char **ret)
{
	_cleanup_fclose_ FILE *f = fdopen(fd, "re");
	if (!f) {
		int e = errno;
		close(fd);
		return -e;
	}
	char line[SMALL_FILE_MAX];
	size_t kl = strlen(key);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl) != 0 || line[kl] != ':')
			continue;
		char *v = line + kl + 1;
		v += strspn(v, " \t");
		v[strcspn(v, "\n")] = '\0';
		char *s = strdup(v);
		if (!s)
			return -ENOMEM;
		*ret = s;
		return 0;
	}
	return -ENOENT;
}

static int status_field(const char *path, const char *key, char **ret)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : status_field_fd(fd, key, ret);
}

static bool parse_pid(const char *s, pid_t *ret)
{
	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
		return false;
	long v = strtol(s, NULL, 10);
	if (v <= 0)
		return false;
	*ret = (pid_t)v;
	return true;
}

/* ---- building the report ------------------------------------------------------------------ */

static void vm_done(struct status_vm *vm)
{
	free(vm->name);
	free(vm->dir);
	for (size_t i = 0; i < vm->n_threads; i++) {
		free(vm->threads[i].cpus_allowed);
		free(vm->threads[i].set);
	}
	free(vm->threads);
	free(vm->definition_note);
	strv_free(vm->problems);
	hugepages_use_free(vm->hugepages);
	vfio_status_free(vm->vfio, vm->n_vfio);
}

void status_report_free(struct status_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_vms; i++)
		vm_done(&r->vms[i]);
	free(r->vms);
	free(r->only);
	free(r->confined);
	housekeeping_status_free(r->housekeeping);
	free(r);
}

_printf_(2, 3) static int problem(struct status_vm *vm, const char *fmt, ...)
{
	size_t n = strv_length(vm->problems);
	char **p = reallocarray(vm->problems, n + 2, sizeof(char *));
	if (!p)
		return -ENOMEM;
	vm->problems = p;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&p[n], fmt, ap);
	va_end(ap);
	if (r < 0) {
		p[n] = NULL;
		return -ENOMEM;
	}
	p[n + 1] = NULL;
	return 0;
}

static struct status_vm *vm_add(struct status_report *r, const char *name, struct ql_error *err)
{
	if (r->n_vms == STATUS_MAX_VMS) {
		ql_error_set(err, E2BIG, "more than %d VMs found", STATUS_MAX_VMS);
		return NULL;
	}
	struct status_vm *v = reallocarray(r->vms, r->n_vms + 1, sizeof(*v));
	if (!v) {
		ql_error_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	r->vms = v;
	struct status_vm *vm = &v[r->n_vms];
	*vm = (struct status_vm){0};
	vm->name = ql_escape(name);
	vm->problems = calloc(1, sizeof(char *));
	if (!vm->name || !vm->problems) {
		vm_done(vm);
		ql_error_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	r->n_vms++;
	return vm;
}

static bool vm_known(const struct status_report *r, pid_t qemu_pid)
{
	for (size_t i = 0; i < r->n_vms; i++)
		if (qemu_pid > 0 && r->vms[i].qemu_pid == qemu_pid)
			return true;
	return false;
}

static int fill_thread(struct status_thread *t, pid_t pid, pid_t tid)
{
	*t = (struct status_thread){.tid = tid, .policy = -1, .vcpu = -1, .vcpu_set_cpu = -1};

	_cleanup_free_ char *comm = NULL;
	int r = read_thread_small(pid, tid, "comm", &comm);
	if (r < 0)
		return r; /* the thread ended meanwhile */
	t->vcpu = proc_qemu_vcpu_index(comm);
	_cleanup_free_ char *shown = ql_escape(comm);
	if (!shown)
		return -ENOMEM;
	snprintf(t->comm, sizeof(t->comm), "%s", shown);

	int fd = proc_thread_open(pid, tid, "status");
	r = fd < 0 ? fd : status_field_fd(fd, "Cpus_allowed_list", &t->cpus_allowed);
	if (r < 0)
		return r;

	if (read_thread_small(pid, tid, "cpuset", &t->set) < 0) {
		/* no /proc/.../cpuset: the cgroup v2 line `0::/path` */
		_cleanup_free_ char *cg = NULL;
		if (read_thread_file(pid, tid, "cgroup", PROC_CGROUP_FILE_MAX, &cg) == 0) {
			char *l = strstr(cg, "0::");
			if (l && (l == cg || l[-1] == '\n')) {
				l[strcspn(l, "\n")] = '\0';
				t->set = strdup(l + 3);
			}
		}
		if (!t->set && !(t->set = strdup("?")))
			return -ENOMEM;
	}
	char *set = ql_escape(t->set);
	if (!set)
		return -ENOMEM;
	free(t->set);
	t->set = set;

	int pol = sched_getscheduler(tid);
	struct sched_param sp;
	if (pol >= 0 && sched_getparam(tid, &sp) == 0) {
		t->reset_on_fork = (pol & SCHED_RESET_ON_FORK) != 0;
		t->policy = pol & ~SCHED_RESET_ON_FORK;
		t->priority = sp.sched_priority;
	}
	return 0;
}

static int cmp_thread(const void *a, const void *b)
{
	const struct status_thread *x = a, *y = b;
	return (x->tid > y->tid) - (x->tid < y->tid);
}

/* Every thread of the qemu process, from /proc/<pid>/task. */
static int read_threads(struct status_vm *vm, struct ql_error *err)
{
	_cleanup_free_ pid_t *tids = NULL;
	size_t n = 0;
	int r = proc_list_tids(vm->qemu_pid, &tids, &n, err);
	if (r == -ENOENT || r == -ESRCH) {
		ql_error_clear(err);
		return 0; /* qemu ended while we looked */
	}
	if (r < 0)
		return r;
	if (!(vm->threads = calloc(n ? n : 1, sizeof(*vm->threads))))
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct status_thread *t = &vm->threads[vm->n_threads];
		r = fill_thread(t, vm->qemu_pid, tids[i]);
		if (r == -ENOMEM)
			return ql_error_set(err, ENOMEM, "out of memory");
		if (r < 0) {
			free(t->cpus_allowed);
			free(t->set);
			*t = (struct status_thread){0};
			continue; /* ended meanwhile */
		}
		vm->n_threads++;
	}
	if (vm->n_threads > 1)
		qsort(vm->threads, vm->n_threads, sizeof(*vm->threads), cmp_thread);
	return 0;
}

/* A VM a cgroup backend holds: its qemu's threads, each marked with the vCPU set it is in. */
static int add_cgroup_vm(struct status_report *rep, const struct isolation_vm *found,
			 struct ql_error *err)
{
	struct status_vm *vm = vm_add(rep, found->name, err);
	if (!vm)
		return -err->code;
	vm->backend = found->backend;
	vm->set_prefix = found->set_prefix;
	if (!(vm->dir = ql_escape(found->dir)))
		return ql_error_set(err, ENOMEM, "out of memory");
	vm->qemu_pid = found->qemu_pid;
	if (vm->qemu_pid) {
		int r = read_threads(vm, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < vm->n_threads; i++)
		for (size_t j = 0; j < found->n_members; j++)
			if (found->members[j].tid == vm->threads[i].tid)
				vm->threads[i].vcpu_set_cpu = found->members[j].host_cpu;
	return 0;
}

static int collect_cgroup_vms(struct status_report *rep, const struct config_paths *paths,
			      struct ql_error *err)
{
	struct isolation_config cfg = {
	    .mount_path = paths->cpuset_mount,
	    .cgroup2_root = paths->cgroup2_root,
	    .prefix = paths->cpuset_prefix,
	};
	struct isolation_vm_list found = {0};
	int r = isolation_inspect(&cfg, rep->only, &found, err);
	for (size_t i = 0; r == 0 && i < found.n; i++)
		r = add_cgroup_vm(rep, &found.vms[i], err);
	if (r == 0 && found.confined_set) {
		_cleanup_free_ char *set = ql_escape(found.confined_set);
		if (!set ||
		    asprintf(&rep->confined,
			     "%zu task(s) are confined in %s (CPUs %s) although no VM runs: "
			     "a launcher and its guardian were killed; the next start (or "
			     "removing the set) gives them back",
			     found.confined_tasks, set, found.confined_cpus) < 0)
			r = ql_error_set(err, ENOMEM, "out of memory");
	}
	isolation_vm_list_done(&found);
	return r;
}

/* The launcher's NAME: the last word of its command line. */
static char *launcher_vm_name(pid_t launcher)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)launcher);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char buf[SMALL_FILE_MAX];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	size_t len = (size_t)n;
	while (len > 0 && buf[len - 1] == '\0')
		len--;
	buf[len] = '\0';
	char *last = buf;
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0')
			last = buf + i + 1;
	return *last ? strdup(last) : NULL;
}

/* A launcher is a process running this very binary (the same file, not just the same name:
 * any user can run a program called qemu-launcher with whatever children and arguments). */
static bool is_launcher(pid_t pid)
{
	static struct stat self;
	static bool have_self;
	if (!have_self && stat("/proc/self/exe", &self) == 0)
		have_self = true;
	char path[32];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	struct stat st;
	return have_self && stat(path, &st) == 0 && st.st_dev == self.st_dev &&
	       st.st_ino == self.st_ino;
}

/* qemu processes whose parent is a qemu-launcher and that no cgroup set names: VMs pinned with
 * the affinity backend (or not pinned at all). */
static int collect_launcher_children(struct status_report *rep, struct ql_error *err)
{
	_cleanup_closedir_ DIR *d = opendir("/proc");
	if (!d)
		return ql_error_set_errno(err, errno, "reading /proc");
	struct dirent *de;
	while ((de = readdir(d))) {
		pid_t pid, ppid;
		if (!parse_pid(de->d_name, &pid) || vm_known(rep, pid))
			continue;
		char path[64];
		_cleanup_free_ char *pp = NULL;
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
		/* a launcher's other child is its guardian, not a VM */
		if (status_field(path, "PPid", &pp) < 0 || !parse_pid(pp, &ppid) ||
		    !is_launcher(ppid) || is_launcher(pid))
			continue;
		_cleanup_free_ char *raw = launcher_vm_name(ppid);
		if (!raw || (rep->only && !streq(rep->only, raw)))
			continue;
		_cleanup_free_ char *name = ql_escape(raw);
		if (!name)
			return ql_error_set(err, ENOMEM, "out of memory");
		/* a VM whose sets hold no thread any more (all moved out by hand) is still this
		 * launcher's VM: its qemu is found here */
		struct status_vm *vm = NULL;
		for (size_t i = 0; i < rep->n_vms && !vm; i++)
			if (!rep->vms[i].qemu_pid && streq(rep->vms[i].name, name))
				vm = &rep->vms[i];
		if (!vm && !(vm = vm_add(rep, name, err)))
			return -err->code;
		vm->qemu_pid = pid;
		int r = read_threads(vm, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- comparing with the definition -------------------------------------------------------- */

/* expected[cpu-index] = host CPU or -1; the vCPU of a nested entry is found with the x86
 * topology order (thread fastest, then core, die, socket). */
static int expected_pins(const struct definition *d, int *expected, size_t n)
{
	for (size_t i = 0; i < n; i++)
		expected[i] = -1;
	struct smp_topology t = smp_topology_of(d);
	for (size_t i = 0; i < d->n_pins; i++) {
		const struct vcpu_pin *p = &d->pins[i];
		long idx = smp_cpu_index(&t, p);
		if (idx < 0)
			return -EINVAL;
		if (idx >= 0 && (size_t)idx < n)
			expected[idx] = (int)p->host_cpu;
	}
	return 0;
}

/* The definition's name of a kernel policy; "?" unreadable. */
static const char *policy_name(int policy)
{
	if (policy == -1)
		return "?";
	enum ql_sched_policy p = sched_policy_of_kernel(policy);
	return p == QL_SCHED_UNSET ? "unknown" : ql_sched_policy_name(p);
}

const char *status_policy_name(int policy)
{
	return policy_name(policy);
}

static bool allowed_is(const struct status_thread *t, int cpu)
{
	char want[16];
	snprintf(want, sizeof(want), "%d", cpu);
	return t->cpus_allowed && streq(t->cpus_allowed, want);
}

static int compare_threads(struct status_vm *vm, const struct definition *d, const int *expected,
			   bool expected_known)
{
	const char *set_prefix = vm->set_prefix ? vm->set_prefix : "";
	bool cgroup = vm->backend != NULL;
	bool named = false; /* debug-threads names tell vCPU threads apart */
	for (size_t i = 0; i < vm->n_threads; i++)
		named = named || vm->threads[i].vcpu >= 0;

	for (size_t i = 0; i < vm->n_threads; i++) {
		const struct status_thread *t = &vm->threads[i];
		int want = expected_known && t->vcpu >= 0 ? expected[t->vcpu] : -1;
		int r = 0;
		if (want >= 0) {
			if (cgroup && t->vcpu_set_cpu != want)
				r = t->vcpu_set_cpu >= 0
					? problem(
					      vm,
					      "vCPU %d (thread %d) is in set %s%d, vcpu_pinning "
					      "says host CPU %d",
					      t->vcpu, (int)t->tid, set_prefix, t->vcpu_set_cpu,
					      want)
					: problem(
					      vm,
					      "vCPU %d (thread %d) is not in its set %s%d but in "
					      "%s",
					      t->vcpu, (int)t->tid, set_prefix, want, t->set);
			if (r == 0 && !allowed_is(t, want))
				r = problem(vm,
					    "vCPU %d (thread %d) may run on CPUs %s, vcpu_pinning "
					    "says host CPU %d",
					    t->vcpu, (int)t->tid, t->cpus_allowed, want);
			if (r == 0 && d->scheduler != QL_SCHED_UNSET &&
			    (!streq(policy_name(t->policy), ql_sched_policy_name(d->scheduler)) ||
			     (d->has_priority && t->priority != d->priority &&
			      (t->policy == SCHED_FIFO || t->policy == SCHED_RR))))
				r = problem(
				    vm,
				    "vCPU %d (thread %d) runs %s %d, the definition says %s "
				    "%d",
				    t->vcpu, (int)t->tid, policy_name(t->policy), t->priority,
				    ql_sched_policy_name(d->scheduler),
				    d->has_priority ? d->priority : 0);
		} else if (t->vcpu_set_cpu >= 0) {
			if (named && t->vcpu < 0)
				r = problem(
				    vm, "thread %d (%s) is not a vCPU but is inside vCPU set %s%d",
				    (int)t->tid, t->comm, set_prefix, t->vcpu_set_cpu);
			else if (named && expected_known)
				r = problem(vm,
					    "vCPU %d (thread %d) is in set %s%d, vcpu_pinning does "
					    "not pin it",
					    t->vcpu, (int)t->tid, set_prefix, t->vcpu_set_cpu);
			else if (!allowed_is(t, t->vcpu_set_cpu))
				r = problem(vm, "thread %d in set %s%d may run on CPUs %s",
					    (int)t->tid, set_prefix, t->vcpu_set_cpu,
					    t->cpus_allowed);
		} else if (d->emulator_cpus && !(t->vcpu >= 0 && want >= 0)) {
			_cleanup_cpu_list_ struct cpu_list *have = NULL;
			struct ql_error e = {0};
			if (cpu_list_parse(t->cpus_allowed, &have, &e) == 0 &&
			    !cpu_list_equal(have, d->emulator_cpus)) {
				_cleanup_free_ char *w = cpu_list_format(d->emulator_cpus);
				r = problem(
				    vm,
				    "thread %d (%s) may run on CPUs %s, emulator_pinning says "
				    "%s",
				    (int)t->tid, t->comm, t->cpus_allowed, w ? w : "?");
			}
			ql_error_clear(&e);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* I/O threads are named "IO <id>" with debug-threads=on: each pinned one on its CPUs. */
static int compare_iothreads(struct status_vm *vm, const struct definition *d)
{
	for (size_t i = 0; i < d->n_iothread_pins; i++) {
		const struct iothread_pin *pin = &d->iothread_pins[i];
		_cleanup_free_ char *want = cpu_list_format(pin->cpus), *comm = NULL;
		if (!want || asprintf(&comm, "IO %s", pin->id) < 0)
			return -ENOMEM;
		for (size_t k = 0; k < vm->n_threads; k++) {
			const struct status_thread *t = &vm->threads[k];
			/* comm is cut at 15 bytes: a long id cannot be told apart */
			if (strlen(comm) > 15 || !streq(t->comm, comm) || !t->cpus_allowed ||
			    streq(t->cpus_allowed, want))
				continue;
			if (problem(
				vm,
				"I/O thread %s (thread %d) may run on CPUs %s, iothread_pinning "
				"says %s",
				t->comm + 3, (int)t->tid, t->cpus_allowed, want) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

/* Without debug-threads names vCPU threads cannot be told apart: count what each set holds. */
static int compare_sets(struct status_vm *vm, const int *expected, bool expected_known)
{
	const char *set_prefix = vm->set_prefix ? vm->set_prefix : "";
	if (!vm->backend || !expected_known)
		return 0;
	bool named = false;
	for (size_t i = 0; i < vm->n_threads; i++)
		named = named || vm->threads[i].vcpu >= 0;

	_cleanup_cpu_list_ struct cpu_list *want = cpu_list_new(64), *have = cpu_list_new(64);
	if (!want || !have)
		return -ENOMEM;
	for (size_t i = 0; i < MAX_VCPU_INDEX; i++)
		if (expected[i] >= 0 && cpu_list_add(want, (unsigned)expected[i]) < 0)
			return -ENOMEM;
	for (size_t i = 0; i < vm->n_threads; i++)
		if (vm->threads[i].vcpu_set_cpu >= 0 &&
		    cpu_list_add(have, (unsigned)vm->threads[i].vcpu_set_cpu) < 0)
			return -ENOMEM;
	for (int c = cpu_list_next(want, -1); c >= 0; c = cpu_list_next(want, c)) {
		size_t n_want = 0, n_have = 0;
		for (size_t i = 0; i < MAX_VCPU_INDEX; i++)
			n_want += expected[i] == c;
		for (size_t i = 0; i < vm->n_threads; i++)
			n_have += vm->threads[i].vcpu_set_cpu == c;
		if (!named && n_have != n_want &&
		    problem(vm,
			    "set %s%d holds %zu thread(s), "
			    "vcpu_pinning puts %zu vCPU(s) on "
			    "host CPU %d",
			    set_prefix, c, n_have, n_want, c) < 0)
			return -ENOMEM;
	}
	for (int c = cpu_list_next(have, -1); c >= 0; c = cpu_list_next(have, c))
		if (!cpu_list_has(want, (unsigned)c) && !named &&
		    problem(vm, "set %s%d is not in vcpu_pinning", set_prefix, c) < 0)
			return -ENOMEM;
	return 0;
}

static int compare_with_definition(struct status_vm *vm, const struct config_paths *paths)
{
	struct ql_error e = {0};
	_cleanup_free_ char *path = NULL, *text = NULL;
	_cleanup_definition_ struct definition *d = NULL;
	size_t len = 0;
	if (config_read_definition(paths, vm->name, &path, &text, &len, &e) < 0 ||
	    definition_parse(path, text, len, &d, &e) < 0) {
		int r = asprintf(&vm->definition_note, "not compared with its definition: %s",
				 e.msg ? e.msg : "unreadable");
		ql_error_clear(&e);
		if (r < 0)
			vm->definition_note = NULL;
		return r < 0 ? -ENOMEM : 0;
	}
	_cleanup_free_ int *expected = calloc(MAX_VCPU_INDEX, sizeof(int));
	if (!expected)
		return -ENOMEM;
	bool known = expected_pins(d, expected, MAX_VCPU_INDEX) == 0;
	if (!known && asprintf(&vm->definition_note,
			       "vcpu_pinning not compared: the -smp topology of %s is not "
			       "understood",
			       path) < 0) {
		vm->definition_note = NULL;
		return -ENOMEM;
	}
	if (vm->backend && d->n_pins == 0 &&
	    problem(vm, "it has cgroup sets but its definition pins no vCPU") < 0)
		return -ENOMEM;
	int r = compare_threads(vm, d, expected, known);
	if (r == 0)
		r = compare_sets(vm, expected, known);
	if (r == 0)
		r = compare_iothreads(vm, d);
	_cleanup_strv_free_ char **vfio_problems = NULL;
	if (r == 0 && vfio_status_collect(paths->sysfs_root, d, &vm->vfio, &vm->n_vfio,
					  &vfio_problems, &e) < 0) {
		ql_error_clear(&e);
		r = -ENOMEM;
	}
	for (char **p = vfio_problems; r == 0 && p && *p; p++)
		r = problem(vm, "%s", *p);
	return r;
}

/* ---- entry points ------------------------------------------------------------------------- */

static int cmp_vm(const void *a, const void *b)
{
	const struct status_vm *x = a, *y = b;
	return strcmp(x->name, y->name);
}

int status_collect(const struct config_paths *paths, const char *name, struct status_report **ret,
		   struct ql_error *err)
{
	_cleanup_status_report_ struct status_report *rep = calloc(1, sizeof(*rep));
	if (!rep || (name && !(rep->only = strdup(name))))
		return ql_error_set(err, ENOMEM, "out of memory");

	int r = collect_cgroup_vms(rep, paths, err);
	if (r == 0)
		r = collect_launcher_children(rep, err);
	if (r == 0)
		r = housekeeping_status_collect(paths->journal_dir, paths->sysfs_root, name,
						&rep->housekeeping, err);
	if (r < 0)
		return r;

	for (size_t i = 0; i < rep->n_vms; i++) {
		struct status_vm *vm = &rep->vms[i];
		if (!vm->qemu_pid) {
			r = problem(vm, "no qemu thread is left in its sets (its launcher was "
					"killed; the next start of this VM reclaims them)");
		} else {
			r = compare_with_definition(vm, paths);
		}
		if (r == 0)
			r = hugepages_status_collect(paths->journal_dir, vm->name, vm->qemu_pid,
						     &vm->hugepages);
		if (r < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
	}
	if (rep->n_vms > 1) /* qsort's array must not be NULL, even for 0 elements */
		qsort(rep->vms, rep->n_vms, sizeof(*rep->vms), cmp_vm);
	*ret = TAKE_PTR(rep);
	return 0;
}

bool status_is_consistent(const struct status_report *r)
{
	if ((r->only && r->n_vms == 0) || r->confined ||
	    housekeeping_status_problems(r->housekeeping))
		return false;
	for (size_t i = 0; i < r->n_vms; i++)
		if (r->vms[i].problems[0])
			return false;
	return true;
}

char *status_format(const struct status_report *r)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	_cleanup_free_ char *only = r->only ? ql_escape(r->only) : NULL;
	if (r->n_vms == 0)
		fprintf(f, only ? "VM %s is not running\n" : "no running VM found\n", only);
	size_t n_problems = 0;
	for (size_t i = 0; i < r->n_vms; i++) {
		const struct status_vm *vm = &r->vms[i];
		fprintf(f, "%sVM %s: ", i ? "\n" : "", vm->name);
		if (vm->qemu_pid)
			fprintf(f, "qemu pid %d, ", (int)vm->qemu_pid);
		else
			fputs("not running, ", f);
		fprintf(f, "%s%s%s\n",
			vm->backend ? vm->backend
				    : "no cgroup sets (affinity backend or not pinned)",
			vm->dir ? " at " : "", vm->dir ? vm->dir : "");
		if (vm->n_threads)
			fprintf(f, "  %-8s %-16s %-10s %-8s %s\n", "TID", "NAME", "CPUS", "SCHED",
				"SET");
		for (size_t j = 0; j < vm->n_threads; j++) {
			const struct status_thread *t = &vm->threads[j];
			char sched[32];
			snprintf(sched, sizeof(sched), "%s%s%.0d", policy_name(t->policy),
				 t->priority ? " " : "", t->priority);
			fprintf(f, "  %-8d %-16s %-10s %-8s %s\n", (int)t->tid, t->comm,
				t->cpus_allowed ? t->cpus_allowed : "?", sched,
				t->set ? t->set : "?");
		}
		hugepages_status_format(vm->hugepages, f);
		_cleanup_free_ char *vfio = vfio_status_format(vm->vfio, vm->n_vfio);
		fputs(vfio ? vfio : "", f);
		if (vm->definition_note)
			fprintf(f, "  note: %s\n", vm->definition_note);
		for (char **p = vm->problems; *p; p++, n_problems++)
			fprintf(f, "  ! %s\n", *p);
	}
	if (n_problems)
		fprintf(f, "\n%zu difference(s) from the definitions\n", n_problems);
	if (r->confined)
		fprintf(f, "\n! %s\n", r->confined);
	housekeeping_status_format(r->housekeeping, f);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}
