/* Progress reports from library code. Modules never print: they hand messages to the logger the
 * CLI installed, which decides what to show (-v steps, -d host changes, warnings always). */
#pragma once

#include "macro.h"

enum ql_log_level {
	QL_LOG_WARNING, /* always shown */
	QL_LOG_INFO,	/* a step of the run (-v) */
	QL_LOG_DEBUG,	/* every change made to the host, the pinning map (-d / launcher.debug) */
};

struct ql_logger {
	void (*fn)(void *userdata, enum ql_log_level level, const char *msg);
	void *userdata;
	/* The most detailed level fn shows: messages beyond it are dropped before they are
	 * formatted (a launch logs dozens of host changes that only -d prints). Left at 0 (the
	 * default), fn gets warnings only; QL_LOG_DEBUG passes everything. */
	enum ql_log_level max_level;
};

/* Formats and forwards; a NULL logger or fn, or a level beyond max_level, drops the message. */
void ql_log(const struct ql_logger *lg, enum ql_log_level level, const char *fmt, ...)
    _printf_(3, 4);
