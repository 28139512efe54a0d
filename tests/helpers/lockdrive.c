/* Test driver for the cross-launcher lock (tests/integration/lock.sh): places one stand-in vCPU
 * (a child that sleeps) with the cpuset v1 backend at a delegated MOUNT_PATH, the way the launcher
 * does, so a setuid-root copy can be run as another user against a test-owned subtree (the
 * launcher itself refuses QEMU_LAUNCHER_* overrides in setuid mode). Prints "PID <pid>" first,
 * "APPLIED" once placed; releases and exits 0 on stdin EOF; 125 on failure with the message. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "isolation.h"

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: lockdrive MOUNT_PATH NAME HOST_CPU\n");
		return 2;
	}
	printf("PID %d\n", (int)getpid());
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	struct isolation_config cfg = {.vm_name = argv[2], .mount_path = argv[1], .prefix = "qemu",
				       .mode = QL_ISOLATE_TRUE};
	struct vcpu_placement v = {.cpu_index = 0, .tid = child,
				   .host_cpu = (unsigned)strtoul(argv[3], NULL, 10)};
	struct isolation_plan plan = {.qemu_pid = child, .vcpus = &v, .n_vcpus = 1};
	struct ql_error err = {0};
	struct isolation *iso = NULL;
	int r = isolation_open(&cfg, &iso, &err);
	if (r == 0)
		r = isolation_apply(iso, &plan, &err);
	if (r == 0) {
		printf("APPLIED\n");
		fflush(stdout);
		while (getchar() != EOF)
			;
		r = isolation_release(iso, &err);
	}
	if (r < 0)
		fprintf(stderr, "lockdrive: %s\n", err.msg);
	isolation_free(iso);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return r < 0 ? 125 : 0;
}
