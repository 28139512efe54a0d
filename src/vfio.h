/* VFIO devices of a definition (`-device vfio-pci,host=` / `sysfsdev=`) checked against the
 * host before anything starts: the device exists, the IOMMU put it in a group, and every member
 * of that group is bound to vfio-pci, unbound, or a PCI bridge that may keep its driver. Reads
 * sysfs only (under a root directory, "/" but for tests). */
#pragma once

#include "definition.h"
#include "error.h"

/* 0 when every VFIO device's group is viable (or there is none); -ENODEV/-EBUSY with
 * "FILE:LINE:COL: ..." naming each offending device, its driver and the fix otherwise. */
int vfio_check(const char *sysfs_root, const struct definition *d, struct ql_error *err);
