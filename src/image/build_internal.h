/* Internals of the builder shared by its files: build_driver.c (image_build, the
 * stages, output and helpers), build_cache.c (the build cache, the marks, committing
 * images), build_steps.c (step containers and the instructions) and build_copy.c
 * (the file operations of COPY and ADD). */
#ifndef ROLLOUT_IMAGE_BUILD_INTERNAL_H
#define ROLLOUT_IMAGE_BUILD_INTERNAL_H

#include "image/dockerfile.h"
#include "image/dockerignore.h"
#include "image/store_internal.h"
#include "rollout/json.h"
#include "rollout/sha256.h"
#include "rollout/strbuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct err;

/* One COPY or ADD: what to copy from where, and how. */
struct copy_source {
	char *path; /* as given (expanded); for heredocs the heredoc's name */
	char *data; /* heredoc content (a file named path), or NULL */
	size_t len;
};

struct copy_request {
	const char *what; /* "COPY" or "ADD" for messages */
	int src_root;     /* directory fd sources are resolved below */
	bool context;     /* src_root is the build context: nothing may point outside it,
	                     .dockerignore applies */
	const struct dockerignore *ignore;
	struct copy_source *srcs;
	size_t n_srcs;
	const char *dest; /* absolute container path */
	bool dest_dir;    /* dest names a directory (trailing '/', "." or several sources) */
	bool chown;       /* set owner (else: root, or the source's with preserve_owner) */
	uid_t uid;
	gid_t gid;
	bool preserve_owner; /* --from without --chown keeps the owners */
	bool chmod;
	mode_t mode;
	bool extract; /* ADD: local tar archives are unpacked into dest */
	/* The host ids of the container's root: 0 as root; the caller's own in a
	 * rootless build (a user namespace maps them to 0). */
	uid_t root_uid;
	gid_t root_gid;
	/* mono_now() after which hashing and copying stop with ETIMEDOUT; 0 = none. */
	double deadline;
};

/* Content digest of the sources: names, types, modes, sizes, contents, link
 * targets, owners when they are kept. Fills hex. */
int copy_digest(const struct copy_request *r, char hex[SHA256_HEX_LEN + 1], struct err *err);

/* mkdir -p of an absolute container path below root (links resolved inside the
 * root); directories it creates are 0755 and owned by uid:gid. Returns an O_PATH
 * fd of the directory. */
int copy_mkdir_p(int root, const char *path, uid_t uid, gid_t gid, struct err *err);

/* Copies into the container whose root is dst_root. */
int copy_run(const struct copy_request *r, int dst_root, struct err *err);

/* ---- the builder ---- */

#define TAIL_LINES 15

struct stage {
	char *name;         /* lowercased "AS" name, or NULL */
	size_t first, last; /* its instructions: FROM at first, up to last (exclusive) */
	bool needed;
	bool started, done;
	char *image_id;      /* last image committed for this stage; NULL = nothing yet */
	cJSON *config;       /* the "config" object being built */
	struct strv history; /* metadata steps since image_id */
	char key[SHA256_HEX_LEN + 1];
	/* The variables instructions and RUN see: the image's Env, then every ENV
	 * and every ARG with a value, the later assignment winning (BuildKit's
	 * order: an ARG after an ENV of the same name wins in RUN, not in the
	 * image's Env). NAME=VALUE. */
	struct strv vars;
	struct strv declared; /* every ARG name declared in the stage */
	bool cmd_set;
};

struct tail {
	char *lines[TAIL_LINES];
	int next;
	struct strbuf partial;
	int log_fd;
};

struct builder {
	struct store *s;
	const struct build_opts *o;
	struct dockerfile *df;
	struct stage *stages;
	size_t n_stages;
	struct strv global_args; /* NAME=VALUE */
	struct strv build_args;  /* --build-arg NAME=VALUE */
	struct strv used_args;
	struct dockerignore *ignore;
	int ctx_fd;
	struct store_job job;
	bool have_job;
	char *name; /* "rollout-build-<hex>": prefix of container names, the mark */
	char *mark_dir;
	int mark_fd;
	unsigned seq;
	int step, n_steps;
	double deadline;
	const char *doing; /* what the step was doing, for a timeout: "while copying" */
	struct tail tail;
	char *empty_layer; /* an empty directory: the only "layer" of FROM scratch */
};

/* build_driver.c: output, helpers, stages */
const char *build_auto_arg(const char *name);
void build_config_env(const cJSON *cfg, struct strv *out);
void build_config_set_env(cJSON *cfg, const char *key, const char *value);
int build_expand(struct builder *b, const struct stage *st, const struct df_instr *in,
                 const char *word, char **out, struct err *err);
int build_global_args(struct builder *b, size_t n, struct err *err);
int build_instr_error(struct err *err, struct builder *b, const struct df_instr *in, int code,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void build_key_step(char key[SHA256_HEX_LEN + 1], const char *desc);
void build_on_output(void *ctx, const char *data, size_t len);
void build_out_write(struct builder *b, const char *s, size_t n);
void build_say(struct builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void build_set_item(cJSON *obj, const char *key, cJSON *v);
void build_stage_vars(const struct stage *st, struct strv *out);
cJSON *build_string_array(char *const *v, size_t n);
const char *build_strv_get_kv(const struct strv *sv, const char *key);
bool build_arg_given(struct builder *b, const char *name, char **value);
void build_strv_set_kv(struct strv *sv, const char *key, const char *value);
void build_tail_append(struct tail *t, struct strbuf *msg);
void build_tail_push(struct tail *t);
void build_tail_reset(struct tail *t);

/* build_cache.c: the build cache, marks, images */
int build_cache_get(struct builder *b, const char *key, char **id);
void build_cache_put(struct builder *b, const char *key, const char *id);
int build_mark_create(struct builder *b, struct err *err);
void build_mark_remove(struct builder *b);
int build_mark_update(struct builder *b, struct err *err);
int build_stage_commit(struct builder *b, struct stage *st, int layer_fd, const char *created_by,
                       struct err *err);
int build_stage_take_image(struct builder *b, struct stage *st, const char *id, struct err *err);

/* build_steps.c: the instructions */
int build_do_copy(struct builder *b, struct stage *st, size_t idx, const struct df_instr *in,
                  struct err *err);
int build_do_metadata(struct builder *b, struct stage *st, const struct df_instr *in,
                      struct err *err);
int build_do_run(struct builder *b, struct stage *st, const struct df_instr *in, struct err *err);
int build_do_workdir(struct builder *b, struct stage *st, const struct df_instr *in,
                     struct err *err);
struct stage *build_find_stage(struct builder *b, const char *ref, size_t before);

/* "Dockerfile:12: COPY ...: message" */
#define FERR(err, b, in, code, ...) build_instr_error(err, b, in, code, __VA_ARGS__)

#endif
