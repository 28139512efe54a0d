/* Turns a definition's `qemu:` list into qemu's argv and argv into shell text; pure, no I/O. */
#include "cmdline.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"

/* Growable string; on allocation failure `failed` is set and later appends do nothing. */
struct buf {
	char *s;
	size_t len, cap;
	bool failed;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 32;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->s, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static char *buf_steal(struct buf *b)
{
	if (b->failed) {
		free(b->s);
		errno = ENOMEM;
		return NULL;
	}
	if (!b->s)
		return strdup("");
	return b->s;
}

/* A part that already ends in an unescaped separator (`pc,` but not `a,,`) gets no second one:
 * the seed's mixed form writes `- pc,` then `- accel=kvm` for `pc,accel=kvm`. */
static bool ends_in_separator(const char *s, size_t len)
{
	size_t commas = 0;
	while (commas < len && s[len - 1 - commas] == ',')
		commas++;
	return commas % 2 == 1;
}

char *cmdline_option_value(const struct qemu_option *opt)
{
	if (!opt->has_value)
		return strdup("");
	if (opt->is_scalar)
		return strdup(opt->scalar ? opt->scalar : "");

	/* Sized first, then filled: a definition can have thousands of parts (bench/parse.sh). */
	size_t cap = 1;
	for (size_t i = 0; i < opt->n_parts; i++) {
		const struct qemu_part *p = &opt->parts[i];
		cap += 1 + (p->key ? strlen(p->key) + 1 : 0);
		for (const char *v = p->value ? p->value : ""; *v; v++)
			cap += *v == ',' ? 2 : 1;
	}
	char *out = malloc(cap);
	if (!out)
		return NULL;
	size_t len = 0;
	for (size_t i = 0; i < opt->n_parts; i++) {
		const struct qemu_part *p = &opt->parts[i];
		if (i > 0 && !ends_in_separator(out, len))
			out[len++] = ',';
		if (!p->key) {
			size_t n = p->value ? strlen(p->value) : 0;
			memcpy(out + len, p->value ? p->value : "", n);
			len += n;
			continue;
		}
		size_t n = strlen(p->key);
		memcpy(out + len, p->key, n);
		len += n;
		if (!p->value)
			continue;
		out[len++] = '=';
		/* one qemu value: its commas are doubled so qemu does not split it */
		for (const char *v = p->value; *v; v++) {
			out[len++] = *v;
			if (*v == ',')
				out[len++] = ',';
		}
	}
	out[len] = '\0';
	return out;
}

/* "-NAME" */
static char *option_word(const char *name)
{
	size_t n = strlen(name);
	char *w = malloc(n + 2);
	if (w) {
		w[0] = '-';
		memcpy(w + 1, name, n + 1);
	}
	return w;
}

int cmdline_build(const struct definition *d, char ***ret_argv, struct ql_error *err)
{
	size_t n = 1;
	for (size_t i = 0; i < d->n_options; i++)
		n += d->options[i].has_value ? 2 : 1;

	_cleanup_strv_free_ char **argv = calloc(n + 1, sizeof(char *));
	if (!argv)
		return ql_error_set(err, ENOMEM, "building the qemu command line: out of memory");
	size_t k = 0;
	if (!(argv[k++] = strdup(d->binary ? d->binary : "")))
		return ql_error_set(err, ENOMEM, "building the qemu command line: out of memory");
	for (size_t i = 0; i < d->n_options; i++) {
		const struct qemu_option *o = &d->options[i];
		if (!(argv[k++] = option_word(o->name)))
			return ql_error_set(err, ENOMEM,
					    "building the qemu command line: out of memory");
		if (!o->has_value)
			continue;
		if (!(argv[k++] = cmdline_option_value(o)))
			return ql_error_set(err, ENOMEM,
					    "building the qemu command line: out of memory");
	}
	argv[k] = NULL;
	*ret_argv = TAKE_PTR(argv);
	return 0;
}

bool cmdline_has_option(const struct definition *d, const char *name)
{
	for (size_t i = 0; i < d->n_options; i++)
		if (streq(d->options[i].name, name))
			return true;
	return false;
}

static bool shell_safe(const char *w)
{
	if (!*w)
		return false;
	for (; *w; w++) {
		char ch = *w;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr("_@%+=:,./-", ch)))
			return false;
	}
	return true;
}

static void quote_into(struct buf *b, const char *word, bool force)
{
	if (!force && shell_safe(word)) {
		buf_adds(b, word);
		return;
	}
	buf_add(b, "'", 1);
	for (const char *p = word; *p; p++) {
		if (*p == '\'')
			buf_adds(b, "'\\''");
		else
			buf_add(b, p, 1);
	}
	buf_add(b, "'", 1);
}

char *cmdline_shell_quote(const char *word)
{
	struct buf b = {0};
	quote_into(&b, word, false);
	return buf_steal(&b);
}

char *cmdline_shell_join(char *const *argv)
{
	struct buf b = {0};
	for (size_t i = 0; argv && argv[i]; i++) {
		if (i > 0)
			buf_add(&b, " ", 1);
		/* a bare first word with `=` would be read as a variable assignment */
		quote_into(&b, argv[i], i == 0 && strchr(argv[i], '='));
	}
	return buf_steal(&b);
}
