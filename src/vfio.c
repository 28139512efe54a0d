/* VFIO devices for the VM's lifetime (see vfio.h): the kernel's view is
 * /sys/bus/pci/devices/ADDR/{iommu_group,driver,driver_override,class} and
 * /sys/kernel/iommu_groups/N/devices/; a group is usable by qemu ("viable") when every member is
 * on vfio-pci, unbound, or a bridge (Documentation/driver-api/vfio.rst). */
#include "vfio.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmdline.h"
#include "macro.h"
#include "qemu_value.h"
#include "readfile.h"

/* PCI class 0x0604xx: PCI-to-PCI bridges (root ports, switches) may stay with their driver. */
#define PCI_CLASS_BRIDGE_PCI 0x0604
#define PCI_BASE_CLASS_BRIDGE 0x06
/* Bound on the members of one group, and on the devices of one definition. */
#define VFIO_GROUP_MAX 256
#define VFIO_DEVICES_MAX 256
#define IFF_UP_FLAG 0x1

/* --- the definition's devices ------------------------------------------------------------- */

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

/* qemu's device types that pass a host device through VFIO. */
static bool is_vfio_device(const char *driver)
{
	return driver && (streq(driver, VFIO_DRIVER) || streq(driver, "vfio-pci-nohotplug"));
}

/* The driver, host= and sysfsdev= of one -device value (any form, qemu_value.h); -EINVAL for a
 * malformed JSON form, -ENOMEM. */
static int device_fields(const char *v, char **driver, char **host, char **sysfsdev)
{
	struct qemu_value q;
	int r = qemu_value_parse(v, &q);
	if (r < 0)
		return r;
	const char *d = qemu_value_implied(&q, "driver");
	const char *h = qemu_value_get(&q, "host"), *sd = qemu_value_get(&q, "sysfsdev");
	if ((d && !(*driver = strdup(d))) ||
	    (is_vfio_device(d) &&
	     ((h && !(*host = strdup(h))) || (sd && !(*sysfsdev = strdup(sd))))))
		r = -ENOMEM;
	qemu_value_done(&q);
	return r;
}

bool vfio_is_device_value(const char *value)
{
	_cleanup_free_ char *driver = NULL, *host = NULL, *sysfsdev = NULL;
	return device_fields(value, &driver, &host, &sysfsdev) == 0 && is_vfio_device(driver);
}

/* A piece of a value that may make it vfio-pci's: it names the driver, or starts a JSON form
 * (whose escapes could spell it). */
static bool may_name_vfio(const char *s)
{
	if (!s)
		return false;
	if (s[0] == '{')
		return true;
	/* pieces are short: a loop beats strstr's set-up */
	for (; *s; s++)
		if (*s == 'v' && strncmp(s, VFIO_DRIVER, strlen(VFIO_DRIVER)) == 0)
			return true;
	return false;
}

bool vfio_option_may_be_device(const struct qemu_option *o)
{
	if (!qemu_option_is(o, "device") || !o->has_value)
		return false;
	if (o->is_scalar)
		return may_name_vfio(o->scalar);
	/* The value joins the parts' keys and values with `,` and `=` (commas inside a value
	 * doubled), so "vfio-pci", which holds neither, appears in it only inside one piece. */
	for (size_t i = 0; i < o->n_parts; i++)
		if (may_name_vfio(o->parts[i].key) || may_name_vfio(o->parts[i].value))
			return true;
	return false;
}

int vfio_devices_parse(const struct definition *d, struct vfio_device **ret, size_t *ret_n,
		       struct ql_error *err)
{
	_cleanup_free_ struct vfio_device *v = NULL;
	size_t n = 0;
	struct ql_shown s;
	for (size_t i = 0; i < d->n_options; i++) {
		const struct qemu_option *o = &d->options[i];
		if (!vfio_option_may_be_device(o))
			continue;
		_cleanup_free_ char *val = cmdline_option_value(o);
		_cleanup_free_ char *driver = NULL, *host = NULL, *sysfsdev = NULL;
		if (!val)
			return ql_error_set(err, ENOMEM, "out of memory");
		int r = device_fields(val, &driver, &host, &sysfsdev);
		if (r == -ENOMEM)
			return ql_error_set(err, ENOMEM, "out of memory");
		if (r < 0) /* qemu would read it some way: which, only a reader of it can tell */
			return ql_error_set(err, EINVAL,
					    "%s:%u:%u: `-device` is not JSON the launcher can read "
					    "(it checks every device for VFIO)",
					    d->path, o->mark.line, o->mark.column);
		if (!is_vfio_device(driver))
			continue;
		/* the device qemu opens: sysfsdev= when both are given (its vfio_realize) */
		const char *addr_text = host;
		if (sysfsdev) {
			const char *slash = strrchr(sysfsdev, '/');
			addr_text = slash ? slash + 1 : sysfsdev;
		}
		if (!addr_text)
			return ql_error_set(err, EINVAL,
					    "%s:%u:%u: vfio-pci needs host=DOMAIN:BUS:DEV.FN "
					    "or sysfsdev=",
					    d->path, o->mark.line, o->mark.column);
		if (n == VFIO_DEVICES_MAX)
			return ql_error_set(err, E2BIG, "%s:%u:%u: more than %d vfio-pci devices",
					    d->path, o->mark.line, o->mark.column,
					    VFIO_DEVICES_MAX);
		struct vfio_device *nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv)
			return ql_error_set(err, ENOMEM, "out of memory");
		v = nv;
		v[n] = (struct vfio_device){.mark = o->mark};
		if (!pci_address(addr_text, v[n].addr))
			return ql_error_set(err, EINVAL,
					    "%s:%u:%u: vfio-pci: `%s` is not a PCI address "
					    "(DOMAIN:BUS:DEV.FN)",
					    d->path, o->mark.line, o->mark.column,
					    ql_show(&s, addr_text));
		n++;
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* --- sysfs -------------------------------------------------------------------------------- */

/* root + "/" + rel (printf-style), with "/" as the real root giving "/rel". */
static char *at(const char *root, const char *fmt, ...) _printf_(2, 3);
static char *at(const char *root, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *rel = NULL;
	int n = vasprintf(&rel, fmt, ap);
	va_end(ap);
	char *s = NULL;
	if (n < 0 || asprintf(&s, "%s/%s", streq(root, "/") ? "" : root, rel) < 0)
		return NULL;
	return s;
}

/* The last component of a symbolic link's target ("vfio-pci" of .../drivers/vfio-pci). */
static char *link_name(const char *path)
{
	char target[PATH_MAX];
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return NULL;
	target[n] = '\0';
	const char *base = strrchr(target, '/');
	return strdup(base ? base + 1 : target);
}

/* A small file's text, trailing whitespace dropped; NULL when unreadable. */
static char *read_text(const char *path)
{
	char *s = NULL;
	size_t len = 0;
	if (!path || read_small_file(AT_FDCWD, path, 0, 4095, &s, &len) < 0)
		return NULL;
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	return s;
}

static char *dev_path(const char *root, const char *addr, const char *file)
{
	return file ? at(root, "sys/bus/pci/devices/%s/%s", addr, file)
		    : at(root, "sys/bus/pci/devices/%s", addr);
}

static unsigned long pci_class(const char *root, const char *addr)
{
	_cleanup_free_ char *p = dev_path(root, addr, "class");
	_cleanup_free_ char *t = read_text(p);
	return t ? strtoul(t, NULL, 16) : 0;
}

static void member_done(struct vfio_member *m)
{
	free(m->driver);
	free(m->override);
}

static void group_done(struct vfio_group *g)
{
	for (size_t i = 0; i < g->n; i++)
		member_done(&g->members[i]);
	free(g->members);
	free(g->id);
}

void vfio_plan_free(struct vfio_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_groups; i++)
		group_done(&p->groups[i]);
	free(p->groups);
	free(p->dev);
	free(p->id.groups);
	free(p->root);
	free(p);
}

static int member_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vfio_member *)a)->addr, ((const struct vfio_member *)b)->addr);
}

/* Every member of group `id` with its driver, override and class. */
static int read_group(const char *root, const char *id, struct vfio_group *g, struct ql_error *err)
{
	_cleanup_free_ char *dir = at(root, "sys/kernel/iommu_groups/%s/devices", id);
	if (!dir || !(g->id = strdup(id)))
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return ql_error_set_errno(err, errno, "reading `%s`", dir);
	struct dirent *de;
	while ((de = readdir(d))) {
		char addr[16];
		if (!pci_address(de->d_name, addr))
			continue;
		if (g->n == VFIO_GROUP_MAX)
			return ql_error_set(err, E2BIG, "IOMMU group %s has more than %d members",
					    id, VFIO_GROUP_MAX);
		struct vfio_member *nv = realloc(g->members, (g->n + 1) * sizeof(*nv));
		if (!nv)
			return ql_error_set(err, ENOMEM, "out of memory");
		g->members = nv;
		struct vfio_member *m = &g->members[g->n++];
		*m = (struct vfio_member){0};
		memcpy(m->addr, addr, sizeof(addr));
		_cleanup_free_ char *drv = dev_path(root, addr, "driver");
		_cleanup_free_ char *ovr = dev_path(root, addr, "driver_override");
		if (!drv || !ovr)
			return ql_error_set(err, ENOMEM, "out of memory");
		m->driver = link_name(drv);
		m->override = read_text(ovr);
		m->class = pci_class(root, addr);
		m->keeps_driver = m->class >> 8 == PCI_CLASS_BRIDGE_PCI;
	}
	if (g->n > 1)
		qsort(g->members, g->n, sizeof(*g->members), member_cmp);
	return 0;
}

static bool on_vfio(const struct vfio_member *m)
{
	return m->driver && streq(m->driver, VFIO_DRIVER);
}

/* A member not ready for qemu: on a host driver (a bridge may keep its own), or unbound while
 * qemu is to take it. */
static bool offends(const struct vfio_member *m)
{
	return m->assigned ? !on_vfio(m) : m->driver && !on_vfio(m) && !m->keeps_driver;
}

/* --- what the host uses a device for ------------------------------------------------------ */

/* Appends one reason to f, "; "-separated; *any says one was written. */
static void say(FILE *f, bool *any, const char *fmt, ...) _printf_(3, 4);
static void say(FILE *f, bool *any, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (*any)
		fputs("; ", f);
	vfprintf(f, fmt, ap);
	va_end(ap);
	*any = true;
}

/* The entries of a class directory (/sys/class/block, net, graphics) that sit below the PCI
 * device addr in the device tree: each one's name, via callback. */
static int below_device(const char *root, const char *class, const char *addr,
			int (*fn)(const char *root, const char *class_dir, const char *name,
				  FILE *f, bool *any),
			FILE *f, bool *any)
{
	_cleanup_free_ char *dir = at(root, "sys/class/%s", class);
	_cleanup_free_ char *needle = NULL;
	if (!dir || asprintf(&needle, "/%s/", addr) < 0)
		return -ENOMEM;
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return 0; /* no such class on this host */
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *link = path_join(dir, de->d_name);
		_cleanup_free_ char *real = link ? realpath(link, NULL) : NULL;
		if (!link)
			return -ENOMEM;
		if (!real)
			continue;
		_cleanup_free_ char *with_slash = NULL;
		if (asprintf(&with_slash, "%s/", real) < 0)
			return -ENOMEM;
		if (!strstr(with_slash, needle))
			continue;
		int r = fn(root, dir, de->d_name, f, any);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A block device below the device: mounted (by device number or source), swap, or held by
 * another block device (device mapper, md, bcache). */
static int block_in_use(const char *root, const char *class_dir, const char *name, FILE *f,
			bool *any)
{
	_cleanup_free_ char *dev_file = NULL, *holders = NULL, *src = NULL;
	if (asprintf(&dev_file, "%s/%s/dev", class_dir, name) < 0 ||
	    asprintf(&holders, "%s/%s/holders", class_dir, name) < 0 ||
	    asprintf(&src, "/dev/%s", name) < 0)
		return -ENOMEM;
	_cleanup_free_ char *dev = read_text(dev_file);
	_cleanup_closedir_ DIR *h = opendir(holders);
	for (struct dirent *de; h && (de = readdir(h));)
		if (de->d_name[0] != '.') {
			say(f, any, "%s is held by %s", name, de->d_name);
			break;
		}
	_cleanup_free_ char *mountinfo = at(root, "proc/self/mountinfo");
	_cleanup_fclose_ FILE *m = mountinfo ? fopen(mountinfo, "re") : NULL;
	char line[4096];
	while (m && fgets(line, sizeof(line), m)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - FSTYPE SOURCE ... */
		char majmin[32], mnt[2048];
		if (sscanf(line, "%*s %*s %31s %*s %2047s", majmin, mnt) != 2)
			continue;
		const char *sep = strstr(line, " - ");
		char fstype[64] = "", source[2048] = "";
		if (sep)
			sscanf(sep + 3, "%63s %2047s", fstype, source);
		if ((dev && streq(majmin, dev)) || streq(source, src)) {
			say(f, any, "%s is mounted on %s", name, mnt);
			break;
		}
	}
	_cleanup_free_ char *swaps = at(root, "proc/swaps");
	_cleanup_fclose_ FILE *s = swaps ? fopen(swaps, "re") : NULL;
	while (s && fgets(line, sizeof(line), s)) {
		char file[2048];
		if (sscanf(line, "%2047s", file) == 1 && streq(file, src)) {
			say(f, any, "%s is in use as swap", name);
			break;
		}
	}
	return 0;
}

static int net_up(const char *root, const char *class_dir, const char *name, FILE *f, bool *any)
{
	(void)root;
	_cleanup_free_ char *flags = NULL;
	if (asprintf(&flags, "%s/%s/flags", class_dir, name) < 0)
		return -ENOMEM;
	_cleanup_free_ char *t = read_text(flags);
	if (t && strtoul(t, NULL, 16) & IFF_UP_FLAG)
		say(f, any, "network interface %s is up (`ip link set %s down` first)", name, name);
	return 0;
}

/* A framebuffer below the device while a framebuffer console is bound: the host's console. */
static int fb_console(const char *root, const char *class_dir, const char *name, FILE *f, bool *any)
{
	(void)class_dir;
	_cleanup_free_ char *dir = at(root, "sys/class/vtconsole");
	_cleanup_closedir_ DIR *d = dir ? opendir(dir) : NULL;
	for (struct dirent *de; d && (de = readdir(d));) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *bind = NULL, *nm = NULL;
		if (asprintf(&bind, "%s/%s/bind", dir, de->d_name) < 0 ||
		    asprintf(&nm, "%s/%s/name", dir, de->d_name) < 0)
			return -ENOMEM;
		_cleanup_free_ char *b = read_text(bind), *n = read_text(nm);
		if (b && streq(b, "1") && n && strstr(n, "frame buffer")) {
			say(f, any,
			    "it drives the host's console (framebuffer %s, %s bound; `echo 0 > "
			    "/sys/class/vtconsole/%s/bind` first)",
			    name, de->d_name, de->d_name);
			break;
		}
	}
	return 0;
}

/* Why moving member m off its driver would break the host silently; NULL in *ret when nothing
 * is known to. */
static int host_use(const char *root, const struct vfio_member *m, char **ret)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return -ENOMEM;
	bool any = false;
	int r = 0;
	if (m->class >> 16 == PCI_BASE_CLASS_BRIDGE)
		say(f, &any, "it is a host or ISA bridge (class %06lx): part of the host's chipset",
		    m->class);
	else if ((r = below_device(root, "block", m->addr, block_in_use, f, &any)) == 0 &&
		 (r = below_device(root, "net", m->addr, net_up, f, &any)) == 0)
		r = below_device(root, "graphics", m->addr, fb_console, f, &any);
	if (fclose(f) != 0 || r < 0) {
		free(out);
		return -ENOMEM;
	}
	if (!any) {
		free(out);
		out = NULL;
	}
	*ret = out;
	return 0;
}

/* --- the plan ------------------------------------------------------------------------------ */

static int find_group(const struct vfio_plan *p, const char *id)
{
	for (size_t i = 0; i < p->n_groups; i++)
		if (streq(p->groups[i].id, id))
			return (int)i;
	return -1;
}

/* The device's group read into the plan (once per group). */
static int plan_device(struct vfio_plan *p, const struct definition *d, size_t k,
		       struct ql_error *err)
{
	const struct vfio_device *v = &p->dev[k];
	_cleanup_free_ char *dev = dev_path(p->root, v->addr, NULL);
	_cleanup_free_ char *grp = dev_path(p->root, v->addr, "iommu_group");
	if (!dev || !grp)
		return ql_error_set(err, ENOMEM, "out of memory");
	if (access(dev, F_OK) < 0)
		return ql_error_set(err, ENODEV,
				    "%s:%u:%u: vfio-pci %s: no such PCI device on this host",
				    d->path, v->mark.line, v->mark.column, v->addr);
	_cleanup_free_ char *group = link_name(grp);
	if (!group)
		return ql_error_set(
		    err, ENODEV,
		    "%s:%u:%u: vfio-pci %s: the IOMMU is off (the device has no IOMMU "
		    "group); enable it in the firmware and boot with intel_iommu=on or "
		    "amd_iommu=on",
		    d->path, v->mark.line, v->mark.column, v->addr);
	int gi = find_group(p, group);
	if (gi < 0) {
		struct vfio_group *nv = realloc(p->groups, (p->n_groups + 1) * sizeof(*nv));
		if (!nv)
			return ql_error_set(err, ENOMEM, "out of memory");
		p->groups = nv;
		gi = (int)p->n_groups++;
		p->groups[gi] = (struct vfio_group){.device = k};
		int r = read_group(p->root, group, &p->groups[gi], err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < p->groups[gi].n; i++)
		if (streq(p->groups[gi].members[i].addr, v->addr))
			p->groups[gi].members[i].assigned = true;
	return 0;
}

/* Unmanaged: every member must already be usable. */
static int check_viable(const struct vfio_plan *p, const struct definition *d, struct ql_error *err)
{
	for (size_t i = 0; i < p->n_groups; i++) {
		const struct vfio_group *g = &p->groups[i];
		const struct vfio_device *v = &p->dev[g->device];
		char *bad = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&bad, &len);
		if (!f)
			return ql_error_set(err, ENOMEM, "out of memory");
		size_t n = 0;
		for (size_t k = 0; k < g->n; k++) {
			const struct vfio_member *m = &g->members[k];
			if (!offends(m))
				continue;
			fprintf(f, "%s%s (%s%s%s)", n++ ? ", " : "", m->addr,
				m->driver ? "bound to " : "unbound", m->driver ? m->driver : "",
				m->assigned ? "; qemu takes it" : "");
		}
		if (fclose(f) != 0) {
			free(bad);
			return ql_error_set(err, ENOMEM, "out of memory");
		}
		_cleanup_free_ char *owned = bad;
		if (n == 0)
			continue;
		return ql_error_set(
		    err, EBUSY,
		    "%s:%u:%u: vfio-pci %s: IOMMU group %s is not viable: %s; the device qemu "
		    "takes must be bound to vfio-pci, every other device of the group to vfio-pci "
		    "(or be unbound, or be a bridge): `vfio: {managed: true}` "
		    "in the launcher section does it for the VM's lifetime; by hand, for each, "
		    "write vfio-pci to its driver_override, unbind it from its driver and write "
		    "its address to /sys/bus/pci/drivers_probe",
		    d->path, v->mark.line, v->mark.column, v->addr, g->id, owned);
	}
	return 0;
}

/* Managed: the members to move, unless the host needs one of them (each such member named). */
static int plan_rebinds(struct vfio_plan *p, const struct definition *d, struct ql_error *err)
{
	bool any = false;
	char *busy = NULL;
	size_t len = 0, n_busy = 0;
	FILE *f = open_memstream(&busy, &len);
	if (!f)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < p->n_groups; i++) {
		struct vfio_group *g = &p->groups[i];
		const struct vfio_device *v = &p->dev[g->device];
		for (size_t k = 0; k < g->n; k++) {
			struct vfio_member *m = &g->members[k];
			_cleanup_free_ char *why = NULL;
			if (!offends(m))
				continue;
			if (m->driver && host_use(p->root, m, &why) < 0) {
				fclose(f);
				free(busy);
				return ql_error_set(err, ENOMEM, "out of memory");
			}
			if (why)
				fprintf(
				    f,
				    "%s%s:%u:%u: vfio-pci %s: IOMMU group %s: %s (%s) is in use "
				    "by the host and is not moved to vfio-pci: %s",
				    n_busy++ ? "; " : "", d->path, v->mark.line, v->mark.column,
				    v->addr, g->id, m->addr, m->driver, why);
			m->rebind = true;
			any = true;
		}
	}
	if (fclose(f) != 0) {
		free(busy);
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	_cleanup_free_ char *busy_owned = busy;
	if (n_busy)
		return ql_error_set(err, EBUSY, "%s", busy_owned);
	_cleanup_free_ char *drv = at(p->root, "sys/bus/pci/drivers/" VFIO_DRIVER);
	if (!drv)
		return ql_error_set(err, ENOMEM, "out of memory");
	if (any && access(drv, F_OK) < 0)
		return ql_error_set(err, ENODEV,
				    "%s: vfio: managed: the vfio-pci driver is not loaded (`%s` "
				    "does not exist): `modprobe vfio-pci`",
				    d->path, drv);
	return 0;
}

int vfio_plan_compute(const char *root, const struct definition *d, const struct vfio_identity *id,
		      struct vfio_plan **ret, struct ql_error *err)
{
	_cleanup_vfio_plan_ struct vfio_plan *p = calloc(1, sizeof(*p));
	if (!p || !(p->root = strdup(root ? root : "/")))
		return ql_error_set(err, ENOMEM, "out of memory");
	p->def = d;
	p->managed = d->vfio_managed;
	if (id) {
		p->id = *id;
		p->id.groups = NULL;
		if (id->n_groups && !(p->id.groups = calloc(id->n_groups, sizeof(gid_t))))
			return ql_error_set(err, ENOMEM, "out of memory");
		for (size_t i = 0; i < id->n_groups; i++)
			p->id.groups[i] = id->groups[i];
	}
	int r = vfio_devices_parse(d, &p->dev, &p->n_dev, err);
	for (size_t k = 0; r == 0 && k < p->n_dev; k++)
		r = plan_device(p, d, k, err);
	if (r == 0)
		r = p->managed ? plan_rebinds(p, d, err) : check_viable(p, d, err);
	if (r < 0)
		return r;
	*ret = p->n_dev ? TAKE_PTR(p) : NULL;
	return 0;
}

int vfio_check(const char *sysfs_root, const struct definition *d, struct ql_error *err)
{
	_cleanup_vfio_plan_ struct vfio_plan *p = NULL;
	return vfio_plan_compute(sysfs_root, d, NULL, &p, err);
}

/* --- device nodes -------------------------------------------------------------------------- */

static bool in_groups(const struct vfio_identity *id, gid_t gid)
{
	if (gid == id->gid)
		return true;
	for (size_t i = 0; i < id->n_groups; i++)
		if (id->groups[i] == gid)
			return true;
	return false;
}

/* Can the identity read and write a node with this owner and mode? */
static bool node_open_to(const struct vfio_identity *id, const struct stat *st)
{
	if (id->uid == 0)
		return true;
	if (st->st_uid == id->uid)
		return (st->st_mode & 0600) == 0600;
	if (in_groups(id, st->st_gid))
		return (st->st_mode & 0060) == 0060;
	return (st->st_mode & 0006) == 0006;
}

/* The owner: value that opens node to the identity: a group's node becomes the identity's
 * (owner read-write, as the kernel makes it for root); the container (/dev/vfio/vfio, safe
 * for anyone by design) gets the kernel's default 0666. NULL in *ret when it is open already. */
static int node_value(const struct vfio_identity *id, const char *node, bool container, char **ret)
{
	struct stat st;
	*ret = NULL;
	if (!id->change || id->uid == 0)
		return 0;
	if (lstat(node, &st) < 0)
		return -errno;
	if (node_open_to(id, &st))
		return 0;
	int r = container ? asprintf(ret, "%u:%u:%04o", (unsigned)st.st_uid, (unsigned)st.st_gid,
				     (unsigned)((st.st_mode & 07777) | 0666))
			  : asprintf(ret, "%u:%u:%04o", (unsigned)id->uid, (unsigned)id->gid,
				     (unsigned)((st.st_mode & 07777) | 0600));
	return r < 0 ? -ENOMEM : 0;
}

/* --- describe and apply ------------------------------------------------------------------- */

char *vfio_plan_describe(const struct vfio_plan *p)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	bool ok = true;
	for (size_t i = 0; i < p->n_groups; i++) {
		const struct vfio_group *g = &p->groups[i];
		fprintf(f, "vfio: %s: IOMMU group %s:", p->dev[g->device].addr, g->id);
		for (size_t k = 0; k < g->n; k++)
			fprintf(f, " %s (%s)", g->members[k].addr,
				g->members[k].driver ? g->members[k].driver : "unbound");
		fputc('\n', f);
		for (size_t k = 0; k < g->n; k++) {
			const struct vfio_member *m = &g->members[k];
			if (!m->rebind)
				continue;
			_cleanup_free_ char *ovr = dev_path(p->root, m->addr, "driver_override");
			_cleanup_free_ char *w =
			    ovr ? journal_describe_write(ovr, m->override ? m->override : "",
							 VFIO_DRIVER)
				: NULL;
			_cleanup_free_ char *unbind =
			    m->driver ? at(p->root, "sys/bus/pci/drivers/%s/unbind", m->driver)
				      : NULL;
			_cleanup_free_ char *probe = at(p->root, "sys/bus/pci/drivers_probe");
			ok = ok && w && (unbind || !m->driver) && probe;
			fprintf(f, "vfio: would write %s\n", w ? w : "?");
			if (unbind)
				fprintf(f, "vfio: would write %s: %s\n", unbind, m->addr);
			fprintf(f, "vfio: would write %s: %s (%s%s at the end)\n",
				probe ? probe : "?", m->addr,
				m->driver ? "given back to " : "left unbound",
				m->driver ? m->driver : "");
		}
	}
	for (size_t i = 0; p->id.change && p->id.uid != 0 && i <= p->n_groups; i++) {
		bool container = i == p->n_groups;
		_cleanup_free_ char *node = container ? at(p->root, "dev/vfio/vfio")
						      : at(p->root, "dev/vfio/%s", p->groups[i].id);
		_cleanup_free_ char *value = NULL, *now = NULL, *w = NULL;
		struct stat st;
		ok = ok && node;
		int r = node ? node_value(&p->id, node, container, &value) : -ENOMEM;
		if (r == -ENOENT && !container)
			fprintf(f, "vfio: %s (made by the binding) would be given to %u:%u\n", node,
				(unsigned)p->id.uid, (unsigned)p->id.gid);
		if (r < 0 || !value || lstat(node, &st) < 0)
			continue;
		ok = ok &&
		     asprintf(&now, "%u:%u:%04o", (unsigned)st.st_uid, (unsigned)st.st_gid,
			      (unsigned)(st.st_mode & 07777)) >= 0 &&
		     (w = journal_describe_write(node, now, value));
		fprintf(f, "vfio: would chown/chmod %s\n", w ? w : "?");
	}
	if (fclose(f) != 0 || !ok) {
		free(out);
		return NULL;
	}
	return out;
}

static bool rebinds(const struct vfio_plan *p)
{
	for (size_t i = 0; i < p->n_groups; i++)
		for (size_t k = 0; k < p->groups[i].n; k++)
			if (p->groups[i].members[k].rebind)
				return true;
	return false;
}

bool vfio_plan_changes_host(const struct vfio_plan *p)
{
	return p && (rebinds(p) || (p->id.change && p->id.uid != 0));
}

/* A group another live launcher moved to vfio-pci is that VM's. */
static int refuse_taken(const struct vfio_plan *p, struct journal *j, struct ql_error *err)
{
	struct journal_binding *b = NULL;
	size_t n = 0;
	int r = journal_bindings(j, &b, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		const char *addr = strrchr(b[i].dev_dir, '/');
		for (size_t g = 0; addr && g < p->n_groups && r == 0; g++)
			for (size_t k = 0; k < p->groups[g].n; k++)
				if (streq(p->groups[g].members[k].addr, addr + 1)) {
					r = ql_error_set(
					    err, EBUSY,
					    "vfio-pci %s: IOMMU group %s is in use by VM %s "
					    "(launcher pid %d moved %s to vfio-pci for it)",
					    p->dev[p->groups[g].device].addr, p->groups[g].id,
					    b[i].owner, (int)b[i].pid, addr + 1);
					break;
				}
	}
	journal_bindings_free(b, n);
	return r;
}

static int give_node(const struct vfio_plan *p, struct journal *j, const char *node, bool container,
		     const struct ql_logger *log, struct ql_error *err)
{
	_cleanup_free_ char *value = NULL, *path = NULL;
	int r = node_value(&p->id, node, container, &value);
	if (r == -ENOENT && container)
		return 0; /* no legacy container: nothing to open */
	if (r < 0)
		return ql_error_set_errno(err, -r, "vfio: device node `%s`", node);
	if (!value)
		return 0;
	if (asprintf(&path, JOURNAL_OWNER_PREFIX "%s", node) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	ql_log(log, QL_LOG_INFO, "vfio: %s -> %s (for uid %u)", node, value, (unsigned)p->id.uid);
	r = journal_set(j, path, value, err);
	if (r < 0)
		ql_error_prefix(err, "vfio: ");
	return r;
}

int vfio_apply(const struct vfio_plan *planned, struct journal *j, const char *test_stop_at,
	       const struct ql_logger *log, struct ql_error *err)
{
	if (!planned)
		return 0;
	_cleanup_vfio_plan_ struct vfio_plan *p = NULL;
	int r = vfio_plan_compute(planned->root, planned->def, &planned->id, &p, err);
	if (r < 0 || !p)
		return r;
	bool nodes = p->id.change && p->id.uid != 0;
	if (vfio_plan_changes_host(p) && !j)
		return ql_error_set(err, EPERM,
				    "vfio: no journal of host changes (is the launcher root?)");
	_cleanup_journal_unlock_ int lock = -1;
	r = j ? journal_lock_vfio(j, &lock, err) : 0;
	if (r == 0 && j)
		r = refuse_taken(p, j, err);
	if (r == 0 && test_stop_at && streq(test_stop_at, "vfio-checked"))
		raise(SIGSTOP);
	for (size_t i = 0; r == 0 && i < p->n_groups; i++) {
		const struct vfio_group *g = &p->groups[i];
		for (size_t k = 0; r == 0 && k < g->n; k++) {
			const struct vfio_member *m = &g->members[k];
			if (!m->rebind)
				continue;
			_cleanup_free_ char *dev = dev_path(p->root, m->addr, NULL);
			_cleanup_free_ char *drv = dev_path(p->root, m->addr, "driver");
			if (!dev || !drv)
				return ql_error_set(err, ENOMEM, "out of memory");
			ql_log(log, QL_LOG_INFO, "vfio: moving %s (%s) to vfio-pci", m->addr,
			       m->driver ? m->driver : "unbound");
			r = journal_bind(j, dev, VFIO_DRIVER, err);
			if (r < 0) {
				ql_error_prefix(err, "vfio: moving %s to vfio-pci: ", m->addr);
				break;
			}
			/* the probe succeeds whether or not a driver took it: read it back */
			_cleanup_free_ char *now = link_name(drv);
			if (!now || !streq(now, VFIO_DRIVER))
				r = ql_error_set(err, EIO,
						 "vfio: %s did not land on vfio-pci (it is %s%s)",
						 m->addr, now ? "on " : "", now ? now : "unbound");
		}
		if (r == 0 && nodes) {
			_cleanup_free_ char *node = at(p->root, "dev/vfio/%s", g->id);
			r = node ? give_node(p, j, node, false, log, err)
				 : ql_error_set(err, ENOMEM, "out of memory");
		}
	}
	if (r == 0 && nodes) {
		_cleanup_free_ char *node = at(p->root, "dev/vfio/vfio");
		r = node ? give_node(p, j, node, true, log, err)
			 : ql_error_set(err, ENOMEM, "out of memory");
	}
	return r;
}

/* --- other definitions --------------------------------------------------------------------- */

/* The IOMMU group of addr on this host; NULL when it has none (or on ENOMEM). */
static char *group_of(const char *root, const char *addr)
{
	_cleanup_free_ char *grp = dev_path(root, addr, "iommu_group");
	return grp ? link_name(grp) : NULL;
}

int vfio_conflicts(const struct config_paths *paths, const char *name, const struct definition *d,
		   char ***ret_warnings, struct ql_error *err)
{
	_cleanup_free_ struct vfio_device *mine = NULL;
	size_t n_mine = 0;
	_cleanup_strv_free_ char **warnings = calloc(1, sizeof(char *));
	if (!warnings)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = vfio_devices_parse(d, &mine, &n_mine, err);
	if (r < 0)
		return r;
	_cleanup_strv_free_ char **names = NULL;
	if (n_mine && config_list(paths, &names, err) < 0)
		return -EIO;
	size_t n_warn = 0;
	for (size_t i = 0; names && names[i]; i++) {
		if (streq(names[i], name))
			continue;
		struct ql_error e = {0};
		_cleanup_free_ char *path = NULL, *text = NULL;
		_cleanup_definition_ struct definition *other = NULL;
		_cleanup_free_ struct vfio_device *theirs = NULL;
		size_t len = 0, n_theirs = 0;
		if (config_read_definition(paths, names[i], &path, &text, &len, &e) < 0 ||
		    definition_parse(path, text, len, &other, &e) < 0 ||
		    vfio_devices_parse(other, &theirs, &n_theirs, &e) < 0) {
			ql_error_clear(&e); /* its own --check reports it */
			continue;
		}
		for (size_t a = 0; a < n_mine; a++) {
			_cleanup_free_ char *ga = group_of(paths->sysfs_root, mine[a].addr);
			for (size_t b = 0; b < n_theirs; b++) {
				_cleanup_free_ char *gb =
				    group_of(paths->sysfs_root, theirs[b].addr);
				bool same =
				    ga && gb ? streq(ga, gb) : streq(mine[a].addr, theirs[b].addr);
				if (!same)
					continue;
				char **nw = realloc(warnings, (n_warn + 2) * sizeof(char *));
				if (!nw)
					return ql_error_set(err, ENOMEM, "out of memory");
				warnings = nw;
				warnings[n_warn + 1] = NULL;
				char *w = NULL;
				if (asprintf(&w,
					     "%s:%u:%u: vfio-pci %s: %s%s is also used by "
					     "definition `%s` (%s:%u:%u: vfio-pci %s): the two VMs "
					     "cannot run at the same time",
					     d->path, mine[a].mark.line, mine[a].mark.column,
					     mine[a].addr, ga ? "its IOMMU group " : "the device",
					     ga ? ga : "", names[i], path, theirs[b].mark.line,
					     theirs[b].mark.column, theirs[b].addr) < 0)
					return ql_error_set(err, ENOMEM, "out of memory");
				warnings[n_warn++] = w;
				break;
			}
		}
	}
	*ret_warnings = TAKE_PTR(warnings);
	return 0;
}

/* --- --status ------------------------------------------------------------------------------- */

void vfio_status_free(struct vfio_status *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].group);
		free(v[i].driver);
	}
	free(v);
}

static int status_add(struct vfio_status **v, size_t *n, const char *root, const char *addr,
		      const char *group, bool assigned)
{
	for (size_t i = 0; i < *n; i++)
		if (streq((*v)[i].addr, addr)) {
			(*v)[i].assigned |= assigned;
			return 0;
		}
	struct vfio_status *nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	struct vfio_status *s = &nv[(*n)++];
	*s = (struct vfio_status){.assigned = assigned};
	memcpy(s->addr, addr, sizeof(s->addr));
	_cleanup_free_ char *drv = dev_path(root, addr, "driver");
	if (!drv || (group && !(s->group = strdup(group))))
		return -ENOMEM;
	s->driver = link_name(drv);
	return 0;
}

int vfio_status_collect(const char *root, const struct definition *d, struct vfio_status **ret,
			size_t *ret_n, char ***ret_problems, struct ql_error *err)
{
	_cleanup_free_ struct vfio_device *dev = NULL;
	size_t n_dev = 0, n = 0, n_prob = 0;
	struct vfio_status *v = NULL;
	_cleanup_strv_free_ char **problems = calloc(1, sizeof(char *));
	if (!problems)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = vfio_devices_parse(d, &dev, &n_dev, err);
	for (size_t k = 0; r == 0 && k < n_dev; k++) {
		_cleanup_free_ char *group = group_of(root, dev[k].addr);
		r = status_add(&v, &n, root, dev[k].addr, group, true);
		_cleanup_free_ char *dir =
		    group ? at(root, "sys/kernel/iommu_groups/%s/devices", group) : NULL;
		_cleanup_closedir_ DIR *gd = dir ? opendir(dir) : NULL;
		for (struct dirent *de; r == 0 && gd && (de = readdir(gd));) {
			char addr[16];
			if (pci_address(de->d_name, addr))
				r = status_add(&v, &n, root, addr, group, false);
		}
	}
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (!v[i].assigned || (v[i].driver && streq(v[i].driver, VFIO_DRIVER)))
			continue;
		char **np = realloc(problems, (n_prob + 2) * sizeof(char *));
		if (!np) {
			r = -ENOMEM;
			break;
		}
		problems = np;
		problems[n_prob + 1] = NULL;
		if (asprintf(&problems[n_prob], "vfio-pci %s is %s%s, not on vfio-pci", v[i].addr,
			     v[i].driver ? "on " : "unbound", v[i].driver ? v[i].driver : "") < 0) {
			problems[n_prob] = NULL;
			r = -ENOMEM;
			break;
		}
		n_prob++;
	}
	if (r < 0) {
		vfio_status_free(v, n);
		return r == -ENOMEM ? ql_error_set(err, ENOMEM, "out of memory") : r;
	}
	*ret = v;
	*ret_n = n;
	*ret_problems = TAKE_PTR(problems);
	return 0;
}

char *vfio_status_format(const struct vfio_status *v, size_t n)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	if (n)
		fprintf(f, "  %-14s %-6s %-16s %s\n", "VFIO", "GROUP", "DRIVER", "");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  %-14s %-6s %-16s %s\n", v[i].addr, v[i].group ? v[i].group : "-",
			v[i].driver ? v[i].driver : "(unbound)",
			v[i].assigned ? "assigned" : "group member");
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}
