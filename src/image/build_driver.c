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

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---- output ---- */

void build_out_write(struct builder *b, const char *s, size_t n)
{
	if (b->o->log_fd >= 0 && n)
		(void)!write(b->o->log_fd, s, n);
}

void build_say(struct builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void build_say(struct builder *b, const char *fmt, ...)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	va_list ap;

	if (b->o->quiet)
		return;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	sb_addc(&sb, '\n');
	build_out_write(b, sb.buf, sb.len);
}

void build_tail_reset(struct tail *t)
{
	for (int i = 0; i < TAIL_LINES; i++) {
		free(t->lines[i]);
		t->lines[i] = NULL;
	}
	t->next = 0;
	sb_reset(&t->partial);
}

void build_tail_push(struct tail *t)
{
	free(t->lines[t->next]);
	t->lines[t->next] = sb_detach(&t->partial);
	t->next = (t->next + 1) % TAIL_LINES;
}

/* Command output: to the log as it comes, and its last lines kept for errors. */
void build_on_output(void *ctx, const char *data, size_t len)
{
	struct builder *b = ctx;
	struct tail *t = &b->tail;

	if (!b->o->quiet)
		build_out_write(b, data, len);
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n')
			build_tail_push(t);
		else if (data[i] != '\r' && t->partial.len < 400)
			sb_addc(&t->partial, data[i]);
	}
}

void build_tail_append(struct tail *t, struct strbuf *msg)
{
	bool any = false;

	if (t->partial.len)
		build_tail_push(t);
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

void build_set_item(cJSON *obj, const char *key, cJSON *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	cJSON_AddItemToObject(obj, key, v);
}

cJSON *build_string_array(char *const *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();

	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
	return a;
}

void build_strv_set_kv(struct strv *sv, const char *key, const char *value)
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

const char *build_strv_get_kv(const struct strv *sv, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < sv->n; i++)
		if (strncmp(sv->v[i], key, kl) == 0 && sv->v[i][kl] == '=')
			return sv->v[i] + kl + 1;
	return NULL;
}

void build_config_env(const cJSON *cfg, struct strv *out)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(cfg, "Env"))
	{
		if (cJSON_IsString(it))
			strv_push(out, it->valuestring);
	}
}

void build_config_set_env(cJSON *cfg, const char *key, const char *value)
{
	cJSON *env = cJSON_GetObjectItemCaseSensitive(cfg, "Env"), *it;
	size_t kl = strlen(key);
	_cleanup_free_ char *kv = xasprintf("%s=%s", key, value);

	if (!cJSON_IsArray(env)) {
		env = cJSON_CreateArray();
		build_set_item(cfg, "Env", env);
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
void build_stage_vars(const struct stage *st, struct strv *out)
{
	for (size_t i = 0; i < st->vars.n; i++)
		strv_push(out, st->vars.v[i]);
}

void build_key_step(char key[SHA256_HEX_LEN + 1], const char *desc)
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
const char *build_auto_arg(const char *name)
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

int build_instr_error(struct err *err, struct builder *b, const struct df_instr *in, int code,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int build_instr_error(struct err *err, struct builder *b, const struct df_instr *in, int code,
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
 * not already (a commit's, build_say) with "Dockerfile:N: INSTRUCTION:". */
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

int build_expand(struct builder *b, const struct stage *st, const struct df_instr *in,
                 const char *word, char **out, struct err *err)
{
	return expand_with(b, in, &st->vars, word, out, err);
}

/* ---- stages ---- */

static void global_vars(const struct builder *b, struct strv *out)
{
	static const char *const autos[] = {"TARGETPLATFORM", "BUILDPLATFORM", "TARGETOS",
	                                    "BUILDOS",        "TARGETARCH",    "BUILDARCH",
	                                    "TARGETVARIANT",  "BUILDVARIANT"};

	for (size_t i = 0; i < ARRAY_SIZE(autos); i++)
		strv_pushf(out, "%s=%s", autos[i], build_auto_arg(autos[i]));
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
/* A --build-arg given for name replaces the ARG's default (*value) and counts
 * as used; returns whether one was given. */
bool build_arg_given(struct builder *b, const char *name, char **value)
{
	const char *given = build_strv_get_kv(&b->build_args, name);

	if (!given)
		return false;
	free(*value);
	*value = xstrdup(given);
	if (!strv_contains(&b->used_args, name))
		strv_push(&b->used_args, name);
	return true;
}

int build_global_args(struct builder *b, size_t n, struct err *err)
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

			if (expand_global(b, in, raw, &name, err) < 0 ||
			    (eq && expand_global(b, in, eq + 1, &value, err) < 0))
				return -1;
			build_arg_given(b, name, &value);
			if (value)
				build_strv_set_kv(&b->global_args, name, value);
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
	if (build_global_args(b, first_from, err) < 0)
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
		dep = build_find_stage(b, ref, idx);
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
	base = build_find_stage(b, ref, idx);
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
		build_config_set_env(st->config, "PATH", DEFAULT_PATH);
		cJSON_AddStringToObject(st->config, "WorkingDir", "/");
		build_config_env(st->config, &st->vars);
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
		build_config_env(st->config, &st->vars);
		if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(st->config, "OnBuild")) > 0)
			build_say(
			    b,
			    " ---> %s has ONBUILD triggers; the sandbox builder does not run them",
			    ref);
		/* The triggers are the base image's, not passed on. */
		cJSON_DeleteItemFromObjectCaseSensitive(st->config, "OnBuild");
		desc = xasprintf("FROM %s", img->id);
		store_image_free(img);
	}
	sha256_hex(desc, strlen(desc), st->key);
	build_key_step(st->key, "rollout-build-1");
	st->started = true;
	return build_mark_update(b, err);
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
		build_say(b, "Step %d/%d : %s", b->step, b->n_steps, in->text);
		switch (in->cmd) {
		case DF_FROM:
			rc = stage_from(b, st, idx, err);
			break;
		case DF_RUN:
			rc = build_do_run(b, st, in, err);
			break;
		case DF_COPY:
		case DF_ADD:
			rc = build_do_copy(b, st, idx, in, err);
			break;
		case DF_WORKDIR:
			rc = build_do_workdir(b, st, in, err);
			break;
		default:
			rc = build_do_metadata(b, st, in, err);
			break;
		}
		if (rc < 0)
			return step_error(err, b, in);
		if (st->image_id && !b->o->quiet &&
		    (in->cmd == DF_RUN || in->cmd == DF_COPY || in->cmd == DF_ADD ||
		     in->cmd == DF_FROM))
			build_say(b, " ---> %.12s", oci_digest_hex(st->image_id));
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

			build_strv_set_kv(&b->build_args, k, eq + 1);
		} else if (getenv(*a)) {
			build_strv_set_kv(&b->build_args, *a, getenv(*a));
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
	build_mark_remove(b);
	free(b->mark_dir);
	if (b->have_job) {
		struct err ignored = {0};

		/* Step directories may hold files of the image's other users. */
		b->o->runner->remove_tree(b->o->runner->ctx, b->job.dir, &ignored);
		store_job_destroy(b->s, &b->job);
	}
	free(b->name);
	free(b->empty_layer);
	build_tail_reset(&b->tail);
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
		struct stage *t = build_find_stage(&b, o->target, b.n_stages);

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
	if (build_mark_create(&b, err) < 0)
		goto out;
	for (size_t i = 0; i <= target; i++)
		if (b.stages[i].needed && run_stage(&b, i, err) < 0)
			goto out;
	{
		struct stage *st = &b.stages[target];

		if (st->history.n || !st->image_id) {
			/* Metadata since the last layer: the final image, cached too. */
			_cleanup_free_ char *id = NULL;

			if (build_cache_get(&b, st->key, &id) && id) {
				if (build_stage_take_image(&b, st, id, err) < 0)
					goto out;
			} else {
				b.doing = "while committing the image";
				if (build_stage_commit(&b, st, -1,
				                       st->history.n
				                           ? st->history.v[st->history.n - 1]
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
				build_say(&b, "[Warning] build-arg %s was not consumed", k);
		}
		build_say(&b, "Successfully built %.12s in %.2f s", oci_digest_hex(st->image_id),
		          mono_now() - t0);
		*image_id = xstrdup(st->image_id);
	}
	rc = 0;
out:
	builder_release(&b);
	return rc;
}
