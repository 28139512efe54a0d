/* Locked memory sized from the definition (see memlock.h). */
#include "memlock.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>

#include "macro.h"

int memlock_check(const struct definition *d, char **ret_warning, struct ql_error *err)
{
	*ret_warning = NULL;
	/* the default hugepage size does not change any size: 2 MiB will do */
	_cleanup_(mem_layout_done) struct mem_layout l = {0};
	int r = mem_layout_parse(d, hugepages_hugetlbfs_page_kb, 2048, &l, err);
	if (r < 0)
		return r;
	if (!l.mem_lock && !l.vfio)
		return 0;
	uint64_t need = memlock_auto_bytes(&l);
	uint64_t have;
	const char *source;
	struct rlimit rl;
	switch (d->memlock) {
	case QL_MEMLOCK_UNLIMITED:
	case QL_MEMLOCK_AUTO:
		return 0;
	case QL_MEMLOCK_BYTES:
		have = d->memlock_bytes;
		source = "rlimit_memlock";
		break;
	default:
		if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
			return 0;
		have = rl.rlim_cur;
		source = "the current RLIMIT_MEMLOCK (no rlimit_memlock)";
		break;
	}
	if (have >= need)
		return 0;
	if (asprintf(
		ret_warning,
		"%s: %s locks memory but %s is %" PRIu64 " bytes, below the %" PRIu64
		" it needs (guest RAM %" PRIu64
		" + 1 GiB); `rlimit_memlock: auto` sets it (a qemu keeping CAP_IPC_LOCK is not "
		"bound by it)",
		d->path, l.vfio ? "-device vfio-pci" : "-overcommit mem-lock=on", source, have,
		need, l.guest_ram) < 0) {
		*ret_warning = NULL;
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}
