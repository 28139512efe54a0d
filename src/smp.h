/* The guest CPU topology a definition's `-smp` gives, by qemu 7.2's rules for current machine
 * types; pure, no I/O. */
#pragma once

#include <stdbool.h>

#include "definition.h"

struct smp_topology {
	unsigned cpus; /* vCPUs qemu starts with */
	unsigned sockets, dies, cores, threads;
	bool known; /* false: an -smp this parser does not follow (clusters, bad numbers) */
};

/* No -smp: one vCPU. */
struct smp_topology smp_topology_of(const struct definition *d);

/* qemu's cpu-index of a vcpu_pinning entry (the flat list's position, or the x86 order of a
 * nested entry: thread fastest, then core, die, socket); -1 when it cannot be known, or the
 * nested entry lies outside the topology (its index would be another vCPU's). */
long smp_cpu_index(const struct smp_topology *t, const struct vcpu_pin *pin);
