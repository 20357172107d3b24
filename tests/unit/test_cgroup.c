/* Unit tests for the sandbox's cgroup file formats: v1 ("hybrid" as on the build
 * machines) and v2 (unified), parsed from captured text, plus the layout this
 * machine actually has. */
#include "harness.h"
#include "providers/sandbox/cgroup.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"

#include <sys/statfs.h>
#include <unistd.h>

#define CGROUP2_MAGIC 0x63677270UL
#define TMPFS_MAGIC 0x01021994UL
#define EXT4_MAGIC 0xEF53UL

/* /proc/self/cgroup of a process on a v1 "hybrid" host (the build machines). */
static const char hybrid_self[] = "9:name=systemd:/\n"
                                  "8:pids:/\n"
                                  "7:blkio:/\n"
                                  "6:freezer:/\n"
                                  "5:devices:/\n"
                                  "4:memory:/process_api/6ab6969a95eb\n"
                                  "3:cpuset:/\n"
                                  "2:cpuacct:/\n"
                                  "1:cpu:/\n"
                                  "0::/\n";

/* A systemd v1 host where cpu and cpuacct share a hierarchy. */
static const char legacy_self[] = "11:cpu,cpuacct:/user.slice\n"
                                  "5:memory:/user.slice/user-1000.slice/session-2.scope\n"
                                  "1:name=systemd:/user.slice/user-1000.slice/session-2.scope\n";

/* A pure v2 host. */
static const char unified_self[] = "0::/user.slice/user-1000.slice/user@1000.service/app.slice\n";

TEST(cgroup_mode_from_statfs_magics)
{
	bool hybrid;

	CHECK_INT(cg_mode_from_fs(CGROUP2_MAGIC, 0, &hybrid), CG_V2);
	CHECK(!hybrid);
	CHECK_INT(cg_mode_from_fs(TMPFS_MAGIC, CGROUP2_MAGIC, &hybrid), CG_V1);
	CHECK(hybrid); /* v1 plus a cgroup2 mount: used as v1, never refused */
	CHECK_INT(cg_mode_from_fs(TMPFS_MAGIC, 0, &hybrid), CG_V1);
	CHECK(!hybrid);
	CHECK_INT(cg_mode_from_fs(EXT4_MAGIC, 0, &hybrid), CG_NONE);
}

TEST(cgroup_proc_self_v1_hybrid)
{
	_cleanup_free_ char *mem = cg_proc_self_path(hybrid_self, "memory");
	_cleanup_free_ char *cpu = cg_proc_self_path(hybrid_self, "cpu");
	_cleanup_free_ char *pids = cg_proc_self_path(hybrid_self, "pids");
	_cleanup_free_ char *v2 = cg_proc_self_path(hybrid_self, "");
	_cleanup_free_ char *none = cg_proc_self_path(hybrid_self, "hugetlb");

	CHECK_STR(mem, "/process_api/6ab6969a95eb");
	CHECK_STR(cpu, "/");
	CHECK_STR(pids, "/");
	CHECK_STR(v2, "/");
	CHECK(none == NULL);
}

TEST(cgroup_proc_self_v1_combined_controllers_any_order)
{
	_cleanup_free_ char *a = cg_proc_self_path(legacy_self, "cpu,cpuacct");
	_cleanup_free_ char *b = cg_proc_self_path(legacy_self, "cpuacct,cpu");
	_cleanup_free_ char *c = cg_proc_self_path(legacy_self, "cpu");
	_cleanup_free_ char *d = cg_proc_self_path(legacy_self, "name=systemd");

	CHECK_STR(a, "/user.slice");
	CHECK_STR(b, "/user.slice");
	CHECK(c == NULL); /* "cpu" alone is not that hierarchy */
	CHECK_STR(d, "/user.slice/user-1000.slice/session-2.scope");
}

TEST(cgroup_proc_self_v2)
{
	_cleanup_free_ char *p = cg_proc_self_path(unified_self, "");

	CHECK_STR(p, "/user.slice/user-1000.slice/user@1000.service/app.slice");
	CHECK(cg_proc_self_path(unified_self, "memory") == NULL);
}

TEST(cgroup_mountinfo_v1_and_v2)
{
	static const char mi[] =
	    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup "
	    "rw,xattr,release_agent=/x,name=systemd\n"
	    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
	    "50 31 0:40 /docker/abc /mnt/with\\040space rw shared:5 master:1 - cgroup cgroup "
	    "rw,cpuacct,cpu\n"
	    "60 27 254:0 / / rw,relatime - ext4 /dev/vda rw\n";
	struct cg_mount m[8];
	int n = cg_parse_mountinfo(mi, m, 8);

	REQUIRE(n == 5);
	CHECK(!m[0].v2);
	CHECK_STR(m[0].mountpoint, "/sys/fs/cgroup/cpu");
	CHECK_STR(m[0].controllers, "cpu");
	CHECK_STR(m[1].controllers, "memory");
	CHECK_STR(m[2].controllers, "name=systemd");
	CHECK(m[3].v2);
	CHECK_STR(m[3].mountpoint, "/sys/fs/cgroup/unified");
	CHECK_STR(m[3].controllers, "");
	/* optional fields before "-", an escaped space, a non-/ root */
	CHECK_STR(m[4].mountpoint, "/mnt/with space");
	CHECK_STR(m[4].root, "/docker/abc");
	CHECK(cg_same_controllers(m[4].controllers, "cpu,cpuacct"));
	for (int i = 0; i < n; i++)
		cg_mount_free(&m[i]);
}

TEST(cgroup_keyed_values_v1_oom_control_and_v2_memory_events)
{
	static const char oom_control[] = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
	static const char events[] =
	    "low 0\nhigh 12\nmax 40\noom 2\noom_kill 1\noom_group_kill 0\n";
	static const char cg_events[] = "populated 0\nfrozen 1\n";

	CHECK_INT(cg_keyed_value(oom_control, "oom_kill"), 3);
	CHECK_INT(cg_keyed_value(oom_control, "under_oom"), 0);
	CHECK_INT(cg_keyed_value(events, "oom_kill"), 1);
	CHECK_INT(cg_keyed_value(events, "oom"), 2); /* not confused with oom_kill */
	CHECK_INT(cg_keyed_value(events, "max"), 40);
	CHECK_INT(cg_keyed_value(cg_events, "populated"), 0);
	CHECK_INT(cg_keyed_value(cg_events, "frozen"), 1);
	CHECK_INT(cg_keyed_value(events, "oom_kill_disable"), -1);
}

TEST(cgroup_v2_controller_lists)
{
	static const char controllers[] = "cpuset cpu io memory hugetlb pids rdma misc\n";

	CHECK(cg_list_has(controllers, "memory"));
	CHECK(cg_list_has(controllers, "pids"));
	CHECK(cg_list_has(controllers, "cpu"));
	CHECK(!cg_list_has(controllers, "cpuacct"));
	CHECK(!cg_list_has(controllers, "mem"));
	CHECK(!cg_list_has("", "cpu"));
	CHECK(cg_list_has("hugetlb\n", "hugetlb"));
}

TEST(cgroup_controller_sets)
{
	CHECK(cg_same_controllers("cpu,cpuacct", "cpuacct,cpu"));
	CHECK(!cg_same_controllers("cpu", "cpu,cpuacct"));
	CHECK(cg_has_controller("cpu,cpuacct", "cpu"));
	CHECK(cg_has_controller("cpu,cpuacct", "cpuacct"));
	CHECK(!cg_has_controller("cpuacct", "cpu"));
	CHECK(!cg_has_controller("name=systemd", "name"));
}

TEST(cgroup_cpu_limits_formats)
{
	char buf[64];

	cg_format_cpu_max(1.5, buf, sizeof(buf));
	CHECK_STR(buf, "150000 100000");
	cg_format_cpu_max(2, buf, sizeof(buf));
	CHECK_STR(buf, "200000 100000");
	cg_format_cpu_max(0, buf, sizeof(buf));
	CHECK_STR(buf, "max 100000");
	cg_format_cpu_max(0.001, buf, sizeof(buf)); /* the kernel's minimum is 1 ms */
	CHECK_STR(buf, "1000 100000");
	CHECK_INT(cg_cpu_quota(0.25), 25000);
	CHECK_INT(cg_cpu_quota(0), -1);
	CHECK_INT(cg_cpu_quota(-1), -1);
}

TEST(cgroup_procs_parsing)
{
	pid_t p[4];

	CHECK_INT(cg_parse_pids("12\n345\n6\n", p, 4), 3);
	CHECK_INT(p[0], 12);
	CHECK_INT(p[1], 345);
	CHECK_INT(p[2], 6);
	CHECK_INT(cg_parse_pids("", p, 4), 0);
	CHECK_INT(cg_parse_pids("1\n2\n3\n4\n5\n", p, 4), 4);
}

/* The layout of this machine: v1 (hybrid or legacy) is used, never refused. */
TEST(cgroup_host_layout_detected)
{
	struct statfs st;
	const struct cg_host *h = cg_host_get();

	if (statfs("/sys/fs/cgroup", &st) < 0)
		SKIP("no /sys/fs/cgroup");
	if ((unsigned long)st.f_type == CGROUP2_MAGIC) {
		CHECK_INT(h->mode == CG_NONE ? CG_V2 : h->mode, CG_V2);
		return;
	}
	if ((unsigned long)st.f_type != TMPFS_MAGIC)
		SKIP("no cgroup filesystem");
	if (geteuid() != 0) {
		CHECK_INT(h->mode, CG_NONE); /* v1 is never delegated */
		CHECK(h->why_none != NULL);
		return;
	}
	CHECK_INT(h->mode, CG_V1);
	for (int i = 0; i < h->n; i++) {
		CHECK(h->h[i].own[0] == '/');
		CHECK(strncmp(h->h[i].own, h->h[i].mount, strlen(h->h[i].mount)) == 0);
	}
	CHECK(h->n >= 3);
}

static const struct cg_write *find_write(const struct cg_write *w, int n, const char *file)
{
	for (int i = 0; i < n; i++)
		if (strcmp(w[i].file, file) == 0)
			return &w[i];
	return NULL;
}

TEST(cgroup_v2_limit_files)
{
	struct cg_limits lim = {.cpus = 1.5, .memory = 200LL << 20, .pids = 100};
	struct cg_write w[16];
	int n = cg_limit_writes(CG_V2, "", &lim, w, 16);

	REQUIRE(n == 4);
	CHECK_STR(w[0].file, "memory.max");
	CHECK_STR(w[0].value, "209715200");
	CHECK_STR(w[1].file, "memory.swap.max");
	CHECK_STR(w[1].value, "0");
	CHECK(w[1].optional);
	CHECK_STR(w[2].file, "cpu.max");
	CHECK_STR(w[2].value, "150000 100000");
	CHECK_STR(w[3].file, "pids.max");
	CHECK_STR(w[3].value, "100");
	/* no limits, no writes */
	lim = (struct cg_limits){0};
	CHECK_INT(cg_limit_writes(CG_V2, "", &lim, w, 16), 0);
}

TEST(cgroup_v1_limit_files_per_hierarchy)
{
	struct cg_limits lim = {
	    .cpus = 2, .memory = 64LL << 20, .pids = 64, .restrict_devices = true};
	struct cg_write w[32];
	const struct cg_write *x;
	int n;

	n = cg_limit_writes(CG_V1, "memory", &lim, w, 32);
	REQUIRE(n == 2);
	CHECK_STR(w[0].file, "memory.limit_in_bytes"); /* before memsw, which must be >= it */
	CHECK_STR(w[0].value, "67108864");
	CHECK_STR(w[1].file, "memory.memsw.limit_in_bytes");
	CHECK(w[1].optional);
	n = cg_limit_writes(CG_V1, "cpu,cpuacct", &lim, w, 32);
	REQUIRE(n == 1);
	CHECK_STR(w[0].file, "cpu.cfs_quota_us");
	CHECK_STR(w[0].value, "200000");
	n = cg_limit_writes(CG_V1, "pids", &lim, w, 32);
	REQUIRE(n == 1);
	CHECK_STR(w[0].value, "64");
	n = cg_limit_writes(CG_V1, "devices", &lim, w, 32);
	REQUIRE(n > 5);
	CHECK_STR(w[0].file, "devices.deny");
	CHECK_STR(w[0].value, "a");
	x = find_write(w + 1, n - 1, "devices.allow");
	REQUIRE(x);
	CHECK_STR(x->value, "c 1:3 rwm"); /* /dev/null */
	for (int i = 1; i < n; i++)
		CHECK(strncmp(w[i].value, "b ", 2) != 0); /* no block device, not even mknod */
	CHECK_INT(cg_limit_writes(CG_V1, "freezer", &lim, w, 32), 0);
}

TEST(cgroup_v2_subtree_control_to_enable)
{
	char out[128];

	CHECK_INT(cg_v2_controllers_to_enable("cpuset cpu io memory pids\n", "", out, sizeof(out)),
	          3);
	CHECK_STR(out, "+memory +pids +cpu");
	CHECK_INT(
	    cg_v2_controllers_to_enable("cpu io memory pids\n", "memory pids\n", out, sizeof(out)),
	    1);
	CHECK_STR(out, "+cpu");
	/* only what the parent offers */
	CHECK_INT(cg_v2_controllers_to_enable("memory pids\n", "", out, sizeof(out)), 2);
	CHECK_STR(out, "+memory +pids");
	CHECK_INT(
	    cg_v2_controllers_to_enable("memory pids cpu", "cpu memory pids", out, sizeof(out)), 0);
	CHECK_STR(out, "");
}

/* A rollout started from the leaf an earlier one moved its cgroup's processes
 * into makes its environments beside that leaf, not in a new leaf below it. */
TEST(cgroup_v2_own_base_leaves_the_supervisor_leaf)
{
	char a[] = "/sys/fs/cgroup/system.slice/ci.service/rollout.supervisor";
	char b[] = "/sys/fs/cgroup/system.slice/ci.service";
	char c[] = "/sys/fs/cgroup/x/rollout.supervisor2";

	cg_v2_own_base(a);
	CHECK_STR(a, "/sys/fs/cgroup/system.slice/ci.service");
	cg_v2_own_base(b);
	CHECK_STR(b, "/sys/fs/cgroup/system.slice/ci.service");
	cg_v2_own_base(c);
	CHECK_STR(c, "/sys/fs/cgroup/x/rollout.supervisor2");
}
