/* Resolving paths inside a directory fd as if it were "/": symlinks (absolute or
 * relative) and ".." never lead out of it. openat2(RESOLVE_IN_ROOT) when the kernel
 * has it (5.6+), a component-by-component walk in user space otherwise. */
#ifndef ROLLOUT_IMAGE_INROOT_H
#define ROLLOUT_IMAGE_INROOT_H

#include <stdbool.h>
#include <sys/types.h>

/* Open `path` below `rootfd` (a directory fd, O_PATH is fine) with open(2)
 * `flags` (O_CLOEXEC is always added) and `mode` for O_CREAT. O_NOFOLLOW applies
 * to the last component only, as with openat(2). Magic links (/proc/self/fd/N)
 * are refused. Returns the fd, or -1 with errno set. An empty path or "/" opens
 * the root itself. */
int inroot_open(int rootfd, const char *path, int flags, mode_t mode);

/* Tests set this to exercise the user-space walk on a kernel with openat2. */
extern bool inroot_force_fallback;

#endif
