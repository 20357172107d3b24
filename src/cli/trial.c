/* rollout trial: placeholder until its issue lands. */
#include "cli/cli.h"

#include <stdio.h>

int cmd_trial(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout trial run\n\nNot available yet in this build.");
		return EXIT_OK;
	}
	return cli_fail("'rollout trial' is not available yet in this build");
}
