/* A VM definition (NAME.yml) parsed and validated; the only module that knows YAML. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "cpulist.h"
#include "domain.h"
#include "error.h"
#include "yaml_tree.h" /* struct ql_mark */

/* Bounds on untrusted input (files may come from users in setuid mode). */
#define DEFINITION_MAX_BYTES (1024 * 1024)
#define DEFINITION_MAX_DEPTH 16
#define DEFINITION_MAX_NODES 100000

enum ql_memlock {
	QL_MEMLOCK_UNCHANGED = 0,
	QL_MEMLOCK_UNLIMITED,
	QL_MEMLOCK_BYTES,
	QL_MEMLOCK_AUTO, /* guest RAM + a margin, computed by the plan (memlock.h) */
};

/* What the launcher does about the hugepages the memory backends need (hugepages.h). */
enum ql_hugepages {
	QL_HUGEPAGES_CHECK = 0, /* refuse to start when free pages are short */
	QL_HUGEPAGES_RESERVE,	/* reserve the missing pages, give them back at the end */
	QL_HUGEPAGES_IGNORE,	/* leave it to qemu */
};

/* One part of an option value, e.g. `accel: kvm` or `pc`.
 *  key == NULL:  a bare part, passed as written (`pc`, `accel=kvm`, `readonly`, `pc,`).
 *  key != NULL:  a `key: value` part; value is one qemu value (its commas get escaped);
 *                value == NULL when the YAML wrote no value at all (`readonly:`), giving `key`. */
struct qemu_part {
	char *key;
	char *value;
};

/* One entry of the `qemu:` list. It, its parts and its strings (name, scalar, parts) live in the
 * parsed document, which the definition owns: valid as long as the definition. */
struct qemu_option {
	char *name; /* without the leading '-' */
	/* false for a flag (`- nographic`). true otherwise; then either `scalar` (a single verbatim
	 * argument, `- m: 2G`) or `parts` (a sequence/mapping value) is used. */
	bool has_value;
	bool is_scalar;
	char *scalar;
	struct qemu_part *parts;
	size_t n_parts;
	struct ql_mark mark;
};

/* Whether o is `-NAME`. Definitions can have thousands of options and every plan step scans
 * them by name: the first character settles nearly every comparison without a call. */
static inline bool qemu_option_is(const struct qemu_option *o, const char *name)
{
	return o->name[0] == name[0] && strcmp(o->name, name) == 0;
}

/* One vcpu_pinning entry. Nested form: socket/core/thread set, index = -1.
 * Flat-list form: index = position (qemu's cpu-index), socket/core/thread = -1. */
struct vcpu_pin {
	int socket, core, thread;
	int index;
	unsigned host_cpu;
	struct ql_mark mark;
};

/* One iothread_pinning entry: the I/O thread `-object iothread,id=ID` creates, and its CPUs. */
struct iothread_pin {
	const char *id; /* points into the parsed document */
	struct cpu_list *cpus;
	struct ql_mark mark; /* of the id key */
};

/* core_scheduling: which vCPU threads may share an SMT core (PR_SCHED_CORE cookies). */
enum ql_core_sched {
	QL_CORE_SCHED_OFF,  /* not used (default) */
	QL_CORE_SCHED_AUTO, /* one cookie for the VM where the kernel can, else a warning */
	QL_CORE_SCHED_VM,   /* one cookie for the VM: its vCPUs share cores only with each other */
	QL_CORE_SCHED_VCPU, /* one cookie per vCPU: a core runs one vCPU at a time */
};

struct definition {
	char *path; /* as given to definition_parse(), for messages */

	/* launcher: */
	char *binary;
	bool clear_env;
	char **env; /* "KEY=VALUE", NULL-terminated, never NULL (may be empty) */
	bool debug;

	bool has_user;
	uid_t user;
	struct ql_mark user_mark; /* for the errors about it found after parsing */
	char *user_name; /* set when `user` resolved to a passwd entry (for supplementary groups) */
	gid_t user_gid;	 /* primary group of that passwd entry, valid when user_name != NULL */
	bool has_group;
	gid_t group;

	bool has_umask;
	mode_t umask;		 /* valid when has_umask */
	char *working_directory; /* absolute path, NULL when not set */

	enum ql_sched_policy scheduler;
	bool has_priority;
	int priority;
	uint64_t sched_runtime, sched_deadline, sched_period; /* ns, deadline only */

	struct vcpu_pin *pins;
	size_t n_pins;
	bool pins_flat; /* flat-list form */
	struct ql_mark pins_mark;

	enum ql_isolate isolate_cpus;
	struct cpu_list *emulator_cpus; /* NULL when not set */
	struct ql_mark emulator_mark;
	struct iothread_pin *iothread_pins;
	size_t n_iothread_pins;
	enum ql_sched_policy iothread_scheduler; /* for the pinned I/O threads; no deadline */
	int iothread_priority;
	enum ql_core_sched core_sched;
	struct ql_mark core_sched_mark;

	enum ql_memlock memlock;
	uint64_t memlock_bytes;

	unsigned shutdown_timeout; /* seconds, default 60 */

	enum ql_hugepages hugepages;

	/* housekeeping: host interrupts and kernel work kept off the vCPU CPUs (housekeeping.h) */
	struct ql_housekeeping {
		bool on;
		bool irqs, workqueues, kthreads;
		unsigned stat_interval; /* vm.stat_interval while the VM runs; 0: left alone */
		/* explicit RT throttling values while the VM runs (never implied by `true') */
		bool rt_runtime_set;
		long rt_runtime_us; /* kernel.sched_rt_runtime_us; -1: no throttling */
		bool fair_server_set;
		uint64_t fair_server_runtime_ns; /* each vCPU CPU's fair server; 0: off */
	} housekeeping;
	struct ql_mark housekeeping_mark;

	/* vfio: managed: the launcher binds each VFIO device's IOMMU group to vfio-pci for the VM's
	 * lifetime and gives every driver back afterwards (vfio.h) */
	bool vfio_managed;

	struct qemu_option *options;
	size_t n_options;
	struct ql_mark qemu_mark;

	struct yaml_doc *doc; /* the parsed text; holds the options and what they point into */
};

/* Parses and validates a definition. `path` is only used in messages. On any problem returns
 * -EINVAL (or -ENOMEM) and err->msg = "PATH:LINE:COL: message". Nothing outside the text is
 * consulted except passwd/group lookups for `user`/`group` names. */
int definition_parse(const char *path, const char *text, size_t len, struct definition **ret,
		     struct ql_error *err);

void definition_free(struct definition *d);
static inline void definition_freep(struct definition **d)
{
	definition_free(*d);
}
#define _cleanup_definition_ _cleanup_(definition_freep)

/* True when the definition asks for any pinning or scheduling (so qemu must start with -S). */
bool definition_wants_pinning(const struct definition *d);
