/* Glue between the image store and the sandbox: find the task's image, hand its
 * layers and config to sandbox_start_image. */
#include "providers/provider.h"
#include "providers/sandbox/sandbox.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"

#include <errno.h>
#include <stdlib.h>

int sandbox_image_start(const struct env_config *cfg, struct environment **out, struct err *err);

int sandbox_image_start(const struct env_config *cfg, struct environment **out, struct err *err)
{
	(void)cfg;
	(void)out;
	return err_set(err, ENOSYS,
	               "the sandbox provider's image store is not available yet in "
	               "this build");
}
