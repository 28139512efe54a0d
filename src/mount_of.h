/* The mount a path is on, asked of the kernel about that one mount (statmount(2), Linux 6.8 and
 * later) instead of read from the whole mount table: /proc/self/mountinfo costs ~50 us on the
 * bench host, where these two calls cost a few. */
#pragma once

struct mount_of {
	char *mountpoint; /* relative to the process's root, as mountinfo shows it */
	char *fstype;
	char *source;
	char *options; /* the filesystem's own, comma-separated (a cgroup v1 mount's controllers) */
};

/* Fills ret for the mount path resolves to (symlinks followed). -EOPNOTSUPP when this kernel
 * cannot tell (no statmount, or not every field: the caller reads mountinfo then), another
 * -errno when path cannot be looked up. */
int mount_of(const char *path, struct mount_of *ret);
void mount_of_done(struct mount_of *m);
