/* Build contexts shared by the docker provider and the sandbox builder (see
 * context.h). Moved here from the docker provider so both derive the same
 * content hash, image name and lock from the same task. */
#include "image/context.h"
#include "image/store.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/inroot.h"
#include "rollout/log.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONTEXT_BUF (256 * 1024)

struct context {
	const struct dockerignore *ignore;
	bool fixed_mtime; /* the content hash ignores times */
	uint8_t *buf;
};

static int add_file(struct context *cx, struct tar_writer *w, int dirfd, const char *name,
                    struct tar_entry *e, struct err *err)
{
	struct stat st;
	/* Typed on an O_PATH fd first: a FIFO swapped in since the stat would block. */
	_cleanup_close_ int fd = inroot_openat_regular(dirfd, name, &st);
	uint64_t left = e->size;

	if (fd < 0)
		return err_sys(err, "open %s", e->path);
	if (tar_writer_header(w, e, err) < 0)
		return -1;
	while (left > 0) {
		ssize_t n = read(fd, cx->buf, left < CONTEXT_BUF ? (size_t)left : CONTEXT_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys(err, "read %s", e->path);
		if (n == 0)
			return err_set(err, EIO, "%s changed while it was read", e->path);
		if (tar_writer_data(w, cx->buf, (size_t)n, err) < 0)
			return -1;
		left -= (uint64_t)n;
	}
	return 0;
}

/* Writes the context below dirfd (at rel) into w, in name order, without what
 * .dockerignore excludes (the Dockerfile and .dockerignore are always sent). */
static int add_dir(struct context *cx, struct tar_writer *w, int dirfd, const char *rel, int depth,
                   struct err *err)
{
	_cleanup_strvs_ struct strv names = STRV_INIT;

	if (depth > 256)
		return err_set(err, ELOOP, "%s: directories nested too deep", rel);
	if (dir_names_sorted(dirfd, &names) < 0)
		return err_sys(err, "read directory %s", *rel ? rel : ".");
	for (size_t i = 0; i < names.n; i++) {
		const char *name = names.v[i];
		_cleanup_free_ char *path = *rel ? xasprintf("%s/%s", rel, name) : xstrdup(name);
		struct tar_entry e = {0};
		struct stat st;
		bool excluded = dockerignore_excluded(cx->ignore, path);
		char target[4096];

		if (excluded && depth == 0 &&
		    (strcmp(name, "Dockerfile") == 0 || strcmp(name, ".dockerignore") == 0))
			excluded = false;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return err_sys(err, "stat %s", path);
		if (excluded &&
		    !(S_ISDIR(st.st_mode) && dockerignore_may_include_below(cx->ignore, path)))
			continue;
		e.path = path;
		e.mode = st.st_mode & 07777;
		e.mtime = cx->fixed_mtime ? 0 : (int64_t)st.st_mtime;
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub =
			    openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0)
				return err_sys(err, "open %s", path);
			e.type = TAR_DIR;
			/* An excluded directory with exceptions below is only walked into. */
			if (!excluded && tar_writer_header(w, &e, err) < 0)
				return -1;
			if (add_dir(cx, w, sub, path, depth + 1, err) < 0)
				return -1;
		} else if (S_ISREG(st.st_mode)) {
			e.type = TAR_REG;
			e.size = (uint64_t)st.st_size;
			if (add_file(cx, w, dirfd, name, &e, err) < 0)
				return -1;
		} else if (S_ISLNK(st.st_mode)) {
			ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);

			if (n < 0)
				return err_sys(err, "readlink %s", path);
			target[n] = '\0';
			e.type = TAR_SYMLINK;
			e.linkpath = target;
			if (tar_writer_header(w, &e, err) < 0)
				return -1;
		} else {
			log_warn_once("docker-context-special",
			              "docker build context: skipping %s (not a file, directory or "
			              "symlink)",
			              path);
		}
	}
	return 0;
}

int context_write_tar(const char *dir, const struct dockerignore *ignore, bool fixed_mtime,
                      const struct tar_output *out, struct err *err)
{
	_cleanup_close_ int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ uint8_t *buf = xmalloc(CONTEXT_BUF);
	struct context cx = {.ignore = ignore, .fixed_mtime = fixed_mtime, .buf = buf};
	struct tar_writer *w;
	int rc;

	if (root < 0)
		return err_sys(err, "open build context %s", dir);
	w = tar_writer_new(out);
	rc = add_dir(&cx, w, root, "", 0, err);
	if (rc == 0)
		rc = tar_writer_finish(w, err);
	tar_writer_free(w);
	return rc;
}

static int hash_write(void *ctx, const void *data, size_t n, struct err *err)
{
	(void)err;
	sha256_update(ctx, data, n);
	return 0;
}

/* Repository names: lowercase [a-z0-9] runs joined by '.', '_' or '-'. */
char *context_repo_name(const char *task)
{
	struct strbuf sb = STRBUF_INIT;
	bool sep = false;

	for (const char *p = task ? task : ""; *p && sb.len < 100; p++) {
		char c = (char)tolower((unsigned char)*p);

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			if (sep && sb.len)
				sb_addc(&sb, '-');
			sb_addc(&sb, c);
			sep = false;
		} else {
			sep = true;
		}
	}
	if (!sb.len)
		sb_adds(&sb, "task");
	return sb_detach(&sb);
}

int context_digest(const char *dir, const struct dockerignore *ignore, const char *prefix,
                   char hex[SHA256_HEX_LEN + 1], struct err *err)
{
	struct sha256 sh;
	struct tar_output out = {hash_write, &sh};

	sha256_init(&sh);
	if (prefix)
		sha256_update(&sh, prefix, strlen(prefix));
	if (context_write_tar(dir, ignore, true, &out, err) < 0)
		return err_wrap(err, "build context %s", dir);
	sha256_final_hex(&sh, hex);
	return 0;
}

char *context_image_name(const char *task, const char *hex)
{
	_cleanup_free_ char *repo = context_repo_name(task);

	return xasprintf("rollout/%s:%.16s", repo, hex);
}

int context_build_lock(const char *kind, const char *tag, double deadline, int *fd_out,
                       struct err *err)
{
	_cleanup_free_ char *home = store_default_root();
	_cleanup_free_ char *dir = path_join(home, "locks");
	char hex[SHA256_HEX_LEN + 1];
	_cleanup_free_ char *path = NULL;
	int fd;

	sha256_hex(tag, strlen(tag), hex);
	path = xasprintf("%s/%s-%.16s.lock", dir, kind, hex);
	if (mkdir_p(dir, 0700, err) < 0)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_sys(err, "open %s", path);
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			err_sys(err, "lock %s", path);
			close(fd);
			return -1;
		}
		if (cancel_requested() || (deadline > 0 && mono_now() > deadline)) {
			close(fd);
			return err_set(err, cancel_requested() ? ECANCELED : ETIMEDOUT,
			               "waiting for another build of %s", tag);
		}
		sleep_sec(0.1);
	}
	*fd_out = fd;
	return 0;
}

bool context_built_here(const char *kind, const char *tag, bool add)
{
	static struct strv built = STRV_INIT;
	static pid_t owner;
	_cleanup_free_ char *key = xasprintf("%s %s", kind, tag);

	if (owner != getpid()) { /* a forked child is another process */
		strv_release(&built);
		owner = getpid();
	}
	if (strv_contains(&built, key))
		return true;
	if (add)
		strv_push_take(&built, steal_ptr(&key));
	return false;
}
