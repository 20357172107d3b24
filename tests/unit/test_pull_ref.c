/* Image references for registry pulls (src/image/pull.c): Docker Hub defaults,
 * domains, ports, tags and digests, and what is refused. */
#include "harness.h"
#include "image/pull.h"
#include "rollout/err.h"

#include <stdlib.h>
#include <string.h>

static void parses(const char *in, const char *api, const char *path, const char *tag,
                   const char *canonical)
{
	struct pull_ref r;
	struct err err = {0};

	if (pull_ref_parse(in, &r, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s: %s", in, err.msg);
	CHECK_STR(r.api_host, api);
	CHECK_STR(r.path, path);
	if (tag)
		CHECK_STR(r.tag, tag);
	else
		CHECK(r.tag == NULL);
	CHECK_STR(r.canonical, canonical);
	pull_ref_release(&r);
}

static void refused(const char *in)
{
	struct pull_ref r;
	struct err err = {0};

	CHECK(pull_ref_parse(in, &r, &err) < 0);
	CHECK_CONTAINS(err.msg, "invalid image reference");
}

TEST(pull_ref_docker_hub)
{
	parses("ubuntu", "registry-1.docker.io", "library/ubuntu", "latest",
	       "docker.io/library/ubuntu:latest");
	parses("ubuntu:22.04", "registry-1.docker.io", "library/ubuntu", "22.04",
	       "docker.io/library/ubuntu:22.04");
	/* "registry" has no '.' or ':': a Hub user, not a host. */
	parses("registry/app:1", "registry-1.docker.io", "registry/app", "1",
	       "docker.io/registry/app:1");
	parses("index.docker.io/library/alpine", "registry-1.docker.io", "library/alpine", "latest",
	       "docker.io/library/alpine:latest");
	parses("docker.io/alpine", "registry-1.docker.io", "library/alpine", "latest",
	       "docker.io/library/alpine:latest");
}

TEST(pull_ref_hosts)
{
	const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char buf[256];

	parses("localhost/x", "localhost", "x", "latest", "localhost/x:latest");
	parses("localhost:5000/a/b:v1.2", "localhost:5000", "a/b", "v1.2",
	       "localhost:5000/a/b:v1.2");
	parses("127.0.0.1:5000/test/bb", "127.0.0.1:5000", "test/bb", "latest",
	       "127.0.0.1:5000/test/bb:latest");
	parses("ghcr.io/org/img-name__x.y:tag_1", "ghcr.io", "org/img-name__x.y", "tag_1",
	       "ghcr.io/org/img-name__x.y:tag_1");
	snprintf(buf, sizeof(buf), "reg.example:443/x@%s", d);
	parses(buf, "reg.example:443", "x", NULL, buf);
	snprintf(buf, sizeof(buf), "reg.example/x:1@%s", d);
	parses(buf, "reg.example", "x", "1", buf);
}

TEST(pull_ref_refused)
{
	refused("");
	refused("UPPER/x:1x/");
	refused("x/");
	refused("a//b");
	refused("x:bad tag");
	refused("x:-dash");
	refused("x@sha256:abc");
	refused("x@md5:0123456789abcdef0123456789abcdef");
	refused("a/-b");
}
