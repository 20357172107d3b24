/* rollout version */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int cmd_version(int argc, char **argv)
{
	int rc = cli_parse("version", cli_no_options, argc, argv, NULL,
	                   "usage: rollout version\n\nPrint rollout's version.\n\n", NULL, NULL);

	if (rc >= 0)
		return rc;
	printf("rollout %s\n", ROLLOUT_VERSION);
	return EXIT_OK;
}
