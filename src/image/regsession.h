/* One process's registry authentication (image/regsession.c): the glue between
 * the pull client's 401 seam (pull_opts.authorize) and the credential and
 * token modules. Credentials are looked up once per registry
 * (image/regcreds.h); tokens are cached across registries and scopes
 * (image/regauth.h). */
#ifndef ROLLOUT_IMAGE_REGSESSION_H
#define ROLLOUT_IMAGE_REGSESSION_H

struct err;
struct strbuf;

struct regsession;

struct regsession *regsession_new(void);
void regsession_free(struct regsession *s);

/* pull_authorize_fn (image/pull.h): ctx is a struct regsession; registry the
 * host[:port] the client talks to (registry-1.docker.io for Hub). Finds the
 * registry's credentials (none: anonymous), then regauth_authorize(). */
int regsession_authorize(void *ctx, const char *registry, const char *challenge, const char *scope,
                         struct strbuf *header, struct err *err);

#endif
