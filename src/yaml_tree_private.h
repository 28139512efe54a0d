/* Shared by the two readers behind yaml_tree_parse(): libfyaml's (yaml_tree.c, everything) and
 * the fast one (yaml_fast.c, the common subset, giving up on anything else). Not for others. */
#pragma once

#include "yaml_tree.h"

/* Zeroed memory from the document's chunks; NULL when out of memory. */
void *yaml_doc_alloc(struct yaml_doc *doc, size_t size);

/* Appends child to parent's items (growing the array inside the chunks); -ENOMEM. */
int yaml_node_append(struct yaml_doc *doc, struct ynode *parent, struct ynode *child);

/* Builds the tree of `text` into doc (whose root must be NULL) for the YAML subset the fast
 * reader knows: block mappings and sequences indented with spaces, single-line flow
 * collections, single-line plain, single-quoted and escape-free double-quoted scalars,
 * comments. Returns 1 when the tree is complete and exactly the one libfyaml's reader would
 * build; 0 when it gave up (the document may hold a partial tree: start again with a fresh
 * one); -ENOMEM. Never reports errors: anything unusual, valid or not, is left to libfyaml. */
int yaml_fast_parse(const char *text, size_t len, const struct yaml_tree_limits *limits,
		    struct yaml_doc *doc);

/* yaml_tree_parse() with a chosen reader, for the tests that compare them: AUTO tries the fast
 * reader first, FAST returns -ENOTSUP where it gives up. */
enum yaml_reader { YAML_READER_AUTO, YAML_READER_LIBFYAML, YAML_READER_FAST };
int yaml_tree_parse_with(enum yaml_reader reader, const char *path, const char *text, size_t len,
			 const struct yaml_tree_limits *limits, struct yaml_doc **ret,
			 struct ql_error *err);
