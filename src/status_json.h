/* --status --json: the report status_collect() gathered, as one JSON document following
 * schema/status.schema.json (format version STATUS_JSON_VERSION). Pure: no I/O. */
#pragma once

#include "status.h"

/* Bumped when a property is removed or changes meaning; properties may be added within a
 * version (consumers ignore what they do not know), and the schema file grows with them. */
#define STATUS_JSON_VERSION 1

/* The report as a JSON text ending in a newline. NULL on ENOMEM. */
char *status_json_format(const struct status_report *r);
