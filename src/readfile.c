/* The bounded small-file reader (see readfile.h). */
#include "readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "macro.h"

int read_small_fd(int fd, size_t max, char **ret, size_t *ret_len)
{
	/* Most knobs fit in one page: grow only for the few that do not (tasks files). */
	size_t cap = max < 4096 ? max + 1 : 4096, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len + 1 >= cap && cap > max) {
			/* Full: only a read that finds the end tells "exactly max" from "more". */
			char probe;
			ssize_t n;
			do
				n = read(fd, &probe, 1);
			while (n < 0 && errno == EINTR);
			if (n < 0)
				return -errno;
			if (n > 0)
				return -EFBIG;
			break;
		}
		if (len + 1 >= cap) {
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			char *nbuf = realloc(buf, ncap);
			if (!nbuf)
				return -ENOMEM;
			buf = nbuf;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int read_small_file(int dirfd, const char *path, int flags, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | flags);
	if (fd < 0)
		return -errno;
	return read_small_fd(fd, max, ret, ret_len);
}

void strip_newlines(char *s, size_t *len)
{
	while (*len > 0 && s[*len - 1] == '\n')
		s[--*len] = '\0';
}
