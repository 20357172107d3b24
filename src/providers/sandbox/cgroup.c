/* cgroups for sandbox environments: layout detection (v1, hybrid, v2), one cgroup
 * per environment nested under our own, limits, per-exec child cgroups, OOM
 * counters, teardown. The text formats are parsed by pure functions (unit-tested). */
#include "providers/sandbox/cgroup.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#define CGROUP2_MAGIC 0x63677270UL
#define TMPFS_MAGIC_ 0x01021994UL
#define CPU_PERIOD_US 100000LL

static const char *const v1_known[] = {
    "cpuset",  "cpu",        "cpuacct",  "blkio",   "memory", "devices", "freezer",
    "net_cls", "perf_event", "net_prio", "hugetlb", "pids",   "rdma",    "misc",
};
/* v1 hierarchies an environment gets a directory in. */
static const char *const v1_wanted[] = {"cpu", "memory", "pids", "freezer", "devices"};

/* Docker's device allow-list; everything else (including mknod) is denied. */
static const char *const v1_device_allow[] = {
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",   "c 1:9 rwm",
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm",
};

/* ---- File formats ---- */

enum cg_mode cg_mode_from_fs(unsigned long root_type, unsigned long unified_type, bool *hybrid)
{
	*hybrid = false;
	if (root_type == CGROUP2_MAGIC)
		return CG_V2;
	if (root_type == TMPFS_MAGIC_) {
		*hybrid = unified_type == CGROUP2_MAGIC;
		return CG_V1;
	}
	return CG_NONE;
}

static bool ctrl_in_set(const char *set, const char *name, size_t len)
{
	const char *p = set;

	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == len && strncmp(p, name, n) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

bool cg_has_controller(const char *set, const char *name)
{
	return ctrl_in_set(set, name, strlen(name));
}

static bool set_subset(const char *a, const char *b)
{
	const char *p = a;

	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n && !ctrl_in_set(b, p, n))
			return false;
		p += n;
		if (*p == ',')
			p++;
	}
	return true;
}

bool cg_same_controllers(const char *a, const char *b)
{
	return set_subset(a, b) && set_subset(b, a);
}

char *cg_proc_self_path(const char *text, const char *controllers)
{
	const char *line = text;

	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		_cleanup_free_ char *l = xstrndup(line, len);
		char *c1 = strchr(l, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		line = eol ? eol + 1 : NULL;
		if (!c2)
			continue;
		*c1 = *c2 = '\0';
		if (*controllers == '\0') {
			if (strcmp(l, "0") == 0 && c1[1] == '\0')
				return xstrdup(c2 + 1);
		} else if (c1[1] && cg_same_controllers(c1 + 1, controllers)) {
			return xstrdup(c2 + 1);
		}
	}
	return NULL;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *unescape_octal(const char *s, size_t n)
{
	char *out = xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '7' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			*o++ =
			    (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* Splits a line into whitespace separated fields (pointers into l, modified). */
static int split_fields(char *l, char **f, int max)
{
	int n = 0;

	while (*l && n < max) {
		while (*l == ' ')
			l++;
		if (!*l)
			break;
		f[n++] = l;
		while (*l && *l != ' ')
			l++;
		if (*l)
			*l++ = '\0';
	}
	return n;
}

static bool is_v1_controller(const char *s, size_t n)
{
	if (n > 5 && strncmp(s, "name=", 5) == 0)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(v1_known); i++)
		if (strlen(v1_known[i]) == n && strncmp(v1_known[i], s, n) == 0)
			return true;
	return false;
}

int cg_parse_mountinfo(const char *text, struct cg_mount *out, int max)
{
	const char *line = text;
	int count = 0;

	while (line && *line && count < max) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		_cleanup_free_ char *l = xstrndup(line, len);
		char *f[64];
		int nf = split_fields(l, f, 64), sep = -1;

		line = eol ? eol + 1 : NULL;
		for (int i = 6; i < nf; i++)
			if (strcmp(f[i], "-") == 0) {
				sep = i;
				break;
			}
		if (sep < 0 || sep + 3 >= nf)
			continue;
		bool v2 = strcmp(f[sep + 1], "cgroup2") == 0;

		if (!v2 && strcmp(f[sep + 1], "cgroup") != 0)
			continue;
		struct cg_mount *m = &out[count];
		struct strbuf ctrls = STRBUF_INIT;

		memset(m, 0, sizeof(*m));
		m->v2 = v2;
		m->root = unescape_octal(f[3], strlen(f[3]));
		m->mountpoint = unescape_octal(f[4], strlen(f[4]));
		if (!v2) {
			const char *p = f[sep + 3];

			while (*p) {
				const char *e = strchr(p, ',');
				size_t n = e ? (size_t)(e - p) : strlen(p);

				if (is_v1_controller(p, n)) {
					if (ctrls.len)
						sb_addc(&ctrls, ',');
					sb_add(&ctrls, p, n);
				}
				p += n;
				if (*p == ',')
					p++;
			}
		}
		m->controllers = sb_detach(&ctrls);
		count++;
	}
	return count;
}

void cg_mount_free(struct cg_mount *m)
{
	free(m->mountpoint);
	free(m->root);
	free(m->controllers);
	memset(m, 0, sizeof(*m));
}

long long cg_keyed_value(const char *text, const char *key)
{
	size_t kl = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
			return strtoll(p + kl + 1, NULL, 10);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

bool cg_list_has(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while (*p) {
		while (*p && isspace((unsigned char)*p))
			p++;
		const char *s = p;

		while (*p && !isspace((unsigned char)*p))
			p++;
		if ((size_t)(p - s) == n && strncmp(s, name, n) == 0)
			return true;
	}
	return false;
}

long long cg_cpu_quota(double cpus)
{
	long long q;

	if (!(cpus > 0))
		return -1;
	q = llround(cpus * (double)CPU_PERIOD_US);
	return q < 1000 ? 1000 : q;
}

void cg_format_cpu_max(double cpus, char *buf, size_t n)
{
	long long q = cg_cpu_quota(cpus);

	if (q < 0)
		snprintf(buf, n, "max %lld", CPU_PERIOD_US);
	else
		snprintf(buf, n, "%lld %lld", q, CPU_PERIOD_US);
}

int cg_parse_pids(const char *text, pid_t *out, int max)
{
	int n = 0;
	const char *p = text;

	while (*p && n < max) {
		char *end;
		long v;

		while (*p && !isdigit((unsigned char)*p))
			p++;
		if (!*p)
			break;
		v = strtol(p, &end, 10);
		if (v > 0)
			out[n++] = (pid_t)v;
		p = end;
	}
	return n;
}

/* ---- Host layout ---- */

static struct cg_host host;
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static char *join_own(const char *mountpoint, const char *root, const char *own)
{
	size_t rl = strlen(root);

	if (strcmp(root, "/") == 0)
		return strcmp(own, "/") == 0 ? xstrdup(mountpoint) : path_join(mountpoint, own);
	if (strncmp(own, root, rl) != 0 || (own[rl] != '/' && own[rl] != '\0'))
		return NULL;
	return own[rl] ? path_join(mountpoint, own + rl) : xstrdup(mountpoint);
}

static bool wanted_v1(const char *controllers)
{
	for (size_t i = 0; i < ARRAY_SIZE(v1_wanted); i++)
		if (ctrl_in_set(controllers, v1_wanted[i], strlen(v1_wanted[i])))
			return true;
	return false;
}

static void host_detect(void)
{
	struct statfs root, uni;
	_cleanup_free_ char *self = NULL, *mi = NULL;
	struct cg_mount mounts[64];
	size_t len;
	int nm;

	host.mode = CG_NONE;
	if (statfs("/sys/fs/cgroup", &root) < 0) {
		host.why_none = "/sys/fs/cgroup is not mounted";
		return;
	}
	if (statfs("/sys/fs/cgroup/unified", &uni) < 0)
		uni.f_type = 0;
	host.mode =
	    cg_mode_from_fs((unsigned long)root.f_type, (unsigned long)uni.f_type, &host.hybrid);
	if (host.mode == CG_NONE) {
		host.why_none = "no cgroup filesystem at /sys/fs/cgroup";
		return;
	}
	if (read_file("/proc/self/cgroup", 1 << 20, &self, &len, NULL) < 0 ||
	    read_file("/proc/self/mountinfo", 4 << 20, &mi, &len, NULL) < 0) {
		host.mode = CG_NONE;
		host.why_none = "cannot read /proc/self/cgroup or mountinfo";
		return;
	}
	nm = cg_parse_mountinfo(mi, mounts, 64);
	for (int i = 0; i < nm; i++) {
		struct cg_mount *m = &mounts[i];
		_cleanup_free_ char *own = NULL;
		char *dir;
		bool dup = false;

		if (host.n >= CG_MAX || m->v2 != (host.mode == CG_V2))
			continue;
		if (!m->v2 && !wanted_v1(m->controllers))
			continue;
		for (int j = 0; j < host.n; j++)
			dup |= cg_same_controllers(host.h[j].controllers, m->controllers);
		if (dup)
			continue;
		own = cg_proc_self_path(self, m->v2 ? "" : m->controllers);
		if (!own || !(dir = join_own(m->mountpoint, m->root, own)))
			continue;
		if (m->v2)
			cg_v2_own_base(dir);
		host.h[host.n].controllers = xstrdup(m->controllers);
		host.h[host.n].mount = xstrdup(m->mountpoint);
		host.h[host.n].own = dir;
		host.n++;
	}
	for (int i = 0; i < nm; i++)
		cg_mount_free(&mounts[i]);
	if (host.n == 0) {
		host.mode = CG_NONE;
		host.why_none = "no usable cgroup hierarchy found";
		return;
	}
	if (host.mode == CG_V1 && geteuid() != 0) {
		host.mode = CG_NONE;
		host.why_none = "cgroup v1 cannot be delegated to an unprivileged user";
		return;
	}
	for (int i = 0; i < host.n; i++)
		if (access(host.h[i].own, W_OK) < 0) {
			host.mode = CG_NONE;
			host.why_none = "our cgroup is not writable (not delegated)";
			return;
		}
}

const struct cg_host *cg_host_get(void)
{
	pthread_once(&host_once, host_detect);
	return &host;
}

/* ---- Environment cgroups ---- */

static int cg_write(const char *dir, const char *file, const char *val, struct err *err)
{
	char path[4096];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, "open %s", path);
	if (write(fd, val, strlen(val)) < 0)
		rc = err_sys(err, "write '%s' to %s", val, path);
	close(fd);
	return rc;
}

int cg_limit_writes(enum cg_mode mode, const char *controllers, const struct cg_limits *lim,
                    struct cg_write *out, int max)
{
	int n = 0;

#define ADD(f, opt, ...)                                                                           \
	do {                                                                                       \
		if (n < max) {                                                                     \
			out[n].file = (f);                                                         \
			out[n].optional = (opt);                                                   \
			snprintf(out[n].value, sizeof(out[n].value), __VA_ARGS__);                 \
			n++;                                                                       \
		}                                                                                  \
	} while (0)
	if (mode == CG_V2) {
		if (lim->memory > 0) {
			ADD("memory.max", false, "%lld", lim->memory);
			ADD("memory.swap.max", true, "0");
		}
		if (lim->cpus > 0) {
			char v[64];

			cg_format_cpu_max(lim->cpus, v, sizeof(v));
			ADD("cpu.max", false, "%s", v);
		}
		if (lim->pids > 0)
			ADD("pids.max", false, "%ld", lim->pids);
		return n;
	}
	if (ctrl_in_set(controllers, "memory", 6) && lim->memory > 0) {
		ADD("memory.limit_in_bytes", false, "%lld", lim->memory);
		/* No swap beyond the limit (the file exists only with swap accounting);
		 * it must not be below the limit, so it comes second. */
		ADD("memory.memsw.limit_in_bytes", true, "%lld", lim->memory);
	}
	if (ctrl_in_set(controllers, "cpu", 3) && lim->cpus > 0)
		ADD("cpu.cfs_quota_us", false, "%lld", cg_cpu_quota(lim->cpus));
	if (ctrl_in_set(controllers, "pids", 4) && lim->pids > 0)
		ADD("pids.max", false, "%ld", lim->pids);
	if (ctrl_in_set(controllers, "devices", 7) && lim->restrict_devices) {
		ADD("devices.deny", false, "a");
		for (size_t i = 0; i < ARRAY_SIZE(v1_device_allow); i++)
			ADD("devices.allow", false, "%s", v1_device_allow[i]);
	}
#undef ADD
	return n;
}

static int apply_limits(const char *dir, enum cg_mode mode, const char *controllers,
                        const struct cg_limits *lim, struct err *err)
{
	struct cg_write w[32];
	int n = cg_limit_writes(mode, controllers, lim, w, 32);

	for (int i = 0; i < n; i++)
		if (cg_write(dir, w[i].file, w[i].value, w[i].optional ? NULL : err) < 0 &&
		    !w[i].optional)
			return -1;
	return 0;
}

int cg_v2_controllers_to_enable(const char *available, const char *enabled, char *out, size_t n)
{
	static const char *const want[] = {"memory", "pids", "cpu"};
	size_t len = 0;
	int count = 0;

	out[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		if (!cg_list_has(available, want[i]) || cg_list_has(enabled, want[i]))
			continue;
		len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s+%s", count ? " " : "",
		                        want[i]);
		count++;
	}
	return count;
}

void cg_v2_own_base(char *dir)
{
	size_t n = strlen(dir), l = strlen("/" CG_V2_LEAF);

	if (n > l && strcmp(dir + n - l, "/" CG_V2_LEAF) == 0)
		dir[n - l] = '\0';
}

/* Moves every process of `own` into the leaf: ours, and any other there (the
 * shell that started us, the other processes of a service). They stay in our
 * subtree, under the same limits. A process forked meanwhile by one not yet
 * moved is moved on the next round. */
static int v2_empty_into_leaf(const char *own, const char *leaf, struct err *err)
{
	_cleanup_free_ char *procs = path_join(own, "cgroup.procs");
	_cleanup_free_ char *dst = path_join(leaf, "cgroup.procs");
	_cleanup_close_ int fd = open(dst, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return err_sys(err, "open %s", dst);
	for (int round = 0; round < 100; round++) {
		_cleanup_free_ char *text = NULL;
		pid_t pids[1024];
		size_t len;
		int n;

		if (read_file(procs, 1 << 20, &text, &len, err) < 0)
			return -1;
		n = cg_parse_pids(text, pids, 1024);
		if (n == 0)
			return 0;
		for (int i = 0; i < n; i++) {
			char pid[24];

			snprintf(pid, sizeof(pid), "%d", (int)pids[i]);
			/* ESRCH: it exited meanwhile. */
			if (write(fd, pid, strlen(pid)) < 0 && errno != ESRCH)
				return err_sys(err, "move process %s into %s", pid, leaf);
		}
	}
	return err_set(err, EBUSY, "%s: processes keep appearing in it", own);
}

/* v2: the controllers we limit must be enabled in our own cgroup's
 * subtree_control. A cgroup with processes cannot delegate ("no internal
 * processes"): on EBUSY its processes, ours included, first move into the
 * rollout.supervisor leaf (see cg_v2_own_base for the next rollout started
 * there). */
static int v2_enable_controllers(const char *own, struct err *err)
{
	_cleanup_free_ char *avail = NULL, *enabled = NULL;
	_cleanup_free_ char *ctl = path_join(own, "cgroup.controllers");
	_cleanup_free_ char *sub = path_join(own, "cgroup.subtree_control");
	_cleanup_free_ char *leaf = path_join(own, CG_V2_LEAF);
	char todo[128];
	size_t len;

	if (read_file(ctl, 65536, &avail, &len, err) < 0 ||
	    read_file(sub, 65536, &enabled, &len, err) < 0)
		return -1;
	if (cg_v2_controllers_to_enable(avail, enabled, todo, sizeof(todo)) == 0)
		return 0;
	for (int attempt = 0; attempt < 10; attempt++) {
		if (cg_write(own, "cgroup.subtree_control", todo, NULL) == 0)
			return 0;
		if (errno != EBUSY)
			return err_sys(err, "write '%s' to %s", todo, sub);
		if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
			return err_sys(err, "mkdir %s", leaf);
		if (v2_empty_into_leaf(own, leaf, err) < 0)
			return -1;
	}
	return err_set(err, EBUSY, "write '%s' to %s: processes keep appearing in it", todo, sub);
}

static int remove_tree(const char *dir, bool kill, struct err *err);

static int make_dir(const char *path, struct err *err)
{
	if (mkdir(path, 0755) == 0)
		return 0;
	/* A leftover of the same name (from a killed run, exec cgroups included) is
	 * reused only if no process is left in it. */
	if (errno == EEXIST && remove_tree(path, false, NULL) == 0 && mkdir(path, 0755) == 0)
		return 0;
	return err_sys(err, "mkdir %s", path);
}

int cg_env_create(const char *leaf, const struct cg_limits *lim, struct cg_env *env,
                  struct err *err)
{
	const struct cg_host *h = cg_host_get();

	memset(env, 0, sizeof(*env));
	env->mem_idx = -1;
	env->mode = h->mode;
	if (h->mode == CG_NONE)
		return 0;
	if (h->mode == CG_V2) {
		char *dir;

		if (v2_enable_controllers(h->h[0].own, err) < 0)
			goto fail;
		dir = path_join(h->h[0].own, leaf);
		env->ctrl[0] = xstrdup("");
		env->path[0] = dir;
		env->n = 1;
		env->mem_idx = 0;
		if (make_dir(dir, err) < 0) {
			free(env->path[0]);
			env->path[0] = NULL;
			env->n = 0;
			goto fail;
		}
		if (apply_limits(dir, CG_V2, "", lim, err) < 0)
			goto fail;
		return 0;
	}
	env->exec_idx = -1;
	for (int i = 0; i < h->n; i++) {
		char *dir = path_join(h->h[i].own, leaf);

		if (make_dir(dir, err) < 0) {
			free(dir);
			goto fail;
		}
		env->ctrl[env->n] = xstrdup(h->h[i].controllers);
		env->path[env->n] = dir;
		if (ctrl_in_set(h->h[i].controllers, "memory", 6))
			env->mem_idx = env->n;
		if (ctrl_in_set(h->h[i].controllers, "freezer", 7))
			env->exec_idx = env->n;
		env->n++;
		if (apply_limits(dir, CG_V1, h->h[i].controllers, lim, err) < 0)
			goto fail;
	}
	if (env->exec_idx < 0)
		for (int i = 0; i < env->n; i++)
			if (ctrl_in_set(env->ctrl[i], "pids", 4))
				env->exec_idx = i;
	if (env->exec_idx < 0)
		env->exec_idx = 0;
	return 0;
fail:
	err_wrap(err, "cgroup");
	cg_env_destroy(env, NULL);
	cg_env_free(env);
	return -1;
}

/* The file a process writes "0" to in order to join a cgroup. On v1 it is
 * "tasks", which moves the writing thread only: every writer here is a
 * single-threaded process (the environment's init right after clone, a command
 * between fork and exec), so that moves the whole process, and it does not take
 * the kernel's threadgroup lock, whose write side waits for an RCU grace period:
 * 6-16 ms per join through cgroup.procs on this VM's 6.18 kernel, 0.03 ms through
 * tasks. v2 has no such file for domain cgroups. */
static const char *join_file(enum cg_mode mode)
{
	return mode == CG_V1 ? "tasks" : "cgroup.procs";
}

int cg_env_open_procs(const struct cg_env *env, int fds[CG_MAX], struct err *err)
{
	for (int i = 0; i < CG_MAX; i++)
		fds[i] = -1;
	for (int i = 0; i < env->n; i++) {
		_cleanup_free_ char *p = path_join(env->path[i], join_file(env->mode));

		fds[i] = open(p, O_WRONLY | O_CLOEXEC);
		if (fds[i] < 0) {
			int e = errno;

			for (int j = 0; j < i; j++)
				close(fds[j]);
			errno = e;
			return err_sys(err, "open %s", p);
		}
	}
	return 0;
}

/* SIGKILL whatever is still listed in dir/cgroup.procs; returns how many. */
static int kill_listed(const char *dir)
{
	_cleanup_free_ char *p = path_join(dir, "cgroup.procs"), *text = NULL;
	pid_t pids[1024];
	size_t len;
	int n;

	if (read_file(p, 1 << 20, &text, &len, NULL) < 0)
		return 0;
	n = cg_parse_pids(text, pids, 1024);
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	return n;
}

/* rmdir with retries: EBUSY means processes are still exiting. */
static int remove_dir(const char *dir, struct err *err)
{
	for (int attempt = 0; attempt < 500; attempt++) {
		struct timespec ts = {0, 2 * 1000 * 1000};

		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return err_sys(err, "rmdir %s", dir);
		kill_listed(dir);
		nanosleep(&ts, NULL);
	}
	return err_sys(err, "rmdir %s", dir);
}

/* Removes dir and the cgroups below it, deepest first. kill: kills what is listed
 * in them and retries while processes exit; otherwise a cgroup with a process in it
 * stops the removal (rmdir refuses it). */
static int remove_tree(const char *dir, bool kill, struct err *err)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : err_sys(err, "opendir %s", dir);
	while ((de = readdir(d))) {
		_cleanup_free_ char *child = NULL;

		if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		child = path_join(dir, de->d_name);
		if (remove_tree(child, kill, err) < 0)
			rc = -1;
	}
	if (kill) {
		if (remove_dir(dir, err) < 0)
			rc = -1;
	} else if (rmdir(dir) < 0 && errno != ENOENT) {
		rc = err_sys(err, "rmdir %s", dir);
	}
	return rc;
}

int cg_env_destroy(const struct cg_env *env, struct err *err)
{
	int rc = 0;

	/* Only the directory of per-exec cgroups has children. */
	for (int i = 0; i < env->n; i++)
		if ((i == env->exec_idx ? remove_tree(env->path[i], true, err)
		                        : remove_dir(env->path[i], err)) < 0)
			rc = -1;
	return rc;
}

void cg_env_thaw(const struct cg_env *env)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;

	if (env->mode != CG_V1 || env->n == 0 ||
	    !ctrl_in_set(env->ctrl[env->exec_idx], "freezer", 7))
		return;
	d = opendir(env->path[env->exec_idx]);
	while (d && (de = readdir(d))) {
		_cleanup_free_ char *child = NULL;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		child = path_join(env->path[env->exec_idx], de->d_name);
		cg_write(child, "freezer.state", "THAWED", NULL);
	}
}

void cg_env_free(struct cg_env *env)
{
	for (int i = 0; i < env->n; i++) {
		free(env->ctrl[i]);
		free(env->path[i]);
	}
	memset(env, 0, sizeof(*env));
	env->mem_idx = -1;
}

long long cg_env_oom_kills(const struct cg_env *env)
{
	_cleanup_free_ char *p = NULL, *text = NULL;
	size_t len;

	if (env->mode == CG_NONE || env->mem_idx < 0)
		return -1;
	p = path_join(env->path[env->mem_idx],
	              env->mode == CG_V1 ? "memory.oom_control" : "memory.events");
	if (read_file(p, 65536, &text, &len, NULL) < 0)
		return -1;
	return cg_keyed_value(text, "oom_kill");
}

/* ---- Per-exec cgroups ---- */

static int open_in(const char *dir, const char *file, int flags)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return open(path, flags | O_CLOEXEC);
}

int cg_exec_create(const struct cg_env *env, const char *leaf, struct cg_exec *ex, struct err *err)
{
	memset(ex, 0, sizeof(*ex));
	ex->procs_w = ex->procs_r = ex->freeze = ex->kill = -1;
	ex->v1 = env->mode == CG_V1;
	ex->path = path_join(env->path[env->exec_idx], leaf);
	if (mkdir(ex->path, 0755) < 0) {
		int e = errno;

		err_sys(err, "mkdir %s", ex->path);
		free(ex->path);
		ex->path = NULL;
		errno = e;
		return -1;
	}
	ex->procs_w = open_in(ex->path, join_file(env->mode), O_WRONLY);
	ex->procs_r = open_in(ex->path, "cgroup.procs", O_RDONLY);
	if (ex->v1) {
		if (ctrl_in_set(env->ctrl[env->exec_idx], "freezer", 7))
			ex->freeze = open_in(ex->path, "freezer.state", O_RDWR);
	} else {
		ex->kill = open_in(ex->path, "cgroup.kill", O_WRONLY);
		if (ex->kill < 0)
			ex->freeze = open_in(ex->path, "cgroup.freeze", O_RDWR);
	}
	if (ex->procs_w < 0 || ex->procs_r < 0) {
		err_sys(err, "open %s/%s", ex->path,
		        ex->procs_w < 0 ? join_file(env->mode) : "cgroup.procs");
		cg_exec_finish(ex);
		return -1;
	}
	return 0;
}

void cg_exec_finish(struct cg_exec *ex)
{
	int *fds[] = {&ex->procs_w, &ex->procs_r, &ex->freeze, &ex->kill};

	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
	if (ex->path) {
		/* Still busy: a background process outlived its command. It stays until
		 * the environment is destroyed. */
		rmdir(ex->path);
		free(ex->path);
		ex->path = NULL;
	}
}
