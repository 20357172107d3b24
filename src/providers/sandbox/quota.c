/* The storage limit (env_config.storage_bytes) as a project quota. Each
 * environment gets a project ID of its own, set with the inherit flag on its
 * directory <home>/envs/<name>/ before anything is created in it (so the
 * overlay's upper and work directories, and everything copied up or written
 * there, carry it) and on the trial's /logs directories when they are on the
 * same filesystem; the project has a block and an inode hard limit. A write
 * beyond it fails with EDQUOT inside the environment (its processes lack
 * CAP_SYS_RESOURCE, which would let them pass; seccomp keeps them from
 * changing the ID of their files: security.c).
 *
 * It needs root and a filesystem under <home>/envs that enforces project
 * quotas: ext4 with the quota and project features mounted prjquota, or XFS
 * mounted pquota. That is probed once per process; elsewhere the limit is not
 * enforced and a job says so once.
 *
 * The ID is the directory's own attribute: whoever removes an environment
 * (its owner, `rollout env rm`, gc, the trash reaper) reads it back from the
 * directory and clears the limit. An ID is only handed out when nothing on
 * the filesystem carries it (no inode charged, no limit), under a lock shared
 * by every rollout using this home, so a trial's log files, which keep their
 * ID, also keep it from being reused while they exist. */
#include "providers/sandbox/sandbox.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/dqblk_xfs.h>
#include <linux/fs.h>
#include <linux/quota.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_quotactl_fd
#define SYS_quotactl_fd 443 /* the same on every architecture (Linux 5.14) */
#endif

/* rollout's project IDs: well above the small numbers administrators give
 * their own projects, below 2^31 for tools that read them as signed. */
#define QUOTA_ID_MIN 0x40000000u
#define QUOTA_ID_COUNT 0x3fff0000u
/* The inode limit: one per 4 KiB of the block limit (mkfs.ext4's ratio for
 * small filesystems), at least 4096. */
#define QUOTA_BYTES_PER_INODE 4096
#define QUOTA_MIN_INODES 4096
#define QUOTA_LOCK ".quota.lock"
#define QUOTA_ALLOC_TRIES 64

static struct {
	bool ok;
	dev_t dev;
	char why[300];
} host;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

/* quotactl on the filesystem of fd: no block device path to look up. */
static int quotactl_at(int fd, int cmd, uint32_t id, void *addr)
{
	/* Unsigned: Q_XGETQSTATV (0x800008) shifted by QCMD overflows an int. */
	return (int)syscall(SYS_quotactl_fd, fd, QCMD((unsigned)cmd, PRJQUOTA), id, addr);
}

static void probe(void)
{
	_cleanup_free_ char *envs = sandbox_envs_dir();
	_cleanup_close_ int fd = -1;
	struct fs_quota_statv st = {.qs_version = FS_QSTATV_VERSION1};
	struct stat sb;

	if (geteuid() != 0) {
		snprintf(host.why, sizeof(host.why), "setting a quota needs root");
		return;
	}
	/* On a kernel without quotactl_fd a bad fd still says ENOSYS. */
	if (quotactl_at(-1, Q_GETINFO, 0, NULL) < 0 && errno == ENOSYS) {
		snprintf(host.why, sizeof(host.why), "this kernel has no quotactl_fd (Linux 5.14)");
		return;
	}
	if (mkdir_p(envs, 0700, NULL) < 0 ||
	    (fd = open(envs, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fstat(fd, &sb) < 0) {
		snprintf(host.why, sizeof(host.why), "%s: %s", envs, strerror(errno));
		return;
	}
	if (quotactl_at(fd, Q_XGETQSTATV, 0, &st) < 0) {
		snprintf(host.why, sizeof(host.why), "%s on the filesystem of %s (%s)",
		         errno == ESRCH ? "project quotas are off" : "no project quotas", envs,
		         strerror(errno));
		return;
	}
	if (!(st.qs_flags & FS_QUOTA_PDQ_ENFD)) {
		snprintf(
		    host.why, sizeof(host.why), "project quotas are %s on the filesystem of %s",
		    st.qs_flags & FS_QUOTA_PDQ_ACCT ? "counted but not enforced" : "off", envs);
		return;
	}
	host.ok = true;
	host.dev = sb.st_dev;
}

bool quota_available(const char **why)
{
	pthread_once(&probe_once, probe);
	if (why)
		*why = host.why;
	return host.ok;
}

void quota_warn_unenforced(void)
{
	const char *why;

	if (quota_available(&why))
		return;
	log_warn_once("sandbox-storage",
	              "sandbox: storage_mb is not enforced: %s. To enforce it, put "
	              "$ROLLOUT_HOME on ext4 made with `-O quota,project` and mounted with "
	              "`prjquota`, or on XFS mounted with `pquota`, and run as root",
	              why);
}

static bool id_is_ours(uint32_t id)
{
	return id >= QUOTA_ID_MIN && id - QUOTA_ID_MIN < QUOTA_ID_COUNT;
}

static unsigned long long inodes_for(long long bytes)
{
	long long n = bytes / QUOTA_BYTES_PER_INODE;

	return (unsigned long long)(n < QUOTA_MIN_INODES ? QUOTA_MIN_INODES : n);
}

/* bytes = inodes = 0 clears the limits. */
static int set_limits(int fd, uint32_t id, unsigned long long bytes, unsigned long long inodes)
{
	struct if_dqblk q = {.dqb_valid = QIF_LIMITS,
	                     .dqb_bhardlimit = (bytes + QIF_DQBLKSIZE - 1) / QIF_DQBLKSIZE,
	                     .dqb_ihardlimit = inodes};

	return quotactl_at(fd, Q_SETQUOTA, id, &q);
}

/* No inode carries the ID and no limit is set on it. */
static bool id_unused(const struct if_dqblk *q)
{
	return !q->dqb_bhardlimit && !q->dqb_bsoftlimit && !q->dqb_ihardlimit &&
	       !q->dqb_isoftlimit && !q->dqb_curspace && !q->dqb_curinodes;
}

/* Picks an unused ID and limits it, under a lock of this home's envs/: once
 * limited it is no longer unused for the next rollout. Random candidates keep
 * the probes few however many IDs trial logs still hold. */
static int alloc_id(int fd, long long bytes, uint32_t *out, struct err *err)
{
	_cleanup_free_ char *envs = sandbox_envs_dir();
	_cleanup_free_ char *path = path_join(envs, QUOTA_LOCK);
	_cleanup_close_ int lock = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (lock < 0 || flock(lock, LOCK_EX) < 0)
		return err_sys(err, "lock %s", path);
	for (int i = 0; i < QUOTA_ALLOC_TRIES; i++) {
		struct if_dqblk q;
		uint32_t r, id;

		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			return err_sys(err, "getrandom");
		id = QUOTA_ID_MIN + r % QUOTA_ID_COUNT;
		if (quotactl_at(fd, Q_GETQUOTA, id, &q) < 0)
			return err_sys(err, "read the quota of project %u", id);
		if (!id_unused(&q))
			continue;
		if (set_limits(fd, id, (unsigned long long)bytes, inodes_for(bytes)) < 0)
			return err_sys(err, "set the quota of project %u", id);
		*out = id;
		return 0;
	}
	return err_set(err, EAGAIN, "no unused project ID found in %d tries", QUOTA_ALLOC_TRIES);
}

static int set_project(int fd, uint32_t id)
{
	struct fsxattr fa;

	if (ioctl(fd, FS_IOC_FSGETXATTR, &fa) < 0)
		return -1;
	fa.fsx_projid = id;
	fa.fsx_xflags |= FS_XFLAG_PROJINHERIT;
	return ioctl(fd, FS_IOC_FSSETXATTR, &fa);
}

static uint32_t get_project(int fd)
{
	struct fsxattr fa;

	return ioctl(fd, FS_IOC_FSGETXATTR, &fa) < 0 ? 0 : fa.fsx_projid;
}

/* A /logs directory counts against the limit when it is on the same
 * filesystem (quotas are per filesystem). It was just made by the trial and
 * the environment has not run yet; still, no link is followed to it. Returns
 * 1 when covered, 0 when elsewhere, -1 on error. */
static int attach_logs_dir(const char *path, uint32_t id, struct err *err)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	if (!path)
		return 0;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return err_sys(err, "open %s", path);
	if (st.st_dev != host.dev)
		return 0;
	if (set_project(fd, id) < 0)
		return err_sys(err, "set project %u on %s", id, path);
	return 1;
}

int quota_env_setup(struct sandbox_env *env, const struct env_config *cfg, struct err *err)
{
	const char *logs[] = {cfg->host_agent_dir, cfg->host_verifier_dir, cfg->host_artifacts_dir};
	int elsewhere = 0;
	uint32_t id = 0;

	env->storage_limit = cfg->storage_bytes > 0 ? cfg->storage_bytes : 0;
	if (cfg->storage_bytes <= 0)
		return 0;
	if (!quota_available(NULL)) {
		quota_warn_unenforced();
		return 0;
	}
	if (alloc_id(env->dir_fd, cfg->storage_bytes, &id, err) < 0)
		return err_wrap(err, "environment %s: storage limit", env->name);
	env->quota_id = id;
	if (set_project(env->dir_fd, id) < 0)
		return err_sys(err, "environment %s: set project %u on %s", env->name, id,
		               env->dir);
	for (size_t i = 0; i < ARRAY_SIZE(logs); i++) {
		int rc = attach_logs_dir(logs[i], id, err);

		if (rc < 0)
			return err_wrap(err, "environment %s: storage limit", env->name);
		elsewhere += logs[i] && rc == 0;
	}
	if (elsewhere)
		log_warn_once("sandbox-storage-logs",
		              "sandbox: the trials' /logs directories are on another filesystem "
		              "than $ROLLOUT_HOME: storage_mb limits the environments' writable "
		              "layer only");
	return 0;
}

void quota_env_release(struct sandbox_env *env)
{
	if (env->quota_id && env->dir_fd >= 0)
		set_limits(env->dir_fd, env->quota_id, 0, 0);
	env->quota_id = 0;
}

/* The limit was reached: a write that failed left usage below it by less
 * than what it asked for (a block for buffered writes, one call's worth at
 * most), or every inode allowed is in use. */
static bool at_limit(const struct if_dqblk *q)
{
	unsigned long long limit = q->dqb_bhardlimit * QIF_DQBLKSIZE;
	unsigned long long slack = limit / 100 < (1u << 20) ? limit / 100 : (1u << 20);

	return (limit && q->dqb_curspace + slack >= limit) ||
	       (q->dqb_ihardlimit && q->dqb_curinodes >= q->dqb_ihardlimit);
}

static int read_quota(struct sandbox_env *env, struct if_dqblk *q, struct err *err)
{
	if (quotactl_at(env->dir_fd, Q_GETQUOTA, env->quota_id, q) < 0)
		return err_sys(err, "environment %s: read the quota of project %u", env->name,
		               env->quota_id);
	return 0;
}

int quota_env_usage(struct sandbox_env *env, struct env_usage *u, struct err *err)
{
	struct if_dqblk q;

	memset(u, 0, sizeof(*u));
	u->limit_bytes = env->storage_limit;
	u->used_bytes = -1;
	if (!env->quota_id || env->dir_fd < 0)
		return 0;
	if (read_quota(env, &q, err) < 0)
		return -1;
	u->enforced = q.dqb_bhardlimit > 0;
	u->used_bytes = (long long)q.dqb_curspace;
	u->limit_hit = env->storage_hit || at_limit(&q);
	return 0;
}

/* The limit becomes what is used now plus storage_mb again (q: read just before). */
static int room_above(struct sandbox_env *env, const struct if_dqblk *q, struct err *err)
{
	if (set_limits(env->dir_fd, env->quota_id,
	               q->dqb_curspace + (unsigned long long)env->storage_limit,
	               q->dqb_curinodes + inodes_for(env->storage_limit)) < 0)
		return err_sys(err, "environment %s: set the quota of project %u", env->name,
		               env->quota_id);
	return 0;
}

int quota_env_room_above_usage(struct sandbox_env *env, struct err *err)
{
	struct if_dqblk q;

	if (!env->quota_id || env->dir_fd < 0)
		return 0;
	if (read_quota(env, &q, err) < 0)
		return -1;
	return room_above(env, &q, err);
}

int quota_env_verifier_room(struct sandbox_env *env, struct err *err)
{
	struct if_dqblk q;

	if (!env->quota_id || env->dir_fd < 0)
		return 0;
	if (read_quota(env, &q, err) < 0)
		return -1;
	env->storage_hit |= at_limit(&q);
	return room_above(env, &q, err);
}

int quota_env_hold(const struct sandbox_env *env)
{
	/* Its owner knows; anyone else reads the directory. */
	if (env->owner && !env->quota_id)
		return -1;
	return quota_dir_hold(env->dir, env->dir_fd);
}

int quota_dir_hold(const char *dir, int dir_fd)
{
	int fd = dir_fd >= 0 ? fcntl(dir_fd, F_DUPFD_CLOEXEC, 3)
	                     : open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0 && !id_is_ours(get_project(fd))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

void quota_dir_release(int fd)
{
	uint32_t id;

	if (fd < 0)
		return;
	id = get_project(fd);
	if (id_is_ours(id))
		set_limits(fd, id, 0, 0);
	close(fd);
}
