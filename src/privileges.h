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

/* Real and effective ids differ (installed setuid/setgid); the caller's real uid counts while
 * shielded. */
bool privileges_is_setuid(void);

/* The real uid of the user who started the launcher, also while shielded (where getuid() is 0). */
uid_t privileges_caller_uid(void);

/* Installed setuid, the launcher keeps the caller's real uid, so the caller may signal it: a
 * SIGSTOP inside a section holding a host-wide lock (the cpuset tree's, the journal's) would stall
 * every launcher on the host. While shielded, the real uid is root (kill(2) checks the sender
 * against the target's real and saved uid) and the terminal's stop signals, which bypass that
 * check, are ignored; the terminal's SIGINT and SIGQUIT still reach the launcher.
 * Nested: each privileges_shield is paired with one privileges_unshield, and the last lifts it. A
 * no-op unless setuid root, and in any process but the one that shielded first (the guardian
 * shares our memory). */
void privileges_shield(void);
void privileges_unshield(void);
/* In the child of a fork or vfork of a shielded launcher, before exec: the stop signals'
 * dispositions back to the caller's (the ids are the identity's, set by privileges_drop). Only
 * makes syscalls, so a vfork child may call it. */
void privileges_unshield_child(pid_t parent);

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
