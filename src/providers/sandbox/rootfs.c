/* An environment's own root directory at --isolation chroot (chroot.c), where
 * no overlay can be mounted. rootfs_flatten copies the image's layers (the
 * store's overlayfs lower directories, bottom first) into one directory as
 * overlayfs would show them: an upper entry replaces a lower one, a whiteout
 * (char 0/0) removes it, an opaque directory hides the lower contents, the
 * topmost directory's attributes win. Copies, never hard links into the
 * store: the environment would write through into the image's layers. Regular
 * files are cloned (FICLONE) where the filesystem shares extents, copied
 * inside the kernel (copy_file_range) otherwise. For a build step,
 * rootfs_diff turns what changed since the copy into an overlay upper
 * directory, the step's layer. Every path is resolved beneath its tree
 * without following symlinks; walks are breadth-first with two directory fds
 * open at a time, whatever the depth. */
#include "providers/sandbox/rootfs.h"
#include "providers/sandbox/sys.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* ---- Shared pieces ---- */

static int open_dir_beneath(int root, const char *rel)
{
	return sys_openat2(root, *rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
	                   0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
}

static char *child_rel(const char *rel, const char *name)
{
	return *rel ? xasprintf("%s/%s", rel, name) : xstrdup(name);
}

static bool is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool is_opaque(int dirfd, bool userxattr)
{
	char v[4];
	ssize_t n = fgetxattr(dirfd, userxattr ? "user.overlay.opaque" : "trusted.overlay.opaque",
	                      v, sizeof(v));

	return n == 1 && v[0] == 'y';
}

/* overlayfs' own attributes (opaque markers, redirects) describe the layer,
 * not the file: they are not copied. */
static bool overlay_xattr(const char *name)
{
	return str_starts_with(name, "trusted.overlay.") || str_starts_with(name, "user.overlay.");
}

/* Extended attributes (file capabilities, user.*) onto dst; one that the
 * destination refuses is dropped, as Docker drops what a filesystem cannot hold. */
static void copy_xattrs(int src, int dst)
{
	char names[16384];
	ssize_t len = flistxattr(src, names, sizeof(names));

	for (char *n = names; len > 0 && n < names + len; n += strlen(n) + 1) {
		char value[8192];
		ssize_t vlen;

		if (overlay_xattr(n))
			continue;
		vlen = fgetxattr(src, n, value, sizeof(value));
		if (vlen >= 0)
			(void)fsetxattr(dst, n, value, (size_t)vlen, 0);
	}
}

struct copier {
	bool owners;   /* we are root: files keep their owners */
	bool no_clone; /* FICLONE failed once: not tried again */
	struct rootfs_stats *st;
};

/* The data of in into out: shared extents where possible, else an in-kernel
 * copy, else read/write (only from the start: a copy that fails halfway is an
 * error, not a shorter file). */
static int copy_data(struct copier *c, int in, int out, off_t size)
{
	char buf[65536];
	off_t done = 0;
	ssize_t n;

	if (!c->no_clone) {
		if (ioctl(out, FICLONE, in) == 0) {
			c->st->cloned++;
			return 0;
		}
		c->no_clone = true;
	}
	while (done < size) {
		n = copy_file_range(in, NULL, out, NULL, (size_t)(size - done), 0);
		if (n > 0) {
			done += n;
			continue;
		}
		if (n == 0)
			return 0; /* the file is shorter than it was */
		if (done == 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
		                  errno == EOPNOTSUPP || errno == EPERM))
			break;
		return -1;
	}
	if (done >= size)
		return 0;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write_all(out, buf, (size_t)n) < 0)
			return -1;
	return n < 0 ? -1 : 0;
}

/* Owner first (a chown clears set-id bits and file capabilities), then the
 * extended attributes, the mode, the times. */
static int finish_file(struct copier *c, int in, int out, const struct stat *st)
{
	struct timespec t[2] = {st->st_atim, st->st_mtim};

	if (c->owners && fchown(out, st->st_uid, st->st_gid) < 0)
		return -1;
	copy_xattrs(in, out);
	if (fchmod(out, st->st_mode & 07777) < 0 || futimens(out, t) < 0)
		return -1;
	return 0;
}

static int copy_reg(struct copier *c, int sdir, const char *name, const struct stat *st, int ddir,
                    struct err *err)
{
	_cleanup_close_ int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	_cleanup_close_ int out = -1;

	if (in < 0)
		return err_sys(err, "open %s", name);
	out = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return err_sys(err, "create %s", name);
	if (copy_data(c, in, out, st->st_size) < 0)
		return err_sys(err, "copy %s", name);
	if (finish_file(c, in, out, st) < 0)
		return err_sys(err, "attributes of %s", name);
	c->st->files++;
	c->st->bytes += st->st_size;
	return 0;
}

static int copy_symlink(struct copier *c, int sdir, const char *name, const struct stat *st,
                        int ddir, struct err *err)
{
	struct timespec t[2] = {st->st_atim, st->st_mtim};
	char target[PATH_MAX];
	ssize_t n = readlinkat(sdir, name, target, sizeof(target) - 1);

	if (n < 0)
		return err_sys(err, "readlink %s", name);
	target[n] = '\0';
	if (symlinkat(target, ddir, name) < 0)
		return err_sys(err, "symlink %s", name);
	if (c->owners && fchownat(ddir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(err, "chown %s", name);
	utimensat(ddir, name, t, AT_SYMLINK_NOFOLLOW);
	return 0;
}

static int copy_fifo(struct copier *c, int ddir, const char *name, const struct stat *st,
                     struct err *err)
{
	struct timespec t[2] = {st->st_atim, st->st_mtim};

	if (mkfifoat(ddir, name, 0600) < 0)
		return err_sys(err, "mkfifo %s", name);
	if (c->owners && fchownat(ddir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(err, "chown %s", name);
	if (fchmodat(ddir, name, st->st_mode & 07777, 0) < 0)
		return err_sys(err, "chmod %s", name);
	utimensat(ddir, name, t, AT_SYMLINK_NOFOLLOW);
	return 0;
}

/* A non-directory: regular files, symlinks and FIFOs. Device nodes and
 * sockets are left out: with no nodev mount and no device cgroup of ours, a
 * node an image carries (`b 8:0`, the host's disk) would be the real device;
 * /dev gets the usual few (chroot.c). */
static int copy_leaf(struct copier *c, int sdir, const char *name, const struct stat *st, int ddir,
                     struct err *err)
{
	if (S_ISREG(st->st_mode))
		return copy_reg(c, sdir, name, st, ddir, err);
	if (S_ISLNK(st->st_mode))
		return copy_symlink(c, sdir, name, st, ddir, err);
	if (S_ISFIFO(st->st_mode))
		return copy_fifo(c, ddir, name, st, err);
	c->st->skipped++;
	return 0;
}

/* A directory's own attributes (not its times: its children change them). */
static int dir_attrs(struct copier *c, int src, int dst, const struct stat *st, struct err *err)
{
	if (c->owners && fchown(dst, st->st_uid, st->st_gid) < 0)
		return err_sys(err, "chown a directory");
	copy_xattrs(src, dst);
	if (fchmod(dst, st->st_mode & 07777) < 0)
		return err_sys(err, "chmod a directory");
	return 0;
}

/* Directory times, applied once nothing is created below them any more. */
struct dir_times {
	struct strv rels;
	struct timespec (*t)[2];
	size_t cap;
};

static void times_note(struct dir_times *dt, const char *rel, const struct stat *st)
{
	if (dt->rels.n == dt->cap) {
		dt->cap = dt->cap ? 2 * dt->cap : 256;
		dt->t = xrealloc(dt->t, dt->cap * sizeof(*dt->t));
	}
	dt->t[dt->rels.n][0] = st->st_atim;
	dt->t[dt->rels.n][1] = st->st_mtim;
	strv_push(&dt->rels, rel);
}

/* In the order noted: a later layer's times win. A directory a later layer
 * removed or replaced is skipped. */
static void times_apply(struct dir_times *dt, int root)
{
	for (size_t i = 0; i < dt->rels.n; i++) {
		int fd = open_dir_beneath(root, dt->rels.v[i]);

		if (fd >= 0) {
			futimens(fd, dt->t[i]);
			close(fd);
		}
	}
	strv_release(&dt->rels);
	free(dt->t);
	dt->t = NULL;
	dt->cap = 0;
}

/* ---- Flattening ---- */

/* Hard links inside one layer stay links: the first copy's path by (dev, ino). */
struct link_ent {
	dev_t dev;
	ino_t ino;
	char *rel;
	struct link_ent *next;
};

struct flattener {
	struct copier c;
	int root; /* the destination */
	bool userxattr;
	struct dir_times times;
	struct link_ent *links[1024];
};

static void links_clear(struct flattener *f)
{
	for (size_t i = 0; i < ARRAY_SIZE(f->links); i++)
		while (f->links[i]) {
			struct link_ent *e = f->links[i];

			f->links[i] = e->next;
			free(e->rel);
			free(e);
		}
}

/* Links name to an earlier copy of the same inode; false when there is none
 * (or it cannot be linked: then it is copied). */
static bool link_earlier(struct flattener *f, const struct stat *st, int ddir, const char *name,
                         const char *rel)
{
	struct link_ent **b = &f->links[st->st_ino % ARRAY_SIZE(f->links)], *e;

	for (e = *b; e; e = e->next) {
		if (e->dev == st->st_dev && e->ino == st->st_ino) {
			const char *slash = strrchr(e->rel, '/');
			_cleanup_free_ char *parent =
			    slash ? xstrndup(e->rel, (size_t)(slash - e->rel)) : xstrdup("");
			_cleanup_close_ int pfd = open_dir_beneath(f->root, parent);

			return pfd >= 0 &&
			       linkat(pfd, slash ? slash + 1 : e->rel, ddir, name, 0) == 0;
		}
	}
	e = xcalloc(1, sizeof(*e));
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->rel = xstrdup(rel);
	e->next = *b;
	*b = e;
	return false;
}

/* One entry of a layer directory over what the layers below put there. */
static int flatten_entry(struct flattener *f, int sdir, int ddir, const char *rel, const char *name,
                         struct strv *queue, struct err *err)
{
	_cleanup_free_ char *crel = child_rel(rel, name);
	struct stat st, old;
	bool have_old = fstatat(ddir, name, &old, AT_SYMLINK_NOFOLLOW) == 0;

	if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(err, "stat %s", crel);
	if (is_whiteout(&st))
		return tree_remove_at(ddir, name, err);
	if (S_ISDIR(st.st_mode)) {
		/* A directory over a directory merges; over anything else replaces. */
		if (have_old && !S_ISDIR(old.st_mode) && tree_remove_at(ddir, name, err) < 0)
			return -1;
		if ((!have_old || !S_ISDIR(old.st_mode)) && mkdirat(ddir, name, 0700) < 0)
			return err_sys(err, "mkdir %s", crel);
		strv_push(queue, crel);
		return 0;
	}
	if (have_old && tree_remove_at(ddir, name, err) < 0)
		return -1;
	if (S_ISREG(st.st_mode) && st.st_nlink > 1 && link_earlier(f, &st, ddir, name, crel))
		return 0;
	if (copy_leaf(&f->c, sdir, name, &st, ddir, err) < 0)
		return err_wrap(err, "%s", crel);
	return 0;
}

/* Removes what the layers below put in dst (an opaque directory hides it). */
static int clear_dir(int dst, struct err *err)
{
	_cleanup_strvs_ struct strv names = STRV_INIT;

	if (dir_names_sorted(dst, &names) < 0)
		return err_sys(err, "list a directory");
	for (size_t i = 0; i < names.n; i++)
		if (tree_remove_at(dst, names.v[i], err) < 0)
			return -1;
	return 0;
}

static int flatten_dir(struct flattener *f, int layer, const char *rel, struct strv *queue,
                       struct err *err)
{
	_cleanup_close_ int src = open_dir_beneath(layer, rel), dst = -1;
	_cleanup_strvs_ struct strv names = STRV_INIT;
	struct stat st;

	if (src < 0 || fstat(src, &st) < 0)
		return err_sys(err, "open %s in a layer", *rel ? rel : "/");
	dst = open_dir_beneath(f->root, rel);
	if (dst < 0)
		return err_sys(err, "open %s in the root", *rel ? rel : "/");
	if (*rel && is_opaque(src, f->userxattr) && clear_dir(dst, err) < 0)
		return -1;
	if (dir_attrs(&f->c, src, dst, &st, err) < 0)
		return err_wrap(err, "%s", *rel ? rel : "/");
	times_note(&f->times, rel, &st);
	f->c.st->dirs++;
	if (dir_names_sorted(src, &names) < 0)
		return err_sys(err, "list %s in a layer", *rel ? rel : "/");
	for (size_t i = 0; i < names.n; i++)
		if (flatten_entry(f, src, dst, rel, names.v[i], queue, err) < 0)
			return -1;
	return 0;
}

static int flatten_layer(struct flattener *f, const char *layer_dir, struct err *err)
{
	_cleanup_close_ int layer = open(layer_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_strvs_ struct strv queue = STRV_INIT;

	if (layer < 0)
		return err_sys(err, "open layer %s", layer_dir);
	strv_push(&queue, "");
	for (size_t i = 0; i < queue.n; i++) {
		if (cancel_requested())
			return err_set(err, ECANCELED, "copying the image: cancelled");
		if (flatten_dir(f, layer, queue.v[i], &queue, err) < 0)
			return -1;
		/* Done with it: the queue holds only what is still to do. */
		free(queue.v[i]);
		queue.v[i] = NULL;
	}
	links_clear(f);
	return 0;
}

int rootfs_flatten(const struct rootfs_layers *ly, int root_fd, struct rootfs_stats *st,
                   struct err *err)
{
	struct flattener f = {.root = root_fd, .userxattr = ly->userxattr};
	struct rootfs_stats ignored;
	int rc = 0;

	memset(st ? st : &ignored, 0, sizeof(ignored));
	f.c.owners = geteuid() == 0;
	f.c.st = st ? st : &ignored;
	for (size_t i = 0; i < ly->n && rc == 0; i++)
		if (flatten_layer(&f, ly->dirs[i], err) < 0)
			rc = err_wrap(err, "copy the image's layer %zu of %zu", i + 1, ly->n);
	links_clear(&f);
	times_apply(&f.times, root_fd);
	return rc;
}

/* ---- The merged view of the layers, for the diff ---- */

/* A directory as the layers show it: the directories of each layer that
 * contribute to it, top first (up to the first opaque one). */
struct lower_dir {
	int *fds;
	size_t n;
	bool is_dir; /* false: absent, or not a directory */
};

static void lower_release(struct lower_dir *l)
{
	for (size_t i = 0; i < l->n; i++)
		close(l->fds[i]);
	free(l->fds);
	l->fds = NULL;
	l->n = 0;
}

/* One step down: component name of every contributing directory. */
static void lower_step(struct lower_dir *l, const char *name, bool userxattr)
{
	int *next = xcalloc(l->n ? l->n : 1, sizeof(int));
	size_t k = 0;

	for (size_t i = 0; i < l->n; i++) {
		struct stat st;
		int fd;

		if (fstatat(l->fds[i], name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISDIR(st.st_mode))
			break; /* a whiteout or a non-directory hides what is below */
		fd = openat(l->fds[i], name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			break;
		next[k++] = fd;
		if (is_opaque(fd, userxattr))
			break;
	}
	lower_release(l);
	l->fds = next;
	l->n = k;
	l->is_dir = k > 0;
}

static int lower_open(const struct rootfs_layers *ly, const char *rel, struct lower_dir *l)
{
	_cleanup_free_ char *copy = xstrdup(rel);
	char *save = NULL;

	l->fds = xcalloc(ly->n ? ly->n : 1, sizeof(int));
	l->n = 0;
	for (size_t i = ly->n; i-- > 0;) {
		int fd = open(ly->dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0) {
			lower_release(l);
			return -1;
		}
		l->fds[l->n++] = fd;
	}
	l->is_dir = true;
	for (char *c = strtok_r(copy, "/", &save); c && l->is_dir; c = strtok_r(NULL, "/", &save))
		lower_step(l, c, ly->userxattr);
	return 0;
}

/* The names the merged directory holds and their types (top layer first, a
 * whiteout hiding the name below it). */
struct lower_entry {
	char *name;
	mode_t type; /* S_IFMT bits; 0 = whited out */
	size_t layer;
};

static int entry_cmp(const void *a, const void *b)
{
	const struct lower_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->layer < y->layer ? -1 : x->layer > y->layer);
}

static size_t lower_names(const struct lower_dir *l, struct lower_entry **out)
{
	struct lower_entry *e = NULL;
	size_t n = 0, cap = 0, k = 0;

	for (size_t i = 0; i < l->n; i++) {
		_cleanup_strvs_ struct strv names = STRV_INIT;

		if (dir_names_sorted(l->fds[i], &names) < 0)
			continue;
		for (size_t j = 0; j < names.n; j++) {
			struct stat st;

			if (fstatat(l->fds[i], names.v[j], &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				e = xrealloc(e, cap * sizeof(*e));
			}
			e[n].name = xstrdup(names.v[j]);
			e[n].type = is_whiteout(&st) ? 0 : st.st_mode & S_IFMT;
			e[n].layer = i;
			n++;
		}
	}
	if (n)
		qsort(e, n, sizeof(*e), entry_cmp);
	/* The topmost of each name decides. */
	for (size_t i = 0; i < n; i++) {
		if (k && strcmp(e[k - 1].name, e[i].name) == 0) {
			free(e[i].name);
			continue;
		}
		e[k++] = e[i];
	}
	*out = e;
	return k;
}

static const struct lower_entry *lower_find(const struct lower_entry *e, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(e[mid].name, name);

		if (c == 0)
			return e[mid].type ? &e[mid] : NULL;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void entries_free(struct lower_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

/* ---- The diff ---- */

struct differ {
	struct copier c;
	int root, upper;
	const struct rootfs_layers *ly;
	struct timespec since;
	const char *const *exclude;
	struct dir_times times; /* of the upper directories made */
};

static bool changed(const struct differ *d, const struct stat *st)
{
	return st->st_ctim.tv_sec > d->since.tv_sec ||
	       (st->st_ctim.tv_sec == d->since.tv_sec && st->st_ctim.tv_nsec >= d->since.tv_nsec);
}

static bool excluded(const struct differ *d, const char *rel)
{
	for (const char *const *x = d->exclude; x && *x; x++)
		if (strcmp(rel, *x) == 0)
			return true;
	return false;
}

/* "rel/" in exclude: the directory is not the step's, what it holds may be. */
static bool excluded_self(const struct differ *d, const char *rel)
{
	size_t n = strlen(rel);

	for (const char *const *x = d->exclude; x && *x; x++)
		if (strncmp(rel, *x, n) == 0 && strcmp(*x + n, "/") == 0)
			return true;
	return false;
}

/* The upper directory for rel, made with the root's attributes (and its
 * missing parents): an fd of it. */
static int upper_dir(struct differ *d, const char *rel, struct err *err)
{
	_cleanup_free_ char *copy = xstrdup(rel);
	_cleanup_sb_ struct strbuf at = STRBUF_INIT;
	char *save = NULL;
	int fd = openat(d->upper, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	for (char *c = strtok_r(copy, "/", &save); c && fd >= 0; c = strtok_r(NULL, "/", &save)) {
		int next;

		sb_addf(&at, "%s%s", at.len ? "/" : "", c);
		if (mkdirat(fd, c, 0700) == 0) {
			_cleanup_close_ int src = open_dir_beneath(d->root, sb_str(&at));
			struct stat st;

			next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (src >= 0 && next >= 0 && fstat(src, &st) == 0) {
				dir_attrs(&d->c, src, next, &st, err);
				times_note(&d->times, sb_str(&at), &st);
			}
		} else {
			next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		close(fd);
		fd = next;
	}
	if (fd < 0)
		return err_sys(err, "make %s in the upper directory", *rel ? rel : "/");
	return fd;
}

static int put_leaf(struct differ *d, int sdir, const char *rel, const char *name,
                    const struct stat *st, struct err *err)
{
	_cleanup_close_ int up = upper_dir(d, rel, err);

	if (up < 0 || tree_remove_at(up, name, err) < 0)
		return -1;
	return copy_leaf(&d->c, sdir, name, st, up, err);
}

static int put_whiteout(struct differ *d, const char *rel, const char *name, struct err *err)
{
	_cleanup_close_ int up = upper_dir(d, rel, err);

	if (up < 0 || tree_remove_at(up, name, err) < 0)
		return -1;
	if (mknodat(up, name, S_IFCHR | 0, makedev(0, 0)) < 0)
		return err_sys(err, "whiteout %s/%s", rel, name);
	return 0;
}

/* A directory of the queue: rel, and whether the layers have nothing there. */
struct diff_item {
	char *rel;
	bool fresh;
};

struct diff_queue {
	struct diff_item *v;
	size_t n, cap, head;
};

static void queue_push(struct diff_queue *q, char *rel, bool fresh)
{
	if (q->n == q->cap) {
		q->cap = q->cap ? 2 * q->cap : 256;
		q->v = xrealloc(q->v, q->cap * sizeof(*q->v));
	}
	q->v[q->n].rel = rel;
	q->v[q->n].fresh = fresh;
	q->n++;
}

/* How an entry of a root directory relates to the layers. */
enum lower_kind {
	LOWER_NONE, /* the layers have nothing there (or the directory is new) */
	LOWER_SAME, /* in an unchanged directory: the layers' entry, same type */
	LOWER_LOOK, /* look at low (NULL: not in the layers) */
};

/* One entry of a directory of the root: copied when it is new or changed. */
static int diff_entry(struct differ *d, int dir, const char *rel, const char *name,
                      enum lower_kind kind, const struct lower_entry *low, struct diff_queue *q,
                      struct err *err)
{
	_cleanup_free_ char *crel = child_rel(rel, name);
	mode_t ltype = kind == LOWER_LOOK && low ? low->type : 0;
	struct stat st;
	bool fresh;

	if (excluded(d, crel))
		return 0;
	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(err, "stat %s", crel);
	if (kind == LOWER_SAME)
		ltype = st.st_mode & S_IFMT;
	fresh = ltype != (st.st_mode & S_IFMT);
	if (S_ISDIR(st.st_mode)) {
		/* Made (with its parents) by what is put below it, if anything. */
		if ((fresh || changed(d, &st)) && !excluded_self(d, crel)) {
			_cleanup_close_ int up = upper_dir(d, crel, err);

			if (up < 0)
				return -1;
		}
		queue_push(q, steal_ptr(&crel), fresh);
		return 0;
	}
	if (fresh || changed(d, &st))
		return put_leaf(d, dir, rel, name, &st, err);
	return 0;
}

static int diff_dir(struct differ *d, const struct diff_item *it, struct diff_queue *q,
                    struct err *err)
{
	_cleanup_close_ int dir = open_dir_beneath(d->root, it->rel);
	_cleanup_strvs_ struct strv names = STRV_INIT;
	enum lower_kind kind = it->fresh ? LOWER_NONE : LOWER_SAME;
	struct lower_entry *low = NULL;
	size_t nlow = 0;
	struct stat st;
	int rc = 0;

	if (dir < 0 || fstat(dir, &st) < 0 || dir_names_sorted(dir, &names) < 0)
		return err_sys(err, "read %s", *it->rel ? it->rel : "/");
	/* An unchanged directory had no entry added, removed or renamed: each
	 * name is the layers' own, of the same type (its content may differ). */
	if (kind == LOWER_SAME && changed(d, &st)) {
		struct lower_dir l = {0};

		if (lower_open(d->ly, it->rel, &l) < 0)
			return err_sys(err, "open the layers at %s", *it->rel ? it->rel : "/");
		kind = l.is_dir ? LOWER_LOOK : LOWER_NONE;
		nlow = l.is_dir ? lower_names(&l, &low) : 0;
		lower_release(&l);
	}
	for (size_t i = 0; i < names.n && rc == 0; i++)
		rc = diff_entry(d, dir, it->rel, names.v[i], kind,
		                kind == LOWER_LOOK ? lower_find(low, nlow, names.v[i]) : NULL, q,
		                err);
	/* What the layers have and the directory no longer does. */
	for (size_t i = 0; i < nlow && rc == 0; i++) {
		_cleanup_free_ char *crel = child_rel(it->rel, low[i].name);

		if (low[i].type && !strv_contains(&names, low[i].name) && !excluded(d, crel))
			rc = put_whiteout(d, it->rel, low[i].name, err);
	}
	entries_free(low, nlow);
	return rc;
}

int rootfs_diff(int root_fd, const struct rootfs_layers *ly, const struct timespec *since,
                const char *const *exclude, int upper_fd, struct err *err)
{
	struct rootfs_stats ignored = {0};
	struct differ d = {
	    .root = root_fd, .upper = upper_fd, .ly = ly, .since = *since, .exclude = exclude};
	struct diff_queue q = {0};
	int rc = 0;

	d.c.owners = geteuid() == 0;
	d.c.st = &ignored;
	queue_push(&q, xstrdup(""), false);
	for (; q.head < q.n && rc == 0; q.head++) {
		/* A copy: diff_dir grows the queue, which may move it. */
		struct diff_item it = q.v[q.head];

		rc = diff_dir(&d, &it, &q, err);
	}
	for (size_t i = 0; i < q.n; i++)
		free(q.v[i].rel);
	free(q.v);
	times_apply(&d.times, upper_fd);
	return rc < 0 ? err_wrap(err, "the build step's changes") : 0;
}
