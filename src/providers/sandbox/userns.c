/* User namespaces for an unprivileged caller: the caller is root inside. With
 * newuidmap/newgidmap installed and a subordinate range in /etc/subuid and
 * /etc/subgid, uids and gids 1..count map to that range (other users exist inside);
 * otherwise one id each (setgroups denied). Files the environment created with
 * subordinate ids can only be removed from inside such a namespace. */
#include "providers/sandbox/sandbox.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int subid_parse(const char *text, unsigned long id, const char *name, struct subid_range *out)
{
	const char *line = text;

	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		_cleanup_free_ char *l = xstrndup(line, len);
		char *c1 = strchr(l, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *end;
		unsigned long start, count, who;
		bool match;

		line = eol ? eol + 1 : NULL;
		if (!c2 || l[0] == '#')
			continue;
		*c1 = *c2 = '\0';
		who = strtoul(l, &end, 10);
		match = (name && strcmp(l, name) == 0) || (*l && !*end && who == id);
		start = strtoul(c1 + 1, &end, 10);
		if (*end)
			continue;
		count = strtoul(c2 + 1, &end, 10);
		if (*end || !match || count == 0)
			continue;
		out->start = start;
		out->count = count;
		return 0;
	}
	return -1;
}

static bool in_path(const char *prog)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = xstrdup(path && *path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");

	for (char *save = NULL, *d = strtok_r(copy, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		_cleanup_free_ char *f = path_join(d, prog);

		if (access(f, X_OK) == 0)
			return true;
	}
	return false;
}

static int lookup(const char *file, unsigned long id, const char *name, struct subid_range *r)
{
	_cleanup_free_ char *text = NULL;
	size_t len;

	if (read_file(file, 1 << 20, &text, &len, NULL) < 0)
		return -1;
	return subid_parse(text, id, name, r);
}

bool userns_subid_ranges(struct subid_range *uids, struct subid_range *gids)
{
	char buf[1024];
	struct passwd pw, *res = NULL;
	const char *name = NULL;

	if (!in_path("newuidmap") || !in_path("newgidmap"))
		return false;
	if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res) == 0 && res)
		name = res->pw_name;
	return lookup("/etc/subuid", geteuid(), name, uids) == 0 &&
	       lookup("/etc/subgid", getegid(), name, gids) == 0;
}

/* newuidmap PID 0 ID 1 1 START COUNT (the setuid helpers check the ranges). */
static int run_map_helper(const char *prog, pid_t pid, unsigned long id,
                          const struct subid_range *r, struct err *err)
{
	char a[6][24];
	int st = 0;
	pid_t c, r_;

	snprintf(a[0], sizeof(a[0]), "%d", (int)pid);
	snprintf(a[1], sizeof(a[1]), "0");
	snprintf(a[2], sizeof(a[2]), "%lu", id);
	snprintf(a[3], sizeof(a[3]), "1");
	snprintf(a[4], sizeof(a[4]), "1");
	snprintf(a[5], sizeof(a[5]), "%lu %lu", r->start, r->count);
	c = fork();
	if (c < 0)
		return err_sys(err, "fork %s", prog);
	if (c == 0) {
		char start[24], count[24];
		int nul = open("/dev/null", O_RDWR);

		sscanf(a[5], "%23s %23s", start, count);
		dup2(nul, 0);
		dup2(nul, 1);
		execlp(prog, prog, a[0], a[1], a[2], a[3], a[4], start, count, (char *)NULL);
		_exit(127);
	}
	while ((r_ = waitpid(c, &st, 0)) < 0 && errno == EINTR)
		; /* a signal (cancellation) does not leave the helper unreaped */
	if (r_ < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return err_set(err, EPERM, "%s %s failed (status %d)", prog, a[0], st);
	return 0;
}

static int write_proc(pid_t pid, const char *file, const char *text, struct err *err)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	return write_file(path, text, strlen(text), 0644, err) < 0 ? err_wrap(err, "id map") : 0;
}

int userns_write_maps(pid_t pid, bool ranges, struct err *err)
{
	struct subid_range u, g;
	char m[64];

	if (ranges && userns_subid_ranges(&u, &g)) {
		if (run_map_helper("newgidmap", pid, getegid(), &g, err) == 0) {
			if (run_map_helper("newuidmap", pid, geteuid(), &u, err) == 0)
				return 0;
			/* gid_map is written already; the uid map can still be ours. */
			snprintf(m, sizeof(m), "0 %u 1\n", (unsigned)geteuid());
			return write_proc(pid, "uid_map", m, err);
		}
	}
	if (write_proc(pid, "setgroups", "deny", err) < 0)
		return -1;
	snprintf(m, sizeof(m), "0 %u 1\n", (unsigned)getegid());
	if (write_proc(pid, "gid_map", m, err) < 0)
		return -1;
	snprintf(m, sizeof(m), "0 %u 1\n", (unsigned)geteuid());
	return write_proc(pid, "uid_map", m, err);
}

int userns_rm_rf(const char *path, struct err *err)
{
	int ready[2], go[2], st, rc = -1;
	pid_t c;
	char b = 0;

	if (pipe2(ready, O_CLOEXEC) < 0)
		return err_sys(err, "pipe");
	if (pipe2(go, O_CLOEXEC) < 0) {
		close(ready[0]);
		close(ready[1]);
		return err_sys(err, "pipe");
	}
	c = fork();
	if (c == 0) {
		close(ready[0]);
		close(go[1]);
		if (unshare(CLONE_NEWUSER) < 0 || write(ready[1], "r", 1) != 1)
			_exit(2);
		if (read(go[0], &b, 1) != 1 || b != 'g')
			_exit(3);
		_exit(rm_rf(path, NULL) == 0 ? 0 : 4);
	}
	close(ready[1]);
	close(go[0]);
	if (c < 0) {
		err_sys(err, "fork");
	} else if (read(ready[0], &b, 1) != 1) {
		err_set(err, EPERM, "remove %s: no user namespace", path);
	} else if (userns_write_maps(c, true, err) == 0 && write(go[1], "g", 1) == 1) {
		close(go[1]);
		go[1] = -1;
		if (waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			rc = 0;
		else
			err_set(err, EPERM, "remove %s inside a user namespace failed", path);
		c = -1;
	}
	close(ready[0]);
	if (go[1] >= 0)
		close(go[1]);
	if (c > 0)
		waitpid(c, NULL, 0);
	return rc;
}
