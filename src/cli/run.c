/* rollout run [JOB.yaml] [flags]: load the job file, apply the flags, run the job. */
#include "cli/cli.h"
#include "config/job.h"
#include "core/job.h"
#include "rollout/err.h"
#include "rollout/log.h"
#include "rollout/signals.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char run_usage[] =
    "usage: rollout run [JOB.yaml|JOB.json] [flags]\n"
    "       rollout JOB.yaml [flags]\n"
    "\n"
    "Run a job: every task x agent x attempt as one trial, several at once. Results\n"
    "go to JOBS_DIR/JOB_NAME/ in Harbor's layout. Running the same job (same\n"
    "--job-name and config) again resumes it: finished trials are kept.\n"
    "Flags override the job file.\n"
    "\n"
    "Tasks:\n"
    "  -p, --path PATH              a task, or a directory of tasks (replaces the file's "
    "datasets)\n"
    "  -t, --task-name GLOB         only tasks whose name matches (repeatable)\n"
    "  -x, --exclude-task-name GLOB skip tasks whose name matches (repeatable)\n"
    "  -l, --n-tasks N              at most N tasks (after the filters)\n"
    "Agents:\n"
    "  -a, --agent NAME             oracle, nop, claude-code, codex, aider, gemini-cli,\n"
    "                               goose, opencode, mini-swe-agent (replaces the file's agents)\n"
    "  -m, --model PROVIDER/MODEL   model for the agent; repeat for one agent per model\n"
    "Environment:\n"
    "  -e, --env sandbox|docker     environment provider (default sandbox)\n"
    "      --isolation full|chroot  the sandbox's isolation (default full). chroot is for\n"
    "                               hosts that forbid namespaces (a CI job's container,\n"
    "                               which is then the boundary): a copy of the image,\n"
    "                               chroot'ed into, no network isolation; see\n"
    "                               docs/SANDBOX.md \"Isolation levels\" and `rollout doctor`\n"
    "      --preserve-env POLICY    never (default), on_failure or always: keep environments\n"
    "                               for `rollout env`\n"
    "Job:\n"
    "  -c, --config FILE            the job file (same as the positional argument)\n"
    "  -n, --n-concurrent N         trials at once (default 4)\n"
    "  -k, --n-attempts N           attempts per task and agent (default 1)\n"
    "      --job-name NAME          default: the start time, YYYY-MM-DD__HH-MM-SS\n"
    "  -o, --jobs-dir DIR           default: jobs\n"
    "      --timeout-multiplier X   scale every phase timeout\n"
    "      --max-retries N          rerun failed trials up to N times (default 0)\n"
    "      --shard I/N              run only the I-th of N deterministic slices of the trials\n"
    "                               (I from 0); merge the slices with `rollout jobs merge`\n"
    "  -q, --quiet                  no progress output\n"
    "  -y, --yes                    let tasks read the host environment variables their\n"
    "                               ${VAR} templates name (else rollout lists them and asks\n"
    "                               on a terminal, or refuses; job file: allow_host_env)\n"
    "  -h, --help\n"
    "\n"
    "Exit status: 0 when the job ran (whatever the rewards), 1 when it could not run,\n"
    "2 for usage errors, 130 when interrupted (Ctrl-C/SIGTERM; run it again to resume).\n";

int cli_parse_shard(const char *s, int *index, int *count)
{
	char *end;
	long i = strtol(s, &end, 10), n;

	if (end == s || *end != '/')
		return -1;
	s = end + 1;
	n = strtol(s, &end, 10);
	if (end == s || *end || n < 1 || n > 100000 || i < 0 || i >= n)
		return -1;
	*index = (int)i;
	*count = (int)n;
	return 0;
}

int cli_run_job(struct job_config *cfg, const struct cli_run_opts *opts)
{
	struct job job = {0};
	struct err err = {0};
	int gc_removed, rc;

	signals_install_cancel();
	job.shard_index = opts->shard_index;
	job.shard_count = opts->shard_count;
	job.progress = opts->quiet || cfg->orchestrator.quiet ? PROGRESS_QUIET : PROGRESS_AUTO;
	if (getenv("ROLLOUT_PROGRESS") && strcmp(getenv("ROLLOUT_PROGRESS"), "lines") == 0 &&
	    job.progress != PROGRESS_QUIET)
		job.progress = PROGRESS_LINES;
	for (size_t i = 0; opts->rerun_errors && opts->rerun_errors[i]; i++)
		strv_push(&job.rerun_errors, opts->rerun_errors[i]);
	if (job.progress == PROGRESS_QUIET)
		log_set_quiet(1);
	/* The tasks first: what they would read from this host is asked about before
	 * anything is written. */
	if (job_load_tasks(&job, cfg, &err) < 0 ||
	    cli_confirm_host_env(&job, opts->yes, &err) < 0 || job_prepare(&job, cfg, &err) < 0) {
		job_release(&job);
		return cli_fail("%s", err.msg);
	}
	/* What a rollout killed earlier left behind goes before new work starts. */
	gc_removed = job.provider->gc(&err);
	if (gc_removed > 0)
		log_info("removed %d environment%s left by an earlier rollout", gc_removed,
		         gc_removed == 1 ? "" : "s");
	else if (gc_removed < 0 && cfg->environment.type == ENV_TYPE_DOCKER) {
		job_release(&job);
		return cli_fail("%s", err.msg);
	}
	if (job.resumed && job.progress != PROGRESS_QUIET)
		fprintf(stderr, "rollout: resuming %s\n", job.dir);
	rc = job_execute(&job, &err);
	if (rc < 0) {
		job_release(&job);
		return cli_fail("%s", err.msg);
	}
	rc = job.cancelled ? EXIT_CANCELLED : EXIT_OK;
	if (job.cancelled)
		fprintf(stderr, "rollout: interrupted; run the same command again to resume\n");
	job_release(&job);
	return rc;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"path", required_argument, NULL, 'p'},
	    {"dataset", required_argument, NULL, 'd'},
	    {"registry-path", required_argument, NULL, 6},
	    {"registry-url", required_argument, NULL, 7},
	    {"agent", required_argument, NULL, 'a'},
	    {"model", required_argument, NULL, 'm'},
	    {"env", required_argument, NULL, 'e'},
	    {"n-concurrent", required_argument, NULL, 'n'},
	    {"n-attempts", required_argument, NULL, 'k'},
	    {"job-name", required_argument, NULL, 1},
	    {"jobs-dir", required_argument, NULL, 'o'},
	    {"task-name", required_argument, NULL, 't'},
	    {"exclude-task-name", required_argument, NULL, 'x'},
	    {"n-tasks", required_argument, NULL, 'l'},
	    {"timeout-multiplier", required_argument, NULL, 2},
	    {"max-retries", required_argument, NULL, 3},
	    {"preserve-env", required_argument, NULL, 4},
	    {"shard", required_argument, NULL, 5},
	    {"isolation", required_argument, NULL, 8},
	    {"config", required_argument, NULL, 'c'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"yes", no_argument, NULL, 'y'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct job_overrides ov;
	struct job_config cfg;
	struct cli_run_opts ro = {0};
	const char *file = NULL;
	struct err err = {0};
	int c, rc;

	job_overrides_init(&ov);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:d:a:m:e:n:k:o:t:x:l:c:qyh", opts, NULL)) != -1) {
		const char *flag = NULL;

		switch (c) {
		case 'h':
			fputs(run_usage, stdout);
			job_overrides_release(&ov);
			return EXIT_OK;
		case 'c':
			if (file) {
				job_overrides_release(&ov);
				return cli_usage_error("run", "more than one job file");
			}
			file = optarg;
			continue;
		case 5:
			if (cli_parse_shard(optarg, &ro.shard_index, &ro.shard_count) < 0) {
				job_overrides_release(&ov);
				return cli_usage_error("run",
				                       "--shard expects I/N with 0 <= I < N, "
				                       "got '%s'",
				                       optarg);
			}
			continue;
		case 'q':
			ro.quiet = true;
			flag = "-q";
			break;
		case 'y':
			ro.yes = true;
			continue;
		case ':':
			job_overrides_release(&ov);
			return cli_usage_error("run", "option '%s' needs a value",
			                       argv[optind - 1]);
		case '?':
			job_overrides_release(&ov);
			return cli_usage_error("run", "unknown option '%s'", argv[optind - 1]);
		case 1:
			flag = "--job-name";
			break;
		case 2:
			flag = "--timeout-multiplier";
			break;
		case 3:
			flag = "--max-retries";
			break;
		case 4:
			flag = "--preserve-env";
			break;
		case 6:
			flag = "--registry-path";
			break;
		case 7:
			flag = "--registry-url";
			break;
		case 8:
			flag = "--isolation";
			break;
		default: {
			static char buf[3] = "-?";

			buf[1] = (char)c;
			flag = buf;
		}
		}
		if (job_overrides_set(&ov, flag, optarg, &err) < 0) {
			job_overrides_release(&ov);
			return cli_usage_error("run", "%s", err.msg);
		}
	}
	for (; optind < argc; optind++) {
		if (file) {
			job_overrides_release(&ov);
			return cli_usage_error("run", "unexpected argument '%s'", argv[optind]);
		}
		file = argv[optind];
	}
	job_config_init(&cfg);
	if (file && job_config_load(file, &cfg, &err) < 0) {
		job_config_release(&cfg);
		job_overrides_release(&ov);
		return cli_fail("%s", err.msg);
	}
	if (!file && !ov.path && !ov.dataset) {
		job_config_release(&cfg);
		job_overrides_release(&ov);
		return cli_usage_error("run", "give a job file, -p PATH or -d DATASET");
	}
	if (job_config_apply_overrides(&cfg, &ov, &err) < 0) {
		job_config_release(&cfg);
		job_overrides_release(&ov);
		return cli_fail("%s", err.msg);
	}
	job_overrides_release(&ov);
	rc = cli_run_job(&cfg, &ro);
	job_config_release(&cfg);
	return rc;
}
