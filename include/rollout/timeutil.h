/* Clocks and timestamps. */
#ifndef ROLLOUT_TIMEUTIL_H
#define ROLLOUT_TIMEUTIL_H

#include <stddef.h>
#include <time.h>

/* Seconds on the monotonic clock. */
double mono_now(void);
/* Seconds since the epoch, wall clock. */
double wall_now(void);
/* ISO-8601 UTC with microseconds, as Harbor writes: 2026-11-24T18:37:00.123456Z */
void iso8601_format(double t, char *buf, size_t n);
#define ISO8601_LEN 40
/* Parses what iso8601_format writes (and "+00:00" offsets); -1 on failure. */
int iso8601_parse(const char *s, double *t);
void sleep_sec(double s);

#endif
