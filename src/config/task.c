/* task.toml binding with Harbor's defaults, and task directory loading and
 * checking (every problem of a task, not just the first). */
#include "config/task.h"
#include "config/toml.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TASK_TOML_MAX (4u << 20)
#define INSTRUCTION_MAX (16u << 20)
/* Deeper trees are refused rather than walked (the checksum walk has the same limit). */
#define LINK_SCAN_MAX_DEPTH 64

void task_config_init(struct task_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->schema_version = xstrdup("1.0");
	cfg->metadata = cJSON_CreateObject();
	cfg->package.description = xstrdup("");
	cfg->verifier.timeout_sec = 600.0;
	cfg->agent.timeout_sec = 600.0;
	cfg->environment.build_timeout_sec = 600.0;
	cfg->environment.cpus = 1;
	cfg->environment.memory_mb = 2048;
	cfg->environment.storage_mb = 10240;
	cfg->environment.gpus = 0;
	cfg->environment.allow_internet = true;
	cfg->environment.os = xstrdup("linux");
	cfg->environment.healthcheck.interval_sec = 5;
	cfg->environment.healthcheck.timeout_sec = 30;
	cfg->environment.healthcheck.start_period_sec = 0;
	cfg->environment.healthcheck.start_interval_sec = 5;
	cfg->environment.healthcheck.retries = 3;
}

void task_config_release(struct task_config *cfg)
{
	free(cfg->schema_version);
	free(cfg->source);
	cJSON_Delete(cfg->metadata);
	artifact_specs_release(cfg->artifacts, cfg->n_artifacts);
	free(cfg->package.name);
	free(cfg->package.version);
	free(cfg->package.description);
	for (size_t i = 0; i < cfg->package.n_authors; i++) {
		free(cfg->package.authors[i].name);
		free(cfg->package.authors[i].email);
	}
	free(cfg->package.authors);
	strv_release(&cfg->package.keywords);
	env_list_release(&cfg->verifier.env);
	free(cfg->verifier.user);
	free(cfg->agent.user);
	free(cfg->environment.docker_image);
	strv_release(&cfg->environment.gpu_types);
	for (size_t i = 0; i < cfg->environment.n_mcp_servers; i++) {
		struct task_mcp_server *s = &cfg->environment.mcp_servers[i];

		free(s->name);
		free(s->transport);
		free(s->url);
		free(s->command);
		strv_release(&s->args);
	}
	free(cfg->environment.mcp_servers);
	free(cfg->environment.os);
	env_list_release(&cfg->environment.env);
	free(cfg->environment.workdir);
	free(cfg->environment.healthcheck.command);
	env_list_release(&cfg->solution.env);
	memset(cfg, 0, sizeof(*cfg));
}

long task_parse_size_mb(const char *s)
{
	_cleanup_free_ char *t = NULL;
	size_t n;
	char unit, *end;
	double v;

	while (isspace((unsigned char)*s))
		s++;
	t = xstrdup(s);
	n = strlen(t);
	while (n && isspace((unsigned char)t[n - 1]))
		t[--n] = '\0';
	if (n < 2)
		return -1;
	unit = (char)toupper((unsigned char)t[n - 1]);
	t[n - 1] = '\0';
	/* A plain decimal number: no sign, hex, exponent, inf or nan. */
	for (char *p = t; *p; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			return -1;
	errno = 0;
	v = strtod(t, &end);
	if (*end || end == t || errno || v > 1e12)
		return -1;
	switch (unit) {
	case 'G':
		return (long)(v * 1024);
	case 'M':
		return (long)v;
	case 'K':
		return (long)(v / 1024);
	default:
		return -1;
	}
}

/* A user is a name or a uid: kept as text either way. */
static void bind_user(struct binder *b, struct node *tbl, const char *prefix, char **out)
{
	_cleanup_free_ char *path = bind_path(prefix, "user");
	struct node *v = bind_take(tbl, "user");

	if (v && v->type == NODE_INT) {
		if (v->i < 0) {
			bind_error(b, v, path, "expected a user name or a uid >= 0, got %lld",
			           (long long)v->i);
			return;
		}
		free(*out);
		*out = xasprintf("%lld", (long long)v->i);
		return;
	}
	if (v && v->type != NODE_STRING && v->type != NODE_NULL) {
		bind_error(b, v, path, "expected a user name or a uid, got %s", node_type_name(v));
		return;
	}
	bind_node_str(b, v, path, BIND_NULL_OK | BIND_NONEMPTY, out);
}

static void bind_package(struct binder *b, struct node *root, struct task_config *cfg)
{
	struct node *t = bind_table(b, root, NULL, "task");
	struct node *authors;

	if (!t)
		return;
	cfg->package.set = true;
	if (bind_str(b, t, "task", "name", BIND_NONEMPTY, &cfg->package.name) == 0)
		diag_error_at(b->diags, b->file, t->line,
		              "key 'task.name': required when [task] is present (\"org/name\")");
	bind_str(b, t, "task", "version", BIND_NULL_OK, &cfg->package.version);
	bind_str(b, t, "task", "description", 0, &cfg->package.description);
	bind_strv(b, t, "task", "keywords", 0, &cfg->package.keywords, NULL);
	authors = bind_array(b, t, "task", "authors");
	if (authors) {
		cfg->package.authors =
		    xcalloc(authors->arr.n ? authors->arr.n : 1, sizeof(*cfg->package.authors));
		for (size_t i = 0; i < authors->arr.n; i++) {
			struct node *a = authors->arr.v[i];
			_cleanup_free_ char *path = bind_index("task.authors", i);
			struct task_author *au = &cfg->package.authors[cfg->package.n_authors];

			if (a->type != NODE_TABLE) {
				bind_error(b, a, path, "expected a table {name, email}, got %s",
				           node_type_name(a));
				continue;
			}
			if (bind_str(b, a, path, "name", BIND_NONEMPTY, &au->name) == 0)
				bind_error(b, a, path, "missing 'name'");
			bind_str(b, a, path, "email", BIND_NULL_OK, &au->email);
			bind_unknown_keys(b, a, path, NULL);
			if (au->name) {
				cfg->package.n_authors++;
			} else {
				free(au->email);
				au->email = NULL;
			}
		}
	}
	bind_unknown_keys(b, t, "task", NULL);
}

static void bind_verifier(struct binder *b, struct node *root, struct task_config *cfg)
{
	static const char *const unsupported[] = {"network_mode", "allowed_hosts", "environment",
	                                          "collect", NULL};
	struct node *t = bind_table(b, root, NULL, "verifier");
	_cleanup_free_ char *mode = NULL;
	struct node *mode_node;

	if (!t)
		return;
	bind_double(b, t, "verifier", "timeout_sec", BIND_POSITIVE, &cfg->verifier.timeout_sec);
	bind_env(b, t, "verifier", "env", true, &cfg->verifier.env);
	bind_user(b, t, "verifier", &cfg->verifier.user);
	mode_node = node_get(t, "environment_mode");
	if (bind_str(b, t, "verifier", "environment_mode", 0, &mode) > 0 &&
	    strcmp(mode, "shared") != 0) {
		if (strcmp(mode, "separate") == 0)
			bind_error(
			    b, mode_node, "verifier.environment_mode",
			    "\"separate\" verifier environments are not supported by rollout "
			    "(only \"shared\")");
		else
			bind_error(b, mode_node, "verifier.environment_mode",
			           "expected one of shared, separate, got \"%s\"", mode);
	}
	bind_unknown_keys(b, t, "verifier", unsupported);
}

static void bind_agent(struct binder *b, struct node *root, struct task_config *cfg)
{
	static const char *const unsupported[] = {"network_mode", "allowed_hosts", NULL};
	struct node *t = bind_table(b, root, NULL, "agent");

	if (!t)
		return;
	bind_double(b, t, "agent", "timeout_sec", BIND_POSITIVE, &cfg->agent.timeout_sec);
	bind_user(b, t, "agent", &cfg->agent.user);
	bind_unknown_keys(b, t, "agent", unsupported);
}

/* memory = "2G" / memory_mb = 2048 (and storage): both may be given if they agree. */
static void bind_size(struct binder *b, struct node *env, const char *key, const char *key_mb,
                      int *out)
{
	_cleanup_free_ char *str = NULL;
	_cleanup_free_ char *path = bind_path("environment", key);
	_cleanup_free_ char *path_mb = bind_path("environment", key_mb);
	struct node *v = node_get(env, key), *v_mb = node_get(env, key_mb);
	int mb = -1;
	long from_str = -1;

	bind_int(b, env, "environment", key_mb, BIND_POSITIVE, &mb);
	if (bind_str(b, env, "environment", key, 0, &str) > 0) {
		from_str = task_parse_size_mb(str);
		if (from_str < 0 || from_str > 1L << 30) {
			bind_error(b, v, path,
			           "expected a size like \"2G\", \"512M\" or \"1K\", got \"%s\"",
			           str);
			return;
		}
		if (from_str == 0) {
			bind_error(b, v, path, "\"%s\" is less than 1 MB", str);
			return;
		}
		if (mb > 0 && mb != from_str) {
			bind_error(b, v, path,
			           "\"%s\" (%ld MB) disagrees with %s = %d on line %d; keep one",
			           str, from_str, path_mb, mb, v_mb->line);
			return;
		}
		*out = (int)from_str;
	}
	if (mb > 0)
		*out = mb;
}

static void bind_mcp_servers(struct binder *b, struct node *env, struct task_config *cfg)
{
	static const char *const transports[] = {"sse", "streamable-http", "stdio", NULL};
	struct node *arr = bind_array(b, env, "environment", "mcp_servers");

	if (!arr)
		return;
	cfg->environment.mcp_servers =
	    xcalloc(arr->arr.n ? arr->arr.n : 1, sizeof(*cfg->environment.mcp_servers));
	for (size_t i = 0; i < arr->arr.n; i++) {
		struct node *v = arr->arr.v[i];
		_cleanup_free_ char *path = bind_index("environment.mcp_servers", i);
		struct task_mcp_server *s;
		int transport = 0;

		if (v->type != NODE_TABLE) {
			bind_error(b, v, path,
			           "expected a table {name, transport, url | command}, got %s",
			           node_type_name(v));
			continue;
		}
		s = &cfg->environment.mcp_servers[cfg->environment.n_mcp_servers++];
		if (bind_str(b, v, path, "name", BIND_NONEMPTY, &s->name) == 0)
			bind_error(b, v, path, "missing 'name'");
		bind_enum(b, v, path, "transport", transports, 0, &transport);
		s->transport = xstrdup(transports[transport]);
		bind_str(b, v, path, "url", BIND_NULL_OK | BIND_NONEMPTY, &s->url);
		bind_str(b, v, path, "command", BIND_NULL_OK | BIND_NONEMPTY, &s->command);
		bind_strv(b, v, path, "args", 0, &s->args, NULL);
		if (transport == 2 && !s->command)
			bind_error(b, v, path, "transport \"stdio\" needs 'command'");
		if (transport != 2 && !s->url)
			bind_error(b, v, path, "transport \"%s\" needs 'url'",
			           transports[transport]);
		bind_unknown_keys(b, v, path, NULL);
	}
}

static void bind_healthcheck(struct binder *b, struct node *env, struct task_config *cfg)
{
	const char *p = "environment.healthcheck";
	struct node *t = bind_table(b, env, "environment", "healthcheck");
	struct task_healthcheck *h = &cfg->environment.healthcheck;

	if (!t)
		return;
	h->set = true;
	if (bind_str(b, t, p, "command", BIND_NONEMPTY, &h->command) == 0)
		diag_error_at(b->diags, b->file, t->line, "key '%s.command': required", p);
	bind_double(b, t, p, "interval_sec", BIND_NONNEG, &h->interval_sec);
	bind_double(b, t, p, "timeout_sec", BIND_POSITIVE, &h->timeout_sec);
	bind_double(b, t, p, "start_period_sec", BIND_NONNEG, &h->start_period_sec);
	bind_double(b, t, p, "start_interval_sec", BIND_NONNEG, &h->start_interval_sec);
	bind_int(b, t, p, "retries", BIND_NONNEG, &h->retries);
	bind_unknown_keys(b, t, p, NULL);
}

static void bind_environment(struct binder *b, struct node *root, struct task_config *cfg)
{
	static const char *const unsupported[] = {"allowed_hosts", "skills_dir", "tpu", NULL};
	static const char *const network_modes[] = {"public", "no-network", "allowlist", NULL};
	struct node *t = bind_table(b, root, NULL, "environment");
	struct node *allow, *os_node;
	int mode = -1;

	if (!t)
		return;
	bind_double(b, t, "environment", "build_timeout_sec", BIND_POSITIVE,
	            &cfg->environment.build_timeout_sec);
	bind_str(b, t, "environment", "docker_image", BIND_NULL_OK | BIND_NONEMPTY,
	         &cfg->environment.docker_image);
	bind_int(b, t, "environment", "cpus", BIND_POSITIVE, &cfg->environment.cpus);
	bind_size(b, t, "memory", "memory_mb", &cfg->environment.memory_mb);
	bind_size(b, t, "storage", "storage_mb", &cfg->environment.storage_mb);
	bind_int(b, t, "environment", "gpus", BIND_NONNEG, &cfg->environment.gpus);
	bind_strv(b, t, "environment", "gpu_types", BIND_NONEMPTY, &cfg->environment.gpu_types,
	          &cfg->environment.has_gpu_types);
	allow = node_get(t, "allow_internet");
	bind_bool(b, t, "environment", "allow_internet", &cfg->environment.allow_internet);
	if (bind_enum(b, t, "environment", "network_mode", network_modes, 0, &mode) > 0) {
		bool net = mode == 0;

		if (mode == 2)
			bind_warn(
			    b, node_get(t, "network_mode")->line, "environment.network_mode",
			    "\"allowlist\" is not supported by rollout; the environment gets no "
			    "network");
		if (allow && allow->type == NODE_BOOL && allow->b != net)
			bind_error(b, node_get(t, "network_mode"), "environment.network_mode",
			           "\"%s\" contradicts allow_internet = %s on line %d",
			           network_modes[mode], allow->b ? "true" : "false", allow->line);
		cfg->environment.allow_internet = net;
	}
	bind_mcp_servers(b, t, cfg);
	os_node = node_get(t, "os");
	if (bind_str(b, t, "environment", "os", 0, &cfg->environment.os) > 0) {
		if (strcmp(cfg->environment.os, "windows") == 0)
			bind_error(b, os_node, "environment.os",
			           "Windows tasks are not supported by rollout");
		else if (strcmp(cfg->environment.os, "linux") != 0)
			bind_error(b, os_node, "environment.os",
			           "expected one of linux, windows, got \"%s\"",
			           cfg->environment.os);
	}
	bind_env(b, t, "environment", "env", true, &cfg->environment.env);
	bind_str(b, t, "environment", "workdir", BIND_NULL_OK | BIND_NONEMPTY,
	         &cfg->environment.workdir);
	if (cfg->environment.workdir && cfg->environment.workdir[0] != '/')
		bind_error(b, node_get(t, "workdir"), "environment.workdir",
		           "expected an absolute path, got \"%s\"", cfg->environment.workdir);
	bind_healthcheck(b, t, cfg);
	bind_unknown_keys(b, t, "environment", unsupported);
}

void task_config_bind(struct node *root, const char *file, struct task_config *cfg,
                      struct diags *diags)
{
	static const char *const unsupported[] = {"multi_step_reward_strategy", NULL};
	struct binder b = {.file = file, .diags = diags};
	_cleanup_free_ char *version = NULL;
	struct node *steps, *solution;

	bind_str(&b, root, NULL, "version", BIND_NONEMPTY, &version);
	if (bind_str(&b, root, NULL, "schema_version", BIND_NONEMPTY, &cfg->schema_version) == 0 &&
	    version) {
		free(cfg->schema_version);
		cfg->schema_version = steal_ptr(&version);
	}
	bind_str(&b, root, NULL, "source", BIND_NULL_OK, &cfg->source);
	bind_object_json(&b, root, NULL, "metadata", &cfg->metadata);
	bind_artifacts(&b, root, &cfg->artifacts, &cfg->n_artifacts);
	bind_package(&b, root, cfg);
	bind_verifier(&b, root, cfg);
	bind_agent(&b, root, cfg);
	bind_environment(&b, root, cfg);
	solution = bind_table(&b, root, NULL, "solution");
	if (solution) {
		bind_env(&b, solution, "solution", "env", true, &cfg->solution.env);
		bind_unknown_keys(&b, solution, "solution", NULL);
	}
	steps = bind_take(root, "steps");
	if (steps)
		bind_error(&b, steps, "steps", "multi-step tasks are not supported by rollout");
	bind_unknown_keys(&b, root, NULL, unsupported);
}

/* Parse and bind a task.toml's text (path names it in messages). 0, -1 after schema
 * errors, -2 when it did not parse. */
static int config_parse(const char *path, const char *text, size_t len, struct task_config *cfg,
                        struct diags *diags)
{
	_cleanup_node_ struct node *root = NULL;
	struct err err = {0};
	size_t start = diags->n, before = diags->n_errors;

	if (toml_parse(text, len, path, &root, &err) < 0) {
		diag_add_err(diags, &err);
		return -2;
	}
	task_config_bind(root, path, cfg, diags);
	diags_sort_lines(diags, start);
	return diags->n_errors > before ? -1 : 0;
}

/* 0, -1 after schema errors, -2 when the file did not read or parse. */
static int config_load(const char *path, struct task_config *cfg, struct diags *diags)
{
	_cleanup_free_ char *text = NULL;
	struct err err = {0};
	size_t len;

	if (read_file(path, TASK_TOML_MAX, &text, &len, &err) < 0) {
		diag_add_err(diags, &err);
		return -2;
	}
	return config_parse(path, text, len, cfg, diags);
}

int task_config_load(const char *path, struct task_config *cfg, struct diags *diags)
{
	return config_load(path, cfg, diags) < 0 ? -1 : 0;
}

static char *task_file(const char *dir, const char *rel)
{
	return path_join(dir, rel);
}

bool task_dir_is_valid(const char *dir, unsigned flags)
{
	_cleanup_free_ char *toml = task_file(dir, "task.toml");
	_cleanup_free_ char *instr = task_file(dir, "instruction.md");
	_cleanup_free_ char *env = task_file(dir, "environment");
	_cleanup_free_ char *test = task_file(dir, "tests/test.sh");

	return path_is_file(toml) && path_is_file(instr) && path_is_dir(env) &&
	       ((flags & TASK_NO_VERIFY) || path_is_file(test));
}

char *task_dir_problem(const char *dir, unsigned flags)
{
	static const struct {
		const char *rel;
		bool dir;
	} need[] = {{"task.toml", false},
	            {"instruction.md", false},
	            {"environment", true},
	            {"tests/test.sh", false}};
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < ARRAY_SIZE(need); i++) {
		_cleanup_free_ char *p = task_file(dir, need[i].rel);

		if (i == 3 && (flags & TASK_NO_VERIFY))
			continue;
		if (need[i].dir ? path_is_dir(p) : path_is_file(p))
			continue;
		sb_addf(&sb, "%s%s%s", sb.len ? ", " : "no ", need[i].rel, need[i].dir ? "/" : "");
	}
	return sb.len ? sb_detach(&sb) : NULL;
}

bool task_dir_looks_like_task(const char *dir)
{
	static const char *const markers[] = {"task.toml", "instruction.md", "environment",
	                                      "tests"};

	for (size_t i = 0; i < ARRAY_SIZE(markers); i++) {
		_cleanup_free_ char *p = task_file(dir, markers[i]);

		if (path_exists(p))
			return true;
	}
	return false;
}

/* --- task files without following links ------------------------------------- */

/* The entries rollout reads or uploads. A link there is never needed and would hand
 * whatever it points at to the environment or the agent, so none may be one. */
static const char *const task_entries[] = {"task.toml", "instruction.md", "environment", "tests",
                                           "solution"};

static int openat2_resolve(int dirfd, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = {.flags = (uint64_t)flags, .resolve = resolve};

	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/* Kernels before 5.6 have no openat2; seccomp filters may refuse it. */
static bool openat2_missing(int e)
{
	return e == ENOSYS || e == EPERM;
}

/* A link target for messages: control characters would reach the terminal. */
static void printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static void read_link_at(int dirfd, const char *name, char *buf, size_t n)
{
	ssize_t got = readlinkat(dirfd, name, buf, n - 1);

	buf[got < 0 ? 0 : got] = '\0';
	printable(buf);
}

/* Does a relative link target, followed lexically from `level` directories below the
 * task directory, climb out of it? (For targets that do not exist: nothing else can
 * be asked about them.) */
static bool target_climbs_out(const char *target, int level)
{
	if (target[0] == '/')
		return true;
	for (const char *p = target; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (--level < 0)
				return true;
		} else if (n > 0 && !(n == 1 && p[0] == '.')) {
			level++;
		}
		p += n + (p[n] == '/');
	}
	return false;
}

/* Without openat2: the link's real path must lie in the task directory's. */
static bool link_leaves_by_realpath(const char *task_dir, const char *rel, const char *target,
                                    int level)
{
	_cleanup_free_ char *root = path_real(task_dir);
	_cleanup_free_ char *joined = path_join(task_dir, rel);
	_cleanup_free_ char *real = path_real(joined);
	size_t n;

	if (!real)
		return errno != ENOENT || target_climbs_out(target, level);
	if (!root)
		return true;
	n = strlen(root);
	return strncmp(real, root, n) != 0 || (real[n] != '/' && real[n] != '\0');
}

/* Does the link at `rel` (its target already read) resolve outside the task
 * directory open at root? The kernel answers: RESOLVE_BENEATH fails with EXDEV for an
 * absolute target or a ".." above root, through any chain of links. */
static bool link_leaves(int root, const char *task_dir, const char *rel, const char *target,
                        int level)
{
	int fd =
	    openat2_resolve(root, rel, O_PATH | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);

	if (fd >= 0) {
		close(fd);
		return false;
	}
	if (openat2_missing(errno))
		return link_leaves_by_realpath(task_dir, rel, target, level);
	if (errno == ENOENT || errno == ENOTDIR)
		return target_climbs_out(target, level);
	return true; /* EXDEV, and ELOOP: a link that cannot be resolved is not trusted */
}

/* A top-level entry of the task that is a link: reported once, here. */
static bool entry_is_link(int root, const char *task_dir, const char *name, struct diags *diags)
{
	struct stat st;
	char target[PATH_MAX];

	if (fstatat(root, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode))
		return false;
	read_link_at(root, name, target, sizeof(target));
	diag_add(diags, DIAG_ERROR,
	         "%s/%s: a symbolic link (to \"%s\"); rollout reads a task's %s only as a real "
	         "%s, never through a link",
	         task_dir, name, target, name, strchr(name, '.') ? "file" : "directory");
	return true;
}

static bool is_task_entry(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(task_entries); i++)
		if (!strcmp(name, task_entries[i]))
			return true;
	return false;
}

struct link_scan {
	int root;
	const char *task_dir;
	struct diags *diags;
};

static void scan_links_in(struct link_scan *s, int dirfd, const char *rel, int level);

static void scan_entry(struct link_scan *s, int dirfd, const char *name, const char *rel, int level)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		diag_add(s->diags, DIAG_ERROR, "%s/%s: %s", s->task_dir, rel, strerror(errno));
		return;
	}
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];

		read_link_at(dirfd, name, target, sizeof(target));
		if (link_leaves(s->root, s->task_dir, rel, target, level))
			diag_add(s->diags, DIAG_ERROR,
			         "%s/%s: a symbolic link to \"%s\", out of the task directory "
			         "(rollout never reads task files through such links)",
			         s->task_dir, rel, target);
	} else if (S_ISDIR(st.st_mode)) {
		_cleanup_close_ int sub =
		    openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (sub < 0)
			diag_add(s->diags, DIAG_ERROR, "%s/%s: %s", s->task_dir, rel,
			         strerror(errno));
		else if (level + 1 > LINK_SCAN_MAX_DEPTH)
			diag_add(s->diags, DIAG_ERROR, "%s/%s: directories nested too deep",
			         s->task_dir, rel);
		else
			scan_links_in(s, sub, rel, level + 1);
	}
}

/* Every link in the tree at dirfd (`rel` below the task directory, `level` deep), in
 * name order so that reports read the same everywhere. */
static void scan_links_in(struct link_scan *s, int dirfd, const char *rel, int level)
{
	_cleanup_strvs_ struct strv names = STRV_INIT;

	if (dir_names_sorted(dirfd, &names) < 0) {
		diag_add(s->diags, DIAG_ERROR, "%s/%s: %s", s->task_dir, rel, strerror(errno));
		return;
	}
	for (size_t i = 0; i < names.n; i++) {
		_cleanup_free_ char *child =
		    *rel ? xasprintf("%s/%s", rel, names.v[i]) : xstrdup(names.v[i]);

		if (level == 0 && is_task_entry(names.v[i]) &&
		    entry_is_link(s->root, s->task_dir, names.v[i], s->diags))
			continue;
		scan_entry(s, dirfd, names.v[i], child, level);
	}
}

/* Every problem with links in the task open at root: its own entries as links, and
 * links anywhere in it that point out of it. */
static void check_links(int root, const char *task_dir, struct diags *diags)
{
	struct link_scan s = {.root = root, .task_dir = task_dir, .diags = diags};

	scan_links_in(&s, root, "", 0);
}

/* A task's own entry, opened with no link anywhere on the way: openat2 refuses links
 * outright; without it, O_NOFOLLOW does for the one component a task entry has. */
static int open_entry(int root, const char *name, int flags)
{
	int fd = openat2_resolve(root, name, flags | O_NOFOLLOW | O_CLOEXEC,
	                         RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);

	if (fd < 0 && openat2_missing(errno))
		fd = openat(root, name, flags | O_NOFOLLOW | O_CLOEXEC);
	return fd;
}

/* Read task.toml or instruction.md of the task open at root: a regular file, not a
 * link, a fifo or a device, at most max bytes. */
static int read_entry(int root, const char *task_dir, const char *name, size_t max, char **text,
                      size_t *len, struct err *err)
{
	_cleanup_free_ char *path = path_join(task_dir, name);
	_cleanup_close_ int fd = open_entry(root, name, O_RDONLY | O_NONBLOCK | O_NOCTTY);
	struct stat st;

	if (fd < 0)
		return err_sys(err, "%s", path);
	if (fstat(fd, &st) < 0)
		return err_sys(err, "%s", path);
	if (!S_ISREG(st.st_mode))
		return err_set(err, EINVAL, "%s: not a regular file", path);
	return read_fd(fd, path, max, text, len, err);
}

static bool is_name(const char *name)
{
	return *name && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

int task_open_dir(const char *task_dir, const char *name, struct err *err)
{
	_cleanup_close_ int root = open(task_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int fd = -1;
	_cleanup_diags_ struct diags d = DIAGS_INIT;
	_cleanup_free_ char *path = NULL;

	if (root < 0)
		return err_sys(err, "task %s", task_dir);
	if (!is_name(name))
		return err_set(err, EINVAL, "task %s: \"%s\" is not an entry of a task directory",
		               task_dir, name);
	path = path_join(task_dir, name);
	if (entry_is_link(root, task_dir, name, &d))
		goto refused;
	fd = open_entry(root, name, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return err_sys(err, "%s", path);
	{
		struct link_scan s = {.root = root, .task_dir = task_dir, .diags = &d};

		scan_links_in(&s, fd, name, 1);
	}
	if (d.n_errors)
		goto refused;
	return steal_fd(&fd);
refused:
	diags_report(&d, err);
	err->code = ELOOP;
	return -1;
}

void task_free(struct task *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->dir);
	free(t->config_path);
	free(t->instruction_path);
	free(t->environment_dir);
	free(t->solution_dir);
	free(t->tests_dir);
	free(t->instruction);
	task_config_release(&t->config);
	free(t);
}

void cleanup_taskp(struct task **t)
{
	task_free(*t);
	*t = NULL;
}

char *task_dir_name(const char *dir)
{
	_cleanup_free_ char *trimmed = xstrdup(dir);
	size_t n = strlen(trimmed);
	const char *base;

	while (n > 1 && trimmed[n - 1] == '/')
		trimmed[--n] = '\0';
	base = path_basename(trimmed);
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		_cleanup_free_ char *real = path_real(dir);

		if (real && strcmp(real, "/") != 0)
			return xstrdup(path_basename(real));
	}
	return xstrdup(*base ? base : dir);
}

/* What a task entry is, never following a link. */
enum entry_kind { ENTRY_MISSING, ENTRY_LINK, ENTRY_FILE, ENTRY_DIR, ENTRY_OTHER };

static enum entry_kind entry_kind(int root, const char *name)
{
	struct stat st;

	if (fstatat(root, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return ENTRY_MISSING;
	if (S_ISLNK(st.st_mode))
		return ENTRY_LINK;
	if (S_ISREG(st.st_mode))
		return ENTRY_FILE;
	return S_ISDIR(st.st_mode) ? ENTRY_DIR : ENTRY_OTHER;
}

/* task.toml. Returns false when it could not be parsed (docker_image is unknown). */
static bool check_config(struct task *t, int root, struct diags *diags)
{
	_cleanup_free_ char *text = NULL;
	struct err err = {0};
	size_t len;

	switch (entry_kind(root, "task.toml")) {
	case ENTRY_LINK:
		return false; /* reported by check_links */
	case ENTRY_FILE:
		break;
	default:
		diag_add(diags, DIAG_ERROR, "%s: missing (a task needs task.toml)", t->config_path);
		return true;
	}
	if (read_entry(root, t->dir, "task.toml", TASK_TOML_MAX, &text, &len, &err) < 0) {
		diag_add_err(diags, &err);
		return false;
	}
	return config_parse(t->config_path, text, len, &t->config, diags) != -2;
}

static void check_instruction(struct task *t, int root, struct diags *diags)
{
	struct err err = {0};
	size_t len;

	switch (entry_kind(root, "instruction.md")) {
	case ENTRY_LINK:
		return;
	case ENTRY_FILE:
		break;
	default:
		diag_add(diags, DIAG_ERROR, "%s: missing (a task needs instruction.md)",
		         t->instruction_path);
		return;
	}
	if (read_entry(root, t->dir, "instruction.md", INSTRUCTION_MAX, &t->instruction, &len,
	               &err) < 0)
		diag_add_err(diags, &err);
	else if (len == 0)
		diag_add(diags, DIAG_WARNING, "%s: empty instruction", t->instruction_path);
}

static void check_environment(struct task *t, int root, bool config_parsed, struct diags *diags)
{
	_cleanup_free_ char *dockerfile = task_file(t->environment_dir, "Dockerfile");
	_cleanup_free_ char *compose = task_file(t->environment_dir, "docker-compose.yaml");

	switch (entry_kind(root, "environment")) {
	case ENTRY_LINK:
		return;
	case ENTRY_DIR:
		break;
	default:
		diag_add(diags, DIAG_ERROR, "%s: missing (a task needs an environment/ directory)",
		         t->environment_dir);
		return;
	}
	if (path_exists(compose))
		diag_add(diags, DIAG_WARNING,
		         "%s: docker-compose files are not supported by rollout and are ignored",
		         compose);
	/* Without a parsed task.toml, docker_image is unknown: say nothing. */
	if (config_parsed && !path_is_file(dockerfile) && !t->config.environment.docker_image)
		diag_add(diags, DIAG_ERROR,
		         "%s: missing, and task.toml sets no [environment].docker_image (a task "
		         "needs one of them)",
		         dockerfile);
}

/* tests/test.sh (unless verification is off) and solution/solve.sh (a warning). A
 * link in their place was reported by check_links. */
static void check_scripts(struct task *t, int root, unsigned flags, struct diags *diags)
{
	_cleanup_free_ char *test_sh = task_file(t->tests_dir, "test.sh");
	_cleanup_free_ char *solve_sh = task_file(t->solution_dir, "solve.sh");

	if (!(flags & TASK_NO_VERIFY) && entry_kind(root, "tests") != ENTRY_LINK &&
	    !path_is_file(test_sh))
		diag_add(diags, DIAG_ERROR, "%s: missing (the verifier runs tests/test.sh)",
		         test_sh);
	if (entry_kind(root, "solution") != ENTRY_LINK && !path_is_file(solve_sh))
		diag_add(diags, DIAG_WARNING,
		         "%s: missing (the oracle agent cannot solve this task)", solve_sh);
}

int task_check(const char *dir, unsigned flags, struct diags *diags, struct task **out)
{
	struct task *t = xcalloc(1, sizeof(*t));
	size_t errors_before = diags->n_errors;
	_cleanup_close_ int root = -1;
	bool config_parsed;

	t->dir = xstrdup(dir);
	t->name = task_dir_name(dir);
	t->config_path = task_file(dir, "task.toml");
	t->instruction_path = task_file(dir, "instruction.md");
	t->environment_dir = task_file(dir, "environment");
	t->solution_dir = task_file(dir, "solution");
	t->tests_dir = task_file(dir, "tests");
	task_config_init(&t->config);

	/* The directory itself is followed: it is what the user named. */
	root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		if (errno == ENOTDIR)
			diag_add(diags, DIAG_ERROR, "%s: not a directory (a task is a directory)",
			         dir);
		else
			diag_add(diags, DIAG_ERROR, "%s: %s", dir, strerror(errno));
		goto out;
	}
	check_links(root, dir, diags);
	config_parsed = check_config(t, root, diags);
	check_instruction(t, root, diags);
	check_environment(t, root, config_parsed, diags);
	check_scripts(t, root, flags, diags);
out:
	if (diags->n_errors > errors_before) {
		task_free(t);
		return -1;
	}
	if (out)
		*out = t;
	else
		task_free(t);
	return 0;
}

int task_load(const char *dir, unsigned flags, struct task **out, struct err *err)
{
	_cleanup_diags_ struct diags diags = DIAGS_INIT;
	struct task *t = NULL;

	if (task_check(dir, flags, &diags, &t) < 0) {
		diags_report(&diags, err);
		return -1;
	}
	/* Only warnings are left: log them. A missing solve.sh is the oracle's concern. */
	for (size_t i = 0; i < diags.n; i++)
		if (!strstr(diags.v[i].msg, "solve.sh: missing"))
			log_warn("%s", diags.v[i].msg);
	*out = t;
	return 0;
}
