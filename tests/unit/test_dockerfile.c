/* The Dockerfile parser and Docker's word expansion (src/image/dockerfile.c). */
#include "harness.h"
#include "image/dockerfile.h"
#include "rollout/err.h"
#include "rollout/strbuf.h"

#include <stdlib.h>
#include <string.h>

static struct dockerfile *parse_ok(const char *text)
{
	struct dockerfile *df = NULL;
	struct err err = {0};

	if (dockerfile_parse(text, strlen(text), "Dockerfile", &df, &err) < 0) {
		test_fail_at(__FILE__, __LINE__, "parse failed: %s", err.msg);
		return NULL;
	}
	return df;
}

/* The error message of a parse that must fail ("" when it did not fail). */
static const char *parse_err(const char *text)
{
	static struct err err;
	struct dockerfile *df = NULL;

	memset(&err, 0, sizeof(err));
	if (dockerfile_parse(text, strlen(text), "Dockerfile", &df, &err) == 0) {
		dockerfile_free(df);
		return "";
	}
	return err.msg;
}

static char *expand(const char *word, const char *const *vars)
{
	struct df_env env = {(char *const *)vars, 0};
	struct err err = {0};
	char *out = NULL;

	while (vars && vars[env.n])
		env.n++;
	if (df_expand_word(word, '\\', &env, &out, &err) < 0)
		return strdup(err.msg);
	return out;
}

#define CHECK_EXPAND(word, vars, want)                                                             \
	do {                                                                                       \
		char *got_ = expand(word, vars);                                                   \
		CHECK_STR(got_, want);                                                             \
		free(got_);                                                                        \
	} while (0)

TEST(dockerfile_instructions_and_lines)
{
	struct dockerfile *df = parse_ok("# a comment\n"
	                                 "FROM debian:12 AS base\n"
	                                 "\n"
	                                 "run apt-get update && \\\n"
	                                 "    # a comment inside\n"
	                                 "\n"
	                                 "    apt-get install -y x\n"
	                                 "COPY --chown=1:2 --from=base a b /dst/\n"
	                                 "CMD [\"sh\", \"-c\", \"echo hi\"]\n"
	                                 "ENTRYPOINT echo $HOME\n");

	REQUIRE(df);
	REQUIRE(df->n == 5);
	CHECK(df->v[0].cmd == DF_FROM);
	CHECK_INT(df->v[0].line, 2);
	CHECK_INT(df->v[0].n_args, 3);
	CHECK_STR(df->v[0].args[2], "base");
	CHECK(df->v[1].cmd == DF_RUN);
	CHECK_INT(df->v[1].line, 4);
	CHECK_INT(df->v[1].end_line, 7);
	CHECK(!df->v[1].json);
	CHECK_STR(df->v[1].args[0], "apt-get update &&     apt-get install -y x");
	CHECK(df->v[2].cmd == DF_COPY);
	CHECK_INT(df->v[2].n_flags, 2);
	CHECK_STR(df_instr_flag(&df->v[2], "chown")->value, "1:2");
	CHECK_STR(df_instr_flag(&df->v[2], "from")->value, "base");
	CHECK_INT(df->v[2].n_args, 3);
	CHECK_STR(df->v[2].args[2], "/dst/");
	CHECK(df->v[3].json);
	CHECK_INT(df->v[3].n_args, 3);
	CHECK_STR(df->v[3].args[2], "echo hi");
	CHECK(!df->v[4].json);
	CHECK_STR(df->v[4].args[0], "echo $HOME");
	dockerfile_free(df);
}

TEST(dockerfile_directives)
{
	struct dockerfile *df = parse_ok("# syntax=docker/dockerfile:1\n"
	                                 "#escape=`\n"
	                                 "FROM scratch\n"
	                                 "RUN echo a `\n"
	                                 "  b\\c\n");

	REQUIRE(df);
	CHECK_STR(df->syntax, "docker/dockerfile:1");
	CHECK_INT(df->escape, '`');
	REQUIRE(df->n == 2);
	CHECK_STR(df->v[1].args[0], "echo a   b\\c");
	dockerfile_free(df);

	/* After an empty line or any other line, "# escape=" is a comment. */
	df = parse_ok("\n# escape=`\nFROM scratch\nRUN a \\\n b\n");
	REQUIRE(df);
	CHECK_INT(df->escape, '\\');
	CHECK_STR(df->v[1].args[0], "a  b");
	dockerfile_free(df);
	df = parse_ok("# hello\n# escape=`\nFROM scratch\n");
	REQUIRE(df);
	CHECK_INT(df->escape, '\\');
	dockerfile_free(df);
	CHECK(strstr(parse_err("# escape=x\nFROM scratch\n"), "Dockerfile:1: invalid escape"));
	CHECK(strstr(parse_err("# escape=`\n# escape=\\\nFROM scratch\n"),
	             "Dockerfile:2: only one escape"));
}

TEST(dockerfile_errors_name_the_line)
{
	CHECK_STR(parse_err("FROM scratch\n\nFROBNICATE x\n"),
	          "Dockerfile:3: unknown instruction 'FROBNICATE'");
	CHECK(strstr(parse_err("FROM scratch\nCOPY onlyone\n"), "Dockerfile:2: COPY requires at "
	                                                        "least two arguments"));
	CHECK(strstr(parse_err("FROM a b\n"), "Dockerfile:1: FROM requires"));
	CHECK(strstr(parse_err("FROM scratch\nSHELL sh -c\n"), "Dockerfile:2: SHELL requires"));
	CHECK(strstr(parse_err("FROM scratch\nCOPY --bogus a b\n"),
	             "Dockerfile:2: COPY: unknown flag: --bogus"));
	CHECK(strstr(parse_err("FROM scratch\nENV A=1 B\n"), "Dockerfile:2: ENV: syntax error"));
	CHECK(strstr(parse_err("FROM scratch\nRUN [\"a\", 1]\n"), "Dockerfile:2: RUN: when using"));
	CHECK(strstr(parse_err("FROM scratch\nRUN <<EOF\necho\n"),
	             "Dockerfile:2: unterminated heredoc"));
	CHECK(strstr(parse_err("FROM scratch\nONBUILD ONBUILD RUN x\n"), "Dockerfile:2: chaining"));
	CHECK(strstr(parse_err("FROM scratch\nWORKDIR\n"), "Dockerfile:2: WORKDIR requires"));
	CHECK(strstr(parse_err("FROM scratch\nRUN\n"), "Dockerfile:2: RUN requires"));
}

TEST(dockerfile_json_or_shell_form)
{
	struct dockerfile *df = parse_ok("FROM scratch\n"
	                                 "RUN [\"a\", \"b c\"]\n"
	                                 "RUN [not json]\n"
	                                 "RUN [\"x\"] trailing\n"
	                                 "VOLUME [\"/a\", \"/b\"]\n"
	                                 "VOLUME /c /d\n"
	                                 "COPY [\"a b\", \"/c d/\"]\n");

	REQUIRE(df && df->n == 7);
	CHECK(df->v[1].json);
	CHECK_INT(df->v[1].n_args, 2);
	CHECK_STR(df->v[1].args[1], "b c");
	CHECK(!df->v[2].json);
	CHECK_STR(df->v[2].args[0], "[not json]");
	CHECK(df->v[3].json); /* like Docker: the first JSON value counts */
	CHECK_INT(df->v[3].n_args, 1);
	CHECK(df->v[4].json);
	CHECK_INT(df->v[5].n_args, 2);
	CHECK(df->v[6].json);
	CHECK_STR(df->v[6].args[1], "/c d/");
	dockerfile_free(df);
}

TEST(dockerfile_env_label_arg_words)
{
	struct dockerfile *df = parse_ok("FROM scratch\n"
	                                 "ENV A=1 B=\"two words\" C=x\\ y\n"
	                                 "ENV OLD the rest  of it\n"
	                                 "LABEL \"com.x\"=\"v\" k=\n"
	                                 "ARG X Y=\"a b\"\n");

	REQUIRE(df && df->n == 5);
	REQUIRE(df->v[1].n_args == 6);
	CHECK_STR(df->v[1].args[0], "A");
	CHECK_STR(df->v[1].args[3], "\"two words\"");
	CHECK_STR(df->v[1].args[5], "x\\ y");
	REQUIRE(df->v[2].n_args == 2);
	CHECK_STR(df->v[2].args[0], "OLD");
	CHECK_STR(df->v[2].args[1], "the rest  of it");
	REQUIRE(df->v[3].n_args == 4);
	CHECK_STR(df->v[3].args[0], "\"com.x\"");
	CHECK_STR(df->v[3].args[3], "");
	REQUIRE(df->v[4].n_args == 2);
	CHECK_STR(df->v[4].args[1], "Y=\"a b\"");
	dockerfile_free(df);
}

TEST(dockerfile_heredocs)
{
	struct dockerfile *df = parse_ok("FROM scratch\n"
	                                 "RUN <<EOF\n"
	                                 "echo $HOME\n"
	                                 "  # not a comment\n"
	                                 "EOF\n"
	                                 "COPY <<-\"A\" <<B /dst/\n"
	                                 "\tindented\n"
	                                 "\tA\n"
	                                 "b line\n"
	                                 "B\n"
	                                 "RUN echo \"<<NOT\" && cat<<ALSO_NOT\n"
	                                 "RUN 3<<X cat /dev/fd/3\n"
	                                 "x\n"
	                                 "X\n");

	REQUIRE(df);
	REQUIRE(df->n == 5);
	REQUIRE(df->v[1].n_heredocs == 1);
	CHECK_STR(df->v[1].heredocs[0].name, "EOF");
	CHECK_STR(df->v[1].heredocs[0].content, "echo $HOME\n  # not a comment\n");
	CHECK(df->v[1].heredocs[0].expand);
	CHECK(!df->v[1].heredocs[0].chomp);
	CHECK_STR(df->v[1].args[0], "<<EOF");
	CHECK_INT(df->v[1].end_line, 5);
	REQUIRE(df->v[2].n_heredocs == 2);
	CHECK_STR(df->v[2].heredocs[0].name, "A");
	CHECK(!df->v[2].heredocs[0].expand);
	CHECK(df->v[2].heredocs[0].chomp);
	CHECK_STR(df->v[2].heredocs[0].content, "\tindented\n");
	CHECK_STR(df->v[2].heredocs[1].content, "b line\n");
	CHECK_INT(df->v[2].line, 6);
	CHECK_INT(df->v[3].n_heredocs, 0);
	CHECK_INT(df->v[3].line, 11);
	REQUIRE(df->v[4].n_heredocs == 1);
	CHECK_STR(df->v[4].heredocs[0].name, "X");
	{
		char *c = df_heredoc_chomp("\t\ta\n\tb\n c\t\n");

		CHECK_STR(c, "a\nb\n c\t\n");
		free(c);
	}
	dockerfile_free(df);
}

TEST(dockerfile_crlf_bom_and_healthcheck)
{
	struct dockerfile *df = parse_ok("\xef\xbb\xbf"
	                                 "FROM scratch\r\n"
	                                 "HEALTHCHECK --interval=5s CMD [\"true\"]\r\n"
	                                 "HEALTHCHECK NONE\r\n"
	                                 "ONBUILD RUN echo hi\r\n");

	REQUIRE(df && df->n == 4);
	CHECK(df->v[1].cmd == DF_HEALTHCHECK);
	CHECK(df->v[1].json);
	CHECK_STR(df->v[1].args[0], "CMD");
	CHECK_STR(df->v[1].args[1], "true");
	CHECK_STR(df_instr_flag(&df->v[1], "interval")->value, "5s");
	CHECK_STR(df->v[2].args[0], "NONE");
	CHECK_STR(df->v[3].args[0], "RUN echo hi");
	dockerfile_free(df);
}

TEST(dockerfile_expand_variables)
{
	static const char *const vars[] = {"A=apple", "E=", "P=/usr/local/bin", "S=two words",
	                                   NULL};

	CHECK_EXPAND("$A", vars, "apple");
	CHECK_EXPAND("${A}x", vars, "applex");
	CHECK_EXPAND("$Ax", vars, "");
	CHECK_EXPAND("a$", vars, "a$");
	CHECK_EXPAND("${U:-dflt}", vars, "dflt");
	CHECK_EXPAND("${E:-dflt}", vars, "dflt");
	CHECK_EXPAND("${E-dflt}", vars, "");
	CHECK_EXPAND("${U-dflt}", vars, "dflt");
	CHECK_EXPAND("${A:+set}", vars, "set");
	CHECK_EXPAND("${E:+set}", vars, "");
	CHECK_EXPAND("${E+set}", vars, "set");
	CHECK_EXPAND("${U:-$A}", vars, "apple");
	CHECK_EXPAND("${P#*/}", vars, "usr/local/bin");
	CHECK_EXPAND("${P##*/}", vars, "bin");
	CHECK_EXPAND("${P%/*}", vars, "/usr/local");
	CHECK_EXPAND("${P%%/l*}", vars, "/usr");
	CHECK_EXPAND("'$A'", vars, "$A");
	CHECK_EXPAND("\"$A\"", vars, "apple");
	CHECK_EXPAND("\\$A", vars, "$A");
	CHECK_EXPAND("\"a\\\"b\\c\"", vars, "a\"b\\c");
	CHECK_EXPAND("a\\ b", vars, "a b");
	CHECK_EXPAND("${U:?must be set}", vars, "U: must be set");
	CHECK_EXPAND("${E:?}", vars, "E: is not allowed to be empty");
	CHECK_EXPAND("${A", vars, "syntax error: missing '}'");
	CHECK_EXPAND("${}", vars, "syntax error: bad substitution");
	CHECK_EXPAND("${A*x}", vars, "unsupported modifier (*) in substitution");
	CHECK_EXPAND("'open", vars,
	             "unexpected end of statement while looking for matching single-quote");
}

/* ENV A=$A$A doubles per line: one expanded word is capped, pattern trimming on
 * a huge value is bounded work; nothing is ever returned cut short. */
TEST(dockerfile_expansion_is_bounded)
{
	char *big = malloc(DF_MAX_WORD / 2 + 3), *var = NULL, *lit = NULL, *got;
	const char *vars[2] = {NULL, NULL};

	REQUIRE(big);
	memset(big, 'a', DF_MAX_WORD / 2);
	big[DF_MAX_WORD / 2] = '\0';
	var = malloc(DF_MAX_WORD / 2 + 3);
	REQUIRE(var);
	snprintf(var, DF_MAX_WORD / 2 + 3, "A=%s", big);
	vars[0] = var;
	got = expand("$A$A", vars); /* exactly the limit */
	CHECK(got && strlen(got) == DF_MAX_WORD);
	free(got);
	CHECK_EXPAND("$A$A$A", vars, "the value expands to more than 1048576 bytes");
	CHECK_EXPAND("${A}${A:-x}x", vars, "the value expands to more than 1048576 bytes");
	CHECK_EXPAND("\"$A$A\"x", vars, "the value expands to more than 1048576 bytes");
	CHECK_EXPAND("x${A:+$A$A}", vars, "the value expands to more than 1048576 bytes");
	/* A literal word over the limit too. */
	lit = malloc(DF_MAX_WORD + 2);
	REQUIRE(lit);
	memset(lit, 'b', DF_MAX_WORD + 1);
	lit[DF_MAX_WORD + 1] = '\0';
	CHECK_EXPAND(lit, vars, "the value expands to more than 1048576 bytes");
	/* Trimming: a plain pattern is one comparison whatever the length; a glob on
	 * a long value is refused rather than quadratic. */
	got = expand("${A%%aa}", vars);
	CHECK(got && strlen(got) == DF_MAX_WORD / 2 - 2);
	free(got);
	CHECK_EXPAND("${A%%*x}", vars,
	             "pattern substitution on a value of 524288 bytes is too costly");
	big[4000] = '\0';
	snprintf(var, DF_MAX_WORD / 2 + 3, "A=%sxyz", big);
	got = expand("${A%%x*}", vars); /* 4 KB: within the budget */
	CHECK(got && strlen(got) == 4000);
	free(got);
	free(var);
	free(big);
	free(lit);
}

TEST(dockerfile_expand_words_and_heredoc_text)
{
	static const char *const vars[] = {"S=two words", "Q=x", NULL};
	struct df_env env = {(char *const *)vars, 2};
	struct err err = {0};
	char **w = NULL, *h = NULL;
	size_t n = 0;

	REQUIRE(df_expand_words("80 $S \"3 4\" ''", '\\', &env, &w, &n, &err) == 0);
	REQUIRE(n == 4);
	CHECK_STR(w[0], "80");
	CHECK_STR(w[1], "two");
	CHECK_STR(w[2], "words");
	CHECK_STR(w[3], "3 4");
	for (size_t i = 0; i < n; i++)
		free(w[i]);
	free(w);
	REQUIRE(df_expand_heredoc("say \"$Q\" '${Q}'\n", '\\', &env, &h, &err) == 0);
	CHECK_STR(h, "say \"x\" 'x'\n");
	free(h);
}

TEST(dockerfile_heredoc_words)
{
	char *name = NULL;
	bool expand = false, chomp = false;

	CHECK(df_heredoc_word("<<EOF", &name, &expand, &chomp));
	CHECK_STR(name, "EOF");
	CHECK(expand && !chomp);
	free(name);
	CHECK(df_heredoc_word("<<-'E O'", &name, &expand, &chomp));
	CHECK_STR(name, "E O");
	CHECK(!expand && chomp);
	free(name);
	CHECK(df_heredoc_word("2<<E\"N\"D", &name, &expand, &chomp));
	CHECK_STR(name, "END");
	CHECK(!expand);
	free(name);
	CHECK(!df_heredoc_word("<<", NULL, NULL, NULL));
	CHECK(!df_heredoc_word("x<<EOF", NULL, NULL, NULL));
	CHECK(!df_heredoc_word("<<A B", NULL, NULL, NULL));
}

/* The images a build needs from outside (the docker provider provides them
 * before it builds): one line per image, in order. */
static char *base_images(const char *text)
{
	struct dockerfile *df = parse_ok(text);
	struct strv v = STRV_INIT;
	struct strbuf sb = STRBUF_INIT;
	struct err err = {0};

	if (!df)
		return strdup("(parse failed)");
	if (dockerfile_base_images(df, &v, &err) < 0)
		sb_addf(&sb, "error: %s", err.msg);
	for (size_t i = 0; i < v.n; i++)
		sb_addf(&sb, "%s%s", i ? " " : "", v.v[i]);
	strv_release(&v);
	dockerfile_free(df);
	return sb_detach(&sb);
}

TEST(dockerfile_images_a_build_needs)
{
	char *s;

	s = base_images("FROM rollout-test/busybox:1\nWORKDIR /app\n");
	CHECK_STR(s, "rollout-test/busybox:1");
	free(s);
	/* Global ARG defaults expand in FROM; stage names, indexes and scratch are not
	 * images; each image once; COPY --from an image counts, with a variable not. */
	s = base_images("ARG REG=example.org\nARG IMG=${REG}/base:2\n"
	                "FROM $IMG AS Build\nRUN true\n"
	                "FROM scratch AS empty\n"
	                "FROM build\nCOPY --from=empty / /\nCOPY --from=0 /a /b\n"
	                "COPY --from=busybox:1 /bin/sh /sh\nCOPY --from=$X /c /d\n"
	                "FROM example.org/base:2\n");
	CHECK_STR(s, "example.org/base:2 busybox:1");
	free(s);
	/* An ARG without a default expands to nothing: no image to look for. */
	s = base_images("ARG V\nFROM ${V}\n");
	CHECK_STR(s, "");
	free(s);
}
