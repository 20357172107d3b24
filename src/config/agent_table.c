/* The agent table (see agent_table.h): oracle and nop, then the installed agents as
 * data, an install script template and a run command template per tool, following each
 * tool's own install and headless-run documentation. Their installs need the internet;
 * see docs/AGENTS.md for what was and was not run here. Adding an installed agent is
 * one row here. */
#include "config/agent_table.h"
#include "rollout/strbuf.h"

#include <stddef.h>
#include <string.h>

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

const struct agent_def agent_table[] = {
    {.name = "oracle", .kind = AGENT_KIND_ORACLE, .version = "1.0.0"},
    {.name = "nop", .kind = AGENT_KIND_NOP, .version = "1.0.0"},
    {
        .name = "claude-code",
        .kind = AGENT_KIND_INSTALLED,
        .version = "stable",
        .install_template = PRELUDE_CURL "curl -fsSL https://claude.ai/install.sh | bash -s -- "
                                         "{{version}}\n",
        .run_template = RUN_PATH "claude --verbose --output-format=stream-json "
                                 "--permission-mode=bypassPermissions --print -- {{instruction}} "
                                 "2>&1 | tee /logs/agent/claude-code.txt",
        .pass_env = anthropic_env,
        .set_env = claude_set,
    },
    {
        .name = "codex",
        .kind = AGENT_KIND_INSTALLED,
        .version = "latest",
        .needs_model = true,
        .install_template = PRELUDE_NODE "npm install -g @openai/codex@{{version}}\n",
        .run_template =
            RUN_PATH "codex exec --dangerously-bypass-approvals-and-sandbox "
                     "--skip-git-repo-check --json --model {{model}} -- {{instruction}} "
                     "2>&1 | tee /logs/agent/codex.txt",
        .pass_env = openai_env,
        .set_env = codex_set,
    },
    {
        .name = "aider",
        .kind = AGENT_KIND_INSTALLED,
        .version = "latest",
        .needs_model = true,
        .install_template = PRELUDE_UV "uv tool install --python 3.12 aider-chat\n",
        .run_template = RUN_PATH "aider --yes-always --no-auto-commits --no-show-model-warnings "
                                 "--model {{model_full}} --message {{instruction}} "
                                 "2>&1 | tee /logs/agent/aider.txt",
        .pass_env = any_llm_env,
    },
    {
        .name = "gemini-cli",
        .kind = AGENT_KIND_INSTALLED,
        .version = "latest",
        .install_template = PRELUDE_NODE "npm install -g @google/gemini-cli@{{version}}\n",
        .run_template = RUN_PATH "gemini --yolo --model {{model}} --prompt {{instruction}} "
                                 "2>&1 | tee /logs/agent/gemini-cli.txt",
        .pass_env = gemini_env,
    },
    {
        .name = "goose",
        .kind = AGENT_KIND_INSTALLED,
        .version = "stable",
        .needs_model = true,
        .install_template = PRELUDE_CURL
        "curl -fsSL https://github.com/block/goose/releases/download/{{version}}/download_cli.sh"
        " | CONFIGURE=false bash\n",
        .run_template = RUN_PATH "goose run --no-session --text {{instruction}} "
                                 "2>&1 | tee /logs/agent/goose.txt",
        .pass_env = any_llm_env,
        .set_env = goose_set,
    },
    {
        .name = "opencode",
        .kind = AGENT_KIND_INSTALLED,
        .version = "latest",
        .needs_model = true,
        .install_template = PRELUDE_NODE "npm install -g opencode-ai@{{version}}\n",
        .run_template = RUN_PATH "opencode run --model {{model_full}} {{instruction}} "
                                 "2>&1 | tee /logs/agent/opencode.txt",
        .pass_env = any_llm_env,
    },
    {
        .name = "mini-swe-agent",
        .kind = AGENT_KIND_INSTALLED,
        .version = "latest",
        .needs_model = true,
        .install_template = PRELUDE_UV "uv tool install --python 3.12 mini-swe-agent\n",
        .run_template = RUN_PATH "mini --model {{model_full}} --task {{instruction}} --yolo "
                                 "--exit-immediately 2>&1 | tee /logs/agent/mini-swe-agent.txt",
        .pass_env = any_llm_env,
    },
    {.name = NULL},
};

/* Agents the job file defines carry their own name; these rows give their kind's
 * defaults. */
static const struct agent_def job_file_defs[] = {
    {.name = "custom", .kind = AGENT_KIND_USER, .version = "1.0.0"},
    {.name = "host", .kind = AGENT_KIND_HOST, .version = "1.0.0"},
};

const struct agent_def *agent_table_find(const char *name)
{
	for (const struct agent_def *e = agent_table; e->name; e++)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

const struct agent_def *agent_job_file_def(enum agent_kind kind)
{
	for (size_t i = 0; i < sizeof(job_file_defs) / sizeof(job_file_defs[0]); i++)
		if (job_file_defs[i].kind == kind)
			return &job_file_defs[i];
	return NULL;
}

bool agent_name_is_builtin(const char *name)
{
	return agent_table_find(name) != NULL;
}

char *agent_builtin_names_joined(void)
{
	struct strbuf sb = STRBUF_INIT;

	for (const struct agent_def *e = agent_table; e->name; e++)
		sb_addf(&sb, "%s%s", e == agent_table ? "" : ", ", e->name);
	return sb_detach(&sb);
}
