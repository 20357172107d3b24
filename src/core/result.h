/* Trial and job results in Harbor's layout (reference/harbor.md §5): the structs the
 * executor fills, their JSON form, atomic writes, and tolerant reads for resume. */
#ifndef ROLLOUT_RESULT_H
#define ROLLOUT_RESULT_H

#include <cjson/cJSON.h>
#include <stdbool.h>

struct cdir;
struct err;

/* A phase's wall-clock span; 0 means "not reached" (written as null). */
struct phase_time {
	double started_at;
	double finished_at;
};

struct exception_info {
	char *type; /* Harbor's exception class name, e.g. AgentTimeoutError */
	char *message;
	char *traceback; /* what exception.txt holds */
	double occurred_at;
};

/* The trial phases, in order. Harbor records the first four; rollout adds the rest. */
enum trial_phase {
	PHASE_ENVIRONMENT_SETUP,
	PHASE_AGENT_SETUP,
	PHASE_AGENT_EXECUTION,
	PHASE_VERIFIER,
	PHASE_ARTIFACT_COLLECTION,
	PHASE_ENVIRONMENT_TEARDOWN,
	PHASE_COUNT
};
const char *trial_phase_key(enum trial_phase p);

struct trial_result {
	char *id; /* uuid4 */
	char *task_name;
	char *trial_name;
	char *trial_uri;     /* file:// URI of the trial directory */
	cJSON *task_id;      /* {"path": ...} or {"git_url", "git_commit_id", "path"} */
	char *source;        /* dataset name, NULL for ad-hoc tasks */
	char *task_checksum; /* sha256 hex of the task directory */
	cJSON *config;       /* the TrialConfig */
	char *agent_name;
	char *agent_version;
	char *model_name;    /* as given, "provider/name"; NULL when none */
	cJSON *agent_result; /* AgentContext: tokens, cost, metadata (NULL = empty) */
	cJSON *rewards;      /* verifier_result.rewards: flat {key: number}; NULL when none */
	struct exception_info *exception; /* first error, or NULL */
	double started_at;
	double finished_at;
	struct phase_time phases[PHASE_COUNT];
	/* rollout's own: time inside the agent's and the verifier's commands, so that
	 * the harness's overhead is (finished_at - started_at) minus both. */
	double agent_commands_sec;
	double verifier_commands_sec;
	/* rollout's own audit of what the trial saw (core/trial_run.c, "integrity" in
	 * result.json): processes killed at phase boundaries, the reward file read,
	 * OOM kills, truncations, what collecting removed, tampering flags. */
	cJSON *integrity;
};

void trial_result_init(struct trial_result *r);
/* Harbor's TrialLock (lock.json, schema 2) of a trial: its resolved inputs from the
 * TrialConfig, the task's digest ("sha256:" + task_checksum, the dirhash; Harbor's
 * packager hashes differently) and the verifier's environment mode ("shared"). */
cJSON *trial_lock_json(const cJSON *trial_config, const char *task_name, const char *checksum);
/* v as Python prints a float: shortest round-trip text, "1.0" rather than "1". */
void json_float_text(double v, char *buf, size_t n);
void trial_result_free(struct trial_result *r);
/* Record an error; only the first one is kept (later calls are ignored). */
void trial_result_set_exception(struct trial_result *r, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void trial_result_clear_exception(struct trial_result *r);
cJSON *trial_result_to_json(const struct trial_result *r);
/* Parse a result.json tree. Missing optional keys are fine; wrong types are errors. */
int trial_result_from_json(const cJSON *j, struct trial_result *r, struct err *err);
/* Writes result.json atomically and, when there is an exception, exception.txt. */
int trial_result_write(const struct cdir *trial, const struct trial_result *r, struct err *err);

/* Loading a result that may be absent, empty or truncated (a crash, a full disk, a
 * kill -9 between writes): RESULT_MISSING and RESULT_CORRUPT are not errors to the
 * caller, just "this trial did not finish". */
enum result_status { RESULT_OK, RESULT_MISSING, RESULT_CORRUPT };
enum result_status trial_result_load(const struct cdir *trial, struct trial_result *r,
                                     struct err *why);

/* Fresh identifiers: uuid4 text, and Harbor's trial name <task[:32]>__<7 random chars>. */
void uuid4(char out[37]);
char *trial_name_new(const char *task_name);
/* file:// URI for an absolute or relative path. */
char *file_uri(const char *path);

#endif
