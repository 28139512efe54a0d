/* QMP client over a private socket to qemu; the only module that knows JSON. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Largest single QMP message accepted (query-cpus-fast is ~180 bytes per vCPU). */
#define QMP_MAX_MESSAGE (4 * 1024 * 1024)
/* And the most JSON objects and arrays in one, and separators (`,` `:`) between its values:
 * json-c takes ~700 bytes an object, so 4 MiB of `[{},{},...]` made the launcher grow by a GiB.
 * query-cpus-fast has 2 objects and ~20 separators a vCPU: 8,192 vCPUs stay within. */
#define QMP_MAX_CONTAINERS 65536
#define QMP_MAX_VALUES 262144

struct qmp;

/* Called for every asynchronous event (`"event": NAME`) read, whatever call read it. NAME is
 * valid during the call only; the callback must not call qmp_* functions. */
typedef void (*qmp_event_fn)(const char *event, void *userdata);

/* Takes ownership of fd (a connected stream socket, made non-blocking and close-on-exec here),
 * also when it fails.
 * Common rules: timeout_ms < 0 waits forever (EINTR never cuts a wait short). Commands carry an
 * "id" counting from 1 per connection; replies with another id (late replies after a timeout,
 * replies to qmp_send(), id-less errors) are dropped. -ECONNRESET (qemu gone), -EPROTO and
 * -EMSGSIZE (untrustworthy stream) are sticky: every later call returns them again. */
int qmp_new(int fd, qmp_event_fn on_event, void *userdata, struct qmp **ret, struct ql_error *err);
void qmp_free(struct qmp *q);
static inline void qmp_freep(struct qmp **q)
{
	qmp_free(*q);
}
#define _cleanup_qmp_ _cleanup_(qmp_freep)

int qmp_fd(const struct qmp *q);

/* While a command waits for its reply, fd becoming readable calls interrupted(userdata); when it
 * returns true the wait ends with -EINTR (the command's reply is then never read). For the
 * launcher's signalfd: a stop signal must not wait for a stalled qemu. */
void qmp_set_interrupt(struct qmp *q, int fd, bool (*interrupted)(void *userdata), void *userdata);
/* While a call waits for qemu, TICK runs whenever EVERY_MS pass without input (NULL: never). */
void qmp_set_tick(struct qmp *q, int every_ms, void (*tick)(void *userdata), void *userdata);
/* True while commands given to qmp_send() wait for room in the socket: poll qmp_fd() for
 * POLLOUT as well and call qmp_process_input() when it is writable. */
bool qmp_wants_write(const struct qmp *q);

/* Sends COMMANDS (NULL-terminated, static strings, at most QMP_PIPELINE_MAX) at once, without
 * waiting for the greeting or any reply: qemu reads them once its monitor is up and answers in
 * order. The calls that follow for the same commands in the same order (qmp_handshake for
 * "qmp_capabilities", qmp_query_status, ...) then only wait for their reply: one write and no
 * round trip per command. A call out of that order forgets what was sent ahead (those replies
 * are dropped). */
#define QMP_PIPELINE_MAX 4
int qmp_pipeline(struct qmp *q, const char *const *commands, struct ql_error *err);

/* Writes COMMAND now but for its closing brace, which the next qmp_execute() (or qmp_send()) of
 * COMMAND sends. QEMU 7.2 reads its monitor one byte per turn of the monitor's loop (1.9 to
 * 12.8 us a byte on the bench hosts) and runs a command once its closing brace is read, so a
 * command staged while qemu starts costs one byte when it is due instead of all of its own. A
 * command sent before it voids it: its object is closed with a member qemu refuses
 * (QMP_VOID_MEMBER), so qemu answers an error (dropped here) and runs nothing. One command at
 * a time (-EBUSY); COMMAND is kept, not copied (a static string). */
#define QMP_VOID_MEMBER "qemu-launcher-void"
int qmp_stage(struct qmp *q, const char *command, struct ql_error *err);

/* Waits until qemu has written something (its greeting, usually) or closed the connection,
 * with the interrupt and the tick of the calls that wait for a reply; nothing read is consumed.
 * -ETIMEDOUT, -EINTR (the interrupt). */
int qmp_wait_input(struct qmp *q, int timeout_ms, struct ql_error *err);

/* Waits for the greeting and sends qmp_capabilities (or waits for its reply, see qmp_pipeline).
 * -ETIMEDOUT, -ECONNRESET when qemu went away (EOF/ECONNRESET), -EPROTO on malformed input. */
int qmp_handshake(struct qmp *q, int timeout_ms, struct ql_error *err);

/* Runs a command without arguments whose result is ignored ("cont", "quit", "stop",
 * "system_powerdown"), waiting for its reply; events read meanwhile go to on_event.
 * A QMP error reply gives -EREMOTEIO with qemu's class and desc in err. For "quit",
 * -ECONNRESET also means success (qemu may close before its reply is read). */
int qmp_execute(struct qmp *q, const char *command, int timeout_ms, struct ql_error *err);

/* Sends a command without waiting (never blocks: what the socket does not take now is queued,
 * see qmp_wants_write(); -ENOBUFS when 64 KiB are queued); its reply is dropped later by
 * qmp_process_input() or by a waiting call. */
int qmp_send(struct qmp *q, const char *command, struct ql_error *err);

/* "prelaunch", "running", "paused", ... (query-status). */
int qmp_query_status(struct qmp *q, int timeout_ms, char **ret_status, struct ql_error *err);

struct qmp_cpu {
	int cpu_index;
	pid_t thread_id;	       /* host TID (top-level "thread-id") */
	int socket, core, thread, die; /* props; -1 when qemu did not report one */
};

/* query-cpus-fast, sorted by cpu_index. */
int qmp_query_cpus_fast(struct qmp *q, int timeout_ms, struct qmp_cpu **ret_cpus, size_t *ret_n,
			struct ql_error *err);

/* One I/O thread (`-object iothread,id=`) from query-iothreads. */
#define QMP_IOTHREAD_ID_MAX 128
struct qmp_iothread {
	char id[QMP_IOTHREAD_ID_MAX];
	pid_t thread_id; /* host TID */
};
int qmp_query_iothreads(struct qmp *q, int timeout_ms, struct qmp_iothread **ret, size_t *ret_n,
			struct ql_error *err);
/* The same from a recorded reply's "return" value (tests). */
int qmp_parse_iothreads(const char *json, struct qmp_iothread **ret, size_t *ret_n,
			struct ql_error *err);

/* Reads what is available without blocking, dispatching events and dropping replies to
 * qmp_send() commands; also writes queued commands. 0 when qemu is still there, -ECONNRESET once
 * it has closed the channel. Call it whenever qmp_fd() is readable (POLLIN, POLLHUP, POLLERR),
 * so qemu never blocks on a full socket. */
int qmp_process_input(struct qmp *q, struct ql_error *err);

/* Pure parsing pieces, exposed for unit tests and the fuzzer. JSON text is either the whole
 * reply object ({"return": [...], "id": N}) or the bare "return" array. */
int qmp_parse_cpus(const char *json, struct qmp_cpu **ret_cpus, size_t *ret_n,
		   struct ql_error *err);
