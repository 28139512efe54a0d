/* libvirt domain XML -> launcher keys. libvirt's pinning and scheduling live in <cputune>, its
 * memory locking in <memoryBacking>; the qemu command line (virsh domxml-to-native) carries the
 * rest, which --import already reads. Whatever has no launcher key becomes a warning.
 * libxml2 is loaded with dlopen on first use: linked, it (with ICU and libstdc++) would cost
 * every VM start ~3 ms of dynamic loading for an option used once per migration. */
#include "libvirt_xml.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "config.h"
#include "cpulist.h"
#include "dynload.h"
#include "macro.h"
#include "readfile.h"

/* libvirt's own limit on vCPUs (VIR_DOMAIN_VCPUS_MAX is lower; this only bounds our arrays). */
#define MAX_VCPUS 4096

/* The libxml2 functions we use, resolved from libxml2.so.2 (types from its headers). */
static struct {
	__typeof__(xmlCtxtReadMemory) *read_memory;
	__typeof__(xmlNewParserCtxt) *new_ctxt;
	__typeof__(xmlFreeParserCtxt) *free_ctxt;
	__typeof__(xmlSAX2StartElementNs) *sax2_start_element;
	__typeof__(xmlFreeDoc) *free_doc;
	__typeof__(xmlGetLastError) *last_error;
	__typeof__(xmlDocGetRootElement) *root;
	__typeof__(xmlGetProp) *get_prop;
	__typeof__(xmlHasProp) *has_prop;
	__typeof__(xmlNodeGetContent) *content;
	xmlFreeFunc *free; /* the library's `xmlFree` variable */
} X;

static int xml_load(struct ql_error *err)
{
	if (X.read_memory)
		return 0;
	static const char *const names[] = {"xmlCtxtReadMemory",    "xmlFreeDoc",
					    "xmlGetLastError",	    "xmlDocGetRootElement",
					    "xmlGetProp",	    "xmlHasProp",
					    "xmlNodeGetContent",    "xmlFree",
					    "xmlNewParserCtxt",	    "xmlFreeParserCtxt",
					    "xmlSAX2StartElementNs"};
	void *sym[ELEMENTSOF(names)];
	int r = dynload("libxml2.so.2", "--libvirt-xml needs libxml2", names, ELEMENTSOF(names),
			sym, err);
	if (r < 0)
		return r;
	/* the handle stays open for the process: the functions are used until it exits */
	X.free_doc = (__typeof__(X.free_doc))sym[1];
	X.last_error = (__typeof__(X.last_error))sym[2];
	X.root = (__typeof__(X.root))sym[3];
	X.get_prop = (__typeof__(X.get_prop))sym[4];
	X.has_prop = (__typeof__(X.has_prop))sym[5];
	X.content = (__typeof__(X.content))sym[6];
	X.free = (xmlFreeFunc *)sym[7];
	X.new_ctxt = (__typeof__(X.new_ctxt))sym[8];
	X.free_ctxt = (__typeof__(X.free_ctxt))sym[9];
	X.sax2_start_element = (__typeof__(X.sax2_start_element))sym[10];
	X.read_memory = (__typeof__(X.read_memory))sym[0];
	return 0;
}

/* libxml2 stores an element's line in 16 bits (65535 beyond); XML_PARSE_BIG_LINES helps only
 * text nodes, and xmlGetLineNo then guesses from a neighbour. So the start of each element
 * records the parser's line in the element's psvi (unused without schema validation). */
static void start_element(void *ctx, const xmlChar *localname, const xmlChar *prefix,
			  const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
			  int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
	xmlParserCtxt *ctxt = ctx;
	X.sax2_start_element(ctx, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes,
			     nb_defaulted, attributes);
	if (ctxt->node && ctxt->node->line == 65535 && ctxt->input)
		ctxt->node->psvi = (void *)(intptr_t)ctxt->input->line;
}

static long line_of(const xmlNode *n)
{
	if (n->line == 65535 && n->psvi)
		return (long)(intptr_t)n->psvi;
	return n->line;
}

static void xml_ctxt_freep(xmlParserCtxt **c)
{
	if (*c)
		X.free_ctxt(*c);
}

static xmlChar *prop(const xmlNode *n, const char *name)
{
	return X.get_prop(n, (const xmlChar *)name);
}

static bool has_prop(const xmlNode *n, const char *name)
{
	return X.has_prop(n, (const xmlChar *)name) != NULL;
}

struct ctx {
	const char *path;
	char **warnings;
	size_t n_warnings;
	struct ql_error *err;
};

static void xml_freep(xmlDoc **d)
{
	if (*d)
		X.free_doc(*d);
}

static void xml_charp(xmlChar **s)
{
	if (*s)
		(*X.free)(*s);
}
#define _cleanup_xml_ _cleanup_(xml_charp)

_printf_(3, 4) static int warn(struct ctx *c, const xmlNode *n, const char *fmt, ...)
{
	char **v = reallocarray(c->warnings, c->n_warnings + 2, sizeof(char *));
	if (!v)
		return ql_error_set(c->err, ENOMEM, "out of memory");
	c->warnings = v;
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0 ||
	    asprintf(&v[c->n_warnings], "%s:%ld: %s", c->path, n ? line_of(n) : 0L, msg) < 0) {
		v[c->n_warnings] = NULL;
		return ql_error_set(c->err, ENOMEM, "out of memory");
	}
	v[++c->n_warnings] = NULL;
	return 0;
}

_printf_(3, 4) static int fail(struct ctx *c, const xmlNode *n, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return ql_error_set(c->err, ENOMEM, "out of memory");
	return ql_error_set(c->err, EINVAL, "%s:%ld: %s", c->path, n ? line_of(n) : 0L, msg);
}

static bool is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && streq((const char *)n->name, name);
}

static const xmlNode *child(const xmlNode *n, const char *name)
{
	for (const xmlNode *c = n->children; c; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

/* An attribute's value shown in a message: control characters escaped, long values cut. */
static const char *shown(struct ql_shown *s, const xmlChar *v)
{
	return ql_show(s, v ? (const char *)v : "");
}

/* A non-negative decimal number up to max. */
static bool parse_uint(const xmlChar *v, unsigned max, unsigned *ret)
{
	const char *s = (const char *)v;
	if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
		return false;
	unsigned long x = strtoul(s, NULL, 10);
	if (x > max)
		return false;
	*ret = (unsigned)x;
	return true;
}

static const char *skip_blanks(const char *p)
{
	return p + strspn(p, " \t\n\r");
}

/* A CPU number at *p (digits only), below CPU_LIST_MAX_CPUS; moves *p past it. */
static bool parse_cpu(const char **p, unsigned *ret)
{
	size_t n = strspn(*p, "0123456789");
	if (n == 0 || n > 9)
		return false;
	unsigned long x = strtoul(*p, NULL, 10);
	if (x >= CPU_LIST_MAX_CPUS)
		return false;
	*p += n;
	*ret = (unsigned)x;
	return true;
}

/* libvirt's cpuset syntax (virBitmapParseSeparator): "0-3,8", "^N" removing N from what the items
 * before it gave ("0-7,^4"). Items apply left to right, as in libvirt: "^1,0-1" is 0-1. Like
 * libvirt, "^N-M", an empty item ("1,,2") and an empty list are refused; a trailing comma is
 * not. */
static int parse_cpuset(struct ctx *c, const xmlNode *n, const char *attr, struct cpu_list **ret)
{
	_cleanup_xml_ xmlChar *v = prop(n, attr);
	struct ql_shown sh;
	if (!v)
		return fail(c, n, "<%s> has no %s attribute", n->name, attr);
	_cleanup_cpu_list_ struct cpu_list *set = cpu_list_new(64);
	if (!set)
		return ql_error_set(c->err, ENOMEM, "out of memory");
	const char *p = skip_blanks((const char *)v);
	while (*p) {
		bool exclude = *p == '^';
		unsigned first, last;
		p += exclude;
		if (!parse_cpu(&p, &first))
			goto bad;
		p = skip_blanks(p);
		last = first;
		if (*p == '-') {
			if (exclude)
				return fail(
				    c, n,
				    "<%s %s='%s'>: libvirt refuses a range after `^` (exclude "
				    "the CPUs one by one)",
				    n->name, attr, shown(&sh, v));
			p = skip_blanks(p + 1);
			if (!parse_cpu(&p, &last) || last < first)
				goto bad;
			p = skip_blanks(p);
		}
		for (unsigned cpu = first; cpu <= last; cpu++) {
			if (exclude)
				cpu_list_remove(set, cpu);
			else if (cpu_list_add(set, cpu) < 0)
				return ql_error_set(c->err, ENOMEM, "out of memory");
		}
		if (*p == ',')
			p = skip_blanks(p + 1);
		else if (*p)
			goto bad;
	}
	if (p == skip_blanks((const char *)v))
		goto bad; /* an empty list */
	if (cpu_list_is_empty(set))
		return fail(c, n, "<%s %s='%s'>: no CPU left", n->name, attr, shown(&sh, v));
	*ret = TAKE_PTR(set);
	return 0;
bad:
	return fail(c, n, "<%s %s='%s'>: not a CPU list", n->name, attr, shown(&sh, v));
}

struct sched {
	const xmlNode *node;
	char *policy;
	int priority; /* -1: none */
	struct cpu_list *vcpus;
};

struct iopin {
	unsigned num;	       /* libvirt's iothread='N': qemu's `iothreadN` */
	struct cpu_list *cpus; /* emptied when the pin is not imported */
	const xmlNode *node;
};

struct domain {
	unsigned n_vcpus;
	unsigned n_current; /* the vCPUs qemu starts with (<vcpu current>); the rest hot-plug */
	int *pin;	    /* host CPU per vCPU, -1: none */
	const xmlNode **pin_node;
	struct sched *scheds;
	size_t n_scheds;
	struct cpu_list *emu; /* <emulatorpin>, NULL: none */
	const xmlNode *emu_node;
	struct iopin *io; /* <iothreadpin>s in document order */
	size_t n_io;
	struct sched *io_scheds; /* <iothreadsched>s; `vcpus` holds I/O thread numbers */
	size_t n_io_scheds;
};

static void domain_done(struct domain *d)
{
	free(d->pin);
	free(d->pin_node);
	for (size_t i = 0; i < d->n_scheds; i++) {
		free(d->scheds[i].policy);
		cpu_list_free(d->scheds[i].vcpus);
	}
	free(d->scheds);
	for (size_t i = 0; i < d->n_io_scheds; i++) {
		free(d->io_scheds[i].policy);
		cpu_list_free(d->io_scheds[i].vcpus);
	}
	free(d->io_scheds);
	cpu_list_free(d->emu);
	for (size_t i = 0; i < d->n_io; i++)
		cpu_list_free(d->io[i].cpus);
	free(d->io);
}

static int vcpupin(struct ctx *c, struct domain *d, const xmlNode *n)
{
	_cleanup_xml_ xmlChar *id = prop(n, "vcpu");
	_cleanup_xml_ xmlChar *cs = prop(n, "cpuset");
	struct ql_shown sh;
	unsigned vcpu;
	if (!parse_uint(id, MAX_VCPUS - 1, &vcpu))
		return fail(c, n, "<vcpupin vcpu='%s'>: not a vCPU number", shown(&sh, id));
	if (vcpu >= d->n_vcpus)
		return fail(c, n, "<vcpupin vcpu='%u'>: the domain has %u vCPU(s)", vcpu,
			    d->n_vcpus);
	_cleanup_cpu_list_ struct cpu_list *set = NULL;
	int r = parse_cpuset(c, n, "cpuset", &set);
	if (r < 0)
		return r;
	d->pin_node[vcpu] = n; /* pinned in libvirt's sense, even where the launcher cannot */
	if (cpu_list_count(set) != 1)
		return warn(
		    c, n,
		    "<vcpupin vcpu='%u' cpuset='%s'> not imported: qemu-launcher pins a vCPU "
		    "to exactly one host CPU",
		    vcpu, shown(&sh, cs));
	d->pin[vcpu] = cpu_list_next(set, -1);
	return 0;
}

static int emulatorpin(struct ctx *c, struct domain *d, const xmlNode *n)
{
	_cleanup_cpu_list_ struct cpu_list *set = NULL;
	int r = parse_cpuset(c, n, "cpuset", &set);
	if (r < 0)
		return r;
	cpu_list_free(d->emu);
	d->emu = TAKE_PTR(set);
	d->emu_node = n;
	return 0;
}

/* <iothreadpin iothread='N' cpuset='...'>: libvirt names that I/O thread `iothreadN` on qemu's
 * command line (`-object iothread,id=iothreadN`). */
static int iothreadpin(struct ctx *c, struct domain *d, const xmlNode *n)
{
	_cleanup_xml_ xmlChar *id = prop(n, "iothread");
	unsigned num = 0;
	struct ql_shown sh;
	if (!id || !parse_uint(id, 1000000, &num) || num == 0)
		return fail(c, n, "<iothreadpin iothread='%s'>: not an I/O thread number",
			    shown(&sh, id));
	_cleanup_cpu_list_ struct cpu_list *set = NULL;
	int r = parse_cpuset(c, n, "cpuset", &set);
	if (r < 0)
		return r;
	struct iopin *v = reallocarray(d->io, d->n_io + 1, sizeof(*v));
	if (!v)
		return ql_error_set(c->err, ENOMEM, "out of memory");
	d->io = v;
	d->io[d->n_io++] = (struct iopin){.num = num, .cpus = TAKE_PTR(set), .node = n};
	return 0;
}

static int add_iothread_pin(struct ctx *c, struct import_launcher *l, unsigned num,
			    const struct cpu_list *set)
{
	size_t k = strv_length(l->io_ids);
	char **ids = reallocarray(l->io_ids, k + 2, sizeof(char *));
	if (ids)
		l->io_ids = ids;
	char **cpus = ids ? reallocarray(l->io_cpus, k + 2, sizeof(char *)) : NULL;
	if (cpus)
		l->io_cpus = cpus;
	if (!ids || !cpus)
		return ql_error_set(c->err, ENOMEM, "out of memory");
	l->io_ids[k] = l->io_ids[k + 1] = l->io_cpus[k + 1] = NULL;
	l->io_cpus[k] = cpu_list_format(set);
	if (!l->io_cpus[k] || asprintf(&l->io_ids[k], "iothread%u", num) < 0) {
		l->io_ids[k] = NULL;
		return ql_error_set(c->err, ENOMEM, "out of memory");
	}
	return 0;
}

/* libvirt lets an I/O thread share CPUs with vCPUs and leave <emulatorpin>; the launcher keeps
 * I/O threads with qemu's other threads (off the vCPUs' CPUs, inside emulator_pinning), and
 * --check refuses anything else. So a pinned vCPU's CPU is taken out of the I/O thread's set
 * (the pin is dropped when nothing is left: the thread stays with the emulator threads), and
 * emulator_pinning grows by the rest, so the I/O thread keeps the other CPUs the domain gave it.
 * Each change is a warning. */
static int map_iothreads(struct ctx *c, struct domain *d, struct import_launcher *l)
{
	_cleanup_cpu_list_ struct cpu_list *vcpus = cpu_list_new(64);
	if (!vcpus)
		return ql_error_set(c->err, ENOMEM, "out of memory");
	for (size_t i = 0; i < l->n_pins; i++)
		if (cpu_list_add(vcpus, l->pins[i]) < 0)
			return ql_error_set(c->err, ENOMEM, "out of memory");
	for (size_t i = 0; i < d->n_io; i++) {
		struct iopin *io = &d->io[i];
		_cleanup_free_ char *was = cpu_list_format(io->cpus);
		_cleanup_cpu_list_ struct cpu_list *shared = cpu_list_new(64);
		if (!was || !shared)
			return ql_error_set(c->err, ENOMEM, "out of memory");
		for (int x = cpu_list_next(io->cpus, -1); x >= 0; x = cpu_list_next(io->cpus, x))
			if (cpu_list_has(vcpus, (unsigned)x) &&
			    cpu_list_add(shared, (unsigned)x) < 0)
				return ql_error_set(c->err, ENOMEM, "out of memory");
		int r = 0;
		if (!cpu_list_is_empty(shared)) {
			_cleanup_free_ char *sh = cpu_list_format(shared);
			if (!sh)
				return ql_error_set(c->err, ENOMEM, "out of memory");
			cpu_list_subtract(io->cpus, shared);
			if (cpu_list_is_empty(io->cpus)) {
				r = warn(
				    c, io->node,
				    "<iothreadpin iothread='%u' cpuset='%s'> not imported: "
				    "qemu-launcher keeps I/O threads off the pinned vCPUs' CPUs, "
				    "and these are all such CPUs; the I/O thread runs with qemu's "
				    "other threads",
				    io->num, was);
				if (r < 0)
					return r;
				continue; /* io->cpus is empty: not pinned */
			}
			r = warn(c, io->node,
				 "<iothreadpin iothread='%u' cpuset='%s'>: CPU(s) %s left out of "
				 "iothread_pinning: qemu-launcher keeps I/O threads off the pinned "
				 "vCPUs' CPUs",
				 io->num, was, sh);
			if (r < 0)
				return r;
		}
		if (d->emu && !cpu_list_is_subset(io->cpus, d->emu)) {
			_cleanup_cpu_list_ struct cpu_list *added = cpu_list_dup(io->cpus);
			if (!added)
				return ql_error_set(c->err, ENOMEM, "out of memory");
			cpu_list_subtract(added, d->emu);
			_cleanup_free_ char *ad = cpu_list_format(added);
			if (!ad || cpu_list_merge(d->emu, added) < 0)
				return ql_error_set(c->err, ENOMEM, "out of memory");
			r = warn(c, io->node,
				 "<iothreadpin iothread='%u' cpuset='%s'>: CPU(s) %s added to "
				 "emulator_pinning: qemu-launcher runs I/O threads inside "
				 "emulator_pinning, libvirt lets them leave <emulatorpin>",
				 io->num, was, ad);
			if (r < 0)
				return r;
		}
		if ((r = add_iothread_pin(c, l, io->num, io->cpus)) < 0)
			return r;
	}
	if (d->emu && !(l->emulator_cpus = cpu_list_format(d->emu)))
		return ql_error_set(c->err, ENOMEM, "out of memory");
	return 0;
}

/* <vcpusched>/<iothreadsched>: policy, priority and the threads (vCPU or I/O thread numbers) of
 * attribute `attr`; without it every vCPU 0..n_all-1 (n_all 0: libvirt requires it). */
/* A <vcpusched>/<iothreadsched> that maps whole: its policy and priority as the launcher's keys. */
static int take_sched(struct ctx *c, const struct sched *s, char **ret_policy, bool *ret_has,
		      int *ret_priority)
{
	if (!(*ret_policy = strdup(s->policy)))
		return ql_error_set(c->err, ENOMEM, "out of memory");
	*ret_has = s->priority >= 0;
	*ret_priority = *ret_has ? s->priority : 0;
	return 0;
}

/* " N" for a real-time priority, "" for none: after the policy in a warning. */
static void priority_text(const struct sched *s, char buf[16])
{
	buf[0] = '\0';
	if (s->priority >= 0)
		snprintf(buf, 16, " %d", s->priority);
}

static int parse_sched(struct ctx *c, const xmlNode *n, const char *attr, unsigned n_all,
		       struct sched **list, size_t *n_list)
{
	_cleanup_xml_ xmlChar *pol = prop(n, "scheduler");
	_cleanup_xml_ xmlChar *prio = prop(n, "priority");
	struct ql_shown sh;
	if (!pol || !(streq((const char *)pol, "fifo") || streq((const char *)pol, "rr") ||
		      streq((const char *)pol, "batch") || streq((const char *)pol, "idle")))
		return fail(c, n, "<%s scheduler='%s'>: libvirt knows batch, idle, fifo, rr",
			    (const char *)n->name, shown(&sh, pol));
	bool rt = streq((const char *)pol, "fifo") || streq((const char *)pol, "rr");
	unsigned p = 0;
	if (rt && (!prio || !parse_uint(prio, 99, &p) || p < 1))
		return fail(c, n, "<%s scheduler='%s'> needs a priority 1..99, got '%s'",
			    (const char *)n->name, (const char *)pol, shown(&sh, prio));
	struct sched s = {.node = n, .priority = rt ? (int)p : -1};
	if (has_prop(n, attr)) {
		int r = parse_cpuset(c, n, attr, &s.vcpus);
		if (r < 0)
			return r;
	} else if (n_all == 0) {
		return fail(c, n, "<%s> has no %s attribute", (const char *)n->name, attr);
	} else {
		/* no vcpus: every vCPU */
		if (!(s.vcpus = cpu_list_new(n_all)))
			return ql_error_set(c->err, ENOMEM, "out of memory");
		for (unsigned i = 0; i < n_all; i++)
			cpu_list_add(s.vcpus, i);
	}
	struct sched *v = reallocarray(*list, *n_list + 1, sizeof(*v));
	if (!v || !(s.policy = strdup((const char *)pol))) {
		if (v)
			*list = v;
		cpu_list_free(s.vcpus);
		return ql_error_set(c->err, ENOMEM, "out of memory");
	}
	*list = v;
	(*list)[(*n_list)++] = s;
	return 0;
}

/* The launcher's scheduler applies to the pinned vCPUs (every vCPU without vcpu_pinning): one
 * policy for exactly those maps, anything else is a warning per <vcpusched>. */
static int map_sched(struct ctx *c, struct domain *d, struct import_launcher *l)
{
	if (!d->n_scheds)
		return 0;
	_cleanup_cpu_list_ struct cpu_list *covered = cpu_list_new(d->n_vcpus);
	if (!covered)
		return ql_error_set(c->err, ENOMEM, "out of memory");
	bool same = true;
	for (size_t i = 0; i < d->n_scheds; i++) {
		const struct sched *s = &d->scheds[i];
		same = same && streq(s->policy, d->scheds[0].policy) &&
		       s->priority == d->scheds[0].priority;
		for (int v = cpu_list_next(s->vcpus, -1); v >= 0; v = cpu_list_next(s->vcpus, v))
			if (cpu_list_add(covered, (unsigned)v) < 0)
				return ql_error_set(c->err, ENOMEM, "out of memory");
	}
	size_t target = l->n_pins ? l->n_pins : d->n_vcpus;
	bool exact = cpu_list_count(covered) == target && cpu_list_last(covered) < (int)target;
	if (same && exact)
		return take_sched(c, &d->scheds[0], &l->scheduler, &l->has_priority, &l->priority);
	for (size_t i = 0; i < d->n_scheds; i++) {
		const struct sched *s = &d->scheds[i];
		_cleanup_free_ char *vc = cpu_list_format(s->vcpus);
		char prio[16];
		priority_text(s, prio);
		int r = warn(c, s->node,
			     "<vcpusched> %s%s for vCPU(s) %s not imported: qemu-launcher's "
			     "`scheduler` applies to %s vCPUs (%s%zu), and %s (set "
			     "`scheduler`/`priority` by hand to give it to all of them)",
			     s->policy, prio, vc ? vc : "?", l->n_pins ? "the pinned" : "all",
			     target > 1 ? "0-" : "", target - 1,
			     same ? "this domain gives it to others"
				  : "this domain gives them different policies");
		if (r < 0)
			return r;
	}
	return 0;
}

/* The flat vcpu_pinning list: vCPU 0, 1, ... up to the first vCPU without a pin. */
static int map_pins(struct ctx *c, struct domain *d, struct import_launcher *l)
{
	size_t k = 0;
	while (k < d->n_current && d->pin[k] >= 0)
		k++;
	for (size_t i = k; i < d->n_vcpus; i++) {
		if (d->pin[i] < 0)
			continue;
		/* the launcher pins what qemu starts with: a pin of a vCPU it never starts
		 * would stop the VM */
		int r = i >= d->n_current
			    ? warn(c, d->pin_node[i],
				   "<vcpupin vcpu='%zu' cpuset='%d'> not imported: qemu starts %u "
				   "vCPUs (<vcpu current>), and hot-plugged ones are not pinned",
				   i, d->pin[i], d->n_current)
			    : warn(c, d->pin_node[i],
				   "<vcpupin vcpu='%zu' cpuset='%d'> not imported: vCPU %zu before "
				   "it is not "
				   "pinned, and vcpu_pinning cannot skip a vCPU (pin vCPU %zu too, "
				   "or write "
				   "the nested form by hand)",
				   i, d->pin[i], k, k);
		if (r < 0)
			return r;
	}
	if (k == 0)
		return 0;
	if (!(l->pins = calloc(k, sizeof(*l->pins))))
		return ql_error_set(c->err, ENOMEM, "out of memory");
	for (size_t i = 0; i < k; i++)
		l->pins[i] = (unsigned)d->pin[i];
	l->n_pins = k;
	return 0;
}

/* <vcpu placement='auto'> asks numad for the CPUs at each start (a cpuset is then ignored).
 * <vcpu cpuset> is libvirt's default mask for every vCPU without <vcpupin>, and for the
 * emulator and I/O threads without their own pin: with every vCPU pinned and no <emulatorpin>
 * it is the emulator's mask, emulator_pinning; with <emulatorpin> it still places the I/O
 * threads without <iothreadpin>, which the launcher runs on emulator_pinning. */
static int vcpu_placement(struct ctx *c, struct domain *d, const xmlNode *root, const xmlNode *n)
{
	struct ql_shown sh;
	_cleanup_xml_ xmlChar *placement = prop(n, "placement");
	if (placement && streq((const char *)placement, "auto"))
		return warn(c, n,
			    "<vcpu placement='auto'> not imported: libvirt asks numad for the "
			    "vCPUs' host CPUs at each start; qemu-launcher has no equivalent (pin "
			    "with vcpu_pinning and emulator_pinning by hand)");
	if (!has_prop(n, "cpuset"))
		return 0;
	_cleanup_xml_ xmlChar *cs = prop(n, "cpuset");
	bool all_pinned = true;
	for (unsigned i = 0; i < d->n_vcpus; i++)
		all_pinned = all_pinned && d->pin_node[i];
	if (!all_pinned)
		return warn(c, n,
			    "<vcpu cpuset='%s'> not imported: qemu-launcher pins each vCPU to one "
			    "host CPU (vcpu_pinning) or leaves it unpinned",
			    shown(&sh, cs));
	if (!d->emu) {
		int r = parse_cpuset(c, n, "cpuset", &d->emu);
		d->emu_node = n;
		return r;
	}
	const xmlNode *io = child(root, "iothreads");
	_cleanup_xml_ xmlChar *nio = io ? X.content(io) : NULL;
	unsigned n_io = 0;
	if (!nio || !parse_uint(nio, 1000000, &n_io) || n_io <= d->n_io)
		return 0; /* nothing runs on it: every thread has its own pin */
	return warn(c, n,
		    "<vcpu cpuset='%s'> not imported: with <emulatorpin> it places only the "
		    "I/O threads without <iothreadpin>, which qemu-launcher runs on "
		    "emulator_pinning",
		    shown(&sh, cs));
}

static bool io_pinned(const struct domain *d, int num)
{
	for (size_t i = 0; i < d->n_io; i++)
		if ((int)d->io[i].num == num && !cpu_list_is_empty(d->io[i].cpus))
			return true;
	return false;
}

/* iothread_scheduler applies to the I/O threads of iothread_pinning: one policy for exactly
 * those maps, anything else is a warning per <iothreadsched>. */
static int map_io_sched(struct ctx *c, struct domain *d, struct import_launcher *l)
{
	if (!d->n_io_scheds)
		return 0;
	bool same = true, exact = true;
	size_t n_pinned = 0;
	for (size_t i = 0; i < d->n_io; i++)
		n_pinned += !cpu_list_is_empty(d->io[i].cpus);
	for (size_t i = 0; i < d->n_io_scheds; i++) {
		const struct sched *s = &d->io_scheds[i];
		same = same && streq(s->policy, d->io_scheds[0].policy) &&
		       s->priority == d->io_scheds[0].priority;
		for (int v = cpu_list_next(s->vcpus, -1); v >= 0; v = cpu_list_next(s->vcpus, v))
			exact = exact && io_pinned(d, v);
	}
	for (size_t i = 0; i < d->n_io && exact; i++) {
		bool covered = cpu_list_is_empty(d->io[i].cpus);
		for (size_t k = 0; k < d->n_io_scheds && !covered; k++)
			covered = cpu_list_has(d->io_scheds[k].vcpus, d->io[i].num);
		exact = covered;
	}
	if (same && exact && n_pinned)
		return take_sched(c, &d->io_scheds[0], &l->io_scheduler, &l->has_io_priority,
				  &l->io_priority);
	for (size_t i = 0; i < d->n_io_scheds; i++) {
		const struct sched *s = &d->io_scheds[i];
		_cleanup_free_ char *ios = cpu_list_format(s->vcpus);
		char prio[16];
		priority_text(s, prio);
		int r =
		    warn(c, s->node,
			 "<iothreadsched> %s%s for I/O thread(s) %s not imported: "
			 "qemu-launcher's `iothread_scheduler` applies to exactly the I/O threads "
			 "of iothread_pinning, and %s",
			 s->policy, prio, ios ? ios : "?",
			 !n_pinned ? "no I/O thread is pinned"
			 : !same   ? "this domain gives them different policies"
				   : "this domain schedules other I/O threads than it pins");
		if (r < 0)
			return r;
	}
	return 0;
}

/* libvirt's <emulatorpin> moves only the emulator threads; unpinned vCPUs keep every host CPU.
 * Without vcpu_pinning the launcher runs every qemu thread, the vCPUs too, on emulator_pinning
 * (qemu-launcher.yml(5)), so the key would confine the vCPUs: it is left out then. */
static int map_emulator(struct ctx *c, struct domain *d, struct import_launcher *l)
{
	if (!d->emu || l->n_pins > 0)
		return 0; /* emulator_pinning is written by map_iothreads, which may widen it */
	_cleanup_free_ char *cpus = cpu_list_format(d->emu);
	if (!cpus)
		return ql_error_set(c->err, ENOMEM, "out of memory");
	cpu_list_free(TAKE_PTR(d->emu));
	return warn(c, d->emu_node,
		    "<%s cpuset='%s'> not imported: no vCPU is pinned "
		    "(vcpu_pinning), and without vcpu_pinning qemu-launcher runs every qemu "
		    "thread, the vCPUs too, on emulator_pinning; libvirt moves only the "
		    "emulator threads there",
		    (const char *)d->emu_node->name, cpus);
}

static int cputune(struct ctx *c, struct domain *d, struct import_launcher *l, const xmlNode *ct)
{
	struct ql_shown sh;
	for (const xmlNode *n = ct->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		int r;
		if (is(n, "vcpupin")) {
			r = vcpupin(c, d, n);
		} else if (is(n, "emulatorpin")) {
			r = emulatorpin(c, d, n);
		} else if (is(n, "vcpusched")) {
			r = parse_sched(c, n, "vcpus", d->n_vcpus, &d->scheds, &d->n_scheds);
		} else if (is(n, "iothreadsched")) {
			r = parse_sched(c, n, "iothreads", 0, &d->io_scheds, &d->n_io_scheds);
		} else if (is(n, "iothreadpin")) {
			r = iothreadpin(c, d, n);
		} else if (is(n, "emulatorsched")) {
			_cleanup_xml_ xmlChar *pol = prop(n, "scheduler");
			r = warn(c, n,
				 "<emulatorsched scheduler='%s'> not imported: qemu-launcher "
				 "schedules only vCPU threads (scheduler) and pinned I/O threads "
				 "(iothread_scheduler)",
				 shown(&sh, pol));
		} else {
			/* shares, period, quota, cachetune, memorytune, ... */
			r = warn(c, n,
				 "<cputune><%s> not imported: qemu-launcher has no equivalent "
				 "(CPU bandwidth, cache and memory tuning are left to the host)",
				 n->name);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int memory_backing(struct ctx *c, struct import_launcher *l, const xmlNode *mb)
{
	for (const xmlNode *n = mb->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		int r = 0;
		if (is(n, "locked")) {
			l->rlimit_memlock = true;
		} else if (is(n, "hugepages")) {
			/* the sizes, so the user knows what to reserve */
			_cleanup_free_ char *sizes = NULL;
			size_t len = 0;
			FILE *f = open_memstream(&sizes, &len);
			if (!f)
				return ql_error_set(c->err, ENOMEM, "out of memory");
			for (const xmlNode *p = n->children; p; p = p->next) {
				if (!is(p, "page"))
					continue;
				_cleanup_xml_ xmlChar *size = prop(p, "size");
				_cleanup_xml_ xmlChar *unit = prop(p, "unit");
				struct ql_shown s1, s2;
				fprintf(f, "%s%s %s", ftell(f) ? ", " : " (", shown(&s1, size),
					unit ? shown(&s2, unit) : "KiB");
			}
			if (ftell(f))
				fputs(" pages)", f);
			if (fclose(f) != 0)
				return ql_error_set(c->err, ENOMEM, "out of memory");
			r = warn(
			    c, n,
			    "<hugepages>%s: the qemu command line's memory backend uses them; "
			    "qemu-launcher's `hugepages` key (default check) makes sure before the "
			    "start that enough are free, `hugepages: reserve` reserves the missing "
			    "ones",
			    sizes ? sizes : "");
		} else {
			r = warn(
			    c, n,
			    "<memoryBacking><%s> not imported: qemu-launcher has no equivalent",
			    n->name);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* libvirt's memory units (virScaleInteger): a size in bytes; false when it does not parse. */
static bool memory_bytes(const xmlNode *n, unsigned long long *ret)
{
	static const struct {
		const char *unit;
		unsigned long long scale;
	} units[] = {{"b", 1},		{"bytes", 1},	     {"KB", 1000ULL},
		     {"k", 1ULL << 10}, {"KiB", 1ULL << 10}, {"MB", 1000000ULL},
		     {"M", 1ULL << 20}, {"MiB", 1ULL << 20}, {"GB", 1000000000ULL},
		     {"G", 1ULL << 30}, {"GiB", 1ULL << 30}, {"TB", 1000000000000ULL},
		     {"T", 1ULL << 40}, {"TiB", 1ULL << 40}};
	_cleanup_xml_ xmlChar *v = X.content(n), *u = prop(n, "unit");
	const char *t = v ? (const char *)v : "";
	t += strspn(t, " \t\n");
	size_t digits = strspn(t, "0123456789");
	if (digits == 0 || digits > 18 || t[digits + strspn(t + digits, " \t\n")])
		return false;
	unsigned long long x = strtoull(t, NULL, 10);
	for (size_t i = 0; i < ELEMENTSOF(units); i++)
		if (streq(u ? (const char *)u : "KiB", units[i].unit)) {
			if (x > ULLONG_MAX / units[i].scale)
				return false;
			*ret = x * units[i].scale;
			return true;
		}
	return false;
}

/* Children of <domain> that the qemu command line carries (virsh domxml-to-native writes them
 * into it) or that only describe the domain: nothing to import, nothing lost. */
static const char *const carried[] = {"uuid",
				      "genid",
				      "title",
				      "description",
				      "metadata",
				      "memory",
				      "maxMemory",
				      "vcpus",
				      "iothreads",
				      "iothreadids",
				      "defaultiothread",
				      "os",
				      "features",
				      "cpu",
				      "clock",
				      "on_reboot",
				      "pm",
				      "devices",
				      "sysinfo",
				      "keywrap",
				      "launchSecurity",
				      "throttlegroups"};
/* ... and those read above */
static const char *const imported[] = {"name", "vcpu", "cputune", "memoryBacking", "numatune"};

#define QEMU_NS "http://libvirt.org/schemas/domain/qemu/1.0"

static bool in_list(const char *const *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (streq(t[i], name))
			return true;
	return false;
}

/* Every other child of <domain> is a warning: what libvirt does with it, the launcher does not
 * (nothing is dropped silently). */
static int other_settings(struct ctx *c, const xmlNode *root)
{
	for (const xmlNode *n = root->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		const char *name = (const char *)n->name;
		int r = 0;
		if (n->ns && n->ns->href && streq((const char *)n->ns->href, QEMU_NS))
			continue; /* qemu:commandline, qemu:capabilities, ...: in the argv */
		if (!n->ns && (in_list(carried, ELEMENTSOF(carried), name) ||
			       in_list(imported, ELEMENTSOF(imported), name)))
			continue;
		if (n->ns) {
			r = warn(c, n,
				 "<%s> not imported: qemu-launcher does not know this namespace",
				 name);
		} else if (streq(name, "currentMemory")) {
			const xmlNode *m = child(root, "memory");
			unsigned long long cur, max;
			if (m && memory_bytes(n, &cur) && memory_bytes(m, &max) && cur == max)
				continue;
			r = warn(
			    c, n,
			    "<currentMemory> not imported: libvirt sets the balloon to it after "
			    "qemu starts; qemu-launcher leaves the guest its <memory> (set the "
			    "balloon over QMP)");
		} else if (streq(name, "on_poweroff") || streq(name, "on_crash")) {
			_cleanup_xml_ xmlChar *v = X.content(n);
			struct ql_shown sh;
			if (v && streq((const char *)v, "destroy"))
				continue;
			r = warn(c, n,
				 "<%s>%s</%s> not imported: libvirt does that itself when qemu "
				 "stops; with qemu-launcher the VM ends with qemu",
				 name, shown(&sh, v), name);
		} else if (streq(name, "memtune")) {
			r = warn(
			    c, n,
			    "<memtune> not imported: qemu-launcher sets no memory cgroup limits "
			    "(hard_limit, soft_limit, swap_hard_limit, min_guarantee)");
		} else if (streq(name, "blkiotune")) {
			r = warn(c, n,
				 "<blkiotune> not imported: qemu-launcher sets no block I/O cgroup "
				 "weights or limits");
		} else if (streq(name, "seclabel")) {
			r = warn(c, n,
				 "<seclabel> not imported: qemu-launcher applies no SELinux or "
				 "AppArmor label to qemu");
		} else if (streq(name, "resource")) {
			r = warn(c, n,
				 "<resource> not imported: qemu-launcher places the VM in its own "
				 "cgroup, not in libvirt's partition");
		} else {
			/* perf, on_lockfailure, idmap, bootloader, newer elements ... */
			r = warn(c, n,
				 "<%s> not imported: qemu-launcher has no equivalent, and the qemu "
				 "command line does not carry it",
				 name);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int libvirt_xml_parse(const char *path, const char *text, size_t len, struct import_launcher *ret,
		      char **ret_name, char ***ret_warnings, struct ql_error *err)
{
	struct ctx c = {.path = path, .err = err};
	struct import_launcher l = {0};
	struct domain d = {0};
	/* the parser context outlives the document (freed after it) */
	_cleanup_(xml_ctxt_freep) xmlParserCtxt *ctxt = NULL;
	_cleanup_(xml_freep) xmlDoc *doc = NULL;
	_cleanup_free_ char *name = NULL;
	_cleanup_xml_ xmlChar *nm = NULL, *nv = NULL, *cur = NULL;
	struct ql_shown sh;
	int r = 0;

	if (len > LIBVIRT_XML_MAX_BYTES || len > INT32_MAX) {
		r = ql_error_set(err, EFBIG, "%s: larger than %d bytes", path,
				 LIBVIRT_XML_MAX_BYTES);
		goto out;
	}
	/* no network, no external entities (XXE) or DTDs loaded: a domain XML needs none. Internal
	 * entities are expanded (libxml2 refuses loops and runaway expansion), as libvirt does. */
	if ((r = xml_load(err)) < 0)
		goto out;
	if (!(ctxt = X.new_ctxt())) {
		r = ql_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	ctxt->sax->startElementNs = start_element;
	doc = X.read_memory(ctxt, text, (int)len, path, NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
				XML_PARSE_BIG_LINES);
	if (!doc) {
		const xmlError *e = X.last_error();
		_cleanup_free_ char *msg = strdup(e && e->message ? e->message : "not XML\n");
		if (msg)
			msg[strcspn(msg, "\n")] = '\0';
		/* libxml2 keeps the column in int2 */
		r = ql_error_set(err, EINVAL, "%s:%d:%d: %s", path, e ? e->line : 0,
				 e ? e->int2 : 0, msg ? msg : "not XML");
		goto out;
	}
	const xmlNode *root = X.root(doc);
	if (!root || !is(root, "domain")) {
		r = fail(&c, root,
			 "not a libvirt domain XML (the root element is <%s>, not <domain>)",
			 root ? (const char *)root->name : "");
		goto out;
	}

	const xmlNode *n = child(root, "name");
	nm = n ? X.content(n) : NULL;
	if (!nm || !*nm) {
		r = fail(&c, root, "the domain has no <name>");
		goto out;
	}
	if (!(name = strdup((const char *)nm)) ||
	    asprintf(&l.source, "libvirt domain `%s`", ql_show(&sh, name)) < 0) {
		l.source = NULL;
		r = ql_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	struct ql_error e = {0};
	if (config_check_name(name, &e) < 0) {
		r = warn(&c, n,
			 "the domain name `%s` is not a qemu-launcher NAME: save the "
			 "definition as another NAME.yml",
			 ql_show(&sh, name));
		ql_error_clear(&e);
		if (r < 0)
			goto out;
	}

	n = child(root, "vcpu");
	nv = n ? X.content(n) : NULL;
	if (!n || !parse_uint(nv, MAX_VCPUS, &d.n_vcpus) || d.n_vcpus == 0) {
		r = fail(&c, n ? n : root, "the domain needs <vcpu> with a number of vCPUs (1..%d)",
			 MAX_VCPUS);
		goto out;
	}
	cur = prop(n, "current");
	unsigned current;
	d.n_current = d.n_vcpus;
	if (cur && parse_uint(cur, d.n_vcpus, &current) && current > 0 && current < d.n_vcpus)
		d.n_current = current;
	if (d.n_current < d.n_vcpus &&
	    (r = warn(&c, n,
		      "<vcpu current='%u'>%u</vcpu>: the vCPUs beyond %u are hot-pluggable in "
		      "libvirt; the qemu command line decides how many qemu starts",
		      d.n_current, d.n_vcpus, d.n_current)) < 0)
		goto out;
	if (!(d.pin = malloc(d.n_vcpus * sizeof(*d.pin))) ||
	    !(d.pin_node = calloc(d.n_vcpus, sizeof(*d.pin_node)))) {
		r = ql_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < d.n_vcpus; i++)
		d.pin[i] = -1;

	const xmlNode *ct = child(root, "cputune");
	if (ct && (r = cputune(&c, &d, &l, ct)) < 0)
		goto out;
	if ((r = vcpu_placement(&c, &d, root, n)) < 0)
		goto out;
	/* pins first: the scheduler's reach depends on them */
	if ((r = map_pins(&c, &d, &l)) < 0 || (r = map_sched(&c, &d, &l)) < 0 ||
	    (r = map_emulator(&c, &d, &l)) < 0 || (r = map_iothreads(&c, &d, &l)) < 0 ||
	    (r = map_io_sched(&c, &d, &l)) < 0)
		goto out;

	const xmlNode *mb = child(root, "memoryBacking");
	if (mb && (r = memory_backing(&c, &l, mb)) < 0)
		goto out;
	if ((r = other_settings(&c, root)) < 0)
		goto out;
	const xmlNode *nt = child(root, "numatune");
	if (nt && (r = warn(&c, nt,
			    "<numatune> not imported: qemu-launcher does not bind memory "
			    "to host NUMA nodes (the qemu command line's memory backends "
			    "keep their host-nodes)")) < 0)
		goto out;

	if (!c.warnings && !(c.warnings = calloc(1, sizeof(char *)))) {
		r = ql_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	*ret = l;
	l = (struct import_launcher){0};
	*ret_name = TAKE_PTR(name);
	*ret_warnings = TAKE_PTR(c.warnings);
out:
	domain_done(&d);
	import_launcher_done(&l);
	strv_free(c.warnings);
	return r;
}

int libvirt_xml_load(const char *path, struct import_launcher *ret, char **ret_name,
		     char ***ret_warnings, struct ql_error *err)
{
	/* non-blocking: a FIFO is refused below instead of waiting for a writer */
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return ql_error_set_errno(err, errno, "opening %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ql_error_set_errno(err, errno, "%s", path);
	if (!S_ISREG(st.st_mode))
		return ql_error_set(err, EINVAL, "%s is not a regular file", path);
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = read_small_fd(fd, LIBVIRT_XML_MAX_BYTES, &buf, &len);
	if (r == -EFBIG)
		return ql_error_set(err, EFBIG, "%s: larger than %d bytes", path,
				    LIBVIRT_XML_MAX_BYTES);
	if (r < 0)
		return ql_error_set_errno(err, -r, "reading %s", path);
	return libvirt_xml_parse(path, buf, len, ret, ret_name, ret_warnings, err);
}
