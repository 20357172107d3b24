/* Git tasks fetched with the system git (sparse, shallow, pinned commit) into
 * a cache shared by every rollout process, and registry datasets resolved to
 * local task directories. Cache layout and rules: docs/DATASETS.md. */
#ifndef ROLLOUT_CORE_FETCH_H
#define ROLLOUT_CORE_FETCH_H

#include "config/dataset.h"
#include "config/job_config.h"

#include <stdbool.h>
#include <stddef.h>

struct err;

/* One task directory of a git repository. */
struct git_task {
	const char *git_url;
	const char *git_commit_id; /* NULL: the repository's HEAD; else 40/64 lowercase hex */
	const char *path;          /* the task's directory in the repository (clean, relative) */
	const char *name;          /* the fetched directory's name; NULL = basename of path */
};

struct fetch_opts {
	/* Fetch again even when the cache (or download_dir) already has the task. */
	bool overwrite;
	/* NULL: tasks stay in the cache. Else each task is also copied to
	 * DOWNLOAD_DIR/NAME (flat), which is the directory returned. */
	const char *download_dir;
};

/* What one fetch did. */
struct fetched_task {
	char *dir;    /* the local task directory */
	char *commit; /* the commit it came from (full hash); NULL for a local task */
	bool reused;  /* no clone: the cache (or the download dir) already had it */
};

void fetched_task_release(struct fetched_task *t);

/* The cache root: $ROLLOUT_TASK_CACHE, else $XDG_CACHE_HOME/rollout/tasks,
 * else ~/.cache/rollout/tasks. Heap string. */
char *fetch_cache_dir(void);

/* Fetch tasks (any mix of repositories and commits): one shallow sparse
 * clone per git_url covering every path of that repository not already
 * cached. HEAD tasks are resolved with `git ls-remote` first and cached
 * under the commit HEAD named, so they are fetched again only when HEAD
 * moved. out[i] is filled for tasks[i]; on failure nothing is left in out. */
int fetch_git_tasks(const struct git_task *tasks, size_t n, const struct fetch_opts *opts,
                    struct fetched_task *out, struct err *err);

/* A job `tasks:` entry with a git_url (path = the directory in the
 * repository; overwrite and download_dir as in fetch_opts). Without a
 * git_url, *dir is its path. *dir is a heap string. */
int fetch_git_task(const struct task_ref_config *t, char **dir, struct err *err);

/* Where a task of a registry dataset came from (for the trial's task config
 * and task_id: Harbor records {git_url, git_commit_id, path}). */
struct task_origin {
	char *git_url;       /* NULL: a local task */
	char *git_commit_id; /* the registry's pin; NULL: HEAD (or a local task) */
	char *repo_path;     /* the task's directory in the repository; NULL: local */
	char *commit;        /* the commit fetched (full hash); NULL: local */
	bool reused;         /* no clone: the cache or the download dir had it */
};

/* A registry dataset resolved to local task directories. */
struct registry_fetch {
	/* name = the dataset's name (the trials' `source`, which keys the
	 * metrics); path = NULL; tasks in registry order after the filters,
	 * each {task name, local directory}. */
	struct dataset ds;
	char *version;                 /* the version chosen */
	struct task_origin *origins;   /* parallel to ds.tasks */
	struct metric_config *metrics; /* the registry's metrics for the dataset */
	size_t n_metrics;
};

/* Flags of fetch_registry_dataset. */
#define FETCH_COPY_LOCAL (1u << 0) /* with download_dir: copy local tasks there too */

/* Load the entry's registry (registry_path or registry_url), pick NAME at
 * VERSION (Harbor's rules when version is NULL), apply the entry's filters
 * (task_names, exclude_task_names, n_tasks, as for local datasets), then
 * fetch the git tasks that are left (overwrite, download_dir) and check that
 * local ones exist. */
int fetch_registry_dataset(const struct dataset_config *dc, unsigned flags,
                           struct registry_fetch *out, struct err *err);
void registry_fetch_release(struct registry_fetch *f);

#endif
