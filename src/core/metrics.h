/* Job statistics from trial results (reference/harbor.md §5, §10), computed from the
 * result files alone: per eval (agent × model × dataset) trial and error counts,
 * metrics with errors counted as 0, pass@k for binary rewards, multi-key rewards
 * per key, reward and exception distributions. */
#ifndef ROLLOUT_METRICS_H
#define ROLLOUT_METRICS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

struct trial_result;

/* What the statistics need of one finished trial. */
struct trial_outcome {
	const char *trial_name;
	const char *task_name;
	const char *agent_name;
	const char *model_name;     /* NULL when none */
	const char *source;         /* dataset name; NULL = "adhoc" */
	const cJSON *rewards;       /* flat {key: number} or NULL */
	const char *exception_type; /* NULL when none */
	const cJSON *tampering;     /* result.json integrity.tampering: flags, or NULL */
};

void trial_outcome_from_result(const struct trial_result *r, struct trial_outcome *o);

/* Harbor's eval key: "{agent}__{model}__{dataset}" or "{agent}__{dataset}", where
 * model is the model name without its provider ("openai/gpt-5" -> "gpt-5"), with "/"
 * replaced by "-". Heap string. */
char *eval_key(const struct trial_outcome *o);

/* Metric names understood: mean (default), sum, min, max. */
struct metric_spec {
	const char *type;
};

/* Metrics a registry dataset declares for its trials (keyed by source). */
struct source_metrics {
	const char *source;
	const struct metric_spec *metrics;
	size_t n_metrics;
};

/* The JobStats object: {"n_trials", "n_errors", "n_retries", "evals": {...},
 * "tampered_trials": {trial: [flags]}} (rollout's own last key: trials whose
 * verification showed signs of tampering, core/trial_run.c integrity_json). An
 * eval's metrics are its dataset's (from `sources`, may be NULL) followed by the
 * job's; mean when both are empty (reference/harbor.md §10). */
cJSON *job_stats(const struct trial_outcome *outcomes, size_t n, const struct metric_spec *metrics,
                 size_t n_metrics, const struct source_metrics *sources, size_t n_sources,
                 int n_retries);

/* The unbiased pass@k estimator 1 - C(n-c, k) / C(n, k). */
double pass_at_k(int n, int c, int k);

#endif
