/* Unit tests of the qemu argv builder: value rendering, escaping, the trailing-separator rule and
 * shell quoting (checked against a real /bin/sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmdline.h"
#include "definition.h"

#define P(k, v) ((struct qemu_part){(char *)(k), (char *)(v)})

static void check_parts(const struct qemu_part *parts, size_t n, const char *want)
{
	struct qemu_option o = {.name = (char *)"x",
				.has_value = true,
				.parts = (struct qemu_part *)parts,
				.n_parts = n};
	_cleanup_free_ char *v = cmdline_option_value(&o);
	assert_non_null(v);
	assert_string_equal(v, want);
}

static void test_option_value(void **state)
{
	/* scalar: verbatim, commas untouched (the user wrote qemu syntax) */
	struct qemu_option s = {.name = (char *)"drive",
				.has_value = true,
				.is_scalar = true,
				.scalar = (char *)"file=a,,b.img,if=none"};
	_cleanup_free_ char *v = cmdline_option_value(&s);
	assert_string_equal(v, "file=a,,b.img,if=none");

	/* flags have no value: an empty string, never NULL */
	struct qemu_option f = {.name = (char *)"nographic"};
	_cleanup_free_ char *fv = cmdline_option_value(&f);
	assert_string_equal(fv, "");

	const struct qemu_part readme[] = {P(NULL, "pc"), P("accel", "kvm")};
	check_parts(readme, 2, "pc,accel=kvm");
	/* a keyed value is one value: its commas are doubled */
	const struct qemu_part esc[] = {P("file", "a,b.img"), P("if", "none")};
	check_parts(esc, 2, "file=a,,b.img,if=none");
	const struct qemu_part esc2[] = {P("file", ",a,,b,")};
	check_parts(esc2, 1, "file=,,a,,,,b,,");
	/* a keyed part without a value is just the key */
	const struct qemu_part flag[] = {P("file", "x"), P("readonly", NULL), P("id", "d")};
	check_parts(flag, 3, "file=x,readonly,id=d");
	const struct qemu_part empty[] = {P("a", ""), P("b", "c")};
	check_parts(empty, 2, "a=,b=c");
	/* bare parts are passed as written */
	const struct qemu_part bare[] = {P(NULL, "2"), P(NULL, "sockets=1"), P("cores", "1")};
	check_parts(bare, 3, "2,sockets=1,cores=1");
}

static void test_trailing_separator(void **state)
{
	/* the seed's mixed form: `- pc,` then `- accel=kvm` */
	const struct qemu_part mixed[] = {P(NULL, "pc,"), P(NULL, "accel=kvm")};
	check_parts(mixed, 2, "pc,accel=kvm");
	const struct qemu_part mixed_key[] = {P(NULL, "pc,"), P("accel", "kvm")};
	check_parts(mixed_key, 2, "pc,accel=kvm");
	/* `a,,` ends in an escaped comma (part of the value): it still gets a separator */
	const struct qemu_part escaped[] = {P(NULL, "a,,"), P(NULL, "b")};
	check_parts(escaped, 2, "a,,,b");
	/* three commas: an escaped one plus a separator */
	const struct qemu_part three[] = {P(NULL, "a,,,"), P(NULL, "b")};
	check_parts(three, 2, "a,,,b");
	/* a keyed part never ends in an unescaped comma: its value's commas are doubled */
	const struct qemu_part keyed[] = {P("file", "a,"), P(NULL, "b")};
	check_parts(keyed, 2, "file=a,,,b");
	/* the rule is about the previous part only; a trailing comma on the last part stays */
	const struct qemu_part last[] = {P(NULL, "a"), P(NULL, "b,")};
	check_parts(last, 2, "a,b,");
	const struct qemu_part only_comma[] = {P(NULL, ","), P(NULL, "b")};
	check_parts(only_comma, 2, ",b");
}

static void test_build_from_definition(void **state)
{
	static const char yaml[] = "launcher:\n  binary: /usr/bin/qemu-system-x86_64\n"
				   "qemu:\n"
				   "- nodefaults\n"
				   "- drive: [file: 'my,disk.img', if: none, readonly: ]\n"
				   "- machine:\n  - pc,\n  - accel=tcg\n"
				   "- append: console=ttyS0 quiet\n"
				   "- S\n";
	struct ql_error err = {0};
	_cleanup_definition_ struct definition *d = NULL;
	assert_int_equal(definition_parse("t.yml", yaml, sizeof(yaml) - 1, &d, &err), 0);
	_cleanup_free_ char **argv = NULL;
	assert_int_equal(cmdline_build(d, &argv, &err), 0);
	static const char *const want[] = {
	    "/usr/bin/qemu-system-x86_64",
	    "-nodefaults",
	    "-drive",
	    "file=my,,disk.img,if=none,readonly",
	    "-machine",
	    "pc,accel=tcg",
	    "-append",
	    "console=ttyS0 quiet",
	    "-S",
	    NULL,
	};
	assert_int_equal(strv_length(argv), ELEMENTSOF(want) - 1);
	for (size_t i = 0; want[i]; i++)
		assert_string_equal(argv[i], want[i]);
	assert_null(argv[ELEMENTSOF(want) - 1]);
	assert_true(cmdline_has_option(d, "S"));
	assert_true(cmdline_has_option(d, "drive"));
	assert_false(cmdline_has_option(d, "s"));
	assert_false(cmdline_has_option(d, "qmp"));

	_cleanup_free_ char *joined = cmdline_shell_join(argv);
	assert_string_equal(joined,
			    "/usr/bin/qemu-system-x86_64 -nodefaults -drive "
			    "file=my,,disk.img,if=none,readonly -machine pc,accel=tcg -append "
			    "'console=ttyS0 quiet' -S");
}

static void test_build_empty(void **state)
{
	struct definition d = {.binary = (char *)"qemu"};
	struct ql_error err = {0};
	_cleanup_free_ char **argv = NULL;
	assert_int_equal(cmdline_build(&d, &argv, &err), 0);
	assert_string_equal(argv[0], "qemu");
	assert_null(argv[1]);
	assert_false(cmdline_has_option(&d, "S"));
}

static void check_quote(const char *word, const char *want)
{
	_cleanup_free_ char *q = cmdline_shell_quote(word);
	assert_non_null(q);
	assert_string_equal(q, want);
}

static void test_shell_quote(void **state)
{
	check_quote("", "''");
	check_quote("abc", "abc");
	check_quote("A-Za_z0.9/@%+=:,", "A-Za_z0.9/@%+=:,");
	check_quote("-drive", "-drive");
	check_quote("a b", "'a b'");
	check_quote("it's", "'it'\\''s'");
	check_quote("'", "''\\'''");
	check_quote("$HOME", "'$HOME'");
	check_quote("a\nb", "'a\nb'");
	check_quote("*", "'*'");
	check_quote("~", "'~'");
	check_quote("caf\xc3\xa9", "'caf\xc3\xa9'");
	check_quote("\\", "'\\'");

	char *argv[] = {(char *)"FOO=bar", (char *)"x=y", NULL};
	_cleanup_free_ char *j = cmdline_shell_join(argv);
	/* a bare first word with `=` would be a variable assignment */
	assert_string_equal(j, "'FOO=bar' x=y");
	char *none[] = {NULL};
	_cleanup_free_ char *e = cmdline_shell_join(none);
	assert_string_equal(e, "");
}

/* The joined text, read back by a real POSIX shell, gives the same words. */
static void test_shell_roundtrip(void **state)
{
	char *argv[] = {
	    (char *)"printf",
	    (char *)"[%s]\\n",
	    (char *)"",
	    (char *)"a b",
	    (char *)"it's",
	    (char *)"$(echo no)",
	    (char *)"`x`",
	    (char *)"a\nb",
	    (char *)"*",
	    (char *)"\\'\"",
	    (char *)"-name",
	    (char *)"my virtual machine",
	    (char *)"file=a,,b",
	    (char *)"!x",
	    (char *)"caf\xc3\xa9",
	    (char *)"~",
	    (char *)"#c",
	    (char *)"a;b|c&d",
	    NULL,
	};
	_cleanup_free_ char *script = cmdline_shell_join(argv);
	assert_non_null(script);

	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		close(pfd[0]);
		close(pfd[1]);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	char out[4096];
	size_t len = 0;
	ssize_t n;
	while ((n = read(pfd[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)n;
	close(pfd[0]);
	out[len] = '\0';
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	char want[4096];
	size_t w = 0;
	for (size_t i = 2; argv[i]; i++)
		w += (size_t)snprintf(want + w, sizeof(want) - w, "[%s]\n", argv[i]);
	assert_string_equal(out, want);
}

/* iothread_pinning's check that the definition creates an I/O thread: both -object forms, JSON
 * read as qemu reads it (whitespace anywhere, escapes decoded, single quotes). */
static void test_creates_object(void **state)
{
	static const char text[] =
	    "launcher:\n  binary: /bin/true\nqemu:\n"
	    "- object: [iothread, id: io0]\n"
	    "- object: '{\"qom-type\": \"iothread\", \"id\": \"iothread1\"}'\n"
	    "- object: [memory-backend-ram, id: io2, size: 1G]\n"
	    "- object: '{ \"id\" : \"io\\u0033\", \"qom-type\" :\"iothread\" }'\n"
	    "- object: \"{'qom-type': 'iothread', 'id': 'io4'}\"\n"
	    "- object: '{\"qom-type\": \"iothread\", \"x\": {\"id\": \"io5\"}}'\n";
	struct ql_error err = {0};
	struct definition *d = NULL;
	assert_int_equal(definition_parse("t.yml", text, strlen(text), &d, &err), 0);
	assert_true(cmdline_creates_object(d, "iothread", "io0"));
	assert_true(cmdline_creates_object(d, "iothread", "iothread1"));
	assert_false(cmdline_creates_object(d, "iothread", "io2")); /* another type */
	assert_false(cmdline_creates_object(d, "iothread", "io"));
	assert_false(cmdline_creates_object(d, "iothread", "iothread"));
	assert_true(cmdline_creates_object(d, "iothread", "io3"));
	assert_true(cmdline_creates_object(d, "iothread", "io4"));
	assert_false(cmdline_creates_object(d, "iothread", "io5")); /* a nested id is not its own */
	definition_free(d);
}

/* What `what` says of a definition with this `qemu:` list. */
static bool holds(bool (*what)(const struct definition *), const char *qemu_list)
{
	char text[512];
	snprintf(text, sizeof(text), "launcher:\n  binary: /bin/true\nqemu:\n%s", qemu_list);
	struct ql_error err = {0};
	struct definition *d = NULL;
	assert_int_equal(definition_parse("t.yml", text, strlen(text), &d, &err), 0);
	bool on = what(d);
	definition_free(d);
	return on;
}

/* Whether qemu names its threads (the launcher then places vCPUs by their names early). */
static bool names_threads(const char *qemu_list)
{
	return holds(cmdline_names_threads, qemu_list);
}

static void test_names_threads(void **state)
{
	assert_true(names_threads("- name: [ vm, debug-threads: on ]\n"));
	assert_true(names_threads("- name: 'guest=vm,debug-threads=yes'\n"));
	assert_true(names_threads("- name: [ debug-threads: on ]\n"));
	assert_false(names_threads("- name: [ vm, debug-threads: off ]\n"));
	assert_false(names_threads("- name: vm\n"));
	assert_false(names_threads("- m: 1G\n"));
	/* qemu merges every -name, the last value of a key winning (seen with qemu 7.2's thread
	 * names) */
	assert_true(names_threads("- name: [ vm, debug-threads: on ]\n- name: vm2\n"));
	assert_true(names_threads("- name: vm2\n- name: [ vm, debug-threads: on ]\n"));
	assert_false(names_threads("- name: [ vm, debug-threads: on ]\n"
				   "- name: [ vm2, debug-threads: off ]\n"));
	assert_false(names_threads("- name: 'vm,debug-threads=on,debug-threads=off'\n"));
	/* a bare word after the name is a boolean's short form; the first word is the name */
	assert_true(names_threads("- name: 'vm,debug-threads'\n"));
	assert_false(names_threads("- name: 'vm,debug-threads=on,nodebug-threads'\n"));
	assert_false(names_threads("- name: debug-threads\n"));
}

/* Whether qemu switches users after its start (a killed launcher's guardian must end it then). */
static void test_changes_user(void **state)
{
	assert_true(holds(cmdline_changes_user, "- runas: nobody\n"));
	assert_true(holds(cmdline_changes_user, "- run-with: [ user: nobody ]\n"));
	assert_true(holds(cmdline_changes_user, "- run-with: 'async-teardown=on,user=qemu'\n"));
	assert_false(holds(cmdline_changes_user, "- run-with: [ chroot: /var/empty ]\n"));
	/* a comma doubled inside a value is part of it, not the start of a part */
	assert_false(holds(cmdline_changes_user, "- run-with: 'chroot=/a,,user=b'\n"));
	assert_false(holds(cmdline_changes_user, "- m: 1G\n- name: runas\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_option_value),	  cmocka_unit_test(test_trailing_separator),
	    cmocka_unit_test(test_build_from_definition), cmocka_unit_test(test_build_empty),
	    cmocka_unit_test(test_shell_quote),		  cmocka_unit_test(test_shell_roundtrip),
	    cmocka_unit_test(test_creates_object),	  cmocka_unit_test(test_names_threads),
	    cmocka_unit_test(test_changes_user),
	};
	return cmocka_run_group_tests_name("cmdline", tests, NULL, NULL);
}
