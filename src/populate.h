/* Fresh memory mapped in by one system call instead of one page fault per page. Where a page
 * fault traps to a hypervisor, the first touch of a big buffer is most of what it costs: here
 * 9-10 us a fault against 4-5 us a page populated in batches (bench/RESULTS.md, "--check"), so
 * the buffers that grow with a definition's size are populated as they are allocated. */
#pragma once

#include <stddef.h>

/* Below this many bytes the system call costs about what the faults it saves do. */
#define POPULATE_MIN (16u << 10)

/* Best effort: maps in, writable, every page that [p, p + n) touches (MADV_POPULATE_WRITE, Linux
 * 5.14). p must come from a private anonymous mapping (malloc's heap or its own mmap), which
 * includes the whole pages around any block malloc returns. Does nothing below POPULATE_MIN or
 * where the kernel does not know the advice. Never changes the memory's contents. */
void populate(void *p, size_t n);
