/* Unit tests for src/core/result.c: JSON round trip, atomic write, tolerant loads, names. */
#include "core/result.h"
#include "harness.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"

#include "rollout/strbuf.h"

#include <ctype.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

static void fill(struct trial_result *r)
{
	trial_result_init(r);
	r->task_name = xstrdup("hello-world");
	r->trial_name = xstrdup("hello-world__abcdefg");
	r->trial_uri = xstrdup("file:///jobs/j/hello-world__abcdefg");
	r->task_id = cJSON_CreateObject();
	cJSON_AddStringToObject(r->task_id, "path", "test-dataset/hello-world");
	r->source = xstrdup("test-dataset");
	r->task_checksum = xstrdup("00ff");
	r->config = cJSON_CreateObject();
	r->agent_name = xstrdup("oracle");
	r->agent_version = xstrdup("1.0.0");
	r->model_name = xstrdup("anthropic/claude");
	r->rewards = cJSON_CreateObject();
	cJSON_AddNumberToObject(r->rewards, "reward", 1.0);
	cJSON_AddNumberToObject(r->rewards, "speed", 0.25);
	r->started_at = 1764009420.5;
	r->finished_at = 1764009425.25;
	r->phases[PHASE_ENVIRONMENT_SETUP].started_at = 1764009420.6;
	r->phases[PHASE_ENVIRONMENT_SETUP].finished_at = 1764009421.0;
	trial_result_set_exception(r, "AgentTimeoutError", "agent timed out after %d s", 5);
	trial_result_set_exception(r, "VerifierTimeoutError", "second error is ignored");
}

TEST(trial_result_round_trips_through_json)
{
	struct trial_result a, b;
	struct err err = {0};
	_cleanup_json_ cJSON *j = NULL;
	_cleanup_json_ cJSON *j2 = NULL;

	fill(&a);
	j = trial_result_to_json(&a);
	REQUIRE(trial_result_from_json(j, &b, &err) == 0);
	CHECK_STR(b.task_name, "hello-world");
	CHECK_STR(b.model_name, "anthropic/claude");
	CHECK_STR(b.exception->type, "AgentTimeoutError");
	CHECK_STR(b.exception->message, "agent timed out after 5 s");
	CHECK(cJSON_GetObjectItem(b.rewards, "speed")->valuedouble == 0.25);
	CHECK(b.finished_at > 1764009425.2 && b.finished_at < 1764009425.3);
	CHECK(b.phases[PHASE_AGENT_SETUP].started_at == 0);
	j2 = trial_result_to_json(&b);
	CHECK(cJSON_Compare(j, j2, 1));
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "agent_setup")));
	CHECK_STR(
	    json_get_str(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "agent_info"), "model_info"),
	                 "provider"),
	    "anthropic");
	trial_result_free(&a);
	trial_result_free(&b);
}

TEST(trial_result_write_and_load)
{
	struct trial_result a, b;
	struct err err = {0};
	_cleanup_free_ char *exc = NULL;
	size_t len;

	_cleanup_cdir_ struct cdir dir = CDIR_INIT;

	REQUIRE(cdir_open_trusted(test_tmpdir(), &dir, &err) == 0);
	fill(&a);
	REQUIRE(trial_result_write(&dir, &a, &err) == 0);
	CHECK_INT(trial_result_load(&dir, &b, &err), RESULT_OK);
	CHECK_STR(b.trial_name, "hello-world__abcdefg");
	REQUIRE(read_file(tpath("exception.txt"), 4096, &exc, &len, NULL) == 0);
	CHECK_CONTAINS(exc, "AgentTimeoutError");
	trial_result_free(&a);
	trial_result_free(&b);
}

/* A builder's or daemon's coloured error text reaches neither file with its codes. */
TEST(trial_result_files_carry_no_terminal_control)
{
	struct trial_result a;
	struct err err = {0};
	_cleanup_free_ char *exc = NULL, *res = NULL;
	size_t len;
	_cleanup_cdir_ struct cdir dir = CDIR_INIT;

	REQUIRE(cdir_open_trusted(test_tmpdir(), &dir, &err) == 0);
	trial_result_init(&a);
	a.trial_name = xstrdup("t\033[1m__x");
	trial_result_set_exception(&a, "RuntimeError",
	                           "build of \033[31mtask\033[0m failed:\r\n\033]0;title\007step "
	                           "1\rstep 2\x07\x08 \xc2\x9b"
	                           "1mdone \xc3\x9b");
	a.finished_at = 2;
	REQUIRE(trial_result_write(&dir, &a, &err) == 0);
	REQUIRE(read_file(tpath("exception.txt"), 4096, &exc, &len, NULL) == 0);
	REQUIRE(read_file(tpath("result.json"), 65536, &res, &len, NULL) == 0);
	CHECK_STR(exc, "RuntimeError: build of task failed:\nstep 1\nstep 2 done \xc3\x9b\n");
	CHECK(!strchr(res, '\033'));
	CHECK_CONTAINS(res,
	               "\"exception_message\": \"build of task failed:\\nstep 1\\nstep 2 done");
	CHECK_CONTAINS(res, "\"trial_name\": \"t__x\"");
	trial_result_free(&a);
}

TEST(trial_result_load_tolerates_missing_empty_and_truncated)
{
	struct trial_result r;
	struct err err = {0};
	_cleanup_free_ char *path = path_join(test_tmpdir(), "result.json");
	const char *cases[] = {"", "{\"id\": \"x\", \"task_na", "[1,2]", "{\"id\": 5}",
	                       "{\"id\": \"x\"}" /* no finished_at: unfinished */};
	_cleanup_cdir_ struct cdir dir = CDIR_INIT;

	REQUIRE(cdir_open_trusted(test_tmpdir(), &dir, &err) == 0);
	CHECK_INT(trial_result_load(&dir, &r, &err), RESULT_MISSING);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		REQUIRE(write_file(path, cases[i], strlen(cases[i]), 0644, NULL) == 0);
		CHECK_INT(trial_result_load(&dir, &r, &err), RESULT_CORRUPT);
		CHECK(err.msg[0] != '\0');
	}
	/* A link or a FIFO in place of result.json is corrupt, never followed or
	 * waited on. */
	unlink(path);
	REQUIRE(write_file(tpath("elsewhere.json"), "{}", 2, 0644, NULL) == 0);
	REQUIRE(symlink(tpath("elsewhere.json"), path) == 0);
	CHECK_INT(trial_result_load(&dir, &r, &err), RESULT_CORRUPT);
	unlink(path);
	REQUIRE(mkfifo(path, 0644) == 0);
	CHECK_INT(trial_result_load(&dir, &r, &err), RESULT_CORRUPT);
}

TEST(a_non_finite_reward_is_written_as_a_parse_error_and_reads_back)
{
	struct trial_result a, b;
	struct err err = {0};
	_cleanup_free_ char *exc = NULL;
	_cleanup_cdir_ struct cdir dir = CDIR_INIT;
	size_t len;

	REQUIRE(cdir_open_trusted(test_tmpdir(), &dir, &err) == 0);
	/* However rewards reach a result, the file must read back: NaN and infinities
	 * have no JSON spelling (they used to be written as null, refused on reading,
	 * and the trial counted as a crashed worker, retried). */
	fill(&a);
	trial_result_clear_exception(&a);
	cJSON_AddNumberToObject(a.rewards, "bad", NAN);
	REQUIRE(trial_result_write(&dir, &a, &err) == 0);
	REQUIRE(trial_result_load(&dir, &b, &err) == RESULT_OK);
	CHECK(b.rewards == NULL);
	REQUIRE(b.exception);
	CHECK_STR(b.exception->type, "VerifierOutputParseError");
	CHECK_CONTAINS(b.exception->message, "key 'bad': expected a finite number");
	REQUIRE(read_file(tpath("exception.txt"), 4096, &exc, &len, NULL) == 0);
	CHECK_CONTAINS(exc, "VerifierOutputParseError");
	trial_result_free(&b);
	/* an exception already recorded stays the first one */
	trial_result_set_exception(&a, "AgentTimeoutError", "slow");
	cJSON_AddNumberToObject(a.rewards, "worse", INFINITY);
	REQUIRE(trial_result_write(&dir, &a, &err) == 0);
	REQUIRE(trial_result_load(&dir, &b, &err) == RESULT_OK);
	CHECK_STR(b.exception->type, "AgentTimeoutError");
	CHECK(b.rewards == NULL);
	trial_result_free(&a);
	trial_result_free(&b);
}

TEST(result_rewards_that_are_not_finite_numbers_are_refused_on_reading)
{
	struct trial_result a, r;
	struct err err = {0};
	_cleanup_json_ cJSON *j = NULL;
	const char *path = tpath("result.json");
	static const char *const bad[] = {"null", "1e999", "\"1\"", "[1]"};
	_cleanup_cdir_ struct cdir dir = CDIR_INIT;

	REQUIRE(cdir_open_trusted(test_tmpdir(), &dir, &err) == 0);
	fill(&a);
	j = trial_result_to_json(&a);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		cJSON *rw =
		    cJSON_GetObjectItem(cJSON_GetObjectItem(j, "verifier_result"), "rewards");
		_cleanup_free_ char *s = NULL;

		cJSON_ReplaceItemInObject(rw, "speed", cJSON_CreateRaw(bad[i]));
		s = cJSON_PrintUnformatted(j);
		REQUIRE(write_file(path, s, strlen(s), 0644, NULL) == 0);
		CHECK_INT(trial_result_load(&dir, &r, &err), RESULT_CORRUPT);
		CHECK_CONTAINS(err.msg, "verifier_result.rewards");
	}
	trial_result_free(&a);
}

TEST(trial_names_follow_harbor)
{
	_cleanup_free_ char *a = trial_name_new("hello-world");
	_cleanup_free_ char *b =
	    trial_name_new("org/a-very-long-task-name-that-exceeds-thirty-two-chars");
	_cleanup_free_ char *c = trial_name_new("x-_");

	CHECK(str_starts_with(a, "hello-world__"));
	CHECK_INT(strlen(a), strlen("hello-world__") + 7);
	CHECK(str_starts_with(b, "a-very-long-task-name-that-excee__"));
	CHECK(str_starts_with(c, "x__"));
	for (const char *p = a + strlen("hello-world__"); *p; p++)
		CHECK(isalnum((unsigned char)*p) && !strchr("01IOl", *p));
}

TEST(uuid4_format)
{
	char a[37], b[37];

	uuid4(a);
	uuid4(b);
	CHECK_INT(strlen(a), 36);
	CHECK(a[14] == '4');
	CHECK(strchr("89ab", a[19]) != NULL);
	CHECK(strcmp(a, b) != 0);
}

TEST(file_uri_escapes)
{
	_cleanup_free_ char *u = file_uri("/no such/dir%x");

	CHECK_STR(u, "file:///no%20such/dir%25x");
}
