/* rollout env ls|exec|shell|rm: environments kept by preserve_env, or running trials'
 * environments driven from the host (host-side agents use `rollout env exec`). */
#include "cli/cli.h"
#include "providers/provider.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char env_help_head[] =
    "usage: rollout env COMMAND ...\n"
    "\n"
    "Environments that outlive their trial (preserve_env: always|on_failure), and\n"
    "the environment of a running trial, which host-side agents drive from outside.\n"
    "\n"
    "  rollout env ls [-e PROVIDER]\n"
    "  rollout env exec [-e PROVIDER] [-u USER] [-w DIR] [--env K=V]... [-t SECONDS] NAME -- CMD "
    "[ARG...]\n"
    "                 run CMD in environment NAME (stdin/stdout/stderr are passed through;\n"
    "                 exit status is the command's)\n"
    "  rollout env shell [-e PROVIDER] [-u USER] NAME\n"
    "                 an interactive sh in NAME (no terminal emulation: pipes only)\n"
    "  rollout env rm [-e PROVIDER] NAME...\n"
    "                 stop and remove environments\n"
    "\n"
    "NAME is the trial name. PROVIDER is ";
static const char env_help_tail[] = "; by default each is\n"
                                    "searched (ROLLOUT_PROVIDER=NAME narrows it).\n";

/* The usage, naming the providers of the table. */
static const char *env_help_text(void)
{
	static char *text;

	if (!text)
		text = xasprintf("%s%s%s", env_help_head, provider_names_or(), env_help_tail);
	return text;
}

/* Open NAME with the given provider, or with the first provider that knows it. */
static int open_env(const char *provider, const char *name, struct environment **env,
                    struct err *err)
{
	const struct provider_ops *ops;
	struct err first = {0};

	if (!provider)
		provider = getenv("ROLLOUT_PROVIDER");
	/* A provider named (any level's: a host-side agent is told its own) is the
	 * only one asked. */
	if (provider) {
		ops = provider_find(provider);
		if (!ops)
			return provider_unknown(provider, err);
		return env_open(ops, name, env, err);
	}
	for (size_t i = 0; (ops = provider_each(i)); i++) {
		struct err e = {0};

		if (env_open(ops, name, env, &e) == 0)
			return 0;
		if (!first.msg[0])
			first = e;
	}
	*err = first;
	if (!err->msg[0])
		err_set(err, ENOENT, "no environment named '%s'", name);
	return -1;
}

static int check_provider_flag(const char *cmd, const char *p)
{
	struct err err = {0};

	if (p && !provider_find(p) && provider_unknown(p, &err) < 0)
		return cli_usage_error(cmd, "%s", err.msg);
	return 0;
}

static int env_ls(int argc, char **argv)
{
	const char *provider;
	int rc = cli_provider_options("env ls", argc, argv, env_help_text(), &provider), shown = 0;

	if (rc >= 0)
		return rc;
	if (optind < argc)
		return cli_usage_error("env ls", "unexpected argument '%s'", argv[optind]);
	for (size_t k = 0; provider_each(k); k++) {
		const char *p = provider_each(k)->name;
		struct env_info *infos = NULL;
		size_t n = 0;
		struct err err = {0};

		if (provider && strcmp(provider, p) != 0)
			continue;
		if (provider_each(k)->list(&infos, &n, &err) < 0) {
			/* A missing Docker daemon is normal on sandbox-only hosts. */
			if (provider)
				return cli_fail("%s: %s", p, err.msg);
			fprintf(stderr, "rollout: note: %s: %s\n", p, err.msg);
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			char when[ISO8601_LEN] = "-";

			if (!shown++)
				printf("%-8s %-9s %-44s %-10s %-24s %s\n", "PROVIDER", "ISOLATION",
				       "NAME", "STATE", "CREATED", "IMAGE");
			if (infos[i].created_at > 0)
				iso8601_format(infos[i].created_at, when, sizeof(when));
			when[19] = '\0';
			printf("%-8s %-9s %-44s %-10s %-24s %s\n", p,
			       infos[i].isolation ? infos[i].isolation : "-", infos[i].name,
			       infos[i].state ? infos[i].state : "-", when,
			       infos[i].image ? infos[i].image : "-");
		}
		env_info_free(infos, n);
	}
	if (!shown)
		printf("no environments\n");
	return EXIT_OK;
}

static int env_exec_common(const char *cmd, int argc, char **argv, bool shell)
{
	static const struct option opts[] = {{"provider", required_argument, NULL, 'e'},
	                                     {"user", required_argument, NULL, 'u'},
	                                     {"workdir", required_argument, NULL, 'w'},
	                                     {"env", required_argument, NULL, 'E'},
	                                     {"timeout", required_argument, NULL, 't'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0}};
	_cleanup_strvs_ struct strv envs = STRV_INIT;
	const char *provider = NULL, *user = NULL, *cwd = NULL, *name;
	struct environment *env = NULL;
	struct exec_request req = EXEC_REQUEST_INIT;
	struct exec_result res = {0};
	struct err err = {0};
	double timeout = 0;
	int c, rc;

	optind = 1;
	opterr = 0;
	/* '+': stop at the first non-option so CMD's own flags are not ours. */
	while ((c = getopt_long(argc, argv, "+:e:u:w:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			provider = optarg;
			break;
		case 'u':
			user = optarg;
			break;
		case 'w':
			cwd = optarg;
			break;
		case 'E':
			if (!strchr(optarg, '='))
				return cli_usage_error(cmd, "--env expects KEY=VALUE, got '%s'",
				                       optarg);
			strv_push(&envs, optarg);
			break;
		case 't': {
			char *end;

			timeout = strtod(optarg, &end);
			if (*end || timeout < 0)
				return cli_usage_error(cmd, "--timeout expects seconds, got '%s'",
				                       optarg);
			break;
		}
		case 'h':
			fputs(env_help_text(), stdout);
			return EXIT_OK;
		case ':':
			return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (check_provider_flag(cmd, provider))
		return EXIT_USAGE;
	if (optind >= argc)
		return cli_usage_error(cmd, "missing environment NAME");
	name = argv[optind++];
	if (!shell) {
		if (optind < argc && strcmp(argv[optind], "--") == 0)
			optind++;
		if (optind >= argc)
			return cli_usage_error(cmd, "missing command after NAME --");
	} else if (optind < argc) {
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	}
	if (open_env(provider, name, &env, &err) < 0)
		return cli_fail("%s", err.msg);
	if (shell) {
		static const char *const sh_argv[] = {"sh", "-i", NULL};

		req.argv = sh_argv;
		req.merge_stderr = false;
	} else {
		req.argv = (const char *const *)(argv + optind);
	}
	req.env = (const char *const *)strv_array(&envs);
	req.user = user;
	req.cwd = cwd;
	req.timeout_sec = timeout;
	req.stdin_fd = STDIN_FILENO;
	/* Our own stdout and stderr as they are: `>> file` keeps appending. */
	req.stdout_fd = STDOUT_FILENO;
	req.stderr_fd = STDERR_FILENO;
	req.output_cap = 1LL << 62; /* a person is reading: no cap */
	rc = env_exec(env, &req, &res, &err);
	env_release(env);
	if (rc < 0)
		return cli_fail("%s", err.msg);
	if (res.timed_out)
		fprintf(stderr, "rollout: command timed out after %g s (killed)\n", timeout);
	return res.exit_code;
}

static int env_exec_cmd(int argc, char **argv)
{
	return env_exec_common("env exec", argc, argv, false);
}

static int env_shell(int argc, char **argv)
{
	return env_exec_common("env shell", argc, argv, true);
}

static int env_rm(int argc, char **argv)
{
	const char *provider;
	int rc = cli_provider_options("env rm", argc, argv, env_help_text(), &provider), failed = 0;

	if (rc >= 0)
		return rc;
	if (optind >= argc)
		return cli_usage_error("env rm", "missing environment NAME");
	for (int i = optind; i < argc; i++) {
		struct environment *env;
		struct err err = {0};

		if (open_env(provider, argv[i], &env, &err) < 0 || env_stop(env, true, &err) < 0) {
			fprintf(stderr, "rollout: error: %s\n", err.msg);
			failed = 1;
			continue;
		}
		printf("removed %s\n", argv[i]);
	}
	return failed ? EXIT_FAIL : EXIT_OK;
}

int cmd_env(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"ls", env_ls, "list environments"},
	    {"exec", env_exec_cmd, "run a command in an environment"},
	    {"shell", env_shell, "interactive shell in an environment"},
	    {"rm", env_rm, "remove environments"},
	    {0},
	};

	return cli_dispatch("env", subs, argc, argv, env_help_text());
}
