/* Host CPU sets of any size and their kernel list text form ("0-3,8,10-11"), after util-linux's
 * cpuset.c: masks are CPU_ALLOC'ed to the size needed, never a fixed 1024-bit cpu_set_t. */
#include "cpulist.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "readfile.h"

/* A CPU list file of the kernel is at most ~5 bytes per CPU ("8190,"); anything larger is not one.
 */
#define CPU_LIST_FILE_MAX (8 * CPU_LIST_MAX_CPUS)
/* How much of a bad token an error message quotes. */
#define QUOTE_MAX 64

static int cpu_list_alloc(size_t nbits, cpu_set_t **ret_set, size_t *ret_nbits, size_t *ret_nbytes)
{
	if (nbits == 0)
		nbits = 1;
	cpu_set_t *set = CPU_ALLOC(nbits);
	if (!set)
		return -ENOMEM;
	size_t nbytes = CPU_ALLOC_SIZE(nbits);
	CPU_ZERO_S(nbytes, set);
	*ret_set = set;
	*ret_nbytes = nbytes;
	/* CPU_ALLOC rounds up to whole longs; make that capacity usable. */
	*ret_nbits = nbytes * 8;
	return 0;
}

struct cpu_list *cpu_list_new(size_t nbits)
{
	if (nbits > CPU_LIST_MAX_CPUS) {
		errno = ERANGE;
		return NULL;
	}
	struct cpu_list *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	if (cpu_list_alloc(nbits, &l->set, &l->nbits, &l->nbytes) < 0) {
		free(l);
		errno = ENOMEM;
		return NULL;
	}
	return l;
}

void cpu_list_free(struct cpu_list *l)
{
	if (!l)
		return;
	if (l->set)
		CPU_FREE(l->set);
	free(l);
}

static int cpu_list_grow(struct cpu_list *l, size_t nbits)
{
	if (nbits <= l->nbits)
		return 0;
	cpu_set_t *set;
	size_t new_nbits, new_nbytes;
	int r = cpu_list_alloc(nbits, &set, &new_nbits, &new_nbytes);
	if (r < 0)
		return r;
	memcpy(set, l->set, l->nbytes);
	CPU_FREE(l->set);
	l->set = set;
	l->nbits = new_nbits;
	l->nbytes = new_nbytes;
	return 0;
}

int cpu_list_add(struct cpu_list *l, unsigned cpu)
{
	if (cpu >= CPU_LIST_MAX_CPUS)
		return -ERANGE;
	int r = cpu_list_grow(l, (size_t)cpu + 1);
	if (r < 0)
		return r;
	CPU_SET_S(cpu, l->nbytes, l->set);
	return 0;
}

void cpu_list_remove(struct cpu_list *l, unsigned cpu)
{
	if (cpu < l->nbits)
		CPU_CLR_S(cpu, l->nbytes, l->set);
}

bool cpu_list_has(const struct cpu_list *l, unsigned cpu)
{
	return cpu < l->nbits && CPU_ISSET_S(cpu, l->nbytes, l->set);
}

size_t cpu_list_count(const struct cpu_list *l)
{
	return (size_t)CPU_COUNT_S(l->nbytes, l->set);
}

bool cpu_list_is_empty(const struct cpu_list *l)
{
	return cpu_list_count(l) == 0;
}

int cpu_list_next(const struct cpu_list *l, int after)
{
	size_t start = after < 0 ? 0 : (size_t)after + 1;
	const size_t word = 8 * sizeof(__cpu_mask);
	for (size_t c = start; c < l->nbits; c++) {
		/* Skip empty words so iterating a sparse 8192-CPU set stays cheap. By words, not
		 * bytes: a word's bytes hold its CPUs in the host's byte order. */
		if (c % word == 0 && l->set->__bits[c / word] == 0) {
			c += word - 1;
			continue;
		}
		if (CPU_ISSET_S(c, l->nbytes, l->set))
			return (int)c;
	}
	return -1;
}

int cpu_list_last(const struct cpu_list *l)
{
	for (size_t c = l->nbits; c > 0; c--)
		if (CPU_ISSET_S(c - 1, l->nbytes, l->set))
			return (int)(c - 1);
	return -1;
}

struct cpu_list *cpu_list_dup(const struct cpu_list *l)
{
	struct cpu_list *d = cpu_list_new(l->nbits);
	if (!d)
		return NULL;
	memcpy(d->set, l->set, l->nbytes);
	return d;
}

/* Byte i of the mask, 0 beyond its size: sets of different sizes compare as if zero-extended. */
static unsigned char mask_byte(const struct cpu_list *l, size_t i)
{
	return i < l->nbytes ? ((const unsigned char *)l->set)[i] : 0;
}

bool cpu_list_equal(const struct cpu_list *a, const struct cpu_list *b)
{
	size_t n = a->nbytes > b->nbytes ? a->nbytes : b->nbytes;
	for (size_t i = 0; i < n; i++)
		if (mask_byte(a, i) != mask_byte(b, i))
			return false;
	return true;
}

bool cpu_list_is_subset(const struct cpu_list *sub, const struct cpu_list *super)
{
	for (size_t i = 0; i < sub->nbytes; i++)
		if (mask_byte(sub, i) & ~mask_byte(super, i))
			return false;
	return true;
}

void cpu_list_subtract(struct cpu_list *l, const struct cpu_list *other)
{
	unsigned char *bytes = (unsigned char *)l->set;
	for (size_t i = 0; i < l->nbytes; i++)
		bytes[i] &= (unsigned char)~mask_byte(other, i);
}

char *cpu_list_show(const struct cpu_list *l)
{
	char *t = l ? cpu_list_format(l) : NULL;
	return t ? t : strdup("?");
}

int cpu_list_merge(struct cpu_list *l, const struct cpu_list *other)
{
	for (int c = cpu_list_next(other, -1); c >= 0; c = cpu_list_next(other, c))
		if (cpu_list_add(l, (unsigned)c) < 0)
			return -ENOMEM;
	return 0;
}

struct cpu_list *cpu_list_of_one(unsigned cpu)
{
	struct cpu_list *l = cpu_list_new(cpu + 1);
	if (l && cpu_list_add(l, cpu) < 0) {
		cpu_list_free(l);
		return NULL;
	}
	return l;
}

char *cpu_list_format(const struct cpu_list *l)
{
	/* Worst case "0,2,4,...": at most 5 digits + separator per CPU, plus the NUL. */
	size_t cap = cpu_list_count(l) * 6 + 1;
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	size_t len = 0;
	buf[0] = '\0';
	for (int c = cpu_list_next(l, -1); c >= 0;) {
		int end = c;
		while (cpu_list_has(l, (unsigned)end + 1))
			end++;
		int n = end == c
			    ? snprintf(buf + len, cap - len, "%s%d", len ? "," : "", c)
			    : snprintf(buf + len, cap - len, "%s%d-%d", len ? "," : "", c, end);
		if (n < 0 || (size_t)n >= cap - len) {
			free(buf);
			errno = EOVERFLOW;
			return NULL;
		}
		len += (size_t)n;
		c = cpu_list_next(l, end);
	}
	return buf;
}

/* One CPU number of a list: decimal digits only (strtoul alone would take "+1", " 1", "-1"). */
static int parse_cpu_number(const char *s, const char **ret_end, unsigned *ret_cpu)
{
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno == ERANGE || v >= CPU_LIST_MAX_CPUS)
		return -ERANGE;
	if (errno != 0 || end == s)
		return -EINVAL;
	*ret_end = end;
	*ret_cpu = (unsigned)v;
	return 0;
}

static int parse_error(struct ql_error *err, int r, const char *text, const char *tok,
		       size_t toklen)
{
	int qlen = toklen > QUOTE_MAX ? QUOTE_MAX : (int)toklen;
	if (toklen == 0)
		return ql_error_set(err, EINVAL, "invalid CPU list `%.*s`: empty entry", QUOTE_MAX,
				    text);
	if (r == -ERANGE)
		return ql_error_set(
		    err, ERANGE,
		    "invalid CPU list `%.*s`: `%.*s%s` is out of range (CPUs are 0-%d)", QUOTE_MAX,
		    text, qlen, tok, toklen > QUOTE_MAX ? "..." : "", CPU_LIST_MAX_CPUS - 1);
	return ql_error_set(err, EINVAL,
			    "invalid CPU list `%.*s`: `%.*s%s` is not a CPU number or range N-M",
			    QUOTE_MAX, text, qlen, tok, toklen > QUOTE_MAX ? "..." : "");
}

int cpu_list_parse(const char *text, struct cpu_list **ret, struct ql_error *err)
{
	_cleanup_cpu_list_ struct cpu_list *l = cpu_list_new(0);
	if (!l)
		return ql_error_set(err, ENOMEM, "out of memory");

	/* Kernel files end in "\n"; nothing else may surround the list. */
	size_t len = strlen(text);
	while (len > 0 && isspace((unsigned char)text[len - 1]))
		len--;

	const char *p = text, *end = text + len;
	while (len > 0) {
		const char *tok = p, *after;
		size_t toklen = strcspn(tok, ",");
		if (tok + toklen > end)
			toklen = (size_t)(end - tok);

		unsigned first, last;
		int r = parse_cpu_number(p, &after, &first);
		if (r < 0)
			return parse_error(err, r, text, tok, toklen);
		last = first;
		if (*after == '-') {
			r = parse_cpu_number(after + 1, &after, &last);
			if (r < 0)
				return parse_error(err, r, text, tok, toklen);
			if (last < first)
				return ql_error_set(
				    err, EINVAL,
				    "invalid CPU list `%.*s`: range `%.*s` ends before it starts",
				    QUOTE_MAX, text, (int)toklen, tok);
		}
		if (after != tok + toklen)
			return parse_error(err, -EINVAL, text, tok, toklen);

		r = cpu_list_grow(l, (size_t)last + 1);
		if (r < 0)
			return ql_error_set(err, -r, "out of memory");
		for (unsigned c = first; c <= last; c++)
			CPU_SET_S(c, l->nbytes, l->set);

		if (after == end)
			break;
		/* after points at ','; a list must not end with one (the loop would see "" next).
		 */
		p = after + 1;
		if (p == end)
			return parse_error(err, -EINVAL, text, p, 0);
	}

	*ret = TAKE_PTR(l);
	return 0;
}

int cpu_list_read_file(const char *path, struct cpu_list **ret, struct ql_error *err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = read_small_file(AT_FDCWD, path, 0, CPU_LIST_FILE_MAX, &buf, &len);
	if (r == -EFBIG)
		return ql_error_set(err, EFBIG, "`%s` is too large for a CPU list", path);
	if (r < 0)
		return ql_error_set_errno(err, -r, "read `%s`", path);
	if (memchr(buf, '\0', len))
		return ql_error_set(err, EINVAL, "`%s` contains a NUL byte", path);

	r = cpu_list_parse(buf, ret, err);
	if (r < 0)
		ql_error_prefix(err, "%s: ", path);
	return r;
}
