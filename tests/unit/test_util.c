/* Unit tests for src/util: strings, paths, sha256, JSON printing, timestamps, files. */
#include "harness.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/sha256.h"
#include "rollout/strbuf.h"
#include "rollout/strmap.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

extern int sha256_force_generic;

TEST(strbuf_grows_and_formats)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;

	for (int i = 0; i < 1000; i++)
		sb_addf(&sb, "%d,", i);
	CHECK(sb.len > 3000);
	CHECK(str_starts_with(sb.buf, "0,1,2,"));
	CHECK(str_ends_with(sb.buf, "998,999,"));
	CHECK_INT(strlen(sb.buf), sb.len);
}

TEST(shell_quote_escapes_single_quotes)
{
	_cleanup_free_ char *q = shell_quote("it's $HOME");

	CHECK_STR(q, "'it'\\''s $HOME'");
}

TEST(path_clean_relative_cases)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"a/b/c", "a/b/c"},   {"/a//b/./c/", "a/b/c"}, {"a/../b", "b"},     {"./", ""},
	    {"a/b/../../c", "c"}, {"../x", NULL},          {"a/../../x", NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *got = path_clean_relative(cases[i].in);

		if (!cases[i].out)
			CHECK(got == NULL);
		else
			CHECK_STR(got, cases[i].out);
	}
}

TEST(path_join_avoids_double_slash)
{
	_cleanup_free_ char *a = path_join("/x/", "/y");
	_cleanup_free_ char *b = path_join("x", "y");

	CHECK_STR(a, "/x/y");
	CHECK_STR(b, "x/y");
}

static void sha_check(const char *msg, size_t len, const char *want)
{
	char hex[SHA256_HEX_LEN + 1];

	sha256_hex(msg, len, hex);
	CHECK_STR(hex, want);
}

TEST(sha256_known_vectors)
{
	for (int generic = 0; generic < 2; generic++) {
		sha256_force_generic = generic;
		sha_check("", 0,
		          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
		sha_check("abc", 3,
		          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
		sha_check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
		          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	}
}

TEST(sha256_fast_path_matches_generic_on_random_splits)
{
	static unsigned char data[100000];
	unsigned seed = 12345;

	for (size_t i = 0; i < sizeof(data); i++) {
		seed = seed * 1103515245 + 12345;
		data[i] = (unsigned char)(seed >> 16);
	}
	for (size_t len = 0; len < sizeof(data); len = len * 3 + 7) {
		char a[SHA256_HEX_LEN + 1], b[SHA256_HEX_LEN + 1];
		struct sha256 s;

		sha256_force_generic = 0;
		sha256_init(&s);
		/* feed in uneven pieces to exercise the partial-block buffer */
		for (size_t off = 0; off < len;) {
			size_t n = (off % 97) + 1;

			if (n > len - off)
				n = len - off;
			sha256_update(&s, data + off, n);
			off += n;
		}
		sha256_final_hex(&s, a);
		sha256_force_generic = 1;
		sha256_hex(data, len, b);
		CHECK_STR(a, b);
	}
}

TEST(json_print_indents_four_spaces)
{
	_cleanup_json_ cJSON *v = cJSON_CreateObject();
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	cJSON *arr = cJSON_AddArrayToObject(v, "a");

	cJSON_AddItemToArray(arr, cJSON_CreateNumber(1));
	cJSON_AddItemToArray(arr, cJSON_CreateNumber(0.5));
	cJSON_AddStringToObject(v, "s", "q\"\n");
	cJSON_AddNullToObject(v, "n");
	cJSON_AddObjectToObject(v, "e");
	json_print(v, &sb);
	CHECK_STR(sb.buf,
	          "{\n    \"a\": [\n        1,\n        0.5\n    ],\n    \"s\": \"q\\\"\\n\",\n"
	          "    \"n\": null,\n    \"e\": {}\n}");
}

TEST(json_parse_reports_line_and_column)
{
	struct err err = {0};
	cJSON *v = NULL;
	const char *text = "{\n  \"a\": 1,\n  \"b\": ,\n}";

	CHECK(json_parse(text, strlen(text), "x.json", &v, &err) < 0);
	CHECK_CONTAINS(err.msg, "x.json:3:");
	CHECK(json_parse("{} x", 4, "y.json", &v, &err) < 0);
	CHECK_CONTAINS(err.msg, "unexpected data");
	CHECK(json_parse("", 0, "z.json", &v, &err) < 0);
	CHECK_CONTAINS(err.msg, "empty");
}

TEST(iso8601_round_trip)
{
	char buf[ISO8601_LEN];
	double t = 1764009420.123456, back = 0;

	iso8601_format(t, buf, sizeof(buf));
	CHECK_STR(buf, "2025-11-24T18:37:00.123456Z");
	REQUIRE(iso8601_parse(buf, &back) == 0);
	CHECK(back > t - 1e-5 && back < t + 1e-5);
	REQUIRE(iso8601_parse("2025-11-24T19:37:00.123456+01:00", &back) == 0);
	CHECK(back > t - 1e-5 && back < t + 1e-5);
	CHECK(iso8601_parse("yesterday", &back) < 0);
}

TEST(write_file_atomic_and_rm_rf)
{
	struct err err = {0};
	_cleanup_free_ char *dir = path_join(test_tmpdir(), "d/e/f");
	_cleanup_free_ char *file = path_join(dir, "x.txt");
	_cleanup_free_ char *top = path_join(test_tmpdir(), "d");
	_cleanup_free_ char *text = NULL;
	size_t len;

	REQUIRE(mkdir_p(dir, 0755, &err) == 0);
	REQUIRE(write_file_atomic(file, "hello", 5, 0600, &err) == 0);
	REQUIRE(read_file(file, 100, &text, &len, &err) == 0);
	CHECK_STR(text, "hello");
	CHECK(read_file(file, 3, &text, &len, &err) < 0);
	CHECK_INT(err.code, EFBIG);
	/* a read-only directory and a symlink pointing outside must not stop or escape rm_rf */
	CHECK(symlink("/etc", tpath("d/e/f/link")) == 0);
	chmod(dir, 0500);
	REQUIRE(rm_rf(top, &err) == 0);
	CHECK(!path_exists(top));
	CHECK(path_exists("/etc/passwd"));
}

TEST(err_wrap_prefixes_context)
{
	struct err err = {0};

	errno = ENOENT;
	err_sys(&err, "open %s", "/x");
	err_wrap(&err, "task %s", "t1");
	CHECK_STR(err.msg, "task t1: open /x: No such file or directory");
	CHECK_INT(err.code, ENOENT);
}

TEST(dir_names_sorted_lists_bytewise_and_leaves_the_fd_alone)
{
	_cleanup_strvs_ struct strv names = STRV_INIT;
	_cleanup_free_ char *dir = path_join(test_tmpdir(), "names");
	const char *made[] = {"b", "a", "B", ".hidden", "a0"};
	int fd;

	REQUIRE(mkdir(dir, 0755) == 0);
	for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
		_cleanup_free_ char *p = path_join(dir, made[i]);

		REQUIRE(mkdir(p, 0755) == 0);
	}
	fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	REQUIRE(dir_names_sorted(fd, &names) == 0);
	REQUIRE(names.n == 5);
	CHECK_STR(names.v[0], ".hidden");
	CHECK_STR(names.v[1], "B");
	CHECK_STR(names.v[2], "a");
	CHECK_STR(names.v[3], "a0");
	CHECK_STR(names.v[4], "b");
	/* a second listing through the same fd sees the same (no shared offset) */
	strv_release(&names);
	REQUIRE(dir_names_sorted(fd, &names) == 0);
	CHECK_INT((int)names.n, 5);
	close(fd);
	CHECK(dir_names_sorted(-1, &names) < 0);
	CHECK_INT(errno, EBADF);
}

TEST(dir_mark_topdir_sets_the_flag_where_the_filesystem_has_it)
{
	_cleanup_free_ char *dir = path_join(test_tmpdir(), "top");
	int fd, flags = 0;

	REQUIRE(mkdir(dir, 0755) == 0);
	dir_mark_topdir(dir);
	dir_mark_topdir(tpath("no-such-dir")); /* never fails */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0)
		CHECK(flags & FS_TOPDIR_FL);
	else
		test_skip("no inode flags on the test directory's filesystem");
	close(fd);
}

TEST(strmap_maps_borrowed_strings_to_values)
{
	_cleanup_strmap_ struct strmap m = STRMAP_INIT;
	struct strv keys = STRV_INIT;
	bool added;

	CHECK(strmap_get(&m, "absent") == NULL);
	for (size_t i = 0; i < 5000; i++)
		strv_pushf(&keys, "key-%zu", i);
	for (size_t i = 0; i < keys.n; i++) {
		CHECK_INT(*strmap_put(&m, keys.v[i], i, &added), i);
		CHECK(added);
	}
	/* a key already there keeps its value, whatever the new one */
	CHECK_INT(*strmap_put(&m, "key-42", 7, &added), 42);
	CHECK(!added);
	CHECK_INT(m.n, 5000);
	for (size_t i = 0; i < keys.n; i++) {
		char probe[32];
		size_t *v;

		snprintf(probe, sizeof(probe), "key-%zu", i);
		v = strmap_get(&m, probe);
		if (!v || *v != i)
			test_fail_at(__FILE__, __LINE__, "%s", probe);
	}
	CHECK(strmap_get(&m, "key-5000") == NULL);
	CHECK(strmap_get(&m, "") == NULL);
	CHECK(*strmap_put(&m, "", 9, NULL) == 9 && *strmap_get(&m, "") == 9);
	strv_release(&keys);
}
