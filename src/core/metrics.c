/* Job statistics: evals keyed agent__model__dataset, metrics with errors as 0,
 * pass@k, reward and exception distributions. Pure functions of the outcomes. */
#include "core/metrics.h"
#include "core/result.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/strbuf.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void trial_outcome_from_result(const struct trial_result *r, struct trial_outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->trial_name = r->trial_name;
	o->task_name = r->task_name;
	o->agent_name = r->agent_name;
	o->model_name = r->model_name;
	o->source = r->source;
	o->rewards = r->rewards;
	o->exception_type = r->exception ? r->exception->type : NULL;
	o->tampering = r->integrity ? cJSON_GetObjectItemCaseSensitive(r->integrity, "tampering")
	                            : NULL;
}

char *eval_key(const struct trial_outcome *o)
{
	char *key;

	if (o->model_name)
		key = xasprintf("%s__%s__%s", o->agent_name ? o->agent_name : "unknown",
		                o->model_name, o->source ? o->source : "adhoc");
	else
		key = xasprintf("%s__%s", o->agent_name ? o->agent_name : "unknown",
		                o->source ? o->source : "adhoc");
	for (char *p = key; *p; p++)
		if (*p == '/')
			*p = '-';
	return key;
}

double pass_at_k(int n, int c, int k)
{
	double prod = 1.0;

	if (k > n || n <= 0)
		return NAN;
	if (n - c < k)
		return 1.0;
	for (int i = 0; i < k; i++)
		prod *= (double)(n - c - i) / (double)(n - i);
	return 1.0 - prod;
}

/* Python's str(float) for the distribution keys: 1.0, 0.5, 0.333... */
static void value_key(double v, char *buf, size_t n)
{
	if (v == floor(v) && fabs(v) < 1e16)
		snprintf(buf, n, "%.1f", v);
	else {
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(buf, n, "%.*g", prec, v);
			if (strtod(buf, NULL) == v)
				break;
		}
	}
}

static void add_name(cJSON *obj, const char *key, const char *name)
{
	cJSON *list = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!list)
		list = cJSON_AddArrayToObject(obj, key);
	cJSON_AddItemToArray(list, cJSON_CreateString(name ? name : ""));
}

static double aggregate(const char *type, const double *v, size_t n)
{
	double acc;

	if (n == 0)
		return NAN;
	if (strcmp(type, "sum") == 0 || strcmp(type, "mean") == 0) {
		acc = 0;
		for (size_t i = 0; i < n; i++)
			acc += v[i];
		return strcmp(type, "sum") == 0 ? acc : acc / (double)n;
	}
	acc = v[0];
	for (size_t i = 1; i < n; i++)
		acc = strcmp(type, "min") == 0 ? fmin(acc, v[i]) : fmax(acc, v[i]);
	return acc;
}

/* The reward keys of an eval in first-seen order. */
static void collect_keys(const struct trial_outcome *const *t, size_t n, struct strv *keys)
{
	for (size_t i = 0; i < n; i++) {
		const cJSON *c;

		if (!t[i]->rewards)
			continue;
		cJSON_ArrayForEach(c, t[i]->rewards) if (!strv_contains(keys, c->string))
		    strv_push(keys, c->string);
	}
}

static double reward_or_zero(const struct trial_outcome *t, const char *key)
{
	const cJSON *v = t->rewards ? cJSON_GetObjectItemCaseSensitive(t->rewards, key) : NULL;

	return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

static bool key_is_binary(const struct trial_outcome *const *t, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++) {
		double v = reward_or_zero(t[i], key);

		if (v != 0.0 && v != 1.0)
			return false;
	}
	return true;
}

/* pass@k for one binary key: k in {2,4,8,...} ∪ {5,10,15,...} up to the smallest
 * number of trials per task, averaged over tasks. NULL when no k applies. */
static cJSON *pass_at_k_for_key(const struct trial_outcome *const *t, size_t n, const char *key)
{
	struct strv tasks = STRV_INIT;
	int *count, *correct, min_n = 0;
	cJSON *out = NULL;

	for (size_t i = 0; i < n; i++)
		if (!strv_contains(&tasks, t[i]->task_name ? t[i]->task_name : ""))
			strv_push(&tasks, t[i]->task_name ? t[i]->task_name : "");
	count = xcalloc(tasks.n, sizeof(int));
	correct = xcalloc(tasks.n, sizeof(int));
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < tasks.n; j++) {
			if (strcmp(tasks.v[j], t[i]->task_name ? t[i]->task_name : "") != 0)
				continue;
			count[j]++;
			correct[j] += reward_or_zero(t[i], key) == 1.0;
		}
	}
	for (size_t j = 0; j < tasks.n; j++)
		if (j == 0 || count[j] < min_n)
			min_n = count[j];
	for (int k = 2; k <= min_n; k++) {
		bool pow2 = (k & (k - 1)) == 0;
		double sum = 0;
		char name[16];

		if (!pow2 && k % 5 != 0)
			continue;
		for (size_t j = 0; j < tasks.n; j++)
			sum += pass_at_k(count[j], correct[j], k);
		if (!out)
			out = cJSON_CreateObject();
		snprintf(name, sizeof(name), "%d", k);
		cJSON_AddNumberToObject(out, name, sum / (double)tasks.n);
	}
	free(count);
	free(correct);
	strv_release(&tasks);
	return out;
}

static cJSON *eval_stats(const struct trial_outcome *const *t, size_t n,
                         const struct metric_spec *metrics, size_t n_metrics)
{
	static const struct metric_spec default_metric = {"mean"};
	cJSON *e = cJSON_CreateObject();
	cJSON *mlist, *rstats, *estats;
	struct strv keys = STRV_INIT;
	double *vals = xcalloc(n ? n : 1, sizeof(double));
	int with_rewards = 0, errors = 0;

	if (n_metrics == 0) {
		metrics = &default_metric;
		n_metrics = 1;
	}
	for (size_t i = 0; i < n; i++) {
		with_rewards += t[i]->rewards != NULL;
		errors += t[i]->exception_type != NULL;
	}
	cJSON_AddNumberToObject(e, "n_trials", with_rewards);
	cJSON_AddNumberToObject(e, "n_errors", errors);
	collect_keys(t, n, &keys);

	mlist = cJSON_AddArrayToObject(e, "metrics");
	for (size_t m = 0; m < n_metrics; m++) {
		cJSON *md = cJSON_CreateObject();

		if (keys.n <= 1) {
			const char *key = keys.n ? keys.v[0] : "reward";

			for (size_t i = 0; i < n; i++)
				vals[i] = reward_or_zero(t[i], key);
			cJSON_AddNumberToObject(md, metrics[m].type,
			                        aggregate(metrics[m].type, vals, n));
		} else {
			/* Several keys: one value per key (missing keys counted as 0), under
			 * the metric's name so that the list says which metric each is. */
			cJSON *per_key = cJSON_AddObjectToObject(md, metrics[m].type);

			for (size_t k = 0; k < keys.n; k++) {
				for (size_t i = 0; i < n; i++)
					vals[i] = reward_or_zero(t[i], keys.v[k]);
				cJSON_AddNumberToObject(per_key, keys.v[k],
				                        aggregate(metrics[m].type, vals, n));
			}
		}
		cJSON_AddItemToArray(mlist, md);
	}

	if (keys.n == 1 && key_is_binary(t, n, keys.v[0])) {
		cJSON *p = pass_at_k_for_key(t, n, keys.v[0]);

		if (p)
			cJSON_AddItemToObject(e, "pass_at_k", p);
	} else if (keys.n > 1) {
		cJSON *per_key = NULL;

		for (size_t k = 0; k < keys.n; k++) {
			cJSON *p;

			if (!key_is_binary(t, n, keys.v[k]))
				continue;
			p = pass_at_k_for_key(t, n, keys.v[k]);
			if (!p)
				continue;
			if (!per_key)
				per_key = cJSON_AddObjectToObject(e, "pass_at_k");
			cJSON_AddItemToObject(per_key, keys.v[k], p);
		}
	}

	rstats = cJSON_AddObjectToObject(e, "reward_stats");
	for (size_t k = 0; k < keys.n; k++) {
		cJSON *dist = cJSON_AddObjectToObject(rstats, keys.v[k]);

		for (size_t i = 0; i < n; i++) {
			const cJSON *v =
			    t[i]->rewards
			        ? cJSON_GetObjectItemCaseSensitive(t[i]->rewards, keys.v[k])
			        : NULL;
			char buf[64];

			if (!cJSON_IsNumber(v))
				continue;
			value_key(v->valuedouble, buf, sizeof(buf));
			add_name(dist, buf, t[i]->trial_name);
		}
	}
	estats = cJSON_AddObjectToObject(e, "exception_stats");
	for (size_t i = 0; i < n; i++)
		if (t[i]->exception_type)
			add_name(estats, t[i]->exception_type, t[i]->trial_name);
	strv_release(&keys);
	free(vals);
	return e;
}

cJSON *job_stats(const struct trial_outcome *outcomes, size_t n, const struct metric_spec *metrics,
                 size_t n_metrics, const struct source_metrics *sources, size_t n_sources,
                 int n_retries)
{
	cJSON *stats = cJSON_CreateObject();
	cJSON *evals;
	struct strv keys = STRV_INIT;
	char **key_of = xcalloc(n ? n : 1, sizeof(char *));
	const struct trial_outcome **group = xcalloc(n ? n : 1, sizeof(*group));
	int errors = 0;

	for (size_t i = 0; i < n; i++) {
		key_of[i] = eval_key(&outcomes[i]);
		if (!strv_contains(&keys, key_of[i]))
			strv_push(&keys, key_of[i]);
		errors += outcomes[i].exception_type != NULL;
	}
	cJSON_AddNumberToObject(stats, "n_trials", (double)n);
	cJSON_AddNumberToObject(stats, "n_errors", errors);
	cJSON_AddNumberToObject(stats, "n_retries", n_retries);
	evals = cJSON_AddObjectToObject(stats, "evals");
	for (size_t k = 0; k < keys.n; k++) {
		size_t m = 0;

		const struct source_metrics *sm = NULL;
		struct metric_spec *all;
		size_t n_all = 0;

		for (size_t i = 0; i < n; i++)
			if (strcmp(key_of[i], keys.v[k]) == 0)
				group[m++] = &outcomes[i];
		for (size_t s = 0; s < n_sources && m; s++)
			if (group[0]->source && !strcmp(sources[s].source, group[0]->source))
				sm = &sources[s];
		all = xcalloc((sm ? sm->n_metrics : 0) + n_metrics + 1, sizeof(*all));
		for (size_t i = 0; sm && i < sm->n_metrics; i++)
			all[n_all++] = sm->metrics[i];
		for (size_t i = 0; i < n_metrics; i++)
			all[n_all++] = metrics[i];
		cJSON_AddItemToObject(evals, keys.v[k], eval_stats(group, m, all, n_all));
		free(all);
	}
	{
		cJSON *tampered = cJSON_AddObjectToObject(stats, "tampered_trials");

		for (size_t i = 0; i < n; i++)
			if (cJSON_IsArray(outcomes[i].tampering) && outcomes[i].tampering->child &&
			    outcomes[i].trial_name)
				cJSON_AddItemToObject(tampered, outcomes[i].trial_name,
				                      cJSON_Duplicate(outcomes[i].tampering, 1));
	}
	for (size_t i = 0; i < n; i++)
		free(key_of[i]);
	free(key_of);
	free(group);
	strv_release(&keys);
	return stats;
}
