/* Unit tests of --import: YAML quoting, the structured form, refusals, and the round trip
 * import -> definition_parse -> cmdline_build == the original argv over tests/data/import. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmdline.h"
#include "definition.h"
#include "import.h"

static void test_flags(void **state)
{
	const char *yes[] = {"nographic", "S", "s", "nodefaults", "no-user-config", "enable-kvm",
			     "no-reboot", "no-shutdown", "snapshot", "daemonize", "full-screen",
			     "no-hpet", "no-acpi", "usb", "win2k-hack", "old-param",
			     "only-migratable", "preconfig", "no-fd-bootchk", "nodefconfig",
			     /* older releases' */
			     "localtime", "std-vga", "rtc-td-hack", "vmwarevga",
			     /* every flag of qemu 7.2's -help */
			     "h", "help", "version", "mem-prealloc", "audio-help", "portrait",
			     "singlestep", "xen-attach", "xen-domid-restrict", "async-teardown",
			     "enable-sync-profile"};
	const char *no[] = {"m", "smp", "drive", "device",  "name", "qmp",    "serial", "d",  "D",
			    "k", "L",	"accel", "display", "vga",  "append", "nic",	"net"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
		assert_true(import_option_is_flag(yes[i]));
	for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
		assert_false(import_option_is_flag(no[i]));
}

static void check_scalar(const char *in, const char *want)
{
	_cleanup_free_ char *got = import_yaml_scalar(in);
	assert_non_null(got);
	if (strcmp(got, want) != 0)
		fail_msg("scalar `%s`: got `%s`, want `%s`", in, got, want);
}

static void test_yaml_scalar(void **state)
{
	/* plain where every reader gets the same string back */
	check_scalar("pc", "pc");
	check_scalar("my vm", "my vm");
	check_scalar("2", "2");
	check_scalar("-1", "-1");
	check_scalar("2G", "2G");
	check_scalar("/var/lib/a.img", "/var/lib/a.img");
	check_scalar("unix:/run/x.sock", "unix:/run/x.sock");
	check_scalar("tcp::2222-:22", "tcp::2222-:22");
	check_scalar("+x2apic", "+x2apic");
	check_scalar("-hypervisor", "-hypervisor");
	/* YAML 1.1/1.2 types: quoted */
	check_scalar("on", "'on'");
	check_scalar("off", "'off'");
	check_scalar("yes", "'yes'");
	check_scalar("N", "'N'");
	check_scalar("null", "'null'");
	check_scalar("~", "'~'");
	check_scalar("true", "'true'");
	check_scalar("0xf4", "'0xf4'");
	check_scalar("010", "'010'");
	check_scalar("1.5", "'1.5'");
	check_scalar("1e3", "'1e3'");
	check_scalar(".inf", "'.inf'");
	check_scalar("12:30", "'12:30'");
	check_scalar("2001-01-01", "'2001-01-01'");
	check_scalar("=", "'='");
	/* YAML syntax */
	check_scalar("", "''");
	check_scalar(" x", "' x'");
	check_scalar("x ", "'x '");
	check_scalar("a,b", "'a,b'");
	check_scalar("a: b", "'a: b'");
	check_scalar("a:", "'a:'");
	check_scalar("#x", "'#x'");
	check_scalar("x #y", "'x #y'");
	check_scalar("[1]", "'[1]'");
	check_scalar("-", "'-'");
	check_scalar("- x", "'- x'");
	check_scalar("*a", "'*a'");
	check_scalar("&a", "'&a'");
	check_scalar("!a", "'!a'");
	check_scalar("it's", "'it''s'");
	check_scalar("Grüße", "'Grüße'");
	/* control characters: double quotes with escapes */
	check_scalar("a\nb", "\"a\\nb\"");
	check_scalar("a\tb\"c\\", "\"a\\tb\\\"c\\\\\"");
	check_scalar("\x01", "\"\\x01\"");
}

static char *import_ok(char *const *argv, size_t argc, char ***ret_warnings)
{
	struct ql_error err = {0};
	char *yaml = NULL;
	char **w = NULL;
	int r = import_command_line(argv, argc, &yaml, &w, &err);
	if (r < 0)
		fail_msg("import failed: %s", err.msg);
	assert_non_null(w);
	if (ret_warnings)
		*ret_warnings = w;
	else
		strv_free(w);
	return yaml;
}

static void test_structure(void **state)
{
	char *argv[] = {"/usr/bin/qemu-system-x86_64",
			"-nographic",
			"-drive",
			"file=/vm/a,,b.img,if=none,readonly",
			"-smp",
			"8,sockets=1,cores=4,threads=2",
			"-name",
			"my vm",
			"-append",
			"root=/dev/vda console=ttyS0",
			"-machine",
			"pc,",
			"-device",
			"a,,b,c=d",
			"-qmp",
			"stdio",
			"-S"};
	_cleanup_free_ char *yaml = import_ok(argv, sizeof(argv) / sizeof(*argv), NULL);
	assert_string_equal(
	    yaml, "# Imported with qemu-launcher --import; --dry-run gives back the same command "
		  "line.\n"
		  "launcher:\n"
		  "  binary: /usr/bin/qemu-system-x86_64\n"
		  "qemu:\n"
		  "- nographic\n"
		  "- drive: [ file: '/vm/a,b.img', if: none, readonly ]\n"
		  "- smp: [ 8, sockets: 1, cores: 4, threads: 2 ]\n"
		  "- name: my vm\n"
		  "- append: root=/dev/vda console=ttyS0\n"
		  "- machine: 'pc,'\n"
		  "- device: [ 'a,,b', c: d ]\n"
		  "- qmp: stdio\n"
		  "- S\n");

	char *bare[] = {"qemu"};
	_cleanup_free_ char *y2 = import_ok(bare, 1, NULL);
	assert_non_null(strstr(y2, "\nqemu: []\n"));
}

static void test_warnings(void **state)
{
	char **w = NULL;
	char *argv[] = {"qemu", "disk.img", "--no-reboot", "-daemonize"};
	_cleanup_free_ char *yaml = import_ok(argv, 4, &w);
	_cleanup_strv_free_ char **warnings = w;
	assert_non_null(strstr(yaml, "- hda: disk.img\n- no-reboot\n- daemonize\n"));
	assert_int_equal(strv_length(warnings), 3);
	assert_non_null(strstr(warnings[0], "-hda disk.img"));
	assert_non_null(strstr(warnings[1], "--no-reboot"));
	assert_non_null(strstr(warnings[2], "-daemonize"));
}

/* an old flag does not swallow the option after it; one the table lacks is warned about */
static void test_old_flags(void **state)
{
	char **w = NULL;
	char *argv[] = {"qemu", "-localtime", "-m", "512", "-std-vga", "-nographic"};
	_cleanup_free_ char *yaml = import_ok(argv, 6, &w);
	assert_non_null(strstr(yaml, "qemu:\n- localtime\n- m: 512\n- std-vga\n- nographic\n"));
	assert_null(w[0]);
	strv_free(w);

	char *unknown[] = {"qemu", "-newflag", "-m", "512", "-name", "-x"};
	_cleanup_free_ char *y2 = import_ok(unknown, 6, &w);
	_cleanup_strv_free_ char **warnings = w;
	assert_int_equal(strv_length(warnings), 3);
	assert_non_null(strstr(warnings[0], "`-newflag` took `-m` as its value, and the word after "
					    "it, `512`, is no option"));
	assert_non_null(strstr(warnings[1], "positional argument `512`"));
	assert_non_null(strstr(warnings[2], "`-name` took `-x` as its value, and the command line "
					    "ends"));

	/* a value starting with `-` followed by an option is not warned about */
	char *neg[] = {"qemu", "-cpu", "-hypervisor", "-m", "1"};
	_cleanup_free_ char *y3 = import_ok(neg, 5, &w);
	assert_null(w[0]);
	strv_free(w);
}

/* a JSON value (libvirt >= 7) is one string, never key=value parts */
static void test_json_values(void **state)
{
	char *argv[] = {"qemu", "-blockdev",
			"{\"driver\":\"file\",\"filename\":\"/vm/a=b,c.img\",\"node-name\":\"d\"}",
			"-object", "{\"qom-type\":\"secret\",\"id\":\"s\",\"data\":\"k=v\"}"};
	_cleanup_free_ char *yaml = import_ok(argv, 5, NULL);
	assert_non_null(
	    strstr(yaml, "qemu:\n"
			 "- blockdev: '{\"driver\":\"file\",\"filename\":\"/vm/a=b,c.img\","
			 "\"node-name\":\"d\"}'\n"
			 "- object: '{\"qom-type\":\"secret\",\"id\":\"s\",\"data\":\"k=v\"}'\n"));
	struct ql_error err = {0};
	_cleanup_definition_ struct definition *d = NULL;
	if (definition_parse("t.yml", yaml, strlen(yaml), &d, &err) < 0)
		fail_msg("%s\n%s", err.msg, yaml);
	_cleanup_free_ char **built = NULL;
	assert_int_equal(cmdline_build(d, &built, &err), 0);
	assert_int_equal(strv_length(built), 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(built[i], argv[i]);
}

/* argv words reach the terminal in messages only escaped */
static void test_messages_escape(void **state)
{
	char **w = NULL;
	char *argv[] = {"qemu", "disk\n\x1b[31m.img", "--name\x1b]0;x\x07", "v"};
	_cleanup_free_ char *yaml = import_ok(argv, 4, &w);
	_cleanup_strv_free_ char **warnings = w;
	assert_int_equal(strv_length(warnings), 2);
	for (char **p = warnings; *p; p++) {
		assert_null(strpbrk(*p, "\n\x1b\x07"));
		assert_non_null(strstr(*p, "\\x1b"));
	}
	assert_non_null(strstr(warnings[0], "`disk\\x0a\\x1b[31m.img`"));

	struct ql_error err = {0};
	char *bad[] = {"qemu", "-a\nb\x1b"};
	assert_int_equal(import_command_line(bad, 2, &yaml, &w, &err), -EINVAL);
	assert_null(strpbrk(err.msg, "\n\x1b"));
	assert_non_null(strstr(err.msg, "`-a\\x0ab\\x1b`"));
	ql_error_clear(&err);
	char *end[] = {"qemu", "-m\x1b"};
	assert_int_equal(import_command_line(end, 2, &yaml, &w, &err), -EINVAL);
	assert_null(strchr(err.msg, '\x1b'));
	ql_error_clear(&err);
}

/* a libvirt domain name in the header comment cannot end the comment line for a YAML 1.1
 * reader (U+2028/U+2029 are line breaks there) nor hold U+FEFF, which the loader refuses */
static void test_header_comment(void **state)
{
	struct import_launcher l = {
	    .source =
		strdup("libvirt domain `a\xe2\x80\xa8launcher: x\xe2\x80\xa9y\xef\xbb\xbfz`")};
	char *argv[] = {"qemu"};
	_cleanup_free_ char *yaml = NULL;
	_cleanup_strv_free_ char **w = NULL;
	struct ql_error err = {0};
	assert_int_equal(import_command_line_with(argv, 1, &l, &yaml, &w, &err), 0);
	import_launcher_done(&l);
	assert_null(strstr(yaml, "\xe2\x80\xa8"));
	assert_null(strstr(yaml, "\xe2\x80\xa9"));
	assert_null(strstr(yaml, "\xef\xbb\xbf"));
	assert_non_null(strstr(yaml, "# Launcher keys from libvirt domain "
				     "`a\\u2028launcher: x\\u2029y\\uFEFFz`.\n"));
	_cleanup_definition_ struct definition *d = NULL;
	if (definition_parse("t.yml", yaml, strlen(yaml), &d, &err) < 0)
		fail_msg("%s\n%s", err.msg, yaml);
}

static void check_refused(char *const *argv, size_t argc, const char *msg_part)
{
	struct ql_error err = {0};
	char *yaml = (char *)"untouched";
	char **w = (char **)"untouched";
	assert_int_equal(import_command_line(argv, argc, &yaml, &w, &err), -EINVAL);
	assert_string_equal(yaml, "untouched");
	assert_non_null(err.msg);
	if (!strstr(err.msg, msg_part))
		fail_msg("message `%s` lacks `%s`", err.msg, msg_part);
	ql_error_clear(&err);
}

static void test_refusals(void **state)
{
	char *missing[] = {"qemu", "-nographic", "-m"};
	check_refused(missing, 3, "`-m` needs a value");
	char *eq[] = {"qemu", "-m=2G"};
	check_refused(eq, 2, "`-m=2G`");
	char *dash[] = {"qemu", "-"};
	check_refused(dash, 2, "`-`");
	char *utf[] = {"qemu", "-name", "\xff\xfe"};
	check_refused(utf, 3, "UTF-8");
	char *utf2[] = {"qemu", "-\xc3"};
	check_refused(utf2, 2, "UTF-8");
	char *none[] = {""};
	check_refused(none, 1, "--import");
	check_refused(none, 0, "--import");
}

/* --- round trip over tests/data/import/ --- */

static char **read_args(const char *path)
{
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	char **v = calloc(1, sizeof(char *));
	size_t n = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) >= 0) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (line[0] == '#')
			continue;
		v = reallocarray(v, n + 2, sizeof(char *));
		assert_non_null(v);
		v[n++] = strdup(line);
		v[n] = NULL;
	}
	free(line);
	fclose(f);
	return v;
}

static void round_trip(const char *path)
{
	_cleanup_strv_free_ char **argv = read_args(path);
	assert_true(strv_length(argv) >= 1);
	_cleanup_free_ char *yaml = import_ok(argv, strv_length(argv), NULL);

	struct ql_error err = {0};
	_cleanup_definition_ struct definition *d = NULL;
	if (definition_parse(path, yaml, strlen(yaml), &d, &err) < 0)
		fail_msg("%s: the imported definition does not load: %s\n%s", path, err.msg, yaml);
	_cleanup_free_ char **built = NULL;
	assert_int_equal(cmdline_build(d, &built, &err), 0);
	size_t n = strv_length(argv);
	for (size_t i = 0; i < n || built[i]; i++) {
		if (i >= n || !built[i] || strcmp(argv[i], built[i]) != 0)
			fail_msg("%s: argv[%zu] differs: `%s` became `%s`\n%s", path, i,
				 i < n ? argv[i] : "(end)", built[i] ? built[i] : "(end)", yaml);
	}
}

static void test_round_trip(void **state)
{
	const char *dir = TEST_DATA_DIR "/import";
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	size_t files = 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".args") != 0)
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		round_trip(path);
		files++;
	}
	closedir(d);
	assert_true(files >= 4);
}

/* Every single argument shape from the quoting table survives the loader too. */
static void test_round_trip_values(void **state)
{
	const char *values[] = {"on", "0xf4", "", " x ", "a,b", "a,,b", "a: b", "#", "'", "\"",
				"\\", "\t", "a\nb", "Grüße", "-", "- x", "*a", "&a", "!a", "%a",
				"@a", "`a", "?", "? x", "|", ">", "{", "}", "[", "]", "x,", ",x",
				"k=v", "k=v,,", "=v", "k=", "k=v,l=,m", "a=b=c", "~", "null",
				/* U+FEFF (refused raw inside a definition), C1 controls */
				"k=\xef\xbb\xbfx",
				"a\xc2\x85"
				"b",
				"a\xc2\x9b"
				"8m"};
	for (size_t i = 0; i < sizeof(values) / sizeof(*values); i++) {
		char *argv[] = {"qemu", "-device", (char *)values[i], "-append", (char *)values[i]};
		_cleanup_free_ char *yaml = import_ok(argv, 5, NULL);
		struct ql_error err = {0};
		_cleanup_definition_ struct definition *d = NULL;
		if (definition_parse("t.yml", yaml, strlen(yaml), &d, &err) < 0)
			fail_msg("value `%s`: %s\n%s", values[i], err.msg, yaml);
		_cleanup_free_ char **built = NULL;
		assert_int_equal(cmdline_build(d, &built, &err), 0);
		assert_int_equal(strv_length(built), 5);
		assert_string_equal(built[2], values[i]);
		assert_string_equal(built[4], values[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flags),
	    cmocka_unit_test(test_yaml_scalar),
	    cmocka_unit_test(test_structure),
	    cmocka_unit_test(test_warnings),
	    cmocka_unit_test(test_old_flags),
	    cmocka_unit_test(test_json_values),
	    cmocka_unit_test(test_messages_escape),
	    cmocka_unit_test(test_header_comment),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_round_trip_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
