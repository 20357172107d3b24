/* Declarative option tables (options.h): parsing with getopt_long, --help text and
 * suggestions for mistyped flags, all from the same rows. */
#include "cli/options.h"
#include "cli/cli.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/strbuf.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One option row with the base of the include that brought it. */
struct flat_row {
	const struct cli_option *o;
	size_t base;
};

struct flat {
	struct flat_row *v;
	size_t n;
};

/* Tables nest a level or two (command -> shared rows); they are code, not input. */
static void flatten(const struct cli_option *t, size_t base, struct flat *f, bool headings)
{
	for (; t->long_name || t->short_name || t->include || t->heading; t++) {
		if (t->include) {
			flatten(t->include, base + t->off, f, headings);
			continue;
		}
		if (t->heading && !headings)
			continue;
		f->v = xrealloc(f->v, (f->n + 1) * sizeof(*f->v));
		f->v[f->n].o = t;
		f->v[f->n].base = base;
		f->n++;
	}
}

static void *target(const struct cli_option *o, void *ctx)
{
	return (char *)ctx + o->off;
}

/* --- handlers ------------------------------------------------------------------ */

int cli_opt_true(const struct cli_option *o, const char *flag, const char *value, void *ctx,
                 struct err *err)
{
	*(bool *)target(o, ctx) = true;
	return 0;
}

int cli_opt_false(const struct cli_option *o, const char *flag, const char *value, void *ctx,
                  struct err *err)
{
	*(bool *)target(o, ctx) = false;
	return 0;
}

int cli_opt_str(const struct cli_option *o, const char *flag, const char *value, void *ctx,
                struct err *err)
{
	char **dst = target(o, ctx);

	if (!*value)
		return err_set(err, EINVAL, "%s: expected %s, got ''", flag, o->arg);
	free(*dst);
	*dst = xstrdup(value);
	return 0;
}

int cli_opt_arg(const struct cli_option *o, const char *flag, const char *value, void *ctx,
                struct err *err)
{
	if (!*value)
		return err_set(err, EINVAL, "%s: expected %s, got ''", flag, o->arg);
	*(const char **)target(o, ctx) = value;
	return 0;
}

int cli_opt_strv(const struct cli_option *o, const char *flag, const char *value, void *ctx,
                 struct err *err)
{
	if (!*value)
		return err_set(err, EINVAL, "%s: expected %s, got ''", flag, o->arg);
	strv_push(target(o, ctx), value);
	return 0;
}

int cli_opt_int(const struct cli_option *o, const char *flag, const char *value, void *ctx,
                struct err *err)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (!*value || *end || errno || v < o->min || v > 1000000000)
		return err_set(err, EINVAL, "%s: expected an integer >= %ld, got '%s'", flag,
		               o->min, value);
	*(int *)target(o, ctx) = (int)v;
	return 0;
}

int cli_opt_double(const struct cli_option *o, const char *flag, const char *value, void *ctx,
                   struct err *err)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(value, &end);
	if (!*value || *end || errno || !isfinite(d) || !(d > 0))
		return err_set(err, EINVAL, "%s: expected a number > 0, got '%s'", flag, value);
	*(double *)target(o, ctx) = d;
	return 0;
}

int cli_opt_choice(const struct cli_option *o, const char *flag, const char *value, void *ctx,
                   struct err *err)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;

	for (int i = 0; o->choices[i]; i++) {
		if (!strcmp(o->choices[i], value)) {
			*(int *)target(o, ctx) = i;
			return 0;
		}
		sb_addf(&sb, "%s%s", i ? ", " : "", o->choices[i]);
	}
	return err_set(err, EINVAL, "%s: expected one of %s, got '%s'", flag, sb.buf, value);
}

static bool split_kv(const char *value, char **key, const char **val)
{
	const char *eq = strchr(value, '=');
	const char *k = value, *ke;

	if (!eq)
		return false;
	while (*k == ' ' || *k == '\t')
		k++;
	ke = eq;
	while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
		ke--;
	if (ke == k)
		return false;
	*key = xstrndup(k, (size_t)(ke - k));
	*val = eq + 1;
	return true;
}

int cli_opt_kv(const struct cli_option *o, const char *flag, const char *value, void *ctx,
               struct err *err)
{
	_cleanup_free_ char *key = NULL;
	const char *val;

	if (!split_kv(value, &key, &val))
		return err_set(err, EINVAL, "%s: expected %s, got '%s'", flag, o->arg, value);
	strv_pushf(target(o, ctx), "%s=%s", key, val);
	return 0;
}

int cli_opt_kwarg(const struct cli_option *o, const char *flag, const char *value, void *ctx,
                  struct err *err)
{
	cJSON **obj = target(o, ctx);
	_cleanup_free_ char *key = NULL, *val = NULL;
	const char *raw;
	size_t n;
	cJSON *v;

	if (!split_kv(value, &key, &raw))
		return err_set(err, EINVAL, "%s: expected %s, got '%s'", flag, o->arg, value);
	while (*raw == ' ' || *raw == '\t')
		raw++;
	n = strlen(raw);
	while (n && (raw[n - 1] == ' ' || raw[n - 1] == '\t'))
		n--;
	val = xstrndup(raw, n);
	v = cJSON_ParseWithOpts(val, NULL, true);
	if (!v) {
		if (!strcmp(val, "True") || !strcmp(val, "False"))
			v = cJSON_CreateBool(val[0] == 'T');
		else if (!strcmp(val, "None"))
			v = cJSON_CreateNull();
		else
			v = cJSON_CreateString(val);
	}
	if (!*obj)
		*obj = cJSON_CreateObject();
	if (cJSON_GetObjectItemCaseSensitive(*obj, key))
		cJSON_ReplaceItemInObjectCaseSensitive(*obj, key, v);
	else
		cJSON_AddItemToObject(*obj, key, v);
	return 0;
}

/* --- help -------------------------------------------------------------------------- */

#define HELP_COLUMN 31

/* A help_fn's text: its paragraph wrapped at word boundaries to HELP_WIDTH columns,
 * the width of the tables' hand-wrapped texts. */
#define HELP_WIDTH 53

static char *help_of(const struct cli_option *o)
{
	_cleanup_free_ char *text = o->help_fn();
	struct strbuf sb = STRBUF_INIT;
	size_t line = 0;

	for (const char *w = text; *w;) {
		size_t n = strcspn(w, " ");

		if (line && line + 1 + n > HELP_WIDTH) {
			sb_addc(&sb, '\n');
			line = 0;
		} else if (line) {
			sb_addc(&sb, ' ');
			line++;
		}
		sb_add(&sb, w, n);
		line += n;
		w += n;
		w += strspn(w, " ");
	}
	return sb_detach(&sb);
}

static void print_row(FILE *out, const struct cli_option *o)
{
	struct strbuf left = STRBUF_INIT;
	_cleanup_free_ char *made = o->help_fn ? help_of(o) : NULL;
	const char *h = made ? made : o->help ? o->help : "";

	sb_adds(&left, "  ");
	if (o->short_name)
		sb_addf(&left, "-%c%s", o->short_name, o->long_name ? ", " : "");
	else
		sb_adds(&left, "    ");
	if (o->long_name)
		sb_addf(&left, "--%s", o->long_name);
	if (o->alias)
		sb_addf(&left, ", --%s", o->alias);
	if (o->arg)
		sb_addf(&left, " %s", o->arg);
	fputs(left.buf, out);
	if (left.len + 1 >= HELP_COLUMN)
		fprintf(out, "\n%*s", HELP_COLUMN, "");
	else
		fprintf(out, "%*s", (int)(HELP_COLUMN - left.len), "");
	for (; *h; h++) {
		fputc(*h, out);
		if (*h == '\n')
			fprintf(out, "%*s", HELP_COLUMN, "");
	}
	fputc('\n', out);
	sb_release(&left);
}

void cli_options_help(FILE *out, const struct cli_option *table)
{
	struct flat f = {0};

	flatten(table, 0, &f, true);
	for (size_t i = 0; i < f.n; i++) {
		if (f.v[i].o->heading)
			fprintf(out, "%s\n", f.v[i].o->heading);
		else
			print_row(out, f.v[i].o);
	}
	fprintf(out, "  -h, --help%*sshow this help\n", HELP_COLUMN - 12, "");
	free(f.v);
}

void cli_print_help(FILE *out, const struct cli_option *table, const char *usage,
                    const char *footer)
{
	if (usage)
		fputs(usage, out);
	cli_options_help(out, table);
	if (footer)
		fputs(footer, out);
}

/* --- suggestions ------------------------------------------------------------------ */

size_t cli_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	_cleanup_free_ size_t *row = xcalloc(lb + 1, sizeof(*row));

	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

const char *cli_option_suggest(const struct cli_option *table, const char *typed)
{
	struct flat f = {0};
	const char *best = NULL;
	size_t best_d = (size_t)-1;
	_cleanup_free_ char *name = NULL;

	while (*typed == '-')
		typed++;
	name = xstrndup(typed, strcspn(typed, "="));
	flatten(table, 0, &f, false);
	for (size_t i = 0; i < f.n; i++) {
		const char *names[] = {f.v[i].o->long_name, f.v[i].o->alias};

		for (size_t k = 0; k < 2; k++) {
			size_t d;

			if (!names[k])
				continue;
			d = cli_edit_distance(name, names[k]);
			if (d < best_d) {
				best_d = d;
				best = names[k];
			}
		}
	}
	free(f.v);
	/* A likely typo: a couple of edits, or a third of the name at most. */
	if (!best || !(best_d <= 2 || best_d * 3 <= strlen(name)) || best_d >= strlen(name))
		return NULL;
	return best;
}

/* --- parsing --------------------------------------------------------------------- */

static const struct flat_row *find_row(const struct flat *f, const char *flag)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct cli_option *o = f->v[i].o;

		if (flag[0] == '-' && flag[1] && !flag[2] && flag[1] != '-' &&
		    o->short_name == flag[1])
			return &f->v[i];
		if (!strncmp(flag, "--", 2) && ((o->long_name && !strcmp(flag + 2, o->long_name)) ||
		                                (o->alias && !strcmp(flag + 2, o->alias))))
			return &f->v[i];
	}
	return NULL;
}

static int apply(const struct flat_row *r, const char *flag, const char *value, void *ctx,
                 struct err *err)
{
	return r->o->fn(r->o, flag, value, (char *)ctx + r->base, err);
}

int cli_option_set(const struct cli_option *table, void *ctx, const char *flag, const char *value,
                   struct err *err)
{
	struct flat f = {0};
	const struct flat_row *r;
	int rc;

	flatten(table, 0, &f, false);
	r = find_row(&f, flag);
	if (!r)
		rc = err_set(err, EINVAL, "unknown flag '%s'", flag);
	else if (r->o->arg && !value)
		rc = err_set(err, EINVAL, "%s: missing value", flag);
	else
		rc = apply(r, flag, value, ctx, err);
	free(f.v);
	return rc;
}

/* The long options a typed prefix could mean ("--agent-" -> several). */
static void prefix_matches(const struct flat *f, const char *typed, struct strbuf *sb)
{
	size_t n = strcspn(typed, "=");

	for (size_t i = 0; i < f->n; i++) {
		const char *names[] = {f->v[i].o->long_name, f->v[i].o->alias};

		for (size_t k = 0; k < 2; k++)
			if (names[k] && !strncmp(names[k], typed, n))
				sb_addf(sb, "%s--%s", sb->len ? ", " : "", names[k]);
	}
}

static int unknown_option(const char *cmd, const struct cli_option *table, const struct flat *f,
                          const char *arg, int optopt_c)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	const char *suggestion;

	if (optopt_c && optopt_c < 256 && !(arg[0] == '-' && arg[1] == '-'))
		return cli_usage_error(cmd, "unknown option '-%c'", optopt_c);
	if (!strncmp(arg, "--", 2) && arg[2]) {
		prefix_matches(f, arg + 2, &sb);
		if (strchr(sb.buf ? sb.buf : "", ','))
			return cli_usage_error(cmd, "ambiguous option '%.*s' (%s)",
			                       (int)strcspn(arg, "="), arg, sb.buf);
	}
	suggestion = cli_option_suggest(table, arg);
	if (suggestion)
		return cli_usage_error(cmd, "unknown option '%.*s'; did you mean --%s?",
		                       (int)strcspn(arg, "="), arg, suggestion);
	return cli_usage_error(cmd, "unknown option '%.*s'", (int)strcspn(arg, "="), arg);
}

const struct cli_option cli_no_options[] = {CLI_END};

int cli_parse(const char *cmd, const struct cli_option *table, int argc, char **argv, void *ctx,
              const char *usage, const char *footer, struct strv *operands)
{
	return cli_parse_flags(cmd, table, argc, argv, ctx, usage, footer, operands, 0);
}

int cli_parse_flags(const char *cmd, const struct cli_option *table, int argc, char **argv,
                    void *ctx, const char *usage, const char *footer, struct strv *operands,
                    unsigned flags)
{
	struct flat f = {0};
	struct option *longs;
	struct strbuf shorts = STRBUF_INIT;
	size_t nl = 0;
	int c, rc = -1;

	flatten(table, 0, &f, false);
	longs = xcalloc(2 * f.n + 2, sizeof(*longs));
	/* '+': stop at the first operand; ':': report a missing value as ':'. */
	sb_adds(&shorts, flags & CLI_PARSE_IN_ORDER ? "+:h" : ":h");
	for (size_t i = 0; i < f.n; i++) {
		const struct cli_option *o = f.v[i].o;
		const char *names[] = {o->long_name, o->alias};

		for (size_t k = 0; k < 2; k++) {
			if (!names[k])
				continue;
			longs[nl].name = names[k];
			longs[nl].has_arg = o->arg ? required_argument : no_argument;
			longs[nl].val = 256 + (int)i;
			nl++;
		}
		if (o->short_name)
			sb_addf(&shorts, "%c%s", o->short_name, o->arg ? ":" : "");
	}
	longs[nl].name = "help";
	longs[nl].val = 'h';
	/* 0, not 1: glibc and musl then reset their state (a bundle like -qa left
	 * half-read by an earlier parse). */
	optind = 0;
	opterr = 0;
	for (;;) {
		int li = -1;
		const struct flat_row *r = NULL;
		char flag[64];
		struct err err = {0};

		optopt = 0;
		c = getopt_long(argc, argv, shorts.buf, longs, &li);
		if (c == -1)
			break;
		if (c == 'h') {
			cli_print_help(stdout, table, usage, footer);
			rc = EXIT_OK;
			goto out;
		}
		if (c == ':') {
			/* A long option is at optind - 1; after a short one at the end musl
			 * leaves optind past argc: its letter is optopt. */
			if (optopt >= 256 && optind - 1 < argc)
				rc = cli_usage_error(cmd, "option '%s' needs a value",
				                     argv[optind - 1]);
			else
				rc = cli_usage_error(cmd, "option '-%c' needs a value", optopt);
			goto out;
		}
		if (c == '?') {
			rc = unknown_option(cmd, table, &f, argv[optind - 1], optopt);
			goto out;
		}
		if (c >= 256) {
			r = &f.v[c - 256];
		} else {
			for (size_t i = 0; i < f.n && !r; i++)
				if (f.v[i].o->short_name == c)
					r = &f.v[i];
		}
		if (li >= 0)
			snprintf(flag, sizeof(flag), "--%s", longs[li].name);
		else
			snprintf(flag, sizeof(flag), "-%c", c);
		if (apply(r, flag, optarg, ctx, &err) < 0) {
			rc = cli_usage_error(cmd, "%s", err.msg);
			goto out;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (!operands) {
			rc = cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
			goto out;
		}
		strv_push(operands, argv[i]);
	}
out:
	free(longs);
	free(f.v);
	sb_release(&shorts);
	return rc;
}
