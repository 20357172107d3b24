/* Subcommand entry points and the shared exit-code/usage conventions. */
#ifndef ROLLOUT_CLI_H
#define ROLLOUT_CLI_H

#include "cli/options.h"

#include <stdbool.h>

#define EXIT_OK 0
#define EXIT_FAIL 1  /* the command could not do its work */
#define EXIT_USAGE 2 /* bad command line */
#define EXIT_CANCELLED 130

#ifndef ROLLOUT_VERSION
#define ROLLOUT_VERSION "0.1.0-dev"
#endif

/* Each takes argv with argv[0] = the subcommand name and returns an exit code. */
int cmd_run(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_trial(int argc, char **argv);
int cmd_tasks(int argc, char **argv);
int cmd_datasets(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_env(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
/* `rollout login` and `rollout logout` (cli/login.c). */
int cmd_login(int argc, char **argv);
int cmd_logout(int argc, char **argv);
int cmd_version(int argc, char **argv);
/* `rollout tasks init` and `rollout tasks start-env` (cli/task_init.c, task_env.c). */
int cli_tasks_init(int argc, char **argv);
int cli_tasks_start_env(int argc, char **argv);

struct err;
struct job_config;
struct job_overrides;

/* Option rows that fill struct job_overrides (cli/job_options.c): every flag of
 * `rollout run` that overrides the job file, and the agent/environment/timeout
 * rows that `rollout trial run` shares. */
extern const struct cli_option job_override_options[];
extern const struct cli_option job_agent_env_options[];
/* One of those flags by spelling ("-n", "--agent-kwarg", "--ak"), as if typed. */
int cli_job_override_set(struct job_overrides *o, const char *flag, const char *value,
                         struct err *err);
/* How `rollout run` and `rollout jobs resume` run a loaded job. */
struct cli_run_opts {
	bool quiet;
	bool yes; /* -y/--yes: the tasks may read the host variables they ask for */
	int shard_index, shard_count;    /* count 0 = unsharded */
	const char *const *rerun_errors; /* resume: rerun trials that ended with these */
	bool dir_named; /* `jobs resume DIR`: where the job was first run does not count */
};
int cli_run_job(struct job_config *cfg, const struct cli_run_opts *opts);
struct job;
/* Before a job's first trial: the host variables its tasks' ${VAR} templates read
 * (names and tasks, never values). Allowed by `yes` or the job file's allow_host_env;
 * else asked on a terminal ([y/N]); else refused. 0 to go on, -1 with err. */
int cli_confirm_host_env(const struct job *job, bool yes, struct err *err);
/* "I/N" with 0 <= I < N. */
int cli_parse_shard(const char *s, int *index, int *count);

/* Print "rollout CMD: message" and a hint to --help on stderr; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "rollout: error: message"; returns EXIT_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* True when argv[i] is -h or --help for any i >= 1 before a "--". */
int cli_wants_help(int argc, char **argv);
/* Dispatch "CMD SUB ..." to a table of subcommands. */
struct cli_sub {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};
/* Parse a command that takes only -e/--provider and --help: *provider (NULL when
 * not given), the operands appended to *operands in order. Returns -1 to go on,
 * else the exit code to return (help, usage error). */
struct strv;
int cli_provider_options(const char *cmd, int argc, char **argv, const char *usage,
                         const char **provider, struct strv *operands);
int cli_dispatch(const char *cmd, const struct cli_sub *subs, int argc, char **argv,
                 const char *usage);

#endif
