/* The Dockerfile builder: builds a Dockerfile and its context into the image store,
 * with BuildKit's semantics. RUN steps, and the file operations of COPY, ADD and
 * WORKDIR, happen in containers over the current layers with a fresh writable
 * layer; that layer (whiteouts included) becomes the step's image layer. Steps are
 * cached in the store: a step whose parent, instruction and (COPY/ADD) source
 * contents are unchanged is reused without running.
 *
 * The containers come from a runner (struct build_runner) supplied by the caller,
 * so this file does not depend on the sandbox runtime: the sandbox provider's
 * sandbox_build_runner() is the real one. */
#ifndef ROLLOUT_IMAGE_BUILD_H
#define ROLLOUT_IMAGE_BUILD_H

#include <stdbool.h>
#include <stddef.h>

struct err;
struct store;

/* ---- the runner ---- */

struct build_container_spec {
	const char *name;          /* unique; the environment's name */
	const char *image_id;      /* the image these layers are (marked in use); may be NULL */
	const char *const *layers; /* layer directories, bottom first (at least one) */
	size_t n_layers;
	bool userxattr;         /* whiteouts in the user.overlay.* form */
	const char *const *env; /* KEY=VALUE for commands */
	const char *workdir;    /* NULL = "/" */
	const char *user;       /* NULL = root */
	const char *upper_dir;  /* empty directory: the writable layer, kept after stop */
	const char *work_dir;   /* empty directory on the same filesystem (overlay's) */
	bool network;           /* share the host's network (else none) */
	double cpus;            /* limits; 0 = none */
	long long memory_bytes;
	long pids_limit;
};

struct build_exec {
	const char *const *argv;
	const char *cwd;  /* NULL = the container's workdir */
	const char *user; /* NULL = the container's user */
	double timeout_sec;
	/* stdout and stderr, interleaved, as the command writes them (called from
	 * another thread; calls do not overlap). */
	void (*output)(void *ctx, const char *data, size_t len);
	void *output_ctx;
};

struct build_runner {
	/* Starts a container; *handle until stop(). */
	int (*start)(void *ctx, const struct build_container_spec *spec, void **handle,
	             struct err *err);
	/* O_PATH fd of the container's root (owned by the handle). */
	int (*root_fd)(void *handle, struct err *err);
	/* Runs a command; *exit_code is 128+signal when killed. A timeout is an error
	 * (ETIMEDOUT). */
	int (*exec)(void *handle, const struct build_exec *x, int *exit_code, struct err *err);
	/* "uid", "uid:gid", "name", "name:group" resolved in the container's
	 * /etc/passwd and /etc/group (--chown, WORKDIR's owner). */
	int (*resolve_user)(void *handle, const char *spec, unsigned *uid, unsigned *gid,
	                    struct err *err);
	/* Kills every process and frees the handle. The upper directory stays, complete. */
	int (*stop)(void *handle, struct err *err);
	/* Removes a directory an upper layer was in (files of other users included). */
	int (*remove_tree)(void *ctx, const char *dir, struct err *err);
	void *ctx;
};

/* ---- building ---- */

struct build_opts {
	const char *context_dir;
	const char *dockerfile;        /* NULL = <context_dir>/Dockerfile */
	const char *const *tags;       /* references to set; NULL-terminated, may be NULL */
	const char *const *build_args; /* "KEY=VALUE", or "KEY" (value from our environment) */
	const char *target;            /* stage to build; NULL = the last */
	bool no_cache;
	bool network;       /* RUN steps share the host's network */
	double timeout_sec; /* the whole build; 0 = none */
	double cpus;        /* limits for RUN steps; 0 = none */
	long long memory_bytes;
	long pids_limit;
	int log_fd; /* step headers and command output; -1 = none */
	bool quiet; /* only errors and the result in log_fd */
	const struct build_runner *runner;
};

/* Builds; *image_id (heap) is the result, tagged with every tag. On failure nothing
 * is tagged; the error names the step (number, Dockerfile line, instruction), the
 * exit code and the last lines of the output for a failing RUN. */
int image_build(struct store *s, const struct build_opts *o, char **image_id, struct err *err);

#endif
