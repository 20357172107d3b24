/* Images made here rather than loaded: `rollout image import` of a rootfs tarball,
 * --change instructions applied to a config, and the builder's parent + directory
 * layer + config (store_create_image). */
#include "image/decompress.h"
#include "image/store.h"
#include "image/store_internal.h"
#include "image/tar.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- --change instructions ---- */

/* Split "a b 'c d'" into words, honouring quotes and backslashes. */
static int split_words(const char *s, struct strv *out, struct err *err)
{
	while (*s) {
		struct strbuf w = STRBUF_INIT;
		char quote = 0;

		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		sb_adds(&w, "");
		for (; *s; s++) {
			if (quote) {
				if (*s == quote)
					quote = 0;
				else if (*s == '\\' && quote == '"' && s[1])
					sb_addc(&w, *++s);
				else
					sb_addc(&w, *s);
			} else if (*s == '"' || *s == '\'') {
				quote = *s;
			} else if (*s == '\\' && s[1]) {
				sb_addc(&w, *++s);
			} else if (*s == ' ' || *s == '\t') {
				break;
			} else {
				sb_addc(&w, *s);
			}
		}
		if (quote) {
			sb_release(&w);
			return err_set(err, EINVAL, "unterminated quote");
		}
		strv_push_take(out, sb_detach(&w));
	}
	return 0;
}

/* CMD/ENTRYPOINT/VOLUME: JSON array, or the shell form. */
static cJSON *command_value(const char *arg, bool shell_form)
{
	cJSON *v = cJSON_Parse(arg);
	cJSON *it;

	if (v && cJSON_IsArray(v)) {
		bool strings = true;

		cJSON_ArrayForEach(it, v) strings = strings && cJSON_IsString(it);
		if (strings)
			return v;
	}
	if (v)
		cJSON_Delete(v);
	v = cJSON_CreateArray();
	if (shell_form) {
		cJSON_AddItemToArray(v, cJSON_CreateString("/bin/sh"));
		cJSON_AddItemToArray(v, cJSON_CreateString("-c"));
	}
	cJSON_AddItemToArray(v, cJSON_CreateString(arg));
	return v;
}

static void set_item(cJSON *obj, const char *key, cJSON *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	cJSON_AddItemToObject(obj, key, v);
}

static void env_set(cJSON *cfg, const char *key, const char *value)
{
	cJSON *env = cJSON_GetObjectItemCaseSensitive(cfg, "Env"), *it, *next;
	size_t klen = strlen(key);
	_cleanup_free_ char *kv = xasprintf("%s=%s", key, value);

	if (!cJSON_IsArray(env)) {
		env = cJSON_CreateArray();
		set_item(cfg, "Env", env);
	}
	for (it = env->child; it; it = next) {
		next = it->next;
		if (cJSON_IsString(it) && strncmp(it->valuestring, key, klen) == 0 &&
		    it->valuestring[klen] == '=') {
			cJSON_ReplaceItemViaPointer(env, it, cJSON_CreateString(kv));
			return;
		}
	}
	cJSON_AddItemToArray(env, cJSON_CreateString(kv));
}

/* KEY=VALUE pairs, or the legacy "KEY VALUE" form. */
static int apply_pairs(cJSON *cfg, const char *what, const char *arg, bool env, struct err *err)
{
	_cleanup_strvs_ struct strv words = STRV_INIT;
	cJSON *labels = NULL;

	if (!env) {
		labels = cJSON_GetObjectItemCaseSensitive(cfg, "Labels");
		if (!cJSON_IsObject(labels)) {
			labels = cJSON_CreateObject();
			set_item(cfg, "Labels", labels);
		}
	}
	if (!strchr(arg, '=') || (strchr(arg, ' ') && strchr(arg, ' ') < strchr(arg, '='))) {
		/* ENV KEY rest of the line */
		const char *sp = strpbrk(arg, " \t");
		_cleanup_free_ char *key = sp ? xstrndup(arg, (size_t)(sp - arg)) : xstrdup(arg);
		const char *value = sp ? sp + strspn(sp, " \t") : "";

		if (!sp)
			return err_set(err, EINVAL, "%s needs KEY=VALUE", what);
		if (env)
			env_set(cfg, key, value);
		else
			set_item(labels, key, cJSON_CreateString(value));
		return 0;
	}
	if (split_words(arg, &words, err) < 0)
		return -1;
	for (size_t i = 0; i < words.n; i++) {
		char *eq = strchr(words.v[i], '=');

		if (!eq || eq == words.v[i])
			return err_set(err, EINVAL, "%s: '%s' is not KEY=VALUE", what, words.v[i]);
		*eq = '\0';
		if (env)
			env_set(cfg, words.v[i], eq + 1);
		else
			set_item(labels, words.v[i], cJSON_CreateString(eq + 1));
	}
	return 0;
}

static int apply_keys(cJSON *cfg, const char *key, const char *arg, bool json_ok, struct err *err)
{
	_cleanup_strvs_ struct strv words = STRV_INIT;
	cJSON *obj = cJSON_GetObjectItemCaseSensitive(cfg, key);
	cJSON *arr = json_ok ? cJSON_Parse(arg) : NULL;
	cJSON *it;

	if (!cJSON_IsObject(obj)) {
		obj = cJSON_CreateObject();
		set_item(cfg, key, obj);
	}
	if (arr && cJSON_IsArray(arr)) {
		cJSON_ArrayForEach(it, arr)
		{
			if (cJSON_IsString(it))
				strv_push(&words, it->valuestring);
		}
	} else if (split_words(arg, &words, err) < 0) {
		if (arr)
			cJSON_Delete(arr);
		return -1;
	}
	if (arr)
		cJSON_Delete(arr);
	for (size_t i = 0; i < words.n; i++) {
		_cleanup_free_ char *k = strchr(words.v[i], '/') || strcmp(key, "Volumes") == 0
		                             ? xstrdup(words.v[i])
		                             : xasprintf("%s/tcp", words.v[i]);

		set_item(obj, k, cJSON_CreateObject());
	}
	return 0;
}

int store_apply_change(cJSON *doc, const char *change, struct err *err)
{
	const char *sp = change + strcspn(change, " \t");
	_cleanup_free_ char *instr = xstrndup(change, (size_t)(sp - change));
	const char *arg = sp + strspn(sp, " \t");
	cJSON *cfg = cJSON_GetObjectItemCaseSensitive(doc, "config");
	size_t alen = strlen(arg);

	for (char *p = instr; *p; p++)
		*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	while (alen && (arg[alen - 1] == ' ' || arg[alen - 1] == '\n'))
		alen--;
	{
		_cleanup_free_ char *a = xstrndup(arg, alen);

		if (!cJSON_IsObject(cfg)) {
			cfg = cJSON_CreateObject();
			set_item(doc, "config", cfg);
		}
		if (!*a)
			return err_set(err, EINVAL, "change '%s': missing argument", change);
		if (strcmp(instr, "ENV") == 0)
			return apply_pairs(cfg, "ENV", a, true, err);
		if (strcmp(instr, "LABEL") == 0)
			return apply_pairs(cfg, "LABEL", a, false, err);
		if (strcmp(instr, "CMD") == 0) {
			set_item(cfg, "Cmd", command_value(a, true));
			return 0;
		}
		if (strcmp(instr, "ENTRYPOINT") == 0) {
			set_item(cfg, "Entrypoint", command_value(a, true));
			return 0;
		}
		if (strcmp(instr, "WORKDIR") == 0) {
			set_item(cfg, "WorkingDir", cJSON_CreateString(a));
			return 0;
		}
		if (strcmp(instr, "USER") == 0) {
			set_item(cfg, "User", cJSON_CreateString(a));
			return 0;
		}
		if (strcmp(instr, "STOPSIGNAL") == 0) {
			set_item(cfg, "StopSignal", cJSON_CreateString(a));
			return 0;
		}
		if (strcmp(instr, "EXPOSE") == 0)
			return apply_keys(cfg, "ExposedPorts", a, false, err);
		if (strcmp(instr, "VOLUME") == 0)
			return apply_keys(cfg, "Volumes", a, true, err);
	}
	return err_set(err, EINVAL,
	               "change '%s': unsupported instruction (ENV, CMD, ENTRYPOINT, WORKDIR, USER, "
	               "LABEL, EXPOSE, VOLUME, STOPSIGNAL)",
	               change);
}

/* ---- import and build ---- */

static cJSON *new_config_doc(void)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON *rootfs;

	cJSON_AddStringToObject(doc, "architecture", oci_host_arch());
	cJSON_AddStringToObject(doc, "os", "linux");
	cJSON_AddItemToObject(doc, "config", cJSON_CreateObject());
	rootfs = cJSON_AddObjectToObject(doc, "rootfs");
	cJSON_AddStringToObject(rootfs, "type", "layers");
	cJSON_AddArrayToObject(rootfs, "diff_ids");
	cJSON_AddArrayToObject(doc, "history");
	return doc;
}

static void add_history(cJSON *doc, const char *created, const char *by, bool empty)
{
	cJSON *hist = cJSON_GetObjectItemCaseSensitive(doc, "history");
	cJSON *h = cJSON_CreateObject();

	if (!cJSON_IsArray(hist)) {
		hist = cJSON_CreateArray();
		set_item(doc, "history", hist);
	}
	cJSON_AddStringToObject(h, "created", created);
	cJSON_AddStringToObject(h, "created_by", by);
	if (empty)
		cJSON_AddTrueToObject(h, "empty_layer");
	cJSON_AddItemToArray(hist, h);
}

static void add_diff_id(cJSON *doc, const char *diff_id)
{
	cJSON *rootfs = cJSON_GetObjectItemCaseSensitive(doc, "rootfs");
	cJSON *diffs = cJSON_GetObjectItemCaseSensitive(rootfs, "diff_ids");

	cJSON_AddItemToArray(diffs, cJSON_CreateString(diff_id));
}

static char *now_iso(void)
{
	char buf[ISO8601_LEN];

	iso8601_format(wall_now(), buf, sizeof(buf));
	return xstrdup(buf);
}

/* Open a file (or stdin) as a layer source. */
static int open_layer_file(const char *path, int *fd, struct layer_src *src, struct err *err)
{
	struct stat st;

	if (strcmp(path, "-") == 0)
		*fd = dup(STDIN_FILENO);
	else
		*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return err_sys(err, "open %s", path);
	if (fstat(*fd, &st) < 0)
		return err_sys(err, "stat %s", path);
	memset(src, 0, sizeof(*src));
	src->fd = *fd;
	if (S_ISREG(st.st_mode)) {
		src->offset = (uint64_t)lseek(*fd, 0, SEEK_CUR);
		src->length = (uint64_t)st.st_size - src->offset;
	} else if (S_ISDIR(st.st_mode)) {
		return err_set(err, EISDIR, "%s is a directory, not a tarball", path);
	} else {
		src->length = DECOMPRESS_STREAM;
	}
	return 0;
}

int store_import(struct store *s, const char *path, const char *ref, char *const *changes,
                 char **out_id, struct err *err)
{
	_cleanup_free_ char *norm = NULL, *created = now_iso(), *text = NULL, *source = NULL;
	_cleanup_json_ cJSON *doc = new_config_doc();
	_cleanup_close_ int fd = -1;
	struct prepared_layer layer = {0};
	struct store_job job = {.lockfd = -1};
	struct layer_src src;
	char *refs[2] = {NULL, NULL};
	int ret = -1;

	if (ref && !(norm = store_normalize_ref(ref, err)))
		return -1;
	for (char *const *c = changes; c && *c; c++)
		if (store_apply_change(doc, *c, err) < 0)
			return -1;
	if (open_layer_file(path, &fd, &src, err) < 0)
		return -1;
	src.label = path;
	if (store_lock(s, STORE_LOCK_SHARED, err) < 0)
		return -1;
	if (store_job_create(s, &job, err) < 0)
		goto out;
	if (store_unpack_layer(s, &job, &src, NULL, 0, &layer, err) < 0)
		goto out;
	layer.chain_id = xstrdup(layer.diff_id);
	layer.media_type =
	    xstrdup(layer.digest && strcmp(layer.digest, layer.diff_id) != 0 ? OCI_MEDIA_LAYER_GZIP
	                                                                     : OCI_MEDIA_LAYER_TAR);
	cJSON_AddStringToObject(doc, "created", created);
	add_diff_id(doc, layer.diff_id);
	add_history(doc, created, "rollout image import", false);
	text = cJSON_PrintUnformatted(doc);
	refs[0] = norm;
	source = xasprintf("import %s", path);
	{
		struct store_commit c = {.config = text,
		                         .config_len = strlen(text),
		                         .layers = &layer,
		                         .n_layers = 1,
		                         .refs = refs,
		                         .source = source};

		ret = store_commit_image(s, &c, out_id, err);
	}
out:
	prepared_layer_release(&layer);
	store_job_destroy(s, &job);
	store_unlock(s);
	return ret;
}

static int past_deadline(double deadline, struct err *err)
{
	if (deadline > 0 && mono_now() >= deadline)
		return err_set(err, ETIMEDOUT, "timed out before the image was committed");
	return 0;
}

/* Writes an overlay upper dir as a layer tarball into the job directory. */
static int write_layer_tar(struct store_job *j, int dirfd, double deadline, char **path,
                           struct err *err)
{
	_cleanup_close_ int fd = -1;
	struct tar_tree_opts to = {.flags = TAR_TREE_OVERLAY | TAR_TREE_XATTRS | TAR_TREE_SORTED,
	                           .fixed_mtime = -1,
	                           .deadline = deadline};
	struct tar_writer *w;
	int ret;

	*path = xasprintf("%s/layer.tar", j->dir);
	fd = open(*path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys(err, "create %s", *path);
	w = tar_writer_new_fd(fd);
	ret = tar_write_tree(w, dirfd, ".", "", &to, err);
	if (ret == 0)
		ret = tar_writer_finish(w, err);
	tar_writer_free(w);
	return ret;
}

int store_create_image(struct store *s, const struct store_new_image *n, char **out_id,
                       struct err *err)
{
	struct store_image *parent = NULL;
	_cleanup_json_ cJSON *doc = NULL;
	_cleanup_free_ char *created = now_iso(), *text = NULL, *tar_path = NULL, *norm = NULL;
	struct store_job job = {.lockfd = -1};
	struct prepared_layer *layers = NULL;
	size_t n_layers = 0, n_parent = 0;
	int *lowers = NULL;
	char *refs[2] = {NULL, NULL};
	int ret = -1;

	if (n->ref && !(norm = store_normalize_ref(n->ref, err)))
		return -1;
	if (past_deadline(n->deadline, err) < 0 || store_lock(s, STORE_LOCK_SHARED, err) < 0)
		return -1;
	if (n->parent) {
		if (store_lookup_locked(s, n->parent, &parent, err) < 0)
			goto out;
		doc = cJSON_Duplicate(parent->config.json, true);
	} else {
		doc = new_config_doc();
	}
	if (n->config)
		set_item(doc, "config", cJSON_Duplicate(n->config, true));
	n_layers = n_parent = parent ? parent->n_layers : 0;
	layers = xcalloc(n_parent + 1, sizeof(*layers));
	for (size_t i = 0; i < n_layers; i++) {
		layers[i].chain_id = xstrdup(parent->chain_ids[i]);
		layers[i].diff_id = xstrdup(parent->config.diff_ids[i]);
	}
	if (n->layer_dirfd >= 0) {
		_cleanup_close_ int fd = -1;
		struct layer_src src = {.label = "new layer", .deadline = n->deadline};
		char *chain[1];

		if (store_job_create(s, &job, err) < 0 ||
		    write_layer_tar(&job, n->layer_dirfd, n->deadline, &tar_path, err) < 0)
			goto out;
		fd = open(tar_path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			err_sys(err, "open %s", tar_path);
			goto out;
		}
		src.fd = fd;
		src.length = (uint64_t)lseek(fd, 0, SEEK_END);
		lowers = xmalloc((n_parent + 1) * sizeof(int));
		for (size_t i = 0; i <= n_parent; i++)
			lowers[i] = -1;
		for (size_t i = 0; i < n_layers; i++) {
			lowers[i] = open(parent->layer_dirs[n_layers - 1 - i],
			                 O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (lowers[i] < 0) {
				err_sys(err, "open %s", parent->layer_dirs[n_layers - 1 - i]);
				goto out;
			}
		}
		if (store_unpack_layer(s, &job, &src, lowers, n_layers, &layers[n_layers], err) < 0)
			goto out;
		unlink(tar_path);
		if (n_layers) {
			char *pair[2] = {layers[n_layers - 1].chain_id, layers[n_layers].diff_id};
			char *both[2];

			oci_chain_ids(pair, 2, both);
			free(both[0]);
			chain[0] = both[1];
		} else {
			chain[0] = xstrdup(layers[0].diff_id);
		}
		layers[n_layers].chain_id = chain[0];
		layers[n_layers].media_type = xstrdup(OCI_MEDIA_LAYER_TAR);
		add_diff_id(doc, layers[n_layers].diff_id);
		n_layers++;
	}
	set_item(doc, "created", cJSON_CreateString(created));
	for (const char *const *h = n->history; h && *h; h++)
		add_history(doc, created, *h, true);
	add_history(doc, created, n->created_by ? n->created_by : "rollout", n->layer_dirfd < 0);
	text = cJSON_PrintUnformatted(doc);
	refs[0] = norm;
	if (past_deadline(n->deadline, err) < 0)
		goto out;
	{
		struct store_commit c = {.config = text,
		                         .config_len = strlen(text),
		                         .layers = layers,
		                         .n_layers = n_layers,
		                         .refs = refs,
		                         .source = n->created_by,
		                         .parent = parent ? parent->id : NULL,
		                         .intermediate = n->intermediate};

		ret = store_commit_image(s, &c, out_id, err);
	}
out:
	if (lowers) {
		for (size_t i = 0; i < n_parent; i++)
			if (lowers[i] >= 0)
				close(lowers[i]);
		free(lowers);
	}
	for (size_t i = 0; layers && i < n_parent + 1; i++)
		prepared_layer_release(&layers[i]);
	free(layers);
	store_image_free(parent);
	store_job_destroy(s, &job);
	store_unlock(s);
	return ret;
}
