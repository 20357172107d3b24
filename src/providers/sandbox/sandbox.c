/* The sandbox provider: rollout's own daemonless runtime behind provider.h. */
#include "providers/sandbox/sandbox.h"
#include "providers/probe.h"
#include "providers/provider.h"
#include "providers/sandbox/cgroup.h"
#include "providers/sandbox/sandbox_build.h"
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
#include <sys/stat.h>
#include <unistd.h>

static int remove_leftover(const char *envs, const char *name, struct err *err);

static int sandbox_op_prepare_image(const struct env_config *cfg, char **ref, struct err *err)
{
	return sandbox_image_prepare(cfg, SANDBOX_FULL, ref, err);
}

static int chroot_prepare_image(const struct env_config *cfg, char **ref, struct err *err)
{
	return sandbox_image_prepare(cfg, SANDBOX_CHROOT, ref, err);
}

/* A killed run's environment of the same name (resume reruns unfinished trials
 * under their names) is removed first, as gc would; a live one stays a conflict. */
static int start_level(const char *ref, const struct env_config *cfg, enum sandbox_isolation iso,
                       struct environment **out, struct err *err)
{
	_cleanup_free_ char *envs = sandbox_envs_dir();
	struct sandbox_env *env;

	if (cfg->env_name && sandbox_check_name(cfg->env_name, NULL) == 0 &&
	    remove_leftover(envs, cfg->env_name, err) < 0)
		return err_wrap(err, "remove the leftover environment %s", cfg->env_name);
	if (sandbox_start_from_store(ref, cfg, iso, &env, err) < 0)
		return -1;
	*out = &env->base;
	return 0;
}

static int sandbox_op_start(const char *ref, const struct env_config *cfg, struct environment **out,
                            struct err *err)
{
	return start_level(ref, cfg, SANDBOX_FULL, out, err);
}

static int chroot_start(const char *ref, const struct env_config *cfg, struct environment **out,
                        struct err *err)
{
	return start_level(ref, cfg, SANDBOX_CHROOT, out, err);
}

static int sandbox_op_exec(struct environment *env, const struct exec_request *req,
                           struct exec_result *res, struct err *err)
{
	return sandbox_exec(sandbox_env_of(env), req, res, err);
}

static int sandbox_op_upload(struct environment *env, int host_fd, const char *env_path,
                             unsigned flags, struct err *err)
{
	int root = sandbox_env_root_fd(sandbox_env_of(env), err);

	return root < 0 ? -1 : copy_upload(root, host_fd, env_path, flags, err);
}

static int sandbox_op_download(struct environment *env, const char *env_path,
                               const struct cdir *dest, const char *dest_rel,
                               const struct copy_limits *lim, struct copy_report *rep,
                               struct err *err)
{
	int root = sandbox_env_root_fd(sandbox_env_of(env), err);

	return root < 0 ? -1 : copy_download(root, env_path, dest, dest_rel, lim, rep, err);
}

static int sandbox_op_kill_all(struct environment *env, struct err *err)
{
	return sandbox_kill_all(sandbox_env_of(env), err);
}

static int sandbox_op_open_verifier_dir(struct environment *env, struct err *err)
{
	return sandbox_open_verifier_dir(sandbox_env_of(env), err);
}

static int chroot_verifier_dir(struct environment *env, struct err *err)
{
	return chroot_open_verifier_dir(sandbox_env_of(env), err);
}

static int sandbox_op_usage(struct environment *env, struct env_usage *out, struct err *err)
{
	return quota_env_usage(sandbox_env_of(env), out, err);
}

static int sandbox_op_stop(struct environment *handle, bool destroy, struct err *err)
{
	struct sandbox_env *env = sandbox_env_of(handle);
	int rc = 0;

	if (destroy) {
		rc = sandbox_env_teardown(env, err);
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
	sandbox_env_free(env);
	return rc;
}

static int open_env(const char *name, struct sandbox_env **out, struct err *err)
{
	_cleanup_free_ char *envs = NULL, *dir = NULL;
	struct sandbox_env *env;

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

static int sandbox_op_open(const char *name, struct environment **out, struct err *err)
{
	struct sandbox_env *env;

	if (open_env(name, &env, err) < 0)
		return -1;
	if (!state_init_alive(env)) {
		sandbox_env_free(env);
		return err_set(err, ESRCH, "sandbox environment %s is not running", name);
	}
	*out = &env->base;
	return 0;
}

static void sandbox_op_release(struct environment *env)
{
	sandbox_env_free(sandbox_env_of(env));
}

static int sandbox_op_list(struct env_info **out, size_t *n, struct err *err)
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
		struct sandbox_env *env;
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
		sandbox_env_free(env);
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
	struct sandbox_env *env;
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
		sandbox_env_free(env);
		return 0;
	}
	env->dir_fd = fd;
	log_info("sandbox: removing leftover environment %s", env->name);
	rc = sandbox_env_teardown(env, err) < 0 ? -1 : 1;
	sandbox_env_free(env);
	return rc;
}

static int sandbox_op_gc(struct err *err)
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

static int sandbox_op_prepare(struct err *err)
{
	const struct sock_fprog *prog;

	if (probe_require(&sandbox_host_needs, err) < 0)
		return -1;
	cg_host_get();
	net_prepare();
	/* Here rather than at each start: trial workers are forked from this
	 * process, so a job says it once. */
	quota_warn_unenforced();
	return sandbox_seccomp_prog(&prog, err);
}

/* The full sandbox: namespaces (a user namespace when not root), overlayfs, a new
 * /proc and rollout's seccomp filter; cgroups, subordinate ids (not root) and
 * project quotas when the host has them. */
const struct host_needs sandbox_host_needs = {
    .name = "sandbox",
    .how = "-e sandbox (the default)",
    .refused = "the sandbox's isolation",
    .need =
        {
            [PROBE_USERNS] = NEED_REQ_USER,
            [PROBE_MOUNTNS] = NEED_REQ,
            [PROBE_PIDNS] = NEED_REQ,
            [PROBE_NETNS] = NEED_REQ,
            [PROBE_IPCNS] = NEED_REQ,
            [PROBE_UTSNS] = NEED_REQ,
            [PROBE_OVERLAY] = NEED_REQ,
            [PROBE_PROCFS] = NEED_REQ,
            [PROBE_SECCOMP] = NEED_REQ,
            [PROBE_CGROUPS] = NEED_OPT,
            [PROBE_SUBIDS] = NEED_OPT_USER,
            [PROBE_QUOTA] = NEED_OPT,
        },
};

/* --isolation chroot: chroot itself; the rest only makes it stronger. */
const struct host_needs sandbox_chroot_host_needs = {
    .name = "sandbox, chroot isolation",
    .how = "--isolation chroot",
    .refused = "--isolation chroot",
    .caveat = "the container itself is the boundary: see docs/SANDBOX.md, \"Isolation "
              "levels\", for what it does not protect",
    .need =
        {
            [PROBE_SECCOMP] = NEED_OPT,
            [PROBE_CGROUPS] = NEED_OPT,
            [PROBE_QUOTA] = NEED_OPT,
            [PROBE_CHROOT] = NEED_REQ,
            [PROBE_SETID] = NEED_OPT,
            [PROBE_MKNOD] = NEED_OPT,
        },
};

const struct provider_ops sandbox_provider = {
    .name = "sandbox",
    .logs_mounted = true,
    .image_place = "in rollout's image store",
    .image_provide = {"`rollout image load ARCHIVE` or `rollout image import ROOTFS.tar --tag ",
                      "`"},
    .host_needs = &sandbox_host_needs,
    .prepare = sandbox_op_prepare,
    .prepare_image = sandbox_op_prepare_image,
    .start = sandbox_op_start,
    .exec = sandbox_op_exec,
    .upload = sandbox_op_upload,
    .download = sandbox_op_download,
    .kill_all = sandbox_op_kill_all,
    .open_verifier_dir = sandbox_op_open_verifier_dir,
    .usage = sandbox_op_usage,
    .stop = sandbox_op_stop,
    .open = sandbox_op_open,
    .release = sandbox_op_release,
    .list = sandbox_op_list,
    .gc = sandbox_op_gc,
    .has_image = sandbox_has_image,
    .entry = sandbox_init_entry, /* the init of both levels */
};

/* --isolation chroot (chroot.c): the same environments on disk, reached the
 * same way once started (exec, copies, open, list, gc go by what state.json
 * records); the start, the verifier's directory and /logs differ: nothing is
 * mounted, so the trial collects /logs by copying them out. */
const struct provider_ops sandbox_chroot_provider = {
    .name = "sandbox-chroot",
    .logs_mounted = false,
    .host_needs = &sandbox_chroot_host_needs,
    .prepare = chroot_prepare,
    .prepare_image = chroot_prepare_image,
    .start = chroot_start,
    .exec = sandbox_op_exec,
    .upload = sandbox_op_upload,
    .download = sandbox_op_download,
    .kill_all = sandbox_op_kill_all,
    .open_verifier_dir = chroot_verifier_dir,
    .usage = sandbox_op_usage,
    .stop = sandbox_op_stop,
    .open = sandbox_op_open,
    .release = sandbox_op_release,
    .list = sandbox_op_list,
    .gc = sandbox_op_gc,
};

/* Test-only, never named by a job (providers/providers.c: ROLLOUT_TEST_PROVIDER=
 * sandbox-copied-logs, or ROLLOUT_TEST_LOGS_COPIED=1 for the sandbox at full
 * isolation): the full sandbox with nothing bind-mounted at /logs. The three
 * directories live in the environment and the trial copies them out
 * (logs_mounted false), the way --isolation chroot and any provider without
 * bind mounts work, on every host the sandbox runs on. */
static int copied_start(const char *ref, const struct env_config *cfg, struct environment **out,
                        struct err *err)
{
	static const char *const open_dirs[] = {ENV_AGENT_DIR, ENV_ARTIFACTS_DIR};
	struct env_config unmounted = *cfg;
	struct err ignored = {0};
	int root;

	unmounted.host_agent_dir = NULL;
	unmounted.host_verifier_dir = NULL;
	unmounted.host_artifacts_dir = NULL;
	if (start_level(ref, &unmounted, SANDBOX_FULL, out, err) < 0)
		return -1;
	/* Writable by any user of the image, as the host directories are. */
	root = sandbox_env_root_fd(sandbox_env_of(*out), err);
	for (size_t i = 0; root >= 0 && i < ARRAY_SIZE(open_dirs); i++) {
		_cleanup_close_ int fd = root_dir_open(root, open_dirs[i], true, 0777, err);

		if (fd < 0 || fchmod(fd, 0777) < 0) {
			if (fd >= 0)
				err_sys(err, "chmod %s", open_dirs[i]);
			root = -1;
		}
	}
	if (root < 0) {
		sandbox_op_stop(*out, true, &ignored);
		*out = NULL;
		return err_wrap(err, "environment %s: /logs", cfg->env_name);
	}
	return 0;
}

const struct provider_ops sandbox_copied_logs_provider = {
    .name = "sandbox-copied-logs",
    .logs_mounted = false,
    .host_needs = &sandbox_host_needs,
    .prepare = sandbox_op_prepare,
    .prepare_image = sandbox_op_prepare_image,
    .start = copied_start,
    .exec = sandbox_op_exec,
    .upload = sandbox_op_upload,
    .download = sandbox_op_download,
    .kill_all = sandbox_op_kill_all,
    .open_verifier_dir = chroot_verifier_dir,
    .usage = sandbox_op_usage,
    .stop = sandbox_op_stop,
    .open = sandbox_op_open,
    .release = sandbox_op_release,
    .list = sandbox_op_list,
    .gc = sandbox_op_gc,
};
