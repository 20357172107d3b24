/* The agents rollout provides, in one place: the job config validates agent
 * names against it and the agents module (src/agents/) implements them. */
#ifndef ROLLOUT_CONFIG_AGENT_NAMES_H
#define ROLLOUT_CONFIG_AGENT_NAMES_H

#include <stdbool.h>

/* NULL-terminated: oracle, nop, then the installed agents. */
extern const char *const agent_builtin_names[];

bool agent_name_is_builtin(const char *name);
/* "oracle, nop, claude-code, ..." for messages. Heap string. */
char *agent_builtin_names_joined(void);

#endif
