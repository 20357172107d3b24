/* Git task fetching with the system git into a cache keyed by (URL, commit,
 * path, name), safe across concurrent rollout processes (flock per entry,
 * downloads staged in a temp dir and renamed into place); registry datasets
 * resolved to task directories. */
#include "core/fetch.h"
#include "config/registry.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/proc.h"
#include "rollout/sha256.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define GIT_TIMEOUT_DEFAULT_SEC 600
#define GIT_OUTPUT_MAX (1u << 20)
#define GIT_STDERR_KEEP 8192
#define CACHE_KEY_LEN 32
/* A temp dir no process holds a lock on and older than this is left over. */
#define STALE_TMP_SEC 60

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

extern char **environ;

void fetched_task_release(struct fetched_task *t)
{
	free(t->dir);
	free(t->commit);
	memset(t, 0, sizeof(*t));
}

/* --- running git -------------------------------------------------------------- */

static int git_timeout_sec(void)
{
	const char *s = getenv("ROLLOUT_GIT_TIMEOUT_SEC");
	char *end;
	long v;

	if (!s || !*s)
		return GIT_TIMEOUT_DEFAULT_SEC;
	v = strtol(s, &end, 10);
	return (*end || v <= 0 || v > 86400) ? GIT_TIMEOUT_DEFAULT_SEC : (int)v;
}

/* The environment of git: the caller's, with prompts off (a fetch must fail,
 * not wait for a password), messages in English, and only the usual
 * transports (no ext::) unless the user chose otherwise. */
static void git_env(struct strv *env)
{
	bool ssh_set = getenv("GIT_SSH_COMMAND") || getenv("GIT_SSH");
	bool proto_set = getenv("GIT_ALLOW_PROTOCOL") != NULL;

	for (char **e = environ; e && *e; e++)
		if (!str_starts_with(*e, "GIT_TERMINAL_PROMPT=") && !str_starts_with(*e, "LC_ALL="))
			strv_push(env, *e);
	strv_push(env, "GIT_TERMINAL_PROMPT=0");
	strv_push(env, "LC_ALL=C");
	if (!proto_set)
		strv_push(env, "GIT_ALLOW_PROTOCOL=file:git:http:https:ssh");
	if (!ssh_set)
		strv_push(env, "GIT_SSH_COMMAND=ssh -o BatchMode=yes");
}

/* The lines of git's stderr that say what went wrong: its fatal:/error:
 * lines, else the last few lines, joined by "; ". */
static char *git_error_text(const char *text)
{
	struct strbuf all = STRBUF_INIT, errs = STRBUF_INIT;
	struct strv lines = STRV_INIT;

	for (const char *p = text; *p;) {
		size_t n = strcspn(p, "\r\n");

		if (n)
			strv_push_take(&lines, xstrndup(p, n));
		p += n;
		while (*p == '\r' || *p == '\n')
			p++;
	}
	for (size_t i = 0; i < lines.n; i++)
		if (str_starts_with(lines.v[i], "fatal:") || str_starts_with(lines.v[i], "error:"))
			sb_addf(&errs, "%s%s", errs.len ? "; " : "", lines.v[i]);
	for (size_t i = lines.n > 3 ? lines.n - 3 : 0; i < lines.n; i++)
		sb_addf(&all, "%s%s", all.len ? "; " : "", lines.v[i]);
	strv_release(&lines);
	if (errs.len) {
		sb_release(&all);
		return sb_detach(&errs);
	}
	sb_release(&errs);
	return all.len ? sb_detach(&all) : xstrdup("no error output");
}

/* Where run_git keeps git's output: stdout up to a cap, stderr's tail. */
struct git_output {
	struct strbuf out, err;
};

static void keep_output(void *ctx, int stream, const char *buf, size_t n)
{
	struct git_output *o = ctx;
	struct strbuf *sb = stream == 1 ? &o->out : &o->err;
	size_t keep = stream == 1 ? GIT_OUTPUT_MAX : GIT_STDERR_KEEP;

	sb_add(sb, buf, n);
	if (sb->len <= keep)
		return;
	if (stream == 2) /* the tail says what went wrong */
		memmove(sb->buf, sb->buf + sb->len - keep, keep);
	sb->len = keep;
	sb->buf[keep] = '\0';
}

/* The command for messages, without "-C TEMPDIR" (noise to a reader). */
static char *argv_text(char *const *argv)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; argv[i]; i++) {
		if (strcmp(argv[i], "-C") == 0 && argv[i + 1]) {
			i++;
			continue;
		}
		sb_addf(&sb, "%s%s", sb.len ? " " : "", argv[i]);
	}
	return sb_detach(&sb);
}

/* Run `git ARGS...` (no shell; stdin /dev/null; its own session, so it has no
 * terminal to prompt on and the whole group can be killed). stdout goes to
 * out (may be NULL); a failure's message carries git's stderr. */
static int run_git(const char *const *args, struct strbuf *out, struct err *err)
{
	_cleanup_strvs_ struct strv argv = STRV_INIT;
	_cleanup_strvs_ struct strv env = STRV_INIT;
	_cleanup_free_ char *cmd = NULL;
	struct git_output o = {STRBUF_INIT, STRBUF_INIT};
	int timeout = git_timeout_sec(), rc = -1;
	struct proc p = {
	    .no_stdin = true,
	    .out = -1,
	    .err = -1,
	    .on_output = keep_output,
	    .output_ctx = &o,
	    .new_session = true,
	    .cancellable = true,
	    .deadline = mono_now() + timeout,
	};

	strv_push(&argv, "git");
	for (size_t i = 0; args[i]; i++)
		strv_push(&argv, args[i]);
	cmd = argv_text(strv_array(&argv));
	git_env(&env);
	p.argv = (const char *const *)strv_array(&argv);
	p.env = (const char *const *)strv_array(&env);
	if (proc_run(&p, err) < 0) {
		if (err->code == ENOENT) /* the exec: no git in PATH */
			err_set(err, ENOENT,
			        "git is not installed (no 'git' in PATH): rollout fetches git "
			        "tasks with the system git; install git, or download the tasks "
			        "and use them as a local path");
		goto out;
	}
	if (p.cancelled) {
		err_set(err, ECANCELED, "%s: cancelled", cmd);
	} else if (p.timed_out) {
		err_set(err, ETIMEDOUT,
		        "%s: no result after %d s (ROLLOUT_GIT_TIMEOUT_SEC sets the limit)", cmd,
		        timeout);
	} else if (p.signalled || p.exit_code != 0) {
		_cleanup_free_ char *why = git_error_text(sb_str(&o.err));

		if (p.signalled)
			err_set(err, EIO, "%s: killed by signal %d: %s", cmd, p.term_sig, why);
		else
			err_set(err, EIO, "%s: exit status %d: %s", cmd, p.exit_code, why);
	} else {
		if (out)
			sb_add(out, sb_str(&o.out), o.out.len);
		rc = 0;
	}
out:
	sb_release(&o.out);
	sb_release(&o.err);
	return rc;
}

/* The 40/64-hex commit at the start of git's output. */
static char *first_hash(const char *text)
{
	size_t n = strspn(text, "0123456789abcdef");

	return (n == 40 || n == 64) ? xstrndup(text, n) : NULL;
}

static char *git_rev_parse_head(const char *repo, struct err *err)
{
	const char *args[] = {"-C", repo, "rev-parse", "--verify", "HEAD", NULL};
	_cleanup_sb_ struct strbuf out = STRBUF_INIT;
	char *hash;

	if (run_git(args, &out, err) < 0)
		return NULL;
	hash = first_hash(sb_str(&out));
	if (!hash)
		err_set(err, EPROTO, "git rev-parse HEAD in %s: unexpected output '%s'", repo,
		        sb_str(&out));
	return hash;
}

/* The commit HEAD names in the remote repository. */
static char *git_remote_head(const char *url, struct err *err)
{
	const char *args[] = {"ls-remote", "--", url, "HEAD", NULL};
	_cleanup_sb_ struct strbuf out = STRBUF_INIT;

	if (run_git(args, &out, err) < 0)
		return NULL;
	for (const char *p = sb_str(&out); *p;) {
		size_t n = strcspn(p, "\n");
		const char *tab = memchr(p, '\t', n);

		if (tab && (size_t)(p + n - tab - 1) == 4 && strncmp(tab + 1, "HEAD", 4) == 0) {
			_cleanup_free_ char *line = xstrndup(p, (size_t)(tab - p));
			char *hash = first_hash(line);

			if (hash && strlen(hash) == strlen(line))
				return hash;
			free(hash);
		}
		p += n + (p[n] == '\n');
	}
	err_set(err, ENOENT, "%s has no HEAD (an empty repository?)", url);
	return NULL;
}

/* --- the cache ---------------------------------------------------------------- */

char *fetch_cache_dir(void)
{
	const char *s = getenv("ROLLOUT_TASK_CACHE");
	const char *home;

	if (s && *s)
		return xstrdup(s);
	s = getenv("XDG_CACHE_HOME");
	if (s && s[0] == '/')
		return path_join(s, "rollout/tasks");
	home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());

		home = pw && pw->pw_dir ? pw->pw_dir : "/";
	}
	return xasprintf("%s/.cache/rollout/tasks", home);
}

static void hash_field(struct sha256 *s, const char *v)
{
	sha256_update(s, v, strlen(v) + 1);
}

static void cache_key(const char *url, const char *commit, const char *path, const char *name,
                      char key[CACHE_KEY_LEN + 1])
{
	static const char tag[] = "rollout-git-task-v1";
	char hex[SHA256_HEX_LEN + 1];
	struct sha256 s;

	sha256_init(&s);
	hash_field(&s, tag);
	hash_field(&s, url);
	hash_field(&s, commit);
	hash_field(&s, path);
	hash_field(&s, name);
	sha256_final_hex(&s, hex);
	memcpy(key, hex, CACHE_KEY_LEN);
	key[CACHE_KEY_LEN] = '\0';
}

/* Take an exclusive flock on path (created), waiting for another process
 * that holds it. Returns the fd. */
static int lock_path(const char *path, const char *what, struct err *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0)
		return err_sys(err, "open %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return fd;
	if (errno != EWOULDBLOCK) {
		err_sys(err, "lock %s", path);
		close(fd);
		return -1;
	}
	log_info("waiting for another rollout process fetching %s", what);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR && !cancel_requested())
			continue;
		if (errno == EINTR)
			err_set(err, ECANCELED, "waiting for the lock on %s: cancelled", path);
		else
			err_sys(err, "lock %s", path);
		close(fd);
		return -1;
	}
	return fd;
}

/* A temp dir in parent, locked (flock on its fd) for as long as *lock_fd is
 * open, so a sweep never takes a live one. */
static int tmp_dir_create(const char *parent, const char *prefix, char **path, int *lock_fd,
                          struct err *err)
{
	char *p = xasprintf("%s/%sXXXXXX", parent, prefix);

	if (!mkdtemp(p)) {
		err_sys(err, "create a temp directory in %s", parent);
		free(p);
		return -1;
	}
	*lock_fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*lock_fd < 0 || flock(*lock_fd, LOCK_EX) < 0) {
		err_sys(err, "lock %s", p);
		if (*lock_fd >= 0)
			close(*lock_fd);
		*lock_fd = -1;
		rmdir(p);
		free(p);
		return -1;
	}
	*path = p;
	return 0;
}

/* Remove the temp dirs of fetches that died (no lock held, not brand new). */
static void tmp_sweep(const char *dir, const char *prefix)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *e;
	time_t now = time(NULL);

	while (d && (e = readdir(d))) {
		struct stat st;
		int fd;

		if (!str_starts_with(e->d_name, prefix))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode) || now - st.st_mtime < STALE_TMP_SEC)
			continue;
		fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			struct err err = {0};

			log_debug("removing %s/%s left by an interrupted fetch", dir, e->d_name);
			if (rm_rf_at(dirfd(d), e->d_name, &err) < 0)
				log_warn("%s", err.msg);
		}
		close(fd);
	}
}

static void tmp_dir_remove(char **path, int *lock_fd)
{
	struct err err = {0};

	if (*path && rm_rf(*path, &err) < 0)
		log_warn("%s", err.msg);
	free(*path);
	*path = NULL;
	if (*lock_fd >= 0)
		close(*lock_fd);
	*lock_fd = -1;
}

static bool dir_nonempty(const char *path)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *e;
	struct stat st;

	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return false;
	d = opendir(path);
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			return true;
	return false;
}

/* Put the finished stage dir at target: a rename, or, when target exists, an
 * atomic exchange followed by removing the old tree (now at stage). */
static int install_dir(const char *stage, const char *target, struct err *err)
{
	if (rename(stage, target) == 0)
		return 0;
	if (errno != EEXIST && errno != ENOTEMPTY && errno != EISDIR && errno != ENOTDIR)
		return err_sys(err, "rename %s to %s", stage, target);
	if (syscall(SYS_renameat2, AT_FDCWD, stage, AT_FDCWD, target, RENAME_EXCHANGE) < 0)
		return err_sys(err, "replace %s", target);
	return rm_rf(stage, err);
}

/* The record of the last HEAD fetched per URL, for when the URL is out of reach. */
static char *heads_record_path(const char *cache, const char *url)
{
	char hex[SHA256_HEX_LEN + 1];

	sha256_hex(url, strlen(url), hex);
	hex[CACHE_KEY_LEN] = '\0';
	return xasprintf("%s/.heads/%s.json", cache, hex);
}

static void heads_record_write(const char *cache, const char *url, const char *commit)
{
	_cleanup_free_ char *path = heads_record_path(cache, url);
	_cleanup_free_ char *dir = path_join(cache, ".heads");
	_cleanup_json_ cJSON *j = cJSON_CreateObject();
	char when[ISO8601_LEN];
	struct err err = {0};

	iso8601_format(wall_now(), when, sizeof(when));
	cJSON_AddStringToObject(j, "git_url", url);
	cJSON_AddStringToObject(j, "commit", commit);
	cJSON_AddStringToObject(j, "resolved_at", when);
	if (mkdir_p(dir, 0755, &err) < 0 || json_write_file_atomic(path, j, &err) < 0)
		log_warn("%s", err.msg);
}

static char *heads_record_read(const char *cache, const char *url, char **when)
{
	_cleanup_free_ char *path = heads_record_path(cache, url);
	_cleanup_json_ cJSON *j = NULL;
	struct err err = {0};
	const char *commit, *u, *w;

	if (!path_exists(path) || json_load_file(path, &j, &err) < 0)
		return NULL;
	commit = json_get_str(j, "commit");
	u = json_get_str(j, "git_url");
	w = json_get_str(j, "resolved_at");
	if (!commit || !u || strcmp(u, url) != 0)
		return NULL;
	*when = xstrdup(w ? w : "?");
	return first_hash(commit);
}

/* A directory of the clone reached without following any symlink: a
 * repository may hold links that point out of it. */
static int repo_task_dir(const char *repo, const char *path, const char *url, const char *commit,
                         struct err *err)
{
	_cleanup_close_ int fd = open(repo, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *copy = xstrdup(path);
	char *save = NULL;

	if (fd < 0)
		return err_sys(err, "open %s", repo);
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (next < 0) {
			if (errno == ENOENT)
				return err_set(err, ENOENT, "%s has no directory '%s' at commit %s",
				               url, path, commit);
			if (errno == ELOOP || errno == ENOTDIR)
				return err_set(err, ENOTDIR,
				               "'%s' in %s at commit %s is not a directory (a "
				               "symlink or a file)",
				               path, url, commit);
			return err_sys(err, "open %s/%s", repo, path);
		}
		close(fd);
		fd = next;
	}
	return 0;
}

/* A gitignore-style pattern that matches exactly the directory path at the
 * root of the repository (special characters escaped). */
static char *sparse_pattern(const char *path)
{
	struct strbuf sb = STRBUF_INIT;

	sb_addc(&sb, '/');
	for (const char *p = path; *p; p++) {
		if (strchr("*?[]\\!# ", *p))
			sb_addc(&sb, '\\');
		sb_addc(&sb, *p);
	}
	sb_addc(&sb, '/');
	return sb_detach(&sb);
}

/* --- fetching ----------------------------------------------------------------- */

struct want {
	size_t idx;
	const char *name;
	char *commit; /* the commit to check out */
	char key[CACHE_KEY_LEN + 1];
	char *entry;      /* CACHE/KEY */
	char *entry_task; /* CACHE/KEY/NAME */
	bool fetch;       /* not cached (or overwrite) */
	bool first;       /* the first want of its key (duplicates share the entry) */
};

static void want_release(struct want *w)
{
	free(w->commit);
	free(w->entry);
	free(w->entry_task);
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp((*(struct want *const *)a)->key, (*(struct want *const *)b)->key);
}

static int write_entry_meta(const char *stage, const struct git_task *t, const char *name,
                            const char *commit, struct err *err)
{
	_cleanup_free_ char *path = path_join(stage, "fetch.json");
	_cleanup_json_ cJSON *j = cJSON_CreateObject();
	char when[ISO8601_LEN];

	iso8601_format(wall_now(), when, sizeof(when));
	cJSON_AddStringToObject(j, "git_url", t->git_url);
	json_add_str_or_null(j, "git_commit_id", t->git_commit_id);
	cJSON_AddStringToObject(j, "commit", commit);
	cJSON_AddStringToObject(j, "path", t->path);
	cJSON_AddStringToObject(j, "name", name);
	cJSON_AddStringToObject(j, "fetched_at", when);
	return json_write_file_atomic(path, j, err);
}

static bool entry_complete(const struct want *w)
{
	_cleanup_free_ char *meta = path_join(w->entry, "fetch.json");

	return path_is_file(meta) && dir_nonempty(w->entry_task);
}

/* Clone url once (shallow, no blobs, no checkout), sparse to the paths
 * wanted, then check out each commit and move each task into the cache. */
static int clone_and_install(const char *cache, const char *url, const struct git_task *tasks,
                             struct want **ws, size_t n, struct err *err)
{
	_cleanup_free_ char *tmp = NULL, *repo = NULL, *tip = NULL;
	_cleanup_strvs_ struct strv sparse = STRV_INIT;
	int tmp_fd = -1, ret = -1;

	if (tmp_dir_create(cache, ".tmp-", &tmp, &tmp_fd, err) < 0)
		return -1;
	repo = path_join(tmp, "repo");
	{
		const char *args[] = {"clone",   "--quiet", "--filter=blob:none",
		                      "--depth", "1",       "--no-checkout",
		                      "--",      url,       repo,
		                      NULL};

		log_info("fetching %zu task%s from %s", n, n == 1 ? "" : "s", url);
		if (run_git(args, NULL, err) < 0)
			goto out;
	}
	strv_push(&sparse, "-C");
	strv_push(&sparse, repo);
	strv_push(&sparse, "sparse-checkout");
	strv_push(&sparse, "set");
	strv_push(&sparse, "--no-cone");
	strv_push(&sparse, "--");
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *pat = sparse_pattern(tasks[ws[i]->idx].path);

		if (!strv_contains(&sparse, pat))
			strv_push(&sparse, pat);
	}
	if (run_git((const char *const *)strv_array(&sparse), NULL, err) < 0)
		goto out;
	if (!(tip = git_rev_parse_head(repo, err)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		const char *commit = ws[i]->commit;
		_cleanup_free_ char *got = NULL;
		bool done_before = false;

		for (size_t k = 0; k < i && !done_before; k++)
			done_before = strcmp(ws[k]->commit, commit) == 0;
		if (done_before)
			continue;
		if (strcmp(commit, tip) != 0) {
			const char *args[] = {"-C", repo,     "fetch", "--quiet", "--depth",
			                      "1",  "origin", commit,  NULL};

			if (run_git(args, NULL, err) < 0) {
				err_wrap(err, "commit %s of %s", commit, url);
				goto out;
			}
		}
		{
			const char *args[] = {
			    "-C",       repo,      "-c",       "advice.detachedHead=false",
			    "checkout", "--quiet", "--detach", commit,
			    NULL};

			if (run_git(args, NULL, err) < 0)
				goto out;
		}
		if (!(got = git_rev_parse_head(repo, err)))
			goto out;
		if (strcmp(got, commit) != 0) {
			err_set(err, EIO, "%s: checked out %s where commit %s was asked for", url,
			        got, commit);
			goto out;
		}
		for (size_t k = i; k < n; k++) {
			const struct git_task *t = &tasks[ws[k]->idx];
			_cleanup_free_ char *src = NULL, *stage = NULL, *stage_task = NULL;

			if (strcmp(ws[k]->commit, commit) != 0 || !ws[k]->first)
				continue;
			if (repo_task_dir(repo, t->path, url, commit, err) < 0)
				goto out;
			src = path_join(repo, t->path);
			stage = xasprintf("%s/stage-%s", tmp, ws[k]->key);
			stage_task = path_join(stage, ws[k]->name);
			if (mkdir(stage, 0755) < 0) {
				err_sys(err, "mkdir %s", stage);
				goto out;
			}
			if (copy_tree(src, stage_task, false, err) < 0 ||
			    write_entry_meta(stage, t, ws[k]->name, commit, err) < 0 ||
			    install_dir(stage, ws[k]->entry, err) < 0)
				goto out;
		}
	}
	ret = 0;
out:
	tmp_dir_remove(&tmp, &tmp_fd);
	return ret;
}

/* Every task of one repository: resolve HEAD when needed, lock the cache
 * entries, fetch what is missing. ws[i] are this repository's wants. */
static int fetch_repo(const char *cache, const char *url, const struct git_task *tasks,
                      struct want **ws, size_t n, bool overwrite, struct err *err)
{
	_cleanup_free_ char *head = NULL;
	_cleanup_free_ struct want **sorted = NULL, **todo = NULL;
	_cleanup_free_ int *locks = NULL;
	size_t n_locks = 0, n_todo = 0;
	bool uses_head = false;
	int ret = -1;

	for (size_t i = 0; i < n; i++)
		uses_head = uses_head || !tasks[ws[i]->idx].git_commit_id;
	if (uses_head) {
		struct err head_err = {0};

		head = git_remote_head(url, &head_err);
		if (!head) {
			_cleanup_free_ char *when = NULL;

			/* Fall back only when git ran and could not reach the URL
			 * (failed, or hung until the timeout). */
			if (head_err.code != EIO && head_err.code != ETIMEDOUT) {
				*err = head_err;
				return -1;
			}
			head = heads_record_read(cache, url, &when);
			if (!head) {
				*err = head_err;
				return err_wrap(err, "resolve HEAD of %s", url);
			}
			log_warn("cannot reach %s to resolve HEAD; using HEAD as last seen on %s "
			         "(%s). %s",
			         url, when, head, head_err.msg);
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct want *w = ws[i];
		const struct git_task *t = &tasks[w->idx];

		w->commit = xstrdup(t->git_commit_id ? t->git_commit_id : head);
		cache_key(url, w->commit, t->path, w->name, w->key);
		w->entry = path_join(cache, w->key);
		w->entry_task = path_join(w->entry, w->name);
	}
	/* Locks in key order, so two processes never wait on each other. */
	sorted = xcalloc(n, sizeof(*sorted));
	memcpy(sorted, ws, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), key_cmp);
	locks = xcalloc(n, sizeof(*locks));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *lock = NULL, *what = NULL;

		sorted[i]->first = i == 0 || strcmp(sorted[i - 1]->key, sorted[i]->key) != 0;
		if (!sorted[i]->first)
			continue;
		lock = xasprintf("%s/.locks/%s.lock", cache, sorted[i]->key);
		what = xasprintf("%s (%s)", tasks[sorted[i]->idx].path, url);
		locks[n_locks] = lock_path(lock, what, err);
		if (locks[n_locks] < 0)
			goto out;
		n_locks++;
	}
	todo = xcalloc(n, sizeof(*todo));
	for (size_t i = 0; i < n; i++) {
		struct want *w = ws[i];

		if (!w->first)
			continue; /* shares the entry of its first twin (set below) */
		w->fetch = overwrite || !entry_complete(w);
		if (w->fetch)
			todo[n_todo++] = w;
	}
	if (n_todo && clone_and_install(cache, url, tasks, todo, n_todo, err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!ws[i]->first) {
			for (size_t k = 0; k < n; k++)
				if (ws[k]->first && strcmp(ws[k]->key, ws[i]->key) == 0)
					ws[i]->fetch = ws[k]->fetch;
		}
	}
	if (uses_head)
		heads_record_write(cache, url, head);
	ret = 0;
out:
	for (size_t i = 0; i < n_locks; i++)
		close(locks[i]);
	return ret;
}

/* Copy src to DIR/NAME unless that already holds the same files (same task
 * checksum); the copy replaces the old one atomically. *copied tells. */
static int install_copy(const char *src, const char *dir, const char *name, bool force,
                        bool *copied, struct err *err)
{
	_cleanup_free_ char *target = path_join(dir, name), *tmp = NULL, *stage = NULL;
	int tmp_fd = -1, ret;

	*copied = false;
	if (!force && dir_nonempty(target)) {
		char a[SHA256_HEX_LEN + 1], b[SHA256_HEX_LEN + 1];
		struct err ignored = {0};

		if (task_checksum(src, a, err) < 0)
			return -1;
		if (task_checksum(target, b, &ignored) == 0 && strcmp(a, b) == 0)
			return 0;
	}
	if (mkdir_p(dir, 0755, err) < 0)
		return -1;
	tmp_sweep(dir, ".rollout-tmp-");
	if (tmp_dir_create(dir, ".rollout-tmp-", &tmp, &tmp_fd, err) < 0)
		return -1;
	stage = path_join(tmp, name);
	ret = copy_tree(src, stage, false, err);
	if (ret == 0)
		ret = install_dir(stage, target, err);
	tmp_dir_remove(&tmp, &tmp_fd);
	*copied = ret == 0;
	return ret;
}

static bool name_ok(const char *s)
{
	return *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

int fetch_git_tasks(const struct git_task *tasks, size_t n, const struct fetch_opts *opts,
                    struct fetched_task *out, struct err *err)
{
	_cleanup_free_ char *cache = fetch_cache_dir();
	_cleanup_free_ struct want *wants = NULL;
	_cleanup_free_ struct want **group = NULL;
	_cleanup_free_ char **names = NULL;
	_cleanup_free_ bool *grouped = NULL;
	struct fetch_opts none = {0};
	int ret = -1;

	if (!opts)
		opts = &none;
	memset(out, 0, n * sizeof(*out));
	if (n == 0)
		return 0;
	names = xcalloc(n, sizeof(*names));
	for (size_t i = 0; i < n; i++) {
		const struct git_task *t = &tasks[i];
		_cleanup_free_ char *clean = t->path ? path_clean_relative(t->path) : NULL;
		_cleanup_free_ char *commit = t->git_commit_id ? xstrdup(t->git_commit_id) : NULL;

		if (!t->git_url || !*t->git_url)
			return err_set(err, EINVAL, "task %s: no git_url", t->path ? t->path : "?");
		if (!clean || !*clean || strcmp(clean, t->path) != 0)
			return err_set(
			    err, EINVAL,
			    "task path '%s' in %s: expected a clean relative path to the "
			    "task's directory",
			    t->path ? t->path : "", t->git_url);
		if (commit && (!registry_commit_id_normalize(commit) ||
		               strcmp(commit, t->git_commit_id) != 0))
			return err_set(err, EINVAL,
			               "task %s in %s: git_commit_id '%s' is not a full lowercase "
			               "commit hash (40 hex digits)",
			               t->path, t->git_url, t->git_commit_id);
		names[i] = (char *)(t->name ? t->name : path_basename(t->path));
		if (!name_ok(names[i]))
			return err_set(err, EINVAL, "task %s: '%s' cannot be a directory name",
			               t->path, names[i]);
	}
	{
		_cleanup_free_ char *locks = path_join(cache, ".locks");

		if (mkdir_p(locks, 0755, err) < 0)
			return err_wrap(err, "task cache");
	}
	tmp_sweep(cache, ".tmp-");
	wants = xcalloc(n, sizeof(*wants));
	group = xcalloc(n, sizeof(*group));
	grouped = xcalloc(n, sizeof(*grouped));
	for (size_t i = 0; i < n; i++) {
		wants[i].idx = i;
		wants[i].name = names[i];
	}
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;

		if (grouped[i])
			continue;
		for (size_t j = i; j < n; j++) {
			if (!grouped[j] && strcmp(tasks[j].git_url, tasks[i].git_url) == 0) {
				grouped[j] = true;
				group[k++] = &wants[j];
			}
		}
		if (fetch_repo(cache, tasks[i].git_url, tasks, group, k, opts->overwrite, err) < 0)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct want *w = &wants[i];

		out[i].commit = xstrdup(w->commit);
		out[i].reused = !w->fetch;
		if (opts->download_dir) {
			bool copied;

			if (install_copy(w->entry_task, opts->download_dir, w->name,
			                 opts->overwrite || w->fetch, &copied, err) < 0)
				goto out;
			out[i].dir = path_join(opts->download_dir, w->name);
		} else {
			out[i].dir = xstrdup(w->entry_task);
		}
	}
	ret = 0;
out:
	for (size_t i = 0; i < n; i++) {
		if (ret < 0)
			fetched_task_release(&out[i]);
		want_release(&wants[i]);
	}
	return ret;
}

int fetch_git_task(const struct task_ref_config *t, char **dir, struct err *err)
{
	_cleanup_free_ char *path = NULL, *commit = NULL;
	struct fetch_opts opts = {.overwrite = t->overwrite, .download_dir = t->download_dir};
	struct git_task gt;
	struct fetched_task ft;

	*dir = NULL;
	if (!t->git_url) {
		*dir = xstrdup(t->path);
		return 0;
	}
	path = path_clean_relative(t->path);
	if (!path || !*path)
		return err_set(err, EINVAL,
		               "task %s (%s): the path must be a directory inside the repository",
		               t->path, t->git_url);
	if (t->git_commit_id) {
		commit = xstrdup(t->git_commit_id);
		if (!registry_commit_id_normalize(commit))
			return err_set(err, EINVAL,
			               "task %s (%s): git_commit_id '%s' is not a full commit hash "
			               "(40 hex digits)",
			               t->path, t->git_url, t->git_commit_id);
	}
	gt = (struct git_task){.git_url = t->git_url, .git_commit_id = commit, .path = path};
	if (fetch_git_tasks(&gt, 1, &opts, &ft, err) < 0)
		return -1;
	*dir = steal_ptr(&ft.dir);
	fetched_task_release(&ft);
	return 0;
}

/* --- registry datasets -------------------------------------------------------- */

void registry_fetch_release(struct registry_fetch *f)
{
	for (size_t i = 0; f->origins && i < f->ds.n_tasks; i++) {
		free(f->origins[i].git_url);
		free(f->origins[i].git_commit_id);
		free(f->origins[i].repo_path);
		free(f->origins[i].commit);
	}
	free(f->origins);
	for (size_t i = 0; i < f->n_metrics; i++) {
		free(f->metrics[i].type);
		cJSON_Delete(f->metrics[i].kwargs);
	}
	free(f->metrics);
	free(f->version);
	dataset_release(&f->ds);
	memset(f, 0, sizeof(*f));
}

static const struct registry_task *find_task(const struct registry_dataset *d, const char *name)
{
	for (size_t i = 0; i < d->n_tasks; i++)
		if (strcmp(d->tasks[i].name, name) == 0)
			return &d->tasks[i];
	return NULL;
}

static int fetch_selected(const struct registry_dataset *d, const struct dataset_config *dc,
                          unsigned flags, struct registry_fetch *f, struct err *err)
{
	size_t n = f->ds.n_tasks, n_git = 0;
	_cleanup_free_ struct git_task *git = xcalloc(n ? n : 1, sizeof(*git));
	_cleanup_free_ struct fetched_task *got = xcalloc(n ? n : 1, sizeof(*got));
	_cleanup_free_ size_t *slot = xcalloc(n ? n : 1, sizeof(*slot));
	struct fetch_opts opts = {.overwrite = dc->overwrite, .download_dir = dc->download_dir};

	for (size_t i = 0; i < n; i++) {
		const struct registry_task *rt = find_task(d, f->ds.tasks[i].name);
		struct task_origin *o = &f->origins[i];

		free(f->ds.tasks[i].path);
		f->ds.tasks[i].path = NULL;
		if (rt->git_url) {
			o->git_url = xstrdup(rt->git_url);
			o->git_commit_id = rt->git_commit_id ? xstrdup(rt->git_commit_id) : NULL;
			o->repo_path = xstrdup(rt->path);
			git[n_git] = (struct git_task){.git_url = rt->git_url,
			                               .git_commit_id = rt->git_commit_id,
			                               .path = rt->path,
			                               .name = rt->name};
			slot[n_git++] = i;
			continue;
		}
		if (!path_is_dir(rt->path))
			return err_set(err, ENOENT, "task %s: local path %s is not a directory",
			               rt->name, rt->path);
		if ((flags & FETCH_COPY_LOCAL) && dc->download_dir) {
			bool copied;

			if (install_copy(rt->path, dc->download_dir, rt->name, dc->overwrite,
			                 &copied, err) < 0)
				return err_wrap(err, "task %s", rt->name);
			f->ds.tasks[i].path = path_join(dc->download_dir, rt->name);
			o->reused = !copied;
		} else {
			f->ds.tasks[i].path = xstrdup(rt->path);
			o->reused = true;
		}
	}
	if (n_git && fetch_git_tasks(git, n_git, &opts, got, err) < 0)
		return -1;
	for (size_t k = 0; k < n_git; k++) {
		struct task_origin *o = &f->origins[slot[k]];

		f->ds.tasks[slot[k]].path = steal_ptr(&got[k].dir);
		o->commit = steal_ptr(&got[k].commit);
		o->reused = got[k].reused;
	}
	return 0;
}

int fetch_registry_dataset(const struct dataset_config *dc, unsigned flags,
                           struct registry_fetch *out, struct err *err)
{
	struct registry reg = {0};
	const struct registry_dataset *d;
	struct task_filter filter = task_filter_of(dc);
	struct registry_fetch f = {0};

	memset(out, 0, sizeof(*out));
	if (!dc->name)
		return err_set(err, EINVAL, "a registry dataset needs a name");
	if (registry_open(dc->registry_path, dc->registry_url, &reg, err) < 0)
		return err_wrap(err, "dataset '%s'", dc->name);
	d = registry_find(&reg, dc->name, dc->version, err);
	if (!d) {
		registry_release(&reg);
		return -1;
	}
	if (d->n_tasks == 0) {
		err_set(err, ENOENT, "dataset %s@%s in %s has no tasks", d->name, d->version,
		        reg.source);
		registry_release(&reg);
		return -1;
	}
	f.ds.name = xstrdup(d->name);
	f.version = xstrdup(d->version);
	f.ds.tasks = xcalloc(d->n_tasks, sizeof(*f.ds.tasks));
	for (size_t i = 0; i < d->n_tasks; i++) {
		f.ds.tasks[i].name = xstrdup(d->tasks[i].name);
		f.ds.tasks[i].path = xstrdup(d->tasks[i].path);
	}
	f.ds.n_tasks = d->n_tasks;
	f.metrics = xcalloc(d->n_metrics ? d->n_metrics : 1, sizeof(*f.metrics));
	for (size_t i = 0; i < d->n_metrics; i++) {
		f.metrics[i].type = xstrdup(d->metrics[i].type);
		f.metrics[i].kwargs = cJSON_Duplicate(d->metrics[i].kwargs, true);
	}
	f.n_metrics = d->n_metrics;
	if (dataset_filter(&f.ds, &filter, err) < 0)
		goto fail;
	f.origins = xcalloc(f.ds.n_tasks, sizeof(*f.origins));
	if (fetch_selected(d, dc, flags, &f, err) < 0) {
		err_wrap(err, "dataset %s@%s", d->name, d->version);
		goto fail;
	}
	registry_release(&reg);
	*out = f;
	return 0;
fail:
	registry_release(&reg);
	registry_fetch_release(&f);
	return -1;
}
