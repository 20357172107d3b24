/* Process-wide cancellation flag set by SIGINT/SIGTERM handlers. */
#ifndef ROLLOUT_SIGNALS_H
#define ROLLOUT_SIGNALS_H

#include <signal.h>

/* Number of cancellation signals received (0, 1, 2...). Long-running waits
 * (exec, builds, HTTP reads) check it and return ECANCELED promptly. */
extern volatile sig_atomic_t rollout_cancel_count;

/* Install handlers for SIGINT/SIGTERM that count into rollout_cancel_count
 * (without SA_RESTART, so blocking calls return EINTR). */
void signals_install_cancel(void);
static inline int cancel_requested(void)
{
	return rollout_cancel_count > 0;
}

#endif
