/* Registry authentication: WWW-Authenticate challenges, Bearer tokens (cached per
 * registry, service and scope), Basic headers, error messages, Retry-After. */
#include "image/regauth.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/http.h"
#include "rollout/json.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"
#include "rollout/tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_TIMEOUT 30.0
#define MIN_EXPIRES 60.0
#define REFRESH_MARGIN 30.0
#define MAX_RETRY_AFTER 300.0

/* ---- challenges ------------------------------------------------------------------- */

static bool is_tchar(char c)
{
	return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* A token at p followed by optional spaces and '=' (an auth-param, not a new
 * scheme or a token68's padding). */
static bool at_param(const char *p)
{
	const char *q = p;

	while (is_tchar(*q))
		q++;
	if (q == p)
		return false;
	q = skip_ws(q);
	if (*q != '=')
		return false;
	q = skip_ws(q + 1);
	return *q && *q != ',' && *q != '=';
}

/* A token or a quoted-string at *pp into a new string. */
static int parse_value(const char **pp, char **out, struct err *err)
{
	const char *p = *pp;
	struct strbuf sb = STRBUF_INIT;

	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (!*p) {
				sb_release(&sb);
				return err_set(err, EINVAL, "unterminated quoted string");
			}
			if (*p == '\\' && p[1])
				p++;
			sb_addc(&sb, *p);
		}
		p++;
	} else { /* a token; URLs are accepted unquoted, as registries send them */
		const char *s = p;

		while (*p && !strchr(", \t\"", *p))
			p++;
		if (p == s)
			return err_set(err, EINVAL, "expected a value at '%.20s'", s);
		sb_add(&sb, s, p - s);
	}
	*out = sb_detach(&sb);
	*pp = p;
	return 0;
}

static void set_param(struct regauth_challenge *ch, const char *name, size_t n, char *v)
{
	char **slot = NULL;

	if (n == 5 && strncasecmp(name, "realm", 5) == 0)
		slot = &ch->realm;
	else if (n == 7 && strncasecmp(name, "service", 7) == 0)
		slot = &ch->service;
	else if (n == 5 && strncasecmp(name, "scope", 5) == 0)
		slot = &ch->scope;
	else if (n == 5 && strncasecmp(name, "error", 5) == 0)
		slot = &ch->error;
	if (slot && !*slot) {
		*slot = v;
		return;
	}
	free(v);
}

/* The parameters (or a token68) after a scheme, up to the next challenge. */
static int parse_params(const char **pp, struct regauth_challenge *ch, struct err *err)
{
	const char *p = skip_ws(*pp);

	if (*p && *p != ',' && !at_param(p)) { /* token68: skipped */
		while (*p && *p != ',' && *p != ' ')
			p++;
	}
	for (;;) {
		const char *name;
		size_t n;
		char *v = NULL;

		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (!at_param(p))
			break;
		name = p;
		while (is_tchar(*p))
			p++;
		n = p - name;
		p = skip_ws(skip_ws(p) + 1);
		if (parse_value(&p, &v, err) < 0)
			return -1;
		set_param(ch, name, n, v);
		p = skip_ws(p);
		if (*p && *p != ',')
			return err_set(err, EINVAL, "expected ',' at '%.20s'", p);
	}
	*pp = p;
	return 0;
}

void regauth_challenge_release(struct regauth_challenge *ch)
{
	free(ch->realm);
	free(ch->service);
	free(ch->scope);
	free(ch->error);
	memset(ch, 0, sizeof(*ch));
}

int regauth_parse_challenges(const char *value, struct regauth_challenge *out, size_t max,
                             size_t *n, struct err *err)
{
	const char *p = value;

	*n = 0;
	if (strlen(value) > REGAUTH_MAX_HEADER)
		return err_set(err, EFBIG, "WWW-Authenticate: longer than %d bytes",
		               REGAUTH_MAX_HEADER);
	for (;;) {
		struct regauth_challenge ch = {0};
		const char *s;

		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (!*p)
			return 0;
		s = p;
		while (is_tchar(*p))
			p++;
		if (p == s || (*p && *p != ' ' && *p != '\t' && *p != ','))
			goto bad;
		if (p - s == 6 && strncasecmp(s, "bearer", 6) == 0)
			ch.scheme = REGAUTH_BEARER;
		else if (p - s == 5 && strncasecmp(s, "basic", 5) == 0)
			ch.scheme = REGAUTH_BASIC;
		if (parse_params(&p, &ch, err) < 0) {
			regauth_challenge_release(&ch);
			goto fail;
		}
		if (*n >= max) {
			regauth_challenge_release(&ch);
			continue; /* parsed (for validity), not kept */
		}
		out[(*n)++] = ch;
	}
bad:
	err_set(err, EINVAL, "expected an authentication scheme at '%.20s'", p);
fail:
	while (*n)
		regauth_challenge_release(&out[--*n]);
	return err_wrap(err, "WWW-Authenticate");
}

int regauth_pick_challenge(const char *value, struct regauth_challenge *ch, struct err *err)
{
	struct regauth_challenge all[REGAUTH_MAX_CHALLENGES];
	size_t n, best = SIZE_MAX;

	memset(ch, 0, sizeof(*ch));
	if (regauth_parse_challenges(value, all, REGAUTH_MAX_CHALLENGES, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (all[i].scheme == REGAUTH_BEARER &&
		    (best == SIZE_MAX || all[best].scheme != REGAUTH_BEARER))
			best = i;
		else if (all[i].scheme == REGAUTH_BASIC && best == SIZE_MAX)
			best = i;
	}
	for (size_t i = 0; i < n; i++) {
		if (i == best)
			*ch = all[i];
		else
			regauth_challenge_release(&all[i]);
	}
	if (best == SIZE_MAX)
		return err_set(err, ENOTSUP,
		               "WWW-Authenticate: no Bearer or Basic challenge in '%.100s'", value);
	return 0;
}

/* ---- credentials and base64 ------------------------------------------------------------ */

void regauth_creds_release(struct regauth_creds *c)
{
	free(c->username);
	free(c->password);
	free(c->identity_token);
	free(c->registry_token);
	memset(c, 0, sizeof(*c));
}

bool regauth_creds_empty(const struct regauth_creds *c)
{
	return !c || (!c->username && !c->password && !c->identity_token && !c->registry_token);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *regauth_base64_encode(const void *data, size_t len)
{
	const unsigned char *d = data;
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v =
		    d[i] << 16 | (i + 1 < len ? d[i + 1] << 8 : 0) | (i + 2 < len ? d[i + 2] : 0);

		sb_addc(&sb, b64[v >> 18 & 63]);
		sb_addc(&sb, b64[v >> 12 & 63]);
		sb_addc(&sb, i + 1 < len ? b64[v >> 6 & 63] : '=');
		sb_addc(&sb, i + 2 < len ? b64[v & 63] : '=');
	}
	return sb_detach(&sb);
}

static int b64_value(char c)
{
	const char *p;

	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	p = c ? strchr(b64, c) : NULL;
	return p ? (int)(p - b64) : -1;
}

char *regauth_base64_decode(const char *in, size_t *len)
{
	struct strbuf sb = STRBUF_INIT;
	unsigned acc = 0;
	int bits = 0;
	const char *p = in;

	for (; *p && *p != '='; p++) {
		int v = b64_value(*p);

		if (v < 0)
			goto bad;
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			sb_addc(&sb, (char)(acc >> bits & 0xff));
		}
	}
	while (*p == '=')
		p++;
	if (*p || bits >= 6)
		goto bad;
	*len = sb.len;
	return sb_detach(&sb);
bad:
	sb_release(&sb);
	return NULL;
}

char *regauth_basic_value(const char *user, const char *pass)
{
	_cleanup_free_ char *up = xasprintf("%s:%s", user ? user : "", pass ? pass : "");
	_cleanup_free_ char *enc = regauth_base64_encode(up, strlen(up));

	return xasprintf("Basic %s", enc);
}

/* ---- the token cache ------------------------------------------------------------------ */

struct cached_token {
	char *key; /* "registry\nservice\nscope" */
	char *value;
	double expires; /* mono_now() */
};

struct regauth_cache {
	struct cached_token *v;
	size_t n;
};

struct regauth_cache *regauth_cache_new(void)
{
	return xcalloc(1, sizeof(struct regauth_cache));
}

void regauth_cache_free(struct regauth_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].key);
		free(c->v[i].value);
	}
	free(c->v);
	free(c);
}

static struct cached_token *cache_find(struct regauth_cache *c, const char *key)
{
	for (size_t i = 0; c && i < c->n; i++)
		if (strcmp(c->v[i].key, key) == 0)
			return &c->v[i];
	return NULL;
}

static void cache_put(struct regauth_cache *c, const char *key, const char *value, double expires)
{
	struct cached_token *t;

	if (!c)
		return;
	t = cache_find(c, key);
	if (!t) {
		c->v = xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
		t = &c->v[c->n++];
		t->key = xstrdup(key);
	} else {
		free(t->value);
	}
	t->value = xstrdup(value);
	t->expires = expires;
}

/* The service is not known before a challenge: the cache key uses "*" then,
 * and regauth_authorize stores under both. */
static char *cache_key(const struct regauth_ctx *ctx, const char *service, const char *scope)
{
	return xasprintf("%s\n%s\n%s", ctx->registry ? ctx->registry : "", service ? service : "*",
	                 scope ? scope : "");
}

bool regauth_cached(struct regauth_ctx *ctx, const char *scope, struct strbuf *header)
{
	_cleanup_free_ char *key = cache_key(ctx, NULL, scope);
	struct cached_token *t = cache_find(ctx->cache, key);

	if (!t || t->expires - mono_now() < REFRESH_MARGIN)
		return false;
	sb_reset(header);
	sb_adds(header, t->value);
	return true;
}

void regauth_forget(struct regauth_ctx *ctx, const char *scope)
{
	_cleanup_free_ char *key = cache_key(ctx, NULL, scope);
	struct cached_token *t = cache_find(ctx->cache, key);

	if (t)
		t->expires = 0;
}

/* ---- the token request ---------------------------------------------------------------- */

static bool host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static int check_realm(const struct regauth_ctx *ctx, const char *realm, struct err *err)
{
	struct http_url u;
	bool ok;

	if (http_url_parse(realm, str_starts_with(realm, "https:") ? "443" : "80", &u, err) < 0)
		return err_wrap(err, "%s: token realm '%s'", ctx->registry, realm);
	ok = strcmp(u.scheme, "https") == 0 ||
	     (strcmp(u.scheme, "http") == 0 && (ctx->insecure || host_is_loopback(u.host)));
	http_url_release(&u);
	if (!ok)
		return err_set(err, EPERM,
		               "%s: the token realm %s is not https (mark the registry "
		               "insecure to allow it)",
		               ctx->registry, realm);
	return 0;
}

static void add_query(struct strbuf *url, const char *name, const char *value)
{
	_cleanup_free_ char *v = http_query_escape(value);

	sb_addc(url, strchr(url->buf, '?') ? '&' : '?');
	sb_addf(url, "%s=%s", name, v);
}

/* realm?service=S&scope=A&scope=B (each space-separated scope repeated). */
static char *token_url(const char *realm, const char *service, const char *scope)
{
	struct strbuf url = STRBUF_INIT;

	sb_adds(&url, realm);
	if (service && *service)
		add_query(&url, "service", service);
	for (const char *p = scope ? scope : ""; *p;) {
		size_t n = strcspn(p, " ");

		if (n) {
			_cleanup_free_ char *one = xstrndup(p, n);

			add_query(&url, "scope", one);
		}
		p += n;
		p += strspn(p, " ");
	}
	return sb_detach(&url);
}

/* POST grant_type=refresh_token to realm (identity tokens). */
static int token_post(const struct regauth_ctx *ctx, const char *realm, const char *service,
                      const char *scope, struct strbuf *body, int *status, struct err *err)
{
	struct http_url u;
	struct http_endpoint ep;
	struct http_response r = {0};
	_cleanup_http_conn_ struct http_conn *c = NULL;
	struct strbuf form = STRBUF_INIT;
	double deadline = mono_now() + (ctx->timeout > 0 ? ctx->timeout : DEFAULT_TIMEOUT);
	int rc = -1;

	if (http_url_parse(realm, str_starts_with(realm, "https:") ? "443" : "80", &u, err) < 0)
		return -1;
	http_endpoint_from_url(&u, &ep);
	if (ep.tls && ctx->tls)
		ep.tls_config = tls_config_ref(ctx->tls);
	sb_adds(&form, "grant_type=refresh_token&client_id=rollout");
	{
		_cleanup_free_ char *rt = http_query_escape(ctx->creds->identity_token);
		_cleanup_free_ char *sv = http_query_escape(service ? service : "");
		_cleanup_free_ char *sc = http_query_escape(scope ? scope : "");

		sb_addf(&form, "&refresh_token=%s&service=%s&scope=%s", rt, sv, sc);
	}
	{
		struct http_request req = {.method = "POST",
		                           .target = u.target,
		                           .host = u.authority,
		                           .content_type = "application/x-www-form-urlencoded",
		                           .body = form.buf,
		                           .body_len = form.len};

		if (http_connect(&ep, deadline, &c, err) < 0 ||
		    http_send_request(c, &req, deadline, err) < 0 ||
		    http_read_response(c, &r, false, deadline, err) < 0)
			goto out;
		*status = r.status;
		rc = http_read_body(&r, body, REGAUTH_MAX_TOKEN_BODY, deadline, err);
	}
out:
	http_response_release(&r);
	sb_release(&form);
	http_endpoint_free(&ep);
	http_url_release(&u);
	return rc;
}

static int token_get(const struct regauth_ctx *ctx, const char *url, struct strbuf *body,
                     int *status, struct err *err)
{
	_cleanup_free_ char *basic = NULL;
	struct http_get g = {.url = url,
	                     .timeout = ctx->timeout > 0 ? ctx->timeout : DEFAULT_TIMEOUT,
	                     .redirects = {.max = 5},
	                     .tls = ctx->tls};
	int rc;

	if (ctx->creds && (ctx->creds->username || ctx->creds->password)) {
		basic = regauth_basic_value(ctx->creds->username, ctx->creds->password);
		g.authorization = basic;
	}
	if (http_get_open(&g, err) < 0)
		return -1;
	*status = g.resp.status;
	rc = http_read_body(&g.resp, body, REGAUTH_MAX_TOKEN_BODY, g.deadline, err);
	http_get_close(&g);
	return rc;
}

static int fetch_token(struct regauth_ctx *ctx, const struct regauth_challenge *ch,
                       const char *scope, struct strbuf *header, struct err *err)
{
	_cleanup_free_ char *url = token_url(ch->realm, ch->service, scope);
	_cleanup_json_ cJSON *j = NULL;
	struct strbuf body = STRBUF_INIT;
	const char *tok;
	double expires;
	int status = 0, rc = -1;

	if (check_realm(ctx, ch->realm, err) < 0)
		return -1;
	if (ctx->creds && ctx->creds->identity_token) {
		if (token_post(ctx, ch->realm, ch->service, scope, &body, &status, err) < 0)
			goto fail;
		if (status == 404 || status == 405) { /* no OAuth2 endpoint: GET with Basic */
			sb_reset(&body);
			if (token_get(ctx, url, &body, &status, err) < 0)
				goto fail;
		}
	} else if (token_get(ctx, url, &body, &status, err) < 0) {
		goto fail;
	}
	if (status == 401 || status == 403) {
		err_set(err, EACCES,
		        "%s: the token server %s refused the %s (HTTP %d); run `rollout login "
		        "%s`",
		        ctx->registry, ch->realm,
		        regauth_creds_empty(ctx->creds) ? "anonymous request" : "credentials",
		        status, ctx->registry);
		goto out;
	}
	if (status != 200) {
		err_set(err, EIO, "%s: the token server %s answered HTTP %d", ctx->registry,
		        ch->realm, status);
		goto out;
	}
	if (json_parse(body.buf ? body.buf : "", body.len, "token answer", &j, err) < 0)
		goto fail;
	tok = json_get_str(j, "token");
	if (!tok || !*tok)
		tok = json_get_str(j, "access_token");
	if (!tok || !*tok) {
		err_set(err, EPROTO, "%s: the token server %s sent no token", ctx->registry,
		        ch->realm);
		goto out;
	}
	expires = json_get_num(j, "expires_in", MIN_EXPIRES);
	if (expires < MIN_EXPIRES)
		expires = MIN_EXPIRES;
	ctx->last_expires_in = expires;
	sb_reset(header);
	sb_addf(header, "Bearer %s", tok);
	{
		_cleanup_free_ char *k1 = cache_key(ctx, ch->service, scope);
		_cleanup_free_ char *k2 = cache_key(ctx, NULL, scope);
		double until = mono_now() + expires;

		cache_put(ctx->cache, k1, header->buf, until);
		cache_put(ctx->cache, k2, header->buf, until);
	}
	rc = 0;
	goto out;
fail:
	err_wrap(err, "%s: token from %s", ctx->registry, ch->realm);
out:
	sb_release(&body);
	return rc;
}

int regauth_authorize(void *vctx, const char *www_authenticate, const char *scope,
                      struct strbuf *header, struct err *err)
{
	struct regauth_ctx *ctx = vctx;
	struct regauth_challenge ch;
	int rc = -1;

	if (!www_authenticate || !*www_authenticate)
		return err_set(err, EACCES,
		               "%s: authentication required but the registry sent no "
		               "WWW-Authenticate challenge",
		               ctx->registry);
	if (regauth_pick_challenge(www_authenticate, &ch, err) < 0)
		return err_wrap(err, "%s", ctx->registry);
	if (ch.scheme == REGAUTH_BASIC) {
		if (regauth_creds_empty(ctx->creds) || !ctx->creds->username) {
			err_set(err, EACCES,
			        "%s: the registry wants a user name and password (Basic realm "
			        "\"%s\"); run `rollout login %s`",
			        ctx->registry, ch.realm ? ch.realm : "", ctx->registry);
			goto out;
		}
		char *v = regauth_basic_value(ctx->creds->username, ctx->creds->password);

		sb_reset(header);
		sb_adds(header, v);
		free(v);
		rc = 0;
		goto out;
	}
	if (ctx->creds && ctx->creds->registry_token) {
		sb_reset(header);
		sb_addf(header, "Bearer %s", ctx->creds->registry_token);
		rc = 0;
		goto out;
	}
	if (!ch.realm || !*ch.realm) {
		err_set(err, EPROTO, "%s: Bearer challenge without a realm", ctx->registry);
		goto out;
	}
	rc = fetch_token(ctx, &ch, ch.scope && *ch.scope ? ch.scope : scope, header, err);
out:
	regauth_challenge_release(&ch);
	return rc;
}

/* ---- errors and Retry-After ----------------------------------------------------------- */

/* "code: message" of a registry error body, else its first 200 printable bytes. */
static void body_detail(const char *body, struct strbuf *out)
{
	cJSON *j = body ? cJSON_Parse(body) : NULL;
	cJSON *errs = j ? cJSON_GetObjectItemCaseSensitive(j, "errors") : NULL;
	cJSON *e0 = cJSON_IsArray(errs) ? cJSON_GetArrayItem(errs, 0) : NULL;

	if (e0) {
		const char *code = json_get_str(e0, "code"), *msg = json_get_str(e0, "message");

		sb_addf(out, " (%s%s%s)", code ? code : "", code && msg ? ": " : "",
		        msg ? msg : "");
	} else if (body && *body) {
		sb_adds(out, " (");
		for (size_t i = 0; body[i] && i < 200; i++)
			sb_addc(out, isprint((unsigned char)body[i]) ? body[i] : ' ');
		sb_adds(out, ")");
	}
	cJSON_Delete(j);
}

int regauth_status_error(int status, const char *registry, const char *repository, const char *body,
                         const char *retry_after, struct err *err)
{
	_cleanup_sb_ struct strbuf d = STRBUF_INIT;
	const char *reg = registry ? registry : "?", *repo = repository ? repository : "";

	body_detail(body, &d);
	switch (status) {
	case 401:
		return err_set(err, EACCES,
		               "%s/%s: pull access denied: the repository does not exist or "
		               "needs credentials%s; run `rollout login %s` if it is private",
		               reg, repo, sb_str(&d), reg);
	case 403:
		return err_set(err, EACCES,
		               "%s/%s: access forbidden (HTTP 403)%s; the credentials for %s do "
		               "not allow this: check them with `rollout login %s`",
		               reg, repo, sb_str(&d), reg, reg);
	case 404:
		return err_set(err, ENOENT,
		               "%s/%s: not found (HTTP 404)%s; check the repository name and the "
		               "tag or digest",
		               reg, repo, sb_str(&d));
	case 429: {
		double s = retry_after ? regauth_retry_after(retry_after, wall_now()) : -1;

		if (s >= 0)
			return err_set(err, EAGAIN,
			               "%s/%s: too many requests (HTTP 429)%s; the registry asks "
			               "to wait %.0f s",
			               reg, repo, sb_str(&d), s);
		return err_set(err, EAGAIN,
		               "%s/%s: too many requests (HTTP 429)%s; wait and try again, or "
		               "log in (`rollout login %s`) for a higher limit",
		               reg, repo, sb_str(&d), reg);
	}
	default:
		return err_set(err, EIO, "%s/%s: the registry answered HTTP %d%s", reg, repo,
		               status, sb_str(&d));
	}
}

static time_t parse_http_date(const char *v, bool *ok)
{
	static const char *const formats[] = {
	    "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
	    "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
	    "%a %b %e %H:%M:%S %Y",      /* asctime */
	};

	for (size_t i = 0; i < sizeof(formats) / sizeof(*formats); i++) {
		struct tm tm = {0};
		const char *end = strptime(v, formats[i], &tm);

		if (end && !*skip_ws(end)) {
			*ok = true;
			return timegm(&tm);
		}
	}
	*ok = false;
	return 0;
}

double regauth_retry_after(const char *value, double now)
{
	const char *p = skip_ws(value);
	bool ok;
	time_t t;

	if (isdigit((unsigned char)*p)) {
		char *end;
		double s;

		errno = 0;
		s = (double)strtoull(p, &end, 10);
		if (errno || *skip_ws(end))
			return -1;
		return s;
	}
	t = parse_http_date(p, &ok);
	if (!ok)
		return -1;
	return (double)t > now ? (double)t - now : 0;
}

double regauth_backoff(int attempt, const char *retry_after)
{
	double s = retry_after ? regauth_retry_after(retry_after, wall_now()) : -1;

	if (s >= 0)
		return s < MAX_RETRY_AFTER ? s : MAX_RETRY_AFTER;
	s = 2;
	for (int i = 1; i < attempt && s < 60; i++)
		s *= 2;
	return s < 60 ? s : 60;
}

int regauth_wait(double seconds, struct err *err)
{
	double end = mono_now() + seconds;

	for (;;) {
		double left = end - mono_now();

		if (cancel_requested())
			return err_set(err, ECANCELED, "cancelled");
		if (left <= 0)
			return 0;
		sleep_sec(left < 0.2 ? left : 0.2);
	}
}
