/* libFuzzer target: the HTTP response parser (heads, Content-Length, chunked and
 * until-EOF bodies, keep-alive sequences, hijacked raw streams) on arbitrary
 * bytes. The first byte picks how the bytes arrive (all at once, or a few per
 * read) so that buffer boundaries fall everywhere. The bytes are also parsed as
 * a URL and as a redirect's Location against it. */
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/http.h"
#include "rollout/timeutil.h"

#include "rollout/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_INPUT (64 * 1024) /* stays below a socket buffer: no writer needed */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_endpoint ep = {.kind = HTTP_UNIX, .display = "fuzz"};
	static const size_t reads[] = {0, 1, 2, 3, 7, 16, 512};
	struct http_conn *c;
	int sv[2];

	if (size < 1 || size > MAX_INPUT)
		return 0;
	{
		char *s = xstrndup((const char *)data + 1, size - 1);
		struct http_url u;
		struct err err = {0};

		if (http_url_parse(s, "80", &u, &err) == 0) {
			char *next = http_url_resolve(&u, "/r");

			if (!*u.host || !*u.port || u.target[0] != '/' || !next)
				abort();
			free(next);
			http_url_release(&u);
		}
		free(s);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if (write_all(sv[1], data + 1, size - 1) < 0)
		abort();
	close(sv[1]);
	c = http_conn_from_fd(sv[0], &ep);
	c->max_read = reads[data[0] % (sizeof(reads) / sizeof(reads[0]))];
	for (int i = 0; i < 4; i++) {
		struct http_response r;
		struct err err = {0};
		const uint8_t *d;
		ssize_t n;
		bool head = data[0] & 0x80;

		if (http_read_response(c, &r, head, mono_now() + 5, &err) < 0)
			break;
		if (http_header(&r, "Content-Type") && strlen(r.reason) > 1 << 20)
			abort(); /* bounded by HTTP_MAX_HEADER_BYTES */
		if (r.status == 101) {
			while ((n = http_raw_next(c, &d, 0, mono_now() + 5, &err)) > 0)
				;
			http_response_release(&r);
			break;
		}
		while ((n = http_body_next(&r, &d, 1000, mono_now() + 5, &err)) > 0)
			if (n > 1000)
				abort();
		if (n < 0 || !http_response_reusable(&r)) {
			http_response_release(&r);
			break;
		}
		http_response_release(&r);
	}
	http_conn_close(c);
	return 0;
}
