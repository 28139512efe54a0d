/* Unit tests of the VFIO viability check on fake sysfs trees (a temp dir as root): viable and
 * non-viable groups, unbound members, bridges, multifunction devices, a missing device, no IOMMU,
 * and the option forms (host= short and long, sysfsdev=). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "definition.h"
#include "vfio.h"

static char root[64];

static void mkdirs(const char *rel)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/%s'", root, rel);
	assert_int_equal(system(cmd), 0);
}

static void put(const char *rel, const char *text)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A PCI device in IOMMU group `group` (-1: none), bound to `driver` (NULL: unbound). */
static void device(const char *addr, int group, const char *driver, const char *class)
{
	char rel[256], target[256], p[512], file[300];
	snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s", addr);
	mkdirs(rel);
	snprintf(file, sizeof(file), "%s/class", rel);
	put(file, class);
	if (driver) {
		snprintf(target, sizeof(target), "../../../bus/pci/drivers/%s", driver);
		snprintf(p, sizeof(p), "%s/%s/driver", root, rel);
		assert_int_equal(symlink(target, p), 0);
	}
	if (group >= 0) {
		snprintf(target, sizeof(target), "../../../../kernel/iommu_groups/%d", group);
		snprintf(p, sizeof(p), "%s/%s/iommu_group", root, rel);
		assert_int_equal(symlink(target, p), 0);
		snprintf(rel, sizeof(rel), "sys/kernel/iommu_groups/%d/devices/%s", group, addr);
		mkdirs(rel);
	}
}

static int setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/ql-vfio-test.XXXXXX");
	assert_non_null(mkdtemp(root));
	/* group 1: a GPU and its audio function, both on vfio-pci: viable */
	device("0000:01:00.0", 1, "vfio-pci", "0x030000\n");
	device("0000:01:00.1", 1, "vfio-pci", "0x040300\n");
	/* group 2: a GPU on vfio-pci, its audio function still on snd_hda_intel */
	device("0000:02:00.0", 2, "vfio-pci", "0x030000\n");
	device("0000:02:00.1", 2, "snd_hda_intel", "0x040300\n");
	/* group 3: a NIC on vfio-pci beside an unbound function and a bridge on pcieport */
	device("0000:03:00.0", 3, "vfio-pci", "0x020000\n");
	device("0000:03:00.1", 3, NULL, "0x020000\n");
	device("0000:00:1c.0", 3, "pcieport", "0x060400\n");
	/* no IOMMU group */
	device("0000:04:00.0", -1, "nvme", "0x010802\n");
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd);
}

static int check(const char *device_line, struct ql_error *err)
{
	char text[512];
	snprintf(text, sizeof(text), "launcher:\n  binary: /bin/true\nqemu:\n- nodefaults\n%s",
		 device_line);
	struct definition *d = NULL;
	int r = definition_parse("t.yml", text, strlen(text), &d, err);
	assert_int_equal(r, 0);
	r = vfio_check(root, d, err);
	definition_free(d);
	return r;
}

static void test_viable_group(void **state)
{
	struct ql_error err = {0};
	assert_int_equal(check("- device: [vfio-pci, host: \"0000:01:00.0\"]\n", &err), 0);
	/* qemu's short form assumes domain 0 */
	assert_int_equal(check("- device: [vfio-pci, host: \"01:00.1\"]\n", &err), 0);
	assert_int_equal(
	    check("- device: \"vfio-pci,sysfsdev=/sys/bus/pci/devices/0000:01:00.0\"\n", &err), 0);
	/* other devices are no business of this check */
	assert_int_equal(check("- device: [virtio-net-pci, netdev: n0]\n", &err), 0);
}

static void test_member_on_host_driver(void **state)
{
	struct ql_error err = {0};
	assert_int_equal(check("- device: [vfio-pci, host: \"02:00.0\"]\n", &err), -EBUSY);
	assert_non_null(strstr(err.msg,
			       "t.yml:5:3: vfio-pci 0000:02:00.0: IOMMU group 2 is not viable: "
			       "0000:02:00.1 (bound to snd_hda_intel)"));
	assert_non_null(strstr(err.msg, "driver_override"));
	ql_error_clear(&err);
}

static void test_unbound_and_bridge_are_fine(void **state)
{
	struct ql_error err = {0};
	assert_int_equal(check("- device: [vfio-pci, host: \"0000:03:00.0\"]\n", &err), 0);
}

static void test_missing_device_and_no_iommu(void **state)
{
	struct ql_error err = {0};
	assert_int_equal(check("- device: [vfio-pci, host: \"0000:09:00.0\"]\n", &err), -ENODEV);
	assert_non_null(strstr(err.msg, "t.yml:5:3: vfio-pci 0000:09:00.0: no such PCI device"));
	ql_error_clear(&err);
	assert_int_equal(check("- device: [vfio-pci, host: \"0000:04:00.0\"]\n", &err), -ENODEV);
	assert_non_null(strstr(err.msg, "the IOMMU is off"));
	ql_error_clear(&err);
	assert_int_equal(check("- device: [vfio-pci, id: gpu]\n", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "vfio-pci needs host="));
	ql_error_clear(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_viable_group),
	    cmocka_unit_test(test_member_on_host_driver),
	    cmocka_unit_test(test_unbound_and_bridge_are_fine),
	    cmocka_unit_test(test_missing_device_and_no_iommu),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
