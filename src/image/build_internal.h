/* Internals of the builder shared by build.c (steps, stages, cache) and
 * build_copy.c (the file operations of COPY and ADD). */
#ifndef ROLLOUT_IMAGE_BUILD_INTERNAL_H
#define ROLLOUT_IMAGE_BUILD_INTERNAL_H

#include "image/dockerignore.h"
#include "rollout/sha256.h"

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

#endif
