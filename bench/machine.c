/* What process work costs on this machine, for bench.py's machine section: the launcher's own
 * cost is mostly page faults, one fork (the guardian) and its reap, so their price here decides
 * how far it can sit above the floor. Prints "KEY MICROSECONDS" lines, medians:
 *   fault   first touch of an anonymous page (the fault that maps it)
 *   syscall getppid(2), the cheapest system call
 *   fork    fork + _exit + waitpid of this small process
 *   spawn   posix_spawn + waitpid of /bin/true (exec and dynamic loading of a small program)
 * Build: cc -O2 -o ql-machine bench/machine.c */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return v[n / 2];
}

#define ROUNDS 101

int main(void)
{
	double v[ROUNDS];
	const int pages = 64;
	long psz = sysconf(_SC_PAGESIZE);
	for (int r = 0; r < ROUNDS; r++) {
		char *p = mmap(NULL, (size_t)(pages * psz), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 1;
		double t = now_us();
		for (int i = 0; i < pages; i++)
			p[i * psz] = 1;
		v[r] = (now_us() - t) / pages;
		munmap(p, (size_t)(pages * psz));
	}
	printf("fault %.2f\n", median(v, ROUNDS));

	for (int r = 0; r < ROUNDS; r++) {
		double t = now_us();
		for (int i = 0; i < 100; i++)
			getppid();
		v[r] = (now_us() - t) / 100;
	}
	printf("syscall %.2f\n", median(v, ROUNDS));

	for (int r = 0; r < ROUNDS; r++) {
		double t = now_us();
		pid_t c = fork();
		if (c == 0)
			_exit(0);
		if (c < 0 || waitpid(c, NULL, 0) != c)
			return 1;
		v[r] = now_us() - t;
	}
	printf("fork %.1f\n", median(v, ROUNDS));

	for (int r = 0; r < ROUNDS; r++) {
		char *argv[] = {"true", NULL};
		pid_t c;
		double t = now_us();
		if (posix_spawn(&c, "/bin/true", NULL, NULL, argv, environ) != 0 ||
		    waitpid(c, NULL, 0) != c)
			return 1;
		v[r] = now_us() - t;
	}
	printf("spawn %.1f\n", median(v, ROUNDS));
	return 0;
}
