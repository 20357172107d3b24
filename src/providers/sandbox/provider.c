/* The sandbox provider: placeholder until its issue lands. */
#include "providers/provider.h"
#include "rollout/err.h"

#include <errno.h>

static int sandbox_unavailable(struct err *err)
{
	return err_set(err, ENOSYS, "the sandbox provider is not available yet in this build");
}

static int sandbox_start(const struct env_config *cfg, struct environment **out, struct err *err)
{
	(void)cfg;
	(void)out;
	return sandbox_unavailable(err);
}

static int sandbox_open(const char *name, struct environment **out, struct err *err)
{
	(void)name;
	(void)out;
	return sandbox_unavailable(err);
}

static int sandbox_list(struct env_info **out, size_t *n, struct err *err)
{
	*out = NULL;
	*n = 0;
	(void)err;
	return 0;
}

static int sandbox_gc(struct err *err)
{
	(void)err;
	return 0;
}

const struct provider_ops sandbox_provider = {
    .name = "sandbox",
    .start = sandbox_start,
    .open = sandbox_open,
    .list = sandbox_list,
    .gc = sandbox_gc,
};
