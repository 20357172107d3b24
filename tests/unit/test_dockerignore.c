/* .dockerignore matching with Docker's semantics. */
#include "harness.h"
#include "image/dockerignore.h"
#include "rollout/err.h"

static struct dockerignore *parse(const char *text)
{
	struct dockerignore *di = NULL;
	struct err err = {0};

	if (dockerignore_parse(text, strlen(text), &di, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "parse: %s", err.msg);
	return di;
}

#define EXCL(di, path) CHECK(dockerignore_excluded(di, path))
#define KEEP(di, path) CHECK(!dockerignore_excluded(di, path))

TEST(dockerignore_star_stays_in_one_component)
{
	struct dockerignore *di = parse("*.md\ntemp?\n");

	REQUIRE(di);
	EXCL(di, "README.md");
	KEEP(di, "docs/README.md");
	EXCL(di, "temp1");
	KEEP(di, "temp12");
	KEEP(di, "temp");
	EXCL(di, "temp1/inside/file"); /* a matching parent excludes everything below */
	KEEP(di, "READMEXmd");
	dockerignore_free(di);
}

TEST(dockerignore_double_star_spans_components)
{
	struct dockerignore *di = parse("**/*.pyc\na/**/b\ndir/**\n");

	REQUIRE(di);
	EXCL(di, "x.pyc");
	EXCL(di, "pkg/sub/x.pyc");
	KEEP(di, "pkg/sub/x.py");
	EXCL(di, "a/b");
	EXCL(di, "a/x/b");
	EXCL(di, "a/x/y/b");
	EXCL(di, "a/x/y/b/c");
	KEEP(di, "a/x/y/bc");
	KEEP(di, "dir"); /* "dir/..." excludes the contents, not the directory */
	EXCL(di, "dir/x");
	EXCL(di, "dir/x/y");
	dockerignore_free(di);
}

TEST(dockerignore_directories_and_exceptions)
{
	struct dockerignore *di = parse("# build output\n"
	                                "node_modules\n"
	                                "docs\n"
	                                "!docs/keep.txt\n"
	                                "*.txt\n"
	                                "!important.txt\n");

	REQUIRE(di);
	EXCL(di, "node_modules");
	EXCL(di, "node_modules/pkg/index.js");
	EXCL(di, "docs/other.md");
	KEEP(di, "docs/keep.txt"); /* "*.txt" comes later but stays in the root */
	KEEP(di, "important.txt");
	EXCL(di, "notes.txt");
	KEEP(di, "src/notes.txt");
	CHECK(dockerignore_may_include_below(di, "docs"));
	CHECK(!dockerignore_may_include_below(di, "node_modules"));
	CHECK(!dockerignore_may_include_below(di, "doc"));
	dockerignore_free(di);

	di = parse("docs\n!docs/keep.txt\n");
	KEEP(di, "docs/keep.txt");
	EXCL(di, "docs/drop.txt");
	dockerignore_free(di);
}

TEST(dockerignore_last_match_wins)
{
	struct dockerignore *di = parse("*.txt\n!important.txt\nimportant.txt\n");

	REQUIRE(di);
	EXCL(di, "important.txt");
	dockerignore_free(di);
	di = parse("**\n!Dockerfile\n!src\n");
	EXCL(di, "anything");
	KEEP(di, "Dockerfile");
	KEEP(di, "src/main.c");
	EXCL(di, "other/main.c");
	dockerignore_free(di);
}

TEST(dockerignore_patterns_are_cleaned_and_trimmed)
{
	struct dockerignore *di = parse("\xef\xbb\xbf/abs\n  spaced.txt  \n./dir/../file\n"
	                                "a//b\n!  reincluded/x\nreincluded\n\n\t\n");

	REQUIRE(di);
	EXCL(di, "abs");
	EXCL(di, "spaced.txt");
	EXCL(di, "file");
	EXCL(di, "a/b");
	KEEP(di, "dir");
	dockerignore_free(di);
}

TEST(dockerignore_classes_and_escapes)
{
	struct dockerignore *di = parse("[a-c].txt\n[^x]y.bin\nlit\\*star\nplus+(paren)|x\n");

	REQUIRE(di);
	EXCL(di, "b.txt");
	KEEP(di, "d.txt");
	EXCL(di, "ay.bin");
	KEEP(di, "xy.bin");
	EXCL(di, "lit*star");
	KEEP(di, "litXstar");
	EXCL(di, "plus+(paren)|x");
	KEEP(di, "plusss(paren)|x");
	dockerignore_free(di);
}

TEST(dockerignore_empty_and_errors)
{
	struct dockerignore *di = parse("");
	struct err err = {0};

	REQUIRE(di);
	KEEP(di, "anything");
	CHECK(!dockerignore_may_include_below(di, "x"));
	dockerignore_free(di);
	CHECK(dockerignore_parse("ok\n!\n", 5, &di, &err) < 0);
	CHECK_CONTAINS(err.msg, ".dockerignore:2");
	CHECK(dockerignore_parse("[unclosed\n", 10, &di, &err) < 0);
	CHECK_CONTAINS(err.msg, "bad pattern");
}
