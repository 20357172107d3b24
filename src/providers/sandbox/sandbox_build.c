/* Dockerfile builds on the sandbox runtime (see sandbox_build.h): each step's container is
 * an ordinary environment started on the step's layers, with the builder's upper
 * directory and whole-file copy-up; stop kills it and leaves that directory. */
#include "providers/sandbox/sandbox_build.h"
#include "image/context.h"
#include "image/store.h"
#include "providers/sandbox/sandbox.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- the runner ---- */

struct runner_env {
	struct sandbox_env *env;
	char *image_id;
};

/* The in-use mark of the image the step runs on (store.h's convention). */
static int mark_image(void *ctx, const char *env_name, struct err *err)
{
	const char *id = ctx;
	_cleanup_free_ char *home = sandbox_home();
	_cleanup_free_ char *file = xasprintf("%s/envs/%s/image", home, env_name);
	_cleanup_free_ char *line = xasprintf("%s\n", id);

	return write_file(file, line, strlen(line), 0644, err);
}

static int runner_start(void *ctx, const struct build_container_spec *spec, void **handle,
                        struct err *err)
{
	struct env_config cfg = {0};
	struct sandbox_image img = {0};
	struct runner_env *re = xcalloc(1, sizeof(*re));
	const enum sandbox_isolation *iso = ctx;

	cfg.env_name = spec->name;
	cfg.job_name = "build";
	cfg.task_name = spec->name;
	cfg.cpus = spec->cpus;
	cfg.memory_bytes = spec->memory_bytes;
	cfg.pids_limit = spec->pids_limit;
	cfg.allow_internet = spec->network;
	img.isolation = *iso;
	img.ref = "build";
	img.id = spec->image_id;
	img.layers = spec->layers;
	img.n_layers = spec->n_layers;
	img.env = spec->env;
	img.workdir = spec->workdir;
	img.user = spec->user;
	img.userxattr = spec->userxattr;
	img.upper_dir = spec->upper_dir;
	img.work_dir = spec->work_dir;
	img.whole_files = true;
	if (spec->image_id) {
		re->image_id = xstrdup(spec->image_id);
		img.mark_in_use = mark_image;
		img.mark_ctx = re->image_id;
	}
	if (sandbox_start_layers(&cfg, &img, &re->env, err) < 0) {
		free(re->image_id);
		free(re);
		return -1;
	}
	*handle = re;
	return 0;
}

static int runner_root_fd(void *handle, struct err *err)
{
	struct runner_env *re = handle;

	return sandbox_env_root_fd(re->env, err);
}

static int runner_resolve_user(void *handle, const char *spec, unsigned *uid, unsigned *gid,
                               struct err *err)
{
	struct runner_env *re = handle;
	struct sandbox_user u;
	int root = sandbox_env_root_fd(re->env, err);

	if (root < 0 || users_resolve(root, spec, &u, err) < 0)
		return -1;
	*uid = u.uid;
	*gid = u.gid;
	return 0;
}

struct pump {
	int fd;
	const struct build_exec *x;
};

static void *pump_output(void *p)
{
	struct pump *pu = p;
	char buf[16384];

	for (;;) {
		ssize_t n = read(pu->fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (pu->x->output)
			pu->x->output(pu->x->output_ctx, buf, (size_t)n);
	}
	return NULL;
}

static int runner_exec(void *handle, const struct build_exec *x, int *exit_code, struct err *err)
{
	struct runner_env *re = handle;
	struct exec_request req = EXEC_REQUEST_INIT;
	struct exec_result res;
	struct pump pu = {.x = x};
	pthread_t thread;
	int p[2], rc;

	if (pipe2(p, O_CLOEXEC) < 0)
		return err_sys(err, "pipe");
	/* The exec writes its output into our pipe, read by a thread. */
	pu.fd = p[0];
	if (pthread_create(&thread, NULL, pump_output, &pu) != 0) {
		close(p[0]);
		close(p[1]);
		return err_set(err, EAGAIN, "start the output thread");
	}
	req.argv = x->argv;
	req.cwd = x->cwd;
	req.user = x->user;
	req.timeout_sec = x->timeout_sec;
	req.stdout_fd = p[1];
	req.merge_stderr = true;
	req.output_cap = 1LL << 50;
	req.stdin_fd = -1;
	rc = sandbox_exec(re->env, &req, &res, err);
	close(p[1]);
	pthread_join(thread, NULL);
	close(p[0]);
	if (rc < 0)
		return -1;
	if (res.timed_out)
		return err_set(err, ETIMEDOUT, "timed out after %.0f s", x->timeout_sec);
	*exit_code = res.exit_code;
	return 0;
}

static int runner_stop(void *handle, struct err *err)
{
	struct runner_env *re = handle;
	int rc = sandbox_env_teardown(re->env, err);

	sandbox_env_free(re->env);
	free(re->image_id);
	free(re);
	return rc;
}

static int runner_remove_tree(void *ctx, const char *dir, struct err *err)
{
	(void)ctx;
	if (rm_rf(dir, NULL) == 0)
		return 0;
	/* Files of the image's other users, as an ordinary user with subordinate ids. */
	if (geteuid() != 0)
		return userns_rm_rf(dir, err);
	return rm_rf(dir, err);
}

/* One runner per level: the level travels as the runner's context. */
static const enum sandbox_isolation levels[] = {SANDBOX_FULL, SANDBOX_CHROOT};

#define RUNNER(i)                                                                                  \
	{                                                                                          \
		.start = runner_start, .root_fd = runner_root_fd, .exec = runner_exec,             \
		.resolve_user = runner_resolve_user, .stop = runner_stop,                          \
		.remove_tree = runner_remove_tree, .ctx = (void *)&levels[i],                      \
	}

static const struct build_runner runners[] = {RUNNER(0), RUNNER(1)};

const struct build_runner *sandbox_build_runner(enum sandbox_isolation iso)
{
	return &runners[iso == SANDBOX_CHROOT];
}

/* ---- task images ---- */

static int have_image(struct store *s, const char *ref, struct err *err)
{
	struct store_image *img = NULL;

	if (store_image_lookup(s, ref, &img, err) == 0) {
		store_image_free(img);
		return 1;
	}
	if (err->code == ENOENT) {
		err_clear(err);
		return 0;
	}
	return -1;
}

int sandbox_has_image(const char *ref, struct err *err)
{
	_cleanup_free_ char *root = store_default_root();
	struct store *s = NULL;
	int have;

	if (!path_is_dir(root))
		return 0; /* no store yet: nothing in it, and none made by asking */
	if (store_open(root, &s, err) < 0)
		return -1;
	have = have_image(s, ref, err);
	store_close(s);
	return have;
}

int sandbox_build_task_image(const struct env_config *cfg, enum sandbox_isolation iso,
                             char **ref_out, struct err *err)
{
	struct dockerignore *ignore = NULL;
	struct store *s = NULL;
	char hex[SHA256_HEX_LEN + 1];
	_cleanup_free_ char *tag = NULL, *id = NULL;
	_cleanup_close_ int lock = -1, log_fd = -1;
	double t0 = mono_now();
	double deadline = cfg->build_timeout_sec > 0 ? t0 + cfg->build_timeout_sec : 0;
	const char *tags[2] = {NULL, NULL};
	struct build_opts o = {0};
	int have, rc = -1;

	if (dockerignore_load(cfg->environment_dir, &ignore, err) < 0)
		return -1;
	/* BuildKit's prefix: the docker provider names a BuildKit build of the same
	 * content the same way. */
	rc = context_digest(cfg->environment_dir, ignore, "rollout-docker-build-1 builder=2\n", hex,
	                    err);
	dockerignore_free(ignore);
	if (rc < 0)
		return -1;
	rc = -1;
	tag = context_image_name(cfg->task_name, hex);
	if (store_open(NULL, &s, err) < 0)
		return err_wrap(err, "image store");
	if (!cfg->force_build || context_built_here("sandbox", tag, false)) {
		have = have_image(s, tag, err);
		if (have != 0)
			goto done;
	}
	if (context_build_lock("sandbox-build", tag, deadline, &lock, err) < 0)
		goto out;
	if (!cfg->force_build || context_built_here("sandbox", tag, false)) {
		/* Another trial or process may have built it while we waited. */
		have = have_image(s, tag, err);
		if (have != 0)
			goto done;
	}
	if (cfg->build_log_path) {
		log_fd = open(cfg->build_log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (log_fd < 0)
			log_warn("sandbox: build log %s: %s", cfg->build_log_path, strerror(errno));
	}
	log_info("sandbox: building image %s from %s", tag, cfg->environment_dir);
	if (log_fd >= 0)
		dprintf(log_fd, "rollout: building %s from %s (sandbox builder)\n", tag,
		        cfg->environment_dir);
	tags[0] = tag;
	o.context_dir = cfg->environment_dir;
	o.tags = tags;
	/* As Harbor's (and the docker provider's) builds: the task's network policy is
	 * for its environment, not for building its image; the build cache, which
	 * leaves the network out of its keys, then holds one image either way. */
	o.network = true;
	o.timeout_sec = deadline > 0 ? deadline - mono_now() : 0;
	if (deadline > 0 && o.timeout_sec <= 0.001)
		o.timeout_sec = 0.001;
	o.cpus = cfg->cpus;
	o.memory_bytes = cfg->memory_bytes;
	o.pids_limit = cfg->pids_limit;
	o.log_fd = log_fd;
	o.runner = sandbox_build_runner(iso);
	if (image_build(s, &o, &id, err) < 0) {
		if (cfg->build_log_path) {
			_cleanup_free_ char *msg = xstrdup(err->msg);

			err_set(err, err->code, "%s\n(full output in %s)", msg,
			        cfg->build_log_path);
		}
		goto out;
	}
	if (log_fd >= 0)
		dprintf(log_fd, "rollout: built %s (%s) in %.1f s\n", tag, id, mono_now() - t0);
	context_built_here("sandbox", tag, true);
	have = 1;
done:
	if (have > 0) {
		*ref_out = steal_ptr(&tag);
		rc = 0;
	}
out:
	store_close(s);
	return rc;
}
