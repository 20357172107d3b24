/* Extracting a tar stream below a directory fd without ever touching anything outside
 * it: parents resolved with inroot_open, last components created with *at() calls
 * that do not follow symlinks, metadata in the order owner, mode, xattrs, times. */
#include "image/tar.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/inroot.h"
#include "rollout/log.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

struct dir_meta {
	char *path;
	struct timespec mtime;
	uint32_t mode;
	bool set_mode; /* the mode was widened to 0700 while children were created */
	bool dead;     /* removed by a later entry */
};

struct extractor {
	int rootfd;
	const struct tar_extract_opts *o;
	struct tar_extract_stats st;
	bool owners, xattrs, devices, setid, overlay, widen_dirs;
	const char *opaque_xattr;   /* trusted.overlay.opaque / user.overlay.opaque */
	const char *overlay_prefix; /* xattrs to escape in overlay mode */

	/* The parent directory of the previous entry, resolved. */
	char *cache_path;
	int cache_fd;
	bool cache_stale;

	struct dir_meta *dirs;
	size_t n_dirs, cap_dirs;
};

bool tar_real_root(void)
{
	_cleanup_free_ char *map = NULL;
	unsigned long inside, outside, count;

	/* Not cached: the caller may have entered a user namespace since. */
	if (geteuid() != 0 || read_file("/proc/self/uid_map", 4096, &map, NULL, NULL) < 0 ||
	    sscanf(map, "%lu %lu %lu", &inside, &outside, &count) != 3)
		return false;
	return inside == 0 && outside == 0 && count == 4294967295UL;
}

/* ---- parent directories ---------------------------------------------------------- */

static void cache_drop(struct extractor *x)
{
	if (x->cache_fd >= 0)
		close(x->cache_fd);
	x->cache_fd = -1;
	free(x->cache_path);
	x->cache_path = NULL;
	x->cache_stale = false;
}

static void cache_set(struct extractor *x, const char *path, int fd)
{
	cache_drop(x);
	x->cache_path = xstrdup(path);
	x->cache_fd = fd;
}

/* Open directory `path` (cleaned, relative) inside the root; with create, missing
 * components are made (0755). A component that exists but is not a directory
 * (or a symlink that leads nowhere) is an error. Returns a new fd. */
static int resolve_dir(struct extractor *x, const char *path, bool create, struct err *err)
{
	int fd = inroot_open(x->rootfd, path, O_PATH | O_DIRECTORY, 0);
	_cleanup_close_ int cur = -1;
	const char *p = path;

	if (fd >= 0)
		return fd;
	if (errno != ENOENT || !create)
		return err_sys(err, "resolve directory '%s'", path);
	cur = openat(x->rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return err_sys(err, "open root");
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		_cleanup_free_ char *prefix = xstrndup(path, (size_t)(p - path) + n);
		_cleanup_free_ char *comp = xstrndup(p, n);
		int next = inroot_open(x->rootfd, prefix, O_PATH | O_DIRECTORY, 0);

		if (next < 0 && errno == ENOENT) {
			if (mkdirat(cur, comp, 0755) < 0) {
				if (errno == EEXIST)
					return err_set(
					    err, EEXIST,
					    "cannot create directory '%s': a non-directory "
					    "(or a dangling symlink) is in the way",
					    prefix);
				return err_sys(err, "mkdir '%s'", prefix);
			}
			next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (next >= 0) {
				if (x->owners && fchown(next, 0, 0) < 0 && errno != EPERM)
					return err_sys(err, "chown '%s'", prefix);
				fchmod(next, 0755);
			}
		}
		if (next < 0)
			return err_sys(err, "resolve directory '%s'", prefix);
		close(cur);
		cur = next;
		p += n;
		while (*p == '/')
			p++;
	}
	return steal_fd(&cur);
}

/* The (cached) parent directory fd; owned by the extractor. */
static int open_parent(struct extractor *x, const char *parent, struct err *err)
{
	int fd;

	if (!*parent)
		return x->rootfd;
	if (x->cache_stale)
		cache_drop(x);
	if (x->cache_path && strcmp(x->cache_path, parent) == 0)
		return x->cache_fd;
	fd = resolve_dir(x, parent, true, err);
	if (fd < 0)
		return -1;
	cache_set(x, parent, fd);
	return fd;
}

static void forget_dirs_under(struct extractor *x, const char *path)
{
	size_t n = strlen(path);

	for (size_t i = 0; i < x->n_dirs; i++) {
		const char *d = x->dirs[i].path;

		if (strncmp(d, path, n) == 0 && (d[n] == '\0' || d[n] == '/' || n == 0))
			x->dirs[i].dead = true;
	}
}

/* Remove whatever is at (pfd, name), recursively for directories. */
static int remove_existing(struct extractor *x, int pfd, const char *name, const char *path,
                           struct err *err)
{
	x->cache_stale = true;
	forget_dirs_under(x, path);
	if (unlinkat(pfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno == EISDIR || errno == EPERM) {
		if (rm_rf_at(pfd, name, err) < 0)
			return err_wrap(err, "replace '%s'", path);
		return 0;
	}
	return err_sys(err, "replace '%s'", path);
}

/* ---- metadata ------------------------------------------------------------------- */

static bool is_overlay_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

/* The name under which an archive xattr is stored, or NULL to drop it. */
static char *xattr_target_name(struct extractor *x, const char *name)
{
	if (strcmp(name, "security.selinux") == 0 || strcmp(name, "system.nfs4_acl") == 0)
		return NULL;
	/* The archive must not be able to set overlayfs' own attributes (opaque,
	 * redirect, metacopy): escape them as overlayfs does for nested overlays. */
	if (x->overlay_prefix && str_starts_with(name, x->overlay_prefix))
		return xasprintf("%soverlay.%s", x->overlay_prefix,
		                 name + strlen(x->overlay_prefix));
	return xstrdup(name);
}

static int xattr_failed(const char *name, const char *path, struct err *err)
{
	if (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP || errno == EACCES) {
		log_warn_once("tar-xattr",
		              "cannot set xattr %s on '%s': %s (further xattr errors "
		              "are not reported)",
		              name, path, strerror(errno));
		return 0;
	}
	return err_sys(err, "set xattr %s on '%s'", name, path);
}

/* fd: an open file or directory; else (pfd, name) for symlinks and special files. */
static int apply_xattrs(struct extractor *x, const struct tar_entry *e, int fd, int pfd,
                        const char *name, const char *path, struct err *err)
{
	if (!x->xattrs)
		return 0;
	for (size_t i = 0; i < e->n_xattrs; i++) {
		_cleanup_free_ char *target = xattr_target_name(x, e->xattrs[i].name);
		int ret;

		if (!target)
			continue;
		/* The kernel refuses user.* on anything but files and directories. */
		if (fd < 0 && str_starts_with(target, "user."))
			continue;
		if (fd >= 0) {
			ret = fsetxattr(fd, target, e->xattrs[i].value, e->xattrs[i].len, 0);
		} else {
			/* No fd-relative lsetxattr before setxattrat (6.13): go through the
			 * parent's /proc/self/fd link; name is one component, not followed. */
			_cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d/%s", pfd, name);

			ret = lsetxattr(proc, target, e->xattrs[i].value, e->xattrs[i].len, 0);
		}
		if (ret < 0 && xattr_failed(target, path, err) < 0)
			return -1;
	}
	return 0;
}

static int owner_failed(const char *path, struct err *err)
{
	if (errno == EPERM || errno == EINVAL) {
		log_warn_once("tar-owner", "cannot chown '%s': %s (files keep the caller's owner)",
		              path, strerror(errno));
		return 0;
	}
	return err_sys(err, "chown '%s'", path);
}

static uint32_t entry_mode(struct extractor *x, const struct tar_entry *e)
{
	return e->mode & (x->setid ? 07777 : 01777);
}

/* Owner, mode and xattrs of an open file or directory. */
static int apply_meta_fd(struct extractor *x, const struct tar_entry *e, int fd, bool dir,
                         const char *path, struct err *err)
{
	uint32_t mode = entry_mode(x, e);

	if (x->owners && fchown(fd, (uid_t)e->uid, (gid_t)e->gid) < 0 &&
	    owner_failed(path, err) < 0)
		return -1;
	if (dir && x->widen_dirs)
		mode |= 0700;
	if (fchmod(fd, mode) < 0)
		return err_sys(err, "chmod '%s'", path);
	return apply_xattrs(x, e, fd, -1, NULL, path, err);
}

static void entry_times(const struct tar_entry *e, struct timespec ts[2])
{
	ts[0].tv_sec = ts[1].tv_sec = (time_t)e->mtime;
	ts[0].tv_nsec = ts[1].tv_nsec = e->mtime_nsec;
}

/* Symlinks, devices, fifos: everything through (pfd, name), never following. */
static int apply_meta_at(struct extractor *x, const struct tar_entry *e, int pfd, const char *name,
                         const char *path, struct err *err)
{
	struct timespec ts[2];

	if (x->owners &&
	    fchownat(pfd, name, (uid_t)e->uid, (gid_t)e->gid, AT_SYMLINK_NOFOLLOW) < 0 &&
	    owner_failed(path, err) < 0)
		return -1;
	/* fchmodat follows symlinks; there is no mode to set on a symlink anyway. */
	if (e->type != TAR_SYMLINK && fchmodat(pfd, name, entry_mode(x, e), 0) < 0)
		return err_sys(err, "chmod '%s'", path);
	if (apply_xattrs(x, e, -1, pfd, name, path, err) < 0)
		return -1;
	entry_times(e, ts);
	if (utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(err, "set times of '%s'", path);
	return 0;
}

static void defer_dir(struct extractor *x, const char *path, const struct tar_entry *e)
{
	struct dir_meta *d;

	if (x->n_dirs == x->cap_dirs) {
		x->cap_dirs = x->cap_dirs ? x->cap_dirs * 2 : 64;
		x->dirs = xrealloc(x->dirs, x->cap_dirs * sizeof(*x->dirs));
	}
	d = &x->dirs[x->n_dirs++];
	d->path = xstrdup(path);
	d->mtime.tv_sec = (time_t)e->mtime;
	d->mtime.tv_nsec = e->mtime_nsec;
	d->mode = entry_mode(x, e);
	d->set_mode = x->widen_dirs;
	d->dead = false;
}

/* Directory times last: creating children changes them. */
static int finish_dirs(struct extractor *x, struct err *err)
{
	for (size_t i = x->n_dirs; i-- > 0;) {
		struct dir_meta *d = &x->dirs[i];
		struct timespec ts[2] = {d->mtime, d->mtime};
		_cleanup_close_ int fd = -1;

		if (d->dead)
			continue;
		fd = inroot_open(x->rootfd, d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
		if (fd < 0) /* replaced by a non-directory later in the archive */
			continue;
		if (d->set_mode && fchmod(fd, d->mode) < 0)
			return err_sys(err, "chmod '%s'", d->path);
		if (futimens(fd, ts) < 0)
			return err_sys(err, "set times of '%s'", d->path);
	}
	return 0;
}

/* ---- entries -------------------------------------------------------------------- */

static int set_opaque(struct extractor *x, int dirfd, const char *path, struct err *err)
{
	if (fsetxattr(dirfd, x->opaque_xattr, "y", 1, 0) < 0)
		return err_sys(err, "mark '%s' opaque (%s)", path, x->opaque_xattr);
	return 0;
}

static int extract_dir(struct extractor *x, const struct tar_entry *e, int pfd, const char *name,
                       const char *path, struct err *err)
{
	_cleanup_close_ int fd = -1;
	bool opaque = false;

	if (!*path) {
		fd = openat(x->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else {
		if (mkdirat(pfd, name, 0700) < 0) {
			struct stat st;

			if (errno != EEXIST)
				return err_sys(err, "mkdir '%s'", path);
			if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				return err_sys(err, "stat '%s'", path);
			if (!S_ISDIR(st.st_mode)) {
				/* A whiteout followed by a directory of the same name in one
				 * layer: the new directory hides everything below it. */
				opaque = x->overlay && is_overlay_whiteout(&st);
				if (remove_existing(x, pfd, name, path, err) < 0)
					return -1;
				if (mkdirat(pfd, name, 0700) < 0)
					return err_sys(err, "mkdir '%s'", path);
			}
		}
		fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return err_sys(err, "open directory '%s'", path);
	if (apply_meta_fd(x, e, fd, true, path, err) < 0)
		return -1;
	if (opaque && set_opaque(x, fd, path, err) < 0)
		return -1;
	defer_dir(x, path, e);
	/* Children usually follow their directory. */
	if (*path)
		cache_set(x, path, steal_fd(&fd));
	return 0;
}

/* Writes n bytes at the file's offset; with TAR_X_SPARSE, zero blocks become
 * holes (the caller sets the final size). */
static int write_maybe_sparse(const struct extractor *x, int fd, const uint8_t *p, size_t n)
{
	static const uint8_t zero[4096];

	if (!(x->o->flags & TAR_X_SPARSE))
		return write_all(fd, p, n);
	while (n > 0) {
		size_t k = n < sizeof(zero) ? n : sizeof(zero);

		if (memcmp(p, zero, k) == 0) {
			if (lseek(fd, (off_t)k, SEEK_CUR) < 0)
				return -1;
		} else if (write_all(fd, p, k) < 0) {
			return -1;
		}
		p += k;
		n -= k;
	}
	return 0;
}

static int past_deadline(const struct extractor *x, struct err *err)
{
	if (x->o->deadline > 0 && mono_now() >= x->o->deadline)
		return err_set(err, ETIMEDOUT, "timed out");
	return 0;
}

static int write_content(struct extractor *x, struct tar_reader *r, const struct tar_entry *e,
                         int fd, const char *path, struct err *err)
{
	uint64_t left = e->size, keep = e->size;

	if (x->o->max_bytes && e->size > x->o->max_bytes - x->st.bytes) {
		if (!(x->o->flags & TAR_X_CAP))
			return err_set(err, EFBIG,
			               "content exceeds the limit of %" PRIu64
			               " bytes (file of %" PRIu64 " bytes)",
			               x->o->max_bytes, e->size);
		/* Keep what fits; the rest of this file's content is skipped. */
		keep = x->o->max_bytes - x->st.bytes;
		x->st.truncated = true;
	}
	while (left > 0) {
		const uint8_t *p;
		uint64_t use;
		ssize_t n;

		if (past_deadline(x, err) < 0)
			return -1;
		n = tar_reader_data(r, &p, 1 << 20, err);
		if (n < 0)
			return -1;
		if (n == 0)
			return err_set(err, EIO, "content of '%s' ended early", path);
		use = (uint64_t)n < keep ? (uint64_t)n : keep;
		if (use > 0 && write_maybe_sparse(x, fd, p, (size_t)use) < 0)
			return err_sys(err, "write '%s'", path);
		keep -= use;
		left -= (uint64_t)n;
		if (keep == 0 && left > 0 && x->st.truncated)
			break; /* tar_reader_next skips the rest */
	}
	if ((x->o->flags & TAR_X_SPARSE) || x->st.truncated) {
		off_t end = lseek(fd, 0, SEEK_CUR);

		if (end < 0 || ftruncate(fd, end) < 0)
			return err_sys(err, "size '%s'", path);
		x->st.bytes += (uint64_t)end;
	} else {
		x->st.bytes += e->size;
	}
	return 0;
}

static int extract_file(struct extractor *x, struct tar_reader *r, const struct tar_entry *e,
                        int pfd, const char *name, const char *path, struct err *err)
{
	_cleanup_close_ int fd = -1;
	struct timespec ts[2];

	fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		if (remove_existing(x, pfd, name, path, err) < 0)
			return -1;
		fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return err_sys(err, "create '%s'", path);
	if (write_content(x, r, e, fd, path, err) < 0)
		return -1;
	if (apply_meta_fd(x, e, fd, false, path, err) < 0)
		return -1;
	entry_times(e, ts);
	if (futimens(fd, ts) < 0)
		return err_sys(err, "set times of '%s'", path);
	return 0;
}

static int extract_symlink(struct extractor *x, const struct tar_entry *e, int pfd,
                           const char *name, const char *path, struct err *err)
{
	if (symlinkat(e->linkpath, pfd, name) < 0) {
		if (errno != EEXIST)
			return err_sys(err, "symlink '%s'", path);
		if (remove_existing(x, pfd, name, path, err) < 0)
			return -1;
		if (symlinkat(e->linkpath, pfd, name) < 0)
			return err_sys(err, "symlink '%s'", path);
	}
	return apply_meta_at(x, e, pfd, name, path, err);
}

static int extract_special(struct extractor *x, const struct tar_entry *e, int pfd,
                           const char *name, const char *path, struct err *err)
{
	mode_t type = e->type == TAR_CHAR ? S_IFCHR : e->type == TAR_BLOCK ? S_IFBLK : S_IFIFO;
	dev_t dev = type == S_IFIFO ? 0 : makedev(e->devmajor, e->devminor);

	if (mknodat(pfd, name, type | 0600, dev) < 0) {
		if (errno != EEXIST)
			return err_sys(err, "mknod '%s'", path);
		if (remove_existing(x, pfd, name, path, err) < 0)
			return -1;
		if (mknodat(pfd, name, type | 0600, dev) < 0)
			return err_sys(err, "mknod '%s'", path);
	}
	return apply_meta_at(x, e, pfd, name, path, err);
}

/* Split a cleaned path into parent and last component (both heap strings). */
static void split_path(const char *path, char **parent, char **base)
{
	const char *slash = strrchr(path, '/');

	*parent = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
	*base = xstrdup(slash ? slash + 1 : path);
}

static int copy_fd_data(int src, int dst, const char *path, struct err *err)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(src, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys(err, "read '%s' from a lower layer", path);
		if (n == 0)
			return 0;
		if (write_all(dst, buf, (size_t)n) < 0)
			return err_sys(err, "copy up '%s'", path);
	}
}

static int copy_xattrs(int src, int dst, const char *path, struct err *err)
{
	char names[65536];
	ssize_t len = flistxattr(src, names, sizeof(names));

	if (len < 0)
		return 0;
	for (char *n = names; n < names + len; n += strlen(n) + 1) {
		char value[TAR_MAX_XATTR_VALUE];
		ssize_t vlen = fgetxattr(src, n, value, sizeof(value));

		if (vlen >= 0 && fsetxattr(dst, n, value, (size_t)vlen, 0) < 0 &&
		    xattr_failed(n, path, err) < 0)
			return -1;
	}
	return 0;
}

/* Symlinks are copied as symlinks: the target text is never followed. */
static int copy_up_symlink(struct extractor *x, int lpfd, const char *tbase, const struct stat *st,
                           const char *tparent, const char *target, struct err *err)
{
	char link[PATH_MAX];
	ssize_t n = readlinkat(lpfd, tbase, link, sizeof(link) - 1);
	_cleanup_close_ int pfd = -1;
	struct timespec ts[2] = {st->st_atim, st->st_mtim};

	if (n < 0)
		return err_sys(err, "read symlink '%s' in a lower layer", target);
	link[n] = '\0';
	pfd = resolve_dir(x, tparent, true, err);
	if (pfd < 0)
		return -1;
	if (symlinkat(link, pfd, tbase) < 0)
		return err_sys(err, "copy up '%s'", target);
	if (fchownat(pfd, tbase, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0 &&
	    owner_failed(target, err) < 0)
		return -1;
	utimensat(pfd, tbase, ts, AT_SYMLINK_NOFOLLOW);
	return 0;
}

/* A hardlink's target is not in this layer: copy it up from the first lower layer
 * that has it (what overlayfs does when linking to a lower file). */
static int copy_up(struct extractor *x, const char *target, struct err *err)
{
	_cleanup_free_ char *tparent = NULL, *tbase = NULL;

	split_path(target, &tparent, &tbase);
	for (size_t i = 0; i < x->o->n_lowers; i++) {
		_cleanup_close_ int lpfd =
		    inroot_open(x->o->lowers[i], tparent, O_PATH | O_DIRECTORY, 0);
		_cleanup_close_ int src = -1, dst = -1, pfd = -1;
		struct stat st;
		struct timespec ts[2];

		if (lpfd < 0 || fstatat(lpfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (is_overlay_whiteout(&st))
			break; /* deleted in this lower: not visible below it either */
		if (S_ISLNK(st.st_mode))
			return copy_up_symlink(x, lpfd, tbase, &st, tparent, target, err);
		if (!S_ISREG(st.st_mode))
			return err_set(
			    err, ENOTSUP,
			    "hardlink target '%s' is a %s in a lower layer; only files and "
			    "symlinks can be copied up",
			    target, S_ISDIR(st.st_mode) ? "directory" : "special file");
		src = inroot_openat_regular(lpfd, tbase, &st);
		if (src < 0)
			return err_sys(err, "open '%s' in a lower layer", target);
		pfd = resolve_dir(x, tparent, true, err);
		if (pfd < 0)
			return -1;
		dst =
		    openat(pfd, tbase, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (dst < 0)
			return err_sys(err, "copy up '%s'", target);
		if (copy_fd_data(src, dst, target, err) < 0)
			return -1;
		if (fchown(dst, st.st_uid, st.st_gid) < 0 && owner_failed(target, err) < 0)
			return -1;
		if (fchmod(dst, st.st_mode & 07777) < 0)
			return err_sys(err, "chmod '%s'", target);
		if (x->xattrs && copy_xattrs(src, dst, target, err) < 0)
			return -1;
		ts[0] = st.st_atim;
		ts[1] = st.st_mtim;
		futimens(dst, ts);
		return 0;
	}
	return err_set(err, ENOENT,
	               "hardlink target '%s' is neither in this archive nor in a lower layer",
	               target);
}

static int extract_hardlink(struct extractor *x, const struct tar_entry *e, int pfd,
                            const char *name, const char *path, struct err *err)
{
	_cleanup_free_ char *target = path_clean_relative(e->linkpath);
	_cleanup_free_ char *tparent = NULL, *tbase = NULL;
	_cleanup_close_ int tpfd = -1;
	struct stat tst, st;

	if (!target)
		return err_set(err, EPERM, "hardlink target '%s' is outside the root", e->linkpath);
	if (!*target)
		return err_set(err, EPERM, "hardlink to the root directory");
	split_path(target, &tparent, &tbase);
	tpfd = inroot_open(x->rootfd, tparent, O_PATH | O_DIRECTORY, 0);
	if (tpfd < 0 || fstatat(tpfd, tbase, &tst, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			return err_sys(err, "hardlink target '%s'", target);
		if (x->o->n_lowers == 0)
			return err_set(err, ENOENT, "hardlink target '%s' is not in the archive",
			               target);
		if (copy_up(x, target, err) < 0)
			return -1;
		if (tpfd < 0)
			tpfd = inroot_open(x->rootfd, tparent, O_PATH | O_DIRECTORY, 0);
		if (tpfd < 0 || fstatat(tpfd, tbase, &tst, AT_SYMLINK_NOFOLLOW) < 0)
			return err_sys(err, "hardlink target '%s' after copy-up", target);
	}
	if (S_ISDIR(tst.st_mode))
		return err_set(err, EPERM, "hardlink to directory '%s'", target);
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (st.st_dev == tst.st_dev && st.st_ino == tst.st_ino)
			return 0;
		if (remove_existing(x, pfd, name, path, err) < 0)
			return -1;
	}
	/* No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself. */
	if (linkat(tpfd, tbase, pfd, name, 0) < 0)
		return err_sys(err, "hardlink '%s' to '%s'", path, target);
	return 0;
}

/* OCI whiteouts in overlay form. */
static int extract_whiteout(struct extractor *x, const struct tar_entry *e, const char *parent,
                            const char *base, struct err *err)
{
	const char *victim = base + 4;
	_cleanup_free_ char *vpath = NULL;
	struct timespec ts[2];
	struct stat st;
	int pfd;

	if (strcmp(base, ".wh..wh..opq") == 0) {
		_cleanup_close_ int dfd = -1;

		pfd = open_parent(x, parent, err);
		if (pfd < 0)
			return -1;
		dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return err_sys(err, "open '%s'", *parent ? parent : "/");
		return set_opaque(x, dfd, *parent ? parent : "/", err);
	}
	if (str_starts_with(base, ".wh..wh.")) /* AUFS metadata (.wh..wh.plnk, ...) */
		return 0;
	if (!*victim || strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0)
		return err_set(err, EINVAL, "invalid whiteout name '%s'", base);
	vpath = *parent ? xasprintf("%s/%s", parent, victim) : xstrdup(victim);
	pfd = open_parent(x, parent, err);
	if (pfd < 0)
		return -1;
	if (fstatat(pfd, victim, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		_cleanup_close_ int dfd = -1;

		/* Whiteouts never delete what the same layer created. A directory of
		 * this layer that also hides the lower one's contents is opaque. */
		if (!S_ISDIR(st.st_mode))
			return 0;
		dfd = openat(pfd, victim, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0)
			return err_sys(err, "open '%s'", vpath);
		return set_opaque(x, dfd, vpath, err);
	}
	if (mknodat(pfd, victim, S_IFCHR, makedev(0, 0)) < 0)
		return err_sys(err, "create whiteout '%s'", vpath);
	if (x->owners &&
	    fchownat(pfd, victim, (uid_t)e->uid, (gid_t)e->gid, AT_SYMLINK_NOFOLLOW) < 0 &&
	    owner_failed(vpath, err) < 0)
		return -1;
	/* The whiteout keeps its entry's time, as every other entry does. */
	entry_times(e, ts);
	if (utimensat(pfd, victim, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(err, "set times of whiteout '%s'", vpath);
	return 0;
}

/* 0 = extracted, 1 = skipped, negative = error. */
static int extract_entry(struct extractor *x, struct tar_reader *r, const struct tar_entry *e,
                         struct err *err)
{
	_cleanup_free_ char *path = path_clean_relative(e->path);
	_cleanup_free_ char *parent = NULL, *base = NULL;
	int pfd;

	if (!path)
		return err_set(err, EPERM, "path leaves the root directory (..)");
	if (!*path) {
		if (e->type != TAR_DIR)
			return err_set(err, EPERM,
			               "the root directory can only be a directory, not a %s",
			               tar_type_name(e->type));
		return extract_dir(x, e, x->rootfd, ".", "", err);
	}
	split_path(path, &parent, &base);
	if (x->overlay && str_starts_with(base, ".wh."))
		return extract_whiteout(x, e, parent, base, err);
	if ((e->type == TAR_CHAR || e->type == TAR_BLOCK) && !x->devices) {
		log_warn_once("tar-devices",
		              "skipping device node '%s' (and any others): device "
		              "nodes are only created as real root",
		              path);
		x->st.skipped++;
		return 1;
	}
	pfd = open_parent(x, parent, err);
	if (pfd < 0)
		return -1;
	switch (e->type) {
	case TAR_DIR:
		return extract_dir(x, e, pfd, base, path, err);
	case TAR_REG:
		return extract_file(x, r, e, pfd, base, path, err);
	case TAR_SYMLINK:
		return extract_symlink(x, e, pfd, base, path, err);
	case TAR_HARDLINK:
		return extract_hardlink(x, e, pfd, base, path, err);
	case TAR_CHAR:
	case TAR_BLOCK:
	case TAR_FIFO:
		return extract_special(x, e, pfd, base, path, err);
	}
	return err_set(err, EINVAL, "unknown entry type");
}

int tar_extract(struct tar_reader *r, int rootfd, const struct tar_extract_opts *opts,
                struct tar_extract_stats *stats, struct err *err)
{
	static const struct tar_extract_opts defaults;
	struct extractor x = {.rootfd = rootfd, .o = opts ? opts : &defaults, .cache_fd = -1};
	int ret = 0;

	x.owners = x.o->flags & TAR_X_OWNERS;
	x.xattrs = x.o->flags & TAR_X_XATTRS;
	x.devices = (x.o->flags & TAR_X_DEVICES) && tar_real_root();
	x.setid = x.o->flags & TAR_X_SETID;
	/* Without CAP_DAC_OVERRIDE a 0555 directory could not receive its children. */
	x.widen_dirs = geteuid() != 0;
	x.overlay = x.o->whiteouts != TAR_WHITEOUTS_KEEP;
	if (x.o->whiteouts == TAR_WHITEOUTS_OVERLAY) {
		x.opaque_xattr = "trusted.overlay.opaque";
		x.overlay_prefix = "trusted.overlay.";
	} else if (x.o->whiteouts == TAR_WHITEOUTS_OVERLAY_USER) {
		x.opaque_xattr = "user.overlay.opaque";
		x.overlay_prefix = "user.overlay.";
	}

	for (;;) {
		const struct tar_entry *ce;
		struct tar_entry e;
		int n = tar_reader_next(r, &ce, err);

		if (n < 0) {
			ret = -1;
			break;
		}
		if (n == 0)
			break;
		if (cancel_requested()) {
			ret = err_set(err, ECANCELED, "extraction cancelled");
			break;
		}
		if (past_deadline(&x, err) < 0) {
			ret = -1;
			break;
		}
		if (x.o->max_entries && x.st.entries + x.st.skipped >= x.o->max_entries) {
			ret =
			    err_set(err, EFBIG, "more than %" PRIu64 " entries", x.o->max_entries);
			break;
		}
		e = *ce;
		if (x.o->filter) {
			int f = x.o->filter(x.o->filter_ctx, &e, err);

			if (f < 0) {
				ret = err_wrap(err, "entry '%s'", ce->path);
				break;
			}
			if (f > 0) {
				x.st.skipped++;
				continue;
			}
		}
		n = extract_entry(&x, r, &e, err);
		if (n < 0) {
			ret = err_wrap(err, "entry '%s'", ce->path);
			break;
		}
		if (x.st.truncated)
			break; /* TAR_X_CAP: nothing more is read */
		if (n == 0)
			x.st.entries++;
	}
	if (ret == 0)
		ret = finish_dirs(&x, err);
	cache_drop(&x);
	for (size_t i = 0; i < x.n_dirs; i++)
		free(x.dirs[i].path);
	free(x.dirs);
	if (stats)
		*stats = x.st;
	return ret;
}
