/* Images for docker environments: a prebuilt docker_image (pulled when missing),
 * or a build of the task's environment/ tagged by the content of the context. */
#include "providers/docker/docker.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PULL_TIMEOUT 1800.0
#define MAX_STREAM_LINE (16u << 20)

static int image_exists(struct docker_client *c, const char *ref, struct err *err)
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

/* Lines of a JSON-lines stream (build, pull); cb gets each object. */
typedef int (*json_line_cb)(void *ctx, const cJSON *obj, struct err *err);

static int json_line(struct strbuf *line, json_line_cb cb, void *ctx, struct err *err)
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

static int read_json_lines(struct http_response *r, double deadline, json_line_cb cb, void *ctx,
                           struct err *err)
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

/* The message of an error line: errorDetail.message, else error (deprecated in 1.48). */
static const char *stream_error(const cJSON *obj)
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
	const char *e = stream_error(obj);

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
	rc = read_json_lines(&r, deadline, pull_line, &st, err);
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

int docker_build_image(struct docker_client *c, const struct env_config *cfg, char **image_out,
                       struct err *err);

int docker_ensure_image(struct docker_client *c, const struct env_config *cfg, char **image_out,
                        struct err *err)
{
	if (cfg->docker_image && *cfg->docker_image && !cfg->force_build) {
		const char *ref = cfg->docker_image;
		int have = image_exists(c, ref, err);

		if (have < 0)
			return err_wrap(err, "image %s", ref);
		if (have) {
			*image_out = xstrdup(ref);
			return 0;
		}
		if (pull_image(c, ref, cfg->build_timeout_sec, err) == 0) {
			*image_out = xstrdup(ref);
			return 0;
		}
		if (!has_dockerfile(cfg->environment_dir))
			return err_wrap(
			    err,
			    "image %s is not on the Docker daemon and could not be pulled "
			    "(load it with `docker load -i FILE`, pull it where a registry "
			    "is reachable, or give the task an environment/Dockerfile)",
			    ref);
		log_warn("docker: image %s not found and not pullable (%s); building %s/Dockerfile",
		         ref, err->msg, cfg->environment_dir);
		err_clear(err);
	}
	if (!has_dockerfile(cfg->environment_dir))
		return err_set(err, ENOENT,
		               "task %s has neither [environment].docker_image nor %s/Dockerfile",
		               cfg->task_name ? cfg->task_name : "?",
		               cfg->environment_dir ? cfg->environment_dir : "environment");
	return docker_build_image(c, cfg, image_out, err);
}

int docker_build_image(struct docker_client *c, const struct env_config *cfg, char **image_out,
                       struct err *err)
{
	(void)c;
	(void)cfg;
	(void)image_out;
	return err_set(err, ENOSYS, "docker build: not yet");
}
