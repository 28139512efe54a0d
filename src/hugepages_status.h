/* --status for memory: the hugepages a running qemu has mapped (per page size and NUMA node, from
 * /proc/PID/numa_maps or smaps) and the reservation its launcher made (from the journal's
 * nr_hugepages records). Reads only. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

/* One (page size, node) row; node -1: the whole host's pool, or a node the kernel did not say. */
struct hugepages_count {
	unsigned long page_kb;
	int node;
	long pages;
};

/* One journal record raising a pool for this VM. */
struct hugepages_reservation {
	unsigned long page_kb;
	int node;   /* -1: the whole host's pool */
	long pages; /* what the record gives back */
	char *path; /* the nr_hugepages file (escaped) */
	pid_t launcher;
	bool alive; /* false: its launcher (and guardian) died; the next start gives it back */
};

struct hugepages_use {
	struct hugepages_count *used; /* mapped by qemu */
	size_t n_used;
	char *used_note; /* why the use is unknown (numa_maps unreadable), or NULL */
	struct hugepages_reservation *resv;
	size_t n_resv;
	char *resv_note; /* why reservations are unknown (the journal unreadable), or NULL */
};

/* The hugepages of VM `name` whose qemu is qemu_pid (0: not running; then only reservations of
 * launchers that died are looked for). journal_dir: the launcher's journal (config.h).
 * *ret is NULL when the VM neither uses nor reserved any hugepage and nothing is unknown.
 * Failures to read become notes; only -ENOMEM is returned. */
int hugepages_status_collect(const char *journal_dir, const char *name, pid_t qemu_pid,
			     struct hugepages_use **ret);
void hugepages_use_free(struct hugepages_use *u);

/* The parsers behind collect, for tests: add /proc/PID/numa_maps' hugetlb pages per node (or smaps'
 * per size, node -1) to u->used; -ENOMEM only. */
int hugepages_use_read_numa_maps(struct hugepages_use *u, FILE *f);
int hugepages_use_read_smaps(struct hugepages_use *u, FILE *f);
/* The page size and node (-1: the whole host's) of an nr_hugepages path; false for another file. */
bool hugepages_pool_of_path(const char *path, unsigned long *ret_kb, int *ret_node);

/* Text: one line per page size ("  hugepages 2048 kB: ..."); nothing for NULL. */
void hugepages_status_format(const struct hugepages_use *u, FILE *f);

/* JSON: {"pages": [...], "reservations": [...], "note": ...} (schema/status.schema.json); an
 * empty object for NULL. NULL on ENOMEM. */
json_object *hugepages_status_json(const struct hugepages_use *u);
