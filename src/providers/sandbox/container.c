/* Starting an environment. The parent clones the init with every namespace at
 * once (the child execs rollout's own binary, which reads its plan from a memfd:
 * see plan.c), then prepares the host side (cgroups and their limits, ctl.sock,
 * the state file; as root also the overlay and the network namespace, on a
 * thread) while the child builds its filesystem; the cgroup fds and the listening
 * socket reach the child over a SOCK_SEQPACKET sync socket, which also carries
 * (errno, message) back on failure. The child joins its cgroups, finishes its
 * mounts, pivots, drops to Docker's capabilities, loads the seccomp filter and
 * becomes the environment's init. That is full isolation; --isolation chroot
 * starts in chroot.c, sharing the clone, the plan, ctl.sock and the go-ahead. */
#include "providers/sandbox/sandbox.h"
#include "providers/sandbox/security.h"
#include "providers/sandbox/sys.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"
#include "rollout/proc.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define START_TIMEOUT_MS 30000

/* ---- Child ---- */

void child_report(int sync_fd, const struct child_err *e)
{
	struct ctl_msg m;

	memset(&m, 0, sizeof(m));
	m.type = SYNC_ERROR;
	m.value = e->code;
	snprintf(m.text, sizeof(m.text), "%s", e->msg);
	ctl_send(sync_fd, &m, sizeof(m), NULL, 0);
	_exit(1);
}

void sandbox_stdio_to_null(void)
{
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (nul < 0)
		return;
	dup2(nul, 0);
	dup2(nul, 1);
	dup2(nul, 2);
	if (nul > 2)
		close(nul);
}

/* Commands get as many open files as the hard limit allows (Docker: 1048576). */
void sandbox_raise_nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > 1048576 ? 1048576 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The parent's go-ahead: the listening ctl.sock plus one cgroup join fd per cgroup directory, then (value GO_NETNS)
 * the network namespace to enter. Returns that fd or -1. */
#define GO_NETNS 1

int child_wait_go(struct sandbox_plan *p)
{
	struct ctl_msg m;
	int fds[2 + CG_MAX], nfds = 2 + CG_MAX, netns = -1;

	if (ctl_recv(p->sync_fd, &m, sizeof(m), fds, &nfds) <= 0 || m.type != SYNC_GO || nfds < 1)
		_exit(1);
	if ((m.value & GO_NETNS) && nfds > 1)
		netns = fds[--nfds];
	p->listen_fd = fds[0];
	p->n_cg_procs = nfds - 1;
	for (int i = 1; i < nfds; i++)
		p->cg_procs[i - 1] = fds[i];
	return netns;
}

/* The overlay the owner made (SYNC_ROOTFS), or -1: make it here. */
static int child_wait_rootfs(const struct sandbox_plan *p)
{
	struct ctl_msg m;
	int fd = -1, nfds = 1;

	if (ctl_recv(p->sync_fd, &m, sizeof(m), &fd, &nfds) <= 0 || m.type != SYNC_ROOTFS)
		_exit(1);
	return nfds == 1 ? fd : -1;
}

/* Into the namespace the owner made, or a new one if it could not. Returns
 * whether lo still has to be brought up. */
static bool child_enter_netns(int netns, struct child_err *e, int sync_fd)
{
	if (netns >= 0) {
		if (setns(netns, CLONE_NEWNET) < 0) {
			child_fail(e, errno, "enter the network namespace");
			child_report(sync_fd, e);
		}
		close(netns);
		return false;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		child_fail(e, errno, "unshare the network namespace");
		child_report(sync_fd, e);
	}
	return true;
}

/* Errors after READY have nobody waiting for them: the init exits, and the
 * environment's next request fails. */
static void __attribute__((noreturn)) child_late_fail(void)
{
	_exit(1);
}

static void send_ready(const struct sandbox_plan *p)
{
	struct ctl_msg m;
	int fds[4] = {open("/", O_PATH | O_DIRECTORY | O_CLOEXEC),
	              open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC), -1, -1},
	    n = 2;

	memset(&m, 0, sizeof(m));
	m.type = SYNC_READY;
	m.value = (int32_t)getpid();
	/* pasta joins our namespaces through these (our /proc entries are closed to
	 * the owner once we are not dumpable). */
	if (p->send_ns_fds) {
		fds[n++] = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
		fds[n++] = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	}
	for (int i = 0; i < n; i++)
		if (fds[i] < 0)
			_exit(1);
	if (ctl_send(p->sync_fd, &m, sizeof(m), fds, n) < 0)
		_exit(1);
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

void container_child(const struct sandbox_plan *plan)
{
	struct sandbox_plan p = *plan;
	struct child_err e = {0};
	struct sigaction sa;
	sigset_t none;
	int rootfd = -1, rc, netns = -1;
	bool lo_pending = p.netns && !p.owner_netns;

	/* Nothing of the owner's may stay open here: not its stdio (a caller
	 * waiting for EOF would hang), not other environments' sockets. */
	sandbox_stdio_to_null();
	sys_close_all_but(&p.sync_fd, 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < 65; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	umask(0);

	/* Most of the filesystem is built while the parent makes the cgroups. In a
	 * user namespace our ids were mapped before the exec: we are its root. */
	if (mounts_setup_early(&p, p.owner_rootfs ? child_wait_rootfs(&p) : -1, &rootfd, &e) < 0)
		child_report(p.sync_fd, &e);
	netns = child_wait_go(&p);
	/* Before /sys is mounted: sysfs shows the network namespace of its mounter. */
	if (p.owner_netns)
		lo_pending = child_enter_netns(netns, &e, p.sync_fd);
	else if (netns >= 0)
		close(netns);
	for (int i = 0; i < p.n_cg_procs; i++) {
		if (write(p.cg_procs[i], "0", 1) != 1) {
			child_fail(&e, errno, "join cgroup");
			child_report(p.sync_fd, &e);
		}
		close(p.cg_procs[i]);
	}
	/* Now inside its cgroups: the container's cgroup namespace is rooted there. */
	if (p.cg_mode != CG_NONE && unshare(CLONE_NEWCGROUP) < 0) {
		child_fail(&e, errno, "unshare the cgroup namespace");
		child_report(p.sync_fd, &e);
	}
	/* /sys (which shows the network namespace of its mounter), the cgroup view,
	 * pivot_root. */
	if (mounts_setup_late(&p, rootfd, &e) < 0)
		child_report(p.sync_fd, &e);
	/* The owner can go on (its first request waits in ctl.sock's backlog)
	 * while we finish: no process of the environment exists before the loop. */
	send_ready(&p);
	if (mounts_protect(&e) < 0 || sethostname(p.hostname, strlen(p.hostname)) < 0)
		child_late_fail();
	if (lo_pending && net_loopback_up() < 0)
		child_late_fail();
	/* The OOM killer must pick the culprit, never the init (commands go back
	 * to 0). Lowering needs CAP_SYS_RESOURCE: as root only. */
	{
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

		if (fd >= 0) {
			(void)!write(fd, "-1000", 5);
			close(fd);
		}
	}
	sandbox_raise_nofile_limit();
	/* The init runs rollout's binary: its /proc entries (exe, mem, fds) must
	 * be out of reach of the container's processes. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if ((rc = caps_limit_to(p.caps)) < 0)
		child_late_fail();
	/* The init itself runs under the filter from here on and every command
	 * inherits it through fork: it is loaded once per environment. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_late_fail();
	if (p.seccomp && sandbox_seccomp_load(p.seccomp) < 0)
		child_late_fail();
	umask(022);
	sandbox_stdio_to_null();
	init_run(&p);
}

/* ---- The init's entry: rollout exec'd in the new namespaces ---- */

#define INIT_ENV "ROLLOUT_SANDBOX_INIT"
#define INIT_SYNC_FD 3
#define INIT_PLAN_FD 4

/* The marker's value for an init at --isolation chroot, which has no pid
 * namespace of its own (chroot.c). */
#define INIT_CHROOT "chroot"

/* The sandbox's entry (ops.entry), run before main() by the constructor of
 * providers/providers.c in every program that can start an environment
 * (rollout, the tests, the benchmarks): when this process is the init of an
 * environment being started (pid 1 of a new pid namespace, or at --isolation
 * chroot any pid, exec'd by init_exec below with the marker in an otherwise
 * empty environment) it reads the plan and never returns. */
void sandbox_init_entry(void)
{
	static struct sock_fprog prog;
	const char *marker = getenv(INIT_ENV);
	struct sandbox_plan p;
	struct child_err e = {0};
	const char **lowers;
	struct stat st;
	bool chroot_init;
	char *buf;
	int rc;

	if (!marker)
		return;
	chroot_init = strcmp(marker, INIT_CHROOT) == 0;
	if (getpid() != 1 && !chroot_init)
		return;
	prctl(PR_SET_NAME, "rollout-init", 0, 0, 0);
	unsetenv(INIT_ENV);
	if (fstat(INIT_PLAN_FD, &st) < 0 || st.st_size <= 0 || st.st_size > (64 << 20))
		_exit(127);
	buf = malloc((size_t)st.st_size);
	lowers = calloc(PLAN_MAX_LOWERS, sizeof(*lowers));
	if (!buf || !lowers || pread(INIT_PLAN_FD, buf, (size_t)st.st_size, 0) != st.st_size)
		_exit(127);
	rc = plan_decode(buf, (size_t)st.st_size, &p, lowers, PLAN_MAX_LOWERS, &prog);
	close(INIT_PLAN_FD);
	p.sync_fd = INIT_SYNC_FD;
	if (rc == 0 && p.chroot != chroot_init)
		rc = -EINVAL;
	if (rc < 0) {
		child_fail(&e, -rc, "the environment's init could not read its plan");
		child_report(INIT_SYNC_FD, &e);
	}
	if (chroot_init)
		chroot_child(&p);
	container_child(&p);
}

struct init_exec_args {
	int sync_fd, plan_fd;
	bool wait_mapped, chroot;
};

/* The clone's child, on a stack of the owner's frame, sharing its memory until
 * the exec (CLONE_VM | CLONE_VFORK: the owner waits meanwhile, and no page is
 * copied). Only fd moves and the exec happen here. In a user namespace the
 * exec must wait until the owner has mapped our ids (SYNC_MAPPED): exec'd as an
 * unmapped user we would lose our capabilities in the namespace, so that child
 * is a plain copy that can wait. */
static int init_exec(void *arg)
{
	const struct init_exec_args *a = arg;
	char *argv[] = {"rollout-init", NULL};
	char *envp[] = {a->chroot ? INIT_ENV "=" INIT_CHROOT : INIT_ENV "=1", NULL};
	int s = fcntl(a->sync_fd, F_DUPFD_CLOEXEC, 10), pl = fcntl(a->plan_fd, F_DUPFD_CLOEXEC, 10);
	struct child_err e = {0};
	struct ctl_msg m;

	if (a->wait_mapped &&
	    (ctl_recv(a->sync_fd, &m, sizeof(m), NULL, NULL) <= 0 || m.type != SYNC_MAPPED))
		_exit(127);
	if (s < 0 || pl < 0 || dup2(s, INIT_SYNC_FD) < 0 || dup2(pl, INIT_PLAN_FD) < 0)
		_exit(127);
	sys_close_from(INIT_PLAN_FD + 1);
	execve(provider_entry_binary(), argv, envp);
	child_fail(&e, errno, "exec the environment's init (/proc/self/exe)");
	child_report(INIT_SYNC_FD, &e);
}

/* The plan in a sealed-off memfd for the init. */
static int plan_memfd(const struct sandbox_plan *plan, struct err *err)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	int fd = memfd_create("rollout-plan", MFD_CLOEXEC);

	if (fd < 0)
		return err_sys(err, "memfd_create");
	plan_encode(plan, &sb);
	if (write_all(fd, sb.buf, sb.len) < 0) {
		err_sys(err, "write the environment's plan");
		close(fd);
		return -1;
	}
	return fd;
}

/* Clones the init with the plan's namespaces and execs it. */
pid_t sandbox_clone_init(const struct sandbox_plan *plan, int child_sync, int *pidfd,
                         struct err *err)
{
	char stack[32768] __attribute__((aligned(16)));
	struct init_exec_args a = {
	    .sync_fd = child_sync, .wait_mapped = plan->userns, .chroot = plan->chroot};
	sigset_t all, old;
	pid_t pid;

	a.plan_fd = plan_memfd(plan, err);
	if (a.plan_fd < 0)
		return -1;
	/* Not util/proc: the init is cloned into new namespaces (clone flags, a
	 * pidfd, CLONE_VM|CLONE_VFORK on a borrowed stack), synchronises over a
	 * socket and outlives this call as the environment's pid 1; its kill and
	 * reap belong to the environment's teardown, not to a wait with a deadline.
	 * No handler of ours may run on the child's borrowed stack. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (a.wait_mapped) {
		pid = sys_clone(plan->clone_flags, pidfd);
		if (pid == 0)
			_exit(init_exec(&a));
	} else {
		pid = clone(init_exec, stack + sizeof(stack),
		            (int)(plan->clone_flags | CLONE_VM | CLONE_VFORK | SIGCHLD), &a, pidfd);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		err_sys(err, "clone the environment's init");
	close(a.plan_fd);
	return pid;
}

/* ---- Parent ---- */

static const char *lower_name_for_opts(const char *s)
{
	/* mount(2) options are comma separated and lowerdir is colon separated. */
	return strpbrk(s, ",:\\") ? NULL : s;
}

static char *overlay_option_string(const char *const *lowers, size_t n, const char *upper,
                                   const char *work, bool userxattr, bool whole_files)
{
	struct strbuf sb = STRBUF_INIT;

	sb_adds(&sb, "lowerdir=");
	for (size_t i = 0; i < n; i++) {
		if (!lower_name_for_opts(lowers[i])) {
			sb_release(&sb);
			return NULL;
		}
		if (i)
			sb_addc(&sb, ':');
		sb_adds(&sb, lowers[i]);
	}
	sb_addf(&sb, ",upperdir=%s,workdir=%s,volatile%s%s", upper, work,
	        userxattr ? ",userxattr" : "",
	        whole_files && !userxattr ? ",redirect_dir=off,metacopy=off" : "");
	if (sb.len >= 4000) {
		sb_release(&sb);
		return NULL;
	}
	return sb_detach(&sb);
}

/* Shared by every environment of a home, created once: the skeleton (the top
 * lower layer: mount points and empty /etc files, so nothing is created on disk
 * per environment), the directory the overlay is mounted on and the one the
 * per-environment tmpfs with /etc/hosts, resolv.conf and hostname is mounted on
 * (both only ever used inside an environment's private mount namespace). */
#define SKEL_NAME "skel.1"

static int ensure_shared(const char *shared, struct err *err)
{
	static const char *const dirs[] = {"proc", "sys",        "dev",           "etc",
	                                   "logs", "logs/agent", "logs/verifier", "logs/artifacts"};
	static const char *const files[] = {"etc/hosts", "etc/resolv.conf", "etc/hostname"};
	_cleanup_free_ char *skel = path_join(shared, SKEL_NAME);
	_cleanup_free_ char *root = path_join(shared, "root");
	_cleanup_free_ char *etc = path_join(shared, "etc");
	_cleanup_free_ char *tmp = NULL;

	if (path_is_dir(skel) && path_is_dir(root) && path_is_dir(etc))
		return 0;
	if (mkdir_p(root, 0755, err) < 0 || mkdir_p(etc, 0755, err) < 0)
		return -1;
	if (path_is_dir(skel))
		return 0;
	/* Built aside and renamed into place: concurrent starts race harmlessly. */
	tmp = xasprintf("%s.tmp.%d", skel, (int)getpid());
	rm_rf(tmp, NULL);
	if (mkdir(tmp, 0755) < 0)
		return err_sys(err, "mkdir %s", tmp);
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		_cleanup_free_ char *d = path_join(tmp, dirs[i]);

		if (mkdir(d, 0755) < 0)
			return err_sys(err, "mkdir %s", d);
	}
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *f = path_join(tmp, files[i]);

		if (write_file(f, "", 0, 0644, err) < 0)
			return -1;
	}
	if (rename(tmp, skel) < 0) {
		int e = errno;

		rm_rf(tmp, NULL);
		if ((e == EEXIST || e == ENOTEMPTY) && path_is_dir(skel))
			return 0;
		errno = e;
		return err_sys(err, "rename %s", skel);
	}
	return 0;
}

static int prepare_dirs(const struct sandbox_env *env, struct err *err)
{
	_cleanup_free_ char *upper = path_join(env->dir, "upper");
	_cleanup_free_ char *work = path_join(env->dir, "work");

	if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0)
		return err_sys(err, "mkdir in %s", env->dir);
	return 0;
}

int sandbox_listen_ctl(const struct sandbox_env *env, struct err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return err_sys(err, "socket");
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/ctl.sock", env->dir) >=
	    (int)sizeof(sa.sun_path))
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/ctl.sock",
		         env->dir_fd);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		err_sys(err, "listen on %s/ctl.sock", env->dir);
		close(fd);
		return -1;
	}
	return fd;
}

/* Waits for the child's SYNC_READY or its error. fds: the root, the mount
 * namespace, then (when asked for, for pasta) its user and network namespaces. */
int sandbox_wait_ready(int sync_fd, int *fds, int want, struct err *err)
{
	struct pollfd pf = {.fd = sync_fd, .events = POLLIN};
	struct ctl_msg m;
	int nfds = want, r;
	ssize_t n;

	do
		r = poll(&pf, 1, START_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return err_set(err, ETIMEDOUT, "the environment's init did not start in time");
	n = ctl_recv(sync_fd, &m, sizeof(m), fds, &nfds);
	if (n <= 0)
		return err_set(err, EIO, "the environment's init died during setup");
	if (m.type == SYNC_ERROR) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return err_set(err, m.value ? m.value : EIO, "%.*s", (int)sizeof(m.text), m.text);
	}
	if (m.type != SYNC_READY || nfds != want) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return err_set(err, EPROTO, "unexpected message from the environment's init");
	}
	return 0;
}

char **strv_dup_or_empty(const char *const *v)
{
	struct strv sv = STRV_INIT;

	for (; v && *v; v++)
		strv_push(&sv, *v);
	return strv_array(&sv);
}

/* pasta gives the namespace copies of the host's addresses and routes. It joins
 * the init's user and network namespaces by pid, so it is for unprivileged
 * users (as root it drops to nobody first and cannot). */
/* Keeps the start of pasta's stderr, for the error message. */
static void keep_msg(void *ctx, int stream, const char *buf, size_t n)
{
	char *msg = ctx;
	size_t have = strlen(msg), room = 511 - have;

	memcpy(msg + have, buf, n < room ? n : room);
	msg[have + (n < room ? n : room)] = '\0';
}

static int start_pasta(pid_t init_pid, int userns, int netns, const char *pidfile, struct err *err)
{
	char pid[16], msg[512] = "";
	const char *argv[] = {"pasta",    "--config-net",    "--quiet", "--pid",           pidfile,
	                      "--userns", "/proc/self/fd/3", "--netns", "/proc/self/fd/4", NULL};
	int extra[] = {userns, netns};
	struct proc p = {
	    .argv = argv,
	    .no_stdin = true,
	    .no_stdout = true,
	    .err = -1,
	    .on_output = keep_msg,
	    .output_ctx = msg,
	    .extra_fds = extra,
	    .n_extra_fds = 2,
	};

	snprintf(pid, sizeof(pid), "%d", (int)init_pid);
	/* pasta daemonizes once the namespace is configured. Joined through fds it
	 * cannot see the namespace go away: the teardown stops it (--pid). Its
	 * stderr is read until it exits, not until the daemon lets go of it. */
	if (proc_run(&p, NULL) < 0 || p.signalled || p.exit_code != 0) {
		for (char *c = msg; *c; c++)
			if (*c == '\n')
				*c = ' ';
		return err_set(err, EIO, "pasta --config-net %s failed (status %d): %s", pid,
		               p.status, msg);
	}
	return 0;
}

static bool pasta_installed(void)
{
	const char *path = getenv("PATH"), *mode = getenv("ROLLOUT_SANDBOX_NETWORK");

	if (!mode || strcmp(mode, "pasta") != 0)
		return false; /* not asked for: not looked for */
	_cleanup_free_ char *copy = xstrdup(path ? path : "/usr/bin:/bin");

	for (char *save = NULL, *d = strtok_r(copy, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		_cleanup_free_ char *f = path_join(d, "pasta");

		if (access(f, X_OK) == 0)
			return true;
	}
	return false;
}

/* Undo a failed start. */
void sandbox_start_cleanup(struct sandbox_env *env, pid_t child, int pidfd)
{
	if (child > 0) {
		if (pidfd >= 0)
			sys_pidfd_send_signal(pidfd, SIGKILL);
		else
			kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	cg_env_destroy(&env->cg, NULL);
	quota_env_release(env);
	rm_rf(env->dir, NULL);
}

/* As root, the costliest pieces of a start are made on threads of the owner
 * while it clones the child and makes the cgroups, and the child builds /proc,
 * /dev and /etc. One thread makes the overlay (a detached mount, sent as soon
 * as it exists: the child mounts everything else on it) and, without internet,
 * the network namespace with lo up; if either fails there the child makes it
 * itself and reports the error. With internet (the NAT mode) the namespace and
 * its veth pair are made on a thread of their own, started before anything
 * else, since they cost the most; that one has no fallback: the start fails.
 * The namespace goes to the child with GO; it enters it before mounting /sys. */
struct host_prep {
	const struct sandbox_plan *plan;
	int sync_fd; /* the owner's end */
	bool want_netns;
	int netns; /* result: fd or -1 */
	bool running;
	pthread_t thread;
};

static void *host_prep_run(void *arg)
{
	struct host_prep *h = arg;
	struct ctl_msg m = {.type = SYNC_ROOTFS};
	struct child_err e;
	int mnt = overlay_fsmount(h->plan, &e);

	ctl_send(h->sync_fd, &m, sizeof(m), &mnt, mnt >= 0);
	if (mnt >= 0)
		close(mnt);
	if (h->want_netns) {
		int fd = net_new_namespace();

		h->netns = fd >= 0 ? fd : -1;
	}
	return NULL;
}

/* owner_netns: the NAT thread provides the namespace (the clone must not). */
static void host_prep_start(struct host_prep *h, struct sandbox_plan *plan, bool owner_netns,
                            int sync_fd)
{
	*h = (struct host_prep){.plan = plan, .sync_fd = sync_fd, .netns = -1};
	plan->owner_netns = owner_netns;
	if (plan->userns)
		return; /* the overlay and the namespace belong to the user namespace */
	h->want_netns = plan->netns && !owner_netns;
	h->running = pthread_create(&h->thread, NULL, host_prep_run, h) == 0;
	plan->owner_rootfs = h->running;
	plan->owner_netns |= h->running && h->want_netns;
	if (plan->owner_netns)
		plan->clone_flags &= ~(unsigned long)CLONE_NEWNET;
}

/* Waits for the thread; returns the namespace fd (the caller closes it) or -1. */
static int host_prep_join(struct host_prep *h)
{
	int fd;

	if (h->running) {
		pthread_join(h->thread, NULL);
		h->running = false;
	}
	fd = h->netns;
	h->netns = -1;
	return fd;
}

struct nat_prep {
	bool wanted, running;
	int netns;
	struct net_link link;
	struct err err;
	pthread_t thread;
};

static void *nat_prep_run(void *arg)
{
	struct nat_prep *n = arg;

	n->netns = net_new_nat_namespace(&n->link, &n->err);
	return NULL;
}

static void nat_prep_start(struct nat_prep *n, enum net_mode mode)
{
	*n = (struct nat_prep){.netns = -1, .wanted = mode == NET_NAT};
	if (!n->wanted)
		return;
	n->running = pthread_create(&n->thread, NULL, nat_prep_run, n) == 0;
	if (!n->running)
		err_set(&n->err, EAGAIN, "no thread to make the network namespace on");
}

static int nat_prep_join(struct nat_prep *n)
{
	int fd;

	if (n->running) {
		pthread_join(n->thread, NULL);
		n->running = false;
	}
	fd = n->netns;
	n->netns = -1;
	return fd;
}

/* Scope cleanup: a start that fails waits for the thread and drops what it made. */
static void nat_prep_cleanup(struct nat_prep *n)
{
	int fd = nat_prep_join(n);

	if (fd >= 0)
		close(fd);
}

/* The NAT mode's namespace into *netns, or the error saying why there is none. */
static int nat_prep_finish(struct sandbox_env *env, struct nat_prep *n, int *netns, struct err *err)
{
	if (!n->wanted)
		return 0;
	*netns = nat_prep_join(n);
	if (*netns < 0) {
		*err = n->err;
		return err_wrap(err,
		                "environment %s: allow_internet needs a network namespace of its "
		                "own with a veth pair and NAT (ROLLOUT_SANDBOX_NETWORK=host shares "
		                "the host's network instead, without any isolation)",
		                env->name);
	}
	env->net_link = n->link;
	return 0;
}

/* Host side after clone (and the id maps): cgroups, ctl.sock, then the go-ahead. */
static int parent_go(struct sandbox_env *env, const struct sandbox_plan *plan,
                     const struct cg_limits *lim, struct host_prep *prep, struct nat_prep *nat,
                     struct err *err)
{
	_cleanup_free_ char *leaf = xasprintf("rollout.%s", env->name);
	struct ctl_msg go = {.type = SYNC_GO};
	int fds[2 + CG_MAX], nfds = 0, rc = -1, netns;

	if (cg_env_create(leaf, lim, &env->cg, err) < 0)
		return -1;
	env->shim = env->cg.mode == CG_NONE;
	fds[nfds] = sandbox_listen_ctl(env, err);
	if (fds[nfds] < 0)
		return -1;
	nfds++;
	if (cg_env_open_procs(&env->cg, fds + nfds, err) < 0)
		goto out;
	nfds += env->cg.n;
	netns = host_prep_join(prep);
	if (nat_prep_finish(env, nat, &netns, err) < 0)
		goto out;
	if (netns >= 0) {
		go.value |= GO_NETNS;
		fds[nfds++] = netns;
	}
	if (ctl_send(env->sync_fd, &go, sizeof(go), fds, nfds) < 0) {
		err_sys(err, "environment %s: release the init", env->name);
		goto out;
	}
	sandbox_env_prepare_exec_cgroup(env);
	rc = 0;
out:
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	return rc;
}

struct sandbox_env *sandbox_env_new(const struct env_config *cfg, const struct sandbox_image *img,
                                    const char *envs)
{
	struct sandbox_env *env = xcalloc(1, sizeof(*env));

	env->name = xstrdup(cfg->env_name);
	env->dir = path_join(envs, cfg->env_name);
	env->dir_fd = env->pidfd = env->sync_fd = env->root_fd = env->mntns_fd = -1;
	env->owner = true;
	env->isolation = img->isolation;
	env->job_name = xstrdup(cfg->job_name ? cfg->job_name : "");
	env->image_ref = xstrdup(img->ref ? img->ref : "");
	env->image_id = img->id ? xstrdup(img->id) : NULL;
	env->image_env = strv_dup_or_empty(img->env);
	env->image_workdir = xstrdup(img->workdir && *img->workdir ? img->workdir : "/");
	env->image_user = xstrdup(img->user ? img->user : "");
	env->cfg_env = strv_dup_or_empty(cfg->env);
	env->cfg_workdir = cfg->workdir ? xstrdup(cfg->workdir) : NULL;
	env->created_at = wall_now();
	env->cg.mem_idx = -1;
	return env;
}

int sandbox_env_dir_create(struct sandbox_env *env, struct err *err)
{
	if (mkdir(env->dir, 0700) < 0)
		return err_sys(err, "environment %s: mkdir %s", env->name, env->dir);
	env->dir_fd = open(env->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (env->dir_fd < 0 || flock(env->dir_fd, LOCK_EX | LOCK_NB) < 0) {
		err_sys(err, "lock %s", env->dir);
		rm_rf(env->dir, NULL);
		return -1;
	}
	return 0;
}

int sandbox_start_layers(const struct env_config *cfg, const struct sandbox_image *img,
                         struct sandbox_env **out, struct err *err)
{
	_cleanup_free_ char *home = NULL, *envs = NULL, *shared = NULL, *opts = NULL;
	_cleanup_free_ char *upper = NULL, *work = NULL, *rootfs = NULL, *scratch = NULL;
	_cleanup_free_ char *skel = NULL, *hosts = NULL, *resolv = NULL, *hostname_file = NULL;
	_cleanup_free_ const char **lowers = NULL;
	struct sandbox_env *env;
	struct sandbox_plan plan = {0};
	struct host_prep prep = {.netns = -1};
	__attribute__((cleanup(nat_prep_cleanup))) struct nat_prep nat = {.netns = -1};
	struct cg_limits lim = {0};
	const struct sock_fprog *prog;
	const struct cg_host *cgh = cg_host_get();
	char hostname[64];
	int sync[2] = {-1, -1}, pidfd = -1, ready_fds[4];
	pid_t child;
	enum net_mode net;
	bool pasta, devpts_gid = false;

	if (img->isolation == SANDBOX_CHROOT)
		return chroot_start_layers(cfg, img, out, err);
	if (sandbox_check_name(cfg->env_name, err) < 0)
		return -1;
	if (img->n_layers == 0)
		return err_set(err, EINVAL, "image %s has no layers", img->ref ? img->ref : "?");
	if (sandbox_seccomp_prog(&prog, err) < 0)
		return -1;
	if (cgh->mode == CG_NONE)
		log_warn_once("sandbox-cgroups",
		              "sandbox: running without cpu/memory/pids limits: %s", cgh->why_none);
	if (net_choose(cfg->allow_internet, geteuid() == 0, pasta_installed(), &net, err) < 0)
		return -1;
	pasta = net == NET_PASTA;
	/* First: it takes the longest, and needs nothing of what follows. */
	nat_prep_start(&nat, net);
	home = sandbox_home();
	envs = path_join(home, "envs");
	shared = path_join(home, "sandbox");
	if (mkdir_p(envs, 0700, err) < 0 || ensure_shared(shared, err) < 0)
		return -1;

	env = sandbox_env_new(cfg, img, envs);
	env->rootless = geteuid() != 0;
	if (env->rootless) {
		struct subid_range u, g;

		/* The image's other users (and gid 5, tty, for devpts) exist only with
		 * subordinate ranges. */
		env->subids = userns_subid_ranges(&u, &g);
		devpts_gid = env->subids && g.count >= 5;
	}
	env->network = xstrdup(net_mode_name(net));
	snprintf(hostname, sizeof(hostname), "%.63s", cfg->env_name);

	if (sandbox_env_dir_create(env, err) < 0) {
		sandbox_env_free(env);
		return -1;
	}
	/* Before anything is created in the directory: all of it inherits the
	 * project. A build step's layer (upper_dir) is not limited. */
	if (!img->upper_dir && quota_env_setup(env, cfg, err) < 0)
		goto fail;
	if (img->mark_in_use && img->mark_in_use(img->mark_ctx, env->name, err) < 0)
		goto fail;
	if (!img->upper_dir && prepare_dirs(env, err) < 0)
		goto fail;

	upper = img->upper_dir ? xstrdup(img->upper_dir) : path_join(env->dir, "upper");
	work = img->work_dir ? xstrdup(img->work_dir) : path_join(env->dir, "work");
	rootfs = path_join(shared, "root");
	scratch = path_join(shared, "etc");
	skel = path_join(shared, SKEL_NAME);
	lowers = xcalloc(img->n_layers + 1, sizeof(*lowers));
	lowers[0] = skel;
	for (size_t i = 0; i < img->n_layers; i++)
		lowers[i + 1] = img->layers[img->n_layers - 1 - i];
	opts = overlay_option_string(lowers, img->n_layers + 1, upper, work,
	                             env->rootless || img->userxattr, img->whole_files);
	hosts = xasprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	                  "127.0.1.1\t%s\n",
	                  hostname);
	resolv = net_resolv_conf(net);
	hostname_file = xasprintf("%s\n", hostname);

	plan.rootfs = rootfs;
	plan.etc_scratch = scratch;
	plan.etc_files[0] = hosts;
	plan.etc_files[1] = resolv;
	plan.etc_files[2] = hostname_file;
	plan.lowers_top_first = lowers;
	plan.n_lowers = img->n_layers + 1;
	plan.upper = upper;
	plan.work = work;
	plan.overlay_opts = opts;
	plan.userxattr = env->rootless || img->userxattr;
	plan.whole_files = img->whole_files;
	plan.userns = env->rootless;
	plan.netns = net != NET_HOST;
	plan.hostname = hostname;
	plan.bind_src[0] = cfg->host_agent_dir;
	plan.bind_src[1] = cfg->host_verifier_dir;
	plan.bind_src[2] = cfg->host_artifacts_dir;
	plan.bind_dst[0] = "logs/agent";
	plan.bind_dst[1] = "logs/verifier";
	plan.bind_dst[2] = "logs/artifacts";
	plan.bind_rdonly = 1u << 1; /* /logs/verifier: see sandbox_open_verifier_dir */
	plan.seccomp = prog;
	plan.caps = caps_default_mask();
	plan.cg_mode = cgh->mode;
	plan.shim = cgh->mode == CG_NONE;
	plan.devpts_gid = !env->rootless || devpts_gid;
	plan.sysfs_mounted = plan.netns || !plan.userns;
	plan.send_ns_fds = pasta;
	/* The /sys/fs/cgroup view: the hierarchies with the limits programs look
	 * for (cpu quota, memory, pids); freezer and devices stay out of sight. */
	if (cgh->mode == CG_V1)
		for (int i = 0; i < cgh->n; i++)
			if (cg_has_controller(cgh->h[i].controllers, "cpu") ||
			    cg_has_controller(cgh->h[i].controllers, "memory") ||
			    cg_has_controller(cgh->h[i].controllers, "pids"))
				plan.cg_views[plan.n_cg_views++] = cgh->h[i].controllers;
	plan.clone_flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD;
	if (plan.netns)
		plan.clone_flags |= CLONE_NEWNET;
	if (plan.userns)
		plan.clone_flags |= CLONE_NEWUSER;
	lim.cpus = cfg->cpus;
	lim.memory = cfg->memory_bytes;
	lim.pids = cfg->pids_limit;
	lim.restrict_devices = true;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) < 0) {
		err_sys(err, "socketpair");
		goto fail;
	}
	plan.sync_fd = sync[1];
	plan.listen_fd = -1;
	host_prep_start(&prep, &plan, net == NET_NAT, sync[0]);
	child = sandbox_clone_init(&plan, sync[1], &pidfd, err);
	close(sync[1]);
	env->sync_fd = sync[0];
	if (child < 0)
		goto fail;
	env->init_pid = child;
	env->pidfd = pidfd;
	env->init_start = proc_start_time(child);
	if (plan.userns) {
		struct ctl_msg mapped = {.type = SYNC_MAPPED};

		if (userns_write_maps(child, env->subids, err) < 0)
			goto fail;
		if (ctl_send(env->sync_fd, &mapped, sizeof(mapped), NULL, 0) < 0) {
			err_sys(err, "environment %s: release the init", env->name);
			goto fail;
		}
	}

	if (parent_go(env, &plan, &lim, &prep, &nat, err) < 0 || state_write(env, err) < 0)
		goto fail;
	if (sandbox_wait_ready(env->sync_fd, ready_fds, pasta ? 4 : 2, err) < 0) {
		err_wrap(err, "start environment %s", env->name);
		goto fail;
	}
	env->root_fd = ready_fds[0];
	env->mntns_fd = ready_fds[1];
	if (pasta) {
		_cleanup_free_ char *pidfile = path_join(env->dir, "pasta.pid");
		int rc = start_pasta(child, ready_fds[2], ready_fds[3], pidfile, err);

		close(ready_fds[2]);
		close(ready_fds[3]);
		if (rc < 0)
			goto fail;
	}
	/* runc creates a missing working directory; so do we. */
	if (root_mkdir_p(env->root_fd, env->image_workdir, 0755, err) < 0 ||
	    (env->cfg_workdir && root_mkdir_p(env->root_fd, env->cfg_workdir, 0755, err) < 0))
		goto fail;
	*out = env;
	return 0;

fail:
	/* The thread may still be sending on the sync socket. */
	if ((pidfd = host_prep_join(&prep)) >= 0)
		close(pidfd);
	sandbox_start_cleanup(env, env->init_pid, env->pidfd);
	sandbox_env_free(env);
	return -1;
}
