/* Agents defined in the job file: an install script + run command template run in the
 * environment, or a host-side program that drives the environment through
 * `rollout env exec $ROLLOUT_ENV_NAME -- CMD`. */
#include "agents/agent.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/proc.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int user_setup(const struct agent_def *def, struct agent_context *ctx, struct err *err)
{
	_cleanup_free_ char *script = NULL;
	size_t len;

	(void)def;
	if (!ctx->custom || !ctx->custom->install_script)
		return 0;
	if (read_file(ctx->custom->install_script, 16 << 20, &script, &len, err) < 0)
		return err_wrap(err, "agent install script");
	return agent_install_script(ctx, script, err);
}

static int user_run(const struct agent_def *def, struct agent_context *ctx, struct err *err)
{
	if (!ctx->custom || !ctx->custom->run_template)
		return 0;
	return agent_run_template(def, ctx, ctx->custom->run_template, err);
}

static char *self_exe(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		return xstrdup("rollout");
	buf[n] = '\0';
	return xstrdup(buf);
}

static int host_run(const struct agent_def *def, struct agent_context *ctx, struct err *err)
{
	_cleanup_cdir_ struct cdir dir = CDIR_INIT;
	_cleanup_free_ char *exe = self_exe();
	_cleanup_free_ char *exe_dir = xstrdup(exe);
	_cleanup_strvs_ struct strv env = STRV_INIT;
	/* The agent runs from the trial directory: every path it gets is absolute. */
	_cleanup_free_ char *abs_trial = path_real(ctx->trial_dir);
	_cleanup_free_ char *abs_agent = path_real(ctx->agent_dir->path);
	_cleanup_free_ char *abs_instr = path_real(ctx->instruction_path);
	const char *argv[] = {"/bin/sh", "-c", ctx->custom->host_command, NULL};
	/* Its own group: at the deadline, on cancellation and once it is done, whatever
	 * it left running goes too. */
	struct proc p = {
	    .argv = argv,
	    .dir = ctx->trial_dir,
	    .no_stdin = true,
	    .new_pgroup = true,
	    .default_signals = true,
	    .cancellable = true,
	    .kill_group_at_exit = true,
	    .deadline = ctx->deadline > 0 ? ctx->deadline : 0,
	};
	double started;
	int rc;
	char code[32];

	(void)def;
	if (cdir_mkdirs(ctx->agent_dir, "host-agent", 0755, true, &dir, err) < 0)
		return -1;
	cdir_write(&dir, "command.txt", ctx->custom->host_command,
	           strlen(ctx->custom->host_command), 0644, NULL);
	p.out = cdir_create(&dir, "stdout.txt", 0644, err);
	p.err = p.out < 0 ? -1 : cdir_create(&dir, "stderr.txt", 0644, err);
	if (p.out < 0 || p.err < 0) {
		if (p.out >= 0)
			close(p.out);
		return -1;
	}
	*strrchr(exe_dir, '/') = '\0';
	strv_pushf(&env, "ROLLOUT_ENV_NAME=%s", ctx->env_name);
	strv_pushf(&env, "ROLLOUT_TRIAL_DIR=%s", abs_trial ? abs_trial : ctx->trial_dir);
	strv_pushf(&env, "ROLLOUT_AGENT_DIR=%s", abs_agent ? abs_agent : ctx->agent_dir->path);
	strv_pushf(&env, "ROLLOUT_INSTRUCTION_PATH=%s",
	           abs_instr ? abs_instr : ctx->instruction_path);
	strv_pushf(&env, "ROLLOUT_PROVIDER=%s", ctx->env->ops->name);
	strv_pushf(&env, "ROLLOUT_BIN=%s", exe);
	strv_pushf(&env, "PATH=%s:%s", exe_dir, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	if (ctx->model_name)
		strv_pushf(&env, "ROLLOUT_MODEL=%s", ctx->model_name);
	for (const char *const *e = ctx->extra_env; e && *e; e++)
		strv_push(&env, *e);
	p.env_add = (const char *const *)strv_array(&env);
	started = mono_now();
	rc = proc_start(&p, err);
	close(p.out);
	close(p.err);
	if (rc < 0 || proc_finish(&p, err) < 0)
		return err_wrap(err, "host agent");
	if (p.cancelled)
		return err_set(err, ECANCELED, "cancelled");
	ctx->command_sec += mono_now() - started;
	if (p.timed_out)
		ctx->timed_out = true;
	/* Killed at the deadline: 128 + SIGKILL even if it exited meanwhile. */
	ctx->exit_code = p.timed_out && !p.signalled ? 128 + SIGKILL : p.exit_code;
	snprintf(code, sizeof(code), "%d\n", ctx->exit_code);
	cdir_write(&dir, "return-code.txt", code, strlen(code), 0644, NULL);
	return 0;
}

const struct agent_ops agent_user_ops = {
    .setup = user_setup,
    .run = user_run,
};

const struct agent_ops agent_host_ops = {
    .run = host_run,
};
