/* Clocks and ISO-8601 timestamps. */
#include "rollout/timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void iso8601_format(double t, char *buf, size_t n)
{
	time_t secs = (time_t)t;
	long usec = (long)((t - (double)secs) * 1e6 + 0.5);
	struct tm tm;

	if (usec >= 1000000) {
		secs++;
		usec -= 1000000;
	}
	gmtime_r(&secs, &tm);
	snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian); avoids timegm portability. */
static long days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	long era = (y >= 0 ? y : y - 399) / 400;
	long yoe = y - era * 400;
	long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

int iso8601_parse(const char *s, double *t)
{
	int y, mo, d, h, mi, sec, used = 0;
	double frac = 0;
	int tz_sign = 0, tz_h = 0, tz_m = 0;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6)
		return -1;
	s += used;
	if (*s == '.') {
		double scale = 0.1;

		for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10)
			frac += (*s - '0') * scale;
	}
	if (*s == 'Z')
		s++;
	else if (*s == '+' || *s == '-') {
		tz_sign = *s == '+' ? 1 : -1;
		if (sscanf(s + 1, "%2d:%2d", &tz_h, &tz_m) != 2)
			return -1;
		s += 6;
	}
	if (*s)
		return -1;
	*t = (double)days_from_civil(y, mo, d) * 86400.0 + h * 3600 + mi * 60 + sec + frac -
	     tz_sign * (tz_h * 3600 + tz_m * 60);
	return 0;
}

void sleep_sec(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
