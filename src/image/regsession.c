/* Registry authentication for one process: credentials once per registry, one
 * token cache, answering the pull client's 401s. */
#include "image/regsession.h"
#include "image/regauth.h"
#include "image/regconf.h"
#include "image/regcreds.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct session_registry {
	char *name; /* canonical (regcreds_canonical) */
	struct regauth_creds creds;
	bool insecure;
};

struct regsession {
	struct regauth_cache *cache;
	struct session_registry *v;
	size_t n;
};

struct regsession *regsession_new(void)
{
	struct regsession *s = xcalloc(1, sizeof(*s));

	s->cache = regauth_cache_new();
	return s;
}

void regsession_free(struct regsession *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].name);
		regauth_creds_release(&s->v[i].creds);
	}
	free(s->v);
	regauth_cache_free(s->cache);
	free(s);
}

static int find_registry(struct regsession *s, const char *registry, const char *scope,
                         struct session_registry **out, struct err *err)
{
	_cleanup_free_ char *name = regcreds_canonical(registry);
	_cleanup_free_ char *source = NULL;
	_cleanup_free_ char *repo = NULL;
	struct session_registry r = {0};

	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, name) == 0) {
			*out = &s->v[i];
			return 0;
		}
	/* "repository:NAME:pull" -> NAME, for auth.json's namespace keys */
	if (scope && strncmp(scope, "repository:", 11) == 0) {
		const char *n = scope + 11;

		repo = xstrndup(n, strcspn(n, ":"));
	}
	if (regcreds_lookup(name, repo, &r.creds, &source, err) < 0)
		return -1;
	if (regconf_is_insecure(registry, &r.insecure, err) < 0)
		return -1;
	if (source)
		log_debug("registry %s: credentials from %s", name, source);
	r.name = steal_ptr(&name);
	s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
	s->v[s->n] = r;
	*out = &s->v[s->n++];
	return 0;
}

int regsession_authorize(void *ctx, const char *registry, const char *challenge, const char *scope,
                         struct strbuf *header, struct err *err)
{
	struct regsession *s = ctx;
	struct session_registry *r;
	struct regauth_ctx a;

	if (find_registry(s, registry, scope, &r, err) < 0)
		return -1;
	a = (struct regauth_ctx){.registry = r->name,
	                         .creds = regauth_creds_empty(&r->creds) ? NULL : &r->creds,
	                         .cache = s->cache,
	                         .insecure = r->insecure};
	return regauth_authorize(&a, challenge, scope, header, err);
}
