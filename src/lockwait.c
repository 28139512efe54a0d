/* flock with a bound (see lockwait.h). */
#include "lockwait.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "macro.h"

/* The pid /proc/locks names for a flock on fd's inode, 0 when none is found. */
static pid_t lock_holder(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return 0;
	_cleanup_fclose_ FILE *f = fopen("/proc/locks", "re");
	char line[256];
	while (f && fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		unsigned long ino;
		int pid;
		if (strstr(line, "->") || !strstr(line, "FLOCK") ||
		    sscanf(line, "%*d: FLOCK %*s %*s %d %x:%x:%lu", &pid, &maj, &min, &ino) != 4)
			continue;
		if (ino == st.st_ino && makedev(maj, min) == st.st_dev && pid > 0)
			return pid;
	}
	return 0;
}

int lock_wait(int fd, int wait_ms, const char *what, const char *path, const char *tail,
	      struct ql_error *err)
{
	int64_t deadline = deadline_ms(wait_ms);
	long delay_ms = 1;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return ql_error_set_errno(err, errno, "locking `%s`", path);
		if (now_ms() >= deadline) {
			pid_t holder = lock_holder(fd);
			char who[48] = "another process";
			if (holder)
				snprintf(who, sizeof(who), "process %d", (int)holder);
			return ql_error_set(
			    err, ETIMEDOUT,
			    "%s has held %s `%s` for over %d s (stopped or stuck?)%s", who, what,
			    path, wait_ms / 1000, tail);
		}
		nanosleep(&(struct timespec){0, delay_ms * 1000000}, NULL);
		delay_ms = delay_ms < 50 ? delay_ms * 2 : 50;
	}
	return 0;
}
