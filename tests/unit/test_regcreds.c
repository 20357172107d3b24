/* image/regcreds.c: credentials from docker's config.json (auths, identitytoken,
 * credHelpers, credsStore through a test helper on PATH), containers' auth.json
 * and REGISTRY_AUTH_FILE, Hub's keys; login/logout writing config.json. Every
 * file is written by the test; HOME, DOCKER_CONFIG and XDG_* point into its
 * scratch directory. */
#include "harness.h"
#include "image/regauth.h"
#include "image/regcreds.h"
#include "rollout/alloc.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_text(const char *path, const char *text)
{
	struct err err = {0};
	char *dir = xstrdup(path);

	*strrchr(dir, '/') = '\0';
	if (mkdir_p(dir, 0755, &err) < 0 ||
	    write_file_atomic(path, text, strlen(text), 0600, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	free(dir);
}

/* A clean environment: nothing from the host's own files. */
static void isolate(void)
{
	setenv("HOME", tdir("home"), 1);
	unsetenv("DOCKER_CONFIG");
	unsetenv("REGISTRY_AUTH_FILE");
	setenv("XDG_RUNTIME_DIR", tdir("run"), 1);
	unsetenv("XDG_CONFIG_HOME");
	setenv("CRED_DB", tpath("creds.db"), 1);
	setenv("PATH", tfmt("%s/testdata/regauth:/usr/bin:/bin", test_srcdir()), 1);
}

static void lookup(const char *reg, const char *repo, struct regauth_creds *c, char **src)
{
	struct err err = {0};

	if (regcreds_lookup(reg, repo, c, src, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "lookup %s: %s", reg, err.msg);
}

TEST(canonical_names_and_hub_key)
{
	char *s;

	CHECK_STR((s = regcreds_canonical("https://index.docker.io/v1/")), "docker.io");
	free(s);
	CHECK_STR((s = regcreds_canonical("registry-1.docker.io")), "docker.io");
	free(s);
	CHECK_STR((s = regcreds_canonical("Reg.Local:5000/ns/repo")), "reg.local:5000");
	free(s);
	CHECK_STR((s = regcreds_server_address("docker.io")), "https://index.docker.io/v1/");
	free(s);
	CHECK_STR((s = regcreds_server_address("localhost:5000")), "localhost:5000");
	free(s);
}

TEST(docker_config_auths)
{
	struct regauth_creds c;
	char *src = NULL;

	isolate();
	write_text(
	    tpath("home/.docker/config.json"),
	    "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"aHViOnB3\"},"
	    "\"reg.local:5000\":{\"auth\":\"YWxpY2U6czM6Y3JldA==\"},"
	    "\"acr.example\":{\"auth\":\"MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwOg==\","
	    "\"identitytoken\":\"refresh-me\"}}}");
	lookup("docker.io", "library/alpine", &c, &src);
	CHECK_STR(c.username, "hub");
	CHECK_STR(c.password, "pw");
	CHECK(strstr(src, ".docker/config.json") != NULL);
	free(src);
	regauth_creds_release(&c);
	lookup("reg.local:5000", "x", &c, NULL);
	CHECK_STR(c.username, "alice");
	CHECK_STR(c.password, "s3:cret"); /* split on the first ':' */
	regauth_creds_release(&c);
	lookup("acr.example", "x", &c, NULL);
	CHECK_STR(c.identity_token, "refresh-me");
	regauth_creds_release(&c);
	lookup("other.example", "x", &c, &src);
	CHECK(regauth_creds_empty(&c));
	CHECK(src == NULL);
}

TEST(containers_auth_json_first_and_namespaces)
{
	struct regauth_creds c;

	isolate();
	write_text(tpath("home/.docker/config.json"),
	           "{\"auths\":{\"reg.local\":{\"auth\":\"ZG9ja2VyOnB3\"}}}");
	write_text(tpath("home/.config/containers/auth.json"),
	           "{\"auths\":{\"reg.local\":{\"auth\":\"aG9zdDpwdw==\"},"
	           "\"reg.local/team\":{\"auth\":\"dGVhbTpwdw==\"},"
	           "\"reg.local/team/app\":{\"auth\":\"YXBwOnB3\"}}}");
	lookup("reg.local", "team/app", &c, NULL);
	CHECK_STR(c.username, "app");
	regauth_creds_release(&c);
	lookup("reg.local", "team/other", &c, NULL);
	CHECK_STR(c.username, "team");
	regauth_creds_release(&c);
	lookup("reg.local", "teamx/y", &c, NULL);
	CHECK_STR(c.username, "host");
	regauth_creds_release(&c);
	/* XDG_RUNTIME_DIR's file comes before it */
	write_text(tpath("run/containers/auth.json"),
	           "{\"auths\":{\"reg.local\":{\"username\":\"rt\",\"password\":\"pw\"}}}");
	lookup("reg.local", "team/app", &c, NULL);
	CHECK_STR(c.username, "rt");
	regauth_creds_release(&c);
	/* REGISTRY_AUTH_FILE: that file only */
	write_text(tpath("only.json"), "{\"auths\":{}}");
	setenv("REGISTRY_AUTH_FILE", tpath("only.json"), 1);
	lookup("reg.local", "team/app", &c, NULL);
	CHECK(regauth_creds_empty(&c));
}

TEST(credential_helpers)
{
	struct regauth_creds c;
	char *src = NULL;

	isolate();
	write_text(tpath("creds.db"),
	           "https://index.docker.io/v1/\t{\"ServerURL\":\"x\",\"Username\":\"hubby\","
	           "\"Secret\":\"pw\"}\n"
	           "reg.local\t{\"ServerURL\":\"reg.local\",\"Username\":\"<token>\","
	           "\"Secret\":\"idtok\"}\n");
	write_text(tpath("home/.docker/config.json"),
	           "{\"credsStore\":\"rollouttest\",\"credHelpers\":{\"helped.example\":"
	           "\"missinghelper\"},\"auths\":{\"fallback.example\":{\"auth\":\"Zjpwdw==\"}}}");
	lookup("docker.io", "library/x", &c, &src);
	CHECK_STR(c.username, "hubby");
	CHECK_STR(src, "docker-credential-rollouttest");
	free(src);
	regauth_creds_release(&c);
	lookup("reg.local", "x", &c, NULL);
	CHECK_STR(c.identity_token, "idtok");
	CHECK(c.username == NULL);
	regauth_creds_release(&c);
	/* not in the store: the file's own entry */
	lookup("fallback.example", "x", &c, NULL);
	CHECK_STR(c.username, "f");
	regauth_creds_release(&c);
	/* a helper that is not installed: warned about, then anonymous */
	lookup("helped.example", "x", &c, NULL);
	CHECK(regauth_creds_empty(&c));
}

TEST(login_writes_docker_config_keeping_other_keys)
{
	struct err err = {0};
	struct regauth_creds c;
	struct stat st;
	char *where = NULL;
	bool found;
	cJSON *doc = NULL;

	isolate();
	setenv("DOCKER_CONFIG", tpath("dc"), 1);
	write_text(tpath("dc/config.json"),
	           "{\"auths\":{\"index.docker.io\":{\"auth\":\"b2xkOm9sZA==\"},"
	           "\"keep.example\":{\"auth\":\"azpr\"}},\"psFormat\":\"table\"}");
	REQUIRE(regcreds_store("docker.io", "bob", "pw", &where, &err) == 0);
	CHECK(strstr(where, "dc/config.json") != NULL);
	free(where);
	REQUIRE(stat(tpath("dc/config.json"), &st) == 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	REQUIRE(json_load_file(tpath("dc/config.json"), &doc, &err) == 0);
	CHECK_STR(json_get_str(doc, "psFormat"), "table");
	{
		cJSON *auths = cJSON_GetObjectItem(doc, "auths");

		CHECK(cJSON_GetObjectItem(auths, "index.docker.io") == NULL);
		CHECK(cJSON_GetObjectItem(auths, "keep.example") != NULL);
		CHECK_STR(
		    json_get_str(cJSON_GetObjectItem(auths, "https://index.docker.io/v1/"), "auth"),
		    "Ym9iOnB3");
	}
	cJSON_Delete(doc);
	lookup("docker.io", "library/x", &c, NULL);
	CHECK_STR(c.username, "bob");
	regauth_creds_release(&c);
	REQUIRE(regcreds_erase("index.docker.io", &found, &err) == 0);
	CHECK(found);
	lookup("docker.io", "library/x", &c, NULL);
	CHECK(regauth_creds_empty(&c));
	REQUIRE(regcreds_erase("docker.io", &found, &err) == 0);
	CHECK(!found);
	/* a new file in a new directory */
	setenv("DOCKER_CONFIG", tpath("fresh/sub"), 1);
	REQUIRE(regcreds_store("reg.local:5000", "a", "b", NULL, &err) == 0);
	lookup("reg.local:5000", "x", &c, NULL);
	CHECK_STR(c.password, "b");
	regauth_creds_release(&c);
}

TEST(login_through_creds_store)
{
	struct err err = {0};
	struct regauth_creds c;
	char *where = NULL;
	bool found;
	cJSON *doc = NULL;
	cJSON *e;

	isolate();
	write_text(tpath("home/.docker/config.json"), "{\"credsStore\":\"rollouttest\"}");
	REQUIRE(regcreds_store("reg.local", "carol", "pw2", &where, &err) == 0);
	CHECK_STR(where, "docker-credential-rollouttest");
	free(where);
	REQUIRE(json_load_file(tpath("home/.docker/config.json"), &doc, &err) == 0);
	e = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "auths"), "reg.local");
	CHECK(cJSON_IsObject(e) && e->child == NULL); /* {} as docker writes it */
	cJSON_Delete(doc);
	lookup("reg.local", "x", &c, NULL);
	CHECK_STR(c.username, "carol");
	CHECK_STR(c.password, "pw2");
	regauth_creds_release(&c);
	REQUIRE(regcreds_erase("reg.local", &found, &err) == 0);
	CHECK(found);
	lookup("reg.local", "x", &c, NULL);
	CHECK(regauth_creds_empty(&c));
}

TEST(bad_entries_are_errors)
{
	struct err err = {0};
	struct regauth_creds c;

	isolate();
	write_text(tpath("home/.docker/config.json"),
	           "{\"auths\":{\"r\":{\"auth\":\"bm9jb2xvbg==\"}}}");
	CHECK(regcreds_lookup("r", "x", &c, NULL, &err) < 0);
	CHECK(strstr(err.msg, "user:password") != NULL);
	write_text(tpath("home/.docker/config.json"), "{\"auths\":");
	CHECK(regcreds_lookup("r", "x", &c, NULL, &err) < 0);
	write_text(tpath("home/.docker/config.json"), "{\"credsStore\":\"../evil\"}");
	CHECK(regcreds_lookup("r", "x", &c, NULL, &err) < 0);
	CHECK(strstr(err.msg, "not valid") != NULL);
}
