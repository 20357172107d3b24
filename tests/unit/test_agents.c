/* Unit tests for src/agents: the registry matches config's list of agent names, and
 * command templates render with shell quoting. */
#include "agents/agent.h"
#include "config/agent_names.h"
#include "harness.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"

TEST(every_configured_name_has_an_agent_and_back)
{
	size_t n = 0;

	for (const char *const *name = agent_builtin_names; *name; name++, n++) {
		const struct agent_def *a = agent_find(*name);

		CHECK(a != NULL);
		if (a) {
			CHECK_STR(a->name, *name);
			CHECK(a->run != NULL);
		}
	}
	CHECK_INT(n, 9); /* oracle, nop and the seven installed agents */
	CHECK(agent_find("no-such-agent") == NULL);
}

TEST(installed_agents_have_templates)
{
	for (const char *const *name = agent_builtin_names; *name; name++) {
		const struct agent_def *a = agent_find(*name);

		if (!a || !strcmp(*name, "oracle") || !strcmp(*name, "nop"))
			continue;
		CHECK(a->install_template && a->run_template && a->setup);
		CHECK_CONTAINS(a->run_template, "{{instruction}}");
	}
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
