/* The oracle agent runs the task's own solution (solution/solve.sh), and nop does
 * nothing: together they check that a task can be solved and is not solved for free. */
#include "agents/agent.h"
#include "config/task.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int oracle_run(const struct agent_def *def, struct agent_context *ctx, struct err *err)
{
	_cleanup_close_ int solution = -1;
	_cleanup_close_ int log = -1;
	_cleanup_strvs_ struct strv env = STRV_INIT;
	const char *argv[] = {"sh", "-c", "chmod +x /solution/solve.sh && /solution/solve.sh",
	                      NULL};
	struct exec_request req = EXEC_REQUEST_INIT;
	struct exec_result res = {0};
	struct stat st;

	(void)def;
	/* The task directory is an input: solution/ is not followed out of it. */
	solution = task_open_dir(ctx->task_dir, "solution", err);
	if (solution < 0 || fstatat(solution, "solve.sh", &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode)) {
		ctx->exception_type = "FileNotFoundError";
		err_clear(err);
		return err_set(err, ENOENT,
		               "%s/solution/solve.sh not found (or not a regular file)",
		               ctx->task_dir);
	}
	if ((log = cdir_create(ctx->agent_dir, "oracle.txt", 0644, err)) < 0)
		return -1;
	if (env_upload(ctx->env, solution, ENV_SOLUTION_DIR, 0, err) < 0)
		return err_wrap(err, "upload solution/ to %s", ENV_SOLUTION_DIR);
	strv_push(&env, "DEBIAN_FRONTEND=noninteractive");
	for (const char *const *e = ctx->solution_env; e && *e; e++)
		strv_push(&env, *e);
	for (const char *const *e = ctx->extra_env; e && *e; e++)
		strv_push(&env, *e);
	req.argv = argv;
	req.env = (const char *const *)strv_array(&env);
	req.stdout_fd = log;
	req.merge_stderr = true;
	req.output_cap = ctx->output_cap;
	if (ctx->deadline > 0) {
		req.timeout_sec = ctx->deadline - mono_now();
		if (req.timeout_sec <= 0) {
			ctx->timed_out = true;
			return 0;
		}
	}
	if (env_exec(ctx->env, &req, &res, err) < 0)
		return err_wrap(err, "run solve.sh");
	ctx->exit_code = res.exit_code;
	ctx->timed_out = res.timed_out;
	ctx->command_sec += res.duration_sec;
	ctx->oom_killed |= res.oom_killed;
	ctx->output_truncated |= res.stdout_truncated;
	if (res.exit_code != 0) {
		/* A failing solution is recorded, not an error: the verifier decides. */
		char text[32];

		snprintf(text, sizeof(text), "%d\n", res.exit_code);
		cdir_write(ctx->agent_dir, "exit-code.txt", text, strlen(text), 0644, NULL);
	}
	return 0;
}

static int nop_run(const struct agent_def *def, struct agent_context *ctx, struct err *err)
{
	(void)def;
	(void)ctx;
	(void)err;
	return 0;
}

const struct agent_ops agent_oracle_ops = {
    .run = oracle_run,
};

const struct agent_ops agent_nop_ops = {
    .run = nop_run,
};
