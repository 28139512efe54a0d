/* The error object: library code fills it once, only the CLI prints it (crun's libcrun_error_t). */
#pragma once

#include "macro.h"

struct ql_error {
	int code;  /* positive errno value, 0 when unset */
	char *msg; /* complete sentence without trailing newline; NULL when unset */
};

/* Records errnum and a formatted message (replacing any earlier one) and returns -errnum, so a
 * caller can write `return ql_error_set(err, errno, "open `%s`", path);`. errnum 0 means EINVAL. */
int ql_error_set(struct ql_error *err, int errnum, const char *fmt, ...) _printf_(3, 4);

/* Same, with ": strerror(errnum)" appended to the message. */
int ql_error_set_errno(struct ql_error *err, int errnum, const char *fmt, ...) _printf_(3, 4);

/* Prefixes an existing message with more context ("pinning vCPU 2: " + old). */
void ql_error_prefix(struct ql_error *err, const char *fmt, ...) _printf_(2, 3);

void ql_error_clear(struct ql_error *err);

/* For best-effort sequences that go on after a failure: when r < 0 and no earlier step failed
 * (*ret == 0), r and step's message become *ret and err; step is cleared either way. */
void ql_error_keep_first(int r, struct ql_error *step, int *ret, struct ql_error *err);

/* User text quoted into a message: control characters escaped (messages reach terminals, also
 * in setuid mode), long texts shortened at a character boundary. Never NULL. */
#define QL_SHOW_MAX 60
struct ql_shown {
	char buf[QL_SHOW_MAX * 4 + 8];
};
const char *ql_show(struct ql_shown *s, const char *text);

/* All of text escaped as ql_show does (\xNN), newly allocated; NULL on ENOMEM. For text other
 * users control that reaches a terminal whole (--status: VM names, thread names). */
char *ql_escape(const char *text);
