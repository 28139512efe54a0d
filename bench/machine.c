/* What process work costs on this machine, for bench.py's machine section: the launcher's own
 * cost is mostly page faults, one fork (the guardian) and its reap, so their price here decides
 * how far it can sit above the floor. Prints "KEY MICROSECONDS" lines, medians:
 *   fault   first touch of an anonymous page (the fault that maps it), 64 pages in a row
 *   region  first touch of a page in a fresh 2 MiB of address space: the fault also allocates
 *           the page-table page for those 2 MiB. Where the hypervisor shadows page tables, it
 *           costs several faults: every new mapping a process touches (its heap, a library) pays
 *           it once
 *   syscall getppid(2), the cheapest system call
 *   fork    fork + _exit + waitpid of this small process
 *   spawn   posix_spawn + waitpid of /bin/true (exec and dynamic loading of a small program)
 * Build: cc -O2 -o ql-machine bench/machine.c */
#include <spawn.h>
#include <stdint.h>
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

	const size_t two_mib = 2u << 20;
	for (int r = 0; r < ROUNDS; r++) {
		char *p = mmap(NULL, 2 * two_mib, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 1;
		/* the aligned 2 MiB inside: no other mapping shares its page-table page; no huge
		 * page either (THP "always" would map the whole 2 MiB at this touch) */
		char *q = (char *)(((uintptr_t)p + two_mib - 1) & ~(uintptr_t)(two_mib - 1));
		madvise(q, two_mib, MADV_NOHUGEPAGE);
		double t = now_us();
		q[0] = 1;
		v[r] = now_us() - t;
		munmap(p, 2 * two_mib);
	}
	printf("region %.2f\n", median(v, ROUNDS));

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
