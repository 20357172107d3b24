/* Unit tests for the per-trial pids limit: the host keeps its reserve, an explicit
 * limit is never raised, the floor, unknown hosts. */
#include "core/pids.h"
#include "harness.h"

TEST(pids_default_fits_when_the_host_has_room)
{
	bool lowered;

	/* 4 x 4096 of a 32768 pid_max leaves 16384: more than the 8192 reserve */
	CHECK_INT(pids_limit_size(PIDS_LIMIT_DEFAULT, 4, 32768, &lowered), 4096);
	CHECK(!lowered);
	/* a 64-bit systemd host (pid_max 4194304) */
	CHECK_INT(pids_limit_size(PIDS_LIMIT_DEFAULT, 64, 4194304, &lowered), 4096);
	CHECK(!lowered);
}

TEST(pids_concurrent_trials_leave_the_host_a_quarter)
{
	bool lowered;

	/* the report: 8 fork bombs of 4096 took all of 32768 */
	CHECK_INT(pids_limit_size(4096, 8, 32768, &lowered), 3072);
	CHECK(lowered);
	CHECK(8 * 3072 <= 32768 - pids_reserve(32768));
	CHECK_INT(pids_reserve(32768), 8192);
	/* for any concurrency the trials together stay within the host's share */
	for (int n = 1; n <= 300; n++) {
		long limit = pids_limit_size(4096, n, 32768, NULL);

		if (limit > PIDS_LIMIT_MIN && limit * n > 32768 - 8192)
			test_fail_at(__FILE__, __LINE__, "n=%d: %ld each", n, limit);
	}
	/* small hosts keep at least PIDS_RESERVE_MIN, and never more than half */
	CHECK_INT(pids_reserve(4096), 2048);
	CHECK_INT(pids_reserve(1000), 500);
	CHECK_INT(pids_limit_size(4096, 2, 10000, NULL), (10000 - 2500) / 2);
}

TEST(pids_an_explicit_limit_is_never_raised)
{
	bool lowered;

	CHECK_INT(pids_limit_size(100, 4, 32768, &lowered), 100);
	CHECK(!lowered);
	/* not even up to the floor */
	CHECK_INT(pids_limit_size(10, 1000, 32768, &lowered), 10);
	CHECK(!lowered);
	/* but lowered like the default when the host needs it */
	CHECK_INT(pids_limit_size(100000, 8, 32768, &lowered), 3072);
	CHECK(lowered);
}

TEST(pids_no_limit_asked_gets_the_share)
{
	bool lowered;

	CHECK_INT(pids_limit_size(0, 4, 32768, &lowered), (32768 - 8192) / 4);
	CHECK(lowered);
	CHECK_INT(pids_limit_size(-1, 1, 32768, &lowered), 32768 - 8192);
}

TEST(pids_floor_and_unknown_hosts)
{
	bool lowered;

	/* too many trials for the host: the floor, which the caller warns about */
	CHECK_INT(pids_limit_size(4096, 1000, 32768, &lowered), PIDS_LIMIT_MIN);
	CHECK(lowered);
	/* /proc unreadable: what was asked for */
	CHECK_INT(pids_limit_size(4096, 8, 0, &lowered), 4096);
	CHECK(!lowered);
	/* a concurrency below 1 counts as 1 */
	CHECK_INT(pids_limit_size(100000, 0, 32768, NULL), 32768 - 8192);
}

TEST(pids_host_capacity_reads_proc)
{
	long c = pids_host_capacity();

	/* every Linux has pid_max (>= 301) */
	CHECK(c >= 301);
}
