/* Confined I/O on host directories an agent or an input could have written into
 * (see rollout/confined.h for the rules every function here keeps). */
#include "rollout/confined.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

#define RESOLVE_CONFINED                                                                           \
	(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
#define RM_STACK 32
#define CREATE_ATTEMPTS 4

bool cdir_force_walk;

/* ---- the handle ---- */

void cdir_release(struct cdir *d)
{
	/* Only a handle that was opened has a path: a zeroed struct holds fd 0,
	 * which is not ours to close. */
	if (d->path && d->fd >= 0)
		close(d->fd);
	free(d->path);
	d->fd = -1;
	d->path = NULL;
}

void cleanup_cdirp(struct cdir *d)
{
	cdir_release(d);
}

void cdir_from_fd(int fd, const char *path, struct cdir *out)
{
	out->fd = fd;
	out->path = xstrdup(path ? path : "?");
}

char *cdir_name(const struct cdir *d, const char *rel)
{
	if (!rel || !*rel || strcmp(rel, ".") == 0)
		return xstrdup(d->path);
	return path_join(d->path, rel);
}

int cdir_open_trusted(const char *path, struct cdir *out, struct err *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return err_sys(err, "open %s", path);
	cdir_from_fd(fd, path, out);
	return 0;
}

int cdir_make_trusted(const char *path, mode_t mode, struct cdir *out, struct err *err)
{
	if (mkdir_p(path, mode, err) < 0)
		return -1;
	return cdir_open_trusted(path, out, err);
}

int cdir_dup(const struct cdir *d, struct cdir *out, struct err *err)
{
	int fd = fcntl(d->fd, F_DUPFD_CLOEXEC, 3);

	if (fd < 0)
		return err_sys(err, "dup %s", d->path);
	cdir_from_fd(fd, d->path, out);
	return 0;
}

/* ---- resolution ---- */

/* A relative path without ".." (empty and "." mean the directory itself). */
static bool rel_ok(const char *rel)
{
	const char *p = rel;

	if (!rel || rel[0] == '/')
		return false;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += n;
		while (*p == '/')
			p++;
	}
	return true;
}

static bool is_self(const char *rel)
{
	for (const char *p = rel; *p; p++)
		if (*p != '.' && *p != '/')
			return false;
	return true;
}

/* The per-component walk: every step O_NOFOLLOW, every intermediate a
 * directory on the same filesystem. */
static int walk_open(int dirfd, const char *rel, int flags, mode_t mode)
{
	_cleanup_free_ char *copy = xstrdup(rel);
	char *save = NULL, *comp = strtok_r(copy, "/", &save);
	int cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	struct stat st0;

	if (cur < 0 || fstat(cur, &st0) < 0)
		goto fail;
	while (comp) {
		char *next = strtok_r(NULL, "/", &save);
		struct stat st;
		int fd;

		if (strcmp(comp, ".") == 0) {
			comp = next;
			continue;
		}
		if (!next) {
			fd = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
			if (fd < 0)
				goto fail;
			/* O_PATH | O_NOFOLLOW hands back the link itself. */
			if ((flags & O_PATH) && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
				close(fd);
				errno = ELOOP;
				goto fail;
			}
			close(cur);
			return fd;
		}
		fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOTDIR) {
				struct stat lst;

				if (fstatat(cur, comp, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
				    S_ISLNK(lst.st_mode))
					errno = ELOOP;
			}
			goto fail;
		}
		if (fstat(fd, &st) < 0 || st.st_dev != st0.st_dev) {
			close(fd);
			errno = EXDEV;
			goto fail;
		}
		close(cur);
		cur = fd;
		comp = next;
	}
	/* The path named the directory itself. */
	{
		int fd = openat(cur, ".", flags | O_CLOEXEC, mode);

		close(cur);
		return fd;
	}
fail : {
	int e = errno;

	if (cur >= 0)
		close(cur);
	errno = e;
	return -1;
}
}

/* fd of rel beneath dirfd, never following a link. -1 with errno. */
static int resolve(int dirfd, const char *rel, int flags, mode_t mode)
{
	static int no_openat2;

	if (!rel_ok(rel)) {
		errno = EINVAL;
		return -1;
	}
	if (is_self(rel))
		return openat(dirfd, ".", flags | O_CLOEXEC, mode);
	if (!cdir_force_walk && !__atomic_load_n(&no_openat2, __ATOMIC_RELAXED)) {
		int fd = fs_openat2(dirfd, rel, flags, mode, RESOLVE_CONFINED);

		if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
			return (int)fd;
		/* No openat2 here (old kernel, or a seccomp profile that forbids it). */
		__atomic_store_n(&no_openat2, 1, __ATOMIC_RELAXED);
	}
	return walk_open(dirfd, rel, flags, mode);
}

/* Splits rel into its parent (opened as a directory fd) and last name. */
static int resolve_parent(const struct cdir *d, const char *rel, char **base, struct err *err)
{
	_cleanup_free_ char *copy = NULL;
	char *slash;
	size_t n;
	int fd;

	*base = NULL;
	if (!rel_ok(rel) || is_self(rel))
		return err_set(err, EINVAL, "%s/%s: not a confined file name", d->path, rel);
	copy = xstrdup(rel);
	n = strlen(copy);
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	slash = strrchr(copy, '/');
	*base = xstrdup(slash ? slash + 1 : copy);
	if (strcmp(*base, ".") == 0) {
		free(*base);
		*base = NULL;
		return err_set(err, EINVAL, "%s/%s: not a confined file name", d->path, rel);
	}
	if (slash)
		*slash = '\0';
	fd = resolve(d->fd, slash ? copy : ".", O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0) {
		err_sys(err, "%s", slash ? copy : ".");
		free(*base);
		*base = NULL;
		return err_wrap(err, "%s", d->path);
	}
	return fd;
}

int cdir_sub(const struct cdir *d, const char *rel, struct cdir *out, struct err *err)
{
	int fd = resolve(d->fd, rel, O_RDONLY | O_DIRECTORY, 0);
	_cleanup_free_ char *name = cdir_name(d, rel);

	if (fd < 0)
		return err_sys(err, "open %s", name);
	cdir_from_fd(fd, name, out);
	return 0;
}

int cdir_lstat(const struct cdir *d, const char *rel, struct stat *st)
{
	struct err ignored = {0};
	_cleanup_free_ char *base = NULL;
	_cleanup_close_ int pfd = -1;

	if (rel_ok(rel) && is_self(rel))
		return fstat(d->fd, st);
	pfd = resolve_parent(d, rel, &base, &ignored);
	if (pfd < 0) {
		errno = ignored.code ? ignored.code : EINVAL;
		return -1;
	}
	return fstatat(pfd, base, st, AT_SYMLINK_NOFOLLOW);
}

bool cdir_exists(const struct cdir *d, const char *rel)
{
	struct stat st;

	return cdir_lstat(d, rel, &st) == 0;
}

/* ---- reading ---- */

/* Reopens an O_PATH fd of a regular file for I/O: the very inode checked, never
 * a name that could have been swapped since. */
static int reopen(int pfd, int flags)
{
	char p[40];

	snprintf(p, sizeof(p), "/proc/self/fd/%d", pfd);
	return open(p, flags | O_CLOEXEC | O_NOCTTY);
}

int cdir_open_read(const struct cdir *d, const char *rel, struct stat *st, struct err *err)
{
	_cleanup_free_ char *name = cdir_name(d, rel);
	_cleanup_close_ int pfd = resolve(d->fd, rel, O_PATH, 0);
	struct stat sb;
	int fd;

	if (!st)
		st = &sb;
	if (pfd < 0) {
		if (errno == ELOOP)
			return err_set(err, ELOOP,
			               "%s is a symbolic link (or is reached through one); "
			               "not followed",
			               name);
		return err_sys(err, "open %s", name);
	}
	if (fstat(pfd, st) < 0)
		return err_sys(err, "stat %s", name);
	if (S_ISDIR(st->st_mode))
		return err_set(err, EISDIR, "%s is a directory", name);
	if (!S_ISREG(st->st_mode))
		return err_set(err, EINVAL, "%s is not a regular file", name);
	fd = reopen(pfd, O_RDONLY);
	if (fd < 0 && errno == ENOENT) {
		/* No /proc: open the name, non-blocking, and check it is the same inode. */
		struct stat again;

		fd = resolve(d->fd, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
		if (fd >= 0 && (fstat(fd, &again) < 0 || again.st_ino != st->st_ino ||
		                again.st_dev != st->st_dev || !S_ISREG(again.st_mode))) {
			close(fd);
			return err_set(err, EAGAIN, "%s changed while being opened", name);
		}
		if (fd >= 0)
			fcntl(fd, F_SETFL, 0);
	}
	if (fd < 0)
		return err_sys(err, "open %s", name);
	return fd;
}

int cdir_read(const struct cdir *d, const char *rel, size_t max, char **out, size_t *len,
              struct err *err)
{
	struct stat st;
	_cleanup_close_ int fd = cdir_open_read(d, rel, &st, err);
	_cleanup_free_ char *name = NULL;

	if (fd < 0)
		return -1;
	name = cdir_name(d, rel);
	if ((unsigned long long)st.st_size > max)
		return err_set(err, EFBIG, "%s: file larger than %zu bytes", name, max);
	return read_fd(fd, name, max, out, len, err);
}

/* ---- writing ---- */

static void random_name(char *buf, size_t n, const char *prefix)
{
	unsigned char r[8];
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t k = getrandom(r + got, sizeof(r) - got, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			abort(); /* every kernel we run on has getrandom */
		got += (size_t)k;
	}
	snprintf(buf, n, "%s%02x%02x%02x%02x%02x%02x%02x%02x", prefix, r[0], r[1], r[2], r[3], r[4],
	         r[5], r[6], r[7]);
}

/* A new file under an unpredictable name in pfd. */
static int tmp_create(int pfd, char name[48], mode_t mode)
{
	for (int i = 0; i < CREATE_ATTEMPTS; i++) {
		int fd;

		random_name(name, 48, ".rollout-tmp.");
		fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		            mode & 0755);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	errno = EEXIST;
	return -1;
}

/* Renames tmp over base; a directory in the way is removed first. */
static int rename_into(int pfd, const char *tmp, const char *base, struct err *err)
{
	for (int i = 0; i < CREATE_ATTEMPTS; i++) {
		if (renameat(pfd, tmp, pfd, base) == 0)
			return 0;
		if (errno != EISDIR && errno != ENOTEMPTY && errno != EEXIST && errno != ENOTDIR)
			break;
		if (tree_remove_at(pfd, base, err) < 0)
			return -1;
	}
	return err_sys(err, "rename onto %s", base);
}

static int create_at(const struct cdir *d, const char *rel, mode_t mode, bool durable,
                     const void *data, size_t len, struct err *err)
{
	_cleanup_free_ char *base = NULL;
	_cleanup_free_ char *name = cdir_name(d, rel);
	_cleanup_close_ int pfd = resolve_parent(d, rel, &base, err);
	char tmp[48];
	int fd;

	if (pfd < 0)
		return err_wrap(err, "create %s", name);
	fd = tmp_create(pfd, tmp, mode);
	if (fd < 0)
		return err_sys(err, "create a file in the directory of %s", name);
	if (data && (write_all(fd, data, len) < 0 || (durable && fsync(fd) < 0))) {
		err_sys(err, "write %s", name);
		goto fail;
	}
	if (rename_into(pfd, tmp, base, err) < 0) {
		err_wrap(err, "%s", name);
		goto fail;
	}
	if (durable)
		fsync(pfd);
	return fd;
fail:
	unlinkat(pfd, tmp, 0);
	close(fd);
	return -1;
}

int cdir_create(const struct cdir *d, const char *rel, mode_t mode, struct err *err)
{
	return create_at(d, rel, mode, false, NULL, 0, err);
}

int cdir_write(const struct cdir *d, const char *rel, const void *data, size_t len, mode_t mode,
               struct err *err)
{
	int fd = create_at(d, rel, mode, false, data ? data : "", len, err);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

int cdir_write_atomic(const struct cdir *d, const char *rel, const void *data, size_t len,
                      mode_t mode, struct err *err)
{
	int fd = create_at(d, rel, mode, true, data ? data : "", len, err);

	if (fd < 0)
		return -1;
	if (close(fd) < 0)
		return err_sys(err, "close %s/%s", d->path, rel);
	return 0;
}

/* The existing regular, singly-linked file at base reopened with flags, or -1
 * (errno ENOENT when absent, ESTALE when something else is there). */
static int reuse_existing(int pfd, const char *base, int flags)
{
	_cleanup_close_ int p = openat(pfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (p < 0)
		return -1;
	if (fstat(p, &st) < 0)
		return -1;
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		errno = ESTALE;
		return -1;
	}
	return reopen(p, flags);
}

static int open_or_create(const struct cdir *d, const char *rel, int flags, mode_t mode,
                          struct err *err)
{
	_cleanup_free_ char *base = NULL;
	_cleanup_free_ char *name = cdir_name(d, rel);
	_cleanup_close_ int pfd = resolve_parent(d, rel, &base, err);

	if (pfd < 0)
		return err_wrap(err, "open %s", name);
	for (int i = 0; i < CREATE_ATTEMPTS; i++) {
		int fd = reuse_existing(pfd, base, flags);

		if (fd >= 0)
			return fd;
		if (errno == ENOENT) {
			fd = openat(pfd, base, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			            mode & 0755);
			if (fd >= 0 || errno != EEXIST)
				return fd >= 0 ? fd : err_sys(err, "create %s", name);
			continue;
		}
		if (errno != ESTALE)
			return err_sys(err, "open %s", name);
		/* A link, FIFO, device or hard link is in the way: a file of our own. */
		fd = cdir_create(d, rel, mode, err);
		if (fd < 0)
			return -1;
		close(fd);
	}
	return err_set(err, EAGAIN, "open %s: it keeps changing", name);
}

int cdir_append(const struct cdir *d, const char *rel, mode_t mode, struct err *err)
{
	return open_or_create(d, rel, O_WRONLY | O_APPEND, mode, err);
}

int cdir_lockfile(const struct cdir *d, const char *rel, struct err *err)
{
	return open_or_create(d, rel, O_RDWR, 0644, err);
}

/* ---- directories ---- */

int cdir_mkdirs(const struct cdir *d, const char *rel, mode_t mode, bool replace, struct cdir *out,
                struct err *err)
{
	_cleanup_free_ char *copy = NULL;
	_cleanup_free_ char *name = cdir_name(d, rel);
	char *save = NULL, *comp;
	int cur;
	struct stat st0;

	if (!rel_ok(rel))
		return err_set(err, EINVAL, "%s: not a confined path", name);
	copy = xstrdup(rel);
	cur = fcntl(d->fd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0 || fstat(cur, &st0) < 0) {
		err_sys(err, "open %s", d->path);
		goto fail;
	}
	for (comp = strtok_r(copy, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		struct stat st;
		int next;

		if (strcmp(comp, ".") == 0)
			continue;
		if (mkdirat(cur, comp, mode & 0755) < 0 && errno != EEXIST) {
			err_sys(err, "mkdir %s", name);
			goto fail;
		}
		next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && (errno == ENOTDIR || errno == ELOOP) && replace) {
			if (tree_remove_at(cur, comp, err) < 0)
				goto fail;
			if (mkdirat(cur, comp, mode & 0755) < 0) {
				err_sys(err, "mkdir %s", name);
				goto fail;
			}
			next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			if (errno == ENOTDIR || errno == ELOOP)
				err_set(err, ENOTDIR, "%s: '%s' is not a directory (not followed)",
				        name, comp);
			else
				err_sys(err, "open %s", name);
			goto fail;
		}
		if (fstat(next, &st) < 0 || st.st_dev != st0.st_dev) {
			close(next);
			err_set(err, EXDEV, "%s: '%s' is on another filesystem", name, comp);
			goto fail;
		}
		close(cur);
		cur = next;
	}
	if (out)
		cdir_from_fd(cur, name, out);
	else
		close(cur);
	return 0;
fail:
	if (cur >= 0)
		close(cur);
	return -1;
}

int cdir_chmod(const struct cdir *d, mode_t mode, struct err *err)
{
	if (fchmod(d->fd, mode) < 0)
		return err_sys(err, "chmod %s", d->path);
	return 0;
}

int cdir_list(const struct cdir *d, size_t max, struct strv *out, struct err *err)
{
	int fd = fcntl(d->fd, F_DUPFD_CLOEXEC, 3);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return err_sys(err, "read %s", d->path);
	}
	rewinddir(dir);
	errno = 0;
	while ((de = readdir(dir))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (out->n >= max) {
			closedir(dir);
			return err_set(err, EFBIG, "%s: more than %zu entries", d->path, max);
		}
		strv_push(out, de->d_name);
	}
	if (errno) {
		int e = errno;

		closedir(dir);
		errno = e;
		return err_sys(err, "read %s", d->path);
	}
	closedir(dir);
	strv_sort(out);
	return 0;
}

int cdir_rename(const struct cdir *from, const char *from_rel, const struct cdir *to,
                const char *to_rel, bool replace, struct err *err)
{
	_cleanup_free_ char *fb = NULL;
	_cleanup_free_ char *tb = NULL;
	_cleanup_close_ int fp = resolve_parent(from, from_rel, &fb, err);
	_cleanup_close_ int tp = fp < 0 ? -1 : resolve_parent(to, to_rel, &tb, err);

	if (fp < 0 || tp < 0)
		return err_wrap(err, "rename %s/%s", from->path, from_rel);
	if (syscall(SYS_renameat2, fp, fb, tp, tb, replace ? 0 : RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EINVAL && !replace) {
		/* A filesystem without RENAME_NOREPLACE. */
		struct stat st;

		if (fstatat(tp, tb, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			errno = EEXIST;
		} else if (renameat(fp, fb, tp, tb) == 0) {
			return 0;
		}
	}
	return err_sys(err, "rename %s/%s to %s/%s", from->path, from_rel, to->path, to_rel);
}

/* ---- removal: any depth, bounded descriptors ---- */

struct rm_frame {
	DIR *d;
	char name[NAME_MAX + 1]; /* this directory's name in the frame below */
};

struct rm_state {
	int top_parent;     /* where deep subtrees are moved to be removed later */
	char token[40];     /* their names: <token>.<n> */
	unsigned long next; /* moved so far */
};

static int rm_open_dir(int parent, const char *name)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	/* A directory we cannot write or search (0500, 0000) is made so first. */
	if (fd < 0 && errno == EACCES && fchmodat(parent, name, 0700, 0) == 0)
		fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700)
		fchmod(fd, (st.st_mode & 07777) | 0700);
	return fd;
}

/* Removes directory `name` of `parent` and everything in it. Below RM_STACK
 * levels a subdirectory is renamed next to the tree instead of entered (the
 * caller removes it next), so descriptors stay bounded at any depth. */
static int rm_dir(int parent, const char *name, struct rm_state *s, struct err *err)
{
	struct rm_frame st[RM_STACK];
	int n = 0, rc = -1;

	int fd = rm_open_dir(parent, name);

	if (fd < 0 || !(st[0].d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return errno == ENOENT ? 0 : err_sys(err, "open %s", name);
	}
	snprintf(st[0].name, sizeof(st[0].name), "%s", name);
	n = 1;
	while (n > 0) {
		struct rm_frame *f = &st[n - 1];
		int dfd = dirfd(f->d);
		struct dirent *de;
		unsigned char type;

		errno = 0;
		de = readdir(f->d);
		if (!de) {
			int pfd = n > 1 ? dirfd(st[n - 2].d) : parent;

			if (errno) {
				err_sys(err, "read %s", f->name);
				goto out;
			}
			closedir(f->d);
			n--;
			if (unlinkat(pfd, f->name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
				err_sys(err, "rmdir %s", f->name);
				goto out;
			}
			continue;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		type = de->d_type;
		if (type == DT_UNKNOWN) {
			struct stat sb;

			if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			type = S_ISDIR(sb.st_mode) ? DT_DIR : DT_REG;
		}
		if (type != DT_DIR) {
			if (unlinkat(dfd, de->d_name, 0) < 0 && errno != ENOENT) {
				err_sys(err, "unlink %s", de->d_name);
				goto out;
			}
			continue;
		}
		if (n == RM_STACK) {
			char moved[64];

			snprintf(moved, sizeof(moved), "%s.%lu", s->token, s->next);
			if (renameat(dfd, de->d_name, s->top_parent, moved) < 0) {
				err_sys(err, "move deep directory %s", de->d_name);
				goto out;
			}
			s->next++;
			continue;
		}
		fd = rm_open_dir(dfd, de->d_name);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			err_sys(err, "open %s", de->d_name);
			goto out;
		}
		if (!(st[n].d = fdopendir(fd))) {
			close(fd);
			err_sys(err, "open %s", de->d_name);
			goto out;
		}
		snprintf(st[n].name, sizeof(st[n].name), "%s", de->d_name);
		n++;
	}
	rc = 0;
out:
	while (n > 0)
		closedir(st[--n].d);
	return rc;
}

int tree_remove_at(int dirfd, const char *name, struct err *err)
{
	struct rm_state s = {.top_parent = dirfd};
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : err_sys(err, "stat %s", name);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return err_sys(err, "unlink %s", name);
		return 0;
	}
	random_name(s.token, sizeof(s.token), ".rollout-rm.");
	if (rm_dir(dirfd, name, &s, err) < 0)
		return -1;
	/* Subtrees moved up from the depth limit, each removed the same way (and may
	 * move deeper parts of themselves up in turn). */
	for (unsigned long i = 0; i < s.next; i++) {
		char moved[64];

		snprintf(moved, sizeof(moved), "%s.%lu", s.token, i);
		if (rm_dir(dirfd, moved, &s, err) < 0)
			return -1;
	}
	return 0;
}

int cdir_remove(const struct cdir *d, const char *rel, struct err *err)
{
	_cleanup_free_ char *base = NULL;
	_cleanup_close_ int pfd = -1;

	if (rel_ok(rel) && is_self(rel))
		return err_set(err, EINVAL, "%s: refusing to remove the directory itself", d->path);
	pfd = resolve_parent(d, rel, &base, err);
	if (pfd < 0) {
		if (err->code == ENOENT)
			return 0;
		return -1;
	}
	if (tree_remove_at(pfd, base, err) < 0)
		return err_wrap(err, "remove %s/%s", d->path, rel);
	return 0;
}

int cdir_clear(const struct cdir *d, struct err *err)
{
	/* Names first, then removal: no directory stream open while entries go. */
	for (int pass = 0; pass < 4; pass++) {
		_cleanup_strvs_ struct strv names = STRV_INIT;

		if (cdir_list(d, SIZE_MAX, &names, err) < 0)
			return -1;
		if (names.n == 0)
			return 0;
		for (size_t i = 0; i < names.n; i++)
			if (tree_remove_at(d->fd, names.v[i], err) < 0)
				return err_wrap(err, "clear %s", d->path);
	}
	return err_set(err, EAGAIN, "clear %s: entries keep appearing", d->path);
}

/* ---- sanitizing ---- */

bool symlink_escapes(const char *target, int depth)
{
	int level = depth;
	const char *p = target;

	if (target[0] == '/' || !target[0])
		return true;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (--level < 0)
				return true;
		} else if (n > 0 && !(n == 1 && p[0] == '.')) {
			level++;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	return false;
}

struct san {
	const struct sanitize_limits *lim;
	struct sanitize_report *rep;
	long seen;
	uid_t uid;
	gid_t gid;
	bool chown;
};

static mode_t safe_mode(mode_t m)
{
	return m & 0755;
}

/* Owner and mode of an open entry (file or directory). */
static void fix_meta(struct san *s, int fd, const struct stat *st)
{
	if (s->chown && (st->st_uid != s->uid || st->st_gid != s->gid) &&
	    fchown(fd, s->uid, s->gid) == 0)
		s->rep->owners_fixed++;
	/* chown clears setuid/setgid on its own; set the mode last. */
	if ((st->st_mode & 07777) != safe_mode(st->st_mode) || s->chown) {
		if ((st->st_mode & 07777) != safe_mode(st->st_mode))
			s->rep->modes_fixed++;
		fchmod(fd, safe_mode(st->st_mode));
	}
	/* File capabilities are setuid by another name; ACLs could grant write. */
	if (fremovexattr(fd, "security.capability") == 0)
		s->rep->modes_fixed++;
	fremovexattr(fd, "system.posix_acl_access");
	if (S_ISDIR(st->st_mode))
		fremovexattr(fd, "system.posix_acl_default");
}

static int san_file(struct san *s, int dfd, const char *name, const struct stat *st,
                    struct err *err)
{
	long long left = s->lim->max_bytes > 0 ? s->lim->max_bytes - s->rep->bytes : -1;
	bool cut = left >= 0 && st->st_size > left;
	_cleanup_close_ int fd =
	    openat(dfd, name,
	           (cut ? O_WRONLY : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat again;

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return err_sys(err, "open %s", name);
	}
	if (fstat(fd, &again) < 0 || again.st_ino != st->st_ino || !S_ISREG(again.st_mode))
		return err_set(err, EAGAIN, "%s changed during the walk", name);
	fix_meta(s, fd, st);
	if (cut) {
		if (ftruncate(fd, left) < 0)
			return err_sys(err, "truncate %s", name);
		s->rep->files_truncated++;
		s->rep->bytes += left;
	} else {
		s->rep->bytes += st->st_size;
	}
	return 0;
}

/* One entry of the directory being sanitized; descends into directories. */
static int san_visit(void *ctx, const struct tree_frame *f, const char *name,
                     struct tree_frame *child, struct err *err)
{
	struct san *s = ctx;
	int dfd = dirfd(f->dir), depth = f->depth, fd;
	struct stat st;

	if (s->lim->deadline > 0 && (++s->seen & 255) == 0 && mono_now() > s->lim->deadline) {
		s->rep->timed_out = true;
		return TREE_STOP;
	}
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? TREE_NEXT : err_sys(err, "stat %s", name);
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t len = readlinkat(dfd, name, target, sizeof(target) - 1);

		if (len < 0 || (target[len] = '\0', symlink_escapes(target, depth))) {
			if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
				return err_sys(err, "unlink %s", name);
			s->rep->links_removed++;
		} else if (s->chown && st.st_uid != s->uid) {
			fchownat(dfd, name, s->uid, s->gid, AT_SYMLINK_NOFOLLOW);
			s->rep->owners_fixed++;
		}
		return TREE_NEXT;
	}
	if (S_ISREG(st.st_mode))
		return san_file(s, dfd, name, &st, err);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
			return err_sys(err, "unlink %s", name);
		s->rep->special_removed++;
		return TREE_NEXT;
	}
	if (depth + 1 > s->lim->max_depth) {
		if (tree_remove_at(dfd, name, err) < 0)
			return -1;
		s->rep->deep_removed++;
		return TREE_NEXT;
	}
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES && fchmodat(dfd, name, 0700, 0) == 0)
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? TREE_NEXT : err_sys(err, "open %s", name);
	fix_meta(s, fd, &st);
	if (tree_frame_open(child, fd, -1, NULL, err) < 0)
		return -1;
	return TREE_DESCEND;
}

int cdir_sanitize(const struct cdir *d, const struct sanitize_limits *lim,
                  struct sanitize_report *rep, struct err *err)
{
	struct sanitize_limits l = *lim;
	struct san s = {.lim = &l, .rep = rep, .uid = getuid(), .gid = getgid()};
	struct tree_frame root;
	struct stat st;
	int fd;

	memset(rep, 0, sizeof(*rep));
	if (l.max_depth <= 0)
		l.max_depth = SANITIZE_DEPTH_DEFAULT;
	s.chown = l.chown_to_caller && geteuid() == 0;
	fd = fcntl(d->fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return err_sys(err, "open %s", d->path);
	}
	fix_meta(&s, fd, &st);
	if (tree_frame_open(&root, fd, -1, d->path, err) < 0)
		return -1;
	if (tree_walk(&root, l.max_depth + 1, san_visit, &s, err) < 0)
		return err_wrap(err, "sanitize %s", d->path);
	return 0;
}

/* ---- copying a tree ---- */

struct copy_ctx {
	bool link_files;
};

static int copy_visit(void *ctx, const struct tree_frame *f, const char *name,
                      struct tree_frame *child, struct err *err)
{
	const struct copy_ctx *c = ctx;
	int sfd = dirfd(f->dir), s2, d2;
	struct stat st;

	if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? TREE_NEXT : err_sys(err, "stat %s", name);
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(sfd, name, target, sizeof(target) - 1);

		if (n < 0 || (target[n] = '\0', symlink_escapes(target, f->depth)))
			return TREE_NEXT;
		return symlinkat(target, f->fd2, name) < 0 ? err_sys(err, "symlink %s", name)
		                                           : TREE_NEXT;
	}
	if (S_ISREG(st.st_mode)) {
		_cleanup_close_ int in = -1, out = -1;
		bool cut;

		if (c->link_files && (st.st_mode & 07022) == 0 &&
		    linkat(sfd, name, f->fd2, name, 0) == 0)
			return TREE_NEXT;
		in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (in < 0)
			return err_sys(err, "open %s", name);
		out = openat(f->fd2, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		             st.st_mode & 0755);
		if (out < 0 || copy_data_sparse(in, out, 0, 0, &cut) < 0)
			return err_sys(err, "copy %s", name);
		return TREE_NEXT;
	}
	if (!S_ISDIR(st.st_mode))
		return TREE_NEXT;
	s2 = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s2 < 0 || mkdirat(f->fd2, name, st.st_mode & 0755) < 0 ||
	    (d2 = openat(f->fd2, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		if (s2 >= 0)
			close(s2);
		return err_sys(err, "copy %s", name);
	}
	if (tree_frame_open(child, s2, d2, NULL, err) < 0)
		return -1;
	return TREE_DESCEND;
}

int cdir_copy_tree(const struct cdir *src, const char *name, const struct cdir *dst, const char *to,
                   bool link_files, struct err *err)
{
	_cleanup_cdir_ struct cdir from = CDIR_INIT;
	_cleanup_cdir_ struct cdir into = CDIR_INIT;
	struct copy_ctx c = {.link_files = link_files};
	struct tree_frame root;
	int s, d;

	if (cdir_sub(src, name, &from, err) < 0)
		return -1;
	if (cdir_exists(dst, to))
		return err_set(err, EEXIST, "%s/%s exists", dst->path, to);
	if (cdir_mkdirs(dst, to, 0755, false, &into, err) < 0)
		return -1;
	s = fcntl(from.fd, F_DUPFD_CLOEXEC, 3);
	d = fcntl(into.fd, F_DUPFD_CLOEXEC, 3);
	if (s < 0 || d < 0) {
		if (s >= 0)
			close(s);
		if (d >= 0)
			close(d);
		return err_sys(err, "copy %s", from.path);
	}
	if (tree_frame_open(&root, s, d, from.path, err) < 0)
		return -1;
	if (tree_walk(&root, SANITIZE_DEPTH_DEFAULT, copy_visit, &c, err) < 0)
		return err_wrap(err, "copy %s to %s/%s", from.path, dst->path, to);
	return 0;
}

/* ---- walking ---- */

int tree_frame_open(struct tree_frame *f, int fd, int fd2, const char *what, struct err *err)
{
	f->dir = fdopendir(fd);
	f->fd2 = fd2;
	f->depth = 0;
	f->what = what ? xstrdup(what) : NULL;
	if (!f->dir) {
		int e = errno;

		close(fd);
		if (fd2 >= 0)
			close(fd2);
		free(f->what);
		f->what = NULL;
		errno = e;
		return err_sys(err, "read %s", what ? what : "a directory");
	}
	/* A dup'ed descriptor shares its offset: read from the start. */
	rewinddir(f->dir);
	return 0;
}

static void frame_release(struct tree_frame *f)
{
	closedir(f->dir);
	if (f->fd2 >= 0)
		close(f->fd2);
	free(f->what);
}

int tree_walk(struct tree_frame *root, int max_depth, tree_visit_fn visit, void *ctx,
              struct err *err)
{
	struct tree_frame *stack = xcalloc((size_t)max_depth, sizeof(*stack));
	int n = 1, rc = -1;

	stack[0] = *root;
	stack[0].depth = 0;
	while (n > 0) {
		struct tree_frame *f = &stack[n - 1];
		struct dirent *de;
		int v;

		errno = 0;
		de = readdir(f->dir);
		if (!de) {
			if (errno) {
				err_sys(err, "read %s", f->what ? f->what : "a directory");
				goto out;
			}
			frame_release(&stack[--n]);
			continue;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == max_depth) {
			/* No room for a child: only a visit that descends is refused. */
			struct tree_frame spare = {.fd2 = -1};

			v = visit(ctx, f, de->d_name, &spare, err);
			if (v == TREE_DESCEND) {
				frame_release(&spare);
				err_set(err, ELOOP, "%s/%s: deeper than %d levels",
				        f->what ? f->what : ".", de->d_name, max_depth);
				goto out;
			}
		} else {
			stack[n].fd2 = -1;
			v = visit(ctx, f, de->d_name, &stack[n], err);
			if (v == TREE_DESCEND) {
				stack[n].depth = f->depth + 1;
				n++;
				continue;
			}
		}
		if (v < 0)
			goto out;
		if (v == TREE_STOP)
			break;
	}
	rc = 0;
out:
	while (n > 0)
		frame_release(&stack[--n]);
	free(stack);
	return rc;
}

/* ---- copying data ---- */

static bool all_zero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

long long copy_data_sparse(int in, int out, long long max, double deadline, bool *truncated)
{
	static __thread char buf[1 << 16];
	struct stat st;
	long long size, end, off = 0;

	*truncated = false;
	if (fstat(in, &st) < 0)
		return -1;
	size = st.st_size;
	end = (max > 0 && size > max) ? max : size;
	if (end < size)
		*truncated = true;
	while (off < end) {
		long long data = lseek(in, off, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break; /* only a hole is left */
		if (data < 0)
			data = off; /* no SEEK_DATA here: all data */
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		for (off = data; off < hole;) {
			size_t want =
			    (size_t)(hole - off < (long long)sizeof(buf) ? hole - off
			                                                 : (long long)sizeof(buf));
			ssize_t r = pread(in, buf, want, off);

			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -1;
			if (r == 0) {
				hole = end = off; /* the file shrank */
				break;
			}
			if (deadline > 0 && mono_now() > deadline) {
				errno = ETIMEDOUT;
				return -1;
			}
			if (!all_zero(buf, (size_t)r)) {
				for (ssize_t w = 0; w < r;) {
					ssize_t k = pwrite(out, buf + w, (size_t)(r - w), off + w);

					if (k < 0 && errno == EINTR)
						continue;
					if (k < 0)
						return -1;
					w += k;
				}
			}
			off += r;
		}
		off = hole;
	}
	if (ftruncate(out, end) < 0)
		return -1;
	return end;
}
