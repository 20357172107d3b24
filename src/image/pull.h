/* `rollout image pull`: an image from a registry (distribution API v2) into the
 * store, over util/http.c (https through util/tls.c; plain http only for
 * registries marked insecure).
 *
 * Flow: the reference (Docker Hub defaults), GET /v2/, the manifest (Docker
 * schema2 or OCI; a manifest list or OCI index picks a platform), the config
 * (digest checked), then the layers not in the store (by chain ID): each one
 * fetched by a forked worker (at most `jobs` at a time) whose download thread
 * feeds the store's unpacker through a pipe, so that the blob is decompressed,
 * hashed (compressed digest and diff ID) and unpacked in one pass, never kept
 * as a file. Nothing is committed until every layer's both digests match; the
 * image record, the manifest and the config go in with the store's commit.
 *
 * Authentication is a seam: on a 401 the puller calls pull_opts.authorize (the
 * registry's WWW-Authenticate challenge and the scope it needs) and retries the
 * request once with the Authorization value it returns. NULL: anonymous only. */
#ifndef ROLLOUT_IMAGE_PULL_H
#define ROLLOUT_IMAGE_PULL_H

#include <stdbool.h>

struct err;
struct store;
struct strbuf;

/* A parsed image reference (distribution/reference rules). */
struct pull_ref {
	char *domain;    /* "docker.io", "127.0.0.1:5000", "localhost" */
	char *api_host;  /* host[:port] to talk to: docker.io -> registry-1.docker.io */
	char *path;      /* repository without the domain: "library/alpine" */
	char *tag;       /* NULL when only a digest is given */
	char *digest;    /* "sha256:..." or NULL */
	char *canonical; /* domain/path[:tag][@digest] */
};

int pull_ref_parse(const char *s, struct pull_ref *out, struct err *err);
void pull_ref_release(struct pull_ref *r);

/* Called on a 401: challenge is the WWW-Authenticate value (may be NULL), scope
 * "repository:<path>:pull". On success header holds the Authorization value
 * ("Bearer ..."/"Basic ...") to retry with, once. */
typedef int pull_authorize_fn(void *ctx, const char *registry, const char *challenge,
                              const char *scope, struct strbuf *header, struct err *err);

struct pull_opts {
	const char *platform; /* os/arch[/variant]; NULL = this host's */
	unsigned jobs;        /* layers fetched at a time (0 = ROLLOUT_PULL_JOBS or 4) */
	/* Registries (host[:port] or CIDR) marked insecure (https unverified, then
	 * plain http) besides those of image/regconf.h (daemon.json, loopback,
	 * registries.conf, ROLLOUT_INSECURE_REGISTRIES). NULL-terminated, may be NULL. */
	const char *const *insecure;
	pull_authorize_fn *authorize;
	void *authorize_ctx;
	bool progress_layers; /* one line per layer (a terminal), else one per image */
	bool quiet;           /* no progress at all */
};

/* Pull ref into the store; *out_ref gets the store reference it was tagged with
 * (may be NULL). Errors name the registry and the repository. */
int image_pull_ref(struct store *s, const char *ref, const struct pull_opts *o, char **out_ref,
                   struct err *err);

#endif
