/* Hugepages for guest RAM: which memory backends of the definition live on hugepages (page size,
 * host NUMA node, size), how many pages that is per page size and node, how many are free, and —
 * with `hugepages: reserve` — raising nr_hugepages by what is missing through the journal, so
 * exactly what this launcher reserved is given back when the VM ends (or its launcher dies). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "definition.h"
#include "error.h"
#include "journal.h"
#include "log.h"

/* One guest RAM region on hugepages. */
struct mem_backend {
	char *id;	/* the backend's id, or "-mem-path" */
	uint64_t bytes; /* its size */
	unsigned long page_kb;
	int node; /* the one host NUMA node it is bound to; -1: any */
	bool prealloc;
	size_t option; /* index in d->options */
};

/* A warning (malloc'd) for a backend bound to one host node that is not preallocated; NULL for
 * any other (or out of memory). The kernel promises hugepages to a mapping per host
 * (resv_hugepages), not per node: until the guest has touched them, the node's pages count as
 * free there, to the next VM's start as to anything else, and a guest may then find the node's
 * pool empty. prealloc=on takes them while qemu starts. */
char *hugepages_backend_warning(const struct mem_backend *b);

/* The page size in kB of the hugetlbfs holding path (or its directory), 0 when path is not on
 * hugetlbfs, -errno when it cannot be told. Injected so the parsing stays pure. */
typedef long (*hugetlbfs_page_kb_fn)(const char *path);
long hugepages_hugetlbfs_page_kb(const char *path); /* statfs */
/* A "FIELD: N kB" line of sysroot's /proc/meminfo (Hugepagesize, MemAvailable): N. */
int hugepages_meminfo_kb(const char *sysroot, const char *field, long long *ret,
			 struct ql_error *err);

/* The hugepage-backed regions of d: -mem-path with -m, memory-backend-file on hugetlbfs,
 * memory-backend-memfd with hugetlb=on (default_kb when hugetlbsize is absent). */
int mem_backends_parse(const struct definition *d, hugetlbfs_page_kb_fn page_kb,
		       unsigned long default_kb, struct mem_backend **ret, size_t *ret_n,
		       struct ql_error *err);
void mem_backends_free(struct mem_backend *v, size_t n);

/* All of the guest's memory, hugepages or not (rlimit_memlock: auto, prealloc-context). */
struct mem_layout {
	struct mem_backend *v; /* every memory-backend-* object, page_kb 0 when not on hugepages;
				  and -mem-path on hugetlbfs */
	size_t n;
	/* -m (unless `-numa node,memdev=` or `-machine memory-backend=` make the RAM of backends)
	 * plus every memory backend */
	uint64_t guest_ram;
	bool mem_lock; /* -overcommit mem-lock=on */
	bool vfio;     /* -device vfio-pci */
};
int mem_layout_parse(const struct definition *d, hugetlbfs_page_kb_fn page_kb,
		     unsigned long default_kb, struct mem_layout *ret, struct ql_error *err);
void mem_layout_done(struct mem_layout *l);

/* One pool: a page size on one host node (-1: the whole host's pool). */
struct hugepage_need {
	unsigned long page_kb;
	int node;
	long needed;	    /* pages the VM's backends take from this pool */
	long nr;	    /* the pool's nr_hugepages now */
	long free;	    /* of which free, not promised to another mapping, and (any node)
			     * not taken by the VM's node-bound backends */
	long missing;	    /* needed - free, at least 0 */
	char *nr_path;	    /* the nr_hugepages file to raise */
	char *compact_path; /* written 1 before raising: the node's compact, or compact_memory */
};

struct hugepages_plan {
	struct hugepage_need *v;
	size_t n;
	/* the host's MemAvailable (kB) when pages are missing; -1 when not read. Reserving more
	 * than that is refused: a typo (4T for 4G) must not make the kernel take every free page */
	long long avail_kb;
};
void hugepages_plan_done(struct hugepages_plan *p);

/* Sums the backends per pool and reads each pool's state under sysroot ("/" or a test tree).
 * Reads only. */
int hugepages_plan_compute(const char *sysroot, const struct mem_backend *b, size_t n,
			   struct hugepages_plan *ret, struct ql_error *err);

/* Why a start would be refused before anything is reserved (CHECK: pools short; RESERVE: more
 * missing than MemAvailable), as hugepages_apply says it; *ret NULL when nothing foreseen. For
 * --check, which must not pass a start that is sure to fail. -ENOMEM. */
int hugepages_plan_refusal(const struct hugepages_plan *p, enum ql_hugepages mode, char **ret);

/* --dry-run: one line per pool, and the writes `reserve` would make. NULL on ENOMEM. */
char *hugepages_plan_describe(const struct hugepages_plan *p, enum ql_hugepages mode);

/* Before qemu starts: with CHECK, -ENOMEM naming every short pool; with RESERVE, compacts and
 * raises each short pool through the journal; pools still short after that are named with how
 * many could not be reserved, and what was reserved is given back (-ENOMEM). */
int hugepages_apply(struct hugepages_plan *p, enum ql_hugepages mode, struct journal *j,
		    const struct ql_logger *log, struct ql_error *err);
