/* Locating and reading definitions; the only place the QEMU_LAUNCHER_* variables are read. */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "definition.h"
#include "journal.h"
#include "names.h"
#include "populate.h"

static const struct {
	const char *var;
	const char *fallback;
	size_t offset;
} path_vars[] = {
    {"QEMU_LAUNCHER_CONFIG_DIR", QL_DEFAULT_CONFIG_DIR, offsetof(struct config_paths, config_dir)},
    {"QEMU_LAUNCHER_CPUSET_MOUNT_PATH", QL_DEFAULT_CPUSET_MOUNT,
     offsetof(struct config_paths, cpuset_mount)},
    {"QEMU_LAUNCHER_CPUSET_PREFIX", QL_DEFAULT_CPUSET_PREFIX,
     offsetof(struct config_paths, cpuset_prefix)},
    {"QEMU_LAUNCHER_CGROUP2_ROOT", QL_DEFAULT_CGROUP2_ROOT,
     offsetof(struct config_paths, cgroup2_root)},
    {"QEMU_LAUNCHER_JOURNAL_DIR", QL_DEFAULT_JOURNAL_DIR,
     offsetof(struct config_paths, journal_dir)},
    {"QEMU_LAUNCHER_SYSFS_ROOT", "/", offsetof(struct config_paths, sysfs_root)},
    /* tests only: stop the launcher at a named point, to kill it exactly there */
    {"QEMU_LAUNCHER_TEST_STOP_AT", "", offsetof(struct config_paths, test_stop_at)},
};

int config_paths_init(struct config_paths *paths, bool setuid, const char *cli_config_dir,
		      struct ql_error *err)
{
	*paths = (struct config_paths){.setuid = setuid};

	if (setuid && cli_config_dir) {
		config_paths_done(paths);
		return ql_error_set(err, EPERM,
				    "--config-dir is not accepted when qemu-launcher runs setuid: "
				    "definitions are read only from " QL_DEFAULT_CONFIG_DIR);
	}
	for (size_t i = 0; i < ELEMENTSOF(path_vars); i++) {
		/* Plain getenv on purpose: in setuid mode we want to *see* the override to refuse
		 * it loudly instead of silently running something else than the user meant. */
		const char *v = getenv(path_vars[i].var);
		if (v && setuid) {
			config_paths_done(paths);
			return ql_error_set(
			    err, EPERM,
			    "%s is not honoured when qemu-launcher runs setuid; unset it",
			    path_vars[i].var);
		}
		if (!v || !*v)
			v = path_vars[i].fallback;
		char *copy = strdup(v);
		if (!copy) {
			config_paths_done(paths);
			return ql_error_set(err, ENOMEM, "out of memory");
		}
		*(char **)((char *)paths + path_vars[i].offset) = copy;
	}
	if (cli_config_dir) {
		char *copy = strdup(cli_config_dir);
		if (!copy) {
			config_paths_done(paths);
			return ql_error_set(err, ENOMEM, "out of memory");
		}
		free(paths->config_dir);
		paths->config_dir = copy;
	}
	if (!cgroup_prefix_is_valid(paths->cpuset_prefix)) {
		struct ql_shown shown;
		int r = ql_error_set(
		    err, EINVAL,
		    "QEMU_LAUNCHER_CPUSET_PREFIX `%s` must be a single directory name that does "
		    "not "
		    "start with `.` and is not a cgroup file or `pool` (at most %d bytes)",
		    ql_show(&shown, paths->cpuset_prefix), QL_NAME_MAX);
		config_paths_done(paths);
		return r;
	}
	return 0;
}

void config_paths_done(struct config_paths *paths)
{
	free(paths->config_dir);
	free(paths->cpuset_mount);
	free(paths->cpuset_prefix);
	free(paths->cgroup2_root);
	free(paths->journal_dir);
	free(paths->sysfs_root);
	free(paths->test_stop_at);
	*paths = (struct config_paths){0};
}

int config_check_name(const char *name, struct ql_error *err)
{
	struct ql_shown shown;
	size_t len = strlen(name);
	if (len == 0)
		return ql_error_set(err, EINVAL, "the VM name is empty");
	if (len > QL_NAME_MAX)
		return ql_error_set(err, EINVAL, "the VM name is longer than %d bytes",
				    QL_NAME_MAX);
	if (!vm_name_is_valid(name))
		return ql_error_set(
		    err, EINVAL,
		    "invalid VM name `%s`: use letters, digits and `_` (then also `.-+`); "
		    "it names NAME.yml inside the config dir, not a path",
		    ql_show(&shown, name));
	/* Refused here, before anything is read, rather than found out by a cpuset backend
	 * (which then fell back to affinity): the name becomes a cgroup directory. */
	if (cgroup_name_is_reserved(name))
		return ql_error_set(
		    err, EINVAL,
		    "the VM name `%s` is reserved: its cgroup directory would clash "
		    "with the cgroup file or set of that name; rename the definition",
		    ql_show(&shown, name));
	return 0;
}

static int check_trusted(const struct stat *st, const char *what, const char *path,
			 struct ql_error *err)
{
	if (st->st_uid != 0)
		return ql_error_set(
		    err, EPERM,
		    "%s `%s` is not owned by root; a setuid qemu-launcher only reads "
		    "root-owned definitions",
		    what, path);
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return ql_error_set(
		    err, EPERM,
		    "%s `%s` is writable by group or others; a setuid qemu-launcher "
		    "refuses it (chmod go-w)",
		    what, path);
	return 0;
}

/* Setuid mode reads with root's rights, but everything a definition holds reaches the caller:
 * --dry-run and --check print it, parse errors quote it, and qemu's command line is readable
 * by every user in /proc/PID/cmdline. So a definition the caller could not read themselves is
 * not used at all. access(2) semantics (faccessat without AT_EACCESS) check with the real uid,
 * gid and groups, ACLs included. The name cannot be swapped between this check and the open:
 * the directory was checked to be root-owned and not writable by others. */
static int check_caller_may_read(int dfd, const char *path, struct ql_error *err)
{
	const char *name = strrchr(path, '/') + 1;
	if (faccessat(dfd, name, R_OK, 0) == 0)
		return 0;
	if (errno != EACCES)
		return ql_error_set_errno(err, errno, "checking access to `%s`", path);
	return ql_error_set(err, EACCES,
			    "definition `%s` is not readable by you (uid %u); a setuid "
			    "qemu-launcher only uses definitions its caller may read",
			    path, (unsigned)getuid());
}

int config_read_definition(const struct config_paths *paths, const char *name, char **ret_path,
			   char **ret_text, size_t *ret_len, struct ql_error *err)
{
	int r = config_check_name(name, err);
	if (r < 0)
		return r;

	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s/%s.yml", paths->config_dir, name) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");

	_cleanup_close_ int dfd = open(paths->config_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return ql_error_set_errno(err, errno, "cannot open config dir `%s`",
					  paths->config_dir);
	struct stat st;
	if (paths->setuid) {
		if (fstat(dfd, &st) < 0)
			return ql_error_set_errno(err, errno, "stat `%s`", paths->config_dir);
		r = check_trusted(&st, "config dir", paths->config_dir, err);
		if (r < 0)
			return r;
	}

	/* O_NONBLOCK: a FIFO named NAME.yml must not hang us; the regular-file check below refuses
	 * it. */
	int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (paths->setuid ? O_NOFOLLOW : 0);
	_cleanup_close_ int fd = openat(dfd, strrchr(path, '/') + 1, flags);
	if (fd < 0) {
		if (errno == ELOOP && paths->setuid)
			return ql_error_set(
			    err, EPERM,
			    "definition `%s` is a symbolic link; a setuid qemu-launcher "
			    "does not follow links (copy the file instead)",
			    path);
		if (errno == ENOENT)
			return ql_error_set(err, ENOENT,
					    "no definition `%s`: `%s` does not exist (see --list)",
					    name, path);
		return ql_error_set_errno(err, errno, "cannot open `%s`", path);
	}
	if (fstat(fd, &st) < 0)
		return ql_error_set_errno(err, errno, "stat `%s`", path);
	if (!S_ISREG(st.st_mode))
		return ql_error_set(err, EINVAL, "`%s` is not a regular file", path);
	if (paths->setuid) {
		r = check_trusted(&st, "definition", path, err);
		if (r < 0)
			return r;
		r = check_caller_may_read(dfd, path, err);
		if (r < 0)
			return r;
	}
	if (st.st_size > DEFINITION_MAX_BYTES)
		return ql_error_set(err, EFBIG, "%s:1:1: file is larger than %d bytes", path,
				    DEFINITION_MAX_BYTES);

	/* Read up to the bound + 1 so a file growing under us is still caught. */
	size_t cap = (size_t)st.st_size + 1, len = 0;
	_cleanup_free_ char *text = malloc(cap + 1);
	if (!text)
		return ql_error_set(err, ENOMEM, "out of memory");
	populate(text, cap + 1); /* read() would fault its pages in one at a time */
	for (;;) {
		if (len == cap) {
			if (cap > DEFINITION_MAX_BYTES)
				return ql_error_set(err, EFBIG,
						    "%s:1:1: file is larger than %d bytes", path,
						    DEFINITION_MAX_BYTES);
			cap =
			    cap * 2 > DEFINITION_MAX_BYTES + 1 ? DEFINITION_MAX_BYTES + 1 : cap * 2;
			char *n = realloc(text, cap + 1);
			if (!n)
				return ql_error_set(err, ENOMEM, "out of memory");
			text = n;
		}
		ssize_t k = read(fd, text + len, cap - len);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return ql_error_set_errno(err, errno, "read `%s`", path);
		}
		if (k == 0)
			break;
		len += (size_t)k;
	}
	text[len] = '\0';

	*ret_path = TAKE_PTR(path);
	*ret_text = TAKE_PTR(text);
	*ret_len = len;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int config_list(const struct config_paths *paths, char ***ret_names, struct ql_error *err)
{
	/* Setuid: list only a directory the caller could list themselves (see above). */
	if (paths->setuid && access(paths->config_dir, R_OK | X_OK) < 0)
		return ql_error_set_errno(err, errno, "cannot list config dir `%s` as uid %u",
					  paths->config_dir, (unsigned)getuid());
	DIR *dir = opendir(paths->config_dir);
	if (!dir)
		return ql_error_set_errno(err, errno, "cannot open config dir `%s`",
					  paths->config_dir);

	_cleanup_strv_free_ char **names = calloc(1, sizeof(char *));
	size_t n = 0;
	int r = 0;
	struct dirent *de;
	while (names && (de = readdir(dir))) {
		size_t len = strlen(de->d_name);
		if (len <= 4 || strcmp(de->d_name + len - 4, ".yml") != 0)
			continue;
		char *stem = strndup(de->d_name, len - 4);
		if (!stem) {
			r = -ENOMEM;
			break;
		}
		if (config_check_name(stem, NULL) < 0) {
			free(stem);
			continue;
		}
		char **grown = realloc(names, (n + 2) * sizeof(char *));
		if (!grown) {
			free(stem);
			r = -ENOMEM;
			break;
		}
		names = grown;
		names[n++] = stem;
		names[n] = NULL;
	}
	closedir(dir);
	if (!names || r < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	qsort(names, n, sizeof(char *), cmp_str);
	*ret_names = TAKE_PTR(names);
	return 0;
}
