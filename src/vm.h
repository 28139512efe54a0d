/* One VM's life: build the command line, start qemu with a private QMP channel, pin before the
 * guest runs, supervise, unwind every host change, and tell the caller how qemu ended. */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "definition.h"
#include "error.h"
#include "isolation.h"
#include "log.h"

struct vm_options {
	const char *name;
	const struct definition *def;
	const struct config_paths *paths;
	const struct ql_logger *log;
};

/* Runs the VM to its end. Returns 0 with ret_wait_status set once qemu ran and was reaped
 * (whatever its status), or -errno when the launcher itself failed; then err says why and
 * err->code is ENOENT (binary not found), ENOEXEC (binary not executable) or another errno. */
int vm_run(const struct vm_options *o, int *ret_wait_status, struct ql_error *err);

/* Where and how this VM's CPUs are isolated (paths, prefix, isolate_cpus, may we mount). */
void vm_isolation_config(const struct vm_options *o, struct isolation_config *ret);

/* The qemu argv a definition gives (what --dry-run prints), and the options the launcher adds. */
int vm_command_line(const struct definition *d, char ***ret_argv, struct ql_error *err);
int vm_private_options(const struct definition *d, char ***ret_extra, struct ql_error *err);
