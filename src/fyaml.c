/* libfyaml on first use (see fyaml.h). */
#include "fyaml.h"

#include <stdbool.h>
#include <string.h>

#include "dynload.h"
#include "macro.h"

/* In struct fyaml's order: fyaml_open fills the struct as an array of function pointers. */
static const char *const names[] = {
    "fy_diag_cfg_default",    "fy_diag_create",
    "fy_diag_destroy",	      "fy_diag_set_collect_errors",
    "fy_diag_errors_iterate", "fy_parser_create",
    "fy_parser_destroy",      "fy_parser_set_string",
    "fy_parser_parse",	      "fy_parser_get_stream_error",
    "fy_parser_event_free",   "fy_event_start_mark",
    "fy_event_get_token",     "fy_event_get_anchor_token",
    "fy_event_get_tag_token", "fy_token_start_mark",
    "fy_token_end_mark",      "fy_token_get_text",
    "fy_token_scalar_style",
};
typedef void (*fn_ptr)(void);
_Static_assert(sizeof(struct fyaml) == sizeof(names) / sizeof(names[0]) * sizeof(fn_ptr),
	       "struct fyaml and names[] list the same functions");

int fyaml_open(const char *soname, struct fyaml *ret, struct ql_error *err)
{
	void *syms[ELEMENTSOF(names)];
	int r =
	    dynload(soname, "this definition needs libfyaml", names, ELEMENTSOF(names), syms, err);
	if (r < 0)
		return r;
	fn_ptr fns[ELEMENTSOF(names)];
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		fns[i] = (fn_ptr)syms[i]; /* POSIX: a dlsym result converts to a function pointer */
	memcpy(ret, fns, sizeof(*ret));
	return 0;
}

#ifdef QL_FYAML_LINKED
const struct fyaml *fyaml_get(struct ql_error *err)
{
	static const struct fyaml linked = {
	    .diag_cfg_default = fy_diag_cfg_default,
	    .diag_create = fy_diag_create,
	    .diag_destroy = fy_diag_destroy,
	    .diag_set_collect_errors = fy_diag_set_collect_errors,
	    .diag_errors_iterate = fy_diag_errors_iterate,
	    .parser_create = fy_parser_create,
	    .parser_destroy = fy_parser_destroy,
	    .parser_set_string = fy_parser_set_string,
	    .parser_parse = fy_parser_parse,
	    .parser_get_stream_error = fy_parser_get_stream_error,
	    .parser_event_free = fy_parser_event_free,
	    .event_start_mark = fy_event_start_mark,
	    .event_get_token = fy_event_get_token,
	    .event_get_anchor_token = fy_event_get_anchor_token,
	    .event_get_tag_token = fy_event_get_tag_token,
	    .token_start_mark = fy_token_start_mark,
	    .token_end_mark = fy_token_end_mark,
	    .token_get_text = fy_token_get_text,
	    .token_scalar_style = fy_token_scalar_style,
	};
	(void)err;
	return &linked;
}
#else
const struct fyaml *fyaml_get(struct ql_error *err)
{
	static struct fyaml loaded;
	static bool ok;
	if (!ok && fyaml_open("libfyaml.so.0", &loaded, err) == 0)
		ok = true;
	return ok ? &loaded : NULL;
}
#endif
