/* Hostile image archives against the real binary: every layer below is wrapped in a
 * docker save archive with correct digests (so the hostile content is reached) and
 * loaded with `rollout image load` into a store that sits next to a canary
 * directory. Each case asserts its error (or where the entry safely landed inside the
 * layer) and that nothing was created or changed outside the store. */
#include "harness.h"
#include "image/tar.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/sha256.h"
#include "rollout/strbuf.h"
#include "tree_compare.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/loop.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>

/* ---- building archives ---- */

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

static void put(struct tar_writer *w, enum tar_type type, const char *path, const char *target,
                const char *content)
{
	struct tar_entry e = {.type = type,
	                      .path = (char *)path,
	                      .linkpath = (char *)target,
	                      .mode = type == TAR_DIR ? 0755 : 0644,
	                      .mtime = 1600000000,
	                      .size = content ? strlen(content) : 0};
	struct err err;

	if (tar_writer_header(w, &e, &err) < 0 ||
	    (content && *content && tar_writer_data(w, content, strlen(content), &err) < 0))
		test_fail_at(__FILE__, __LINE__, "writer: %s", err.msg);
}

static void done(struct tar_writer *w)
{
	struct err err;

	if (tar_writer_finish(w, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "writer: %s", err.msg);
	tar_writer_free(w);
}

struct layer {
	struct strbuf blob; /* what goes into the archive */
	char diff_id[8 + SHA256_HEX_LEN];
};

static void layer_plain(struct layer *l, const struct strbuf *tar)
{
	char hex[SHA256_HEX_LEN + 1];

	sha256_hex(tar->buf, tar->len, hex);
	snprintf(l->diff_id, sizeof(l->diff_id), "sha256:%s", hex);
	sb_add(&l->blob, tar->buf, tar->len);
}

/* A docker save archive at path holding one image of the given layers. */
static void write_archive(const char *path, struct layer *layers, size_t n)
{
	_cleanup_sb_ struct strbuf out = STRBUF_INIT, cfg = STRBUF_INIT, man = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&out);
	struct err err;

	sb_adds(&cfg, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},"
	              "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[");
	sb_adds(&man,
	        "[{\"Config\":\"config.json\",\"RepoTags\":[\"hostile/case:1\"],\"Layers\":[");
	for (size_t i = 0; i < n; i++) {
		char name[32];

		snprintf(name, sizeof(name), "l%zu.tar", i);
		sb_addf(&cfg, "%s\"%s\"", i ? "," : "", layers[i].diff_id);
		sb_addf(&man, "%s\"%s\"", i ? "," : "", name);
		if (tar_writer_add_file(w, name, 0644, layers[i].blob.buf, layers[i].blob.len,
		                        &err) < 0)
			test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	}
	sb_adds(&cfg, "]}}");
	sb_adds(&man, "]}]");
	tar_writer_add_file(w, "config.json", 0644, cfg.buf, cfg.len, &err);
	tar_writer_add_file(w, "manifest.json", 0644, man.buf, man.len, &err);
	done(w);
	if (write_file(path, out.buf, out.len, 0644, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
}

/* ---- running rollout ---- */

static int run_rollout(const char *store, char **out, const char *a1, const char *a2,
                       const char *a3, const char *a4, const char *a5)
{
	const char *bin = getenv("ROLLOUT") ? getenv("ROLLOUT") : "./rollout";
	int pipefd[2], status;
	struct strbuf sb = STRBUF_INIT;
	char buf[4096];
	ssize_t n;
	pid_t pid;

	if (pipe(pipefd) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		setenv("ROLLOUT_HOME", store, 1);
		execl(bin, bin, a1, a2, a3, a4, a5, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	while ((n = read(pipefd[0], buf, sizeof(buf))) > 0)
		sb_add(&sb, buf, (size_t)n);
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	*out = sb_detach(&sb);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- the cases ---- */

struct ctx {
	char *base, *store, *canary, *arch;
	char canary_path_dots[256]; /* the canary, as ../ from the layer being unpacked */
};

static struct ctx setup(void)
{
	struct ctx c;
	struct err err;

	c.base = xstrdup(test_tmpdir());
	c.store = xasprintf("%s/store", c.base);
	c.canary = xasprintf("%s/canary", c.base);
	c.arch = xasprintf("%s/arch", c.base);
	mkdir(c.canary, 0755);
	mkdir(c.arch, 0755);
	write_file(xasprintf("%s/secret", c.canary), "secret\n", 7, 0644, &err);
	/* Layers unpack in store/tmp/<job>/L<n>/diff: five levels up is base. */
	snprintf(c.canary_path_dots, sizeof(c.canary_path_dots), "../../../../../canary");
	return c;
}

/* Nothing outside the store changed: the canary is intact, base holds only what
 * the test made. */
static void check_outside(const struct ctx *c, const char *name)
{
	struct stat st;
	_cleanup_free_ char *secret = NULL;

	if (tree_count_entries(c->canary) != 1)
		test_fail_at(__FILE__, __LINE__, "%s: something appeared in the canary dir", name);
	if (read_file(xasprintf("%s/secret", c->canary), 100, &secret, NULL, NULL) < 0 ||
	    strcmp(secret, "secret\n") != 0 || stat(xasprintf("%s/secret", c->canary), &st) < 0 ||
	    st.st_nlink != 1 || (st.st_mode & 07777) != 0644)
		test_fail_at(__FILE__, __LINE__, "%s: the canary file changed", name);
	if (tree_count_entries(c->base) != 3)
		test_fail_at(__FILE__, __LINE__, "%s: something appeared next to the store", name);
	if (path_exists("/canary") || path_exists("/evil"))
		test_fail_at(__FILE__, __LINE__, "%s: something appeared in /", name);
}

static void check_store_empty(const struct ctx *c, const char *name)
{
	if (tree_count_entries(xasprintf("%s/layers", c->store)) != 0 ||
	    tree_count_entries(xasprintf("%s/images", c->store)) != 0 ||
	    tree_count_entries(xasprintf("%s/tmp", c->store)) != 0)
		test_fail_at(__FILE__, __LINE__, "%s: the store is not empty after the error",
		             name);
}

static void reset_store(const struct ctx *c)
{
	rm_rf(c->store, NULL);
}

/* Load the archive: want_error NULL means it must load; else fail saying want_error. */
static void load_case(const struct ctx *c, const char *name, struct layer *layers, size_t n,
                      const char *want_error)
{
	_cleanup_free_ char *path = xasprintf("%s/%s.tar", c->arch, name);
	_cleanup_free_ char *out = NULL;
	int rc;

	reset_store(c);
	write_archive(path, layers, n);
	rc = run_rollout(c->store, &out, "image", "load", path, NULL, NULL);
	if (want_error) {
		if (rc != 1)
			test_fail_at(__FILE__, __LINE__, "%s: exit %d, expected 1: %s", name, rc,
			             out);
		else if (!strstr(out, want_error))
			test_fail_at(__FILE__, __LINE__, "%s: '%s' lacks '%s'", name, out,
			             want_error);
		check_store_empty(c, name);
	} else if (rc != 0) {
		test_fail_at(__FILE__, __LINE__, "%s: exit %d: %s", name, rc, out);
	}
	check_outside(c, name);
	unlink(path);
}

/* The diff dir of layer i of the loaded image (chain IDs are not known here: find the
 * layer whose layer.json names this diff ID). */
static char *layer_dir(const struct ctx *c, const struct layer *l)
{
	_cleanup_free_ char *cmd =
	    xasprintf("grep -l '\"%s\"' %s/layers/*/layer.json", l->diff_id, c->store);
	FILE *p = popen(cmd, "r");
	char line[4096] = "";

	if (!p || !fgets(line, sizeof(line), p)) {
		if (p)
			pclose(p);
		return xstrdup("/nonexistent");
	}
	pclose(p);
	line[strcspn(line, "\n")] = '\0';
	*strrchr(line, '/') = '\0';
	return xasprintf("%s/diff", line);
}

#define LAYER(var, ...)                                                                            \
	struct layer var = {STRBUF_INIT, ""};                                                      \
	do {                                                                                       \
		_cleanup_sb_ struct strbuf t_ = STRBUF_INIT;                                       \
		struct tar_writer *w = mem_writer(&t_);                                            \
		__VA_ARGS__;                                                                       \
		done(w);                                                                           \
		layer_plain(&var, &t_);                                                            \
	} while (0)

TEST(hostile_paths_with_dotdot_are_rejected)
{
	struct ctx c = setup();
	_cleanup_free_ char *deep = xasprintf("%s/evil", c.canary_path_dots);

	LAYER(a, put(w, TAR_REG, deep, NULL, "x"));
	load_case(&c, "dotdot", &a, 1, "path leaves the root directory");
	LAYER(b, put(w, TAR_DIR, "ok", NULL, NULL); put(w, TAR_REG, "ok/../../evil", NULL, "x"));
	load_case(&c, "dotdot_middle", &b, 1, "entry 'ok/../../evil': path leaves the root");
}

TEST(hostile_absolute_names_land_inside_the_layer)
{
	struct ctx c = setup();
	_cleanup_free_ char *abs = xasprintf("%s/evil", c.canary);
	_cleanup_free_ char *dir = NULL;

	LAYER(a, put(w, TAR_REG, abs, NULL, "x"); put(w, TAR_REG, "/evil", NULL, "y"));
	load_case(&c, "absolute", &a, 1, NULL);
	dir = layer_dir(&c, &a);
	CHECK(path_is_file(xasprintf("%s%s", dir, abs)));
	CHECK(path_is_file(xasprintf("%s/evil", dir)));
}

TEST(hostile_writes_through_planted_symlinks_are_rejected)
{
	struct ctx c = setup();

	LAYER(a, put(w, TAR_SYMLINK, "l", c.canary, NULL); put(w, TAR_REG, "l/evil", NULL, "x"));
	load_case(&c, "symlink_abs_write", &a, 1, "entry 'l/evil': cannot create directory 'l'");
	LAYER(b, put(w, TAR_SYMLINK, "l", c.canary_path_dots, NULL);
	      put(w, TAR_REG, "l/evil", NULL, "x"));
	load_case(&c, "symlink_rel_write", &b, 1, "a non-directory (or a dangling symlink)");
	LAYER(d, put(w, TAR_DIR, "d", NULL, NULL); put(w, TAR_SYMLINK, "d", c.canary, NULL);
	      put(w, TAR_DIR, "d/sub", NULL, NULL));
	load_case(&c, "dir_then_symlink", &d, 1, "entry 'd/sub/'");
	/* A symlink to a file outside, then a regular file of that name: replaced. */
	LAYER(e, put(w, TAR_SYMLINK, "f", xasprintf("%s/secret", c.canary), NULL);
	      put(w, TAR_REG, "f", NULL, "overwritten"));
	load_case(&c, "symlink_then_file", &e, 1, NULL);
	CHECK(path_is_file(xasprintf("%s/f", layer_dir(&c, &e))));
}

TEST(hostile_symlink_from_an_earlier_layer_is_harmless)
{
	struct ctx c = setup();
	struct layer both[2];

	LAYER(a, put(w, TAR_SYMLINK, "l", c.canary, NULL));
	LAYER(b, put(w, TAR_REG, "l/evil", NULL, "x"));
	both[0] = a;
	both[1] = b;
	/* Layers are unpacked into separate directories: "l" is a directory of its own
	 * in the second layer (overlayfs then shows the upper "l"). */
	load_case(&c, "symlink_earlier_layer", both, 2, NULL);
	CHECK(path_is_file(xasprintf("%s/l/evil", layer_dir(&c, &b))));
}

TEST(hostile_hardlinks_outside_are_rejected)
{
	struct ctx c = setup();
	_cleanup_free_ char *secret_abs = xasprintf("%s/secret", c.canary);
	_cleanup_free_ char *secret_dots = xasprintf("%s/secret", c.canary_path_dots);
	struct layer two[2];

	LAYER(a, put(w, TAR_HARDLINK, "h", secret_abs, NULL));
	load_case(&c, "hardlink_abs", &a, 1, "is not in the archive");
	LAYER(b, put(w, TAR_HARDLINK, "h", secret_dots, NULL));
	load_case(&c, "hardlink_dotdot", &b, 1, "is outside the root");
	LAYER(d, put(w, TAR_SYMLINK, "l", c.canary, NULL);
	      put(w, TAR_HARDLINK, "h", "l/secret", NULL));
	load_case(&c, "hardlink_via_symlink", &d, 1, "hardlink target 'l/secret'");
	LAYER(e, put(w, TAR_DIR, "d", NULL, NULL); put(w, TAR_HARDLINK, "h", "d", NULL));
	load_case(&c, "hardlink_to_dir", &e, 1, "hardlink to directory 'd'");
	/* A hardlink to a lower layer's symlink that points outside: the symlink is
	 * copied up as a symlink, never followed. */
	LAYER(f, put(w, TAR_SYMLINK, "s", secret_abs, NULL));
	LAYER(g, put(w, TAR_HARDLINK, "h", "s", NULL));
	two[0] = f;
	two[1] = g;
	load_case(&c, "hardlink_lower_symlink", two, 2, NULL);
	{
		_cleanup_free_ char *dir = layer_dir(&c, &g);
		struct stat st;
		char target[4096];
		ssize_t n = readlink(xasprintf("%s/h", dir), target, sizeof(target) - 1);

		CHECK(n > 0 && (target[n] = '\0', strcmp(target, secret_abs) == 0));
		CHECK(lstat(xasprintf("%s/s", dir), &st) == 0 && S_ISLNK(st.st_mode) &&
		      st.st_nlink == 2);
	}
	LAYER(k, put(w, TAR_DIR, "d", NULL, NULL));
	LAYER(m, put(w, TAR_HARDLINK, "h", "d", NULL));
	two[0] = k;
	two[1] = m;
	load_case(&c, "hardlink_lower_dir", two, 2, "is a directory in a lower layer");
	/* A hardlink to a symlink of the same layer links the symlink itself. */
	LAYER(h, put(w, TAR_SYMLINK, "s", secret_abs, NULL); put(w, TAR_HARDLINK, "h", "s", NULL));
	load_case(&c, "hardlink_same_layer_symlink", &h, 1, NULL);
	{
		_cleanup_free_ char *dir = layer_dir(&c, &h);
		struct stat st;

		CHECK(lstat(xasprintf("%s/h", dir), &st) == 0 && S_ISLNK(st.st_mode) &&
		      st.st_nlink == 2);
	}
}

TEST(hostile_symlinks_anywhere_are_written_verbatim)
{
	struct ctx c = setup();
	_cleanup_free_ char *dir = NULL;
	char target[256];
	ssize_t n;

	LAYER(a, put(w, TAR_SYMLINK, "shadow", "/etc/shadow", NULL);
	      put(w, TAR_SYMLINK, "up", "../../../../../../../..", NULL);
	      put(w, TAR_SYMLINK, "proc", "/proc/self/root", NULL);
	      put(w, TAR_SYMLINK, "canary", c.canary, NULL));
	load_case(&c, "symlinks", &a, 1, NULL);
	dir = layer_dir(&c, &a);
	n = readlink(xasprintf("%s/up", dir), target, sizeof(target) - 1);
	CHECK(n > 0 && (target[n] = '\0', strcmp(target, "../../../../../../../..") == 0));
	n = readlink(xasprintf("%s/canary", dir), target, sizeof(target) - 1);
	CHECK(n > 0 && (target[n] = '\0', strcmp(target, c.canary) == 0));
}

TEST(hostile_root_entry_and_whiteouts)
{
	struct ctx c = setup();
	char v[8];

	LAYER(a, put(w, TAR_SYMLINK, "./", c.canary, NULL));
	load_case(&c, "root_symlink", &a, 1, "the root directory can only be a directory");
	LAYER(b, put(w, TAR_DIR, "d", NULL, NULL); put(w, TAR_REG, "d/.wh..", NULL, ""));
	load_case(&c, "whiteout_dotdot", &b, 1, "invalid whiteout name '.wh..'");
	if (geteuid() == 0) {
		struct tar_xattr xa = {"trusted.overlay.opaque", "y", 1};
		struct tar_entry d = {
		    .type = TAR_DIR, .path = "x", .mode = 0755, .xattrs = &xa, .n_xattrs = 1};
		struct err err;

		LAYER(e, tar_writer_header(w, &d, &err));
		load_case(&c, "overlay_xattr", &e, 1, NULL);
		CHECK(getxattr(xasprintf("%s/x", layer_dir(&c, &e)), "trusted.overlay.opaque", v,
		               sizeof(v)) < 0);
		CHECK(getxattr(xasprintf("%s/x", layer_dir(&c, &e)),
		               "trusted.overlay.overlay.opaque", v, sizeof(v)) == 1);
	}
}

/* Raw header for entry types our writer does not produce. */
static void raw_header(struct strbuf *sb, char type, const char *name, const char *size_oct)
{
	uint8_t h[512] = {0};
	unsigned sum = 0;

	memcpy(h, name, strlen(name));
	memcpy(h + 100, "0000644", 7);
	memcpy(h + 108, "0000000", 7);
	memcpy(h + 116, "0000000", 7);
	memcpy(h + 124, size_oct, strlen(size_oct));
	memcpy(h + 136, "00000000000", 11);
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
}

TEST(hostile_bombs_are_bounded)
{
	struct ctx c = setup();
	_cleanup_sb_ struct strbuf t = STRBUF_INIT;
	struct layer sparse = {STRBUF_INIT, ""}, claim = {STRBUF_INIT, ""},
	             bomb = {STRBUF_INIT, ""};
	struct sha256 h;
	z_stream z = {0};
	uint8_t *zeros = xcalloc(1, 1 << 20), out[1 << 16];
	char hex[SHA256_HEX_LEN + 1];
	const uint64_t file_size = 200ULL << 20;

	/* A GNU sparse entry claiming 1 TiB. */
	raw_header(&t, 'S', "sparse", "00000000000");
	for (int i = 0; i < 1024; i++)
		sb_addc(&t, 0);
	layer_plain(&sparse, &t);
	load_case(&c, "sparse", &sparse, 1, "GNU sparse files are not supported");

	/* A header claiming 1 TiB of content (PAX size) with 10 bytes behind it. */
	sb_reset(&t);
	raw_header(&t, 'x', "pax", "00000000026");
	sb_adds(&t, "22 size=1099511627776\n");
	for (int i = 22; i < 512; i++)
		sb_addc(&t, 0);
	raw_header(&t, '0', "huge", "00000000000");
	sb_adds(&t, "0123456789");
	layer_plain(&claim, &t);
	load_case(&c, "huge_claim", &claim, 1, "exceeds the limit");

	/* A gzip bomb: 200 MiB of zeros in ~200 kB, loaded with a 64 MiB layer limit. */
	setenv("ROLLOUT_MAX_LAYER_SIZE", "67108864", 1);
	sb_reset(&t);
	raw_header(&t, '0', "zeros", "01440000000"); /* 200 MiB */
	for (int i = 0; i < 1024; i++)               /* the end marker, after the content */
		sb_addc(&t, 0);
	sha256_init(&h);
	REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY) == Z_OK);
	for (int part = 0; part < 3; part++) {
		const uint8_t *p = part == 0   ? (uint8_t *)t.buf
		                   : part == 1 ? zeros
		                               : (uint8_t *)t.buf + 512;
		uint64_t len = part == 0 ? 512 : part == 1 ? file_size : t.len - 512;

		while (len > 0) {
			size_t k =
			    part == 1 ? (len < (1 << 20) ? (size_t)len : (1 << 20)) : (size_t)len;

			sha256_update(&h, p, k);
			z.next_in = (Bytef *)p;
			z.avail_in = (uInt)k;
			do {
				z.next_out = out;
				z.avail_out = sizeof(out);
				deflate(&z, part == 2 && k == len ? Z_FINISH : Z_NO_FLUSH);
				sb_add(&bomb.blob, out, sizeof(out) - z.avail_out);
			} while (z.avail_out == 0);
			len -= k;
		}
	}
	deflateEnd(&z);
	sha256_final_hex(&h, hex);
	snprintf(bomb.diff_id, sizeof(bomb.diff_id), "sha256:%s", hex);
	CHECK(bomb.blob.len < 1 << 20);
	load_case(&c, "gzip_bomb", &bomb, 1, "exceeds the limit of 67108864 bytes");
	unsetenv("ROLLOUT_MAX_LAYER_SIZE");
	free(zeros);
	sb_release(&sparse.blob);
	sb_release(&claim.blob);
	sb_release(&bomb.blob);
}

TEST(hostile_rootfs_import_is_contained_too)
{
	struct ctx c = setup();
	_cleanup_sb_ struct strbuf t = STRBUF_INIT;
	struct tar_writer *w = mem_writer(&t);
	_cleanup_free_ char *path = xasprintf("%s/rootfs.tar", c.arch), *out = NULL;
	struct err err;
	int rc;

	put(w, TAR_SYMLINK, "etc", c.canary, NULL);
	put(w, TAR_REG, "etc/passwd", NULL, "root::0:0::/:/bin/sh\n");
	done(w);
	REQUIRE(write_file(path, t.buf, t.len, 0644, &err) == 0);
	rc = run_rollout(c.store, &out, "image", "import", path, "--tag", "hostile/import:1");
	CHECK_INT(rc, 1);
	CHECK_CONTAINS(out, "entry 'etc/passwd'");
	check_store_empty(&c, "import");
	unlink(path);
	check_outside(&c, "import");
	reset_store(&c);
}

/* ---- what an image's setuid files and device nodes can reach ---- */

/* A loop device over file (a canary standing for the host's disk), held open by
 * *fd and cleared by the kernel once the test is gone (LO_FLAGS_AUTOCLEAR). */
static int loop_attach(const char *file, int *fd, dev_t *rdev)
{
	_cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);

	for (int tries = 0; ctl >= 0 && tries < 8; tries++) {
		struct loop_info64 info = {.lo_flags = LO_FLAGS_AUTOCLEAR};
		_cleanup_close_ int back = open(file, O_RDONLY | O_CLOEXEC);
		int n = ioctl(ctl, LOOP_CTL_GET_FREE), lfd;
		struct stat st;

		if (n < 0 || back < 0)
			return -1;
		lfd = open(tfmt("/dev/loop%d", n), O_RDONLY | O_CLOEXEC);
		if (lfd < 0)
			return -1;
		if (ioctl(lfd, LOOP_SET_FD, back) == 0) {
			if (ioctl(lfd, LOOP_SET_STATUS64, &info) < 0 || fstat(lfd, &st) < 0) {
				close(lfd); /* not autocleared: detach by hand */
				return -1;
			}
			*fd = lfd;
			*rdev = st.st_rdev;
			return 0;
		}
		close(lfd); /* taken by someone else meanwhile: try the next free one */
	}
	return -1;
}

enum nobody_op { AS_NOBODY_STAT, AS_NOBODY_OPEN, AS_NOBODY_EXEC };

/* What uid/gid 65534 (no groups) gets doing op on path: 0 or the errno. */
static int as_nobody(const char *path, enum nobody_op op)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		char *argv[] = {(char *)path, NULL}, *envp[] = {NULL};
		struct stat st;
		int r = -1;

		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(255);
		if (op == AS_NOBODY_STAT)
			r = stat(path, &st);
		else if (op == AS_NOBODY_OPEN)
			r = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		else
			execve(path, argv, envp);
		_exit(r < 0 ? errno : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void put_node(struct tar_writer *w, enum tar_type type, const char *path, unsigned mode,
                     dev_t dev)
{
	struct tar_entry e = {.type = type,
	                      .path = (char *)path,
	                      .mode = mode,
	                      .mtime = 1600000000,
	                      .devmajor = major(dev),
	                      .devminor = minor(dev)};
	struct err err;

	if (tar_writer_header(w, &e, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "writer: %s", err.msg);
}

/* Inside an environment (a build step of the image): which device nodes of the
 * root can be written or read, whether /dev works and the whiteout hides. */
static const char probe[] =
    "FROM hostile/case:1\n"
    "RUN for f in /hostnull /hostdisk; do [ -e $f ] || continue; "
    "[ -c $f -o -b $f ] && echo \"present $f\"; "
    "if (echo x >$f) 2>/dev/null; then echo \"ALLOWED write $f\"; "
    "else echo \"DENIED write $f\"; fi; "
    "if head -c 15 $f 2>/dev/null | grep -q HOSTDISK; then echo \"ALLOWED read $f\"; fi; "
    "done; "
    "if mknod /made c 1 3 2>/dev/null; then if (echo x >/made) 2>/dev/null; "
    "then echo 'ALLOWED write /made'; else echo 'DENIED write /made'; fi; fi; "
    "echo x >/dev/null && echo dev-null-works; "
    "if [ -e /etc/group ]; then echo WHITEOUT-BROKEN; else echo whiteout-hides; fi; "
    "[ -s /etc/passwd ] && echo lower-layer-shows\n";

TEST(hostile_devices_and_setuid_files_are_out_of_reach)
{
	struct ctx c = setup();
	const char *bb = getenv("HOSTILE_BUSYBOX_TAR");
	_cleanup_free_ char *disk = xasprintf("%s/disk.img", c.arch), *out = NULL;
	_cleanup_free_ char *ctxdir = xasprintf("%s/ctx", c.arch), *blob = NULL, *dir = NULL;
	_cleanup_sb_ struct strbuf bbtar = STRBUF_INIT;
	_cleanup_close_ int loopfd = -1;
	struct layer both[2] = {{STRBUF_INIT, ""}, {STRBUF_INIT, ""}};
	char head[16] = "";
	dev_t loopdev = 0;
	struct err err;
	size_t len;
	int rc;

	if (geteuid() != 0)
		SKIP("needs root (device nodes, another uid)");
	if (!bb || !*bb || read_file(bb, 64 << 20, &blob, &len, NULL) < 0)
		SKIP("no busybox rootfs (HOSTILE_BUSYBOX_TAR)");
	sb_add(&bbtar, blob, len);
	layer_plain(&both[0], &bbtar);
	{
		_cleanup_sb_ struct strbuf img = STRBUF_INIT;

		sb_adds(&img, "HOSTDISK-CANARY");
		while (img.len < 1 << 16)
			sb_addc(&img, '.');
		REQUIRE(write_file(disk, img.buf, img.len, 0644, &err) == 0);
	}
	if (loop_attach(disk, &loopfd, &loopdev) < 0)
		loopdev = 0; /* no loop devices here: the null node stands for all */
	LAYER(hostile, put_node(w, TAR_CHAR, "hostnull", 0666, makedev(1, 3));
	      if (loopdev) put_node(w, TAR_BLOCK, "hostdisk", 0666, loopdev);
	      REQUIRE(tar_writer_add_file(w, "suid", 04755, "#!/bin/sh\n", 10, &err) == 0);
	      put(w, TAR_REG, "etc/.wh.group", NULL, ""));
	both[1] = hostile;
	load_case(&c, "devices", both, 2, NULL);
	dir = layer_dir(&c, &hostile);
	REQUIRE(path_exists(tfmt("%s/hostnull", dir)));
	{
		struct stat st;

		CHECK(stat(tfmt("%s/suid", dir), &st) == 0 && (st.st_mode & 07777) == 04755 &&
		      st.st_uid == 0);
	}

	/* On the host: the store is closed to other users, whatever a layer holds
	 * (the path up to the store is open: the denial comes from the store). */
	CHECK_INT(as_nobody(c.base, AS_NOBODY_STAT), 0);
	CHECK_INT(as_nobody(c.store, AS_NOBODY_STAT), 0);
	CHECK_INT(as_nobody(tfmt("%s/suid", dir), AS_NOBODY_STAT), EACCES);
	CHECK_INT(as_nobody(tfmt("%s/suid", dir), AS_NOBODY_EXEC), EACCES);
	CHECK_INT(as_nobody(tfmt("%s/hostnull", dir), AS_NOBODY_OPEN), EACCES);
	if (loopdev) {
		/* Control: as root the node is the host's device indeed. */
		_cleanup_close_ int fd = open(tfmt("%s/hostdisk", dir), O_RDONLY | O_CLOEXEC);

		CHECK(fd >= 0 && read(fd, head, 15) == 15 && strcmp(head, "HOSTDISK-CANARY") == 0);
		CHECK_INT(as_nobody(tfmt("%s/hostdisk", dir), AS_NOBODY_OPEN), EACCES);
	}
	/* A store left open by an older rollout (0711 directories) exposed all of it;
	 * opening it closes it again. */
	REQUIRE(chmod(c.store, 0711) == 0 && chmod(tfmt("%s/layers", c.store), 0711) == 0);
	CHECK_INT(as_nobody(tfmt("%s/suid", dir), AS_NOBODY_STAT), 0);
	CHECK_INT(as_nobody(tfmt("%s/hostnull", dir), AS_NOBODY_OPEN), 0);
	rc = run_rollout(c.store, &out, "image", "ls", NULL, NULL, NULL);
	CHECK_INT(rc, 0);
	free(out);
	CHECK_INT(as_nobody(tfmt("%s/suid", dir), AS_NOBODY_STAT), EACCES);
	CHECK_INT(as_nobody(tfmt("%s/hostnull", dir), AS_NOBODY_OPEN), EACCES);

	/* Inside an environment of the image: the nodes are there (as in Docker)
	 * but are no devices; /dev works, whiteouts hide what they delete. */
	REQUIRE(mkdir(ctxdir, 0755) == 0);
	REQUIRE(write_file(tfmt("%s/Dockerfile", ctxdir), probe, strlen(probe), 0644, &err) == 0);
	rc = run_rollout(c.store, &out, "image", "build", "--no-cache", ctxdir, NULL);
	CHECK_INT(rc, 0);
	CHECK_CONTAINS(out, "\npresent /hostnull");
	CHECK_CONTAINS(out, "\nDENIED write /hostnull");
	if (loopdev)
		CHECK_CONTAINS(out, "\nDENIED write /hostdisk");
	CHECK_CONTAINS(out, "\ndev-null-works");
	CHECK_CONTAINS(out, "\nwhiteout-hides");
	CHECK_CONTAINS(out, "\nlower-layer-shows");
	if (strstr(out, "\nALLOWED") || strstr(out, "\nWHITEOUT-BROKEN"))
		test_fail_at(__FILE__, __LINE__, "the environment used an image's device: %s", out);
	{
		_cleanup_free_ char *after = NULL;

		CHECK(read_file(disk, 1 << 20, &after, &len, NULL) == 0 && len == 1 << 16 &&
		      strncmp(after, "HOSTDISK-CANARY...", 18) == 0);
	}
	rm_rf(ctxdir, NULL);
	unlink(disk);
	check_outside(&c, "devices");
	reset_store(&c);
	sb_release(&both[0].blob);
	sb_release(&hostile.blob);
}
