/* Writing a host file or directory tree into a tar archive without following
 * symlinks; optionally converting an overlayfs upper dir into an OCI layer diff. */
#include "image/tar.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
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
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define TREE_MAX_DEPTH 512
#define COPY_BUF (256 * 1024)

struct inode_name {
	dev_t dev;
	ino_t ino;
	char *name; /* NULL: empty slot */
};

struct tree {
	struct tar_writer *w;
	unsigned flags;
	int64_t fixed_mtime;
	double deadline;
	struct inode_name *links; /* open addressing, power-of-two size */
	size_t n_links, cap_links;
	uint8_t *buf;
};

static size_t inode_hash(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t)dev;

	return (size_t)(h ^ (h >> 29));
}

static struct inode_name *inode_slot(struct tree *t, dev_t dev, ino_t ino)
{
	size_t mask = t->cap_links - 1;

	for (size_t i = inode_hash(dev, ino) & mask;; i = (i + 1) & mask)
		if (!t->links[i].name || (t->links[i].dev == dev && t->links[i].ino == ino))
			return &t->links[i];
}

/* The first archive name of a multiply-linked inode, or NULL after recording name. */
static const char *inode_seen(struct tree *t, const struct stat *st, const char *name)
{
	struct inode_name *slot;

	if (t->n_links * 2 >= t->cap_links) {
		struct inode_name *old = t->links;
		size_t old_cap = t->cap_links;

		t->cap_links = old_cap ? old_cap * 2 : 64;
		t->links = xcalloc(t->cap_links, sizeof(*t->links));
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].name)
				*inode_slot(t, old[i].dev, old[i].ino) = old[i];
		free(old);
	}
	slot = inode_slot(t, st->st_dev, st->st_ino);
	if (slot->name)
		return slot->name;
	slot->dev = st->st_dev;
	slot->ino = st->st_ino;
	slot->name = xstrdup(name);
	t->n_links++;
	return NULL;
}

static void free_xattrs(struct tar_entry *e)
{
	for (size_t i = 0; i < e->n_xattrs; i++) {
		free(e->xattrs[i].name);
		free(e->xattrs[i].value);
	}
	free(e->xattrs);
	e->xattrs = NULL;
	e->n_xattrs = 0;
}

static bool overlay_private_xattr(const char *name)
{
	return str_starts_with(name, "trusted.overlay.") || str_starts_with(name, "user.overlay.");
}

/* Read the xattrs of (dirfd, name) into e, applying the overlay conversion. */
static void read_xattrs(struct tree *t, int dirfd, const char *name, struct tar_entry *e)
{
	_cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d/%s", dirfd, name);
	char names[65536];
	ssize_t len;

	len = llistxattr(proc, names, sizeof(names));
	if (len <= 0)
		return;
	for (char *n = names; n < names + len; n += strlen(n) + 1) {
		char value[TAR_MAX_XATTR_VALUE];
		const char *stored = n;
		_cleanup_free_ char *unescaped = NULL;
		ssize_t vlen;

		if (strcmp(n, "security.selinux") == 0 || strcmp(n, "system.nfs4_acl") == 0)
			continue;
		if (t->flags & TAR_TREE_OVERLAY) {
			/* trusted.overlay.overlay.X is the image's own trusted.overlay.X. */
			if (str_starts_with(n, "trusted.overlay.overlay."))
				stored = unescaped = xasprintf("trusted.overlay.%s", n + 24);
			else if (str_starts_with(n, "user.overlay.overlay."))
				stored = unescaped = xasprintf("user.overlay.%s", n + 21);
			else if (overlay_private_xattr(n))
				continue;
		}
		vlen = lgetxattr(proc, n, value, sizeof(value));
		if (vlen < 0)
			continue;
		e->xattrs = xrealloc(e->xattrs, (e->n_xattrs + 1) * sizeof(*e->xattrs));
		e->xattrs[e->n_xattrs].name = xstrdup(stored);
		e->xattrs[e->n_xattrs].value = xmalloc((size_t)vlen + 1);
		memcpy(e->xattrs[e->n_xattrs].value, value, (size_t)vlen);
		e->xattrs[e->n_xattrs].len = (size_t)vlen;
		e->n_xattrs++;
	}
}

static bool dir_is_opaque(int dirfd, const char *name)
{
	_cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d/%s", dirfd, name);
	char v[4];
	ssize_t n;

	n = lgetxattr(proc, "trusted.overlay.opaque", v, sizeof(v));
	if (n < 0)
		n = lgetxattr(proc, "user.overlay.opaque", v, sizeof(v));
	return n == 1 && v[0] == 'y';
}

static int past_deadline(const struct tree *t, const char *arc, struct err *err)
{
	if (t->deadline > 0 && mono_now() >= t->deadline)
		return err_set(err, ETIMEDOUT, "timed out at %s", *arc ? arc : ".");
	return 0;
}

static int write_content(struct tree *t, int dirfd, const char *name, const char *arc,
                         uint64_t size, struct err *err)
{
	struct stat st;
	/* Typed before it is opened: the tree may be a container's (a FIFO put in
	 * place of the file since it was stat'ed would block the read). */
	_cleanup_close_ int fd = inroot_openat_regular(dirfd, name, &st);
	uint64_t left = size;

	if (fd < 0)
		return err_sys(err, "open %s", arc);
	while (left > 0) {
		size_t want = left < COPY_BUF ? (size_t)left : COPY_BUF;
		ssize_t n;

		if (past_deadline(t, arc, err) < 0)
			return -1;
		n = read(fd, t->buf, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys(err, "read %s", arc);
		if (n == 0)
			return err_set(err, EIO, "%s: file shrank while being archived", arc);
		if (tar_writer_data(t->w, t->buf, (size_t)n, err) < 0)
			return -1;
		left -= (uint64_t)n;
	}
	return 0;
}

static int write_node(struct tree *t, int dirfd, const char *name, const char *arc, int depth,
                      struct err *err);

static int write_children(struct tree *t, int dirfd, const char *name, const char *arc, int depth,
                          struct err *err)
{
	_cleanup_close_ int fd =
	    openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_strvs_ struct strv children = STRV_INIT;
	DIR *d;
	struct dirent *de;
	int dfd;

	if (depth >= TREE_MAX_DEPTH)
		return err_set(err, ELOOP, "%s: more than %d directory levels", arc,
		               TREE_MAX_DEPTH);
	if (fd < 0)
		return err_sys(err, "open directory %s", *arc ? arc : ".");
	dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return err_sys(err, "read directory %s", *arc ? arc : ".");
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			strv_push(&children, de->d_name);
	closedir(d);
	if (t->flags & TAR_TREE_SORTED)
		strv_sort(&children);
	for (size_t i = 0; i < children.n; i++) {
		_cleanup_free_ char *child =
		    *arc ? xasprintf("%s/%s", arc, children.v[i]) : xstrdup(children.v[i]);

		if (write_node(t, fd, children.v[i], child, depth + 1, err) < 0)
			return -1;
	}
	return 0;
}

/* "a/b/c" -> "a/b/.wh.c" */
static char *whiteout_name(const char *arc, const char *prefix)
{
	const char *slash = strrchr(arc, '/');

	if (!slash)
		return xasprintf("%s%s", prefix, arc);
	return xasprintf("%.*s/%s%s", (int)(slash - arc), arc, prefix, slash + 1);
}

static int write_node(struct tree *t, int dirfd, const char *name, const char *arc, int depth,
                      struct err *err)
{
	struct stat st;
	struct tar_entry e = {0};
	_cleanup_free_ char *link = NULL;
	const char *first;
	bool root_contents = !*arc;
	int ret;

	if (past_deadline(t, arc, err) < 0)
		return -1;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(err, "stat %s", *arc ? arc : name);
	e.path = (char *)arc;
	e.mode = st.st_mode & 07777;
	e.uid = (t->flags & TAR_TREE_ROOT_OWNER) ? 0 : st.st_uid;
	e.gid = (t->flags & TAR_TREE_ROOT_OWNER) ? 0 : st.st_gid;
	e.mtime = t->fixed_mtime >= 0 ? t->fixed_mtime : st.st_mtim.tv_sec;

	switch (st.st_mode & S_IFMT) {
	case S_IFDIR:
		if (!root_contents) {
			e.type = TAR_DIR;
			if (t->flags & TAR_TREE_XATTRS)
				read_xattrs(t, dirfd, name, &e);
			ret = tar_writer_header(t->w, &e, err);
			free_xattrs(&e);
			if (ret < 0)
				return -1;
			if ((t->flags & TAR_TREE_OVERLAY) && dir_is_opaque(dirfd, name)) {
				_cleanup_free_ char *opq = xasprintf("%s/.wh..wh..opq", arc);
				struct tar_entry o = {.type = TAR_REG,
				                      .path = opq,
				                      .mode = e.mode,
				                      .uid = e.uid,
				                      .gid = e.gid,
				                      .mtime = e.mtime};

				if (tar_writer_header(t->w, &o, err) < 0)
					return -1;
			}
		}
		return write_children(t, dirfd, name, arc, depth, err);
	case S_IFREG:
		if (root_contents)
			return err_set(err, EINVAL, "%s: an archive name is needed for a file",
			               name);
		if (st.st_nlink > 1 && (first = inode_seen(t, &st, arc))) {
			e.type = TAR_HARDLINK;
			e.linkpath = (char *)first;
			return tar_writer_header(t->w, &e, err);
		}
		e.type = TAR_REG;
		e.size = (uint64_t)st.st_size;
		if (t->flags & TAR_TREE_XATTRS)
			read_xattrs(t, dirfd, name, &e);
		ret = tar_writer_header(t->w, &e, err);
		free_xattrs(&e);
		if (ret < 0)
			return -1;
		return write_content(t, dirfd, name, arc, e.size, err);
	case S_IFLNK: {
		ssize_t n;

		link = xmalloc(PATH_MAX);
		n = readlinkat(dirfd, name, link, PATH_MAX - 1);
		if (n < 0)
			return err_sys(err, "readlink %s", arc);
		link[n] = '\0';
		e.type = TAR_SYMLINK;
		e.linkpath = link;
		return tar_writer_header(t->w, &e, err);
	}
	case S_IFCHR:
		if ((t->flags & TAR_TREE_OVERLAY) && st.st_rdev == makedev(0, 0)) {
			_cleanup_free_ char *wh = whiteout_name(arc, ".wh.");
			struct tar_entry w = {.type = TAR_REG, .path = wh, .mtime = e.mtime};

			return tar_writer_header(t->w, &w, err);
		}
		e.type = TAR_CHAR;
		e.devmajor = major(st.st_rdev);
		e.devminor = minor(st.st_rdev);
		return tar_writer_header(t->w, &e, err);
	case S_IFBLK:
		e.type = TAR_BLOCK;
		e.devmajor = major(st.st_rdev);
		e.devminor = minor(st.st_rdev);
		return tar_writer_header(t->w, &e, err);
	case S_IFIFO:
		e.type = TAR_FIFO;
		return tar_writer_header(t->w, &e, err);
	default: /* sockets cannot be archived */
		return 0;
	}
}

int tar_write_tree(struct tar_writer *w, int dirfd, const char *path, const char *arcname,
                   const struct tar_tree_opts *opts, struct err *err)
{
	struct tree t = {.w = w, .fixed_mtime = -1};
	_cleanup_free_ char *arc = NULL;
	int ret;

	if (opts) {
		t.flags = opts->flags;
		t.fixed_mtime = opts->fixed_mtime;
		t.deadline = opts->deadline;
	}
	if (!arcname || strcmp(arcname, ".") == 0 || strcmp(arcname, "./") == 0)
		arc = xstrdup("");
	else {
		arc = xstrdup(arcname);
		while (strlen(arc) > 1 && str_ends_with(arc, "/"))
			arc[strlen(arc) - 1] = '\0';
	}
	t.buf = xmalloc(COPY_BUF);
	ret = write_node(&t, dirfd, path, arc, 0, err);
	for (size_t i = 0; i < t.cap_links; i++)
		free(t.links[i].name);
	free(t.links);
	free(t.buf);
	return ret;
}
