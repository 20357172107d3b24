/* Leveled logging: plain messages on stderr, timestamped lines in log files. */
#include "rollout/log.h"
#include "rollout/alloc.h"
#include "rollout/timeutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_MAX_FILES 8

static enum log_level stderr_level = LOG_INFO;
static void (*stderr_hook)(void *ctx);
static void *stderr_hook_ctx;
static int quiet;
static int files[LOG_MAX_FILES] = {-1, -1, -1, -1, -1, -1, -1, -1};
static char **warned;
static size_t n_warned;
/* The sandbox warns from the threads that prepare an environment too. */
static pthread_mutex_t warned_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};

void log_set_level(enum log_level level)
{
	stderr_level = level;
}

void log_set_quiet(int q)
{
	quiet = q;
}

int log_open_fd(int fd)
{
	if (fd < 0)
		return -1;
	for (int i = 0; i < LOG_MAX_FILES; i++) {
		if (files[i] >= 0)
			continue;
		files[i] = fd;
		return i;
	}
	close(fd);
	return -1;
}

void log_close_file(int slot)
{
	if (slot >= 0 && slot < LOG_MAX_FILES && files[slot] >= 0) {
		close(files[slot]);
		files[slot] = -1;
	}
}

void log_close_all_files(void)
{
	for (int i = 0; i < LOG_MAX_FILES; i++)
		log_close_file(i);
}

__attribute__((format(printf, 2, 0))) static void log_vmsg(enum log_level level, const char *fmt,
                                                           va_list ap)
{
	char msg[4096];
	char line[4200];
	char ts[ISO8601_LEN];
	int n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	for (int i = 0; i < LOG_MAX_FILES; i++) {
		if (files[i] < 0)
			continue;
		iso8601_format(wall_now(), ts, sizeof(ts));
		n = snprintf(line, sizeof(line), "%s %s %s\n", ts, level_names[level], msg);
		(void)!write(files[i], line,
		             (size_t)(n < (int)sizeof(line) ? n : (int)sizeof(line) - 1));
	}
	if (level < stderr_level || (quiet && level < LOG_WARN))
		return;
	if (level >= LOG_WARN)
		n = snprintf(line, sizeof(line), "rollout: %s: %s\n",
		             level == LOG_WARN ? "warning" : "error", msg);
	else
		n = snprintf(line, sizeof(line), "%s\n", msg);
	if (stderr_hook)
		stderr_hook(stderr_hook_ctx);
	(void)!write(2, line, (size_t)(n < (int)sizeof(line) ? n : (int)sizeof(line) - 1));
}

void log_set_stderr_hook(void (*before)(void *ctx), void *ctx)
{
	stderr_hook = before;
	stderr_hook_ctx = ctx;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_warn_once(const char *key, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&warned_lock);
	for (size_t i = 0; i < n_warned; i++)
		if (strcmp(warned[i], key) == 0) {
			pthread_mutex_unlock(&warned_lock);
			return;
		}
	warned = xrealloc(warned, (n_warned + 1) * sizeof(char *));
	warned[n_warned++] = xstrdup(key);
	pthread_mutex_unlock(&warned_lock);
	va_start(ap, fmt);
	log_vmsg(LOG_WARN, fmt, ap);
	va_end(ap);
}
