/* libFuzzer target for everything qemu's bytes reach in the QMP client: qmp_parse_cpus() and the
 * line framing / message dispatch behind qmp_process_input() and qmp_query_cpus_fast(). */
/* Built by fuzz/meson.build (see there for the run commands); seeds in fuzz/corpus/qmp.
 * The first input byte picks the mode: even = qmp_parse_cpus() on the rest; odd = the rest is
 * qemu's side of a session, played after a greeting into a socketpair. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qmp.h"

static void on_event(const char *event, void *userdata)
{
	/* Touch the name so ASan checks it is valid memory. */
	*(size_t *)userdata += strlen(event);
}

static void fuzz_parse_cpus(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	struct ql_error err = {0};
	struct qmp_cpu *cpus = NULL;
	size_t n = 0;
	if (qmp_parse_cpus(text, &cpus, &n, &err) == 0) {
		/* The promises callers rely on. */
		if (n == 0 || n > 8192)
			abort();
		for (size_t i = 0; i < n; i++) {
			if (cpus[i].thread_id <= 0 || cpus[i].cpu_index < 0 ||
			    (i > 0 && cpus[i].cpu_index <= cpus[i - 1].cpu_index))
				abort();
		}
		free(cpus);
	} else if (!err.msg) {
		abort();
	}
	ql_error_clear(&err);
	free(text);
}

static void fuzz_session(const uint8_t *data, size_t size)
{
	static const char greeting[] = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n"
				       "{\"return\": {}, \"id\": 1}\r\n";
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	/* Make room so the whole input fits in the socket without a writer thread. */
	int sz = 1024 * 1024;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));

	size_t events = 0;
	struct qmp *q = NULL;
	struct ql_error err = {0};
	if (qmp_new(sv[0], on_event, &events, &q, &err) < 0)
		abort();
	if (write(sv[1], greeting, sizeof(greeting) - 1) != (ssize_t)(sizeof(greeting) - 1))
		abort();
	if (qmp_handshake(q, 1000, &err) < 0)
		abort();
	ssize_t w = size ? send(sv[1], data, size, MSG_NOSIGNAL | MSG_DONTWAIT) : 0;
	(void)w; /* what did not fit is simply not part of the session */
	shutdown(sv[1], SHUT_WR);

	/* Alternate blocking-call and drain paths over the same stream; each ends in an error or
	 * EOF, never hangs (timeouts are short and the peer is half-closed). */
	struct qmp_cpu *cpus = NULL;
	size_t n = 0;
	int r = qmp_query_cpus_fast(q, 50, &cpus, &n, &err);
	if (r == 0)
		free(cpus);
	for (int i = 0; i < 64 && r != -ECONNRESET && r != -EPROTO && r != -EMSGSIZE; i++)
		r = qmp_process_input(q, &err);
	ql_error_clear(&err);
	qmp_free(q);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		fuzz_session(data + 1, size - 1);
	else
		fuzz_parse_cpus(data + 1, size - 1);
	return 0;
}
