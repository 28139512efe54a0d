/* Preallocation on the right CPUs: a memory backend with prealloc=on in a pinned VM gets a
 * `thread-context` object bound to the emulator CPUs and `prealloc-context=` naming it (QEMU
 * >= 7.2), so qemu's preallocation threads do not run on the vCPUs' CPUs. */
#pragma once

#include <stddef.h>

#include "definition.h"
#include "error.h"
#include "hugepages.h"

#define PREALLOC_CONTEXT_ID "qemu-launcher-prealloc"

struct prealloc_plan {
	char **args;	    /* "-object", "thread-context,..."; NULL when none is added */
	size_t *argv_index; /* the backends' values in cmdline_build's argv ... */
	char **values;	    /* ... and what they become (prealloc-context= added) */
	char **ids;	    /* ... their ids, for --dry-run */
	size_t n;
	char **notes; /* for --dry-run: what was decided and why */
};
void prealloc_plan_done(struct prealloc_plan *p);

/* The emulator CPUs are emulator_pinning, else the online CPUs no vCPU is pinned to. Nothing
 * when the VM does not pin or no backend preallocates. probe: ask qemu (`-object help`) whether
 * it knows thread-context; one without gets a note and nothing added. */
int prealloc_plan_new(const struct definition *d, const struct mem_layout *l, bool probe,
		      struct prealloc_plan *ret, struct ql_error *err);
