/* The contract between the isolation facade (isolation.c) and its backends, private to them. A
 * backend is one file and one entry in the facade's table; it never calls back into the facade:
 * the facade alone locks, prefixes messages with the backend's name and tracks what is applied. */
#pragma once

#include "isolation.h"

struct isolation_backend {
	const char *name; /* "cpuset v1": printed with -v and before every message of its own */
	bool isolates;	  /* keeps other tasks off the vCPUs' CPUs (affinity does not) */
	/* Is this backend usable for cfg? 0 yes (sets *ret_state), -ENOTSUP/-ENOENT with the
	 * reason in err otherwise. Never changes the host (mounting happens in apply). */
	int (*probe)(const struct isolation_config *cfg, void **ret_state, struct ql_error *err);
	/* The directory all launchers sharing this backend's tree flock (allocated), or NULL with
	 * 0 when the backend changes nothing shared. */
	int (*lock_dir)(void *state, char **ret, struct ql_error *err);
	int (*usable_cpus)(void *state, struct cpu_list **ret, struct ql_error *err);
	char *(*describe)(void *state, const struct isolation_plan *plan);
	/* Optional. Called with the lock held while qemu initialises, with the plan's thread ids
	 * still 0: every host change that does not need them (sets, the host's tasks, qemu
	 * itself), so that apply is left with the vCPU threads. Without it apply does all. On
	 * failure the facade calls release (still locked). */
	int (*prepare)(void *state, const struct isolation_plan *plan, struct ql_error *err);
	/* Optional. Between prepare and apply, every few ms while the launcher waits for qemu's
	 * answers, without the lock: must change nothing on the host. */
	void (*keep_warm)(void *state);
	/* Called with the lock held, after prepare when the backend has one (same host CPUs,
	 * thread ids filled in). On failure the facade calls release (still locked), so apply
	 * may stop at the first error. */
	int (*apply)(void *state, const struct isolation_plan *plan, struct ql_error *err);
	int (*rescan)(void *state, struct ql_error *err);
	/* Optional. qemu has been reaped: its pid and thread ids may be anyone's now, and nothing
	 * may be done to them (release included). */
	void (*qemu_reaped)(void *state);
	/* Called with the lock held. Idempotent. */
	int (*release)(void *state, struct ql_error *err);
	/* With the lock held, from the kernel's state alone (the caller's run may have died at any
	 * point): removes the sets of VMs without tasks and gives their CPUs back to the host. */
	int (*reclaim)(void *state, struct ql_error *err);
	/* --status: the VMs this backend's layout holds under cfg's paths (NULL: it keeps none). */
	int (*inspect)(const struct isolation_config *cfg, const char *only,
		       struct isolation_vm_list *acc, struct ql_error *err);
	void (*free_state)(void *state);
};

extern const struct isolation_backend isolation_backend_cpuset_v1;
extern const struct isolation_backend isolation_backend_cgroup_v2;
extern const struct isolation_backend isolation_backend_affinity;
