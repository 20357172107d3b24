/* rollout tasks start-env -p TASK: Harbor's debug workflow. The task's environment is
 * built (when needed) and started as a trial's would be, optionally with solution/
 * and tests/ uploaded, and kept: `-i` opens a shell in it (`rollout env shell`) and
 * removes it when the shell ends; otherwise its name and how to reach and remove it
 * are printed. */
#include "cli/cli.h"
#include "config/job_config.h"
#include "config/task.h"
#include "core/pids.h"
#include "core/result.h"
#include "providers/provider.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/provider_table.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char start_env_usage[] =
    "usage: rollout tasks start-env -p TASK [-e PROVIDER] [-a] [-i]\n"
    "\n"
    "Start TASK's environment as a trial would (its image built when needed, its\n"
    "limits and network policy, /logs/{agent,verifier,artifacts} in DIR/NAME/) and\n"
    "keep it: with -i a shell opens in it and the environment is removed when the\n"
    "shell ends; otherwise its name is printed with the commands that reach and\n"
    "remove it (`rollout env exec|shell|rm`).\n"
    "\n";

struct start_env_cli {
	char *path, *name, *dir;
	int provider;
	bool all, interactive;
};

static void cleanup_start_env_clip(struct start_env_cli *o)
{
	free(o->path);
	free(o->name);
	free(o->dir);
}

#define SE(field) offsetof(struct start_env_cli, field)

static const struct cli_option start_env_options[] = {
    CLI_OPT('p', "path", NULL, "TASK", "the task directory (required)", cli_opt_str, SE(path)),
    CLI_OPT('e', "env", "provider", ROLLOUT_PROVIDER_NAMES_BAR,
            "environment provider (default sandbox)", cli_opt_choice, SE(provider),
            .choices = job_env_type_names),
    CLI_OPT('a', "all", NULL, NULL, "upload solution/ to /solution and tests/ to /tests",
            cli_opt_true, SE(all)),
    CLI_OPT('i', "interactive", NULL, NULL, "open a shell in it; remove it when the shell ends",
            cli_opt_true, SE(interactive)),
    CLI_OPT(0, "name", NULL, "NAME", "the environment's name (default <task>__<7 chars>)",
            cli_opt_str, SE(name)),
    CLI_OPT('o', "trials-dir", NULL, "DIR", "where its /logs directories go (default trials)",
            cli_opt_str, SE(dir)),
    CLI_END,
};

/* DIR/NAME/{agent,verifier,artifacts}, writable by any user of the image as a
 * trial's are. */
static int make_logs(const char *base, char *paths[3], struct err *err)
{
	static const char *const names[] = {"agent", "verifier", "artifacts"};

	if (path_exists(base))
		return err_set(err, EEXIST, "%s already exists", base);
	for (int i = 0; i < 3; i++) {
		paths[i] = path_join(base, names[i]);
		if (mkdir_p(paths[i], 0755, err) < 0)
			return -1;
		if (chmod(paths[i], 0777) < 0)
			return err_sys(err, "chmod %s", paths[i]);
	}
	return 0;
}

static int upload_dir(struct environment *env, const struct task *t, const char *entry,
                      const char *to, struct err *err)
{
	_cleanup_close_ int fd = task_open_dir(t->dir, entry, err);

	if (fd < 0) {
		if (err->code != ENOENT)
			return -1;
		fprintf(stderr, "rollout: note: %s has no %s/\n", t->dir, entry);
		err_clear(err);
		return 0;
	}
	if (env_upload(env, fd, to, UPLOAD_REPLACE, err) < 0)
		return err_wrap(err, "upload %s/ to %s", entry, to);
	return 0;
}

static void env_vars(const struct env_list *l, struct strv *out)
{
	for (size_t i = 0; i < l->n; i++)
		strv_pushf(out, "%s=%s", l->v[i].name, l->v[i].value);
}

/* Start the environment and keep it (stop without destroying). */
static int start_kept(const struct provider_ops *ops, const struct task *t, const char *name,
                      const char *base, bool all, struct err *err)
{
	const struct task_config *tc = &t->config;
	_cleanup_strvs_ struct strv vars = STRV_INIT;
	_cleanup_free_ char *log = path_join(base, "build.log");
	char *logs[3] = {NULL, NULL, NULL};
	struct env_config cfg = {0};
	struct environment *env = NULL;
	int rc = -1;

	if (make_logs(base, logs, err) < 0)
		goto out;
	env_vars(&tc->environment.env, &vars);
	cfg.env_name = name;
	cfg.job_name = "start-env";
	cfg.task_name = t->name;
	cfg.environment_dir = t->environment_dir;
	cfg.docker_image = tc->environment.docker_image;
	cfg.build_timeout_sec = tc->environment.build_timeout_sec;
	cfg.build_log_path = log;
	cfg.cpus = tc->environment.cpus;
	cfg.memory_bytes = (long long)tc->environment.memory_mb << 20;
	cfg.storage_bytes = (long long)tc->environment.storage_mb << 20;
	cfg.pids_limit = PIDS_LIMIT_DEFAULT;
	cfg.allow_internet = tc->environment.allow_internet;
	cfg.host_agent_dir = logs[0];
	cfg.host_verifier_dir = logs[1];
	cfg.host_artifacts_dir = logs[2];
	cfg.env = (const char *const *)strv_array(&vars);
	cfg.workdir = tc->environment.workdir;
	fprintf(stderr, "rollout: starting the environment of %s (%s; build output in %s)\n",
	        t->name, ops->name, log);
	if ((ops->prepare && ops->prepare(err) < 0) || env_start(ops, &cfg, &env, err) < 0) {
		err_wrap(err, "task %s", t->name);
		goto out;
	}
	if (all && (upload_dir(env, t, "solution", ENV_SOLUTION_DIR, err) < 0 ||
	            upload_dir(env, t, "tests", ENV_TESTS_DIR, err) < 0)) {
		struct err ignored = {0};

		env_stop(env, true, &ignored);
		goto out;
	}
	rc = env_stop(env, false, err);
out:
	for (int i = 0; i < 3; i++)
		free(logs[i]);
	return rc;
}

/* `rollout env shell -e PROVIDER NAME`, then the environment goes. */
static int shell_then_remove(const struct provider_ops *ops, const char *name)
{
	char *argv[] = {"env", "shell", "-e", (char *)ops->name, (char *)name, NULL};
	struct environment *env = NULL;
	struct err err = {0};
	int rc = cmd_env(5, argv);

	if (env_open(ops, name, &env, &err) < 0 || env_stop(env, true, &err) < 0)
		fprintf(stderr, "rollout: warning: removing %s: %s\n", name, err.msg);
	else
		fprintf(stderr, "rollout: removed environment %s\n", name);
	return rc;
}

int cli_tasks_start_env(int argc, char **argv)
{
	__attribute__((cleanup(cleanup_start_env_clip))) struct start_env_cli o = {0};
	const struct provider_ops *ops;
	_cleanup_free_ char *name = NULL, *base = NULL;
	_cleanup_task_ struct task *t = NULL;
	struct err err = {0};
	int rc;

	rc = cli_parse("tasks start-env", start_env_options, argc, argv, &o, start_env_usage, NULL,
	               NULL);
	if (rc < 0 && !o.path)
		rc = cli_usage_error("tasks start-env", "missing -p TASK");
	if (rc >= 0)
		return rc;
	ops = provider_find(job_env_type_names[o.provider]);
	if (task_load(o.path, o.all ? 0 : TASK_NO_VERIFY, &t, &err) < 0)
		return cli_fail("%s", err.msg);
	name = o.name ? xstrdup(o.name) : trial_name_new(t->name);
	base = path_join(o.dir ? o.dir : "trials", name);
	if (start_kept(ops, t, name, base, o.all, &err) < 0)
		return cli_fail("%s", err.msg);
	if (o.interactive)
		return shell_then_remove(ops, name);
	printf("%s\n", name);
	fprintf(stderr,
	        "rollout: environment %s of task %s is running (%s%s); /logs is %s/\n"
	        "  a shell:    rollout env shell -e %s %s\n"
	        "  a command:  rollout env exec -e %s %s -- CMD [ARG...]\n"
	        "  remove it:  rollout env rm -e %s %s\n",
	        name, t->name, ops->name, o.all ? ", with /solution and /tests" : "", base,
	        ops->name, name, ops->name, name, ops->name, name);
	return EXIT_OK;
}
