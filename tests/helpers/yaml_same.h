/* The one comparison of two YAML trees, for what checks that the fast reader (yaml_fast.c) builds
 * exactly libfyaml's reader's tree: tests/unit/test_yaml_tree.c and fuzz/fuzz_yaml.c. */
#pragma once

#include <stdbool.h>
#include <string.h>

#include "yaml_tree.h"

/* Same types, positions, flags, texts and items, all the way down. On a difference, *ret_a and
 * *ret_b are the first two nodes that differ (one may be NULL), for the caller to show. */
static inline bool yaml_same_tree(const struct ynode *a, const struct ynode *b,
				  const struct ynode **ret_a, const struct ynode **ret_b)
{
	*ret_a = a;
	*ret_b = b;
	if (!a || !b)
		return a == b;
	bool scalar = a->type == YN_SCALAR;
	/* len and n_items share storage, as do text and items: each read on its kind only */
	if (a->type != b->type || a->mark.line != b->mark.line ||
	    a->mark.column != b->mark.column || a->plain != b->plain || a->null != b->null ||
	    (scalar ? a->len != b->len || memcmp(a->text, b->text, a->len) != 0
		    : a->n_items != b->n_items))
		return false;
	for (size_t i = 0; !scalar && i < a->n_items; i++)
		if (!yaml_same_tree(a->items[i], b->items[i], ret_a, ret_b))
			return false;
	return true;
}
