/* rollout tasks init NAME: a new task in Harbor's layout that `rollout tasks check`
 * accepts and the oracle solves (task.toml, instruction.md, environment/Dockerfile,
 * solution/solve.sh, tests/test.sh). */
#include "cli/cli.h"
#include "config/job_config.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Harbor's template image; a task may use any image its provider can get. */
#define DEFAULT_BASE "ubuntu:24.04"

static const char init_usage[] =
    "usage: rollout tasks init NAME [-p DIR] [--base IMAGE] [--no-solution]\n"
    "\n"
    "Write a new task DIR/NAME in Harbor's layout: task.toml, instruction.md,\n"
    "environment/Dockerfile (FROM IMAGE, WORKDIR /app), solution/solve.sh (what the\n"
    "oracle agent runs) and tests/test.sh (writes the reward). It passes `rollout tasks\n"
    "check` and the oracle solves it; edit each file to make it your task.\n"
    "\n";

struct init_cli {
	char *dir, *base;
	bool no_solution;
};

static void cleanup_init_clip(struct init_cli *o)
{
	free(o->dir);
	free(o->base);
}

#define INIT(field) offsetof(struct init_cli, field)

static const struct cli_option init_options[] = {
    CLI_OPT('p', "path", NULL, "DIR", "where the task directory goes (default .)", cli_opt_str,
            INIT(dir)),
    CLI_OPT(0, "base", NULL, "IMAGE",
            "the Dockerfile's FROM (default " DEFAULT_BASE "); the scripts\n"
            "need only a POSIX sh, so a busybox image does too",
            cli_opt_str, INIT(base)),
    CLI_OPT(0, "no-solution", NULL, NULL, "no solution/ (the oracle cannot run the task)",
            cli_opt_true, INIT(no_solution)),
    CLI_END,
};

static const char task_toml[] =
    "version = \"1.0\"\n"
    "\n"
    "[metadata]\n"
    "author_name = \"\"\n"
    "author_email = \"\"\n"
    "difficulty = \"easy\"\n"
    "category = \"programming\"\n"
    "tags = []\n"
    "\n"
    "[verifier]\n"
    "timeout_sec = 120.0\n"
    "\n"
    "[agent]\n"
    "timeout_sec = 600.0\n"
    "\n"
    "[environment]\n"
    "build_timeout_sec = 600.0\n"
    "cpus = 1\n"
    "memory_mb = 2048\n"
    "storage_mb = 10240\n"
    "# false: the agent and the tests run without a network (the image build has one)\n"
    "allow_internet = true\n";

static const char instruction_md[] =
    "Create the file `/app/hello.txt` containing the single line `Hello, world!`.\n";

static const char dockerfile_fmt[] =
    "# The task's environment. Change FROM to the image the task needs (Harbor's\n"
    "# template uses " DEFAULT_BASE "); `rollout tasks check` says whether it is at hand\n"
    "# for the sandbox (rollout's image store) and for Docker. The scripts in\n"
    "# solution/ and tests/ run with /bin/sh from WORKDIR.\n"
    "FROM %s\n"
    "WORKDIR /app\n";

static const char solve_sh[] = "#!/bin/sh\n"
                               "# The reference solution: the oracle agent runs it in the\n"
                               "# environment (from /app) to show the task can be solved.\n"
                               "set -e\n"
                               "echo 'Hello, world!' > /app/hello.txt\n";

static const char test_sh[] =
    "#!/bin/sh\n"
    "# Runs after the agent, from /app, with tests/ at /tests. The\n"
    "# reward (a number) goes to /logs/verifier/reward.txt; the exit\n"
    "# status does not count.\n"
    "if [ \"$(cat /app/hello.txt 2>/dev/null)\" = 'Hello, world!' ]; then\n"
    "\techo 1 > /logs/verifier/reward.txt\n"
    "else\n"
    "\techo 0 > /logs/verifier/reward.txt\n"
    "fi\n";

static int put(const char *task, const char *rel, const char *text, mode_t mode, struct err *err)
{
	_cleanup_free_ char *path = path_join(task, rel);
	_cleanup_free_ char *dir = xstrdup(path);

	*strrchr(dir, '/') = '\0';
	if (mkdir_p(dir, 0755, err) < 0 || write_file(path, text, strlen(text), mode, err) < 0)
		return -1;
	/* write_file honours the umask; scripts must stay executable. */
	if (chmod(path, mode) < 0)
		return err_sys(err, "chmod %s", path);
	return 0;
}

int cli_tasks_init(int argc, char **argv)
{
	_cleanup_strvs_ struct strv names = STRV_INIT;
	_cleanup_free_ char *task = NULL, *dockerfile = NULL;
	__attribute__((cleanup(cleanup_init_clip))) struct init_cli o = {0};
	struct err err = {0};
	const char *problem;
	int rc;

	rc = cli_parse("tasks init", init_options, argc, argv, &o, init_usage, NULL, &names);
	if (rc >= 0)
		return rc;
	if (names.n != 1)
		return cli_usage_error("tasks init",
		                       names.n ? "one NAME at a time" : "missing NAME");
	/* The name is a directory name, as a job's is. */
	problem = job_name_problem(names.v[0]);
	if (problem)
		return cli_usage_error("tasks init", "the task name %s", problem);
	task = path_join(o.dir ? o.dir : ".", names.v[0]);
	if (path_exists(task))
		return cli_fail("%s already exists", task);
	dockerfile = xasprintf(dockerfile_fmt, o.base ? o.base : DEFAULT_BASE);
	if (mkdir_p(task, 0755, &err) < 0 || put(task, "task.toml", task_toml, 0644, &err) < 0 ||
	    put(task, "instruction.md", instruction_md, 0644, &err) < 0 ||
	    put(task, "environment/Dockerfile", dockerfile, 0644, &err) < 0 ||
	    (!o.no_solution && put(task, "solution/solve.sh", solve_sh, 0755, &err) < 0) ||
	    put(task, "tests/test.sh", test_sh, 0755, &err) < 0)
		return cli_fail("%s", err.msg);
	printf("created task %s\n"
	       "  check it:     rollout tasks check %s\n"
	       "  run oracle:   rollout trial run -p %s -a oracle\n"
	       "  work in it:   rollout tasks start-env -p %s -a -i\n",
	       task, task, task, task);
	return EXIT_OK;
}
