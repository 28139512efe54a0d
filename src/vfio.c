/* The VFIO viability check (see vfio.h). */
#include "vfio.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmdline.h"
#include "macro.h"

/* PCI class 0x0604xx: PCI-to-PCI bridges (root ports, switches) may stay with their driver. */
#define PCI_CLASS_BRIDGE_PCI 0x0604
/* Bound on the members of one group we look at. */
#define VFIO_GROUP_MAX 256

/* "01:00.0" (qemu assumes domain 0) or "0000:01:00.0" -> "0000:01:00.0"; false if not a PCI
 * address. */
static bool pci_address(const char *in, char out[16])
{
	unsigned dom = 0, bus, dev, fn;
	char tail;
	if (sscanf(in, "%x:%x:%x.%x%c", &dom, &bus, &dev, &fn, &tail) != 4) {
		dom = 0;
		if (sscanf(in, "%x:%x.%x%c", &bus, &dev, &fn, &tail) != 3)
			return false;
	}
	if (dom > 0xffff || bus > 0xff || dev > 0x1f || fn > 7)
		return false;
	snprintf(out, 16, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
	return true;
}

/* The host address of a `-device vfio-pci,...` value: host=ADDR or sysfsdev=.../ADDR. */
static bool vfio_host(const char *value, char out[16])
{
	if (strncmp(value, "vfio-pci,", 9) != 0)
		return false;
	for (const char *p = value + 9; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		char part[PATH_MAX];
		snprintf(part, sizeof(part), "%.*s", (int)strcspn(p, ","), p);
		if (strncmp(part, "host=", 5) == 0)
			return pci_address(part + 5, out);
		if (strncmp(part, "sysfsdev=", 9) == 0) {
			const char *slash = strrchr(part, '/');
			return pci_address(slash ? slash + 1 : part + 9, out);
		}
	}
	return false;
}

static char *dev_path(const char *root, const char *addr, const char *file)
{
	char *s = NULL;
	if (asprintf(&s, "%s/sys/bus/pci/devices/%s%s%s", streq(root, "/") ? "" : root, addr,
		     file ? "/" : "", file ? file : "") < 0)
		return NULL;
	return s;
}

/* The last component of a symbolic link's target ("vfio-pci" of .../drivers/vfio-pci). */
static bool link_name(const char *path, char *out, size_t size)
{
	char target[PATH_MAX];
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	const char *base = strrchr(target, '/');
	base = base ? base + 1 : target;
	size_t len = strlen(base);
	if (len >= size)
		return false;
	memcpy(out, base, len + 1);
	return true;
}

static unsigned long pci_class(const char *root, const char *addr)
{
	_cleanup_free_ char *p = dev_path(root, addr, "class");
	_cleanup_fclose_ FILE *f = p ? fopen(p, "re") : NULL;
	unsigned long c = 0;
	if (!f || fscanf(f, "%lx", &c) != 1)
		return 0;
	return c;
}

/* Members of the group that keep a host driver and are no bridge: "0000:01:00.1 (snd_hda_intel)"
 * joined with ", "; NULL in *ret when the group is viable. */
static int offenders(const char *root, const char *group, char **ret, struct ql_error *err)
{
	_cleanup_free_ char *dir = NULL;
	if (asprintf(&dir, "%s/sys/kernel/iommu_groups/%s/devices", streq(root, "/") ? "" : root,
		     group) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return ql_error_set_errno(err, errno, "reading `%s`", dir);
	char *out = NULL;
	size_t len = 0, n = 0;
	_cleanup_fclose_ FILE *f = open_memstream(&out, &len);
	if (!f)
		return ql_error_set(err, ENOMEM, "out of memory");
	struct dirent *de;
	while ((de = readdir(d)) && n < VFIO_GROUP_MAX) {
		char addr[16], driver[NAME_MAX + 1];
		if (!pci_address(de->d_name, addr))
			continue;
		_cleanup_free_ char *drv = dev_path(root, addr, "driver");
		if (!drv || !link_name(drv, driver, sizeof(driver)) || streq(driver, "vfio-pci"))
			continue; /* unbound, or ready */
		if (pci_class(root, addr) >> 8 == PCI_CLASS_BRIDGE_PCI)
			continue;
		fprintf(f, "%s%s (bound to %s)", n++ ? ", " : "", addr, driver);
	}
	if (fclose(TAKE_PTR(f)) != 0) {
		free(out);
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	if (n == 0) {
		free(out);
		out = NULL;
	}
	*ret = out;
	return 0;
}

static int check_device(const char *root, const struct definition *d, const char *addr,
			struct ql_mark m, struct ql_error *err)
{
	_cleanup_free_ char *dev = dev_path(root, addr, NULL);
	_cleanup_free_ char *grp = dev_path(root, addr, "iommu_group");
	if (!dev || !grp)
		return ql_error_set(err, ENOMEM, "out of memory");
	if (access(dev, F_OK) < 0)
		return ql_error_set(err, ENODEV,
				    "%s:%u:%u: vfio-pci %s: no such PCI device on this host",
				    d->path, m.line, m.column, addr);
	char group[NAME_MAX + 1];
	if (!link_name(grp, group, sizeof(group)))
		return ql_error_set(
		    err, ENODEV,
		    "%s:%u:%u: vfio-pci %s: the IOMMU is off (the device has no IOMMU "
		    "group); enable it in the firmware and boot with intel_iommu=on or "
		    "amd_iommu=on",
		    d->path, m.line, m.column, addr);
	_cleanup_free_ char *bad = NULL;
	int r = offenders(root, group, &bad, err);
	if (r < 0 || !bad)
		return r;
	return ql_error_set(
	    err, EBUSY,
	    "%s:%u:%u: vfio-pci %s: IOMMU group %s is not viable: %s; every device of "
	    "the group must be bound to vfio-pci (or be unbound): for each, write "
	    "vfio-pci to its driver_override, unbind it from its driver and write "
	    "its address to /sys/bus/pci/drivers_probe",
	    d->path, m.line, m.column, addr, group, bad);
}

int vfio_check(const char *sysfs_root, const struct definition *d, struct ql_error *err)
{
	const char *root = sysfs_root ? sysfs_root : "/";
	for (size_t i = 0; i < d->n_options; i++) {
		const struct qemu_option *o = &d->options[i];
		if (!streq(o->name, "device") || !o->has_value)
			continue;
		_cleanup_free_ char *v = cmdline_option_value(o);
		char addr[16];
		if (!v)
			return ql_error_set(err, ENOMEM, "out of memory");
		if (!vfio_host(v, addr)) {
			if (strncmp(v, "vfio-pci,", 9) == 0)
				return ql_error_set(
				    err, EINVAL,
				    "%s:%u:%u: vfio-pci needs host=DOMAIN:BUS:DEV.FN "
				    "or sysfsdev=",
				    d->path, o->mark.line, o->mark.column);
			continue;
		}
		int r = check_device(root, d, addr, o->mark, err);
		if (r < 0)
			return r;
	}
	return 0;
}
