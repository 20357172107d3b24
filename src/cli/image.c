/* rollout image: placeholder until its issue lands. */
#include "cli/cli.h"

#include <stdio.h>

int cmd_image(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout image build|load|import|ls|rm|prune|inspect\n\nNot available "
		     "yet in this build.");
		return EXIT_OK;
	}
	return cli_fail("'rollout image' is not available yet in this build");
}
