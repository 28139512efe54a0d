/* vCPU pinning and scheduling of one VM: checks the definition's pins against the host, maps
 * them onto the threads qemu reports, and drives the isolation backend and the scheduler. */
#include "pinning.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "macro.h"
#include "proc.h"
#include "sched_core.h"
#include "smp.h"
#include "vcpu_sched.h"

struct sched_change {
	pid_t tid;
	struct sched_saved saved;
};

/* Each placed thread is held (proc_thread_hold: a thread pidfd, or its start time) before it is
 * moved and re-prioritised and checked after, so a thread that ended and whose id another
 * process got in between (a stopped launcher widens that gap) is caught, never left moved or
 * real-time. With pidfds the check is one poll for all threads instead of reading /proc twice
 * per thread (7 ms for 64 vCPUs on the bench host). */
struct thread_holds {
	struct proc_thread_hold *v;
	size_t n;
};

struct pinning {
	char *def_path;
	struct vcpu_pin *pins;
	size_t n_pins;
	bool flat;
	unsigned cores_per_die;	 /* -smp's cores (a die's); 0 when not known */
	struct smp_topology smp; /* the definition's -smp, for the pins' cpu-indexes */
	struct sched_params sched;
	struct cpu_list *emulator;
	struct ql_mark emulator_mark, pins_mark; /* for the host's refusals of them */
	const struct ql_logger *log;
	struct isolation *iso;	       /* NULL when nothing is pinned (scheduling only) */
	const struct iothread_pin *io; /* the definition's iothread_pinning (borrowed) */
	size_t n_io;
	enum ql_core_sched core_sched; /* OFF also when `auto` found no core scheduling */
	struct sched_params io_sched;  /* for the pinned I/O threads; policy UNSET: none */

	pid_t qemu_pid;
	struct sched_change *changes;
	size_t n_changes;
	bool applied;
	/* From pinning_apply until the guest runs: closing 64 pidfds took 0.15 ms, after cont
	 * rather than before it (pinning_guest_started) */
	struct thread_holds holds;
	/* pinning_apply_early: the vCPU threads found by their names so far (thread_id 0: not yet),
	 * the threads known to be no vCPU's, and, once placed, the vCPUs it placed (n_named) */
	struct qmp_cpu *named;
	size_t n_named;
	pid_t *others;
	size_t n_others;
	bool placed_early;
};

static void describe_pin(const struct vcpu_pin *pin, char *buf, size_t size)
{
	if (pin->index >= 0)
		snprintf(buf, size, "vCPU %d", pin->index);
	else
		snprintf(buf, size, "vCPU (socket %d core %d thread %d)", pin->socket, pin->core,
			 pin->thread);
}

static int pin_error(const struct pinning *p, const struct vcpu_pin *pin, int errnum,
		     const char *msg, struct ql_error *err)
{
	return ql_error_set(err, errnum, "%s:%u:%u: %s", p->def_path, pin->mark.line,
			    pin->mark.column, msg);
}

/* A nested pin outside the -smp topology names a vCPU qemu does not have (an index computed
 * from it would be another vCPU's): refused before anything starts. An -smp this parser does not
 * follow leaves it to qemu's answer. */
static int check_nested_in_smp(const struct pinning *p, struct ql_error *err)
{
	if (!p->smp.known)
		return 0;
	for (size_t i = 0; i < p->n_pins; i++) {
		const struct vcpu_pin *pin = &p->pins[i];
		if (pin->index >= 0 || smp_cpu_index(&p->smp, pin) >= 0)
			continue;
		char name[64], msg[192];
		describe_pin(pin, name, sizeof(name));
		snprintf(msg, sizeof(msg),
			 "%s is outside -smp's %u socket%s x %u core%s x %u thread%s", name,
			 p->smp.sockets, p->smp.sockets > 1 ? "s" : "", p->smp.dies * p->smp.cores,
			 p->smp.dies * p->smp.cores > 1 ? "s" : "", p->smp.threads,
			 p->smp.threads > 1 ? "s" : "");
		return pin_error(p, pin, EINVAL, msg, err);
	}
	return 0;
}

/* One host CPU must exist, be online and be usable by this launcher: a pin's (role NULL: named
 * after the pin), the emulator's or an I/O thread's (at mark). The message is only made for a
 * CPU that fails: made for each of 64 pins, it was 0.5 million instructions before qemu's
 * spawn. */
static int check_host_cpu(const struct pinning *p, const struct vcpu_pin *pin, unsigned cpu,
			  const char *role, struct ql_mark mark, const struct cpu_list *possible,
			  const struct cpu_list *online, const struct cpu_list *usable,
			  struct ql_error *err)
{
	const char *why;
	const struct cpu_list *shown;
	if (!cpu_list_has(possible, cpu))
		why = "does not exist (this host has CPUs ", shown = possible;
	else if (!cpu_list_has(online, cpu))
		why = "is offline (online CPUs: ", shown = online;
	else if (usable && !cpu_list_has(usable, cpu))
		why = "is outside the CPUs this launcher may use (", shown = usable;
	else
		return 0;
	char name[64], msg[512];
	if (!role) {
		describe_pin(pin, name, sizeof(name));
		role = name;
	}
	_cleanup_free_ char *list = cpu_list_format(shown);
	snprintf(msg, sizeof(msg), "%s: host CPU %u %s%s)", role, cpu, why, list ? list : "?");
	if (pin)
		return pin_error(p, pin, EINVAL, msg, err);
	return ql_error_set(err, EINVAL, "%s:%u:%u: %s", p->def_path, mark.line, mark.column, msg);
}

/* The SMT, L3 and NUMA advice of the specification's "important note" is topology_check's, shown
 * by --check: a definition's shape is judged once, not again at every start. */
static void warn_topology(const struct pinning *p)
{
	/* two vCPUs on one host CPU */
	for (size_t i = 0; i < p->n_pins; i++)
		for (size_t j = 0; j < i; j++)
			if (p->pins[i].host_cpu == p->pins[j].host_cpu) {
				char a[64], b[64];
				describe_pin(&p->pins[i], a, sizeof(a));
				describe_pin(&p->pins[j], b, sizeof(b));
				ql_log(p->log, QL_LOG_WARNING,
				       "%s:%u:%u: %s shares host CPU %u with %s", p->def_path,
				       p->pins[i].mark.line, p->pins[i].mark.column, a,
				       p->pins[i].host_cpu, b);
				break;
			}
}

/* kernel.sched_rt_period_us, -1 when unreadable. */
static long rt_period_us(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/sys/kernel/sched_rt_period_us", "re");
	long v = -1;
	if (!f || fscanf(f, "%ld", &v) != 1)
		return -1;
	return v;
}

static void warn_realtime(const struct pinning *p)
{
	if (!sched_policy_is_realtime(p->sched.policy))
		return;
	const char *pol = ql_sched_policy_name(p->sched.policy);
	long rt = -2;
	bool known = sched_rt_runtime_us(&rt);
	char throttle[160];
	if (known && rt >= 0)
		snprintf(throttle, sizeof(throttle),
			 "the kernel throttles real-time threads to kernel.sched_rt_runtime_us = "
			 "%ld us per second",
			 rt);
	else if (known && rt == -1)
		snprintf(throttle, sizeof(throttle),
			 "real-time throttling is off (kernel.sched_rt_runtime_us = -1): nothing "
			 "keeps them from taking their CPUs whole");
	else
		snprintf(
		    throttle, sizeof(throttle),
		    "real-time throttling (kernel.sched_rt_runtime_us) is all that protects them");
	if (p->n_pins == 0) {
		ql_log(p->log, QL_LOG_WARNING,
		       "vCPUs get %s without pinning: they can starve other tasks on any CPU; %s",
		       pol, throttle);
		return;
	}
	for (size_t i = 0; i < p->n_pins; i++)
		for (size_t j = 0; j < i; j++)
			if (p->pins[i].host_cpu == p->pins[j].host_cpu) {
				ql_log(p->log, QL_LOG_WARNING,
				       "%s vCPUs share host CPU %u: they take turns only when one "
				       "blocks, and %s",
				       pol, p->pins[i].host_cpu, throttle);
				i = p->n_pins - 1;
				break;
			}
	if (p->iso && !isolation_isolates(p->iso)) {
		/* What the throttling costs the guest: whenever an ordinary task wants the vCPU's
		 * CPU, the kernel (RT throttling, or the fair server that replaced it) gives it
		 * period - runtime of every period, 50 ms per second by default: a stall the guest
		 * sees. Only cpuset isolation keeps ordinary tasks off the CPU. Warned, not
		 * refused: a host with nothing else runnable on those CPUs is a valid choice. */
		long period = rt_period_us();
		if (known && rt >= 0 && period > rt)
			ql_log(
			    p->log, QL_LOG_WARNING,
			    "%s vCPUs on CPUs where ordinary tasks may still run (no isolation): "
			    "whenever one wants the CPU, the kernel's real-time throttling "
			    "(kernel.sched_rt_runtime_us = %ld of sched_rt_period_us = %ld) gives "
			    "it "
			    "up to %ld ms per period, and the guest stalls for up to %ld ms at a "
			    "time; isolate the CPUs (isolate_cpus: true, a cpuset backend) to "
			    "avoid "
			    "these gaps",
			    pol, rt, period, (period - rt) / 1000, (period - rt) / 1000);
		else
			ql_log(p->log, QL_LOG_WARNING,
			       "%s vCPUs on CPUs that are not isolated: other tasks there can "
			       "starve; %s",
			       pol, throttle);
	}
}

/* Every pin's host CPU against the host (usable == NULL: existence and online only). */
static int check_pins(const struct pinning *p, const struct cpu_list *possible,
		      const struct cpu_list *online, const struct cpu_list *usable,
		      struct ql_error *err)
{
	for (size_t i = 0; i < p->n_pins; i++) {
		int r = check_host_cpu(p, &p->pins[i], p->pins[i].host_cpu, NULL, p->pins[i].mark,
				       possible, online, usable, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Every pinned vCPU's, emulator's and I/O thread's host CPU exists, is online and usable; the
 * backend is opened when anything is pinned; the pool keeps a CPU. */
static int check_host(struct pinning *p, const struct isolation_config *cfg, struct ql_error *err)
{
	_cleanup_cpu_list_ struct cpu_list *possible = NULL, *online = NULL, *usable = NULL;
	int r = cpu_list_read_file("/sys/devices/system/cpu/possible", &possible, err);
	if (r == 0)
		r = cpu_list_read_file("/sys/devices/system/cpu/online", &online, err);
	/* existence first: a typo'd CPU number is the likelier mistake than the backend */
	if (r == 0)
		r = check_pins(p, possible, online, NULL, err);
	if (r == 0 && (p->n_pins || p->emulator))
		r = isolation_open(cfg, &p->iso, err);
	if (r == 0 && p->iso)
		r = isolation_usable_cpus(p->iso, &usable, err);
	if (r == 0)
		r = check_pins(p, possible, online, usable, err);
	for (int c = p->emulator ? cpu_list_next(p->emulator, -1) : -1; r == 0 && c >= 0;
	     c = cpu_list_next(p->emulator, c))
		r = check_host_cpu(p, NULL, (unsigned)c, "emulator_pinning", p->emulator_mark,
				   possible, online, usable, err);
	for (size_t i = 0; r == 0 && i < p->n_io; i++) {
		const struct cpu_list *l = p->io[i].cpus;
		for (int c = cpu_list_next(l, -1); r == 0 && c >= 0; c = cpu_list_next(l, c))
			r = check_host_cpu(p, NULL, (unsigned)c, "iothread_pinning", p->io[i].mark,
					   possible, online, usable, err);
	}
	if (r < 0 || !p->iso || !isolation_isolates(p->iso))
		return r;
	_cleanup_cpu_list_ struct cpu_list *left = cpu_list_dup(usable);
	if (!left)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < p->n_pins; i++)
		cpu_list_remove(left, p->pins[i].host_cpu);
	if (cpu_list_is_empty(left))
		return ql_error_set(
		    err, EINVAL,
		    "%s:%u:%u: vcpu_pinning uses every host CPU this launcher may use; keep "
		    "at least one for the other tasks",
		    p->def_path, p->pins_mark.line, p->pins_mark.column);
	return 0;
}

/* I/O threads run with qemu's other threads (pool or emulator set): they must be created by the
 * definition, stay off the vCPUs' CPUs and inside emulator_pinning. */
static int check_iothreads(const struct pinning *p, const struct definition *d,
			   struct ql_error *err)
{
	for (size_t i = 0; i < p->n_io; i++) {
		const struct iothread_pin *io = &p->io[i];
		struct ql_shown s;
		char msg[512];
		const char *why = NULL;
		if (!cmdline_creates_object(d, "iothread", io->id))
			why = "no `- object: [iothread, id: ...]` in `qemu:` creates it";
		for (size_t k = 0; !why && k < p->n_pins; k++)
			if (cpu_list_has(io->cpus, p->pins[k].host_cpu))
				why = "its CPUs include a vCPU's host CPU (I/O threads belong off "
				      "the "
				      "vCPUs)";
		if (!why && p->emulator && !cpu_list_is_subset(io->cpus, p->emulator))
			why = "its CPUs are outside emulator_pinning (I/O threads live with qemu's "
			      "other threads)";
		if (!why)
			continue;
		snprintf(msg, sizeof(msg), "iothread_pinning: I/O thread `%s`: %s",
			 ql_show(&s, io->id), why);
		return ql_error_set(err, EINVAL, "%s:%u:%u: %s", p->def_path, io->mark.line,
				    io->mark.column, msg);
	}
	return 0;
}

/* core_scheduling needs a kernel with PR_SCHED_CORE: required for vm/vcpu, wished for auto. */
static int check_core_sched(struct pinning *p, const struct definition *d, struct ql_error *err)
{
	if (p->core_sched == QL_CORE_SCHED_OFF)
		return 0;
	struct ql_error e = {0};
	int r = sched_core_available(&e);
	if (r == 0) {
		ql_error_clear(&e);
		return 0;
	}
	if (p->core_sched == QL_CORE_SCHED_AUTO) {
		ql_log(p->log, QL_LOG_WARNING,
		       "%s:%u:%u: core_scheduling: auto: %s; vCPUs may share SMT cores with other "
		       "tasks",
		       p->def_path, d->core_sched_mark.line, d->core_sched_mark.column,
		       e.msg ? e.msg : "unavailable");
		p->core_sched = QL_CORE_SCHED_OFF;
		ql_error_clear(&e);
		return 0;
	}
	r = ql_error_set(err, EOPNOTSUPP, "%s:%u:%u: core_scheduling: %s", p->def_path,
			 d->core_sched_mark.line, d->core_sched_mark.column,
			 e.msg ? e.msg : "unavailable");
	ql_error_clear(&e);
	return r;
}

int pinning_prepare(const struct definition *d, const struct isolation_config *cfg,
		    struct pinning **ret, struct ql_error *err)
{
	struct pinning *p = calloc(1, sizeof(*p));
	if (!p)
		return ql_error_set(err, ENOMEM, "out of memory");
	_cleanup_pinning_ struct pinning *guard = p;
	p->log = cfg->log;
	p->flat = d->pins_flat;
	p->smp = smp_topology_of(d);
	p->cores_per_die = p->smp.known ? p->smp.cores : 0;
	p->io = d->iothread_pins;
	p->n_io = d->n_iothread_pins;
	p->core_sched = d->core_sched;
	p->io_sched = (struct sched_params){.policy = d->iothread_scheduler,
					    .priority = d->iothread_priority};
	sched_params_from_definition(d, &p->sched);
	if (!(p->def_path = strdup(d->path ? d->path : "(definition)")))
		return ql_error_set(err, ENOMEM, "out of memory");
	if (d->n_pins) {
		p->pins = calloc(d->n_pins, sizeof(*p->pins));
		if (!p->pins)
			return ql_error_set(err, ENOMEM, "out of memory");
		memcpy(p->pins, d->pins, d->n_pins * sizeof(*p->pins));
		p->n_pins = d->n_pins;
	}
	if (d->emulator_cpus && !(p->emulator = cpu_list_dup(d->emulator_cpus)))
		return ql_error_set(err, ENOMEM, "out of memory");
	p->emulator_mark = d->emulator_mark;
	p->pins_mark = d->pins_mark;
	int r = check_nested_in_smp(p, err);
	if (r == 0 && (p->n_pins || p->emulator || p->n_io))
		r = check_host(p, cfg, err);
	if (r == 0)
		r = check_iothreads(p, d, err);
	if (r == 0)
		r = check_core_sched(p, d, err);
	if (r < 0)
		return r;
	warn_topology(p);
	warn_realtime(p);
	*ret = TAKE_PTR(guard);
	return 0;
}

/* The pins as placements for the isolation backend before qemu runs: host CPUs and cpu-indexes
 * (-1 where -smp cannot be followed), no thread ids yet. NULL without memory. */
static struct vcpu_placement *pinned_placements(const struct pinning *p)
{
	struct vcpu_placement *v = calloc(p->n_pins ? p->n_pins : 1, sizeof(*v));
	for (size_t i = 0; v && i < p->n_pins; i++)
		v[i] = (struct vcpu_placement){
		    .cpu_index = (int)smp_cpu_index(&p->smp, &p->pins[i]),
		    .host_cpu = p->pins[i].host_cpu,
		};
	return v;
}

char *pinning_describe(struct pinning *p)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	if (p->iso)
		fprintf(f, "CPU isolation: %s\n", isolation_name(p->iso));
	for (size_t i = 0; i < p->n_pins; i++) {
		char what[64];
		describe_pin(&p->pins[i], what, sizeof(what));
		fprintf(f, "%s -> host CPU %u\n", what, p->pins[i].host_cpu);
	}
	if (p->emulator) {
		_cleanup_free_ char *t = cpu_list_format(p->emulator);
		fprintf(f, "qemu's other threads -> host CPUs %s\n", t ? t : "?");
	}
	for (size_t i = 0; i < p->n_io; i++) {
		_cleanup_free_ char *t = cpu_list_format(p->io[i].cpus);
		struct ql_shown sh;
		fprintf(f, "I/O thread %s -> host CPUs %s", ql_show(&sh, p->io[i].id), t ? t : "?");
		if (p->io_sched.policy != QL_SCHED_UNSET)
			fprintf(f, ", scheduler %s%s%.0d", ql_sched_policy_name(p->io_sched.policy),
				p->io_sched.priority ? " priority " : "", p->io_sched.priority);
		fputc('\n', f);
	}
	if (p->core_sched != QL_CORE_SCHED_OFF)
		fprintf(f, "core scheduling: %s\n",
			p->core_sched == QL_CORE_SCHED_VCPU
			    ? "a cookie per vCPU (a core runs one vCPU at a time)"
			    : "one cookie for the VM (its vCPUs share cores only with each other)");
	if (p->sched.policy != QL_SCHED_UNSET) {
		fprintf(f, "scheduler %s", ql_sched_policy_name(p->sched.policy));
		if (sched_policy_is_realtime(p->sched.policy))
			fprintf(f, " priority %d", p->sched.priority);
		if (p->sched.policy == QL_SCHED_DEADLINE)
			fprintf(f, " runtime %llu deadline %llu period %llu ns",
				(unsigned long long)p->sched.runtime,
				(unsigned long long)p->sched.deadline,
				(unsigned long long)p->sched.period);
		fprintf(f, " for %s vCPU threads (reset on fork)\n",
			p->n_pins ? "the pinned" : "all");
	}
	if (p->iso) {
		struct vcpu_placement *v = pinned_placements(p);
		if (v) {
			struct isolation_plan plan = {
			    .vcpus = v,
			    .n_vcpus = p->n_pins,
			    .emulator_cpus = p->emulator,
			};
			_cleanup_free_ char *d = isolation_describe(p->iso, &plan);
			if (d)
				fputs(d, f);
			free(v);
		}
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* A nested pin's core counts within its socket: qemu's core-id counts within a die, so die d's
 * core c is the pin's core d * cores + c (-1 when the cores of a die are not known). */
static int core_in_socket(const struct pinning *p, const struct qmp_cpu *c)
{
	if (c->die <= 0)
		return c->core;
	return p->cores_per_die ? c->die * (int)p->cores_per_die + c->core : -1;
}

static const struct qmp_cpu *find_cpu(const struct pinning *p, const struct vcpu_pin *pin,
				      const struct qmp_cpu *cpus, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p->flat ? cpus[i].cpu_index == pin->index
			    : (cpus[i].socket == pin->socket &&
			       core_in_socket(p, &cpus[i]) == pin->core &&
			       cpus[i].thread == pin->thread))
			return &cpus[i];
	}
	return NULL;
}

static void undo_sched(struct pinning *p)
{
	for (size_t i = p->n_changes; i-- > 0;) {
		struct sched_change *c = &p->changes[i];
		if (!proc_thread_belongs_to(p->qemu_pid, c->tid))
			continue;
		struct ql_error e = {0};
		if (sched_restore(c->tid, &c->saved, &e) < 0)
			ql_log(p->log, QL_LOG_WARNING, "%s",
			       e.msg ? e.msg : "restoring scheduling");
		else
			ql_log(p->log, QL_LOG_DEBUG, "thread %d: scheduling policy restored",
			       (int)c->tid);
		ql_error_clear(&e);
	}
	p->n_changes = 0;
}

/* Saves tid's scheduling (for the undo), then applies sp; `what` names the thread. */
static int schedule_thread_as(struct pinning *p, pid_t tid, const struct sched_params *sp,
			      const char *what, struct ql_error *err)
{
	for (size_t i = 0; i < p->n_changes; i++)
		if (p->changes[i].tid == tid)
			return 0; /* one thread running several vCPUs */
	struct sched_change c = {.tid = tid};
	int r = sched_save(tid, &c.saved, err);
	if (r == 0)
		r = sched_apply(tid, sp, what, err);
	if (r < 0)
		return r;
	p->changes[p->n_changes++] = c;
	if (sched_policy_is_realtime(sp->policy))
		ql_log(p->log, QL_LOG_DEBUG, "%s thread %d: scheduler %s priority %d", what,
		       (int)tid, ql_sched_policy_name(sp->policy), sp->priority);
	else
		ql_log(p->log, QL_LOG_DEBUG, "%s thread %d: scheduler %s", what, (int)tid,
		       ql_sched_policy_name(sp->policy));
	return 0;
}

static int schedule_thread(struct pinning *p, pid_t tid, int cpu_index, struct ql_error *err)
{
	char what[32];
	snprintf(what, sizeof(what), "vCPU %d", cpu_index);
	return schedule_thread_as(p, tid, &p->sched, what, err);
}

/* Pinned vCPUs need threads of their own (whether each is qemu's is asked once all are held,
 * hold_threads). */
static int check_threads(const struct pinning *p, const struct qmp_cpu *cpus, size_t n_cpus,
			 struct ql_error *err)
{
	if (!p->n_pins)
		return 0;
	for (size_t i = 0; i < n_cpus; i++)
		for (size_t j = 0; j < i; j++)
			if (cpus[i].thread_id == cpus[j].thread_id)
				return ql_error_set(
				    err, EINVAL,
				    "qemu runs vCPUs %d and %d on one thread (%d), so they cannot "
				    "be pinned separately (TCG with thread=single?)",
				    cpus[j].cpu_index, cpus[i].cpu_index, (int)cpus[i].thread_id);
	return 0;
}

/* The definition's pins onto the threads qemu reports: one placement per pin. */
static int map_pins(const struct pinning *p, const struct qmp_cpu *cpus, size_t n_cpus,
		    struct vcpu_placement *placements, struct ql_error *err)
{
	for (size_t i = 0; i < p->n_pins; i++) {
		const struct vcpu_pin *pin = &p->pins[i];
		const struct qmp_cpu *c = find_cpu(p, pin, cpus, n_cpus);
		char what[64], msg[256];
		/* named only for a message: this loop runs between qemu's answer and `cont` */
		if (!c) {
			describe_pin(pin, what, sizeof(what));
			snprintf(
			    msg, sizeof(msg),
			    "vcpu_pinning names %s, but qemu has no such vCPU (it has %zu vCPUs)",
			    what, n_cpus);
			return pin_error(p, pin, ENOENT, msg, err);
		}
		for (size_t j = 0; j < i; j++)
			if (placements[j].tid == c->thread_id) {
				describe_pin(pin, what, sizeof(what));
				snprintf(msg, sizeof(msg), "%s is pinned twice", what);
				return pin_error(p, pin, EINVAL, msg, err);
			}
		placements[i] = (struct vcpu_placement){
		    .cpu_index = c->cpu_index,
		    .tid = c->thread_id,
		    .host_cpu = pin->host_cpu,
		};
		if (c->socket >= 0)
			ql_log(p->log, QL_LOG_DEBUG,
			       "vCPU %d (socket %d core %d thread %d) thread %d -> host CPU %u",
			       c->cpu_index, c->socket, core_in_socket(p, c), c->thread,
			       (int)c->thread_id, pin->host_cpu);
		else
			ql_log(p->log, QL_LOG_DEBUG, "vCPU %d thread %d -> host CPU %u",
			       c->cpu_index, (int)c->thread_id, pin->host_cpu);
	}
	for (size_t i = 0; i < n_cpus; i++) {
		bool pinned = false;
		for (size_t j = 0; j < p->n_pins; j++)
			pinned |= placements[j].tid == cpus[i].thread_id;
		if (!pinned)
			ql_log(
			    p->log, QL_LOG_DEBUG,
			    "vCPU %d thread %d is not pinned; it stays with qemu's other threads",
			    cpus[i].cpu_index, (int)cpus[i].thread_id);
	}
	return 0;
}

/* The scheduling policy for the pinned vCPU threads, or all of them when none is pinned. */
static int schedule_all(struct pinning *p, const struct vcpu_placement *placements,
			const struct qmp_cpu *cpus, size_t n_cpus, const pid_t *io_tids,
			struct ql_error *err)
{
	if (p->sched.policy == QL_SCHED_UNSET && p->io_sched.policy == QL_SCHED_UNSET)
		return 0;
	free(p->changes);
	p->n_changes = 0;
	if (!(p->changes = calloc(n_cpus + p->n_io + 1, sizeof(*p->changes))))
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = 0;
	for (size_t i = 0; p->io_sched.policy != QL_SCHED_UNSET && r == 0 && i < p->n_io; i++) {
		char what[160];
		struct ql_shown sh;
		snprintf(what, sizeof(what), "I/O thread %s", ql_show(&sh, p->io[i].id));
		r = schedule_thread_as(p, io_tids[i], &p->io_sched, what, err);
	}
	if (r < 0 || p->sched.policy == QL_SCHED_UNSET)
		return r;
	if (p->n_pins)
		for (size_t i = 0; r == 0 && i < p->n_pins; i++)
			r = schedule_thread(p, placements[i].tid, placements[i].cpu_index, err);
	else
		for (size_t i = 0; r == 0 && i < n_cpus; i++)
			r = schedule_thread(p, cpus[i].thread_id, cpus[i].cpu_index, err);
	return r;
}

static void thread_holds_done(struct thread_holds *h)
{
	for (size_t i = 0; h->v && i < h->n; i++)
		proc_thread_unhold(&h->v[i]);
	free(h->v);
	*h = (struct thread_holds){0};
}

/* Why thread i of the placement (vCPUs first, then the pinned I/O threads) cannot be held. */
static int not_qemus(const struct pinning *p, const struct qmp_cpu *cpus, size_t n_cpus, size_t i,
		     struct ql_error *err)
{
	struct ql_shown s;
	if (i < n_cpus)
		return ql_error_set(err, ESRCH,
				    "qemu reports thread %d for vCPU %d, but it is not a thread of "
				    "qemu (pid %d)",
				    (int)cpus[i].thread_id, cpus[i].cpu_index, (int)p->qemu_pid);
	return ql_error_set(err, ESRCH,
			    "qemu reports thread %d for I/O thread `%s`, but it is not a thread of "
			    "qemu (pid %d)",
			    (int)p->holds.v[i].tid, ql_show(&s, p->io[i - n_cpus].id),
			    (int)p->qemu_pid);
}

/* Holds every thread first, then asks once whether all are qemu's (one listing, one poll:
 * asked per thread, the /proc lookups were 0.8 ms of a 64-vCPU start on the bench host). */
static int hold_threads(struct pinning *p, const struct qmp_cpu *cpus, size_t n_cpus,
			const pid_t *tids, size_t n, struct ql_error *err)
{
	struct thread_holds *h = &p->holds;
	if (!(h->v = calloc(n ? n : 1, sizeof(*h->v))))
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		h->v[i].pidfd = -1;
		h->n = i + 1;
		if (proc_thread_hold(p->qemu_pid, tids[i], &h->v[i]) < 0)
			return not_qemus(p, cpus, n_cpus, i, err);
	}
	size_t bad = 0;
	int r = proc_threads_held_by(p->qemu_pid, h->v, h->n, &bad, err);
	if (r == -ESRCH)
		return not_qemus(p, cpus, n_cpus, bad, err);
	return r;
}

/* After placement: every thread is still the one held. A foreign thread that got a reused id
 * has its scheduling put back (it was saved from that very id) before the error unwinds. */
static int check_holds(struct pinning *p, struct ql_error *err)
{
	ssize_t i = proc_threads_ended(p->qemu_pid, p->holds.v, p->holds.n);
	if (i < 0)
		return 0;
	pid_t tid = p->holds.v[i].tid;
	for (size_t k = 0; k < p->n_changes; k++)
		if (p->changes[k].tid == tid)
			(void)sched_restore(tid, &p->changes[k].saved, NULL);
	return ql_error_set(err, ESRCH,
			    "thread %d ended while it was being pinned (its id may now be another "
			    "process's): refusing to start the guest",
			    (int)tid);
}

/* The threads placed here: vCPUs, then pinned I/O threads (found by id in query-iothreads). */
static int threads_to_place(const struct pinning *p, const struct qmp_cpu *cpus, size_t n_cpus,
			    const struct qmp_iothread *io, size_t n_io, pid_t *ret,
			    struct ql_error *err)
{
	for (size_t i = 0; i < n_cpus; i++)
		ret[i] = cpus[i].thread_id;
	for (size_t i = 0; i < p->n_io; i++) {
		const struct iothread_pin *pin = &p->io[i];
		const struct qmp_iothread *t = NULL;
		for (size_t k = 0; k < n_io && !t; k++)
			if (streq(io[k].id, pin->id))
				t = &io[k];
		struct ql_shown s;
		if (!t)
			return ql_error_set(err, ENOENT, "%s:%u:%u: qemu has no I/O thread `%s`",
					    p->def_path, pin->mark.line, pin->mark.column,
					    ql_show(&s, pin->id));
		ret[n_cpus + i] = t->thread_id;
	}
	return 0;
}

/* Each pinned I/O thread to its CPUs, within the set of qemu's other threads; read back. */
static int place_iothreads(const struct pinning *p, const pid_t *tids, struct ql_error *err)
{
	for (size_t i = 0; i < p->n_io; i++) {
		const struct cpu_list *cpus = p->io[i].cpus;
		_cleanup_free_ char *text = cpu_list_format(cpus);
		int r = 0;
		if (sched_setaffinity(tids[i], cpus->nbytes, cpus->set) < 0)
			r = ql_error_set_errno(err, errno, "setting the CPU affinity of thread %d",
					       (int)tids[i]);
		if (r == 0)
			r = proc_check_affinity(tids[i], cpus, err);
		if (r < 0) {
			struct ql_shown s;
			ql_error_prefix(err,
					"I/O thread `%s` (CPUs %s; qemu's other threads may "
					"run on the emulator CPUs only): ",
					ql_show(&s, p->io[i].id), text ? text : "?");
			return r;
		}
		ql_log(p->log, QL_LOG_DEBUG, "I/O thread %s (thread %d) -> host CPUs %s",
		       p->io[i].id, (int)tids[i], text ? text : "?");
	}
	return 0;
}

/* PR_SCHED_CORE cookies on every vCPU thread, read back: one shared cookie (vm) or one each
 * (vcpu). */
static int apply_core_sched(const struct pinning *p, const pid_t *vcpus, size_t n,
			    struct ql_error *err)
{
	if (p->core_sched == QL_CORE_SCHED_OFF || n == 0)
		return 0;
	bool shared = p->core_sched != QL_CORE_SCHED_VCPU;
	int r = sched_core_create(vcpus[0], err);
	if (r == 0 && shared)
		r = sched_core_share(vcpus[0], vcpus + 1, n - 1, err);
	for (size_t i = 1; r == 0 && !shared && i < n; i++)
		r = sched_core_create(vcpus[i], err);
	uint64_t first = 0;
	for (size_t i = 0; r == 0 && i < n; i++) {
		uint64_t c = 0;
		r = sched_core_get(vcpus[i], &c, err);
		if (i == 0)
			first = c;
		if (r == 0 && (c == 0 || (shared ? c != first : i > 0 && c == first)))
			r = ql_error_set(err, EIO, "vCPU thread %d has core scheduling cookie %llu",
					 (int)vcpus[i], (unsigned long long)c);
	}
	if (r == 0)
		ql_log(p->log, QL_LOG_DEBUG, "core scheduling: %s cookie on %zu vCPU threads",
		       shared ? "one" : "a separate", n);
	return r;
}

int pinning_prepare_host(struct pinning *p, pid_t qemu_pid, struct ql_error *err)
{
	if (!p->iso)
		return 0;
	_cleanup_free_ struct vcpu_placement *v = pinned_placements(p);
	if (!v)
		return ql_error_set(err, ENOMEM, "out of memory");
	struct isolation_plan plan = {
	    .qemu_pid = qemu_pid,
	    .vcpus = v,
	    .n_vcpus = p->n_pins,
	    .emulator_cpus = p->emulator,
	};
	return isolation_prepare(p->iso, &plan, err);
}

bool pinning_keeps_warm(const struct pinning *p)
{
	return p && p->iso && isolation_keeps_warm(p->iso);
}

void pinning_keep_warm(void *pinning)
{
	struct pinning *p = pinning;
	if (p->iso)
		isolation_keep_warm(p->iso);
}

/* Everything pinning_apply changed, undone (its failure path). */
static void undo_apply(struct pinning *p)
{
	thread_holds_done(&p->holds);
	undo_sched(p);
	if (p->iso) {
		struct ql_error e = {0};
		if (isolation_release(p->iso, &e) < 0)
			ql_log(p->log, QL_LOG_WARNING, "undoing CPU isolation: %s",
			       e.msg ? e.msg : "failed");
		ql_error_clear(&e);
	}
	p->applied = false;
}

/* Are these the threads pinning_apply_early placed, vCPU for vCPU? Both lists are sorted by
 * cpu_index (qmp_query_cpus_fast sorts its answer). */
static bool placed_early_are(const struct pinning *p, const struct qmp_cpu *cpus, size_t n)
{
	if (!p->placed_early || n != p->n_named)
		return false;
	for (size_t i = 0; i < n; i++)
		if (cpus[i].cpu_index != p->named[i].cpu_index ||
		    cpus[i].thread_id != p->named[i].thread_id)
			return false;
	return true;
}

int pinning_apply(struct pinning *p, pid_t qemu_pid, const struct qmp_cpu *cpus, size_t n_cpus,
		  const struct qmp_iothread *io, size_t n_io, struct ql_error *err)
{
	if (pinning_placed_early(p)) {
		bool same = placed_early_are(p, cpus, n_cpus) && n_io == 0;
		p->placed_early = false;
		if (same) {
			/* placed and read back already; still the very threads held then? */
			int r = check_holds(p, err);
			if (r < 0)
				undo_apply(p);
			else
				ql_log(p->log, QL_LOG_DEBUG,
				       "query-cpus-fast lists the threads placed by their names");
			return r;
		}
		ql_log(p->log, QL_LOG_INFO,
		       "query-cpus-fast lists other threads than qemu's thread names did: "
		       "placing them again");
		undo_apply(p);
	}
	if (p->applied)
		return ql_error_set(err, EALREADY, "vCPU pinning is already applied");
	p->qemu_pid = qemu_pid;
	size_t n_all = n_cpus + p->n_io;
	_cleanup_free_ struct vcpu_placement *placements =
	    calloc(p->n_pins ? p->n_pins : 1, sizeof(*placements));
	_cleanup_free_ pid_t *tids = calloc(n_all ? n_all : 1, sizeof(*tids));
	if (!placements || !tids)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = check_threads(p, cpus, n_cpus, err);
	if (r == 0)
		r = map_pins(p, cpus, n_cpus, placements, err);
	if (r == 0)
		r = threads_to_place(p, cpus, n_cpus, io, n_io, tids, err);
	thread_holds_done(&p->holds);
	if (r == 0)
		r = hold_threads(p, cpus, n_cpus, tids, n_all, err);
	if (r == 0 && p->iso) {
		struct isolation_plan plan = {
		    .qemu_pid = qemu_pid,
		    .vcpus = placements,
		    .n_vcpus = p->n_pins,
		    .emulator_cpus = p->emulator,
		    .keep_tids = tids + n_cpus,
		    .n_keep = p->n_io,
		};
		r = isolation_apply(p->iso, &plan, err);
		if (r < 0)
			return r;
		/* isolation_apply may have waited seconds for another launcher's lock: a thread
		 * that ended meanwhile, its id now another process's, must not get the I/O
		 * threads' affinity below (a change check_holds could not undo). */
		r = check_holds(p, err);
	}
	if (r == 0)
		r = place_iothreads(p, tids + n_cpus, err);
	if (r == 0)
		r = schedule_all(p, placements, cpus, n_cpus, tids + n_cpus, err);
	if (r == 0)
		r = apply_core_sched(p, tids, n_cpus, err);
	if (r == 0)
		r = check_holds(p, err);
	if (r == 0) {
		p->applied = true;
		return 0;
	}
	undo_apply(p);
	return r;
}

/* Sorts tid into p->others (known to be no vCPU thread; proc_tids_contain asks). */
static int remember_other(struct pinning *p, pid_t tid)
{
	pid_t *v = reallocarray(p->others, p->n_others + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	p->others = v;
	size_t i = p->n_others++;
	for (; i > 0 && v[i - 1] > tid; i--)
		v[i] = v[i - 1];
	v[i] = tid;
	return 0;
}

/* Is tid one whose name was read already: a vCPU found by its name, or one of p->others? */
static bool seen_by_name(const struct pinning *p, pid_t tid)
{
	if (proc_tids_contain(p->others, p->n_others, tid))
		return true;
	for (size_t k = 0; k < p->n_named; k++)
		if (p->named[k].thread_id == tid)
			return true;
	return false;
}

/* Looks at qemu's threads not seen yet: a vCPU's name files it in p->named. 1 once every vCPU
 * has its thread, 0 not yet, -1 when the names cannot be trusted (a vCPU named twice, or one
 * qemu will not have). */
static int find_named_vcpus(struct pinning *p, pid_t qemu_pid)
{
	_cleanup_free_ pid_t *tids = NULL;
	size_t n = 0;
	if (proc_list_tids(qemu_pid, &tids, &n, NULL) < 0)
		return -1;
	char main_comm[PROC_COMM_SIZE] = "";
	(void)proc_thread_comm(qemu_pid, qemu_pid, main_comm);
	size_t found = 0;
	for (size_t i = 0; i < p->n_named; i++)
		found += p->named[i].thread_id != 0;
	for (size_t i = 0; i < n && found < p->n_named; i++) {
		pid_t tid = tids[i];
		char comm[PROC_COMM_SIZE];
		if (seen_by_name(p, tid) || proc_thread_comm(qemu_pid, tid, comm) < 0)
			continue;
		int v = proc_qemu_vcpu_index(comm);
		if (v < 0) {
			/* a thread named like the main one may not have set its own name yet */
			if (!streq(comm, main_comm) && remember_other(p, tid) < 0)
				return -1;
			continue;
		}
		if ((size_t)v >= p->n_named || p->named[v].thread_id != 0)
			return -1;
		p->named[v].thread_id = tid;
		found++;
	}
	return found == p->n_named;
}

bool pinning_may_place_early(const struct pinning *p)
{
	/* by index only: a topology pin needs qemu's socket/core/thread ids; an I/O thread's
	 * thread id comes with query-iothreads; and the names are looked for on the keep-warm
	 * tick */
	return p && p->iso && p->flat && !p->n_io && isolation_will_keep_warm(p->iso);
}

bool pinning_placed_early(const struct pinning *p)
{
	return p && p->applied && p->placed_early;
}

int pinning_apply_early(struct pinning *p, pid_t qemu_pid, size_t n_vcpus, struct ql_error *err)
{
	if (!pinning_may_place_early(p) || p->applied || !n_vcpus)
		return -ECANCELED;
	if (!p->named) {
		if (!(p->named = calloc(n_vcpus, sizeof(*p->named))))
			return ql_error_set(err, ENOMEM, "out of memory");
		p->n_named = n_vcpus;
		for (size_t i = 0; i < n_vcpus; i++)
			p->named[i] = (struct qmp_cpu){
			    .cpu_index = (int)i, .socket = -1, .die = -1, .core = -1, .thread = -1};
	}
	int found = find_named_vcpus(p, qemu_pid);
	if (found <= 0)
		return found < 0 ? -ECANCELED : 0;
	/* placed later then, at qemu's answer, where the wait is the one it always was */
	if (isolation_lock_busy(p->iso))
		return -ECANCELED;
	int r = pinning_apply(p, qemu_pid, p->named, p->n_named, NULL, 0, err);
	if (r < 0)
		return r;
	p->placed_early = true;
	return 1;
}

int pinning_confirm_by_names(struct pinning *p, pid_t qemu_pid, struct ql_error *err)
{
	if (!pinning_placed_early(p))
		return 0;
	_cleanup_free_ pid_t *tids = NULL;
	size_t n = 0;
	if (proc_list_tids(qemu_pid, &tids, &n, NULL) < 0)
		return 0;
	/* Only the threads the placement did not see get their names read (qemu's main thread
	 * runs no vCPU): a placed thread keeps the name qemu gave it, and qemu's answer after cont
	 * checks that it did. */
	for (size_t i = 0; i < n; i++) {
		char comm[PROC_COMM_SIZE];
		if (tids[i] != qemu_pid && !seen_by_name(p, tids[i]) &&
		    proc_thread_comm(qemu_pid, tids[i], comm) == 0 &&
		    proc_qemu_vcpu_index(comm) >= 0)
			return 0;
	}
	int r = check_holds(p, err);
	if (r < 0) {
		undo_apply(p);
		return r;
	}
	return 1;
}

int pinning_check_answer(struct pinning *p, const struct qmp_cpu *cpus, size_t n_cpus,
			 struct ql_error *err)
{
	bool same = placed_early_are(p, cpus, n_cpus);
	p->placed_early = false;
	if (!same)
		return ql_error_set(
		    err, EPROTO,
		    "qemu's query-cpus-fast lists other vCPU threads than its thread names did, "
		    "and the guest started on the threads those names showed: stopping it "
		    "(without debug-threads=on in -name, the vCPUs are placed by qemu's answer)");
	ql_log(p->log, QL_LOG_DEBUG, "query-cpus-fast lists the threads placed by their names");
	return 0;
}

bool pinning_wants_iothreads(const struct pinning *p)
{
	return p && p->n_io > 0;
}

int pinning_rescan(struct pinning *p, struct ql_error *err)
{
	if (!p->applied || !p->iso)
		return 0;
	return isolation_rescan(p->iso, err);
}

bool pinning_leaves_sets(const struct pinning *p)
{
	return p && p->iso && isolation_isolates(p->iso);
}

const char *pinning_backend(const struct pinning *p)
{
	return p && p->iso ? isolation_name(p->iso) : NULL;
}

void pinning_guest_started(struct pinning *p)
{
	if (p)
		thread_holds_done(&p->holds);
}

int pinning_release(struct pinning *p, struct ql_error *err)
{
	if (!p)
		return 0;
	thread_holds_done(&p->holds);
	undo_sched(p);
	p->applied = false;
	if (p->iso)
		return isolation_release(p->iso, err);
	return 0;
}

void pinning_qemu_reaped(struct pinning *p)
{
	if (!p)
		return;
	p->qemu_pid = 0; /* undo_sched checks each thread against it: none belongs to pid 0 */
	thread_holds_done(&p->holds);
	isolation_qemu_reaped(p->iso);
}

void pinning_hand_over(struct pinning *p)
{
	if (!p)
		return;
	p->applied = false;
	p->n_changes = 0; /* the threads are gone with qemu */
	isolation_hand_over(p->iso);
}

void pinning_free(struct pinning *p)
{
	if (!p)
		return;
	if (p->applied) {
		pinning_qemu_reaped(p); /* freed after the run, which qemu never outlives */
		(void)pinning_release(p, NULL);
	}
	thread_holds_done(&p->holds);
	isolation_free(p->iso);
	free(p->named);
	free(p->others);
	free(p->def_path);
	free(p->pins);
	free(p->changes);
	cpu_list_free(p->emulator);
	free(p);
}
