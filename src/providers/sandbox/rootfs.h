/* An environment's own root directory at --isolation chroot: the image's
 * layers copied into it as overlayfs would stack them, and, for a build step,
 * what changed since as an overlay upper directory (see rootfs.c). */
#ifndef ROLLOUT_SANDBOX_ROOTFS_H
#define ROLLOUT_SANDBOX_ROOTFS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct err;

/* The store's unpacked layers of an image, bottom first. */
struct rootfs_layers {
	const char *const *dirs;
	size_t n;
	bool userxattr; /* opaque directories marked user.overlay.opaque (else trusted.) */
};

struct rootfs_stats {
	long long bytes; /* regular file data */
	long files;
	long dirs;
	long cloned;  /* files whose extents were shared (FICLONE), not copied */
	long skipped; /* device nodes and sockets left out */
};

/* Copies the layers into the empty directory root_fd. Owners are kept when
 * rollout is root; device nodes and sockets of the image are left out. */
int rootfs_flatten(const struct rootfs_layers *ly, int root_fd, struct rootfs_stats *st,
                   struct err *err);

/* What changed in root_fd since `since` (a time taken right after
 * rootfs_flatten; anything whose ctime is not older counts as changed) against
 * the layers, into the empty directory upper_fd in overlayfs form: new and
 * changed entries copied, deleted ones as whiteouts (char 0/0). Paths in
 * exclude (relative, e.g. "proc", "etc/hosts") are left out with all below
 * them; a directory named with a trailing slash ("logs/") is not itself
 * changed, but what changed below it is not left out. */
int rootfs_diff(int root_fd, const struct rootfs_layers *ly, const struct timespec *since,
                const char *const *exclude, int upper_fd, struct err *err);

#endif
