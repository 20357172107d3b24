/* Declarative command-line options: each command lists its options in one table of
 * rows (short and long spelling, argument placeholder, help text, handler and the
 * field it fills), and everything else comes from that table: getopt_long parsing,
 * the options part of `--help`, and "did you mean --x?" for a mistyped flag.
 *
 * A row either is an option, a heading printed in --help ("Tasks:"), or includes
 * another table (rows shared by several commands), whose targets are offset by the
 * include row's `off` within the command's context struct:
 *
 *     static const struct cli_option run_options[] = {
 *         CLI_HEADING("Tasks:"),
 *         CLI_OPT('p', "path", NULL, "PATH", "a task, or a directory of tasks",
 *                 cli_opt_str, OV(path)),
 *         CLI_INCLUDE(job_agent_options, offsetof(struct run_cli, ov)),
 *         CLI_END,
 *     };
 *
 * Handlers get the context struct (already offset for included rows) and write
 * ctx + opt->off. */
#ifndef ROLLOUT_CLI_OPTIONS_H
#define ROLLOUT_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct err;
struct cli_option;

/* Store value (NULL for a flag without argument) into ctx + opt->off. `flag` is the
 * spelling the user typed ("-n", "--n-concurrent"), for messages:
 * "-n: expected an integer >= 1, got 'x'". 0, or -1 with err. */
typedef int cli_option_fn(const struct cli_option *opt, const char *flag, const char *value,
                          void *ctx, struct err *err);

struct cli_option {
	char short_name;       /* 0: none */
	const char *long_name; /* without "--"; NULL for headings and includes */
	const char *alias;     /* a second long spelling (Harbor's "ak"), or NULL */
	const char *arg;       /* placeholder shown in --help; NULL: takes no value */
	const char *help;      /* may hold '\n' for more lines */
	/* Instead of help, text made at --help time from data (one paragraph, heap; the
	 * help renderer wraps and frees it): -a's help lists the agent table's rows. */
	char *(*help_fn)(void);
	cli_option_fn *fn;          /* NULL for headings and includes */
	size_t off;                 /* target field (or, for an include, its base) */
	long min;                   /* cli_opt_int: the least value accepted */
	const char *const *choices; /* cli_opt_choice: NULL-terminated names */
	const struct cli_option *include;
	const char *heading;
};

/* An option row: short, long, alias, argument placeholder, help, handler, target
 * offset, then optional designated fields (.min = 1, .choices = names). */
#define CLI_OPT(s, l, al, a, h, f, o, ...)                                                         \
	{                                                                                          \
		.short_name = (s), .long_name = (l), .alias = (al), .arg = (a), .help = (h),       \
		.fn = (f), .off = (o), __VA_ARGS__                                                 \
	}
#define CLI_HEADING(h)                                                                             \
	{                                                                                          \
		.heading = (h)                                                                     \
	}
#define CLI_INCLUDE(table, base)                                                                   \
	{                                                                                          \
		.include = (table), .off = (base)                                                  \
	}
#define CLI_END                                                                                    \
	{                                                                                          \
		0                                                                                  \
	}

/* Generic handlers. */
cli_option_fn cli_opt_true;   /* bool = true */
cli_option_fn cli_opt_false;  /* bool = false */
cli_option_fn cli_opt_str;    /* char *, replaced (non-empty) */
cli_option_fn cli_opt_arg;    /* const char *: the argv string itself, no copy (non-empty) */
cli_option_fn cli_opt_strv;   /* struct strv, appended (non-empty; repeatable) */
cli_option_fn cli_opt_int;    /* int >= opt->min */
cli_option_fn cli_opt_double; /* double > 0, finite */
cli_option_fn cli_opt_choice; /* int: index into opt->choices */
cli_option_fn cli_opt_kv;     /* struct strv of "KEY=VALUE" (KEY non-empty) */
/* cJSON * object (created when NULL): key=value with the value read as Harbor's
 * parse_kwargs reads it: JSON when it parses (numbers, true/false/null, lists,
 * objects, quoted strings), Python's True/False/None, else the text as a string. */
cli_option_fn cli_opt_kwarg;

/* Parse argv (argv[0] is the command) with the table. Operands are collected in
 * order into *operands (copies; NULL when the command takes none). Returns -1 to go on; otherwise the exit code to return: EXIT_OK
 * after printing help (usage + the options + footer) for -h/--help, EXIT_USAGE
 * after a usage error naming the flag, with a suggestion for a mistyped one. */
struct strv;
int cli_parse(const char *cmd, const struct cli_option *table, int argc, char **argv, void *ctx,
              const char *usage, const char *footer, struct strv *operands);
/* The same with flags: CLI_PARSE_IN_ORDER stops at the first operand (everything
 * from there on is an operand, "-x" included): for commands that run a command
 * line of their own (`rollout env exec NAME -- CMD -x`). */
#define CLI_PARSE_IN_ORDER 1u
int cli_parse_flags(const char *cmd, const struct cli_option *table, int argc, char **argv,
                    void *ctx, const char *usage, const char *footer, struct strv *operands,
                    unsigned flags);

/* The table of a command that takes no option but -h/--help. */
extern const struct cli_option cli_no_options[];

/* The options part of --help. */
void cli_options_help(FILE *out, const struct cli_option *table);
/* The --help text: usage, the options, footer. */
void cli_print_help(FILE *out, const struct cli_option *table, const char *usage,
                    const char *footer);

/* Apply one option by spelling ("-n", "--n-concurrent", "--ak") as if typed: the
 * entry point tests (and job-file-less callers) use. -1 with err for an unknown flag
 * ("unknown flag '--x'"), a missing value ("-p: missing value") or a bad one. */
int cli_option_set(const struct cli_option *table, void *ctx, const char *flag, const char *value,
                   struct err *err);

/* The long option of the table closest to `typed` (which may start with "--"), or
 * NULL when none is close enough to be a likely typo. */
const char *cli_option_suggest(const struct cli_option *table, const char *typed);

/* Levenshtein distance (for suggestions). */
size_t cli_edit_distance(const char *a, const char *b);

#endif
