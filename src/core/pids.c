/* Sizing each trial's pids limit from the host's pid_max and threads-max. */
#include "core/pids.h"
#include "rollout/cleanup.h"
#include "rollout/fs.h"

#include <stdlib.h>

static long read_proc_long(const char *path)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	long v;
	char *end;

	if (read_file(path, 64, &text, &len, NULL) < 0)
		return 0;
	v = strtol(text, &end, 10);
	return end != text && v > 0 ? v : 0;
}

long pids_host_capacity(void)
{
	long pid_max = read_proc_long("/proc/sys/kernel/pid_max");
	long threads = read_proc_long("/proc/sys/kernel/threads-max");

	if (!pid_max || (threads && threads < pid_max))
		return threads;
	return pid_max;
}

long pids_reserve(long capacity)
{
	long r = capacity / 4;

	if (r < PIDS_RESERVE_MIN)
		r = PIDS_RESERVE_MIN;
	return r > capacity / 2 ? capacity / 2 : r;
}

long pids_limit_size(long wanted, int concurrency, long capacity, bool *lowered)
{
	long share, limit;

	if (lowered)
		*lowered = false;
	if (capacity <= 0)
		return wanted;
	share = (capacity - pids_reserve(capacity)) / (concurrency > 0 ? concurrency : 1);
	limit = wanted > 0 && wanted < share ? wanted : share;
	if (limit < PIDS_LIMIT_MIN)
		limit = PIDS_LIMIT_MIN;
	if (wanted > 0 && limit > wanted)
		limit = wanted;
	if (lowered)
		*lowered = wanted <= 0 || limit < wanted;
	return limit;
}
