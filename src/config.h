/* Where definitions live and how they are read: config dir and cgroup paths from the
 * environment, NAME validation, bounded and (in setuid mode) ownership-checked file reading. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "names.h"

/* meson -Dconfigdir= (distribution packages: /etc/qemu-launcher) */
#ifndef QL_CONFIG_DIR
#define QL_CONFIG_DIR "/usr/local/etc/qemu-launcher"
#endif
#define QL_DEFAULT_CONFIG_DIR QL_CONFIG_DIR
#define QL_DEFAULT_CPUSET_MOUNT "/sys/fs/cgroup/cpuset"
#define QL_DEFAULT_CPUSET_PREFIX "qemu"
#define QL_DEFAULT_CGROUP2_ROOT "/sys/fs/cgroup"

struct config_paths {
	bool setuid; /* running setuid/setgid: nothing the caller controls is trusted */
	char *config_dir;
	char *cpuset_mount;
	char *cpuset_prefix;
	char *cgroup2_root;
	char *journal_dir;  /* the write-ahead journal of host values (journal.h) */
	char *sysfs_root;   /* "/" but for tests: where /sys and /proc/sys are read and written */
	char *test_stop_at; /* tests: the point where the launcher SIGSTOPs itself ("": none) */
};

/* Fills paths from the defaults, QEMU_LAUNCHER_* and --config-dir (cli_config_dir, may be NULL).
 * In setuid mode any override is refused with an explanation (-EPERM). */
int config_paths_init(struct config_paths *paths, bool setuid, const char *cli_config_dir,
		      struct ql_error *err);
void config_paths_done(struct config_paths *paths);

/* NAME is a file name stem: [A-Za-z0-9_][A-Za-z0-9._+-]*, at most QL_NAME_MAX bytes, and not a
 * name reserved in cgroup directories (names.h). */
int config_check_name(const char *name, struct ql_error *err);

/* Reads <config_dir>/<name>.yml (regular file, no symlink in setuid mode, at most
 * DEFINITION_MAX_BYTES). In setuid mode the directory and file must be owned by root and not
 * writable by group or others. */
int config_read_definition(const struct config_paths *paths, const char *name, char **ret_path,
			   char **ret_text, size_t *ret_len, struct ql_error *err);

/* Sorted NAMEs of the definitions in the config dir. */
int config_list(const struct config_paths *paths, char ***ret_names, struct ql_error *err);
