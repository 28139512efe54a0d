/* Unit tests of guardian_start: a list of descriptors to close longer than the guardian's block
 * holds is refused with E2BIG, before anything is started or opened; a setuid launcher's
 * guardian is out of its caller's reach from its birth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "guardian.h"

static size_t open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	size_t n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_too_many_fds_refused(void **state)
{
	char *argv[] = {"qemu-launcher", NULL};
	const int fds[] = {10, 11, 12, 13, 14, 15, 16, 17, -1};
	struct guardian *g = NULL;
	struct ql_error err = {0};
	size_t before = open_fds();
	assert_int_equal(guardian_start(0, argv, fds, &g, &err), -E2BIG);
	assert_null(g);
	assert_non_null(err.msg);
	assert_int_equal(open_fds(), before); /* no pidfd, socket or mapping left open */
	ql_error_clear(&err);
}

/* The first field of a line of /proc/PID/status ("Uid:"), or -1. */
static long status_field(pid_t pid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtol(line + strlen(key), NULL, 10);
	if (f)
		fclose(f);
	return v;
}

/* Our child other than `not` (the guardian beside the stand-in qemu), or -1. */
static pid_t other_child(pid_t not )
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	FILE *f = fopen(path, "re");
	int c = -1, found = -1;
	while (f && fscanf(f, "%d", &c) == 1)
		if (c != not )
			found = c;
	if (f)
		fclose(f);
	return found;
}

/* Installed setuid, the launcher keeps the caller's real uid; its guardian made itself root only
 * once it ran, and until then the caller could stop or kill it. It is now born with real uid 0:
 * looked at before it can run, it already is. Before it can run: one CPU, and SCHED_FIFO, so the
 * child (FIFO at the same priority) waits behind us, where under SCHED_OTHER a wake-up or a tick
 * could let it run first and set its real uid itself. */
static void test_setuid_guardian_born_out_of_reach(void **state)
{
	if (geteuid() != 0) {
		print_message("# skip: needs root (setresuid to 65534 and back)\n");
		skip();
	}
	cpu_set_t old, one;
	assert_int_equal(sched_getaffinity(0, sizeof(old), &old), 0);
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	pid_t qemu = fork();
	if (qemu == 0) {
		pause();
		_exit(0);
	}
	assert_true(qemu > 0);
	char *argv[] = {"qemu-launcher", NULL};
	struct guardian *g = NULL;
	struct ql_error err = {0};
	struct sched_param fifo = {.sched_priority = 1}, other = {0};
	assert_int_equal(sched_setscheduler(0, SCHED_FIFO, &fifo), 0);
	assert_int_equal(setresuid(65534, 0, 0), 0); /* a setuid exec by uid 65534 */
	int r = guardian_start(qemu, argv, NULL, &g, &err);
	pid_t guardian = other_child(qemu);
	long ruid = guardian > 0 ? status_field(guardian, "Uid:") : -2;
	assert_int_equal(sched_setscheduler(0, SCHED_OTHER, &other), 0);
	uid_t ours = getuid(); /* the caller's again once the guardian is started */
	assert_int_equal(setresuid(0, 0, 0), 0);
	assert_int_equal(ours, 65534);
	assert_int_equal(r, 0);
	assert_true(guardian > 0);
	assert_int_equal(ruid, 0);
	guardian_dismiss(g);
	assert_int_equal(waitpid(guardian, NULL, 0), guardian);
	kill(qemu, SIGKILL);
	assert_int_equal(waitpid(qemu, NULL, 0), qemu);
	assert_int_equal(sched_setaffinity(0, sizeof(old), &old), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_too_many_fds_refused),
	    cmocka_unit_test(test_setuid_guardian_born_out_of_reach),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
