/* Unit tests for src/image/store.c through its public API (store.h): layout, locking,
 * references, import with --change, lookup, env marks vs rm/prune, the builder's
 * store_create_image (overlay upper dir -> layer), stale work directories. */
#include "harness.h"
#include "image/store.h"
#include "image/store_internal.h"
#include "image/tar.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"
#include "tree_compare.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static char *tmp(const char *name)
{
	return xasprintf("%s/%s", test_tmpdir(), name);
}

static struct store *open_tmp_store(void)
{
	_cleanup_free_ char *root = tmp("store");
	struct store *s = NULL;
	struct err err;

	if (store_open(root, &s, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "store_open: %s", err.msg);
	return s;
}

/* A small rootfs tarball written with our tar writer. */
static char *make_rootfs_tar(const char *name)
{
	char *path = tmp(name);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	struct tar_writer *w = tar_writer_new_fd(fd);
	struct tar_entry d = {.type = TAR_DIR, .path = "etc", .mode = 0755, .mtime = 1000};
	struct tar_entry l = {.type = TAR_SYMLINK, .path = "etc/link", .linkpath = "passwd"};
	struct err err;

	tar_writer_header(w, &d, &err);
	tar_writer_add_file(w, "etc/passwd", 0644, "root:x:0:0::/root:/bin/sh\n", 26, &err);
	tar_writer_header(w, &l, &err);
	tar_writer_add_file(w, "bin/tool", 0755, "#!/bin/sh\n", 10, &err);
	if (tar_writer_finish(w, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	tar_writer_free(w);
	return path;
}

TEST(store_layout_and_default_root)
{
	struct store *s = open_tmp_store();
	static const char *const dirs[] = {"blobs/sha256", "layers", "images", "envs", "tmp"};
	_cleanup_free_ char *root = NULL;

	REQUIRE(s);
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		CHECK(path_is_dir(tfmt("%s/%s", store_root(s), dirs[i])));
	CHECK(path_is_file(tfmt("%s/store.json", store_root(s))));
	CHECK_INT(store_whiteout_form(s),
	          geteuid() == 0 ? STORE_WHITEOUTS_TRUSTED : STORE_WHITEOUTS_USER);
	store_close(s);
	setenv("ROLLOUT_HOME", "/somewhere/else", 1);
	root = store_default_root();
	CHECK_STR(root, "/somewhere/else");
	unsetenv("ROLLOUT_HOME");
	free(root);
	root = store_default_root();
	if (geteuid() == 0)
		CHECK_STR(root, "/var/lib/rollout");
	else
		CHECK(str_ends_with(root, "/rollout"));
}

static unsigned mode_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 01;
}

TEST(store_is_closed_to_other_users)
{
	static const char *const dirs[] = {"",       "blobs", "blobs/sha256", "layers",
	                                   "images", "envs",  "tmp"};
	static const char *const older[] = {"",       "blobs",      "blobs/sha256", "layers",
	                                    "images", "envs",       "tmp",          "trash",
	                                    "locks",  "build-cache"};
	_cleanup_free_ char *root = tmp("store"), *home = tmp("home");
	struct store *s = open_tmp_store();
	struct err err;

	REQUIRE(s);
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		CHECK_INT(mode_of(tfmt("%s/%s", root, dirs[i])), 0700);
	store_close(s);
	/* A store made by an older rollout: 0711 directories (and others' 0755). */
	for (size_t i = 0; i < ARRAY_SIZE(older); i++) {
		mkdir(tfmt("%s/%s", root, older[i]), 0711);
		REQUIRE(chmod(tfmt("%s/%s", root, older[i]), 0711) == 0);
	}
	mkdir(tfmt("%s/envs/old-env", root), 0711);
	s = open_tmp_store();
	REQUIRE(s);
	store_close(s);
	for (size_t i = 0; i < ARRAY_SIZE(older); i++)
		CHECK_INT(mode_of(tfmt("%s/%s", root, older[i])), 0700);
	/* A directory of other uses keeps its mode: opening it is an error. */
	REQUIRE(mkdir(home, 0755) == 0);
	REQUIRE(write_file(tfmt("%s/notes.txt", home), "x", 1, 0644, &err) == 0);
	s = NULL;
	CHECK(store_open(home, &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "holds files that are not the store's");
	CHECK_INT(mode_of(home), 0755);
	CHECK(!path_exists(tfmt("%s/layers", home)));
	store_close(s);
	/* A new store below missing directories: those are 0755, the store 0700. */
	s = NULL;
	REQUIRE(store_open(tfmt("%s/a/b/store", test_tmpdir()), &s, &err) == 0);
	CHECK_INT(mode_of(tfmt("%s/a/b", test_tmpdir())), 0755);
	CHECK_INT(mode_of(tfmt("%s/a/b/store", test_tmpdir())), 0700);
	store_close(s);
}

/* 0: the child got the lock without waiting. */
static int child_try_lock(const char *root, int op)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		_cleanup_free_ char *path = xasprintf("%s/lock", root);
		int fd = open(path, O_RDWR | O_CLOEXEC);

		_exit(fd >= 0 && flock(fd, op | LOCK_NB) == 0 ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	return WEXITSTATUS(status);
}

TEST(store_lock_nests_and_excludes_other_processes)
{
	struct store *s = open_tmp_store();
	struct err err;

	REQUIRE(s);
	REQUIRE(store_lock(s, STORE_LOCK_SHARED, &err) == 0);
	CHECK_INT(child_try_lock(store_root(s), LOCK_SH), 0);
	CHECK_INT(child_try_lock(store_root(s), LOCK_EX), 1);
	REQUIRE(store_lock(s, STORE_LOCK_EXCLUSIVE, &err) == 0);
	CHECK_INT(child_try_lock(store_root(s), LOCK_SH), 1);
	store_unlock(s); /* back to shared */
	CHECK_INT(child_try_lock(store_root(s), LOCK_SH), 0);
	CHECK_INT(child_try_lock(store_root(s), LOCK_EX), 1);
	store_unlock(s);
	CHECK_INT(child_try_lock(store_root(s), LOCK_EX), 0);
	store_close(s);
}

TEST(store_normalize_ref_cases)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"busybox", "busybox:latest"},
	    {"busybox:1.36", "busybox:1.36"},
	    {"docker.io/library/python:3.11", "python:3.11"},
	    {"docker.io/org/app", "org/app:latest"},
	    {"library/alpine", "alpine:latest"},
	    {"localhost:5000/x", "localhost:5000/x:latest"},
	    {"localhost:5000/x:2", "localhost:5000/x:2"},
	    {"ghcr.io/o/r@sha256:abc", "ghcr.io/o/r@sha256:abc"},
	    {"", NULL},
	    {"a b", NULL},
	    {"name:", NULL},
	    {":tag", NULL},
	};
	struct err err;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *got = store_normalize_ref(cases[i].in, &err);

		if (cases[i].out)
			CHECK_STR(got, cases[i].out);
		else if (got)
			test_fail_at(__FILE__, __LINE__, "'%s' accepted as '%s'", cases[i].in, got);
	}
}

TEST(store_apply_change_instructions)
{
	_cleanup_json_ cJSON *doc = cJSON_Parse("{\"config\":{\"Env\":[\"PATH=/bin\",\"A=old\"]}}");
	_cleanup_free_ char *text = NULL;
	struct err err;
	static const char *const ok[] = {
	    "ENV A=new B=\"two words\" C=x\\ y",
	    "env D value with spaces",
	    "LABEL k=v other=\"x y\"",
	    "CMD echo hi",
	    "ENTRYPOINT [\"/bin/tini\", \"--\"]",
	    "WORKDIR /srv",
	    "USER nobody",
	    "EXPOSE 80 443/udp",
	    "VOLUME [\"/data\", \"/logs\"]",
	    "STOPSIGNAL SIGQUIT",
	};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (store_apply_change(doc, ok[i], &err) < 0)
			test_fail_at(__FILE__, __LINE__, "%s: %s", ok[i], err.msg);
	text = cJSON_PrintUnformatted(doc);
	CHECK_CONTAINS(text, "\"Env\":[\"PATH=/bin\",\"A=new\",\"B=two words\",\"C=x y\",\"D=value "
	                     "with spaces\"]");
	CHECK_CONTAINS(text, "\"Labels\":{\"k\":\"v\",\"other\":\"x y\"}");
	CHECK_CONTAINS(text, "\"Cmd\":[\"/bin/sh\",\"-c\",\"echo hi\"]");
	CHECK_CONTAINS(text, "\"Entrypoint\":[\"/bin/tini\",\"--\"]");
	CHECK_CONTAINS(text, "\"WorkingDir\":\"/srv\"");
	CHECK_CONTAINS(text, "\"User\":\"nobody\"");
	CHECK_CONTAINS(text, "\"ExposedPorts\":{\"80/tcp\":{},\"443/udp\":{}}");
	CHECK_CONTAINS(text, "\"Volumes\":{\"/data\":{},\"/logs\":{}}");
	CHECK_CONTAINS(text, "\"StopSignal\":\"SIGQUIT\"");
	CHECK(store_apply_change(doc, "RUN rm -rf /", &err) < 0);
	CHECK_CONTAINS(err.msg, "unsupported instruction");
	CHECK(store_apply_change(doc, "ENV", &err) < 0);
	CHECK_CONTAINS(err.msg, "missing argument");
	CHECK(store_apply_change(doc, "ENV A=\"unterminated", &err) < 0);
	CHECK_CONTAINS(err.msg, "unterminated quote");
}

TEST(store_import_and_lookup)
{
	struct store *s = open_tmp_store();
	_cleanup_free_ char *tar = make_rootfs_tar("rootfs.tar"), *id = NULL, *prefix = NULL;
	char *changes[] = {"ENV X=1", "CMD [\"sh\"]", "WORKDIR /app", NULL};
	struct store_image *img = NULL;
	struct err err;

	REQUIRE(s);
	REQUIRE(store_import(s, tar, "test/rootfs:1", changes, &id, &err) == 0);
	REQUIRE(store_image_lookup(s, "test/rootfs:1", &img, &err) == 0);
	CHECK_STR(img->id, id);
	CHECK_STR(img->ref, "test/rootfs:1");
	CHECK_STR(img->config.env[0], "X=1");
	CHECK_STR(img->config.cmd[0], "sh");
	CHECK_STR(img->config.working_dir, "/app");
	CHECK_INT(img->n_layers, 1);
	CHECK_STR(img->chain_ids[0], img->config.diff_ids[0]);
	CHECK(str_starts_with(img->layer_dirs[0], store_root(s)));
	CHECK(path_is_file(tfmt("%s/etc/passwd", img->layer_dirs[0])));
	CHECK(path_is_file(tfmt("%s/bin/tool", img->layer_dirs[0])));
	CHECK_INT(img->size, 36);
	store_image_free(img);
	/* By ID, by the hex alone, by a prefix; an unknown one is ENOENT. */
	REQUIRE(store_image_lookup(s, id, &img, &err) == 0);
	store_image_free(img);
	REQUIRE(store_image_lookup(s, id + 7, &img, &err) == 0);
	store_image_free(img);
	prefix = xstrndup(id + 7, 6);
	REQUIRE(store_image_lookup(s, prefix, &img, &err) == 0);
	CHECK(img->ref == NULL);
	store_image_free(img);
	CHECK(store_image_lookup(s, "test/rootfs:2", &img, &err) < 0);
	CHECK_INT(err.code, ENOENT);
	/* A layer missing from the store is reported, not mounted. */
	{
		_cleanup_free_ char *layer = NULL;

		REQUIRE(store_image_lookup(s, id, &img, &err) == 0);
		layer = xstrdup(img->layer_dirs[0]);
		store_image_free(img);
		REQUIRE(rm_rf(layer, &err) == 0);
		CHECK(store_image_lookup(s, id, &img, &err) < 0);
		CHECK_CONTAINS(err.msg, "is missing from the store");
	}
	store_close(s);
}

TEST(store_env_marks_protect_images)
{
	struct store *s = open_tmp_store();
	_cleanup_free_ char *tar = make_rootfs_tar("rootfs.tar"), *id = NULL;
	struct store_prune_result res;
	struct store_image *img;
	struct err err;

	REQUIRE(s);
	REQUIRE(store_import(s, tar, "app:1", NULL, &id, &err) == 0);
	REQUIRE(store_env_use(s, "trial__abc", "app:1", &err) == 0);
	CHECK(path_is_file(tfmt("%s/envs/trial__abc/image", store_root(s))));
	CHECK(store_env_use(s, "../evil", "app:1", &err) < 0);
	CHECK(store_remove(s, id, &err) < 0);
	CHECK_INT(err.code, EBUSY);
	CHECK_CONTAINS(err.msg, "used by environment 'trial__abc'");
	REQUIRE(store_remove(s, "app:1", &err) == 0);
	REQUIRE(store_prune(s, &res, &err) == 0);
	CHECK_INT(res.images, 0);
	REQUIRE(store_image_lookup(s, id, &img, &err) == 0);
	store_image_free(img);
	REQUIRE(store_env_release(s, "trial__abc", &err) == 0);
	REQUIRE(store_prune(s, &res, &err) == 0);
	CHECK_INT(res.images, 1);
	CHECK_INT(res.layers, 1);
	CHECK_INT(res.bytes, 36);
	CHECK(res.blobs >= 1);
	CHECK(store_image_lookup(s, id, &img, &err) < 0);
	CHECK_INT(tree_count_entries(tfmt("%s/layers", store_root(s))), 0);
	store_close(s);
}

TEST(store_tag_and_list)
{
	struct store *s = open_tmp_store();
	_cleanup_free_ char *tar = make_rootfs_tar("rootfs.tar"), *id = NULL;
	struct store_image_info *v;
	size_t n;
	struct err err;

	REQUIRE(s);
	REQUIRE(store_import(s, tar, "a:1", NULL, &id, &err) == 0);
	REQUIRE(store_tag(s, "a:1", "docker.io/library/b", &err) == 0);
	REQUIRE(store_list(s, &v, &n, &err) == 0);
	REQUIRE(n == 1);
	CHECK_STR(v[0].refs[0], "a:1");
	CHECK_STR(v[0].refs[1], "b:latest");
	CHECK(v[0].refs[2] == NULL);
	CHECK_INT(v[0].n_layers, 1);
	store_list_free(v, n);
	/* Removing one of two references keeps the image. */
	REQUIRE(store_remove(s, "a:1", &err) == 0);
	REQUIRE(store_list(s, &v, &n, &err) == 0);
	CHECK_INT(n, 1);
	store_list_free(v, n);
	REQUIRE(store_remove(s, "b", &err) == 0);
	REQUIRE(store_list(s, &v, &n, &err) == 0);
	CHECK_INT(n, 0);
	store_list_free(v, n);
	store_close(s);
}

/* The builder's path: parent image + an overlayfs upper dir. */
TEST(store_create_image_from_upper_dir)
{
	struct store *s = open_tmp_store();
	_cleanup_free_ char *tar = make_rootfs_tar("rootfs.tar"), *base = NULL, *child = NULL,
	                    *noop = NULL;
	_cleanup_free_ char *upper = tmp("upper");
	_cleanup_close_ int ufd = -1;
	_cleanup_json_ cJSON *cfg = cJSON_Parse("{\"Env\":[\"BUILT=1\"],\"Cmd\":[\"true\"]}");
	struct store_new_image n = {0};
	struct store_image *img = NULL;
	char *chains[2];
	struct err err;
	struct stat st;
	char v[4];

	REQUIRE(s);
	if (geteuid() != 0)
		SKIP("overlay whiteouts (mknod 0/0, trusted.* xattrs) need root");
	REQUIRE(store_import(s, tar, "base:1", NULL, &base, &err) == 0);
	/* The upper dir as overlayfs leaves it: a new file, a deleted file, a replaced dir. */
	REQUIRE(mkdir(upper, 0755) == 0 && mkdir(tfmt("%s/etc", upper), 0755) == 0 &&
	        mkdir(tfmt("%s/bin", upper), 0755) == 0);
	REQUIRE(write_file(tfmt("%s/etc/new", upper), "new\n", 4, 0600, &err) == 0);
	REQUIRE(mknod(tfmt("%s/etc/passwd", upper), S_IFCHR, makedev(0, 0)) == 0);
	REQUIRE(setxattr(tfmt("%s/bin", upper), "trusted.overlay.opaque", "y", 1, 0) == 0);
	REQUIRE(write_file(tfmt("%s/bin/only", upper), "x", 1, 0755, &err) == 0);
	ufd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	n.parent = "base:1";
	n.layer_dirfd = ufd;
	n.config = cfg;
	n.created_by = "RUN something";
	n.ref = "child:1";
	REQUIRE(store_create_image(s, &n, &child, &err) == 0);
	REQUIRE(store_image_lookup(s, "child:1", &img, &err) == 0);
	CHECK_INT(img->n_layers, 2);
	CHECK_STR(img->config.env[0], "BUILT=1");
	CHECK_INT(img->config.n_history, 2);
	oci_chain_ids(img->config.diff_ids, 2, chains);
	CHECK_STR(img->chain_ids[1], chains[1]);
	free(chains[0]);
	free(chains[1]);
	/* The new layer is in overlay form again. */
	REQUIRE(lstat(tfmt("%s/etc/passwd", img->layer_dirs[1]), &st) == 0);
	CHECK(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
	CHECK_INT(
	    getxattr(tfmt("%s/bin", img->layer_dirs[1]), "trusted.overlay.opaque", v, sizeof(v)),
	    1);
	CHECK(path_is_file(tfmt("%s/etc/new", img->layer_dirs[1])));
	CHECK(stat(tfmt("%s/etc/new", img->layer_dirs[1]), &st) == 0 &&
	      (st.st_mode & 07777) == 0600);
	/* The parent's layer is shared, not copied. */
	{
		struct store_image *b = NULL;

		REQUIRE(store_image_lookup(s, "base:1", &b, &err) == 0);
		CHECK_STR(b->layer_dirs[0], img->layer_dirs[0]);
		store_image_free(b);
	}
	store_image_free(img);
	/* A step without a layer (ENV ...) makes a new config over the same layers. */
	n.parent = "child:1";
	n.layer_dirfd = -1;
	n.config = NULL;
	n.created_by = "ENV nothing";
	n.ref = NULL;
	REQUIRE(store_create_image(s, &n, &noop, &err) == 0);
	CHECK(strcmp(noop, child) != 0);
	REQUIRE(store_image_lookup(s, noop, &img, &err) == 0);
	CHECK_INT(img->n_layers, 2);
	CHECK_INT(img->config.n_empty_layers, 1);
	store_image_free(img);
	/* FROM scratch with one layer. */
	n.parent = NULL;
	n.layer_dirfd = ufd;
	n.ref = "scratch:1";
	free(noop);
	noop = NULL;
	REQUIRE(store_create_image(s, &n, &noop, &err) == 0);
	REQUIRE(store_image_lookup(s, "scratch:1", &img, &err) == 0);
	CHECK_INT(img->n_layers, 1);
	store_image_free(img);
	CHECK_INT(tree_count_entries(tfmt("%s/tmp", store_root(s))), 0);
	store_close(s);
}

/* The builder's deadline bounds a commit: past it, nothing is stored. */
TEST(store_create_image_stops_at_the_deadline)
{
	struct store *s = open_tmp_store();
	_cleanup_free_ char *tar = make_rootfs_tar("rootfs.tar"), *base = NULL, *id = NULL;
	_cleanup_free_ char *upper = tmp("upper");
	_cleanup_close_ int ufd = -1;
	struct store_new_image n = {.parent = "base:1", .created_by = "RUN late", .ref = "late:1"};
	struct store_image_info *v = NULL;
	size_t count = 0;
	struct err err;

	REQUIRE(s);
	REQUIRE(store_import(s, tar, "base:1", NULL, &base, &err) == 0);
	REQUIRE(mkdir(upper, 0755) == 0);
	REQUIRE(write_file(tfmt("%s/file", upper), "x\n", 2, 0644, &err) == 0);
	REQUIRE(mkfifo(tfmt("%s/fifo", upper), 0644) == 0); /* archived, never opened */
	ufd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	n.layer_dirfd = ufd;
	n.deadline = mono_now() - 1;
	CHECK(store_create_image(s, &n, &id, &err) < 0);
	CHECK_INT(err.code, ETIMEDOUT);
	n.layer_dirfd = -1; /* a metadata-only commit too */
	CHECK(store_create_image(s, &n, &id, &err) < 0);
	CHECK_INT(err.code, ETIMEDOUT);
	REQUIRE(store_list(s, &v, &count, &err) == 0);
	CHECK_INT(count, 1);
	store_list_free(v, count);
	CHECK_INT(tree_count_entries(tfmt("%s/tmp", store_root(s))), 0);
	CHECK_INT(tree_count_entries(tfmt("%s/layers", store_root(s))), 1);
	n.layer_dirfd = ufd;
	n.deadline = mono_now() + 60;
	alarm(30); /* a FIFO opened by mistake blocks: fail instead of hanging */
	CHECK(store_create_image(s, &n, &id, &err) == 0);
	store_close(s);
}

/* The store never writes a config it cannot read back, and an image whose config
 * (or record) cannot be read is not listed, is a clear error to look up, and is
 * removed by rm and by prune (references and all). */
TEST(store_unreadable_images_are_not_listed_and_can_be_removed)
{
	struct store *s = open_tmp_store();
	_cleanup_free_ char *tar = make_rootfs_tar("rootfs.tar"), *good = NULL, *bad = NULL;
	_cleanup_free_ char *id = NULL, *huge = xmalloc(STORE_MAX_CONFIG + 2);
	struct store_image_info *v = NULL;
	struct store_prune_result pr;
	struct store_image *img = NULL;
	size_t count = 0;
	struct err err;

	REQUIRE(s);
	REQUIRE(store_import(s, tar, "good:1", NULL, &good, &err) == 0);
	{
		/* A config over the limit is refused before anything is stored. */
		_cleanup_json_ cJSON *cfg = cJSON_CreateObject();
		struct store_new_image n = {.parent = "good:1", .layer_dirfd = -1, .ref = "big:1"};

		memset(huge, 'x', STORE_MAX_CONFIG);
		huge[STORE_MAX_CONFIG] = '\0';
		cJSON_AddStringToObject(cfg, "User", huge);
		n.config = cfg;
		CHECK(store_create_image(s, &n, &id, &err) < 0);
		CHECK_INT(err.code, EFBIG);
		CHECK_CONTAINS(err.msg, "more than the 4194304 an image config may have");
		CHECK_INT(tree_count_entries(tfmt("%s/images", store_root(s))), 1);
		CHECK_INT(tree_count_entries(tfmt("%s/blobs/sha256", store_root(s))), 1);
	}
	/* Another image whose config blob an older rollout wrote too large, then one
	 * whose blob is not JSON. */
	REQUIRE(store_import(s, tar, "bad:1", (char *[]){"ENV X=1", NULL}, &bad, &err) == 0);
	REQUIRE(write_file(tfmt("%s/blobs/sha256/%s", store_root(s), oci_digest_hex(bad)), huge,
	                   STORE_MAX_CONFIG + 1, 0644, &err) == 0);
	CHECK(store_image_lookup(s, "bad:1", &img, &err) < 0);
	CHECK_CONTAINS(err.msg, "cannot be read");
	CHECK_CONTAINS(err.msg, "larger than 4194304 bytes");
	CHECK_CONTAINS(err.msg, "rollout image rm");
	REQUIRE(store_list(s, &v, &count, &err) == 0);
	CHECK_INT(count, 1);
	CHECK_STR(v[0].id, good);
	store_list_free(v, count);
	REQUIRE(store_remove(s, "bad:1", &err) == 0);
	CHECK(!path_exists(tfmt("%s/images/%s.json", store_root(s), oci_digest_hex(bad))));
	free(bad);
	bad = NULL;
	REQUIRE(store_import(s, tar, "bad:2", (char *[]){"ENV X=2", NULL}, &bad, &err) == 0);
	REQUIRE(write_file(tfmt("%s/blobs/sha256/%s", store_root(s), oci_digest_hex(bad)),
	                   "{not json", 9, 0644, &err) == 0);
	CHECK(store_image_lookup(s, bad, &img, &err) < 0);
	CHECK_CONTAINS(err.msg, "cannot be read");
	/* prune removes it although a reference names it; the good image stays. */
	REQUIRE(store_prune(s, &pr, &err) == 0);
	CHECK_INT(pr.images, 1);
	CHECK(store_image_lookup(s, "bad:2", &img, &err) < 0 && err.code == ENOENT);
	REQUIRE(store_image_lookup(s, "good:1", &img, &err) == 0);
	store_image_free(img);
	REQUIRE(store_list(s, &v, &count, &err) == 0);
	CHECK_INT(count, 1);
	store_list_free(v, count);
	store_close(s);
}

TEST(store_prune_removes_only_abandoned_work_dirs)
{
	struct store *s = open_tmp_store();
	struct store_job live;
	struct store_prune_result res;
	struct err err;
	pid_t pid;
	int status;

	REQUIRE(s);
	REQUIRE(store_job_create(s, &live, &err) == 0);
	pid = fork();
	if (pid == 0) {
		struct store_job dead;
		struct store *s2 = NULL;

		/* A process that dies in the middle of a load. */
		if (store_open(store_root(s), &s2, &err) < 0 ||
		    store_job_create(s2, &dead, &err) < 0)
			_exit(1);
		mkdir(tfmt("%s/L0", dead.dir), 0700);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_INT(tree_count_entries(tfmt("%s/tmp", store_root(s))), 4);
	REQUIRE(store_prune(s, &res, &err) == 0);
	CHECK_INT(res.tmp, 1);
	CHECK_INT(tree_count_entries(tfmt("%s/tmp", store_root(s))), 2);
	CHECK(path_is_dir(live.dir));
	store_job_destroy(s, &live);
	CHECK_INT(tree_count_entries(tfmt("%s/tmp", store_root(s))), 0);
	store_close(s);
}

TEST(store_import_errors_leave_no_trace)
{
	struct store *s = open_tmp_store();
	_cleanup_free_ char *bad = tmp("bad.tar"), *id = NULL;
	struct err err;
	char junk[2048];

	REQUIRE(s);
	memset(junk, 'x', sizeof(junk));
	REQUIRE(write_file(bad, junk, sizeof(junk), 0644, &err) == 0);
	CHECK(store_import(s, bad, "bad:1", NULL, &id, &err) < 0);
	CHECK_CONTAINS(err.msg, "checksum mismatch");
	CHECK(store_import(s, tpath("missing.tar"), "bad:1", NULL, &id, &err) < 0);
	CHECK_CONTAINS(err.msg, "No such file");
	CHECK(store_import(s, bad, "bad name", NULL, &id, &err) < 0);
	CHECK_CONTAINS(err.msg, "invalid image reference");
	CHECK_INT(tree_count_entries(tfmt("%s/layers", store_root(s))), 0);
	CHECK_INT(tree_count_entries(tfmt("%s/tmp", store_root(s))), 0);
	CHECK_INT(tree_count_entries(tfmt("%s/images", store_root(s))), 0);
	store_close(s);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	va_list ap;
	_cleanup_free_ char *cmd = NULL, *full = NULL;
	int rc;

	va_start(ap, fmt);
	cmd = xvasprintf(fmt, ap);
	va_end(ap);
	full = xasprintf("bash -c 'source %s/tests/lib/images.sh && %s'", test_srcdir(), cmd);
	rc = system(full);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* store_load on every archive form (also run under ASan, unlike the CLI tests). */
TEST(store_load_archive_forms)
{
	struct store *s = open_tmp_store();
	_cleanup_free_ char *l1 = make_rootfs_tar("l1.tar"), *d = tmp("w");
	struct store_image *img = NULL;
	struct err err;
	static const char *const forms[] = {"save.tar", "oci", "oci.tar", "d25.tar", "save.tar.gz"};

	REQUIRE(s);
	REQUIRE(mkdir(d, 0755) == 0);
	REQUIRE(
	    sh("cd %s && mkdir -p t/etc && : >t/etc/.wh.passwd && echo 2 >t/two && "
	       "tar -C t -cf l2.tar etc/.wh.passwd two && "
	       "docker_archive save.tar form/test:1 %s l2.tar && "
	       "oci_from_docker_save save.tar oci form/test:1 10 1 && tar -C oci -cf oci.tar . && "
	       "oci_from_docker_save save.tar oci-flat form/test:1 01 0 && "
	       "d25_from_oci oci-flat d25.tar form/test:1 && gzip -c save.tar >save.tar.gz",
	       d, l1) == 0);
	for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
		_cleanup_strvs_ struct strv loaded = STRV_INIT;
		_cleanup_free_ char *path = xasprintf("%s/%s", d, forms[i]);
		struct store_prune_result res;

		if (store_load(s, path, i == 0 ? "extra:1" : NULL, &loaded, &err) < 0) {
			test_fail_at(__FILE__, __LINE__, "%s: %s", forms[i], err.msg);
			continue;
		}
		CHECK(strv_contains(&loaded, "form/test:1"));
		REQUIRE(store_image_lookup(s, "form/test:1", &img, &err) == 0);
		CHECK_INT(img->n_layers, 2);
		CHECK(path_is_file(tfmt("%s/two", img->layer_dirs[1])));
		CHECK(path_is_file(tfmt("%s/etc/passwd", img->layer_dirs[0])));
		store_image_free(img);
		/* Start the next form from an empty store. */
		CHECK(store_remove(s, "form/test:1", &err) == 0);
		store_remove(s, "extra:1", &err);
		CHECK(store_prune(s, &res, &err) == 0);
		CHECK_INT(tree_count_entries(tfmt("%s/layers", store_root(s))), 0);
	}
	/* Errors on the same paths: a missing blob, a multi-image archive with --tag. */
	REQUIRE(sh("cd %s && rm oci/blobs/sha256/$(ls -S oci/blobs/sha256 | head -1)", d) == 0);
	{
		_cleanup_strvs_ struct strv loaded = STRV_INIT;

		CHECK(store_load(s, tfmt("%s/oci", d), NULL, &loaded, &err) < 0);
		CHECK_CONTAINS(err.msg, "is missing");
		CHECK(store_load(s, tfmt("%s/nope", d), NULL, &loaded, &err) < 0);
		CHECK_CONTAINS(err.msg, "No such file");
	}
	CHECK_INT(tree_count_entries(tfmt("%s/layers", store_root(s))), 0);
	CHECK_INT(tree_count_entries(tfmt("%s/tmp", store_root(s))), 0);
	store_close(s);
}

static int save_to_fd(void *ctx, const void *data, size_t n, struct err *err)
{
	const int *fd = ctx;

	if (write(*fd, data, n) != (ssize_t)n)
		return err_sys(err, "write");
	return 0;
}

/* Give path b the mtime of path a. */
static void same_mtime(const char *a, const char *b)
{
	struct stat st;

	REQUIRE(lstat(a, &st) == 0);
	REQUIRE(utimensat(AT_FDCWD, b, (struct timespec[2]){st.st_atim, st.st_mtim},
	                  AT_SYMLINK_NOFOLLOW) == 0);
}

/* store_save: what `rollout image save` and the docker provider write. Loaded
 * into another store, the image has the same layers file by file (a whiteout and
 * an opaque directory included), the same config but its diff IDs, and the ID
 * store_save announced. */
TEST(store_save_round_trip)
{
	struct store *s = open_tmp_store(), *s2 = NULL;
	_cleanup_free_ char *tar = make_rootfs_tar("rootfs.tar"), *child = NULL, *saved = NULL;
	_cleanup_free_ char *upper = tmp("upper"), *out = tmp("saved.tar"), *root2 = tmp("store2");
	_cleanup_close_ int ufd = -1, ofd = -1;
	_cleanup_json_ cJSON *cfg = cJSON_Parse("{\"Env\":[\"BUILT=1\"],\"WorkingDir\":\"/app\"}");
	_cleanup_strvs_ struct strv loaded = STRV_INIT;
	struct store_new_image n = {0};
	struct store_image *a = NULL, *b = NULL;
	struct err err;

	REQUIRE(s);
	if (geteuid() != 0)
		SKIP("overlay whiteouts (mknod 0/0, trusted.* xattrs) need root");
	REQUIRE(store_import(s, tar, "base:1", NULL, NULL, &err) == 0);
	REQUIRE(mkdir(upper, 0755) == 0 && mkdir(tfmt("%s/etc", upper), 0755) == 0 &&
	        mkdir(tfmt("%s/bin", upper), 0755) == 0);
	REQUIRE(mknod(tfmt("%s/etc/passwd", upper), S_IFCHR, makedev(0, 0)) == 0);
	REQUIRE(setxattr(tfmt("%s/bin", upper), "trusted.overlay.opaque", "y", 1, 0) == 0);
	REQUIRE(write_file(tfmt("%s/bin/only", upper), "x", 1, 04755, &err) == 0);
	REQUIRE(chown(tfmt("%s/bin/only", upper), 12, 34) == 0);
	ufd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	n.parent = "base:1";
	n.layer_dirfd = ufd;
	n.config = cfg;
	n.created_by = "RUN something";
	n.ref = "child:1";
	REQUIRE(store_create_image(s, &n, &child, &err) == 0);

	ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	REQUIRE(ofd >= 0);
	{
		struct tar_output o = {save_to_fd, &ofd};

		REQUIRE(store_save(s, "child:1", "copy:1", &o, 0, &saved, &err) == 0);
	}
	REQUIRE(store_open(root2, &s2, &err) == 0);
	REQUIRE(store_load(s2, out, NULL, &loaded, &err) == 0);
	CHECK(strv_contains(&loaded, "copy:1"));
	REQUIRE(store_image_lookup(s, "child:1", &a, &err) == 0);
	REQUIRE(store_image_lookup(s2, "copy:1", &b, &err) == 0);
	CHECK_STR(b->id, saved);
	REQUIRE(a->n_layers == 2 && b->n_layers == 2);
	/* A layer's root directory is no entry of its tar (as in docker's): it has the
	 * load's time, a second after the original's when the clock ticks in between.
	 * It is compared for everything else. */
	same_mtime(a->layer_dirs[0], b->layer_dirs[0]);
	same_mtime(a->layer_dirs[1], b->layer_dirs[1]);
	for (size_t i = 0; i < 2; i++) {
		struct strbuf diff = STRBUF_INIT;

		if (!tree_compare(a->layer_dirs[i], b->layer_dirs[i], "", TREE_CMP_XATTRS, &diff))
			test_fail_at(__FILE__, __LINE__, "layer %zu differs: %s", i, sb_str(&diff));
		sb_release(&diff);
	}
	CHECK_STR(b->config.env[0], "BUILT=1");
	CHECK_STR(b->config.working_dir, "/app");
	CHECK_INT(b->config.n_history, a->config.n_history);
	/* Not in the store: an error naming it, and nothing written. */
	{
		struct tar_output o = {save_to_fd, &ofd};
		off_t before = lseek(ofd, 0, SEEK_CUR);

		CHECK(store_save(s, "nope:1", NULL, &o, 0, NULL, &err) < 0);
		CHECK_INT(err.code, ENOENT);
		CHECK_CONTAINS(err.msg, "nope");
		CHECK(lseek(ofd, 0, SEEK_CUR) == before);
	}
	store_image_free(a);
	store_image_free(b);
	store_close(s2);
	store_close(s);
}
