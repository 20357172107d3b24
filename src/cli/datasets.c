/* rollout datasets: placeholder until its issue lands. */
#include "cli/cli.h"

#include <stdio.h>

int cmd_datasets(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout datasets list|download\n\nNot available yet in this build.");
		return EXIT_OK;
	}
	return cli_fail("'rollout datasets' is not available yet in this build");
}
