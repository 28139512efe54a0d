/* Unit tests of utf8.c: every code point encoded is the one valid sequence the decoder takes back,
 * and what UTF-8 cannot hold (surrogates, beyond U+10FFFF) is not encoded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "utf8.h"

static void test_encode_round_trip(void **state)
{
	(void)state;
	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		unsigned char b[4];
		size_t n = utf8_encode(cp, b);
		if (cp >= 0xd800 && cp <= 0xdfff) {
			assert_int_equal(n, 0);
			continue;
		}
		assert_int_equal(n, cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
		if (utf8_char_len(b, n) != n)
			fail_msg("U+%04X does not decode as the %zu bytes it was encoded in", cp,
				 n);
		uint32_t back = n == 1 ? b[0] : b[0] & (0x7f >> n);
		for (size_t i = 1; i < n; i++)
			back = back << 6 | (b[i] & 0x3f);
		if (back != cp)
			fail_msg("U+%04X came back as U+%04X", cp, back);
	}
	unsigned char b[4];
	assert_int_equal(utf8_encode(0x110000, b), 0);
	assert_int_equal(utf8_encode(UINT32_MAX, b), 0);
	assert_int_equal(utf8_encode(0xe9, b), 2);
	assert_memory_equal(b, "\xc3\xa9", 2);
	assert_int_equal(utf8_encode(0x1f600, b), 4);
	assert_memory_equal(b, "\xf0\x9f\x98\x80", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode_round_trip),
	};
	return cmocka_run_group_tests_name("utf8", tests, NULL, NULL);
}
