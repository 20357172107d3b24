/* The option rows that fill struct job_overrides: the tasks, job and retry flags of
 * `rollout run`, and the agent, environment, timeout and verification flags that
 * `rollout run` and `rollout trial run` share (Harbor's spellings and meanings). */
#include "cli/cli.h"
#include "cli/job_overrides.h"
#include "cli/options.h"
#include "config/agent_table.h"
#include "config/job_config.h"
#include "config/registry.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/provider_table.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define OV(field) offsetof(struct job_overrides, field)

static int opt_job_name(const struct cli_option *o, const char *flag, const char *value, void *ctx,
                        struct err *err)
{
	const char *problem = job_name_problem(value);

	if (problem)
		return err_set(err, EINVAL, "%s: the job name %s", flag, problem);
	return cli_opt_str(o, flag, value, ctx, err);
}

static int opt_dataset(const struct cli_option *o, const char *flag, const char *value, void *ctx,
                       struct err *err)
{
	_cleanup_free_ char *name = NULL, *version = NULL;

	if (registry_parse_ref(value, &name, &version, err) < 0)
		return err_wrap(err, "%s", flag);
	return cli_opt_str(o, flag, value, ctx, err);
}

/* -a's help: every row of the agent table, so that a new agent is one row there. */
static char *agent_help(void)
{
	_cleanup_free_ char *names = agent_builtin_names_joined();

	return xasprintf("%s, or one the job file defines (replaces the file's agents)", names);
}

const struct cli_option job_agent_env_options[] = {
    CLI_HEADING("Agents:"),
    CLI_OPT('a', "agent", NULL, "NAME", NULL, cli_opt_str, OV(agent), .help_fn = agent_help),
    CLI_OPT('m', "model", NULL, "PROVIDER/MODEL",
            "model for the agent; repeat for one agent per model", cli_opt_strv, OV(models)),
    CLI_OPT(0, "agent-kwarg", "ak", "KEY=VALUE",
            "agent setting (repeatable); the value is read as JSON\n"
            "when it parses (3, true, [1,2], \"x\"), else as text",
            cli_opt_kwarg, OV(agent_kwargs)),
    CLI_OPT(0, "agent-env", "ae", "KEY=VALUE",
            "environment variable for the agent's commands (repeatable)", cli_opt_kv,
            OV(agent_env)),
    CLI_HEADING("Environment:"),
    CLI_OPT('e', "env", NULL, ROLLOUT_PROVIDER_NAMES_BAR, "environment provider (default sandbox)",
            cli_opt_choice, OV(env_type), .choices = job_env_type_names),
    CLI_OPT(0, "environment-kwarg", "ek", "KEY=VALUE",
            "provider setting (repeatable), e.g. pids_limit=512,\n"
            "output_limit_mb=64; values read as for --ak",
            cli_opt_kwarg, OV(environment_kwargs)),
    CLI_OPT(0, "force-build", NULL, NULL,
            "build environment/Dockerfile even when the task names a\n"
            "docker_image, and rebuild a cached image",
            cli_opt_true, OV(force_build)),
    CLI_OPT(0, "no-force-build", NULL, NULL, "the file's force_build: false", cli_opt_true,
            OV(no_force_build)),
    CLI_OPT(0, "override-cpus", NULL, "N", "CPUs of every environment instead of the task's",
            cli_opt_int, OV(override_cpus), .min = 1),
    CLI_OPT(0, "override-memory-mb", NULL, "MB", "memory limit instead of the task's", cli_opt_int,
            OV(override_memory_mb), .min = 1),
    CLI_OPT(0, "override-storage-mb", NULL, "MB", "storage limit instead of the task's",
            cli_opt_int, OV(override_storage_mb), .min = 1),
    CLI_OPT(0, "override-gpus", NULL, "N",
            "GPUs instead of the task's (only 0: no provider has GPUs)", cli_opt_int,
            OV(override_gpus), .min = 0),
    CLI_OPT(0, "isolation", NULL, "full|chroot",
            "the sandbox's isolation (default full). chroot is for\n"
            "hosts that forbid namespaces (a CI job's container,\n"
            "which is then the boundary): a copy of the image,\n"
            "chroot'ed into, no network isolation; see\n"
            "docs/SANDBOX.md \"Isolation levels\" and `rollout doctor`",
            cli_opt_choice, OV(isolation), .choices = job_env_isolation_names),
    CLI_OPT(0, "preserve-env", NULL, "POLICY",
            "never (default), on_failure or always: keep environments\n"
            "for `rollout env`",
            cli_opt_choice, OV(preserve_env), .choices = job_preserve_env_names),
    CLI_HEADING("Timeouts and verification:"),
    CLI_OPT(0, "timeout-multiplier", NULL, "X", "scale every phase timeout", cli_opt_double,
            OV(timeout_multiplier)),
    CLI_OPT(0, "agent-timeout-multiplier", NULL, "X", "the agent's timeout (instead of the above)",
            cli_opt_double, OV(agent_timeout_multiplier)),
    CLI_OPT(0, "verifier-timeout-multiplier", NULL, "X", "the verifier's timeout", cli_opt_double,
            OV(verifier_timeout_multiplier)),
    CLI_OPT(0, "agent-setup-timeout-multiplier", NULL, "X", "the agent's setup (install) timeout",
            cli_opt_double, OV(agent_setup_timeout_multiplier)),
    CLI_OPT(0, "environment-build-timeout-multiplier", NULL, "X",
            "the environment's build and start timeout", cli_opt_double,
            OV(environment_build_timeout_multiplier)),
    CLI_OPT(0, "disable-verification", NULL, NULL,
            "do not run tests/test.sh (no rewards; tasks need\n"
            "no tests/)",
            cli_opt_true, OV(disable_verification)),
    CLI_OPT(0, "artifact", NULL, "PATH",
            "a path in the environment to keep in the trial's\n"
            "artifacts/ (repeatable; replaces the file's artifacts)",
            cli_opt_strv, OV(artifacts)),
    CLI_END,
};

const struct cli_option job_override_options[] = {
    CLI_HEADING("Tasks:"),
    CLI_OPT('p', "path", NULL, "PATH",
            "a task, or a directory of tasks (replaces the file's\n"
            "datasets and tasks)",
            cli_opt_str, OV(path)),
    CLI_OPT('d', "dataset", NULL, "NAME[@VERSION]", "a registry dataset (likewise)", opt_dataset,
            OV(dataset)),
    CLI_OPT(0, "registry-path", NULL, "FILE",
            "a local registry.json for -d and the file's datasets", cli_opt_str, OV(registry_path)),
    CLI_OPT(0, "registry-url", NULL, "URL", "a registry.json URL, likewise", cli_opt_str,
            OV(registry_url)),
    CLI_OPT('t', "task-name", NULL, "GLOB", "only tasks whose name matches (repeatable)",
            cli_opt_strv, OV(task_names)),
    CLI_OPT('x', "exclude-task-name", NULL, "GLOB", "skip tasks whose name matches (repeatable)",
            cli_opt_strv, OV(exclude_task_names)),
    CLI_OPT('l', "n-tasks", NULL, "N", "at most N tasks (after the filters)", cli_opt_int,
            OV(n_tasks), .min = 1),
    CLI_INCLUDE(job_agent_env_options, 0),
    CLI_HEADING("Job:"),
    CLI_OPT('n', "n-concurrent", NULL, "N", "trials at once (default 4)", cli_opt_int,
            OV(n_concurrent), .min = 1),
    CLI_OPT('k', "n-attempts", NULL, "N", "attempts per task and agent (default 1)", cli_opt_int,
            OV(n_attempts), .min = 1),
    CLI_OPT(0, "job-name", NULL, "NAME", "default: the start time, YYYY-MM-DD__HH-MM-SS",
            opt_job_name, OV(job_name)),
    CLI_OPT('o', "jobs-dir", NULL, "DIR", "default: jobs", cli_opt_str, OV(jobs_dir)),
    CLI_OPT('r', "max-retries", NULL, "N", "rerun a failed trial up to N times (default 0)",
            cli_opt_int, OV(max_retries), .min = 0),
    CLI_OPT(0, "retry-include", NULL, "TYPE",
            "retry only trials that failed with this exception type\n"
            "(repeatable; default: every type not excluded)",
            cli_opt_strv, OV(retry_include)),
    CLI_OPT(0, "retry-exclude", NULL, "TYPE",
            "never retry this exception type (repeatable; replaces\n"
            "the default: AgentTimeoutError, VerifierTimeoutError,\n"
            "RewardFileNotFoundError, RewardFileEmptyError,\n"
            "VerifierOutputParseError and the agent's usage-limit,\n"
            "refusal, authentication and model-not-found errors)",
            cli_opt_strv, OV(retry_exclude)),
    CLI_OPT('q', "quiet", "silent", NULL, "no live display: the results path and summary line only",
            cli_opt_true, OV(quiet)),
    CLI_END,
};

int cli_job_override_set(struct job_overrides *o, const char *flag, const char *value,
                         struct err *err)
{
	return cli_option_set(job_override_options, o, flag, value, err);
}
