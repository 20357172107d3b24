/* The providers (the table of include/rollout/provider_table.h) and the
 * environment handle's calls. */
#include "providers/provider.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/provider_table.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The table of include/rollout/provider_table.h: the ops of each level, and
 * each type's name. */
#define NO_TYPE(id, name, harbor, import_path)
#define NO_LEVEL(id, isolation, ops)
#define LEVEL_EXTERN(id, isolation, ops) extern const struct provider_ops ops;
#define TYPE_NAME(id, name, harbor, import_path) static const char type_##id[] = name;
#define LEVEL_ROW(id, isolation, ops) {type_##id, isolation, &ops},
ROLLOUT_PROVIDERS(NO_TYPE, LEVEL_EXTERN)
ROLLOUT_PROVIDERS(TYPE_NAME, NO_LEVEL)

/* Every provider, by environment type and isolation level; a type's first
 * level is full isolation. */
static const struct {
	const char *type, *isolation;
	const struct provider_ops *ops;
} providers[] = {ROLLOUT_PROVIDERS(NO_TYPE, LEVEL_ROW)};

/* Providers no job file can name: tests select them by name (provider_find,
 * ROLLOUT_TEST_PROVIDER), and ROLLOUT_TEST_LOGS_COPIED=1 makes provider_for()
 * give the sandbox's at full isolation (docs/ARCHITECTURE.md, "The providers"). */
extern const struct provider_ops sandbox_copied_logs_provider;
static const struct provider_ops *const test_providers[] = {&sandbox_copied_logs_provider};

const struct provider_ops *provider_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(providers); i++)
		if (strcmp(providers[i].ops->name, name) == 0)
			return providers[i].ops;
	for (size_t i = 0; i < ARRAY_SIZE(test_providers); i++)
		if (strcmp(test_providers[i]->name, name) == 0)
			return test_providers[i];
	return NULL;
}

/* The one code that runs before main() (src/main.c only dispatches): each
 * provider's in-environment entry point, which does not return when this
 * process is one of its programs (ops.entry). */
__attribute__((constructor)) static void provider_entries(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(providers); i++)
		if (providers[i].ops->entry)
			providers[i].ops->entry();
}

const char *provider_entry_binary(void)
{
	return "/proc/self/exe";
}

const struct provider_ops *provider_each(size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(providers); i++)
		if ((i == 0 || strcmp(providers[i].type, providers[i - 1].type) != 0) && n-- == 0)
			return providers[i].ops;
	return NULL;
}

const struct provider_ops *provider_level_each(size_t i)
{
	return i < ARRAY_SIZE(providers) ? providers[i].ops : NULL;
}

const char *provider_names_or(void)
{
	static char names[256];

	if (!names[0]) {
		size_t n = 0;

		while (provider_each(n))
			n++;
		for (size_t i = 0; i < n; i++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
			         i == 0      ? ""
			         : i + 1 < n ? ", "
			                     : " or ",
			         provider_each(i)->name);
	}
	return names;
}

int provider_unknown(const char *name, struct err *err)
{
	return err_set(err, EINVAL, "unknown provider '%s' (%s)", name, provider_names_or());
}

const struct provider_ops *provider_for(const char *type, const char *isolation, struct err *err)
{
	_cleanup_free_ char *has = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(providers); i++) {
		if (strcmp(providers[i].type, type) != 0)
			continue;
		if (strcmp(providers[i].isolation, isolation) == 0) {
			const char *copied = getenv("ROLLOUT_TEST_LOGS_COPIED");

			if (copied && !strcmp(copied, "1") &&
			    !strcmp(providers[i].ops->name, "sandbox"))
				return &sandbox_copied_logs_provider;
			return providers[i].ops;
		}
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

/* ---- the handle ---- */

int env_start(const struct provider_ops *p, const struct env_config *cfg, struct environment **out,
              struct err *err)
{
	_cleanup_free_ char *ref = NULL;

	*out = NULL;
	if (p->prepare_image(cfg, &ref, err) < 0 || p->start(ref, cfg, out, err) < 0)
		return -1;
	(*out)->ops = p;
	return 0;
}

int env_open(const struct provider_ops *p, const char *name, struct environment **out,
             struct err *err)
{
	if (p->open(name, out, err) < 0)
		return -1;
	(*out)->ops = p;
	return 0;
}

int env_exec(struct environment *env, const struct exec_request *req, struct exec_result *res,
             struct err *err)
{
	return env->ops->exec(env, req, res, err);
}

int env_upload(struct environment *env, int host_fd, const char *env_path, unsigned flags,
               struct err *err)
{
	return env->ops->upload(env, host_fd, env_path, flags, err);
}

int env_download(struct environment *env, const char *env_path, const struct cdir *dest,
                 const char *dest_rel, const struct copy_limits *lim, struct copy_report *rep,
                 struct err *err)
{
	return env->ops->download(env, env_path, dest, dest_rel, lim, rep, err);
}

int env_kill_all(struct environment *env, struct err *err)
{
	return env->ops->kill_all(env, err);
}

int env_open_verifier_dir(struct environment *env, struct err *err)
{
	return env->ops->open_verifier_dir(env, err);
}

int env_usage(struct environment *env, struct env_usage *out, struct err *err)
{
	return env->ops->usage ? env->ops->usage(env, out, err) : 0;
}

int env_stop(struct environment *env, bool destroy, struct err *err)
{
	return env->ops->stop(env, destroy, err);
}

void env_release(struct environment *env)
{
	if (env)
		env->ops->release(env);
}

bool env_logs_mounted(const struct environment *env)
{
	return env->ops->logs_mounted;
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

int env_upload_path(struct environment *env, const char *host_path, const char *env_path,
                    unsigned flags, struct err *err)
{
	_cleanup_close_ int fd = open(host_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0)
		return err_sys(err, "upload %s", host_path);
	fcntl(fd, F_SETFL, 0);
	return env_upload(env, fd, env_path, flags, err);
}

int env_download_path(struct environment *env, const char *env_path, const char *host_path,
                      struct err *err)
{
	_cleanup_free_ char *copy = xstrdup(host_path);
	_cleanup_cdir_ struct cdir dir = CDIR_INIT;
	char *slash = strrchr(copy, '/');
	const char *base = slash ? slash + 1 : copy;

	if (slash)
		*slash = '\0';
	if (cdir_make_trusted(slash ? (slash == copy ? "/" : copy) : ".", 0755, &dir, err) < 0)
		return -1;
	return env_download(env, env_path, &dir, base, NULL, NULL, err);
}
