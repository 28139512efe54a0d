/* The floor the launcher is judged against (bench only, not part of qemu-launcher): the least a
 * program can do to start qemu paused, build the launcher's cpuset v1 layout (M/qlfloor,
 * M/qlfloor/pool, M/qlfloor/vm, M/qlfloor/vm/cpuN), move qemu into the pool and every vCPU thread
 * into its cpuN set, let the guest run, wait for qemu and tear it all down. No checks beyond
 * what it needs, no parsing library: what is left is the kernel's and qemu's cost.
 *
 * usage: floor M CPU qemu-argv...   (the argv must carry -S and a QMP chardev on fd 3) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char M[4096];

static void die(const char *what)
{
	fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
	exit(125);
}

static void put(const char *rel, const char *text)
{
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
	char p[8192];
	snprintf(p, sizeof(p), "%s/%s", M, rel);
	/* like the launcher: a dead qemu's threads leave the set shortly after it is reaped */
	for (int i = 0; i < 200 && rmdir(p) < 0 && errno == EBUSY; i++)
		usleep(1000);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: floor M CPU qemu-argv...\n");
		return 125;
	}
	snprintf(M, sizeof(M), "%s", argv[1]);
	int cpu = atoi(argv[2]);
	char cpus[256], mems[256], pool_after[256], one[16];
	get("cpuset.cpus", cpus, sizeof(cpus));
	get("cpuset.mems", mems, sizeof(mems));
	snprintf(one, sizeof(one), "%d", cpu);
	/* the bench host has 2 CPUs: the pool keeps the other one */
	snprintf(pool_after, sizeof(pool_after), "%d", cpu == 0 ? 1 : 0);

	/* the TID-independent part, while nothing waits on it */
	/* M/qlfloor-<pid>: a set left behind never blocks the next run */
	size_t ml = strlen(M);
	snprintf(M + ml, sizeof(M) - ml, "/qlfloor-%d", (int)getpid());
	if (mkdir(M, 0755) < 0)
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

	static const char cmds[] = "{\"execute\":\"qmp_capabilities\",\"id\":1}\n"
				   "{\"execute\":\"query-status\",\"id\":2}\n"
				   "{\"execute\":\"query-cpus-fast\",\"id\":3}\n";
	if (write(sv[0], cmds, sizeof(cmds) - 1) < 0)
		die("write");
	static char buf[1 << 20];
	size_t len = 0;
	char *reply = NULL;
	while (!reply) {
		ssize_t k = read(sv[0], buf + len, sizeof(buf) - 1 - len);
		if (k <= 0)
			die("read");
		len += (size_t)k;
		buf[len] = '\0';
		char *r3 = strstr(buf, "\"id\": 3}");
		if (r3 && strchr(r3, '\n'))
			reply = strstr(buf, "\"return\": [");
	}
	if (!strstr(buf, "\"prelaunch\""))
		die("not prelaunch");
	for (char *t = strstr(reply, "\"thread-id\": "); t; t = strstr(t + 1, "\"thread-id\": ")) {
		/* "props" has a "thread-id" too (the topology's, 0 here): writing 0 would move
		 * this process itself into the vCPU set */
		long id = strtol(t + 13, NULL, 10);
		if (id <= 0)
			continue;
		char tid[24];
		snprintf(tid, sizeof(tid), "%ld", id);
		put("vm/cpuN/tasks", tid);
	}
	put("pool/cpuset.cpus", pool_after);
	static const char cont[] = "{\"execute\":\"cont\",\"id\":4}\n";
	if (write(sv[0], cont, sizeof(cont) - 1) < 0)
		die("write");

	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	rm("vm/cpuN");
	rm("vm");
	rm("pool");
	rmdir(M);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
