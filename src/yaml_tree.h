/* A YAML document as a small generic tree that keeps every scalar exactly as written and every
 * node's position; the only module that knows libfyaml. definition.c interprets the tree. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Position in the document, 1-based, for FILE:LINE:COL messages. */
struct ql_mark {
	unsigned line, column;
};

static inline bool ql_mark_before(struct ql_mark a, struct ql_mark b)
{
	return a.line < b.line || (a.line == b.line && a.column < b.column);
}

enum ynode_type { YN_SCALAR, YN_SEQ, YN_MAP };

/* 24 bytes a node: a 1,000-entry definition has ~9,000 of them, 70% scalars, and the kernel
 * charges ~2 us for every fresh page the tree touches (bench/RESULTS.md). So what only one kind
 * uses shares storage: read `text`/`len` only when type == YN_SCALAR, `items`/`n_items` (or
 * ynode_count(), map_key(), map_value()) only on a YN_SEQ or YN_MAP. `plain` and `null` are
 * false on collections. */
struct ynode {
	struct ql_mark mark;
	uint8_t type; /* enum ynode_type */
	bool plain;   /* plain (unquoted, non-block) scalar */
	bool null;    /* nothing written at all (`key:`); an explicit '' is not null */
	union {
		uint32_t len;	  /* scalar: bytes in text */
		uint32_t n_items; /* collection: entries in items */
	};
	union {
		char *text; /* scalar text after YAML unquoting, NUL-terminated (no NUL inside) */
		/* Sequence items, or mapping keys and values alternating (key, value, key,
		 * value...). Built by libfyaml's reader the capacity is implied: 4, then the next
		 * power of two; the fast reader allocates each array at its exact size. */
		struct ynode **items;
	};
};

/* Bounds on untrusted input, enforced while the events stream in. */
struct yaml_tree_limits {
	size_t max_bytes;
	unsigned max_depth;
	size_t max_nodes;
};

struct yaml_chunk;

/* A parsed document. Every node and text lives in the document's own chunks (one allocation per
 * 16 KiB or more instead of several per node: a 1,000-entry definition has ~12,000 nodes), so
 * they stay valid exactly as long as the document. */
struct yaml_doc {
	struct ynode *root; /* NULL for an empty document */
	struct yaml_chunk *chunks;
	size_t chunk_size;
};

/* Parses one document (valid UTF-8, no NUL, no anchors/aliases/tags, no duplicate keys). Errors
 * are "PATH:LINE:COL: message" (-EINVAL) or -ENOMEM. */
int yaml_tree_parse(const char *path, const char *text, size_t len,
		    const struct yaml_tree_limits *limits, struct yaml_doc **ret,
		    struct ql_error *err);
void yaml_doc_free(struct yaml_doc *doc);

/* Zeroed memory from the document's chunks, freed with it: for the tree, and for what a reader
 * builds from the tree and points into its texts (one allocation per chunk instead of one per
 * object). NULL when out of memory. */
void *yaml_doc_alloc(struct yaml_doc *doc, size_t size);

static inline size_t ynode_count(const struct ynode *n)
{
	return n->type == YN_MAP ? n->n_items / 2 : n->type == YN_SEQ ? n->n_items : 0;
}

static inline struct ynode *map_key(const struct ynode *n, size_t i)
{
	return n->items[2 * i];
}

static inline struct ynode *map_value(const struct ynode *n, size_t i)
{
	return n->items[2 * i + 1];
}

/* "a sequence", "a mapping", "a scalar" or "nothing", for messages. */
const char *ynode_kind(const struct ynode *n);

/* Sets err to "PATH:LINE:COL: message" (EINVAL) and returns -EINVAL (-ENOMEM if formatting
 * fails). */
int yaml_error_at(struct ql_error *err, const char *path, struct ql_mark m, const char *fmt,
		  va_list ap) _printf_(4, 0);
