/* Jobs: trials expanded attempts × tasks × agents, run at most n_concurrent_trials
 * at once, each in its own worker process, with retries, cancellation, resume and a
 * job result.json kept current as trials finish. */
#ifndef ROLLOUT_JOB_H
#define ROLLOUT_JOB_H

#include "config/job_config.h"
#include "config/task.h"
#include "core/result.h"
#include "core/trial_run.h"
#include "rollout/confined.h"
#include "rollout/sha256.h"

#include <stdbool.h>
#include <sys/types.h>

struct err;

struct job_task {
	struct task *task;
	char *source; /* dataset name; NULL for tasks given one by one */
	char checksum[SHA256_HEX_LEN + 1];
	cJSON *task_id; /* {"path": ...}, or {"git_url", "git_commit_id", "path"} */
	/* git tasks: where the task came from (NULL for local tasks) */
	char *git_url, *git_commit_id, *repo_path;
};

/* The metrics a registry dataset declares, for the evals of its trials. */
struct job_source {
	char *name;
	struct strv types;
};

enum job_item_state { ITEM_PENDING, ITEM_RUNNING, ITEM_DONE, ITEM_SKIPPED };

/* One trial of the job. */
struct job_item {
	size_t task, agent; /* indexes into job->tasks and cfg->agents */
	int attempt;
	char *trial_name;
	cJSON *trial_config; /* TrialConfig (config.json) */
	char *match_key;     /* TrialConfig without names: resume pairs results by it */
	enum job_item_state state;
	pid_t pid;
	double started_mono;
	double not_before; /* retry backoff: do not launch before this mono time */
	double deadline;   /* watchdog: the worker is killed after this mono time */
	int retries;
	int phase;         /* enum trial_phase the worker last reported; -1 before */
	double phase_mono; /* when it began */
	bool term_sent, kill_sent;
	struct trial_result result;
	bool has_result;
};

enum progress_mode { PROGRESS_AUTO, PROGRESS_LIVE, PROGRESS_LINES, PROGRESS_QUIET };

struct job {
	struct job_config *cfg; /* owned by the caller */
	char *dir;              /* jobs_dir/job_name */
	struct cdir cd;         /* the same, open: every file in it is reached confined */
	char id[37];
	const struct provider_ops *provider;
	struct job_task *tasks;
	size_t n_tasks;
	struct job_source *sources;
	size_t n_sources;
	struct job_item *items;
	size_t n_items;
	int shard_index, shard_count; /* run items with index % count == shard_index */
	long pids_limit;              /* per trial, sized by job_load_tasks (core/pids.h) */
	enum progress_mode progress;
	double started_at;
	int n_retries;
	bool cancelled;
	bool resumed;
	bool dir_named; /* the directory was named (jobs resume): ignore a moved jobs_dir */
	/* resume: rerun trials that ended with one of these exception types (empty:
	 * job_rerun_default) */
	struct strv rerun_errors;
	struct job_resume_counts {
		size_t kept;                       /* finished trials adopted */
		size_t cancelled, crashed, failed; /* ended with a rerun error */
		size_t unfinished;                 /* no (complete) result.json */
	} resume;
	int log_slot;
	int lock_fd;           /* flock on DIR/.lock while the job runs (0 = none) */
	int phase_pipe[2];     /* workers report phases: struct {pid, phase} records */
	bool result_dirty;     /* trials finished since result.json was last written */
	double result_written; /* mono time of that write */
};

/* The exception types whose trials run again when a job is resumed, by `rollout jobs
 * resume` or by running the same command again: the trial did not really run
 * (cancelled, its worker crashed or hung). `jobs resume --filter-error-type` replaces
 * the list, as Harbor's does. NULL-terminated. */
extern const char *const job_rerun_default[];
/* "6 trials kept, 2 cancelled and 1 crashed will run again, 3 not started" (after
 * job_prepare of a resumed job). Heap string. */
char *job_resume_summary(const struct job *job);

/* Load the tasks (unless job_load_tasks already did), expand the trials, and set up
 * the job directory: a fresh one, or (same job name, same config) resume: finished
 * trials are kept, unfinished ones removed to be rerun. A changed config is refused
 * with the list of differences. */
int job_prepare(struct job *job, struct job_config *cfg, struct err *err);
/* The pieces of job_prepare that `rollout trial run` uses on its own: resolve and
 * load the tasks, expand the trials (job->dir must be set before naming them), and
 * name one trial (NULL: a fresh <task>__<7 chars>). */
int job_load_tasks(struct job *job, struct job_config *cfg, struct err *err);
void job_expand(struct job *job);
void job_item_name(struct job *job, struct job_item *it, const char *name);
/* Run every pending trial. Returns 0 when the job ran (job->cancelled says whether it
 * was interrupted); negative when it could not run. */
int job_execute(struct job *job, struct err *err);
void job_release(struct job *job);
void cleanup_jobp(struct job *job);
#define _cleanup_job_ __attribute__((cleanup(cleanup_jobp)))

/* The stats of the job's finished trials (metrics.h), and the job result.json. */
cJSON *job_compute_stats(const struct job *job);
int job_write_result(const struct job *job, bool final, struct err *err);

/* Build the trial spec of one item (strings point into job/task/cfg, which must
 * outlive it; `scratch` owns the rest and is released with trial_spec_scratch_release). */
struct trial_spec_scratch {
	struct strv agent_env, verifier_env, solution_env, task_env;
	struct strv artifact_sources, artifact_dests;
	struct agent_custom custom;
	char *trial_dir;
};
void job_item_spec(const struct job *job, const struct job_item *item, struct trial_spec *spec,
                   struct trial_spec_scratch *scratch);
void trial_spec_scratch_release(struct trial_spec_scratch *s);

/* Load every finished trial result under a job directory (trial dirs only). */
int job_dir_load_results(const char *dir, struct trial_result **out, size_t *n);

#endif
