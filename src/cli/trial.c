/* rollout trial run -p TASK [-a AGENT] [-e PROVIDER] ...: one trial, in this process,
 * and its outcome printed. */
#include "cli/cli.h"
#include "cli/job_overrides.h"
#include "cli/options.h"
#include "config/job_config.h"
#include "core/job_run.h"
#include "core/trial_run.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char trial_usage[] =
    "usage: rollout trial run -p TASK [flags]\n"
    "       rollout trials start -p TASK [flags]   (Harbor's spelling)\n"
    "\n"
    "Run one trial of TASK and print its outcome. The trial directory (Harbor's\n"
    "layout: config.json, result.json, trial.log, agent/, verifier/, artifacts/) goes\n"
    "to TRIALS_DIR/TRIAL_NAME.\n"
    "\n";

static const char trial_footer[] =
    "\n"
    "Exit status: 0 when the trial ran (whatever its reward), 1 when it could not,\n"
    "2 for usage errors, 130 when interrupted.\n";

/* What the flags of `rollout trial run` fill. */
struct trial_cli {
	struct job_overrides ov;
	char *trial_name, *trials_dir;
	bool quiet, yes;
};

static void cleanup_trial_clip(struct trial_cli *t)
{
	job_overrides_release(&t->ov);
	free(t->trial_name);
	free(t->trials_dir);
}

#define TRIAL(field) offsetof(struct trial_cli, field)

static const struct cli_option trial_options[] = {
    CLI_OPT('p', "path", NULL, "TASK", "the task directory (required)", cli_opt_str,
            TRIAL(ov.path)),
    CLI_OPT(0, "trial-name", NULL, "NAME", "default <task>__<7 random chars>", cli_opt_str,
            TRIAL(trial_name)),
    CLI_OPT(0, "trials-dir", NULL, "DIR", "default trials", cli_opt_str, TRIAL(trials_dir)),
    CLI_OPT('q', "quiet", NULL, NULL, "only the outcome line", cli_opt_true, TRIAL(quiet)),
    CLI_OPT('y', "yes", NULL, NULL,
            "let the task read the host environment variables its\n"
            "${VAR} templates name (else asked on a terminal, or\n"
            "refused)",
            cli_opt_true, TRIAL(yes)),
    CLI_INCLUDE(job_agent_env_options, TRIAL(ov)),
    CLI_END,
};

static int trial_run_cmd(int argc, char **argv)
{
	__attribute__((cleanup(cleanup_trial_clip))) struct trial_cli tc = {0};
	_cleanup_job_config_ struct job_config cfg = {0};
	_cleanup_job_ struct job job = {0};
	struct trial_spec spec;
	struct trial_spec_scratch scratch;
	struct trial_result r;
	struct err err = {0};
	const char *trial_name, *trials_dir;
	bool quiet, yes;
	int rc = EXIT_OK;

	job_overrides_init(&tc.ov);
	rc =
	    cli_parse("trial run", trial_options, argc, argv, &tc, trial_usage, trial_footer, NULL);
	if (rc < 0 && !tc.ov.path)
		rc = cli_usage_error("trial run", "missing -p TASK");
	if (rc >= 0)
		return rc;
	rc = EXIT_OK;
	trial_name = tc.trial_name;
	trials_dir = tc.trials_dir ? tc.trials_dir : "trials";
	quiet = tc.quiet;
	yes = tc.yes;
	job_config_init(&cfg);
	if (job_overrides_apply(&cfg, &tc.ov, &err) < 0 || cfg.n_agents != 1) {
		rc = cli_fail("%s", err.msg[0] ? err.msg : "one agent per trial");
		goto out;
	}
	signals_install_cancel();
	if (quiet)
		log_set_quiet(1);
	if (job_load_tasks(&job, &cfg, &err) < 0 || cli_confirm_host_env(&job, yes, &err) < 0) {
		rc = cli_fail("%s", err.msg);
		goto out;
	}
	if (job.n_tasks != 1) {
		rc =
		    cli_fail("%s is a directory of %zu tasks; give one task (or use `rollout run`)",
		             cfg.datasets[0].path, job.n_tasks);
		goto out;
	}
	job.dir = xstrdup(trials_dir);
	job_expand(&job);
	job_item_name(&job, &job.items[0], trial_name);
	{
		_cleanup_free_ char *tdir = path_join(trials_dir, job.items[0].trial_name);

		if (path_exists(tdir)) {
			rc = cli_fail("%s already exists", tdir);
			goto out;
		}
	}
	job_item_spec(&job, &job.items[0], &spec, &scratch);
	/* The provider's process-wide work (the sandbox's seccomp program), done
	 * before the trial as a job does before its trials. */
	if (spec.provider->prepare && spec.provider->prepare(&err) < 0) {
		trial_spec_scratch_release(&scratch);
		rc = cli_fail("%s provider: %s", spec.provider->name, err.msg);
		goto out;
	}
	if (trial_run(&spec, &r, &err) < 0) {
		trial_spec_scratch_release(&scratch);
		rc = cli_fail("%s", err.msg);
		goto out;
	}
	{
		_cleanup_free_ char *rewards = r.rewards ? cJSON_PrintUnformatted(r.rewards) : NULL;

		printf("%s: %s%s%s%s (%.1f s)\n", r.trial_name, rewards ? "rewards " : "",
		       rewards ? rewards : "", r.exception && rewards ? ", " : "",
		       r.exception ? r.exception->type : "", r.finished_at - r.started_at);
		if (r.exception && r.exception->message[0])
			printf("  %s\n", r.exception->message);
		printf("  %s\n", spec.trial_dir);
	}
	if (r.exception && !strcmp(r.exception->type, "CancelledError"))
		rc = EXIT_CANCELLED;
	trial_result_free(&r);
	trial_spec_scratch_release(&scratch);
out:
	return rc;
}

int cmd_trial(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"run", trial_run_cmd, "run one trial"},
	    {"start", trial_run_cmd, "the same (Harbor's `trials start`)"},
	    {0},
	};

	return cli_dispatch("trial", subs, argc, argv, trial_usage);
}
