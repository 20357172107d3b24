/* The ops of each agent kind, command templates, and logged command execution. */
#include "agents/agent.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

extern const struct agent_ops agent_oracle_ops, agent_nop_ops, agent_installed_ops, agent_user_ops,
    agent_host_ops;

/* One row per kind: adding a kind adds its enum value (config/agent_table.h), its file
 * in src/agents/ and its row here. */
static const struct agent_ops *const kind_ops[AGENT_KIND_COUNT] = {
    [AGENT_KIND_ORACLE] = &agent_oracle_ops,       [AGENT_KIND_NOP] = &agent_nop_ops,
    [AGENT_KIND_INSTALLED] = &agent_installed_ops, [AGENT_KIND_USER] = &agent_user_ops,
    [AGENT_KIND_HOST] = &agent_host_ops,
};

const struct agent_ops *agent_kind_ops(enum agent_kind kind)
{
	return kind < AGENT_KIND_COUNT ? kind_ops[kind] : NULL;
}

bool agent_has_setup(const struct agent_def *def)
{
	return agent_kind_ops(def->kind)->setup != NULL;
}

int agent_setup(const struct agent_def *def, struct agent_context *ctx, struct err *err)
{
	const struct agent_ops *ops = agent_kind_ops(def->kind);

	return ops->setup ? ops->setup(def, ctx, err) : 0;
}

int agent_run(const struct agent_def *def, struct agent_context *ctx, struct err *err)
{
	return agent_kind_ops(def->kind)->run(def, ctx, err);
}

static const char *model_without_provider(const char *model)
{
	const char *slash = model ? strchr(model, '/') : NULL;

	return slash ? slash + 1 : model;
}

int agent_render(const char *tmpl, const struct agent_context *ctx, bool quote, char **out,
                 struct err *err)
{
	struct strbuf sb = STRBUF_INIT;
	const char *p = tmpl;

	while (*p) {
		const char *open = strstr(p, "{{");
		const char *close;
		_cleanup_free_ char *key = NULL;
		const char *val = NULL;
		_cleanup_free_ char *provider = NULL;
		size_t klen;

		if (!open) {
			sb_adds(&sb, p);
			break;
		}
		sb_add(&sb, p, (size_t)(open - p));
		close = strstr(open + 2, "}}");
		if (!close) {
			sb_release(&sb);
			return err_set(err, EINVAL, "template: '{{' without '}}'");
		}
		/* trim spaces inside the braces */
		open += 2;
		while (*open == ' ')
			open++;
		klen = (size_t)(close - open);
		while (klen && open[klen - 1] == ' ')
			klen--;
		key = xstrndup(open, klen);
		if (strcmp(key, "instruction") == 0)
			val = ctx->instruction;
		else if (strcmp(key, "model") == 0)
			val = model_without_provider(ctx->model_name);
		else if (strcmp(key, "model_full") == 0)
			val = ctx->model_name;
		else if (strcmp(key, "provider") == 0) {
			const char *slash = ctx->model_name ? strchr(ctx->model_name, '/') : NULL;

			if (slash)
				provider =
				    xstrndup(ctx->model_name, (size_t)(slash - ctx->model_name));
			val = provider;
		} else if (strcmp(key, "version") == 0)
			val = ctx->version;
		else if (strcmp(key, "env_name") == 0)
			val = ctx->env_name;
		else {
			sb_release(&sb);
			return err_set(err, EINVAL, "template: unknown placeholder '{{%s}}'", key);
		}
		if (quote) {
			_cleanup_free_ char *q = shell_quote(val ? val : "");

			sb_adds(&sb, q);
		} else {
			sb_adds(&sb, val ? val : "");
		}
		p = close + 2;
	}
	*out = sb_detach(&sb);
	return 0;
}

static void write_text(const struct cdir *dir, const char *name, const char *text)
{
	struct err err = {0};

	if (cdir_write(dir, name, text, strlen(text), 0644, &err) < 0)
		log_warn("%s", err.msg);
}

int agent_exec_logged(struct agent_context *ctx, const char *dir_name, const char *command,
                      const char *const *env, struct exec_result *res, struct err *err)
{
	_cleanup_cdir_ struct cdir dir = CDIR_INIT;
	_cleanup_close_ int out = -1;
	_cleanup_close_ int errf = -1;
	const char *argv[] = {"sh", "-c", command, NULL};
	struct exec_request req = EXEC_REQUEST_INIT;
	char rc[32];

	memset(res, 0, sizeof(*res));
	/* The agent can write /logs/agent: whatever it planted at these names is
	 * replaced, never followed. */
	if (cdir_mkdirs(ctx->agent_dir, dir_name, 0755, true, &dir, err) < 0)
		return -1;
	write_text(&dir, "command.txt", command);
	if ((out = cdir_create(&dir, "stdout.txt", 0644, err)) < 0 ||
	    (errf = cdir_create(&dir, "stderr.txt", 0644, err)) < 0)
		return -1;
	req.argv = argv;
	req.env = env;
	req.stdout_fd = out;
	req.stderr_fd = errf;
	req.output_cap = ctx->output_cap;
	if (ctx->deadline > 0) {
		double left = ctx->deadline - mono_now();

		if (left <= 0) {
			ctx->timed_out = true;
			res->timed_out = true;
			res->exit_code = 137;
			return 0;
		}
		req.timeout_sec = left;
	}
	if (env_exec(ctx->env, &req, res, err) < 0)
		return err_wrap(err, "%s", dir_name);
	ctx->command_sec += res->duration_sec;
	if (res->timed_out)
		ctx->timed_out = true;
	ctx->oom_killed |= res->oom_killed;
	ctx->output_truncated |= res->stdout_truncated || res->stderr_truncated;
	snprintf(rc, sizeof(rc), "%d\n", res->exit_code);
	write_text(&dir, "return-code.txt", rc);
	return 0;
}
