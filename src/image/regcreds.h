/* Registry credentials where users already keep them (image/regcreds.c), and
 * `rollout login`/`logout` writing docker's own file.
 *
 * Search order for a registry (the first source that knows it wins):
 *   1. REGISTRY_AUTH_FILE, when set: that file only (containers' --authfile);
 *   2. ${XDG_RUNTIME_DIR}/containers/auth.json;
 *   3. ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json;
 *   4. ${DOCKER_CONFIG:-~/.docker}/config.json: credHelpers[host], else
 *      credsStore (both run `docker-credential-NAME get` with the server address
 *      on stdin), else its `auths`.
 * `auths` entries: "auth" (base64 user:pass), "username"/"password",
 * "identitytoken", "registrytoken". Keys may be URLs ("https://host/v1/") or
 * host[/namespace[/repo]] (auth.json): the scheme and a URL's path are dropped,
 * and the most specific namespace matching the repository wins. Docker Hub's
 * names (docker.io, index.docker.io, registry-1.docker.io and the key
 * https://index.docker.io/v1/) are one registry. */
#ifndef ROLLOUT_IMAGE_REGCREDS_H
#define ROLLOUT_IMAGE_REGCREDS_H

#include <stdbool.h>

struct err;
struct regauth_creds;

#define REGCREDS_HELPER_TIMEOUT 30.0

/* The canonical registry name: Hub's aliases become "docker.io", the rest is
 * lowercased host[:port]. A URL or a key with a path is accepted. */
char *regcreds_canonical(const char *registry_or_key);
/* The key (and credential helpers' server address) docker uses for a registry:
 * "https://index.docker.io/v1/" for Hub, else host[:port]. */
char *regcreds_server_address(const char *registry);

/* Credentials for repository (no host; may be NULL) on registry. Nothing found
 * is not an error: out stays empty. source (may be NULL) names where they came
 * from ("~/.docker/config.json", "docker-credential-pass"). */
int regcreds_lookup(const char *registry, const char *repository, struct regauth_creds *out,
                    char **source, struct err *err);

/* ${DOCKER_CONFIG:-$HOME/.docker}/config.json. */
char *regcreds_docker_config_path(void);

/* Save user/secret for registry as `docker login` does: through the credential
 * helper docker would use (credHelpers[host], else credsStore) with an empty
 * entry in auths, else as "auth" in auths. The file is written atomically,
 * 0600, keeping its other keys. where (may be NULL) says where they went. */
int regcreds_store(const char *registry, const char *user, const char *secret, char **where,
                   struct err *err);
/* Remove them (the helper's `erase` too). found: there was something to remove. */
int regcreds_erase(const char *registry, bool *found, struct err *err);

#endif
