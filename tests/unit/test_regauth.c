/* image/regauth.c: WWW-Authenticate parsing, Basic values, base64, error
 * messages, Retry-After, and the Bearer token flow against the python token
 * server of tests/helpers/token_server.py through util/http.c. */
#include "harness.h"
#include "image/regauth.h"
#include "image/regsession.h"
#include "rollout/alloc.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/http.h"
#include "rollout/proc.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

static int parse1(const char *v, struct regauth_challenge *ch)
{
	struct err err = {0};

	return regauth_pick_challenge(v, ch, &err);
}

TEST(bearer_challenge_with_quoted_commas)
{
	struct regauth_challenge ch;

	REQUIRE(
	    parse1("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
	           "scope=\"repository:a/b:pull,push repository:c:pull\"",
	           &ch) == 0);
	CHECK_INT(ch.scheme, REGAUTH_BEARER);
	CHECK_STR(ch.realm, "https://auth.docker.io/token");
	CHECK_STR(ch.service, "registry.docker.io");
	CHECK_STR(ch.scope, "repository:a/b:pull,push repository:c:pull");
	CHECK(ch.error == NULL);
	regauth_challenge_release(&ch);
}

TEST(scheme_is_case_insensitive_and_escapes_work)
{
	struct regauth_challenge ch;

	REQUIRE(parse1("BASIC realm=\"Sonatype \\\"Nexus\\\" Repository\"", &ch) == 0);
	CHECK_INT(ch.scheme, REGAUTH_BASIC);
	CHECK_STR(ch.realm, "Sonatype \"Nexus\" Repository");
	regauth_challenge_release(&ch);
	REQUIRE(parse1("bEaReR realm=http://x/t , error=insufficient_scope", &ch) == 0);
	CHECK_STR(ch.realm, "http://x/t");
	CHECK_STR(ch.error, "insufficient_scope");
	regauth_challenge_release(&ch);
}

TEST(several_challenges_prefer_bearer)
{
	struct regauth_challenge all[4], ch;
	struct err err = {0};
	size_t n;
	const char *v = "Negotiate abc==, Basic realm=\"r\", Bearer realm=\"https://t\",service=s";

	REQUIRE(regauth_parse_challenges(v, all, 4, &n, &err) == 0);
	CHECK_INT(n, 3);
	CHECK_INT(all[0].scheme, REGAUTH_OTHER);
	CHECK_INT(all[1].scheme, REGAUTH_BASIC);
	CHECK_INT(all[2].scheme, REGAUTH_BEARER);
	CHECK_STR(all[2].service, "s");
	for (size_t i = 0; i < n; i++)
		regauth_challenge_release(&all[i]);
	REQUIRE(parse1(v, &ch) == 0);
	CHECK_INT(ch.scheme, REGAUTH_BEARER);
	regauth_challenge_release(&ch);
	REQUIRE(parse1("Basic realm=r", &ch) == 0);
	CHECK_INT(ch.scheme, REGAUTH_BASIC);
	regauth_challenge_release(&ch);
}

TEST(malformed_challenges_are_errors)
{
	static const char *const bad[] = {
	    "Bearer realm=\"unterminated",
	    "Bearer realm=\"a\"\"b\"",
	    "=x",
	    "Bearer realm=\"a\" service=b",
	    "\"quoted\"",
	};
	struct regauth_challenge ch;
	struct err err = {0};
	char *big = xmalloc(REGAUTH_MAX_HEADER + 10);

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		CHECK(parse1(bad[i], &ch) < 0);
	CHECK(regauth_pick_challenge("Negotiate xyz", &ch, &err) < 0);
	CHECK_INT(err.code, ENOTSUP);
	memset(big, 'a', REGAUTH_MAX_HEADER + 9);
	big[REGAUTH_MAX_HEADER + 9] = '\0';
	CHECK(regauth_pick_challenge(big, &ch, &err) < 0);
	CHECK_INT(err.code, EFBIG);
	free(big);
}

TEST(base64_and_basic)
{
	char *v = regauth_basic_value("alice", "s3cret");
	char *d;
	size_t n;

	CHECK_STR(v, "Basic YWxpY2U6czNjcmV0");
	free(v);
	d = regauth_base64_decode("YWxpY2U6czNjcmV0", &n);
	CHECK_STR(d, "alice:s3cret");
	free(d);
	d = regauth_base64_decode("YQ", &n); /* no padding */
	CHECK_STR(d, "a");
	free(d);
	CHECK(regauth_base64_decode("Y*Q=", &n) == NULL);
	CHECK(regauth_base64_decode("Y", &n) == NULL);
	v = regauth_base64_encode("ab", 2);
	CHECK_STR(v, "YWI=");
	free(v);
}

TEST(status_errors_say_what_to_do)
{
	struct err err = {0};

	regauth_status_error(401, "reg.local:5000", "team/app", NULL, NULL, &err);
	CHECK_INT(err.code, EACCES);
	CHECK(strstr(err.msg, "reg.local:5000/team/app") != NULL);
	CHECK(strstr(err.msg, "rollout login reg.local:5000") != NULL);
	regauth_status_error(404, "r", "x",
	                     "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest "
	                     "unknown\"}]}",
	                     NULL, &err);
	CHECK_INT(err.code, ENOENT);
	CHECK(strstr(err.msg, "MANIFEST_UNKNOWN: manifest unknown") != NULL);
	regauth_status_error(403, "r", "x", "denied\x1b[31m", NULL, &err);
	CHECK(strstr(err.msg, "403") && strstr(err.msg, "(denied [31m)"));
	regauth_status_error(429, "r", "x", NULL, "7", &err);
	CHECK_INT(err.code, EAGAIN);
	CHECK(strstr(err.msg, "wait 7 s") != NULL);
}

TEST(retry_after_seconds_and_dates)
{
	double now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */

	CHECK(regauth_retry_after("120", now) == 120);
	CHECK(regauth_retry_after(" 0 ", now) == 0);
	CHECK(regauth_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now) == 10);
	CHECK(regauth_retry_after("Sunday, 06-Nov-94 08:50:37 GMT", now) == 60);
	CHECK(regauth_retry_after("Sun Nov  6 08:49:57 1994", now) == 20);
	CHECK(regauth_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now) == 0);
	CHECK(regauth_retry_after("soon", now) < 0);
	CHECK(regauth_retry_after("12abc", now) < 0);
	CHECK(regauth_backoff(1, "5") == 5);
	CHECK(regauth_backoff(1, "100000") == 300);
	CHECK(regauth_backoff(1, NULL) == 2);
	CHECK(regauth_backoff(3, "junk") == 8);
	CHECK(regauth_backoff(9, NULL) == 60);
}

TEST(wait_returns)
{
	struct err err = {0};
	double t = mono_now();

	CHECK(regauth_wait(0.05, &err) == 0);
	CHECK(mono_now() - t >= 0.05);
}

/* ---- against the token server -------------------------------------------------------- */

struct tokensrv {
	struct proc p;
	const char *argv[4];
	char port[16];
};

static int tokensrv_start(struct tokensrv *s)
{
	struct err err = {0};
	size_t n = 0;

	if (access("/usr/bin/python3", X_OK) != 0)
		test_skip("python3 is not installed");
	memset(s, 0, sizeof(*s));
	s->argv[0] = "python3";
	s->argv[1] = tfmt("%s/tests/helpers/token_server.py", test_srcdir());
	s->p.argv = s->argv;
	s->p.in = -1;
	s->p.out = -1;
	s->p.deadline = mono_now() + 60;
	if (proc_start(&s->p, &err) < 0)
		return -1;
	while (n < sizeof(s->port) - 1) {
		char c;
		ssize_t r;

		if (http_wait_fd(s->p.out, POLLIN, mono_now() + 20, "token server", &err) < 0)
			return -1;
		r = read(s->p.out, &c, 1);
		if (r <= 0)
			return -1;
		if (c == '\n')
			break;
		s->port[n++] = c;
	}
	return 0;
}

static void tokensrv_stop(struct tokensrv *s)
{
	struct err err = {0};

	close(s->p.in);
	s->p.in = -1;
	s->p.owned[0] = false;
	proc_finish(&s->p, &err);
}

static const char *challenge(struct tokensrv *s, const char *path, const char *extra)
{
	return tfmt("Bearer realm=\"http://127.0.0.1:%s%s\",service=\"test-registry\"%s", s->port,
	            path, extra);
}

TEST(token_flow_anonymous_then_cached)
{
	struct tokensrv s;
	struct err err = {0};
	struct regauth_cache *cache = regauth_cache_new();
	struct regauth_ctx ctx = {.registry = "127.0.0.1:5000", .cache = cache};
	struct strbuf h = STRBUF_INIT;

	REQUIRE(tokensrv_start(&s) == 0);
	CHECK(!regauth_cached(&ctx, "repository:public/hello:pull", &h));
	REQUIRE(regauth_authorize(&ctx, challenge(&s, "/token", ""), "repository:public/hello:pull",
	                          &h, &err) == 0);
	CHECK_STR(h.buf, "Bearer anon|test-registry|repository:public/hello:pull");
	CHECK(ctx.last_expires_in == 300);
	sb_reset(&h);
	CHECK(regauth_cached(&ctx, "repository:public/hello:pull", &h));
	CHECK_STR(h.buf, "Bearer anon|test-registry|repository:public/hello:pull");
	regauth_forget(&ctx, "repository:public/hello:pull");
	CHECK(!regauth_cached(&ctx, "repository:public/hello:pull", &h));
	/* the challenge's own scope (several, space-separated) wins over the caller's */
	REQUIRE(regauth_authorize(&ctx,
	                          challenge(&s, "/token",
	                                    ",scope=\"repository:a:pull,push repository:b:pull\","
	                                    "error=\"insufficient_scope\""),
	                          "repository:x:pull", &h, &err) == 0);
	CHECK_STR(h.buf, "Bearer anon|test-registry|repository:a:pull,push repository:b:pull");
	tokensrv_stop(&s);
	sb_release(&h);
	regauth_cache_free(cache);
}

TEST(token_flow_with_credentials_and_access_token)
{
	struct tokensrv s;
	struct err err = {0};
	struct regauth_creds good = {.username = "alice", .password = "s3cret"};
	struct regauth_creds bad = {.username = "alice", .password = "nope"};
	struct regauth_creds refresh = {.identity_token = "refresh-ok"};
	struct regauth_ctx ctx = {.registry = "127.0.0.1:5000", .creds = &good};
	struct strbuf h = STRBUF_INIT;

	REQUIRE(tokensrv_start(&s) == 0);
	REQUIRE(regauth_authorize(&ctx, challenge(&s, "/token", ""), "repository:p/h:pull", &h,
	                          &err) == 0);
	CHECK_STR(h.buf, "Bearer alice|test-registry|repository:p/h:pull");
	REQUIRE(regauth_authorize(&ctx, challenge(&s, "/access_token", ""), "repository:p/h:pull",
	                          &h, &err) == 0);
	CHECK_STR(h.buf, "Bearer alice|test-registry|repository:p/h:pull");
	CHECK(ctx.last_expires_in == 60); /* absent: 60 s */
	ctx.creds = &bad;
	CHECK(regauth_authorize(&ctx, challenge(&s, "/token", ""), "repository:p/h:pull", &h,
	                        &err) < 0);
	CHECK_INT(err.code, EACCES);
	CHECK(strstr(err.msg, "rollout login 127.0.0.1:5000") != NULL);
	ctx.creds = &refresh;
	REQUIRE(regauth_authorize(&ctx, challenge(&s, "/token", ""), "repository:p/h:pull", &h,
	                          &err) == 0);
	CHECK_STR(h.buf, "Bearer refresh|test-registry|repository:p/h:pull");
	CHECK(ctx.last_expires_in == 120);
	tokensrv_stop(&s);
	sb_release(&h);
}

TEST(basic_challenge_needs_credentials)
{
	struct err err = {0};
	struct regauth_creds good = {.username = "alice", .password = "s3cret"};
	struct regauth_ctx ctx = {.registry = "reg:5000"};
	struct strbuf h = STRBUF_INIT;

	CHECK(regauth_authorize(&ctx, "Basic realm=\"basic-realm\"", "repository:x:pull", &h,
	                        &err) < 0);
	CHECK_INT(err.code, EACCES);
	CHECK(strstr(err.msg, "rollout login reg:5000") != NULL);
	ctx.creds = &good;
	REQUIRE(regauth_authorize(&ctx, "Basic realm=\"basic-realm\"", "repository:x:pull", &h,
	                          &err) == 0);
	CHECK_STR(h.buf, "Basic YWxpY2U6czNjcmV0");
	sb_release(&h);
}

TEST(plain_http_realm_refused_unless_insecure_or_loopback)
{
	struct err err = {0};
	struct regauth_ctx ctx = {.registry = "reg.example:5000"};
	struct strbuf h = STRBUF_INIT;

	CHECK(regauth_authorize(&ctx, "Bearer realm=\"http://auth.example/token\"",
	                        "repository:x:pull", &h, &err) < 0);
	CHECK_INT(err.code, EPERM);
	CHECK(strstr(err.msg, "not https") != NULL);
	sb_release(&h);
}

/* The pull client's seam: credentials from config.json (Hub's key for
 * registry-1.docker.io), then the token flow. */
TEST(session_uses_saved_credentials)
{
	struct tokensrv s;
	struct err err = {0};
	struct strbuf h = STRBUF_INIT;
	struct regsession *sess;
	const char *cfg =
	    "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"YWxpY2U6czNjcmV0\"}}}";

	setenv("HOME", tdir("home"), 1);
	unsetenv("DOCKER_CONFIG");
	unsetenv("REGISTRY_AUTH_FILE");
	unsetenv("XDG_RUNTIME_DIR");
	unsetenv("XDG_CONFIG_HOME");
	setenv("ROLLOUT_DOCKER_DAEMON_JSON", tpath("none"), 1);
	tdir("home/.docker");
	REQUIRE(write_file_atomic(tpath("home/.docker/config.json"), cfg, strlen(cfg), 0600,
	                          &err) == 0);
	REQUIRE(tokensrv_start(&s) == 0);
	sess = regsession_new();
	REQUIRE(regsession_authorize(sess, "registry-1.docker.io", challenge(&s, "/token", ""),
	                             "repository:library/alpine:pull", &h, &err) == 0);
	CHECK_STR(h.buf, "Bearer alice|test-registry|repository:library/alpine:pull");
	/* another registry: no credentials, anonymous */
	REQUIRE(regsession_authorize(sess, "127.0.0.1:5000", challenge(&s, "/token", ""),
	                             "repository:x:pull", &h, &err) == 0);
	CHECK_STR(h.buf, "Bearer anon|test-registry|repository:x:pull");
	regsession_free(sess);
	tokensrv_stop(&s);
	sb_release(&h);
}
