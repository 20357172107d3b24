/* The container's filesystem, built in the child's fresh mount namespace: overlay
 * root, /proc, a minimal /dev, read-only /sys with the cgroup view, the /logs bind
 * mounts, pivot_root, then Docker's masked and read-only paths. Runs in the
 * exec'd init before its loop (overlay_fsmount also on the owner's thread), and
 * allocates nothing. Every mount target inside
 * the image is resolved within the root (openat2 RESOLVE_IN_ROOT): an image
 * symlink can never send a mount to the host. */
#include "providers/sandbox/sandbox.h"
#include "providers/sandbox/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define RESOLVE_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

int child_fail(struct child_err *e, int code, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	e->code = code;
	n = strlen(e->msg);
	if (code && n + 3 < sizeof(e->msg))
		snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(code));
	return -1;
}

/* mkdir -p of rel inside the root; each component is created in the directory
 * the previous prefix resolved to (within the root). */
static int mkdir_in_root(int rootfd, const char *rel)
{
	char buf[1024];
	size_t n = strlen(rel);
	int cur;

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, rel, n + 1);
	cur = sys_openat2(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_ROOT);
	if (cur < 0)
		return -errno;
	for (size_t i = 0; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char saved = buf[i];
		size_t start = i;
		int next;

		while (start > 0 && buf[start - 1] != '/')
			start--;
		buf[i] = '\0';
		if (i > start && mkdirat(cur, buf + start, 0755) < 0 && errno != EEXIST) {
			int e = errno;

			close(cur);
			return -e;
		}
		next = sys_openat2(rootfd, buf, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_ROOT);
		buf[i] = saved;
		if (next < 0) {
			int e = errno;

			close(cur);
			return -e;
		}
		close(cur);
		cur = next;
	}
	return cur;
}

/* O_PATH fd of directory rel inside the root, created if missing. */
static int root_dir(int rootfd, const char *rel, struct child_err *e)
{
	int fd = sys_openat2(rootfd, rel, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_ROOT);

	if (fd >= 0)
		return fd;
	if (errno == ENOENT)
		fd = mkdir_in_root(rootfd, rel);
	else
		fd = -errno;
	if (fd < 0)
		return child_fail(e, -fd, "mount point /%s", rel);
	return fd;
}

static int mount_on_fd(const char *src, int fd, const char *type, unsigned long flags,
                       const char *data)
{
	char p[32];

	return mount(src, sys_fd_path(p, fd), type, flags, data);
}

/* "volatile": an environment is disposable, so the overlay never syncs; above
 * all its unmount does not syncfs the whole host filesystem under the upper
 * directory (which can take seconds on a busy disk).
 * nodev: a device node of an image (b 8:0 with mode 0666), or one made in the
 * environment, is no device through the root: cgroup v2 has no device
 * controller, so this is what keeps it from opening the host's disk. The
 * devices an environment has live in /dev, a tmpfs of its own. Whiteouts
 * (char 0/0) are read by overlayfs itself, never opened: they still work. */
int overlay_fsmount(const struct sandbox_plan *p, struct child_err *e)
{
	int fs = sys_fsopen("overlay", SB_FSOPEN_CLOEXEC), mnt;
	size_t i = 0;

	if (fs < 0)
		return -2;
	for (; i < p->n_lowers; i++)
		if (sys_fsconfig(fs, SB_FSCONFIG_SET_STRING, "lowerdir+", p->lowers_top_first[i],
		                 0) < 0)
			break;
	if (i < p->n_lowers) {
		/* Kernels before 6.8 have no "lowerdir+": use the option string. */
		close(fs);
		return -2;
	}
	if (sys_fsconfig(fs, SB_FSCONFIG_SET_STRING, "upperdir", p->upper, 0) < 0 ||
	    sys_fsconfig(fs, SB_FSCONFIG_SET_STRING, "workdir", p->work, 0) < 0 ||
	    (p->userxattr && sys_fsconfig(fs, SB_FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0) ||
	    /* userxattr already means redirect_dir=nofollow (no redirects made),
	     * metacopy=off; naming them again is refused. */
	    (p->whole_files && !p->userxattr &&
	     (sys_fsconfig(fs, SB_FSCONFIG_SET_STRING, "redirect_dir", "off", 0) < 0 ||
	      sys_fsconfig(fs, SB_FSCONFIG_SET_STRING, "metacopy", "off", 0) < 0)) ||
	    sys_fsconfig(fs, SB_FSCONFIG_SET_FLAG, "volatile", NULL, 0) < 0) {
		int code = errno;

		close(fs);
		return child_fail(e, code, "overlay (upper %s)", p->upper);
	}
	/* Before 6.5 overlayfs had no parameter parser of its own: the kernel's
	 * legacy one took "lowerdir+" without a word and only the creation
	 * refuses it (EINVAL). The option string says what is really wrong. */
	if (sys_fsconfig(fs, SB_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		int code = errno;

		close(fs);
		if (code == EINVAL)
			return -2;
		return child_fail(e, code, "overlay (upper %s)", p->upper);
	}
	mnt = sys_fsmount(fs, SB_FSMOUNT_CLOEXEC, SB_MOUNT_ATTR_NODEV);
	close(fs);
	if (mnt < 0)
		return child_fail(e, errno, "fsmount overlay");
	return mnt;
}

/* Mounts the root overlay on p->rootfs: the detached mount the owner made
 * (mnt >= 0), else made here. */
static int mount_overlay(const struct sandbox_plan *p, int mnt, struct child_err *e)
{
	if (mnt < 0)
		mnt = overlay_fsmount(p, e);
	if (mnt == -2) {
		if (!p->overlay_opts)
			return child_fail(e, E2BIG, "overlay: too many layers for this kernel");
		if (mount("overlay", p->rootfs, "overlay", MS_NODEV, p->overlay_opts) < 0)
			return child_fail(e, errno, "mount overlay on %s", p->rootfs);
		return 0;
	}
	if (mnt < 0)
		return -1;
	if (sys_move_mount(mnt, "", AT_FDCWD, p->rootfs, SB_MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		int code = errno;

		close(mnt);
		return child_fail(e, code, "attach overlay on %s", p->rootfs);
	}
	close(mnt);
	return 0;
}

static const struct {
	const char *name;
} devices[] = {
    {"null"}, {"zero"}, {"full"}, {"random"}, {"urandom"}, {"tty"},
};

static const struct {
	const char *name, *target;
} dev_links[] = {
    {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
    {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"},         {"core", "/proc/kcore"},
};

static int setup_dev(const struct sandbox_plan *p, int rootfd, struct child_err *e)
{
	int t = root_dir(rootfd, "dev", e), dev, rc = -1;
	char opts[96];

	if (t < 0)
		return -1;
	/* nodev: a node the agent makes here with mknod (it has CAP_MKNOD, and cgroup
	 * v2 has no device controller) opens nothing. The few devices an
	 * environment gets are bind mounts of the host's own nodes, which keep the
	 * flags of the host's /dev. */
	if (mount_on_fd("tmpfs", t, "tmpfs", MS_NOSUID | MS_NODEV | MS_STRICTATIME,
	                "mode=755,size=65536k") < 0) {
		close(t);
		return child_fail(e, errno, "mount /dev");
	}
	close(t);
	dev = sys_openat2(rootfd, "dev", O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_ROOT);
	if (dev < 0)
		return child_fail(e, errno, "open /dev");
	for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++) {
		const char *n = devices[i].name;
		/* The host's node bound over an empty file (also what a user namespace,
		 * where mknod is not allowed, needs). */
		char host[32];
		int f = openat(dev, n, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666), tf;

		if (f < 0) {
			child_fail(e, errno, "create /dev/%s", n);
			goto out;
		}
		close(f);
		tf = openat(dev, n, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		snprintf(host, sizeof(host), "/dev/%s", n);
		if (tf < 0 || mount_on_fd(host, tf, NULL, MS_BIND, NULL) < 0) {
			child_fail(e, errno, "bind /dev/%s", n);
			if (tf >= 0)
				close(tf);
			goto out;
		}
		close(tf);
	}
	for (size_t i = 0; i < sizeof(dev_links) / sizeof(dev_links[0]); i++)
		if (symlinkat(dev_links[i].target, dev, dev_links[i].name) < 0) {
			child_fail(e, errno, "symlink /dev/%s", dev_links[i].name);
			goto out;
		}
	static const char *const dirs[] = {"pts", "shm", "mqueue"};

	for (size_t i = 0; i < 3; i++) {
		int d;

		if (mkdirat(dev, dirs[i], 0755) < 0 ||
		    (d = openat(dev, dirs[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
			child_fail(e, errno, "mkdir /dev/%s", dirs[i]);
			goto out;
		}
		int r;

		if (i == 0) {
			snprintf(opts, sizeof(opts), "newinstance,ptmxmode=0666,mode=0620%s",
			         p->devpts_gid ? ",gid=5" : "");
			r = mount_on_fd("devpts", d, "devpts", MS_NOSUID | MS_NOEXEC, opts);
		} else if (i == 1) {
			r = mount_on_fd("shm", d, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			                "mode=1777,size=65536k");
		} else {
			r = mount_on_fd("mqueue", d, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			                NULL);
		}
		close(d);
		if (r < 0) {
			child_fail(e, errno, "mount /dev/%s", dirs[i]);
			goto out;
		}
	}
	rc = 0;
out:
	close(dev);
	return rc;
}

static int setup_cgroup_view(const struct sandbox_plan *p, int rootfd, struct child_err *e)
{
	const unsigned long ro = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
	int cg =
	    sys_openat2(rootfd, "sys/fs/cgroup", O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_ROOT);
	int rc = -1;

	if (cg < 0)
		return 0; /* a kernel without cgroups in sysfs */
	if (p->cg_mode == CG_V2) {
		if (mount_on_fd("cgroup2", cg, "cgroup2", ro, NULL) < 0)
			child_fail(e, errno, "mount /sys/fs/cgroup");
		else
			rc = 0;
		close(cg);
		return rc;
	}
	if (mount_on_fd("tmpfs", cg, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	                "mode=755,size=64k") < 0) {
		close(cg);
		return child_fail(e, errno, "mount /sys/fs/cgroup");
	}
	close(cg);
	cg =
	    sys_openat2(rootfd, "sys/fs/cgroup", O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_ROOT);
	if (cg < 0)
		return child_fail(e, errno, "open /sys/fs/cgroup");
	for (int i = 0; i < p->n_cg_views; i++) {
		const char *c = p->cg_views[i];
		int d;

		if (mkdirat(cg, c, 0755) < 0 ||
		    (d = openat(cg, c, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
			child_fail(e, errno, "mkdir /sys/fs/cgroup/%s", c);
			goto out;
		}
		if (mount_on_fd("cgroup", d, "cgroup", ro, c) < 0) {
			child_fail(e, errno, "mount cgroup %s", c);
			close(d);
			goto out;
		}
		close(d);
		/* "cpu,cpuacct" is also reachable as cpu/ and cpuacct/. */
		if (strchr(c, ',')) {
			char one[64];
			const char *s = c;

			while (*s) {
				size_t n = strcspn(s, ",");

				if (n < sizeof(one)) {
					memcpy(one, s, n);
					one[n] = '\0';
					symlinkat(c, cg, one);
				}
				s += n;
				if (*s == ',')
					s++;
			}
		}
	}
	if (mount_on_fd(NULL, cg, NULL, MS_REMOUNT | ro, "mode=755,size=64k") < 0) {
		child_fail(e, errno, "remount /sys/fs/cgroup read-only");
		goto out;
	}
	rc = 0;
out:
	close(cg);
	return rc;
}

static int setup_sys(const struct sandbox_plan *p, int rootfd, struct child_err *e)
{
	int t = root_dir(rootfd, "sys", e);

	if (t < 0)
		return -1;
	if (p->netns || !p->userns) {
		if (mount_on_fd("sysfs", t, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		                NULL) < 0) {
			close(t);
			return child_fail(e, errno, "mount /sys");
		}
		close(t);
	} else {
		/* sysfs can only be mounted by the owner of the network namespace:
		 * with the host's network, bind the host's /sys read-only. */
		struct sb_mount_attr attr = {.attr_set =
		                                 SB_MOUNT_ATTR_RDONLY | SB_MOUNT_ATTR_NOSUID |
		                                 SB_MOUNT_ATTR_NODEV | SB_MOUNT_ATTR_NOEXEC};
		int tree =
		    sys_open_tree(AT_FDCWD, "/sys", SB_OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE);

		if (tree < 0 ||
		    sys_mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr) < 0 ||
		    sys_move_mount(tree, "", t, "",
		                   SB_MOVE_MOUNT_F_EMPTY_PATH | SB_MOVE_MOUNT_T_EMPTY_PATH) < 0) {
			child_fail(e, errno, "bind /sys");
			if (tree >= 0)
				close(tree);
			close(t);
			return -1;
		}
		close(tree);
		close(t);
		return 0;
	}
	return 0;
}

static int setup_binds(const struct sandbox_plan *p, int rootfd, struct child_err *e)
{
	for (int i = 0; i < LOG_BINDS; i++) {
		struct sb_mount_attr attr = {.attr_set =
		                                 SB_MOUNT_ATTR_NOSUID | SB_MOUNT_ATTR_NODEV};
		int t, tree;

		if (!p->bind_dst[i])
			continue;
		t = root_dir(rootfd, p->bind_dst[i], e);
		if (t < 0)
			return -1;
		if (!p->bind_src[i]) {
			close(t);
			continue;
		}
		if (p->bind_rdonly & (1u << i))
			attr.attr_set |= SB_MOUNT_ATTR_RDONLY;
		tree = sys_open_tree(AT_FDCWD, p->bind_src[i], SB_OPEN_TREE_CLONE | O_CLOEXEC);
		if (tree < 0 || sys_mount_setattr(tree, "", AT_EMPTY_PATH, &attr) < 0 ||
		    sys_move_mount(tree, "", t, "",
		                   SB_MOVE_MOUNT_F_EMPTY_PATH | SB_MOVE_MOUNT_T_EMPTY_PATH) < 0) {
			child_fail(e, errno, "bind %s on /%s", p->bind_src[i], p->bind_dst[i]);
			if (tree >= 0)
				close(tree);
			close(t);
			return -1;
		}
		close(tree);
		close(t);
	}
	return 0;
}

const char *const sandbox_etc_files[3] = {"hosts", "resolv.conf", "hostname"};

/* /etc/hosts, resolv.conf and hostname live on a small tmpfs of the environment
 * (mounted aside in this namespace, gone from view after pivot_root) and are
 * bound over the skeleton's empty files: nothing per environment on disk. */
static int setup_etc(const struct sandbox_plan *p, int rootfd, struct child_err *e)
{
	char src[1024];

	if (mount("tmpfs", p->etc_scratch, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	          "size=64k,mode=755") < 0)
		return child_fail(e, errno, "mount tmpfs on %s", p->etc_scratch);
	for (int i = 0; i < 3; i++) {
		const char *name = sandbox_etc_files[i], *text = p->etc_files[i];
		int fd, t;
		char rel[32];

		snprintf(src, sizeof(src), "%s/%s", p->etc_scratch, name);
		fd = open(src, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, text, strlen(text)) < 0) {
			child_fail(e, errno, "write %s", src);
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
		snprintf(rel, sizeof(rel), "etc/%s", name);
		t = sys_openat2(rootfd, rel, O_PATH | O_CLOEXEC, 0,
		                RESOLVE_ROOT | RESOLVE_NO_SYMLINKS);
		if (t < 0)
			return child_fail(e, errno, "/etc/%s", name);
		if (mount_on_fd(src, t, NULL, MS_BIND, NULL) < 0) {
			child_fail(e, errno, "bind /etc/%s", name);
			close(t);
			return -1;
		}
		close(t);
	}
	return 0;
}

static int do_pivot(int rootfd, struct child_err *e)
{
	if (fchdir(rootfd) < 0)
		return child_fail(e, errno, "chdir to the root");
	if (sys_pivot_root(".", ".") < 0)
		return child_fail(e, errno, "pivot_root");
	/* The old root is stacked under the new one: detach it. */
	if (umount2(".", MNT_DETACH) < 0)
		return child_fail(e, errno, "detach the old root");
	if (chdir("/") < 0)
		return child_fail(e, errno, "chdir /");
	return 0;
}

/* Docker's defaults (moby oci/defaults.go). */
static const char *const masked_paths[] = {
    "/proc/acpi",        "/proc/asound",        "/proc/interrupts", "/proc/kcore",
    "/proc/keys",        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
    "/proc/sched_debug", "/proc/scsi",          "/sys/firmware",    "/sys/devices/virtual/powercap",
};
static const char *const readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

int mounts_protect(struct child_err *e)
{
	const unsigned long locked = MS_NOSUID | MS_NODEV | MS_NOEXEC;

	for (size_t i = 0; i < sizeof(masked_paths) / sizeof(masked_paths[0]); i++) {
		struct stat st;
		int r;

		if (lstat(masked_paths[i], &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			r = mount("tmpfs", masked_paths[i], "tmpfs", MS_RDONLY | locked,
			          "nr_inodes=1");
		else
			r = mount("/dev/null", masked_paths[i], NULL, MS_BIND, NULL);
		if (r < 0)
			return child_fail(e, errno, "mask %s", masked_paths[i]);
	}
	for (size_t i = 0; i < sizeof(readonly_paths) / sizeof(readonly_paths[0]); i++) {
		const char *path = readonly_paths[i];
		struct stat st;

		if (lstat(path, &st) < 0)
			continue;
		if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0 ||
		    mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked, NULL) < 0)
			return child_fail(e, errno, "read-only %s", path);
	}
	return 0;
}

int mounts_setup_early(const struct sandbox_plan *p, int owner_mnt, int *rootfd_out,
                       struct child_err *e)
{
	int rootfd, t;

	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		if (owner_mnt >= 0)
			close(owner_mnt);
		return child_fail(e, errno, "make / private");
	}
	if (mount_overlay(p, owner_mnt, e) < 0)
		return -1;
	rootfd = open(p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return child_fail(e, errno, "open %s", p->rootfs);
	t = root_dir(rootfd, "proc", e);
	if (t < 0)
		goto fail;
	if (mount_on_fd("proc", t, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		child_fail(e, errno, "mount /proc");
		close(t);
		goto fail;
	}
	close(t);
	if (setup_dev(p, rootfd, e) < 0 || setup_etc(p, rootfd, e) < 0 ||
	    setup_binds(p, rootfd, e) < 0)
		goto fail;
	*rootfd_out = rootfd;
	return 0;
fail:
	close(rootfd);
	return -1;
}

int mounts_setup_late(const struct sandbox_plan *p, int rootfd, struct child_err *e)
{
	int rc = -1;

	if (setup_sys(p, rootfd, e) < 0)
		goto out;
	/* The cgroup view needs the cgroup namespace, made after joining. */
	if (((p->cg_mode == CG_V1 && !p->userns) || p->cg_mode == CG_V2) && p->sysfs_mounted &&
	    setup_cgroup_view(p, rootfd, e) < 0)
		goto out;
	if (do_pivot(rootfd, e) < 0)
		goto out;
	rc = 0;
out:
	close(rootfd);
	return rc;
}
