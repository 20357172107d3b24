/* File and directory helpers: whole-file reads, atomic writes, mkdir -p, rm -rf. */
#include "rollout/fs.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len, struct err *err)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_sys(err, "open %s", path);
	return read_fd(fd, path, max, out, len, err);
}

int read_fd(int fd, const char *path, size_t max, char **out, size_t *len, struct err *err)
{
	struct strbuf sb = STRBUF_INIT;
	char chunk[65536];

	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			sb_release(&sb);
			return err_sys(err, "read %s", path);
		}
		if (r == 0)
			break;
		if (sb.len + (size_t)r > max) {
			sb_release(&sb);
			return err_set(err, EFBIG, "%s: file larger than %zu bytes", path, max);
		}
		sb_add(&sb, chunk, (size_t)r);
	}
	if (len)
		*len = sb.len;
	*out = sb_detach(&sb);
	return 0;
}

int read_file(const char *path, size_t max, char **out, size_t *len, struct err *err)
{
	return read_file_at(AT_FDCWD, path, max, out, len, err);
}

static int fsync_parent(const char *path)
{
	_cleanup_free_ char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	_cleanup_close_ int fd = -1;

	if (!slash)
		fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	else {
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0)
		return -1;
	return fsync(fd);
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, struct err *err)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0)
		return err_sys(err, "create %s", tmp);
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		err_sys(err, "write %s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) < 0) {
		err_sys(err, "close %s", tmp);
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) < 0) {
		err_sys(err, "rename %s to %s", tmp, path);
		unlink(tmp);
		return -1;
	}
	fsync_parent(path);
	return 0;
}

int write_file(const char *path, const void *data, size_t len, mode_t mode, struct err *err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0)
		return err_sys(err, "create %s", path);
	if (write_all(fd, data, len) < 0)
		return err_sys(err, "write %s", path);
	return 0;
}

int mkdir_p(const char *path, mode_t mode, struct err *err)
{
	_cleanup_free_ char *p = xstrdup(path);
	size_t n = strlen(p);

	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return err_sys(err, "mkdir %s", p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0) {
		if (errno == EEXIST && path_is_dir(p))
			return 0;
		return err_sys(err, "mkdir %s", p);
	}
	return 0;
}

void dir_mark_topdir(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int flags = 0; /* the kernel reads and writes an int, whatever the ioctl says */

	if (fd < 0 || ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0 || (flags & FS_TOPDIR_FL))
		return;
	flags |= FS_TOPDIR_FL;
	(void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
}

int dir_names_sorted(int fd, struct strv *out)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;

	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	errno = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			strv_push(out, de->d_name);
	if (errno) {
		int e = errno;

		closedir(d);
		errno = e;
		return -1;
	}
	closedir(d);
	strv_sort(out);
	return 0;
}

int rm_rf_at(int dirfd, const char *name, struct err *err)
{
	/* Trees an agent or an image built: removed iteratively, any depth. */
	return tree_remove_at(dirfd, name, err);
}

int rm_rf(const char *path, struct err *err)
{
	_cleanup_free_ char *copy = xstrdup(path);
	_cleanup_close_ int parent = -1;
	size_t n = strlen(copy);
	char *slash;

	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	slash = strrchr(copy, '/');
	if (!slash)
		return tree_remove_at(AT_FDCWD, copy, err);
	if (!slash[1] || strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0)
		return err_set(err, EINVAL, "rm -rf %s: not a removable path", path);
	*slash = '\0';
	parent = open(slash == copy ? "/" : copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (parent < 0)
		return errno == ENOENT ? 0 : err_sys(err, "open %s", slash == copy ? "/" : copy);
	if (tree_remove_at(parent, slash + 1, err) < 0)
		return err_wrap(err, "%s", path);
	return 0;
}

static int copy_file_at(int sfd_dir, const char *name, int dfd_dir, mode_t mode, struct err *err)
{
	_cleanup_close_ int in = openat(sfd_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int out = -1;
	char buf[65536];

	if (in < 0)
		return err_sys(err, "open %s", name);
	out = openat(dfd_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	             mode & 07777);
	if (out < 0)
		return err_sys(err, "create %s", name);
	for (;;) {
		ssize_t r = read(in, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_sys(err, "read %s", name);
		if (r == 0)
			break;
		if (write_all(out, buf, (size_t)r) < 0)
			return err_sys(err, "write %s", name);
	}
	fchmod(out, mode & 07777);
	return 0;
}

static int copy_tree_at(int sdir, int ddir, bool link_files, struct err *err)
{
	_cleanup_closedir_ DIR *d = fdopendir(sdir);
	struct dirent *de;

	if (!d) {
		close(sdir);
		return err_sys(err, "opendir");
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return err_sys(err, "stat %s", de->d_name);
		if (S_ISDIR(st.st_mode)) {
			int s2, d2;

			if (mkdirat(ddir, de->d_name, st.st_mode & 07777) < 0)
				return err_sys(err, "mkdir %s", de->d_name);
			s2 = openat(dirfd(d), de->d_name,
			            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			d2 = openat(ddir, de->d_name,
			            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (s2 < 0 || d2 < 0) {
				if (s2 >= 0)
					close(s2);
				if (d2 >= 0)
					close(d2);
				return err_sys(err, "open %s", de->d_name);
			}
			if (copy_tree_at(s2, d2, link_files, err) < 0) {
				close(d2);
				return err_wrap(err, "%s", de->d_name);
			}
			close(d2);
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);

			if (n < 0)
				return err_sys(err, "readlink %s", de->d_name);
			target[n] = '\0';
			if (symlinkat(target, ddir, de->d_name) < 0)
				return err_sys(err, "symlink %s", de->d_name);
		} else if (S_ISREG(st.st_mode)) {
			if (link_files && linkat(dirfd(d), de->d_name, ddir, de->d_name, 0) == 0)
				continue;
			if (copy_file_at(dirfd(d), de->d_name, ddir, st.st_mode, err) < 0)
				return -1;
		}
		/* other file types are not copied */
	}
	return 0;
}

int copy_tree(const char *src, const char *dst, bool link_files, struct err *err)
{
	struct stat st;
	int s, d;

	if (lstat(src, &st) < 0)
		return err_sys(err, "stat %s", src);
	if (!S_ISDIR(st.st_mode))
		return err_set(err, ENOTDIR, "%s is not a directory", src);
	if (mkdir(dst, st.st_mode & 07777) < 0)
		return err_sys(err, "mkdir %s", dst);
	s = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s < 0)
		return err_sys(err, "open %s", src);
	d = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d < 0) {
		close(s);
		return err_sys(err, "open %s", dst);
	}
	if (copy_tree_at(s, d, link_files, err) < 0) {
		close(d);
		return err_wrap(err, "copy %s to %s", src, dst);
	}
	close(d);
	return 0;
}

bool path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

bool path_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool path_is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *path_join(const char *a, const char *b)
{
	size_t la = strlen(a);

	while (*b == '/')
		b++;
	if (la == 0)
		return xstrdup(b);
	if (a[la - 1] == '/')
		return xasprintf("%s%s", a, b);
	return xasprintf("%s/%s", a, b);
}

char *path_clean_relative(const char *path)
{
	struct strv parts = STRV_INIT;
	struct strbuf out = STRBUF_INIT;
	const char *p = path;

	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* skip */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (parts.n == 0) {
				strv_release(&parts);
				return NULL;
			}
			free(parts.v[--parts.n]);
			parts.v[parts.n] = NULL;
		} else {
			strv_push_take(&parts, xstrndup(p, n));
		}
		p += n;
		if (*p == '/')
			p++;
	}
	for (size_t i = 0; i < parts.n; i++) {
		if (i)
			sb_addc(&out, '/');
		sb_adds(&out, parts.v[i]);
	}
	strv_release(&parts);
	return sb_detach(&out);
}

char *path_real(const char *path)
{
	char buf[PATH_MAX];

	if (!realpath(path, buf))
		return NULL;
	return xstrdup(buf);
}

char *path_resolved(const char *path)
{
	char cwd[PATH_MAX];
	struct strbuf out = STRBUF_INIT;
	_cleanup_free_ char *full = NULL;
	char *save = NULL, *part;
	char *real = path_real(path);

	if (real)
		return real;
	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		full = xstrdup(path);
	else
		full = path_join(cwd, path);
	for (part = strtok_r(full, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
		if (!strcmp(part, "."))
			continue;
		if (!strcmp(part, "..")) {
			char *slash = out.len ? strrchr(out.buf, '/') : NULL;

			if (slash) {
				out.len = (size_t)(slash - out.buf);
				out.buf[out.len] = '\0';
			}
			continue;
		}
		sb_addf(&out, "/%s", part);
	}
	if (!out.len)
		sb_adds(&out, "/");
	return sb_detach(&out);
}

const char *path_basename(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

int fs_openat2(int dirfd, const char *path, int flags, mode_t mode, unsigned long long resolve)
{
	struct open_how how = {
	    .flags = (unsigned long long)(flags | O_CLOEXEC),
	    .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
	    .resolve = resolve,
	};

	for (int tries = 0; tries < 32; tries++) {
		long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

		if (fd >= 0 || errno != EAGAIN)
			return (int)fd;
	}
	return -1;
}
