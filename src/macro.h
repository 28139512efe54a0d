/* Small ownership helpers shared by every module (after systemd/bubblewrap). */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
/* Code a started launcher runs while it waits (the supervision loop, the trim that precedes it):
 * kept together in a section that memtrim.c keeps resident while it drops the rest of the
 * binary's code, so an idle launcher faults none of it back (each fault would map a 64 KiB
 * window: fault-around). */
#define _idle_ __attribute__((section("ql_idle")))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Hand ownership of a pointer/fd to someone else, leaving the cleanup a no-op. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _p_ = (p);                                                           \
		(p) = NULL;                                                                        \
		_p_;                                                                               \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _fd_ = (fd);                                                                   \
		(fd) = -1;                                                                         \
		_fd_;                                                                              \
	})

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Leaves -1 behind: a descriptor kept in a struct and closed early (a backend's warm fd) must
 * not be closed again later, when its number may belong to another file. */
static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
		*fd = -1;
	}
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Milliseconds on the monotonic clock, for deadlines. */
static inline int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The now_ms() by which ms milliseconds will have passed. now_ms() truncates, so now + ms could
 * come up to 1 ms early (qmp's test_timeout measured 149 ms for 150): one more. 0 stays "now";
 * a negative ms is "never" (-1). */
static inline int64_t deadline_ms(int ms)
{
	return ms < 0 ? -1 : now_ms() + ms + (ms > 0);
}

/* NULL-terminated string vectors (argv, envp). */
static inline void strv_free(char **v)
{
	if (!v)
		return;
	for (char **i = v; *i; i++)
		free(*i);
	free(v);
}
static inline void strv_freep(char ***v)
{
	strv_free(*v);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

static inline size_t strv_length(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

#define streq(a, b) (strcmp((a), (b)) == 0)

/* "a/b" (either may be empty: no doubled or leading slash); NULL on allocation failure. */
static inline char *path_join(const char *a, const char *b)
{
	char *s = NULL;
	if (asprintf(&s, "%s%s%s", a, *a && *b ? "/" : "", b) < 0)
		return NULL;
	return s;
}
