/* Harbor's registry.json: named, versioned lists of tasks (git URL + commit +
 * path, or a local path) with their metrics. Loading with FILE:LINE errors,
 * NAME[@VERSION] resolution with Harbor's version rules, and the small PEP 440
 * comparator those rules need. Fetching the tasks is core/fetch.h. */
#ifndef ROLLOUT_CONFIG_REGISTRY_H
#define ROLLOUT_CONFIG_REGISTRY_H

#include "config/diag.h"
#include "config/job_config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;

struct registry_task {
	/* The task's name: registry `name`, else the basename of path. Filters
	 * match it, and a fetched task's directory is named after it. */
	char *name;
	char *git_url;       /* NULL: a local task */
	char *git_commit_id; /* NULL: the repository's HEAD; else 40 or 64 lowercase hex digits */
	/* git task: the directory inside the repository (clean, relative).
	 * Local task: the directory on this machine, a relative path already
	 * joined to the registry file's directory. */
	char *path;
	int line;
};

struct registry_dataset {
	char *name;
	char *version;
	char *description; /* "" when absent */
	struct registry_task *tasks;
	size_t n_tasks;
	struct metric_config *metrics; /* type is one of mean, sum, min, max, uv-script */
	size_t n_metrics;
	int line;
};

struct registry {
	char *source;                      /* the file or URL it was read from, for messages */
	struct registry_dataset *datasets; /* in file order */
	size_t n_datasets;
};

/* Parse registry.json text. base_dir is where relative local task paths
 * resolve (the registry file's directory); NULL refuses relative local paths
 * (a registry read over http). Every problem goes to diags as
 * "NAME:LINE: key '[i].tasks[j].path': ..."; returns -1 when one is an error. */
int registry_parse(const char *text, size_t len, const char *name, const char *base_dir,
                   struct registry *out, struct diags *diags);
/* Read a registry.json file. */
int registry_load_file_diags(const char *path, struct registry *out, struct diags *diags);
int registry_load_file(const char *path, struct registry *out, struct err *err);
/* Read the registry at a URL: file:///abs/path, http://host[:port]/path or
 * https:// (TLS with the system's CAs, SSL_CERT_FILE, SSL_CERT_DIR). */
int registry_load_url(const char *url, struct registry *out, struct err *err);
/* The registry of a dataset entry or of the command line: exactly one of
 * path and url; neither is an error that says how to get one (rollout
 * cannot query Harbor's hosted registry). */
int registry_open(const char *path, const char *url, struct registry *out, struct err *err);
void registry_release(struct registry *r);

/* A git commit id as the registry stores it: 40 (SHA-1) or 64 (SHA-256)
 * hex digits, lowercased in place. false when s is anything else (a short
 * hash, a branch or tag name). */
bool registry_commit_id_normalize(char *s);

/* Split "NAME@VERSION" (version NULL when there is no '@'). Heap strings. */
int registry_parse_ref(const char *ref, char **name, char **version, struct err *err);
/* The dataset NAME at VERSION, or, when version is NULL, Harbor's choice:
 * "head" if present, else the highest valid PEP 440 version, else the
 * bytewise last version string. Errors list what the registry has. */
const struct registry_dataset *registry_find(const struct registry *r, const char *name,
                                             const char *version, struct err *err);

/* PEP 440 versions: [vV][N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local], with
 * PEP 440's alternative spellings (alpha, beta, c, pre, preview, rev, r, "-N"
 * post releases, '-' '_' '.' separators, implicit 0 numbers, any case).
 * Ordering: epoch, release (trailing zeros ignored), then
 * X.devN < X.aN < X.bN < X.rcN < X < X.postN, dev releases of a pre or post
 * release before it, and a local label after the same version without one. */
#define PEP440_MAX_RELEASE 16
struct pep440 {
	uint64_t epoch;
	uint64_t release[PEP440_MAX_RELEASE];
	size_t n_release;
	int pre_kind; /* -1 none, 0 a, 1 b, 2 rc */
	uint64_t pre;
	bool has_post;
	uint64_t post;
	bool has_dev;
	uint64_t dev;
	char local[64]; /* normalized: lowercase, '.'-separated; "" when none */
};

/* false when s is not a PEP 440 version (or has numbers past 2^64, more than
 * PEP440_MAX_RELEASE release parts, or a longer local label). */
bool pep440_parse(const char *s, struct pep440 *out);
/* <0, 0, >0 like strcmp. */
int pep440_compare(const struct pep440 *a, const struct pep440 *b);

#endif
