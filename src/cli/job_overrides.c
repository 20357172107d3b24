/* struct job_overrides (job_overrides.h): the flags' values applied to a loaded job
 * config, winning over the file, through config/'s setters. */
#include "cli/job_overrides.h"
#include "config/agent_table.h"
#include "config/job_config.h"
#include "config/registry.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void job_overrides_init(struct job_overrides *o)
{
	memset(o, 0, sizeof(*o));
	o->env_type = -1;
	o->override_cpus = -1;
	o->override_memory_mb = -1;
	o->override_storage_mb = -1;
	o->override_gpus = -1;
	o->n_concurrent = -1;
	o->n_attempts = -1;
	o->n_tasks = -1;
	o->timeout_multiplier = NAN;
	o->agent_timeout_multiplier = NAN;
	o->verifier_timeout_multiplier = NAN;
	o->agent_setup_timeout_multiplier = NAN;
	o->environment_build_timeout_multiplier = NAN;
	o->max_retries = -1;
	o->preserve_env = -1;
	o->isolation = -1;
}

void job_overrides_release(struct job_overrides *o)
{
	free(o->path);
	free(o->dataset);
	free(o->registry_path);
	free(o->registry_url);
	free(o->agent);
	strv_release(&o->models);
	cJSON_Delete(o->agent_kwargs);
	strv_release(&o->agent_env);
	cJSON_Delete(o->environment_kwargs);
	strv_release(&o->artifacts);
	free(o->job_name);
	free(o->jobs_dir);
	strv_release(&o->task_names);
	strv_release(&o->exclude_task_names);
	strv_release(&o->retry_include);
	strv_release(&o->retry_exclude);
	job_overrides_init(o);
}

void cleanup_job_overridesp(struct job_overrides *o)
{
	job_overrides_release(o);
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

static void apply_filters(struct dataset_config *d, const struct job_overrides *o)
{
	if (o->task_names.n) {
		strv_release(&d->task_names);
		for (size_t i = 0; i < o->task_names.n; i++)
			strv_push(&d->task_names, o->task_names.v[i]);
		d->has_task_names = true;
	}
	if (o->exclude_task_names.n) {
		strv_release(&d->exclude_task_names);
		for (size_t i = 0; i < o->exclude_task_names.n; i++)
			strv_push(&d->exclude_task_names, o->exclude_task_names.v[i]);
		d->has_exclude_task_names = true;
	}
	if (o->n_tasks > 0)
		d->n_tasks = o->n_tasks;
}

/* -a AGENT replaces the agents: one per -m MODEL (or one without a model). An
 * agent of that name defined in the file keeps its settings. -m alone gives
 * each agent of the file one copy per model. */
static int apply_agents(struct job_config *cfg, const struct job_overrides *o, struct err *err)
{
	struct agent_config base, *list;
	size_t n_models = o->models.n ? o->models.n : 1, n = 0;

	if (!o->agent && !o->models.n)
		return 0;
	if (o->agent) {
		const struct agent_config *def = NULL;

		for (size_t i = 0; i < cfg->n_agents; i++)
			if (cfg->agents[i].name && !strcmp(cfg->agents[i].name, o->agent))
				def = &cfg->agents[i];
		if (def) {
			agent_config_copy(&base, def);
		} else {
			const struct agent_def *builtin = agent_table_find(o->agent);

			if (!builtin) {
				_cleanup_free_ char *known = agent_builtin_names_joined();

				return err_set(
				    err, EINVAL,
				    "-a: unknown agent '%s' (known: %s; or define one in the "
				    "job file)",
				    o->agent, known);
			}
			agent_config_init(&base);
			base.name = xstrdup(o->agent);
			base.def = builtin;
		}
		list = xcalloc(n_models, sizeof(*list));
		for (size_t m = 0; m < n_models; m++) {
			agent_config_copy(&list[n], &base);
			if (o->models.n)
				set_str(&list[n].model_name, o->models.v[m]);
			n++;
		}
		agent_config_release(&base);
	} else {
		list = xcalloc(cfg->n_agents * n_models, sizeof(*list));
		for (size_t i = 0; i < cfg->n_agents; i++)
			for (size_t m = 0; m < n_models; m++) {
				agent_config_copy(&list[n], &cfg->agents[i]);
				set_str(&list[n].model_name, o->models.v[m]);
				n++;
			}
	}
	job_config_set_agents(cfg, list, n);
	return 0;
}

static void apply_multipliers(struct job_config *cfg, const struct job_overrides *o)
{
	if (!isnan(o->timeout_multiplier))
		cfg->timeout_multiplier = o->timeout_multiplier;
	if (!isnan(o->agent_timeout_multiplier))
		cfg->agent_timeout_multiplier = o->agent_timeout_multiplier;
	if (!isnan(o->verifier_timeout_multiplier))
		cfg->verifier_timeout_multiplier = o->verifier_timeout_multiplier;
	if (!isnan(o->agent_setup_timeout_multiplier))
		cfg->agent_setup_timeout_multiplier = o->agent_setup_timeout_multiplier;
	if (!isnan(o->environment_build_timeout_multiplier))
		cfg->environment_build_timeout_multiplier = o->environment_build_timeout_multiplier;
}

static void strv_replace(struct strv *dst, const struct strv *src)
{
	strv_release(dst);
	for (size_t i = 0; i < src->n; i++)
		strv_push(dst, src->v[i]);
}

/* As Harbor's CLI: each list given replaces the file's (the file's stays otherwise). */
static void apply_retry(struct retry_config *r, const struct job_overrides *o)
{
	if (o->max_retries >= 0)
		r->max_retries = o->max_retries;
	if (o->retry_include.n) {
		strv_replace(&r->include_exceptions, &o->retry_include);
		r->has_include_exceptions = true;
	}
	if (o->retry_exclude.n)
		strv_replace(&r->exclude_exceptions, &o->retry_exclude);
}

/* Merge src's members into *dst (an object), replacing keys it has. */
static void merge_object(cJSON **dst, const cJSON *src)
{
	const cJSON *c;

	if (!src)
		return;
	if (!*dst)
		*dst = cJSON_CreateObject();
	cJSON_ArrayForEach(c, src)
	{
		cJSON *copy = cJSON_Duplicate(c, true);

		if (cJSON_GetObjectItemCaseSensitive(*dst, c->string))
			cJSON_ReplaceItemInObjectCaseSensitive(*dst, c->string, copy);
		else
			cJSON_AddItemToObject(*dst, c->string, copy);
	}
}

static void apply_environment(struct job_environment_config *e, const struct job_overrides *o)
{
	if (o->env_type >= 0)
		e->type = (enum env_type)o->env_type;
	if (o->preserve_env >= 0)
		e->preserve_env = (enum preserve_env)o->preserve_env;
	if (o->isolation >= 0)
		e->isolation = (enum env_isolation)o->isolation;
	if (o->force_build)
		e->force_build = true;
	if (o->no_force_build)
		e->force_build = false;
	if (o->override_cpus > 0)
		e->override_cpus = o->override_cpus;
	if (o->override_memory_mb > 0)
		e->override_memory_mb = o->override_memory_mb;
	if (o->override_storage_mb > 0)
		e->override_storage_mb = o->override_storage_mb;
	if (o->override_gpus >= 0)
		e->override_gpus = o->override_gpus;
	merge_object(&e->kwargs, o->environment_kwargs);
}

/* --ak and --ae go to every agent (Harbor: to the agents -a makes, else to each
 * agent of the file). */
static void apply_agent_settings(struct job_config *cfg, const struct job_overrides *o)
{
	for (size_t i = 0; i < cfg->n_agents; i++) {
		struct agent_config *a = &cfg->agents[i];

		merge_object(&a->kwargs, o->agent_kwargs);
		for (size_t k = 0; k < o->agent_env.n; k++) {
			const char *kv = o->agent_env.v[k];
			const char *eq = strchr(kv, '=');
			_cleanup_free_ char *name = xstrndup(kv, (size_t)(eq - kv));

			env_list_set(&a->env, name, eq + 1);
		}
	}
}

int job_overrides_apply(struct job_config *cfg, const struct job_overrides *o, struct err *err)
{
	bool filters = o->task_names.n || o->exclude_task_names.n || o->n_tasks > 0;

	if (o->job_name)
		set_str(&cfg->job_name, o->job_name);
	if (o->jobs_dir)
		set_str(&cfg->jobs_dir, o->jobs_dir);
	if (o->n_attempts > 0)
		cfg->n_attempts = o->n_attempts;
	apply_multipliers(cfg, o);
	if (o->n_concurrent > 0)
		cfg->orchestrator.n_concurrent_trials = o->n_concurrent;
	apply_retry(&cfg->orchestrator.retry, o);
	if (o->quiet)
		cfg->orchestrator.quiet = true;
	apply_environment(&cfg->environment, o);
	if (o->disable_verification)
		cfg->verifier.disable = true;
	if (o->artifacts.n) {
		artifact_specs_release(cfg->artifacts, cfg->n_artifacts);
		cfg->artifacts = xcalloc(o->artifacts.n, sizeof(*cfg->artifacts));
		cfg->n_artifacts = o->artifacts.n;
		for (size_t i = 0; i < o->artifacts.n; i++)
			cfg->artifacts[i].source = xstrdup(o->artifacts.v[i]);
	}
	if (apply_agents(cfg, o, err) < 0)
		return -1;
	apply_agent_settings(cfg, o);
	if (o->path && o->dataset)
		return err_set(err, EINVAL, "-p and -d both name the tasks; give one of them");
	if (o->registry_path && o->registry_url)
		return err_set(err, EINVAL, "give --registry-path or --registry-url, not both");
	if (o->dataset) {
		struct dataset_config *dc;

		job_config_drop_tasks(cfg);
		cfg->datasets = xcalloc(1, sizeof(*cfg->datasets));
		cfg->n_datasets = 1;
		dc = &cfg->datasets[0];
		dc->is_registry = true;
		if (registry_parse_ref(o->dataset, &dc->name, &dc->version, err) < 0)
			return -1;
		dc->n_tasks = -1;
		apply_filters(dc, o);
	}
	if (o->registry_path || o->registry_url) {
		bool any = false;

		for (size_t i = 0; i < cfg->n_datasets; i++) {
			struct dataset_config *dc = &cfg->datasets[i];

			if (!dc->is_registry)
				continue;
			any = true;
			free(dc->registry_path);
			free(dc->registry_url);
			dc->registry_path = o->registry_path ? xstrdup(o->registry_path) : NULL;
			dc->registry_url = o->registry_url ? xstrdup(o->registry_url) : NULL;
		}
		if (!any)
			return err_set(err, EINVAL,
			               "--registry-path/--registry-url apply to registry datasets, "
			               "but the job has none (give -d NAME[@VERSION])");
	}
	if (o->path && job_dataset_is_single_task(o->path, false, filters, cfg->verifier.disable)) {
		/* Harbor's -p: a task directory is a task (tasks: [{path}]), a dataset
		 * only otherwise; its resume needs the task there. */
		job_config_drop_tasks(cfg);
		cfg->tasks = xcalloc(1, sizeof(*cfg->tasks));
		cfg->n_tasks = 1;
		cfg->tasks[0].path = xstrdup(o->path);
	} else if (o->path) {
		job_config_drop_tasks(cfg);
		cfg->datasets = xcalloc(1, sizeof(*cfg->datasets));
		cfg->n_datasets = 1;
		cfg->datasets[0].path = xstrdup(o->path);
		cfg->datasets[0].n_tasks = -1;
		apply_filters(&cfg->datasets[0], o);
	} else if (filters && !o->dataset) {
		if (!cfg->n_datasets)
			return err_set(
			    err, EINVAL,
			    "-t, -x and -l filter datasets, but the job has none (give -p "
			    "PATH or datasets in the job file)");
		for (size_t i = 0; i < cfg->n_datasets; i++)
			apply_filters(&cfg->datasets[i], o);
	}
	return job_config_check_runnable(cfg, err);
}
