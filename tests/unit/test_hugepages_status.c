/* Unit tests of --status' hugepages section: pages per size and node from recorded numa_maps and
 * smaps (the kernel's formats, file names escaped as it escapes them), the pool of a journal
 * record's path, and the text and JSON it becomes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hugepages_status.h"

static long used(const struct hugepages_use *u, unsigned long kb, int node)
{
	long n = -1;
	for (size_t i = 0; i < u->n_used; i++)
		if (u->used[i].page_kb == kb && u->used[i].node == node)
			n = u->used[i].pages;
	return n;
}

static FILE *text(const char *s)
{
	FILE *f = fmemopen((void *)s, strlen(s), "r");
	assert_non_null(f);
	return f;
}

static void test_numa_maps(void **state)
{
	(void)state;
	static const char maps[] =
	    "7f0c00000000 bind:1 file=/mnt/huge/qemu_back_mem.m1.XyZ\\040(deleted) huge dirty=3 "
	    "mapmax=1 N1=3 kernelpagesize_kB=2048\n"
	    "7f0c40000000 default file=/dev/hugepages/a huge anon=0 dirty=2 N0=1 N1=1 "
	    "kernelpagesize_kB=2048\n"
	    "7f0d00000000 default file=/dev/hugepages1G/b huge dirty=1 N0=1 "
	    "kernelpagesize_kB=1048576\n"
	    /* a name holding " huge N5=7": the kernel escapes the blank and '=' */
	    "7f0d80000000 default file=/tmp/x\\040huge\\040N5\\0757 mapped=1 N0=1 "
	    "kernelpagesize_kB=4\n"
	    "7f0e00000000 default anon=512 dirty=512 active=0 N0=512 kernelpagesize_kB=4\n"
	    "7f0f00000000 default huge\n"; /* a hugetlb mapping nothing faulted in yet */
	struct hugepages_use u = {0};
	FILE *f = text(maps);
	assert_int_equal(hugepages_use_read_numa_maps(&u, f), 0);
	fclose(f);
	assert_int_equal(u.n_used, 3);
	assert_int_equal(used(&u, 2048, 0), 1);
	assert_int_equal(used(&u, 2048, 1), 4);
	assert_int_equal(used(&u, 1048576, 0), 1);
	free(u.used);
}

static void test_smaps(void **state)
{
	(void)state;
	static const char smaps[] = "7f0c00000000-7f0c00600000 rw-s 00000000 00:2f 123 /mnt/huge/x "
				    "(deleted)\n"
				    "Size:               6144 kB\n"
				    "KernelPageSize:     2048 kB\n"
				    "MMUPageSize:        2048 kB\n"
				    "Rss:                   0 kB\n"
				    "AnonHugePages:         0 kB\n"
				    "Shared_Hugetlb:     4096 kB\n"
				    "Private_Hugetlb:    2048 kB\n"
				    "VmFlags: rd wr sh mr mw me ms de ht sd\n"
				    "7f0e00000000-7f0e00400000 rw-p 00000000 00:00 0\n"
				    "Size:               4096 kB\n"
				    "KernelPageSize:        4 kB\n"
				    "Rss:                4096 kB\n"
				    "AnonHugePages:      4096 kB\n" /* THP: not hugetlb */
				    "Shared_Hugetlb:        0 kB\n"
				    "Private_Hugetlb:       0 kB\n"
				    "VmFlags: rd wr mr mw me ac\n";
	struct hugepages_use u = {0};
	FILE *f = text(smaps);
	assert_int_equal(hugepages_use_read_smaps(&u, f), 0);
	fclose(f);
	assert_int_equal(u.n_used, 1);
	assert_int_equal(used(&u, 2048, -1), 3);
	free(u.used);
}

static void test_pool_of_path(void **state)
{
	(void)state;
	static const struct {
		const char *path;
		bool ok;
		unsigned long kb;
		int node;
	} cases[] = {
	    {"/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", true, 2048, -1},
	    {"/tmp/r/sys/devices/system/node/node1/hugepages/hugepages-1048576kB/nr_hugepages",
	     true, 1048576, 1},
	    /* a test root named like a node is not one */
	    {"/tmp/node7x/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", true, 2048, -1},
	    {"/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", false, 0, 0},
	    {"/proc/sys/vm/stat_interval", false, 0, 0},
	    {"task:12:345", false, 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned long kb = 0;
		int node = -2;
		assert_int_equal(hugepages_pool_of_path(cases[i].path, &kb, &node), cases[i].ok);
		if (!cases[i].ok)
			continue;
		assert_int_equal(kb, cases[i].kb);
		assert_int_equal(node, cases[i].node);
	}
}

static void test_format(void **state)
{
	(void)state;
	struct hugepages_count c[] = {{2048, 0, 2}, {2048, 1, 3}};
	struct hugepages_reservation r[] = {
	    {2048, 0, 2, (char *)"/n0", 100, true},
	    {2048, 1, 3, (char *)"/n1", 100, true},
	    {1048576, -1, 1, (char *)"/g", 77, false},
	};
	struct hugepages_use u = {.used = c, .n_used = 2, .resv = r, .n_resv = 3};
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	hugepages_status_format(&u, f);
	fclose(f);
	assert_string_equal(
	    out, "  hugepages 2048 kB: 5 in use by qemu (node 0: 2, node 1: 3); 5 reserved by its "
		 "launcher (node 0: 2, node 1: 3)\n"
		 "  hugepages 1048576 kB: 0 in use by qemu; 0 reserved by its launcher; 1 still "
		 "reserved by a killed launcher (pid 77): the next start gives them back\n");
	free(out);
	json_object *j = hugepages_status_json(&u);
	assert_non_null(j);
	assert_string_equal(
	    json_object_to_json_string_ext(j,
					   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	    "{\"in_use\":[{\"page_kb\":2048,\"node\":0,\"pages\":2},{\"page_kb\":2048,\"node\":1,"
	    "\"pages\":3}],\"reserved\":[{\"page_kb\":2048,\"node\":0,\"pages\":2,\"path\":\"/n0\","
	    "\"launcher_pid\":100,\"launcher_alive\":true},{\"page_kb\":2048,\"node\":1,\"pages\":"
	    "3,"
	    "\"path\":\"/n1\",\"launcher_pid\":100,\"launcher_alive\":true},{\"page_kb\":1048576,"
	    "\"node\":null,\"pages\":1,\"path\":\"/"
	    "g\",\"launcher_pid\":77,\"launcher_alive\":false}],"
	    "\"notes\":[]}");
	json_object_put(j);
	j = hugepages_status_json(NULL); /* a VM without hugepages */
	assert_string_equal(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN),
			    "{\"in_use\":[],\"reserved\":[],\"notes\":[]}");
	json_object_put(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_numa_maps),
	    cmocka_unit_test(test_smaps),
	    cmocka_unit_test(test_pool_of_path),
	    cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
