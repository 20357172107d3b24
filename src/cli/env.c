/* rollout env ls|exec|shell|rm: environments kept by preserve_env, or running trials'
 * environments driven from the host (host-side agents use `rollout env exec`). */
#include "cli/cli.h"
#include "providers/provider.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/provider_table.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <stddef.h>
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
	_cleanup_strvs_ struct strv operands = STRV_INIT;
	const char *provider;
	int rc = cli_provider_options("env ls", argc, argv, env_help_text(), &provider, &operands),
	    shown = 0;

	if (rc >= 0)
		return rc;
	if (operands.n)
		return cli_usage_error("env ls", "unexpected argument '%s'", operands.v[0]);
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

static const char exec_usage[] =
    "usage: rollout env exec [-e PROVIDER] [-u USER] [-w DIR] [--env K=V]... [-t SECONDS] NAME "
    "-- CMD [ARG...]\n"
    "\n"
    "Run CMD in environment NAME (the trial name): stdin/stdout/stderr are passed\n"
    "through; the exit status is the command's. Here -e is the provider, as in\n"
    "`rollout env ls`, and --env (no short form) sets a variable, as docker exec's -e\n"
    "does.\n"
    "\n";

static const char shell_usage[] =
    "usage: rollout env shell [-e PROVIDER] [-u USER] NAME\n"
    "\n"
    "An interactive sh in environment NAME (no terminal emulation: pipes only).\n"
    "\n";

/* What the flags of `rollout env exec` and `rollout env shell` fill. */
struct exec_cli {
	const char *provider, *user, *cwd;
	struct strv envs;
	double timeout;
};

#define EXEC(field) offsetof(struct exec_cli, field)

static int opt_exec_env(const struct cli_option *o, const char *flag, const char *value, void *ctx,
                        struct err *err)
{
	if (!strchr(value, '='))
		return err_set(err, EINVAL, "--env expects KEY=VALUE, got '%s'", value);
	strv_push((struct strv *)((char *)ctx + o->off), value);
	return 0;
}

static int opt_exec_timeout(const struct cli_option *o, const char *flag, const char *value,
                            void *ctx, struct err *err)
{
	double *t = (double *)((char *)ctx + o->off);
	char *end;

	*t = strtod(value, &end);
	if (*end || *t < 0)
		return err_set(err, EINVAL, "--timeout expects seconds, got '%s'", value);
	return 0;
}

/* The provider is checked after parsing (check_provider_flag), as it always was. */
static const struct cli_option shell_options[] = {
    CLI_OPT('e', "provider", NULL, ROLLOUT_PROVIDER_NAMES_BAR,
            "the environment's provider (default: search each)", cli_opt_arg, EXEC(provider)),
    CLI_OPT('u', "user", NULL, "USER", "run as USER (default: the image's user)", cli_opt_arg,
            EXEC(user)),
    CLI_END,
};

static const struct cli_option exec_options[] = {
    CLI_INCLUDE(shell_options, 0),
    CLI_OPT('w', "workdir", NULL, "DIR", "the command's working directory", cli_opt_arg, EXEC(cwd)),
    CLI_OPT(0, "env", NULL, "K=V",
            "an environment variable for CMD (repeatable; not the\n"
            "provider: that is -e)",
            opt_exec_env, EXEC(envs)),
    CLI_OPT('t', "timeout", NULL, "SECONDS", "kill CMD after this long (default: no limit)",
            opt_exec_timeout, EXEC(timeout)),
    CLI_END,
};

static int env_exec_common(const char *cmd, int argc, char **argv, bool shell)
{
	struct exec_cli xc = {0};
	_cleanup_strvs_ struct strv envs = STRV_INIT, ops = STRV_INIT;
	const char *provider, *user, *cwd, *name;
	struct environment *env = NULL;
	struct exec_request req = EXEC_REQUEST_INIT;
	struct exec_result res = {0};
	struct err err = {0};
	double timeout;
	size_t next = 0;
	int rc;

	/* In order: what follows NAME is CMD's, its flags included. */
	rc = cli_parse_flags(cmd, shell ? shell_options : exec_options, argc, argv, &xc,
	                     shell ? shell_usage : exec_usage, NULL, &ops, CLI_PARSE_IN_ORDER);
	envs = xc.envs;
	if (rc >= 0)
		return rc;
	provider = xc.provider;
	user = xc.user;
	cwd = xc.cwd;
	timeout = xc.timeout;
	if (check_provider_flag(cmd, provider))
		return EXIT_USAGE;
	if (next >= ops.n)
		return cli_usage_error(cmd, "missing environment NAME");
	name = ops.v[next++];
	if (!shell) {
		if (next < ops.n && strcmp(ops.v[next], "--") == 0)
			next++;
		if (next >= ops.n)
			return cli_usage_error(cmd, "missing command after NAME --");
	} else if (next < ops.n) {
		return cli_usage_error(cmd, "unexpected argument '%s'", ops.v[next]);
	}
	if (open_env(provider, name, &env, &err) < 0)
		return cli_fail("%s", err.msg);
	if (shell) {
		static const char *const sh_argv[] = {"sh", "-i", NULL};

		req.argv = sh_argv;
		req.merge_stderr = false;
	} else {
		req.argv = (const char *const *)(strv_array(&ops) + next);
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
	_cleanup_strvs_ struct strv names = STRV_INIT;
	const char *provider;
	int rc = cli_provider_options("env rm", argc, argv, env_help_text(), &provider, &names),
	    failed = 0;

	if (rc >= 0)
		return rc;
	if (!names.n)
		return cli_usage_error("env rm", "missing environment NAME");
	for (size_t i = 0; i < names.n; i++) {
		struct environment *env;
		struct err err = {0};

		if (open_env(provider, names.v[i], &env, &err) < 0 ||
		    env_stop(env, true, &err) < 0) {
			fprintf(stderr, "rollout: error: %s\n", err.msg);
			failed = 1;
			continue;
		}
		printf("removed %s\n", names.v[i]);
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
