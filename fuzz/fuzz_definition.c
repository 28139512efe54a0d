/* libFuzzer target for everything a definition file's bytes reach: definition_parse() and, for a
 * definition it accepts, cmdline_build(), cmdline_shell_join() and definition_wants_pinning(). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "definition.h"
#include "fuzz_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);
	if (!text)
		return 0;

	struct ql_error err = {0};
	struct definition *d = NULL;
	int r = definition_parse("fuzz.yml", text, size, &d, &err);
	if (r < 0) {
		/* Every refusal explains itself with the "FILE:LINE:COL: " prefix. */
		if (!err.msg || (r == -EINVAL && strncmp(err.msg, "fuzz.yml:", 9) != 0))
			abort();
	} else {
		if (!d || !d->binary || !d->binary[0] || !d->env)
			abort();
		(void)definition_wants_pinning(d);
		char **argv = NULL;
		if (cmdline_build(d, &argv, &err) == 0) {
			if (!argv || !argv[0] || strcmp(argv[0], d->binary) != 0)
				abort();
			char *joined = cmdline_shell_join(argv);
			free(joined);
			(void)cmdline_has_option(d, "S");
			free(argv); /* one block */
		}
		definition_free(d);
	}
	ql_error_clear(&err);
	free(text);
	return 0;
}
