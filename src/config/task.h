/* Harbor task directories: task.toml -> struct task_config (every field of the
 * classic schema with Harbor's defaults, plus the cheap newer ones), and the
 * task directory itself (instruction, environment/, solution/, tests/). */
#ifndef ROLLOUT_CONFIG_TASK_H
#define ROLLOUT_CONFIG_TASK_H

#include "config/bind.h"
#include "config/diag.h"
#include "rollout/strbuf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

struct err;

struct task_author {
	char *name;
	char *email; /* NULL when not given */
};

struct task_mcp_server {
	char *name;
	char *transport; /* "sse" (default), "streamable-http" or "stdio" */
	char *url;       /* sse and streamable-http */
	char *command;   /* stdio */
	struct strv args;
};

struct task_healthcheck {
	bool set; /* [environment.healthcheck] present */
	char *command;
	double interval_sec;       /* 5 */
	double timeout_sec;        /* 30 */
	double start_period_sec;   /* 0 */
	double start_interval_sec; /* 5 */
	int retries;               /* 3 */
};

struct task_config {
	char *schema_version; /* "version" or [new] "schema_version"; default "1.0" */
	char *source;         /* NULL when not given */
	cJSON *metadata;      /* [metadata] as generic JSON; {} when absent */
	struct artifact_spec *artifacts;
	size_t n_artifacts;

	/* [new] [task] package information */
	struct {
		bool set;
		char *name; /* "org/name", required when [task] exists */
		char *version;
		char *description; /* "" */
		struct task_author *authors;
		size_t n_authors;
		struct strv keywords;
	} package;

	struct {
		double timeout_sec;  /* 600 */
		struct env_list env; /* ${VAR} templates resolved */
		char *user;          /* [new] NULL = image default; an integer is kept as text */
	} verifier;

	struct {
		double timeout_sec; /* 600 (classic) */
		char *user;
	} agent;

	struct {
		double build_timeout_sec; /* 600 */
		char *docker_image;       /* NULL: build environment/Dockerfile */
		int cpus;                 /* 1 */
		int memory_mb;            /* 2048; also from memory = "2G" */
		int storage_mb;           /* 10240; also from storage = "10G" */
		int gpus;                 /* 0 */
		bool has_gpu_types;
		struct strv gpu_types;
		bool allow_internet; /* true; [new] network_mode "no-network" sets false */
		struct task_mcp_server *mcp_servers;
		size_t n_mcp_servers;
		char *os;            /* [new] "linux" (default) or "windows" */
		struct env_list env; /* [new] templates resolved */
		char *workdir;       /* [new] NULL = image WORKDIR */
		struct task_healthcheck healthcheck;
	} environment;

	struct {
		struct env_list env; /* templates resolved */
	} solution;
};

/* Harbor's defaults. */
void task_config_init(struct task_config *cfg);
void task_config_release(struct task_config *cfg);
/* Bind a parsed task.toml onto cfg (initialized). Every problem goes to diags:
 * errors for wrong types and values, warnings for unknown keys. */
void task_config_bind(struct node *root, const char *file, struct task_config *cfg,
                      struct diags *diags);
/* Read and bind a task.toml. 0, or -1 when diags got an error. */
int task_config_load(const char *path, struct task_config *cfg, struct diags *diags);

/* "2G" -> 2048, "512M" -> 512, "1K" -> 0 (Harbor: G x 1024, M, K / 1024
 * truncated; case-insensitive; a decimal number is allowed). -1 when invalid. */
long task_parse_size_mb(const char *s);

/* Load flags. */
#define TASK_NO_VERIFY (1u << 0) /* verification disabled: tests/test.sh not required */

struct task {
	char *name; /* directory basename */
	char *dir;  /* as given */
	char *config_path;
	char *instruction_path;
	char *environment_dir;
	char *solution_dir;
	char *tests_dir;
	char *instruction; /* contents of instruction.md */
	struct task_config config;
};

/* Harbor's TaskPaths.is_valid: task.toml, environment/ and instruction.md
 * exist, and tests/test.sh unless TASK_NO_VERIFY. No parsing. */
bool task_dir_is_valid(const char *dir, unsigned flags);
/* Why dir is not a valid task ("no task.toml, tests/test.sh"), or NULL when it is.
 * Heap string. */
char *task_dir_problem(const char *dir, unsigned flags);
/* Does dir look like a task at all (any of task.toml, instruction.md,
 * environment/, tests/)? Used to tell broken tasks from unrelated dirs. */
bool task_dir_looks_like_task(const char *dir);

/* The task name: the directory's basename ("x/" and "." resolved). Heap string. */
char *task_dir_name(const char *dir);

/* Task files are never read through symbolic links: task_check refuses a task whose
 * task.toml, instruction.md, environment, tests or solution is a link (wherever it
 * points), or that holds a link anywhere whose target resolves out of the task
 * directory (absolute, or climbing above it through any chain of links). Links that
 * stay inside the task are fine; they are uploaded as links.
 *
 * task_open_dir opens the task's own directory entry `name` (one component:
 * "tests", "solution" or "environment") for an upload or a build, as
 * O_RDONLY | O_DIRECTORY | O_CLOEXEC, with no symbolic link on the way
 * (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS below the
 * task directory; O_NOFOLLOW where openat2 is unavailable). The task directory itself
 * is opened as given. Before returning it checks the tree below again, so a task
 * changed since it was loaded cannot smuggle a link out: the caller may copy what it
 * finds (links as links) without further checks. Returns the fd, or -1 with err
 * naming the task directory and the entry or link: ELOOP for a link refused, ENOENT
 * when the entry is missing, ENOTDIR when it is not a directory. The caller closes
 * the fd. */
int task_open_dir(const char *task_dir, const char *name, struct err *err);

/* Load a task. Warnings go to log_warn; every error is joined into err. */
int task_load(const char *dir, unsigned flags, struct task **out, struct err *err);
/* Check a task and collect every problem (errors and warnings) in diags;
 * *out (optional) receives the task when it is valid. -1 on any error. */
int task_check(const char *dir, unsigned flags, struct diags *diags, struct task **out);
void task_free(struct task *t);
/* Scope-bound task_free (NULL frees nothing). */
void cleanup_taskp(struct task **t);
#define _cleanup_task_ __attribute__((cleanup(cleanup_taskp)))

#endif
