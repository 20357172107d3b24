/* Processes: killing everything in a pid namespace but its init. */
#include "rollout/proc.h"
#include "rollout/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KILL_TRACK_MAX 65536

/* The state letter of /proc/PID/stat ('?' when it cannot be read). */
static char proc_state(long pid)
{
	char path[64], buf[512];
	int fd;
	ssize_t n;
	char *rp;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold anything, ')' included. */
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && rp[2] ? rp[2] : '?';
}

static bool seen_before(const pid_t *seen, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (seen[i] == pid)
			return true;
	return false;
}

/* One scan: signals every live process but 1 and self; returns how many. */
static int signal_all(int sig, pid_t self, pid_t *seen, size_t *n_seen)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int alive = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		char st;

		if (*end || pid <= 1 || pid == self)
			continue;
		st = proc_state(pid);
		if (st == '?' || st == 'Z' || st == 'X' || st == 'x')
			continue;
		kill((pid_t)pid, sig);
		alive++;
		if (sig == SIGKILL && *n_seen < KILL_TRACK_MAX &&
		    !seen_before(seen, *n_seen, (pid_t)pid))
			seen[(*n_seen)++] = (pid_t)pid;
	}
	closedir(d);
	return alive;
}

int proc_kill_all_but_init(double budget_sec)
{
	static pid_t seen[KILL_TRACK_MAX];
	size_t n_seen = 0;
	pid_t self = getpid();
	double end = mono_now() + budget_sec;

	for (int round = 0;; round++) {
		/* Stopped processes cannot fork while the next scan looks. */
		if (signal_all(SIGSTOP, self, seen, &n_seen) < 0)
			return round == 0 ? -1 : (int)n_seen;
		if (signal_all(SIGKILL, self, seen, &n_seen) <= 0)
			break;
		if (mono_now() > end)
			break;
		usleep(round < 20 ? 500 : 5000);
	}
	return (int)n_seen;
}
