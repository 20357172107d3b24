/* Job progress on stderr: a live line (done/total, running, errors, mean reward,
 * elapsed, ETA) on a terminal, timestamped lines otherwise; the summary at the end. */
#include "core/progress.h"
#include "core/job.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/json.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

static void fmt_duration(double s, char *buf, size_t n)
{
	long t = (long)(s + 0.5);

	if (t >= 3600)
		snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
	else if (t >= 60)
		snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
	else
		snprintf(buf, n, "%lds", t);
}

static size_t count(const struct job *job, enum job_item_state st)
{
	size_t n = 0;

	for (size_t i = 0; i < job->n_items; i++)
		n += job->items[i].state == st;
	return n;
}

static size_t total(const struct job *job)
{
	return job->n_items - count(job, ITEM_SKIPPED);
}

void progress_begin(struct progress *p, const struct job *job)
{
	memset(p, 0, sizeof(*p));
	p->mode = job->progress;
	if (p->mode == PROGRESS_AUTO)
		p->mode = isatty(STDERR_FILENO) ? PROGRESS_LIVE : PROGRESS_LINES;
	p->start_mono = mono_now();
	/* Trials adopted on resume count as done already. */
	for (size_t i = 0; i < job->n_items; i++) {
		const struct job_item *it = &job->items[i];

		if (it->state != ITEM_DONE || !it->has_result)
			continue;
		p->done++;
		p->errors += it->result.exception != NULL;
	}
	if (p->mode == PROGRESS_LINES) {
		char ts[ISO8601_LEN];

		iso8601_format(wall_now(), ts, sizeof(ts));
		fprintf(stderr, "%s job %s: %zu trials, %zu already done\n", ts, job->cfg->job_name,
		        total(job), p->done);
	}
}

static void clear_line(struct progress *p)
{
	if (p->line_shown) {
		fputs("\r\033[K", stderr);
		p->line_shown = false;
	}
}

static void draw(struct progress *p, const struct job *job)
{
	char elapsed[32], eta[32] = "?";
	double el = mono_now() - p->start_mono;
	size_t tot = total(job), running = count(job, ITEM_RUNNING);
	size_t done_now = p->done;

	fmt_duration(el, elapsed, sizeof(elapsed));
	if (done_now > 0 && done_now < tot)
		fmt_duration(el / (double)done_now * (double)(tot - done_now), eta, sizeof(eta));
	else if (done_now >= tot)
		snprintf(eta, sizeof(eta), "0s");
	clear_line(p);
	fprintf(stderr, "[%zu/%zu] running %zu, errors %zu", done_now, tot, running, p->errors);
	if (p->done)
		fprintf(stderr, ", mean reward %.3f", p->reward_sum / (double)p->done);
	fprintf(stderr, ", %s elapsed, ETA %s", elapsed, eta);
	fflush(stderr);
	p->line_shown = true;
	p->last_draw = mono_now();
}

void progress_tick(struct progress *p, const struct job *job)
{
	if (p->mode == PROGRESS_LIVE && mono_now() - p->last_draw >= 0.5)
		draw(p, job);
}

/* The first reward value, or 0 (errors count as 0, as in the mean). */
static double first_reward(const struct job_item *it)
{
	const cJSON *r = it->has_result ? it->result.rewards : NULL;

	return r && r->child && cJSON_IsNumber(r->child) ? r->child->valuedouble : 0.0;
}

void progress_trial_done(struct progress *p, const struct job *job, const struct job_item *it)
{
	const struct trial_result *r = &it->result;

	p->done++;
	p->errors += it->has_result && r->exception;
	p->reward_sum += first_reward(it);
	if (p->mode == PROGRESS_LIVE) {
		draw(p, job);
	} else if (p->mode == PROGRESS_LINES) {
		char ts[ISO8601_LEN];
		_cleanup_free_ char *rw = r->rewards ? cJSON_PrintUnformatted(r->rewards) : NULL;

		iso8601_format(wall_now(), ts, sizeof(ts));
		fprintf(stderr, "%s [%zu/%zu] %s %s%s%s%s (%.1f s)\n", ts, p->done, total(job),
		        it->trial_name, rw ? "rewards " : "", rw ? rw : "",
		        r->exception ? (rw ? " " : "") : "", r->exception ? r->exception->type : "",
		        r->finished_at - r->started_at);
	}
}

void progress_note(struct progress *p, const char *msg)
{
	char ts[ISO8601_LEN];

	if (p->mode == PROGRESS_QUIET)
		return;
	clear_line(p);
	iso8601_format(wall_now(), ts, sizeof(ts));
	fprintf(stderr, "%s %s\n", p->mode == PROGRESS_LINES ? ts : "rollout:", msg);
}

void progress_end(struct progress *p, const struct job *job)
{
	_cleanup_json_ cJSON *stats = NULL;

	if (p->mode == PROGRESS_QUIET)
		return;
	if (p->mode == PROGRESS_LIVE)
		draw(p, job);
	clear_line(p);
	stats = job_compute_stats(job);
	fprintf(stderr, "\n");
	job_print_summary(stderr, stats);
	fprintf(stderr, "\nresults: %s\n", job->dir);
}

static void print_names_count(FILE *out, const cJSON *obj, const char *indent)
{
	const cJSON *c;
	bool first = true;

	fputs(indent, out);
	cJSON_ArrayForEach(c, obj)
	{
		fprintf(out, "%s%s: %d", first ? "" : ", ", c->string, cJSON_GetArraySize(c));
		first = false;
	}
	fputc('\n', out);
}

/* Trials whose verification showed signs of tampering: a reviewer looks at
 * these before trusting their scores. */
static void print_tampered(FILE *out, const cJSON *tampered)
{
	const cJSON *t, *f;
	int n = cJSON_GetArraySize(tampered), shown = 0;

	if (n <= 0)
		return;
	fprintf(out, "tampering signs in %d trial%s (see their result.json \"integrity\"):\n", n,
	        n == 1 ? "" : "s");
	cJSON_ArrayForEach(t, tampered)
	{
		if (shown++ == 20) {
			fprintf(out, "    ... and %d more\n", n - 20);
			break;
		}
		fprintf(out, "    %s:", t->string);
		cJSON_ArrayForEach(f, t) if (cJSON_IsString(f)) fprintf(out, " %s", f->valuestring);
		fputc('\n', out);
	}
}

/* Why an eval has no pass@k (Harbor's rule: a single reward key, 0 or 1). */
static void print_pass_at_k_na(FILE *out, const cJSON *reward_stats)
{
	const cJSON *key = reward_stats ? reward_stats->child : NULL;
	const cJSON *v;
	int n_keys = cJSON_GetArraySize(reward_stats);

	if (n_keys > 1) {
		fprintf(out, "    pass@k: does not apply (%d reward keys; it needs a single 0/1 reward)\n",
		        n_keys);
		return;
	}
	cJSON_ArrayForEach(v, key)
	{
		if (strcmp(v->string, "0.0") != 0 && strcmp(v->string, "1.0") != 0) {
			fprintf(out, "    pass@k: does not apply (rewards other than 0 and 1)\n");
			return;
		}
	}
	/* Binary rewards, yet no k: fewer than 2 trials of some task (-k 2 or more). */
}

void job_print_summary(FILE *out, const cJSON *stats)
{
	const cJSON *evals = cJSON_GetObjectItemCaseSensitive(stats, "evals");
	const cJSON *e;

	fprintf(out, "%-40s %7s %7s  %s\n", "eval (agent__[model__]dataset)", "trials", "errors",
	        "metrics");
	cJSON_ArrayForEach(e, evals)
	{
		const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(e, "metrics");
		const cJSON *m, *v;
		struct strbuf line = STRBUF_INIT;

		cJSON_ArrayForEach(m, metrics)
		{
			/* Several reward keys: Harbor's bare {key: value} per metric. */
			bool group = cJSON_GetArraySize(m) > 1;

			if (line.len)
				sb_adds(&line, ", ");
			if (group)
				sb_addc(&line, '[');
			cJSON_ArrayForEach(v, m)
			{
				if (v != m->child)
					sb_adds(&line, ", ");
				if (cJSON_IsNumber(v) && !isnan(v->valuedouble))
					sb_addf(&line, "%s %.3f", v->string, v->valuedouble);
				else
					sb_addf(&line, "%s -", v->string);
			}
			if (group)
				sb_addc(&line, ']');
		}
		fprintf(out, "%-40s %7d %7d  %s\n", e->string,
		        cJSON_GetObjectItemCaseSensitive(e, "n_trials")->valueint,
		        cJSON_GetObjectItemCaseSensitive(e, "n_errors")->valueint, sb_str(&line));
		sb_release(&line);
		{
			const cJSON *pk = cJSON_GetObjectItemCaseSensitive(e, "pass_at_k");
			const cJSON *rs = cJSON_GetObjectItemCaseSensitive(e, "reward_stats");
			const cJSON *es = cJSON_GetObjectItemCaseSensitive(e, "exception_stats");
			const cJSON *k;

			if (pk && pk->child) {
				fputs("    pass@k:", out);
				cJSON_ArrayForEach(k, pk)
				fprintf(out, " @%s %.3f", k->string, k->valuedouble);
				fputc('\n', out);
			} else if (pk) {
				print_pass_at_k_na(out, rs);
			}
			cJSON_ArrayForEach(k, rs)
			{
				fprintf(out, "    %s:", k->string);
				print_names_count(out, k, " ");
			}
			if (es && es->child) {
				fputs("    errors:", out);
				print_names_count(out, es, " ");
			}
		}
	}
	fprintf(out, "total: %d trials, %d errors, %d retries\n",
	        cJSON_GetObjectItemCaseSensitive(stats, "n_trials")->valueint,
	        cJSON_GetObjectItemCaseSensitive(stats, "n_errors")->valueint,
	        cJSON_GetObjectItemCaseSensitive(stats, "n_retries")->valueint);
	print_tampered(out, cJSON_GetObjectItemCaseSensitive(stats, "tampered_trials"));
}
