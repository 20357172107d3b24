/* The list of built-in agent names. */
#include "config/agent_names.h"
#include "rollout/strbuf.h"

#include <string.h>

const char *const agent_builtin_names[] = {
    "oracle",     "nop",   "claude-code", "codex",          "aider",
    "gemini-cli", "goose", "opencode",    "mini-swe-agent", NULL,
};

bool agent_name_is_builtin(const char *name)
{
	for (size_t i = 0; agent_builtin_names[i]; i++)
		if (strcmp(agent_builtin_names[i], name) == 0)
			return true;
	return false;
}

char *agent_builtin_names_joined(void)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; agent_builtin_names[i]; i++)
		sb_addf(&sb, "%s%s", i ? ", " : "", agent_builtin_names[i]);
	return sb_detach(&sb);
}
