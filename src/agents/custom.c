/* Agents defined in the job file: an install script + run command template run in the
 * environment, or a host-side program that drives the environment through
 * `rollout env exec $ROLLOUT_ENV_NAME -- CMD`. */
#include "agents/agent.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

/* Kill the host agent's whole process group and reap it. */
static void kill_group(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
}

static int host_run(const struct agent_def *def, struct agent_context *ctx, struct err *err)
{
	_cleanup_cdir_ struct cdir dir = CDIR_INIT;
	_cleanup_free_ char *exe = self_exe();
	_cleanup_free_ char *exe_dir = xstrdup(exe);
	_cleanup_free_ char *path_env = NULL;
	/* The agent runs from the trial directory: every path it gets is absolute. */
	_cleanup_free_ char *abs_trial = path_real(ctx->trial_dir);
	_cleanup_free_ char *abs_agent = path_real(ctx->agent_dir->path);
	_cleanup_free_ char *abs_instr = path_real(ctx->instruction_path);
	bool killed = false;
	double started;
	int out_fd, err_fd, status = 0;
	pid_t pid;
	char rc[32];

	(void)def;
	if (cdir_mkdirs(ctx->agent_dir, "host-agent", 0755, true, &dir, err) < 0)
		return -1;
	cdir_write(&dir, "command.txt", ctx->custom->host_command,
	           strlen(ctx->custom->host_command), 0644, NULL);
	out_fd = cdir_create(&dir, "stdout.txt", 0644, err);
	err_fd = out_fd < 0 ? -1 : cdir_create(&dir, "stderr.txt", 0644, err);
	if (out_fd < 0 || err_fd < 0) {
		if (out_fd >= 0)
			close(out_fd);
		return -1;
	}
	*strrchr(exe_dir, '/') = '\0';
	path_env = xasprintf("%s:%s", exe_dir, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	pid = fork();
	if (pid < 0) {
		close(out_fd);
		close(err_fd);
		return err_sys(err, "fork");
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		dup2(null, 0);
		dup2(out_fd, 1);
		dup2(err_fd, 2);
		setenv("ROLLOUT_ENV_NAME", ctx->env_name, 1);
		setenv("ROLLOUT_TRIAL_DIR", abs_trial ? abs_trial : ctx->trial_dir, 1);
		setenv("ROLLOUT_AGENT_DIR", abs_agent ? abs_agent : ctx->agent_dir->path, 1);
		setenv("ROLLOUT_INSTRUCTION_PATH", abs_instr ? abs_instr : ctx->instruction_path,
		       1);
		setenv("ROLLOUT_PROVIDER", ctx->provider->name, 1);
		setenv("ROLLOUT_BIN", exe, 1);
		setenv("PATH", path_env, 1);
		if (ctx->model_name)
			setenv("ROLLOUT_MODEL", ctx->model_name, 1);
		for (const char *const *e = ctx->extra_env; e && *e; e++)
			putenv((char *)*e);
		if (chdir(ctx->trial_dir) < 0)
			_exit(126);
		execl("/bin/sh", "sh", "-c", ctx->custom->host_command, (char *)NULL);
		_exit(127);
	}
	close(out_fd);
	close(err_fd);
	setpgid(pid, pid);
	started = mono_now();
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			kill_group(pid);
			return err_sys(err, "wait for host agent");
		}
		if (cancel_requested() || (ctx->deadline > 0 && mono_now() >= ctx->deadline)) {
			kill_group(pid);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			if (cancel_requested())
				return err_set(err, ECANCELED, "cancelled");
			ctx->timed_out = true;
			killed = true;
			break;
		}
		sleep_sec(0.01);
	}
	ctx->command_sec += mono_now() - started;
	/* Whatever the agent left running in its group goes too. */
	kill(-pid, SIGKILL);
	if (killed || !WIFEXITED(status))
		ctx->exit_code = 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL);
	else
		ctx->exit_code = WEXITSTATUS(status);
	snprintf(rc, sizeof(rc), "%d\n", ctx->exit_code);
	cdir_write(&dir, "return-code.txt", rc, strlen(rc), 0644, NULL);
	return 0;
}

const struct agent_ops agent_user_ops = {
    .setup = user_setup,
    .run = user_run,
};

const struct agent_ops agent_host_ops = {
    .run = host_run,
};
