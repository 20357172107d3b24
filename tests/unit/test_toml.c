/* Unit tests for the TOML 1.0 reader: the spec's tricky cases (valid and
 * invalid), values, line numbers, limits, and every file in testdata/toml/. */
#include "config/toml.h"
#include "config_testdata.h"
#include "harness.h"
#include "rollout/json.h"

#include <math.h>
#include <stdint.h>

static struct node *parse_ok(const char *doc)
{
	struct node *root = NULL;
	struct err err = {0};

	if (toml_parse(doc, strlen(doc), "t.toml", &root, &err) < 0) {
		test_fail_at(__FILE__, __LINE__, "unexpected error: %s\n# document:\n%s", err.msg,
		             doc);
		return NULL;
	}
	return root;
}

/* The error message of a document that must not parse ("" when it parsed). */
static char *parse_err(const char *doc, size_t len)
{
	struct node *root = NULL;
	struct err err = {0};

	if (toml_parse(doc, len, "t.toml", &root, &err) == 0) {
		node_free(root);
		return xstrdup("");
	}
	return xstrdup(err.msg);
}

/* toml-test's tagged JSON form: {"type": "integer", "value": "1"} leaves. */
static cJSON *tagged(const struct node *n)
{
	char buf[64] = "";
	const char *type = "null";
	cJSON *o;

	switch (n->type) {
	case NODE_TABLE:
		o = cJSON_CreateObject();
		for (size_t i = 0; i < n->tbl.n; i++)
			cJSON_AddItemToObject(o, n->tbl.v[i].key, tagged(n->tbl.v[i].value));
		return o;
	case NODE_ARRAY:
		o = cJSON_CreateArray();
		for (size_t i = 0; i < n->arr.n; i++)
			cJSON_AddItemToArray(o, tagged(n->arr.v[i]));
		return o;
	case NODE_STRING:
		type = "string";
		break;
	case NODE_INT:
		type = "integer";
		snprintf(buf, sizeof(buf), "%lld", (long long)n->i);
		break;
	case NODE_FLOAT:
		type = "float";
		if (isnan(n->f))
			snprintf(buf, sizeof(buf), "nan");
		else if (isinf(n->f))
			snprintf(buf, sizeof(buf), "%sinf", n->f < 0 ? "-" : "");
		else
			snprintf(buf, sizeof(buf), "%.17g", n->f);
		break;
	case NODE_BOOL:
		type = "bool";
		snprintf(buf, sizeof(buf), "%s", n->b ? "true" : "false");
		break;
	case NODE_DATETIME:
		type = n->dt_kind == NODE_DT_OFFSET  ? "datetime"
		       : n->dt_kind == NODE_DT_LOCAL ? "datetime-local"
		       : n->dt_kind == NODE_DT_DATE  ? "date-local"
		                                     : "time-local";
		break;
	case NODE_NULL:
		break;
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", type);
	cJSON_AddStringToObject(
	    o, "value", n->type == NODE_STRING || n->type == NODE_DATETIME ? n->str.s : buf);
	return o;
}

TEST(toml_testdata_valid_files_match_their_json)
{
	_cleanup_strvs_ struct strv files = STRV_INIT;

	testdata_chdir();
	testdata_list("testdata/toml/valid", ".toml", &files);
	REQUIRE(files.n >= 8);
	for (size_t i = 0; i < files.n; i++) {
		_cleanup_free_ char *path = xasprintf("testdata/toml/valid/%s", files.v[i]);
		_cleanup_free_ char *expected =
		    xasprintf("%.*s.json", (int)(strlen(path) - 5), path);
		_cleanup_node_ struct node *root = NULL;
		_cleanup_json_ cJSON *j = NULL;
		_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
		struct err err = {0};

		if (toml_load_file(path, &root, &err) < 0) {
			test_fail_at(__FILE__, __LINE__, "%s", err.msg);
			continue;
		}
		j = tagged(root);
		json_print(j, &sb);
		sb_addc(&sb, '\n');
		testdata_expect(expected, sb.buf);
	}
}

TEST(toml_testdata_invalid_files_give_their_exact_error)
{
	_cleanup_strvs_ struct strv files = STRV_INIT;

	testdata_chdir();
	testdata_list("testdata/toml/invalid", ".toml", &files);
	REQUIRE(files.n >= 40);
	for (size_t i = 0; i < files.n; i++) {
		_cleanup_free_ char *path = xasprintf("testdata/toml/invalid/%s", files.v[i]);
		_cleanup_free_ char *expected = xasprintf("%s.expected", path);
		_cleanup_free_ char *got = NULL;
		_cleanup_node_ struct node *root = NULL;
		struct err err = {0};

		if (toml_load_file(path, &root, &err) == 0) {
			test_fail_at(__FILE__, __LINE__, "%s: parsed, but it is invalid", path);
			continue;
		}
		got = xasprintf("error: %s\n", err.msg);
		testdata_expect(expected, got);
	}
}

/* The spec's tricky corners. NULL: valid; otherwise a substring of the error. */
static const struct {
	const char *doc;
	const char *error;
} tricky[] = {
    /* keys */
    {"a.b.c = 1\na.d = 2\n", NULL},
    {"\"a.b\" = 1\na.b = 2\n", NULL},
    {"a = 1\na.b = 2\n", "'a' is already defined as an integer on line 1"},
    {"a.b = 1\na.b.c = 2\n", "'a.b' is already defined as an integer"},
    {"a.b.c = 1\n[a.b]\n", "'a.b' is already defined as a table (by dotted keys)"},
    {"[a]\nb.c = 1\n[a.b.d]\nx = 1\n", NULL},
    {"[a]\nb.c = 1\n[a.b]\n", "by dotted keys"},
    {"apple.type = \"fruit\"\norange.type = \"fruit\"\napple.skin = \"thin\"\n", NULL},
    {"\"\" = 1\n", NULL},
    {"'' = 1\n", NULL},
    {"a = 1\n'a' = 2\n", "duplicate key 'a'"},
    {"a = 1\n\"\\u0061\" = 2\n", "duplicate key 'a'"},
    {"\"a\\u0000b\" = 1\n\"a\\u0000c\" = 2\n", NULL},
    {"a . b . c = 1\n", NULL},
    {"a.\n= 1\n", "expected a key"},
    {"[a.]\n", "expected a key"},
    {"[.a]\n", "expected a key"},
    {"a = 1 # comment\n", NULL},
    {"# only a comment", NULL},
    {"", NULL},
    {"\n\n\n", NULL},
    /* tables */
    {"[a.b.c]\n[a]\n[a.b]\n", NULL},
    {"[a]\n[a]\n", "defined twice"},
    {"[a.b]\n[a]\nb = 1\n", "duplicate key 'a.b'"},
    {"[a]\nb = 1\n[a.b]\n", "'a.b' is already defined as an integer"},
    {"[ a . b ]\n", NULL},
    {"[a]b = 1\n", "after a table header"},
    {"[[a]]\n[[a]]\n[a.b]\nc = 1\n[[a.b.d]]\n", NULL},
    {"[[a]]\nb.c = 1\n[a.b.d]\n", NULL},
    {"a = [{ b = 1 }]\n[a.c]\n", "'a' is already defined as an array on line 1"},
    {"a = [{ b = 1 }]\n[[a]]\n", "already defined as an array"},
    {"[[a]]\n[a]\n", "already defined as an array of tables"},
    {"[a]\n[[a]]\n", "already defined as a table (by a [table] header)"},
    {"[[a.b]]\n[a]\n", NULL},
    {"[[a.b]]\n[a]\n[a]\n", "defined twice"},
    {"[a]\nx.y = 1\n[b]\n[a.x.z]\n", NULL},
    /* inline tables */
    {"a = {}\n", NULL},
    {"a = { b = 1, c.d = 2, c.e = 3 }\n", NULL},
    {"a = { b = 1, b = 2 }\n", "duplicate key 'a.b'"},
    {"a = { b = 1 }\na.c = 2\n", "inline table"},
    {"a = { b = { c = 1 } }\n[a.b]\n", "inline table"},
    {"a = { b = [1,\n2] }\n", NULL},
    {"a = { b = \"\"\"x\ny\"\"\" }\n", NULL},
    {"a = {\n}\n", "newline inside an inline table"},
    {"a = { b = 1, }\n", "trailing comma"},
    {"a = { , }\n", "expected a key"},
    {"a = { b = 1 c = 2 }\n", "expected ',' or '}'"},
    /* arrays */
    {"a = [1, \"two\", 3.0, [4], { five = 5 }]\n", NULL},
    {"a = [\n  1,\n  2,\n]\n", NULL},
    {"a = [ , ]\n", "expected a value"},
    {"a = [1,,2]\n", "expected a value"},
    {"a = [1 2]\n", "expected ',' or ']'"},
    {"a = [ # c\n # c\n ]\n", NULL},
    /* strings */
    {"a = \"\\b\\t\\n\\f\\r\\\"\\\\\"\n", NULL},
    {"a = \"\\x41\"\n", "invalid escape sequence '\\x'"},
    {"a = \"\\e\"\n", "invalid escape sequence '\\e'"},
    {"a = \"\\U00110000\"\n", "not a Unicode scalar value"},
    {"a = \"\"\"a\\  \n  b\"\"\"\n", NULL},
    {"a = \"\"\"a\\  b\"\"\"\n", "invalid escape"},
    {"a = '''a\\b'''\n", NULL},
    {"a = \"\"\"\"\"\"\"\n", NULL},                  /* 7 quotes: a = "\"" */
    {"a = \"\"\"\"\"\"\"\"\"\n", "too many quotes"}, /* 9 */
    {"a = '''''''\n", NULL},
    {"a = ''''''''\n", NULL},
    {"a = '''''''''\n", "too many quotes"},
    {"a = 'tab\there'\n", NULL},
    {"a = \"del\x7f\"\n", "control character U+007F"},
    {"a = \"x\" \"y\"\n", "after a value"},
    /* numbers */
    {"a = +0\nb = -0\nc = 0.0\nd = -0.0\ne = 0e0\n", NULL},
    {"a = 0x\n", "invalid number"},
    {"a = 0xG\n", "invalid hexadecimal integer"},
    {"a = 0o8\n", "invalid octal integer"},
    {"a = 0b2\n", "invalid binary integer"},
    {"a = -0x1\n", "cannot have a sign"},
    {"a = 0X1\n", "invalid number"},
    {"a = 1_\n", "'_' must be between digits"},
    {"a = _1\n", "invalid value"},
    {"a = 1._5\n", "'_' must be between digits"},
    {"a = 1e_5\n", "'_' must be between digits"},
    {"a = 1e05\n", NULL},
    {"a = 01\n", "leading zeros"},
    {"a = 00.5\n", "leading zeros"},
    {"a = -01.5\n", "leading zeros"},
    {"a = 1.\n", "expected digits after '.'"},
    {"a = 1e\n", "expected digits in the exponent"},
    {"a = infinity\n", "invalid value"},
    {"a = NaN\n", "invalid value"},
    {"a = 9223372036854775807\n", NULL},
    {"a = -9223372036854775808\n", NULL},
    {"a = 0x7fffffffffffffff\n", NULL},
    {"a = 0o777777777777777777777\n", NULL},
    {"a = 0o1777777777777777777777\n", "does not fit in 64 bits"},
    /* booleans */
    {"a = true\nb = false\n", NULL},
    {"a = yes\n", "invalid value"},
    {"a = truex\n", "invalid value 'truex'"},
    /* date-times */
    {"a = 1979-05-27T07:32:00.5+05:30\n", NULL},
    {"a = 1979-05-27 07:32:00\n", NULL},
    {"a = 1979-05-27 # a date and a comment\n", NULL},
    {"a = 2000-02-29\n", NULL},
    {"a = 1900-02-29\n", "invalid date"},
    {"a = 2021-04-31\n", "invalid date"},
    {"a = 1979-05-27T\n", "expected a time"},
    {"a = 1979-05-27T07:32\n", "with seconds"},
    {"a = 1979-05-27T07:32:00.\n", "expected digits after '.'"},
    {"a = 1979-05-27T07:32:00+7:00\n", "offset"},
    {"a = 07:32:00Z\n", "invalid date-time: unexpected 'Z'"}, /* local times have no offset */
    {"a = 1979-05-27T07:32:00Zjunk\n", "invalid date-time"},
    {"a = 1979-5-27\n", "invalid"},
    /* line structure */
    {"a = 1\r\nb = 2\r\n", NULL},
    {"a = 1\rb = 2\n", "carriage return without a line feed"},
    {"a = 1\r", "carriage return without a line feed"},
    {"a =\n1\n", "expected a value"},
    {"a\n= 1\n", "expected '='"},
};

TEST(toml_tricky_cases)
{
	for (size_t i = 0; i < ARRAY_SIZE(tricky); i++) {
		_cleanup_free_ char *got = parse_err(tricky[i].doc, strlen(tricky[i].doc));

		if (!tricky[i].error && *got)
			test_fail_at(__FILE__, __LINE__, "case %zu should parse: %s\n# %s", i, got,
			             tricky[i].doc);
		else if (tricky[i].error && !strstr(got, tricky[i].error))
			test_fail_at(__FILE__, __LINE__,
			             "case %zu: expected an error with \"%s\", got \"%s\"\n# %s", i,
			             tricky[i].error, got, tricky[i].doc);
	}
}

TEST(toml_values_and_types)
{
	_cleanup_node_ struct node *root =
	    parse_ok("i = -9223372036854775808\nh = 0xDEAD_BEEF\no = 0o755\nb = 0b1010\n"
	             "f = 6.626e-34\ninf1 = -inf\nnan1 = nan\n"
	             "s = \"caf\\u00E9 \\U0001F600\"\nml = \"\"\"\nx\r\ny\"\"\"\n"
	             "t = true\nd = 1979-05-27\nlt = 07:32:00.25\n"
	             "odt = 1979-05-27 07:32:00z\nnul = \"a\\u0000b\"\n");
	struct node *v;

	REQUIRE(root);
	CHECK_INT(node_get(root, "i")->i, INT64_MIN);
	CHECK_INT(node_get(root, "h")->i, 0xDEADBEEF);
	CHECK_INT(node_get(root, "o")->i, 0755);
	CHECK_INT(node_get(root, "b")->i, 10);
	CHECK(node_get(root, "f")->f == 6.626e-34);
	CHECK(isinf(node_get(root, "inf1")->f) && node_get(root, "inf1")->f < 0);
	CHECK(isnan(node_get(root, "nan1")->f));
	CHECK_STR(node_get(root, "s")->str.s, "caf\xc3\xa9 \xf0\x9f\x98\x80");
	CHECK_STR(node_get(root, "ml")->str.s, "x\ny");
	CHECK(node_get(root, "t")->type == NODE_BOOL && node_get(root, "t")->b);
	v = node_get(root, "d");
	CHECK(v->type == NODE_DATETIME && v->dt_kind == NODE_DT_DATE);
	CHECK_STR(node_get(root, "lt")->str.s, "07:32:00.25");
	v = node_get(root, "odt");
	CHECK(v->dt_kind == NODE_DT_OFFSET);
	CHECK_STR(v->str.s, "1979-05-27T07:32:00Z");
	v = node_get(root, "nul");
	CHECK_INT(v->str.len, 3);
	CHECK(memcmp(v->str.s, "a\0b", 3) == 0);
}

TEST(toml_members_carry_their_lines)
{
	_cleanup_node_ struct node *root =
	    parse_ok("# header\n\n[environment]\ncpus = 1\n\nmemory = \"2G\"\n[[task.authors]]\n"
	             "name = \"a\"\ntags = [\n  \"x\",\n  \"y\",\n]\n");
	struct node *env, *authors, *tags;

	REQUIRE(root);
	env = node_get(root, "environment");
	REQUIRE(env);
	CHECK_INT(env->line, 3);
	CHECK_INT(node_table_find(env, "cpus", 4)->line, 4);
	CHECK_INT(node_table_find(env, "memory", 6)->line, 6);
	authors = node_get(node_get(root, "task"), "authors");
	REQUIRE(authors && authors->type == NODE_ARRAY && authors->arr.n == 1);
	CHECK_INT(authors->arr.v[0]->line, 7);
	tags = node_get(authors->arr.v[0], "tags");
	REQUIRE(tags && tags->arr.n == 2);
	CHECK_INT(tags->arr.v[0]->line, 10);
	CHECK_INT(tags->arr.v[1]->line, 11);
}

TEST(toml_error_lines_point_at_the_problem)
{
	_cleanup_free_ char *e1 = parse_err("a = 1\nb = 2\n\nc = \"x\n", 20);
	_cleanup_free_ char *e2 = parse_err("s = \"\"\"\none\ntwo\n", 16);
	_cleanup_free_ char *e3 = parse_err("[a]\nx = 1\n\n[a]\n", 15);

	CHECK_STR(e1, "t.toml:4: unterminated string: newlines are only allowed in multi-line "
	              "strings");
	/* An unterminated multi-line string is reported where it starts. */
	CHECK_STR(e2, "t.toml:1: unterminated multi-line string (no closing \"\"\")");
	CHECK_STR(e3, "t.toml:4: table [a] is defined twice (first on line 1)");
}

TEST(toml_nesting_is_capped)
{
	_cleanup_sb_ struct strbuf ok = STRBUF_INIT, deep = STRBUF_INIT, keys = STRBUF_INIT,
	                           inl = STRBUF_INIT;
	_cleanup_free_ char *e_ok = NULL, *e_deep = NULL, *e_keys = NULL, *e_inl = NULL;

	sb_adds(&ok, "a = ");
	for (int i = 0; i < 90; i++)
		sb_addc(&ok, '[');
	for (int i = 0; i < 90; i++)
		sb_addc(&ok, ']');
	sb_adds(&deep, "a = ");
	for (int i = 0; i < 100000; i++)
		sb_addc(&deep, '[');
	sb_adds(&keys, "[a");
	for (int i = 0; i < 5000; i++)
		sb_adds(&keys, ".a");
	sb_adds(&keys, "]\n");
	sb_adds(&inl, "a = ");
	for (int i = 0; i < 5000; i++)
		sb_adds(&inl, "{b = ");
	e_ok = parse_err(ok.buf, ok.len);
	e_deep = parse_err(deep.buf, deep.len);
	e_keys = parse_err(keys.buf, keys.len);
	e_inl = parse_err(inl.buf, inl.len);
	CHECK_STR(e_ok, "");
	CHECK_STR(e_deep, "t.toml:1: nesting deeper than 100 levels");
	CHECK_STR(e_keys, "t.toml:1: nesting deeper than 100 levels");
	CHECK_STR(e_inl, "t.toml:1: nesting deeper than 100 levels");
}

TEST(toml_many_keys_use_the_index)
{
	_cleanup_sb_ struct strbuf doc = STRBUF_INIT;
	_cleanup_node_ struct node *root = NULL;
	_cleanup_free_ char *dup = NULL;

	for (int i = 0; i < 5000; i++)
		sb_addf(&doc, "key%d = %d\n", i, i);
	root = parse_ok(doc.buf);
	REQUIRE(root);
	CHECK_INT(root->tbl.n, 5000);
	CHECK_INT(node_get(root, "key0")->i, 0);
	CHECK_INT(node_get(root, "key4321")->i, 4321);
	CHECK(node_get(root, "key5000") == NULL);
	sb_adds(&doc, "key2500 = 1\n");
	dup = parse_err(doc.buf, doc.len);
	CHECK_STR(dup, "t.toml:5001: duplicate key 'key2500' (first defined on line 2501)");
}

TEST(toml_rejects_invalid_utf8_and_nul)
{
	static const char overlong[] = "a = \"\xc0\xaf\"\n";
	static const char surrogate[] = "a = \"\xed\xa0\x80\"\n";
	static const char nul_in_string[] = "a = \"x\0y\"\n";
	_cleanup_free_ char *e1 = parse_err(overlong, sizeof(overlong) - 1);
	_cleanup_free_ char *e2 = parse_err(surrogate, sizeof(surrogate) - 1);
	_cleanup_free_ char *e3 = parse_err(nul_in_string, sizeof(nul_in_string) - 1);

	CHECK_CONTAINS(e1, "invalid UTF-8");
	CHECK_CONTAINS(e2, "invalid UTF-8");
	CHECK_CONTAINS(e3, "control character U+0000");
}

TEST(toml_load_file_names_the_file)
{
	_cleanup_node_ struct node *root = NULL;
	struct err err = {0};

	CHECK(toml_load_file("/nonexistent/task.toml", &root, &err) < 0);
	CHECK_CONTAINS(err.msg, "/nonexistent/task.toml");
	CHECK_CONTAINS(err.msg, "No such file");
}
