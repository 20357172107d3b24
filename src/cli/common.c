/* Shared CLI helpers: usage errors, failures, subcommand dispatch. */
#include "cli/cli.h"
#include "providers/provider.h"
#include "rollout/log.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

int cli_provider_options(const char *cmd, int argc, char **argv, const char *usage,
                         const char **provider)
{
	static const struct option opts[] = {
	    {"provider", required_argument, NULL, 'e'}, {"help", no_argument, NULL, 'h'}, {0}};
	int c;

	*provider = NULL;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":e:h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			*provider = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return EXIT_OK;
		case ':':
			return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (*provider && !provider_find(*provider))
		return cli_usage_error(cmd, "unknown provider '%s' (sandbox or docker)", *provider);
	return -1;
}
