/* Safe file operations inside a cgroup filesystem subtree: every path is relative to a directory
 * fd we opened ourselves, opened with O_NOFOLLOW, never contains "..", and every write is traced
 * to the logger (-d) so the user sees each host change. Shared by the v1 and v2 backends. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "cpulist.h"
#include "error.h"
#include "log.h"

/* Opens dir (absolute) as O_PATH|O_DIRECTORY... suitable for *at(). */
int cgroupfs_open_dir(const char *path, int *ret_fd, struct ql_error *err);
/* mkdir relative to dirfd (EEXIST is fine when exist_ok). Traced. */
int cgroupfs_mkdir(int dirfd, const char *name, bool exist_ok, const struct ql_logger *log,
		   const char *display_path, struct ql_error *err);
/* rmdir, retrying EBUSY for a short bounded time (tasks of a dead qemu vanish asynchronously). */
int cgroupfs_rmdir(int dirfd, const char *name, const struct ql_logger *log,
		   const char *display_path, struct ql_error *err);
/* The inode of directory dirfd/rel, 0 when it cannot be looked at: a set this launcher made is
 * known by it (cgroupfs numbers each new directory anew, 64-bit), a namesake made since is not. */
ino_t cgroupfs_ino(int dirfd, const char *rel);
/* How many directories dirfd/rel holds (rel "." for dirfd itself), without listing it: cgroupfs
 * counts them in the directory's link count (2 + n). -errno when it cannot be looked at. */
int cgroupfs_subdirs(int dirfd, const char *rel);
/* Writes value (one write(2)) to file relative to dirfd. Traced. */
int cgroupfs_write(int dirfd, const char *file, const char *value, const struct ql_logger *log,
		   const char *display_path, struct ql_error *err);
/* For a burst of writes to one file (a tasks file takes one id per write(2), so one open serves
 * many moves): opens file relative to dirfd for writing, then cgroupfs_write_fd per value. */
int cgroupfs_open_file(int dirfd, const char *file, int *ret_fd, const char *display_path,
		       struct ql_error *err);
/* keep_warm of both cgroup backends: pid written into fd, the open tasks (v1) or cgroup.threads
 * (v2) file of the cgroup pid is in. The kernel migrates nothing, but the write takes its
 * migration lock as a writer (isolation_backend.h). Best effort: fd is closed on failure. */
void cgroupfs_keep_warm(int *fd, pid_t pid);
/* One value in one write(2) to fd, traced as display_path/file. */
int cgroupfs_write_fd(int fd, const char *file, const char *value, const struct ql_logger *log,
		      const char *display_path, struct ql_error *err);
/* Reads the whole (small) file, trailing newline stripped. */
int cgroupfs_read(int dirfd, const char *file, char **ret, struct ql_error *err);
int cgroupfs_read_cpus(int dirfd, const char *file, struct cpu_list **ret, struct ql_error *err);
/* Reads a tasks/cgroup.threads/cgroup.procs file into an array of ids. */
int cgroupfs_read_pids(int dirfd, const char *file, pid_t **ret, size_t *ret_n,
		       struct ql_error *err);
