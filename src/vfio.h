/* VFIO devices of a definition (`-device vfio-pci,host=` / `sysfsdev=`, `driver=vfio-pci`, the
 * JSON form): each device's IOMMU group and its members as the host has them, checked before
 * anything starts; with `vfio: {managed: true}` the members are moved to vfio-pci through the
 * journal and given back when the VM ends; the group's device node is made accessible to the
 * identity qemu runs as. Reads and writes sysfs under a root directory ("/" but for tests). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "definition.h"
#include "error.h"
#include "journal.h"
#include "log.h"

#define VFIO_DRIVER "vfio-pci"

/* A `-device vfio-pci` of the definition. */
struct vfio_device {
	char addr[16]; /* "0000:01:00.0" */
	struct ql_mark mark;
};

/* The VFIO devices of d, in order (a device named twice is listed twice). -EINVAL with
 * "FILE:LINE:COL: ..." when a vfio-pci device names no host address. Pure. */
int vfio_devices_parse(const struct definition *d, struct vfio_device **ret, size_t *ret_n,
		       struct ql_error *err);

/* True when a -device value (any form: "vfio-pci,...", "driver=vfio-pci,...", JSON) is a
 * vfio-pci device. Pure. */
bool vfio_is_device_value(const char *value);

/* False when option o certainly is no vfio-pci device, without building its value: a cheap test
 * before vfio_is_device_value() for definitions with thousands of -device entries. Pure. */
bool vfio_option_may_be_device(const struct qemu_option *o);

/* One member of an IOMMU group, as the host has it now. */
struct vfio_member {
	char addr[16];
	char *driver;	     /* NULL when unbound */
	char *override;	     /* driver_override now, trailing newline dropped */
	unsigned long class; /* PCI class code (0x030000) */
	bool keeps_driver;   /* a PCI-to-PCI bridge or root port: stays with its driver */
	bool assigned; /* a device of the definition: qemu takes it, so it must be on vfio-pci */
	bool rebind;   /* managed: moved to vfio-pci for the VM's lifetime */
};

struct vfio_group {
	char *id; /* "5": /dev/vfio/5 */
	struct vfio_member *members;
	size_t n;
	size_t device; /* index of the first definition device in this group */
};

/* Who qemu runs as, for the device nodes (privileges.h's identity; uid 0: nothing to do). */
struct vfio_identity {
	bool change;
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* the plan keeps its own copy */
	size_t n_groups;
};

struct vfio_plan {
	const struct definition *def; /* must outlive the plan */
	char *root; /* "/" or a test tree: /sys, /proc and /dev are read below it */
	bool managed;
	struct vfio_device *dev;
	size_t n_dev;
	struct vfio_group *groups;
	size_t n_groups;
	struct vfio_identity id;
};
void vfio_plan_free(struct vfio_plan *p);
static inline void vfio_plan_freep(struct vfio_plan **p)
{
	vfio_plan_free(*p);
}
#define _cleanup_vfio_plan_ _cleanup_(vfio_plan_freep)

/* Reads each device's group and its members and checks them (reads only): the device exists, it
 * has an IOMMU group, and every member is on vfio-pci, unbound or a bridge. With `managed`, a
 * member on another driver is planned to move instead, unless the host uses it in a way that
 * must not break silently (a mounted filesystem, swap or holder on a block device below it, a
 * network interface that is up, the console on its framebuffer, a host/ISA bridge) or vfio-pci
 * is not loaded. -ENODEV/-EBUSY/-EINVAL with "FILE:LINE:COL: ..." naming each offender.
 * *ret is NULL when d has no VFIO device. id may be NULL (qemu keeps the launcher's identity). */
int vfio_plan_compute(const char *root, const struct definition *d, const struct vfio_identity *id,
		      struct vfio_plan **ret, struct ql_error *err);

/* True when a run may change the host (members to move, device nodes to open to qemu's
 * identity): the journal is needed. */
bool vfio_plan_changes_host(const struct vfio_plan *p);

/* --dry-run: each group, its members and drivers, and every write a run would make. NULL on
 * ENOMEM. */
char *vfio_plan_describe(const struct vfio_plan *p);

/* Before qemu starts: plans again from the host as it is now (the journal's recovery may just
 * have given a dead launcher's devices back), refuses a group a live launcher has moved to
 * vfio-pci for its own VM;
 * moves the planned members through the journal and reads back that each landed on vfio-pci;
 * gives the device nodes to qemu's identity (journaled owner: records). From the refusal to
 * the last move it holds the journal's VFIO start-up lock. On failure what was done stays in
 * the journal for the caller's undo. test_stop_at "vfio-checked": tests stop it (SIGSTOP) after
 * the refusal's check, under that lock. */
int vfio_apply(const struct vfio_plan *p, struct journal *j, const char *test_stop_at,
	       const struct ql_logger *log, struct ql_error *err);

/* The viability check alone (kept for callers that need no plan). */
int vfio_check(const char *sysfs_root, const struct definition *d, struct ql_error *err);

/* --check: the other definitions of the config dir whose VFIO devices share an IOMMU group with
 * d's (the two VMs cannot run at the same time): one warning each, NULL-terminated. */
int vfio_conflicts(const struct config_paths *paths, const char *name, const struct definition *d,
		   char ***ret_warnings, struct ql_error *err);

/* --status: one device of a running VM's group. */
struct vfio_status {
	char addr[16];
	char *group;   /* NULL without an IOMMU group */
	char *driver;  /* NULL when unbound */
	bool assigned; /* named by the definition (else: another member of its group) */
};
/* The VFIO devices of d and the members of their groups as the host has them now; a problem
 * line (NULL-terminated list) for each assigned device that is not on vfio-pci. */
int vfio_status_collect(const char *root, const struct definition *d, struct vfio_status **ret,
			size_t *ret_n, char ***ret_problems, struct ql_error *err);
void vfio_status_free(struct vfio_status *v, size_t n);
/* The text --status prints for them ("  vfio: ..." lines); NULL on ENOMEM. */
char *vfio_status_format(const struct vfio_status *v, size_t n);
