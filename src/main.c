/* rollout: argument dispatch to the subcommands in src/cli/. The one thing that
 * runs before it is the constructor of src/providers/providers.c: the providers'
 * in-environment programs (the sandbox's init, the docker helper) are this binary
 * re-exec'd, and each provider's ops.entry takes over such a process there. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	int (*fn)(int, char **);
} commands[] = {
    {"run", cmd_run},           {"jobs", cmd_jobs},
    {"trial", cmd_trial},       {"tasks", cmd_tasks},
    {"datasets", cmd_datasets}, {"image", cmd_image},
    {"env", cmd_env},           {"gc", cmd_gc},
    {"doctor", cmd_doctor},     {"version", cmd_version},
    {"login", cmd_login},       {"logout", cmd_logout},
    {"trials", cmd_trial}, /* Harbor's spelling: `rollout trials start` */
};

static const char usage[] =
    "usage: rollout COMMAND [ARGS...]\n"
    "\n"
    "Evaluate agents on tasks that run in containers (Harbor task and result format).\n"
    "\n"
    "Commands:\n"
    "  run [JOB.yaml] [flags]     run a job: tasks x agents x attempts\n"
    "  JOB.yaml                   same as `rollout run JOB.yaml`\n"
    "  jobs resume|summarize|merge DIR\n"
    "                             continue, summarize or merge job directories\n"
    "  trial run -p TASK          run one trial and print its outcome (also: trials start)\n"
    "  tasks check PATH           validate a task or a directory of tasks\n"
    "  tasks init NAME            write a new task's skeleton\n"
    "  tasks start-env -p TASK    start a task's environment to work in\n"
    "  datasets list|download     registry datasets\n"
    "  image pull|build|load|import|save|ls|rm|...\n"
    "                             the sandbox provider's image store\n"
    "  env ls|exec|shell|rm       environments kept by preserve_env\n"
    "  gc                         remove what a killed rollout left behind\n"
    "  login|logout REGISTRY      save or remove registry credentials (docker's file)\n"
    "  doctor [--json]            what this host allows: providers, isolation levels, fixes\n"
    "  version                    print the version\n"
    "\n"
    "Run `rollout COMMAND --help` for the flags of a command.\n";

int main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage, stdout);
		return EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0)
		return cmd_version(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, cmd) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	/* `rollout JOB.yaml` is `rollout run JOB.yaml`. */
	{
		size_t n = strlen(cmd);

		if ((n > 5 && strcmp(cmd + n - 5, ".yaml") == 0) ||
		    (n > 4 && strcmp(cmd + n - 4, ".yml") == 0) ||
		    (n > 5 && strcmp(cmd + n - 5, ".json") == 0)) {
			argv[0] = "run";
			return cmd_run(argc, argv);
		}
	}
	fprintf(stderr, "rollout: unknown command '%s'\nTry 'rollout --help'.\n", cmd);
	return EXIT_USAGE;
}
