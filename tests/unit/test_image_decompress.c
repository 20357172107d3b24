/* Unit tests for src/image/decompress.c: gzip (single and multi-member, zero
 * padding, garbage, truncation), zstd (frames, skippable frames, long windows,
 * corruption, truncation), digests checked against sha256sum, ranges of a file,
 * pipes, both the threaded and the inline mode, output limits. */
#include "harness.h"
#include "image/decompress.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static char *tmp(const char *name)
{
	return xasprintf("%s/%s", test_tmpdir(), name);
}

static char *sha256sum(const char *path)
{
	_cleanup_free_ char *cmd = xasprintf("sha256sum %s", path);
	FILE *p = popen(cmd, "r");
	char line[128] = "";

	if (!p || !fgets(line, sizeof(line), p)) {
		if (p)
			pclose(p);
		return xstrdup("?");
	}
	pclose(p);
	line[64] = '\0';
	return xasprintf("sha256:%s", line);
}

/* Read the whole stream; returns 0 and fills out/res, or -1 with err. */
static int read_all(int fd, uint64_t offset, uint64_t length, bool threaded, uint64_t max,
                    struct strbuf *out, struct decompress_result *res, struct err *err)
{
	struct decompress_opts o = {
	    .fd = fd, .offset = offset, .length = length, .threaded = threaded, .max_output = max};
	struct decompress *d = NULL;
	struct tar_input in;
	const uint8_t *p;
	ssize_t n;
	int ret;

	if (decompress_open(&d, &o, err) < 0)
		return -1;
	in = decompress_tar_input(d);
	while ((n = in.next(in.ctx, &p, err)) > 0)
		sb_add(out, p, (size_t)n);
	ret = n < 0 ? -1 : decompress_finish(d, res, err);
	decompress_free(d);
	return ret;
}

static int read_file_all(const char *path, bool threaded, struct strbuf *out,
                         struct decompress_result *res, struct err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_sys(err, "open %s", path);
	return read_all(fd, 0, (uint64_t)lseek(fd, 0, SEEK_END), threaded, 0, out, res, err);
}

TEST(decompress_multi_member_gzip_and_digests)
{
	_cleanup_free_ char *plain = tmp("plain"), *gz = tmp("multi.gz");
	_cleanup_free_ char *want_c = NULL, *want_u = NULL;
	_cleanup_free_ char *data = NULL;
	size_t len;
	struct err err;

	REQUIRE(
	    tsh("head -c 3000000 /dev/urandom >%s.a && seq 1 200000 >%s.b && cat %s.a %s.b >%s && "
	        "gzip -c %s.a >%s && gzip -9 -c %s.b >>%s",
	        plain, plain, plain, plain, plain, plain, gz, plain, gz) == 0);
	want_c = sha256sum(gz);
	want_u = sha256sum(plain);
	REQUIRE(read_file(plain, 1 << 30, &data, &len, &err) == 0);
	for (int threaded = 0; threaded < 2; threaded++) {
		_cleanup_sb_ struct strbuf out = STRBUF_INIT;
		struct decompress_result res;

		if (read_file_all(gz, threaded, &out, &res, &err) < 0) {
			test_fail_at(__FILE__, __LINE__, "%s", err.msg);
			continue;
		}
		CHECK_INT(res.compression, COMPRESSION_GZIP);
		CHECK_INT(out.len, len);
		CHECK(out.len == len && memcmp(out.buf, data, len) == 0);
		CHECK_STR(res.compressed_digest, want_c);
		CHECK_STR(res.uncompressed_digest, want_u);
		CHECK_INT(res.uncompressed_size, len);
	}
}

TEST(decompress_plain_range_of_a_file)
{
	_cleanup_free_ char *f = tmp("f"), *part = tmp("part"), *want = NULL;
	_cleanup_close_ int fd = -1;
	_cleanup_sb_ struct strbuf out = STRBUF_INIT;
	struct decompress_result res;
	struct err err;

	REQUIRE(tsh("head -c 5000000 /dev/urandom >%s && tail -c +1001 %s | head -c 4000000 >%s", f,
	            f, part) == 0);
	want = sha256sum(part);
	fd = open(f, O_RDONLY | O_CLOEXEC);
	REQUIRE(read_all(fd, 1000, 4000000, true, 0, &out, &res, &err) == 0);
	CHECK_INT(res.compression, COMPRESSION_NONE);
	CHECK_INT(out.len, 4000000);
	CHECK_STR(res.compressed_digest, want);
	CHECK_STR(res.uncompressed_digest, want);
	/* A range that runs past the end of the file is a truncation. */
	sb_reset(&out);
	CHECK(read_all(fd, 1000, 6000000, true, 0, &out, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "unexpected end of file after 4999000 of 6000000 bytes");
}

TEST(decompress_from_a_pipe)
{
	_cleanup_free_ char *gz = tmp("x.gz");
	_cleanup_sb_ struct strbuf out = STRBUF_INIT;
	struct decompress_result res;
	struct err err;
	int p[2];
	pid_t pid;

	REQUIRE(tsh("seq 1 100000 | gzip -c >%s", gz) == 0);
	REQUIRE(pipe(p) == 0);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], 1);
		execlp("cat", "cat", gz, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	REQUIRE(read_all(p[0], 0, DECOMPRESS_STREAM, true, 0, &out, &res, &err) == 0);
	close(p[0]);
	waitpid(pid, NULL, 0);
	CHECK(str_starts_with(out.buf, "1\n2\n3\n"));
	CHECK(str_ends_with(out.buf, "99999\n100000\n"));
}

TEST(decompress_gzip_padding_and_garbage)
{
	_cleanup_free_ char *a = tmp("a.gz"), *b = tmp("b.gz"), *c = tmp("c.gz"), *d = tmp("d.gz");
	_cleanup_sb_ struct strbuf out = STRBUF_INIT;
	struct decompress_result res;
	struct err err;

	REQUIRE(tsh("seq 1 1000 | gzip -c >%s && cp %s %s && head -c 4096 /dev/zero >>%s", a, a, b,
	            b) == 0);
	CHECK(read_file_all(b, true, &out, &res, &err) == 0); /* zero padding: fine */
	CHECK_INT(out.len, 3893);
	REQUIRE(tsh("cp %s %s && printf 'garbage' >>%s", a, c, c) == 0);
	sb_reset(&out);
	CHECK(read_file_all(c, true, &out, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "trailing garbage");
	REQUIRE(tsh("cp %s %s && printf '\\0\\0x' >>%s", a, c, c) == 0);
	sb_reset(&out);
	CHECK(read_file_all(c, false, &out, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "trailing garbage");
	REQUIRE(tsh("head -c 100 %s >%s", a, d) == 0);
	sb_reset(&out);
	CHECK(read_file_all(d, true, &out, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "unexpected end of the compressed stream");
}

static bool have_zstd(void)
{
	if (tsh("command -v zstd >/dev/null") != 0)
		tsh("apt-get install -y -q zstd >/dev/null 2>&1");
	return tsh("command -v zstd >/dev/null") == 0;
}

/* A zstd skippable frame (magic 0x184D2A5?, little-endian length, payload). */
static const char skippable[] = "printf '\\123\\052\\115\\030\\005\\000\\000\\000hello'";

TEST(decompress_zstd_frames_and_digests)
{
	_cleanup_free_ char *plain = tmp("plain"), *zs = tmp("multi.zst");
	_cleanup_free_ char *want_c = NULL, *want_u = NULL, *data = NULL;
	size_t len;
	struct err err;

	if (!have_zstd())
		SKIP("the zstd command is missing and could not be installed");
	/* Two frames with a skippable one before, between and after them; the
	 * second frame from a pipe with a 2 GiB window (zstd --long=31). */
	REQUIRE(tsh("head -c 3000000 /dev/urandom >%s.a && seq 1 300000 >%s.b && "
	            "cat %s.a %s.b >%s && { %s; zstd -q -c %s.a; %s; "
	            "cat %s.b | zstd -q --long=31 -c; %s; } >%s",
	            plain, plain, plain, plain, plain, skippable, plain, skippable, plain,
	            skippable, zs) == 0);
	want_c = sha256sum(zs);
	want_u = sha256sum(plain);
	REQUIRE(read_file(plain, 1 << 30, &data, &len, &err) == 0);
	for (int threaded = 0; threaded < 2; threaded++) {
		_cleanup_sb_ struct strbuf out = STRBUF_INIT;
		struct decompress_result res;

		if (read_file_all(zs, threaded, &out, &res, &err) < 0) {
			test_fail_at(__FILE__, __LINE__, "%s", err.msg);
			continue;
		}
		CHECK_INT(res.compression, COMPRESSION_ZSTD);
		CHECK_INT(out.len, len);
		CHECK(out.len == len && memcmp(out.buf, data, len) == 0);
		CHECK_STR(res.compressed_digest, want_c);
		CHECK_STR(res.uncompressed_digest, want_u);
	}
}

TEST(decompress_zstd_errors)
{
	_cleanup_free_ char *plain = tmp("plain"), *zs = tmp("z.zst"), *bad = tmp("bad.zst");
	_cleanup_free_ char *cut = tmp("cut.zst"), *junk = tmp("junk.zst");
	_cleanup_sb_ struct strbuf out = STRBUF_INIT;
	struct decompress_result res;
	struct err err;

	if (!have_zstd())
		SKIP("the zstd command is missing and could not be installed");
	REQUIRE(tsh("seq 1 200000 >%s && zstd -q -c %s >%s", plain, plain, zs) == 0);
	/* Corrupt bytes in the middle of the frame. */
	REQUIRE(tsh("cp %s %s && printf 'XXXXXXXXXXXXXXXX' | dd of=%s bs=1 seek=200 conv=notrunc "
	            "status=none",
	            zs, bad, bad) == 0);
	CHECK(read_file_all(bad, false, &out, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "bad zstd data: ");
	/* Cut short. */
	REQUIRE(tsh("head -c 1000 %s >%s", zs, cut) == 0);
	sb_reset(&out);
	CHECK(read_file_all(cut, true, &out, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "bad zstd data: unexpected end of the compressed stream");
	/* Garbage after the last frame. */
	REQUIRE(tsh("cat %s >%s && printf 'garbage!' >>%s", zs, junk, junk) == 0);
	sb_reset(&out);
	CHECK(read_file_all(junk, false, &out, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "bad zstd data: ");
}

TEST(decompress_limits_output)
{
	_cleanup_free_ char *gz = tmp("big.gz");
	_cleanup_close_ int fd = -1;
	_cleanup_sb_ struct strbuf out = STRBUF_INIT;
	struct decompress_result res;
	struct err err;

	REQUIRE(tsh("head -c 50000000 /dev/zero | gzip -1 -c >%s", gz) == 0);
	fd = open(gz, O_RDONLY | O_CLOEXEC);
	CHECK(read_all(fd, 0, (uint64_t)lseek(fd, 0, SEEK_END), true, 10000000, &out, &res, &err) <
	      0);
	CHECK_INT(err.code, EFBIG);
	CHECK_CONTAINS(err.msg, "exceeds the limit of 10000000 bytes");
	CHECK(out.len <= 10000000 + (4 << 20)); /* stopped early, not after 50 MB */
}

TEST(decompress_free_stops_the_thread_early)
{
	_cleanup_free_ char *gz = tmp("big.gz");
	_cleanup_close_ int fd = -1;
	struct decompress_opts o = {.threaded = true};
	struct decompress *d = NULL;
	struct tar_input in;
	const uint8_t *p;
	struct err err;

	REQUIRE(tsh("head -c 100000000 /dev/zero | gzip -1 -c >%s", gz) == 0);
	fd = open(gz, O_RDONLY | O_CLOEXEC);
	o.fd = fd;
	o.length = (uint64_t)lseek(fd, 0, SEEK_END);
	REQUIRE(decompress_open(&d, &o, &err) == 0);
	in = decompress_tar_input(d);
	CHECK(in.next(in.ctx, &p, &err) > 0);
	decompress_free(d); /* the consumer gave up: must not hang or leak */
}
