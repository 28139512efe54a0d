/* Populating fresh memory ahead of its first touch (see populate.h). */
#include "populate.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; glibc 2.36's headers lack it on some targets */
#endif

void populate(void *p, size_t n)
{
	if (!p || n < POPULATE_MIN)
		return;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	if (page == 0 || page == (uintptr_t)-1)
		page = 4096;
	/* Widened to whole pages: the pages that hold the block's first and last bytes are mapped,
	 * so the range never reaches outside memory the process owns. */
	uintptr_t start = (uintptr_t)p & ~(page - 1);
	uintptr_t end = ((uintptr_t)p + n + page - 1) & ~(page - 1);
	(void)madvise((void *)start, end - start, MADV_POPULATE_WRITE);
}
