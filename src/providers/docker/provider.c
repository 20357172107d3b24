/* The docker provider: placeholder until its issue lands. */
#include "providers/provider.h"
#include "rollout/err.h"

#include <errno.h>

static int docker_unavailable(struct err *err)
{
	return err_set(err, ENOSYS, "the docker provider is not available yet in this build");
}

static int docker_start(const struct env_config *cfg, struct environment **out, struct err *err)
{
	(void)cfg;
	(void)out;
	return docker_unavailable(err);
}

static int docker_open(const char *name, struct environment **out, struct err *err)
{
	(void)name;
	(void)out;
	return docker_unavailable(err);
}

static int docker_list(struct env_info **out, size_t *n, struct err *err)
{
	*out = NULL;
	*n = 0;
	(void)err;
	return 0;
}

static int docker_gc(struct err *err)
{
	(void)err;
	return 0;
}

const struct provider_ops docker_provider = {
    .name = "docker",
    .start = docker_start,
    .open = docker_open,
    .list = docker_list,
    .gc = docker_gc,
};
