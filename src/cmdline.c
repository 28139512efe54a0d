/* Turns a definition's `qemu:` list into qemu's argv and argv into shell text; pure, no I/O. */
#include "cmdline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "populate.h"
#include "qemu_value.h"

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

/* Bytes of opt's value without its NUL: sized first, then written (value_write), because a
 * definition can have thousands of parts (bench/parse.sh). */
static size_t value_size(const struct qemu_option *opt)
{
	if (!opt->has_value)
		return 0;
	if (opt->is_scalar)
		return opt->scalar ? strlen(opt->scalar) : 0;
	size_t size = 0;
	for (size_t i = 0; i < opt->n_parts; i++) {
		const struct qemu_part *p = &opt->parts[i];
		size += 1 + (p->key ? strlen(p->key) + 1 : 0);
		for (const char *v = p->value ? p->value : ""; *v; v++)
			size += *v == ',' ? 2 : 1;
	}
	return size;
}

/* Writes opt's value and its NUL into out, which holds value_size(opt) + 1 bytes at least;
 * returns the value's length. */
static size_t value_write(const struct qemu_option *opt, char *out)
{
	size_t len = 0;
	if (opt->has_value && opt->is_scalar && opt->scalar) {
		len = strlen(opt->scalar);
		memcpy(out, opt->scalar, len);
	}
	for (size_t i = 0; opt->has_value && !opt->is_scalar && i < opt->n_parts; i++) {
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
	return len;
}

char *cmdline_option_value(const struct qemu_option *opt)
{
	char *out = malloc(value_size(opt) + 1);
	if (out)
		value_write(opt, out);
	return out;
}

int cmdline_build(const struct definition *d, char ***ret_argv, struct ql_error *err)
{
	const char *binary = d->binary ? d->binary : "";
	size_t n = 1, bytes = strlen(binary) + 1;
	for (size_t i = 0; i < d->n_options; i++) {
		const struct qemu_option *o = &d->options[i];
		n += o->has_value ? 2 : 1;
		bytes += strlen(o->name) + 2 + (o->has_value ? value_size(o) + 1 : 0);
	}
	/* The pointers, then every string they point to, in one block: one allocation instead of
	 * two per option, populated at once (populate.h) where it grows with the definition. */
	size_t head = (n + 1) * sizeof(char *);
	char **argv = malloc(head + bytes);
	if (!argv)
		return ql_error_set(err, ENOMEM, "building the qemu command line: out of memory");
	populate(argv, head + bytes);
	char *s = (char *)argv + head;
	size_t k = 0;
	argv[k++] = strcpy(s, binary);
	s += strlen(s) + 1;
	for (size_t i = 0; i < d->n_options; i++) {
		const struct qemu_option *o = &d->options[i];
		argv[k++] = s;
		*s = '-';
		s = stpcpy(s + 1, o->name) + 1;
		if (!o->has_value)
			continue;
		argv[k++] = s;
		s += value_write(o, s) + 1;
	}
	argv[k] = NULL;
	*ret_argv = argv;
	return 0;
}

bool cmdline_has_option(const struct definition *d, const char *name)
{
	for (size_t i = 0; i < d->n_options; i++)
		if (qemu_option_is(&d->options[i], name))
			return true;
	return false;
}

/* qemu's key=value syntax split at unescaped commas (",," is an escaped one): the next part's
 * start and length; false after the last. */
static bool next_part(const char **p, const char **ret_start, size_t *ret_len)
{
	const char *s = *p;
	if (!s)
		return false;
	size_t n = 0;
	while (s[n] && (s[n] != ',' || s[n + 1] == ','))
		n += s[n] == ',' ? 2 : 1;
	*ret_start = s;
	*ret_len = n;
	*p = s[n] ? s + n + 1 : NULL;
	return true;
}

bool cmdline_creates_object(const struct definition *d, const char *type, const char *id)
{
	for (size_t i = 0; i < d->n_options; i++) {
		if (!qemu_option_is(&d->options[i], "object") || !d->options[i].has_value)
			continue;
		_cleanup_free_ char *v = cmdline_option_value(&d->options[i]);
		struct qemu_value q;
		if (!v || qemu_value_parse(v, &q) < 0)
			continue; /* a malformed -object is qemu's to report */
		const char *t = qemu_value_implied(&q, "qom-type"),
			   *t_id = qemu_value_get(&q, "id");
		bool is = t && streq(t, type) && t_id && streq(t_id, id);
		qemu_value_done(&q);
		if (is)
			return true;
	}
	return false;
}

/* qemu's boolean words (QemuOpts' parse_option_bool): 1, 0, or -1 for neither. */
static int qemu_bool(const char *v)
{
	static const char *const on[] = {"on", "yes", "true", "y"}, *const off[] = {"off", "no",
										    "false", "n"};
	for (size_t i = 0; i < ELEMENTSOF(on); i++)
		if (streq(v, on[i]))
			return 1;
	for (size_t i = 0; i < ELEMENTSOF(off); i++)
		if (streq(v, off[i]))
			return 0;
	return -1;
}

bool cmdline_names_threads(const struct definition *d)
{
	/* qemu merges every -name into one set of keys, the last value of each winning; after the
	 * first word (the guest's name), a bare `debug-threads` is on and `nodebug-threads` off */
	bool on = false;
	for (size_t i = 0; i < d->n_options; i++) {
		if (!qemu_option_is(&d->options[i], "name") || !d->options[i].has_value)
			continue;
		_cleanup_free_ char *v = cmdline_option_value(&d->options[i]);
		struct qemu_value q;
		if (!v || qemu_value_parse(v, &q) < 0)
			continue; /* malformed: qemu's to report */
		for (size_t k = 0; k < q.n; k++) {
			if (q.values[k] && streq(q.keys[k], "debug-threads")) {
				int b = qemu_bool(q.values[k]);
				if (b >= 0)
					on = b;
			} else if (!q.values[k] && k > 0 && streq(q.keys[k], "debug-threads"))
				on = true;
			else if (!q.values[k] && k > 0 && streq(q.keys[k], "nodebug-threads"))
				on = false;
		}
		qemu_value_done(&q);
	}
	return on;
}

bool cmdline_changes_user(const struct definition *d)
{
	for (size_t i = 0; i < d->n_options; i++) {
		const struct qemu_option *o = &d->options[i];
		if (qemu_option_is(o, "runas"))
			return true;
		if (!qemu_option_is(o, "run-with") || !o->has_value)
			continue;
		_cleanup_free_ char *v = cmdline_option_value(o);
		if (!v)
			return true; /* out of memory: the careful answer */
		const char *p = v, *part;
		size_t n;
		while (next_part(&p, &part, &n))
			if (n >= 5 && strncmp(part, "user=", 5) == 0)
				return true;
	}
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
