/* The docker provider's HTTP/1.1 client against canned byte streams: every
 * response is also fed split at every byte boundary and one byte per read. */
#include "harness.h"
#include "rollout/http.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static struct http_endpoint test_ep = {.kind = HTTP_UNIX, .display = "test"};

/* A connection whose peer sends `parts` (each one read() on our side) then EOF. */
static struct http_conn *feed_parts(const char *const *parts, const size_t *lens, size_t n)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (lens[i] && write(sv[1], parts[i], lens[i]) != (ssize_t)lens[i])
			return NULL;
	close(sv[1]);
	return http_conn_from_fd(sv[0], &test_ep);
}

static struct http_conn *feed(const char *data, size_t len)
{
	const char *parts[] = {data};
	size_t lens[] = {len};

	return feed_parts(parts, lens, 1);
}

/* Parse one response completely; describe the outcome as a string:
 * "STATUS|framing|reusable|body" or "error: CODE message". */
static char *outcome(struct http_conn *c, bool head)
{
	struct http_response r;
	struct err err = {0};
	_cleanup_sb_ struct strbuf body = STRBUF_INIT;
	char *s;

	if (http_read_response(c, &r, head, mono_now() + 5, &err) < 0)
		return xasprintf("error: %d %s", err.code, err.msg);
	if (http_read_body(&r, &body, 1 << 20, mono_now() + 5, &err) < 0) {
		http_response_release(&r);
		return xasprintf("error: %d %s", err.code, err.msg);
	}
	s = xasprintf("%d|%d|%d|%s", r.status, (int)r.framing, (int)http_response_reusable(&r),
	              sb_str(&body));
	http_response_release(&r);
	return s;
}

/* The outcome must be the same whole, split in two at every offset, and one
 * byte per read. */
static void check_all_splits(const char *data, size_t len, const char *want, bool head)
{
	struct http_conn *c = feed(data, len);
	_cleanup_free_ char *whole = outcome(c, head);

	http_conn_close(c);
	if (strcmp(whole, want) != 0) {
		test_fail_at(__FILE__, __LINE__, "whole: got '%s', want '%s'", whole, want);
		return;
	}
	for (size_t k = 1; k < len; k++) {
		const char *parts[] = {data, data + k};
		size_t lens[] = {k, len - k};
		_cleanup_free_ char *got = NULL;

		c = feed_parts(parts, lens, 2);
		got = outcome(c, head);
		http_conn_close(c);
		if (strcmp(got, want) != 0) {
			test_fail_at(__FILE__, __LINE__, "split at %zu: got '%s', want '%s'", k,
			             got, want);
			return;
		}
	}
	{
		int sv[2];
		_cleanup_free_ char *got = NULL;

		REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
		REQUIRE(write(sv[1], data, len) == (ssize_t)len);
		close(sv[1]);
		c = http_conn_from_fd(sv[0], &test_ep);
		c->max_read = 1;
		got = outcome(c, head);
		http_conn_close(c);
		if (strcmp(got, want) != 0)
			test_fail_at(__FILE__, __LINE__, "byte by byte: got '%s', want '%s'", got,
			             want);
	}
}

#define ALL_SPLITS(lit, want) check_all_splits(lit, sizeof(lit) - 1, want, false)

TEST(http_content_length_body)
{
	ALL_SPLITS("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n"
	           "Api-Version: 1.41\r\n\r\n{\"a\":1}",
	           "200|1|1|{\"a\":1}");
}

TEST(http_chunked_body_with_extensions_and_trailers)
{
	ALL_SPLITS("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	           "5\r\nhello\r\n1;name=val\r\n \r\nA \r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n",
	           "200|2|1|hello 0123456789");
}

TEST(http_chunk_size_is_case_insensitive_hex)
{
	ALL_SPLITS("HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n"
	           "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
	           "200|2|1|abcdefghijklmnopqrstuvwxyz");
}

TEST(http_no_body_statuses_and_head)
{
	ALL_SPLITS("HTTP/1.1 204 No Content\r\nApi-Version: 1.41\r\n\r\n", "204|0|1|");
	ALL_SPLITS("HTTP/1.1 304 Not Modified\r\n\r\n", "304|0|1|");
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";

	check_all_splits(head, sizeof(head) - 1, "200|0|1|", true);
}

TEST(http_body_until_eof_is_not_reusable)
{
	ALL_SPLITS("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nraw until eof",
	           "200|3|0|raw until eof");
	ALL_SPLITS("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", "200|1|0|hi");
	ALL_SPLITS("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
	           "200|1|0|hi");
}

TEST(http_interim_responses_are_skipped)
{
	ALL_SPLITS("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
	           "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
	           "201|1|1|ok");
}

TEST(http_header_values_are_trimmed_and_lookup_is_case_insensitive)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nAPI-Version: \t1.41  \r\nX-Empty:\r\n"
	                           "Content-Length: 0\r\n\r\n";
	struct http_conn *c = feed(resp, sizeof(resp) - 1);
	struct http_response r;
	struct err err = {0};

	REQUIRE(http_read_response(c, &r, false, 0, &err) == 0);
	CHECK_STR(http_header(&r, "api-version"), "1.41");
	CHECK_STR(http_header(&r, "x-empty"), "");
	CHECK(http_header(&r, "missing") == NULL);
	CHECK_STR(r.reason, "OK");
	http_response_release(&r);
	http_conn_close(c);
}

TEST(http_malformed_heads_are_errors)
{
	static const char *const bad[] = {
	    "HTTP/2 200 OK\r\n\r\n",
	    "HTTP/1.1 20 OK\r\n\r\n",
	    "HTTP/1.1 999 Nope\r\n\r\n",
	    "HTTP/1.1 200OK\r\n\r\n",
	    "ICY 200 OK\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nNo-Colon\r\n\r\n",
	    "HTTP/1.1 200 OK\r\n: empty-name\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nA: b\nc\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct http_conn *c = feed(bad[i], strlen(bad[i]));
		_cleanup_free_ char *got = outcome(c, false);

		http_conn_close(c);
		if (strncmp(got, "error: ", 7) != 0)
			test_fail_at(__FILE__, __LINE__, "case %zu accepted: %s", i, got);
		else if (!strstr(got, "error: 71 ")) /* EPROTO */
			test_fail_at(__FILE__, __LINE__, "case %zu: %s", i, got);
	}
}

TEST(http_nul_in_headers_is_an_error)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nA: x\0y\r\nContent-Length: 0\r\n\r\n";

	check_all_splits(resp, sizeof(resp) - 1, "error: 71 NUL byte in HTTP response headers",
	                 false);
}

TEST(http_both_lengths_use_chunked_and_forbid_reuse)
{
	ALL_SPLITS("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
	           "2\r\nok\r\n0\r\n\r\n",
	           "200|2|0|ok");
}

TEST(http_oversized_headers_are_an_error)
{
	struct strbuf sb = STRBUF_INIT;
	struct http_conn *c;
	_cleanup_free_ char *got = NULL;
	int sv[2];
	pid_t pid;

	sb_adds(&sb, "HTTP/1.1 200 OK\r\n");
	while (sb.len < HTTP_MAX_HEADER_BYTES + 100)
		sb_adds(&sb, "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
	sb_adds(&sb, "\r\n");
	/* More than a socket buffer: a writer process feeds it. */
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		write_all(sv[1], sb.buf, sb.len);
		_exit(0);
	}
	close(sv[1]);
	c = http_conn_from_fd(sv[0], &test_ep);
	got = outcome(c, false);
	CHECK_CONTAINS(got, "error: 90 "); /* EMSGSIZE */
	CHECK_CONTAINS(got, "larger than");
	http_conn_close(c);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	sb_release(&sb);

	/* Too many (small) header lines. */
	sb_adds(&sb, "HTTP/1.1 200 OK\r\n");
	for (int i = 0; i < HTTP_MAX_HEADERS + 1; i++)
		sb_addf(&sb, "H%d: v\r\n", i);
	sb_adds(&sb, "Content-Length: 0\r\n\r\n");
	c = feed(sb.buf, sb.len);
	free(got);
	got = outcome(c, false);
	CHECK_CONTAINS(got, "too many HTTP headers");
	http_conn_close(c);
	sb_release(&sb);
}

TEST(http_bad_chunks_are_errors)
{
	static const char *const bad[] = {
	    "zz\r\nab\r\n0\r\n\r\n",                 /* not hex */
	    "-1\r\nab\r\n0\r\n\r\n",                 /* sign */
	    "\r\nab\r\n0\r\n\r\n",                   /* empty size */
	    "0x2\r\nab\r\n0\r\n\r\n",                /* 0x prefix */
	    "FFFFFFFFFFFFFFFFFF\r\nab\r\n0\r\n\r\n", /* overflow */
	    "2\r\nabXY0\r\n\r\n",                    /* no CRLF after the data */
	    "2 x\r\nab\r\n0\r\n\r\n",                /* junk after the size */
	    "2;a\x01\r\nab\r\n0\r\n\r\n",            /* control char in the extension */
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_free_ char *resp =
		    xasprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%s", bad[i]);
		struct http_conn *c = feed(resp, strlen(resp));
		_cleanup_free_ char *got = outcome(c, false);

		http_conn_close(c);
		if (!strstr(got, "error: 71 "))
			test_fail_at(__FILE__, __LINE__, "chunk case %zu: %s", i, got);
	}
}

TEST(http_long_chunk_line_is_an_error)
{
	struct strbuf sb = STRBUF_INIT;
	struct http_conn *c;
	_cleanup_free_ char *got = NULL;

	sb_adds(&sb, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;");
	for (int i = 0; i < HTTP_MAX_CHUNK_LINE + 10; i++)
		sb_addc(&sb, 'e');
	sb_adds(&sb, "\r\nx\r\n0\r\n\r\n");
	c = feed(sb.buf, sb.len);
	got = outcome(c, false);
	CHECK_CONTAINS(got, "chunk header line too long");
	http_conn_close(c);
	sb_release(&sb);
}

TEST(http_early_eof_is_an_error)
{
	struct {
		const char *data;
		const char *want;
	} cases[] = {
	    {"", "error: 104 connection closed by the server before a response"},
	    {"HTTP/1.1 200 OK\r\nContent-Le", "error: 71 connection closed in the middle"},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
	     "error: 71 connection closed before the end of the body"},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
	     "error: 71 connection closed before the end of the body"},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde",
	     "error: 71 connection closed in a chunked body"},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5",
	     "error: 71 connection closed in a chunked body"},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
	     "error: 71 connection closed in a chunked body"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct http_conn *c = feed(cases[i].data, strlen(cases[i].data));
		_cleanup_free_ char *got = outcome(c, false);

		http_conn_close(c);
		if (strncmp(got, cases[i].want, strlen(cases[i].want)) != 0)
			test_fail_at(__FILE__, __LINE__, "case %zu: got '%s', want '%s'", i, got,
			             cases[i].want);
	}
}

TEST(http_keep_alive_reads_pipelined_responses)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
	                           "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
	                           "3\r\ntwo\r\n0\r\n\r\n"
	                           "HTTP/1.1 204 No Content\r\n\r\n";
	struct http_conn *c = feed(resp, sizeof(resp) - 1);
	_cleanup_free_ char *a = outcome(c, false);
	_cleanup_free_ char *b = outcome(c, false);
	_cleanup_free_ char *d = outcome(c, false);
	_cleanup_free_ char *e = outcome(c, false);

	CHECK_STR(a, "200|1|1|one");
	CHECK_STR(b, "404|2|1|two");
	CHECK_STR(d, "204|0|1|");
	CHECK_CONTAINS(e, "error: 104 ");
	http_conn_close(c);
}

TEST(http_hijack_keeps_bytes_after_the_headers)
{
	static const char head[] = "HTTP/1.1 101 UPGRADED\r\nContent-Type: "
	                           "application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\n"
	                           "Upgrade: tcp\r\n\r\n\x01\x00\x00\x00\x00\x00\x00\x03"
	                           "abc";
	static const char more[] = "\x02\x00\x00\x00\x00\x00\x00\x01z";

	for (size_t k = 1; k <= sizeof(head) - 1; k++) {
		const char *parts[] = {head, head + k, more};
		size_t lens[] = {k, sizeof(head) - 1 - k, sizeof(more) - 1};
		struct http_conn *c = feed_parts(parts, lens, 3);
		struct http_response r;
		struct err err = {0};
		_cleanup_sb_ struct strbuf raw = STRBUF_INIT;
		const uint8_t *d;
		ssize_t n;

		REQUIRE(http_read_response(c, &r, false, mono_now() + 5, &err) == 0);
		CHECK_INT(r.status, 101);
		CHECK(!http_response_reusable(&r));
		while ((n = http_raw_next(c, &d, 0, mono_now() + 5, &err)) > 0)
			sb_add(&raw, d, (size_t)n);
		CHECK_INT(n, 0);
		CHECK_INT(raw.len, 11 + 9);
		CHECK(raw.len == 20 && memcmp(raw.buf,
		                              "\x01\x00\x00\x00\x00\x00\x00\x03"
		                              "abc\x02\x00\x00\x00\x00\x00\x00\x01z",
		                              20) == 0);
		http_response_release(&r);
		http_conn_close(c);
	}
}

TEST(http_request_is_written_as_expected)
{
	int sv[2];
	struct http_conn *c;
	struct err err = {0};
	char buf[1024];
	ssize_t n;
	const char *hdrs[] = {"X-Registry-Config: e30=", NULL};
	struct http_request req = {.method = "POST",
	                           .target = "/v1.41/containers/create?name=a%2Fb",
	                           .headers = hdrs,
	                           .content_type = "application/json",
	                           .body = "{}",
	                           .body_len = 2};

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	c = http_conn_from_fd(sv[0], &test_ep);
	REQUIRE(http_send_request(c, &req, 0, &err) == 0);
	n = read(sv[1], buf, sizeof(buf) - 1);
	REQUIRE(n > 0);
	buf[n] = '\0';
	CHECK_STR(buf, "POST /v1.41/containers/create?name=a%2Fb HTTP/1.1\r\nHost: docker\r\n"
	               "User-Agent: rollout\r\nContent-Type: application/json\r\n"
	               "Content-Length: 2\r\nX-Registry-Config: e30=\r\n\r\n{}");

	/* A streamed body, an upgrade, a bodiless POST. */
	struct http_request stream = {.method = "PUT",
	                              .target = "/archive",
	                              .content_type = "application/x-tar",
	                              .chunked = true};
	REQUIRE(http_send_request(c, &stream, 0, &err) == 0);
	REQUIRE(http_write_body(c, "hello", 5, 0, &err) == 0);
	REQUIRE(http_write_body(c, "", 0, 0, &err) == 0);
	REQUIRE(http_write_body(c, "0123456789abcdefX", 17, 0, &err) == 0);
	REQUIRE(http_finish_body(c, 0, &err) == 0);
	n = read(sv[1], buf, sizeof(buf) - 1);
	REQUIRE(n > 0);
	buf[n] = '\0';
	CHECK_STR(buf, "PUT /archive HTTP/1.1\r\nHost: docker\r\nUser-Agent: rollout\r\n"
	               "Content-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n"
	               "5\r\nhello\r\n11\r\n0123456789abcdefX\r\n0\r\n\r\n");

	struct http_request up = {.method = "POST", .target = "/exec/x/start", .upgrade = true};
	REQUIRE(http_send_request(c, &up, 0, &err) == 0);
	n = read(sv[1], buf, sizeof(buf) - 1);
	REQUIRE(n > 0);
	buf[n] = '\0';
	CHECK_STR(buf, "POST /exec/x/start HTTP/1.1\r\nHost: docker\r\nUser-Agent: rollout\r\n"
	               "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n");
	http_conn_close(c);
	close(sv[1]);
}

TEST(http_reads_time_out_and_honour_cancellation)
{
	int sv[2];
	struct http_conn *c;
	struct http_response r;
	struct err err = {0};
	double t0;

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	c = http_conn_from_fd(sv[0], &test_ep);
	t0 = mono_now();
	CHECK(http_read_response(c, &r, false, mono_now() + 0.2, &err) < 0);
	CHECK_INT(err.code, ETIMEDOUT);
	CHECK(mono_now() - t0 < 5);
	rollout_cancel_count = 1;
	CHECK(http_read_response(c, &r, false, 0, &err) < 0);
	CHECK_INT(err.code, ECANCELED);
	rollout_cancel_count = 0;
	CHECK(http_conn_idle_ok(c));
	write(sv[1], "x", 1);
	CHECK(!http_conn_idle_ok(c)); /* stray bytes: not reusable */
	http_conn_close(c);
	close(sv[1]);
}

TEST(http_idle_connection_closed_by_peer_is_detected)
{
	int sv[2];
	struct http_conn *c;

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	c = http_conn_from_fd(sv[0], &test_ep);
	CHECK(http_conn_idle_ok(c));
	close(sv[1]);
	CHECK(!http_conn_idle_ok(c));
	http_conn_close(c);
}

/* A server that answers (a lot) before reading the request body: the client must
 * keep reading while it writes, or both sides block forever. */
TEST(http_streamed_body_and_early_response_do_not_deadlock)
{
	const size_t body = 8 << 20, answer = 2 << 20;
	int sv[2];
	pid_t pid;
	struct http_conn *c;
	struct err err = {0};
	struct http_response r;
	struct http_request req = {.method = "POST", .target = "/build", .chunked = true};
	_cleanup_free_ char *chunk = xmalloc(65536);
	_cleanup_sb_ struct strbuf got = STRBUF_INIT;

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		char *big = xmalloc(answer);
		char *head = xasprintf("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", answer);
		char buf[65536];

		close(sv[0]);
		memset(big, 'r', answer);
		write_all(sv[1], head, strlen(head));
		write_all(sv[1], big, answer);
		while (read(sv[1], buf, sizeof(buf)) > 0)
			;
		_exit(0);
	}
	close(sv[1]);
	c = http_conn_from_fd(sv[0], &test_ep);
	memset(chunk, 'b', 65536);
	REQUIRE(http_send_request(c, &req, mono_now() + 30, &err) == 0);
	for (size_t sent = 0; sent < body; sent += 65536)
		REQUIRE(http_write_body(c, chunk, 65536, mono_now() + 30, &err) == 0);
	REQUIRE(http_finish_body(c, mono_now() + 30, &err) == 0);
	REQUIRE(http_read_response(c, &r, false, mono_now() + 30, &err) == 0);
	REQUIRE(http_read_body(&r, &got, answer + 1, mono_now() + 30, &err) == 0);
	CHECK_INT(got.len, answer);
	http_response_release(&r);
	http_conn_close(c);
	waitpid(pid, NULL, 0);
}

TEST(http_writing_to_a_closed_peer_is_an_error_not_a_signal)
{
	int sv[2];
	struct http_conn *c;
	struct err err = {0};
	_cleanup_free_ char *chunk = xcalloc(1, 1 << 20);
	struct http_request req = {.method = "PUT", .target = "/x", .chunked = true};
	int rc = 0;

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	close(sv[1]);
	c = http_conn_from_fd(sv[0], &test_ep);
	rc = http_send_request(c, &req, mono_now() + 5, &err);
	if (rc == 0)
		rc = http_write_body(c, chunk, 1 << 20, mono_now() + 5, &err);
	CHECK(rc < 0);
	CHECK_INT(err.code, EPIPE);
	http_conn_close(c);
}

TEST(http_query_escape_encodes_reserved_characters)
{
	_cleanup_free_ char *a = http_query_escape("{\"label\":[\"rollout.job=a b\"]}");
	_cleanup_free_ char *b = http_query_escape("rollout/task_1:abc-1.0~x");

	CHECK_STR(a, "%7B%22label%22%3A%5B%22rollout.job%3Da%20b%22%5D%7D");
	CHECK_STR(b, "rollout%2Ftask_1%3Aabc-1.0~x");
}
