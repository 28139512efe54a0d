/* libFuzzer target for qemu_value.c: any text as an option value (qemu's key=value form, or JSON
 * with its escapes, single quotes and nesting). Nothing may crash, leak or read past the value;
 * what it reads must be strings it owns. Seeds: fuzz/corpus/qemu_value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the readers take a C string: exactly the input, then its NUL */
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct qemu_value v;
	if (qemu_value_parse(text, &v) == 0) {
		static const char *const keys[] = {"driver", "host", "sysfsdev", "qom-type",
						   "id",     "size", "mem-path", "hugetlb"};
		size_t total = 0;
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			const char *s = qemu_value_get(&v, keys[i]);
			total += s ? strlen(s) : 0;
		}
		const char *d = qemu_value_implied(&v, "driver");
		total += d ? strlen(d) : 0;
		/* a decoded value is never longer than the text it came from */
		if (total > size * (sizeof(keys) / sizeof(keys[0]) + 1))
			abort();
		qemu_value_done(&v);
	}
	free(text);
	return 0;
}
