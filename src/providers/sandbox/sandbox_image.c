/* Glue between the image store and the sandbox: find the task's image in the
 * store, a task without a prebuilt image built from its environment/ first
 * (sandbox_build.c) (prepare); then mark it in use by the environment (so a prune keeps
 * it), and start the environment on its unpacked layers (start). */
#include "image/pull.h"
#include "image/regsession.h"
#include "image/store.h"
#include "providers/provider.h"
#include "providers/sandbox/sandbox.h"
#include "providers/sandbox/sandbox_build.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static bool has_dockerfile(const char *dir)
{
	_cleanup_free_ char *p = dir ? path_join(dir, "Dockerfile") : NULL;

	return p && path_is_file(p);
}

struct mark_ctx {
	struct store *store;
	const char *id;
	bool locked;
};

/* Mark, then let go of the store lock held since the lookup: from here on a
 * prune sees the image in use. The teardown removes the mark with the
 * environment's directory. */
static int mark_in_use(void *p, const char *env_name, struct err *err)
{
	struct mark_ctx *m = p;
	int rc = store_env_mark(m->store, env_name, m->id, err);

	store_unlock(m->store);
	m->locked = false;
	return rc;
}

/* The image in the store, looked up under the shared store lock (held on
 * return, so a prune waits until the environment marks it in use). */
static int lookup(const char *ref, struct store **s, struct store_image **si, struct err *err)
{
	if (store_open(NULL, s, err) < 0)
		return err_wrap(err, "image store");
	if (store_lock(*s, STORE_LOCK_SHARED, err) < 0)
		return -1;
	if (store_image_lookup(*s, ref, si, err) < 0) {
		store_unlock(*s);
		return -1;
	}
	return 0;
}

int sandbox_image_prepare(const struct env_config *cfg, enum sandbox_isolation iso, char **out,
                          struct err *err)
{
	const char *ref = cfg->docker_image;
	struct store *s = NULL;
	struct store_image *si = NULL;
	int rc;

	/* The setup phase's build (the docker provider's rule): environment/Dockerfile
	 * unless docker_image is given and force_build is not. */
	if (!ref || !*ref || (cfg->force_build && has_dockerfile(cfg->environment_dir))) {
		if (!has_dockerfile(cfg->environment_dir))
			return err_set(
			    err, ENOENT,
			    "task %s has neither [environment].docker_image nor %s/Dockerfile",
			    cfg->task_name ? cfg->task_name : "?",
			    cfg->environment_dir ? cfg->environment_dir : "environment");
		return sandbox_build_task_image(cfg, iso, out, err);
	}
	rc = lookup(ref, &s, &si, err);
	if (rc == 0)
		store_unlock(s);
	store_image_free(si);
	store_close(s);
	if (rc == 0) {
		*out = xstrdup(ref);
		return 0;
	}
	if (err->code == ENOENT) {
		/* Not in the store: pull it, with the user's registry credentials. */
		struct pull_opts po = {.quiet = false, .authorize = regsession_authorize};
		struct err perr = {0};
		_cleanup_free_ char *pulled = NULL;

		log_info("sandbox: image %s is not in the store; pulling it", ref);
		if (store_open(NULL, &s, &perr) == 0) {
			po.authorize_ctx = regsession_new();
			rc = image_pull_ref(s, ref, &po, &pulled, &perr);
			regsession_free(po.authorize_ctx);
			store_close(s);
			s = NULL;
		} else {
			rc = -1;
		}
		if (rc == 0) {
			*out = xstrdup(ref);
			err_clear(err);
			return 0;
		}
		if (perr.code == ECANCELED) {
			*err = perr;
			return -1;
		}
		if (!has_dockerfile(cfg->environment_dir)) {
			*err = perr;
			return err_wrap(err,
			                "image %s is not in the store and could not be pulled "
			                "(rollout image pull/load)",
			                ref);
		}
		log_warn("sandbox: pulling %s failed: %s", ref, perr.msg);
	}
	if (err->code == ENOENT && has_dockerfile(cfg->environment_dir)) {
		/* Not loaded: build environment/ instead (as docker does when it cannot
		 * pull). */
		log_warn("sandbox: image %s is not in the store; building %s/Dockerfile", ref,
		         cfg->environment_dir);
		err_clear(err);
		return sandbox_build_task_image(cfg, iso, out, err);
	}
	if (err->code == ENOENT)
		err_wrap(err, "image %s is not in the store (rollout image load/import)", ref);
	return -1;
}

int sandbox_start_from_store(const char *ref, const struct env_config *cfg,
                             enum sandbox_isolation iso, struct sandbox_env **out, struct err *err)
{
	struct store *s = NULL;
	struct store_image *si = NULL;
	struct sandbox_image img = {0};
	struct mark_ctx mark = {0};
	int rc = -1;

	if (lookup(ref, &s, &si, err) < 0) {
		if (err->code == ENOENT)
			err_wrap(err, "image %s is not in the store (rollout image load/import)",
			         ref);
		goto out;
	}
	mark.locked = true;
	if (store_whiteout_form(s) == STORE_WHITEOUTS_TRUSTED && geteuid() != 0) {
		err_set(err, EPERM,
		        "image store %s was made by root (trusted.overlay whiteouts): an "
		        "unprivileged user needs its own ROLLOUT_HOME",
		        store_root(s));
		goto out;
	}
	img.isolation = iso;
	img.ref = ref;
	img.id = si->id;
	img.layers = (const char *const *)si->layer_dirs;
	img.n_layers = si->n_layers;
	img.env = (const char *const *)si->config.env;
	img.workdir = si->config.working_dir;
	img.user = si->config.user;
	img.userxattr = store_whiteout_form(s) == STORE_WHITEOUTS_USER;
	mark.store = s;
	mark.id = si->id;
	img.mark_in_use = mark_in_use;
	img.mark_ctx = &mark;
	rc = sandbox_start_layers(cfg, &img, out, err);
out:
	if (mark.locked)
		store_unlock(s);
	store_image_free(si);
	store_close(s);
	return rc;
}
