/* Internals shared by the docker provider's files (docker.c, docker_exec.c, docker_archive.c,
 * docker_build.c, helper.c). Not visible outside src/providers/docker/. */
#ifndef ROLLOUT_DOCKER_INTERNAL_H
#define ROLLOUT_DOCKER_INTERNAL_H

#include "providers/docker/api.h"
#include "providers/provider.h"

#include <stdbool.h>
#include <sys/types.h>

struct strbuf;

/* rollout's own static binary, bind-mounted read-only into every container: the
 * container's sleeping main process and an in-container helper (kill a timed-out
 * command's processes, read the OOM counter, hand /logs files to the host user). */
#define DOCKER_HELPER_PATH "/.rollout/rollout-helper"
/* Every exec carries a unique marker in its environment; a timeout kills every
 * process that still has it (daemonized ones included). */
#define DOCKER_EXEC_MARKER "ROLLOUT_EXEC_ID"

/* Labels on every container rollout creates. */
#define LABEL_ENV "rollout.env"
#define LABEL_JOB "rollout.job"
#define LABEL_TASK "rollout.task"
#define LABEL_VERSION "rollout.version"
#define LABEL_OWNER_HOST "rollout.owner.host"
#define LABEL_OWNER_BOOT "rollout.owner.boot_id"
#define LABEL_OWNER_PIDNS "rollout.owner.pid_ns"
#define LABEL_OWNER_PID "rollout.owner.pid"
#define LABEL_OWNER_START "rollout.owner.start_time"
/* On the network rollout creates (network.c). */
#define LABEL_NETWORK "rollout.network"

/* The bridge network of environments with internet (network.c). */
#define DOCKER_NETWORK "rollout-bridge"

struct docker_env {
	struct environment base; /* first: the handle provider.h hands out */
	struct docker_client *client;
	char *id;   /* container id */
	char *name; /* environment name (label rollout.env) */
	char *image;
	long long oom_kills; /* the container cgroup's oom_kill counter last seen; -1 unknown */
	char *host_logs[3];  /* bind-mounted host dirs of /logs/{agent,verifier,artifacts} */
	bool daemon_lost;    /* the connection to the daemon broke during this environment */
};

/* The docker provider's own handle behind provider.h's (its first member). */
static inline struct docker_env *docker_env_of(struct environment *e)
{
	return (struct docker_env *)e;
}

/* ---- docker_exec.c ---- */

/* One exec, fully described (the provider's exec_request plus internals). */
struct docker_exec_spec {
	const char *const *argv;
	const char *const *env;
	const char *cwd;
	const char *user;
	bool is_helper; /* internal: on timeout just give up (no kill, no follow-ups) */
	double timeout_sec;
	int stdin_fd;
	/* Sinks: a file per stream (-1 = discard) and/or memory capture. */
	int out_fd, err_fd;
	struct strbuf *out_mem, *err_mem;
	long long cap; /* per stream */
};

int docker_exec_run(struct docker_env *env, const struct docker_exec_spec *spec,
                    struct exec_result *res, struct err *err);
int docker_provider_exec(struct environment *handle, const struct exec_request *req,
                         struct exec_result *res, struct err *err);
/* Run the helper inside the container as user (NULL: the image's); its stdout
 * goes to out (may be NULL). A non-zero exit is an error. */
int docker_helper_exec(struct docker_env *env, const char *user, const char *const *args,
                       double timeout, struct strbuf *out, struct err *err);
/* The container is not running (or gone): an error saying why, as well as we can tell. */
int docker_container_gone(struct docker_env *env, struct err *err);

/* ---- docker_archive.c ---- */

int docker_provider_upload(struct environment *handle, int host_fd, const char *env_path,
                           unsigned flags, struct err *err);
int docker_provider_download(struct environment *handle, const char *env_path,
                             const struct cdir *dest, const char *dest_rel,
                             const struct copy_limits *lim, struct copy_report *rep,
                             struct err *err);
/* Create directories (and parents) inside the container. */
int docker_mkdirs(struct docker_env *env, const char *const *paths, struct err *err);

/* ---- docker_build.c ---- */

/* 1 when the daemon has image ref, 0 when not (404), -1 on error. */
int docker_image_exists(struct docker_client *c, const char *ref, struct err *err);

/* Lines of a JSON-lines stream (build, pull, load); cb gets each object. */
typedef int (*docker_json_line_cb)(void *ctx, const cJSON *obj, struct err *err);
int docker_read_json_lines(struct http_response *r, double deadline, docker_json_line_cb cb,
                           void *ctx, struct err *err);
/* The message of an error line: errorDetail.message, else error (deprecated in 1.48). */
const char *docker_stream_error(const cJSON *obj);

/* Find or build the image for cfg; *image_out is the reference to create from. */
int docker_ensure_image(struct docker_client *c, const struct env_config *cfg, char **image_out,
                        struct err *err);

/* ---- from_store.c ---- */

/* ref from rollout's own image store into the daemon (POST /images/load with the
 * image saved from the store as it streams): 1 when loaded, 0 when the store
 * does not exist or lacks ref, -1 on error. */
int docker_load_from_store(struct docker_client *c, const char *ref, double deadline,
                           struct err *err);

/* ---- helper.c ---- */

/* The host path of the static binary to mount at DOCKER_HELPER_PATH. */
int docker_helper_host_path(char **out, struct err *err);
/* ops.entry: runs the helper when this process was started as it (never returns
 * then); returns at once otherwise. */
void docker_helper_entry(void);
/* Kill every process carrying marker (in its environment), the process group
 * and session of the marked session leader, and all their descendants, until
 * none is left. Host side (as root, in the daemon's pid namespace): only
 * processes in the pid namespace of ns_pid (> 0) are considered. Returns the
 * number killed, or -1 if /proc cannot be read. */
int docker_kill_marked(const char *marker, pid_t ns_pid);
/* The fields rollout needs from /proc/PID/stat; -1 when unreadable. */
int proc_stat_fields(pid_t pid, pid_t *ppid, pid_t *pgid, pid_t *sid,
                     unsigned long long *start_time);
/* chown everything below dirfd's directory (itself included) that is not
 * uid:gid yet, never following a symlink. Returns how many entries were not
 * owned by uid:gid (and were changed when `change`). */
long docker_chown_tree(int dirfd, uid_t uid, gid_t gid, bool change);
/* Whether /proc/PID/environ holds the exact entry KEY=VALUE. */
bool proc_environ_has(pid_t pid, const char *entry);
/* "<boot_id>", "<pid-ns inode>", hostname: the identity of this rollout process. */
void docker_owner_identity(char *boot_id, size_t nb, char *pid_ns, size_t np, char *host,
                           size_t nh);

/* ---- network.c ---- */

/* The Id of DOCKER_NETWORK, created when missing (a bridge without
 * inter-container communication); an error if one of that name lets
 * containers reach each other. */
int docker_network_ensure(struct docker_client *c, char **id, struct err *err);

/* ---- docker.c ---- */

/* Files the container wrote to the bind-mounted /logs dirs are handed to the
 * invoking user: from the host as root, else by the helper (only when needed). */
void docker_fix_logs_owner(struct docker_env *env);

/* Wrap an error from a call on env's container: a vanished container or a
 * lost daemon gets a clear message. */
int docker_env_error(struct docker_env *env, int status, struct err *err);

#endif
