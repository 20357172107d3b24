/* Error values carried up the stack: errno plus a message with context. */
#ifndef ROLLOUT_ERR_H
#define ROLLOUT_ERR_H

#include <stdarg.h>

#define ERR_MSG_MAX 2048

/* A fallible function takes `struct err *err` last and returns a negative
 * value on failure after filling it. Messages read like
 * "task.toml:12: key 'timeout_sec': expected a number". */
struct err {
	int code; /* errno value, or 0 when the failure is not a system error */
	char msg[ERR_MSG_MAX];
};

/* Set the error; always returns -1 so a call site is `return err_set(...)`. */
int err_set(struct err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Like err_set with code = errno and ": strerror(errno)" appended. */
int err_sys(struct err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix context to an existing error: "ctx: old message". Returns -1. */
int err_wrap(struct err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(struct err *err);

#endif
