/* vCPU pinning and scheduling of one VM: maps the definition's vcpu_pinning onto the threads qemu
 * reports, checks the host topology, drives the isolation backend and the scheduler, and reads
 * every placement back before the guest may run. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "definition.h"
#include "error.h"
#include "isolation.h"
#include "log.h"
#include "qmp.h"

struct pinning;

/* Before qemu exists: validates the definition against the host (CPUs exist, online, usable;
 * a warning for shared CPUs; the SMT sibling warnings are --check's, topology.h) and opens the
 * backend. Nothing is changed. */
int pinning_prepare(const struct definition *d, const struct isolation_config *cfg,
		    struct pinning **ret, struct ql_error *err);

/* For --dry-run / --check: the plan as text (backend, vCPU -> host CPU, sets to create). */
char *pinning_describe(struct pinning *p);

/* Right after qemu was started, while it initialises: every host change of the isolation that
 * does not need the vCPU thread ids (isolation_prepare), so that pinning_apply is left with the
 * vCPU moves. On failure nothing stays changed; pinning_release undoes it otherwise. */
int pinning_prepare_host(struct pinning *p, pid_t qemu_pid, struct ql_error *err);
/* While waiting for qemu's answers after pinning_prepare_host (isolation_keep_warm), when
 * pinning_keeps_warm says it does anything. */
void pinning_keep_warm(void *pinning);
bool pinning_keeps_warm(const struct pinning *p);

/* With qemu in prelaunch: maps cpus (from query-cpus-fast) to host CPUs, checks each TID belongs
 * to qemu_pid, places the threads, sets scheduling, reads everything back. A pinning entry for a
 * vCPU qemu does not have is an error with the entry's FILE:LINE:COL. On failure nothing stays
 * changed. */
int pinning_apply(struct pinning *p, pid_t qemu_pid, const struct qmp_cpu *cpus, size_t n_cpus,
		  const struct qmp_iothread *io, size_t n_io, struct ql_error *err);

/* While qemu builds its machine, before it can answer query-cpus-fast: once qemu's thread names
 * (-name debug-threads=on: "CPU 3/TCG"; without it the caller need not ask, see
 * cmdline_names_threads) show a thread for each of n_vcpus vCPUs, places them as
 * pinning_apply would. pinning_confirm_by_names then confirms them, or pinning_apply with
 * qemu's answer checks that the answer lists those very threads (and places the answer's if
 * not). 1 when placed, 0 when not yet (call it
 * again later), -ECANCELED (err untouched) when it will not place early (a topology or I/O
 * thread pin, no backend, names it cannot trust, another launcher holding the lock), another
 * -errno with err when the placement failed (undone, prepare included: pinning_apply does it
 * all then). */
int pinning_apply_early(struct pinning *p, pid_t qemu_pid, size_t n_vcpus, struct ql_error *err);
/* Whether pinning_apply_early can place at all (pins by index, no I/O thread pin, a backend
 * that keeps warm, on whose tick the names are looked for): known before the spawn. */
bool pinning_may_place_early(const struct pinning *p);
/* Are the vCPU threads placed, by pinning_apply_early, and not yet checked against qemu's
 * answer (pinning_apply, pinning_check_answer)? */
bool pinning_placed_early(const struct pinning *p);

/* Once qemu has built its machine (it answers its monitor), for threads pinning_apply_early
 * placed: 1 when qemu still has no other thread named as a vCPU and every placed thread is
 * still the one held, so the guest may start without waiting for query-cpus-fast (qemu names
 * each vCPU thread itself, by its cpu-index, as it creates it, before its main loop runs);
 * 0 when qemu's answer must decide (a vCPU thread the placement did not see: pinning_apply with
 * it places again); -errno with err when a placed thread ended (the placement is undone). */
int pinning_confirm_by_names(struct pinning *p, pid_t qemu_pid, struct ql_error *err);
/* After cont, for a placement pinning_confirm_by_names let the guest start on: qemu's answer
 * (query-cpus-fast) must list those very threads, vCPU for vCPU. -EPROTO with err when not. */
int pinning_check_answer(struct pinning *p, const struct qmp_cpu *cpus, size_t n_cpus,
			 struct ql_error *err);

/* Does the definition pin I/O threads (so query-iothreads is needed before pinning_apply)? */
bool pinning_wants_iothreads(const struct pinning *p);

/* After cont and from time to time: moves new non-vCPU threads out of vCPU sets. */
int pinning_rescan(struct pinning *p, struct ql_error *err);

/* Does this pinning keep sets on the host that a killed launcher would leave behind? */
bool pinning_leaves_sets(const struct pinning *p);
/* The isolation backend's name (isolation_name); NULL without one. */
const char *pinning_backend(const struct pinning *p);

/* The guest runs (or stays paused on purpose): the threads pinning_apply held are let go. */
void pinning_guest_started(struct pinning *p);

/* Undo all host changes (idempotent). */
int pinning_release(struct pinning *p, struct ql_error *err);
/* After a failed release (qemu gone): the guardian undoes the changes, so this pinning forgets
 * them and its free does not wait for the lock once more. */
void pinning_hand_over(struct pinning *p);
/* qemu has been reaped: its pid and thread ids may be reused by anyone, so the release that
 * follows restores no thread's scheduling or affinity (they ended with qemu). Accepts NULL. */
void pinning_qemu_reaped(struct pinning *p);

void pinning_free(struct pinning *p);
static inline void pinning_freep(struct pinning **p)
{
	pinning_free(*p);
}
#define _cleanup_pinning_ _cleanup_(pinning_freep)
