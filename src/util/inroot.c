/* Path resolution confined to a root directory fd (see inroot.h). */
#include "rollout/inroot.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INROOT_MAX_SYMLINKS 40

bool inroot_force_fallback;
static bool openat2_missing;

static int open_with_openat2(int rootfd, const char *path, int flags, mode_t mode)
{
	return fs_openat2(rootfd, *path ? path : ".", flags, mode,
	                  RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

struct walk {
	int *fds; /* fds[0] is the root; fds[depth] the current directory */
	size_t depth, cap;
};

static void walk_release(struct walk *w)
{
	for (size_t i = 0; i <= w->depth && w->fds; i++)
		close(w->fds[i]);
	free(w->fds);
}

static int walk_push(struct walk *w, int fd)
{
	if (w->depth + 1 >= w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->fds = xrealloc(w->fds, w->cap * sizeof(int));
	}
	w->fds[++w->depth] = fd;
	return 0;
}

static void walk_pop_to(struct walk *w, size_t depth)
{
	while (w->depth > depth)
		close(w->fds[w->depth--]);
}

/* Replace `rest` with target + "/" + rest-after-component. */
static int expand_symlink(struct walk *w, const char *name, struct strbuf *rest, const char *after,
                          int *links)
{
	char target[PATH_MAX];
	ssize_t n;
	struct strbuf next = STRBUF_INIT;

	if (++*links > INROOT_MAX_SYMLINKS) {
		errno = ELOOP;
		return -1;
	}
	n = readlinkat(w->fds[w->depth], name, target, sizeof(target) - 1);
	if (n < 0)
		return -1;
	target[n] = '\0';
	if (target[0] == '/')
		walk_pop_to(w, 0);
	sb_adds(&next, target);
	sb_addc(&next, '/');
	sb_adds(&next, after);
	sb_release(rest);
	*rest = next;
	return 0;
}

/* The walk the kernel does for RESOLVE_IN_ROOT, one component at a time: every
 * directory is opened O_PATH|O_NOFOLLOW, symlinks are read and re-walked from the
 * root (absolute) or the current directory, ".." never goes above the root. */
static int open_with_walk(int rootfd, const char *path, int flags, mode_t mode)
{
	struct walk w = {0};
	_cleanup_sb_ struct strbuf rest = STRBUF_INIT;
	int links = 0, fd, saved;

	w.cap = 16;
	w.fds = xmalloc(w.cap * sizeof(int));
	w.fds[0] = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (w.fds[0] < 0) {
		free(w.fds);
		return -1;
	}
	sb_adds(&rest, path);
	for (;;) {
		char *p = rest.buf ? rest.buf : (char *)"";
		char *end, *after;
		_cleanup_free_ char *comp = NULL;
		bool last;
		struct stat st;

		while (*p == '/')
			p++;
		if (!*p) {
			fd = openat(w.fds[w.depth], ".", flags | O_CLOEXEC, mode);
			goto out;
		}
		end = strchr(p, '/');
		comp = end ? xstrndup(p, (size_t)(end - p)) : xstrdup(p);
		after = end ? end : p + strlen(p);
		while (*after == '/')
			after++;
		last = *after == '\0';
		if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
			if (comp[1] == '.' && w.depth > 0)
				walk_pop_to(&w, w.depth - 1);
			memmove(rest.buf, after, strlen(after) + 1);
			rest.len = strlen(rest.buf);
			continue;
		}
		if (fstatat(w.fds[w.depth], comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT && last) {
				/* Creating it (or reporting ENOENT) happens in the final openat. */
				fd = openat(w.fds[w.depth], comp, flags | O_NOFOLLOW | O_CLOEXEC,
				            mode);
				goto out;
			}
			fd = -1;
			goto out;
		}
		if (S_ISLNK(st.st_mode) && !(last && (flags & O_NOFOLLOW))) {
			_cleanup_free_ char *tail = xstrdup(after);

			if (expand_symlink(&w, comp, &rest, tail, &links) < 0) {
				fd = -1;
				goto out;
			}
			continue;
		}
		if (last) {
			/* O_NOFOLLOW: if it became a symlink since the stat, fail rather than follow. */
			fd = openat(w.fds[w.depth], comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
			goto out;
		}
		fd = openat(w.fds[w.depth], comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			goto out;
		walk_push(&w, fd);
		memmove(rest.buf, after, strlen(after) + 1);
		rest.len = strlen(rest.buf);
	}
out:
	saved = errno;
	walk_release(&w);
	errno = saved;
	return fd;
}

int inroot_open(int rootfd, const char *path, int flags, mode_t mode)
{
	if (!inroot_force_fallback && !openat2_missing) {
		int fd = open_with_openat2(rootfd, path, flags, mode);

		if (fd >= 0 || errno != ENOSYS)
			return fd;
		openat2_missing = true;
	}
	return open_with_walk(rootfd, path, flags, mode);
}

int inroot_reopen_regular(int pathfd, struct stat *st)
{
	char proc[32];

	if (fstat(pathfd, st) < 0)
		return -1;
	if (!S_ISREG(st->st_mode)) {
		errno = EINVAL;
		return -1;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pathfd);
	return open(proc, O_RDONLY | O_NOCTTY | O_CLOEXEC);
}

int inroot_openat_regular(int dirfd, const char *name, struct stat *st)
{
	_cleanup_close_ int pfd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (pfd < 0)
		return -1;
	return inroot_reopen_regular(pfd, st);
}

const char *inroot_type_name(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "regular file";
	case S_IFDIR:
		return "directory";
	case S_IFLNK:
		return "symbolic link";
	case S_IFIFO:
		return "FIFO";
	case S_IFSOCK:
		return "socket";
	case S_IFCHR:
		return "character device";
	case S_IFBLK:
		return "block device";
	}
	return "special file";
}

int inroot_mkdirs(int rootfd, const char *path, mode_t mode, const struct inroot_owner *owner,
                  struct err *err)
{
	_cleanup_sb_ struct strbuf prefix = STRBUF_INIT;
	int cur = inroot_open(rootfd, "", O_PATH | O_DIRECTORY, 0);

	if (cur < 0)
		return err_sys(err, "open the root");
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");
		_cleanup_free_ char *comp = xstrndup(p, n);
		int next;

		p += n;
		while (*p == '/')
			p++;
		if (n == 0 || strcmp(comp, ".") == 0)
			continue;
		sb_addf(&prefix, "/%s", comp);
		/* Each prefix is resolved inside the root: the tree's links count. */
		next = inroot_open(rootfd, prefix.buf, O_PATH | O_DIRECTORY, 0);
		if (next < 0 && errno == ENOENT && strcmp(comp, "..") != 0) {
			bool made = mkdirat(cur, comp, mode) == 0;

			if (!made && errno != EEXIST) {
				err_sys(err, "mkdir %s", prefix.buf);
				goto fail;
			}
			/* Only what it made: an EEXIST here is a link leading out of the root
			 * (resolved inside, it is missing), and fchmodat follows links. */
			if (made && owner &&
			    (fchownat(cur, comp, owner->uid, owner->gid, AT_SYMLINK_NOFOLLOW) < 0 ||
			     fchmodat(cur, comp, mode, 0) < 0)) {
				err_sys(err, "chown %s", prefix.buf);
				goto fail;
			}
			next = inroot_open(rootfd, prefix.buf, O_PATH | O_DIRECTORY, 0);
		}
		if (next < 0) {
			err_sys(err, "%s", prefix.buf);
			goto fail;
		}
		close(cur);
		cur = next;
	}
	return cur;
fail:
	close(cur);
	return -1;
}
