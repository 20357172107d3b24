/* --isolation chroot: environments for hosts that forbid namespaces but are
 * themselves the boundary — a CI job's unprivileged container, whose default
 * capabilities still include CAP_SYS_CHROOT, CAP_SETUID/SETGID and CAP_KILL.
 * Each environment gets a copy of its image's layers of its own
 * (envs/<name>/root, rootfs.c) with a skeleton like the full sandbox's
 * mount points: /proc, /sys and /dev directories (a few device nodes when
 * mknod is allowed), /logs, and /etc/hosts, resolv.conf, hostname. The init
 * is rollout's own, exec'd fresh as at full isolation, but with no
 * namespace: it becomes a child subreaper, leaves the owner's session,
 * chroots into the copy, drops to Docker's capabilities less CHROOT, MKNOD and
 * NET_RAW, sets no_new_privs and loads the sandbox's seccomp profile (plus
 * kill(1)/kill(-1) refused). Its processes are its descendants: orphans come
 * back to it, a timeout kills an exec's tree, kill_all kills every
 * descendant. Limits are cgroups where they are writable, else per-process
 * rlimits (memory, pids). There is no network isolation at all, no /proc
 * inside, /logs is collected by copying (logs_mounted is false): what this
 * does not protect is in docs/SANDBOX.md, "Isolation levels". */
#include "providers/probe.h"
#include "providers/sandbox/rootfs.h"
#include "providers/sandbox/sandbox.h"
#include "providers/sandbox/security.h"
#include "providers/sandbox/sys.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- The skeleton: what the full sandbox mounts, as plain files ---- */

static const struct {
	const char *path;
	mode_t mode;
} skel_dirs[] = {
    {"proc", 0555},       {"sys", 0555},           {"dev", 0755},
    {"dev/pts", 0755},    {"dev/shm", 01777},      {"logs", 0755},
    {"logs/agent", 0777}, {"logs/verifier", 0777}, {"logs/artifacts", 0777},
};

/* Docker's default devices (the full sandbox binds the host's nodes). */
static const struct {
	const char *name;
	unsigned major, minor;
} skel_devices[] = {
    {"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
    {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

static const struct {
	const char *name, *target;
} skel_links[] = {
    {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
    {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"},
};

/* What the skeleton adds that is not a build step's change (rootfs_diff):
 * the full sandbox's mounts, left out with all below them, and /logs with its
 * three directories (a lower layer there, made here when the image has none;
 * nothing is mounted on them during a build), of which only what a RUN writes
 * inside them is kept, as at full isolation. */
static const char *const skel_not_layer[] = {
    "proc",
    "sys",
    "dev",
    "logs/",
    "logs/agent/",
    "logs/verifier/",
    "logs/artifacts/",
    "etc/hosts",
    "etc/resolv.conf",
    "etc/hostname",
    NULL,
};

/* A directory of the skeleton, made or reset to its mode (its parents inside
 * the root, following the image's links there as a mount would). */
static int skel_dir(int root, const char *path, mode_t mode, struct err *err)
{
	int fd = root_dir_open(root, path, true, mode, err);

	if (fd < 0)
		return -1;
	if (fchmod(fd, mode) < 0 || fchown(fd, 0, 0) < 0) {
		close(fd);
		return err_sys(err, "/%s", path);
	}
	close(fd);
	return 0;
}

/* The nodes when mknod is allowed (a warning once otherwise), the links always. */
static int skel_dev(int root, struct err *err)
{
	_cleanup_close_ int dev = root_dir_open(root, "dev", false, 0755, err);
	bool made = true;

	if (dev < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(skel_devices); i++) {
		const char *n = skel_devices[i].name;

		if (tree_remove_at(dev, n, err) < 0)
			return -1;
		if (mknodat(dev, n, S_IFCHR | 0666,
		            makedev(skel_devices[i].major, skel_devices[i].minor)) < 0 ||
		    fchmodat(dev, n, 0666, 0) < 0)
			made = false;
	}
	if (!made)
		log_warn_once("chroot-devices",
		              "sandbox chroot: no device nodes in /dev (mknod: %s): /dev/null, "
		              "/dev/zero and /dev/urandom are missing in environments",
		              strerror(errno));
	for (size_t i = 0; i < ARRAY_SIZE(skel_links); i++) {
		if (tree_remove_at(dev, skel_links[i].name, err) < 0)
			return -1;
		if (symlinkat(skel_links[i].target, dev, skel_links[i].name) < 0)
			return err_sys(err, "/dev/%s", skel_links[i].name);
	}
	return 0;
}

/* /etc/hosts, resolv.conf (the host's: its network is the environment's) and
 * hostname, replacing what the image has. */
static int skel_etc(int root, const char *hostname, struct err *err)
{
	_cleanup_close_ int etc = root_dir_open(root, "etc", true, 0755, err);
	_cleanup_free_ char *hosts = xasprintf(
	    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n",
	    hostname);
	_cleanup_free_ char *resolv = net_resolv_conf(NET_HOST);
	_cleanup_free_ char *name = xasprintf("%s\n", hostname);
	const char *names[] = {"hosts", "resolv.conf", "hostname"};
	const char *texts[] = {hosts, resolv, name};

	if (etc < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		int fd;

		if (tree_remove_at(etc, names[i], err) < 0)
			return -1;
		fd = openat(etc, names[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		            0644);
		if (fd < 0)
			return err_sys(err, "/etc/%s", names[i]);
		if (write_all(fd, texts[i], strlen(texts[i])) < 0 || fchmod(fd, 0644) < 0) {
			close(fd);
			return err_sys(err, "/etc/%s", names[i]);
		}
		close(fd);
	}
	return 0;
}

static int skeleton(int root, const char *hostname, struct err *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(skel_dirs); i++)
		if (skel_dir(root, skel_dirs[i].path, skel_dirs[i].mode, err) < 0)
			return err_wrap(err, "the environment's skeleton");
	if (skel_dev(root, err) < 0 || skel_etc(root, hostname, err) < 0)
		return err_wrap(err, "the environment's skeleton");
	return 0;
}

/* ---- The init (child side): runs before main(), see sandbox_init_entry ---- */

static void __attribute__((noreturn)) child_die(int sync_fd, int code, const char *what)
{
	struct child_err e = {0};

	child_fail(&e, code, "%s", what);
	child_report(sync_fd, &e);
}

/* The root and nothing else travels back: there is no namespace to hand over. */
static void send_ready(int sync_fd)
{
	struct ctl_msg m;
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

	memset(&m, 0, sizeof(m));
	m.type = SYNC_READY;
	m.value = (int32_t)getpid();
	if (root < 0 || ctl_send(sync_fd, &m, sizeof(m), &root, 1) < 0)
		_exit(1);
	close(root);
}

void chroot_child(const struct sandbox_plan *plan)
{
	struct sandbox_plan p = *plan;
	struct sigaction sa;
	sigset_t none;

	sandbox_stdio_to_null();
	sys_close_all_but(&p.sync_fd, 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < 65; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Out of the owner's session (a Ctrl-C there is the owner's to handle),
	 * and where every orphan of the environment comes back. */
	setsid();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		child_die(p.sync_fd, errno, "become a subreaper");
	/* The host's /proc, for finding our descendants once chrooted. */
	p.proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p.proc_fd < 0)
		child_die(p.sync_fd, errno, "open /proc");
	{
		int netns = child_wait_go(&p); /* never one at this level */

		if (netns >= 0)
			close(netns);
	}
	for (int i = 0; i < p.n_cg_procs; i++) {
		if (write(p.cg_procs[i], "0", 1) != 1)
			child_die(p.sync_fd, errno, "join cgroup");
		close(p.cg_procs[i]);
	}
	if (chroot(p.rootfs) < 0 || chdir("/") < 0)
		child_die(p.sync_fd, errno, "chroot into the environment's root");
	send_ready(p.sync_fd);
	sandbox_raise_nofile_limit();
	/* Its /proc entries (exe is rollout's binary, fds, memory) stay out of
	 * reach of the environment's processes, which share our uid. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (caps_limit_to(p.caps) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		_exit(1);
	if (p.seccomp && sandbox_seccomp_load(p.seccomp) < 0)
		_exit(1);
	umask(022);
	init_run(&p);
}

/* ---- Starting (owner side) ---- */

/* Processes of the environment share our uid: without this, any of them could
 * ptrace rollout itself (the orchestrator, the trial workers it forks). */
static void owner_not_dumpable(void)
{
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static void warn_unisolated(const struct env_config *cfg, const struct cg_host *cgh)
{
	if (cgh->mode == CG_NONE)
		log_warn_once("chroot-cgroups",
		              "sandbox chroot: no cgroups (%s): no cpu limit; memory and pids "
		              "limits are per-process rlimits; OOM kills are not reported",
		              cgh->why_none);
	if (!cfg->allow_internet)
		log_warn_once("chroot-network",
		              "sandbox chroot: environments share the host's network: "
		              "allow_internet = false is not enforced");
}

/* storage_mb counts what the environment writes, not its image: the project
 * is set before the copy (files made later inherit it only from directories
 * that carry it) with no real limit, which becomes the copy plus storage_mb
 * once it is done. */
static int quota_setup(struct sandbox_env *env, const struct env_config *cfg, struct err *err)
{
	struct env_config during = *cfg;

	if (cfg->storage_bytes <= 0)
		return quota_env_setup(env, cfg, err);
	during.storage_bytes = 1LL << 50;
	if (quota_env_setup(env, &during, err) < 0)
		return -1;
	env->storage_limit = cfg->storage_bytes;
	return 0;
}

/* The environment's own copy of the image, and (a build step) what the diff
 * at stop compares with. */
static int make_root(struct sandbox_env *env, const struct sandbox_image *img, int *root_fd,
                     struct err *err)
{
	_cleanup_free_ char *root = path_join(env->dir, "root");
	struct rootfs_layers ly = {
	    .dirs = img->layers, .n = img->n_layers, .userxattr = img->userxattr};
	struct rootfs_stats st;
	double t0 = mono_now();

	if (mkdir(root, 0755) < 0)
		return err_sys(err, "mkdir %s", root);
	*root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*root_fd < 0)
		return err_sys(err, "open %s", root);
	if (rootfs_flatten(&ly, *root_fd, &st, err) < 0)
		return err_wrap(err, "environment %s", env->name);
	clock_gettime(CLOCK_REALTIME_COARSE, &env->build_since);
	log_debug("sandbox chroot: %s: copied %ld files, %lld bytes (%ld cloned) in %.0f ms",
	          env->name, st.files, st.bytes, st.cloned, (mono_now() - t0) * 1000);
	if (img->upper_dir) {
		struct strv sv = STRV_INIT;

		for (size_t i = 0; i < img->n_layers; i++)
			strv_push(&sv, img->layers[i]);
		env->build_layers = strv_array(&sv);
		env->build_upper = xstrdup(img->upper_dir);
		env->build_userxattr = img->userxattr;
	}
	return 0;
}

static void plan_for(struct sandbox_plan *plan, const struct env_config *cfg,
                     const struct sock_fprog *prog, const char *rootfs)
{
	static const char *const no_lowers[1] = {NULL};

	memset(plan, 0, sizeof(*plan));
	plan->chroot = true;
	plan->clone_flags = CLONE_PIDFD;
	plan->rootfs = rootfs;
	/* Unused at this level, but the plan's strings are never NULL. */
	plan->etc_scratch = plan->upper = plan->work = plan->hostname = "";
	for (int i = 0; i < 3; i++)
		plan->etc_files[i] = "";
	plan->lowers_top_first = no_lowers;
	plan->seccomp = prog;
	plan->caps = caps_chroot_mask();
	plan->cg_mode = cg_host_get()->mode;
	plan->shim = plan->cg_mode == CG_NONE;
	if (plan->shim) {
		plan->rlimit_data = cfg->memory_bytes > 0 ? (uint64_t)cfg->memory_bytes : 0;
		plan->rlimit_nproc = cfg->pids_limit > 0 ? (uint64_t)cfg->pids_limit : 0;
	}
	plan->listen_fd = plan->proc_fd = -1;
}

/* The cgroups (when writable) and ctl.sock, then the go-ahead. */
static int go(struct sandbox_env *env, const struct env_config *cfg, struct err *err)
{
	_cleanup_free_ char *leaf = xasprintf("rollout.%s", env->name);
	struct cg_limits lim = {
	    .cpus = cfg->cpus, .memory = cfg->memory_bytes, .pids = cfg->pids_limit};
	struct ctl_msg m = {.type = SYNC_GO};
	int fds[1 + CG_MAX], nfds = 0, rc = -1;

	if (cg_host_get()->mode != CG_NONE && cg_env_create(leaf, &lim, &env->cg, err) < 0)
		return -1;
	env->shim = env->cg.mode == CG_NONE;
	fds[nfds] = sandbox_listen_ctl(env, err);
	if (fds[nfds] < 0)
		return -1;
	nfds++;
	if (env->cg.mode != CG_NONE) {
		if (cg_env_open_procs(&env->cg, fds + nfds, err) < 0)
			goto out;
		nfds += env->cg.n;
	}
	if (ctl_send(env->sync_fd, &m, sizeof(m), fds, nfds) < 0) {
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

/* Clones the init, hands it the go-ahead, waits for its root. */
static int start_init(struct sandbox_env *env, const struct env_config *cfg,
                      struct sandbox_plan *plan, struct err *err)
{
	int sync[2], ready;
	pid_t child;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) < 0)
		return err_sys(err, "socketpair");
	plan->sync_fd = sync[1];
	child = sandbox_clone_init(plan, sync[1], &env->pidfd, err);
	close(sync[1]);
	env->sync_fd = sync[0];
	if (child < 0)
		return -1;
	env->init_pid = child;
	env->init_start = proc_start_time(child);
	if (go(env, cfg, err) < 0 || state_write(env, err) < 0)
		return -1;
	if (sandbox_wait_ready(env->sync_fd, &ready, 1, err) < 0)
		return err_wrap(err, "start environment %s", env->name);
	env->root_fd = ready;
	return 0;
}

int chroot_start_layers(const struct env_config *cfg, const struct sandbox_image *img,
                        struct sandbox_env **out, struct err *err)
{
	_cleanup_free_ char *envs = NULL, *rootfs = NULL;
	_cleanup_close_ int root = -1;
	const struct cg_host *cgh = cg_host_get();
	const struct sock_fprog *prog;
	struct sandbox_plan plan;
	struct sandbox_env *env;
	char hostname[64];

	if (sandbox_check_name(cfg->env_name, err) < 0)
		return -1;
	if (img->n_layers == 0)
		return err_set(err, EINVAL, "image %s has no layers", img->ref ? img->ref : "?");
	if (geteuid() != 0)
		return err_set(err, EPERM,
		               "--isolation chroot needs root (chroot, device nodes, "
		               "the image's owners)");
	if (sandbox_seccomp_prog_chroot(&prog, err) < 0)
		return -1;
	owner_not_dumpable();
	warn_unisolated(cfg, cgh);
	envs = sandbox_envs_dir();
	if (mkdir_p(envs, 0700, err) < 0)
		return -1;
	env = sandbox_env_new(cfg, img, envs);
	env->network = xstrdup("host");
	snprintf(hostname, sizeof(hostname), "%.63s", cfg->env_name);
	if (sandbox_env_dir_create(env, err) < 0) {
		sandbox_env_free(env);
		return -1;
	}
	if (!img->upper_dir && quota_setup(env, cfg, err) < 0)
		goto fail;
	if (img->mark_in_use && img->mark_in_use(img->mark_ctx, env->name, err) < 0)
		goto fail;
	if (make_root(env, img, &root, err) < 0 || skeleton(root, hostname, err) < 0 ||
	    quota_env_room_above_usage(env, err) < 0)
		goto fail;
	/* runc creates a missing working directory; so do we. */
	if (root_mkdir_p(root, env->image_workdir, 0755, err) < 0 ||
	    (env->cfg_workdir && root_mkdir_p(root, env->cfg_workdir, 0755, err) < 0))
		goto fail;
	rootfs = path_join(env->dir, "root");
	plan_for(&plan, cfg, prog, rootfs);
	if (start_init(env, cfg, &plan, err) < 0)
		goto fail;
	*out = env;
	return 0;
fail:
	sandbox_start_cleanup(env, env->init_pid, env->pidfd);
	sandbox_env_free(env);
	return -1;
}

int chroot_prepare(struct err *err)
{
	const struct sock_fprog *prog;

	if (probe_require(&sandbox_chroot_host_needs, err) < 0)
		return -1;
	owner_not_dumpable();
	cg_host_get();
	quota_warn_unenforced();
	return sandbox_seccomp_prog_chroot(&prog, err);
}

/* ---- Phase boundaries and teardown ---- */

int chroot_open_verifier_dir(struct sandbox_env *env, struct err *err)
{
	_cleanup_close_ int top = -1, logs = -1;
	int root = sandbox_env_root_fd(env, err);
	struct stat st;

	if (root < 0)
		return -1;
	/* Whatever the agent made of /logs (a link, a file) is replaced by a
	 * directory, and /logs/verifier by an empty one. */
	top = root_dir_open(root, "/", false, 0755, err);
	if (top < 0)
		return err_wrap(err, "environment %s", env->name);
	if (fstatat(top, "logs", &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode)) {
		if (tree_remove_at(top, "logs", err) < 0)
			return err_wrap(err, "environment %s: /logs", env->name);
		if (mkdirat(top, "logs", 0755) < 0)
			return err_sys(err, "environment %s: /logs", env->name);
	}
	logs = openat(top, "logs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (logs < 0)
		return err_sys(err, "environment %s: /logs", env->name);
	if (tree_remove_at(logs, "verifier", err) < 0)
		return err_wrap(err, "environment %s: empty /logs/verifier", env->name);
	if (mkdirat(logs, "verifier", 0777) < 0 || fchmodat(logs, "verifier", 0777, 0) < 0)
		return err_sys(err, "environment %s: /logs/verifier", env->name);
	return quota_env_verifier_room(env, err);
}

/* Whatever still runs with the environment's root (an init killed by the
 * agent leaves its descendants to the host's reaper): found by /proc's root
 * link, for the processes our uid may look at. */
static int kill_by_root(const char *rootfs)
{
	int killed = 0;

	for (int round = 0; round < 100; round++) {
		_cleanup_closedir_ DIR *d = opendir("/proc");
		struct dirent *de;
		int alive = 0;

		if (!d)
			return killed;
		while ((de = readdir(d))) {
			char link[64], target[4096];
			char *end;
			long pid = strtol(de->d_name, &end, 10);
			ssize_t n;

			if (*end || pid <= 1 || pid == getpid())
				continue;
			snprintf(link, sizeof(link), "/proc/%ld/root", pid);
			n = readlink(link, target, sizeof(target) - 1);
			if (n < 0)
				continue;
			target[n] = '\0';
			if (strcmp(target, rootfs) != 0 &&
			    !(str_starts_with(target, rootfs) && target[strlen(rootfs)] == '/'))
				continue;
			kill((pid_t)pid, SIGKILL);
			alive++;
		}
		if (!alive)
			break;
		killed += alive;
		usleep(1000);
	}
	return killed;
}

static int build_commit(struct sandbox_env *env, struct err *err)
{
	_cleanup_free_ char *rootfs = path_join(env->dir, "root");
	_cleanup_close_ int root = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int upper = open(env->build_upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct rootfs_layers ly = {.dirs = (const char *const *)env->build_layers,
	                           .n = strv_len(env->build_layers),
	                           .userxattr = env->build_userxattr};

	if (root < 0 || upper < 0)
		return err_sys(err, "environment %s: the build step's directories", env->name);
	return rootfs_diff(root, &ly, &env->build_since, skel_not_layer, upper, err);
}

int chroot_teardown_processes(struct sandbox_env *env, struct err *err)
{
	_cleanup_free_ char *rootfs = path_join(env->dir, "root");
	_cleanup_free_ char *real = NULL;
	struct err ignored = {0};

	if (state_init_alive(env))
		sandbox_kill_all(env, &ignored);
	/* The init itself, then anything its death would have orphaned. */
	if (env->pidfd >= 0)
		sys_pidfd_send_signal(env->pidfd, SIGKILL);
	else if (state_init_alive(env))
		kill(env->init_pid, SIGKILL);
	real = path_real(rootfs);
	kill_by_root(real ? real : rootfs);
	if (env->build_upper && env->owner)
		return build_commit(env, err);
	return 0;
}
