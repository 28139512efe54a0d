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

const char *ql_show(struct ql_shown *s, const char *text)
{
	size_t o = 0, i = 0, left = strlen(text);
	while (text[i] && o < QL_SHOW_MAX) {
		const unsigned char *p = (const unsigned char *)text + i;
		size_t n = utf8_char_len(p, left - i);
		/* Escaped: C0 controls and DEL, C1 controls (U+0080-U+009F: some terminals take
		 * U+009B as CSI), and every byte of invalid UTF-8 (a NAME from argv can be
		 * anything). Whole valid sequences are copied, so nothing is cut in half. */
		bool c1 = n == 2 && p[0] == 0xc2 && p[1] < 0xa0;
		if (n == 0 || c1 || (n == 1 && (p[0] < 0x20 || p[0] == 0x7f))) {
			size_t k = n ? n : 1;
			for (size_t j = 0; j < k; j++)
				o += (size_t)snprintf(s->buf + o, sizeof(s->buf) - o, "\\x%02x",
						      p[j]);
			i += k;
			continue;
		}
		memcpy(s->buf + o, p, n);
		o += n;
		i += n;
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
	size_t n = 0;
	for (const char *p = text; *p; p++)
		n += ((unsigned char)*p < 0x20 || *p == 0x7f) ? 4 : 1;
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (const char *p = text; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch < 0x20 || ch == 0x7f)
			o += sprintf(o, "\\x%02x", ch);
		else
			*o++ = (char)ch;
	}
	*o = '\0';
	return out;
}
