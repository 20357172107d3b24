/* rollout gc: remove what a rollout killed by SIGKILL left behind (environments,
 * containers, cgroups, mounts, state), on every provider that is reachable. */
#include "cli/cli.h"
#include "providers/provider.h"
#include "rollout/err.h"
#include "rollout/strbuf.h"

#include <stdio.h>
#include <string.h>

static const char gc_usage[] =
    "usage: rollout gc [-e PROVIDER]\n"
    "\n"
    "Remove environments whose rollout process is gone (killed, crashed, machine\n"
    "rebooted) and that no preserve_env policy kept: sandbox processes, cgroups and\n"
    "directories, and Docker containers labelled by rollout; also the files of\n"
    "destroyed sandbox environments such a rollout had not finished removing\n"
    "($ROLLOUT_HOME/trash). Environments of running rollouts and kept environments\n"
    "(see `rollout env ls`) are left alone.\n"
    "`rollout run` does the same before it starts. By default every provider is\n"
    "cleaned; a missing Docker daemon is then skipped with a note.\n"
    "\n";

int cmd_gc(int argc, char **argv)
{
	const struct provider_ops *p;
	_cleanup_strvs_ struct strv operands = STRV_INIT;
	const char *only;
	int rc = cli_provider_options("gc", argc, argv, gc_usage, &only, &operands), failed = 0;

	if (rc >= 0)
		return rc;
	if (operands.n)
		return cli_usage_error("gc", "unexpected argument '%s'", operands.v[0]);
	for (size_t i = 0; (p = provider_each(i)); i++) {
		struct err err = {0};
		int n;

		if (only && strcmp(only, p->name) != 0)
			continue;
		n = p->gc(&err);
		if (n < 0) {
			if (!only && p->service) {
				fprintf(stderr, "rollout: note: %s: %s\n", p->name, err.msg);
				continue;
			}
			fprintf(stderr, "rollout: error: %s: %s\n", p->name, err.msg);
			failed = 1;
			continue;
		}
		printf("%s: removed %d leftover environment%s\n", p->name, n, n == 1 ? "" : "s");
	}
	return failed ? EXIT_FAIL : EXIT_OK;
}
