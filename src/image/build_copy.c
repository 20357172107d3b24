/* COPY and ADD with BuildKit's semantics, fd to fd: sources are resolved below the
 * build context (nothing may point outside it: RESOLVE_BENEATH) or inside another
 * stage's root (RESOLVE_IN_ROOT), destinations inside the step container's root.
 * Below a resolved directory every step is an *at() call that never follows a
 * link. What Docker does, and so what this does:
 *  - a source that is a link is followed; links inside copied directories are
 *    copied as links;
 *  - a directory source copies its contents; the destination directory, when
 *    created, is 0755 (owned like --chown), an existing one keeps its metadata;
 *  - a file goes to dest/<name> when dest ends with '/' or is a directory, else to
 *    dest itself; missing parents are made 0755 (owned like --chown);
 *  - modes and mtimes are kept, owners become root (context) or are kept (--from),
 *    --chown and --chmod apply to everything copied (not to parents or the
 *    destination directory itself);
 *  - wildcards (* ? [..]) match per path component, .dockerignore'd files are not
 *    there; ADD unpacks local tar archives (plain or gzip) into dest. */
#include "image/build_internal.h"
#include "image/decompress.h"
#include "image/tar.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/inroot.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_DEPTH 256
#define MAX_LINK_FDS 1024
#define COPY_BUF (256 * 1024)
#define MAX_SKIP_NOTES 20 /* special files named one by one, then counted */

/* The build's deadline: checked per entry and per buffer, so that a huge file or
 * tree cannot keep a step running past it (nothing here blocks: only regular
 * files and directories are ever opened). */
static int check_deadline(const struct copy_request *r, const char *doing, const char *what,
                          struct err *err)
{
	if (r->deadline > 0 && mono_now() >= r->deadline)
		return err_set(err, ETIMEDOUT, "timed out while %s %s", doing, what);
	return 0;
}

/* One selected source: a path below the source root (or a heredoc). */
struct item {
	char *rel;  /* cleaned, relative to the source root; "" = the root */
	char *name; /* the name it takes in a destination directory */
	const struct copy_source *heredoc;
};

struct items {
	struct item *v;
	size_t n;
};

static void items_release(struct items *it)
{
	for (size_t i = 0; i < it->n; i++) {
		free(it->v[i].rel);
		free(it->v[i].name);
	}
	free(it->v);
	memset(it, 0, sizeof(*it));
}

static void items_add(struct items *it, const char *rel, const char *name,
                      const struct copy_source *heredoc)
{
	it->v = xrealloc(it->v, (it->n + 1) * sizeof(*it->v));
	it->v[it->n].rel = xstrdup(rel);
	it->v[it->n].name = xstrdup(name);
	it->v[it->n].heredoc = heredoc;
	it->n++;
}

/* Opens rel below the source root, following links (never out of the context). */
static int src_open(const struct copy_request *r, const char *rel, int flags)
{
	if (r->context) {
		struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
		                       .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};

		return (int)syscall(SYS_openat2, r->src_root, *rel ? rel : ".", &how, sizeof(how));
	}
	return inroot_open(r->src_root, rel, flags, 0);
}

static bool excluded(const struct copy_request *r, const char *rel)
{
	return r->context && r->ignore && *rel && dockerignore_excluded(r->ignore, rel);
}

static bool has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* Wildcards: matches of comps[i..] below prefix, in name order. */
static int glob_walk(const struct copy_request *r, const char *prefix, char **comps, size_t i,
                     size_t n, struct items *out, struct err *err)
{
	_cleanup_strvs_ struct strv names = STRV_INIT;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd;

	if (i == n) {
		if (!excluded(r, prefix))
			items_add(out, prefix, path_basename(prefix), NULL);
		return 0;
	}
	if (!has_glob(comps[i])) {
		_cleanup_free_ char *p =
		    *prefix ? xasprintf("%s/%s", prefix, comps[i]) : xstrdup(comps[i]);
		int t = src_open(r, p, O_PATH);

		if (t < 0)
			return 0;
		close(t);
		return glob_walk(r, p, comps, i + 1, n, out, err);
	}
	fd = src_open(r, prefix, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return 0;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return err_sys(err, "read %s", *prefix ? prefix : ".");
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
		    fnmatch(comps[i], de->d_name, 0) == 0)
			strv_push(&names, de->d_name);
	strv_sort(&names);
	for (size_t k = 0; k < names.n; k++) {
		_cleanup_free_ char *p =
		    *prefix ? xasprintf("%s/%s", prefix, names.v[k]) : xstrdup(names.v[k]);

		if (excluded(r, p))
			continue;
		if (glob_walk(r, p, comps, i + 1, n, out, err) < 0)
			return -1;
	}
	return 0;
}

/* The sources as items, checked to exist. */
static int collect(const struct copy_request *r, struct items *out, struct err *err)
{
	for (size_t i = 0; i < r->n_srcs; i++) {
		const struct copy_source *s = &r->srcs[i];
		_cleanup_free_ char *rel = NULL;
		size_t before = out->n;

		if (s->data) {
			items_add(out, s->path, s->path, s);
			continue;
		}
		rel = path_clean_relative(s->path);
		if (!rel)
			return err_set(err, EPERM, "%s: outside the build context%s", s->path,
			               r->context ? "" : " stage's root");
		if (has_glob(rel)) {
			_cleanup_free_ char *copy = xstrdup(rel);
			struct strv comps = STRV_INIT;
			char *save = NULL;

			for (char *c = strtok_r(copy, "/", &save); c;
			     c = strtok_r(NULL, "/", &save))
				strv_push(&comps, c);
			if (glob_walk(r, "", comps.v, 0, comps.n, out, err) < 0) {
				strv_release(&comps);
				return -1;
			}
			strv_release(&comps);
			if (out->n == before)
				return err_set(err, ENOENT, "no source files match %s", s->path);
			continue;
		}
		{
			int fd = src_open(r, rel, O_PATH);

			if (fd < 0 && errno == EXDEV)
				return err_set(err, EPERM,
				               "%s: a link in it points outside the build context",
				               s->path);
			if (fd < 0 || excluded(r, rel)) {
				if (fd >= 0)
					close(fd);
				return err_set(err, ENOENT, "%s: not found%s", s->path,
				               r->context ? " in the build context (or excluded by "
				                            ".dockerignore)"
				                          : "");
			}
			close(fd);
		}
		items_add(out, rel, *rel ? path_basename(rel) : ".", NULL);
	}
	return 0;
}

/* ---- digest ---- */

struct hasher {
	struct sha256 sh;
	char *buf;
};

static void hash_str(struct hasher *h, const char *s)
{
	sha256_update(&h->sh, s, strlen(s) + 1);
}

static int hash_file(const struct copy_request *r, struct hasher *h, int fd, const char *what,
                     struct err *err)
{
	for (;;) {
		ssize_t n;

		if (check_deadline(r, "reading", what, err) < 0)
			return -1;
		n = read(fd, h->buf, COPY_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys(err, "read %s", what);
		if (n == 0)
			return 0;
		sha256_update(&h->sh, h->buf, (size_t)n);
	}
}

static int hash_tree(const struct copy_request *r, struct hasher *h, int dirfd, const char *rel,
                     int depth, struct err *err)
{
	_cleanup_strvs_ struct strv names = STRV_INIT;

	if (depth > MAX_DEPTH)
		return err_set(err, ELOOP, "%s: directories nested too deep", rel);
	if (dir_names_sorted(dirfd, &names) < 0)
		return err_sys(err, "read %s", *rel ? rel : ".");
	for (size_t i = 0; i < names.n; i++) {
		_cleanup_free_ char *p =
		    *rel ? xasprintf("%s/%s", rel, names.v[i]) : xstrdup(names.v[i]);
		struct stat st;
		char line[128];

		if (check_deadline(r, "reading", p, err) < 0)
			return -1;
		if (fstatat(dirfd, names.v[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			return err_sys(err, "stat %s", p);
		if (excluded(r, p) &&
		    !(S_ISDIR(st.st_mode) && dockerignore_may_include_below(r->ignore, p)))
			continue;
		hash_str(h, names.v[i]);
		snprintf(line, sizeof(line), "%o %llu %u %u", st.st_mode,
		         S_ISREG(st.st_mode) ? (unsigned long long)st.st_size : 0ULL,
		         r->preserve_owner ? st.st_uid : 0, r->preserve_owner ? st.st_gid : 0);
		hash_str(h, line);
		if (S_ISREG(st.st_mode)) {
			struct stat now;
			_cleanup_close_ int f = inroot_openat_regular(dirfd, names.v[i], &now);

			if (f < 0 || hash_file(r, h, f, p, err) < 0)
				return f < 0 ? err_sys(err, "open %s", p) : -1;
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlinkat(dirfd, names.v[i], target, sizeof(target) - 1);

			if (n < 0)
				return err_sys(err, "readlink %s", p);
			target[n] = '\0';
			hash_str(h, target);
		} else if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub = openat(
			    dirfd, names.v[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0)
				return err_sys(err, "open %s", p);
			if (hash_tree(r, h, sub, p, depth + 1, err) < 0)
				return -1;
			hash_str(h, "..");
		}
	}
	return 0;
}

int copy_digest(const struct copy_request *r, char hex[SHA256_HEX_LEN + 1], struct err *err)
{
	struct items items = {0};
	struct hasher h;
	int rc = -1;

	sha256_init(&h.sh);
	h.buf = xmalloc(COPY_BUF);
	if (collect(r, &items, err) < 0)
		goto out;
	for (size_t i = 0; i < items.n; i++) {
		const struct item *it = &items.v[i];
		_cleanup_close_ int fd = -1;
		struct stat st;
		char line[128];

		hash_str(&h, it->rel);
		if (it->heredoc) {
			hash_str(&h, it->heredoc->data);
			continue;
		}
		fd = src_open(r, it->rel, O_PATH);
		if (fd < 0 || fstat(fd, &st) < 0) {
			err_sys(err, "%s", it->rel);
			goto out;
		}
		snprintf(line, sizeof(line), "%o %llu", st.st_mode,
		         S_ISREG(st.st_mode) ? (unsigned long long)st.st_size : 0ULL);
		hash_str(&h, line);
		if (S_ISREG(st.st_mode)) {
			_cleanup_close_ int f = inroot_reopen_regular(fd, &st);

			if (f < 0) {
				err_sys(err, "open %s", it->rel);
				goto out;
			}
			if (hash_file(r, &h, f, it->rel, err) < 0)
				goto out;
		} else if (S_ISDIR(st.st_mode) && hash_tree(r, &h, fd, it->rel, 0, err) < 0) {
			goto out;
		}
	}
	sha256_final_hex(&h.sh, hex);
	rc = 0;
out:
	free(h.buf);
	items_release(&items);
	return rc;
}

/* ---- destination side ---- */

int copy_mkdir_p(int root, const char *path, uid_t uid, gid_t gid, struct err *err)
{
	_cleanup_free_ char *rel = path_clean_relative(path);
	const struct inroot_owner owner = {uid, gid};

	if (!rel)
		return err_set(err, EINVAL, "%s: not a path inside the image", path);
	return inroot_mkdirs(root, rel, 0755, &owner, err);
}

struct link_seen {
	dev_t dev;
	ino_t ino;
	int fd; /* O_PATH fd of the copy */
};

struct copier {
	const struct copy_request *r;
	int root;
	char *buf;
	struct link_seen *links;
	size_t n_links;
	size_t n_skipped; /* FIFOs, sockets, devices left out */
};

/* Host ids for the copies: container ids from --chown and the default root go
 * through the root mapping; kept owners are host ids already. */
static void owner_for(const struct copier *c, const struct stat *st, uid_t *uid, gid_t *gid)
{
	if (c->r->chown) {
		*uid = c->r->uid ? c->r->uid : c->r->root_uid;
		*gid = c->r->gid ? c->r->gid : c->r->root_gid;
	} else if (c->r->preserve_owner && st) {
		*uid = st->st_uid;
		*gid = st->st_gid;
	} else {
		*uid = c->r->root_uid;
		*gid = c->r->root_gid;
	}
}

static mode_t mode_for(const struct copier *c, const struct stat *st)
{
	return c->r->chmod ? c->r->mode : st->st_mode & 07777;
}

/* Makes room for a non-directory at dfd/name. */
static int clear_target(int dfd, const char *name, const char *what, struct err *err)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : err_sys(err, "stat %s", what);
	if (S_ISDIR(st.st_mode))
		return err_set(err, EISDIR, "cannot overwrite directory %s with a file", what);
	if (unlinkat(dfd, name, 0) < 0)
		return err_sys(err, "replace %s", what);
	return 0;
}

static int copy_data(struct copier *c, int in, int out, const char *what, struct err *err)
{
	for (;;) {
		ssize_t n;

		if (check_deadline(c->r, "copying", what, err) < 0)
			return -1;
		n = read(in, c->buf, COPY_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys(err, "read %s", what);
		if (n == 0)
			return 0;
		if (write_all(out, c->buf, (size_t)n) < 0)
			return err_sys(err, "write %s", what);
	}
}

static void set_times(int dfd, const char *name, const struct stat *st, bool nofollow)
{
	struct timespec ts[2] = {st->st_atim, st->st_mtim};

	utimensat(dfd, name, ts, nofollow ? AT_SYMLINK_NOFOLLOW : 0);
}

/* A regular file from an open fd to dfd/name. */
static int put_file(struct copier *c, int in, const struct stat *st, int dfd, const char *name,
                    const char *what, struct err *err)
{
	_cleanup_close_ int out = -1;
	uid_t uid;
	gid_t gid;

	if (st->st_nlink > 1) {
		for (size_t i = 0; i < c->n_links; i++)
			if (c->links[i].dev == st->st_dev && c->links[i].ino == st->st_ino) {
				if (clear_target(dfd, name, what, err) < 0)
					return -1;
				if (linkat(c->links[i].fd, "", dfd, name, AT_EMPTY_PATH) == 0)
					return 0;
				break; /* not allowed here: copy it instead */
			}
	}
	if (clear_target(dfd, name, what, err) < 0)
		return -1;
	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return err_sys(err, "create %s", what);
	if (copy_data(c, in, out, what, err) < 0)
		return -1;
	owner_for(c, st, &uid, &gid);
	/* Owner before mode: chown clears setuid bits. */
	if (fchown(out, uid, gid) < 0 || fchmod(out, mode_for(c, st)) < 0)
		return err_sys(err, "chown/chmod %s", what);
	{
		struct timespec ts[2] = {st->st_atim, st->st_mtim};

		futimens(out, ts);
	}
	if (st->st_nlink > 1 && c->n_links < MAX_LINK_FDS) {
		int fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

		if (fd >= 0) {
			c->links = xrealloc(c->links, (c->n_links + 1) * sizeof(*c->links));
			c->links[c->n_links].dev = st->st_dev;
			c->links[c->n_links].ino = st->st_ino;
			c->links[c->n_links++].fd = fd;
		}
	}
	return 0;
}

static int put_symlink(struct copier *c, int sdir, const char *sname, const struct stat *st,
                       int dfd, const char *name, const char *what, struct err *err)
{
	char target[4096];
	ssize_t n = readlinkat(sdir, sname, target, sizeof(target) - 1);
	uid_t uid;
	gid_t gid;

	if (n < 0)
		return err_sys(err, "readlink %s", what);
	target[n] = '\0';
	if (clear_target(dfd, name, what, err) < 0)
		return -1;
	if (symlinkat(target, dfd, name) < 0)
		return err_sys(err, "symlink %s", what);
	owner_for(c, st, &uid, &gid);
	if (fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(err, "chown %s", what);
	set_times(dfd, name, st, true);
	return 0;
}

static int copy_children(struct copier *c, int sdir, const char *srel, int ddir, const char *dwhat,
                         int depth, struct err *err);

/* A directory at dfd/name (created, or merged into an existing one), then its
 * contents. New directories take the source's metadata. */
static int put_dir(struct copier *c, int sdir, const char *srel, const struct stat *st, int dfd,
                   const char *name, const char *what, int depth, struct err *err)
{
	_cleanup_close_ int sub = -1;
	struct stat dst;
	bool created = false;
	uid_t uid;
	gid_t gid;

	if (fstatat(dfd, name, &dst, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(dst.st_mode)) {
		if (unlinkat(dfd, name, 0) < 0)
			return err_sys(err, "replace %s", what);
	}
	if (mkdirat(dfd, name, 0700) == 0)
		created = true;
	else if (errno != EEXIST)
		return err_sys(err, "mkdir %s", what);
	sub = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0)
		return err_sys(err, "open %s", what);
	if (copy_children(c, sdir, srel, sub, what, depth + 1, err) < 0)
		return -1;
	if (!created)
		return 0;
	owner_for(c, st, &uid, &gid);
	if (fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchmodat(dfd, name, mode_for(c, st), 0) < 0)
		return err_sys(err, "chown/chmod %s", what);
	set_times(dfd, name, st, false);
	return 0;
}

/* One entry of a source directory (never followed). */
static int copy_entry(struct copier *c, int sdir, const char *sname, const char *srel, int ddir,
                      const char *dname, const char *dwhat, int depth, struct err *err)
{
	struct stat st;

	if (check_deadline(c->r, "copying", srel, err) < 0)
		return -1;
	if (fstatat(sdir, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(err, "stat %s", srel);
	if (excluded(c->r, srel) &&
	    !(S_ISDIR(st.st_mode) && dockerignore_may_include_below(c->r->ignore, srel)))
		return 0;
	if (S_ISREG(st.st_mode)) {
		_cleanup_close_ int in = inroot_openat_regular(sdir, sname, &st);

		if (in < 0)
			return err_sys(err, "open %s", srel);
		return put_file(c, in, &st, ddir, dname, dwhat, err);
	}
	if (S_ISLNK(st.st_mode))
		return put_symlink(c, sdir, sname, &st, ddir, dname, dwhat, err);
	if (S_ISDIR(st.st_mode)) {
		_cleanup_close_ int sub =
		    openat(sdir, sname, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (sub < 0)
			return err_sys(err, "open %s", srel);
		return put_dir(c, sub, srel, &st, ddir, dname, dwhat, depth, err);
	}
	/* Like a FIFO's reader, a copy would block or touch a device: left out. */
	if (c->n_skipped++ < MAX_SKIP_NOTES)
		log_warn("%s: skipping %s, a %s (only files, directories and links are copied)",
		         c->r->what, srel, inroot_type_name(st.st_mode));
	return 0;
}

static int copy_children(struct copier *c, int sdir, const char *srel, int ddir, const char *dwhat,
                         int depth, struct err *err)
{
	_cleanup_strvs_ struct strv names = STRV_INIT;

	if (depth > MAX_DEPTH)
		return err_set(err, ELOOP, "%s: directories nested too deep", srel);
	if (dir_names_sorted(sdir, &names) < 0)
		return err_sys(err, "read %s", *srel ? srel : ".");
	for (size_t i = 0; i < names.n; i++) {
		_cleanup_free_ char *srel2 =
		    *srel ? xasprintf("%s/%s", srel, names.v[i]) : xstrdup(names.v[i]);
		_cleanup_free_ char *dwhat2 = xasprintf("%s/%s", dwhat, names.v[i]);

		if (copy_entry(c, sdir, names.v[i], srel2, ddir, names.v[i], dwhat2, depth, err) <
		    0)
			return -1;
	}
	return 0;
}

/* A tar archive (ADD)? Plain tar ("ustar" at 257) or gzip. */
static bool is_archive(int fd)
{
	uint8_t head[512];
	ssize_t n = pread(fd, head, sizeof(head), 0);

	if (n >= 2 && head[0] == 0x1f && head[1] == 0x8b)
		return true;
	return n == 512 && memcmp(head + 257, "ustar", 5) == 0;
}

static int extract_archive(int fd, int ddir, const char *what, double deadline, struct err *err)
{
	struct decompress *d = NULL;
	struct decompress_opts o = {.fd = fd, .length = DECOMPRESS_STREAM};
	struct tar_extract_opts xo = {.flags = TAR_X_XATTRS | TAR_X_SETID, .deadline = deadline};
	struct tar_reader *r;
	struct tar_input in;
	struct decompress_result res;
	int rc;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return err_sys(err, "seek %s", what);
	if (geteuid() == 0)
		xo.flags |= TAR_X_OWNERS;
	xo.whiteouts = TAR_WHITEOUTS_KEEP;
	if (decompress_open(&d, &o, err) < 0)
		return err_wrap(err, "%s", what);
	in = decompress_tar_input(d);
	r = tar_reader_new(&in);
	rc = tar_extract(r, ddir, &xo, NULL, err);
	tar_reader_free(r);
	if (rc == 0)
		rc = decompress_finish(d, &res, err);
	decompress_free(d);
	return rc < 0 ? err_wrap(err, "unpack %s", what) : 0;
}

/* Where a non-directory item lands: (directory fd, name). */
static int file_target(struct copier *c, const struct item *it, bool dir_dest, int *dfd,
                       char **name, struct err *err)
{
	const char *dest = c->r->dest;
	uid_t uid;
	gid_t gid;

	owner_for(c, NULL, &uid, &gid);
	if (dir_dest) {
		*dfd = copy_mkdir_p(c->root, dest, uid, gid, err);
		*name = xstrdup(it->name);
	} else {
		_cleanup_free_ char *parent = xstrdup(dest);
		char *slash = strrchr(parent, '/');

		*name = xstrdup(slash ? slash + 1 : parent);
		if (slash)
			slash[slash == parent ? 1 : 0] = '\0';
		*dfd = copy_mkdir_p(c->root, parent, uid, gid, err);
	}
	return *dfd < 0 ? -1 : 0;
}

/* Is dest an existing directory (links resolved inside the root)? */
static bool dest_is_dir(const struct copier *c)
{
	int fd = inroot_open(c->root, c->r->dest, O_PATH | O_DIRECTORY, 0);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int copy_run(const struct copy_request *r, int dst_root, struct err *err)
{
	struct copier c = {.r = r, .root = dst_root};
	struct items items = {0};
	bool dir_dest;
	int rc = -1;

	c.buf = xmalloc(COPY_BUF);
	if (collect(r, &items, err) < 0)
		goto out;
	dir_dest = r->dest_dir || dest_is_dir(&c);
	if (items.n > 1 && !dir_dest) {
		err_set(err, EINVAL,
		        "%zu sources match: the destination must be a directory and end with a /",
		        items.n);
		goto out;
	}
	for (size_t i = 0; i < items.n; i++) {
		const struct item *it = &items.v[i];
		_cleanup_close_ int in = -1, dfd = -1;
		_cleanup_free_ char *name = NULL, *what = NULL;
		struct stat st;

		if (it->heredoc) {
			struct stat hs = {.st_mode = S_IFREG | 0644, .st_nlink = 1};
			_cleanup_close_ int out = -1;

			if (file_target(&c, it, dir_dest, &dfd, &name, err) < 0 ||
			    clear_target(dfd, name, it->name, err) < 0)
				goto out;
			out = openat(dfd, name,
			             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (out < 0 || write_all(out, it->heredoc->data, it->heredoc->len) < 0) {
				err_sys(err, "write %s", it->name);
				goto out;
			}
			{
				uid_t uid;
				gid_t gid;

				owner_for(&c, NULL, &uid, &gid);
				if (fchown(out, uid, gid) < 0 ||
				    fchmod(out, mode_for(&c, &hs)) < 0) {
					err_sys(err, "chown/chmod %s", it->name);
					goto out;
				}
			}
			continue;
		}
		/* The type first (O_PATH): a source is never opened unless it is a
		 * regular file. */
		in = src_open(r, it->rel, O_PATH);
		if (in < 0 || fstat(in, &st) < 0) {
			err_sys(err, "%s", *it->rel ? it->rel : ".");
			goto out;
		}
		what = xasprintf("%s", *it->rel ? it->rel : ".");
		if (S_ISREG(st.st_mode)) {
			int data = inroot_reopen_regular(in, &st);

			if (data < 0) {
				err_sys(err, "open %s", what);
				goto out;
			}
			close(in);
			in = data;
		}
		if (S_ISDIR(st.st_mode)) {
			/* Its contents go into dest. */
			uid_t uid;
			gid_t gid;

			owner_for(&c, NULL, &uid, &gid);
			dfd = copy_mkdir_p(c.root, r->dest, uid, gid, err);
			if (dfd < 0 || copy_children(&c, in, it->rel, dfd, r->dest, 0, err) < 0)
				goto out;
		} else if (S_ISREG(st.st_mode) && r->extract && r->context && is_archive(in)) {
			dfd = copy_mkdir_p(c.root, r->dest, 0, 0, err);
			if (dfd < 0 || extract_archive(in, dfd, what, r->deadline, err) < 0)
				goto out;
		} else if (S_ISREG(st.st_mode)) {
			if (file_target(&c, it, dir_dest, &dfd, &name, err) < 0 ||
			    put_file(&c, in, &st, dfd, name, what, err) < 0)
				goto out;
		} else {
			err_set(err, EINVAL,
			        "%s is a %s: only files, directories and links can be copied", what,
			        inroot_type_name(st.st_mode));
			goto out;
		}
	}
	if (c.n_skipped > MAX_SKIP_NOTES)
		log_warn("%s: %zu more special files skipped", r->what,
		         c.n_skipped - MAX_SKIP_NOTES);
	rc = 0;
out:
	for (size_t i = 0; i < c.n_links; i++)
		close(c.links[i].fd);
	free(c.links);
	free(c.buf);
	items_release(&items);
	return rc;
}
