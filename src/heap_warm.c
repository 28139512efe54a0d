#include "heap_warm.h"

#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

/* Pieces below malloc's mmap threshold (128 KiB), so they come from the heap rather than from
 * mappings of their own, which free() would unmap. */
#define PIECE (32u << 10)
/* free() trims the heap's top past M_TRIM_THRESHOLD (128 KiB by default), checked when a freed
 * chunk, merged, reaches 64 KiB: a warm that big would be given back at once. */
#define DEFAULT_TRIM_THRESHOLD (128u << 10)
#define CHECKS_TRIM_FROM (64u << 10)

/* Measured with json-c 0.16 (bench/RESULTS.md): 40 new pages for 64 vCPUs; a margin on top. */
#define BYTES_PER_VCPU 3072u

size_t heap_warm_bytes_for(unsigned n_vcpus)
{
	size_t b = (size_t)n_vcpus * BYTES_PER_VCPU;
	return b < HEAP_WARM_MAX ? b : HEAP_WARM_MAX;
}

void heap_warm(size_t bytes)
{
	if (bytes > HEAP_WARM_MAX)
		bytes = HEAP_WARM_MAX;
	if (bytes >= CHECKS_TRIM_FROM)
		/* memtrim's malloc_trim ignores it: the launcher still shrinks once idle */
		mallopt(M_TRIM_THRESHOLD, (int)(bytes + DEFAULT_TRIM_THRESHOLD));
	long page = sysconf(_SC_PAGESIZE);
	if (page <= 0)
		page = 4096;
	void *piece[HEAP_WARM_MAX / PIECE];
	size_t n = 0;
	for (size_t got = 0; got < bytes; got += PIECE) {
		size_t size = bytes - got < PIECE ? bytes - got : PIECE;
		/* volatile: a write the compiler cannot drop along with a malloc/free pair */
		volatile char *p = malloc(size);
		if (!p)
			break;
		for (size_t off = 0; off < size; off += (size_t)page)
			p[off] = 0;
		piece[n++] = (void *)p;
	}
	/* newest first, so each joins the free top of the heap as it is freed */
	while (n)
		free(piece[--n]);
}
