/* Parsers for OCI/Docker image metadata: index, manifest, config, docker save's
 * manifest.json; digest checks and chain IDs. */
#include "image/oci.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/sha256.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

bool oci_digest_valid(const char *digest)
{
	if (!digest || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 7 + SHA256_HEX_LEN)
		return false;
	for (const char *p = digest + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

const char *oci_digest_hex(const char *digest)
{
	return digest + 7;
}

void oci_chain_ids(char *const *diff_ids, size_t n, char **out)
{
	for (size_t i = 0; i < n; i++) {
		char hex[SHA256_HEX_LEN + 1];
		_cleanup_free_ char *buf = NULL;

		if (i == 0) {
			out[i] = xstrdup(diff_ids[0]);
			continue;
		}
		buf = xasprintf("%s %s", out[i - 1], diff_ids[i]);
		sha256_hex(buf, strlen(buf), hex);
		out[i] = xasprintf("sha256:%s", hex);
	}
}

/* ---- small JSON helpers with error context ---- */

static int type_error(struct err *err, const char *name, const char *field, const char *want)
{
	return err_set(err, EINVAL, "%s: %s: expected %s", name, field, want);
}

/* Optional string member: NULL when absent or null; error for other types. */
static int get_opt_str(const cJSON *obj, const char *key, const char *name, const char *field,
                       char **out, struct err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return type_error(err, name, field, "a string");
	*out = xstrdup(v->valuestring);
	return 0;
}

/* Optional array of strings: *out NULL when absent/null, else a NULL-terminated copy. */
static int get_opt_strv(const cJSON *obj, const char *key, const char *name, const char *field,
                        char ***out, size_t *count, struct err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key), *it;
	struct strv sv = STRV_INIT;

	*out = NULL;
	if (count)
		*count = 0;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsArray(v))
		return type_error(err, name, field, "an array of strings");
	cJSON_ArrayForEach(it, v)
	{
		if (!cJSON_IsString(it)) {
			strv_release(&sv);
			return type_error(err, name, field, "an array of strings");
		}
		strv_push(&sv, it->valuestring);
	}
	if (count)
		*count = sv.n;
	*out = strv_array(&sv);
	return 0;
}

/* Optional object whose keys are the values ({"/data": {}}) or KEY=VALUE pairs. */
static int get_opt_map(const cJSON *obj, const char *key, const char *name, const char *field,
                       bool pairs, char ***out, struct err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key), *it;
	struct strv sv = STRV_INIT;

	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsObject(v))
		return type_error(err, name, field, "an object");
	cJSON_ArrayForEach(it, v)
	{
		if (pairs) {
			if (!cJSON_IsString(it)) {
				strv_release(&sv);
				return type_error(err, name, field, "an object of strings");
			}
			strv_pushf(&sv, "%s=%s", it->string, it->valuestring);
		} else {
			strv_push(&sv, it->string);
		}
	}
	*out = strv_array(&sv);
	return 0;
}

static void descriptor_release(struct oci_descriptor *d)
{
	free(d->media_type);
	free(d->digest);
	free(d->ref_name);
	free(d->image_name);
	free(d->os);
	free(d->arch);
	free(d->variant);
	memset(d, 0, sizeof(*d));
}

static int parse_descriptor(const cJSON *v, const char *name, const char *field,
                            struct oci_descriptor *d, struct err *err)
{
	const cJSON *size, *ann, *plat;

	memset(d, 0, sizeof(*d));
	if (!cJSON_IsObject(v))
		return type_error(err, name, field, "a descriptor object");
	if (get_opt_str(v, "mediaType", name, field, &d->media_type, err) < 0 ||
	    get_opt_str(v, "digest", name, field, &d->digest, err) < 0)
		goto fail;
	if (!d->digest) {
		err_set(err, EINVAL, "%s: %s: missing digest", name, field);
		goto fail;
	}
	if (!oci_digest_valid(d->digest)) {
		err_set(err, EINVAL, "%s: %s: unsupported or malformed digest '%.80s'", name, field,
		        d->digest);
		goto fail;
	}
	size = cJSON_GetObjectItemCaseSensitive(v, "size");
	if (!cJSON_IsNumber(size) || size->valuedouble < 0 || size->valuedouble > 9.0e15 ||
	    size->valuedouble != (double)(int64_t)size->valuedouble) {
		type_error(err, name, field, "a size (non-negative integer)");
		goto fail;
	}
	d->size = (int64_t)size->valuedouble;
	ann = cJSON_GetObjectItemCaseSensitive(v, "annotations");
	if (cJSON_IsObject(ann)) {
		const char *s = json_get_str(ann, "org.opencontainers.image.ref.name");

		d->ref_name = s ? xstrdup(s) : NULL;
		s = json_get_str(ann, "io.containerd.image.name");
		d->image_name = s ? xstrdup(s) : NULL;
		s = json_get_str(ann, "vnd.docker.reference.type");
		d->attestation = s && strcmp(s, "attestation-manifest") == 0;
	}
	plat = cJSON_GetObjectItemCaseSensitive(v, "platform");
	if (plat && !cJSON_IsNull(plat)) {
		if (!cJSON_IsObject(plat)) {
			type_error(err, name, field, "a platform object");
			goto fail;
		}
		if (get_opt_str(plat, "os", name, field, &d->os, err) < 0 ||
		    get_opt_str(plat, "architecture", name, field, &d->arch, err) < 0 ||
		    get_opt_str(plat, "variant", name, field, &d->variant, err) < 0)
			goto fail;
	}
	return 0;
fail:
	descriptor_release(d);
	return -1;
}

enum oci_blob_kind oci_blob_kind(const cJSON *doc)
{
	const char *mt = json_get_str(doc, "mediaType");

	if (mt && (strcmp(mt, OCI_MEDIA_INDEX) == 0 || strcmp(mt, DOCKER_MEDIA_LIST) == 0))
		return OCI_BLOB_INDEX;
	if (mt && (strcmp(mt, OCI_MEDIA_MANIFEST) == 0 || strcmp(mt, DOCKER_MEDIA_MANIFEST) == 0))
		return OCI_BLOB_MANIFEST;
	if (!mt && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "manifests")))
		return OCI_BLOB_INDEX;
	if (!mt && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(doc, "config")) &&
	    cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "layers")))
		return OCI_BLOB_MANIFEST;
	return OCI_BLOB_OTHER;
}

static int check_schema_version(const cJSON *doc, const char *name, struct err *err)
{
	double v = json_get_num(doc, "schemaVersion", -1);

	if (v != 2)
		return err_set(err, EINVAL, "%s: schemaVersion must be 2", name);
	return 0;
}

/* The document of an index or a manifest: JSON, an object, schemaVersion 2, the
 * right kind (what names it in the error). */
static int parse_document(const char *json, size_t len, const char *name, enum oci_blob_kind kind,
                          const char *what, cJSON **doc, struct err *err)
{
	if (json_parse(json, len, name, doc, err) < 0)
		return -1;
	if (!cJSON_IsObject(*doc))
		return type_error(err, name, "document", "an object");
	if (check_schema_version(*doc, name, err) < 0)
		return -1;
	if (oci_blob_kind(*doc) != kind)
		return err_set(err, EINVAL, "%s: not an image %s", name, what);
	return 0;
}

static void descriptors_release(struct oci_descriptor *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		descriptor_release(&v[i]);
	free(v);
}

/* doc[key], an array of descriptors (absent: none). On failure nothing is kept. */
static int parse_descriptors(const cJSON *doc, const char *key, const char *name,
                             struct oci_descriptor **out, size_t *n_out, struct err *err)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, key), *it;
	size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
	struct oci_descriptor *v = xcalloc(n ? n : 1, sizeof(*v));

	cJSON_ArrayForEach(it, arr)
	{
		char field[32];

		snprintf(field, sizeof(field), "%s[%zu]", key, i);
		if (parse_descriptor(it, name, field, &v[i], err) < 0) {
			descriptors_release(v, i);
			return -1;
		}
		i++;
	}
	*out = v;
	*n_out = n;
	return 0;
}

void oci_index_release(struct oci_index *idx)
{
	descriptors_release(idx->manifests, idx->n);
	memset(idx, 0, sizeof(*idx));
}

int oci_parse_index(const char *json, size_t len, const char *name, struct oci_index *out,
                    struct err *err)
{
	_cleanup_json_ cJSON *doc = NULL;

	memset(out, 0, sizeof(*out));
	if (parse_document(json, len, name, OCI_BLOB_INDEX, "index", &doc, err) < 0)
		return -1;
	return parse_descriptors(doc, "manifests", name, &out->manifests, &out->n, err);
}

void oci_manifest_release(struct oci_manifest *m)
{
	free(m->media_type);
	descriptor_release(&m->config);
	descriptors_release(m->layers, m->n_layers);
	memset(m, 0, sizeof(*m));
}

int oci_parse_manifest(const char *json, size_t len, const char *name, struct oci_manifest *out,
                       struct err *err)
{
	_cleanup_json_ cJSON *doc = NULL;

	memset(out, 0, sizeof(*out));
	if (parse_document(json, len, name, OCI_BLOB_MANIFEST, "manifest", &doc, err) < 0)
		return -1;
	if (get_opt_str(doc, "mediaType", name, "mediaType", &out->media_type, err) < 0)
		return -1;
	if (parse_descriptor(cJSON_GetObjectItemCaseSensitive(doc, "config"), name, "config",
	                     &out->config, err) < 0 ||
	    parse_descriptors(doc, "layers", name, &out->layers, &out->n_layers, err) < 0) {
		oci_manifest_release(out);
		return -1;
	}
	return 0;
}

void image_config_release(struct image_config *c)
{
	free(c->architecture);
	free(c->os);
	free(c->variant);
	free(c->created);
	strv_free(c->env);
	strv_free(c->cmd);
	strv_free(c->entrypoint);
	free(c->working_dir);
	free(c->user);
	free(c->stop_signal);
	strv_free(c->labels);
	strv_free(c->volumes);
	strv_free(c->exposed_ports);
	strv_free(c->diff_ids);
	if (c->json)
		cJSON_Delete(c->json);
	memset(c, 0, sizeof(*c));
}

int image_config_parse(const char *json, size_t len, const char *name, struct image_config *out,
                       struct err *err)
{
	const cJSON *cfg, *rootfs, *hist, *it;
	cJSON *doc = NULL;

	memset(out, 0, sizeof(*out));
	if (json_parse(json, len, name, &doc, err) < 0)
		return -1;
	out->json = doc;
	if (!cJSON_IsObject(doc)) {
		type_error(err, name, "document", "an object");
		goto fail;
	}
	if (get_opt_str(doc, "architecture", name, "architecture", &out->architecture, err) < 0 ||
	    get_opt_str(doc, "os", name, "os", &out->os, err) < 0 ||
	    get_opt_str(doc, "variant", name, "variant", &out->variant, err) < 0 ||
	    get_opt_str(doc, "created", name, "created", &out->created, err) < 0)
		goto fail;
	cfg = cJSON_GetObjectItemCaseSensitive(doc, "config");
	if (cfg && !cJSON_IsNull(cfg)) {
		if (!cJSON_IsObject(cfg)) {
			type_error(err, name, "config", "an object");
			goto fail;
		}
		if (get_opt_strv(cfg, "Env", name, "config.Env", &out->env, NULL, err) < 0 ||
		    get_opt_strv(cfg, "Cmd", name, "config.Cmd", &out->cmd, NULL, err) < 0 ||
		    get_opt_strv(cfg, "Entrypoint", name, "config.Entrypoint", &out->entrypoint,
		                 NULL, err) < 0 ||
		    get_opt_str(cfg, "WorkingDir", name, "config.WorkingDir", &out->working_dir,
		                err) < 0 ||
		    get_opt_str(cfg, "User", name, "config.User", &out->user, err) < 0 ||
		    get_opt_str(cfg, "StopSignal", name, "config.StopSignal", &out->stop_signal,
		                err) < 0 ||
		    get_opt_map(cfg, "Labels", name, "config.Labels", true, &out->labels, err) <
		        0 ||
		    get_opt_map(cfg, "Volumes", name, "config.Volumes", false, &out->volumes, err) <
		        0 ||
		    get_opt_map(cfg, "ExposedPorts", name, "config.ExposedPorts", false,
		                &out->exposed_ports, err) < 0)
			goto fail;
		for (char **e = out->env; e && *e; e++)
			if (!strchr(*e, '=')) {
				err_set(err, EINVAL, "%s: config.Env: '%.80s' is not KEY=VALUE",
				        name, *e);
				goto fail;
			}
	}
	rootfs = cJSON_GetObjectItemCaseSensitive(doc, "rootfs");
	if (!cJSON_IsObject(rootfs)) {
		err_set(err, EINVAL, "%s: missing rootfs", name);
		goto fail;
	}
	if (!json_get_str(rootfs, "type") || strcmp(json_get_str(rootfs, "type"), "layers") != 0) {
		err_set(err, EINVAL, "%s: rootfs.type must be \"layers\"", name);
		goto fail;
	}
	if (get_opt_strv(rootfs, "diff_ids", name, "rootfs.diff_ids", &out->diff_ids,
	                 &out->n_diff_ids, err) < 0)
		goto fail;
	if (!out->diff_ids) {
		err_set(err, EINVAL, "%s: missing rootfs.diff_ids", name);
		goto fail;
	}
	for (size_t i = 0; i < out->n_diff_ids; i++)
		if (!oci_digest_valid(out->diff_ids[i])) {
			err_set(err, EINVAL,
			        "%s: rootfs.diff_ids[%zu]: unsupported or malformed digest "
			        "'%.80s'",
			        name, i, out->diff_ids[i]);
			goto fail;
		}
	hist = cJSON_GetObjectItemCaseSensitive(doc, "history");
	if (cJSON_IsArray(hist)) {
		cJSON_ArrayForEach(it, hist)
		{
			out->n_history++;
			if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "empty_layer")))
				out->n_empty_layers++;
		}
	}
	return 0;
fail:
	image_config_release(out);
	return -1;
}

const char *oci_host_arch(void)
{
	struct utsname u;

	if (uname(&u) < 0)
		return "amd64";
	if (strcmp(u.machine, "x86_64") == 0)
		return "amd64";
	if (strcmp(u.machine, "aarch64") == 0)
		return "arm64";
	if (str_starts_with(u.machine, "armv7"))
		return "arm";
	if (strcmp(u.machine, "i686") == 0 || strcmp(u.machine, "i386") == 0)
		return "386";
	return "amd64";
}

int oci_select_platform(const struct oci_index *idx, const char *os, const char *arch,
                        const char *variant)
{
	int fallback = -1;

	if (!os)
		os = "linux";
	if (!arch)
		arch = "amd64";
	for (size_t i = 0; i < idx->n; i++) {
		const struct oci_descriptor *d = &idx->manifests[i];

		if (d->attestation)
			continue;
		if (!d->os && !d->arch) {
			if (fallback < 0)
				fallback = (int)i;
			continue;
		}
		if (!d->os || !d->arch || strcmp(d->os, os) != 0 || strcmp(d->arch, arch) != 0)
			continue;
		if (variant && d->variant && strcmp(variant, d->variant) != 0)
			continue;
		return (int)i;
	}
	return fallback;
}

int oci_layer_compression(const char *media_type, enum compression *out, struct err *err)
{
	static const struct {
		const char *type;
		enum compression c;
	} types[] = {
	    {"application/vnd.oci.image.layer.v1.tar", COMPRESSION_NONE},
	    {"application/vnd.oci.image.layer.v1.tar+gzip", COMPRESSION_GZIP},
	    {"application/vnd.oci.image.layer.v1.tar+zstd", COMPRESSION_ZSTD},
	    {"application/vnd.oci.image.layer.nondistributable.v1.tar", COMPRESSION_NONE},
	    {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", COMPRESSION_GZIP},
	    {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", COMPRESSION_ZSTD},
	    {"application/vnd.docker.image.rootfs.diff.tar", COMPRESSION_NONE},
	    {"application/vnd.docker.image.rootfs.diff.tar.gzip", COMPRESSION_GZIP},
	    {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", COMPRESSION_GZIP},
	    {"application/vnd.docker.image.rootfs.diff.tar.zstd", COMPRESSION_ZSTD},
	};

	for (size_t i = 0; i < ARRAY_SIZE(types); i++)
		if (media_type && strcmp(media_type, types[i].type) == 0) {
			*out = types[i].c;
			return 0;
		}
	return err_set(err, ENOTSUP, "unsupported layer media type '%.120s'",
	               media_type ? media_type : "(none)");
}

void docker_manifest_release(struct docker_manifest_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].config);
		strv_free(e[i].repo_tags);
		strv_free(e[i].layers);
	}
	free(e);
}

/* A path inside the archive: cleaned, relative, not empty. */
static int archive_path(const char *in, const char *name, const char *field, char **out,
                        struct err *err)
{
	*out = path_clean_relative(in);
	if (!*out || !**out) {
		free(*out);
		*out = NULL;
		return err_set(err, EINVAL, "%s: %s: path '%.120s' is not inside the archive", name,
		               field, in);
	}
	return 0;
}

int docker_manifest_parse(const char *json, size_t len, const char *name,
                          struct docker_manifest_entry **out, size_t *n, struct err *err)
{
	_cleanup_json_ cJSON *doc = NULL;
	struct docker_manifest_entry *e;
	const cJSON *it;
	size_t i = 0;

	*out = NULL;
	*n = 0;
	if (json_parse(json, len, name, &doc, err) < 0)
		return -1;
	if (!cJSON_IsArray(doc))
		return type_error(err, name, "document", "an array of images");
	if (cJSON_GetArraySize(doc) == 0)
		return err_set(err, EINVAL, "%s: no images", name);
	e = xcalloc((size_t)cJSON_GetArraySize(doc), sizeof(*e));
	cJSON_ArrayForEach(it, doc)
	{
		char field[48];
		_cleanup_free_ char *config = NULL;
		char **layers = NULL;
		size_t nl = 0;

		snprintf(field, sizeof(field), "[%zu]", i);
		if (!cJSON_IsObject(it)) {
			type_error(err, name, field, "an object");
			goto fail;
		}
		snprintf(field, sizeof(field), "[%zu].Config", i);
		if (get_opt_str(it, "Config", name, field, &config, err) < 0)
			goto fail;
		if (!config) {
			err_set(err, EINVAL, "%s: %s: missing", name, field);
			goto fail;
		}
		if (archive_path(config, name, field, &e[i].config, err) < 0)
			goto fail;
		snprintf(field, sizeof(field), "[%zu].RepoTags", i);
		if (get_opt_strv(it, "RepoTags", name, field, &e[i].repo_tags, NULL, err) < 0)
			goto fail;
		if (!e[i].repo_tags)
			e[i].repo_tags = xcalloc(1, sizeof(char *));
		snprintf(field, sizeof(field), "[%zu].Layers", i);
		if (get_opt_strv(it, "Layers", name, field, &layers, &nl, err) < 0)
			goto fail;
		if (!layers) {
			err_set(err, EINVAL, "%s: %s: missing", name, field);
			goto fail;
		}
		e[i].layers = xcalloc(nl + 1, sizeof(char *));
		e[i].n_layers = nl;
		for (size_t l = 0; l < nl; l++) {
			if (archive_path(layers[l], name, field, &e[i].layers[l], err) < 0) {
				strv_free(layers);
				goto fail;
			}
		}
		strv_free(layers);
		i++;
	}
	*out = e;
	*n = i;
	return 0;
fail:
	docker_manifest_release(e, i + 1);
	return -1;
}
