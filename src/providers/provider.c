/* Provider lookup by name. */
#include "providers/provider.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const struct provider_ops sandbox_provider;
extern const struct provider_ops sandbox_chroot_provider;
extern const struct provider_ops docker_provider;

/* Every provider, by environment type and isolation level. */
static const struct {
	const char *type, *isolation;
	const struct provider_ops *ops;
} providers[] = {
    {"sandbox", "full", &sandbox_provider},
    {"sandbox", "chroot", &sandbox_chroot_provider},
    {"docker", "full", &docker_provider},
};

const struct provider_ops *provider_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(providers); i++)
		if (strcmp(providers[i].ops->name, name) == 0)
			return providers[i].ops;
	return NULL;
}

const struct provider_ops *provider_for(const char *type, const char *isolation, struct err *err)
{
	_cleanup_free_ char *has = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(providers); i++) {
		if (strcmp(providers[i].type, type) != 0)
			continue;
		if (strcmp(providers[i].isolation, isolation) == 0)
			return providers[i].ops;
		char *more = has ? xasprintf("%s, %s", has, providers[i].isolation)
		                 : xstrdup(providers[i].isolation);

		free(has);
		has = more;
	}
	if (!has) {
		err_set(err, EINVAL, "unknown environment type %s", type);
		return NULL;
	}
	err_set(err, EINVAL, "environment type %s has no isolation level %s (it has: %s)", type,
	        isolation, has);
	return NULL;
}

void env_info_free(struct env_info *infos, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(infos[i].name);
		free(infos[i].job_name);
		free(infos[i].image);
		free(infos[i].state);
		free(infos[i].isolation);
	}
	free(infos);
}

int provider_upload_path(const struct provider_ops *p, struct environment *env,
                         const char *host_path, const char *env_path, unsigned flags,
                         struct err *err)
{
	_cleanup_close_ int fd = open(host_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0)
		return err_sys(err, "upload %s", host_path);
	fcntl(fd, F_SETFL, 0);
	return p->upload(env, fd, env_path, flags, err);
}

int provider_download_path(const struct provider_ops *p, struct environment *env,
                           const char *env_path, const char *host_path, struct err *err)
{
	_cleanup_free_ char *copy = xstrdup(host_path);
	_cleanup_cdir_ struct cdir dir = CDIR_INIT;
	char *slash = strrchr(copy, '/');
	const char *base = slash ? slash + 1 : copy;

	if (slash)
		*slash = '\0';
	if (cdir_make_trusted(slash ? (slash == copy ? "/" : copy) : ".", 0755, &dir, err) < 0)
		return -1;
	return p->download(env, env_path, &dir, base, NULL, NULL, err);
}
