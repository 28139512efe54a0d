/* The error object shared by all modules. */
#include "error.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 4, 0)))
static int error_vset(struct ql_error *err, int errnum, bool with_strerror, const char *fmt,
		      va_list ap)
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

const char *ql_show(struct ql_shown *s, const char *text)
{
	size_t o = 0, i = 0;
	for (; text[i] && o < QL_SHOW_MAX; i++) {
		unsigned char ch = (unsigned char)text[i];
		if (ch < 0x20 || ch == 0x7f)
			o += (size_t)snprintf(s->buf + o, sizeof(s->buf) - o, "\\x%02x", ch);
		else
			s->buf[o++] = (char)ch;
	}
	/* do not cut a UTF-8 sequence in half */
	while (text[i] && ((unsigned char)text[i] & 0xc0) == 0x80)
		s->buf[o++] = text[i++];
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
