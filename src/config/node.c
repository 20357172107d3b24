/* The value tree shared by the config readers: construction, lookup, copy,
 * YAML plain-scalar typing and conversion to cJSON. */
#include "config/node.h"
#include "config/toml.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_FILE_MAX (16u << 20)
#define INDEX_MIN_MEMBERS 8

struct node *node_new(enum node_type type, int line)
{
	struct node *n = xcalloc(1, sizeof(*n));

	n->type = type;
	n->line = line;
	return n;
}

struct node *node_new_string(const char *s, size_t len, int line)
{
	struct node *n = node_new(NODE_STRING, line);

	n->str.s = xmalloc(len + 1);
	memcpy(n->str.s, s, len);
	n->str.s[len] = '\0';
	n->str.len = len;
	return n;
}

void node_free(struct node *n)
{
	if (!n)
		return;
	switch (n->type) {
	case NODE_STRING:
	case NODE_DATETIME:
		free(n->str.s);
		break;
	case NODE_ARRAY:
		for (size_t i = 0; i < n->arr.n; i++)
			node_free(n->arr.v[i]);
		free(n->arr.v);
		break;
	case NODE_TABLE:
		for (size_t i = 0; i < n->tbl.n; i++) {
			free(n->tbl.v[i].key);
			node_free(n->tbl.v[i].value);
		}
		free(n->tbl.v);
		free(n->tbl.index);
		break;
	default:
		break;
	}
	free(n);
}

void cleanup_nodep(struct node **n)
{
	node_free(*n);
}

struct node *node_copy(const struct node *n)
{
	struct node *c = node_new(n->type, n->line);

	c->dt_kind = n->dt_kind;
	c->depth = n->depth;
	c->flags = n->flags;
	switch (n->type) {
	case NODE_BOOL:
		c->b = n->b;
		break;
	case NODE_INT:
		c->i = n->i;
		break;
	case NODE_FLOAT:
		c->f = n->f;
		break;
	case NODE_STRING:
	case NODE_DATETIME:
		c->str.s = xmalloc(n->str.len + 1);
		memcpy(c->str.s, n->str.s, n->str.len + 1);
		c->str.len = n->str.len;
		break;
	case NODE_ARRAY:
		for (size_t i = 0; i < n->arr.n; i++)
			node_array_push(c, node_copy(n->arr.v[i]));
		break;
	case NODE_TABLE:
		for (size_t i = 0; i < n->tbl.n; i++)
			node_table_add(c, n->tbl.v[i].key, n->tbl.v[i].key_len, n->tbl.v[i].line,
			               node_copy(n->tbl.v[i].value));
		break;
	case NODE_NULL:
		break;
	}
	return c;
}

void node_array_push(struct node *arr, struct node *v)
{
	if (arr->arr.n == arr->arr.cap) {
		arr->arr.cap = arr->arr.cap ? arr->arr.cap * 2 : 4;
		arr->arr.v = xrealloc(arr->arr.v, arr->arr.cap * sizeof(*arr->arr.v));
	}
	arr->arr.v[arr->arr.n++] = v;
}

static uint32_t key_hash(const char *key, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 16777619u;
	}
	return h;
}

static void index_insert(struct node *tbl, size_t member)
{
	const struct node_member *m = &tbl->tbl.v[member];
	size_t mask = tbl->tbl.index_cap - 1;
	size_t i = key_hash(m->key, m->key_len) & mask;

	while (tbl->tbl.index[i])
		i = (i + 1) & mask;
	tbl->tbl.index[i] = (uint32_t)(member + 1);
}

static void index_rebuild(struct node *tbl)
{
	size_t cap = 16;

	while (cap < tbl->tbl.n * 2)
		cap *= 2;
	free(tbl->tbl.index);
	tbl->tbl.index = xcalloc(cap, sizeof(*tbl->tbl.index));
	tbl->tbl.index_cap = cap;
	for (size_t i = 0; i < tbl->tbl.n; i++)
		index_insert(tbl, i);
}

static bool key_eq(const struct node_member *m, const char *key, size_t len)
{
	return m->key_len == len && memcmp(m->key, key, len) == 0;
}

struct node_member *node_table_find(const struct node *tbl, const char *key, size_t len)
{
	if (!tbl || tbl->type != NODE_TABLE)
		return NULL;
	if (tbl->tbl.index) {
		size_t mask = tbl->tbl.index_cap - 1;

		for (size_t i = key_hash(key, len) & mask; tbl->tbl.index[i]; i = (i + 1) & mask) {
			struct node_member *m = &tbl->tbl.v[tbl->tbl.index[i] - 1];

			if (key_eq(m, key, len))
				return m;
		}
		return NULL;
	}
	for (size_t i = 0; i < tbl->tbl.n; i++)
		if (key_eq(&tbl->tbl.v[i], key, len))
			return &tbl->tbl.v[i];
	return NULL;
}

struct node_member *node_table_add(struct node *tbl, const char *key, size_t len, int line,
                                   struct node *value)
{
	struct node_member *m;

	if (tbl->tbl.n == tbl->tbl.cap) {
		tbl->tbl.cap = tbl->tbl.cap ? tbl->tbl.cap * 2 : 4;
		tbl->tbl.v = xrealloc(tbl->tbl.v, tbl->tbl.cap * sizeof(*tbl->tbl.v));
	}
	m = &tbl->tbl.v[tbl->tbl.n++];
	m->key = xmalloc(len + 1);
	memcpy(m->key, key, len);
	m->key[len] = '\0';
	m->key_len = len;
	m->line = line;
	m->used = false;
	m->value = value;
	if (tbl->tbl.index && tbl->tbl.n * 2 <= tbl->tbl.index_cap)
		index_insert(tbl, tbl->tbl.n - 1);
	else if (tbl->tbl.n >= INDEX_MIN_MEMBERS)
		index_rebuild(tbl);
	return m;
}

struct node *node_get(const struct node *tbl, const char *key)
{
	struct node_member *m = node_table_find(tbl, key, strlen(key));

	return m ? m->value : NULL;
}

const char *node_type_name(const struct node *n)
{
	if (!n)
		return "nothing";
	switch (n->type) {
	case NODE_NULL:
		return "null";
	case NODE_BOOL:
		return "boolean";
	case NODE_INT:
		return "integer";
	case NODE_FLOAT:
		return "float";
	case NODE_STRING:
		return "string";
	case NODE_DATETIME:
		return "datetime";
	case NODE_ARRAY:
		return "array";
	case NODE_TABLE:
		return "table";
	}
	return "value";
}

/* PyYAML (YAML 1.1) booleans, which is what Harbor's job files are read with. */
bool node_plain_bool(const struct node *n, bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
	                                  "YES",  "on",   "On",   "ON"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "No",
	                                 "NO",    "off",   "Off",   "OFF"};

	if (n->type != NODE_STRING || !(n->flags & NODE_F_PLAIN))
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcmp(n->str.s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcmp(n->str.s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* Digits of a base with optional '_' between them; at least one digit. */
static bool parse_digits(const char *s, int base, uint64_t limit, uint64_t *out)
{
	uint64_t v = 0;
	bool any = false;

	for (; *s; s++) {
		int d;

		if (*s == '_' && any && s[1] && s[1] != '_')
			continue;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return false;
		if (d >= base)
			return false;
		if (v > (limit - (uint64_t)d) / (uint64_t)base)
			return false;
		v = v * (uint64_t)base + (uint64_t)d;
		any = true;
	}
	*out = v;
	return any;
}

bool node_plain_int(const struct node *n, int64_t *out)
{
	const char *s;
	bool neg = false;
	uint64_t v;
	int base = 10;

	if (n->type != NODE_STRING || !(n->flags & NODE_F_PLAIN))
		return false;
	s = n->str.s;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b')) {
		base = s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2;
		s += 2;
	} else if (s[0] == '0' && s[1]) {
		return false; /* YAML 1.1 reads 0755 as octal, 1.2 as decimal: refuse both */
	}
	if (!parse_digits(s, base, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &v))
		return false;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

bool node_plain_float(const struct node *n, double *out)
{
	_cleanup_free_ char *buf = NULL;
	const char *s;
	char *end;
	size_t j = 0;
	bool digits = false;

	if (n->type != NODE_STRING || !(n->flags & NODE_F_PLAIN))
		return false;
	s = n->str.s;
	{
		const char *t = (*s == '+' || *s == '-') ? s + 1 : s;

		if (!strcmp(t, ".inf") || !strcmp(t, ".Inf") || !strcmp(t, ".INF")) {
			*out = *s == '-' ? -INFINITY : INFINITY;
			return true;
		}
		if (t == s && (!strcmp(t, ".nan") || !strcmp(t, ".NaN") || !strcmp(t, ".NAN"))) {
			*out = NAN;
			return true;
		}
	}
	/* 0755 is octal to YAML 1.1 and decimal to 1.2: refuse it as a number. */
	if ((s[0] == '+' || s[0] == '-' ? s[1] == '0' && s[2] >= '0' && s[2] <= '9'
	                                : s[0] == '0' && s[1] >= '0' && s[1] <= '9') &&
	    !strpbrk(s, ".eE"))
		return false;
	/* YAML 1.2 core: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, plus '_'. */
	buf = xmalloc(n->str.len + 1);
	for (size_t i = 0; s[i]; i++) {
		char c = s[i];

		if (c == '_')
			continue;
		if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' ||
		      c == '-'))
			return false;
		digits |= c >= '0' && c <= '9';
		buf[j++] = c;
	}
	buf[j] = '\0';
	if (!digits)
		return false;
	errno = 0;
	*out = strtod(buf, &end);
	return *end == '\0' && end != buf;
}

cJSON *node_to_json(const struct node *n)
{
	cJSON *j;

	switch (n->type) {
	case NODE_NULL:
		return cJSON_CreateNull();
	case NODE_BOOL:
		return cJSON_CreateBool(n->b);
	case NODE_INT:
		return cJSON_CreateNumber((double)n->i);
	case NODE_FLOAT:
		return cJSON_CreateNumber(n->f);
	case NODE_STRING: {
		bool b;
		int64_t i;
		double f;

		if (node_plain_bool(n, &b))
			return cJSON_CreateBool(b);
		if (node_plain_int(n, &i))
			return cJSON_CreateNumber((double)i);
		if (node_plain_float(n, &f))
			return cJSON_CreateNumber(f);
		return cJSON_CreateString(n->str.s);
	}
	case NODE_DATETIME:
		return cJSON_CreateString(n->str.s);
	case NODE_ARRAY:
		j = cJSON_CreateArray();
		for (size_t i = 0; i < n->arr.n; i++)
			cJSON_AddItemToArray(j, node_to_json(n->arr.v[i]));
		return j;
	case NODE_TABLE:
		j = cJSON_CreateObject();
		for (size_t i = 0; i < n->tbl.n; i++)
			cJSON_AddItemToObject(j, n->tbl.v[i].key, node_to_json(n->tbl.v[i].value));
		return j;
	}
	return cJSON_CreateNull();
}

int node_load_file(const char *path, struct node **out, struct err *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len;

	if (read_file(path, CONFIG_FILE_MAX, &text, &len, err) < 0)
		return -1;
	if (str_ends_with(path, ".toml"))
		return toml_parse(text, len, path, out, err);
	if (str_ends_with(path, ".yaml") || str_ends_with(path, ".yml"))
		return yaml_parse(text, len, path, out, err);
	if (str_ends_with(path, ".json"))
		return json_parse_node(text, len, path, out, err);
	return err_set(err, EINVAL, "%s: unknown file type (expected .toml, .yaml, .yml or .json)",
	               path);
}

const char *utf8_invalid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str, *end = s + len;

	while (s < end) {
		unsigned c = *s;
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return (const char *)s;
		}
		if ((size_t)(end - s) <= n)
			return (const char *)s;
		for (size_t i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return (const char *)s;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return (const char *)s;
		s += n + 1;
	}
	return NULL;
}

int utf8_encode(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}
