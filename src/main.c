/* The command line interface: the only place that prints and chooses exit codes. */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "config.h"
#include "definition.h"
#include "import.h"
#include "launch.h"
#include "log.h"
#include "privileges.h"
#include "status.h"
#include "vm.h"

/* Exit codes (DESIGN §2.6; the env(1)/timeout(1) convention). */
#define EXIT_USAGE 2
#define EXIT_LAUNCHER 125
#define EXIT_NOT_EXECUTABLE 126
#define EXIT_NOT_FOUND 127

enum mode { MODE_RUN, MODE_DRY_RUN, MODE_CHECK, MODE_LIST, MODE_IMPORT, MODE_STATUS };

struct cli {
	enum mode mode;
	bool verbose, debug;
	const char *config_dir;
	const char *name;
	char **import_argv; /* --import: the qemu command line */
	size_t import_argc;
};

struct printer {
	bool verbose, debug;
};

static void print_log(void *userdata, enum ql_log_level level, const char *msg)
{
	const struct printer *p = userdata;
	switch (level) {
	case QL_LOG_WARNING:
		fprintf(stderr, "qemu-launcher: warning: %s\n", msg);
		break;
	case QL_LOG_INFO:
		if (p->verbose || p->debug)
			fprintf(stderr, "qemu-launcher: %s\n", msg);
		break;
	case QL_LOG_DEBUG:
		if (p->debug)
			fprintf(stderr, "qemu-launcher: debug: %s\n", msg);
		break;
	}
}

static void usage(FILE *f)
{
	fputs("Usage: qemu-launcher [OPTIONS] NAME\n"
	      "       qemu-launcher --import -- QEMU-BINARY [QEMU-ARGS...]\n"
	      "       qemu-launcher --status [NAME]\n"
	      "Start the VM defined in CONFIG_DIR/NAME.yml, pin its vCPUs, supervise it.\n"
	      "\n"
	      "  -n, --dry-run          print the qemu command line and the pinning plan; change nothing\n"
	      "  -c, --check            validate the definition and the host CPUs it names\n"
	      "  -l, --list             list the definitions in the config dir\n"
	      "  -i, --import -- QEMU ARGS...\n"
	      "                         print a definition for a qemu command line\n"
	      "  -s, --status [NAME]    show the running VMs' threads as the kernel has them placed;\n"
	      "                         exit 1 when they differ from their definitions\n"
	      "  -C, --config-dir DIR   read definitions from DIR (default $QEMU_LAUNCHER_CONFIG_DIR or\n"
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

static int parse_args(int argc, char **argv, struct cli *cli)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},       {"version", no_argument, NULL, 'V'},
		{"verbose", no_argument, NULL, 'v'},    {"debug", no_argument, NULL, 'd'},
		{"dry-run", no_argument, NULL, 'n'},    {"check", no_argument, NULL, 'c'},
		{"list", no_argument, NULL, 'l'},       {"config-dir", required_argument, NULL, 'C'},
		{"import", no_argument, NULL, 'i'},     {"status", no_argument, NULL, 's'},
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
			cli->mode = MODE_DRY_RUN;
			break;
		case 'c':
			cli->mode = MODE_CHECK;
			break;
		case 'l':
			cli->mode = MODE_LIST;
			break;
		case 'i':
			cli->mode = MODE_IMPORT;
			/* everything after --import (and an optional `--`) is qemu's, even words
			 * that look like our options */
			goto import_args;
		case 's':
			cli->mode = MODE_STATUS;
			break;
		case 'C':
			cli->config_dir = optarg;
			break;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
import_args:
	if (cli->mode == MODE_IMPORT) {
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
	if (cli->mode == MODE_LIST) {
		if (optind != argc) {
			print_error("--list takes no NAME");
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
	_cleanup_strv_free_ char **warnings = NULL;
	if (import_command_line(cli->import_argv, cli->import_argc, &yaml, &warnings, &err) < 0) {
		print_error("%s", err.msg);
		ql_error_clear(&err);
		return EXIT_LAUNCHER;
	}
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
	if (status_collect(paths, cli->name, &report, &err) < 0) {
		print_error("%s", err.msg);
		ql_error_clear(&err);
		return EXIT_LAUNCHER;
	}
	_cleanup_free_ char *text = status_format(report);
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

/* --check and --dry-run: the same plan a run would carry out. */
static int show_plan(const struct cli *cli, const struct vm_plan *plan, const char *path)
{
	if (cli->mode == MODE_CHECK) {
		printf("%s: OK\n", path);
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
	struct printer printer = {.verbose = cli->verbose, .debug = cli->debug || d->debug};
	struct ql_logger log = {.fn = print_log, .userdata = &printer};
	struct vm_options o = {.name = cli->name, .def = d, .paths = paths, .log = &log};
	struct ql_error err = {0};
	_cleanup_vm_plan_ struct vm_plan *plan = NULL;
	if (vm_plan_new(&o, &plan, &err) < 0) {
		print_error("%s", err.msg);
		ql_error_clear(&err);
		return EXIT_LAUNCHER;
	}
	if (cli->mode == MODE_DRY_RUN || cli->mode == MODE_CHECK)
		return show_plan(cli, plan, d->path);
	struct vm_outcome outcome;
	if (vm_run(plan, &outcome, &err) < 0)
		print_error("%s", err.msg ? err.msg : "failed");
	ql_error_clear(&err);
	int code = exit_code_for_outcome(&outcome);
	if (outcome.end == VM_END_QEMU)
		ql_log(&log, QL_LOG_INFO, "qemu ended; exit status %d", code);
	return code;
}

int main(int argc, char **argv)
{
	if (launch_sanitize_fds() < 0)
		return EXIT_LAUNCHER;

	struct cli cli = {0};
	if (parse_args(argc, argv, &cli) < 0)
		return EXIT_USAGE;

	if (cli.mode == MODE_IMPORT)
		return import_definition(&cli);

	struct ql_error err = {0};
	struct config_paths paths;
	if (config_paths_init(&paths, privileges_is_setuid(), cli.config_dir, &err) < 0) {
		print_error("%s", err.msg);
		ql_error_clear(&err);
		return EXIT_LAUNCHER;
	}
	if (cli.mode == MODE_LIST || cli.mode == MODE_STATUS) {
		int code = cli.mode == MODE_LIST ? list_definitions(&paths) : show_status(&cli, &paths);
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

	code = run_definition(&cli, &paths, d);
out:
	ql_error_clear(&err);
	config_paths_done(&paths);
	return code;
}
