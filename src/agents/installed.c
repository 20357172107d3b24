/* Installed agents as data: an install script template and a run command template per
 * tool, following each tool's own install and headless-run documentation. Their
 * installs need the internet; see docs/AGENTS.md for what was and was not run here. */
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

/* Shared install preludes: curl, then Node.js (nvm) for the npm-distributed CLIs, or
 * uv for the Python ones. */
#define PRELUDE_CURL                                                                               \
	"set -e\n"                                                                                 \
	"if command -v apt-get >/dev/null 2>&1; then\n"                                            \
	"  apt-get update && apt-get install -y curl ca-certificates git\n"                        \
	"elif command -v apk >/dev/null 2>&1; then\n"                                              \
	"  apk add --no-cache curl ca-certificates git bash\n"                                     \
	"fi\n"
#define PRELUDE_NODE                                                                               \
	PRELUDE_CURL                                                                               \
	"export NVM_DIR=\"$HOME/.nvm\"\n"                                                          \
	"curl -fsSL https://raw.githubusercontent.com/nvm-sh/nvm/v0.40.3/install.sh | bash\n"      \
	". \"$NVM_DIR/nvm.sh\"\n"                                                                  \
	"nvm install 22\n"                                                                         \
	"nvm alias default 22\n"
#define PRELUDE_UV                                                                                 \
	PRELUDE_CURL                                                                               \
	"curl -LsSf https://astral.sh/uv/install.sh | sh\n"                                        \
	"export PATH=\"$HOME/.local/bin:$PATH\"\n"
/* Run commands start from a login-like PATH that sees what the install added. */
#define RUN_PATH                                                                                   \
	"export NVM_DIR=\"$HOME/.nvm\"; [ -s \"$NVM_DIR/nvm.sh\" ] && . \"$NVM_DIR/nvm.sh\"; "     \
	"export PATH=\"$HOME/.local/bin:$PATH\"; "

static const char *const anthropic_env[] = {"ANTHROPIC_API_KEY",       "ANTHROPIC_AUTH_TOKEN",
                                            "ANTHROPIC_BASE_URL",      "MAX_THINKING_TOKENS",
                                            "CLAUDE_CODE_USE_BEDROCK", "AWS_REGION",
                                            "AWS_ACCESS_KEY_ID",       "AWS_SECRET_ACCESS_KEY",
                                            "AWS_SESSION_TOKEN",       NULL};
static const char *const openai_env[] = {"OPENAI_API_KEY", "OPENAI_BASE_URL", NULL};
static const char *const gemini_env[] = {"GEMINI_API_KEY",
                                         "GOOGLE_API_KEY",
                                         "GOOGLE_CLOUD_PROJECT",
                                         "GOOGLE_CLOUD_LOCATION",
                                         "GOOGLE_GENAI_USE_VERTEXAI",
                                         NULL};
static const char *const any_llm_env[] = {"OPENAI_API_KEY",
                                          "OPENAI_BASE_URL",
                                          "ANTHROPIC_API_KEY",
                                          "GEMINI_API_KEY",
                                          "GOOGLE_API_KEY",
                                          "OPENROUTER_API_KEY",
                                          "DEEPSEEK_API_KEY",
                                          "GROQ_API_KEY",
                                          "MISTRAL_API_KEY",
                                          "XAI_API_KEY",
                                          NULL};

static const char *const claude_set[] = {"CLAUDE_CONFIG_DIR=/logs/agent/sessions", "IS_SANDBOX=1",
                                         "ANTHROPIC_MODEL={{model}}", NULL};
static const char *const codex_set[] = {"CODEX_HOME=/logs/agent", NULL};
static const char *const goose_set[] = {"GOOSE_PROVIDER={{provider}}", "GOOSE_MODEL={{model}}",
                                        "GOOSE_DISABLE_KEYRING=1", NULL};

int installed_setup(const struct agent_def *def, struct agent_context *ctx, struct err *err);
int installed_run(const struct agent_def *def, struct agent_context *ctx, struct err *err);

static const struct agent_def claude_code = {
    .name = "claude-code",
    .version = "stable",
    .install_template = PRELUDE_CURL "curl -fsSL https://claude.ai/install.sh | bash -s -- "
                                     "{{version}}\n",
    .run_template = RUN_PATH "claude --verbose --output-format=stream-json "
                             "--permission-mode=bypassPermissions --print -- {{instruction}} "
                             "2>&1 | tee /logs/agent/claude-code.txt",
    .pass_env = anthropic_env,
    .set_env = claude_set,
    .setup = installed_setup,
    .run = installed_run,
};

static const struct agent_def codex = {
    .name = "codex",
    .version = "latest",
    .needs_model = true,
    .install_template = PRELUDE_NODE "npm install -g @openai/codex@{{version}}\n",
    .run_template = RUN_PATH "codex exec --dangerously-bypass-approvals-and-sandbox "
                             "--skip-git-repo-check --json --model {{model}} -- {{instruction}} "
                             "2>&1 | tee /logs/agent/codex.txt",
    .pass_env = openai_env,
    .set_env = codex_set,
    .setup = installed_setup,
    .run = installed_run,
};

static const struct agent_def aider = {
    .name = "aider",
    .version = "latest",
    .needs_model = true,
    .install_template = PRELUDE_UV "uv tool install --python 3.12 aider-chat\n",
    .run_template = RUN_PATH "aider --yes-always --no-auto-commits --no-show-model-warnings "
                             "--model {{model_full}} --message {{instruction}} "
                             "2>&1 | tee /logs/agent/aider.txt",
    .pass_env = any_llm_env,
    .setup = installed_setup,
    .run = installed_run,
};

static const struct agent_def gemini_cli = {
    .name = "gemini-cli",
    .version = "latest",
    .install_template = PRELUDE_NODE "npm install -g @google/gemini-cli@{{version}}\n",
    .run_template = RUN_PATH "gemini --yolo --model {{model}} --prompt {{instruction}} "
                             "2>&1 | tee /logs/agent/gemini-cli.txt",
    .pass_env = gemini_env,
    .setup = installed_setup,
    .run = installed_run,
};

static const struct agent_def goose = {
    .name = "goose",
    .version = "stable",
    .needs_model = true,
    .install_template = PRELUDE_CURL
    "curl -fsSL https://github.com/block/goose/releases/download/{{version}}/download_cli.sh"
    " | CONFIGURE=false bash\n",
    .run_template = RUN_PATH "goose run --no-session --text {{instruction}} "
                             "2>&1 | tee /logs/agent/goose.txt",
    .pass_env = any_llm_env,
    .set_env = goose_set,
    .setup = installed_setup,
    .run = installed_run,
};

static const struct agent_def opencode = {
    .name = "opencode",
    .version = "latest",
    .needs_model = true,
    .install_template = PRELUDE_NODE "npm install -g opencode-ai@{{version}}\n",
    .run_template = RUN_PATH "opencode run --model {{model_full}} {{instruction}} "
                             "2>&1 | tee /logs/agent/opencode.txt",
    .pass_env = any_llm_env,
    .setup = installed_setup,
    .run = installed_run,
};

static const struct agent_def mini_swe_agent = {
    .name = "mini-swe-agent",
    .version = "latest",
    .needs_model = true,
    .install_template = PRELUDE_UV "uv tool install --python 3.12 mini-swe-agent\n",
    .run_template = RUN_PATH "mini --model {{model_full}} --task {{instruction}} --yolo "
                             "--exit-immediately 2>&1 | tee /logs/agent/mini-swe-agent.txt",
    .pass_env = any_llm_env,
    .setup = installed_setup,
    .run = installed_run,
};

const struct agent_def *const installed_agents[] = {
    &claude_code, &codex, &aider, &gemini_cli, &goose, &opencode, &mini_swe_agent, NULL,
};

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

int installed_setup(const struct agent_def *def, struct agent_context *ctx, struct err *err)
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

int installed_run(const struct agent_def *def, struct agent_context *ctx, struct err *err)
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
