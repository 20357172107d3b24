/* Registry pulls (see pull.h): references, manifests, platform choice, config,
 * layers streamed into the store by forked workers. */
#include "image/pull.h"
#include "image/oci.h"
#include "image/regauth.h"
#include "image/regconf.h"
#include "image/store.h"
#include "image/store_internal.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/http.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/sha256.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PULL_MAX_MANIFEST (4 << 20)
#define PULL_TIMEOUT 60.0        /* seconds per request head, and idle on bodies */
#define PULL_BLOB_TIMEOUT 3600.0 /* a whole layer */
#define PULL_MAX_DEPTH 4

static const char accept_hdr[] = "Accept: " OCI_MEDIA_INDEX ", " OCI_MEDIA_MANIFEST
                                 ", " DOCKER_MEDIA_LIST ", " DOCKER_MEDIA_MANIFEST;

/* ---- references ---- */

static bool path_component_ok(const char *s, size_t n)
{
	/* [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
	size_t i = 0;

	if (n == 0 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
		return false;
	while (i < n) {
		if (islower((unsigned char)s[i]) || isdigit((unsigned char)s[i])) {
			i++;
			continue;
		}
		/* a separator: ".", "_", "__" or "-+", followed by an alnum */
		if (s[i] == '.')
			i++;
		else if (s[i] == '_')
			i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
		else if (s[i] == '-')
			while (i < n && s[i] == '-')
				i++;
		else
			return false;
		if (i >= n || !(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i])))
			return false;
	}
	return true;
}

static bool tag_ok(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && !strchr("._-", t[i]))
			return false;
	return true;
}

void pull_ref_release(struct pull_ref *r)
{
	free(r->domain);
	free(r->api_host);
	free(r->path);
	free(r->tag);
	free(r->digest);
	free(r->canonical);
	memset(r, 0, sizeof(*r));
}

int pull_ref_parse(const char *s, struct pull_ref *out, struct err *err)
{
	_cleanup_free_ char *name = NULL;
	const char *at, *slash, *colon, *p, *rest;
	struct strbuf sb = STRBUF_INIT;

	memset(out, 0, sizeof(*out));
	if (!s || !*s || strlen(s) > 255)
		goto bad;
	at = strchr(s, '@');
	name = at ? xstrndup(s, (size_t)(at - s)) : xstrdup(s);
	if (at) {
		if (!oci_digest_valid(at + 1)) {
			err_set(err, EINVAL, "invalid image reference '%s': bad digest", s);
			return -1;
		}
		out->digest = xstrdup(at + 1);
	}
	slash = strrchr(name, '/');
	colon = strrchr(name, ':');
	if (colon && (!slash || colon > slash)) {
		if (!tag_ok(colon + 1)) {
			err_set(err, EINVAL, "invalid image reference '%s': bad tag", s);
			goto fail;
		}
		out->tag = xstrdup(colon + 1);
		*(char *)colon = '\0';
	}
	/* The first component is a domain if it has '.' or ':', is localhost, or has
	 * an uppercase letter. */
	slash = strchr(name, '/');
	rest = name;
	if (slash) {
		bool domain = (size_t)(slash - name) == 9 && strncmp(name, "localhost", 9) == 0;

		for (p = name; p < slash; p++)
			if (*p == '.' || *p == ':' || isupper((unsigned char)*p))
				domain = true;
		if (domain) {
			out->domain = xstrndup(name, (size_t)(slash - name));
			rest = slash + 1;
		}
	}
	if (!out->domain || strcmp(out->domain, "index.docker.io") == 0) {
		free(out->domain);
		out->domain = xstrdup("docker.io");
	}
	if (strcmp(out->domain, "docker.io") == 0 && !strchr(rest, '/'))
		out->path = xasprintf("library/%s", rest);
	else
		out->path = xstrdup(rest);
	for (p = out->path; *p;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (!path_component_ok(p, n))
			goto bad;
		p += n + (e ? 1 : 0);
		if (e && !*p)
			goto bad;
	}
	if (!out->tag && !out->digest)
		out->tag = xstrdup("latest");
	out->api_host =
	    xstrdup(strcmp(out->domain, "docker.io") == 0 ? "registry-1.docker.io" : out->domain);
	sb_addf(&sb, "%s/%s", out->domain, out->path);
	if (out->tag)
		sb_addf(&sb, ":%s", out->tag);
	if (out->digest)
		sb_addf(&sb, "@%s", out->digest);
	out->canonical = sb_detach(&sb);
	return 0;
bad:
	err_set(err, EINVAL, "invalid image reference '%.255s'", s ? s : "");
fail:
	pull_ref_release(out);
	return -1;
}

/* ---- requests ---- */

struct puller {
	struct pull_ref ref;
	const struct pull_opts *o;
	const struct regconf_endpoint *ep; /* the endpoint tried now */
	bool fallback;                     /* another endpoint comes after ep */
	bool reached;                      /* ep answered an HTTP request */
	char *scope;                       /* "repository:<ep's repository>:pull" */
	char *authorization;               /* after a successful authorize() */
	struct http_pool pool;
	bool use_pool;
};

/* "code: message" of a registry error body, else its first 200 bytes. */
static void describe_error_body(const struct strbuf *body, struct strbuf *out)
{
	_cleanup_json_ cJSON *doc = NULL;
	cJSON *e;

	if (body->len == 0)
		return;
	doc = cJSON_ParseWithLength(body->buf, body->len);
	e = doc ? cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "errors"), 0) : NULL;
	if (e && json_get_str(e, "code")) {
		sb_addf(out, " (%s: %s)", json_get_str(e, "code"),
		        json_get_str(e, "message") ? json_get_str(e, "message") : "");
		return;
	}
	sb_addf(out, " (%.200s)", sb_str(body));
	str_strip_terminal(out->buf);
}

static int status_error(struct puller *p, struct http_get *g, const char *what, struct err *err)
{
	_cleanup_sb_ struct strbuf body = STRBUF_INIT, msg = STRBUF_INIT;
	struct err ignored = {0};
	int code = g->resp.status == 404   ? ENOENT
	           : g->resp.status == 401 ? EACCES
	           : g->resp.status == 403 ? EACCES
	                                   : EPROTO;

	http_read_body(&g->resp, &body, 64 << 10, g->deadline, &ignored);
	sb_addf(&msg, "%s %s: %s: HTTP %d %s", p->ep->host, p->ep->repository, what, g->resp.status,
	        g->resp.reason ? g->resp.reason : "");
	describe_error_body(&body, &msg);
	if (g->resp.status == 401)
		sb_addf(&msg,
		        "; the repository does not exist or needs credentials: run `rollout login "
		        "%s` if it is private",
		        p->ref.domain);
	else if (g->resp.status == 404)
		sb_adds(&msg, "; check the repository name and the tag");
	return err_set(err, code, "%s", sb_str(&msg));
}

/* How many times a 429 (5 tries, as c/image) or a 5xx/408 is retried. A 5xx
 * is not retried when another endpoint can be tried instead. */
#define PULL_RETRIES_429 4
#define PULL_RETRIES_5XX 2

/* GET the endpoint's URL + target (a path under /v2/), with one authorized retry
 * after a 401 and backoff retries after a 429 or a 5xx (Retry-After honoured,
 * bounded, cancellable). Returns with g open on any status. */
static int reg_get(struct puller *p, const char *target, bool manifest, double timeout,
                   struct http_get *g, struct err *err)
{
	_cleanup_free_ char *url = xasprintf("%s%s", p->ep->url, target);
	const char *headers[2] = {manifest ? accept_hdr : NULL, NULL};
	int busy = 0;
	bool authorized = false;

	for (;;) {
		_cleanup_sb_ struct strbuf auth = STRBUF_INIT;
		const char *challenge;
		int st, max;

		memset(g, 0, sizeof(*g));
		g->url = url;
		g->headers = headers;
		g->authorization = p->authorization;
		g->timeout = timeout;
		g->idle_timeout = PULL_TIMEOUT;
		g->redirects.max = 10;
		g->pool = p->use_pool ? &p->pool : NULL;
		g->tls = p->ep->tls;
		if (http_get_open(g, err) < 0)
			return err_wrap(err, "%s %s", p->ep->host, p->ep->repository);
		p->reached = true;
		st = g->resp.status;
		max = st == 429                                  ? PULL_RETRIES_429
		      : (st >= 500 || st == 408) && !p->fallback ? PULL_RETRIES_5XX
		                                                 : 0;
		if (busy < max) {
			double wait = regauth_backoff(++busy, http_header(&g->resp, "Retry-After"));

			if (!p->o->quiet)
				fprintf(stderr, "%s: HTTP %d, retrying in %.0f s (%d/%d)\n", url,
				        st, wait, busy, max);
			http_get_close(g);
			if (regauth_wait(wait, err) < 0)
				return -1;
			continue;
		}
		if (st != 401 || authorized || !p->o->authorize)
			return 0;
		authorized = true;
		challenge = http_header(&g->resp, "WWW-Authenticate");
		if (p->o->authorize(p->o->authorize_ctx, p->ep->host, challenge, p->scope, &auth,
		                    err) < 0) {
			http_get_close(g);
			return err_wrap(err, "%s %s", p->ep->host, p->ep->repository);
		}
		http_get_close(g);
		free(p->authorization);
		p->authorization = sb_detach(&auth);
	}
}

/* ---- manifests ---- */

enum doc_kind { DOC_INDEX, DOC_MANIFEST, DOC_SCHEMA1, DOC_UNKNOWN };

static enum doc_kind classify(const char *content_type, const char *body, size_t len,
                              char **type_out)
{
	_cleanup_free_ char *ct = xstrndup(content_type ? content_type : "",
	                                   strcspn(content_type ? content_type : "", "; "));
	_cleanup_json_ cJSON *doc = cJSON_ParseWithLength(body, len);
	const char *mt = doc ? json_get_str(doc, "mediaType") : NULL;

	if (strcmp(ct, OCI_MEDIA_INDEX) == 0 || strcmp(ct, DOCKER_MEDIA_LIST) == 0)
		return DOC_INDEX;
	if (strcmp(ct, OCI_MEDIA_MANIFEST) == 0 || strcmp(ct, DOCKER_MEDIA_MANIFEST) == 0)
		return DOC_MANIFEST;
	if (str_starts_with(ct, "application/vnd.docker.distribution.manifest.v1"))
		return DOC_SCHEMA1;
	/* Generic or missing Content-Type: the body says. */
	if (doc && json_get_num(doc, "schemaVersion", 0) == 1)
		return DOC_SCHEMA1;
	if (ct[0] && strcmp(ct, "application/json") != 0 &&
	    strcmp(ct, "application/octet-stream") != 0 && strcmp(ct, "text/plain") != 0) {
		*type_out = xstrdup(ct);
		return DOC_UNKNOWN;
	}
	if (!doc)
		return DOC_UNKNOWN;
	if (mt && strcmp(mt, OCI_MEDIA_INDEX) != 0 && strcmp(mt, DOCKER_MEDIA_LIST) != 0 &&
	    strcmp(mt, OCI_MEDIA_MANIFEST) != 0 && strcmp(mt, DOCKER_MEDIA_MANIFEST) != 0) {
		*type_out = xstrdup(mt);
		return DOC_UNKNOWN;
	}
	switch (oci_blob_kind(doc)) {
	case OCI_BLOB_INDEX:
		return DOC_INDEX;
	case OCI_BLOB_MANIFEST:
		return DOC_MANIFEST;
	default:
		return DOC_UNKNOWN;
	}
}

/* GET a manifest by tag or digest: its raw bytes, checked against the digest
 * asked for (or the Docker-Content-Digest header). */
static int fetch_manifest(struct puller *p, const char *ref, const char *want_digest,
                          struct strbuf *body, enum doc_kind *kind, char **digest, struct err *err)
{
	_cleanup_free_ char *target = xasprintf("/v2/%s/manifests/%s", p->ep->repository, ref);
	_cleanup_free_ char *unknown = NULL;
	char hex[SHA256_HEX_LEN + 1];
	struct http_get g;
	const char *hdr;
	int rc;

	if (reg_get(p, target, true, PULL_TIMEOUT, &g, err) < 0)
		return -1;
	if (g.resp.status != 200) {
		_cleanup_free_ char *what = xasprintf("manifest %s", ref);

		status_error(p, &g, what, err);
		http_get_close(&g);
		return -1;
	}
	rc = http_read_body(&g.resp, body, PULL_MAX_MANIFEST, g.deadline, err);
	if (rc < 0) {
		http_get_close(&g);
		return err_wrap(err, "%s %s: manifest %s", p->ep->host, p->ep->repository, ref);
	}
	sha256_hex(body->buf ? body->buf : "", body->len, hex);
	*digest = xasprintf("sha256:%s", hex);
	hdr = http_header(&g.resp, "Docker-Content-Digest");
	if (!want_digest && hdr && oci_digest_valid(hdr))
		want_digest = hdr;
	*kind = classify(http_header(&g.resp, "Content-Type"), body->buf, body->len, &unknown);
	http_get_close(&g);
	if (*kind == DOC_SCHEMA1)
		return err_set(err, ENOTSUP,
		               "%s uses the deprecated Docker schema 1 manifest format, which "
		               "rollout does not pull; re-push it with a current docker or skopeo "
		               "(skopeo copy --format v2s2)",
		               p->ref.canonical);
	if (*kind == DOC_UNKNOWN)
		return err_set(err, ENOTSUP, "%s: unsupported manifest media type %s",
		               p->ref.canonical,
		               unknown ? unknown : "(none; not an image manifest)");
	/* After the schema1 check: a signed schema1 manifest's digest covers its
	 * payload without the signatures. */
	if (want_digest && strcmp(want_digest, *digest) != 0)
		return err_set(err, EINVAL,
		               "%s %s: manifest %s: digest mismatch (expected %s, got %s)",
		               p->ep->host, p->ep->repository, ref, want_digest, *digest);
	return 0;
}

/* ---- platforms ---- */

struct platform {
	char *os, *arch, *variant;
};

static void platform_release(struct platform *pl)
{
	free(pl->os);
	free(pl->arch);
	free(pl->variant);
}

static int platform_parse(const char *s, struct platform *pl, struct err *err)
{
	_cleanup_strvs_ struct strv parts = STRV_INIT;
	const char *p = s;

	memset(pl, 0, sizeof(*pl));
	if (!s) {
		const char *arch = oci_host_arch();

		pl->os = xstrdup("linux");
		if (strcmp(arch, "arm") == 0)
			pl->variant = xstrdup("v7");
		pl->arch = xstrdup(arch);
		return 0;
	}
	while (*p) {
		size_t n = strcspn(p, "/");

		strv_push_take(&parts, xstrndup(p, n));
		p += n + (p[n] ? 1 : 0);
	}
	if (parts.n < 2 || parts.n > 3 || !*parts.v[0] || !*parts.v[1])
		return err_set(err, EINVAL, "bad platform '%s' (expected os/arch[/variant])", s);
	pl->os = xstrdup(parts.v[0]);
	pl->arch = xstrdup(parts.v[1]);
	pl->variant = parts.n == 3 ? xstrdup(parts.v[2]) : NULL;
	return 0;
}

static bool variant_eq(const char *arch, const char *a, const char *b)
{
	/* arm64: no variant means v8. */
	if (strcmp(arch, "arm64") == 0) {
		a = a && *a ? a : "v8";
		b = b && *b ? b : "v8";
	}
	if (!a || !*a || !b || !*b)
		return !(a && *a) || !(b && *b); /* an unspecified side matches */
	return strcmp(a, b) == 0;
}

static int choose_platform(struct puller *p, const char *body, size_t len,
                           const struct platform *want, char **digest, struct err *err)
{
	struct oci_index idx;
	_cleanup_sb_ struct strbuf have = STRBUF_INIT;
	int found = -1;

	if (oci_parse_index(body, len, "index", &idx, err) < 0)
		return err_wrap(err, "%s", p->ref.canonical);
	for (size_t i = 0; i < idx.n; i++) {
		const struct oci_descriptor *d = &idx.manifests[i];

		if (d->attestation || (d->os && strcmp(d->os, "unknown") == 0) ||
		    (d->arch && strcmp(d->arch, "unknown") == 0))
			continue;
		if (d->media_type && strcmp(d->media_type, OCI_MEDIA_MANIFEST) != 0 &&
		    strcmp(d->media_type, DOCKER_MEDIA_MANIFEST) != 0 &&
		    strcmp(d->media_type, OCI_MEDIA_INDEX) != 0 &&
		    strcmp(d->media_type, DOCKER_MEDIA_LIST) != 0)
			continue;
		sb_addf(&have, "%s%s/%s%s%s", have.len ? ", " : "", d->os ? d->os : "?",
		        d->arch ? d->arch : "?", d->variant ? "/" : "",
		        d->variant ? d->variant : "");
		if (found < 0 && d->os && d->arch && strcmp(d->os, want->os) == 0 &&
		    strcmp(d->arch, want->arch) == 0 &&
		    variant_eq(want->arch, want->variant, d->variant))
			found = (int)i;
	}
	if (found < 0) {
		err_set(err, ENOENT, "%s: no matching manifest for %s/%s%s%s (have: %s)",
		        p->ref.canonical, want->os, want->arch, want->variant ? "/" : "",
		        want->variant ? want->variant : "", have.len ? sb_str(&have) : "nothing");
		oci_index_release(&idx);
		return -1;
	}
	*digest = xstrdup(idx.manifests[found].digest);
	oci_index_release(&idx);
	return 0;
}

/* ---- blobs ---- */

static int fetch_small_blob(struct puller *p, const char *digest, int64_t size, struct strbuf *out,
                            struct err *err)
{
	_cleanup_free_ char *target = xasprintf("/v2/%s/blobs/%s", p->ep->repository, digest);
	char hex[SHA256_HEX_LEN + 1];
	struct http_get g;
	int rc;

	if (size < 0 || size > STORE_MAX_CONFIG)
		return err_set(err, EFBIG, "%s: config %s is too large (%" PRId64 " bytes)",
		               p->ref.canonical, digest, size);
	if (reg_get(p, target, false, PULL_TIMEOUT, &g, err) < 0)
		return -1;
	if (g.resp.status != 200) {
		_cleanup_free_ char *what = xasprintf("blob %s", digest);

		status_error(p, &g, what, err);
		http_get_close(&g);
		return -1;
	}
	rc = http_read_body(&g.resp, out, (size_t)size, g.deadline, err);
	http_get_close(&g);
	if (rc < 0)
		return err_wrap(err, "%s %s: blob %s", p->ep->host, p->ep->repository, digest);
	sha256_hex(out->buf ? out->buf : "", out->len, hex);
	if ((int64_t)out->len != size || strcmp(oci_digest_hex(digest), hex) != 0)
		return err_set(err, EINVAL,
		               "%s %s: blob %s: digest mismatch (got sha256:%s, %zu bytes)",
		               p->ep->host, p->ep->repository, digest, hex, out->len);
	return 0;
}

/* The config blob when the store has it already (an image pulled before):
 * read and checked again, else -1 (fetch it). */
static int config_from_store(struct store *s, const char *digest, struct strbuf *out)
{
	_cleanup_free_ char *path = NULL, *data = NULL;
	char hex[SHA256_HEX_LEN + 1];
	size_t len = 0;
	struct err ignored = {0};

	if (!oci_digest_valid(digest))
		return -1;
	path = xasprintf("%s/blobs/sha256/%s", store_root(s), oci_digest_hex(digest));
	if (read_file(path, STORE_MAX_CONFIG, &data, &len, &ignored) < 0)
		return -1;
	sha256_hex(data, len, hex);
	if (strcmp(hex, oci_digest_hex(digest)) != 0)
		return -1;
	sb_add(out, data, len);
	return 0;
}

/* A layer's download thread: the body into a pipe, at most size bytes. */
struct feeder {
	struct puller *p;
	const char *digest;
	int64_t size;
	int fd;
	struct err err;
	int rc;
	bool write_failed; /* the unpacker stopped reading: its error explains */
	uint64_t got;
};

static void *feed_layer(void *arg)
{
	struct feeder *f = arg;
	_cleanup_free_ char *target = xasprintf("/v2/%s/blobs/%s", f->p->ep->repository, f->digest);
	struct http_get g;

	f->rc = -1;
	if (reg_get(f->p, target, false, PULL_BLOB_TIMEOUT, &g, &f->err) < 0)
		goto out;
	if (g.resp.status != 200) {
		_cleanup_free_ char *what = xasprintf("blob %s", f->digest);

		status_error(f->p, &g, what, &f->err);
		goto close;
	}
	for (;;) {
		const uint8_t *data;
		ssize_t n = http_body_next(&g.resp, &data, 1 << 20, g.deadline, &f->err);

		if (n < 0) {
			err_wrap(&f->err, "%s %s: blob %s", f->p->ep->host, f->p->ep->repository,
			         f->digest);
			goto close;
		}
		if (n == 0)
			break;
		if (f->got + (uint64_t)n > (uint64_t)f->size) {
			err_set(&f->err, EFBIG,
			        "blob %s is larger than the manifest's %" PRId64 " bytes",
			        f->digest, f->size);
			goto close;
		}
		f->got += (uint64_t)n;
		if (write_all(f->fd, data, (size_t)n) < 0) {
			f->write_failed = true;
			err_sys(&f->err, "blob %s: write to the unpacker", f->digest);
			goto close;
		}
	}
	if (f->got != (uint64_t)f->size) {
		err_set(&f->err, EIO,
		        "blob %s: %" PRIu64 " bytes received, the manifest says %" PRId64,
		        f->digest, f->got, f->size);
		goto close;
	}
	f->rc = 0;
close:
	http_get_close(&g);
out:
	close(f->fd);
	f->fd = -1;
	return NULL;
}

/* Download and unpack one layer in this process: a download thread feeds
 * store_unpack_layer through a pipe. */
static int stream_layer(struct puller *p, struct store *s, struct store_job *j,
                        const struct oci_descriptor *d, const char *diff_id, const int *lowers,
                        size_t n_lowers, struct prepared_layer *pl, const char *label,
                        struct err *err)
{
	struct feeder f = {.p = p, .digest = d->digest, .size = d->size};
	struct layer_src src = {.label = label,
	                        .length = DECOMPRESS_STREAM,
	                        .check_compression = true,
	                        .digest = d->digest,
	                        .diff_id = diff_id};
	pthread_t th;
	int pfd[2];
	int rc;

	if (oci_layer_compression(d->media_type, &src.compression, err) < 0)
		return err_wrap(err, "%s", label);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_sys(err, "pipe");
	f.fd = pfd[1];
	src.fd = pfd[0];
	if (pthread_create(&th, NULL, feed_layer, &f) != 0) {
		close(pfd[0]);
		close(pfd[1]);
		return err_set(err, EAGAIN, "cannot start a download thread");
	}
	rc = store_unpack_layer(s, j, &src, lowers, n_lowers, pl, err);
	close(pfd[0]); /* a feeder still writing gets EPIPE */
	pthread_join(th, NULL);
	if (f.rc < 0 && !(rc < 0 && f.write_failed)) {
		/* The download's own failure explains the unpacker's. */
		if (rc == 0)
			prepared_layer_release(pl);
		*err = f.err;
		return err_wrap(err, "%s", label);
	}
	return rc;
}

/* ---- pulling ---- */

/* A layer unpacked without the layers below it (a worker) failed on a hardlink
 * to a file of a lower layer: it is unpacked again once those are. */
static bool needs_lower_layers(const struct err *e)
{
	return e->code == ENOENT && strstr(e->msg, "hardlink target") &&
	       strstr(e->msg, "is not in the archive");
}

/* Unpack layer i in this process with the layers below it (fetched by this pull
 * or in the store) as lowers, topmost first. */
static int stream_layer_on_lowers(struct puller *p, struct store *s, struct store_job *j,
                                  const struct oci_manifest *m, const struct image_config *cfg,
                                  struct prepared_layer *layers, size_t i, struct err *err)
{
	_cleanup_free_ char *label =
	    xasprintf("layer %zu/%zu (%s)", i + 1, m->n_layers, m->layers[i].digest);
	int *lowers = xcalloc(i + 1, sizeof(int));
	int rc = -1;

	for (size_t k = 0; k < i; k++)
		lowers[k] = -1;
	for (size_t k = 0; k < i; k++) {
		_cleanup_free_ char *diff = store_layer_diff_path(s, &layers[i - 1 - k]);

		lowers[k] = open(diff, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (lowers[k] < 0) {
			err_sys(err, "open %s", diff);
			goto out;
		}
	}
	j->n_layers = 1000 + (unsigned)i;
	rc = stream_layer(p, s, j, &m->layers[i], cfg->diff_ids[i], lowers, i, &layers[i], label,
	                  err);
out:
	for (size_t k = 0; k < i; k++)
		if (lowers[k] >= 0)
			close(lowers[k]);
	free(lowers);
	return rc;
}

struct layer_task {
	size_t index;
	pid_t pid;
	int result_fd;
	bool done, ok;
	struct err err;
};

/* A worker's report: "OK <diff_id> <digest> <size>" or "ERR <code> <msg>". */
static void worker_main(struct puller *p, struct store *s, struct store_job *j,
                        const struct oci_descriptor *d, const char *diff_id, size_t index, size_t n,
                        int out_fd)
{
	struct prepared_layer pl = {0};
	struct err err = {0};
	_cleanup_free_ char *label = xasprintf("layer %zu/%zu (%s)", index + 1, n, d->digest);
	_cleanup_sb_ struct strbuf msg = STRBUF_INIT;

	signal(SIGPIPE, SIG_IGN);
	p->use_pool = false; /* the parent's pooled connections are not this process's */
	j->n_layers = 1000 + (unsigned)index;
	if (stream_layer(p, s, j, d, diff_id, NULL, 0, &pl, label, &err) < 0)
		sb_addf(&msg, "ERR %d %s", err.code, err.msg);
	else
		sb_addf(&msg, "OK %s %s %" PRIu64, pl.diff_id, pl.digest, pl.size);
	write_all(out_fd, msg.buf, msg.len);
	_exit(0);
}

static int pull_image_manifest(struct puller *p, struct store *s, const char *manifest,
                               size_t manifest_len, const char *manifest_digest, char **out_ref,
                               struct err *err)
{
	struct oci_manifest m;
	struct image_config cfg = {0};
	_cleanup_sb_ struct strbuf config = STRBUF_INIT;
	struct store_job job = {.lockfd = -1};
	struct prepared_layer *layers = NULL;
	struct layer_task *tasks = NULL;
	bool *again = NULL; /* layers to unpack again on their lowers */
	char **chains = NULL;
	_cleanup_free_ char *norm = NULL, *source = NULL;
	char *refs[2] = {NULL, NULL};
	unsigned jobs = p->o->jobs;
	size_t fetched = 0, running = 0, next = 0, i;
	uint64_t bytes = 0;
	double t0 = mono_now();
	bool failed = false;
	int ret = -1;

	if (oci_parse_manifest(manifest, manifest_len, "manifest", &m, err) < 0)
		return err_wrap(err, "%s", p->ref.canonical);
	if (m.config.media_type && strcmp(m.config.media_type, OCI_MEDIA_CONFIG) != 0 &&
	    strcmp(m.config.media_type, "application/vnd.docker.container.image.v1+json") != 0) {
		err_set(err, ENOTSUP, "%s is an OCI artifact (%s), not an image", p->ref.canonical,
		        m.config.media_type);
		goto out_m;
	}
	if (config_from_store(s, m.config.digest, &config) < 0 &&
	    fetch_small_blob(p, m.config.digest, m.config.size, &config, err) < 0)
		goto out_m;
	if (image_config_parse(config.buf, config.len, "config", &cfg, err) < 0)
		goto out_m;
	if (cfg.n_diff_ids != m.n_layers) {
		err_set(err, EINVAL,
		        "%s: the config lists %zu diff IDs but the manifest has %zu layers",
		        p->ref.canonical, cfg.n_diff_ids, m.n_layers);
		goto out_m;
	}
	if (!jobs) {
		const char *e = getenv("ROLLOUT_PULL_JOBS");

		jobs = e && atoi(e) > 0 ? (unsigned)atoi(e) : 4;
	}
	chains = xcalloc(m.n_layers + 1, sizeof(char *));
	oci_chain_ids(cfg.diff_ids, m.n_layers, chains);
	layers = xcalloc(m.n_layers + 1, sizeof(*layers));
	tasks = xcalloc(m.n_layers + 1, sizeof(*tasks));
	again = xcalloc(m.n_layers + 1, sizeof(*again));
	if (store_job_create(s, &job, err) < 0)
		goto out;
	for (i = 0; i < m.n_layers; i++) {
		layers[i].chain_id = xstrdup(chains[i]);
		layers[i].diff_id = xstrdup(cfg.diff_ids[i]);
		layers[i].digest = xstrdup(m.layers[i].digest);
		layers[i].media_type =
		    m.layers[i].media_type ? xstrdup(m.layers[i].media_type) : NULL;
		tasks[i].index = i;
		tasks[i].result_fd = -1;
		tasks[i].done = store_layer_exists(s, chains[i]);
		tasks[i].ok = tasks[i].done;
		if (!tasks[i].done) {
			enum compression c;

			if (oci_layer_compression(m.layers[i].media_type, &c, err) < 0) {
				err_wrap(err, "%s: layer %zu", p->ref.canonical, i + 1);
				goto out;
			}
		}
	}
	if (p->use_pool) /* no pooled connection may be shared with a worker */
		http_pool_release(&p->pool);
	/* Run the workers: at most `jobs` at a time. */
	for (;;) {
		int status;
		pid_t pid;

		while (running < jobs && next < m.n_layers) {
			struct layer_task *t = &tasks[next];
			int rfd[2];

			next++;
			if (t->done)
				continue;
			if (pipe2(rfd, O_CLOEXEC) < 0) {
				err_sys(err, "pipe");
				goto reap;
			}
			fflush(NULL);
			t->pid = fork();
			if (t->pid < 0) {
				err_sys(err, "fork");
				close(rfd[0]);
				close(rfd[1]);
				goto reap;
			}
			if (t->pid == 0) {
				close(rfd[0]);
				worker_main(p, s, &job, &m.layers[t->index], cfg.diff_ids[t->index],
				            t->index, m.n_layers, rfd[1]);
			}
			close(rfd[1]);
			t->result_fd = rfd[0];
			running++;
		}
		if (running == 0)
			break;
		pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			err_sys(err, "waitpid");
			goto reap;
		}
		for (i = 0; i < m.n_layers; i++) {
			struct layer_task *t = &tasks[i];
			_cleanup_free_ char *msg = NULL;
			size_t len = 0;
			struct err rerr = {0};

			if (t->pid != pid)
				continue;
			running--;
			t->pid = 0;
			t->done = true;
			if (read_fd(t->result_fd, "worker", 1 << 16, &msg, &len, &rerr) < 0 ||
			    !msg || len == 0) {
				err_set(&t->err, EIO, "layer %zu: the worker died (status %d)",
				        i + 1, status);
			} else if (str_starts_with(msg, "OK ")) {
				char d1[80], d2[80];
				uint64_t size;

				if (sscanf(msg, "OK %79s %79s %" SCNu64, d1, d2, &size) == 3) {
					layers[i].dir = xasprintf("%s/L%zu", job.dir, 1000 + i);
					layers[i].size = size;
					t->ok = true;
					fetched++;
					bytes += (uint64_t)m.layers[i].size;
					if (p->o->progress_layers && !p->o->quiet)
						fprintf(stderr, "%s: layer %zu/%zu %.19s pulled\n",
						        p->ref.canonical, i + 1, m.n_layers,
						        m.layers[i].digest);
				}
			} else {
				int code = 0, off = 0;

				if (sscanf(msg, "ERR %d %n", &code, &off) >= 1 && off > 0)
					err_set(&t->err, code, "%s", msg + off);
				else
					err_set(&t->err, EIO, "layer %zu: %s", i + 1, msg);
				if (i > 0 && needs_lower_layers(&t->err)) {
					log_debug("%s: %s; unpacked again on the layers below",
					          p->ref.canonical, t->err.msg);
					again[i] = true;
					t->ok = true;
				}
			}
			close(t->result_fd);
			t->result_fd = -1;
			if (!t->ok && !failed) {
				failed = true;
				*err = t->err;
				next = m.n_layers; /* start no more */
			}
		}
	}
	if (failed)
		goto out;
	for (i = 0; i < m.n_layers; i++) {
		if (!again[i])
			continue;
		if (stream_layer_on_lowers(p, s, &job, &m, &cfg, layers, i, err) < 0)
			goto out;
		fetched++;
		bytes += (uint64_t)m.layers[i].size;
	}
	if (cancel_requested()) {
		err_set(err, ECANCELED, "cancelled");
		goto out;
	}
	norm = store_normalize_ref(p->ref.canonical, err);
	if (!norm)
		goto out;
	refs[0] = norm;
	source = xasprintf("pull %s (%s)", p->ref.canonical, manifest_digest);
	{
		struct store_commit c = {.config = config.buf,
		                         .config_len = config.len,
		                         .manifest = manifest,
		                         .manifest_len = manifest_len,
		                         .layers = layers,
		                         .n_layers = m.n_layers,
		                         .refs = refs,
		                         .source = source};
		_cleanup_free_ char *id = NULL;

		if (store_commit_image(s, &c, &id, err) < 0)
			goto out;
	}
	if (!p->o->quiet)
		fprintf(stderr,
		        "Pulled %s: %zu layers, %zu fetched (%" PRIu64
		        " bytes), %zu present, %.1f s%s%s\n",
		        p->ref.canonical, m.n_layers, fetched, bytes, m.n_layers - fetched,
		        mono_now() - t0, p->ep->mirror ? ", from mirror " : "",
		        p->ep->mirror ? p->ep->url : "");
	if (out_ref)
		*out_ref = steal_ptr(&norm);
	ret = 0;
	goto out;
reap:
	for (i = 0; i < m.n_layers; i++)
		if (tasks[i].pid > 0) {
			kill(tasks[i].pid, SIGTERM);
			waitpid(tasks[i].pid, NULL, 0);
		}
out:
	for (i = 0; tasks && i < m.n_layers; i++)
		if (tasks[i].result_fd >= 0)
			close(tasks[i].result_fd);
	for (i = 0; layers && i < m.n_layers; i++)
		prepared_layer_release(&layers[i]);
	free(layers);
	free(tasks);
	free(again);
	strv_free(chains);
	if (job.dir)
		store_job_destroy(s, &job);
out_m:
	image_config_release(&cfg);
	oci_manifest_release(&m);
	return ret;
}

/* Pull through the endpoint in p->ep. */
static int pull_from(struct puller *p, struct store *s, const struct platform *want, char **out_ref,
                     struct err *err)
{
	_cleanup_sb_ struct strbuf body = STRBUF_INIT;
	_cleanup_free_ char *digest = NULL;
	enum doc_kind kind;

	/* The API version check; a 401 here is the registry's challenge, which the
	 * manifest request answers through authorize(). */
	{
		struct http_get g;

		if (reg_get(p, "/v2/", false, PULL_TIMEOUT, &g, err) < 0)
			return -1;
		if (g.resp.status != 200 && g.resp.status != 401) {
			status_error(p, &g, "/v2/", err);
			http_get_close(&g);
			return err_wrap(err, "not a registry (distribution API v2)");
		}
		http_discard_body(&g.resp, g.deadline, err);
		err_clear(err);
		http_get_close(&g);
	}
	if (fetch_manifest(p, p->ref.digest ? p->ref.digest : p->ref.tag, p->ref.digest, &body,
	                   &kind, &digest, err) < 0)
		return -1;
	for (int depth = 0; kind == DOC_INDEX; depth++) {
		_cleanup_free_ char *chosen = NULL;

		if (depth >= PULL_MAX_DEPTH)
			return err_set(err, ELOOP, "%s: indexes nested too deep", p->ref.canonical);
		if (choose_platform(p, body.buf, body.len, want, &chosen, err) < 0)
			return -1;
		sb_reset(&body);
		free(digest);
		digest = NULL;
		if (fetch_manifest(p, chosen, chosen, &body, &kind, &digest, err) < 0)
			return -1;
	}
	return pull_image_manifest(p, s, body.buf, body.len, digest, out_ref, err);
}

/* Whether a failed pull from p->ep goes on with the next endpoint: after any
 * failure of a mirror (as docker), and from an insecure registry's https to
 * its http when https gave no HTTP answer. */
static bool try_next(const struct puller *p, const struct err *err)
{
	if (err->code == ECANCELED || cancel_requested())
		return false;
	return p->ep->mirror || !p->reached;
}

int image_pull_ref(struct store *s, const char *refstr, const struct pull_opts *o, char **out_ref,
                   struct err *err)
{
	static const struct pull_opts none = {0};
	struct puller p = {.o = o ? o : &none, .use_pool = true};
	struct regconf_endpoints eps = {0};
	struct platform want = {0};
	int ret = -1;

	if (pull_ref_parse(refstr, &p.ref, err) < 0)
		return -1;
	if (platform_parse(p.o->platform, &want, err) < 0)
		goto out;
	if (regconf_endpoints_extra(p.ref.domain, p.ref.path, p.o->insecure, &eps, err) < 0)
		goto out;
	if (store_lock(s, STORE_LOCK_SHARED, err) < 0)
		goto out;
	for (size_t i = 0; i < eps.n; i++) {
		p.ep = &eps.v[i];
		p.fallback = i + 1 < eps.n;
		p.reached = false;
		free(p.scope);
		p.scope = xasprintf("repository:%s:pull", p.ep->repository);
		free(p.authorization);
		p.authorization = NULL;
		http_pool_release(&p.pool);
		err_clear(err);
		ret = pull_from(&p, s, &want, out_ref, err);
		if (ret == 0 || !p.fallback || !try_next(&p, err))
			break;
		if (p.ep->mirror && !p.o->quiet)
			log_warn("mirror %s: %s; trying %s", p.ep->url, err->msg, eps.v[i + 1].url);
		else
			log_debug("%s: %s; trying %s", p.ep->url, err->msg, eps.v[i + 1].url);
	}
	store_unlock(s);
out:
	http_pool_release(&p.pool);
	regconf_endpoints_release(&eps);
	platform_release(&want);
	pull_ref_release(&p.ref);
	free(p.scope);
	free(p.authorization);
	return ret;
}
