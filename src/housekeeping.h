/* Housekeeping while a VM runs: the host's device interrupts, unbound workqueues, unbound kernel
 * threads and vmstat timer kept off the vCPU CPUs. A pure plan (what to write where, read from a
 * root tree) and its apply through the crash-safe journal, which gives every value back when the VM
 * ends. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cpulist.h"
#include "definition.h"
#include "error.h"
#include "journal.h"
#include "log.h"

/* One planned write. */
struct hk_write {
	char *path;
	char *old;	 /* the value read now (trailing newline dropped) */
	char *new_value; /* what the launcher writes */
	int irq;	 /* the IRQ number for an smp_affinity_list, else -1 */
	char *irq_name;	 /* its handlers' names ("nvme0q3"; /proc/irq/N/NAME/), else NULL */
	char *kthread;	 /* a kernel thread's name (path is JOURNAL_TASK_PREFIX...), else NULL */
};

struct housekeeping_plan {
	struct hk_write *v;
	size_t n;
	char **notes; /* things the user should know (irqbalance, absent knobs); NULL-terminated */
};
void housekeeping_plan_done(struct housekeeping_plan *p);

/* What h asks for, given the host's values under root ("/" or a test tree) and the CPUs the
 * vCPUs are pinned to. Every value is taken from what is there now, so with several VMs each one
 * removes its own CPUs from what the others left: the CPUs kept clear are the union of the
 * running VMs'. Reads only. -EINVAL when the vCPUs take every online CPU. */
int housekeeping_plan_compute(const char *root, const struct ql_housekeeping *h,
			      const struct cpu_list *vcpus, struct housekeeping_plan *ret,
			      struct ql_error *err);

/* --dry-run: one "housekeeping: PATH: OLD -> NEW" line per write, then the notes. NULL on
 * ENOMEM. */
char *housekeeping_plan_describe(const struct housekeeping_plan *p);

/* Writes the plan through the journal (each original recorded first). An IRQ the kernel refuses
 * to move (EIO: managed) is reported with a warning, not fatal; any other failure is, and what
 * was written stays in the journal for the caller's undo. */
int housekeeping_apply(const struct housekeeping_plan *p, struct journal *j,
		       const struct ql_logger *log, struct ql_error *err);

/* Plans from the host's values now and applies, under the journal's housekeeping lock that
 * launchers starting at the same time share (journal_lock_housekeeping). */
int housekeeping_start(const char *root, const struct ql_housekeeping *h,
		       const struct cpu_list *vcpus, struct journal *j, const struct ql_logger *log,
		       struct ql_error *err);

/* The pid of a running irqbalance (a process whose comm is "irqbalance") under root/proc; 0 when
 * none, -ENOMEM. It moves IRQs back onto every CPU it sees idle, the vCPU CPUs included. */
pid_t housekeeping_irqbalance_pid(const char *root);

/* The names of an IRQ's handlers: the kernel makes a directory /proc/irq/N/NAME for each
 * ("nvme0q3", "virtio0-input.0"); escaped (ql_escape) and comma-separated, NULL when it has
 * none (or on ENOMEM: the name only decorates messages). */
char *housekeeping_irq_names(const char *irq_dir);

/* From a /proc/PID/stat line: the command name, the flags (field 9) and the start time (field
 * 22). Exposed for the unit tests. */
int hk_parse_stat(const char *stat, char **ret_comm, unsigned long *ret_flags,
		  unsigned long long *ret_start);

/* Hex CPU masks as /proc/irq/default_smp_affinity and the workqueue cpumasks write them
 * ("ff,ffffffff"). Exposed for the unit tests. */
int hk_mask_parse(const char *text, struct cpu_list **ret);
char *hk_mask_format(const struct cpu_list *l);
