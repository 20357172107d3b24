/* A position-annotated value tree: what the TOML, YAML and JSON readers
 * produce, so one schema binding (config/bind.h) serves all three formats and
 * every value keeps the line it came from. */
#ifndef ROLLOUT_CONFIG_NODE_H
#define ROLLOUT_CONFIG_NODE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;

/* Deepest nesting any reader accepts (tables, arrays, keys of a dotted path). */
#define NODE_MAX_DEPTH 100

enum node_type {
	NODE_NULL,
	NODE_BOOL,
	NODE_INT,
	NODE_FLOAT,
	NODE_STRING,
	NODE_DATETIME, /* TOML only; str holds the normalized RFC 3339 text */
	NODE_ARRAY,
	NODE_TABLE,
};

enum node_datetime_kind {
	NODE_DT_OFFSET, /* 1979-05-27T07:32:00Z */
	NODE_DT_LOCAL,  /* 1979-05-27T07:32:00 */
	NODE_DT_DATE,   /* 1979-05-27 */
	NODE_DT_TIME,   /* 07:32:00 */
};

/* Flags. NODE_F_PLAIN marks a YAML plain (unquoted) scalar: its type is decided
 * by the field that reads it ("4" is a number where a number is expected). The
 * others are the TOML reader's bookkeeping for its redefinition rules. */
#define NODE_F_PLAIN (1u << 0)
#define NODE_F_IMPLICIT (1u << 1) /* table created as a parent of a [header] */
#define NODE_F_HEADER (1u << 2)   /* table defined by a [header] or [[header]] */
#define NODE_F_DOTTED (1u << 3)   /* table created by a dotted key */
#define NODE_F_INLINE (1u << 4)   /* inline table: closed for good */
#define NODE_F_AOT (1u << 5)      /* array of tables made by [[header]] */

struct node;

struct node_member {
	char *key; /* may contain NUL bytes (TOML "\u0000"); key_len is exact */
	size_t key_len;
	int line;
	bool used; /* set by the binder when a schema field read it */
	struct node *value;
};

struct node {
	enum node_type type;
	enum node_datetime_kind dt_kind;
	int line;
	int depth;
	unsigned flags;
	union {
		bool b;
		int64_t i;
		double f;
		struct {
			char *s; /* NUL-terminated; may contain NUL bytes before len */
			size_t len;
		} str;
		struct {
			struct node **v;
			size_t n, cap;
		} arr;
		struct {
			struct node_member *v;
			size_t n, cap;
			uint32_t *index; /* hash index (member index + 1), built past a few keys */
			size_t index_cap;
		} tbl;
	};
};

struct node *node_new(enum node_type type, int line);
struct node *node_new_string(const char *s, size_t len, int line);
void node_free(struct node *n);
void cleanup_nodep(struct node **n);
#define _cleanup_node_ __attribute__((cleanup(cleanup_nodep)))
/* Deep copy. */
struct node *node_copy(const struct node *n);

void node_array_push(struct node *arr, struct node *v);
struct node_member *node_table_find(const struct node *tbl, const char *key, size_t len);
/* Appends; the caller has checked the key is absent. Takes ownership of value. */
struct node_member *node_table_add(struct node *tbl, const char *key, size_t len, int line,
                                   struct node *value);
/* Lookup by C string; NULL when absent or tbl is not a table. */
struct node *node_get(const struct node *tbl, const char *key);

/* "string", "integer", "float", "boolean", "datetime", "array", "table", "null". */
const char *node_type_name(const struct node *n);
/* A YAML plain scalar read as bool/int/float following PyYAML's rules. */
bool node_plain_bool(const struct node *n, bool *out);
bool node_plain_int(const struct node *n, int64_t *out);
bool node_plain_float(const struct node *n, double *out);

/* A generic JSON value (plain scalars typed as YAML would, datetimes as
 * strings). Always succeeds. */
cJSON *node_to_json(const struct node *n);

/* Readers (TOML: config/toml.h). Each produces a tree whose nodes carry 1-based line numbers; errors
 * read "NAME:LINE: what was expected". */
int yaml_parse(const char *text, size_t len, const char *name, struct node **out, struct err *err);
int json_parse_node(const char *text, size_t len, const char *name, struct node **out,
                    struct err *err);
/* Read a file and pick the reader by extension: .toml, .yaml/.yml, .json. */
int node_load_file(const char *path, struct node **out, struct err *err);

/* The first invalid UTF-8 byte (overlong forms, surrogates and code points past
 * U+10FFFF are invalid), or NULL when the text is valid. */
const char *utf8_invalid(const char *s, size_t len);
/* Encode a Unicode scalar value; returns the byte count (1-4). */
int utf8_encode(uint32_t cp, char out[4]);

#endif
