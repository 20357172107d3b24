/* Unit tests for src/image/oci.c: digests, chain IDs, index/manifest/config and
 * docker manifest.json parsing (valid and malformed), platform selection, layer
 * media types. */
#include "harness.h"
#include "image/oci.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/strbuf.h"

#include <stdio.h>

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

TEST(oci_digest_validation)
{
	CHECK(oci_digest_valid(D1));
	CHECK(!oci_digest_valid("sha256:11"));
	CHECK(!oci_digest_valid(
	    "sha512:1111111111111111111111111111111111111111111111111111111111111111"));
	CHECK(!oci_digest_valid(
	    "sha256:AAAA111111111111111111111111111111111111111111111111111111111111"));
	CHECK(!oci_digest_valid(D1 "0"));
	CHECK(!oci_digest_valid(NULL));
	CHECK_STR(oci_digest_hex(D2), &D2[7]);
}

/* Chain IDs computed by sha256sum(1), not by our own sha256. */
TEST(oci_chain_ids_match_sha256sum)
{
	char *diffs[3] = {D1, D2, D3}, *chains[3];
	char line[128] = "";
	FILE *p;

	oci_chain_ids(diffs, 3, chains);
	CHECK_STR(chains[0], D1);
	p = popen("printf '%s %s' " D1 " " D2 " | sha256sum", "r");
	REQUIRE(p && fgets(line, sizeof(line), p));
	pclose(p);
	line[64] = '\0';
	CHECK_STR(chains[1] + 7, line);
	{
		_cleanup_free_ char *cmd =
		    xasprintf("printf '%%s %%s' %s %s | sha256sum", chains[1], D3);

		p = popen(cmd, "r");
		REQUIRE(p && fgets(line, sizeof(line), p));
		pclose(p);
		line[64] = '\0';
		CHECK_STR(chains[2] + 7, line);
	}
	for (int i = 0; i < 3; i++)
		free(chains[i]);
}

static const char index_json[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
    "\"manifests\":["
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\","
    "\"size\":10,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2 "\","
    "\"size\":20,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},"
    "\"annotations\":{\"org.opencontainers.image.ref.name\":\"1.0\","
    "\"io.containerd.image.name\":\"docker.io/library/x:1.0\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D3 "\","
    "\"size\":30,\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"},"
    "\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"}}]}";

TEST(oci_index_parse_and_platform_selection)
{
	struct oci_index idx;
	struct err err;

	REQUIRE(oci_parse_index(index_json, strlen(index_json), "index.json", &idx, &err) == 0);
	CHECK_INT(idx.n, 3);
	CHECK_STR(idx.manifests[0].arch, "arm64");
	CHECK_STR(idx.manifests[0].variant, "v8");
	CHECK_STR(idx.manifests[1].ref_name, "1.0");
	CHECK_STR(idx.manifests[1].image_name, "docker.io/library/x:1.0");
	CHECK_INT(idx.manifests[1].size, 20);
	CHECK(idx.manifests[2].attestation);
	CHECK_INT(oci_select_platform(&idx, "linux", "amd64", NULL), 1);
	CHECK_INT(oci_select_platform(&idx, "linux", "arm64", "v8"), 0);
	CHECK_INT(oci_select_platform(&idx, "linux", "arm64", "v7"), -1);
	CHECK_INT(oci_select_platform(&idx, "linux", "riscv64", NULL), -1);
	CHECK_INT(oci_select_platform(&idx, "unknown", "unknown", NULL), -1);
	oci_index_release(&idx);
}

static void expect_index_error(const char *json, const char *want)
{
	struct oci_index idx;
	struct err err = {0};

	if (oci_parse_index(json, strlen(json), "index.json", &idx, &err) == 0) {
		test_fail_at(__FILE__, __LINE__, "accepted: %s", json);
		oci_index_release(&idx);
	} else if (!strstr(err.msg, want)) {
		test_fail_at(__FILE__, __LINE__, "'%s' lacks '%s'", err.msg, want);
	}
}

TEST(oci_index_errors)
{
	expect_index_error("{\"schemaVersion\":2,\"manifests\":[", "index.json:1:");
	expect_index_error("[]", "expected an object");
	expect_index_error("{\"manifests\":[]}", "schemaVersion must be 2");
	expect_index_error("{\"schemaVersion\":2,\"manifests\":{}}", "not an image index");
	expect_index_error("{\"schemaVersion\":2,\"manifests\":[{\"size\":1}]}",
	                   "manifests[0]: missing digest");
	expect_index_error(
	    "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"md5:x\",\"size\":1}]}",
	    "unsupported or malformed digest 'md5:x'");
	expect_index_error("{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D1
	                   "\",\"size\":-1}]}",
	                   "expected a size");
	expect_index_error("{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D1
	                   "\",\"size\":1.5}]}",
	                   "expected a size");
	expect_index_error("{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D1
	                   "\",\"size\":1,\"platform\":3}]}",
	                   "platform");
	expect_index_error("{\"schemaVersion\":2,\"manifests\":[{\"digest\":7,\"size\":1}]}",
	                   "expected a string");
}

TEST(oci_manifest_parse)
{
	static const char json[] =
	    "{\"schemaVersion\":2,\"mediaType\":\"application/"
	    "vnd.docker.distribution.manifest.v2+json\","
	    "\"config\":{\"mediaType\":\"application/"
	    "vnd.docker.container.image.v1+json\",\"digest\":\"" D1
	    "\",\"size\":100},\"layers\":[{\"mediaType\":\"application/"
	    "vnd.docker.image.rootfs.diff.tar."
	    "gzip\",\"digest\":\"" D2
	    "\",\"size\":200},{\"mediaType\":\"application/vnd.oci.image.layer."
	    "v1.tar\",\"digest\":\"" D3 "\",\"size\":300}]}";
	static const char bad_manifest[] = "{\"schemaVersion\":2,\"config\":{},\"layers\":[]}";
	struct oci_manifest m;
	struct err err;
	enum compression c;

	REQUIRE(oci_parse_manifest(json, strlen(json), "m", &m, &err) == 0);
	CHECK_STR(m.config.digest, D1);
	CHECK_INT(m.n_layers, 2);
	CHECK_INT(m.layers[1].size, 300);
	REQUIRE(oci_layer_compression(m.layers[0].media_type, &c, &err) == 0);
	CHECK_INT(c, COMPRESSION_GZIP);
	REQUIRE(oci_layer_compression(m.layers[1].media_type, &c, &err) == 0);
	CHECK_INT(c, COMPRESSION_NONE);
	oci_manifest_release(&m);
	CHECK(oci_parse_manifest(bad_manifest, strlen(bad_manifest), "m", &m, &err) < 0);
	CHECK_CONTAINS(err.msg, "m: config: missing digest");
	CHECK(oci_parse_manifest(index_json, strlen(index_json), "m", &m, &err) < 0);
	CHECK_CONTAINS(err.msg, "not an image manifest");
}

TEST(oci_layer_media_types)
{
	enum compression c;
	struct err err;

	CHECK(oci_layer_compression("application/vnd.oci.image.layer.v1.tar+zstd", &c, &err) == 0 &&
	      c == COMPRESSION_ZSTD);
	CHECK(oci_layer_compression("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", &c,
	                            &err) == 0 &&
	      c == COMPRESSION_GZIP);
	CHECK(oci_layer_compression("application/vnd.oci.image.layer.nondistributable.v1.tar", &c,
	                            &err) == 0 &&
	      c == COMPRESSION_NONE);
	CHECK(oci_layer_compression("text/plain", &c, &err) < 0);
	CHECK_CONTAINS(err.msg, "unsupported layer media type 'text/plain'");
	CHECK(oci_layer_compression(NULL, &c, &err) < 0);
	CHECK_INT(compression_detect((const uint8_t *)"\x28\xb5\x2f\xfd", 4), COMPRESSION_ZSTD);
	CHECK_INT(compression_detect((const uint8_t *)"\x1f\x8b", 2), COMPRESSION_GZIP);
	CHECK_INT(compression_detect((const uint8_t *)"\x1f", 1), COMPRESSION_NONE);
}

TEST(image_config_fields)
{
	static const char json[] =
	    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2024-01-01T00:00:00Z\","
	    "\"config\":{\"Env\":[\"PATH=/bin\",\"A=b=c\"],\"Cmd\":[],\"Entrypoint\":null,"
	    "\"WorkingDir\":\"/app\",\"User\":\"1000:1000\",\"StopSignal\":\"SIGINT\","
	    "\"Labels\":{\"a\":\"1\",\"b\":\"2\"},\"Volumes\":{\"/data\":{}},"
	    "\"ExposedPorts\":{\"80/tcp\":{}}},"
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]},"
	    "\"history\":[{\"created_by\":\"a\"},{\"created_by\":\"ENV\",\"empty_layer\":true},"
	    "{\"created_by\":\"b\"}]}";
	struct image_config c;
	struct err err;

	REQUIRE(image_config_parse(json, strlen(json), "config.json", &c, &err) == 0);
	CHECK_STR(c.env[1], "A=b=c");
	CHECK(c.cmd != NULL && c.cmd[0] == NULL); /* set but empty */
	CHECK(c.entrypoint == NULL);              /* null: not set */
	CHECK_STR(c.working_dir, "/app");
	CHECK_STR(c.user, "1000:1000");
	CHECK_STR(c.stop_signal, "SIGINT");
	CHECK_STR(c.labels[0], "a=1");
	CHECK_STR(c.labels[1], "b=2");
	CHECK_STR(c.volumes[0], "/data");
	CHECK_STR(c.exposed_ports[0], "80/tcp");
	CHECK_INT(c.n_diff_ids, 2);
	CHECK_INT(c.n_history, 3);
	CHECK_INT(c.n_empty_layers, 1);
	CHECK(c.json != NULL);
	image_config_release(&c);
}

static void expect_config_error(const char *json, const char *want)
{
	struct image_config c;
	struct err err = {0};

	if (image_config_parse(json, strlen(json), "cfg.json", &c, &err) == 0) {
		test_fail_at(__FILE__, __LINE__, "accepted: %s", json);
		image_config_release(&c);
	} else if (!strstr(err.msg, want)) {
		test_fail_at(__FILE__, __LINE__, "'%s' lacks '%s'", err.msg, want);
	}
}

TEST(image_config_errors)
{
	expect_config_error("{\n\"config\": {\"Env\": [1]}", "cfg.json:2:");
	expect_config_error("{\"config\":{\"Env\":\"A=b\"},\"rootfs\":{}}",
	                    "cfg.json: config.Env: expected an array of strings");
	expect_config_error("{\"config\":{\"Env\":[\"NOEQUALS\"]},\"rootfs\":{\"type\":\"layers\","
	                    "\"diff_ids\":[]}}",
	                    "'NOEQUALS' is not KEY=VALUE");
	expect_config_error("{\"config\":{\"Cmd\":[\"a\",2]}}", "config.Cmd: expected an array");
	expect_config_error("{\"config\":{\"User\":0}}", "config.User: expected a string");
	expect_config_error("{\"config\":{\"Labels\":{\"a\":1}}}", "config.Labels");
	expect_config_error("{}", "missing rootfs");
	expect_config_error("{\"rootfs\":{\"type\":\"zip\",\"diff_ids\":[]}}", "rootfs.type");
	expect_config_error("{\"rootfs\":{\"type\":\"layers\"}}", "missing rootfs.diff_ids");
	expect_config_error("{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:x\"]}}",
	                    "rootfs.diff_ids[0]: unsupported or malformed digest");
	expect_config_error("[1,2]", "expected an object");
}

TEST(docker_manifest_json)
{
	static const char json[] =
	    "[{\"Config\":\"abc.json\",\"RepoTags\":[\"busybox:latest\",\"bb:1\"],"
	    "\"Layers\":[\"l1/layer.tar\",\"./blobs/sha256/ab\"]},"
	    "{\"Config\":\"def.json\",\"RepoTags\":null,\"Layers\":[]}]";
	struct docker_manifest_entry *e;
	struct err err = {0};
	size_t n;

	REQUIRE(docker_manifest_parse(json, strlen(json), "manifest.json", &e, &n, &err) == 0);
	CHECK_INT(n, 2);
	CHECK_STR(e[0].config, "abc.json");
	CHECK_STR(e[0].repo_tags[1], "bb:1");
	CHECK_STR(e[0].layers[1], "blobs/sha256/ab");
	CHECK_INT(e[1].n_layers, 0);
	CHECK(e[1].repo_tags[0] == NULL);
	docker_manifest_release(e, n);

	CHECK(docker_manifest_parse("{}", strlen("{}"), "manifest.json", &e, &n, &err) < 0);
	CHECK_CONTAINS(err.msg, "expected an array of images");
	CHECK(docker_manifest_parse("[]", strlen("[]"), "manifest.json", &e, &n, &err) < 0);
	CHECK_CONTAINS(err.msg, "no images");
	CHECK(docker_manifest_parse("[{\"Layers\":[]}]", strlen("[{\"Layers\":[]}]"),
	                            "manifest.json", &e, &n, &err) < 0);
	CHECK_CONTAINS(err.msg, "[0].Config: missing");
	CHECK(docker_manifest_parse("[{\"Config\":\"../etc/passwd\",\"Layers\":[]}]",
	                            strlen("[{\"Config\":\"../etc/passwd\",\"Layers\":[]}]"),
	                            "manifest.json", &e, &n, &err) < 0);
	CHECK_CONTAINS(err.msg, "is not inside the archive");
	CHECK(docker_manifest_parse("[{\"Config\":\"c\",\"Layers\":[\"/\"]}]",
	                            strlen("[{\"Config\":\"c\",\"Layers\":[\"/\"]}]"),
	                            "manifest.json", &e, &n, &err) < 0);
	CHECK_CONTAINS(err.msg, "[0].Layers: path '/' is not inside the archive");
	CHECK(docker_manifest_parse("[{\"Config\":\"c\"}]", strlen("[{\"Config\":\"c\"}]"),
	                            "manifest.json", &e, &n, &err) < 0);
	CHECK_CONTAINS(err.msg, "[0].Layers: missing");
}
