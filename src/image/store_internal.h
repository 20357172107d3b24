/* Store internals shared by store.c (import, build) and archive.c (load): work
 * directories under tmp/, unpacking one layer there, committing an image. */
#ifndef ROLLOUT_IMAGE_STORE_INTERNAL_H
#define ROLLOUT_IMAGE_STORE_INTERNAL_H

#include "image/decompress.h"
#include "image/store.h"

#include <stdbool.h>
#include <stdint.h>

struct store {
	char *root;
	int rootfd;
	int lockfd;
	enum store_lock_mode modes[16]; /* nested store_lock calls */
	int depth;
	int held; /* flock mode held: -1 none, else enum store_lock_mode */
	enum store_whiteouts whiteouts;
};

/* A work directory tmp/<name>/, flock'ed through tmp/<name>.lock while alive so
 * that a prune never removes it. Create with the store lock held (shared is
 * enough). */
struct store_job {
	char *name;
	char *dir; /* absolute */
	int lockfd;
	unsigned n_layers;
};
int store_job_create(struct store *s, struct store_job *j, struct err *err);
void store_job_destroy(struct store *s, struct store_job *j);

/* Where a layer blob is and what it must hash to. */
struct layer_src {
	const char *label; /* for messages: "layer 2 (blobs/sha256/ab...)" */
	int fd;
	uint64_t offset;
	uint64_t length; /* or DECOMPRESS_STREAM */
	bool check_compression;
	enum compression compression; /* when check_compression (from the media type) */
	const char *digest;           /* compressed sha256 to verify, or NULL */
	const char *diff_id;          /* uncompressed sha256 to verify, or NULL */
	double deadline;              /* mono_now() to give up at (ETIMEDOUT); 0 = none */
};

/* A layer of an image being committed: either already in layers/ or unpacked into
 * the job's directory. */
struct prepared_layer {
	char *chain_id;
	char *diff_id;
	char *dir; /* job subdirectory holding diff/; NULL when the layer exists already */
	uint64_t size;
	char *digest;     /* compressed digest, when known */
	char *media_type; /* may be NULL */
};
void prepared_layer_release(struct prepared_layer *l);

/* Whether layers/<chain hex> exists (complete). */
bool store_layer_exists(struct store *s, const char *chain_id);
/* Absolute path of a layer's diff directory (existing or prepared). Heap string. */
char *store_layer_diff_path(struct store *s, const struct prepared_layer *l);

/* Unpack src into a new directory of the job (verifying digests); lowers are the
 * diff directories of the layers below, topmost first (hardlink copy-up). Fills
 * out->dir, diff_id, size, digest. Leaves nothing behind on failure. */
int store_unpack_layer(struct store *s, struct store_job *j, const struct layer_src *src,
                       const int *lowers, size_t n_lowers, struct prepared_layer *out,
                       struct err *err);

/* Move prepared layers into layers/, write the config blob, the image record and
 * the references, all under the exclusive lock. config is the config blob's bytes;
 * manifest (may be NULL) is stored as a blob too. */
struct store_commit {
	const char *config;
	size_t config_len;
	const char *manifest;
	size_t manifest_len;
	struct prepared_layer *layers;
	size_t n_layers;
	char *const *refs;  /* normalized; may be NULL */
	const char *source; /* recorded in the image record, e.g. "load docker-archive x.tar" */
	const char *parent; /* image ID this one was built on (builder), or NULL */
	bool intermediate;  /* a build step's image (see store_new_image) */
};
int store_commit_image(struct store *s, const struct store_commit *c, char **out_id,
                       struct err *err);

/* store_image_lookup with the lock already held. */
int store_lookup_locked(struct store *s, const char *ref_or_id, struct store_image **out,
                        struct err *err);

/* Flags and whiteout mode for extracting layers into this store. */
void store_extract_opts(struct store *s, struct tar_extract_opts *o);

#endif
