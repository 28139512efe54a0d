/* Why this is safe: a private file mapping that holds no anonymous (copied-on-write) page only
 * caches the file's own bytes, so discarding its pages with MADV_DONTNEED loses nothing; the
 * next access faults them back in from the page cache. Mappings with anonymous pages, such as
 * the RELRO data the dynamic linker relocated before making it read-only, are left alone:
 * dropping those would bring back the unrelocated file contents. */
#include "memtrim.h"

#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "macro.h"

#define MAX_RANGES 128

/* The idle code's bounds (the linker's, for a section named like a C identifier; weak: a build
 * with no _idle_ function has none). */
extern const char __start_ql_idle[] __attribute__((weak));
extern const char __stop_ql_idle[] __attribute__((weak));

struct range {
	uintptr_t start, end;
};

/* [start, end) without keep (each page-aligned), as up to two ranges. */
_idle_ static void drop_around(struct range r, struct range keep)
{
	if (keep.end <= r.start || keep.start >= r.end) {
		madvise((void *)r.start, r.end - r.start, MADV_DONTNEED);
		return;
	}
	if (keep.start > r.start)
		madvise((void *)r.start, keep.start - r.start, MADV_DONTNEED);
	if (keep.end < r.end)
		madvise((void *)keep.end, r.end - keep.end, MADV_DONTNEED);
}

_idle_ void memtrim_after_startup(void)
{
	malloc_trim(0);

	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return;
	/* Collected first and dropped after fclose, so the final malloc_trim also returns
	 * stdio's buffer. */
	struct range ranges[MAX_RANGES];
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
			if (kb == 0)
				ranges[n++] = (struct range){start, end};
			candidate = false;
		}
	}
	fclose(f);
	/* The idle code stays: dropped, the first page the waiting loop runs would fault back
	 * a 64 KiB window of its neighbours (fault-around; MADV_RANDOM does not stop it). */
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	struct range idle = {0};
	if (__start_ql_idle && __stop_ql_idle)
		idle = (struct range){(uintptr_t)__start_ql_idle & ~(page - 1),
				      ((uintptr_t)__stop_ql_idle + page - 1) & ~(page - 1)};
	for (size_t i = 0; i < n; i++)
		drop_around(ranges[i], idle);
	malloc_trim(0);
}
