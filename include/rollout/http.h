/* rollout's one HTTP/1.1 client (util/http.c): the Docker Engine API (AF_UNIX or
 * tcp://) and registry.json downloads use it, and so will registry pulls.
 *
 * Layers, bottom up:
 *   - URLs: http_url_parse() is the one place a URL is taken apart.
 *   - Transports: a connection reads and writes through a `struct http_transport`
 *     (socket ops for AF_UNIX and TCP today). A TLS transport is another table of
 *     ops over the same fd, installed on a connected conn by
 *     http_conn_set_transport() (after a proxy's CONNECT, when there is one).
 *   - Messages: requests written, responses parsed with bounded heads; bodies
 *     framed by Content-Length, chunked or the close of the connection, streamed
 *     both ways; connection hijacking (101/200 answers whose raw stream follows).
 *   - Reuse: a pool of idle kept-alive connections per endpoint (http_pool_*).
 *   - Fetching: http_get_open() follows redirects under a policy and never sends
 *     Authorization to another origin.
 *
 * Every wait is a poll() bounded by an absolute deadline on the monotonic clock
 * (0 = none) and by the connection's idle timeout (no byte moved for that long);
 * waits return ETIMEDOUT past them and ECANCELED once cancel_requested(). Parsing
 * is bounded: oversized headers, malformed lines, bad chunk sizes and early EOF
 * are errors. */
#ifndef ROLLOUT_HTTP_H
#define ROLLOUT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct err;
struct strbuf;
struct tls_config;

#define HTTP_MAX_HEADER_BYTES (64 * 1024) /* status line + headers */
#define HTTP_MAX_HEADERS 128
#define HTTP_MAX_CHUNK_LINE 1024 /* "hex-size;extensions\r\n" and trailer lines */

/* ---- URLs ---------------------------------------------------------------------------- */

/* scheme://[host][:port][/path][?query][#fragment], the scheme lowercased; no
 * credentials. IPv6 literals in brackets. */
struct http_url {
	char *scheme;    /* "http", "tcp", ... */
	char *host;      /* without brackets; not empty */
	char *port;      /* digits: as written, else the default given to the parser */
	char *authority; /* host[:port] as written (brackets kept): the Host header */
	char *target;    /* path and query, "/" at least; the fragment dropped */
};

/* Parse url; default_port is used when none is written. Errors (EINVAL) are
 * short ("bad port", "no host", ...): the caller says which URL. */
int http_url_parse(const char *url, const char *default_port, struct http_url *u, struct err *err);
void http_url_release(struct http_url *u);
/* Same scheme, host and port: where credentials may go. */
bool http_url_same_origin(const struct http_url *a, const struct http_url *b);
/* A Location header against the URL that answered: an absolute URL or an
 * absolute path. NULL for anything else. */
char *http_url_resolve(const struct http_url *base, const char *location);

/* ---- endpoints and connections ----------------------------------------------------- */

enum http_endpoint_kind { HTTP_UNIX, HTTP_TCP };

struct http_endpoint {
	enum http_endpoint_kind kind;
	char *path;      /* unix socket path */
	char *host;      /* tcp host (name or address) */
	char *port;      /* tcp port */
	char *base_path; /* tcp://host:port/base: prefix of every request path ("" if none) */
	char *display;   /* for messages: "unix:///var/run/docker.sock"; also the pool key */
	bool tls;        /* TLS over the TCP connection (https://, DOCKER_TLS_VERIFY) */
	/* The TLS configuration (a reference, released with the endpoint); NULL
	 * uses tls_config_default(): the system's CAs, no client certificate. */
	struct tls_config *tls_config;
};

/* A TCP endpoint for a parsed URL (display "scheme://authority"); https:// is
 * TLS with the default configuration. */
void http_endpoint_from_url(const struct http_url *u, struct http_endpoint *ep);
void http_endpoint_free(struct http_endpoint *ep);

struct http_conn;

/* How bytes move on a connection. All calls are non-blocking: they return the
 * count, 0 at EOF (read), or -1 with errno; EAGAIN sets c->want to the poll
 * events to wait for (a TLS transport may need to write in order to read).
 * After a write's EAGAIN the next write starts with the same unsent bytes (a
 * TLS record is already sealed around them). */
struct http_transport {
	const char *name; /* "socket", later "tls" */
	ssize_t (*read)(struct http_conn *c, void *buf, size_t n);
	ssize_t (*write)(struct http_conn *c, const void *buf, size_t n);
	/* Bytes readable without waiting on the fd (decrypted, not yet returned);
	 * NULL = none ever. */
	size_t (*pending)(const struct http_conn *c);
	/* The peer sees EOF on its input (a hijacked exec's stdin). */
	int (*close_write)(struct http_conn *c);
	/* Release transport state; the conn closes the fd afterwards. May be NULL. */
	void (*close)(struct http_conn *c);
};

/* Plain socket I/O (AF_UNIX and TCP). */
extern const struct http_transport http_socket_transport;

struct http_conn {
	int fd;
	char *display; /* the endpoint, for messages and as the pool's key */
	const struct http_transport *tp;
	void *tp_data; /* the transport's state (TLS context) */
	short want;    /* poll events the transport waits for after EAGAIN */
	char *buf;     /* received, not yet consumed bytes: buf[start..end) */
	size_t start, end, cap;
	unsigned requests;   /* responses completed on this connection */
	bool broken;         /* an error left the stream in an unknown state */
	bool peer_closed;    /* EOF seen */
	size_t max_read;     /* tests: cap on one read() (0 = buffer size) */
	double idle_timeout; /* seconds without a byte moved before ETIMEDOUT (0 = none) */
};

/* Connect with a deadline (the TLS handshake included when ep->tls). Errors
 * say what went wrong with the socket: missing, permission denied, refused,
 * unreachable; or with the TLS handshake (include/rollout/tls.h). */
int http_connect(const struct http_endpoint *ep, double deadline, struct http_conn **out,
                 struct err *err);
/* Wrap a connected fd (tests, fuzzing) with the socket transport. The conn owns fd. */
struct http_conn *http_conn_from_fd(int fd, const struct http_endpoint *ep);
/* Replace the transport of a connected conn (TLS after connect or CONNECT). The
 * previous transport's state must already be handed over or released. */
void http_conn_set_transport(struct http_conn *c, const struct http_transport *tp, void *data);
void http_conn_close(struct http_conn *c);
void cleanup_http_connp(struct http_conn **c);
#define _cleanup_http_conn_ __attribute__((cleanup(cleanup_http_connp)))

/* True when an idle kept-alive connection can still be used: nothing readable
 * (neither stray bytes nor EOF) and no error. */
bool http_conn_idle_ok(struct http_conn *c);

struct http_request {
	const char *method;
	const char *target;         /* path and query, already escaped */
	const char *host;           /* Host header; "docker" when NULL */
	const char *const *headers; /* extra "Name: value" lines; NULL-terminated; may be NULL */
	const char *content_type;   /* sent when there is a body */
	const void *body;           /* a complete body (Content-Length) ... */
	size_t body_len;
	bool chunked; /* ... or a streamed one: http_write_body() then http_finish_body() */
	bool upgrade; /* hijack: "Connection: Upgrade", "Upgrade: tcp" */
};

/* Write the request head (and a complete body when given). */
int http_send_request(struct http_conn *c, const struct http_request *req, double deadline,
                      struct err *err);

/* While a streamed request body is written, the peer may answer at the same time
 * (a build streams progress while it reads its context). Bytes that arrive are
 * buffered, up to this many, so that neither side blocks on the other. */
#define HTTP_MAX_EARLY_RESPONSE (64u << 20)

/* One chunk of a chunked request body (n = 0 is ignored). */
int http_write_body(struct http_conn *c, const void *data, size_t n, double deadline,
                    struct err *err);
/* The last chunk. */
int http_finish_body(struct http_conn *c, double deadline, struct err *err);

struct http_header {
	char *name;
	char *value;
};

enum http_framing {
	HTTP_BODY_NONE,    /* 1xx/101, 204, 304, HEAD */
	HTTP_BODY_LENGTH,  /* Content-Length */
	HTTP_BODY_CHUNKED, /* Transfer-Encoding: chunked */
	HTTP_BODY_EOF,     /* neither: until the server closes (raw hijacked streams too) */
};

struct http_response {
	int status;
	int minor_version; /* HTTP/1.x */
	char *reason;
	struct http_header *headers;
	size_t n_headers;
	enum http_framing framing;
	bool keep_alive; /* the connection may carry another request after the body */

	/* body reader state */
	struct http_conn *conn;
	uint64_t remaining; /* LENGTH: bytes left; CHUNKED: left in the current chunk */
	int chunk_state;
	bool body_done;
};

void http_response_release(struct http_response *r);

/* Read the status line and headers. 1xx answers other than 101 are skipped.
 * head: the request was HEAD (no body whatever the headers say). */
int http_read_response(struct http_conn *c, struct http_response *r, bool head, double deadline,
                       struct err *err);
/* Case-insensitive header lookup; the first one wins. NULL when absent. */
const char *http_header(const struct http_response *r, const char *name);

/* Next piece of the body, without copying: *data points into the connection's
 * buffer and stays valid until the next call on the connection. Returns the
 * length (at most max), 0 at the end of the body, negative on error. */
ssize_t http_body_next(struct http_response *r, const uint8_t **data, size_t max, double deadline,
                       struct err *err);
/* The whole body into out; more than max bytes is an error (EFBIG). */
int http_read_body(struct http_response *r, struct strbuf *out, size_t max, double deadline,
                   struct err *err);
/* Read and drop the rest of the body (so the connection can be reused). */
int http_discard_body(struct http_response *r, double deadline, struct err *err);
/* The body is consumed and the server allows keep-alive: the connection is
 * ready for the next request. */
bool http_response_reusable(const struct http_response *r);

/* Hijacked streams: after a 101 (or a raw 200), bytes are read as they come.
 * Buffered bytes that followed the headers are returned first. Returns the
 * length, 0 at EOF, negative on error; with deadline 0 it waits forever. */
ssize_t http_raw_next(struct http_conn *c, const uint8_t **data, size_t max, double deadline,
                      struct err *err);
/* Bytes readable without waiting: buffered here or in the transport. A caller
 * that polls http_conn_fd() itself checks this first. */
size_t http_conn_buffered(const struct http_conn *c);
/* The socket under the transport, for a caller's own poll(). */
int http_conn_fd(const struct http_conn *c);
/* Write what the socket takes now without blocking (hijacked stdin): returns
 * the count (0 when it is full), negative on error. */
ssize_t http_raw_write_some(struct http_conn *c, const void *data, size_t n, struct err *err);
/* Half-close: the peer sees EOF on its input (stdin of a hijacked exec). */
int http_raw_close_write(struct http_conn *c, struct err *err);

/* Cleanup that must happen even after a cancellation (killing a command,
 * removing a container) runs between http_cancel_hold() and
 * http_cancel_release(): waits then only end at their deadlines. Nests. */
void http_cancel_hold(void);
void http_cancel_release(void);
/* cancel_requested(), unless held. */
bool http_cancel_pending(void);

/* Wait until fd is ready for events (POLLIN/POLLOUT) with the deadline and
 * cancellation rules above. Returns 0, or -1 with ETIMEDOUT/ECANCELED/errno. */
int http_wait_fd(int fd, short events, double deadline, const char *what, struct err *err);

/* Percent-encode a query value (everything but unreserved characters). */
char *http_query_escape(const char *s);

/* ---- keep-alive pool ------------------------------------------------------------------ */

#define HTTP_POOL_MAX 8

/* Idle kept-alive connections, by endpoint (its display string). */
struct http_pool {
	struct http_conn *idle[HTTP_POOL_MAX];
	size_t n;
	size_t per_endpoint; /* idle connections kept per endpoint (0 = 1) */
	bool lost;           /* an idle connection was found dead (the server restarted?) */
};

/* An idle connection to ep that is still good (c->requests > 0), else a new one. */
int http_pool_get(struct http_pool *p, const struct http_endpoint *ep, double deadline,
                  struct http_conn **out, struct err *err);
/* Keep c when r allows reuse and there is room, else close it. c must be a
 * connection to the endpoint it was got for. */
void http_pool_put(struct http_pool *p, struct http_conn *c, const struct http_response *r);
/* The first idle connection (tests). */
struct http_conn *http_pool_peek(const struct http_pool *p);
void http_pool_release(struct http_pool *p);

/* ---- GET with redirects ------------------------------------------------------------- */

struct http_redirect_policy {
	int max; /* hops followed; one more is ELOOP "too many redirects" */
	/* Veto a hop (to: the resolved absolute URL): return -1 with err set. NULL
	 * allows http:// and https:// targets, but never https:// to http://. */
	int (*check)(void *ctx, const char *to, struct err *err);
	void *ctx;
};

/* One GET whose 3xx answers (other than 304) with a Location are followed. On
 * success the final answer's head is read (any status) and its body is read
 * from resp with deadline. */
struct http_get {
	/* in */
	const char *url;
	const char *const *headers; /* extra "Name: value" lines sent on every hop */
	const char *authorization;  /* Authorization value, sent to url's origin only */
	double timeout;             /* per hop, from connect to the end of the body */
	double idle_timeout;        /* see struct http_conn (0 = none) */
	struct http_redirect_policy redirects;
	struct http_pool *pool; /* keep-alive reuse; NULL: "Connection: close" */
	struct tls_config *tls; /* for https:// hops; NULL: tls_config_default() */
	/* out */
	char *final_url;
	struct http_conn *conn;
	struct http_response resp;
	double deadline; /* for reading resp's body */
};

/* Errors name the URL: "URL: no answer within 30 s", "URL: too many redirects". */
int http_get_open(struct http_get *g, struct err *err);
/* Release the answer; its connection goes back to the pool when reusable. */
void http_get_close(struct http_get *g);

#endif
