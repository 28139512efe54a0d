/* File operations inside a cgroup filesystem subtree (v1 and v2): relative to a directory fd we
 * opened, no "..", no symlinks followed, every change traced at QL_LOG_DEBUG. */
#include "cgroupfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "readfile.h"

/* A tasks file of a busy host can list tens of thousands of ids; 16 MiB is far beyond that and
 * still bounds what a hostile cgroupfs could make us allocate. */
#define CGROUPFS_MAX_READ (16 * 1024 * 1024)
/* How long rmdir retries EBUSY: a dead qemu's tasks leave the set asynchronously. */
#define CGROUPFS_RMDIR_RETRY_MS 2000

/* Relative, no empty/"."/".." component: we never leave the subtree we opened. */
static bool relative_path_is_safe(const char *name)
{
	if (!name || !*name || name[0] == '/' || strlen(name) >= PATH_MAX)
		return false;
	const char *p = name;
	while (*p) {
		size_t len = strcspn(p, "/");
		if (len == 0 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += len;
		if (*p == '/')
			p++;
	}
	return true;
}

static const char *disp(const char *display_path)
{
	return display_path ? display_path : "<cgroup>";
}

int cgroupfs_open_dir(const char *path, int *ret_fd, struct ql_error *err)
{
	if (!path || path[0] != '/')
		return ql_error_set(err, EINVAL, "cgroup path `%s` is not absolute",
				    path ? path : "(null)");
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ql_error_set_errno(err, errno, "opening `%s`", path);
	*ret_fd = fd;
	return 0;
}

int cgroupfs_mkdir(int dirfd, const char *name, bool exist_ok, const struct ql_logger *log,
		   const char *display_path, struct ql_error *err)
{
	if (!relative_path_is_safe(name))
		return ql_error_set(err, EINVAL, "refusing unsafe cgroup name `%s`", name);
	if (mkdirat(dirfd, name, 0755) < 0) {
		if (errno == EEXIST && exist_ok)
			return 0;
		return ql_error_set_errno(err, errno, "creating `%s/%s`", disp(display_path), name);
	}
	ql_log(log, QL_LOG_DEBUG, "mkdir %s/%s", disp(display_path), name);
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

ino_t cgroupfs_ino(int dirfd, const char *rel)
{
	struct stat st;
	return fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) ? st.st_ino
											 : 0;
}

int cgroupfs_subdirs(int dirfd, const char *rel)
{
	struct stat st;
	if (fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return st.st_nlink >= 2 ? (int)(st.st_nlink - 2) : 0;
}

/* An already missing directory counts as removed, so that release stays idempotent. */
int cgroupfs_rmdir(int dirfd, const char *name, const struct ql_logger *log,
		   const char *display_path, struct ql_error *err)
{
	if (!relative_path_is_safe(name))
		return ql_error_set(err, EINVAL, "refusing unsafe cgroup name `%s`", name);
	/* There is no event telling us a dead task has left a cgroup, so a short bounded retry
	 * is the only option. The kernel lets go within a millisecond or so after qemu is reaped
	 * (bench/breakdown.py): start at 1 ms, double up to 20 ms, so teardown does not sleep 20
	 * ms for nothing. */
	for (long waited = 0, step = 1;; waited += step, step = step < 20 ? step * 2 : 20) {
		if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0)
			break;
		if (errno == ENOENT)
			return 0;
		if (errno != EBUSY || waited >= CGROUPFS_RMDIR_RETRY_MS)
			return ql_error_set_errno(err, errno, "removing `%s/%s`",
						  disp(display_path), name);
		sleep_ms(step);
	}
	ql_log(log, QL_LOG_DEBUG, "rmdir %s/%s", disp(display_path), name);
	return 0;
}

int cgroupfs_open_file(int dirfd, const char *file, int *ret_fd, const char *display_path,
		       struct ql_error *err)
{
	if (!relative_path_is_safe(file))
		return ql_error_set(err, EINVAL, "refusing unsafe cgroup file `%s`", file);
	int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return ql_error_set_errno(err, errno, "opening `%s/%s`", disp(display_path), file);
	*ret_fd = fd;
	return 0;
}

void cgroupfs_keep_warm(int *fd, pid_t pid)
{
	if (*fd < 0)
		return;
	char id[24];
	int n = snprintf(id, sizeof(id), "%d", (int)pid);
	if (write(*fd, id, (size_t)n) < 0)
		closep(fd);
}

int cgroupfs_write_fd(int fd, const char *file, const char *value, const struct ql_logger *log,
		      const char *display_path, struct ql_error *err)
{
	size_t len = strlen(value);
	/* cgroupfs parses each write(2) as one value: it must go in a single call. */
	ssize_t n = write(fd, value, len);
	if (n < 0)
		return ql_error_set_errno(err, errno, "writing `%s` to `%s/%s`", value,
					  disp(display_path), file);
	if ((size_t)n != len)
		return ql_error_set(err, EIO, "short write of `%s` to `%s/%s`", value,
				    disp(display_path), file);
	ql_log(log, QL_LOG_DEBUG, "write %s/%s <- %s", disp(display_path), file,
	       len ? value : "\"\"");
	return 0;
}

int cgroupfs_write(int dirfd, const char *file, const char *value, const struct ql_logger *log,
		   const char *display_path, struct ql_error *err)
{
	_cleanup_close_ int fd = -1;
	int r = cgroupfs_open_file(dirfd, file, &fd, display_path, err);
	if (r < 0)
		return r;
	return cgroupfs_write_fd(fd, file, value, log, display_path, err);
}

int cgroupfs_read(int dirfd, const char *file, char **ret, struct ql_error *err)
{
	if (!relative_path_is_safe(file))
		return ql_error_set(err, EINVAL, "refusing unsafe cgroup file `%s`", file);
	size_t len;
	int r = read_small_file(dirfd, file, O_NOFOLLOW, CGROUPFS_MAX_READ, ret, &len);
	if (r == -EFBIG)
		return ql_error_set(err, EFBIG, "`%s` is larger than %d bytes", file,
				    CGROUPFS_MAX_READ);
	if (r < 0)
		return ql_error_set_errno(err, -r, "reading `%s`", file);
	strip_newlines(*ret, &len);
	return 0;
}

int cgroupfs_read_cpus(int dirfd, const char *file, struct cpu_list **ret, struct ql_error *err)
{
	_cleanup_free_ char *text = NULL;
	int r = cgroupfs_read(dirfd, file, &text, err);
	if (r < 0)
		return r;
	r = cpu_list_parse(text, ret, err);
	if (r < 0)
		ql_error_prefix(err, "`%s`: ", file);
	return r;
}

int cgroupfs_read_pids(int dirfd, const char *file, pid_t **ret, size_t *ret_n,
		       struct ql_error *err)
{
	_cleanup_free_ char *text = NULL;
	int r = cgroupfs_read(dirfd, file, &text, err);
	if (r < 0)
		return r;

	size_t n = 0, cap = 0;
	_cleanup_free_ pid_t *pids = NULL;
	for (char *p = text; *p;) {
		if (*p == '\n') {
			p++;
			continue;
		}
		char *end;
		errno = 0;
		long v = strtol(p, &end, 10);
		if (errno || end == p || v <= 0 || v > INT_MAX || (*end && *end != '\n'))
			return ql_error_set(err, EPROTO, "unexpected content in `%s`", file);
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			pid_t *np = reallocarray(pids, ncap, sizeof(*np));
			if (!np)
				return ql_error_set(err, ENOMEM, "out of memory");
			pids = np;
			cap = ncap;
		}
		pids[n++] = (pid_t)v;
		p = end;
	}
	*ret = TAKE_PTR(pids);
	*ret_n = n;
	return 0;
}
