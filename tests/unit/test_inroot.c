/* Unit tests for util/inroot.c's mkdir -p inside a root (inroot_open itself is
 * tested in test_tar.c): links resolve inside the root, ".." stops at it, owners
 * and modes are set only on what it made, with openat2 and with the user-space walk. */
#include "harness.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/inroot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static mode_t mode_at(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

static void check_mkdirs(void)
{
	const char *root = tdir("root"), *outside = tdir("outside");
	const struct inroot_owner me = {getuid(), getgid()};
	_cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct err err = {0};
	struct stat a, b;
	int fd;

	REQUIRE(rfd >= 0);
	REQUIRE(symlink(outside, tfmt("%s/abs", root)) == 0);
	REQUIRE(symlink("../../../..", tfmt("%s/up", root)) == 0);
	REQUIRE(mkdir(tfmt("%s/keep", outside), 0700) == 0);
	/* The link's target as the root sees it. */
	REQUIRE(mkdir_p(tfmt("%s%s", root, outside), 0755, &err) == 0);

	/* Plain: made with the mode less the umask, the fd is the directory. */
	umask(022);
	fd = inroot_mkdirs(rfd, "/a//b/./c/", 0777, NULL, &err);
	REQUIRE(fd >= 0);
	CHECK(fstat(fd, &a) == 0 && stat(tfmt("%s/a/b/c", root), &b) == 0 && a.st_ino == b.st_ino);
	close(fd);
	CHECK_INT(mode_at(tfmt("%s/a/b", root)), 0755);

	/* An absolute link resolves inside the root: the host's directory is not touched. */
	fd = inroot_mkdirs(rfd, "abs/keep/x", 0750, &me, &err);
	REQUIRE(fd >= 0);
	close(fd);
	CHECK(path_is_dir(tfmt("%s/%s/keep/x", root, outside)));
	CHECK(!path_exists(tfmt("%s/keep/x", outside)));
	CHECK_INT(mode_at(tfmt("%s/keep", outside)), 0700);
	/* With an owner the mode is exact (no umask). */
	umask(077);
	fd = inroot_mkdirs(rfd, "/owned/sub", 0755, &me, &err);
	REQUIRE(fd >= 0);
	close(fd);
	umask(022);
	CHECK_INT(mode_at(tfmt("%s/owned/sub", root)), 0755);

	/* ".." and a climbing link stop at the root. */
	fd = inroot_mkdirs(rfd, "../../up/z", 0755, NULL, &err);
	REQUIRE(fd >= 0);
	close(fd);
	CHECK(path_is_dir(tfmt("%s/z", root)));

	/* A file in the way is an error naming the prefix. */
	REQUIRE(write_file(tfmt("%s/file", root), "x", 1, 0644, &err) == 0);
	CHECK(inroot_mkdirs(rfd, "/file/d", 0755, NULL, &err) < 0);
	CHECK_INT(err.code, ENOTDIR);
	CHECK(strstr(err.msg, "/file") != NULL);
}

TEST(inroot_mkdirs_openat2)
{
	check_mkdirs();
}

TEST(inroot_mkdirs_fallback)
{
	inroot_force_fallback = true;
	check_mkdirs();
}

/* A link whose target is missing inside the root but exists outside: mkdir sees
 * EEXIST there and must not chmod through the link (fchmodat follows links). */
TEST(inroot_mkdirs_does_not_chmod_through_a_link)
{
	const char *root = tdir("root"), *outside = tdir("outside");
	const struct inroot_owner me = {getuid(), getgid()};
	_cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct err err = {0};

	REQUIRE(rfd >= 0);
	REQUIRE(chmod(outside, 0700) == 0);
	REQUIRE(symlink(outside, tfmt("%s/link", root)) == 0);
	/* Inside the root "link" points at a missing directory: not made, an error. */
	CHECK(inroot_mkdirs(rfd, "/link", 0755, &me, &err) < 0);
	CHECK_INT(mode_at(outside), 0700);
}
