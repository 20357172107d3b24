/* Processes: what the host side and rollout's in-environment helpers need. */
#ifndef ROLLOUT_PROC_H
#define ROLLOUT_PROC_H

#include <sys/types.h>

/* Kills every process of the caller's pid namespace except pid 1 and the
 * caller (for an environment's init, or a helper exec'd into a container):
 * each round stops then SIGKILLs everything /proc lists, until a round finds
 * nothing alive or `budget_sec` has passed. Zombies count as gone. Returns how
 * many processes were killed, or -1 when /proc cannot be read. */
int proc_kill_all_but_init(double budget_sec);

#endif
