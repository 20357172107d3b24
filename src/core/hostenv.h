/* The host environment variables a job's tasks read through ${VAR} templates
 * ([environment].env, [verifier].env, and [solution].env when the oracle runs), which
 * rollout lists, and asks about, before any trial starts: a task could otherwise
 * import any host variable (an API key, a token) into an environment. */
#ifndef ROLLOUT_HOSTENV_H
#define ROLLOUT_HOSTENV_H

#include "rollout/strbuf.h"

#include <stddef.h>

struct job;

struct host_var_use {
	char *name;
	struct strv where; /* "TASK [environment.env]", one per task and table */
};

struct host_vars {
	struct host_var_use *v; /* in first-use order */
	size_t n;
};

/* Every host variable the job's loaded tasks read, and where. A task's
 * [environment].env entry that the job file's environment.env replaces reads nothing
 * (Harbor leaves it out too). */
void job_host_vars(const struct job *job, struct host_vars *out);
/* Drop the variables the job file allows by name (allow_host_env: [...]). */
void host_vars_drop(struct host_vars *hv, const struct strv *allowed);
/* "A (t1 [environment.env], t2 [verifier.env]), B (...)", at most `max_where` places
 * per variable ("and N more"). Names only: values are never shown. Heap string. */
char *host_vars_describe(const struct host_vars *hv, size_t max_where);
void host_vars_release(struct host_vars *hv);

#endif
