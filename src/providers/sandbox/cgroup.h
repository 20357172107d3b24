/* cgroups for sandbox environments: v1 (legacy and "hybrid") and v2 (unified).
 * One cgroup per environment below our own, limits written before the container
 * starts, a child cgroup per exec so a timeout can kill everything it started. */
#ifndef ROLLOUT_SANDBOX_CGROUP_H
#define ROLLOUT_SANDBOX_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct err;

enum cg_mode { CG_NONE = 0, CG_V1, CG_V2 };

#define CG_MAX 8

/* One hierarchy (v1) or the unified tree (v2) as this process sees it. */
struct cg_hier {
	char *controllers; /* v1: "memory", "cpu,cpuacct"; v2: "" */
	char *mount;       /* where it is mounted */
	char *own;         /* absolute directory of our own cgroup in it */
};

struct cg_host {
	enum cg_mode mode;
	bool hybrid; /* v1 hierarchies plus a cgroup2 mount (controllers there are ignored) */
	int n;
	struct cg_hier h[CG_MAX];
	const char *why_none; /* reason when mode is CG_NONE */
};

/* The cgroup(s) of one environment. */
struct cg_env {
	enum cg_mode mode;
	int n;
	char *ctrl[CG_MAX]; /* v1 controllers of each directory; v2: "" */
	char *path[CG_MAX]; /* absolute host directories */
	int exec_idx;       /* directory under which per-exec cgroups are made */
	int mem_idx;        /* memory directory, or -1 */
};

struct cg_limits {
	double cpus;           /* 0 = none */
	long long memory;      /* bytes, 0 = none */
	long pids;             /* 0 = none */
	bool restrict_devices; /* v1: Docker's device allow-list (mknod of others denied) */
};

/* A per-exec child cgroup and the fds the environment's init uses on it. */
struct cg_exec {
	char *path;
	int procs_w; /* the command writes "0" here to join */
	int procs_r; /* read to find its processes (v1, v2 without cgroup.kill) */
	int freeze;  /* v1 freezer.state or v2 cgroup.freeze, -1 if none */
	int kill;    /* v2 cgroup.kill, -1 if none */
	bool v1;
};

/* Detects the layout once per process (thread safe). Never fails: without usable
 * cgroups the mode is CG_NONE and why_none says why. */
const struct cg_host *cg_host_get(void);

int cg_env_create(const char *leaf, const struct cg_limits *lim, struct cg_env *env,
                  struct err *err);
/* Opens the join file of every directory (O_WRONLY) for the container to join:
 * cgroup.procs on v2, tasks on v1 (see join_file in cgroup.c). */
int cg_env_open_procs(const struct cg_env *env, int fds[CG_MAX], struct err *err);
/* Removes the directories (children first); processes must be gone already,
 * stragglers are killed. Missing directories are fine. */
int cg_env_destroy(const struct cg_env *env, struct err *err);
void cg_env_free(struct cg_env *env);
/* v1: thaws the per-exec cgroups; a frozen process cannot die (an init killed
 * between freezing and thawing an exec's cgroup would never exit). */
void cg_env_thaw(const struct cg_env *env);
/* Number of OOM kills so far in the environment, -1 when unknown. */
long long cg_env_oom_kills(const struct cg_env *env);

int cg_exec_create(const struct cg_env *env, const char *leaf, struct cg_exec *ex, struct err *err);
/* Closes the fds and removes the directory when it is empty. */
void cg_exec_finish(struct cg_exec *ex);

/* ---- File formats (pure functions, unit-tested) ---- */

/* statfs magics → mode: root is the f_type of /sys/fs/cgroup, unified that of
 * /sys/fs/cgroup/unified (0 when absent). */
enum cg_mode cg_mode_from_fs(unsigned long root_type, unsigned long unified_type, bool *hybrid);
/* From /proc/self/cgroup text: the path of the v1 hierarchy whose controller set
 * equals `controllers` (any order), or of the v2 line when controllers is "".
 * Heap string or NULL. */
char *cg_proc_self_path(const char *text, const char *controllers);
/* One cgroup mount from /proc/self/mountinfo. */
struct cg_mount {
	bool v2;
	char *mountpoint;
	char *root;        /* root of the mount inside the hierarchy */
	char *controllers; /* v1 only, comma separated, canonical order as in the options */
};
/* Parses every cgroup/cgroup2 mount; returns the count (≤ max). */
int cg_parse_mountinfo(const char *text, struct cg_mount *out, int max);
void cg_mount_free(struct cg_mount *m);
/* Value of `key` in "key value" lines (memory.events, memory.oom_control,
 * cgroup.events); -1 when absent. */
long long cg_keyed_value(const char *text, const char *key);
/* Space separated list (cgroup.controllers, cgroup.subtree_control) contains name. */
bool cg_list_has(const char *list, const char *name);
/* Comma separated controller set contains name ("cpu,cpuacct" has "cpu"). */
bool cg_has_controller(const char *set, const char *name);
/* Comma separated controller set equality ("cpuacct,cpu" == "cpu,cpuacct"). */
bool cg_same_controllers(const char *a, const char *b);
/* v2 cpu.max for a CPU count with the default period: "150000 100000", "max 100000". */
void cg_format_cpu_max(double cpus, char *buf, size_t n);
/* v1 cpu.cfs_quota_us for the default period (100000 µs); -1 = unlimited. */
long long cg_cpu_quota(double cpus);
/* The limit files to write in one cgroup directory, in order: v2 memory.max,
 * memory.swap.max, cpu.max, pids.max; v1 per hierarchy (controllers) memory,
 * memsw, cfs quota, pids, the devices allow-list. Returns the count (≤ max). */
struct cg_write {
	const char *file;
	char value[64];
	bool optional; /* absent on some kernels (memsw without swap accounting) */
};
int cg_limit_writes(enum cg_mode mode, const char *controllers, const struct cg_limits *lim,
                    struct cg_write *out, int max);
/* v2: "+memory +pids +cpu" minus what is enabled already or not available, for
 * cgroup.subtree_control. Returns how many. */
int cg_v2_controllers_to_enable(const char *available, const char *enabled, char *out, size_t n);
/* v2: the leaf our cgroup's processes move into when it must hand controllers
 * to the environments' cgroups (a cgroup with processes cannot). */
#define CG_V2_LEAF "rollout.supervisor"
/* v2: the cgroup environments are made in, for a process in `dir` (an absolute
 * directory, changed in place): a rollout started from an earlier one's leaf
 * uses the leaf's parent, which already hands out the controllers, rather than
 * nesting a new leaf per run. */
void cg_v2_own_base(char *dir);
/* Parses cgroup.procs; returns the count (≤ max). */
int cg_parse_pids(const char *text, pid_t *out, int max);

#endif
