/* image/regconf.c: the endpoints of a repository from registries.conf v2
 * (prefix, location, mirrors, insecure, blocked), daemon.json (registry-mirrors
 * for docker.io only, insecure-registries by name and CIDR, loopback) and
 * certs.d (CAs, client certificates). Every file is written by the test; the
 * env vars point at them. */
#include "harness.h"
#include "image/regconf.h"
#include "rollout/alloc.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/tls.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

static void write_text(const char *path, const char *text)
{
	struct err err = {0};
	char *dir = xstrdup(path);

	*strrchr(dir, '/') = '\0';
	if (mkdir_p(dir, 0755, &err) < 0 ||
	    write_file_atomic(path, text, strlen(text), 0644, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	free(dir);
}

static void isolate(void)
{
	setenv("HOME", tdir("home"), 1);
	setenv("CONTAINERS_REGISTRIES_CONF", tpath("registries.conf"), 1);
	setenv("ROLLOUT_DOCKER_DAEMON_JSON", tpath("daemon.json"), 1);
	setenv("ROLLOUT_CERTS_DIRS", tfmt("%s:%s", tpath("certs1"), tpath("certs2")), 1);
}

static void get(const char *reg, const char *repo, struct regconf_endpoints *e)
{
	struct err err = {0};

	if (regconf_endpoints(reg, repo, e, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s/%s: %s", reg, repo, err.msg);
}

TEST(no_configuration)
{
	struct regconf_endpoints e;

	isolate();
	get("docker.io", "library/alpine", &e);
	REQUIRE(e.n == 1);
	CHECK_STR(e.v[0].url, "https://registry-1.docker.io");
	CHECK_STR(e.v[0].repository, "library/alpine");
	CHECK(!e.v[0].mirror && !e.v[0].insecure && e.v[0].tls == NULL);
	regconf_endpoints_release(&e);
	get("index.docker.io", "library/alpine", &e);
	CHECK_STR(e.v[0].host, "registry-1.docker.io");
	regconf_endpoints_release(&e);
	/* loopback is insecure, as in docker: https unverified, then http */
	get("localhost:5000", "t/x", &e);
	REQUIRE(e.n == 2);
	CHECK_STR(e.v[0].url, "https://localhost:5000");
	CHECK(e.v[0].insecure && e.v[0].tls != NULL);
	CHECK_STR(e.v[1].url, "http://localhost:5000");
	regconf_endpoints_release(&e);
	get("reg.example:5000", "t/x", &e);
	REQUIRE(e.n == 1);
	CHECK_STR(e.v[0].url, "https://reg.example:5000");
	regconf_endpoints_release(&e);
}

TEST(registries_conf_mirrors_rewrites_blocked)
{
	struct regconf_endpoints e;
	struct err err = {0};

	isolate();
	write_text(tpath("registries.conf"), "unqualified-search-registries = [\"docker.io\"]\n"
	                                     "[[registry]]\n"
	                                     "prefix = \"docker.io\"\n"
	                                     "location = \"docker.io\"\n"
	                                     "[[registry.mirror]]\n"
	                                     "location = \"mirror.local:5000\"\n"
	                                     "insecure = true\n"
	                                     "[[registry.mirror]]\n"
	                                     "location = \"mirror2.local/hub\"\n"
	                                     "\n"
	                                     "[[registry]]\n"
	                                     "prefix = \"docker.io/library/alpine\"\n"
	                                     "location = \"internal.local/base/alpine\"\n"
	                                     "\n"
	                                     "[[registry]]\n"
	                                     "location = \"old.example\"\n"
	                                     "blocked = true\n"
	                                     "\n"
	                                     "[[registry]]\n"
	                                     "prefix = \"*.corp.example\"\n"
	                                     "insecure = true\n");
	get("docker.io", "library/busybox", &e);
	REQUIRE(e.n == 4);
	CHECK_STR(e.v[0].url, "https://mirror.local:5000");
	CHECK(e.v[0].mirror && e.v[0].insecure);
	CHECK_STR(e.v[1].url, "http://mirror.local:5000");
	CHECK_STR(e.v[1].repository, "library/busybox");
	CHECK_STR(e.v[2].url, "https://mirror2.local");
	CHECK_STR(e.v[2].repository, "hub/library/busybox");
	CHECK(e.v[2].mirror && !e.v[2].insecure);
	CHECK_STR(e.v[3].url, "https://registry-1.docker.io");
	CHECK(!e.v[3].mirror);
	regconf_endpoints_release(&e);
	/* the longest prefix wins; location rewrites it */
	get("docker.io", "library/alpine", &e);
	REQUIRE(e.n == 1);
	CHECK_STR(e.v[0].url, "https://internal.local");
	CHECK_STR(e.v[0].repository, "base/alpine");
	regconf_endpoints_release(&e);
	/* library/alpinex is not under library/alpine */
	get("docker.io", "library/alpinex", &e);
	CHECK_INT(e.n, 4);
	regconf_endpoints_release(&e);
	CHECK(regconf_endpoints("old.example", "a/b", &e, &err) < 0);
	CHECK_INT(err.code, EACCES);
	CHECK(strstr(err.msg, "blocked") && strstr(err.msg, "registries.conf"));
	get("reg.corp.example", "a", &e);
	REQUIRE(e.n == 2);
	CHECK_STR(e.v[1].url, "http://reg.corp.example");
	regconf_endpoints_release(&e);
	get("corp.example", "a", &e);
	CHECK_INT(e.n, 1);
	regconf_endpoints_release(&e);
}

TEST(registries_conf_errors_name_the_file)
{
	struct regconf_endpoints e;
	struct err err = {0};

	isolate();
	write_text(tpath("registries.conf"), "[[registry]\nprefix=1\n");
	CHECK(regconf_endpoints("docker.io", "library/x", &e, &err) < 0);
	CHECK(strstr(err.msg, "registries.conf:1") != NULL);
}

TEST(daemon_json_mirrors_and_insecure)
{
	struct regconf_endpoints e;
	struct err err = {0};
	bool ins;

	isolate();
	write_text(tpath("daemon.json"),
	           "{\"registry-mirrors\":[\"https://hub-mirror.local/\","
	           "\"http://10.1.2.3:5000/prefix\"],"
	           "\"insecure-registries\":[\"reg.example:5000\",\"10.0.0.0/8\",\"fd00::/8\"]}");
	get("docker.io", "library/alpine", &e);
	REQUIRE(e.n == 3);
	CHECK_STR(e.v[0].url, "https://hub-mirror.local");
	CHECK(e.v[0].mirror);
	CHECK_STR(e.v[1].url, "http://10.1.2.3:5000/prefix");
	CHECK(e.v[1].mirror && e.v[1].insecure);
	CHECK_STR(e.v[2].url, "https://registry-1.docker.io");
	regconf_endpoints_release(&e);
	/* registry-mirrors are for docker.io only */
	get("ghcr.io", "o/r", &e);
	CHECK_INT(e.n, 1);
	regconf_endpoints_release(&e);
	get("reg.example:5000", "o/r", &e);
	REQUIRE(e.n == 2);
	CHECK_STR(e.v[1].url, "http://reg.example:5000");
	regconf_endpoints_release(&e);
	get("reg.example:5001", "o/r", &e);
	CHECK_INT(e.n, 1);
	regconf_endpoints_release(&e);
	REQUIRE(regconf_is_insecure("10.9.8.7:443", &ins, &err) == 0);
	CHECK(ins);
	REQUIRE(regconf_is_insecure("11.0.0.1", &ins, &err) == 0);
	CHECK(!ins);
	REQUIRE(regconf_is_insecure("[fd12::1]:5000", &ins, &err) == 0);
	CHECK(ins);
	REQUIRE(regconf_is_insecure("[::1]:5000", &ins, &err) == 0);
	CHECK(ins);
	write_text(tpath("daemon.json"), "{\"registry-mirrors\":[\"http://plain.example\"]}");
	CHECK(regconf_endpoints("docker.io", "library/x", &e, &err) < 0);
	CHECK(strstr(err.msg, "insecure-registries") != NULL);
}

TEST(certs_d_gives_tls_settings)
{
	struct regconf_endpoints e;
	struct err err = {0};
	const char *d = tdir("certs2/reg.example:5443");

	isolate();
	if (tsh("cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	        "-keyout ca.key -out ca.crt -subj /CN=test-CA -days 2 2>/dev/null && "
	        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	        "-keyout client.key -out client.cert -subj /CN=client -days 2 2>/dev/null && "
	        "rm ca.key",
	        d) != 0)
		test_skip("openssl cannot make certificates");
	get("reg.example:5443", "a", &e);
	REQUIRE(e.n == 1);
	REQUIRE(e.v[0].tls != NULL);
	CHECK(tls_config_ca_count(e.v[0].tls) >= 1);
	regconf_endpoints_release(&e);
	/* other hosts: the system's CAs */
	get("reg.example", "a", &e);
	CHECK(e.v[0].tls == NULL);
	regconf_endpoints_release(&e);
	/* a lone key is an error naming the file */
	CHECK(tsh("rm '%s/client.cert'", d) == 0);
	CHECK(regconf_endpoints("reg.example:5443", "a", &e, &err) < 0);
	CHECK(strstr(err.msg, "client.key") != NULL);
}

TEST(insecure_sources)
{
	struct regconf_endpoints e;
	struct err err = {0};
	const char *extra[] = {"reg.example:5000", "10.1.0.0/16", NULL};

	isolate();
	unsetenv("ROLLOUT_INSECURE_REGISTRIES");
	/* the caller's list (--insecure-registry): names and CIDRs */
	REQUIRE(regconf_endpoints_extra("reg.example:5000", "t/x", extra, &e, &err) == 0);
	REQUIRE(e.n == 2);
	CHECK_STR(e.v[1].url, "http://reg.example:5000");
	regconf_endpoints_release(&e);
	REQUIRE(regconf_endpoints_extra("10.1.2.3", "t/x", extra, &e, &err) == 0);
	CHECK_INT(e.n, 2);
	regconf_endpoints_release(&e);
	/* ROLLOUT_INSECURE_REGISTRIES, comma-separated */
	setenv("ROLLOUT_INSECURE_REGISTRIES", "a.example, b.example:5000", 1);
	get("b.example:5000", "t/x", &e);
	CHECK_INT(e.n, 2);
	regconf_endpoints_release(&e);
	unsetenv("ROLLOUT_INSECURE_REGISTRIES");
	/* an explicit insecure = false beats the loopback default, not a listing */
	write_text(tpath("registries.conf"), "[[registry]]\n"
	                                     "location = \"127.0.0.1:5000\"\n"
	                                     "insecure = false\n");
	get("127.0.0.1:5000", "t/x", &e);
	REQUIRE(e.n == 1);
	CHECK_STR(e.v[0].url, "https://127.0.0.1:5000");
	CHECK(!e.v[0].insecure && e.v[0].tls == NULL);
	regconf_endpoints_release(&e);
	extra[0] = "127.0.0.1:5000";
	REQUIRE(regconf_endpoints_extra("127.0.0.1:5000", "t/x", extra, &e, &err) == 0);
	CHECK_INT(e.n, 2);
	regconf_endpoints_release(&e);
}
