/* Internals of the sandbox provider shared by its files: the image seam, the
 * container plan handed to the cloned init, the control protocol, the handle. */
#ifndef ROLLOUT_SANDBOX_H
#define ROLLOUT_SANDBOX_H

#include "providers/provider.h"
#include "providers/sandbox/cgroup.h"
#include "providers/sandbox/net.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct err;
struct sock_fprog;
struct sandbox_env;

/* ---- Isolation levels (docs/SANDBOX.md, "Isolation levels") ---- */
enum sandbox_isolation {
	SANDBOX_FULL,   /* namespaces, an overlay, cgroups, seccomp (container.c) */
	SANDBOX_CHROOT, /* the host's namespaces, a copy of the image chroot'ed into (chroot.c) */
};

/* ---- Image seam: what start() needs from the image store ---- */
struct sandbox_image {
	enum sandbox_isolation isolation;
	const char *ref;           /* as requested (recorded in the state) */
	const char *id;            /* image ID, may be NULL */
	const char *const *layers; /* unpacked layer directories, bottom → top */
	size_t n_layers;
	const char *const *env; /* image Env, KEY=VALUE (may be NULL) */
	const char *workdir;    /* image WorkingDir; NULL or "" = "/" */
	const char *user;       /* image User; NULL or "" = root */
	bool userxattr;         /* whiteouts in the user.overlay.* form */
	/* For the Dockerfile builder: the overlay's upper and work directories
	 * (empty, on one filesystem) instead of <env>/upper and <env>/work. They are
	 * not removed with the environment: after stop the upper directory is the
	 * step's layer. NULL = the environment's own. */
	const char *upper_dir;
	const char *work_dir;
	/* Copy-up copies whole files and directories (redirect_dir=off,
	 * metacopy=off), so the upper directory holds complete contents. */
	bool whole_files;
	/* Called once the environment's directory exists (and is locked), before
	 * anything is mounted: the store marks the image as in use there. */
	int (*mark_in_use)(void *ctx, const char *env_name, struct err *err);
	void *mark_ctx;
};

/* Starts an environment on explicit layers: the image's, or a build step's
 * (sandbox_start_from_store looks a reference up in the store first). */
int sandbox_start_layers(const struct env_config *cfg, const struct sandbox_image *img,
                         struct sandbox_env **out, struct err *err);
/* sandbox_image.c: the task's image in the store, built first when it has none (*ref:
 * the reference to start); then an environment of the stored image (its layers,
 * marked in use) started at the given level. */
int sandbox_image_prepare(const struct env_config *cfg, enum sandbox_isolation iso, char **ref,
                          struct err *err);
int sandbox_start_from_store(const char *ref, const struct env_config *cfg,
                             enum sandbox_isolation iso, struct sandbox_env **out, struct err *err);

/* ---- --isolation chroot (chroot.c) ---- */
int chroot_start_layers(const struct env_config *cfg, const struct sandbox_image *img,
                        struct sandbox_env **out, struct err *err);
/* The level's preflight: the host must let root chroot; warns once about
 * what runs without (cgroups, device nodes, seccomp). */
int chroot_prepare(struct err *err);
/* What each level needs of the host (providers/probe.h), in provider.c. */
extern const struct host_needs sandbox_host_needs, sandbox_chroot_host_needs;
/* Verification starts (the agent's processes are gone): /logs/verifier is
 * emptied and made anew inside the root (the agent could write it). */
int chroot_open_verifier_dir(struct sandbox_env *env, struct err *err);
/* The first step of a teardown: every process of the environment killed (by
 * its init, then whatever still runs with the environment's root), then a
 * build step's changes written to its upper directory. */
int chroot_teardown_processes(struct sandbox_env *env, struct err *err);

/* ---- Where environments live ---- */

/* The store's root: $ROLLOUT_HOME, else /var/lib/rollout for root, else
 * $XDG_DATA_HOME/rollout or ~/.local/share/rollout. Heap string. */
char *sandbox_home(void);
/* <home>/envs */
char *sandbox_envs_dir(void);
/* Environment names become directory names and hostnames. */
int sandbox_check_name(const char *name, struct err *err);

/* ---- The plan the cloned child (the environment's init) executes ---- */

/* An error from the child, forwarded over the sync socket. */
struct child_err {
	int code;
	char msg[480];
};
int child_fail(struct child_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_BINDS 3

struct sandbox_plan {
	unsigned long clone_flags;
	bool userns;
	bool netns;
	int sync_fd;   /* child end of the sync socketpair */
	int listen_fd; /* ctl.sock, already listening */
	int cg_procs[CG_MAX];
	int n_cg_procs;
	enum cg_mode cg_mode;
	const char *cg_views[CG_MAX]; /* v1 controller sets mounted under /sys/fs/cgroup */
	int n_cg_views;

	const char *rootfs;       /* empty host directory the overlay is mounted on */
	const char *etc_scratch;  /* empty host directory for the tmpfs of etc_files */
	const char *etc_files[3]; /* contents of /etc/hosts, /etc/resolv.conf, /etc/hostname */
	const char *const *lowers_top_first;
	size_t n_lowers;
	const char *upper;
	const char *work;
	const char *overlay_opts; /* whole mount(2) option string, fallback for old kernels */
	bool userxattr;
	bool whole_files; /* redirect_dir=off, metacopy=off (builds) */

	const char *hostname;
	const char *bind_src[LOG_BINDS]; /* host directories (NULL: none) */
	const char *bind_dst[LOG_BINDS]; /* relative to the container root */
	/* Bit i: bind i starts read-only (/logs/verifier until verification:
	 * the agent can plant nothing there). */
	unsigned bind_rdonly;

	const struct sock_fprog *seccomp;
	uint64_t caps;
	bool shim;          /* no cgroups: each exec runs under a subreaper shim */
	bool devpts_gid;    /* gid 5 (tty) is mapped */
	bool sysfs_mounted; /* our own sysfs (not the host's bound) is at /sys */
	bool send_ns_fds;   /* READY carries our user and network namespace fds (pasta) */
	/* As root the owner makes the overlay and the network namespace on a thread
	 * of its own while the child sets up the rest (see host_prep in container.c):
	 * SYNC_ROOTFS comes first (with the detached overlay mount, or without it:
	 * make it here), GO carries the namespace (without it: unshare here). */
	bool owner_rootfs;
	bool owner_netns;

	/* --isolation chroot (chroot.c): no namespaces; rootfs is the
	 * environment's own copy of the image, chroot'ed into. Without cgroups,
	 * memory and pids become per-process rlimits of each command (0: none). */
	bool chroot;
	uint64_t rlimit_data;
	uint64_t rlimit_nproc;
	int proc_fd; /* the host's /proc, kept across the chroot (not in the plan's bytes) */
};

/* Child side, in the exec'd init (see plan.c). Never returns. */
void container_child(const struct sandbox_plan *p) __attribute__((noreturn));
void chroot_child(const struct sandbox_plan *p) __attribute__((noreturn));
/* container.c, for both kinds of init: */
void child_report(int sync_fd, const struct child_err *e) __attribute__((noreturn));
void sandbox_stdio_to_null(void);
void sandbox_raise_nofile_limit(void);
/* The owner's go-ahead (listening ctl.sock, cgroup join fds); returns the
 * network namespace fd it carried, or -1. */
int child_wait_go(struct sandbox_plan *p);
struct strbuf;
#define PLAN_MAX_LOWERS 4096
/* plan.c: the plan as bytes for the init, and back. decode points p's strings,
 * lowers[] (room for max_lowers) and *prog into buf. Returns 0 or -EINVAL. */
void plan_encode(const struct sandbox_plan *p, struct strbuf *out);
int plan_decode(char *buf, size_t len, struct sandbox_plan *p, const char **lowers,
                size_t max_lowers, struct sock_fprog *prog);
extern const char *const sandbox_etc_files[3]; /* "hosts", "resolv.conf", "hostname" */
/* The filesystem, in three steps: before joining the cgroups (overlay, /proc,
 * /dev, /etc files, /logs binds; *rootfd gets the new root), after (/sys, the
 * /sys/fs/cgroup view, pivot_root), and once the owner was told we are ready
 * (Docker's masked and read-only paths). owner_mnt: the overlay as a detached
 * mount made by the owner (taken over), or -1. */
int mounts_setup_early(const struct sandbox_plan *p, int owner_mnt, int *rootfd,
                       struct child_err *e);
/* The root overlay as a detached mount: its fd; -1 on error (e set); -2 when
 * this kernel cannot (no new mount API or "lowerdir+": use mount(2)). */
int overlay_fsmount(const struct sandbox_plan *p, struct child_err *e);
int mounts_setup_late(const struct sandbox_plan *p, int rootfd, struct child_err *e);
int mounts_protect(struct child_err *e);
/* pid 1: serves ctl.sock, reaps, exits when the owner goes away (unless kept). */
void init_run(const struct sandbox_plan *p) __attribute__((noreturn));

/* ---- Control protocol (SOCK_SEQPACKET) ----
 * ctl.sock (host path <env>/ctl.sock, directory 0700) takes one request per
 * connection. The sync socketpair links the owner and the init. */
enum ctl_type {
	CTL_EXEC = 1, /* struct ctl_exec + fds (SCM_RIGHTS), then payload_len bytes of CTL_DATA */
	CTL_DATA,
	CTL_KILL,     /* kill the running exec and everything it started */
	CTL_ROOT,     /* → CTL_ROOTFD carrying an O_PATH fd of the container's root */
	CTL_PING,     /* → CTL_PONG with the init's pid (as seen by the container) */
	CTL_KILL_ALL, /* kill every process but the init → CTL_KILLED (value = how many) */

	CTL_EXIT = 16, /* value = wait status */
	CTL_ERROR,     /* value = errno, text = message */
	CTL_ROOTFD,
	CTL_PONG,
	CTL_KILLED,

	SYNC_GO = 32, /* owner → child: cgroups and ctl.sock ready */
	SYNC_READY,   /* child → owner, with the root fd */
	SYNC_ERROR,   /* child → owner: value = errno, text */
	SYNC_KEEP,    /* owner → init: stay alive when the owner exits */
	SYNC_ROOTFS,  /* owner → child: the overlay as a detached mount (or no fd) */
	SYNC_MAPPED,  /* owner → child before its exec: user namespace ids mapped */
};

struct ctl_msg {
	uint32_t type;
	int32_t value;
	char text[480];
};

#define CTL_MAX_FDS 8
#define CTL_MAX_PAYLOAD (32u << 20)
#define CTL_CHUNK 32768
#define CTL_MAX_GROUPS 64

/* Header of an exec request. fds[0..2] are stdin, stdout, stderr; the others
 * are the per-exec cgroup files, by index (-1 = absent). The payload is
 * ngroups uint32 gids, then NUL-terminated cwd, argv[argc], env[envc]. */
struct ctl_exec {
	uint32_t type;
	uint32_t payload_len;
	uint32_t argc;
	uint32_t envc;
	uint32_t ngroups;
	uint32_t uid;
	uint32_t gid;
	uint32_t freeze_v1; /* freezer.state (FROZEN/THAWED) rather than cgroup.freeze (1/0) */
	int32_t fd_procs_w;
	int32_t fd_procs_r;
	int32_t fd_freeze;
	int32_t fd_kill;
};

/* Sends/receives one message with optional fds. recv returns the byte count
 * (0 on EOF) and stores up to *nfds received fds (CLOEXEC). Allocation free. */
ssize_t ctl_send(int sock, const void *buf, size_t len, const int *fds, int nfds);
ssize_t ctl_recv(int sock, void *buf, size_t len, int *fds, int *nfds);

/* ---- The handle ---- */

/* The sandbox's own handle behind provider.h's (its first member). */
static inline struct sandbox_env *sandbox_env_of(struct environment *e)
{
	return (struct sandbox_env *)e;
}

struct sandbox_env {
	struct environment base; /* first: the handle provider.h hands out */
	enum sandbox_isolation isolation;
	char *name;
	char *dir;       /* <home>/envs/<name> */
	int dir_fd;      /* holds the owner's flock */
	bool owner;      /* started by this process */
	pid_t owner_pid; /* who started it (from the state, informational) */
	unsigned long long owner_start;
	pid_t init_pid;
	unsigned long long init_start; /* start time (clock ticks) from /proc/PID/stat */
	int pidfd;
	int sync_fd;  /* owner only */
	int root_fd;  /* O_PATH fd of the container root, -1 until needed */
	int mntns_fd; /* owner only: the container's mount namespace (see reaper.c) */
	bool rootless;
	bool subids; /* rootless with subordinate id ranges (newuidmap) */
	bool shim;
	struct cg_env cg;
	struct cg_exec *spare_exec; /* an empty per-exec cgroup ready for the next exec */

	char *job_name;
	char *image_ref;
	char *image_id;
	char **image_env;
	char *image_workdir;
	char *image_user;
	char **cfg_env;
	char *cfg_workdir;
	char *network;            /* net_mode_name() */
	struct net_link net_link; /* network "nat": the veth pair (host_if "" otherwise) */
	double created_at;
	bool kept;
	long long storage_limit; /* cfg->storage_bytes (owner only) */
	uint32_t quota_id;       /* its project, 0 = none (owner only; see quota.c) */
	bool storage_hit;        /* the agent phase ended at the limit */

	/* chroot, a build step's environment (owner only): at stop, what changed
	 * since build_since goes to build_upper as the overlay's upper layer would
	 * have held it (rootfs.c). */
	char *build_upper;
	char **build_layers;
	bool build_userxattr;
	struct timespec build_since;
};

/* container.c, shared by both levels' starts */
struct sandbox_env *sandbox_env_new(const struct env_config *cfg, const struct sandbox_image *img,
                                    const char *envs);
/* <envs>/<name>, 0700, locked for the owner's lifetime. */
int sandbox_env_dir_create(struct sandbox_env *env, struct err *err);
pid_t sandbox_clone_init(const struct sandbox_plan *plan, int child_sync, int *pidfd,
                         struct err *err);
/* ops.entry: becomes the init sandbox_clone_init exec'd (never returns then);
 * returns at once in any other process. */
void sandbox_init_entry(void);
int sandbox_listen_ctl(const struct sandbox_env *env, struct err *err);
/* The child's SYNC_READY (want fds) or its error. */
int sandbox_wait_ready(int sync_fd, int *fds, int want, struct err *err);
/* Undoes a failed start. */
void sandbox_start_cleanup(struct sandbox_env *env, pid_t child, int pidfd);
char **strv_dup_or_empty(const char *const *v);

/* sandbox_env.c */
int state_write(const struct sandbox_env *env, struct err *err);
int state_load(const char *dir, struct sandbox_env *env, struct err *err);
unsigned long long proc_start_time(pid_t pid);
/* The init process of env is still the one recorded (pid and start time). */
bool state_init_alive(const struct sandbox_env *env);
/* Kills the init (and so every process), removes cgroups and the directory. */
int sandbox_env_teardown(struct sandbox_env *env, struct err *err);
void sandbox_env_free(struct sandbox_env *env);
/* Opens a ctl.sock connection to the environment's init. */
int sandbox_env_connect(const struct sandbox_env *env, struct err *err);
/* Lazily fetches the container root fd from the init. */
int sandbox_env_root_fd(struct sandbox_env *env, struct err *err);

/* reaper.c: the background teardown of destroyed environments */
/* Renames dir into <home>/trash (out of the way, under a name of this process);
 * returns the new path, or NULL if it could not (remove it in place). */
char *reaper_trash(const char *dir);
/* Closes mntns (if >= 0) and removes path (taken, may be NULL) on the reaper
 * thread, started on first use; the process waits for it at exit. */
void reaper_add(int mntns, char *path);
/* Waits until everything queued so far is done. */
void reaper_drain(void);
/* Removes trash left by rollouts that died before their reaper finished. */
int reaper_gc(void);

/* quota.c: the storage limit as a project quota (docs/SANDBOX.md "Storage") */
/* Whether <home>/envs enforces project quotas (probed once per process);
 * *why says why not. */
bool quota_available(const char **why);
/* Warns (once per process) that storage limits are not enforced, if so. */
void quota_warn_unenforced(void);
/* Gives the new environment (env->dir_fd, still empty) a project limited to
 * cfg->storage_bytes, and the /logs directories on the same filesystem. */
int quota_env_setup(struct sandbox_env *env, const struct env_config *cfg, struct err *err);
/* Clears the limit set by quota_env_setup (a start that failed). */
void quota_env_release(struct sandbox_env *env);
int quota_env_usage(struct sandbox_env *env, struct env_usage *u, struct err *err);
/* Verification starts (the agent's processes are gone): notes whether the
 * agent reached the limit, then gives the verifier the limit again on top of
 * what the agent left, so a full environment cannot keep the tests out. */
int quota_env_verifier_room(struct sandbox_env *env, struct err *err);
/* The limit becomes what the environment uses now plus its storage_mb: at
 * --isolation chroot, after its copy of the image (which the full sandbox's
 * overlay does not count either). */
int quota_env_room_above_usage(struct sandbox_env *env, struct err *err);
/* Teardown: an fd of an environment's directory (dir_fd, else dir opened)
 * when it carries one of our projects, else -1; then, once its processes
 * are gone, clear that project's limit and close the fd. */
int quota_dir_hold(const char *dir, int dir_fd);
/* quota_dir_hold for an environment being torn down. */
int quota_env_hold(const struct sandbox_env *env);
void quota_dir_release(int fd);

/* userns.c */
struct subid_range {
	unsigned long start, count;
};
/* The caller's line in /etc/subuid or /etc/subgid text (by name or by id). */
int subid_parse(const char *text, unsigned long id, const char *name, struct subid_range *out);
/* newuidmap/newgidmap installed and ranges configured for the caller. */
bool userns_subid_ranges(struct subid_range *uids, struct subid_range *gids);
/* Maps pid's user namespace: caller -> 0, plus 1..count -> the subordinate ranges
 * when ranges is set and available; else one id each with setgroups denied. */
int userns_write_maps(pid_t pid, bool ranges, struct err *err);
/* rm -rf from inside a fresh user namespace with the same mapping: for files an
 * environment created with subordinate ids. */
int userns_rm_rf(const char *path, struct err *err);

/* sandbox_exec.c */
/* Makes the per-exec cgroup the next exec will use (none without cgroups). */
void sandbox_env_prepare_exec_cgroup(struct sandbox_env *env);
void sandbox_env_drop_exec_cgroup(struct sandbox_env *env);
int sandbox_exec(struct sandbox_env *env, const struct exec_request *req, struct exec_result *res,
                 struct err *err);

/* boundary.c: see provider.h kill_all and open_verifier_dir */
int sandbox_kill_all(struct sandbox_env *env, struct err *err);
int sandbox_open_verifier_dir(struct sandbox_env *env, struct err *err);

/* users.c: resolve "uid", "uid:gid", "name", "name:group" through the root fd. */
struct sandbox_user {
	uid_t uid;
	gid_t gid;
	gid_t groups[CTL_MAX_GROUPS];
	int ngroups;
	char home[256];
};
int users_resolve(int root_fd, const char *spec, struct sandbox_user *u, struct err *err);
/* Pure parsers over file text (unit-tested). */
int users_lookup_passwd(const char *passwd, const char *name, uid_t uid, bool by_name,
                        struct sandbox_user *u);
int users_lookup_group(const char *group, const char *name, gid_t *gid);
int users_supplementary(const char *group, const char *user, gid_t primary, struct sandbox_user *u);

/* copy.c: host ↔ environment, every container path resolved inside the root. */
int copy_upload(int root_fd, int host_fd, const char *env_path, unsigned flags, struct err *err);
struct cdir;
int copy_download(int root_fd, const char *env_path, const struct cdir *dest, const char *dest_rel,
                  const struct copy_limits *lim, struct copy_report *rep, struct err *err);
/* mkdir -p of a container path, inside the root. */
int root_mkdir_p(int root_fd, const char *env_path, mode_t mode, struct err *err);
/* A container path's directory (made, with missing parents, when create),
 * resolved inside the root: an O_RDONLY fd for *at() calls. */
int root_dir_open(int root_fd, const char *env_path, bool create, mode_t mode, struct err *err);

#endif
