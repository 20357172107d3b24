/* Local datasets (a task directory, or a directory of tasks) with Harbor's
 * name filters, and the task checksum recorded in every trial result. */
#ifndef ROLLOUT_CONFIG_DATASET_H
#define ROLLOUT_CONFIG_DATASET_H

#include "rollout/sha256.h"

#include <stddef.h>

struct err;
struct dataset_config;

struct dataset_task {
	char *name; /* directory basename */
	char *path; /* path of the task directory (the dataset path joined with name) */
};

struct dataset {
	/* The dataset name (the directory's basename), recorded as the trials'
	 * `source`. NULL when the path was a single task (Harbor: source null). */
	char *name;
	char *path;
	struct dataset_task *tasks; /* sorted by name, bytewise */
	size_t n_tasks;
};

struct task_filter {
	char *const *task_names;         /* fnmatch globs to include; NULL = every task */
	char *const *exclude_task_names; /* globs to drop after inclusion; NULL = none */
	int n_tasks;                     /* keep the first N after filtering; < 0 = all */
};

/* The filter of a job's dataset entry (pointers into d, which must outlive it). */
struct task_filter task_filter_of(const struct dataset_config *d);

/* Resolve `-p PATH` / a local dataset: PATH is a task (task_dir_is_valid with
 * task_flags) -> one task; else a directory whose valid child tasks form the
 * dataset (other children are skipped; none at all is an error). Then the
 * filter: include globs (a pattern that matches nothing is an error), then
 * exclude globs (nothing left is an error), then n_tasks. */
int dataset_resolve_local(const char *path, const struct task_filter *filter, unsigned task_flags,
                          struct dataset *out, struct err *err);
/* Apply a filter to a resolved dataset in place. */
int dataset_filter(struct dataset *ds, const struct task_filter *filter, struct err *err);
void dataset_release(struct dataset *ds);

/* sha256 over the whole task directory, identical across runs and machines:
 * for every regular file and symlink (directories only through their
 * contents), sorted by relative path bytewise, the record
 *   TYPE ' ' HEX(sha256(content or link target)) ' ' RELPATH '\0'
 * where TYPE is 'f' (file), 'x' (file with the owner execute bit) or 'l'
 * (symlink, never followed), after the header "rollout-task-checksum-v1\0".
 * mtimes, owners, other permission bits and directory order do not count.
 * Other file types (fifos, sockets, devices) are an error. */
int task_checksum(const char *dir, char out[SHA256_HEX_LEN + 1], struct err *err);

#endif
