/* A fuzzer's input as the readers get a definition: exactly `size` bytes, not NUL-terminated, so
 * that ASan catches any read past the length they are given. */
#pragma once

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* NULL when out of memory. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1);
	if (text && size)
		memcpy(text, data, size);
	return text;
}
