/* The plan of one VM and its start sequence (README: "QMP on a private channel", "Pinning before
 * the guest runs"; the qemu side in doc/qemu-7.2.md): -S when pinning, handshake, pin, read
 * back, no RESUME meanwhile, cont; then supervision and unwind. */
#include "vm.h"

#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "cmdline.h"
#include "guardian.h"
#include "heap_warm.h"
#include "housekeeping.h"
#include "hugepages.h"
#include "journal.h"
#include "isolation.h"
#include "launch.h"
#include "memlock.h"
#include "notify.h"
#include "pinning.h"
#include "prealloc.h"
#include "privileges.h"
#include "qmp.h"
#include "reclaim.h"
#include "smp.h"
#include "supervise.h"
#include "vfio.h"

#define QMP_CHARDEV_ID "qemu-launcher-qmp"
/* Generous: qemu with mem-lock on a big guest allocates all RAM before greeting. */
#define GREETING_TIMEOUT_MS 60000
#define COMMAND_TIMEOUT_MS 10000
_Static_assert(JOURNAL_HUGEPAGES_WAIT_MS > 2 * GREETING_TIMEOUT_MS,
	       "a hugepage start-up holds its lock while qemu greets and answers");

struct vm_plan {
	const struct vm_options *o;
	char **argv_user;	 /* the definition's command line: what --dry-run prints */
	char **extra;		 /* the launcher's private options (QMP channel, -S) */
	bool user_paused;	 /* the definition itself has -S: the guest stays paused */
	struct pinning *pinning; /* NULL when nothing is pinned or scheduled */
	struct mem_backend *mem; /* hugepage-backed guest RAM */
	size_t n_mem;
	struct hugepages_plan huge;
	struct journal *journal; /* host values changed for this run; NULL when none */
	enum ql_memlock memlock; /* the definition's, `auto` made a size */
	uint64_t memlock_bytes, guest_ram;
	struct prealloc_plan prealloc; /* thread-context for the preallocation threads */
	struct cpu_list *hk_vcpus;     /* housekeeping: the CPUs kept clear; NULL when off */
	struct housekeeping_plan hk;   /* what --dry-run shows (the run plans again before cont) */
	struct vfio_plan *vfio;	       /* the VFIO devices' groups; NULL when none */
};

void vm_plan_free(struct vm_plan *p)
{
	if (!p)
		return;
	free(p->argv_user); /* one block (cmdline_build) */
	strv_free(p->extra);
	pinning_free(p->pinning);
	mem_backends_free(p->mem, p->n_mem);
	hugepages_plan_done(&p->huge);
	journal_free(p->journal);
	prealloc_plan_done(&p->prealloc);
	cpu_list_free(p->hk_vcpus);
	housekeeping_plan_done(&p->hk);
	vfio_plan_free(p->vfio);
	free(p);
}

static int command_line(const struct definition *d, char ***ret_argv, struct ql_error *err)
{
	/* Setuid mode (SECURITY.md): a bare name would be found through the caller's PATH, a
	 * relative path through the caller's cwd; both let the caller choose what runs. Checked
	 * here so --dry-run and --check refuse it as well. */
	if (privileges_is_setuid() && d->binary[0] != '/')
		return ql_error_set(err, EPERM,
				    "%s: `binary` must be an absolute path when qemu-launcher runs "
				    "setuid (got `%s`)",
				    d->path, d->binary);
	return cmdline_build(d, ret_argv, err);
}

static int private_options(bool paused, char ***ret_extra, struct ql_error *err)
{
	_cleanup_strv_free_ char **extra = calloc(6, sizeof(char *));
	if (!extra)
		return ql_error_set(err, ENOMEM, "out of memory");
	size_t n = 0;
	char *chardev = NULL;
	if (asprintf(&chardev, "socket,id=" QMP_CHARDEV_ID ",fd=%d", QL_QMP_CHILD_FD) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	extra[1] = chardev;
	if (!(extra[n++] = strdup("-chardev")) || !extra[n++] || !(extra[n++] = strdup("-mon")) ||
	    !(extra[n++] = strdup("chardev=" QMP_CHARDEV_ID ",mode=control")) ||
	    (paused && !(extra[n++] = strdup("-S"))))
		return ql_error_set(err, ENOMEM, "out of memory");
	*ret_extra = TAKE_PTR(extra);
	return 0;
}

/* Where and how this VM's CPUs are isolated (paths, prefix, isolate_cpus, may we mount). */
static void isolation_config_of(const struct vm_options *o, struct isolation_config *ret)
{
	*ret = (struct isolation_config){
	    .vm_name = o->name,
	    .mount_path = o->paths->cpuset_mount,
	    .cgroup2_root = o->paths->cgroup2_root,
	    .prefix = o->paths->cpuset_prefix,
	    .mode = o->def->isolate_cpus,
	    /* setuid: never mount over a path the caller might have prepared */
	    .may_mount =
		!o->paths->setuid || strncmp(o->paths->cpuset_mount, "/sys/fs/cgroup/", 15) == 0,
	    .log = o->log,
	    .test_stop_at = o->paths->test_stop_at,
	};
}

/* The default hugetlb size of memfd backends: the kernel's default_hugepagesz. Only a `-object`
 * (memory-backend-memfd,hugetlb=on without hugetlbsize) uses it: without one, /proc/meminfo
 * (some 40 us to generate here, twice per start) is not read. */
static unsigned long default_hugepage_kb(const struct definition *d)
{
	static long kb;
	if (!cmdline_has_option(d, "object"))
		return 2048; /* unused */
	if (kb)
		return (unsigned long)kb;
	long long found = 0;
	kb = hugepages_meminfo_kb("/", "Hugepagesize", &found, NULL) == 0 ? (long)found : 2048;
	return (unsigned long)kb;
}

/* The pools' state against the backends' needs, (re)read. */
static int hugepages_count(struct vm_plan *p, struct ql_error *err)
{
	hugepages_plan_done(&p->huge);
	return hugepages_plan_compute(p->o->paths->sysfs_root, p->mem, p->n_mem, &p->huge, err);
}

/* Which guest RAM is on hugepages and how the host's pools stand (reads only). */
static int hugepages_prepare(struct vm_plan *p, struct ql_error *err)
{
	int r = mem_backends_parse(p->o->def, hugepages_hugetlbfs_page_kb,
				   default_hugepage_kb(p->o->def), &p->mem, &p->n_mem, err);
	for (size_t i = 0; r == 0 && i < p->n_mem; i++) {
		_cleanup_free_ char *w = hugepages_backend_warning(&p->mem[i]);
		if (w)
			ql_log(p->o->log, QL_LOG_WARNING, "hugepages: %s", w);
	}
	if (r == 0 && p->n_mem)
		r = hugepages_count(p, err);
	return r;
}

/* The vCPU CPUs and what housekeeping would write now (reads only). */
static int housekeeping_prepare(struct vm_plan *p, struct ql_error *err)
{
	const struct definition *d = p->o->def;
	if (!(p->hk_vcpus = cpu_list_new(64)))
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < d->n_pins; i++)
		if (cpu_list_add(p->hk_vcpus, d->pins[i].host_cpu) < 0)
			return ql_error_set(err, ERANGE, "CPU %u out of range",
					    d->pins[i].host_cpu);
	return housekeeping_plan_compute(p->o->paths->sysfs_root, &d->housekeeping, p->hk_vcpus,
					 &p->hk, err);
}

/* rlimit_memlock: auto made a size, the preallocation threads placed (memlock.h, prealloc.h)
 * when the VM places threads on CPUs (vcpu_pinning or emulator_pinning: a scheduler alone
 * would give the context every CPU, which places nothing). */
static int memory_prepare(struct vm_plan *p, bool places, struct ql_error *err)
{
	const struct definition *d = p->o->def;
	p->memlock = d->memlock;
	p->memlock_bytes = d->memlock_bytes;
	if (d->memlock != QL_MEMLOCK_AUTO && !places)
		return 0;
	_cleanup_(mem_layout_done) struct mem_layout l = {0};
	int r = mem_layout_parse(d, hugepages_hugetlbfs_page_kb, default_hugepage_kb(d), &l, err);
	if (r == 0 && d->memlock == QL_MEMLOCK_AUTO) {
		p->memlock = QL_MEMLOCK_BYTES;
		p->memlock_bytes = memlock_auto_bytes(&l);
		p->guest_ram = l.guest_ram;
	}
	/* setuid: the binary is not run before the privilege drop; thread-context is assumed */
	if (r == 0 && places)
		r = prealloc_plan_new(d, &l, !p->o->paths->setuid, &p->prealloc, err);
	for (char **w = p->prealloc.warnings; r == 0 && w && *w; w++)
		ql_log(p->o->log, QL_LOG_WARNING, "%s", *w);
	return r;
}

/* The VFIO devices' groups, checked or planned to move (reads only), for qemu's identity. */
static int vfio_prepare(struct vm_plan *p, struct ql_error *err)
{
	_cleanup_(identity_done) struct identity id = {0};
	int r = privileges_identity(p->o->def, p->o->paths->setuid, &id, err);
	if (r < 0)
		return r;
	struct vfio_identity vid = {.change = id.change,
				    .uid = id.uid,
				    .gid = id.gid,
				    .groups = id.groups,
				    .n_groups = id.n_groups};
	return vfio_plan_compute(p->o->paths->sysfs_root, p->o->def, &vid, &p->vfio, err);
}

int vm_plan_new(const struct vm_options *o, struct vm_plan **ret, struct ql_error *err)
{
	const struct definition *d = o->def;
	_cleanup_vm_plan_ struct vm_plan *p = calloc(1, sizeof(*p));
	if (!p)
		return ql_error_set(err, ENOMEM, "out of memory");
	p->o = o;
	p->user_paused = cmdline_has_option(d, "S");
	bool pins = definition_wants_pinning(d);
	int r = command_line(d, &p->argv_user, err);
	if (r == 0)
		r = private_options(pins && !p->user_paused, &p->extra, err);
	if (r == 0 && pins) {
		struct isolation_config icfg;
		isolation_config_of(o, &icfg);
		r = pinning_prepare(d, &icfg, &p->pinning, err);
	}
	/* qemu would fail late with "group N is not viable": say it before anything starts */
	if (r == 0 && (r = vfio_prepare(p, err)) < 0 && r != -ENOMEM && o->dry_run) {
		ql_log(o->log, QL_LOG_WARNING, "%s (a run would stop here)", err->msg);
		ql_error_clear(err);
		r = 0;
	}
	if (r == 0 && d->hugepages != QL_HUGEPAGES_IGNORE)
		r = hugepages_prepare(p, err);
	if (r == 0)
		r = memory_prepare(p, d->n_pins > 0 || d->emulator_cpus, err);
	if (r == 0 && d->housekeeping.on)
		r = housekeeping_prepare(p, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(p);
	return 0;
}

int vm_plan_refusal(const struct vm_plan *p, char **ret)
{
	*ret = NULL;
	return p->huge.n ? hugepages_plan_refusal(&p->huge, p->o->def->hugepages, ret) : 0;
}

/* --dry-run: the sized RLIMIT_MEMLOCK and what qemu-launcher adds for preallocation. */
static void describe_memory(const struct vm_plan *p, FILE *f)
{
	const struct prealloc_plan *pa = &p->prealloc;
	if (p->o->def->memlock == QL_MEMLOCK_AUTO)
		fprintf(f,
			"# rlimit_memlock: auto: RLIMIT_MEMLOCK %" PRIu64
			" bytes (guest RAM %" PRIu64 " + 1 GiB for qemu and VFIO)\n",
			p->memlock_bytes, p->guest_ram);
	if (pa->args) {
		_cleanup_free_ char *obj = cmdline_shell_join(pa->args);
		fprintf(f, "# qemu-launcher adds for the preallocation threads: %s\n",
			obj ? obj : "?");
	}
	for (size_t i = 0; i < pa->n; i++)
		fprintf(f, "# qemu-launcher adds prealloc-context=%s to memory backend `%s`\n",
			pa->contexts[i], pa->ids[i]);
	for (char **n = pa->notes; n && *n; n++)
		fprintf(f, "# %s\n", *n);
}

char *vm_plan_describe(const struct vm_plan *p)
{
	_cleanup_free_ char *line = cmdline_shell_join(p->argv_user);
	_cleanup_free_ char *added = cmdline_shell_join(p->extra);
	_cleanup_free_ char *plan = p->pinning ? pinning_describe(p->pinning) : NULL;
	_cleanup_free_ char *huge =
	    p->huge.n ? hugepages_plan_describe(&p->huge, p->o->def->hugepages) : NULL;
	_cleanup_free_ char *hk = p->hk_vcpus ? housekeeping_plan_describe(&p->hk) : NULL;
	_cleanup_free_ char *vfio = p->vfio ? vfio_plan_describe(p->vfio) : NULL;
	if (!line || !added || (p->pinning && !plan) || (p->huge.n && !huge) ||
	    (p->hk_vcpus && !hk) || (p->vfio && !vfio))
		return NULL;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	fprintf(f, "%s\n# qemu-launcher adds its private QMP channel: %s\n", line, added);
	/* Every plan line as a comment, so the output stays pasteable. */
	char *parts[] = {plan, huge, hk, vfio};
	for (size_t i = 0; i < ELEMENTSOF(parts); i++)
		for (char *save = NULL, *l = parts[i] ? strtok_r(parts[i], "\n", &save) : NULL; l;
		     l = strtok_r(NULL, "\n", &save))
			fprintf(f, "# %s\n", l);
	describe_memory(p, f);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static int strv_concat(char **a, char **b, char ***ret)
{
	size_t na = strv_length(a), nb = strv_length(b);
	char **v = calloc(na + nb + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	/* (either may be NULL, and memcpy from NULL is undefined even for 0 bytes) */
	for (size_t i = 0; i < na; i++)
		v[i] = a[i];
	for (size_t i = 0; i < nb; i++)
		v[na + i] = b[i];
	*ret = v;
	return 0;
}

static int rescan_cb(void *userdata, struct ql_error *err)
{
	return pinning_rescan(userdata, err);
}

/* A started qemu on its way to running the guest. */
struct start {
	struct vm_plan *p;
	pid_t pid;
	struct qmp *qmp;
	int sigfd;
	int stop_signal;	    /* a stop signal that arrived while waiting for qemu */
	struct guardian **guardian; /* vm_run's: undoes the host changes of a killed launcher */
	bool ended;		    /* qemu was reaped during start-up: the outcome is known */
	bool resumed;		    /* qemu said RESUME: the guest ran (our cont, or another's) */
	/* The guest runs now, as qemu's last RESUME or STOP said (a user's own monitor may
	 * continue a guest -S left paused, or pause one): a stop signal asks a running guest to
	 * power down and has qemu quit a paused one at once. Until an event, !user_paused. */
	bool guest_running;
	bool guest_suspended; /* qemu said SUSPEND (the guest went to S3), not WAKEUP since */
	bool early_done;      /* pinning_apply_early placed the vCPUs, or will not */
	/* cont was staged without query-cpus-fast before it: the vCPUs are to be placed by
	 * their names while qemu builds the machine, and qemu's answer is checked after cont */
	bool names_first;
};

static void on_qmp_event(const char *event, void *userdata)
{
	struct start *st = userdata;
	struct ql_shown s;
	ql_log(st->p->o->log, QL_LOG_INFO, "qemu event %s", ql_show(&s, event));
	if (streq(event, "RESUME"))
		st->resumed = st->guest_running = true;
	else if (streq(event, "STOP"))
		st->guest_running = false;
	else if (streq(event, "SUSPEND"))
		st->guest_suspended = true;
	else if (streq(event, "WAKEUP"))
		st->guest_suspended = false;
}

/* qmp_set_interrupt's callback: a stop signal ends any wait for qemu during start-up. */
static bool stop_requested(void *userdata)
{
	struct start *st = userdata;
	if (!st->stop_signal)
		st->stop_signal = supervise_take_stop_signal(st->sigfd);
	return st->stop_signal != 0;
}

/* What the guardian runs after a killed launcher's qemu ended (reclaim.h): its cpusets, then
 * its journal. */
static int undo_argv(const struct vm_plan *p, char ***ret, struct ql_error *err)
{
	const struct vm_options *o = p->o;
	struct reclaim_what w = {.vm_name = o->name,
				 .journal_dir = p->journal ? o->paths->journal_dir : NULL,
				 /* a killed launcher's guardian shows what the run showed */
				 .log_level = o->log ? (int)o->log->max_level : QL_LOG_WARNING,
				 .careful = o->paths->setuid};
	if (pinning_leaves_sets(p->pinning)) {
		w.backend = pinning_backend(p->pinning);
		isolation_config_of(o, &w.iso);
	}
	return reclaim_argv(&w, ret, err);
}

/* The run records host values in the journal (hugepages, housekeeping, VFIO drivers). */
static bool changes_host_values(const struct vm_plan *p)
{
	const struct definition *d = p->o->def;
	return d->hugepages == QL_HUGEPAGES_RESERVE || d->housekeeping.on ||
	       vfio_plan_changes_host(p->vfio);
}

/* guardian_start with the plan's undo. */
static int guardian_for(const struct vm_plan *p, pid_t qemu_pid, const int *close_fds,
			struct guardian **ret, struct ql_error *err)
{
	_cleanup_strv_free_ char **argv = NULL;
	int r = undo_argv(p, &argv, err);
	if (r < 0)
		return r;
	/* without it, another start would give the journal's values back as soon as this
	 * launcher is killed: while its qemu may still use them */
	struct ql_error e = {0};
	if (changes_host_values(p) && journal_keep_for_guardian(p->journal, &e) < 0)
		ql_log(p->o->log, QL_LOG_WARNING,
		       "journal: %s (another start could give back this VM's host values while "
		       "qemu outlives a killed launcher)",
		       e.msg);
	ql_error_clear(&e);
	return guardian_start(qemu_pid, argv, close_fds, ret, err);
}

/* Before anything is pinned: a launcher SIGKILLed from here on must not leave the host's tasks
 * confined until the next start. Without it the next start still reclaims: a warning only. A
 * guardian forked before the hugepage reservation (host_values_before) is told qemu's pid. */
static void start_guardian(struct start *st)
{
	struct ql_error e = {0};
	if (*st->guardian) {
		if (guardian_watch(*st->guardian, st->pid, &e) < 0)
			ql_log(
			    st->p->o->log, QL_LOG_WARNING,
			    "the guardian cannot watch qemu (%s): it would undo the host changes "
			    "without waiting for qemu's end",
			    e.msg);
		ql_error_clear(&e);
		return;
	}
	/* a qemu that changes its user loses the parent-death signal that would take it along
	 * with a killed launcher: the guardian ends it then */
	bool sets = pinning_leaves_sets(st->p->pinning);
	bool values = journal_has_records(st->p->journal) || st->p->hk_vcpus;
	bool user = cmdline_changes_user(st->p->o->def);
	if (!sets && !values && !user)
		return;
	const int close_fds[] = {qmp_fd(st->qmp), st->sigfd,
				 journal_hugepages_lock_fd(st->p->journal), -1};
	if (guardian_for(st->p, st->pid, close_fds, st->guardian, &e) < 0) {
		/* what a killed launcher would leave, as it applies to this run */
		const char *left[3];
		size_t n = 0;
		if (sets)
			left[n++] = "its cpusets would wait for the next start to be reclaimed";
		if (values)
			left[n++] = "its host values (journal) would wait for the next start";
		if (user)
			left[n++] = "qemu, which changes its user, would outlive it unsupervised";
		ql_log(st->p->o->log, QL_LOG_WARNING,
		       "no guardian for a killed launcher (%s): %s%s%s%s%s", e.msg, left[0],
		       n > 1 ? "; " : "", n > 1 ? left[1] : "", n > 2 ? "; " : "",
		       n > 2 ? left[2] : "");
	}
	ql_error_clear(&e);
}

/* qemu closed QMP while `phase` was under way. When it exited by itself with a failure, that is
 * qemu's failure (its own message is on stderr): its status. Anything else (it exited 0, or kept
 * running and had to be stopped) is the launcher's failed start. */
static int startup_ended(struct start *st, const char *phase, struct vm_outcome *ret,
			 struct ql_error *err)
{
	int status = 0;
	pid_t w = 0;
	st->ended = true;
	/* its fds close just before it becomes a zombie: give it a moment to get there */
	for (int i = 0; i < 50 && (w = waitpid(st->pid, &status, WNOHANG)) == 0; i++)
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	if (w != st->pid) {
		supervise_terminate(st->pid, NULL, NULL);
		ret->end = VM_END_LAUNCHER;
		return ql_error_set(
		    err, EPROTO, "qemu closed its QMP channel %s but kept running; it was stopped",
		    phase);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		ret->end = VM_END_LAUNCHER;
		return ql_error_set(err, EPROTO,
				    "qemu exited with status 0 %s: the VM did not start", phase);
	}
	if (WIFEXITED(status))
		ql_log(st->p->o->log, QL_LOG_WARNING,
		       "qemu exited with status %d during startup (%s)", WEXITSTATUS(status),
		       phase);
	else
		ql_log(st->p->o->log, QL_LOG_WARNING,
		       "qemu was killed by signal %d (%s) during startup (%s)", WTERMSIG(status),
		       strsignal(WTERMSIG(status)), phase);
	ret->end = VM_END_QEMU;
	ret->wait_status = status;
	return 0;
}

/* Waits until qemu has written on QMP (its greeting) or closed it, or a stop signal arrived (the
 * QMP interrupt start() sets). The handshake would wait for the greeting too, but a stop signal
 * there is told to qemu over QMP, which a qemu that has not greeted cannot read; and qemu may take
 * long before greeting (mem-lock of a big guest): a SIGTERM meanwhile must not wait for it. Returns
 * the signal, or 0 to let the handshake proceed (it reports timeouts and EOF itself). After a
 * prepare it keeps the migration lock warm meanwhile (pinning_keep_warm), for at most
 * KEEP_WARM_BEFORE_GREETING_MS: a qemu that mem-locks a big guest greets after seconds, and a grace
 * period spent at the greeting is then still shorter than the machine it builds. */
#define KEEP_WARM_BEFORE_GREETING_MS 250
static int wait_for_greeting(struct start *st, struct pinning *warm, int timeout_ms)
{
	struct ql_error e = {0};
	int r = -ETIMEDOUT;
	if (warm) {
		qmp_set_tick(st->qmp, ISOLATION_KEEP_WARM_MS, pinning_keep_warm, warm);
		r = qmp_wait_input(st->qmp, KEEP_WARM_BEFORE_GREETING_MS, &e);
		qmp_set_tick(st->qmp, 0, NULL, NULL);
		ql_error_clear(&e);
		timeout_ms -= KEEP_WARM_BEFORE_GREETING_MS;
	}
	if (r == -ETIMEDOUT && timeout_ms > 0)
		r = qmp_wait_input(st->qmp, timeout_ms, &e);
	ql_error_clear(&e);
	return r == -EINTR ? st->stop_signal : 0;
}

/* A stop signal during start-up: qemu ends (told over QMP once it answers there, else by
 * SIGTERM), the guest never runs, nothing stays changed. */
static int stopped_during_start(struct start *st, int sig, struct qmp *qmp, struct vm_outcome *ret)
{
	ql_log(st->p->o->log, QL_LOG_INFO, "received %s during start; not starting the guest",
	       strsignal(sig));
	supervise_terminate(st->pid, qmp, &ret->wait_status);
	st->ended = true;
	ret->end = VM_END_QEMU;
	return 0;
}

/* Forks and execs qemu with its end of the QMP socketpair; st->qmp gets ours. */
static int spawn(struct start *st, const sigset_t *old_mask, struct vm_outcome *ret,
		 struct ql_error *err)
{
	const struct vm_options *o = st->p->o;
	const struct definition *d = o->def;
	bool setuid = o->paths->setuid;
	_cleanup_free_ char **argv0 = NULL, **argv = NULL; /* borrow the plan's strings */
	const struct prealloc_plan *pa = &st->p->prealloc;
	if (strv_concat(st->p->argv_user, st->p->extra, &argv0) < 0 ||
	    strv_concat(argv0, pa->args, &argv) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < pa->n; i++)
		argv[pa->argv_index[i]] = pa->values[i]; /* said by --dry-run */
	_cleanup_(identity_done) struct identity id = {0};
	_cleanup_strv_free_ char **envp = NULL;
	int r = privileges_identity(d, setuid, &id, err);
	if (r == 0)
		r = launch_build_env(d, setuid, &id, &envp, err);
	if (r < 0)
		return r;
	_cleanup_(launch_session_done) struct launch_session session = {.umask = -1};
	r = launch_session_init(d, setuid, &id, &session, err);
	if (r < 0)
		return r;

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return ql_error_set_errno(err, errno, "socketpair");
	_cleanup_close_ int qmp_ours = sv[0], qmp_theirs = sv[1];
	struct launch_spec spec = {
	    .argv = argv,
	    .envp = envp,
	    .path_lookup = !setuid && !strchr(d->binary, '/'),
	    .identity = &id,
	    .memlock = st->p->memlock,
	    .memlock_bytes = st->p->memlock_bytes,
	    .qmp_fd = qmp_theirs,
	    .restore_mask = old_mask,
	    .session = &session,
	};
	ql_log(o->log, QL_LOG_INFO, "starting %s", d->binary);
	r = launch_spawn(&spec, &st->pid, err);
	if (r < 0) {
		ret->end = r == -ENOENT	   ? VM_END_NOT_FOUND
			   : r == -ENOEXEC ? VM_END_NOT_EXECUTABLE
					   : VM_END_LAUNCHER;
		return r;
	}
	ql_log(o->log, QL_LOG_INFO, "qemu running as pid %d", (int)st->pid);
	r = qmp_new(TAKE_FD(qmp_ours), on_qmp_event, st, &st->qmp, err);
	if (r < 0)
		supervise_terminate(st->pid, NULL, NULL);
	return r;
}

/* QMP said EOF: qemu is gone or going. A stop signal ends the start. Any other failure is the
 * launcher's. */
static int query_failed(struct start *st, int r, const char *phase, struct vm_outcome *ret,
			struct ql_error *err)
{
	if (r == -EINTR && st->stop_signal) {
		ql_error_clear(err);
		/* quit is answered after the pending command; a stalled qemu gets SIGTERM when
		 * that does not come within supervise_terminate's grace */
		return stopped_during_start(st, st->stop_signal, st->qmp, ret);
	}
	if (r == -ECONNRESET) {
		ql_error_clear(err);
		return startup_ended(st, phase, ret, err);
	}
	return r;
}

/* Housekeeping, planned again from the host's values now (another VM may have started since
 * the plan), written through the journal; vm_run's undo and the guardian give it back. */
static int housekeeping_begin(struct vm_plan *p, struct ql_error *err)
{
	if (!p->hk_vcpus)
		return 0;
	return housekeeping_start(p->o->paths->sysfs_root, &p->o->def->housekeeping, p->hk_vcpus,
				  p->journal, p->o->log, err);
}

/* qemu exited, or closed its QMP channel: the handshake reports how (its own failure, or one
 * that kept running). */
static bool qemu_going(const struct start *st)
{
	siginfo_t si = {0};
	if (waitid(P_PID, (id_t)st->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid == st->pid)
		return true;
	struct pollfd pfd = {.fd = qmp_fd(st->qmp), .events = POLLRDHUP};
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

/* qemu_going(), allowing it ms to get there: a placement that failed (a thread or /proc/PID
 * gone, a read-back that found no thread) is mostly qemu being killed, and its threads go before
 * it can be waited for or its QMP channel closes (a few ms; 10-15 ms with 64 vCPUs on one CPU).
 * Only a failing start waits here. */
#define QEMU_DYING_MS 250
static bool qemu_gone_within(const struct start *st, int ms)
{
	int64_t deadline = deadline_ms(ms);
	while (!qemu_going(st)) {
		if (now_ms() >= deadline)
			return false;
		nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
	}
	return true;
}

/* No other monitor let the guest run before it was pinned. QEMU sends RESUME to every monitor
 * past its capabilities negotiation before it lets the vCPUs run, so a RESUME read by now
 * (what qemu wrote is read here, without a wait) is another monitor's, and one not written yet
 * means the guest starts after the placement. A start before ours was negotiated shows after
 * cont (pin_and_start). This replaces a query-status asked after query-cpus-fast, whose answer
 * came after the placement, on the critical path (0.8 ms a launch on a slow host,
 * bench/RESULTS.md). */
static int check_not_resumed(struct start *st, struct vm_outcome *ret, struct ql_error *err)
{
	int r = qmp_process_input(st->qmp, err);
	if (r < 0)
		return query_failed(st, r, "while its threads were pinned", ret, err);
	if (st->resumed)
		return ql_error_set(
		    err, EPROTO,
		    "qemu's guest was resumed (RESUME) before it was pinned: another "
		    "monitor let it run; refusing to pin a guest that already ran");
	return 0;
}

/* A placement that failed because qemu ended under it (its threads vanished): qemu's end, not
 * ours. */
static int placement_failed(struct start *st, int r, struct vm_outcome *ret, struct ql_error *err)
{
	if (r < 0 && qemu_gone_within(st, QEMU_DYING_MS)) {
		ql_error_clear(err);
		return startup_ended(st, "while its threads were pinned", ret, err);
	}
	return r;
}

/* By qemu's answers: query-cpus-fast (and query-iothreads), then pinning_apply, which only
 * checks threads placed by their names against the answer (and places again if it differs). */
static int place_by_answer(struct start *st, struct vm_outcome *ret, struct ql_error *err)
{
	_cleanup_free_ struct qmp_cpu *cpus = NULL;
	size_t n_cpus = 0;
	int r = qmp_query_cpus_fast(st->qmp, COMMAND_TIMEOUT_MS, &cpus, &n_cpus, err);
	if (r < 0)
		return query_failed(st, r, "during query-cpus-fast", ret, err);
	_cleanup_free_ struct qmp_iothread *io = NULL;
	size_t n_io = 0;
	if (pinning_wants_iothreads(st->p->pinning)) {
		r = qmp_query_iothreads(st->qmp, COMMAND_TIMEOUT_MS, &io, &n_io, err);
		if (r < 0)
			return query_failed(st, r, "during query-iothreads", ret, err);
	}
	qmp_set_tick(st->qmp, 0, NULL, NULL);
	r = pinning_apply(st->p->pinning, st->pid, cpus, n_cpus, io, n_io, err);
	return placement_failed(st, r, ret, err);
}

/* Every vCPU thread placed before cont. With names_first, qemu has built its machine once it
 * answers qmp_capabilities, and the threads placed by their names meanwhile are confirmed by
 * their names (pinning_confirm_by_names): cont then waits for no query, whose bytes qemu reads
 * one per turn of its monitor loop after the build (bench/RESULTS.md). Otherwise, or when the
 * names do not settle it, by qemu's answers. 1: placed by names (check_names_after_cont). */
static int place(struct start *st, struct vm_outcome *ret, struct ql_error *err)
{
	if (st->names_first && pinning_placed_early(st->p->pinning)) {
		int r = pinning_confirm_by_names(st->p->pinning, st->pid, err);
		if (r != 0) {
			qmp_set_tick(st->qmp, 0, NULL, NULL);
			return r < 0 ? placement_failed(st, r, ret, err) : 1;
		}
		ql_log(st->p->o->log, QL_LOG_INFO,
		       "qemu has a vCPU thread its names did not show when the vCPUs were placed: "
		       "asking qemu before cont");
	}
	return place_by_answer(st, ret, err);
}

/* After a cont that followed a placement by names: qemu's own answer must list the very
 * threads placed. Off the start's critical path; a guest that already ended answers nothing. */
static int check_names_after_cont(struct start *st, struct vm_outcome *ret, struct ql_error *err)
{
	_cleanup_free_ struct qmp_cpu *cpus = NULL;
	size_t n_cpus = 0;
	int r = qmp_query_cpus_fast(st->qmp, COMMAND_TIMEOUT_MS, &cpus, &n_cpus, err);
	if (r == -ECONNRESET) {
		ql_error_clear(err);
		return 0; /* qemu is gone: supervision reports how it ended */
	}
	if (r < 0)
		return query_failed(st, r, "after cont, during query-cpus-fast", ret, err);
	return pinning_check_answer(st->p->pinning, cpus, n_cpus, err);
}

/* Pins and schedules while qemu is in prelaunch, reads everything back, checks that no other
 * monitor let the guest run meanwhile, then lets it run (unless the definition keeps it
 * paused). */
static int pin_and_start(struct start *st, struct vm_outcome *ret, struct ql_error *err)
{
	int placed = place(st, ret, err);
	if (placed < 0 || st->ended) /* failed, or qemu ended or was stopped meanwhile */
		return placed < 0 ? placed : 0;
	int r = check_not_resumed(st, ret, err);
	if (r == 0)
		r = housekeeping_begin(st->p, err);
	if (r < 0)
		return r;
	int sig = st->stop_signal ? st->stop_signal : supervise_take_stop_signal(st->sigfd);
	if (sig)
		return stopped_during_start(st, sig, st->qmp, ret);
	if (st->p->user_paused) {
		pinning_guest_started(st->p->pinning);
		ql_log(st->p->o->log, QL_LOG_INFO, "guest left paused (-S in the definition)");
		return 0;
	}
	/* From here a stop signal is the running guest's: supervision powers it down. */
	qmp_set_interrupt(st->qmp, -1, NULL, NULL);
	r = qmp_execute(st->qmp, "cont", COMMAND_TIMEOUT_MS, err);
	pinning_guest_started(st->p->pinning);
	if (r == -ECONNRESET && st->resumed) {
		/* the guest ran and ended before qemu's reply to cont was read (its RESUME comes
		 * first): that end is the guest's, for supervision to report */
		ql_error_clear(err);
		r = 0;
	}
	if (r < 0)
		return query_failed(st, r, "before the guest started (cont)", ret, err);
	/* qemu sends RESUME before its reply to a cont that starts the guest. None at all: the
	 * guest ran before ours was negotiated (an HMP monitor's `c`), or qemu is not in
	 * prelaunch (-incoming: cont only sets it to start once migrated). */
	if (!st->resumed)
		return ql_error_set(
		    err, EPROTO,
		    "qemu answered cont without starting the guest (no RESUME): "
		    "another monitor let it run before the launcher's was ready, or it "
		    "was not in prelaunch (-incoming)");
	if (placed == 1 && (r = check_names_after_cont(st, ret, err)) < 0)
		return r;
	ql_log(st->p->o->log, QL_LOG_INFO, "guest started");
	return 0;
}

/* The host changes that need no thread id, made right after the spawn: qemu then spends 20-25
 * ms before it greets and about 15 more building a 2-vCPU TCG machine before it answers the
 * questions sent ahead (bench host). The first cgroup migration of a burst waits for an RCU
 * grace period (7-15 ms there, bench/RESULTS.md): made here, that wait and the prepare overlap
 * qemu's start-up. Made at the greeting instead, the prepare still ran when qemu answered in 9
 * of 20 traced launches (by 0.3 to 20 ms). The keep-warm ticks from here to the answers spare
 * the vCPU moves a grace period of their own. */
static int prepare_host(struct start *st, struct ql_error *err)
{
	if (qemu_going(st))
		return 0;
	int r = pinning_prepare_host(st->p->pinning, st->pid, err);
	/* qemu's threads leave its set before it can be waited for (a read-back then finds none) */
	if (r < 0 && qemu_gone_within(st, QEMU_DYING_MS)) {
		ql_error_clear(err);
		return 0;
	}
	return r;
}

/* The vCPUs qemu will list: -smp's, or vcpu_pinning's length when its parser cannot tell.
 * Asked while qemu initialises, not in the plan: the launcher waits then, before the spawn it
 * would not. */
static unsigned answered_vcpus(const struct definition *d)
{
	unsigned smp = smp_topology_of(d).cpus;
	return smp ? smp : (unsigned)d->n_pins;
}

/* Every 3 ms that qemu is silent between its greeting and its answers, while it builds the
 * machine: keeps the migration lock warm, and places the vCPU threads as soon as their names
 * show them all (pinning_apply_early), so the placement is no longer between qemu's answer and
 * cont. */
static void building_tick(void *userdata)
{
	struct start *st = userdata;
	pinning_keep_warm(st->p->pinning);
	if (st->early_done)
		return;
	struct ql_error e = {0};
	int r = pinning_apply_early(st->p->pinning, st->pid, answered_vcpus(st->p->o->def), &e);
	if (r == 1)
		ql_log(st->p->o->log, QL_LOG_DEBUG,
		       "vCPU threads placed by their names, before qemu's answer");
	else if (r < 0 && r != -ECANCELED)
		/* the reason only: at the answer the same placement fails with its message */
		ql_log(st->p->o->log, QL_LOG_DEBUG,
		       "vCPU threads not placed early (%s): qemu's answer places them",
		       strerror(-r));
	st->early_done = r != 0;
	ql_error_clear(&e);
}

/* Once qemu has ended and been reaped: the pinning's host changes undone. When that fails (another
 * launcher kept the lock, say), the guardian tries again as soon as this launcher has exited, which
 * need not wait for the lock once more first; without a guardian the next start reclaims them. */
static void release_pinning(struct vm_plan *p, struct guardian **guardian)
{
	if (!p->pinning)
		return;
	pinning_qemu_reaped(p->pinning);
	/* tests stop here: a process may take qemu's pid meanwhile */
	if (streq(p->o->paths->test_stop_at, "qemu-reaped"))
		raise(SIGSTOP);
	struct ql_error e = {0};
	if (pinning_release(p->pinning, &e) < 0) {
		ql_log(p->o->log, QL_LOG_WARNING, "undoing host changes: %s%s", e.msg,
		       *guardian ? " (the guardian tries again now)" : "");
		if (*guardian) {
			pinning_hand_over(p->pinning);
			guardian_hand_over(TAKE_PTR(*guardian));
		}
	}
	ql_error_clear(&e);
}

/* From fork to a running (or deliberately paused) guest, unless st->ended says the run already
 * ended during start-up. On failure qemu is gone and nothing stays changed. */
static int start(struct start *st, const sigset_t *old_mask, struct vm_outcome *ret,
		 struct ql_error *err)
{
	int r = spawn(st, old_mask, ret, err);
	if (r < 0)
		return r;
	/* Every start-up question in one write, before qemu even greets: its monitor reads them
	 * as soon as it is up and answers in order, so no answer waits for a round trip. With
	 * thread names the vCPUs are placed while qemu builds the machine, and no question
	 * stands between its end and cont (place). */
	static const char *const ahead_pinned[] = {"qmp_capabilities", "query-cpus-fast", NULL};
	static const char *const ahead_io[] = {"qmp_capabilities", "query-cpus-fast",
					       "query-iothreads", NULL};
	static const char *const ahead_plain[] = {"qmp_capabilities", NULL};
	struct pinning *pin = st->p->pinning;
	bool named = cmdline_names_threads(st->p->o->def);
	st->names_first = !st->p->user_paused && pinning_may_place_early(pin) && named;
	const char *const *ahead = !pin || st->names_first	  ? ahead_plain
				   : pinning_wants_iothreads(pin) ? ahead_io
								  : ahead_pinned;
	r = qmp_pipeline(st->qmp, ahead, err);
	/* cont, all but its last byte: qemu reads a byte per turn of its monitor loop, so after
	 * the placement only that byte is left to read (qmp_stage) */
	if (r == 0 && st->p->pinning && !st->p->user_paused)
		r = qmp_stage(st->qmp, "cont", err);
	if (r < 0) {
		r = query_failed(st, r, "during the QMP handshake", ret, err);
		goto out;
	}
	start_guardian(st);
	if (st->p->pinning && (r = prepare_host(st, err)) < 0)
		goto out;
	/* while qemu initialises: the pages its answers will be parsed into */
	if (st->p->pinning)
		heap_warm(heap_warm_bytes_for(answered_vcpus(st->p->o->def)));
	/* no tick (and no wake-up) for a backend with nothing to keep warm: affinity */
	struct pinning *warm = pinning_keeps_warm(st->p->pinning) ? st->p->pinning : NULL;
	/* a stop signal ends every wait of the start-up, this one and the handshake's on */
	qmp_set_interrupt(st->qmp, st->sigfd, stop_requested, st);
	int early_sig = wait_for_greeting(st, warm, GREETING_TIMEOUT_MS);
	if (early_sig) {
		r = stopped_during_start(st, early_sig, NULL, ret);
		goto out; /* the prepare is undone there */
	}
	ql_log(st->p->o->log, QL_LOG_DEBUG, "qemu greeted; the host is prepared");
	/* without thread names, looking for them would only cost qemu's start-up CPU time */
	st->early_done = !named;
	if (warm)
		qmp_set_tick(st->qmp, ISOLATION_KEEP_WARM_MS, building_tick, st);
	r = qmp_handshake(st->qmp, GREETING_TIMEOUT_MS, err);
	/* qemu answers once its machine is built: its guest RAM is mapped, the pages taken */
	journal_unlock_hugepages(st->p->journal);
	if (r < 0)
		r = query_failed(st, r, "during the QMP handshake", ret, err);
	else
		ql_log(st->p->o->log, QL_LOG_INFO, "QMP connected");
	if (r == 0 && !st->ended && st->p->pinning)
		r = pin_and_start(st, ret, err);
out:
	if (st->qmp)
		qmp_set_tick(st->qmp, 0, NULL, NULL);
	if (r < 0 && !st->ended) {
		supervise_terminate(st->pid, st->qmp, NULL);
		st->ended = true;
		ret->end = VM_END_LAUNCHER;
	}
	if (st->ended)
		release_pinning(st->p, st->guardian);
	return r;
}

/* Exit codes 126/127 are reserved for exec failures; keep other ENOENTs (a missing cpuset file)
 * from reading as "binary not found" to anyone who maps err->code. */
static int launcher_failure(int r, struct vm_outcome *ret, struct ql_error *err)
{
	if (ret->end == VM_END_LAUNCHER && (r == -ENOENT || r == -ENOEXEC)) {
		if (err)
			err->code = EIO;
		return -EIO;
	}
	return r;
}

static int run(struct vm_plan *p, struct guardian **guardian, struct vm_outcome *ret,
	       struct ql_error *err)
{
	const struct vm_options *o = p->o;
	*ret = (struct vm_outcome){.end = VM_END_LAUNCHER};
	sigset_t old_mask;
	_cleanup_close_ int sigfd = -1;
	int r = supervise_signals_setup(&old_mask, &sigfd, err);
	if (r < 0)
		return r;
	struct start st = {
	    .p = p, .sigfd = sigfd, .guardian = guardian, .guest_running = !p->user_paused};
	r = start(&st, &old_mask, ret, err);
	_cleanup_qmp_ struct qmp *qmp = TAKE_PTR(st.qmp);
	if (qmp)
		qmp_set_interrupt(qmp, -1, NULL,
				  NULL); /* supervision watches the signalfd itself */
	if (r < 0)
		return launcher_failure(r, ret, err);
	if (st.ended)
		return 0;

	/* Ready means: pinned, scheduled and (unless -S) running. */
	if (notify_send(p->user_paused ? "READY=1\nSTATUS=VM paused (-S)"
				       : "READY=1\nSTATUS=VM running") < 0)
		ql_log(o->log, QL_LOG_WARNING,
		       "could not notify the service manager ($NOTIFY_SOCKET)");
	struct supervise_params sp = {
	    .pid = st.pid,
	    .qmp = qmp,
	    .sigfd = sigfd,
	    .guest_running = &st.guest_running,
	    .guest_suspended = &st.guest_suspended,
	    .shutdown_timeout = o->def->shutdown_timeout,
	    .rescan = p->pinning ? rescan_cb : NULL,
	    .userdata = p->pinning,
	    .log = o->log,
	};
	int status = 0;
	r = supervise_wait(&sp, &status, err);
	if (r < 0) {
		supervise_terminate(st.pid, qmp, NULL);
		release_pinning(p, guardian);
		return launcher_failure(r, ret, err);
	}
	release_pinning(p, guardian);
	*ret = (struct vm_outcome){.end = VM_END_QEMU, .wait_status = status};
	return 0;
}

/* Hugepages and VFIO drivers change before qemu exists: the guardian is forked before the first
 * of them, so a launcher killed right after it does not leave them to the next start. */
static void guardian_before(struct vm_plan *p, const char *what, struct guardian **ret)
{
	if (*ret || !p->journal)
		return;
	struct ql_error e = {0};
	const int keep_out[] = {journal_hugepages_lock_fd(p->journal), -1};
	if (guardian_for(p, 0, keep_out, ret, &e) < 0)
		ql_log(p->o->log, QL_LOG_WARNING,
		       "no guardian for a killed launcher (%s): its %s would wait for the next "
		       "start to be given back",
		       e.msg, what);
	ql_error_clear(&e);
}

/* Which feature needed the journal, for its messages. */
static const char *journal_user(const struct definition *d)
{
	if (d->housekeeping.on)
		return "housekeeping";
	return d->hugepages == QL_HUGEPAGES_RESERVE ? "hugepages" : "vfio";
}

static bool reserves_hugepages(const struct vm_plan *p)
{
	if (p->o->def->hugepages != QL_HUGEPAGES_RESERVE)
		return false;
	for (size_t k = 0; k < p->huge.n; k++)
		if (p->huge.v[k].missing > 0)
			return true;
	return false;
}

/* Gives back what launchers that died left in the journal (when one exists), then takes what
 * this run needs (hugepages, VFIO drivers and device nodes) through it. */
static int host_values_before(struct vm_plan *p, struct guardian **guardian, struct ql_error *err)
{
	const struct vm_options *o = p->o;
	/* they need the journal: without it nothing would give their values back */
	bool reserve = changes_host_values(p);
	/* hugepage start-ups wait for each other through the journal directory (root's) */
	bool huge = p->huge.n && o->def->hugepages != QL_HUGEPAGES_IGNORE;
	struct ql_error e = {0};
	struct stat jst;
	unsigned n_back = 0;
	/* another user's journal (root's, for an unprivileged launcher) is not ours to replay */
	if (reserve || (huge && geteuid() == 0) ||
	    (stat(o->paths->journal_dir, &jst) == 0 && jst.st_uid == geteuid())) {
		int r = journal_open(o->paths->journal_dir, o->name, o->log, &p->journal, &e);
		if (r == 0)
			r = journal_recover(p->journal, &n_back, &e);
		if (r < 0 && reserve) {
			ql_error_prefix(&e, "%s: ", journal_user(o->def));
			*err = e;
			return r;
		}
		if (r < 0)
			ql_log(o->log, QL_LOG_WARNING, "journal of host changes: %s", e.msg);
		ql_error_clear(&e);
	}
	int r = 0;
	/* Counted again once no other launcher is between its count and its qemu's mapping of
	 * the pages (the free ones would be counted twice), and after a dead launcher's reserved
	 * pages, counted free before, were given back. */
	if (huge && p->journal)
		r = journal_lock_hugepages(p->journal, err);
	if (r == 0 && p->huge.n && (n_back || journal_hugepages_lock_fd(p->journal) >= 0))
		r = hugepages_count(p, err);
	if (r < 0)
		return r;
	if (p->huge.n) {
		if (reserves_hugepages(p))
			guardian_before(p, "hugepages", guardian);
		r = hugepages_apply(&p->huge, o->def->hugepages, p->journal, o->log, err);
		/* tests kill the launcher here: the pages are reserved, qemu is not started */
		if (r == 0 && streq(o->paths->test_stop_at, "hugepages-reserved"))
			raise(SIGSTOP);
	}
	if (r == 0 && p->vfio) {
		if (vfio_plan_changes_host(p->vfio))
			guardian_before(p, "VFIO devices", guardian);
		r = vfio_apply(p->vfio, p->journal, o->paths->test_stop_at, o->log, err);
		/* tests kill the launcher here: the devices are on vfio-pci, qemu is not started */
		if (r == 0 && streq(o->paths->test_stop_at, "vfio-bound"))
			raise(SIGSTOP);
	}
	return r;
}

int vm_run(struct vm_plan *p, struct vm_outcome *ret, struct ql_error *err)
{
	*ret = (struct vm_outcome){.end = VM_END_LAUNCHER};
	/* dismissed on return, after every host change was undone */
	_cleanup_guardian_ struct guardian *guardian = NULL;
	int r = host_values_before(p, &guardian, err);
	if (r == 0)
		r = run(p, &guardian, ret, err);
	journal_unlock_hugepages(p->journal); /* a start that failed before qemu answered */
	/* qemu has ended on every path out of run() (or never started: a failed host change is
	 * given back too): its pages and devices are free to give back */
	if (p->journal && streq(p->o->paths->test_stop_at, "giving-back"))
		raise(SIGSTOP); /* tests: another start-up counts these free pages meanwhile */
	struct ql_error e = {0};
	if (journal_undo_own(p->journal, &e) < 0)
		ql_log(p->o->log, QL_LOG_WARNING, "giving back host changes: %s", e.msg);
	ql_error_clear(&e);
	return r;
}
