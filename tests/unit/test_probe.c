/* Unit tests for the host probe (providers/probe.h): which providers and
 * isolation levels can run given the probes' results, what the table and the
 * JSON say, and the probes themselves on this host. Also the provider table's
 * lookup by type and isolation level. */
#include "config/job_config.h"
#include "harness.h"
#include "providers/probe.h"
#include "providers/provider.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/json.h"
#include "rollout/provider_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The levels' needs, as the providers declare them. */
#define SANDBOX (provider_find("sandbox")->host_needs)
#define CHROOT (provider_find("sandbox-chroot")->host_needs)
#define DOCKER (provider_find("docker")->host_needs)

/* Every probe ok, as root on a full host. */
static void all_ok(struct host_probe *hp)
{
	memset(hp, 0, sizeof(*hp));
	for (int i = 0; i < PROBE_COUNT; i++)
		hp->r[i].state = PROBE_OK;
}

static bool lacks(const enum probe_id *ids, int n, enum probe_id id)
{
	for (int i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

TEST(probe_everything_ok_runs_everything)
{
	struct host_probe hp;
	enum probe_id m[PROBE_COUNT], d[PROBE_COUNT];
	int nm, nd;

	all_ok(&hp);
	for (size_t l = 0; provider_level_each(l); l++) {
		CHECK(probe_level_ok(&hp, provider_level_each(l)->host_needs, m, &nm, d, &nd));
		CHECK_INT(nm, 0);
		CHECK_INT(nd, 0);
	}
}

/* What Docker's defaults give root in a CI job's container. */
TEST(probe_a_ci_container_runs_only_chroot)
{
	static const enum probe_id denied[] = {PROBE_USERNS,  PROBE_MOUNTNS, PROBE_PIDNS,
	                                       PROBE_NETNS,   PROBE_IPCNS,   PROBE_UTSNS,
	                                       PROBE_CGROUPS, PROBE_QUOTA,   PROBE_DOCKER};
	struct host_probe hp;
	enum probe_id m[PROBE_COUNT], d[PROBE_COUNT];
	int nm, nd;

	all_ok(&hp);
	for (size_t i = 0; i < ARRAY_SIZE(denied); i++)
		hp.r[denied[i]].state = PROBE_MISSING;
	hp.r[PROBE_OVERLAY].state = hp.r[PROBE_PROCFS].state = PROBE_SKIPPED;
	CHECK(!probe_level_ok(&hp, SANDBOX, m, &nm, d, &nd));
	CHECK(lacks(m, nm, PROBE_MOUNTNS) && lacks(m, nm, PROBE_OVERLAY));
	CHECK(!lacks(m, nm, PROBE_USERNS)); /* root needs none */
	CHECK(probe_level_ok(&hp, CHROOT, m, &nm, d, &nd));
	CHECK(lacks(d, nd, PROBE_CGROUPS) && lacks(d, nd, PROBE_QUOTA));
	CHECK(!probe_level_ok(&hp, DOCKER, m, &nm, d, &nd));
	CHECK_INT(nm, 1);
	CHECK(m[0] == PROBE_DOCKER);
}

/* An ordinary user needs a user namespace for the sandbox and cannot chroot. */
TEST(probe_an_ordinary_user)
{
	struct host_probe hp;
	enum probe_id m[PROBE_COUNT], d[PROBE_COUNT];
	int nm, nd;

	all_ok(&hp);
	hp.uid = 1000;
	hp.r[PROBE_CHROOT].state = PROBE_MISSING;
	hp.r[PROBE_SUBIDS].state = PROBE_MISSING;
	CHECK(probe_level_ok(&hp, SANDBOX, m, &nm, d, &nd));
	CHECK(lacks(d, nd, PROBE_SUBIDS));
	CHECK(!probe_level_ok(&hp, CHROOT, m, &nm, d, &nd));
	hp.r[PROBE_USERNS].state = PROBE_MISSING;
	CHECK(!probe_level_ok(&hp, SANDBOX, m, &nm, d, &nd));
	CHECK(lacks(m, nm, PROBE_USERNS));
}

TEST(probe_table_and_json_name_what_is_missing_and_the_fix)
{
	struct host_probe hp;
	_cleanup_json_ cJSON *j = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	all_ok(&hp);
	hp.r[PROBE_MOUNTNS].state = PROBE_MISSING;
	snprintf(hp.r[PROBE_MOUNTNS].detail, sizeof(hp.r[0].detail), "unshare: EPERM");
	probe_print(&hp, f);
	fclose(f);
	CHECK_CONTAINS(text, "mount namespace   missing  unshare: EPERM");
	CHECK_CONTAINS(text, "sandbox                    no   lacks mount namespace");
	CHECK_CONTAINS(text, "sandbox, chroot isolation  yes  --isolation chroot");
	CHECK_CONTAINS(text, "FIXES\nmount namespace: namespaces need CAP_SYS_ADMIN");
	free(text);
	j = probe_json(&hp);
	CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "probes")), PROBE_COUNT);
	CHECK(json_get_str(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "probes"), PROBE_MOUNTNS),
	                   "fix") != NULL);
	CHECK(
	    !json_get_bool(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "levels"), 0), "runs", true));
}

/* The levels are the provider table's: each LEVEL row says what it needs of the
 * host and how messages name it; doctor lists them in table order. */
TEST(probe_levels_are_the_provider_tables)
{
	static const char *const names[] = {"sandbox", "sandbox, chroot isolation", "docker"};
	size_t n = 0;

	for (const struct provider_ops *p; (p = provider_level_each(n)); n++) {
		REQUIRE(p->host_needs != NULL);
		CHECK(p->host_needs->how && p->host_needs->refused);
		if (n < ARRAY_SIZE(names))
			CHECK_STR(p->host_needs->name, names[n]);
	}
	CHECK_INT((int)n, 3);
	CHECK(provider_find("sandbox-copied-logs")->host_needs == SANDBOX);
	CHECK(DOCKER->need[PROBE_DOCKER] == NEED_REQ && SANDBOX->need[PROBE_DOCKER] == NEED_NO);
}

/* This host (the build machine runs as root with every namespace): the
 * probes find it so, and the preflight passes for both sandbox levels. */
TEST(probe_this_host)
{
	const struct host_probe *hp;
	struct err err = {0};

	if (geteuid() != 0)
		SKIP("the build machine's probes are for root");
	setenv("ROLLOUT_HOME", test_tmpdir(), 1); /* the probes' directory goes there */
	hp = host_probe(false);
	CHECK_CONTAINS(hp->where, test_tmpdir());
	CHECK(hp->r[PROBE_MOUNTNS].state == PROBE_OK);
	CHECK(hp->r[PROBE_OVERLAY].state == PROBE_OK);
	CHECK(hp->r[PROBE_CHROOT].state == PROBE_OK);
	CHECK(hp->r[PROBE_DOCKER].state == PROBE_SKIPPED); /* not asked for */
	CHECK(probe_require(SANDBOX, &err) == 0);
	CHECK(probe_require(CHROOT, &err) == 0);
	CHECK(host_probe(false) == hp); /* once per process */
}

TEST(provider_lookup_by_type_and_isolation)
{
	struct err err = {0};

	CHECK(provider_for("sandbox", "full", &err) == provider_find("sandbox"));
	CHECK(provider_for("sandbox", "chroot", &err) == provider_find("sandbox-chroot"));
	CHECK(!provider_find("sandbox-chroot")->logs_mounted);
	CHECK(provider_for("docker", "chroot", &err) == NULL);
	CHECK_STR(err.msg, "environment type docker has no isolation level chroot (it has: full)");
	CHECK(provider_for("podman", "full", &err) == NULL);
}

/* One table (include/rollout/provider_table.h): config's types and the
 * providers' agree, and the commands' lists and messages come from it. */
TEST(provider_table_is_the_one_list)
{
	struct err err = {0};
	size_t n = 0;

	for (; provider_each(n); n++) {
		CHECK_STR(provider_each(n)->name, job_env_type_names[n]);
		CHECK(provider_for(job_env_type_names[n], "full", &err) == provider_each(n));
	}
	CHECK_INT((int)n, ENV_TYPE_COUNT);
	CHECK(job_env_type_names[n] == NULL);
	CHECK_STR(provider_names_or(), "sandbox or docker");
	CHECK_STR(ROLLOUT_PROVIDER_NAMES_BAR, "sandbox|docker");
	CHECK(provider_unknown("podman", &err) < 0);
	CHECK_STR(err.msg, "unknown provider 'podman' (sandbox or docker)");
	/* Policies are properties. */
	CHECK(provider_find("docker")->service && provider_find("docker")->gc_must_succeed);
	CHECK(!provider_find("sandbox")->service && !provider_find("sandbox")->gc_must_succeed);
	/* The test-only provider: found by name, never listed, selected for the
	 * sandbox by ROLLOUT_TEST_LOGS_COPIED=1. */
	CHECK(!provider_find("sandbox-copied-logs")->logs_mounted);
	for (size_t i = 0; i < n; i++)
		CHECK(provider_each(i) != provider_find("sandbox-copied-logs"));
	setenv("ROLLOUT_TEST_LOGS_COPIED", "1", 1);
	CHECK(provider_for("sandbox", "full", &err) == provider_find("sandbox-copied-logs"));
	CHECK(provider_for("docker", "full", &err) == provider_find("docker"));
	unsetenv("ROLLOUT_TEST_LOGS_COPIED");
	CHECK(provider_for("sandbox", "full", &err) == provider_find("sandbox"));
}
