/* Resolving paths inside a directory fd as if it were "/": symlinks (absolute or
 * relative) and ".." never lead out of it. openat2(RESOLVE_IN_ROOT) when the kernel
 * has it (5.6+), a component-by-component walk in user space otherwise. For an
 * environment's root or an image's tree, where the links are the tree's own and
 * must resolve as they would inside it. (Host directories an agent could write
 * into are confined.h's business: there no symlink is followed at all.) */
#ifndef ROLLOUT_INROOT_H
#define ROLLOUT_INROOT_H

#include <stdbool.h>
#include <sys/types.h>

struct err;
struct stat;

/* Open `path` below `rootfd` (a directory fd, O_PATH is fine) with open(2)
 * `flags` (O_CLOEXEC is always added) and `mode` for O_CREAT. O_NOFOLLOW applies
 * to the last component only, as with openat(2). Magic links (/proc/self/fd/N)
 * are refused. Returns the fd, or -1 with errno set. An empty path or "/" opens
 * the root itself. */
int inroot_open(int rootfd, const char *path, int flags, mode_t mode);

/* Who owns the directories inroot_mkdirs creates. */
struct inroot_owner {
	uid_t uid;
	gid_t gid;
};

/* mkdir -p of `path` inside the root: each prefix is resolved inside it (the
 * tree's links count, ".." stops at the root and is never created), each missing
 * component made with `mode` -- exactly `mode`, owned by *owner, when owner is
 * given; else `mode` less the umask. Returns an O_PATH fd of the directory, or -1
 * with err set ("mkdir /a/b: ...", "/a/b: ..."). */
int inroot_mkdirs(int rootfd, const char *path, mode_t mode, const struct inroot_owner *owner,
                  struct err *err);

/* Reading a file of an untrusted tree (an image, a build context, a step's upper
 * directory) without opening it first: open(2) of a FIFO blocks, of a device runs
 * its driver's open (a watchdog arms, a tape rewinds). These check the type on an
 * O_PATH fd and reopen that very inode (/proc/self/fd/N) for reading only when it
 * is a regular file. st is filled in either case; -1 with errno EINVAL when the
 * file is not a regular one. */
int inroot_reopen_regular(int pathfd, struct stat *st);
/* dirfd/name (one component, a last symlink not followed) the same way. */
int inroot_openat_regular(int dirfd, const char *name, struct stat *st);
/* "FIFO", "socket", "character device", ... for messages. */
const char *inroot_type_name(mode_t mode);

/* Tests set this to exercise the user-space walk on a kernel with openat2. */
extern bool inroot_force_fallback;

#endif
