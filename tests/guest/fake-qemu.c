/* A tiny static stand-in for qemu-system-x86_64 inside the cgroup-v2 test guest: takes qemu's argv,
 * runs one named thread per vCPU ("CPU k/TCG") and speaks enough QMP for the launcher. Memory
 * backend files (hugetlbfs) are mapped, bound to their host-nodes and preallocated like qemu's. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_VCPUS 64
#define MAX_MSG (64 * 1024)

static int qmp_fd = -1;
static int stop_fd = -1; /* signalfd of the stop signals */

/* -device vfio-pci,host=ADDR as qemu's vfio code starts it: the group /dev/vfio/N (N from the
 * device's iommu_group link) opened, checked viable, put in a type1 container, the device fd
 * taken. Any failure ends fake-qemu with qemu's kind of message, as qemu would. The fds stay
 * open for fake-qemu's lifetime (the launcher can only give the devices back after it ended). */
static void vfio_open(const char *v)
{
	const char *h = strstr(v, "host=");
	char addr[32], link[128], target[256], path[64];
	if (strncmp(v, "vfio-pci,", 9) || !h || sscanf(h + 5, "%31[^,]", addr) != 1)
		return;
	snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s/iommu_group", addr);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0) {
		fprintf(stderr, "fake-qemu: vfio %s: no IOMMU group\n", addr);
		exit(1);
	}
	target[n] = '\0';
	snprintf(path, sizeof(path), "/dev/vfio/%s", strrchr(target, '/') + 1);
	int group = open(path, O_RDWR | O_CLOEXEC);
	if (group < 0) {
		fprintf(stderr, "fake-qemu: vfio %s: failed to open %s: %s\n", addr, path,
			strerror(errno));
		exit(1);
	}
	struct vfio_group_status st = {.argsz = sizeof(st)};
	if (ioctl(group, VFIO_GROUP_GET_STATUS, &st) < 0 || !(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		fprintf(stderr, "fake-qemu: vfio %s: group %s is not viable\n", addr, path);
		exit(1);
	}
	int container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (container < 0 || ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0 ||
	    ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0) {
		fprintf(stderr, "fake-qemu: vfio %s: container for %s: %s\n", addr, path,
			strerror(errno));
		exit(1);
	}
	int dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, addr);
	if (dev < 0) {
		fprintf(stderr, "fake-qemu: vfio %s: device fd: %s\n", addr, strerror(errno));
		exit(1);
	}
	fprintf(stderr, "fake-qemu: vfio %s: %s open, device fd %d (uid %d)\n", addr, path, dev,
		(int)getuid());
}

static void *helper_thread(void *arg)
{
	pthread_setname_np(pthread_self(), (const char *)arg);
	for (;;)
		pause();
	return NULL;
}
static int n_cpus = 1, sockets, cores = 1, threads = 1;
static pid_t tids[MAX_VCPUS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool running, quitting;
static const char *status = "prelaunch";
/* cont wakes vCPU 0, which then starts a helper thread the way KVM starts kvm-nx-lpage-re on the
 * first KVM_RUN: it inherits the vCPU's cgroup, so the launcher's rescan has to move it. */
static int first_run[2] = {-1, -1};

/* Parses "N" or "key=N,..." values of -smp (qemu 7.2 prefers sockets when they are left out). */
static void parse_smp(const char *v)
{
	char *copy = strdup(v), *save = NULL;
	int cpus = 0;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		if (!eq) {
			cpus = atoi(t);
			continue;
		}
		*eq = '\0';
		int n = atoi(eq + 1);
		if (!strcmp(t, "cpus"))
			cpus = n;
		else if (!strcmp(t, "sockets"))
			sockets = n;
		else if (!strcmp(t, "cores"))
			cores = n;
		else if (!strcmp(t, "threads"))
			threads = n;
	}
	free(copy);
	if (cores < 1)
		cores = 1;
	if (threads < 1)
		threads = 1;
	if (!cpus)
		cpus = (sockets ? sockets : 1) * cores * threads;
	if (!sockets)
		sockets = (cpus + cores * threads - 1) / (cores * threads);
	n_cpus = cpus < 1 ? 1 : cpus > MAX_VCPUS ? MAX_VCPUS : cpus;
}

static void *vcpu_thread(void *arg)
{
	int k = (int)(long)arg;
	char name[16];
	snprintf(name, sizeof(name), "CPU %d/TCG", k);
	pthread_setname_np(pthread_self(), name);
	pthread_mutex_lock(&lock);
	tids[k] = (pid_t)syscall(SYS_gettid);
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	char b;
	if (k == 0 && read(first_run[0], &b, 1) == 1) {
		pthread_t t;
		pthread_create(&t, NULL, helper_thread, "kvm-nx-lpage-re");
	}
	/* FAKE_QEMU_SPIN=1 (bench/isolation-guest.sh): vCPU 0 spins from `cont` on, like a busy
	 * guest, so the benchmark sees what else gets its CPU. Otherwise idle like a halted vCPU:
	 * the guest tests only look at placement. */
	const char *spin = getenv("FAKE_QEMU_SPIN");
	if (k == 0 && spin && !strcmp(spin, "1"))
		for (volatile unsigned long n = 0;; n++)
			;
	for (;;)
		pause();
	return NULL;
}

static void send_line(const char *fmt, ...)
{
	if (qmp_fd < 0)
		return;
	char buf[MAX_MSG];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(buf) - 2)
		return;
	buf[n++] = '\r';
	buf[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = send(qmp_fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		off += (int)w;
	}
}

static void event(const char *name, const char *data)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	send_line(
	    "{\"timestamp\": {\"seconds\": %ld, \"microseconds\": %ld}, \"event\": \"%s\"%s%s%s}",
	    (long)ts.tv_sec, ts.tv_nsec / 1000, name, data ? ", \"data\": " : "", data ? data : "",
	    "");
}

/* The raw JSON token after "key": in obj (string or number), copied into out. */
static bool json_token(const char *obj, const char *key, char *out, size_t len)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\"", key);
	const char *p = strstr(obj, pat);
	if (!p)
		return false;
	p += strlen(pat);
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p++ != ':')
		return false;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	const char *e = p;
	if (*p == '"') {
		for (e = p + 1; *e && *e != '"'; e++)
			if (*e == '\\' && e[1])
				e++;
		if (*e == '"')
			e++;
	} else {
		while (*e && *e != ',' && *e != '}' && *e != ' ')
			e++;
	}
	if ((size_t)(e - p) >= len)
		return false;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
	return true;
}

static void reply(const char *id, const char *body)
{
	if (id[0])
		send_line("{%s, \"id\": %s}", body, id);
	else
		send_line("{%s}", body);
}

static bool negotiated;

/* A stop signal ends fake-qemu like qemu: a SHUTDOWN event, exit status 0. */
static void stop_on_signal(void)
{
	struct signalfd_siginfo si;
	if (read(stop_fd, &si, sizeof(si)) != sizeof(si))
		return;
	event("SHUTDOWN", "{\"guest\": false, \"reason\": \"host-signal\"}");
	fprintf(stderr, "fake-qemu: terminating on signal %u\n", si.ssi_signo);
	exit(0);
}

static bool exists_in(const char *dir, const char *name)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

/* Before the answer to qmp_capabilities, like qemu still building its machine: its main loop,
 * which answers its monitor, runs only after the build (the window between the launcher's
 * prepare and its apply; with thread names the launcher places the vCPUs in it).
 * FAKE_QEMU_DELAY_MS=N: N ms. FAKE_QEMU_HOLD=DIR: DIR/at-build is created, then the answer
 * waits for DIR/go; DIR/die ends fake-qemu there with status 1 and no answer (qemu failing while
 * it starts). A stop signal ends it as ever; QMP input waits, as it does in qemu's busy main
 * loop. */
static void hold_while_building(void)
{
	const char *delay = getenv("FAKE_QEMU_DELAY_MS"), *dir = getenv("FAKE_QEMU_HOLD");
	if (delay)
		nanosleep(&(struct timespec){atoi(delay) / 1000, (atoi(delay) % 1000) * 1000000L},
			  NULL);
	if (!dir)
		return;
	char p[4096];
	snprintf(p, sizeof(p), "%s/at-build", dir);
	close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	while (!exists_in(dir, "go")) {
		if (exists_in(dir, "die")) {
			fprintf(stderr, "fake-qemu: dying while it builds its machine\n");
			exit(1);
		}
		struct pollfd pf = {.fd = stop_fd, .events = POLLIN};
		if (poll(&pf, 1, 10) > 0)
			stop_on_signal();
	}
}

/* FAKE_QEMU_TIMES=FILE: one line per run, from the answer to query-cpus-fast to the arrival of
 * cont (the launcher's placement), for measurements by hand; no test asserts on it. */
static struct timespec cpus_answered;

static void note_cont(void)
{
	const char *file = getenv("FAKE_QEMU_TIMES");
	if (!file || !cpus_answered.tv_sec)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	FILE *f = fopen(file, "ae");
	if (!f)
		return;
	fprintf(f, "answers->cont %ld us\n",
		(now.tv_sec - cpus_answered.tv_sec) * 1000000L +
		    (now.tv_nsec - cpus_answered.tv_nsec) / 1000);
	fclose(f);
}

static void handle(const char *obj)
{
	char cmd[128] = "", id[256] = "";
	json_token(obj, "id", id, sizeof(id));
	if (!json_token(obj, "execute", cmd, sizeof(cmd)) &&
	    !json_token(obj, "exec-oob", cmd, sizeof(cmd))) {
		reply(id,
		      "\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input must be a "
		      "JSON object with an 'execute' key\"}");
		return;
	}
	/* qemu refuses a command with a member it does not know, and runs nothing: the
	 * launcher voids a staged command that way (qmp_stage) */
	char unknown[16];
	if (json_token(obj, "qemu-launcher-void", unknown, sizeof(unknown))) {
		reply(id, "\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member "
			  "'qemu-launcher-void' is unexpected\"}");
		return;
	}
	if (!strcmp(cmd, "\"qmp_capabilities\"")) {
		hold_while_building();
		negotiated = true;
		reply(id, "\"return\": {}");
		return;
	}
	if (!negotiated) {
		reply(id, "\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Expecting "
			  "capabilities negotiation with 'qmp_capabilities'\"}");
		return;
	}
	if (!strcmp(cmd, "\"query-status\"")) {
		char body[160];
		snprintf(body, sizeof(body),
			 "\"return\": {\"status\": \"%s\", \"singlestep\": false, \"running\": %s}",
			 status, running ? "true" : "false");
		reply(id, body);
	} else if (!strcmp(cmd, "\"query-cpus-fast\"")) {
		static char body[MAX_MSG - 512];
		size_t off = (size_t)snprintf(body, sizeof(body), "\"return\": [");
		for (int k = 0; k < n_cpus; k++) {
			int th = k % threads, co = (k / threads) % cores,
			    so = k / (threads * cores);
			off += (size_t)snprintf(
			    body + off, sizeof(body) - off,
			    "%s{\"thread-id\": %d, \"props\": {\"core-id\": %d, \"thread-id\": %d, "
			    "\"socket-id\": %d}, \"qom-path\": \"/machine/unattached/device[%d]\", "
			    "\"cpu-index\": %d, \"target\": \"x86_64\"}",
			    k ? ", " : "", (int)tids[k], co, th, so, k, k);
			if (off >= sizeof(body) - 2)
				return;
		}
		snprintf(body + off, sizeof(body) - off, "]");
		reply(id, body);
		clock_gettime(CLOCK_MONOTONIC, &cpus_answered);
	} else if (!strcmp(cmd, "\"cont\"")) {
		note_cont();
		event("RESUME", NULL);
		if (first_run[1] >= 0) {
			(void)!write(first_run[1], "x", 1);
			close(first_run[1]);
			first_run[1] = -1;
		}
		running = true;
		status = "running";
		reply(id, "\"return\": {}");
	} else if (!strcmp(cmd, "\"stop\"")) {
		event("STOP", NULL);
		running = false;
		status = "paused";
		reply(id, "\"return\": {}");
	} else if (!strcmp(cmd, "\"system_powerdown\"")) {
		event("POWERDOWN", NULL);
		reply(id, "\"return\": {}");
		/* Like a guest OS that handles ACPI; FAKE_QEMU_POWERDOWN=ignore acts like no OS. */
		const char *pd = getenv("FAKE_QEMU_POWERDOWN");
		if (!pd || strcmp(pd, "ignore")) {
			event("SHUTDOWN", "{\"guest\": true, \"reason\": \"guest-shutdown\"}");
			quitting = true;
		}
	} else if (!strcmp(cmd, "\"quit\"")) {
		event("SHUTDOWN", "{\"guest\": false, \"reason\": \"host-qmp-quit\"}");
		reply(id, "\"return\": {}");
		quitting = true;
	} else {
		char body[256];
		snprintf(
		    body, sizeof(body),
		    "\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command %.100s "
		    "has not been found\"}",
		    cmd);
		reply(id, body);
	}
}

/* Splits the byte stream into top-level JSON objects (brace depth outside strings). */
static char inbuf[MAX_MSG];
static size_t inlen;

static void feed(const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (inlen >= sizeof(inbuf) - 1)
			inlen = 0; /* oversized garbage: drop */
		inbuf[inlen++] = data[i];
		int depth = 0;
		bool str = false, esc = false;
		for (size_t k = 0; k < inlen; k++) {
			char ch = inbuf[k];
			if (str) {
				if (esc)
					esc = false;
				else if (ch == '\\')
					esc = true;
				else if (ch == '"')
					str = false;
				continue;
			}
			if (ch == '"')
				str = true;
			else if (ch == '{')
				depth++;
			else if (ch == '}' && --depth == 0) {
				inbuf[k + 1] = '\0';
				const char *start = strchr(inbuf, '{');
				handle(start);
				inlen = 0;
				break;
			}
		}
		if (inlen && depth == 0 && !str && !strchr(inbuf, '{'))
			inlen = 0; /* whitespace between objects */
	}
}

/* qemu's size syntax, enough for the tests: a number with an optional K/M/G suffix. */
static unsigned long long parse_size(const char *v)
{
	char *end;
	unsigned long long n = strtoull(v, &end, 10);
	switch (*end) {
	case 'G':
		return n << 30;
	case 'M':
		return n << 20;
	case 'K':
	case 'k':
		return n << 10;
	}
	return n;
}

/* -object memory-backend-file,id=..,size=..,mem-path=DIR|FILE[,host-nodes=N,policy=bind|preferred]
 * [,prealloc=on]: mapped shared, bound with mbind, and touched when prealloc=on, before the
 * monitor is up (qemu's order: backends/hostmem.c). A hugetlbfs without pages for it ends the
 * process with SIGBUS, as qemu fails its preallocation. Other objects are ignored. */
static void memory_backend(const char *value)
{
	char *copy = strdup(value), *save = NULL;
	const char *path = NULL, *policy = NULL;
	unsigned long long size = 0;
	long node = -1;
	bool file = false, prealloc = false;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		if (!eq) {
			file = file || !strcmp(t, "memory-backend-file");
			continue;
		}
		*eq++ = '\0';
		if (!strcmp(t, "qom-type"))
			file = file || !strcmp(eq, "memory-backend-file");
		else if (!strcmp(t, "mem-path"))
			path = eq;
		else if (!strcmp(t, "size"))
			size = parse_size(eq);
		else if (!strcmp(t, "host-nodes"))
			node = strtol(eq, NULL, 10);
		else if (!strcmp(t, "policy"))
			policy = eq;
		else if (!strcmp(t, "prealloc"))
			prealloc = !strcmp(eq, "on") || !strcmp(eq, "yes") || !strcmp(eq, "true");
	}
	if (!file || !path || !size) {
		free(copy);
		return;
	}
	struct stat st;
	int fd;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		char tmpl[4096];
		snprintf(tmpl, sizeof(tmpl), "%s/fake-qemu.XXXXXX", path);
		fd = mkstemp(tmpl);
		if (fd >= 0)
			unlink(tmpl);
	} else {
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	}
	void *mem = MAP_FAILED;
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0 ||
	    (mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		fprintf(stderr, "fake-qemu: memory backend at %s: %s\n", path, strerror(errno));
		exit(1);
	}
	if (node >= 0 && node < 64 && policy &&
	    (!strcmp(policy, "bind") || !strcmp(policy, "preferred"))) {
		unsigned long mask = 1UL << node;
		/* MPOL_PREFERRED 1, MPOL_BIND 2; maxnode counts the mask's bits */
		if (syscall(SYS_mbind, mem, size, !strcmp(policy, "bind") ? 2 : 1, &mask,
			    sizeof(mask) * 8, 0) < 0) {
			fprintf(stderr, "fake-qemu: mbind to node %ld: %s\n", node,
				strerror(errno));
			exit(1);
		}
	}
	if (prealloc)
		for (unsigned long long off = 0; off < size; off += 4096)
			((volatile char *)mem)[off] = 0;
	free(copy);
}

int main(int argc, char **argv)
{
	bool paused = false;
	const char *mon = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-S"))
			paused = true;
		else if (!strcmp(argv[i], "-smp") && i + 1 < argc)
			parse_smp(argv[++i]);
		else if (!strcmp(argv[i], "-device") && i + 1 < argc)
			vfio_open(argv[++i]);
		else if (!strcmp(argv[i], "-chardev") && i + 1 < argc) {
			const char *v = argv[++i], *fd = strstr(v, "fd=");
			if (!strncmp(v, "socket,", 7) && fd)
				qmp_fd = atoi(fd + 3);
		} else if ((!strcmp(argv[i], "-mon") || !strcmp(argv[i], "-qmp")) && i + 1 < argc)
			mon = argv[++i];
		else if (!strcmp(argv[i], "-object") && i + 1 < argc &&
			 !strcmp(argv[i + 1], "help")) {
			/* the launcher asks whether thread-context exists (QEMU >= 7.2) */
			printf("List of user creatable objects:\n  memory-backend-file\n"
			       "  thread-context\n");
			return 0;
		} else if (!strcmp(argv[i], "-object") && i + 1 < argc)
			memory_backend(argv[++i]);
		else if (!strcmp(argv[i], "-version") || !strcmp(argv[i], "--version")) {
			printf("QEMU emulator version 7.2.0 (fake-qemu)\n");
			return 0;
		}
	}
	(void)mon;
	if (!sockets)
		parse_smp("1");

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* Blocked before any thread exists, so only the signalfd sees them. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	int sfd = stop_fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("fake-qemu: signalfd");
		return 1;
	}

	if (pipe2(first_run, O_CLOEXEC) < 0) {
		perror("fake-qemu: pipe");
		return 1;
	}
	pthread_t t;
	pthread_create(&t, NULL, helper_thread, "call_rcu");
	for (long k = 0; k < n_cpus; k++)
		if (pthread_create(&t, NULL, vcpu_thread, (void *)k) != 0) {
			perror("fake-qemu: pthread_create");
			return 1;
		}
	pthread_mutex_lock(&lock);
	for (int k = 0; k < n_cpus; k++)
		while (!tids[k])
			pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	if (!paused) {
		running = true;
		status = "running";
	}
	send_line("{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
		  "\"package\": \"fake-qemu\"}, \"capabilities\": [\"oob\"]}}");

	while (!quitting) {
		struct pollfd p[2] = {{.fd = sfd, .events = POLLIN},
				      {.fd = qmp_fd, .events = POLLIN}};
		int n = poll(p, qmp_fd >= 0 ? 2 : 1, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (p[0].revents & POLLIN)
			stop_on_signal();
		if (qmp_fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			char buf[4096];
			ssize_t r = read(qmp_fd, buf, sizeof(buf));
			if (r > 0)
				feed(buf, (size_t)r);
			else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
				/* qemu keeps running when its monitor goes away. */
				close(qmp_fd);
				qmp_fd = -1;
			}
		}
	}
	return 0;
}
