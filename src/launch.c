/* fork/exec of qemu with everything the child needs set up before exec. */
#include "launch.h"

#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* What the child reports through the status pipe when something before exec fails. */
struct child_failure {
	int error; /* positive errno */
	char step[64];
};

int launch_sanitize_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
		if (n < 0)
			return -errno;
		if (n != fd) {
			/* Lower fds were closed too and got filled first; keep going. */
			if (dup2(n, fd) < 0)
				return -errno;
			close(n);
		}
	}
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	/* Older kernels: walk the table. */
	for (int fd = 3; fd < 65536; fd++) {
		int flags = fcntl(fd, F_GETFD);
		if (flags >= 0)
			fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
	}
	return 0;
}

static int strv_push(char ***v, size_t *n, char *s)
{
	if (!s)
		return -ENOMEM;
	char **grown = realloc(*v, (*n + 2) * sizeof(char *));
	if (!grown) {
		free(s);
		return -ENOMEM;
	}
	*v = grown;
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
	return 0;
}

/* Replaces an existing NAME=... entry or appends. */
static int env_set(char ***v, size_t *n, const char *entry)
{
	size_t name_len = strcspn(entry, "=");
	for (size_t i = 0; i < *n; i++)
		if (strncmp((*v)[i], entry, name_len) == 0 && (*v)[i][name_len] == '=') {
			char *copy = strdup(entry);
			if (!copy)
				return -ENOMEM;
			free((*v)[i]);
			(*v)[i] = copy;
			return 0;
		}
	return strv_push(v, n, strdup(entry));
}

/* The caller's session: display, sound, terminal, locale. They give an unprivileged qemu nothing
 * it could not have had anyway, but only when qemu runs as the caller: for another user they
 * point at the caller's files (XAUTHORITY, XDG_RUNTIME_DIR, PULSE_SERVER) or load code and data
 * by path (a LC_ALL, LANG or TZ with a `/` names a file). Everything else is dropped. */
static const char *const setuid_env_caller[] = {
    "TERM",	    "DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "XDG_RUNTIME_DIR",
    "PULSE_SERVER", "LANG",    "LC_ALL",	  "TZ",
};

/* For another user only what describes the terminal qemu's stdio is connected to (TERM) and
 * the language of its messages (LANG), and only as a plain name: no path, nothing to load. */
static const char *const setuid_env_other[] = {"TERM", "LANG"};

static bool plain_env_name(const char *v)
{
	size_t n = strlen(v);
	return n > 0 && n <= 64 &&
	       strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789._+-@") == n;
}

/* A TZ that loads no file of the caller's: a POSIX rule or a zone under the system's zoneinfo
 * ("Europe/Berlin"), never an absolute path or one with `..`. */
static bool tz_in_zoneinfo(const char *v)
{
	const char *z = v[0] == ':' ? v + 1 : v;
	size_t n = strlen(z);
	return n > 0 && n <= 64 && z[0] != '/' && !strstr(z, "..") &&
	       strspn(z, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789._+-/,<>") == n;
}

/* Whether glibc would load a file the value names: a locale given as a path, a zone outside
 * zoneinfo. Only LANG, LC_ALL and TZ of the kept variables are read that way. */
static bool names_a_file(const char *name, const char *v)
{
	if (strcmp(name, "TZ") == 0)
		return !tz_in_zoneinfo(v);
	return (strcmp(name, "LANG") == 0 || strcmp(name, "LC_ALL") == 0) && !plain_env_name(v);
}

static int setuid_env(const struct definition *d, const struct identity *id, char ***env, size_t *n)
{
	uid_t uid = id && id->change ? id->uid : privileges_caller_uid();
	struct passwd *pw = getpwuid(uid);
	int r = env_set(env, n, "PATH=/usr/local/bin:/usr/bin:/bin");
	if (r == 0 && pw) {
		char *s = NULL;
		if (asprintf(&s, "HOME=%s", pw->pw_dir) >= 0)
			r = strv_push(env, n, s);
		if (r == 0 && asprintf(&s, "USER=%s", pw->pw_name) >= 0)
			r = strv_push(env, n, s);
		if (r == 0 && asprintf(&s, "LOGNAME=%s", pw->pw_name) >= 0)
			r = strv_push(env, n, s);
	}
	if (d->clear_env)
		return r;
	bool caller = identity_is_caller(id);
	/* the caller's own session, but a qemu holding a group the caller lacks loads no locale
	 * or zone data of theirs */
	bool gains = caller && id && id->gains_groups;
	const char *const *keep = caller ? setuid_env_caller : setuid_env_other;
	size_t n_keep = caller ? ELEMENTSOF(setuid_env_caller) : ELEMENTSOF(setuid_env_other);
	for (size_t i = 0; r == 0 && i < n_keep; i++) {
		const char *v = getenv(keep[i]);
		char *s = NULL;
		if (!v || (!caller && !plain_env_name(v)) || (gains && names_a_file(keep[i], v)))
			continue;
		if (asprintf(&s, "%s=%s", keep[i], v) >= 0)
			r = strv_push(env, n, s);
		else
			r = -ENOMEM;
	}
	return r;
}

int launch_build_env(const struct definition *d, bool setuid, const struct identity *id,
		     char ***ret_envp, struct ql_error *err)
{
	_cleanup_strv_free_ char **env = calloc(1, sizeof(char *));
	size_t n = 0;
	int r = 0;
	if (!env)
		return ql_error_set(err, ENOMEM, "out of memory");

	if (setuid) {
		r = setuid_env(d, id, &env, &n);
	} else if (!d->clear_env) {
		for (char **e = environ; r == 0 && e && *e; e++)
			r = strv_push(&env, &n, strdup(*e));
	}
	for (char **e = d->env; r == 0 && e && *e; e++)
		r = env_set(&env, &n, *e);
	if (r < 0)
		return ql_error_set(err, -r, "building qemu's environment: out of memory");
	*ret_envp = TAKE_PTR(env);
	return 0;
}

int launch_session_init(const struct definition *d, bool setuid, const struct identity *id,
			struct launch_session *ret, struct ql_error *err)
{
	struct launch_session s = {.umask = -1};
	bool other = setuid && !identity_is_caller(id);
	/* the caller's uid with a group they lack: files qemu makes and the relative paths it
	 * opens would otherwise be shaped by the caller for that group */
	bool gains = setuid && !other && id && id->gains_groups;
	if (d->has_umask)
		s.umask = (int)d->umask;
	else if (other || gains)
		s.umask = 022;
	if (d->working_directory) {
		s.workdir = strdup(d->working_directory);
		if (!s.workdir)
			return ql_error_set(err, ENOMEM, "out of memory");
	} else if (gains) {
		/* not the caller's home either: the caller fills it */
		s.workdir = strdup("/");
		if (!s.workdir)
			return ql_error_set(err, ENOMEM, "out of memory");
	} else if (other) {
		struct passwd *pw = getpwuid(id->uid);
		s.workdir = strdup(pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : "/");
		if (!s.workdir)
			return ql_error_set(err, ENOMEM, "out of memory");
		s.workdir_fallback = true;
	}
	*ret = s;
	return 0;
}

void launch_session_done(struct launch_session *s)
{
	free(s->workdir);
	*s = (struct launch_session){.umask = -1};
}

static int apply_memlock(const struct launch_spec *spec, const char **ret_step)
{
	if (spec->memlock == QL_MEMLOCK_UNCHANGED)
		return 0;
	struct rlimit rl;
	if (spec->memlock == QL_MEMLOCK_UNLIMITED)
		rl = (struct rlimit){RLIM_INFINITY, RLIM_INFINITY};
	else
		rl = (struct rlimit){spec->memlock_bytes, spec->memlock_bytes};
	if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0) {
		*ret_step = spec->memlock == QL_MEMLOCK_UNLIMITED
				? "raising RLIMIT_MEMLOCK to unlimited (rlimit_memlock)"
				: "setting RLIMIT_MEMLOCK (rlimit_memlock)";
		return -errno;
	}
	return 0;
}

_noreturn_ static void child_fail(int status_fd, int error, const char *step)
{
	struct child_failure f = {.error = error};
	snprintf(f.step, sizeof(f.step), "%s", step);
	ssize_t _unused_ k = write(status_fd, &f, sizeof(f));
	_exit(127);
}

_noreturn_ static void child_run(const struct launch_spec *spec, pid_t parent, int status_fd)
{
	const char *step = NULL;
	int r;

	/* The launcher ignores SIGPIPE and blocks the signals it waits for, and while it holds a
	 * lock, setuid, the terminal's stop signals; qemu must not inherit any of them. */
	signal(SIGPIPE, SIG_DFL);
	privileges_unshield_child(parent);
	if (spec->restore_mask)
		sigprocmask(SIG_SETMASK, spec->restore_mask, NULL);

	if (spec->qmp_fd != QL_QMP_CHILD_FD) {
		if (dup2(spec->qmp_fd, QL_QMP_CHILD_FD) < 0)
			child_fail(status_fd, errno, "dup2 of the QMP socket");
	} else if (fcntl(QL_QMP_CHILD_FD, F_SETFD, 0) < 0) {
		child_fail(status_fd, errno, "clearing FD_CLOEXEC on the QMP socket");
	}

	r = apply_memlock(spec, &step);
	if (r < 0)
		child_fail(status_fd, -r, step);
	r = privileges_drop(spec->identity, &step);
	if (r < 0)
		child_fail(status_fd, -r, step);

	/* After the drop, so the directory is entered with the target user's rights. */
	const struct launch_session *ss = spec->session;
	if (ss && ss->umask >= 0)
		umask((mode_t)ss->umask);
	if (ss && ss->workdir && chdir(ss->workdir) < 0 &&
	    (!ss->workdir_fallback || chdir("/") < 0))
		child_fail(status_fd, errno, "entering the working directory (working_directory)");

	/* qemu does not notice its QMP peer going away; make sure a killed launcher takes it
	 * along instead of leaving an unmanaged VM. Only after the privilege drop: the kernel
	 * clears the parent-death signal whenever the euid/egid/fsuid/fsgid change (setuid mode,
	 * `user`, `group`). The getppid check closes the race with a parent that died before. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		child_fail(status_fd, errno, "prctl(PR_SET_PDEATHSIG)");
	if (getppid() != parent)
		_exit(127);

	if (spec->path_lookup)
		execvpe(spec->argv[0], spec->argv, spec->envp);
	else
		execve(spec->argv[0], spec->argv, spec->envp);
	child_fail(status_fd, errno, "exec");
}

/* From qemu's exec on, the launcher's work (the host's preparation, the placement while qemu
 * builds its machine, the supervision) is never more urgent than qemu's own, and qemu's start-up
 * is what the guest waits for. SCHED_BATCH keeps the launcher's fair share of a CPU but never
 * preempts another task when it wakes: before qemu's machine was built, qemu's threads waited
 * behind the launcher in 123-140 of 300 launches instead of 180-183, 0.26-0.34 ms a launch
 * instead of 0.36-0.37 (bench/RESULTS.md). Once the guest runs, no wake-up of the launcher takes a
 * CPU from a vCPU either. Unlike SCHED_IDLE it cannot starve the launcher (which holds the cpuset
 * lock while it prepares) on a busy host, and any user may set it. qemu was spawned before: it
 * keeps the launcher's policy as it was. A policy the caller chose (chrt, systemd's
 * CPUSchedulingPolicy) is kept. */
static void give_way_to_qemu(void)
{
	if (sched_getscheduler(0) == SCHED_OTHER)
		(void)sched_setscheduler(0, SCHED_BATCH, &(struct sched_param){0});
	/* qemu's exec woke us, at times on qemu's own CPU, where we then ran before it for the
	 * whole prepare: 0.5 ms in 9 of 40 launches, the other CPU idle (bench/RESULTS.md): that
	 * preemption has happened by now, so yield. qemu goes on at once; our work waits at most
	 * until an idle CPU takes one of us, and qemu starts up for 15 ms and more. */
	sched_yield();
}

int launch_spawn(const struct launch_spec *spec, pid_t *ret_pid, struct ql_error *err)
{
	int status_pipe[2];
	if (pipe2(status_pipe, O_CLOEXEC) < 0)
		return ql_error_set_errno(err, errno, "pipe");
	/* The status pipe must not land on fd 3, where the QMP socket goes. */
	pid_t parent = getpid();
	/* vfork: the child borrows our memory until exec instead of copying its page tables,
	 * which made fork+exec of this (large) parent twice as slow as a small one's. The child
	 * only makes syscalls on its own task (fds, signal mask and dispositions, rlimit, ids,
	 * prctl) and never returns from child_run; we are single-threaded, so glibc's id changes
	 * are plain syscalls there. We are suspended until it execs or exits. */
	pid_t pid = vfork();
	if (pid < 0) {
		int e = errno;
		close(status_pipe[0]);
		close(status_pipe[1]);
		return ql_error_set_errno(err, e, "vfork");
	}
	if (pid == 0) {
		close(status_pipe[0]);
		int fd = status_pipe[1];
		if (fd == QL_QMP_CHILD_FD) {
			fd = fcntl(fd, F_DUPFD_CLOEXEC, QL_QMP_CHILD_FD + 1);
			/* (said through the pipe still on fd 3: an exit without a word would
			 * read as an exec) */
			if (fd < 0)
				child_fail(status_pipe[1], errno, "moving the status pipe off fd 3");
		}
		child_run(spec, parent, fd);
	}
	close(status_pipe[1]);

	struct child_failure f;
	ssize_t k;
	do
		k = read(status_pipe[0], &f, sizeof(f));
	while (k < 0 && errno == EINTR);
	close(status_pipe[0]);
	if (k <= 0) { /* EOF: exec succeeded and closed the pipe */
		*ret_pid = pid;
		give_way_to_qemu();
		return 0;
	}

	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	f.step[sizeof(f.step) - 1] = '\0';
	if (streq(f.step, "exec")) {
		if (f.error == ENOENT)
			return ql_error_set(err, ENOENT, "cannot run `%s`: not found",
					    spec->argv[0]);
		/* -ENOEXEC stands for every other exec failure (exit 126); the message keeps
		 * the real reason. */
		ql_error_set_errno(err, f.error, "cannot execute `%s`", spec->argv[0]);
		if (err)
			err->code = ENOEXEC;
		return -ENOEXEC;
	}
	/* Setup failures must not look like exec failures to the caller's exit-code mapping. */
	int e = f.error == ENOENT || f.error == ENOEXEC ? EIO : f.error;
	ql_error_set_errno(err, f.error, "starting qemu: %s failed", f.step);
	if (err)
		err->code = e;
	return -e;
}
