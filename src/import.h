/* --import: turns a qemu command line into a definition (YAML text) that --dry-run turns back
 * into the same argv; pure, no I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Launcher keys an import adds after `binary` (from a libvirt domain XML, see libvirt_xml.h).
 * Every field is optional; a zeroed struct adds nothing. */
struct import_launcher {
	char *source;	/* where the keys come from, for the header comment ("libvirt ...") */
	unsigned *pins; /* host CPU of vCPU i for i < n_pins: the flat vcpu_pinning form */
	size_t n_pins;
	char *emulator_cpus; /* kernel CPU list for emulator_pinning */
	char *scheduler;     /* batch, idle, fifo, rr */
	int priority;
	bool has_priority;
	bool rlimit_memlock; /* rlimit_memlock: true */
	char **io_ids;	     /* iothread_pinning: I/O thread ids (NULL-terminated, or NULL) */
	char **io_cpus;	     /* ... and their kernel CPU lists, in the same order */
	char *io_scheduler;  /* iothread_scheduler: batch, idle, fifo, rr */
	int io_priority;
	bool has_io_priority;
};
void import_launcher_done(struct import_launcher *l);

/* Imports argv[0..argc) (argv[0] is the qemu binary). On success *ret_yaml is the definition
 * and *ret_warnings a NULL-terminated list (never NULL, maybe empty) of things the caller should
 * tell the user (a positional disk image turned into `-hda`, `--opt` written as `-opt`,
 * -daemonize). Fails with -EINVAL and a message naming the argument for what a definition cannot
 * hold: an option without its value, an option name with `=`/`,`/whitespace, invalid UTF-8, or a
 * result larger than DEFINITION_MAX_BYTES. */
int import_command_line(char *const *argv, size_t argc, char **ret_yaml, char ***ret_warnings,
			struct ql_error *err);
/* The same, with the launcher keys of `extra` (may be NULL) after `binary`. */
int import_command_line_with(char *const *argv, size_t argc, const struct import_launcher *extra,
			     char **ret_yaml, char ***ret_warnings, struct ql_error *err);

/* True when qemu-system-x86_64 (7.2, plus a few removed in earlier releases that old command
 * lines still carry) takes no argument after `-name`. */
bool import_option_is_flag(const char *name);

/* `s` as a YAML scalar usable in flow and block context that every YAML reader (1.1 and 1.2)
 * reads back as the string `s`: plain when that is safe and unambiguous, else single-quoted, or
 * double-quoted with escapes when `s` holds control characters. NULL on allocation failure. */
char *import_yaml_scalar(const char *s);
