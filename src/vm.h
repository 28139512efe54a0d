/* One VM's life: the plan built once from the definition (command line, private QMP channel,
 * paused or not, pinning), which --dry-run and --check show and a run carries out: start qemu,
 * pin before the guest runs, supervise, unwind every host change, report how it ended. */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "definition.h"
#include "error.h"
#include "log.h"

struct vm_options {
	const char *name;
	const struct definition *def;
	const struct config_paths *paths;
	const struct ql_logger *log;
	bool dry_run; /* the plan is only shown: host devices a run would need are warned about */
};

struct vm_plan;

/* Builds the command line and, when the definition pins or schedules, checks its CPUs against the
 * host and chooses the isolation backend. Changes nothing on the host. o must outlive the plan. */
int vm_plan_new(const struct vm_options *o, struct vm_plan **ret, struct ql_error *err);

/* --dry-run: the pasteable qemu command line on the first line, then `#` comment lines with the
 * launcher's private options and the pinning plan. NULL on ENOMEM. */
char *vm_plan_describe(const struct vm_plan *p);

/* --check: what would refuse a start of this plan that the host shows already (hugepage pools
 * short), as the start would say it; *ret NULL when nothing is foreseen. -ENOMEM. */
int vm_plan_refusal(const struct vm_plan *p, char **ret);

void vm_plan_free(struct vm_plan *p);
static inline void vm_plan_freep(struct vm_plan **p)
{
	vm_plan_free(*p);
}
#define _cleanup_vm_plan_ _cleanup_(vm_plan_freep)

/* How a run ended: qemu's own end, or the launcher's failure (and which kind). */
enum vm_end {
	VM_END_QEMU,	       /* qemu ran and was reaped: wait_status is its */
	VM_END_NOT_FOUND,      /* the qemu binary does not exist */
	VM_END_NOT_EXECUTABLE, /* it exists but could not be executed */
	VM_END_LAUNCHER,       /* the launcher failed; every host change was undone */
};
struct vm_outcome {
	enum vm_end end;
	int wait_status;
};

/* Runs the VM to its end. 0 when qemu ran and ended (outcome.end VM_END_QEMU, also when qemu
 * itself failed); -errno with err set and outcome.end saying which failure otherwise. */
int vm_run(struct vm_plan *p, struct vm_outcome *ret, struct ql_error *err);
