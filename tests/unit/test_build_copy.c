/* COPY/ADD file operations (src/image/build_copy.c) between two host directories:
 * a build context and a stand-in for a container's root. */
#include "harness.h"
#include "image/build_internal.h"
#include "image/dockerignore.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

static void put(const char *path, const char *text, mode_t mode)
{
	struct err err = {0};

	if (write_file(path, text, strlen(text), mode, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	chmod(path, mode);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 ? st.st_mode & 07777 : 0;
}

static char *slurp(const char *path)
{
	char *text = NULL;
	size_t len;

	return read_file(path, 1 << 20, &text, &len, NULL) == 0 ? text : NULL;
}

/* A context with a directory, files, links and a hard link; an empty root. */
static void setup(int *ctx, int *root)
{
	mkdir(tpath("ctx"), 0755);
	mkdir(tpath("ctx/src"), 0750);
	mkdir(tpath("ctx/src/sub"), 0700);
	put(tpath("ctx/src/a.txt"), "a\n", 0600);
	put(tpath("ctx/src/sub/b.txt"), "b\n", 0644);
	put(tpath("ctx/f1.txt"), "f1\n", 0644);
	put(tpath("ctx/f2.txt"), "f2\n", 0755);
	symlink("f1.txt", tpath("ctx/link"));
	symlink("../outside", tpath("ctx/escape"));
	symlink("/etc/passwd", tpath("ctx/abs"));
	link(tpath("ctx/f1.txt"), tpath("ctx/src/hard"));
	link(tpath("ctx/src/hard"), tpath("ctx/src/sub/hard2"));
	mkdir(tpath("root"), 0755);
	mkdir(tpath("root/existing"), 0700);
	*ctx = open(tpath("ctx"), O_PATH | O_DIRECTORY | O_CLOEXEC);
	*root = open(tpath("root"), O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static int copy(int ctx, int root, const char *src, const char *dest, bool dest_dir,
                struct copy_request *extra, struct err *err)
{
	struct copy_source s = {.path = (char *)src};
	struct copy_request r = {0};

	if (extra)
		r = *extra;
	r.what = "COPY";
	r.src_root = ctx;
	r.context = true;
	r.srcs = &s;
	r.n_srcs = 1;
	r.dest = dest;
	r.dest_dir = dest_dir;
	return copy_run(&r, root, err);
}

TEST(copy_directory_semantics)
{
	struct err err = {0};
	int ctx, root;

	setup(&ctx, &root);
	REQUIRE(copy(ctx, root, "src", "/new", false, NULL, &err) == 0);
	CHECK_INT(mode_of(tpath("root/new")), 0755); /* created: 0755, not the source's */
	CHECK_INT(mode_of(tpath("root/new/a.txt")), 0600);
	CHECK_INT(mode_of(tpath("root/new/sub")), 0700);
	CHECK(path_is_file(tpath("root/new/sub/b.txt")));
	REQUIRE(copy(ctx, root, "src", "/existing", false, NULL, &err) == 0);
	CHECK_INT(mode_of(tpath("root/existing")), 0700); /* existing: kept */
	CHECK(path_is_file(tpath("root/existing/a.txt")));
	/* Hard links among the copied files stay links. */
	REQUIRE(copy(ctx, root, "src", "/h/", true, NULL, &err) == 0);
	{
		struct stat a, b;

		REQUIRE(stat(tpath("root/h/hard"), &a) == 0 &&
		        stat(tpath("root/h/sub/hard2"), &b) == 0);
		CHECK(a.st_ino == b.st_ino);
		CHECK_INT(a.st_nlink, 2);
	}
}

TEST(copy_files_links_and_parents)
{
	struct err err = {0};
	struct stat st;
	int ctx, root;

	setup(&ctx, &root);
	REQUIRE(copy(ctx, root, "f2.txt", "/p1/p2/named", false, NULL, &err) == 0);
	CHECK_INT(mode_of(tpath("root/p1")), 0755);
	CHECK_INT(mode_of(tpath("root/p1/p2/named")), 0755);
	REQUIRE(copy(ctx, root, "f1.txt", "/dir/", true, NULL, &err) == 0);
	CHECK(path_is_file(tpath("root/dir/f1.txt")));
	REQUIRE(copy(ctx, root, "f2.txt", "/existing", false, NULL, &err) == 0);
	CHECK(path_is_file(tpath("root/existing/f2.txt"))); /* an existing directory */
	/* A link given as the source is followed, and takes the link's name. */
	REQUIRE(copy(ctx, root, "link", "/l/", true, NULL, &err) == 0);
	REQUIRE(lstat(tpath("root/l/link"), &st) == 0);
	CHECK(S_ISREG(st.st_mode));
	/* Links inside a directory are copied as links. */
	symlink("a.txt", tpath("ctx/src/inner-link"));
	REQUIRE(copy(ctx, root, "src", "/withlink", false, NULL, &err) == 0);
	REQUIRE(lstat(tpath("root/withlink/inner-link"), &st) == 0);
	CHECK(S_ISLNK(st.st_mode));
	/* An existing file is replaced. */
	put(tpath("root/replace"), "old", 0644);
	REQUIRE(copy(ctx, root, "f1.txt", "/replace", false, NULL, &err) == 0);
	{
		char *t = slurp(tpath("root/replace"));

		CHECK_STR(t, "f1\n");
		free(t);
	}
}

TEST(copy_stays_in_the_context)
{
	struct err err = {0};
	int ctx, root;

	setup(&ctx, &root);
	put(tpath("outside"), "secret", 0644);
	CHECK(copy(ctx, root, "../outside", "/x", false, NULL, &err) < 0);
	CHECK(strstr(err.msg, "outside the build context"));
	CHECK(copy(ctx, root, "escape", "/x", false, NULL, &err) < 0);
	CHECK(strstr(err.msg, "points outside the build context"));
	CHECK(copy(ctx, root, "abs", "/x", false, NULL, &err) < 0);
	CHECK(strstr(err.msg, "points outside the build context"));
	CHECK(!path_exists(tpath("root/x")));
	CHECK(copy(ctx, root, "nope", "/x", false, NULL, &err) < 0);
	CHECK(strstr(err.msg, "nope: not found"));
	/* A destination link in the image does not lead out of its root. */
	symlink("/", tpath("root/up"));
	REQUIRE(copy(ctx, root, "f1.txt", "/up/escaped.txt", false, NULL, &err) == 0);
	CHECK(path_is_file(tpath("root/escaped.txt")));
}

TEST(copy_globs_ignore_owner_mode)
{
	struct err err = {0};
	struct dockerignore *di = NULL;
	struct copy_request r = {0};
	struct copy_source s[1] = {{.path = "f*.txt"}};
	struct stat st;
	int ctx, root;

	setup(&ctx, &root);
	REQUIRE(dockerignore_parse("f2.txt\n", 7, &di, &err) == 0);
	r.what = "COPY";
	r.src_root = ctx;
	r.context = true;
	r.ignore = di;
	r.srcs = s;
	r.n_srcs = 1;
	r.dest = "/g";
	r.dest_dir = true;
	r.chown = true;
	r.uid = 7;
	r.gid = 8;
	r.chmod = true;
	r.mode = 0640;
	REQUIRE(copy_run(&r, root, &err) == 0);
	CHECK(path_is_file(tpath("root/g/f1.txt")));
	CHECK(!path_exists(tpath("root/g/f2.txt"))); /* .dockerignore */
	CHECK_INT(mode_of(tpath("root/g/f1.txt")), 0640);
	if (geteuid() == 0) {
		REQUIRE(stat(tpath("root/g/f1.txt"), &st) == 0);
		CHECK_INT(st.st_uid, 7);
		CHECK_INT(st.st_gid, 8);
		REQUIRE(stat(tpath("root/g"), &st) == 0);
		CHECK_INT(st.st_uid, 7); /* created parents: owned like --chown */
		CHECK_INT(mode_of(tpath("root/g")), 0755);
	}
	s[0].path = "*.none";
	CHECK(copy_run(&r, root, &err) < 0);
	CHECK(strstr(err.msg, "no source files match"));
	dockerignore_free(di);
}

TEST(copy_digest_follows_content_not_times)
{
	struct err err = {0};
	struct copy_source s = {.path = "src"};
	struct copy_request r = {.what = "COPY", .context = true, .srcs = &s, .n_srcs = 1};
	char d1[65], d2[65], d3[65];
	struct timespec ts[2] = {{1000, 0}, {1000, 0}};
	int ctx, root;

	setup(&ctx, &root);
	r.src_root = ctx;
	REQUIRE(copy_digest(&r, d1, &err) == 0);
	utimensat(AT_FDCWD, tpath("ctx/src/a.txt"), ts, 0);
	REQUIRE(copy_digest(&r, d2, &err) == 0);
	CHECK_STR(d1, d2);
	put(tpath("ctx/src/a.txt"), "changed\n", 0600);
	REQUIRE(copy_digest(&r, d3, &err) == 0);
	CHECK(strcmp(d1, d3) != 0);
	chmod(tpath("ctx/src/a.txt"), 0644);
	REQUIRE(copy_digest(&r, d1, &err) == 0);
	CHECK(strcmp(d1, d3) != 0);
}

TEST(copy_mkdir_p_owner)
{
	struct err err = {0};
	int ctx, root, fd;

	setup(&ctx, &root);
	fd = copy_mkdir_p(root, "/a/b/c", 0, 0, &err);
	REQUIRE(fd >= 0);
	close(fd);
	CHECK(path_is_dir(tpath("root/a/b/c")));
	CHECK_INT(mode_of(tpath("root/a/b")), 0755);
	fd = copy_mkdir_p(root, "/existing", 0, 0, &err);
	REQUIRE(fd >= 0);
	close(fd);
	CHECK_INT(mode_of(tpath("root/existing")), 0700);
}

/* A FIFO, a socket and a device node among the sources: never opened (a FIFO's
 * open would block here forever), refused as a source, skipped inside a
 * directory; the digest only names them. */
TEST(copy_special_files_are_never_opened)
{
	struct err err = {0};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char hex[SHA256_HEX_LEN + 1];
	int ctx, root, sock;

	alarm(30); /* a FIFO opened by mistake blocks: fail instead of hanging */
	setup(&ctx, &root);
	REQUIRE(mkfifo(tpath("ctx/src/fifo"), 0644) == 0);
	REQUIRE(mkfifo(tpath("ctx/fifo"), 0644) == 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", tpath("ctx/src/sock"));
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(sock >= 0 && bind(sock, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	if (geteuid() == 0)
		REQUIRE(mknod(tpath("ctx/src/null"), S_IFCHR | 0666, makedev(1, 3)) == 0);
	{
		struct copy_source s = {.path = "src"};
		struct copy_request r = {.what = "COPY",
		                         .src_root = ctx,
		                         .context = true,
		                         .srcs = &s,
		                         .n_srcs = 1,
		                         .dest = "/d"};

		CHECK(copy_digest(&r, hex, &err) == 0);
	}
	REQUIRE(copy(ctx, root, "src", "/d", false, NULL, &err) == 0);
	CHECK(path_is_file(tpath("root/d/a.txt")));
	CHECK(!path_exists(tpath("root/d/fifo")) && !path_exists(tpath("root/d/sock")) &&
	      !path_exists(tpath("root/d/null")));
	CHECK(copy(ctx, root, "fifo", "/f", false, NULL, &err) < 0);
	CHECK_CONTAINS(err.msg, "fifo is a FIFO");
	CHECK(copy(ctx, root, "src/sock", "/s", false, NULL, &err) < 0);
	CHECK_CONTAINS(err.msg, "src/sock is a socket");
	if (geteuid() == 0) {
		CHECK(copy(ctx, root, "src/null", "/n", false, NULL, &err) < 0);
		CHECK_CONTAINS(err.msg, "src/null is a character device");
	}
	CHECK(!path_exists(tpath("root/f")) && !path_exists(tpath("root/s")));
	close(sock);
}

/* Hashing and copying stop at the build's deadline. */
TEST(copy_stops_at_the_deadline)
{
	struct copy_request extra = {.deadline = mono_now() - 1};
	struct copy_source s = {.path = "src"};
	struct copy_request r = {.what = "COPY",
	                         .src_root = 0,
	                         .context = true,
	                         .srcs = &s,
	                         .n_srcs = 1,
	                         .dest = "/late",
	                         .deadline = mono_now() - 1};
	struct err err = {0};
	char hex[SHA256_HEX_LEN + 1];
	int ctx, root;

	setup(&ctx, &root);
	r.src_root = ctx;
	CHECK(copy_digest(&r, hex, &err) < 0);
	CHECK_INT(err.code, ETIMEDOUT);
	CHECK(copy(ctx, root, "src", "/late", false, &extra, &err) < 0);
	CHECK_INT(err.code, ETIMEDOUT);
	CHECK_CONTAINS(err.msg, "timed out while copying");
	extra.deadline = mono_now() + 60;
	CHECK(copy(ctx, root, "src", "/late", false, &extra, &err) == 0);
}
