/* Unit tests for the sandbox's user resolution: passwd/group parsing and lookups
 * through a root fd (never the host's files). */
#include "harness.h"
#include "providers/sandbox/sandbox.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n"
                             "# a comment line\n"
                             "broken line without fields\n"
                             "app:x:1000:1000:App User:/home/app:/bin/sh\n"
                             "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                             "nohome:x:1001:1001:::/bin/sh";

static const char group[] = "root:x:0:\n"
                            "wheel:x:10:root,app\n"
                            "staff:x:50:\n"
                            "docker:x:999:app\n"
                            "app:x:1000:app\n"
                            "nogroup:x:65534:\n";

TEST(users_passwd_by_name_and_uid)
{
	struct sandbox_user u;

	REQUIRE(users_lookup_passwd(passwd, "app", 0, true, &u) == 0);
	CHECK_INT(u.uid, 1000);
	CHECK_INT(u.gid, 1000);
	CHECK_STR(u.home, "/home/app");
	REQUIRE(users_lookup_passwd(passwd, NULL, 65534, false, &u) == 0);
	CHECK_STR(u.home, "/nonexistent");
	REQUIRE(users_lookup_passwd(passwd, "nohome", 0, true, &u) == 0);
	CHECK_STR(u.home, "/"); /* empty home field, last line without newline */
	CHECK(users_lookup_passwd(passwd, "ghost", 0, true, &u) < 0);
	CHECK(users_lookup_passwd(passwd, NULL, 4242, false, &u) < 0);
	CHECK(users_lookup_passwd("", "root", 0, true, &u) < 0);
}

TEST(users_group_lookup_and_supplementary)
{
	struct sandbox_user u = {0};
	gid_t g;

	REQUIRE(users_lookup_group(group, "staff", &g) == 0);
	CHECK_INT(g, 50);
	CHECK(users_lookup_group(group, "nope", &g) < 0);
	users_supplementary(group, "app", 1000, &u);
	/* wheel and docker; its primary group is not repeated */
	CHECK_INT(u.ngroups, 2);
	CHECK_INT(u.groups[0], 10);
	CHECK_INT(u.groups[1], 999);
	users_supplementary(group, "nobody", 65534, &u);
	CHECK_INT(u.ngroups, 0);
}

static int make_root(void)
{
	const char *root = test_tmpdir();
	_cleanup_free_ char *etc = path_join(root, "etc");
	_cleanup_free_ char *p = path_join(etc, "passwd");
	_cleanup_free_ char *g = path_join(etc, "group");

	mkdir(etc, 0755);
	write_file(p, passwd, strlen(passwd), 0644, NULL);
	write_file(g, group, strlen(group), 0644, NULL);
	return open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

TEST(users_resolve_specs)
{
	_cleanup_close_ int root = make_root();
	struct sandbox_user u;
	struct err err = {0};

	REQUIRE(root >= 0);
	REQUIRE(users_resolve(root, NULL, &u, &err) == 0);
	CHECK_INT(u.uid, 0);
	CHECK_INT(u.gid, 0);
	CHECK_STR(u.home, "/root");
	CHECK_INT(u.ngroups, 1); /* root is in wheel */
	REQUIRE(users_resolve(root, "nobody", &u, &err) == 0);
	CHECK_INT(u.uid, 65534);
	CHECK_INT(u.gid, 65534);
	REQUIRE(users_resolve(root, "1234:4321", &u, &err) == 0);
	CHECK_INT(u.uid, 1234);
	CHECK_INT(u.gid, 4321);
	CHECK_STR(u.home, "/");
	CHECK_INT(u.ngroups, 0);
	REQUIRE(users_resolve(root, "1000", &u, &err) == 0);
	CHECK_INT(u.gid, 1000); /* from passwd */
	CHECK_INT(u.ngroups, 2);
	REQUIRE(users_resolve(root, "app:staff", &u, &err) == 0);
	CHECK_INT(u.uid, 1000);
	CHECK_INT(u.gid, 50);
	CHECK_INT(u.ngroups, 0); /* an explicit group replaces the supplementary ones */
	REQUIRE(users_resolve(root, "4242", &u, &err) == 0);
	CHECK_INT(u.uid, 4242);
	CHECK_INT(u.gid, 0); /* unknown numeric uid: gid 0 like runc */
	CHECK(users_resolve(root, "ghost", &u, &err) < 0);
	CHECK_CONTAINS(err.msg, "ghost");
	CHECK(users_resolve(root, "app:ghosts", &u, &err) < 0);
	CHECK_CONTAINS(err.msg, "ghosts");
}

/* An image whose /etc/passwd is a symlink to an absolute path must be read
 * inside its root, not on the host. */
TEST(users_resolve_stays_inside_the_root)
{
	const char *root = test_tmpdir();
	_cleanup_free_ char *etc = path_join(root, "etc");
	_cleanup_free_ char *real = path_join(root, "real");
	_cleanup_free_ char *real_passwd = path_join(real, "passwd");
	_cleanup_free_ char *etc_passwd = path_join(etc, "passwd");
	_cleanup_close_ int fd = -1;
	struct sandbox_user u;
	struct err err = {0};

	mkdir(etc, 0755);
	mkdir(real, 0755);
	write_file(real_passwd, "inside:x:777:777::/in:/bin/sh\n", 30, 0644, NULL);
	REQUIRE(symlink("/real/passwd", etc_passwd) == 0);
	fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	REQUIRE(users_resolve(fd, "inside", &u, &err) == 0);
	CHECK_INT(u.uid, 777);
	/* the host has a root user; the image does not */
	REQUIRE(users_resolve(fd, "0", &u, &err) == 0);
	CHECK_STR(u.home, "/");
	unlink(etc_passwd);
	REQUIRE(symlink("../../../../../../etc/passwd", etc_passwd) == 0);
	CHECK(users_resolve(fd, "root", &u, &err) < 0);
}

TEST(subordinate_id_ranges)
{
	static const char subuid[] = "# comment\n"
	                             "alice:100000:65536\n"
	                             "1001:165536:65536\n"
	                             "bob:notanumber:10\n"
	                             "carol:231072:0\n";
	struct subid_range r;

	REQUIRE(subid_parse(subuid, 1000, "alice", &r) == 0);
	CHECK_INT(r.start, 100000);
	CHECK_INT(r.count, 65536);
	REQUIRE(subid_parse(subuid, 1001, "dave", &r) == 0); /* by uid */
	CHECK_INT(r.start, 165536);
	CHECK(subid_parse(subuid, 1002, "bob", &r) < 0);   /* malformed */
	CHECK(subid_parse(subuid, 1003, "carol", &r) < 0); /* empty range */
	CHECK(subid_parse(subuid, 1004, NULL, &r) < 0);
	CHECK(subid_parse("", 0, "root", &r) < 0);
}

/* userns_rm_rf: a child (util/proc, a function run in it) enters a user
 * namespace, waits for its id maps, removes the tree; an error ends it cleanly. */
TEST(userns_rm_rf_removes_a_tree)
{
	struct err err = {0};
	const char *top = tdir("tree/a/b");

	REQUIRE(write_file(tfmt("%s/f", top), "x", 1, 0600, &err) == 0);
	if (userns_rm_rf(tpath("tree"), &err) < 0) {
		if (strstr(err.msg, "no user namespace"))
			test_skip("no user namespaces here");
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return;
	}
	CHECK(!path_exists(tpath("tree")));
}
