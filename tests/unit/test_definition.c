/* Unit tests of the definition loader: every launcher key, every qemu form, every error with its
 * exact position, and the malformed examples in tests/data/defs/bad. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmdline.h"
#include "definition.h"

#define DEFS TEST_DATA_DIR "/defs"
#define L "launcher:\n  binary: qemu\n" /* the minimal launcher section */

/* Most cases here are about `launcher:` alone; a definition needs a `qemu:` section too, so an
 * empty one is appended (after everything, so no position moves) when the text has none. */
static struct definition *parse_ok(const char *text)
{
	struct ql_error err = {0};
	struct definition *d = NULL;
	_cleanup_free_ char *owned = NULL;
	const char *yaml = text;
	if (strncmp(text, "qemu:", 5) != 0 && !strstr(text, "\nqemu:")) {
		assert_true(asprintf(&owned, "%sqemu: []\n", text) > 0);
		yaml = owned;
	}
	int r = definition_parse("t.yml", yaml, strlen(yaml), &d, &err);
	if (r < 0)
		print_error("unexpected error: %s\n--- input:\n%s\n", err.msg, yaml);
	assert_int_equal(r, 0);
	assert_null(err.msg);
	assert_non_null(d);
	return d;
}

/* Asserts the error is exactly at "t.yml:POS: " and contains `fragment`. */
static void check_error_len(const char *yaml, size_t len, const char *pos, const char *fragment)
{
	struct ql_error err = {0};
	struct definition *d = (struct definition *)0x1; /* untouched on failure */
	int r = definition_parse("t.yml", yaml, len, &d, &err);
	if (r == 0)
		print_error("no error, expected %s: %s\n--- input:\n%s\n", pos, fragment, yaml);
	assert_int_equal(r, -EINVAL);
	assert_ptr_equal(d, (struct definition *)0x1);
	assert_non_null(err.msg);
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "t.yml:%s: ", pos);
	if (strncmp(err.msg, prefix, strlen(prefix)) != 0 || !strstr(err.msg, fragment))
		print_error("got      `%s`\nexpected `%s...%s...`\n--- input:\n%.400s\n", err.msg,
			    prefix, fragment, yaml);
	assert_memory_equal(err.msg, prefix, strlen(prefix));
	assert_non_null(strstr(err.msg, fragment));
	ql_error_clear(&err);
}

static void check_error(const char *yaml, const char *pos, const char *fragment)
{
	check_error_len(yaml, strlen(yaml), pos, fragment);
}

static char **argv_of(const struct definition *d)
{
	struct ql_error err = {0};
	char **argv = NULL;
	assert_int_equal(cmdline_build(d, &argv, &err), 0);
	return argv;
}

static char *read_text(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = malloc(DEFINITION_MAX_BYTES + 2);
	assert_non_null(buf);
	size_t n = fread(buf, 1, DEFINITION_MAX_BYTES + 1, f);
	fclose(f);
	buf[n] = '\0';
	*ret_len = n;
	return buf;
}

static struct definition *parse_file(const char *path)
{
	size_t len;
	_cleanup_free_ char *text = read_text(path, &len);
	struct ql_error err = {0};
	struct definition *d = NULL;
	int r = definition_parse(path, text, len, &d, &err);
	if (r < 0)
		print_error("%s\n", err.msg);
	assert_int_equal(r, 0);
	return d;
}

/* ---------------------------------------------------------------------------------------- */

static void test_readme_forms_identical(void **state)
{
	static const char *const expected[] = {
	    "qemu-system-x86_64",
	    "-name",
	    "my virtual machine",
	    "-machine",
	    "pc,accel=kvm",
	    "-nographic",
	    "-monitor",
	    "unix:/run/my-vm.sock",
	    "-cpu",
	    "host",
	    "-smp",
	    "2,sockets=1,cores=1,threads=1",
	    "-m",
	    "2G",
	    "-device",
	    "ide-hd,bus=ide.0,drive=drive0",
	    "-drive",
	    "file=/var/storage/my-vm.qcow,if=none,id=drive0,format=qcow,readonly",
	    NULL,
	};
	static const char *const files[] = {"readme-structured.yml", "readme-strings.yml",
					    "readme-mixed.yml"};
	for (size_t f = 0; f < ELEMENTSOF(files); f++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", DEFS, files[f]);
		_cleanup_definition_ struct definition *d = parse_file(path);
		_cleanup_free_ char **argv = argv_of(d);
		for (size_t i = 0; expected[i] || argv[i]; i++) {
			if (!expected[i] || !argv[i] || !streq(expected[i], argv[i]))
				print_error("%s: argv[%zu] = `%s`, expected `%s`\n", files[f], i,
					    argv[i] ? argv[i] : "(end)",
					    expected[i] ? expected[i] : "(end)");
			assert_non_null(argv[i]);
			assert_non_null(expected[i]);
			assert_string_equal(argv[i], expected[i]);
		}
		assert_true(cmdline_has_option(d, "nographic"));
		assert_false(cmdline_has_option(d, "S"));
		assert_false(definition_wants_pinning(d));
	}
}

static void test_minimal_defaults(void **state)
{
	_cleanup_definition_ struct definition *d = parse_ok(L);
	assert_string_equal(d->path, "t.yml");
	assert_string_equal(d->binary, "qemu");
	assert_false(d->clear_env);
	assert_non_null(d->env);
	assert_null(d->env[0]);
	assert_false(d->debug);
	assert_false(d->has_user);
	assert_false(d->has_group);
	assert_int_equal(d->scheduler, QL_SCHED_UNSET);
	assert_false(d->has_priority);
	assert_int_equal(d->n_pins, 0);
	assert_int_equal(d->isolate_cpus, QL_ISOLATE_AUTO);
	assert_null(d->emulator_cpus);
	assert_int_equal(d->memlock, QL_MEMLOCK_UNCHANGED);
	assert_int_equal(d->shutdown_timeout, 60);
	assert_int_equal(d->n_options, 0);
	assert_false(definition_wants_pinning(d));

	_cleanup_free_ char **argv = argv_of(d);
	assert_string_equal(argv[0], "qemu");
	assert_null(argv[1]);

	/* `qemu:` with nothing and `qemu: []` are no options (a missing `qemu:` is an error) */
	definition_free(parse_ok(L "qemu:\n"));
	definition_free(parse_ok(L "qemu: []\n"));
	definition_free(parse_ok("qemu: []\n" L));
	definition_free(NULL);
}

static void test_full_launcher(void **state)
{
	_cleanup_definition_ struct definition *d =
	    parse_ok("launcher:\n"
		     "  binary: /usr/bin/qemu-system-x86_64\n"
		     "  clear_env: true\n"
		     "  env:\n"
		     "    QEMU_AUDIO_DRV: pa\n"
		     "    HEX: 0x1f\n"
		     "    EMPTY: ''\n"
		     "    SPACED: \"a b\"\n"
		     "  debug: true\n"
		     "  user: root\n"
		     "  group: 0\n"
		     "  scheduler: fifo\n"
		     "  priority: 10\n"
		     "  vcpu_pinning:\n"
		     "    0:\n"
		     "      0:\n"
		     "        0: 1\n"
		     "        1: 0\n"
		     "  isolate_cpus: true\n"
		     "  emulator_pinning: 0-1,4\n"
		     "  rlimit_memlock: true\n"
		     "  shutdown_timeout: 5\n"
		     "qemu:\n"
		     "- S\n");
	assert_string_equal(d->binary, "/usr/bin/qemu-system-x86_64");
	assert_true(d->clear_env);
	assert_int_equal(strv_length(d->env), 4);
	assert_string_equal(d->env[0], "QEMU_AUDIO_DRV=pa");
	assert_string_equal(d->env[1], "HEX=0x1f");
	assert_string_equal(d->env[2], "EMPTY=");
	assert_string_equal(d->env[3], "SPACED=a b");
	assert_true(d->debug);
	assert_true(d->has_user);
	assert_int_equal(d->user, 0);
	assert_string_equal(d->user_name, "root");
	assert_int_equal(d->user_gid, 0);
	assert_true(d->has_group);
	assert_int_equal(d->group, 0);
	assert_int_equal(d->scheduler, QL_SCHED_FIFO);
	assert_string_equal(ql_sched_policy_name(d->scheduler), "fifo");
	assert_true(d->has_priority);
	assert_int_equal(d->priority, 10);
	assert_int_equal(d->n_pins, 2);
	assert_false(d->pins_flat);
	assert_int_equal(d->pins_mark.line, 14);
	assert_int_equal(d->pins_mark.column, 3);
	assert_int_equal(d->pins[1].socket, 0);
	assert_int_equal(d->pins[1].core, 0);
	assert_int_equal(d->pins[1].thread, 1);
	assert_int_equal(d->pins[1].index, -1);
	assert_int_equal(d->pins[1].host_cpu, 0);
	assert_int_equal(d->pins[1].mark.line, 18);
	assert_int_equal(d->pins[1].mark.column, 12);
	assert_int_equal(d->isolate_cpus, QL_ISOLATE_TRUE);
	_cleanup_free_ char *emu = cpu_list_format(d->emulator_cpus);
	assert_string_equal(emu, "0-1,4");
	assert_int_equal(d->memlock, QL_MEMLOCK_UNLIMITED);
	assert_int_equal(d->shutdown_timeout, 5);
	assert_int_equal(d->n_options, 1);
	assert_int_equal(d->qemu_mark.line, 23);
	assert_int_equal(d->qemu_mark.column, 1);
	assert_int_equal(d->options[0].mark.line, 24);
	assert_int_equal(d->options[0].mark.column, 3);
	assert_true(cmdline_has_option(d, "S"));
	assert_true(definition_wants_pinning(d));
}

static void test_binary(void **state)
{
	check_error("launcher:\n  debug: true\n", "1:1", "needs `binary`");
	check_error("qemu: []\n", "1:1", "missing `launcher:`");
	check_error("launcher:\n  binary: ''\n", "2:11", "must not be empty");
	check_error("launcher:\n  binary:\n", "2:3", "`binary` must be a string, got nothing");
	check_error("launcher:\n  binary: [a]\n", "2:11", "got a sequence");
	check_error("launcher:\n  binary: {a: b}\n", "2:11", "got a mapping");
	check_error("launcher:\n", "1:1", "`launcher` must be a mapping");
	check_error("launcher: qemu\n", "1:11", "`launcher` must be a mapping");
	check_error("launcher: [qemu]\n", "1:11", "`launcher` must be a mapping");
	/* verbatim: a plain scalar that YAML would type is still the text */
	_cleanup_definition_ struct definition *d = parse_ok("launcher:\n  binary: 123\n");
	assert_string_equal(d->binary, "123");
}

static void test_booleans(void **state)
{
	_cleanup_definition_ struct definition *d =
	    parse_ok(L "  clear_env: false\n  debug: true\n");
	assert_false(d->clear_env);
	assert_true(d->debug);
	check_error(L "  clear_env: yes\n", "3:14",
		    "`clear_env` must be `true` or `false`, got `yes`");
	check_error(L "  debug: True\n", "3:10", "`debug` must be `true` or `false`");
	check_error(L "  debug: \"true\"\n", "3:10", "got quoted `true`");
	check_error(L "  debug: 1\n", "3:10", "`true` or `false`");
	check_error(L "  debug: [true]\n", "3:10", "got a sequence");
	check_error(L "  debug:\n", "3:3", "got nothing");
}

static void test_env(void **state)
{
	_cleanup_definition_ struct definition *d =
	    parse_ok(L "  env:\n    A: 1.0\n    B: true\n    C: 'it''s'\n    lower_ok: x=y\n");
	assert_int_equal(strv_length(d->env), 4);
	assert_string_equal(d->env[0], "A=1.0");
	assert_string_equal(d->env[1], "B=true");
	assert_string_equal(d->env[2], "C=it's");
	assert_string_equal(d->env[3], "lower_ok=x=y");

	check_error(L "  env:\n    A=B: x\n", "4:5", "invalid environment variable name `A=B`");
	check_error(L "  env:\n    '': x\n", "4:5", "invalid environment variable name ``");
	check_error(L "  env:\n    A:\n", "4:5", "`A` has no value (write `A: ''`");
	check_error(L "  env:\n    A: [1]\n", "4:8", "`A` must be a scalar, got a sequence");
	check_error(L "  env: [A=1]\n", "3:8", "`env` must be a mapping");
	check_error(L "  env: A=1\n", "3:8", "`env` must be a mapping");
	check_error(L "  env:\n    A: 1\n    A: 2\n", "5:5", "duplicate key `A` (first at line 4)");
	check_error(L "  env:\n    \"A\\0B\": 1\n", "4:5", "NUL character");
}

static void test_user_group(void **state)
{
	_cleanup_definition_ struct definition *d = parse_ok(L "  user: 0\n");
	assert_true(d->has_user);
	assert_int_equal(d->user, 0);
	assert_string_equal(d->user_name, "root");
	assert_int_equal(d->user_gid, 0);
	definition_free(d);

	d = parse_ok(L "  user: nobody\n  group: nogroup\n");
	assert_int_equal(d->user, 65534);
	assert_string_equal(d->user_name, "nobody");
	assert_int_equal(d->user_gid, 65534);
	assert_true(d->has_group);
	assert_int_equal(d->group, 65534);
	definition_free(d);

	/* an id without a passwd entry is fine, it just has no name (no supplementary groups) */
	d = parse_ok(L "  user: 4294967294\n  group: 4294967294\n");
	assert_int_equal(d->user, 4294967294U);
	assert_null(d->user_name);
	assert_int_equal(d->group, 4294967294U);
	definition_free(d);

	d = parse_ok(L "  group: root\n");
	assert_false(d->has_user);
	assert_true(d->has_group);
	assert_int_equal(d->group, 0);
	definition_free(d);
	d = NULL;

	check_error(L "  user: -1\n", "3:9",
		    "`user` must be a decimal integer without a sign (0 to 4294967294), got `-1`");
	check_error(L "  user: 4294967295\n", "3:9", "between 0 and 4294967294");
	check_error(L "  user: 99999999999999999999999\n", "3:9", "between 0 and 4294967294");
	check_error(L "  user: 0x10\n", "3:9", "`user` must be a decimal integer, got `0x10`");
	check_error(L "  user: +5\n", "3:9", "without a sign");
	check_error(L "  user: no-such-user-ql\n", "3:9", "unknown user `no-such-user-ql`");
	check_error(L "  user: '0'\n", "3:9", "unknown user `0`");
	check_error(L "  user:\n", "3:3", "`user` must be a user id or name, got nothing");
	check_error(L "  user: [0]\n", "3:9", "got a sequence");
	check_error(L "  group: no-such-group-ql\n", "3:10", "unknown group `no-such-group-ql`");
	check_error(L "  group: -5\n", "3:10", "`group` must be a decimal integer without a sign");
	check_error(L "  group: {a: 1}\n", "3:10", "got a mapping");
}

static void test_scheduling(void **state)
{
	static const struct {
		const char *yaml;
		enum ql_sched_policy p;
		int prio;
	} ok[] = {
	    {L "  scheduler: fifo\n  priority: 1\n", QL_SCHED_FIFO, 1},
	    {L "  priority: 99\n  scheduler: rr\n", QL_SCHED_RR, 99},
	    {L "  scheduler: other\n", QL_SCHED_OTHER, 0},
	    {L "  scheduler: batch\n  priority: 0\n", QL_SCHED_BATCH, 0},
	    {L "  scheduler: idle\n", QL_SCHED_IDLE, 0},
	};
	for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
		_cleanup_definition_ struct definition *d = parse_ok(ok[i].yaml);
		assert_int_equal(d->scheduler, ok[i].p);
		assert_true(d->has_priority);
		assert_int_equal(d->priority, ok[i].prio);
		assert_true(definition_wants_pinning(d));
	}
	_cleanup_definition_ struct definition *d =
	    parse_ok(L "  scheduler: deadline\n  sched_runtime: 1024\n  sched_deadline: 2000000\n");
	assert_int_equal(d->scheduler, QL_SCHED_DEADLINE);
	assert_int_equal(d->sched_runtime, 1024);
	assert_int_equal(d->sched_deadline, 2000000);
	assert_int_equal(d->sched_period, 2000000); /* defaults to the deadline */
	assert_string_equal(ql_sched_policy_name(QL_SCHED_DEADLINE), "deadline");
	assert_string_equal(ql_sched_policy_name(QL_SCHED_UNSET), "unset");
	definition_free(d);
	d = parse_ok(L "  scheduler: deadline\n  priority: 0\n  sched_runtime: 500000\n"
		       "  sched_deadline: 500000\n  sched_period: 1000000\n");
	assert_int_equal(d->sched_period, 1000000);

	check_error(L "  scheduler: fifi\n", "3:14", "unknown scheduler `fifi`");
	check_error(L "  scheduler: fifi\n", "3:14", "did you mean `fifo`?");
	check_error(L "  scheduler: SCHED_FIFO\n", "3:14", "one of batch, deadline, fifo");
	check_error(L "  scheduler: [fifo]\n", "3:14", "got a sequence");
	check_error(L "  priority: 5\n", "3:3", "`priority` needs `scheduler`");
	check_error(L "  scheduler: fifo\n", "3:14", "scheduler `fifo` needs a `priority`");
	check_error(L "  scheduler: rr\n  priority: 0\n", "4:13",
		    "must be between 1 and 99, got 0");
	check_error(L "  scheduler: rr\n  priority: 100\n", "4:13", "between 0 and 99");
	check_error(L "  scheduler: rr\n  priority: -1\n", "4:13", "without a sign (0 to 99)");
	check_error(L "  scheduler: rr\n  priority: '5'\n", "4:13", "got the quoted string `5`");
	check_error(L "  scheduler: other\n  priority: 5\n", "4:13",
		    "only takes priority 0, got 5");
	check_error(L "  scheduler: idle\n  priority: 1\n", "4:13", "`idle` only takes priority 0");
	check_error(L "  scheduler: deadline\n  sched_deadline: 2000\n", "3:14",
		    "needs `sched_runtime`");
	check_error(L "  scheduler: deadline\n  sched_runtime: 2000\n", "3:14",
		    "needs `sched_deadline`");
	check_error(L "  scheduler: deadline\n  sched_runtime: 1023\n  sched_deadline: 2000\n",
		    "4:18", "at least 1024 ns");
	check_error(L "  scheduler: deadline\n  sched_runtime: 3000\n  sched_deadline: 2000\n",
		    "4:18", "must not exceed `sched_deadline`");
	check_error(L "  scheduler: deadline\n  sched_runtime: 2000\n  sched_deadline: 3000\n"
		      "  sched_period: 2500\n",
		    "6:17", "`sched_deadline` (3000) must not exceed `sched_period` (2500)");
	check_error(L "  scheduler: deadline\n  priority: 3\n  sched_runtime: 2000\n"
		      "  sched_deadline: 3000\n",
		    "4:13", "takes no priority");
	check_error(L "  sched_runtime: 2000\n", "3:3",
		    "`sched_runtime` is only valid with `scheduler: deadline`");
	check_error(L
		    "  scheduler: fifo\n  priority: 3\n  sched_period: 2000\n  sched_deadline: 1\n",
		    "5:3", "`sched_period` is only valid with");
	check_error(L "  scheduler: deadline\n  sched_runtime: 9223372036854775808\n", "4:18",
		    "between 0 and 9223372036854775807");
}

static void test_vcpu_pinning(void **state)
{
	/* the seed README's example */
	_cleanup_definition_ struct definition *d =
	    parse_ok(L "  vcpu_pinning:\n    0:\n      0:\n        0: 2\n        1: 6\n"
		       "      1:\n        0: 3\n        1: 7\n");
	static const int want[4][4] = {{0, 0, 0, 2}, {0, 0, 1, 6}, {0, 1, 0, 3}, {0, 1, 1, 7}};
	assert_int_equal(d->n_pins, 4);
	assert_false(d->pins_flat);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(d->pins[i].socket, want[i][0]);
		assert_int_equal(d->pins[i].core, want[i][1]);
		assert_int_equal(d->pins[i].thread, want[i][2]);
		assert_int_equal(d->pins[i].host_cpu, want[i][3]);
		assert_int_equal(d->pins[i].index, -1);
	}
	assert_int_equal(d->pins[2].mark.line, 9);
	assert_int_equal(d->pins[2].mark.column, 12);
	assert_true(definition_wants_pinning(d));
	definition_free(d);

	/* flow style and the flat list in cpu-index order */
	d = parse_ok(L "  vcpu_pinning: {1: {2: {3: 8191}}}\n");
	assert_int_equal(d->n_pins, 1);
	assert_int_equal(d->pins[0].socket, 1);
	assert_int_equal(d->pins[0].core, 2);
	assert_int_equal(d->pins[0].thread, 3);
	assert_int_equal(d->pins[0].host_cpu, 8191);
	definition_free(d);
	d = parse_ok(L "  vcpu_pinning: [1, 0, 1]\n");
	assert_true(d->pins_flat);
	assert_int_equal(d->n_pins, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(d->pins[i].index, i);
		assert_int_equal(d->pins[i].socket, -1);
		assert_int_equal(d->pins[i].core, -1);
		assert_int_equal(d->pins[i].thread, -1);
	}
	assert_int_equal(d->pins[1].host_cpu, 0);
	assert_int_equal(d->pins[1].mark.column, 21);
	assert_int_equal(d->pins_mark.line, 3);

	check_error(L "  vcpu_pinning: {}\n", "3:17", "`vcpu_pinning` is empty");
	check_error(L "  vcpu_pinning: []\n", "3:17", "`vcpu_pinning` is empty");
	check_error(L "  vcpu_pinning:\n", "3:3", "got nothing");
	check_error(L "  vcpu_pinning: 3\n", "3:17", "got a scalar");
	check_error(L "  vcpu_pinning: [1, x]\n", "3:21", "must be a decimal integer, got `x`");
	check_error(L "  vcpu_pinning: [8192]\n", "3:18", "between 0 and 8191");
	check_error(L "  vcpu_pinning: [-1]\n", "3:18", "without a sign (0 to 8191)");
	check_error(L "  vcpu_pinning: [[1]]\n", "3:18", "got a sequence");
	check_error(L "  vcpu_pinning:\n    a: {0: {0: 1}}\n", "4:5",
		    "`vcpu_pinning socket` must be a decimal integer, got `a`");
	check_error(L "  vcpu_pinning:\n    0: {x: {0: 1}}\n", "4:9", "`vcpu_pinning core`");
	check_error(L "  vcpu_pinning:\n    0: {0: {'0': 1}}\n", "4:13",
		    "`vcpu_pinning thread` must be an integer, got the quoted string");
	check_error(L "  vcpu_pinning:\n    0: 1\n", "4:8",
		    "socket 0 must be a non-empty mapping of core: thread: host CPU, got a scalar");
	check_error(L "  vcpu_pinning:\n    0: {}\n", "4:8", "got an empty mapping");
	check_error(L "  vcpu_pinning:\n    0:\n      1: [2]\n", "5:10",
		    "socket 0 core 1 must be a non-empty mapping of thread: host CPU");
	check_error(L "  vcpu_pinning:\n    0:\n      1:\n        0: {a: 1}\n", "6:12",
		    "`vcpu_pinning` must be an integer, got a mapping");
	check_error(L "  vcpu_pinning:\n    0:\n      1:\n        0:\n", "6:9", "got nothing");
	check_error(L "  vcpu_pinning:\n    0:\n      0:\n        0: 1\n        0: 2\n", "7:9",
		    "duplicate key `0` (first at line 6)");
	/* Regression: keys spelled differently but naming the same vCPU (found while extending
	 * the malformed corpus); the later spelling is reported, in document order. */
	check_error(L "  vcpu_pinning:\n    0:\n      0:\n        0: 1\n        00: 0\n", "7:13",
		    "vCPU (socket 0 core 0 thread 0) is pinned twice (first at line 6)");
	check_error(L "  vcpu_pinning:\n    0: {0: {0: 1, 1: 1}}\n    000: {0: {1: 0}}\n", "5:18",
		    "vCPU (socket 0 core 0 thread 1) is pinned twice (first at line 4)");
	check_error(L "  vcpu_pinning:\n    0: {0: {0: 1, 1: 1}, 01: {0: 1, 00: 0}}\n", "4:41",
		    "vCPU (socket 0 core 1 thread 0) is pinned twice (first at line 4)");
}

/* Issue 10 item 9: integers take no sign, not even `-0` (which was 0: `user: -0` was root). */
static void test_integers_take_no_sign(void **state)
{
	(void)state;
	static const struct {
		const char *yaml, *pos;
	} cases[] = {
	    {L "  user: -0\n", "3:9"},
	    {L "  user: +0\n", "3:9"},
	    {L "  group: -0\n", "3:10"},
	    {L "  group: +1\n", "3:10"},
	    {L "  scheduler: other\n  priority: -0\n", "4:13"},
	    {L "  scheduler: fifo\n  priority: +1\n", "4:13"},
	    {L "  scheduler: deadline\n  sched_runtime: -0\n  sched_deadline: 2000\n", "4:18"},
	    {L "  scheduler: deadline\n  sched_runtime: 1024\n  sched_deadline: +2000\n", "5:19"},
	    {L "  scheduler: deadline\n  sched_runtime: 1024\n  sched_deadline: 2000\n"
	       "  sched_period: -0\n",
	     "6:17"},
	    {L "  shutdown_timeout: -0\n", "3:21"},
	    {L "  shutdown_timeout: +5\n", "3:21"},
	    {L "  vcpu_pinning: [-0]\n", "3:18"},
	    {L "  vcpu_pinning: [0, +1]\n", "3:21"},
	    {L "  vcpu_pinning:\n    -0: {0: {0: 1}}\n", "4:5"},
	    {L "  vcpu_pinning:\n    0: {+0: {0: 1}}\n", "4:9"},
	    {L "  vcpu_pinning:\n    0: {0: {-0: 1}}\n", "4:13"},
	    {L "  vcpu_pinning:\n    0: {0: {0: -0}}\n", "4:16"},
	    {L "  emulator_pinning: [-0]\n", "3:22"},
	    {L "  emulator_pinning: [+1]\n", "3:22"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_error(cases[i].yaml, cases[i].pos,
			    "must be a decimal integer without a sign");
	check_error(L "  emulator_pinning: '-0'\n", "3:21", "`emulator_pinning`");
	check_error(L "  emulator_pinning: '+1'\n", "3:21", "`emulator_pinning`");
	check_error(L "  rlimit_memlock: -0\n", "3:19", "got `-0`");
	check_error(L "  rlimit_memlock: +1G\n", "3:19", "got `+1G`");
	check_error(L "  umask: -022\n", "3:10", "no sign");
	check_error(L "  umask: +022\n", "3:10", "no sign");
}

/* Issue 10 item 11: no `qemu:` section is an error (qemu would start with no options at all). */
static void test_qemu_section_required(void **state)
{
	(void)state;
	check_error(L, "1:1", "missing `qemu:` section");
	check_error("# c\n" L "  debug: true\n", "2:1", "missing `qemu:` section");
	struct ql_error err = {0};
	struct definition *d = NULL;
	const char *none = L "qemu: []\n";
	assert_int_equal(definition_parse("t.yml", none, strlen(none), &d, &err), 0);
	assert_int_equal(d->n_options, 0);
	definition_free(d);
	d = NULL;
	const char *empty = L "qemu:\n";
	assert_int_equal(definition_parse("t.yml", empty, strlen(empty), &d, &err), 0);
	definition_free(d);
}

static void test_umask_working_directory(void **state)
{
	(void)state;
	struct definition *d = parse_ok(L "  umask: 0027\n  working_directory: /srv/vm\n");
	assert_true(d->has_umask);
	assert_int_equal(d->umask, 027);
	assert_string_equal(d->working_directory, "/srv/vm");
	definition_free(d);
	d = parse_ok(L "  umask: '077'\n");
	assert_int_equal(d->umask, 077);
	assert_null(d->working_directory);
	definition_free(d);
	d = parse_ok(L "  umask: 0\n");
	assert_true(d->has_umask);
	assert_int_equal(d->umask, 0);
	definition_free(d);
	d = parse_ok(L);
	assert_false(d->has_umask);
	definition_free(d);

	check_error(L "  umask: 0778\n", "3:10", "`umask` must be an octal mask from 000 to 0777");
	check_error(L "  umask: 1000\n", "3:10", "got `1000`");
	check_error(L "  umask: 00022\n", "3:10", "got `00022`");
	check_error(L "  umask: ''\n", "3:10", "`umask` must be an octal mask");
	check_error(L "  umask:\n", "3:3",
		    "`umask` must be an octal mask such as `022`, got nothing");
	check_error(L "  umask: [022]\n", "3:10", "got a sequence");
	check_error(L "  working_directory: srv\n", "3:22",
		    "`working_directory` must be an absolute path, got `srv`");
	check_error(L "  working_directory:\n", "3:3", "`working_directory` must be a string");
	check_error(L "  umsak: 022\n", "3:3", "did you mean `umask`?");
}

static void test_isolate_emulator(void **state)
{
	static const struct {
		const char *v;
		enum ql_isolate want;
	} iso[] = {
	    {"auto", QL_ISOLATE_AUTO}, {"true", QL_ISOLATE_TRUE}, {"false", QL_ISOLATE_FALSE}};
	for (size_t i = 0; i < ELEMENTSOF(iso); i++) {
		char yaml[128];
		snprintf(yaml, sizeof(yaml), L "  isolate_cpus: %s\n", iso[i].v);
		_cleanup_definition_ struct definition *d = parse_ok(yaml);
		assert_int_equal(d->isolate_cpus, iso[i].want);
	}
	check_error(L "  isolate_cpus: yes\n", "3:17",
		    "must be `auto`, `true` or `false`, got `yes`");
	check_error(L "  isolate_cpus: [auto]\n", "3:17", "got a sequence");

	/* keyword keys: every name, the error for another word and for a non-scalar */
	static const struct {
		const char *v;
		enum ql_hugepages want;
	} hp[] = {{"check", QL_HUGEPAGES_CHECK},
		  {"reserve", QL_HUGEPAGES_RESERVE},
		  {"ignore", QL_HUGEPAGES_IGNORE}};
	for (size_t i = 0; i < ELEMENTSOF(hp); i++) {
		char yaml[128];
		snprintf(yaml, sizeof(yaml), L "  hugepages: %s\n", hp[i].v);
		_cleanup_definition_ struct definition *d = parse_ok(yaml);
		assert_int_equal(d->hugepages, hp[i].want);
	}
	check_error(L "  hugepages: keep\n", "3:14",
		    "`hugepages` must be `check`, `reserve` or `ignore`, got `keep`");
	static const struct {
		const char *v;
		enum ql_core_sched want;
	} cs[] = {{"off", QL_CORE_SCHED_OFF},
		  {"false", QL_CORE_SCHED_OFF},
		  {"auto", QL_CORE_SCHED_AUTO},
		  {"vm", QL_CORE_SCHED_VM},
		  {"vcpu", QL_CORE_SCHED_VCPU}};
	for (size_t i = 0; i < ELEMENTSOF(cs); i++) {
		char yaml[128];
		snprintf(yaml, sizeof(yaml), L "  core_scheduling: %s\n", cs[i].v);
		_cleanup_definition_ struct definition *d = parse_ok(yaml);
		assert_int_equal(d->core_sched, cs[i].want);
	}
	check_error(L "  core_scheduling: 'false'\n", "3:20",
		    "`core_scheduling` must be `off`, `auto`, `vm` or `vcpu`, got `false`");
	check_error(L "  core_scheduling: {}\n", "3:20", "got a mapping");

	static const struct {
		const char *v, *want;
	} emu[] = {{"0-1,4", "0-1,4"},
		   {"3", "3"},
		   {"'2'", "2"},
		   {"[0, 2, 2]", "0,2"},
		   {"\"5,0-1\"", "0-1,5"}};
	for (size_t i = 0; i < ELEMENTSOF(emu); i++) {
		char yaml[128];
		snprintf(yaml, sizeof(yaml), L "  emulator_pinning: %s\n", emu[i].v);
		_cleanup_definition_ struct definition *d = parse_ok(yaml);
		_cleanup_free_ char *s = cpu_list_format(d->emulator_cpus);
		assert_string_equal(s, emu[i].want);
		assert_true(definition_wants_pinning(d));
	}
	check_error(L "  emulator_pinning: ''\n", "3:21", "`emulator_pinning` is empty");
	check_error(L "  emulator_pinning: []\n", "3:21", "`emulator_pinning` is empty");
	check_error(L "  emulator_pinning: 1-x\n", "3:21", "`emulator_pinning`: ");
	check_error(L "  emulator_pinning: 9000\n", "3:21", "`emulator_pinning`: ");
	check_error(L "  emulator_pinning: [0, 9000]\n", "3:25", "between 0 and 8191");
	check_error(L "  emulator_pinning: [0, '1']\n", "3:25", "quoted string");
	check_error(L "  emulator_pinning: {0: 1}\n", "3:21", "got a mapping");
	check_error(L "  emulator_pinning:\n", "3:3", "got nothing");
	/* iothread_pinning takes the same lists, and its messages name it */
	check_error(L "  iothread_pinning: {io0: 0-x}\n", "3:27", "`iothread_pinning`: ");
	check_error(L "  iothread_pinning: {io0: [0, x]}\n", "3:31",
		    "`iothread_pinning` must be a decimal integer");
	check_error(L "  iothread_pinning: {io0: {}}\n", "3:27",
		    "`iothread_pinning` must be a host CPU list");
	check_error(L "  iothread_pinning: {io0: []}\n", "3:27", "`iothread_pinning` is empty");
	check_error(L "  iothread_pinning: {}\n", "3:21", "`iothread_pinning` is empty");
}

static void test_memlock_timeout(void **state)
{
	static const struct {
		const char *v;
		enum ql_memlock m;
		uint64_t bytes;
	} ok[] = {
	    {"true", QL_MEMLOCK_UNLIMITED, 0},
	    {"false", QL_MEMLOCK_UNCHANGED, 0},
	    {"auto", QL_MEMLOCK_AUTO, 0},
	    {"1", QL_MEMLOCK_BYTES, 1},
	    {"65536", QL_MEMLOCK_BYTES, 65536},
	    {"64K", QL_MEMLOCK_BYTES, 64ULL << 10},
	    {"16G", QL_MEMLOCK_BYTES, 16ULL << 30},
	    {"3M", QL_MEMLOCK_BYTES, 3ULL << 20},
	    {"2T", QL_MEMLOCK_BYTES, 2ULL << 40},
	    {"2KiB", QL_MEMLOCK_BYTES, 2048},
	    {"5MiB", QL_MEMLOCK_BYTES, 5ULL << 20},
	    {"1GiB", QL_MEMLOCK_BYTES, 1ULL << 30},
	    {"1TiB", QL_MEMLOCK_BYTES, 1ULL << 40},
	    {"18446744073709551615", QL_MEMLOCK_BYTES, UINT64_MAX},
	    {"16777215T", QL_MEMLOCK_BYTES, 16777215ULL << 40},
	};
	for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
		char yaml[128];
		snprintf(yaml, sizeof(yaml), L "  rlimit_memlock: %s\n", ok[i].v);
		_cleanup_definition_ struct definition *d = parse_ok(yaml);
		assert_int_equal(d->memlock, ok[i].m);
		if (ok[i].m == QL_MEMLOCK_BYTES)
			assert_true(d->memlock_bytes == ok[i].bytes);
	}
	check_error(L "  rlimit_memlock: 0\n", "3:19", "must not be zero");
	check_error(L "  rlimit_memlock: 0G\n", "3:19", "must not be zero");
	check_error(L "  rlimit_memlock: 16777216T\n", "3:19", "`16777216T` is too large");
	check_error(L "  rlimit_memlock: 18446744073709551616\n", "3:19", "too large");
	check_error(L "  rlimit_memlock: 16g\n", "3:19", "got `16g`");
	check_error(L "  rlimit_memlock: 16 G\n", "3:19", "a size (bytes, or with K, M, G, T");
	check_error(L "  rlimit_memlock: -1\n", "3:19", "got `-1`");
	check_error(L "  rlimit_memlock: '16G'\n", "3:19", "got quoted `16G`");
	check_error(L "  rlimit_memlock: yes\n", "3:19", "`true`, `false`, `auto` or a size");
	check_error(L "  rlimit_memlock: 'auto'\n", "3:19", "got quoted `auto`");
	check_error(L "  rlimit_memlock: [1]\n", "3:19", "got a sequence");

	_cleanup_definition_ struct definition *d = parse_ok(L "  shutdown_timeout: 0\n");
	assert_int_equal(d->shutdown_timeout, 0);
	definition_free(d);
	d = parse_ok(L "  shutdown_timeout: 86400\n");
	assert_int_equal(d->shutdown_timeout, 86400);
	check_error(L "  shutdown_timeout: 86401\n", "3:21", "between 0 and 86400");
	check_error(L "  shutdown_timeout: 1.5\n", "3:21", "decimal integer, got `1.5`");
	check_error(L "  shutdown_timeout: 1_000\n", "3:21", "decimal integer");
	check_error(L "  shutdown_timeout: 0o17\n", "3:21", "decimal integer");
}

static void test_housekeeping(void **state)
{
	(void)state;
#define PIN "  vcpu_pinning: [2, 3]\n"
	_cleanup_definition_ struct definition *d = parse_ok(L PIN "  housekeeping: true\n");
	assert_true(d->housekeeping.on && d->housekeeping.irqs && d->housekeeping.workqueues &&
		    d->housekeeping.kthreads);
	assert_int_equal(d->housekeeping.stat_interval, 10);
	definition_free(d);
	d = parse_ok(L PIN "  housekeeping: false\n");
	assert_false(d->housekeeping.on || d->housekeeping.irqs);
	definition_free(d);
	d = parse_ok(L PIN "  housekeeping:\n    irqs: true\n    stat_interval: 0\n");
	assert_true(d->housekeeping.on && d->housekeeping.irqs);
	assert_false(d->housekeeping.workqueues || d->housekeeping.kthreads);
	definition_free(d);
	d = parse_ok(L PIN "  housekeeping:\n    kthreads: true\n");
	assert_true(d->housekeeping.kthreads);
	assert_false(d->housekeeping.irqs);
	assert_int_equal(d->housekeeping.stat_interval, 0);
	check_error(L "  housekeeping: true\n", "3:3", "`housekeeping` needs `vcpu_pinning`");
	check_error(L PIN "  housekeeping: yes\n", "4:17", "`true` or `false`");
	check_error(L PIN "  housekeeping: [irqs]\n", "4:17", "`true`, `false` or a mapping");
	check_error(L PIN "  housekeeping:\n    irq: true\n", "5:5",
		    "unknown housekeeping key `irq`; did you mean `irqs`?");
	check_error(L PIN "  housekeeping:\n    stat_interval: 3601\n", "5:20",
		    "between 0 and 3600");
	/* the RT throttling values: explicit only, never implied by `true` */
	definition_free(d);
	d = parse_ok(L PIN "  housekeeping: true\n");
	assert_false(d->housekeeping.rt_runtime_set || d->housekeeping.fair_server_set);
	definition_free(d);
	d = parse_ok(L PIN
		     "  housekeeping:\n    rt_runtime_us: -1\n    fair_server_runtime_ns: 0\n");
	assert_true(d->housekeeping.on && d->housekeeping.rt_runtime_set &&
		    d->housekeeping.fair_server_set);
	assert_int_equal(d->housekeeping.rt_runtime_us, -1);
	assert_int_equal(d->housekeeping.fair_server_runtime_ns, 0);
	assert_false(d->housekeeping.irqs);
	definition_free(d);
	d = parse_ok(L PIN "  housekeeping:\n    rt_runtime_us: 980000\n");
	assert_int_equal(d->housekeeping.rt_runtime_us, 980000);
	assert_false(d->housekeeping.fair_server_set);
	check_error(
	    L PIN "  housekeeping:\n    rt_runtime_us: -2\n", "5:20",
	    "`housekeeping.rt_runtime_us` must be -1 (no throttling) or 0 to 2147483647, got `-2`");
	check_error(L PIN "  housekeeping:\n    rt_runtime_us: \"-1\"\n", "5:20", "quoted");
	check_error(L PIN "  housekeeping:\n    fair_server_runtime_ns: -1\n", "5:29",
		    "without a sign");
#undef PIN
}

static void test_vfio(void **state)
{
	(void)state;
	_cleanup_definition_ struct definition *d = parse_ok(L "  vfio:\n    managed: true\n");
	assert_true(d->vfio_managed);
	definition_free(d);
	d = parse_ok(L "  vfio: {managed: false}\n");
	assert_false(d->vfio_managed);
	definition_free(d);
	d = parse_ok(L "  vfio: {}\n");
	assert_false(d->vfio_managed);
	check_error(L "  vfio: true\n", "3:9", "`vfio` must be a mapping (`managed: true`)");
	check_error(L "  vfio:\n    managed: maybe\n", "4:14", "`true` or `false`");
	check_error(L "  vfio:\n    manage: true\n", "4:5",
		    "unknown vfio key `manage`; did you mean `managed`?");
}

static void test_unknown_duplicate_keys(void **state)
{
	check_error("lancher:\n  binary: q\n", "1:1",
		    "unknown key `lancher`; did you mean `launcher`?");
	check_error(L "qemus: []\n", "3:1", "did you mean `qemu`?");
	check_error(L "vm: x\n", "3:1", "unknown key `vm`");
	check_error(L "binary: x\n", "3:1", "it belongs under `launcher:`");
	check_error(L "  binray: x\n", "3:3",
		    "unknown launcher key `binray`; did you mean `binary`?");
	check_error(L "  cpu_pinning: x\n", "3:3", "did you mean `vcpu_pinning`?");
	check_error(L "  clear_environment: true\n", "3:3", "unknown launcher key");
	check_error(L "  shutdown_timout: 3\n", "3:3", "did you mean `shutdown_timeout`?");
	check_error(L "qemu: []\nlauncher:\n  binary: b\n", "4:1",
		    "duplicate key `launcher` (first at line 1)");
	check_error("launcher:\n  binary: a\n  binary: b\n", "3:3", "duplicate key `binary`");
	check_error(L "qemu:\n- drive: {file: a, file: b}\n", "4:20", "duplicate key `file`");
	/* the earliest duplicate wins, wherever it is nested */
	check_error(L "  env: {A: 1, A: 2}\nqemu: []\nqemu: []\n", "3:15", "duplicate key `A`");
	check_error("[1, 2]\n", "1:1",
		    "must be a mapping with `launcher:` and `qemu:`, got a sequence");
	check_error("hello\n", "1:1", "got a scalar");
	check_error("", "1:1", "definition is empty");
	check_error("# only a comment\n", "1:1", "definition is empty");
	check_error("---\n", "1:1", "definition is empty");
}

static void test_qemu_values_verbatim(void **state)
{
	_cleanup_definition_ struct definition *d =
	    parse_ok(L "qemu:\n"
		       "- nographic\n"
		       "- 'S'\n"
		       "- addr: 0x1f\n"
		       "- ver: 1.0\n"
		       "- b: true\n"
		       "- q: 'x'\n"
		       "- n: null\n"
		       "- t: ~\n"
		       "- e: ''\n"
		       "- o: 010\n"
		       "- sp: \"a b\\tc\"\n"
		       "- blk: |\n    line\n"
		       "- drive: {file: x.img, if: none}\n"
		       "- device: [virtio-blk, {drive: d0, readonly: }]\n"
		       "- chardev: [null, id: c0]\n"
		       "- smp: [2, sockets: 1]\n");
	static const char *const want[] = {
	    "qemu",
	    "-nographic",
	    "-S",
	    "-addr",
	    "0x1f",
	    "-ver",
	    "1.0",
	    "-b",
	    "true",
	    "-q",
	    "x",
	    "-n",
	    "null",
	    "-t",
	    "~",
	    "-e",
	    "",
	    "-o",
	    "010",
	    "-sp",
	    "a b\tc",
	    "-blk",
	    "line\n",
	    "-drive",
	    "file=x.img,if=none",
	    "-device",
	    "virtio-blk,drive=d0,readonly",
	    "-chardev",
	    "null,id=c0",
	    "-smp",
	    "2,sockets=1",
	    NULL,
	};
	_cleanup_free_ char **argv = argv_of(d);
	for (size_t i = 0; want[i] || argv[i]; i++) {
		assert_non_null(argv[i]);
		assert_non_null(want[i]);
		assert_string_equal(argv[i], want[i]);
	}
	assert_false(d->options[0].has_value);
	assert_true(d->options[2].is_scalar);
	assert_string_equal(d->options[2].scalar, "0x1f");
	const struct qemu_option *dev = &d->options[13];
	assert_string_equal(dev->name, "device");
	assert_false(dev->is_scalar);
	assert_int_equal(dev->n_parts, 3);
	assert_null(dev->parts[0].key);
	assert_string_equal(dev->parts[0].value, "virtio-blk");
	assert_string_equal(dev->parts[1].key, "drive");
	assert_string_equal(dev->parts[1].value, "d0");
	assert_string_equal(dev->parts[2].key, "readonly");
	assert_null(dev->parts[2].value);
	assert_int_equal(dev->mark.line, 18);
	assert_int_equal(dev->mark.column, 3);
	assert_int_equal(d->options[1].mark.line, 5);
	assert_int_equal(d->options[1].mark.column, 3);
}

/* Regression (found by fuzz_definition): libfyaml 0.7.12 turns `'a''''b'` into `a'''` and leaks;
 * single-quoted scalars are decoded from the source, with YAML 1.2 line folding. */
static void test_single_quoted(void **state)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
	    {"'a''''b'", "a''b"},
	    {"'a''''''''''b'", "a'''''b"},
	    {"''''", "'"},
	    {"''''''", "''"},
	    {"'it''s'", "it's"},
	    {"''", ""},
	    {"'a b  '", "a b  "},
	    {"'a \t\n    b'", "a b"},
	    {"'a\n\n    b'", "a\nb"},
	    {"'a\r\n    \r\n\n    b ''c'''", "a\n\nb 'c'"},
	    {"'  lead\n    trail  '", "  lead trail  "},
	    {"'x\n    '", "x "},
	    {"'\\n\\t\"#: '", "\\n\\t\"#: "},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char yaml[256];
		snprintf(yaml, sizeof(yaml), L "qemu:\n- name: %s\n", cases[i].yaml);
		_cleanup_definition_ struct definition *d = parse_ok(yaml);
		assert_int_equal(d->n_options, 1);
		if (strcmp(d->options[0].scalar, cases[i].want) != 0)
			print_error("case %zu: %s\n", i, cases[i].yaml);
		assert_string_equal(d->options[0].scalar, cases[i].want);
	}
	/* keys and parts too */
	_cleanup_definition_ struct definition *d =
	    parse_ok(L "qemu:\n- drive: ['a''''b', 'k''''': 'v''''w']\n");
	assert_string_equal(d->options[0].parts[0].value, "a''b");
	assert_string_equal(d->options[0].parts[1].key, "k''");
	assert_string_equal(d->options[0].parts[1].value, "v''w");
}

static void test_qemu_errors(void **state)
{
	check_error(L "qemu:\n- name:\n", "4:3",
		    "option `name` has no value (write `- name` for a flag)");
	check_error(L "qemu:\n- -nographic\n", "4:3", "write `nographic`, not `-nographic`");
	check_error(L "qemu:\n- --m: 2G\n", "4:3", "write `m`, not `--m`");
	check_error(L "qemu:\n- no graphic\n", "4:3", "invalid option name `no graphic`");
	check_error(L "qemu:\n- m=2G\n", "4:3", "invalid option name `m=2G`");
	check_error(L "qemu:\n- 'a,b': x\n", "4:3", "invalid option name");
	check_error(L "qemu:\n- '': x\n", "4:3", "empty option name");
	check_error(L "qemu:\n- ''\n", "4:3", "empty option name");
	check_error(L "qemu:\n- {}\n", "4:3", "empty `qemu` entry");
	check_error(L "qemu:\n- m: 2G\n  cpu: host\n", "5:3",
		    "one option per `qemu` entry: start a new `- cpu: ...` item");
	check_error(L "qemu:\n- [m, 2G]\n", "4:3", "got a sequence");
	check_error(L "qemu:\n- smp: []\n", "4:8", "option `smp` has an empty list");
	check_error(L "qemu:\n- smp: {}\n", "4:8", "option `smp`: empty mapping");
	check_error(L "qemu:\n- smp: [2, [3]]\n", "4:12", "got a sequence (nested too deeply)");
	check_error(L "qemu:\n- smp: [2, {a: [3]}]\n", "4:16",
		    "the value of `a` must be a scalar, got a sequence");
	check_error(L "qemu:\n- smp: [2, {}]\n", "4:12", "option `smp`: empty mapping");
	check_error(L "qemu:\n- drive: {file: {a: b}}\n", "4:17", "nested too deeply");
	check_error(L "qemu:\n- smp: [2, '']\n", "4:12", "option `smp`: empty part");
	check_error(L "qemu:\n- drive: {'a=b': c}\n", "4:11", "invalid key `a=b`");
	check_error(L "qemu:\n- drive: {'': c}\n", "4:11", "invalid key ``");
	check_error(L "qemu: nographic\n", "3:7", "`qemu` must be a list of options, got a scalar");
	check_error(L "qemu: {m: 2G}\n", "3:7", "got a mapping");
	check_error(L "qemu:\n- ? [a]\n  : b\n", "4:5", "mapping keys must be scalars");
}

/* libfyaml's own report becomes our one-line message; nothing may reach stderr. */
static void test_yaml_syntax_quiet(void **state)
{
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	char tmpl[] = "/tmp/ql-def-stderr-XXXXXX";
	int fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	unlink(tmpl);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);

	check_error(L "qemu: [a, b\n", "4:1",
		    "invalid YAML: flow sequence without a closing bracket");
	check_error(L "qemu:\n\t- x\n", "4:1", "invalid YAML: tab character");
	check_error(L "qemu:\n- m: \"2G\n", "4:7", "invalid YAML: double-quoted scalar");
	check_error("launcher: {binary: q\n", "2:1", "invalid YAML");
	check_error(L "  x: a: b\n", "3:7", "invalid YAML");
	/* Regression: libfyaml reports a few errors in another format; they kept no position
	 * and no reason ("1:1: invalid YAML"). */
	check_error("# comment\n%YAML 2.0\n---\n" L, "2:1",
		    "invalid YAML: unsupport version number 2.0");

	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	assert_int_equal(st.st_size, 0);
}

static void test_input_limits(void **state)
{
	static const char nul[] = "launcher:\n  binary: q\0x\n";
	check_error_len(nul, sizeof(nul) - 1, "2:12", "NUL byte");
	check_error(L "qemu:\n- name: caf\xc3\xa9 \xff\n", "4:14", "invalid UTF-8 (byte 0xff)");
	check_error(L "qemu:\n- name: \xc0\xaf\n", "4:9", "invalid UTF-8 (byte 0xc0)");
	check_error(L "qemu:\n- name: \xed\xa0\x80\n", "4:9", "invalid UTF-8"); /* surrogate */
	check_error(L "qemu:\n- name: \xe2\x82\n", "4:9", "invalid UTF-8");	/* truncated */
	/* raw control characters (YAML allows tab, LF and CR only; C1 but NEL) */
	check_error(L "qemu:\n- name: a\x1b[2Jb\n", "4:10", "control character U+001B");
	check_error(L "qemu:\n- name: a\x7f\n", "4:10", "control character U+007F");
	check_error(L "qemu:\n- name: \xc3\xa9\xc2\x9b\n", "4:10", "control character U+009B");
	check_error(L "qemu:\n- name: a\x0b\n", "4:10", "write it as \"\\x0b\"");
	/* escaped in a double-quoted string, and tab, CR LF, NEL: fine */
	definition_free(parse_ok(L "qemu:\n- name: \"a\\x1bb\"\t\r\n- nographic\r\n"));
	definition_free(parse_ok(L "qemu:\n- name: a\xc2\x85"
				   "b\n"));
	/* Regression: a byte order mark inside the text silently joined the next token; at the
	 * very start it is fine and columns count from after it. */
	check_error(L "qemu:\n\xef\xbb\xbf- nographic\n", "4:1", "byte order mark (U+FEFF)");
	check_error("\xef\xbb\xbf" L "  debug: 1\n", "3:10", "`debug` must be `true` or `false`");
	/* quoted look-alikes of keywords say so */
	check_error(L "  isolate_cpus: 'true'\n", "3:17", "got quoted `true`");
	check_error(L "  rlimit_memlock: \"true\"\n", "3:19", "got quoted `true`");
	check_error(L "qemu:\n- name: &a x\n- cpu: *a\n", "4:9", "anchors (&name)");
	check_error(L "qemu:\n- name: *a\n", "4:9", "aliases (*name)");
	check_error(L "qemu:\n- m: !!str 2G\n", "4:6", "tags (!tag) are not supported");
	check_error(L "---\nqemu: []\n", "3:1", "only one YAML document");
	check_error(L "...\n---\nqemu: []\n", "4:1", "only one YAML document");

	/* nesting: DEFINITION_MAX_DEPTH containers are fine structurally, one more is refused */
	char deep[256];
	int n = snprintf(deep, sizeof(deep), L "qemu:\n- x: ");
	for (int i = 0; i < DEFINITION_MAX_DEPTH; i++)
		deep[n++] = '[';
	for (int i = 0; i < DEFINITION_MAX_DEPTH; i++)
		deep[n++] = ']';
	deep[n] = '\0';
	/* root map, qemu seq, item map = 3 levels; the 14th '[' is level 17 */
	check_error(deep, "4:19", "nesting deeper than 16 levels");

	/* an alias bomb is refused at its first anchor, however big it would expand */
	check_error(L "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a]\n",
		    "3:4", "anchors");

	/* too many nodes: 7 before the first `- S`, so the 99994th entry is one too many */
	size_t cap = 8 * DEFINITION_MAX_NODES + 64, len = 0;
	_cleanup_free_ char *big = malloc(cap);
	assert_non_null(big);
	len += (size_t)snprintf(big, cap, L "qemu:\n");
	for (int i = 0; i < DEFINITION_MAX_NODES; i++)
		len += (size_t)snprintf(big + len, cap - len, "- S\n");
	check_error_len(big, len, "99997:3", "more than 100000 nodes");

	/* too large: generated, never committed */
	_cleanup_free_ char *huge = malloc(DEFINITION_MAX_BYTES + 64);
	assert_non_null(huge);
	len = (size_t)snprintf(huge, 64, L "qemu:\n");
	memset(huge + len, '#', DEFINITION_MAX_BYTES + 1 - len);
	check_error_len(huge, DEFINITION_MAX_BYTES + 1, "1:1", "larger than 1048576 bytes");
	/* exactly at the limit is fine */
	huge[DEFINITION_MAX_BYTES - 1] = '\n';
	struct ql_error err = {0};
	struct definition *d = NULL;
	assert_int_equal(definition_parse("t.yml", huge, DEFINITION_MAX_BYTES, &d, &err), 0);
	definition_free(d);
}

/* Every file in tests/data/defs/bad starts with `# expect: LINE:COL: fragment`. */
static void test_bad_directory(void **state)
{
	DIR *dir = opendir(DEFS "/bad");
	assert_non_null(dir);
	struct dirent *de;
	size_t count = 0, failures = 0;
	while ((de = readdir(dir))) {
		size_t nl = strlen(de->d_name);
		if (nl < 5 || !streq(de->d_name + nl - 4, ".yml"))
			continue;
		char path[512];
		snprintf(path, sizeof(path), "%s/bad/%s", DEFS, de->d_name);
		size_t len;
		_cleanup_free_ char *text = read_text(path, &len);
		const char *tag = "# expect: ";
		if (strncmp(text, tag, strlen(tag)) != 0)
			print_error("%s: no `# expect:` line\n", de->d_name);
		assert_memory_equal(text, tag, strlen(tag));
		const char *exp = text + strlen(tag);
		size_t explen = strcspn(exp, "\n");
		_cleanup_free_ char *expect = strndup(exp, explen);
		char *colon2 = strchr(expect, ':');
		assert_non_null(colon2);
		colon2 = strchr(colon2 + 1, ':');
		assert_non_null(colon2);
		*colon2 = '\0';
		const char *fragment = colon2 + 1 + (colon2[1] == ' ');

		struct ql_error err = {0};
		struct definition *d = NULL;
		int r = definition_parse(de->d_name, text, len, &d, &err);
		char prefix[300];
		snprintf(prefix, sizeof(prefix), "%s:%s: ", de->d_name, expect);
		/* report every mismatch, not just the first */
		if (r != -EINVAL || !err.msg || strncmp(err.msg, prefix, strlen(prefix)) != 0 ||
		    !strstr(err.msg, fragment)) {
			print_error("%s: got `%s`, expected `%s...%s...`\n", de->d_name,
				    err.msg ? err.msg : "(no error)", prefix, fragment);
			failures++;
		}
		assert_null(d);
		definition_free(d);
		ql_error_clear(&err);
		count++;
	}
	closedir(dir);
	assert_int_equal(failures, 0);
	assert_true(count >= 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_readme_forms_identical),
	    cmocka_unit_test(test_minimal_defaults),
	    cmocka_unit_test(test_full_launcher),
	    cmocka_unit_test(test_binary),
	    cmocka_unit_test(test_booleans),
	    cmocka_unit_test(test_env),
	    cmocka_unit_test(test_user_group),
	    cmocka_unit_test(test_scheduling),
	    cmocka_unit_test(test_vcpu_pinning),
	    cmocka_unit_test(test_isolate_emulator),
	    cmocka_unit_test(test_memlock_timeout),
	    cmocka_unit_test(test_housekeeping),
	    cmocka_unit_test(test_vfio),
	    cmocka_unit_test(test_unknown_duplicate_keys),
	    cmocka_unit_test(test_qemu_values_verbatim),
	    cmocka_unit_test(test_single_quoted),
	    cmocka_unit_test(test_integers_take_no_sign),
	    cmocka_unit_test(test_umask_working_directory),
	    cmocka_unit_test(test_qemu_section_required),
	    cmocka_unit_test(test_qemu_errors),
	    cmocka_unit_test(test_yaml_syntax_quiet),
	    cmocka_unit_test(test_input_limits),
	    cmocka_unit_test(test_bad_directory),
	};
	return cmocka_run_group_tests_name("definition", tests, NULL, NULL);
}
