/* --status: the running VMs of this host as the kernel has them placed (cgroup sets, affinity,
 * scheduling of every qemu thread), compared with their definitions. Reads only; changes nothing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "error.h"
#include "vfio.h"

/* Bounds on what we are willing to look at. */
#define STATUS_MAX_VMS 1024
#define STATUS_MAX_THREADS 65536

struct hugepages_use;

struct status_thread {
	pid_t tid;
	char comm[64];	    /* escaped: up to 15 bytes, each maybe \\xNN */
	char *cpus_allowed; /* Cpus_allowed_list of /proc/<pid>/task/<tid>/status */
	char *set;	    /* its cpuset (v1: /proc/.../cpuset) or cgroup v2 path */
	int policy;	    /* SCHED_* without SCHED_RESET_ON_FORK; -1 unreadable */
	bool reset_on_fork;
	int priority;
	int vcpu;	  /* cpu-index from a debug-threads name "CPU N/TCG"; -1 otherwise */
	int vcpu_set_cpu; /* N when it is in this VM's cpuN/vcpuN set; -1 otherwise */
};

/* Every text here is escaped (control characters as \\xNN): other users choose VM names (their
 * own launchers' command lines) and thread names, and the report reaches root's terminal. */
struct status_vm {
	char *name;
	const char *backend; /* the isolation backend whose sets hold it; NULL: none (affinity) */
	const char *set_prefix; /* its vCPU sets are named <set_prefix>N; NULL without sets */
	char *dir;		/* the VM's cgroup directory; NULL for affinity */
	pid_t qemu_pid;		/* 0 when no thread is left in its sets */
	struct status_thread *threads;
	size_t n_threads;
	char *definition_note;		 /* why the definition was not compared, or NULL */
	char **problems;		 /* differences, NULL-terminated, never NULL */
	struct hugepages_use *hugepages; /* hugepages_status.h; NULL: none used or reserved */
	struct vfio_status *vfio;	 /* its VFIO devices and their groups' members (vfio.h) */
	size_t n_vfio;
};

struct status_report {
	struct status_vm *vms;
	size_t n_vms;
	char *only;	/* the NAME asked for, or NULL */
	char *confined; /* tasks kept off CPUs although no VM runs (escaped), or NULL */
	struct housekeeping_status *housekeeping; /* housekeeping_status.h */
};

/* Discovers VMs from <cpuset mount>/<prefix>/<vm>/cpuN/tasks (v1), <cgroup2 root>/<prefix>/<vm>/
 * vcpuN/cgroup.threads (v2) and qemu processes whose parent is a qemu-launcher (affinity backend,
 * or not pinned), reads every qemu thread from /proc, and compares with <config dir>/<vm>.yml when
 * it is readable. `name` limits the report to one VM (NULL: all). */
int status_collect(const struct config_paths *paths, const char *name, struct status_report **ret,
		   struct ql_error *err);

/* The report as text (a table per VM, then its differences marked with `!`). NULL on ENOMEM. */
char *status_format(const struct status_report *r);

/* True when no difference was flagged (and, with a NAME, that VM runs). */
bool status_is_consistent(const struct status_report *r);

/* "fifo", "other", ... for a SCHED_* policy; "?" for -1 (unreadable), "unknown" otherwise. */
const char *status_policy_name(int policy);

void status_report_free(struct status_report *r);
static inline void status_report_freep(struct status_report **r)
{
	status_report_free(*r);
}
#define _cleanup_status_report_ _cleanup_(status_report_freep)
