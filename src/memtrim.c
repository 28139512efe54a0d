/* Why this is safe: a private file mapping that holds no anonymous (copied-on-write) page only
 * caches the file's own bytes, so discarding its pages with MADV_DONTNEED loses nothing; the
 * next access faults them back in from the page cache. Mappings with anonymous pages, such as
 * the RELRO data the dynamic linker relocated before making it read-only, are left alone:
 * dropping those would bring back the unrelocated file contents. */
#include "memtrim.h"

#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_RANGES 128

void memtrim_after_startup(void)
{
	malloc_trim(0);

	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return;
	/* Collected first and dropped after fclose, so the final malloc_trim also returns
	 * stdio's buffer. */
	struct {
		unsigned long start, end;
	} ranges[MAX_RANGES];
	size_t n = 0;
	unsigned long start = 0, end = 0;
	bool candidate = false;
	char line[512];
	while (n < MAX_RANGES && fgets(line, sizeof(line), f)) {
		unsigned long s, e, inode;
		char perms[5], path[256] = "";
		unsigned long kb;
		if (sscanf(line, "%lx-%lx %4s %*s %*s %lu %255s", &s, &e, perms, &inode, path) >=
		    4) {
			/* file-backed, private, never writable */
			start = s;
			end = e;
			candidate =
			    inode != 0 && path[0] == '/' && perms[1] == '-' && perms[3] == 'p';
		} else if (candidate && sscanf(line, "Anonymous: %lu kB", &kb) == 1) {
			if (kb == 0) {
				ranges[n].start = start;
				ranges[n].end = end;
				n++;
			}
			candidate = false;
		}
	}
	fclose(f);
	for (size_t i = 0; i < n; i++) {
		void *addr = (void *)ranges[i].start;
		size_t len = ranges[i].end - ranges[i].start;
		/* MADV_RANDOM turns off fault-around, which would otherwise map 64 KiB of
		 * neighbours back in for every page the supervision loop touches. */
		madvise(addr, len, MADV_RANDOM);
		madvise(addr, len, MADV_DONTNEED);
	}
	malloc_trim(0);
}
