/* Unit tests for task.toml binding and task directories: Harbor's defaults,
 * every field, sizes, env templates, and every task in testdata/task/. */
#include "config/task.h"
#include "config/toml.h"
#include "config_testdata.h"
#include "harness.h"
#include "rollout/json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* The variables the template fixtures use, in a known state. */
static void set_template_env(void)
{
	setenv("ROLLOUT_TEST_TEMPLATE_VAR", "hostval", 1);
	unsetenv("ROLLOUT_TEST_SURELY_UNSET_VAR");
	unsetenv("ROLLOUT_TEST_OTHER_UNSET_VAR");
}

static void check_dir(const char *kind, bool want_valid)
{
	_cleanup_free_ char *dir = xasprintf("testdata/task/%s", kind);
	_cleanup_strvs_ struct strv entries = STRV_INIT;

	testdata_chdir();
	set_template_env();
	testdata_list(dir, "", &entries);
	REQUIRE(entries.n >= 5);
	for (size_t i = 0; i < entries.n; i++) {
		_cleanup_free_ char *path = xasprintf("%s/%s", dir, entries.v[i]);
		_cleanup_free_ char *expected = xasprintf("%s.expected", path);
		_cleanup_free_ char *got = NULL;
		_cleanup_diags_ struct diags d = DIAGS_INIT;
		int r = task_check(path, 0, &d, NULL);

		if (want_valid && r < 0)
			test_fail_at(__FILE__, __LINE__, "%s should be valid", path);
		if (!want_valid && (r == 0 || d.n_errors == 0))
			test_fail_at(__FILE__, __LINE__, "%s should have errors", path);
		got = testdata_diags_text(&d);
		testdata_expect(expected, got);
	}
}

TEST(task_testdata_valid_tasks)
{
	check_dir("valid", true);
}

TEST(task_testdata_invalid_tasks_give_every_problem)
{
	check_dir("invalid", false);
}

TEST(task_defaults_are_harbors)
{
	struct task_config c;
	_cleanup_free_ char *meta = NULL;

	task_config_init(&c);
	CHECK_STR(c.schema_version, "1.0");
	CHECK(c.source == NULL);
	CHECK(c.verifier.timeout_sec == 600.0);
	CHECK(c.agent.timeout_sec == 600.0);
	CHECK(c.environment.build_timeout_sec == 600.0);
	CHECK(c.environment.docker_image == NULL);
	CHECK_INT(c.environment.cpus, 1);
	CHECK_INT(c.environment.memory_mb, 2048);
	CHECK_INT(c.environment.storage_mb, 10240);
	CHECK_INT(c.environment.gpus, 0);
	CHECK(!c.environment.has_gpu_types);
	CHECK(c.environment.allow_internet);
	CHECK_STR(c.environment.os, "linux");
	CHECK(!c.environment.healthcheck.set);
	CHECK_INT(c.environment.n_mcp_servers, 0);
	CHECK_INT(c.verifier.env.n, 0);
	CHECK(!c.package.set);
	meta = cJSON_PrintUnformatted(c.metadata);
	CHECK_STR(meta, "{}");
	task_config_release(&c);
}

TEST(task_all_fields_are_read)
{
	struct task_config c;
	_cleanup_diags_ struct diags d = DIAGS_INIT;
	_cleanup_free_ char *meta = NULL;
	const struct task_config *k = &c;

	testdata_chdir();
	set_template_env();
	task_config_init(&c);
	REQUIRE(task_config_load("testdata/task/valid/all-fields/task.toml", &c, &d) == 0);
	CHECK_INT(d.n, 0);
	CHECK_STR(k->schema_version, "1.4");
	CHECK_STR(k->source, "unit-tests");
	REQUIRE(k->n_artifacts == 2);
	CHECK_STR(k->artifacts[0].source, "/app/output.log");
	CHECK(k->artifacts[0].destination == NULL);
	CHECK_STR(k->artifacts[1].source, "/app/results");
	CHECK_STR(k->artifacts[1].destination, "results");
	CHECK_INT(k->artifacts[1].exclude.n, 1);
	CHECK(k->package.set);
	CHECK_STR(k->package.name, "rollout/all-fields");
	CHECK_STR(k->package.version, "2.0");
	CHECK_STR(k->package.description, "Multi-line\ndescription.");
	REQUIRE(k->package.n_authors == 2);
	CHECK_STR(k->package.authors[0].name, "Zhun Wang");
	CHECK(k->package.authors[0].email == NULL);
	CHECK_STR(k->package.authors[1].email, "ts@example.com");
	CHECK_INT(k->package.keywords.n, 2);
	meta = cJSON_PrintUnformatted(k->metadata);
	CHECK_STR(meta,
	          "{\"difficulty\":\"hard\",\"nested\":{\"level\":1,\"list\":[1,2.5,\"three\","
	          "true]},\"released\":\"2025-11-24T12:00:00Z\"}");
	CHECK(k->verifier.timeout_sec == 1800.0);
	CHECK_STR(k->verifier.user, "1000");
	CHECK_STR(env_list_get(&k->verifier.env, "FIXED"), "value");
	CHECK_STR(env_list_get(&k->verifier.env, "FROM_HOST"), "hostval");
	CHECK_STR(env_list_get(&k->verifier.env, "WITH_DEFAULT"), "fallback");
	CHECK_STR(env_list_get(&k->verifier.env, "NOT_A_TEMPLATE"), "prefix ${HOME}");
	CHECK(k->agent.timeout_sec == 3600.0);
	CHECK_STR(k->agent.user, "agent");
	CHECK(k->environment.build_timeout_sec == 1200.0);
	CHECK_INT(k->environment.cpus, 4);
	CHECK_INT(k->environment.memory_mb, 1536);
	CHECK_INT(k->environment.storage_mb, 20480);
	CHECK_INT(k->environment.gpus, 1);
	CHECK(k->environment.has_gpu_types);
	CHECK_STR(k->environment.gpu_types.v[1], "A100");
	CHECK(!k->environment.allow_internet); /* network_mode = "no-network" */
	CHECK_STR(k->environment.workdir, "/work");
	CHECK_STR(env_list_get(&k->environment.env, "LANG"), "C.UTF-8");
	REQUIRE(k->environment.n_mcp_servers == 2);
	CHECK_STR(k->environment.mcp_servers[0].transport, "streamable-http");
	CHECK_STR(k->environment.mcp_servers[0].url, "http://mcp:8000/mcp");
	CHECK_STR(k->environment.mcp_servers[1].command, "mcp-server");
	CHECK_INT(k->environment.mcp_servers[1].args.n, 2);
	CHECK(k->environment.healthcheck.set);
	CHECK_STR(k->environment.healthcheck.command, "test -f /app/ready");
	CHECK(k->environment.healthcheck.interval_sec == 2);
	CHECK(k->environment.healthcheck.timeout_sec == 30);
	CHECK_INT(k->environment.healthcheck.retries, 10);
	CHECK_STR(env_list_get(&k->solution.env, "DEBIAN_FRONTEND"), "noninteractive");
	task_config_release(&c);
}

TEST(task_tb2_style_memory_strings)
{
	_cleanup_diags_ struct diags d = DIAGS_INIT;
	struct task_config c;

	testdata_chdir();
	task_config_init(&c);
	REQUIRE(task_config_load("testdata/task/valid/tb2-classic/task.toml", &c, &d) == 0);
	CHECK_INT(c.environment.memory_mb, 2048);
	CHECK_INT(c.environment.storage_mb, 10240);
	CHECK_STR(c.environment.docker_image, "alexgshaw/regex-log:20251031");
	CHECK(c.verifier.timeout_sec == 900.0);
	CHECK(c.agent.timeout_sec == 900.0);
	task_config_release(&c);
}

TEST(task_size_strings_follow_harbor)
{
	static const struct {
		const char *in;
		long mb;
	} cases[] = {
	    {"2G", 2048}, {"2g", 2048},   {"512M", 512},  {"512m", 512}, {"1K", 0},
	    {"2048k", 2}, {"1.5G", 1536}, {" 4G ", 4096}, {"0.5M", 0},   {"10G", 10240},
	    {"2", -1},    {"G", -1},      {"-1G", -1},    {"2GB", -1},   {"1e3M", -1},
	    {"2 G", -1},  {"", -1},       {"0x10M", -1},  {"inf G", -1}, {"nanG", -1},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		long got = task_parse_size_mb(cases[i].in);

		if (got != cases[i].mb)
			test_fail_at(__FILE__, __LINE__, "\"%s\" -> %ld, expected %ld", cases[i].in,
			             got, cases[i].mb);
	}
}

TEST(task_env_templates)
{
	static const struct {
		const char *in, *out, *missing;
	} cases[] = {
	    {"${ROLLOUT_T_SET}", "set-value", NULL},
	    {"${ROLLOUT_T_EMPTY}", "", NULL},
	    {"${ROLLOUT_T_EMPTY:-dflt}", "", NULL}, /* set but empty stays empty */
	    {"${ROLLOUT_T_UNSET:-dflt}", "dflt", NULL},
	    {"${ROLLOUT_T_UNSET:-}", "", NULL},
	    {"${ROLLOUT_T_UNSET:-a:-b}", "a:-b", NULL},
	    {"${ROLLOUT_T_UNSET}", NULL, "ROLLOUT_T_UNSET"},
	    {"x${ROLLOUT_T_SET}", "x${ROLLOUT_T_SET}", NULL},
	    {"${ROLLOUT_T_SET}x", "${ROLLOUT_T_SET}x", NULL},
	    {"${}", "${}", NULL},
	    {"${1A}", "${1A}", NULL},
	    {"${A B}", "${A B}", NULL},
	    {"$ROLLOUT_T_SET", "$ROLLOUT_T_SET", NULL},
	    {"plain", "plain", NULL},
	};

	setenv("ROLLOUT_T_SET", "set-value", 1);
	setenv("ROLLOUT_T_EMPTY", "", 1);
	unsetenv("ROLLOUT_T_UNSET");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *var = NULL;
		size_t var_len = 0;
		_cleanup_free_ char *got = env_template_resolve(cases[i].in, &var, &var_len);

		if (cases[i].out) {
			CHECK_STR(got, cases[i].out);
		} else {
			CHECK(got == NULL);
			CHECK(var && var_len == strlen(cases[i].missing) &&
			      !strncmp(var, cases[i].missing, var_len));
		}
	}
}

TEST(task_memory_and_memory_mb_may_agree)
{
	static const char doc[] = "[environment]\nmemory = \"4G\"\nmemory_mb = 4096\n";
	_cleanup_node_ struct node *root = NULL;
	_cleanup_diags_ struct diags d = DIAGS_INIT;
	struct err err;
	struct task_config c;

	REQUIRE(toml_parse(doc, sizeof(doc) - 1, "t.toml", &root, &err) == 0);
	task_config_init(&c);
	task_config_bind(root, "t.toml", &c, &d);
	CHECK_INT(d.n, 0);
	CHECK_INT(c.environment.memory_mb, 4096);
	task_config_release(&c);
}

TEST(task_artifact_destinations_inside_the_artifacts_dir_are_kept)
{
	static const char doc[] = "artifacts = [\"/app/out/\", \"/logs/model.patch\",\n"
	                          "  {source = \"/a\", destination = \"./sub/dir/x\"},\n"
	                          "  {source = \"/b\", destination = \"x..y/.z\"}]\n";
	_cleanup_node_ struct node *root = NULL;
	_cleanup_diags_ struct diags d = DIAGS_INIT;
	struct err err;
	struct task_config c;

	REQUIRE(toml_parse(doc, sizeof(doc) - 1, "t.toml", &root, &err) == 0);
	task_config_init(&c);
	task_config_bind(root, "t.toml", &c, &d);
	CHECK_INT(d.n, 0);
	REQUIRE(c.n_artifacts == 4);
	/* a trailing slash names the directory, as Python's Path does for Harbor */
	CHECK_STR(c.artifacts[0].source, "/app/out");
	CHECK(c.artifacts[0].destination == NULL);
	CHECK_STR(c.artifacts[2].destination, "./sub/dir/x");
	CHECK_STR(c.artifacts[3].destination, "x..y/.z");
	task_config_release(&c);
}

TEST(task_hello_world_loads)
{
	struct task *t = NULL;
	struct err err = {0};
	_cleanup_free_ char *tags = NULL;

	testdata_chdir();
	if (task_load("test-dataset/hello-world", 0, &t, &err) < 0) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return;
	}
	CHECK_STR(t->name, "hello-world");
	CHECK_STR(t->dir, "test-dataset/hello-world");
	CHECK_STR(t->config_path, "test-dataset/hello-world/task.toml");
	CHECK_STR(t->instruction_path, "test-dataset/hello-world/instruction.md");
	CHECK_STR(t->environment_dir, "test-dataset/hello-world/environment");
	CHECK_STR(t->solution_dir, "test-dataset/hello-world/solution");
	CHECK_STR(t->tests_dir, "test-dataset/hello-world/tests");
	CHECK(str_starts_with(t->instruction, "Create a file named `/app/hello.txt`"));
	CHECK_INT(t->config.environment.memory_mb, 1024);
	CHECK_INT(t->config.environment.storage_mb, 4096);
	CHECK(!t->config.environment.allow_internet);
	CHECK(t->config.verifier.timeout_sec == 120.0);
	tags = cJSON_PrintUnformatted(cJSON_GetObjectItem(t->config.metadata, "tags"));
	CHECK_STR(tags, "[\"trivial\",\"file-io\"]");
	task_free(t);
}

TEST(task_load_joins_every_error)
{
	struct task *t = NULL;
	struct err err = {0};

	testdata_chdir();
	CHECK(task_load("testdata/task/invalid/many-missing", 0, &t, &err) < 0);
	CHECK(t == NULL);
	CHECK_STR(err.msg,
	          "testdata/task/invalid/many-missing/instruction.md: missing (a task needs "
	          "instruction.md)\n"
	          "testdata/task/invalid/many-missing/environment: missing (a task needs an "
	          "environment/ directory)\n"
	          "testdata/task/invalid/many-missing/tests/test.sh: missing (the verifier "
	          "runs tests/test.sh)");
}

TEST(task_validity_follows_harbor)
{
	testdata_chdir();
	CHECK(task_dir_is_valid("test-dataset/hello-world", 0));
	CHECK(task_dir_is_valid("testdata/task/invalid/no-test-sh", TASK_NO_VERIFY));
	CHECK(!task_dir_is_valid("testdata/task/invalid/no-test-sh", 0));
	CHECK(!task_dir_is_valid("testdata/task/invalid/no-instruction", TASK_NO_VERIFY));
	CHECK(!task_dir_is_valid("testdata/task/invalid/no-environment", 0));
	CHECK(!task_dir_is_valid("testdata/task/invalid/no-task-toml", 0));
	CHECK(!task_dir_is_valid("test-dataset", 0));
	CHECK(task_dir_looks_like_task("testdata/task/invalid/many-missing"));
	CHECK(!task_dir_looks_like_task("test-dataset"));
}

TEST(task_check_without_verification_skips_test_sh)
{
	_cleanup_diags_ struct diags d = DIAGS_INIT;

	testdata_chdir();
	CHECK(task_check("testdata/task/invalid/no-test-sh", TASK_NO_VERIFY, &d, NULL) == 0);
	CHECK_INT(d.n, 0);
}

TEST(task_names_come_from_the_directory)
{
	_cleanup_free_ char *a = task_dir_name("test-dataset/hello-world/");
	_cleanup_free_ char *b = task_dir_name("hello-world");
	_cleanup_free_ char *c = NULL;

	CHECK_STR(a, "hello-world");
	CHECK_STR(b, "hello-world");
	testdata_chdir();
	REQUIRE(chdir("test-dataset/hello-world") == 0);
	c = task_dir_name(".");
	CHECK_STR(c, "hello-world");
}

TEST(task_unreadable_instruction_is_an_error)
{
	_cleanup_free_ char *dir = xasprintf("%s/t", test_tmpdir());
	_cleanup_free_ char *sub = NULL;
	_cleanup_diags_ struct diags d = DIAGS_INIT;
	struct err err;

	sub = xasprintf("%s/environment", dir);
	REQUIRE(mkdir_p(sub, 0755, &err) == 0);
	free(sub);
	sub = xasprintf("%s/tests", dir);
	REQUIRE(mkdir_p(sub, 0755, &err) == 0);
	free(sub);
	sub = xasprintf("%s/environment/Dockerfile", dir);
	REQUIRE(write_file(sub, "FROM x\n", 7, 0644, &err) == 0);
	free(sub);
	sub = xasprintf("%s/tests/test.sh", dir);
	REQUIRE(write_file(sub, "", 0, 0755, &err) == 0);
	free(sub);
	sub = xasprintf("%s/task.toml", dir);
	REQUIRE(write_file(sub, "", 0, 0644, &err) == 0);
	free(sub);
	/* instruction.md is a directory: it exists but is not a file. */
	sub = xasprintf("%s/instruction.md", dir);
	REQUIRE(mkdir_p(sub, 0755, &err) == 0);
	CHECK(task_check(dir, 0, &d, NULL) < 0);
	REQUIRE(d.n >= 1);
	CHECK_CONTAINS(d.v[0].msg, "instruction.md: missing");
}

/* A valid task under the test's scratch directory, its files made here (a test never
 * commits links to real host files). */
static const char *make_task(const char *name)
{
	const char *t = tdir(name);
	struct err err;

	tdir(tfmt("%s/environment", name));
	tdir(tfmt("%s/tests", name));
	tdir(tfmt("%s/solution", name));
	if (write_file(tfmt("%s/task.toml", t), "version = \"1.0\"\n", 16, 0644, &err) < 0 ||
	    write_file(tfmt("%s/instruction.md", t), "Do it.\n", 7, 0644, &err) < 0 ||
	    write_file(tfmt("%s/environment/Dockerfile", t), "FROM x\n", 7, 0644, &err) < 0 ||
	    write_file(tfmt("%s/tests/test.sh", t), "#!/bin/sh\n", 10, 0755, &err) < 0 ||
	    write_file(tfmt("%s/solution/solve.sh", t), "#!/bin/sh\n", 10, 0755, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	return t;
}

/* The canary: host content no task may reach. */
static const char *make_canary(void)
{
	const char *c = tdir("canary");

	if (write_file(tfmt("%s/secret", c), "CANARY\n", 7, 0644, NULL) < 0 ||
	    write_file(tfmt("%s/test.sh", c), "#!/bin/sh\n", 10, 0755, NULL) < 0)
		test_fail_at(__FILE__, __LINE__, "canary");
	return c;
}

static void replace_with_link(const char *target, const char *path)
{
	struct err err;

	if (rm_rf(path, &err) < 0 || symlink(target, path) < 0)
		test_fail_at(__FILE__, __LINE__, "link %s -> %s", path, target);
}

static char *check_text(const char *dir, int *rc)
{
	_cleanup_diags_ struct diags d = DIAGS_INIT;

	*rc = task_check(dir, 0, &d, NULL);
	return testdata_diags_text(&d);
}

TEST(task_entries_that_are_links_are_refused)
{
	const char *canary = make_canary();
	static const struct {
		const char *entry, *target, *kind;
	} cases[] = {
	    {"tests", "canary", "directory"},
	    {"solution", "canary", "directory"},
	    {"environment", "/", "directory"},
	    {"instruction.md", "canary/secret", "file"},
	    {"task.toml", "canary/secret", "file"},
	    /* even a link that stays inside the task */
	    {"solution", "tests", "directory"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *t = make_task(tfmt("t%zu", i));
		_cleanup_free_ char *target =
		    cases[i].target[0] == '/' ? xstrdup(cases[i].target)
		    : !strcmp(cases[i].target, "tests")
		        ? xstrdup("tests")
		        : xasprintf("%s/%s", test_tmpdir(), cases[i].target);
		_cleanup_free_ char *want =
		    xasprintf("error: %s/%s: a symbolic link (to \"%s\"); rollout reads a task's "
		              "%s only as a "
		              "real %s, never through a link\n",
		              t, cases[i].entry, target, cases[i].entry, cases[i].kind);
		_cleanup_free_ char *got = NULL;
		struct task *loaded = NULL;
		struct err err = {0};
		int rc;

		replace_with_link(target, tfmt("%s/%s", t, cases[i].entry));
		got = check_text(t, &rc);
		CHECK(rc < 0);
		/* the link is the only problem reported: not also "missing" */
		CHECK_STR(got, want);
		CHECK(task_load(t, 0, &loaded, &err) < 0 && loaded == NULL);
		CHECK_CONTAINS(err.msg, cases[i].entry);
	}
	(void)canary;
}

TEST(task_links_out_of_the_task_are_refused_anywhere_in_it)
{
	const char *canary = make_canary();
	const char *t = make_task("t");
	_cleanup_free_ char *got = NULL;
	int rc;

	REQUIRE(symlink(tfmt("%s/secret", canary), tfmt("%s/tests/abs", t)) == 0);
	REQUIRE(symlink("../../canary/secret", tfmt("%s/tests/rel", t)) == 0);
	/* each link alone stays inside; followed in turn they climb out */
	REQUIRE(symlink("..", tfmt("%s/tests/up", t)) == 0);
	REQUIRE(symlink("up/..", tfmt("%s/tests/chain", t)) == 0);
	REQUIRE(symlink("../../../../../../../../missing", tfmt("%s/tests/dangling-out", t)) == 0);
	REQUIRE(symlink(tfmt("%s/secret", canary), tfmt("%s/README", t)) == 0);
	tdir("t/environment/deep/er");
	REQUIRE(symlink("../../../../x", tfmt("%s/environment/deep/er/up4", t)) == 0);
	got = check_text(t, &rc);
	CHECK(rc < 0);
	{
		static const char *const want[][2] = {
		    {"README", NULL},
		    {"environment/deep/er/up4", "../../../../x"},
		    {"tests/abs", NULL},
		    {"tests/chain", "up/.."},
		    {"tests/dangling-out", "../../../../../../../../missing"},
		    {"tests/rel", "../../canary/secret"},
		};
		_cleanup_free_ char *secret = xasprintf("%s/secret", canary);
		struct strbuf sb = STRBUF_INIT;

		for (size_t i = 0; i < ARRAY_SIZE(want); i++)
			sb_addf(
			    &sb,
			    "error: %s/%s: a symbolic link to \"%s\", out of the task directory "
			    "(rollout never reads task files through such links)\n",
			    t, want[i][0], want[i][1] ? want[i][1] : secret);
		CHECK_STR(got, sb_str(&sb));
		sb_release(&sb);
	}
}

TEST(task_links_that_stay_inside_are_fine)
{
	const char *t = make_task("t");
	_cleanup_free_ char *got = NULL;
	int rc;

	REQUIRE(symlink("../solution/solve.sh", tfmt("%s/tests/solve", t)) == 0);
	REQUIRE(symlink("missing", tfmt("%s/tests/dangling", t)) == 0);
	REQUIRE(symlink(".", tfmt("%s/tests/self", t)) == 0);
	REQUIRE(symlink("..", tfmt("%s/tests/up", t)) == 0);
	got = check_text(t, &rc);
	CHECK(rc == 0);
	CHECK_STR(got, "");
}

TEST(task_control_characters_in_link_targets_are_not_printed)
{
	const char *t = make_task("t");
	_cleanup_free_ char *got = NULL;
	int rc;

	REQUIRE(symlink("/x\033[2J\n", tfmt("%s/tests/esc", t)) == 0);
	got = check_text(t, &rc);
	CHECK(rc < 0);
	CHECK_CONTAINS(got, "to \"/x?[2J?\"");
	CHECK(!strchr(got, '\033'));
}

TEST(task_open_dir_opens_only_real_directories_with_nothing_pointing_out)
{
	const char *canary = make_canary();
	const char *t = make_task("t");
	struct err err = {0};
	struct stat st;
	int fd;

	/* a link inside that stays inside does not matter */
	REQUIRE(symlink("../solution/solve.sh", tfmt("%s/tests/solve", t)) == 0);
	fd = task_open_dir(t, "tests", &err);
	REQUIRE(fd >= 0);
	CHECK(fstatat(fd, "test.sh", &st, 0) == 0);
	close(fd);

	/* the entry swapped for a link after the task was loaded */
	replace_with_link(canary, tfmt("%s/tests", t));
	CHECK(task_open_dir(t, "tests", &err) < 0);
	CHECK_INT(err.code, ELOOP);
	CHECK_CONTAINS(err.msg, tfmt("%s/tests: a symbolic link", t));

	/* a link planted inside that points out */
	REQUIRE(symlink(tfmt("%s/secret", canary), tfmt("%s/solution/data", t)) == 0);
	CHECK(task_open_dir(t, "solution", &err) < 0);
	CHECK_INT(err.code, ELOOP);
	CHECK_CONTAINS(err.msg, tfmt("%s/solution/data: a symbolic link to", t));

	CHECK(task_open_dir(t, "missing", &err) < 0);
	CHECK_INT(err.code, ENOENT);
	CHECK(task_open_dir(t, "task.toml", &err) < 0);
	CHECK_INT(err.code, ENOTDIR);
	CHECK(task_open_dir(t, "..", &err) < 0);
	CHECK_INT(err.code, EINVAL);
	CHECK(task_open_dir(t, "tests/..", &err) < 0);
	CHECK_INT(err.code, EINVAL);
}
