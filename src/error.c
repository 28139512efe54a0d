/* The error object shared by all modules. */
#include "error.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

__attribute__((format(printf, 4, 0))) static int
error_vset(struct ql_error *err, int errnum, bool with_strerror, const char *fmt, va_list ap)
{
	if (errnum <= 0)
		errnum = EINVAL;
	if (!err)
		return -errnum;

	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	if (msg && with_strerror) {
		char *full = NULL;
		if (asprintf(&full, "%s: %s", msg, strerror(errnum)) >= 0) {
			free(msg);
			msg = full;
		}
	}
	free(err->msg);
	err->msg = msg;
	err->code = errnum;
	return -errnum;
}

int ql_error_set(struct ql_error *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = error_vset(err, errnum, false, fmt, ap);
	va_end(ap);
	return r;
}

int ql_error_set_errno(struct ql_error *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = error_vset(err, errnum, true, fmt, ap);
	va_end(ap);
	return r;
}

void ql_error_prefix(struct ql_error *err, const char *fmt, ...)
{
	if (!err || !err->msg)
		return;
	char *prefix = NULL, *full = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&prefix, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	if (asprintf(&full, "%s%s", prefix, err->msg) >= 0) {
		free(err->msg);
		err->msg = full;
	}
	free(prefix);
}

void ql_error_clear(struct ql_error *err)
{
	if (!err)
		return;
	free(err->msg);
	err->msg = NULL;
	err->code = 0;
}

/* The next character at p (left bytes remain): its length in bytes, and whether it is shown
 * escaped: C0 controls and DEL, C1 controls (U+0080-U+009F: some terminals take U+009B as CSI),
 * and each byte of invalid UTF-8 (one at a time). Whole valid sequences are kept, so nothing is
 * cut in half. */
static size_t next_shown(const unsigned char *p, size_t left, bool *ret_escaped)
{
	size_t n = utf8_char_len(p, left);
	*ret_escaped = n == 0 || utf8_is_c1(p, n) || (n == 1 && (p[0] < 0x20 || p[0] == 0x7f));
	return n ? n : 1;
}

/* Writes the k bytes at p, escaped or not, to out (room for 4 * k); returns the bytes written. */
static size_t put_shown(char *out, const unsigned char *p, size_t k, bool escaped)
{
	if (!escaped) {
		memcpy(out, p, k);
		return k;
	}
	for (size_t j = 0; j < k; j++)
		sprintf(out + 4 * j, "\\x%02x", p[j]);
	return 4 * k;
}

const char *ql_show(struct ql_shown *s, const char *text)
{
	size_t o = 0, i = 0, left = strlen(text);
	while (text[i] && o < QL_SHOW_MAX) {
		bool escaped;
		const unsigned char *p = (const unsigned char *)text + i;
		size_t k = next_shown(p, left - i, &escaped);
		o += put_shown(s->buf + o, p, k, escaped);
		i += k;
	}
	if (text[i]) {
		memcpy(s->buf + o, "...", 3);
		o += 3;
	}
	s->buf[o] = '\0';
	return s->buf;
}

void ql_error_keep_first(int r, struct ql_error *step, int *ret, struct ql_error *err)
{
	if (r < 0 && *ret == 0)
		*ret = ql_error_set(err, step->code ? step->code : -r, "%s",
				    step->msg ? step->msg : "failed");
	ql_error_clear(step);
}

char *ql_escape(const char *text)
{
	size_t len = strlen(text), o = 0;
	char *out = malloc(4 * len + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		bool escaped;
		const unsigned char *p = (const unsigned char *)text + i;
		size_t k = next_shown(p, len - i, &escaped);
		o += put_shown(out + o, p, k, escaped);
		i += k;
	}
	out[o] = '\0';
	return out;
}
