/* Files in and out of docker environments through the archive endpoints. */
#include "providers/docker/docker.h"
#include "rollout/err.h"

#include <errno.h>

int docker_provider_upload(struct environment *env, const char *host_path, const char *env_path,
                           struct err *err)
{
	(void)env;
	(void)host_path;
	(void)env_path;
	return err_set(err, ENOSYS, "docker upload: not yet");
}

int docker_provider_download(struct environment *env, const char *env_path, const char *host_path,
                             struct err *err)
{
	(void)env;
	(void)host_path;
	(void)env_path;
	return err_set(err, ENOSYS, "docker download: not yet");
}

int docker_mkdirs(struct environment *env, const char *const *paths, struct err *err)
{
	(void)env;
	(void)paths;
	return err_set(err, ENOSYS, "docker mkdirs: not yet");
}
