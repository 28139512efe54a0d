/* Loads NAME.yml: YAML events (libfyaml) -> a small private node tree -> a strictly validated
 * struct definition. The only module that includes <libfyaml.h>. */
#include "definition.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <libfyaml.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

/* ------------------------------------------------------------------------------------------ */
/* The node tree. We build our own instead of using fy_document so that every scalar keeps the
 * exact text the user wrote (never a resolved type), every node keeps its position, and the
 * limits below are enforced while the events stream in. */

enum ynode_type { YN_SCALAR, YN_SEQ, YN_MAP };

struct ynode {
	enum ynode_type type;
	struct ql_mark mark;
	char *text; /* scalar text after YAML unquoting, NUL-terminated (no NUL inside) */
	size_t len;
	bool plain; /* plain (unquoted, non-block) scalar */
	bool null;  /* nothing written at all (`key:`); an explicit '' is not null */
	/* sequence items, or mapping keys and values alternating (key, value, key, value...) */
	struct ynode **items;
	size_t n_items, cap_items;
};

static void ynode_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n_items; i++)
		ynode_free(n->items[i]);
	free(n->items);
	free(n->text);
	free(n);
}

static size_t ynode_count(const struct ynode *n)
{
	return n->type == YN_MAP ? n->n_items / 2 : n->n_items;
}

static struct ynode *map_key(const struct ynode *n, size_t i)
{
	return n->items[2 * i];
}

static struct ynode *map_value(const struct ynode *n, size_t i)
{
	return n->items[2 * i + 1];
}

static const char *ynode_kind(const struct ynode *n)
{
	switch (n->type) {
	case YN_SEQ:
		return "a sequence";
	case YN_MAP:
		return "a mapping";
	case YN_SCALAR:
		break;
	}
	return n->null ? "nothing" : "a scalar";
}

/* ------------------------------------------------------------------------------------------ */
/* Error reporting: every message is "PATH:LINE:COL: message", the first error wins. */

struct ctx {
	const char *path;
	struct ql_error *err;
	struct definition *d;
};

_printf_(3, 4) static int fail(struct ctx *c, struct ql_mark m, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0) {
		ql_error_set(c->err, ENOMEM, "%s: out of memory", c->path);
		return -ENOMEM;
	}
	return ql_error_set(c->err, EINVAL, "%s:%u:%u: %s", c->path, m.line ? m.line : 1,
			    m.column ? m.column : 1, msg);
}

static int oom(struct ctx *c)
{
	return ql_error_set(c->err, ENOMEM, "%s: out of memory", c->path);
}

/* ------------------------------------------------------------------------------------------ */
/* Input checks libfyaml does not do for us the way we want. */

static struct ql_mark mark_at(const char *text, size_t pos)
{
	struct ql_mark m = {1, 1};
	for (size_t i = 0; i < pos; i++) {
		unsigned char ch = (unsigned char)text[i];
		if (ch == '\n') {
			m.line++;
			m.column = 1;
		} else if ((ch & 0xc0) != 0x80) {
			m.column++; /* columns count characters, like libfyaml's */
		}
	}
	return m;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, <= U+10FFFF),
 * 0 if invalid. */
static size_t utf8_valid_len(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static int check_bytes(struct ctx *c, const char *text, size_t len)
{
	if (len > DEFINITION_MAX_BYTES)
		return fail(c, (struct ql_mark){1, 1}, "definition is larger than %d bytes",
			    DEFINITION_MAX_BYTES);
	for (size_t i = 0; i < len;) {
		if (text[i] == '\0')
			return fail(c, mark_at(text, i), "NUL byte in definition");
		size_t n = utf8_valid_len((const unsigned char *)text + i, len - i);
		if (n == 0)
			return fail(c, mark_at(text, i), "invalid UTF-8 (byte 0x%02x)",
				    (unsigned char)text[i]);
		/* Allowed only as the very first character. Elsewhere it is invisible and would
		 * silently become part of a key or value (`- nographic` turning into a scalar). */
		if (i > 0 && n == 3 && memcmp(text + i, "\xef\xbb\xbf", 3) == 0)
			return fail(c, mark_at(text, i),
				    "byte order mark (U+FEFF) inside the definition (only allowed "
				    "at its very start)");
		i += n;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Events -> tree. */

struct diag_capture {
	char *first; /* first "[ERR]" line libfyaml logged (token errors are collected) */
};

/* The first error libfyaml collected for a token (build_tree sets collect mode), or NULL. */
static const struct fy_diag_error *first_collected(struct fy_diag *diag)
{
	void *it = NULL;
	const struct fy_diag_error *e;
	while ((e = fy_diag_errors_iterate(diag, &it)))
		if (e->type >= FYET_ERROR)
			return e;
	return NULL;
}

static void diag_output(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
	struct diag_capture *dc = user;
	/* Errors tied to a token are collected (see build_tree); the few that are not (e.g.
	 * `%YAML 2.0`) still come here as "<LINE: COL0>: [ERR]: MESSAGE". Keep the first error,
	 * whichever way it came. */
	if (dc->first || !buf || len == 0 || !memmem(buf, len, ": [ERR]: ", 9) ||
	    first_collected(diag))
		return;
	dc->first = strndup(buf, len);
}

/* "<  2: 0>: [ERR]: MESSAGE": 1-based line, 0-based column. */
static int fail_syntax_err(struct ctx *c, const char *diag, const char *e, struct ql_mark fallback)
{
	const char *msg = e + 9;
	unsigned line = 0, col0 = 0;
	struct ql_mark m = fallback;
	if (sscanf(diag, "<%u:%u>", &line, &col0) == 2 && line > 0 && line < UINT_MAX &&
	    col0 < UINT_MAX - 1)
		m = (struct ql_mark){line, col0 + 1};
	return fail(c, m, "invalid YAML: %.*s", (int)strcspn(msg, "\n"), msg);
}

/* The parse failed: libfyaml's first error, at its position, as our message. */
static int fail_syntax(struct ctx *c, struct fy_diag *diag, const char *logged,
		       struct ql_mark fallback)
{
	if (logged)
		return fail_syntax_err(c, logged, strstr(logged, ": [ERR]: "), fallback);
	const struct fy_diag_error *e = first_collected(diag);
	if (!e || !e->msg)
		return fail(c, fallback, "invalid YAML");
	struct ql_mark m = fallback;
	if (e->line > 0 && e->column > 0)
		m = (struct ql_mark){(unsigned)e->line, (unsigned)e->column};
	return fail(c, m, "invalid YAML: %.*s", (int)strcspn(e->msg, "\n"), e->msg);
}

static struct ql_mark to_mark(const struct fy_mark *fm)
{
	if (!fm)
		return (struct ql_mark){0, 0};
	return (struct ql_mark){(unsigned)fm->line + 1, (unsigned)fm->column + 1};
}

static int ynode_append(struct ynode *parent, struct ynode *child)
{
	if (parent->n_items == parent->cap_items) {
		size_t cap = parent->cap_items ? parent->cap_items * 2 : 4;
		struct ynode **items = reallocarray(parent->items, cap, sizeof(*items));
		if (!items)
			return -ENOMEM;
		parent->items = items;
		parent->cap_items = cap;
	}
	parent->items[parent->n_items++] = child;
	return 0;
}

/* A single-quoted scalar decoded from its source text (`''` -> `'`, lines folded as YAML 1.2
 * says). libfyaml 0.7.12 (Debian 12) garbles adjacent escapes (`'a''''b'` gives `a'''` instead
 * of `a''b`) and leaks memory doing it, so these scalars never go through fy_token_get_text().
 * `raw` is what lies between the quotes. The result is never longer than the input. */
static char *decode_single_quoted(const char *raw, size_t len, size_t *ret_len)
{
	char *out = malloc(len + 1);
	if (!out)
		return NULL;
	size_t o = 0, i = 0;
	for (bool first = true;; first = false) {
		size_t end = i;
		while (end < len && raw[end] != '\n' && raw[end] != '\r')
			end++;
		size_t b = i, e = end;
		if (!first)
			while (b < e && (raw[b] == ' ' || raw[b] == '\t'))
				b++;
		if (end < len)
			while (e > b && (raw[e - 1] == ' ' || raw[e - 1] == '\t'))
				e--;
		for (size_t k = b; k < e; k++) {
			out[o++] = raw[k];
			if (raw[k] == '\'' && k + 1 < e && raw[k + 1] == '\'')
				k++;
		}
		if (end == len)
			break;
		/* A line break folds into a space; each following empty line gives one `\n`. */
		i = end + (raw[end] == '\r' && end + 1 < len && raw[end + 1] == '\n' ? 2 : 1);
		size_t empty = 0;
		for (;;) {
			size_t k = i;
			while (k < len && (raw[k] == ' ' || raw[k] == '\t'))
				k++;
			if (k == len || (raw[k] != '\n' && raw[k] != '\r'))
				break;
			empty++;
			i = k + (raw[k] == '\r' && k + 1 < len && raw[k + 1] == '\n' ? 2 : 1);
		}
		if (empty == 0)
			out[o++] = ' ';
		for (; empty > 0; empty--)
			out[o++] = '\n';
	}
	out[o] = '\0';
	*ret_len = o;
	return out;
}

struct builder {
	struct ctx *c;
	const char *src; /* the definition text, for single-quoted scalars */
	size_t src_len;
	struct ynode *root;
	struct ynode *stack[DEFINITION_MAX_DEPTH + 1];
	size_t depth;
	size_t nodes;
	unsigned documents;
	struct ql_mark last; /* position of the last node seen, for nodes libfyaml gives none */
};

/* Anchors and aliases are refused outright rather than expanded with a bound: a definition has
 * no use for them, and refusing makes alias bombs ("billion laughs") impossible by design. Tags
 * are refused too: values are passed verbatim, so a tag could only mislead. */
static int builder_add(struct builder *b, struct fy_event *ev, struct ynode **ret)
{
	struct ctx *c = b->c;
	struct ql_mark m = to_mark(fy_event_start_mark(ev));
	struct fy_token *anchor = fy_event_get_anchor_token(ev);
	struct fy_token *tag = fy_event_get_tag_token(ev);

	if (m.line == 0)
		m = b->last;
	if (anchor) {
		struct ql_mark am = to_mark(fy_token_start_mark(anchor));
		if (am.column > 1)
			am.column--; /* the token starts after the `&` */
		return fail(c, am.line ? am : m, "anchors (&name) and aliases are not supported");
	}
	if (tag) {
		struct ql_mark tm = to_mark(fy_token_start_mark(tag));
		return fail(c, tm.line ? tm : m,
			    "tags (!tag) are not supported; values are always taken as written");
	}
	if (++b->nodes > DEFINITION_MAX_NODES)
		return fail(c, m, "definition has more than %d nodes", DEFINITION_MAX_NODES);

	struct ynode *parent = b->depth ? b->stack[b->depth - 1] : NULL;
	if (!parent && b->root)
		return fail(c, m, "only one YAML document is allowed");
	if (parent && parent->type == YN_MAP && parent->n_items % 2 == 0 && ev->type != FYET_SCALAR)
		return fail(c, m, "mapping keys must be scalars");

	struct ynode *n = calloc(1, sizeof(*n));
	if (!n)
		return oom(c);
	n->mark = m;
	if (parent) {
		if (ynode_append(parent, n) < 0) {
			free(n);
			return oom(c);
		}
	} else {
		b->root = n;
	}
	*ret = n;
	return 0;
}

static int builder_event(struct builder *b, struct fy_event *ev)
{
	struct ctx *c = b->c;
	struct ynode *n;
	int r;

	switch (ev->type) {
	case FYET_DOCUMENT_START:
		if (++b->documents > 1) {
			struct ql_mark m = to_mark(fy_event_start_mark(ev));
			return fail(c, m.line ? m : b->last, "only one YAML document is allowed");
		}
		return 0;
	case FYET_ALIAS: {
		struct ql_mark m = to_mark(fy_event_start_mark(ev));
		if (m.column > 1)
			m.column--; /* the token starts after the `*` */
		return fail(c, m.line ? m : b->last,
			    "aliases (*name) and anchors are not supported");
	}
	case FYET_SCALAR: {
		r = builder_add(b, ev, &n);
		if (r < 0)
			return r;
		n->type = YN_SCALAR;
		struct fy_token *t = fy_event_get_token(ev);
		const struct fy_mark *ts = t ? fy_token_start_mark(t) : NULL;
		const struct fy_mark *te = t ? fy_token_end_mark(t) : NULL;
		size_t len = 0;
		const char *text = "";
		if (t && fy_token_scalar_style(t) == FYSS_SINGLE_QUOTED && ts && te &&
		    ts->input_pos <= te->input_pos && te->input_pos <= b->src_len) {
			n->text = decode_single_quoted(b->src + ts->input_pos,
						       te->input_pos - ts->input_pos, &len);
			text = n->text;
		} else {
			text = t ? fy_token_get_text(t, &len) : "";
			if (text)
				n->text = strndup(text, len);
		}
		if (!text || !n->text)
			return oom(c);
		n->len = len;
		n->plain = !t || fy_token_scalar_style(t) == FYSS_PLAIN;
		/* libfyaml places a quoted scalar at its first character; point at the quote */
		if (t && n->mark.column > 1 &&
		    (fy_token_scalar_style(t) == FYSS_SINGLE_QUOTED ||
		     fy_token_scalar_style(t) == FYSS_DOUBLE_QUOTED))
			n->mark.column--;
		if (memchr(text, '\0', len))
			return fail(c, n->mark, "NUL character in a value");
		n->null = n->plain && len == 0;
		/* libfyaml has no position for an absent value: use the key's */
		b->last = n->mark;
		return 0;
	}
	case FYET_SEQUENCE_START:
	case FYET_MAPPING_START: {
		bool is_map = ev->type == FYET_MAPPING_START;
		r = builder_add(b, ev, &n);
		if (r < 0)
			return r;
		n->type = is_map ? YN_MAP : YN_SEQ;
		/* An implicit mapping inside a flow sequence (`[ 2, sockets: 1 ]`) has no start
		 * token; its position is fixed up from its first key when it ends. */
		if (is_map && !ev->mapping_start.mapping_start)
			n->mark.line = 0;
		if (b->depth >= DEFINITION_MAX_DEPTH)
			return fail(c, n->mark.line ? n->mark : b->last,
				    "nesting deeper than %d levels", DEFINITION_MAX_DEPTH);
		b->stack[b->depth++] = n;
		b->last = n->mark.line ? n->mark : b->last;
		return 0;
	}
	case FYET_SEQUENCE_END:
	case FYET_MAPPING_END:
		if (b->depth == 0)
			return fail(c, b->last, "invalid YAML: unbalanced collection");
		n = b->stack[--b->depth];
		if (n->mark.line == 0)
			n->mark = n->n_items ? n->items[0]->mark : b->last;
		return 0;
	default:
		return 0;
	}
}

/* The first (in document order) duplicate key of any mapping, reported at its second
 * occurrence. */
struct dup_search {
	const struct ynode *key, *first;
};

static bool mark_before(struct ql_mark a, struct ql_mark b)
{
	return a.line < b.line || (a.line == b.line && a.column < b.column);
}

static int cmp_key_index(const void *pa, const void *pb, void *arg)
{
	const struct ynode *map = arg;
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
	const struct ynode *ka = map_key(map, a), *kb = map_key(map, b);
	size_t l = ka->len < kb->len ? ka->len : kb->len;
	int r = memcmp(ka->text, kb->text, l);
	if (r == 0 && ka->len != kb->len)
		r = ka->len < kb->len ? -1 : 1;
	if (r == 0)
		r = a < b ? -1 : (a > b ? 1 : 0);
	return r;
}

static int find_duplicates(const struct ynode *n, struct dup_search *ds)
{
	if (n->type == YN_SCALAR)
		return 0;
	if (n->type == YN_MAP && ynode_count(n) > 1) {
		size_t cnt = ynode_count(n);
		_cleanup_free_ size_t *idx = reallocarray(NULL, cnt, sizeof(size_t));
		if (!idx)
			return -ENOMEM;
		for (size_t i = 0; i < cnt; i++)
			idx[i] = i;
		qsort_r(idx, cnt, sizeof(size_t), cmp_key_index, (void *)n);
		/* equal keys are now adjacent, each group in document order: its first member is
		 * the original, the second the earliest duplicate */
		for (size_t g = 0, i; g < cnt; g = i) {
			const struct ynode *first = map_key(n, idx[g]);
			for (i = g + 1; i < cnt; i++) {
				const struct ynode *k = map_key(n, idx[i]);
				if (k->len != first->len ||
				    memcmp(k->text, first->text, k->len) != 0)
					break;
			}
			if (i - g < 2)
				continue;
			const struct ynode *dup = map_key(n, idx[g + 1]);
			if (!ds->key || mark_before(dup->mark, ds->key->mark)) {
				ds->key = dup;
				ds->first = first;
			}
		}
	}
	for (size_t i = 0; i < n->n_items; i++) {
		int r = find_duplicates(n->items[i], ds);
		if (r < 0)
			return r;
	}
	return 0;
}

static int build_tree(struct ctx *c, const char *text, size_t len, struct ynode **ret)
{
	struct diag_capture dc = {0};
	struct fy_diag_cfg dcfg;
	fy_diag_cfg_default(&dcfg);
	/* Nothing may reach stderr: libfyaml's report goes to diag_output, we rephrase it. */
	dcfg.fp = NULL;
	dcfg.output_fn = diag_output;
	dcfg.user = &dc;
	dcfg.level = FYET_ERROR;
	dcfg.colorize = false;
	dcfg.show_source = false;
	dcfg.show_position = true;
	dcfg.show_type = true;
	dcfg.show_module = false;
	dcfg.source_width = 0;
	dcfg.position_width = 0;
	dcfg.type_width = 0;
	dcfg.module_width = 0;
	struct fy_diag *diag = fy_diag_create(&dcfg);
	if (!diag)
		return oom(c);
	/* Collected, an error is not displayed: libfyaml 0.7.12 underlines the token with `~`
	 * into a buffer sized for 80 columns, so a long (tab-expanded) line overflows its stack
	 * (the fuzz crash in fuzz/corpus/definition/crash-libfyaml-tilde-overflow.yml). */
	fy_diag_set_collect_errors(diag, true);

	struct fy_parse_cfg pcfg = {
	    .flags = FYPCF_DEFAULT_VERSION_1_2 | FYPCF_JSON_NONE | FYPCF_DISABLE_MMAP_OPT,
	    .diag = diag,
	};
	struct fy_parser *fyp = fy_parser_create(&pcfg);
	if (!fyp) {
		fy_diag_destroy(diag);
		return oom(c);
	}

	struct builder b = {.c = c, .src = text, .src_len = len, .last = {1, 1}};
	int r = fy_parser_set_string(fyp, text, len) < 0 ? oom(c) : 0;
	while (r == 0) {
		struct fy_event *ev = fy_parser_parse(fyp);
		if (!ev) {
			if (fy_parser_get_stream_error(fyp))
				r = fail_syntax(c, diag, dc.first, b.last);
			break;
		}
		r = builder_event(&b, ev);
		fy_parser_event_free(fyp, ev);
	}
	fy_parser_destroy(fyp);
	fy_diag_destroy(diag);
	free(dc.first);

	if (r == 0) {
		struct dup_search ds = {0};
		if (b.root && find_duplicates(b.root, &ds) < 0)
			r = oom(c);
		else if (ds.key) {
			struct ql_shown s;
			r = fail(c, ds.key->mark, "duplicate key `%s` (first at line %u)",
				 ql_show(&s, ds.key->text), ds.first->mark.line);
		}
	}
	if (r < 0) {
		ynode_free(b.root);
		return r;
	}
	*ret = b.root;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Typed scalars. */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return SIZE_MAX;
	size_t prev[65], cur[65];
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof(prev));
	}
	return prev[lb];
}

/* The closest of `choices` (NULL-terminated) within edit distance 2, or NULL. */
static const char *near_miss(const char *word, const char *const *choices)
{
	const char *best = NULL;
	size_t best_d = 3;
	for (size_t i = 0; choices[i]; i++) {
		size_t dist = edit_distance(word, choices[i]);
		if (dist < best_d && dist < strlen(choices[i])) {
			best = choices[i];
			best_d = dist;
		}
	}
	return best;
}

static int fail_unknown(struct ctx *c, const struct ynode *key, const char *what,
			const char *const *choices)
{
	struct ql_shown s;
	const char *guess = near_miss(key->text, choices);
	if (guess)
		return fail(c, key->mark, "unknown %s `%s`; did you mean `%s`?", what,
			    ql_show(&s, key->text), guess);
	return fail(c, key->mark, "unknown %s `%s`", what, ql_show(&s, key->text));
}

static int expect_scalar(struct ctx *c, const struct ynode *v, const char *key, const char *want)
{
	if (v->type == YN_SCALAR && !v->null)
		return 0;
	return fail(c, v->mark, "`%s` must be %s, got %s", key, want, ynode_kind(v));
}

static int get_bool(struct ctx *c, const struct ynode *v, const char *key, bool *ret)
{
	int r = expect_scalar(c, v, key, "`true` or `false`");
	if (r < 0)
		return r;
	if (v->plain && streq(v->text, "true"))
		*ret = true;
	else if (v->plain && streq(v->text, "false"))
		*ret = false;
	else {
		struct ql_shown s;
		return fail(c, v->mark, "`%s` must be `true` or `false`, got %s`%s`", key,
			    v->plain ? "" : "quoted ", ql_show(&s, v->text));
	}
	return 0;
}

enum int_result { INT_OK, INT_NOT_NUMBER, INT_RANGE };

/* Strict decimal: optional '-', digits only; no '+', no 0x/0o, no '_', no spaces. */
static enum int_result parse_decimal(const char *s, bool *ret_neg, uint64_t *ret)
{
	bool neg = false;
	if (*s == '-') {
		neg = true;
		s++;
	}
	if (*s < '0' || *s > '9')
		return INT_NOT_NUMBER;
	uint64_t v = 0;
	bool overflow = false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return INT_NOT_NUMBER;
		unsigned dgt = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - dgt) / 10)
			overflow = true;
		else
			v = v * 10 + dgt;
	}
	if (overflow)
		return INT_RANGE;
	*ret_neg = neg;
	*ret = v;
	return INT_OK;
}

static int get_uint(struct ctx *c, const struct ynode *v, const char *key, uint64_t min,
		    uint64_t max, uint64_t *ret)
{
	struct ql_shown s;
	int r = expect_scalar(c, v, key, "an integer");
	if (r < 0)
		return r;
	if (!v->plain)
		return fail(c, v->mark, "`%s` must be an integer, got the quoted string `%s`", key,
			    ql_show(&s, v->text));
	if (v->text[0] == '+')
		return fail(c, v->mark, "`%s` must be a decimal integer without a leading `+`",
			    key);
	bool neg = false;
	uint64_t x = 0;
	enum int_result ir = parse_decimal(v->text, &neg, &x);
	if (ir == INT_NOT_NUMBER)
		return fail(c, v->mark, "`%s` must be a decimal integer, got `%s`", key,
			    ql_show(&s, v->text));
	if (ir == INT_RANGE || (neg && x != 0) || x < min || x > max)
		return fail(c, v->mark,
			    "`%s` must be between %" PRIu64 " and %" PRIu64 ", got `%s`", key, min,
			    max, ql_show(&s, v->text));
	*ret = x;
	return 0;
}

/* A string value: any non-null scalar, taken as written. */
static int get_string(struct ctx *c, const struct ynode *v, const char *key, char **ret)
{
	int r = expect_scalar(c, v, key, "a string");
	if (r < 0)
		return r;
	char *s = strdup(v->text);
	if (!s)
		return oom(c);
	free(*ret);
	*ret = s;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* launcher: */

static const char *const launcher_keys[] = {
    "binary",
    "clear_env",
    "env",
    "debug",
    "user",
    "group",
    "scheduler",
    "priority",
    "sched_runtime",
    "sched_deadline",
    "sched_period",
    "vcpu_pinning",
    "isolate_cpus",
    "emulator_pinning",
    "rlimit_memlock",
    "shutdown_timeout",
    NULL,
};

static const char *const top_keys[] = {"launcher", "qemu", NULL};

static const char *const sched_names[] = {
    [QL_SCHED_UNSET] = NULL,	      [QL_SCHED_OTHER] = "other", [QL_SCHED_BATCH] = "batch",
    [QL_SCHED_IDLE] = "idle",	      [QL_SCHED_FIFO] = "fifo",	  [QL_SCHED_RR] = "rr",
    [QL_SCHED_DEADLINE] = "deadline",
};

const char *ql_sched_policy_name(enum ql_sched_policy p)
{
	if ((size_t)p < ELEMENTSOF(sched_names) && sched_names[p])
		return sched_names[p];
	return "unset";
}

/* Where each scheduling key was written, for the cross-key checks. */
struct sched_marks {
	const struct ynode *scheduler_key, *scheduler, *priority_key, *priority;
	const struct ynode *runtime_key, *runtime, *deadline_key, *deadline, *period_key, *period;
};

static int valid_env_name(const char *s)
{
	return s[0] != '\0' && !strchr(s, '=');
}

static int parse_env(struct ctx *c, const struct ynode *v)
{
	struct definition *d = c->d;
	if (v->type != YN_MAP)
		return fail(c, v->mark, "`env` must be a mapping of NAME: value, got %s",
			    ynode_kind(v));
	size_t n = ynode_count(v);
	char **env = reallocarray(NULL, n + 1, sizeof(char *));
	if (!env)
		return oom(c);
	env[0] = NULL;
	strv_free(d->env);
	d->env = env;
	for (size_t i = 0; i < n; i++) {
		const struct ynode *k = map_key(v, i), *val = map_value(v, i);
		struct ql_shown s;
		if (!valid_env_name(k->text))
			return fail(c, k->mark,
				    "invalid environment variable name `%s` (must be non-empty "
				    "and without `=`)",
				    ql_show(&s, k->text));
		if (val->type != YN_SCALAR)
			return fail(c, val->mark,
				    "environment variable `%s` must be a scalar, got %s",
				    ql_show(&s, k->text), ynode_kind(val));
		if (val->null)
			return fail(c, k->mark,
				    "environment variable `%s` has no value (write `%s: ''` for an "
				    "empty one)",
				    ql_show(&s, k->text), ql_show(&s, k->text));
		if (asprintf(&env[i], "%s=%s", k->text, val->text) < 0) {
			env[i] = NULL;
			return oom(c);
		}
		env[i + 1] = NULL;
	}
	return 0;
}

/* Grows the buffer for getpwnam_r & co. up to a bound (NSS entries can be big, not unbounded). */
#define PW_BUF_MAX (1024 * 1024)

static int lookup_user(struct ctx *c, const struct ynode *v, bool by_id, uid_t uid)
{
	struct definition *d = c->d;
	struct ql_shown s;
	size_t size = 1024;
	for (;;) {
		_cleanup_free_ char *buf = malloc(size);
		if (!buf)
			return oom(c);
		struct passwd pw, *res = NULL;
		int r = by_id ? getpwuid_r(uid, &pw, buf, size, &res)
			      : getpwnam_r(v->text, &pw, buf, size, &res);
		if (r == ERANGE && size < PW_BUF_MAX) {
			size *= 2;
			continue;
		}
		if (r != 0 && !by_id)
			return fail(c, v->mark, "looking up user `%s`: %s", ql_show(&s, v->text),
				    strerror(r));
		if (!res) {
			if (by_id) /* a numeric id need not exist in passwd */
				return 0;
			return fail(c, v->mark, "unknown user `%s`", ql_show(&s, v->text));
		}
		char *name = strdup(pw.pw_name);
		if (!name)
			return oom(c);
		free(d->user_name);
		d->user_name = name;
		d->user = pw.pw_uid;
		d->user_gid = pw.pw_gid;
		return 0;
	}
}

static int lookup_group(struct ctx *c, const struct ynode *v)
{
	struct ql_shown s;
	size_t size = 1024;
	for (;;) {
		_cleanup_free_ char *buf = malloc(size);
		if (!buf)
			return oom(c);
		struct group gr, *res = NULL;
		int r = getgrnam_r(v->text, &gr, buf, size, &res);
		if (r == ERANGE && size < PW_BUF_MAX) {
			size *= 2;
			continue;
		}
		if (r != 0)
			return fail(c, v->mark, "looking up group `%s`: %s", ql_show(&s, v->text),
				    strerror(r));
		if (!res)
			return fail(c, v->mark, "unknown group `%s`", ql_show(&s, v->text));
		c->d->group = gr.gr_gid;
		return 0;
	}
}

/* A plain scalar starting like a number is an id (and must be a valid one); anything else,
 * including any quoted text, is a name. */
static bool looks_numeric(const struct ynode *v)
{
	return v->plain &&
	       (v->text[0] == '-' || v->text[0] == '+' || (v->text[0] >= '0' && v->text[0] <= '9'));
}

#define MAX_ID 4294967294ULL /* (uid_t)-1 means "unchanged" to setresuid */

static int parse_user(struct ctx *c, const struct ynode *v)
{
	struct definition *d = c->d;
	int r = expect_scalar(c, v, "user", "a user id or name");
	if (r < 0)
		return r;
	free(d->user_name);
	d->user_name = NULL;
	if (looks_numeric(v)) {
		uint64_t id;
		r = get_uint(c, v, "user", 0, MAX_ID, &id);
		if (r < 0)
			return r;
		d->user = (uid_t)id;
		d->has_user = true;
		return lookup_user(c, v, true, d->user);
	}
	d->has_user = true;
	return lookup_user(c, v, false, 0);
}

static int parse_group(struct ctx *c, const struct ynode *v)
{
	struct definition *d = c->d;
	int r = expect_scalar(c, v, "group", "a group id or name");
	if (r < 0)
		return r;
	d->has_group = true;
	if (looks_numeric(v)) {
		uint64_t id;
		r = get_uint(c, v, "group", 0, MAX_ID, &id);
		if (r < 0)
			return r;
		d->group = (gid_t)id;
		return 0;
	}
	return lookup_group(c, v);
}

static int parse_scheduler(struct ctx *c, const struct ynode *v)
{
	static const char *const choices[] = {"batch", "deadline", "fifo", "idle",
					      "other", "rr",	   NULL};
	int r = expect_scalar(c, v, "scheduler", "one of batch, deadline, fifo, idle, other, rr");
	if (r < 0)
		return r;
	for (size_t p = 1; p < ELEMENTSOF(sched_names); p++)
		if (streq(v->text, sched_names[p])) {
			c->d->scheduler = (enum ql_sched_policy)p;
			return 0;
		}
	struct ql_shown s;
	const char *guess = near_miss(v->text, choices);
	return fail(c, v->mark,
		    "unknown scheduler `%s` (one of batch, deadline, fifo, idle, other, rr)%s%s%s",
		    ql_show(&s, v->text), guess ? "; did you mean `" : "", guess ? guess : "",
		    guess ? "`?" : "");
}

static int pin_add(struct ctx *c, int socket, int core, int thread, int index,
		   const struct ynode *cpu)
{
	struct definition *d = c->d;
	uint64_t host;
	int r = get_uint(c, cpu, "vcpu_pinning", 0, CPU_LIST_MAX_CPUS - 1, &host);
	if (r < 0)
		return r;
	struct vcpu_pin *pins = reallocarray(d->pins, d->n_pins + 1, sizeof(*pins));
	if (!pins)
		return oom(c);
	d->pins = pins;
	d->pins[d->n_pins++] = (struct vcpu_pin){
	    .socket = socket,
	    .core = core,
	    .thread = thread,
	    .index = index,
	    .host_cpu = (unsigned)host,
	    .mark = cpu->mark,
	};
	return 0;
}

static int pin_level_key(struct ctx *c, const struct ynode *k, const char *level, int *ret)
{
	uint64_t x;
	/* the key message names the level, e.g. "vcpu_pinning socket" */
	char what[48];
	snprintf(what, sizeof(what), "vcpu_pinning %s", level);
	int r = get_uint(c, k, what, 0, CPU_LIST_MAX_CPUS - 1, &x);
	if (r < 0)
		return r;
	*ret = (int)x;
	return 0;
}

static int cmp_pin(const void *pa, const void *pb)
{
	const struct vcpu_pin *a = *(const struct vcpu_pin *const *)pa;
	const struct vcpu_pin *b = *(const struct vcpu_pin *const *)pb;
	if (a->socket != b->socket)
		return a->socket < b->socket ? -1 : 1;
	if (a->core != b->core)
		return a->core < b->core ? -1 : 1;
	if (a->thread != b->thread)
		return a->thread < b->thread ? -1 : 1;
	return mark_before(a->mark, b->mark) ? -1 : (mark_before(b->mark, a->mark) ? 1 : 0);
}

/* The duplicate-key check compares keys as written, but `0:` and `00:` (or `-0:`) name the
 * same vCPU: refuse any vCPU pinned twice, at its earliest repetition. */
static int check_duplicate_pins(struct ctx *c)
{
	struct definition *d = c->d;
	if (d->n_pins < 2)
		return 0;
	_cleanup_free_ const struct vcpu_pin **sorted =
	    reallocarray(NULL, d->n_pins, sizeof(*sorted));
	if (!sorted)
		return oom(c);
	for (size_t i = 0; i < d->n_pins; i++)
		sorted[i] = &d->pins[i];
	qsort(sorted, d->n_pins, sizeof(*sorted), cmp_pin);
	const struct vcpu_pin *dup = NULL, *first = NULL;
	for (size_t g = 0, i; g < d->n_pins; g = i) {
		for (i = g + 1;
		     i < d->n_pins && sorted[i]->socket == sorted[g]->socket &&
		     sorted[i]->core == sorted[g]->core && sorted[i]->thread == sorted[g]->thread;
		     i++)
			;
		/* sorted[g] is the group's first in document order, sorted[g + 1] its repetition */
		if (i - g > 1 && (!dup || mark_before(sorted[g + 1]->mark, dup->mark))) {
			dup = sorted[g + 1];
			first = sorted[g];
		}
	}
	if (dup)
		return fail(c, dup->mark,
			    "vCPU (socket %d core %d thread %d) is pinned twice (first at line %u)",
			    dup->socket, dup->core, dup->thread, first->mark.line);
	return 0;
}

static int parse_vcpu_pinning(struct ctx *c, const struct ynode *key, const struct ynode *v)
{
	struct definition *d = c->d;
	static const char *const levels[] = {"socket", "core", "thread"};
	free(d->pins);
	d->pins = NULL;
	d->n_pins = 0;
	d->pins_mark = key->mark;

	if (v->type == YN_SEQ) {
		if (v->n_items == 0)
			return fail(c, v->mark, "`vcpu_pinning` is empty");
		d->pins_flat = true;
		for (size_t i = 0; i < v->n_items; i++) {
			int r = pin_add(c, -1, -1, -1, (int)i, v->items[i]);
			if (r < 0)
				return r;
		}
		return 0;
	}
	if (v->type != YN_MAP)
		return fail(
		    c, v->mark,
		    "`vcpu_pinning` must be a mapping (socket: core: thread: host CPU) or a "
		    "list of host CPUs, got %s",
		    ynode_kind(v));
	d->pins_flat = false;

	const struct ynode *sockets = v;
	if (ynode_count(sockets) == 0)
		return fail(c, v->mark, "`vcpu_pinning` is empty");
	for (size_t si = 0; si < ynode_count(sockets); si++) {
		int ids[3];
		int r = pin_level_key(c, map_key(sockets, si), levels[0], &ids[0]);
		if (r < 0)
			return r;
		const struct ynode *cores = map_value(sockets, si);
		if (cores->type != YN_MAP || ynode_count(cores) == 0)
			return fail(c, cores->mark,
				    "vcpu_pinning socket %d must be a non-empty mapping of core: "
				    "thread: host CPU, got %s",
				    ids[0],
				    cores->type == YN_MAP ? "an empty mapping" : ynode_kind(cores));
		for (size_t ci = 0; ci < ynode_count(cores); ci++) {
			r = pin_level_key(c, map_key(cores, ci), levels[1], &ids[1]);
			if (r < 0)
				return r;
			const struct ynode *threads = map_value(cores, ci);
			if (threads->type != YN_MAP || ynode_count(threads) == 0)
				return fail(c, threads->mark,
					    "vcpu_pinning socket %d core %d must be a non-empty "
					    "mapping of thread: host CPU, got %s",
					    ids[0], ids[1],
					    threads->type == YN_MAP ? "an empty mapping"
								    : ynode_kind(threads));
			for (size_t ti = 0; ti < ynode_count(threads); ti++) {
				r = pin_level_key(c, map_key(threads, ti), levels[2], &ids[2]);
				if (r < 0)
					return r;
				r = pin_add(c, ids[0], ids[1], ids[2], -1, map_value(threads, ti));
				if (r < 0)
					return r;
			}
		}
	}
	return check_duplicate_pins(c);
}

static int parse_isolate(struct ctx *c, const struct ynode *v)
{
	int r = expect_scalar(c, v, "isolate_cpus", "`auto`, `true` or `false`");
	if (r < 0)
		return r;
	if (streq(v->text, "auto"))
		c->d->isolate_cpus = QL_ISOLATE_AUTO;
	else if (v->plain && streq(v->text, "true"))
		c->d->isolate_cpus = QL_ISOLATE_TRUE;
	else if (v->plain && streq(v->text, "false"))
		c->d->isolate_cpus = QL_ISOLATE_FALSE;
	else {
		struct ql_shown s;
		return fail(c, v->mark,
			    "`isolate_cpus` must be `auto`, `true` or `false`, got %s`%s`",
			    v->plain ? "" : "quoted ", ql_show(&s, v->text));
	}
	return 0;
}

static int parse_emulator_pinning(struct ctx *c, const struct ynode *v)
{
	struct definition *d = c->d;
	_cleanup_cpu_list_ struct cpu_list *l = NULL;
	struct ql_shown s;

	if (v->type == YN_SCALAR && !v->null) {
		struct ql_error e = {0};
		int r = cpu_list_parse(v->text, &l, &e);
		if (r < 0) {
			r = r == -ENOMEM ? oom(c)
					 : fail(c, v->mark, "`emulator_pinning`: %s",
						e.msg ? e.msg : "invalid CPU list");
			ql_error_clear(&e);
			return r;
		}
	} else if (v->type == YN_SEQ) {
		l = cpu_list_new(64);
		if (!l)
			return oom(c);
		for (size_t i = 0; i < v->n_items; i++) {
			uint64_t cpu;
			int r = get_uint(c, v->items[i], "emulator_pinning", 0,
					 CPU_LIST_MAX_CPUS - 1, &cpu);
			if (r < 0)
				return r;
			if (cpu_list_add(l, (unsigned)cpu) < 0)
				return oom(c);
		}
	} else {
		return fail(
		    c, v->mark,
		    "`emulator_pinning` must be a host CPU list (\"0-1,4\"), a CPU number or "
		    "a list of CPU numbers, got %s",
		    ynode_kind(v));
	}
	if (cpu_list_is_empty(l))
		return fail(c, v->mark, "`emulator_pinning` is empty%s%s%s",
			    v->type == YN_SCALAR ? " (`" : "",
			    v->type == YN_SCALAR ? ql_show(&s, v->text) : "",
			    v->type == YN_SCALAR ? "`)" : "");
	cpu_list_free(d->emulator_cpus);
	d->emulator_cpus = TAKE_PTR(l);
	return 0;
}

static int parse_memlock(struct ctx *c, const struct ynode *v)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {
	    {"", 0},	 {"K", 10},   {"M", 20},   {"G", 30},	{"T", 40},
	    {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40},
	};
	struct definition *d = c->d;
	struct ql_shown s;
	int r = expect_scalar(c, v, "rlimit_memlock", "`true`, `false` or a size such as `16G`");
	if (r < 0)
		return r;
	if (v->plain && streq(v->text, "true")) {
		d->memlock = QL_MEMLOCK_UNLIMITED;
		return 0;
	}
	if (v->plain && streq(v->text, "false")) {
		d->memlock = QL_MEMLOCK_UNCHANGED;
		return 0;
	}
	const char *p = v->text;
	uint64_t x = 0;
	bool overflow = false;
	if (!v->plain || *p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned dgt = (unsigned)(*p - '0');
		if (x > (UINT64_MAX - dgt) / 10)
			overflow = true;
		else
			x = x * 10 + dgt;
	}
	for (size_t i = 0; i < ELEMENTSOF(units); i++) {
		if (!streq(p, units[i].suffix))
			continue;
		if (overflow || x > (UINT64_MAX >> units[i].shift))
			return fail(c, v->mark, "`rlimit_memlock` size `%s` is too large",
				    ql_show(&s, v->text));
		if (x == 0)
			return fail(
			    c, v->mark,
			    "`rlimit_memlock` size must not be zero (write `false` to leave "
			    "the limit unchanged)");
		d->memlock = QL_MEMLOCK_BYTES;
		d->memlock_bytes = x << units[i].shift;
		return 0;
	}
bad:
	return fail(
	    c, v->mark,
	    "`rlimit_memlock` must be `true`, `false` or a size (bytes, or with K, M, G, T, "
	    "KiB, MiB, GiB, TiB), got %s`%s`",
	    v->plain ? "" : "quoted ", ql_show(&s, v->text));
}

static int check_scheduling(struct ctx *c, const struct sched_marks *sm)
{
	struct definition *d = c->d;
	const char *name = ql_sched_policy_name(d->scheduler);

	if (d->scheduler != QL_SCHED_DEADLINE) {
		const struct ynode *stray = sm->runtime_key    ? sm->runtime_key
					    : sm->deadline_key ? sm->deadline_key
							       : sm->period_key;
		/* report the first one written */
		if (sm->deadline_key && mark_before(sm->deadline_key->mark, stray->mark))
			stray = sm->deadline_key;
		if (sm->period_key && mark_before(sm->period_key->mark, stray->mark))
			stray = sm->period_key;
		if (stray)
			return fail(c, stray->mark, "`%s` is only valid with `scheduler: deadline`",
				    stray->text);
	}
	if (sm->priority_key && d->scheduler == QL_SCHED_UNSET)
		return fail(c, sm->priority_key->mark, "`priority` needs `scheduler`");

	switch (d->scheduler) {
	case QL_SCHED_UNSET:
		return 0;
	case QL_SCHED_FIFO:
	case QL_SCHED_RR:
		if (!d->has_priority)
			return fail(c, sm->scheduler->mark,
				    "scheduler `%s` needs a `priority` between 1 and 99", name);
		if (d->priority < 1 || d->priority > 99)
			return fail(c, sm->priority->mark,
				    "priority for scheduler `%s` must be between 1 and 99, got %d",
				    name, d->priority);
		return 0;
	case QL_SCHED_OTHER:
	case QL_SCHED_BATCH:
	case QL_SCHED_IDLE:
		if (d->has_priority && d->priority != 0)
			return fail(c, sm->priority->mark,
				    "scheduler `%s` only takes priority 0, got %d", name,
				    d->priority);
		d->has_priority = true;
		d->priority = 0;
		return 0;
	case QL_SCHED_DEADLINE:
		if (d->has_priority && d->priority != 0)
			return fail(c, sm->priority->mark,
				    "scheduler `deadline` takes no priority (or 0), got %d",
				    d->priority);
		d->has_priority = true;
		d->priority = 0;
		if (!sm->runtime)
			return fail(c, sm->scheduler->mark,
				    "scheduler `deadline` needs `sched_runtime` (ns)");
		if (!sm->deadline)
			return fail(c, sm->scheduler->mark,
				    "scheduler `deadline` needs `sched_deadline` (ns)");
		if (!sm->period)
			d->sched_period = d->sched_deadline;
		if (d->sched_runtime < 1024)
			return fail(c, sm->runtime->mark,
				    "`sched_runtime` must be at least 1024 ns, got %" PRIu64,
				    d->sched_runtime);
		if (d->sched_runtime > d->sched_deadline)
			return fail(c, sm->runtime->mark,
				    "`sched_runtime` (%" PRIu64
				    ") must not exceed `sched_deadline` "
				    "(%" PRIu64 ")",
				    d->sched_runtime, d->sched_deadline);
		if (d->sched_deadline > d->sched_period)
			return fail(c, sm->period->mark,
				    "`sched_deadline` (%" PRIu64 ") must not exceed `sched_period` "
				    "(%" PRIu64 ")",
				    d->sched_deadline, d->sched_period);
		return 0;
	}
	return 0;
}

static int parse_launcher(struct ctx *c, const struct ynode *key, const struct ynode *v)
{
	struct definition *d = c->d;
	struct sched_marks sm = {0};
	const struct ynode *binary = NULL;
	int r = 0;

	if (v->type != YN_MAP)
		return fail(c, v->null ? key->mark : v->mark,
			    "`launcher` must be a mapping (with at least `binary`), got %s",
			    ynode_kind(v));

	for (size_t i = 0; i < ynode_count(v) && r == 0; i++) {
		const struct ynode *k = map_key(v, i), *val = map_value(v, i);
		const char *n = k->text;
		uint64_t x = 0;

		if (streq(n, "binary")) {
			binary = val;
			r = get_string(c, val, n, &d->binary);
			if (r == 0 && d->binary[0] == '\0')
				r = fail(c, val->mark, "`binary` must not be empty");
		} else if (streq(n, "clear_env")) {
			r = get_bool(c, val, n, &d->clear_env);
		} else if (streq(n, "env")) {
			r = parse_env(c, val);
		} else if (streq(n, "debug")) {
			r = get_bool(c, val, n, &d->debug);
		} else if (streq(n, "user")) {
			r = parse_user(c, val);
		} else if (streq(n, "group")) {
			r = parse_group(c, val);
		} else if (streq(n, "scheduler")) {
			sm.scheduler_key = k;
			sm.scheduler = val;
			r = parse_scheduler(c, val);
		} else if (streq(n, "priority")) {
			sm.priority_key = k;
			sm.priority = val;
			/* the per-policy range is checked once the policy is known */
			r = get_uint(c, val, n, 0, 99, &x);
			d->has_priority = r == 0;
			d->priority = (int)x;
		} else if (streq(n, "sched_runtime")) {
			sm.runtime_key = k;
			sm.runtime = val;
			r = get_uint(c, val, n, 0, INT64_MAX, &d->sched_runtime);
		} else if (streq(n, "sched_deadline")) {
			sm.deadline_key = k;
			sm.deadline = val;
			r = get_uint(c, val, n, 0, INT64_MAX, &d->sched_deadline);
		} else if (streq(n, "sched_period")) {
			sm.period_key = k;
			sm.period = val;
			r = get_uint(c, val, n, 0, INT64_MAX, &d->sched_period);
		} else if (streq(n, "vcpu_pinning")) {
			r = parse_vcpu_pinning(c, k, val);
		} else if (streq(n, "isolate_cpus")) {
			r = parse_isolate(c, val);
		} else if (streq(n, "emulator_pinning")) {
			r = parse_emulator_pinning(c, val);
		} else if (streq(n, "rlimit_memlock")) {
			r = parse_memlock(c, val);
		} else if (streq(n, "shutdown_timeout")) {
			r = get_uint(c, val, n, 0, 86400, &x);
			d->shutdown_timeout = (unsigned)x;
		} else {
			r = fail_unknown(c, k, "launcher key", launcher_keys);
		}
	}
	if (r < 0)
		return r;
	if (!binary)
		return fail(c, key->mark, "`launcher` needs `binary` (the qemu binary to run)");
	return check_scheduling(c, &sm);
}

/* ------------------------------------------------------------------------------------------ */
/* qemu: */

static int check_option_name(struct ctx *c, const struct ynode *n)
{
	struct ql_shown s, s2;
	const char *t = n->text;
	if (t[0] == '\0')
		return fail(c, n->mark, "empty option name");
	if (t[0] == '-')
		return fail(c, n->mark,
			    "option names are written without `-`: write `%s`, not `%s`",
			    ql_show(&s, t + strspn(t, "-")), ql_show(&s2, t));
	if (strpbrk(t, " \t\n\r\v\f=,"))
		return fail(c, n->mark,
			    "invalid option name `%s` (no whitespace, `=` or `,`; put values after "
			    "`:`)",
			    ql_show(&s, t));
	return 0;
}

static int part_add(struct ctx *c, struct qemu_option *o, const char *key, const char *value)
{
	struct qemu_part *parts = reallocarray(o->parts, o->n_parts + 1, sizeof(*parts));
	if (!parts)
		return oom(c);
	o->parts = parts;
	struct qemu_part *p = &o->parts[o->n_parts];
	*p = (struct qemu_part){0};
	if ((key && !(p->key = strdup(key))) || (value && !(p->value = strdup(value)))) {
		free(p->key);
		free(p->value);
		return oom(c);
	}
	o->n_parts++;
	return 0;
}

/* A mapping of part key -> scalar value, each pair one `key=value` part. */
static int parse_part_map(struct ctx *c, struct qemu_option *o, const struct ynode *m)
{
	struct ql_shown s;
	if (ynode_count(m) == 0)
		return fail(c, m->mark, "option `%s`: empty mapping", o->name);
	for (size_t i = 0; i < ynode_count(m); i++) {
		const struct ynode *k = map_key(m, i), *v = map_value(m, i);
		if (k->text[0] == '\0' || strpbrk(k->text, "=,"))
			return fail(c, k->mark,
				    "option `%s`: invalid key `%s` (must be non-empty, without `=` "
				    "or `,`)",
				    o->name, ql_show(&s, k->text));
		if (v->type != YN_SCALAR)
			return fail(
			    c, v->mark,
			    "option `%s`: the value of `%s` must be a scalar, got %s (nested "
			    "too deeply)",
			    o->name, ql_show(&s, k->text), ynode_kind(v));
		int r = part_add(c, o, k->text, v->null ? NULL : v->text);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_option(struct ctx *c, const struct ynode *item, struct qemu_option *o)
{
	struct ql_shown s;
	const struct ynode *name, *v;
	int r;

	if (item->type == YN_SCALAR) {
		if (item->null)
			return fail(c, item->mark, "empty `qemu` entry");
		r = check_option_name(c, item);
		if (r < 0)
			return r;
		o->mark = item->mark;
		o->name = strdup(item->text);
		return o->name ? 0 : oom(c);
	}
	if (item->type == YN_SEQ)
		return fail(c, item->mark,
			    "a `qemu` entry must be `- flag` or `- option: value`, got a sequence");
	if (ynode_count(item) == 0)
		return fail(c, item->mark, "empty `qemu` entry");
	if (ynode_count(item) > 1)
		return fail(c, map_key(item, 1)->mark,
			    "one option per `qemu` entry: start a new `- %s: ...` item for `%s`",
			    ql_show(&s, map_key(item, 1)->text), ql_show(&s, map_key(item, 1)->text));

	name = map_key(item, 0);
	v = map_value(item, 0);
	r = check_option_name(c, name);
	if (r < 0)
		return r;
	o->mark = name->mark;
	o->name = strdup(name->text);
	if (!o->name)
		return oom(c);
	o->has_value = true;

	switch (v->type) {
	case YN_SCALAR:
		if (v->null)
			return fail(c, name->mark,
				    "option `%s` has no value (write `- %s` for a flag)", o->name,
				    o->name);
		o->is_scalar = true;
		o->scalar = strdup(v->text);
		return o->scalar ? 0 : oom(c);
	case YN_MAP:
		return parse_part_map(c, o, v);
	case YN_SEQ:
		break;
	}
	if (v->n_items == 0)
		return fail(c, v->mark, "option `%s` has an empty list", o->name);
	for (size_t i = 0; i < v->n_items; i++) {
		const struct ynode *p = v->items[i];
		if (p->type == YN_SEQ)
			return fail(c, p->mark,
				    "option `%s`: a part must be a scalar or `key: value`, got a "
				    "sequence (nested too deeply)",
				    o->name);
		if (p->type == YN_MAP) {
			r = parse_part_map(c, o, p);
		} else if (p->len == 0) {
			r = fail(c, p->mark, "option `%s`: empty part", o->name);
		} else {
			r = part_add(c, o, NULL, p->text);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_qemu(struct ctx *c, const struct ynode *key, const struct ynode *v)
{
	struct definition *d = c->d;
	d->qemu_mark = key->mark;
	if (v->type == YN_SCALAR && v->null)
		return 0; /* `qemu:` with nothing: no options */
	if (v->type != YN_SEQ)
		return fail(c, v->mark, "`qemu` must be a list of options, got %s", ynode_kind(v));
	d->options = calloc(v->n_items ? v->n_items : 1, sizeof(*d->options));
	if (!d->options)
		return oom(c);
	for (size_t i = 0; i < v->n_items; i++) {
		d->n_options = i + 1; /* so definition_free() sees the partly filled entry */
		int r = parse_option(c, v->items[i], &d->options[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------ */

static int parse_root(struct ctx *c, const struct ynode *root)
{
	const struct ynode *launcher = NULL;
	if (!root || (root->type == YN_SCALAR && root->null))
		return fail(c, root ? root->mark : (struct ql_mark){1, 1},
			    "definition is empty (expected `launcher:` and `qemu:`)");
	if (root->type != YN_MAP)
		return fail(c, root->mark,
			    "a definition must be a mapping with `launcher:` and `qemu:`, got %s",
			    ynode_kind(root));
	for (size_t i = 0; i < ynode_count(root); i++) {
		const struct ynode *k = map_key(root, i), *v = map_value(root, i);
		int r;
		if (streq(k->text, "launcher")) {
			launcher = k;
			r = parse_launcher(c, k, v);
		} else if (streq(k->text, "qemu")) {
			r = parse_qemu(c, k, v);
		} else {
			bool misplaced = false;
			for (size_t j = 0; launcher_keys[j]; j++)
				misplaced |= streq(k->text, launcher_keys[j]);
			if (misplaced) {
				struct ql_shown s;
				r = fail(c, k->mark,
					 "unknown key `%s`; it belongs under `launcher:`",
					 ql_show(&s, k->text));
			} else {
				r = fail_unknown(c, k, "key", top_keys);
			}
		}
		if (r < 0)
			return r;
	}
	if (!launcher)
		return fail(c, root->mark,
			    "missing `launcher:` section (it needs at least `binary`)");
	return 0;
}

int definition_parse(const char *path, const char *text, size_t len, struct definition **ret,
		     struct ql_error *err)
{
	_cleanup_definition_ struct definition *d = calloc(1, sizeof(*d));
	if (!d)
		return ql_error_set(err, ENOMEM, "%s: out of memory", path);
	struct ctx c = {.path = path, .err = err, .d = d};
	d->path = strdup(path);
	d->env = calloc(1, sizeof(char *));
	if (!d->path || !d->env)
		return oom(&c);
	d->shutdown_timeout = 60;
	d->isolate_cpus = QL_ISOLATE_AUTO;
	d->memlock = QL_MEMLOCK_UNCHANGED;

	if (!text && len == 0)
		text = "";
	if (!text)
		return ql_error_set(err, EINVAL, "%s: no definition text", path);
	int r = check_bytes(&c, text, len);
	if (r < 0)
		return r;
	struct ynode *root = NULL;
	r = build_tree(&c, text, len, &root);
	if (r < 0)
		return r;
	r = parse_root(&c, root);
	ynode_free(root);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(d);
	return 0;
}

void definition_free(struct definition *d)
{
	if (!d)
		return;
	free(d->path);
	free(d->binary);
	strv_free(d->env);
	free(d->user_name);
	free(d->pins);
	cpu_list_free(d->emulator_cpus);
	for (size_t i = 0; i < d->n_options; i++) {
		struct qemu_option *o = &d->options[i];
		free(o->name);
		free(o->scalar);
		for (size_t j = 0; j < o->n_parts; j++) {
			free(o->parts[j].key);
			free(o->parts[j].value);
		}
		free(o->parts);
	}
	free(d->options);
	free(d);
}

bool definition_wants_pinning(const struct definition *d)
{
	return d->n_pins > 0 || d->scheduler != QL_SCHED_UNSET || d->emulator_cpus;
}
