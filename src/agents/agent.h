/* Agents: what attempts a task inside an environment. Which agents exist, and the
 * kind of each, is the table in config/agent_table.h; this module runs each kind:
 * oracle and nop (oracle.c), installed agents (installed.c: install script + run
 * command templates from their row), user-defined agents from the job file and
 * host-side agents that drive the environment through `rollout env exec` (custom.c). */
#ifndef ROLLOUT_AGENT_H
#define ROLLOUT_AGENT_H

#include "config/agent_table.h"
#include "providers/provider.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

struct cdir;
struct err;
struct strv;

/* What a user-defined or host-side agent looks like in the job file. */
struct agent_custom {
	const char *install_script; /* host path of an install script, or NULL */
	const char *run_template;   /* command template run in the environment, or NULL */
	const char *host_command;   /* host-side agent: a program run on the host, or NULL */
};

/* Everything an agent may use during setup and run. */
struct agent_context {
	struct environment *env;      /* env_exec(), env_upload() (providers/provider.h) */
	const char *env_name;         /* trial name: the environment's name for `rollout env` */
	const char *trial_dir;        /* host trial directory (made by rollout) */
	const struct cdir *agent_dir; /* host <trial>/agent (mounted at /logs/agent): the
	                                  agent writes there too, so only confined I/O */
	const char *task_dir;         /* host task directory */
	const char *instruction;      /* instruction.md text */
	const char *instruction_path;
	const char *model_name;            /* "provider/model" or NULL */
	const char *const *extra_env;      /* agent env from the job file, KEY=VALUE */
	const char *const *solution_env;   /* resolved [solution].env (oracle) */
	const cJSON *kwargs;               /* agent kwargs from the job file (may be NULL) */
	const char *version;               /* requested version (kwargs.version) or NULL */
	const struct agent_custom *custom; /* user-defined / host-side agents */
	double deadline;                   /* mono_now() value the phase must end by; 0 = none */
	long long output_cap;
	/* Filled by the agent: exit code of the main command (oracle's exit-code.txt),
	 * whether the phase ran out of time, and on failure the Harbor exception type
	 * (FileNotFoundError, RuntimeError, ...; NULL = RuntimeError). */
	int exit_code;
	const char *exception_type;
	double command_sec; /* time spent in the agent's own commands (for the overhead) */
	bool timed_out;
	bool oom_killed;       /* a command of the agent was OOM-killed */
	bool output_truncated; /* a command's output went beyond the cap */
	int n_commands;        /* command-N directories written so far */
};

/* What one kind of agent does, in src/agents/<kind>.c. Each phase gets the agent's
 * row of the table (config/agent_table.h): a built-in's own, or its kind's row for an
 * agent the job file defines (whose install/run/host_command are in ctx->custom). */
struct agent_ops {
	/* install phase (NULL: nothing to install) */
	int (*setup)(const struct agent_def *def, struct agent_context *ctx, struct err *err);
	/* execute phase */
	int (*run)(const struct agent_def *def, struct agent_context *ctx, struct err *err);
};

/* The ops of a kind (the table in agents/agent.c, one row per enum agent_kind). */
const struct agent_ops *agent_kind_ops(enum agent_kind kind);

/* An agent's phases, run by its kind's ops: whether it has an install phase, the
 * install phase, the execute phase. */
bool agent_has_setup(const struct agent_def *def);
int agent_setup(const struct agent_def *def, struct agent_context *ctx, struct err *err);
int agent_run(const struct agent_def *def, struct agent_context *ctx, struct err *err);

/* Render a template: {{instruction}}, {{model}} (without provider prefix),
 * {{model_full}}, {{provider}}, {{version}}, {{env_name}} become their values,
 * shell-quoted when `quote` (commands) and verbatim otherwise (environment values);
 * unknown placeholders are an error. Heap string. */
int agent_render(const char *tmpl, const struct agent_context *ctx, bool quote, char **out,
                 struct err *err);

/* Run one command in the environment as agent/command-N (command.txt, stdout.txt,
 * stderr.txt, return-code.txt), with the time left before ctx->deadline. Sets
 * ctx->timed_out when it ran out of time. */
int agent_exec_logged(struct agent_context *ctx, const char *dir_name, const char *command,
                      const char *const *env, struct exec_result *res, struct err *err);

/* Shared by installed and user-defined agents: run an install script at setup
 * (agent/install.sh, agent/setup/), the environment of their commands (fixed values,
 * host variables they pass, the job file's env last), and a run template as the
 * next agent/command-N. */
int agent_install_script(struct agent_context *ctx, const char *script, struct err *err);
int agent_command_env(const struct agent_def *def, struct agent_context *ctx, struct strv *env,
                      struct err *err);
int agent_run_template(const struct agent_def *def, struct agent_context *ctx, const char *tmpl,
                       struct err *err);

#endif
