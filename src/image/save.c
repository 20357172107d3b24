/* `rollout image save`, and how the docker provider hands the store's images to a
 * daemon: an image as a docker save archive (the legacy layout every Docker
 * loads: manifest.json, <config hex>.json, <diff hex>/layer.tar).
 *
 * The store keeps layers unpacked, not the tars they came from, so each layer is
 * written again from its directory (overlay whiteouts back to ".wh." entries).
 * That tar is not byte for byte the original, so its digest is a new diff ID:
 * the config's rootfs.diff_ids are rewritten, and the saved image's ID is not the
 * store's. An archive member's size comes before its content, so every layer is
 * walked twice: once to learn its tar's size and digest, once to write it. A
 * complete layer directory never changes, so both walks give the same bytes; the
 * second walk is checked against the first anyway. */
#include "image/store.h"
#include "image/store_internal.h"
#include "image/tar.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/json.h"
#include "rollout/sha256.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where a layer tar goes: counted and hashed, then (second walk) passed on as
 * the content of the outer archive's member. */
struct layer_sink {
	struct sha256 hash;
	uint64_t size;
	struct tar_writer *outer; /* NULL on the first walk */
};

static int layer_sink_write(void *ctx, const void *data, size_t n, struct err *err)
{
	struct layer_sink *k = ctx;

	if (cancel_requested())
		return err_set(err, ECANCELED, "cancelled");
	sha256_update(&k->hash, data, n);
	k->size += n;
	return k->outer ? tar_writer_data(k->outer, data, n, err) : 0;
}

/* One walk of a layer directory into k. */
static int walk_layer(struct store *s, const char *dir, struct layer_sink *k, double deadline,
                      struct err *err)
{
	struct tar_output out = {layer_sink_write, k};
	/* A user's store holds the images' files as that user's (ownership cannot be
	 * kept without root): they are root's in the image, as the sandbox shows them. */
	struct tar_tree_opts to = {
	    .flags = TAR_TREE_OVERLAY | TAR_TREE_XATTRS | TAR_TREE_SORTED |
	             (store_whiteout_form(s) == STORE_WHITEOUTS_USER ? TAR_TREE_ROOT_OWNER : 0),
	    .fixed_mtime = -1,
	    .deadline = deadline};
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct tar_writer *w;
	int ret;

	if (fd < 0)
		return err_sys(err, "open %s", dir);
	w = tar_writer_new(&out);
	ret = tar_write_tree(w, fd, ".", "", &to, err);
	if (ret == 0)
		ret = tar_writer_finish(w, err);
	tar_writer_free(w);
	return ret;
}

struct saved_layer {
	char hex[SHA256_HEX_LEN + 1]; /* digest of the layer tar: the new diff ID */
	uint64_t size;
};

/* First walk of every layer: sizes and digests. */
static int measure_layers(struct store *s, const struct store_image *img,
                          struct saved_layer *layers, double deadline, struct err *err)
{
	for (size_t i = 0; i < img->n_layers; i++) {
		struct layer_sink k = {.outer = NULL};

		sha256_init(&k.hash);
		if (walk_layer(s, img->layer_dirs[i], &k, deadline, err) < 0)
			return err_wrap(err, "layer %zu (%s)", i + 1, img->chain_ids[i]);
		sha256_final_hex(&k.hash, layers[i].hex);
		layers[i].size = k.size;
	}
	return 0;
}

/* The store's config with rootfs.diff_ids naming the rewritten layers. */
static char *saved_config(const struct store_image *img, const struct saved_layer *layers)
{
	_cleanup_json_ cJSON *doc = cJSON_Duplicate(img->config.json, true);
	cJSON *rootfs = cJSON_GetObjectItemCaseSensitive(doc, "rootfs");
	cJSON *ids = cJSON_CreateArray();

	if (!cJSON_IsObject(rootfs)) {
		cJSON_DeleteItemFromObjectCaseSensitive(doc, "rootfs");
		rootfs = cJSON_AddObjectToObject(doc, "rootfs");
		cJSON_AddStringToObject(rootfs, "type", "layers");
	}
	for (size_t i = 0; i < img->n_layers; i++) {
		_cleanup_free_ char *d = xasprintf("sha256:%s", layers[i].hex);

		cJSON_AddItemToArray(ids, cJSON_CreateString(d));
	}
	if (cJSON_HasObjectItem(rootfs, "diff_ids"))
		cJSON_ReplaceItemInObjectCaseSensitive(rootfs, "diff_ids", ids);
	else
		cJSON_AddItemToObject(rootfs, "diff_ids", ids);
	return cJSON_PrintUnformatted(doc);
}

static char *saved_manifest(const char *config_name, const char *tag,
                            const struct saved_layer *layers, size_t n)
{
	_cleanup_json_ cJSON *doc = cJSON_CreateArray();
	cJSON *m = cJSON_CreateObject();
	cJSON *tags = cJSON_AddArrayToObject(m, "RepoTags");
	cJSON *paths;

	cJSON_AddItemToArray(doc, m);
	cJSON_AddStringToObject(m, "Config", config_name);
	if (tag)
		cJSON_AddItemToArray(tags, cJSON_CreateString(tag));
	paths = cJSON_AddArrayToObject(m, "Layers");
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *p = xasprintf("%s/layer.tar", layers[i].hex);

		cJSON_AddItemToArray(paths, cJSON_CreateString(p));
	}
	return cJSON_PrintUnformatted(doc);
}

static bool written_before(const struct saved_layer *layers, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (strcmp(layers[k].hex, layers[i].hex) == 0)
			return true;
	return false;
}

/* Second walk of layer i, as the member <hex>/layer.tar of w. */
static int write_layer(struct store *s, struct tar_writer *w, const struct store_image *img,
                       size_t i, const struct saved_layer *want, double deadline, struct err *err)
{
	struct tar_entry e = {.type = TAR_REG, .mode = 0644, .size = want->size};
	_cleanup_free_ char *name = xasprintf("%s/layer.tar", want->hex);
	struct layer_sink k = {.outer = w};
	char hex[SHA256_HEX_LEN + 1];

	e.path = name;
	sha256_init(&k.hash);
	if (tar_writer_header(w, &e, err) < 0 ||
	    walk_layer(s, img->layer_dirs[i], &k, deadline, err) < 0)
		return err_wrap(err, "layer %zu (%s)", i + 1, img->chain_ids[i]);
	sha256_final_hex(&k.hash, hex);
	if (k.size != want->size || strcmp(hex, want->hex) != 0)
		return err_set(err, EIO,
		               "layer %zu (%s) changed while it was saved (%s, then %s): the "
		               "store was modified under rollout",
		               i + 1, img->chain_ids[i], want->hex, hex);
	return 0;
}

int store_save(struct store *s, const char *ref_or_id, const char *tag,
               const struct tar_output *out, double deadline, char **saved_id, struct err *err)
{
	struct store_image *img = NULL;
	struct saved_layer *layers = NULL;
	_cleanup_free_ char *config = NULL, *config_name = NULL, *manifest = NULL;
	_cleanup_free_ char *norm = NULL;
	char id[SHA256_HEX_LEN + 1];
	struct tar_writer *w = NULL;
	int ret = -1;

	if (tag && !(norm = store_normalize_ref(tag, err)))
		return -1;
	/* Shared for the whole save: a prune (exclusive) cannot remove the layers. */
	if (store_lock(s, STORE_LOCK_SHARED, err) < 0)
		return -1;
	if (store_lookup_locked(s, ref_or_id, &img, err) < 0)
		goto out;
	if (!norm && img->ref)
		norm = xstrdup(img->ref);
	layers = xcalloc(img->n_layers + 1, sizeof(*layers));
	if (measure_layers(s, img, layers, deadline, err) < 0)
		goto out;
	config = saved_config(img, layers);
	sha256_hex(config, strlen(config), id);
	config_name = xasprintf("%s.json", id);
	manifest = saved_manifest(config_name, norm, layers, img->n_layers);
	w = tar_writer_new(out);
	if (tar_writer_add_file(w, config_name, 0644, config, strlen(config), err) < 0)
		goto out;
	for (size_t i = 0; i < img->n_layers; i++)
		if (!written_before(layers, i) &&
		    write_layer(s, w, img, i, &layers[i], deadline, err) < 0)
			goto out;
	if (tar_writer_add_file(w, "manifest.json", 0644, manifest, strlen(manifest), err) < 0 ||
	    tar_writer_finish(w, err) < 0)
		goto out;
	if (saved_id)
		*saved_id = xasprintf("sha256:%s", id);
	ret = 0;
out:
	if (ret < 0)
		err_wrap(err, "save %s", ref_or_id);
	tar_writer_free(w);
	free(layers);
	store_image_free(img);
	store_unlock(s);
	return ret;
}
