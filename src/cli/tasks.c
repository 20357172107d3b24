/* rollout tasks check|init|start-env: validate task directories (task files, the
 * Dockerfile, whether base images are at hand) and print every problem; write a new
 * task's skeleton; start a task's environment for a person to work in. */
#include "cli/cli.h"
#include "config/diag.h"
#include "config/task.h"
#include "image/dockerfile.h"
#include "providers/provider.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char tasks_usage[] =
    "usage: rollout tasks SUBCOMMAND ...\n"
    "\n"
    "Subcommands:\n"
    "  check PATH...            validate tasks and print every problem found\n"
    "  init NAME [-p DIR]       write a new task's skeleton (Harbor's layout)\n"
    "  start-env -p TASK [-i]   start a task's environment to work in\n"
    "\n"
    "Run `rollout tasks SUBCOMMAND --help` for its flags.\n";

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
    "the Dockerfile parses (syntax, instructions, flags), tests/test.sh exists, and\n"
    "no task file is read through a symbolic link (task.toml, instruction.md,\n"
    "environment/, tests/ and solution/ are no links; no link anywhere points out of\n"
    "the task). Every problem is printed as FILE[:LINE]: message; unknown keys and a\n"
    "missing solution/solve.sh are warnings.\n"
    "\n"
    "For each image the task needs (every FROM and COPY --from of the Dockerfile, and\n"
    "docker_image) it says whether it is in rollout's image store (sandbox) and on\n"
    "the Docker daemon (when one answers); an image found in neither is a warning\n"
    "naming the commands that would provide it.\n"
    "\n";

static const char check_footer[] =
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

/* --- the images a task needs ------------------------------------------------------ */

/* One image the task needs; `where` says which line names it ("FILE:3"). Where it
 * was found goes to notes, a missing one to d as a warning. Every provider with
 * has_image is asked (its image_place and image_provide say the rest). */
static void check_image(const char *ref, const char *where, struct strv *notes, struct diags *d)
{
	_cleanup_sb_ struct strbuf found = STRBUF_INIT, missing = STRBUF_INIT, how = STRBUF_INIT;
	static bool unreachable[16]; /* by provider_each() index: said once */
	const struct provider_ops *p;

	for (size_t i = 0; (p = provider_each(i)); i++) {
		struct strbuf *into;
		struct err err = {0};
		int have;

		if (!p->has_image || (i < ARRAY_SIZE(unreachable) && unreachable[i]))
			continue;
		have = p->has_image(ref, &err);
		if (have < 0 && p->service && err.code != EINVAL) {
			strv_pushf(notes, "note: no %s answered (%s): images not looked for there",
			           p->service, err.msg);
			if (i < ARRAY_SIZE(unreachable))
				unreachable[i] = true;
			continue;
		}
		if (have < 0) {
			diag_add(d, DIAG_WARNING, "%s: image %s: %s", where, ref, err.msg);
			return;
		}
		into = have ? &found : &missing;
		sb_addf(into, "%s%s", into->len ? (have ? " and " : " nor ") : "", p->image_place);
		if (!have) {
			sb_adds(&how, how.len ? "; " : "");
			sb_addf(&how, "%s%s%s", p->image_provide[0], ref, p->image_provide[1]);
		}
	}
	if (found.len) {
		strv_pushf(notes, "image %s (%s): %s%s%s", ref, where, found.buf,
		           missing.len ? "; not " : "", missing.len ? missing.buf : "");
		return;
	}
	diag_add(d, DIAG_WARNING, "%s: image %s is %s%s; get it with %s", where, ref,
	         strstr(missing.buf ? missing.buf : "", " nor ") ? "neither " : "not ",
	         missing.len ? missing.buf : "anywhere rollout can look",
	         how.len ? how.buf : "the provider's own tools");
}

struct image_check {
	const char *path;
	struct strv *notes;
	struct diags *d;
};

static int check_base_image(const char *ref, int line, void *ctx)
{
	struct image_check *c = ctx;
	_cleanup_free_ char *where = xasprintf("%s:%d", c->path, line);

	check_image(ref, where, c->notes, c->d);
	return 0;
}

/* The Dockerfile parses (errors name the file and line, as the builder's do), and the
 * images its FROM and COPY/ADD --from lines name are at hand. */
static void check_dockerfile(const char *path, struct strv *notes, struct diags *d)
{
	_cleanup_free_ char *text = NULL;
	struct image_check c = {path, notes, d};
	struct dockerfile *df = NULL;
	struct err err = {0};
	size_t len;

	if (read_file(path, 1 << 20, &text, &len, &err) < 0 ||
	    dockerfile_parse(text, len, path, &df, &err) < 0 ||
	    dockerfile_each_base_image(df, check_base_image, &c, &err) < 0)
		diag_add(d, DIAG_ERROR, "%s", err.msg);
	dockerfile_free(df);
}

static void check_one(const char *dir, unsigned flags, bool quiet, struct check_totals *t)
{
	_cleanup_diags_ struct diags d = DIAGS_INIT;
	_cleanup_free_ char *name = task_dir_name(dir);
	_cleanup_free_ char *dockerfile = path_join(dir, "environment/Dockerfile");
	_cleanup_strvs_ struct strv notes = STRV_INIT;
	struct task *task = NULL;
	struct stat st;

	task_check(dir, flags, &d, &task);
	/* task_check refused links in the task; a Dockerfile that is a file is read. */
	if (lstat(dockerfile, &st) == 0 && S_ISREG(st.st_mode))
		check_dockerfile(dockerfile, &notes, &d);
	if (task && task->config.environment.docker_image) {
		_cleanup_free_ char *where =
		    xasprintf("%s: [environment].docker_image", task->config_path);

		check_image(task->config.environment.docker_image, where, &notes, &d);
	}
	if (d.n_errors) {
		printf("FAIL  %s (%s)\n", name, dir);
		t->failed++;
	} else {
		if (!quiet || d.n)
			printf("OK    %s (%s)\n", name, dir);
		t->ok++;
	}
	print_diags(&d);
	for (size_t i = 0; i < notes.n && (!quiet || d.n); i++)
		printf("  %s\n", notes.v[i]);
	if (task)
		task_free(task);
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

struct check_cli {
	bool no_verify, quiet;
};

static const struct cli_option check_options[] = {
    CLI_OPT(0, "no-verify", NULL, NULL,
            "verification will be disabled: do not require tests/test.sh", cli_opt_true,
            offsetof(struct check_cli, no_verify)),
    CLI_OPT('q', "quiet", NULL, NULL, "print only tasks with problems or warnings", cli_opt_true,
            offsetof(struct check_cli, quiet)),
    CLI_END,
};

static int tasks_check(int argc, char **argv)
{
	_cleanup_strvs_ struct strv paths = STRV_INIT;
	struct check_totals totals = {0, 0};
	struct check_cli o = {0};
	int rc;

	rc = cli_parse("tasks check", check_options, argc, argv, &o, check_usage, check_footer,
	               &paths);
	if (rc >= 0)
		return rc;
	if (paths.n == 0)
		return cli_usage_error("tasks check",
		                       "missing PATH (a task or a directory of tasks)");
	for (size_t i = 0; i < paths.n; i++)
		check_path(paths.v[i], o.no_verify ? TASK_NO_VERIFY : 0, o.quiet, &totals);
	printf("%d task%s checked: %d valid, %d with errors\n", totals.ok + totals.failed,
	       totals.ok + totals.failed == 1 ? "" : "s", totals.ok, totals.failed);
	fflush(stdout);
	return totals.failed ? EXIT_FAIL : EXIT_OK;
}

int cmd_tasks(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"check", tasks_check, "validate tasks and print every problem found"},
	    {"init", cli_tasks_init, "write a new task's skeleton"},
	    {"start-env", cli_tasks_start_env, "start a task's environment to work in"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch("tasks", subs, argc, argv, tasks_usage);
}
