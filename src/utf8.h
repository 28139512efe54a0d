/* UTF-8 validity (RFC 3629), shared by the definition loader, --import and message quoting. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (no overlongs, no surrogates, <= U+10FFFF), 0 if
 * invalid or cut off by `left`. */
size_t utf8_char_len(const unsigned char *s, size_t left);

/* The NUL-terminated s is valid UTF-8. */
bool utf8_is_valid(const char *s);
