/* Unit tests of the QMP client: the test plays qemu on the other end of a socketpair, from real
 * transcripts (tests/data/qmp/NAME.txt, recorded with record.py) and hand-made streams, plus one
 * session with a real qemu (TCG). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qmp.h"

#define TIMEOUT_MS 5000

/* ---- helpers ---- */

/* Everything the client did, in order: results of calls and events, one per line. */
struct log {
	char text[8192];
};

static void log_add(struct log *lg, const char *fmt, ...) _printf_(2, 3);
static void log_add(struct log *lg, const char *fmt, ...)
{
	size_t len = strlen(lg->text);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(lg->text + len, sizeof(lg->text) - len, fmt, ap);
	va_end(ap);
}

static void on_event(const char *event, void *userdata)
{
	log_add(userdata, "event %s\n", event);
}

static void new_pair(struct log *lg, struct qmp **ret_q, int *ret_server)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct ql_error err = {0};
	assert_int_equal(qmp_new(sv[0], lg ? on_event : NULL, lg, ret_q, &err), 0);
	*ret_server = sv[1];
}

static void srv_write_len(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n > 0);
		data += n;
		len -= (size_t)n;
	}
}

static void srv_write(int fd, const char *data)
{
	srv_write_len(fd, data, strlen(data));
}

static const char greeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
    "\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n";

/* Reads one line the client sent (without "\n"); "" on timeout or EOF. */
static void srv_read_line(int fd, char *buf, size_t size)
{
	size_t len = 0;
	buf[0] = '\0';
	while (len + 1 < size) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, TIMEOUT_MS) <= 0)
			break;
		char c;
		if (read(fd, &c, 1) != 1)
			break;
		if (c == '\n')
			break;
		buf[len++] = c;
		buf[len] = '\0';
	}
}

static void expect_client_line(int fd, const char *expected)
{
	char line[256];
	srv_read_line(fd, line, sizeof(line));
	assert_string_equal(line, expected);
}

/* Handshake against a pre-written greeting and capabilities reply (id 1). */
static void handshake(struct qmp *q, int server)
{
	struct ql_error err = {0};
	srv_write(server, greeting);
	srv_write(server, "{\"return\": {}, \"id\": 1}\r\n");
	assert_int_equal(qmp_handshake(q, TIMEOUT_MS, &err), 0);
	expect_client_line(server, "{\"execute\":\"qmp_capabilities\",\"id\":1}");
}

/* The fixture of the hand-made stream tests: a client with its event log on one end of a
 * socketpair, the test playing qemu on the other (server). pair_open/pair_close also serve the
 * tests that go through several connections. */
struct pair {
	struct log log;
	struct qmp *q;
	int server;
};

static void pair_open(struct pair *p)
{
	memset(&p->log, 0, sizeof(p->log));
	new_pair(&p->log, &p->q, &p->server);
}

static void pair_close_server(struct pair *p)
{
	if (p->server >= 0)
		close(p->server);
	p->server = -1;
}

static void pair_close(struct pair *p)
{
	pair_close_server(p);
	qmp_free(p->q);
	p->q = NULL;
}

static int pair_setup(void **state)
{
	struct pair *p = calloc(1, sizeof(*p));
	if (!p)
		return -1;
	p->server = -1;
	pair_open(p);
	*state = p;
	return 0;
}

/* The same after a successful handshake (qmp_capabilities had id 1). */
static int pair_setup_handshake(void **state)
{
	int r = pair_setup(state);
	if (r == 0)
		handshake(((struct pair *)*state)->q, ((struct pair *)*state)->server);
	return r;
}

static int pair_teardown(void **state)
{
	struct pair *p = *state;
	pair_close(p);
	free(p);
	return 0;
}

/* Waits (as the supervision loop does) until qmp_process_input() reports qemu gone. */
static int wait_closed(struct qmp *q, struct ql_error *err)
{
	for (int i = 0; i < 1000; i++) {
		struct pollfd pfd = {.fd = qmp_fd(q), .events = POLLIN};
		assert_true(poll(&pfd, 1, TIMEOUT_MS) >= 0);
		int r = qmp_process_input(q, err);
		if (r != 0)
			return r;
	}
	return 0;
}

static int64_t elapsed_ms(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - start->tv_sec) * 1000 +
	       (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* A thread writing a buffer to the server end (for data larger than the socket buffer). */
struct writer {
	pthread_t thread;
	int fd;
	const char *data;
	size_t len;
	bool close_after;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	const char *p = w->data;
	size_t len = w->len;
	while (len > 0) {
		ssize_t n = send(w->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the client gave up; the test checks why */
		p += n;
		len -= (size_t)n;
	}
	if (w->close_after)
		close(w->fd);
	return NULL;
}

/* ---- transcripts ---- */

struct transcript {
	char **lines;
	size_t n;
};

static void transcript_load(const char *name, struct transcript *t)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/qmp/%s", TEST_DATA_DIR, name);
	FILE *f = fopen(path, "re");
	if (!f)
		print_error("cannot open %s\n", path);
	assert_non_null(f);
	t->lines = NULL;
	t->n = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) >= 0) {
		if (len > 0 && line[len - 1] == '\n')
			line[len - 1] = '\0';
		t->lines = realloc(t->lines, (t->n + 1) * sizeof(*t->lines));
		assert_non_null(t->lines);
		t->lines[t->n++] = strdup(line);
	}
	free(line);
	fclose(f);
}

static void transcript_free(struct transcript *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->lines[i]);
	free(t->lines);
}

/* Plays qemu: "<- X" is written as X + CRLF (byte by byte with a pause if split), "-> X" must be
 * what the client sends next, "=> X" was sent by the recorder only, "== EOF" closes. */
struct player {
	pthread_t thread;
	int fd;
	const struct transcript *t;
	bool split;
	char failure[512];
};

static void *player_main(void *arg)
{
	struct player *p = arg;
	for (size_t i = 0; i < p->t->n; i++) {
		const char *line = p->t->lines[i];
		if (strncmp(line, "<- ", 3) == 0) {
			char buf[65536];
			snprintf(buf, sizeof(buf), "%s\r\n", line + 3);
			if (!p->split) {
				if (send(p->fd, buf, strlen(buf), MSG_NOSIGNAL) !=
				    (ssize_t)strlen(buf))
					snprintf(p->failure, sizeof(p->failure), "write failed");
				continue;
			}
			for (const char *c = buf; *c; c++) {
				if (send(p->fd, c, 1, MSG_NOSIGNAL) != 1) {
					snprintf(p->failure, sizeof(p->failure), "write failed");
					break;
				}
				struct timespec ts = {0, 20000};
				nanosleep(&ts, NULL);
			}
		} else if (strncmp(line, "-> ", 3) == 0) {
			char got[256];
			srv_read_line(p->fd, got, sizeof(got));
			if (strcmp(got, line + 3) != 0) {
				snprintf(p->failure, sizeof(p->failure),
					 "expected `%s`, client sent `%s`", line + 3, got);
				break;
			}
		} else if (strcmp(line, "== EOF") == 0) {
			break;
		}
	}
	close(p->fd);
	return NULL;
}

struct session {
	struct log log;
	struct qmp_cpu *cpus;
	size_t ncpus;
};

/* Drives the client through the commands of a transcript, logging what every call returned. */
static void run_transcript(const char *name, bool split, struct session *s)
{
	struct transcript t;
	transcript_load(name, &t);
	memset(s, 0, sizeof(*s));
	struct qmp *q;
	struct player p = {.t = &t, .split = split};
	new_pair(&s->log, &q, &p.fd);
	assert_int_equal(pthread_create(&p.thread, NULL, player_main, &p), 0);

	for (size_t i = 0; i < t.n; i++) {
		char cmd[64];
		if (sscanf(t.lines[i], "-> {\"execute\":\"%63[^\"]\"", cmd) != 1)
			continue;
		struct ql_error err = {0};
		int r;
		if (streq(cmd, "qmp_capabilities")) {
			r = qmp_handshake(q, TIMEOUT_MS, &err);
			log_add(&s->log, "handshake %d\n", r);
		} else if (streq(cmd, "query-status")) {
			char *status = NULL;
			r = qmp_query_status(q, TIMEOUT_MS, &status, &err);
			log_add(&s->log, "query-status %d %s\n", r, status ? status : "");
			free(status);
		} else if (streq(cmd, "query-cpus-fast")) {
			r = qmp_query_cpus_fast(q, TIMEOUT_MS, &s->cpus, &s->ncpus, &err);
			log_add(&s->log, "query-cpus-fast %d %zu\n", r, s->ncpus);
		} else {
			r = qmp_execute(q, cmd, TIMEOUT_MS, &err);
			log_add(&s->log, "%s %d%s%s\n", cmd, r, err.msg ? " " : "",
				err.msg ? err.msg : "");
		}
		ql_error_clear(&err);
	}
	if (strcmp(t.lines[t.n - 1], "== EOF") == 0) {
		struct ql_error err = {0};
		int r = wait_closed(q, &err);
		log_add(&s->log, "closed %d %s\n", r, err.msg ? err.msg : "");
		ql_error_clear(&err);
	}
	assert_int_equal(pthread_join(p.thread, NULL), 0);
	if (p.failure[0])
		print_error("%s: player: %s\n", name, p.failure);
	assert_string_equal(p.failure, "");
	qmp_free(q);
	transcript_free(&t);
}

static void assert_log(const struct session *s, const char *expected)
{
	if (strcmp(s->log.text, expected) != 0)
		print_error("log:\n%s\nexpected:\n%s\n", s->log.text, expected);
	assert_string_equal(s->log.text, expected);
}

static void assert_cpu(const struct qmp_cpu *c, int index, pid_t tid, int socket, int core,
		       int thread)
{
	assert_int_equal(c->cpu_index, index);
	assert_int_equal(c->thread_id, tid);
	assert_int_equal(c->socket, socket);
	assert_int_equal(c->core, core);
	assert_int_equal(c->thread, thread);
}

static void test_transcript_session(void **state)
{
	for (int split = 0; split <= 1; split++) {
		struct session s;
		run_transcript("session-smp4.txt", split, &s);
		assert_log(&s, "handshake 0\n"
			       "query-status 0 prelaunch\n"
			       "query-cpus-fast 0 4\n"
			       "event RESUME\n"
			       "cont 0\n"
			       "query-status 0 running\n"
			       "event SHUTDOWN\n"
			       "quit 0\n"
			       "closed -104 qemu closed the QMP connection\n");
		/* Top-level thread-id is the TID; props.thread-id the SMT index. */
		assert_cpu(&s.cpus[0], 0, 6357, 0, 0, 0);
		assert_cpu(&s.cpus[1], 1, 6358, 0, 0, 1);
		assert_cpu(&s.cpus[2], 2, 6359, 0, 1, 0);
		assert_cpu(&s.cpus[3], 3, 6360, 0, 1, 1);
		free(s.cpus);
	}
}

static const char cpus_log[] = "handshake 0\n"
			       "query-cpus-fast 0 %zu\n"
			       "event SHUTDOWN\n"
			       "quit 0\n"
			       "closed -104 qemu closed the QMP connection\n";

static void run_cpus_transcript(const char *name, bool split, struct session *s, size_t n)
{
	run_transcript(name, split, s);
	char expected[256];
	snprintf(expected, sizeof(expected), cpus_log, n);
	assert_log(s, expected);
	assert_int_equal(s->ncpus, n);
}

static void test_transcript_topologies(void **state)
{
	for (int split = 0; split <= 1; split++) {
		struct session s;
		run_cpus_transcript("cpus-smp1.txt", split, &s, 1);
		assert_cpu(&s.cpus[0], 0, 6408, 0, 0, 0);
		free(s.cpus);

		run_cpus_transcript("cpus-2sockets.txt", split, &s, 8);
		for (int i = 0; i < 8; i++)
			assert_cpu(&s.cpus[i], i, 6456 + i, i / 4, (i / 2) % 2, i % 2);
		free(s.cpus);

		/* dies=2: core-id counts within a die, die-id tells which */
		run_cpus_transcript("cpus-dies.txt", split, &s, 4);
		for (int i = 0; i < 4; i++) {
			assert_cpu(&s.cpus[i], i, 6511 + i, 0, i % 2, 0);
			assert_int_equal(s.cpus[i].die, i / 2);
		}
		free(s.cpus);

		run_cpus_transcript("cpus-numa.txt", split, &s, 4);
		for (int i = 0; i < 4; i++)
			assert_cpu(&s.cpus[i], i, 6562 + i, i / 2, i % 2, 0);
		free(s.cpus);

		/* One thread runs every vCPU: the same TID four times is reported as it is. */
		run_cpus_transcript("cpus-tcg-single.txt", split, &s, 4);
		for (int i = 0; i < 4; i++)
			assert_cpu(&s.cpus[i], i, 6613, 0, i / 2, i % 2);
		free(s.cpus);

		run_cpus_transcript("cpus-maxcpus.txt", split, &s, 2);
		assert_cpu(&s.cpus[0], 0, 6661, 0, 0, 0);
		assert_cpu(&s.cpus[1], 1, 6662, 0, 1, 0);
		free(s.cpus);
	}
}

static void test_transcript_errors(void **state)
{
	/* Includes qemu's answers to input the client never sends (a command before
	 * qmp_capabilities with id 99, and garbage answered by an id-less error): they arrive
	 * while the client waits and must be dropped. */
	for (int split = 0; split <= 1; split++) {
		struct session s;
		run_transcript("errors.txt", split, &s);
		assert_log(&s,
			   "handshake 0\n"
			   "nosuch -121 qemu refused `nosuch`: CommandNotFound: The command nosuch "
			   "has not been found\n"
			   "device_del -121 qemu refused `device_del`: GenericError: Parameter "
			   "'id' is missing\n"
			   "query-status 0 prelaunch\n"
			   "event SHUTDOWN\n"
			   "quit 0\n"
			   "closed -104 qemu closed the QMP connection\n");
	}
}

static void test_transcript_events(void **state)
{
	for (int split = 0; split <= 1; split++) {
		struct session s;
		run_transcript("events.txt", split, &s);
		assert_log(&s, "handshake 0\n"
			       "event RESUME\n"
			       "cont 0\n"
			       "event STOP\n"
			       "stop 0\n"
			       "event RESET\n"
			       "system_reset 0\n"
			       "event POWERDOWN\n"
			       "system_powerdown 0\n"
			       "query-status 0 prelaunch\n"
			       "event SHUTDOWN\n"
			       "quit 0\n"
			       "closed -104 qemu closed the QMP connection\n");
	}
}

/* ---- hand-made streams ---- */

static void test_new_sets_fd_flags(void **state)
{
	struct pair *p = *state;
	struct qmp *q = p->q;
	int server = p->server;
	int fd = qmp_fd(q);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_false(qmp_wants_write(q));
	qmp_free(q);
	p->q = NULL;
	/* qmp_free closed the fd it owned: the peer sees EOF. */
	char c;
	assert_int_equal(read(server, &c, 1), 0);

	struct ql_error err = {0};
	assert_int_equal(qmp_new(-1, NULL, NULL, &q, &err), -EBADF);
	ql_error_clear(&err);
}

/* Regression (found by fuzz_qmp under UBSan): waiting before anything was read did pointer
 * arithmetic on the still-NULL input buffer. Run under -fsanitize=undefined to matter. */
static void test_nothing_read_yet(void **state)
{
	struct pair *p = *state;
	struct qmp *q = p->q;
	struct ql_error err = {0};
	assert_int_equal(qmp_process_input(q, &err), 0);
	assert_int_equal(qmp_handshake(q, 10, &err), -ETIMEDOUT);
	ql_error_clear(&err);
}

static void test_process_input_byte_by_byte(void **state)
{
	struct pair *p = *state;
	struct qmp *q = p->q;
	int server = p->server;
	struct ql_error err = {0};

	/* The event is dispatched exactly when its newline arrives, never before. Also a reply
	 * to an earlier qmp_send() (id 2) is dropped silently, and "\n" alone ends a line too. */
	assert_int_equal(qmp_send(q, "stop", &err), 0);
	expect_client_line(server, "{\"execute\":\"stop\",\"id\":2}");
	const char stream[] = "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": "
			      "\"STOP\"}\r\n{\"return\": {}, \"id\": 2}\n";
	const char *first_nl = strchr(stream, '\n');
	for (const char *c = stream; *c; c++) {
		srv_write_len(server, c, 1);
		assert_int_equal(qmp_process_input(q, &err), 0);
		assert_string_equal(p->log.text, c < first_nl ? "" : "event STOP\n");
	}
	/* Nothing there: returns at once. */
	assert_int_equal(qmp_process_input(q, &err), 0);
	assert_string_equal(p->log.text, "event STOP\n");
	assert_null(err.msg);

	/* The next command still matches its own reply (id 3). */
	srv_write(server,
		  "{\"return\": {\"status\": \"paused\", \"running\": false}, \"id\": 3}\r\n");
	char *status = NULL;
	assert_int_equal(qmp_query_status(q, TIMEOUT_MS, &status, &err), 0);
	assert_string_equal(status, "paused");
	free(status);

	pair_close_server(p);
	assert_int_equal(qmp_process_input(q, &err), -ECONNRESET);
	assert_string_equal(err.msg, "qemu closed the QMP connection");
	/* Sticky. */
	assert_int_equal(qmp_process_input(q, &err), -ECONNRESET);
	assert_int_equal(qmp_execute(q, "cont", TIMEOUT_MS, &err), -ECONNRESET);
	ql_error_clear(&err);
}

static void test_replies_out_of_order(void **state)
{
	struct pair *p = *state;
	struct qmp *q = p->q;
	int server = p->server;
	struct ql_error err = {0};

	assert_int_equal(qmp_send(q, "system_powerdown", &err), 0); /* id 2 */
	/* Before the reply to id 3: a reply for an id never used, an event, the reply to the
	 * qmp_send() command, an id-less error and a reply with a string id. */
	srv_write(server,
		  "{\"return\": {\"status\": \"bogus\"}, \"id\": 999}\r\n"
		  "{\"event\": \"POWERDOWN\", \"timestamp\": {}}\r\n"
		  "{\"return\": {}, \"id\": 2}\r\n"
		  "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n"
		  "{\"return\": {\"status\": \"bogus\"}, \"id\": \"3\"}\r\n"
		  "{\"id\": 3, \"return\": {\"running\": true, \"status\": \"running\"}}\r\n"
		  "{\"return\": {\"status\": \"late\"}, \"id\": 3}\r\n");
	char *status = NULL;
	assert_int_equal(qmp_query_status(q, TIMEOUT_MS, &status, &err), 0);
	assert_string_equal(status, "running");
	free(status);
	assert_string_equal(p->log.text, "event POWERDOWN\n");
	expect_client_line(server, "{\"execute\":\"system_powerdown\",\"id\":2}");
	expect_client_line(server, "{\"execute\":\"query-status\",\"id\":3}");

	/* A reply for a later id arriving first does not satisfy an earlier wait. */
	srv_write(server, "{\"return\": {}, \"id\": 5}\r\n{\"return\": {}, \"id\": 4}\r\n");
	assert_int_equal(qmp_execute(q, "cont", TIMEOUT_MS, &err), 0);
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	/* id 5 was consumed (dropped) before id 4 matched: waiting for id 5 now times out. */
	assert_int_equal(qmp_execute(q, "stop", 100, &err), -ETIMEDOUT);
	assert_true(elapsed_ms(&start) >= 100);
	ql_error_clear(&err);
}

static void test_error_reply(void **state)
{
	struct pair *p = *state;
	struct qmp *q = p->q;
	int server = p->server;
	struct ql_error err = {0};
	srv_write(server, "{\"id\": 2, \"error\": {\"class\": \"DeviceNotActive\", \"desc\": "
			  "\"No CPU\"}}\r\n"
			  "{\"id\": 3, \"error\": {}}\r\n");
	assert_int_equal(qmp_execute(q, "cont", TIMEOUT_MS, &err), -EREMOTEIO);
	assert_string_equal(err.msg, "qemu refused `cont`: DeviceNotActive: No CPU");
	assert_int_equal(err.code, EREMOTEIO);
	/* Not sticky; an error without class/desc still gives a message. */
	assert_int_equal(qmp_execute(q, "stop", TIMEOUT_MS, &err), -EREMOTEIO);
	assert_string_equal(err.msg, "qemu refused `stop`: (no class): (no description)");
	/* qemu's words are escaped: a terminal must not act on them */
	srv_write(server, "{\"id\": 4, \"error\": {\"class\": \"A\\u001b]0;x\\u0007\", "
			  "\"desc\": \"\\u001b[2Jgone \\u00c2\\u009b\\u0085 \\u00e9\"}}\r\n");
	assert_int_equal(qmp_execute(q, "query-status", TIMEOUT_MS, &err), -EREMOTEIO);
	assert_string_equal(err.msg, "qemu refused `query-status`: A\\x1b]0;x\\x07: \\x1b[2Jgone "
				     "\u00c2\\xc2\\x9b\\xc2\\x85 \u00e9");
	ql_error_clear(&err);
}

static bool interrupt_always(void *userdata)
{
	(void)userdata;
	return true;
}

/* Events queued faster than they are read: the wait for a reply still ends at its deadline, and
 * at a stop signal, with events left unread (both were looked at only once the socket had gone
 * quiet, so a qemu streaming events held the wait). The queue is made deep enough that reading
 * it all takes far longer than the deadline. */
static void test_event_stream_ends_wait(void **state)
{
	struct pair *p = *state;
	struct ql_error err = {0};
	int big = 64 << 20;
	if (setsockopt(p->server, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)) < 0) {
		/* not root: CAP_NET_ADMIN makes the deep queue */
		print_message("# skip: SO_SNDBUFFORCE needs CAP_NET_ADMIN\n");
		skip();
	}
	static char block[1 << 16];
	const char ev[] = "{\"event\": \"X\", \"data\": {}}\r\n";
	size_t n_ev = sizeof(block) / (sizeof(ev) - 1), len = n_ev * (sizeof(ev) - 1);
	for (size_t i = 0; i < n_ev; i++)
		memcpy(block + i * (sizeof(ev) - 1), ev, sizeof(ev) - 1);
	for (int interrupt = 0; interrupt <= 1; interrupt++) {
		for (int i = 0; i < 256; i++) /* 16 MiB, half a million events */
			srv_write_len(p->server, block, len);
		int sig[2] = {-1, -1};
		if (interrupt) {
			assert_int_equal(pipe2(sig, O_CLOEXEC), 0);
			assert_int_equal(write(sig[1], "s", 1), 1);
			qmp_set_interrupt(p->q, sig[0], interrupt_always, NULL);
		}
		assert_int_equal(qmp_execute(p->q, "cont", interrupt ? TIMEOUT_MS : 50, &err),
				 interrupt ? -EINTR : -ETIMEDOUT);
		int queued = 0;
		assert_int_equal(ioctl(p->server, SIOCOUTQ, &queued), 0);
		assert_true(queued > 0); /* it ended while events still came */
		ql_error_clear(&err);
		if (interrupt) {
			qmp_set_interrupt(p->q, -1, NULL, NULL);
			close(sig[0]);
			close(sig[1]);
		}
	}
}

static void test_invalid_command_name(void **state)
{
	struct pair *p = *state;
	struct qmp *q = p->q;
	int server = p->server;
	struct ql_error err = {0};
	const char *bad[] = {
	    "",	   "a\"b", "cont\n",
	    "a b", "{}",   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		assert_int_equal(qmp_send(q, bad[i], &err), -EINVAL);
		assert_int_equal(qmp_execute(q, bad[i], 10, &err), -EINVAL);
	}
	ql_error_clear(&err);
	/* Nothing was sent. */
	qmp_free(q);
	p->q = NULL;
	char c;
	assert_int_equal(read(server, &c, 1), 0);
}

static void test_handshake_bad_greeting(void **state)
{
	const char *bad[] = {"{\"foo\": 1}\r\n", "{\"QMP\": 1}\r\n", "[1]\r\n"};
	struct pair *p = *state;
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		if (i > 0) { /* a new connection for each greeting */
			pair_close(p);
			pair_open(p);
		}
		struct ql_error err = {0};
		srv_write(p->server, bad[i]);
		assert_int_equal(qmp_handshake(p->q, TIMEOUT_MS, &err), -EPROTO);
		assert_non_null(err.msg);
		ql_error_clear(&err);
	}
}

static void test_malformed(void **state)
{
	const struct {
		const char *data;
		size_t len;
	} bad[] = {
#define S(x) {x, sizeof(x) - 1}
	    S("{\"return\": {}, \"id\": 2\r\n"),     /* unterminated object */
	    S("{\"return\": {}, \"id\": 2}}\r\n"),   /* trailing data */
	    S("{\"return\": {}, \"id\": 2} {}\r\n"), /* two objects on a line */
	    S("[{\"return\": {}, \"id\": 2}]\r\n"),  /* not an object */
	    S("\"string\"\r\n"),
	    S("42\r\n"),
	    S("null\r\n"),
	    S("{\"return\": {}, \"id\": 2, \"x\": \"\xff\"}\r\n"), /* invalid UTF-8 */
	    S("{\"return\": {}, \"id\": 2, \"x\": \"a\0b\"}\r\n"), /* NUL byte */
	    S("{\"timestamp\": {}}\r\n"),			   /* neither event nor reply */
	    S("{\"event\": 7}\r\n"),				   /* event without a name */
#undef S
	};
	struct pair *p = *state;
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		if (i > 0) { /* a new connection for each case */
			pair_close(p);
			pair_open(p);
		}
		struct qmp *q = p->q;
		int server = p->server;
		struct ql_error err = {0};
		handshake(q, server);
		srv_write_len(server, bad[i].data, bad[i].len);
		srv_write(server, "{\"return\": {}, \"id\": 2}\r\n");
		int r = qmp_execute(q, "cont", TIMEOUT_MS, &err);
		if (r != -EPROTO)
			print_error("case %zu: got %d %s\n", i, r, err.msg ? err.msg : "");
		assert_int_equal(r, -EPROTO);
		/* The stream is no longer trusted: the valid reply behind it is not used. */
		assert_int_equal(qmp_process_input(q, &err), -EPROTO);
		assert_int_equal(qmp_execute(q, "cont", TIMEOUT_MS, &err), -EPROTO);
		ql_error_clear(&err);
	}
}

static void test_blank_lines_tolerated(void **state)
{
	struct pair *p = *state;
	struct qmp *q = p->q;
	int server = p->server;
	struct ql_error err = {0};
	srv_write(server, "\r\n\n   \r\n");
	handshake(q, server);
	srv_write(server, "\n  {\"return\": {}, \"id\": 2}  \r\n\r\n");
	assert_int_equal(qmp_execute(q, "cont", TIMEOUT_MS, &err), 0);
	assert_null(err.msg);
}

static void test_eof(void **state)
{
	/* Before the greeting. */
	struct pair *p = *state;
	struct ql_error err = {0};
	pair_close_server(p);
	assert_int_equal(qmp_handshake(p->q, TIMEOUT_MS, &err), -ECONNRESET);
	assert_string_equal(err.msg, "qemu closed the QMP connection");

	/* In the middle of a reply (half-close, so writing the command still works). */
	pair_close(p);
	pair_open(p);
	handshake(p->q, p->server);
	srv_write(p->server, "{\"return\": {}, \"i");
	shutdown(p->server, SHUT_WR);
	assert_int_equal(qmp_execute(p->q, "cont", TIMEOUT_MS, &err), -ECONNRESET);
	assert_string_equal(err.msg, "qemu closed the QMP connection in the middle of a message");

	/* Complete lines before EOF are still delivered: quit's SHUTDOWN and reply, then EOF. */
	pair_close(p);
	pair_open(p);
	struct qmp *q = p->q;
	int server = p->server;
	handshake(q, server);
	srv_write(server, "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false}}\r\n"
			  "{\"return\": {}, \"id\": 2}\r\n");
	shutdown(server, SHUT_WR);
	assert_int_equal(qmp_execute(q, "quit", TIMEOUT_MS, &err), 0);
	assert_string_equal(p->log.text, "event SHUTDOWN\n");
	assert_int_equal(qmp_process_input(q, &err), -ECONNRESET);
	ql_error_clear(&err);
}

static void test_connection_reset(void **state)
{
	/* The peer closes with our command unread: our next read gets ECONNRESET, which counts
	 * as qemu gone (seen after `quit` on real qemu). */
	struct pair *p = *state;
	struct qmp *q = p->q;
	struct ql_error err = {0};
	assert_int_equal(qmp_send(q, "quit", &err), 0);
	pair_close_server(p);
	assert_int_equal(qmp_process_input(q, &err), -ECONNRESET);
	ql_error_clear(&err);
}

static void test_write_after_close_no_sigpipe(void **state)
{
	struct pair *p = *state;
	struct qmp *q = p->q;
	int server = p->server;
	struct ql_error err = {0};
	shutdown(server, SHUT_RD); /* writes from the client now fail with EPIPE */
	/* Default SIGPIPE action would kill the test process here. */
	assert_int_equal(qmp_send(q, "cont", &err), -ECONNRESET);
	assert_string_equal(err.msg, "qemu closed the QMP connection");
	assert_int_equal(qmp_execute(q, "cont", TIMEOUT_MS, &err), -ECONNRESET);
	ql_error_clear(&err);
}

static void test_timeout(void **state)
{
	struct pair *p = *state;
	struct qmp *q = p->q;
	int server = p->server;
	struct ql_error err = {0};

	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	assert_int_equal(qmp_handshake(q, 150, &err), -ETIMEDOUT);
	int64_t ms = elapsed_ms(&start);
	assert_true(ms >= 150);
	assert_true(ms < 1500);
	assert_string_equal(err.msg, "timed out waiting for qemu to answer the QMP greeting");

	handshake(q, server);
	clock_gettime(CLOCK_MONOTONIC, &start);
	char *status = (char *)0x1;
	assert_int_equal(qmp_query_status(q, 100, &status, &err), -ETIMEDOUT);
	assert_ptr_equal(status, (char *)0x1); /* untouched */
	assert_string_equal(err.msg, "timed out waiting for qemu to answer `query-status`");
	assert_true(elapsed_ms(&start) >= 100);
	expect_client_line(server, "{\"execute\":\"query-status\",\"id\":2}");

	/* The late reply to id 2 is dropped; id 3 gets its own. Timeout 0 still reads what is
	 * already there. */
	srv_write(server, "{\"return\": {\"status\": \"prelaunch\"}, \"id\": 2}\r\n"
			  "{\"return\": {\"status\": \"running\"}, \"id\": 3}\r\n");
	assert_int_equal(qmp_query_status(q, 0, &status, &err), 0);
	assert_string_equal(status, "running");
	free(status);
	ql_error_clear(&err);
}

/* The tick of a waiting call (the launcher keeps the kernel's migration lock warm with it): it
 * runs each time the interval passes without input, and not once the reply is there or it is
 * cleared. Here the third tick makes "qemu" answer. */
struct ticks {
	int server;
	int n;
};

static void answer_on_third_tick(void *userdata)
{
	struct ticks *t = userdata;
	if (++t->n == 3)
		srv_write(t->server, "{\"return\": {\"status\": \"prelaunch\"}, \"id\": 2}\r\n");
}

static void test_tick(void **state)
{
	struct pair *p = *state;
	struct ql_error err = {0};
	struct ticks t = {.server = p->server};
	qmp_set_tick(p->q, 5, answer_on_third_tick, &t);
	char *status = NULL;
	assert_int_equal(qmp_query_status(p->q, 5000, &status, &err), 0);
	assert_string_equal(status, "prelaunch");
	free(status);
	assert_int_equal(t.n, 3);
	expect_client_line(p->server, "{\"execute\":\"query-status\",\"id\":2}");

	qmp_set_tick(p->q, 0, NULL, NULL);
	assert_int_equal(qmp_query_status(p->q, 60, &status, &err), -ETIMEDOUT);
	assert_int_equal(t.n, 3);
	ql_error_clear(&err);
}

static void count_tick(void *userdata)
{
	++*(int *)userdata;
}

/* qmp_wait_input: ticks and times out while qemu is silent, ends on the interrupt, and leaves
 * what qemu wrote to the handshake that follows. */
static void test_wait_input(void **state)
{
	struct pair *p = *state;
	struct ql_error err = {0};
	int ticks = 0;
	qmp_set_tick(p->q, 5, count_tick, &ticks);
	assert_int_equal(qmp_wait_input(p->q, 60, &err), -ETIMEDOUT);
	ql_error_clear(&err);
	/* one every 5 ms, the last wait (shorter) included; a loaded host may run fewer */
	assert_in_range(ticks, 1, 13);
	qmp_set_tick(p->q, 0, NULL, NULL);

	int sig[2];
	assert_int_equal(pipe2(sig, O_CLOEXEC), 0);
	assert_int_equal(write(sig[1], "s", 1), 1);
	qmp_set_interrupt(p->q, sig[0], interrupt_always, NULL);
	assert_int_equal(qmp_wait_input(p->q, TIMEOUT_MS, &err), -EINTR);
	ql_error_clear(&err);
	qmp_set_interrupt(p->q, -1, NULL, NULL);
	close(sig[0]);
	close(sig[1]);

	srv_write(p->server, greeting);
	assert_int_equal(qmp_wait_input(p->q, TIMEOUT_MS, &err), 0);
	assert_int_equal(qmp_wait_input(p->q, 0, &err), 0); /* still unread */
	handshake(p->q, p->server);
}

static char *make_event_line(size_t json_len)
{
	/* {"event": "BIG", "data": "xxx...x"} of exactly json_len bytes, then CRLF. */
	const char head[] = "{\"event\": \"BIG\", \"data\": \"", tail[] = "\"}";
	size_t fixed = sizeof(head) - 1 + sizeof(tail) - 1;
	char *line = malloc(json_len + 3);
	assert_non_null(line);
	memcpy(line, head, sizeof(head) - 1);
	memset(line + sizeof(head) - 1, 'x', json_len - fixed);
	memcpy(line + json_len - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
	memcpy(line + json_len, "\r\n", 3);
	return line;
}

/* Before a reply, an event line just within a limit is read in full; one just over it fails the
 * command with -EMSGSIZE, and no event is seen. */
static void limit_case(struct pair *p, char *const lines[2])
{
	struct ql_error err = {0};
	for (int over = 0; over <= 1; over++) {
		pair_close(p); /* a new connection each time: an earlier one may have failed */
		pair_open(p);
		struct qmp *q = p->q;
		int server = p->server;
		handshake(q, server);
		size_t len = strlen(lines[over]);
		char *data = malloc(len + 64);
		assert_non_null(data);
		memcpy(data, lines[over], len);
		strcpy(data + len, "{\"return\": {}, \"id\": 2}\r\n");
		struct writer w = {.fd = server, .data = data, .len = strlen(data)};
		assert_int_equal(pthread_create(&w.thread, NULL, writer_main, &w), 0);
		int r = qmp_execute(q, "cont", TIMEOUT_MS, &err);
		if (over) {
			assert_int_equal(r, -EMSGSIZE);
			assert_string_equal(p->log.text, "");
			shutdown(server, SHUT_RDWR); /* unblock the writer */
		} else {
			assert_int_equal(r, 0);
			assert_string_equal(p->log.text, "event BIG\n");
		}
		assert_int_equal(pthread_join(w.thread, NULL), 0);
		if (over)
			assert_int_equal(qmp_process_input(q, &err), -EMSGSIZE);
		ql_error_clear(&err);
		free(data);
	}
}

static void test_message_size_limit(void **state)
{
	/* Exactly QMP_MAX_MESSAGE bytes of JSON is fine; one more byte is not. */
	char *lines[2] = {make_event_line(QMP_MAX_MESSAGE), make_event_line(QMP_MAX_MESSAGE + 1)};
	limit_case(*state, lines);
	free(lines[0]);
	free(lines[1]);
}

/* {"event": "BIG", "data": [ITEM,ITEM,...]} with n items, then CRLF. */
static char *make_list_line(const char *item, size_t n)
{
	size_t il = strlen(item);
	char *line = malloc(64 + n * (il + 1));
	assert_non_null(line);
	char *o = stpcpy(line, "{\"event\": \"BIG\", \"data\": [");
	for (size_t i = 0; i < n; i++) {
		o = stpcpy(o, item);
		*o++ = i + 1 < n ? ',' : ']';
	}
	strcpy(o, "}\r\n");
	return line;
}

/* Few bytes can make many json-c objects: their count is bounded before json-c builds them. */
static void test_message_value_limit(void **state)
{
	/* the event and its list are 2 containers and 3 separators (its 2 members) */
	char *objects[2] = {make_list_line("{}", QMP_MAX_CONTAINERS - 2),
			    make_list_line("{}", QMP_MAX_CONTAINERS - 1)};
	limit_case(*state, objects);
	/* strings hide their commas; the list's n items take n - 1 */
	char *values[2] = {make_list_line("\"a,b\"", QMP_MAX_VALUES - 2),
			   make_list_line("\"a,b\"", QMP_MAX_VALUES - 1)};
	limit_case(*state, values);
	for (int i = 0; i < 2; i++) {
		free(objects[i]);
		free(values[i]);
	}
}

static void test_send_queue(void **state)
{
	/* qemu does not read: qmp_send() never blocks, queues what the socket does not take and
	 * refuses once the queue is full; the queue drains through qmp_process_input(). */
	struct pair *p = *state;
	struct qmp *q = p->q;
	int server = p->server;
	struct ql_error err = {0};
	int sent = 0, r;
	while ((r = qmp_send(q, "system_powerdown", &err)) == 0) {
		sent++;
		assert_true(sent < 100000);
	}
	assert_int_equal(r, -ENOBUFS);
	assert_true(qmp_wants_write(q));
	/* The refused command was not queued partially and did not use up an id. */
	int lines = 0, expect_id = 2;
	char line[256], want[256];
	while (lines < sent) {
		assert_int_equal(qmp_process_input(q, &err), 0);
		srv_read_line(server, line, sizeof(line));
		snprintf(want, sizeof(want), "{\"execute\":\"system_powerdown\",\"id\":%d}",
			 expect_id++);
		assert_string_equal(line, want);
		lines++;
	}
	assert_false(qmp_wants_write(q));
	/* Next command continues the sequence. */
	srv_write(server, "{\"return\": {}, \"id\": 99999}\r\n");
	assert_int_equal(qmp_execute(q, "cont", 50, &err), -ETIMEDOUT);
	snprintf(want, sizeof(want), "{\"execute\":\"cont\",\"id\":%d}", expect_id);
	expect_client_line(server, want);
	ql_error_clear(&err);
}

static void test_stage(void **state)
{
	/* A staged command is written but for its closing brace; its run sends only that. */
	struct pair *p = *state;
	struct qmp *q = p->q;
	int server = p->server;
	struct ql_error err = {0};
	assert_int_equal(qmp_stage(q, "cont", &err), 0);
	char buf[128] = "";
	struct pollfd pfd = {.fd = server, .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, TIMEOUT_MS), 1);
	ssize_t n = read(server, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "{\"execute\":\"cont\",\"id\":2");
	/* one at a time */
	assert_int_equal(qmp_stage(q, "stop", &err), -EBUSY);
	ql_error_clear(&err);
	srv_write(server, "{\"return\": {}, \"id\": 2}\r\n");
	assert_int_equal(qmp_execute(q, "cont", TIMEOUT_MS, &err), 0);
	assert_int_equal(read(server, buf, sizeof(buf) - 1), 2);
	assert_memory_equal(buf, "}\n", 2);
	/* the next command is whole again, with the next id */
	srv_write(server, "{\"return\": {}, \"id\": 3}\r\n");
	assert_int_equal(qmp_execute(q, "stop", TIMEOUT_MS, &err), 0);
	expect_client_line(server, "{\"execute\":\"stop\",\"id\":3}");
}

static void test_stage_voided(void **state)
{
	/* Another command first: the staged one is closed with a member qemu refuses, and the
	 * error qemu answers to it is dropped. */
	struct pair *p = *state;
	struct qmp *q = p->q;
	int server = p->server;
	struct ql_error err = {0};
	assert_int_equal(qmp_stage(q, "cont", &err), 0);
	srv_write(server, "{\"id\": 2, \"error\": {\"class\": \"GenericError\", \"desc\": "
			  "\"QMP input member '" QMP_VOID_MEMBER "' is unexpected\"}}\r\n"
			  "{\"return\": {}, \"id\": 3}\r\n");
	assert_int_equal(qmp_execute(q, "quit", TIMEOUT_MS, &err), 0);
	expect_client_line(server, "{\"execute\":\"cont\",\"id\":2,\"" QMP_VOID_MEMBER "\":0}");
	expect_client_line(server, "{\"execute\":\"quit\",\"id\":3}");
	/* voided, it is not sent again */
	srv_write(server, "{\"return\": {}, \"id\": 4}\r\n");
	assert_int_equal(qmp_execute(q, "cont", TIMEOUT_MS, &err), 0);
	expect_client_line(server, "{\"execute\":\"cont\",\"id\":4}");
}

/* ---- qmp_parse_cpus ---- */

static void test_parse_cpus_valid(void **state)
{
	struct ql_error err = {0};
	struct qmp_cpu *cpus = NULL;
	size_t n = 0;
	/* Unsorted, bare array, extra keys, props partly or entirely missing, die/node ids. */
	const char *json =
	    "  [{\"cpu-index\": 2, \"thread-id\": 12, \"props\": {\"socket-id\": 1}},"
	    " {\"thread-id\": 10, \"cpu-index\": 0, \"qom-path\": \"/x\", \"target\": \"x86_64\","
	    "  \"props\": {\"core-id\": 3, \"thread-id\": 1, \"socket-id\": 0, \"die-id\": 1,"
	    "  \"node-id\": 0}},"
	    " {\"cpu-index\": 1, \"thread-id\": 2147483647}]\n";
	assert_int_equal(qmp_parse_cpus(json, &cpus, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_cpu(&cpus[0], 0, 10, 0, 3, 1);
	assert_cpu(&cpus[1], 1, 2147483647, -1, -1, -1);
	assert_cpu(&cpus[2], 2, 12, 1, -1, -1);
	free(cpus);

	/* The whole reply object as qemu sends it. */
	assert_int_equal(qmp_parse_cpus("{\"return\": [{\"cpu-index\": 0, \"thread-id\": 5}], "
					"\"id\": 3}",
					&cpus, &n, &err),
			 0);
	assert_int_equal(n, 1);
	assert_cpu(&cpus[0], 0, 5, -1, -1, -1);
	free(cpus);
	assert_null(err.msg);
}

static void assert_parse_cpus_fails(const char *json, int code, const char *msg_part)
{
	struct ql_error err = {0};
	struct qmp_cpu *cpus = (struct qmp_cpu *)0x1;
	size_t n = 77;
	int r = qmp_parse_cpus(json, &cpus, &n, &err);
	if (r != -code || !err.msg || !strstr(err.msg, msg_part))
		print_error("`%.80s`: %d %s\n", json, r, err.msg ? err.msg : "");
	assert_int_equal(r, -code);
	assert_non_null(strstr(err.msg, msg_part));
	assert_ptr_equal(cpus, (struct qmp_cpu *)0x1);
	assert_int_equal(n, 77);
	ql_error_clear(&err);
}

static void test_parse_cpus_invalid(void **state)
{
	assert_parse_cpus_fails("", EPROTO, "malformed");
	assert_parse_cpus_fails("[", EPROTO, "malformed");
	assert_parse_cpus_fails("[] x", EPROTO, "trailing");
	assert_parse_cpus_fails("[]", EPROTO, "no vCPUs");
	assert_parse_cpus_fails("{}", EPROTO, "no `return`");
	assert_parse_cpus_fails("{\"return\": {}}", EPROTO, "not return a list");
	assert_parse_cpus_fails("42", EPROTO, "not return a list");
	assert_parse_cpus_fails("[1]", EPROTO, "entry 0 is not an object");
	assert_parse_cpus_fails("[{\"thread-id\": 5}]", EPROTO, "entry 0 has no `cpu-index`");
	assert_parse_cpus_fails("[{\"cpu-index\": 0}]", EPROTO, "entry 0 has no `thread-id`");
	assert_parse_cpus_fails("[{\"cpu-index\": 0, \"thread-id\": 0}]", EPROTO,
				"invalid `thread-id`");
	assert_parse_cpus_fails("[{\"cpu-index\": 0, \"thread-id\": -5}]", EPROTO,
				"invalid `thread-id`");
	assert_parse_cpus_fails("[{\"cpu-index\": 0, \"thread-id\": \"5\"}]", EPROTO,
				"invalid `thread-id`");
	assert_parse_cpus_fails("[{\"cpu-index\": 0, \"thread-id\": 5.0}]", EPROTO,
				"invalid `thread-id`");
	assert_parse_cpus_fails("[{\"cpu-index\": 0, \"thread-id\": 2147483648}]", EPROTO,
				"invalid `thread-id`");
	assert_parse_cpus_fails("[{\"cpu-index\": 0, \"thread-id\": 99999999999999999999999}]",
				EPROTO, "invalid `thread-id`");
	assert_parse_cpus_fails("[{\"cpu-index\": -1, \"thread-id\": 5}]", EPROTO,
				"invalid `cpu-index`");
	assert_parse_cpus_fails("[{\"cpu-index\": 8192, \"thread-id\": 5}]", EPROTO,
				"invalid `cpu-index`");
	assert_parse_cpus_fails("[{\"cpu-index\": null, \"thread-id\": 5}]", EPROTO,
				"invalid `cpu-index`");
	assert_parse_cpus_fails("[{\"cpu-index\": 0, \"thread-id\": 5, \"props\": []}]", EPROTO,
				"invalid `props`");
	assert_parse_cpus_fails(
	    "[{\"cpu-index\": 0, \"thread-id\": 5, \"props\": {\"socket-id\": -1}}]", EPROTO,
	    "invalid `socket-id`");
	assert_parse_cpus_fails(
	    "[{\"cpu-index\": 0, \"thread-id\": 5, \"props\": {\"core-id\": true}}]", EPROTO,
	    "invalid `core-id`");
	assert_parse_cpus_fails(
	    "[{\"cpu-index\": 0, \"thread-id\": 5, \"props\": {\"thread-id\": \"x\"}}]", EPROTO,
	    "invalid `thread-id`");
	assert_parse_cpus_fails("[{\"cpu-index\": 1, \"thread-id\": 5},"
				" {\"cpu-index\": 0, \"thread-id\": 6},"
				" {\"cpu-index\": 1, \"thread-id\": 7}]",
				EPROTO, "cpu-index 1 more than once");
	assert_parse_cpus_fails(
	    "{\"return\": [{\"cpu-index\": 0, \"thread-id\": 5}], \"id\": 3} {}", EPROTO,
	    "trailing");

	/* More vCPUs than any Linux host has CPUs. */
	size_t count = 8193;
	char *big = malloc(count * 40 + 16);
	assert_non_null(big);
	size_t len = (size_t)sprintf(big, "[");
	for (size_t i = 0; i < count; i++)
		len += (size_t)sprintf(big + len, "%s{\"cpu-index\": %zu, \"thread-id\": 1}",
				       i ? "," : "", i % 8192);
	strcpy(big + len, "]");
	assert_parse_cpus_fails(big, EPROTO, "8193 vCPUs");
	free(big);
}

/* ---- real qemu ---- */

static void test_real_qemu(void **state)
{
	if (access("/usr/bin/qemu-system-x86_64", X_OK) != 0) {
		print_message("# skip: qemu-system-x86 is not installed\n");
		skip();
	}

	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* dup2 clears CLOEXEC on fd 3; a leftover qemu dies with us or after 20 s
		 * (alarm survives execve). */
		if (dup2(sv[1], 3) < 0)
			_exit(127);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(20);
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
		}
		execl("/usr/bin/qemu-system-x86_64", "qemu-system-x86_64", "-accel", "tcg",
		      "-nodefaults", "-display", "none", "-S", "-m", "64", "-smp", "2", "-chardev",
		      "socket,id=qmp,fd=3", "-mon", "chardev=qmp,mode=control", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);

	struct log lg = {0};
	struct qmp *q = NULL;
	struct ql_error err = {0};
	int r = qmp_new(sv[0], on_event, &lg, &q, &err);
	if (r == 0)
		r = qmp_handshake(q, 10000, &err);
	/* a staged cont voided by the next command: qemu refuses it and stays in prelaunch */
	if (r == 0)
		r = qmp_stage(q, "cont", &err);
	char *status = NULL;
	if (r == 0)
		r = qmp_query_status(q, TIMEOUT_MS, &status, &err);
	struct qmp_cpu *cpus = NULL;
	size_t n = 0;
	int rc = -1;
	if (r == 0)
		rc = qmp_query_cpus_fast(q, TIMEOUT_MS, &cpus, &n, &err);
	/* a staged cont run: its closing brace is all that is left to send */
	char *status_after = NULL;
	int rs = r == 0 ? qmp_stage(q, "cont", &err) : r;
	if (rs == 0)
		rs = qmp_execute(q, "cont", TIMEOUT_MS, &err);
	if (rs == 0)
		rs = qmp_query_status(q, TIMEOUT_MS, &status_after, &err);
	char task[64];
	bool tasks_ok = true;
	for (size_t i = 0; i < n; i++) {
		snprintf(task, sizeof(task), "/proc/%d/task/%d", (int)pid, (int)cpus[i].thread_id);
		struct stat st;
		if (stat(task, &st) != 0 || cpus[i].thread_id == pid ||
		    cpus[i].cpu_index != (int)i || cpus[i].socket != 0 || cpus[i].thread != 0 ||
		    (i > 0 && cpus[i].thread_id == cpus[i - 1].thread_id))
			tasks_ok = false;
	}
	int rq = r < 0 ? r : rs < 0 ? rs : qmp_execute(q, "quit", TIMEOUT_MS, &err);
	/* quit: its reply, or the reset seen once after `quit` on real qemu. */
	int rclosed = q && (rq == 0 || rq == -ECONNRESET) ? wait_closed(q, &err) : -1;

	/* Reap; kill by pid if it is still there after 5 s. */
	int wstatus = 0;
	pid_t w = 0;
	for (int i = 0; i < 500 && w == 0; i++) {
		w = waitpid(pid, &wstatus, WNOHANG);
		if (w == 0) {
			struct timespec ts = {0, 10000000};
			nanosleep(&ts, NULL);
		}
	}
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &wstatus, 0);
	}
	if (r < 0 || rc < 0 || rs < 0)
		print_error("qemu session failed: %s\n", err.msg ? err.msg : "");
	qmp_free(q);
	ql_error_clear(&err);

	assert_int_equal(r, 0);
	assert_string_equal(status, "prelaunch");
	free(status);
	assert_int_equal(rc, 0);
	assert_int_equal(n, 2);
	free(cpus);
	assert_int_equal(rs, 0);
	assert_string_equal(status_after, "running");
	free(status_after);
	assert_true(tasks_ok);
	assert_true(rq == 0 || rq == -ECONNRESET);
	assert_int_equal(rclosed, -ECONNRESET);
	if (rq == 0)
		assert_string_equal(lg.text, "event RESUME\nevent SHUTDOWN\n");
	assert_int_not_equal(w, 0); /* exited by itself after quit */
	assert_true(WIFEXITED(wstatus));
	assert_int_equal(WEXITSTATUS(wstatus), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_new_sets_fd_flags, pair_setup, pair_teardown),
	    cmocka_unit_test(test_transcript_session),
	    cmocka_unit_test(test_transcript_topologies),
	    cmocka_unit_test(test_transcript_errors),
	    cmocka_unit_test(test_transcript_events),
	    cmocka_unit_test_setup_teardown(test_nothing_read_yet, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_process_input_byte_by_byte, pair_setup_handshake,
					    pair_teardown),
	    cmocka_unit_test_setup_teardown(test_replies_out_of_order, pair_setup_handshake,
					    pair_teardown),
	    cmocka_unit_test_setup_teardown(test_error_reply, pair_setup_handshake, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_event_stream_ends_wait, pair_setup_handshake,
					    pair_teardown),
	    cmocka_unit_test_setup_teardown(test_invalid_command_name, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_handshake_bad_greeting, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_blank_lines_tolerated, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_eof, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_connection_reset, pair_setup_handshake,
					    pair_teardown),
	    cmocka_unit_test_setup_teardown(test_write_after_close_no_sigpipe, pair_setup_handshake,
					    pair_teardown),
	    cmocka_unit_test_setup_teardown(test_timeout, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_tick, pair_setup_handshake, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_wait_input, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_message_size_limit, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_message_value_limit, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_send_queue, pair_setup_handshake, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_stage, pair_setup_handshake, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_stage_voided, pair_setup_handshake, pair_teardown),
	    cmocka_unit_test(test_parse_cpus_valid),
	    cmocka_unit_test(test_parse_cpus_invalid),
	    cmocka_unit_test(test_real_qemu),
	};
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
