/* rollout tasks: placeholder until its issue lands. */
#include "cli/cli.h"

#include <stdio.h>

int cmd_tasks(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout tasks check\n\nNot available yet in this build.");
		return EXIT_OK;
	}
	return cli_fail("'rollout tasks' is not available yet in this build");
}
