/* The Dockerfile builder (see build.h). A build walks the stages the target needs,
 * keeping per stage: the last image committed to the store, the config being
 * built (Env, Cmd, ...), the metadata steps not yet in an image, the ARGs in
 * scope, and a rolling cache key (the base image, then every step after
 * substitution, plus the content digest of COPY/ADD sources). A step that makes a
 * layer commits an image (parent + the step container's upper directory + the
 * config) and records key → image in $ROLLOUT_HOME/build-cache/; metadata steps
 * only change the config. A rebuild whose keys are all cached runs nothing. */
#include "image/build.h"
#include "image/build_internal.h"
#include "image/dockerfile.h"
#include "image/oci.h"
#include "image/store.h"
#include "image/store_internal.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAIL_LINES 15
#define DEFAULT_SHELL_0 "/bin/sh"
#define DEFAULT_SHELL_1 "-c"
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Build args Docker passes to RUN without an ARG, and leaves out of the cache. */
static const char *const proxy_args[] = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                                         "FTP_PROXY",  "ftp_proxy",  "NO_PROXY",    "no_proxy",
                                         "ALL_PROXY",  "all_proxy",  NULL};

struct stage {
	char *name;         /* lowercased "AS" name, or NULL */
	size_t first, last; /* its instructions: FROM at first, up to last (exclusive) */
	bool needed;
	bool started, done;
	char *image_id;      /* last image committed for this stage; NULL = nothing yet */
	cJSON *config;       /* the "config" object being built */
	struct strv history; /* metadata steps since image_id */
	char key[SHA256_HEX_LEN + 1];
	/* The variables instructions and RUN see: the image's Env, then every ENV
	 * and every ARG with a value, the later assignment winning (BuildKit's
	 * order: an ARG after an ENV of the same name wins in RUN, not in the
	 * image's Env). NAME=VALUE. */
	struct strv vars;
	struct strv declared; /* every ARG name declared in the stage */
	bool cmd_set;
};

struct tail {
	char *lines[TAIL_LINES];
	int next;
	struct strbuf partial;
	int log_fd;
};

struct builder {
	struct store *s;
	const struct build_opts *o;
	struct dockerfile *df;
	struct stage *stages;
	size_t n_stages;
	struct strv global_args; /* NAME=VALUE */
	struct strv build_args;  /* --build-arg NAME=VALUE */
	struct strv used_args;
	struct dockerignore *ignore;
	int ctx_fd;
	struct store_job job;
	bool have_job;
	char *name; /* "rollout-build-<hex>": prefix of container names, the mark */
	char *mark_dir;
	int mark_fd;
	unsigned seq;
	int step, n_steps;
	double deadline;
	const char *doing; /* what the step was doing, for a timeout: "while copying" */
	struct tail tail;
	char *empty_layer; /* an empty directory: the only "layer" of FROM scratch */
};

/* ---- output ---- */

static void out_write(struct builder *b, const char *s, size_t n)
{
	if (b->o->log_fd >= 0 && n)
		(void)!write(b->o->log_fd, s, n);
}

static void say(struct builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct builder *b, const char *fmt, ...)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	va_list ap;

	if (b->o->quiet)
		return;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	sb_addc(&sb, '\n');
	out_write(b, sb.buf, sb.len);
}

static void tail_reset(struct tail *t)
{
	for (int i = 0; i < TAIL_LINES; i++) {
		free(t->lines[i]);
		t->lines[i] = NULL;
	}
	t->next = 0;
	sb_reset(&t->partial);
}

static void tail_push(struct tail *t)
{
	free(t->lines[t->next]);
	t->lines[t->next] = sb_detach(&t->partial);
	t->next = (t->next + 1) % TAIL_LINES;
}

/* Command output: to the log as it comes, and its last lines kept for errors. */
static void on_output(void *ctx, const char *data, size_t len)
{
	struct builder *b = ctx;
	struct tail *t = &b->tail;

	if (!b->o->quiet)
		out_write(b, data, len);
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n')
			tail_push(t);
		else if (data[i] != '\r' && t->partial.len < 400)
			sb_addc(&t->partial, data[i]);
	}
}

static void tail_append(struct tail *t, struct strbuf *msg)
{
	bool any = false;

	if (t->partial.len)
		tail_push(t);
	for (int i = 0; i < TAIL_LINES; i++) {
		const char *line = t->lines[(t->next + i) % TAIL_LINES];

		if (!line)
			continue;
		if (!any)
			sb_adds(msg, "\nlast output:");
		any = true;
		sb_addf(msg, "\n  %s", line);
	}
}

/* ---- small helpers ---- */

static void set_item(cJSON *obj, const char *key, cJSON *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	cJSON_AddItemToObject(obj, key, v);
}

static cJSON *string_array(char *const *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();

	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
	return a;
}

static void strv_set_kv(struct strv *sv, const char *key, const char *value)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < sv->n; i++)
		if (strncmp(sv->v[i], key, kl) == 0 && sv->v[i][kl] == '=') {
			free(sv->v[i]);
			sv->v[i] = xasprintf("%s=%s", key, value);
			return;
		}
	strv_pushf(sv, "%s=%s", key, value);
}

static const char *strv_get_kv(const struct strv *sv, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < sv->n; i++)
		if (strncmp(sv->v[i], key, kl) == 0 && sv->v[i][kl] == '=')
			return sv->v[i] + kl + 1;
	return NULL;
}

static void config_env(const cJSON *cfg, struct strv *out)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(cfg, "Env"))
	{
		if (cJSON_IsString(it))
			strv_push(out, it->valuestring);
	}
}

static void config_set_env(cJSON *cfg, const char *key, const char *value)
{
	cJSON *env = cJSON_GetObjectItemCaseSensitive(cfg, "Env"), *it;
	size_t kl = strlen(key);
	_cleanup_free_ char *kv = xasprintf("%s=%s", key, value);

	if (!cJSON_IsArray(env)) {
		env = cJSON_CreateArray();
		set_item(cfg, "Env", env);
	}
	cJSON_ArrayForEach(it, env)
	{
		if (cJSON_IsString(it) && strncmp(it->valuestring, key, kl) == 0 &&
		    it->valuestring[kl] == '=') {
			cJSON_ReplaceItemViaPointer(env, it, cJSON_CreateString(kv));
			return;
		}
	}
	cJSON_AddItemToArray(env, cJSON_CreateString(kv));
}

/* The variables an instruction of the stage sees. */
static void stage_vars(const struct stage *st, struct strv *out)
{
	for (size_t i = 0; i < st->vars.n; i++)
		strv_push(out, st->vars.v[i]);
}

static void key_step(char key[SHA256_HEX_LEN + 1], const char *desc)
{
	struct sha256 sh;

	sha256_init(&sh);
	sha256_update(&sh, key, strlen(key));
	sha256_update(&sh, "\n", 1);
	sha256_update(&sh, desc, strlen(desc));
	sha256_final_hex(&sh, key);
}

static const char *platform(void)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "linux/%s", oci_host_arch());
	return buf;
}

/* The automatic platform ARGs. */
static const char *auto_arg(const char *name)
{
	static const char *const names[] = {"TARGETPLATFORM", "BUILDPLATFORM", "TARGETOS",
	                                    "BUILDOS",        "TARGETARCH",    "BUILDARCH",
	                                    "TARGETVARIANT",  "BUILDVARIANT"};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(name, names[i]) == 0) {
			if (i < 2)
				return platform();
			if (i < 4)
				return "linux";
			if (i < 6)
				return oci_host_arch();
			return "";
		}
	return NULL;
}

/* "Dockerfile:12: COPY ...: message" */
#define FERR(err, b, in, code, ...) instr_error(err, b, in, code, __VA_ARGS__)

static int instr_error(struct err *err, struct builder *b, const struct df_instr *in, int code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int instr_error(struct err *err, struct builder *b, const struct df_instr *in, int code,
                       const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(err, code, "%s:%d: %s: %s", b->df->name, in->line, df_cmd_name(in->cmd),
	               msg);
}

/* The build's deadline passed during (or before) step `in`: one message for every
 * kind of step, naming its line, number and instruction. */
static int timeout_error(struct err *err, struct builder *b, const struct df_instr *in)
{
	size_t n = strcspn(in->text, "\n");

	return err_set(err, ETIMEDOUT, "%s:%d: step %d/%d: %.*s%s: the build timed out (%g s)%s%s",
	               b->df->name, in->line, b->step, b->n_steps, (int)(n > 120 ? 120 : n),
	               in->text, n > 120 ? "..." : "", b->o->timeout_sec, b->doing ? " " : "",
	               b->doing ? b->doing : "");
}

/* Whether an ETIMEDOUT is the build's deadline (not some inner wait's). */
static bool deadline_passed(const struct builder *b)
{
	/* The RUN's own timer is set to the deadline and may fire a hair early. */
	return b->deadline > 0 && mono_now() >= b->deadline - 0.05;
}

/* Every failed step names its line: the build timeout one way, errors that do
 * not already (a commit's, say) with "Dockerfile:N: INSTRUCTION:". */
static int step_error(struct err *err, struct builder *b, const struct df_instr *in)
{
	_cleanup_free_ char *prefix = xasprintf("%s:", b->df->name);

	if (err->code == ETIMEDOUT && deadline_passed(b))
		return timeout_error(err, b, in);
	if (!str_starts_with(err->msg, prefix))
		return FERR(err, b, in, err->code, "%s", err->msg);
	return -1;
}

/* word with vars ("K=V", the later wins) substituted; errors name the line. */
static int expand_with(struct builder *b, const struct df_instr *in, const struct strv *vars,
                       const char *word, char **out, struct err *err)
{
	struct df_env env = {.vars = vars->v, .n = vars->n};

	if (df_expand_word(word, b->df->escape, &env, out, err) < 0)
		return FERR(err, b, in, err->code, "%s", err->msg);
	return 0;
}

static int expand(struct builder *b, const struct stage *st, const struct df_instr *in,
                  const char *word, char **out, struct err *err)
{
	return expand_with(b, in, &st->vars, word, out, err);
}

/* ---- the store: cache, marks, images ---- */

static char *cache_path(struct builder *b, const char *key)
{
	return xasprintf("%s/build-cache/%.2s/%s", store_root(b->s), key, key);
}

/* The image a key maps to: 1 hit (id set, or NULL for "no change"), 0 miss. */
static int cache_get(struct builder *b, const char *key, char **id)
{
	_cleanup_free_ char *path = cache_path(b, key), *text = NULL;
	struct store_image *img = NULL;
	struct err ignored = {0};

	*id = NULL;
	if (b->o->no_cache || read_file(path, 256, &text, NULL, NULL) < 0)
		return 0;
	text[strcspn(text, "\r\n")] = '\0';
	if (strcmp(text, "-") == 0)
		return 1;
	if (!oci_digest_valid(text) || store_image_lookup(b->s, text, &img, &ignored) < 0)
		return 0;
	store_image_free(img);
	*id = steal_ptr(&text);
	return 1;
}

static void cache_put(struct builder *b, const char *key, const char *id)
{
	_cleanup_free_ char *path = cache_path(b, key);
	_cleanup_free_ char *tmp = xasprintf("%s.%d.tmp", path, (int)getpid());
	_cleanup_free_ char *dir = xstrndup(path, strlen(path) - SHA256_HEX_LEN - 1);
	_cleanup_free_ char *line = xasprintf("%s\n", id ? id : "-");
	struct err err = {0};

	if (mkdir_p(dir, 0700, &err) < 0 || write_file(tmp, line, strlen(line), 0644, &err) < 0 ||
	    rename(tmp, path) < 0) {
		unlink(tmp);
		log_debug("build cache %s: %s", path, err.msg[0] ? err.msg : strerror(errno));
	}
}

/* envs/<name>/image lists every image the build stands on, so that a prune keeps
 * them; the directory's flock keeps `rollout gc` away from it. */
static int mark_update(struct builder *b, struct err *err)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	_cleanup_free_ char *file = path_join(b->mark_dir, "image");
	_cleanup_free_ char *tmp = path_join(b->mark_dir, "image.tmp");

	for (size_t i = 0; i < b->n_stages; i++)
		if (b->stages[i].image_id)
			sb_addf(&sb, "%s\n", b->stages[i].image_id);
	if (write_file(tmp, sb_str(&sb), sb.len, 0644, err) < 0)
		return -1;
	if (rename(tmp, file) < 0)
		return err_sys(err, "rename %s", file);
	return 0;
}

static int mark_create(struct builder *b, struct err *err)
{
	_cleanup_free_ char *envs = path_join(store_root(b->s), "envs");

	b->mark_dir = path_join(envs, b->name);
	if (mkdir_p(envs, 0700, err) < 0)
		return -1;
	if (mkdir(b->mark_dir, 0700) < 0)
		return err_sys(err, "mkdir %s", b->mark_dir);
	b->mark_fd = open(b->mark_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->mark_fd < 0 || flock(b->mark_fd, LOCK_EX | LOCK_NB) < 0)
		return err_sys(err, "lock %s", b->mark_dir);
	return 0;
}

static void mark_remove(struct builder *b)
{
	if (!b->mark_dir)
		return;
	rm_rf(b->mark_dir, NULL);
	if (b->mark_fd >= 0)
		close(b->mark_fd);
	b->mark_fd = -1;
}

/* The stage's state becomes the image id (committed or cached). */
static int stage_take_image(struct builder *b, struct stage *st, const char *id, struct err *err)
{
	struct store_image *img = NULL;
	const cJSON *cfg;

	if (store_image_lookup(b->s, id, &img, err) < 0)
		return -1;
	cfg = cJSON_GetObjectItemCaseSensitive(img->config.json, "config");
	cJSON_Delete(st->config);
	st->config = cJSON_IsObject(cfg) ? cJSON_Duplicate(cfg, true) : cJSON_CreateObject();
	free(st->image_id);
	st->image_id = xstrdup(img->id);
	strv_release(&st->history);
	store_image_free(img);
	return mark_update(b, err);
}

/* Commits the stage's state (plus a layer when layer_fd >= 0) as a new image. */
static int stage_commit(struct builder *b, struct stage *st, int layer_fd, const char *created_by,
                        struct err *err)
{
	struct store_new_image n = {0};
	_cleanup_free_ char *id = NULL;
	_cleanup_free_ const char **hist = xcalloc(st->history.n + 1, sizeof(char *));

	for (size_t i = 0; i < st->history.n; i++)
		hist[i] = st->history.v[i];
	n.parent = st->image_id;
	n.layer_dirfd = layer_fd;
	n.config = st->config;
	n.created_by = created_by;
	n.history = hist;
	n.intermediate = true;
	n.deadline = b->deadline;
	if (store_create_image(b->s, &n, &id, err) < 0)
		return err_wrap(err, "commit");
	free(st->image_id);
	st->image_id = steal_ptr(&id);
	strv_release(&st->history);
	cache_put(b, st->key, st->image_id);
	return mark_update(b, err);
}

/* ---- step containers ---- */

struct step_box {
	void *handle;
	char *dir; /* <job>/<n>: upper/ and work/ */
	char *upper;
	struct store_image *img;
};

static int box_start(struct builder *b, const struct stage *st, const char *image_id, bool network,
                     struct step_box *box, struct err *err)
{
	_cleanup_strvs_ struct strv env = STRV_INIT;
	_cleanup_free_ char *name = xasprintf("%s-%u", b->name, ++b->seq);
	_cleanup_free_ char *work = NULL;
	_cleanup_free_ const char **layers = NULL;
	struct build_container_spec spec = {0};
	const cJSON *cfg = st ? st->config : NULL;

	memset(box, 0, sizeof(*box));
	box->dir = xasprintf("%s/%u", b->job.dir, b->seq);
	box->upper = path_join(box->dir, "upper");
	work = path_join(box->dir, "work");
	if (mkdir(box->dir, 0700) < 0 || mkdir(box->upper, 0755) < 0 || mkdir(work, 0700) < 0)
		return err_sys(err, "mkdir %s", box->dir);
	if (image_id) {
		if (store_image_lookup(b->s, image_id, &box->img, err) < 0)
			return -1;
		if (!cfg)
			cfg = cJSON_GetObjectItemCaseSensitive(box->img->config.json, "config");
	}
	if (box->img && box->img->n_layers) {
		layers = xcalloc(box->img->n_layers + 1, sizeof(char *));
		for (size_t i = 0; i < box->img->n_layers; i++)
			layers[i] = box->img->layer_dirs[i];
		spec.n_layers = box->img->n_layers;
	} else {
		layers = xcalloc(2, sizeof(char *));
		layers[0] = b->empty_layer;
		spec.n_layers = 1;
	}
	config_env(cfg, &env);
	spec.name = name;
	spec.image_id = image_id;
	spec.layers = layers;
	spec.userxattr = store_whiteout_form(b->s) == STORE_WHITEOUTS_USER;
	spec.env = (const char *const *)strv_array(&env);
	spec.workdir = json_get_str(cfg, "WorkingDir");
	spec.user = json_get_str(cfg, "User");
	spec.upper_dir = box->upper;
	spec.work_dir = work;
	spec.network = network;
	spec.cpus = b->o->cpus;
	spec.memory_bytes = b->o->memory_bytes;
	spec.pids_limit = b->o->pids_limit;
	if (b->o->runner->start(b->o->runner->ctx, &spec, &box->handle, err) < 0) {
		box->handle = NULL;
		return -1;
	}
	return 0;
}

/* Stops the container (its upper directory stays until box_remove). */
static int box_stop(struct builder *b, struct step_box *box, struct err *err)
{
	int rc = 0;

	if (box->handle)
		rc = b->o->runner->stop(box->handle, err);
	box->handle = NULL;
	return rc;
}

static void box_remove(struct builder *b, struct step_box *box)
{
	struct err ignored = {0};

	box_stop(b, box, &ignored);
	if (box->dir)
		b->o->runner->remove_tree(b->o->runner->ctx, box->dir, &ignored);
	free(box->dir);
	free(box->upper);
	store_image_free(box->img);
	memset(box, 0, sizeof(*box));
}

static bool dir_is_empty(const char *path)
{
	_cleanup_closedir_ DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return false;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			return false;
	return true;
}

/* Stops the box and commits its upper directory as the step's layer (or the
 * step as metadata when it changed nothing and may_be_empty). */
static int box_commit(struct builder *b, struct stage *st, struct step_box *box,
                      const struct df_instr *in, bool may_be_empty, struct err *err)
{
	_cleanup_close_ int fd = -1;

	if (box_stop(b, box, err) < 0)
		return -1;
	b->doing = "while committing the step's layer";
	if (may_be_empty && dir_is_empty(box->upper)) {
		strv_push(&st->history, in->text);
		cache_put(b, st->key, NULL);
		return 0;
	}
	fd = open(box->upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, "open %s", box->upper);
	return stage_commit(b, st, fd, in->text, err);
}

/* ---- instructions ---- */

/* Looks the step up in the cache: 1 = done (state taken from the cache). */
static int step_cached(struct builder *b, struct stage *st, const struct df_instr *in,
                       struct err *err)
{
	_cleanup_free_ char *id = NULL;

	if (!cache_get(b, st->key, &id))
		return 0;
	if (!id)
		strv_push(&st->history, in->text);
	else if (stage_take_image(b, st, id, err) < 0)
		return -1;
	say(b, " ---> Using cache");
	return 1;
}

static int do_arg(struct builder *b, struct stage *st, const struct df_instr *in, struct strv *desc,
                  struct err *err)
{
	for (size_t i = 0; i < in->n_args; i++) {
		_cleanup_free_ char *name = NULL, *value = NULL;
		const char *eq = strchr(in->args[i], '=');
		const char *given;
		_cleanup_free_ char *raw_name =
		    eq ? xstrndup(in->args[i], (size_t)(eq - in->args[i])) : xstrdup(in->args[i]);

		if (expand(b, st, in, raw_name, &name, err) < 0)
			return -1;
		if (eq && expand(b, st, in, eq + 1, &value, err) < 0)
			return -1;
		given = strv_get_kv(&b->build_args, name);
		if (given) {
			free(value);
			value = xstrdup(given);
			if (!strv_contains(&b->used_args, name))
				strv_push(&b->used_args, name);
		} else if (!eq) {
			const char *g = strv_get_kv(&b->global_args, name);
			const char *a = auto_arg(name);

			if (g)
				value = xstrdup(g);
			else if (a)
				value = xstrdup(a);
		}
		if (!strv_contains(&st->declared, name))
			strv_push(&st->declared, name);
		if (value) {
			strv_set_kv(&st->vars, name, value);
			strv_pushf(desc, "%s=%s", name, value);
		} else {
			strv_push(desc, name);
		}
	}
	return 0;
}

/* ENV and LABEL: every pair expanded with the variables from before the step. */
static int do_pairs(struct builder *b, struct stage *st, const struct df_instr *in,
                    struct strv *desc, struct err *err)
{
	_cleanup_strvs_ struct strv kv = STRV_INIT;
	cJSON *labels = NULL;

	for (size_t i = 0; i + 1 < in->n_args; i += 2) {
		char *k = NULL, *v = NULL;

		if (expand(b, st, in, in->args[i], &k, err) < 0)
			return -1;
		if (expand(b, st, in, in->args[i + 1], &v, err) < 0) {
			free(k);
			return -1;
		}
		if (!*k) {
			free(k);
			free(v);
			return FERR(err, b, in, EINVAL, "names can not be blank");
		}
		strv_push_take(&kv, k);
		strv_push_take(&kv, v);
	}
	if (in->cmd == DF_LABEL) {
		labels = cJSON_GetObjectItemCaseSensitive(st->config, "Labels");
		if (!cJSON_IsObject(labels)) {
			labels = cJSON_CreateObject();
			set_item(st->config, "Labels", labels);
		}
	}
	for (size_t i = 0; i + 1 < kv.n; i += 2) {
		if (in->cmd == DF_ENV) {
			config_set_env(st->config, kv.v[i], kv.v[i + 1]);
			strv_set_kv(&st->vars, kv.v[i], kv.v[i + 1]);
		} else
			set_item(labels, kv.v[i], cJSON_CreateString(kv.v[i + 1]));
		strv_pushf(desc, "%s=%s", kv.v[i], kv.v[i + 1]);
	}
	return 0;
}

static cJSON *shell_command(const struct stage *st, const struct df_instr *in, const char *text)
{
	const cJSON *shell = cJSON_GetObjectItemCaseSensitive(st->config, "Shell");
	cJSON *a;

	if (in->json)
		return string_array(in->args, in->n_args);
	if (cJSON_IsArray(shell) && cJSON_GetArraySize(shell) > 0)
		a = cJSON_Duplicate(shell, true);
	else {
		a = cJSON_CreateArray();
		cJSON_AddItemToArray(a, cJSON_CreateString(DEFAULT_SHELL_0));
		cJSON_AddItemToArray(a, cJSON_CreateString(DEFAULT_SHELL_1));
	}
	cJSON_AddItemToArray(a, cJSON_CreateString(text));
	return a;
}

static int parse_ports(struct builder *b, struct stage *st, const struct df_instr *in,
                       struct strv *desc, struct err *err)
{
	_cleanup_strvs_ struct strv vars = STRV_INIT;
	struct df_env env;
	char **words = NULL;
	size_t n = 0;
	cJSON *ports = cJSON_GetObjectItemCaseSensitive(st->config, "ExposedPorts");
	int rc = 0;

	stage_vars(st, &vars);
	env.vars = vars.v;
	env.n = vars.n;
	for (size_t i = 0; i < in->n_args && rc == 0; i++)
		if (df_expand_words(in->args[i], b->df->escape, &env, &words, &n, err) < 0)
			rc = FERR(err, b, in, err->code, "%s", err->msg);
	if (!cJSON_IsObject(ports)) {
		ports = cJSON_CreateObject();
		set_item(st->config, "ExposedPorts", ports);
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		char *slash = strchr(words[i], '/');
		const char *proto = slash ? slash + 1 : "tcp";
		unsigned long lo, hi;
		char *end;

		if (slash)
			*slash = '\0';
		lo = strtoul(words[i], &end, 10);
		hi = lo;
		if (*end == '-')
			hi = strtoul(end + 1, &end, 10);
		if (*end || !*words[i] || lo == 0 || hi > 65535 || hi < lo || hi - lo > 65535 ||
		    (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0 &&
		     strcmp(proto, "sctp") != 0)) {
			rc = FERR(err, b, in, EINVAL, "invalid port '%s%s%s'", words[i],
			          slash ? "/" : "", slash ? proto : "");
			break;
		}
		for (unsigned long p = lo; p <= hi; p++) {
			_cleanup_free_ char *k = xasprintf("%lu/%s", p, proto);

			set_item(ports, k, cJSON_CreateObject());
			strv_push(desc, k);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(words[i]);
	free(words);
	return rc;
}

/* "1m30s", "500ms", "10s" -> nanoseconds; -1 when invalid. */
static double parse_duration(const char *s)
{
	double total = 0;

	if (!*s)
		return -1;
	while (*s) {
		char *end;
		double v = strtod(s, &end);
		double unit;

		if (end == s)
			return -1;
		s = end;
		if (strncmp(s, "ns", 2) == 0)
			unit = 1, s += 2;
		else if (strncmp(s, "us", 2) == 0)
			unit = 1e3, s += 2;
		else if (strncmp(s, "ms", 2) == 0)
			unit = 1e6, s += 2;
		else if (*s == 's')
			unit = 1e9, s++;
		else if (*s == 'm')
			unit = 60e9, s++;
		else if (*s == 'h')
			unit = 3600e9, s++;
		else
			return -1;
		total += v * unit;
	}
	return total;
}

static int do_healthcheck(struct builder *b, struct stage *st, const struct df_instr *in,
                          struct err *err)
{
	static const struct {
		const char *flag, *key;
	} durations[] = {{"interval", "Interval"},
	                 {"timeout", "Timeout"},
	                 {"start-period", "StartPeriod"},
	                 {"start-interval", "StartInterval"}};
	cJSON *hc = cJSON_CreateObject(), *test = cJSON_CreateArray();

	set_item(st->config, "Healthcheck", hc);
	cJSON_AddItemToObject(hc, "Test", test);
	if (strcmp(in->args[0], "NONE") == 0) {
		cJSON_AddItemToArray(test, cJSON_CreateString("NONE"));
		return 0;
	}
	if (in->json) {
		cJSON_AddItemToArray(test, cJSON_CreateString("CMD"));
		for (size_t i = 1; i < in->n_args; i++)
			cJSON_AddItemToArray(test, cJSON_CreateString(in->args[i]));
	} else {
		cJSON_AddItemToArray(test, cJSON_CreateString("CMD-SHELL"));
		cJSON_AddItemToArray(test, cJSON_CreateString(in->args[1]));
	}
	for (size_t i = 0; i < ARRAY_SIZE(durations); i++) {
		const struct df_flag *f = df_instr_flag(in, durations[i].flag);
		double ns;

		if (!f || !f->value)
			continue;
		ns = parse_duration(f->value);
		if (ns < 0)
			return FERR(err, b, in, EINVAL, "--%s: invalid duration '%s'", f->name,
			            f->value);
		cJSON_AddNumberToObject(hc, durations[i].key, ns);
	}
	if (df_instr_flag(in, "retries") && df_instr_flag(in, "retries")->value)
		cJSON_AddNumberToObject(hc, "Retries", atoi(df_instr_flag(in, "retries")->value));
	return 0;
}

/* WORKDIR: relative paths go below the current one. */
static char *join_workdir(const char *cur, const char *path)
{
	if (path[0] == '/')
		return xstrdup(path);
	if (!cur || !*cur)
		cur = "/";
	return xasprintf("%s%s%s", cur, str_ends_with(cur, "/") ? "" : "/", path);
}

/* Lexically cleaned absolute path ("/a/./b/../c/" -> "/a/c"). */
static char *clean_abs(const char *p)
{
	_cleanup_free_ char *rel = path_clean_relative(p);

	return xasprintf("/%s", rel ? rel : "");
}

static int owner_of(struct builder *b, struct step_box *box, const char *spec, uid_t *uid,
                    gid_t *gid, struct err *err)
{
	const struct build_runner *r = b->o->runner;
	char *end;
	unsigned long u, g;
	const char *colon = strchr(spec, ':');
	_cleanup_free_ char *user = colon ? xstrndup(spec, (size_t)(colon - spec)) : xstrdup(spec);
	unsigned ru, rg;

	/* Numbers are taken as they are; a uid alone is also the gid (Docker's rule). */
	u = strtoul(user, &end, 10);
	if (*user && !*end) {
		*uid = (uid_t)u;
		*gid = (gid_t)u;
	} else {
		if (r->resolve_user(box->handle, user, &ru, &rg, err) < 0)
			return -1;
		*uid = ru;
		*gid = rg;
	}
	if (colon) {
		g = strtoul(colon + 1, &end, 10);
		if (colon[1] && !*end) {
			*gid = (gid_t)g;
		} else {
			_cleanup_free_ char *spec2 = xasprintf("0:%s", colon + 1);

			if (r->resolve_user(box->handle, spec2, &ru, &rg, err) < 0)
				return -1;
			*gid = rg;
		}
	}
	return 0;
}

static int do_workdir(struct builder *b, struct stage *st, const struct df_instr *in,
                      struct err *err)
{
	_cleanup_free_ char *path = NULL, *wd = NULL, *desc = NULL;
	struct step_box box;
	const char *user = json_get_str(st->config, "User");
	int root, rc;
	uid_t uid = 0;
	gid_t gid = 0;

	if (expand(b, st, in, in->args[0], &path, err) < 0)
		return -1;
	if (!*path)
		return FERR(err, b, in, EINVAL, "needs a path");
	{
		_cleanup_free_ char *joined =
		    join_workdir(json_get_str(st->config, "WorkingDir"), path);

		wd = clean_abs(joined); /* "/a/b/../c/" is "/a/c", as Docker writes it */
	}
	desc = xasprintf("WORKDIR %s user=%s", wd, user ? user : "");
	key_step(st->key, desc);
	rc = step_cached(b, st, in, err);
	if (rc != 0) {
		set_item(st->config, "WorkingDir", cJSON_CreateString(wd));
		return rc < 0 ? -1 : 0;
	}
	/* The directory is created (with its missing parents) owned by the USER;
	 * the container starts in the old one (it would make the new one as root). */
	rc = box_start(b, st, st->image_id, false, &box, err);
	set_item(st->config, "WorkingDir", cJSON_CreateString(wd));
	if (rc < 0)
		goto fail;
	root = b->o->runner->root_fd(box.handle, err);
	if (root < 0 || (user && *user && owner_of(b, &box, user, &uid, &gid, err) < 0))
		goto fail;
	if (geteuid() != 0 && (uid != 0 || gid != 0)) {
		/* Rootless: files can only be given to the ids of the caller. */
		log_warn_once("build-rootless-workdir",
		              "WORKDIR %s: a rootless build cannot make it owned by %s", wd, user);
		uid = 0;
		gid = 0;
	}
	if (geteuid() != 0) {
		uid = geteuid();
		gid = getegid();
	}
	{
		int fd = copy_mkdir_p(root, wd, uid, gid, err);

		if (fd < 0) {
			FERR(err, b, in, err->code, "%s", err->msg);
			goto fail;
		}
		close(fd);
	}
	rc = box_commit(b, st, &box, in, true, err);
	box_remove(b, &box);
	return rc;
fail:
	box_remove(b, &box);
	return -1;
}

static bool env_has_key(const struct strv *env, const char *name)
{
	return strv_get_kv(env, name) != NULL;
}

/* RUN: argv (heredocs as BuildKit runs them), env = config Env + ARGs + proxies. */
static int do_run(struct builder *b, struct stage *st, const struct df_instr *in, struct err *err)
{
	_cleanup_json_ cJSON *argv_json = NULL;
	_cleanup_strvs_ struct strv env = STRV_INIT, argv = STRV_INIT;
	_cleanup_free_ char *desc = NULL, *script = NULL, *script_name = NULL, *argv_text = NULL;
	const struct df_flag *net = df_instr_flag(in, "network");
	const char *bad[] = {"mount", "security"};
	struct step_box box = {0};
	struct build_exec x = {0};
	bool network = b->o->network;
	int exit_code = 0, rc, root;
	const cJSON *it;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (df_instr_flag(in, bad[i]))
			return FERR(err, b, in, ENOTSUP,
			            "--%s is not supported by the sandbox builder", bad[i]);
	if (net) {
		if (net->value && strcmp(net->value, "none") == 0)
			network = false;
		else if (net->value && strcmp(net->value, "host") == 0)
			network = true;
		else if (!net->value || strcmp(net->value, "default") != 0)
			return FERR(err, b, in, EINVAL,
			            "--network=%s: expected none, host or default",
			            net->value ? net->value : "");
	}
	if (in->n_heredocs && !in->json) {
		const struct df_heredoc *h = &in->heredocs[0];
		_cleanup_free_ char *name = NULL;

		if (df_heredoc_word(in->args[0], &name, NULL, NULL) && strcmp(name, h->name) == 0) {
			/* The whole command is one heredoc: its content is the script,
			 * run as a file when it starts with "#!". */
			char *data = h->chomp ? df_heredoc_chomp(h->content) : xstrdup(h->content);

			if (str_starts_with(data, "#!")) {
				script = data;
				script_name = xstrdup(h->name);
				argv_text = xasprintf("/dev/pipes/%s", h->name);
			} else {
				argv_text = data;
			}
		} else {
			struct strbuf full = STRBUF_INIT;

			sb_adds(&full, in->args[0]);
			for (size_t i = 0; i < in->n_heredocs; i++)
				sb_addf(&full, "\n%s%s", in->heredocs[i].content,
				        in->heredocs[i].name);
			argv_text = sb_detach(&full);
		}
	}
	argv_json = shell_command(st, in, argv_text ? argv_text : in->args[0]);
	cJSON_ArrayForEach(it, argv_json) strv_push(&argv, it->valuestring);

	stage_vars(st, &env);
	for (const char *const *p = proxy_args; *p; p++) {
		const char *v = strv_get_kv(&b->build_args, *p);

		if (v && !env_has_key(&env, *p)) {
			strv_pushf(&env, "%s=%s", *p, v);
			if (!strv_contains(&b->used_args, *p))
				strv_push(&b->used_args, *p);
		}
	}
	{
		char *a = cJSON_PrintUnformatted(argv_json);

		/* Like Docker's, the key leaves the network mode out. */
		desc = xasprintf("RUN %s%s%s", a, script ? "\nscript:" : "", script ? script : "");
		free(a);
	}
	key_step(st->key, desc);
	rc = step_cached(b, st, in, err);
	if (rc != 0)
		return rc < 0 ? -1 : 0;

	{
		/* The command sees the ARGs in its environment, not in the image. */
		cJSON *saved = cJSON_Duplicate(st->config, true);
		cJSON *env_json = string_array(env.v, env.n);

		set_item(st->config, "Env", env_json);
		rc = box_start(b, st, st->image_id, network, &box, err);
		cJSON_Delete(st->config);
		st->config = saved;
		if (rc < 0)
			goto fail;
	}
	if (script) {
		_cleanup_close_ int dev = -1, pipes = -1, fd = -1;

		root = b->o->runner->root_fd(box.handle, err);
		if (root < 0)
			goto fail;
		/* /dev is the container's own tmpfs: the script is not part of the layer. */
		dev = openat(root, "dev", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dev < 0 || (mkdirat(dev, "pipes", 0755) < 0 && errno != EEXIST) ||
		    (pipes = openat(dev, "pipes", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) <
		        0 ||
		    (fd = openat(pipes, script_name,
		                 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755)) < 0 ||
		    write_all(fd, script, strlen(script)) < 0) {
			err_sys(err, "write the heredoc script");
			goto fail;
		}
	}
	tail_reset(&b->tail);
	x.argv = (const char *const *)argv.v;
	x.timeout_sec = b->deadline > 0 ? b->deadline - mono_now() : 0;
	if (b->deadline > 0 && x.timeout_sec < 0.001)
		x.timeout_sec = 0.001;
	x.output = on_output;
	x.output_ctx = b;
	b->doing = "while the command ran";
	if (b->o->runner->exec(box.handle, &x, &exit_code, err) < 0)
		goto fail;
	if (b->tail.partial.len) {
		out_write(b, "\n", 1);
		tail_push(&b->tail);
	}
	if (exit_code != 0) {
		_cleanup_sb_ struct strbuf msg = STRBUF_INIT;

		sb_addf(&msg, "%s:%d: step %d/%d: %s: the command exited with code %d", b->df->name,
		        in->line, b->step, b->n_steps, in->text, exit_code);
		tail_append(&b->tail, &msg);
		err_set(err, EIO, "%s", msg.buf);
		box_remove(b, &box);
		return -1;
	}
	rc = box_commit(b, st, &box, in, false, err);
	box_remove(b, &box);
	return rc;
fail:
	box_remove(b, &box);
	return FERR(err, b, in, err->code, "%s", err->msg);
}

static struct stage *find_stage(struct builder *b, const char *ref, size_t before)
{
	char *end;
	unsigned long idx = strtoul(ref, &end, 10);

	if (*ref && !*end)
		return idx < before ? &b->stages[idx] : NULL;
	for (size_t i = 0; i < before; i++)
		if (b->stages[i].name && strcasecmp(b->stages[i].name, ref) == 0)
			return &b->stages[i];
	return NULL;
}

static bool is_url(const char *s)
{
	return str_starts_with(s, "http://") || str_starts_with(s, "https://") ||
	       str_starts_with(s, "git@") || str_starts_with(s, "git://");
}

static void copy_sources_free(struct copy_source *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].path);
		free(v[i].data);
	}
	free(v);
}

/* A flag's value, expanded; *out stays NULL when the flag is absent. */
static int flag_value(struct builder *b, const struct stage *st, const struct df_instr *in,
                      const struct df_flag *f, char **out, struct err *err)
{
	if (!f)
		return 0;
	if (!f->value)
		return FERR(err, b, in, EINVAL, "--%s needs a value", f->name);
	return expand(b, st, in, f->value, out, err);
}

static int do_copy(struct builder *b, struct stage *st, size_t idx, const struct df_instr *in,
                   struct err *err)
{
	struct copy_request r = {0};
	const struct df_flag *from = df_instr_flag(in, "from"), *chown = df_instr_flag(in, "chown");
	const struct df_flag *chmod_f = df_instr_flag(in, "chmod");
	_cleanup_free_ char *from_v = NULL, *chown_v = NULL, *chmod_v = NULL, *dest = NULL;
	_cleanup_free_ char *dest_abs = NULL;
	_cleanup_sb_ struct strbuf desc = STRBUF_INIT;
	struct stage *src_stage = NULL;
	struct store_image *src_img = NULL;
	struct step_box box = {0}, src_box = {0};
	char digest[SHA256_HEX_LEN + 1] = "";
	bool add = in->cmd == DF_ADD;
	int rc = -1, root;

	for (size_t i = 0; i < in->n_flags; i++) {
		const char *n = in->flags[i].name;

		if (strcmp(n, "parents") == 0 || strcmp(n, "exclude") == 0 ||
		    strcmp(n, "keep-git-dir") == 0 || strcmp(n, "checksum") == 0)
			return FERR(err, b, in, ENOTSUP,
			            "--%s is not supported by the sandbox builder", n);
	}
	if (flag_value(b, st, in, from, &from_v, err) < 0 ||
	    flag_value(b, st, in, chown, &chown_v, err) < 0 ||
	    flag_value(b, st, in, chmod_f, &chmod_v, err) < 0)
		return -1;
	if (chmod_v) {
		char *end;
		unsigned long m = strtoul(chmod_v, &end, 8);

		if (!*chmod_v || *end || m > 07777)
			return FERR(err, b, in, EINVAL, "--chmod=%s: expected an octal mode",
			            chmod_v);
		r.chmod = true;
		r.mode = (mode_t)m;
	}
	if (expand(b, st, in, in->args[in->n_args - 1], &dest, err) < 0)
		return -1;
	r.what = df_cmd_name(in->cmd);
	r.srcs = xcalloc(in->n_args, sizeof(*r.srcs));
	for (size_t i = 0; i + 1 < in->n_args; i++) {
		_cleanup_free_ char *hname = NULL;
		const struct df_heredoc *h = NULL;

		if (!in->json && df_heredoc_word(in->args[i], &hname, NULL, NULL))
			for (size_t k = 0; k < in->n_heredocs; k++)
				if (strcmp(in->heredocs[k].name, hname) == 0)
					h = &in->heredocs[k];
		if (h) {
			_cleanup_free_ char *content =
			    h->chomp ? df_heredoc_chomp(h->content) : xstrdup(h->content);
			char *data = NULL;

			if (h->expand) {
				_cleanup_strvs_ struct strv vars = STRV_INIT;
				struct df_env env;

				stage_vars(st, &vars);
				env.vars = vars.v;
				env.n = vars.n;
				if (df_expand_heredoc(content, b->df->escape, &env, &data, err) <
				    0) {
					FERR(err, b, in, err->code, "%s", err->msg);
					goto out;
				}
			} else {
				data = steal_ptr(&content);
			}
			r.srcs[r.n_srcs].path = xstrdup(h->name);
			r.srcs[r.n_srcs].len = strlen(data);
			r.srcs[r.n_srcs++].data = data;
			continue;
		}
		if (expand(b, st, in, in->args[i], &r.srcs[r.n_srcs].path, err) < 0)
			goto out;
		if (is_url(r.srcs[r.n_srcs].path)) {
			FERR(
			    err, b, in, ENOTSUP,
			    "%s: downloading is not supported by the sandbox builder; put the file "
			    "in the build context",
			    r.srcs[r.n_srcs].path);
			r.n_srcs++;
			goto out;
		}
		r.n_srcs++;
	}
	/* The destination: below WORKDIR when relative; a directory when it says so. */
	{
		_cleanup_free_ char *joined =
		    join_workdir(json_get_str(st->config, "WorkingDir"), dest);

		dest_abs = clean_abs(joined);
	}
	r.dest = dest_abs;
	r.dest_dir = str_ends_with(dest, "/") || strcmp(dest, ".") == 0 || !*dest ||
	             str_ends_with(dest, "/.");
	if (r.n_srcs > 1 && !r.dest_dir) {
		FERR(err, b, in, EINVAL,
		     "when copying several sources, the destination must be a directory and end "
		     "with a /");
		goto out;
	}
	r.extract = add;
	r.root_uid = geteuid();
	r.root_gid = getegid();
	r.chown = chown_v != NULL;
	r.preserve_owner = from_v != NULL;
	sb_addf(&desc, "%s chown=%s chmod=%s dest=%s%s", r.what, chown_v ? chown_v : "",
	        chmod_v ? chmod_v : "", dest_abs, r.dest_dir ? "/" : "");
	for (size_t i = 0; i < r.n_srcs; i++)
		sb_addf(&desc, " src=%s%s", r.srcs[i].path, r.srcs[i].data ? "(heredoc)" : "");
	if (from_v) {
		src_stage = find_stage(b, from_v, idx);
		if (src_stage) {
			if (!src_stage->done) {
				FERR(err, b, in, EINVAL, "--from=%s: stage not built", from_v);
				goto out;
			}
			sb_addf(&desc, " from-stage=%s", src_stage->key);
		} else if (store_image_lookup(b->s, from_v, &src_img, err) < 0) {
			if (err->code == ENOENT)
				FERR(err, b, in, ENOENT,
				     "--from=%s: no such stage, and no such image in the store "
				     "(load it "
				     "with `rollout image load FILE` or `rollout image import "
				     "ROOTFS.tar "
				     "--tag %s`)",
				     from_v, from_v);
			else
				FERR(err, b, in, err->code, "%s", err->msg);
			goto out;
		} else {
			sb_addf(&desc, " from-image=%s", src_img->id);
		}
	} else {
		r.src_root = b->ctx_fd;
		r.context = true;
		r.ignore = b->ignore;
		r.deadline = b->deadline;
		b->doing = "while reading the sources";
		if (copy_digest(&r, digest, err) < 0) {
			FERR(err, b, in, err->code, "%s", err->msg);
			goto out;
		}
		sb_addf(&desc, " content=%s", digest);
	}
	for (size_t i = 0; i < r.n_srcs; i++)
		if (r.srcs[i].data)
			sb_addf(&desc, "\n%s", r.srcs[i].data);
	key_step(st->key, desc.buf);
	rc = step_cached(b, st, in, err);
	if (rc != 0) {
		rc = rc < 0 ? -1 : 0;
		goto out;
	}
	rc = -1;
	if (box_start(b, st, st->image_id, false, &box, err) < 0)
		goto fail;
	root = b->o->runner->root_fd(box.handle, err);
	if (root < 0)
		goto fail;
	if (chown_v && owner_of(b, &box, chown_v, &r.uid, &r.gid, err) < 0)
		goto fail;
	if (from_v) {
		if (box_start(b, NULL, src_stage ? src_stage->image_id : src_img->id, false,
		              &src_box, err) < 0)
			goto fail;
		r.src_root = b->o->runner->root_fd(src_box.handle, err);
		if (r.src_root < 0)
			goto fail;
	}
	r.deadline = b->deadline;
	b->doing = "while copying";
	if (copy_run(&r, root, err) < 0)
		goto fail;
	box_remove(b, &src_box);
	rc = box_commit(b, st, &box, in, false, err);
	box_remove(b, &box);
	goto out;
fail:
	box_remove(b, &src_box);
	box_remove(b, &box);
	FERR(err, b, in, err->code, "%s", err->msg);
	rc = -1;
out:
	copy_sources_free(r.srcs, r.n_srcs);
	store_image_free(src_img);
	return rc;
}

/* What a metadata step left must fit in the store: the config (read back only up
 * to STORE_MAX_CONFIG) and the variables every later step copies (the same
 * bound; ENV puts each value in both). Checked here so that the error names the
 * line that went too far, long before a commit could. */
static int check_sizes(struct builder *b, const struct stage *st, const struct df_instr *in,
                       struct err *err)
{
	size_t vars = 0, config;
	char *text;

	for (size_t i = 0; i < st->vars.n; i++)
		vars += strlen(st->vars.v[i]) + 1;
	if (vars > STORE_MAX_CONFIG)
		return FERR(err, b, in, EFBIG,
		            "the stage's variables (ENV and ARG) would take %zu bytes, more than "
		            "the %d allowed",
		            vars, STORE_MAX_CONFIG);
	if (in->cmd == DF_ARG || in->cmd == DF_MAINTAINER)
		return 0;
	text = cJSON_PrintUnformatted(st->config);
	config = text ? strlen(text) : SIZE_MAX;
	free(text);
	if (config > STORE_MAX_CONFIG)
		return FERR(err, b, in, EFBIG,
		            "the image config would be %zu bytes, more than the %d an image config "
		            "may have",
		            config, STORE_MAX_CONFIG);
	return 0;
}

/* Metadata instructions: the config only. */
static int do_metadata(struct builder *b, struct stage *st, const struct df_instr *in,
                       struct err *err)
{
	_cleanup_strvs_ struct strv desc = STRV_INIT;
	_cleanup_free_ char *v = NULL;
	_cleanup_sb_ struct strbuf d = STRBUF_INIT;

	switch (in->cmd) {
	case DF_ARG:
		if (do_arg(b, st, in, &desc, err) < 0)
			return -1;
		break;
	case DF_ENV:
	case DF_LABEL:
		if (do_pairs(b, st, in, &desc, err) < 0)
			return -1;
		break;
	case DF_USER:
	case DF_STOPSIGNAL:
		if (expand(b, st, in, in->args[0], &v, err) < 0)
			return -1;
		set_item(st->config, in->cmd == DF_USER ? "User" : "StopSignal",
		         cJSON_CreateString(v));
		strv_push(&desc, v);
		break;
	case DF_SHELL:
		set_item(st->config, "Shell", string_array(in->args, in->n_args));
		break;
	case DF_CMD:
		set_item(st->config, "Cmd", shell_command(st, in, in->n_args ? in->args[0] : ""));
		st->cmd_set = true;
		break;
	case DF_ENTRYPOINT:
		set_item(st->config, "Entrypoint",
		         shell_command(st, in, in->n_args ? in->args[0] : ""));
		/* An inherited CMD does not go with a new ENTRYPOINT. */
		if (!st->cmd_set)
			set_item(st->config, "Cmd", cJSON_CreateNull());
		break;
	case DF_EXPOSE:
		if (parse_ports(b, st, in, &desc, err) < 0)
			return -1;
		break;
	case DF_VOLUME: {
		cJSON *vols = cJSON_GetObjectItemCaseSensitive(st->config, "Volumes");

		if (!cJSON_IsObject(vols)) {
			vols = cJSON_CreateObject();
			set_item(st->config, "Volumes", vols);
		}
		for (size_t i = 0; i < in->n_args; i++) {
			char *p = NULL;

			if (expand(b, st, in, in->args[i], &p, err) < 0)
				return -1;
			if (!*p) {
				free(p);
				return FERR(err, b, in, EINVAL,
				            "VOLUME specified can not be empty");
			}
			set_item(vols, p, cJSON_CreateObject());
			strv_push_take(&desc, p);
		}
		break;
	}
	case DF_HEALTHCHECK:
		if (do_healthcheck(b, st, in, err) < 0)
			return -1;
		break;
	case DF_ONBUILD: {
		cJSON *ob = cJSON_GetObjectItemCaseSensitive(st->config, "OnBuild");

		if (!cJSON_IsArray(ob)) {
			ob = cJSON_CreateArray();
			set_item(st->config, "OnBuild", ob);
		}
		cJSON_AddItemToArray(ob, cJSON_CreateString(in->args[0]));
		say(b, " ---> recorded as an ONBUILD trigger (images built FROM this one do not "
		       "run it: the sandbox builder ignores triggers)");
		break;
	}
	case DF_MAINTAINER:
		say(b, " ---> MAINTAINER is deprecated; ignored (use LABEL)");
		break;
	default:
		return FERR(err, b, in, EINVAL, "unexpected instruction");
	}
	if (check_sizes(b, st, in, err) < 0)
		return -1;
	/* The key: the instruction and what it resolved to. */
	sb_addf(&d, "%s", in->text);
	for (size_t i = 0; i < desc.n; i++)
		sb_addf(&d, "\n%s", desc.v[i]);
	if (in->cmd == DF_CMD || in->cmd == DF_ENTRYPOINT || in->cmd == DF_SHELL) {
		char *c = cJSON_PrintUnformatted(st->config);

		sb_addf(&d, "\n%s", c);
		free(c);
	}
	key_step(st->key, d.buf);
	if (in->cmd != DF_ARG)
		strv_push(&st->history, in->text);
	return 0;
}

/* ---- stages ---- */

static void global_vars(const struct builder *b, struct strv *out)
{
	static const char *const autos[] = {"TARGETPLATFORM", "BUILDPLATFORM", "TARGETOS",
	                                    "BUILDOS",        "TARGETARCH",    "BUILDARCH",
	                                    "TARGETVARIANT",  "BUILDVARIANT"};

	for (size_t i = 0; i < ARRAY_SIZE(autos); i++)
		strv_pushf(out, "%s=%s", autos[i], auto_arg(autos[i]));
	for (size_t i = 0; i < b->global_args.n; i++)
		strv_push(out, b->global_args.v[i]);
}

static int expand_global(struct builder *b, const struct df_instr *in, const char *word, char **out,
                         struct err *err)
{
	_cleanup_strvs_ struct strv vars = STRV_INIT;

	global_vars(b, &vars);
	return expand_with(b, in, &vars, word, out, err);
}

/* The ARGs before the first FROM. */
static int global_args(struct builder *b, size_t n, struct err *err)
{
	for (size_t i = 0; i < n; i++) {
		const struct df_instr *in = &b->df->v[i];

		if (in->cmd != DF_ARG)
			return FERR(err, b, in, EINVAL,
			            "comes before the first FROM (only ARG may come before FROM)");
		for (size_t k = 0; k < in->n_args; k++) {
			const char *eq = strchr(in->args[k], '=');
			_cleanup_free_ char *raw =
			    eq ? xstrndup(in->args[k], (size_t)(eq - in->args[k]))
			       : xstrdup(in->args[k]);
			_cleanup_free_ char *name = NULL, *value = NULL;
			const char *given;

			if (expand_global(b, in, raw, &name, err) < 0 ||
			    (eq && expand_global(b, in, eq + 1, &value, err) < 0))
				return -1;
			given = strv_get_kv(&b->build_args, name);
			if (given) {
				free(value);
				value = xstrdup(given);
				if (!strv_contains(&b->used_args, name))
					strv_push(&b->used_args, name);
			}
			if (value)
				strv_set_kv(&b->global_args, name, value);
		}
	}
	return 0;
}

static bool valid_stage_name(const char *s)
{
	if (!islower((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-' &&
		    *s != '_' && *s != '.')
			return false;
	return true;
}

static int split_stages(struct builder *b, struct err *err)
{
	size_t first_from = b->df->n;

	for (size_t i = 0; i < b->df->n; i++)
		if (b->df->v[i].cmd == DF_FROM) {
			first_from = i;
			break;
		}
	if (first_from == b->df->n)
		return err_set(err, EINVAL, "%s: no FROM instruction (nothing to build)",
		               b->df->name);
	if (global_args(b, first_from, err) < 0)
		return -1;
	for (size_t i = first_from; i < b->df->n; i++) {
		const struct df_instr *in = &b->df->v[i];
		struct stage *st;

		if (in->cmd != DF_FROM)
			continue;
		b->stages = xrealloc(b->stages, (b->n_stages + 1) * sizeof(*b->stages));
		st = &b->stages[b->n_stages++];
		memset(st, 0, sizeof(*st));
		st->first = i;
		if (in->n_args == 3) {
			st->name = xstrdup(in->args[2]);
			for (char *c = st->name; *c; c++)
				*c = (char)tolower((unsigned char)*c);
			if (!valid_stage_name(st->name))
				return FERR(err, b, in, EINVAL,
				            "invalid name for build stage: '%s'", in->args[2]);
			for (size_t k = 0; k + 1 < b->n_stages; k++)
				if (b->stages[k].name && strcmp(b->stages[k].name, st->name) == 0)
					return FERR(err, b, in, EINVAL, "duplicate stage name '%s'",
					            st->name);
		}
		if (b->n_stages > 1)
			b->stages[b->n_stages - 2].last = i;
	}
	b->stages[b->n_stages - 1].last = b->df->n;
	return 0;
}

/* Marks the stages the target needs: its base stages and those it copies from. */
static int mark_needed(struct builder *b, size_t idx, int depth, struct err *err)
{
	struct stage *st = &b->stages[idx];

	if (st->needed)
		return 0;
	st->needed = true;
	if (depth > 256)
		return err_set(err, ELOOP, "stages nested too deeply");
	for (size_t i = st->first; i < st->last; i++) {
		const struct df_instr *in = &b->df->v[i];
		const struct df_flag *f = df_instr_flag(in, "from");
		_cleanup_free_ char *ref = NULL;
		struct stage *dep;

		if (in->cmd == DF_FROM) {
			if (expand_global(b, in, in->args[0], &ref, err) < 0)
				return -1;
		} else if (in->cmd == DF_COPY && f && f->value) {
			if (expand_global(b, in, f->value, &ref, err) < 0)
				return -1;
		} else {
			continue;
		}
		dep = find_stage(b, ref, idx);
		if (dep && mark_needed(b, (size_t)(dep - b->stages), depth + 1, err) < 0)
			return -1;
	}
	return 0;
}

static int stage_from(struct builder *b, struct stage *st, size_t idx, struct err *err)
{
	const struct df_instr *in = &b->df->v[st->first];
	const struct df_flag *plat = df_instr_flag(in, "platform");
	_cleanup_free_ char *ref = NULL, *desc = NULL;
	struct stage *base;

	if (expand_global(b, in, in->args[0], &ref, err) < 0)
		return -1;
	if (plat && plat->value) {
		_cleanup_free_ char *p = NULL;

		if (expand_global(b, in, plat->value, &p, err) < 0)
			return -1;
		if (strcmp(p, platform()) != 0 && !str_starts_with(p, platform()))
			return FERR(err, b, in, ENOTSUP, "--platform=%s: only %s can be built here",
			            p, platform());
	}
	base = find_stage(b, ref, idx);
	if (base && !(ref[0] && isdigit((unsigned char)ref[0]))) {
		st->image_id = base->image_id ? xstrdup(base->image_id) : NULL;
		st->config = cJSON_Duplicate(base->config, true);
		for (size_t i = 0; i < base->history.n; i++)
			strv_push(&st->history, base->history.v[i]);
		for (size_t i = 0; i < base->vars.n; i++)
			strv_push(&st->vars, base->vars.v[i]);
		desc = xasprintf("FROM stage %s", base->key);
	} else if (strcasecmp(ref, "scratch") == 0) {
		/* What BuildKit gives an image from scratch. */
		st->config = cJSON_CreateObject();
		config_set_env(st->config, "PATH", DEFAULT_PATH);
		cJSON_AddStringToObject(st->config, "WorkingDir", "/");
		config_env(st->config, &st->vars);
		desc = xstrdup("FROM scratch");
	} else {
		struct store_image *img = NULL;
		const cJSON *cfg;

		if (store_image_lookup(b->s, ref, &img, err) < 0) {
			if (err->code == ENOENT)
				return FERR(
				    err, b, in, ENOENT,
				    "base image %s is not in the image store (%s); load it with "
				    "`rollout image load FILE` (a docker save archive or OCI "
				    "layout) or `rollout image import ROOTFS.tar --tag %s`",
				    ref, store_root(b->s), ref);
			return FERR(err, b, in, err->code, "%s", err->msg);
		}
		cfg = cJSON_GetObjectItemCaseSensitive(img->config.json, "config");
		st->config =
		    cJSON_IsObject(cfg) ? cJSON_Duplicate(cfg, true) : cJSON_CreateObject();
		st->image_id = xstrdup(img->id);
		config_env(st->config, &st->vars);
		if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(st->config, "OnBuild")) > 0)
			say(b,
			    " ---> %s has ONBUILD triggers; the sandbox builder does not run them",
			    ref);
		/* The triggers are the base image's, not passed on. */
		cJSON_DeleteItemFromObjectCaseSensitive(st->config, "OnBuild");
		desc = xasprintf("FROM %s", img->id);
		store_image_free(img);
	}
	sha256_hex(desc, strlen(desc), st->key);
	key_step(st->key, "rollout-build-1");
	st->started = true;
	return mark_update(b, err);
}

static int run_stage(struct builder *b, size_t idx, struct err *err)
{
	struct stage *st = &b->stages[idx];

	for (size_t i = st->first; i < st->last; i++) {
		const struct df_instr *in = &b->df->v[i];
		int rc;

		if (cancel_requested())
			return err_set(err, ECANCELED, "build cancelled");
		b->step++;
		b->doing = "before it started";
		if (b->deadline > 0 && mono_now() > b->deadline)
			return timeout_error(err, b, in);
		b->doing = NULL;
		say(b, "Step %d/%d : %s", b->step, b->n_steps, in->text);
		switch (in->cmd) {
		case DF_FROM:
			rc = stage_from(b, st, idx, err);
			break;
		case DF_RUN:
			rc = do_run(b, st, in, err);
			break;
		case DF_COPY:
		case DF_ADD:
			rc = do_copy(b, st, idx, in, err);
			break;
		case DF_WORKDIR:
			rc = do_workdir(b, st, in, err);
			break;
		default:
			rc = do_metadata(b, st, in, err);
			break;
		}
		if (rc < 0)
			return step_error(err, b, in);
		if (st->image_id && !b->o->quiet &&
		    (in->cmd == DF_RUN || in->cmd == DF_COPY || in->cmd == DF_ADD ||
		     in->cmd == DF_FROM))
			say(b, " ---> %.12s", oci_digest_hex(st->image_id));
	}
	st->done = true;
	return 0;
}

/* ---- the build ---- */

static int load_build_args(struct builder *b, struct err *err)
{
	for (const char *const *a = b->o->build_args; a && *a; a++) {
		const char *eq = strchr(*a, '=');

		if (eq == *a)
			return err_set(err, EINVAL, "--build-arg '%s': no name", *a);
		if (eq) {
			_cleanup_free_ char *k = xstrndup(*a, (size_t)(eq - *a));

			strv_set_kv(&b->build_args, k, eq + 1);
		} else if (getenv(*a)) {
			strv_set_kv(&b->build_args, *a, getenv(*a));
		}
	}
	return 0;
}

static int read_dockerfile(struct builder *b, struct err *err)
{
	_cleanup_free_ char *path = b->o->dockerfile ? xstrdup(b->o->dockerfile)
	                                             : path_join(b->o->context_dir, "Dockerfile");
	_cleanup_free_ char *text = NULL;
	size_t len;

	if (read_file(path, 16 << 20, &text, &len, err) < 0)
		return err_wrap(err, "read the Dockerfile");
	return dockerfile_parse(text, len, path_basename(path), &b->df, err);
}

static void builder_release(struct builder *b)
{
	for (size_t i = 0; i < b->n_stages; i++) {
		struct stage *st = &b->stages[i];

		free(st->name);
		free(st->image_id);
		cJSON_Delete(st->config);
		strv_release(&st->history);
		strv_release(&st->vars);
		strv_release(&st->declared);
	}
	free(b->stages);
	strv_release(&b->global_args);
	strv_release(&b->build_args);
	strv_release(&b->used_args);
	dockerignore_free(b->ignore);
	if (b->ctx_fd >= 0)
		close(b->ctx_fd);
	mark_remove(b);
	free(b->mark_dir);
	if (b->have_job) {
		struct err ignored = {0};

		/* Step directories may hold files of the image's other users. */
		b->o->runner->remove_tree(b->o->runner->ctx, b->job.dir, &ignored);
		store_job_destroy(b->s, &b->job);
	}
	free(b->name);
	free(b->empty_layer);
	tail_reset(&b->tail);
	sb_release(&b->tail.partial);
	dockerfile_free(b->df);
}

int image_build(struct store *s, const struct build_opts *o, char **image_id, struct err *err)
{
	struct builder b = {.s = s, .o = o, .ctx_fd = -1, .mark_fd = -1};
	size_t target;
	uint8_t rnd[5];
	char hex[11];
	double t0 = mono_now();
	int rc = -1;

	*image_id = NULL;
	b.job.lockfd = -1;
	b.deadline = o->timeout_sec > 0 ? t0 + o->timeout_sec : 0;
	if (!o->runner)
		return err_set(err, EINVAL, "build: no runner");
	/* A bad tag fails now, not after the build (which would then tag nothing). */
	for (const char *const *t = o->tags; t && *t; t++) {
		_cleanup_free_ char *norm = store_normalize_ref(*t, err);

		if (!norm)
			return err_wrap(err, "tag");
	}
	if (read_dockerfile(&b, err) < 0 || load_build_args(&b, err) < 0 ||
	    split_stages(&b, err) < 0)
		goto out;
	target = b.n_stages - 1;
	if (o->target) {
		struct stage *t = find_stage(&b, o->target, b.n_stages);

		if (!t) {
			err_set(err, ENOENT, "target stage '%s' could not be found", o->target);
			goto out;
		}
		target = (size_t)(t - b.stages);
	}
	if (mark_needed(&b, target, 0, err) < 0)
		goto out;
	for (size_t i = 0; i <= target; i++)
		if (b.stages[i].needed)
			b.n_steps += (int)(b.stages[i].last - b.stages[i].first);
	b.ctx_fd = open(o->context_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (b.ctx_fd < 0) {
		err_sys(err, "build context %s", o->context_dir);
		goto out;
	}
	if (dockerignore_load(o->context_dir, &b.ignore, err) < 0)
		goto out;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		err_sys(err, "getrandom");
		goto out;
	}
	hex_encode(rnd, sizeof(rnd), hex);
	b.name = xasprintf("rollout-build-%s", hex);
	if (store_lock(s, STORE_LOCK_SHARED, err) < 0)
		goto out;
	rc = store_job_create(s, &b.job, err);
	store_unlock(s);
	if (rc < 0)
		goto out;
	rc = -1;
	b.have_job = true;
	b.empty_layer = path_join(b.job.dir, "empty");
	if (mkdir(b.empty_layer, 0755) < 0) {
		err_sys(err, "mkdir %s", b.empty_layer);
		goto out;
	}
	if (mark_create(&b, err) < 0)
		goto out;
	for (size_t i = 0; i <= target; i++)
		if (b.stages[i].needed && run_stage(&b, i, err) < 0)
			goto out;
	{
		struct stage *st = &b.stages[target];

		if (st->history.n || !st->image_id) {
			/* Metadata since the last layer: the final image, cached too. */
			_cleanup_free_ char *id = NULL;

			if (cache_get(&b, st->key, &id) && id) {
				if (stage_take_image(&b, st, id, err) < 0)
					goto out;
			} else {
				b.doing = "while committing the image";
				if (stage_commit(&b, st, -1,
				                 st->history.n ? st->history.v[st->history.n - 1]
				                               : "FROM scratch",
				                 err) < 0) {
					/* The last instruction is the one whose image it is. */
					step_error(err, &b, &b.df->v[st->last - 1]);
					goto out;
				}
			}
		}
		for (const char *const *t = o->tags; t && *t; t++)
			if (store_tag(s, st->image_id, *t, err) < 0) {
				err_wrap(err, "tag %s", *t);
				goto out;
			}
		for (size_t i = 0; i < b.build_args.n; i++) {
			_cleanup_free_ char *k =
			    xstrndup(b.build_args.v[i], strcspn(b.build_args.v[i], "="));

			if (!strv_contains(&b.used_args, k))
				say(&b, "[Warning] build-arg %s was not consumed", k);
		}
		say(&b, "Successfully built %.12s in %.2f s", oci_digest_hex(st->image_id),
		    mono_now() - t0);
		*image_id = xstrdup(st->image_id);
	}
	rc = 0;
out:
	builder_release(&b);
	return rc;
}
