/* Files between the host and an environment. Container paths are resolved inside
 * the environment's root (openat2 RESOLVE_IN_ROOT, no magic links), and every
 * step below a resolved directory is an *at() call that never follows a symlink,
 * so a link planted by the agent cannot make rollout read or write a host file.
 * Symlinks are copied as symlinks; modes are kept. */
#include "providers/sandbox/sandbox.h"
#include "providers/sandbox/sys.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

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

#define RESOLVE_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
#define MAX_DEPTH 256

/* O_PATH directory fd of path inside the root, creating missing components. */
static int root_open_dir(int root_fd, const char *path, bool create, mode_t mode, struct err *err)
{
	struct strbuf prefix = STRBUF_INIT;
	const char *p = path;
	int cur = sys_openat2(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_ROOT);

	if (cur < 0)
		return err_sys(err, "open the environment's root");
	sb_adds(&prefix, ".");
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		_cleanup_free_ char *comp = xstrndup(p, n);
		int next;

		p += n;
		while (*p == '/')
			p++;
		if (n == 0 || strcmp(comp, ".") == 0)
			continue;
		sb_addc(&prefix, '/');
		sb_adds(&prefix, comp);
		next = sys_openat2(root_fd, prefix.buf, O_PATH | O_DIRECTORY | O_CLOEXEC, 0,
		                   RESOLVE_ROOT);
		if (next < 0 && errno == ENOENT && create && strcmp(comp, "..") != 0) {
			if (mkdirat(cur, comp, mode) < 0 && errno != EEXIST) {
				err_sys(err, "mkdir %s", path);
				goto fail;
			}
			next = sys_openat2(root_fd, prefix.buf, O_PATH | O_DIRECTORY | O_CLOEXEC, 0,
			                   RESOLVE_ROOT);
		}
		if (next < 0) {
			err_sys(err, "%s", path);
			goto fail;
		}
		close(cur);
		cur = next;
	}
	sb_release(&prefix);
	return cur;
fail:
	close(cur);
	sb_release(&prefix);
	return -1;
}

int root_mkdir_p(int root_fd, const char *env_path, mode_t mode, struct err *err)
{
	int fd = root_open_dir(root_fd, env_path, true, mode, err);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* Splits "/a/b/c" into a parent directory fd (inside the root) and "c". */
static int root_parent(int root_fd, const char *path, bool create, char **base, struct err *err)
{
	_cleanup_free_ char *copy = xstrdup(path);
	size_t n = strlen(copy);
	char *slash;

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
	return root_open_dir(root_fd, copy, create, 0755, err);
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

/* Creates (or replaces) regular file name in dirfd without following anything
 * already there. */
static int create_file_at(int dirfd, const char *name, mode_t mode)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		int fd = openat(dirfd, name,
		                O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
		                0600);
		struct stat st;

		if (fd >= 0) {
			if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
				fcntl(fd, F_SETFL, 0);
				return fd;
			}
			close(fd);
		} else if (errno != ELOOP && errno != ENXIO && errno != ETXTBSY) {
			return -1;
		}
		/* A symlink, fifo or device is in the way: replace it. */
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return -1;
	}
	(void)mode;
	errno = EEXIST;
	return -1;
}

static int upload_file(int src, const struct stat *st, int dirfd, const char *name,
                       const char *what, struct err *err)
{
	_cleanup_close_ int out = create_file_at(dirfd, name, st->st_mode);

	if (out < 0)
		return err_sys(err, "create %s", what);
	if (copy_fd(src, out) < 0)
		return err_sys(err, "copy to %s", what);
	if (fchmod(out, st->st_mode & 07777) < 0)
		return err_sys(err, "chmod %s", what);
	return 0;
}

/* A directory name in dirfd, created if needed, opened without following. */
static int ensure_dir_at(int dirfd, const char *name, const char *what, struct err *err)
{
	int fd;

	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return err_sys(err, "mkdir %s", what);
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
		/* Something that is not a directory is in the way. */
		if (unlinkat(dirfd, name, 0) < 0 || mkdirat(dirfd, name, 0700) < 0)
			return err_sys(err, "replace %s", what);
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return err_sys(err, "open %s", what);
	return fd;
}

static int copy_symlink(int sdir, const char *name, int ddir, const char *what, struct err *err)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(sdir, name, target, sizeof(target) - 1);

	if (n < 0)
		return err_sys(err, "readlink %s", what);
	target[n] = '\0';
	if (unlinkat(ddir, name, 0) < 0 && errno != ENOENT && errno != EISDIR)
		return err_sys(err, "replace %s", what);
	if (symlinkat(target, ddir, name) < 0)
		return err_sys(err, "symlink %s", what);
	return 0;
}

/* Opens name in sdir for reading only if it is a regular file (never a fifo or a
 * device of the environment), without following a symlink. */
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

/* Copies the entries of sdir into ddir (both real directory fds). */
static int copy_env_tree(int sdir, int ddir, const char *what, int depth, struct err *err)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int dup_fd = dup(sdir);

	if (depth > MAX_DEPTH)
		return err_set(err, ELOOP, "%s: too deep", what);
	if (dup_fd < 0 || !(d = fdopendir(dup_fd))) {
		if (dup_fd >= 0)
			close(dup_fd);
		return err_sys(err, "read %s", what);
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *child = NULL;
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		child = xasprintf("%s/%s", what, de->d_name);
		if (fstatat(sdir, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return err_sys(err, "stat %s", child);
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int s = openat(
			    sdir, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			_cleanup_close_ int t = -1;

			if (s < 0)
				return err_sys(err, "open %s", child);
			t = ensure_dir_at(ddir, de->d_name, child, err);
			if (t < 0 || copy_env_tree(s, t, child, depth + 1, err) < 0)
				return -1;
			if (fchmod(t, st.st_mode & 07777) < 0)
				return err_sys(err, "chmod %s", child);
		} else if (S_ISREG(st.st_mode)) {
			_cleanup_close_ int s = open_regular(sdir, de->d_name, &st);

			if (s < 0)
				return err_sys(err, "open %s", child);
			if (upload_file(s, &st, ddir, de->d_name, child, err) < 0)
				return -1;
		} else if (S_ISLNK(st.st_mode)) {
			if (copy_symlink(sdir, de->d_name, ddir, child, err) < 0)
				return -1;
		}
		/* fifos, sockets and devices are not copied */
	}
	return 0;
}

int copy_upload(int root_fd, const char *host_path, const char *env_path, struct err *err)
{
	struct stat st;

	if (stat(host_path, &st) < 0)
		return err_sys(err, "upload %s", host_path);
	if (S_ISDIR(st.st_mode)) {
		_cleanup_close_ int dpath = root_open_dir(root_fd, env_path, true, 0755, err);
		_cleanup_close_ int src = -1, dst = -1;
		char p[32];

		if (dpath < 0)
			return err_wrap(err, "upload to %s", env_path);
		dst = open(sys_fd_path(p, dpath), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		src = open(host_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dst < 0 || src < 0)
			return err_sys(err, "upload %s to %s", host_path, env_path);
		if (copy_env_tree(src, dst, env_path, 0, err) < 0)
			return err_wrap(err, "upload %s", host_path);
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return err_set(err, EINVAL, "upload %s: not a file or directory", host_path);
	_cleanup_free_ char *base = NULL;
	_cleanup_close_ int parent = root_parent(root_fd, env_path, true, &base, err);
	_cleanup_close_ int src = -1, dir = -1;
	char p[32];

	if (parent < 0)
		return err_wrap(err, "upload to %s", env_path);
	dir = open(sys_fd_path(p, parent), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	src = open(host_path, O_RDONLY | O_CLOEXEC);
	if (dir < 0 || src < 0)
		return err_sys(err, "upload %s to %s", host_path, env_path);
	return upload_file(src, &st, dir, base, env_path, err);
}

int copy_download(int root_fd, const char *env_path, const char *host_path, struct err *err)
{
	_cleanup_close_ int src =
	    sys_openat2(root_fd, env_path, O_PATH | O_CLOEXEC, 0, RESOLVE_ROOT);
	struct stat st;
	char p[32];

	if (src < 0)
		return err_sys(err, "download %s", env_path);
	if (fstat(src, &st) < 0)
		return err_sys(err, "download %s", env_path);
	if (S_ISDIR(st.st_mode)) {
		_cleanup_close_ int sdir =
		    open(sys_fd_path(p, src), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		_cleanup_close_ int ddir = -1;

		if (sdir < 0 || mkdir_p(host_path, 0755, err) < 0)
			return err_sys(err, "download %s", env_path);
		ddir = open(host_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (ddir < 0)
			return err_sys(err, "open %s", host_path);
		if (copy_env_tree(sdir, ddir, env_path, 0, err) < 0)
			return err_wrap(err, "download %s", env_path);
		fchmod(ddir, st.st_mode & 07777);
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return err_set(err, EINVAL, "download %s: not a file or directory", env_path);
	_cleanup_free_ char *parent = xstrdup(host_path);
	char *slash = strrchr(parent, '/');
	_cleanup_close_ int in = open(sys_fd_path(p, src), O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int out = -1;

	if (in < 0)
		return err_sys(err, "download %s", env_path);
	if (slash && slash != parent) {
		*slash = '\0';
		if (mkdir_p(parent, 0755, err) < 0)
			return -1;
	}
	out = open(host_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return err_sys(err, "create %s", host_path);
	if (copy_fd(in, out) < 0)
		return err_sys(err, "download %s", env_path);
	fchmod(out, st.st_mode & 07777);
	return 0;
}
