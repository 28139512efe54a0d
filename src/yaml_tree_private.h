/* Shared by the two readers behind yaml_tree_parse(): libfyaml's (yaml_tree.c, everything) and
 * the fast one (yaml_fast.c, the common subset, giving up on anything else). Not for others. */
#pragma once

#include "yaml_tree.h"

#include <stddef.h>
#include <string.h>

/* The document's memory: nodes and item arrays (aligned) are taken from the front of the
 * newest chunk, texts (NUL-terminated, no alignment needed) from its back, so no text pads the
 * chunk; its free space lies between `used` and `end`. */
struct yaml_chunk {
	struct yaml_chunk *next;
	size_t used, end;
	max_align_t data[];
};

struct yaml_chunk *yaml_doc_grow(struct yaml_doc *doc, size_t size);

/* yaml_doc_alloc(), inline: the tree takes ~16,000 pieces per 1,000 qemu entries. */
static inline void *yaml_doc_take(struct yaml_doc *doc, size_t size)
{
	size = (size + _Alignof(void *) - 1) & ~(_Alignof(void *) - 1);
	struct yaml_chunk *ch = doc->chunks;
	if (!ch || ch->end - ch->used < size) {
		ch = yaml_doc_grow(doc, size);
		if (!ch)
			return NULL;
	}
	void *p = (char *)ch->data + ch->used;
	ch->used += size;
	return p;
}

/* Where the newest chunk stands, to give back what was taken since (zeroed again). */
struct yaml_doc_point {
	struct yaml_chunk *chunk;
	size_t used, end;
};

static inline struct yaml_doc_point yaml_doc_here(const struct yaml_doc *doc)
{
	struct yaml_chunk *ch = doc->chunks;
	return (struct yaml_doc_point){ch, ch ? ch->used : 0, ch ? ch->end : 0};
}

/* Gives back everything taken since `pt`, when it all came from the same chunk (else the
 * memory simply stays unused until the document is freed). */
static inline void yaml_doc_back_to(struct yaml_doc *doc, struct yaml_doc_point pt)
{
	struct yaml_chunk *ch = doc->chunks;
	if (!ch || ch != pt.chunk)
		return;
	memset((char *)ch->data + pt.used, 0, ch->used - pt.used);
	memset((char *)ch->data + ch->end, 0, pt.end - ch->end);
	ch->used = pt.used;
	ch->end = pt.end;
}

/* Room for a text of len bytes and its NUL (zeroed); NULL when out of memory. */
static inline char *yaml_doc_text(struct yaml_doc *doc, size_t len)
{
	struct yaml_chunk *ch = doc->chunks;
	if (!ch || ch->end - ch->used < len + 1) {
		ch = yaml_doc_grow(doc, len + 1);
		if (!ch)
			return NULL;
	}
	ch->end -= len + 1;
	return (char *)ch->data + ch->end;
}

/* Appends child to parent's items (growing the array inside the chunks); -ENOMEM. */
int yaml_node_append(struct yaml_doc *doc, struct ynode *parent, struct ynode *child);

/* Builds the tree of `text` into doc (whose root must be NULL) for the YAML subset the fast
 * reader knows: block mappings and sequences indented with spaces, single-line flow
 * collections, single-line plain, single-quoted and escape-free double-quoted scalars,
 * comments, no duplicate keys. Returns 1 when the tree is complete and exactly the one
 * libfyaml's reader would build; 0 when it gave up (the document may hold a partial tree: start
 * again with a fresh one); -ENOMEM. Never reports errors: anything unusual, valid or not, is left
 * to libfyaml. */
int yaml_fast_parse(const char *text, size_t len, const struct yaml_tree_limits *limits,
		    struct yaml_doc *doc);

/* yaml_tree_parse() with a chosen reader, for the tests that compare them: AUTO tries the fast
 * reader first, FAST returns -ENOTSUP where it gives up. */
enum yaml_reader { YAML_READER_AUTO, YAML_READER_LIBFYAML, YAML_READER_FAST };
int yaml_tree_parse_with(enum yaml_reader reader, const char *path, const char *text, size_t len,
			 const struct yaml_tree_limits *limits, struct yaml_doc **ret,
			 struct ql_error *err);
