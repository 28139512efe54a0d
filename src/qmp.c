/* QMP client over the private socket qemu was started with; the only module that knows JSON.
 * Framing, id matching, event dispatch and timeouts follow doc/qemu-7.2.md. */
#include "qmp.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "json_cleanup.h"
#include "jsonc.h"

/* One line may carry QMP_MAX_MESSAGE bytes of JSON plus the "\r\n" qemu's monitor ends it with. */
#define QMP_LINE_MAX (QMP_MAX_MESSAGE + 2)
#define QMP_READ_CHUNK 4096
/* Commands not yet accepted by the socket; a few dozen bytes each, so this means qemu hangs. */
#define QMP_OUT_MAX (64 * 1024)
/* qmp_process_input() reads at most this often per call so an event flood cannot starve the
 * caller's loop; the fd stays readable and the caller comes back. */
#define QMP_DRAIN_READS 64
/* Bounds for query-cpus-fast (Linux NR_CPUS max, like CPU_LIST_MAX_CPUS). */
#define QMP_MAX_CPUS 8192
#define QMP_COMMAND_NAME_MAX 64
#define QMP_STATUS_MAX 64
/* How much of qemu's error text we copy into messages. */
#define QMP_DESC_MAX 512

struct qmp {
	int fd;
	qmp_event_fn on_event;
	void *userdata;
	struct json_tokener *tok;
	/* Bytes read from qemu; [in_start, in_len) is not consumed yet. Holds at most one partial
	 * line when we read, because complete lines are always handled before reading more. */
	char *in;
	size_t in_start, in_len, in_cap;
	/* Commands queued but not yet accepted by the socket (partial writes). */
	char *out;
	size_t out_len;
	int64_t next_id;
	bool eof;	  /* qemu closed its end; buffered complete lines are still delivered */
	int interrupt_fd; /* -1, or an fd whose readiness may end a wait (qmp_set_interrupt) */
	bool (*interrupted)(void *userdata);
	void *interrupt_userdata;
	int tick_ms; /* 0, or how often a wait calls tick (qmp_set_tick) */
	void (*tick)(void *userdata);
	void *tick_userdata;
	int failed; /* sticky -errno once the channel cannot be trusted or qemu is gone */
	/* Commands sent ahead by qmp_pipeline(), in order: the next run of the same command
	 * waits for that reply instead of sending it again. */
	struct {
		const char *command; /* static, from the caller */
		int64_t id;
	} ahead[QMP_PIPELINE_MAX];
	size_t n_ahead;
	/* The command qmp_stage() wrote but for its closing brace (NULL: none), and its id. */
	const char *staged;
	int64_t staged_id;
};

static void json_tokener_freep(struct json_tokener **t)
{
	if (*t)
		json_tokener_free(*t);
}

static struct json_tokener *qmp_tokener_new(void)
{
	struct json_tokener *tok = json_tokener_new();
	/* Our own check rejects anything but whitespace after the object. */
	if (tok)
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8 |
						JSON_TOKENER_ALLOW_TRAILING_CHARS);
	return tok;
}

int qmp_new(int fd, qmp_event_fn on_event, void *userdata, struct qmp **ret, struct ql_error *err)
{
	_cleanup_close_ int owned = fd;
	if (fd < 0)
		return ql_error_set(err, EBADF, "invalid QMP socket");
	int r = jsonc_load(err);
	if (r < 0)
		return r;

	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return ql_error_set_errno(err, errno, "making the QMP socket non-blocking");
	int fdflags = fcntl(fd, F_GETFD);
	if (fdflags < 0 || fcntl(fd, F_SETFD, fdflags | FD_CLOEXEC) < 0)
		return ql_error_set_errno(err, errno, "making the QMP socket close-on-exec");

	struct qmp *q = calloc(1, sizeof(*q));
	if (!q)
		return ql_error_set(err, ENOMEM, "out of memory");
	q->tok = qmp_tokener_new();
	if (!q->tok) {
		free(q);
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	q->fd = TAKE_FD(owned);
	q->on_event = on_event;
	q->userdata = userdata;
	q->next_id = 1;
	q->interrupt_fd = -1;
	*ret = q;
	return 0;
}

void qmp_free(struct qmp *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	if (q->tok)
		json_tokener_free(q->tok);
	free(q->in);
	free(q->out);
	free(q);
}

_idle_ int qmp_fd(const struct qmp *q)
{
	return q->fd;
}

void qmp_set_interrupt(struct qmp *q, int fd, bool (*interrupted)(void *userdata), void *userdata)
{
	q->interrupt_fd = fd;
	q->interrupted = interrupted;
	q->interrupt_userdata = userdata;
}

void qmp_set_tick(struct qmp *q, int every_ms, void (*tick)(void *userdata), void *userdata)
{
	q->tick_ms = tick ? every_ms : 0;
	q->tick = tick;
	q->tick_userdata = userdata;
}

_idle_ bool qmp_wants_write(const struct qmp *q)
{
	return q->out_len > 0 && q->failed == 0;
}

/* Marks the channel unusable: later calls fail at once with the same code. */
static int qmp_fail(struct qmp *q, struct ql_error *err, int errnum, const char *msg)
{
	q->failed = -errnum;
	return ql_error_set(err, errnum, "%s", msg);
}

static int qmp_closed(struct qmp *q, struct ql_error *err)
{
	if (q->in_len > q->in_start)
		return qmp_fail(q, err, ECONNRESET,
				"qemu closed the QMP connection in the middle of a message");
	return qmp_fail(q, err, ECONNRESET, "qemu closed the QMP connection");
}

static int qmp_check_usable(const struct qmp *q, struct ql_error *err)
{
	if (q->failed == -ECONNRESET)
		return ql_error_set(err, ECONNRESET, "qemu closed the QMP connection");
	if (q->failed < 0)
		return ql_error_set(err, -q->failed,
				    "the QMP connection is unusable after an earlier error");
	return 0;
}

/* poll() timeout until deadline: -1 forever, 0 when it has passed. */
static int remaining_ms(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - now_ms();
	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* Writes as much queued output as the socket takes now. */
static int flush_output(struct qmp *q, struct ql_error *err)
{
	while (q->out_len > 0) {
		ssize_t n = send(q->fd, q->out, q->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EPIPE || errno == ECONNRESET)
				return qmp_fail(q, err, ECONNRESET,
						"qemu closed the QMP connection");
			int e = errno;
			q->failed = -e;
			return ql_error_set_errno(err, e, "writing to the QMP socket");
		}
		memmove(q->out, q->out + n, q->out_len - (size_t)n);
		q->out_len -= (size_t)n;
	}
	return 0;
}

static bool valid_command_name(const char *command)
{
	size_t len = strlen(command);
	if (len == 0 || len > QMP_COMMAND_NAME_MAX)
		return false;
	for (const char *c = command; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_')
			return false;
	return true;
}

/* Queues LEN bytes of TEXT and tries to write them. */
static int queue_bytes(struct qmp *q, const char *text, size_t len, struct ql_error *err)
{
	if (q->out_len + len > QMP_OUT_MAX)
		return ql_error_set(err, ENOBUFS, "qemu does not read its QMP commands");
	char *out = realloc(q->out, q->out_len + len);
	if (!out)
		return ql_error_set(err, ENOMEM, "out of memory");
	q->out = out;
	memcpy(q->out + q->out_len, text, len);
	q->out_len += len;
	return flush_output(q, err);
}

/* The staged command, if any, closed: sent (COMMAND is the staged one: its id is returned) or
 * voided (another command goes first). */
static int close_staged(struct qmp *q, const char *command, int64_t *ret_id, struct ql_error *err)
{
	*ret_id = 0;
	if (!q->staged)
		return 0;
	static const char send[] = "}\n", void_it[] = ",\"" QMP_VOID_MEMBER "\":0}\n";
	bool due = streq(q->staged, command);
	/* a full queue here would leave qemu a half command: then nothing is sendable anyway */
	int r = due ? queue_bytes(q, send, sizeof(send) - 1, err)
		    : queue_bytes(q, void_it, sizeof(void_it) - 1, err);
	if (r < 0)
		return r;
	if (due)
		*ret_id = q->staged_id;
	q->staged = NULL;
	return 0;
}

/* {"execute":COMMAND,"id":N} as text in *ret (freed by the caller), N the next id. */
static int command_text(struct qmp *q, const char *command, char **ret, struct ql_error *err)
{
	if (!valid_command_name(command))
		return ql_error_set(err, EINVAL, "invalid QMP command name `%.*s`",
				    QMP_COMMAND_NAME_MAX, command);
	_cleanup_json_ json_object *cmd = json_object_new_object();
	if (!cmd)
		return ql_error_set(err, ENOMEM, "out of memory");
	if (json_object_object_add(cmd, "execute", json_object_new_string(command)) < 0 ||
	    json_object_object_add(cmd, "id", json_object_new_int64(q->next_id)) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	const char *text = json_object_to_json_string_ext(cmd, JSON_C_TO_STRING_PLAIN);
	if (!text || !(*ret = strdup(text)))
		return ql_error_set(err, ENOMEM, "out of memory");
	return 0;
}

/* Queues {"execute":COMMAND,"id":N} and tries to write it; the id is returned for matching. A
 * staged COMMAND only gets its closing brace. */
static int queue_command(struct qmp *q, const char *command, int64_t *ret_id, struct ql_error *err)
{
	int r = close_staged(q, command, ret_id, err);
	if (r < 0 || *ret_id > 0)
		return r;
	_cleanup_free_ char *text = NULL;
	r = command_text(q, command, &text, err);
	if (r < 0)
		return r;
	size_t len = strlen(text);
	text[len] = '\n'; /* replaces the terminator: the length is counted */
	r = queue_bytes(q, text, len + 1, err);
	if (r < 0)
		return r;
	*ret_id = q->next_id++;
	return 0;
}

int qmp_stage(struct qmp *q, const char *command, struct ql_error *err)
{
	int r = qmp_check_usable(q, err);
	if (r < 0)
		return r;
	if (q->staged)
		return ql_error_set(err, EBUSY, "`%s` is staged already", q->staged);
	_cleanup_free_ char *text = NULL;
	r = command_text(q, command, &text, err);
	if (r < 0)
		return r;
	/* all but the closing brace: qemu's parser holds the object open until it comes */
	r = queue_bytes(q, text, strlen(text) - 1, err);
	if (r < 0)
		return r;
	q->staged = command;
	q->staged_id = q->next_id++;
	return 0;
}

/* Reads once without blocking. 1: progress (data or EOF recorded), 0: nothing available. */
static int fill_input(struct qmp *q, struct ql_error *err)
{
	if (q->in_start > 0) {
		memmove(q->in, q->in + q->in_start, q->in_len - q->in_start);
		q->in_len -= q->in_start;
		q->in_start = 0;
	}
	if (q->in_len == q->in_cap) {
		/* The buffer holds only one unfinished line here (see struct qmp). */
		if (q->in_cap >= QMP_LINE_MAX)
			return qmp_fail(q, err, EMSGSIZE,
					"qemu sent a QMP message larger than the limit");
		size_t cap = q->in_cap ? q->in_cap * 2 : QMP_READ_CHUNK;
		if (cap > QMP_LINE_MAX)
			cap = QMP_LINE_MAX;
		char *in = realloc(q->in, cap);
		if (!in)
			return ql_error_set(err, ENOMEM, "out of memory");
		q->in = in;
		q->in_cap = cap;
	}
	for (;;) {
		ssize_t n = read(q->fd, q->in + q->in_len, q->in_cap - q->in_len);
		if (n > 0) {
			q->in_len += (size_t)n;
			return 1;
		}
		if (n == 0 || errno == ECONNRESET) {
			/* ECONNRESET was seen after `quit`: qemu is gone either way. */
			q->eof = true;
			return 1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		int e = errno;
		q->failed = -e;
		return ql_error_set_errno(err, e, "reading from the QMP socket");
	}
}

/* True when text[from, len) is only whitespace (our tokener allows trailing characters). */
static bool only_space_after(const char *text, size_t from, size_t len)
{
	for (size_t i = from; i < len; i++)
		if (!isspace((unsigned char)text[i]))
			return false;
	return true;
}

/* Whether the JSON text holds at most QMP_MAX_CONTAINERS objects and arrays and QMP_MAX_VALUES
 * values (counted by their separators), outside its strings: before json-c builds them. */
static bool within_value_bounds(const char *text, size_t len)
{
	size_t containers = 0, separators = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			containers++;
		} else if (c == ',' || c == ':') {
			separators++;
		}
	}
	return containers <= QMP_MAX_CONTAINERS && separators <= QMP_MAX_VALUES;
}

/* Parses one line. 1 with *ret set, 0 for a blank line. */
static int parse_line(struct qmp *q, const char *line, size_t len, json_object **ret,
		      struct ql_error *err)
{
	if (only_space_after(line, 0, len))
		return 0;
	if (memchr(line, '\0', len))
		return qmp_fail(q, err, EPROTO, "qemu sent a QMP message containing a NUL byte");
	if (!within_value_bounds(line, len)) {
		q->failed = -EMSGSIZE;
		return ql_error_set(err, EMSGSIZE,
				    "qemu sent a QMP message of more than %d objects or %d values",
				    QMP_MAX_CONTAINERS, QMP_MAX_VALUES);
	}

	json_tokener_reset(q->tok);
	json_object *obj = json_tokener_parse_ex(q->tok, line, (int)len);
	if (!obj) {
		enum json_tokener_error jerr = json_tokener_get_error(q->tok);
		q->failed = -EPROTO;
		return ql_error_set(err, EPROTO, "qemu sent malformed JSON on the QMP socket: %s",
				    jerr == json_tokener_continue ? "incomplete value"
								  : json_tokener_error_desc(jerr));
	}
	if (!only_space_after(line, json_tokener_get_parse_end(q->tok), len)) {
		json_object_put(obj);
		return qmp_fail(q, err, EPROTO, "qemu sent trailing data after a QMP message");
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return qmp_fail(q, err, EPROTO,
				"qemu sent a QMP message that is not a JSON object");
	}
	*ret = obj;
	return 1;
}

/* Next complete message from the buffer: 1 with *ret set, 0 when no complete line is buffered. */
static int next_buffered_message(struct qmp *q, json_object **ret, struct ql_error *err)
{
	for (;;) {
		size_t avail = q->in_len - q->in_start;
		if (avail == 0)
			return 0; /* also before the first read, when q->in is still NULL */
		char *start = q->in + q->in_start;
		char *nl = memchr(start, '\n', avail);
		if (!nl)
			return 0;
		size_t len = (size_t)(nl - start) + 1;
		q->in_start += len;
		int r = parse_line(q, start, len, ret, err);
		if (r != 0)
			return r;
	}
}

enum msg_kind {
	MSG_GREETING,
	MSG_EVENT,
	MSG_REPLY,
};

/* Sorts a message out and hands events to the callback. */
static int classify(struct qmp *q, json_object *obj, enum msg_kind *ret_kind, struct ql_error *err)
{
	json_object *v;
	if (json_object_object_get_ex(obj, "event", &v)) {
		if (!json_object_is_type(v, json_type_string))
			return qmp_fail(q, err, EPROTO, "qemu sent a QMP event without a name");
		if (q->on_event)
			q->on_event(json_object_get_string(v), q->userdata);
		*ret_kind = MSG_EVENT;
		return 0;
	}
	if (json_object_object_get_ex(obj, "return", NULL) ||
	    json_object_object_get_ex(obj, "error", NULL)) {
		*ret_kind = MSG_REPLY;
		return 0;
	}
	if (json_object_object_get_ex(obj, "QMP", &v) && json_object_is_type(v, json_type_object)) {
		*ret_kind = MSG_GREETING;
		return 0;
	}
	return qmp_fail(q, err, EPROTO, "qemu sent a QMP message of unknown kind");
}

/* The reply's id, or -1 when it has none we could have sent (qemu's id-less errors answer input
 * it could not parse; we never send such input, so they cannot belong to a command of ours). */
static int64_t reply_id(json_object *obj)
{
	json_object *id;
	if (!json_object_object_get_ex(obj, "id", &id) || !json_object_is_type(id, json_type_int))
		return -1;
	return json_object_get_int64(id);
}

static int timed_out(const char *what, struct ql_error *err)
{
	return ql_error_set(err, ETIMEDOUT, "timed out waiting for qemu to answer %s", what);
}

static int interrupted(const char *what, struct ql_error *err)
{
	return ql_error_set(err, EINTR, "interrupted while waiting for qemu to answer %s", what);
}

/* Between reads that brought input: qemu streaming events must not put off the deadline or a stop
 * signal, which wait_io sees only once the socket has gone quiet. */
static int still_waiting(struct qmp *q, int64_t deadline, const char *what, struct ql_error *err)
{
	if (remaining_ms(deadline) == 0)
		return timed_out(what, err);
	struct pollfd pfd = {.fd = q->interrupt_fd, .events = POLLIN};
	if (q->interrupt_fd >= 0 && poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN) &&
	    q->interrupted(q->interrupt_userdata))
		return interrupted(what, err);
	return 0;
}

/* One wait on the socket, for input or for room for what is queued, until DEADLINE (-ETIMEDOUT)
 * or the interrupt fd says stop (-EINTR); the tick runs when its period passes meanwhile. 0: read
 * and write again. */
static int wait_io(struct qmp *q, int64_t deadline, const char *what, struct ql_error *err)
{
	int timeout = remaining_ms(deadline);
	if (timeout == 0)
		return timed_out(what, err);
	struct pollfd pfd[2] = {
	    {.fd = q->fd, .events = POLLIN | (q->out_len > 0 ? POLLOUT : 0)},
	    {.fd = q->interrupt_fd, .events = POLLIN},
	};
	if (q->tick_ms > 0 && (timeout < 0 || timeout > q->tick_ms))
		timeout = q->tick_ms;
	/* POLLHUP/POLLERR need no case: the next read or write reports them. */
	int n = poll(pfd, q->interrupt_fd >= 0 ? 2 : 1, timeout);
	if (n < 0 && errno != EINTR)
		return ql_error_set_errno(err, errno, "waiting for qemu on the QMP socket");
	if (n == 0 && q->tick_ms > 0)
		q->tick(q->tick_userdata);
	if (q->interrupt_fd >= 0 && (pfd[1].revents & POLLIN) &&
	    q->interrupted(q->interrupt_userdata))
		return interrupted(what, err);
	return 0;
}

/* Reads until the greeting (want_id 0) or the reply with want_id arrives; everything else read
 * meanwhile is dispatched (events) or dropped (other replies). */
static int wait_for(struct qmp *q, int64_t want_id, const char *what, int64_t deadline,
		    json_object **ret, struct ql_error *err)
{
	bool read_some = false;
	for (;;) {
		json_object *obj = NULL;
		int r = next_buffered_message(q, &obj, err);
		if (r < 0)
			return r;
		if (r > 0) {
			_cleanup_json_ json_object *msg = obj;
			enum msg_kind kind;
			r = classify(q, msg, &kind, err);
			if (r < 0)
				return r;
			if ((want_id == 0 && kind == MSG_GREETING) ||
			    (want_id > 0 && kind == MSG_REPLY && reply_id(msg) == want_id)) {
				*ret = TAKE_PTR(msg);
				return 0;
			}
			continue;
		}
		if (q->eof)
			return qmp_closed(q, err);
		/* what was read is used up: before reading more, the deadline and a stop signal */
		r = read_some ? still_waiting(q, deadline, what, err) : 0;
		if (r == 0)
			r = flush_output(q, err);
		if (r == 0)
			r = fill_input(q, err);
		if (r < 0)
			return r;
		read_some = r > 0;
		if (r == 0 && (r = wait_io(q, deadline, what, err)) < 0)
			return r;
	}
}

int qmp_wait_input(struct qmp *q, int timeout_ms, struct ql_error *err)
{
	int r = qmp_check_usable(q, err);
	if (r < 0)
		return r;
	int64_t deadline = deadline_ms(timeout_ms);
	for (;;) {
		if (q->in_len > q->in_start || q->eof)
			return 0;
		r = flush_output(q, err);
		if (r == 0)
			r = fill_input(q, err);
		if (r == 0)
			r = wait_io(q, deadline, "on its QMP socket", err);
		if (r < 0)
			return r;
	}
}

/* The id of COMMAND when qmp_pipeline() sent it ahead and its reply is still to be read: it is
 * the oldest command sent ahead (replies come in order), else 0. */
static int64_t take_ahead(struct qmp *q, const char *command)
{
	if (q->n_ahead == 0 || !streq(q->ahead[0].command, command))
		return 0;
	int64_t id = q->ahead[0].id;
	memmove(q->ahead, q->ahead + 1, --q->n_ahead * sizeof(q->ahead[0]));
	return id;
}

/* Runs COMMAND and returns its "return" value (a new reference). */
static int run_command(struct qmp *q, const char *command, int timeout_ms, json_object **ret_return,
		       struct ql_error *err)
{
	int r = qmp_check_usable(q, err);
	if (r < 0)
		return r;
	int64_t deadline = deadline_ms(timeout_ms);
	int64_t id = take_ahead(q, command);
	if (id == 0) {
		q->n_ahead = 0; /* out of the announced order: those replies are dropped */
		r = queue_command(q, command, &id, err);
		if (r < 0)
			return r;
	}

	_cleanup_free_ char *what = NULL;
	if (asprintf(&what, "`%s`", command) < 0)
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_json_ json_object *reply = NULL;
	r = wait_for(q, id, what, deadline, &reply, err);
	if (r < 0)
		return r;

	json_object *error, *ret;
	if (json_object_object_get_ex(reply, "error", &error)) {
		json_object *cls = NULL, *desc = NULL;
		json_object_object_get_ex(error, "class", &cls);
		json_object_object_get_ex(error, "desc", &desc);
		/* qemu's words reach a terminal: escaped (a guest-named device can be in them) */
		struct ql_shown s;
		_cleanup_free_ char *cut = strndup(json_object_is_type(desc, json_type_string)
						       ? json_object_get_string(desc)
						       : "(no description)",
						   QMP_DESC_MAX);
		_cleanup_free_ char *shown = cut ? ql_escape(cut) : NULL;
		if (!shown)
			return ql_error_set(err, ENOMEM, "out of memory");
		return ql_error_set(err, EREMOTEIO, "qemu refused `%s`: %s: %s", command,
				    json_object_is_type(cls, json_type_string)
					? ql_show(&s, json_object_get_string(cls))
					: "(no class)",
				    shown);
	}
	if (!json_object_object_get_ex(reply, "return", &ret))
		return ql_error_set(err, EPROTO, "qemu's reply to `%s` has no result", command);
	*ret_return = json_object_get(ret);
	return 0;
}

int qmp_handshake(struct qmp *q, int timeout_ms, struct ql_error *err)
{
	int r = qmp_check_usable(q, err);
	if (r < 0)
		return r;
	int64_t deadline = deadline_ms(timeout_ms);
	_cleanup_json_ json_object *greeting = NULL;
	r = wait_for(q, 0, "the QMP greeting", deadline, &greeting, err);
	if (r < 0)
		return r;
	_cleanup_json_ json_object *ret = NULL;
	return run_command(q, "qmp_capabilities", remaining_ms(deadline), &ret, err);
}

int qmp_pipeline(struct qmp *q, const char *const *commands, struct ql_error *err)
{
	int r = qmp_check_usable(q, err);
	if (r < 0)
		return r;
	q->n_ahead = 0;
	for (size_t i = 0; commands[i]; i++) {
		if (i >= QMP_PIPELINE_MAX)
			return ql_error_set(err, E2BIG, "too many QMP commands sent ahead");
		int64_t id;
		r = queue_command(q, commands[i], &id, err);
		if (r < 0)
			return r;
		q->ahead[q->n_ahead].command = commands[i];
		q->ahead[q->n_ahead++].id = id;
	}
	return 0;
}

int qmp_execute(struct qmp *q, const char *command, int timeout_ms, struct ql_error *err)
{
	_cleanup_json_ json_object *ret = NULL;
	return run_command(q, command, timeout_ms, &ret, err);
}

int qmp_send(struct qmp *q, const char *command, struct ql_error *err)
{
	int r = qmp_check_usable(q, err);
	if (r < 0)
		return r;
	int64_t id;
	return queue_command(q, command, &id, err);
}

int qmp_query_status(struct qmp *q, int timeout_ms, char **ret_status, struct ql_error *err)
{
	_cleanup_json_ json_object *ret = NULL;
	int r = run_command(q, "query-status", timeout_ms, &ret, err);
	if (r < 0)
		return r;
	json_object *status;
	if (!json_object_is_type(ret, json_type_object) ||
	    !json_object_object_get_ex(ret, "status", &status) ||
	    !json_object_is_type(status, json_type_string) ||
	    json_object_get_string_len(status) == 0 ||
	    json_object_get_string_len(status) > QMP_STATUS_MAX)
		return ql_error_set(err, EPROTO,
				    "qemu's reply to `query-status` has no valid status");
	char *s = strdup(json_object_get_string(status));
	if (!s)
		return ql_error_set(err, ENOMEM, "out of memory");
	*ret_status = s;
	return 0;
}

/* An integer member in [min, max]; absent gives -ENOENT without touching err. */
static int get_int_member(json_object *obj, const char *key, int64_t min, int64_t max, int64_t *ret)
{
	json_object *v;
	if (!json_object_object_get_ex(obj, key, &v))
		return -ENOENT;
	if (!json_object_is_type(v, json_type_int))
		return -EPROTO;
	int64_t n = json_object_get_int64(v);
	if (n < min || n > max)
		return -EPROTO;
	*ret = n;
	return 0;
}

static int cpu_field_error(struct ql_error *err, size_t i, const char *key, int r)
{
	if (r == -ENOENT)
		return ql_error_set(err, EPROTO, "query-cpus-fast entry %zu has no `%s`", i, key);
	return ql_error_set(err, EPROTO, "query-cpus-fast entry %zu has an invalid `%s`", i, key);
}

static int compare_cpu_index(const void *a, const void *b)
{
	const struct qmp_cpu *x = a, *y = b;
	return (x->cpu_index > y->cpu_index) - (x->cpu_index < y->cpu_index);
}

static int parse_cpus_array(json_object *arr, struct qmp_cpu **ret_cpus, size_t *ret_n,
			    struct ql_error *err)
{
	if (!json_object_is_type(arr, json_type_array))
		return ql_error_set(err, EPROTO, "query-cpus-fast did not return a list");
	size_t n = json_object_array_length(arr);
	if (n == 0)
		return ql_error_set(err, EPROTO, "query-cpus-fast returned no vCPUs");
	if (n > QMP_MAX_CPUS)
		return ql_error_set(err, EPROTO, "query-cpus-fast returned %zu vCPUs (limit %d)", n,
				    QMP_MAX_CPUS);

	_cleanup_free_ struct qmp_cpu *cpus = calloc(n, sizeof(*cpus));
	if (!cpus)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i), *props;
		if (!json_object_is_type(e, json_type_object))
			return ql_error_set(err, EPROTO,
					    "query-cpus-fast entry %zu is not an object", i);
		int64_t v;
		int r = get_int_member(e, "cpu-index", 0, QMP_MAX_CPUS - 1, &v);
		if (r < 0)
			return cpu_field_error(err, i, "cpu-index", r);
		cpus[i].cpu_index = (int)v;
		/* Top level: the host TID. props.thread-id below is the SMT index (same name). */
		r = get_int_member(e, "thread-id", 1, INT32_MAX, &v);
		if (r < 0)
			return cpu_field_error(err, i, "thread-id", r);
		cpus[i].thread_id = (pid_t)v;

		cpus[i].socket = cpus[i].die = cpus[i].core = cpus[i].thread = -1;
		if (!json_object_object_get_ex(e, "props", &props))
			continue;
		if (!json_object_is_type(props, json_type_object))
			return cpu_field_error(err, i, "props", -EPROTO);
		static const char *const keys[] = {"socket-id", "core-id", "thread-id", "die-id"};
		int *fields[] = {&cpus[i].socket, &cpus[i].core, &cpus[i].thread, &cpus[i].die};
		for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
			r = get_int_member(props, keys[k], 0, INT32_MAX, &v);
			if (r == -ENOENT)
				continue;
			if (r < 0)
				return cpu_field_error(err, i, keys[k], r);
			*fields[k] = (int)v;
		}
	}

	qsort(cpus, n, sizeof(*cpus), compare_cpu_index);
	for (size_t i = 1; i < n; i++)
		if (cpus[i].cpu_index == cpus[i - 1].cpu_index)
			return ql_error_set(err, EPROTO,
					    "query-cpus-fast lists cpu-index %d more than once",
					    cpus[i].cpu_index);
	*ret_cpus = TAKE_PTR(cpus);
	*ret_n = n;
	return 0;
}

int qmp_query_cpus_fast(struct qmp *q, int timeout_ms, struct qmp_cpu **ret_cpus, size_t *ret_n,
			struct ql_error *err)
{
	_cleanup_json_ json_object *ret = NULL;
	int r = run_command(q, "query-cpus-fast", timeout_ms, &ret, err);
	if (r < 0)
		return r;
	return parse_cpus_array(ret, ret_cpus, ret_n, err);
}

int qmp_parse_cpus(const char *json, struct qmp_cpu **ret_cpus, size_t *ret_n, struct ql_error *err)
{
	size_t len = strlen(json);
	if (len > QMP_LINE_MAX)
		return ql_error_set(err, EMSGSIZE, "query-cpus-fast reply is too large");
	_cleanup_(json_tokener_freep) struct json_tokener *tok = qmp_tokener_new();
	if (!tok)
		return ql_error_set(err, ENOMEM, "out of memory");
	/* A number alone is only complete at a delimiter, so parse with the terminating NUL. */
	_cleanup_json_ json_object *obj = json_tokener_parse_ex(tok, json, (int)len + 1);
	if (!obj)
		return ql_error_set(err, EPROTO, "malformed query-cpus-fast reply: %s",
				    json_tokener_error_desc(json_tokener_get_error(tok)));
	if (!only_space_after(json, json_tokener_get_parse_end(tok), len))
		return ql_error_set(err, EPROTO, "malformed query-cpus-fast reply: trailing data");

	json_object *arr = obj;
	if (json_object_is_type(obj, json_type_object) &&
	    !json_object_object_get_ex(obj, "return", &arr))
		return ql_error_set(err, EPROTO, "query-cpus-fast reply has no `return`");
	return parse_cpus_array(arr, ret_cpus, ret_n, err);
}

int qmp_process_input(struct qmp *q, struct ql_error *err)
{
	int r = qmp_check_usable(q, err);
	if (r < 0)
		return r;
	r = flush_output(q, err);
	if (r < 0)
		return r;
	for (int reads = 0;; reads++) {
		json_object *obj = NULL;
		while ((r = next_buffered_message(q, &obj, err)) > 0) {
			_cleanup_json_ json_object *msg = obj;
			enum msg_kind kind;
			r = classify(q, msg, &kind, err);
			if (r < 0)
				return r;
		}
		if (r < 0)
			return r;
		if (q->eof)
			return qmp_closed(q, err);
		if (reads == QMP_DRAIN_READS)
			return 0;
		r = fill_input(q, err);
		if (r <= 0)
			return r;
	}
}

/* Bound on the I/O threads we accept from qemu (each is an -object of the definition). */
#define QMP_MAX_IOTHREADS 4096

static int parse_iothreads_array(json_object *arr, struct qmp_iothread **ret, size_t *ret_n,
				 struct ql_error *err)
{
	if (!json_object_is_type(arr, json_type_array))
		return ql_error_set(err, EPROTO, "query-iothreads did not return an array");
	size_t n = json_object_array_length(arr);
	if (n > QMP_MAX_IOTHREADS)
		return ql_error_set(err, EPROTO, "query-iothreads returned %zu entries", n);
	_cleanup_free_ struct qmp_iothread *v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i), *id;
		int64_t tid;
		if (!json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, "id", &id) ||
		    !json_object_is_type(id, json_type_string) ||
		    json_object_get_string_len(id) == 0 ||
		    json_object_get_string_len(id) >= QMP_IOTHREAD_ID_MAX ||
		    get_int_member(e, "thread-id", 1, INT32_MAX, &tid) < 0)
			return ql_error_set(
			    err, EPROTO, "query-iothreads entry %zu has no valid id and thread-id",
			    i);
		memcpy(v[i].id, json_object_get_string(id),
		       (size_t)json_object_get_string_len(id) + 1);
		v[i].thread_id = (pid_t)tid;
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

int qmp_query_iothreads(struct qmp *q, int timeout_ms, struct qmp_iothread **ret, size_t *ret_n,
			struct ql_error *err)
{
	_cleanup_json_ json_object *arr = NULL;
	int r = run_command(q, "query-iothreads", timeout_ms, &arr, err);
	return r < 0 ? r : parse_iothreads_array(arr, ret, ret_n, err);
}

int qmp_parse_iothreads(const char *json, struct qmp_iothread **ret, size_t *ret_n,
			struct ql_error *err)
{
	_cleanup_json_ json_object *arr = json_tokener_parse(json);
	if (!arr)
		return ql_error_set(err, EPROTO, "not JSON");
	return parse_iothreads_array(arr, ret, ret_n, err);
}
