/* rollout's HTTP/1.1 client: URLs, transports (sockets; TLS plugs in as another
 * table of ops), request writing, bounded response parsing, chunked, length and
 * close-delimited bodies, keep-alive pools, hijacking, and GET with redirects. */
#include "rollout/http.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"
#include "rollout/tls.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
#define WAIT_SLICE_MS 500
#define MAX_INTERIM_RESPONSES 16
#define MAX_TRAILER_LINES 64

enum { CH_SIZE, CH_DATA, CH_DATA_CRLF, CH_TRAILER, CH_DONE };

void http_endpoint_free(struct http_endpoint *ep)
{
	free(ep->path);
	free(ep->host);
	free(ep->port);
	free(ep->base_path);
	free(ep->display);
	tls_config_unref(ep->tls_config);
	memset(ep, 0, sizeof(*ep));
}

/* ---- waiting --------------------------------------------------------------------- */

static int cancel_held;

void http_cancel_hold(void)
{
	cancel_held++;
}

void http_cancel_release(void)
{
	if (cancel_held > 0)
		cancel_held--;
}

bool http_cancel_pending(void)
{
	return cancel_requested() && !cancel_held;
}

static int wait_fd(int fd, short events, double deadline, const char *what, short *revents,
                   struct err *err)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int ms = WAIT_SLICE_MS;
		int r;

		if (http_cancel_pending())
			return err_set(err, ECANCELED, "%s: cancelled", what);
		if (deadline > 0) {
			double left = deadline - mono_now();

			if (left <= 0)
				return err_set(err, ETIMEDOUT, "%s: timed out", what);
			if (left * 1000 < ms)
				ms = (int)(left * 1000) + 1;
		}
		r = poll(&p, 1, ms);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return err_sys(err, "%s: poll", what);
		}
		if (r > 0) {
			if (revents)
				*revents = p.revents;
			return 0;
		}
	}
}

int http_wait_fd(int fd, short events, double deadline, const char *what, struct err *err)
{
	return wait_fd(fd, events, deadline, what, NULL, err);
}

/* Wait on a connection: its deadline, or its idle timeout when that comes first
 * (a wait starts when a read or write could not move a byte). */
static int conn_wait(struct http_conn *c, short events, double deadline, const char *what,
                     short *revents, struct err *err)
{
	double idle = c->idle_timeout > 0 ? mono_now() + c->idle_timeout : 0;

	if (idle > 0 && (deadline <= 0 || idle < deadline)) {
		if (wait_fd(c->fd, events, idle, what, revents, err) == 0)
			return 0;
		if (err->code == ETIMEDOUT)
			return err_set(err, ETIMEDOUT, "%s: no data for %g s", what,
			               c->idle_timeout);
		return -1;
	}
	return wait_fd(c->fd, events, deadline, what, revents, err);
}

/* ---- connections ------------------------------------------------------------------- */

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int connect_unix(const struct http_endpoint *ep, struct err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;

	if (strlen(ep->path) >= sizeof(sa.sun_path))
		return err_set(err, ENAMETOOLONG, "socket path too long: %s", ep->path);
	memcpy(sa.sun_path, ep->path, strlen(ep->path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_sys(err, "socket");
	/* A unix connect completes at once (or fails); do it blocking, then switch. */
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		return err_sys(err, "connect to %s", ep->path);
	}
	if (set_nonblock(fd) < 0)
		return err_sys(err, "fcntl");
	return steal_fd(&fd);
}

static int connect_tcp(const struct http_endpoint *ep, double deadline, struct err *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int saved = ECONNREFUSED;
	int rc = getaddrinfo(ep->host, ep->port, &hints, &res);

	if (rc != 0)
		return err_set(err, EHOSTUNREACH, "cannot resolve %s: %s", ep->host,
		               gai_strerror(rc));
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		                ai->ai_protocol);
		int one = 1, soerr = 0;
		socklen_t len = sizeof(soerr);

		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			saved = errno;
			close(fd);
			continue;
		}
		if (wait_fd(fd, POLLOUT, deadline, "connect", NULL, err) < 0) {
			close(fd);
			freeaddrinfo(res);
			return err_wrap(err, "connect to %s:%s", ep->host, ep->port);
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr != 0) {
			saved = soerr ? soerr : errno;
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		freeaddrinfo(res);
		return fd;
	}
	freeaddrinfo(res);
	errno = saved;
	return err_sys(err, "connect to %s:%s", ep->host, ep->port);
}

static ssize_t socket_read(struct http_conn *c, void *buf, size_t n)
{
	ssize_t r = read(c->fd, buf, n);

	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		c->want = POLLIN;
	return r;
}

static ssize_t socket_write(struct http_conn *c, const void *buf, size_t n)
{
	ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		c->want = POLLOUT;
	return w;
}

static int socket_close_write(struct http_conn *c)
{
	return shutdown(c->fd, SHUT_WR);
}

const struct http_transport http_socket_transport = {
    .name = "socket",
    .read = socket_read,
    .write = socket_write,
    .close_write = socket_close_write,
};

struct http_conn *http_conn_from_fd(int fd, const struct http_endpoint *ep)
{
	struct http_conn *c = xcalloc(1, sizeof(*c));

	c->fd = fd;
	c->display = xstrdup(ep && ep->display ? ep->display : "socket");
	c->tp = &http_socket_transport;
	set_nonblock(fd);
	return c;
}

void http_conn_set_transport(struct http_conn *c, const struct http_transport *tp, void *data)
{
	c->tp = tp;
	c->tp_data = data;
}

int http_conn_fd(const struct http_conn *c)
{
	return c->fd;
}

int http_connect(const struct http_endpoint *ep, double deadline, struct http_conn **out,
                 struct err *err)
{
	int fd = ep->kind == HTTP_UNIX ? connect_unix(ep, err) : connect_tcp(ep, deadline, err);
	struct tls_config *cfg = ep->tls_config;
	struct http_conn *c;

	if (fd < 0)
		return -1;
	c = http_conn_from_fd(fd, ep);
	if (ep->kind == HTTP_TCP && ep->tls) {
		if ((!cfg && tls_config_default(&cfg, err) < 0) ||
		    tls_client_start(c, cfg, ep->host, ep->port, deadline, err) < 0) {
			http_conn_close(c);
			return -1;
		}
	}
	*out = c;
	return 0;
}

void http_conn_close(struct http_conn *c)
{
	if (!c)
		return;
	if (c->tp && c->tp->close)
		c->tp->close(c);
	if (c->fd >= 0)
		close(c->fd);
	free(c->display);
	free(c->buf);
	free(c);
}

void cleanup_http_connp(struct http_conn **c)
{
	http_conn_close(*c);
}

static size_t tp_pending(const struct http_conn *c)
{
	return c->tp->pending ? c->tp->pending(c) : 0;
}

size_t http_conn_buffered(const struct http_conn *c)
{
	return c->end - c->start + tp_pending(c);
}

bool http_conn_idle_ok(struct http_conn *c)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	if (c->broken || c->peer_closed || c->start != c->end || tp_pending(c))
		return false;
	/* Readable while idle means EOF, an error, or bytes nobody asked for. */
	return poll(&p, 1, 0) == 0;
}

/* Make room for READ_CHUNK more bytes; more than `limit` buffered is an error. */
static int buf_reserve(struct http_conn *c, size_t limit, struct err *err)
{
	size_t used = c->end - c->start;

	if (used >= limit)
		return err_set(err, EMSGSIZE, "response too large (more than %zu bytes buffered)",
		               limit);
	if (c->start > 0 && (c->start == c->end || c->cap - c->end < READ_CHUNK)) {
		memmove(c->buf, c->buf + c->start, used);
		c->start = 0;
		c->end = used;
	}
	if (c->cap - c->end >= READ_CHUNK)
		return 0;
	c->cap = used + READ_CHUNK < 2 * c->cap ? 2 * c->cap : used + READ_CHUNK;
	c->buf = xrealloc(c->buf, c->cap);
	return 0;
}

/* Read once (waiting for data). Returns bytes read, 0 on EOF, -1 on error. */
static ssize_t fill(struct http_conn *c, double deadline, struct err *err)
{
	size_t room;

	if (c->peer_closed)
		return 0;
	if (buf_reserve(c, HTTP_MAX_EARLY_RESPONSE, err) < 0)
		return -1;
	room = c->cap - c->end;
	if (c->max_read && room > c->max_read)
		room = c->max_read;
	for (;;) {
		ssize_t n = c->tp->read(c, c->buf + c->end, room);

		if (n > 0) {
			c->end += (size_t)n;
			return n;
		}
		if (n == 0) {
			c->peer_closed = true;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			c->broken = true;
			return err_sys(err, "read from %s", c->display);
		}
		if (conn_wait(c, c->want ? c->want : POLLIN, deadline, "read response", NULL, err) <
		    0)
			return -1;
	}
}

/* ---- writing ----------------------------------------------------------------------- */

/* Write everything, reading whatever the peer sends meanwhile into the buffer so
 * that a peer that answers while it reads cannot deadlock us. */
static int write_all_duplex(struct http_conn *c, const void *data, size_t n, double deadline,
                            struct err *err)
{
	const char *p = data;

	while (n > 0) {
		short revents = 0;
		ssize_t w = c->tp->write(c, p, n);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			c->broken = true;
			return err_sys(err, "write to %s", c->display);
		}
		if (conn_wait(c, (c->want ? c->want : POLLOUT) | (c->peer_closed ? 0 : POLLIN),
		              deadline, "write request", &revents, err) < 0)
			return -1;
		if (!c->peer_closed && (revents & (POLLIN | POLLHUP)) && !(revents & POLLOUT) &&
		    fill(c, deadline, err) < 0)
			return -1;
	}
	return 0;
}

int http_send_request(struct http_conn *c, const struct http_request *req, double deadline,
                      struct err *err)
{
	_cleanup_sb_ struct strbuf head = STRBUF_INIT;
	bool has_body = req->chunked || req->body_len > 0;

	if (c->broken)
		return err_set(err, EPIPE, "connection is in an unknown state");
	sb_addf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rollout\r\n", req->method,
	        req->target, req->host ? req->host : "docker");
	if (req->upgrade)
		sb_adds(&head, "Connection: Upgrade\r\nUpgrade: tcp\r\n");
	if (has_body && req->content_type)
		sb_addf(&head, "Content-Type: %s\r\n", req->content_type);
	if (req->chunked)
		sb_adds(&head, "Transfer-Encoding: chunked\r\n");
	else if (has_body || strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0)
		sb_addf(&head, "Content-Length: %zu\r\n", req->body_len);
	for (const char *const *h = req->headers; h && *h; h++)
		sb_addf(&head, "%s\r\n", *h);
	sb_adds(&head, "\r\n");
	if (!req->chunked && req->body_len > 0 && req->body_len < 16384) {
		sb_add(&head, req->body, req->body_len);
		return write_all_duplex(c, head.buf, head.len, deadline, err);
	}
	if (write_all_duplex(c, head.buf, head.len, deadline, err) < 0)
		return -1;
	if (!req->chunked && req->body_len > 0)
		return write_all_duplex(c, req->body, req->body_len, deadline, err);
	return 0;
}

int http_write_body(struct http_conn *c, const void *data, size_t n, double deadline,
                    struct err *err)
{
	char size[32];

	if (n == 0)
		return 0;
	snprintf(size, sizeof(size), "%zx\r\n", n);
	if (write_all_duplex(c, size, strlen(size), deadline, err) < 0 ||
	    write_all_duplex(c, data, n, deadline, err) < 0 ||
	    write_all_duplex(c, "\r\n", 2, deadline, err) < 0)
		return -1;
	return 0;
}

int http_finish_body(struct http_conn *c, double deadline, struct err *err)
{
	return write_all_duplex(c, "0\r\n\r\n", 5, deadline, err);
}

/* ---- response head ------------------------------------------------------------------- */

void http_response_release(struct http_response *r)
{
	free(r->reason);
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	memset(r, 0, sizeof(*r));
}

const char *http_header(const struct http_response *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

static bool is_tchar(unsigned char ch)
{
	return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int parse_status_line(const char *s, size_t len, struct http_response *r, struct err *err)
{
	if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)s[7]) ||
	    s[8] != ' ' || !isdigit((unsigned char)s[9]) || !isdigit((unsigned char)s[10]) ||
	    !isdigit((unsigned char)s[11]) || (len > 12 && s[12] != ' '))
		return err_set(err, EPROTO, "malformed HTTP status line");
	r->minor_version = s[7] - '0';
	r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	if (r->status < 100 || r->status > 599)
		return err_set(err, EPROTO, "HTTP status %d out of range", r->status);
	for (size_t i = 12; i < len; i++)
		if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
			return err_set(err, EPROTO, "control character in HTTP status line");
	r->reason = len > 13 ? xstrndup(s + 13, len - 13) : xstrdup("");
	return 0;
}

static int parse_header_line(const char *s, size_t len, struct http_response *r, struct err *err)
{
	const char *colon = memchr(s, ':', len);
	size_t vstart, vend;

	if (len == 0 || s[0] == ' ' || s[0] == '\t')
		return err_set(err, EPROTO, "folded or empty HTTP header line");
	if (!colon || colon == s)
		return err_set(err, EPROTO, "malformed HTTP header line");
	for (const char *p = s; p < colon; p++)
		if (!is_tchar((unsigned char)*p))
			return err_set(err, EPROTO, "invalid character in HTTP header name");
	for (size_t i = (size_t)(colon - s) + 1; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return err_set(err, EPROTO, "control character in HTTP header value");
	}
	if (r->n_headers >= HTTP_MAX_HEADERS)
		return err_set(err, EPROTO, "too many HTTP headers (more than %d)",
		               HTTP_MAX_HEADERS);
	vstart = (size_t)(colon - s) + 1;
	vend = len;
	while (vstart < vend && (s[vstart] == ' ' || s[vstart] == '\t'))
		vstart++;
	while (vend > vstart && (s[vend - 1] == ' ' || s[vend - 1] == '\t'))
		vend--;
	r->headers = xrealloc(r->headers, (r->n_headers + 1) * sizeof(*r->headers));
	r->headers[r->n_headers].name = xstrndup(s, (size_t)(colon - s));
	r->headers[r->n_headers].value = xstrndup(s + vstart, vend - vstart);
	r->n_headers++;
	return 0;
}

/* Whether a comma-separated header value holds token (case-insensitive). */
static bool header_has_token(const char *value, const char *token)
{
	size_t tl = strlen(token);
	const char *p = value;

	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		while (n && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == tl && strncasecmp(p, token, tl) == 0)
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static int parse_content_length(const char *v, uint64_t *out, struct err *err)
{
	uint64_t n = 0;

	if (!*v)
		return err_set(err, EPROTO, "empty Content-Length");
	for (const char *p = v; *p; p++) {
		if (!isdigit((unsigned char)*p) || p - v >= 18)
			return err_set(err, EPROTO, "invalid Content-Length '%.40s'", v);
		n = n * 10 + (uint64_t)(*p - '0');
	}
	*out = n;
	return 0;
}

/* Decide how the body is delimited (RFC 9112 section 6.3). */
static int decide_framing(struct http_response *r, bool head, struct err *err)
{
	const char *te = NULL;
	bool have_cl = false;
	uint64_t cl = 0;

	for (size_t i = 0; i < r->n_headers; i++) {
		const char *name = r->headers[i].name, *v = r->headers[i].value;

		if (strcasecmp(name, "Content-Length") == 0) {
			uint64_t n = 0;

			if (parse_content_length(v, &n, err) < 0)
				return -1;
			if (have_cl && n != cl)
				return err_set(err, EPROTO, "conflicting Content-Length headers");
			have_cl = true;
			cl = n;
		} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
			if (te)
				return err_set(err, EPROTO, "repeated Transfer-Encoding header");
			te = v;
		}
	}
	r->keep_alive = r->minor_version >= 1;
	for (size_t i = 0; i < r->n_headers; i++) {
		if (strcasecmp(r->headers[i].name, "Connection") != 0)
			continue;
		if (header_has_token(r->headers[i].value, "close"))
			r->keep_alive = false;
		else if (header_has_token(r->headers[i].value, "keep-alive"))
			r->keep_alive = true;
	}
	if (head || r->status < 200 || r->status == 204 || r->status == 304) {
		r->framing = HTTP_BODY_NONE;
		r->body_done = true;
		if (r->status == 101)
			r->keep_alive = false;
		return 0;
	}
	if (te) {
		if (strcasecmp(te, "chunked") != 0)
			return err_set(err, EPROTO, "unsupported Transfer-Encoding '%.60s'", te);
		if (r->minor_version == 0)
			return err_set(err, EPROTO, "Transfer-Encoding in an HTTP/1.0 response");
		/* With both, the length is a lie (or an attack): chunking wins, no reuse. */
		if (have_cl)
			r->keep_alive = false;
		r->framing = HTTP_BODY_CHUNKED;
		r->chunk_state = CH_SIZE;
		return 0;
	}
	if (have_cl) {
		r->framing = HTTP_BODY_LENGTH;
		r->remaining = cl;
		r->body_done = cl == 0;
		return 0;
	}
	r->framing = HTTP_BODY_EOF;
	r->keep_alive = false;
	return 0;
}

/* Read one response head into r. */
static int read_head(struct http_conn *c, struct http_response *r, bool head, double deadline,
                     struct err *err)
{
	size_t scanned = 0;
	const char *block, *p, *end;

	for (;;) {
		size_t have = c->end - c->start;
		const char *found = NULL;

		/* Search only the new bytes (minus 3 for a terminator split across reads). */
		for (size_t i = scanned; i + 4 <= have; i++) {
			if (c->buf[c->start + i] == '\r' &&
			    memcmp(c->buf + c->start + i, "\r\n\r\n", 4) == 0) {
				found = c->buf + c->start + i;
				break;
			}
		}
		if (found)
			break;
		scanned = have > 3 ? have - 3 : 0;
		if (have > HTTP_MAX_HEADER_BYTES) {
			c->broken = true;
			return err_set(err, EMSGSIZE, "HTTP response headers larger than %d bytes",
			               HTTP_MAX_HEADER_BYTES);
		}
		ssize_t n = fill(c, deadline, err);

		if (n < 0)
			return -1;
		if (n == 0) {
			c->broken = true;
			if (have == 0)
				return err_set(err, ECONNRESET,
				               "connection closed by the server before a response");
			return err_set(err, EPROTO,
			               "connection closed in the middle of the "
			               "response headers");
		}
	}
	block = c->buf + c->start;
	end = memmem(block, c->end - c->start, "\r\n\r\n", 4);
	if ((size_t)(end - block) + 4 > HTTP_MAX_HEADER_BYTES) {
		c->broken = true;
		return err_set(err, EMSGSIZE, "HTTP response headers larger than %d bytes",
		               HTTP_MAX_HEADER_BYTES);
	}
	if (memchr(block, '\0', (size_t)(end - block))) {
		c->broken = true;
		return err_set(err, EPROTO, "NUL byte in HTTP response headers");
	}
	p = block;
	for (bool first = true; p < end + 2; first = false) {
		const char *eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
		size_t len = (size_t)(eol - p);
		int rc;

		if (memchr(p, '\n', len) || memchr(p, '\r', len)) {
			c->broken = true;
			return err_set(err, EPROTO, "bare CR or LF in HTTP response headers");
		}
		rc = first ? parse_status_line(p, len, r, err) : parse_header_line(p, len, r, err);
		if (rc < 0) {
			c->broken = true;
			return -1;
		}
		p = eol + 2;
	}
	c->start += (size_t)(end - block) + 4;
	r->conn = c;
	if (decide_framing(r, head, err) < 0) {
		c->broken = true;
		return -1;
	}
	return 0;
}

int http_read_response(struct http_conn *c, struct http_response *r, bool head, double deadline,
                       struct err *err)
{
	for (int i = 0; i <= MAX_INTERIM_RESPONSES; i++) {
		memset(r, 0, sizeof(*r));
		if (read_head(c, r, head, deadline, err) < 0) {
			http_response_release(r);
			return -1;
		}
		if (r->status >= 200 || r->status == 101)
			return 0;
		http_response_release(r); /* 100 Continue, 103 Early Hints: no body */
	}
	c->broken = true;
	return err_set(err, EPROTO, "too many interim (1xx) HTTP responses");
}

/* ---- bodies ------------------------------------------------------------------------ */

/* Find a CRLF-terminated line in the buffer, reading more as needed. */
static int buffered_line(struct http_conn *c, const char **line, size_t *len, double deadline,
                         struct err *err)
{
	for (;;) {
		size_t have = c->end - c->start;
		const char *eol = have ? memmem(c->buf + c->start, have, "\r\n", 2) : NULL;
		ssize_t n;

		if (eol) {
			*line = c->buf + c->start;
			*len = (size_t)(eol - *line);
			if (*len > HTTP_MAX_CHUNK_LINE)
				return err_set(err, EPROTO, "chunk header line too long");
			return 0;
		}
		if (have > HTTP_MAX_CHUNK_LINE)
			return err_set(err, EPROTO, "chunk header line too long");
		n = fill(c, deadline, err);
		if (n < 0)
			return -1;
		if (n == 0)
			return err_set(err, EPROTO, "connection closed in a chunked body");
	}
}

static int parse_chunk_size(const char *s, size_t len, uint64_t *out, struct err *err)
{
	uint64_t n = 0;
	size_t i = 0;

	for (; i < len && isxdigit((unsigned char)s[i]); i++) {
		if (n >> 56)
			return err_set(err, EPROTO, "chunk size too large");
		n = n * 16 + (uint64_t)(isdigit((unsigned char)s[i])
		                            ? s[i] - '0'
		                            : (tolower((unsigned char)s[i]) - 'a' + 10));
	}
	if (i == 0)
		return err_set(err, EPROTO, "invalid chunk size line");
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i < len && s[i] != ';')
		return err_set(err, EPROTO, "invalid chunk size line");
	for (; i < len; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return err_set(err, EPROTO, "control character in chunk extension");
	*out = n;
	return 0;
}

static ssize_t body_fail(struct http_response *r)
{
	r->conn->broken = true;
	return -1;
}

ssize_t http_body_next(struct http_response *r, const uint8_t **data, size_t max, double deadline,
                       struct err *err)
{
	struct http_conn *c = r->conn;

	if (r->body_done || r->framing == HTTP_BODY_NONE)
		return 0;
	if (max == 0)
		max = SIZE_MAX;
	for (;;) {
		size_t have = c->end - c->start;
		size_t n;

		if (r->framing == HTTP_BODY_CHUNKED && r->chunk_state != CH_DATA) {
			const char *line = NULL;
			size_t len = 0;

			if (r->chunk_state == CH_DATA_CRLF) {
				while (c->end - c->start < 2) {
					ssize_t got = fill(c, deadline, err);

					if (got < 0)
						return body_fail(r);
					if (got == 0) {
						err_set(err, EPROTO,
						        "connection closed in a chunked body");
						return body_fail(r);
					}
				}
				if (memcmp(c->buf + c->start, "\r\n", 2) != 0) {
					err_set(err, EPROTO, "missing CRLF after chunk data");
					return body_fail(r);
				}
				c->start += 2;
				r->chunk_state = CH_SIZE;
				continue;
			}
			if (buffered_line(c, &line, &len, deadline, err) < 0)
				return body_fail(r);
			c->start += len + 2;
			if (r->chunk_state == CH_SIZE) {
				if (parse_chunk_size(line, len, &r->remaining, err) < 0)
					return body_fail(r);
				r->chunk_state = r->remaining ? CH_DATA : CH_TRAILER;
				continue;
			}
			/* CH_TRAILER: header lines up to an empty one. */
			if (len == 0) {
				r->chunk_state = CH_DONE;
				r->body_done = true;
				return 0;
			}
			if (++r->remaining > MAX_TRAILER_LINES) {
				err_set(err, EPROTO, "too many trailer lines");
				return body_fail(r);
			}
			continue;
		}
		if (have == 0) {
			ssize_t got = fill(c, deadline, err);

			if (got < 0)
				return body_fail(r);
			if (got == 0) {
				if (r->framing == HTTP_BODY_EOF) {
					r->body_done = true;
					return 0;
				}
				err_set(err, EPROTO,
				        "connection closed before the end of the body");
				return body_fail(r);
			}
			continue;
		}
		n = have < max ? have : max;
		if (r->framing != HTTP_BODY_EOF && n > r->remaining)
			n = (size_t)r->remaining;
		*data = (const uint8_t *)c->buf + c->start;
		c->start += n;
		if (r->framing != HTTP_BODY_EOF) {
			r->remaining -= n;
			if (r->remaining == 0) {
				if (r->framing == HTTP_BODY_LENGTH)
					r->body_done = true;
				else
					r->chunk_state = CH_DATA_CRLF;
			}
		}
		return (ssize_t)n;
	}
}

int http_read_body(struct http_response *r, struct strbuf *out, size_t max, double deadline,
                   struct err *err)
{
	for (;;) {
		const uint8_t *d;
		ssize_t n = http_body_next(r, &d, 0, deadline, err);

		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if (out->len + (size_t)n > max) {
			r->conn->broken = true;
			return err_set(err, EFBIG, "response body larger than %zu bytes", max);
		}
		sb_add(out, d, (size_t)n);
	}
}

int http_discard_body(struct http_response *r, double deadline, struct err *err)
{
	for (;;) {
		const uint8_t *d;
		ssize_t n = http_body_next(r, &d, 0, deadline, err);

		if (n <= 0)
			return (int)n;
	}
}

bool http_response_reusable(const struct http_response *r)
{
	return r->keep_alive && r->body_done && r->framing != HTTP_BODY_EOF && r->conn &&
	       !r->conn->broken && !r->conn->peer_closed;
}

/* ---- hijacked streams ------------------------------------------------------------------ */

ssize_t http_raw_next(struct http_conn *c, const uint8_t **data, size_t max, double deadline,
                      struct err *err)
{
	size_t have = c->end - c->start;

	if (have == 0) {
		ssize_t got = fill(c, deadline, err);

		if (got <= 0)
			return got;
		have = c->end - c->start;
	}
	if (max && have > max)
		have = max;
	*data = (const uint8_t *)c->buf + c->start;
	c->start += have;
	return (ssize_t)have;
}

ssize_t http_raw_write_some(struct http_conn *c, const void *data, size_t n, struct err *err)
{
	for (;;) {
		ssize_t w = c->tp->write(c, data, n);

		if (w >= 0)
			return w;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return err_sys(err, "write to %s", c->display);
	}
}

int http_raw_close_write(struct http_conn *c, struct err *err)
{
	if (c->tp->close_write && c->tp->close_write(c) < 0 && errno != ENOTCONN)
		return err_sys(err, "shutdown");
	return 0;
}

/* ---- helpers ------------------------------------------------------------------------- */

char *http_query_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct strbuf sb = STRBUF_INIT;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			sb_addc(&sb, (char)*p);
		} else {
			sb_addc(&sb, '%');
			sb_addc(&sb, hex[*p >> 4]);
			sb_addc(&sb, hex[*p & 15]);
		}
	}
	return sb_detach(&sb);
}

/* ---- URLs ------------------------------------------------------------------------------ */

void http_url_release(struct http_url *u)
{
	free(u->scheme);
	free(u->host);
	free(u->port);
	free(u->authority);
	free(u->target);
	memset(u, 0, sizeof(*u));
}

static int url_fail(struct http_url *u, struct err *err, const char *msg)
{
	http_url_release(u);
	return err_set(err, EINVAL, "%s", msg);
}

int http_url_parse(const char *url, const char *default_port, struct http_url *u, struct err *err)
{
	const char *sep = strstr(url, "://"), *hp, *rest;
	size_t n;
	const char *colon;

	memset(u, 0, sizeof(*u));
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return err_set(err, EINVAL, "bad character in the URL");
	if (!sep || sep == url ||
	    strspn(url, "abcdefghijklmnopqrstuvwxyz"
	                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.") != (size_t)(sep - url))
		return err_set(err, EINVAL, "not a URL (scheme://host/path)");
	u->scheme = xstrndup(url, (size_t)(sep - url));
	for (char *p = u->scheme; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	hp = sep + 3;
	n = strcspn(hp, "/?#");
	rest = hp + n;
	u->authority = xstrndup(hp, n);
	if (strchr(u->authority, '@'))
		return url_fail(u, err, "credentials in the URL are not supported");
	if (u->authority[0] == '[') {
		const char *close = strchr(u->authority, ']');

		if (!close || (close[1] && close[1] != ':'))
			return url_fail(u, err, "bad IPv6 address");
		u->host = xstrndup(u->authority + 1, (size_t)(close - u->authority - 1));
		colon = close[1] == ':' ? close + 1 : NULL;
	} else {
		colon = strrchr(u->authority, ':');
		u->host = xstrndup(u->authority,
		                   colon ? (size_t)(colon - u->authority) : strlen(u->authority));
	}
	if (!*u->host)
		return url_fail(u, err, "no host");
	u->port = xstrdup(colon && colon[1] ? colon + 1 : default_port);
	if (!*u->port || strlen(u->port) > 5 || strspn(u->port, "0123456789") != strlen(u->port) ||
	    atoi(u->port) > 65535)
		return url_fail(u, err, "bad port");
	n = strcspn(rest, "#");
	u->target = *rest == '/' ? xstrndup(rest, n) : xasprintf("/%.*s", (int)n, rest);
	return 0;
}

bool http_url_same_origin(const struct http_url *a, const struct http_url *b)
{
	return strcmp(a->scheme, b->scheme) == 0 && strcasecmp(a->host, b->host) == 0 &&
	       strcmp(a->port, b->port) == 0;
}

char *http_url_resolve(const struct http_url *base, const char *location)
{
	const char *sep = strstr(location, "://");

	if (location[0] == '/' && location[1] != '/')
		return xasprintf("%s://%s%s", base->scheme, base->authority, location);
	if (sep && sep > location &&
	    strspn(location, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.") ==
	        (size_t)(sep - location))
		return xstrdup(location);
	return NULL;
}

void http_endpoint_from_url(const struct http_url *u, struct http_endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->kind = HTTP_TCP;
	ep->host = xstrdup(u->host);
	ep->port = xstrdup(u->port);
	ep->base_path = xstrdup("");
	ep->display = xasprintf("%s://%s", u->scheme, u->authority);
	ep->tls = strcmp(u->scheme, "https") == 0;
}

/* ---- keep-alive pool -------------------------------------------------------------------- */

int http_pool_get(struct http_pool *p, const struct http_endpoint *ep, double deadline,
                  struct http_conn **out, struct err *err)
{
	for (size_t i = p->n; i-- > 0;) {
		struct http_conn *c = p->idle[i];

		if (strcmp(c->display, ep->display) != 0)
			continue;
		memmove(&p->idle[i], &p->idle[i + 1], (p->n - i - 1) * sizeof(p->idle[0]));
		p->n--;
		if (http_conn_idle_ok(c)) {
			*out = c;
			return 0;
		}
		/* EOF on an idle keep-alive connection: the server went away. */
		p->lost = true;
		http_conn_close(c);
	}
	return http_connect(ep, deadline, out, err);
}

void http_pool_put(struct http_pool *p, struct http_conn *c, const struct http_response *r)
{
	size_t same = 0, limit = p->per_endpoint ? p->per_endpoint : 1;

	for (size_t i = 0; i < p->n; i++)
		same += strcmp(p->idle[i]->display, c->display) == 0;
	if (r && http_response_reusable(r) && same < limit && p->n < HTTP_POOL_MAX)
		p->idle[p->n++] = c;
	else
		http_conn_close(c);
}

struct http_conn *http_pool_peek(const struct http_pool *p)
{
	return p->n ? p->idle[0] : NULL;
}

void http_pool_release(struct http_pool *p)
{
	for (size_t i = 0; i < p->n; i++)
		http_conn_close(p->idle[i]);
	p->n = 0;
}

/* ---- GET with redirects ----------------------------------------------------------------- */

static bool is_redirect(const struct http_response *r)
{
	return r->status >= 300 && r->status < 400 && r->status != 304 &&
	       http_header(r, "Location");
}

/* One hop: connect (or reuse), send, read the head. A kept-alive connection the
 * server closed as we used it has not seen the request: one retry on a new one. */
static int get_hop(struct http_get *g, const struct http_url *u, bool send_auth, struct err *err)
{
	_cleanup_sb_ struct strbuf auth = STRBUF_INIT;
	const char *extra[64];
	size_t n = 0;
	struct http_request req = {.method = "GET", .target = u->target, .host = u->authority};

	for (const char *const *h = g->headers; h && *h && n < ARRAY_SIZE(extra) - 3; h++)
		extra[n++] = *h;
	if (send_auth && g->authorization) {
		sb_addf(&auth, "Authorization: %s", g->authorization);
		extra[n++] = auth.buf;
	}
	if (!g->pool)
		extra[n++] = "Connection: close";
	extra[n] = NULL;
	req.headers = extra;
	for (int attempt = 0;; attempt++) {
		struct http_endpoint ep;
		bool reused;
		int rc;

		http_endpoint_from_url(u, &ep);
		if (g->tls)
			ep.tls_config = tls_config_ref(g->tls);
		rc = g->pool ? http_pool_get(g->pool, &ep, g->deadline, &g->conn, err)
		             : http_connect(&ep, g->deadline, &g->conn, err);
		http_endpoint_free(&ep);
		if (rc < 0)
			return -1;
		reused = g->conn->requests > 0;
		g->conn->idle_timeout = g->idle_timeout;
		if (http_send_request(g->conn, &req, g->deadline, err) == 0 &&
		    http_read_response(g->conn, &g->resp, false, g->deadline, err) == 0)
			return 0;
		http_conn_close(g->conn);
		g->conn = NULL;
		if (!reused || attempt > 0 || (err->code != ECONNRESET && err->code != EPIPE))
			return -1;
	}
}

/* The error of a hop, naming the URL; a deadline says how long it was. */
static int get_fail(const struct http_get *g, const char *url, struct err *err)
{
	if (err->code == ETIMEDOUT && !strstr(err->msg, "no data for"))
		return err_set(err, ETIMEDOUT, "%s: no answer within %g s", url, g->timeout);
	return err_wrap(err, "%s", url);
}

static const char *scheme_port(const char *url)
{
	return strncasecmp(url, "https://", 8) == 0 ? "443" : "80";
}

/* Whether the redirect from `current` to `next` is followed; err says why not. */
static int redirect_allowed(const struct http_get *g, int hops, const char *current,
                            const char *location, const char *next, struct err *err)
{
	if (hops >= g->redirects.max)
		return err_set(err, ELOOP, "%s: too many redirects", g->url);
	if (!next)
		return err_set(err, EPROTO, "%s: unsupported redirect to '%s'", current, location);
	if (g->redirects.check)
		return g->redirects.check(g->redirects.ctx, next, err);
	if (str_starts_with(current, "https://") && str_starts_with(next, "http://"))
		return err_set(err, EPERM, "%s: redirect from https to '%s' not followed", current,
		               next);
	if (!str_starts_with(next, "http://") && !str_starts_with(next, "https://"))
		return err_set(err, ENOTSUP, "%s: redirect to '%s' not followed", current, next);
	return 0;
}

int http_get_open(struct http_get *g, struct err *err)
{
	struct http_url origin;
	_cleanup_free_ char *current = xstrdup(g->url);

	g->conn = NULL;
	g->final_url = NULL;
	memset(&g->resp, 0, sizeof(g->resp));
	if (http_url_parse(g->url, scheme_port(g->url), &origin, err) < 0)
		return err_wrap(err, "%s", g->url);
	for (int hops = 0;; hops++) {
		struct http_url u;
		const char *location;
		char *next;

		if (http_url_parse(current, scheme_port(current), &u, err) < 0) {
			http_url_release(&origin);
			return err_wrap(err, "%s", current);
		}
		if (strcmp(u.scheme, "http") != 0 && strcmp(u.scheme, "https") != 0) {
			err_set(err, ENOTSUP, "%s: %s:// is not supported", current, u.scheme);
			http_url_release(&u);
			http_url_release(&origin);
			return -1;
		}
		g->deadline = g->timeout > 0 ? mono_now() + g->timeout : 0;
		/* Credentials go to the origin they were given for, never elsewhere. */
		if (get_hop(g, &u, http_url_same_origin(&origin, &u), err) < 0) {
			http_url_release(&u);
			http_url_release(&origin);
			return get_fail(g, current, err);
		}
		if (!is_redirect(&g->resp)) {
			http_url_release(&u);
			http_url_release(&origin);
			g->final_url = steal_ptr(&current);
			return 0;
		}
		location = http_header(&g->resp, "Location");
		next = http_url_resolve(&u, location);
		http_url_release(&u);
		if (redirect_allowed(g, hops, current, location, next, err) < 0) {
			free(next);
			http_get_close(g);
			http_url_release(&origin);
			return -1;
		}
		/* The rest of a redirect's body is read when that keeps the connection. */
		if (g->pool && http_discard_body(&g->resp, g->deadline, err) < 0)
			err_clear(err);
		http_get_close(g);
		free(current);
		current = next;
	}
}

void http_get_close(struct http_get *g)
{
	if (g->conn) {
		if (g->pool) {
			g->conn->requests++;
			http_pool_put(g->pool, g->conn, &g->resp);
		} else {
			http_conn_close(g->conn);
		}
	}
	g->conn = NULL;
	http_response_release(&g->resp);
	free(g->final_url);
	g->final_url = NULL;
}
