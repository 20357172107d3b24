/* rollout version */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int cmd_version(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout version\n\nPrint rollout's version.");
		return EXIT_OK;
	}
	if (argc > 1)
		return cli_usage_error("version", "unexpected argument '%s'", argv[1]);
	printf("rollout %s\n", ROLLOUT_VERSION);
	return EXIT_OK;
}
