/* Typed reads over the node tree with precise, collected errors. */
#include "config/bind.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *env_list_get(const struct env_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return l->v[i].value;
	return NULL;
}

static void env_list_put(struct env_list *l, const char *name, const char *value, int line,
                         const char *host_var)
{
	struct env_var *v = NULL;

	for (size_t i = 0; i < l->n && !v; i++)
		if (strcmp(l->v[i].name, name) == 0)
			v = &l->v[i];
	if (!v) {
		l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
		v = &l->v[l->n++];
		v->name = xstrdup(name);
	} else {
		free(v->value);
		free(v->host_var);
	}
	v->value = xstrdup(value);
	v->line = line;
	v->host_var = host_var ? xstrdup(host_var) : NULL;
}

void env_list_set(struct env_list *l, const char *name, const char *value)
{
	env_list_put(l, name, value, 0, NULL);
}

void env_list_copy(struct env_list *dst, const struct env_list *src)
{
	for (size_t i = 0; i < src->n; i++)
		env_list_put(dst, src->v[i].name, src->v[i].value, src->v[i].line,
		             src->v[i].host_var);
}

void env_list_release(struct env_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].value);
		free(l->v[i].host_var);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

cJSON *env_list_to_json(const struct env_list *l)
{
	cJSON *o = cJSON_CreateObject();

	for (size_t i = 0; i < l->n; i++)
		cJSON_AddStringToObject(o, l->v[i].name, l->v[i].value);
	return o;
}

static bool is_var_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

const char *env_template_name(const char *value, size_t *len)
{
	size_t n = strlen(value), k = 0;
	const char *name = value + 2;

	if (n < 4 || value[0] != '$' || value[1] != '{' || value[n - 1] != '}')
		return NULL;
	while (name + k < value + n - 1 && is_var_char(name[k], k == 0))
		k++;
	if (k == 0)
		return NULL;
	/* "${NAME}" or "${NAME:-default}"; "${A B}" and the like are literal */
	if (name + k != value + n - 1 && !(name[k] == ':' && name[k + 1] == '-'))
		return NULL;
	*len = k;
	return name;
}

char *env_template_resolve(const char *value, const char **var, size_t *var_len)
{
	size_t n, len = strlen(value);
	const char *name = env_template_name(value, &n), *env;
	_cleanup_free_ char *var_name = NULL;

	if (!name)
		return xstrdup(value);
	var_name = xstrndup(name, n);
	env = getenv(var_name);
	if (env)
		return xstrdup(env);
	if (name[n] == ':') /* the default: what follows ":-" up to the closing brace */
		return xstrndup(name + n + 2, (size_t)(value + len - 1 - (name + n + 2)));
	*var = name;
	*var_len = n;
	return NULL;
}

char *bind_path(const char *prefix, const char *key)
{
	return prefix && *prefix ? xasprintf("%s.%s", prefix, key) : xstrdup(key);
}

char *bind_index(const char *prefix, size_t i)
{
	return xasprintf("%s[%zu]", prefix, i);
}

void bind_error(struct binder *b, const struct node *v, const char *path, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	diag_error_at(b->diags, b->file, v ? v->line : 0, "key '%s': %s", path, msg);
}

void bind_warn(struct binder *b, int line, const char *path, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	diag_warn_at(b->diags, b->file, line, "key '%s': %s", path, msg);
}

struct node *bind_take(struct node *tbl, const char *key)
{
	struct node_member *m = node_table_find(tbl, key, strlen(key));

	if (!m)
		return NULL;
	m->used = true;
	return m->value;
}

/* "got string \"abc\"" / "got table" for type errors. */
static char *describe(const struct node *v)
{
	if (v->type == NODE_STRING) {
		if (v->str.len > 40)
			return xasprintf("got string \"%.37s...\"", v->str.s);
		return xasprintf("got string \"%s\"", v->str.s);
	}
	if (v->type == NODE_INT)
		return xasprintf("got integer %lld", (long long)v->i);
	if (v->type == NODE_FLOAT) {
		if (v->f == floor(v->f) && fabs(v->f) < 1e15)
			return xasprintf("got float %.1f", v->f);
		return xasprintf("got float %g", v->f);
	}
	if (v->type == NODE_BOOL)
		return xasprintf("got boolean %s", v->b ? "true" : "false");
	return xasprintf("got %s", node_type_name(v));
}

static int type_error(struct binder *b, const struct node *v, const char *path,
                      const char *expected)
{
	_cleanup_free_ char *got = describe(v);

	bind_error(b, v, path, "expected %s, %s", expected, got);
	return -1;
}

int bind_node_str(struct binder *b, const struct node *v, const char *path, unsigned flags,
                  char **out)
{
	if (!v)
		return 0;
	if (v->type == NODE_NULL && (flags & BIND_NULL_OK)) {
		free(*out);
		*out = NULL;
		return 1;
	}
	if (v->type != NODE_STRING)
		return type_error(b, v, path, "a string");
	if (strlen(v->str.s) != v->str.len) {
		bind_error(b, v, path, "the string contains a NUL character");
		return -1;
	}
	if ((flags & BIND_NONEMPTY) && v->str.len == 0) {
		bind_error(b, v, path, "expected a non-empty string");
		return -1;
	}
	free(*out);
	*out = xstrdup(v->str.s);
	return 1;
}

static int check_sign(struct binder *b, const struct node *v, const char *path, unsigned flags,
                      double d, bool integer)
{
	if ((flags & BIND_POSITIVE) && !(d > 0)) {
		if (integer)
			bind_error(b, v, path, "expected an integer >= 1, got %g", d);
		else
			bind_error(b, v, path, "expected a number greater than 0, got %g", d);
		return -1;
	}
	if ((flags & BIND_NONNEG) && !(d >= 0)) {
		bind_error(b, v, path, "expected %s >= 0, got %g",
		           integer ? "an integer" : "a number", d);
		return -1;
	}
	return 0;
}

int bind_node_double(struct binder *b, const struct node *v, const char *path, unsigned flags,
                     double *out)
{
	double d;
	int64_t i;

	if (!v)
		return 0;
	if (v->type == NODE_NULL && (flags & BIND_NULL_OK)) {
		*out = NAN;
		return 1;
	}
	if (v->type == NODE_FLOAT)
		d = v->f;
	else if (v->type == NODE_INT)
		d = (double)v->i;
	else if (node_plain_int(v, &i))
		d = (double)i;
	else if (!node_plain_float(v, &d))
		return type_error(b, v, path, "a number");
	if (!isfinite(d)) {
		bind_error(b, v, path, "expected a finite number, got %g", d);
		return -1;
	}
	if (check_sign(b, v, path, flags, d, false) < 0)
		return -1;
	*out = d;
	return 1;
}

int bind_node_int(struct binder *b, const struct node *v, const char *path, unsigned flags,
                  int *out)
{
	int64_t i;
	double d;

	if (!v)
		return 0;
	if (v->type == NODE_NULL && (flags & BIND_NULL_OK)) {
		*out = -1;
		return 1;
	}
	if (v->type == NODE_INT) {
		i = v->i;
	} else if (node_plain_int(v, &i)) {
		/* read */
	} else if ((v->type == NODE_FLOAT && (d = v->f, 1)) || node_plain_float(v, &d)) {
		/* 4.0 is an integer, as pydantic reads it; 4.5 is not. */
		if (!(d == floor(d) && fabs(d) < 9e15)) {
			bind_error(b, v, path, "expected an integer, got %g", d);
			return -1;
		}
		i = (int64_t)d;
	} else {
		return type_error(b, v, path, "an integer");
	}
	if (i > INT_MAX || i < INT_MIN) {
		bind_error(b, v, path, "integer %lld is out of range", (long long)i);
		return -1;
	}
	if (check_sign(b, v, path, flags, (double)i, true) < 0)
		return -1;
	*out = (int)i;
	return 1;
}

int bind_node_bool(struct binder *b, const struct node *v, const char *path, bool *out)
{
	if (!v)
		return 0;
	if (v->type == NODE_BOOL) {
		*out = v->b;
		return 1;
	}
	if (node_plain_bool(v, out))
		return 1;
	return type_error(b, v, path, "true or false");
}

int bind_str(struct binder *b, struct node *tbl, const char *prefix, const char *key,
             unsigned flags, char **out)
{
	_cleanup_free_ char *path = bind_path(prefix, key);

	return bind_node_str(b, bind_take(tbl, key), path, flags, out);
}

int bind_double(struct binder *b, struct node *tbl, const char *prefix, const char *key,
                unsigned flags, double *out)
{
	_cleanup_free_ char *path = bind_path(prefix, key);

	return bind_node_double(b, bind_take(tbl, key), path, flags, out);
}

int bind_int(struct binder *b, struct node *tbl, const char *prefix, const char *key,
             unsigned flags, int *out)
{
	_cleanup_free_ char *path = bind_path(prefix, key);

	return bind_node_int(b, bind_take(tbl, key), path, flags, out);
}

int bind_bool(struct binder *b, struct node *tbl, const char *prefix, const char *key, bool *out)
{
	_cleanup_free_ char *path = bind_path(prefix, key);

	return bind_node_bool(b, bind_take(tbl, key), path, out);
}

int bind_enum(struct binder *b, struct node *tbl, const char *prefix, const char *key,
              const char *const *names, unsigned flags, int *out)
{
	_cleanup_free_ char *path = bind_path(prefix, key);
	_cleanup_free_ char *s = NULL;
	struct node *v = bind_take(tbl, key);
	int r = bind_node_str(b, v, path, flags, &s);
	struct strbuf choices = STRBUF_INIT;

	if (r <= 0 || !s)
		return r; /* absent, error, or null (leave the default) */
	for (int i = 0; names[i]; i++) {
		if (strcmp(names[i], s) == 0) {
			*out = i;
			sb_release(&choices);
			return 1;
		}
		sb_addf(&choices, "%s%s", i ? ", " : "", names[i]);
	}
	bind_error(b, v, path, "expected one of %s, got \"%s\"", choices.buf, s);
	sb_release(&choices);
	return -1;
}

int bind_strv(struct binder *b, struct node *tbl, const char *prefix, const char *key,
              unsigned flags, struct strv *out, bool *is_set)
{
	_cleanup_free_ char *path = bind_path(prefix, key);
	struct node *v = bind_take(tbl, key);
	struct strv list = STRV_INIT;
	int ret = 1;

	if (!v)
		return 0;
	if (v->type == NODE_NULL && (flags & BIND_NULL_OK)) {
		strv_release(out);
		if (is_set)
			*is_set = false;
		return 1;
	}
	if (v->type != NODE_ARRAY)
		return type_error(b, v, path, "a list of strings");
	for (size_t i = 0; i < v->arr.n; i++) {
		_cleanup_free_ char *ipath = bind_index(path, i);
		char *s = NULL;

		if (bind_node_str(b, v->arr.v[i], ipath, flags & BIND_NONEMPTY, &s) < 0) {
			ret = -1;
			continue;
		}
		strv_push_take(&list, s);
	}
	if (ret < 0) {
		strv_release(&list);
		return -1;
	}
	strv_release(out);
	*out = list;
	strv_array(out);
	if (is_set)
		*is_set = true;
	return 1;
}

int bind_env(struct binder *b, struct node *tbl, const char *prefix, const char *key,
             bool templates, struct env_list *out)
{
	_cleanup_free_ char *path = bind_path(prefix, key);
	struct node *v = bind_take(tbl, key);
	int ret = 1;

	if (!v || v->type == NODE_NULL)
		return v ? 1 : 0;
	if (v->type != NODE_TABLE)
		return type_error(b, v, path, "a table of NAME = \"value\"");
	for (size_t i = 0; i < v->tbl.n; i++) {
		struct node_member *m = &v->tbl.v[i];
		_cleanup_free_ char *vpath = bind_path(path, m->key);
		_cleanup_free_ char *raw = NULL, *value = NULL;
		const char *var = NULL, *host;
		size_t var_len = 0, host_len = 0;

		m->used = true;
		if (strlen(m->key) != m->key_len || m->key_len == 0 || strchr(m->key, '=')) {
			bind_error(b, m->value, vpath, "invalid environment variable name");
			ret = -1;
			continue;
		}
		if (bind_node_str(b, m->value, vpath, 0, &raw) < 0) {
			ret = -1;
			continue;
		}
		value = templates ? env_template_resolve(raw, &var, &var_len) : xstrdup(raw);
		host = templates ? env_template_name(raw, &host_len) : NULL;
		if (!value) {
			bind_error(b, m->value, vpath,
			           "environment variable '%.*s' is not set and the template has no "
			           "default (write ${%.*s:-default} to give one)",
			           (int)var_len, var, (int)var_len, var);
			ret = -1;
			continue;
		}
		{
			_cleanup_free_ char *host_var = host ? xstrndup(host, host_len) : NULL;

			env_list_put(out, m->key, value, m->line, host_var);
		}
	}
	return ret;
}

int bind_object_json(struct binder *b, struct node *tbl, const char *prefix, const char *key,
                     cJSON **out)
{
	_cleanup_free_ char *path = bind_path(prefix, key);
	struct node *v = bind_take(tbl, key);

	if (!v)
		return 0;
	if (v->type != NODE_TABLE && v->type != NODE_NULL)
		return type_error(b, v, path, "a table");
	if (*out)
		cJSON_Delete(*out);
	*out = v->type == NODE_NULL ? cJSON_CreateObject() : node_to_json(v);
	return 1;
}

static struct node *bind_container(struct binder *b, struct node *tbl, const char *prefix,
                                   const char *key, enum node_type type, const char *what)
{
	struct node *v = bind_take(tbl, key);

	if (!v || v->type == NODE_NULL)
		return NULL;
	if (v->type != type) {
		_cleanup_free_ char *path = bind_path(prefix, key);

		type_error(b, v, path, what);
		return NULL;
	}
	return v;
}

struct node *bind_table(struct binder *b, struct node *tbl, const char *prefix, const char *key)
{
	return bind_container(b, tbl, prefix, key, NODE_TABLE, "a table");
}

struct node *bind_array(struct binder *b, struct node *tbl, const char *prefix, const char *key)
{
	return bind_container(b, tbl, prefix, key, NODE_ARRAY, "a list");
}

void bind_unknown_keys(struct binder *b, struct node *tbl, const char *prefix,
                       const char *const *unsupported)
{
	if (!tbl || tbl->type != NODE_TABLE)
		return;
	for (size_t i = 0; i < tbl->tbl.n; i++) {
		struct node_member *m = &tbl->tbl.v[i];
		_cleanup_free_ char *path = NULL;
		bool known = false;

		if (m->used)
			continue;
		path = bind_path(prefix, m->key);
		for (size_t j = 0; unsupported && unsupported[j]; j++)
			known = known || strcmp(unsupported[j], m->key) == 0;
		if (known)
			diag_warn_at(b->diags, b->file, m->line,
			             "key '%s' is not supported by rollout and is ignored", path);
		else
			diag_warn_at(b->diags, b->file, m->line, "unknown key '%s' (ignored)",
			             path);
	}
}

static bool has_control_char(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* Why `dest` cannot name a place inside the trial's artifacts directory, or NULL.
 * The collector joins it to that directory, so anything that could climb out of it
 * or replace it is refused here, where the file and line are still known. */
static const char *artifact_dest_problem(const char *dest)
{
	bool named = false;

	if (dest[0] == '/')
		return "is an absolute path; expected a path relative to the trial's artifacts "
		       "directory";
	for (const char *p = dest; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return "has a '..' component; it must stay inside the trial's artifacts "
			       "directory";
		named = named || !(n == 0 || (n == 1 && p[0] == '.'));
		p += n + (p[n] == '/');
	}
	if (!named)
		return "names the artifacts directory itself; expected a file or directory "
		       "name inside it";
	return NULL;
}

/* The destination rules hold for the written destination, or else for the source's
 * last component (trailing slashes dropped), which the collector uses instead. Values with control characters
 * are not echoed: they would reach the terminal. */
static void check_artifact(struct binder *b, const struct node *v, const char *path,
                           struct artifact_spec *a)
{
	_cleanup_free_ char *src_path = v->type == NODE_TABLE ? bind_path(path, "source") : NULL;
	_cleanup_free_ char *dest_path = bind_path(path, "destination");
	const struct node *src = v->type == NODE_TABLE ? node_get(v, "source") : v;
	size_t n = strlen(a->source);
	const char *base, *why;

	/* "/app/out/" is the directory "out", as Python's Path sees it for Harbor. */
	while (n > 1 && a->source[n - 1] == '/')
		a->source[--n] = '\0';
	base = path_basename(a->source);

	if (has_control_char(a->source)) {
		bind_error(b, src, src_path ? src_path : path, "contains a control character");
		return;
	}
	if (a->destination) {
		const struct node *dest = node_get(v, "destination");

		if (has_control_char(a->destination))
			bind_error(b, dest, dest_path, "contains a control character");
		else if ((why = artifact_dest_problem(a->destination)))
			bind_error(b, dest, dest_path, "\"%s\" %s", a->destination, why);
		return;
	}
	if (artifact_dest_problem(base))
		bind_error(b, src, src_path ? src_path : path,
		           "the destination defaults to the last component of \"%s\", which is "
		           "\"%s\" (unusable: it would not name a file inside the trial's "
		           "artifacts directory); give a destination",
		           a->source, base);
}

void bind_artifacts(struct binder *b, struct node *root, struct artifact_spec **out, size_t *n)
{
	struct node *arr = bind_array(b, root, NULL, "artifacts");

	if (!arr)
		return;
	*out = xcalloc(arr->arr.n ? arr->arr.n : 1, sizeof(**out));
	for (size_t i = 0; i < arr->arr.n; i++) {
		struct node *v = arr->arr.v[i];
		_cleanup_free_ char *path = bind_index("artifacts", i);
		struct artifact_spec *a = &(*out)[*n];

		if (v->type == NODE_STRING) {
			if (bind_node_str(b, v, path, BIND_NONEMPTY, &a->source) > 0) {
				check_artifact(b, v, path, a);
				(*n)++;
			}
			continue;
		}
		if (v->type != NODE_TABLE) {
			bind_error(b, v, path,
			           "expected a path or a table {source, destination}, got %s",
			           node_type_name(v));
			continue;
		}
		a->is_table = true;
		if (bind_str(b, v, path, "source", BIND_NONEMPTY, &a->source) == 0)
			bind_error(b, v, path, "missing 'source'");
		bind_str(b, v, path, "destination", BIND_NULL_OK | BIND_NONEMPTY, &a->destination);
		bind_strv(b, v, path, "exclude", 0, &a->exclude, NULL);
		bind_str(b, v, path, "service", BIND_NULL_OK | BIND_NONEMPTY, &a->service);
		bind_unknown_keys(b, v, path, NULL);
		if (a->source) {
			check_artifact(b, v, path, a);
			(*n)++;
		} else {
			free(a->destination);
			strv_release(&a->exclude);
			free(a->service);
			memset(a, 0, sizeof(*a));
		}
	}
}

void artifact_specs_release(struct artifact_spec *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].source);
		free(a[i].destination);
		strv_release(&a[i].exclude);
		free(a[i].service);
	}
	free(a);
}
