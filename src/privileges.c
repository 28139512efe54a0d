/* Identity of the qemu child and the order-sensitive privilege drop (util-linux setpriv). */
#include "privileges.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

static const int terminal_stops[3] = {SIGTSTP, SIGTTIN, SIGTTOU};

/* Process-wide, as what it stands for (the real uid, signal dispositions) is. */
static struct {
	unsigned depth; /* privileges_shield calls not yet paired; 0: not shielded */
	pid_t pid;	/* the process that shielded */
	uid_t ruid;	/* the caller's real uid, given back by the last privileges_unshield */
	struct sigaction saved_stop[ELEMENTSOF(terminal_stops)];
} shield;

static bool shielded_here(void)
{
	return shield.depth > 0 && shield.pid == getpid();
}

uid_t privileges_caller_uid(void)
{
	return shielded_here() ? shield.ruid : getuid();
}

bool privileges_is_setuid(void)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;
	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0)
		return true; /* cannot tell: assume the careful mode */
	return privileges_caller_uid() != euid || rgid != egid;
}

void privileges_shield(void)
{
	if (shield.depth > 0) {
		if (shield.pid == getpid())
			shield.depth++;
		return;
	}
	uid_t ruid = getuid();
	if (geteuid() != 0 || ruid == 0 || setresuid(0, (uid_t)-1, (uid_t)-1) < 0)
		return;
	shield.depth = 1;
	shield.pid = getpid();
	shield.ruid = ruid;
	struct sigaction ign = {.sa_handler = SIG_IGN};
	for (size_t i = 0; i < ELEMENTSOF(terminal_stops); i++)
		sigaction(terminal_stops[i], &ign, &shield.saved_stop[i]);
}

/* The terminal's stop signals as they were before the shield (system calls only: a vfork child
 * runs it). */
static void restore_stop_signals(void)
{
	for (size_t i = 0; i < ELEMENTSOF(terminal_stops); i++)
		sigaction(terminal_stops[i], &shield.saved_stop[i], NULL);
}

void privileges_unshield(void)
{
	if (!shielded_here() || --shield.depth > 0)
		return;
	restore_stop_signals();
	/* as euid 0 this cannot fail; the caller may signal its launcher again */
	(void)setresuid(shield.ruid, (uid_t)-1, (uid_t)-1);
}

void privileges_unshield_child(pid_t parent)
{
	if (shield.depth == 0 || shield.pid != parent)
		return;
	restore_stop_signals();
}

bool privileges_gained_by_file(void)
{
	/* The kernel sets AT_SECURE for an exec that gave privileges: a change of ids, or
	 * capabilities gained from the file. Root loses nothing to refuse here: it has them all. */
	return getauxval(AT_SECURE) && !privileges_is_setuid() && geteuid() != 0;
}

static int groups_of_user(const char *user, gid_t gid, gid_t **ret, size_t *ret_n,
			  struct ql_error *err)
{
	int n = 32;
	for (;;) {
		_cleanup_free_ gid_t *groups = calloc((size_t)n, sizeof(gid_t));
		if (!groups)
			return ql_error_set(err, ENOMEM, "out of memory");
		int want = n;
		if (getgrouplist(user, gid, groups, &want) >= 0) {
			*ret = TAKE_PTR(groups);
			*ret_n = (size_t)want;
			return 0;
		}
		if (want <= n || want > QL_MAX_GROUPS)
			return ql_error_set(err, E2BIG, "user `%s` has too many groups", user);
		n = want;
	}
}

/* The caller's supplementary groups, in an array with room for one more (gains_groups
 * adds the primary group). */
static int caller_groups(gid_t **ret, size_t *ret_n, struct ql_error *err)
{
	int n = getgroups(0, NULL);
	if (n < 0)
		return ql_error_set_errno(err, errno, "getgroups");
	gid_t *groups = calloc((size_t)n + 1, sizeof(gid_t));
	if (!groups)
		return ql_error_set(err, ENOMEM, "out of memory");
	n = getgroups(n, groups);
	if (n < 0) {
		free(groups);
		return ql_error_set_errno(err, errno, "getgroups");
	}
	*ret = groups;
	*ret_n = (size_t)n;
	return 0;
}

static bool gid_in(gid_t g, const gid_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == g)
			return true;
	return false;
}

static bool gains_groups(const struct identity *id)
{
	if (!id->change)
		return false;
	_cleanup_free_ gid_t *mine = NULL;
	size_t n = 0;
	if (caller_groups(&mine, &n, NULL) < 0)
		return true;  /* cannot tell: the careful answer */
	mine[n++] = getgid(); /* caller_groups leaves room for one more */
	if (!gid_in(id->gid, mine, n))
		return true;
	for (size_t i = 0; i < id->n_groups; i++)
		if (!gid_in(id->groups[i], mine, n))
			return true;
	return false;
}

int privileges_identity(const struct definition *d, bool setuid, struct identity *ret,
			struct ql_error *err)
{
	struct identity id = {0};
	int r;

	if (d->has_user) {
		/* a user id without passwd entry has no group of its own: root's would be kept */
		if (!d->user_name && !d->has_group && getgid() == 0 && d->user != 0)
			return ql_error_set(
			    err, EPERM,
			    "%s:%u:%u: `user` %u has no passwd entry, so qemu would keep group 0 "
			    "(root's): name a `group` too",
			    d->path ? d->path : "(definition)", d->user_mark.line,
			    d->user_mark.column, (unsigned)d->user);
		id.change = true;
		id.uid = d->user;
		id.gid = d->has_group ? d->group : d->user_name ? d->user_gid : getgid();
		if (d->user_name)
			r = groups_of_user(d->user_name, id.gid, &id.groups, &id.n_groups, err);
		else {
			id.groups = calloc(1, sizeof(gid_t));
			r = id.groups ? 0 : ql_error_set(err, ENOMEM, "out of memory");
			if (r == 0) {
				id.groups[0] = id.gid;
				id.n_groups = 1;
			}
		}
		if (r < 0)
			return r;
	} else if (d->has_group) {
		id.change = true;
		id.uid = privileges_caller_uid();
		id.gid = d->group;
		id.groups = calloc(1, sizeof(gid_t));
		if (!id.groups)
			return ql_error_set(err, ENOMEM, "out of memory");
		id.groups[0] = id.gid;
		id.n_groups = 1;
	} else if (setuid) {
		/* The invoking user gets exactly what they had before exec'ing us. */
		id.change = true;
		id.uid = privileges_caller_uid();
		id.gid = getgid();
		r = caller_groups(&id.groups, &id.n_groups, err);
		if (r < 0)
			return r;
	}
	id.gains_groups = gains_groups(&id);
	*ret = id;
	return 0;
}

void identity_done(struct identity *id)
{
	free(id->groups);
	*id = (struct identity){0};
}

bool identity_is_caller(const struct identity *id)
{
	return !id || !id->change || id->uid == privileges_caller_uid();
}

/* setresgid -> setresuid to uid and gid, each checked, then verified. */
static int set_ids(uid_t uid, gid_t gid, const char **ret_step)
{
	if (setresgid(gid, gid, gid) < 0) {
		*ret_step = "setresgid";
		return -errno;
	}
	if (setresuid(uid, uid, uid) < 0) {
		*ret_step = "setresuid";
		return -errno;
	}
	uid_t r, e, s;
	gid_t rg, eg, sg;
	if (getresuid(&r, &e, &s) < 0 || r != uid || e != uid || s != uid ||
	    getresgid(&rg, &eg, &sg) < 0 || rg != gid || eg != gid || sg != gid) {
		*ret_step = "verifying the new ids";
		return -EPERM;
	}
	/* A non-root target must not be able to get root back. */
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		*ret_step = "verifying root cannot be regained";
		return -EPERM;
	}
	return 0;
}

int privileges_drop(const struct identity *id, const char **ret_step)
{
	if (!id->change)
		return 0;
	/* Groups first: after setresuid we could no longer change them. */
	if (setgroups(id->n_groups, id->groups) < 0) {
		*ret_step = "setgroups";
		return -errno;
	}
	return set_ids(id->uid, id->gid, ret_step);
}

int privileges_become_caller(const char **ret_step)
{
	/* The supplementary groups are the caller's already: a set-user-ID exec keeps them (and a
	 * set-group-ID-only install could not set them). */
	return set_ids(privileges_caller_uid(), getgid(), ret_step);
}
