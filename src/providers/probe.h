/* What this host lets rollout do: one probe per kernel feature a provider or
 * an isolation level needs (namespaces, overlayfs, procfs, seccomp, cgroups,
 * chroot, device nodes, a Docker daemon...), run once per process in
 * short-lived children so that nothing changes in rollout itself; which
 * providers and isolation levels can run here; and for each missing piece,
 * the fix. The levels are the LEVEL rows of include/rollout/provider_table.h
 * (provider_level_each); what each needs of the host is a property of its
 * provider_ops (.host_needs, a struct host_needs), so a new provider or level
 * declares its needs where it is defined, and only a new kind of host piece
 * is a new probe here. `rollout doctor` prints it (cli/doctor.c); the providers' prepare()
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

/* How much a level depends on a probe's piece: required, or only what it loses
 * without it (the probe's `without`); *_USER only when rollout runs as an
 * ordinary user. */
enum probe_need { NEED_NO = 0, NEED_REQ, NEED_REQ_USER, NEED_OPT, NEED_OPT_USER };

/* What one provider level needs of the host and how messages name it: the
 * .host_needs of its struct provider_ops. */
struct host_needs {
	const char *name;                /* `rollout doctor`'s row: "sandbox, chroot isolation" */
	const char *how;                 /* how to choose it: "--isolation chroot" */
	const char *refused;             /* "this host does not allow %s": "--isolation chroot" */
	const char *caveat;              /* after `how` where it is offered instead, or NULL */
	unsigned char need[PROBE_COUNT]; /* enum probe_need, by probe (NEED_NO unless set) */
};

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
 * forbids, what would work instead (the table's other levels) and how to get
 * the level. */
int probe_require(const struct host_needs *level, struct err *err);
/* The probe's name ("mount namespace"). */
const char *probe_name(enum probe_id id);
/* Whether level can run given hp (no probing): the pieces it needs that are
 * missing go to missing[] (at most PROBE_COUNT), the optional ones to degraded[]. */
bool probe_level_ok(const struct host_probe *hp, const struct host_needs *level,
                    enum probe_id *missing, int *n_missing, enum probe_id *degraded,
                    int *n_degraded);
/* Some level of the table can run given hp. */
bool probe_any_level_ok(const struct host_probe *hp);

/* `rollout doctor`: the table (probes, levels, fixes), or the same as JSON. */
void probe_print(const struct host_probe *hp, FILE *out);
cJSON *probe_json(const struct host_probe *hp);

#endif
