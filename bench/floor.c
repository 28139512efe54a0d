/* The floor the launcher is judged against (bench only, not part of qemu-launcher): the least a
 * program can do to start qemu paused, build the launcher's cpuset v1 layout (M/qlfloor,
 * M/qlfloor/pool, M/qlfloor/vm, M/qlfloor/vm/cpuN), move qemu into the pool and every vCPU thread
 * into its cpuN set, let the guest run, wait for qemu and tear it all down. No checks beyond
 * what it needs, no parsing library: what is left is the kernel's and qemu's cost. Like the
 * launcher, it writes cont ahead but for its brace, and when qemu names its threads (-name
 * debug-threads=on) it moves the vCPU threads while qemu builds the machine, by their names, and
 * sends the brace once qemu answers qmp_capabilities (no query-cpus-fast before cont).
 *
 * With M given as "-" it builds no cpusets at all: what is left is the price of one more exec and
 * of starting qemu paused and driving it through QMP, which any launcher that pins before the
 * guest runs pays on QEMU 7.2.
 *
 * QL_FLOOR_EXTRA (an experiment, bench/startup-extra.py) adds one piece of work right after the
 * spawn, while qemu initialises: "fork" (a child that waits for the floor's exit, as the
 * launcher's guardian does), "faults:N" (N fresh pages touched), "spin:US" (a busy loop).
 *
 * usage: floor M|- CPU qemu-argv...   (the argv must carry -S and a QMP chardev on fd 3) */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char M[4096];
static int use_cpusets;

static void die(const char *what)
{
	fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
	exit(125);
}

static void put(const char *rel, const char *text)
{
	if (!use_cpusets)
		return;
	char p[8192];
	snprintf(p, sizeof(p), "%s/%s", M, rel);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, strlen(text)) < 0)
		die(p);
	close(fd);
}

static void get(const char *rel, char *buf, size_t n)
{
	char p[8192];
	snprintf(p, sizeof(p), "%s/%s", M, rel);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ssize_t k = fd < 0 ? -1 : read(fd, buf, n - 1);
	if (k < 0)
		die(p);
	buf[k] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	close(fd);
}

static void mk(const char *rel, const char *cpus, const char *mems)
{
	if (!use_cpusets)
		return;
	char p[8192], f[8192];
	snprintf(p, sizeof(p), "%s/%s", M, rel);
	if (mkdir(p, 0755) < 0)
		die(p);
	snprintf(f, sizeof(f), "%s/cpuset.cpus", rel);
	put(f, cpus);
	snprintf(f, sizeof(f), "%s/cpuset.mems", rel);
	put(f, mems);
}

static void rm(const char *rel)
{
	if (!use_cpusets)
		return;
	char p[8192];
	snprintf(p, sizeof(p), "%s/%s", M, rel);
	/* like the launcher: a dead qemu's threads leave the set shortly after it is reaped */
	for (int i = 0; i < 200 && rmdir(p) < 0 && errno == EBUSY; i++)
		usleep(1000);
}

static void extra_work(const char *what)
{
	if (!what)
		return;
	if (strcmp(what, "fork") == 0) {
		int p[2];
		if (pipe(p) < 0)
			die("pipe");
		pid_t c = fork();
		if (c < 0)
			die("fork");
		if (c == 0) { /* until the floor's exit closes the pipe */
			char b;
			close(p[1]);
			while (read(p[0], &b, 1) < 0 && errno == EINTR)
				;
			_exit(0);
		}
		close(p[0]); /* p[1] stays open until the floor exits */
	} else if (strncmp(what, "faults:", 7) == 0) {
		long n = atol(what + 7);
		char *m = mmap(NULL, (size_t)n * 4096, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			die("mmap");
		for (long i = 0; i < n; i++)
			m[i * 4096] = 1;
		munmap(m, (size_t)n * 4096);
	} else if (strncmp(what, "spin:", 5) == 0) {
		long us = atol(what + 5);
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		do
			clock_gettime(CLOCK_MONOTONIC, &b);
		while ((b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000 < us);
	}
}

/* -smp's vCPU count in qemu's argv (1 without it). */
static int vcpus_of(char **argv)
{
	for (; *argv; argv++)
		if (strcmp(*argv, "-smp") == 0 && argv[1])
			return atoi(argv[1][0] == 'c' ? argv[1] + 5 : argv[1]); /* "cpus=N" or "N" */
	return 1;
}

/* Does qemu's argv name its threads (-name ...,debug-threads=on)? */
static int names_threads(char **argv)
{
	for (; *argv; argv++)
		if (strcmp(*argv, "-name") == 0 && argv[1] && strstr(argv[1], "debug-threads=on"))
			return 1;
	return 0;
}

/* Like the launcher with -name debug-threads=on: once qemu's thread names ("CPU k/TCG") show
 * all n vCPUs, they go to the cpuN set while qemu builds the machine. 1 once placed. */
static int place_named(pid_t pid, int n)
{
	char dir[64], path[512], comm[32];
	pid_t tids[256];
	int found = 0;
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d)) && found < 256;) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/comm", dir, e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t k = fd < 0 ? -1 : read(fd, comm, sizeof(comm) - 1);
		if (fd >= 0)
			close(fd);
		if (k > 4 && strncmp(comm, "CPU ", 4) == 0)
			tids[found++] = atoi(e->d_name);
	}
	closedir(d);
	if (found < n)
		return 0;
	for (int i = 0; i < found; i++) {
		char tid[24];
		snprintf(tid, sizeof(tid), "%d", (int)tids[i]);
		put("vm/cpuN/tasks", tid);
	}
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: floor M CPU qemu-argv...\n");
		return 125;
	}
	snprintf(M, sizeof(M), "%s", argv[1]);
	use_cpusets = strcmp(M, "-") != 0;
	int cpu = atoi(argv[2]);
	char cpus[256] = "", mems[256] = "", pool_after[256], one[16];
	if (use_cpusets) {
		get("cpuset.cpus", cpus, sizeof(cpus));
		get("cpuset.mems", mems, sizeof(mems));
	}
	snprintf(one, sizeof(one), "%d", cpu);
	/* the bench host has 2 CPUs: the pool keeps the other one */
	snprintf(pool_after, sizeof(pool_after), "%d", cpu == 0 ? 1 : 0);

	/* the TID-independent part, while nothing waits on it */
	/* M/qlfloor-<pid>: a set left behind never blocks the next run */
	size_t ml = strlen(M);
	snprintf(M + ml, sizeof(M) - ml, "/qlfloor-%d", (int)getpid());
	if (use_cpusets && mkdir(M, 0755) < 0)
		die(M);
	put("cpuset.cpus", cpus);
	put("cpuset.mems", mems);
	mk("pool", cpus, mems);

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");
	pid_t pid = vfork();
	if (pid == 0) {
		dup2(sv[1], 3);
		execvp(argv[3], argv + 3);
		_exit(127);
	}
	if (pid < 0)
		die("vfork");
	close(sv[1]);
	char pidtext[24];
	snprintf(pidtext, sizeof(pidtext), "%d", (int)pid);
	put("pool/cgroup.procs", pidtext);
	mk("vm", one, mems);
	mk("vm/cpuN", one, mems);
	extra_work(getenv("QL_FLOOR_EXTRA"));

	/* the launcher's order: the start-up questions and cont but for its closing brace in one
	 * write (qemu reads a byte per turn of its monitor loop and runs a command at its brace);
	 * no query-status (the launcher reads qemu's RESUME events instead, at no cost). With
	 * thread names no query-cpus-fast either: the threads are placed by their names while
	 * qemu builds the machine, and cont follows qmp_capabilities' answer (qemu answers it
	 * once the machine is built). */
	int named = names_threads(argv + 3);
	static const char ask[] = "{\"execute\":\"qmp_capabilities\",\"id\":1}\n"
				  "{\"execute\":\"query-cpus-fast\",\"id\":2}\n"
				  "{\"execute\":\"cont\",\"id\":4";
	static const char by_names[] = "{\"execute\":\"qmp_capabilities\",\"id\":1}\n"
				       "{\"execute\":\"cont\",\"id\":2";
	const char *cmds = named ? by_names : ask;
	if (write(sv[0], cmds, strlen(cmds)) < 0)
		die("write");
	static char buf[1 << 20];
	size_t len = 0;
	char warm[64];
	snprintf(warm, sizeof(warm), "%s/pool/tasks", M);
	int warm_fd = use_cpusets ? open(warm, O_WRONLY | O_CLOEXEC) : -1;
	int placed = 0, nvcpus = vcpus_of(argv + 3);
	const char *last = named ? "\"id\": 1}" : "\"id\": 2}";
	for (char *got; !(got = strstr(buf, last)) || !strchr(got, '\n');) {
		/* like the launcher's keep_warm: a no-op move every 3 ms keeps the vCPU moves from
		 * waiting for an RCU grace period (bench/RESULTS.md); and its placement by names */
		struct pollfd pfd = {.fd = sv[0], .events = POLLIN};
		if (poll(&pfd, 1, warm_fd >= 0 ? 3 : -1) == 0) {
			if (write(warm_fd, pidtext, strlen(pidtext)) < 0)
				die("keep warm");
			if (!placed && (placed = place_named(pid, nvcpus))) {
				close(warm_fd);
				warm_fd = -1;
				put("pool/cpuset.cpus", pool_after);
			}
			continue;
		}
		ssize_t k = read(sv[0], buf + len, sizeof(buf) - 1 - len);
		if (k <= 0)
			die("read");
		len += (size_t)k;
		buf[len] = '\0';
	}
	/* qemu has built its machine: every vCPU thread has its name by now */
	if (named && use_cpusets && !placed && !(placed = place_named(pid, nvcpus)))
		die("the vCPU threads' names");
	char *reply = named ? NULL : strstr(buf, "\"return\": [");
	for (char *t = reply ? strstr(reply, "\"thread-id\": ") : NULL; t && !placed;
	     t = strstr(t + 1, "\"thread-id\": ")) {
		/* "props" has a "thread-id" too (the topology's, 0 here): writing 0 would move this
		 * process itself into the vCPU set */
		long id = strtol(t + 13, NULL, 10);
		if (id <= 0)
			continue;
		char tid[24];
		snprintf(tid, sizeof(tid), "%ld", id);
		put("vm/cpuN/tasks", tid);
	}
	if (warm_fd >= 0)
		close(warm_fd);
	if (!placed)
		put("pool/cpuset.cpus", pool_after);
	if (write(sv[0], "}\n", 2) < 0)
		die("write");

	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	rm("vm/cpuN");
	rm("vm");
	rm("pool");
	if (use_cpusets)
		rmdir(M);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
