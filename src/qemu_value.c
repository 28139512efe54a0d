/* The value of one qemu option as the key=value parts qemu reads from it (see qemu_value.h). */
#include "qemu_value.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "utf8.h"

void qemu_value_done(struct qemu_value *kv)
{
	for (size_t i = 0; i < kv->n; i++) {
		free(kv->keys[i]);
		free(kv->values[i]);
	}
	free(kv->keys);
	free(kv->values);
	*kv = (struct qemu_value){0};
}

/* Appends key (kl bytes) and its value (vl bytes; NULL: a bare word). -ENOMEM. */
static int kv_add(struct qemu_value *kv, const char *key, size_t kl, const char *val, size_t vl)
{
	char **k = realloc(kv->keys, (kv->n + 1) * sizeof(char *));
	if (k)
		kv->keys = k;
	char **v = k ? realloc(kv->values, (kv->n + 1) * sizeof(char *)) : NULL;
	if (v)
		kv->values = v;
	if (!k || !v || !(kv->keys[kv->n] = strndup(key, kl)))
		return -ENOMEM;
	kv->values[kv->n] = NULL;
	kv->n++;
	if (val && !(kv->values[kv->n - 1] = strndup(val, vl)))
		return -ENOMEM;
	return 0;
}

static int parse_parts(const char *s, struct qemu_value *ret)
{
	struct qemu_value kv = {0};
	size_t len = strlen(s);
	_cleanup_free_ char *part = malloc(len + 1);
	if (!part)
		return -ENOMEM;
	for (size_t i = 0; i <= len;) {
		size_t n = 0;
		for (; i < len; i++) {
			if (s[i] == ',' && s[i + 1] == ',') {
				part[n++] = ',';
				i++;
			} else if (s[i] == ',') {
				break;
			} else {
				part[n++] = s[i];
			}
		}
		i++;
		part[n] = '\0';
		char *eq = strchr(part, '=');
		if (kv_add(&kv, part, eq ? (size_t)(eq - part) : n, eq ? eq + 1 : NULL,
			   eq ? strlen(eq + 1) : 0) < 0) {
			qemu_value_done(&kv);
			return -ENOMEM;
		}
	}
	*ret = kv;
	return 0;
}

static const char *json_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* Four hex digits at p as a number; -1 when they are not. */
static long hex4(const char *p)
{
	char digits[5] = "";
	for (int i = 0; i < 4; i++) {
		if (!isxdigit((unsigned char)p[i]))
			return -1; /* also at the end of p: nothing after it is read */
		digits[i] = p[i];
	}
	return strtol(digits, NULL, 16);
}

/* The \uXXXX escape at p (its `u`), a surrogate pair's second half included, as qemu's JSON
 * parser decodes it: written to out as UTF-8 (U+0000 as C0 80, its modified UTF-8); the bytes
 * written, 0 when invalid (a lone surrogate). *ret_end at its last digit. */
static size_t json_unicode(const char *p, char *out, const char **ret_end)
{
	long cp = hex4(p + 1);
	p += 4;
	if (cp >= 0xd800 && cp <= 0xdbff && p[1] == '\\' && p[2] == 'u') {
		long low = hex4(p + 3);
		cp = low >= 0xdc00 && low <= 0xdfff ? 0x10000 + ((cp & 0x3ff) << 10) + (low & 0x3ff)
						    : -1;
		p += 6;
	}
	*ret_end = p;
	unsigned char *o = (unsigned char *)out;
	if (cp == 0) {
		o[0] = 0xc0;
		o[1] = 0x80;
		return 2;
	}
	return cp < 0 ? 0 : utf8_encode((uint32_t)cp, o);
}

/* A JSON string at p (its quote: qemu's parser takes single quotes too) decoded as qemu decodes
 * it, escapes and all, into out (room for its length: no escape grows), *ret_end after it; NULL
 * when malformed. Decoding matters: `"vfio\u002dpci"` is a vfio-pci to qemu. */
static char *json_string(const char *p, char *out, const char **ret_end)
{
	static const char escaped[] = "\"'\\/bfnrt", meant[] = "\"'\\/\b\f\n\r\t";
	char quote = *p;
	size_t n = 0;
	for (p++; *p && *p != quote; p++) {
		if (*p != '\\') {
			out[n++] = *p;
			continue;
		}
		const char *e = *++p ? strchr(escaped, *p) : NULL;
		size_t w;
		if (e)
			out[n++] = meant[e - escaped];
		else if (*p == 'u' && (w = json_unicode(p, out + n, &p)) > 0)
			n += w;
		else
			return NULL;
	}
	if (*p != quote)
		return NULL;
	out[n] = '\0';
	*ret_end = p + 1;
	return out;
}

/* A scalar at p (string, number, true/false as on/off, null as absent): added under key. 1 when
 * one was there, 0 for a container (not added), -EINVAL malformed, -ENOMEM. *ret_end after it. */
static int json_scalar(struct qemu_value *kv, const char *key, const char *p, char *buf,
		       const char **ret_end)
{
	if (*p == '"' || *p == '\'') {
		if (!json_string(p, buf, ret_end))
			return -EINVAL;
		return kv_add(kv, key, strlen(key), buf, strlen(buf)) < 0 ? -ENOMEM : 1;
	}
	if (*p == '{' || *p == '[')
		return 0;
	size_t n = strcspn(p, ",}] \t\r\n");
	if (!n)
		return -EINVAL;
	*ret_end = p + n;
	if (n == 4 && !strncmp(p, "null", 4))
		return 1;
	bool t = n == 4 && !strncmp(p, "true", 4), f = n == 5 && !strncmp(p, "false", 5);
	const char *v = t ? "on" : f ? "off" : p;
	return kv_add(kv, key, strlen(key), v, t || f ? strlen(v) : n) < 0 ? -ENOMEM : 1;
}

/* Skips the object or array at p (strings inside included); NULL when it does not end. */
static const char *json_skip(const char *p)
{
	int depth = 0;
	for (; *p; p++) {
		if (*p == '"' || *p == '\'') {
			char quote = *p;
			for (p++; *p && *p != quote; p++)
				if (*p == '\\' && p[1])
					p++;
			if (!*p)
				return NULL;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if ((*p == '}' || *p == ']') && --depth == 0) {
			return p + 1;
		}
	}
	return NULL;
}

/* The JSON form: top-level members with scalar values, a list of scalars as the key repeated
 * (host-nodes), nested objects left out. -EINVAL when it is not such an object, -ENOMEM. */
static int parse_json(const char *s, struct qemu_value *ret)
{
	struct qemu_value kv = {0};
	_cleanup_free_ char *key = malloc(strlen(s) + 1), *buf = malloc(strlen(s) + 1);
	const char *p = json_space(s);
	int r = key && buf ? 0 : -ENOMEM;
	if (r == 0 && *p++ != '{')
		r = -EINVAL;
	for (p = json_space(p); r == 0 && *p != '}';) {
		if ((*p != '"' && *p != '\'') || !json_string(p, key, &p) ||
		    *(p = json_space(p)) != ':') {
			r = -EINVAL;
			break;
		}
		p = json_space(p + 1);
		if (*p == '[') {
			/* a list of scalars: each one under the key; anything nested ends it */
			const char *end = json_skip(p), *q = json_space(p + 1);
			while (r == 0 && end && *q != ']') {
				r = json_scalar(&kv, key, q, buf, &q);
				if (r <= 0)
					break;
				r = 0;
				if (*(q = json_space(q)) == ',')
					q = json_space(q + 1);
			}
			p = end;
		} else if (*p == '{') {
			p = json_skip(p);
		} else if ((r = json_scalar(&kv, key, p, buf, &p)) == 1) {
			r = 0;
		}
		if (r == 0 && !p)
			r = -EINVAL;
		if (r == 0 && *(p = json_space(p)) == ',')
			p = json_space(p + 1);
		else if (r == 0 && *p != '}')
			r = -EINVAL;
	}
	if (r < 0) {
		qemu_value_done(&kv);
		return r;
	}
	*ret = kv;
	return 0;
}

const char *qemu_value_get(const struct qemu_value *kv, const char *key)
{
	const char *v = NULL;
	for (size_t i = 0; i < kv->n; i++)
		if (kv->values[i] && streq(kv->keys[i], key))
			v = kv->values[i]; /* the last one wins, as in qemu */
	return v;
}

/* The first part when it is a bare word; else NULL. */
static const char *first_word(const struct qemu_value *kv)
{
	return kv->n && !kv->values[0] ? kv->keys[0] : NULL;
}

const char *qemu_value_implied(const struct qemu_value *kv, const char *key)
{
	const char *w = first_word(kv);
	return w ? w : qemu_value_get(kv, key);
}

int qemu_value_parse(const char *s, struct qemu_value *ret)
{
	*ret = (struct qemu_value){0};
	return s[0] == '{' ? parse_json(s, ret) : parse_parts(s, ret);
}
