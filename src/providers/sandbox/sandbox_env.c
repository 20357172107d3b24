/* Where environments live on the host and what is recorded about them:
 * <home>/envs/<name>/ holds state.json (init pid and start time, cgroups, image,
 * the owner), ctl.sock, and the overlay's upper/work directories. The owner holds
 * an flock on the directory for as long as it lives, so `gc` can tell a live
 * environment from the leftovers of a rollout killed by SIGKILL. */
#include "image/store.h"
#include "providers/sandbox/sandbox.h"
#include "providers/sandbox/sys.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define STATE_FILE "state.json"

char *sandbox_home(void)
{
	return store_default_root();
}

char *sandbox_envs_dir(void)
{
	_cleanup_free_ char *home = sandbox_home();

	return path_join(home, "envs");
}

int sandbox_check_name(const char *name, struct err *err)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 200 || name[0] == '.' || name[0] == '-')
		return err_set(err, EINVAL, "invalid environment name '%s'", name ? name : "");
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return err_set(
			    err, EINVAL,
			    "invalid environment name '%s' (letters, digits, '-', '_', '.')", name);
	}
	return 0;
}

unsigned long long proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	_cleanup_close_ int fd = -1;
	ssize_t n;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* Field 22 (starttime); p points at the end of field 2. */
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

bool state_init_alive(const struct sandbox_env *env)
{
	return env->init_pid > 0 && env->init_start &&
	       proc_start_time(env->init_pid) == env->init_start;
}

static cJSON *strv_json(char **v)
{
	cJSON *a = cJSON_CreateArray();

	for (; v && *v; v++)
		cJSON_AddItemToArray(a, cJSON_CreateString(*v));
	return a;
}

static char **json_strv(const cJSON *a)
{
	struct strv sv = STRV_INIT;
	const cJSON *it;

	cJSON_ArrayForEach(it, a)
	{
		if (cJSON_IsString(it))
			strv_push(&sv, it->valuestring);
	}
	return strv_array(&sv);
}

/* The NAT mode's link: its host-side interface and both addresses. */
static cJSON *link_json(const struct net_link *l)
{
	cJSON *o = cJSON_CreateObject();
	struct in_addr h = {.s_addr = htonl(l->host_addr)}, e = {.s_addr = htonl(l->env_addr)};
	char buf[INET_ADDRSTRLEN];

	cJSON_AddStringToObject(o, "host_if", l->host_if);
	cJSON_AddStringToObject(o, "host_addr", inet_ntop(AF_INET, &h, buf, sizeof(buf)));
	cJSON_AddStringToObject(o, "addr", inet_ntop(AF_INET, &e, buf, sizeof(buf)));
	cJSON_AddNumberToObject(o, "prefix", 30);
	cJSON_AddNumberToObject(o, "slot", l->slot);
	return o;
}

static void link_load(const cJSON *o, struct net_link *l)
{
	const char *ifn = json_get_str(o, "host_if"), *h = json_get_str(o, "host_addr"),
	           *e = json_get_str(o, "addr");
	struct in_addr ha, ea;

	memset(l, 0, sizeof(*l));
	if (!o || !ifn || !h || !e || inet_pton(AF_INET, h, &ha) != 1 ||
	    inet_pton(AF_INET, e, &ea) != 1 || strlen(ifn) >= sizeof(l->host_if))
		return;
	snprintf(l->host_if, sizeof(l->host_if), "%s", ifn);
	l->host_addr = ntohl(ha.s_addr);
	l->env_addr = ntohl(ea.s_addr);
	l->slot = (uint32_t)json_get_num(o, "slot", 0);
}

int state_write(const struct sandbox_env *env, struct err *err)
{
	_cleanup_json_ cJSON *j = cJSON_CreateObject();
	_cleanup_free_ char *path = path_join(env->dir, STATE_FILE);
	_cleanup_free_ char *tmp = path_join(env->dir, STATE_FILE ".tmp");
	_cleanup_free_ char *text = NULL;
	cJSON *cgs = cJSON_CreateArray();
	static const char *const modes[] = {"none", "v1", "v2"};

	cJSON_AddNumberToObject(j, "version", 1);
	cJSON_AddStringToObject(j, "name", env->name);
	cJSON_AddStringToObject(j, "job_name", env->job_name ? env->job_name : "");
	cJSON_AddStringToObject(j, "image", env->image_ref ? env->image_ref : "");
	json_add_str_or_null(j, "image_id", env->image_id);
	cJSON_AddNumberToObject(j, "created_at", env->created_at);
	/* The process that started it (kept by later writers, e.g. `env rm` of a
	 * kept environment). */
	cJSON_AddNumberToObject(j, "owner_pid",
	                        env->owner ? (double)getpid() : (double)env->owner_pid);
	cJSON_AddNumberToObject(j, "owner_start",
	                        env->owner ? (double)proc_start_time(getpid())
	                                   : (double)env->owner_start);
	cJSON_AddNumberToObject(j, "init_pid", (double)env->init_pid);
	cJSON_AddNumberToObject(j, "init_start", (double)env->init_start);
	cJSON_AddBoolToObject(j, "kept", env->kept);
	cJSON_AddBoolToObject(j, "rootless", env->rootless);
	cJSON_AddBoolToObject(j, "subids", env->subids);
	cJSON_AddBoolToObject(j, "shim", env->shim);
	cJSON_AddStringToObject(j, "isolation",
	                        env->isolation == SANDBOX_CHROOT ? "chroot" : "full");
	cJSON_AddStringToObject(j, "network", env->network ? env->network : "none");
	if (env->net_link.host_if[0])
		cJSON_AddItemToObject(j, "net_link", link_json(&env->net_link));
	cJSON_AddStringToObject(j, "cgroup_mode", modes[env->cg.mode]);
	for (int i = 0; i < env->cg.n; i++) {
		cJSON *c = cJSON_CreateObject();

		cJSON_AddStringToObject(c, "controllers", env->cg.ctrl[i]);
		cJSON_AddStringToObject(c, "path", env->cg.path[i]);
		cJSON_AddItemToArray(cgs, c);
	}
	cJSON_AddItemToObject(j, "cgroups", cgs);
	cJSON_AddNumberToObject(j, "cgroup_exec_index", env->cg.exec_idx);
	cJSON_AddNumberToObject(j, "cgroup_memory_index", env->cg.mem_idx);
	cJSON_AddItemToObject(j, "image_env", strv_json(env->image_env));
	cJSON_AddStringToObject(j, "image_workdir", env->image_workdir ? env->image_workdir : "/");
	cJSON_AddStringToObject(j, "image_user", env->image_user ? env->image_user : "");
	cJSON_AddItemToObject(j, "env", strv_json(env->cfg_env));
	json_add_str_or_null(j, "workdir", env->cfg_workdir);
	text = cJSON_PrintUnformatted(j);
	/* No fsync: an environment does not survive a reboot anyway. The first
	 * write creates the file in place (the owner's flock keeps gc away, and a
	 * reader racing it just skips the environment); updates replace it whole. */
	if (!path_exists(path))
		return write_file(path, text, strlen(text), 0600, err);
	if (write_file(tmp, text, strlen(text), 0600, err) < 0)
		return -1;
	if (rename(tmp, path) < 0)
		return err_sys(err, "rename %s", path);
	return 0;
}

int state_load(const char *dir, struct sandbox_env *env, struct err *err)
{
	_cleanup_free_ char *path = path_join(dir, STATE_FILE);
	_cleanup_json_ cJSON *j = NULL;
	const cJSON *cgs, *it;
	const char *mode;

	if (json_load_file(path, &j, err) < 0)
		return -1;
	memset(env, 0, sizeof(*env));
	env->dir = xstrdup(dir);
	env->dir_fd = env->pidfd = env->sync_fd = env->root_fd = env->mntns_fd = -1;
	env->name = xstrdup(json_get_str(j, "name") ? json_get_str(j, "name") : path_basename(dir));
	env->job_name = xstrdup(json_get_str(j, "job_name") ? json_get_str(j, "job_name") : "");
	env->image_ref = xstrdup(json_get_str(j, "image") ? json_get_str(j, "image") : "");
	env->image_id = json_get_str(j, "image_id") ? xstrdup(json_get_str(j, "image_id")) : NULL;
	env->created_at = json_get_num(j, "created_at", 0);
	env->init_pid = (pid_t)json_get_num(j, "init_pid", 0);
	env->owner_pid = (pid_t)json_get_num(j, "owner_pid", 0);
	env->owner_start = (unsigned long long)json_get_num(j, "owner_start", 0);
	env->init_start = (unsigned long long)json_get_num(j, "init_start", 0);
	env->kept = json_get_bool(j, "kept", false);
	env->rootless = json_get_bool(j, "rootless", false);
	env->subids = json_get_bool(j, "subids", false);
	env->shim = json_get_bool(j, "shim", false);
	env->isolation =
	    json_get_str(j, "isolation") && !strcmp(json_get_str(j, "isolation"), "chroot")
	        ? SANDBOX_CHROOT
	        : SANDBOX_FULL;
	env->network = xstrdup(json_get_str(j, "network") ? json_get_str(j, "network") : "none");
	link_load(cJSON_GetObjectItem(j, "net_link"), &env->net_link);
	mode = json_get_str(j, "cgroup_mode");
	env->cg.mode = mode && !strcmp(mode, "v1")   ? CG_V1
	               : mode && !strcmp(mode, "v2") ? CG_V2
	                                             : CG_NONE;
	env->cg.exec_idx = (int)json_get_num(j, "cgroup_exec_index", 0);
	env->cg.mem_idx = (int)json_get_num(j, "cgroup_memory_index", -1);
	cgs = cJSON_GetObjectItem(j, "cgroups");
	cJSON_ArrayForEach(it, cgs)
	{
		const char *c = json_get_str(it, "controllers"), *p = json_get_str(it, "path");

		if (!c || !p || env->cg.n >= CG_MAX)
			continue;
		env->cg.ctrl[env->cg.n] = xstrdup(c);
		env->cg.path[env->cg.n] = xstrdup(p);
		env->cg.n++;
	}
	if (env->cg.exec_idx < 0 || env->cg.exec_idx >= env->cg.n)
		env->cg.exec_idx = 0;
	if (env->cg.mem_idx >= env->cg.n)
		env->cg.mem_idx = -1;
	env->image_env = json_strv(cJSON_GetObjectItem(j, "image_env"));
	env->image_workdir =
	    xstrdup(json_get_str(j, "image_workdir") ? json_get_str(j, "image_workdir") : "/");
	env->image_user =
	    xstrdup(json_get_str(j, "image_user") ? json_get_str(j, "image_user") : "");
	env->cfg_env = json_strv(cJSON_GetObjectItem(j, "env"));
	env->cfg_workdir = json_get_str(j, "workdir") ? xstrdup(json_get_str(j, "workdir")) : NULL;
	return 0;
}

void sandbox_env_free(struct sandbox_env *env)
{
	int *fds[] = {&env->dir_fd, &env->pidfd, &env->sync_fd, &env->root_fd, &env->mntns_fd};

	if (!env)
		return;
	sandbox_env_drop_exec_cgroup(env);
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	cg_env_free(&env->cg);
	free(env->name);
	free(env->dir);
	free(env->job_name);
	free(env->image_ref);
	free(env->image_id);
	strv_free(env->image_env);
	free(env->image_workdir);
	free(env->image_user);
	strv_free(env->cfg_env);
	free(env->cfg_workdir);
	free(env->network);
	free(env->build_upper);
	strv_free(env->build_layers);
	free(env);
}

/* pasta serves the environment's network namespace from outside it: stop it
 * (only if the pid in its pid file is still a pasta process). */
static void stop_pasta(const struct sandbox_env *env)
{
	_cleanup_free_ char *pidfile = path_join(env->dir, "pasta.pid"), *text = NULL;
	char path[64], cmd[256];
	size_t len;
	pid_t pid;
	ssize_t n;
	int fd;

	if (read_file(pidfile, 64, &text, &len, NULL) < 0 || (pid = (pid_t)atoi(text)) <= 1)
		return;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return;
	cmd[n] = '\0';
	if (strcmp(path_basename(cmd), "pasta") == 0 ||
	    strncmp(path_basename(cmd), "passt", 5) == 0)
		kill(pid, SIGTERM);
}

/* Waits until the process behind pidfd has exited (up to timeout_ms). */
/* A signal (a Ctrl-C forwarded to the worker while it tears down) does not cut the
 * wait short: that would report a living init and fail a finished trial's teardown. */
static bool wait_pidfd(int pidfd, int timeout_ms)
{
	struct pollfd pf = {.fd = pidfd, .events = POLLIN};
	double deadline = mono_now() + timeout_ms / 1000.0;
	int r;

	for (;;) {
		int left = (int)((deadline - mono_now()) * 1000.0);

		r = poll(&pf, 1, left > 0 ? left : 0);
		if (r >= 0 || errno != EINTR)
			return r == 1;
	}
}

int sandbox_env_teardown(struct sandbox_env *env, struct err *err)
{
	char *trash = NULL;
	int rc = 0, quota_fd = quota_env_hold(env);

	/* No pid namespace takes the processes with the init at that level. */
	if (env->isolation == SANDBOX_CHROOT && chroot_teardown_processes(env, err) < 0)
		rc = -1;

	if (env->sync_fd >= 0) {
		close(env->sync_fd);
		env->sync_fd = -1;
	}
	sandbox_env_drop_exec_cgroup(env);
	if (env->root_fd >= 0) {
		close(env->root_fd);
		env->root_fd = -1;
	}
	if (env->pidfd < 0 && state_init_alive(env)) {
		env->pidfd = sys_pidfd_open(env->init_pid);
		/* The pid may have been reused between the check and the open. */
		if (env->pidfd >= 0 && !state_init_alive(env)) {
			close(env->pidfd);
			env->pidfd = -1;
		}
	}
	/* Killing pid 1 kills every process of the pid namespace; the kernel reaps
	 * them before the init itself is gone. */
	if (env->pidfd >= 0)
		sys_pidfd_send_signal(env->pidfd, SIGKILL);
	if (env->network && strcmp(env->network, "pasta") == 0)
		stop_pasta(env);
	/* The name is free again as soon as the directory is out of the way. Files
	 * of subordinate users are only removable from a namespace mapping them:
	 * that is done here, while the init dies. */
	if (env->subids) {
		if (rm_rf(env->dir, NULL) < 0 && userns_rm_rf(env->dir, rc < 0 ? NULL : err) < 0)
			rc = -1;
	} else if (!(trash = reaper_trash(env->dir)) && rm_rf(env->dir, rc < 0 ? NULL : err) < 0) {
		rc = -1;
	}
	if (env->dir_fd >= 0) {
		close(env->dir_fd);
		env->dir_fd = -1;
	}
	cg_env_thaw(&env->cg);
	if (env->pidfd >= 0) {
		/* Bounded: a process stuck in the kernel must not hang rollout. */
		if (!wait_pidfd(env->pidfd, 10000) && rc == 0)
			rc = err_set(err, ETIMEDOUT, "environment %s: init %d did not exit",
			             env->name, (int)env->init_pid);
		else if (env->owner)
			waitpid(env->init_pid, NULL, WNOHANG); /* our child: reap it */
		close(env->pidfd);
		env->pidfd = -1;
	}
	if (cg_env_destroy(&env->cg, rc < 0 ? NULL : err) < 0)
		rc = -1;
	/* Nothing writes any more: the limit goes (the files still charged to the
	 * project, the trash and the trial's logs, keep its ID from reuse). */
	quota_dir_release(quota_fd);
	/* No process is left: the namespace (which we hold, so the init's exit did
	 * not have to unmount it) and the directory go on the reaper thread. */
	if (env->mntns_fd >= 0 || trash) {
		reaper_add(env->mntns_fd, trash);
		env->mntns_fd = -1;
	}
	return rc;
}

int sandbox_env_connect(const struct sandbox_env *env, struct err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int dfd = -1;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return err_sys(err, "socket");
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/ctl.sock", env->dir) >=
	    (int)sizeof(sa.sun_path)) {
		dfd = open(env->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/ctl.sock", dfd);
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err_sys(err, "environment %s: connect to its init", env->name);
		close(fd);
		return -1;
	}
	return fd;
}

int sandbox_env_root_fd(struct sandbox_env *env, struct err *err)
{
	_cleanup_close_ int c = -1;
	struct ctl_msg m = {.type = CTL_ROOT};
	int fds[1], nfds = 1;

	if (__atomic_load_n(&env->root_fd, __ATOMIC_ACQUIRE) >= 0)
		return env->root_fd;
	c = sandbox_env_connect(env, err);
	if (c < 0)
		return -1;
	if (ctl_send(c, &m, sizeof(m), NULL, 0) < 0)
		return err_sys(err, "environment %s: request", env->name);
	if (ctl_recv(c, &m, sizeof(m), fds, &nfds) <= 0 || m.type != CTL_ROOTFD || nfds != 1) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return err_set(err, EIO, "environment %s: no root from its init", env->name);
	}
	/* Two threads may have asked at once: the first one's fd is kept. */
	{
		int none = -1;

		if (!__atomic_compare_exchange_n(&env->root_fd, &none, fds[0], false,
		                                 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			close(fds[0]);
	}
	return env->root_fd;
}
