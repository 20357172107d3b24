/* Diagnostics list: collect every problem, report them together. */
#include "config/diag.h"
#include "rollout/alloc.h"
#include "rollout/err.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void diag_push_line(struct diags *d, enum diag_level level, int line, char *msg)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
	}
	d->v[d->n].level = level;
	d->v[d->n].line = line;
	d->v[d->n].msg = msg;
	d->n++;
	if (level == DIAG_ERROR)
		d->n_errors++;
}

static void diag_push(struct diags *d, enum diag_level level, char *msg)
{
	diag_push_line(d, level, 0, msg);
}

void diag_add(struct diags *d, enum diag_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_push(d, level, xvasprintf(fmt, ap));
	va_end(ap);
}

__attribute__((format(printf, 5, 0))) static void diag_vat(struct diags *d, enum diag_level level,
                                                           const char *file, int line,
                                                           const char *fmt, va_list ap)
{
	struct strbuf sb = STRBUF_INIT;

	if (file && line > 0)
		sb_addf(&sb, "%s:%d: ", file, line);
	else if (file)
		sb_addf(&sb, "%s: ", file);
	sb_vaddf(&sb, fmt, ap);
	diag_push_line(d, level, line > 0 ? line : 0, sb_detach(&sb));
}

void diag_error_at(struct diags *d, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vat(d, DIAG_ERROR, file, line, fmt, ap);
	va_end(ap);
}

void diag_warn_at(struct diags *d, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vat(d, DIAG_WARNING, file, line, fmt, ap);
	va_end(ap);
}

void diag_add_err(struct diags *d, const struct err *err)
{
	diag_push(d, DIAG_ERROR, xstrdup(err->msg));
}

void diags_move(struct diags *dst, struct diags *src)
{
	for (size_t i = 0; i < src->n; i++)
		diag_push_line(dst, src->v[i].level, src->v[i].line, src->v[i].msg);
	free(src->v);
	memset(src, 0, sizeof(*src));
}

void diags_release(struct diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].msg);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

void diags_sort_lines(struct diags *d, size_t start)
{
	/* Insertion sort: stable, and lists are short. */
	for (size_t i = start + 1; i < d->n; i++) {
		struct diag x = d->v[i];
		size_t j = i;

		while (j > start && d->v[j - 1].line > x.line) {
			d->v[j] = d->v[j - 1];
			j--;
		}
		d->v[j] = x;
	}
}

void cleanup_diagsp(struct diags *d)
{
	diags_release(d);
}

int diags_report(struct diags *d, struct err *err)
{
	struct strbuf sb = STRBUF_INIT;
	int ret;

	for (size_t i = 0; i < d->n; i++) {
		if (d->v[i].level == DIAG_WARNING) {
			log_warn("%s", d->v[i].msg);
			continue;
		}
		if (sb.len)
			sb_addc(&sb, '\n');
		sb_adds(&sb, d->v[i].msg);
	}
	ret = d->n_errors ? err_set(err, EINVAL, "%s", sb_str(&sb)) : 0;
	sb_release(&sb);
	return ret;
}
