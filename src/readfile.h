/* One bounded reader for the small files the launcher reads whole: sysfs/procfs/cgroup knobs,
 * CPU lists, definitions imported from libvirt. Limits are explicit because a file under /proc or
 * /sys is not bounded by its st_size (it reports 0 or 4096). */
#pragma once

#include <stddef.h>

/* Reads the whole of fd (from its current offset), at most max bytes, into a NUL-terminated
 * buffer *ret of *ret_len bytes (ret_len may be NULL). The bytes are kept as read, NULs and
 * trailing newlines included. -EFBIG when the file holds more than max bytes, -errno otherwise. */
int read_small_fd(int fd, size_t max, char **ret, size_t *ret_len);

/* The same for path relative to dirfd (AT_FDCWD for a plain path), opened with
 * O_RDONLY | O_CLOEXEC | O_NOCTTY | flags (e.g. O_NOFOLLOW). */
int read_small_file(int dirfd, const char *path, int flags, size_t max, char **ret,
		    size_t *ret_len);

/* Strips trailing newlines of s (length *len, updated). */
void strip_newlines(char *s, size_t *len);
