/* rollout trial run -p TASK [-a AGENT] [-e PROVIDER] ...: one trial, in this process,
 * and its outcome printed. */
#include "core/trial.h"
#include "cli/cli.h"
#include "config/job.h"
#include "core/job.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char trial_usage[] =
    "usage: rollout trial run -p TASK [flags]\n"
    "\n"
    "Run one trial of TASK and print its outcome. The trial directory (Harbor's\n"
    "layout: config.json, result.json, trial.log, agent/, verifier/, artifacts/) goes\n"
    "to TRIALS_DIR/TRIAL_NAME.\n"
    "\n"
    "  -p, --path TASK              the task directory (required)\n"
    "  -a, --agent NAME             default oracle\n"
    "  -m, --model PROVIDER/MODEL\n"
    "  -e, --env sandbox|docker     default sandbox\n"
    "      --isolation full|chroot  the sandbox's isolation (default full; see `rollout run\n"
    "                               --help` and docs/SANDBOX.md \"Isolation levels\")\n"
    "      --trial-name NAME        default <task>__<7 random chars>\n"
    "      --trials-dir DIR         default trials\n"
    "      --timeout-multiplier X\n"
    "      --preserve-env POLICY    never (default), on_failure or always\n"
    "  -q, --quiet                  only the outcome line\n"
    "  -y, --yes                    let the task read the host environment variables its\n"
    "                               ${VAR} templates name (else asked on a terminal, or\n"
    "                               refused)\n"
    "\n"
    "Exit status: 0 when the trial ran (whatever its reward), 1 when it could not,\n"
    "2 for usage errors, 130 when interrupted.\n";

static int trial_run_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"path", required_argument, NULL, 'p'},
	    {"agent", required_argument, NULL, 'a'},
	    {"model", required_argument, NULL, 'm'},
	    {"env", required_argument, NULL, 'e'},
	    {"trial-name", required_argument, NULL, 1},
	    {"trials-dir", required_argument, NULL, 2},
	    {"timeout-multiplier", required_argument, NULL, 3},
	    {"preserve-env", required_argument, NULL, 4},
	    {"isolation", required_argument, NULL, 5},
	    {"quiet", no_argument, NULL, 'q'},
	    {"yes", no_argument, NULL, 'y'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct job_overrides ov;
	struct job_config cfg;
	struct job job = {0};
	struct trial_spec spec;
	struct trial_spec_scratch scratch;
	struct trial_result r;
	struct err err = {0};
	const char *trial_name = NULL, *trials_dir = "trials";
	bool quiet = false, yes = false;
	int c, rc = EXIT_OK;

	job_overrides_init(&ov);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:a:m:e:qyh", opts, NULL)) != -1) {
		const char *flag = NULL;

		switch (c) {
		case 'h':
			fputs(trial_usage, stdout);
			job_overrides_release(&ov);
			return EXIT_OK;
		case 'q':
			quiet = true;
			continue;
		case 'y':
			yes = true;
			continue;
		case 1:
			trial_name = optarg;
			continue;
		case 2:
			trials_dir = optarg;
			continue;
		case 3:
			flag = "--timeout-multiplier";
			break;
		case 4:
			flag = "--preserve-env";
			break;
		case 5:
			flag = "--isolation";
			break;
		case 'p':
			flag = "-p";
			break;
		case 'a':
			flag = "-a";
			break;
		case 'm':
			flag = "-m";
			break;
		case 'e':
			flag = "-e";
			break;
		case ':':
			job_overrides_release(&ov);
			return cli_usage_error("trial run", "option '%s' needs a value",
			                       argv[optind - 1]);
		default:
			job_overrides_release(&ov);
			return cli_usage_error("trial run", "unknown option '%s'",
			                       argv[optind - 1]);
		}
		if (job_overrides_set(&ov, flag, optarg, &err) < 0) {
			job_overrides_release(&ov);
			return cli_usage_error("trial run", "%s", err.msg);
		}
	}
	if (optind < argc) {
		job_overrides_release(&ov);
		return cli_usage_error("trial run", "unexpected argument '%s'", argv[optind]);
	}
	if (!ov.path) {
		job_overrides_release(&ov);
		return cli_usage_error("trial run", "missing -p TASK");
	}
	job_config_init(&cfg);
	if (job_config_apply_overrides(&cfg, &ov, &err) < 0 || cfg.n_agents != 1) {
		job_overrides_release(&ov);
		job_config_release(&cfg);
		return cli_fail("%s", err.msg[0] ? err.msg : "one agent per trial");
	}
	job_overrides_release(&ov);
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
	job_release(&job);
	job_config_release(&cfg);
	return rc;
}

int cmd_trial(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"run", trial_run_cmd, "run one trial"},
	    {0},
	};

	return cli_dispatch("trial", subs, argc, argv, trial_usage);
}
