/* Docker Engine API client: DOCKER_HOST, /_ping negotiation, pooled JSON calls. */
#include "providers/docker/api.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"
#include "rollout/tls.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_SOCKET "/var/run/docker.sock"
#define MAX_JSON_RESPONSE (64u << 20)
#define PING_TIMEOUT 30.0

/* TLS to the daemon as the docker CLI does it: DOCKER_CERT_PATH (default
 * ~/.docker) holds ca.pem, trusted alone (the daemon's own CA, not the
 * system's), and cert.pem + key.pem, the client certificate --tlsverify daemons
 * require. Files that are missing are left out. */
static int docker_endpoint_tls(struct http_endpoint *ep, struct err *err)
{
	const char *dir = getenv("DOCKER_CERT_PATH");
	const char *home = getenv("HOME");
	_cleanup_free_ char *def = xasprintf("%s/.docker", home && *home ? home : "");
	_cleanup_free_ char *ca = NULL, *cert = NULL, *key = NULL;
	struct tls_options o = {0};
	struct stat st;

	if (!dir || !*dir)
		dir = def;
	ca = xasprintf("%s/ca.pem", dir);
	cert = xasprintf("%s/cert.pem", dir);
	key = xasprintf("%s/key.pem", dir);
	if (stat(ca, &st) == 0)
		o.ca_file = ca;
	if (stat(cert, &st) == 0 && stat(key, &st) == 0) {
		o.cert_file = cert;
		o.key_file = key;
	}
	ep->tls = true;
	return tls_config_new(&o, &ep->tls_config, err);
}

int docker_endpoint_parse(const char *host, struct http_endpoint *ep, struct err *err)
{
	const char *rest;
	const char *tls = getenv("DOCKER_TLS_VERIFY");

	memset(ep, 0, sizeof(*ep));
	if (!host || !*host || strcmp(host, "unix://") == 0)
		host = "unix://" DEFAULT_SOCKET;
	if (str_starts_with(host, "unix://") || host[0] == '/') {
		ep->kind = HTTP_UNIX;
		ep->path = xstrdup(host[0] == '/' ? host : host + 7);
		ep->base_path = xstrdup("");
		ep->display = xasprintf("unix://%s", ep->path);
		return 0;
	}
	if (str_starts_with(host, "ssh://"))
		return err_set(err, ENOTSUP,
		               "DOCKER_HOST=%s: ssh:// is not supported; forward the remote socket "
		               "(ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock HOST) and set "
		               "DOCKER_HOST=unix:///tmp/docker.sock",
		               host);
	if (str_starts_with(host, "tcp://"))
		rest = host + 6;
	else if (str_starts_with(host, "http://"))
		rest = host + 7;
	else if (str_starts_with(host, "https://"))
		rest = host + 8;
	else
		return err_set(
		    err, ENOTSUP,
		    "DOCKER_HOST=%s: unsupported scheme (use unix:///path or tcp://host:port)",
		    host);
	{
		_cleanup_free_ char *url = xasprintf("tcp://%s", rest);
		struct http_url u;
		size_t n;

		bool use_tls = (tls && *tls) || str_starts_with(host, "https://");

		if (http_url_parse(url, use_tls ? "2376" : "2375", &u, err) < 0)
			return err_wrap(err, "DOCKER_HOST=%s", host);
		ep->kind = HTTP_TCP;
		ep->host = steal_ptr(&u.host);
		ep->port = steal_ptr(&u.port);
		ep->base_path = xstrdup(strcmp(u.target, "/") != 0 ? u.target : "");
		http_url_release(&u);
		n = strlen(ep->base_path);
		if (n && ep->base_path[n - 1] == '/')
			ep->base_path[n - 1] = '\0';
		ep->display = xasprintf("tcp://%s:%s%s", ep->host, ep->port, ep->base_path);
		if (use_tls && docker_endpoint_tls(ep, err) < 0) {
			err_wrap(err, "DOCKER_HOST=%s", host);
			http_endpoint_free(ep);
			return -1;
		}
	}
	return 0;
}

/* What to tell a user who cannot reach the daemon. */
static int connect_error(const struct http_endpoint *ep, struct err *err)
{
	struct stat st;

	if (ep->kind == HTTP_TCP) {
		if (err->code == ECONNREFUSED)
			return err_set(
			    err, ECONNREFUSED,
			    "cannot connect to the Docker daemon at %s: connection refused "
			    "(is it listening there?)",
			    ep->display);
		return err_wrap(err, "cannot connect to the Docker daemon at %s", ep->display);
	}
	switch (err->code) {
	case ENOENT:
		return err_set(err, ENOENT,
		               "Docker socket %s does not exist: is the Docker daemon running? "
		               "(DOCKER_HOST selects another daemon)",
		               ep->path);
	case EACCES:
	case EPERM: {
		struct group *g = stat(ep->path, &st) == 0 ? getgrgid(st.st_gid) : NULL;

		if (g)
			return err_set(err, EACCES,
			               "permission denied on the Docker socket %s: run rollout as "
			               "root or as a member of the '%s' group",
			               ep->path, g->gr_name);
		return err_set(err, EACCES,
		               "permission denied on the Docker socket %s: run rollout as root or "
		               "as a member of the group that owns it",
		               ep->path);
	}
	case ECONNREFUSED:
		return err_set(err, ECONNREFUSED,
		               "nothing is listening on the Docker socket %s: the Docker daemon is "
		               "not running (or is restarting)",
		               ep->path);
	case ENOTSOCK:
		return err_set(err, ENOTSOCK, "%s is not a socket (DOCKER_HOST)", ep->path);
	default:
		return err_wrap(err, "cannot connect to the Docker daemon at %s", ep->display);
	}
}

static int client_connect(struct docker_client *c, double deadline, struct http_conn **out,
                          struct err *err)
{
	if (http_connect(&c->ep, deadline, out, err) < 0)
		return connect_error(&c->ep, err);
	return 0;
}

static int parse_version(const char *s, int *major, int *minor)
{
	char *end;
	long a, b;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	a = strtol(s, &end, 10);
	if (*end != '.' || !isdigit((unsigned char)end[1]))
		return -1;
	b = strtol(end + 1, &end, 10);
	if (*end || a > 100 || b > 1000)
		return -1;
	*major = (int)a;
	*minor = (int)b;
	return 0;
}

static int version_cmp(int a1, int b1, int a2, int b2)
{
	return a1 != a2 ? a1 - a2 : b1 - b2;
}

int docker_status_errno(int status)
{
	switch (status) {
	case 400:
		return EINVAL;
	case 401:
	case 403:
		return EACCES;
	case 404:
		return ENOENT;
	case 409:
		return EEXIST;
	default:
		return EIO;
	}
}

char *docker_error_message(const char *body, size_t len)
{
	cJSON *v = len ? cJSON_ParseWithLength(body, len) : NULL;
	const char *m = v ? json_get_str(v, "message") : NULL;
	char *out;

	if (m) {
		out = xstrdup(m);
	} else {
		out = xstrndup(body, len);
		for (char *p = out; *p; p++)
			if ((unsigned char)*p < 0x20)
				*p = ' ';
	}
	if (v)
		cJSON_Delete(v);
	/* trim */
	{
		size_t n = strlen(out);

		while (n && isspace((unsigned char)out[n - 1]))
			out[--n] = '\0';
	}
	if (!*out) {
		free(out);
		out = xstrdup("(no message)");
	}
	return out;
}

int docker_response_error(struct http_response *r, double deadline, struct err *err)
{
	_cleanup_sb_ struct strbuf body = STRBUF_INIT;
	_cleanup_free_ char *msg = NULL;
	struct err ignored = {0};

	if (r->framing != HTTP_BODY_NONE)
		http_read_body(r, &body, 1 << 20, deadline, &ignored);
	msg = docker_error_message(sb_str(&body), body.len);
	return err_set(err, docker_status_errno(r->status), "%s", msg);
}

char *docker_path(const struct docker_client *c, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	sb_adds(&sb, c->prefix);
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	return sb_detach(&sb);
}

/* Take the pooled connection when it is still good, else a new one. */
static int get_conn(struct docker_client *c, double deadline, struct http_conn **out,
                    struct err *err)
{
	if (http_pool_get(&c->pool, &c->ep, deadline, out, err) < 0)
		return connect_error(&c->ep, err);
	return 0;
}

static void put_conn(struct docker_client *c, struct http_conn *conn, const struct http_response *r)
{
	http_pool_put(&c->pool, conn, r);
}

/* A path for messages: without the version prefix. */
static const char *short_path(const struct docker_client *c, const char *path)
{
	return str_starts_with(path, c->prefix) ? path + strlen(c->prefix) : path;
}

int docker_call(struct docker_client *c, const char *method, const char *path, const cJSON *body,
                cJSON **out, int *status, struct err *err)
{
	_cleanup_free_ char *json = body ? cJSON_PrintUnformatted(body) : NULL;
	double deadline = mono_now() + c->call_timeout;
	struct http_request req = {.method = method,
	                           .target = path,
	                           .host = c->host_header,
	                           .content_type = "application/json",
	                           .body = json,
	                           .body_len = json ? strlen(json) : 0};
	bool head = strcmp(method, "HEAD") == 0;

	if (out)
		*out = NULL;
	if (status)
		*status = 0;
	for (int attempt = 0;; attempt++) {
		struct http_conn *conn = NULL;
		struct http_response r;
		_cleanup_sb_ struct strbuf resp = STRBUF_INIT;
		bool reused;

		if (get_conn(c, deadline, &conn, err) < 0)
			return err_wrap(err, "%s %s", method, short_path(c, path));
		reused = conn->requests > 0;
		if (http_send_request(conn, &req, deadline, err) < 0 ||
		    http_read_response(conn, &r, head, deadline, err) < 0) {
			int code = err->code;

			http_conn_close(conn);
			/* The daemon closed a kept-alive connection as we used it: it has not
			 * seen the request; try once on a new connection. */
			if (reused && attempt == 0 && (code == ECONNRESET || code == EPIPE)) {
				c->pool.lost = true;
				continue;
			}
			return err_wrap(err, "%s %s", method, short_path(c, path));
		}
		if (status)
			*status = r.status;
		if (r.status < 200 || r.status >= 300) {
			docker_response_error(&r, deadline, err);
			conn->requests++;
			put_conn(c, conn, &r);
			http_response_release(&r);
			return -1;
		}
		if (http_read_body(&r, &resp, MAX_JSON_RESPONSE, deadline, err) < 0) {
			http_response_release(&r);
			http_conn_close(conn);
			return err_wrap(err, "%s %s", method, short_path(c, path));
		}
		conn->requests++;
		put_conn(c, conn, &r);
		http_response_release(&r);
		if (out && resp.len > 0) {
			*out = cJSON_ParseWithLength(resp.buf, resp.len);
			if (!*out)
				return err_set(err, EPROTO,
				               "%s %s: invalid JSON in the daemon's answer", method,
				               short_path(c, path));
		}
		return 0;
	}
}

int docker_stream_open(struct docker_client *c, const struct http_request *req, double deadline,
                       struct http_conn **out, struct err *err)
{
	struct http_conn *conn = NULL;
	struct http_request r = *req;

	if (!r.host)
		r.host = c->host_header;
	if (client_connect(c, deadline, &conn, err) < 0)
		return -1;
	if (http_send_request(conn, &r, deadline, err) < 0) {
		http_conn_close(conn);
		return -1;
	}
	*out = conn;
	return 0;
}

static int negotiate(struct docker_client *c, struct err *err)
{
	double deadline = mono_now() + PING_TIMEOUT;
	struct http_conn *conn = NULL;
	struct http_response r;
	struct http_request req = {.method = "GET", .target = NULL, .host = c->host_header};
	_cleanup_free_ char *target = xasprintf("%s/_ping", c->ep.base_path);
	const char *v, *pin = getenv("DOCKER_API_VERSION");
	int major = 0, minor = 0;

	req.target = target;
	if (client_connect(c, deadline, &conn, err) < 0)
		return -1;
	if (http_send_request(conn, &req, deadline, err) < 0 ||
	    http_read_response(conn, &r, false, deadline, err) < 0) {
		http_conn_close(conn);
		return err_wrap(err, "Docker daemon at %s did not answer /_ping", c->ep.display);
	}
	if (r.status != 200) {
		docker_response_error(&r, deadline, err);
		http_response_release(&r);
		http_conn_close(conn);
		return err_wrap(err, "Docker daemon at %s: /_ping", c->ep.display);
	}
	v = http_header(&r, "Api-Version");
	if (v && parse_version(v, &major, &minor) == 0) {
		c->server_major = major;
		c->server_minor = minor;
	} else {
		c->server_major = DOCKER_API_MIN_MAJOR;
		c->server_minor = DOCKER_API_MIN_MINOR;
	}
	v = http_header(&r, "Builder-Version");
	c->builder_v2 = v && strcmp(v, "2") == 0;
	v = http_header(&r, "Server");
	c->server = xstrdup(v ? v : "Docker");
	if (http_discard_body(&r, deadline, err) == 0)
		conn->requests++;
	put_conn(c, conn, &r);
	http_response_release(&r);

	if (version_cmp(c->server_major, c->server_minor, DOCKER_API_MIN_MAJOR,
	                DOCKER_API_MIN_MINOR) < 0)
		return err_set(err, ENOTSUP,
		               "the Docker daemon at %s is too old: it speaks API %d.%d, rollout "
		               "needs %d.%d or newer (Docker 19.03+)",
		               c->ep.display, c->server_major, c->server_minor,
		               DOCKER_API_MIN_MAJOR, DOCKER_API_MIN_MINOR);
	if (pin && *pin) {
		if (parse_version(pin, &c->api_major, &c->api_minor) < 0)
			return err_set(err, EINVAL, "DOCKER_API_VERSION=%s: expected MAJOR.MINOR",
			               pin);
	} else if (version_cmp(c->server_major, c->server_minor, DOCKER_API_MAX_MAJOR,
	                       DOCKER_API_MAX_MINOR) < 0) {
		c->api_major = c->server_major;
		c->api_minor = c->server_minor;
	} else {
		c->api_major = DOCKER_API_MAX_MAJOR;
		c->api_minor = DOCKER_API_MAX_MINOR;
	}
	snprintf(c->prefix, sizeof(c->prefix), "%.40s/v%d.%d", c->ep.base_path, c->api_major,
	         c->api_minor);
	return 0;
}

int docker_client_open(struct docker_client **out, struct err *err)
{
	struct docker_client *c = xcalloc(1, sizeof(*c));

	c->call_timeout = DOCKER_CALL_TIMEOUT;
	if (docker_endpoint_parse(getenv("DOCKER_HOST"), &c->ep, err) < 0) {
		free(c);
		return -1;
	}
	if (c->ep.kind == HTTP_TCP)
		snprintf(c->host_header, sizeof(c->host_header), "%.250s:%.20s", c->ep.host,
		         c->ep.port);
	else
		snprintf(c->host_header, sizeof(c->host_header), "docker");
	if (negotiate(c, err) < 0) {
		docker_client_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

void docker_client_free(struct docker_client *c)
{
	if (!c)
		return;
	http_pool_release(&c->pool);
	http_endpoint_free(&c->ep);
	free(c->server);
	free(c);
}

void cleanup_docker_clientp(struct docker_client **c)
{
	docker_client_free(*c);
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

char *docker_base64_decode(const char *in, size_t *len)
{
	struct strbuf sb = STRBUF_INIT;
	unsigned acc = 0;
	int bits = 0;

	for (const char *p = in; *p && *p != '='; p++) {
		int v = b64_value(*p);

		if (v < 0) {
			sb_release(&sb);
			return NULL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			sb_addc(&sb, (char)((acc >> bits) & 0xff));
		}
	}
	*len = sb.len;
	return sb_detach(&sb);
}
