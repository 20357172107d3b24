/* A trial: one agent attempting one task, in six phases (setup, install, execute,
 * verify, collect, teardown), each under its own timeout. Errors are data: the
 * result is always written. */
#ifndef ROLLOUT_TRIAL_H
#define ROLLOUT_TRIAL_H

#include "agents/agent.h"
#include "config/job_config.h"
#include "core/result.h"
#include "providers/provider.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

struct cdir;

/* Everything a trial needs, resolved by the caller (job or `rollout trial run`). */
struct trial_spec {
	const char *trial_name;
	const char *trial_dir; /* created if missing */
	const char *job_name;

	const char *task_name;
	const char *task_dir;
	const char *task_checksum;
	const char *source;           /* dataset name, NULL for ad-hoc tasks */
	const cJSON *task_id;         /* {"path": ...} */
	const char *instruction;      /* instruction.md text */
	const char *instruction_path; /* host path of instruction.md */
	const cJSON *config_json;     /* TrialConfig, written to config.json */

	const struct provider_ops *provider;
	struct env_config env; /* env_name and the host log dirs are filled by trial_run */
	enum preserve_env preserve;

	const struct agent_def *agent; /* its row of the agent table; its kind runs it */
	const char *agent_name; /* as recorded in agent_info (user-defined agents have their own) */
	const char *model_name;
	const char *const *agent_env; /* KEY=VALUE from the job file */
	const cJSON *agent_kwargs;
	const char *agent_version; /* kwargs.version, or NULL for the agent's default */
	const struct agent_custom *custom;

	/* Effective phase timeouts in seconds (0 = none); see trial_timeouts(). */
	double setup_timeout;
	double install_timeout;
	double agent_timeout;
	double verifier_timeout;

	bool verifier_disabled;
	const char *const *verifier_env; /* resolved [verifier].env */
	const char *const *solution_env; /* resolved [solution].env */
	/* Extra paths to collect into artifacts/: sources[i] → dests[i] (NULL = basename). */
	const char *const *artifact_sources;
	const char *const *artifact_dests;
	long long output_cap; /* per stream, per command; 0 = default */
	/* Collect phase bounds; 0 = the defaults below. */
	long long logs_cap;      /* apparent size kept per /logs directory */
	long long artifacts_cap; /* declared artifacts, all together */
	double collect_timeout;
	/* Optional: told as each phase begins (a job's worker tells the display). */
	void (*on_phase)(void *ctx, int phase);
	void *on_phase_ctx;
};
#define TRIAL_LOGS_CAP_DEFAULT (1LL << 30)
#define TRIAL_ARTIFACTS_CAP_DEFAULT (1LL << 30)
#define COLLECT_TIMEOUT_DEFAULT 300.0

/* Inputs of the timeout formulas (reference/harbor.md §3). A negative value is
 * "not set" for overrides, maxima and phase multipliers. */
struct timeout_inputs {
	double task_agent_timeout;    /* [agent].timeout_sec (0 = none) */
	double task_verifier_timeout; /* [verifier].timeout_sec */
	double task_build_timeout;    /* [environment].build_timeout_sec */
	double agent_override, agent_max, agent_setup_override;
	double verifier_override, verifier_max;
	double multiplier; /* timeout_multiplier */
	double agent_multiplier, verifier_multiplier, agent_setup_multiplier, build_multiplier;
};
#define AGENT_SETUP_TIMEOUT_DEFAULT 360.0

void trial_timeouts(const struct timeout_inputs *in, struct trial_spec *spec);

/* Run the trial; fills *result (caller frees it). Returns 0 once result.json is
 * written, whatever happened inside the trial; negative only when not even the
 * result could be written. */
int trial_run(const struct trial_spec *spec, struct trial_result *result, struct err *err);

/* The reward file a verification produced (or left unread). */
struct reward_file {
	const char *name; /* "reward.json" or "reward.txt" read; NULL when none */
	long long size;
	double mtime;        /* seconds since the epoch */
	const char *ignored; /* a reward file older than the verification: not read */
};

/* Reward files (reference/harbor.md §2), Harbor >= 0.22's order: reward.json,
 * then reward.txt, read through the confined verifier directory (no links, no
 * FIFOs). A file older than not_before (wall clock; 0 = no check) is not the
 * verifier's and is ignored. On failure *exception_type is
 * RewardFileNotFoundError, RewardFileEmptyError or VerifierOutputParseError. rf
 * (may be NULL) says which file was read. */
int trial_parse_rewards(const struct cdir *verifier, double not_before, cJSON **rewards,
                        struct reward_file *rf, const char **exception_type, struct err *err);

#endif
