/* Unit tests of mount_of against the running kernel: for paths on different kinds of mount, what
 * statmount(2) says is what /proc/self/mountinfo says of the same mount (found there by the mount
 * id statx gives), down to every option; a path that does not exist is an error, not a mount.
 * On a kernel without statmount (before 6.8) there is nothing to compare: the cases are skipped,
 * saying so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "mount_of.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void unescape(char *s)
{
	char *o = s;
	for (; *s; s++)
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	*o = '\0';
}

struct info_line {
	char mountpoint[4096], fstype[64], source[4096], superopts[4096];
};

/* The mountinfo line of mount id (the old, reused one statx calls STATX_MNT_ID). */
static bool mountinfo_line(uint64_t id, struct info_line *ret)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	assert_non_null(f);
	char line[16384];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long lid;
		char mp[4096];
		if (sscanf(line, "%llu %*s %*s %*s %4095s", &lid, mp) != 2 || lid != id)
			continue;
		const char *dash = strstr(line, " - ");
		assert_non_null(dash);
		assert_int_equal(
		    sscanf(dash, " - %63s %4095s %4095s", ret->fstype, ret->source, ret->superopts),
		    3);
		unescape(mp);
		unescape(ret->source);
		snprintf(ret->mountpoint, sizeof(ret->mountpoint), "%s", mp);
		found = true;
	}
	fclose(f);
	return found;
}

static bool has_option(const char *list, const char *opt)
{
	size_t n = strlen(opt);
	for (const char *p = list; p && *p;) {
		if (strncmp(p, opt, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
		p = strchr(p, ',');
		p = p ? p + 1 : NULL;
	}
	return false;
}

static void same_as_mountinfo(const char *path)
{
	struct mount_of m;
	int r = mount_of(path, &m);
	if (r == -EOPNOTSUPP) {
		/* statmount is Linux 6.8's: mountinfo is all an older kernel has */
		print_message("# skip: statmount(2) needs Linux 6.8 (mount_of: EOPNOTSUPP)\n");
		skip();
		return;
	}
	assert_int_equal(r, 0);
	struct statx stx;
	assert_int_equal(statx(AT_FDCWD, path, 0, STATX_MNT_ID, &stx), 0);
	struct info_line want;
	assert_true(mountinfo_line(stx.stx_mnt_id, &want));
	assert_string_equal(m.mountpoint, want.mountpoint);
	assert_string_equal(m.fstype, want.fstype);
	assert_string_equal(m.source, want.source);
	/* statmount gives the filesystem's own options; mountinfo adds rw/ro in front of them and
	 * the superblock flags (the kernel's show_sb_opts): both ways but for those */
	char *opts = strdup(m.options);
	assert_non_null(opts);
	char *save = NULL;
	for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save))
		assert_true(has_option(want.superopts, o));
	free(opts);
	static const char *const sb_only[] = {"rw", "ro", "sync", "dirsync", "mand", "lazytime"};
	char *back = strdup(want.superopts);
	assert_non_null(back);
	for (char *o = strtok_r(back, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		bool flag = false;
		for (size_t i = 0; i < ELEMENTSOF(sb_only); i++)
			flag |= streq(o, sb_only[i]);
		if (!flag && !has_option(m.options, o))
			fail_msg("%s: mountinfo's option `%s` is missing from statmount's `%s`",
				 path, o, m.options);
	}
	free(back);
	mount_of_done(&m);
}

static void test_root(void **state)
{
	same_as_mountinfo("/");
}

static void test_proc(void **state)
{
	same_as_mountinfo("/proc/self"); /* a path below the mount point: its mount is /proc */
}

static void test_cgroup_mounts(void **state)
{
	struct stat st;
	bool any = false;
	static const char *const paths[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/cpuset"};
	for (size_t i = 0; i < ELEMENTSOF(paths); i++)
		if (stat(paths[i], &st) == 0) {
			same_as_mountinfo(paths[i]);
			any = true;
		}
	if (!any) {
		print_message(
		    "# skip: neither /sys/fs/cgroup nor /sys/fs/cgroup/cpuset exists here\n");
		skip();
	}
}

static void test_missing_path(void **state)
{
	struct mount_of m;
	assert_int_equal(mount_of("/nonexistent/qemu-launcher-test", &m), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_root),
	    cmocka_unit_test(test_proc),
	    cmocka_unit_test(test_cgroup_mounts),
	    cmocka_unit_test(test_missing_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
