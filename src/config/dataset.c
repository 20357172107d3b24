/* Local dataset resolution with Harbor's filters, and the task checksum. */
#include "config/dataset.h"
#include "config/job_config.h"
#include "config/task.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECKSUM_MAX_DEPTH 64

void dataset_release(struct dataset *ds)
{
	for (size_t i = 0; i < ds->n_tasks; i++) {
		free(ds->tasks[i].name);
		free(ds->tasks[i].path);
	}
	free(ds->tasks);
	free(ds->name);
	free(ds->path);
	memset(ds, 0, sizeof(*ds));
}

static void dataset_add(struct dataset *ds, char *name, char *path)
{
	ds->tasks = xrealloc(ds->tasks, (ds->n_tasks + 1) * sizeof(*ds->tasks));
	ds->tasks[ds->n_tasks].name = name;
	ds->tasks[ds->n_tasks].path = path;
	ds->n_tasks++;
}

static int task_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dataset_task *)a)->name,
	              ((const struct dataset_task *)b)->name);
}

/* "a, b, c, ... (12 tasks)" for messages. */
static char *task_list(const struct dataset *ds)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < ds->n_tasks && i < 8; i++)
		sb_addf(&sb, "%s%s", i ? ", " : "", ds->tasks[i].name);
	if (ds->n_tasks > 8)
		sb_addf(&sb, ", ... (%zu tasks)", ds->n_tasks);
	return sb_detach(&sb);
}

struct task_filter task_filter_of(const struct dataset_config *d)
{
	struct task_filter f = {
	    .task_names = d->has_task_names ? d->task_names.v : NULL,
	    .exclude_task_names = d->has_exclude_task_names ? d->exclude_task_names.v : NULL,
	    .n_tasks = d->n_tasks,
	};

	return f;
}

int dataset_filter(struct dataset *ds, const struct task_filter *f, struct err *err)
{
	const char *what = ds->name ? ds->name : ds->path;
	size_t n = 0;
	_cleanup_free_ bool *keep = NULL;

	if (!f)
		return 0;
	keep = xcalloc(ds->n_tasks + 1, sizeof(*keep));
	for (size_t i = 0; i < ds->n_tasks; i++)
		keep[i] = !(f->task_names && f->task_names[0]);
	for (char *const *pat = f->task_names; pat && *pat; pat++) {
		bool matched = false;

		for (size_t i = 0; i < ds->n_tasks; i++) {
			if (fnmatch(*pat, ds->tasks[i].name, 0) == 0) {
				keep[i] = true;
				matched = true;
			}
		}
		if (!matched) {
			_cleanup_free_ char *names = task_list(ds);

			return err_set(err, EINVAL,
			               "task name pattern '%s' matches no task in %s (%s)", *pat,
			               what, names);
		}
	}
	for (char *const *pat = f->exclude_task_names; pat && *pat; pat++)
		for (size_t i = 0; i < ds->n_tasks; i++)
			if (fnmatch(*pat, ds->tasks[i].name, 0) == 0)
				keep[i] = false;
	for (size_t i = 0; i < ds->n_tasks; i++) {
		if (keep[i]) {
			ds->tasks[n++] = ds->tasks[i];
		} else {
			free(ds->tasks[i].name);
			free(ds->tasks[i].path);
		}
	}
	ds->n_tasks = n;
	if (n == 0)
		return err_set(err, EINVAL, "no task of %s is left after excluding task names",
		               what);
	if (f->n_tasks == 0)
		return err_set(err, EINVAL, "n_tasks is 0: no task of %s would run", what);
	if (f->n_tasks > 0 && (size_t)f->n_tasks < ds->n_tasks) {
		for (size_t i = (size_t)f->n_tasks; i < ds->n_tasks; i++) {
			free(ds->tasks[i].name);
			free(ds->tasks[i].path);
		}
		ds->n_tasks = (size_t)f->n_tasks;
	}
	return 0;
}

/* "name: not a task (no task.toml, tests/test.sh)": a child directory skipped. */
static void skip_child(struct strv *skipped, const char *name, const char *dir, unsigned flags)
{
	_cleanup_free_ char *why = task_dir_problem(dir, flags);

	strv_pushf(skipped, "%s: not a task (%s)", name, why ? why : "not valid");
}

int dataset_resolve_local(const char *path, const struct task_filter *filter, unsigned task_flags,
                          struct dataset *out, struct err *err)
{
	struct dataset ds = {0};
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (stat(path, &st) < 0)
		return err_sys(err, "%s", path);
	if (!S_ISDIR(st.st_mode))
		return err_set(err, ENOTDIR, "%s: not a task or dataset directory", path);
	ds.path = xstrdup(path);
	if (task_dir_is_valid(path, task_flags)) {
		dataset_add(&ds, task_dir_name(path), xstrdup(path));
	} else {
		_cleanup_closedir_ DIR *d = opendir(path);
		_cleanup_strvs_ struct strv skipped = STRV_INIT;
		struct dirent *e;

		if (!d) {
			dataset_release(&ds);
			return err_sys(err, "open %s", path);
		}
		while ((e = readdir(d))) {
			_cleanup_free_ char *child = NULL;

			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			child = path_join(path, e->d_name);
			if (!path_is_dir(child))
				continue;
			if (task_dir_is_valid(child, task_flags))
				dataset_add(&ds, xstrdup(e->d_name), steal_ptr(&child));
			else if (e->d_name[0] != '.')
				skip_child(&skipped, e->d_name, child, task_flags);
		}
		strv_sort(&skipped);
		for (size_t i = 0; i < skipped.n && ds.n_tasks; i++)
			log_warn("%s: skipped %s", path, skipped.v[i]);
		if (ds.n_tasks == 0) {
			dataset_release(&ds);
			return err_set(err, ENOENT,
			               "%s: not a task, and no directory in it is one (a task has "
			               "task.toml, instruction.md, environment/ and tests/test.sh)",
			               path);
		}
		qsort(ds.tasks, ds.n_tasks, sizeof(*ds.tasks), task_cmp);
		ds.name = task_dir_name(path);
	}
	if (dataset_filter(&ds, filter, err) < 0) {
		dataset_release(&ds);
		return -1;
	}
	*out = ds;
	return 0;
}

struct checksum_entry {
	char *rel;
	char type;
	char hex[SHA256_HEX_LEN + 1];
};

struct checksum_walk {
	struct checksum_entry *v;
	size_t n, cap;
	const char *root;
	struct err *err;
};

static void walk_add(struct checksum_walk *w, char *rel, char type, const char *hex)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 32;
		w->v = xrealloc(w->v, w->cap * sizeof(*w->v));
	}
	w->v[w->n].rel = rel;
	w->v[w->n].type = type;
	memcpy(w->v[w->n].hex, hex, SHA256_HEX_LEN + 1);
	w->n++;
}

static int hash_file_at(int dirfd, const char *name, const char *rel, struct checksum_walk *w,
                        char hex[SHA256_HEX_LEN + 1])
{
	/* O_NONBLOCK: a fifo swapped in after the walk's stat must not block the open. */
	_cleanup_close_ int fd =
	    openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct sha256 s;
	struct stat st;
	char buf[65536];
	ssize_t n;

	if (fd < 0)
		return err_sys(w->err, "checksum: open %s/%s", w->root, rel);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return err_set(w->err, EINVAL, "checksum: %s/%s: not a regular file", w->root, rel);
	sha256_init(&s);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return err_sys(w->err, "checksum: read %s/%s", w->root, rel);
		}
		sha256_update(&s, buf, (size_t)n);
	}
	sha256_final_hex(&s, hex);
	return 0;
}

/* Walk dirfd (relative path prefix), never following symlinks. */
static int checksum_walk_dir(int dirfd, const char *prefix, int depth, struct checksum_walk *w)
{
	_cleanup_closedir_ DIR *d = NULL;
	int dup_fd;
	struct dirent *e;

	if (depth > CHECKSUM_MAX_DEPTH)
		return err_set(w->err, ELOOP, "checksum: %s/%s: directories nested too deep",
		               w->root, prefix);
	dup_fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0 || !(d = fdopendir(dup_fd))) {
		if (dup_fd >= 0)
			close(dup_fd);
		return err_sys(w->err, "checksum: open %s/%s", w->root, prefix);
	}
	while ((errno = 0, e = readdir(d))) {
		_cleanup_free_ char *rel = NULL;
		struct stat st;
		char hex[SHA256_HEX_LEN + 1];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		rel = *prefix ? xasprintf("%s/%s", prefix, e->d_name) : xstrdup(e->d_name);
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return err_sys(w->err, "checksum: stat %s/%s", w->root, rel);
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub = openat(
			    dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0)
				return err_sys(w->err, "checksum: open %s/%s", w->root, rel);
			if (checksum_walk_dir(sub, rel, depth + 1, w) < 0)
				return -1;
		} else if (S_ISREG(st.st_mode)) {
			if (hash_file_at(dirfd, e->d_name, rel, w, hex) < 0)
				return -1;
			walk_add(w, steal_ptr(&rel), (st.st_mode & S_IXUSR) ? 'x' : 'f', hex);
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlinkat(dirfd, e->d_name, target, sizeof(target));

			if (n < 0 || (size_t)n >= sizeof(target))
				return err_sys(w->err, "checksum: readlink %s/%s", w->root, rel);
			sha256_hex(target, (size_t)n, hex);
			walk_add(w, steal_ptr(&rel), 'l', hex);
		} else {
			return err_set(w->err, EINVAL,
			               "checksum: %s/%s: not a file, directory or symlink", w->root,
			               rel);
		}
	}
	if (errno)
		return err_sys(w->err, "checksum: read directory %s/%s", w->root, prefix);
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct checksum_entry *)a)->rel,
	              ((const struct checksum_entry *)b)->rel);
}

int task_checksum(const char *dir, char out[SHA256_HEX_LEN + 1], struct err *err)
{
	static const char header[] = "rollout-task-checksum-v1";
	struct checksum_walk w = {.root = dir, .err = err};
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct sha256 s;
	int ret = -1;

	if (fd < 0)
		return err_sys(err, "checksum: open %s", dir);
	if (checksum_walk_dir(fd, "", 0, &w) < 0)
		goto out;
	qsort(w.v, w.n, sizeof(*w.v), entry_cmp);
	sha256_init(&s);
	sha256_update(&s, header, sizeof(header)); /* with its NUL */
	for (size_t i = 0; i < w.n; i++) {
		sha256_update(&s, &w.v[i].type, 1);
		sha256_update(&s, " ", 1);
		sha256_update(&s, w.v[i].hex, SHA256_HEX_LEN);
		sha256_update(&s, " ", 1);
		sha256_update(&s, w.v[i].rel, strlen(w.v[i].rel) + 1);
	}
	sha256_final_hex(&s, out);
	ret = 0;
out:
	for (size_t i = 0; i < w.n; i++)
		free(w.v[i].rel);
	free(w.v);
	return ret;
}
