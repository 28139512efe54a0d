/* json-c, for QMP and --status --json, loaded with dlopen on first use: what needs no JSON
 * (--check, a start up to qemu's spawn) maps, relocates and searches one library less (0.3 ms and
 * 9 page faults an exec on the bench host, bench/RESULTS.md). The rest of the code calls json-c's
 * functions by their own names and types, from <json-c/json.h>: jsonc.c defines each one it uses
 * as a call through the pointer it loaded. A static build (-Dprefer_static=true) links json-c
 * instead, where dlopen would find no library, and jsonc_load() has nothing to do. */
#pragma once

#include "error.h"

/* Loads libjson-c.so.5 and every function the launcher uses, once for the process; ENOPKG when
 * the library or one of its functions is missing. Called where JSON starts (qmp_new, --status
 * --json) so that failure is an error there; a json-c function called before it loads json-c
 * itself, and aborts when it cannot (that is a missing call to this, not a missing library). */
int jsonc_load(struct ql_error *err);
