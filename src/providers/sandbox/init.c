/* pid 1 of every environment (at --isolation chroot, a child subreaper in the
 * host's pid namespace, which kills its descendants itself where a pid
 * namespace would have taken them): rollout's own code. It serves exec
 * requests on ctl.sock (forking the command with the requested identity, no
 * new privileges and the seccomp filter), kills an exec with everything it
 * started on request, reaps orphans, and exits — taking the whole environment
 * with it — when its owner goes away, unless the environment was kept.
 * It is a clone of a possibly multithreaded process, so it never allocates
 * through libc: buffers come from mmap, everything else is system calls. */
#include "providers/sandbox/sandbox.h"
#include "providers/sandbox/security.h"
#include "providers/sandbox/sys.h"
#include "rollout/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- Messages ---- */

ssize_t ctl_send(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	struct iovec iov = {(void *)buf, len};
	union {
		char b[CMSG_SPACE(sizeof(int) * CTL_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t r;

	if (nfds > 0) {
		struct cmsghdr *c;

		if (nfds > CTL_MAX_FDS) {
			errno = EINVAL;
			return -1;
		}
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	do
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r;
}

ssize_t ctl_recv(int sock, void *buf, size_t len, int *fds, int *nfds)
{
	struct iovec iov = {buf, len};
	union {
		char b[CMSG_SPACE(sizeof(int) * CTL_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
	int want = nfds ? *nfds : 0, got = 0;
	ssize_t r;

	do
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r >= 0) {
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			int n, *p;

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			p = (int *)CMSG_DATA(c);
			for (int i = 0; i < n; i++) {
				int fd;

				memcpy(&fd, p + i, sizeof(int));
				if (got < want)
					fds[got++] = fd;
				else
					close(fd);
			}
		}
		if (r > 0 && (mh.msg_flags & MSG_TRUNC)) {
			errno = EMSGSIZE;
			for (int i = 0; i < got; i++)
				close(fds[i]);
			got = 0;
			r = -1;
		}
	}
	if (nfds)
		*nfds = got;
	return r;
}

/* ---- Exec slots ---- */

#define MAX_SLOTS 128

enum slot_state { SLOT_FREE, SLOT_IDLE, SLOT_RECV, SLOT_RUN };

struct slot {
	enum slot_state state;
	int conn;
	struct ctl_exec hdr;
	int fds[CTL_MAX_FDS];
	int nfds;
	char *buf;
	size_t cap;
	size_t len;
	pid_t pid;
};

static struct slot slots[MAX_SLOTS];
static const struct sandbox_plan *plan;

static void slot_close_fds(struct slot *s)
{
	for (int i = 0; i < s->nfds; i++)
		if (s->fds[i] >= 0)
			close(s->fds[i]);
	s->nfds = 0;
}

static void slot_release(struct slot *s)
{
	slot_close_fds(s);
	if (s->buf)
		munmap(s->buf, s->cap);
	if (s->conn >= 0)
		close(s->conn);
	memset(s, 0, sizeof(*s));
	s->conn = -1;
	s->state = SLOT_FREE;
}

static void send_msg(int conn, uint32_t type, int32_t value, const char *text)
{
	struct ctl_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.value = value;
	if (text)
		snprintf(m.text, sizeof(m.text), "%s", text);
	if (conn >= 0)
		ctl_send(conn, &m, sizeof(m), NULL, 0);
}

static int slot_fd(const struct slot *s, int32_t idx)
{
	return idx >= 0 && idx < s->nfds ? s->fds[idx] : -1;
}

/* ---- Killing an exec and everything it started ---- */

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int read_pids(int fd, pid_t *out, int max)
{
	static char text[65536];
	ssize_t r;
	int n = 0;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return -1;
	r = read(fd, text, sizeof(text) - 1);
	if (r < 0)
		return -1;
	text[r] = '\0';
	for (char *p = text; *p && n < max;) {
		long v = 0;

		while (*p && (*p < '0' || *p > '9'))
			p++;
		if (!*p)
			break;
		while (*p >= '0' && *p <= '9')
			v = v * 10 + (*p++ - '0');
		if (v > 0)
			out[n++] = (pid_t)v;
	}
	return n;
}

/* Freeze (so nothing forks while we look), kill what is listed, thaw; again
 * until the cgroup is empty. */
static void kill_frozen(int freeze, int procs, bool v1)
{
	static pid_t pids[16384];

	for (int round = 0; round < 500; round++) {
		int n;

		if (freeze >= 0)
			(void)!write(freeze, v1 ? "FROZEN" : "1", v1 ? 6 : 1);
		n = read_pids(procs, pids, 16384);
		for (int i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		if (freeze >= 0)
			(void)!write(freeze, v1 ? "THAWED" : "0", v1 ? 6 : 1);
		if (n <= 0)
			return;
		sleep_ms(1);
	}
}

/* Without cgroups: the shim is a subreaper, so everything the command started
 * stays below it. Stop the shim (it cannot exit, so nothing is reparented away),
 * kill its descendants until none are left, then the shim. */
struct proc_link {
	pid_t pid, ppid;
	char state;
};
static struct proc_link procs_buf[32768];

static int proc_by_pid(const void *a, const void *b)
{
	const struct proc_link *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Every process /proc lists, sorted by pid. At --isolation chroot that is the
 * host's /proc, opened before the chroot: the environment's processes are
 * some of many. */
static int scan_procs(void)
{
	static char dbuf[8192];
	int dfd = plan->proc_fd >= 0
	              ? openat(plan->proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
	              : open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC),
	    n = 0;
	long r;

	if (dfd < 0)
		return 0;
	while ((r = syscall(SYS_getdents64, dfd, dbuf, sizeof(dbuf))) > 0) {
		for (long off = 0; off < r;) {
			struct dirent64 {
				unsigned long long d_ino;
				long long d_off;
				unsigned short d_reclen;
				unsigned char d_type;
				char d_name[];
			} *de = (void *)(dbuf + off);
			char path[64], st[512];
			long pid = 0;
			int f;
			ssize_t len;

			off += de->d_reclen;
			for (const char *c = de->d_name; *c; c++) {
				if (*c < '0' || *c > '9') {
					pid = 0;
					break;
				}
				pid = pid * 10 + (*c - '0');
			}
			if (pid <= 1 || n >= (int)(sizeof(procs_buf) / sizeof(procs_buf[0])))
				continue;
			snprintf(path, sizeof(path), "%ld/stat", pid);
			f = openat(dfd, path, O_RDONLY | O_CLOEXEC);
			if (f < 0)
				continue;
			len = read(f, st, sizeof(st) - 1);
			close(f);
			if (len <= 0)
				continue;
			st[len] = '\0';
			char *rp = strrchr(st, ')');

			if (!rp || rp[1] != ' ' || !rp[2])
				continue;
			procs_buf[n].pid = (pid_t)pid;
			procs_buf[n].state = rp[2];
			procs_buf[n].ppid = (pid_t)strtol(rp + 4, NULL, 10);
			n++;
		}
	}
	close(dfd);
	qsort(procs_buf, (size_t)n, sizeof(procs_buf[0]), proc_by_pid);
	return n;
}

static bool descends_from(int n, pid_t pid, pid_t ancestor)
{
	for (int depth = 0; depth < 4096 && pid > 1; depth++) {
		struct proc_link key = {.pid = pid};
		const struct proc_link *p =
		    bsearch(&key, procs_buf, (size_t)n, sizeof(procs_buf[0]), proc_by_pid);

		if (!p)
			return false;
		if (p->ppid == ancestor)
			return true;
		pid = p->ppid;
	}
	return false;
}

static double mono_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void reap(void);

/* --isolation chroot's kill-all: the environment's processes are the
 * descendants of the init, a subreaper, so none can leave the tree (an
 * orphan comes back to it); round after round until none is alive. Returns
 * how many were killed. */
static int kill_descendants(double budget_sec)
{
	static pid_t seen[16384];
	size_t n_seen = 0;
	pid_t self = getpid();
	double end = mono_sec() + budget_sec;

	for (;;) {
		int n = scan_procs(), alive = 0;

		for (int i = 0; i < n; i++) {
			pid_t pid = procs_buf[i].pid;
			bool known = false;

			if (procs_buf[i].state == 'Z' || !descends_from(n, pid, self))
				continue;
			kill(pid, SIGKILL);
			alive++;
			for (size_t j = 0; j < n_seen && !known; j++)
				known = seen[j] == pid;
			if (!known && n_seen < sizeof(seen) / sizeof(seen[0]))
				seen[n_seen++] = pid;
		}
		reap();
		if (!alive || mono_sec() > end)
			break;
		sleep_ms(1);
	}
	return (int)n_seen;
}

static void kill_tree(pid_t shim)
{
	kill(shim, SIGSTOP);
	for (int round = 0; round < 200; round++) {
		int n = scan_procs(), alive = 0;

		for (int i = 0; i < n; i++)
			if (procs_buf[i].state != 'Z' && descends_from(n, procs_buf[i].pid, shim)) {
				kill(procs_buf[i].pid, SIGKILL);
				alive++;
			}
		if (!alive)
			break;
		sleep_ms(1);
	}
	kill(shim, SIGKILL);
}

static void slot_kill(struct slot *s)
{
	int k = slot_fd(s, s->hdr.fd_kill), fr = slot_fd(s, s->hdr.fd_freeze);
	int pr = slot_fd(s, s->hdr.fd_procs_r);

	if (s->state != SLOT_RUN)
		return;
	if (k >= 0 && write(k, "1", 1) == 1)
		return;
	if (pr >= 0) {
		kill_frozen(fr, pr, s->hdr.freeze_v1);
		return;
	}
	if (plan->shim) {
		kill_tree(s->pid);
		return;
	}
	kill(-s->pid, SIGKILL);
	kill(s->pid, SIGKILL);
}

/* ---- The exec'd command ---- */

static void child_die(int code, const char *what, int e)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "rollout: %s: %s\n", what, strerror(e));

	if (n > 0)
		(void)!write(2, msg, (size_t)(n < (int)sizeof(msg) ? n : (int)sizeof(msg) - 1));
	_exit(code);
}

static const char *env_get(char *const *envp, const char *key)
{
	size_t kl = strlen(key);

	for (; *envp; envp++)
		if (strncmp(*envp, key, kl) == 0 && (*envp)[kl] == '=')
			return *envp + kl + 1;
	return NULL;
}

/* execvpe over the container's PATH: 127 when not found, 126 when not runnable. */
static void exec_search(char *const *argv, char *const *envp)
{
	const char *file = argv[0], *path, *p;
	char buf[4096];
	int last = ENOENT;
	bool eacces = false;

	if (!file || !*file)
		child_die(127, "exec: empty command", ENOENT);
	if (strchr(file, '/')) {
		execve(file, argv, envp);
		last = errno;
		snprintf(buf, sizeof(buf), "exec %s", file);
		child_die(last == ENOENT || last == ENOTDIR ? 127 : 126, buf, last);
	}
	path = env_get(envp, "PATH");
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (p = path;; p++) {
		const char *e = strchrnul(p, ':');
		size_t dl = (size_t)(e - p);

		if (dl + strlen(file) + 2 < sizeof(buf)) {
			if (dl) {
				memcpy(buf, p, dl);
				buf[dl] = '/';
				strcpy(buf + dl + 1, file);
			} else {
				strcpy(buf, file);
			}
			execve(buf, argv, envp);
			if (errno == EACCES)
				eacces = true;
			else if (errno != ENOENT && errno != ENOTDIR)
				last = errno;
		}
		if (!*e)
			break;
		p = e;
	}
	if (eacces && last == ENOENT)
		last = EACCES;
	snprintf(buf, sizeof(buf), "exec %s", file);
	child_die(last == ENOENT ? 127 : 126, buf, last);
}

/* The init changed no signal disposition, only blocked SIGCHLD. */
static void reset_signals(void)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Runs as the shim when there are no cgroups: a subreaper that outlives nothing
 * but its command, so a kill can find every process the command started. */
static pid_t shim_fork(void)
{
	pid_t c;
	int st;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	c = sys_clone(0, NULL);
	if (c <= 0)
		return c;
	close(0);
	close(1);
	close(2);
	for (;;) {
		pid_t w = waitpid(-1, &st, 0);

		if (w == c)
			break;
		if (w < 0 && errno != EINTR)
			_exit(127);
	}
	if (WIFSIGNALED(st))
		_exit(128 + WTERMSIG(st));
	_exit(WEXITSTATUS(st));
}

/* --isolation chroot without cgroups: memory and pids as limits of each
 * process (prlimit on ourselves: libc's setrlimit synchronizes threads, which
 * a vfork-style child must not). */
static void set_rlimits(void)
{
	struct rlimit data = {plan->rlimit_data, plan->rlimit_data};
	struct rlimit nproc = {plan->rlimit_nproc, plan->rlimit_nproc};

	if (plan->rlimit_data)
		syscall(SYS_prlimit64, 0, RLIMIT_DATA, &data, NULL);
	if (plan->rlimit_nproc)
		syscall(SYS_prlimit64, 0, RLIMIT_NPROC, &nproc, NULL);
}

static void exec_child(struct slot *s, char **argv, char **envp, const char *cwd,
                       const gid_t *groups)
{
	const struct ctl_exec *h = &s->hdr;
	int procs = slot_fd(s, h->fd_procs_w), r;
	char what[600];

	reset_signals();
	if (procs >= 0 && write(procs, "0", 1) != 1)
		child_die(126, "join the exec cgroup", errno);
	/* The init is exempt from the OOM killer; its commands are not. */
	{
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

		if (fd >= 0) {
			(void)!write(fd, "0", 1);
			close(fd);
		}
	}
	setsid();
	if (dup2(s->fds[0], 0) < 0 || dup2(s->fds[1], 1) < 0 || dup2(s->fds[2], 2) < 0)
		_exit(126);
	sys_close_from(3);
	umask(022);
	set_rlimits();
	if (plan->shim) {
		pid_t c = shim_fork();

		if (c < 0)
			child_die(126, "fork", errno);
	}
	if (setgroups((size_t)h->ngroups, groups) < 0 && !(errno == EPERM && plan->userns))
		child_die(126, "setgroups", errno);
	if (setresgid(h->gid, h->gid, h->gid) < 0) {
		snprintf(what, sizeof(what), "set group %u", h->gid);
		child_die(126, what, errno);
	}
	if (setresuid(h->uid, h->uid, h->uid) < 0) {
		snprintf(what, sizeof(what), "set user %u", h->uid);
		child_die(126, what, errno);
	}
	if ((r = caps_apply_for_user(h->uid, plan->caps)) < 0)
		child_die(126, "capabilities", -r);
	if (chdir(cwd) < 0) {
		snprintf(what, sizeof(what), "cwd %s", cwd);
		child_die(126, what, errno);
	}
	/* no_new_privs and the seccomp filter are inherited from the init. */
	exec_search(argv, envp);
}

struct spawn_args {
	struct slot *s;
	char **argv, **envp;
	const char *cwd;
	const gid_t *groups;
};

static char spawn_stack[256 * 1024] __attribute__((aligned(64)));

static int spawn_entry(void *arg)
{
	struct spawn_args *a = arg;

	exec_child(a->s, a->argv, a->envp, a->cwd, a->groups);
	return 127;
}

/* Splits the payload into groups, cwd, argv and env (pointer arrays live after
 * the strings in the same mapping). */
static int slot_start(struct slot *s)
{
	const struct ctl_exec *h = &s->hdr;
	size_t glen = (size_t)h->ngroups * sizeof(uint32_t), off = glen;
	size_t nptr = (size_t)h->argc + h->envc + 2;
	char **ptrs, *cwd;
	gid_t groups[CTL_MAX_GROUPS];
	pid_t pid;

	if (h->ngroups > CTL_MAX_GROUPS || glen > s->len || h->argc == 0 || h->argc > 1u << 20 ||
	    h->envc > 1u << 20 || s->nfds < 3 || s->len + nptr * sizeof(char *) + 16 > s->cap)
		return -EINVAL;
	for (uint32_t i = 0; i < h->ngroups; i++) {
		uint32_t g;

		memcpy(&g, s->buf + i * sizeof(uint32_t), sizeof(g));
		groups[i] = g;
	}
	ptrs = (char **)(s->buf + ((s->len + 15) & ~(size_t)15));
	cwd = s->buf + off;
	for (size_t i = 0; i < 1 + h->argc + h->envc; i++) {
		char *str, *nul;

		if (off >= s->len)
			return -EINVAL;
		str = s->buf + off;
		nul = memchr(str, '\0', s->len - off);
		if (!nul)
			return -EINVAL;
		if (i == 0)
			cwd = str;
		else if (i <= h->argc)
			ptrs[i - 1] = str;
		else
			ptrs[h->argc + 1 + (i - 1 - h->argc)] = str;
		off = (size_t)(nul - s->buf) + 1;
	}
	ptrs[h->argc] = NULL;
	ptrs[h->argc + 1 + h->envc] = NULL;
	if (plan->shim) {
		/* The shim outlives the exec: a real fork. */
		pid = sys_clone(0, NULL);
		if (pid == 0)
			exec_child(s, ptrs, ptrs + h->argc + 1, cwd, groups);
	} else {
		struct spawn_args a = {s, ptrs, ptrs + h->argc + 1, cwd, groups};

		/* Like posix_spawn: the child borrows our memory until it execs (no
		 * page tables to copy), on its own stack; we wait meanwhile. */
		pid = clone(spawn_entry, spawn_stack + sizeof(spawn_stack),
		            CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
	}
	if (pid < 0)
		return -errno;
	s->pid = pid;
	s->state = SLOT_RUN;
	/* Only the command may hold the output pipes: the client waits for EOF.
	 * (SCM_RIGHTS gave every passed fd its own number.) */
	for (int i = 0; i < 3; i++) {
		close(s->fds[i]);
		s->fds[i] = -1;
	}
	if (slot_fd(s, h->fd_procs_w) >= 0) {
		close(s->fds[h->fd_procs_w]);
		s->fds[h->fd_procs_w] = -1;
	}
	return 0;
}

static void slot_fail(struct slot *s, int code, const char *what)
{
	char text[256];

	snprintf(text, sizeof(text), "%s: %s", what, strerror(code));
	send_msg(s->conn, CTL_ERROR, code, text);
	slot_release(s);
}

/* Starts the command once the whole payload is in. */
static void slot_maybe_start(struct slot *s)
{
	if (s->state == SLOT_RECV && s->len == s->hdr.payload_len) {
		int rc = slot_start(s);

		if (rc < 0)
			slot_fail(s, -rc, "start the command");
	}
}

static void on_conn(struct slot *s)
{
	static char msg[CTL_CHUNK + 64];
	int fds[CTL_MAX_FDS], nfds = CTL_MAX_FDS;
	ssize_t r = ctl_recv(s->conn, msg, sizeof(msg), fds, &nfds);
	uint32_t type;

	if (r <= 0) {
		/* The client went away: its command must not outlive it. */
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		close(s->conn);
		s->conn = -1;
		if (s->state == SLOT_RUN)
			slot_kill(s);
		else
			slot_release(s);
		return;
	}
	if ((size_t)r < sizeof(uint32_t)) {
		slot_release(s);
		return;
	}
	memcpy(&type, msg, sizeof(type));
	if (type != CTL_EXEC)
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
	switch (type) {
	case CTL_PING:
		send_msg(s->conn, CTL_PONG, (int32_t)getpid(), NULL);
		break;
	case CTL_ROOT: {
		int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		struct ctl_msg m = {.type = CTL_ROOTFD};

		if (root < 0) {
			send_msg(s->conn, CTL_ERROR, errno, "open /");
			break;
		}
		ctl_send(s->conn, &m, sizeof(m), &root, 1);
		close(root);
		break;
	}
	case CTL_EXEC: {
		size_t need;

		if (s->state != SLOT_IDLE || (size_t)r < sizeof(struct ctl_exec)) {
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			slot_fail(s, EPROTO, "exec request");
			return;
		}
		memcpy(&s->hdr, msg, sizeof(s->hdr));
		memcpy(s->fds, fds, sizeof(int) * (size_t)nfds);
		s->nfds = nfds;
		if (s->hdr.payload_len > CTL_MAX_PAYLOAD) {
			slot_fail(s, E2BIG, "exec request");
			return;
		}
		need = s->hdr.payload_len +
		       ((size_t)s->hdr.argc + s->hdr.envc + 2) * sizeof(char *) + 64;
		s->cap = (need + 4095) & ~(size_t)4095;
		s->buf =
		    mmap(NULL, s->cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (s->buf == MAP_FAILED) {
			s->buf = NULL;
			slot_fail(s, ENOMEM, "exec request");
			return;
		}
		s->len = 0;
		s->state = SLOT_RECV;
		slot_maybe_start(s);
		break;
	}
	case CTL_DATA: {
		size_t n = (size_t)r - sizeof(uint32_t);

		if (s->state != SLOT_RECV || s->len + n > s->hdr.payload_len) {
			slot_fail(s, EPROTO, "exec payload");
			return;
		}
		memcpy(s->buf + s->len, msg + sizeof(uint32_t), n);
		s->len += n;
		slot_maybe_start(s);
		break;
	}
	case CTL_KILL:
		slot_kill(s);
		break;
	case CTL_KILL_ALL: {
		/* A phase boundary: nothing the agent started may outlive it. */
		int n = plan->chroot ? kill_descendants(10.0) : proc_kill_all_but_init(10.0);

		reap();
		send_msg(s->conn, n < 0 ? CTL_ERROR : CTL_KILLED, n < 0 ? EIO : n,
		         n < 0 ? "kill all: /proc unreadable" : NULL);
		break;
	}
	default:
		slot_fail(s, EPROTO, "unknown request");
	}
}

static void reap(void)
{
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		for (int i = 0; i < MAX_SLOTS; i++)
			if (slots[i].state == SLOT_RUN && slots[i].pid == pid) {
				send_msg(slots[i].conn, CTL_EXIT, st, NULL);
				slot_release(&slots[i]);
				break;
			}
}

static void on_accept(int listen_fd)
{
	int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (c < 0)
		return;
	/* Only the owner's user (root of this environment) may drive it. */
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0) {
		close(c);
		return;
	}
	for (int i = 0; i < MAX_SLOTS; i++)
		if (slots[i].state == SLOT_FREE) {
			slots[i].state = SLOT_IDLE;
			slots[i].conn = c;
			return;
		}
	send_msg(c, CTL_ERROR, EAGAIN, "too many concurrent requests");
	close(c);
}

void init_run(const struct sandbox_plan *p)
{
	sigset_t mask;
	int sfd, sync_fd = p->sync_fd;
	bool kept = false;

	plan = p;
	for (int i = 0; i < MAX_SLOTS; i++) {
		slots[i].conn = -1;
		slots[i].state = SLOT_FREE;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		_exit(1);
	for (;;) {
		struct pollfd pf[3 + MAX_SLOTS];
		int idx[3 + MAX_SLOTS], n = 0;

		pf[n] = (struct pollfd){.fd = sfd, .events = POLLIN};
		idx[n++] = -1;
		pf[n] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
		idx[n++] = -2;
		if (sync_fd >= 0) {
			pf[n] = (struct pollfd){.fd = sync_fd, .events = POLLIN};
			idx[n++] = -3;
		}
		for (int i = 0; i < MAX_SLOTS; i++)
			if (slots[i].state != SLOT_FREE && slots[i].conn >= 0) {
				pf[n] = (struct pollfd){.fd = slots[i].conn, .events = POLLIN};
				idx[n++] = i;
			}
		if (poll(pf, (nfds_t)n, -1) < 0)
			continue;
		for (int k = 0; k < n; k++) {
			if (!pf[k].revents)
				continue;
			if (idx[k] == -1) {
				struct signalfd_siginfo si;

				while (read(sfd, &si, sizeof(si)) == sizeof(si))
					;
				reap();
			} else if (idx[k] == -2) {
				on_accept(p->listen_fd);
			} else if (idx[k] == -3) {
				struct ctl_msg m;
				ssize_t r = ctl_recv(sync_fd, &m, sizeof(m), NULL, NULL);

				if (r > 0 && m.type == SYNC_KEEP) {
					kept = true;
				} else if (r <= 0) {
					/* The owner is gone: the environment goes with it
					 * (the kernel kills every process of the pid namespace;
					 * at --isolation chroot there is none: we do). */
					if (!kept && plan->chroot)
						kill_descendants(10.0);
					if (!kept)
						_exit(0);
					close(sync_fd);
					sync_fd = -1;
				}
			} else if (slots[idx[k]].state != SLOT_FREE &&
			           slots[idx[k]].conn == pf[k].fd) {
				on_conn(&slots[idx[k]]);
			}
		}
	}
}
