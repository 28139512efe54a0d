/* The command line interface: the only place that prints and chooses exit codes. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "definition.h"
#include "import.h"
#include "jsonc.h"
#include "launch.h"
#include "libvirt_xml.h"
#include "log.h"
#include "memlock.h"
#include "privileges.h"
#include "reclaim.h"
#include "status.h"
#include "status_json.h"
#include "topology.h"
#include "vfio.h"
#include "vm.h"

/* Exit codes (README, "Exit status"; the env(1)/timeout(1) convention). */
#define EXIT_USAGE 2
#define EXIT_LAUNCHER 125
#define EXIT_NOT_EXECUTABLE 126
#define EXIT_NOT_FOUND 127

enum mode {
	MODE_RUN,
	MODE_DRY_RUN,
	MODE_CHECK,
	MODE_LIST,
	MODE_IMPORT,
	MODE_STATUS,
	MODE_TOPOLOGY,
	MODE_SUGGEST,
};

/* Long-only options. */
enum { OPT_TOPOLOGY = 0x100, OPT_SUGGEST };

struct cli {
	enum mode mode;
	bool verbose, debug;
	bool json; /* --status --json */
	const char *config_dir;
	const char *name;
	const char *libvirt_xml; /* --import --libvirt-xml FILE */
	char **import_argv;	 /* --import: the qemu command line */
	size_t import_argc;
};

/* Setuid: the caller owns stderr and may stop reading it (a full pipe, a terminal under flow
 * control), which would hold the launcher in write(2) inside a section under the cpuset lock that
 * every launcher on the host shares. So a message is written only when stderr takes it without
 * blocking; otherwise it waits in a bounded queue until stderr drains, or until the end of the run
 * (printer_finish), when no lock is held. */
#define PRINTER_QUEUE_MAX (64 * 1024)

struct printer {
	enum ql_log_level level; /* the most detailed shown: warnings, -v steps, -d host changes */
	bool careful;		 /* setuid: never block on stderr before printer_finish */
	char *queue;		 /* whole lines not yet written */
	size_t queued;
	unsigned dropped; /* lines the full queue could not keep */
};

/* A line of len bytes goes to stderr without blocking: a pipe takes up to PIPE_BUF bytes whole
 * once poll says it is writable. */
static bool stderr_takes(size_t len)
{
	struct pollfd pfd = {.fd = STDERR_FILENO, .events = POLLOUT};
	return len <= PIPE_BUF && poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT);
}

static void write_all(const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

/* Writes the queued lines stderr takes now. */
static void printer_drain(struct printer *p)
{
	size_t done = 0;
	while (done < p->queued) {
		const char *nl = memchr(p->queue + done, '\n', p->queued - done);
		size_t len = (size_t)(nl - (p->queue + done)) + 1;
		if (!stderr_takes(len))
			break;
		write_all(p->queue + done, len);
		done += len;
	}
	if (done == 0) /* nothing written (and with nothing queued, no queue to move) */
		return;
	memmove(p->queue, p->queue + done, p->queued - done);
	p->queued -= done;
}

static void printer_emit(struct printer *p, const char *prefix, const char *msg)
{
	if (!p->careful) {
		fprintf(stderr, "qemu-launcher: %s%s\n", prefix, msg);
		return;
	}
	_cleanup_free_ char *line = NULL;
	int n = asprintf(&line, "qemu-launcher: %s%s\n", prefix, msg);
	if (n < 0)
		return;
	printer_drain(p);
	if (p->queued == 0 && stderr_takes((size_t)n)) {
		write_all(line, (size_t)n);
		return;
	}
	if (!p->queue && !(p->queue = malloc(PRINTER_QUEUE_MAX))) {
		p->dropped++;
		return;
	}
	if ((size_t)n > PRINTER_QUEUE_MAX - p->queued) {
		p->dropped++;
		return;
	}
	memcpy(p->queue + p->queued, line, (size_t)n);
	p->queued += (size_t)n;
}

/* The run is over and its locks are released: what waited is written, blocking if need be. */
static void printer_finish(struct printer *p)
{
	if (p->queued)
		write_all(p->queue, p->queued);
	if (p->dropped)
		fprintf(stderr,
			"qemu-launcher: %u message(s) dropped: stderr was not read while the "
			"launcher held the host's cpuset lock\n",
			p->dropped);
	free(p->queue);
	p->queue = NULL;
	p->queued = p->dropped = 0;
	p->careful = false; /* no lock is held any more */
}

/* Only levels up to the printer's arrive: its logger's max_level is the printer's level. */
static void print_log(void *userdata, enum ql_log_level level, const char *msg)
{
	static const char *const prefix[] = {
	    [QL_LOG_WARNING] = "warning: ", [QL_LOG_INFO] = "", [QL_LOG_DEBUG] = "debug: "};
	printer_emit(userdata, prefix[level], msg);
}

static void usage(FILE *f)
{
	fputs(
	    "Usage: qemu-launcher [OPTIONS] NAME\n"
	    "       qemu-launcher --import [--libvirt-xml FILE] -- QEMU-BINARY [QEMU-ARGS...]\n"
	    "       qemu-launcher --status [--json] [NAME]\n"
	    "       qemu-launcher --topology | --suggest NAME\n"
	    "Start the VM defined in CONFIG_DIR/NAME.yml, pin its vCPUs, supervise it.\n"
	    "\n"
	    "  -n, --dry-run          print the qemu command line and the pinning plan; change "
	    "nothing\n"
	    "  -c, --check            validate the definition and the host CPUs it names\n"
	    "  -l, --list             list the definitions in the config dir\n"
	    "  -i, --import -- QEMU ARGS...\n"
	    "                         print a definition for a qemu command line\n"
	    "      --libvirt-xml FILE with --import: take pinning, scheduling and memory locking\n"
	    "                         from a libvirt domain XML\n"
	    "  -s, --status [NAME]    show the running VMs' threads as the kernel has them "
	    "placed;\n"
	    "                         exit 1 when they differ from their definitions\n"
	    "      --json             with --status: one JSON document (see qemu-launcher(1))\n"
	    "      --topology         show the host's CPU topology (cores, SMT siblings, L3, "
	    "nodes)\n"
	    "      --suggest NAME     print a vcpu_pinning, emulator_pinning and -smp for NAME's\n"
	    "                         vCPUs on this host (printed only, never applied)\n"
	    "  -C, --config-dir DIR   read definitions from DIR (default $QEMU_LAUNCHER_CONFIG_DIR "
	    "or\n"
	    "                         " QL_DEFAULT_CONFIG_DIR ")\n"
	    "  -v, --verbose          print each step\n"
	    "  -d, --debug            print the pinning map and every change made to the host\n"
	    "  -h, --help             show this help\n"
	    "  -V, --version          show the version\n"
	    "\n"
	    "Exit status: qemu's own; 128+N if qemu died of signal N; 2 usage error; 125 launcher\n"
	    "failure (invalid definition, host setup failed); 126 qemu binary not executable;\n"
	    "127 qemu binary not found. See qemu-launcher(1) and qemu-launcher.yml(5).\n",
	    f);
}

_printf_(1, 2) static void print_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("qemu-launcher: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static const char *mode_option(enum mode m)
{
	static const char *const names[] = {
	    [MODE_RUN] = "",
	    [MODE_DRY_RUN] = "--dry-run",
	    [MODE_CHECK] = "--check",
	    [MODE_LIST] = "--list",
	    [MODE_IMPORT] = "--import",
	    [MODE_STATUS] = "--status",
	    [MODE_TOPOLOGY] = "--topology",
	    [MODE_SUGGEST] = "--suggest",
	};
	return names[m];
}

/* One mode per invocation: `-n -s NAME` or `--dry-run --check` used to mean whichever came
 * last, so a caller could not tell what had happened. Repeating the same mode is harmless. */
static int set_mode(struct cli *cli, enum mode m)
{
	if (cli->mode != MODE_RUN && cli->mode != m) {
		print_error("%s and %s cannot be combined (try --help)", mode_option(cli->mode),
			    mode_option(m));
		return -EINVAL;
	}
	cli->mode = m;
	return 0;
}

static int parse_args(int argc, char **argv, struct cli *cli)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"debug", no_argument, NULL, 'd'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"check", no_argument, NULL, 'c'},
	    {"list", no_argument, NULL, 'l'},
	    {"config-dir", required_argument, NULL, 'C'},
	    {"import", no_argument, NULL, 'i'},
	    {"status", no_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'J'},
	    {"libvirt-xml", required_argument, NULL, 'X'},
	    {"topology", no_argument, NULL, OPT_TOPOLOGY},
	    {"suggest", no_argument, NULL, OPT_SUGGEST},
	    {NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "+hVvdncliC:s", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		case 'V':
			printf("qemu-launcher %s\n", QL_VERSION);
			exit(EXIT_SUCCESS);
		case 'v':
			cli->verbose = true;
			break;
		case 'd':
			cli->debug = true;
			break;
		case 'n':
			if (set_mode(cli, MODE_DRY_RUN) < 0)
				return -EINVAL;
			break;
		case 'c':
			if (set_mode(cli, MODE_CHECK) < 0)
				return -EINVAL;
			break;
		case 'l':
			if (set_mode(cli, MODE_LIST) < 0)
				return -EINVAL;
			break;
		case 'i':
			if (set_mode(cli, MODE_IMPORT) < 0)
				return -EINVAL;
			/* everything after --import (and an optional `--`) is qemu's, even words
			 * that look like our options */
			goto import_args;
		case 's':
			if (set_mode(cli, MODE_STATUS) < 0)
				return -EINVAL;
			break;
		case OPT_TOPOLOGY:
			if (set_mode(cli, MODE_TOPOLOGY) < 0)
				return -EINVAL;
			break;
		case OPT_SUGGEST:
			if (set_mode(cli, MODE_SUGGEST) < 0)
				return -EINVAL;
			break;
		case 'C':
			cli->config_dir = optarg;
			break;
		case 'J':
			cli->json = true;
			break;
		case 'X':
			cli->libvirt_xml = optarg;
			break;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
import_args:
	if (cli->json && cli->mode != MODE_STATUS) {
		print_error("--json goes with --status");
		return -EINVAL;
	}
	if (cli->libvirt_xml && cli->mode != MODE_IMPORT) {
		print_error("--libvirt-xml goes with --import");
		return -EINVAL;
	}
	if (cli->libvirt_xml && !*cli->libvirt_xml) {
		print_error("--libvirt-xml needs a FILE");
		return -EINVAL;
	}
	if (cli->mode == MODE_IMPORT) {
		/* --import --libvirt-xml FILE -- ...: the one option that may follow --import (qemu
		 * has no option of that name, and a binary is never called so) */
		if (optind < argc && streq(argv[optind], "--libvirt-xml")) {
			if (optind + 1 >= argc) {
				print_error("--libvirt-xml needs a FILE");
				return -EINVAL;
			}
			cli->libvirt_xml = argv[optind + 1];
			optind += 2;
		} else if (optind < argc && !strncmp(argv[optind], "--libvirt-xml=", 14)) {
			cli->libvirt_xml = argv[optind] + 14;
			optind++;
		}
		if (optind < argc && streq(argv[optind], "--"))
			optind++;
		if (optind >= argc) {
			print_error("--import needs a qemu command line: --import -- QEMU ARGS...");
			return -EINVAL;
		}
		cli->import_argv = argv + optind;
		cli->import_argc = (size_t)(argc - optind);
		return 0;
	}
	if (cli->mode == MODE_STATUS) {
		if (optind + 1 < argc) {
			print_error("--status takes at most one NAME");
			return -EINVAL;
		}
		cli->name = optind < argc ? argv[optind] : NULL;
		return 0;
	}
	if (cli->mode == MODE_LIST || cli->mode == MODE_TOPOLOGY) {
		if (optind != argc) {
			print_error("--%s takes no NAME",
				    cli->mode == MODE_LIST ? "list" : "topology");
			return -EINVAL;
		}
		return 0;
	}
	if (optind + 1 != argc) {
		print_error(optind == argc ? "missing NAME (try --help)"
					   : "expected one NAME, got %d arguments (try --help)",
			    argc - optind);
		return -EINVAL;
	}
	cli->name = argv[optind];
	return 0;
}

static int exit_code_for_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_LAUNCHER;
}

static int list_definitions(const struct config_paths *paths)
{
	struct ql_error err = {0};
	_cleanup_strv_free_ char **names = NULL;
	if (config_list(paths, &names, &err) < 0) {
		print_error("%s", err.msg);
		ql_error_clear(&err);
		return EXIT_LAUNCHER;
	}
	for (char **n = names; *n; n++)
		printf("%s\n", *n);
	return EXIT_SUCCESS;
}

static int import_definition(const struct cli *cli)
{
	struct ql_error err = {0};
	_cleanup_free_ char *yaml = NULL;
	_cleanup_strv_free_ char **warnings = NULL, **xml_warnings = NULL;
	_cleanup_free_ char *domain = NULL;
	struct import_launcher keys = {0};
	if (cli->libvirt_xml &&
	    libvirt_xml_load(cli->libvirt_xml, &keys, &domain, &xml_warnings, &err) < 0) {
		print_error("%s", err.msg);
		ql_error_clear(&err);
		return EXIT_LAUNCHER;
	}
	int r = import_command_line_with(cli->import_argv, cli->import_argc,
					 cli->libvirt_xml ? &keys : NULL, &yaml, &warnings, &err);
	import_launcher_done(&keys);
	if (r < 0) {
		print_error("%s", err.msg);
		ql_error_clear(&err);
		return EXIT_LAUNCHER;
	}
	for (char **w = xml_warnings; w && *w; w++)
		fprintf(stderr, "qemu-launcher: warning: %s\n", *w);
	for (char **w = warnings; *w; w++)
		fprintf(stderr, "qemu-launcher: warning: %s\n", *w);
	fputs(yaml, stdout);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		print_error("writing the definition: %m");
		return EXIT_LAUNCHER;
	}
	return EXIT_SUCCESS;
}

/* Exit 0: every VM is placed as its definition says; 1: a difference was flagged (or NAME is not
 * running); 125: the kernel's view could not be read. */
static int show_status(const struct cli *cli, const struct config_paths *paths)
{
	struct ql_error err = {0};
	_cleanup_status_report_ struct status_report *report = NULL;
	/* NAME comes from argv and would be printed ("VM NAME is not running"): only a valid
	 * one goes on, and the error shows it escaped. */
	if ((cli->name && config_check_name(cli->name, &err) < 0) ||
	    (cli->json && jsonc_load(&err) < 0) ||
	    status_collect(paths, cli->name, &report, &err) < 0) {
		print_error("%s", err.msg);
		ql_error_clear(&err);
		return EXIT_LAUNCHER;
	}
	_cleanup_free_ char *text = cli->json ? status_json_format(report) : status_format(report);
	if (!text) {
		print_error("out of memory");
		return EXIT_LAUNCHER;
	}
	fputs(text, stdout);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		print_error("writing the status: %m");
		return EXIT_LAUNCHER;
	}
	return status_is_consistent(report) ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int show_topology(void)
{
	struct ql_error err = {0};
	_cleanup_topology_ struct host_topology *t = NULL;
	if (topology_read("/", &t, &err) < 0) {
		print_error("reading the host topology: %s", err.msg);
		ql_error_clear(&err);
		return EXIT_LAUNCHER;
	}
	_cleanup_free_ char *text = topology_format(t);
	if (!text) {
		print_error("out of memory");
		return EXIT_LAUNCHER;
	}
	fputs(text, stdout);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		print_error("writing the topology: %m");
		return EXIT_LAUNCHER;
	}
	return EXIT_SUCCESS;
}

/* Printed, never applied: the user decides what goes into the definition. */
static int suggest_pinning(const struct definition *d)
{
	struct ql_error err = {0};
	_cleanup_topology_ struct host_topology *t = NULL;
	_cleanup_free_ char *yaml = NULL;
	if (topology_read("/", &t, &err) < 0 || topology_suggest_for(t, d, &yaml, &err) < 0) {
		print_error("%s", err.msg);
		ql_error_clear(&err);
		return EXIT_LAUNCHER;
	}
	fputs(yaml, stdout);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		print_error("writing the suggestion: %m");
		return EXIT_LAUNCHER;
	}
	return EXIT_SUCCESS;
}

/* --check: where the pinning hides the host's SMT siblings, L3 groups or NUMA nodes from the
 * guest. Warnings only: the definition is valid either way. */
static void print_topology_warnings(const struct definition *d)
{
	struct ql_error err = {0};
	_cleanup_topology_ struct host_topology *t = NULL;
	_cleanup_strv_free_ char **warnings = NULL;
	if (!d->n_pins)
		return;
	if (topology_read("/", &t, &err) < 0 || topology_check(t, d, &warnings, &err) < 0) {
		fprintf(stderr, "qemu-launcher: warning: host topology not checked: %s\n", err.msg);
		ql_error_clear(&err);
		return;
	}
	for (char **w = warnings; *w; w++)
		fprintf(stderr, "qemu-launcher: warning: %s\n", *w);
}

/* --check: a definition that locks memory without the limit to do it (memlock.h). */
static void print_memlock_warning(const struct definition *d)
{
	struct ql_error err = {0};
	_cleanup_strv_free_ char **warnings = NULL;
	if (memlock_check(d, &warnings, &err) < 0) {
		fprintf(stderr, "qemu-launcher: warning: locked memory not checked: %s\n", err.msg);
		ql_error_clear(&err);
		return;
	}
	for (char **w = warnings; *w; w++)
		fprintf(stderr, "qemu-launcher: warning: %s\n", *w);
}

/* --check: other definitions whose VFIO devices share an IOMMU group with this one's. */
static void print_vfio_conflicts(const struct config_paths *paths, const char *name,
				 const struct definition *d)
{
	struct ql_error err = {0};
	_cleanup_strv_free_ char **warnings = NULL;
	if (vfio_conflicts(paths, name, d, &warnings, &err) < 0) {
		fprintf(stderr, "qemu-launcher: warning: VFIO conflicts not checked: %s\n",
			err.msg);
		ql_error_clear(&err);
		return;
	}
	for (char **w = warnings; *w; w++)
		fprintf(stderr, "qemu-launcher: warning: %s\n", *w);
}

/* --check and --dry-run: the same plan a run would carry out. */
static int show_plan(const struct cli *cli, const struct config_paths *paths,
		     const struct vm_plan *plan, const struct definition *d)
{
	if (cli->mode == MODE_CHECK) {
		_cleanup_free_ char *refusal = NULL;
		if (vm_plan_refusal(plan, &refusal) < 0) {
			print_error("out of memory");
			return EXIT_LAUNCHER;
		}
		/* a warning, as the memlock one: the pools may change before a start */
		if (refusal)
			fprintf(stderr,
				"qemu-launcher: warning: %s: a start now would be refused (exit "
				"125): %s\n",
				d->path, refusal);
		print_topology_warnings(d);
		print_memlock_warning(d);
		print_vfio_conflicts(paths, cli->name, d);
		printf("%s: OK\n", d->path);
		return EXIT_SUCCESS;
	}
	_cleanup_free_ char *text = vm_plan_describe(plan);
	if (!text) {
		print_error("out of memory");
		return EXIT_LAUNCHER;
	}
	fputs(text, stdout);
	return EXIT_SUCCESS;
}

static int exit_code_for_outcome(const struct vm_outcome *out)
{
	switch (out->end) {
	case VM_END_QEMU:
		return exit_code_for_status(out->wait_status);
	case VM_END_NOT_FOUND:
		return EXIT_NOT_FOUND;
	case VM_END_NOT_EXECUTABLE:
		return EXIT_NOT_EXECUTABLE;
	case VM_END_LAUNCHER:
		break;
	}
	return EXIT_LAUNCHER;
}

/* Plans the VM of a parsed definition, then shows the plan or carries it out. */
static int run_definition(const struct cli *cli, const struct config_paths *paths,
			  const struct definition *d)
{
	struct printer printer = {.level = cli->debug || d->debug ? QL_LOG_DEBUG
					   : cli->verbose	  ? QL_LOG_INFO
								  : QL_LOG_WARNING,
				  .careful = paths->setuid};
	struct ql_logger log = {.fn = print_log, .userdata = &printer, .max_level = printer.level};
	struct vm_options o = {.name = cli->name,
			       .def = d,
			       .paths = paths,
			       .log = &log,
			       .dry_run = cli->mode == MODE_DRY_RUN};
	struct ql_error err = {0};
	_cleanup_vm_plan_ struct vm_plan *plan = NULL;
	if (vm_plan_new(&o, &plan, &err) < 0) {
		printer_finish(&printer);
		print_error("%s", err.msg);
		ql_error_clear(&err);
		return EXIT_LAUNCHER;
	}
	if (cli->mode == MODE_DRY_RUN || cli->mode == MODE_CHECK) {
		printer_finish(&printer);
		return show_plan(cli, paths, plan, d);
	}
	struct vm_outcome outcome;
	int r = vm_run(plan, &outcome, &err);
	printer_finish(&printer);
	if (r < 0)
		print_error("%s", err.msg ? err.msg : "failed");
	ql_error_clear(&err);
	int code = exit_code_for_outcome(&outcome);
	if (outcome.end == VM_END_QEMU)
		ql_log(&log, QL_LOG_INFO, "qemu ended; exit status %d", code);
	return code;
}

/* A killed launcher's guardian, now the launcher's binary again (reclaim.h): gives the run's
 * host changes back. Not for callers: a setuid call by another user is refused. */
static int reclaim_after_kill(char *const *args)
{
	if (getuid() != geteuid() || getgid() != getegid()) {
		print_error("%s is the guardian's own mode", RECLAIM_ARG);
		return EXIT_LAUNCHER;
	}
	struct ql_error err = {0};
	struct reclaim_what w;
	if (reclaim_parse(args, &w, &err) < 0) {
		print_error("%s", err.msg);
		ql_error_clear(&err);
		return EXIT_USAGE;
	}
	/* reclaim_parse bounds it to the levels, 0 to 2 */
	struct printer printer = {.level = (enum ql_log_level)w.log_level, .careful = w.careful};
	struct ql_logger log = {.fn = print_log, .userdata = &printer, .max_level = printer.level};
	int r = reclaim_run(&w, &log, &err);
	printer_finish(&printer);
	ql_error_clear(&err);
	return r < 0 ? EXIT_LAUNCHER : EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	if (launch_sanitize_fds() < 0)
		return EXIT_LAUNCHER;
	if (privileges_gained_by_file()) {
		print_error(
		    "this qemu-launcher gives its caller privileges without being set-user-ID "
		    "(file capabilities?): install it setuid root (chmod u+s) or run it as "
		    "root");
		return EXIT_LAUNCHER;
	}
	if (argc > 1 && streq(argv[1], RECLAIM_ARG))
		return reclaim_after_kill(argv + 2);

	struct cli cli = {0};
	if (parse_args(argc, argv, &cli) < 0)
		return EXIT_USAGE;

	if (cli.mode == MODE_IMPORT || cli.mode == MODE_TOPOLOGY) {
		/* Neither needs a privilege. A setuid install runs them as the caller alone, so
		 * that --libvirt-xml opens a file with the caller's rights: with root's it showed
		 * parts of root-only files and opened FIFOs and devices. */
		const char *step = NULL;
		int r = privileges_is_setuid() ? privileges_become_caller(&step) : 0;
		if (r < 0) {
			print_error("dropping the set-user-ID privilege: %s: %s", step,
				    strerror(-r));
			return EXIT_LAUNCHER;
		}
		return cli.mode == MODE_IMPORT ? import_definition(&cli) : show_topology();
	}

	struct ql_error err = {0};
	struct config_paths paths;
	if (config_paths_init(&paths, privileges_is_setuid(), cli.config_dir, &err) < 0) {
		print_error("%s", err.msg);
		ql_error_clear(&err);
		return EXIT_LAUNCHER;
	}
	if (cli.mode == MODE_LIST || cli.mode == MODE_STATUS) {
		int code =
		    cli.mode == MODE_LIST ? list_definitions(&paths) : show_status(&cli, &paths);
		config_paths_done(&paths);
		return code;
	}

	int code = EXIT_LAUNCHER;
	_cleanup_free_ char *path = NULL, *text = NULL;
	_cleanup_definition_ struct definition *d = NULL;
	size_t len = 0;
	if (config_read_definition(&paths, cli.name, &path, &text, &len, &err) < 0 ||
	    definition_parse(path, text, len, &d, &err) < 0) {
		print_error("%s", err.msg);
		goto out;
	}
	/* The definition keeps nothing of the text: its pages, already faulted in, serve the
	 * plan's allocations (a page first touched costs ~2 us here; bench/RESULTS.md). */
	free(TAKE_PTR(text));

	/* Printed, never applied: a suggestion needs the definition's vCPU count only. */
	if (cli.mode == MODE_SUGGEST)
		code = suggest_pinning(d);
	else
		code = run_definition(&cli, &paths, d);
out:
	ql_error_clear(&err);
	config_paths_done(&paths);
	return code;
}
