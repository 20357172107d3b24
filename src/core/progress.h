/* Job progress: a live block on a terminal (status, running trials with their phase),
 * timestamped lines otherwise, only the results path and summary line with -q; a
 * summary table per eval at the end. */
#ifndef ROLLOUT_PROGRESS_H
#define ROLLOUT_PROGRESS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct job;
struct job_item;

struct progress {
	int mode; /* enum progress_mode, resolved (never AUTO) */
	double start_mono;
	double last_draw;
	size_t done, errors;
	size_t adopted;   /* done before this run (resume): not in the ETA's rate */
	char *mean;       /* the first metric per eval, as the summary computes it */
	double mean_mono; /* when it was computed */
	bool mean_stale;  /* trials finished since */
	int lines_shown;  /* lines of the live block on the terminal */
};

void progress_begin(struct progress *p, const struct job *job);
void progress_tick(struct progress *p, const struct job *job);
void progress_trial_done(struct progress *p, const struct job *job, const struct job_item *it);
void progress_note(struct progress *p, const char *msg);
void progress_end(struct progress *p, const struct job *job);

/* The per-eval summary table (stats as job_stats() builds them). */
void job_print_summary(FILE *out, const cJSON *stats);

#endif
