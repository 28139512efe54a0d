/* Keeps the long-sleeping launcher small: after start-up, code pages it will probably not run
 * again (YAML parsing, argv building, cgroup setup) are dropped from its page tables. */
#pragma once

/* Returns the heap's free memory to the kernel, unmaps the resident pages of every read-only
 * file mapping that holds only the file's bytes (they come back from the page cache on the
 * next use), but for the launcher's idle code (_idle_, macro.h). Best effort. */
void memtrim_after_startup(void);
