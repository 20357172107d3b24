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
#include "rollout/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* newuidmap PID 0 ID 1 1 START COUNT (the setuid helpers check the ranges). Not
 * cancellable: a signal (cancellation) does not leave the helper unreaped. */
static int run_map_helper(const char *prog, pid_t pid, unsigned long id,
                          const struct subid_range *r, struct err *err)
{
	char a[7][24];
	const char *argv[] = {prog, a[0], a[1], a[2], a[3], a[4], a[5], a[6], NULL};
	struct proc p = {.argv = argv, .no_stdin = true, .no_stdout = true};

	snprintf(a[0], sizeof(a[0]), "%d", (int)pid);
	snprintf(a[1], sizeof(a[1]), "0");
	snprintf(a[2], sizeof(a[2]), "%lu", id);
	snprintf(a[3], sizeof(a[3]), "1");
	snprintf(a[4], sizeof(a[4]), "1");
	snprintf(a[5], sizeof(a[5]), "%lu", r->start);
	snprintf(a[6], sizeof(a[6]), "%lu", r->count);
	if (proc_run(&p, NULL) < 0 || p.signalled || p.exit_code != 0)
		return err_set(err, EPERM, "%s %s failed (status %d)", prog, a[0], p.status);
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

/* The child of userns_rm_rf: a user namespace of its own, then, once the
 * parent wrote its id maps, the removal as its root. */
struct rm_child {
	const char *path;
	int ready, go;               /* the child's ends */
	int parent_ready, parent_go; /* the parent's (a fn child does not exec: close them) */
};

static int rm_in_userns(void *arg)
{
	struct rm_child *c = arg;
	char b = 0;

	close(c->parent_ready);
	close(c->parent_go);
	if (unshare(CLONE_NEWUSER) < 0 || write(c->ready, "r", 1) != 1)
		return 2;
	close(c->ready);
	if (read(c->go, &b, 1) != 1 || b != 'g')
		return 3;
	return rm_rf(c->path, NULL) == 0 ? 0 : 4;
}

int userns_rm_rf(const char *path, struct err *err)
{
	int ready[2], go[2], rc = -1;
	struct rm_child c = {.path = path};
	struct proc p = {.fn = rm_in_userns, .arg = &c};
	char b = 0;

	if (pipe2(ready, O_CLOEXEC) < 0)
		return err_sys(err, "pipe");
	if (pipe2(go, O_CLOEXEC) < 0) {
		close(ready[0]);
		close(ready[1]);
		return err_sys(err, "pipe");
	}
	c.ready = ready[1];
	c.go = go[0];
	c.parent_ready = ready[0];
	c.parent_go = go[1];
	if (proc_start(&p, err) < 0) {
		close(ready[1]);
		close(go[0]);
		goto out;
	}
	close(ready[1]);
	close(go[0]);
	if (read(ready[0], &b, 1) != 1)
		err_set(err, EPERM, "remove %s: no user namespace", path);
	else if (userns_write_maps(p.pid, true, err) == 0 && write(go[1], "g", 1) == 1)
		rc = 0;
	close(go[1]);
	go[1] = -1;
	/* Without "g" (an error above) the child's read ends at EOF and it exits. */
	if (proc_finish(&p, rc == 0 ? err : NULL) < 0 || (rc == 0 && p.exit_code != 0)) {
		if (rc == 0)
			err_set(err, EPERM, "remove %s inside a user namespace failed", path);
		rc = -1;
	}
out:
	close(ready[0]);
	if (go[1] >= 0)
		close(go[1]);
	return rc;
}
