/* The start sequence (DESIGN §2.3-2.4): -S when pinning, handshake, prelaunch check, pin, read
 * back, cont; then supervision and unwind. */
#include "vm.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "cmdline.h"
#include "isolation.h"
#include "launch.h"
#include "memtrim.h"
#include "notify.h"
#include "pinning.h"
#include "privileges.h"
#include "qmp.h"
#include "supervise.h"

#define QMP_CHARDEV_ID "qemu-launcher-qmp"
/* Generous: qemu with mem-lock on a big guest allocates all RAM before greeting. */
#define GREETING_TIMEOUT_MS 60000
#define COMMAND_TIMEOUT_MS 10000

int vm_command_line(const struct definition *d, char ***ret_argv, struct ql_error *err)
{
	/* Setuid mode (DESIGN §4): a bare name would be found through the caller's PATH, a
	 * relative path through the caller's cwd; both let the caller choose what runs. Checked
	 * here so --dry-run and --check refuse it as well. */
	if (privileges_is_setuid() && d->binary[0] != '/')
		return ql_error_set(err, EPERM,
				    "%s: `binary` must be an absolute path when qemu-launcher runs "
				    "setuid (got `%s`)",
				    d->path, d->binary);
	return cmdline_build(d, ret_argv, err);
}

int vm_private_options(const struct definition *d, char ***ret_extra, struct ql_error *err)
{
	bool paused = definition_wants_pinning(d) && !cmdline_has_option(d, "S");
	char **extra = calloc(6, sizeof(char *));
	if (!extra)
		return ql_error_set(err, ENOMEM, "out of memory");
	size_t n = 0;
	extra[n++] = strdup("-chardev");
	if (asprintf(&extra[n++], "socket,id=" QMP_CHARDEV_ID ",fd=%d", QL_QMP_CHILD_FD) < 0)
		extra[n - 1] = NULL;
	extra[n++] = strdup("-mon");
	extra[n++] = strdup("chardev=" QMP_CHARDEV_ID ",mode=control");
	if (paused)
		extra[n++] = strdup("-S");
	for (size_t i = 0; i < n; i++)
		if (!extra[i]) {
			for (size_t j = 0; j < n; j++)
				free(extra[j]);
			free(extra);
			return ql_error_set(err, ENOMEM, "out of memory");
		}
	*ret_extra = extra;
	return 0;
}

static int strv_concat(char **a, char **b, char ***ret)
{
	size_t na = strv_length(a), nb = strv_length(b);
	char **v = calloc(na + nb + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < na; i++)
		v[i] = a[i];
	for (size_t i = 0; i < nb; i++)
		v[na + i] = b[i];
	*ret = v;
	return 0;
}

static void on_qmp_event(const char *event, void *userdata)
{
	ql_log(userdata, QL_LOG_INFO, "qemu event %s", event);
}

static int rescan_cb(void *userdata, struct ql_error *err)
{
	return pinning_rescan(userdata, err);
}

/* qemu ended on its own during startup: that is qemu's failure, reported with its status (its
 * own message is already on stderr), not the launcher's. */
static int startup_ended(const struct ql_logger *log, pid_t pid, int *ret_wait_status)
{
	int status = 0;
	supervise_terminate(pid, NULL, &status);
	if (WIFEXITED(status))
		ql_log(log, QL_LOG_WARNING, "qemu exited with status %d during startup",
		       WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		ql_log(log, QL_LOG_WARNING, "qemu was killed by signal %d (%s) during startup",
		       WTERMSIG(status), strsignal(WTERMSIG(status)));
	*ret_wait_status = status;
	return 0;
}

/* Exit codes 126/127 are reserved for exec failures; keep other ENOENTs (a missing cpuset file)
 * from looking like "binary not found". */
static int launcher_failure(int r, struct ql_error *err)
{
	if (r == -ENOENT || r == -ENOEXEC) {
		if (err)
			err->code = EIO;
		return -EIO;
	}
	return r;
}

static int vm_run_checked(const struct vm_options *o, int *ret_wait_status, bool *ret_spawned,
			  struct ql_error *err);

/* Waits until qemu has written on QMP (its greeting) or closed it, or a stop signal arrived.
 * The handshake cannot watch the signalfd, and qemu may take long before greeting (mem-lock
 * of a big guest); a SIGTERM meanwhile must not wait for it. Returns the signal, or 0 to let
 * the handshake proceed (it reports timeouts and EOF itself). */
static int wait_for_greeting(struct qmp *qmp, int sigfd, int timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t deadline = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t left = deadline - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
		if (left <= 0)
			return 0;
		struct pollfd fds[2] = {
		    {.fd = qmp_fd(qmp), .events = POLLIN},
		    {.fd = sigfd, .events = POLLIN},
		};
		int n = poll(fds, 2, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return 0;
		if (fds[1].revents & POLLIN) {
			int sig = supervise_take_stop_signal(sigfd);
			if (sig)
				return sig;
		}
		if (fds[0].revents)
			return 0;
	}
}

void vm_isolation_config(const struct vm_options *o, struct isolation_config *ret)
{
	*ret = (struct isolation_config){
		.vm_name = o->name,
		.mount_path = o->paths->cpuset_mount,
		.cgroup2_root = o->paths->cgroup2_root,
		.prefix = o->paths->cpuset_prefix,
		.mode = o->def->isolate_cpus,
		/* setuid: never mount over a path the caller might have prepared */
		.may_mount = !o->paths->setuid ||
			     strncmp(o->paths->cpuset_mount, "/sys/fs/cgroup/", 15) == 0,
		.log = o->log,
	};
}

int vm_run(const struct vm_options *o, int *ret_wait_status, struct ql_error *err)
{
	bool exec_attempted = false;
	int r = vm_run_checked(o, ret_wait_status, &exec_attempted, err);
	return r < 0 && !exec_attempted ? launcher_failure(r, err) : r;
}

static int vm_run_checked(const struct vm_options *o, int *ret_wait_status, bool *ret_spawned,
			  struct ql_error *err)
{
	const struct definition *d = o->def;
	const struct ql_logger *log = o->log;
	bool setuid = o->paths->setuid;
	bool wants_pinning = definition_wants_pinning(d);
	bool user_paused = cmdline_has_option(d, "S");
	int r;

	_cleanup_strv_free_ char **argv_user = NULL;
	_cleanup_strv_free_ char **extra = NULL;
	_cleanup_free_ char **argv = NULL; /* borrows the strings above */
	r = vm_command_line(d, &argv_user, err);
	if (r < 0)
		return r;
	r = vm_private_options(d, &extra, err);
	if (r < 0)
		return r;
	if (strv_concat(argv_user, extra, &argv) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");

	_cleanup_pinning_ struct pinning *pinning = NULL;
	if (wants_pinning) {
		struct isolation_config icfg;
		vm_isolation_config(o, &icfg);
		r = pinning_prepare(d, &icfg, &pinning, err);
		if (r < 0)
			return r;
	}

	_cleanup_(identity_done) struct identity id = {0};
	r = privileges_identity(d, setuid, &id, err);
	if (r < 0)
		return r;
	_cleanup_strv_free_ char **envp = NULL;
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
	_cleanup_close_ int qmp_ours = sv[0];
	_cleanup_close_ int qmp_theirs = sv[1];

	sigset_t old_mask;
	_cleanup_close_ int sigfd = -1;
	r = supervise_signals_setup(&old_mask, &sigfd, err);
	if (r < 0)
		return r;

	struct launch_spec spec = {
	    .argv = argv,
	    .envp = envp,
	    .path_lookup = !setuid && !strchr(d->binary, '/'),
	    .identity = &id,
	    .memlock = d->memlock,
	    .memlock_bytes = d->memlock_bytes,
	    .qmp_fd = qmp_theirs,
	    .restore_mask = &old_mask,
	    .session = &session,
	};
	pid_t pid;
	ql_log(log, QL_LOG_INFO, "starting %s", d->binary);
	r = launch_spawn(&spec, &pid, err);
	if (r < 0) {
		*ret_spawned = r == -ENOENT || r == -ENOEXEC;
		return r;
	}
	closep(&qmp_theirs);
	qmp_theirs = -1;
	ql_log(log, QL_LOG_INFO, "qemu running as pid %d", (int)pid);

	_cleanup_qmp_ struct qmp *qmp = NULL;
	int status = 0;
	r = qmp_new(TAKE_FD(qmp_ours), on_qmp_event, (void *)log, &qmp, err);
	if (r < 0)
		goto fail_kill;
	int early_sig = wait_for_greeting(qmp, sigfd, GREETING_TIMEOUT_MS);
	if (early_sig) {
		/* Nothing is pinned yet; qemu (no QMP yet) gets SIGTERM, then SIGKILL. */
		ql_log(log, QL_LOG_INFO, "received %s before qemu answered on QMP; stopping it",
		       strsignal(early_sig));
		supervise_terminate(pid, NULL, &status);
		*ret_wait_status = status;
		return 0;
	}
	r = qmp_handshake(qmp, GREETING_TIMEOUT_MS, err);
	if (r == -ECONNRESET)
		return startup_ended(log, pid, ret_wait_status);
	if (r < 0)
		goto fail_kill;
	ql_log(log, QL_LOG_INFO, "QMP connected");

	bool guest_running = !user_paused;
	if (pinning) {
		_cleanup_free_ char *state = NULL;
		r = qmp_query_status(qmp, COMMAND_TIMEOUT_MS, &state, err);
		if (r < 0)
			goto fail_qmp;
		if (!streq(state, "prelaunch")) {
			r = ql_error_set(err, EPROTO,
					 "qemu is `%s`, not `prelaunch`: refusing to pin a guest "
					 "that may already run",
					 state);
			goto fail_kill;
		}
		_cleanup_free_ struct qmp_cpu *cpus = NULL;
		size_t n_cpus = 0;
		r = qmp_query_cpus_fast(qmp, COMMAND_TIMEOUT_MS, &cpus, &n_cpus, err);
		if (r < 0)
			goto fail_qmp;
		r = pinning_apply(pinning, pid, cpus, n_cpus, err);
		if (r < 0)
			goto fail_kill;

		int sig = supervise_take_stop_signal(sigfd);
		if (sig) {
			/* Asked to stop while starting: never let the guest run. */
			ql_log(log, QL_LOG_INFO, "received %s during start; not starting the guest",
			       strsignal(sig));
			supervise_terminate(pid, qmp, &status);
			pinning_release(pinning, NULL);
			*ret_wait_status = status;
			return 0;
		}
		if (!user_paused) {
			r = qmp_execute(qmp, "cont", COMMAND_TIMEOUT_MS, err);
			if (r < 0)
				goto fail_qmp;
			ql_log(log, QL_LOG_INFO, "guest started");
		} else {
			ql_log(log, QL_LOG_INFO, "guest left paused (-S in the definition)");
		}
	}

	/* Ready means: pinned, scheduled and (unless -S) running. */
	if (notify_send(user_paused ? "READY=1\nSTATUS=VM paused (-S)"
				    : "READY=1\nSTATUS=VM running") < 0)
		ql_log(log, QL_LOG_WARNING,
		       "could not notify the service manager ($NOTIFY_SOCKET)");
	struct supervise_params sp = {
	    .pid = pid,
	    .qmp = qmp,
	    .sigfd = sigfd,
	    .guest_running = guest_running,
	    .shutdown_timeout = d->shutdown_timeout,
	    .rescan = pinning ? rescan_cb : NULL,
	    .userdata = pinning,
	    .log = log,
	};
	/* The launcher now sleeps for the VM's whole life: give back the start-up heap (YAML
	 * tree, QMP buffers) and code so they do not sit in private memory for days. */
	memtrim_after_startup();
	r = supervise_wait(&sp, &status, err);
	if (r < 0)
		goto fail_kill;
	if (pinning) {
		struct ql_error e = {0};
		if (pinning_release(pinning, &e) < 0)
			ql_log(log, QL_LOG_WARNING, "undoing host changes: %s", e.msg);
		ql_error_clear(&e);
	}
	*ret_wait_status = status;
	return 0;

fail_qmp:
	if (r == -ECONNRESET) {
		startup_ended(log, pid, ret_wait_status);
		if (pinning)
			pinning_release(pinning, NULL);
		return 0;
	}
fail_kill:
	supervise_terminate(pid, qmp, NULL);
	if (pinning)
		pinning_release(pinning, NULL);
	return r;
}
