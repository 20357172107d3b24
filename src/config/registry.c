/* registry.json (Harbor's format): loading from a file or a file:// or
 * http:// URL, NAME[@VERSION] resolution, and the PEP 440 comparator. */
#include "config/registry.h"
#include "config/bind.h"
#include "config/node.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/http.h"
#include "rollout/strbuf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REGISTRY_MAX_BYTES (64u << 20)
#define HTTP_TIMEOUT_MS 30000
#define HTTP_MAX_REDIRECTS 5

static const char *const metric_types[] = {"mean", "sum", "min", "max", "uv-script", NULL};

/* --- PEP 440 ------------------------------------------------------------------ */

static bool take_num(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		uint64_t d = (uint64_t)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return true;
}

static bool take_word(const char **p, const char *word)
{
	size_t n = strlen(word);

	if (strncasecmp(*p, word, n) != 0)
		return false;
	*p += n;
	return true;
}

static bool is_sep(char c)
{
	return c == '.' || c == '-' || c == '_';
}

/* After a pre/post/dev word: an optional separator and number (implicit 0). */
static uint64_t take_marker_num(const char **p)
{
	const char *q = *p;
	uint64_t n = 0;

	if (is_sep(*q))
		q++;
	if (take_num(&q, &n))
		*p = q;
	return n;
}

static bool parse_local(const char **p, char *out, size_t cap)
{
	const char *s = *p;
	size_t n = 0;
	bool seg_empty = true;

	for (; isalnum((unsigned char)*s) || is_sep(*s); s++) {
		if (n + 1 >= cap)
			return false;
		if (is_sep(*s)) {
			if (seg_empty)
				return false;
			out[n++] = '.';
			seg_empty = true;
		} else {
			out[n++] = (char)tolower((unsigned char)*s);
			seg_empty = false;
		}
	}
	if (seg_empty)
		return false;
	out[n] = '\0';
	*p = s;
	return true;
}

bool pep440_parse(const char *s, struct pep440 *v)
{
	static const struct {
		const char *word;
		int kind;
	} pre_words[] = {{"alpha", 0},   {"a", 0},   {"beta", 1}, {"b", 1},
	                 {"preview", 2}, {"pre", 2}, {"rc", 2},   {"c", 2}};
	static const char *const post_words[] = {"post", "rev", "r"};
	const char *p = s, *q;
	uint64_t n;

	memset(v, 0, sizeof(*v));
	v->pre_kind = -1;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == 'v' || *p == 'V')
		p++;
	q = p;
	if (take_num(&q, &n) && *q == '!') {
		v->epoch = n;
		p = q + 1;
	}
	if (!take_num(&p, &v->release[0]))
		return false;
	v->n_release = 1;
	while (*p == '.' && isdigit((unsigned char)p[1])) {
		if (v->n_release == PEP440_MAX_RELEASE)
			return false;
		p++;
		if (!take_num(&p, &v->release[v->n_release++]))
			return false;
	}
	q = is_sep(*p) ? p + 1 : p;
	for (size_t i = 0; i < ARRAY_SIZE(pre_words); i++) {
		if (take_word(&q, pre_words[i].word)) {
			v->pre_kind = pre_words[i].kind;
			v->pre = take_marker_num(&q);
			p = q;
			break;
		}
	}
	if (*p == '-' && isdigit((unsigned char)p[1])) {
		p++;
		if (!take_num(&p, &v->post))
			return false;
		v->has_post = true;
	} else {
		q = is_sep(*p) ? p + 1 : p;
		for (size_t i = 0; i < ARRAY_SIZE(post_words); i++) {
			if (take_word(&q, post_words[i])) {
				v->has_post = true;
				v->post = take_marker_num(&q);
				p = q;
				break;
			}
		}
	}
	q = is_sep(*p) ? p + 1 : p;
	if (take_word(&q, "dev")) {
		v->has_dev = true;
		v->dev = take_marker_num(&q);
		p = q;
	}
	if (*p == '+') {
		p++;
		if (!parse_local(&p, v->local, sizeof(v->local)))
			return false;
	}
	while (isspace((unsigned char)*p))
		p++;
	return *p == '\0';
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

/* Where the pre-release part sorts: a dev release of the final version sorts
 * before its pre-releases; no pre-release sorts after them. */
static int pre_class(const struct pep440 *v)
{
	if (v->pre_kind >= 0)
		return v->pre_kind;
	if (!v->has_post && v->has_dev)
		return -1;
	return 3;
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return n > 0;
}

/* Local labels, segment by segment: numbers compare as numbers and sort after
 * words; a label that is a prefix of the other sorts first. */
static int local_compare(const char *a, const char *b)
{
	if (!*a || !*b)
		return (*a != 0) - (*b != 0);
	while (*a && *b) {
		size_t na = strcspn(a, "."), nb = strcspn(b, ".");
		bool da = all_digits(a, na), db = all_digits(b, nb);
		int c;

		if (da != db)
			return da ? 1 : -1;
		if (da) {
			while (na > 1 && *a == '0')
				a++, na--;
			while (nb > 1 && *b == '0')
				b++, nb--;
			if (na != nb)
				return na < nb ? -1 : 1;
			c = memcmp(a, b, na);
		} else {
			c = strncmp(a, b, na < nb ? na : nb);
			if (c == 0 && na != nb)
				c = na < nb ? -1 : 1;
		}
		if (c)
			return c < 0 ? -1 : 1;
		a += na + (a[na] == '.');
		b += nb + (b[nb] == '.');
	}
	return (*a != 0) - (*b != 0);
}

int pep440_compare(const struct pep440 *a, const struct pep440 *b)
{
	size_t n = a->n_release > b->n_release ? a->n_release : b->n_release;
	int c;

	if ((c = cmp_u64(a->epoch, b->epoch)))
		return c;
	for (size_t i = 0; i < n; i++) {
		uint64_t x = i < a->n_release ? a->release[i] : 0;
		uint64_t y = i < b->n_release ? b->release[i] : 0;

		if ((c = cmp_u64(x, y)))
			return c;
	}
	if ((c = pre_class(a) - pre_class(b)))
		return c < 0 ? -1 : 1;
	if (a->pre_kind >= 0 && (c = cmp_u64(a->pre, b->pre)))
		return c;
	if (a->has_post != b->has_post)
		return a->has_post ? 1 : -1;
	if (a->has_post && (c = cmp_u64(a->post, b->post)))
		return c;
	if (a->has_dev != b->has_dev)
		return a->has_dev ? -1 : 1;
	if (a->has_dev && (c = cmp_u64(a->dev, b->dev)))
		return c;
	return local_compare(a->local, b->local);
}

/* --- registry.json ------------------------------------------------------------ */

static void registry_task_release(struct registry_task *t)
{
	free(t->name);
	free(t->git_url);
	free(t->git_commit_id);
	free(t->path);
}

static void registry_dataset_release(struct registry_dataset *d)
{
	for (size_t i = 0; i < d->n_tasks; i++)
		registry_task_release(&d->tasks[i]);
	free(d->tasks);
	for (size_t i = 0; i < d->n_metrics; i++) {
		free(d->metrics[i].type);
		cJSON_Delete(d->metrics[i].kwargs);
	}
	free(d->metrics);
	free(d->name);
	free(d->version);
	free(d->description);
}

void registry_release(struct registry *r)
{
	for (size_t i = 0; i < r->n_datasets; i++)
		registry_dataset_release(&r->datasets[i]);
	free(r->datasets);
	free(r->source);
	memset(r, 0, sizeof(*r));
}

static bool has_control_char(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* A name that can be a directory name: not empty, no '/', not . or .. */
static bool name_is_dir_safe(const char *s)
{
	return *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
	       !has_control_char(s);
}

bool registry_commit_id_normalize(char *s)
{
	size_t n = strlen(s);

	if (n != 40 && n != 64)
		return false;
	for (char *p = s; *p; p++) {
		if (!isxdigit((unsigned char)*p))
			return false;
		*p = (char)tolower((unsigned char)*p);
	}
	return true;
}

/* The last non-empty component of a path ("a/b/" -> "b"). Heap string. */
static char *last_component(const char *path)
{
	size_t n = strlen(path);
	const char *start;

	while (n > 0 && path[n - 1] == '/')
		n--;
	start = path + n;
	while (start > path && start[-1] != '/')
		start--;
	return xstrndup(start, (size_t)(path + n - start));
}

static bool path_has_git_dir(const char *clean)
{
	for (const char *p = clean; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 4 && strncmp(p, ".git", 4) == 0)
			return true;
		p += n + (p[n] == '/');
	}
	return false;
}

static void bind_registry_task(struct binder *b, struct node *t, const char *path,
                               const char *base_dir, struct registry_task *rt)
{
	struct node *path_node = node_get(t, "path");
	struct node *commit_node = node_get(t, "git_commit_id");
	_cleanup_free_ char *raw_path = NULL;
	_cleanup_free_ char *path_key = bind_path(path, "path");

	rt->line = t->line;
	bind_str(b, t, path, "name", BIND_NULL_OK | BIND_NONEMPTY, &rt->name);
	bind_str(b, t, path, "git_url", BIND_NULL_OK | BIND_NONEMPTY, &rt->git_url);
	bind_str(b, t, path, "git_commit_id", BIND_NULL_OK | BIND_NONEMPTY, &rt->git_commit_id);
	if (bind_str(b, t, path, "path", BIND_NONEMPTY, &raw_path) == 0)
		bind_error(b, t, path, "missing 'path'");
	bind_unknown_keys(b, t, path, NULL);

	if (rt->git_commit_id) {
		_cleanup_free_ char *key = bind_path(path, "git_commit_id");

		if (!rt->git_url)
			bind_error(b, commit_node, key, "git_commit_id needs git_url");
		else if (!registry_commit_id_normalize(rt->git_commit_id))
			bind_error(b, commit_node, key,
			           "expected a full commit hash (40 hex digits), got \"%s\"",
			           rt->git_commit_id);
	}
	if (rt->git_url && has_control_char(rt->git_url)) {
		_cleanup_free_ char *key = bind_path(path, "git_url");

		bind_error(b, node_get(t, "git_url"), key, "control character in the URL");
	}
	if (!raw_path)
		return;
	if (has_control_char(raw_path)) {
		bind_error(b, path_node, path_key, "control character in the path");
		return;
	}
	if (rt->git_url) {
		rt->path = path_clean_relative(raw_path);
		if (!rt->path) {
			bind_error(b, path_node, path_key,
			           "\"%s\" leaves the repository (a task path is relative to "
			           "the repository's root)",
			           raw_path);
			return;
		}
		if (!*rt->path) {
			bind_error(b, path_node, path_key,
			           "\"%s\" is the whole repository; give the task's directory",
			           raw_path);
			return;
		}
		if (path_has_git_dir(rt->path)) {
			bind_error(b, path_node, path_key, "\"%s\" is inside .git", raw_path);
			return;
		}
	} else if (raw_path[0] == '/') {
		rt->path = xstrdup(raw_path);
	} else if (!base_dir) {
		bind_error(b, path_node, path_key,
		           "relative local path \"%s\" in a registry read from a URL (give an "
		           "absolute path, or a git_url)",
		           raw_path);
		return;
	} else {
		rt->path = path_join(base_dir, raw_path);
	}
	if (!rt->name) {
		rt->name = last_component(rt->path);
		if (!name_is_dir_safe(rt->name)) {
			bind_error(b, path_node, path_key,
			           "cannot name the task after \"%s\"; set 'name'", raw_path);
			return;
		}
	} else if (!name_is_dir_safe(rt->name)) {
		_cleanup_free_ char *key = bind_path(path, "name");

		bind_error(b, node_get(t, "name"), key,
		           "\"%s\" cannot be a directory name (no '/', not . or ..)", rt->name);
	}
}

static void bind_registry_metrics(struct binder *b, struct node *t, const char *path,
                                  struct registry_dataset *d)
{
	_cleanup_free_ char *mpath = bind_path(path, "metrics");
	struct node *arr = bind_array(b, t, path, "metrics");

	if (!arr)
		return;
	d->metrics = xcalloc(arr->arr.n ? arr->arr.n : 1, sizeof(*d->metrics));
	for (size_t i = 0; i < arr->arr.n; i++) {
		struct node *m = arr->arr.v[i];
		_cleanup_free_ char *ipath = bind_index(mpath, i);
		struct metric_config *mc;
		int type = 0;

		if (m->type != NODE_TABLE) {
			bind_error(b, m, ipath, "expected a table {type, kwargs}, got %s",
			           node_type_name(m));
			continue;
		}
		mc = &d->metrics[d->n_metrics++];
		bind_enum(b, m, ipath, "type", metric_types, BIND_NULL_OK, &type);
		mc->type = xstrdup(metric_types[type]);
		mc->kwargs = cJSON_CreateObject();
		bind_object_json(b, m, ipath, "kwargs", &mc->kwargs);
		if (!strcmp(mc->type, "uv-script") &&
		    !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(mc->kwargs, "script_path")))
			bind_error(b, m, ipath, "metric type uv-script needs kwargs.script_path");
		bind_unknown_keys(b, m, ipath, NULL);
	}
}

static void bind_registry_dataset(struct binder *b, struct node *t, const char *path,
                                  const char *base_dir, struct registry_dataset *d)
{
	_cleanup_free_ char *tpath = bind_path(path, "tasks");
	struct node *tasks;

	d->line = t->line;
	if (bind_str(b, t, path, "name", BIND_NONEMPTY, &d->name) == 0)
		bind_error(b, t, path, "missing 'name'");
	if (bind_str(b, t, path, "version", BIND_NONEMPTY, &d->version) == 0)
		bind_error(b, t, path, "missing 'version'");
	bind_str(b, t, path, "description", BIND_NULL_OK, &d->description);
	if (!d->description)
		d->description = xstrdup("");
	if (!node_get(t, "tasks"))
		bind_error(b, t, path, "missing 'tasks'");
	tasks = bind_array(b, t, path, "tasks");
	bind_registry_metrics(b, t, path, d);
	bind_unknown_keys(b, t, path, NULL);
	if (!tasks)
		return;
	d->tasks = xcalloc(tasks->arr.n ? tasks->arr.n : 1, sizeof(*d->tasks));
	for (size_t i = 0; i < tasks->arr.n; i++) {
		struct node *tn = tasks->arr.v[i];
		_cleanup_free_ char *ipath = bind_index(tpath, i);
		struct registry_task *rt;

		if (tn->type != NODE_TABLE) {
			bind_error(b, tn, ipath,
			           "expected a table {name, git_url, git_commit_id, "
			           "path}, got %s",
			           node_type_name(tn));
			continue;
		}
		rt = &d->tasks[d->n_tasks++];
		bind_registry_task(b, tn, ipath, base_dir, rt);
		for (size_t k = 0; rt->name && k + 1 < d->n_tasks; k++) {
			if (d->tasks[k].name && strcmp(d->tasks[k].name, rt->name) == 0) {
				bind_error(b, tn, ipath,
				           "task name '%s' is also used on line %d (names must be "
				           "unique in a dataset)",
				           rt->name, d->tasks[k].line);
				break;
			}
		}
	}
}

int registry_parse(const char *text, size_t len, const char *name, const char *base_dir,
                   struct registry *out, struct diags *diags)
{
	_cleanup_node_ struct node *root = NULL;
	struct binder b = {.file = name, .diags = diags};
	struct err err = {0};
	size_t errors_before = diags->n_errors, start = diags->n;

	memset(out, 0, sizeof(*out));
	out->source = xstrdup(name);
	if (json_parse_node(text, len, name, &root, &err) < 0) {
		diag_add_err(diags, &err);
		return -1;
	}
	if (root->type != NODE_ARRAY) {
		diag_error_at(diags, name, root->line,
		              "expected an array of datasets [{name, version, tasks, ...}], got %s",
		              node_type_name(root));
		return -1;
	}
	out->datasets = xcalloc(root->arr.n ? root->arr.n : 1, sizeof(*out->datasets));
	for (size_t i = 0; i < root->arr.n; i++) {
		struct node *t = root->arr.v[i];
		_cleanup_free_ char *path = bind_index("", i);
		struct registry_dataset *d;

		if (t->type != NODE_TABLE) {
			bind_error(&b, t, path,
			           "expected a table {name, version, tasks, ...}, got %s",
			           node_type_name(t));
			continue;
		}
		d = &out->datasets[out->n_datasets++];
		bind_registry_dataset(&b, t, path, base_dir, d);
		for (size_t k = 0; d->name && d->version && k + 1 < out->n_datasets; k++) {
			const struct registry_dataset *o = &out->datasets[k];

			if (o->name && o->version && !strcmp(o->name, d->name) &&
			    !strcmp(o->version, d->version)) {
				bind_error(&b, t, path, "dataset %s@%s is also defined on line %d",
				           d->name, d->version, o->line);
				break;
			}
		}
	}
	diags_sort_lines(diags, start);
	return diags->n_errors > errors_before ? -1 : 0;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

int registry_load_file_diags(const char *path, struct registry *out, struct diags *diags)
{
	_cleanup_free_ char *text = NULL, *base = NULL;
	struct err err = {0};
	size_t len;

	memset(out, 0, sizeof(*out));
	if (read_file(path, REGISTRY_MAX_BYTES, &text, &len, &err) < 0) {
		diag_add_err(diags, &err);
		return -1;
	}
	base = dir_of(path);
	return registry_parse(text, len, path, base, out, diags);
}

static int diags_to_err(struct diags *diags, int ret, struct registry *out, struct err *err)
{
	if (diags_report(diags, err) < 0 || ret < 0) {
		registry_release(out);
		return -1;
	}
	return 0;
}

int registry_load_file(const char *path, struct registry *out, struct err *err)
{
	_cleanup_diags_ struct diags diags = DIAGS_INIT;
	int ret = registry_load_file_diags(path, out, &diags);

	return diags_to_err(&diags, ret, out, err);
}

/* --- URLs --------------------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode; NULL when an escape is malformed or decodes to NUL. */
static char *percent_decode(const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	for (; *s; s++) {
		if (*s == '%') {
			int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);

			if (lo < 0 || (hi == 0 && lo == 0)) {
				sb_release(&sb);
				return NULL;
			}
			sb_addc(&sb, (char)(hi * 16 + lo));
			s += 2;
		} else {
			sb_addc(&sb, *s);
		}
	}
	return sb_detach(&sb);
}

static int file_url_path(const char *url, char **out, struct err *err)
{
	const char *rest = url + strlen("file://");

	if (str_starts_with(rest, "localhost/"))
		rest += strlen("localhost");
	if (rest[0] != '/')
		return err_set(err, EINVAL,
		               "%s: a file URL names a local absolute path (file:///path/to/"
		               "registry.json)",
		               url);
	*out = percent_decode(rest);
	if (!*out)
		return err_set(err, EINVAL, "%s: bad %%-escape in the URL", url);
	return 0;
}

/* Redirects are followed to http:// and https:// URLs, never from https back
 * to plain http. */
static int redirect_check(void *ctx, const char *to, struct err *err)
{
	const char *from = ctx;

	if (str_starts_with(from, "https://") && str_starts_with(to, "http://"))
		return err_set(err, EPERM, "%s: redirect from https to '%s' refused", from, to);
	if (!str_starts_with(to, "http://") && !str_starts_with(to, "https://"))
		return err_set(err, EPROTO, "%s: unsupported redirect to '%s'", from, to);
	return 0;
}

/* GET an http:// or https:// URL (redirects followed); the body of a 200 answer.
 * https uses the system's CAs (SSL_CERT_FILE, SSL_CERT_DIR: include/rollout/tls.h). */
static int http_fetch(const char *url, struct strbuf *body, struct err *err)
{
	static const char *const headers[] = {"Accept: application/json, */*", NULL};
	struct http_get g = {
	    .url = url,
	    .headers = headers,
	    .timeout = HTTP_TIMEOUT_MS / 1000.0,
	    .redirects = {.max = HTTP_MAX_REDIRECTS, .check = redirect_check, .ctx = (void *)url}};
	int rc;

	if (http_get_open(&g, err) < 0)
		return -1;
	if (g.resp.status != 200) {
		err_set(err, EPROTO, "%s: HTTP %d %s", g.final_url, g.resp.status, g.resp.reason);
		http_get_close(&g);
		return -1;
	}
	rc = http_read_body(&g.resp, body, REGISTRY_MAX_BYTES, g.deadline, err);
	if (rc < 0 && err->code == EFBIG)
		err_set(err, EFBIG, "%s: larger than %u MiB", g.final_url,
		        REGISTRY_MAX_BYTES >> 20);
	else if (rc < 0 && err->code == ETIMEDOUT)
		err_set(err, ETIMEDOUT, "%s: no answer within %d s", g.final_url,
		        HTTP_TIMEOUT_MS / 1000);
	else if (rc < 0)
		err_wrap(err, "%s", g.final_url);
	http_get_close(&g);
	return rc;
}

int registry_load_url(const char *url, struct registry *out, struct err *err)
{
	_cleanup_diags_ struct diags diags = DIAGS_INIT;
	int ret;

	memset(out, 0, sizeof(*out));
	if (str_starts_with(url, "file://")) {
		_cleanup_free_ char *path = NULL;

		if (file_url_path(url, &path, err) < 0)
			return -1;
		ret = registry_load_file_diags(path, out, &diags);
	} else if (str_starts_with(url, "http://") || str_starts_with(url, "https://")) {
		_cleanup_sb_ struct strbuf body = STRBUF_INIT;

		if (http_fetch(url, &body, err) < 0)
			return -1;
		ret = registry_parse(sb_str(&body), body.len, url, NULL, out, &diags);
	} else {
		return err_set(
		    err, EINVAL,
		    "%s: unsupported registry URL (use file:///path, http(s)://host/path, "
		    "or --registry-path FILE)",
		    url);
	}
	return diags_to_err(&diags, ret, out, err);
}

int registry_open(const char *path, const char *url, struct registry *out, struct err *err)
{
	memset(out, 0, sizeof(*out));
	if (path && url)
		return err_set(err, EINVAL, "give a registry path or a registry URL, not both");
	if (path)
		return registry_load_file(path, out, err);
	if (url)
		return registry_load_url(url, out, err);
	return err_set(err, EINVAL,
	               "no registry given: rollout cannot query Harbor's hosted registry; "
	               "download its registry.json and pass --registry-path FILE (or set "
	               "registry_path in the job file)");
}

/* --- lookup ------------------------------------------------------------------- */

int registry_parse_ref(const char *ref, char **name, char **version, struct err *err)
{
	const char *at = strrchr(ref, '@');

	*name = NULL;
	*version = NULL;
	if (!*ref || at == ref || (at && !at[1]))
		return err_set(err, EINVAL, "'%s': expected NAME or NAME@VERSION", ref);
	*name = at ? xstrndup(ref, (size_t)(at - ref)) : xstrdup(ref);
	*version = at ? xstrdup(at + 1) : NULL;
	return 0;
}

const struct registry_dataset *registry_find(const struct registry *r, const char *name,
                                             const char *version, struct err *err)
{
	const struct registry_dataset *head = NULL, *best_pep = NULL, *best_str = NULL;
	struct pep440 best_v, v;
	_cleanup_sb_ struct strbuf have = STRBUF_INIT;
	size_t n = 0;

	for (size_t i = 0; i < r->n_datasets; i++) {
		const struct registry_dataset *d = &r->datasets[i];

		/* A registry that did not load cleanly may have holes. */
		if (!d->name || !d->version || strcmp(d->name, name) != 0)
			continue;
		n++;
		sb_addf(&have, "%s%s", have.len ? ", " : "", d->version);
		if (version && strcmp(d->version, version) == 0)
			return d;
		if (strcmp(d->version, "head") == 0)
			head = d;
		if (pep440_parse(d->version, &v) &&
		    (!best_pep || pep440_compare(&v, &best_v) > 0)) {
			best_pep = d;
			best_v = v;
		}
		if (!best_str || strcmp(d->version, best_str->version) > 0)
			best_str = d;
	}
	if (n == 0) {
		struct strbuf names = STRBUF_INIT;
		size_t shown = 0;

		for (size_t i = 0; i < r->n_datasets && shown < 20; i++) {
			bool seen = !r->datasets[i].name;

			for (size_t k = 0; k < i && !seen; k++)
				seen = r->datasets[k].name &&
				       strcmp(r->datasets[k].name, r->datasets[i].name) == 0;
			if (!seen) {
				sb_addf(&names, "%s%s", shown ? ", " : "", r->datasets[i].name);
				shown++;
			}
		}
		err_set(err, ENOENT, "no dataset '%s' in %s (%s%s)", name, r->source,
		        shown ? "it has: " : "it is empty", sb_str(&names));
		sb_release(&names);
		return NULL;
	}
	if (version) {
		err_set(err, ENOENT, "dataset '%s' has no version '%s' in %s (versions: %s)", name,
		        version, r->source, sb_str(&have));
		return NULL;
	}
	if (head)
		return head;
	return best_pep ? best_pep : best_str;
}
