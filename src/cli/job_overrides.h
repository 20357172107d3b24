/* The flags of `rollout run` and `rollout trial run` that override the job file
 * (SPEC.md, Command line): struct job_overrides, which the option rows of
 * cli/job_options.c fill, and how it applies to a loaded struct job_config through
 * config/'s setters. The flags' checks and messages live here; config/ loads and
 * validates job files. */
#ifndef ROLLOUT_CLI_JOB_OVERRIDES_H
#define ROLLOUT_CLI_JOB_OVERRIDES_H

#include "rollout/strbuf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

struct err;
struct job_config;

/* What the flags fill (-1, NAN, NULL or empty: not given). */
struct job_overrides {
	char *path;                       /* -p PATH: replaces datasets and tasks */
	char *dataset;                    /* -d NAME[@VERSION]: a registry dataset, likewise */
	char *registry_path;              /* --registry-path FILE: for -d and the file's */
	char *registry_url;               /* --registry-url URL:   registry datasets */
	char *agent;                      /* -a AGENT: replaces the agents list */
	struct strv models;               /* -m MODEL, repeatable: one agent per model */
	cJSON *agent_kwargs;              /* --ak key=value: merged into every agent's kwargs */
	struct strv agent_env;            /* --ae KEY=VALUE: into every agent's env */
	int env_type;                     /* -e: enum env_type, -1 = unset */
	cJSON *environment_kwargs;        /* --ek key=value: merged into environment.kwargs */
	bool force_build, no_force_build; /* --force-build / --no-force-build */
	int override_cpus;                /* --override-cpus etc.: -1 = unset */
	int override_memory_mb;
	int override_storage_mb;
	int override_gpus;
	bool disable_verification;      /* --disable-verification */
	struct strv artifacts;          /* --artifact PATH, repeatable: replaces the file's */
	int n_concurrent;               /* -n, -1 = unset */
	int n_attempts;                 /* -k, -1 = unset */
	char *job_name;                 /* --job-name */
	char *jobs_dir;                 /* -o */
	struct strv task_names;         /* -t GLOB, repeatable */
	struct strv exclude_task_names; /* -x GLOB, repeatable */
	int n_tasks;                    /* -l, -1 = unset */
	double timeout_multiplier;      /* --timeout-multiplier, NAN = unset (all five) */
	double agent_timeout_multiplier;
	double verifier_timeout_multiplier;
	double agent_setup_timeout_multiplier;
	double environment_build_timeout_multiplier;
	int max_retries;           /* -r/--max-retries, -1 = unset */
	struct strv retry_include; /* --retry-include TYPE: replaces include_exceptions */
	struct strv retry_exclude; /* --retry-exclude TYPE: replaces exclude_exceptions */
	int preserve_env;          /* --preserve-env: enum preserve_env, -1 = unset */
	int isolation;             /* --isolation: enum env_isolation, -1 = unset */
	bool quiet;                /* -q */
};

void job_overrides_init(struct job_overrides *o);
void job_overrides_release(struct job_overrides *o);
void cleanup_job_overridesp(struct job_overrides *o);
#define _cleanup_job_overrides_ __attribute__((cleanup(cleanup_job_overridesp)))
/* Apply the flags (they win over the file), then job_config_check_runnable. 0, or
 * -1 with err naming the flag ("-a: unknown agent ...", "-p and -d both ..."). */
int job_overrides_apply(struct job_config *cfg, const struct job_overrides *o, struct err *err);

#endif
