/* What this host lets rollout do: one probe per kernel feature a provider or
 * an isolation level needs (namespaces, overlayfs, procfs, seccomp, cgroups,
 * chroot, device nodes, a Docker daemon...), run once per process in
 * short-lived children so that nothing changes in rollout itself; which
 * providers and isolation levels can run here; and for each missing piece,
 * the fix. `rollout doctor` prints it (cli/doctor.c); the providers' prepare()
 * is the preflight that refuses to start a job the host cannot run, once,
 * before any trial (docs/SANDBOX.md, "Isolation levels"). */
#ifndef ROLLOUT_PROVIDERS_PROBE_H
#define ROLLOUT_PROVIDERS_PROBE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>

struct err;

/* One row per probe (the table in probe.c, in this order). */
enum probe_id {
	PROBE_USERNS,
	PROBE_MOUNTNS,
	PROBE_PIDNS,
	PROBE_NETNS,
	PROBE_IPCNS,
	PROBE_UTSNS,
	PROBE_OVERLAY,
	PROBE_PROCFS,
	PROBE_SECCOMP,
	PROBE_CGROUPS,
	PROBE_SUBIDS,
	PROBE_QUOTA,
	PROBE_CHROOT,
	PROBE_SETID,
	PROBE_MKNOD,
	PROBE_DOCKER,
	PROBE_COUNT
};

enum probe_state {
	PROBE_SKIPPED, /* not tried: what it depends on is missing, or not asked for */
	PROBE_OK,
	PROBE_MISSING,
};

struct probe_result {
	enum probe_state state;
	char detail[240]; /* what was seen: the error, a version, why it was skipped */
};

/* What can run here: the sandbox with full isolation (the default), the
 * sandbox at --isolation chroot, and the docker provider. */
enum probe_level { LEVEL_SANDBOX, LEVEL_CHROOT, LEVEL_DOCKER, LEVEL_COUNT };

struct host_probe {
	struct probe_result r[PROBE_COUNT];
	unsigned uid;          /* effective */
	const char *container; /* "docker", "podman", "kubernetes"; NULL when none was seen */
	char where[512];       /* the directory the filesystem probes ran in */
	double ms;             /* what the probes took (wall clock), the daemon's ping excepted */
	double docker_ms;
	bool docker_probed;
};

/* The probes, run on first use and kept for the process (thread safe).
 * with_docker adds the daemon's /_ping (also once). */
const struct host_probe *host_probe(bool with_docker);

/* A level can run on this host: 0, or -1 with err saying what the host
 * forbids, what would work instead and how to get the level. */
int probe_require(enum probe_level level, struct err *err);
/* The probe's name ("mount namespace"), the level's ("sandbox"). */
const char *probe_name(enum probe_id id);
const char *probe_level_name(enum probe_level level);
/* Whether level can run given hp (no probing): the pieces it needs that are
 * missing go to missing[] (at most PROBE_COUNT), the optional ones to degraded[]. */
bool probe_level_ok(const struct host_probe *hp, enum probe_level level, enum probe_id *missing,
                    int *n_missing, enum probe_id *degraded, int *n_degraded);

/* `rollout doctor`: the table (probes, levels, fixes), or the same as JSON. */
void probe_print(const struct host_probe *hp, FILE *out);
cJSON *probe_json(const struct host_probe *hp);

#endif
