/* --status for housekeeping: which host values the running launchers hold (their journal), which
 * of them no longer have what the launcher wrote (drift: irqbalance or a hand moved an IRQ back),
 * and whether irqbalance runs. Reads only. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "error.h"

/* One launcher's records. */
struct hk_held {
	char *vm; /* escaped */
	pid_t pid;
	bool alive; /* its launcher runs; else its guardian or the next start gives them back */
	size_t values;
};

/* A value that lost what the launcher wrote. */
struct hk_drift {
	char *vm;	/* escaped */
	char *path;	/* escaped */
	int irq;	/* for an IRQ's smp_affinity_list, else -1 */
	char *irq_name; /* its handlers ("nvme0q3"), or NULL */
	char *wrote;	/* escaped */
	char *now;	/* escaped */
	char *back;	/* a CPU value: the CPUs that came back (a list), else NULL */
};

enum hk_journal_state {
	HK_JOURNAL_ABSENT, /* no journal directory: no launcher changed host values */
	HK_JOURNAL_READ,
	HK_JOURNAL_UNREADABLE, /* another user's (root's): not checked */
};

struct housekeeping_status {
	enum hk_journal_state journal;
	char *journal_dir;   /* escaped */
	char *journal_error; /* why it is unreadable, or NULL */
	struct hk_held *held;
	size_t n_held;
	struct hk_drift *drift;
	size_t n_drift;
	pid_t irqbalance;      /* its pid, 0 when not running */
	bool irqbalance_harms; /* it runs while a launcher holds IRQ affinities */
	char **problems;       /* one line per drift, and irqbalance when it harms; never NULL */
};

/* Reads the journal in journal_dir (only the records of VM `only` when not NULL) and compares
 * each housekeeping value a running launcher wrote with the kernel's: a CPU value (an IRQ's
 * CPUs, a cpumask, a kernel thread's affinity) drifted when it holds a CPU the launcher's write
 * had taken out; any other value when it matches no running launcher's write. root is where
 * /proc is read for irqbalance ("/" but for tests). Only ENOMEM is an error: a journal that
 * cannot be read is reported in the status. */
int housekeeping_status_collect(const char *journal_dir, const char *root, const char *only,
				struct housekeeping_status **ret, struct ql_error *err);
void housekeeping_status_free(struct housekeeping_status *s);

/* The number of problems (each makes --status exit 1). 0 for NULL. */
size_t housekeeping_status_problems(const struct housekeeping_status *s);

/* The text section of --status (nothing when no launcher holds values and the journal was
 * read or is absent). */
void housekeeping_status_format(const struct housekeeping_status *s, FILE *f);

/* The "housekeeping" object of --status --json (schema/status.schema.json); NULL on ENOMEM. */
json_object *housekeeping_status_json(const struct housekeeping_status *s);
