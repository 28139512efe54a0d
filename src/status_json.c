/* --status --json: renders a status_report as a JSON document (schema/status.schema.json). The
 * facts are status.c's; this module only names them for machines. */
#include "status_json.h"

#include <json-c/json.h>
#include <sched.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "cpulist.h"
#include "housekeeping_status.h"
#include "hugepages_status.h"
#include "json_cleanup.h"
#include "macro.h"
#include "utf8.h"

/* The backend's name as an identifier: "cpuset v1" -> "cpuset-v1"; no sets -> "affinity". */
static json_object *backend_id(const char *backend)
{
	if (!backend)
		return json_object_new_string("affinity");
	_cleanup_free_ char *id = strdup(backend);
	if (!id)
		return NULL;
	for (char *p = id; *p; p++)
		if (*p == ' ')
			*p = '-';
	return json_object_new_string(id);
}

/* A JSON string must be UTF-8, but thread names and cgroup paths are bytes chosen by whoever
 * named them: an invalid byte becomes U+FFFD, so the document always parses. */
static json_object *text(const char *s)
{
	if (!s)
		return NULL;
	size_t len = strlen(s);
	_cleanup_free_ char *clean = malloc(len * 3 + 1);
	if (!clean)
		return NULL;
	size_t o = 0;
	const unsigned char *end = (const unsigned char *)s + len;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = utf8_char_len(p, (size_t)(end - p));
		/* json-c writes C1 controls raw, and some terminals take U+009B as CSI */
		if (utf8_is_c1(p, n)) {
			memcpy(clean + o, "\xef\xbf\xbd", 3);
			o += 3;
			p += 2;
		} else if (n) {
			memcpy(clean + o, p, n);
			o += n;
			p += n;
		} else {
			memcpy(clean + o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
		}
	}
	clean[o] = '\0';
	return json_object_new_string_len(clean, (int)o);
}

static const char *policy_id(const struct status_thread *t)
{
	return t->policy < 0 ? NULL : status_policy_name(t->policy);
}

/* The allowed CPUs as numbers, or null when the kernel's list could not be read or parsed. */
static bool put_cpus(json_object *o, const char *list)
{
	_cleanup_cpu_list_ struct cpu_list *l = NULL;
	struct ql_error e = {0};
	if (!list || cpu_list_parse(list, &l, &e) < 0) {
		ql_error_clear(&e);
		return json_put(o, "cpus", NULL, false);
	}
	json_object *a = json_object_new_array();
	if (!json_put(o, "cpus", a, true))
		return false;
	for (int c = cpu_list_next(l, -1); c >= 0; c = cpu_list_next(l, c))
		if (!json_push(a, json_object_new_int(c)))
			return false;
	return true;
}

static json_object *thread_json(const struct status_thread *t)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	const char *pol = policy_id(t);
	if (!json_put(o, "tid", json_object_new_int(t->tid), true) ||
	    !json_put(o, "name", text(t->comm), true) ||
	    !json_put(o, "vcpu", t->vcpu >= 0 ? json_object_new_int(t->vcpu) : NULL,
		      t->vcpu >= 0) ||
	    !json_put(o, "cpus_allowed", text(t->cpus_allowed), t->cpus_allowed) ||
	    !put_cpus(o, t->cpus_allowed) || !json_put(o, "set", text(t->set), t->set) ||
	    !json_put(o, "vcpu_set_cpu",
		      t->vcpu_set_cpu >= 0 ? json_object_new_int(t->vcpu_set_cpu) : NULL,
		      t->vcpu_set_cpu >= 0) ||
	    !json_put(o, "policy", pol ? json_object_new_string(pol) : NULL, pol) ||
	    !json_put(o, "priority", json_object_new_int(t->priority), true) ||
	    !json_put(o, "reset_on_fork", json_object_new_boolean(t->reset_on_fork), true))
		return NULL;
	return TAKE_PTR(o);
}

/* Its VFIO devices and the members of their IOMMU groups (vfio.h). */
static json_object *vfio_json(const struct status_vm *vm)
{
	_cleanup_json_ json_object *a = json_object_new_array();
	for (size_t i = 0; a && i < vm->n_vfio; i++) {
		const struct vfio_status *v = &vm->vfio[i];
		json_object *o = json_object_new_object();
		if (!json_push(a, o) || !json_put(o, "address", text(v->addr), true) ||
		    !json_put(o, "iommu_group", text(v->group), v->group) ||
		    !json_put(o, "driver", text(v->driver), v->driver) ||
		    !json_put(o, "assigned", json_object_new_boolean(v->assigned), true))
			return NULL;
	}
	return TAKE_PTR(a);
}

static json_object *vm_json(const struct status_vm *vm)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	json_object *threads = json_object_new_array();
	if (!json_put(o, "threads", threads, true))
		return NULL;
	json_object *problems = json_object_new_array();
	if (!json_put(o, "problems", problems, true))
		return NULL;
	bool ok =
	    json_put(o, "name", text(vm->name), true) &&
	    json_put(o, "running", json_object_new_boolean(vm->qemu_pid > 0), true) &&
	    json_put(o, "qemu_pid", vm->qemu_pid > 0 ? json_object_new_int(vm->qemu_pid) : NULL,
		     vm->qemu_pid > 0) &&
	    json_put(o, "backend", backend_id(vm->backend), true) &&
	    json_put(o, "set_dir", text(vm->dir), vm->dir) &&
	    json_put(o, "definition_note", text(vm->definition_note), vm->definition_note) &&
	    json_put(o, "consistent", json_object_new_boolean(!vm->problems[0]), true) &&
	    json_put(o, "hugepages", hugepages_status_json(vm->hugepages), true);
	if (!ok)
		return NULL;
	for (size_t i = 0; i < vm->n_threads; i++)
		if (!json_push(threads, thread_json(&vm->threads[i])))
			return NULL;
	if (vm->n_vfio && !json_put(o, "vfio", vfio_json(vm), true))
		return NULL;
	for (char **p = vm->problems; *p; p++)
		if (!json_push(problems, text(*p)))
			return NULL;
	return TAKE_PTR(o);
}

char *status_json_format(const struct status_report *r)
{
	_cleanup_json_ json_object *doc = json_object_new_object();
	if (!doc)
		return NULL;
	size_t n_problems = 0;
	for (size_t i = 0; i < r->n_vms; i++)
		n_problems += strv_length(r->vms[i].problems);
	n_problems += r->confined != NULL;
	n_problems += housekeeping_status_problems(r->housekeeping);
	if (!json_put(doc, "format", json_object_new_string("qemu-launcher-status"), true) ||
	    !json_put(doc, "version", json_object_new_int(STATUS_JSON_VERSION), true) ||
	    !json_put(doc, "launcher_version", json_object_new_string(QL_VERSION), true) ||
	    !json_put(doc, "only", text(r->only), r->only) ||
	    !json_put(doc, "consistent", json_object_new_boolean(status_is_consistent(r)), true) ||
	    !json_put(doc, "differences", json_object_new_int64((int64_t)n_problems), true) ||
	    !json_put(doc, "host_problems", json_object_new_array(), true) ||
	    !json_put(doc, "vms", json_object_new_array(), true) ||
	    !json_put(doc, "housekeeping", housekeeping_status_json(r->housekeeping), true))
		return NULL;
	json_object *host = json_object_object_get(doc, "host_problems");
	if (r->confined && !json_push(host, text(r->confined)))
		return NULL;
	json_object *vms = json_object_object_get(doc, "vms");
	for (size_t i = 0; i < r->n_vms; i++)
		if (!json_push(vms, vm_json(&r->vms[i])))
			return NULL;
	const char *s =
	    json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						    JSON_C_TO_STRING_NOSLASHESCAPE);
	char *out = NULL;
	if (!s || asprintf(&out, "%s\n", s) < 0)
		return NULL;
	return out;
}
