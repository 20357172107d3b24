/* rollout tasks check: validate task directories and print every problem. */
#include "cli/cli.h"
#include "config/diag.h"
#include "config/task.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char tasks_usage[] = "usage: rollout tasks SUBCOMMAND ...\n"
                                  "\n"
                                  "Subcommands:\n"
                                  "  check PATH...   validate tasks and print every problem found\n"
                                  "\n"
                                  "Run `rollout tasks check --help` for its flags.\n";

static const char check_usage[] =
    "usage: rollout tasks check [--no-verify] [-q] PATH...\n"
    "\n"
    "Validate Harbor tasks. PATH is a task directory, or a directory of tasks\n"
    "(each child directory with task.toml, instruction.md, environment/ or tests/\n"
    "is checked; other children are skipped).\n"
    "\n"
    "A task is valid when task.toml reads (TOML 1.0, known fields of the right\n"
    "types, ${VAR} templates resolvable from this environment), instruction.md\n"
    "exists, environment/ has a Dockerfile or task.toml names a docker_image,\n"
    "tests/test.sh exists, and no task file is read through a symbolic link (task.toml,\n"
    "instruction.md, environment/, tests/ and solution/ are no links; no link anywhere\n"
    "points out of the task). Every problem is printed as FILE[:LINE]: message;\n"
    "unknown keys and a missing solution/solve.sh are warnings.\n"
    "\n"
    "Options:\n"
    "  --no-verify   verification will be disabled: do not require tests/test.sh\n"
    "  -q, --quiet   print only tasks with problems or warnings\n"
    "  -h, --help    show this help\n"
    "\n"
    "Exit status: 0 when every task is valid, 1 when any task has an error,\n"
    "2 on a usage error.\n";

struct check_totals {
	int ok, failed;
};

static void print_diags(const struct diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		printf("  %s: %s\n", d->v[i].level == DIAG_ERROR ? "error" : "warning",
		       d->v[i].msg);
}

static void check_one(const char *dir, unsigned flags, bool quiet, struct check_totals *t)
{
	_cleanup_diags_ struct diags d = DIAGS_INIT;
	_cleanup_free_ char *name = task_dir_name(dir);

	if (task_check(dir, flags, &d, NULL) < 0) {
		printf("FAIL  %s (%s)\n", name, dir);
		t->failed++;
	} else {
		if (!quiet || d.n)
			printf("OK    %s (%s)\n", name, dir);
		t->ok++;
	}
	print_diags(&d);
}

/* A task, or a directory of tasks. */
static void check_path(const char *path, unsigned flags, bool quiet, struct check_totals *t)
{
	_cleanup_strvs_ struct strv children = STRV_INIT;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *e;
	struct stat st;

	if (stat(path, &st) < 0) {
		printf("FAIL  %s\n  error: %s: %s\n", path, path, strerror(errno));
		t->failed++;
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		printf("FAIL  %s\n  error: %s: not a directory (a task is a directory)\n", path,
		       path);
		t->failed++;
		return;
	}
	if (task_dir_looks_like_task(path)) {
		check_one(path, flags, quiet, t);
		return;
	}
	d = opendir(path);
	while (d && (e = readdir(d))) {
		_cleanup_free_ char *child = NULL;

		if (e->d_name[0] == '.')
			continue;
		child = path_join(path, e->d_name);
		if (path_is_dir(child) && task_dir_looks_like_task(child))
			strv_push_take(&children, steal_ptr(&child));
	}
	if (children.n == 0) {
		printf("FAIL  %s\n  error: %s: not a task, and no directory in it looks like one "
		       "(a task has task.toml, instruction.md, environment/ and tests/test.sh)\n",
		       path, path);
		t->failed++;
		return;
	}
	strv_sort(&children);
	for (size_t i = 0; i < children.n; i++)
		check_one(children.v[i], flags, quiet, t);
}

static int tasks_check(int argc, char **argv)
{
	struct check_totals totals = {0, 0};
	unsigned flags = 0;
	bool quiet = false, opts_done = false;
	int n_paths = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!opts_done && a[0] == '-' && a[1]) {
			if (!strcmp(a, "--")) {
				opts_done = true;
			} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
				fputs(check_usage, stdout);
				return EXIT_OK;
			} else if (!strcmp(a, "--no-verify")) {
				flags |= TASK_NO_VERIFY;
			} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
				quiet = true;
			} else {
				return cli_usage_error("tasks check", "unknown option '%s'", a);
			}
			continue;
		}
		n_paths++;
	}
	if (n_paths == 0)
		return cli_usage_error("tasks check",
		                       "missing PATH (a task or a directory of tasks)");
	opts_done = false;
	for (int i = 1; i < argc; i++) {
		if (!opts_done && argv[i][0] == '-' && argv[i][1]) {
			opts_done = !strcmp(argv[i], "--");
			continue;
		}
		check_path(argv[i], flags, quiet, &totals);
	}
	printf("%d task%s checked: %d valid, %d with errors\n", totals.ok + totals.failed,
	       totals.ok + totals.failed == 1 ? "" : "s", totals.ok, totals.failed);
	fflush(stdout);
	return totals.failed ? EXIT_FAIL : EXIT_OK;
}

int cmd_tasks(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"check", tasks_check, "validate tasks and print every problem found"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch("tasks", subs, argc, argv, tasks_usage);
}
