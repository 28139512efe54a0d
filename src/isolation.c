/* The isolation facade: picks one backend (cpuset v1, cgroup v2, affinity) for the run, holds the
 * cross-launcher lock around every host change and names the backend in its messages. */
#include "isolation.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "isolation_backend.h"
#include "lockwait.h"
#include "macro.h"
#include "privileges.h"

/* In the order `auto` tries them; affinity last, it always works. */
static const struct isolation_backend *const cpuset_backends[] = {
    &isolation_backend_cpuset_v1,
    &isolation_backend_cgroup_v2,
};

/* How long a launcher waits for another one's lock before it gives up, naming the holder. Every
 * locked section is short (milliseconds), so a holder that keeps it this long is stuck or
 * stopped; waiting for it forever would stall every launcher on the host. */
#define LOCK_WAIT_MS 10000

struct isolation {
	const struct isolation_backend *backend;
	struct isolation_config cfg; /* strings owned by the caller, outlive iso */
	void *state;		     /* the backend's */
	bool prepared;		     /* prepare changed the host; apply has not run yet */
	bool applied;
	int lock_fd; /* -1 unless held */
};

const char *isolation_name(const struct isolation *iso)
{
	return iso->backend->name;
}

bool isolation_isolates(const struct isolation *iso)
{
	return iso->backend->isolates;
}

static int try_backend(struct isolation *iso, const struct isolation_backend *b,
		       struct ql_error *err)
{
	int r = b->probe(&iso->cfg, &iso->state, err);
	if (r < 0)
		return r;
	iso->backend = b;
	return 0;
}

/* "cpuset v1: why; cgroup v2: why" for the backends that could not be used. */
static char *refusals_text(struct ql_error *why, size_t n)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%s: %s", i ? "; " : "", cpuset_backends[i]->name,
			why[i].msg ? why[i].msg : "not usable");
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* An isolation with cfg's defaults filled in and no backend yet; NULL when out of memory. */
static struct isolation *isolation_new(const struct isolation_config *cfg)
{
	struct isolation *iso = calloc(1, sizeof(*iso));
	if (!iso)
		return NULL;
	iso->cfg = *cfg;
	if (!iso->cfg.prefix || !*iso->cfg.prefix)
		iso->cfg.prefix = "qemu";
	if (!iso->cfg.mount_path || !*iso->cfg.mount_path)
		iso->cfg.mount_path = "/sys/fs/cgroup/cpuset";
	if (!iso->cfg.cgroup2_root || !*iso->cfg.cgroup2_root)
		iso->cfg.cgroup2_root = "/sys/fs/cgroup";
	iso->lock_fd = -1;
	return iso;
}

int isolation_open_backend(const struct isolation_config *cfg, const char *name,
			   struct isolation **ret, struct ql_error *err)
{
	_cleanup_free_ struct isolation *iso = isolation_new(cfg);
	if (!iso)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < ELEMENTSOF(cpuset_backends); i++) {
		if (!streq(cpuset_backends[i]->name, name))
			continue;
		int r = try_backend(iso, cpuset_backends[i], err);
		if (r < 0)
			return r;
		*ret = TAKE_PTR(iso);
		return 0;
	}
	return ql_error_set(err, EINVAL, "no cgroup backend is named `%s`", name);
}

int isolation_open(const struct isolation_config *cfg, struct isolation **ret, struct ql_error *err)
{
	_cleanup_free_ struct isolation *iso = isolation_new(cfg);
	if (!iso)
		return ql_error_set(err, ENOMEM, "out of memory");

	if (cfg->mode == QL_ISOLATE_FALSE) {
		int r = try_backend(iso, &isolation_backend_affinity, err);
		if (r < 0)
			return r;
		ql_log(cfg->log, QL_LOG_INFO, "CPU isolation backend: %s", iso->backend->name);
		*ret = TAKE_PTR(iso);
		return 0;
	}

	struct ql_error why[ELEMENTSOF(cpuset_backends)] = {0};
	size_t tried = 0;
	for (; tried < ELEMENTSOF(cpuset_backends); tried++)
		if (try_backend(iso, cpuset_backends[tried], &why[tried]) == 0)
			break;
	if (iso->backend) {
		for (size_t i = 0; i < tried; i++)
			ql_error_clear(&why[i]);
		ql_log(cfg->log, QL_LOG_INFO, "CPU isolation backend: %s", iso->backend->name);
		*ret = TAKE_PTR(iso);
		return 0;
	}

	_cleanup_free_ char *reason = refusals_text(why, tried);
	for (size_t i = 0; i < tried; i++)
		ql_error_clear(&why[i]);
	if (cfg->mode == QL_ISOLATE_TRUE)
		return ql_error_set(err, ENOTSUP,
				    "isolate_cpus is true but no cpuset backend is usable (%s)",
				    reason ? reason : "out of memory");
	int r = try_backend(iso, &isolation_backend_affinity, err);
	if (r < 0)
		return r;
	ql_log(cfg->log, QL_LOG_WARNING, "CPUs are pinned but not isolated: %s",
	       reason ? reason : "no cpuset backend is usable");
	ql_log(cfg->log, QL_LOG_INFO, "CPU isolation backend: %s", iso->backend->name);
	*ret = TAKE_PTR(iso);
	return 0;
}

int isolation_usable_cpus(struct isolation *iso, struct cpu_list **ret, struct ql_error *err)
{
	int r = iso->backend->usable_cpus(iso->state, ret, err);
	if (r < 0)
		ql_error_prefix(err, "%s: ", iso->backend->name);
	return r;
}

char *isolation_describe(struct isolation *iso, const struct isolation_plan *plan)
{
	return iso->backend->describe(iso->state, plan);
}

/* The backend's lock directory, opened into *ret_fd (-1 when the backend has none) and named in
 * *ret_dir. */
static int open_lock_dir(struct isolation *iso, int *ret_fd, char **ret_dir, struct ql_error *err)
{
	*ret_fd = -1;
	*ret_dir = NULL;
	if (!iso->backend->lock_dir)
		return 0;
	int r = iso->backend->lock_dir(iso->state, ret_dir, err);
	if (r < 0 || !*ret_dir)
		return r;
	*ret_fd = open(*ret_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*ret_fd < 0)
		return ql_error_set_errno(err, errno, "opening `%s` to lock it", *ret_dir);
	return 0;
}

/* Takes the cross-launcher lock of the backend's tree (none for affinity). */
static int lock(struct isolation *iso, struct ql_error *err)
{
	if (iso->lock_fd >= 0)
		return 0;
	_cleanup_free_ char *dir = NULL;
	_cleanup_close_ int fd = -1;
	int r = open_lock_dir(iso, &fd, &dir, err);
	if (r < 0 || fd < 0)
		return r;
	privileges_shield();
	/* with host changes made, the error does not say none was */
	r = lock_wait(fd, LOCK_WAIT_MS, "the lock on", dir,
		      iso->applied || iso->prepared ? "" : "; no host change was made", err);
	if (r < 0) {
		privileges_unshield();
		return r;
	}
	iso->lock_fd = TAKE_FD(fd);
	return 0;
}

bool isolation_lock_busy(struct isolation *iso)
{
	if (iso->lock_fd >= 0)
		return false;
	_cleanup_free_ char *dir = NULL;
	_cleanup_close_ int fd = -1;
	if (open_lock_dir(iso, &fd, &dir, NULL) < 0 || fd < 0)
		return false;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK;
	return false; /* taken for a moment: closing drops it */
}

static void unlock(struct isolation *iso)
{
	if (iso->lock_fd < 0)
		return;	       /* not held: nor shielded for it */
	closep(&iso->lock_fd); /* closing drops the flock */
	iso->lock_fd = -1;
	privileges_unshield();
}

/* One backend step under the lock, its errors named after the backend. */
static int locked(struct isolation *iso, int (*step)(void *, struct ql_error *),
		  struct ql_error *err)
{
	int r = lock(iso, err);
	if (r >= 0) {
		r = step(iso->state, err);
		unlock(iso);
	}
	if (r < 0)
		ql_error_prefix(err, "%s: ", iso->backend->name);
	return r;
}

/* Undo what a failed prepare or apply did, still under the lock (a release works from what the
 * kernel shows and only touches this run's own sets). An undo that fails leaves the run's changes
 * marked as prepared: the release at the end tries again and, failing, hands them to the
 * guardian. */
static void undo_locked(struct isolation *iso, struct ql_error *err)
{
	struct ql_error undo = {0};
	int r = iso->backend->release(iso->state, &undo);
	if (r < 0)
		ql_log(iso->cfg.log, QL_LOG_WARNING, "%s: undoing a failed placement: %s",
		       iso->backend->name, undo.msg ? undo.msg : "failed");
	ql_error_clear(&undo);
	ql_error_prefix(err, "%s: ", iso->backend->name);
	iso->prepared = r < 0;
}

int isolation_prepare(struct isolation *iso, const struct isolation_plan *plan,
		      struct ql_error *err)
{
	if (iso->applied || iso->prepared)
		return ql_error_set(err, EALREADY, "CPU isolation is already prepared");
	if (!iso->backend->prepare)
		return 0;
	int r = lock(iso, err);
	if (r < 0)
		return r;
	r = iso->backend->prepare(iso->state, plan, err);
	if (r < 0)
		undo_locked(iso, err);
	unlock(iso);
	if (r == 0)
		iso->prepared = true;
	return r;
}

bool isolation_keeps_warm(const struct isolation *iso)
{
	return iso->prepared && isolation_will_keep_warm(iso);
}

bool isolation_will_keep_warm(const struct isolation *iso)
{
	return iso->backend->keep_warm != NULL;
}

void isolation_keep_warm(struct isolation *iso)
{
	if (isolation_keeps_warm(iso))
		iso->backend->keep_warm(iso->state);
}

int isolation_apply(struct isolation *iso, const struct isolation_plan *plan, struct ql_error *err)
{
	if (iso->applied)
		return ql_error_set(err, EALREADY, "CPU isolation is already applied");
	int r = lock(iso, err);
	if (r < 0)
		return r;
	r = iso->backend->apply(iso->state, plan, err);
	if (r < 0)
		undo_locked(iso, err);
	unlock(iso);
	if (r == 0) {
		iso->applied = true;
		iso->prepared = false;
	}
	return r;
}

int isolation_rescan(struct isolation *iso, struct ql_error *err)
{
	if (!iso->applied || !iso->backend->rescan)
		return 0;
	return locked(iso, iso->backend->rescan, err);
}

int isolation_release(struct isolation *iso, struct ql_error *err)
{
	if (!iso->applied && !iso->prepared)
		return 0;
	int r = locked(iso, iso->backend->release, err);
	if (r < 0)
		return r;
	iso->applied = iso->prepared = false;
	return 0;
}

int isolation_reclaim(struct isolation *iso, struct ql_error *err)
{
	if (!iso->backend->reclaim)
		return 0;
	int r = locked(iso, iso->backend->reclaim, err);
	if (r == 0)
		iso->applied = iso->prepared = false;
	return r;
}

void isolation_hand_over(struct isolation *iso)
{
	if (iso)
		iso->applied = false;
}

void isolation_qemu_reaped(struct isolation *iso)
{
	if (iso && iso->backend->qemu_reaped)
		iso->backend->qemu_reaped(iso->state);
}

void isolation_free(struct isolation *iso)
{
	if (!iso)
		return;
	if (iso->applied || iso->prepared)
		(void)isolation_release(iso, NULL);
	if (iso->backend && iso->backend->free_state)
		iso->backend->free_state(iso->state);
	unlock(iso);
	free(iso);
}

void isolation_vm_list_done(struct isolation_vm_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->vms[i].name);
		free(l->vms[i].dir);
		free(l->vms[i].members);
	}
	free(l->vms);
	free(l->confined_set);
	free(l->confined_cpus);
	*l = (struct isolation_vm_list){0};
}

int isolation_inspect(const struct isolation_config *cfg, const char *only,
		      struct isolation_vm_list *ret, struct ql_error *err)
{
	struct isolation_vm_list acc = {0};
	for (size_t i = 0; i < ELEMENTSOF(cpuset_backends); i++) {
		const struct isolation_backend *b = cpuset_backends[i];
		if (!b->inspect)
			continue;
		int r = b->inspect(cfg, only, &acc, err);
		if (r < 0) {
			isolation_vm_list_done(&acc);
			ql_error_prefix(err, "%s: ", b->name);
			return r;
		}
	}
	*ret = acc;
	return 0;
}
