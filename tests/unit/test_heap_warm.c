/* Unit tests of heap_warm: after it, allocations of about the warmed size land on pages already
 * mapped (no page fault), where the same allocations in a process that did not warm take one per
 * page; and the size asked for follows the vCPU count up to its cap. Each measurement runs in a
 * fresh child, so the test's own earlier allocations do not count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap_warm.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED_MALLOC 1
#endif
#endif

#define ALLOCATED (192u << 10) /* what the parse of 64 vCPUs' answers takes, about */
#define SMALL 96u	       /* json-c objects and strings are small */

static long minor_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* In a child: warm (or not), then make ALLOCATED bytes of small allocations and write them;
 * exits with the page faults that took, at most 255. */
static int faults_of_allocations(size_t warm)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (warm)
			heap_warm(warm);
		static void *kept[ALLOCATED / SMALL];
		/* its own pages are not the heap's, nor malloc's state, copied on write after the
		 * fork */
		memset(kept, 0, sizeof(kept));
		free(malloc(SMALL));
		long before = minor_faults();
		for (size_t i = 0; i < ALLOCATED / SMALL; i++) {
			kept[i] = malloc(SMALL);
			if (!kept[i])
				_exit(255);
			memset(kept[i], 1, SMALL);
		}
		long n = minor_faults() - before;
		_exit(n > 254 ? 254 : (int)n);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 255);
	return WEXITSTATUS(status);
}

static void test_warm_heap_takes_no_faults(void **state)
{
	(void)state;
#ifdef SANITIZED_MALLOC
	print_message("# skip: ASan's allocator replaces glibc's malloc, whose heap this warms\n");
	skip();
#endif
	char thp[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");
	if (f) {
		if (!fgets(thp, sizeof(thp), f))
			thp[0] = '\0';
		fclose(f);
	}
	if (strstr(thp, "[always]")) {
		print_message("# skip: transparent huge pages are `always` here: the heap may grow "
			      "in 2 MiB pages, one fault each, and there is nothing to count\n");
		skip();
	}
	int cold = faults_of_allocations(0);
	/* malloc adds 16 bytes to each of the 96 */
	int warm = faults_of_allocations(ALLOCATED + ALLOCATED / 4);
	/* 192 KiB are 48 pages: every one faults when nothing was warmed */
	assert_in_range(cold, 40, 254);
	assert_in_range(warm, 0, 2);
}

static void test_bytes_follow_vcpus(void **state)
{
	(void)state;
	assert_int_equal(heap_warm_bytes_for(0), 0);
	size_t two = heap_warm_bytes_for(2), sixty_four = heap_warm_bytes_for(64);
	assert_true(two > 0);
	assert_int_equal(sixty_four, 32 * two);
	/* 64 vCPUs' answer took 40 new pages (json-c 0.16) */
	assert_true(sixty_four >= 40 * 4096);
	assert_int_equal(heap_warm_bytes_for(1u << 20), HEAP_WARM_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_warm_heap_takes_no_faults),
	    cmocka_unit_test(test_bytes_follow_vcpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
