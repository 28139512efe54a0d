/* Touches heap memory ahead of the start-up's critical path. Between the spawn and qemu's
 * answers the launcher only waits; the answers are then parsed into fresh objects (json-c's hash
 * tables: about 2.5 KiB per vCPU of query-cpus-fast), and every new heap page takes a page fault
 * on the way to `cont`: 40 for 64 vCPUs, 0.5 ms where a fault traps to the hypervisor
 * (bench/RESULTS.md). Faulted in while qemu initialises, the same pages are then reused. */
#pragma once

#include <stddef.h>

/* Bytes of heap worth touching for the answers about n_vcpus vCPUs. */
size_t heap_warm_bytes_for(unsigned n_vcpus);

/* Grows the heap by up to `bytes`, touches every page and frees it again so that malloc keeps
 * it: the pages stay mapped until memtrim gives them back. Best effort; capped at
 * HEAP_WARM_MAX. */
#define HEAP_WARM_MAX (4u << 20)
void heap_warm(size_t bytes);
