/* Files in and out of docker environments through the archive endpoints, with
 * rollout's tar writer (uploads, streamed as a chunked body) and its root-confined
 * extractor (downloads). Container paths are resolved by the daemon inside the
 * container; nothing here follows a container symlink on the host. */
#include "image/tar.h"
#include "providers/docker/docker.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARCHIVE_TIMEOUT 3600.0 /* no progress for this long: give up */
#define GO_MODE_DIR 0x80000000u
#define GO_MODE_SYMLINK 0x08000000u
#define MAX_LINK_HOPS 8

/* ---- uploads --------------------------------------------------------------------- */

struct body_out {
	struct http_conn *conn;
	double deadline;
};

static int body_write(void *ctx, const void *data, size_t n, struct err *err)
{
	struct body_out *o = ctx;

	return http_write_body(o->conn, data, n, o->deadline, err);
}

typedef int (*tar_fill_fn)(struct tar_writer *w, void *ctx, struct err *err);

/* PUT a tar produced by fill at "/" of the container. */
static int put_archive(struct docker_env *env, tar_fill_fn fill, void *ctx, struct err *err)
{
	_cleanup_free_ char *path =
	    docker_path(env->client, "/containers/%s/archive?path=%%2F", env->id);
	struct http_request req = {
	    .method = "PUT", .target = path, .content_type = "application/x-tar", .chunked = true};
	double deadline = mono_now() + ARCHIVE_TIMEOUT;
	_cleanup_http_conn_ struct http_conn *conn = NULL;
	struct body_out bo;
	struct tar_output out = {body_write, &bo};
	struct tar_writer *w;
	struct http_response r;
	int rc;

	if (docker_stream_open(env->client, &req, deadline, &conn, err) < 0)
		return docker_env_error(env, 0, err);
	bo.conn = conn;
	bo.deadline = deadline;
	w = tar_writer_new(&out);
	rc = fill(w, ctx, err);
	if (rc == 0)
		rc = tar_writer_finish(w, err);
	tar_writer_free(w);
	if (rc == 0)
		rc = http_finish_body(conn, deadline, err);
	/* A daemon that refused early (404, read-only rootfs) has answered already. */
	if (rc < 0 && err->code != EPIPE && err->code != ECONNRESET)
		return -1;
	if (http_read_response(conn, &r, false, deadline, err) < 0)
		return docker_env_error(env, 0, err);
	if (r.status != 200) {
		int status = r.status;

		docker_response_error(&r, deadline, err);
		http_response_release(&r);
		return docker_env_error(env, status, err);
	}
	http_response_release(&r);
	return rc;
}

struct upload_ctx {
	int host_fd;
	const struct stat *st;
	const char *arcname;
};

/* A regular file from its open fd, as one archive member. */
static int write_file_entry(struct tar_writer *w, const struct upload_ctx *u, struct err *err)
{
	struct tar_entry e = {.type = TAR_REG,
	                      .path = (char *)u->arcname,
	                      .mode = u->st->st_mode & 07777,
	                      .size = (uint64_t)u->st->st_size,
	                      .mtime = u->st->st_mtim.tv_sec};
	char buf[65536];
	uint64_t left = e.size;

	if (tar_writer_header(w, &e, err) < 0)
		return -1;
	while (left > 0) {
		ssize_t r = read(u->host_fd, buf, left < sizeof(buf) ? left : sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? err_sys(err, "read %s", u->arcname)
			             : err_set(err, EIO, "%s shrank while being uploaded",
			                       u->arcname);
		if (tar_writer_data(w, buf, (size_t)r, err) < 0)
			return -1;
		left -= (uint64_t)r;
	}
	return 0;
}

static int fill_upload(struct tar_writer *w, void *ctx, struct err *err)
{
	struct upload_ctx *u = ctx;
	struct tar_tree_opts opts = {.flags = TAR_TREE_ROOT_OWNER, .fixed_mtime = -1};

	if (S_ISREG(u->st->st_mode))
		return write_file_entry(w, u, err);
	return tar_write_tree(w, u->host_fd, ".", u->arcname, &opts, err);
}

int docker_provider_upload(struct environment *handle, int host_fd, const char *env_path,
                           unsigned flags, struct err *err)
{
	struct docker_env *env = docker_env_of(handle);
	_cleanup_free_ char *rel = path_clean_relative(env_path);
	struct stat st;
	struct upload_ctx u = {.host_fd = host_fd, .st = &st, .arcname = rel};

	if (!rel)
		return err_set(err, EINVAL, "upload to %s: path leaves the root", env_path);
	if (fstat(host_fd, &st) < 0)
		return err_sys(err, "upload to %s", env_path);
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return err_set(err, EINVAL, "upload to %s: not a file or directory", env_path);
	if (!*rel && !S_ISDIR(st.st_mode))
		return err_set(err, EINVAL, "upload to %s: cannot replace / with a file", env_path);
	if ((flags & UPLOAD_REPLACE) && *rel) {
		/* Whatever the agent left there goes first (the daemon would merge). */
		_cleanup_free_ char *abs = xasprintf("/%s", rel);
		const char *args[] = {"rm-rf", abs, NULL};

		if (docker_helper_exec(env, "0", args, 120, NULL, err) < 0)
			return err_wrap(err, "upload: replace %s", env_path);
	}
	if (S_ISREG(st.st_mode) && lseek(host_fd, 0, SEEK_SET) < 0 && errno != ESPIPE)
		return err_sys(err, "upload to %s", env_path);
	/* Entries are named by their full path below "/": the daemon creates missing
	 * parents, and a directory's contents land in env_path itself. */
	if (put_archive(env, fill_upload, &u, err) < 0)
		return err_wrap(err, "upload to %s:%s", env->name, env_path);
	return 0;
}

struct mkdirs_ctx {
	const char *const *paths;
};

static int fill_mkdirs(struct tar_writer *w, void *ctx, struct err *err)
{
	struct mkdirs_ctx *m = ctx;

	for (const char *const *p = m->paths; *p; p++) {
		_cleanup_free_ char *rel = path_clean_relative(*p);
		struct tar_entry e = {.type = TAR_DIR, .mode = 0755, .mtime = (int64_t)wall_now()};

		if (!rel || !*rel)
			continue;
		e.path = rel;
		if (tar_writer_header(w, &e, err) < 0)
			return -1;
	}
	return 0;
}

int docker_mkdirs(struct docker_env *env, const char *const *paths, struct err *err)
{
	struct mkdirs_ctx m = {paths};

	if (put_archive(env, fill_mkdirs, &m, err) < 0)
		return err_wrap(err, "create directories in %s", env->name);
	return 0;
}

/* ---- downloads --------------------------------------------------------------------- */

struct path_stat {
	char *name;
	char *link_target;
	uint32_t mode;
};

static void path_stat_release(struct path_stat *ps)
{
	free(ps->name);
	free(ps->link_target);
	memset(ps, 0, sizeof(*ps));
}

static int parse_path_stat(const char *header, struct path_stat *ps, struct err *err)
{
	size_t len = 0;
	_cleanup_free_ char *json = header ? docker_base64_decode(header, &len) : NULL;
	_cleanup_json_ cJSON *v = json ? cJSON_ParseWithLength(json, len) : NULL;
	const char *name, *link;

	if (!v)
		return err_set(err, EPROTO, "missing or bad X-Docker-Container-Path-Stat header");
	name = json_get_str(v, "name");
	link = json_get_str(v, "linkTarget");
	ps->name = xstrdup(name ? name : "");
	ps->link_target = xstrdup(link ? link : "");
	ps->mode = (uint32_t)json_get_num(v, "mode", 0);
	return 0;
}

struct body_in {
	struct http_response *r;
	double deadline;
};

static ssize_t body_next(void *ctx, const uint8_t **data, struct err *err)
{
	struct body_in *in = ctx;

	return http_body_next(in->r, data, 0, in->deadline, err);
}

/* Rewrites archive names "<name>/x" to "x" (a directory download) or "<name>"
 * to the host file's name (a file download); anything else is skipped. */
struct rename_ctx {
	const char *prefix; /* the top entry's name; "" for "/" */
	const char *file_name;
	char *path_buf, *link_buf;
};

static int strip_prefix(const char *prefix, const char *path, char **out)
{
	_cleanup_free_ char *clean = path_clean_relative(path);
	size_t n = strlen(prefix);

	if (!clean)
		return 1;
	if (!*prefix) {
		*out = steal_ptr(&clean);
		return 0;
	}
	if (strcmp(clean, prefix) == 0) {
		*out = xstrdup("");
		return 0;
	}
	if (strncmp(clean, prefix, n) == 0 && clean[n] == '/') {
		*out = xstrdup(clean + n + 1);
		return 0;
	}
	return 1;
}

static int rename_entry(void *ctx, struct tar_entry *e, struct err *err)
{
	struct rename_ctx *rc = ctx;
	char *p = NULL;

	(void)err;
	free(rc->path_buf);
	free(rc->link_buf);
	rc->path_buf = rc->link_buf = NULL;
	if (strip_prefix(rc->prefix, e->path, &p) != 0)
		return 1;
	if (rc->file_name) {
		if (*p) { /* a file download has exactly one entry */
			free(p);
			return 1;
		}
		free(p);
		p = xstrdup(rc->file_name);
	}
	rc->path_buf = p;
	e->path = p;
	if (e->type == TAR_HARDLINK && e->linkpath) {
		if (strip_prefix(rc->prefix, e->linkpath, &rc->link_buf) != 0)
			return 1;
		e->linkpath = rc->link_buf;
	}
	return 0;
}

/* GET the archive of env_path; on success *r is positioned at the tar stream. */
static int get_archive(struct docker_env *env, const char *env_path, double deadline,
                       struct http_conn **conn_out, struct http_response *r, struct path_stat *ps,
                       struct err *err)
{
	_cleanup_free_ char *q = http_query_escape(env_path);
	_cleanup_free_ char *path =
	    docker_path(env->client, "/containers/%s/archive?path=%s", env->id, q);
	struct http_request req = {.method = "GET", .target = path};
	struct http_conn *conn = NULL;

	if (docker_stream_open(env->client, &req, deadline, &conn, err) < 0)
		return docker_env_error(env, 0, err);
	if (http_read_response(conn, r, false, deadline, err) < 0) {
		http_conn_close(conn);
		return docker_env_error(env, 0, err);
	}
	if (r->status != 200) {
		int status = r->status;

		docker_response_error(r, deadline, err);
		http_response_release(r);
		http_conn_close(conn);
		if (status == 404) {
			/* The path, or the whole container? */
			_cleanup_free_ char *msg = xstrdup(err->msg);

			if (docker_container_gone(env, err) < 0 && err->code != ENOENT)
				return -1;
			return err_set(err, ENOENT, "%s: %s", env_path, msg);
		}
		return docker_env_error(env, status, err);
	}
	if (parse_path_stat(http_header(r, "X-Docker-Container-Path-Stat"), ps, err) < 0) {
		http_response_release(r);
		http_conn_close(conn);
		return -1;
	}
	*conn_out = conn;
	return 0;
}

/* What an environment hands back is masked like any confined write: no
 * setuid/setgid/sticky or group/other write, no FIFOs or devices, no link
 * pointing out of the download. */
struct download_filter {
	struct rename_ctx rc;
};

static int filter_entry(void *ctx, struct tar_entry *e, struct err *err)
{
	struct download_filter *f = ctx;
	int rc = rename_entry(&f->rc, e, err), depth = 0;

	if (rc != 0)
		return rc;
	if (e->type == TAR_FIFO || e->type == TAR_CHAR || e->type == TAR_BLOCK)
		return 1;
	if (e->type == TAR_SYMLINK) {
		for (const char *p = e->path; *p; p++)
			depth += *p == '/';
		if (!e->linkpath || symlink_escapes(e->linkpath, depth))
			return 1;
	}
	e->mode &= 0755;
	e->uid = getuid();
	e->gid = getgid();
	return 0;
}

int docker_provider_download(struct environment *handle, const char *env_path,
                             const struct cdir *dest, const char *dest_rel,
                             const struct copy_limits *lim, struct copy_report *rep,
                             struct err *err)
{
	struct docker_env *env = docker_env_of(handle);
	double deadline = lim && lim->deadline > 0 ? lim->deadline : mono_now() + ARCHIVE_TIMEOUT;
	_cleanup_http_conn_ struct http_conn *conn = NULL;
	_cleanup_free_ char *want = xstrdup(env_path);
	_cleanup_free_ char *parent_rel = NULL;
	_cleanup_cdir_ struct cdir root = CDIR_INIT;
	struct http_response r;
	struct path_stat ps = {0};
	struct download_filter f = {0};
	struct tar_extract_opts opts = {
	    .flags = TAR_X_SPARSE | TAR_X_CAP, .filter = filter_entry, .filter_ctx = &f};
	struct tar_extract_stats stats = {0};
	struct body_in bi = {&r, deadline};
	struct tar_input in = {body_next, NULL, &bi};
	struct tar_reader *reader;
	bool is_dir;
	int ret;

	if (lim && lim->max_bytes > 0)
		opts.max_bytes = (uint64_t)(lim->max_bytes - (rep ? rep->bytes : 0) > 0
		                                ? lim->max_bytes - (rep ? rep->bytes : 0)
		                                : 1);
	/* A symlink is followed inside the container: the daemon resolved it for us
	 * (linkTarget), so a link to a host path can never be copied out as one. */
	for (int hop = 0;; hop++) {
		if (get_archive(env, want, deadline, &conn, &r, &ps, err) < 0)
			return err_wrap(err, "download %s:%s", env->name, env_path);
		if (!(ps.mode & GO_MODE_SYMLINK))
			break;
		if (hop == MAX_LINK_HOPS || !ps.link_target[0]) {
			http_response_release(&r);
			path_stat_release(&ps);
			return err_set(err, ELOOP, "download %s:%s: too many symlinks", env->name,
			               env_path);
		}
		free(want);
		want = xstrdup(ps.link_target);
		http_response_release(&r);
		http_conn_close(steal_ptr(&conn));
		path_stat_release(&ps);
	}
	is_dir = ps.mode & GO_MODE_DIR;
	{
		_cleanup_free_ char *clean = path_clean_relative(want);

		/* GET /archive?path=/ names entries "/..."; otherwise "<basename>/..." */
		f.rc.prefix = clean && *clean ? ps.name : "";
	}
	parent_rel = xstrdup(dest_rel);
	if (!is_dir) {
		char *slash = strrchr(parent_rel, '/');

		f.rc.file_name = slash ? slash + 1 : dest_rel;
		if (slash)
			*slash = '\0';
		else
			parent_rel[0] = '\0';
	}
	ret = cdir_mkdirs(dest, parent_rel, 0755, true, &root, err);
	if (ret == 0) {
		reader = tar_reader_new(&in);
		ret = tar_extract(reader, root.fd, &opts, &stats, err);
		tar_reader_free(reader);
		if (ret == 0 && stats.truncated) {
			/* Over the collect limit: what fits was kept. The rest of the body
			 * is not read: the connection goes with it. */
			if (rep)
				rep->truncated = true;
			http_conn_close(steal_ptr(&conn));
		} else if (ret == 0) {
			ret = http_discard_body(&r, deadline, err);
		}
	}
	if (rep) {
		rep->bytes += (long long)stats.bytes;
		rep->files += (long)stats.entries;
	}
	free(f.rc.path_buf);
	free(f.rc.link_buf);
	http_response_release(&r);
	path_stat_release(&ps);
	if (ret < 0)
		return err_wrap(err, "download %s:%s to %s/%s", env->name, env_path, dest->path,
		                dest_rel);
	return 0;
}
