/* UTF-8 validity (RFC 3629), shared by the definition loader, --import and message quoting, and
 * the encoding of a code point (JSON's \u escapes). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s (no overlongs, no surrogates, <= U+10FFFF), 0 if
 * invalid or cut off by `left`. */
size_t utf8_char_len(const unsigned char *s, size_t left);

/* The valid sequence of n bytes at s is a C1 control (U+0080-U+009F): terminals may act on it
 * (some take U+009B as CSI), so text other users chose shows it escaped. */
static inline bool utf8_is_c1(const unsigned char *s, size_t n)
{
	return n == 2 && s[0] == 0xc2 && s[1] < 0xa0;
}

/* Code point cp as UTF-8 into out: the bytes written, 0 for a surrogate or one past U+10FFFF. */
size_t utf8_encode(uint32_t cp, unsigned char out[4]);

/* The NUL-terminated s is valid UTF-8. */
bool utf8_is_valid(const char *s);
