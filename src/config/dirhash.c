/* Harbor's task checksum (dirhash sha256); see dirhash.h. */
#include "config/dirhash.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIRHASH_MAX_DEPTH 256

struct dh_ctx {
	const char *root;                         /* as given, for messages */
	char *root_real;                          /* realpath: links must stay under it */
	struct stat stack[DIRHASH_MAX_DEPTH + 1]; /* directories being walked (cycles) */
	int depth;
	struct err *err;
};

struct descriptor {
	char *s;
	size_t len;
};

static int desc_cmp(const void *a, const void *b)
{
	const struct descriptor *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->s, y->s, n);

	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

static int hash_fd(int fd, const char *rel, struct dh_ctx *c, char hex[SHA256_HEX_LEN + 1])
{
	struct sha256 s;
	char buf[65536];
	ssize_t n;

	sha256_init(&s);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return err_sys(c->err, "checksum: read %s/%s", c->root, rel);
		}
		sha256_update(&s, buf, (size_t)n);
	}
	sha256_final_hex(&s, hex);
	return 0;
}

/* Whether the link dirfd/name resolves to a path under the root. */
static bool link_stays_inside(int dirfd, const char *name, struct dh_ctx *c)
{
	char proc[64], here[PATH_MAX], *full, *real;
	ssize_t n;
	bool inside;
	size_t rl = strlen(c->root_real);

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
	n = readlink(proc, here, sizeof(here) - 1);
	if (n < 0)
		return false;
	here[n] = '\0';
	full = xasprintf("%s/%s", here, name);
	real = realpath(full, NULL);
	free(full);
	if (!real)
		return false;
	inside = strncmp(real, c->root_real, rl) == 0 && (real[rl] == '/' || real[rl] == '\0') &&
	         strcmp(c->root_real, "/") != 0;
	free(real);
	return inside;
}

static void add_desc(struct descriptor **v, size_t *n, size_t *cap, const char *kind,
                     const char *hex, const char *name)
{
	struct strbuf sb = STRBUF_INIT;

	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	sb_addf(&sb, "%s:%s", kind, hex);
	sb_addc(&sb, '\0');
	sb_addf(&sb, "name:%s", name);
	(*v)[*n].len = sb.len;
	(*v)[*n].s = sb_detach(&sb);
	(*n)++;
}

/* 0 with hex set; 1 when nothing below dirfd is hashed (left out); -1 on error. */
static int hash_dir(int dirfd, const char *rel, struct dh_ctx *c, char hex[SHA256_HEX_LEN + 1])
{
	_cleanup_closedir_ DIR *d = NULL;
	struct descriptor *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	int dup_fd, ret = -1;

	if (c->depth >= DIRHASH_MAX_DEPTH)
		return err_set(c->err, ELOOP, "checksum: %s/%s: directories nested too deep",
		               c->root, rel);
	dup_fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0 || !(d = fdopendir(dup_fd))) {
		if (dup_fd >= 0)
			close(dup_fd);
		return err_sys(c->err, "checksum: open %s/%s", c->root, rel);
	}
	while ((errno = 0, e = readdir(d))) {
		_cleanup_free_ char *sub = NULL;
		_cleanup_close_ int fd = -1;
		struct stat st;
		char h[SHA256_HEX_LEN + 1];
		bool cycle = false;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		sub = *rel ? xasprintf("%s/%s", rel, e->d_name) : xstrdup(e->d_name);
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			goto sys;
		if (S_ISLNK(st.st_mode)) {
			if (!link_stays_inside(dirfd, e->d_name, c) ||
			    fstatat(dirfd, e->d_name, &st, 0) < 0)
				continue;
		}
		if (S_ISREG(st.st_mode)) {
			/* O_NONBLOCK: whatever is swapped in after the stat never blocks. */
			fd = openat(dirfd, e->d_name, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
			if (fd < 0 || fstat(fd, &st) < 0)
				goto sys;
			if (!S_ISREG(st.st_mode))
				continue;
			if (hash_fd(fd, sub, c, h) < 0)
				goto out;
			add_desc(&v, &n, &cap, "data", h, e->d_name);
		} else if (S_ISDIR(st.st_mode)) {
			int r;

			for (int i = 0; i <= c->depth && !cycle; i++)
				cycle = c->stack[i].st_dev == st.st_dev &&
				        c->stack[i].st_ino == st.st_ino;
			if (cycle)
				continue;
			fd = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0)
				goto sys;
			c->stack[++c->depth] = st;
			r = hash_dir(fd, sub, c, h);
			c->depth--;
			if (r < 0)
				goto out;
			if (r == 0)
				add_desc(&v, &n, &cap, "dirhash", h, e->d_name);
		}
	}
	if (errno) {
		err_sys(c->err, "checksum: read directory %s/%s", c->root, rel);
		goto out;
	}
	if (n == 0) {
		ret = 1;
		goto out;
	}
	qsort(v, n, sizeof(*v), desc_cmp);
	{
		struct sha256 s;

		sha256_init(&s);
		for (size_t i = 0; i < n; i++) {
			if (i)
				sha256_update(&s, "\0\0", 2);
			sha256_update(&s, v[i].s, v[i].len);
		}
		sha256_final_hex(&s, hex);
	}
	ret = 0;
	goto out;
sys:
	err_sys(c->err, "checksum: %s/%s", c->root, rel);
out:
	for (size_t i = 0; i < n; i++)
		free(v[i].s);
	free(v);
	return ret;
}

int task_dirhash(const char *dir, char out[SHA256_HEX_LEN + 1], struct err *err)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dh_ctx c = {.root = dir, .err = err};
	int r;

	if (fd < 0)
		return err_sys(err, "checksum: open %s", dir);
	c.root_real = realpath(dir, NULL);
	if (!c.root_real || fstat(fd, &c.stack[0]) < 0) {
		free(c.root_real);
		return err_sys(err, "checksum: %s", dir);
	}
	r = hash_dir(fd, "", &c, out);
	free(c.root_real);
	if (r == 1)
		return err_set(err, ENOENT, "checksum: %s: nothing to hash (no file in it)", dir);
	return r;
}
