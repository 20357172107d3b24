/* Registry authentication (image/regauth.c): WWW-Authenticate challenges, the
 * Bearer token flow with a per-(registry, service, scope) cache, Basic headers,
 * what a 401/403/404/429 tells the user, and Retry-After.
 *
 * The seam with the pull/push client: on a 401 the client calls
 *
 *     regauth_authorize(&ctx, www_authenticate, scope, &value, err)
 *
 * (its signature fits `int (*authorize)(void *ctx, const char *www_authenticate,
 * const char *scope, struct strbuf *header, struct err *err)`), puts `value`
 * ("Bearer ..." or "Basic ...") into the Authorization header of the same
 * request, and retries once; a second 401 is an error made by
 * regauth_status_error(). Before the first request of a scope the client may
 * ask regauth_cached() for a token it already holds (no round trip). */
#ifndef ROLLOUT_IMAGE_REGAUTH_H
#define ROLLOUT_IMAGE_REGAUTH_H

#include <stdbool.h>
#include <stddef.h>

struct err;
struct strbuf;
struct tls_config;

#define REGAUTH_MAX_HEADER (16 * 1024) /* a longer WWW-Authenticate is refused */
#define REGAUTH_MAX_CHALLENGES 8
#define REGAUTH_MAX_TOKEN_BODY (1u << 20)

/* ---- challenges ------------------------------------------------------------------- */

enum regauth_scheme { REGAUTH_OTHER, REGAUTH_BASIC, REGAUTH_BEARER };

struct regauth_challenge {
	enum regauth_scheme scheme;
	char *realm;   /* NULL when absent */
	char *service; /* Bearer */
	char *scope;   /* Bearer; space-separated scopes as sent */
	char *error;   /* Bearer: "insufficient_scope", "invalid_token" */
};

/* Parse a WWW-Authenticate value per RFC 7235: schemes case-insensitive,
 * token or quoted-string parameters (backslash escapes; commas and spaces inside
 * quotes), several challenges in one value. Unknown schemes are kept as
 * REGAUTH_OTHER; unknown parameters are skipped. At most max challenges; n is
 * set to how many. EINVAL on malformed input, EFBIG over REGAUTH_MAX_HEADER. */
int regauth_parse_challenges(const char *value, struct regauth_challenge *out, size_t max,
                             size_t *n, struct err *err);
/* The challenge to answer in value: Bearer first, then Basic. ENOTSUP when
 * neither is offered. */
int regauth_pick_challenge(const char *value, struct regauth_challenge *ch, struct err *err);
void regauth_challenge_release(struct regauth_challenge *ch);

/* ---- credentials --------------------------------------------------------------------- */

/* What a credential source knows for a registry (image/regcreds.c finds them). */
struct regauth_creds {
	char *username;
	char *password;
	char *identity_token; /* OAuth2 refresh token (docker login to ACR, Docker SSO) */
	char *registry_token; /* sent as is: "Bearer <it>" */
};
void regauth_creds_release(struct regauth_creds *c);
bool regauth_creds_empty(const struct regauth_creds *c);

/* "Basic base64(user:pass)". */
char *regauth_basic_value(const char *user, const char *pass);
/* Standard base64 (with padding). */
char *regauth_base64_encode(const void *data, size_t len);
/* Standard or URL-safe base64, padding optional; NULL on bad input. The result
 * is NUL-terminated (len excludes it). */
char *regauth_base64_decode(const char *in, size_t *len);

/* ---- the token flow ------------------------------------------------------------------ */

/* Tokens already obtained, by (registry, service, scope). Owned by the caller;
 * shared by every context of a process that talks to the same registries. */
struct regauth_cache;
struct regauth_cache *regauth_cache_new(void);
void regauth_cache_free(struct regauth_cache *c);

struct regauth_ctx {
	const char *registry; /* host[:port] as in the reference ("docker.io" for Hub) */
	const struct regauth_creds *creds; /* NULL or empty: anonymous */
	struct regauth_cache *cache;       /* NULL: no caching */
	struct tls_config *tls;            /* for an https realm; NULL: system CAs */
	/* The registry is configured insecure: a plain-http realm and Basic
	 * credentials over plain http are allowed. Otherwise the realm must be https
	 * unless it is a loopback address. */
	bool insecure;
	double timeout; /* per token request; 0: 30 s */
	/* out: the last token's lifetime (tests) */
	double last_expires_in;
};

/* Answer a 401: from the challenge in www_authenticate (as received) make the
 * Authorization value for scope ("repository:NAME:pull"; the challenge's own
 * scope wins when it names one). Bearer: a token from the realm (GET
 * realm?service=&scope= with Basic credentials when known, anonymous otherwise;
 * POST grant_type=refresh_token with an identity token; `token` or
 * `access_token` in the JSON answer; `expires_in` honoured, 60 s at least),
 * cached. Basic: the credentials, or EACCES "run `rollout login HOST`" without
 * them. Errors name the registry. */
int regauth_authorize(void *ctx, const char *www_authenticate, const char *scope,
                      struct strbuf *header, struct err *err);
/* A cached token for scope still valid for 30 s more, as an Authorization
 * value; false when there is none. */
bool regauth_cached(struct regauth_ctx *ctx, const char *scope, struct strbuf *header);
/* Forget the cached token of scope (it was refused). */
void regauth_forget(struct regauth_ctx *ctx, const char *scope);

/* ---- what errors say ---------------------------------------------------------------- */

/* An error for a registry answer (401, 403, 404, 429, others) naming the
 * registry, the repository and what to do; body (may be NULL) is the answer's
 * body, whose {"errors":[{"code","message"}]} is quoted (else its first 200
 * bytes). retry_after is the answer's Retry-After header (may be NULL). Returns
 * -1 with err->code EACCES (401, 403), ENOENT (404), EAGAIN (429), EIO. */
int regauth_status_error(int status, const char *registry, const char *repository, const char *body,
                         const char *retry_after, struct err *err);

/* Seconds a Retry-After value asks for: delta-seconds or an HTTP date (IMF-fixdate,
 * RFC 850, asctime) against now (wall clock, seconds since the epoch). -1 when
 * the value is neither; 0 for dates in the past. */
double regauth_retry_after(const char *value, double now);
/* How long to wait before try number attempt (1-based) after a 429 or a 5xx:
 * Retry-After when it is given (capped at 300 s), else 2 s doubling up to
 * 60 s. */
double regauth_backoff(int attempt, const char *retry_after);
/* Wait seconds, returning early with ECANCELED on cancellation. */
int regauth_wait(double seconds, struct err *err);

#endif
