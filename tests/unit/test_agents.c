/* Unit tests for src/agents: every row of config's agent table has a kind this module
 * runs, and command templates render with shell quoting. */
#include "agents/agent.h"
#include "config/agent_table.h"
#include "harness.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"

TEST(every_configured_name_has_an_agent_and_back)
{
	size_t n = 0;

	for (const struct agent_def *a = agent_table; a->name; a++, n++) {
		CHECK(agent_table_find(a->name) == a);
		CHECK(agent_kind_ops(a->kind) != NULL);
		if (agent_kind_ops(a->kind))
			CHECK(agent_kind_ops(a->kind)->run != NULL);
	}
	CHECK_INT(n, 9); /* oracle, nop and the seven installed agents */
	CHECK(agent_table_find("no-such-agent") == NULL);
}

TEST(installed_agents_have_templates)
{
	for (const struct agent_def *a = agent_table; a->name; a++) {
		if (!strcmp(a->name, "oracle") || !strcmp(a->name, "nop"))
			continue;
		CHECK_INT(a->kind, AGENT_KIND_INSTALLED);
		CHECK(a->install_template && a->run_template && agent_has_setup(a));
		CHECK_CONTAINS(a->run_template, "{{instruction}}");
	}
}

TEST(every_kind_has_ops_and_the_job_file_kinds_a_row)
{
	for (int k = 0; k < AGENT_KIND_COUNT; k++) {
		const struct agent_ops *ops = agent_kind_ops((enum agent_kind)k);
		const struct agent_def *row = agent_job_file_def((enum agent_kind)k);
		bool job_file = k == AGENT_KIND_USER || k == AGENT_KIND_HOST;

		REQUIRE(ops != NULL);
		CHECK(ops->run != NULL);
		CHECK((row != NULL) == job_file);
		if (row) {
			CHECK_INT(row->kind, k);
			CHECK(!agent_name_is_builtin(row->name));
			CHECK_STR(row->version, "1.0.0");
		}
	}
	CHECK_INT(agent_table_find("oracle")->kind, AGENT_KIND_ORACLE);
	CHECK_INT(agent_table_find("nop")->kind, AGENT_KIND_NOP);
	/* user-defined agents install (agent/install.sh); host-side ones do not */
	CHECK(agent_has_setup(agent_job_file_def(AGENT_KIND_USER)));
	CHECK(!agent_has_setup(agent_job_file_def(AGENT_KIND_HOST)));
	CHECK(!agent_has_setup(agent_table_find("oracle")));
	CHECK(agent_kind_ops(AGENT_KIND_COUNT) == NULL);
}

TEST(render_quotes_values_for_the_shell)
{
	struct agent_context ctx = {0};
	struct err err = {0};
	_cleanup_free_ char *out = NULL;
	_cleanup_free_ char *env = NULL;

	ctx.instruction = "it's $(rm -rf /)";
	ctx.model_name = "anthropic/claude-x";
	ctx.version = "1.2";
	REQUIRE(agent_render("run {{instruction}} -m {{ model }} -p {{provider}} {{model_full}}",
	                     &ctx, true, &out, &err) == 0);
	CHECK_STR(out, "run 'it'\\''s $(rm -rf /)' -m 'claude-x' -p 'anthropic' "
	               "'anthropic/claude-x'");
	REQUIRE(agent_render("MODEL={{model}}", &ctx, false, &env, &err) == 0);
	CHECK_STR(env, "MODEL=claude-x");
}

TEST(render_rejects_unknown_and_unclosed_placeholders)
{
	struct agent_context ctx = {0};
	struct err err = {0};
	char *out = NULL;

	CHECK(agent_render("x {{nope}}", &ctx, true, &out, &err) < 0);
	CHECK_CONTAINS(err.msg, "unknown placeholder '{{nope}}'");
	CHECK(agent_render("x {{instruction", &ctx, true, &out, &err) < 0);
	CHECK_CONTAINS(err.msg, "without '}}'");
}
