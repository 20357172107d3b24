/* Job progress: one live line on a terminal, timestamped lines otherwise, nothing
 * with -q; a summary table per eval at the end. */
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
	size_t done, errors, rewarded;
	double reward_sum;
	bool line_shown;
};

void progress_begin(struct progress *p, const struct job *job);
void progress_tick(struct progress *p, const struct job *job);
void progress_trial_done(struct progress *p, const struct job *job, const struct job_item *it);
void progress_note(struct progress *p, const char *msg);
void progress_end(struct progress *p, const struct job *job);

/* The per-eval summary table (stats as job_stats() builds them). */
void job_print_summary(FILE *out, const cJSON *stats);

#endif
