/* Unit tests for Harbor's task checksum (config/dirhash.c). The expected values
 * were computed by tests/harbor/harbor_dirhash.py, a Python reimplementation of
 * dirhash(dir, "sha256") with dirhash-python's defaults, on the same trees. */
#include "config/dirhash.h"
#include "harness.h"
#include "rollout/alloc.h"
#include "rollout/err.h"
#include "rollout/fs.h"

#include <sys/stat.h>
#include <unistd.h>

static void put(const char *rel, const char *content)
{
	char *path = xasprintf("%s/%s", test_tmpdir(), rel);
	char *dir = xstrdup(path);
	struct err err;

	*strrchr(dir, '/') = '\0';
	if (mkdir_p(dir, 0755, &err) < 0 ||
	    write_file(path, content, strlen(content), 0644, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	free(dir);
	free(path);
}

static void mkdirs(const char *rel)
{
	char *path = xasprintf("%s/%s", test_tmpdir(), rel);
	struct err err;

	if (mkdir_p(path, 0755, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	free(path);
}

static void link_at(const char *target, const char *rel)
{
	char *path = xasprintf("%s/%s", test_tmpdir(), rel);

	if (symlink(target, path) < 0)
		test_fail_at(__FILE__, __LINE__, "symlink %s", path);
	free(path);
}

static const char *hash_of(const char *rel)
{
	static char out[SHA256_HEX_LEN + 1];
	char *path = xasprintf("%s/%s", test_tmpdir(), rel);
	struct err err = {0};

	if (task_dirhash(path, out, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	free(path);
	return out;
}

TEST(single_file)
{
	put("t2/a", "a");
	CHECK_STR(hash_of("t2"),
	          "275956f5f576a0f69bd1c2895f35f48e55131121e26a71df38dce58e5001e920");
}

/* A task with hidden files, empty directories (left out), a non-ASCII name, the same
 * content twice and a link inside the task (followed). */
TEST(task_tree)
{
	put("t1/instruction.md", "hello\n");
	put("t1/task.toml", "[verifier]\ntimeout_sec = 10.0\n");
	put("t1/environment/Dockerfile", "FROM scratch\n");
	put("t1/tests/test.sh", "#!/bin/bash\necho 1 > /logs/verifier/reward.txt\n");
	mkdirs("t1/empty/deeper");
	put("t1/sub/a/same.txt", "hello\n");
	put("t1/sub/.hidden", "");
	put("t1/sub/\xc3\xbcn\xc3\xaf.txt", "x");
	link_at("../instruction.md", "t1/sub/link.md");
	CHECK_STR(hash_of("t1"),
	          "523a7a431ace6fe99697eff74d632ef21370089c34771deda6a07b7bae1abe05");
}

/* Equal contents: descriptors differ only after the NUL, by name. */
TEST(equal_contents_sort_by_name)
{
	put("t3/b", "same");
	put("t3/a", "same");
	put("t3/d1/x", "same");
	put("t3/d2/x", "same");
	CHECK_STR(hash_of("t3"),
	          "8cca94c795be2b258a7978fb272bcc9f90cbd2f4ee3269d37411f6a90d264dfe");
}

/* rollout's one departure: links leading outside the task are not followed. */
TEST(links_outside_are_left_out)
{
	put("t4/a", "a");
	put("outside", "secret");
	link_at("../outside", "t4/out");
	link_at("/nonexistent/x", "t4/broken");
	CHECK_STR(hash_of("t4"),
	          "275956f5f576a0f69bd1c2895f35f48e55131121e26a71df38dce58e5001e920");
}

TEST(link_cycle_is_left_out)
{
	put("t5/a", "a");
	link_at(".", "t5/self");
	CHECK_STR(hash_of("t5"),
	          "275956f5f576a0f69bd1c2895f35f48e55131121e26a71df38dce58e5001e920");
}

TEST(empty_directory_is_an_error)
{
	char out[SHA256_HEX_LEN + 1];
	char *path = xasprintf("%s/t6", test_tmpdir());
	struct err err = {0};

	mkdirs("t6/only/empty");
	CHECK(task_dirhash(path, out, &err) < 0);
	free(path);
}
