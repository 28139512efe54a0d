/* A fast reader for the YAML that definitions are written in (see yaml_tree_private.h). It
 * builds the same tree libfyaml's events give, or gives up; every error is libfyaml's to
 * report. It exists because libfyaml 0.7.12's scanner alone costs ~130 ns per event (bench/
 * RESULTS.md); tests/unit/test_yaml_tree.c checks both readers give identical trees. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "yaml_tree_private.h"

/* Implicit keys are limited to 1024 characters by YAML; longer ones are libfyaml's to judge. */
#define KEY_MAX 1024

struct fast {
	const char *s;
	size_t len;
	size_t line_start; /* offset of the current line */
	unsigned line;	   /* 1-based number of the current line */
	const struct yaml_tree_limits *lim;
	struct yaml_doc *doc;
	size_t nodes;
	unsigned depth;
	int error; /* -ENOMEM */
	/* The items of the collections being read, innermost last: a collection's array is
	 * allocated once at its exact size when it ends, instead of growing inside the chunks
	 * (which leaves every outgrown array behind). */
	struct ynode **pending;
	size_t n_pending, cap_pending;
};

/* Every function below returns true to go on, false to give up (or on -ENOMEM, in f->error). */

static char at(const struct fast *f, size_t p)
{
	return p < f->len ? f->s[p] : '\n';
}

static bool is_eol(const struct fast *f, size_t p)
{
	return p >= f->len || f->s[p] == '\n';
}

static size_t skip_spaces(const struct fast *f, size_t p)
{
	while (p < f->len && f->s[p] == ' ')
		p++;
	return p;
}

/* Only spaces and maybe a comment (after at least one space) up to the end of the line. */
static bool rest_is_empty(const struct fast *f, size_t p)
{
	size_t q = skip_spaces(f, p);
	return is_eol(f, q) || (f->s[q] == '#' && q > 0 && f->s[q - 1] == ' ');
}

static struct ql_mark mark_of(const struct fast *f, size_t p)
{
	/* The text is ASCII (checked first), so a column is a byte offset. */
	return (struct ql_mark){f->line, (unsigned)(p - f->line_start) + 1};
}

static struct ynode *new_node(struct fast *f, enum ynode_type type, struct ql_mark m)
{
	if (++f->nodes > f->lim->max_nodes)
		return NULL;
	struct ynode *n = yaml_doc_take(f->doc, sizeof(*n));
	if (!n) {
		f->error = -ENOMEM;
		return NULL;
	}
	n->type = type;
	n->mark = m;
	return n;
}

static bool push(struct fast *f, struct ynode *child)
{
	if (f->n_pending == f->cap_pending) {
		size_t cap = f->cap_pending ? f->cap_pending * 2 : 256;
		struct ynode **p = reallocarray(f->pending, cap, sizeof(*p));
		if (!p) {
			f->error = -ENOMEM;
			return false;
		}
		f->pending = p;
		f->cap_pending = cap;
	}
	f->pending[f->n_pending++] = child;
	return true;
}

static int cmp_key(const void *pa, const void *pb)
{
	const struct ynode *a = *(struct ynode *const *)pa, *b = *(struct ynode *const *)pb;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->text, b->text, a->len);
}

/* Whether a mapping's keys (items[0], items[2], ...) repeat; also true on ENOMEM. */
static bool has_duplicate_key(struct ynode *const *items, size_t n_items)
{
	size_t cnt = n_items / 2;
	if (cnt <= 8) {
		for (size_t j = 1; j < cnt; j++)
			for (size_t i = 0; i < j; i++)
				if (items[2 * i]->len == items[2 * j]->len &&
				    memcmp(items[2 * i]->text, items[2 * j]->text,
					   items[2 * j]->len) == 0)
					return true;
		return false;
	}
	struct ynode **keys = reallocarray(NULL, cnt, sizeof(*keys));
	if (!keys)
		return true;
	for (size_t i = 0; i < cnt; i++)
		keys[i] = items[2 * i];
	qsort(keys, cnt, sizeof(*keys), cmp_key);
	bool dup = false;
	for (size_t i = 1; i < cnt && !dup; i++)
		dup = cmp_key(&keys[i - 1], &keys[i]) == 0;
	free(keys);
	return dup;
}

/* The collection's items are those pushed since `base`: into one array of the document. A
 * mapping with a repeated key is given up: libfyaml's reader builds the same tree and the
 * duplicate search reports the first one, so the message has one source. Searched here, while
 * the keys are at hand, it costs no second walk over the tree. */
static bool finish(struct fast *f, struct ynode *collection, size_t base)
{
	size_t n = f->n_pending - base;
	if (collection->type == YN_MAP && has_duplicate_key(f->pending + base, n))
		return false;
	if (n) {
		collection->items = yaml_doc_take(f->doc, n * sizeof(struct ynode *));
		if (!collection->items) {
			f->error = -ENOMEM;
			return false;
		}
		memcpy(collection->items, f->pending + base, n * sizeof(struct ynode *));
	}
	collection->n_items = (uint32_t)n;
	f->n_pending = base;
	return true;
}

static bool enter(struct fast *f)
{
	if (f->depth >= f->lim->max_depth)
		return false;
	f->depth++;
	return true;
}

/* Moves to the next line holding content; returns its indentation and sets *ret_pos to its
 * first character, or returns -1 at the end. Gives up (-2) on document markers and directives,
 * which only libfyaml handles. */
static int next_content_line(struct fast *f, size_t from, size_t *ret_pos)
{
	size_t p = from;
	for (;;) {
		while (p < f->len && f->s[p] != '\n')
			p++;
		if (p >= f->len)
			return -1;
		p++;
		f->line++;
		f->line_start = p;
		size_t q = skip_spaces(f, p);
		if (is_eol(f, q) || f->s[q] == '#') {
			if (q >= f->len)
				return -1;
			p = q;
			continue;
		}
		if (q == p &&
		    (f->s[q] == '%' || ((f->s[q] == '-' || f->s[q] == '.') && q + 2 < f->len &&
					f->s[q + 1] == f->s[q] && f->s[q + 2] == f->s[q])))
			return -2;
		*ret_pos = q;
		return (int)(q - p);
	}
}

/* ---- scalars ---- */

static bool flow_indicator(char c)
{
	return c == ',' || c == '[' || c == ']' || c == '{' || c == '}';
}

/* Character classes for plain scalars: a table look-up per character instead of a search. */
enum {
	C_NO_START = 1, /* an indicator: no plain scalar starts with it */
	C_FLOW = 2,	/* a flow indicator */
	C_LOOK = 4,	/* may end a plain scalar or its trailing spaces: look closer */
};
static const unsigned char char_class[256] = {
    ['?'] = C_NO_START,
    [':'] = C_NO_START | C_LOOK,
    [','] = C_NO_START | C_FLOW | C_LOOK,
    ['['] = C_NO_START | C_FLOW | C_LOOK,
    [']'] = C_NO_START | C_FLOW | C_LOOK,
    ['{'] = C_NO_START | C_FLOW | C_LOOK,
    ['}'] = C_NO_START | C_FLOW | C_LOOK,
    ['#'] = C_NO_START | C_LOOK,
    ['&'] = C_NO_START,
    ['*'] = C_NO_START,
    ['!'] = C_NO_START,
    ['|'] = C_NO_START,
    ['>'] = C_NO_START,
    ['\''] = C_NO_START,
    ['"'] = C_NO_START,
    ['%'] = C_NO_START,
    ['@'] = C_NO_START,
    ['`'] = C_NO_START,
    [' '] = C_LOOK,
    ['\n'] = C_LOOK,
};

/* A plain scalar starting at p; *ret_end is where it stops (before `: `, ` #`, the end of the
 * line, or in flow context a flow indicator). */
static struct ynode *plain_scalar(struct fast *f, size_t p, bool flow, size_t *ret_end)
{
	unsigned char c = (unsigned char)f->s[p];
	if ((char_class[c] & C_NO_START) || (c == '-' && (at(f, p + 1) == ' ' || is_eol(f, p + 1) ||
							  (flow && flow_indicator(at(f, p + 1))))))
		return NULL;
	size_t q = p, e = p;
	for (; q < f->len; q++) {
		c = (unsigned char)f->s[q];
		if (!(char_class[c] & C_LOOK)) {
			e = q + 1;
			continue;
		}
		if (c == '\n')
			break;
		if (c == ':') {
			char n = at(f, q + 1);
			if (n == ' ' || n == '\n' || (flow && flow_indicator(n)))
				break;
		} else if (c == '#' && q > p && f->s[q - 1] == ' ') {
			break;
		} else if (flow && (char_class[c] & C_FLOW)) {
			break;
		}
		if (c != ' ')
			e = q + 1;
	}
	struct ynode *n = new_node(f, YN_SCALAR, mark_of(f, p));
	if (!n)
		return NULL;
	n->text = yaml_doc_text(f->doc, e - p);
	if (!n->text) {
		f->error = -ENOMEM;
		return NULL;
	}
	memcpy(n->text, f->s + p, e - p);
	n->len = e - p;
	n->plain = true;
	*ret_end = q;
	return n;
}

/* A single-line quoted scalar at p (the quote); double-quoted ones only without escapes. */
static struct ynode *quoted_scalar(struct fast *f, size_t p, size_t *ret_end)
{
	char quote = f->s[p];
	size_t q = p + 1, n_escapes = 0;
	for (;; q++) {
		if (is_eol(f, q) || (quote == '"' && f->s[q] == '\\'))
			return NULL;
		if (f->s[q] != quote)
			continue;
		if (quote == '\'' && at(f, q + 1) == '\'') {
			q++;
			n_escapes++;
			continue;
		}
		break;
	}
	struct ynode *n = new_node(f, YN_SCALAR, mark_of(f, p));
	if (!n)
		return NULL;
	size_t raw = q - p - 1;
	n->text = yaml_doc_text(f->doc, raw - n_escapes);
	if (!n->text) {
		f->error = -ENOMEM;
		return NULL;
	}
	size_t o = 0;
	for (size_t k = p + 1; k < q; k++) {
		n->text[o++] = f->s[k];
		if (quote == '\'' && f->s[k] == '\'')
			k++;
	}
	n->len = o;
	*ret_end = q + 1;
	return n;
}

static struct ynode *scalar(struct fast *f, size_t p, bool flow, size_t *ret_end)
{
	if (f->s[p] == '\'' || f->s[p] == '"')
		return quoted_scalar(f, p, ret_end);
	return plain_scalar(f, p, flow, ret_end);
}

/* ---- flow collections (on one line) ---- */

static struct ynode *flow_node(struct fast *f, size_t p, size_t *ret_end);

static struct ynode *flow_seq(struct fast *f, size_t p, size_t *ret_end)
{
	struct ynode *seq = new_node(f, YN_SEQ, mark_of(f, p));
	if (!seq || !enter(f))
		return NULL;
	size_t base = f->n_pending;
	size_t q = skip_spaces(f, p + 1);
	if (at(f, q) == ']') {
		f->depth--;
		*ret_end = q + 1;
		return seq;
	}
	for (;;) {
		size_t end;
		struct ynode *item = flow_node(f, q, &end);
		if (!item)
			return NULL;
		q = skip_spaces(f, end);
		if (at(f, q) == ':' && at(f, q + 1) == ' ' && item->type == YN_SCALAR) {
			/* `[ drive: d0 ]`: a single-pair mapping, placed at its `:` */
			if (item->len > KEY_MAX || !enter(f))
				return NULL;
			struct ynode *map = new_node(f, YN_MAP, mark_of(f, q));
			size_t map_base = f->n_pending;
			if (!map || !push(f, item))
				return NULL;
			q = skip_spaces(f, q + 1);
			if (at(f, q) == ',' || at(f, q) == ']')
				return NULL;
			struct ynode *value = flow_node(f, q, &end);
			if (!value || !push(f, value) || !finish(f, map, map_base))
				return NULL;
			f->depth--;
			item = map;
			q = skip_spaces(f, end);
		}
		if (!push(f, item))
			return NULL;
		if (at(f, q) == ']')
			break;
		if (at(f, q) != ',')
			return NULL;
		q = skip_spaces(f, q + 1);
		if (at(f, q) == ']' || is_eol(f, q))
			return NULL;
	}
	if (!finish(f, seq, base))
		return NULL;
	f->depth--;
	*ret_end = q + 1;
	return seq;
}

static struct ynode *flow_map(struct fast *f, size_t p, size_t *ret_end)
{
	struct ynode *map = new_node(f, YN_MAP, mark_of(f, p));
	if (!map || !enter(f))
		return NULL;
	size_t base = f->n_pending;
	size_t q = skip_spaces(f, p + 1);
	if (at(f, q) == '}') {
		f->depth--;
		*ret_end = q + 1;
		return map;
	}
	for (;;) {
		size_t end;
		char c = at(f, q);
		if (c == '[' || c == '{' || is_eol(f, q))
			return NULL;
		struct ynode *key = scalar(f, q, true, &end);
		if (!key || key->len > KEY_MAX)
			return NULL;
		q = skip_spaces(f, end);
		if (at(f, q) != ':' || at(f, q + 1) != ' ')
			return NULL;
		q = skip_spaces(f, q + 1);
		if (at(f, q) == ',' || at(f, q) == '}')
			return NULL;
		struct ynode *value = flow_node(f, q, &end);
		if (!value || !push(f, key) || !push(f, value))
			return NULL;
		q = skip_spaces(f, end);
		if (at(f, q) == '}')
			break;
		if (at(f, q) != ',')
			return NULL;
		q = skip_spaces(f, q + 1);
		if (at(f, q) == '}' || is_eol(f, q))
			return NULL;
	}
	if (!finish(f, map, base))
		return NULL;
	f->depth--;
	*ret_end = q + 1;
	return map;
}

static struct ynode *flow_node(struct fast *f, size_t p, size_t *ret_end)
{
	if (is_eol(f, p))
		return NULL;
	if (f->s[p] == '[')
		return flow_seq(f, p, ret_end);
	if (f->s[p] == '{')
		return flow_map(f, p, ret_end);
	return scalar(f, p, true, ret_end);
}

/* ---- block collections ---- */

static struct ynode *block_map(struct fast *f, int indent, size_t p, size_t *ret_next,
			       int *ret_ind);
static struct ynode *block_seq(struct fast *f, int indent, size_t p, size_t *ret_next,
			       int *ret_ind);

/* Whether a `- ` or a lone `-` starts at p. */
static bool is_dash(const struct fast *f, size_t p)
{
	return at(f, p) == '-' && (at(f, p + 1) == ' ' || is_eol(f, p + 1));
}

/* A node that starts a line of its own at indentation `indent` (a value written below its key
 * or dash). */
static struct ynode *block_node_on_line(struct fast *f, int indent, size_t p, size_t *ret_next,
					int *ret_ind)
{
	if (is_dash(f, p))
		return block_seq(f, indent, p, ret_next, ret_ind);
	if (f->s[p] == '[' || f->s[p] == '{') {
		size_t end;
		struct ynode *n = flow_node(f, p, &end);
		if (!n || !rest_is_empty(f, end))
			return NULL;
		*ret_ind = next_content_line(f, end, ret_next);
		return *ret_ind > indent ? NULL : n;
	}
	return block_map(f, indent, p, ret_next, ret_ind);
}

/* The value after `key: ` or `- ` on the same line, at p; `indent` is the key's or dash's. A
 * scalar followed by `: ` after a dash starts a compact mapping (`- drive: ...`). */
static struct ynode *inline_value(struct fast *f, int indent, size_t p, bool after_dash,
				  size_t *ret_next, int *ret_ind)
{
	char c = f->s[p];
	size_t end;
	struct ynode *n;
	if (c == '[' || c == '{') {
		n = flow_node(f, p, &end);
	} else if (is_dash(f, p)) {
		return NULL;
	} else {
		struct yaml_doc_point before = yaml_doc_here(f->doc);
		n = scalar(f, p, false, &end);
		if (!n)
			return NULL;
		size_t q = skip_spaces(f, end);
		if (at(f, q) == ':' && (at(f, q + 1) == ' ' || is_eol(f, q + 1))) {
			if (!after_dash)
				return NULL;
			/* a compact mapping (`- drive: ...`, most qemu entries): its keys line up
			 * with this one; start again, giving back the scalar's memory */
			yaml_doc_back_to(f->doc, before);
			f->nodes--;
			return block_map(f, (int)(p - f->line_start), p, ret_next, ret_ind);
		}
	}
	if (!n || !rest_is_empty(f, end))
		return NULL;
	*ret_ind = next_content_line(f, end, ret_next);
	/* more indented: a continuation of a plain scalar or an error; libfyaml's call */
	return *ret_ind > indent ? NULL : n;
}

static struct ynode *block_map(struct fast *f, int indent, size_t p, size_t *ret_next, int *ret_ind)
{
	struct ynode *map = new_node(f, YN_MAP, mark_of(f, p));
	if (!map || !enter(f))
		return NULL;
	size_t base = f->n_pending;
	size_t next = 0;
	int ind;
	for (;;) {
		size_t end;
		char c = f->s[p];
		if (c == '[' || c == '{' || is_dash(f, p))
			return NULL;
		struct ynode *key = scalar(f, p, false, &end);
		if (!key || key->len > KEY_MAX)
			return NULL;
		size_t q = skip_spaces(f, end);
		if (at(f, q) != ':' || !(at(f, q + 1) == ' ' || is_eol(f, q + 1)))
			return NULL;
		q = skip_spaces(f, q + 1);
		struct ynode *value;
		if (!rest_is_empty(f, q)) {
			value = inline_value(f, indent, q, false, &next, &ind);
		} else {
			ind = next_content_line(f, q, &next);
			if (ind == -2)
				return NULL;
			if (ind > indent) {
				/* below its key: a collection (a scalar there would be block_map's
				 * key without `:`, and is given up) */
				value = block_node_on_line(f, ind, next, &next, &ind);
			} else if (ind == indent && is_dash(f, next)) {
				value = block_seq(f, indent, next, &next, &ind);
			} else {
				/* nothing written: libfyaml places it at its key */
				value = new_node(f, YN_SCALAR, key->mark);
				if (value && !(value->text = yaml_doc_text(f->doc, 0))) {
					f->error = -ENOMEM;
					value = NULL;
				}
				if (value)
					value->plain = value->null = true;
			}
		}
		if (!value || !push(f, key) || !push(f, value))
			return NULL;
		if (ind < indent) /* the end (-1) or a less indented line */
			break;
		if (ind > indent || is_dash(f, next))
			return NULL;
		p = next;
	}
	if (!finish(f, map, base))
		return NULL;
	f->depth--;
	*ret_next = next;
	*ret_ind = ind;
	return map;
}

static struct ynode *block_seq(struct fast *f, int indent, size_t p, size_t *ret_next, int *ret_ind)
{
	struct ynode *seq = new_node(f, YN_SEQ, mark_of(f, p));
	if (!seq || !enter(f))
		return NULL;
	size_t base = f->n_pending;
	int ind;
	size_t next = 0;
	for (;;) {
		size_t q = skip_spaces(f, p + 1);
		struct ynode *item;
		if (rest_is_empty(f, q)) {
			ind = next_content_line(f, q, &next);
			/* an empty entry is libfyaml's to judge (0.7.12 refuses some) */
			if (ind <= indent)
				return NULL;
			item = block_node_on_line(f, ind, next, &next, &ind);
		} else {
			item = inline_value(f, indent, q, true, &next, &ind);
		}
		if (!item || !push(f, item))
			return NULL;
		if (ind == -2 || ind > indent)
			return NULL;
		if (ind < indent || !is_dash(f, next))
			break;
		p = next;
	}
	if (!finish(f, seq, base))
		return NULL;
	f->depth--;
	*ret_next = next;
	*ret_ind = ind;
	return seq;
}

int yaml_fast_parse(const char *text, size_t len, const struct yaml_tree_limits *limits,
		    struct yaml_doc *doc)
{
	/* ASCII without tabs, carriage returns or other controls: columns are byte offsets and
	 * no line break or indentation rule of YAML's beyond spaces and `\n` applies. */
	unsigned char other = 0; /* one pass without branches: vector instructions */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		other |= (c < 0x20 && c != '\n') | (c >= 0x7f);
	}
	if (other)
		return 0;
	struct fast f = {.s = text, .len = len, .line = 0, .lim = limits, .doc = doc};
	size_t p;
	/* next_content_line() starts by finishing a line: begin "before" the first one */
	int ind;
	{
		size_t q = skip_spaces(&f, 0);
		f.line = 1;
		if (is_eol(&f, q) || text[q] == '#')
			ind = next_content_line(&f, q, &p);
		else if (text[0] == '%' ||
			 (len >= 3 && (!memcmp(text, "---", 3) || !memcmp(text, "...", 3))))
			ind = -2;
		else
			ind = (int)q, p = q;
	}
	if (ind != 0)
		return f.error;
	struct ynode *root;
	size_t next;
	if (text[p] == '[' || text[p] == '{') {
		size_t end;
		root = flow_node(&f, p, &end);
		if (root && !rest_is_empty(&f, end))
			root = NULL;
		if (root)
			ind = next_content_line(&f, end, &next);
	} else if (is_dash(&f, p)) {
		root = block_seq(&f, 0, p, &next, &ind);
	} else {
		root = block_map(&f, 0, p, &next, &ind);
	}
	free(f.pending);
	if (!root || ind != -1)
		return f.error;
	doc->root = root;
	return 1;
}
