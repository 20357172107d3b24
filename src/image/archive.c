/* `rollout image load`: docker save archives (legacy layout, and Docker >= 25's OCI
 * layout inside) and OCI image layouts (directory or tar). A seekable archive is
 * indexed in place and its members read with pread; stdin and compressed archives
 * are spooled to a tar file in the load's work directory first. */
#include "image/decompress.h"
#include "image/oci.h"
#include "image/store.h"
#include "image/store_internal.h"
#include "image/tar.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/inroot.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/sha256.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SYMLINK_HOPS 8
#define MAX_INDEX_DEPTH 4

/* ---- the archive as a set of named files ---- */

struct member {
	char *name;
	size_t seq; /* position in the archive */
	uint64_t offset, size;
	char *link; /* symlink target (cleaned, relative to the archive root) */
};

struct source {
	const char *label;
	int dirfd; /* directory form */
	int tarfd; /* tar form */
	struct member *m;
	size_t n;
	char *spool;
};

static void source_release(struct source *src)
{
	if (src->dirfd >= 0)
		close(src->dirfd);
	if (src->tarfd >= 0)
		close(src->tarfd);
	for (size_t i = 0; i < src->n; i++) {
		free(src->m[i].name);
		free(src->m[i].link);
	}
	free(src->m);
	if (src->spool)
		unlink(src->spool);
	free(src->spool);
}

static int cmp_member(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static int cmp_member_name(const void *a, const void *b)
{
	return strcmp(((const struct member *)a)->name, ((const struct member *)b)->name);
}

static struct member *member_find(struct source *src, const char *name)
{
	struct member key = {.name = (char *)name};

	return src->n ? bsearch(&key, src->m, src->n, sizeof(*src->m), cmp_member_name) : NULL;
}

/* Index the members of the tar: name -> (offset, size), symlink targets. */
static int source_index(struct source *src, struct err *err)
{
	struct tar_reader *r;
	const struct tar_entry *e;
	size_t cap = 0;
	int ret;

	if (lseek(src->tarfd, 0, SEEK_SET) < 0)
		return err_sys(err, "seek");
	r = tar_reader_new_fd(src->tarfd);
	while ((ret = tar_reader_next(r, &e, err)) > 0) {
		_cleanup_free_ char *name = path_clean_relative(e->path);
		struct member *m;

		if (!name || !*name ||
		    (e->type != TAR_REG && e->type != TAR_SYMLINK && e->type != TAR_HARDLINK))
			continue;
		if (src->n == cap) {
			cap = cap ? cap * 2 : 64;
			src->m = xrealloc(src->m, cap * sizeof(*src->m));
		}
		m = &src->m[src->n];
		memset(m, 0, sizeof(*m));
		m->seq = src->n++;
		m->name = steal_ptr(&name);
		if (e->type == TAR_REG) {
			m->offset = tar_reader_data_offset(r);
			m->size = e->size;
		} else if (e->type == TAR_HARDLINK) {
			m->link = path_clean_relative(e->linkpath);
		} else {
			/* Symlink targets are relative to the link's directory. */
			const char *slash = strrchr(m->name, '/');
			_cleanup_free_ char *joined =
			    e->linkpath[0] == '/' ? xstrdup(e->linkpath)
			    : slash
			        ? xasprintf("%.*s/%s", (int)(slash - m->name), m->name, e->linkpath)
			        : xstrdup(e->linkpath);

			m->link = path_clean_relative(joined);
		}
		if (!m->link && e->type != TAR_REG)
			m->link = xstrdup("");
	}
	tar_reader_free(r);
	if (ret < 0)
		return -1;
	/* A later member of the same name replaces the earlier one, as on extraction. */
	if (src->n > 1)
		qsort(src->m, src->n, sizeof(*src->m), cmp_member);
	{
		size_t k = 0;

		for (size_t i = 0; i < src->n; i++) {
			if (i + 1 < src->n && strcmp(src->m[i].name, src->m[i + 1].name) == 0) {
				free(src->m[i].name);
				free(src->m[i].link);
				continue;
			}
			src->m[k++] = src->m[i];
		}
		src->n = k;
	}
	return 0;
}

/* Locate a member: fd (borrowed from src or owned, see *owned), offset and size. */
static int source_open_member(struct source *src, const char *name, int *fd, uint64_t *off,
                              uint64_t *size, bool *owned, struct err *err)
{
	_cleanup_free_ char *cur = path_clean_relative(name);

	*owned = false;
	if (!cur || !*cur)
		return err_set(err, EINVAL, "'%s' is not a path inside the archive", name);
	if (src->dirfd >= 0) {
		struct stat st;
		int f = inroot_open(src->dirfd, cur, O_RDONLY, 0);

		if (f < 0) {
			if (errno == ENOENT)
				return err_set(err, ENOENT, "%s is missing", cur);
			return err_sys(err, "open %s", cur);
		}
		if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(f);
			return err_set(err, EINVAL, "%s is not a regular file", cur);
		}
		*fd = f;
		*owned = true;
		*off = 0;
		*size = (uint64_t)st.st_size;
		return 0;
	}
	for (int hops = 0; hops <= MAX_SYMLINK_HOPS; hops++) {
		struct member *m = member_find(src, cur);

		if (!m)
			return err_set(err, ENOENT, "%s is missing", cur);
		if (!m->link) {
			*fd = src->tarfd;
			*off = m->offset;
			*size = m->size;
			return 0;
		}
		free(cur);
		cur = xstrdup(m->link);
	}
	return err_set(err, ELOOP, "%s: too many levels of links", name);
}

static bool source_has(struct source *src, const char *name)
{
	int fd;
	uint64_t off, size;
	bool owned;

	if (source_open_member(src, name, &fd, &off, &size, &owned, NULL) < 0)
		return false;
	if (owned)
		close(fd);
	return true;
}

/* Read a small member whole; verify digest and size when given. */
static int source_read(struct source *src, const char *name, const char *digest, int64_t want_size,
                       char **out, size_t *len, struct err *err)
{
	int fd;
	uint64_t off, size;
	bool owned;
	char *buf;
	ssize_t n;

	if (source_open_member(src, name, &fd, &off, &size, &owned, err) < 0)
		return -1;
	if (size > OCI_MAX_JSON) {
		if (owned)
			close(fd);
		return err_set(err, EFBIG, "%s: larger than %d bytes", name, OCI_MAX_JSON);
	}
	buf = xmalloc(size + 1);
	n = pread(fd, buf, size, (off_t)off);
	if (owned)
		close(fd);
	if (n < 0 || (uint64_t)n != size) {
		free(buf);
		return n < 0 ? err_sys(err, "read %s", name)
		             : err_set(err, EIO, "%s: truncated (archive ends early)", name);
	}
	buf[size] = '\0';
	if (want_size >= 0 && (uint64_t)want_size != size) {
		free(buf);
		return err_set(err, EINVAL, "%s: size is %" PRIu64 ", the descriptor says %" PRId64,
		               name, size, want_size);
	}
	if (digest) {
		char hex[SHA256_HEX_LEN + 1];

		sha256_hex(buf, size, hex);
		if (strcmp(hex, oci_digest_hex(digest)) != 0) {
			free(buf);
			return err_set(err, EINVAL,
			               "%s: digest mismatch: expected %s, content is "
			               "sha256:%s",
			               name, digest, hex);
		}
	}
	*out = buf;
	*len = size;
	return 0;
}

/* Copy a stream (stdin, or a compressed archive) into a tar file in the job. */
static int spool(struct store_job *job, int fd, uint64_t length, struct source *src,
                 struct err *err)
{
	struct decompress_opts o = {
	    .fd = fd, .length = length, .threaded = false, .max_output = store_max_layer_size()};
	struct decompress *d = NULL;
	struct decompress_result res;
	struct tar_input in;
	_cleanup_close_ int out = -1;
	const uint8_t *p;
	ssize_t n;

	src->spool = xasprintf("%s/archive.tar", job->dir);
	out = open(src->spool, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return err_sys(err, "create %s", src->spool);
	if (decompress_open(&d, &o, err) < 0)
		return -1;
	in = decompress_tar_input(d);
	while ((n = in.next(in.ctx, &p, err)) > 0)
		if (write_all(out, p, (size_t)n) < 0) {
			decompress_free(d);
			return err_sys(err, "write %s", src->spool);
		}
	if (n < 0 || decompress_finish(d, &res, err) < 0) {
		decompress_free(d);
		return -1;
	}
	decompress_free(d);
	src->tarfd = steal_fd(&out);
	return 0;
}

static int source_open(struct store_job *job, const char *path, struct source *src, struct err *err)
{
	struct stat st;
	_cleanup_close_ int fd = -1;
	uint8_t magic[4] = {0};

	src->label = path;
	src->dirfd = src->tarfd = -1;
	if (strcmp(path, "-") == 0) {
		fd = dup(STDIN_FILENO);
	} else {
		if (stat(path, &st) < 0)
			return err_sys(err, "%s", path);
		if (S_ISDIR(st.st_mode)) {
			src->dirfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (src->dirfd < 0)
				return err_sys(err, "open %s", path);
			return 0;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0 || fstat(fd, &st) < 0)
		return err_sys(err, "open %s", path);
	if (S_ISREG(st.st_mode) && pread(fd, magic, sizeof(magic), 0) >= 0 &&
	    compression_detect(magic, sizeof(magic)) == COMPRESSION_NONE) {
		src->tarfd = steal_fd(&fd);
	} else if (spool(job, fd, S_ISREG(st.st_mode) ? (uint64_t)st.st_size : DECOMPRESS_STREAM,
	                 src, err) < 0) {
		return -1;
	}
	return source_index(src, err);
}

/* ---- images ---- */

/* One image to load, from either format. */
struct image_plan {
	char *config_path;
	char *config_digest; /* NULL: not known (docker archive) */
	int64_t config_size;
	char **layer_paths;
	struct oci_descriptor *layer_descs; /* NULL for docker archives */
	size_t n_layers;
	char *manifest; /* OCI manifest bytes, stored as a blob */
	size_t manifest_len;
	struct strv refs;

	/* filled while preparing */
	char *config;
	size_t config_len;
	struct prepared_layer *layers;
};

static void plan_release(struct image_plan *p)
{
	free(p->config_path);
	free(p->config_digest);
	strv_free(p->layer_paths);
	for (size_t i = 0; p->layer_descs && i < p->n_layers; i++) {
		free(p->layer_descs[i].media_type);
		free(p->layer_descs[i].digest);
	}
	free(p->layer_descs);
	free(p->manifest);
	strv_release(&p->refs);
	free(p->config);
	for (size_t i = 0; p->layers && i < p->n_layers; i++)
		prepared_layer_release(&p->layers[i]);
	free(p->layers);
	memset(p, 0, sizeof(*p));
}

struct loader {
	struct store *s;
	struct store_job job;
	struct source src;
	struct image_plan *plans;
	size_t n_plans;
	/* Chain IDs prepared by earlier images of this load and their diff dirs. */
	struct strv prepared_chains, prepared_dirs;
};

static struct image_plan *new_plan(struct loader *l)
{
	l->plans = xrealloc(l->plans, (l->n_plans + 1) * sizeof(*l->plans));
	memset(&l->plans[l->n_plans], 0, sizeof(*l->plans));
	return &l->plans[l->n_plans++];
}

static int add_ref(struct image_plan *p, const char *ref, struct err *err)
{
	_cleanup_free_ char *norm = store_normalize_ref(ref, err);

	if (!norm)
		return -1;
	if (!strv_contains(&p->refs, norm))
		strv_push(&p->refs, norm);
	return 0;
}

static int plan_docker_archive(struct loader *l, struct err *err)
{
	_cleanup_free_ char *text = NULL;
	struct docker_manifest_entry *e = NULL;
	size_t len, n = 0;

	if (source_read(&l->src, "manifest.json", NULL, -1, &text, &len, err) < 0 ||
	    docker_manifest_parse(text, len, "manifest.json", &e, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct image_plan *p = new_plan(l);

		p->config_path = steal_ptr(&e[i].config);
		p->config_size = -1;
		p->layer_paths = steal_ptr(&e[i].layers);
		p->n_layers = e[i].n_layers;
		for (char **t = e[i].repo_tags; *t; t++)
			if (add_ref(p, *t, err) < 0) {
				docker_manifest_release(e, n);
				return err_wrap(err, "manifest.json");
			}
	}
	docker_manifest_release(e, n);
	return 0;
}

static char *blob_path(const char *digest)
{
	return xasprintf("blobs/sha256/%s", oci_digest_hex(digest));
}

static int plan_oci_manifest(struct loader *l, const struct oci_descriptor *d, const char *ref,
                             int depth, struct err *err);

static int plan_oci_index(struct loader *l, const char *json, size_t len, const char *name,
                          const char *ref, bool top, int depth, struct err *err)
{
	struct oci_index idx;
	int with_platform = 0, ret = 0;

	if (depth > MAX_INDEX_DEPTH)
		return err_set(err, ELOOP, "%s: image indexes nested too deeply", name);
	if (oci_parse_index(json, len, name, &idx, err) < 0)
		return -1;
	for (size_t i = 0; i < idx.n; i++)
		with_platform += idx.manifests[i].os != NULL && !idx.manifests[i].attestation;
	if (!top || with_platform > 1) {
		/* A multi-platform index: one manifest, for this machine. */
		int k = oci_select_platform(&idx, "linux", oci_host_arch(), NULL);

		if (k < 0)
			ret = err_set(err, ENOENT, "%s: no image for linux/%s", name,
			              oci_host_arch());
		else
			ret = plan_oci_manifest(l, &idx.manifests[k], ref, depth + 1, err);
	} else {
		for (size_t i = 0; i < idx.n && ret == 0; i++) {
			const struct oci_descriptor *d = &idx.manifests[i];
			const char *name_ref = d->image_name;

			if (d->attestation)
				continue;
			/* ref.name is either a whole reference or just a tag. */
			if (!name_ref && d->ref_name &&
			    (strchr(d->ref_name, ':') || strchr(d->ref_name, '/')))
				name_ref = d->ref_name;
			ret = plan_oci_manifest(l, d, name_ref, depth + 1, err);
		}
	}
	oci_index_release(&idx);
	return ret;
}

static int plan_oci_manifest(struct loader *l, const struct oci_descriptor *d, const char *ref,
                             int depth, struct err *err)
{
	_cleanup_free_ char *path = blob_path(d->digest), *text = NULL;
	_cleanup_json_ cJSON *doc = NULL;
	struct oci_manifest m;
	struct image_plan *p;
	size_t len;

	if (source_read(&l->src, path, d->digest, d->size, &text, &len, err) < 0)
		return -1;
	if (json_parse(text, len, path, &doc, err) < 0)
		return -1;
	if (oci_blob_kind(doc) == OCI_BLOB_INDEX)
		return plan_oci_index(l, text, len, path, ref, false, depth, err);
	if (oci_parse_manifest(text, len, path, &m, err) < 0)
		return -1;
	p = new_plan(l);
	p->config_path = blob_path(m.config.digest);
	p->config_digest = xstrdup(m.config.digest);
	p->config_size = m.config.size;
	p->n_layers = m.n_layers;
	p->layer_paths = xcalloc(m.n_layers + 1, sizeof(char *));
	p->layer_descs = xcalloc(m.n_layers + 1, sizeof(*p->layer_descs));
	for (size_t i = 0; i < m.n_layers; i++) {
		p->layer_paths[i] = blob_path(m.layers[i].digest);
		p->layer_descs[i].digest = xstrdup(m.layers[i].digest);
		p->layer_descs[i].media_type =
		    m.layers[i].media_type ? xstrdup(m.layers[i].media_type) : NULL;
		p->layer_descs[i].size = m.layers[i].size;
	}
	p->manifest = steal_ptr(&text);
	p->manifest_len = len;
	oci_manifest_release(&m);
	if (ref && add_ref(p, ref, err) < 0)
		return err_wrap(err, "index.json");
	return 0;
}

static int plan_oci_layout(struct loader *l, struct err *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len;

	if (source_has(&l->src, "oci-layout")) {
		_cleanup_json_ cJSON *doc = NULL;
		const char *v;

		if (source_read(&l->src, "oci-layout", NULL, -1, &text, &len, err) < 0 ||
		    json_parse(text, len, "oci-layout", &doc, err) < 0)
			return -1;
		v = json_get_str(doc, "imageLayoutVersion");
		if (!v || strncmp(v, "1.", 2) != 0)
			return err_set(err, EINVAL, "oci-layout: unsupported imageLayoutVersion");
		free(text);
		text = NULL;
	}
	if (source_read(&l->src, "index.json", NULL, -1, &text, &len, err) < 0)
		return -1;
	return plan_oci_index(l, text, len, "index.json", NULL, true, 0, err);
}

/* Read and check the config, then unpack the layers that are not in the store. */
static int prepare_image(struct loader *l, struct image_plan *p, struct err *err)
{
	struct image_config cfg;
	char **chains;
	int *lowers;
	int ret = -1;
	size_t i;

	if (source_read(&l->src, p->config_path, p->config_digest, p->config_size, &p->config,
	                &p->config_len, err) < 0 ||
	    image_config_parse(p->config, p->config_len, p->config_path, &cfg, err) < 0)
		return -1;
	if (cfg.n_diff_ids != p->n_layers) {
		err_set(err, EINVAL,
		        "%s: the config lists %zu diff IDs but the manifest has %zu layers",
		        p->config_path, cfg.n_diff_ids, p->n_layers);
		image_config_release(&cfg);
		return -1;
	}
	chains = xcalloc(p->n_layers + 1, sizeof(char *));
	oci_chain_ids(cfg.diff_ids, p->n_layers, chains);
	p->layers = xcalloc(p->n_layers + 1, sizeof(*p->layers));
	lowers = xcalloc(p->n_layers + 1, sizeof(int));
	for (i = 0; i < p->n_layers; i++)
		lowers[i] = -1;
	for (i = 0; i < p->n_layers; i++) {
		struct prepared_layer *pl = &p->layers[i];
		_cleanup_free_ char *label = NULL, *diff = NULL;
		const struct oci_descriptor *desc = p->layer_descs ? &p->layer_descs[i] : NULL;
		struct layer_src src = {0};
		_cleanup_close_ int owned_fd = -1;
		int *below = NULL;
		bool owned;
		size_t k;

		pl->chain_id = xstrdup(chains[i]);
		pl->diff_id = xstrdup(cfg.diff_ids[i]);
		if (desc) {
			pl->digest = xstrdup(desc->digest);
			pl->media_type = desc->media_type ? xstrdup(desc->media_type) : NULL;
		}
		for (k = 0; k < l->prepared_chains.n; k++)
			if (strcmp(l->prepared_chains.v[k], chains[i]) == 0)
				break;
		if (k < l->prepared_chains.n) {
			diff = xstrdup(l->prepared_dirs.v[k]);
		} else if (store_layer_exists(l->s, chains[i])) {
			diff = store_layer_diff_path(l->s, pl);
		} else {
			label = xasprintf("layer %zu (%s)", i + 1, p->layer_paths[i]);
			src.label = label;
			if (source_open_member(&l->src, p->layer_paths[i], &src.fd, &src.offset,
			                       &src.length, &owned, err) < 0) {
				err_wrap(err, "%s", label);
				goto out;
			}
			if (owned)
				owned_fd = src.fd;
			src.diff_id = cfg.diff_ids[i];
			if (desc) {
				if (oci_layer_compression(desc->media_type, &src.compression, err) <
				    0) {
					err_wrap(err, "%s", label);
					goto out;
				}
				src.check_compression = true;
				src.digest = desc->digest;
				if ((uint64_t)desc->size != src.length) {
					err_set(err, EINVAL,
					        "%s: blob is %" PRIu64 " bytes, the manifest "
					        "says %" PRId64,
					        label, src.length, desc->size);
					goto out;
				}
			}
			below = xcalloc(i + 1, sizeof(int));
			for (size_t b = 0; b < i; b++)
				below[b] = lowers[i - 1 - b];
			ret = store_unpack_layer(l->s, &l->job, &src, below, i, pl, err);
			free(below);
			if (ret < 0)
				goto out;
			ret = -1;
			diff = store_layer_diff_path(l->s, pl);
			strv_push(&l->prepared_chains, chains[i]);
			strv_push(&l->prepared_dirs, diff);
		}
		lowers[i] = open(diff, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (lowers[i] < 0) {
			err_sys(err, "open %s", diff);
			goto out;
		}
	}
	ret = 0;
out:
	for (i = 0; i < p->n_layers; i++)
		if (lowers[i] >= 0)
			close(lowers[i]);
	free(lowers);
	strv_free(chains);
	image_config_release(&cfg);
	return ret;
}

int store_load(struct store *s, const char *path, const char *tag, struct strv *loaded,
               struct err *err)
{
	struct loader l = {.s = s, .job = {.lockfd = -1}, .src = {.dirfd = -1, .tarfd = -1}};
	_cleanup_free_ char *source_desc = NULL;
	int ret = -1;

	if (store_lock(s, STORE_LOCK_SHARED, err) < 0)
		return err_wrap(err, "load %s", path);
	if (store_job_create(s, &l.job, err) < 0 || source_open(&l.job, path, &l.src, err) < 0)
		goto out;
	if (source_has(&l.src, "manifest.json")) {
		source_desc = xasprintf("load docker-archive %s", path);
		if (plan_docker_archive(&l, err) < 0)
			goto out;
	} else if (source_has(&l.src, "index.json")) {
		source_desc = xasprintf("load oci-layout %s", path);
		if (plan_oci_layout(&l, err) < 0)
			goto out;
	} else {
		err_set(err, EINVAL,
		        "neither a docker save archive (no manifest.json) nor an OCI "
		        "image layout (no index.json)");
		goto out;
	}
	if (l.n_plans == 0) {
		err_set(err, ENOENT, "no images in the archive");
		goto out;
	}
	if (tag) {
		if (l.n_plans != 1) {
			err_set(err, EINVAL,
			        "--tag needs an archive with exactly one image (it has %zu)",
			        l.n_plans);
			goto out;
		}
		if (add_ref(&l.plans[0], tag, err) < 0)
			goto out;
	}
	/* Everything is unpacked and verified before anything is committed. */
	for (size_t i = 0; i < l.n_plans; i++)
		if (prepare_image(&l, &l.plans[i], err) < 0)
			goto out;
	for (size_t i = 0; i < l.n_plans; i++) {
		struct image_plan *p = &l.plans[i];
		_cleanup_free_ char *id = NULL;
		struct store_commit c = {.config = p->config,
		                         .config_len = p->config_len,
		                         .manifest = p->manifest,
		                         .manifest_len = p->manifest_len,
		                         .layers = p->layers,
		                         .n_layers = p->n_layers,
		                         .refs = strv_array(&p->refs),
		                         .source = source_desc};

		if (store_commit_image(s, &c, &id, err) < 0)
			goto out;
		if (p->refs.n == 0)
			strv_push(loaded, id);
		for (size_t k = 0; k < p->refs.n; k++)
			strv_push(loaded, p->refs.v[k]);
	}
	ret = 0;
out:
	for (size_t i = 0; i < l.n_plans; i++)
		plan_release(&l.plans[i]);
	free(l.plans);
	strv_release(&l.prepared_chains);
	strv_release(&l.prepared_dirs);
	source_release(&l.src);
	store_job_destroy(s, &l.job);
	store_unlock(s);
	if (ret < 0)
		return err_wrap(err, "load %s", path);
	return 0;
}
