/* rollout jobs resume|summarize|merge: continue a job, print its statistics from the
 * files alone, or combine shard directories into one job. */
#include "cli/cli.h"
#include "config/job_config.h"
#include "core/job_run.h"
#include "core/metrics.h"
#include "core/progress.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char jobs_usage[] =
    "usage: rollout jobs COMMAND ...\n"
    "\n"
    "  rollout jobs resume [-p] DIR [-f TYPE]... [-q] [-y]\n"
    "        continue the job in DIR with its saved config: finished trials are kept;\n"
    "        unfinished, cancelled and crashed ones run again (-f TYPE: the trials\n"
    "        that ended with TYPE instead; see `rollout jobs resume --help`);\n"
    "        a rerun trial keeps the earlier attempt in TRIAL/.attempts/N\n"
    "  rollout jobs summarize DIR [--json]\n"
    "        statistics of the job in DIR, computed from its trial result files\n"
    "  rollout jobs merge -o OUT DIR...\n"
    "        combine the directories of a sharded job (`rollout run --shard I/N`)\n"
    "        into one job OUT with the statistics of an unsharded run\n";

/* Load DIR/config.json as a job config, with the name and place of DIR. */
static int load_job_dir_config(const char *dir, struct job_config *cfg, struct err *err)
{
	_cleanup_free_ char *path = path_join(dir, "config.json");
	_cleanup_free_ char *real = path_real(dir);
	_cleanup_cdir_ struct cdir jd = CDIR_INIT;
	struct stat st;
	char *slash;

	if (!real)
		return err_sys(err, "%s", dir);
	/* A job directory may come from anywhere: its config.json must be a plain
	 * file (not a link to a host file, not a FIFO). */
	if (cdir_open_trusted(dir, &jd, err) < 0)
		return -1;
	if (cdir_lstat(&jd, "config.json", &st) < 0 || !S_ISREG(st.st_mode))
		return err_set(err, ENOENT, "%s: no config.json (not a job directory)", dir);
	job_config_init(cfg);
	if (job_config_load(path, cfg, err) < 0)
		return -1;
	slash = strrchr(real, '/');
	free(cfg->job_name);
	cfg->job_name = xstrdup(slash + 1);
	*slash = '\0';
	{
		/* The saved spelling ("jobs") when it still names this place, so that
		 * config.json stays as it was. */
		_cleanup_free_ char *saved = path_resolved(cfg->jobs_dir);

		if (strcmp(saved, *real ? real : "/") != 0) {
			free(cfg->jobs_dir);
			cfg->jobs_dir = xstrdup(*real ? real : "/");
		}
	}
	return 0;
}

struct resume_cli {
	char *path;
	struct strv filters;
	struct cli_run_opts ro;
};

static void cleanup_resume_clip(struct resume_cli *r)
{
	free(r->path);
	strv_release(&r->filters);
}

#define RESUME(field) offsetof(struct resume_cli, field)

static const struct cli_option resume_options[] = {
    CLI_OPT('p', "path", NULL, "DIR", "the job directory (or give it as the argument)", cli_opt_str,
            RESUME(path)),
    CLI_OPT('f', "filter-error-type", "filter-error", "TYPE",
            "run again the trials that ended with this exception\n"
            "type (repeatable); replaces the default set:\n"
            "CancelledError, RolloutWorkerCrashError,\n"
            "TrialWatchdogError",
            cli_opt_strv, RESUME(filters)),
    CLI_OPT('q', "quiet", "silent", NULL, "no live display", cli_opt_true, RESUME(ro.quiet)),
    CLI_OPT('y', "yes", NULL, NULL,
            "let tasks read the host variables their templates\n"
            "name, as for `rollout run`",
            cli_opt_true, RESUME(ro.yes)),
    CLI_END,
};

static const char resume_usage[] =
    "usage: rollout jobs resume [-p] DIR [flags]\n"
    "\n"
    "Continue the job in DIR with its saved config: finished trials are kept;\n"
    "unfinished ones (no result, or an empty/truncated result.json) run again, and\n"
    "so do cancelled and crashed ones. Replaced trial directories are moved to\n"
    "DIR/.superseded/, not deleted. Running the job's `rollout run` command again\n"
    "does the same.\n"
    "\n";

static int jobs_resume(int argc, char **argv)
{
	_cleanup_strvs_ struct strv operands = STRV_INIT;
	__attribute__((cleanup(cleanup_resume_clip))) struct resume_cli rc_ = {0};
	_cleanup_job_config_ struct job_config cfg = {0};
	struct err err = {0};
	const char *dir;
	int rc;

	rc = cli_parse("jobs resume", resume_options, argc, argv, &rc_, resume_usage, NULL,
	               &operands);
	if (rc >= 0)
		return rc;
	if (operands.n + (rc_.path != NULL) != 1)
		return cli_usage_error("jobs resume", operands.n + (rc_.path != NULL) == 0
		                                          ? "missing DIR"
		                                          : "more than one DIR");
	dir = rc_.path ? rc_.path : operands.v[0];
	if (load_job_dir_config(dir, &cfg, &err) < 0)
		return cli_fail("%s", err.msg);
	/* The display is this command's: -q here, not the saved run's. */
	cfg.orchestrator.quiet = rc_.ro.quiet;
	rc_.ro.dir_named = true;
	if (rc_.filters.n)
		rc_.ro.rerun_errors = (const char *const *)strv_array(&rc_.filters);
	{
		/* A sharded job resumes as the same shard. */
		_cleanup_cdir_ struct cdir jd = CDIR_INIT;
		_cleanup_json_ cJSON *res = NULL;
		struct err ignored = {0};

		if (cdir_open_trusted(dir, &jd, &ignored) == 0 &&
		    json_load_at(&jd, "result.json", &res, &ignored) == 0) {
			const cJSON *sh = cJSON_GetObjectItemCaseSensitive(res, "shard");

			if (sh) {
				rc_.ro.shard_index = (int)json_get_num(sh, "index", 0);
				rc_.ro.shard_count = (int)json_get_num(sh, "count", 0);
			}
		}
	}
	return cli_run_job(&cfg, &rc_.ro);
}

/* Stats of a job directory from its files: config.json for the metrics, every
 * trial's result.json. */
static int dir_stats(const char *dir, cJSON **stats, int *n_total, struct err *err)
{
	_cleanup_cdir_ struct cdir jd = CDIR_INIT;
	_cleanup_json_ cJSON *cfg = NULL, *res = NULL;
	struct trial_result *results = NULL;
	struct trial_outcome *o;
	struct metric_spec *m = NULL;
	size_t n = 0, n_metrics = 0;
	int retries = 0;
	const cJSON *metrics, *mi;
	struct err ignored = {0};

	if (cdir_open_trusted(dir, &jd, err) < 0 || json_load_at(&jd, "config.json", &cfg, err) < 0)
		return err_wrap(err, "%s is not a job directory", dir);
	if (json_load_at(&jd, "result.json", &res, &ignored) == 0) {
		retries = (int)json_get_num(cJSON_GetObjectItemCaseSensitive(res, "stats"),
		                            "n_retries", 0);
		if (n_total)
			*n_total = (int)json_get_num(res, "n_total_trials", 0);
	}
	if (job_dir_load_results(dir, &results, &n) < 0)
		return err_sys(err, "read %s", dir);
	metrics = cJSON_GetObjectItemCaseSensitive(cfg, "metrics");
	m = xcalloc((size_t)cJSON_GetArraySize(metrics) + 1, sizeof(*m));
	cJSON_ArrayForEach(mi, metrics)
	{
		const char *type = json_get_str(mi, "type");

		m[n_metrics++].type = type ? type : "mean";
	}
	o = xcalloc(n + 1, sizeof(*o));
	for (size_t i = 0; i < n; i++)
		trial_outcome_from_result(&results[i], &o[i]);
	{
		/* Registry datasets' own metrics, recorded by the run in result.json. */
		const cJSON *dm = cJSON_GetObjectItemCaseSensitive(res, "dataset_metrics");
		size_t n_src = (size_t)cJSON_GetArraySize(dm), k = 0, n_specs = 0;
		struct source_metrics *sm = xcalloc(n_src + 1, sizeof(*sm));
		struct metric_spec *specs;
		const cJSON *src, *t;

		cJSON_ArrayForEach(src, dm) n_specs += (size_t)cJSON_GetArraySize(src);
		specs = xcalloc(n_specs + 1, sizeof(*specs));
		n_specs = 0;
		cJSON_ArrayForEach(src, dm)
		{
			sm[k].source = src->string;
			sm[k].metrics = &specs[n_specs];
			cJSON_ArrayForEach(t, src) if (cJSON_IsString(t)) specs[n_specs++].type =
			    t->valuestring;
			sm[k].n_metrics = (size_t)(&specs[n_specs] - sm[k].metrics);
			k++;
		}
		*stats = job_stats(o, n, m, n_metrics, sm, k, retries);
		free(sm);
		free(specs);
	}
	for (size_t i = 0; i < n; i++)
		trial_result_free(&results[i]);
	free(results);
	free(o);
	free(m);
	return 0;
}

static const struct cli_option summarize_options[] = {
    CLI_OPT(0, "json", NULL, NULL, "the statistics as JSON (what result.json holds)", cli_opt_true,
            0),
    CLI_END,
};

static int jobs_summarize(int argc, char **argv)
{
	_cleanup_strvs_ struct strv dirs = STRV_INIT;
	_cleanup_json_ cJSON *stats = NULL;
	struct err err = {0};
	bool json = false;
	int rc;

	rc = cli_parse("jobs summarize", summarize_options, argc, argv, &json,
	               "usage: rollout jobs summarize DIR [--json]\n\n"
	               "Statistics of the job in DIR, computed from its trials' result files.\n\n",
	               NULL, &dirs);
	if (rc >= 0)
		return rc;
	if (dirs.n != 1)
		return cli_usage_error("jobs summarize",
		                       dirs.n ? "more than one DIR" : "missing DIR");
	if (dir_stats(dirs.v[0], &stats, NULL, &err) < 0)
		return cli_fail("%s", err.msg);
	if (json) {
		_cleanup_sb_ struct strbuf sb = STRBUF_INIT;

		json_print(stats, &sb);
		puts(sb.buf);
	} else {
		job_print_summary(stdout, stats);
	}
	return EXIT_OK;
}

static const struct cli_option merge_options[] = {
    CLI_OPT('o', "output", NULL, "OUT", "the merged job directory (must not exist)", cli_opt_str,
            0),
    CLI_END,
};

static int jobs_merge_dirs(const char *out, char **argv, int argc);

static int jobs_merge(int argc, char **argv)
{
	_cleanup_strvs_ struct strv dirs = STRV_INIT;
	char *out = NULL;
	int rc;

	rc = cli_parse("jobs merge", merge_options, argc, argv, &out,
	               "usage: rollout jobs merge -o OUT DIR...\n\n"
	               "Combine the directories of a sharded job (`rollout run --shard I/N`) into\n"
	               "one job OUT with the statistics of an unsharded run.\n\n",
	               NULL, &dirs);
	if (rc < 0)
		rc = jobs_merge_dirs(out, dirs.v, (int)dirs.n);
	free(out);
	return rc;
}

/* The shard directories are argv[0..argc). */
static int jobs_merge_dirs(const char *out, char **argv, int argc)
{
	_cleanup_json_ cJSON *first_cfg = NULL;
	_cleanup_json_ cJSON *lock = NULL;
	_cleanup_json_ cJSON *stats = NULL;
	_cleanup_json_ cJSON *result = cJSON_CreateObject();
	_cleanup_cdir_ struct cdir outd = CDIR_INIT;
	struct err err = {0};
	int total = 0;
	char id[37], ts[ISO8601_LEN];

	if (!out)
		return cli_usage_error("jobs merge", "missing -o OUT");
	if (argc == 0)
		return cli_usage_error("jobs merge", "missing shard directories");
	if (path_exists(out))
		return cli_fail("%s already exists", out);
	/* Every shard must come from the same job config. */
	for (int i = 0; i < argc; i++) {
		_cleanup_cdir_ struct cdir jd = CDIR_INIT;
		cJSON *cfg = NULL;

		if (cdir_open_trusted(argv[i], &jd, &err) < 0 ||
		    json_load_at(&jd, "config.json", &cfg, &err) < 0)
			return cli_fail("%s is not a job directory: %s", argv[i], err.msg);
		if (!first_cfg) {
			first_cfg = cfg;
			continue;
		}
		{
			_cleanup_strvs_ struct strv diff = STRV_INIT;

			if (job_config_json_diff(first_cfg, cfg, &diff) > 0) {
				cJSON_Delete(cfg);
				return cli_fail("%s was run with a different config than %s: %s",
				                argv[i], argv[0], diff.v[0]);
			}
		}
		cJSON_Delete(cfg);
	}
	if (cdir_make_trusted(out, 0755, &outd, &err) < 0)
		return cli_fail("%s", err.msg);
	for (int i = 0; i < argc; i++) {
		_cleanup_cdir_ struct cdir shard = CDIR_INIT;
		_cleanup_strvs_ struct strv names = STRV_INIT;
		_cleanup_json_ cJSON *res = NULL;
		_cleanup_json_ cJSON *shard_lock = NULL;
		struct err no_lock = {0};

		if (cdir_open_trusted(argv[i], &shard, &err) < 0 ||
		    cdir_list(&shard, 1000000, &names, &err) < 0)
			return cli_fail("%s", err.msg);
		/* lock.json (Harbor's JobLock): the first shard's, with every shard's trials. */
		if (json_load_at(&shard, "lock.json", &shard_lock, &no_lock) == 0) {
			cJSON *trials = cJSON_GetObjectItemCaseSensitive(shard_lock, "trials");
			const cJSON *t;

			if (!lock) {
				lock = cJSON_Duplicate(shard_lock, 1);
				cJSON_ReplaceItemInObjectCaseSensitive(lock, "trials",
				                                       cJSON_CreateArray());
			}
			cJSON_ArrayForEach(t, trials)
			    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(lock, "trials"),
			                         cJSON_Duplicate(t, 1));
		}
		if (json_load_at(&shard, "result.json", &res, &err) == 0)
			total += (int)json_get_num(res, "n_total_trials", 0);
		for (size_t k = 0; k < names.n; k++) {
			_cleanup_cdir_ struct cdir t = CDIR_INIT;
			struct stat st;
			struct err ignored = {0};

			/* Shards are inputs: trial directories are copied confined (no
			 * link followed or kept pointing out, modes masked). */
			if (names.v[k][0] == '.' ||
			    cdir_sub(&shard, names.v[k], &t, &ignored) < 0 ||
			    cdir_lstat(&t, "config.json", &st) < 0 || !S_ISREG(st.st_mode))
				continue;
			if (cdir_exists(&outd, names.v[k]))
				return cli_fail("trial %s appears in two shards", names.v[k]);
			if (cdir_copy_tree(&shard, names.v[k], &outd, names.v[k], true, &err) < 0)
				return cli_fail("%s", err.msg);
		}
	}
	{
		_cleanup_free_ char *real = path_real(out);
		cJSON *name = cJSON_GetObjectItemCaseSensitive(first_cfg, "job_name");

		if (name)
			cJSON_SetValuestring(name, path_basename(real ? real : out));
	}
	if (json_write_at(&outd, "config.json", first_cfg, &err) < 0 ||
	    (lock && json_write_at(&outd, "lock.json", lock, &err) < 0))
		return cli_fail("%s", err.msg);
	if (dir_stats(out, &stats, NULL, &err) < 0)
		return cli_fail("%s", err.msg);
	uuid4(id);
	iso8601_format(wall_now(), ts, sizeof(ts));
	cJSON_AddStringToObject(result, "id", id);
	cJSON_AddStringToObject(result, "started_at", ts);
	cJSON_AddStringToObject(result, "updated_at", ts);
	cJSON_AddStringToObject(result, "finished_at", ts);
	cJSON_AddNumberToObject(result, "n_total_trials", total);
	cJSON_AddItemToObject(result, "stats", steal_ptr(&stats));
	if (json_write_at(&outd, "result.json", result, &err) < 0)
		return cli_fail("%s", err.msg);
	job_print_summary(stdout, cJSON_GetObjectItemCaseSensitive(result, "stats"));
	printf("merged %d shard%s into %s\n", argc, argc == 1 ? "" : "s", out);
	return EXIT_OK;
}

int cmd_jobs(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"resume", jobs_resume, "continue a job"},
	    {"summarize", jobs_summarize, "statistics of a job"},
	    {"merge", jobs_merge, "combine shard directories"},
	    {0},
	};

	return cli_dispatch("jobs", subs, argc, argv, jobs_usage);
}
