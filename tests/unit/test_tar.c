/* Unit tests for src/image/tar*.c and util/inroot.c: reading what GNU tar writes, writing
 * what it reads, base-256/PAX/GNU headers, malformed input, extraction of hostile
 * archives (nothing may appear outside the root), overlay whiteouts, host trees. */
#include "harness.h"
#include "image/tar.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/inroot.h"
#include "rollout/strbuf.h"
#include "tree_compare.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

/* ---- helpers ---- */

static int sb_output(void *ctx, const void *data, size_t n, struct err *err)
{
	sb_add(ctx, data, n);
	return 0;
}

static struct tar_writer *mem_writer(struct strbuf *sb)
{
	struct tar_output out = {sb_output, sb};

	return tar_writer_new(&out);
}

static char *tmp(const char *name)
{
	return xasprintf("%s/%s", test_tmpdir(), name);
}

static int open_dir(const char *path)
{
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Extract a tar held in memory into dir; returns the tar_extract result. */
static int extract_mem(const struct strbuf *sb, const char *dir, const struct tar_extract_opts *o,
                       struct err *err)
{
	struct tar_reader *r = tar_reader_new_mem(sb->buf, sb->len);
	_cleanup_close_ int fd = open_dir(dir);
	int ret;

	if (fd < 0)
		return err_sys(err, "open %s", dir);
	ret = tar_extract(r, fd, o, NULL, err);
	tar_reader_free(r);
	return ret;
}

static void add_dir(struct tar_writer *w, const char *path, uint32_t mode)
{
	struct tar_entry e = {.type = TAR_DIR, .path = (char *)path, .mode = mode, .mtime = 1000};
	struct err err;

	if (tar_writer_header(w, &e, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
}

static void add_link(struct tar_writer *w, enum tar_type type, const char *path, const char *target)
{
	struct tar_entry e = {.type = type,
	                      .path = (char *)path,
	                      .linkpath = (char *)target,
	                      .mode = 0777,
	                      .mtime = 1000};
	struct err err;

	if (tar_writer_header(w, &e, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
}

static void add_file(struct tar_writer *w, const char *path, const char *content)
{
	struct err err;

	if (tar_writer_add_file(w, path, 0644, content, strlen(content), &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
}

static void finish(struct tar_writer *w)
{
	struct err err;

	if (tar_writer_finish(w, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	tar_writer_free(w);
}

/* ---- inroot ---- */

static void check_inroot(void)
{
	_cleanup_free_ char *root = tmp("root"), *outside = tmp("outside");
	_cleanup_close_ int rfd = -1, fd = -1;
	struct stat a, b;

	REQUIRE(tsh("mkdir -p %s/etc %s/etc && echo in >%s/etc/passwd && echo out >%s/etc/passwd",
	            root, outside, root, outside) == 0);
	REQUIRE(tsh("cd %s && ln -s /etc abs && ln -s ../../../../etc rel && ln -s loop loop && "
	            "ln -s /proc/self/root/etc magic && ln -s etc/passwd file",
	            root) == 0);
	rfd = open_dir(root);
	REQUIRE(rfd >= 0);
	REQUIRE(stat(tfmt("%s/etc/passwd", root), &a) == 0);
	for (int i = 0; i < 3; i++) {
		const char *p = (const char *[]){"abs/passwd", "rel/passwd", "/../etc/passwd"}[i];

		fd = inroot_open(rfd, p, O_RDONLY, 0);
		CHECK(fd >= 0);
		if (fd >= 0) {
			CHECK(fstat(fd, &b) == 0 && a.st_ino == b.st_ino);
			close(fd);
		}
	}
	fd = inroot_open(rfd, "loop/x", O_RDONLY, 0);
	CHECK(fd < 0 && errno == ELOOP);
	/* /proc is not in the root: the magic link is never reached. */
	fd = inroot_open(rfd, "magic/passwd", O_RDONLY, 0);
	CHECK(fd < 0);
	fd = inroot_open(rfd, "file", O_RDONLY | O_NOFOLLOW, 0);
	CHECK(fd < 0 && errno == ELOOP);
	fd = inroot_open(rfd, "abs/new", O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	CHECK(path_exists(tfmt("%s/etc/new", root)));
	CHECK(!path_exists(tfmt("%s/etc/new", outside)));
	fd = inroot_open(rfd, "", O_PATH | O_DIRECTORY, 0);
	CHECK(fd >= 0 && fstat(fd, &b) == 0 && fstat(rfd, &a) == 0 && a.st_ino == b.st_ino);
	fd = -1;
}

TEST(inroot_open_confines_symlinks_openat2)
{
	check_inroot();
}

TEST(inroot_open_confines_symlinks_fallback)
{
	inroot_force_fallback = true;
	check_inroot();
}

/* ---- reader and writer ---- */

TEST(tar_roundtrip_every_field)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&sb);
	struct tar_reader *r;
	const struct tar_entry *e;
	struct err err;
	char longname[400], longlink[300], buf[64];
	static const char bin[] = {'a', 0, 'b'};
	struct tar_xattr xa[2] = {{"user.text", "hello", 5}, {"user.bin", (void *)bin, 3}};
	struct tar_entry ents[] = {
	    {.type = TAR_DIR, .path = "d", .mode = 0755, .uid = 1, .gid = 2, .mtime = 1700000000},
	    {.type = TAR_REG,
	     .path = "d/f",
	     .mode = 04755,
	     .uid = 1000,
	     .gid = 2000,
	     .size = 5,
	     .mtime = 1234567890,
	     .xattrs = xa,
	     .n_xattrs = 2},
	    {.type = TAR_SYMLINK, .path = "d/l", .linkpath = "../target/x", .mode = 0777},
	    {.type = TAR_HARDLINK, .path = "d/h", .linkpath = "d/f"},
	    {.type = TAR_FIFO, .path = "d/p", .mode = 0600},
	    {.type = TAR_CHAR, .path = "d/c", .mode = 0666, .devmajor = 1, .devminor = 3},
	    {.type = TAR_BLOCK, .path = "d/b", .mode = 0660, .devmajor = 259, .devminor = 70000},
	    {.type = TAR_REG, .path = longname, .mode = 0600, .size = 0},
	    {.type = TAR_SYMLINK, .path = "d/long", .linkpath = longlink},
	    {.type = TAR_REG,
	     .path = "d/bigid",
	     .uid = 3000000000u,
	     .gid = 70000000,
	     .mtime = -100},
	    {.type = TAR_REG, .path = "d/ns", .mtime = 5, .mtime_nsec = 123456789},
	    {.type = TAR_REG, .path = "d/negns", .mtime = -2, .mtime_nsec = 750000000},
	};

	memset(longname, 'n', sizeof(longname));
	memcpy(longname, "d/", 2);
	longname[120] = '/';
	longname[sizeof(longname) - 1] = '\0';
	memset(longlink, 'k', sizeof(longlink));
	longlink[sizeof(longlink) - 1] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(ents); i++) {
		REQUIRE(tar_writer_header(w, &ents[i], &err) == 0);
		if (ents[i].size)
			REQUIRE(tar_writer_data(w, "hello", 5, &err) == 0);
	}
	finish(w);
	CHECK_INT(sb.len % 512, 0);

	r = tar_reader_new_mem(sb.buf, sb.len);
	for (size_t i = 0; i < ARRAY_SIZE(ents); i++) {
		REQUIRE(tar_reader_next(r, &e, &err) == 1);
		CHECK_INT(e->type, ents[i].type);
		if (ents[i].type == TAR_DIR)
			CHECK_STR(e->path, "d/");
		else
			CHECK_STR(e->path, ents[i].path);
		if (ents[i].linkpath)
			CHECK_STR(e->linkpath, ents[i].linkpath);
		CHECK_INT(e->mode, ents[i].mode);
		CHECK_INT(e->uid, ents[i].uid);
		CHECK_INT(e->gid, ents[i].gid);
		CHECK_INT(e->size, ents[i].size);
		CHECK_INT(e->mtime, ents[i].mtime);
		CHECK_INT(e->mtime_nsec, ents[i].mtime_nsec);
		CHECK_INT(e->devmajor, ents[i].devmajor);
		CHECK_INT(e->devminor, ents[i].devminor);
		CHECK_INT(e->n_xattrs, ents[i].n_xattrs);
		for (size_t x = 0; x < e->n_xattrs && x < ents[i].n_xattrs; x++) {
			CHECK_STR(e->xattrs[x].name, ents[i].xattrs[x].name);
			CHECK_INT(e->xattrs[x].len, ents[i].xattrs[x].len);
			CHECK(memcmp(e->xattrs[x].value, ents[i].xattrs[x].value,
			             e->xattrs[x].len) == 0);
		}
		if (ents[i].size) {
			CHECK_INT(tar_reader_read(r, buf, sizeof(buf), &err), 5);
			CHECK(memcmp(buf, "hello", 5) == 0);
		}
	}
	CHECK_INT(tar_reader_next(r, &e, &err), 0);
	CHECK_INT(tar_reader_drain(r, &err), 0);
	CHECK_INT(tar_reader_offset(r), sb.len);
	tar_reader_free(r);
}

/* GNU tar reads what we write (a cross-check of checksums, PAX and base-256). */
TEST(tar_writer_output_is_read_by_gnu_tar)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&sb);
	_cleanup_free_ char *path = tmp("w.tar"), *out = tmp("out");
	char longname[300];
	struct err err;
	struct tar_entry big = {
	    .type = TAR_REG, .path = "bigid", .uid = 3000000000u, .mode = 0644, .mtime = 1};

	memset(longname, 'x', sizeof(longname));
	longname[150] = '/'; /* components stay under NAME_MAX */
	longname[sizeof(longname) - 1] = '\0';
	add_dir(w, "dir", 0755);
	add_file(w, "dir/a.txt", "alpha\n");
	add_file(w, longname, "long\n");
	add_link(w, TAR_SYMLINK, "dir/sym", "a.txt");
	add_link(w, TAR_HARDLINK, "dir/hard", "dir/a.txt");
	REQUIRE(tar_writer_header(w, &big, &err) == 0);
	finish(w);
	REQUIRE(write_file(path, sb.buf, sb.len, 0644, &err) == 0);
	REQUIRE(tsh("mkdir %s && tar --numeric-owner -xf %s -C %s", out, path, out) == 0);
	CHECK(tsh("test \"$(cat %s/dir/a.txt)\" = alpha", out) == 0);
	CHECK(tsh("test \"$(cat %s/%s)\" = long", out, longname) == 0);
	CHECK(tsh("test \"$(readlink %s/dir/sym)\" = a.txt", out) == 0);
	CHECK(tsh("test %s/dir/hard -ef %s/dir/a.txt", out, out) == 0);
	CHECK(tsh("tar --numeric-owner -tvf %s | grep -q ' 3000000000/0 .* bigid'", path) == 0);
}

static void check_gnu_tar_format(const char *format, bool long_names, bool specials)
{
	_cleanup_free_ char *src = tmp("src"), *dst = tmp("dst"), *arc = tmp("a.tar");
	_cleanup_sb_ struct strbuf diff = STRBUF_INIT;
	struct tar_extract_opts o = {.flags = TAR_X_OWNERS | TAR_X_SETID | TAR_X_DEVICES};
	_cleanup_close_ int fd = -1, dfd = -1;
	struct tar_reader *r;
	struct err err;
	bool root = geteuid() == 0;

	REQUIRE(tsh("mkdir -p %s/a/b/c %s && cd %s && echo hello >a/file && "
	            "head -c 100000 /dev/urandom >a/b/random && ln -s ../file a/b/rel && "
	            "ln -s /etc/passwd a/abs && ln a/file a/b/hard && "
	            "chmod 4755 a/file && chmod 0555 a/b/c && touch -d @1500000000 a/b/random && "
	            "touch -h -d @1400000000 a/b/rel",
	            src, dst, src) == 0);
	if (long_names)
		REQUIRE(
		    tsh("cd %s && mkdir -p a/%0120d/%0120d && echo deep >a/%0120d/%0120d/%0100d && "
		        "ln -s %0150d a/longlink",
		        src, 1, 2, 1, 2, 3, 4) == 0);
	if (specials)
		REQUIRE(tsh("mkfifo %s/a/fifo", src) == 0);
	if (root)
		REQUIRE(tsh("cd %s && chown 1234:5678 a/file", src) == 0);
	if (root && specials)
		REQUIRE(tsh("mknod %s/a/null c 1 3", src) == 0);
	REQUIRE(tsh("cd %s && touch -d @1600000000 a/b/c a/b a && tar --format=%s --numeric-owner "
	            "-cf %s a",
	            src, format, arc) == 0);
	fd = open(arc, O_RDONLY | O_CLOEXEC);
	dfd = open_dir(dst);
	r = tar_reader_new_fd(fd);
	if (tar_extract(r, dfd, &o, NULL, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "extract: %s", err.msg);
	tar_reader_free(r);
	if (!tree_compare(tfmt("%s/a", src), tfmt("%s/a", dst), "a", root ? 0 : TREE_CMP_NO_OWNER,
	                  &diff))
		test_fail_at(__FILE__, __LINE__, "trees differ (%s):\n%s", format, diff.buf);
	CHECK(tsh("test %s/a/file -ef %s/a/b/hard", dst, dst) == 0);
}

TEST(tar_extracts_gnu_format)
{
	check_gnu_tar_format("gnu", true, true);
}

TEST(tar_extracts_posix_pax_format)
{
	check_gnu_tar_format("posix", true, true);
}

TEST(tar_extracts_ustar_format)
{
	check_gnu_tar_format("ustar", false, true);
}

TEST(tar_extracts_v7_format)
{
	check_gnu_tar_format("v7", false, false);
}

TEST(tar_extract_restores_xattrs)
{
	_cleanup_free_ char *src = tmp("src"), *dst = tmp("dst"), *arc = tmp("a.tar");
	_cleanup_sb_ struct strbuf diff = STRBUF_INIT;
	struct tar_extract_opts o = {.flags = TAR_X_OWNERS | TAR_X_XATTRS | TAR_X_SETID};
	_cleanup_close_ int fd = -1, dfd = -1;
	struct tar_reader *r;
	struct err err;

	REQUIRE(tsh("mkdir -p %s/x/d %s && echo a >%s/x/f", src, dst, src) == 0);
	if (setxattr(tfmt("%s/x/f", src), "user.color", "blue", 4, 0) < 0)
		SKIP("the file system has no user xattrs");
	REQUIRE(setxattr(tfmt("%s/x/d", src), "user.dir", "1", 1, 0) == 0);
	REQUIRE(tsh("cd %s && tar --xattrs --xattrs-include='*' --format=posix -cf %s x", src,
	            arc) == 0);
	fd = open(arc, O_RDONLY | O_CLOEXEC);
	dfd = open_dir(dst);
	r = tar_reader_new_fd(fd);
	CHECK(tar_extract(r, dfd, &o, NULL, &err) == 0);
	tar_reader_free(r);
	if (!tree_compare(tfmt("%s/x", src), tfmt("%s/x", dst), "x", TREE_CMP_XATTRS, &diff))
		test_fail_at(__FILE__, __LINE__, "trees differ:\n%s", diff.buf);
}

/* Rewrite a numeric field of the first header and fix the checksum. */
static void patch_header(uint8_t *h, size_t off, const uint8_t *val, size_t len)
{
	unsigned sum = 0;

	memcpy(h + off, val, len);
	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
}

TEST(tar_reads_base256_numbers)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&sb);
	const struct tar_entry *e;
	struct tar_reader *r;
	struct err err;
	uint8_t uid[8] = {0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe};            /* 4294967294 */
	uint8_t mtime[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* -2 */
	                     0xff, 0xff, 0xff, 0xfe};
	uint8_t size[12] = {0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x40, 0, 0, 0}; /* 9 GiB */

	add_file(w, "f", "");
	finish(w);
	patch_header((uint8_t *)sb.buf, 108, uid, 8);
	patch_header((uint8_t *)sb.buf, 136, mtime, 12);
	patch_header((uint8_t *)sb.buf, 124, size, 12);
	r = tar_reader_new_mem(sb.buf, sb.len);
	REQUIRE(tar_reader_next(r, &e, &err) == 1);
	CHECK_INT(e->uid, 4294967294u);
	CHECK_INT(e->mtime, -2);
	CHECK_INT(e->size, 9ULL << 30);
	/* The 9 GiB are not there. */
	CHECK(tar_reader_next(r, &e, &err) < 0);
	CHECK_CONTAINS(err.msg, "truncated");
	tar_reader_free(r);
}

static void expect_read_error(const struct strbuf *sb, const char *want)
{
	struct tar_reader *r = tar_reader_new_mem(sb->buf, sb->len);
	const struct tar_entry *e;
	struct err err = {0};
	char buf[4096];
	int ret;

	while ((ret = tar_reader_next(r, &e, &err)) > 0) {
		while ((ret = (int)tar_reader_read(r, buf, sizeof(buf), &err)) > 0)
			;
		if (ret < 0)
			break;
	}
	if (ret >= 0)
		test_fail_at(__FILE__, __LINE__, "expected an error containing '%s'", want);
	else if (!strstr(err.msg, want))
		test_fail_at(__FILE__, __LINE__, "error '%s' does not contain '%s'", err.msg, want);
	tar_reader_free(r);
}

static void raw_entry(struct strbuf *sb, char type, const char *name, const char *data, size_t len)
{
	uint8_t h[512] = {0};
	unsigned sum = 0;
	size_t pad = (512 - len % 512) % 512;

	memcpy(h, name, strlen(name));
	snprintf((char *)h + 100, 8, "%07o", 0644);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011zo", len);
	snprintf((char *)h + 136, 12, "%011o", 0);
	h[156] = (uint8_t)type;
	memcpy(h + 257,
	       "ustar\0"
	       "00",
	       8);
	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	sb_add(sb, h, 512);
	sb_add(sb, data, len);
	for (size_t i = 0; i < pad; i++)
		sb_addc(sb, 0);
}

TEST(tar_rejects_malformed_archives)
{
	struct strbuf sb = STRBUF_INIT;
	struct tar_writer *w;
	char big[5000];

	/* bad checksum */
	w = mem_writer(&sb);
	add_file(w, "f", "data");
	finish(w);
	sb.buf[0] ^= 1;
	expect_read_error(&sb, "checksum");
	/* truncated in the content, and in a header */
	sb.buf[0] ^= 1;
	sb.len = 512 + 2;
	expect_read_error(&sb, "truncated");
	sb.len = 300;
	expect_read_error(&sb, "truncated");
	sb_reset(&sb);
	/* PAX records */
	raw_entry(&sb, 'x', "pax", "99 path=x\n", 10);
	expect_read_error(&sb, "malformed PAX");
	sb_reset(&sb);
	raw_entry(&sb, 'x', "pax", "10 pathx\n", 9);
	expect_read_error(&sb, "malformed PAX");
	sb_reset(&sb);
	raw_entry(&sb, 'x', "pax", "28 GNU.sparse.realsize=1000\n", 28);
	raw_entry(&sb, '0', "f", "", 0);
	expect_read_error(&sb, "sparse");
	sb_reset(&sb);
	/* a path over the limit */
	memset(big, 'a', sizeof(big));
	{
		_cleanup_sb_ struct strbuf rec = STRBUF_INIT;

		sb_addf(&rec, "5010 path=%.4999s\n", big);
		CHECK_INT(rec.len, 5010);
		raw_entry(&sb, 'x', "pax", rec.buf, rec.len);
		raw_entry(&sb, '0', "f", "", 0);
		expect_read_error(&sb, "path longer");
		sb_reset(&sb);
	}
	raw_entry(&sb, 'L', "././@LongLink", big, sizeof(big));
	raw_entry(&sb, '0', "f", "", 0);
	expect_read_error(&sb, "too large");
	sb_reset(&sb);
	/* an extended header over 1 MiB */
	{
		size_t n = (1 << 20) + 10;
		char *huge = xmalloc(n);

		memset(huge, '\n', n);
		raw_entry(&sb, 'x', "pax", huge, n);
		free(huge);
		expect_read_error(&sb, "too large");
		sb_reset(&sb);
	}
	/* too many xattrs */
	{
		_cleanup_sb_ struct strbuf rec = STRBUF_INIT;

		for (int i = 0; i < 200; i++)
			sb_addf(&rec, "27 SCHILY.xattr.user.%03d=v\n", i);
		raw_entry(&sb, 'x', "pax", rec.buf, rec.len);
		raw_entry(&sb, '0', "f", "", 0);
		expect_read_error(&sb, "too many xattrs");
		sb_reset(&sb);
	}
	raw_entry(&sb, 'S', "sparse", "", 0);
	expect_read_error(&sb, "sparse");
	sb_reset(&sb);
	raw_entry(&sb, 'Z', "weird", "", 0);
	expect_read_error(&sb, "unknown entry type 'Z'");
	sb_reset(&sb);
	raw_entry(&sb, '2', "link-without-target", "", 0);
	expect_read_error(&sb, "without a target");
	sb_reset(&sb);
	/* garbage that is not a tar at all */
	sb_adds(&sb, "this is not a tar archive");
	for (int i = 0; i < 600; i++)
		sb_addc(&sb, 'x');
	expect_read_error(&sb, "checksum");
	sb_release(&sb);
}

TEST(tar_reader_skips_with_lseek)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&sb);
	_cleanup_free_ char *path = tmp("big.tar");
	_cleanup_close_ int fd = -1;
	char *blob = xcalloc(1, 3 << 20);
	const struct tar_entry *e;
	struct tar_reader *r;
	struct err err;

	REQUIRE(tar_writer_add_file(w, "big", 0644, blob, 3 << 20, &err) == 0);
	add_file(w, "small", "x");
	finish(w);
	free(blob);
	REQUIRE(write_file(path, sb.buf, sb.len, 0644, &err) == 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	r = tar_reader_new_fd(fd);
	REQUIRE(tar_reader_next(r, &e, &err) == 1);
	CHECK_INT(tar_reader_data_offset(r), 512);
	REQUIRE(tar_reader_next(r, &e, &err) == 1);
	CHECK_STR(e->path, "small");
	CHECK_INT(tar_reader_data_offset(r), 512 + (3 << 20) + 512);
	CHECK_INT(tar_reader_next(r, &e, &err), 0);
	tar_reader_free(r);
	/* Cut inside the skipped content: the lseek past the end is noticed. */
	REQUIRE(truncate(path, 4096) == 0);
	REQUIRE(lseek(fd, 0, SEEK_SET) == 0);
	r = tar_reader_new_fd(fd);
	REQUIRE(tar_reader_next(r, &e, &err) == 1);
	CHECK(tar_reader_next(r, &e, &err) < 0);
	CHECK_CONTAINS(err.msg, "truncated");
	tar_reader_free(r);
}

/* ---- hostile archives ---- */

struct hostile {
	const char *name;
	const char *want_error; /* NULL: must succeed (contained) */
	void (*build)(struct tar_writer *w);
	const char *must_exist; /* inside the root after extraction */
};

/* Absolute path of the canary directory of the current case. */
static char *canary;

static void h_symlink_canary_then_write(struct tar_writer *w)
{
	add_link(w, TAR_SYMLINK, "l", canary);
	add_file(w, "l/evil", "x");
}
static void h_hardlink_canary(struct tar_writer *w)
{
	add_link(w, TAR_HARDLINK, "h", tfmt("%s/secret", canary));
}
static void h_dir_symlink_canary(struct tar_writer *w)
{
	add_link(w, TAR_SYMLINK, "l", canary);
	add_dir(w, "l/sub", 0755);
}

static void h_dotdot(struct tar_writer *w)
{
	add_file(w, "../outside/evil", "x");
}
static void h_dotdot_middle(struct tar_writer *w)
{
	add_file(w, "a/../../outside/evil", "x");
}
static void h_absolute(struct tar_writer *w)
{
	add_file(w, "/outside/abs", "x");
}
static void h_symlink_abs_then_write(struct tar_writer *w)
{
	add_link(w, TAR_SYMLINK, "l", "/outside");
	add_file(w, "l/evil", "x");
}
static void h_symlink_rel_then_write(struct tar_writer *w)
{
	add_link(w, TAR_SYMLINK, "l", "../outside");
	add_file(w, "l/evil", "x");
}
static void h_symlink_root_then_write(struct tar_writer *w)
{
	add_link(w, TAR_SYMLINK, "l", "/");
	add_file(w, "l/etc/evil", "x");
}
static void h_symlink_existing_then_write(struct tar_writer *w)
{
	add_link(w, TAR_SYMLINK, "l", tfmt("%s/secret", canary));
	add_file(w, "l", "overwritten");
}
static void h_hardlink_dotdot(struct tar_writer *w)
{
	add_link(w, TAR_HARDLINK, "h", "../outside/secret");
}
static void h_hardlink_abs(struct tar_writer *w)
{
	add_link(w, TAR_HARDLINK, "h", "/outside/secret");
}
static void h_hardlink_via_symlink(struct tar_writer *w)
{
	add_link(w, TAR_SYMLINK, "l", canary);
	add_link(w, TAR_HARDLINK, "h", "l/secret");
}
static void h_hardlink_to_symlink(struct tar_writer *w)
{
	add_link(w, TAR_SYMLINK, "s", tfmt("%s/secret", canary));
	add_link(w, TAR_HARDLINK, "h", "s");
	add_file(w, "h", "replaced");
}
static void h_root_symlink(struct tar_writer *w)
{
	add_link(w, TAR_SYMLINK, "./", canary);
}
static void h_dir_becomes_symlink(struct tar_writer *w)
{
	add_dir(w, "d", 0755);
	add_link(w, TAR_SYMLINK, "d", canary);
	add_file(w, "d/evil", "x");
}
static void h_symlink_then_dir(struct tar_writer *w)
{
	add_link(w, TAR_SYMLINK, "l", canary);
	add_dir(w, "l", 0755);
	add_file(w, "l/inside", "x");
}
static void h_symlink_chain(struct tar_writer *w)
{
	add_dir(w, "x", 0755);
	add_link(w, TAR_SYMLINK, "x/up", "..");
	add_link(w, TAR_SYMLINK, "x/up2", "up/../..");
	add_file(w, "x/up2/x/up2/escaped", "x");
}
static void h_magic_link(struct tar_writer *w)
{
	add_link(w, TAR_SYMLINK, "m", "/proc/self/cwd");
	add_file(w, "m/evil", "x");
}

static const struct hostile hostile_cases[] = {
    {"dotdot", "leaves the root", h_dotdot, NULL},
    {"dotdot_middle", "leaves the root", h_dotdot_middle, NULL},
    {"absolute", NULL, h_absolute, "outside/abs"},
    {"symlink_abs_then_write", "in the way", h_symlink_abs_then_write, NULL},
    {"symlink_rel_then_write", "in the way", h_symlink_rel_then_write, NULL},
    {"symlink_root_then_write", NULL, h_symlink_root_then_write, "etc/evil"},
    {"symlink_existing_then_write", NULL, h_symlink_existing_then_write, "l"},
    {"hardlink_dotdot", "outside the root", h_hardlink_dotdot, NULL},
    {"hardlink_abs", "not in the archive", h_hardlink_abs, NULL},
    {"hardlink_via_symlink", "not in the archive", h_hardlink_via_symlink, NULL},
    {"hardlink_to_symlink", NULL, h_hardlink_to_symlink, "s"},
    {"root_symlink", "root directory can only be a directory", h_root_symlink, NULL},
    {"dir_becomes_symlink", "in the way", h_dir_becomes_symlink, NULL},
    {"symlink_then_dir", NULL, h_symlink_then_dir, "l/inside"},
    {"symlink_chain", NULL, h_symlink_chain, "escaped"},
    {"magic_link", "in the way", h_magic_link, NULL},
    {"symlink_canary_then_write", "in the way", h_symlink_canary_then_write, NULL},
    {"hardlink_canary", "not in the archive", h_hardlink_canary, NULL},
    {"dir_symlink_canary", "in the way", h_dir_symlink_canary, NULL},
};

static void check_hostile(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(hostile_cases); i++) {
		const struct hostile *c = &hostile_cases[i];
		_cleanup_free_ char *base = tmp(c->name);
		_cleanup_free_ char *root = xasprintf("%s/root", base);
		_cleanup_free_ char *outside = xasprintf("%s/outside", base);
		_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
		struct tar_writer *w = mem_writer(&sb);
		struct tar_extract_opts o = {.flags = TAR_X_OWNERS};
		struct err err = {0};
		int ret;
		struct stat st;

		REQUIRE(tsh("mkdir -p %s %s && echo secret >%s/secret", root, outside, outside) ==
		        0);
		canary = outside;
		c->build(w);
		finish(w);
		/* The archive's root is base/root, and the canary base/outside sits
		 * right next to it, where "../outside" and "/outside" would land. */
		REQUIRE(chdir(root) == 0);
		ret = extract_mem(&sb, root, &o, &err);
		if (c->want_error) {
			if (ret >= 0)
				test_fail_at(__FILE__, __LINE__, "%s: no error", c->name);
			else if (!strstr(err.msg, c->want_error))
				test_fail_at(__FILE__, __LINE__, "%s: error '%s' lacks '%s'",
				             c->name, err.msg, c->want_error);
		} else if (ret < 0) {
			test_fail_at(__FILE__, __LINE__, "%s: %s", c->name, err.msg);
		}
		if (c->must_exist && !path_exists(tfmt("%s/%s", root, c->must_exist)))
			test_fail_at(__FILE__, __LINE__, "%s: %s not created inside", c->name,
			             c->must_exist);
		if (tree_count_entries(outside) != 1 ||
		    tsh("test \"$(cat %s/secret)\" = secret", outside) != 0 ||
		    stat(tfmt("%s/secret", outside), &st) < 0 || st.st_nlink != 1)
			test_fail_at(__FILE__, __LINE__, "%s: the canary directory changed",
			             c->name);
		if (tree_count_entries(base) != 2)
			test_fail_at(__FILE__, __LINE__, "%s: something appeared next to the root",
			             c->name);
	}
}

TEST(tar_hostile_archives_stay_inside_openat2)
{
	check_hostile();
}

TEST(tar_hostile_archives_stay_inside_fallback)
{
	inroot_force_fallback = true;
	check_hostile();
}

TEST(tar_limits_bytes_and_entries)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&sb);
	_cleanup_free_ char *root = tmp("root");
	struct tar_extract_opts o = {.max_bytes = 10};
	struct err err;

	add_file(w, "a", "12345");
	add_file(w, "b", "123456");
	finish(w);
	REQUIRE(mkdir(root, 0755) == 0);
	CHECK(extract_mem(&sb, root, &o, &err) < 0);
	CHECK_CONTAINS(err.msg, "exceeds the limit of 10 bytes");
	CHECK_CONTAINS(err.msg, "entry 'b'");
	o.max_bytes = 0;
	o.max_entries = 1;
	CHECK(extract_mem(&sb, root, &o, &err) < 0);
	CHECK_CONTAINS(err.msg, "more than 1 entries");
}

TEST(tar_setid_bits_need_the_flag)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&sb);
	_cleanup_free_ char *root = tmp("root");
	struct tar_entry e = {.type = TAR_REG, .path = "suid", .mode = 06755};
	struct tar_extract_opts o = {0};
	struct err err;
	struct stat st;

	REQUIRE(tar_writer_header(w, &e, &err) == 0);
	finish(w);
	REQUIRE(mkdir(root, 0755) == 0);
	REQUIRE(extract_mem(&sb, root, &o, &err) == 0);
	REQUIRE(stat(tfmt("%s/suid", root), &st) == 0);
	CHECK_INT(st.st_mode & 07777, 0755);
	o.flags = TAR_X_SETID;
	REQUIRE(extract_mem(&sb, root, &o, &err) == 0);
	REQUIRE(stat(tfmt("%s/suid", root), &st) == 0);
	CHECK_INT(st.st_mode & 07777, 06755);
}

TEST(tar_directory_metadata_applied_last)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&sb);
	_cleanup_free_ char *root = tmp("root");
	struct tar_entry d = {.type = TAR_DIR, .path = "ro", .mode = 0555, .mtime = 1111111111};
	struct tar_entry top = {.type = TAR_DIR, .path = "./", .mode = 0711, .mtime = 1222222222};
	struct err err;
	struct stat st;

	REQUIRE(tar_writer_header(w, &top, &err) == 0);
	REQUIRE(tar_writer_header(w, &d, &err) == 0);
	add_file(w, "ro/f", "x");
	add_dir(w, "ro/sub", 0700);
	add_file(w, "ro/sub/g", "y");
	finish(w);
	REQUIRE(mkdir(root, 0755) == 0);
	REQUIRE(extract_mem(&sb, root, NULL, &err) == 0);
	REQUIRE(stat(tfmt("%s/ro", root), &st) == 0);
	CHECK_INT(st.st_mode & 07777, 0555);
	CHECK_INT(st.st_mtim.tv_sec, 1111111111);
	REQUIRE(stat(root, &st) == 0);
	CHECK_INT(st.st_mode & 07777, 0711);
	CHECK_INT(st.st_mtim.tv_sec, 1222222222);
	CHECK(path_is_file(tfmt("%s/ro/sub/g", root)));
	/* Missing parents are created 0755. */
	sb_reset(&sb);
	w = mem_writer(&sb);
	add_file(w, "x/y/z", "deep");
	finish(w);
	REQUIRE(extract_mem(&sb, root, NULL, &err) == 0);
	REQUIRE(stat(tfmt("%s/x/y", root), &st) == 0);
	CHECK_INT(st.st_mode & 07777, 0755);
}

TEST(tar_replaces_existing_entries)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&sb);
	_cleanup_free_ char *root = tmp("root");
	struct err err;

	add_dir(w, "a", 0755);
	add_file(w, "a/old", "x");
	add_file(w, "a", "now a file"); /* directory replaced by a file */
	add_file(w, "b", "file");
	add_dir(w, "b", 0700); /* file replaced by a directory */
	add_link(w, TAR_SYMLINK, "c", "b");
	add_link(w, TAR_SYMLINK, "c", "a"); /* symlink replaced */
	add_dir(w, "b", 0750);              /* directories merge */
	finish(w);
	REQUIRE(mkdir(root, 0755) == 0);
	REQUIRE(extract_mem(&sb, root, NULL, &err) == 0);
	CHECK(tsh("test \"$(cat %s/a)\" = 'now a file'", root) == 0);
	CHECK(path_is_dir(tfmt("%s/b", root)));
	CHECK(tsh("test \"$(readlink %s/c)\" = a", root) == 0);
	CHECK(tsh("test \"$(stat -c %%a %s/b)\" = 750", root) == 0);
}

static int strip_agent_prefix(void *ctx, struct tar_entry *e, struct err *err)
{
	if (str_ends_with(e->path, ".me"))
		return 1;
	if (str_starts_with(e->path, "agent/"))
		e->path += 6;
	return 0;
}

TEST(tar_filter_rewrites_and_skips)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&sb);
	_cleanup_free_ char *root = tmp("root");
	struct tar_extract_opts o = {0};
	struct tar_extract_stats st;
	struct err err;
	_cleanup_close_ int fd = -1;
	struct tar_reader *r;

	add_file(w, "agent/log.txt", "log");
	add_file(w, "agent/skip.me", "no");
	finish(w);
	REQUIRE(mkdir(root, 0755) == 0);
	o.filter = strip_agent_prefix;
	fd = open_dir(root);
	r = tar_reader_new_mem(sb.buf, sb.len);
	REQUIRE(tar_extract(r, fd, &o, &st, &err) == 0);
	tar_reader_free(r);
	CHECK(path_is_file(tfmt("%s/log.txt", root)));
	CHECK(!path_exists(tfmt("%s/skip.me", root)));
	CHECK_INT(st.entries, 1);
	CHECK_INT(st.skipped, 1);
	CHECK_INT(st.bytes, 3);
}

/* ---- overlay form ---- */

static void check_overlay_whiteouts(enum tar_whiteouts mode, const char *prefix)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&sb);
	_cleanup_free_ char *root = tmp("root");
	_cleanup_free_ char *opaque = xasprintf("%s.overlay.opaque", prefix);
	_cleanup_free_ char *image_xattr = xasprintf("%s.overlay.redirect", prefix);
	_cleanup_free_ char *escaped = xasprintf("%s.overlay.overlay.redirect", prefix);
	struct tar_xattr xa = {image_xattr, "/evil", 5};
	struct tar_entry x = {
	    .type = TAR_DIR, .path = "x", .mode = 0755, .xattrs = &xa, .n_xattrs = 1};
	struct tar_extract_opts o = {.flags = TAR_X_OWNERS | TAR_X_XATTRS, .whiteouts = mode};
	struct err err;
	struct stat st;
	char v[16];

	add_dir(w, "d", 0755);
	add_file(w, "d/keep", "k");
	add_file(w, "d/.wh.gone", "");
	add_file(w, ".wh.top", "");
	add_dir(w, "o", 0755);
	add_file(w, "o/new", "n");
	add_file(w, "o/.wh..wh..opq", ""); /* after the layer's own entry: still opaque */
	add_file(w, ".wh..wh.plnk", "");   /* AUFS metadata: ignored */
	add_file(w, "d/.wh.keep", "");     /* same-layer file survives */
	add_file(w, "n/.wh..wh..opq", ""); /* directory without its own entry */
	REQUIRE(tar_writer_header(w, &x, &err) == 0);
	finish(w);
	REQUIRE(mkdir(root, 0755) == 0);
	if (extract_mem(&sb, root, &o, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	REQUIRE(lstat(tfmt("%s/d/gone", root), &st) == 0);
	CHECK(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
	REQUIRE(lstat(tfmt("%s/top", root), &st) == 0);
	CHECK(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
	CHECK(path_is_file(tfmt("%s/d/keep", root)));
	CHECK(!path_exists(tfmt("%s/d/.wh.gone", root)));
	CHECK(!path_exists(tfmt("%s/.wh..wh.plnk", root)));
	CHECK_INT(getxattr(tfmt("%s/o", root), opaque, v, sizeof(v)), 1);
	CHECK_INT(getxattr(tfmt("%s/n", root), opaque, v, sizeof(v)), 1);
	CHECK(getxattr(tfmt("%s/d", root), opaque, v, sizeof(v)) < 0);
	CHECK(path_is_file(tfmt("%s/o/new", root)));
	/* The image's own overlay xattr is escaped, never interpreted. */
	CHECK(getxattr(tfmt("%s/x", root), image_xattr, v, sizeof(v)) < 0);
	CHECK_INT(getxattr(tfmt("%s/x", root), escaped, v, sizeof(v)), 5);
}

TEST(tar_overlay_whiteouts_trusted)
{
	if (geteuid() != 0)
		SKIP("trusted.* xattrs need root");
	check_overlay_whiteouts(TAR_WHITEOUTS_OVERLAY, "trusted");
}

TEST(tar_overlay_whiteouts_user)
{
	if (setxattr(test_tmpdir(), "user.probe", "1", 1, 0) < 0)
		SKIP("no user xattrs on this file system");
	check_overlay_whiteouts(TAR_WHITEOUTS_OVERLAY_USER, "user");
}

TEST(tar_whiteout_then_directory_is_opaque)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&sb);
	_cleanup_free_ char *root = tmp("root");
	struct tar_extract_opts o = {.whiteouts = TAR_WHITEOUTS_OVERLAY};
	struct err err;
	char v[4];

	if (geteuid() != 0)
		SKIP("trusted.* xattrs need root");
	add_file(w, ".wh.d", "");
	add_dir(w, "d", 0755);
	add_dir(w, "e", 0755);
	add_file(w, ".wh.e", "");
	finish(w);
	REQUIRE(mkdir(root, 0755) == 0);
	REQUIRE(extract_mem(&sb, root, &o, &err) == 0);
	CHECK(path_is_dir(tfmt("%s/d", root)));
	CHECK_INT(getxattr(tfmt("%s/d", root), "trusted.overlay.opaque", v, sizeof(v)), 1);
	CHECK_INT(getxattr(tfmt("%s/e", root), "trusted.overlay.opaque", v, sizeof(v)), 1);
}

TEST(tar_invalid_whiteout_is_an_error)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&sb);
	_cleanup_free_ char *root = tmp("root");
	struct tar_extract_opts o = {.whiteouts = TAR_WHITEOUTS_OVERLAY};
	struct err err;

	add_file(w, "d/.wh.", "");
	finish(w);
	REQUIRE(mkdir(root, 0755) == 0);
	CHECK(extract_mem(&sb, root, &o, &err) < 0);
	CHECK_CONTAINS(err.msg, "invalid whiteout");
}

TEST(tar_hardlink_to_lower_layer_is_copied_up)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&sb);
	_cleanup_free_ char *lower = tmp("lower"), *upper = tmp("upper");
	_cleanup_close_ int lfd = -1;
	struct tar_extract_opts o = {.flags = TAR_X_OWNERS};
	struct err err;
	struct stat a, b;

	REQUIRE(tsh("mkdir -p %s/bin %s && printf tool >%s/bin/tool && chmod 751 %s/bin/tool && "
	            "touch -d @1300000000 %s/bin/tool",
	            lower, upper, lower, lower, lower) == 0);
	add_link(w, TAR_HARDLINK, "bin/tool2", "bin/tool");
	finish(w);
	CHECK(extract_mem(&sb, upper, &o, &err) < 0);
	CHECK_CONTAINS(err.msg, "not in the archive");
	lfd = open_dir(lower);
	o.lowers = &lfd;
	o.n_lowers = 1;
	REQUIRE(extract_mem(&sb, upper, &o, &err) == 0);
	REQUIRE(stat(tfmt("%s/bin/tool", upper), &a) == 0);
	REQUIRE(stat(tfmt("%s/bin/tool2", upper), &b) == 0);
	CHECK(a.st_ino == b.st_ino);
	CHECK_INT(a.st_mode & 07777, 0751);
	CHECK_INT(a.st_mtim.tv_sec, 1300000000);
	CHECK(tsh("test \"$(cat %s/bin/tool2)\" = tool", upper) == 0);
	/* The lower layer is untouched. */
	REQUIRE(stat(tfmt("%s/bin/tool", lower), &a) == 0);
	CHECK_INT(a.st_nlink, 1);
}

/* ---- host trees ---- */

TEST(tar_write_tree_roundtrip)
{
	_cleanup_free_ char *src = tmp("src"), *dst = tmp("dst"), *arc = tmp("t.tar");
	_cleanup_sb_ struct strbuf diff = STRBUF_INIT;
	_cleanup_close_ int fd = -1, dfd = -1;
	struct tar_tree_opts to = {.flags = TAR_TREE_XATTRS | TAR_TREE_SORTED, .fixed_mtime = -1};
	struct tar_extract_opts xo = {.flags = TAR_X_OWNERS | TAR_X_XATTRS | TAR_X_SETID};
	struct tar_writer *w;
	struct tar_reader *r;
	struct err err;

	REQUIRE(tsh("mkdir -p %s/t/sub/deeper %s && cd %s/t && echo one >one && "
	            "head -c 300000 /dev/urandom >sub/rand && ln -s ../one sub/link && "
	            "ln one sub/hard && mkfifo fifo && chmod 2750 sub && chmod 4711 one && "
	            "mkdir -p %0110d/%0110d && echo x >%0110d/%0110d/%0110d && "
	            "touch -d @1400000000 sub/deeper sub . ",
	            src, dst, src, 1, 2, 1, 2, 3) == 0);
	setxattr(tfmt("%s/t/one", src), "user.k", "v", 1, 0);
	fd = open(arc, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	w = tar_writer_new_fd(fd);
	REQUIRE(tar_write_tree(w, AT_FDCWD, tfmt("%s/t", src), "t", &to, &err) == 0);
	REQUIRE(tar_writer_finish(w, &err) == 0);
	tar_writer_free(w);
	/* GNU tar agrees with the archive. */
	CHECK(tsh("tar -tf %s | grep -qx t/sub/hard", arc) == 0);
	CHECK(tsh("mkdir %s/gnu && tar -xf %s -C %s/gnu && test %s/gnu/t/one -ef %s/gnu/t/sub/hard",
	          src, arc, src, src, src) == 0);
	REQUIRE(lseek(fd, 0, SEEK_SET) == 0);
	dfd = open_dir(dst);
	r = tar_reader_new_fd(fd);
	REQUIRE(tar_extract(r, dfd, &xo, NULL, &err) == 0);
	tar_reader_free(r);
	if (!tree_compare(tfmt("%s/t", src), tfmt("%s/t", dst), "t", TREE_CMP_XATTRS, &diff))
		test_fail_at(__FILE__, __LINE__, "trees differ:\n%s", diff.buf);
	CHECK(tsh("test %s/t/one -ef %s/t/sub/hard", dst, dst) == 0);
}

TEST(tar_write_tree_contents_only_and_single_file)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	_cleanup_free_ char *src = tmp("src");
	struct tar_writer *w = mem_writer(&sb);
	struct tar_tree_opts to = {.flags = TAR_TREE_ROOT_OWNER | TAR_TREE_SORTED,
	                           .fixed_mtime = 42};
	const struct tar_entry *e;
	struct tar_reader *r;
	struct err err;

	REQUIRE(
	    tsh("mkdir -p %s/d/e && echo hi >%s/d/e/f && echo top >%s/file && chown 1:1 %s/file "
	        "2>/dev/null; true",
	        src, src, src, src) == 0);
	REQUIRE(tar_write_tree(w, AT_FDCWD, src, "", &to, &err) == 0);
	REQUIRE(tar_write_tree(w, AT_FDCWD, tfmt("%s/file", src), "renamed", &to, &err) == 0);
	CHECK(tar_write_tree(w, AT_FDCWD, tfmt("%s/file", src), "", &to, &err) < 0);
	finish(w);
	r = tar_reader_new_mem(sb.buf, sb.len);
	const char *want[] = {"d/", "d/e/", "d/e/f", "file", "renamed"};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		REQUIRE(tar_reader_next(r, &e, &err) == 1);
		CHECK_STR(e->path, want[i]);
		CHECK_INT(e->uid, 0);
		CHECK_INT(e->mtime, 42);
	}
	CHECK_INT(tar_reader_next(r, &e, &err), 0);
	tar_reader_free(r);
}

TEST(tar_write_tree_converts_overlay_upper_dir)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	_cleanup_free_ char *up = tmp("upper"), *back = tmp("back");
	_cleanup_sb_ struct strbuf diff = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&sb);
	struct tar_tree_opts to = {.flags = TAR_TREE_OVERLAY | TAR_TREE_XATTRS | TAR_TREE_SORTED,
	                           .fixed_mtime = -1};
	struct tar_extract_opts xo = {.flags = TAR_X_OWNERS | TAR_X_XATTRS,
	                              .whiteouts = TAR_WHITEOUTS_OVERLAY};
	const struct tar_entry *e;
	struct tar_reader *r;
	struct err err;
	_cleanup_strvs_ struct strv names = STRV_INIT;
	bool found_xattr = false;

	if (geteuid() != 0)
		SKIP("whiteout devices and trusted.* xattrs need root");
	REQUIRE(tsh("mkdir -p %s/o %s/d %s && mknod -m 000 %s/d/gone c 0 0 && echo f >%s/o/f && "
	            "echo g >%s/g",
	            up, up, back, up, up, up) == 0);
	REQUIRE(setxattr(tfmt("%s/o", up), "trusted.overlay.opaque", "y", 1, 0) == 0);
	REQUIRE(setxattr(tfmt("%s/g", up), "trusted.overlay.overlay.origin", "img", 3, 0) == 0);
	REQUIRE(setxattr(tfmt("%s/g", up), "trusted.overlay.origin", "kernel", 6, 0) == 0);
	REQUIRE(tar_write_tree(w, AT_FDCWD, up, "", &to, &err) == 0);
	finish(w);
	r = tar_reader_new_mem(sb.buf, sb.len);
	while (tar_reader_next(r, &e, &err) == 1) {
		strv_push(&names, e->path);
		for (size_t i = 0; i < e->n_xattrs; i++) {
			CHECK(!str_starts_with(e->xattrs[i].name, "trusted.overlay.overlay"));
			if (strcmp(e->xattrs[i].name, "trusted.overlay.origin") == 0)
				found_xattr = e->xattrs[i].len == 3;
		}
	}
	tar_reader_free(r);
	CHECK(strv_contains(&names, "d/.wh.gone"));
	CHECK(strv_contains(&names, "o/.wh..wh..opq"));
	CHECK(!strv_contains(&names, "d/gone"));
	CHECK(found_xattr);
	/* Back to overlay form: the same upper dir (minus the kernel's own xattr). */
	REQUIRE(removexattr(tfmt("%s/g", up), "trusted.overlay.origin") == 0);
	REQUIRE(extract_mem(&sb, back, &xo, &err) == 0);
	if (!tree_compare(up, back, ".", TREE_CMP_XATTRS | TREE_CMP_NO_DIR_MTIME, &diff))
		test_fail_at(__FILE__, __LINE__, "trees differ:\n%s", diff.buf);
}

/* Device nodes: created as real root, skipped (with a warning) in a user namespace. */
TEST(tar_devices_only_as_real_root)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&sb);
	_cleanup_free_ char *a = tmp("a"), *b = tmp("b");
	struct tar_entry dev = {
	    .type = TAR_CHAR, .path = "null", .mode = 0666, .devmajor = 1, .devminor = 3};
	struct tar_extract_opts o = {.flags = TAR_X_DEVICES};
	struct err err;
	struct stat st;
	pid_t pid;
	int status;

	if (!tar_real_root())
		SKIP("not real root");
	REQUIRE(tar_writer_header(w, &dev, &err) == 0);
	add_file(w, "f", "x");
	finish(w);
	REQUIRE(mkdir(a, 0777) == 0 && mkdir(b, 0777) == 0);
	REQUIRE(extract_mem(&sb, a, &o, &err) == 0);
	REQUIRE(lstat(tfmt("%s/null", a), &st) == 0);
	CHECK(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
	pid = fork();
	if (pid == 0) {
		struct tar_extract_stats stats;
		struct tar_reader *r;
		int fd;

		/* root inside, mapped to root outside, but only one uid: not real root. */
		if (unshare(CLONE_NEWUSER) < 0 ||
		    write_file("/proc/self/uid_map", "0 0 1", 5, 0644, &err) < 0)
			_exit(77);
		if (tar_real_root())
			_exit(2);
		fd = open_dir(b);
		r = tar_reader_new_mem(sb.buf, sb.len);
		if (tar_extract(r, fd, &o, &stats, &err) < 0)
			_exit(3);
		_exit(stats.skipped == 1 && stats.entries == 1 ? 0 : 4);
	}
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		SKIP("user namespaces are not available");
	CHECK_INT(WEXITSTATUS(status), 0);
	CHECK(!path_exists(tfmt("%s/null", b)));
	CHECK(path_is_file(tfmt("%s/f", b)));
}
