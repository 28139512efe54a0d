/* json-c on first use (see jsonc.h). */
#include "jsonc.h"

#ifndef QL_JSONC_LINKED
#include <json-c/json.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dynload.h"
#include "macro.h"

/* Every json-c function the launcher calls: X(return type, name, parameters, arguments), and V
 * for the ones returning void. A type that differs from json-c's header fails the build. */
#define JSONC_FUNCTIONS(X, V)                                                                      \
	X(struct json_object *, json_object_array_get_idx,                                         \
	  (const struct json_object *obj, size_t idx), (obj, idx))                                 \
	X(int, json_object_array_add, (struct json_object * obj, struct json_object * val),        \
	  (obj, val))                                                                              \
	X(size_t, json_object_array_length, (const struct json_object *obj), (obj))                \
	X(struct json_object *, json_object_get, (struct json_object * obj), (obj))                \
	X(int64_t, json_object_get_int64, (const struct json_object *obj), (obj))                  \
	X(const char *, json_object_get_string, (struct json_object * obj), (obj))                 \
	X(int, json_object_get_string_len, (const struct json_object *obj), (obj))                 \
	X(int, json_object_is_type, (const struct json_object *obj, enum json_type type),          \
	  (obj, type))                                                                             \
	X(struct json_object *, json_object_new_array, (void), ())                                 \
	X(struct json_object *, json_object_new_boolean, (json_bool b), (b))                       \
	X(struct json_object *, json_object_new_int, (int32_t i), (i))                             \
	X(struct json_object *, json_object_new_int64, (int64_t i), (i))                           \
	X(struct json_object *, json_object_new_object, (void), ())                                \
	X(struct json_object *, json_object_new_string, (const char *s), (s))                      \
	X(struct json_object *, json_object_new_string_len, (const char *s, const int len),        \
	  (s, len))                                                                                \
	X(int, json_object_object_add,                                                             \
	  (struct json_object * obj, const char *key, struct json_object *val), (obj, key, val))   \
	X(struct json_object *, json_object_object_get,                                            \
	  (const struct json_object *obj, const char *key), (obj, key))                            \
	X(json_bool, json_object_object_get_ex,                                                    \
	  (const struct json_object *obj, const char *key, struct json_object **value),            \
	  (obj, key, value))                                                                       \
	X(int, json_object_put, (struct json_object * obj), (obj))                                 \
	X(const char *, json_object_to_json_string_ext, (struct json_object * obj, int flags),     \
	  (obj, flags))                                                                            \
	X(const char *, json_tokener_error_desc, (enum json_tokener_error jerr), (jerr))           \
	V(json_tokener_free, (struct json_tokener * tok), (tok))                                   \
	X(enum json_tokener_error, json_tokener_get_error, (struct json_tokener * tok), (tok))     \
	X(size_t, json_tokener_get_parse_end, (struct json_tokener * tok), (tok))                  \
	X(struct json_tokener *, json_tokener_new, (void), ())                                     \
	X(struct json_object *, json_tokener_parse, (const char *str), (str))                      \
	X(struct json_object *, json_tokener_parse_ex,                                             \
	  (struct json_tokener * tok, const char *str, int len), (tok, str, len))                  \
	V(json_tokener_reset, (struct json_tokener * tok), (tok))                                  \
	V(json_tokener_set_flags, (struct json_tokener * tok, int flags), (tok, flags))

#define POINTER(ret, name, params, args) __typeof__(name) *name;
#define POINTER_V(name, params, args) __typeof__(name) *name;
static struct {
	JSONC_FUNCTIONS(POINTER, POINTER_V)
} fns;

#define NAME(ret, name, params, args) #name,
#define NAME_V(name, params, args) #name,
static const char *const names[] = {JSONC_FUNCTIONS(NAME, NAME_V)};

typedef void (*fn_ptr)(void);
_Static_assert(sizeof(fns) == ELEMENTSOF(names) * sizeof(fn_ptr),
	       "the pointers and names[] list the same functions");

static bool loaded;

int jsonc_load(struct ql_error *err)
{
	if (loaded)
		return 0;
	void *syms[ELEMENTSOF(names)];
	int r = dynload("libjson-c.so.5", "qemu-launcher needs json-c (libjson-c5)", names,
			ELEMENTSOF(names), syms, err);
	if (r < 0)
		return r;
	/* POSIX: a dlsym result converts to a function pointer */
	fn_ptr ptrs[ELEMENTSOF(names)];
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		ptrs[i] = (fn_ptr)syms[i];
	memcpy(&fns, ptrs, sizeof(fns));
	loaded = true;
	return 0;
}

/* A json-c call before any jsonc_load(): load now. Its failure has no caller to report to:
 * jsonc_load() belongs where JSON starts, so reaching this without json-c is a missing call
 * there, and ends the process as a failed assertion would. */
static void ensure_loaded(void)
{
	if (__builtin_expect(loaded, 1))
		return;
	struct ql_error err = {0};
	if (jsonc_load(&err) < 0)
		abort();
	ql_error_clear(&err);
}

#define TRAMPOLINE(ret, name, params, args)                                                        \
	ret name params                                                                            \
	{                                                                                          \
		ensure_loaded();                                                                   \
		return fns.name args;                                                              \
	}
#define TRAMPOLINE_V(name, params, args)                                                           \
	void name params                                                                           \
	{                                                                                          \
		ensure_loaded();                                                                   \
		fns.name args;                                                                     \
	}
JSONC_FUNCTIONS(TRAMPOLINE, TRAMPOLINE_V)

#else

int jsonc_load(struct ql_error *err)
{
	(void)err;
	return 0;
}

#endif
