/* rollout's HTTP/1.1 client (util/http.c) against canned byte streams (every
 * response is also fed split at every byte boundary and one byte per read), a
 * test transport, and local servers for pools and redirects. */
#include "harness.h"
#include "providers/docker/api.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/http.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
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

/* ---- framing edge cases --------------------------------------------------------------- */

TEST(http_bad_lengths_are_errors)
{
	static const struct {
		const char *resp, *want;
	} cases[] = {
	    {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "error: 71 invalid Content-Length"},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n", "error: 71 invalid Content-Length"},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
	     "error: 71 invalid Content-Length"},
	    {"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", "error: 71 empty Content-Length"},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
	     "error: 71 conflicting Content-Length"},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	     "error: 71 unsupported Transfer-Encoding"},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
	     "error: 71 chunk size too large"},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
	     "error: 71 missing CRLF after chunk data"},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
	     "error: 71 connection closed before the end of the body"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct http_conn *c = feed(cases[i].resp, strlen(cases[i].resp));
		_cleanup_free_ char *got = outcome(c, false);

		http_conn_close(c);
		if (strncmp(got, cases[i].want, strlen(cases[i].want)) != 0)
			test_fail_at(__FILE__, __LINE__, "case %zu: got '%s', want '%s'", i, got,
			             cases[i].want);
	}
}

TEST(http_chunked_trailers_and_extensions_leave_the_next_response_intact)
{
	ALL_SPLITS("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	           "2;a=b;c=\"d e\"\r\nab\r\n0;last\r\nDigest: x\r\nX-More: y\r\n\r\n",
	           "200|2|1|ab");
	{
		static const char two[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		                          "1\r\nx\r\n0\r\nT: 1\r\n\r\n"
		                          "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ny";
		struct http_conn *c = feed(two, sizeof(two) - 1);
		_cleanup_free_ char *a = outcome(c, false);
		_cleanup_free_ char *b = outcome(c, false);

		CHECK_STR(a, "200|2|1|x");
		CHECK_STR(b, "200|1|1|y");
		http_conn_close(c);
	}
}

TEST(http_close_delimited_body_streams_to_eof)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\n\r\n0123456789abcdef";
	struct http_conn *c = feed(resp, sizeof(resp) - 1);
	struct http_response r;
	struct err err = {0};
	_cleanup_sb_ struct strbuf got = STRBUF_INIT;
	const uint8_t *d;
	ssize_t n;

	REQUIRE(http_read_response(c, &r, false, mono_now() + 5, &err) == 0);
	CHECK_INT(r.framing, HTTP_BODY_EOF);
	while ((n = http_body_next(&r, &d, 5, mono_now() + 5, &err)) > 0) {
		CHECK(n <= 5);
		sb_add(&got, d, (size_t)n);
	}
	CHECK_INT(n, 0);
	CHECK_STR(sb_str(&got), "0123456789abcdef");
	CHECK(!http_response_reusable(&r));
	http_response_release(&r);
	http_conn_close(c);
}

TEST(http_read_body_caps_the_size)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
	struct http_conn *c = feed(resp, sizeof(resp) - 1);
	struct http_response r;
	struct err err = {0};
	_cleanup_sb_ struct strbuf body = STRBUF_INIT;

	REQUIRE(http_read_response(c, &r, false, mono_now() + 5, &err) == 0);
	CHECK(http_read_body(&r, &body, 4, mono_now() + 5, &err) < 0);
	CHECK_INT(err.code, EFBIG);
	CHECK(!http_response_reusable(&r));
	http_response_release(&r);
	http_conn_close(c);
}

/* ---- waits: idle timeout, deadline, cancellation ----------------------------------------- */

TEST(http_idle_timeout_deadline_and_cancellation)
{
	int sv[2];
	struct http_conn *c;
	struct http_response r;
	struct err err = {0};
	double t0;

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	c = http_conn_from_fd(sv[0], &test_ep);
	/* A silent peer: the idle timeout ends the wait before the deadline. */
	c->idle_timeout = 0.2;
	t0 = mono_now();
	CHECK(http_read_response(c, &r, false, mono_now() + 30, &err) < 0);
	CHECK_INT(err.code, ETIMEDOUT);
	CHECK_CONTAINS(err.msg, "no data for 0.2 s");
	CHECK(mono_now() - t0 < 5);
	/* The deadline when it comes first. */
	c->idle_timeout = 30;
	CHECK(http_read_response(c, &r, false, mono_now() + 0.1, &err) < 0);
	CHECK_INT(err.code, ETIMEDOUT);
	CHECK_CONTAINS(err.msg, "timed out");
	/* Cancellation, unless held. */
	rollout_cancel_count = 1;
	CHECK(http_read_response(c, &r, false, mono_now() + 30, &err) < 0);
	CHECK_INT(err.code, ECANCELED);
	http_cancel_hold();
	CHECK(!http_cancel_pending());
	CHECK(http_read_response(c, &r, false, mono_now() + 0.1, &err) < 0);
	CHECK_INT(err.code, ETIMEDOUT);
	http_cancel_release();
	CHECK(http_cancel_pending());
	rollout_cancel_count = 0;
	http_conn_close(c);
	close(sv[1]);
}

/* ---- the transport seam ------------------------------------------------------------------ */

/* A transport that hides its bytes from poll(): it keeps what it read in a
 * buffer of its own and hands it out a byte at a time, as a TLS transport with
 * decrypted records does. It counts its calls. */
struct held {
	char buf[4096];
	size_t len, off;
	int reads, writes, closes;
};

static ssize_t held_read(struct http_conn *c, void *buf, size_t n)
{
	struct held *h = c->tp_data;

	h->reads++;
	if (h->off == h->len) {
		ssize_t r = read(c->fd, h->buf, sizeof(h->buf));

		if (r <= 0) {
			if (r < 0 && errno == EAGAIN)
				c->want = POLLIN;
			return r;
		}
		h->len = (size_t)r;
		h->off = 0;
	}
	(void)n;
	((char *)buf)[0] = h->buf[h->off++];
	return 1;
}

static ssize_t held_write(struct http_conn *c, const void *buf, size_t n)
{
	struct held *h = c->tp_data;

	h->writes++;
	return http_socket_transport.write(c, buf, n);
}

static size_t held_pending(const struct http_conn *c)
{
	const struct held *h = c->tp_data;

	return h->len - h->off;
}

static void held_close(struct http_conn *c)
{
	struct held *h = c->tp_data;

	h->closes++;
}

static const struct http_transport held_transport = {
    .name = "held",
    .read = held_read,
    .write = held_write,
    .pending = held_pending,
    .close_write = NULL,
    .close = held_close,
};

TEST(http_a_transport_carries_every_byte_and_its_pending_bytes_count)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
	struct held h = {0};
	struct http_request req = {.method = "GET", .target = "/", .host = "x"};
	struct http_response r;
	struct err err = {0};
	_cleanup_sb_ struct strbuf body = STRBUF_INIT;
	int sv[2];
	struct http_conn *c;
	char buf[256];

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	c = http_conn_from_fd(sv[0], &test_ep);
	CHECK(c->tp == &http_socket_transport);
	http_conn_set_transport(c, &held_transport, &h);
	REQUIRE(http_send_request(c, &req, mono_now() + 5, &err) == 0);
	CHECK(h.writes >= 1);
	CHECK(read(sv[1], buf, sizeof(buf)) > 0);
	REQUIRE(write(sv[1], resp, sizeof(resp) - 1) == (ssize_t)sizeof(resp) - 1);
	REQUIRE(http_read_response(c, &r, false, mono_now() + 5, &err) == 0);
	/* Read a byte at a time: the rest waits in the transport, not in the socket. */
	CHECK(http_conn_buffered(c) > 0);
	CHECK(!http_conn_idle_ok(c));
	REQUIRE(http_read_body(&r, &body, 100, mono_now() + 5, &err) == 0);
	CHECK_STR(sb_str(&body), "hello");
	CHECK(h.reads >= (int)sizeof(resp) - 1);
	CHECK(http_response_reusable(&r));
	CHECK_INT(http_conn_buffered(c), 0);
	/* No close_write in this transport: a half-close is a no-op, not a crash. */
	CHECK(http_raw_close_write(c, &err) == 0);
	http_response_release(&r);
	http_conn_close(c);
	CHECK_INT(h.closes, 1);
	close(sv[1]);
}

/* ---- URLs ----------------------------------------------------------------------------- */

TEST(http_url_parse_takes_urls_apart)
{
	static const struct {
		const char *url, *scheme, *host, *port, *authority, *target;
	} ok[] = {
	    {"http://example.com", "http", "example.com", "80", "example.com", "/"},
	    {"HTTP://Example.com:8080/a/b?q=1#frag", "http", "Example.com", "8080",
	     "Example.com:8080", "/a/b?q=1"},
	    {"http://h?x=1", "http", "h", "80", "h", "/?x=1"},
	    {"http://h:/p", "http", "h", "80", "h:", "/p"},
	    {"tcp://[::1]:2376/base/", "tcp", "::1", "2376", "[::1]:2376", "/base/"},
	    {"http://[fe80::1]/x", "http", "fe80::1", "80", "[fe80::1]", "/x"},
	};
	static const struct {
		const char *url, *msg;
	} bad[] = {
	    {"example.com/x", "not a URL"},
	    {"://h/x", "not a URL"},
	    {"http://user:pw@h/x", "credentials in the URL are not supported"},
	    {"http://[::1/x", "bad IPv6 address"},
	    {"http://[::1]x/", "bad IPv6 address"},
	    {"http:///x", "no host"},
	    {"http://:80/x", "no host"},
	    {"http://h:8a/x", "bad port"},
	    {"http://h:123456/x", "bad port"},
	    {"http://h:65536/x", "bad port"},
	    {"http://h/a b", "bad character in the URL"},
	    {"http://h/a\r\nX: y", "bad character in the URL"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		struct http_url u;
		struct err err = {0};

		if (http_url_parse(ok[i].url, "80", &u, &err) < 0) {
			test_fail_at(__FILE__, __LINE__, "%s: %s", ok[i].url, err.msg);
			continue;
		}
		CHECK_STR(u.scheme, ok[i].scheme);
		CHECK_STR(u.host, ok[i].host);
		CHECK_STR(u.port, ok[i].port);
		CHECK_STR(u.authority, ok[i].authority);
		CHECK_STR(u.target, ok[i].target);
		http_url_release(&u);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct http_url u;
		struct err err = {0};

		if (http_url_parse(bad[i].url, "80", &u, &err) == 0) {
			test_fail_at(__FILE__, __LINE__, "%s accepted", bad[i].url);
			http_url_release(&u);
			continue;
		}
		CHECK_INT(err.code, EINVAL);
		CHECK_CONTAINS(err.msg, bad[i].msg);
	}
}

TEST(http_url_resolve_and_origin)
{
	struct http_url a, b, c;
	struct err err = {0};
	_cleanup_free_ char *abs_path = NULL, *abs_url = NULL;

	REQUIRE(http_url_parse("http://h:8080/dir/r.json", "80", &a, &err) == 0);
	abs_path = http_url_resolve(&a, "/moved/r.json?x");
	CHECK_STR(abs_path, "http://h:8080/moved/r.json?x");
	abs_url = http_url_resolve(&a, "https://other/x");
	CHECK_STR(abs_url, "https://other/x");
	CHECK(http_url_resolve(&a, "relative/x") == NULL);
	CHECK(http_url_resolve(&a, "//other/x") == NULL);
	REQUIRE(http_url_parse(abs_path, "80", &b, &err) == 0);
	CHECK(http_url_same_origin(&a, &b));
	REQUIRE(http_url_parse("http://H:8080/", "80", &c, &err) == 0);
	CHECK(http_url_same_origin(&a, &c)); /* host names are case-insensitive */
	http_url_release(&c);
	REQUIRE(http_url_parse("http://h/", "80", &c, &err) == 0);
	CHECK(!http_url_same_origin(&a, &c)); /* another port */
	http_url_release(&c);
	REQUIRE(http_url_parse("https://h:8080/", "443", &c, &err) == 0);
	CHECK(!http_url_same_origin(&a, &c)); /* another scheme */
	http_url_release(&c);
	http_url_release(&a);
	http_url_release(&b);
}

TEST(http_docker_host_goes_through_the_url_parser)
{
	struct http_endpoint ep;
	struct err err = {0};

	unsetenv("DOCKER_TLS_VERIFY");
	REQUIRE(docker_endpoint_parse(NULL, &ep, &err) == 0);
	CHECK_INT(ep.kind, HTTP_UNIX);
	CHECK_STR(ep.display, "unix:///var/run/docker.sock");
	http_endpoint_free(&ep);
	REQUIRE(docker_endpoint_parse("tcp://10.0.0.1", &ep, &err) == 0);
	CHECK_STR(ep.host, "10.0.0.1");
	CHECK_STR(ep.port, "2375");
	CHECK_STR(ep.base_path, "");
	CHECK_STR(ep.display, "tcp://10.0.0.1:2375");
	http_endpoint_free(&ep);
	REQUIRE(docker_endpoint_parse("http://[::1]:2376/proxy/", &ep, &err) == 0);
	CHECK_STR(ep.host, "::1");
	CHECK_STR(ep.port, "2376");
	CHECK_STR(ep.base_path, "/proxy");
	http_endpoint_free(&ep);
	CHECK(docker_endpoint_parse("tcp://:2375", &ep, &err) < 0);
	CHECK_STR(err.msg, "DOCKER_HOST=tcp://:2375: no host");
	CHECK(docker_endpoint_parse("tcp://h:x", &ep, &err) < 0);
	CHECK_STR(err.msg, "DOCKER_HOST=tcp://h:x: bad port");
	CHECK(docker_endpoint_parse("tcp://[::1", &ep, &err) < 0);
	CHECK_STR(err.msg, "DOCKER_HOST=tcp://[::1: bad IPv6 address");
	CHECK(docker_endpoint_parse("ssh://u@h", &ep, &err) < 0);
	CHECK_INT(err.code, ENOTSUP);
}

/* ---- a local server: pools and redirects ----------------------------------------------- */

/* What a test server answers to one request (the request's head). */
typedef const char *answer_fn(const char *request);

/* Serve n connections on 127.0.0.1, each until the client closes it or an
 * answer says "Connection: close". Returns the pid; *port is where. */
static pid_t serve(answer_fn *answer, int n, int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pid_t pid;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	*port = ntohs(a.sin_port);
	pid = fork();
	if (pid == 0) {
		for (int i = 0; i < n; i++) {
			int c = accept(fd, NULL, NULL);
			char buf[8192];
			size_t got = 0;

			if (c < 0)
				_exit(1);
			for (;;) {
				char *end = got ? memmem(buf, got, "\r\n\r\n", 4) : NULL;
				const char *resp;
				ssize_t r;

				if (!end) {
					r = read(c, buf + got, sizeof(buf) - 1 - got);
					if (r <= 0)
						break;
					got += (size_t)r;
					continue;
				}
				*end = '\0';
				resp = answer(buf);
				if (write_all(c, resp, strlen(resp)) < 0)
					break;
				got -= (size_t)(end + 4 - buf);
				memmove(buf, end + 4, got);
				if (strstr(resp, "Connection: close"))
					break;
			}
			close(c);
		}
		_exit(0);
	}
	close(fd);
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int other_port;
static char answer_buf[512];

/* The second server: refuses any request that carries credentials. */
static const char *answer_no_auth(const char *req)
{
	if (strcasestr(req, "\r\nAuthorization:"))
		return "HTTP/1.1 400 Bad Request\r\nContent-Length: 13\r\n\r\nauthorization";
	return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nblob";
}

/* The first server: /start redirects to itself, /same needs credentials then
 * redirects to the other server; /loop loops; /https leaves for TLS. */
static const char *answer_origin(const char *req)
{
	if (str_starts_with(req, "GET /start "))
		return "HTTP/1.1 302 Found\r\nLocation: /same\r\nContent-Length: 3\r\n\r\nxyz";
	if (str_starts_with(req, "GET /same ")) {
		if (!strstr(req, "\r\nAuthorization: Bearer t0k"))
			return "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
		snprintf(answer_buf, sizeof(answer_buf),
		         "HTTP/1.1 307 Temporary Redirect\r\nLocation: "
		         "http://127.0.0.1:%d/blob\r\nContent-Length: 0\r\n\r\n",
		         other_port);
		return answer_buf;
	}
	if (str_starts_with(req, "GET /loop "))
		return "HTTP/1.1 301 Moved\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n";
	if (str_starts_with(req, "GET /https "))
		return "HTTP/1.1 301 Moved\r\nLocation: https://127.0.0.1/x\r\n"
		       "Content-Length: 0\r\n\r\n";
	if (str_starts_with(req, "GET /relative "))
		return "HTTP/1.1 302 Found\r\nLocation: x/y\r\nContent-Length: 0\r\n\r\n";
	if (str_starts_with(req, "GET /not-modified "))
		return "HTTP/1.1 304 Not Modified\r\nLocation: /x\r\n\r\n";
	return "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
}

static int get_body(struct http_get *g, struct strbuf *body, struct err *err)
{
	int rc = http_get_open(g, err);

	if (rc == 0)
		rc = http_read_body(&g->resp, body, 1 << 20, g->deadline, err);
	return rc;
}

TEST(http_get_redirects_never_carry_credentials_to_another_origin)
{
	struct http_pool pool = {0};
	int port = 0;
	pid_t other = serve(answer_no_auth, 4, &other_port);
	pid_t origin = serve(answer_origin, 4, &port);
	_cleanup_free_ char *start = xasprintf("http://127.0.0.1:%d/start", port);
	_cleanup_free_ char *blob = xasprintf("http://127.0.0.1:%d/blob", other_port);
	_cleanup_sb_ struct strbuf body = STRBUF_INIT;
	struct http_get g = {.url = start,
	                     .authorization = "Bearer t0k",
	                     .timeout = 10,
	                     .redirects = {.max = 5},
	                     .pool = &pool};
	struct err err = {0};

	REQUIRE(other > 0 && origin > 0);
	/* start -> same (same origin: credentials kept) -> blob (other origin: dropped). */
	REQUIRE(get_body(&g, &body, &err) == 0);
	CHECK_INT(g.resp.status, 200);
	CHECK_STR(sb_str(&body), "blob");
	CHECK_STR(g.final_url, blob);
	http_get_close(&g);
	/* Both servers' connections were kept alive for reuse. */
	CHECK_INT(pool.n, 2);
	/* Again through the pool: the same connections answer. */
	sb_reset(&body);
	REQUIRE(get_body(&g, &body, &err) == 0);
	CHECK_STR(sb_str(&body), "blob");
	http_get_close(&g);
	CHECK_INT(pool.n, 2);
	for (size_t i = 0; i < pool.n; i++)
		CHECK(pool.idle[i]->requests >= 2);
	http_pool_release(&pool);
	stop(origin);
	stop(other);
}

TEST(http_get_redirect_policy)
{
	int port = 0;
	pid_t origin = serve(answer_origin, 20, &port);
	struct err err = {0};
	_cleanup_free_ char *loop = xasprintf("http://127.0.0.1:%d/loop", port);
	_cleanup_free_ char *https = xasprintf("http://127.0.0.1:%d/https", port);
	_cleanup_free_ char *relative = xasprintf("http://127.0.0.1:%d/relative", port);
	_cleanup_free_ char *same = xasprintf("http://127.0.0.1:%d/same", port);
	_cleanup_free_ char *nm = xasprintf("http://127.0.0.1:%d/not-modified", port);
	struct http_get g = {.timeout = 10, .redirects = {.max = 3}};

	REQUIRE(origin > 0);
	g.url = loop;
	CHECK(http_get_open(&g, &err) < 0);
	CHECK_INT(err.code, ELOOP);
	{
		_cleanup_free_ char *want = xasprintf("%s: too many redirects", loop);

		CHECK_STR(err.msg, want);
	}
	/* http -> https is followed (nothing listens on 443 here). */
	g.url = https;
	g.timeout = 5;
	CHECK(http_get_open(&g, &err) < 0);
	CHECK_CONTAINS(err.msg, "https://127.0.0.1/x: connect to 127.0.0.1:443");
	g.timeout = 10;
	g.url = relative;
	CHECK(http_get_open(&g, &err) < 0);
	CHECK_CONTAINS(err.msg, "unsupported redirect to 'x/y'");
	/* Without credentials, the answer that needs them comes back as it is. */
	g.url = same;
	REQUIRE(http_get_open(&g, &err) == 0);
	CHECK_INT(g.resp.status, 401);
	http_get_close(&g);
	/* 304 is not a redirect, whatever its headers. */
	g.url = nm;
	REQUIRE(http_get_open(&g, &err) == 0);
	CHECK_INT(g.resp.status, 304);
	http_get_close(&g);
	/* No redirect at all when max is 0. */
	g.url = loop;
	g.redirects.max = 0;
	CHECK(http_get_open(&g, &err) < 0);
	CHECK_INT(err.code, ELOOP);
	stop(origin);
	/* Schemes other than http and https are refused. */
	g.url = "ftp://127.0.0.1/x";
	CHECK(http_get_open(&g, &err) < 0);
	CHECK_INT(err.code, ENOTSUP);
}

static const char *answer_silent(const char *req)
{
	sleep(5);
	return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
}

TEST(http_get_timeout_names_the_url)
{
	int port = 0;
	pid_t pid = serve(answer_silent, 1, &port);
	_cleanup_free_ char *url = xasprintf("http://127.0.0.1:%d/slow", port);
	struct http_get g = {.url = url, .timeout = 0.3, .redirects = {.max = 1}};
	struct err err = {0};

	REQUIRE(pid > 0);
	CHECK(http_get_open(&g, &err) < 0);
	CHECK_INT(err.code, ETIMEDOUT);
	{
		_cleanup_free_ char *want = xasprintf("%s: no answer within 0.3 s", url);

		CHECK_STR(err.msg, want);
	}
	stop(pid);
}

TEST(http_pool_keeps_one_per_endpoint_and_notices_dead_ones)
{
	struct http_endpoint a = {.kind = HTTP_UNIX, .path = "/nonexistent/sock", .display = "a"};
	struct http_endpoint b = {.kind = HTTP_UNIX, .display = "b"};
	struct http_pool pool = {0};
	struct http_response ok = {
	    .keep_alive = true, .body_done = true, .framing = HTTP_BODY_LENGTH};
	struct http_conn *c1, *c2, *c3, *got = NULL;
	struct err err = {0};
	int s1[2], s2[2], s3[2];

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s1) == 0);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s2) == 0);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s3) == 0);
	c1 = http_conn_from_fd(s1[0], &a);
	c2 = http_conn_from_fd(s2[0], &a);
	c3 = http_conn_from_fd(s3[0], &b);
	ok.conn = c1;
	http_pool_put(&pool, c1, &ok);
	ok.conn = c2;
	http_pool_put(&pool, c2, &ok); /* a second one for a: closed */
	ok.conn = c3;
	http_pool_put(&pool, c3, &ok);
	CHECK_INT(pool.n, 2);
	CHECK(http_pool_peek(&pool) == c1);
	REQUIRE(http_pool_get(&pool, &b, 0, &got, &err) == 0);
	CHECK(got == c3);
	http_conn_close(got);
	/* The server closed a's idle connection: noticed, and a new one is dialled
	 * (which fails here: a is no real socket). */
	close(s1[1]);
	CHECK(http_pool_get(&pool, &a, mono_now() + 1, &got, &err) < 0);
	CHECK(pool.lost);
	CHECK_INT(pool.n, 0);
	http_pool_release(&pool);
	close(s2[1]);
	close(s3[1]);
}
