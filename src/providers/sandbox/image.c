/* Glue between the image store and the sandbox: find the task's image in the
 * store, mark it in use by the environment (so a prune keeps it), and start the
 * environment on its unpacked layers. Dockerfile builds are the builder's. */
#include "image/store.h"
#include "providers/provider.h"
#include "providers/sandbox/sandbox.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int sandbox_image_start(const struct env_config *cfg, struct environment **out, struct err *err);

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

int sandbox_image_start(const struct env_config *cfg, struct environment **out, struct err *err)
{
	struct store *s = NULL;
	struct store_image *si = NULL;
	struct sandbox_image img = {0};
	struct mark_ctx mark = {0};
	int rc = -1;

	if (!cfg->docker_image || !*cfg->docker_image || cfg->force_build) {
		if (cfg->environment_dir)
			return err_set(
			    err, ENOSYS,
			    "the sandbox provider cannot build images from a Dockerfile yet; "
			    "set [environment].docker_image");
		return err_set(err, EINVAL, "no image for environment %s", cfg->env_name);
	}
	if (store_open(NULL, &s, err) < 0)
		return err_wrap(err, "image store");
	if (store_lock(s, STORE_LOCK_SHARED, err) < 0)
		goto out;
	mark.locked = true;
	if (store_image_lookup(s, cfg->docker_image, &si, err) < 0) {
		if (err->code == ENOENT)
			err_wrap(err,
			         "image %s is not in the store (rollout image load/import/pull)",
			         cfg->docker_image);
		goto out;
	}
	if (store_whiteout_form(s) == STORE_WHITEOUTS_TRUSTED && geteuid() != 0) {
		err_set(err, EPERM,
		        "image store %s was made by root (trusted.overlay whiteouts): an "
		        "unprivileged user needs its own ROLLOUT_HOME",
		        store_root(s));
		goto out;
	}
	img.ref = cfg->docker_image;
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
	rc = sandbox_start_image(cfg, &img, out, err);
out:
	if (mark.locked)
		store_unlock(s);
	store_image_free(si);
	store_close(s);
	return rc;
}
