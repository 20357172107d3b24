/* Registry credentials: docker's config.json, containers' auth.json, credential
 * helpers; login/logout writing config.json. */
#include "image/regcreds.h"
#include "image/regauth.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/proc.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_AUTH_FILE (4u << 20)
#define MAX_HELPER_OUTPUT (1u << 20)
#define HUB_KEY "https://index.docker.io/v1/"

char *regcreds_canonical(const char *name)
{
	const char *p = name;
	char *s;

	if (strstr(p, "://"))
		p = strstr(p, "://") + 3;
	s = xstrndup(p, strcspn(p, "/"));
	for (char *q = s; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	if (strcmp(s, "index.docker.io") == 0 || strcmp(s, "registry-1.docker.io") == 0 ||
	    strcmp(s, "registry.hub.docker.com") == 0) {
		free(s);
		s = xstrdup("docker.io");
	}
	return s;
}

char *regcreds_server_address(const char *registry)
{
	_cleanup_free_ char *c = regcreds_canonical(registry);

	return xstrdup(strcmp(c, "docker.io") == 0 ? HUB_KEY : c);
}

static char *home_path(const char *rel)
{
	const char *home = getenv("HOME");

	return xasprintf("%s/%s", home && *home ? home : "/", rel);
}

char *regcreds_docker_config_path(void)
{
	const char *d = getenv("DOCKER_CONFIG");

	if (d && *d)
		return xasprintf("%s/config.json", d);
	return home_path(".docker/config.json");
}

/* ---- auths entries ---------------------------------------------------------------------- */

/* How well key matches registry/repository: -1 no, 0 the host, 1+ a namespace
 * (longer is more specific). */
static int key_score(const char *key, const char *canon, const char *repository)
{
	_cleanup_free_ char *host = regcreds_canonical(key);
	const char *p = key, *path;
	size_t n;

	if (strcmp(host, canon) != 0)
		return -1;
	if (strstr(p, "://")) /* a URL: its path is an API version, not a namespace */
		return 0;
	path = strchr(p, '/');
	if (!path || !path[1])
		return 0;
	path++;
	n = strlen(path);
	if (!repository || strncmp(repository, path, n) != 0 ||
	    (repository[n] && repository[n] != '/'))
		return -1;
	return (int)n + 1;
}

static int entry_creds(const cJSON *e, struct regauth_creds *out, struct err *err)
{
	const char *auth = json_get_str(e, "auth");
	const char *s;

	if (auth && *auth) {
		size_t len;
		_cleanup_free_ char *up = regauth_base64_decode(auth, &len);
		char *colon = up ? strchr(up, ':') : NULL;

		if (!colon)
			return err_set(err, EINVAL, "\"auth\" is not base64 of user:password");
		out->username = xstrndup(up, colon - up);
		out->password = xstrdup(colon + 1);
	} else {
		if ((s = json_get_str(e, "username")) && *s)
			out->username = xstrdup(s);
		if ((s = json_get_str(e, "password")) && *s)
			out->password = xstrdup(s);
	}
	if ((s = json_get_str(e, "identitytoken")) && *s)
		out->identity_token = xstrdup(s);
	if ((s = json_get_str(e, "registrytoken")) && *s)
		out->registry_token = xstrdup(s);
	return 0;
}

/* The best auths entry of a file for canon/repository; NULL when none. */
static const cJSON *find_entry(const cJSON *doc, const char *canon, const char *repository)
{
	const cJSON *auths = cJSON_GetObjectItemCaseSensitive(doc, "auths"), *e, *best = NULL;
	int best_score = -1;

	cJSON_ArrayForEach(e, auths)
	{
		int sc = cJSON_IsObject(e) ? key_score(e->string, canon, repository) : -1;

		if (sc > best_score) {
			best_score = sc;
			best = e;
		}
	}
	return best;
}

/* ---- credential helpers ----------------------------------------------------------------- */

static bool helper_name_ok(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
			return false;
	return true;
}

static void collect(void *ctx, int stream, const char *buf, size_t n)
{
	struct strbuf *sb = ctx;

	if (stream == 1 && sb->len + n <= MAX_HELPER_OUTPUT)
		sb_add(sb, buf, n);
}

/* Run docker-credential-NAME ACTION with input on stdin; its stdout into out. */
static int run_helper(const char *name, const char *action, const char *input, struct strbuf *out,
                      int *exit_code, struct err *err)
{
	_cleanup_free_ char *prog = xasprintf("docker-credential-%s", name);
	const char *argv[] = {prog, action, NULL};
	struct proc p = PROC_INIT;
	size_t len = strlen(input), off = 0;

	if (!helper_name_ok(name))
		return err_set(err, EINVAL, "credential helper name '%s' is not valid", name);
	p.argv = argv;
	p.in = -1;
	p.out = -1;
	p.no_stderr = true;
	p.on_output = collect;
	p.output_ctx = out;
	p.deadline = mono_now() + REGCREDS_HELPER_TIMEOUT;
	p.new_pgroup = true;
	if (proc_start(&p, err) < 0)
		return err_wrap(err, "credential helper");
	/* The input is a few hundred bytes at most: the pipe takes it at once. */
	while (off < len) {
		ssize_t w = write(p.in, input + off, len - off);

		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(p.in);
	p.in = -1;
	p.owned[0] = false;
	if (proc_finish(&p, err) < 0)
		return err_wrap(err, "%s %s", prog, action);
	if (p.timed_out)
		return err_set(err, ETIMEDOUT, "%s %s: no answer within %.0f s", prog, action,
		               REGCREDS_HELPER_TIMEOUT);
	*exit_code = p.exit_code;
	return 0;
}

static int helper_get(const char *name, const char *registry, struct regauth_creds *out,
                      struct err *err)
{
	_cleanup_free_ char *addr = regcreds_server_address(registry);
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	_cleanup_json_ cJSON *j = NULL;
	const char *user, *secret;
	int code = 0;

	if (run_helper(name, "get", addr, &sb, &code, err) < 0)
		return -1;
	if (code != 0) {
		if (strstr(sb_str(&sb), "credentials not found") || code == 1)
			return 0; /* not there: anonymous */
		return err_set(err, EIO, "docker-credential-%s get %s: exit status %d", name, addr,
		               code);
	}
	if (json_parse(sb_str(&sb), sb.len, "credential helper output", &j, err) < 0)
		return -1;
	user = json_get_str(j, "Username");
	secret = json_get_str(j, "Secret");
	if (!secret || !*secret)
		return 0;
	if (user && strcmp(user, "<token>") == 0) {
		out->identity_token = xstrdup(secret);
	} else {
		out->username = xstrdup(user ? user : "");
		out->password = xstrdup(secret);
	}
	return 0;
}

/* ---- lookup ------------------------------------------------------------------------------ */

static int load_optional(const char *path, cJSON **out, struct err *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len;

	*out = NULL;
	if (read_file(path, MAX_AUTH_FILE, &text, &len, err) < 0) {
		if (err->code == ENOENT || err->code == ENOTDIR) {
			err_clear(err);
			return 0;
		}
		return -1;
	}
	return json_parse(text, len, path, out, err);
}

/* One file: 1 found, 0 not there, -1 error. docker: the file is config.json
 * (credential helpers apply). */
static int lookup_file(const char *path, bool docker, const char *canon, const char *repository,
                       struct regauth_creds *out, char **source, struct err *err)
{
	_cleanup_json_ cJSON *doc = NULL;
	const cJSON *e;
	const char *helper = NULL;

	if (load_optional(path, &doc, err) < 0)
		return -1;
	if (!doc)
		return 0;
	if (docker) {
		const cJSON *helpers = cJSON_GetObjectItemCaseSensitive(doc, "credHelpers"), *h;

		cJSON_ArrayForEach(h, helpers)
		{
			_cleanup_free_ char *k = regcreds_canonical(h->string);

			if (cJSON_IsString(h) && strcmp(k, canon) == 0)
				helper = h->valuestring;
		}
		if (!helper)
			helper = json_get_str(doc, "credsStore");
	}
	if (helper && *helper) {
		if (helper_get(helper, canon, out, err) < 0) {
			if (err->code != ENOENT)
				return err_wrap(err, "%s", path);
			/* A config.json from another machine often names a helper this
			 * one lacks (docker-credential-desktop): go on without it. */
			log_warn("%s: %s; going on without it", path, err->msg);
			err_clear(err);
		}
		if (!regauth_creds_empty(out)) {
			if (source)
				*source = xasprintf("docker-credential-%s", helper);
			return 1;
		}
	}
	e = find_entry(doc, canon, repository);
	if (!e)
		return 0;
	if (entry_creds(e, out, err) < 0)
		return err_wrap(err, "%s: auths[\"%s\"]", path, e->string);
	if (regauth_creds_empty(out))
		return 0;
	if (source)
		*source = xstrdup(path);
	return 1;
}

int regcreds_lookup(const char *registry, const char *repository, struct regauth_creds *out,
                    char **source, struct err *err)
{
	_cleanup_free_ char *canon = regcreds_canonical(registry);
	const char *authfile = getenv("REGISTRY_AUTH_FILE");
	const char *xdg_run = getenv("XDG_RUNTIME_DIR");
	const char *xdg_cfg = getenv("XDG_CONFIG_HOME");
	char *paths[3] = {NULL, NULL, NULL};
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (source)
		*source = NULL;
	if (authfile && *authfile)
		return lookup_file(authfile, false, canon, repository, out, source, err) < 0 ? -1
		                                                                             : 0;
	if (xdg_run && *xdg_run)
		paths[0] = xasprintf("%s/containers/auth.json", xdg_run);
	paths[1] = xdg_cfg && *xdg_cfg ? xasprintf("%s/containers/auth.json", xdg_cfg)
	                               : home_path(".config/containers/auth.json");
	paths[2] = regcreds_docker_config_path();
	for (int i = 0; i < 3 && rc == 0; i++) {
		if (paths[i])
			rc = lookup_file(paths[i], i == 2, canon, repository, out, source, err);
		if (rc == 0)
			regauth_creds_release(out);
	}
	for (int i = 0; i < 3; i++)
		free(paths[i]);
	return rc < 0 ? -1 : 0;
}

/* ---- login / logout ------------------------------------------------------------------------ */

/* The helper docker would use for canon in doc; NULL for the file itself. */
static const char *store_helper(const cJSON *doc, const char *canon)
{
	const cJSON *helpers = cJSON_GetObjectItemCaseSensitive(doc, "credHelpers"), *h;
	const char *s;

	cJSON_ArrayForEach(h, helpers)
	{
		_cleanup_free_ char *k = regcreds_canonical(h->string);

		if (cJSON_IsString(h) && strcmp(k, canon) == 0 && *h->valuestring)
			return h->valuestring;
	}
	s = json_get_str(doc, "credsStore");
	return s && *s ? s : NULL;
}

/* Remove every auths key naming canon (Hub's several spellings); true when any. */
static bool drop_keys(cJSON *auths, const char *canon)
{
	bool any = false;
	cJSON *e = auths ? auths->child : NULL;

	while (e) {
		cJSON *next = e->next;
		_cleanup_free_ char *k = regcreds_canonical(e->string);

		if (strcmp(k, canon) == 0 && !(strstr(e->string, "://") == NULL &&
		                               strchr(e->string, '/'))) { /* not namespaced keys */
			cJSON_Delete(cJSON_DetachItemViaPointer(auths, e));
			any = true;
		}
		e = next;
	}
	return any;
}

static int save_config(const char *path, const cJSON *doc, struct err *err)
{
	_cleanup_free_ char *dir = xstrdup(path);
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	char *slash = strrchr(dir, '/');

	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir_p(dir, 0700, err) < 0)
			return -1;
	}
	json_print(doc, &sb);
	sb_addc(&sb, '\n');
	return write_file_atomic(path, sb.buf, sb.len, 0600, err);
}

int regcreds_store(const char *registry, const char *user, const char *secret, char **where,
                   struct err *err)
{
	_cleanup_free_ char *path = regcreds_docker_config_path();
	_cleanup_free_ char *canon = regcreds_canonical(registry);
	_cleanup_free_ char *addr = regcreds_server_address(registry);
	_cleanup_json_ cJSON *doc = NULL;
	const char *helper;
	cJSON *auths, *entry;

	if (load_optional(path, &doc, err) < 0)
		return -1;
	if (!doc)
		doc = cJSON_CreateObject();
	if (!cJSON_IsObject(doc))
		return err_set(err, EINVAL, "%s: not a JSON object", path);
	auths = cJSON_GetObjectItemCaseSensitive(doc, "auths");
	if (!cJSON_IsObject(auths)) {
		cJSON_DeleteItemFromObjectCaseSensitive(doc, "auths");
		auths = cJSON_AddObjectToObject(doc, "auths");
	}
	drop_keys(auths, canon);
	entry = cJSON_AddObjectToObject(auths, addr);
	helper = store_helper(doc, canon);
	if (helper) {
		_cleanup_json_ cJSON *in = cJSON_CreateObject();
		_cleanup_free_ char *text = NULL;
		_cleanup_sb_ struct strbuf out = STRBUF_INIT;
		int code = 0;

		cJSON_AddStringToObject(in, "ServerURL", addr);
		cJSON_AddStringToObject(in, "Username", user);
		cJSON_AddStringToObject(in, "Secret", secret);
		text = cJSON_PrintUnformatted(in);
		if (run_helper(helper, "store", text, &out, &code, err) < 0)
			return -1;
		if (code != 0)
			return err_set(err, EIO, "docker-credential-%s store %s: exit status %d",
			               helper, addr, code);
		if (where)
			*where = xasprintf("docker-credential-%s", helper);
	} else {
		_cleanup_free_ char *up = xasprintf("%s:%s", user, secret);
		_cleanup_free_ char *b = regauth_base64_encode(up, strlen(up));

		cJSON_AddStringToObject(entry, "auth", b);
		if (where)
			*where = xstrdup(path);
	}
	return save_config(path, doc, err);
}

int regcreds_erase(const char *registry, bool *found, struct err *err)
{
	_cleanup_free_ char *path = regcreds_docker_config_path();
	_cleanup_free_ char *canon = regcreds_canonical(registry);
	_cleanup_free_ char *addr = regcreds_server_address(registry);
	_cleanup_json_ cJSON *doc = NULL;
	const char *helper;

	*found = false;
	if (load_optional(path, &doc, err) < 0)
		return -1;
	if (!doc)
		return 0;
	helper = store_helper(doc, canon);
	if (helper) {
		_cleanup_sb_ struct strbuf out = STRBUF_INIT;
		int code = 0;

		if (run_helper(helper, "erase", addr, &out, &code, err) < 0)
			return -1;
		if (code == 0)
			*found = true;
	}
	if (drop_keys(cJSON_GetObjectItemCaseSensitive(doc, "auths"), canon)) {
		*found = true;
		return save_config(path, doc, err);
	}
	return 0;
}
