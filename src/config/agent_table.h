/* The agent table: every agent rollout knows, in one place. Each row names an agent,
 * its kind, what the kind needs from the row and its defaults. The job config binds
 * every configured agent to one row (struct agent_config.def), so the kind is set
 * once, at bind time; src/agents/ implements each kind (agent_kind_ops) and reads the
 * row it is given. Data only: this file knows no behaviour. */
#ifndef ROLLOUT_CONFIG_AGENT_NAMES_H
#define ROLLOUT_CONFIG_AGENT_NAMES_H

#include <stdbool.h>

/* What an agent is, which decides what runs it (src/agents/<kind>.c). */
enum agent_kind {
	AGENT_KIND_ORACLE,    /* runs the task's solution/solve.sh (agents/oracle.c) */
	AGENT_KIND_NOP,       /* does nothing (agents/oracle.c) */
	AGENT_KIND_INSTALLED, /* a CLI installed by a script, run by a command template
	                         (agents/installed.c) */
	AGENT_KIND_USER,      /* job file: install script + run template, in the environment
	                         (agents/custom.c) */
	AGENT_KIND_HOST,      /* job file: host_command, on the host (agents/custom.c) */
	AGENT_KIND_COUNT,
};

struct agent_def {
	const char *name;
	enum agent_kind kind;
	const char *version; /* recorded in agent_info when kwargs.version is not given */
	bool needs_model;    /* the run refuses to start without -m / model_name */
	/* AGENT_KIND_INSTALLED: templates (see agent_render in agents/agent.h) */
	const char *install_template; /* the install script */
	const char *run_template;     /* the run command */
	const char *const *pass_env;  /* host variables handed to the agent when set */
	const char *const *set_env;   /* fixed KEY=VALUE (templates allowed) */
};

/* The built-in agents, the names a job may use without defining them: oracle, nop,
 * then the installed agents. Ends with a row whose name is NULL. */
extern const struct agent_def agent_table[];

/* The row of a built-in agent; NULL when the name is not one. */
const struct agent_def *agent_table_find(const char *name);
/* The row of a kind whose agents the job file defines (AGENT_KIND_USER, _HOST): the
 * name and version recorded when the agent has none of its own. NULL for other kinds. */
const struct agent_def *agent_job_file_def(enum agent_kind kind);

bool agent_name_is_builtin(const char *name);
/* "oracle, nop, claude-code, ..." for messages. Heap string. */
char *agent_builtin_names_joined(void);

#endif
