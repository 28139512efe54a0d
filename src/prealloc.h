/* Preallocation on the right CPUs: a memory backend with prealloc=on in a pinned VM gets a
 * `thread-context` object bound to the emulator CPUs (those on its host NUMA node when it is
 * bound to one) and `prealloc-context=` naming it (QEMU >= 7.2), so qemu's preallocation threads
 * do not run on the vCPUs' CPUs, and touch a bound backend's pages from its own node. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cpulist.h"
#include "definition.h"
#include "error.h"
#include "hugepages.h"

#define PREALLOC_CONTEXT_ID "qemu-launcher-prealloc"

struct prealloc_plan {
	char **args; /* "-object", "thread-context,..." per context; NULL when none is added */
	size_t *argv_index; /* the backends' values in cmdline_build's argv ... */
	char **values;	    /* ... and what they become (prealloc-context= added) */
	char **ids;	    /* ... their ids, for --dry-run */
	char **contexts;    /* ... and the thread-context each was given */
	size_t n;
	char **notes;	 /* for --dry-run: what was decided and why */
	char **warnings; /* for every mode: a bound backend whose node has no emulator CPU */
};
void prealloc_plan_done(struct prealloc_plan *p);

/* The emulator CPUs are emulator_pinning, else the online CPUs no vCPU is pinned to; a backend
 * bound to one host node (host-nodes=N,policy=bind|preferred) gets a context of its own on the
 * emulator CPUs of /sys/devices/system/node/nodeN/cpulist. Nothing
 * when the VM does not pin or no backend preallocates. probe: ask qemu (`-object help`) whether
 * it knows thread-context; one without gets a note and nothing added. */
/* The CPUs of the preallocation threads of a backend bound to a host node whose CPUs are node_cpus
 * (NULL: not bound): the emulator CPUs on that node; all emulator CPUs when none of them is on it
 * (*ret_fallback then true). Pure. */
int prealloc_context_cpus(const struct cpu_list *emulator, const struct cpu_list *node_cpus,
			  struct cpu_list **ret, bool *ret_fallback);

int prealloc_plan_new(const struct definition *d, const struct mem_layout *l, bool probe,
		      struct prealloc_plan *ret, struct ql_error *err);
