/* SIGINT/SIGTERM → a cancellation counter that long waits poll. */
#include "rollout/signals.h"

#include <string.h>

volatile sig_atomic_t rollout_cancel_count;

static void on_cancel(int sig)
{
	(void)sig;
	rollout_cancel_count++;
}

void signals_install_cancel(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_cancel;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}
