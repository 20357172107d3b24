/* rollout doctor [--json]: what this host allows (providers/probe.h) — each
 * probe, which providers and isolation levels can run, the fix for each
 * missing piece. */
#include "cli/cli.h"
#include "providers/probe.h"
#include "rollout/cleanup.h"
#include "rollout/json.h"

#include <stdio.h>
#include <stdlib.h>

static const char doctor_usage[] =
    "usage: rollout doctor [--json]\n"
    "\n"
    "Probe what this host lets rollout do and print it: each probe tried for real in\n"
    "a short-lived child (user, mount, pid, network, ipc and uts namespaces;\n"
    "overlayfs and /proc mounted in a private mount namespace; a seccomp filter;\n"
    "cgroups and whether a child cgroup can be made; subordinate ids; project\n"
    "quotas; chroot; setuid/setgid; device nodes; the Docker daemon's /_ping), then\n"
    "which providers and isolation levels can run here (the sandbox with full\n"
    "isolation, the sandbox at --isolation chroot, docker), what each one lacks or\n"
    "runs without, and the fix for every missing piece. `rollout run` and\n"
    "`rollout trial run` run the same probes before their first trial and stop\n"
    "there, once, when the chosen provider cannot run.\n"
    "\n";

static const struct cli_option doctor_options[] = {
    CLI_OPT(0, "json", NULL, NULL, "the same as one JSON object", cli_opt_true, 0),
    CLI_END,
};

static const char doctor_footer[] =
    "\n"
    "Exit status: 0 when at least one provider can run here, 1 when none can,\n"
    "2 for usage errors.\n";

int cmd_doctor(int argc, char **argv)
{
	const struct host_probe *hp;
	bool json = false, any = false;
	int rc = cli_parse("doctor", doctor_options, argc, argv, &json, doctor_usage, doctor_footer,
	                   NULL);

	if (rc >= 0)
		return rc;
	hp = host_probe(true);
	any = probe_any_level_ok(hp);
	if (json) {
		_cleanup_json_ cJSON *o = probe_json(hp);
		char *text = cJSON_Print(o);

		puts(text);
		free(text);
	} else {
		probe_print(hp, stdout);
	}
	return any ? EXIT_OK : EXIT_FAIL;
}
