/* The builder's store side: the build cache (step key -> image id under
 * $ROLLOUT_HOME/build-cache/), the mark that keeps a running build's images
 * from gc, and committing a stage's image. */
#include "image/build.h"
#include "image/build_internal.h"
#include "image/dockerfile.h"
#include "image/oci.h"
#include "image/store.h"
#include "image/store_internal.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the store: cache, marks, images ---- */

static char *cache_path(struct builder *b, const char *key)
{
	return xasprintf("%s/build-cache/%.2s/%s", store_root(b->s), key, key);
}

/* The image a key maps to: 1 hit (id set, or NULL for "no change"), 0 miss. */
int build_cache_get(struct builder *b, const char *key, char **id)
{
	_cleanup_free_ char *path = cache_path(b, key), *text = NULL;
	struct store_image *img = NULL;
	struct err ignored = {0};

	*id = NULL;
	if (b->o->no_cache || read_file(path, 256, &text, NULL, NULL) < 0)
		return 0;
	text[strcspn(text, "\r\n")] = '\0';
	if (strcmp(text, "-") == 0)
		return 1;
	if (!oci_digest_valid(text) || store_image_lookup(b->s, text, &img, &ignored) < 0)
		return 0;
	store_image_free(img);
	*id = steal_ptr(&text);
	return 1;
}

void build_cache_put(struct builder *b, const char *key, const char *id)
{
	_cleanup_free_ char *path = cache_path(b, key);
	_cleanup_free_ char *tmp = xasprintf("%s.%d.tmp", path, (int)getpid());
	_cleanup_free_ char *dir = xstrndup(path, strlen(path) - SHA256_HEX_LEN - 1);
	_cleanup_free_ char *line = xasprintf("%s\n", id ? id : "-");
	struct err err = {0};

	if (mkdir_p(dir, 0700, &err) < 0 || write_file(tmp, line, strlen(line), 0644, &err) < 0 ||
	    rename(tmp, path) < 0) {
		unlink(tmp);
		log_debug("build cache %s: %s", path, err.msg[0] ? err.msg : strerror(errno));
	}
}

/* envs/<name>/image lists every image the build stands on, so that a prune keeps
 * them; the directory's flock keeps `rollout gc` away from it. */
int build_mark_update(struct builder *b, struct err *err)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	_cleanup_free_ char *file = path_join(b->mark_dir, "image");
	_cleanup_free_ char *tmp = path_join(b->mark_dir, "image.tmp");

	for (size_t i = 0; i < b->n_stages; i++)
		if (b->stages[i].image_id)
			sb_addf(&sb, "%s\n", b->stages[i].image_id);
	if (write_file(tmp, sb_str(&sb), sb.len, 0644, err) < 0)
		return -1;
	if (rename(tmp, file) < 0)
		return err_sys(err, "rename %s", file);
	return 0;
}

int build_mark_create(struct builder *b, struct err *err)
{
	_cleanup_free_ char *envs = path_join(store_root(b->s), "envs");

	b->mark_dir = path_join(envs, b->name);
	if (mkdir_p(envs, 0700, err) < 0)
		return -1;
	if (mkdir(b->mark_dir, 0700) < 0)
		return err_sys(err, "mkdir %s", b->mark_dir);
	b->mark_fd = open(b->mark_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (b->mark_fd < 0 || flock(b->mark_fd, LOCK_EX | LOCK_NB) < 0)
		return err_sys(err, "lock %s", b->mark_dir);
	return 0;
}

void build_mark_remove(struct builder *b)
{
	if (!b->mark_dir)
		return;
	rm_rf(b->mark_dir, NULL);
	if (b->mark_fd >= 0)
		close(b->mark_fd);
	b->mark_fd = -1;
}

/* The stage's state becomes the image id (committed or cached). */
int build_stage_take_image(struct builder *b, struct stage *st, const char *id, struct err *err)
{
	struct store_image *img = NULL;
	const cJSON *cfg;

	if (store_image_lookup(b->s, id, &img, err) < 0)
		return -1;
	cfg = cJSON_GetObjectItemCaseSensitive(img->config.json, "config");
	cJSON_Delete(st->config);
	st->config = cJSON_IsObject(cfg) ? cJSON_Duplicate(cfg, true) : cJSON_CreateObject();
	free(st->image_id);
	st->image_id = xstrdup(img->id);
	strv_release(&st->history);
	store_image_free(img);
	return build_mark_update(b, err);
}

/* Commits the stage's state (plus a layer when layer_fd >= 0) as a new image. */
int build_stage_commit(struct builder *b, struct stage *st, int layer_fd, const char *created_by,
                       struct err *err)
{
	struct store_new_image n = {0};
	_cleanup_free_ char *id = NULL;
	_cleanup_free_ const char **hist = xcalloc(st->history.n + 1, sizeof(char *));

	for (size_t i = 0; i < st->history.n; i++)
		hist[i] = st->history.v[i];
	n.parent = st->image_id;
	n.layer_dirfd = layer_fd;
	n.config = st->config;
	n.created_by = created_by;
	n.history = hist;
	n.intermediate = true;
	n.deadline = b->deadline;
	if (store_create_image(b->s, &n, &id, err) < 0)
		return err_wrap(err, "commit");
	free(st->image_id);
	st->image_id = steal_ptr(&id);
	strv_release(&st->history);
	build_cache_put(b, st->key, st->image_id);
	return build_mark_update(b, err);
}
