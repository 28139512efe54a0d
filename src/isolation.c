/* The isolation facade: picks one backend (cpuset v1, cgroup v2, affinity) for the run and
 * serialises every host change of the cgroup backends under one flock shared by all launchers. */
#include "isolation.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "isolation_backend.h"
#include "macro.h"

const char *isolation_kind_name(enum isolation_kind kind)
{
	switch (kind) {
	case ISOLATION_CPUSET_V1:
		return "cpuset v1";
	case ISOLATION_CGROUP_V2:
		return "cgroup v2";
	case ISOLATION_AFFINITY:
		return "affinity";
	}
	return "unknown";
}

enum isolation_kind isolation_kind(const struct isolation *iso)
{
	return iso->backend->kind;
}

/* Leaves iso->backend/state set on success; on failure iso->state is NULL and err has why. */
static int try_backend(struct isolation *iso, const struct isolation_backend *b,
		       struct ql_error *err)
{
	iso->backend = b;
	iso->state = NULL;
	int r = b->probe(iso, err);
	if (r < 0) {
		if (iso->state && b->free_state)
			b->free_state(iso->state);
		iso->state = NULL;
		iso->backend = NULL;
	}
	return r;
}

int isolation_open(const struct isolation_config *cfg, struct isolation **ret, struct ql_error *err)
{
	_cleanup_free_ struct isolation *iso = calloc(1, sizeof(*iso));
	if (!iso)
		return ql_error_set(err, ENOMEM, "out of memory");
	iso->cfg = *cfg;
	if (!iso->cfg.prefix || !*iso->cfg.prefix)
		iso->cfg.prefix = "qemu";
	if (!iso->cfg.mount_path || !*iso->cfg.mount_path)
		iso->cfg.mount_path = "/sys/fs/cgroup/cpuset";
	if (!iso->cfg.cgroup2_root || !*iso->cfg.cgroup2_root)
		iso->cfg.cgroup2_root = "/sys/fs/cgroup";
	iso->lock_fd = -1;

	int r;
	if (cfg->mode == QL_ISOLATE_FALSE) {
		r = try_backend(iso, &isolation_backend_affinity, err);
		if (r < 0)
			return r;
		*ret = TAKE_PTR(iso);
		return 0;
	}

	struct ql_error v1_err = {0}, v2_err = {0};
	r = try_backend(iso, &isolation_backend_cpuset_v1, &v1_err);
	if (r < 0)
		r = try_backend(iso, &isolation_backend_cgroup_v2, &v2_err);
	if (r == 0) {
		ql_error_clear(&v1_err);
		ql_error_clear(&v2_err);
		ql_log(cfg->log, QL_LOG_INFO, "CPU isolation backend: %s",
		       isolation_kind_name(iso->backend->kind));
		*ret = TAKE_PTR(iso);
		return 0;
	}

	_cleanup_free_ char *reason = NULL;
	const char *v2_msg = v2_err.msg ? v2_err.msg : "not usable";
	/* the v2 backend may already name itself */
	bool v2_named = strncmp(v2_msg, "cgroup v2", 9) == 0;
	if (asprintf(&reason, "cpuset v1: %s; %s%s", v1_err.msg ? v1_err.msg : "not usable",
		     v2_named ? "" : "cgroup v2: ", v2_msg) < 0)
		reason = NULL;
	ql_error_clear(&v1_err);
	ql_error_clear(&v2_err);
	if (cfg->mode == QL_ISOLATE_TRUE)
		return ql_error_set(err, ENOTSUP,
				    "isolate_cpus is true but no cpuset backend is usable (%s)",
				    reason ? reason : "out of memory");

	r = try_backend(iso, &isolation_backend_affinity, err);
	if (r < 0)
		return r;
	ql_log(cfg->log, QL_LOG_WARNING, "CPUs are pinned but not isolated: %s",
	       reason ? reason : "no cpuset backend is usable");
	*ret = TAKE_PTR(iso);
	return 0;
}

int isolation_usable_cpus(struct isolation *iso, struct cpu_list **ret, struct ql_error *err)
{
	return iso->backend->usable_cpus(iso, ret, err);
}

char *isolation_describe(struct isolation *iso, const struct isolation_plan *plan)
{
	return iso->backend->describe(iso, plan);
}

int isolation_lock(struct isolation *iso, const char *dir, struct ql_error *err)
{
	if (iso->lock_fd >= 0)
		return 0;
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ql_error_set_errno(err, errno, "opening `%s` to lock it", dir);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR)
			return ql_error_set_errno(err, errno, "locking `%s`", dir);
	}
	iso->lock_fd = TAKE_FD(fd);
	return 0;
}

void isolation_unlock(struct isolation *iso)
{
	if (iso->lock_fd < 0)
		return;
	close(iso->lock_fd); /* closing drops the flock */
	iso->lock_fd = -1;
}

/* Which directory every launcher sharing our cgroup tree locks. For cpuset v1 it is the parent
 * of the mount path: it exists before we mount there, and it is the same for everyone who uses
 * that mount path, mounted or not. */
static int lock_for_backend(struct isolation *iso, struct ql_error *err)
{
	switch (iso->backend->kind) {
	case ISOLATION_CPUSET_V1: {
		_cleanup_free_ char *copy = strdup(iso->cfg.mount_path);
		if (!copy)
			return ql_error_set(err, ENOMEM, "out of memory");
		return isolation_lock(iso, dirname(copy), err);
	}
	case ISOLATION_CGROUP_V2:
		return isolation_lock(iso, iso->cfg.cgroup2_root, err);
	case ISOLATION_AFFINITY:
		break;
	}
	return 0;
}

int isolation_apply(struct isolation *iso, const struct isolation_plan *plan, struct ql_error *err)
{
	if (iso->applied)
		return ql_error_set(err, EALREADY, "CPU isolation is already applied");
	int r = lock_for_backend(iso, err);
	if (r < 0)
		return r;
	r = iso->backend->apply(iso, plan, err);
	isolation_unlock(iso);
	if (r < 0)
		return r;
	iso->applied = true;
	return 0;
}

int isolation_rescan(struct isolation *iso, struct ql_error *err)
{
	if (!iso->applied || !iso->backend->rescan)
		return 0;
	int r = lock_for_backend(iso, err);
	if (r < 0)
		return r;
	r = iso->backend->rescan(iso, err);
	isolation_unlock(iso);
	return r;
}

int isolation_release(struct isolation *iso, struct ql_error *err)
{
	if (!iso->applied)
		return 0;
	int r = lock_for_backend(iso, err);
	if (r < 0)
		return r;
	r = iso->backend->release(iso, err);
	isolation_unlock(iso);
	if (r < 0)
		return r;
	iso->applied = false;
	return 0;
}

void isolation_free(struct isolation *iso)
{
	if (!iso)
		return;
	if (iso->applied)
		(void)isolation_release(iso, NULL);
	if (iso->backend && iso->backend->free_state && iso->state)
		iso->backend->free_state(iso->state);
	isolation_unlock(iso);
	free(iso);
}
