/* Images the daemon lacks but rollout's own image store has (`rollout image
 * import`, `load` or `build`; `make demo` imports its fixture images there): the
 * store's image goes into the daemon through POST /images/load, the archive
 * written by store_save() straight into the request body, so nothing is staged
 * on disk. One load of an image at a time across trials and processes (a lock
 * like the build's); whoever waited finds the image there. */
#include "image/context.h"
#include "image/store.h"
#include "providers/docker/docker.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

/* The store is only read: a user who never used it does not get one made. */
static int open_store_if_any(struct store **out, struct err *err)
{
	_cleanup_free_ char *root = store_default_root();
	_cleanup_free_ char *marker = path_join(root, "store.json");

	*out = NULL;
	if (!path_is_file(marker))
		return 0;
	if (store_open(root, out, err) < 0)
		return err_wrap(err, "rollout's image store");
	return 1;
}

struct load_body {
	struct http_conn *conn;
	double deadline;
};

static int load_body_write(void *ctx, const void *data, size_t n, struct err *err)
{
	struct load_body *b = ctx;

	return http_write_body(b->conn, data, n, b->deadline, err);
}

static int load_line(void *ctx, const cJSON *obj, struct err *err)
{
	char **error = ctx;
	const char *e = docker_stream_error(obj);

	(void)err;
	if (e && !*error)
		*error = xstrdup(e);
	return 0;
}

/* POST /images/load?quiet=1 with the saved image as a chunked body. */
static int post_load(struct docker_client *c, struct store *s, const char *ref, double deadline,
                     struct err *err)
{
	_cleanup_free_ char *path = docker_path(c, "/images/load?quiet=1");
	_cleanup_http_conn_ struct http_conn *conn = NULL;
	_cleanup_free_ char *error = NULL, *id = NULL;
	struct http_request req = {
	    .method = "POST", .target = path, .content_type = "application/x-tar", .chunked = true};
	struct load_body lb = {.deadline = deadline};
	struct tar_output out = {load_body_write, &lb};
	struct http_response r;
	int rc;

	if (docker_stream_open(c, &req, deadline, &conn, err) < 0)
		return -1;
	lb.conn = conn;
	rc = store_save(s, ref, ref, &out, deadline, &id, err);
	if (rc == 0)
		rc = http_finish_body(conn, deadline, err);
	/* A daemon that refused the archive early may have closed the connection:
	 * its answer says why. Any other failure is ours (the store). */
	if (rc < 0 && err->code != EPIPE && err->code != ECONNRESET)
		return -1;
	err_clear(err);
	if (http_read_response(conn, &r, false, deadline, err) < 0)
		return -1;
	if (r.status != 200) {
		docker_response_error(&r, deadline, err);
		http_response_release(&r);
		return -1;
	}
	rc = docker_read_json_lines(&r, deadline, load_line, &error, err);
	http_response_release(&r);
	if (rc == 0 && error)
		rc = err_set(err, EIO, "%s", error);
	if (rc == 0)
		log_info("docker: loaded %s into the daemon from rollout's image store (as %.19s)",
		         ref, id);
	return rc;
}

/* An image ID (or a prefix of one) rather than a reference: the store would look
 * it up by its own IDs, which are not the daemon's (store_save rewrites them). */
static bool looks_like_id(const char *ref)
{
	size_t n;

	if (str_starts_with(ref, "sha256:"))
		return true;
	n = strspn(ref, "0123456789abcdef");
	return n >= 4 && ref[n] == '\0';
}

int docker_load_from_store(struct docker_client *c, const char *ref, double deadline,
                           struct err *err)
{
	struct store *s = NULL;
	struct store_image *img = NULL;
	_cleanup_close_ int lock = -1;
	int rc, have;

	if (looks_like_id(ref))
		return 0;
	rc = open_store_if_any(&s, err);
	if (rc <= 0)
		return rc;
	if (store_image_lookup(s, ref, &img, err) < 0) {
		store_close(s);
		if (err->code != ENOENT)
			return err_wrap(err, "rollout's image store");
		err_clear(err);
		return 0;
	}
	store_image_free(img);
	rc = context_build_lock("docker-load", ref, deadline, &lock, err);
	/* Another trial or process may have loaded it while we waited. */
	have = rc == 0 ? docker_image_exists(c, ref, err) : -1;
	if (have == 0) {
		log_info(
		    "docker: %s is not on the daemon; loading it from rollout's image store %s",
		    ref, store_root(s));
		rc = post_load(c, s, ref, deadline, err);
		if (rc < 0)
			err_wrap(err,
			         "loading %s from rollout's image store %s into the Docker daemon",
			         ref, store_root(s));
	} else {
		rc = have < 0 ? -1 : 0;
	}
	store_close(s);
	return rc < 0 ? -1 : 1;
}
