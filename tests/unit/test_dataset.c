/* Unit tests for local dataset resolution (filters, order, errors) and the
 * task checksum (stable under mtime/owner/order changes, sensitive to content,
 * mode, names and symlink targets). */
#include "cli/cli.h"
#include "cli/job_overrides.h"
#include "config/dataset.h"
#include "config/job_config.h"
#include "config/task.h"
#include "config_testdata.h"
#include "harness.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char *tmp_path(const char *rel)
{
	return xasprintf("%s/%s", test_tmpdir(), rel);
}

static void put(const char *rel, const char *content, mode_t mode)
{
	_cleanup_free_ char *path = tmp_path(rel);
	_cleanup_free_ char *dir = xstrdup(path);
	struct err err;

	*strrchr(dir, '/') = '\0';
	if (mkdir_p(dir, 0755, &err) < 0 ||
	    write_file(path, content, strlen(content), mode, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	chmod(path, mode);
}

/* A valid task under the scratch dir (tests/test.sh unless no_tests). */
static void make_task(const char *rel, bool no_tests)
{
	_cleanup_free_ char *toml = xasprintf("%s/task.toml", rel);
	_cleanup_free_ char *instr = xasprintf("%s/instruction.md", rel);
	_cleanup_free_ char *docker = xasprintf("%s/environment/Dockerfile", rel);
	_cleanup_free_ char *test = xasprintf("%s/tests/test.sh", rel);

	put(toml, "version = \"1.0\"\n", 0644);
	put(instr, "Do it.\n", 0644);
	put(docker, "FROM scratch\n", 0644);
	if (!no_tests)
		put(test, "#!/bin/sh\n", 0755);
}

static void make_dataset(void)
{
	make_task("ds/beta", false);
	make_task("ds/alpha", false);
	make_task("ds/gamma-slow", false);
	make_task("ds/Zeta", false);
	make_task("ds/no-tests", true);
	put("ds/notes/readme.txt", "not a task\n", 0644);
	put("ds/file.txt", "a file\n", 0644);
}

static void check_names(const struct dataset *ds, const char *const *want, size_t n)
{
	CHECK_INT(ds->n_tasks, n);
	for (size_t i = 0; i < n && i < ds->n_tasks; i++)
		CHECK_STR(ds->tasks[i].name, want[i]);
}

TEST(dataset_directory_of_tasks_is_sorted_and_skips_non_tasks)
{
	static const char *const want[] = {"Zeta", "alpha", "beta", "gamma-slow"};
	_cleanup_free_ char *root = tmp_path("ds");
	_cleanup_free_ char *alpha = tmp_path("ds/alpha");
	struct dataset ds;
	struct err err = {0};

	make_dataset();
	REQUIRE(dataset_resolve_local(root, NULL, 0, &ds, &err) == 0);
	CHECK_STR(ds.name, "ds");
	CHECK_STR(ds.path, root);
	check_names(&ds, want, ARRAY_SIZE(want));
	CHECK_STR(ds.tasks[1].path, alpha);
	dataset_release(&ds);
}

TEST(dataset_without_verification_includes_tasks_without_tests)
{
	static const char *const want[] = {"Zeta", "alpha", "beta", "gamma-slow", "no-tests"};
	_cleanup_free_ char *root = tmp_path("ds");
	struct dataset ds;
	struct err err = {0};

	make_dataset();
	REQUIRE(dataset_resolve_local(root, NULL, TASK_NO_VERIFY, &ds, &err) == 0);
	check_names(&ds, want, ARRAY_SIZE(want));
	dataset_release(&ds);
}

TEST(dataset_path_to_a_task_is_one_task_without_a_dataset_name)
{
	_cleanup_free_ char *task = tmp_path("ds/beta");
	struct dataset ds;
	struct err err = {0};

	make_dataset();
	REQUIRE(dataset_resolve_local(task, NULL, 0, &ds, &err) == 0);
	CHECK(ds.name == NULL);
	REQUIRE(ds.n_tasks == 1);
	CHECK_STR(ds.tasks[0].name, "beta");
	CHECK_STR(ds.tasks[0].path, task);
	dataset_release(&ds);
}

TEST(dataset_filters_include_then_exclude_then_limit)
{
	static char *include[] = {"*a*", "Z*", NULL};
	static char *exclude[] = {"*-slow", NULL};
	static const char *const want_inc[] = {"Zeta", "alpha", "beta", "gamma-slow"};
	static const char *const want_exc[] = {"Zeta", "alpha", "beta"};
	static const char *const want_lim[] = {"Zeta", "alpha"};
	_cleanup_free_ char *root = tmp_path("ds");
	struct task_filter f = {include, NULL, -1};
	struct dataset ds;
	struct err err = {0};

	make_dataset();
	REQUIRE(dataset_resolve_local(root, &f, 0, &ds, &err) == 0);
	check_names(&ds, want_inc, ARRAY_SIZE(want_inc));
	dataset_release(&ds);
	f.exclude_task_names = exclude;
	REQUIRE(dataset_resolve_local(root, &f, 0, &ds, &err) == 0);
	check_names(&ds, want_exc, ARRAY_SIZE(want_exc));
	dataset_release(&ds);
	f.n_tasks = 2;
	REQUIRE(dataset_resolve_local(root, &f, 0, &ds, &err) == 0);
	check_names(&ds, want_lim, ARRAY_SIZE(want_lim));
	dataset_release(&ds);
	f.n_tasks = 100;
	REQUIRE(dataset_resolve_local(root, &f, 0, &ds, &err) == 0);
	check_names(&ds, want_exc, ARRAY_SIZE(want_exc));
	dataset_release(&ds);
}

TEST(dataset_filter_errors_name_the_problem)
{
	static char *nomatch[] = {"alpha", "delta*", NULL};
	static char *everything[] = {"*", NULL};
	_cleanup_free_ char *root = tmp_path("ds");
	struct task_filter f = {nomatch, NULL, -1};
	struct dataset ds;
	struct err err = {0};

	make_dataset();
	CHECK(dataset_resolve_local(root, &f, 0, &ds, &err) < 0);
	CHECK_STR(err.msg, "task name pattern 'delta*' matches no task in ds (Zeta, alpha, beta, "
	                   "gamma-slow)");
	f.task_names = NULL;
	f.exclude_task_names = everything;
	CHECK(dataset_resolve_local(root, &f, 0, &ds, &err) < 0);
	CHECK_STR(err.msg, "no task of ds is left after excluding task names");
	f.exclude_task_names = NULL;
	f.n_tasks = 0;
	CHECK(dataset_resolve_local(root, &f, 0, &ds, &err) < 0);
	CHECK_STR(err.msg, "n_tasks is 0: no task of ds would run");
}

TEST(dataset_path_errors)
{
	_cleanup_free_ char *missing = tmp_path("nope");
	_cleanup_free_ char *empty = tmp_path("empty");
	_cleanup_free_ char *file = tmp_path("ds/file.txt");
	_cleanup_free_ char *want = NULL;
	struct dataset ds;
	struct err err = {0};

	make_dataset();
	put("empty/sub/x", "x", 0644);
	CHECK(dataset_resolve_local(missing, NULL, 0, &ds, &err) < 0);
	want = xasprintf("%s: No such file or directory", missing);
	CHECK_STR(err.msg, want);
	CHECK(dataset_resolve_local(file, NULL, 0, &ds, &err) < 0);
	CHECK_CONTAINS(err.msg, "file.txt: not a task or dataset directory");
	CHECK(dataset_resolve_local(empty, NULL, 0, &ds, &err) < 0);
	CHECK_CONTAINS(err.msg, "empty: not a task, and no directory in it is one");
}

TEST(dataset_test_dataset_resolves)
{
	struct dataset ds;
	struct err err = {0};

	testdata_chdir();
	REQUIRE(dataset_resolve_local("test-dataset", NULL, 0, &ds, &err) == 0);
	CHECK_STR(ds.name, "test-dataset");
	REQUIRE(ds.n_tasks >= 2);
	/* sorted bytewise, every child is a task (README.md is skipped) */
	for (size_t i = 1; i < ds.n_tasks; i++)
		CHECK(strcmp(ds.tasks[i - 1].name, ds.tasks[i].name) < 0);
	{
		bool found = false;

		for (size_t i = 0; i < ds.n_tasks; i++)
			if (!strcmp(ds.tasks[i].name, "hello-world")) {
				found = true;
				CHECK_STR(ds.tasks[i].path, "test-dataset/hello-world");
			}
		CHECK(found);
	}
	dataset_release(&ds);
}

static void checksum_of(const char *rel, char out[SHA256_HEX_LEN + 1])
{
	_cleanup_free_ char *dir = tmp_path(rel);
	struct err err = {0};

	if (task_checksum(dir, out, &err) < 0) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		out[0] = '\0';
	}
}

TEST(checksum_follows_the_documented_format)
{
	char got[SHA256_HEX_LEN + 1], a[SHA256_HEX_LEN + 1], c[SHA256_HEX_LEN + 1];
	char l[SHA256_HEX_LEN + 1], want[SHA256_HEX_LEN + 1];
	_cleanup_free_ char *link = tmp_path("t/b/l");
	_cleanup_sb_ struct strbuf m = STRBUF_INIT;

	put("t/a", "x", 0644);
	put("t/b/c", "y", 0755);
	REQUIRE(symlink("../a", link) == 0);
	checksum_of("t", got);
	sha256_hex("x", 1, a);
	sha256_hex("y", 1, c);
	sha256_hex("../a", 4, l);
	sb_add(&m, "rollout-task-checksum-v1", 25);
	sb_addf(&m, "f %s a", a);
	sb_addc(&m, '\0');
	sb_addf(&m, "x %s b/c", c);
	sb_addc(&m, '\0');
	sb_addf(&m, "l %s b/l", l);
	sb_addc(&m, '\0');
	sha256_hex(m.buf, m.len, want);
	CHECK_STR(got, want);
}

TEST(checksum_is_stable_across_runs_copies_mtimes_and_owners)
{
	char first[SHA256_HEX_LEN + 1], again[SHA256_HEX_LEN + 1], copy[SHA256_HEX_LEN + 1];
	char touched[SHA256_HEX_LEN + 1], chowned[SHA256_HEX_LEN + 1], perms[SHA256_HEX_LEN + 1];
	char emptydir[SHA256_HEX_LEN + 1];
	_cleanup_free_ char *f = tmp_path("one/tests/test.sh");
	_cleanup_free_ char *g = tmp_path("one/instruction.md");
	_cleanup_free_ char *d = tmp_path("one/environment/empty");
	struct timeval times[2] = {{1000000, 0}, {1000000, 0}};

	/* Same content created in another order: readdir order differs, the sum does not. */
	make_task("one", false);
	put("one/tests/data/z.txt", "z\n", 0644);
	put("two/tests/data/z.txt", "z\n", 0644);
	make_task("two", false);
	checksum_of("one", first);
	checksum_of("one", again);
	checksum_of("two", copy);
	CHECK_STR(again, first);
	CHECK_STR(copy, first);
	REQUIRE(utimes(f, times) == 0);
	checksum_of("one", touched);
	CHECK_STR(touched, first);
	if (geteuid() == 0) {
		REQUIRE(chown(f, 65534, 65534) == 0);
		REQUIRE(lchown(g, 12345, 12345) == 0);
	}
	checksum_of("one", chowned);
	CHECK_STR(chowned, first);
	REQUIRE(chmod(g, 0600) == 0); /* no execute bit involved: same */
	checksum_of("one", perms);
	CHECK_STR(perms, first);
	REQUIRE(mkdir(d, 0755) == 0); /* like git, empty directories do not count */
	checksum_of("one", emptydir);
	CHECK_STR(emptydir, first);
}

TEST(checksum_changes_with_content_mode_names_and_links)
{
	char base[SHA256_HEX_LEN + 1], sum[SHA256_HEX_LEN + 1], linked[SHA256_HEX_LEN + 1];
	_cleanup_free_ char *f = tmp_path("t/instruction.md");
	_cleanup_free_ char *moved = tmp_path("t/instructions.md");
	_cleanup_free_ char *link = tmp_path("t/link");
	struct err err;

	make_task("t", false);
	checksum_of("t", base);
	REQUIRE(write_file(f, "Do it!\n", 7, 0644, &err) == 0);
	checksum_of("t", sum);
	CHECK(strcmp(sum, base) != 0);
	REQUIRE(write_file(f, "Do it.\n", 7, 0644, &err) == 0);
	checksum_of("t", sum);
	CHECK_STR(sum, base);
	REQUIRE(chmod(f, 0755) == 0);
	checksum_of("t", sum);
	CHECK(strcmp(sum, base) != 0);
	REQUIRE(chmod(f, 0644) == 0);
	REQUIRE(rename(f, moved) == 0);
	checksum_of("t", sum);
	CHECK(strcmp(sum, base) != 0);
	REQUIRE(rename(moved, f) == 0);
	/* A symlink out of the task is hashed by its target text, never followed. */
	REQUIRE(symlink("/etc/hostname", link) == 0);
	checksum_of("t", linked);
	CHECK(strcmp(linked, base) != 0);
	REQUIRE(unlink(link) == 0);
	REQUIRE(symlink("/etc/passwd", link) == 0);
	checksum_of("t", sum);
	CHECK(strcmp(sum, linked) != 0);
	REQUIRE(unlink(link) == 0);
	/* A symlinked directory is a link, not its contents. */
	REQUIRE(symlink("/usr", link) == 0);
	checksum_of("t", sum);
	CHECK(strcmp(sum, base) != 0);
}

TEST(checksum_refuses_special_files_and_missing_dirs)
{
	_cleanup_free_ char *fifo = tmp_path("t/pipe");
	_cleanup_free_ char *missing = tmp_path("missing");
	char sum[SHA256_HEX_LEN + 1];
	struct err err = {0};

	make_task("t", false);
	REQUIRE(mkfifo(fifo, 0644) == 0);
	{
		_cleanup_free_ char *dir = tmp_path("t");

		CHECK(task_checksum(dir, sum, &err) < 0);
		CHECK_CONTAINS(err.msg, "pipe: not a file, directory or symlink");
	}
	CHECK(task_checksum(missing, sum, &err) < 0);
	CHECK_CONTAINS(err.msg, "No such file or directory");
}

TEST(checksum_of_hello_world_is_reproducible)
{
	char a[SHA256_HEX_LEN + 1], b[SHA256_HEX_LEN + 1];
	struct err err = {0};

	testdata_chdir();
	REQUIRE(task_checksum("test-dataset/hello-world", a, &err) == 0);
	REQUIRE(task_checksum("test-dataset/hello-world/", b, &err) == 0);
	CHECK_STR(a, b);
	CHECK_INT(strlen(a), 64);
}

TEST(dataset_filter_of_a_job_entry)
{
	static const char *const argv[] = {"-p", "test-dataset", "-t", "hello-*", "-l", "1", NULL};
	struct job_overrides o;
	struct job_config c;
	struct task_filter f;
	struct dataset ds;
	struct err err = {0};

	testdata_chdir();
	job_config_init(&c);
	job_overrides_init(&o);
	for (size_t i = 0; argv[i]; i += 2)
		REQUIRE(cli_job_override_set(&o, argv[i], argv[i + 1], &err) == 0);
	REQUIRE(job_overrides_apply(&c, &o, &err) == 0);
	f = task_filter_of(&c.datasets[0]);
	CHECK_STR(f.task_names[0], "hello-*");
	CHECK(f.task_names[1] == NULL);
	CHECK(f.exclude_task_names == NULL);
	CHECK_INT(f.n_tasks, 1);
	REQUIRE(dataset_resolve_local(c.datasets[0].path, &f, 0, &ds, &err) == 0);
	CHECK_INT(ds.n_tasks, 1);
	dataset_release(&ds);
	job_overrides_release(&o);
	job_config_release(&c);
}
