/* Starting an environment. The parent prepares everything host-side (directories,
 * cgroups and their limits, the compiled seccomp filter, ctl.sock, the overlay
 * options), then clones the init with every namespace at once; the child joins
 * its cgroups, builds its filesystem, drops to Docker's capabilities and reports
 * back over a SOCK_SEQPACKET sync socket ((errno, message) on failure). */
#include "providers/sandbox/sandbox.h"
#include "providers/sandbox/security.h"
#include "providers/sandbox/sys.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define START_TIMEOUT_MS 30000

/* ---- Child ---- */

static void child_report(int sync_fd, const struct child_err *e)
{
	struct ctl_msg m;

	memset(&m, 0, sizeof(m));
	m.type = SYNC_ERROR;
	m.value = e->code;
	snprintf(m.text, sizeof(m.text), "%s", e->msg);
	ctl_send(sync_fd, &m, sizeof(m), NULL, 0);
	_exit(1);
}

void container_child(const struct sandbox_plan *p)
{
	struct child_err e = {0};
	struct ctl_msg m;
	struct sigaction sa;
	sigset_t none;
	int keep[2 + CG_MAX], nk = 0, nul, root, rc;

	/* Nothing of the owner's may stay open here: not its stdio (a caller
	 * waiting for EOF would hang), not other environments' sockets. */
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		if (nul > 2)
			close(nul);
	}
	keep[nk++] = p->sync_fd;
	keep[nk++] = p->listen_fd;
	for (int i = 0; i < p->n_cg_procs; i++)
		keep[nk++] = p->cg_procs[i];
	sys_close_all_but(keep, nk);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < 65; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	umask(0);

	for (int i = 0; i < p->n_cg_procs; i++) {
		if (write(p->cg_procs[i], "0", 1) != 1) {
			child_fail(&e, errno, "join cgroup");
			child_report(p->sync_fd, &e);
		}
		close(p->cg_procs[i]);
	}
	if (p->userns) {
		/* Wait until the parent has written our id maps. */
		if (ctl_recv(p->sync_fd, &m, sizeof(m), NULL, NULL) <= 0 || m.type != SYNC_GO)
			_exit(1);
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
			child_fail(&e, errno, "become root in the user namespace");
			child_report(p->sync_fd, &e);
		}
	}
	/* Now inside its cgroups, the container's cgroup namespace is rooted there. */
	if (p->cg_mode != CG_NONE && unshare(CLONE_NEWCGROUP) < 0) {
		child_fail(&e, errno, "unshare the cgroup namespace");
		child_report(p->sync_fd, &e);
	}
	if (mounts_setup(p, &e) < 0)
		child_report(p->sync_fd, &e);
	if (sethostname(p->hostname, strlen(p->hostname)) < 0) {
		child_fail(&e, errno, "sethostname");
		child_report(p->sync_fd, &e);
	}
	if (p->netns && (rc = net_loopback_up()) < 0) {
		child_fail(&e, -rc, "bring lo up");
		child_report(p->sync_fd, &e);
	}
	/* The init is a copy of rollout: its /proc entries (exe, mem, fds) must be
	 * out of reach of the container's processes. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if ((rc = caps_limit_to(p->caps)) < 0) {
		child_fail(&e, -rc, "drop capabilities");
		child_report(p->sync_fd, &e);
	}
	umask(022);
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		close(nul);
	}
	root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	memset(&m, 0, sizeof(m));
	m.type = SYNC_READY;
	m.value = (int32_t)getpid();
	if (root < 0 || ctl_send(p->sync_fd, &m, sizeof(m), &root, 1) < 0)
		_exit(1);
	close(root);
	init_run(p);
}

/* ---- Parent ---- */

static const char *lower_name_for_opts(const char *s)
{
	/* mount(2) options are comma separated and lowerdir is colon separated. */
	return strpbrk(s, ",:\\") ? NULL : s;
}

static char *overlay_option_string(const struct sandbox_image *img, const char *upper,
                                   const char *work, bool userxattr)
{
	struct strbuf sb = STRBUF_INIT;

	sb_adds(&sb, "lowerdir=");
	for (size_t i = img->n_layers; i-- > 0;) {
		if (!lower_name_for_opts(img->layers[i])) {
			sb_release(&sb);
			return NULL;
		}
		sb_adds(&sb, img->layers[i]);
		if (i)
			sb_addc(&sb, ':');
	}
	sb_addf(&sb, ",upperdir=%s,workdir=%s%s", upper, work, userxattr ? ",userxattr" : "");
	if (sb.len >= 4000) {
		sb_release(&sb);
		return NULL;
	}
	return sb_detach(&sb);
}

/* Files the container sees at /etc: written into the upper layer before the
 * overlay is mounted, so they override the image's and stay writable. */
static int write_etc(const char *upper, const char *hostname, bool internet, struct err *err)
{
	_cleanup_free_ char *etc = path_join(upper, "etc");
	_cleanup_free_ char *hosts = NULL, *resolv = NULL, *hn = NULL, *host_resolv = NULL;
	size_t len = 0;

	if (mkdir(etc, 0755) < 0 && errno != EEXIST)
		return err_sys(err, "mkdir %s", etc);
	hosts = xasprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	                  "127.0.1.1\t%s\n",
	                  hostname);
	if (internet && read_file("/etc/resolv.conf", 1 << 16, &host_resolv, &len, NULL) == 0)
		resolv = xstrdup(host_resolv);
	else
		resolv = xstrdup("# rollout sandbox: no network access\nnameserver 127.0.0.1\n");
	hn = xasprintf("%s\n", hostname);
	if (write_file(path_join(etc, "hosts"), hosts, strlen(hosts), 0644, err) < 0 ||
	    write_file(path_join(etc, "resolv.conf"), resolv, strlen(resolv), 0644, err) < 0 ||
	    write_file(path_join(etc, "hostname"), hn, strlen(hn), 0644, err) < 0)
		return -1;
	return 0;
}

static int prepare_dirs(const struct environment *env, bool internet, const char *hostname,
                        struct err *err)
{
	static const char *const mount_points[] = {
	    "proc", "sys", "dev", "logs", "logs/agent", "logs/verifier", "logs/artifacts"};
	_cleanup_free_ char *upper = path_join(env->dir, "upper");
	_cleanup_free_ char *work = path_join(env->dir, "work");
	_cleanup_free_ char *rootfs = path_join(env->dir, "rootfs");

	if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0 || mkdir(rootfs, 0755) < 0)
		return err_sys(err, "mkdir in %s", env->dir);
	for (size_t i = 0; i < ARRAY_SIZE(mount_points); i++) {
		_cleanup_free_ char *d = path_join(upper, mount_points[i]);

		if (mkdir(d, 0755) < 0)
			return err_sys(err, "mkdir %s", d);
	}
	return write_etc(upper, hostname, internet, err);
}

static int listen_ctl(const struct environment *env, struct err *err)
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

static int write_proc(pid_t pid, const char *file, const char *text, struct err *err)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	return write_file(path, text, strlen(text), 0644, err) < 0 ? err_wrap(err, "id map") : 0;
}

/* Without newuidmap the caller is root inside and nobody else exists. */
static int write_id_maps(pid_t pid, struct err *err)
{
	char m[64];

	if (write_proc(pid, "setgroups", "deny", err) < 0)
		return -1;
	snprintf(m, sizeof(m), "0 %u 1\n", (unsigned)getegid());
	if (write_proc(pid, "gid_map", m, err) < 0)
		return -1;
	snprintf(m, sizeof(m), "0 %u 1\n", (unsigned)geteuid());
	return write_proc(pid, "uid_map", m, err);
}

/* Waits for the child's SYNC_READY (with the root fd) or its error. */
static int wait_ready(int sync_fd, int *root_fd, struct err *err)
{
	struct pollfd pf = {.fd = sync_fd, .events = POLLIN};
	struct ctl_msg m;
	int fds[1], nfds = 1, r;
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
	if (m.type != SYNC_READY || nfds != 1)
		return err_set(err, EPROTO, "unexpected message from the environment's init");
	*root_fd = fds[0];
	return 0;
}

static char **strv_dup_or_empty(const char *const *v)
{
	struct strv sv = STRV_INIT;

	for (; v && *v; v++)
		strv_push(&sv, *v);
	return strv_array(&sv);
}

static bool want_pasta(void)
{
	const char *n = getenv("ROLLOUT_SANDBOX_NETWORK");

	return n && strcmp(n, "pasta") == 0;
}

/* pasta gives the namespace copies of the host's addresses and routes. */
static int start_pasta(pid_t init_pid, bool userns, struct err *err)
{
	char netns[64], user[64];
	pid_t pid;
	int st;

	snprintf(netns, sizeof(netns), "/proc/%d/ns/net", (int)init_pid);
	snprintf(user, sizeof(user), "/proc/%d/ns/user", (int)init_pid);
	pid = fork();
	if (pid < 0)
		return err_sys(err, "fork pasta");
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);

		dup2(nul, 0);
		dup2(nul, 1);
		if (userns)
			execlp("pasta", "pasta", "--config-net", "--quiet", "--userns", user,
			       "--netns", netns, (char *)NULL);
		else
			execlp("pasta", "pasta", "--config-net", "--quiet", "--netns", netns,
			       (char *)NULL);
		_exit(127);
	}
	/* pasta daemonizes once the namespace is configured, and exits with it. */
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return err_set(err, EIO, "pasta failed (status %d)", st);
	return 0;
}

static bool pasta_installed(void)
{
	const char *path = getenv("PATH");
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
static void start_cleanup(struct environment *env, pid_t child, int pidfd)
{
	if (child > 0) {
		if (pidfd >= 0)
			sys_pidfd_send_signal(pidfd, SIGKILL);
		else
			kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	cg_env_destroy(&env->cg, NULL);
	rm_rf(env->dir, NULL);
}

int sandbox_start_image(const struct env_config *cfg, const struct sandbox_image *img,
                        struct environment **out, struct err *err)
{
	_cleanup_free_ char *envs = NULL, *leaf = NULL, *opts = NULL;
	_cleanup_free_ char *upper = NULL, *work = NULL, *rootfs = NULL;
	_cleanup_free_ const char **lowers = NULL;
	struct environment *env;
	struct sandbox_plan plan = {0};
	struct cg_limits lim = {0};
	const struct sock_fprog *prog;
	char hostname[64];
	int sync[2] = {-1, -1}, listen_fd = -1, pidfd = -1, root_fd = -1;
	pid_t child = -1;
	bool pasta = false;

	if (sandbox_check_name(cfg->env_name, err) < 0)
		return -1;
	if (img->n_layers == 0)
		return err_set(err, EINVAL, "image %s has no layers", img->ref ? img->ref : "?");
	if (sandbox_seccomp_prog(&prog, err) < 0)
		return -1;
	envs = sandbox_envs_dir();
	if (mkdir_p(envs, 0700, err) < 0)
		return -1;

	env = xcalloc(1, sizeof(*env));
	env->name = xstrdup(cfg->env_name);
	env->dir = path_join(envs, cfg->env_name);
	env->dir_fd = env->pidfd = env->sync_fd = env->root_fd = -1;
	env->owner = true;
	env->rootless = geteuid() != 0;
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
	if (cfg->allow_internet) {
		pasta = want_pasta();
		if (pasta && !pasta_installed()) {
			log_warn_once("sandbox-pasta",
			              "sandbox: ROLLOUT_SANDBOX_NETWORK=pasta but pasta "
			              "is not installed; sharing the host's network");
			pasta = false;
		}
	}
	env->network = xstrdup(!cfg->allow_internet ? "none" : pasta ? "pasta" : "host");
	snprintf(hostname, sizeof(hostname), "%.63s", cfg->env_name);

	if (mkdir(env->dir, 0700) < 0) {
		err_sys(err, "environment %s: mkdir %s", env->name, env->dir);
		env_free(env);
		return -1;
	}
	env->dir_fd = open(env->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (env->dir_fd < 0 || flock(env->dir_fd, LOCK_EX | LOCK_NB) < 0) {
		err_sys(err, "lock %s", env->dir);
		rm_rf(env->dir, NULL);
		env_free(env);
		return -1;
	}
	if (prepare_dirs(env, cfg->allow_internet, hostname, err) < 0)
		goto fail;

	lim.cpus = cfg->cpus;
	lim.memory = cfg->memory_bytes;
	lim.pids = cfg->pids_limit;
	lim.restrict_devices = true;
	leaf = xasprintf("rollout.%s", env->name);
	{
		const struct cg_host *h = cg_host_get();

		if (h->mode == CG_NONE)
			log_warn_once("sandbox-cgroups",
			              "sandbox: running without cpu/memory/pids limits: %s",
			              h->why_none);
	}
	/* Record the cgroup directories before creating them, for gc. */
	if (state_write(env, err) < 0)
		goto fail;
	if (cg_env_create(leaf, &lim, &env->cg, err) < 0)
		goto fail;
	env->shim = env->cg.mode == CG_NONE;
	if (state_write(env, err) < 0)
		goto fail;

	memset(&plan, 0, sizeof(plan));
	if (cg_env_open_procs(&env->cg, plan.cg_procs, err) < 0)
		goto fail;
	plan.n_cg_procs = env->cg.n;
	plan.cg_mode = env->cg.mode;
	if (env->cg.mode == CG_V1)
		for (int i = 0; i < env->cg.n; i++)
			plan.cg_views[plan.n_cg_views++] = env->cg.ctrl[i];
	upper = path_join(env->dir, "upper");
	work = path_join(env->dir, "work");
	rootfs = path_join(env->dir, "rootfs");
	lowers = xcalloc(img->n_layers, sizeof(*lowers));
	for (size_t i = 0; i < img->n_layers; i++)
		lowers[i] = img->layers[img->n_layers - 1 - i];
	opts = overlay_option_string(img, upper, work, env->rootless);
	plan.rootfs = rootfs;
	plan.lowers_top_first = lowers;
	plan.n_lowers = img->n_layers;
	plan.upper = upper;
	plan.work = work;
	plan.overlay_opts = opts;
	plan.userxattr = env->rootless;
	plan.userns = env->rootless;
	plan.netns = !cfg->allow_internet || pasta;
	plan.hostname = hostname;
	plan.bind_src[0] = cfg->host_agent_dir;
	plan.bind_src[1] = cfg->host_verifier_dir;
	plan.bind_src[2] = cfg->host_artifacts_dir;
	plan.bind_dst[0] = "logs/agent";
	plan.bind_dst[1] = "logs/verifier";
	plan.bind_dst[2] = "logs/artifacts";
	plan.seccomp = prog;
	plan.caps = caps_default_mask();
	plan.shim = env->shim;
	plan.devpts_gid = !env->rootless;
	plan.clone_flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD;
	if (plan.netns)
		plan.clone_flags |= CLONE_NEWNET;
	if (plan.userns)
		plan.clone_flags |= CLONE_NEWUSER;

	listen_fd = listen_ctl(env, err);
	if (listen_fd < 0)
		goto fail_fds;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) < 0) {
		err_sys(err, "socketpair");
		goto fail_fds;
	}
	plan.sync_fd = sync[1];
	plan.listen_fd = listen_fd;

	child = sys_clone(plan.clone_flags, &pidfd);
	if (child < 0) {
		err_sys(err, "clone the environment's init");
		goto fail_fds;
	}
	if (child == 0)
		container_child(&plan);

	close(sync[1]);
	sync[1] = -1;
	close(listen_fd);
	listen_fd = -1;
	for (int i = 0; i < plan.n_cg_procs; i++)
		close(plan.cg_procs[i]);
	plan.n_cg_procs = 0;
	env->init_pid = child;
	env->pidfd = pidfd;
	env->sync_fd = sync[0];
	sync[0] = -1;
	if (plan.userns) {
		struct ctl_msg go = {.type = SYNC_GO};

		if (write_id_maps(child, err) < 0)
			goto fail;
		ctl_send(env->sync_fd, &go, sizeof(go), NULL, 0);
	}
	if (wait_ready(env->sync_fd, &root_fd, err) < 0) {
		err_wrap(err, "start environment %s", env->name);
		goto fail;
	}
	env->root_fd = root_fd;
	env->init_start = proc_start_time(child);
	if (state_write(env, err) < 0)
		goto fail;
	if (pasta && start_pasta(child, plan.userns, err) < 0)
		goto fail;
	/* runc creates a missing working directory; so do we. */
	if (root_mkdir_p(env->root_fd, env->image_workdir, 0755, err) < 0 ||
	    (env->cfg_workdir && root_mkdir_p(env->root_fd, env->cfg_workdir, 0755, err) < 0))
		goto fail;
	*out = env;
	return 0;

fail_fds:
	for (int i = 0; i < plan.n_cg_procs; i++)
		close(plan.cg_procs[i]);
	if (listen_fd >= 0)
		close(listen_fd);
	if (sync[0] >= 0)
		close(sync[0]);
	if (sync[1] >= 0)
		close(sync[1]);
fail:
	start_cleanup(env, env->init_pid > 0 ? env->init_pid : child, env->pidfd);
	env_free(env);
	return -1;
}
