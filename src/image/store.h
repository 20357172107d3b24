/* The local image store: content-addressed blobs, image layers unpacked once (keyed
 * by chain ID) in the overlayfs form, image references, and a lock so that several
 * rollout processes can share it. Used by `rollout image`, the sandbox runtime and
 * the Dockerfile builder.
 *
 * On disk ($ROLLOUT_HOME; default /var/lib/rollout for root, else
 * $XDG_DATA_HOME/rollout, i.e. ~/.local/share/rollout):
 *
 *   store.json                 {"version": 1, "whiteouts": "trusted"|"user"}
 *   lock                       flock(2): shared for readers, exclusive for changes
 *   blobs/sha256/<hex>         image configs (and OCI manifests) by digest
 *   layers/<chain-hex>/diff/   one unpacked layer: an overlayfs lower directory
 *   layers/<chain-hex>/layer.json  {"chain_id", "diff_id", "parent", "size", ...}
 *   images/<id-hex>.json       {"id", "chain_ids": [...], "size", "loaded", ...}
 *   refs.json                  {"refs": {"name:tag": "sha256:<id>"}}
 *   envs/<name>/image          written by an environment: the image ID it runs
 *   tmp/                       work directories of loads in progress
 *
 * The root and the directories below it are 0700 (tightened on open if an older
 * rollout left them open): layers hold setuid files and device nodes of images.
 *
 * A layer directory appears (rename(2) from tmp/) only after its whole content is
 * unpacked and its digests are verified: layers/<chain-hex> existing means complete.
 * layers/<chain-hex> is mode 0555; nothing ever writes below it again.
 *
 * Whiteouts: as root with CAP_SYS_ADMIN the store uses overlayfs' native form
 * (char device 0/0, trusted.overlay.opaque=y); otherwise (an ordinary user, or
 * root in an unprivileged container) the "userxattr" form (char device 0/0,
 * user.overlay.opaque=y): mount with the option userxattr then. The form is fixed
 * when the store is created (store_whiteout_form()).
 *
 * Environments: a process that runs a container from an image marks it used by
 * writing $ROLLOUT_HOME/envs/<env-name>/image containing the image ID
 * (store_env_use), and removes the mark when the environment is gone
 * (store_env_release). `rollout image prune` and `rm` keep images so marked and
 * their layers. To start an environment without racing a prune:
 *	store_lock(s, STORE_LOCK_SHARED); store_image_lookup(...); store_env_use(...);
 *	store_unlock(s); ... mount image->layer_dirs ...
 */
#ifndef ROLLOUT_IMAGE_STORE_H
#define ROLLOUT_IMAGE_STORE_H

#include "image/oci.h"
#include "rollout/strbuf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

struct err;
struct store;

/* ---- opening and locking ---- */

/* The default root ($ROLLOUT_HOME, else the per-user default). Heap string. */
char *store_default_root(void);
/* Open (creating if needed) the store at root, or the default when root is NULL. */
int store_open(const char *root, struct store **out, struct err *err);
void store_close(struct store *s);
const char *store_root(const struct store *s);

enum store_whiteouts {
	STORE_WHITEOUTS_TRUSTED, /* trusted.overlay.opaque: mount as real root */
	STORE_WHITEOUTS_USER,    /* user.overlay.opaque: mount with "userxattr" */
};
enum store_whiteouts store_whiteout_form(const struct store *s);

enum store_lock_mode { STORE_LOCK_SHARED, STORE_LOCK_EXCLUSIVE };
/* Hold the store lock across several calls (they nest: every store_lock needs a
 * store_unlock). The functions below take the lock they need themselves. */
int store_lock(struct store *s, enum store_lock_mode mode, struct err *err);
void store_unlock(struct store *s);

/* ---- images ---- */

/* An image ready to run: its config and its unpacked layers. */
struct store_image {
	char *id;  /* "sha256:<hex>" of the config blob */
	char *ref; /* the reference it was found by (normalized), or NULL */
	struct image_config config;
	char *
	    *layer_dirs; /* absolute paths of layers/<chain>/diff, bottom first; NULL-terminated */
	char **chain_ids;
	size_t n_layers;
	uint64_t size; /* bytes of file content in all layers */
};

/* Find an image by reference ("busybox", "name:tag", "docker.io/library/x:1") or ID
 * ("sha256:<hex>", the hex, or a unique prefix of at least 4 hex digits). Checks
 * that every layer directory exists. ENOENT when there is no such image. */
int store_image_lookup(struct store *s, const char *ref_or_id, struct store_image **out,
                       struct err *err);
void store_image_free(struct store_image *img);

/* "busybox" -> "busybox:latest", "docker.io/library/x" -> "x:latest"; NULL (and an
 * error) for something that is not a reference. */
char *store_normalize_ref(const char *ref, struct err *err);

/* Point ref at an existing image. */
int store_tag(struct store *s, const char *ref_or_id, const char *new_ref, struct err *err);

struct store_image_info {
	char *id;
	char **refs; /* NULL-terminated, maybe empty */
	char *created;
	uint64_t size;
	size_t n_layers;
	bool in_use;       /* by an environment */
	bool intermediate; /* a build step's image without a reference */
};
/* All images, newest load first. */
int store_list(struct store *s, struct store_image_info **out, size_t *n, struct err *err);
void store_list_free(struct store_image_info *v, size_t n);

/* Remove a reference. When the image is left without references and no environment
 * uses it, the image and the layers no other image needs are deleted too. An ID
 * removes every reference to that image. Fails (EBUSY) when an environment uses the
 * image and it would be deleted. */
int store_remove(struct store *s, const char *ref_or_id, struct err *err);

struct store_prune_result {
	size_t images, layers, blobs, tmp;
	uint64_t bytes; /* layer content freed */
};
/* Delete images no reference and no environment uses (nor any such image's
 * descendant: build steps stay with the image built from them), layers no
 * remaining image uses, unreferenced blobs and abandoned tmp/ work directories. */
int store_prune(struct store *s, struct store_prune_result *res, struct err *err);

/* ---- filling the store ---- */

/* `rollout image load`: a docker save archive (legacy, or Docker >= 25 with the OCI
 * layout inside), an OCI image layout (directory or tar); path "-" reads stdin. The
 * archive itself may be gzip-compressed. tag (may be NULL) adds a reference when
 * the archive holds exactly one image. For every image loaded, its references
 * ("name:tag") are appended to loaded, or its ID ("sha256:...") when it has none.
 * Layers already in the store are not unpacked again. Images are committed one by
 * one; an error leaves the store without the failing image and without any of
 * its layers that were not there before. */
int store_load(struct store *s, const char *path, const char *tag, struct strv *loaded,
               struct err *err);

/* `rollout image import`: a plain rootfs tarball (tar or tar.gz; "-" = stdin) becomes
 * a one-layer image. changes are Dockerfile instructions applied to the config:
 * ENV, CMD, ENTRYPOINT, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL. */
int store_import(struct store *s, const char *path, const char *ref, char *const *changes,
                 char **out_id, struct err *err);
/* Apply one --change instruction to an image config document (the top-level JSON
 * with a "config" object). */
int store_apply_change(cJSON *config_doc, const char *change, struct err *err);

/* For the Dockerfile builder: a new image = parent image + (optionally) one new
 * layer made from a directory + a config. The directory is typically the upper dir
 * of an overlay mounted over the parent's layers with redirect_dir=off and
 * metacopy=off, so that it holds whole files; whiteouts and opaque directories in
 * it become OCI .wh. entries of the layer, then overlay form again in the store.
 * The layer is written as a tar in the store's tmp/ (its diff ID is the sha256 of
 * that tar) and unpacked like any other layer. */
struct store_new_image {
	const char *parent;     /* ref or ID of the base image; NULL = FROM scratch */
	int layer_dirfd;        /* an overlayfs upper dir (whiteouts as char 0/0, opaque dirs by
	                        xattr) to add as a layer; -1 = no new layer */
	const cJSON *config;    /* the new "config" object (Env, Cmd, ...); NULL = the parent's */
	const char *created_by; /* history entry */
	const char *ref;        /* reference to set; NULL = none */
	/* created_by of metadata-only steps folded into this image, before its own:
	 * empty_layer history entries. NULL-terminated, may be NULL. */
	const char *const *history;
	/* A build step's image: recorded with its parent; `image ls` hides it while
	 * it has no reference, `prune` keeps it while a kept image descends from it. */
	bool intermediate;
	/* mono_now() after which writing and unpacking the layer stop (ETIMEDOUT,
	 * nothing stored); 0 = none. */
	double deadline;
};
int store_create_image(struct store *s, const struct store_new_image *n, char **out_id,
                       struct err *err);

/* ---- environments ---- */

/* Mark image (ref or ID) as used by environment env_name: writes
 * envs/<env_name>/image. Release deletes that file only. The file may hold several
 * image IDs, one per line (a build marks the images of all its stages). */
int store_env_use(struct store *s, const char *env_name, const char *ref_or_id, struct err *err);
/* The mark itself, for a caller that holds the store lock and has the image ID from
 * a lookup. Not fsync'ed: an environment does not outlive a crash of its owner, and
 * gc removes its directory. */
int store_env_mark(struct store *s, const char *env_name, const char *id, struct err *err);
int store_env_release(struct store *s, const char *env_name, struct err *err);

/* Largest image config the store writes or reads back (4 MiB): a load, import or
 * build with a larger one fails and stores nothing; a larger blob found in the
 * store (written by an older rollout) makes its image unreadable, not listed, and
 * removable with rm or prune. Real configs are a few kilobytes. */
#define STORE_MAX_CONFIG (4 << 20)

/* Limit on one layer's uncompressed size (default 64 GiB; ROLLOUT_MAX_LAYER_SIZE
 * overrides, in bytes). */
uint64_t store_max_layer_size(void);

#endif
