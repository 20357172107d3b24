/* Tar archives: a streaming, bounded reader (ustar, GNU and PAX headers), a writer
 * (ustar + PAX when a field does not fit), a root-confined extractor and a writer of
 * host trees. Independent of the image store; the docker provider uses it for
 * container uploads and downloads.
 *
 * Reading:
 *	struct tar_reader *r = tar_reader_new_fd(fd);
 *	const struct tar_entry *e;
 *	while ((ret = tar_reader_next(r, &e, err)) > 0)
 *		... tar_reader_read(r, buf, n, err) for the content of regular files ...
 *	tar_reader_free(r);
 * Extracting: tar_extract(r, dirfd, &opts, err). Writing: tar_writer_new_fd(),
 * tar_writer_header() + tar_writer_data(), or tar_write_tree(); tar_writer_finish(). */
#ifndef ROLLOUT_IMAGE_TAR_H
#define ROLLOUT_IMAGE_TAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct err;

#define TAR_BLOCK_SIZE 512
/* Reader bounds: longer names, bigger extended headers or more xattrs are errors. */
#define TAR_MAX_PATH 4096            /* path and link target, bytes */
#define TAR_MAX_EXT_HEADER (1 << 20) /* one PAX or GNU long-name header */
#define TAR_MAX_XATTRS 128           /* per entry */
#define TAR_MAX_XATTR_VALUE 65536

enum tar_type {
	TAR_REG,
	TAR_HARDLINK,
	TAR_SYMLINK,
	TAR_CHAR,
	TAR_BLOCK,
	TAR_DIR,
	TAR_FIFO,
};

struct tar_xattr {
	char *name;
	void *value;
	size_t len;
};

/* One archive member. Strings are NUL-terminated. Entries returned by the reader
 * are owned by it and valid until the next tar_reader_next(). */
struct tar_entry {
	enum tar_type type;
	char *path;     /* as stored (after PAX/GNU overrides); not cleaned */
	char *linkpath; /* symlink target / hardlink target; NULL for other types */
	uint32_t mode;  /* permission bits with setuid/setgid/sticky (07777) */
	uint64_t uid, gid;
	uint64_t size; /* content bytes; always 0 except for TAR_REG */
	int64_t mtime; /* seconds since the epoch */
	uint32_t mtime_nsec;
	uint32_t devmajor, devminor;
	struct tar_xattr *xattrs;
	size_t n_xattrs;
};

const char *tar_type_name(enum tar_type type);

/* ---- input and output ---------------------------------------------------------- */

/* Where a reader gets bytes. next() hands out the next chunk (valid until the
 * following call) and returns its length; 0 at the end of input; negative on error
 * (err filled). skip() is optional: discard n bytes the reader does not need (e.g.
 * lseek on a seekable file); it is only called when no chunk is outstanding. */
struct tar_input {
	ssize_t (*next)(void *ctx, const uint8_t **data, struct err *err);
	int (*skip)(void *ctx, uint64_t n, struct err *err);
	void *ctx;
};

/* Where a writer puts bytes: write all n bytes or fail. */
struct tar_output {
	int (*write)(void *ctx, const void *data, size_t n, struct err *err);
	void *ctx;
};

/* ---- reader ------------------------------------------------------------------- */

struct tar_reader;

struct tar_reader *tar_reader_new(const struct tar_input *in);
/* Read from an fd (not closed by the reader). Data of unneeded entries is skipped
 * with lseek when the fd is seekable. */
struct tar_reader *tar_reader_new_fd(int fd);
/* Read from memory (not copied; must outlive the reader). */
struct tar_reader *tar_reader_new_mem(const void *data, size_t len);
void tar_reader_free(struct tar_reader *r);

/* Advance to the next entry, skipping unread content of the current one.
 * Returns 1 with *entry set, 0 at the end of the archive, negative on error.
 * Errors: truncated archive, bad checksum, unsupported or malformed headers
 * (sparse files, multi-volume), names longer than TAR_MAX_PATH, ... */
int tar_reader_next(struct tar_reader *r, const struct tar_entry **entry, struct err *err);
/* Content of the current entry without copying: sets *data to up to max bytes.
 * Returns the count, 0 at the end of the content, negative on error (truncation). */
ssize_t tar_reader_data(struct tar_reader *r, const uint8_t **data, size_t max, struct err *err);
/* Copying variant: fills buf with up to n bytes; 0 at the end of the content. */
ssize_t tar_reader_read(struct tar_reader *r, void *buf, size_t n, struct err *err);
/* After tar_reader_next() returned 0: consume whatever follows the end-of-archive
 * marker, so that a digest over the whole input stream is complete. */
int tar_reader_drain(struct tar_reader *r, struct err *err);
/* Input bytes consumed (or skipped) so far; while at an entry, the offset of its
 * content (tar_reader_data_offset). Lets a caller index a seekable archive. */
uint64_t tar_reader_offset(const struct tar_reader *r);
uint64_t tar_reader_data_offset(const struct tar_reader *r);

/* ---- writer ------------------------------------------------------------------- */

struct tar_writer;

struct tar_writer *tar_writer_new(const struct tar_output *out);
/* Buffered writes to fd (not closed by the writer). */
struct tar_writer *tar_writer_new_fd(int fd);
void tar_writer_free(struct tar_writer *w);

/* Write the header(s) of e: ustar, preceded by a PAX header when the path or link
 * target does not fit, the size/ids/times are too large, mtime_nsec is set, or there
 * are xattrs. A TAR_REG entry must be followed by exactly e->size bytes of
 * tar_writer_data(). Directory paths get a trailing '/' when missing. */
int tar_writer_header(struct tar_writer *w, const struct tar_entry *e, struct err *err);
int tar_writer_data(struct tar_writer *w, const void *data, size_t n, struct err *err);
/* Convenience: a regular file from memory. */
int tar_writer_add_file(struct tar_writer *w, const char *path, uint32_t mode, const void *data,
                        size_t len, struct err *err);
/* End-of-archive marker (two zero blocks) and flush. Fails if a file's content
 * is incomplete. */
int tar_writer_finish(struct tar_writer *w, struct err *err);
/* Bytes written so far. */
uint64_t tar_writer_offset(const struct tar_writer *w);

/* ---- host trees ---------------------------------------------------------------- */

enum {
	/* Store owner 0:0 instead of the files' owners (uploads into containers). */
	TAR_TREE_ROOT_OWNER = 1 << 0,
	/* Store xattrs (user.*, trusted.*, security.capability, ...). */
	TAR_TREE_XATTRS = 1 << 1,
	/* The tree is an overlayfs upper dir: write whiteouts (char 0/0) as ".wh.NAME",
	 * opaque dirs (trusted/user.overlay.opaque=y) as "DIR/.wh..wh..opq", drop the
	 * overlay's own xattrs and unescape "trusted.overlay.overlay.X". */
	TAR_TREE_OVERLAY = 1 << 2,
	/* Children in byte order of their names (reproducible archives). */
	TAR_TREE_SORTED = 1 << 3,
};

struct tar_tree_opts {
	unsigned flags;
	/* When >= 0, every entry gets this mtime (reproducible layers). */
	int64_t fixed_mtime;
	/* mono_now() after which writing stops with ETIMEDOUT; 0 = none. */
	double deadline;
};

/* Write the file or directory `path` (relative to dirfd, or absolute) into the
 * archive as `arcname`, recursively, without following symlinks. A directory
 * named arcname "" or "." contributes only its children, named relative to it.
 * Files sharing an inode become hardlinks to the first one written. opts may be
 * NULL (no flags, real mtimes). */
int tar_write_tree(struct tar_writer *w, int dirfd, const char *path, const char *arcname,
                   const struct tar_tree_opts *opts, struct err *err);

/* ---- extractor ------------------------------------------------------------------ */

enum tar_whiteouts {
	/* ".wh.*" names are ordinary files. */
	TAR_WHITEOUTS_KEEP,
	/* OCI whiteouts become overlayfs ones: ".wh.NAME" -> char device 0/0 "NAME",
	 * ".wh..wh..opq" -> xattr trusted.overlay.opaque=y on the directory; the
	 * archive's own trusted.overlay.* xattrs are escaped to trusted.overlay.overlay.*. */
	TAR_WHITEOUTS_OVERLAY,
	/* Same for an overlay mounted with "userxattr": user.overlay.opaque=y, and
	 * user.overlay.* xattrs escaped. */
	TAR_WHITEOUTS_OVERLAY_USER,
};

enum {
	/* lchown to the archive's uid/gid (else files belong to the caller). */
	TAR_X_OWNERS = 1 << 0,
	/* Restore xattrs (security.selinux and system.nfs4_acl are always dropped;
	 * EPERM/ENOTSUP warn once and continue). */
	TAR_X_XATTRS = 1 << 1,
	/* Create char/block devices. Without it (or when not real root) they are
	 * skipped with a warning. */
	TAR_X_DEVICES = 1 << 2,
	/* Keep setuid/setgid bits (else cleared). The sticky bit is always kept. */
	TAR_X_SETID = 1 << 3,
	/* Zero blocks of regular files become holes. */
	TAR_X_SPARSE = 1 << 4,
	/* At max_bytes, stop instead of failing: the file that crosses it is cut
	 * there, the rest of the archive is not read, stats.truncated is set. */
	TAR_X_CAP = 1 << 5,
};

struct tar_extract_opts {
	unsigned flags;
	enum tar_whiteouts whiteouts;
	/* Lower layers (root dir fds, topmost first): a hardlink whose target is not
	 * in this archive is satisfied by copying the target up from the first lower
	 * that has it. Without lowers such a hardlink is an error. */
	const int *lowers;
	size_t n_lowers;
	/* Limits; 0 = none. Exceeding one is an error. */
	uint64_t max_bytes;   /* sum of file sizes */
	uint64_t max_entries; /* archive members */
	double deadline;      /* mono_now() after which extraction stops (ETIMEDOUT) */
	/* Called for every entry before it is created: may rewrite the entry (path,
	 * mode, owner, ...). Return 0 to extract, 1 to skip it, negative to fail. */
	int (*filter)(void *ctx, struct tar_entry *e, struct err *err);
	void *filter_ctx;
};

struct tar_extract_stats {
	uint64_t entries; /* created (not skipped) */
	uint64_t bytes;   /* regular-file content written */
	uint64_t skipped; /* devices not created, filter skips */
	bool truncated;   /* TAR_X_CAP cut content at max_bytes */
};

/* Extract every entry of r below rootfd (a directory fd), never creating or
 * changing anything outside it:
 *  - names are cleaned; a leading '/' is dropped; ".." that climbs above the root
 *    is an error; an entry for the root itself may only be a directory;
 *  - parents are resolved inside the root (inroot_open), missing ones are created
 *    (0755, owner 0:0 or the caller), the last component is never followed;
 *  - an existing object is replaced (a directory is merged with a directory);
 *  - symlinks are written verbatim; hardlink targets are resolved inside the root;
 *  - metadata: owner, then mode, then xattrs, then mtime; directory mtimes are set
 *    after the last entry.
 * Errors name the entry. On failure the directory holds a partial tree: callers
 * that need atomicity extract into a temporary directory. stats may be NULL. */
int tar_extract(struct tar_reader *r, int rootfd, const struct tar_extract_opts *opts,
                struct tar_extract_stats *stats, struct err *err);

/* True when running as root in the initial user namespace (mknod works). */
bool tar_real_root(void);

#endif
