/* What is left of a destroyed environment once none of its processes exists:
 * its mount namespace (the overlay, /proc, /sys, the tmpfs mounts) and its
 * directory (the upper layer the agent wrote). Tearing these down takes longer
 * than the rest of a destroy together (unmounting ~20 file systems; on a disk
 * mounted with `discard`, every freed directory block is a synchronous discard),
 * and nothing can reach them any more: the namespace is held only by our fd and
 * the directory was renamed into <home>/trash. So one thread per process does
 * it in the background, and the process waits for it before it exits. Only a
 * rollout killed outright leaves trash behind; `rollout gc` removes it (the
 * owner's pid leads each name). */
#include "providers/sandbox/sandbox.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct reap_item {
	struct reap_item *next;
	int mntns; /* fd or -1 */
	char *path;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static struct reap_item *head, **tail = &head;
static bool started, busy;
static unsigned seq;

static void reap(struct reap_item *it)
{
	struct err e = {0};

	/* The last reference to the namespace: the kernel unmounts it all here. */
	if (it->mntns >= 0)
		close(it->mntns);
	if (it->path && rm_rf(it->path, &e) < 0)
		log_warn("sandbox: remove %s: %s", it->path, e.msg);
	free(it->path);
	free(it);
}

static void *reaper_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		struct reap_item *it;

		while (!head)
			pthread_cond_wait(&work_cv, &mu);
		it = head;
		head = it->next;
		if (!head)
			tail = &head;
		busy = true;
		pthread_mutex_unlock(&mu);
		reap(it);
		pthread_mutex_lock(&mu);
		busy = false;
		if (!head)
			pthread_cond_broadcast(&idle_cv);
	}
	return NULL;
}

/* A forked child has no reaper thread: its copies of the queue belong to the
 * parent (which removes them), and it starts its own when it needs one. */
static void after_fork_child(void)
{
	pthread_mutex_init(&mu, NULL);
	pthread_cond_init(&work_cv, NULL);
	pthread_cond_init(&idle_cv, NULL);
	head = NULL;
	tail = &head;
	started = busy = false;
}

void reaper_drain(void)
{
	pthread_mutex_lock(&mu);
	while (started && (head || busy))
		pthread_cond_wait(&idle_cv, &mu);
	pthread_mutex_unlock(&mu);
}

static bool start_locked(void)
{
	static bool hooks;
	pthread_attr_t a;
	pthread_t t;
	sigset_t all, old;
	int rc;

	if (started)
		return true;
	/* The thread takes no signals: the caller's handlers (cancellation) stay
	 * with the threads that expect them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &a, reaper_main, NULL);
	pthread_attr_destroy(&a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return false;
	started = true;
	if (!hooks) {
		hooks = true;
		pthread_atfork(NULL, NULL, after_fork_child);
		atexit(reaper_drain);
	}
	return true;
}

void reaper_add(int mntns, char *path)
{
	struct reap_item *it = xcalloc(1, sizeof(*it));

	it->mntns = mntns;
	it->path = path;
	pthread_mutex_lock(&mu);
	if (!start_locked()) {
		pthread_mutex_unlock(&mu);
		reap(it);
		return;
	}
	*tail = it;
	tail = &it->next;
	pthread_cond_signal(&work_cv);
	pthread_mutex_unlock(&mu);
}

char *reaper_trash_dir(void)
{
	_cleanup_free_ char *home = sandbox_home();

	return path_join(home, "trash");
}

char *reaper_trash(const char *dir)
{
	_cleanup_free_ char *trash = reaper_trash_dir();
	char *to;
	unsigned n;

	pthread_mutex_lock(&mu);
	n = seq++;
	pthread_mutex_unlock(&mu);
	to = xasprintf("%s/%d.%u.%s", trash, (int)getpid(), n, path_basename(dir));
	if (rename(dir, to) == 0)
		return to;
	if (errno == ENOENT && mkdir(trash, 0700) == 0 && rename(dir, to) == 0)
		return to;
	free(to);
	return NULL;
}

int reaper_gc(void)
{
	_cleanup_free_ char *trash = reaper_trash_dir();
	_cleanup_closedir_ DIR *d = opendir(trash);
	struct dirent *de;
	int removed = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		_cleanup_free_ char *path = NULL;
		struct err e = {0};
		char *end;
		long pid;

		if (de->d_name[0] == '.')
			continue;
		pid = strtol(de->d_name, &end, 10);
		/* The owner is still removing it. */
		if (*end == '.' && pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
			continue;
		path = path_join(trash, de->d_name);
		/* Its owner died before clearing the limit. */
		quota_dir_release(quota_dir_hold(path, -1));
		if (rm_rf(path, &e) < 0)
			log_warn("sandbox: gc %s: %s", path, e.msg);
		else
			removed++;
	}
	return removed;
}
