/* The crash-safe journal of host values the launcher changes: before a file value (a sysfs or
 * procfs knob) is written, its original is recorded write-ahead and fsync'd in a root-only
 * directory, so that the launcher's own unwind, its guardian and the next start all give the host
 * back byte for byte. Generic "file value" records, shared by every kind of host change. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "log.h"

#define QL_DEFAULT_JOURNAL_DIR "/run/qemu-launcher/journal"
/* A path "task:PID:START" (START: field 22 of /proc/PID/stat) stands for that thread's CPU
 * affinity as a CPU list: read with sched_getaffinity, written with sched_setaffinity. */
#define JOURNAL_TASK_PREFIX "task:"
/* A path "owner:FILE" stands for FILE's owner and permission bits as "UID:GID:MODE" (MODE in
 * octal, e.g. "0:0:0600"): read with stat, written with chown and chmod (VFIO device nodes). */
#define JOURNAL_OWNER_PREFIX "owner:"

struct journal;

/* How a record is undone.
 *  JOURNAL_SET: a setting. Launchers changing the same file share one original (the value before
 *               the first of them); only the last record out writes it back. Before that, a
 *               leaving record's value still in the file gives way to a remaining one's.
 *  JOURNAL_ADD: a counter (nr_hugepages): each record gives back exactly its own delta, whatever
 *               else changed the count; back at the original number, its bytes are written.
 *  JOURNAL_BIND: a device (path: its directory on its bus, .../bus/pci/devices/ADDR) moved to
 *               another driver with driver_override: undone by unbinding it from that driver,
 *               writing driver_override back byte for byte and binding the original driver
 *               (or leaving it unbound, as it was). */
enum journal_kind {
	JOURNAL_SET,
	JOURNAL_ADD,
	JOURNAL_BIND,
};

/* Opens (creating it 0700, with its parents) the journal directory for records owned by this
 * process (pid and start time, so a reused pid is not taken for the owner) on behalf of `owner`
 * (the VM's name, for messages). The directory must belong to the effective user and be closed
 * to group and others. */
int journal_open(const char *dir, const char *owner, const struct ql_logger *log,
		 struct journal **ret, struct ql_error *err);
void journal_free(struct journal *j);
static inline void journal_freep(struct journal **j)
{
	journal_free(*j);
}
#define _cleanup_journal_ _cleanup_(journal_freep)

/* Records path's current value, then writes value (JOURNAL_SET). -d traces the write. */
int journal_set(struct journal *j, const char *path, const char *value, struct ql_error *err);

/* Counter: records path's current value, writes current + want, reads back what the kernel made of
 * it (it may give fewer); *ret_got (may be NULL) is the increase obtained, and the record keeps
 * that, so only it is given back. want may be negative. */
int journal_add(struct journal *j, const char *path, long want, long *ret_got,
		struct ql_error *err);

/* How long a launcher waits for another's hugepage start-up: that one holds the lock while its
 * qemu greets and answers (vm.c: at most twice 60 s), and a margin. */
#define JOURNAL_HUGEPAGES_WAIT_MS 130000

/* How long a launcher waits for another's lock on the journal's directory. Every section under
 * it is short (a device's move to vfio-pci the longest: seconds); a holder beyond this is stuck
 * or stopped (a setuid launcher's caller may stop it), and waiting for it forever stalled every
 * launcher and guardian on the host. The error names the holder. */
#define JOURNAL_LOCK_WAIT_MS 30000
/* Moves to vfio-pci, one launcher at a time: from the check that no live launcher holds a group
 * to its last move, so that two launchers starting at once with the same group cannot both pass
 * the check before either moved a device (and one then take it from under the other's VM).
 * Waits at most JOURNAL_LOCK_WAIT_MS; *ret_fd to let go with journal_unlock. */
int journal_lock_vfio(const struct journal *j, int *ret_fd, struct ql_error *err);
/* Housekeeping's plan-and-apply, one launcher at a time: each plans from what the one before it
 * wrote, so the union of their CPUs stays clear. Waits at most JOURNAL_LOCK_WAIT_MS; *ret_fd to
 * let go with journal_unlock. */
int journal_lock_housekeeping(const struct journal *j, int *ret_fd, struct ql_error *err);
/* Lets go of a lock the journal took (-1: none). Each of its locks shields a setuid launcher
 * from its caller while waited for and held (privileges_shield). */
void journal_unlock(int *fd);
#define _cleanup_journal_unlock_ _cleanup_(journal_unlock)
/* Tests: another bound than JOURNAL_LOCK_WAIT_MS. */
void journal_set_lock_wait_ms(struct journal *j, int ms);

/* Start-ups of VMs on hugepages, one at a time: held from the count of free pages until qemu has
 * mapped its guest RAM (its first QMP answer), so that two launchers starting at once do not
 * both count the same free pages; and hugepages are given back (journal_undo_own,
 * journal_recover) only under it. Waits at most JOURNAL_HUGEPAGES_WAIT_MS; held until
 * journal_unlock_hugepages or journal_free. Taking it again while held does nothing. */
int journal_lock_hugepages(struct journal *j, struct ql_error *err);
void journal_unlock_hugepages(struct journal *j);
/* Its descriptor (-1: not held), for the processes that must not inherit it. */
int journal_hugepages_lock_fd(const struct journal *j);

/* Moves the device at dev_dir (.../bus/BUS/devices/ADDR) to `driver`: records its driver_override
 * and current driver, writes driver_override, unbinds it from its driver and asks the bus to probe
 * it (BUS/drivers_probe). Nothing is recorded when it is on `driver` already. The caller reads
 * back where it landed. Every write is traced with -d. On failure the record stays, for the
 * caller's undo. */
int journal_bind(struct journal *j, const char *dev_dir, const char *driver, struct ql_error *err);

/* One device another live launcher moved to a driver (JOURNAL_BIND), for conflict checks. */
struct journal_binding {
	char *dev_dir;
	char *owner; /* that launcher's VM */
	pid_t pid;
};
/* The bindings of live launchers other than j's own. */
int journal_bindings(struct journal *j, struct journal_binding **ret, size_t *ret_n,
		     struct ql_error *err);
void journal_bindings_free(struct journal_binding *v, size_t n);

/* Before a guardian is started: while it (or this launcher) lives, this launcher's records are
 * not given back by other launchers' journal_recover, even once this launcher is gone: its
 * guardian gives them back after qemu has ended. */
int journal_keep_for_guardian(struct journal *j, struct ql_error *err);

/* True when this journal holds records (the run changed something). */
bool journal_has_records(const struct journal *j);

/* Undoes this launcher's records (its pid, start time and owner: also those written after a
 * fork of j, as in the guardian), newest first; best effort, the first failure is returned. */
int journal_undo_own(struct journal *j, struct ql_error *err);

/* Undoes the records of launchers that are no longer alive (the next start). *ret_n (may be NULL)
 * is the number of records undone. */
int journal_recover(struct journal *j, unsigned *ret_n, struct ql_error *err);

/* The value at a record's path now: a file's bytes, or a task:PID:START thread's CPU list
 * (-ESRCH when that thread is gone). */
int journal_read_current(const char *path, char **ret, struct ql_error *err);

/* Formats one planned write for --dry-run and -d: "PATH: OLD -> NEW" with values shown safely. */
char *journal_describe_write(const char *path, const char *old, const char *new_value);

/* One record as --status shows it (read only, no lock taken: records appear by rename). */
struct journal_entry {
	pid_t pid;   /* the launcher that wrote it */
	bool alive;  /* that launcher (pid and start time) still runs */
	char *owner; /* its VM */
	enum journal_kind kind;
	long delta; /* JOURNAL_ADD: what it added */
	char *path;
	char *orig;	 /* the host's value before the first launcher changed it */
	char *new_value; /* what this launcher wrote */
};
/* Every well-formed record in dir (none when dir does not exist); -EACCES etc. in err when the
 * directory cannot be read (another user's journal). */
int journal_list(const char *dir, struct journal_entry **ret, size_t *ret_n, struct ql_error *err);
void journal_entries_free(struct journal_entry *v, size_t n);
