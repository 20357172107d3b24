/* Unit tests for the pure parts of the trial executor: timeouts, reward files, sanitizing. */
#include "core/rewards.h"
#include "core/trial_run.h"
#include "harness.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static struct timeout_inputs defaults(void)
{
	struct timeout_inputs in = {
	    .task_agent_timeout = 600,
	    .task_verifier_timeout = 300,
	    .task_build_timeout = 900,
	    .agent_override = -1,
	    .agent_max = -1,
	    .agent_setup_override = -1,
	    .verifier_override = -1,
	    .verifier_max = -1,
	    .multiplier = 1,
	    .agent_multiplier = -1,
	    .verifier_multiplier = -1,
	    .agent_setup_multiplier = -1,
	    .build_multiplier = -1,
	};
	return in;
}

TEST(timeouts_follow_harbor_formulas)
{
	struct timeout_inputs in = defaults();
	struct trial_spec s = {0};

	trial_timeouts(&in, &s);
	CHECK(s.agent_timeout == 600 && s.verifier_timeout == 300);
	CHECK(s.install_timeout == 360 && s.setup_timeout == 900);

	/* global multiplier applies everywhere */
	in.multiplier = 2;
	trial_timeouts(&in, &s);
	CHECK(s.agent_timeout == 1200 && s.verifier_timeout == 600);
	CHECK(s.install_timeout == 720 && s.setup_timeout == 1800);

	/* phase multipliers win over the global one, and apply to overrides too */
	in.agent_override = 100;
	in.agent_multiplier = 3;
	in.verifier_override = 50;
	in.verifier_multiplier = 0.5;
	in.agent_setup_override = 10;
	in.agent_setup_multiplier = 4;
	in.build_multiplier = 1;
	trial_timeouts(&in, &s);
	CHECK(s.agent_timeout == 300);
	CHECK(s.verifier_timeout == 25);
	CHECK(s.install_timeout == 40);
	CHECK(s.setup_timeout == 900);

	/* max caps the (override or task) value before the multiplier; override 0 = unset */
	in = defaults();
	in.agent_override = 0;
	in.agent_max = 120;
	in.verifier_max = 1000;
	trial_timeouts(&in, &s);
	CHECK(s.agent_timeout == 120);
	CHECK(s.verifier_timeout == 300);
}

static void put(const char *name, const char *text)
{
	_cleanup_free_ char *p = path_join(test_tmpdir(), name);

	REQUIRE(write_file(p, text, strlen(text), 0644, NULL) == 0);
}

static const char *parse_since(double not_before, cJSON **rewards, struct reward_file *rf,
                               struct err *err)
{
	_cleanup_cdir_ struct cdir dir = CDIR_INIT;
	const char *type = NULL;

	*rewards = NULL;
	if (cdir_open_trusted(test_tmpdir(), &dir, err) < 0)
		return "no directory";
	if (trial_parse_rewards(&dir, not_before, rewards, rf, &type, err) == 0)
		return "ok";
	return type;
}

static const char *parse(cJSON **rewards, struct err *err)
{
	return parse_since(0, rewards, NULL, err);
}

TEST(rewards_from_reward_txt)
{
	static const struct {
		const char *text;
		double want;
	} good[] = {{"1", 1}, {"0.5\n", 0.5}, {"  1e-1 \n", 0.1}, {"-2", -2}, {"1_000", 1000}};
	static const char *const bad[] = {"one", "1 2", "0x10", "1__0", "_1", " \n"};
	struct err err = {0};
	cJSON *r;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		put("reward.txt", good[i].text);
		CHECK_STR(parse(&r, &err), "ok");
		CHECK(r && cJSON_GetObjectItem(r, "reward")->valuedouble == good[i].want);
		cJSON_Delete(r);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		put("reward.txt", bad[i]);
		CHECK_STR(parse(&r, &err), "VerifierOutputParseError");
	}
	put("reward.txt", "");
	CHECK_STR(parse(&r, &err), "RewardFileEmptyError");
}

/* Harbor >= 0.22: reward.json wins over reward.txt. */
TEST(reward_json_is_read_before_reward_txt)
{
	struct err err = {0};
	struct reward_file rf;
	cJSON *r;

	put("reward.txt", "0");
	CHECK_STR(parse_since(0, &r, &rf, &err), "ok");
	CHECK(cJSON_GetArraySize(r) == 1 && cJSON_GetObjectItem(r, "reward"));
	CHECK_STR(rf.name, "reward.txt");
	cJSON_Delete(r);
	put("reward.json", "{\"a\": 0.25, \"b\": 1}");
	CHECK_STR(parse_since(0, &r, &rf, &err), "ok");
	CHECK(cJSON_GetArraySize(r) == 2 && cJSON_GetObjectItem(r, "a")->valuedouble == 0.25);
	CHECK_STR(rf.name, "reward.json");
	CHECK_INT(rf.size, strlen("{\"a\": 0.25, \"b\": 1}"));
	cJSON_Delete(r);
}

/* A reward file older than the verification is not the verifier's: never read,
 * and reported as such. */
TEST(reward_files_older_than_verification_are_not_read)
{
	struct err err = {0};
	struct reward_file rf;
	struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
	cJSON *r;

	put("reward.json", "{\"reward\": 1}");
	REQUIRE(utimensat(AT_FDCWD, tpath("reward.json"), old, 0) == 0);
	CHECK_STR(parse_since(wall_now(), &r, &rf, &err), "RewardFileNotFoundError");
	CHECK_STR(rf.ignored, "reward.json");
	CHECK_CONTAINS(err.msg, "predates");
	/* A fresh reward.txt written during verification is read instead. */
	put("reward.txt", "0");
	CHECK_STR(parse_since(wall_now() - 1, &r, &rf, &err), "ok");
	CHECK_STR(rf.name, "reward.txt");
	CHECK_STR(rf.ignored, "reward.json");
	CHECK(cJSON_GetObjectItem(r, "reward")->valuedouble == 0);
	cJSON_Delete(r);
}

TEST(a_fifo_in_place_of_a_reward_does_not_block)
{
	struct err err = {0};
	cJSON *r;
	double t0 = mono_now();

	REQUIRE(mkfifo(tpath("reward.json"), 0644) == 0);
	CHECK_STR(parse(&r, &err), "VerifierOutputParseError");
	CHECK(mono_now() - t0 < 5);
}

TEST(rewards_from_reward_json_errors)
{
	static const char *const bad[] = {"{\"a\": \"1\"}", "[1]", "{\"a\": {\"b\": 1}}", "{",
	                                  "{\"a\": true}"};
	struct err err = {0};
	cJSON *r;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		put("reward.json", bad[i]);
		CHECK_STR(parse(&r, &err), "VerifierOutputParseError");
	}
	put("reward.json", "");
	CHECK_STR(parse(&r, &err), "RewardFileEmptyError");
}

TEST(non_finite_rewards_are_parse_errors)
{
	/* Python's float() reads all of these; none is an outcome, and a non-finite
	 * number in a result once made the trial a retryable RolloutWorkerCrashError. */
	static const char *const txt[] = {"nan",       "NaN\n", "inf",    "-inf",
	                                  "+Infinity", "1e999", "-1e999", "1_0e999"};
	static const char *const json[] = {"{\"reward\": 1e999}",      "{\"reward\": -1e999}",
	                                   "{\"a\": 1, \"b\": 1E400}", "{\"reward\": NaN}",
	                                   "{\"reward\": Infinity}",   "{\"reward\": -Infinity}"};
	struct err err = {0};
	cJSON *r;

	for (size_t i = 0; i < ARRAY_SIZE(txt); i++) {
		put("reward.txt", txt[i]);
		CHECK_STR(parse(&r, &err), "VerifierOutputParseError");
		CHECK(r == NULL);
	}
	put("reward.txt", "inf");
	parse(&r, &err);
	CHECK_STR(err.msg, "reward.txt: expected a finite number, got 'inf'");
	REQUIRE(unlink(tpath("reward.txt")) == 0);
	for (size_t i = 0; i < ARRAY_SIZE(json); i++) {
		put("reward.json", json[i]);
		CHECK_STR(parse(&r, &err), "VerifierOutputParseError");
		CHECK(r == NULL);
	}
	put("reward.json", "{\"reward\": 1e999}");
	parse(&r, &err);
	CHECK_STR(err.msg, "reward.json: key 'reward': expected a finite number, got inf");
	/* tiny numbers underflow to a finite 0, as in Python */
	put("reward.json", "{\"reward\": 1e-999}");
	CHECK_STR(parse(&r, &err), "ok");
	cJSON_Delete(r);
}

/* A reward.json of n keys "k0".."k{n-1}" (value 1), with an extra member appended. */
static void put_keys(size_t n, const char *extra)
{
	struct strbuf sb = STRBUF_INIT;

	sb_addc(&sb, '{');
	for (size_t i = 0; i < n; i++)
		sb_addf(&sb, "%s\"k%zu\": 1", i ? ", " : "", i);
	if (extra)
		sb_addf(&sb, "%s%s", n ? ", " : "", extra);
	sb_addc(&sb, '}');
	put("reward.json", sb_str(&sb));
	sb_release(&sb);
}

TEST(reward_json_keys_are_capped)
{
	struct err err = {0};
	cJSON *r;

	put_keys(80000, NULL);
	CHECK_STR(parse(&r, &err), "VerifierOutputParseError");
	CHECK_STR(err.msg, "reward.json: more than 1000 keys (rollout's limit)");
	CHECK(r == NULL);
	put_keys(REWARD_KEYS_MAX, NULL);
	CHECK_STR(parse(&r, &err), "ok");
	CHECK_INT(cJSON_GetArraySize(r), REWARD_KEYS_MAX);
	cJSON_Delete(r);
	/* a key given again is the same key: it does not count twice */
	put_keys(REWARD_KEYS_MAX, "\"k0\": 0.5");
	CHECK_STR(parse(&r, &err), "ok");
	CHECK_INT(cJSON_GetArraySize(r), REWARD_KEYS_MAX);
	cJSON_Delete(r);
	put_keys(REWARD_KEYS_MAX, "\"one-more\": 0");
	CHECK_STR(parse(&r, &err), "VerifierOutputParseError");
}

TEST(reward_json_duplicate_keys_keep_the_last_value_as_python_does)
{
	struct err err = {0};
	cJSON *r;

	put("reward.json", "{\"a\": 1, \"b\": 2, \"a\": 3, \"a\": 0.5}");
	REQUIRE(strcmp(parse(&r, &err), "ok") == 0);
	CHECK_INT(cJSON_GetArraySize(r), 2);
	CHECK_STR(r->child->string, "a"); /* the first place */
	CHECK(r->child->valuedouble == 0.5);
	CHECK(cJSON_GetObjectItem(r, "b")->valuedouble == 2);
	cJSON_Delete(r);
}

TEST(reward_messages_quote_no_control_characters)
{
	struct err err = {0};
	cJSON *r;

	put("reward.txt", "\033]0;owned\007 not a number");
	CHECK_STR(parse(&r, &err), "VerifierOutputParseError");
	CHECK(!strchr(err.msg, '\033') && !strchr(err.msg, '\007'));
	REQUIRE(unlink(tpath("reward.txt")) == 0);
	put("reward.json", "{\"\\u001b[2J\": \"x\"}");
	CHECK_STR(parse(&r, &err), "VerifierOutputParseError");
	CHECK_STR(err.msg, "reward.json: key '?[2J': expected a number");
}

TEST(missing_reward_and_symlinked_reward)
{
	struct err err = {0};
	_cleanup_free_ char *link = path_join(test_tmpdir(), "reward.txt");
	cJSON *r;

	CHECK_STR(parse(&r, &err), "RewardFileNotFoundError");
	/* a symlink planted by the environment is never followed to a host file */
	REQUIRE(write_file(tpath("canary"), "host", 4, 0644, NULL) == 0);
	REQUIRE(symlink(tpath("canary"), link) == 0);
	CHECK_STR(parse(&r, &err), "VerifierOutputParseError");
	CHECK_CONTAINS(err.msg, "symbolic link");
}
