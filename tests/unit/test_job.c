/* Unit tests for job configs: defaults, every field, YAML/JSON parity, line
 * numbers in type errors, command-line overrides, JSON output, round trips,
 * diffs, and every file in testdata/job/. */
#include "cli/cli.h"
#include "cli/job_overrides.h"
#include "config/agent_table.h"
#include "config/job_config.h"
#include "config_testdata.h"
#include "harness.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/fs.h"
#include "rollout/json.h"

#include <fnmatch.h>
#include <math.h>
#include <unistd.h>

static void check_job_dir(const char *kind, bool want_valid)
{
	_cleanup_free_ char *dir = xasprintf("testdata/job/%s", kind);
	_cleanup_strvs_ struct strv files = STRV_INIT;

	testdata_chdir();
	testdata_list(dir, "", &files);
	REQUIRE(files.n >= 5);
	for (size_t i = 0; i < files.n; i++) {
		_cleanup_free_ char *path = xasprintf("%s/%s", dir, files.v[i]);
		_cleanup_free_ char *expected = xasprintf("%s.expected", path);
		_cleanup_free_ char *got = NULL;
		_cleanup_diags_ struct diags d = DIAGS_INIT;
		struct job_config cfg;
		int r;

		job_config_init(&cfg);
		r = job_config_load_diags(path, &cfg, &d);
		if (want_valid && r < 0)
			test_fail_at(__FILE__, __LINE__, "%s should load", path);
		if (!want_valid && r == 0)
			test_fail_at(__FILE__, __LINE__, "%s should fail", path);
		got = testdata_diags_text(&d);
		testdata_expect(expected, got);
		job_config_release(&cfg);
	}
}

TEST(job_testdata_valid_files)
{
	check_job_dir("valid", true);
}

TEST(job_testdata_invalid_files_give_every_problem)
{
	check_job_dir("invalid", false);
}

static cJSON *load_json_or_fail(const char *path)
{
	struct job_config cfg;
	struct err err = {0};
	cJSON *j;

	job_config_init(&cfg);
	if (job_config_load(path, &cfg, &err) < 0) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		job_config_release(&cfg);
		return NULL;
	}
	j = job_config_to_json(&cfg);
	job_config_release(&cfg);
	return j;
}

TEST(job_yaml_and_json_twins_agree)
{
	_cleanup_json_ cJSON *y = NULL, *j = NULL;
	_cleanup_strvs_ struct strv diff = STRV_INIT;

	testdata_chdir();
	y = load_json_or_fail("testdata/job.yaml");
	j = load_json_or_fail("testdata/job.json");
	REQUIRE(y && j);
	CHECK_INT(job_config_json_diff(y, j, &diff), 0);
	CHECK_STR(
	    cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(y, "agents"), 0), "name")
	        ->valuestring,
	    "oracle");
	CHECK_STR(
	    cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(y, "datasets"), 0), "path")
	        ->valuestring,
	    "test-dataset");
}

TEST(job_defaults_are_harbors)
{
	struct job_config c;

	job_config_init(&c);
	CHECK(
	    fnmatch("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]__[0-9][0-9]-[0-9][0-9]-[0-9][0-9]",
	            c.job_name, 0) == 0);
	CHECK_STR(c.jobs_dir, "jobs");
	CHECK_INT(c.n_attempts, 1);
	CHECK(c.timeout_multiplier == 1.0);
	CHECK(isnan(c.agent_timeout_multiplier) && isnan(c.verifier_timeout_multiplier) &&
	      isnan(c.agent_setup_timeout_multiplier) &&
	      isnan(c.environment_build_timeout_multiplier));
	CHECK(!c.debug);
	CHECK_STR(c.orchestrator.type, "local");
	CHECK_INT(c.orchestrator.n_concurrent_trials, 4);
	CHECK(!c.orchestrator.quiet);
	CHECK_INT(c.orchestrator.retry.max_retries, 0);
	CHECK(!c.orchestrator.retry.has_include_exceptions);
	CHECK_INT(c.orchestrator.retry.exclude_exceptions.n, 9); /* Harbor 0.22's */
	CHECK(strv_contains(&c.orchestrator.retry.exclude_exceptions, "ModelNotFoundError"));
	CHECK(strv_contains(&c.orchestrator.retry.exclude_exceptions, "AgentTimeoutError"));
	CHECK(strv_contains(&c.orchestrator.retry.exclude_exceptions, "RewardFileEmptyError"));
	CHECK(c.orchestrator.retry.wait_multiplier == 1.0);
	CHECK(c.orchestrator.retry.min_wait_sec == 1.0);
	CHECK(c.orchestrator.retry.max_wait_sec == 60.0);
	CHECK(c.environment.type == ENV_TYPE_SANDBOX);
	CHECK(!c.environment.force_build);
	CHECK(c.environment.delete);
	CHECK_INT(c.environment.override_cpus, -1);
	CHECK_INT(c.environment.override_gpus, -1);
	CHECK(c.environment.preserve_env == PRESERVE_ENV_NEVER);
	CHECK(isnan(c.verifier.override_timeout_sec) && isnan(c.verifier.max_timeout_sec));
	CHECK(!c.verifier.disable);
	CHECK_INT(c.n_metrics, 0);
	REQUIRE(c.n_agents == 1);
	CHECK_STR(c.agents[0].name, "oracle");
	CHECK(c.agents[0].model_name == NULL);
	CHECK_INT(c.n_datasets + c.n_tasks + c.n_artifacts, 0);
	job_config_release(&c);
}

TEST(job_all_fields_are_read)
{
	struct job_config c;
	struct err err = {0};
	const struct agent_config *a;
	_cleanup_free_ char *kw = NULL, *ekw = NULL;

	testdata_chdir();
	job_config_init(&c);
	REQUIRE(job_config_load("testdata/job/valid/all-fields.yaml", &c, &err) == 0);
	CHECK_STR(c.job_name, "nightly-run");
	CHECK_STR(c.jobs_dir, "/tmp/rollout-jobs");
	CHECK_INT(c.n_attempts, 3);
	CHECK(c.timeout_multiplier == 2.0);
	CHECK(c.agent_timeout_multiplier == 1.5);
	CHECK(isnan(c.verifier_timeout_multiplier));
	CHECK(c.agent_setup_timeout_multiplier == 3.0);
	CHECK(isnan(c.environment_build_timeout_multiplier));
	CHECK(c.debug); /* "yes", as PyYAML reads it */
	CHECK_INT(c.orchestrator.n_concurrent_trials, 8);
	CHECK(c.orchestrator.quiet);
	CHECK_INT(c.orchestrator.retry.max_retries, 2);
	CHECK(c.orchestrator.retry.has_include_exceptions);
	CHECK_INT(c.orchestrator.retry.include_exceptions.n, 2);
	CHECK_INT(c.orchestrator.retry.exclude_exceptions.n, 1);
	CHECK(c.orchestrator.retry.min_wait_sec == 0.5);
	CHECK(c.environment.type == ENV_TYPE_SANDBOX);
	CHECK(!c.environment.delete);
	CHECK_INT(c.environment.override_cpus, 2);
	CHECK_INT(c.environment.override_memory_mb, 4096);
	CHECK_INT(c.environment.override_storage_mb, -1);
	CHECK_INT(c.environment.override_gpus, 0);
	CHECK(c.environment.suppress_override_warnings);
	CHECK(c.environment.preserve_env == PRESERVE_ENV_ON_FAILURE);
	ekw = cJSON_PrintUnformatted(c.environment.kwargs);
	CHECK_STR(ekw, "{\"store\":\"/var/lib/rollout\",\"layers\":3}");
	CHECK_STR(env_list_get(&c.environment.env, "RETRIES"), "5");
	CHECK(c.verifier.override_timeout_sec == 120.0);
	CHECK(c.verifier.max_timeout_sec == 600.0);
	REQUIRE(c.n_metrics == 2);
	CHECK_STR(c.metrics[1].type, "uv-script");
	REQUIRE(c.n_agents == 4);
	a = &c.agents[0];
	CHECK_STR(a->name, "claude-code");
	CHECK_STR(a->model_name, "anthropic/claude-sonnet-4");
	CHECK(a->override_timeout_sec == 1800 && a->override_setup_timeout_sec == 600 &&
	      a->max_timeout_sec == 3600);
	kw = cJSON_PrintUnformatted(a->kwargs);
	/* Plain scalars are typed as YAML types them; quoted ones stay strings. */
	CHECK_STR(kw, "{\"max_turns\":50,\"verbose\":true,\"temperature\":0.5,\"tag\":\"007\"}");
	CHECK_STR(env_list_get(&a->env, "MAX_THINKING_TOKENS"), "8000");
	CHECK_STR(c.agents[1].install, "agents/my-agent/install.sh");
	CHECK_STR(c.agents[1].run, "my-agent --task \"{instruction}\"");
	CHECK_STR(c.agents[2].host_command, "./drive.py --env \"{env}\"");
	CHECK_STR(c.agents[3].name, "oracle"); /* {} is the oracle, as in Harbor */
	REQUIRE(c.n_datasets == 2);
	CHECK(!c.datasets[0].is_registry);
	CHECK_STR(c.datasets[0].task_names.v[0], "hello-*");
	CHECK_STR(c.datasets[0].exclude_task_names.v[0], "*-slow");
	CHECK_INT(c.datasets[0].n_tasks, 10);
	CHECK(c.datasets[1].is_registry);
	CHECK_STR(c.datasets[1].name, "terminal-bench");
	CHECK_STR(c.datasets[1].version, "2.0");
	CHECK_STR(c.datasets[1].registry_path, "registry.json");
	CHECK(c.datasets[1].overwrite);
	REQUIRE(c.n_tasks == 2);
	CHECK_STR(c.tasks[1].git_commit_id, "0123456789abcdef");
	CHECK_STR(c.tasks[1].source, "terminal-bench");
	REQUIRE(c.n_artifacts == 2);
	CHECK_STR(c.artifacts[1].destination, "results");
	job_config_release(&c);
}

TEST(job_json_type_errors_carry_lines)
{
	static const char doc[] = "{\n"
	                          "  \"n_attempts\": 1,\n"
	                          "  \"orchestrator\": {\n"
	                          "    \"n_concurrent_trials\": \"four\"\n"
	                          "  },\n"
	                          "  \"agents\": [\n"
	                          "    {\"name\": \"oracle\"},\n"
	                          "    {\"name\": \"nope\"}\n"
	                          "  ]\n"
	                          "}\n";
	_cleanup_node_ struct node *root = NULL;
	_cleanup_diags_ struct diags d = DIAGS_INIT;
	struct job_config c;
	struct err err = {0};

	REQUIRE(json_parse_node(doc, sizeof(doc) - 1, "j.json", &root, &err) == 0);
	job_config_init(&c);
	job_config_bind(root, "j.json", &c, &d);
	REQUIRE(d.n == 2);
	CHECK_STR(d.v[0].msg, "j.json:4: key 'orchestrator.n_concurrent_trials': expected an "
	                      "integer, got string \"four\"");
	CHECK(str_starts_with(d.v[1].msg, "j.json:8: key 'agents[1].name': unknown agent 'nope'"));
	job_config_release(&c);
}

TEST(job_round_trips_through_config_json)
{
	_cleanup_free_ char *out = xasprintf("%s/config.json", test_tmpdir());
	_cleanup_json_ cJSON *first = NULL, *second = NULL;
	_cleanup_strvs_ struct strv diff = STRV_INIT;
	struct job_config c;
	struct err err = {0};

	testdata_chdir();
	job_config_init(&c);
	REQUIRE(job_config_load("testdata/job/valid/all-fields.yaml", &c, &err) == 0);
	first = job_config_to_json(&c);
	job_config_release(&c);
	REQUIRE(json_write_file_atomic(out, first, &err) == 0);
	second = load_json_or_fail(out);
	REQUIRE(second);
	CHECK_INT(job_config_json_diff(first, second, &diff), 0);
	for (size_t i = 0; i < diff.n; i++)
		test_fail_at(__FILE__, __LINE__, "diff: %s", diff.v[i]);
	CHECK(cJSON_Compare(first, second, true));
}

TEST(job_to_json_has_harbors_shape)
{
	static const char *const top[] = {"job_name",
	                                  "jobs_dir",
	                                  "n_attempts",
	                                  "timeout_multiplier",
	                                  "agent_timeout_multiplier",
	                                  "verifier_timeout_multiplier",
	                                  "agent_setup_timeout_multiplier",
	                                  "environment_build_timeout_multiplier",
	                                  "debug",
	                                  "orchestrator",
	                                  "environment",
	                                  "verifier",
	                                  "metrics",
	                                  "agents",
	                                  "datasets",
	                                  "tasks",
	                                  "artifacts"};
	_cleanup_json_ cJSON *j = NULL;
	_cleanup_free_ char *retry = NULL, *ds = NULL;
	struct job_config c;
	const cJSON *item;
	size_t i = 0;

	testdata_chdir();
	job_config_init(&c);
	REQUIRE(job_config_load("testdata/job.yaml", &c, NULL) == 0);
	j = job_config_to_json(&c);
	job_config_release(&c);
	cJSON_ArrayForEach(item, j)
	{
		REQUIRE(i < ARRAY_SIZE(top));
		CHECK_STR(item->string, top[i]);
		i++;
	}
	CHECK_INT(i, ARRAY_SIZE(top));
	retry = cJSON_PrintUnformatted(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(j, "orchestrator"), "retry"));
	CHECK_STR(
	    retry,
	    "{\"max_retries\":0,\"include_exceptions\":null,\"exclude_exceptions\":["
	    "\"AgentTimeoutError\",\"VerifierTimeoutError\",\"RewardFileNotFoundError\","
	    "\"RewardFileEmptyError\",\"VerifierOutputParseError\",\"ApiUsageLimitError\","
	    "\"AgentSafetyRefusalError\",\"AgentAuthenticationError\",\"ModelNotFoundError\"],"
	    "\"wait_multiplier\":1,"
	    "\"min_wait_sec\":1,\"max_wait_sec\":60}");
	ds = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "datasets"));
	CHECK_STR(ds, "[{\"task_names\":null,\"exclude_task_names\":null,\"n_tasks\":null,"
	              "\"path\":\"test-dataset\"}]");
	/* The sandbox is no Harbor EnvironmentType: type null, an import_path, and
	 * rollout's own name beside them. */
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "environment"), "type")));
	CHECK_STR(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(j, "environment"), "import_path")->valuestring,
	    ENV_SANDBOX_IMPORT_PATH);
	CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "environment"), "rollout_provider")
	              ->valuestring,
	          "sandbox");
	CHECK_STR(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(j, "environment"), "preserve_env")->valuestring,
	    "never");
}

/* config.json of older rollouts: environment.type "sandbox" and the classic retry
 * exclusions are today's config (resume and merge keep working). */
TEST(job_diff_accepts_older_config_json_forms)
{
	struct job_config a;
	_cleanup_strvs_ struct strv diff = STRV_INIT;
	_cleanup_json_ cJSON *now = NULL, *old = NULL;
	cJSON *env, *retry;
	struct err err = {0};

	testdata_chdir();
	job_config_init(&a);
	REQUIRE(job_config_load("testdata/job.yaml", &a, &err) == 0);
	now = job_config_to_json(&a);
	old = cJSON_Duplicate(now, 1);
	env = cJSON_GetObjectItem(old, "environment");
	cJSON_DeleteItemFromObject(env, "rollout_provider");
	cJSON_ReplaceItemInObject(env, "type", cJSON_CreateString("sandbox"));
	cJSON_ReplaceItemInObject(env, "import_path", cJSON_CreateNull());
	retry = cJSON_GetObjectItem(cJSON_GetObjectItem(old, "orchestrator"), "retry");
	cJSON_ReplaceItemInObject(
	    retry, "exclude_exceptions",
	    cJSON_CreateStringArray(
	        (const char *const[]){"AgentTimeoutError", "VerifierTimeoutError",
	                              "RewardFileNotFoundError", "RewardFileEmptyError",
	                              "VerifierOutputParseError"},
	        5));
	CHECK_INT(job_config_json_diff(old, now, &diff), 0);
	/* and the file form reads back as the sandbox */
	REQUIRE(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(now, "environment"), "type")));
	job_config_release(&a);
}

TEST(job_diff_ignores_job_name_and_lists_changes)
{
	struct job_config a, b;
	_cleanup_strvs_ struct strv diff = STRV_INIT;
	struct err err = {0};

	testdata_chdir();
	job_config_init(&a);
	job_config_init(&b);
	REQUIRE(job_config_load("testdata/job.yaml", &a, &err) == 0);
	REQUIRE(job_config_load("testdata/job.yaml", &b, &err) == 0);
	free(b.job_name);
	b.job_name = xstrdup("another-name");
	CHECK_INT(job_config_diff(&a, &b, &diff), 0);
	b.n_attempts = 3;
	b.environment.type = ENV_TYPE_DOCKER;
	free(b.agents[0].model_name);
	b.agents[0].model_name = xstrdup("openai/gpt-5");
	b.orchestrator.retry.has_include_exceptions = true;
	strv_push(&b.orchestrator.retry.include_exceptions, "RuntimeError");
	CHECK_INT(job_config_diff(&a, &b, &diff), 6);
	REQUIRE(diff.n == 6);
	CHECK_STR(diff.v[0], "n_attempts: 1 -> 3");
	CHECK_STR(diff.v[1], "orchestrator.retry.include_exceptions: null -> [\"RuntimeError\"]");
	CHECK_STR(diff.v[2], "environment.type: null -> \"docker\"");
	CHECK_STR(diff.v[3], "environment.import_path: \"" ENV_SANDBOX_IMPORT_PATH "\" -> null");
	CHECK_STR(diff.v[4], "environment.rollout_provider: \"sandbox\" -> \"docker\"");
	CHECK_STR(diff.v[5], "agents[0].model_name: null -> \"openai/gpt-5\"");
	job_config_release(&a);
	job_config_release(&b);
}

TEST(job_allow_host_env_is_true_or_names_and_not_a_config_change)
{
	static const char all[] = "allow_host_env: true\n";
	static const char some[] = "allow_host_env: [OPENAI_API_KEY, HOME]\n";
	static const char bad[] = "allow_host_env: [\"A=B\", 1x]\n";
	_cleanup_node_ struct node *r1 = NULL, *r2 = NULL, *r3 = NULL;
	_cleanup_diags_ struct diags d = DIAGS_INIT;
	_cleanup_strvs_ struct strv diff = STRV_INIT;
	_cleanup_json_ cJSON *j1 = NULL, *j2 = NULL, *j0 = NULL;
	struct job_config a, b, c, none;
	struct err err;

	REQUIRE(yaml_parse(all, sizeof(all) - 1, "a.yaml", &r1, &err) == 0);
	REQUIRE(yaml_parse(some, sizeof(some) - 1, "b.yaml", &r2, &err) == 0);
	REQUIRE(yaml_parse(bad, sizeof(bad) - 1, "c.yaml", &r3, &err) == 0);
	job_config_init(&a);
	job_config_init(&b);
	job_config_init(&c);
	job_config_init(&none);
	job_config_bind(r1, "a.yaml", &a, &d);
	job_config_bind(r2, "b.yaml", &b, &d);
	CHECK_INT(d.n, 0);
	CHECK(a.allow_host_env_all && a.allow_host_env.n == 0);
	CHECK(!b.allow_host_env_all && b.allow_host_env.n == 2);
	CHECK_STR(b.allow_host_env.v[1], "HOME");
	job_config_bind(r3, "c.yaml", &c, &d);
	REQUIRE(d.n == 2);
	CHECK_STR(d.v[0].msg, "c.yaml:1: key 'allow_host_env[0]': expected an environment "
	                      "variable name, got \"A=B\"");
	/* written to config.json only when set, so resume keeps it... */
	j0 = job_config_to_json(&none);
	j1 = job_config_to_json(&a);
	j2 = job_config_to_json(&b);
	CHECK(!cJSON_GetObjectItem(j0, "allow_host_env"));
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j1, "allow_host_env")));
	CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j2, "allow_host_env")), 2);
	/* ...but changing it does not change what the trials are */
	CHECK_INT(job_config_json_diff(j0, j1, &diff), 0);
	CHECK_INT(job_config_json_diff(j1, j2, &diff), 0);
	job_config_release(&a);
	job_config_release(&b);
	job_config_release(&c);
	job_config_release(&none);
}

TEST(job_diff_reports_list_lengths_and_keys)
{
	_cleanup_json_ cJSON *a = cJSON_Parse("{\"job_name\":\"x\",\"l\":[1,2],\"o\":{\"k\":1}}");
	_cleanup_json_ cJSON *b = cJSON_Parse("{\"job_name\":\"y\",\"l\":[1],\"o\":{\"n\":true}}");
	_cleanup_strvs_ struct strv diff = STRV_INIT;

	CHECK_INT(job_config_json_diff(a, b, &diff), 3);
	REQUIRE(diff.n == 3);
	CHECK_STR(diff.v[0], "l: 2 items -> 1 item");
	CHECK_STR(diff.v[1], "o.k: removed (was 1)");
	CHECK_STR(diff.v[2], "o.n: added (true)");
}

static int set_flags(struct job_overrides *o, const char *const *argv, struct err *err)
{
	for (size_t i = 0; argv[i]; i += 2)
		if (cli_job_override_set(o, argv[i], argv[i + 1], err) < 0)
			return -1;
	return 0;
}

TEST(job_overrides_parse_and_reject)
{
	static const struct {
		const char *flag, *value, *error;
	} bad[] = {
	    {"-n", "0", "-n: expected an integer >= 1, got '0'"},
	    {"-n", "four", "-n: expected an integer >= 1, got 'four'"},
	    {"-k", "", "-k: expected an integer >= 1, got ''"},
	    {"-l", "2x", "-l: expected an integer >= 1, got '2x'"},
	    {"--max-retries", "-1", "--max-retries: expected an integer >= 0, got '-1'"},
	    {"-e", "podman", "-e: expected one of sandbox, docker, got 'podman'"},
	    {"--preserve-env", "sometimes",
	     "--preserve-env: expected one of never, on_failure, always, got 'sometimes'"},
	    {"--timeout-multiplier", "0", "--timeout-multiplier: expected a number > 0, got '0'"},
	    {"--timeout-multiplier", "nan",
	     "--timeout-multiplier: expected a number > 0, got 'nan'"},
	    {"--job-name", "a/b", "--job-name: the job name must not contain '/'"},
	    {"--job-name", "..", "--job-name: the job name must not be '.' or '..'"},
	    {"-a", "", "-a: expected NAME, got ''"},
	    {"--ae", "=x", "--ae: expected KEY=VALUE, got '=x'"},
	    {"--ak", "novalue", "--ak: expected KEY=VALUE, got 'novalue'"},
	    {"--override-cpus", "0", "--override-cpus: expected an integer >= 1, got '0'"},
	    {"-r", "-1", "-r: expected an integer >= 0, got '-1'"},
	    {"-p", NULL, "-p: missing value"},
	    {"--frobnicate", "1", "unknown flag '--frobnicate'"},
	};
	struct job_overrides o;

	job_overrides_init(&o);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct err err = {0};

		CHECK(cli_job_override_set(&o, bad[i].flag, bad[i].value, &err) < 0);
		CHECK_STR(err.msg, bad[i].error);
	}
	job_overrides_release(&o);
}

TEST(job_overrides_win_over_the_file)
{
	static const char *const argv[] = {"-p",
	                                   "test-dataset",
	                                   "-e",
	                                   "docker",
	                                   "-n",
	                                   "2",
	                                   "-k",
	                                   "5",
	                                   "--job-name",
	                                   "flags",
	                                   "-o",
	                                   "out",
	                                   "-t",
	                                   "hello-*",
	                                   "-t",
	                                   "other",
	                                   "-x",
	                                   "*-slow",
	                                   "-l",
	                                   "1",
	                                   "--timeout-multiplier",
	                                   "1.5",
	                                   "--max-retries",
	                                   "3",
	                                   "--preserve-env",
	                                   "always",
	                                   "-q",
	                                   NULL,
	                                   NULL};
	struct job_overrides o;
	struct job_config c;
	struct err err = {0};

	testdata_chdir();
	job_config_init(&c);
	REQUIRE(job_config_load("testdata/job/valid/all-fields.yaml", &c, &err) == 0);
	job_overrides_init(&o);
	REQUIRE(set_flags(&o, argv, &err) == 0);
	REQUIRE(job_overrides_apply(&c, &o, &err) == 0);
	CHECK_STR(c.job_name, "flags");
	CHECK_STR(c.jobs_dir, "out");
	CHECK_INT(c.n_attempts, 5);
	CHECK(c.timeout_multiplier == 1.5);
	CHECK_INT(c.orchestrator.n_concurrent_trials, 2);
	CHECK_INT(c.orchestrator.retry.max_retries, 3);
	CHECK(c.orchestrator.quiet);
	CHECK(c.environment.type == ENV_TYPE_DOCKER);
	CHECK(c.environment.preserve_env == PRESERVE_ENV_ALWAYS);
	/* -p replaces datasets and tasks; the filters go with it. */
	REQUIRE(c.n_datasets == 1);
	CHECK_INT(c.n_tasks, 0);
	CHECK_STR(c.datasets[0].path, "test-dataset");
	CHECK(c.datasets[0].has_task_names);
	CHECK_INT(c.datasets[0].task_names.n, 2);
	CHECK_STR(c.datasets[0].task_names.v[1], "other");
	CHECK_STR(c.datasets[0].exclude_task_names.v[0], "*-slow");
	CHECK_INT(c.datasets[0].n_tasks, 1);
	CHECK_INT(c.n_agents, 4); /* no -a/-m: the file's agents stay */
	job_overrides_release(&o);
	job_config_release(&c);
}

TEST(job_override_agents_and_models)
{
	static const char *const a_two_models[] = {"-a", "claude-code", "-m", "anthropic/a",
	                                           "-m", "anthropic/b", NULL, NULL};
	static const char *const models_only[] = {"-m", "x/1", "-m", "x/2", NULL, NULL};
	static const char *const user_agent[] = {"-a", "my-agent", NULL, NULL};
	static const char *const unknown[] = {"-a", "claude", NULL, NULL};
	struct job_overrides o;
	struct job_config c;
	struct err err = {0};

	testdata_chdir();
	/* -a with two -m: one agent per model, replacing the file's agents. */
	job_config_init(&c);
	REQUIRE(job_config_load("testdata/job/valid/all-fields.yaml", &c, &err) == 0);
	job_overrides_init(&o);
	REQUIRE(set_flags(&o, a_two_models, &err) == 0);
	REQUIRE(job_overrides_apply(&c, &o, &err) == 0);
	REQUIRE(c.n_agents == 2);
	CHECK_STR(c.agents[0].name, "claude-code");
	CHECK_STR(c.agents[0].model_name, "anthropic/a");
	CHECK_STR(c.agents[1].model_name, "anthropic/b");
	/* The file's claude-code settings come along. */
	CHECK(c.agents[1].override_timeout_sec == 1800);
	job_overrides_release(&o);
	job_config_release(&c);

	/* -m alone: each agent of the file, once per model. */
	job_config_init(&c);
	REQUIRE(job_config_load("testdata/job.yaml", &c, &err) == 0);
	job_overrides_init(&o);
	REQUIRE(set_flags(&o, models_only, &err) == 0);
	REQUIRE(job_overrides_apply(&c, &o, &err) == 0);
	REQUIRE(c.n_agents == 2);
	CHECK_STR(c.agents[0].name, "oracle");
	CHECK_STR(c.agents[1].model_name, "x/2");
	job_overrides_release(&o);
	job_config_release(&c);

	/* -a naming a user-defined agent of the file keeps its definition. */
	job_config_init(&c);
	REQUIRE(job_config_load("testdata/job/valid/all-fields.yaml", &c, &err) == 0);
	job_overrides_init(&o);
	REQUIRE(set_flags(&o, user_agent, &err) == 0);
	REQUIRE(job_overrides_apply(&c, &o, &err) == 0);
	REQUIRE(c.n_agents == 1);
	CHECK_STR(c.agents[0].run, "my-agent --task \"{instruction}\"");
	job_overrides_release(&o);

	/* An unknown -a is refused with the list of known agents. */
	job_overrides_init(&o);
	REQUIRE(set_flags(&o, unknown, &err) == 0);
	CHECK(job_overrides_apply(&c, &o, &err) < 0);
	CHECK_CONTAINS(err.msg, "-a: unknown agent 'claude' (known: oracle, nop, claude-code");
	job_overrides_release(&o);
	job_config_release(&c);
}

/* The kind is set once, when the config is bound: from the file, the default, -a, -m. */
TEST(job_agents_get_their_kind_when_bound)
{
	static const char *const builtin[] = {"-a", "nop", "-m", "x/1", NULL, NULL};
	static const char *const from_file[] = {"-a", "driver", NULL, NULL};
	static const char *const models_only[] = {"-m", "x/1", NULL, NULL};
	struct job_overrides o;
	struct job_config c;
	struct err err = {0};

	testdata_chdir();
	job_config_init(&c);
	REQUIRE(c.agents[0].def != NULL);
	CHECK_INT(c.agents[0].def->kind, AGENT_KIND_ORACLE);
	REQUIRE(job_config_load("testdata/job/valid/all-fields.yaml", &c, &err) == 0);
	REQUIRE(c.n_agents == 4);
	CHECK(c.agents[0].def == agent_table_find("claude-code"));
	CHECK_INT(c.agents[0].def->kind, AGENT_KIND_INSTALLED);
	CHECK(c.agents[1].def == agent_job_file_def(AGENT_KIND_USER));
	CHECK(c.agents[2].def == agent_job_file_def(AGENT_KIND_HOST));
	CHECK_INT(c.agents[3].def->kind, AGENT_KIND_ORACLE); /* {} */
	job_overrides_init(&o);
	REQUIRE(set_flags(&o, models_only, &err) == 0);
	REQUIRE(job_overrides_apply(&c, &o, &err) == 0);
	REQUIRE(c.n_agents == 4);
	CHECK_INT(c.agents[2].def->kind, AGENT_KIND_HOST);
	job_overrides_release(&o);
	job_config_release(&c);

	job_config_init(&c);
	REQUIRE(job_config_load("testdata/job/valid/all-fields.yaml", &c, &err) == 0);
	job_overrides_init(&o);
	REQUIRE(set_flags(&o, from_file, &err) == 0);
	REQUIRE(job_overrides_apply(&c, &o, &err) == 0);
	REQUIRE(c.n_agents == 1);
	CHECK_INT(c.agents[0].def->kind, AGENT_KIND_HOST);
	job_overrides_release(&o);
	job_config_release(&c);

	job_config_init(&c);
	REQUIRE(job_config_load("testdata/job/valid/all-fields.yaml", &c, &err) == 0);
	job_overrides_init(&o);
	REQUIRE(set_flags(&o, builtin, &err) == 0);
	REQUIRE(job_overrides_apply(&c, &o, &err) == 0);
	REQUIRE(c.n_agents == 1);
	CHECK(c.agents[0].def == agent_table_find("nop"));
	job_overrides_release(&o);
	job_config_release(&c);
}

TEST(job_filters_without_a_dataset_and_empty_jobs_are_refused)
{
	static const char *const filter[] = {"-t", "hello-*", NULL, NULL};
	struct job_overrides o;
	struct job_config c;
	struct err err = {0};

	job_config_init(&c);
	job_overrides_init(&o);
	CHECK(job_overrides_apply(&c, &o, &err) < 0);
	CHECK_STR(err.msg, "no tasks to run: give -p PATH, or datasets or tasks in the job file");
	REQUIRE(set_flags(&o, filter, &err) == 0);
	CHECK(job_overrides_apply(&c, &o, &err) < 0);
	CHECK_CONTAINS(err.msg, "-t, -x and -l filter datasets, but the job has none");
	job_overrides_release(&o);
	job_config_release(&c);
}

TEST(job_filters_apply_to_the_files_datasets)
{
	static const char *const filter[] = {"-x", "hello-*", "-l", "3", NULL, NULL};
	struct job_overrides o;
	struct job_config c;
	struct err err = {0};

	testdata_chdir();
	job_config_init(&c);
	REQUIRE(job_config_load("testdata/job.yaml", &c, &err) == 0);
	job_overrides_init(&o);
	REQUIRE(set_flags(&o, filter, &err) == 0);
	REQUIRE(job_overrides_apply(&c, &o, &err) == 0);
	REQUIRE(c.n_datasets == 1);
	CHECK(!c.datasets[0].has_task_names);
	CHECK_STR(c.datasets[0].exclude_task_names.v[0], "hello-*");
	CHECK_INT(c.datasets[0].n_tasks, 3);
	job_overrides_release(&o);
	job_config_release(&c);
}

TEST(job_load_reports_warnings_and_joins_errors)
{
	struct job_config c;
	struct err err = {0};

	testdata_chdir();
	job_config_init(&c);
	CHECK(job_config_load("testdata/job/invalid/bad-preserve-env.yaml", &c, &err) < 0);
	CHECK_STR(err.msg, "testdata/job/invalid/bad-preserve-env.yaml:3: key "
	                   "'environment.preserve_env': expected one of never, on_failure, always, "
	                   "got \"sometimes\"");
	job_config_release(&c);
	job_config_init(&c);
	CHECK(job_config_load("testdata/job/invalid/bad-values.yaml", &c, &err) < 0);
	CHECK(strchr(err.msg, '\n') != NULL); /* several problems, one per line */
	job_config_release(&c);
}

/* environment.isolation (docs/SANDBOX.md, "Isolation levels"): from the
 * file, overridden by --isolation, recorded in the config only when it is not
 * the default (so jobs written before it existed still resume). */
TEST(job_isolation_from_the_file_and_the_flag)
{
	static const char yaml[] = "environment:\n  type: sandbox\n  isolation: chroot\n"
	                           "datasets:\n  - path: test-dataset\n";
	struct job_overrides o;
	struct job_config c;
	struct err err = {0};
	cJSON *j, *e;

	REQUIRE(write_file(tpath("job.yaml"), yaml, strlen(yaml), 0644, NULL) == 0);
	job_config_init(&c);
	REQUIRE(job_config_load(tpath("job.yaml"), &c, &err) == 0);
	CHECK(c.environment.isolation == ENV_ISOLATION_CHROOT);
	j = job_config_to_json(&c);
	e = cJSON_GetObjectItem(j, "environment");
	CHECK_STR(json_get_str(e, "isolation"), "chroot");
	cJSON_Delete(j);
	job_overrides_init(&o);
	REQUIRE(cli_job_override_set(&o, "--isolation", "full", &err) == 0);
	REQUIRE(job_overrides_apply(&c, &o, &err) == 0);
	CHECK(c.environment.isolation == ENV_ISOLATION_FULL);
	j = job_config_to_json(&c);
	CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "environment"), "isolation") == NULL);
	cJSON_Delete(j);
	CHECK(cli_job_override_set(&o, "--isolation", "none", &err) < 0);
	CHECK_STR(err.msg, "--isolation: expected one of full, chroot, got 'none'");
	job_overrides_release(&o);
	job_config_release(&c);
	REQUIRE(write_file(tpath("bad.yaml"), "environment:\n  isolation: none\n", 31, 0644,
	                   NULL) == 0);
	job_config_init(&c);
	CHECK(job_config_load(tpath("bad.yaml"), &c, &err) < 0);
	CHECK_CONTAINS(err.msg, "key 'environment.isolation': expected one of full, chroot, got "
	                        "\"none\"");
	job_config_release(&c);
}

TEST(job_builtin_agent_list)
{
	_cleanup_free_ char *all = agent_builtin_names_joined();

	CHECK_STR(all, "oracle, nop, claude-code, codex, aider, gemini-cli, goose, opencode, "
	               "mini-swe-agent");
	CHECK(agent_name_is_builtin("nop"));
	CHECK(!agent_name_is_builtin("terminus-2"));
}

TEST(job_yaml_reader_details)
{
	static const char doc[] = "a: &x\n  k: [1, '2', \"3\", ~, yes, 0x10, 1e3, .inf, 012]\n"
	                          "b: *x\nc: !!str 42\n";
	_cleanup_node_ struct node *root = NULL;
	_cleanup_json_ cJSON *j = NULL;
	_cleanup_free_ char *s = NULL;
	struct err err = {0};

	REQUIRE(yaml_parse(doc, sizeof(doc) - 1, "y.yaml", &root, &err) == 0);
	j = node_to_json(root);
	s = cJSON_PrintUnformatted(j);
	/* 012 is refused as a number (YAML 1.1 and 1.2 disagree), so it stays text. */
	/* .inf has no JSON form: cJSON writes null. */
	CHECK_STR(s, "{\"a\":{\"k\":[1,\"2\",\"3\",null,true,16,1000,null,\"012\"]},"
	             "\"b\":{\"k\":[1,\"2\",\"3\",null,true,16,1000,null,\"012\"]},\"c\":\"42\"}");
	CHECK_INT(node_table_find(root, "b", 1)->line, 3);
}

TEST(job_yaml_alias_bombs_are_bounded)
{
	_cleanup_sb_ struct strbuf doc = STRBUF_INIT;
	_cleanup_node_ struct node *root = NULL;
	struct err err = {0};

	sb_adds(&doc, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 10; i++) {
		sb_addf(&doc, "a%d: &a%d [", i, i);
		for (int k = 0; k < 10; k++)
			sb_addf(&doc, "%s*a%d", k ? ", " : "", i - 1);
		sb_adds(&doc, "]\n");
	}
	CHECK(yaml_parse(doc.buf, doc.len, "bomb.yaml", &root, &err) < 0);
	CHECK_CONTAINS(err.msg, "too many nodes");
}

/* Resume compares the places paths name: the default relative jobs/ and its absolute
 * form (what `jobs resume DIR` reconstructs) are the same config. */
TEST(job_diff_compares_paths_resolved)
{
	char cwd[4096];
	_cleanup_json_ cJSON *a = NULL, *b = NULL, *c = NULL;
	_cleanup_strvs_ struct strv diff = STRV_INIT;
	_cleanup_free_ char *abs = NULL;

	REQUIRE(getcwd(cwd, sizeof(cwd)) != NULL);
	a = cJSON_Parse("{\"jobs_dir\":\"jobs\",\"datasets\":[{\"path\":\"./tasks/../tasks\"}],"
	                "\"n_attempts\":1}");
	abs = xasprintf("{\"jobs_dir\":\"%s/jobs/\",\"datasets\":[{\"path\":\"tasks\"}],"
	                "\"n_attempts\":1}",
	                cwd);
	b = cJSON_Parse(abs);
	c = cJSON_Parse("{\"jobs_dir\":\"/elsewhere/jobs\",\"datasets\":[{\"path\":\"other\"}],"
	                "\"n_attempts\":1}");
	REQUIRE(a && b && c);
	CHECK_INT(job_config_json_diff(a, b, &diff), 0);
	CHECK_INT(job_config_json_diff(a, c, &diff), 2);
	REQUIRE(diff.n == 2);
	CHECK_STR(diff.v[0], "jobs_dir: \"jobs\" -> \"/elsewhere/jobs\"");
	CHECK_STR(diff.v[1], "datasets[0].path: \"./tasks/../tasks\" -> \"other\"");
}

/* The display does not change what the trials are: -q on one run and not the next
 * is the same job. */
TEST(job_diff_ignores_the_display)
{
	_cleanup_json_ cJSON *a =
	    cJSON_Parse("{\"debug\":false,\"orchestrator\":{\"quiet\":true}}");
	_cleanup_json_ cJSON *b =
	    cJSON_Parse("{\"debug\":true,\"orchestrator\":{\"quiet\":false}}");
	_cleanup_strvs_ struct strv diff = STRV_INIT;

	CHECK_INT(job_config_json_diff(a, b, &diff), 0);
}
