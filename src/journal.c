/* The write-ahead journal of host values (see journal.h). One file per change, named
 * PID.START.SEQ, written to a temporary name, fsync'd, renamed and the directory fsync'd before
 * the host value is touched; removed (and the directory fsync'd) once the value is back. All
 * launchers serialise on an flock of DIR/.lock, so "is this the last record for the file" and
 * the undo that follows are one step. */
#include "journal.h"

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "cpulist.h"
#include "lockwait.h"
#include "macro.h"
#include "privileges.h"
#include "readfile.h"
#include "proc.h"

#define MAGIC "qemu-launcher journal 1\n"
/* Host values we journal are small knobs; a bound keeps a corrupt record from eating memory. */
#define VALUE_MAX 65536
#define RECORD_MAX (3 * VALUE_MAX + 4096)

struct journal {
	char *dir;
	char *owner;
	pid_t pid;
	unsigned long long start; /* the owner's start time (clock ticks after boot) */
	const struct ql_logger *log;
	char **own; /* our record file names, oldest first */
	size_t n_own;
	int keep_fd;	  /* journal_keep_for_guardian's flock, or -1 */
	int huge_fd;	  /* journal_lock_hugepages' flock, or -1 */
	int lock_wait_ms; /* JOURNAL_LOCK_WAIT_MS; tests set less */
};

struct buf {
	char *data;
	size_t len;
};

/* Where a JOURNAL_ADD record stands. A launcher killed between two steps leaves it so. */
enum add_state {
	ADD_SETTLED, /* delta is what the kernel gave */
	/* stored ahead of its write: delta is the wish, not what the kernel gave. new_value -
	 * delta is the count before. */
	ADD_PENDING,
	/* its give-back under way: new_value is the count it writes. Counted from the count
	 * already lowered, the same pages would be given back twice. */
	ADD_RETURNING,
};
static const char *const add_state_suffixes[] = {
    [ADD_SETTLED] = "",
    [ADD_PENDING] = "-pending",
    [ADD_RETURNING] = "-returning",
};

struct record {
	char *name; /* file name in the journal directory */
	pid_t pid;
	unsigned long long start;
	char *owner;
	enum journal_kind kind;
	long delta;
	char *path;
	struct buf orig, new_value;
	struct buf driver;    /* JOURNAL_BIND: the driver it was on ("" when unbound) */
	enum add_state state; /* JOURNAL_ADD's; ADD_SETTLED for the other kinds */
	bool gone;	      /* undone in this pass: no longer part of its file's chain */
};

static void record_done(struct record *r)
{
	free(r->name);
	free(r->owner);
	free(r->path);
	free(r->orig.data);
	free(r->new_value.data);
	free(r->driver.data);
	*r = (struct record){0};
}

/* The start time of pid (field 22 of /proc/PID/stat); 0 when it does not exist. *ret_state
 * (may be NULL) is its state letter (field 3). */
static unsigned long long proc_start_state(pid_t pid, char *ret_state)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	char line[1024];
	if (!fgets(line, sizeof(line), f))
		return 0;
	/* the command name may hold spaces and parentheses: count fields after the last ')' */
	char *p = strrchr(line, ')');
	if (!p || p[1] != ' ')
		return 0;
	p++;
	if (ret_state)
		*ret_state = p[1];
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return 0;
	}
	return strtoull(p + 1, NULL, 10);
}

static unsigned long long proc_start_time(pid_t pid)
{
	return proc_start_state(pid, NULL);
}

/* A launcher that has exited is gone, also while its parent has not reaped it yet (a zombie):
 * its guardian gives its records back as soon as it has exited. */
static bool owner_alive(pid_t pid, unsigned long long start)
{
	char state = 0;
	return pid > 0 && start != 0 && proc_start_state(pid, &state) == start && state != 'Z' &&
	       state != 'X';
}

/* DIR/.keep.PID.START: flocked (shared) by a launcher whose guardian may outlive it, and through
 * the guardian's copy of the descriptor for as long as the guardian waits for qemu to end. While
 * it is held the launcher's records are not given back by others, though the launcher is gone:
 * its qemu may still use the pages and devices. The dot keeps it out of load_records. */
static char *keeper_path(const char *dir, pid_t pid, unsigned long long start)
{
	char *s = NULL;
	if (asprintf(&s, "%s/.keep.%d.%llu", dir, (int)pid, start) < 0)
		return NULL;
	return s;
}

/* Whether the launcher pid/start has a keeper holding its records. `reap`: an unheld one is
 * removed (callers hold the journal's lock, under which keepers are made). */
static bool kept(const char *dir, pid_t pid, unsigned long long start, bool reap)
{
	_cleanup_free_ char *path = keeper_path(dir, pid, start);
	if (!path)
		return true; /* out of memory: leave the records be */
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		if (reap)
			unlink(path);
		return false;
	}
	return errno == EWOULDBLOCK;
}

/* The records of a launcher alive, or gone but kept by its guardian, are not given back. */
static bool records_held(const char *dir, pid_t pid, unsigned long long start, bool reap)
{
	return owner_alive(pid, start) || kept(dir, pid, start, reap);
}

/* "task:PID:START": a thread's CPU affinity, the one value here that is not a file (kernel
 * threads moved by housekeeping). A thread gone (or its pid reused: another start time) has
 * nothing to give back. Returns the pid, 0 when gone, -EINVAL when path is malformed. */
static pid_t task_of(const char *path)
{
	int pid = 0;
	unsigned long long start = 0;
	int n = 0;
	if (sscanf(path, JOURNAL_TASK_PREFIX "%d:%llu%n", &pid, &start, &n) != 2 || path[n] ||
	    pid <= 0)
		return -EINVAL;
	return proc_start_time(pid) == start ? pid : 0;
}

static int task_read(const char *path, struct buf *ret, struct ql_error *err)
{
	pid_t pid = task_of(path);
	if (pid <= 0)
		return ql_error_set(err, pid < 0 ? EINVAL : ESRCH, "`%s`: no such thread", path);
	_cleanup_cpu_list_ struct cpu_list *l = NULL;
	int r = proc_thread_affinity(pid, &l, err);
	if (r == -ESRCH)
		return ql_error_set(err, ESRCH, "`%s`: no such thread", path);
	if (r < 0)
		return r;
	char *s = cpu_list_format(l);
	if (!s)
		return ql_error_set(err, ENOMEM, "out of memory");
	*ret = (struct buf){s, strlen(s)};
	return 0;
}

static int task_write(const struct journal *j, const char *path, const char *data,
		      struct ql_error *err)
{
	pid_t pid = task_of(path);
	if (pid < 0)
		return ql_error_set(err, EINVAL, "`%s`: not a thread", path);
	if (pid == 0)
		return 0; /* gone: nothing to set or give back */
	_cleanup_cpu_list_ struct cpu_list *l = NULL;
	int r = cpu_list_parse(data, &l, err);
	if (r < 0)
		return r;
	ql_log(j->log, QL_LOG_DEBUG, "sched_setaffinity thread %d -> %s", (int)pid, data);
	if (sched_setaffinity(pid, l->nbytes, l->set) < 0 && errno != ESRCH)
		return ql_error_set_errno(err, errno, "sched_setaffinity thread %d -> %s", (int)pid,
					  data);
	return 0;
}

static bool is_owner_path(const char *path)
{
	return strncmp(path, JOURNAL_OWNER_PREFIX, strlen(JOURNAL_OWNER_PREFIX)) == 0;
}

/* "owner:FILE": FILE's "UID:GID:MODE". A symbolic link is refused: the launcher changes the
 * owner of the device node it named, never of what a link points to. */
static int owner_read(const char *path, struct buf *ret, struct ql_error *err)
{
	const char *file = path + strlen(JOURNAL_OWNER_PREFIX);
	struct stat st;
	if (lstat(file, &st) < 0)
		return ql_error_set_errno(err, errno, "stat `%s`", file);
	if (S_ISLNK(st.st_mode))
		return ql_error_set(err, ELOOP, "`%s` is a symbolic link", file);
	char *s = NULL;
	if (asprintf(&s, "%u:%u:%04o", (unsigned)st.st_uid, (unsigned)st.st_gid,
		     (unsigned)(st.st_mode & 07777)) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	*ret = (struct buf){s, strlen(s)};
	return 0;
}

static int owner_write(const struct journal *j, const char *path, const char *data,
		       struct ql_error *err)
{
	const char *file = path + strlen(JOURNAL_OWNER_PREFIX);
	unsigned uid, gid, mode;
	int n = 0;
	if (sscanf(data, "%u:%u:%o%n", &uid, &gid, &mode, &n) != 3 || data[n] || mode > 07777)
		return ql_error_set(err, EINVAL, "`%s` is not UID:GID:MODE", data);
	struct stat st;
	if (lstat(file, &st) < 0) {
		/* the node is gone (its group was released): nothing to give back */
		if (errno == ENOENT)
			return 0;
		return ql_error_set_errno(err, errno, "`%s`", file);
	}
	if (S_ISLNK(st.st_mode))
		return ql_error_set(err, ELOOP, "`%s` is a symbolic link", file);
	ql_log(j->log, QL_LOG_DEBUG, "chown %s: %u:%u, chmod %04o", file, uid, gid, mode);
	if (lchown(file, uid, gid) < 0)
		return ql_error_set_errno(err, errno, "chown `%s` to %u:%u", file, uid, gid);
	if (chmod(file, mode) < 0)
		return ql_error_set_errno(err, errno, "chmod `%s` to %04o", file, mode);
	return 0;
}

static int read_value(const char *path, struct buf *ret, struct ql_error *err)
{
	if (strncmp(path, JOURNAL_TASK_PREFIX, strlen(JOURNAL_TASK_PREFIX)) == 0)
		return task_read(path, ret, err);
	if (is_owner_path(path))
		return owner_read(path, ret, err);
	char *data;
	size_t len;
	int r = read_small_file(AT_FDCWD, path, O_NOFOLLOW, VALUE_MAX - 1, &data, &len);
	if (r == -EFBIG)
		return ql_error_set(err, EFBIG, "`%s` is larger than %d bytes", path, VALUE_MAX);
	if (r < 0)
		return ql_error_set_errno(err, -r, "read `%s`", path);
	*ret = (struct buf){data, len};
	return 0;
}

/* One write(2), as the kernel's knobs want it. */
static int write_value(const struct journal *j, const char *path, const char *data, size_t len,
		       struct ql_error *err)
{
	if (strncmp(path, JOURNAL_TASK_PREFIX, strlen(JOURNAL_TASK_PREFIX)) == 0)
		return task_write(j, path, data, err);
	if (is_owner_path(path))
		return owner_write(j, path, data, err);
	struct ql_shown s;
	ql_log(j->log, QL_LOG_DEBUG, "write %s: %s", path, ql_show(&s, data));
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_TRUNC);
	if (fd < 0)
		return ql_error_set_errno(err, errno, "open `%s` for writing", path);
	ssize_t n;
	while ((n = write(fd, data, len)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return ql_error_set_errno(err, errno, "write `%s` to `%s`", ql_show(&s, data),
					  path);
	if ((size_t)n != len)
		return ql_error_set(err, EIO, "short write to `%s`", path);
	return 0;
}

static int fsync_dir(const char *dir, struct ql_error *err)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return ql_error_set_errno(err, errno, "fsync journal directory `%s`", dir);
	return 0;
}

static int mkdir_parents(const char *dir, struct ql_error *err)
{
	_cleanup_free_ char *p = strdup(dir);
	if (!p)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return ql_error_set_errno(err, errno, "create journal directory `%s`", p);
		*s = c;
		if (!c)
			return 0;
	}
}

int journal_open(const char *dir, const char *owner, const struct ql_logger *log,
		 struct journal **ret, struct ql_error *err)
{
	if (dir[0] != '/')
		return ql_error_set(err, EINVAL, "the journal directory `%s` is not absolute", dir);
	int r = mkdir_parents(dir, err);
	if (r < 0)
		return r;
	struct stat st;
	if (lstat(dir, &st) < 0)
		return ql_error_set_errno(err, errno, "journal directory `%s`", dir);
	/* Records say what to write where: only their owner may have written them. */
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
		return ql_error_set(
		    err, EPERM,
		    "journal directory `%s` must be a directory owned by uid %u and "
		    "closed to group and others (mode 0700)",
		    dir, (unsigned)geteuid());
	_cleanup_free_ struct journal *j = calloc(1, sizeof(*j));
	if (!j || !(j->dir = strdup(dir)) || !(j->owner = strdup(owner))) {
		if (j)
			free(j->dir);
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	j->pid = getpid();
	j->start = proc_start_time(j->pid);
	j->log = log;
	j->keep_fd = -1;
	j->huge_fd = -1;
	j->lock_wait_ms = JOURNAL_LOCK_WAIT_MS;
	*ret = TAKE_PTR(j);
	return 0;
}

void journal_free(struct journal *j)
{
	if (!j)
		return;
	if (j->keep_fd >= 0) {
		/* with records left, a guardian's copy may hold it: the next start reaps it */
		_cleanup_free_ char *path = j->n_own ? NULL : keeper_path(j->dir, j->pid, j->start);
		if (path)
			unlink(path);
		close(j->keep_fd);
	}
	journal_unlock(&j->huge_fd);
	for (size_t i = 0; i < j->n_own; i++)
		free(j->own[i]);
	free(j->own);
	free(j->dir);
	free(j->owner);
	free(j);
}

bool journal_has_records(const struct journal *j)
{
	return j && j->n_own > 0;
}

/* DIR/NAME, made if need be, flocked within wait_ms (lock_wait: the error names the holder). */
static int lock_file(const struct journal *j, const char *name, const char *what, int wait_ms,
		     int *ret_fd, struct ql_error *err)
{
	_cleanup_free_ char *p = path_join(j->dir, name);
	if (!p)
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_close_ int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return ql_error_set_errno(err, errno, "open `%s`", p);
	privileges_shield(); /* a setuid caller must not stop us while we wait or hold it */
	int r = lock_wait(fd, wait_ms, what, p, "", err);
	if (r < 0) {
		privileges_unshield();
		return r;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

void journal_unlock(int *fd)
{
	if (*fd < 0)
		return;
	closep(fd); /* closing drops the flock */
	*fd = -1;
	privileges_unshield();
}

static int lock_dir(const struct journal *j, int *ret_fd, struct ql_error *err)
{
	return lock_file(j, ".lock", "the journal's lock", j->lock_wait_ms, ret_fd, err);
}

int journal_lock_vfio(const struct journal *j, int *ret_fd, struct ql_error *err)
{
	return lock_file(j, ".vfio.lock", "the VFIO start-up lock", j->lock_wait_ms, ret_fd, err);
}

int journal_lock_housekeeping(const struct journal *j, int *ret_fd, struct ql_error *err)
{
	return lock_file(j, ".housekeeping.lock", "the housekeeping lock", j->lock_wait_ms, ret_fd,
			 err);
}

int journal_lock_hugepages(struct journal *j, struct ql_error *err)
{
	if (j->huge_fd >= 0)
		return 0;
	return lock_file(j, ".hugepages.lock", "the hugepage start-up lock",
			 JOURNAL_HUGEPAGES_WAIT_MS, &j->huge_fd, err);
}

void journal_set_lock_wait_ms(struct journal *j, int ms)
{
	j->lock_wait_ms = ms;
}

void journal_unlock_hugepages(struct journal *j)
{
	if (j)
		journal_unlock(&j->huge_fd);
}

int journal_hugepages_lock_fd(const struct journal *j)
{
	return j ? j->huge_fd : -1;
}

/* --- record files ------------------------------------------------------------------------- */

static const char *const kind_names[] = {
    [JOURNAL_SET] = "set",
    [JOURNAL_ADD] = "add",
    [JOURNAL_BIND] = "bind",
};

static const char *kind_name(enum journal_kind k)
{
	return kind_names[k];
}

int journal_keep_for_guardian(struct journal *j, struct ql_error *err)
{
	if (!j || j->keep_fd >= 0)
		return 0;
	_cleanup_free_ char *path = keeper_path(j->dir, j->pid, j->start);
	if (!path)
		return ql_error_set(err, ENOMEM, "out of memory");
	/* under the lock: a recover reaps unheld keepers, and must not take this one first */
	_cleanup_journal_unlock_ int lock = -1;
	int r = lock_dir(j, &lock, err);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return ql_error_set_errno(err, errno, "open `%s`", path);
	if (flock(fd, LOCK_SH) < 0)
		return ql_error_set_errno(err, errno, "lock `%s`", path);
	j->keep_fd = TAKE_FD(fd);
	return 0;
}

/* "add-pending" and the like: the kind, and an ADD record's state after it. */
static bool kind_parse(const char *s, enum journal_kind *ret, enum add_state *ret_state)
{
	*ret_state = ADD_SETTLED;
	if (strncmp(s, "add-", 4) == 0)
		for (size_t k = ADD_PENDING; k < ELEMENTSOF(add_state_suffixes); k++)
			if (streq(s + 3, add_state_suffixes[k])) {
				*ret_state = (enum add_state)k;
				s = "add";
				break;
			}
	for (size_t i = 0; i < ELEMENTSOF(kind_names); i++)
		if (streq(s, kind_names[i])) {
			*ret = (enum journal_kind)i;
			return true;
		}
	return false;
}

static int serialize(const struct record *r, char **ret, size_t *ret_len)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return -ENOMEM;
	fprintf(f, MAGIC "pid %d\nstart %llu\nowner %zu\n", (int)r->pid, r->start,
		strlen(r->owner));
	fwrite(r->owner, 1, strlen(r->owner), f);
	fprintf(f, "\nkind %s%s\ndelta %ld\npath %zu\n", kind_name(r->kind),
		add_state_suffixes[r->state], r->delta, strlen(r->path));
	fwrite(r->path, 1, strlen(r->path), f);
	fprintf(f, "\norig %zu\n", r->orig.len);
	fwrite(r->orig.data, 1, r->orig.len, f);
	fprintf(f, "\nnew %zu\n", r->new_value.len);
	fwrite(r->new_value.data, 1, r->new_value.len, f);
	if (r->kind == JOURNAL_BIND) {
		fprintf(f, "\ndriver %zu\n", r->driver.len);
		fwrite(r->driver.data, 1, r->driver.len, f);
	}
	fputs("\nend\n", f);
	if (fclose(f) != 0) {
		free(out);
		return -ENOMEM;
	}
	*ret = out;
	*ret_len = len;
	return 0;
}

/* Parser state over one record file. */
struct cursor {
	const char *p, *end;
};

static bool take_line(struct cursor *c, const char *key, char *val, size_t size)
{
	size_t kl = strlen(key);
	if ((size_t)(c->end - c->p) <= kl || memcmp(c->p, key, kl) != 0 || c->p[kl] != ' ')
		return false;
	const char *s = c->p + kl + 1;
	const char *nl = memchr(s, '\n', (size_t)(c->end - s));
	if (!nl || (size_t)(nl - s) >= size)
		return false;
	memcpy(val, s, (size_t)(nl - s));
	val[nl - s] = '\0';
	c->p = nl + 1;
	return true;
}

static bool take_blob(struct cursor *c, const char *key, struct buf *ret)
{
	char num[32];
	if (!take_line(c, key, num, sizeof(num)))
		return false;
	char *e;
	unsigned long n = strtoul(num, &e, 10);
	if (*e || n > VALUE_MAX || (size_t)(c->end - c->p) < n + 1 || c->p[n] != '\n')
		return false;
	ret->data = malloc(n + 1);
	if (!ret->data)
		return false;
	memcpy(ret->data, c->p, n);
	ret->data[n] = '\0';
	ret->len = n;
	c->p += n + 1;
	return true;
}

static int parse_record(const char *name, const char *text, size_t len, struct record *r)
{
	struct cursor c = {text, text + len};
	char v[64];
	struct buf owner = {0}, path = {0};
	*r = (struct record){0};
	if (len < strlen(MAGIC) || memcmp(text, MAGIC, strlen(MAGIC)) != 0)
		return -EBADMSG;
	c.p += strlen(MAGIC);
	bool ok = take_line(&c, "pid", v, sizeof(v)) && (r->pid = (pid_t)atoi(v)) > 0 &&
		  take_line(&c, "start", v, sizeof(v)) && ((r->start = strtoull(v, NULL, 10)), 1) &&
		  take_blob(&c, "owner", &owner) && take_line(&c, "kind", v, sizeof(v)) &&
		  kind_parse(v, &r->kind, &r->state) && take_line(&c, "delta", v, sizeof(v)) &&
		  ((r->delta = strtol(v, NULL, 10)), 1) && take_blob(&c, "path", &path) &&
		  path.len == strlen(path.data) &&
		  (path.data[0] == '/' ||
		   strncmp(path.data, JOURNAL_TASK_PREFIX, strlen(JOURNAL_TASK_PREFIX)) == 0 ||
		   is_owner_path(path.data)) &&
		  take_blob(&c, "orig", &r->orig) && take_blob(&c, "new", &r->new_value) &&
		  (r->kind != JOURNAL_BIND ||
		   (path.data[0] == '/' && take_blob(&c, "driver", &r->driver))) &&
		  (size_t)(c.end - c.p) == 4 && memcmp(c.p, "end\n", 4) == 0;
	r->owner = owner.data;
	r->path = path.data;
	r->name = strdup(name);
	if (!ok || !r->name) {
		record_done(r);
		return -EBADMSG;
	}
	return 0;
}

/* Write-ahead: the record is on disk (file and directory entry) before we return. */
static int store_record(const struct journal *j, const struct record *r, struct ql_error *err)
{
	_cleanup_free_ char *text = NULL, *tmp_name = NULL, *path = NULL, *tmp = NULL;
	size_t len = 0;
	if (serialize(r, &text, &len) < 0 || asprintf(&tmp_name, ".tmp.%s", r->name) < 0 ||
	    !(path = path_join(j->dir, r->name)) || !(tmp = path_join(j->dir, tmp_name)))
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_close_ int fd =
	    open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return ql_error_set_errno(err, errno, "create journal record `%s`", tmp);
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			unlink(tmp);
			return ql_error_set_errno(err, e, "write journal record `%s`", tmp);
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return ql_error_set_errno(err, e, "store journal record `%s`", path);
	}
	return fsync_dir(j->dir, err);
}

static int remove_record(const struct journal *j, const char *name, struct ql_error *err)
{
	_cleanup_free_ char *path = path_join(j->dir, name);
	if (!path)
		return ql_error_set(err, ENOMEM, "out of memory");
	if (unlink(path) < 0 && errno != ENOENT)
		return ql_error_set_errno(err, errno, "remove journal record `%s`", path);
	return fsync_dir(j->dir, err);
}

struct records {
	struct record *v;
	size_t n;
};

static void records_done(struct records *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		record_done(&rs->v[i]);
	free(rs->v);
	*rs = (struct records){0};
}

/* Every well-formed record in the directory, in name order. A malformed one is reported and left
 * alone: guessing what to write back would be worse. */
static int record_cmp(const void *a, const void *b)
{
	return strcmp(((const struct record *)a)->name, ((const struct record *)b)->name);
}

static int load_records(const struct journal *j, struct records *ret, struct ql_error *err)
{
	_cleanup_closedir_ DIR *d = opendir(j->dir);
	if (!d)
		return ql_error_set_errno(err, errno, "open journal directory `%s`", j->dir);
	struct records rs = {0};
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *path = path_join(j->dir, de->d_name);
		struct buf text = {0};
		if (!path) {
			records_done(&rs);
			return ql_error_set(err, ENOMEM, "out of memory");
		}
		/* a record holds two values and more: read with its own bound, not a value's */
		int r =
		    read_small_file(AT_FDCWD, path, O_NOFOLLOW, RECORD_MAX, &text.data, &text.len);
		struct record rec;
		if (r == 0)
			r = parse_record(de->d_name, text.data, text.len, &rec);
		free(text.data);
		if (r < 0) {
			ql_log(j->log, QL_LOG_WARNING,
			       "journal record `%s` is unreadable; left alone", path);
			continue;
		}
		struct record *v = realloc(rs.v, (rs.n + 1) * sizeof(*v));
		if (!v) {
			record_done(&rec);
			records_done(&rs);
			return ql_error_set(err, ENOMEM, "out of memory");
		}
		rs.v = v;
		rs.v[rs.n++] = rec;
	}
	/* readdir's order is arbitrary: by name, one launcher's records are oldest first */
	if (rs.n > 1)
		qsort(rs.v, rs.n, sizeof(*rs.v), record_cmp);
	*ret = rs;
	return 0;
}

/* The first record (other than skip) for the same path: the chain whose original we share. */
static const struct record *other_for_path(const struct records *rs, const char *path,
					   const char *skip)
{
	for (size_t i = 0; i < rs->n; i++)
		if (!rs->v[i].gone && streq(rs->v[i].path, path) && !streq(rs->v[i].name, skip))
			return &rs->v[i];
	return NULL;
}

static int parse_long(const struct buf *b, const char *path, long *ret, struct ql_error *err)
{
	char *e;
	errno = 0;
	long v = strtol(b->data, &e, 10);
	while (isspace((unsigned char)*e))
		e++;
	if (errno || *e || e == b->data)
		return ql_error_set(err, EINVAL, "`%s` does not hold a number", path);
	*ret = v;
	return 0;
}

/* A counter's number now (nr_hugepages and the like). */
static int read_count(const char *path, long *ret, struct ql_error *err)
{
	struct buf cur = {0};
	int r = read_value(path, &cur, err);
	if (r == 0)
		r = parse_long(&cur, path, ret, err);
	free(cur.data);
	return r;
}

/* The directory locked (*ret_lock) and every record in it, for a pass that may change them. */
static int lock_and_load(const struct journal *j, int *ret_lock, struct records *ret,
			 struct ql_error *err)
{
	int r = lock_dir(j, ret_lock, err);
	return r < 0 ? r : load_records(j, ret, err);
}

/* --- drivers (JOURNAL_BIND) ---------------------------------------------------------------- */

/* dev_dir ".../bus/pci/devices/ADDR": the bus directory ".../bus/pci" and ADDR. */
static int bind_paths(const char *dev_dir, char **ret_bus, const char **ret_addr)
{
	const char *addr = strrchr(dev_dir, '/');
	if (!addr || !addr[1] || addr - dev_dir < (ptrdiff_t)strlen("/devices") ||
	    strncmp(addr - strlen("/devices"), "/devices", strlen("/devices")) != 0)
		return -EINVAL;
	size_t bus_len = (size_t)(addr - dev_dir) - strlen("/devices");
	if (bus_len == 0 || !(*ret_bus = strndup(dev_dir, bus_len)))
		return bus_len ? -ENOMEM : -EINVAL;
	*ret_addr = addr + 1;
	return 0;
}

/* The driver a device is bound to (the name its `driver` link points to); false when unbound. */
static bool driver_of(const char *dev_dir, char *out, size_t size)
{
	_cleanup_free_ char *link = path_join(dev_dir, "driver");
	char target[PATH_MAX];
	ssize_t n = link ? readlink(link, target, sizeof(target) - 1) : -1;
	if (n <= 0)
		return false;
	target[n] = '\0';
	const char *base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strlen(base) >= size)
		return false;
	strcpy(out, base);
	return true;
}

/* Writes text to the file named by fmt, traced with -d. */
static int write_to(const struct journal *j, const char *text, struct ql_error *err,
		    const char *fmt, ...) _printf_(4, 5);
static int write_to(const struct journal *j, const char *text, struct ql_error *err,
		    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *path = NULL;
	int n = vasprintf(&path, fmt, ap);
	va_end(ap);
	if (n < 0) {
		path = NULL;
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	return write_value(j, path, text, strlen(text), err);
}

/* driver_override as it was: the kernel shows an unset one as "(null)", and a lone newline
 * clears it. */
static int restore_override(const struct journal *j, const struct record *r, struct ql_error *err)
{
	_cleanup_free_ char *path = path_join(r->path, "driver_override");
	if (!path)
		return ql_error_set(err, ENOMEM, "out of memory");
	bool unset =
	    r->orig.len == 0 || streq(r->orig.data, "(null)\n") || streq(r->orig.data, "(null)");
	return unset ? write_value(j, path, "\n", 1, err)
		     : write_value(j, path, r->orig.data, r->orig.len, err);
}

/* A device moved to another driver, given back: off that driver (if it is still there), its
 * driver_override as it was, and onto its original driver (if it had one and is now unbound:
 * a driver someone chose since is left alone). A device that is gone has nothing to give back. */
static int undo_bind(const struct journal *j, const struct record *r, struct ql_error *err)
{
	_cleanup_free_ char *bus = NULL;
	const char *addr;
	if (bind_paths(r->path, &bus, &addr) < 0)
		return ql_error_set(err, EINVAL, "`%s` is not a device on a bus", r->path);
	if (access(r->path, F_OK) < 0 && errno == ENOENT)
		return 0;
	char cur[NAME_MAX + 1];
	bool bound = driver_of(r->path, cur, sizeof(cur));
	bool unbound = !bound;
	if (bound && streq(cur, r->new_value.data)) {
		int r1 = write_to(j, addr, err, "%s/drivers/%s/unbind", bus, cur);
		if (r1 < 0)
			return r1;
		unbound = true;
	}
	int r1 = restore_override(j, r, err);
	if (r1 < 0 || !unbound || r->driver.len == 0)
		return r1;
	struct ql_error e = {0};
	r1 = write_to(j, addr, &e, "%s/drivers/%s/bind", bus, r->driver.data);
	if (r1 < 0) {
		/* its driver refuses it now (or is gone): the bus finds it one, if any */
		ql_log(j->log, QL_LOG_WARNING, "%s; asking the bus to probe %s instead", e.msg,
		       addr);
		ql_error_clear(&e);
		r1 = write_to(j, addr, err, "%s/drivers_probe", bus);
	}
	return r1;
}

/* Whether a file's bytes are this value, but for the newline the kernel adds when read. */
static bool same_value(const struct buf *file, const struct buf *value)
{
	size_t a = file->len, b = value->len;
	while (a && file->data[a - 1] == '\n')
		a--;
	while (b && value->data[b - 1] == '\n')
		b--;
	return a == b && memcmp(file->data, value->data, a) == 0;
}

/* What a pending record's write gave, with the count now at `now`: its launcher was killed
 * during the write (or before it settled the record), and gave what the count rose by from
 * where it was, at most its wish. Only right while nothing else changed the count since: such a
 * record is settled (settle_pending) before any count is changed under the journal's lock.
 * -EINVAL: a record whose value is not a number (*ret left as it was). */
static int pending_got(const struct record *r, long now, long *ret, long *ret_before)
{
	long wished_to = 0;
	if (parse_long(&r->new_value, r->path, &wished_to, NULL) < 0)
		return -EINVAL;
	long before = wished_to - r->delta, got = now - before;
	*ret = got < 0 ? 0 : got < r->delta ? got : r->delta;
	if (ret_before)
		*ret_before = before;
	return 0;
}

/* A returning record's give-back landed: the count is the one it was writing. Under the lock no
 * other change can have come between (settle_pending resolves such a record first). */
static bool returned(const struct record *r, long now)
{
	long target = 0;
	return r->state == ADD_RETURNING &&
	       parse_long(&r->new_value, r->path, &target, NULL) == 0 && now == target;
}

/* r stored as returning, `delta` to go back down to `back`: ahead of the write that gives it. */
static int mark_returning(const struct journal *j, const struct record *r, long delta, long back,
			  struct ql_error *err)
{
	char num[32];
	snprintf(num, sizeof(num), "%ld", back);
	struct record m = *r;
	m.new_value = (struct buf){num, strlen(num)};
	m.delta = delta;
	m.state = ADD_RETURNING;
	return store_record(j, &m, err);
}

/* A counter gives back exactly its own delta, whatever else changed it meanwhile: another
 * program, or another record counting the same pages through another file (a node's pool is also
 * the host's). With nothing else changed that is the original number: its bytes are written. */
static int undo_add(const struct journal *j, const struct records *rs, const struct record *r,
		    struct ql_error *err)
{
	if (r->delta == 0)
		return 0;
	long now = 0, orig = 0;
	int ret = read_count(r->path, &now, err);
	if (ret < 0)
		return ret;
	if (returned(r, now))
		return 0; /* its launcher was killed after the write: given back already */
	long delta = r->delta;
	if (r->state == ADD_PENDING)
		(void)pending_got(r, now, &delta, NULL);
	long back = now - delta < 0 ? 0 : now - delta;
	ret = mark_returning(j, r, delta, back, err);
	if (ret < 0)
		return ret;
	if (!other_for_path(rs, r->path, r->name) &&
	    parse_long(&r->orig, r->path, &orig, NULL) == 0 && orig == back)
		return write_value(j, r->path, r->orig.data, r->orig.len, err);
	char num[32];
	int n = snprintf(num, sizeof(num), "%ld", back);
	return write_value(j, r->path, num, (size_t)n, err);
}

/* A setting: the last record out writes the original back. Before that, a value this record
 * wrote and that is still in the file gives way to another launcher's that still runs: a VM
 * that left must not impose its setting on those that stay (its rt_runtime_us over theirs, its
 * CPUs kept out of the housekeeping masks). A value someone wrote since is left alone. */
static int undo_set_value(const struct journal *j, const struct records *rs, const struct record *r,
			  struct ql_error *err)
{
	const struct record *other = other_for_path(rs, r->path, r->name);
	if (!other)
		return write_value(j, r->path, r->orig.data, r->orig.len, err);
	if (same_value(&other->new_value, &r->new_value))
		return 0;
	struct buf cur = {0};
	int ret = read_value(r->path, &cur, err);
	bool ours = ret == 0 && same_value(&cur, &r->new_value);
	free(cur.data);
	if (ret < 0 || !ours)
		return ret;
	return write_value(j, r->path, other->new_value.data, other->new_value.len, err);
}

/* undo_set_value, and a file gone since the change (an IRQ's, freed with its device; a sysctl of
 * a module unloaded) has nothing left to give back: its record goes, where it used to stay and
 * fail every later start's recovery. */
static int undo_set(const struct journal *j, const struct records *rs, const struct record *r,
		    struct ql_error *err)
{
	int ret = undo_set_value(j, rs, r, err);
	struct stat st;
	if (ret != -ENOENT || r->path[0] != '/' || stat(r->path, &st) == 0 || errno != ENOENT)
		return ret;
	ql_error_clear(err);
	ql_log(j->log, QL_LOG_INFO, "%s's `%s` is gone: nothing to give back", r->owner, r->path);
	return 0;
}

/* Gives one record's change back (undo_add, undo_set, undo_bind) and removes the record. */
static int undo_record(const struct journal *j, const struct records *rs, const struct record *r,
		       struct ql_error *err)
{
	int ret = r->kind == JOURNAL_BIND  ? undo_bind(j, r, err)
		  : r->kind == JOURNAL_ADD ? undo_add(j, rs, r, err)
					   : undo_set(j, rs, r, err);
	if (ret < 0) {
		ql_error_prefix(err, "giving back %s's change: ", r->owner);
		return ret;
	}
	return remove_record(j, r->name, err);
}

static int forget_own(struct journal *j, const char *name)
{
	for (size_t i = 0; i < j->n_own; i++)
		if (streq(j->own[i], name)) {
			free(j->own[i]);
			memmove(j->own + i, j->own + i + 1, (j->n_own - i - 1) * sizeof(char *));
			j->n_own--;
			return 0;
		}
	return -ENOENT;
}

static char *record_name(const struct journal *j)
{
	/* one sequence per process: record names stay unique across journals of one process */
	static unsigned seq;
	char *s = NULL;
	if (asprintf(&s, "%d.%llu.%06u", (int)j->pid, j->start, seq++) < 0)
		return NULL;
	return s;
}

/* Stores rec (write-ahead) and counts it among this launcher's own. */
static int store_own(struct journal *j, const struct record *rec, struct ql_error *err)
{
	char **own = realloc(j->own, (j->n_own + 1) * sizeof(char *));
	if (!own)
		return ql_error_set(err, ENOMEM, "out of memory");
	j->own = own;
	int r = store_record(j, rec, err);
	if (r < 0)
		return r;
	if (!(j->own[j->n_own] = strdup(rec->name))) {
		remove_record(j, rec->name, NULL);
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	j->n_own++;
	return 0;
}

/* A pending ADD record settled to what its write gave: the count was `before`, `got` of the wish
 * came. Stored in place of the pending one, then r is the settled one; on failure both stay
 * pending. */
static int settle_record(const struct journal *j, struct record *r, long before, long got,
			 struct ql_error *err)
{
	char settled[32];
	snprintf(settled, sizeof(settled), "%ld", before + got);
	struct record s = *r;
	s.new_value = (struct buf){strdup(settled), strlen(settled)};
	s.delta = got;
	s.state = ADD_SETTLED;
	if (!s.new_value.data)
		return ql_error_set(err, ENOMEM, "out of memory");
	int ret = store_record(j, &s, err);
	if (ret < 0) {
		free(s.new_value.data);
		return ret;
	}
	free(r->new_value.data);
	*r = s;
	return 0;
}

static bool is_own(const struct journal *j, const struct record *r)
{
	return r->pid == j->pid && r->start == j->start && streq(r->owner, j->owner);
}

/* A record killed during its give-back (returning), before any other count change: gone when its
 * write landed, else a plain record again, whose pages are still to give back. */
static void settle_returning(const struct journal *j, struct record *r)
{
	struct ql_error e = {0};
	long now = 0;
	int ret = read_count(r->path, &now, &e);
	bool landed = ret == 0 && returned(r, now);
	if (ret == 0 && landed) {
		ret = remove_record(j, r->name, &e);
		r->gone = ret == 0;
	} else if (ret == 0) {
		struct record s = *r;
		s.state = ADD_SETTLED;
		ret = store_record(j, &s, &e);
		if (ret == 0)
			r->state = ADD_SETTLED;
	}
	if (ret < 0)
		ql_log(j->log, QL_LOG_WARNING,
		       "%s's interrupted give-back to %s left as it was: %s", r->owner, r->path,
		       e.msg ? e.msg : strerror(-ret));
	else
		ql_log(j->log, QL_LOG_DEBUG, "%s's interrupted give-back to %s: %s (pid %d)",
		       r->owner, r->path, landed ? "it had landed" : "still to give", (int)r->pid);
	ql_error_clear(&e);
}

/* Before a count is changed (a launcher's own change, or a give-back): other launchers' records
 * still pending are settled to what their writes gave. Under the lock no write of theirs is
 * under way (change() holds it from its record to the settled one), so the counts show what
 * they got; after this change they would be off by it. Such a record outlives its launcher only
 * while a guardian keeps it, and that guardian would otherwise give back another launcher's
 * pages with its own, or keep some of its own, through whatever file: a node's pool counts the
 * host's pages too. Best effort: a record not settled stays as it was. */
static void settle_pending(const struct journal *j, struct records *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		struct record *r = &rs->v[i];
		if (r->state == ADD_RETURNING && !r->gone && !is_own(j, r)) {
			settle_returning(j, r);
			continue;
		}
		if (r->state != ADD_PENDING || is_own(j, r))
			continue;
		struct ql_error e = {0};
		long now = 0, got = 0, before = 0;
		int ret = read_count(r->path, &now, &e);
		if (ret == 0)
			ret = pending_got(r, now, &got, &before);
		if (ret == 0)
			ret = settle_record(j, r, before, got, &e);
		if (ret < 0)
			ql_log(j->log, QL_LOG_WARNING,
			       "%s's interrupted change to %s left pending: %s", r->owner, r->path,
			       e.msg ? e.msg : strerror(-ret));
		else
			ql_log(j->log, QL_LOG_DEBUG,
			       "settled %s's interrupted change to %s: %ld given (pid %d)",
			       r->owner, r->path, got, (int)r->pid);
		ql_error_clear(&e);
	}
}

/* Records then writes, under the lock. For ADD, value is ignored and delta is the wish. */
static int change(struct journal *j, enum journal_kind kind, const char *path, const char *value,
		  long want, long *ret_got, struct ql_error *err)
{
	_cleanup_journal_unlock_ int lock = -1;
	int r = lock_dir(j, &lock, err);
	if (r < 0)
		return r;
	struct records rs = {0};
	struct record rec = {.pid = j->pid,
			     .start = j->start,
			     .kind = kind,
			     .delta = want,
			     .state = kind == JOURNAL_ADD ? ADD_PENDING : ADD_SETTLED};
	struct buf cur = {0};
	r = load_records(j, &rs, err);
	if (r == 0 && kind == JOURNAL_ADD)
		settle_pending(j, &rs);
	if (r == 0)
		r = read_value(path, &cur, err);
	long before = 0;
	if (r == 0 && kind == JOURNAL_ADD)
		r = parse_long(&cur, path, &before, err);
	char num[32];
	if (r == 0 && kind == JOURNAL_ADD) {
		snprintf(num, sizeof(num), "%ld", before + want);
		value = num;
	}
	if (r < 0)
		goto out;
	/* A file another live launcher changed first: its original is the host's, not today's. */
	const struct record *chain = other_for_path(&rs, path, "");
	const struct buf *orig = chain ? &chain->orig : &cur;
	if (!(rec.name = record_name(j)) || !(rec.owner = strdup(j->owner)) ||
	    !(rec.path = strdup(path)) || !(rec.orig.data = malloc(orig->len + 1)) ||
	    !(rec.new_value.data = strdup(value))) {
		r = ql_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	memcpy(rec.orig.data, orig->data, orig->len);
	rec.orig.data[orig->len] = '\0';
	rec.orig.len = orig->len;
	rec.new_value.len = strlen(value);
	r = store_own(j, &rec, err);
	if (r < 0)
		goto out;
	r = write_value(j, path, value, strlen(value), err);
	if (r < 0 && kind == JOURNAL_SET) {
		/* A refused write (a managed IRQ's EIO) changed nothing: a record would only make
		 * every undo try, and fail, to write the original back. */
		remove_record(j, rec.name, NULL);
		forget_own(j, rec.name);
	}
	if (kind == JOURNAL_ADD) {
		/* The kernel may give fewer pages than asked (or none, on failure): the record must
		 * hold what we got, not what we wished. */
		long now = before; /* as it was, when it cannot be read */
		struct ql_error e = {0};
		int r1 = read_count(path, &now, r < 0 ? &e : err);
		ql_error_clear(&e);
		if (r1 < 0 && r == 0) {
			/* The write landed and what it gave cannot be told: settled at 0, its pages
			 * would never be given back. The record stays pending (the wish): its
			 * give-back counts from the count then, at most the wish (pending_got). */
			if (ret_got)
				*ret_got = 0;
			r = r1;
			goto out;
		}
		long got = now - before;
		if (want >= 0 && got > want)
			got = want; /* someone else raised it meanwhile: not ours to give back */
		if (want >= 0 && got < 0)
			got = 0;
		/* what it got, from where it was: the record is settled */
		int r2 = settle_record(j, &rec, before, got, r < 0 ? NULL : err);
		if (r == 0)
			r = r2;
		if (ret_got)
			*ret_got = got;
		if (r < 0 && got == 0) {
			/* nothing changed: the record has nothing to give back */
			remove_record(j, rec.name, NULL);
			forget_own(j, rec.name);
		}
	}
out:
	free(cur.data);
	record_done(&rec);
	records_done(&rs);
	return r;
}

int journal_set(struct journal *j, const char *path, const char *value, struct ql_error *err)
{
	return change(j, JOURNAL_SET, path, value, 0, NULL, err);
}

int journal_add(struct journal *j, const char *path, long want, long *ret_got, struct ql_error *err)
{
	return change(j, JOURNAL_ADD, path, NULL, want, ret_got, err);
}

int journal_bind(struct journal *j, const char *dev_dir, const char *driver, struct ql_error *err)
{
	_cleanup_free_ char *bus = NULL;
	const char *addr;
	int r = bind_paths(dev_dir, &bus, &addr);
	if (r < 0)
		return ql_error_set(err, -r, "`%s` is not a device on a bus", dev_dir);
	_cleanup_free_ char *override = path_join(dev_dir, "driver_override");
	if (!override)
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_journal_unlock_ int lock = -1;
	r = lock_dir(j, &lock, err);
	if (r < 0)
		return r;
	char cur[NAME_MAX + 1];
	bool bound = driver_of(dev_dir, cur, sizeof(cur));
	if (bound && streq(cur, driver))
		return 0;
	struct record rec = {.pid = j->pid, .start = j->start, .kind = JOURNAL_BIND};
	r = read_value(override, &rec.orig, err);
	if (r == 0 && (!(rec.name = record_name(j)) || !(rec.owner = strdup(j->owner)) ||
		       !(rec.path = strdup(dev_dir)) || !(rec.new_value.data = strdup(driver)) ||
		       !(rec.driver.data = strdup(bound ? cur : ""))))
		r = ql_error_set(err, ENOMEM, "out of memory");
	rec.new_value.len = strlen(driver);
	rec.driver.len = bound ? strlen(cur) : 0;
	if (r == 0)
		r = store_own(j, &rec, err);
	if (r < 0) {
		record_done(&rec);
		return r;
	}
	r = write_value(j, override, driver, strlen(driver), err);
	if (r < 0) {
		/* nothing changed: nothing to give back */
		remove_record(j, rec.name, NULL);
		forget_own(j, rec.name);
	}
	if (r == 0 && bound)
		r = write_to(j, addr, err, "%s/drivers/%s/unbind", bus, cur);
	if (r == 0)
		r = write_to(j, addr, err, "%s/drivers_probe", bus);
	record_done(&rec);
	return r;
}

void journal_bindings_free(struct journal_binding *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].dev_dir);
		free(v[i].owner);
	}
	free(v);
}

int journal_bindings(struct journal *j, struct journal_binding **ret, size_t *ret_n,
		     struct ql_error *err)
{
	_cleanup_journal_unlock_ int lock = -1;
	struct records rs = {0};
	int r = lock_and_load(j, &lock, &rs, err);
	if (r < 0)
		return r;
	struct journal_binding *v = NULL;
	size_t n = 0;
	for (size_t i = 0; i < rs.n && r == 0; i++) {
		const struct record *rec = &rs.v[i];
		if (rec->kind != JOURNAL_BIND ||
		    !records_held(j->dir, rec->pid, rec->start, true) ||
		    (rec->pid == j->pid && rec->start == j->start))
			continue;
		struct journal_binding *nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			r = ql_error_set(err, ENOMEM, "out of memory");
			break;
		}
		v = nv;
		v[n] = (struct journal_binding){
		    .pid = rec->pid, .dev_dir = strdup(rec->path), .owner = strdup(rec->owner)};
		if (!v[n++].dev_dir || !v[n - 1].owner)
			r = ql_error_set(err, ENOMEM, "out of memory");
	}
	records_done(&rs);
	if (r < 0) {
		journal_bindings_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static bool is_dead_owners(const struct journal *j, const struct record *r)
{
	return !(r->pid == j->pid && r->start == j->start) &&
	       !records_held(j->dir, r->pid, r->start, true);
}

/* lock_and_load for a pass that gives back the records `gives_back` picks. When a counter
 * (hugepages) is among them, the pass runs under the hugepage start-up lock too: a launcher
 * between its count of free pages and its qemu's mapping of them must not lose pages it counted.
 * That lock comes first (a start-up holds it while it takes the directory's). *ret_took: taken
 * here, for the caller to let go after a pass that loaded; let go here when the load failed. */
static int
lock_and_load_to_give_back(struct journal *j,
			   bool (*gives_back)(const struct journal *, const struct record *),
			   int *ret_lock, struct records *rs, bool *ret_took, struct ql_error *err)
{
	*ret_took = false;
	int r = lock_and_load(j, ret_lock, rs, err);
	bool counter = false;
	for (size_t i = 0; r == 0 && i < rs->n; i++)
		counter |= rs->v[i].kind == JOURNAL_ADD && gives_back(j, &rs->v[i]);
	if (!counter)
		return r;
	if (j->huge_fd >= 0) {
		settle_pending(j, rs);
		return r;
	}
	records_done(rs);
	journal_unlock(ret_lock);
	struct ql_error e = {0};
	if (journal_lock_hugepages(j, &e) == 0)
		*ret_took = true;
	else /* later would be worse: the pages would stay reserved */
		ql_log(j->log, QL_LOG_WARNING, "giving hugepages back without waiting: %s", e.msg);
	ql_error_clear(&e);
	r = lock_and_load(j, ret_lock, rs, err);
	if (r == 0)
		settle_pending(j, rs);
	if (r < 0 && *ret_took) {
		journal_unlock_hugepages(j);
		*ret_took = false;
	}
	return r;
}

int journal_undo_own(struct journal *j, struct ql_error *err)
{
	if (!j)
		return 0;
	_cleanup_journal_unlock_ int lock = -1;
	struct records rs = {0};
	bool took = false;
	int r = lock_and_load_to_give_back(j, is_own, &lock, &rs, &took, err);
	if (r < 0)
		return r;
	int ret = 0;
	/* Every record of this launcher (pid, start time and VM), newest first: the guardian's copy
	 * of the journal was forked before the later records (housekeeping, written just before
	 * `cont`) were added to j->own. */
	for (size_t i = rs.n; i-- > 0;) {
		if (!is_own(j, &rs.v[i]) || rs.v[i].gone)
			continue;
		struct ql_error e = {0};
		ql_error_keep_first(undo_record(j, &rs, &rs.v[i], &e), &e, &ret, err);
		rs.v[i].gone = true;
	}
	while (j->n_own > 0)
		free(j->own[--j->n_own]);
	records_done(&rs);
	if (took)
		journal_unlock_hugepages(j);
	return ret;
}

int journal_recover(struct journal *j, unsigned *ret_n, struct ql_error *err)
{
	_cleanup_journal_unlock_ int lock = -1;
	struct records rs = {0};
	bool took = false;
	int r = lock_and_load_to_give_back(j, is_dead_owners, &lock, &rs, &took, err);
	if (r < 0)
		return r;
	int ret = 0;
	unsigned n = 0;
	/* newest first, so a dead launcher's settings unwind in reverse order */
	for (size_t i = rs.n; i-- > 0;) {
		struct record *rec = &rs.v[i];
		if (!is_dead_owners(j, rec) || rec->gone)
			continue;
		struct ql_error e = {0};
		int r1 = undo_record(j, &rs, rec, &e);
		if (r1 == 0) {
			n++;
			ql_log(j->log, QL_LOG_INFO,
			       "gave back %s's change to %s (its launcher, pid %d, is gone)",
			       rec->owner, rec->path, (int)rec->pid);
		}
		ql_error_keep_first(r1, &e, &ret, err);
		rec->gone = true;
	}
	records_done(&rs);
	if (took)
		journal_unlock_hugepages(j);
	if (ret_n)
		*ret_n = n;
	return ret;
}

int journal_read_current(const char *path, char **ret, struct ql_error *err)
{
	struct buf b = {0};
	int r = read_value(path, &b, err);
	if (r < 0)
		return r;
	*ret = b.data;
	return 0;
}

char *journal_describe_write(const char *path, const char *old, const char *new_value)
{
	struct ql_shown a, b;
	char *s = NULL;
	if (asprintf(&s, "%s: %s -> %s", path, ql_show(&a, old), ql_show(&b, new_value)) < 0)
		return NULL;
	return s;
}

int journal_list(const char *dir, struct journal_entry **ret, size_t *ret_n, struct ql_error *err)
{
	*ret = NULL;
	*ret_n = 0;
	if (access(dir, F_OK) < 0 && errno == ENOENT)
		return 0; /* no launcher ever changed a value here */
	struct journal j = {.dir = (char *)dir};
	struct records rs = {0};
	int r = load_records(&j, &rs, err);
	if (r < 0)
		return r;
	struct journal_entry *v = calloc(rs.n ? rs.n : 1, sizeof(*v));
	if (!v) {
		records_done(&rs);
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < rs.n; i++) {
		struct record *rec = &rs.v[i];
		v[i] = (struct journal_entry){.pid = rec->pid,
					      .alive = owner_alive(rec->pid, rec->start),
					      .owner = TAKE_PTR(rec->owner),
					      .kind = rec->kind,
					      .delta = rec->delta,
					      .path = TAKE_PTR(rec->path),
					      .orig = TAKE_PTR(rec->orig.data),
					      .new_value = TAKE_PTR(rec->new_value.data)};
	}
	*ret_n = rs.n;
	*ret = v;
	records_done(&rs);
	return 0;
}

void journal_entries_free(struct journal_entry *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].owner);
		free(v[i].path);
		free(v[i].orig);
		free(v[i].new_value);
	}
	free(v);
}
