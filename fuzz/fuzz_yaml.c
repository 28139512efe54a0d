/* libFuzzer target for the fast YAML reader (yaml_fast.c), differential: wherever it takes a text
 * instead of giving up, libfyaml's reader must build the very same tree (types, texts, flags,
 * positions) or refuse the text with the very same message, as yaml_tree_parse() promises.
 * Any difference aborts, so the fuzzer saves the input. Seeds: fuzz/corpus/definition. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/helpers/yaml_same.h"
#include "definition.h"
#include "fuzz_text.h"
#include "yaml_tree_private.h"

/* definition.c's bounds: the depth one too, so that both readers' refusals of it are compared */
static const struct yaml_tree_limits limits = {DEFINITION_MAX_BYTES, DEFINITION_MAX_DEPTH,
					       DEFINITION_MAX_NODES};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);
	if (!text)
		return 0;
	struct ql_error fe = {0}, se = {0};
	struct yaml_doc *fast = NULL, *slow = NULL;
	int fr = yaml_tree_parse_with(YAML_READER_FAST, "f.yml", text, size, &limits, &fast, &fe);
	/* given up (left to libfyaml), or out of memory: nothing to compare */
	if (fr == -ENOTSUP || (fr < 0 && fr != -EINVAL))
		goto out;
	int sr =
	    yaml_tree_parse_with(YAML_READER_LIBFYAML, "f.yml", text, size, &limits, &slow, &se);
	if (sr == -ENOMEM)
		goto out;
	if (fr < 0 || sr < 0) {
		/* after the fast reader took a text, only the input checks and duplicate keys
		 * fail, and the message has one source */
		if (fr != sr || !fe.msg || !se.msg || strcmp(fe.msg, se.msg) != 0) {
			fprintf(stderr, "fast %d `%s`, libfyaml %d `%s`\n", fr,
				fe.msg ? fe.msg : "", sr, se.msg ? se.msg : "");
			abort();
		}
	} else {
		const struct ynode *a, *b;
		if (!yaml_same_tree(fast->root, slow->root, &a, &b)) {
			fprintf(stderr, "trees differ: fast %s at %u:%u, libfyaml %s at %u:%u\n",
				a ? ynode_kind(a) : "nothing", a ? a->mark.line : 0,
				a ? a->mark.column : 0, b ? ynode_kind(b) : "nothing",
				b ? b->mark.line : 0, b ? b->mark.column : 0);
			abort();
		}
	}
out:
	ql_error_clear(&fe);
	ql_error_clear(&se);
	yaml_doc_free(fast);
	yaml_doc_free(slow);
	free(text);
	return 0;
}
