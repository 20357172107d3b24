/* The host probe (probe.h): each feature is tried for real, in a child of
 * ours that exits right after — a namespace unshared, an overlay and a procfs
 * mounted in a private mount namespace, a seccomp filter loaded, a chroot, a
 * device node made — so rollout itself keeps its namespaces, root and
 * filters. Results travel back through a shared page; the table below names
 * each piece, what a level loses without it and how to get it; which levels
 * need it is theirs to say (struct host_needs, probe.h). */
#include "providers/probe.h"
#include "providers/docker/api.h"
#include "providers/provider.h"
#include "providers/sandbox/cgroup.h"
#include "providers/sandbox/sandbox.h"
#include "providers/sandbox/sys.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define NS_FIX                                                                                     \
	"namespaces need CAP_SYS_ADMIN and a seccomp profile that allows unshare (a container "    \
	"gets neither by default): run the container with --privileged, or with --cap-add "        \
	"SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined; or run "  \
	"the sandbox at --isolation chroot, or use -e docker"

static const struct probe_def {
	const char *name;
	const char *without; /* what a level loses when an optional piece is missing */
	const char *fix;
} defs[PROBE_COUNT] = {
    [PROBE_USERNS] =
        {"user namespace", NULL,
         "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 "
         "and user.max_user_namespaces > 0; on Ubuntu also "
         "kernel.apparmor_restrict_unprivileged_userns=0), or run rollout as root; in a "
         "container: --security-opt seccomp=unconfined"},
    [PROBE_MOUNTNS] = {"mount namespace", NULL, NS_FIX},
    [PROBE_PIDNS] = {"pid namespace", NULL, NS_FIX},
    [PROBE_NETNS] = {"network namespace", NULL, NS_FIX},
    [PROBE_IPCNS] = {"ipc namespace", NULL, NS_FIX},
    [PROBE_UTSNS] = {"uts namespace", NULL, NS_FIX},
    [PROBE_OVERLAY] = {"overlayfs", NULL,
                       "the kernel needs overlayfs (modprobe overlay), and $ROLLOUT_HOME a "
                       "filesystem that can hold an upper layer, not overlayfs itself (in a "
                       "container, put $ROLLOUT_HOME on a volume: -v rollout:/var/lib/rollout)"},
    [PROBE_PROCFS] = {"mount /proc", NULL,
                      "a new procfs is refused where /proc has masked paths (a container): docker "
                      "run --security-opt systempaths=unconfined, or --privileged"},
    [PROBE_SECCOMP] = {"seccomp filter",
                       "no seccomp filter of rollout's own: only the host's applies",
                       "the kernel needs CONFIG_SECCOMP_FILTER"},
    [PROBE_CGROUPS] = {"cgroups",
                       "no cpu, memory or pids limits per environment (at --isolation chroot, "
                       "memory and pids become per-process rlimits) and no OOM-kill reports",
                       "as root: a writable cgroup hierarchy (a container: --privileged, or "
                       "cgroup v2 with --cgroupns=private and /sys/fs/cgroup writable); as an "
                       "ordinary user: a delegated cgroup v2 subtree (systemd-run --user --scope "
                       "-p Delegate=yes rollout ...)"},
    [PROBE_SUBIDS] = {"subordinate ids",
                      "one uid and gid inside: commands cannot run as the image's other users",
                      "install newuidmap/newgidmap (package uidmap) and give this user ranges in "
                      "/etc/subuid and /etc/subgid (usermod --add-subuids 100000-165535 "
                      "--add-subgids 100000-165535 USER)"},
    [PROBE_QUOTA] = {"project quotas", "storage_mb is not enforced",
                     "put $ROLLOUT_HOME on ext4 made with -O quota,project and mounted with "
                     "prjquota, or on XFS mounted with pquota, and run as root"},
    [PROBE_CHROOT] = {"chroot", NULL,
                      "run rollout as root with CAP_SYS_CHROOT (one of Docker's default "
                      "capabilities)"},
    [PROBE_SETID] = {"setuid/setgid", "commands cannot run as another user than rollout's",
                     "CAP_SETUID and CAP_SETGID (Docker's defaults: the container must not "
                     "drop them)"},
    [PROBE_MKNOD] = {"device nodes",
                     "/dev has no device nodes (no /dev/null, /dev/zero, /dev/urandom)",
                     "CAP_MKNOD (a Docker default) and a device cgroup that allows c 1:3, 1:5, "
                     "1:7, 1:8, 1:9 and 5:0"},
    [PROBE_DOCKER] = {"Docker daemon", NULL,
                      "start a Docker daemon or point DOCKER_HOST at one; in a CI job, mount its "
                      "socket: -v /var/run/docker.sock:/var/run/docker.sock"},
};

const char *probe_name(enum probe_id id)
{
	return defs[id].name;
}

/* ---- The probing child ---- */

#define SKIP_ERR (-2) /* not tried; what[] says why */

/* In a MAP_SHARED page: written by the children, read by rollout. what[] holds
 * string literals (the same addresses in a forked child). */
struct probe_page {
	int err[PROBE_COUNT]; /* 0 = works, an errno value, SKIP_ERR, -1 = never reached */
	const char *what[PROBE_COUNT];
	uid_t uid;
	gid_t gid;
	bool root;
	char lower[600], upper[600], work[600], merged[600], proc[600], root_dir[600], node[600];
	char overlay_opts[2600];
};

static void note(struct probe_page *pg, enum probe_id id, int e, const char *what)
{
	pg->err[id] = e;
	pg->what[id] = what;
}

/* fn in a child of its own (a state change there stays there): its errno. */
static int in_child(int (*fn)(struct probe_page *), struct probe_page *pg)
{
	int st;
	pid_t pid = sys_clone(0, NULL);

	if (pid < 0)
		return errno;
	if (pid == 0)
		_exit(fn(pg));
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : EIO;
}

/* The device node and that it opens (a device cgroup may allow one, not the other). */
static int try_mknod(struct probe_page *pg, const char **what)
{
	int fd, e = 0;

	*what = "mknod c 1:3";
	if (mknod(pg->node, S_IFCHR | 0600, makedev(1, 3)) < 0)
		return errno;
	*what = "open a new c 1:3 node";
	fd = open(pg->node, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		e = errno;
	else
		close(fd);
	unlink(pg->node);
	return e;
}

/* chroot, and back (rollout's root is root: CAP_SYS_CHROOT let it leave). */
static int try_chroot(struct probe_page *pg)
{
	int old = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC), e = 0;

	if (old < 0)
		return errno;
	if (chroot(pg->root_dir) < 0)
		e = errno;
	else if (fchdir(old) < 0 || chroot(".") < 0 || chdir("/") < 0)
		_exit(EIO); /* stuck in the probe's directory: nothing else can run */
	close(old);
	return e;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), e = 0;

	if (fd < 0)
		return errno;
	if (write(fd, s, strlen(s)) < 0)
		e = errno;
	close(fd);
	return e;
}

/* An ordinary user becomes root of a user namespace of its own (as the
 * sandbox's rootless mode does, one id each). */
static int enter_userns(struct probe_page *pg, const char **what)
{
	char map[64];
	int e;

	*what = "unshare(CLONE_NEWUSER)";
	if (unshare(CLONE_NEWUSER) < 0)
		return errno;
	*what = "write the user namespace's id maps";
	if ((e = write_str("/proc/self/setgroups", "deny")) != 0)
		return e;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)pg->uid);
	if ((e = write_str("/proc/self/uid_map", map)) != 0)
		return e;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)pg->gid);
	return write_str("/proc/self/gid_map", map);
}

/* volatile (5.10), as the sandbox mounts it: the unmount does not syncfs the
 * whole host filesystem. It leaves work/incompat/volatile/dirty behind, which
 * a volatile mount refuses to find: removed first. */
static int try_overlay(struct probe_page *pg)
{
	char opts[sizeof(pg->overlay_opts) + 16], stale[sizeof(pg->work) + 40];

	snprintf(stale, sizeof(stale), "%s/work/incompat/volatile/dirty", pg->work);
	unlink(stale);
	*strrchr(stale, '/') = '\0';
	rmdir(stale);
	snprintf(opts, sizeof(opts), "%s,volatile", pg->overlay_opts);
	if (mount("overlay", pg->merged, "overlay", 0, opts) < 0 &&
	    (errno != EINVAL || mount("overlay", pg->merged, "overlay", 0, pg->overlay_opts) < 0))
		return errno;
	umount2(pg->merged, MNT_DETACH);
	return 0;
}

/* pid 1 of the new pid namespace: a procfs of its own. */
static int try_procfs(struct probe_page *pg)
{
	if (mount("proc", pg->proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return errno;
	umount2(pg->proc, MNT_DETACH);
	return 0;
}

static int try_seccomp(void)
{
	struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
	struct sock_fprog prog = {.len = 1, .filter = allow};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return errno;
	return 0;
}

static void skip_from(struct probe_page *pg, const enum probe_id *ids, size_t n, const char *why)
{
	for (size_t i = 0; i < n; i++)
		note(pg, ids[i], SKIP_ERR, why);
}

/* The mount, pid, ipc, uts and network namespaces, the overlay and procfs in
 * them; as an ordinary user inside a user namespace, as the sandbox does. */
static void probe_namespaces(struct probe_page *pg)
{
	static const struct {
		enum probe_id id;
		int flag;
		const char *what;
	} plain[] = {
	    {PROBE_IPCNS, CLONE_NEWIPC, "unshare(CLONE_NEWIPC)"},
	    {PROBE_UTSNS, CLONE_NEWUTS, "unshare(CLONE_NEWUTS)"},
	    {PROBE_NETNS, CLONE_NEWNET, "unshare(CLONE_NEWNET)"},
	};
	bool mnt;
	int e;

	e = unshare(CLONE_NEWNS) < 0 ? errno : 0;
	note(pg, PROBE_MOUNTNS, e, "unshare(CLONE_NEWNS)");
	/* Nothing mounted here may propagate back to the host's mounts. */
	if (!e && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		note(pg, PROBE_MOUNTNS, errno, "make / private in the new mount namespace");
	mnt = pg->err[PROBE_MOUNTNS] == 0;
	if (mnt)
		note(pg, PROBE_OVERLAY, try_overlay(pg), "mount overlay");
	else
		note(pg, PROBE_OVERLAY, SKIP_ERR, "needs a mount namespace");
	for (size_t i = 0; i < ARRAY_SIZE(plain); i++)
		note(pg, plain[i].id, unshare(plain[i].flag) < 0 ? errno : 0, plain[i].what);
	e = unshare(CLONE_NEWPID) < 0 ? errno : 0;
	note(pg, PROBE_PIDNS, e, "unshare(CLONE_NEWPID)");
	if (e || !mnt)
		note(pg, PROBE_PROCFS, SKIP_ERR,
		     e ? "needs a pid namespace" : "needs a mount namespace");
	else
		note(pg, PROBE_PROCFS, in_child(try_procfs, pg), "mount proc");
}

static void probe_child(struct probe_page *pg)
{
	static const enum probe_id ns_ids[] = {PROBE_MOUNTNS, PROBE_PIDNS, PROBE_NETNS,
	                                       PROBE_IPCNS,   PROBE_UTSNS, PROBE_OVERLAY,
	                                       PROBE_PROCFS};
	const char *what = NULL;
	int e;

	/* With rollout's own credentials first: what --isolation chroot uses. */
	e = try_mknod(pg, &what);
	note(pg, PROBE_MKNOD, e, what);
	note(pg, PROBE_CHROOT, try_chroot(pg), "chroot");
	if (pg->root) {
		probe_namespaces(pg);
		/* Root needs none, but says whether one could be made. */
		note(pg, PROBE_USERNS, unshare(CLONE_NEWUSER) < 0 ? errno : 0,
		     "unshare(CLONE_NEWUSER)");
	} else if ((e = enter_userns(pg, &what)) != 0) {
		note(pg, PROBE_USERNS, e, what);
		skip_from(pg, ns_ids, ARRAY_SIZE(ns_ids), "needs a user namespace (not root)");
	} else {
		note(pg, PROBE_USERNS, 0, what);
		probe_namespaces(pg);
	}
	/* Last: it stays for the rest of this process's life. */
	note(pg, PROBE_SECCOMP, try_seccomp(), "load a seccomp filter (with no_new_privs)");
	_exit(0);
}

/* ---- rollout's side ---- */

static struct host_probe probe_result;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t docker_lock = PTHREAD_MUTEX_INITIALIZER;

static void set(struct host_probe *hp, enum probe_id id, enum probe_state st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set(struct host_probe *hp, enum probe_id id, enum probe_state st, const char *fmt, ...)
{
	va_list ap;

	hp->r[id].state = st;
	va_start(ap, fmt);
	vsnprintf(hp->r[id].detail, sizeof(hp->r[id].detail), fmt, ap);
	va_end(ap);
}

/* Where the filesystem probes run: where environments will live, since an
 * overlay's upper layer must be on that filesystem — <home>/sandbox/probe,
 * kept and reused under a lock (on a filesystem mounted with discard, freeing
 * directory blocks costs more than the probes) — or, when the home does not
 * exist yet, a temporary directory removed afterwards (nothing is created
 * just to look). */
struct probe_dir {
	char *path;
	int lock;
	bool temporary;
};

static bool probe_dir_open(struct probe_dir *d)
{
	_cleanup_free_ char *home = sandbox_home();
	_cleanup_free_ char *shared = path_join(home, "sandbox");
	_cleanup_free_ char *lock = NULL;
	const char *sys = getenv("TMPDIR");

	*d = (struct probe_dir){.lock = -1};
	if (path_is_dir(home) && (path_is_dir(shared) || mkdir(shared, 0755) == 0)) {
		d->path = path_join(shared, "probe");
		if (mkdir(d->path, 0700) < 0 && errno != EEXIST)
			return false;
		lock = path_join(d->path, "lock");
		d->lock = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		return d->lock >= 0 && flock(d->lock, LOCK_EX) == 0;
	}
	d->temporary = true;
	d->path = xasprintf("%s/rollout-probe.XXXXXX", sys && *sys ? sys : "/tmp");
	return mkdtemp(d->path) != NULL;
}

static void probe_dir_close(struct probe_dir *d)
{
	if (d->temporary && d->path)
		rm_rf(d->path, NULL);
	if (d->lock >= 0)
		close(d->lock);
	free(d->path);
}

static bool page_paths(struct probe_page *pg, const char *dir)
{
	static const char *const subs[] = {"l", "u", "w", "m", "p", "r"};
	char *const dst[] = {pg->lower, pg->upper, pg->work, pg->merged, pg->proc, pg->root_dir};

	if (strlen(dir) > 400)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		snprintf(dst[i], sizeof(pg->lower), "%s/%s", dir, subs[i]);
		if (mkdir(dst[i], 0700) < 0 && errno != EEXIST)
			return false;
	}
	snprintf(pg->node, sizeof(pg->node), "%s/null", dir);
	unlink(pg->node);
	snprintf(pg->overlay_opts, sizeof(pg->overlay_opts), "lowerdir=%s,upperdir=%s,workdir=%s%s",
	         pg->lower, pg->upper, pg->work, pg->root ? "" : ",userxattr");
	return true;
}

/* Runs probe_child and waits for it, at most a few seconds (a mount stuck in
 * the kernel must not hang a job's start). */
static void run_child(struct probe_page *pg)
{
	struct pollfd pf;
	int pidfd = -1;
	pid_t pid = sys_clone(CLONE_PIDFD, &pidfd);

	if (pid == 0)
		probe_child(pg);
	if (pid < 0)
		return;
	pf = (struct pollfd){.fd = pidfd, .events = POLLIN};
	if (poll(&pf, 1, 5000) != 1)
		sys_pidfd_send_signal(pidfd, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	close(pidfd);
}

static void from_page(struct host_probe *hp, const struct probe_page *pg)
{
	static const enum probe_id child_ids[] = {
	    PROBE_USERNS,  PROBE_MOUNTNS, PROBE_PIDNS,   PROBE_NETNS,  PROBE_IPCNS, PROBE_UTSNS,
	    PROBE_OVERLAY, PROBE_PROCFS,  PROBE_SECCOMP, PROBE_CHROOT, PROBE_MKNOD};

	for (size_t i = 0; i < ARRAY_SIZE(child_ids); i++) {
		enum probe_id id = child_ids[i];
		int e = pg->err[id];
		const char *what = pg->what[id] ? pg->what[id] : "?";

		if (e == 0)
			set(hp, id, PROBE_OK, "%s",
			    pg->root || id == PROBE_CHROOT || id == PROBE_MKNOD
			        ? ""
			        : "inside a user namespace");
		else if (e == SKIP_ERR)
			set(hp, id, PROBE_SKIPPED, "%s", what);
		else if (e < 0)
			set(hp, id, PROBE_MISSING, "the probe did not finish");
		else
			set(hp, id, PROBE_MISSING, "%s: %s", what, strerror(e));
	}
}

static void probe_cgroups(struct host_probe *hp)
{
	const struct cg_host *h = cg_host_get();
	_cleanup_free_ char *dir = NULL;
	const char *mode = h->mode == CG_V2 ? "v2" : h->hybrid ? "v1 (hybrid)" : "v1";

	if (h->mode == CG_NONE) {
		set(hp, PROBE_CGROUPS, PROBE_MISSING, "%s", h->why_none);
		return;
	}
	/* Writable is not enough on v2: a child must be creatable there. */
	dir = xasprintf("%s/rollout.probe.%d", h->h[0].own, (int)getpid());
	if (mkdir(dir, 0755) < 0) {
		set(hp, PROBE_CGROUPS, PROBE_MISSING, "%s, but mkdir in %s: %s", mode, h->h[0].own,
		    strerror(errno));
		return;
	}
	rmdir(dir);
	set(hp, PROBE_CGROUPS, PROBE_OK, "%s, writable: %s", mode, h->h[0].own);
}

static bool have_caps(unsigned long long want)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	unsigned long long eff;

	if (syscall(SYS_capget, &hdr, data) < 0)
		return false;
	eff = data[0].effective | ((unsigned long long)data[1].effective << 32);
	return (eff & want) == want;
}

static bool home_exists(void)
{
	_cleanup_free_ char *home = sandbox_home();

	return path_is_dir(home);
}

static void probe_host(struct host_probe *hp, bool root)
{
	struct subid_range u, g;
	const char *why = NULL;

	probe_cgroups(hp);
	if (root)
		set(hp, PROBE_SUBIDS, PROBE_SKIPPED, "not needed as root");
	else if (userns_subid_ranges(&u, &g))
		set(hp, PROBE_SUBIDS, PROBE_OK, "uids %lu+%lu, gids %lu+%lu", u.start, u.count,
		    g.start, g.count);
	else
		set(hp, PROBE_SUBIDS, PROBE_MISSING,
		    "no newuidmap/newgidmap, or no range for this user in /etc/subuid, "
		    "/etc/subgid");
	if (!home_exists())
		/* quota.c's probe makes $ROLLOUT_HOME/envs: nothing is created just to look. */
		set(hp, PROBE_QUOTA, PROBE_SKIPPED, "not probed: $ROLLOUT_HOME does not exist yet");
	else if (quota_available(&why))
		set(hp, PROBE_QUOTA, PROBE_OK, "enforced on $ROLLOUT_HOME/envs");
	else
		set(hp, PROBE_QUOTA, PROBE_MISSING, "%s", why ? why : "?");
	if (have_caps((1ULL << CAP_SETUID) | (1ULL << CAP_SETGID)))
		set(hp, PROBE_SETID, PROBE_OK, "%s", "CAP_SETUID and CAP_SETGID effective");
	else
		set(hp, PROBE_SETID, PROBE_MISSING, "CAP_SETUID or CAP_SETGID is not effective");
	set(hp, PROBE_DOCKER, PROBE_SKIPPED, "not probed");
}

/* A hint for messages, not a decision: /.dockerenv alone is found on hosts
 * made from container images too, so Docker also needs an overlay root. */
static const char *container_kind(void)
{
	struct statfs fs;

	if (access("/.dockerenv", F_OK) == 0 && statfs("/", &fs) == 0 &&
	    fs.f_type == OVERLAYFS_SUPER_MAGIC)
		return "docker";
	if (access("/run/.containerenv", F_OK) == 0)
		return "podman";
	if (getenv("KUBERNETES_SERVICE_HOST"))
		return "kubernetes";
	return NULL;
}

static void probe_all(void)
{
	struct host_probe *hp = &probe_result;
	struct probe_dir dir;
	bool dir_ok = probe_dir_open(&dir);
	struct probe_page *pg;
	double t0 = mono_now();

	hp->uid = (unsigned)geteuid();
	hp->container = container_kind();
	pg = mmap(NULL, sizeof(*pg), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (pg == MAP_FAILED)
		pg = NULL;
	if (pg) {
		memset(pg, 0, sizeof(*pg));
		for (int i = 0; i < PROBE_COUNT; i++)
			pg->err[i] = -1;
		pg->uid = geteuid();
		pg->gid = getegid();
		pg->root = pg->uid == 0;
		if (dir_ok && page_paths(pg, dir.path)) {
			snprintf(hp->where, sizeof(hp->where), "%s", dir.path);
			run_child(pg);
		}
		from_page(hp, pg);
		munmap(pg, sizeof(*pg));
	}
	probe_dir_close(&dir);
	probe_host(hp, hp->uid == 0);
	hp->ms = (mono_now() - t0) * 1000.0;
}

static void probe_docker(struct host_probe *hp)
{
	struct docker_client *c = NULL;
	struct err err = {0};
	double t0 = mono_now();

	if (docker_client_open(&c, &err) < 0) {
		set(hp, PROBE_DOCKER, PROBE_MISSING, "%s", err.msg);
	} else {
		set(hp, PROBE_DOCKER, PROBE_OK, "%s, API %d.%d%s%s", c->ep.display, c->api_major,
		    c->api_minor, c->server ? ", " : "", c->server ? c->server : "");
		docker_client_free(c);
	}
	hp->docker_ms = (mono_now() - t0) * 1000.0;
	hp->docker_probed = true;
}

const struct host_probe *host_probe(bool with_docker)
{
	pthread_once(&probe_once, probe_all);
	if (with_docker) {
		pthread_mutex_lock(&docker_lock);
		if (!probe_result.docker_probed)
			probe_docker(&probe_result);
		pthread_mutex_unlock(&docker_lock);
	}
	return &probe_result;
}

/* ---- What can run ---- */

/* The levels: every LEVEL row of include/rollout/provider_table.h, in its order,
 * by its needs (struct provider_ops.host_needs, which every level sets: a unit
 * test holds it); NULL after the last. */
static const struct host_needs *level_at(size_t i)
{
	const struct provider_ops *p = provider_level_each(i);

	return p ? p->host_needs : NULL;
}

static enum probe_need need_of(enum probe_id id, const struct host_needs *level, bool root)
{
	enum probe_need n = (enum probe_need)level->need[id];

	if (n == NEED_REQ_USER)
		return root ? NEED_NO : NEED_REQ;
	if (n == NEED_OPT_USER)
		return root ? NEED_NO : NEED_OPT;
	return n;
}

bool probe_level_ok(const struct host_probe *hp, const struct host_needs *level,
                    enum probe_id *missing, int *n_missing, enum probe_id *degraded,
                    int *n_degraded)
{
	bool root = hp->uid == 0;

	*n_missing = *n_degraded = 0;
	for (int i = 0; i < PROBE_COUNT; i++) {
		enum probe_need n = need_of((enum probe_id)i, level, root);

		if (hp->r[i].state == PROBE_OK || n == NEED_NO)
			continue;
		if (n == NEED_REQ)
			missing[(*n_missing)++] = (enum probe_id)i;
		else
			degraded[(*n_degraded)++] = (enum probe_id)i;
	}
	return *n_missing == 0;
}

static bool level_ok(const struct host_probe *hp, const struct host_needs *level)
{
	enum probe_id m[PROBE_COUNT], d[PROBE_COUNT];
	int nm, nd;

	return probe_level_ok(hp, level, m, &nm, d, &nd);
}

bool probe_any_level_ok(const struct host_probe *hp)
{
	const struct host_needs *l;

	for (size_t i = 0; (l = level_at(i)); i++)
		if (level_ok(hp, l))
			return true;
	return false;
}

/* "mount namespace, pid namespace (unshare(CLONE_NEWNS): Operation not
 * permitted)": the pieces that were tried and failed, with the first error;
 * those not tried for want of them follow. */
static void list_missing(struct strbuf *sb, const struct host_probe *hp, const enum probe_id *ids,
                         int n)
{
	const char *first = NULL;
	int shown = 0, skipped = 0;

	for (int i = 0; i < n; i++) {
		if (hp->r[ids[i]].state != PROBE_MISSING)
			continue;
		sb_addf(sb, "%s%s", shown++ ? ", " : "", defs[ids[i]].name);
		if (!first && hp->r[ids[i]].detail[0])
			first = hp->r[ids[i]].detail;
	}
	if (first)
		sb_addf(sb, " (%s)", first);
	for (int i = 0; i < n; i++)
		if (hp->r[ids[i]].state != PROBE_MISSING)
			sb_addf(sb, "%s%s",
			        skipped++ ? ", "
			        : shown   ? "; untested without them: "
			                  : "",
			        defs[ids[i]].name);
}

/* The fixes of the pieces that failed, each text once. */
static void list_fixes(struct strbuf *sb, const struct host_probe *hp, const enum probe_id *ids,
                       int n)
{
	for (int i = 0; i < n; i++) {
		bool dup = hp->r[ids[i]].state != PROBE_MISSING;

		for (int j = 0; j < i; j++)
			dup |= hp->r[ids[j]].state == PROBE_MISSING &&
			       defs[ids[j]].fix == defs[ids[i]].fix;
		if (!dup)
			sb_addf(sb, " %s: %s.", defs[ids[i]].name, defs[ids[i]].fix);
	}
}

static void what_works(struct strbuf *sb, const struct host_probe *hp,
                       const struct host_needs *level)
{
	const struct host_needs *l;
	int shown = 0;

	for (size_t i = 0; (l = level_at(i)); i++) {
		if (l == level || !level_ok(hp, l))
			continue;
		sb_addf(sb, "%s%s", shown++ ? " or " : " What works here instead: ", l->how);
		if (l->caveat)
			sb_addf(sb, " (%s)", l->caveat);
	}
	if (!shown)
		sb_adds(sb, " Nothing else can run here either.");
	else
		sb_addc(sb, '.');
}

int probe_require(const struct host_needs *level, struct err *err)
{
	const struct host_probe *hp = host_probe(level->need[PROBE_DOCKER] != NEED_NO);
	enum probe_id m[PROBE_COUNT], d[PROBE_COUNT];
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	int nm, nd;

	if (probe_level_ok(hp, level, m, &nm, d, &nd))
		return 0;
	/* Only now: naming the alternatives is worth a ping of the daemon. */
	hp = host_probe(true);
	sb_addf(&sb, "this host does not allow %s: it lacks ", level->refused);
	list_missing(&sb, hp, m, nm);
	if (hp->container)
		sb_addf(&sb, " (rollout runs in a %s container as uid %u)", hp->container, hp->uid);
	sb_addc(&sb, '.');
	what_works(&sb, hp, level);
	sb_adds(&sb, " To get it:");
	list_fixes(&sb, hp, m, nm);
	sb_adds(&sb, " `rollout doctor` shows every probe.");
	return err_set(err, EPERM, "%s", sb_str(&sb));
}

/* ---- rollout doctor ---- */

/* Some level needs it, required or not, for this uid (root needs no user
 * namespace: its fix is no fix). */
static bool needed(const struct host_probe *hp, enum probe_id id)
{
	const struct host_needs *l;

	for (size_t i = 0; (l = level_at(i)); i++)
		if (need_of(id, l, hp->uid == 0) != NEED_NO)
			return true;
	return false;
}

static const char *state_name(enum probe_state s)
{
	return s == PROBE_OK ? "ok" : s == PROBE_MISSING ? "missing" : "-";
}

void probe_print(const struct host_probe *hp, FILE *out)
{
	const struct host_needs *l;
	enum probe_id fixes[PROBE_COUNT];
	int nfix = 0;

	fprintf(out, "rollout doctor: uid %u%s%s%s; the probes took %.1f ms in %s\n\n", hp->uid,
	        hp->container ? " in a " : "", hp->container ? hp->container : "",
	        hp->container ? " container" : "", hp->ms, hp->where[0] ? hp->where : "?");
	fprintf(out, "%-17s %-8s %s\n", "PROBE", "RESULT", "DETAIL");
	for (int i = 0; i < PROBE_COUNT; i++) {
		fprintf(out, "%-17s %-8s %s\n", defs[i].name, state_name(hp->r[i].state),
		        hp->r[i].detail);
		if (hp->r[i].state == PROBE_MISSING && needed(hp, (enum probe_id)i))
			fixes[nfix++] = (enum probe_id)i;
	}
	fprintf(out, "\n%-26s %-4s %s\n", "PROVIDER / ISOLATION", "RUNS", "HOW, OR WHAT IT LACKS");
	for (size_t k = 0; (l = level_at(k)); k++) {
		enum probe_id m[PROBE_COUNT], d[PROBE_COUNT];
		int nm, nd;
		bool ok = probe_level_ok(hp, l, m, &nm, d, &nd);

		fprintf(out, "%-26s %-4s", l->name, ok ? "yes" : "no");
		if (ok)
			fprintf(out, " %s", l->how);
		for (int i = 0; i < nm; i++)
			fprintf(out, "%s%s", i ? ", " : " lacks ", defs[m[i]].name);
		fprintf(out, "\n");
		for (int i = 0; ok && i < nd; i++)
			fprintf(out, "%-31s without %s: %s\n", "", defs[d[i]].name,
			        defs[d[i]].without);
	}
	if (nfix)
		fprintf(out, "\nFIXES\n");
	/* Pieces sharing a fix share a line. */
	for (int i = 0; i < nfix; i++) {
		bool first = true;

		for (int j = 0; j < i; j++)
			first &= defs[fixes[j]].fix != defs[fixes[i]].fix;
		if (!first)
			continue;
		for (int j = i; j < nfix; j++)
			if (defs[fixes[j]].fix == defs[fixes[i]].fix)
				fprintf(out, "%s%s", j == i ? "" : ", ", defs[fixes[j]].name);
		fprintf(out, ": %s\n", defs[fixes[i]].fix);
	}
}

cJSON *probe_json(const struct host_probe *hp)
{
	const struct host_needs *l;
	cJSON *o = cJSON_CreateObject(), *probes, *lv;

	cJSON_AddNumberToObject(o, "uid", hp->uid);
	if (hp->container)
		cJSON_AddStringToObject(o, "container", hp->container);
	else
		cJSON_AddNullToObject(o, "container");
	cJSON_AddStringToObject(o, "probe_dir", hp->where);
	cJSON_AddNumberToObject(o, "ms", hp->ms);
	probes = cJSON_AddArrayToObject(o, "probes");
	for (int i = 0; i < PROBE_COUNT; i++) {
		cJSON *p = cJSON_CreateObject();

		cJSON_AddStringToObject(p, "name", defs[i].name);
		cJSON_AddStringToObject(p, "result",
		                        hp->r[i].state == PROBE_OK        ? "ok"
		                        : hp->r[i].state == PROBE_MISSING ? "missing"
		                                                          : "skipped");
		cJSON_AddStringToObject(p, "detail", hp->r[i].detail);
		if (hp->r[i].state == PROBE_MISSING)
			cJSON_AddStringToObject(p, "fix", defs[i].fix);
		cJSON_AddItemToArray(probes, p);
	}
	lv = cJSON_AddArrayToObject(o, "levels");
	for (size_t k = 0; (l = level_at(k)); k++) {
		enum probe_id m[PROBE_COUNT], d[PROBE_COUNT];
		int nm, nd;
		bool ok = probe_level_ok(hp, l, m, &nm, d, &nd);
		cJSON *e = cJSON_CreateObject(), *ma, *da;

		cJSON_AddStringToObject(e, "name", l->name);
		cJSON_AddStringToObject(e, "how", l->how);
		cJSON_AddBoolToObject(e, "runs", ok);
		ma = cJSON_AddArrayToObject(e, "missing");
		for (int i = 0; i < nm; i++)
			cJSON_AddItemToArray(ma, cJSON_CreateString(defs[m[i]].name));
		da = cJSON_AddArrayToObject(e, "degraded");
		for (int i = 0; i < nd; i++) {
			cJSON *x = cJSON_CreateObject();

			cJSON_AddStringToObject(x, "name", defs[d[i]].name);
			cJSON_AddStringToObject(x, "without", defs[d[i]].without);
			cJSON_AddItemToArray(da, x);
		}
		cJSON_AddItemToArray(lv, e);
	}
	return o;
}
