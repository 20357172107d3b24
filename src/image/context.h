/* Build contexts, shared by both providers' image builds: a task's environment/
 * directory as Docker sees it (.dockerignore applied), written as a tar or hashed,
 * the image name derived from that hash (rollout/<task>:<hash>), and the per-image
 * lock that makes concurrent trials of one task build once. */
#ifndef ROLLOUT_IMAGE_CONTEXT_H
#define ROLLOUT_IMAGE_CONTEXT_H

#include "image/dockerignore.h"
#include "image/tar.h"
#include "rollout/sha256.h"

#include <stdbool.h>

struct err;

/* The context below dir as a tar, in name order, without what .dockerignore
 * excludes (the Dockerfile and .dockerignore are always included). fixed_mtime
 * writes every mtime as 0 (for content hashes). */
int context_write_tar(const char *dir, const struct dockerignore *ignore, bool fixed_mtime,
                      const struct tar_output *out, struct err *err);

/* sha256 of prefix followed by the context tar with fixed mtimes: names, types,
 * modes and contents, not times. */
int context_digest(const char *dir, const struct dockerignore *ignore, const char *prefix,
                   char hex[SHA256_HEX_LEN + 1], struct err *err);

/* A repository name component from a task name: lowercase [a-z0-9] runs joined by
 * '-' ("task" when nothing is left). Heap string. */
char *context_repo_name(const char *task);

/* The image name of a task's build: "rollout/<repo>:<first 16 hex digits>". */
char *context_image_name(const char *task, const char *hex);

/* One build at a time per image name, across trials and rollout processes: an
 * flock on $ROLLOUT_HOME/locks/<kind>-<hash of tag>.lock. Waits (polling, so a
 * cancel or the deadline ends the wait: ECANCELED, ETIMEDOUT); deadline is a
 * mono_now() time, 0 for none. *fd_out holds the lock until closed. */
int context_build_lock(const char *kind, const char *tag, double deadline, int *fd_out,
                       struct err *err);

/* Whether this process (not its parent: a fork starts afresh) has built tag
 * with the builder of kind; add records that it has. force_build rebuilds an
 * image once per process, not once per trial. */
bool context_built_here(const char *kind, const char *tag, bool add);

#endif
