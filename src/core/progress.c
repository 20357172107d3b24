/* Job progress on stderr. On a terminal: a block redrawn in place (done/total,
 * running, errors, the mean as the final summary computes it, elapsed, ETA; then
 * each running trial with its phase and time), and above it one permanent line per
 * finished trial with its reward or error. Without a terminal (or
 * ROLLOUT_PROGRESS=lines): the same facts as plain timestamped lines, one per
 * finished trial. With -q: only the results path and the summary line at the end. */
#include "core/progress.h"
#include "core/job_run.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <math.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Running trials listed under the status line, at most. */
#define LIVE_MAX_RUNNING 12
/* The mean is recomputed from every result at most this often (it is linear in
 * the trials, as the job's result.json is). */
#define MEAN_INTERVAL_SEC 1.0

static const char *const phase_names[] = {"setup",  "install", "agent",
                                          "verify", "collect", "teardown"};

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

/* The first metric of each eval, as the final summary prints it: "mean 0.556", or
 * with several evals "mean 0.556 (oracle__ds), 0.250 (nop__ds)". */
static void update_mean(struct progress *p, const struct job *job)
{
	_cleanup_json_ cJSON *stats = job_compute_stats(job);
	const cJSON *evals = cJSON_GetObjectItemCaseSensitive(stats, "evals");
	int n_evals = cJSON_GetArraySize(evals);
	struct strbuf sb = STRBUF_INIT;
	const cJSON *e;

	cJSON_ArrayForEach(e, evals)
	{
		const cJSON *m =
		    cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(e, "metrics"), 0);
		const cJSON *v = m ? m->child : NULL;

		if (!v)
			continue;
		if (!sb.len)
			sb_addf(&sb, "%s ", v->string);
		else
			sb_adds(&sb, ", ");
		if (cJSON_IsNumber(v) && !isnan(v->valuedouble))
			sb_addf(&sb, "%.3f", v->valuedouble);
		else if (cJSON_IsObject(v) && v->child && cJSON_IsNumber(v->child))
			sb_addf(&sb, "%s %.3f", v->child->string, v->child->valuedouble);
		else
			sb_adds(&sb, "-");
		if (n_evals > 1)
			sb_addf(&sb, " (%s)", e->string);
		if (sb.len > 200)
			break;
	}
	free(p->mean);
	p->mean = sb_detach(&sb);
	p->mean_mono = mono_now();
	p->mean_stale = false;
}

/* Trials finished in this run: the rate behind the ETA (adopted ones took no time). */
static void eta_text(const struct progress *p, const struct job *job, char *buf, size_t n)
{
	double el = mono_now() - p->start_mono;
	size_t tot = total(job);
	size_t now = p->done - p->adopted;

	if (p->done >= tot) {
		snprintf(buf, n, "0s");
	} else if (now == 0) {
		snprintf(buf, n, "?");
	} else {
		/* The rate of this run (trials run n at a time, so it already
		 * counts the concurrency) over what is left. */
		fmt_duration(el / (double)now * (double)(tot - p->done), buf, n);
	}
}

static void status_line(const struct progress *p, const struct job *job, struct strbuf *sb)
{
	char elapsed[32], eta[32];

	fmt_duration(mono_now() - p->start_mono, elapsed, sizeof(elapsed));
	eta_text(p, job, eta, sizeof(eta));
	sb_addf(sb, "[%zu/%zu] running %zu, errors %zu", p->done, total(job),
	        count(job, ITEM_RUNNING), p->errors);
	if (p->mean && *p->mean)
		sb_addf(sb, ", %s", p->mean);
	sb_addf(sb, ", %s elapsed, ETA %s", elapsed, eta);
}

static int term_width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

/* One line of the block, cut to the terminal's width so the block never wraps
 * (the redraw counts lines). */
static void put_line(const char *s, int width)
{
	fprintf(stderr, "%.*s\033[K\n", width - 1, s);
}

static void erase_block(struct progress *p)
{
	if (p->lines_shown) {
		/* To the block's first line, and clear everything below. */
		fprintf(stderr, "\033[%dA\r\033[J", p->lines_shown);
		p->lines_shown = 0;
	}
}

/* A log message is about to be printed: the block goes, and comes back at the next
 * tick below the message. */
static void before_log(void *ctx)
{
	struct progress *p = ctx;

	erase_block(p);
	fflush(stderr);
	p->last_draw = 0;
}

static void draw(struct progress *p, const struct job *job)
{
	struct strbuf sb = STRBUF_INIT;
	int width = term_width(), shown = 0, more = 0;
	double now = mono_now();

	erase_block(p);
	status_line(p, job, &sb);
	put_line(sb.buf, width);
	p->lines_shown = 1;
	for (size_t i = 0; i < job->n_items; i++) {
		const struct job_item *it = &job->items[i];
		char in_phase[32], all[32];

		if (it->state != ITEM_RUNNING)
			continue;
		if (shown == LIVE_MAX_RUNNING) {
			more++;
			continue;
		}
		fmt_duration(now - it->phase_mono, in_phase, sizeof(in_phase));
		fmt_duration(now - it->started_mono, all, sizeof(all));
		sb_reset(&sb);
		sb_addf(&sb, "  %-44s %-8s %6s  (%s in all)", it->trial_name,
		        it->phase >= 0 && it->phase < 6 ? phase_names[it->phase] : "starting",
		        in_phase, all);
		put_line(sb.buf, width);
		p->lines_shown++;
		shown++;
	}
	if (more) {
		sb_reset(&sb);
		sb_addf(&sb, "  ... and %d more running", more);
		put_line(sb.buf, width);
		p->lines_shown++;
	}
	fflush(stderr);
	sb_release(&sb);
	p->last_draw = now;
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
	p->adopted = p->done;
	if (p->mode == PROGRESS_QUIET)
		return;
	if (p->mode == PROGRESS_LIVE)
		log_set_stderr_hook(before_log, p);
	update_mean(p, job);
	if (p->mode == PROGRESS_LINES) {
		char ts[ISO8601_LEN];

		iso8601_format(wall_now(), ts, sizeof(ts));
		fprintf(stderr, "%s job %s: %zu trials, %zu already done%s%s\n", ts,
		        job->cfg->job_name, total(job), p->done, p->done ? ", " : "",
		        p->done ? p->mean : "");
	}
}

void progress_tick(struct progress *p, const struct job *job)
{
	if (p->mode == PROGRESS_QUIET)
		return;
	if (p->mean_stale && mono_now() - p->mean_mono >= MEAN_INTERVAL_SEC)
		update_mean(p, job);
	if (p->mode == PROGRESS_LIVE && mono_now() - p->last_draw >= 0.5)
		draw(p, job);
}

/* "rewards {"reward":1}", "AgentTimeoutError", or both. */
static void outcome(const struct trial_result *r, struct strbuf *sb)
{
	_cleanup_free_ char *rw = r->rewards ? cJSON_PrintUnformatted(r->rewards) : NULL;

	if (rw)
		sb_addf(sb, "rewards %s", rw);
	if (r->exception)
		sb_addf(sb, "%s%s", rw ? " " : "", r->exception->type);
	if (!rw && !r->exception)
		sb_adds(sb, "no rewards");
}

void progress_trial_done(struct progress *p, const struct job *job, const struct job_item *it)
{
	const struct trial_result *r = &it->result;
	struct strbuf sb = STRBUF_INIT;
	char ts[ISO8601_LEN], eta[32];

	p->done++;
	p->errors += it->has_result && r->exception;
	p->mean_stale = true;
	if (p->mode == PROGRESS_QUIET)
		return;
	/* The mean this line shows counts the trial it reports. */
	if (mono_now() - p->mean_mono >= MEAN_INTERVAL_SEC || job->n_items <= 1000)
		update_mean(p, job);
	eta_text(p, job, eta, sizeof(eta));
	sb_addf(&sb, "[%zu/%zu] %s ", p->done, total(job), it->trial_name);
	outcome(r, &sb);
	sb_addf(&sb, " (%.1f s)", r->finished_at - r->started_at);
	if (p->mode == PROGRESS_LIVE) {
		erase_block(p);
		fprintf(stderr, "%s\n", sb.buf);
		draw(p, job);
	} else {
		iso8601_format(wall_now(), ts, sizeof(ts));
		fprintf(stderr, "%s %s; %s, ETA %s\n", ts, sb.buf, p->mean ? p->mean : "", eta);
	}
	sb_release(&sb);
}

void progress_note(struct progress *p, const char *msg)
{
	char ts[ISO8601_LEN];

	if (p->mode == PROGRESS_QUIET)
		return;
	erase_block(p);
	iso8601_format(wall_now(), ts, sizeof(ts));
	fprintf(stderr, "%s %s\n", p->mode == PROGRESS_LINES ? ts : "rollout:", msg);
	p->last_draw = 0; /* redraw at the next tick */
}

/* The summary's last line: "total: 9 trials, 4 errors, 0 retries". */
static void total_line(FILE *out, const cJSON *stats)
{
	fprintf(out, "total: %d trials, %d errors, %d retries\n",
	        cJSON_GetObjectItemCaseSensitive(stats, "n_trials")->valueint,
	        cJSON_GetObjectItemCaseSensitive(stats, "n_errors")->valueint,
	        cJSON_GetObjectItemCaseSensitive(stats, "n_retries")->valueint);
}

void progress_end(struct progress *p, const struct job *job)
{
	_cleanup_json_ cJSON *stats = job_compute_stats(job);

	log_set_stderr_hook(NULL, NULL);
	if (p->mode == PROGRESS_QUIET) {
		/* -q: what a script needs, nothing more. */
		update_mean(p, job);
		fprintf(stderr, "%s%s", p->mean && *p->mean ? p->mean : "",
		        p->mean && *p->mean ? "; " : "");
		total_line(stderr, stats);
		fprintf(stderr, "results: %s\n", job->dir);
		free(p->mean);
		return;
	}
	erase_block(p);
	fprintf(stderr, "\n");
	job_print_summary(stderr, stats);
	fprintf(stderr, "\nresults: %s\n", job->dir);
	free(p->mean);
	p->mean = NULL;
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
		fprintf(
		    out,
		    "    pass@k: does not apply (%d reward keys; it needs a single 0/1 reward)\n",
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
	total_line(out, stats);
	print_tampered(out, cJSON_GetObjectItemCaseSensitive(stats, "tampered_trials"));
}
