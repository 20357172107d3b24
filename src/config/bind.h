/* Binding a node tree (TOML, YAML or JSON) onto config structs: typed reads
 * that record "FILE:LINE: key 'a.b': expected X, got Y" and keep going, so a
 * loader reports every problem of a file at once; unknown keys become
 * warnings. Also the small types task and job configs share. */
#ifndef ROLLOUT_CONFIG_BIND_H
#define ROLLOUT_CONFIG_BIND_H

#include "config/diag.h"
#include "config/node.h"
#include "rollout/strbuf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

struct strv;

/* An ordered NAME=value list (env tables). */
struct env_var {
	char *name;
	char *value;
	int line;       /* where it was defined, 0 when set by code */
	char *host_var; /* the host variable a ${VAR} template read; NULL for a literal */
};

struct env_list {
	struct env_var *v;
	size_t n;
};

const char *env_list_get(const struct env_list *l, const char *name);
/* Replace the value of name, or append it. */
void env_list_set(struct env_list *l, const char *name, const char *value);
void env_list_copy(struct env_list *dst, const struct env_list *src);
void env_list_release(struct env_list *l);
cJSON *env_list_to_json(const struct env_list *l);

/* Resolve Harbor's env templates: a value that is exactly "${NAME}" or
 * "${NAME:-default}" takes $NAME from the host environment (the default when
 * NAME is unset; an empty NAME stays empty); anything else is literal.
 * Returns a heap string, or NULL when NAME is unset and there is no default
 * (*var then names it, pointing into value). */
char *env_template_resolve(const char *value, const char **var, size_t *var_len);
/* The host variable a template reads (a pointer into value, *len bytes), or NULL
 * when value is a literal. */
const char *env_template_name(const char *value, size_t *len);

/* An artifact to collect after a trial: a path in the environment (task.toml's and
 * the job file's `artifacts`: a path, or {source, destination?, exclude?, service?}). */
struct artifact_spec {
	char *source;
	char *destination;   /* NULL: basename of source */
	struct strv exclude; /* [new] glob patterns */
	char *service;       /* [new] NULL = main */
	bool is_table;       /* written as a table (kept for round trips) */
};

void artifact_specs_release(struct artifact_spec *a, size_t n);

struct binder {
	const char *file;
	struct diags *diags;
};

/* Flags of the typed reads. */
#define BIND_NULL_OK (1u << 0)  /* null means "unset" (NULL, NAN, -1, cleared list) */
#define BIND_POSITIVE (1u << 1) /* number > 0 */
#define BIND_NONNEG (1u << 2)   /* number >= 0 */
#define BIND_NONEMPTY (1u << 3) /* string must not be empty */

/* "prefix.key" (or "key"), "prefix[i]". Heap strings. */
char *bind_path(const char *prefix, const char *key);
char *bind_index(const char *prefix, size_t i);

/* Record an error or warning about a value: "FILE:LINE: key 'PATH': MSG". */
void bind_error(struct binder *b, const struct node *v, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void bind_warn(struct binder *b, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The member `key` of tbl, marked as read; NULL when absent. */
struct node *bind_take(struct node *tbl, const char *key);

/* Typed reads of one value. Each returns 1 when *out was set, 0 when v is NULL
 * (absent: *out untouched) and -1 after recording an error. */
int bind_node_str(struct binder *b, const struct node *v, const char *path, unsigned flags,
                  char **out);
int bind_node_double(struct binder *b, const struct node *v, const char *path, unsigned flags,
                     double *out);
int bind_node_int(struct binder *b, const struct node *v, const char *path, unsigned flags,
                  int *out);
int bind_node_bool(struct binder *b, const struct node *v, const char *path, bool *out);

/* The same, reading member `key` of tbl (path "prefix.key"). */
int bind_str(struct binder *b, struct node *tbl, const char *prefix, const char *key,
             unsigned flags, char **out);
int bind_double(struct binder *b, struct node *tbl, const char *prefix, const char *key,
                unsigned flags, double *out);
int bind_int(struct binder *b, struct node *tbl, const char *prefix, const char *key,
             unsigned flags, int *out);
int bind_bool(struct binder *b, struct node *tbl, const char *prefix, const char *key, bool *out);
/* A string that must be one of names (NULL-terminated); *out = its index. */
int bind_enum(struct binder *b, struct node *tbl, const char *prefix, const char *key,
              const char *const *names, unsigned flags, int *out);
/* A list of strings. With BIND_NULL_OK a null clears it and sets *is_set false. */
int bind_strv(struct binder *b, struct node *tbl, const char *prefix, const char *key,
              unsigned flags, struct strv *out, bool *is_set);
/* A table of NAME = "value"; templates resolves ${VAR} forms (env_template_resolve). */
int bind_env(struct binder *b, struct node *tbl, const char *prefix, const char *key,
             bool templates, struct env_list *out);
/* A table as generic JSON (kwargs, metadata); null gives an empty object. */
int bind_object_json(struct binder *b, struct node *tbl, const char *prefix, const char *key,
                     cJSON **out);
/* A member that must be a table / an array; NULL when absent, null or wrong
 * (error recorded for wrong). */
struct node *bind_table(struct binder *b, struct node *tbl, const char *prefix, const char *key);
struct node *bind_array(struct binder *b, struct node *tbl, const char *prefix, const char *key);

/* The top-level `artifacts` list into *out (n entries; every problem to diags). */
void bind_artifacts(struct binder *b, struct node *root, struct artifact_spec **out, size_t *n);

/* Warn about every member of tbl no read touched: "unknown key 'PATH'", or,
 * for names in `unsupported` (NULL-terminated, may be NULL), "key 'PATH' is
 * not supported by rollout and is ignored". */
void bind_unknown_keys(struct binder *b, struct node *tbl, const char *prefix,
                       const char *const *unsupported);

#endif
