/* Unit tests for rootfs.c (--isolation chroot's root directories): the layers
 * copied into one directory must be what overlayfs shows of the same layers,
 * and a build step's diff stacked on them must be what the step left. The
 * kernel's overlayfs is the oracle (mounted read-only in a private mount
 * namespace: needs root). */
#include "harness.h"
#include "providers/sandbox/rootfs.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"
#include "tree_compare.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static void put(const char *rel, const char *text, mode_t mode)
{
	const char *p = tpath(rel);
	_cleanup_free_ char *dir = xstrdup(p);

	*strrchr(dir, '/') = '\0';
	mkdir_p(dir, 0755, NULL);
	REQUIRE(write_file(p, text, strlen(text), mode, NULL) == 0);
	chmod(p, mode);
}

static void whiteout(const char *rel)
{
	REQUIRE(mknod(tpath(rel), S_IFCHR | 0, makedev(0, 0)) == 0);
}

/* Three layers with what overlayfs has to resolve: replaced and whited-out
 * files, a whited-out directory, a directory replacing a file and the other
 * way round, an opaque directory, hard links, a symlink, a FIFO, a set-uid
 * file with an owner, an extended attribute. */
static void make_layers(void)
{
	/* l1 */
	put("l1/a/f1", "one\n", 0644);
	put("l1/a/f2", "two\n", 0600);
	put("l1/a/sub/g", "g\n", 0644);
	put("l1/b/inside", "b\n", 0644);
	put("l1/x", "file x\n", 0644);
	put("l1/opq/old1", "o1\n", 0644);
	put("l1/opq/old2", "o2\n", 0644);
	put("l1/h1", "linked\n", 0644);
	REQUIRE(link(tpath("l1/h1"), tpath("l1/h2")) == 0);
	REQUIRE(symlink("a/f1", tpath("l1/s")) == 0);
	REQUIRE(mkfifo(tpath("l1/fifo"), 0640) == 0);
	put("l1/suid", "#!/bin/sh\n", 0755);
	REQUIRE(chown(tpath("l1/suid"), 1000, 1000) == 0);
	REQUIRE(chmod(tpath("l1/suid"), 04755) == 0);
	REQUIRE(setxattr(tpath("l1/a/f1"), "user.note", "kept", 4, 0) == 0);
	/* l2 */
	put("l2/a/f1", "one, again\n", 0640);
	REQUIRE(mkdir(tpath("l2/a"), 0750) == 0 || errno == EEXIST);
	REQUIRE(chmod(tpath("l2/a"), 0750) == 0);
	whiteout("l2/a/f2");
	put("l2/b", "b is a file now\n", 0644);
	put("l2/x/inner", "x is a directory now\n", 0644);
	put("l2/opq/new", "n\n", 0644);
	REQUIRE(setxattr(tpath("l2/opq"), "trusted.overlay.opaque", "y", 1, 0) == 0);
	/* l3 */
	REQUIRE(mkdir_p(tpath("l3"), 0755, NULL) == 0);
	whiteout("l3/a");
	put("l3/a2/c", "c\n", 0644);
}

/* A read-only overlay of lowers (top first, colon separated) at mnt. */
static bool mount_overlay(const char *lowers, const char *mnt)
{
	_cleanup_free_ char *opts = xasprintf("lowerdir=%s", lowers);

	mkdir_p(mnt, 0755, NULL);
	return mount("overlay", mnt, "overlay", MS_RDONLY, opts) == 0;
}

static bool private_mounts(void)
{
	return geteuid() == 0 && unshare(CLONE_NEWNS) == 0 &&
	       mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
}

/* The first n of l1, l2, l3 into dst. */
static int flatten_into(size_t n, const char *dst, struct rootfs_stats *st, struct err *err)
{
	const char *dirs[] = {tpath("l1"), tpath("l2"), tpath("l3")};
	struct rootfs_layers ly = {.dirs = dirs, .n = n};
	_cleanup_close_ int fd = -1;
	int rc;

	mkdir_p(dst, 0755, NULL);
	fd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = rootfs_flatten(&ly, fd, st, err);
	if (rc < 0)
		test_fail_at(__FILE__, __LINE__, "flatten: %s", err->msg);
	return rc;
}

static void check_same(const char *a, const char *b)
{
	_cleanup_sb_ struct strbuf diff = STRBUF_INIT;

	if (!tree_compare(a, b, "", TREE_CMP_XATTRS, &diff))
		test_fail_at(__FILE__, __LINE__, "trees differ:\n%s", sb_str(&diff));
}

/* Removes what the skeleton put in the root after the diff, its directory's
 * times kept: the upper directory has them as they were at the diff. */
static void remove_keeping_times(const char *rel)
{
	_cleanup_free_ char *path = xstrdup(tpath(rel));
	_cleanup_free_ char *parent = xstrdup(path);
	struct stat st;

	*strrchr(parent, '/') = '\0';
	REQUIRE(stat(parent, &st) == 0);
	REQUIRE(rm_rf(path, NULL) == 0);
	REQUIRE(utimensat(AT_FDCWD, parent, (struct timespec[]){st.st_atim, st.st_mtim}, 0) == 0);
}

TEST(flatten_shows_what_overlayfs_shows)
{
	struct rootfs_stats st;
	struct err err = {0};
	struct stat a, b;

	if (!private_mounts())
		SKIP("needs root (overlayfs is the oracle)");
	make_layers();
	REQUIRE(flatten_into(3, tpath("root"), &st, &err) == 0);
	REQUIRE(mount_overlay(tfmt("%s:%s:%s", tpath("l3"), tpath("l2"), tpath("l1")),
	                      tpath("merged")));
	check_same(tpath("merged"), tpath("root"));
	/* Hard links inside a layer stay links; never links into the layer. */
	REQUIRE(stat(tpath("root/h1"), &a) == 0 && stat(tpath("root/h2"), &b) == 0);
	CHECK(a.st_ino == b.st_ino);
	REQUIRE(stat(tpath("l1/h1"), &b) == 0);
	CHECK(a.st_ino != b.st_ino);
	CHECK(st.files > 0 && st.dirs > 0);
}

/* An image's device node (`b 8:0` would be the host's disk without nodev) is
 * not made; the copy is never a link into the layer. */
TEST(flatten_leaves_device_nodes_out_and_copies_files)
{
	const char *dirs[1];
	struct rootfs_layers ly = {.dirs = dirs, .n = 1};
	struct rootfs_stats st;
	struct err err = {0};
	_cleanup_close_ int fd = -1;

	if (geteuid() != 0)
		SKIP("needs root (mknod)");
	put("l/etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0644);
	REQUIRE(mknod(tpath("l/disk"), S_IFBLK | 0666, makedev(8, 0)) == 0);
	dirs[0] = tpath("l");
	REQUIRE(mkdir_p(tpath("r"), 0755, NULL) == 0);
	fd = open(tpath("r"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(rootfs_flatten(&ly, fd, &st, &err) == 0);
	CHECK(!path_exists(tpath("r/disk")));
	CHECK_INT(st.skipped, 1);
	REQUIRE(write_file(tpath("r/etc/passwd"), "changed\n", 8, 0644, NULL) == 0);
	{
		_cleanup_free_ char *orig = NULL;
		size_t len;

		REQUIRE(read_file(tpath("l/etc/passwd"), 1024, &orig, &len, NULL) == 0);
		CHECK_STR(orig, "root:x:0:0::/root:/bin/sh\n");
	}
}

/* A build step: what it changed, as an upper directory stacked on the same
 * layers, gives back the tree the step left (the excluded paths aside). */
TEST(diff_stacked_on_the_layers_is_the_changed_tree)
{
	const char *dirs[] = {NULL, NULL, NULL};
	const char *exclude[] = {"dev",         "etc/hosts",      "logs/",
	                         "logs/agent/", "logs/verifier/", NULL};
	_cleanup_free_ char *l1 = NULL, *l2 = NULL, *l3 = NULL;
	struct rootfs_layers ly = {.dirs = dirs, .n = 3};
	struct timespec since;
	struct err err = {0};
	_cleanup_close_ int root = -1, upper = -1;

	if (!private_mounts())
		SKIP("needs root (overlayfs is the oracle)");
	make_layers();
	/* tpath()'s buffers rotate: these must outlive many calls. */
	dirs[0] = l1 = xstrdup(tpath("l1"));
	dirs[1] = l2 = xstrdup(tpath("l2"));
	dirs[2] = l3 = xstrdup(tpath("l3"));
	REQUIRE(flatten_into(3, tpath("root"), NULL, &err) == 0);
	clock_gettime(CLOCK_REALTIME_COARSE, &since);
	/* The step: changes of every kind. */
	REQUIRE(write_file(tpath("root/x/inner"), "changed\n", 8, 0644, NULL) == 0);
	REQUIRE(chmod(tpath("root/a2/c"), 0600) == 0);
	REQUIRE(unlink(tpath("root/s")) == 0);
	REQUIRE(rm_rf(tpath("root/b"), NULL) == 0);
	REQUIRE(mkdir(tpath("root/b"), 0700) == 0);
	put("root/b/fresh", "fresh\n", 0644);
	REQUIRE(rm_rf(tpath("root/opq"), NULL) == 0);
	REQUIRE(mkdir(tpath("root/opq"), 0755) == 0);
	put("root/new/deep/file", "deep\n", 0644);
	/* More directories than the walk's queue first holds. */
	for (int i = 0; i < 300; i++)
		REQUIRE(mkdir_p(tpath(tfmt("root/new/many/d%d", i)), 0755, NULL) == 0);
	REQUIRE(unlink(tpath("root/h2")) == 0);
	/* What the environment's skeleton adds: left out. */
	put("root/dev/null", "", 0666);
	put("root/etc/hosts", "127.0.0.1 localhost\n", 0644);
	/* ... and /logs, where the layers have none: only what a RUN wrote
	 * inside is kept. */
	REQUIRE(mkdir_p(tpath("root/logs/agent"), 0777, NULL) == 0);
	put("root/logs/verifier/kept", "kept\n", 0644);
	REQUIRE(mkdir_p(tpath("upper"), 0755, NULL) == 0);
	root = open(tpath("root"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	upper = open(tpath("upper"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfs_diff(root, &ly, &since, exclude, upper, &err) < 0) {
		test_fail_at(__FILE__, __LINE__, "diff: %s", err.msg);
		return;
	}
	CHECK(!path_exists(tpath("upper/dev")));
	CHECK(!path_exists(tpath("upper/etc/hosts")));
	CHECK(!path_exists(tpath("upper/logs/agent")));
	CHECK(path_exists(tpath("upper/logs/verifier/kept")));
	remove_keeping_times("root/dev");
	remove_keeping_times("root/logs/agent");
	remove_keeping_times("root/etc/hosts"); /* etc itself is new: kept */
	REQUIRE(mount_overlay(
	    tfmt("%s:%s:%s:%s", tpath("upper"), tpath("l3"), tpath("l2"), tpath("l1")),
	    tpath("merged")));
	check_same(tpath("merged"), tpath("root"));
}

/* Nothing changed: the step's layer is empty. */
TEST(diff_of_an_untouched_root_is_empty_once_time_has_moved_on)
{
	const char *dirs[] = {NULL};
	struct rootfs_layers ly = {.dirs = dirs, .n = 1};
	struct timespec since, now;
	_cleanup_free_ char *l1 = NULL;
	struct err err = {0};
	_cleanup_close_ int root = -1, upper = -1;

	put("l1/a/f", "f\n", 0644);
	put("l1/top", "t\n", 0644);
	dirs[0] = l1 = xstrdup(tpath("l1"));
	REQUIRE(flatten_into(1, tpath("root"), NULL, &err) == 0);
	/* Wait until the coarse clock has passed every ctime of the copy. */
	clock_gettime(CLOCK_REALTIME_COARSE, &since);
	since.tv_nsec += 1;
	do
		clock_gettime(CLOCK_REALTIME_COARSE, &now);
	while (now.tv_sec == since.tv_sec && now.tv_nsec < since.tv_nsec + 20000000);
	since = now;
	REQUIRE(mkdir_p(tpath("upper"), 0755, NULL) == 0);
	root = open(tpath("root"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	upper = open(tpath("upper"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(rootfs_diff(root, &ly, &since, NULL, upper, &err) == 0);
	CHECK_INT(tree_count_entries(tpath("upper")), 0);
}
