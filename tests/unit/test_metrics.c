/* Unit tests for job statistics: eval keys, metrics with errors as 0, pass@k,
 * multi-key rewards, distributions. */
#include "core/metrics.h"
#include "harness.h"
#include "rollout/cleanup.h"
#include "rollout/json.h"

#include <math.h>
#include <stdio.h>
#include <time.h>

static cJSON *rw(const char *json)
{
	return json ? cJSON_Parse(json) : NULL;
}

static double num(const cJSON *o, const char *path1, const char *path2)
{
	const cJSON *v = cJSON_GetObjectItem(o, path1);

	if (path2)
		v = cJSON_GetObjectItem(v, path2);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

TEST(eval_key_forms)
{
	struct trial_outcome a = {.agent_name = "oracle", .source = "tb"};
	struct trial_outcome b = {.agent_name = "claude-code", .model_name = "anthropic/x"};
	_cleanup_free_ char *ka = eval_key(&a);
	_cleanup_free_ char *kb = eval_key(&b);

	CHECK_STR(ka, "oracle__tb");
	/* Harbor keys by model_info.name: the provider is not part of it */
	CHECK_STR(kb, "claude-code__x__adhoc");
	{
		struct trial_outcome c = {.agent_name = "nop", .model_name = "openrouter/a/b"};
		struct trial_outcome d = {.agent_name = "nop", .model_name = "gpt-5"};
		_cleanup_free_ char *kc = eval_key(&c);
		_cleanup_free_ char *kd = eval_key(&d);

		CHECK_STR(kc, "nop__a-b__adhoc");
		CHECK_STR(kd, "nop__gpt-5__adhoc");
	}
}

TEST(pass_at_k_estimator)
{
	CHECK(fabs(pass_at_k(4, 2, 2) - (1.0 - (2.0 / 4) * (1.0 / 3))) < 1e-12);
	CHECK(pass_at_k(4, 0, 2) == 0.0);
	CHECK(pass_at_k(4, 3, 2) == 1.0);
	CHECK(isnan(pass_at_k(1, 1, 2)));
}

TEST(mean_counts_errors_as_zero_and_builds_distributions)
{
	cJSON *r1 = rw("{\"reward\": 1.0}"), *r0 = rw("{\"reward\": 0}");
	struct trial_outcome o[] = {
	    {"t1", "a", "oracle", NULL, "ds", r1, NULL, NULL},
	    {"t2", "b", "oracle", NULL, "ds", r0, NULL, NULL},
	    {"t3", "c", "oracle", NULL, "ds", NULL, "RewardFileNotFoundError", NULL},
	    {"t4", "d", "oracle", NULL, "ds", r1, "AgentTimeoutError", NULL},
	};
	_cleanup_json_ cJSON *s = job_stats(o, 4, NULL, 0, NULL, 0, 2);
	const cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "evals"), "oracle__ds");

	REQUIRE(e);
	CHECK_INT(num(s, "n_trials", NULL), 4);
	CHECK_INT(num(s, "n_errors", NULL), 2);
	CHECK_INT(num(s, "n_retries", NULL), 2);
	CHECK_INT(num(e, "n_trials", NULL), 3);
	CHECK_INT(num(e, "n_errors", NULL), 2);
	CHECK(fabs(num(cJSON_GetArrayItem(cJSON_GetObjectItem(e, "metrics"), 0), "mean", NULL) -
	           0.5) < 1e-12);
	CHECK_INT(
	    cJSON_GetArraySize(cJSON_GetObjectItem(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(e, "reward_stats"), "reward"), "1.0")),
	    2);
	CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "exception_stats"),
	                                                 "RewardFileNotFoundError")),
	          1);
	cJSON_Delete(r1);
	cJSON_Delete(r0);
}

TEST(multi_key_rewards_are_bare_per_key_without_pass_at_k)
{
	cJSON *a = rw("{\"correct\": 1, \"style\": 0.5}"), *b = rw("{\"correct\": 0}");
	struct trial_outcome o[] = {
	    {"t1", "x", "oracle", NULL, NULL, a, NULL, NULL},
	    {"t2", "x", "oracle", NULL, NULL, b, NULL, NULL},
	};
	struct metric_spec m[] = {{"mean"}, {"max"}};
	_cleanup_json_ cJSON *s = job_stats(o, 2, m, 2, NULL, 0, 0);
	const cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "evals"), "oracle__adhoc");
	const cJSON *metrics = cJSON_GetObjectItem(e, "metrics");

	REQUIRE(e);
	/* Harbor's bare form: {key: value} per metric, in the metrics' order */
	CHECK(num(cJSON_GetArrayItem(metrics, 0), "correct", NULL) == 0.5);
	CHECK(num(cJSON_GetArrayItem(metrics, 0), "style", NULL) == 0.25);
	CHECK(num(cJSON_GetArrayItem(metrics, 1), "style", NULL) == 0.5);
	/* several keys: Harbor's dict[int, float] pass@k does not apply, {} */
	REQUIRE(cJSON_IsObject(cJSON_GetObjectItem(e, "pass_at_k")));
	CHECK(cJSON_GetObjectItem(e, "pass_at_k")->child == NULL);
	cJSON_Delete(a);
	cJSON_Delete(b);
}

TEST(pass_at_k_averages_over_tasks_and_stops_at_min_trials)
{
	cJSON *one = rw("{\"reward\": 1}"), *zero = rw("{\"reward\": 0}");
	struct trial_outcome o[] = {
	    {"a1", "a", "nop", NULL, "d", one, NULL, NULL},
	    {"a2", "a", "nop", NULL, "d", zero, NULL, NULL},
	    {"a3", "a", "nop", NULL, "d", zero, NULL, NULL},
	    {"a4", "a", "nop", NULL, "d", zero, NULL, NULL},
	    {"b1", "b", "nop", NULL, "d", zero, NULL, NULL},
	    {"b2", "b", "nop", NULL, "d", zero, NULL, NULL},
	    {"b3", "b", "nop", NULL, "d", NULL, "X", NULL},
	    {"b4", "b", "nop", NULL, "d", zero, NULL, NULL},
	};
	_cleanup_json_ cJSON *s = job_stats(o, 8, NULL, 0, NULL, 0, 0);
	const cJSON *p = cJSON_GetObjectItem(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(s, "evals"), "nop__d"), "pass_at_k");

	REQUIRE(p);
	CHECK(fabs(num(p, "2", NULL) - (pass_at_k(4, 1, 2) + 0) / 2) < 1e-12);
	CHECK(fabs(num(p, "4", NULL) - 0.5) < 1e-12);
	CHECK(!cJSON_GetObjectItem(p, "5"));
	cJSON_Delete(one);
	cJSON_Delete(zero);
}

TEST(pass_at_k_is_empty_for_non_binary_single_key)
{
	cJSON *a = rw("{\"reward\": 0.5}"), *b = rw("{\"reward\": 1}");
	struct trial_outcome o[] = {
	    {"t1", "x", "nop", NULL, NULL, a, NULL, NULL},
	    {"t2", "x", "nop", NULL, NULL, b, NULL, NULL},
	};
	_cleanup_json_ cJSON *s = job_stats(o, 2, NULL, 0, NULL, 0, 0);
	const cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "evals"), "nop__adhoc");
	const cJSON *p = cJSON_GetObjectItem(e, "pass_at_k");

	REQUIRE(cJSON_IsObject(p));
	CHECK(p->child == NULL);
	cJSON_Delete(a);
	cJSON_Delete(b);
}

TEST(dataset_metrics_come_before_the_jobs)
{
	cJSON *r = rw("{\"reward\": 0.5}");
	struct trial_outcome o[] = {
	    {"t1", "a", "oracle", NULL, "reg", r, NULL, NULL},
	    {"t2", "a", "oracle", NULL, "local", r, NULL, NULL},
	};
	struct metric_spec job_m[] = {{"max"}};
	struct metric_spec reg_m[] = {{"sum"}};
	struct source_metrics sm[] = {{"reg", reg_m, 1}};
	_cleanup_json_ cJSON *s = job_stats(o, 2, job_m, 1, sm, 1, 0);
	const cJSON *evals = cJSON_GetObjectItem(s, "evals");
	const cJSON *mr = cJSON_GetObjectItem(cJSON_GetObjectItem(evals, "oracle__reg"), "metrics");
	const cJSON *ml =
	    cJSON_GetObjectItem(cJSON_GetObjectItem(evals, "oracle__local"), "metrics");

	CHECK_INT(cJSON_GetArraySize(mr), 2);
	CHECK(num(cJSON_GetArrayItem(mr, 0), "sum", NULL) == 0.5);
	CHECK(num(cJSON_GetArrayItem(mr, 1), "max", NULL) == 0.5);
	CHECK_INT(cJSON_GetArraySize(ml), 1);
	CHECK(num(cJSON_GetArrayItem(ml, 0), "max", NULL) == 0.5);
	cJSON_Delete(r);
}

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The least CPU time of three job_stats over 4 trials of `keys` reward keys each. */
static double stats_cpu(size_t keys)
{
	struct trial_outcome o[4];
	double best = 1e9;

	for (size_t i = 0; i < ARRAY_SIZE(o); i++) {
		cJSON *r = cJSON_CreateObject();

		for (size_t k = 0; k < keys; k++) {
			char name[32];

			snprintf(name, sizeof(name), "key-%zu", (k * 7919 + i) % keys);
			cJSON_AddNumberToObject(r, name, (double)((k + i) % 2));
		}
		o[i] = (struct trial_outcome){"t", "task", "nop", NULL, "d", r, NULL, NULL};
	}
	for (int rep = 0; rep < 3; rep++) {
		double t0 = cpu_now();
		cJSON *s = job_stats(o, ARRAY_SIZE(o), NULL, 0, NULL, 0, 0);
		double t = cpu_now() - t0;

		cJSON_Delete(s);
		if (t < best)
			best = t;
	}
	for (size_t i = 0; i < ARRAY_SIZE(o); i++)
		cJSON_Delete((cJSON *)o[i].rewards);
	return best;
}

TEST(statistics_cost_grows_linearly_with_reward_keys)
{
	/* Results cap their keys (REWARD_KEYS_MAX), but the statistics must not need
	 * the cap: looking each key up in each trial took a minute for 80,000 keys.
	 * 8 times the keys costs about 8 times the time when linear (a sort adds a
	 * log), 64 times when quadratic; the bound sits between. */
	double small = stats_cpu(1000), big = stats_cpu(8000);

	if (big >= small * 32)
		test_fail_at(__FILE__, __LINE__, "1000 keys: %.4f s, 8000 keys: %.4f s", small,
		             big);
}
