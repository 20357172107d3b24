/* Leveled logging to stderr and to per-job/per-trial log files. */
#ifndef ROLLOUT_LOG_H
#define ROLLOUT_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Messages below this level are not printed on stderr (files get LOG_DEBUG+). */
void log_set_level(enum log_level level);
void log_set_quiet(int quiet);
/* Also log to fd (taken: an O_APPEND file opened by the caller, confined where
 * it lives in a job or trial directory); returns the sink slot or -1. Lines are
 * timestamped. */
int log_open_fd(int fd);
void log_close_file(int slot);
void log_close_all_files(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Call before(ctx) before each message goes to stderr (a live display clears its
 * lines so the message does not land inside them); NULL to stop. */
void log_set_stderr_hook(void (*before)(void *ctx), void *ctx);

/* Warn only the first time `key` is seen in this process. */
void log_warn_once(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
