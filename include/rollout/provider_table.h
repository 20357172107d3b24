/* Every environment provider rollout has: the one list everything iterates.
 * config/ takes the types from it (enum env_type, the names environment.type and
 * -e accept, how config.json spells each for Harbor); providers/providers.c takes
 * the ops of each isolation level; the commands (gc, env ls, tasks check, usage
 * and "unknown provider" messages) go through providers/provider.h. Properties
 * that commands act on are fields of struct provider_ops.
 *
 * Adding a provider: its directory under src/providers/ defining a
 * `const struct provider_ops NAME`, and its rows here (docs/ARCHITECTURE.md,
 * "How to add a provider").
 *
 * ROLLOUT_PROVIDERS(TYPE, LEVEL) expands to one TYPE row per environment type,
 * each followed by the LEVEL rows of its isolation levels (the first is full):
 *   TYPE(ID, name, harbor_type, import_path)
 *     ID           enum env_type's constant is ENV_TYPE_<ID>
 *     name         environment.type in job files, -e NAME
 *     harbor_type  config.json's environment.type: the name when Harbor has that
 *                  type, else NULL (written as Harbor writes a type it does not
 *                  know: type null, import_path, with rollout_provider)
 *     import_path  that import_path (NULL with a harbor_type)
 *   LEVEL(ID, isolation, ops)
 *     isolation    environment.isolation ("full", "chroot": enum env_isolation)
 *     ops          the struct provider_ops that runs it */
#ifndef ROLLOUT_PROVIDER_TABLE_H
#define ROLLOUT_PROVIDER_TABLE_H

#define ROLLOUT_PROVIDERS(TYPE, LEVEL)                                                             \
	TYPE(SANDBOX, "sandbox", NULL, "rollout.environments.sandbox:SandboxEnvironment")          \
	LEVEL(SANDBOX, "full", sandbox_provider)                                                   \
	LEVEL(SANDBOX, "chroot", sandbox_chroot_provider)                                          \
	TYPE(DOCKER, "docker", "docker", NULL)                                                     \
	LEVEL(DOCKER, "full", docker_provider)

/* "sandbox|docker": the type names as one constant (usable in static
 * initializers, as option tables' metavariables are). */
#define ROLLOUT_PROVIDER_BAR_(id, name, harbor_type, import_path) "|" name
#define ROLLOUT_PROVIDER_NO_LEVEL_(id, isolation, ops)
#define ROLLOUT_PROVIDER_NAMES_BAR                                                                 \
	(&(ROLLOUT_PROVIDERS(ROLLOUT_PROVIDER_BAR_, ROLLOUT_PROVIDER_NO_LEVEL_))[1])

#endif
