/* Locked memory sized from the definition (see memlock.h). */
#include "memlock.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>

#include "macro.h"

/* The launcher may set RLIMIT_MEMLOCK above its hard limit (CAP_SYS_RESOURCE, bit 24 of the
 * effective set). */
static bool may_raise_hard_limit(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long caps = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	return caps & (1ULL << 24);
}

/* The limit a run would set, when it is above the hard limit and cannot be raised: refused. */
static int unreachable(const struct definition *d, uint64_t want, char **ret_warning)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_max == RLIM_INFINITY ||
	    want <= rl.rlim_max || may_raise_hard_limit())
		return 0;
	char what[64];
	if (want == UINT64_MAX)
		snprintf(what, sizeof(what), "unlimited");
	else
		snprintf(what, sizeof(what), "%" PRIu64 " bytes", want);
	return asprintf(ret_warning,
			"%s: rlimit_memlock asks for %s, above the hard limit of %" PRIu64
			" bytes, and this launcher lacks CAP_SYS_RESOURCE: a start would fail "
			"(exit 125)",
			d->path, what, (uint64_t)rl.rlim_max) < 0
		   ? (*ret_warning = NULL, -ENOMEM)
		   : 0;
}

/* Fills ret_warning[0..1]: the refusal to come, the memory locked under a lower limit. */
static int collect(const struct definition *d, char **ret_warning, struct ql_error *err)
{
	*ret_warning = NULL;
	/* the default hugepage size does not change any size: 2 MiB will do */
	_cleanup_(mem_layout_done) struct mem_layout l = {0};
	int r = mem_layout_parse(d, hugepages_hugetlbfs_page_kb, 2048, &l, err);
	if (r < 0)
		return r;
	uint64_t need = memlock_auto_bytes(&l);
	if (d->memlock != QL_MEMLOCK_UNCHANGED) {
		uint64_t want = d->memlock == QL_MEMLOCK_UNLIMITED ? UINT64_MAX
				: d->memlock == QL_MEMLOCK_AUTO	   ? need
								   : d->memlock_bytes;
		if (unreachable(d, want, ret_warning) < 0)
			return ql_error_set(err, ENOMEM, "out of memory");
	}
	if (!l.mem_lock && !l.vfio)
		return 0;
	/* after the refusal above, a second warning */
	char **slot = *ret_warning ? ret_warning + 1 : ret_warning;
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
		slot,
		"%s: %s locks memory but %s is %" PRIu64 " bytes, below the %" PRIu64
		" it needs (guest RAM %" PRIu64
		" + 1 GiB); `rlimit_memlock: auto` sets it (a qemu keeping CAP_IPC_LOCK is not "
		"bound by it)",
		d->path, l.vfio ? "-device vfio-pci" : "-overcommit mem-lock=on", source, have,
		need, l.guest_ram) < 0) {
		*slot = NULL;
		return ql_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

int memlock_check(const struct definition *d, char ***ret_warnings, struct ql_error *err)
{
	char **w = calloc(3, sizeof(char *));
	if (!w)
		return ql_error_set(err, ENOMEM, "out of memory");
	int r = collect(d, w, err);
	if (r < 0) {
		strv_free(w);
		return r;
	}
	*ret_warnings = w;
	return 0;
}
