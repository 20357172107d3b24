/* rollout run [JOB.yaml] [flags]: load the job file, apply the flags, run the job. */
#include "cli/cli.h"
#include "cli/job_overrides.h"
#include "cli/options.h"
#include "config/job_config.h"
#include "core/job_run.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/log.h"
#include "rollout/signals.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char run_usage[] =
    "usage: rollout run [JOB.yaml|JOB.json] [flags]\n"
    "       rollout JOB.yaml [flags]\n"
    "\n"
    "Run a job: every task x agent x attempt as one trial, several at once. Results\n"
    "go to JOBS_DIR/JOB_NAME/ in Harbor's layout. Running the same job (same\n"
    "--job-name and config) again resumes it: finished trials are kept; cancelled\n"
    "and crashed ones run again. Flags override the job file (Harbor's flags, same\n"
    "meanings).\n"
    "\n";

static const char run_footer[] =
    "\n"
    "Exit status: 0 when the job ran (whatever the rewards), 1 when it could not run,\n"
    "2 for usage errors, 130 when interrupted (Ctrl-C/SIGTERM; run it again to resume).\n";

/* What the flags of `rollout run` fill. */
struct run_cli {
	struct job_overrides ov;
	struct cli_run_opts ro;
	char *file;
};

static void cleanup_run_clip(struct run_cli *r)
{
	job_overrides_release(&r->ov);
	free(r->file);
}

static int opt_shard(const struct cli_option *o, const char *flag, const char *value, void *ctx,
                     struct err *err)
{
	struct cli_run_opts *ro = (void *)((char *)ctx + o->off);

	if (cli_parse_shard(value, &ro->shard_index, &ro->shard_count) < 0)
		return err_set(err, EINVAL, "%s expects I/N with 0 <= I < N, got '%s'", flag,
		               value);
	return 0;
}

#define RUN(field) offsetof(struct run_cli, field)

static const struct cli_option run_options[] = {
    CLI_INCLUDE(job_override_options, RUN(ov)),
    CLI_OPT('c', "config", NULL, "FILE", "the job file (same as the positional argument)",
            cli_opt_str, RUN(file)),
    CLI_OPT(0, "shard", NULL, "I/N",
            "run only the I-th of N deterministic slices of the trials\n"
            "(I from 0); merge the slices with `rollout jobs merge`",
            opt_shard, RUN(ro)),
    CLI_OPT('y', "yes", NULL, NULL,
            "let tasks read the host environment variables their\n"
            "${VAR} templates name (else rollout lists them and asks\n"
            "on a terminal, or refuses; job file: allow_host_env)",
            cli_opt_true, RUN(ro.yes)),
    CLI_END,
};

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
	job.dir_named = opts->dir_named;
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
	else if (gc_removed < 0 && job.provider->gc_must_succeed) {
		job_release(&job);
		return cli_fail("%s", err.msg);
	}
	if (job.resumed && job.progress != PROGRESS_QUIET) {
		_cleanup_free_ char *what = job_resume_summary(&job);

		fprintf(stderr, "rollout: resuming %s: %s\n", job.dir, what);
	}
	rc = job_execute(&job, &err);
	if (rc < 0) {
		job_release(&job);
		return cli_fail("%s", err.msg);
	}
	rc = job.cancelled ? EXIT_CANCELLED : EXIT_OK;
	if (job.cancelled)
		fprintf(stderr,
		        "rollout: interrupted; run the same command again (or `rollout jobs "
		        "resume %s`) to resume: cancelled trials run again\n",
		        job.dir);
	job_release(&job);
	return rc;
}

int cmd_run(int argc, char **argv)
{
	_cleanup_strvs_ struct strv operands = STRV_INIT;
	__attribute__((cleanup(cleanup_run_clip))) struct run_cli rc_ = {0};
	_cleanup_job_config_ struct job_config cfg = {0};
	struct err err = {0};
	const char *file;
	int rc;

	job_overrides_init(&rc_.ov);
	rc = cli_parse("run", run_options, argc, argv, &rc_, run_usage, run_footer, &operands);
	if (rc >= 0)
		return rc;
	if (operands.n + (rc_.file != NULL) > 1)
		return cli_usage_error("run", "unexpected argument '%s'",
		                       operands.v[operands.n - 1]);
	file = rc_.file ? rc_.file : operands.n ? operands.v[0] : NULL;
	job_config_init(&cfg);
	if (file && job_config_load(file, &cfg, &err) < 0)
		return cli_fail("%s", err.msg);
	if (!file && !rc_.ov.path && !rc_.ov.dataset)
		return cli_usage_error("run", "give a job file, -p PATH or -d DATASET");
	if (job_overrides_apply(&cfg, &rc_.ov, &err) < 0)
		return cli_fail("%s", err.msg);
	job_overrides_release(&rc_.ov);
	return cli_run_job(&cfg, &rc_.ro);
}
