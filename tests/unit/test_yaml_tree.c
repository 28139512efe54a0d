/* The two readers behind yaml_tree_parse() give identical trees: wherever the fast reader does
 * not give up, libfyaml's must build the same nodes, texts, flags and positions (or report the
 * same error). Run over every definition in the repository and over constructs written here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fyaml.h"
#include "macro.h"
#include "yaml_tree_private.h"
#include "../helpers/yaml_same.h"

static const struct yaml_tree_limits limits = {1024 * 1024, 16, 100000};

static bool same_tree(const struct ynode *a, const struct ynode *b, const char *what)
{
	const struct ynode *x, *y;
	if (yaml_same_tree(a, b, &x, &y))
		return true;
	if (!x || !y)
		print_error("%s: fast %s, libfyaml %s\n", what, x ? "a node" : "nothing",
			    y ? "a node" : "nothing");
	else
		print_error("%s: fast %d %u:%u `%s` (%zu items) != libfyaml %d %u:%u `%s` (%zu "
			    "items)\n",
			    what, x->type, x->mark.line, x->mark.column,
			    x->type == YN_SCALAR ? x->text : "", ynode_count(x), y->type,
			    y->mark.line, y->mark.column, y->type == YN_SCALAR ? y->text : "",
			    ynode_count(y));
	return false;
}

/* Returns true when the fast reader took the text (and then agreed with libfyaml). */
static bool compare(const char *what, const char *text, size_t len)
{
	struct ql_error fe = {0}, se = {0};
	struct yaml_doc *fast = NULL, *slow = NULL;
	int fr = yaml_tree_parse_with(YAML_READER_FAST, "t.yml", text, len, &limits, &fast, &fe);
	if (fr == -ENOTSUP || (fr < 0 && fe.code != EINVAL && fe.code != 0)) {
		ql_error_clear(&fe);
		return false;
	}
	int sr =
	    yaml_tree_parse_with(YAML_READER_LIBFYAML, "t.yml", text, len, &limits, &slow, &se);
	if (fr < 0 || sr < 0) {
		/* only input checks and duplicate keys fail after the fast reader took a text */
		if (fr != sr || !fe.msg || !se.msg || strcmp(fe.msg, se.msg) != 0)
			print_error("%s: fast %d `%s`, libfyaml %d `%s`\n--- input:\n%.600s\n",
				    what, fr, fe.msg ? fe.msg : "", sr, se.msg ? se.msg : "", text);
		assert_int_equal(fr, sr);
		assert_string_equal(fe.msg, se.msg);
	} else {
		bool same = same_tree(fast->root, slow->root, what);
		if (!same)
			print_error("--- input:\n%.600s\n", text);
		assert_true(same);
	}
	ql_error_clear(&fe);
	ql_error_clear(&se);
	yaml_doc_free(fast);
	yaml_doc_free(slow);
	return true;
}

static char *read_text(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = malloc(limits.max_bytes + 2);
	assert_non_null(buf);
	size_t n = fread(buf, 1, limits.max_bytes + 1, f);
	fclose(f);
	buf[n] = '\0';
	*ret_len = n;
	return buf;
}

/* Compares every file in dir (those ending in `suffix`, or all when NULL); returns how many the
 * fast reader took. */
static size_t compare_dir(const char *dir, const char *suffix, size_t *ret_total)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t taken = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t nl = strlen(de->d_name);
		if (de->d_name[0] == '.' ||
		    (suffix &&
		     (nl < strlen(suffix) || !streq(de->d_name + nl - strlen(suffix), suffix))))
			continue;
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		size_t len;
		_cleanup_free_ char *text = read_text(path, &len);
		taken += compare(path, text, len);
		(*ret_total)++;
	}
	closedir(d);
	return taken;
}

static void test_repository_definitions(void **state)
{
	(void)state;
	size_t total = 0, taken = 0;
	taken += compare_dir(TEST_DATA_DIR "/defs", ".yml", &total);
	taken += compare_dir(TEST_DATA_DIR "/defs/bad", ".yml", &total);
	taken += compare_dir(TEST_DATA_DIR "/import", ".yml", &total);
	taken += compare_dir(TEST_DATA_DIR "/../../examples", ".yml", &total);
	taken += compare_dir(TEST_DATA_DIR "/../../fuzz/corpus/definition", NULL, &total);
	print_message("# the fast reader took %zu of %zu definitions\n", taken, total);
	/* It must stay useful: the specification's and the shipped examples are plain YAML. */
	assert_true(taken * 2 > total);
}

static void test_constructs(void **state)
{
	(void)state;
	static const char *const taken[] = {
	    "a: b\n",
	    "a:\n  b: c\n  d:\n  e: 'x'\nf:\n- g\n- h: i\n  j: [k, l: m, {n: o}]\n- \"p\"\n"
	    "q: []\nr: {}\ns:\nt: u # c\n",
	    "# head\n\nlauncher:\n  binary: qemu   # trailing\n\n  debug: true\nqemu:\n"
	    "- nographic\n- m: 2G\n- drive: {file: /a b.img, if: none, id: d0}\n"
	    "- device: [virtio-blk-pci, drive: d0, 'x,y', \"q\"]\n",
	    "a: 'it''s'\nb: ''\nc: \"\"\nd: -0\ne: -x\nf: a:b\ng: a#b\nh: [a:b, -1]\n",
	    "k :  v\n'q' : w\n\"r\": x\n",
	    "- [a, b]\n- {c: d}\n-\n  e: f\n- g: h\n  i: j\n-\n  - k\n",
	    "a:\n- b\n- c: d\n  e: f\nx: y\n",
	    "a:\n  - b\n  - c\n",
	    "[a, b]\n",
	    "{a: b}\n",
	    "- a\n",
	};
	for (size_t i = 0; i < ELEMENTSOF(taken); i++)
		if (!compare(taken[i], taken[i], strlen(taken[i])))
			print_error("not taken: %s\n", taken[i]);
	/* Left to libfyaml, so nothing to compare; but nothing may crash either. */
	static const char *const others[] = {
	    "a: b\n  c\n",
	    "a:\n  b\n",
	    "a: |\n  x\n",
	    "a: &x b\n",
	    "a: *x\n",
	    "a: !t b\n",
	    "--- \na: b\n",
	    "a: b\n...\n",
	    "%YAML 1.2\n---\na: b\n",
	    "a:\tb\n",
	    "a: b\r\n",
	    "- a\n- - b\n",
	    "a: [b,\n c]\n",
	    "a: 'b\n c'\n",
	    "a: \"b\\n\"\n",
	    "? a\n: b\n",
	    "-\n- a\n",
	    "a: b: c\n",
	    "a: - b\n",
	    "  a: b\n",
	    "a:\n  b: c\n d: e\n",
	    "",
	    "\n",
	    "# c\n",
	    "a: [b, ]\n",
	    "{a}\n",
	    "a: {b: }\n",
	    "a: \xc3\xa9\n",
	    "- a\nb: c\n",
	    "a: b\n- c\n",
	    "a:\n - b\n  - c\n",
	    "[a] x\n",
	    "a: [b]]\n",
	    "a: {b: c\n",
	};
	for (size_t i = 0; i < ELEMENTSOF(others); i++)
		compare(others[i], others[i], strlen(others[i]));
}

/* Small random edits (deterministic seed) of the shipped definitions, with the characters YAML
 * cares about: wherever the fast reader takes an edited text, libfyaml must agree. */
static void test_mutations(void **state)
{
	(void)state;
	static const char *const files[] = {
	    TEST_DATA_DIR "/defs/readme-mixed.yml",
	    TEST_DATA_DIR "/defs/readme-structured.yml",
	    TEST_DATA_DIR "/defs/readme-strings.yml",
	    TEST_DATA_DIR "/../../examples/vfio-gaming.yml",
	    TEST_DATA_DIR "/../../examples/realtime.yml",
	};
	static const char alphabet[] = " \n:-#'\"[]{},a0?&*!|>%.";
	unsigned seed = 12345;
	size_t taken = 0, runs = 0;
	for (size_t fi = 0; fi < ELEMENTSOF(files); fi++) {
		size_t len;
		_cleanup_free_ char *orig = read_text(files[fi], &len);
		_cleanup_free_ char *buf = malloc(len + 8);
		assert_non_null(buf);
		for (size_t i = 0; i < 3000; i++, runs++) {
			memcpy(buf, orig, len);
			size_t n = len;
			for (int k = 0; k < 1 + (int)(i % 3) && n > 1; k++) {
				seed = seed * 1103515245u + 12345u;
				size_t pos = (seed >> 8) % n;
				char c = alphabet[(seed >> 20) % (sizeof(alphabet) - 1)];
				switch ((seed >> 4) % 3) {
				case 0: /* replace */
					buf[pos] = c;
					break;
				case 1: /* insert */
					memmove(buf + pos + 1, buf + pos, n - pos);
					buf[pos] = c;
					n++;
					break;
				default: /* delete */
					memmove(buf + pos, buf + pos + 1, n - pos - 1);
					n--;
				}
			}
			buf[n] = '\0';
			taken += compare(files[fi], buf, n);
		}
	}
	print_message("# the fast reader took %zu of %zu edited texts\n", taken, runs);
}

/* The fast reader gives duplicate keys up to libfyaml's reader, so their message has one source:
 * the automatic choice reports exactly what libfyaml's reader does. */
static void test_duplicate_keys(void **state)
{
	(void)state;
	static const char *const dups[] = {
	    "a: b\na: c\n",
	    "x:\n  a: 1\n  b: 2\n  a: 3\n",
	    "- {a: 1, b: 2, a: 3}\n",
	    "- [k: 1, k: 2]\n- {c: d, c: d}\n",
	    "a: 1\nb: 2\nc: 3\nd: 4\ne: 5\nf: 6\ng: 7\nh: 8\ni: 9\nj: 10\nc: 11\nd: 12\n",
	    "k1: {a: 1}\nk2: [x, {b: 1, b: 2}]\nk1: 3\n",
	};
	for (size_t i = 0; i < ELEMENTSOF(dups); i++) {
		struct ql_error fe = {0}, ae = {0}, se = {0};
		struct yaml_doc *doc = NULL;
		size_t len = strlen(dups[i]);
		assert_int_equal(yaml_tree_parse_with(YAML_READER_FAST, "t.yml", dups[i], len,
						      &limits, &doc, &fe),
				 -ENOTSUP);
		assert_int_equal(yaml_tree_parse_with(YAML_READER_AUTO, "t.yml", dups[i], len,
						      &limits, &doc, &ae),
				 -EINVAL);
		assert_int_equal(yaml_tree_parse_with(YAML_READER_LIBFYAML, "t.yml", dups[i], len,
						      &limits, &doc, &se),
				 -EINVAL);
		assert_non_null(strstr(ae.msg, ": duplicate key `"));
		assert_string_equal(ae.msg, se.msg);
		ql_error_clear(&fe);
		ql_error_clear(&ae);
		ql_error_clear(&se);
	}
	/* more than 8 keys are sorted to be compared: without a repeat, the fast reader takes it */
	static const char many[] = "a: 1\nb: 2\nc: 3\nd: 4\ne: 5\nf: 6\ng: 7\nh: 8\ni: 9\n"
				   "j: 10\naa: 11\nb2: 12\n";
	assert_true(compare("many keys", many, strlen(many)));
}

/* libfyaml is loaded on first use: a missing library or function is an error naming it, never a
 * crash later; loaded, its functions are the library's own. */
static void test_fyaml_loading(void **state)
{
	(void)state;
	struct fyaml f;
	struct ql_error err = {0};
	assert_int_equal(fyaml_open("libql-no-such-library.so.0", &f, &err), -ENOPKG);
	assert_non_null(strstr(err.msg, "this definition needs libfyaml: "));
	assert_non_null(strstr(err.msg, "libql-no-such-library.so.0"));
	ql_error_clear(&err);
	assert_int_equal(fyaml_open("libc.so.6", &f, &err), -ENOPKG);
	assert_string_equal(err.msg, "libc.so.6 has no fy_diag_cfg_default");
	ql_error_clear(&err);

	assert_int_equal(fyaml_open("libfyaml.so.0", &f, &err), 0);
	const struct fyaml *got = fyaml_get(&err);
	assert_non_null(got);
	assert_ptr_equal(got, fyaml_get(&err)); /* loaded once */
	assert_ptr_equal(f.parser_create, got->parser_create);
	assert_ptr_equal(f.token_scalar_style, got->token_scalar_style);
	assert_null(err.msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_constructs),
	    cmocka_unit_test(test_fyaml_loading),
	    cmocka_unit_test(test_duplicate_keys),
	    cmocka_unit_test(test_mutations),
	    cmocka_unit_test(test_repository_definitions),
	};
	return cmocka_run_group_tests_name("yaml_tree", tests, NULL, NULL);
}
