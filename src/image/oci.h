/* Image metadata formats: OCI image index / manifest / config (and Docker's schema2
 * equivalents), docker save's manifest.json, digests and chain IDs. Parsers work
 * on memory and never trust their input (they are fuzzed: tests/fuzz/fuzz_manifest.c). */
#ifndef ROLLOUT_IMAGE_OCI_H
#define ROLLOUT_IMAGE_OCI_H

#include "image/decompress.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;

#define OCI_MEDIA_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_MEDIA_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MEDIA_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_MEDIA_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
#define OCI_MEDIA_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define DOCKER_MEDIA_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define DOCKER_MEDIA_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

/* Largest JSON document (index, manifest, config, manifest.json) we read. */
#define OCI_MAX_JSON (16 << 20)

/* "sha256:" + 64 lowercase hex digits. Other algorithms are refused. */
bool oci_digest_valid(const char *digest);
/* The hex part of a valid digest. */
const char *oci_digest_hex(const char *digest);

/* ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(n)).
 * out receives n heap strings. */
void oci_chain_ids(char *const *diff_ids, size_t n, char **out);

struct oci_descriptor {
	char *media_type;
	char *digest;
	int64_t size;
	char *ref_name;   /* annotation org.opencontainers.image.ref.name */
	char *image_name; /* annotation io.containerd.image.name (Docker >= 25) */
	char *os, *arch, *variant;
	bool attestation; /* vnd.docker.reference.type = attestation-manifest */
};

struct oci_index {
	struct oci_descriptor *manifests;
	size_t n;
};

struct oci_manifest {
	char *media_type;
	struct oci_descriptor config;
	struct oci_descriptor *layers; /* bottom first */
	size_t n_layers;
};

/* The parsed image configuration (OCI config.md / Docker image JSON). Lists are
 * NULL-terminated; cmd and entrypoint are NULL when absent (not the same as empty). */
struct image_config {
	char *architecture, *os, *variant, *created;
	char **env;           /* KEY=VALUE */
	char **cmd;           /* NULL: not set */
	char **entrypoint;    /* NULL: not set */
	char *working_dir;    /* NULL or "" : not set */
	char *user;           /* NULL or "" : not set */
	char *stop_signal;    /* NULL: not set */
	char **labels;        /* KEY=VALUE */
	char **volumes;       /* paths */
	char **exposed_ports; /* "80/tcp" */
	char **diff_ids;      /* rootfs.diff_ids, bottom first */
	size_t n_diff_ids;
	size_t n_history, n_empty_layers;
	cJSON *json; /* the whole document */
};

/* What a JSON blob is, from its mediaType or, lacking one, its shape. */
enum oci_blob_kind { OCI_BLOB_INDEX, OCI_BLOB_MANIFEST, OCI_BLOB_OTHER };
enum oci_blob_kind oci_blob_kind(const cJSON *doc);

/* name is the file the JSON came from, used in error messages. */
int oci_parse_index(const char *json, size_t len, const char *name, struct oci_index *out,
                    struct err *err);
int oci_parse_manifest(const char *json, size_t len, const char *name, struct oci_manifest *out,
                       struct err *err);
int image_config_parse(const char *json, size_t len, const char *name, struct image_config *out,
                       struct err *err);
void oci_index_release(struct oci_index *idx);
void oci_manifest_release(struct oci_manifest *m);
void image_config_release(struct image_config *c);

/* Index of the manifest for os/arch[/variant] (linux/amd64 when NULL), skipping
 * attestation manifests; entries without a platform match. -1 if none. */
int oci_select_platform(const struct oci_index *idx, const char *os, const char *arch,
                        const char *variant);
/* The architecture name of this machine in OCI terms (x86_64 -> amd64, ...). */
const char *oci_host_arch(void);

/* Compression implied by a layer media type (OCI and Docker, incl. foreign and
 * nondistributable). -1 and an error naming it for anything else. */
int oci_layer_compression(const char *media_type, enum compression *out, struct err *err);

/* One image of docker save's manifest.json. Paths are cleaned and relative. */
struct docker_manifest_entry {
	char *config;
	char **repo_tags; /* NULL-terminated, possibly empty */
	char **layers;
	size_t n_layers;
};

int docker_manifest_parse(const char *json, size_t len, const char *name,
                          struct docker_manifest_entry **out, size_t *n, struct err *err);
void docker_manifest_release(struct docker_manifest_entry *e, size_t n);

#endif
