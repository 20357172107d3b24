/* Where to fetch a repository from (image/regconf.c): mirrors, rewrites,
 * insecure and blocked registries and per-host TLS, read from the files users
 * already have for docker and podman.
 *
 * Sources, each optional:
 *   - registries.conf v2 (TOML): CONTAINERS_REGISTRIES_CONF when set (that file
 *     only), else ~/.config/containers/registries.conf when it exists, else
 *     /etc/containers/registries.conf. [[registry]] prefix (longest match wins;
 *     "*.example.com" matches subdomains; without prefix, location is the
 *     prefix), location (rewrites the prefix), insecure, blocked,
 *     [[registry.mirror]] location and insecure.
 *     unqualified-search-registries and [aliases] concern short names and are
 *     not used: a short name is Docker Hub's, as in docker.
 *   - daemon.json (ROLLOUT_DOCKER_DAEMON_JSON, else /etc/docker/daemon.json):
 *     registry-mirrors (for docker.io only, as in docker) and
 *     insecure-registries (host[:port] or CIDR). 127.0.0.0/8, ::1 and
 *     localhost are insecure, as in docker, unless registries.conf says
 *     `insecure = false` for them (as podman would).
 *   - ROLLOUT_INSECURE_REGISTRIES (comma-separated host[:port] or CIDR) and the
 *     caller's list (--insecure-registry) add to insecure-registries.
 *   - certs.d: for an endpoint host[:port], the directories named in
 *     ROLLOUT_CERTS_DIRS (colon-separated), else /etc/docker/certs.d,
 *     ~/.config/docker/certs.d, /etc/containers/certs.d,
 *     ~/.config/containers/certs.d: every *.crt is a CA added to the system's,
 *     a *.cert with the *.key of the same base name is a client certificate.
 *
 * Insecure, as in docker: https without certificate verification, then plain
 * http. Plain http is never used for a registry not marked insecure. */
#ifndef ROLLOUT_IMAGE_REGCONF_H
#define ROLLOUT_IMAGE_REGCONF_H

#include <stdbool.h>
#include <stddef.h>

struct err;
struct tls_config;

struct regconf_endpoint {
	char *url;        /* "https://host[:port]" or "http://host[:port]" (+ a mirror's path) */
	char *host;       /* host[:port]: certs.d name, credentials, messages */
	char *repository; /* the repository there (a rewrite may change it) */
	bool mirror;
	bool insecure; /* configured insecure (https unverified, or http) */
	/* For https endpoints: certs.d CAs and client certificate, or no
	 * verification when insecure. NULL: the system's CAs (tls_config_default).
	 * A reference, released with the list. */
	struct tls_config *tls;
};

struct regconf_endpoints {
	struct regconf_endpoint *v;
	size_t n;
};

/* The ordered endpoints for registry ("docker.io", "host:port") and repository
 * ("library/alpine"): mirrors first (registries.conf's, then daemon.json's for
 * docker.io), then the registry itself (registry-1.docker.io for Hub; an
 * insecure one as https then http). EACCES when registries.conf blocks it;
 * errors name the file and line. */
int regconf_endpoints(const char *registry, const char *repository, struct regconf_endpoints *out,
                      struct err *err);
/* The same with more insecure registries (host[:port] or CIDR; NULL-terminated,
 * may be NULL): `rollout image pull --insecure-registry`. */
int regconf_endpoints_extra(const char *registry, const char *repository,
                            const char *const *insecure_extra, struct regconf_endpoints *out,
                            struct err *err);
void regconf_endpoints_release(struct regconf_endpoints *e);

/* Whether host[:port] is insecure by daemon.json (or loopback). */
int regconf_is_insecure(const char *host, bool *insecure, struct err *err);

#endif
