/* rollout gc: placeholder until its issue lands. */
#include "cli/cli.h"

#include <stdio.h>

int cmd_gc(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout gc\n\nNot available yet in this build.");
		return EXIT_OK;
	}
	return cli_fail("'rollout gc' is not available yet in this build");
}
