/* Ownership of json-c objects, for the modules that speak JSON (qmp.c, status_json.c). */
#pragma once

#include <json-c/json.h>

#include "macro.h"

static inline void json_object_putp(json_object **o)
{
	json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_object_putp)
