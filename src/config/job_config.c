/* Job config: defaults, binding of YAML/JSON job files, the setters that
 * cli/job_overrides.c applies the flags through, Harbor-shaped JSON output and
 * config diffs. */
#include "config/job_config.h"
#include "config/agent_table.h"
#include "config/task.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/log.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Harbor's RetryConfig.exclude_exceptions default (v0.22: the classic five plus
 * the agent errors no retry can fix). */
static const char *const default_exclude_exceptions[] = {
    "AgentTimeoutError",        "VerifierTimeoutError",
    "RewardFileNotFoundError",  "RewardFileEmptyError",
    "VerifierOutputParseError", "ApiUsageLimitError",
    "AgentSafetyRefusalError",  "AgentAuthenticationError",
    "ModelNotFoundError",       NULL,
};
/* The classic (v0.1) default, which config.json files of older jobs hold. */
static const char *const classic_exclude_exceptions[] = {
    "AgentTimeoutError",    "VerifierTimeoutError",     "RewardFileNotFoundError",
    "RewardFileEmptyError", "VerifierOutputParseError", NULL,
};

/* The environment types of include/rollout/provider_table.h, by enum env_type. */
#define TYPE_NAME(id, name, harbor, import_path) [ENV_TYPE_##id] = name,
#define TYPE_HARBOR(id, name, harbor, import_path) [ENV_TYPE_##id] = harbor,
#define TYPE_IMPORT_PATH(id, name, harbor, import_path) [ENV_TYPE_##id] = import_path,
const char *const job_env_type_names[] = {ROLLOUT_PROVIDERS(TYPE_NAME, JOB_ENV_LEVEL_NONE) NULL};
static const char *const env_type_harbor[] = {ROLLOUT_PROVIDERS(TYPE_HARBOR, JOB_ENV_LEVEL_NONE)};
static const char *const env_type_import_path[] = {
    ROLLOUT_PROVIDERS(TYPE_IMPORT_PATH, JOB_ENV_LEVEL_NONE)};
const char *const job_preserve_env_names[] = {"never", "on_failure", "always", NULL};
const char *const job_env_isolation_names[] = {"full", "chroot", NULL};
#define env_type_names job_env_type_names
#define env_isolation_names job_env_isolation_names
#define preserve_env_names job_preserve_env_names
static const char *const metric_types[] = {"mean", "sum", "min", "max", "uv-script", NULL};
static const char *const orchestrator_types[] = {"local", "queue", NULL};

const char *env_type_name(enum env_type t)
{
	return env_type_names[t];
}

char *job_env_type_names_or(void)
{
	struct strbuf sb = STRBUF_INIT;

	for (int i = 0; i < ENV_TYPE_COUNT; i++)
		sb_addf(&sb, "%s%s",
		        i == 0                   ? ""
		        : i + 1 < ENV_TYPE_COUNT ? ", "
		                                 : " or ",
		        job_env_type_names[i]);
	return sb_detach(&sb);
}

const char *preserve_env_name(enum preserve_env p)
{
	return preserve_env_names[p];
}

const char *env_isolation_name(enum env_isolation i)
{
	return env_isolation_names[i];
}

void agent_config_init(struct agent_config *a)
{
	memset(a, 0, sizeof(*a));
	a->override_timeout_sec = NAN;
	a->override_setup_timeout_sec = NAN;
	a->max_timeout_sec = NAN;
	a->kwargs = cJSON_CreateObject();
}

void agent_config_release(struct agent_config *a)
{
	free(a->name);
	free(a->model_name);
	cJSON_Delete(a->kwargs);
	env_list_release(&a->env);
	free(a->install);
	free(a->run);
	free(a->host_command);
	memset(a, 0, sizeof(*a));
}

static char *xstrdup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void agent_config_copy(struct agent_config *dst, const struct agent_config *src)
{
	*dst = *src;
	dst->name = xstrdup_or_null(src->name);
	dst->model_name = xstrdup_or_null(src->model_name);
	dst->kwargs = cJSON_Duplicate(src->kwargs, true);
	dst->env.v = NULL;
	dst->env.n = 0;
	env_list_copy(&dst->env, &src->env);
	dst->install = xstrdup_or_null(src->install);
	dst->run = xstrdup_or_null(src->run);
	dst->host_command = xstrdup_or_null(src->host_command);
}

void dataset_config_release(struct dataset_config *d)
{
	free(d->path);
	free(d->name);
	free(d->version);
	free(d->registry_url);
	free(d->registry_path);
	free(d->download_dir);
	strv_release(&d->task_names);
	strv_release(&d->exclude_task_names);
	memset(d, 0, sizeof(*d));
}

static void task_ref_release(struct task_ref_config *t)
{
	free(t->path);
	free(t->git_url);
	free(t->git_commit_id);
	free(t->download_dir);
	free(t->source);
	memset(t, 0, sizeof(*t));
}

static void retry_init(struct retry_config *r)
{
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; default_exclude_exceptions[i]; i++)
		strv_push(&r->exclude_exceptions, default_exclude_exceptions[i]);
	r->wait_multiplier = 1.0;
	r->min_wait_sec = 1.0;
	r->max_wait_sec = 60.0;
}

static void free_agents(struct job_config *cfg)
{
	for (size_t i = 0; i < cfg->n_agents; i++)
		agent_config_release(&cfg->agents[i]);
	free(cfg->agents);
	cfg->agents = NULL;
	cfg->n_agents = 0;
}

static void free_datasets(struct job_config *cfg)
{
	for (size_t i = 0; i < cfg->n_datasets; i++)
		dataset_config_release(&cfg->datasets[i]);
	free(cfg->datasets);
	cfg->datasets = NULL;
	cfg->n_datasets = 0;
}

static void free_tasks(struct job_config *cfg)
{
	for (size_t i = 0; i < cfg->n_tasks; i++)
		task_ref_release(&cfg->tasks[i]);
	free(cfg->tasks);
	cfg->tasks = NULL;
	cfg->n_tasks = 0;
}

void job_config_set_agents(struct job_config *cfg, struct agent_config *agents, size_t n)
{
	free_agents(cfg);
	cfg->agents = agents;
	cfg->n_agents = n;
}

bool job_dataset_is_single_task(const char *path, bool is_registry, bool filters,
                                bool verifier_disabled)
{
	return !is_registry && !filters &&
	       task_dir_is_valid(path, verifier_disabled ? TASK_NO_VERIFY : 0);
}

void job_config_drop_tasks(struct job_config *cfg)
{
	free_datasets(cfg);
	free_tasks(cfg);
}

void job_config_init(struct job_config *cfg)
{
	char name[64];
	time_t now = time(NULL);
	struct tm tm;

	memset(cfg, 0, sizeof(*cfg));
	localtime_r(&now, &tm);
	strftime(name, sizeof(name), "%Y-%m-%d__%H-%M-%S", &tm);
	cfg->job_name = xstrdup(name);
	cfg->jobs_dir = xstrdup("jobs");
	cfg->n_attempts = 1;
	cfg->timeout_multiplier = 1.0;
	cfg->agent_timeout_multiplier = NAN;
	cfg->verifier_timeout_multiplier = NAN;
	cfg->agent_setup_timeout_multiplier = NAN;
	cfg->environment_build_timeout_multiplier = NAN;
	cfg->orchestrator.type = xstrdup("local");
	cfg->orchestrator.n_concurrent_trials = 4;
	retry_init(&cfg->orchestrator.retry);
	cfg->orchestrator.kwargs = cJSON_CreateObject();
	cfg->environment.type = ENV_TYPE_SANDBOX;
	cfg->environment.delete = true;
	cfg->environment.override_cpus = -1;
	cfg->environment.override_memory_mb = -1;
	cfg->environment.override_storage_mb = -1;
	cfg->environment.override_gpus = -1;
	cfg->environment.preserve_env = PRESERVE_ENV_NEVER;
	cfg->environment.kwargs = cJSON_CreateObject();
	cfg->verifier.override_timeout_sec = NAN;
	cfg->verifier.max_timeout_sec = NAN;
	cfg->agents = xcalloc(1, sizeof(*cfg->agents));
	agent_config_init(&cfg->agents[0]);
	cfg->agents[0].name = xstrdup("oracle");
	cfg->agents[0].def = agent_table_find("oracle");
	cfg->n_agents = 1;
}

void job_config_release(struct job_config *cfg)
{
	free(cfg->job_name);
	free(cfg->jobs_dir);
	free(cfg->orchestrator.type);
	strv_release(&cfg->orchestrator.retry.include_exceptions);
	strv_release(&cfg->orchestrator.retry.exclude_exceptions);
	cJSON_Delete(cfg->orchestrator.kwargs);
	cJSON_Delete(cfg->environment.kwargs);
	env_list_release(&cfg->environment.env);
	for (size_t i = 0; i < cfg->n_metrics; i++) {
		free(cfg->metrics[i].type);
		cJSON_Delete(cfg->metrics[i].kwargs);
	}
	free(cfg->metrics);
	free_agents(cfg);
	free_datasets(cfg);
	free_tasks(cfg);
	artifact_specs_release(cfg->artifacts, cfg->n_artifacts);
	strv_release(&cfg->allow_host_env);
	memset(cfg, 0, sizeof(*cfg));
}

void cleanup_job_configp(struct job_config *cfg)
{
	job_config_release(cfg);
}

void cleanup_dataset_configp(struct dataset_config *d)
{
	dataset_config_release(d);
}

/* A job name becomes a directory under jobs_dir: one plain path component. */
const char *job_name_problem(const char *name)
{
	if (!*name)
		return "must not be empty";
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return "must not be '.' or '..'";
	if (strchr(name, '/'))
		return "must not contain '/'";
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20)
			return "must not contain control characters";
	return NULL;
}

/* A key that rollout cannot honour but must not silently ignore. */
static void refuse_non_null(struct binder *b, struct node *tbl, const char *prefix, const char *key,
                            const char *why)
{
	struct node *v = bind_take(tbl, key);

	if (v && v->type != NODE_NULL) {
		_cleanup_free_ char *path = bind_path(prefix, key);

		bind_error(b, v, path, "%s", why);
	}
}

static void bind_retry(struct binder *b, struct node *t, const char *prefix, struct retry_config *r)
{
	struct node *v;

	bind_int(b, t, prefix, "max_retries", BIND_NONNEG, &r->max_retries);
	bind_strv(b, t, prefix, "include_exceptions", BIND_NULL_OK | BIND_NONEMPTY,
	          &r->include_exceptions, &r->has_include_exceptions);
	v = node_get(t, "exclude_exceptions");
	if (v && v->type == NODE_NULL) {
		bind_take(t, "exclude_exceptions");
		strv_release(&r->exclude_exceptions);
	} else {
		bind_strv(b, t, prefix, "exclude_exceptions", BIND_NONEMPTY, &r->exclude_exceptions,
		          NULL);
	}
	bind_double(b, t, prefix, "wait_multiplier", BIND_NONNEG, &r->wait_multiplier);
	bind_double(b, t, prefix, "min_wait_sec", BIND_NONNEG, &r->min_wait_sec);
	bind_double(b, t, prefix, "max_wait_sec", BIND_NONNEG, &r->max_wait_sec);
	if (r->min_wait_sec > r->max_wait_sec)
		diag_error_at(b->diags, b->file, t->line,
		              "key '%s': min_wait_sec (%g) is greater than max_wait_sec (%g)",
		              prefix, r->min_wait_sec, r->max_wait_sec);
	bind_unknown_keys(b, t, prefix, NULL);
}

/* n_concurrent_trials, quiet and retry may sit at the top level ([new]) or
 * under orchestrator (classic), not both. */
static void bind_orchestrator(struct binder *b, struct node *root, struct job_config *cfg)
{
	static const char *const shared[] = {"n_concurrent_trials", "quiet", "retry"};
	struct orchestrator_config *o = &cfg->orchestrator;
	struct node *t = bind_table(b, root, NULL, "orchestrator");
	struct node *retry;
	int type = 0;

	for (size_t i = 0; t && i < ARRAY_SIZE(shared); i++) {
		struct node_member *top = node_table_find(root, shared[i], strlen(shared[i]));
		struct node_member *sub = node_table_find(t, shared[i], strlen(shared[i]));

		if (top && sub) {
			top->used = true;
			diag_error_at(
			    b->diags, b->file, top->line,
			    "key '%s': also set as 'orchestrator.%s' on line %d; set it in one "
			    "place",
			    shared[i], shared[i], sub->line);
		}
	}
	if (t) {
		if (bind_enum(b, t, "orchestrator", "type", orchestrator_types, BIND_NULL_OK,
		              &type) > 0) {
			free(o->type);
			o->type = xstrdup(orchestrator_types[type]);
		}
		bind_int(b, t, "orchestrator", "n_concurrent_trials", BIND_POSITIVE,
		         &o->n_concurrent_trials);
		bind_bool(b, t, "orchestrator", "quiet", &o->quiet);
		retry = bind_table(b, t, "orchestrator", "retry");
		if (retry)
			bind_retry(b, retry, "orchestrator.retry", &o->retry);
		bind_object_json(b, t, "orchestrator", "kwargs", &o->kwargs);
		bind_unknown_keys(b, t, "orchestrator", NULL);
	}
	bind_int(b, root, NULL, "n_concurrent_trials", BIND_POSITIVE, &o->n_concurrent_trials);
	bind_bool(b, root, NULL, "quiet", &o->quiet);
	retry = bind_table(b, root, NULL, "retry");
	if (retry)
		bind_retry(b, retry, "retry", &o->retry);
}

static void bind_environment(struct binder *b, struct node *root, struct job_config *cfg)
{
	static const char *const unsupported[] = {"cpu_enforcement_policy",
	                                          "memory_enforcement_policy",
	                                          "override_tpu",
	                                          "mounts",
	                                          "extra_docker_compose",
	                                          "extra_allowed_hosts",
	                                          NULL};
	struct job_environment_config *e = &cfg->environment;
	struct node *t = bind_table(b, root, NULL, "environment");
	const char *p = "environment";
	int v;

	if (!t)
		return;
	v = (int)e->type;
	if (bind_enum(b, t, p, "type", env_type_names, BIND_NULL_OK, &v) > 0)
		e->type = (enum env_type)v;
	/* What rollout writes (config.json): Harbor's convention for a provider it does
	 * not know, type null with an import_path, and rollout's own name beside it. */
	{
		struct node *ip = bind_take(t, "import_path");

		int known = -1;

		for (int i = 0; ip && ip->type == NODE_STRING && i < ENV_TYPE_COUNT; i++)
			if (env_type_import_path[i] && !strcmp(ip->str.s, env_type_import_path[i]))
				known = i;
		if (ip && ip->type != NODE_NULL && known < 0) {
			_cleanup_free_ char *path = bind_path(p, "import_path");
			_cleanup_free_ char *types = job_env_type_names_or();

			bind_error(b, ip, path,
			           "custom environment classes are not supported by rollout (use "
			           "type: %s)",
			           types);
		} else if (known >= 0) {
			e->type = (enum env_type)known;
		}
	}
	v = (int)e->type;
	if (bind_enum(b, t, p, "rollout_provider", env_type_names, BIND_NULL_OK, &v) > 0)
		e->type = (enum env_type)v;
	bind_bool(b, t, p, "force_build", &e->force_build);
	bind_bool(b, t, p, "delete", &e->delete);
	bind_int(b, t, p, "override_cpus", BIND_NULL_OK | BIND_POSITIVE, &e->override_cpus);
	bind_int(b, t, p, "override_memory_mb", BIND_NULL_OK | BIND_POSITIVE,
	         &e->override_memory_mb);
	bind_int(b, t, p, "override_storage_mb", BIND_NULL_OK | BIND_POSITIVE,
	         &e->override_storage_mb);
	bind_int(b, t, p, "override_gpus", BIND_NULL_OK | BIND_NONNEG, &e->override_gpus);
	bind_bool(b, t, p, "suppress_override_warnings", &e->suppress_override_warnings);
	v = (int)e->preserve_env;
	if (bind_enum(b, t, p, "preserve_env", preserve_env_names, BIND_NULL_OK, &v) > 0)
		e->preserve_env = (enum preserve_env)v;
	v = (int)e->isolation;
	if (bind_enum(b, t, p, "isolation", env_isolation_names, BIND_NULL_OK, &v) > 0)
		e->isolation = (enum env_isolation)v;
	bind_object_json(b, t, p, "kwargs", &e->kwargs);
	bind_env(b, t, p, "env", false, &e->env);
	bind_unknown_keys(b, t, p, unsupported);
}

static void bind_verifier(struct binder *b, struct node *root, struct job_config *cfg)
{
	static const char *const unsupported[] = {"env", "include_logs", "exclude_logs", "kwargs",
	                                          NULL};
	struct node *t = bind_table(b, root, NULL, "verifier");

	if (!t)
		return;
	bind_double(b, t, "verifier", "override_timeout_sec", BIND_NULL_OK | BIND_NONNEG,
	            &cfg->verifier.override_timeout_sec);
	bind_double(b, t, "verifier", "max_timeout_sec", BIND_NULL_OK | BIND_POSITIVE,
	            &cfg->verifier.max_timeout_sec);
	bind_bool(b, t, "verifier", "disable", &cfg->verifier.disable);
	refuse_non_null(b, t, "verifier", "import_path",
	                "custom verifier classes are not supported by rollout");
	bind_unknown_keys(b, t, "verifier", unsupported);
}

static void bind_metrics(struct binder *b, struct node *root, struct job_config *cfg)
{
	struct node *arr = bind_array(b, root, NULL, "metrics");

	if (!arr)
		return;
	cfg->metrics = xcalloc(arr->arr.n ? arr->arr.n : 1, sizeof(*cfg->metrics));
	for (size_t i = 0; i < arr->arr.n; i++) {
		struct node *t = arr->arr.v[i];
		_cleanup_free_ char *path = bind_index("metrics", i);
		struct metric_config *m;
		int type = 0;

		if (t->type != NODE_TABLE) {
			bind_error(b, t, path, "expected a table {type, kwargs}, got %s",
			           node_type_name(t));
			continue;
		}
		m = &cfg->metrics[cfg->n_metrics++];
		bind_enum(b, t, path, "type", metric_types, BIND_NULL_OK, &type);
		m->type = xstrdup(metric_types[type]);
		m->kwargs = cJSON_CreateObject();
		bind_object_json(b, t, path, "kwargs", &m->kwargs);
		if (!strcmp(m->type, "uv-script") &&
		    !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m->kwargs, "script_path")))
			bind_error(b, t, path, "metric type uv-script needs kwargs.script_path");
		bind_unknown_keys(b, t, path, NULL);
	}
}

static void bind_one_agent(struct binder *b, struct node *t, const char *path,
                           struct agent_config *a)
{
	static const char *const unsupported[] = {"n_concurrent", "skills",       "mcp_servers",
	                                          "include_logs", "exclude_logs", NULL};
	struct node *name_node = node_get(t, "name");

	a->line = t->line;
	bind_str(b, t, path, "name", BIND_NULL_OK | BIND_NONEMPTY, &a->name);
	refuse_non_null(b, t, path, "import_path",
	                "Python agent classes cannot be loaded by rollout; declare a "
	                "user-defined agent with install/run or host_command");
	bind_str(b, t, path, "model_name", BIND_NULL_OK | BIND_NONEMPTY, &a->model_name);
	bind_double(b, t, path, "override_timeout_sec", BIND_NULL_OK | BIND_NONNEG,
	            &a->override_timeout_sec);
	bind_double(b, t, path, "override_setup_timeout_sec", BIND_NULL_OK | BIND_NONNEG,
	            &a->override_setup_timeout_sec);
	bind_double(b, t, path, "max_timeout_sec", BIND_NULL_OK | BIND_POSITIVE,
	            &a->max_timeout_sec);
	bind_object_json(b, t, path, "kwargs", &a->kwargs);
	bind_env(b, t, path, "env", false, &a->env);
	bind_str(b, t, path, "install", BIND_NULL_OK | BIND_NONEMPTY, &a->install);
	bind_str(b, t, path, "run", BIND_NULL_OK | BIND_NONEMPTY, &a->run);
	bind_str(b, t, path, "host_command", BIND_NULL_OK | BIND_NONEMPTY, &a->host_command);
	bind_unknown_keys(b, t, path, unsupported);

	/* The kind is set here, once: the job file defines an agent by giving it
	 * install/run (in the environment) or host_command (on the host); any other
	 * agent is a row of the agent table. */
	if (a->install || a->run || a->host_command) {
		a->def = agent_job_file_def(a->host_command ? AGENT_KIND_HOST : AGENT_KIND_USER);
		if (!a->name)
			bind_error(b, t, path,
			           "a user-defined agent (install/run/host_command) needs "
			           "a 'name'");
		else if (agent_name_is_builtin(a->name))
			bind_error(
			    b, name_node, path,
			    "'%s' is a built-in agent; give the user-defined agent its own name",
			    a->name);
		if (a->run && a->host_command)
			bind_error(b, t, path,
			           "set either 'run' (in the environment) or "
			           "'host_command' (on the host), not both");
		else if (!a->run && !a->host_command)
			bind_error(b, t, path,
			           "'install' needs 'run' or 'host_command' to start the "
			           "agent");
		return;
	}
	if (!a->name)
		a->name = xstrdup("oracle"); /* Harbor: no name and no import_path -> oracle */
	a->def = agent_table_find(a->name);
	if (!a->def) {
		_cleanup_free_ char *known = agent_builtin_names_joined();
		_cleanup_free_ char *npath = bind_path(path, "name");

		bind_error(b, name_node, npath,
		           "unknown agent '%s' (known: %s; or define one with 'run' or "
		           "'host_command')",
		           a->name, known);
	}
}

static void bind_agents(struct binder *b, struct node *root, struct job_config *cfg)
{
	struct node *arr = bind_array(b, root, NULL, "agents");

	if (!arr)
		return;
	free_agents(cfg);
	if (arr->arr.n == 0) {
		bind_error(b, arr, "agents", "expected at least one agent");
		return;
	}
	cfg->agents = xcalloc(arr->arr.n, sizeof(*cfg->agents));
	for (size_t i = 0; i < arr->arr.n; i++) {
		struct node *t = arr->arr.v[i];
		_cleanup_free_ char *path = bind_index("agents", i);
		struct agent_config *a;

		if (t->type != NODE_TABLE) {
			bind_error(b, t, path, "expected a table {name, model_name, ...}, got %s",
			           node_type_name(t));
			continue;
		}
		a = &cfg->agents[cfg->n_agents++];
		agent_config_init(a);
		bind_one_agent(b, t, path, a);
	}
}

static void bind_filters(struct binder *b, struct node *t, const char *path,
                         struct dataset_config *d)
{
	bind_strv(b, t, path, "task_names", BIND_NULL_OK | BIND_NONEMPTY, &d->task_names,
	          &d->has_task_names);
	bind_strv(b, t, path, "exclude_task_names", BIND_NULL_OK | BIND_NONEMPTY,
	          &d->exclude_task_names, &d->has_exclude_task_names);
	bind_int(b, t, path, "n_tasks", BIND_NULL_OK | BIND_POSITIVE, &d->n_tasks);
}

static void bind_one_dataset(struct binder *b, struct node *t, const char *path,
                             struct dataset_config *d)
{
	struct node *registry;

	d->n_tasks = -1;
	bind_str(b, t, path, "path", BIND_NULL_OK | BIND_NONEMPTY, &d->path);
	bind_str(b, t, path, "name", BIND_NULL_OK | BIND_NONEMPTY, &d->name);
	bind_filters(b, t, path, d);
	if (d->path && d->name) {
		bind_error(b, t, path,
		           "set 'path' (a local dataset) or 'name' (a registry dataset), "
		           "not both");
		return;
	}
	if (!d->path && !d->name) {
		bind_error(b, t, path,
		           "expected 'path' (a local dataset) or 'name' (a registry "
		           "dataset)");
		return;
	}
	if (d->path) {
		bind_unknown_keys(b, t, path, NULL);
		return;
	}
	d->is_registry = true;
	bind_str(b, t, path, "version", BIND_NULL_OK | BIND_NONEMPTY, &d->version);
	bind_bool(b, t, path, "overwrite", &d->overwrite);
	bind_str(b, t, path, "download_dir", BIND_NULL_OK | BIND_NONEMPTY, &d->download_dir);
	bind_str(b, t, path, "registry_url", BIND_NULL_OK | BIND_NONEMPTY, &d->registry_url);
	bind_str(b, t, path, "registry_path", BIND_NULL_OK | BIND_NONEMPTY, &d->registry_path);
	registry = bind_table(b, t, path, "registry");
	if (registry) {
		_cleanup_free_ char *rpath = bind_path(path, "registry");
		_cleanup_free_ char *ignored = NULL;

		if (d->registry_url || d->registry_path)
			bind_error(b, registry, rpath, "also set as registry_url/registry_path");
		bind_str(b, registry, rpath, "url", BIND_NULL_OK | BIND_NONEMPTY, &d->registry_url);
		bind_str(b, registry, rpath, "path", BIND_NULL_OK | BIND_NONEMPTY,
		         &d->registry_path);
		bind_str(b, registry, rpath, "name", BIND_NULL_OK, &ignored);
		bind_unknown_keys(b, registry, rpath, NULL);
	}
	if (d->registry_url && d->registry_path)
		bind_error(b, t, path, "set a registry url or a registry path, not both");
	bind_unknown_keys(b, t, path, NULL);
}

static void bind_datasets(struct binder *b, struct node *root, struct job_config *cfg)
{
	struct node *arr = bind_array(b, root, NULL, "datasets");

	if (!arr)
		return;
	cfg->datasets = xcalloc(arr->arr.n ? arr->arr.n : 1, sizeof(*cfg->datasets));
	for (size_t i = 0; i < arr->arr.n; i++) {
		struct node *t = arr->arr.v[i];
		_cleanup_free_ char *path = bind_index("datasets", i);

		if (t->type != NODE_TABLE) {
			bind_error(b, t, path, "expected a table {path} or {name, version}, got %s",
			           node_type_name(t));
			continue;
		}
		bind_one_dataset(b, t, path, &cfg->datasets[cfg->n_datasets++]);
	}
}

static void bind_tasks(struct binder *b, struct node *root, struct job_config *cfg)
{
	static const char *const unsupported[] = {"name", "ref", NULL};
	struct node *arr = bind_array(b, root, NULL, "tasks");

	if (!arr)
		return;
	cfg->tasks = xcalloc(arr->arr.n ? arr->arr.n : 1, sizeof(*cfg->tasks));
	for (size_t i = 0; i < arr->arr.n; i++) {
		struct node *t = arr->arr.v[i];
		_cleanup_free_ char *path = bind_index("tasks", i);
		struct task_ref_config *tr;

		if (t->type != NODE_TABLE) {
			bind_error(b, t, path, "expected a table {path, git_url, ...}, got %s",
			           node_type_name(t));
			continue;
		}
		tr = &cfg->tasks[cfg->n_tasks++];
		if (bind_str(b, t, path, "path", BIND_NONEMPTY, &tr->path) == 0)
			bind_error(b, t, path, "missing 'path'");
		bind_str(b, t, path, "git_url", BIND_NULL_OK | BIND_NONEMPTY, &tr->git_url);
		bind_str(b, t, path, "git_commit_id", BIND_NULL_OK | BIND_NONEMPTY,
		         &tr->git_commit_id);
		bind_bool(b, t, path, "overwrite", &tr->overwrite);
		bind_str(b, t, path, "download_dir", BIND_NULL_OK | BIND_NONEMPTY,
		         &tr->download_dir);
		bind_str(b, t, path, "source", BIND_NULL_OK, &tr->source);
		if (tr->git_commit_id && !tr->git_url)
			bind_error(b, t, path, "git_commit_id needs git_url");
		bind_unknown_keys(b, t, path, unsupported);
	}
}

static bool is_env_name(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* allow_host_env: true, false, or a list of variable names. */
static void bind_allow_host_env(struct binder *b, struct node *root, struct job_config *cfg)
{
	struct node *v = node_get(root, "allow_host_env");
	struct strv *names = &cfg->allow_host_env;

	if (!v || v->type != NODE_ARRAY) {
		bind_bool(b, root, NULL, "allow_host_env", &cfg->allow_host_env_all);
		return;
	}
	if (bind_strv(b, root, NULL, "allow_host_env", BIND_NONEMPTY, names, NULL) < 0)
		return;
	for (size_t i = 0; i < names->n; i++) {
		_cleanup_free_ char *path = bind_index("allow_host_env", i);

		if (!is_env_name(names->v[i]))
			bind_error(b, v->arr.v[i], path,
			           "expected an environment variable name, got \"%s\"",
			           names->v[i]);
	}
}

void job_config_bind(struct node *root, const char *file, struct job_config *cfg,
                     struct diags *diags)
{
	static const char *const unsupported[] = {"install_only", "extra_instructions",
	                                          "user_agent", "source_jobs", NULL};
	struct binder b = {.file = file, .diags = diags};
	struct node *name_node;
	const char *problem;

	if (root->type == NODE_NULL)
		return; /* an empty file: every default */
	if (root->type != NODE_TABLE) {
		diag_error_at(diags, file, root->line,
		              "expected a mapping of job settings at the top level, got %s",
		              node_type_name(root));
		return;
	}
	name_node = node_get(root, "job_name");
	if (bind_str(&b, root, NULL, "job_name", BIND_NONEMPTY, &cfg->job_name) > 0 &&
	    (problem = job_name_problem(cfg->job_name)))
		bind_error(&b, name_node, "job_name", "%s (it names a directory under jobs_dir)",
		           problem);
	bind_str(&b, root, NULL, "jobs_dir", BIND_NONEMPTY, &cfg->jobs_dir);
	bind_int(&b, root, NULL, "n_attempts", BIND_POSITIVE, &cfg->n_attempts);
	bind_double(&b, root, NULL, "timeout_multiplier", BIND_POSITIVE, &cfg->timeout_multiplier);
	bind_double(&b, root, NULL, "agent_timeout_multiplier", BIND_NULL_OK | BIND_POSITIVE,
	            &cfg->agent_timeout_multiplier);
	bind_double(&b, root, NULL, "verifier_timeout_multiplier", BIND_NULL_OK | BIND_POSITIVE,
	            &cfg->verifier_timeout_multiplier);
	bind_double(&b, root, NULL, "agent_setup_timeout_multiplier", BIND_NULL_OK | BIND_POSITIVE,
	            &cfg->agent_setup_timeout_multiplier);
	bind_double(&b, root, NULL, "environment_build_timeout_multiplier",
	            BIND_NULL_OK | BIND_POSITIVE, &cfg->environment_build_timeout_multiplier);
	bind_bool(&b, root, NULL, "debug", &cfg->debug);
	bind_orchestrator(&b, root, cfg);
	bind_environment(&b, root, cfg);
	bind_verifier(&b, root, cfg);
	bind_metrics(&b, root, cfg);
	bind_agents(&b, root, cfg);
	bind_datasets(&b, root, cfg);
	bind_tasks(&b, root, cfg);
	bind_artifacts(&b, root, &cfg->artifacts, &cfg->n_artifacts);
	bind_allow_host_env(&b, root, cfg);
	bind_unknown_keys(&b, root, NULL, unsupported);
}

int job_config_load_diags(const char *path, struct job_config *cfg, struct diags *diags)
{
	_cleanup_node_ struct node *root = NULL;
	struct err err = {0};
	size_t before = diags->n_errors, start;

	if (!str_ends_with(path, ".yaml") && !str_ends_with(path, ".yml") &&
	    !str_ends_with(path, ".json")) {
		diag_add(diags, DIAG_ERROR, "%s: a job file must end in .yaml, .yml or .json",
		         path);
		return -1;
	}
	if (node_load_file(path, &root, &err) < 0) {
		diag_add_err(diags, &err);
		return -1;
	}
	start = diags->n;
	job_config_bind(root, path, cfg, diags);
	diags_sort_lines(diags, start);
	return diags->n_errors > before ? -1 : 0;
}

int job_config_load(const char *path, struct job_config *cfg, struct err *err)
{
	_cleanup_diags_ struct diags diags = DIAGS_INIT;

	job_config_load_diags(path, cfg, &diags);
	return diags_report(&diags, err);
}

int job_config_check_runnable(const struct job_config *cfg, struct err *err)
{
	if (cfg->n_datasets == 0 && cfg->n_tasks == 0)
		return err_set(
		    err, EINVAL,
		    "no tasks to run: give -p PATH, or datasets or tasks in the job file");
	if (cfg->n_agents == 0)
		return err_set(err, EINVAL, "no agent to run");
	if (cfg->environment.override_gpus > 0)
		return err_set(err, ENOTSUP,
		               "override_gpus is %d: neither provider gives environments GPUs",
		               cfg->environment.override_gpus);
	return 0;
}

static void add_num_or_null(cJSON *o, const char *key, double v)
{
	if (isnan(v))
		cJSON_AddNullToObject(o, key);
	else
		cJSON_AddNumberToObject(o, key, v);
}

static void add_int_or_null(cJSON *o, const char *key, int v)
{
	if (v < 0)
		cJSON_AddNullToObject(o, key);
	else
		cJSON_AddNumberToObject(o, key, v);
}

static cJSON *strv_json(const struct strv *sv)
{
	cJSON *a = cJSON_CreateArray();

	for (size_t i = 0; i < sv->n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(sv->v[i]));
	return a;
}

static void add_strv_or_null(cJSON *o, const char *key, bool set, const struct strv *sv)
{
	if (set)
		cJSON_AddItemToObject(o, key, strv_json(sv));
	else
		cJSON_AddNullToObject(o, key);
}

static cJSON *retry_json(const struct retry_config *r)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "max_retries", r->max_retries);
	add_strv_or_null(o, "include_exceptions", r->has_include_exceptions,
	                 &r->include_exceptions);
	cJSON_AddItemToObject(o, "exclude_exceptions", strv_json(&r->exclude_exceptions));
	cJSON_AddNumberToObject(o, "wait_multiplier", r->wait_multiplier);
	cJSON_AddNumberToObject(o, "min_wait_sec", r->min_wait_sec);
	cJSON_AddNumberToObject(o, "max_wait_sec", r->max_wait_sec);
	return o;
}

static cJSON *agent_json(const struct agent_config *a)
{
	cJSON *o = cJSON_CreateObject();

	json_add_str_or_null(o, "name", a->name);
	cJSON_AddNullToObject(o, "import_path");
	json_add_str_or_null(o, "model_name", a->model_name);
	add_num_or_null(o, "override_timeout_sec", a->override_timeout_sec);
	add_num_or_null(o, "override_setup_timeout_sec", a->override_setup_timeout_sec);
	add_num_or_null(o, "max_timeout_sec", a->max_timeout_sec);
	cJSON_AddItemToObject(o, "kwargs", cJSON_Duplicate(a->kwargs, true));
	cJSON_AddItemToObject(o, "env", env_list_to_json(&a->env));
	if (a->install)
		cJSON_AddStringToObject(o, "install", a->install);
	if (a->run)
		cJSON_AddStringToObject(o, "run", a->run);
	if (a->host_command)
		cJSON_AddStringToObject(o, "host_command", a->host_command);
	return o;
}

static cJSON *task_ref_json(const struct task_ref_config *t)
{
	cJSON *to = cJSON_CreateObject();

	json_add_str_or_null(to, "path", t->path);
	json_add_str_or_null(to, "git_url", t->git_url);
	json_add_str_or_null(to, "git_commit_id", t->git_commit_id);
	cJSON_AddBoolToObject(to, "overwrite", t->overwrite);
	json_add_str_or_null(to, "download_dir", t->download_dir);
	json_add_str_or_null(to, "source", t->source);
	return to;
}

static cJSON *task_ref_json_path(const char *path)
{
	struct task_ref_config t = {.path = (char *)path};

	return task_ref_json(&t);
}

static cJSON *dataset_json(const struct dataset_config *d)
{
	cJSON *o = cJSON_CreateObject();

	add_strv_or_null(o, "task_names", d->has_task_names, &d->task_names);
	add_strv_or_null(o, "exclude_task_names", d->has_exclude_task_names,
	                 &d->exclude_task_names);
	add_int_or_null(o, "n_tasks", d->n_tasks);
	if (!d->is_registry) {
		json_add_str_or_null(o, "path", d->path);
		return o;
	}
	if (d->registry_url || d->registry_path) {
		cJSON *r = cJSON_AddObjectToObject(o, "registry");

		if (d->registry_url)
			cJSON_AddStringToObject(r, "url", d->registry_url);
		else
			cJSON_AddStringToObject(r, "path", d->registry_path);
	} else {
		cJSON_AddNullToObject(o, "registry");
	}
	json_add_str_or_null(o, "name", d->name);
	json_add_str_or_null(o, "version", d->version);
	cJSON_AddBoolToObject(o, "overwrite", d->overwrite);
	json_add_str_or_null(o, "download_dir", d->download_dir);
	return o;
}

/* environment.type as Harbor's EnvironmentConfig accepts it: docker is one of its
 * types; the sandbox is not, so it is written the way Harbor records a provider it
 * does not know (type null, import_path), with rollout's name in rollout_provider. */
static void env_type_to_json(cJSON *env, enum env_type t)
{
	if (env_type_harbor[t]) {
		cJSON_AddStringToObject(env, "type", env_type_harbor[t]);
		cJSON_AddNullToObject(env, "import_path");
	} else {
		cJSON_AddNullToObject(env, "type");
		cJSON_AddStringToObject(env, "import_path", env_type_import_path[t]);
	}
	cJSON_AddStringToObject(env, "rollout_provider", env_type_name(t));
}

void job_environment_json_normalize(cJSON *env)
{
	const char *type = json_get_str(env, "type");
	int t = -1;

	if (!cJSON_IsObject(env) || cJSON_GetObjectItemCaseSensitive(env, "rollout_provider"))
		return;
	for (int i = 0; type && i < ENV_TYPE_COUNT; i++)
		if (!strcmp(type, job_env_type_names[i]))
			t = i;
	if (t < 0)
		return;
	{
		/* Same keys in the same place: type and import_path first, then the rest. */
		cJSON *rest = cJSON_CreateObject(), *c;

		cJSON_DeleteItemFromObjectCaseSensitive(env, "type");
		cJSON_DeleteItemFromObjectCaseSensitive(env, "import_path");
		while ((c = env->child)) {
			cJSON_DetachItemViaPointer(env, c);
			cJSON_AddItemToObject(rest, c->string, c);
		}
		env_type_to_json(env, (enum env_type)t);
		while ((c = rest->child)) {
			cJSON_DetachItemViaPointer(rest, c);
			if (!strcmp(c->string, "rollout_provider"))
				cJSON_Delete(c);
			else
				cJSON_AddItemToObject(env, c->string, c);
		}
		cJSON_Delete(rest);
	}
}

static bool strv_json_is(const cJSON *arr, const char *const *names)
{
	size_t n = 0;
	const cJSON *c;

	for (; names[n]; n++)
		;
	if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n)
		return false;
	cJSON_ArrayForEach(c, arr)
	{
		bool found = false;

		for (size_t i = 0; i < n && !found; i++)
			found = cJSON_IsString(c) && !strcmp(c->valuestring, names[i]);
		if (!found)
			return false;
	}
	return true;
}

/* A config.json as rollout writes it now, whatever version wrote it: older ones
 * held environment.type "sandbox", the classic retry exclusions and `-p TASK` as a
 * dataset. Normalizing both sides keeps resume and merge working across versions. */
static cJSON *config_json_normalized(const cJSON *cfg)
{
	cJSON *c = cJSON_Duplicate(cfg, 1);
	cJSON *retry = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(c, "orchestrator"), "retry");
	cJSON *ex = cJSON_GetObjectItemCaseSensitive(retry, "exclude_exceptions");
	cJSON *datasets = cJSON_GetObjectItemCaseSensitive(c, "datasets");
	cJSON *tasks = cJSON_GetObjectItemCaseSensitive(c, "tasks");
	bool disable = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(c, "verifier"), "disable"));

	job_environment_json_normalize(cJSON_GetObjectItemCaseSensitive(c, "environment"));
	if (ex && strv_json_is(ex, classic_exclude_exceptions)) {
		struct strv def = STRV_INIT;

		for (size_t i = 0; default_exclude_exceptions[i]; i++)
			strv_push(&def, default_exclude_exceptions[i]);
		cJSON_ReplaceItemInObjectCaseSensitive(retry, "exclude_exceptions",
		                                       strv_json(&def));
		strv_release(&def);
	}
	if (cJSON_GetArraySize(datasets) == 1 && cJSON_IsArray(tasks) &&
	    cJSON_GetArraySize(tasks) == 0) {
		cJSON *d = cJSON_GetArrayItem(datasets, 0);
		const char *path = json_get_str(d, "path");

		if (path && !cJSON_GetObjectItemCaseSensitive(d, "name") &&
		    job_dataset_is_single_task(
		        path, json_get_str(d, "name") != NULL,
		        cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(d, "task_names")) ||
		            cJSON_IsArray(
		                cJSON_GetObjectItemCaseSensitive(d, "exclude_task_names")) ||
		            cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(d, "n_tasks")),
		        disable)) {
			cJSON *to = task_ref_json_path(path);

			cJSON_DeleteItemFromArray(datasets, 0);
			cJSON_AddItemToArray(tasks, to);
		}
	}
	return c;
}

cJSON *job_config_to_json(const struct job_config *cfg)
{
	cJSON *o = cJSON_CreateObject(), *sub, *arr;

	cJSON_AddStringToObject(o, "job_name", cfg->job_name);
	cJSON_AddStringToObject(o, "jobs_dir", cfg->jobs_dir);
	cJSON_AddNumberToObject(o, "n_attempts", cfg->n_attempts);
	cJSON_AddNumberToObject(o, "timeout_multiplier", cfg->timeout_multiplier);
	add_num_or_null(o, "agent_timeout_multiplier", cfg->agent_timeout_multiplier);
	add_num_or_null(o, "verifier_timeout_multiplier", cfg->verifier_timeout_multiplier);
	add_num_or_null(o, "agent_setup_timeout_multiplier", cfg->agent_setup_timeout_multiplier);
	add_num_or_null(o, "environment_build_timeout_multiplier",
	                cfg->environment_build_timeout_multiplier);
	cJSON_AddBoolToObject(o, "debug", cfg->debug);

	sub = cJSON_AddObjectToObject(o, "orchestrator");
	cJSON_AddStringToObject(sub, "type", cfg->orchestrator.type);
	cJSON_AddNumberToObject(sub, "n_concurrent_trials", cfg->orchestrator.n_concurrent_trials);
	cJSON_AddBoolToObject(sub, "quiet", cfg->orchestrator.quiet);
	cJSON_AddItemToObject(sub, "retry", retry_json(&cfg->orchestrator.retry));
	cJSON_AddItemToObject(sub, "kwargs", cJSON_Duplicate(cfg->orchestrator.kwargs, true));

	sub = cJSON_AddObjectToObject(o, "environment");
	env_type_to_json(sub, cfg->environment.type);
	/* Only when not the default: configs written before the field existed
	 * (full isolation) still resume. */
	if (cfg->environment.isolation != ENV_ISOLATION_FULL)
		cJSON_AddStringToObject(sub, "isolation",
		                        env_isolation_name(cfg->environment.isolation));
	cJSON_AddBoolToObject(sub, "force_build", cfg->environment.force_build);
	cJSON_AddBoolToObject(sub, "delete", cfg->environment.delete);
	add_int_or_null(sub, "override_cpus", cfg->environment.override_cpus);
	add_int_or_null(sub, "override_memory_mb", cfg->environment.override_memory_mb);
	add_int_or_null(sub, "override_storage_mb", cfg->environment.override_storage_mb);
	add_int_or_null(sub, "override_gpus", cfg->environment.override_gpus);
	cJSON_AddBoolToObject(sub, "suppress_override_warnings",
	                      cfg->environment.suppress_override_warnings);
	cJSON_AddItemToObject(sub, "kwargs", cJSON_Duplicate(cfg->environment.kwargs, true));
	cJSON_AddStringToObject(sub, "preserve_env",
	                        preserve_env_name(cfg->environment.preserve_env));
	cJSON_AddItemToObject(sub, "env", env_list_to_json(&cfg->environment.env));

	sub = cJSON_AddObjectToObject(o, "verifier");
	add_num_or_null(sub, "override_timeout_sec", cfg->verifier.override_timeout_sec);
	add_num_or_null(sub, "max_timeout_sec", cfg->verifier.max_timeout_sec);
	cJSON_AddBoolToObject(sub, "disable", cfg->verifier.disable);

	arr = cJSON_AddArrayToObject(o, "metrics");
	for (size_t i = 0; i < cfg->n_metrics; i++) {
		cJSON *m = cJSON_CreateObject();

		cJSON_AddStringToObject(m, "type", cfg->metrics[i].type);
		cJSON_AddItemToObject(m, "kwargs", cJSON_Duplicate(cfg->metrics[i].kwargs, true));
		cJSON_AddItemToArray(arr, m);
	}
	arr = cJSON_AddArrayToObject(o, "agents");
	for (size_t i = 0; i < cfg->n_agents; i++)
		cJSON_AddItemToArray(arr, agent_json(&cfg->agents[i]));
	arr = cJSON_AddArrayToObject(o, "datasets");
	for (size_t i = 0; i < cfg->n_datasets; i++)
		cJSON_AddItemToArray(arr, dataset_json(&cfg->datasets[i]));
	arr = cJSON_AddArrayToObject(o, "tasks");
	for (size_t i = 0; i < cfg->n_tasks; i++)
		cJSON_AddItemToArray(arr, task_ref_json(&cfg->tasks[i]));
	arr = cJSON_AddArrayToObject(o, "artifacts");
	for (size_t i = 0; i < cfg->n_artifacts; i++) {
		const struct artifact_spec *a = &cfg->artifacts[i];

		if (a->is_table) {
			cJSON *ao = cJSON_CreateObject();

			cJSON_AddStringToObject(ao, "source", a->source);
			json_add_str_or_null(ao, "destination", a->destination);
			cJSON_AddItemToArray(arr, ao);
		} else {
			cJSON_AddItemToArray(arr, cJSON_CreateString(a->source));
		}
	}
	/* Only when set: config.json of jobs from before the key stays the same. */
	if (cfg->allow_host_env_all)
		cJSON_AddTrueToObject(o, "allow_host_env");
	else if (cfg->allow_host_env.n)
		cJSON_AddItemToObject(o, "allow_host_env", strv_json(&cfg->allow_host_env));
	return o;
}

static char *json_short(const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);
	char *out;

	if (!s)
		return xstrdup("?");
	if (strlen(s) > 120) {
		out = xasprintf("%.117s...", s);
		cJSON_free(s);
		return out;
	}
	out = xstrdup(s);
	cJSON_free(s);
	return out;
}

/* Top-level keys that do not change what the job's trials are. */
static bool diff_ignored(const char *path, const char *key)
{
	if (!strcmp(path, "orchestrator"))
		return !strcmp(key, "quiet"); /* the display, not the trials */
	return !*path && (!strcmp(key, "job_name") || !strcmp(key, "allow_host_env") ||
	                  !strcmp(key, "debug"));
}

/* Keys whose values are host paths: compared as the places they name, so that
 * "jobs" and "/abs/jobs" (or "./tasks/x" and "tasks/x") are the same config. */
static bool same_place(const char *path, const cJSON *a, const cJSON *b)
{
	static const char *const keys[] = {"jobs_dir", "path", "download_dir", "install"};
	const char *dot = strrchr(path, '.');
	const char *key = dot ? dot + 1 : path;
	_cleanup_free_ char *ra = NULL, *rb = NULL;
	bool is_path = false;

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		is_path |= !strcmp(key, keys[i]);
	if (!is_path || !cJSON_IsString(a) || !cJSON_IsString(b))
		return false;
	ra = path_resolved(a->valuestring);
	rb = path_resolved(b->valuestring);
	return !strcmp(ra, rb);
}

static size_t diff_rec(const char *path, const cJSON *a, const cJSON *b, struct strv *out)
{
	size_t n = 0;

	if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
		const cJSON *c;

		for (c = a->child; c; c = c->next) {
			const cJSON *bv = cJSON_GetObjectItemCaseSensitive(b, c->string);
			_cleanup_free_ char *sub = bind_path(path, c->string);

			if (diff_ignored(path, c->string))
				continue;
			if (!bv) {
				_cleanup_free_ char *was = json_short(c);

				strv_pushf(out, "%s: removed (was %s)", sub, was);
				n++;
			} else {
				n += diff_rec(sub, c, bv, out);
			}
		}
		for (c = b->child; c; c = c->next) {
			if (diff_ignored(path, c->string) ||
			    cJSON_GetObjectItemCaseSensitive(a, c->string))
				continue;
			{
				_cleanup_free_ char *sub = bind_path(path, c->string);
				_cleanup_free_ char *now = json_short(c);

				strv_pushf(out, "%s: added (%s)", sub, now);
				n++;
			}
		}
		return n;
	}
	if (cJSON_IsArray(a) && cJSON_IsArray(b)) {
		int na = cJSON_GetArraySize(a), nb = cJSON_GetArraySize(b);

		for (int i = 0; i < na && i < nb; i++) {
			_cleanup_free_ char *sub = xasprintf("%s[%d]", path, i);

			n += diff_rec(sub, cJSON_GetArrayItem(a, i), cJSON_GetArrayItem(b, i), out);
		}
		if (na != nb) {
			strv_pushf(out, "%s: %d item%s -> %d item%s", path, na, na == 1 ? "" : "s",
			           nb, nb == 1 ? "" : "s");
			n++;
		}
		return n;
	}
	if (!cJSON_Compare(a, b, true) && !same_place(path, a, b)) {
		_cleanup_free_ char *was = json_short(a);
		_cleanup_free_ char *now = json_short(b);

		strv_pushf(out, "%s: %s -> %s", *path ? path : "(config)", was, now);
		n++;
	}
	return n;
}

size_t job_config_json_diff(const cJSON *old_cfg, const cJSON *new_cfg, struct strv *out)
{
	_cleanup_json_ cJSON *a = config_json_normalized(old_cfg);
	_cleanup_json_ cJSON *b = config_json_normalized(new_cfg);

	return diff_rec("", a, b, out);
}

size_t job_config_diff(const struct job_config *old_cfg, const struct job_config *new_cfg,
                       struct strv *out)
{
	_cleanup_json_ cJSON *a = job_config_to_json(old_cfg);
	_cleanup_json_ cJSON *b = job_config_to_json(new_cfg);

	return job_config_json_diff(a, b, out);
}
