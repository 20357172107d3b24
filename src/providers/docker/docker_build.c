/* Images for docker environments: a prebuilt docker_image (pulled when missing),
 * or a build of the task's environment/ tagged by the content of the context. */
#include "image/context.h"
#include "image/dockerfile.h"
#include "image/dockerignore.h"
#include "image/store.h"
#include "image/tar.h"
#include "providers/docker/docker.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/sha256.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define PULL_TIMEOUT 1800.0
#define MAX_STREAM_LINE (16u << 20)

int docker_image_exists(struct docker_client *c, const char *ref, struct err *err)
{
	_cleanup_free_ char *path = docker_path(c, "/images/%s/json", ref);
	int status;

	if (docker_call(c, "GET", path, NULL, NULL, &status, err) == 0)
		return 1;
	if (status == 404) {
		err_clear(err);
		return 0;
	}
	return -1;
}

static int json_line(struct strbuf *line, docker_json_line_cb cb, void *ctx, struct err *err)
{
	cJSON *obj;
	int rc = 0;

	if (line->len == 0)
		return 0;
	obj = cJSON_ParseWithLength(line->buf, line->len);
	if (obj)
		rc = cb(ctx, obj, err);
	cJSON_Delete(obj);
	sb_reset(line);
	return rc;
}

int docker_read_json_lines(struct http_response *r, double deadline, docker_json_line_cb cb,
                           void *ctx, struct err *err)
{
	_cleanup_sb_ struct strbuf line = STRBUF_INIT;

	for (;;) {
		const uint8_t *d;
		ssize_t n = http_body_next(r, &d, 0, deadline, err);

		if (n < 0)
			return -1;
		if (n == 0)
			return json_line(&line, cb, ctx, err);
		for (ssize_t i = 0; i < n; i++) {
			if (d[i] != '\n') {
				if (line.len >= MAX_STREAM_LINE)
					return err_set(err, EMSGSIZE, "stream line too long");
				sb_addc(&line, (char)d[i]);
			} else if (json_line(&line, cb, ctx, err) < 0) {
				return -1;
			}
		}
	}
}

const char *docker_stream_error(const cJSON *obj)
{
	const char *m =
	    json_get_str(cJSON_GetObjectItemCaseSensitive(obj, "errorDetail"), "message");

	return m ? m : json_get_str(obj, "error");
}

struct pull_state {
	char *error;
};

static int pull_line(void *ctx, const cJSON *obj, struct err *err)
{
	struct pull_state *st = ctx;
	const char *e = docker_stream_error(obj);

	(void)err;
	if (e && !st->error)
		st->error = xstrdup(e);
	return 0;
}

static int pull_image(struct docker_client *c, const char *ref, double timeout, struct err *err)
{
	_cleanup_free_ char *full = NULL;
	_cleanup_free_ char *q = NULL;
	_cleanup_free_ char *path = NULL;
	_cleanup_http_conn_ struct http_conn *conn = NULL;
	const char *slash = strrchr(ref, '/');
	const char *last = slash ? slash + 1 : ref;
	double deadline = mono_now() + (timeout > 0 ? timeout : PULL_TIMEOUT);
	struct pull_state st = {0};
	struct http_response r;
	struct http_request req = {.method = "POST"};
	int rc;

	/* Without a tag the daemon would pull every tag of the repository. */
	full = strchr(last, ':') || strchr(ref, '@') ? xstrdup(ref) : xasprintf("%s:latest", ref);
	q = http_query_escape(full);
	path = docker_path(c, "/images/create?fromImage=%s", q);
	req.target = path;
	log_info("docker: pulling %s", full);
	if (docker_stream_open(c, &req, deadline, &conn, err) < 0 ||
	    http_read_response(conn, &r, false, deadline, err) < 0)
		return -1;
	if (r.status != 200) {
		docker_response_error(&r, deadline, err);
		http_response_release(&r);
		return -1;
	}
	rc = docker_read_json_lines(&r, deadline, pull_line, &st, err);
	http_response_release(&r);
	if (rc == 0 && st.error)
		rc = err_set(err, ENOENT, "%s", st.error);
	free(st.error);
	return rc;
}

static bool has_dockerfile(const char *dir)
{
	_cleanup_free_ char *p = dir ? path_join(dir, "Dockerfile") : NULL;

	return p && path_is_file(p);
}

/* BuildKit-only Dockerfile syntax needs builder version 2. */
static bool needs_buildkit(const char *dockerfile)
{
	static const char *const marks[] = {"--mount", "--chmod",   "--link",
	                                    "<<",      "--parents", "--exclude"};

	for (size_t i = 0; i < ARRAY_SIZE(marks); i++)
		if (dockerfile && strstr(dockerfile, marks[i]))
			return true;
	return false;
}

static int choose_builder(struct docker_client *c, const char *dir)
{
	const char *force = getenv("ROLLOUT_DOCKER_BUILDER");
	_cleanup_free_ char *path = path_join(dir, "Dockerfile");
	_cleanup_free_ char *text = NULL;
	size_t len;

	if (force && (strcmp(force, "1") == 0 || strcmp(force, "2") == 0))
		return force[0] - '0';
	if (read_file(path, 1 << 20, &text, &len, NULL) == 0 && needs_buildkit(text))
		return 2;
	return c->builder_v2 ? 2 : 1;
}

/* ---- the build stream ------------------------------------------------------------ */

#define TAIL_LINES 12

struct build_state {
	int log_fd;
	char *image_id;
	char *error;
	char *step; /* the last step started: where a failure happened */
	char *tail[TAIL_LINES];
	int tail_next;
	struct strbuf partial; /* output text not yet ended by a newline */
	/* BuildKit vertices: digest -> name, announced */
	struct strv vdigest, vname;
};

static void log_text(struct build_state *st, const char *s, size_t n)
{
	if (st->log_fd >= 0 && n)
		(void)!write(st->log_fd, s, n);
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\n') {
			if (st->partial.len < 1000)
				sb_addc(&st->partial, s[i]);
			continue;
		}
		if (st->partial.len) {
			free(st->tail[st->tail_next]);
			st->tail[st->tail_next] = sb_detach(&st->partial);
			st->tail_next = (st->tail_next + 1) % TAIL_LINES;
		}
	}
}

static void log_line(struct build_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void log_line(struct build_state *st, const char *fmt, ...)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	if (!sb.len || sb.buf[sb.len - 1] != '\n')
		sb_addc(&sb, '\n');
	log_text(st, sb.buf, sb.len);
}

static void set_str(char **dst, const char *s, size_t n)
{
	free(*dst);
	*dst = xstrndup(s, n);
}

/* Minimal protobuf reading for BuildKit's StatusResponse. */
static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

struct pb_field {
	uint32_t num;
	int wire;
	uint64_t varint;
	const uint8_t *data;
	size_t len;
};

/* Next field of a message; false at the end or on malformed input. */
static bool pb_next(const uint8_t **p, const uint8_t *end, struct pb_field *f)
{
	uint64_t key, len;

	if (*p >= end || !pb_varint(p, end, &key))
		return false;
	f->num = (uint32_t)(key >> 3);
	f->wire = (int)(key & 7);
	switch (f->wire) {
	case 0:
		return pb_varint(p, end, &f->varint);
	case 1:
		if (end - *p < 8)
			return false;
		*p += 8;
		return true;
	case 2:
		if (!pb_varint(p, end, &len) || len > (uint64_t)(end - *p))
			return false;
		f->data = *p;
		f->len = (size_t)len;
		*p += len;
		return true;
	case 5:
		if (end - *p < 4)
			return false;
		*p += 4;
		return true;
	default:
		return false;
	}
}

static int vertex_index(struct build_state *st, const char *digest)
{
	for (size_t i = 0; i < st->vdigest.n; i++)
		if (strcmp(st->vdigest.v[i], digest) == 0)
			return (int)i;
	return -1;
}

static void buildkit_vertex(struct build_state *st, const uint8_t *d, size_t n)
{
	const uint8_t *p = d, *end = d + n;
	struct pb_field f;
	_cleanup_free_ char *digest = NULL, *name = NULL, *error = NULL;
	bool started = false, completed = false, cached = false;
	int idx;

	while (pb_next(&p, end, &f)) {
		if (f.num == 1 && f.wire == 2)
			set_str(&digest, (const char *)f.data, f.len);
		else if (f.num == 3 && f.wire == 2)
			set_str(&name, (const char *)f.data, f.len);
		else if (f.num == 4 && f.wire == 0)
			cached = f.varint != 0;
		else if (f.num == 5 && f.wire == 2)
			started = true;
		else if (f.num == 6 && f.wire == 2)
			completed = true;
		else if (f.num == 7 && f.wire == 2)
			set_str(&error, (const char *)f.data, f.len);
	}
	if (!digest)
		return;
	idx = vertex_index(st, digest);
	if (idx < 0 && (started || cached || error)) {
		strv_push(&st->vdigest, digest);
		strv_push(&st->vname, name ? name : "?");
		idx = (int)st->vdigest.n - 1;
		log_line(st, "#%d %s%s", idx + 1, name ? name : "?", cached ? " (cached)" : "");
		if (name && name[0] == '[')
			set_str(&st->step, name, strlen(name));
	}
	if (idx >= 0 && error && *error) {
		log_line(st, "#%d ERROR: %s", idx + 1, error);
		set_str(&st->step, st->vname.v[idx], strlen(st->vname.v[idx]));
	}
	(void)completed;
}

static void buildkit_log(struct build_state *st, const uint8_t *d, size_t n)
{
	const uint8_t *p = d, *end = d + n;
	struct pb_field f;

	while (pb_next(&p, end, &f))
		if (f.num == 4 && f.wire == 2)
			log_text(st, (const char *)f.data, f.len);
}

static void buildkit_trace(struct build_state *st, const char *b64)
{
	size_t len = 0;
	_cleanup_free_ char *raw = docker_base64_decode(b64, &len);
	const uint8_t *p = (const uint8_t *)raw, *end = p + len;
	struct pb_field f;

	if (!raw)
		return;
	while (pb_next(&p, end, &f)) {
		if (f.wire != 2)
			continue;
		if (f.num == 1)
			buildkit_vertex(st, f.data, f.len);
		else if (f.num == 3)
			buildkit_log(st, f.data, f.len);
	}
}

static int build_line(void *ctx, const cJSON *obj, struct err *err)
{
	struct build_state *st = ctx;
	const char *stream = json_get_str(obj, "stream");
	const char *status = json_get_str(obj, "status");
	const char *id = json_get_str(obj, "id");
	const char *e = docker_stream_error(obj);
	const cJSON *aux = cJSON_GetObjectItemCaseSensitive(obj, "aux");

	(void)err;
	if (e) {
		if (!st->error)
			st->error = xstrdup(e);
		log_line(st, "ERROR: %s", e);
		return 0;
	}
	if (stream) {
		const char *built = strstr(stream, "Successfully built ");

		log_text(st, stream, strlen(stream));
		if (str_starts_with(stream, "Step ")) {
			size_t n = strcspn(stream, "\n");

			set_str(&st->step, stream, n);
		}
		if (built && !st->image_id)
			set_str(&st->image_id, built + 19, strcspn(built + 19, "\n "));
		return 0;
	}
	if (id && strcmp(id, "moby.buildkit.trace") == 0 && cJSON_IsString(aux)) {
		buildkit_trace(st, aux->valuestring);
		return 0;
	}
	if (cJSON_IsObject(aux) && json_get_str(aux, "ID")) {
		set_str(&st->image_id, json_get_str(aux, "ID"), strlen(json_get_str(aux, "ID")));
		return 0;
	}
	/* Pull progress of base images: the status lines, not every progress tick. */
	if (status && !cJSON_GetObjectItemCaseSensitive(obj, "progress"))
		log_line(st, "%s%s%s", id ? id : "", id ? ": " : "", status);
	return 0;
}

static void build_state_release(struct build_state *st)
{
	free(st->image_id);
	free(st->error);
	free(st->step);
	for (int i = 0; i < TAIL_LINES; i++)
		free(st->tail[i]);
	sb_release(&st->partial);
	strv_release(&st->vdigest);
	strv_release(&st->vname);
}

static void add_tail(struct build_state *st, struct strbuf *sb)
{
	bool any = false;

	for (int i = 0; i < TAIL_LINES; i++) {
		const char *line = st->tail[(st->tail_next + i) % TAIL_LINES];

		if (!line)
			continue;
		if (!any)
			sb_adds(sb, "\nlast output:");
		any = true;
		sb_addf(sb, "\n  %.200s", line);
	}
}

struct build_body {
	struct http_conn *conn;
	double deadline;
};

static int build_body_write(void *ctx, const void *data, size_t n, struct err *err)
{
	struct build_body *b = ctx;

	return http_write_body(b->conn, data, n, b->deadline, err);
}

/* POST /build with the context streamed as a chunked body; the daemon's answer is
 * read while the body is still being written (http_write_body buffers it). */
static int run_build(struct docker_client *c, const struct env_config *cfg, const char *tag,
                     const char *hash, const struct dockerignore *ignore, int builder,
                     struct err *err)
{
	double deadline = cfg->build_timeout_sec > 0 ? mono_now() + cfg->build_timeout_sec : 0;
	_cleanup_free_ char *qtag = http_query_escape(tag);
	_cleanup_free_ char *labels = NULL;
	_cleanup_free_ char *qlabels = NULL;
	_cleanup_free_ char *path = NULL;
	_cleanup_http_conn_ struct http_conn *conn = NULL;
	_cleanup_json_ cJSON *lj = cJSON_CreateObject();
	struct http_request req = {
	    .method = "POST", .content_type = "application/x-tar", .chunked = true};
	struct build_body bb;
	struct tar_output out = {build_body_write, &bb};
	struct build_state st = {.log_fd = -1};
	struct http_response r;
	int rc;

	cJSON_AddStringToObject(lj, "rollout.task", cfg->task_name ? cfg->task_name : "");
	cJSON_AddStringToObject(lj, "rollout.context", hash);
	labels = cJSON_PrintUnformatted(lj);
	qlabels = http_query_escape(labels);
	path = docker_path(c, "/build?t=%s&rm=1&forcerm=1&version=%d&labels=%s", qtag, builder,
	                   qlabels);
	req.target = path;
	if (cfg->build_log_path) {
		st.log_fd =
		    open(cfg->build_log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (st.log_fd < 0)
			log_warn("docker: build log %s: %s", cfg->build_log_path, strerror(errno));
	}
	log_line(&st, "rollout: building %s from %s (builder %s)", tag, cfg->environment_dir,
	         builder == 2 ? "BuildKit" : "legacy");
	log_info("docker: building image %s from %s", tag, cfg->environment_dir);

	rc = docker_stream_open(c, &req, deadline, &conn, err);
	if (rc == 0) {
		bb.conn = conn;
		bb.deadline = deadline;
		rc = context_write_tar(cfg->environment_dir, ignore, false, &out, err);
		if (rc == 0)
			rc = http_finish_body(conn, deadline, err);
		/* A daemon that refused the build early may have closed the connection:
		 * its answer is what matters. */
		if (rc < 0 && (err->code == EPIPE || err->code == ECONNRESET))
			rc = 0;
	}
	if (rc == 0)
		rc = http_read_response(conn, &r, false, deadline, err);
	if (rc == 0) {
		if (r.status != 200) {
			docker_response_error(&r, deadline, err);
			log_line(&st, "ERROR: %s", err->msg);
			rc = -1;
		} else {
			rc = docker_read_json_lines(&r, deadline, build_line, &st, err);
		}
		http_response_release(&r);
	}
	if (rc == 0 && st.partial.len)
		log_text(&st, "\n", 1);
	if (rc == 0 && (st.error || !st.image_id)) {
		_cleanup_sb_ struct strbuf msg = STRBUF_INIT;

		sb_addf(&msg, "docker build of %s failed", tag);
		if (st.step)
			sb_addf(&msg, " at %s", st.step);
		sb_addf(&msg, ": %s", st.error ? st.error : "no image was produced");
		add_tail(&st, &msg);
		if (cfg->build_log_path)
			sb_addf(&msg, "\n(full output in %s)", cfg->build_log_path);
		rc = err_set(err, EIO, "%s", msg.buf);
	} else if (rc < 0) {
		if (err->code == ETIMEDOUT)
			err_set(err, ETIMEDOUT, "docker build of %s: timed out after %.0f s", tag,
			        cfg->build_timeout_sec);
		else
			err_wrap(err, "docker build of %s", tag);
	}
	if (st.log_fd >= 0) {
		if (rc == 0)
			log_line(&st, "rollout: built %s (%s)", tag, st.image_id);
		close(st.log_fd);
	}
	build_state_release(&st);
	return rc;
}

/* ---- images from elsewhere: docker_image, FROM ---- */

static const char *task_name(const struct env_config *cfg)
{
	return cfg->task_name ? cfg->task_name : "?";
}

/* Make ref present on the daemon: there already, loaded from rollout's image
 * store, or pulled. Missing everywhere: an error naming the task, the image and
 * the commands that provide it (the daemon's own answer comes last). */
static int provide_image(struct docker_client *c, const struct env_config *cfg, const char *ref,
                         struct err *err)
{
	double timeout = cfg->build_timeout_sec > 0 ? cfg->build_timeout_sec : PULL_TIMEOUT;
	_cleanup_free_ char *why = NULL, *root = NULL;
	int have = docker_image_exists(c, ref, err);

	if (have == 0)
		have = docker_load_from_store(c, ref, mono_now() + timeout, err);
	if (have < 0)
		return err_wrap(err, "task %s: image %s", task_name(cfg), ref);
	if (have > 0 || pull_image(c, ref, timeout, err) == 0)
		return 0;
	if (err->code == ECANCELED)
		return -1;
	why = xstrdup(err->msg);
	root = store_default_root();
	return err_set(err, ENOENT,
	               "task %s: image %s is not on the Docker daemon and not in rollout's image "
	               "store (%s); make it available with `rollout image load ARCHIVE` or "
	               "`rollout image import ROOTFS.tar --tag %s` (rollout then loads it into "
	               "the daemon), or with `docker pull %s` (pulling it here failed: %s)",
	               task_name(cfg), ref, root, ref, ref, why);
}

/* The images the task's Dockerfile builds on, each provided before the build, so
 * that a missing one is named as such rather than by the daemon's build error.
 * A Dockerfile rollout cannot read is left to the daemon to judge. */
static int provide_base_images(struct docker_client *c, const struct env_config *cfg,
                               struct err *err)
{
	_cleanup_free_ char *path = path_join(cfg->environment_dir, "Dockerfile");
	_cleanup_free_ char *text = NULL;
	_cleanup_strvs_ struct strv bases = STRV_INIT;
	struct dockerfile *df = NULL;
	struct err perr = {0};
	size_t len;

	if (read_file(path, 1 << 20, &text, &len, &perr) < 0 ||
	    dockerfile_parse(text, len, "Dockerfile", &df, &perr) < 0 ||
	    dockerfile_base_images(df, &bases, &perr) < 0) {
		dockerfile_free(df);
		log_debug("docker: base images of %s not resolved here: %s", path, perr.msg);
		return 0;
	}
	dockerfile_free(df);
	for (size_t i = 0; i < bases.n; i++)
		if (provide_image(c, cfg, bases.v[i], err) < 0)
			return -1;
	return 0;
}

static int docker_build_image(struct docker_client *c, const struct env_config *cfg,
                              char **image_out, struct err *err)
{
	struct dockerignore *ignore = NULL;
	char hex[SHA256_HEX_LEN + 1];
	_cleanup_free_ char *tag = NULL;
	_cleanup_close_ int lock = -1;
	double deadline = cfg->build_timeout_sec > 0 ? mono_now() + cfg->build_timeout_sec : 0;
	int builder, have, rc;
	char prefix[64];

	if (dockerignore_load(cfg->environment_dir, &ignore, err) < 0)
		return -1;
	builder = choose_builder(c, cfg->environment_dir);
	/* The tag is a digest of what the build sees: the context's names, types,
	 * modes and contents (not times), and how it is built. */
	snprintf(prefix, sizeof(prefix), "rollout-docker-build-1 builder=%d\n", builder);
	rc = context_digest(cfg->environment_dir, ignore, prefix, hex, err);
	if (rc < 0) {
		dockerignore_free(ignore);
		return -1;
	}
	tag = context_image_name(cfg->task_name, hex);

	if (!cfg->force_build || context_built_here("docker", tag, false)) {
		have = docker_image_exists(c, tag, err);
		if (have != 0) {
			dockerignore_free(ignore);
			if (have < 0)
				return -1;
			*image_out = steal_ptr(&tag);
			return 0;
		}
	}
	rc = context_build_lock("docker-build", tag, deadline, &lock, err);
	if (rc == 0 && (!cfg->force_build || context_built_here("docker", tag, false))) {
		/* Another trial or process may have built it while we waited. */
		have = docker_image_exists(c, tag, err);
		if (have != 0) {
			dockerignore_free(ignore);
			if (have < 0)
				return -1;
			*image_out = steal_ptr(&tag);
			return 0;
		}
	}
	if (rc == 0)
		rc = provide_base_images(c, cfg, err);
	if (rc == 0)
		rc = run_build(c, cfg, tag, hex, ignore, builder, err);
	dockerignore_free(ignore);
	if (rc < 0)
		return -1;
	context_built_here("docker", tag, true);
	have = docker_image_exists(c, tag, err);
	if (have <= 0)
		return have < 0 ? -1
		                : err_set(err, ENOENT,
		                          "docker build of %s reported success but the "
		                          "image is missing",
		                          tag);
	*image_out = steal_ptr(&tag);
	return 0;
}

int docker_ensure_image(struct docker_client *c, const struct env_config *cfg, char **image_out,
                        struct err *err)
{
	bool prebuilt = cfg->docker_image && *cfg->docker_image;
	bool dockerfile = has_dockerfile(cfg->environment_dir);

	if (prebuilt && cfg->force_build && !dockerfile)
		log_warn_once("docker-force-build",
		              "docker: force_build without a Dockerfile in "
		              "environment/: using docker_image %s",
		              cfg->docker_image);
	if (prebuilt && (!cfg->force_build || !dockerfile)) {
		const char *ref = cfg->docker_image;

		if (provide_image(c, cfg, ref, err) == 0) {
			*image_out = xstrdup(ref);
			return 0;
		}
		if (!dockerfile || err->code == ECANCELED)
			return -1;
		log_warn("docker: %s; building %s/Dockerfile instead", err->msg,
		         cfg->environment_dir);
		err_clear(err);
	}
	if (!dockerfile)
		return err_set(
		    err, ENOENT, "task %s has neither [environment].docker_image nor %s/Dockerfile",
		    task_name(cfg), cfg->environment_dir ? cfg->environment_dir : "environment");
	return docker_build_image(c, cfg, image_out, err);
}
