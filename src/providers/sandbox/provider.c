/* The sandbox provider: rollout's own daemonless runtime behind provider.h. */
#include "providers/provider.h"
#include "providers/probe.h"
#include "providers/sandbox/build.h"
#include "providers/sandbox/cgroup.h"
#include "providers/sandbox/sandbox.h"
#include "providers/sandbox/security.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static int remove_leftover(const char *envs, const char *name, struct err *err);

/* A killed run's environment of the same name (resume reruns unfinished trials
 * under their names) is removed first, as gc would; a live one stays a conflict. */
static int start_level(const struct env_config *cfg, enum sandbox_isolation iso,
                       struct environment **out, struct err *err)
{
	_cleanup_free_ char *envs = sandbox_envs_dir();

	if (cfg->env_name && sandbox_check_name(cfg->env_name, NULL) == 0 &&
	    remove_leftover(envs, cfg->env_name, err) < 0)
		return err_wrap(err, "remove the leftover environment %s", cfg->env_name);
	return sandbox_image_start(cfg, iso, out, err);
}

static int sb_start(const struct env_config *cfg, struct environment **out, struct err *err)
{
	return start_level(cfg, SANDBOX_FULL, out, err);
}

static int chroot_start(const struct env_config *cfg, struct environment **out, struct err *err)
{
	return start_level(cfg, SANDBOX_CHROOT, out, err);
}

static int sb_exec(struct environment *env, const struct exec_request *req, struct exec_result *res,
                   struct err *err)
{
	return sandbox_exec(env, req, res, err);
}

static int sb_upload(struct environment *env, int host_fd, const char *env_path, unsigned flags,
                     struct err *err)
{
	int root = env_root_fd(env, err);

	return root < 0 ? -1 : copy_upload(root, host_fd, env_path, flags, err);
}

static int sb_download(struct environment *env, const char *env_path, const struct cdir *dest,
                       const char *dest_rel, const struct copy_limits *lim, struct copy_report *rep,
                       struct err *err)
{
	int root = env_root_fd(env, err);

	return root < 0 ? -1 : copy_download(root, env_path, dest, dest_rel, lim, rep, err);
}

static int sb_usage(struct environment *env, struct env_usage *out, struct err *err)
{
	return quota_env_usage(env, out, err);
}

static int sb_stop(struct environment *env, bool destroy, struct err *err)
{
	int rc = 0;

	if (destroy) {
		rc = env_teardown(env, err);
	} else {
		/* Keep: the init must survive us; gc leaves kept environments alone. */
		env->kept = true;
		if (env->sync_fd >= 0) {
			struct ctl_msg m = {.type = SYNC_KEEP};

			if (ctl_send(env->sync_fd, &m, sizeof(m), NULL, 0) < 0)
				rc = err_sys(err, "environment %s: keep", env->name);
		}
		if (rc == 0 && state_write(env, err) < 0)
			rc = -1;
	}
	env_free(env);
	return rc;
}

static int open_env(const char *name, struct environment **out, struct err *err)
{
	_cleanup_free_ char *envs = NULL, *dir = NULL;
	struct environment *env;

	if (sandbox_check_name(name, err) < 0)
		return -1;
	envs = sandbox_envs_dir();
	dir = path_join(envs, name);
	env = xcalloc(1, sizeof(*env));
	if (state_load(dir, env, err) < 0) {
		free(env);
		if (err && err->code == ENOENT)
			return err_set(err, ENOENT, "no sandbox environment named %s", name);
		return -1;
	}
	*out = env;
	return 0;
}

static int sb_open(const char *name, struct environment **out, struct err *err)
{
	struct environment *env;

	if (open_env(name, &env, err) < 0)
		return -1;
	if (!state_init_alive(env)) {
		env_free(env);
		return err_set(err, ESRCH, "sandbox environment %s is not running", name);
	}
	*out = env;
	return 0;
}

static void sb_release(struct environment *env)
{
	env_free(env);
}

static int sb_list(struct env_info **out, size_t *n, struct err *err)
{
	_cleanup_free_ char *envs = sandbox_envs_dir();
	_cleanup_closedir_ DIR *d = opendir(envs);
	struct env_info *infos = NULL;
	size_t count = 0;
	struct dirent *de;

	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : err_sys(err, "open %s", envs);
	while ((de = readdir(d))) {
		struct environment *env;
		struct err ignored = {0};

		if (de->d_name[0] == '.' || open_env(de->d_name, &env, &ignored) < 0)
			continue;
		infos = xrealloc(infos, (count + 1) * sizeof(*infos));
		infos[count].name = xstrdup(env->name);
		infos[count].job_name = xstrdup(env->job_name);
		infos[count].image = xstrdup(env->image_ref);
		infos[count].state = xstrdup(!state_init_alive(env) ? "exited"
		                             : env->kept            ? "kept"
		                                                    : "running");
		infos[count].isolation =
		    xstrdup(env->isolation == SANDBOX_CHROOT ? "chroot" : "full");
		infos[count].created_at = env->created_at;
		count++;
		env_free(env);
	}
	*out = infos;
	*n = count;
	return 0;
}

/* A leftover is an environment whose owner is gone (its flock is free) and that
 * was not kept: remove it, killing its init if it somehow survived. 1 = removed,
 * 0 = not a leftover (or no such directory), -1 = it could not be removed. */
static int remove_leftover(const char *envs, const char *name, struct err *err)
{
	_cleanup_free_ char *dir = path_join(envs, name);
	struct environment *env;
	int fd, rc;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd); /* its owner is alive */
		return 0;
	}
	env = xcalloc(1, sizeof(*env));
	if (state_load(dir, env, err) < 0) {
		/* Died before writing any state: nothing else can exist but the
		 * directory and the limit of its project. */
		free(env);
		quota_dir_release(quota_dir_hold(dir, fd));
		close(fd);
		return rm_rf(dir, err) == 0 ? 1 : -1;
	}
	if (env->kept && state_init_alive(env)) {
		close(fd);
		env_free(env);
		return 0;
	}
	env->dir_fd = fd;
	log_info("sandbox: removing leftover environment %s", env->name);
	rc = env_teardown(env, err) < 0 ? -1 : 1;
	env_free(env);
	return rc;
}

static int sb_gc(struct err *err)
{
	_cleanup_free_ char *envs = sandbox_envs_dir();
	_cleanup_closedir_ DIR *d = opendir(envs);
	struct dirent *de;
	int removed = 0, rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : err_sys(err, "open %s", envs);
	while ((de = readdir(d))) {
		struct err e = {0};
		int r;

		if (de->d_name[0] == '.')
			continue;
		r = remove_leftover(envs, de->d_name, &e);
		if (r < 0) {
			log_warn("sandbox: gc %s: %s", de->d_name, e.msg);
			rc = -1;
		}
		removed += r > 0;
	}
	/* Destroyed environments whose owner died before removing them. */
	removed += reaper_gc();
	if (rc < 0 && removed == 0)
		return err_set(err, EIO, "sandbox gc: some environments could not be removed");
	return removed;
}

static int sb_prepare(struct err *err)
{
	const struct sock_fprog *prog;

	if (probe_require(LEVEL_SANDBOX, err) < 0)
		return -1;
	cg_host_get();
	net_prepare();
	/* Here rather than at each start: trial workers are forked from this
	 * process, so a job says it once. */
	quota_warn_unenforced();
	return sandbox_seccomp_prog(&prog, err);
}

const struct provider_ops sandbox_provider = {
    .name = "sandbox",
    .logs_mounted = true,
    .prepare = sb_prepare,
    .start = sb_start,
    .exec = sb_exec,
    .upload = sb_upload,
    .download = sb_download,
    .kill_all = sandbox_kill_all,
    .open_verifier_dir = sandbox_open_verifier_dir,
    .usage = sb_usage,
    .stop = sb_stop,
    .open = sb_open,
    .release = sb_release,
    .list = sb_list,
    .gc = sb_gc,
    .has_image = sandbox_has_image,
};

/* --isolation chroot (chroot.c): the same environments on disk, reached the
 * same way once started (exec, copies, open, list, gc go by what state.json
 * records); the start, the verifier's directory and /logs differ: nothing is
 * mounted, so the trial collects /logs by copying them out. */
const struct provider_ops sandbox_chroot_provider = {
    .name = "sandbox-chroot",
    .logs_mounted = false,
    .prepare = chroot_prepare,
    .start = chroot_start,
    .exec = sb_exec,
    .upload = sb_upload,
    .download = sb_download,
    .kill_all = sandbox_kill_all,
    .open_verifier_dir = chroot_open_verifier_dir,
    .usage = sb_usage,
    .stop = sb_stop,
    .open = sb_open,
    .release = sb_release,
    .list = sb_list,
    .gc = sb_gc,
};
