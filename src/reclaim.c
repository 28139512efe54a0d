/* A killed run's undo, described by argv (see reclaim.h). */
#include "reclaim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "macro.h"

/* argv[0], RECLAIM_ARG and the ten fields below, at most. */
#define MAX_ARGS 12

int reclaim_argv(const struct reclaim_what *w, char ***ret, struct ql_error *err)
{
	const struct isolation_config *c = &w->iso;
	_cleanup_strv_free_ char **argv = calloc(MAX_ARGS + 1, sizeof(char *));
	if (!argv)
		return ql_error_set(err, ENOMEM, "out of memory");
	size_t n = 0;
	bool ok = (argv[n++] = strdup("qemu-launcher")) && (argv[n++] = strdup(RECLAIM_ARG)) &&
		  asprintf(&argv[n++], "name=%s", w->vm_name) >= 0 &&
		  asprintf(&argv[n++], "log=%d", w->log_level) >= 0 &&
		  asprintf(&argv[n++], "careful=%d", w->careful) >= 0;
	if (ok && w->backend)
		ok = asprintf(&argv[n++], "backend=%s", w->backend) >= 0 &&
		     asprintf(&argv[n++], "mount=%s", c->mount_path ? c->mount_path : "") >= 0 &&
		     asprintf(&argv[n++], "cgroup2=%s", c->cgroup2_root ? c->cgroup2_root : "") >=
			 0 &&
		     asprintf(&argv[n++], "prefix=%s", c->prefix ? c->prefix : "") >= 0 &&
		     asprintf(&argv[n++], "isolate=%d", (int)c->mode) >= 0 &&
		     asprintf(&argv[n++], "may_mount=%d", c->may_mount) >= 0;
	if (ok && w->journal_dir)
		ok = asprintf(&argv[n++], "journal=%s", w->journal_dir) >= 0;
	if (!ok) {
		argv[n - 1] = NULL; /* asprintf leaves it undefined on failure */
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	*ret = TAKE_PTR(argv);
	return 0;
}

/* "0".."max" into *ret. */
static bool small_number(const char *s, int max, int *ret)
{
	if (s[0] < '0' || s[0] > '0' + max || s[1])
		return false;
	*ret = s[0] - '0';
	return true;
}

int reclaim_parse(char *const *args, struct reclaim_what *ret, struct ql_error *err)
{
	struct reclaim_what w = {0};
	for (; *args; args++) {
		const char *a = *args, *eq = strchr(a, '=');
		if (!eq)
			return ql_error_set(err, EINVAL, "%s: `%s` is not KEY=VALUE", RECLAIM_ARG,
					    a);
		const char *v = eq + 1;
		size_t k = (size_t)(eq - a);
		int num = 0;
		bool ok = true;
#define KEY(name) (k == sizeof(name) - 1 && strncmp(a, name, k) == 0)
		if (KEY("name"))
			w.vm_name = v;
		else if (KEY("backend"))
			w.backend = v;
		else if (KEY("mount"))
			w.iso.mount_path = v;
		else if (KEY("cgroup2"))
			w.iso.cgroup2_root = v;
		else if (KEY("prefix"))
			w.iso.prefix = v;
		else if (KEY("journal"))
			w.journal_dir = v;
		else if (KEY("isolate") && (ok = small_number(v, QL_ISOLATE_TRUE, &num)))
			w.iso.mode = (enum ql_isolate)num;
		else if (KEY("may_mount") && (ok = small_number(v, 1, &num)))
			w.iso.may_mount = num;
		else if (KEY("log") && (ok = small_number(v, 2, &num)))
			w.log_level = num;
		else if (KEY("careful") && (ok = small_number(v, 1, &num)))
			w.careful = num;
		else
			ok = false;
#undef KEY
		if (!ok)
			return ql_error_set(err, EINVAL, "%s: unknown or malformed `%s`",
					    RECLAIM_ARG, a);
	}
	if (!w.vm_name)
		return ql_error_set(err, EINVAL, "%s: no name=", RECLAIM_ARG);
	w.iso.vm_name = w.vm_name;
	*ret = w;
	return 0;
}

int reclaim_run(const struct reclaim_what *w, const struct ql_logger *log, struct ql_error *err)
{
	int ret = 0;
	struct ql_error e = {0};
	if (w->backend) {
		struct isolation_config cfg = w->iso;
		cfg.log = log;
		_cleanup_isolation_ struct isolation *iso = NULL;
		int r = isolation_open_backend(&cfg, w->backend, &iso, &e);
		if (r == 0)
			r = isolation_reclaim(iso, &e);
		ql_error_keep_first(r, &e, &ret, err);
	}
	if (w->journal_dir) {
		_cleanup_journal_ struct journal *j = NULL;
		int r = journal_open(w->journal_dir, w->vm_name, log, &j, &e);
		if (r == 0)
			r = journal_recover(j, NULL, &e);
		ql_error_keep_first(r, &e, &ret, err);
	}
	if (ret < 0)
		ql_log(log, QL_LOG_WARNING, "after the launcher was killed: %s", err->msg);
	else
		ql_log(log, QL_LOG_INFO, "after the launcher was killed: host changes undone");
	return ret;
}
