/* Host CPU sets of any size (CPU_ALLOC, never a fixed cpu_set_t) and their "0-3,8" text form. */
#pragma once

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Upper bound for any CPU number we accept from users or the kernel (Linux NR_CPUS max). */
#define CPU_LIST_MAX_CPUS 8192

struct cpu_list {
	cpu_set_t *set;
	size_t nbits;  /* number of CPUs the set can hold */
	size_t nbytes; /* CPU_ALLOC_SIZE(nbits) */
};

struct cpu_list *cpu_list_new(size_t nbits);
void cpu_list_free(struct cpu_list *l);
static inline void cpu_list_freep(struct cpu_list **l)
{
	cpu_list_free(*l);
}
#define _cleanup_cpu_list_ _cleanup_(cpu_list_freep)

/* Parses "", "3", "0-3,8,10-11" (kernel list syntax; whitespace/newline at the end allowed).
 * Every CPU must be < CPU_LIST_MAX_CPUS. */
int cpu_list_parse(const char *text, struct cpu_list **ret, struct ql_error *err);
/* Canonical "0-3,8" form (empty string for an empty set); NULL on allocation failure. */
char *cpu_list_format(const struct cpu_list *l);
/* The same for messages: "?" when l is NULL or the format fails; NULL only without memory. */
char *cpu_list_show(const struct cpu_list *l);

int cpu_list_add(struct cpu_list *l, unsigned cpu); /* grows as needed; -ERANGE beyond max */
void cpu_list_remove(struct cpu_list *l, unsigned cpu);
bool cpu_list_has(const struct cpu_list *l, unsigned cpu);
size_t cpu_list_count(const struct cpu_list *l);
bool cpu_list_is_empty(const struct cpu_list *l);
/* Highest CPU in the set, or -1 if empty. */
int cpu_list_last(const struct cpu_list *l);
struct cpu_list *cpu_list_dup(const struct cpu_list *l);
bool cpu_list_equal(const struct cpu_list *a, const struct cpu_list *b);
bool cpu_list_is_subset(const struct cpu_list *sub, const struct cpu_list *super);
/* l &= ~other */
void cpu_list_subtract(struct cpu_list *l, const struct cpu_list *other);
/* l |= other (grows l); -ENOMEM */
int cpu_list_merge(struct cpu_list *l, const struct cpu_list *other);
/* {cpu}; NULL on allocation failure or cpu out of range. */
struct cpu_list *cpu_list_of_one(unsigned cpu);

/* Iterate: for (int c = cpu_list_next(l, -1); c >= 0; c = cpu_list_next(l, c)) */
int cpu_list_next(const struct cpu_list *l, int after);

/* Reads a kernel CPU list file such as /sys/devices/system/cpu/online. */
int cpu_list_read_file(const char *path, struct cpu_list **ret, struct ql_error *err);
