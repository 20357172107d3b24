/* rollout datasets list|download: registry datasets (Harbor's registry.json). */
#include "cli/cli.h"
#include "config/job_config.h"
#include "config/registry.h"
#include "core/fetch.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <stddef.h>
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

static const char list_usage[] =
    "usage: rollout datasets list (--registry-path FILE | --registry-url URL)\n"
    "\n"
    "Print the datasets of a registry, one per line: NAME, VERSION, the number of\n"
    "tasks, DESCRIPTION. rollout cannot query Harbor's hosted registry: give a\n"
    "registry.json.\n"
    "\n"
    "Options:\n";

static const char list_footer[] =
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
    "Options:\n";

static const char download_footer[] =
    "\n"
    "Exit status: 0, 1 when the dataset cannot be fetched, 2 on a usage error.\n";

#define DS(field) offsetof(struct dataset_config, field)

/* The registry rows, shared by list and download (both fill a struct dataset_config). */
static const struct cli_option registry_options[] = {
    CLI_OPT(0, "registry-path", NULL, "FILE", "a registry.json on this machine", cli_opt_str,
            DS(registry_path)),
    CLI_OPT(0, "registry-url", NULL, "URL",
            "file:///path/to/registry.json or http(s)://host/path\n"
            "(https trusts the system CAs, or SSL_CERT_FILE/SSL_CERT_DIR)",
            cli_opt_str, DS(registry_url)),
    CLI_END,
};

/* -t/-x: the first one sets has_task_names (an empty list would filter out all). */
static int opt_task_glob(const struct cli_option *o, const char *flag, const char *value, void *ctx,
                         struct err *err)
{
	struct dataset_config *dc = ctx;

	if (o->off == DS(task_names))
		dc->has_task_names = true;
	else
		dc->has_exclude_task_names = true;
	return cli_opt_strv(o, flag, value, ctx, err);
}

static const struct cli_option download_options[] = {
    CLI_INCLUDE(registry_options, 0),
    CLI_OPT('o', "output-dir", NULL, "DIR",
            "also copy each task to DIR/NAME (a flat directory of\n"
            "tasks, local ones included), which is then printed",
            cli_opt_str, DS(download_dir)),
    CLI_OPT(0, "overwrite", NULL, NULL, "fetch again even what is cached", cli_opt_true,
            DS(overwrite)),
    CLI_OPT('t', "task-name", NULL, "GLOB", "only tasks whose name matches (repeatable)",
            opt_task_glob, DS(task_names)),
    CLI_OPT('x', "exclude-task-name", NULL, "GLOB", "skip tasks whose name matches (repeatable)",
            opt_task_glob, DS(exclude_task_names)),
    CLI_OPT('l', "n-tasks", NULL, "N", "the first N tasks (after the filters)", cli_opt_int,
            DS(n_tasks), .min = 1),
    CLI_END,
};

/* The usage error for a missing registry. */
static int no_registry(const char *cmd)
{
	return cli_usage_error(cmd, "give --registry-path FILE or --registry-url URL (rollout "
	                            "cannot query Harbor's hosted registry; download its "
	                            "registry.json)");
}

static int datasets_list(int argc, char **argv)
{
	_cleanup_dataset_config_ struct dataset_config dc = {.n_tasks = -1};
	const char *cmd = "datasets list", *path, *url;
	struct registry reg;
	struct err err = {0};
	int c, w_name = 4, w_version = 7;

	c = cli_parse(cmd, registry_options, argc, argv, &dc, list_usage, list_footer, NULL);
	if (c >= 0)
		return c;
	path = dc.registry_path;
	url = dc.registry_url;
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

static int datasets_download(int argc, char **argv)
{
	_cleanup_dataset_config_ struct dataset_config dc = {.n_tasks = -1};
	_cleanup_strvs_ struct strv ops = STRV_INIT;
	const char *cmd = "datasets download", *ref;
	struct registry_fetch f;
	struct err err = {0};
	size_t n_reused = 0;
	int rc;

	rc = cli_parse(cmd, download_options, argc, argv, &dc, download_usage, download_footer,
	               &ops);
	if (rc >= 0)
		return rc;
	rc = EXIT_OK;
	ref = ops.n ? ops.v[0] : NULL;
	if (ops.n > 1)
		return cli_usage_error(cmd, "unexpected argument '%s'", ops.v[1]);
	if (!ref) {
		rc = cli_usage_error(cmd, "missing NAME[@VERSION]");
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
