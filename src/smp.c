/* The guest CPU topology of a definition's -smp (qemu 7.2's parsing and defaults). */
#include "smp.h"

#include <stdlib.h>
#include <string.h>

#include "cmdline.h"

static unsigned smp_number(const char *s)
{
	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 6)
		return 0;
	return (unsigned)strtoul(s, NULL, 10);
}

/* Missing sockets default to 1, missing cores take the rest ("prefer cores", qemu >= 6.2). */
struct smp_topology smp_topology_of(const struct definition *d)
{
	const struct qemu_option *smp = NULL;
	for (size_t i = 0; i < d->n_options; i++)
		if (qemu_option_is(&d->options[i], "smp") && d->options[i].has_value)
			smp = &d->options[i];
	if (!smp)
		return (struct smp_topology){1, 1, 1, 1, 1, true};
	_cleanup_free_ char *v = cmdline_option_value(smp);
	if (!v)
		return (struct smp_topology){0};
	unsigned cpus = 0, maxcpus = 0, sockets = 0, dies = 0, cores = 0, threads = 0, clusters = 0;
	for (char *save = NULL, *p = strtok_r(v, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(p, '=');
		if (!eq) {
			cpus = smp_number(p);
			continue;
		}
		*eq = '\0';
		unsigned x = smp_number(eq + 1);
		if (streq(p, "cpus"))
			cpus = x;
		else if (streq(p, "maxcpus"))
			maxcpus = x;
		else if (streq(p, "sockets"))
			sockets = x;
		else if (streq(p, "dies"))
			dies = x;
		else if (streq(p, "clusters"))
			clusters = x;
		else if (streq(p, "cores"))
			cores = x;
		else if (streq(p, "threads"))
			threads = x;
	}
	dies = dies ? dies : 1;
	clusters = clusters ? clusters : 1;
	threads = threads ? threads : 1;
	maxcpus = maxcpus ? maxcpus : cpus;
	if (!maxcpus) {
		sockets = sockets ? sockets : 1;
		cores = cores ? cores : 1;
	} else if (!cores) {
		sockets = sockets ? sockets : 1;
		cores = maxcpus / (sockets * dies * clusters * threads);
	} else if (!sockets) {
		sockets = maxcpus / (dies * clusters * cores * threads);
	}
	if (!sockets || !cores || clusters != 1)
		return (struct smp_topology){0};
	if (!cpus)
		cpus = sockets * dies * cores * threads;
	return (struct smp_topology){cpus, sockets, dies, cores, threads, true};
}

long smp_cpu_index(const struct smp_topology *t, const struct vcpu_pin *pin)
{
	if (pin->index >= 0)
		return pin->index;
	if (!t->known)
		return -1;
	return ((long)pin->socket * t->dies * t->cores + pin->core) * t->threads + pin->thread;
}
