/* rollout jobs: placeholder until its issue lands. */
#include "cli/cli.h"

#include <stdio.h>

int cmd_jobs(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout jobs resume|summarize|merge\n\nNot available yet in this "
		     "build.");
		return EXIT_OK;
	}
	return cli_fail("'rollout jobs' is not available yet in this build");
}
