/* rollout run: placeholder until its issue lands. */
#include "cli/cli.h"

#include <stdio.h>

int cmd_run(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout run a job\n\nNot available yet in this build.");
		return EXIT_OK;
	}
	return cli_fail("'rollout run' is not available yet in this build");
}
