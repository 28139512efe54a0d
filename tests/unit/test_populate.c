/* Unit tests of populate: after it every page of the block is mapped, so writing all of them
 * takes no page fault (where the same writes without it take one a page); what the block held is
 * kept; a block below POPULATE_MIN is left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "populate.h"

#define PAGES 64

static long minor_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static size_t resident_pages(void *p, size_t pages)
{
	unsigned char vec[PAGES];
	assert_true(pages <= PAGES);
	assert_int_equal(mincore(p, pages * page_size(), vec), 0);
	size_t n = 0;
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	return n;
}

/* Writes one byte a page; returns the page faults that took. Not instrumented: under ASan each
 * write would first read its shadow byte, whose pages fault on first use, and be counted. */
__attribute__((no_sanitize_address)) static long faults_writing(char *p, size_t pages)
{
	long before = minor_faults();
	for (size_t i = 0; i < pages; i++)
		((volatile char *)p)[i * page_size()] = 2;
	return minor_faults() - before;
}

static char *fresh(size_t pages)
{
	char *p = mmap(NULL, pages * page_size(), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	return p;
}

static void test_populated_block_writes_without_faults(void **state)
{
	(void)state;
	char *p = fresh(PAGES);
	strcpy(p + 100, "kept as it was");
	/* an unaligned block inside the mapping: the pages it touches at both ends count too */
	populate(p + 100, PAGES * page_size() - 200);
	assert_int_equal(resident_pages(p, PAGES), PAGES);
	assert_string_equal(p + 100, "kept as it was");
	assert_int_equal(p[PAGES * page_size() - 1], 0);
	assert_int_equal(faults_writing(p, PAGES), 0);
	munmap(p, PAGES * page_size());
	/* the control: the same writes to a mapping not populated fault on every page, so the 0
	 * above is populate's doing and not the counting's */
	char *q = fresh(PAGES);
	assert_int_equal(resident_pages(q, PAGES), 0);
	assert_true(faults_writing(q, PAGES) >= PAGES);
	munmap(q, PAGES * page_size());
}

static void test_malloc_block(void **state)
{
	(void)state;
	size_t size = 40 * page_size();
	char *p = malloc(size);
	assert_non_null(p);
	populate(p, size);
	long before = minor_faults();
	memset(p, 3, size);
	assert_int_equal(minor_faults() - before, 0);
	free(p);
}

static void test_small_block_left_alone(void **state)
{
	(void)state;
	size_t pages = POPULATE_MIN / page_size() - 1;
	char *p = fresh(pages + 1);
	populate(p, pages * page_size());
	assert_int_equal(resident_pages(p, pages + 1), 0);
	populate(NULL, 1 << 20);
	munmap(p, (pages + 1) * page_size());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_populated_block_writes_without_faults),
	    cmocka_unit_test(test_malloc_block),
	    cmocka_unit_test(test_small_block_left_alone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
