/* Job statistics: evals keyed agent__model__dataset, metrics with errors as 0,
 * pass@k, reward and exception distributions. Pure functions of the outcomes. */
#include "core/metrics.h"
#include "core/result.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/strbuf.h"
#include "rollout/strmap.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
	o->tampering =
	    r->integrity ? cJSON_GetObjectItemCaseSensitive(r->integrity, "tampering") : NULL;
}

char *eval_key(const struct trial_outcome *o)
{
	char *key;

	if (o->model_name) {
		/* Harbor keys by model_info.name: the model without its provider. */
		const char *slash = strchr(o->model_name, '/');
		const char *model = slash && slash[1] ? slash + 1 : o->model_name;

		key = xasprintf("%s__%s__%s", o->agent_name ? o->agent_name : "unknown", model,
		                o->source ? o->source : "adhoc");
	} else {
		key = xasprintf("%s__%s", o->agent_name ? o->agent_name : "unknown",
		                o->source ? o->source : "adhoc");
	}
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

/* Arrays of trial names under string keys (distributions): one lookup per name. */
struct name_lists {
	cJSON *obj;
	struct strmap index; /* key -> the list (its key string is the list's own) */
};

static void name_lists_add(struct name_lists *nl, const char *key, const char *name)
{
	size_t *slot = strmap_get(&nl->index, key);
	cJSON *list;

	if (slot) {
		list = (cJSON *)(uintptr_t)*slot;
	} else {
		list = cJSON_AddArrayToObject(nl->obj, key);
		strmap_put(&nl->index, list->string, (size_t)(uintptr_t)list, NULL);
	}
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

/* The rewards of an eval's trials, read one key at a time: the keys in first-seen
 * order, and per trial its numeric rewards as (key index, value) cells sorted by key.
 * Building and reading it costs O(rewards) (plus a sort per trial); looking every key
 * up in every trial cost O(keys^2) per trial: 80,000 keys took a minute. */
struct reward_cell {
	size_t key, pos; /* pos: order in the trial's object (the first of a key counts) */
	double value;
};

struct reward_table {
	struct strv keys;
	size_t n;
	struct reward_cell **cells;
	size_t *n_cells, *cursor;
};

static int cell_cmp(const void *a, const void *b)
{
	const struct reward_cell *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void table_build(struct reward_table *tab, const struct trial_outcome *const *t, size_t n)
{
	_cleanup_strmap_ struct strmap index = STRMAP_INIT;

	memset(tab, 0, sizeof(*tab));
	tab->n = n;
	tab->cells = xcalloc(n ? n : 1, sizeof(*tab->cells));
	tab->n_cells = xcalloc(n ? n : 1, sizeof(*tab->n_cells));
	tab->cursor = xcalloc(n ? n : 1, sizeof(*tab->cursor));
	for (size_t i = 0; i < n; i++) {
		const cJSON *c;
		size_t count = 0, pos = 0;

		if (!t[i]->rewards)
			continue;
		for (c = t[i]->rewards->child; c; c = c->next)
			count++;
		tab->cells[i] = xcalloc(count ? count : 1, sizeof(**tab->cells));
		for (c = t[i]->rewards->child; c; c = c->next, pos++) {
			const char *name = c->string ? c->string : "";
			bool added;
			size_t k = *strmap_put(&index, name, tab->keys.n, &added);

			if (added)
				strv_push(&tab->keys, name);
			/* A key with a value that is not a number counts as missing. */
			if (cJSON_IsNumber(c))
				tab->cells[i][tab->n_cells[i]++] =
				    (struct reward_cell){k, pos, c->valuedouble};
		}
		qsort(tab->cells[i], tab->n_cells[i], sizeof(**tab->cells), cell_cmp);
	}
}

/* Key k's column: vals[i] is trial i's reward (0 when missing, as errors count),
 * has[i] whether it had one. Columns must be read in increasing k. */
static void table_column(struct reward_table *tab, size_t k, double *vals, bool *has)
{
	for (size_t i = 0; i < tab->n; i++) {
		const struct reward_cell *c = tab->cells[i];
		size_t *at = &tab->cursor[i];

		while (*at < tab->n_cells[i] && c[*at].key < k)
			(*at)++;
		has[i] = *at < tab->n_cells[i] && c[*at].key == k;
		vals[i] = has[i] ? c[*at].value : 0.0;
	}
}

static void table_release(struct reward_table *tab)
{
	for (size_t i = 0; i < tab->n; i++)
		free(tab->cells[i]);
	free(tab->cells);
	free(tab->n_cells);
	free(tab->cursor);
	strv_release(&tab->keys);
}

/* The eval's tasks: task_of[i] indexes trial i's task (first-seen order), count[j]
 * is task j's number of trials. */
struct task_groups {
	size_t *task_of;
	int *count;
	size_t n;
};

static void task_groups_build(struct task_groups *g, const struct trial_outcome *const *t, size_t n)
{
	_cleanup_strmap_ struct strmap index = STRMAP_INIT;

	g->task_of = xcalloc(n ? n : 1, sizeof(*g->task_of));
	g->count = xcalloc(n ? n : 1, sizeof(*g->count));
	g->n = 0;
	for (size_t i = 0; i < n; i++) {
		size_t j = *strmap_put(&index, t[i]->task_name ? t[i]->task_name : "", g->n, NULL);

		if (j == g->n)
			g->n++;
		g->task_of[i] = j;
		g->count[j]++;
	}
}

static bool column_is_binary(const double *vals, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (vals[i] != 0.0 && vals[i] != 1.0)
			return false;
	return true;
}

/* pass@k for one binary key: k in {2,4,8,...} ∪ {5,10,15,...} up to the smallest
 * number of trials per task, averaged over tasks. NULL when no k applies. */
static cJSON *pass_at_k_for_column(const struct task_groups *g, const double *vals, size_t n)
{
	int *correct = xcalloc(g->n ? g->n : 1, sizeof(int));
	int min_n = 0;
	cJSON *out = NULL;

	for (size_t i = 0; i < n; i++)
		correct[g->task_of[i]] += vals[i] == 1.0;
	for (size_t j = 0; j < g->n; j++)
		if (j == 0 || g->count[j] < min_n)
			min_n = g->count[j];
	for (int k = 2; k <= min_n; k++) {
		bool pow2 = (k & (k - 1)) == 0;
		double sum = 0;
		char name[16];

		if (!pow2 && k % 5 != 0)
			continue;
		for (size_t j = 0; j < g->n; j++)
			sum += pass_at_k(g->count[j], correct[j], k);
		if (!out)
			out = cJSON_CreateObject();
		snprintf(name, sizeof(name), "%d", k);
		cJSON_AddNumberToObject(out, name, sum / (double)g->n);
	}
	free(correct);
	return out;
}

/* One key's distribution: {"1.0": [trial names], ...} over the trials that have it. */
static cJSON *value_distribution(const struct trial_outcome *const *t, const double *vals,
                                 const bool *has, size_t n)
{
	struct name_lists dist = {cJSON_CreateObject(), STRMAP_INIT};

	for (size_t i = 0; i < n; i++) {
		char buf[64];

		if (!has[i])
			continue;
		value_key(vals[i], buf, sizeof(buf));
		name_lists_add(&dist, buf, t[i]->trial_name);
	}
	strmap_release(&dist.index);
	return dist.obj;
}

/* What eval_stats computes per key, before it is laid out as Harbor's JSON. */
struct key_stats {
	double *agg;   /* [metric * n_keys + key] */
	cJSON **pass;  /* pass@k object per key, NULL when none */
	cJSON *rstats; /* reward_stats */
};

static void compute_key_stats(const struct trial_outcome *const *t, size_t n,
                              const struct metric_spec *metrics, size_t n_metrics,
                              struct reward_table *tab, struct key_stats *ks)
{
	size_t n_keys = tab->keys.n;
	double *vals = xcalloc(n ? n : 1, sizeof(double));
	bool *has = xcalloc(n ? n : 1, sizeof(bool));
	struct task_groups g;

	task_groups_build(&g, t, n);
	ks->agg = xcalloc(n_metrics * (n_keys ? n_keys : 1), sizeof(double));
	ks->pass = xcalloc(n_keys ? n_keys : 1, sizeof(cJSON *));
	ks->rstats = cJSON_CreateObject();
	/* No rewards at all: one all-zero column named "reward". */
	if (n_keys == 0) {
		for (size_t m = 0; m < n_metrics; m++)
			ks->agg[m] = aggregate(metrics[m].type, vals, n);
		ks->pass[0] = pass_at_k_for_column(&g, vals, n);
	}
	for (size_t k = 0; k < n_keys; k++) {
		table_column(tab, k, vals, has);
		for (size_t m = 0; m < n_metrics; m++)
			ks->agg[m * n_keys + k] = aggregate(metrics[m].type, vals, n);
		if (n_keys == 1 && column_is_binary(vals, n))
			ks->pass[k] = pass_at_k_for_column(&g, vals, n);
		cJSON_AddItemToObject(ks->rstats, tab->keys.v[k],
		                      value_distribution(t, vals, has, n));
	}
	free(g.task_of);
	free(g.count);
	free(vals);
	free(has);
}

static cJSON *metrics_json(const struct metric_spec *metrics, size_t n_metrics,
                           const struct strv *keys, const double *agg)
{
	cJSON *list = cJSON_CreateArray();
	size_t n_keys = keys->n;

	for (size_t m = 0; m < n_metrics; m++) {
		cJSON *md = cJSON_CreateObject();

		if (n_keys <= 1) {
			cJSON_AddNumberToObject(md, metrics[m].type,
			                        agg[m * (n_keys ? n_keys : 1)]);
		} else {
			/* Several keys: Harbor's bare form, one value per key (missing keys
			 * counted as 0); the list's order says which metric each dict is. */
			for (size_t k = 0; k < n_keys; k++)
				cJSON_AddNumberToObject(md, keys->v[k], agg[m * n_keys + k]);
		}
		cJSON_AddItemToArray(list, md);
	}
	return list;
}

/* pass@k as Harbor writes it (dict[int, float]): only when every trial has at most
 * one reward key and that key is 0/1; {} otherwise (job_print_summary says why). */
static void add_pass_at_k(cJSON *e, const struct strv *keys, cJSON **pass)
{
	if (keys->n <= 1 && pass[0]) {
		cJSON_AddItemToObject(e, "pass_at_k", pass[0]);
		pass[0] = NULL;
	} else {
		cJSON_AddObjectToObject(e, "pass_at_k");
	}
	for (size_t k = 0; k < keys->n; k++)
		cJSON_Delete(pass[k]);
}

static cJSON *eval_stats(const struct trial_outcome *const *t, size_t n,
                         const struct metric_spec *metrics, size_t n_metrics)
{
	static const struct metric_spec default_metric = {"mean"};
	cJSON *e = cJSON_CreateObject();
	struct name_lists estats;
	struct reward_table tab;
	struct key_stats ks;
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
	table_build(&tab, t, n);
	compute_key_stats(t, n, metrics, n_metrics, &tab, &ks);
	cJSON_AddItemToObject(e, "metrics", metrics_json(metrics, n_metrics, &tab.keys, ks.agg));
	add_pass_at_k(e, &tab.keys, ks.pass);
	cJSON_AddItemToObject(e, "reward_stats", ks.rstats);
	estats = (struct name_lists){cJSON_AddObjectToObject(e, "exception_stats"), STRMAP_INIT};
	for (size_t i = 0; i < n; i++)
		if (t[i]->exception_type)
			name_lists_add(&estats, t[i]->exception_type, t[i]->trial_name);
	strmap_release(&estats.index);
	free(ks.agg);
	free(ks.pass);
	table_release(&tab);
	return e;
}

/* The metrics of an eval: its dataset's (from sources), then the job's. */
static struct metric_spec *eval_metrics(const char *source, const struct metric_spec *metrics,
                                        size_t n_metrics, const struct source_metrics *sources,
                                        size_t n_sources, size_t *n_all)
{
	const struct source_metrics *sm = NULL;
	struct metric_spec *all;

	for (size_t s = 0; s < n_sources && source; s++)
		if (!strcmp(sources[s].source, source))
			sm = &sources[s];
	all = xcalloc((sm ? sm->n_metrics : 0) + n_metrics + 1, sizeof(*all));
	*n_all = 0;
	for (size_t i = 0; sm && i < sm->n_metrics; i++)
		all[(*n_all)++] = sm->metrics[i];
	for (size_t i = 0; i < n_metrics; i++)
		all[(*n_all)++] = metrics[i];
	return all;
}

cJSON *job_stats(const struct trial_outcome *outcomes, size_t n, const struct metric_spec *metrics,
                 size_t n_metrics, const struct source_metrics *sources, size_t n_sources,
                 int n_retries)
{
	cJSON *stats = cJSON_CreateObject();
	cJSON *evals;
	_cleanup_strmap_ struct strmap index = STRMAP_INIT;
	struct strv keys = STRV_INIT;
	size_t *eval_of = xcalloc(n ? n : 1, sizeof(*eval_of));
	size_t *start = xcalloc(n + 1, sizeof(*start));
	const struct trial_outcome **group = xcalloc(n ? n : 1, sizeof(*group));
	int errors = 0;

	/* Group the trials by eval key (first-seen order), keeping their order. */
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *key = eval_key(&outcomes[i]);
		size_t *k = strmap_get(&index, key);

		if (!k) {
			/* the map borrows the copy in keys, which stays where it is */
			strv_push_take(&keys, steal_ptr(&key));
			k = strmap_put(&index, keys.v[keys.n - 1], keys.n - 1, NULL);
		}
		eval_of[i] = *k;
		start[eval_of[i] + 1]++;
		errors += outcomes[i].exception_type != NULL;
	}
	for (size_t k = 0; k < keys.n; k++)
		start[k + 1] += start[k];
	{
		size_t *fill = xcalloc(keys.n + 1, sizeof(*fill));

		for (size_t i = 0; i < n; i++)
			group[start[eval_of[i]] + fill[eval_of[i]]++] = &outcomes[i];
		free(fill);
	}
	cJSON_AddNumberToObject(stats, "n_trials", (double)n);
	cJSON_AddNumberToObject(stats, "n_errors", errors);
	cJSON_AddNumberToObject(stats, "n_retries", n_retries);
	evals = cJSON_AddObjectToObject(stats, "evals");
	for (size_t k = 0; k < keys.n; k++) {
		const struct trial_outcome *const *g = &group[start[k]];
		size_t m = start[k + 1] - start[k], n_all;
		struct metric_spec *all =
		    eval_metrics(g[0]->source, metrics, n_metrics, sources, n_sources, &n_all);

		cJSON_AddItemToObject(evals, keys.v[k], eval_stats(g, m, all, n_all));
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
	free(eval_of);
	free(start);
	free(group);
	strv_release(&keys);
	return stats;
}
