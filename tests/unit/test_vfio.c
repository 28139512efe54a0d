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

#include "cmdline.h"
#include "config.h"
#include "definition.h"
#include "macro.h"
#include "vfio.h"

static char root[64];

static void mkdirs(const char *rel)
{
	char cmd[1024];
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
	snprintf(file, sizeof(file), "%s/driver_override", rel);
	put(file, "(null)\n");
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

/* A class device (block, net, graphics) NAME below the PCI device addr at sub-path `below`, with
 * one attribute file. */
static void classdev(const char *class, const char *name, const char *addr, const char *below,
		     const char *file, const char *content)
{
	char rel[512], p[700], target[512];
	snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/%s", addr, below);
	mkdirs(rel);
	snprintf(p, sizeof(p), "%s/%s", rel, file);
	put(p, content);
	snprintf(rel, sizeof(rel), "sys/class/%s", class);
	mkdirs(rel);
	snprintf(p, sizeof(p), "%s/sys/class/%s/%s", root, class, name);
	snprintf(target, sizeof(target), "../../bus/pci/devices/%s/%s", addr, below);
	assert_int_equal(symlink(target, p), 0);
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
	mkdirs("sys/bus/pci/drivers/vfio-pci");
	/* group 5: a USB controller with a second function, an unbound third, and a root port */
	device("0000:05:00.0", 5, "xhci_hcd", "0x0c0330\n");
	device("0000:05:00.1", 5, "i2c_designware_pci", "0x0c8000\n");
	device("0000:05:00.2", 5, NULL, "0x088000\n");
	device("0000:00:1d.0", 5, "pcieport", "0x060400\n");
	/* groups 6-12: devices the host uses */
	device("0000:06:00.0", 6, "nvme", "0x010802\n");
	classdev("block", "nvme0n1p1", "0000:06:00.0", "nvme/nvme0/nvme0n1/nvme0n1p1", "dev",
		 "259:1\n");
	mkdirs("proc/self");
	put("proc/self/mountinfo", "22 1 0:21 / /proc rw - proc proc rw\n"
				   "30 1 259:1 / /srv rw,relatime - ext4 /dev/nvme0n1p1 rw\n");
	device("0000:07:00.0", 7, "ahci", "0x010601\n");
	classdev("block", "sdb2", "0000:07:00.0", "ata1/host0/block/sdb/sdb2", "dev", "8:18\n");
	put("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/dev/sdb2 partition 1000 0 -2\n");
	device("0000:08:00.0", 8, "megaraid_sas", "0x010400\n");
	classdev("block", "sdc", "0000:08:00.0", "host1/block/sdc", "dev", "8:32\n");
	mkdirs("sys/bus/pci/devices/0000:08:00.0/host1/block/sdc/holders/dm-0");
	device("0000:0d:00.0", 9, "e1000e", "0x020000\n");
	classdev("net", "eth1", "0000:0d:00.0", "net/eth1", "flags", "0x1003\n");
	device("0000:0a:00.0", 10, "amdgpu", "0x030000\n");
	classdev("graphics", "fb0", "0000:0a:00.0", "graphics/fb0", "name", "amdgpudrmfb\n");
	mkdirs("sys/class/vtconsole/vtcon0");
	mkdirs("sys/class/vtconsole/vtcon1");
	put("sys/class/vtconsole/vtcon0/bind", "0\n");
	put("sys/class/vtconsole/vtcon0/name", "(S) dummy device\n");
	put("sys/class/vtconsole/vtcon1/bind", "1\n");
	put("sys/class/vtconsole/vtcon1/name", "(M) frame buffer device\n");
	device("0000:0b:00.0", 11, "lpc_ich", "0x060100\n");
	device("0000:0b:00.3", 11, "snd_hda_intel", "0x040300\n");
	device("0000:0c:00.0", 12, "igb", "0x020000\n");
	classdev("net", "eth2", "0000:0c:00.0", "net/eth2", "flags", "0x1002\n");
	/* group 13: two functions, both in use */
	device("0000:0e:00.0", 13, "e1000e", "0x020000\n");
	classdev("net", "eth3", "0000:0e:00.0", "net/eth3", "flags", "0x1043\n");
	device("0000:0e:00.1", 13, "e1000e", "0x020000\n");
	classdev("net", "eth4", "0000:0e:00.1", "net/eth4", "flags", "0x1003\n");
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

static struct vfio_plan *plan_of(const char *launcher_lines, const char *device_lines, int want,
				 struct ql_error *err)
{
	char text[2048];
	snprintf(text, sizeof(text), "launcher:\n  binary: /bin/true\n%sqemu:\n- nodefaults\n%s",
		 launcher_lines, device_lines);
	struct definition *d = NULL;
	assert_int_equal(definition_parse("t.yml", text, strlen(text), &d, err), 0);
	struct vfio_plan *p = NULL;
	int r = vfio_plan_compute(root, d, NULL, &p, err);
	definition_free(d);
	assert_int_equal(r, want);
	return p;
}

#define MANAGED "  vfio:\n    managed: true\n"

static const struct vfio_member *member(const struct vfio_plan *p, const char *addr)
{
	for (size_t i = 0; i < p->n_groups; i++)
		for (size_t k = 0; k < p->groups[i].n; k++)
			if (streq(p->groups[i].members[k].addr, addr))
				return &p->groups[i].members[k];
	fail_msg("%s is no member", addr);
	return NULL;
}

/* The option forms: structured, driver= key, JSON (extra members and nesting ignored), host=
 * and sysfsdev= together, vfio-pci-nohotplug, and a -device that is not vfio-pci. */
static void test_device_forms(void **state)
{
	struct ql_error err = {0};
	const char *defs =
	    "- device: '{\"driver\": \"vfio-pci\", \"id\": \"h\\\"x\", \"host\": "
	    "\"0000:01:00.0\"}'\n"
	    "- device: {driver: vfio-pci, host: \"01:00.1\"}\n"
	    "- device: \"driver=vfio-pci,sysfsdev=/sys/bus/pci/devices/0000:03:00.0\"\n"
	    "- device: '{\"driver\": \"virtio-net-pci\", \"host\": \"0000:09:00.0\"}'\n"
	    "- device: '{\"driver\": \"vfio-pci\", \"x-opts\": {\"host\": \"bad\"}, \"host\": "
	    "\"02:00.0\"}'\n"
	    /* both: qemu opens sysfsdev='s device */
	    "- device: [vfio-pci, host: \"0000:0b:00.0\", sysfsdev: "
	    "/sys/bus/pci/devices/0000:0a:00.0]\n"
	    "- device: [vfio-pci-nohotplug, host: \"0000:0c:00.0\"]\n";
	char text[1024];
	snprintf(text, sizeof(text), "launcher:\n  binary: /bin/true\nqemu:\n%s", defs);
	struct definition *d = NULL;
	assert_int_equal(definition_parse("t.yml", text, strlen(text), &d, &err), 0);
	struct vfio_device *v = NULL;
	size_t n = 0;
	assert_int_equal(vfio_devices_parse(d, &v, &n, &err), 0);
	assert_int_equal(n, 6);
	assert_string_equal(v[0].addr, "0000:01:00.0");
	assert_string_equal(v[1].addr, "0000:01:00.1");
	assert_string_equal(v[2].addr, "0000:03:00.0");
	assert_string_equal(v[3].addr, "0000:02:00.0");
	assert_string_equal(v[4].addr, "0000:0a:00.0");
	assert_string_equal(v[5].addr, "0000:0c:00.0");
	assert_int_equal(v[1].mark.line, 5);
	free(v);
	definition_free(d);
	plan_of("", "- device: '{\"driver\": \"vfio-pci\", \"host\": \"1:2:3\"}'\n", -EINVAL, &err);
	assert_non_null(strstr(err.msg, "t.yml:5:3: vfio-pci: `1:2:3` is not a PCI address"));
	ql_error_clear(&err);
	/* JSON qemu would read one way or another, the launcher not at all: refused, since it could
	 * hide a vfio-pci from the checks */
	plan_of("", "- device: '{\"driver\": \"vfio\\-pci\", \"host\": \"01:00.0\"}'\n", -EINVAL,
		&err);
	assert_non_null(strstr(err.msg, "t.yml:5:3: `-device` is not JSON the launcher can read"));
	ql_error_clear(&err);
}

/* vfio_option_may_be_device(), the test before building a value, never misses a vfio-pci device
 * (whatever the form) and passes over the common -device and every other option. */
static void test_device_prefilter(void **state)
{
	(void)state;
	static const struct {
		const char *entry;
		bool vfio, may_be;
	} cases[] = {
	    {"- device: [vfio-pci, host: 01:00.0]\n", true, true},
	    {"- device: \"vfio-pci,host=01:00.0\"\n", true, true},
	    {"- device: {driver: vfio-pci, host: 01:00.0}\n", true, true},
	    {"- device: [driver: vfio-pci, host: 01:00.0]\n", true, true},
	    {"- device: [x-y, driver: vfio-pci]\n", false, true}, /* the bare first part wins */
	    {"- device: ['vfio-pci,host=01:00.0', id: g]\n", true, true},
	    /* JSON escapes as qemu decodes them: \u002d is "-", a key may be escaped too, and
	     * qemu's parser takes single quotes; "\-" is no JSON escape (qemu refuses it) */
	    {"- device: '{\"driver\": \"vfio\\u002dpci\", \"host\": \"01:00.0\"}'\n", true, true},
	    {"- device: '{\"dri\\u0076er\": \"vfio-pci\", \"host\": \"01:00.0\"}'\n", true, true},
	    {"- device: \"{'driver': 'vfio\\\\u002Dpci', 'host': '01:00.0'}\"\n", true, true},
	    {"- device: '{\"driver\": \"vfio\\-pci\", \"host\": \"01:00.0\"}'\n", false, true},
	    {"- device: '{\"driver\": \"vfio-pci\\ud800\"}'\n", false, true},
	    {"- device: '{\"driver\": \"vfio-pci\\ud83d\\ude00\"}'\n", false, true},
	    {"- device: {driver: vfio-pcie}\n", false, true},
	    {"- device: [virtio-blk-pci, drive: d0, bus: pci.0]\n", false, false},
	    {"- device: \"virtio-net-pci,netdev=n0\"\n", false, false},
	    {"- device: [x, 'a,b', c: 'd,,e']\n", false, false},
	    {"- drive: {file: vfio-pci.img}\n", false, false},
	    {"- nographic\n", false, false},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct ql_error err = {0};
		char text[256];
		snprintf(text, sizeof(text), "launcher:\n  binary: /bin/true\nqemu:\n%s",
			 cases[i].entry);
		struct definition *d = NULL;
		assert_int_equal(definition_parse("t.yml", text, strlen(text), &d, &err), 0);
		const struct qemu_option *o = &d->options[0];
		_cleanup_free_ char *val = cmdline_option_value(o);
		assert_non_null(val);
		bool vfio = qemu_option_is(o, "device") && vfio_is_device_value(val);
		if (vfio != cases[i].vfio || vfio_option_may_be_device(o) != cases[i].may_be)
			fail_msg("%s: vfio %d, may be %d", cases[i].entry, vfio,
				 vfio_option_may_be_device(o));
		definition_free(d);
	}
}

/* Managed: the audio function on its host driver is planned to move, the GPU already on
 * vfio-pci is not; --dry-run lists the three writes. */
static void test_managed_plans_member(void **state)
{
	struct ql_error err = {0};
	struct vfio_plan *p =
	    plan_of(MANAGED, "- device: [vfio-pci, host: \"02:00.0\"]\n", 0, &err);
	assert_non_null(p);
	assert_int_equal(p->n_groups, 1);
	assert_string_equal(p->groups[0].id, "2");
	assert_true(member(p, "0000:02:00.1")->rebind);
	assert_false(member(p, "0000:02:00.0")->rebind);
	assert_true(member(p, "0000:02:00.0")->assigned);
	assert_true(vfio_plan_changes_host(p));
	char *text = vfio_plan_describe(p);
	assert_non_null(text);
	char want[512];
	snprintf(want, sizeof(want),
		 "vfio: would write %s/sys/bus/pci/devices/0000:02:00.1/driver_override: (null) -> "
		 "vfio-pci\n",
		 root);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want),
		 "vfio: would write %s/sys/bus/pci/drivers/snd_hda_intel/unbind: 0000:02:00.1\n",
		 root);
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, "0000:02:00.1 (given back to snd_hda_intel at the end)"));
	free(text);
	vfio_plan_free(p);
}

/* A multifunction device whose functions are both on host drivers: both move; a bridge of the
 * group keeps its driver; the unbound, unassigned function stays unbound. */
static void test_multifunction_and_bridge(void **state)
{
	struct ql_error err = {0};
	struct vfio_plan *p =
	    plan_of(MANAGED, "- device: [vfio-pci, host: \"0000:05:00.0\"]\n", 0, &err);
	assert_true(member(p, "0000:05:00.0")->rebind);
	assert_true(member(p, "0000:05:00.1")->rebind);
	assert_false(member(p, "0000:00:1d.0")->rebind);
	assert_true(member(p, "0000:00:1d.0")->keeps_driver);
	assert_false(member(p, "0000:05:00.2")->rebind);
	vfio_plan_free(p);
	/* the same group unmanaged: both functions named */
	plan_of("", "- device: [vfio-pci, host: \"0000:05:00.0\"]\n", -EBUSY, &err);
	assert_non_null(strstr(err.msg, "IOMMU group 5 is not viable: 0000:05:00.0 (bound to "
					"xhci_hcd; qemu takes it), 0000:05:00.1 (bound to "
					"i2c_designware_pci)"));
	ql_error_clear(&err);
}

/* An unbound assigned device: unusable for qemu as it is; managed moves it. */
static void test_unbound_assigned(void **state)
{
	struct ql_error err = {0};
	plan_of("", "- device: [vfio-pci, host: \"0000:03:00.1\"]\n", -EBUSY, &err);
	assert_non_null(strstr(err.msg, "0000:03:00.1 (unbound; qemu takes it)"));
	ql_error_clear(&err);
	struct vfio_plan *p =
	    plan_of(MANAGED, "- device: [vfio-pci, host: \"0000:03:00.1\"]\n", 0, &err);
	assert_true(member(p, "0000:03:00.1")->rebind);
	assert_false(member(p, "0000:03:00.0")->rebind); /* on vfio-pci already */
	char *text = vfio_plan_describe(p);
	assert_non_null(strstr(text, "0000:03:00.1 (left unbound at the end)"));
	assert_null(strstr(text, "unbind"));
	free(text);
	vfio_plan_free(p);
}

/* What the host uses is refused, naming the use: a mounted disk, swap, a held disk, a network
 * interface that is up, the console's framebuffer, a chipset bridge. */
static void test_host_use_refused(void **state)
{
	static const struct {
		const char *addr, *why;
	} cases[] = {
	    {"0000:06:00.0", "0000:06:00.0 (nvme) is in use by the host and is not moved to "
			     "vfio-pci: nvme0n1p1 is mounted on /srv"},
	    {"0000:07:00.0", "sdb2 is in use as swap"},
	    {"0000:08:00.0", "sdc is held by dm-0"},
	    {"0000:0d:00.0", "network interface eth1 is up"},
	    {"0000:0a:00.0", "it drives the host's console (framebuffer fb0, vtcon1 bound"},
	    {"0000:0b:00.0", "it is a host or ISA bridge (class 060100)"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ql_error err = {0};
		char line[128];
		snprintf(line, sizeof(line), "- device: [vfio-pci, host: \"%s\"]\n",
			 i == 5 ? "0000:0b:00.3" : cases[i].addr);
		assert_null(plan_of(MANAGED, line, -EBUSY, &err));
		if (!strstr(err.msg, cases[i].why))
			fail_msg("%s: %s", cases[i].addr, err.msg);
		ql_error_clear(&err);
	}
	/* every member in use is named */
	struct ql_error e2 = {0};
	assert_null(
	    plan_of(MANAGED, "- device: [vfio-pci, host: \"0000:0e:00.0\"]\n", -EBUSY, &e2));
	assert_non_null(strstr(e2.msg, "network interface eth3 is up"));
	assert_non_null(strstr(e2.msg, "; t.yml:7:3: vfio-pci 0000:0e:00.0: IOMMU group 13: "
				       "0000:0e:00.1 (e1000e) is in use by the host"));
	ql_error_clear(&e2);
	/* an interface that is down is fine */
	struct ql_error err = {0};
	struct vfio_plan *p =
	    plan_of(MANAGED, "- device: [vfio-pci, host: \"0000:0c:00.0\"]\n", 0, &err);
	assert_true(member(p, "0000:0c:00.0")->rebind);
	vfio_plan_free(p);
}

/* Two definitions of one config dir sharing a group: --check names the other; one not sharing
 * says nothing. */
static void test_shared_group_between_definitions(void **state)
{
	char dir[256], cmd[600];
	snprintf(dir, sizeof(dir), "%s/etc", root);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
	assert_int_equal(system(cmd), 0);
	static const char *const defs[][2] = {
	    {"gpu", "- device: [vfio-pci, host: \"0000:05:00.0\"]\n"},
	    {"other", "- device: [virtio-net-pci]\n- device: [vfio-pci, host: \"0000:05:00.1\"]\n"},
	    {"apart", "- device: [vfio-pci, host: \"0000:01:00.0\"]\n"},
	};
	for (size_t i = 0; i < 3; i++) {
		char p[512];
		snprintf(p, sizeof(p), "etc/%s.yml", defs[i][0]);
		char text[512];
		snprintf(text, sizeof(text), "launcher:\n  binary: /bin/true\nqemu:\n%s",
			 defs[i][1]);
		put(p, text);
	}
	struct config_paths paths = {.config_dir = dir, .sysfs_root = root};
	char text[512];
	snprintf(text, sizeof(text), "launcher:\n  binary: /bin/true\nqemu:\n%s", defs[0][1]);
	struct definition *d = NULL;
	struct ql_error err = {0};
	assert_int_equal(definition_parse("gpu.yml", text, strlen(text), &d, &err), 0);
	char **w = NULL;
	assert_int_equal(vfio_conflicts(&paths, "gpu", d, &w, &err), 0);
	assert_non_null(w[0]);
	assert_non_null(
	    strstr(w[0], "gpu.yml:4:3: vfio-pci 0000:05:00.0: its IOMMU group 5 is also used by "
			 "definition `other`"));
	assert_non_null(strstr(w[0], "other.yml:5:3: vfio-pci 0000:05:00.1"));
	assert_null(w[1]);
	for (char **x = w; *x; x++)
		free(*x);
	free(w);
	definition_free(d);
}

/* --status: the devices, their group members and drivers; an assigned device off vfio-pci is a
 * problem. */
static void test_status(void **state)
{
	char text[256];
	snprintf(
	    text, sizeof(text),
	    "launcher:\n  binary: /bin/true\nqemu:\n- device: [vfio-pci, host: \"02:00.0\"]\n");
	struct definition *d = NULL;
	struct ql_error err = {0};
	assert_int_equal(definition_parse("t.yml", text, strlen(text), &d, &err), 0);
	struct vfio_status *v = NULL;
	size_t n = 0;
	char **problems = NULL;
	assert_int_equal(vfio_status_collect(root, d, &v, &n, &problems, &err), 0);
	assert_int_equal(n, 2);
	assert_null(problems[0]);
	char *out = vfio_status_format(v, n);
	assert_non_null(strstr(out, "0000:02:00.0   2      vfio-pci         assigned"));
	assert_non_null(strstr(out, "0000:02:00.1   2      snd_hda_intel    group member"));
	free(out);
	vfio_status_free(v, n);
	free(problems);
	definition_free(d);
	snprintf(
	    text, sizeof(text),
	    "launcher:\n  binary: /bin/true\nqemu:\n- device: [vfio-pci, host: \"05:00.0\"]\n");
	assert_int_equal(definition_parse("t.yml", text, strlen(text), &d, &err), 0);
	assert_int_equal(vfio_status_collect(root, d, &v, &n, &problems, &err), 0);
	assert_string_equal(problems[0], "vfio-pci 0000:05:00.0 is on xhci_hcd, not on vfio-pci");
	vfio_status_free(v, n);
	for (char **x = problems; *x; x++)
		free(*x);
	free(problems);
	definition_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_viable_group),
	    cmocka_unit_test(test_member_on_host_driver),
	    cmocka_unit_test(test_unbound_and_bridge_are_fine),
	    cmocka_unit_test(test_missing_device_and_no_iommu),
	    cmocka_unit_test(test_device_forms),
	    cmocka_unit_test(test_device_prefilter),
	    cmocka_unit_test(test_managed_plans_member),
	    cmocka_unit_test(test_multifunction_and_bridge),
	    cmocka_unit_test(test_unbound_assigned),
	    cmocka_unit_test(test_host_use_refused),
	    cmocka_unit_test(test_shared_group_between_definitions),
	    cmocka_unit_test(test_status),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
