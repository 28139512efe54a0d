/* libfyaml, the YAML reader for what the fast one gives up on (yaml_tree.c): anchors, tags, block
 * scalars, duplicate keys, malformed text. A plain definition never needs it, so it is loaded
 * with dlopen on first use and a VM start maps, relocates and searches one library less (11 page
 * faults a launch, bench/RESULTS.md). A static build (-Dprefer_static=true: the TCG guest's
 * launcher) links it instead, where dlopen would find no library. */
#pragma once

#include <libfyaml.h>

#include "error.h"

/* The libfyaml functions yaml_tree.c calls (types from libfyaml's header). */
struct fyaml {
	__typeof__(fy_diag_cfg_default) *diag_cfg_default;
	__typeof__(fy_diag_create) *diag_create;
	__typeof__(fy_diag_destroy) *diag_destroy;
	__typeof__(fy_diag_set_collect_errors) *diag_set_collect_errors;
	__typeof__(fy_diag_errors_iterate) *diag_errors_iterate;
	__typeof__(fy_parser_create) *parser_create;
	__typeof__(fy_parser_destroy) *parser_destroy;
	__typeof__(fy_parser_set_string) *parser_set_string;
	__typeof__(fy_parser_parse) *parser_parse;
	__typeof__(fy_parser_get_stream_error) *parser_get_stream_error;
	__typeof__(fy_parser_event_free) *parser_event_free;
	__typeof__(fy_event_start_mark) *event_start_mark;
	__typeof__(fy_event_get_token) *event_get_token;
	__typeof__(fy_event_get_anchor_token) *event_get_anchor_token;
	__typeof__(fy_event_get_tag_token) *event_get_tag_token;
	__typeof__(fy_token_start_mark) *token_start_mark;
	__typeof__(fy_token_end_mark) *token_end_mark;
	__typeof__(fy_token_get_text) *token_get_text;
	__typeof__(fy_token_scalar_style) *token_scalar_style;
};

/* The functions, loaded from libfyaml.so.0 by the first call and kept for the process. NULL with
 * err set (ENOPKG) when the library or one of its functions is missing. */
const struct fyaml *fyaml_get(struct ql_error *err);

/* Loads the functions from `soname` into *ret (fyaml_get's work; the tests name other files).
 * The library stays loaded on success. */
int fyaml_open(const char *soname, struct fyaml *ret, struct ql_error *err);
