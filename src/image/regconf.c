/* Registry endpoints: registries.conf v2, daemon.json mirrors and insecure
 * registries, certs.d TLS settings, in the order a pull tries them. */
#include "image/regconf.h"
#include "config/node.h"
#include "config/toml.h"
#include "image/regcreds.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/strbuf.h"
#include "rollout/tls.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DAEMON_JSON (1u << 20)
#define MAX_CERT_FILES 16
#define HUB_API "registry-1.docker.io"

static bool file_exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static char *home_rel(const char *rel)
{
	const char *home = getenv("HOME");

	return xasprintf("%s/%s", home && *home ? home : "/", rel);
}

/* ---- registries.conf -------------------------------------------------------------------- */

static int load_registries_conf(cJSON **out, char **name, struct err *err)
{
	const char *env = getenv("CONTAINERS_REGISTRIES_CONF");
	_cleanup_free_ char *user = home_rel(".config/containers/registries.conf");
	const char *path = env && *env         ? env
	                   : file_exists(user) ? user
	                                       : "/etc/containers/registries.conf";
	struct node *root = NULL;

	*out = NULL;
	*name = xstrdup(path);
	if (!file_exists(path))
		return 0;
	if (toml_load_file(path, &root, err) < 0)
		return -1;
	*out = node_to_json(root);
	node_free(root);
	return 0;
}

/* How long a match prefix is for ref (host/repository), -1 when it does not match. */
static long prefix_match(const char *prefix, const char *ref)
{
	size_t n = strlen(prefix);

	if (str_starts_with(prefix, "*.")) { /* subdomains of the host */
		size_t hl = strcspn(ref, "/");
		size_t sl = n - 1; /* ".example.com" */

		if (hl > sl && strncasecmp(ref + hl - sl, prefix + 1, sl) == 0)
			return (long)hl;
		return -1;
	}
	if (strncmp(ref, prefix, n) != 0 || (ref[n] && ref[n] != '/'))
		return -1;
	return (long)n;
}

/* The [[registry]] table that applies to ref, and the matched length. */
static const cJSON *find_registry(const cJSON *conf, const char *ref, long *len)
{
	const cJSON *regs = cJSON_GetObjectItemCaseSensitive(conf, "registry"), *r, *best = NULL;

	*len = -1;
	cJSON_ArrayForEach(r, regs)
	{
		const char *prefix = json_get_str(r, "prefix");
		long m;

		if (!prefix || !*prefix)
			prefix = json_get_str(r, "location");
		if (!prefix || !*prefix)
			continue;
		{
			_cleanup_free_ char *canon = regcreds_canonical(prefix);
			const char *rest = prefix + strcspn(prefix, "/");
			_cleanup_free_ char *p2 = str_starts_with(prefix, "*.")
			                              ? xstrdup(prefix)
			                              : xasprintf("%s%s", canon, rest);

			m = prefix_match(p2, ref);
		}
		if (m > *len) {
			*len = m;
			best = r;
		}
	}
	return best;
}

/* ---- daemon.json ---------------------------------------------------------------------------- */

static int load_daemon_json(cJSON **out, struct err *err)
{
	const char *env = getenv("ROLLOUT_DOCKER_DAEMON_JSON");
	const char *path = env && *env ? env : "/etc/docker/daemon.json";
	_cleanup_free_ char *text = NULL;
	size_t len;

	*out = NULL;
	if (read_file(path, MAX_DAEMON_JSON, &text, &len, err) < 0) {
		if (err->code == ENOENT || err->code == ENOTDIR) {
			err_clear(err);
			return 0;
		}
		return -1;
	}
	return json_parse(text, len, path, out, err);
}

/* host[:port] without the port and brackets. */
static char *bare_host(const char *hostport)
{
	if (hostport[0] == '[') {
		const char *end = strchr(hostport, ']');

		return xstrndup(hostport + 1,
		                end ? (size_t)(end - hostport - 1) : strlen(hostport));
	}
	if (strchr(hostport, ':') != strrchr(hostport, ':')) /* a bare IPv6 address */
		return xstrdup(hostport);
	return xstrndup(hostport, strcspn(hostport, ":"));
}

static bool ip_in_cidr(const char *host, const char *cidr)
{
	unsigned char a[16], net[16];
	_cleanup_free_ char *addr = xstrndup(cidr, strcspn(cidr, "/"));
	const char *slash = strchr(cidr, '/');
	int fam = strchr(addr, ':') ? AF_INET6 : AF_INET, bits, max = fam == AF_INET ? 32 : 128;
	char *end;

	if (!slash || inet_pton(fam, host, a) != 1 || inet_pton(fam, addr, net) != 1)
		return false;
	bits = (int)strtol(slash + 1, &end, 10);
	if (*end || bits < 0 || bits > max)
		return false;
	for (int i = 0; i < bits; i++) {
		unsigned char m = (unsigned char)(0x80 >> (i % 8));

		if ((a[i / 8] & m) != (net[i / 8] & m))
			return false;
	}
	return true;
}

static bool is_loopback(const char *host)
{
	unsigned char a[16];

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	return inet_pton(AF_INET6, host, a) == 1 &&
	       memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0;
}

/* One insecure-registries entry (host[:port] or CIDR) against hostport. */
static bool insecure_entry_matches(const char *entry, const char *hostport, const char *host)
{
	return strchr(entry, '/')
	           ? ip_in_cidr(host, entry)
	           : strcasecmp(entry, hostport) == 0 || strcasecmp(entry, host) == 0;
}

/* Listed insecure: daemon.json's insecure-registries, the caller's extra list,
 * ROLLOUT_INSECURE_REGISTRIES (comma-separated). */
static bool listed_insecure(const cJSON *daemon, const char *const *extra, const char *hostport)
{
	_cleanup_free_ char *host = bare_host(hostport);
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(daemon, "insecure-registries"), *e;
	const char *env = getenv("ROLLOUT_INSECURE_REGISTRIES");

	cJSON_ArrayForEach(e, list)
	{
		if (cJSON_IsString(e) && insecure_entry_matches(e->valuestring, hostport, host))
			return true;
	}
	for (; extra && *extra; extra++)
		if (insecure_entry_matches(*extra, hostport, host))
			return true;
	for (const char *p = env ? env : ""; *p;) {
		size_t n = strcspn(p, ", ");
		_cleanup_free_ char *one = xstrndup(p, n);

		if (n && insecure_entry_matches(one, hostport, host))
			return true;
		p += n + strspn(p + n, ", ");
	}
	return false;
}

/* Insecure by the daemon.json rules: listed, or loopback. */
static bool daemon_insecure_with(const cJSON *daemon, const char *const *extra,
                                 const char *hostport)
{
	_cleanup_free_ char *host = bare_host(hostport);

	return is_loopback(host) || listed_insecure(daemon, extra, hostport);
}

static bool daemon_insecure(const cJSON *daemon, const char *hostport)
{
	return daemon_insecure_with(daemon, NULL, hostport);
}

int regconf_is_insecure(const char *host, bool *insecure, struct err *err)
{
	_cleanup_json_ cJSON *daemon = NULL;

	if (load_daemon_json(&daemon, err) < 0)
		return -1;
	*insecure = daemon_insecure(daemon, host);
	return 0;
}

/* ---- certs.d ---------------------------------------------------------------------------------- */

static void cert_dirs(struct strv *out)
{
	const char *env = getenv("ROLLOUT_CERTS_DIRS");

	if (env) {
		for (const char *p = env; *p;) {
			size_t n = strcspn(p, ":");

			if (n)
				strv_push_take(out, xstrndup(p, n));
			p += n + (p[n] == ':');
		}
		return;
	}
	strv_push(out, "/etc/docker/certs.d");
	strv_push_take(out, home_rel(".config/docker/certs.d"));
	strv_push(out, "/etc/containers/certs.d");
	strv_push_take(out, home_rel(".config/containers/certs.d"));
}

struct certs {
	struct strv cas;
	char *cert, *key;
};

static int scan_cert_dir(const char *dir, struct certs *c, struct err *err)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct strv names = STRV_INIT;
	struct dirent *de;
	int rc = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			strv_push(&names, de->d_name);
	strv_sort(&names);
	for (size_t i = 0; i < names.n && rc == 0; i++) {
		const char *n = names.v[i];
		_cleanup_free_ char *full = xasprintf("%s/%s", dir, n);

		if (str_ends_with(n, ".crt") && c->cas.n < MAX_CERT_FILES) {
			strv_push(&c->cas, full);
		} else if (str_ends_with(n, ".cert")) {
			_cleanup_free_ char *key =
			    xasprintf("%.*s.key", (int)(strlen(full) - 5), full);

			if (!file_exists(key))
				rc =
				    err_set(err, ENOENT,
				            "%s: client certificate without its key %s", full, key);
			else if (!c->cert) {
				c->cert = xstrdup(full);
				c->key = steal_ptr(&key);
			}
		} else if (str_ends_with(n, ".key")) {
			_cleanup_free_ char *cert =
			    xasprintf("%.*s.cert", (int)(strlen(full) - 4), full);

			if (!file_exists(cert))
				rc = err_set(err, ENOENT,
				             "%s: client key without its certificate %s", full,
				             cert);
		}
	}
	strv_release(&names);
	return rc;
}

/* The TLS configuration for an https endpoint: NULL when nothing is special. */
static int endpoint_tls(const char *hostport, bool insecure, struct tls_config **out,
                        struct err *err)
{
	_cleanup_strvs_ struct strv dirs = STRV_INIT;
	struct certs c = {STRV_INIT, NULL, NULL};
	int rc = 0;

	*out = NULL;
	cert_dirs(&dirs);
	for (size_t i = 0; i < dirs.n && rc == 0; i++) {
		_cleanup_free_ char *d = xasprintf("%s/%s", dirs.v[i], hostport);

		rc = scan_cert_dir(d, &c, err);
	}
	if (rc == 0 && (insecure || c.cas.n || c.cert)) {
		struct tls_options o = {.extra_ca_files = (const char *const *)strv_array(&c.cas),
		                        .cert_file = c.cert,
		                        .key_file = c.key,
		                        .insecure = insecure};

		rc = tls_config_new(&o, out, err);
	}
	if (rc < 0)
		err_wrap(err, "certificates for %s", hostport);
	strv_release(&c.cas);
	free(c.cert);
	free(c.key);
	return rc;
}

/* ---- the list ------------------------------------------------------------------------------- */

void regconf_endpoints_release(struct regconf_endpoints *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].url);
		free(e->v[i].host);
		free(e->v[i].repository);
		if (e->v[i].tls)
			tls_config_unref(e->v[i].tls);
	}
	free(e->v);
	memset(e, 0, sizeof(*e));
}

/* Append scheme://host[path] for repository. */
static int add(struct regconf_endpoints *e, const char *scheme, const char *host, const char *path,
               const char *repository, bool mirror, bool insecure, struct err *err)
{
	struct regconf_endpoint *ep;
	struct tls_config *tls = NULL;

	if (strcmp(scheme, "https") == 0 && endpoint_tls(host, insecure, &tls, err) < 0)
		return -1;
	e->v = xrealloc(e->v, (e->n + 1) * sizeof(*e->v));
	ep = &e->v[e->n++];
	ep->url = xasprintf("%s://%s%s", scheme, host, path ? path : "");
	ep->host = xstrdup(host);
	ep->repository = xstrdup(repository);
	ep->mirror = mirror;
	ep->insecure = insecure;
	ep->tls = tls;
	return 0;
}

/* A registry (not a URL): https, and http after it when insecure. conf_insecure
 * is registries.conf's setting: -1 when absent (the daemon.json rules and
 * loopback decide), 1 insecure, 0 secure unless listed insecure elsewhere (an
 * explicit `insecure = false` beats the loopback default, as in podman). */
static int add_registry(struct regconf_endpoints *e, const cJSON *daemon, const char *const *extra,
                        const char *host, const char *repository, bool mirror, int conf_insecure,
                        struct err *err)
{
	bool insecure =
	    conf_insecure == 1 || (conf_insecure < 0 ? daemon_insecure_with(daemon, extra, host)
	                                             : listed_insecure(daemon, extra, host));

	if (add(e, "https", host, NULL, repository, mirror, insecure, err) < 0)
		return -1;
	if (insecure && add(e, "http", host, NULL, repository, mirror, insecure, err) < 0)
		return -1;
	return 0;
}

/* "host[:port]/repo/sitory" into its parts (Hub's API host for docker.io). */
static void split_ref(const char *ref, char **host, char **repo)
{
	size_t n = strcspn(ref, "/");
	_cleanup_free_ char *h = xstrndup(ref, n);
	_cleanup_free_ char *canon = regcreds_canonical(h);

	*host = xstrdup(strcmp(canon, "docker.io") == 0 ? HUB_API : h);
	*repo = xstrdup(ref[n] ? ref + n + 1 : "");
}

static int add_daemon_mirrors(struct regconf_endpoints *e, const cJSON *daemon,
                              const char *repository, struct err *err)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(daemon, "registry-mirrors"), *m;

	cJSON_ArrayForEach(m, list)
	{
		const char *s = cJSON_IsString(m) ? m->valuestring : "";
		const char *colon = strstr(s, "://");
		size_t hl;
		bool http;
		_cleanup_free_ char *scheme = NULL, *host = NULL, *path = NULL;
		const char *rest;

		if (!colon)
			return err_set(err, EINVAL,
			               "daemon.json: registry-mirrors: '%s' is not a URL", s);
		scheme = xstrndup(s, colon - s);
		rest = colon + 3;
		hl = strcspn(rest, "/?#@");
		host = xstrndup(rest, hl);
		path = xstrdup(rest + hl);
		http = strcmp(scheme, "http") == 0;
		if ((!http && strcmp(scheme, "https") != 0) || strpbrk(path, "?#@") || !*host)
			return err_set(err, EINVAL,
			               "daemon.json: registry-mirrors: '%s' is not an http(s) URL "
			               "without query or user",
			               s);
		while (*path && path[strlen(path) - 1] == '/')
			path[strlen(path) - 1] = '\0';
		if (http && !daemon_insecure(daemon, host))
			return err_set(err, EPERM,
			               "daemon.json: registry mirror %s is plain http; list %s in "
			               "insecure-registries to allow it",
			               s, host);
		if (add(e, http ? "http" : "https", host, path, repository, true,
		        daemon_insecure(daemon, host), err) < 0)
			return -1;
	}
	return 0;
}

/* registries.conf's insecure key of a table: -1 when absent. */
static int conf_insecure(const cJSON *t)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, "insecure");

	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

int regconf_endpoints(const char *registry, const char *repository, struct regconf_endpoints *out,
                      struct err *err)
{
	return regconf_endpoints_extra(registry, repository, NULL, out, err);
}

int regconf_endpoints_extra(const char *registry, const char *repository,
                            const char *const *insecure_extra, struct regconf_endpoints *out,
                            struct err *err)
{
	_cleanup_free_ char *canon = regcreds_canonical(registry);
	_cleanup_free_ char *ref = xasprintf("%s/%s", canon, repository);
	_cleanup_free_ char *conf_name = NULL, *rewritten = NULL;
	_cleanup_free_ char *host = NULL, *repo = NULL;
	_cleanup_json_ cJSON *conf = NULL;
	_cleanup_json_ cJSON *daemon = NULL;
	const cJSON *reg = NULL, *mirrors, *m;
	long plen = -1;
	int insecure = -1;

	memset(out, 0, sizeof(*out));
	if (load_registries_conf(&conf, &conf_name, err) < 0 || load_daemon_json(&daemon, err) < 0)
		return -1;
	if (conf)
		reg = find_registry(conf, ref, &plen);
	if (reg) {
		const char *loc = json_get_str(reg, "location");

		if (json_get_bool(reg, "blocked", false))
			return err_set(err, EACCES, "%s: %s is blocked (%s)", ref,
			               json_get_str(reg, "prefix") ? json_get_str(reg, "prefix")
			                                           : loc,
			               conf_name);
		insecure = conf_insecure(reg);
		if (loc && *loc && !str_starts_with(json_get_str(reg, "prefix") ?: "", "*."))
			rewritten = xasprintf("%s%s", loc, ref + plen);
		mirrors = cJSON_GetObjectItemCaseSensitive(reg, "mirror");
		cJSON_ArrayForEach(m, mirrors)
		{
			const char *ml = json_get_str(m, "location");
			_cleanup_free_ char *mref = NULL, *mh = NULL, *mr = NULL;

			if (!ml || !*ml)
				continue;
			mref = xasprintf("%s%s", ml, ref + plen);
			split_ref(mref, &mh, &mr);
			if (add_registry(out, daemon, insecure_extra, mh, mr, true,
			                 conf_insecure(m), err) < 0)
				goto fail;
		}
	}
	split_ref(rewritten ? rewritten : ref, &host, &repo);
	if (strcmp(host, HUB_API) == 0 && add_daemon_mirrors(out, daemon, repo, err) < 0)
		goto fail;
	if (add_registry(out, daemon, insecure_extra, host, repo, false, insecure, err) < 0)
		goto fail;
	return 0;
fail:
	regconf_endpoints_release(out);
	return -1;
}
