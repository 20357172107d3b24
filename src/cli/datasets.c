/* rollout datasets list|download: registry datasets (Harbor's registry.json). */
#include "cli/cli.h"
#include "config/job.h"
#include "config/registry.h"
#include "core/fetch.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char datasets_usage[] =
    "usage: rollout datasets SUBCOMMAND ...\n"
    "\n"
    "Registry datasets: named, versioned lists of tasks in a registry.json (Harbor's\n"
    "format), each task a directory in a git repository (URL, commit, path) or a\n"
    "local directory.\n"
    "\n"
    "Subcommands:\n"
    "  list       print the datasets of a registry\n"
    "  download   fetch the tasks of a dataset\n"
    "\n"
    "Run `rollout datasets SUBCOMMAND --help` for its flags.\n";

#define REGISTRY_FLAGS_HELP                                                                        \
	"  --registry-path FILE   a registry.json on this machine\n"                               \
	"  --registry-url URL     file:///path/to/registry.json or http://host/path;\n"            \
	"                         rollout has no TLS: for an https:// registry, download\n"        \
	"                         the file and pass --registry-path\n"

static const char list_usage[] =
    "usage: rollout datasets list (--registry-path FILE | --registry-url URL)\n"
    "\n"
    "Print the datasets of a registry, one per line: NAME, VERSION, the number of\n"
    "tasks, DESCRIPTION. rollout cannot query Harbor's hosted registry: give a\n"
    "registry.json.\n"
    "\n"
    "Options:\n" REGISTRY_FLAGS_HELP "  -h, --help             show this help\n"
    "\n"
    "Exit status: 0, 1 when the registry cannot be read (every problem of a\n"
    "malformed registry.json is printed as FILE:LINE: message), 2 on a usage error.\n";

static const char download_usage[] =
    "usage: rollout datasets download NAME[@VERSION] (--registry-path FILE |\n"
    "                                 --registry-url URL) [-o DIR] [--overwrite]\n"
    "                                 [-t GLOB]... [-x GLOB]... [-l N]\n"
    "\n"
    "Fetch the tasks of a dataset and print, per task, its name and local directory\n"
    "(tab-separated). Without @VERSION the version is \"head\" when the registry has\n"
    "it, else the highest PEP 440 version, else the last version string in byte order.\n"
    "\n"
    "Git tasks are fetched with the system git (one shallow, sparse clone per\n"
    "repository, checked out at the task's git_commit_id, or at HEAD when it has\n"
    "none) into the task cache: $ROLLOUT_TASK_CACHE, else $XDG_CACHE_HOME/rollout/tasks,\n"
    "else ~/.cache/rollout/tasks. A cached task is reused; a HEAD task is fetched\n"
    "again when HEAD moved. Local tasks (no git_url) stay where they are.\n"
    "\n"
    "Options:\n" REGISTRY_FLAGS_HELP
    "  -o, --output-dir DIR   also copy each task to DIR/NAME (a flat directory of\n"
    "                         tasks, local ones included), which is then printed\n"
    "      --overwrite        fetch again even what is cached\n"
    "  -t, --task-name GLOB   only tasks whose name matches (repeatable)\n"
    "  -x, --exclude-task-name GLOB\n"
    "                         skip tasks whose name matches (repeatable)\n"
    "  -l, --n-tasks N        the first N tasks (after the filters)\n"
    "  -h, --help             show this help\n"
    "\n"
    "Exit status: 0, 1 when the dataset cannot be fetched, 2 on a usage error.\n";

enum { OPT_REGISTRY_PATH = 1, OPT_REGISTRY_URL, OPT_OVERWRITE };

/* The usage error for a missing registry. */
static int no_registry(const char *cmd)
{
	return cli_usage_error(cmd, "give --registry-path FILE or --registry-url URL (rollout "
	                            "cannot query Harbor's hosted registry; download its "
	                            "registry.json)");
}

static int getopt_error(const char *cmd, int c, char **argv)
{
	if (c == ':')
		return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
	return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
}

static int datasets_list(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"registry-path", required_argument, NULL, OPT_REGISTRY_PATH},
	    {"registry-url", required_argument, NULL, OPT_REGISTRY_URL},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *cmd = "datasets list", *path = NULL, *url = NULL;
	struct registry reg;
	struct err err = {0};
	int c, w_name = 4, w_version = 7;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(list_usage, stdout);
			return EXIT_OK;
		case OPT_REGISTRY_PATH:
			path = optarg;
			break;
		case OPT_REGISTRY_URL:
			url = optarg;
			break;
		default:
			return getopt_error(cmd, c, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (path && url)
		return cli_usage_error(cmd, "give --registry-path or --registry-url, not both");
	if (!path && !url)
		return no_registry(cmd);
	signals_install_cancel();
	if (registry_open(path, url, &reg, &err) < 0)
		return cli_fail("%s", err.msg);
	for (size_t i = 0; i < reg.n_datasets; i++) {
		int n = (int)strlen(reg.datasets[i].name), v = (int)strlen(reg.datasets[i].version);

		w_name = n > w_name ? n : w_name;
		w_version = v > w_version ? v : w_version;
	}
	printf("%-*s  %-*s  %5s  %s\n", w_name, "NAME", w_version, "VERSION", "TASKS",
	       "DESCRIPTION");
	for (size_t i = 0; i < reg.n_datasets; i++) {
		const struct registry_dataset *d = &reg.datasets[i];
		size_t dn = strcspn(d->description, "\r\n");

		printf("%-*s  %-*s  %5zu  %.*s\n", w_name, d->name, w_version, d->version,
		       d->n_tasks, (int)dn, d->description);
	}
	registry_release(&reg);
	return fflush(stdout) == 0 ? EXIT_OK : cli_fail("write: %s", strerror(errno));
}

static int parse_n_tasks(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < 1 || v > 1000000000)
		return -1;
	*out = (int)v;
	return 0;
}

static int datasets_download(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"registry-path", required_argument, NULL, OPT_REGISTRY_PATH},
	    {"registry-url", required_argument, NULL, OPT_REGISTRY_URL},
	    {"output-dir", required_argument, NULL, 'o'},
	    {"overwrite", no_argument, NULL, OPT_OVERWRITE},
	    {"task-name", required_argument, NULL, 't'},
	    {"exclude-task-name", required_argument, NULL, 'x'},
	    {"n-tasks", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *cmd = "datasets download", *ref = NULL;
	struct dataset_config dc = {.n_tasks = -1};
	struct registry_fetch f;
	struct err err = {0};
	size_t n_reused = 0;
	int c, rc = EXIT_OK;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:t:x:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(download_usage, stdout);
			rc = EXIT_OK;
			goto out;
		case OPT_REGISTRY_PATH:
			free(dc.registry_path);
			dc.registry_path = xstrdup(optarg);
			break;
		case OPT_REGISTRY_URL:
			free(dc.registry_url);
			dc.registry_url = xstrdup(optarg);
			break;
		case 'o':
			free(dc.download_dir);
			dc.download_dir = xstrdup(optarg);
			break;
		case OPT_OVERWRITE:
			dc.overwrite = true;
			break;
		case 't':
			dc.has_task_names = true;
			strv_push(&dc.task_names, optarg);
			break;
		case 'x':
			dc.has_exclude_task_names = true;
			strv_push(&dc.exclude_task_names, optarg);
			break;
		case 'l':
			if (parse_n_tasks(optarg, &dc.n_tasks) < 0) {
				rc = cli_usage_error(cmd, "-l: expected an integer >= 1, got '%s'",
				                     optarg);
				goto out;
			}
			break;
		default:
			rc = getopt_error(cmd, c, argv);
			goto out;
		}
	}
	if (optind < argc)
		ref = argv[optind++];
	if (!ref) {
		rc = cli_usage_error(cmd, "missing NAME[@VERSION]");
		goto out;
	}
	if (optind < argc) {
		rc = cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (registry_parse_ref(ref, &dc.name, &dc.version, &err) < 0) {
		rc = cli_usage_error(cmd, "%s", err.msg);
		goto out;
	}
	if (dc.registry_path && dc.registry_url) {
		rc = cli_usage_error(cmd, "give --registry-path or --registry-url, not both");
		goto out;
	}
	if (!dc.registry_path && !dc.registry_url) {
		rc = no_registry(cmd);
		goto out;
	}
	dc.is_registry = true;
	signals_install_cancel();
	if (fetch_registry_dataset(&dc, FETCH_COPY_LOCAL, &f, &err) < 0) {
		rc = cancel_requested() ? EXIT_CANCELLED : cli_fail("%s", err.msg);
		goto out;
	}
	for (size_t i = 0; i < f.ds.n_tasks; i++) {
		printf("%s\t%s\n", f.ds.tasks[i].name, f.ds.tasks[i].path);
		n_reused += f.origins[i].reused;
	}
	if (fflush(stdout) != 0)
		rc = cli_fail("write: %s", strerror(errno));
	fprintf(stderr, "%s@%s: %zu task%s (%zu fetched, %zu already there)%s%s\n", f.ds.name,
	        f.version, f.ds.n_tasks, f.ds.n_tasks == 1 ? "" : "s", f.ds.n_tasks - n_reused,
	        n_reused, dc.download_dir ? " in " : "", dc.download_dir ? dc.download_dir : "");
	registry_fetch_release(&f);
out:
	free(dc.name);
	free(dc.version);
	free(dc.registry_path);
	free(dc.registry_url);
	free(dc.download_dir);
	strv_release(&dc.task_names);
	strv_release(&dc.exclude_task_names);
	return rc;
}

int cmd_datasets(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"list", datasets_list, "print the datasets of a registry"},
	    {"download", datasets_download, "fetch the tasks of a dataset"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch("datasets", subs, argc, argv, datasets_usage);
}
