/* The generic YAML tree (see yaml_tree.h): libfyaml events -> nodes that keep the text as written
 * and their positions, with the input bounds enforced on the way. */
#include "yaml_tree.h"
#include "yaml_tree_private.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fyaml.h"
#include "macro.h"
#include "populate.h"
#include "utf8.h"

/* ------------------------------------------------------------------------------------------ */
/* The node tree. We build our own instead of using fy_document so that every scalar keeps the
 * exact text the user wrote (never a resolved type), every node keeps its position, and the
 * limits below are enforced while the events stream in. */

/* A new chunk for an allocation of `size` that did not fit. The first chunk is doc->chunk_size
 * when set (16 KiB otherwise); the next ones double up to 1 MiB so a big document needs few of
 * them. calloc: zeroed memory, mapped on its own from 128 KiB. Populated at once: the fast
 * reader sizes its one chunk to what the tree will use (93-95 % of it for 1,000 and 10,000
 * entries), and a page populated costs half what its fault would (populate.h). */
struct yaml_chunk *yaml_doc_grow(struct yaml_doc *doc, size_t size)
{
	if (!doc->chunk_size)
		doc->chunk_size = 16 * 1024;
	else if (doc->chunks && doc->chunk_size < 1024 * 1024)
		doc->chunk_size *= 2;
	size_t cap = size > doc->chunk_size ? size : doc->chunk_size;
	struct yaml_chunk *ch = calloc(1, sizeof(*ch) + cap);
	if (!ch)
		return NULL;
	populate(ch, sizeof(*ch) + cap);
	ch->end = cap;
	ch->next = doc->chunks;
	doc->chunks = ch;
	return ch;
}

void *yaml_doc_alloc(struct yaml_doc *doc, size_t size)
{
	return yaml_doc_take(doc, size);
}

void yaml_doc_free(struct yaml_doc *doc)
{
	if (!doc)
		return;
	for (struct yaml_chunk *ch = doc->chunks, *next; ch; ch = next) {
		next = ch->next;
		free(ch);
	}
	free(doc);
}

const char *ynode_kind(const struct ynode *n)
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

int yaml_error_at(struct ql_error *err, const char *path, struct ql_mark m, const char *fmt,
		  va_list ap)
{
	_cleanup_free_ char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0) {
		ql_error_set(err, ENOMEM, "%s: out of memory", path);
		return -ENOMEM;
	}
	return ql_error_set(err, EINVAL, "%s:%u:%u: %s", path, m.line ? m.line : 1,
			    m.column ? m.column : 1, msg);
}

struct ctx {
	const char *path;
	struct ql_error *err;
	const struct yaml_tree_limits *lim;
};

_printf_(3, 4) static int fail(struct ctx *c, struct ql_mark m, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = yaml_error_at(c->err, c->path, m, fmt, ap);
	va_end(ap);
	return r;
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

/* Tab, line feed, carriage return and printable ASCII: YAML's c-printable below 0x80. */
static inline bool yaml_printable_ascii(unsigned char ch)
{
	return (ch >= 0x20 && ch < 0x7f) || ch == '\t' || ch == '\n' || ch == '\r';
}

static int control_character(struct ctx *c, const char *text, size_t pos, unsigned cp)
{
	return fail(c, mark_at(text, pos),
		    "control character U+%04X in definition (YAML allows only tab, line feed and "
		    "carriage return; in a double-quoted string write it as \"\\x%02x\")",
		    cp, cp);
}

static int check_bytes(struct ctx *c, const char *text, size_t len)
{
	if (len > c->lim->max_bytes)
		return fail(c, (struct ql_mark){1, 1}, "definition is larger than %zu bytes",
			    c->lim->max_bytes);
	/* Nearly every definition is printable ASCII: settled by one pass the compiler turns into
	 * vector instructions, before the loop below that finds and explains a problem. */
	unsigned char outside = 0;
	for (size_t i = 0; i < len; i++)
		outside |= !yaml_printable_ascii((unsigned char)text[i]);
	if (!outside)
		return 0;
	for (size_t i = 0; i < len;) {
		unsigned char ch = (unsigned char)text[i];
		if (yaml_printable_ascii(ch)) {
			i++;
			continue;
		}
		if (ch == '\0')
			return fail(c, mark_at(text, i), "NUL byte in definition");
		/* YAML allows no other control character; raw, it would reach qemu's command line
		 * (and the terminal of whoever reads --dry-run) unseen */
		if (ch < 0x80)
			return control_character(c, text, i, ch);
		size_t n = utf8_char_len((const unsigned char *)text + i, len - i);
		if (n == 0)
			return fail(c, mark_at(text, i), "invalid UTF-8 (byte 0x%02x)",
				    (unsigned char)text[i]);
		/* C1 controls too, but NEL (U+0085), which YAML counts as a line break */
		if (utf8_is_c1((const unsigned char *)text + i, n) &&
		    (unsigned char)text[i + 1] != 0x85)
			return control_character(c, text, i, (unsigned char)text[i + 1]);
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
	const struct fyaml *fy;
	char *first; /* first "[ERR]" line libfyaml logged (token errors are collected) */
};

/* The first error libfyaml collected for a token (build_tree sets collect mode), or NULL. */
static const struct fy_diag_error *first_collected(const struct fyaml *fy, struct fy_diag *diag)
{
	void *it = NULL;
	const struct fy_diag_error *e;
	while ((e = fy->diag_errors_iterate(diag, &it)))
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
	    first_collected(dc->fy, diag))
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
static int fail_syntax(struct ctx *c, const struct fyaml *fy, struct fy_diag *diag,
		       const char *logged, struct ql_mark fallback)
{
	if (logged)
		return fail_syntax_err(c, logged, strstr(logged, ": [ERR]: "), fallback);
	const struct fy_diag_error *e = first_collected(fy, diag);
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

int yaml_node_append(struct yaml_doc *doc, struct ynode *parent, struct ynode *child)
{
	uint32_t n = parent->n_items;
	if (n == UINT32_MAX)
		return -ENOMEM;
	/* full at 0, 4, 8, 16, ...: grow to the next power of two (the old array stays in the
	 * chunk: at most as much again as the final ones) */
	if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
		size_t cap = n ? (size_t)n * 2 : 4;
		struct ynode **items = yaml_doc_alloc(doc, cap * sizeof(*items));
		if (!items)
			return -ENOMEM;
		if (n)
			memcpy(items, parent->items, n * sizeof(*items));
		parent->items = items;
	}
	parent->items[parent->n_items++] = child;
	return 0;
}

/* A single-quoted scalar decoded from its source text (`''` -> `'`, lines folded as YAML 1.2
 * says). libfyaml 0.7.12 (Debian 12) garbles adjacent escapes (`'a''''b'` gives `a'''` instead
 * of `a''b`) and leaks memory doing it, so these scalars never go through fy_token_get_text().
 * `raw` is what lies between the quotes. The result is never longer than the input. */
static char *decode_single_quoted(struct yaml_doc *doc, const char *raw, size_t len,
				  size_t *ret_len)
{
	char *out = yaml_doc_text(doc, len);
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
	struct yaml_doc *doc;
	struct ynode **stack; /* max_depth + 1 entries */
	size_t depth;
	size_t nodes;
	unsigned documents;
	struct ql_mark last; /* position of the last node seen, for nodes libfyaml gives none */
	const struct fyaml *fy;
};

/* Anchors and aliases are refused outright rather than expanded with a bound: a definition has
 * no use for them, and refusing makes alias bombs ("billion laughs") impossible by design. Tags
 * are refused too: values are passed verbatim, so a tag could only mislead. */
static int builder_add(struct builder *b, struct fy_event *ev, struct ynode **ret)
{
	struct ctx *c = b->c;
	struct ql_mark m = to_mark(b->fy->event_start_mark(ev));
	struct fy_token *anchor = b->fy->event_get_anchor_token(ev);
	struct fy_token *tag = b->fy->event_get_tag_token(ev);

	if (m.line == 0)
		m = b->last;
	if (anchor) {
		struct ql_mark am = to_mark(b->fy->token_start_mark(anchor));
		if (am.column > 1)
			am.column--; /* the token starts after the `&` */
		return fail(c, am.line ? am : m, "anchors (&name) and aliases are not supported");
	}
	if (tag) {
		struct ql_mark tm = to_mark(b->fy->token_start_mark(tag));
		return fail(c, tm.line ? tm : m,
			    "tags (!tag) are not supported; values are always taken as written");
	}
	if (++b->nodes > c->lim->max_nodes)
		return fail(c, m, "definition has more than %zu nodes", c->lim->max_nodes);

	struct ynode *parent = b->depth ? b->stack[b->depth - 1] : NULL;
	if (!parent && b->doc->root)
		return fail(c, m, "only one YAML document is allowed");
	if (parent && parent->type == YN_MAP && parent->n_items % 2 == 0 && ev->type != FYET_SCALAR)
		return fail(c, m, "mapping keys must be scalars");

	struct ynode *n = yaml_doc_alloc(b->doc, sizeof(*n));
	if (!n)
		return oom(c);
	n->mark = m;
	if (parent) {
		if (yaml_node_append(b->doc, parent, n) < 0)
			return oom(c);
	} else {
		b->doc->root = n;
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
			struct ql_mark m = to_mark(b->fy->event_start_mark(ev));
			return fail(c, m.line ? m : b->last, "only one YAML document is allowed");
		}
		return 0;
	case FYET_ALIAS: {
		struct ql_mark m = to_mark(b->fy->event_start_mark(ev));
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
		struct fy_token *t = b->fy->event_get_token(ev);
		const struct fy_mark *ts = t ? b->fy->token_start_mark(t) : NULL;
		const struct fy_mark *te = t ? b->fy->token_end_mark(t) : NULL;
		size_t len = 0;
		const char *text = "";
		if (t && b->fy->token_scalar_style(t) == FYSS_SINGLE_QUOTED && ts && te &&
		    ts->input_pos <= te->input_pos && te->input_pos <= b->src_len) {
			n->text = decode_single_quoted(b->doc, b->src + ts->input_pos,
						       te->input_pos - ts->input_pos, &len);
			text = n->text;
		} else {
			text = t ? b->fy->token_get_text(t, &len) : "";
			if (text && (n->text = yaml_doc_text(b->doc, len)))
				memcpy(n->text, text, len);
		}
		if (!text || !n->text)
			return oom(c);
		n->len = len;
		n->plain = !t || b->fy->token_scalar_style(t) == FYSS_PLAIN;
		/* libfyaml places a quoted scalar at its first character; point at the quote */
		if (t && n->mark.column > 1 &&
		    (b->fy->token_scalar_style(t) == FYSS_SINGLE_QUOTED ||
		     b->fy->token_scalar_style(t) == FYSS_DOUBLE_QUOTED))
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
		if (b->depth >= c->lim->max_depth)
			return fail(c, n->mark.line ? n->mark : b->last,
				    "nesting deeper than %u levels", c->lim->max_depth);
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
	if (n->type == YN_MAP && ynode_count(n) > 1 && ynode_count(n) <= 8) {
		/* Small mappings (nearly all of them): pairwise, no allocation. The first key with
		 * an earlier equal one is the earliest duplicate, as in the sorted search below. */
		size_t cnt = ynode_count(n);
		for (size_t j = 1; j < cnt; j++) {
			const struct ynode *k = map_key(n, j), *first = NULL;
			for (size_t i = 0; i < j && !first; i++) {
				const struct ynode *e = map_key(n, i);
				if (e->len == k->len && memcmp(e->text, k->text, k->len) == 0)
					first = e;
			}
			if (first) {
				if (!ds->key || ql_mark_before(k->mark, ds->key->mark)) {
					ds->key = k;
					ds->first = first;
				}
				break;
			}
		}
	} else if (n->type == YN_MAP && ynode_count(n) > 1) {
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
			if (!ds->key || ql_mark_before(dup->mark, ds->key->mark)) {
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

static int check_duplicates(struct ctx *c, const struct yaml_doc *doc)
{
	struct dup_search ds = {0};
	if (doc->root && find_duplicates(doc->root, &ds) < 0)
		return oom(c);
	if (ds.key) {
		struct ql_shown s;
		return fail(c, ds.key->mark, "duplicate key `%s` (first at line %u)",
			    ql_show(&s, ds.key->text), ds.first->mark.line);
	}
	return 0;
}

static int build_tree(struct ctx *c, const char *text, size_t len, struct yaml_doc *doc)
{
	struct ql_error e = {0};
	const struct fyaml *fy = fyaml_get(&e);
	if (!fy) {
		int r = ql_error_set(c->err, e.code, "%s: %s", c->path, e.msg);
		ql_error_clear(&e);
		return r;
	}
	struct diag_capture dc = {.fy = fy};
	struct fy_diag_cfg dcfg;
	fy->diag_cfg_default(&dcfg);
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
	struct fy_diag *diag = fy->diag_create(&dcfg);
	if (!diag)
		return oom(c);
	/* Collected, an error is not displayed: libfyaml 0.7.12 underlines the token with `~`
	 * into a buffer sized for 80 columns, so a long (tab-expanded) line overflows its stack
	 * (the fuzz crash in fuzz/corpus/definition/crash-libfyaml-tilde-overflow.yml). */
	fy->diag_set_collect_errors(diag, true);

	struct fy_parse_cfg pcfg = {
	    .flags = FYPCF_DEFAULT_VERSION_1_2 | FYPCF_JSON_NONE | FYPCF_DISABLE_MMAP_OPT,
	    .diag = diag,
	};
	struct fy_parser *fyp = fy->parser_create(&pcfg);
	if (!fyp) {
		fy->diag_destroy(diag);
		return oom(c);
	}

	_cleanup_free_ struct ynode **stack = calloc(c->lim->max_depth + 1, sizeof(*stack));
	if (!stack) {
		fy->parser_destroy(fyp);
		fy->diag_destroy(diag);
		return oom(c);
	}
	struct builder b = {.c = c,
			    .src = text,
			    .src_len = len,
			    .doc = doc,
			    .stack = stack,
			    .last = {1, 1},
			    .fy = fy};
	int r = fy->parser_set_string(fyp, text, len) < 0 ? oom(c) : 0;
	while (r == 0) {
		struct fy_event *ev = fy->parser_parse(fyp);
		if (!ev) {
			if (fy->parser_get_stream_error(fyp))
				r = fail_syntax(c, fy, diag, dc.first, b.last);
			break;
		}
		r = builder_event(&b, ev);
		fy->parser_event_free(fyp, ev);
	}
	fy->parser_destroy(fyp);
	fy->diag_destroy(diag);
	free(dc.first);

	return r == 0 ? check_duplicates(c, doc) : r;
}

int yaml_tree_parse_with(enum yaml_reader reader, const char *path, const char *text, size_t len,
			 const struct yaml_tree_limits *limits, struct yaml_doc **ret,
			 struct ql_error *err)
{
	struct ctx c = {.path = path, .err = err, .lim = limits};
	int r = check_bytes(&c, text, len);
	if (r < 0)
		return r;
	struct yaml_doc *doc = calloc(1, sizeof(*doc));
	if (!doc)
		return oom(&c);
	r = 0;
	if (reader != YAML_READER_LIBFYAML) {
		/* The fast reader's tree takes about 6 bytes per byte of text (bench/parse.sh):
		 * one chunk, sized for it, instead of a series of doubling ones. A chunk this size
		 * is mapped on its own, so the pages it does not use are never touched. A small
		 * one comes from the heap, zeroed page by page: sized to the text too (2.7 KiB of
		 * a 334-byte definition with its options), not 16 KiB of which 12 were only
		 * faulted in to be zeroed. */
		doc->chunk_size = len * 8 + (len < 2048 ? 2048 : 0);
		r = yaml_fast_parse(text, len, limits, doc);
		if (r == 0 && reader == YAML_READER_FAST)
			r = -ENOTSUP;
		if (r == 0) { /* given up: libfyaml reads it all again, on a fresh document */
			yaml_doc_free(doc);
			doc = calloc(1, sizeof(*doc));
			if (!doc)
				return oom(&c);
		}
	}
	if (r == 0)
		r = build_tree(&c, text, len, doc); /* and the duplicate key search */
	else if (r == 1)
		r = 0; /* the fast reader gives up on duplicate keys */
	else if (r == -ENOMEM)
		r = oom(&c);
	if (r < 0) {
		yaml_doc_free(doc);
		return r;
	}
	*ret = doc;
	return 0;
}

int yaml_tree_parse(const char *path, const char *text, size_t len,
		    const struct yaml_tree_limits *limits, struct yaml_doc **ret,
		    struct ql_error *err)
{
	return yaml_tree_parse_with(YAML_READER_AUTO, path, text, len, limits, ret, err);
}
