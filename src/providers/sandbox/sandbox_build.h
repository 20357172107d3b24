/* Dockerfile builds on the sandbox runtime: the runner image/build_steps.c executes its
 * steps with (one environment per RUN, COPY, ADD or WORKDIR step, its writable
 * layer kept as the step's layer), and the build of a task's environment/ that the
 * sandbox provider's start() does when the task has no prebuilt image. */
#ifndef ROLLOUT_SANDBOX_BUILD_H
#define ROLLOUT_SANDBOX_BUILD_H

#include "image/build.h"
#include "providers/provider.h"
#include "providers/sandbox/sandbox.h"

/* The runner over sandbox environments at an isolation level. */
const struct build_runner *sandbox_build_runner(enum sandbox_isolation iso);

/* The image for cfg built from cfg->environment_dir: named rollout/<task>:<hash of
 * the context> (the name the docker provider gives a BuildKit build of the same
 * content), built when missing or when force_build asks (once per process), one
 * build per name at a time across processes. Output goes to cfg->build_log_path.
 * *ref_out: the name. */
int sandbox_build_task_image(const struct env_config *cfg, enum sandbox_isolation iso,
                             char **ref_out, struct err *err);
/* provider_ops.has_image: is ref in the image store ($ROLLOUT_HOME)? */
int sandbox_has_image(const char *ref, struct err *err);

#endif
