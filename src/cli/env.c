/* rollout env: placeholder until its issue lands. */
#include "cli/cli.h"

#include <stdio.h>

int cmd_env(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout env ls|exec|shell|rm\n\nNot available yet in this build.");
		return EXIT_OK;
	}
	return cli_fail("'rollout env' is not available yet in this build");
}
