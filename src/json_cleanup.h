/* Ownership of json-c objects, for the modules that speak JSON (qmp.c and the --status --json
 * writers). */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "macro.h"

static inline void json_object_putp(json_object **o)
{
	json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_object_putp)

/* obj[key] = val, taking val; false on ENOMEM: when val is NULL and want says it must not be
 * (a NULL val is JSON null otherwise). */
static inline bool json_put(json_object *obj, const char *key, json_object *val, bool want)
{
	if (want && !val)
		return false;
	if (json_object_object_add(obj, key, val) != 0) {
		json_object_put(val);
		return false;
	}
	return true;
}

/* arr += val, taking val; false on ENOMEM (val NULL). */
static inline bool json_push(json_object *arr, json_object *val)
{
	if (!val)
		return false;
	if (json_object_array_add(arr, val) != 0) {
		json_object_put(val);
		return false;
	}
	return true;
}
