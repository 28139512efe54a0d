/* statmount(2) from its ABI (Debian 12's headers predate it): the request, the reply's fixed
 * part up to the fields read here, and its strings after it at the offsets those fields give. */
#include "mount_of.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"

#ifndef SYS_statmount
#define SYS_statmount 457 /* x86_64 and the generic table (aarch64, riscv64) */
#endif
#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x4000U
#endif
#define STATMOUNT_MNT_POINT 0x10U
#define STATMOUNT_FS_TYPE 0x20U
#define STATMOUNT_MNT_OPTS 0x80U
#define STATMOUNT_SB_SOURCE 0x200U
/* the fields without which mountinfo must answer; the options may be left out (none) */
#define NEEDED (STATMOUNT_MNT_POINT | STATMOUNT_FS_TYPE | STATMOUNT_SB_SOURCE)
/* The reply: a fixed part of 512 bytes, its strings after it (a path is at most PATH_MAX). */
#define REPLY_FIXED 512
#define REPLY_SIZE 16384

struct mnt_id_req {
	uint32_t size;
	uint32_t spare;
	uint64_t mnt_id;
	uint64_t param;
};

struct statmount_reply {
	uint32_t size;
	uint32_t mnt_opts;
	uint64_t mask;
	uint32_t sb_dev_major, sb_dev_minor;
	uint64_t sb_magic;
	uint32_t sb_flags;
	uint32_t fs_type;
	uint64_t mnt_id, mnt_parent_id;
	uint32_t mnt_id_old, mnt_parent_id_old;
	uint64_t mnt_attr, mnt_propagation, mnt_peer_group, mnt_master, propagate_from;
	uint32_t mnt_root;
	uint32_t mnt_point;
	uint64_t mnt_ns_id;
	uint32_t fs_subtype;
	uint32_t sb_source;
};
_Static_assert(sizeof(struct statmount_reply) <= REPLY_FIXED, "statmount's fixed part");

void mount_of_done(struct mount_of *m)
{
	free(m->mountpoint);
	free(m->fstype);
	free(m->source);
	free(m->options);
	*m = (struct mount_of){0};
}

/* The reply's string at offset off (from the end of its fixed part), copied; "" when the reply
 * has none (its bit not in mask, or off outside it). NULL: out of memory. */
static char *reply_string(const char *reply, size_t size, uint64_t mask, uint64_t bit, uint32_t off)
{
	if (!(mask & bit) || (size_t)REPLY_FIXED + off >= size)
		return strdup("");
	return strndup(reply + REPLY_FIXED + off, size - REPLY_FIXED - off);
}

int mount_of(const char *path, struct mount_of *ret)
{
	*ret = (struct mount_of){0};
	struct statx stx;
	if (statx(AT_FDCWD, path, 0, STATX_MNT_ID_UNIQUE, &stx) < 0)
		return -errno;
	if (!(stx.stx_mask & STATX_MNT_ID_UNIQUE))
		return -EOPNOTSUPP;
	_cleanup_free_ char *reply = malloc(REPLY_SIZE);
	if (!reply)
		return -ENOMEM;
	struct mnt_id_req req = {
	    .size = sizeof(req), .mnt_id = stx.stx_mnt_id, .param = NEEDED | STATMOUNT_MNT_OPTS};
	if (syscall(SYS_statmount, &req, reply, REPLY_SIZE, 0) < 0)
		return errno == ENOMEM || errno == EFAULT ? -errno : -EOPNOTSUPP;
	struct statmount_reply sm;
	memcpy(&sm, reply, sizeof(sm));
	/* a kernel that knows the call but not every field leaves their bits out */
	if ((sm.mask & NEEDED) != NEEDED || sm.size > REPLY_SIZE)
		return -EOPNOTSUPP;
	struct mount_of m = {
	    .mountpoint = reply_string(reply, sm.size, sm.mask, STATMOUNT_MNT_POINT, sm.mnt_point),
	    .fstype = reply_string(reply, sm.size, sm.mask, STATMOUNT_FS_TYPE, sm.fs_type),
	    .source = reply_string(reply, sm.size, sm.mask, STATMOUNT_SB_SOURCE, sm.sb_source),
	    .options = reply_string(reply, sm.size, sm.mask, STATMOUNT_MNT_OPTS, sm.mnt_opts),
	};
	if (!m.mountpoint || !m.fstype || !m.source || !m.options) {
		mount_of_done(&m);
		return -ENOMEM;
	}
	*ret = m;
	return 0;
}
