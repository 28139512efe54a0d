/* Locked memory sized from the definition: `rlimit_memlock: auto` (guest RAM plus a margin for
 * qemu and VFIO) and the --check warning for a definition that locks memory without the limit
 * to do it. */
#pragma once

#include <stdint.h>

#include "definition.h"
#include "error.h"
#include "hugepages.h"

/* libvirt's margin (qemuDomainGetMemLockLimitBytes, src/qemu/qemu_domain.c): guest RAM plus
 * 1 GiB for qemu's own locked memory and the VFIO devices' I/O space. */
#define MEMLOCK_MARGIN (1ULL << 30)

static inline uint64_t memlock_auto_bytes(const struct mem_layout *l)
{
	uint64_t b;
	return __builtin_add_overflow(l->guest_ram, MEMLOCK_MARGIN, &b) ? UINT64_MAX : b;
}

/* --check: the warnings (a NULL-terminated list, maybe empty): when rlimit_memlock asks for more
 * than the hard limit and the launcher cannot raise it (the start would fail), or when the
 * definition locks memory
 * (-overcommit mem-lock=on, -device vfio-pci) and neither rlimit_memlock nor the limit qemu would
 * inherit (the launcher's current soft limit) covers memlock_auto_bytes. */
int memlock_check(const struct definition *d, char ***ret_warnings, struct ql_error *err);
