/* The job orchestrator: expands trials, runs each in a forked worker (a crash or hang
 * stays in its worker), at most n_concurrent_trials at once, retries with backoff,
 * forwards cancellation, resumes, and keeps the job's result.json current. */
#include "core/job_run.h"
#include "agents/agent.h"
#include "config/dataset.h"
#include "config/dirhash.h"
#include "core/fetch.h"
#include "core/metrics.h"
#include "core/pids.h"
#include "core/progress.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/proc.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A worker that outlives the sum of its phase timeouts by this much is killed. */
#define WATCHDOG_MARGIN_SEC 300.0
#define WATCHDOG_GRACE_SEC 30.0

/* --- trial specs ------------------------------------------------------------ */

static double nan_to_unset(double v)
{
	return isnan(v) ? -1.0 : v;
}

static void env_list_to_strv(const struct env_list *l, struct strv *out)
{
	for (size_t i = 0; i < l->n; i++)
		strv_pushf(out, "%s=%s", l->v[i].name, l->v[i].value);
}

void trial_spec_scratch_release(struct trial_spec_scratch *s)
{
	strv_release(&s->agent_env);
	strv_release(&s->verifier_env);
	strv_release(&s->solution_env);
	strv_release(&s->task_env);
	strv_release(&s->artifact_sources);
	strv_release(&s->artifact_dests);
	free(s->trial_dir);
	memset(s, 0, sizeof(*s));
}

static long kwarg_long(const cJSON *kwargs, const char *key, long def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(kwargs, key);

	return cJSON_IsNumber(v) ? (long)v->valuedouble : def;
}

void job_item_spec(const struct job *job, const struct job_item *item, struct trial_spec *spec,
                   struct trial_spec_scratch *scratch)
{
	const struct job_config *cfg = job->cfg;
	const struct job_task *jt = &job->tasks[item->task];
	const struct task *t = jt->task;
	const struct task_config *tc = &t->config;
	const struct agent_config *ac = &cfg->agents[item->agent];
	const struct job_environment_config *ec = &cfg->environment;
	struct timeout_inputs in;
	const cJSON *version;
	int cpus, mem, storage;

	memset(spec, 0, sizeof(*spec));
	memset(scratch, 0, sizeof(*scratch));
	scratch->trial_dir = path_join(job->dir, item->trial_name);
	spec->trial_name = item->trial_name;
	spec->trial_dir = scratch->trial_dir;
	spec->job_name = cfg->job_name;
	spec->task_name = t->name;
	spec->task_dir = t->dir;
	spec->task_checksum = jt->checksum;
	spec->source = jt->source;
	spec->task_id = jt->task_id;
	spec->instruction = t->instruction;
	spec->instruction_path = t->instruction_path;
	spec->config_json = item->trial_config;
	spec->provider = job->provider;

	cpus = ec->override_cpus > 0 ? ec->override_cpus : tc->environment.cpus;
	mem = ec->override_memory_mb > 0 ? ec->override_memory_mb : tc->environment.memory_mb;
	storage =
	    ec->override_storage_mb > 0 ? ec->override_storage_mb : tc->environment.storage_mb;
	spec->env.environment_dir = t->environment_dir;
	spec->env.docker_image = tc->environment.docker_image;
	spec->env.force_build = ec->force_build;
	spec->env.cpus = cpus;
	spec->env.memory_bytes = (long long)mem << 20;
	spec->env.storage_bytes = (long long)storage << 20;
	spec->env.pids_limit = job->pids_limit;
	spec->env.allow_internet = tc->environment.allow_internet;
	env_list_to_strv(&tc->environment.env, &scratch->task_env);
	env_list_to_strv(&ec->env, &scratch->task_env);
	spec->env.env = (const char *const *)strv_array(&scratch->task_env);
	spec->env.workdir = tc->environment.workdir;
	spec->preserve = ec->preserve_env;

	spec->agent = ac->def; /* its kind was set when the config was bound */
	spec->agent_name = ac->name;
	spec->model_name = ac->model_name;
	env_list_to_strv(&ac->env, &scratch->agent_env);
	spec->agent_env = (const char *const *)strv_array(&scratch->agent_env);
	spec->agent_kwargs = ac->kwargs;
	version = cJSON_GetObjectItemCaseSensitive(ac->kwargs, "version");
	spec->agent_version = cJSON_IsString(version) ? version->valuestring : NULL;
	scratch->custom.install_script = ac->install;
	scratch->custom.run_template = ac->run;
	scratch->custom.host_command = ac->host_command;
	spec->custom = &scratch->custom;

	in.task_agent_timeout = tc->agent.timeout_sec;
	in.task_verifier_timeout = tc->verifier.timeout_sec;
	in.task_build_timeout = tc->environment.build_timeout_sec;
	in.agent_override = nan_to_unset(ac->override_timeout_sec);
	in.agent_max = nan_to_unset(ac->max_timeout_sec);
	in.agent_setup_override = nan_to_unset(ac->override_setup_timeout_sec);
	in.verifier_override = nan_to_unset(cfg->verifier.override_timeout_sec);
	in.verifier_max = nan_to_unset(cfg->verifier.max_timeout_sec);
	in.multiplier = cfg->timeout_multiplier;
	in.agent_multiplier = nan_to_unset(cfg->agent_timeout_multiplier);
	in.verifier_multiplier = nan_to_unset(cfg->verifier_timeout_multiplier);
	in.agent_setup_multiplier = nan_to_unset(cfg->agent_setup_timeout_multiplier);
	in.build_multiplier = nan_to_unset(cfg->environment_build_timeout_multiplier);
	trial_timeouts(&in, spec);

	spec->verifier_disabled = cfg->verifier.disable;
	env_list_to_strv(&tc->verifier.env, &scratch->verifier_env);
	spec->verifier_env = (const char *const *)strv_array(&scratch->verifier_env);
	env_list_to_strv(&tc->solution.env, &scratch->solution_env);
	spec->solution_env = (const char *const *)strv_array(&scratch->solution_env);

	for (size_t i = 0; i < cfg->n_artifacts; i++) {
		strv_push(&scratch->artifact_sources, cfg->artifacts[i].source);
		strv_push(&scratch->artifact_dests,
		          cfg->artifacts[i].destination ? cfg->artifacts[i].destination : "");
	}
	for (size_t i = 0; i < tc->n_artifacts; i++) {
		strv_push(&scratch->artifact_sources, tc->artifacts[i].source);
		strv_push(&scratch->artifact_dests,
		          tc->artifacts[i].destination ? tc->artifacts[i].destination : "");
	}
	spec->artifact_sources = (const char *const *)strv_array(&scratch->artifact_sources);
	spec->artifact_dests = (const char *const *)strv_array(&scratch->artifact_dests);
	spec->output_cap = (long long)kwarg_long(ec->kwargs, "output_limit_mb", 0) << 20;
}

/* --- expansion -------------------------------------------------------------- */

/* TrialConfig (Harbor's shape) for one item, built from the job's resolved config. */
static cJSON *trial_config_json(const struct job *job, const cJSON *job_json,
                                const struct job_item *item)
{
	const struct job_task *jt = &job->tasks[item->task];
	cJSON *tc = cJSON_CreateObject();
	cJSON *task = cJSON_AddObjectToObject(tc, "task");
	static const char *const copy_keys[] = {"timeout_multiplier",
	                                        "agent_timeout_multiplier",
	                                        "verifier_timeout_multiplier",
	                                        "agent_setup_timeout_multiplier",
	                                        "environment_build_timeout_multiplier",
	                                        NULL};

	cJSON_AddStringToObject(task, "path", jt->repo_path ? jt->repo_path : jt->task->dir);
	json_add_str_or_null(task, "git_url", jt->git_url);
	json_add_str_or_null(task, "git_commit_id", jt->git_commit_id);
	cJSON_AddFalseToObject(task, "overwrite");
	cJSON_AddNullToObject(task, "download_dir");
	json_add_str_or_null(task, "source", jt->source);
	json_add_str_or_null(tc, "trial_name", item->trial_name);
	cJSON_AddStringToObject(tc, "trials_dir", job->dir);
	for (const char *const *k = copy_keys; *k; k++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(job_json, *k);

		cJSON_AddItemToObject(tc, *k, v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
	}
	cJSON_AddItemToObject(
	    tc, "agent",
	    cJSON_Duplicate(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(job_json, "agents"),
	                                       (int)item->agent),
	                    1));
	cJSON_AddItemToObject(
	    tc, "environment",
	    cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(job_json, "environment"), 1));
	cJSON_AddItemToObject(
	    tc, "verifier",
	    cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(job_json, "verifier"), 1));
	cJSON_AddItemToObject(
	    tc, "artifacts",
	    cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(job_json, "artifacts"), 1));
	cJSON_AddStringToObject(tc, "job_id", job->id);
	return tc;
}

/* The config minus what differs between two runs of the same trial. */
static char *match_key(const cJSON *trial_config)
{
	_cleanup_json_ cJSON *c = cJSON_Duplicate(trial_config, 1);

	cJSON *task = cJSON_GetObjectItemCaseSensitive(c, "task");
	const char *path = json_get_str(task, "path");

	cJSON_DeleteItemFromObjectCaseSensitive(c, "trial_name");
	cJSON_DeleteItemFromObjectCaseSensitive(c, "job_id");
	cJSON_DeleteItemFromObjectCaseSensitive(c, "trials_dir");
	/* Trials of older rollouts wrote environment.type "sandbox". */
	job_environment_json_normalize(cJSON_GetObjectItemCaseSensitive(c, "environment"));
	/* A local task is the place it names, however it was spelled. */
	if (path && !json_get_str(task, "git_url")) {
		_cleanup_free_ char *abs = path_resolved(path);

		cJSON_ReplaceItemInObjectCaseSensitive(task, "path", cJSON_CreateString(abs));
	}
	return cJSON_PrintUnformatted(c);
}

/* Load a task directory. `git_url` (with its commit and repository path) records
 * where a fetched task came from, as Harbor's task_id does. */
static int load_task(struct job *job, const char *path, const char *source, const char *git_url,
                     const char *git_commit_id, const char *repo_path, struct err *err)
{
	struct job_task *jt;
	struct task *t = NULL;
	unsigned flags = job->cfg->verifier.disable ? TASK_NO_VERIFY : 0;

	if (task_load(path, flags, &t, err) < 0)
		return -1;
	job->tasks = xrealloc(job->tasks, (job->n_tasks + 1) * sizeof(*job->tasks));
	jt = &job->tasks[job->n_tasks++];
	memset(jt, 0, sizeof(*jt));
	jt->task = t;
	jt->source = source ? xstrdup(source) : NULL;
	jt->task_id = cJSON_CreateObject();
	if (git_url) {
		jt->git_url = xstrdup(git_url);
		jt->git_commit_id = git_commit_id ? xstrdup(git_commit_id) : NULL;
		jt->repo_path = xstrdup(repo_path ? repo_path : t->name);
		cJSON_AddStringToObject(jt->task_id, "git_url", jt->git_url);
		json_add_str_or_null(jt->task_id, "git_commit_id", jt->git_commit_id);
		cJSON_AddStringToObject(jt->task_id, "path", jt->repo_path);
	} else {
		cJSON_AddStringToObject(jt->task_id, "path", t->dir);
	}
	if (task_dirhash(t->dir, jt->checksum, err) < 0)
		return err_wrap(err, "task %s", t->name);
	return 0;
}

static int resolve_registry_dataset(struct job *job, const struct dataset_config *dc,
                                    struct err *err)
{
	struct registry_fetch rf = {0};
	struct job_source *src;
	int rc = 0;

	if (fetch_registry_dataset(dc, 0, &rf, err) < 0)
		return -1;
	for (size_t k = 0; k < rf.ds.n_tasks && rc == 0; k++) {
		const struct task_origin *o = &rf.origins[k];

		rc = load_task(job, rf.ds.tasks[k].path, rf.ds.name, o->git_url, o->git_commit_id,
		               o->repo_path, err);
	}
	if (rc == 0 && rf.n_metrics) {
		job->sources = xrealloc(job->sources, (job->n_sources + 1) * sizeof(*job->sources));
		src = &job->sources[job->n_sources++];
		memset(src, 0, sizeof(*src));
		src->name = xstrdup(rf.ds.name);
		for (size_t i = 0; i < rf.n_metrics; i++)
			strv_push(&src->types, rf.metrics[i].type ? rf.metrics[i].type : "mean");
	}
	registry_fetch_release(&rf);
	return rc;
}

static int resolve_tasks(struct job *job, struct err *err)
{
	const struct job_config *cfg = job->cfg;
	unsigned flags = cfg->verifier.disable ? TASK_NO_VERIFY : 0;

	for (size_t i = 0; i < cfg->n_datasets; i++) {
		const struct dataset_config *dc = &cfg->datasets[i];
		struct task_filter filter = task_filter_of(dc);
		struct dataset ds = {0};

		if (dc->is_registry) {
			if (resolve_registry_dataset(job, dc, err) < 0)
				return -1;
			continue;
		}
		if (dataset_resolve_local(dc->path, &filter, flags, &ds, err) < 0)
			return -1;
		for (size_t k = 0; k < ds.n_tasks; k++) {
			if (load_task(job, ds.tasks[k].path, ds.name, NULL, NULL, NULL, err) < 0) {
				dataset_release(&ds);
				return -1;
			}
		}
		dataset_release(&ds);
	}
	for (size_t i = 0; i < cfg->n_tasks; i++) {
		const struct task_ref_config *tr = &cfg->tasks[i];
		_cleanup_free_ char *dir = NULL;

		if (!tr->git_url) {
			if (load_task(job, tr->path, tr->source, NULL, NULL, NULL, err) < 0)
				return -1;
			continue;
		}
		if (fetch_git_task(tr, &dir, err) < 0)
			return -1;
		if (load_task(job, dir, tr->source, tr->git_url, tr->git_commit_id, tr->path, err) <
		    0)
			return -1;
	}
	if (job->n_tasks == 0)
		return err_set(err, EINVAL, "the job has no tasks");
	return 0;
}

static void expand(struct job *job, const cJSON *job_json)
{
	const struct job_config *cfg = job->cfg;
	size_t n = (size_t)cfg->n_attempts * job->n_tasks * cfg->n_agents;
	size_t k = 0;

	job->items = xcalloc(n ? n : 1, sizeof(*job->items));
	for (int attempt = 0; attempt < cfg->n_attempts; attempt++) {
		for (size_t t = 0; t < job->n_tasks; t++) {
			for (size_t a = 0; a < cfg->n_agents; a++) {
				struct job_item *it = &job->items[k];

				it->task = t;
				it->agent = a;
				it->attempt = attempt;
				it->state = ITEM_PENDING;
				if (job->shard_count > 1 &&
				    (int)(k % (size_t)job->shard_count) != job->shard_index)
					it->state = ITEM_SKIPPED;
				it->trial_config = trial_config_json(job, job_json, it);
				it->match_key = match_key(it->trial_config);
				k++;
			}
		}
	}
	job->n_items = n;
}

static void item_set_name(struct job *job, struct job_item *it, const char *name)
{
	free(it->trial_name);
	it->trial_name = xstrdup(name);
	cJSON_ReplaceItemInObjectCaseSensitive(it->trial_config, "trial_name",
	                                       cJSON_CreateString(name));
	(void)job;
}

/* At most this many entries in a job directory (a bound on what resume reads). */
#define JOB_MAX_ENTRIES 1000000

/* Move a trial directory aside instead of deleting it: nothing is ever lost. */
static int move_aside(const struct job *job, const char *name, const char *why, struct err *err)
{
	_cleanup_cdir_ struct cdir aside = CDIR_INIT;

	/* The job directory may hold anything an input planted: a link in place of
	 * .superseded is replaced by a directory, never followed. */
	if (cdir_mkdirs(&job->cd, why, 0755, true, &aside, err) < 0)
		return -1;
	for (int n = 1; n < 100000; n++) {
		_cleanup_free_ char *to = xasprintf("%s.%d", name, n);

		if (cdir_rename(&job->cd, name, &aside, to, false, err) == 0)
			return 0;
		if (err->code != EEXIST && err->code != ENOTEMPTY)
			return -1;
		err_clear(err);
	}
	return err_set(err, EEXIST, "%s/%s: no free name", aside.path, name);
}

/* Keep a trial directory's earlier attempt inside the directory that reruns it:
 * NAME becomes NAME/.attempts/<n> (n = 1, 2, ... oldest first, the chain the old
 * one held moving along). Harbor's resume deletes every subdirectory of the job
 * without a result.json (.retried/ and .superseded/ were), yet never looks inside
 * a trial directory; its viewer shows them as the trial's files. The new NAME gets
 * the old config.json, so that if it never starts it is still a known trial. */
static int keep_attempt(const struct job *job, const char *name, struct err *err)
{
	_cleanup_free_ char *hold = xasprintf(".%s.attempt", name);
	_cleanup_cdir_ struct cdir old = CDIR_INIT;
	_cleanup_cdir_ struct cdir fresh = CDIR_INIT;
	_cleanup_cdir_ struct cdir attempts = CDIR_INIT;
	_cleanup_free_ char *cfg = NULL;
	size_t cfg_len = 0;
	struct err ignored = {0};

	if (cdir_remove(&job->cd, hold, err) < 0 ||
	    cdir_rename(&job->cd, name, &job->cd, hold, false, err) < 0)
		return -1;
	if (cdir_sub(&job->cd, hold, &old, err) < 0 ||
	    cdir_mkdirs(&job->cd, name, 0755, false, &fresh, err) < 0)
		return -1;
	if (cdir_exists(&old, ".attempts") &&
	    cdir_rename(&old, ".attempts", &fresh, ".attempts", false, err) < 0)
		return -1;
	if (cdir_mkdirs(&fresh, ".attempts", 0755, true, &attempts, err) < 0)
		return -1;
	if (cdir_read(&old, "config.json", 1 << 24, &cfg, &cfg_len, &ignored) == 0 &&
	    cdir_write_atomic(&fresh, "config.json", cfg, cfg_len, 0644, err) < 0)
		return -1;
	for (int n = 1; n < 100000; n++) {
		char to[16];

		snprintf(to, sizeof(to), "%d", n);
		if (cdir_rename(&job->cd, hold, &attempts, to, false, err) == 0)
			return 0;
		if (err->code != EEXIST && err->code != ENOTEMPTY)
			return -1;
		err_clear(err);
	}
	return err_set(err, EEXIST, "%s/.attempts: no free name", fresh.path);
}

/* A trial directory of the job, as a confined handle; false when the entry is
 * not a plain directory holding a config.json (links are never followed). */
static bool open_trial_dir(const struct cdir *jobdir, const char *name, struct cdir *out)
{
	struct err ignored = {0};
	struct stat st;

	if (cdir_sub(jobdir, name, out, &ignored) < 0)
		return false;
	if (cdir_lstat(out, "config.json", &st) < 0 || !S_ISREG(st.st_mode)) {
		cdir_release(out);
		return false;
	}
	return true;
}

const char *const job_rerun_default[] = {"CancelledError", "RolloutWorkerCrashError",
                                         "TrialWatchdogError", NULL};

/* Does a trial that ended with `type` run again on resume? */
static bool rerun_wanted(const struct job *job, const char *type)
{
	if (job->rerun_errors.n)
		return strv_contains(&job->rerun_errors, type);
	for (const char *const *t = job_rerun_default; *t; t++)
		if (!strcmp(*t, type))
			return true;
	return false;
}

static void count_rerun(struct job *job, const char *type)
{
	if (!strcmp(type, "CancelledError"))
		job->resume.cancelled++;
	else if (!strcmp(type, "RolloutWorkerCrashError") || !strcmp(type, "TrialWatchdogError"))
		job->resume.crashed++;
	else
		job->resume.failed++;
}

/* Pair existing trial directories with the expanded items: finished trials are
 * adopted; an unfinished one (or one ending with a rerun type) lends its name to a
 * pending item of the same config, which reruns it keeping it as an earlier
 * attempt (keep_attempt); anything else is moved to .superseded/. */
static int adopt_existing(struct job *job, struct err *err)
{
	_cleanup_strvs_ struct strv names = STRV_INIT;
	_cleanup_strvs_ struct strv rerun = STRV_INIT; /* unfinished: name, then key */

	if (cdir_list(&job->cd, JOB_MAX_ENTRIES, &names, err) < 0)
		return err_wrap(err, "resume");
	for (size_t n = 0; n < names.n; n++) {
		const char *name = names.v[n];
		_cleanup_free_ char *key = NULL;
		_cleanup_json_ cJSON *tc = NULL;
		_cleanup_cdir_ struct cdir tdir = CDIR_INIT;
		struct trial_result r;
		struct err why = {0};
		enum result_status st;
		bool adopted = false;
		struct err ignored_err = {0};

		if (name[0] == '.' || !open_trial_dir(&job->cd, name, &tdir))
			continue;
		st = trial_result_load(&tdir, &r, &why);
		if (st == RESULT_OK && r.exception && rerun_wanted(job, r.exception->type)) {
			err_set(&why, 0, "it ended with %s", r.exception->type);
			count_rerun(job, r.exception->type);
			trial_result_free(&r);
			st = RESULT_CORRUPT;
		} else if (st != RESULT_OK) {
			job->resume.unfinished++;
		}
		if (json_load_at(&tdir, "config.json", &tc, &ignored_err) == 0)
			key = match_key(tc);
		if (st == RESULT_OK && key) {
			for (size_t i = 0; i < job->n_items; i++) {
				struct job_item *it = &job->items[i];

				if (it->state != ITEM_PENDING && it->state != ITEM_SKIPPED)
					continue;
				if (it->has_result || it->trial_name ||
				    strcmp(it->match_key, key) != 0)
					continue;
				item_set_name(job, it, name);
				it->result = r;
				it->has_result = true;
				it->state = ITEM_DONE;
				adopted = true;
				break;
			}
		}
		if (adopted) {
			job->resume.kept++;
			continue;
		}
		if (st == RESULT_OK)
			trial_result_free(&r);
		else
			log_info("trial %s did not finish (%s): it runs again", name, why.msg);
		if (st != RESULT_OK && key) {
			strv_push(&rerun, name);
			strv_push(&rerun, key);
		} else if (move_aside(job, name, ".superseded", err) < 0) {
			return -1;
		}
	}
	for (size_t n = 0; n + 1 < rerun.n; n += 2) {
		struct job_item *to = NULL;

		for (size_t i = 0; i < job->n_items && !to; i++) {
			struct job_item *it = &job->items[i];

			if ((it->state == ITEM_PENDING || it->state == ITEM_SKIPPED) &&
			    !it->has_result && !it->trial_name &&
			    strcmp(it->match_key, rerun.v[n + 1]) == 0)
				to = it;
		}
		if (!to) {
			if (move_aside(job, rerun.v[n], ".superseded", err) < 0)
				return -1;
			continue;
		}
		item_set_name(job, to, rerun.v[n]);
		if (keep_attempt(job, rerun.v[n], err) < 0)
			return -1;
	}
	return 0;
}

/* One rollout per job directory: a second one (or a resume while the job runs)
 * would move the first one's trials aside under it. The lock dies with its owner. */
static int job_lock_dir(struct job *job, struct err *err)
{
	char pid[32] = "";
	int fd = cdir_lockfile(&job->cd, ".lock", err);

	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);

		close(fd);
		if (n > 0)
			pid[n] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (pid[0])
			return err_set(err, EBUSY,
			               "job %s is being run by another rollout process (pid %.20s)",
			               job->dir, pid);
		return err_set(err, EBUSY, "job %s is being run by another rollout process",
		               job->dir);
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == 0)
		(void)!pwrite(fd, pid, strlen(pid), 0);
	job->lock_fd = fd;
	return 0;
}

/* Each trial's pids limit: environment.kwargs.pids_limit or the default, lowered so
 * that the job's concurrent trials leave the host its reserve (core/pids.h). */
static long job_pids_limit(const struct job_config *cfg)
{
	long wanted = kwarg_long(cfg->environment.kwargs, "pids_limit", PIDS_LIMIT_DEFAULT);
	long capacity = pids_host_capacity();
	int n = cfg->orchestrator.n_concurrent_trials;
	bool lowered;
	long limit = pids_limit_size(wanted, n, capacity, &lowered);
	long left = capacity - limit * (n > 0 ? n : 1);
	char asked[32] = "no limit";

	if (wanted > 0)
		snprintf(asked, sizeof(asked), "%ld", wanted);
	if (lowered && left < pids_reserve(capacity))
		log_warn("pids limit per trial: %ld (the least rollout gives), yet %d trials at "
		         "once may use %ld of the host's %ld pids, more than leaves it %ld: lower "
		         "n_concurrent_trials or raise kernel.pid_max",
		         limit, n, capacity - left, capacity, pids_reserve(capacity));
	else if (lowered)
		log_info("pids limit per trial: %ld instead of %s, so that %d trials at once leave "
		         "%ld of the host's %ld pids free (kernel.pid_max, kernel.threads-max)",
		         limit, asked, n, left, capacity);
	return limit;
}

int job_load_tasks(struct job *job, struct job_config *cfg, struct err *err)
{
	job->cfg = cfg;
	job->pids_limit = job_pids_limit(cfg);
	job->provider = provider_for(env_type_name(cfg->environment.type),
	                             env_isolation_name(cfg->environment.isolation), err);
	if (!job->provider)
		return -1;
	uuid4(job->id);
	return resolve_tasks(job, err);
}

void job_expand(struct job *job)
{
	_cleanup_json_ cJSON *job_json = job_config_to_json(job->cfg);

	expand(job, job_json);
}

void job_item_name(struct job *job, struct job_item *it, const char *name)
{
	if (name) {
		item_set_name(job, it, name);
	} else {
		_cleanup_free_ char *fresh = trial_name_new(job->tasks[it->task].task->name);

		item_set_name(job, it, fresh);
	}
}

/* Harbor's JobLock (lock.json, schema 3): the concurrency, the retry policy and
 * every trial's TrialLock, which each trial also writes to its own lock.json. */
static int job_write_lock(const struct job *job, struct err *err)
{
	_cleanup_json_ cJSON *lock = cJSON_CreateObject();
	_cleanup_json_ cJSON *job_json = job_config_to_json(job->cfg);
	cJSON *trials, *r;
	char ts[ISO8601_LEN];

	cJSON_AddNumberToObject(lock, "schema_version", 3);
	iso8601_format(wall_now(), ts, sizeof(ts));
	cJSON_AddStringToObject(lock, "created_at", ts);
	/* Harbor's own version and commit: not Harbor, so none (rollout's beside it). */
	cJSON_AddObjectToObject(lock, "harbor");
	r = cJSON_AddObjectToObject(lock, "rollout");
	cJSON_AddStringToObject(r, "version", ROLLOUT_VERSION);
	cJSON_AddNumberToObject(lock, "n_concurrent_trials",
	                        job->cfg->orchestrator.n_concurrent_trials);
	cJSON_AddItemToObject(
	    lock, "retry",
	    cJSON_Duplicate(
	        cJSON_GetObjectItemCaseSensitive(
	            cJSON_GetObjectItemCaseSensitive(job_json, "orchestrator"), "retry"),
	        1));
	trials = cJSON_AddArrayToObject(lock, "trials");
	for (size_t i = 0; i < job->n_items; i++) {
		const struct job_item *it = &job->items[i];
		const struct job_task *jt = &job->tasks[it->task];

		if (it->state == ITEM_SKIPPED)
			continue;
		cJSON_AddItemToArray(
		    trials, trial_lock_json(it->trial_config, jt->task->name, jt->checksum));
	}
	return json_write_at(&job->cd, "lock.json", lock, err);
}

int job_prepare(struct job *job, struct job_config *cfg, struct err *err)
{
	_cleanup_json_ cJSON *job_json = NULL;

	/* The caller may have loaded the tasks already (to vet them before anything is
	 * written). */
	if (!job->cfg && job_load_tasks(job, cfg, err) < 0)
		return -1;
	job->dir = path_join(cfg->jobs_dir, cfg->job_name);
	if (cdir_make_trusted(job->dir, 0755, &job->cd, err) < 0 || job_lock_dir(job, err) < 0)
		return -1;
	/* Trial directories are unrelated trees, rewritten atomically as they go. */
	dir_mark_topdir(job->dir);
	job_json = job_config_to_json(cfg);
	if (cdir_exists(&job->cd, "config.json")) {
		_cleanup_json_ cJSON *old = NULL;
		_cleanup_json_ cJSON *old_result = NULL;
		_cleanup_strvs_ struct strv diff = STRV_INIT;
		struct strbuf msg = STRBUF_INIT;
		struct err ignored = {0};
		const char *old_id;

		if (json_load_at(&job->cd, "config.json", &old, err) < 0)
			return err_wrap(err, "resume %s", job->dir);
		if (job->dir_named && cJSON_IsObject(old))
			cJSON_ReplaceItemInObjectCaseSensitive(old, "jobs_dir",
			                                       cJSON_CreateString(cfg->jobs_dir));
		if (job_config_json_diff(old, job_json, &diff) > 0) {
			for (size_t i = 0; i < diff.n; i++)
				sb_addf(&msg, "\n  %s", diff.v[i]);
			err_set(err, EEXIST,
			        "%s exists with a different config; use another --job-name or "
			        "remove it. Differences (old -> new):%s",
			        job->dir, sb_str(&msg));
			sb_release(&msg);
			return -1;
		}
		/* The job keeps its id across resumes. */
		if (json_load_at(&job->cd, "result.json", &old_result, &ignored) == 0) {
			old_id = json_get_str(old_result, "id");
			if (old_id && strlen(old_id) == 36)
				memcpy(job->id, old_id, 37);
		}
		job->resumed = true;
	}
	expand(job, job_json);
	if (job->resumed && adopt_existing(job, err) < 0)
		return -1;
	for (size_t i = 0; i < job->n_items; i++)
		if (!job->items[i].trial_name)
			job_item_name(job, &job->items[i], NULL);
	if (json_write_at(&job->cd, "config.json", job_json, err) < 0)
		return -1;
	return job_write_lock(job, err);
}

char *job_resume_summary(const struct job *job)
{
	const struct job_resume_counts *c = &job->resume;
	size_t pending = 0, again = c->cancelled + c->crashed + c->failed + c->unfinished;
	struct strbuf sb = STRBUF_INIT;
	struct strv parts = STRV_INIT;

	for (size_t i = 0; i < job->n_items; i++)
		pending += job->items[i].state == ITEM_PENDING;
	sb_addf(&sb, "%zu trial%s kept", c->kept, c->kept == 1 ? "" : "s");
	if (c->cancelled)
		strv_pushf(&parts, "%zu cancelled", c->cancelled);
	if (c->crashed)
		strv_pushf(&parts, "%zu crashed", c->crashed);
	if (c->failed)
		strv_pushf(&parts, "%zu failed (--filter-error-type)", c->failed);
	if (c->unfinished)
		strv_pushf(&parts, "%zu unfinished", c->unfinished);
	for (size_t i = 0; i < parts.n; i++)
		sb_addf(&sb, "%s%s", i == 0 ? ", " : i + 1 == parts.n ? " and " : ", ", parts.v[i]);
	if (parts.n)
		sb_adds(&sb, " will run again");
	sb_addf(&sb, ", %zu not started", pending > again ? pending - again : 0);
	strv_release(&parts);
	return sb_detach(&sb);
}

/* --- results ------------------------------------------------------------------ */

cJSON *job_compute_stats(const struct job *job)
{
	struct trial_outcome *o = xcalloc(job->n_items ? job->n_items : 1, sizeof(*o));
	struct metric_spec *m = xcalloc(job->cfg->n_metrics ? job->cfg->n_metrics : 1, sizeof(*m));
	size_t n = 0;
	cJSON *stats;

	for (size_t i = 0; i < job->n_items; i++)
		if (job->items[i].has_result)
			trial_outcome_from_result(&job->items[i].result, &o[n++]);
	struct source_metrics *sm = xcalloc(job->n_sources + 1, sizeof(*sm));
	struct metric_spec *specs;
	size_t n_specs = 0, k = 0;

	for (size_t i = 0; i < job->n_sources; i++)
		n_specs += job->sources[i].types.n;
	specs = xcalloc(n_specs + 1, sizeof(*specs));
	for (size_t i = 0; i < job->n_sources; i++) {
		sm[i].source = job->sources[i].name;
		sm[i].metrics = &specs[k];
		sm[i].n_metrics = job->sources[i].types.n;
		for (size_t j = 0; j < job->sources[i].types.n; j++)
			specs[k++].type = job->sources[i].types.v[j];
	}
	for (size_t i = 0; i < job->cfg->n_metrics; i++)
		m[i].type = job->cfg->metrics[i].type;
	stats = job_stats(o, n, m, job->cfg->n_metrics, sm, job->n_sources, job->n_retries);
	free(o);
	free(m);
	free(sm);
	free(specs);
	return stats;
}

static size_t job_total(const struct job *job)
{
	size_t n = 0;

	for (size_t i = 0; i < job->n_items; i++)
		n += job->items[i].state != ITEM_SKIPPED;
	return n;
}

static size_t job_pending(const struct job *job)
{
	size_t n = 0;

	for (size_t i = 0; i < job->n_items; i++)
		n += job->items[i].state == ITEM_PENDING;
	return n;
}

int job_write_result(const struct job *job, bool final, struct err *err)
{
	_cleanup_json_ cJSON *j = cJSON_CreateObject();
	char ts[ISO8601_LEN];
	size_t running = 0, pending = 0, cancelled = 0;

	cJSON_AddStringToObject(j, "id", job->id);
	iso8601_format(job->started_at, ts, sizeof(ts));
	cJSON_AddStringToObject(j, "started_at", ts);
	iso8601_format(wall_now(), ts, sizeof(ts));
	cJSON_AddStringToObject(j, "updated_at", ts);
	if (final)
		cJSON_AddStringToObject(j, "finished_at", ts);
	else
		cJSON_AddNullToObject(j, "finished_at");
	cJSON_AddNumberToObject(j, "n_total_trials", (double)job_total(job));
	for (size_t i = 0; i < job->n_items; i++) {
		const struct job_item *it = &job->items[i];

		running += it->state == ITEM_RUNNING;
		pending += it->state == ITEM_PENDING;
		cancelled += it->has_result && it->result.exception &&
		             !strcmp(it->result.exception->type, "CancelledError");
	}
	{
		cJSON *stats = job_compute_stats(job);

		cJSON_AddNumberToObject(stats, "n_running_trials", (double)running);
		cJSON_AddNumberToObject(stats, "n_pending_trials", (double)pending);
		cJSON_AddNumberToObject(stats, "n_cancelled_trials", (double)cancelled);
		cJSON_AddItemToObject(j, "stats", stats);
	}
	if (job->n_sources) {
		/* Registry datasets' metrics: `jobs summarize` reads them from here. */
		cJSON *dm = cJSON_AddObjectToObject(j, "dataset_metrics");

		for (size_t i = 0; i < job->n_sources; i++) {
			cJSON *list = cJSON_AddArrayToObject(dm, job->sources[i].name);

			for (size_t t = 0; t < job->sources[i].types.n; t++)
				cJSON_AddItemToArray(
				    list, cJSON_CreateString(job->sources[i].types.v[t]));
		}
	}
	if (job->shard_count > 1) {
		cJSON *s = cJSON_AddObjectToObject(j, "shard");

		cJSON_AddNumberToObject(s, "index", job->shard_index);
		cJSON_AddNumberToObject(s, "count", job->shard_count);
	}
	json_strip_terminal(j);
	return json_write_at(&job->cd, "result.json", j, err);
}

int job_dir_load_results(const char *dir, struct trial_result **out, size_t *n)
{
	_cleanup_cdir_ struct cdir jd = CDIR_INIT;
	_cleanup_strvs_ struct strv names = STRV_INIT;
	struct err err = {0};
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (cdir_open_trusted(dir, &jd, &err) < 0 ||
	    cdir_list(&jd, JOB_MAX_ENTRIES, &names, &err) < 0)
		return -1;
	for (size_t i = 0; i < names.n; i++) {
		_cleanup_cdir_ struct cdir tdir = CDIR_INIT;
		struct trial_result r;
		struct err why = {0};

		if (names.v[i][0] == '.' || cdir_sub(&jd, names.v[i], &tdir, &why) < 0)
			continue;
		switch (trial_result_load(&tdir, &r, &why)) {
		case RESULT_OK:
			if (*n == cap) {
				cap = cap ? cap * 2 : 64;
				*out = xrealloc(*out, cap * sizeof(**out));
			}
			(*out)[(*n)++] = r;
			break;
		case RESULT_CORRUPT:
			log_warn("%s", why.msg);
			break;
		case RESULT_MISSING:
			break;
		}
	}
	return 0;
}

/* --- the worker ----------------------------------------------------------------- */

/* One phase report, written whole (smaller than PIPE_BUF, so never interleaved). */
struct phase_report {
	pid_t pid;
	int phase;
};

/* SIGPIPE caught, not ignored: a write to the phase pipe after the orchestrator died
 * fails with EPIPE instead of killing the worker mid-teardown, and the programs a
 * worker starts get the default disposition back at exec. */
static void on_sigpipe(int sig)
{
	(void)sig;
}

static void worker_phase(void *ctx, int phase)
{
	struct job *job = ctx;
	struct phase_report r = {getpid(), phase};

	/* Non-blocking: a full pipe loses a display update, never stalls a trial. */
	(void)!write(job->phase_pipe[1], &r, sizeof(r));
}

/* The phases workers reported since the last call. */
static void read_phases(struct job *job)
{
	struct phase_report r;

	while (job->phase_pipe[0] > 0 && read(job->phase_pipe[0], &r, sizeof(r)) == sizeof(r)) {
		for (size_t i = 0; i < job->n_items; i++) {
			struct job_item *it = &job->items[i];

			if (it->state == ITEM_RUNNING && it->pid == r.pid) {
				it->phase = r.phase;
				it->phase_mono = mono_now();
			}
		}
	}
}

static void worker_main(struct job *job, struct job_item *it, pid_t parent)
{
	struct trial_spec spec;
	struct trial_spec_scratch scratch;
	struct trial_result r;
	struct err err = {0};
	int rc;

	/* Die (gracefully, through the cancel path) with the orchestrator. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);
	/* Own process group: a terminal's Ctrl-C reaches the orchestrator, which decides. */
	setpgid(0, 0);
	signal(SIGCHLD, SIG_DFL);
	sigaction(SIGPIPE, &(struct sigaction){.sa_handler = on_sigpipe, .sa_flags = SA_RESTART},
	          NULL);
	rollout_cancel_count = 0;
	signals_install_cancel();
	log_set_quiet(1);
	log_set_level(LOG_ERROR + 1);
	log_set_stderr_hook(NULL, NULL); /* the display is the orchestrator's */
	job_item_spec(job, it, &spec, &scratch);
	if (job->phase_pipe[1] > 0) {
		close(job->phase_pipe[0]);
		job->phase_pipe[0] = -1;
		spec.on_phase = worker_phase;
		spec.on_phase_ctx = job;
	}
	rc = trial_run(&spec, &r, &err);
	if (rc < 0)
		fprintf(stderr, "rollout: trial %s: %s\n", it->trial_name, err.msg);
	/* exit, not _exit: the worker ends as a program does. Its stdio is flushed
	 * (the parent flushed its own before forking) and the atexit handlers run:
	 * the sandbox's reaper finishes the teardowns of this trial's environment. */
	exit(rc < 0 ? 1 : 0);
}

static double retry_delay(const struct retry_config *rc, int attempt)
{
	double d = rc->min_wait_sec * pow(rc->wait_multiplier, attempt);

	return d < rc->max_wait_sec ? d : rc->max_wait_sec;
}

static bool should_retry(const struct job *job, const struct job_item *it)
{
	const struct retry_config *rc = &job->cfg->orchestrator.retry;
	const char *type;

	if (!it->has_result || !it->result.exception || it->retries >= rc->max_retries)
		return false;
	if (cancel_requested())
		return false;
	type = it->result.exception->type;
	if (strcmp(type, "CancelledError") == 0)
		return false;
	if (strv_contains(&rc->exclude_exceptions, type))
		return false;
	if (rc->has_include_exceptions && !strv_contains(&rc->include_exceptions, type))
		return false;
	return true;
}

static double phase_budget(const struct job *job, const struct job_item *it)
{
	struct trial_spec spec;
	struct trial_spec_scratch scratch;
	double total;

	job_item_spec(job, it, &spec, &scratch);
	if (spec.setup_timeout <= 0 || spec.install_timeout <= 0 || spec.agent_timeout <= 0 ||
	    spec.verifier_timeout <= 0)
		total = 0; /* a phase without a timeout: no watchdog */
	else
		total = spec.setup_timeout + spec.install_timeout + spec.agent_timeout +
		        spec.verifier_timeout + WATCHDOG_MARGIN_SEC;
	trial_spec_scratch_release(&scratch);
	return total;
}

/* What a worker starts from (util/proc runs it as the child's function). */
struct worker_start {
	struct job *job;
	struct job_item *it;
	pid_t parent;
};

static int worker_fn(void *arg)
{
	struct worker_start *w = arg;

	worker_main(w->job, w->it, w->parent);
	return 1;
}

/* Started through util/proc (its own process group, stdio flushed first); its
 * wait is not proc_finish: the orchestrator waits for all its workers at once
 * (reap's waitpid(-1)) and enforces their deadlines in watchdog(). */
static void launch(struct job *job, struct job_item *it)
{
	struct worker_start w = {job, it, getpid()};
	struct proc p = {.fn = worker_fn, .arg = &w, .new_pgroup = true};
	struct err err = {0};
	double budget = phase_budget(job, it);

	if (proc_start(&p, &err) < 0) {
		log_error("%s; retrying shortly", err.msg);
		it->not_before = mono_now() + 1;
		return;
	}
	it->pid = p.pid;
	it->state = ITEM_RUNNING;
	it->started_mono = mono_now();
	it->deadline = budget > 0 ? it->started_mono + budget : 0;
	it->term_sent = it->kill_sent = false;
	it->phase = -1;
	it->phase_mono = it->started_mono;
	log_debug("started %s (pid %d)", it->trial_name, (int)p.pid);
}

/* A worker that died without writing its result (crash, watchdog): write one. */
static void record_crash(struct job *job, struct job_item *it, int status)
{
	_cleanup_free_ char *tpath = path_join(job->dir, it->trial_name);
	_cleanup_cdir_ struct cdir tdir = CDIR_INIT;
	struct trial_spec spec;
	struct trial_spec_scratch scratch;
	struct err err = {0};
	struct trial_result *r = &it->result;

	job_item_spec(job, it, &spec, &scratch);
	trial_result_init(r);
	r->task_name = xstrdup(spec.task_name);
	r->trial_name = xstrdup(spec.trial_name);
	r->trial_uri = file_uri(tpath);
	r->task_id = cJSON_Duplicate(spec.task_id, 1);
	r->source = spec.source ? xstrdup(spec.source) : NULL;
	r->task_checksum = xstrdup(spec.task_checksum);
	r->config = cJSON_Duplicate(spec.config_json, 1);
	r->agent_name = xstrdup(spec.agent_name ? spec.agent_name : spec.agent->name);
	r->agent_version = xstrdup(spec.agent_version ? spec.agent_version : spec.agent->version);
	r->model_name = spec.model_name ? xstrdup(spec.model_name) : NULL;
	r->started_at = wall_now() - (mono_now() - it->started_mono);
	r->finished_at = wall_now();
	if (it->kill_sent || it->term_sent)
		trial_result_set_exception(
		    r, cancel_requested() ? "CancelledError" : "TrialWatchdogError",
		    "the trial worker did not finish in time and was killed");
	else if (WIFSIGNALED(status))
		trial_result_set_exception(r, "RolloutWorkerCrashError",
		                           "the trial worker was killed by signal %d",
		                           WTERMSIG(status));
	else
		trial_result_set_exception(
		    r, "RolloutWorkerCrashError",
		    "the trial worker exited with status %d without a result", WEXITSTATUS(status));
	if (cdir_mkdirs(&job->cd, it->trial_name, 0755, true, &tdir, &err) < 0 ||
	    trial_result_write(&tdir, r, &err) < 0)
		log_error("%s", err.msg);
	it->has_result = true;
	trial_spec_scratch_release(&scratch);
	/* Its environment may still exist: its owner is gone, so gc takes it. */
	if (job->provider->gc(&err) < 0)
		log_warn("gc after crashed trial: %s", err.msg);
}

static void reap(struct job *job, struct progress *prog)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		struct job_item *it = NULL;
		_cleanup_cdir_ struct cdir tdir = CDIR_INIT;
		struct err why = {0};

		if (pid <= 0)
			return;
		for (size_t i = 0; i < job->n_items; i++)
			if (job->items[i].state == ITEM_RUNNING && job->items[i].pid == pid)
				it = &job->items[i];
		if (!it)
			continue;
		it->state = ITEM_DONE;
		it->pid = 0;
		if (it->has_result)
			trial_result_free(&it->result);
		it->has_result = false;
		if (cdir_sub(&job->cd, it->trial_name, &tdir, &why) == 0 &&
		    trial_result_load(&tdir, &it->result, &why) == RESULT_OK)
			it->has_result = true;
		else
			record_crash(job, it, status);
		if (should_retry(job, it)) {
			struct err err = {0};
			double delay = retry_delay(&job->cfg->orchestrator.retry, it->retries);

			log_info("%s: %s; retry %d of %d in %.1f s", it->trial_name,
			         it->result.exception->type, it->retries + 1,
			         job->cfg->orchestrator.retry.max_retries, delay);
			if (keep_attempt(job, it->trial_name, &err) < 0)
				log_error("%s", err.msg);
			trial_result_free(&it->result);
			it->has_result = false;
			it->retries++;
			job->n_retries++;
			it->state = ITEM_PENDING;
			it->not_before = mono_now() + delay;
			continue;
		}
		progress_trial_done(prog, job, it);
		job->result_dirty = true;
	}
}

/* The job's result.json is rewritten at most once a second while trials finish (it
 * is derived data: each trial's own result.json is already on disk, so a crash in
 * between loses nothing, and resume recomputes it); always when the job ends. */
#define RESULT_WRITE_INTERVAL_SEC 1.0

static void write_result_if_due(struct job *job, bool now)
{
	struct err err = {0};

	if (!job->result_dirty && !now)
		return;
	if (!now && mono_now() - job->result_written < RESULT_WRITE_INTERVAL_SEC)
		return;
	if (job_write_result(job, false, &err) < 0)
		log_error("%s", err.msg);
	job->result_dirty = false;
	job->result_written = mono_now();
}

static void watchdog(struct job *job)
{
	double now = mono_now();

	for (size_t i = 0; i < job->n_items; i++) {
		struct job_item *it = &job->items[i];

		if (it->state != ITEM_RUNNING || it->deadline <= 0 || now < it->deadline)
			continue;
		if (!it->term_sent) {
			log_error("%s: still running past every phase timeout; stopping it",
			          it->trial_name);
			kill(it->pid, SIGTERM);
			it->term_sent = true;
			it->deadline = now + WATCHDOG_GRACE_SEC;
		} else if (!it->kill_sent) {
			kill(it->pid, SIGKILL);
			it->kill_sent = true;
		}
	}
}

static void forward_cancel(struct job *job, int level)
{
	for (size_t i = 0; i < job->n_items; i++) {
		struct job_item *it = &job->items[i];

		if (it->state != ITEM_RUNNING)
			continue;
		/* 1st and 2nd signal: the worker tears down (faster the second time);
		 * a 3rd: kill outright and let gc clean up. */
		kill(it->pid, level >= 3 ? SIGKILL : SIGTERM);
		if (level >= 3)
			it->kill_sent = true;
	}
}

int job_execute(struct job *job, struct err *err)
{
	struct progress prog;
	int n = job->cfg->orchestrator.n_concurrent_trials;
	int forwarded = 0;
	sigset_t chld;

	if (n < 1)
		n = 1;
	job->started_at = wall_now();
	job->log_slot = log_open_fd(cdir_append(&job->cd, "job.log", 0644, NULL));
	log_info("job %s: %zu trials (%zu to run), %d at a time, provider %s", job->cfg->job_name,
	         job_total(job), job_pending(job), n, job->provider->name);
	if (job->provider->prepare && job->provider->prepare(err) < 0)
		return err_wrap(err, "%s provider", job->provider->name);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	if (pipe2(job->phase_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		job->phase_pipe[0] = job->phase_pipe[1] = -1; /* no phases shown: not fatal */
	progress_begin(&prog, job);
	if (job_write_result(job, false, err) < 0)
		goto out;
	for (;;) {
		size_t running = 0, pending = 0;
		double now = mono_now(), next_wake = now + 0.25;
		struct timespec ts;

		if (rollout_cancel_count > forwarded) {
			forwarded = rollout_cancel_count;
			job->cancelled = true;
			progress_note(&prog, forwarded == 1
			                         ? "cancelling: stopping running trials (Ctrl-C "
			                           "again to hurry)"
			                         : "cancelling faster");
			forward_cancel(job, forwarded);
		}
		for (size_t i = 0; i < job->n_items; i++) {
			struct job_item *it = &job->items[i];

			running += it->state == ITEM_RUNNING;
			pending += it->state == ITEM_PENDING;
		}
		for (size_t i = 0; i < job->n_items && !job->cancelled && (int)running < n; i++) {
			struct job_item *it = &job->items[i];

			if (it->state != ITEM_PENDING)
				continue;
			if (it->not_before > now) {
				if (it->not_before < next_wake)
					next_wake = it->not_before;
				continue;
			}
			launch(job, it);
			running += it->state == ITEM_RUNNING;
		}
		if (running == 0 && (pending == 0 || job->cancelled))
			break;
		progress_tick(&prog, job);
		/* Sleep until a worker exits or the next tick; signals interrupt it. */
		{
			double wait = next_wake - mono_now();

			if (wait < 0.001)
				wait = 0.001;
			ts.tv_sec = (time_t)wait;
			ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
			sigtimedwait(&chld, NULL, &ts);
		}
		read_phases(job);
		reap(job, &prog);
		write_result_if_due(job, false);
		watchdog(job);
	}
	if (job->cancelled) {
		/* Environments of trials that were never allowed to finish cleanly. */
		struct err gerr = {0};

		if (forwarded >= 3 && job->provider->gc(&gerr) < 0)
			log_warn("gc: %s", gerr.msg);
	}
	if (job_write_result(job, true, err) < 0)
		goto out;
	progress_end(&prog, job);
	sigprocmask(SIG_UNBLOCK, &chld, NULL);
	log_close_file(job->log_slot);
	return 0;
out:
	log_set_stderr_hook(NULL, NULL); /* the display's, on its way out */
	sigprocmask(SIG_UNBLOCK, &chld, NULL);
	log_close_file(job->log_slot);
	return -1;
}

void cleanup_jobp(struct job *job)
{
	job_release(job);
}

void job_release(struct job *job)
{
	for (size_t i = 0; i < job->n_tasks; i++) {
		task_free(job->tasks[i].task);
		free(job->tasks[i].source);
		cJSON_Delete(job->tasks[i].task_id);
		free(job->tasks[i].git_url);
		free(job->tasks[i].git_commit_id);
		free(job->tasks[i].repo_path);
	}
	free(job->tasks);
	for (size_t i = 0; i < job->n_sources; i++) {
		free(job->sources[i].name);
		strv_release(&job->sources[i].types);
	}
	free(job->sources);
	for (size_t i = 0; i < job->n_items; i++) {
		free(job->items[i].trial_name);
		cJSON_Delete(job->items[i].trial_config);
		free(job->items[i].match_key);
		if (job->items[i].has_result)
			trial_result_free(&job->items[i].result);
	}
	free(job->items);
	free(job->dir);
	cdir_release(&job->cd);
	strv_release(&job->rerun_errors);
	if (job->lock_fd > 0)
		close(job->lock_fd);
	for (int i = 0; i < 2; i++)
		if (job->phase_pipe[i] > 0)
			close(job->phase_pipe[i]);
	memset(job, 0, sizeof(*job));
}
