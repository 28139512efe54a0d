/* Test driver for the cgroup v2 backend inside the test guest: starts a program (fake-qemu), finds
 * its "CPU k/" threads, places them through isolation_open/apply and releases on SIGTERM.
 *   v2drive [-d] [--mode auto|true|false] [--root DIR] [--prefix P] [--emulator LIST]
 *           [--prepare LIST] NAME CPU[,CPU...] -- PROGRAM [ARGS...]
 * --prepare: isolation_prepare on host CPUs LIST (no thread ids) before the apply, as the
 * launcher does at qemu's greeting; a LIST other than CPU... must make the apply fail.
 * Prints "BACKEND <kind>", "READY <pid>", "RELEASED"; exit 125 when placement fails. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "isolation.h"

static bool debug;

static void log_fn(void *ud, enum ql_log_level level, const char *msg)
{
	(void)ud;
	if (level == QL_LOG_DEBUG && !debug)
		return;
	fprintf(stderr, "%s: %s\n",
		level == QL_LOG_WARNING ? "warning"
		: level == QL_LOG_INFO	? "info"
					: "debug",
		msg);
}

/* TID of the thread whose comm starts with "CPU k/", 0 if none yet. */
static pid_t find_vcpu(pid_t pid, int k)
{
	char p[64], want[16];
	snprintf(p, sizeof(p), "/proc/%d/task", (int)pid);
	snprintf(want, sizeof(want), "CPU %d/", k);
	DIR *d = opendir(p);
	if (!d)
		return 0;
	pid_t found = 0;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char cp[128], comm[32] = "";
		snprintf(cp, sizeof(cp), "%s/%s/comm", p, de->d_name);
		FILE *f = fopen(cp, "re");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, want, strlen(want)))
			found = (pid_t)strtol(de->d_name, NULL, 10);
		fclose(f);
	}
	closedir(d);
	return found;
}

/* isolation_prepare for plan's qemu and emulator CPUs with vCPU k on the k-th CPU of list. */
static int prepare_cpus(struct isolation *iso, const struct isolation_plan *plan, const char *list,
			struct ql_error *err)
{
	struct cpu_list *cpus = NULL;
	int r = cpu_list_parse(list, &cpus, err);
	if (r < 0)
		return r;
	size_t n = cpu_list_count(cpus);
	struct vcpu_placement *pl = calloc(n ? n : 1, sizeof(*pl));
	int k = 0;
	for (int c = cpu_list_next(cpus, -1); pl && c >= 0; c = cpu_list_next(cpus, c), k++)
		pl[k] = (struct vcpu_placement){.cpu_index = k, .host_cpu = (unsigned)c};
	struct isolation_plan p = *plan;
	p.vcpus = pl;
	p.n_vcpus = n;
	r = pl ? isolation_prepare(iso, &p, err) : -ENOMEM;
	free(pl);
	cpu_list_free(cpus);
	return r;
}

int main(int argc, char **argv)
{
	struct isolation_config cfg = {.mode = QL_ISOLATE_AUTO, .may_mount = false};
	const char *emulator = NULL, *prepare = NULL;
	int i = 1;
	for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "-d"))
			debug = true;
		else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
			const char *m = argv[++i];
			cfg.mode = !strcmp(m, "true")	 ? QL_ISOLATE_TRUE
				   : !strcmp(m, "false") ? QL_ISOLATE_FALSE
							 : QL_ISOLATE_AUTO;
		} else if (!strcmp(argv[i], "--root") && i + 1 < argc)
			cfg.cgroup2_root = argv[++i];
		else if (!strcmp(argv[i], "--prefix") && i + 1 < argc)
			cfg.prefix = argv[++i];
		else if (!strcmp(argv[i], "--emulator") && i + 1 < argc)
			emulator = argv[++i];
		else if (!strcmp(argv[i], "--prepare") && i + 1 < argc)
			prepare = argv[++i];
		else {
			fprintf(stderr, "v2drive: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (argc - i < 4 || strcmp(argv[i + 2], "--")) {
		fprintf(stderr, "usage: v2drive [opts] NAME CPU[,CPU...] -- PROGRAM [ARGS...]\n");
		return 2;
	}
	cfg.vm_name = argv[i];
	/* Keep the isolation backends away from a v1 mount (the guest has none anyway). */
	cfg.mount_path = "/nonexistent-cpuset-v1";
	struct ql_logger lg = {.fn = log_fn, .max_level = QL_LOG_DEBUG};
	cfg.log = &lg;

	struct ql_error err = {0};
	struct cpu_list *cpus = NULL, *emu = NULL;
	if (cpu_list_parse(argv[i + 1], &cpus, &err) < 0 ||
	    (emulator && cpu_list_parse(emulator, &emu, &err) < 0)) {
		fprintf(stderr, "v2drive: %s\n", err.msg);
		return 2;
	}

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);

	pid_t parent = getpid();
	pid_t child = fork();
	if (child < 0)
		return 125;
	if (child == 0) {
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		/* A SIGKILLed driver must not leave the stand-in running (like the launcher). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		execv(argv[i + 3], argv + i + 3);
		_exit(127);
	}

	size_t n = cpu_list_count(cpus);
	struct vcpu_placement *pl = calloc(n, sizeof(*pl));
	int k = 0;
	for (int c = cpu_list_next(cpus, -1); c >= 0; c = cpu_list_next(cpus, c), k++) {
		pid_t tid = 0;
		for (int tries = 0; !(tid = find_vcpu(child, k)) && tries < 500; tries++)
			usleep(10000);
		if (!tid) {
			fprintf(stderr, "v2drive: no thread 'CPU %d/' in pid %d\n", k, (int)child);
			kill(child, SIGKILL);
			return 125;
		}
		pl[k] =
		    (struct vcpu_placement){.cpu_index = k, .tid = tid, .host_cpu = (unsigned)c};
	}
	struct isolation_plan plan = {
	    .qemu_pid = child, .vcpus = pl, .n_vcpus = n, .emulator_cpus = emu};

	struct isolation *iso = NULL;
	if (isolation_open(&cfg, &iso, &err) < 0) {
		fprintf(stderr, "v2drive: %s\n", err.msg);
		kill(child, SIGKILL);
		return 125;
	}
	printf("BACKEND %s\n", isolation_name(iso));
	char *plan_text = isolation_describe(iso, &plan);
	if (debug && plan_text)
		fputs(plan_text, stderr);
	free(plan_text);
	if ((prepare && prepare_cpus(iso, &plan, prepare, &err) < 0) ||
	    isolation_apply(iso, &plan, &err) < 0) {
		fprintf(stderr, "v2drive: %s\n", err.msg);
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		isolation_free(iso);
		return 125;
	}
	printf("READY %d\n", (int)child);
	fflush(stdout);

	int sig = 0;
	sigwait(&set, &sig);
	bool child_alive = waitpid(child, NULL, WNOHANG) == 0;
	/* Release while qemu may still run: it must be moved out of the tree first. */
	int rc = 0;
	if (isolation_release(iso, &err) < 0) {
		fprintf(stderr, "v2drive: release: %s\n", err.msg);
		rc = 1;
	}
	if (child_alive) {
		char p[64], line[256] = "";
		snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)child);
		FILE *f = fopen(p, "re");
		if (f && fgets(line, sizeof(line), f))
			printf("QEMU-CGROUP %s", line);
		if (f)
			fclose(f);
		kill(child, SIGTERM);
		waitpid(child, NULL, 0);
	}
	isolation_free(iso);
	printf("RELEASED\n");
	fflush(stdout);
	free(pl);
	cpu_list_free(cpus);
	cpu_list_free(emu);
	return rc;
}
