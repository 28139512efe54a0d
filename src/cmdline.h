/* Turns a definition's `qemu:` list into qemu's argv; pure, no I/O. */
#pragma once

#include <stdbool.h>

#include "definition.h"

/* One option value as qemu expects it: parts joined with ',', key=value with commas in the
 * value doubled, no separator added after a part that already ends in an unescaped ','.
 * NULL on allocation failure. */
char *cmdline_option_value(const struct qemu_option *opt);

/* argv[0] = d->binary, then every option in order ("-name", value...). NULL-terminated, in one
 * allocation with its strings: free(*ret_argv) frees it all (never strv_free). */
int cmdline_build(const struct definition *d, char ***ret_argv, struct ql_error *err);

/* True if the qemu list contains the option `name` (e.g. "S"). */
bool cmdline_has_option(const struct definition *d, const char *name);

/* True if the qemu list creates an object of QOM type `type` with id `id` (`-object TYPE,id=ID`,
 * or the JSON form `-object {"qom-type": "TYPE", "id": "ID"}`). */
bool cmdline_creates_object(const struct definition *d, const char *type, const char *id);

/* True if qemu switches to another user once it is set up (`-runas USER`, or `-run-with
 * user=USER` of later versions): the kernel then drops its parent-death signal. */
bool cmdline_changes_user(const struct definition *d);

/* True if qemu will name its threads (`-name ...,debug-threads=on`): "CPU 3/TCG" for vCPU 3. */
bool cmdline_names_threads(const struct definition *d);

/* Quotes one word so a POSIX shell reads it back unchanged ('...' with '\'' for quotes; words
 * made only of safe characters stay bare). */
char *cmdline_shell_quote(const char *word);
/* All of argv shell-quoted and space-separated. */
char *cmdline_shell_join(char *const *argv);
