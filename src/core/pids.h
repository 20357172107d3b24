/* The per-trial pids limit: what the job asks for, but never so much that its
 * concurrent trials together could take the host's last pids. 4,096 pids per trial
 * times 8 trials is the whole default pid_max (32,768): 8 fork bombs would leave the
 * host unable to start a process. */
#ifndef ROLLOUT_PIDS_H
#define ROLLOUT_PIDS_H

#include <stdbool.h>

#define PIDS_LIMIT_DEFAULT 4096
/* Below this a trial could hardly run anything: the floor, whatever the share. */
#define PIDS_LIMIT_MIN 64
/* The host keeps a quarter of its pids, and at least this many, out of every job's
 * reach. */
#define PIDS_RESERVE_MIN 2048

/* How many processes and threads the host can have: the smaller of
 * /proc/sys/kernel/pid_max and /proc/sys/kernel/threads-max; 0 when neither reads. */
long pids_host_capacity(void);

/* The limit for each of `concurrency` trials that want `wanted` pids (<= 0: no limit
 * asked for) on a host of `capacity` (0: unknown, `wanted` is kept): at most the
 * trials' fair share of what the host's reserve leaves, never more than `wanted`,
 * never below PIDS_LIMIT_MIN. *lowered (optional) says whether it is less than
 * wanted. */
long pids_limit_size(long wanted, int concurrency, long capacity, bool *lowered);

/* The reserve pids_limit_size keeps free on a host of `capacity`. */
long pids_reserve(long capacity);

#endif
