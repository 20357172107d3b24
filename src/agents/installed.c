/* Installed agents: a CLI installed in the environment by its row's install template
 * and run by its run template (the rows are data, in config/agent_table.c). The
 * helpers below also serve user-defined agents (agents/custom.c). */
#include "agents/agent.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Shared by installed and user-defined agents: write agent/install.sh, upload it to
 * /installed-agent/install.sh, run it as root; agent/setup/ keeps its output. */
int agent_install_script(struct agent_context *ctx, const char *script, struct err *err)
{
	static const char *const env[] = {"DEBIAN_FRONTEND=noninteractive", NULL};
	_cleanup_close_ int mem = memfd_create("install.sh", MFD_CLOEXEC);
	struct exec_result res;

	/* agent/install.sh is the record; what runs comes from memory, not from a
	 * directory the environment can write. */
	if (cdir_write(ctx->agent_dir, "install.sh", script, strlen(script), 0755, err) < 0)
		return -1;
	if (mem < 0 || write_all(mem, script, strlen(script)) < 0 || fchmod(mem, 0755) < 0)
		return err_sys(err, "install.sh in memory");
	if (env_upload(ctx->env, mem, "/installed-agent/install.sh", UPLOAD_REPLACE, err) < 0)
		return err_wrap(err, "upload install.sh");
	if (agent_exec_logged(
	        ctx, "setup",
	        "if command -v bash >/dev/null 2>&1; then bash "
	        "/installed-agent/install.sh; else sh /installed-agent/install.sh; fi",
	        env, &res, err) < 0)
		return -1;
	if (res.timed_out)
		return 0; /* the executor reports AgentSetupTimeoutError */
	if (res.exit_code != 0) {
		ctx->exception_type = "RuntimeError";
		return err_set(err, EIO,
		               "agent setup failed: install.sh exited with %d (see agent/setup/)",
		               res.exit_code);
	}
	return 0;
}

static int installed_setup(const struct agent_def *def, struct agent_context *ctx, struct err *err)
{
	_cleanup_free_ char *script = NULL;
	struct agent_context c = *ctx;

	if (!c.version)
		c.version = def->version;
	if (agent_render(def->install_template, &c, true, &script, err) < 0)
		return err_wrap(err, "agent %s install template", def->name);
	return agent_install_script(ctx, script, err);
}

/* Environment for an agent's commands: fixed values, then the host variables the tool
 * needs (when set), then the job file's agent env, which wins. */
int agent_command_env(const struct agent_def *def, struct agent_context *ctx, struct strv *env,
                      struct err *err)
{
	for (const char *const *e = def->set_env; e && *e; e++) {
		char *v;

		if (agent_render(*e, ctx, false, &v, err) < 0)
			return err_wrap(err, "agent %s env", def->name);
		strv_push_take(env, v);
	}
	for (const char *const *k = def->pass_env; k && *k; k++) {
		const char *v = getenv(*k);

		if (v)
			strv_pushf(env, "%s=%s", *k, v);
	}
	for (const char *const *e = ctx->extra_env; e && *e; e++)
		strv_push(env, *e);
	return 0;
}

/* Render a run template and run it as the next agent/command-N (installed and
 * user-defined agents alike). */
int agent_run_template(const struct agent_def *def, struct agent_context *ctx, const char *tmpl,
                       struct err *err)
{
	_cleanup_free_ char *cmd = NULL;
	_cleanup_strvs_ struct strv env = STRV_INIT;
	struct exec_result res;
	char dir[32];

	if (agent_render(tmpl, ctx, true, &cmd, err) < 0)
		return err_wrap(err, "agent %s run template", def->name);
	if (agent_command_env(def, ctx, &env, err) < 0)
		return -1;
	snprintf(dir, sizeof(dir), "command-%d", ctx->n_commands++);
	if (agent_exec_logged(ctx, dir, cmd, (const char *const *)strv_array(&env), &res, err) < 0)
		return -1;
	ctx->exit_code = res.exit_code;
	return 0;
}

static int installed_run(const struct agent_def *def, struct agent_context *ctx, struct err *err)
{
	const char *version = ctx->version;
	int rc;

	if (def->needs_model && !ctx->model_name) {
		ctx->exception_type = "ValueError";
		return err_set(err, EINVAL, "agent %s needs a model (-m provider/model)",
		               def->name);
	}
	if (!ctx->version)
		ctx->version = def->version;
	rc = agent_run_template(def, ctx, def->run_template, err);
	ctx->version = version;
	return rc;
}

const struct agent_ops agent_installed_ops = {
    .setup = installed_setup,
    .run = installed_run,
};
