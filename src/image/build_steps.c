/* The builder's steps: the containers RUN executes in, and one function per
 * instruction (ARG, ENV/LABEL, RUN, COPY/ADD, WORKDIR, metadata). */
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

#define DEFAULT_SHELL_0 "/bin/sh"
#define DEFAULT_SHELL_1 "-c"

/* Build args Docker passes to RUN without an ARG, and leaves out of the cache. */
static const char *const proxy_args[] = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                                         "FTP_PROXY",  "ftp_proxy",  "NO_PROXY",    "no_proxy",
                                         "ALL_PROXY",  "all_proxy",  NULL};

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
	build_config_env(cfg, &env);
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
		build_cache_put(b, st->key, NULL);
		return 0;
	}
	fd = open(box->upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, "open %s", box->upper);
	return build_stage_commit(b, st, fd, in->text, err);
}

/* ---- instructions ---- */

/* Looks the step up in the cache: 1 = done (state taken from the cache). */
static int step_cached(struct builder *b, struct stage *st, const struct df_instr *in,
                       struct err *err)
{
	_cleanup_free_ char *id = NULL;

	if (!build_cache_get(b, st->key, &id))
		return 0;
	if (!id)
		strv_push(&st->history, in->text);
	else if (build_stage_take_image(b, st, id, err) < 0)
		return -1;
	build_say(b, " ---> Using cache");
	return 1;
}

static int do_arg(struct builder *b, struct stage *st, const struct df_instr *in, struct strv *desc,
                  struct err *err)
{
	for (size_t i = 0; i < in->n_args; i++) {
		_cleanup_free_ char *name = NULL, *value = NULL;
		const char *eq = strchr(in->args[i], '=');
		_cleanup_free_ char *raw_name =
		    eq ? xstrndup(in->args[i], (size_t)(eq - in->args[i])) : xstrdup(in->args[i]);

		if (build_expand(b, st, in, raw_name, &name, err) < 0)
			return -1;
		if (eq && build_expand(b, st, in, eq + 1, &value, err) < 0)
			return -1;
		if (!build_arg_given(b, name, &value) && !eq) {
			const char *g = build_strv_get_kv(&b->global_args, name);
			const char *a = build_auto_arg(name);

			if (g)
				value = xstrdup(g);
			else if (a)
				value = xstrdup(a);
		}
		if (!strv_contains(&st->declared, name))
			strv_push(&st->declared, name);
		if (value) {
			build_strv_set_kv(&st->vars, name, value);
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

		if (build_expand(b, st, in, in->args[i], &k, err) < 0)
			return -1;
		if (build_expand(b, st, in, in->args[i + 1], &v, err) < 0) {
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
			build_set_item(st->config, "Labels", labels);
		}
	}
	for (size_t i = 0; i + 1 < kv.n; i += 2) {
		if (in->cmd == DF_ENV) {
			build_config_set_env(st->config, kv.v[i], kv.v[i + 1]);
			build_strv_set_kv(&st->vars, kv.v[i], kv.v[i + 1]);
		} else
			build_set_item(labels, kv.v[i], cJSON_CreateString(kv.v[i + 1]));
		strv_pushf(desc, "%s=%s", kv.v[i], kv.v[i + 1]);
	}
	return 0;
}

static cJSON *shell_command(const struct stage *st, const struct df_instr *in, const char *text)
{
	const cJSON *shell = cJSON_GetObjectItemCaseSensitive(st->config, "Shell");
	cJSON *a;

	if (in->json)
		return build_string_array(in->args, in->n_args);
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

	build_stage_vars(st, &vars);
	env.vars = vars.v;
	env.n = vars.n;
	for (size_t i = 0; i < in->n_args && rc == 0; i++)
		if (df_expand_words(in->args[i], b->df->escape, &env, &words, &n, err) < 0)
			rc = FERR(err, b, in, err->code, "%s", err->msg);
	if (!cJSON_IsObject(ports)) {
		ports = cJSON_CreateObject();
		build_set_item(st->config, "ExposedPorts", ports);
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

			build_set_item(ports, k, cJSON_CreateObject());
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

	build_set_item(st->config, "Healthcheck", hc);
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

int build_do_workdir(struct builder *b, struct stage *st, const struct df_instr *in,
                     struct err *err)
{
	_cleanup_free_ char *path = NULL, *wd = NULL, *desc = NULL;
	struct step_box box;
	const char *user = json_get_str(st->config, "User");
	int root, rc;
	uid_t uid = 0;
	gid_t gid = 0;

	if (build_expand(b, st, in, in->args[0], &path, err) < 0)
		return -1;
	if (!*path)
		return FERR(err, b, in, EINVAL, "needs a path");
	{
		_cleanup_free_ char *joined =
		    join_workdir(json_get_str(st->config, "WorkingDir"), path);

		wd = clean_abs(joined); /* "/a/b/../c/" is "/a/c", as Docker writes it */
	}
	desc = xasprintf("WORKDIR %s user=%s", wd, user ? user : "");
	build_key_step(st->key, desc);
	rc = step_cached(b, st, in, err);
	if (rc != 0) {
		build_set_item(st->config, "WorkingDir", cJSON_CreateString(wd));
		return rc < 0 ? -1 : 0;
	}
	/* The directory is created (with its missing parents) owned by the USER;
	 * the container starts in the old one (it would make the new one as root). */
	rc = box_start(b, st, st->image_id, false, &box, err);
	build_set_item(st->config, "WorkingDir", cJSON_CreateString(wd));
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
	return build_strv_get_kv(env, name) != NULL;
}

/* RUN: argv (heredocs as BuildKit runs them), env = config Env + ARGs + proxies. */
int build_do_run(struct builder *b, struct stage *st, const struct df_instr *in, struct err *err)
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

	build_stage_vars(st, &env);
	for (const char *const *p = proxy_args; *p; p++) {
		const char *v = build_strv_get_kv(&b->build_args, *p);

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
	build_key_step(st->key, desc);
	rc = step_cached(b, st, in, err);
	if (rc != 0)
		return rc < 0 ? -1 : 0;

	{
		/* The command sees the ARGs in its environment, not in the image. */
		cJSON *saved = cJSON_Duplicate(st->config, true);
		cJSON *env_json = build_string_array(env.v, env.n);

		build_set_item(st->config, "Env", env_json);
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
	build_tail_reset(&b->tail);
	x.argv = (const char *const *)argv.v;
	x.timeout_sec = b->deadline > 0 ? b->deadline - mono_now() : 0;
	if (b->deadline > 0 && x.timeout_sec < 0.001)
		x.timeout_sec = 0.001;
	x.output = build_on_output;
	x.output_ctx = b;
	b->doing = "while the command ran";
	if (b->o->runner->exec(box.handle, &x, &exit_code, err) < 0)
		goto fail;
	if (b->tail.partial.len) {
		build_out_write(b, "\n", 1);
		build_tail_push(&b->tail);
	}
	if (exit_code != 0) {
		_cleanup_sb_ struct strbuf msg = STRBUF_INIT;

		sb_addf(&msg, "%s:%d: step %d/%d: %s: the command exited with code %d", b->df->name,
		        in->line, b->step, b->n_steps, in->text, exit_code);
		build_tail_append(&b->tail, &msg);
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

struct stage *build_find_stage(struct builder *b, const char *ref, size_t before)
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
	return build_expand(b, st, in, f->value, out, err);
}

int build_do_copy(struct builder *b, struct stage *st, size_t idx, const struct df_instr *in,
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
	if (build_expand(b, st, in, in->args[in->n_args - 1], &dest, err) < 0)
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

				build_stage_vars(st, &vars);
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
		if (build_expand(b, st, in, in->args[i], &r.srcs[r.n_srcs].path, err) < 0)
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
		src_stage = build_find_stage(b, from_v, idx);
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
	build_key_step(st->key, desc.buf);
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
int build_do_metadata(struct builder *b, struct stage *st, const struct df_instr *in,
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
		if (build_expand(b, st, in, in->args[0], &v, err) < 0)
			return -1;
		build_set_item(st->config, in->cmd == DF_USER ? "User" : "StopSignal",
		               cJSON_CreateString(v));
		strv_push(&desc, v);
		break;
	case DF_SHELL:
		build_set_item(st->config, "Shell", build_string_array(in->args, in->n_args));
		break;
	case DF_CMD:
		build_set_item(st->config, "Cmd",
		               shell_command(st, in, in->n_args ? in->args[0] : ""));
		st->cmd_set = true;
		break;
	case DF_ENTRYPOINT:
		build_set_item(st->config, "Entrypoint",
		               shell_command(st, in, in->n_args ? in->args[0] : ""));
		/* An inherited CMD does not go with a new ENTRYPOINT. */
		if (!st->cmd_set)
			build_set_item(st->config, "Cmd", cJSON_CreateNull());
		break;
	case DF_EXPOSE:
		if (parse_ports(b, st, in, &desc, err) < 0)
			return -1;
		break;
	case DF_VOLUME: {
		cJSON *vols = cJSON_GetObjectItemCaseSensitive(st->config, "Volumes");

		if (!cJSON_IsObject(vols)) {
			vols = cJSON_CreateObject();
			build_set_item(st->config, "Volumes", vols);
		}
		for (size_t i = 0; i < in->n_args; i++) {
			char *p = NULL;

			if (build_expand(b, st, in, in->args[i], &p, err) < 0)
				return -1;
			if (!*p) {
				free(p);
				return FERR(err, b, in, EINVAL,
				            "VOLUME specified can not be empty");
			}
			build_set_item(vols, p, cJSON_CreateObject());
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
			build_set_item(st->config, "OnBuild", ob);
		}
		cJSON_AddItemToArray(ob, cJSON_CreateString(in->args[0]));
		build_say(b,
		          " ---> recorded as an ONBUILD trigger (images built FROM this one do not "
		          "run it: the sandbox builder ignores triggers)");
		break;
	}
	case DF_MAINTAINER:
		build_say(b, " ---> MAINTAINER is deprecated; ignored (use LABEL)");
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
	build_key_step(st->key, d.buf);
	if (in->cmd != DF_ARG)
		strv_push(&st->history, in->text);
	return 0;
}
