/* Docker Engine API client: endpoint from DOCKER_HOST, version negotiation via
 * /_ping, JSON calls on one kept-alive connection, dedicated connections for
 * streams, and daemon errors turned into messages a user can act on. */
#ifndef ROLLOUT_DOCKER_API_H
#define ROLLOUT_DOCKER_API_H

#include "rollout/http.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

struct err;

/* Oldest daemon API rollout speaks (Docker 19.03), and the newest whose changes
 * it was checked against (Docker 28.3-28.5, see docs/DOCKER.md). A daemon newer
 * than that is spoken to at this version; new daemons accept it (29.0-29.2
 * require at least 1.44). */
#define DOCKER_API_MIN_MAJOR 1
#define DOCKER_API_MIN_MINOR 40
#define DOCKER_API_MAX_MAJOR 1
#define DOCKER_API_MAX_MINOR 51

/* Default time a JSON call may take (container create/start/remove under load). */
#define DOCKER_CALL_TIMEOUT 300.0

struct docker_client {
	struct http_endpoint ep;
	char host_header[300];
	int api_major, api_minor; /* negotiated */
	char prefix[64];          /* "<base>/v1.41" */
	int server_major, server_minor;
	bool builder_v2;       /* the daemon recommends BuildKit (/_ping Builder-Version) */
	char *server;          /* Server header of /_ping, for messages */
	struct http_pool pool; /* one kept-alive connection for JSON calls; pool.lost: a
	                        * pooled connection was found dead (daemon restart?) */
	double call_timeout;
};

/* Parse a DOCKER_HOST value (NULL or "" = the default unix socket). unix://,
 * tcp:// (http://) and, with DOCKER_TLS_VERIFY set (or https://), tcp:// over
 * TLS (port 2376 by default) with DOCKER_CERT_PATH's ca.pem as the only CA and
 * its cert.pem/key.pem as the client certificate. ssh:// and npipe:// are
 * refused with a message saying what to do instead. */
int docker_endpoint_parse(const char *docker_host, struct http_endpoint *ep, struct err *err);

/* Connect to the daemon named by DOCKER_HOST and negotiate the API version:
 * min(daemon's, DOCKER_API_MAX), or DOCKER_API_VERSION when set. */
int docker_client_open(struct docker_client **out, struct err *err);
void docker_client_free(struct docker_client *c);
void cleanup_docker_clientp(struct docker_client **c);
#define _cleanup_docker_client_ __attribute__((cleanup(cleanup_docker_clientp)))

/* "<prefix><formatted path>": every request path goes through this. */
char *docker_path(const struct docker_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A JSON call on the pooled connection. body may be NULL. On a 2xx answer returns
 * 0 and *out (when out is not NULL) holds the parsed body (NULL when empty).
 * Otherwise -1; *status (when not NULL) is the HTTP status, or 0 when no answer
 * came; err carries the daemon's message with errno ENOENT (404), EEXIST (409),
 * EINVAL (400), EACCES (401/403) or EIO. */
int docker_call(struct docker_client *c, const char *method, const char *path, const cJSON *body,
                cJSON **out, int *status, struct err *err);

/* A request on a new connection of its own (streams, hijacks, uploads): the head
 * (and a complete body, when given) is sent. */
int docker_stream_open(struct docker_client *c, const struct http_request *req, double deadline,
                       struct http_conn **out, struct err *err);

/* For a non-2xx response: read the body and fill err with the daemon's message
 * ({"message":...} or plain text). Always returns -1. */
int docker_response_error(struct http_response *r, double deadline, struct err *err);

/* errno for an HTTP status (see docker_call). */
int docker_status_errno(int status);

/* The daemon's message from an error body (JSON "message" or text), trimmed. */
char *docker_error_message(const char *body, size_t len);

/* Standard or URL-safe base64, padding optional; NULL on bad input. */
char *docker_base64_decode(const char *in, size_t *len);

#endif
