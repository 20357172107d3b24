/* Declarative option tables: parsing, --help and suggestions come from the same rows;
 * the job flags (Harbor's) reach the job config and its config.json. */
#include "cli/cli.h"
#include "cli/job_overrides.h"
#include "cli/options.h"
#include "config/agent_table.h"
#include "config/job_config.h"
#include "config_testdata.h"
#include "harness.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/json.h"
#include "rollout/strbuf.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct demo {
	bool flag;
	int n;
	char *name;
	struct strv list;
	cJSON *kw;
};

#define D(f) offsetof(struct demo, f)

static const struct cli_option demo_shared[] = {
    CLI_HEADING("Shared:"),
    CLI_OPT(0, "agent-kwarg", "ak", "KEY=VALUE", "a kwarg", cli_opt_kwarg, D(kw)),
    CLI_END,
};

struct outer {
	int pad;
	struct demo d;
};

static const struct cli_option demo_table[] = {
    CLI_OPT('f', "flag", NULL, NULL, "a flag", cli_opt_true, D(flag)),
    CLI_OPT('n', "n-concurrent", NULL, "N", "a count", cli_opt_int, D(n), .min = 1),
    CLI_OPT(0, "name", NULL, "NAME", "a name\non two lines", cli_opt_str, D(name)),
    CLI_OPT('t', "task-name", NULL, "GLOB", "repeatable", cli_opt_strv, D(list)),
    CLI_INCLUDE(demo_shared, 0),
    CLI_END,
};

static const struct cli_option outer_table[] = {
    CLI_INCLUDE(demo_table, offsetof(struct outer, d)),
    CLI_END,
};

static void demo_release(struct demo *d)
{
	free(d->name);
	strv_release(&d->list);
	cJSON_Delete(d->kw);
}

TEST(options_parse_fills_the_targets_of_included_rows)
{
	char *argv[] = {"cmd", "-f",   "--n-concurrent=3", "op1",    "-t", "a",   "--task-name",
	                "b",   "--ak", "x=[1,2]",          "--name", "n1", "op2", NULL};
	_cleanup_strvs_ struct strv ops = STRV_INIT;
	struct outer o = {0};

	o.pad = 7;
	REQUIRE(cli_parse("cmd", outer_table, 13, argv, &o, "usage\n", NULL, &ops) == -1);
	CHECK_INT(o.pad, 7);
	CHECK(o.d.flag);
	CHECK_INT(o.d.n, 3);
	CHECK_STR(o.d.name, "n1");
	REQUIRE(o.d.list.n == 2);
	CHECK_STR(o.d.list.v[1], "b");
	REQUIRE(ops.n == 2);
	CHECK_STR(ops.v[0], "op1");
	CHECK_STR(ops.v[1], "op2");
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o.d.kw, "x")) == 2);
	demo_release(&o.d);
}

TEST(options_suggest_the_closest_long_option)
{
	CHECK_STR(cli_option_suggest(demo_table, "--n-concurent"), "n-concurrent");
	CHECK_STR(cli_option_suggest(demo_table, "--agent-kwargs=1"), "agent-kwarg");
	CHECK_STR(cli_option_suggest(demo_table, "--taskname"), "task-name");
	CHECK(cli_option_suggest(demo_table, "--frobnicate") == NULL);
	CHECK(cli_option_suggest(demo_table, "--x") == NULL);
	CHECK_INT(cli_edit_distance("kitten", "sitting"), 3);
	CHECK_INT(cli_edit_distance("", "abc"), 3);
}

TEST(options_help_lists_every_row)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cli_print_help(f, outer_table, "usage: cmd\n", "footer\n");
	fclose(f);
	CHECK_CONTAINS(buf, "usage: cmd\n");
	CHECK_CONTAINS(buf, "  -f, --flag ");
	CHECK_CONTAINS(buf, "  -n, --n-concurrent N ");
	CHECK_CONTAINS(buf, "a name\n                               on two lines\n");
	CHECK_CONTAINS(buf, "Shared:\n      --agent-kwarg, --ak KEY=VALUE");
	CHECK_CONTAINS(buf, "  -h, --help");
	CHECK_CONTAINS(buf, "footer\n");
	free(buf);
}

TEST(options_usage_errors_exit_2)
{
	char *unknown[] = {"cmd", "--n-concurent", "3", NULL};
	char *missing[] = {"cmd", "-n", NULL};
	char *bad[] = {"cmd", "-n", "0", NULL};
	struct demo d = {0};
	int saved = dup(STDERR_FILENO);
	FILE *null = fopen("/dev/null", "w");

	/* The messages go to stderr: keep the TAP output clean. */
	dup2(fileno(null), STDERR_FILENO);
	CHECK_INT(cli_parse("cmd", demo_table, 3, unknown, &d, "", NULL, NULL), EXIT_USAGE);
	CHECK_INT(cli_parse("cmd", demo_table, 2, missing, &d, "", NULL, NULL), EXIT_USAGE);
	CHECK_INT(cli_parse("cmd", demo_table, 3, bad, &d, "", NULL, NULL), EXIT_USAGE);
	dup2(saved, STDERR_FILENO);
	close(saved);
	fclose(null);
	demo_release(&d);
}

/* cli_parse with stdout and stderr captured: the exit code (-1 to go on), and what
 * was printed in *out (heap). */
static int parse_captured(const struct cli_option *t, int argc, char **argv, void *ctx,
                          struct strv *ops, unsigned flags, char **out)
{
	FILE *tmp = tmpfile();
	int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO), rc;
	long n;

	fflush(stdout);
	fflush(stderr);
	dup2(fileno(tmp), STDOUT_FILENO);
	dup2(fileno(tmp), STDERR_FILENO);
	rc = cli_parse_flags("cmd", t, argc, argv, ctx, "usage: cmd\n", "footer\n", ops, flags);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, STDOUT_FILENO);
	dup2(saved_err, STDERR_FILENO);
	close(saved_out);
	close(saved_err);
	n = ftell(tmp);
	*out = calloc(1, (size_t)n + 1);
	rewind(tmp);
	if (n > 0 && fread(*out, 1, (size_t)n, tmp) != (size_t)n)
		(*out)[0] = '\0';
	fclose(tmp);
	return rc;
}

TEST(options_long_values_with_equals_or_apart_and_short_ones_joined_or_apart)
{
	char *argv[] = {"cmd", "--name=a", "--n-concurrent", "5", "-t", "x", "-ty", NULL};
	char *argv2[] = {"cmd", "--name", "b", "-n7", NULL};
	struct demo d = {0};

	REQUIRE(cli_parse("cmd", demo_table, 7, argv, &d, "", NULL, NULL) == -1);
	CHECK_STR(d.name, "a");
	CHECK_INT(d.n, 5);
	REQUIRE(d.list.n == 2);
	CHECK_STR(d.list.v[0], "x");
	CHECK_STR(d.list.v[1], "y");
	REQUIRE(cli_parse("cmd", demo_table, 4, argv2, &d, "", NULL, NULL) == -1);
	CHECK_STR(d.name, "b");
	CHECK_INT(d.n, 7);
	demo_release(&d);
}

TEST(options_bundled_short_flags)
{
	char *argv[] = {"cmd", "-fn", "4", NULL};
	char *argv2[] = {"cmd", "-fn4", NULL};
	struct demo d = {0}, e = {0};

	REQUIRE(cli_parse("cmd", demo_table, 3, argv, &d, "", NULL, NULL) == -1);
	CHECK(d.flag);
	CHECK_INT(d.n, 4);
	/* A second parse starts afresh (getopt's state is reset). */
	REQUIRE(cli_parse("cmd", demo_table, 2, argv2, &e, "", NULL, NULL) == -1);
	CHECK(e.flag);
	CHECK_INT(e.n, 4);
	demo_release(&d);
	demo_release(&e);
}

TEST(options_repeated_a_value_replaces_a_list_grows)
{
	char *argv[] = {"cmd", "--name", "a",  "--name", "b",    "-n",  "2",    "-n",  "3",
	                "-t",  "1",      "-t", "2",      "--ak", "k=1", "--ak", "k=2", NULL};
	struct demo d = {0};

	REQUIRE(cli_parse("cmd", demo_table, 17, argv, &d, "", NULL, NULL) == -1);
	CHECK_STR(d.name, "b");
	CHECK_INT(d.n, 3);
	CHECK_INT((int)d.list.n, 2);
	CHECK_INT(cJSON_GetObjectItemCaseSensitive(d.kw, "k")->valueint, 2);
	demo_release(&d);
}

TEST(options_double_dash_ends_the_options)
{
	char *argv[] = {"cmd", "op", "--", "-f", "--name=x", NULL};
	_cleanup_strvs_ struct strv ops = STRV_INIT;
	struct demo d = {0};

	REQUIRE(cli_parse("cmd", demo_table, 5, argv, &d, "", NULL, &ops) == -1);
	CHECK(!d.flag);
	CHECK(d.name == NULL);
	REQUIRE(ops.n == 3);
	CHECK_STR(ops.v[0], "op");
	CHECK_STR(ops.v[1], "-f");
	CHECK_STR(ops.v[2], "--name=x");
}

TEST(options_in_order_stops_at_the_first_operand)
{
	char *argv[] = {"cmd", "-f", "NAME", "ls", "-n", "3", NULL};
	_cleanup_strvs_ struct strv ops = STRV_INIT;
	_cleanup_free_ char *out = NULL;
	struct demo d = {0};

	REQUIRE(parse_captured(demo_table, 6, argv, &d, &ops, CLI_PARSE_IN_ORDER, &out) == -1);
	CHECK(d.flag);
	CHECK_INT(d.n, 0);
	REQUIRE(ops.n == 4);
	CHECK_STR(ops.v[0], "NAME");
	CHECK_STR(ops.v[2], "-n");
}

TEST(options_unknown_and_missing_value_messages_name_the_flag)
{
	char *unknown[] = {"cmd", "--frob", NULL};
	char *unknown_short[] = {"cmd", "-z", NULL};
	char *missing_short[] = {"cmd", "-n", NULL};
	char *missing_long[] = {"cmd", "--name", NULL};
	char *operand[] = {"cmd", "x", NULL};
	struct demo d = {0};
	char *out;

	CHECK_INT(parse_captured(demo_table, 2, unknown, &d, NULL, 0, &out), EXIT_USAGE);
	CHECK_CONTAINS(out, "rollout cmd: unknown option '--frob'\nTry 'rollout cmd --help'.");
	free(out);
	CHECK_INT(parse_captured(demo_table, 2, unknown_short, &d, NULL, 0, &out), EXIT_USAGE);
	CHECK_CONTAINS(out, "unknown option '-z'");
	free(out);
	CHECK_INT(parse_captured(demo_table, 2, missing_short, &d, NULL, 0, &out), EXIT_USAGE);
	CHECK_CONTAINS(out, "option '-n' needs a value");
	free(out);
	CHECK_INT(parse_captured(demo_table, 2, missing_long, &d, NULL, 0, &out), EXIT_USAGE);
	CHECK_CONTAINS(out, "option '--name' needs a value");
	free(out);
	/* A command without operands refuses one. */
	CHECK_INT(parse_captured(demo_table, 2, operand, &d, NULL, 0, &out), EXIT_USAGE);
	CHECK_CONTAINS(out, "unexpected argument 'x'");
	free(out);
	demo_release(&d);
}

TEST(options_help_flag_prints_usage_options_footer)
{
	char *help[] = {"cmd", "-n", "2", "--help", NULL};
	char *bare[] = {"cmd", "-h", NULL};
	struct demo d = {0};
	char *out;

	CHECK_INT(parse_captured(demo_table, 4, help, &d, NULL, 0, &out), EXIT_OK);
	CHECK(strncmp(out, "usage: cmd\n", 11) == 0);
	CHECK_CONTAINS(out, "  -t, --task-name GLOB");
	CHECK_CONTAINS(out, "  -h, --help                   show this help\nfooter\n");
	free(out);
	/* A command without options still has --help, and only it. */
	CHECK_INT(parse_captured(cli_no_options, 2, bare, NULL, NULL, 0, &out), EXIT_OK);
	CHECK_STR(out, "usage: cmd\n  -h, --help                   show this help\nfooter\n");
	free(out);
	demo_release(&d);
}

TEST(options_arg_rows_point_into_argv)
{
	static const struct cli_option t[] = {
	    CLI_OPT('o', "output", NULL, "FILE", "where", cli_opt_arg, 0),
	    CLI_END,
	};
	char *argv[] = {"cmd", "-o", "out.tar", NULL};
	const char *file = NULL;

	REQUIRE(cli_parse("cmd", t, 3, argv, &file, "", NULL, NULL) == -1);
	CHECK(file == argv[2]);
}

TEST(options_kwarg_values_as_harbor_reads_them)
{
	static const char *const in[] = {"n=3",     "f=1.5",       "b=true",    "p=True",
	                                 "z=None",  "s=hello",     "q=\"x y\"", "l=[1,\"a\"]",
	                                 " k = v ", "o={\"a\":1}", "e=",        NULL};
	static const char *const want =
	    "{\"n\":3,\"f\":1.5,\"b\":true,\"p\":true,\"z\":null,\"s\":\"hello\",\"q\":\"x y\","
	    "\"l\":[1,\"a\"],\"k\":\"v\",\"o\":{\"a\":1},\"e\":\"\"}";
	struct demo d = {0};
	struct err err = {0};
	_cleanup_free_ char *got = NULL;

	for (size_t i = 0; in[i]; i++)
		REQUIRE(cli_option_set(demo_table, &d, "--ak", in[i], &err) == 0);
	got = cJSON_PrintUnformatted(d.kw);
	CHECK_STR(got, want);
	CHECK(cli_option_set(demo_table, &d, "--ak", "=1", &err) < 0);
	CHECK_STR(err.msg, "--ak: expected KEY=VALUE, got '=1'");
	demo_release(&d);
}

/* Every Harbor run flag reaches the job config, and config.json as Harbor saves it. */
TEST(job_flags_reach_config_json)
{
	static const char *const argv[] = {"-p",
	                                   "test-dataset",
	                                   "-a",
	                                   "oracle",
	                                   "--ak",
	                                   "version=\"1.2\"",
	                                   "--agent-kwarg",
	                                   "max_turns=30",
	                                   "--ae",
	                                   "AWS_REGION=us-east-1",
	                                   "--ek",
	                                   "pids_limit=512",
	                                   "--force-build",
	                                   NULL,
	                                   "--disable-verification",
	                                   NULL,
	                                   "--artifact",
	                                   "/app/out",
	                                   "--artifact",
	                                   "/tmp/log",
	                                   "--override-cpus",
	                                   "2",
	                                   "--override-memory-mb",
	                                   "1024",
	                                   "--override-storage-mb",
	                                   "2048",
	                                   "--override-gpus",
	                                   "0",
	                                   "-r",
	                                   "2",
	                                   "--retry-include",
	                                   "RuntimeError",
	                                   "--retry-exclude",
	                                   "AgentTimeoutError",
	                                   "--agent-timeout-multiplier",
	                                   "2",
	                                   "--verifier-timeout-multiplier",
	                                   "3",
	                                   "--agent-setup-timeout-multiplier",
	                                   "4",
	                                   "--environment-build-timeout-multiplier",
	                                   "5",
	                                   NULL};
	size_t n = sizeof(argv) / sizeof(argv[0]) - 1;
	struct job_overrides o;
	struct job_config c;
	struct err err = {0};
	_cleanup_json_ cJSON *j = NULL;
	_cleanup_free_ char *env = NULL, *kw = NULL, *ek = NULL, *art = NULL, *retry = NULL;
	const cJSON *agent, *e;

	testdata_chdir();
	job_overrides_init(&o);
	/* Flag, value pairs; a flag without a value is followed by NULL. */
	for (size_t i = 0; i < n; i += 2)
		REQUIRE(cli_job_override_set(&o, argv[i], argv[i + 1], &err) == 0);
	job_config_init(&c);
	REQUIRE(job_overrides_apply(&c, &o, &err) == 0);
	j = job_config_to_json(&c);
	agent = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "agents"), 0);
	kw = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(agent, "kwargs"));
	env = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(agent, "env"));
	CHECK_STR(kw, "{\"version\":\"1.2\",\"max_turns\":30}");
	CHECK_STR(env, "{\"AWS_REGION\":\"us-east-1\"}");
	e = cJSON_GetObjectItemCaseSensitive(j, "environment");
	ek = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(e, "kwargs"));
	CHECK_STR(ek, "{\"pids_limit\":512}");
	CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "force_build")));
	CHECK_INT(json_get_num(e, "override_cpus", 0), 2);
	CHECK_INT(json_get_num(e, "override_memory_mb", 0), 1024);
	CHECK_INT(json_get_num(e, "override_storage_mb", 0), 2048);
	CHECK_INT(json_get_num(e, "override_gpus", -1), 0);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(j, "verifier"), "disable")));
	art = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, "artifacts"));
	CHECK_STR(art, "[\"/app/out\",\"/tmp/log\"]");
	retry = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(j, "orchestrator"), "retry"));
	CHECK_CONTAINS(retry, "\"max_retries\":2,\"include_exceptions\":[\"RuntimeError\"],"
	                      "\"exclude_exceptions\":[\"AgentTimeoutError\"]");
	CHECK(json_get_num(j, "agent_timeout_multiplier", 0) == 2);
	CHECK(json_get_num(j, "verifier_timeout_multiplier", 0) == 3);
	CHECK(json_get_num(j, "agent_setup_timeout_multiplier", 0) == 4);
	CHECK(json_get_num(j, "environment_build_timeout_multiplier", 0) == 5);
	job_overrides_release(&o);
	job_config_release(&c);
}

TEST(job_flags_default_retry_exclusions_are_harbors)
{
	struct job_config c;

	job_config_init(&c);
	CHECK(strv_contains(&c.orchestrator.retry.exclude_exceptions, "AgentTimeoutError"));
	CHECK(strv_contains(&c.orchestrator.retry.exclude_exceptions, "ApiUsageLimitError"));
	CHECK(strv_contains(&c.orchestrator.retry.exclude_exceptions, "ModelNotFoundError"));
	CHECK_INT(c.orchestrator.retry.exclude_exceptions.n, 9);
	job_config_release(&c);
}

TEST(job_flags_gpus_are_refused)
{
	struct job_overrides o;
	struct job_config c;
	struct err err = {0};

	testdata_chdir();
	job_overrides_init(&o);
	job_config_init(&c);
	REQUIRE(cli_job_override_set(&o, "-p", "test-dataset", &err) == 0);
	REQUIRE(cli_job_override_set(&o, "--override-gpus", "1", &err) == 0);
	CHECK(job_overrides_apply(&c, &o, &err) < 0);
	CHECK_CONTAINS(err.msg, "neither provider gives environments GPUs");
	job_overrides_release(&o);
	job_config_release(&c);
}

/* -a's help, made from the agent table at --help time, names every row of it. */
TEST(agent_help_lists_every_builtin_agent)
{
	char *buf = NULL, *row, *end;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cli_options_help(f, job_agent_env_options);
	fclose(f);
	row = strstr(buf, "  -a, --agent NAME ");
	REQUIRE(row != NULL);
	end = strstr(row + 1, "\n  -");
	REQUIRE(end != NULL);
	*end = 0;
	for (const struct agent_def *a = agent_table; a->name; a++)
		CHECK_CONTAINS(row, a->name);
	CHECK_CONTAINS(row, "or one the job file\n");
	free(buf);
}

static char *long_help(void)
{
	return xstrdup("one two three four five six seven eight nine ten eleven twelve thirteen "
	               "fourteen fifteen-sixteen-seventeen-eighteen-nineteen-twenty-twentyone-x");
}

static const struct cli_option made_help_table[] = {
    CLI_OPT('z', "zeta", NULL, NULL, NULL, cli_opt_true, 0, .help_fn = long_help),
    CLI_END,
};

/* A help_fn's paragraph is wrapped at words to 53 columns (a longer word stands alone)
 * and aligned as the hand-wrapped texts are. */
TEST(options_help_fn_is_wrapped)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cli_options_help(f, made_help_table);
	fclose(f);
	CHECK_CONTAINS(
	    buf, "  -z, --zeta                   one two three four five six seven eight nine ten\n"
	         "                               eleven twelve thirteen fourteen\n"
	         "                               "
	         "fifteen-sixteen-seventeen-eighteen-nineteen-twenty-twentyone-x\n");
	free(buf);
}
