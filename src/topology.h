/* The host CPU topology as the kernel shows it in sysfs (packages, cores and their SMT siblings,
 * L3 groups, NUMA nodes, offline and isolated CPUs), and what follows from it for a VM: a
 * suggested pinning and -smp, and warnings for a pinning that hides the host's layout. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cpulist.h"
#include "definition.h"
#include "error.h"

/* CPUs with the same id: a package, an L3 group (CPUs sharing one L3 cache: a CCD on AMD, a
 * socket on most Intel parts) or a NUMA node. */
struct topology_group {
	unsigned id; /* physical_package_id, node number; L3 groups are numbered in CPU order */
	struct cpu_list *cpus;
};

/* One physical core: its online CPUs are SMT siblings of each other. */
struct topology_core {
	unsigned package; /* physical_package_id */
	unsigned core_id;
	struct cpu_list *cpus;
	int l3;	  /* index into l3[], -1 when the host shows no L3 cache */
	int node; /* index into nodes[], -1 when the host shows no NUMA node */
};

struct host_topology {
	struct cpu_list *possible, *online, *offline, *isolated;
	struct topology_core *cores; /* ordered by their first CPU */
	size_t n_cores;
	struct topology_group *packages, *l3, *nodes; /* ordered by id / first CPU */
	size_t n_packages, n_l3, n_nodes;
	unsigned smt; /* most online CPUs in one core (1: no SMT) */
	int *core_of; /* host CPU -> index into cores, -1 offline or absent */
	size_t n_core_of;
};

/* Reads ROOT/sys/devices/system/{cpu,node}; root "/" is the host, tests pass a fake tree.
 * online/possible and each online CPU's topology/ must be there; offline, isolated, caches and
 * nodes may be missing (then empty / unknown). */
int topology_read(const char *root, struct host_topology **ret, struct ql_error *err);
void topology_free(struct host_topology *t);
static inline void topology_freep(struct host_topology **t)
{
	topology_free(*t);
}
#define _cleanup_topology_ _cleanup_(topology_freep)

/* Index into t->cores / t->l3 / t->nodes of host CPU cpu, -1 when unknown. */
int topology_core_of(const struct host_topology *t, unsigned cpu);
int topology_l3_of(const struct host_topology *t, unsigned cpu);
int topology_node_of(const struct host_topology *t, unsigned cpu);

/* The --topology text (one fact per line). NULL on allocation failure. */
char *topology_format(const struct host_topology *t);

/* A vcpu_pinning, emulator_pinning and -smp for n_vcpus, as a YAML document to paste: SMT
 * siblings become guest threads, one L3 group and NUMA node when they fit (else one guest socket
 * per L3 group), isolated cores first, the first core left to the host and qemu's other threads.
 * -ENOSPC when the host has too few CPUs besides its first core. */
int topology_suggest(const struct host_topology *t, unsigned n_vcpus, char **ret_yaml,
		     struct ql_error *err);
/* The same for a definition's vCPU count (its -smp; one vCPU without). */
int topology_suggest_for(const struct host_topology *t, const struct definition *d, char **ret_yaml,
			 struct ql_error *err);

/* Warnings for a definition's pinning (NULL-terminated, possibly empty): guest threads of one
 * guest core on host CPUs that are not SMT siblings; vCPUs of one guest socket (die) spanning
 * host L3 groups; vCPUs spanning host NUMA nodes the guest's -numa does not show; emulator CPUs
 * that are also vCPU CPUs. Pins on CPUs the topology does not know are left to pinning.c. */
int topology_check(const struct host_topology *t, const struct definition *d, char ***ret_warnings,
		   struct ql_error *err);
