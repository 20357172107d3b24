/* Unit tests for the confined I/O layer (src/util/confined.c): every operation on
 * a directory an agent could have filled, with what an agent plants there. Each
 * case runs twice: with openat2 and with the per-component walk. Canaries live
 * in the test's own directory; nothing points at a real system file. */
#include "harness.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define CANARY "canary: the host's own content\n"

/* A trial-like directory "box" and, beside it, a canary file and directory. */
static void setup(struct cdir *box)
{
	struct err err = {0};

	/* Each case runs twice in one scratch directory: start from nothing. */
	rm_rf(tpath("box"), NULL);
	rm_rf(tpath("canary-dir"), NULL);
	write_file(tpath("canary"), CANARY, strlen(CANARY), 0644, NULL);
	tdir("canary-dir");
	write_file(tpath("canary-dir/keep"), CANARY, strlen(CANARY), 0644, NULL);
	tdir("box");
	if (cdir_open_trusted(tpath("box"), box, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
}

static bool canary_intact(void)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ char *text2 = NULL;
	struct stat st;

	if (read_file(tpath("canary"), 4096, &text, NULL, NULL) < 0 || strcmp(text, CANARY) != 0)
		return false;
	if (read_file(tpath("canary-dir/keep"), 4096, &text2, NULL, NULL) < 0 ||
	    strcmp(text2, CANARY) != 0)
		return false;
	return stat(tpath("canary"), &st) == 0 && (st.st_mode & 07777) == 0644 && st.st_nlink == 1;
}

static void both_ways(void (*body)(void))
{
	cdir_force_walk = false;
	body();
	cdir_force_walk = true;
	body();
	cdir_force_walk = false;
}

static void reads_refuse_links_fifos_and_devices_body(void)
{
	_cleanup_cdir_ struct cdir box = CDIR_INIT;
	struct err err = {0};
	char *text = NULL;
	double t0;

	setup(&box);
	symlink(tpath("canary"), tpath("box/link"));
	symlink(tpath("canary-dir"), tpath("box/dirlink"));
	mkfifo(tpath("box/fifo"), 0644);
	CHECK(cdir_read(&box, "link", 4096, &text, NULL, &err) < 0);
	CHECK_INT(err.code, ELOOP);
	CHECK(cdir_read(&box, "dirlink/keep", 4096, &text, NULL, &err) < 0);
	t0 = mono_now();
	CHECK(cdir_read(&box, "fifo", 4096, &text, NULL, &err) < 0);
	CHECK(mono_now() - t0 < 5); /* never waits for a writer */
	CHECK_INT(err.code, EINVAL);
	if (geteuid() == 0) {
		CHECK(mknod(tpath("box/null"), S_IFCHR | 0666, makedev(1, 3)) == 0);
		CHECK(cdir_read(&box, "null", 4096, &text, NULL, &err) < 0);
	}
	CHECK(cdir_read(&box, "../canary", 4096, &text, NULL, &err) < 0);
	CHECK(cdir_read(&box, tpath("canary"), 4096, &text, NULL, &err) < 0);
	write_file(tpath("box/ok"), "fine", 4, 0644, NULL);
	REQUIRE(cdir_read(&box, "ok", 4096, &text, NULL, &err) == 0);
	CHECK_STR(text, "fine");
	free(text);
	CHECK(cdir_read(&box, "ok", 2, &text, NULL, &err) < 0);
	CHECK_INT(err.code, EFBIG);
}

TEST(reads_refuse_links_fifos_and_devices)
{
	both_ways(reads_refuse_links_fifos_and_devices_body);
}

static void writes_replace_what_was_planted_body(void)
{
	_cleanup_cdir_ struct cdir box = CDIR_INIT;
	struct err err = {0};
	const char *names[] = {"link", "fifo", "hard", "tree", "dev"};
	struct stat st;

	setup(&box);
	symlink(tpath("canary"), tpath("box/link"));
	mkfifo(tpath("box/fifo"), 0644);
	link(tpath("canary"), tpath("box/hard"));
	tdir("box/tree/a/b");
	write_file(tpath("box/tree/a/b/f"), "x", 1, 0644, NULL);
	if (geteuid() == 0)
		mknod(tpath("box/dev"), S_IFCHR | 0666, makedev(1, 3));
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (cdir_write(&box, names[i], "agent-data", 10, 04777, &err) < 0) {
			test_fail_at(__FILE__, __LINE__, "%s: %s", names[i], err.msg);
			continue;
		}
		REQUIRE(lstat(tpath(tfmt("box/%s", names[i])), &st) == 0);
		CHECK(S_ISREG(st.st_mode));
		CHECK_INT(st.st_mode & 07022, 0); /* no setuid, no group/other write */
		CHECK_INT(st.st_nlink, 1);
	}
	CHECK(canary_intact());
	/* Atomic writes and appends do the same. */
	symlink(tpath("canary"), tpath("box/link2"));
	CHECK(cdir_write_atomic(&box, "link2", "{}", 2, 0644, &err) == 0);
	link(tpath("canary"), tpath("box/log"));
	int fd = cdir_append(&box, "log", 0644, &err);
	REQUIRE(fd >= 0);
	CHECK(write(fd, "line\n", 5) == 5);
	close(fd);
	symlink(tpath("canary"), tpath("box/lock"));
	fd = cdir_lockfile(&box, "lock", &err);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	CHECK(canary_intact());
	/* No temporary file is left behind. */
	_cleanup_strvs_ struct strv names2 = STRV_INIT;
	REQUIRE(cdir_list(&box, 100, &names2, &err) == 0);
	for (size_t i = 0; i < names2.n; i++)
		CHECK(strncmp(names2.v[i], ".rollout-tmp", 12) != 0);
}

TEST(writes_replace_what_was_planted)
{
	both_ways(writes_replace_what_was_planted_body);
}

static void append_keeps_a_real_log_body(void)
{
	_cleanup_cdir_ struct cdir box = CDIR_INIT;
	struct err err = {0};
	_cleanup_free_ char *text = NULL;
	int fd;

	setup(&box);
	REQUIRE(cdir_write(&box, "job.log", "one\n", 4, 0644, &err) == 0);
	fd = cdir_append(&box, "job.log", 0644, &err);
	REQUIRE(fd >= 0);
	CHECK(write(fd, "two\n", 4) == 4);
	close(fd);
	REQUIRE(cdir_read(&box, "job.log", 100, &text, NULL, &err) == 0);
	CHECK_STR(text, "one\ntwo\n");
}

TEST(append_keeps_a_real_log)
{
	both_ways(append_keeps_a_real_log_body);
}

static void paths_through_links_are_refused_body(void)
{
	_cleanup_cdir_ struct cdir box = CDIR_INIT;
	_cleanup_cdir_ struct cdir sub = CDIR_INIT;
	struct err err = {0};

	setup(&box);
	symlink(tpath("canary-dir"), tpath("box/agent"));
	CHECK(cdir_mkdirs(&box, "agent/command-0", 0755, false, NULL, &err) < 0);
	CHECK(cdir_write(&box, "agent/stdout.txt", "x", 1, 0644, &err) < 0);
	CHECK(!path_exists(tpath("canary-dir/stdout.txt")));
	CHECK(!path_exists(tpath("canary-dir/command-0")));
	CHECK(cdir_sub(&box, "agent", &sub, &err) < 0);
	/* With replace, the link itself goes and a real directory takes its place. */
	REQUIRE(cdir_mkdirs(&box, "agent/command-0", 0777, true, &sub, &err) == 0);
	struct stat st;
	REQUIRE(lstat(tpath("box/agent"), &st) == 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK(cdir_write(&sub, "stdout.txt", "x", 1, 0644, &err) == 0);
	CHECK(path_is_file(tpath("box/agent/command-0/stdout.txt")));
	CHECK(canary_intact());
	CHECK(cdir_remove(&box, "../canary", &err) < 0);
	CHECK(cdir_remove(&box, ".", &err) < 0);
	CHECK(canary_intact());
}

TEST(paths_through_links_are_refused)
{
	both_ways(paths_through_links_are_refused_body);
}

/* A 3,000-deep tree under a 64-descriptor limit: removed, nothing outside touched. */
static void deep_trees_go_with_few_descriptors_body(void)
{
	_cleanup_cdir_ struct cdir box = CDIR_INIT;
	struct err err = {0};
	struct rlimit old, low = {64, 64};
	int fd;

	setup(&box);
	fd = open(tdir("box/deep"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	for (int i = 0; i < 3000; i++) {
		int next;

		REQUIRE(mkdirat(fd, "d", 0755) == 0);
		if (i % 100 == 0)
			symlinkat(tpath("canary"), fd, "l");
		next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		REQUIRE(next >= 0);
		fd = next;
	}
	write_all(openat(fd, "leaf", O_WRONLY | O_CREAT | O_CLOEXEC, 0644), "x", 1);
	close(fd);
	getrlimit(RLIMIT_NOFILE, &old);
	setrlimit(RLIMIT_NOFILE, &low);
	int rc = cdir_remove(&box, "deep", &err);
	setrlimit(RLIMIT_NOFILE, &old);
	if (rc < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	CHECK(!path_exists(tpath("box/deep")));
	_cleanup_strvs_ struct strv left = STRV_INIT;
	REQUIRE(cdir_list(&box, 100, &left, &err) == 0);
	CHECK_INT(left.n, 0);
	CHECK(canary_intact());
}

TEST(deep_trees_go_with_few_descriptors)
{
	both_ways(deep_trees_go_with_few_descriptors_body);
}

TEST(clear_empties_a_directory_in_place)
{
	_cleanup_cdir_ struct cdir box = CDIR_INIT;
	struct err err = {0};
	struct stat before, after;

	setup(&box);
	tdir("box/v/sub");
	write_file(tpath("box/v/reward.txt"), "1", 1, 0644, NULL);
	symlink(tpath("canary"), tpath("box/v/reward.json"));
	mkfifo(tpath("box/v/sub/f"), 0644);
	_cleanup_cdir_ struct cdir v = CDIR_INIT;
	REQUIRE(cdir_sub(&box, "v", &v, &err) == 0);
	stat(tpath("box/v"), &before);
	REQUIRE(cdir_clear(&v, &err) == 0);
	stat(tpath("box/v"), &after);
	CHECK_INT(before.st_ino, after.st_ino);
	_cleanup_strvs_ struct strv left = STRV_INIT;
	REQUIRE(cdir_list(&v, 100, &left, &err) == 0);
	CHECK_INT(left.n, 0);
	CHECK(canary_intact());
}

static void sanitize_body(void)
{
	_cleanup_cdir_ struct cdir box = CDIR_INIT;
	struct sanitize_limits lim = {.max_bytes = 1 << 20, .max_depth = 8};
	struct sanitize_report rep;
	struct err err = {0};
	struct stat st;
	int fd;

	setup(&box);
	tdir("box/a/b");
	write_file(tpath("box/suid"), "x", 1, 0644, NULL);
	chmod(tpath("box/suid"), 06777);
	chmod(tpath("box/a"), 0777 | S_ISVTX);
	symlink("/etc", tpath("box/abs"));
	symlink("../../x", tpath("box/a/up"));   /* climbs out of box */
	symlink("../suid", tpath("box/a/fine")); /* stays inside */
	mkfifo(tpath("box/a/b/fifo"), 0666);
	/* Sparse: 1 TiB apparent size, nothing allocated. */
	fd = open(tpath("box/sparse"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	REQUIRE(fd >= 0);
	CHECK(ftruncate(fd, 1LL << 40) == 0);
	close(fd);
	setxattr(tpath("box/suid"), "security.capability",
	         "\x01\0\0\x02\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20, 0);
	/* Deeper than max_depth. */
	tdir("box/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10");
	REQUIRE(cdir_sanitize(&box, &lim, &rep, &err) == 0);
	CHECK(!rep.timed_out);
	REQUIRE(lstat(tpath("box/suid"), &st) == 0);
	CHECK_INT(st.st_mode & 07777, 0755);
	CHECK(getxattr(tpath("box/suid"), "security.capability", NULL, 0) < 0);
	REQUIRE(lstat(tpath("box/a"), &st) == 0);
	CHECK_INT(st.st_mode & 07777, 0755);
	CHECK(!path_exists(tpath("box/abs")));
	CHECK(!path_exists(tpath("box/a/up")));
	CHECK(path_exists(tpath("box/a/fine")));
	CHECK(!path_exists(tpath("box/a/b/fifo")));
	CHECK(path_exists(tpath("box/d1/d2/d3/d4/d5/d6/d7/d8")));
	CHECK(!path_exists(tpath("box/d1/d2/d3/d4/d5/d6/d7/d8/d9")));
	REQUIRE(lstat(tpath("box/sparse"), &st) == 0);
	CHECK(st.st_size <= (1 << 20));
	CHECK(st.st_blocks < 64); /* still sparse */
	CHECK(rep.files_truncated >= 1);
	CHECK(rep.links_removed == 2);
	CHECK(rep.special_removed == 1);
	CHECK(rep.deep_removed == 1);
	CHECK(canary_intact());
}

TEST(sanitize_leaves_nothing_setuid_special_or_linked_out)
{
	both_ways(sanitize_body);
}

TEST(sanitize_survives_a_deep_tree_and_stops_at_its_deadline)
{
	_cleanup_cdir_ struct cdir box = CDIR_INIT;
	struct sanitize_limits lim = {0};
	struct sanitize_report rep;
	struct err err = {0};
	int fd;

	setup(&box);
	fd = open(tpath("box"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (int i = 0; i < 3000; i++) {
		int next;

		mkdirat(fd, "d", 0755);
		next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		REQUIRE(next >= 0);
		fd = next;
	}
	close(fd);
	REQUIRE(cdir_sanitize(&box, &lim, &rep, &err) == 0);
	CHECK_INT(rep.deep_removed, 1);
	/* Many entries and a deadline already passed: the walk stops, says so. */
	for (int i = 0; i < 600; i++)
		write_file(tpath(tfmt("box/f%d", i)), "x", 1, 0644, NULL);
	lim.deadline = mono_now() - 1;
	REQUIRE(cdir_sanitize(&box, &lim, &rep, &err) == 0);
	CHECK(rep.timed_out);
}

TEST(copy_keeps_holes_and_caps)
{
	int src, dst;
	bool cut;
	struct stat st;
	long long n;

	src = open(tpath("f"), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	REQUIRE(src >= 0);
	REQUIRE(pwrite(src, "head", 4, 0) == 4);
	REQUIRE(pwrite(src, "tail", 4, (3LL << 30) - 4) == 4); /* 3 GiB apparent */
	dst = open(tpath("dst"), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	n = copy_data_sparse(src, dst, 0, 0, &cut);
	CHECK_INT(n, 3LL << 30);
	CHECK(!cut);
	fstat(dst, &st);
	CHECK_INT(st.st_size, 3LL << 30);
	CHECK(st.st_blocks < 1024);
	char buf[4];
	CHECK(pread(dst, buf, 4, (3LL << 30) - 4) == 4 && memcmp(buf, "tail", 4) == 0);
	close(dst);
	dst = open(tpath("dst2"), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	n = copy_data_sparse(src, dst, 1 << 20, 0, &cut);
	CHECK_INT(n, 1 << 20);
	CHECK(cut);
	close(dst);
	close(src);
}

TEST(copy_tree_masks_and_keeps_links_inside)
{
	_cleanup_cdir_ struct cdir box = CDIR_INIT;
	_cleanup_cdir_ struct cdir out = CDIR_INIT;
	struct err err = {0};
	struct stat st;

	setup(&box);
	tdir("box/t/sub");
	tdir("out");
	write_file(tpath("box/t/suid"), "x", 1, 0644, NULL);
	chmod(tpath("box/t/suid"), 04777);
	write_file(tpath("box/t/plain"), "y", 1, 0644, NULL);
	symlink("/etc", tpath("box/t/abs"));
	symlink("../suid", tpath("box/t/sub/inside"));
	symlink("../../../canary", tpath("box/t/sub/out"));
	mkfifo(tpath("box/t/fifo"), 0644);
	REQUIRE(cdir_open_trusted(tpath("out"), &out, &err) == 0);
	REQUIRE(cdir_copy_tree(&box, "t", &out, "copy", true, &err) == 0);
	REQUIRE(lstat(tpath("out/copy/suid"), &st) == 0);
	CHECK_INT(st.st_mode & 07777, 0755);
	CHECK_INT(st.st_nlink, 1); /* not safe as it was: copied, not linked */
	REQUIRE(lstat(tpath("out/copy/plain"), &st) == 0);
	CHECK_INT(st.st_nlink, 2); /* safe: hard-linked */
	CHECK(!path_exists(tpath("out/copy/abs")));
	CHECK(!path_exists(tpath("out/copy/sub/out")));
	CHECK(path_exists(tpath("out/copy/sub/inside")));
	CHECK(!path_exists(tpath("out/copy/fifo")));
	/* An existing target is refused. */
	CHECK(cdir_copy_tree(&box, "t", &out, "copy", true, &err) < 0);
	CHECK(canary_intact());
}
