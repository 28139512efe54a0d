/* Test driver for the journal's locks (tests/integration/lock.sh): a setuid-root copy, run as
 * another user, opens the journal at DIR (the launcher itself refuses QEMU_LAUNCHER_* overrides
 * in setuid mode) and takes its locks as stdin says, one command a line, answering each on
 * stdout once done:
 *   set VALUE   journal_set of FILE (the journal's directory lock)   -> SET, or ERR message
 *   huge        journal_lock_hugepages                               -> HUGE
 *   unhuge      journal_unlock_hugepages                             -> UNHUGE
 *   vfio        journal_lock_vfio                                    -> VFIO
 *   unvfio      journal_unlock of it                                 -> UNVFIO
 * Prints "PID <pid>" first. On stdin EOF it gives its records back and exits 0 (125 when that
 * fails). WAIT_MS bounds each lock wait. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"

static void answer(const char *what)
{
	printf("%s\n", what);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: journaldrive DIR FILE WAIT_MS\n");
		return 2;
	}
	printf("PID %d\n", (int)getpid());
	fflush(stdout);
	struct ql_error err = {0};
	struct journal *j = NULL;
	if (journal_open(argv[1], "journaldrive", NULL, &j, &err) < 0) {
		fprintf(stderr, "journaldrive: %s\n", err.msg);
		return 125;
	}
	journal_set_lock_wait_ms(j, atoi(argv[3]));
	int vfio = -1;
	char line[256];
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		int r = 0;
		const char *done = line;
		if (strncmp(line, "set ", 4) == 0) {
			r = journal_set(j, argv[2], line + 4, &err);
			done = "SET";
		} else if (strcmp(line, "huge") == 0) {
			r = journal_lock_hugepages(j, &err);
			done = "HUGE";
		} else if (strcmp(line, "unhuge") == 0) {
			journal_unlock_hugepages(j);
			done = "UNHUGE";
		} else if (strcmp(line, "vfio") == 0) {
			r = journal_lock_vfio(j, &vfio, &err);
			done = "VFIO";
		} else if (strcmp(line, "unvfio") == 0) {
			journal_unlock(&vfio);
			done = "UNVFIO";
		} else {
			r = ql_error_set(&err, EINVAL, "unknown command `%s`", line);
		}
		if (r < 0) {
			printf("ERR %s\n", err.msg);
			fflush(stdout);
			ql_error_clear(&err);
		} else {
			answer(done);
		}
	}
	journal_unlock(&vfio);
	int r = journal_undo_own(j, &err);
	if (r < 0)
		fprintf(stderr, "journaldrive: %s\n", err.msg);
	journal_free(j);
	return r < 0 ? 125 : 0;
}
