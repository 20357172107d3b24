/* Files between the host and an environment. Container paths are resolved inside
 * the environment's root (rollout/inroot.h: openat2 RESOLVE_IN_ROOT, no magic
 * links, or the same walk in user space), and every
 * step below a resolved directory is an *at() call that never follows a symlink,
 * so a link planted by the agent cannot make rollout read or write a host file.
 * The host side of a download is a confined directory (rollout/confined.h):
 * modes are masked, FIFOs and devices are never opened, holes stay holes, and
 * the copy is bounded in size and time. Trees are walked iteratively. */
#include "providers/sandbox/sandbox.h"
#include "providers/sandbox/sys.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/inroot.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 128

/* O_PATH directory fd of path inside the root, creating missing components. */
static int root_open_dir(int root_fd, const char *path, bool create, mode_t mode, struct err *err)
{
	int fd;

	if (create)
		return inroot_mkdirs(root_fd, path, mode, NULL, err);
	fd = inroot_open(root_fd, path, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return err_sys(err, "%s", path);
	return fd;
}

int root_mkdir_p(int root_fd, const char *env_path, mode_t mode, struct err *err)
{
	int fd = root_open_dir(root_fd, env_path, true, mode, err);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

int root_dir_open(int root_fd, const char *env_path, bool create, mode_t mode, struct err *err)
{
	_cleanup_close_ int opath = root_open_dir(root_fd, env_path, create, mode, err);
	char p[32];
	int fd;

	if (opath < 0)
		return -1;
	fd = open(sys_fd_path(p, opath), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, "open %s", env_path);
	return fd;
}

/* Splits "/a/b/c" into a parent directory fd (inside the root, opened for
 * *at() calls) and "c". */
static int root_parent(int root_fd, const char *path, bool create, char **base, struct err *err)
{
	_cleanup_free_ char *copy = xstrdup(path);
	_cleanup_close_ int opath = -1;
	size_t n = strlen(copy);
	char *slash, p[32];
	int fd;

	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	slash = strrchr(copy, '/');
	*base = xstrdup(slash ? slash + 1 : copy);
	if (!**base || strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0) {
		free(*base);
		*base = NULL;
		return err_set(err, EINVAL, "%s: not a file path", path);
	}
	if (slash)
		slash[1] = '\0';
	else
		copy[0] = '\0';
	opath = root_open_dir(root_fd, copy, create, 0755, err);
	if (opath < 0)
		return -1;
	fd = open(sys_fd_path(p, opath), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, "open %s", path);
	return fd;
}

static int copy_fd(int in, int out)
{
	char buf[65536];
	ssize_t r;

	for (;;) {
		ssize_t s = sendfile(out, in, NULL, 1 << 30);

		if (s > 0)
			continue;
		if (s == 0)
			return 0;
		if (errno != EINVAL && errno != ENOSYS)
			return -1;
		break;
	}
	while ((r = read(in, buf, sizeof(buf))) > 0)
		if (write_all(out, buf, (size_t)r) < 0)
			return -1;
	return r < 0 ? -1 : 0;
}

/* Opens name in sdir for reading only if it is a regular file (never a fifo or a
 * device), without following a symlink. */
static int open_regular(int sdir, const char *name, struct stat *st)
{
	char p[32];
	int pfd = openat(sdir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC), fd;

	if (pfd < 0)
		return -1;
	if (fstat(pfd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(pfd);
		errno = EINVAL;
		return -1;
	}
	/* Reopen the very inode we checked. */
	fd = open(sys_fd_path(p, pfd), O_RDONLY | O_CLOEXEC);
	close(pfd);
	return fd;
}

/* ---- one tree copier for both directions ---- */

struct copier {
	bool download; /* host side is the destination: masked modes, limits */
	const struct copy_limits *lim;
	struct copy_report *rep;
};

/* A directory name in dirfd, created if needed (anything else in the way is
 * removed first), opened without following. */
static int ensure_dir_at(int dirfd, const char *name, mode_t mode, const char *what,
                         struct err *err)
{
	int fd;

	if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
		return err_sys(err, "mkdir %s", what);
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
		if (tree_remove_at(dirfd, name, err) < 0)
			return err_wrap(err, "replace %s", what);
		if (mkdirat(dirfd, name, mode) < 0)
			return err_sys(err, "mkdir %s", what);
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return err_sys(err, "open %s", what);
	return fd;
}

/* A new file replacing whatever is at name in dirfd (never written through). */
static int create_at(int dirfd, const char *name, mode_t mode, const char *what, struct err *err)
{
	struct cdir d = {.fd = dirfd, .path = (char *)what};

	return cdir_create(&d, name, mode, err);
}

static int copy_file(struct copier *c, int src, const struct stat *st, int ddir, const char *name,
                     const char *what, struct err *err)
{
	mode_t mode = c->download ? (st->st_mode & 0755) : (st->st_mode & 07777);
	_cleanup_close_ int out = create_at(ddir, name, mode, what, err);

	if (out < 0)
		return -1;
	if (!c->download) {
		if (copy_fd(src, out) < 0)
			return err_sys(err, "copy to %s", what);
	} else {
		long long left = -1, n;
		bool cut = false;

		if (c->lim && c->lim->max_bytes > 0) {
			left = c->lim->max_bytes - (c->rep ? c->rep->bytes : 0);
			if (left < 0)
				left = 0;
		}
		n = copy_data_sparse(src, out, left, c->lim ? c->lim->deadline : 0, &cut);
		if (n < 0 && errno == ETIMEDOUT)
			return err_set(err, ETIMEDOUT, "copy %s: out of time", what);
		if (n < 0)
			return err_sys(err, "copy %s", what);
		if (left == 0 && st->st_size > 0)
			cut = true;
		if (c->rep) {
			c->rep->bytes += n;
			c->rep->files++;
			c->rep->truncated |= cut;
		}
	}
	if (fchmod(out, mode) < 0)
		return err_sys(err, "chmod %s", what);
	return 0;
}

static int copy_symlink(struct copier *c, int sdir, const char *name, int ddir, int depth,
                        const char *what, struct err *err)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(sdir, name, target, sizeof(target) - 1);

	if (n < 0)
		return err_sys(err, "readlink %s", what);
	target[n] = '\0';
	/* On the host, a link may only point inside what was downloaded. */
	if (c->download && symlink_escapes(target, depth))
		return 0;
	if (tree_remove_at(ddir, name, err) < 0)
		return err_wrap(err, "replace %s", what);
	if (symlinkat(target, ddir, name) < 0)
		return err_sys(err, "symlink %s", what);
	return 0;
}

/* One entry; descends into directories. */
static int copy_visit(void *ctx, const struct tree_frame *f, const char *name,
                      struct tree_frame *child, struct err *err)
{
	struct copier *c = ctx;
	int sdir = dirfd(f->dir), s, t;
	_cleanup_free_ char *what = xasprintf("%s/%s", f->what, name);
	struct stat st;

	if (c->lim && c->lim->deadline > 0 && mono_now() > c->lim->deadline)
		return err_set(err, ETIMEDOUT, "copy %s: out of time", what);
	if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? TREE_NEXT : err_sys(err, "stat %s", what);
	if (S_ISREG(st.st_mode)) {
		_cleanup_close_ int in = open_regular(sdir, name, &st);

		if (in < 0)
			return errno == ENOENT ? TREE_NEXT : err_sys(err, "open %s", what);
		return copy_file(c, in, &st, f->fd2, name, what, err);
	}
	if (S_ISLNK(st.st_mode))
		return copy_symlink(c, sdir, name, f->fd2, f->depth, what, err);
	if (!S_ISDIR(st.st_mode))
		return TREE_NEXT; /* fifos, sockets and devices are not copied */
	s = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s < 0)
		return err_sys(err, "open %s", what);
	t = ensure_dir_at(f->fd2, name, 0700, what, err);
	if (t < 0) {
		close(s);
		return -1;
	}
	if (fchmod(t, c->download ? (st.st_mode & 0755) : (st.st_mode & 07777)) < 0) {
		close(s);
		close(t);
		return err_sys(err, "copy %s", what);
	}
	if (tree_frame_open(child, s, t, what, err) < 0)
		return -1;
	return TREE_DESCEND;
}

/* Copies the entries of directory sdir into ddir (both taken). */
static int copy_env_tree(struct copier *c, int sdir, int ddir, const char *what, struct err *err)
{
	struct tree_frame root;

	if (tree_frame_open(&root, sdir, ddir, what, err) < 0)
		return -1;
	return tree_walk(&root, MAX_DEPTH, copy_visit, c, err);
}

/* ---- host -> environment ---- */

int copy_upload(int root_fd, int host_fd, const char *env_path, unsigned flags, struct err *err)
{
	struct copier c = {.download = false};
	struct stat st;
	_cleanup_free_ char *base = NULL;
	_cleanup_close_ int parent = -1;

	if (fstat(host_fd, &st) < 0)
		return err_sys(err, "upload to %s", env_path);
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return err_set(err, EINVAL, "upload to %s: not a file or directory", env_path);
	if (flags & UPLOAD_REPLACE) {
		/* What the agent left at env_path goes, whatever it is. */
		parent = root_parent(root_fd, env_path, true, &base, err);
		if (parent < 0 || tree_remove_at(parent, base, err) < 0)
			return err_wrap(err, "upload: replace %s", env_path);
	}
	if (S_ISDIR(st.st_mode)) {
		_cleanup_close_ int dpath = root_open_dir(root_fd, env_path, true, 0755, err);
		int src, dst;
		char p[32];

		if (dpath < 0)
			return err_wrap(err, "upload to %s", env_path);
		dst = open(sys_fd_path(p, dpath), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		src = openat(host_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dst < 0 || src < 0) {
			if (dst >= 0)
				close(dst);
			if (src >= 0)
				close(src);
			return err_sys(err, "upload to %s", env_path);
		}
		if (copy_env_tree(&c, src, dst, env_path, err) < 0)
			return err_wrap(err, "upload");
		return 0;
	}
	if (parent < 0) {
		free(base);
		base = NULL;
		parent = root_parent(root_fd, env_path, true, &base, err);
		if (parent < 0)
			return err_wrap(err, "upload to %s", env_path);
	}
	if (lseek(host_fd, 0, SEEK_SET) < 0 && errno != ESPIPE)
		return err_sys(err, "upload to %s", env_path);
	return copy_file(&c, host_fd, &st, parent, base, env_path, err);
}

/* ---- environment -> host ---- */

int copy_download(int root_fd, const char *env_path, const struct cdir *dest, const char *dest_rel,
                  const struct copy_limits *lim, struct copy_report *rep, struct err *err)
{
	_cleanup_close_ int src = inroot_open(root_fd, env_path, O_PATH, 0);
	struct copy_report dummy = {0};
	struct copier c = {.download = true, .lim = lim, .rep = rep ? rep : &dummy};
	struct stat st;
	char p[32];

	if (src < 0)
		return err_sys(err, "download %s", env_path);
	if (fstat(src, &st) < 0)
		return err_sys(err, "download %s", env_path);
	if (S_ISDIR(st.st_mode)) {
		struct cdir ddir = CDIR_INIT;
		int sdir = open(sys_fd_path(p, src), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int rc;

		if (sdir < 0)
			return err_sys(err, "download %s", env_path);
		if (cdir_mkdirs(dest, dest_rel, 0755, true, &ddir, err) < 0) {
			close(sdir);
			return err_wrap(err, "download %s", env_path);
		}
		fchmod(ddir.fd, st.st_mode & 0755);
		rc = copy_env_tree(&c, sdir, ddir.fd, env_path, err);
		free(ddir.path);
		if (rc < 0)
			return err_wrap(err, "download");
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return err_set(err, EINVAL, "download %s: not a file or directory", env_path);
	_cleanup_free_ char *parent_rel = xstrdup(dest_rel);
	char *slash = strrchr(parent_rel, '/');
	const char *base = slash ? slash + 1 : dest_rel;
	_cleanup_cdir_ struct cdir parent = CDIR_INIT;
	_cleanup_close_ int in = open(sys_fd_path(p, src), O_RDONLY | O_CLOEXEC);

	if (in < 0)
		return err_sys(err, "download %s", env_path);
	if (slash)
		*slash = '\0';
	if (cdir_mkdirs(dest, slash ? parent_rel : "", 0755, true, &parent, err) < 0)
		return err_wrap(err, "download %s", env_path);
	return copy_file(&c, in, &st, parent.fd, base, dest_rel, err);
}
