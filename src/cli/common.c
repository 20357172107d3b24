/* Shared CLI helpers: usage errors, failures, subcommand dispatch, and the question
 * about host variables that runs ask before a job starts. */
#include "cli/cli.h"
#include "core/hostenv.h"
#include "core/job_run.h"
#include "providers/provider.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/log.h"
#include "rollout/provider_table.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rollout %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'rollout %s --help'.\n", cmd);
	return EXIT_USAGE;
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rollout: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

int cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return 1;
	}
	return 0;
}

int cli_dispatch(const char *cmd, const struct cli_sub *subs, int argc, char **argv,
                 const char *usage)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage, stdout);
		return EXIT_OK;
	}
	for (const struct cli_sub *s = subs; s->name; s++)
		if (strcmp(s->name, argv[1]) == 0)
			return s->fn(argc - 1, argv + 1);
	return cli_usage_error(cmd, "unknown subcommand '%s'", argv[1]);
}

/* The provider's name as given: argv outlives the command. */
static int opt_provider(const struct cli_option *o, const char *flag, const char *value, void *ctx,
                        struct err *err)
{
	if (!provider_find(value))
		return provider_unknown(value, err);
	*(const char **)ctx = value;
	return 0;
}

static const struct cli_option provider_options[] = {
    CLI_OPT('e', "provider", "env", ROLLOUT_PROVIDER_NAMES_BAR,
            "only this provider's environments (-e is the provider\n"
            "in every command that has it)",
            opt_provider, 0),
    CLI_END,
};

int cli_provider_options(const char *cmd, int argc, char **argv, const char *usage,
                         const char **provider, struct strv *operands)
{
	*provider = NULL;
	return cli_parse(cmd, provider_options, argc, argv, provider, usage, NULL, operands);
}

/* The list, then "Proceed? [y/N]" on the terminal: only "y" or "yes" goes on. */
static bool ask_on_terminal(const struct host_vars *hv)
{
	char line[64];

	fprintf(stderr, "rollout: these tasks read host environment variables into their "
	                "environments (values not shown):\n");
	for (size_t i = 0; i < hv->n; i++) {
		_cleanup_free_ char *one = NULL;
		struct host_vars single = {&hv->v[i], 1};

		one = host_vars_describe(&single, 8);
		fprintf(stderr, "  %s\n", one);
	}
	fprintf(stderr, "Proceed? [y/N] ");
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	line[strcspn(line, "\r\n")] = '\0';
	return !strcasecmp(line, "y") || !strcasecmp(line, "yes");
}

int cli_confirm_host_env(const struct job *job, bool yes, struct err *err)
{
	_cleanup_free_ char *all = NULL, *asked = NULL;
	struct host_vars hv;
	int rc = 0;

	job_host_vars(job, &hv);
	if (hv.n == 0)
		return 0;
	all = host_vars_describe(&hv, 3);
	if (yes || job->cfg->allow_host_env_all) {
		log_info("tasks read host environment variables: %s (allowed by %s)", all,
		         yes ? "--yes" : "allow_host_env");
		goto out;
	}
	host_vars_drop(&hv, &job->cfg->allow_host_env);
	if (hv.n == 0) {
		log_info("tasks read host environment variables: %s (allowed by allow_host_env)",
		         all);
		goto out;
	}
	if (isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
		if (!ask_on_terminal(&hv))
			rc = err_set(err, ECANCELED, "not confirmed; no trial was started");
		goto out;
	}
	asked = host_vars_describe(&hv, 3);
	rc = err_set(err, EPERM,
	             "the tasks read host environment variables into their environments: %s. "
	             "No trial was started. Allow it with -y/--yes, or in the job file with "
	             "`allow_host_env: true` (or a list of the variable names); on a terminal "
	             "rollout asks",
	             asked);
out:
	host_vars_release(&hv);
	return rc;
}
