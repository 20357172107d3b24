/* Diagnostics collected while reading config files: every error and warning,
 * each a "FILE:LINE: message" string, so a checker can print all of them. */
#ifndef ROLLOUT_CONFIG_DIAG_H
#define ROLLOUT_CONFIG_DIAG_H

#include <stdbool.h>
#include <stddef.h>

struct err;

enum diag_level { DIAG_WARNING, DIAG_ERROR };

struct diag {
	enum diag_level level;
	int line; /* 0 when the message has no line */
	char *msg;
};

struct diags {
	struct diag *v;
	size_t n, cap;
	size_t n_errors;
};

#define DIAGS_INIT                                                                                 \
	{                                                                                          \
		NULL, 0, 0, 0                                                                      \
	}

void diag_add(struct diags *d, enum diag_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "FILE:LINE: message" (LINE omitted when <= 0). */
void diag_error_at(struct diags *d, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void diag_warn_at(struct diags *d, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Record a struct err as one error. */
void diag_add_err(struct diags *d, const struct err *err);
static inline bool diags_ok(const struct diags *d)
{
	return d->n_errors == 0;
}
/* Move every entry of src to the end of dst. */
void diags_move(struct diags *dst, struct diags *src);
void diags_release(struct diags *d);
/* Stable sort of entries [start, n) by line, so one file's problems read top
 * to bottom whatever order the schema checked them in. */
void diags_sort_lines(struct diags *d, size_t start);

/* Warnings go to log_warn; errors are joined by newlines into err (EINVAL).
 * Returns 0 when there was no error, -1 otherwise. */
int diags_report(struct diags *d, struct err *err);

void cleanup_diagsp(struct diags *d);
#define _cleanup_diags_ __attribute__((cleanup(cleanup_diagsp)))

#endif
