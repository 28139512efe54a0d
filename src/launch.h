/* Starting qemu: environment, fds, rlimit, parent-death signal, privilege drop, exec; exec
 * failures come back to the parent through a close-on-exec pipe so they can be reported. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "definition.h"
#include "error.h"
#include "privileges.h"

/* qemu sees its end of the QMP socketpair as this fd. */
#define QL_QMP_CHILD_FD 3

/* Where and with which umask qemu starts (qemu-launcher.yml(5) `umask`, `working_directory`). */
struct launch_session {
	int umask;	       /* -1: keep the launcher's */
	char *workdir;	       /* NULL: keep the launcher's */
	bool workdir_fallback; /* the default home: `/` when the target user cannot enter it */
};

struct launch_spec {
	char *const *argv; /* argv[0] = binary as written in the definition */
	char *const *envp;
	bool path_lookup; /* search PATH for a bare argv[0] (never in setuid mode) */
	const struct identity *identity;
	enum ql_memlock memlock;
	uint64_t memlock_bytes;
	int qmp_fd;			      /* moved to QL_QMP_CHILD_FD in the child */
	const sigset_t *restore_mask;	      /* signal mask qemu should start with */
	const struct launch_session *session; /* NULL: keep umask and working directory */
};

/* The definition's `umask` and `working_directory`, else, when a setuid launcher starts qemu
 * as another user than its caller, umask 022 and that user's home (or `/`): the caller's own
 * umask and directory must not shape files another user's qemu creates. */
int launch_session_init(const struct definition *d, bool setuid, const struct identity *id,
			struct launch_session *ret, struct ql_error *err);
void launch_session_done(struct launch_session *s);

/* Forks and execs. On exec failure the child is reaped and the error returned: -ENOENT (binary
 * not found: exit 127), -ENOEXEC (any other exec failure: 126), anything else from the child's
 * setup (rlimit refused, privilege drop) with its step named. */
int launch_spawn(const struct launch_spec *spec, pid_t *ret_pid, struct ql_error *err);

/* The environment qemu gets: the launcher's (unless clear_env, or setuid mode which rebuilds a
 * minimal one) with the definition's env on top. In setuid mode the caller's session variables
 * (display, sound, locale) are kept only when qemu runs as the caller. */
int launch_build_env(const struct definition *d, bool setuid, const struct identity *id,
		     char ***ret_envp, struct ql_error *err);

/* Makes fds 0-2 valid (opened on /dev/null if closed) and marks every other fd close-on-exec,
 * so nothing the launcher inherited leaks into qemu. Call first thing in main(). */
int launch_sanitize_fds(void);
