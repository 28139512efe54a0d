/* --import: a qemu command line -> a definition whose --dry-run argv is the same command line.
 * The YAML is written by hand (libfyaml's emitter decides quoting by YAML types, we need quoting
 * by "would any reader see something other than this exact string"). */
#include "import.h"

#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "definition.h"
#include "macro.h"
#include "utf8.h"

/* Options of qemu-system-x86_64 that take no argument (probed on 7.2: `-OPT -m` fails with
 * "-m: requires an argument" exactly for these; `-help` lists them without an argument), plus
 * flags older releases had, so old command lines still import (qemu 7.2 itself refuses those).
 * A flag missing here would swallow the next option as its value. */
static const char *const flags[] = {
    /* 7.2 */
    "h", "help", "version", "audio-help", "mem-prealloc", "snapshot", "usb", "nographic",
    "portrait", "full-screen", "win2k-hack", "no-fd-bootchk", "no-acpi", "no-hpet", "enable-kvm",
    "xen-attach", "xen-domid-restrict", "no-reboot", "no-shutdown", "S", "s", "daemonize",
    "preconfig", "old-param", "only-migratable", "nodefaults", "no-user-config",
    "enable-sync-profile", "semihosting", "singlestep", "async-teardown",
    /* removed before 7.2 */
    "nodefconfig", "no-quit", "alt-grab", "ctrl-grab", "no-frame", "curses", "sdl", "enable-fips",
    "no-kvm", "no-kvm-irqchip", "no-kvm-pit", "no-kvm-pit-reinjection", "tdf", "show-cursor",
    "localtime", "std-vga", "vmwarevga", "rtc-td-hack", "no-kqemu", "kernel-kqemu", "enable-kqemu",
    "enable-nesting", "xen-create"};

/* Options whose value is one string (a path, a kernel command line, a guest name...), never a
 * `key=value,...` list: splitting `-append "root=/dev/vda console=ttyS0"` at `=` would round-trip
 * but misdescribe it. */
static const char *const plain_value[] = {
    "append",	  "kernel",   "initrd", "dtb",	"bios",	       "hda",	     "hdb",    "hdc",
    "hdd",	  "cdrom",    "fda",	"fdb",	"mtdblock",    "sd",	     "pflash", "pidfile",
    "loadvm",	  "L",	      "D",	"k",	"writeconfig", "readconfig", "runas",  "chroot",
    "option-rom", "mem-path", "global", "uuid", "incoming",    "usbdevice",  "g"};

static bool in_table(const char *const *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (streq(t[i], name))
			return true;
	return false;
}

bool import_option_is_flag(const char *name)
{
	return in_table(flags, ELEMENTSOF(flags), name);
}

/* ---- YAML scalars ------------------------------------------------------------------------- */

/* Plain scalars YAML 1.1 (PyYAML, yaml-language-server's default) or 1.2 would resolve to
 * something other than a string. Decimal integers without a leading zero stay plain: every reader
 * gives back the same digits and definitions are full of them (`sockets: 1`). */
static const char *const typed_patterns[] = {
    "^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
    "^(null|Null|NULL|~|=|<<)$",
    "^[-+]?0[0-7_]+$",
    "^[-+]?0o[0-7_]+$",
    "^[-+]?0x[0-9a-fA-F_]+$",
    "^[-+]?0b[01_]+$",
    "^[-+]?[0-9][0-9_]*$",
    "^[-+]?([0-9][0-9_]*)?\\.[0-9_]*([eE][-+]?[0-9]+)?$",
    "^[-+]?[0-9][0-9_]*(\\.[0-9_]*)?[eE][-+]?[0-9]+$",
    "^[-+]?\\.(inf|Inf|INF)$",
    "^\\.(nan|NaN|NAN)$",
    "^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\\.[0-9_]*)?$",
    "^[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?",
};

static bool plain_decimal(const char *s)
{
	if (*s == '-')
		s++;
	if (streq(s, "0"))
		return true;
	if (*s < '1' || *s > '9')
		return false;
	return strspn(s, "0123456789") == strlen(s);
}

static bool looks_typed(const char *s)
{
	if (plain_decimal(s))
		return false;
	for (size_t i = 0; i < ELEMENTSOF(typed_patterns); i++) {
		regex_t re;
		if (regcomp(&re, typed_patterns[i], REG_EXTENDED | REG_NOSUB) != 0)
			return true; /* cannot tell: quoting is always safe */
		int m = regexec(&re, s, 0, NULL, 0);
		regfree(&re);
		if (m == 0)
			return true;
	}
	return false;
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Safe as a plain scalar in flow context (inside `[ ... ]`), which is stricter than block
 * context: a conservative character whitelist, no indicator at the start, `:` only inside a word
 * (never `: `, never last, never before a flow indicator), single inner spaces are fine. */
static bool plain_safe(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || s[0] == ' ' || s[n - 1] == ' ')
		return false;
	if (!(is_alnum(s[0]) || strchr("_./+", s[0]) || (s[0] == '-' && is_alnum(s[1]))))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (is_alnum(c) || strchr("_./+-=@%^~ ", c))
			continue;
		if (c == ':' && i + 1 < n && (is_alnum(s[i + 1]) || strchr("/._-+:", s[i + 1])))
			continue;
		return false;
	}
	return !looks_typed(s);
}

/* Bytes of the character at p that must be escaped: C0 controls and DEL, C1 controls (YAML
 * does not take them raw), U+FEFF (the loader refuses it inside a definition); 0 otherwise. */
static size_t escaped_len(const unsigned char *p)
{
	if (*p < 0x20 || *p == 0x7f)
		return 1;
	size_t n = utf8_char_len(p, strnlen((const char *)p, 4));
	if (utf8_is_c1(p, n))
		return 2;
	return n == 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
}

char *import_yaml_scalar(const char *s)
{
	if (plain_safe(s))
		return strdup(s);

	bool controls = false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (escaped_len(p))
			controls = true;

	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	if (!controls) {
		/* single quotes: everything literal, a quote is written twice */
		fputc('\'', f);
		for (const char *p = s; *p; p++) {
			if (*p == '\'')
				fputc('\'', f);
			fputc(*p, f);
		}
		fputc('\'', f);
	} else {
		/* a newline or tab would be folded inside single quotes: escape */
		fputc('"', f);
		for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
			size_t e = escaped_len(p);
			if (*p == '"' || *p == '\\')
				fprintf(f, "\\%c", *p);
			else if (*p == '\n')
				fputs("\\n", f);
			else if (*p == '\t')
				fputs("\\t", f);
			else if (e == 1)
				fprintf(f, "\\x%02x", *p);
			else if (e == 2) /* U+0080-U+009F */
				fprintf(f, "\\u00%02x", *++p);
			else if (e == 3) { /* U+FEFF */
				fputs("\\uFEFF", f);
				p += 2;
			} else
				fputc(*p, f);
		}
		fputc('"', f);
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* ---- qemu values -------------------------------------------------------------------------- */

struct raw_part {
	const char *start;
	size_t len;
};

/* Splits at separator commas the way qemu's option parser does (left to right, `,,` is a
 * literal comma). Returns the number of parts, or 0 when there are more than `max`. */
static size_t split_value(const char *v, struct raw_part *parts, size_t max)
{
	size_t n = 0;
	const char *start = v;
	for (const char *p = v;; p++) {
		if (*p == ',' && p[1] == ',') {
			p++;
			continue;
		}
		if (*p == ',' || *p == '\0') {
			if (n == max)
				return 0;
			parts[n++] = (struct raw_part){start, (size_t)(p - start)};
			if (*p == '\0')
				return n;
			start = p + 1;
		}
	}
}

/* The key of `key=value` in a raw part, or 0 when the part is bare (no `=`, an empty key, or a
 * key holding an escaped comma, which the definition's `key:` cannot carry). */
static size_t part_key_len(const struct raw_part *rp)
{
	const char *eq = memchr(rp->start, '=', rp->len);
	if (!eq || eq == rp->start || memchr(rp->start, ',', (size_t)(eq - rp->start)))
		return 0;
	return (size_t)(eq - rp->start);
}

static int write_scalar(FILE *f, const char *s)
{
	_cleanup_free_ char *q = import_yaml_scalar(s);
	if (!q)
		return -ENOMEM;
	fputs(q, f);
	return 0;
}

static int write_scalar_n(FILE *f, const char *s, size_t n)
{
	_cleanup_free_ char *t = strndup(s, n);
	if (!t)
		return -ENOMEM;
	return write_scalar(f, t);
}

#define MAX_PARTS 4096

/* `[ bare, key: value, ... ]` when the value is a key=value list the builder can rebuild
 * exactly; false (nothing written) when it must stay one verbatim string. */
static int write_structured(FILE *f, const char *value, bool *ret_done)
{
	_cleanup_free_ struct raw_part *parts = calloc(MAX_PARTS, sizeof(*parts));
	if (!parts)
		return -ENOMEM;
	size_t n = split_value(value, parts, MAX_PARTS);
	bool any_key = false;
	for (size_t i = 0; i < n; i++) {
		if (parts[i].len == 0) /* `a,,,` or a trailing separator: the loader refuses "" */
			n = 0;
		else if (part_key_len(&parts[i]))
			any_key = true;
	}
	*ret_done = false;
	if (n == 0 || !any_key)
		return 0;

	fputs("[ ", f);
	for (size_t i = 0; i < n; i++) {
		const struct raw_part *rp = &parts[i];
		if (i > 0)
			fputs(", ", f);
		size_t kl = part_key_len(rp);
		int r;
		if (!kl) {
			/* bare parts are passed as written, escaped commas included */
			r = write_scalar_n(f, rp->start, rp->len);
		} else {
			r = write_scalar_n(f, rp->start, kl);
			if (r < 0)
				return r;
			fputs(": ", f);
			/* one value: unescape `,,`; the builder doubles its commas again */
			_cleanup_free_ char *val = malloc(rp->len - kl);
			if (!val)
				return -ENOMEM;
			size_t o = 0;
			for (size_t j = kl + 1; j < rp->len; j++) {
				val[o++] = rp->start[j];
				if (rp->start[j] == ',')
					j++;
			}
			val[o] = '\0';
			r = write_scalar(f, val);
		}
		if (r < 0)
			return r;
	}
	fputs(" ]", f);
	*ret_done = true;
	return 0;
}

static bool valid_option_name(const char *name)
{
	return *name && !strpbrk(name, " \t\n\r\v\f=,") && name[0] != '-';
}

struct warnings {
	char **v;
	size_t n;
};

_printf_(2, 3) static int warn(struct warnings *w, const char *fmt, ...)
{
	char **v = reallocarray(w->v, w->n + 2, sizeof(char *));
	if (!v)
		return -ENOMEM;
	w->v = v;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&w->v[w->n], fmt, ap);
	va_end(ap);
	if (r < 0) {
		w->v[w->n] = NULL;
		return -ENOMEM;
	}
	w->v[++w->n] = NULL;
	return 0;
}

/* `-newflag -m 512`: a flag missing from flags[] took the option after it as its value, and
 * the word after that (or the end of the command line) gives it away. */
static int warn_swallowed(struct warnings *w, const char *opt, const char *value, const char *next)
{
	if (value[0] != '-' || !value[1] || (next && next[0] == '-'))
		return 0;
	struct ql_shown s1, s2, s3, s4;
	return warn(w,
		    "`%s` took `%s` as its value, and %s%s%s: if `%s` is a flag (takes no "
		    "value), correct the definition by hand",
		    ql_show(&s1, opt), ql_show(&s2, value),
		    next ? "the word after it, `" : "the command line ends",
		    next ? ql_show(&s3, next) : "", next ? "`, is no option" : "",
		    ql_show(&s4, opt));
}

static int write_option(FILE *f, const char *name, const char *value)
{
	fputs("- ", f);
	int r = write_scalar(f, name);
	if (r < 0 || !value)
		return r;
	fputs(": ", f);
	bool done = false;
	/* JSON (libvirt >= 7 writes -blockdev/-device/-object so): its commas and `=` are JSON's,
	 * not key=value parts; qemu takes a value starting with `{` as JSON */
	if (value[0] != '{' && !in_table(plain_value, ELEMENTSOF(plain_value), name)) {
		r = write_structured(f, value, &done);
		if (r < 0)
			return r;
	}
	return done ? 0 : write_scalar(f, value);
}

static int import_options(FILE *f, char *const *argv, size_t argc, struct warnings *w,
			  struct ql_error *err)
{
	for (size_t i = 1; i < argc; i++) {
		const char *a = argv[i];
		/* argv words in messages are shown escaped: they reach a terminal */
		struct ql_shown s1, s2;
		int r;
		if (!utf8_is_valid(a))
			return ql_error_set(
			    err, EINVAL,
			    "argument %zu is not valid UTF-8; a definition is UTF-8 "
			    "text and cannot hold it",
			    i);
		if (a[0] != '-') {
			/* qemu itself reads a positional argument as `-hda ARG` */
			if ((r = warn(w,
				      "positional argument `%s` imported as `-hda %s` (what qemu "
				      "does with it)",
				      ql_show(&s1, a), ql_show(&s2, a))) < 0 ||
			    (r = write_option(f, "hda", a)) < 0)
				return ql_error_set(err, ENOMEM, "import: out of memory");
			fputc('\n', f);
			continue;
		}
		const char *name = a + 1;
		if (name[0] == '-') {
			/* qemu accepts `--opt` as `-opt`; the definition writes names without
			 * dashes */
			name++;
			if (warn(w, "`%s` imported as `-%s` (qemu treats both alike)",
				 ql_show(&s1, a), ql_show(&s2, name)) < 0)
				return ql_error_set(err, ENOMEM, "import: out of memory");
		}
		if (!valid_option_name(name))
			return ql_error_set(
			    err, EINVAL,
			    "argument %zu `%s` is not a qemu option a definition can "
			    "hold (an option name has no `=`, `,` or whitespace)",
			    i, ql_show(&s1, a));
		const char *value = NULL;
		if (!import_option_is_flag(name)) {
			if (i + 1 >= argc)
				return ql_error_set(
				    err, EINVAL,
				    "option `%s` needs a value, but the command line "
				    "ends (if it is a flag qemu knows, write it as the "
				    "last option of a definition by hand)",
				    ql_show(&s1, a));
			value = argv[++i];
			if (!utf8_is_valid(value))
				return ql_error_set(err, EINVAL,
						    "the value of `%s` is not valid UTF-8; a "
						    "definition is UTF-8 text and cannot hold it",
						    ql_show(&s1, a));
			if (warn_swallowed(w, a, value, i + 1 < argc ? argv[i + 1] : NULL) < 0)
				return ql_error_set(err, ENOMEM, "import: out of memory");
		}
		if (streq(name, "daemonize") &&
		    warn(w, "-daemonize: qemu forks into the background and the launcher sees it "
			    "end at once; remove it to have the launcher supervise the VM") < 0)
			return ql_error_set(err, ENOMEM, "import: out of memory");
		if (write_option(f, name, value) < 0)
			return ql_error_set(err, ENOMEM, "import: out of memory");
		fputc('\n', f);
	}
	return 0;
}

void import_launcher_done(struct import_launcher *l)
{
	free(l->source);
	free(l->pins);
	free(l->emulator_cpus);
	free(l->scheduler);
	free(l->io_scheduler);
	strv_free(l->io_ids);
	strv_free(l->io_cpus);
	*l = (struct import_launcher){0};
}

static int write_launcher_keys(FILE *f, const struct import_launcher *l)
{
	int r = 0;
	if (l->n_pins) {
		fputs("  vcpu_pinning: [ ", f);
		for (size_t i = 0; i < l->n_pins; i++)
			fprintf(f, "%s%u", i ? ", " : "", l->pins[i]);
		fputs(" ]\n", f);
	}
	if (l->emulator_cpus) {
		fputs("  emulator_pinning: ", f);
		r = write_scalar(f, l->emulator_cpus);
		fputc('\n', f);
	}
	if (r == 0 && l->io_ids && l->io_ids[0]) {
		fputs("  iothread_pinning:\n", f);
		for (size_t i = 0; r == 0 && l->io_ids[i]; i++) {
			fputs("    ", f);
			r = write_scalar(f, l->io_ids[i]);
			fputs(": ", f);
			if (r == 0)
				r = write_scalar(f, l->io_cpus[i]);
			fputc('\n', f);
		}
	}
	if (r == 0 && l->io_scheduler) {
		fputs("  iothread_scheduler: ", f);
		r = write_scalar(f, l->io_scheduler);
		fputc('\n', f);
		if (l->has_io_priority)
			fprintf(f, "  iothread_priority: %d\n", l->io_priority);
	}
	if (r == 0 && l->scheduler) {
		fputs("  scheduler: ", f);
		r = write_scalar(f, l->scheduler);
		fputc('\n', f);
		if (l->has_priority)
			fprintf(f, "  priority: %d\n", l->priority);
	}
	if (l->rlimit_memlock)
		fputs("  rlimit_memlock: true\n", f);
	return r;
}

/* Text inside a `#` comment line: YAML 1.1 readers (PyYAML) end a line at U+2028 and U+2029 too,
 * which would turn the rest into YAML, and the loader refuses U+FEFF anywhere; those are written
 * as `\uXXXX`. (Source texts come through ql_show: no C0 or C1 controls are left.) */
static void write_comment_text(FILE *f, const char *s)
{
	for (const char *p = s; *p; p++) {
		if (strncmp(p, "\xe2\x80\xa8", 3) == 0 || strncmp(p, "\xe2\x80\xa9", 3) == 0) {
			fprintf(f, "\\u%s", p[2] == '\xa8' ? "2028" : "2029");
			p += 2;
		} else if (strncmp(p, "\xef\xbb\xbf", 3) == 0) {
			fputs("\\uFEFF", f);
			p += 2;
		} else {
			fputc(*p, f);
		}
	}
}

int import_command_line(char *const *argv, size_t argc, char **ret_yaml, char ***ret_warnings,
			struct ql_error *err)
{
	return import_command_line_with(argv, argc, NULL, ret_yaml, ret_warnings, err);
}

int import_command_line_with(char *const *argv, size_t argc, const struct import_launcher *extra,
			     char **ret_yaml, char ***ret_warnings, struct ql_error *err)
{
	if (argc < 1 || !argv[0] || !*argv[0])
		return ql_error_set(err, EINVAL, "--import needs a qemu command line after `--`");
	if (!utf8_is_valid(argv[0]))
		return ql_error_set(err, EINVAL, "the qemu binary name is not valid UTF-8");

	struct warnings w = {0};
	_cleanup_free_ char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return ql_error_set_errno(err, errno, "import");

	fputs(
	    "# Imported with qemu-launcher --import; --dry-run gives back the same command line.\n",
	    f);
	if (extra && extra->source) {
		fputs("# Launcher keys from ", f);
		write_comment_text(f, extra->source);
		fputs(".\n", f);
	}
	fputs("launcher:\n"
	      "  binary: ",
	      f);
	int r = write_scalar(f, argv[0]);
	if (r == 0)
		fputc('\n', f);
	if (r == 0 && extra)
		r = write_launcher_keys(f, extra);
	if (r < 0)
		r = ql_error_set(err, ENOMEM, "import: out of memory");
	else if (argc == 1)
		fputs("qemu: []\n", f);
	else {
		fputs("qemu:\n", f);
		r = import_options(f, argv, argc, &w, err);
	}
	if (fclose(f) != 0 && r == 0)
		r = ql_error_set(err, ENOMEM, "import: out of memory");
	if (r == 0 && len > DEFINITION_MAX_BYTES)
		r = ql_error_set(err, EFBIG,
				 "the imported definition would be %zu bytes, more than the %d a "
				 "definition may have",
				 len, DEFINITION_MAX_BYTES);
	if (r == 0 && !w.v && !(w.v = calloc(1, sizeof(char *))))
		r = ql_error_set(err, ENOMEM, "import: out of memory");
	if (r < 0) {
		strv_free(w.v);
		return r;
	}
	*ret_yaml = TAKE_PTR(out);
	*ret_warnings = w.v;
	return 0;
}
