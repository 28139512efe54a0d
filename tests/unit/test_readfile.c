/* Unit tests of the bounded small-file reader: the limit is exact (a file of max bytes is read, one
 * byte more is -EFBIG), bytes are kept as read, and errors are -errno. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "readfile.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ql-readfile.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	rmdir(dir);
	return 0;
}

static void put(const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static void test_limit_is_exact(void **state)
{
	(void)state;
	/* Around the first buffer size too, where the reader grows. */
	size_t sizes[] = {0, 1, 4095, 4096, 4097, 10000};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		size_t n = sizes[i];
		char *text = malloc(n + 1);
		assert_non_null(text);
		memset(text, 'x', n);
		put(text, n);
		char *got;
		size_t len;
		assert_int_equal(read_small_file(AT_FDCWD, path, 0, n, &got, &len), 0);
		assert_int_equal(len, n);
		assert_memory_equal(got, text, n);
		assert_int_equal(got[n], '\0');
		free(got);
		if (n > 0)
			assert_int_equal(read_small_file(AT_FDCWD, path, 0, n - 1, &got, &len),
					 -EFBIG);
		free(text);
	}
}

static void test_bytes_kept(void **state)
{
	(void)state;
	put("a\0b\n\n", 5);
	char *got;
	size_t len;
	assert_int_equal(read_small_file(AT_FDCWD, path, 0, 64, &got, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(got, "a\0b\n\n", 5);
	strip_newlines(got, &len);
	assert_int_equal(len, 3);
	assert_int_equal(got[3], '\0');
	free(got);
}

static void test_errors(void **state)
{
	(void)state;
	char *got = NULL;
	assert_int_equal(read_small_file(AT_FDCWD, path, 0, 64, &got, NULL), -ENOENT);
	assert_null(got);
	char link[160];
	snprintf(link, sizeof(link), "%s/l", dir);
	put("v", 1);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(read_small_file(AT_FDCWD, link, O_NOFOLLOW, 64, &got, NULL), -ELOOP);
	assert_int_equal(read_small_file(AT_FDCWD, link, 0, 64, &got, NULL), 0);
	assert_string_equal(got, "v");
	free(got);
	unlink(link);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_limit_is_exact, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bytes_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
