/* Host CPU isolation: one lifecycle API over three backends (crun's cgroup split).
 *   cpuset v1  - the specification's design, <mount>/<prefix>/{pool,<vm>/cpuN}
 *   cgroup v2  - <root>/<prefix>/<vm>/{emulator,vcpuN}, threaded, optional partitions
 *   affinity   - sched_setaffinity only; pins but does not keep other tasks away
 * All host changes of the cgroup backends happen under one flock so concurrent launchers agree. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cpulist.h"
#include "definition.h"
#include "error.h"
#include "log.h"

struct isolation_config {
	const char *vm_name;	  /* the definition's NAME; names the VM's sets */
	const char *mount_path;	  /* cpuset v1 mount path or delegated dir
				     (QEMU_LAUNCHER_CPUSET_MOUNT_PATH) */
	const char *cgroup2_root; /* cgroup2 mount (default /sys/fs/cgroup) or a delegated dir */
	const char *prefix;	  /* QEMU_LAUNCHER_CPUSET_PREFIX, default "qemu" */
	enum ql_isolate mode;	  /* isolate_cpus */
	bool may_mount;		  /* false in setuid mode unless the path is under /sys/fs/cgroup */
	const struct ql_logger *log;
	const char *test_stop_at; /* tests: SIGSTOP here ("pool-emptied"; "" or NULL: never) */
};

/* One vCPU thread and the host CPU it must run on. */
struct vcpu_placement {
	int cpu_index;
	pid_t tid;
	unsigned host_cpu;
};

struct isolation_plan {
	pid_t qemu_pid;
	const struct vcpu_placement *vcpus;
	size_t n_vcpus;
	const struct cpu_list
	    *emulator_cpus; /* NULL: the backend's default (pool / leftover CPUs) */
	/* Threads the caller pins itself within the emulator CPUs (I/O threads): they live with
	 * qemu's other threads, but a backend never changes their affinity. */
	const pid_t *keep_tids;
	size_t n_keep;
};

/* The host CPUs of plan's vCPUs (each once); -ERANGE for a CPU past the bitmap's bound. */
int isolation_plan_host_cpus(const struct isolation_plan *plan, struct cpu_list **ret,
			     struct ql_error *err);

struct isolation;

/* Chooses the backend (printed with -v) without changing the host; fails when `mode` is
 * QL_ISOLATE_TRUE and no cpuset backend is usable. */
int isolation_open(const struct isolation_config *cfg, struct isolation **ret,
		   struct ql_error *err);
/* The cgroup backend named `name` ("cpuset v1", "cgroup v2"), whatever cfg->mode would choose:
 * for a killed run's undo, which must work where the run did (reclaim.h). */
int isolation_open_backend(const struct isolation_config *cfg, const char *name,
			   struct isolation **ret, struct ql_error *err);

/* "cpuset v1", "cgroup v2", "affinity". */
const char *isolation_name(const struct isolation *iso);
/* Does the backend keep other tasks off the vCPUs' CPUs (cpusets), or only pin (affinity)? */
bool isolation_isolates(const struct isolation *iso);

/* The host CPUs this launcher may place threads on (cpuset of the mount path / cgroup root /
 * its own affinity), for the topology checks. */
int isolation_usable_cpus(struct isolation *iso, struct cpu_list **ret, struct ql_error *err);

/* Human-readable plan for --dry-run: backend, paths of the sets that would be created. */
char *isolation_describe(struct isolation *iso, const struct isolation_plan *plan);

/* While qemu initialises (it exists, its vCPU threads are not known yet): under the lock, makes
 * every host change that does not need the vCPU thread ids (the plan's tids are ignored), reads
 * each back, and checks conflicts, so that isolation_apply is left with the vCPU moves. On
 * failure everything it changed is undone; on success isolation_release undoes it. A no-op for
 * backends that have nothing to prepare. */
int isolation_prepare(struct isolation *iso, const struct isolation_plan *plan,
		      struct ql_error *err);

/* Between isolation_prepare and isolation_apply, called every ISOLATION_KEEP_WARM_MS while
 * waiting for qemu: spares apply's first thread move a wait for an RCU grace period. Changes
 * nothing on the host; a no-op for backends without it. */
#define ISOLATION_KEEP_WARM_MS 3
void isolation_keep_warm(struct isolation *iso);
/* Would isolation_keep_warm do anything now (prepared, and the backend has keep_warm)? Else
 * nobody need wake up for it. */
bool isolation_keeps_warm(const struct isolation *iso);
/* Will it keep warm once prepared (a backend with keep_warm: the cpuset ones)? */
bool isolation_will_keep_warm(const struct isolation *iso);

/* Does another launcher hold the cross-launcher lock right now? (false for a backend without
 * one, or when it cannot be told). For work that may as well wait for a later moment than for
 * the lock: pinning_apply_early. */
bool isolation_lock_busy(struct isolation *iso);

/* Places every thread of the plan (after isolation_prepare with the same host CPUs, or alone);
 * reads each placement back from the kernel. A host CPU owned
 * by another running VM fails with -EBUSY and that VM's name in err. On failure everything this
 * call changed is undone before it returns. */
int isolation_apply(struct isolation *iso, const struct isolation_plan *plan, struct ql_error *err);

/* Moves threads qemu created since apply (not vCPUs) out of the vCPU sets. */
int isolation_rescan(struct isolation *iso, struct ql_error *err);

/* For a run that ended without its release (a SIGKILLed launcher, once its qemu is gone): under
 * the lock, removes every set without tasks and gives their CPUs back, from the kernel's state
 * alone. A no-op for backends that keep nothing. */
int isolation_reclaim(struct isolation *iso, struct ql_error *err);

/* Undoes every host change of prepare and apply (idempotent; also right after qemu died). */
int isolation_release(struct isolation *iso, struct ql_error *err);
/* Another process (the guardian) undoes this run's changes: forget them. Accepts NULL. */
void isolation_hand_over(struct isolation *iso);
/* qemu has been reaped: nothing that follows acts on its pid or thread ids. Accepts NULL. */
void isolation_qemu_reaped(struct isolation *iso);

/* A VM a cgroup backend placed, as --status finds it in the kernel. */
struct isolation_vcpu_member {
	pid_t tid;
	int host_cpu; /* the N of the vCPU set the thread is in */
};
struct isolation_vm {
	char *name;
	const char *backend;	/* the backend's name (static) */
	const char *set_prefix; /* its vCPU sets are named <set_prefix>N (static) */
	char *dir;		/* the VM's cgroup directory */
	pid_t qemu_pid;		/* 0 when no thread is left in its sets */
	struct isolation_vcpu_member *members;
	size_t n_members;
};
struct isolation_vm_list {
	struct isolation_vm *vms;
	size_t n;
	/* Tasks a backend keeps confined although no VM of it runs (a launcher and its guardian
	 * were both killed): where, how many, on which CPUs. NULL when there are none. */
	char *confined_set;
	size_t confined_tasks;
	char *confined_cpus;
};
void isolation_vm_list_done(struct isolation_vm_list *l);

/* Every VM the cgroup backends hold under cfg's paths (cfg->vm_name is not used); `only` limits
 * it to one name. Reads only. */
int isolation_inspect(const struct isolation_config *cfg, const char *only,
		      struct isolation_vm_list *ret, struct ql_error *err);

/* Releases if still applied (best effort), then frees. */
void isolation_free(struct isolation *iso);
static inline void isolation_freep(struct isolation **iso)
{
	isolation_free(*iso);
}
#define _cleanup_isolation_ _cleanup_(isolation_freep)
