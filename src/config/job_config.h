/* Job configs (job.yaml / job.json): Harbor's JobConfig fields with its
 * defaults plus rollout's (environment.type sandbox|docker, isolation, preserve_env,
 * user-defined and host-side agents), the setters the command line's flags go
 * through (cli/job_overrides.c), the resolved
 * config as Harbor-shaped JSON (jobs/<name>/config.json), and the diff that
 * resume uses to refuse a changed config. */
#ifndef ROLLOUT_CONFIG_JOB_H
#define ROLLOUT_CONFIG_JOB_H

#include "config/agent_table.h"
#include "config/bind.h"
#include "config/diag.h"
#include "rollout/provider_table.h"
#include "rollout/strbuf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

struct err;

/* One per row of include/rollout/provider_table.h: ENV_TYPE_SANDBOX, ENV_TYPE_DOCKER. */
#define JOB_ENV_TYPE_ENUM(id, name, harbor, import_path) ENV_TYPE_##id,
#define JOB_ENV_LEVEL_NONE(id, isolation, ops)
enum env_type { ROLLOUT_PROVIDERS(JOB_ENV_TYPE_ENUM, JOB_ENV_LEVEL_NONE) ENV_TYPE_COUNT };
#undef JOB_ENV_TYPE_ENUM
enum preserve_env { PRESERVE_ENV_NEVER, PRESERVE_ENV_ON_FAILURE, PRESERVE_ENV_ALWAYS };
/* How the sandbox isolates environments (docs/SANDBOX.md, "Isolation levels"). */
enum env_isolation { ENV_ISOLATION_FULL, ENV_ISOLATION_CHROOT };

const char *env_type_name(enum env_type t); /* "sandbox", "docker" */
/* The type names for messages: "sandbox or docker" (allocated). */
char *job_env_type_names_or(void);
/* config.json's environment.import_path for the sandbox (Harbor has no such type;
 * the table's import_path). */
#define ENV_SANDBOX_IMPORT_PATH "rollout.environments.sandbox:SandboxEnvironment"
/* Rewrite an environment object written by older rollouts (type "sandbox", no
 * rollout_provider) in today's form, in place. */
void job_environment_json_normalize(cJSON *env);
const char *preserve_env_name(enum preserve_env p);   /* "never", "on_failure", "always" */
const char *env_isolation_name(enum env_isolation i); /* "full", "chroot" */

/* Harbor's RetryConfig. Exception types are matched by class name. */
struct retry_config {
	int max_retries; /* 0 */
	bool has_include_exceptions;
	struct strv include_exceptions; /* only when has_include_exceptions (null = every type) */
	struct strv exclude_exceptions; /* default: Harbor's set (AgentTimeoutError, ...) */
	double wait_multiplier;         /* 1.0 */
	double min_wait_sec;            /* 1.0 */
	double max_wait_sec;            /* 60.0 */
};

struct orchestrator_config {
	char *type;                /* "local" (or "queue"; rollout has one orchestrator) */
	int n_concurrent_trials;   /* 4; also accepted at the top level */
	bool quiet;                /* also at the top level */
	struct retry_config retry; /* also at the top level */
	cJSON *kwargs;             /* object */
};

struct job_environment_config {
	enum env_type type; /* sandbox */
	bool force_build;   /* false */
	bool delete;        /* true */
	int override_cpus;  /* -1 = unset (all four) */
	int override_memory_mb;
	int override_storage_mb;
	int override_gpus;
	bool suppress_override_warnings;
	enum preserve_env preserve_env; /* never */
	enum env_isolation isolation;   /* full */
	cJSON *kwargs;                  /* object: provider settings */
	struct env_list env;
};

struct job_verifier_config {
	double override_timeout_sec; /* NAN = unset (0 also counts as unset, as in Harbor) */
	double max_timeout_sec;      /* NAN = unset */
	bool disable;
};

struct metric_config {
	char *type;    /* mean (default), sum, min, max, uv-script */
	cJSON *kwargs; /* object */
};

struct agent_config {
	char *name; /* built-in (agent_table.h) or the name of a user-defined agent */
	/* Set once when bound (file, default or -a): the agent's row in the agent table,
	 * or its kind's row for an agent the job file defines. def->kind is the kind. */
	const struct agent_def *def;
	char *model_name;                  /* "provider/model" or NULL */
	double override_timeout_sec;       /* NAN = unset */
	double override_setup_timeout_sec; /* NAN = unset */
	double max_timeout_sec;            /* NAN = unset */
	cJSON *kwargs;                     /* object */
	struct env_list env;
	/* rollout's user-defined agents (parsed and validated here, run elsewhere): */
	char *install;      /* host path of a script run in the environment at setup */
	char *run;          /* command template run in the environment */
	char *host_command; /* host-side agent: command run on the host (rollout exec) */
	int line;           /* where it was defined, 0 when made by code */
};

struct dataset_config {
	bool is_registry;
	char *path;          /* local dataset: a task dir or a dir of tasks */
	char *name;          /* registry dataset */
	char *version;       /* NULL = Harbor's resolution (head, else highest) */
	char *registry_url;  /* NULL with registry_path NULL = the default registry */
	char *registry_path; /* a local registry.json */
	bool overwrite;
	char *download_dir;
	bool has_task_names; /* null = every task */
	struct strv task_names;
	bool has_exclude_task_names;
	struct strv exclude_task_names;
	int n_tasks; /* -1 = all */
};

struct task_ref_config {
	char *path;
	char *git_url;
	char *git_commit_id;
	bool overwrite;
	char *download_dir;
	char *source;
};

struct job_config {
	char *job_name;            /* default: local time %Y-%m-%d__%H-%M-%S */
	char *jobs_dir;            /* "jobs" */
	int n_attempts;            /* 1 */
	double timeout_multiplier; /* 1.0 */
	/* NAN = fall back to timeout_multiplier */
	double agent_timeout_multiplier;
	double verifier_timeout_multiplier;
	double agent_setup_timeout_multiplier;
	double environment_build_timeout_multiplier;
	bool debug;
	struct orchestrator_config orchestrator;
	struct job_environment_config environment;
	struct job_verifier_config verifier;
	struct metric_config *metrics;
	size_t n_metrics;
	struct agent_config *agents; /* default: one oracle agent */
	size_t n_agents;
	struct dataset_config *datasets;
	size_t n_datasets;
	struct task_ref_config *tasks;
	size_t n_tasks;
	struct artifact_spec *artifacts;
	size_t n_artifacts;
	/* rollout: host variables the tasks' ${VAR} templates may read without asking
	 * (allow_host_env: true for all, or a list of names). Not part of what a trial
	 * means: resume ignores changes to it. */
	bool allow_host_env_all;
	struct strv allow_host_env;
};

/* Harbor's defaults (job_name from the local time now). */
void job_config_init(struct job_config *cfg);
void job_config_release(struct job_config *cfg);
void dataset_config_release(struct dataset_config *d);
/* Scope-bound release (rollout/cleanup.h); a zeroed struct releases to nothing. */
void cleanup_job_configp(struct job_config *cfg);
void cleanup_dataset_configp(struct dataset_config *d);
#define _cleanup_job_config_ __attribute__((cleanup(cleanup_job_configp)))
#define _cleanup_dataset_config_ __attribute__((cleanup(cleanup_dataset_configp)))
/* An agent entry: unset overrides (NAN), empty kwargs; a deep copy; its release. */
void agent_config_init(struct agent_config *a);
void agent_config_copy(struct agent_config *dst, const struct agent_config *src);
void agent_config_release(struct agent_config *a);
/* Replace the agents with agents[0..n) (heap, owned from now on). */
void job_config_set_agents(struct job_config *cfg, struct agent_config *agents, size_t n);
/* A local dataset entry that names one task directory and filters nothing: what
 * Harbor's -p makes a task (tasks: [{path}]) rather than a dataset. */
bool job_dataset_is_single_task(const char *path, bool is_registry, bool filters,
                                bool verifier_disabled);
/* Drop every dataset and task (before -p or -d names new ones). */
void job_config_drop_tasks(struct job_config *cfg);
/* Bind a parsed job file onto cfg (initialized): every problem goes to diags. */
void job_config_bind(struct node *root, const char *file, struct job_config *cfg,
                     struct diags *diags);
/* Read a .yaml/.yml/.json job file. 0, or -1 when diags got an error. */
int job_config_load_diags(const char *path, struct job_config *cfg, struct diags *diags);
/* The same with warnings sent to log_warn and every error joined into err. */
int job_config_load(const char *path, struct job_config *cfg, struct err *err);

/* The names the flags accept for enum env_type and enum preserve_env. */
extern const char *const job_env_type_names[];      /* the table's: sandbox, docker */
extern const char *const job_preserve_env_names[];  /* never, on_failure, always */
extern const char *const job_env_isolation_names[]; /* full, chroot */
/* Why a job name cannot name a directory under jobs_dir, or NULL when it can. */
const char *job_name_problem(const char *name);
/* The config can run: at least one dataset or task. */
int job_config_check_runnable(const struct job_config *cfg, struct err *err);

/* The resolved config in Harbor's JobConfig shape (plus rollout's fields). */
cJSON *job_config_to_json(const struct job_config *cfg);
/* Differences between two configs (as JSON), ignoring job_name and allow_host_env:
 * one line per difference, "n_attempts: 1 -> 2". Returns the number of lines added. */
size_t job_config_json_diff(const cJSON *old_cfg, const cJSON *new_cfg, struct strv *out);
size_t job_config_diff(const struct job_config *old_cfg, const struct job_config *new_cfg,
                       struct strv *out);

#endif
