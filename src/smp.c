/* The guest CPU topology of a definition's -smp (qemu 7.2's parsing and defaults). */
#include "smp.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"

static unsigned smp_number(const char *s)
{
	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 6)
		return 0;
	return (unsigned)strtoul(s, NULL, 10);
}

/* Reads one -smp value into the counts (0: not given); a later -smp's keys override an earlier
 * one's, as qemu merges them. */
static void smp_read(const struct qemu_option *smp, unsigned *cpus, unsigned *maxcpus,
		     unsigned *sockets, unsigned *dies, unsigned *clusters, unsigned *cores,
		     unsigned *threads, bool *ok)
{
	_cleanup_free_ char *v = cmdline_option_value(smp);
	if (!v) {
		*ok = false;
		return;
	}
	for (char *save = NULL, *p = strtok_r(v, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(p, '=');
		if (!eq) {
			*cpus = smp_number(p);
			continue;
		}
		*eq = '\0';
		unsigned x = smp_number(eq + 1);
		unsigned *to = streq(p, "cpus")	      ? cpus
			       : streq(p, "maxcpus")  ? maxcpus
			       : streq(p, "sockets")  ? sockets
			       : streq(p, "dies")     ? dies
			       : streq(p, "clusters") ? clusters
			       : streq(p, "cores")    ? cores
			       : streq(p, "threads")  ? threads
						      : NULL;
		if (to)
			*to = x;
	}
}

/* *ret = a * b * c * d; false when it does not fit (each factor has at most 6 digits, so four of
 * them can overflow even an unsigned long). */
static bool product_of(unsigned a, unsigned b, unsigned c, unsigned d, unsigned long *ret)
{
	return !__builtin_mul_overflow((unsigned long)a * b, (unsigned long)c * d, ret);
}

/* maxcpus shared out over a * b * c * d; 0 when that product is 0 or above maxcpus (then qemu
 * refuses the topology, and the division is never by 0 or a product wrapped to 0). */
static unsigned share(unsigned maxcpus, unsigned a, unsigned b, unsigned c, unsigned d)
{
	unsigned long p;
	if (!product_of(a, b, c, d, &p) || p == 0 || p > maxcpus)
		return 0;
	return maxcpus / (unsigned)p;
}

/* qemu 7.2's machine_parse_smp_config for machine types >= 6.2 ("prefer cores"). */
struct smp_topology smp_topology_of(const struct definition *d)
{
	unsigned cpus = 0, maxcpus = 0, sockets = 0, dies = 0, cores = 0, threads = 0, clusters = 0;
	bool any = false, ok = true;
	for (size_t i = 0; i < d->n_options; i++)
		if (qemu_option_is(&d->options[i], "smp") && d->options[i].has_value) {
			smp_read(&d->options[i], &cpus, &maxcpus, &sockets, &dies, &clusters,
				 &cores, &threads, &ok);
			any = true;
		}
	if (!any)
		return (struct smp_topology){1, 1, 1, 1, 1, true};
	if (!ok)
		return (struct smp_topology){0};
	dies = dies ? dies : 1;
	clusters = clusters ? clusters : 1;
	if (!cpus && !maxcpus) {
		sockets = sockets ? sockets : 1;
		cores = cores ? cores : 1;
		threads = threads ? threads : 1;
	} else {
		maxcpus = maxcpus ? maxcpus : cpus;
		if (!cores) {
			sockets = sockets ? sockets : 1;
			threads = threads ? threads : 1;
			cores = share(maxcpus, sockets, dies, clusters, threads);
		} else if (!sockets) {
			threads = threads ? threads : 1;
			sockets = share(maxcpus, dies, clusters, cores, threads);
		}
		/* omitted threads are worked out last */
		if (!threads && sockets)
			threads = share(maxcpus, sockets, dies, clusters, cores);
	}
	/* what qemu refuses, or this parser does not follow (clusters) */
	unsigned long product;
	if (clusters != 1 || !product_of(sockets, dies, cores, threads, &product) || !product ||
	    product > UINT_MAX)
		return (struct smp_topology){0};
	maxcpus = maxcpus ? maxcpus : (unsigned)product;
	cpus = cpus ? cpus : maxcpus;
	if (product != maxcpus || cpus > maxcpus)
		return (struct smp_topology){0};
	return (struct smp_topology){cpus, sockets, dies, cores, threads, true};
}

long smp_cpu_index(const struct smp_topology *t, const struct vcpu_pin *pin)
{
	if (pin->index >= 0)
		return pin->index;
	/* outside the topology, the formula would alias another vCPU's index */
	if (!t->known || pin->socket < 0 || (unsigned)pin->socket >= t->sockets || pin->core < 0 ||
	    (unsigned long)pin->core >= (unsigned long)t->dies * t->cores || pin->thread < 0 ||
	    (unsigned)pin->thread >= t->threads)
		return -1;
	return ((long)pin->socket * t->dies * t->cores + pin->core) * t->threads + pin->thread;
}
