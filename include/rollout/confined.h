/* Confined I/O: every host-side file operation on a directory that an agent or an
 * input could have written into — trial, job and store directories.
 *
 * A `struct cdir` is an open directory the caller trusts (it made it, or the user
 * named it). Every path handed to these functions is relative to one, and is
 * resolved beneath it without following any symlink or magic link and without
 * crossing a mount (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV; a per-component O_NOFOLLOW walk where
 * openat2 is missing or forbidden). On top of that:
 *  - files are read only when they are regular files (checked on an O_PATH fd
 *    before anything opens them for I/O: a planted FIFO or device never blocks
 *    and never reaches a driver), and every read has a size cap;
 *  - files are written through a fresh inode created O_EXCL under an
 *    unpredictable name and renamed over the target, so whatever was planted
 *    there (a symlink, a FIFO, /dev/tty, a hard link to a host file, a directory
 *    tree) is replaced, never followed or written through;
 *  - modes are the caller's, never copied from anything found: setuid, setgid,
 *    sticky and group/other write are masked off (cdir_chmod sets an exact mode
 *    for the few directories that must be writable inside an environment);
 *  - trees an agent built are walked iteratively with bounded memory and
 *    descriptors, whatever their depth.
 * Paths may not be absolute or contain "..". Nothing here is meant for paths
 * inside an environment's root: those are the providers' business. */
#ifndef ROLLOUT_CONFINED_H
#define ROLLOUT_CONFINED_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct err;
struct strv;

struct cdir {
	int fd;     /* O_RDONLY | O_DIRECTORY; -1 when unset */
	char *path; /* for messages only: never resolved again */
};
#define CDIR_INIT                                                                                  \
	{                                                                                          \
		.fd = -1, .path = NULL                                                             \
	}
/* Releasing a zeroed or CDIR_INIT handle does nothing. */

void cdir_release(struct cdir *d);
void cleanup_cdirp(struct cdir *d);
#define _cleanup_cdir_ __attribute__((cleanup(cleanup_cdirp)))

/* A directory named by the user or made by rollout itself (path resolved
 * normally; only what lies below it is untrusted). */
int cdir_open_trusted(const char *path, struct cdir *out, struct err *err);
/* Same, creating it (and missing parents, like mkdir -p) with `mode` first. */
int cdir_make_trusted(const char *path, mode_t mode, struct cdir *out, struct err *err);
int cdir_dup(const struct cdir *d, struct cdir *out, struct err *err);
/* Wraps an fd (taken) with a name for messages. */
void cdir_from_fd(int fd, const char *path, struct cdir *out);
/* "<d->path>/<rel>" for messages. Heap string. */
char *cdir_name(const struct cdir *d, const char *rel);

/* An existing directory beneath d. */
int cdir_sub(const struct cdir *d, const char *rel, struct cdir *out, struct err *err);
/* mkdir -p beneath d (new directories get mode & 0755) and open the last. A
 * component that exists and is not a directory is an error, unless `replace`:
 * then it is removed (whatever it is) and the directory made. out may be NULL. */
int cdir_mkdirs(const struct cdir *d, const char *rel, mode_t mode, bool replace, struct cdir *out,
                struct err *err);

/* lstat beneath d: 0, or -1 with errno (ENOENT when absent). Never follows. */
int cdir_lstat(const struct cdir *d, const char *rel, struct stat *st);
bool cdir_exists(const struct cdir *d, const char *rel);

/* Opens a regular file for reading (blocking fd). A symlink, FIFO, device,
 * socket or directory there is an error (ELOOP / EINVAL); absent is ENOENT.
 * st may be NULL. */
int cdir_open_read(const struct cdir *d, const char *rel, struct stat *st, struct err *err);
/* Whole regular file, at most max bytes (EFBIG beyond). *out is NUL-terminated. */
int cdir_read(const struct cdir *d, const char *rel, size_t max, char **out, size_t *len,
              struct err *err);

/* A new, empty regular file now at rel (replacing anything there): its
 * O_WRONLY fd. The parent directory must exist. */
int cdir_create(const struct cdir *d, const char *rel, mode_t mode, struct err *err);
/* cdir_create + write; cdir_write_atomic also fsyncs the file before the rename
 * and the directory after it (readers see the old or the new content). */
int cdir_write(const struct cdir *d, const char *rel, const void *data, size_t len, mode_t mode,
               struct err *err);
int cdir_write_atomic(const struct cdir *d, const char *rel, const void *data, size_t len,
                      mode_t mode, struct err *err);
/* For logs: the existing file at rel opened O_APPEND when it is a regular file
 * with one link, else a new file replacing whatever is there. */
int cdir_append(const struct cdir *d, const char *rel, mode_t mode, struct err *err);
/* O_RDWR fd of a lock file at rel (created when absent). A symlink, FIFO, device
 * or multiply-linked file there is replaced first. */
int cdir_lockfile(const struct cdir *d, const char *rel, struct err *err);

/* rename(2) between two confined places; no replacing of an existing target
 * unless `replace`. */
int cdir_rename(const struct cdir *from, const char *from_rel, const struct cdir *to,
                const char *to_rel, bool replace, struct err *err);
/* rm -rf beneath d; an absent path is not an error. Iterative: any depth, at
 * most ~40 descriptors. Removing "" or "." is refused (use cdir_clear). */
int cdir_remove(const struct cdir *d, const char *rel, struct err *err);
/* Removes every entry of d itself. */
int cdir_clear(const struct cdir *d, struct err *err);
/* Exact mode of the directory itself. */
int cdir_chmod(const struct cdir *d, mode_t mode, struct err *err);
/* Entry names of the directory (no "." or ".."), sorted; more than max is EFBIG. */
int cdir_list(const struct cdir *d, size_t max, struct strv *out, struct err *err);

/* The same removal on a plain directory fd (for trees inside environments the
 * caller has already confined itself): removes `name` below dirfd. */
int tree_remove_at(int dirfd, const char *name, struct err *err);

/* A symlink target escapes a tree when it is absolute (or empty) or its ".."
 * steps climb above the tree's root, the link sitting `depth` levels below it. */
bool symlink_escapes(const char *target, int depth);

/* ---- Walking a tree an agent or an input built ---- */

/* One directory on a walk's stack. */
struct tree_frame {
	DIR *dir;   /* being read */
	int fd2;    /* a descriptor that travels with it (a copy's target), or -1 */
	int depth;  /* 0 for the walk's root */
	char *what; /* its path for messages (heap), or NULL */
};

/* Called for each entry of f->dir but "." and "..". To descend into a
 * directory, fill child->dir (and fd2, what; the walker sets depth) and return
 * TREE_DESCEND; TREE_NEXT goes on; TREE_STOP ends the walk without an error;
 * -1 ends it with err set. */
enum { TREE_NEXT = 0, TREE_DESCEND = 1, TREE_STOP = 2 };
typedef int (*tree_visit_fn)(void *ctx, const struct tree_frame *f, const char *name,
                             struct tree_frame *child, struct err *err);

/* Depth first from root (taken), iteratively, with at most max_depth frames
 * open at once: descending past that is an ELOOP error, so the descriptors and
 * memory a walk holds are bounded whatever the tree. Frames are released
 * (closedir, close fd2, free what) as the walk leaves them, on errors too. */
int tree_walk(struct tree_frame *root, int max_depth, tree_visit_fn visit, void *ctx,
              struct err *err);
/* A frame for an open directory fd (taken): fdopendir, fd2 and a copy of what. */
int tree_frame_open(struct tree_frame *f, int fd, int fd2, const char *what, struct err *err);

/* ---- Making an agent-written tree safe to hand to host users ---- */

struct sanitize_limits {
	long long max_bytes;  /* total apparent size kept (files beyond are truncated); 0 = none */
	int max_depth;        /* deeper subtrees are removed; 0 = SANITIZE_DEPTH_DEFAULT */
	double deadline;      /* mono_now() value; 0 = none (the walk stops there) */
	bool chown_to_caller; /* as root: hand every entry to the caller's uid/gid */
};
#define SANITIZE_DEPTH_DEFAULT 64

struct sanitize_report {
	long links_removed;   /* absolute symlinks, or relative ones climbing out */
	long special_removed; /* FIFOs, sockets, devices */
	long deep_removed;    /* subtrees below max_depth */
	long modes_fixed;     /* setuid/setgid/sticky/group-other write cleared */
	long owners_fixed;
	long files_truncated; /* over max_bytes */
	long long bytes;      /* apparent size of the regular files kept */
	bool timed_out;       /* the deadline stopped the walk: the tree is not clean */
};

/* Walks the tree of d once no process can write to it any more: removes
 * symlinks that point outside it, FIFOs, sockets and devices, and subtrees
 * deeper than max_depth; clears setuid/setgid/sticky and group/other write on
 * files and directories (d itself becomes 0755); caps the total size (sparse
 * files stay sparse: truncation never fills holes). Returns -1 only when the
 * walk could not be done (the tree must then stay closed to other users). */
int cdir_sanitize(const struct cdir *d, const struct sanitize_limits *lim,
                  struct sanitize_report *rep, struct err *err);

/* ---- Copying into a confined place ---- */

/* Copies the data of regular file `in` into the new file `out` (both fds):
 * holes stay holes (SEEK_DATA/SEEK_HOLE on the source, and runs of zeros from a
 * source without holes are skipped), at most `max` bytes (0 = none; the rest is
 * dropped and *truncated set), stopping at `deadline` (mono_now(), 0 = none:
 * ETIMEDOUT). Returns bytes of apparent size written, or -1 with errno. */
long long copy_data_sparse(int in, int out, long long max, double deadline, bool *truncated);

/* Copies directory `name` of src to the new directory `to` of dst (which must
 * not exist): directories and regular files with masked modes (files are
 * hard-linked when `link_files` and already safe), symlinks only when they stay
 * inside the copy; FIFOs, devices and sockets are left out. Iterative, at
 * most SANITIZE_DEPTH_DEFAULT levels (deeper is an error). */
int cdir_copy_tree(const struct cdir *src, const char *name, const struct cdir *dst, const char *to,
                   bool link_files, struct err *err);

/* For tests: use the per-component walk instead of openat2. */
extern bool cdir_force_walk;

#endif
