/* The one environment-provider interface. `sandbox` (rollout's own runtime) and
 * `docker` (Docker Engine API) implement it; the trial executor cannot tell them apart. */
#ifndef ROLLOUT_PROVIDER_H
#define ROLLOUT_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

struct err;

/* Container paths of the contract (SPEC.md "The container contract"). */
#define ENV_LOGS_DIR "/logs"
#define ENV_AGENT_DIR "/logs/agent"
#define ENV_VERIFIER_DIR "/logs/verifier"
#define ENV_ARTIFACTS_DIR "/logs/artifacts"
#define ENV_TESTS_DIR "/tests"
#define ENV_SOLUTION_DIR "/solution"

/* Default per-stream cap on captured command output. */
#define EXEC_OUTPUT_CAP_DEFAULT (64LL << 20)

/* Everything a provider needs to build/find the image and start one environment. */
struct env_config {
	const char *env_name;  /* unique (the trial name): container name, hostname, lookup key */
	const char *job_name;  /* recorded as a label, for gc and `env ls` */
	const char *task_name; /* image names are derived from it */

	/* Image: environment_dir is the task's environment/ (build context with a
	 * Dockerfile); docker_image a prebuilt reference, used unless force_build. */
	const char *environment_dir;
	const char *docker_image;
	bool force_build;
	double build_timeout_sec;   /* 0 = none */
	const char *build_log_path; /* build output is appended here (may be NULL) */

	/* Limits; 0 means "no limit" for each. */
	double cpus;
	long long memory_bytes;
	long long storage_bytes;
	long pids_limit;
	bool allow_internet;

	/* Host directories bind-mounted (or downloaded to) at /logs/{agent,verifier,artifacts}. */
	const char *host_agent_dir;
	const char *host_verifier_dir;
	const char *host_artifacts_dir;

	const char *const
	    *env;            /* extra KEY=VALUE for every exec ([environment].env); may be NULL */
	const char *workdir; /* overrides the image WORKDIR for execs; may be NULL */
};

struct exec_request {
	const char *const *argv; /* argv[0] looked up in the environment's PATH */
	const char *const *env;  /* KEY=VALUE, added to / overriding the image Env; may be NULL */
	const char *cwd;         /* NULL: the image WORKDIR (or env_config.workdir) */
	const char *user;        /* NULL: the image USER; "uid", "uid:gid" or a name */
	double timeout_sec;      /* 0: none. On expiry the command and everything it
				    started are killed; the environment stays usable. */
	/* Host fds the command's output is written to (never reopened, so an
	 * O_APPEND descriptor keeps appending); 0 or -1 discards (output never
	 * goes to our own stdin: a zeroed request discards it). */
	int stdout_fd;
	int stderr_fd;
	bool merge_stderr;    /* stderr goes to stdout_fd, interleaved */
	long long output_cap; /* per stream, bytes; 0 = EXEC_OUTPUT_CAP_DEFAULT */
	int stdin_fd;         /* fd to feed as stdin; -1 = /dev/null */
};
#define EXEC_REQUEST_INIT                                                                          \
	{                                                                                          \
		.stdout_fd = -1, .stderr_fd = -1, .stdin_fd = -1                                   \
	}

struct exec_result {
	int exit_code; /* 128+signal when killed by a signal */
	bool timed_out;
	bool oom_killed;
	bool stdout_truncated;
	bool stderr_truncated;
	long long stdout_bytes; /* bytes the command produced (including beyond the cap) */
	long long stderr_bytes;
	double duration_sec;
};

/* One line of `rollout env ls`. */
struct env_info {
	char *name;
	char *job_name;
	char *image;
	char *state;     /* running, stopped, ... */
	char *isolation; /* the sandbox's level ("full", "chroot"); NULL for docker */
	double created_at;
};

/* What an environment's storage came to (provider_ops.usage). The writable
 * layer counts, and the /logs directories where the provider covers them
 * (docs/SANDBOX.md "Storage"). */
struct env_usage {
	long long limit_bytes; /* env_config.storage_bytes (0: none asked for) */
	bool enforced;         /* the limit applies: writes beyond it fail (EDQUOT) */
	long long used_bytes;  /* -1 when not measured (not enforced) */
	/* The limit was reached: usage within a write's worth of it, or every
	 * inode allowed in use. */
	bool limit_hit;
};

struct cdir;
struct provider_ops;

/* An environment, whatever provides it: each provider's own handle (struct
 * sandbox_env, struct docker_env) embeds this first, so callers hold one pointer
 * and reach the provider through it (env_exec() and the other env_* below). */
struct environment {
	const struct provider_ops *ops; /* set by env_start()/env_open() */
};

/* upload() flags */
enum {
	/* env_path is removed first: a directory is replaced as a whole, not merged
	 * with what the agent left there. */
	UPLOAD_REPLACE = 1 << 0,
};

/* Bounds of a download (collect phase): what the environment hands back is
 * untrusted in size and time too. */
struct copy_limits {
	long long max_bytes; /* apparent size of all files; beyond it files are cut; 0 = none */
	double deadline;     /* mono_now() value; 0 = none (ETIMEDOUT) */
};

struct copy_report {
	long long bytes; /* apparent size written */
	long files;
	bool truncated; /* max_bytes was reached */
};

struct host_needs;

struct provider_ops {
	const char *name;
	/* true when the /logs directories are bind mounts (no download needed in collect). */
	bool logs_mounted;

	/* Properties the commands go by (none of them names a provider):
	 * service: NULL, or what it is reached through that many hosts do not have
	 *   ("Docker daemon"): when a command asks every provider (gc, `tasks
	 *   check`) and this one cannot be reached, that is a note, not an error.
	 * gc_must_succeed: its gc fails only when the provider cannot be reached at
	 *   all, so `rollout run` stops there rather than failing every trial.
	 * image_place, image_provide: where has_image() looks ("on the Docker
	 *   daemon") and how a person puts image X there (image_provide[0], X,
	 *   image_provide[1]), for `rollout tasks check`. */
	const char *service;
	bool gc_must_succeed;
	const char *image_place;
	const char *image_provide[2];
	/* What it needs of the host (the probes of providers/probe.h, required or
	 * optional) and how `rollout doctor` and the preflight's messages name it.
	 * Every level of the table has one. */
	const struct host_needs *host_needs;

	/* Optional (may be NULL): process-wide work done once before trial workers are
	 * forked (compiled filters, host probes), which every worker then inherits. */
	int (*prepare)(struct err *err);
	/* Build or find the image cfg asks for: *ref (allocated) names it the way
	 * start() takes it (a store reference, a daemon's image). Nothing starts. */
	int (*prepare_image)(const struct env_config *cfg, char **ref, struct err *err);
	/* Start an environment of image ref (from prepare_image) as cfg says.
	 * Callers use env_start(), which does both. */
	int (*start)(const char *ref, const struct env_config *cfg, struct environment **out,
	             struct err *err);
	int (*exec)(struct environment *env, const struct exec_request *req,
	            struct exec_result *res, struct err *err);
	/* Copy a host file or directory into the environment: host_fd is an open
	 * regular file or directory (opened confined by the caller). A directory's
	 * *contents* land in env_path (created if missing); modes are kept. */
	int (*upload)(struct environment *env, int host_fd, const char *env_path, unsigned flags,
	              struct err *err);
	/* Copy an environment file or directory (its contents) to dest_rel beneath
	 * the host directory dest (parents made there, whatever was planted in the
	 * way replaced). Nothing is followed on the host; modes are masked (no
	 * setuid/setgid/sticky, no group/other write), FIFOs, devices and sockets
	 * are skipped, holes stay holes. lim and rep may be NULL. */
	int (*download)(struct environment *env, const char *env_path, const struct cdir *dest,
	                const char *dest_rel, const struct copy_limits *lim,
	                struct copy_report *rep, struct err *err);
	/* Kills every process of the environment except its init — whatever the
	 * earlier execs left running, daemons and setsid'd children included — and
	 * returns once they are gone: how many were killed, or -1. */
	int (*kill_all)(struct environment *env, struct err *err);
	/* Verification starts: /logs/verifier, read-only until now where the
	 * provider can do that (so nothing could be planted there), becomes
	 * writable. Callers kill_all() first and empty the host directory. */
	int (*open_verifier_dir)(struct environment *env, struct err *err);
	/* Optional (may be NULL): the storage the environment uses against its
	 * limit, read before stop(). */
	int (*usage)(struct environment *env, struct env_usage *out, struct err *err);
	/* destroy=true removes everything; false stops nothing and keeps the
	 * environment for `rollout env` (preserve_env). Frees the handle. */
	int (*stop)(struct environment *env, bool destroy, struct err *err);

	/* Reattach to a running/kept environment by name (for `rollout env exec`). */
	int (*open)(const char *env_name, struct environment **out, struct err *err);
	/* Free a handle from open() without touching the environment. */
	void (*release)(struct environment *env);
	int (*list)(struct env_info **out, size_t *n, struct err *err);
	/* Remove leftovers of rollout processes that are gone (killed by SIGKILL):
	 * environments whose owner died, unless kept by preserve_env. Returns the
	 * number removed, or negative on error. */
	int (*gc)(struct err *err);
	/* Optional (may be NULL): is the image `ref` where this provider would find it
	 * without fetching it (the sandbox's store, the Docker daemon)? 1 yes, 0 no, -1
	 * when it cannot tell (no daemon), with err. Creates nothing. */
	int (*has_image)(const char *ref, struct err *err);

	/* Optional (may be NULL): the provider's programs that run inside its
	 * environments (the sandbox's init, the docker helper) are this binary
	 * re-exec'd (provider_entry_binary). Called before main() by the one
	 * constructor of providers/providers.c: returns at once when this process is
	 * not one of them, never returns when it is. One ops of a type sets it. */
	void (*entry)(void);
};

/* The providers (providers/providers.c: one row per environment type of
 * include/rollout/provider_table.h, one ops per isolation level). */
/* By ops name: "sandbox", "sandbox-chroot", "docker" (and test-only ones). */
const struct provider_ops *provider_find(const char *name);
/* What a job asks for: environment.type and environment.isolation ("full",
 * "chroot"). A level the type does not have is an error naming those it has. */
const struct provider_ops *provider_for(const char *type, const char *isolation, struct err *err);
/* Each environment type's provider at full isolation, in table order, then NULL:
 * what `rollout gc`, `env ls` and `tasks check` go through. */
const struct provider_ops *provider_each(size_t i);
/* Every level of every type (each LEVEL row of the table), in table order, then
 * NULL: what `rollout doctor` and the preflight's "what works here" go through. */
const struct provider_ops *provider_level_each(size_t i);
/* The types' names for messages and usage: "sandbox or docker". */
const char *provider_names_or(void);
/* "unknown provider 'x' (sandbox or docker)" into err, EINVAL. */
int provider_unknown(const char *name, struct err *err);
/* The binary a provider re-execs or mounts to run its in-environment programs
 * (ops.entry): this very program ("/proc/self/exe"). Going through it links
 * providers.c, whose constructor serves the entries, into every program that
 * can start an environment (rollout, the test and bench programs). */
const char *provider_entry_binary(void);

/* The handle, whatever the provider (each calls the ops of env->ops). */
/* prepare_image() then start(): one environment from cfg. */
int env_start(const struct provider_ops *p, const struct env_config *cfg, struct environment **out,
              struct err *err);
/* p->open(): reattach to an environment by name. */
int env_open(const struct provider_ops *p, const char *name, struct environment **out,
             struct err *err);
int env_exec(struct environment *env, const struct exec_request *req, struct exec_result *res,
             struct err *err);
int env_upload(struct environment *env, int host_fd, const char *env_path, unsigned flags,
               struct err *err);
int env_download(struct environment *env, const char *env_path, const struct cdir *dest,
                 const char *dest_rel, const struct copy_limits *lim, struct copy_report *rep,
                 struct err *err);
int env_kill_all(struct environment *env, struct err *err);
int env_open_verifier_dir(struct environment *env, struct err *err);
/* 0, *out left as the caller set it, when the provider has no usage(). */
int env_usage(struct environment *env, struct env_usage *out, struct err *err);
/* Stops (destroy) or keeps it, and frees the handle. */
int env_stop(struct environment *env, bool destroy, struct err *err);
/* Frees a handle without touching the environment. */
void env_release(struct environment *env);
/* The /logs directories are bind mounts (no download needed in collect). */
bool env_logs_mounted(const struct environment *env);
/* upload()/download() by host path, for callers whose host side is trusted
 * (tests, benchmarks, `rollout env`): the path is opened (its parent, for a
 * download) as the caller names it. */
int env_upload_path(struct environment *env, const char *host_path, const char *env_path,
                    unsigned flags, struct err *err);
int env_download_path(struct environment *env, const char *env_path, const char *host_path,
                      struct err *err);
void env_info_free(struct env_info *infos, size_t n);

#endif
