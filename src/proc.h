/* What /proc and the scheduler say about a process's threads: listing them, whether a thread
 * belongs to a process, and a thread's CPU affinity read back. One copy for every module. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cpulist.h"
#include "error.h"

/* A bound on the threads we are willing to look at in one process. */
#define PROC_MAX_THREADS 65536

/* The current threads of pid from /proc/<pid>/task (unsorted). -ENOENT/-ESRCH when pid is gone;
 * -E2BIG past PROC_MAX_THREADS. */
int proc_list_tids(pid_t pid, pid_t **ret, size_t *ret_n, struct ql_error *err);

/* The same, sorted, for proc_tids_contain (one listing instead of one lookup per thread). */
int proc_list_tids_sorted(pid_t pid, pid_t **ret, size_t *ret_n, struct ql_error *err);
bool proc_tids_contain(const pid_t *sorted, size_t n, pid_t tid);
/* Sorts v for proc_tids_contain. */
void proc_sort_tids(pid_t *v, size_t n);

/* File `file` of thread tid of process pid (its comm, status, cgroup, ...), opened read-only: a
 * descriptor, or -ESRCH when tid is not a thread of pid, -errno (-ENOENT when it is gone). A read
 * fails with ESRCH once that thread has ended, whatever thread the id names since. Per-thread
 * files are read through this only (proc.c says why). */
int proc_thread_open(pid_t pid, pid_t tid, const char *file);

/* A bound for reading a thread's `cgroup` file whole: a line a hierarchy (a dozen on a hybrid
 * host), each with a path. */
#define PROC_CGROUP_FILE_MAX (16 * (PATH_MAX + 16))

/* Thread tid's name (its comm file, at most 15 bytes, newline cut) into buf, which holds
 * PROC_COMM_SIZE. -errno as proc_thread_open's, or the read's. */
#define PROC_COMM_SIZE 16
int proc_thread_comm(pid_t pid, pid_t tid, char buf[PROC_COMM_SIZE]);

/* The vCPU index in the name qemu gives a vCPU thread with -name debug-threads=on ("CPU 3/TCG",
 * "CPU 3/KVM"); -1 for any other name, or an index of PROC_MAX_VCPU_INDEX or more. */
#define PROC_MAX_VCPU_INDEX 8192
int proc_qemu_vcpu_index(const char *comm);

/* True when tid is a thread of process pid (/proc/<pid>/task/<tid> exists). */
bool proc_thread_belongs_to(pid_t pid, pid_t tid);

/* The CPUs tid may run on (sched_getaffinity, mask grown to the kernel's nr_cpu_ids). -ESRCH
 * when the thread is gone (err untouched then: callers often tolerate it). */
int proc_thread_affinity(pid_t tid, struct cpu_list **ret, struct ql_error *err);

/* Compares tid's affinity with want; -EIO with both lists in err when they differ. */
int proc_check_affinity(pid_t tid, const struct cpu_list *want, struct ql_error *err);
/* The same for an affinity that may be narrower than `within`, but not empty: a thread in a set
 * keeps the CPUs of its own sched_setaffinity mask there (Linux 6.2 on). */
int proc_check_affinity_within(pid_t tid, const struct cpu_list *within, struct ql_error *err);

/* The process a thread id belongs to (Tgid of /proc/<tid>/status); 0 when unknown. */
pid_t proc_tgid(pid_t tid);

/* A thread's start time (field 22 of its stat file, clock ticks since boot): with
 * the tid it names one thread for good, since a reused tid starts later. -ESRCH when tid is not a
 * thread of pid (any more). */
int proc_thread_starttime(pid_t pid, pid_t tid, unsigned long long *ret);

/* One thread of a process held for as long as the caller keeps it, so that a reused thread id
 * is never taken for the thread: a thread pidfd (Linux 6.9+; it tells when that very thread
 * ended, one syscall, whatever its id names since), else its start time. */
struct proc_thread_hold {
	pid_t tid;
	int pidfd; /* -1: the start time is the identity */
	unsigned long long start;
};
/* -ESRCH when tid names no thread (with a start time: none of pid's). With a pidfd, whether the
 * thread is pid's is proc_threads_held_by's question: ask it once for all holds. */
int proc_thread_hold(pid_t pid, pid_t tid, struct proc_thread_hold *ret);
/* Are the N held threads pid's? One listing of pid's threads, taken after the holds, must name
 * each, and none may have ended since it was held (its id in the listing could be another
 * thread's then). -ESRCH with *ret_bad the first that is not; other -errno (err set) when pid's
 * threads cannot be listed. */
int proc_threads_held_by(pid_t pid, const struct proc_thread_hold *h, size_t n, size_t *ret_bad,
			 struct ql_error *err);
/* Has the held thread ended (its id may now name another thread)? */
bool proc_thread_ended(pid_t pid, const struct proc_thread_hold *h);
/* The index of the first of N held threads that has ended, or -1: one poll for all pidfds. */
ssize_t proc_threads_ended(pid_t pid, const struct proc_thread_hold *h, size_t n);
void proc_thread_unhold(struct proc_thread_hold *h);
