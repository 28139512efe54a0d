/* What a killed launcher's guardian has run once the launcher and its qemu are gone: the run's
 * undo (its cpusets or cgroups, then the journal of the host values it changed), by a fresh exec
 * of the launcher's binary with the argv reclaim_argv() builds, so the guardian needs no memory
 * of its own (guardian.h). The same work the next start would do, for this run and at once. */
#pragma once

#include <stdbool.h>

#include "error.h"
#include "isolation.h"
#include "log.h"

/* argv[1] of that exec: main() hands the arguments after it to reclaim_parse. */
#define RECLAIM_ARG "--reclaim-after-kill"

struct reclaim_what {
	const char *vm_name;
	/* The run's cgroup backend ("cpuset v1", "cgroup v2") and where it worked (cfg's strings
	 * and mode; its log is reclaim_run's); NULL: no sets to reclaim. */
	const char *backend;
	struct isolation_config iso;
	const char *journal_dir; /* NULL: the run kept no journal */
	int log_level;		 /* what the run's messages showed: 0 warnings, 1 -v, 2 -d */
	bool careful;		 /* setuid: never block on stderr while a lock is held */
};

/* The exec's argv (argv[0], RECLAIM_ARG, then one KEY=VALUE a field; strv). -ENOMEM. */
int reclaim_argv(const struct reclaim_what *w, char ***ret, struct ql_error *err);

/* args: what followed RECLAIM_ARG. The strings stay args'. -EINVAL on anything else. */
int reclaim_parse(char *const *args, struct reclaim_what *ret, struct ql_error *err);

/* Reclaims the sets the run left (isolation_reclaim), then gives back the journal records of
 * launchers that are gone, the killed one's among them (journal_recover); says so on log. */
int reclaim_run(const struct reclaim_what *w, const struct ql_logger *log, struct ql_error *err);
