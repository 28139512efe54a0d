/* Walks a cgroup backend's VM layout for --status (see cgroup_inspect.h). */
#include "cgroup_inspect.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroupfs.h"
#include "macro.h"
#include "proc.h"

#define INSPECT_MAX_VMS 1024

int cgroup_set_cpu(const char *name, const char *prefix)
{
	size_t pl = strlen(prefix);
	const char *n = name + pl;
	if (strncmp(name, prefix, pl) != 0 || !*n || strspn(n, "0123456789") != strlen(n) ||
	    strlen(n) > 5 || (n[0] == '0' && n[1]))
		return -1;
	long v = strtol(n, NULL, 10);
	return v < CPU_LIST_MAX_CPUS ? (int)v : -1;
}

static int add_members(struct isolation_vm *vm, const pid_t *ids, size_t n, int cpu)
{
	if (!n)
		return 0;
	struct isolation_vcpu_member *m =
	    reallocarray(vm->members, vm->n_members + n, sizeof(*vm->members));
	if (!m)
		return -ENOMEM;
	vm->members = m;
	for (size_t i = 0; i < n; i++)
		m[vm->n_members++] = (struct isolation_vcpu_member){ids[i], cpu};
	return 0;
}

/* The sets of one VM directory: vCPU members and qemu's pid (from any thread we find). */
static int read_vm_sets(int vm_fd, const struct cgroup_layout *layout, struct isolation_vm *vm,
			bool *ret_is_vm, struct ql_error *err)
{
	int dfd = openat(vm_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return ql_error_set_errno(err, errno, "reading `%s`", vm->dir);
	_cleanup_closedir_ DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return ql_error_set_errno(err, errno, "reading `%s`", vm->dir);
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		int cpu = cgroup_set_cpu(de->d_name, layout->vcpu_prefix);
		if (cpu < 0 && !streq(de->d_name, "emulator"))
			continue;
		struct stat st;
		if (fstatat(vm_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			continue;
		*ret_is_vm = true;
		_cleanup_free_ char *file = path_join(de->d_name, layout->ids_file);
		_cleanup_free_ pid_t *ids = NULL;
		size_t n = 0;
		if (!file)
			return ql_error_set(err, ENOMEM, "out of memory");
		int r = cgroupfs_read_pids(vm_fd, file, &ids, &n, err);
		if (r < 0) {
			ql_error_prefix(err, "%s: ", vm->dir);
			return r;
		}
		for (size_t i = 0; i < n && !vm->qemu_pid; i++)
			vm->qemu_pid = proc_tgid(ids[i]);
		if (cpu >= 0 && add_members(vm, ids, n, cpu) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
	}
	if (!vm->qemu_pid && layout->procs_file) {
		_cleanup_free_ pid_t *ids = NULL;
		size_t n = 0;
		if (cgroupfs_read_pids(vm_fd, layout->procs_file, &ids, &n, NULL) == 0 && n > 0)
			vm->qemu_pid = ids[0];
	}
	return 0;
}

static int inspect_vm(int base_fd, const char *base, const char *name,
		      const struct cgroup_layout *layout, struct isolation_vm_list *acc,
		      struct ql_error *err)
{
	_cleanup_close_ int vm_fd = openat(base_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW |
							      O_CLOEXEC);
	if (vm_fd < 0)
		return 0; /* not a directory, or gone meanwhile */
	struct isolation_vm vm = {.backend = layout->backend, .set_prefix = layout->vcpu_prefix};
	vm.dir = path_join(base, name);
	vm.name = strdup(name);
	bool is_vm = false;
	int r = vm.dir && vm.name ? read_vm_sets(vm_fd, layout, &vm, &is_vm, err)
				  : ql_error_set(err, ENOMEM, "out of memory");
	if (r == 0 && is_vm && acc->n < INSPECT_MAX_VMS) {
		struct isolation_vm *v = reallocarray(acc->vms, acc->n + 1, sizeof(*v));
		if (v) {
			acc->vms = v;
			acc->vms[acc->n++] = vm;
			return 0;
		}
		r = ql_error_set(err, ENOMEM, "out of memory");
	}
	free(vm.dir);
	free(vm.name);
	free(vm.members);
	return r;
}

int cgroup_inspect(const char *base, const struct cgroup_layout *layout, const char *only,
		   struct isolation_vm_list *acc, struct ql_error *err)
{
	int dfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0; /* no VM was ever pinned with this backend here */
		return ql_error_set_errno(err, errno, "reading `%s`", base);
	}
	_cleanup_closedir_ DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return ql_error_set_errno(err, errno, "reading `%s`", base);
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || streq(de->d_name, "pool"))
			continue;
		if (only && !streq(only, de->d_name))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		int r = inspect_vm(dirfd(d), base, de->d_name, layout, acc, err);
		if (r < 0)
			return r;
	}
	return 0;
}
