/* rollout doctor [--json]: what this host allows (providers/probe.h) — each
 * probe, which providers and isolation levels can run, the fix for each
 * missing piece. */
#include "cli/cli.h"
#include "providers/probe.h"
#include "rollout/cleanup.h"
#include "rollout/json.h"

#include <getopt.h>
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
    "\n"
    "  --json      the same as one JSON object\n"
    "  -h, --help\n"
    "\n"
    "Exit status: 0 when at least one provider can run here, 1 when none can,\n"
    "2 for usage errors.\n";

int cmd_doctor(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0}};
	const struct host_probe *hp;
	bool json = false, any = false;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(doctor_usage, stdout);
			return EXIT_OK;
		default:
			return cli_usage_error("doctor", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("doctor", "unexpected argument '%s'", argv[optind]);
	hp = host_probe(true);
	for (int l = 0; l < LEVEL_COUNT; l++) {
		enum probe_id m[PROBE_COUNT], d[PROBE_COUNT];
		int nm, nd;

		any |= probe_level_ok(hp, (enum probe_level)l, m, &nm, d, &nd);
	}
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
