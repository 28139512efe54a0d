/* The contract between the isolation facade (isolation.c) and its backends. Private to them. */
#pragma once

#include "isolation.h"

struct isolation;

struct isolation_backend {
	enum isolation_kind kind;
	/* Is this backend usable for iso->cfg? 0 yes (may set iso->state), -ENOTSUP/-ENOENT with the
	 * reason in err otherwise. Must not change the host (mounting happens in apply). */
	int (*probe)(struct isolation *iso, struct ql_error *err);
	int (*usable_cpus)(struct isolation *iso, struct cpu_list **ret, struct ql_error *err);
	char *(*describe)(struct isolation *iso, const struct isolation_plan *plan);
	/* Under the facade's lock. On failure undoes its own changes. */
	int (*apply)(struct isolation *iso, const struct isolation_plan *plan, struct ql_error *err);
	int (*rescan)(struct isolation *iso, struct ql_error *err);
	/* Under the facade's lock. Idempotent. */
	int (*release)(struct isolation *iso, struct ql_error *err);
	void (*free_state)(void *state);
};

struct isolation {
	const struct isolation_backend *backend;
	struct isolation_config cfg; /* strings owned by the caller, outlive iso */
	void *state;                 /* backend's */
	bool applied;
	int lock_fd;                 /* -1 unless held */
};

extern const struct isolation_backend isolation_backend_cpuset_v1;
extern const struct isolation_backend isolation_backend_cgroup_v2;
extern const struct isolation_backend isolation_backend_affinity;

/* Takes/drops the cross-launcher lock (flock on the given directory, e.g. the v1 mount path or
 * the cgroup2 root; those always exist and need no extra files in cgroupfs). */
int isolation_lock(struct isolation *iso, const char *dir, struct ql_error *err);
void isolation_unlock(struct isolation *iso);
