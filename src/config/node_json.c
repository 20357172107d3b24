/* JSON -> struct node. cJSON parses (and reports syntax errors); a second pass
 * over the same text, which cJSON has already accepted, walks the tokens in
 * step with the cJSON tree to give every value its line number. */
#include "config/node.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct jscan {
	const char *name;
	const char *p, *end;
	int line;
	struct err *err;
};

static int jfail(struct jscan *s, const char *what)
{
	return err_set(s->err, EINVAL, "%s:%d: %s", s->name, s->line, what);
}

/* cJSON skips every byte <= 32 between tokens. */
static void jskip_ws(struct jscan *s)
{
	while (s->p < s->end && (unsigned char)*s->p <= 32) {
		s->line += *s->p == '\n';
		s->p++;
	}
}

static int jexpect(struct jscan *s, char c)
{
	jskip_ws(s);
	if (s->p >= s->end || *s->p != c)
		return jfail(s, "internal error: JSON position scan lost its place");
	s->p++;
	return 0;
}

static int jskip_string(struct jscan *s)
{
	if (jexpect(s, '"') < 0)
		return -1;
	while (s->p < s->end && *s->p != '"') {
		if (*s->p == '\\' && s->p + 1 < s->end)
			s->p++;
		s->line += *s->p == '\n';
		s->p++;
	}
	if (s->p >= s->end)
		return jfail(s, "internal error: JSON position scan lost its place");
	s->p++;
	return 0;
}

/* Mirrors cJSON's number scan: the longest run of number characters that
 * strtod accepts. Returns whether the text is an integer literal. */
static bool jskip_number(struct jscan *s)
{
	char buf[64];
	size_t n = 0;
	char *end;
	bool integer = true;

	while (s->p + n < s->end && n < sizeof(buf) - 1 && strchr("0123456789+-.eE", s->p[n]) &&
	       s->p[n])
		n++;
	memcpy(buf, s->p, n);
	buf[n] = '\0';
	strtod(buf, &end);
	for (const char *q = buf; q < end; q++)
		integer = integer && *q != '.' && *q != 'e' && *q != 'E';
	s->p += end - buf;
	return integer;
}

static int jconvert(struct jscan *s, const cJSON *v, int depth, struct node **out)
{
	struct node *n;
	int line;

	jskip_ws(s);
	line = s->line;
	if (depth > NODE_MAX_DEPTH)
		return jfail(s, "nesting deeper than 100 levels");
	if (cJSON_IsObject(v)) {
		_cleanup_node_ struct node *t = node_new(NODE_TABLE, line);

		t->depth = depth;
		if (jexpect(s, '{') < 0)
			return -1;
		for (const cJSON *c = v->child; c; c = c->next) {
			struct node *value;
			struct node_member *dup;
			const char *key = c->string ? c->string : "";
			int key_line;

			jskip_ws(s);
			key_line = s->line;
			if (jskip_string(s) < 0 || jexpect(s, ':') < 0 ||
			    jconvert(s, c, depth + 1, &value) < 0)
				return -1;
			dup = node_table_find(t, key, strlen(key));
			if (dup) {
				char msg[512];

				node_free(value);
				s->line = key_line;
				snprintf(msg, sizeof(msg),
				         "duplicate key '%.200s' (first defined on line %d)", key,
				         dup->line);
				return jfail(s, msg);
			}
			node_table_add(t, key, strlen(key), key_line, value);
			if (c->next && jexpect(s, ',') < 0)
				return -1;
		}
		if (jexpect(s, '}') < 0)
			return -1;
		*out = steal_ptr(&t);
		return 0;
	}
	if (cJSON_IsArray(v)) {
		_cleanup_node_ struct node *a = node_new(NODE_ARRAY, line);

		a->depth = depth;
		if (jexpect(s, '[') < 0)
			return -1;
		for (const cJSON *c = v->child; c; c = c->next) {
			struct node *item;

			if (jconvert(s, c, depth + 1, &item) < 0)
				return -1;
			node_array_push(a, item);
			if (c->next && jexpect(s, ',') < 0)
				return -1;
		}
		if (jexpect(s, ']') < 0)
			return -1;
		*out = steal_ptr(&a);
		return 0;
	}
	if (cJSON_IsString(v)) {
		const char *str = v->valuestring ? v->valuestring : "";

		if (jskip_string(s) < 0)
			return -1;
		n = node_new_string(str, strlen(str), line);
	} else if (cJSON_IsNumber(v)) {
		const char *start = s->p;
		bool integer = jskip_number(s);
		char *end;
		long long i;

		errno = 0;
		i = integer ? strtoll(start, &end, 10) : 0;
		if (integer && errno == 0) {
			n = node_new(NODE_INT, line);
			n->i = i;
		} else {
			n = node_new(NODE_FLOAT, line);
			n->f = v->valuedouble;
		}
	} else if (cJSON_IsBool(v)) {
		s->p += cJSON_IsTrue(v) ? 4 : 5;
		n = node_new(NODE_BOOL, line);
		n->b = cJSON_IsTrue(v);
	} else {
		s->p += 4;
		n = node_new(NODE_NULL, line);
	}
	if (s->p > s->end)
		return jfail(s, "internal error: JSON position scan lost its place");
	n->depth = depth;
	*out = n;
	return 0;
}

int json_parse_node(const char *text, size_t len, const char *name, struct node **out,
                    struct err *err)
{
	_cleanup_json_ cJSON *root = NULL;
	_cleanup_free_ char *copy = xmalloc(len + 1); /* strtoll needs a terminator */
	struct jscan s = {.name = name, .p = copy, .end = copy + len, .line = 1, .err = err};
	const char *bad = utf8_invalid(text, len);

	memcpy(copy, text, len);
	copy[len] = '\0';

	if (bad) {
		for (const char *q = text; q < bad; q++)
			s.line += *q == '\n';
		return jfail(&s, "invalid UTF-8");
	}
	if (json_parse(text, len, name, &root, err) < 0)
		return -1;
	if (len >= 3 && memcmp(copy, "\xef\xbb\xbf", 3) == 0)
		s.p += 3;
	return jconvert(&s, root, 0, out);
}
