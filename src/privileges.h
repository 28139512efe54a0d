/* Who qemu runs as: setuid detection, the target identity from `user`/`group`, and the checked
 * privilege drop (groups -> gid -> uid -> verify) done in the child before exec. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "definition.h"
#include "error.h"

#define QL_MAX_GROUPS 65536

struct identity {
	bool change; /* false: keep the launcher's credentials */
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* supplementary groups */
	size_t n_groups;
	/* qemu gets a group (`group`, or `user`'s) the caller does not have: a privilege of its
	 * own, which the caller's session must not shape. True when the caller's groups cannot
	 * be read. */
	bool gains_groups;
};

/* Real and effective ids differ (installed setuid/setgid). */
bool privileges_is_setuid(void);

/* An unprivileged caller's exec gave privileges without a change of ids: file capabilities
 * (setcap). Setuid mode's checks key on the ids, so such an install is refused, not half-safe. */
bool privileges_gained_by_file(void);

/* What qemu should run as:
 *  - `user` given: that uid; gid = `group` or the user's primary group; groups = the user's
 *    supplementary groups when the uid has a passwd entry, else just gid.
 *  - only `group`: current real uid, that gid, groups = [gid].
 *  - neither: setuid mode drops to the real uid/gid/groups of the caller; otherwise no change. */
int privileges_identity(const struct definition *d, bool setuid, struct identity *ret,
			struct ql_error *err);
void identity_done(struct identity *id);

/* qemu runs as the user who started the launcher (real uid), whatever its group. */
bool identity_is_caller(const struct identity *id);

/* In the forked child: setgroups -> setresgid -> setresuid, each checked, then verified (a
 * regained root is a failure). Returns -errno and a short description of the failed step. */
int privileges_drop(const struct identity *id, const char **ret_step);

/* For the modes that need no privilege (--import, --topology): real, effective and saved ids all
 * become the caller's for good, so whatever they open is opened with the caller's rights. */
int privileges_become_caller(const char **ret_step);
