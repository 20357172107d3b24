/* Unit tests for util/proc: exit status, signals, deadline and group kills,
 * cancellation, env/cwd/fds passing, no descriptor leaks, start failures. */
#include "harness.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/proc.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void collect(void *ctx, int stream, const char *buf, size_t n)
{
	struct strbuf *sb = ctx;

	sb_add(&sb[stream - 1], buf, n);
}

static int sh(struct proc *p, const char *script, struct strbuf out[2], struct err *err)
{
	const char *argv[] = {"sh", "-c", script, NULL};

	p->argv = argv;
	if (out) {
		p->out = p->err = -1;
		p->on_output = collect;
		p->output_ctx = out;
	}
	return proc_run(p, err);
}

TEST(proc_exit_code_and_output)
{
	struct proc p = PROC_INIT;
	struct strbuf out[2] = {STRBUF_INIT, STRBUF_INIT};
	struct err err = {0};

	REQUIRE(sh(&p, "echo out; echo err >&2; exit 7", out, &err) == 0);
	CHECK_INT(p.exit_code, 7);
	CHECK(!p.signalled && !p.timed_out && !p.cancelled);
	CHECK_STR(sb_str(&out[0]), "out\n");
	CHECK_STR(sb_str(&out[1]), "err\n");
	CHECK_INT(p.out, -1);
	CHECK_INT(p.err, -1);
	sb_release(&out[0]);
	sb_release(&out[1]);
}

TEST(proc_signal_death)
{
	struct proc p = PROC_INIT;
	struct err err = {0};

	REQUIRE(sh(&p, "kill -TERM $$; sleep 5", NULL, &err) == 0);
	CHECK(p.signalled);
	CHECK_INT(p.term_sig, SIGTERM);
	CHECK_INT(p.exit_code, 128 + SIGTERM);
}

static bool gone(pid_t pid)
{
	char path[64], buf[256];
	_cleanup_close_ int fd = -1;
	ssize_t n;
	char *rp;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	return rp && (rp[2] == 'Z' || rp[2] == 'X');
}

static bool wait_gone(pid_t pid)
{
	double end = mono_now() + 10;

	while (!gone(pid) && mono_now() < end)
		sleep_sec(0.01);
	return gone(pid);
}

TEST(proc_deadline_kills_the_whole_group)
{
	struct proc p = {.new_pgroup = true};
	struct strbuf out[2] = {STRBUF_INIT, STRBUF_INIT};
	struct err err = {0};
	double t0 = mono_now();
	long bg;

	p.deadline = t0 + 1.0;
	/* The background sleep keeps the out pipe open: finish must not wait for it. */
	REQUIRE(sh(&p, "sleep 100 & echo $!; wait", out, &err) == 0);
	CHECK(p.timed_out);
	CHECK(p.signalled);
	CHECK_INT(p.term_sig, SIGKILL);
	CHECK(mono_now() - t0 < 8);
	bg = strtol(sb_str(&out[0]), NULL, 10);
	REQUIRE(bg > 1);
	CHECK(wait_gone((pid_t)bg));
	sb_release(&out[0]);
	sb_release(&out[1]);
}

TEST(proc_deadline_grace_then_sigkill)
{
	struct proc p = {.new_pgroup = true, .kill_grace = 0.2};
	struct err err = {0};

	p.deadline = mono_now() + 0.3;
	/* SIGTERM is ignored (and by its children): SIGKILL after the grace ends it. */
	REQUIRE(sh(&p, "trap '' TERM; while :; do sleep 0.05; done", NULL, &err) == 0);
	CHECK(p.timed_out);
	CHECK_INT(p.term_sig, SIGKILL);

	struct proc q = {.new_pgroup = true, .kill_grace = 5};

	q.deadline = mono_now() + 0.3;
	REQUIRE(sh(&q, "sleep 100", NULL, &err) == 0);
	CHECK(q.timed_out);
	CHECK_INT(q.term_sig, SIGTERM);
}

TEST(proc_cancellation_kills)
{
	struct proc p = {.cancellable = true, .new_session = true};
	struct err err = {0};
	double t0 = mono_now();

	rollout_cancel_count = 1;
	REQUIRE(sh(&p, "sleep 100", NULL, &err) == 0);
	rollout_cancel_count = 0;
	CHECK(p.cancelled);
	CHECK(!p.timed_out);
	CHECK_INT(p.term_sig, SIGKILL);
	CHECK(mono_now() - t0 < 8);

	struct proc q = PROC_INIT; /* not cancellable: runs to its end */

	rollout_cancel_count = 1;
	REQUIRE(sh(&q, "exit 3", NULL, &err) == 0);
	rollout_cancel_count = 0;
	CHECK(!q.cancelled);
	CHECK_INT(q.exit_code, 3);
}

TEST(proc_env_and_dir)
{
	const char *add[] = {"PROC_T=yes", "HOME", NULL};
	struct proc p = {.env_add = add, .dir = test_tmpdir()};
	struct strbuf out[2] = {STRBUF_INIT, STRBUF_INIT};
	struct err err = {0};
	_cleanup_free_ char *want = NULL;
	char cwd[4096];

	setenv("PROC_T", "no", 1);
	REQUIRE(sh(&p, "echo \"$PROC_T ${HOME-unset} $(pwd -P)\"", out, &err) == 0);
	REQUIRE(realpath(test_tmpdir(), cwd));
	want = xasprintf("yes unset %s\n", cwd);
	CHECK_STR(sb_str(&out[0]), want);
	sb_reset(&out[0]);

	const char *full[] = {"ONLY=1", NULL};
	struct proc q = {.env = full};

	REQUIRE(sh(&q, "echo \"$ONLY ${PROC_T-unset}\"", out, &err) == 0);
	CHECK_STR(sb_str(&out[0]), "1 unset\n");
	sb_release(&out[0]);
	sb_release(&out[1]);
}

TEST(proc_fds_in_place)
{
	int a[2], b[2];
	struct strbuf out[2] = {STRBUF_INIT, STRBUF_INIT};
	struct err err = {0};
	char buf[16] = "";
	_cleanup_close_ int in = open(tpath("in"), O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	REQUIRE(in >= 0 && write(in, "input\n", 6) == 6 && lseek(in, 0, SEEK_SET) == 0);
	REQUIRE(pipe2(a, O_CLOEXEC) == 0 && pipe2(b, O_CLOEXEC) == 0);

	/* Listed in the reverse order of their numbers: neither overwrites the other. */
	int extra[] = {b[1], a[1]};
	struct proc p = {.in = in, .extra_fds = extra, .n_extra_fds = 2};

	REQUIRE(sh(&p, "read l; echo \"$l\"; echo three >&3; echo four >&4", out, &err) == 0);
	CHECK_INT(p.exit_code, 0);
	CHECK_STR(sb_str(&out[0]), "input\n");
	close(a[1]);
	close(b[1]);
	CHECK(read(b[0], buf, sizeof(buf) - 1) == 6);
	CHECK_STR(buf, "three\n");
	memset(buf, 0, sizeof(buf));
	CHECK(read(a[0], buf, sizeof(buf) - 1) == 5);
	CHECK_STR(buf, "four\n");
	close(a[0]);
	close(b[0]);

	struct proc q = {.no_stdin = true};

	REQUIRE(sh(&q, "cat", out, &err) == 0); /* /dev/null: EOF at once */
	CHECK_INT(q.exit_code, 0);
	sb_release(&out[0]);
	sb_release(&out[1]);
}

/* Numbers of the open descriptors of a process, sorted, as "0 1 2 ". */
static void fd_list(pid_t pid, struct strbuf *sb)
{
	_cleanup_closedir_ DIR *d = opendir(tfmt("/proc/%d/fd", (int)pid));
	bool open_fd[1024] = {false};
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		long n = strtol(de->d_name, NULL, 10);

		if (de->d_name[0] != '.' && n >= 0 && n < 1024)
			open_fd[n] = true;
	}
	for (int i = 0; i < 1024; i++)
		if (open_fd[i])
			sb_addf(sb, "%d ", i);
}

TEST(proc_no_fd_leak)
{
	_cleanup_sb_ struct strbuf want = STRBUF_INIT, got = STRBUF_INIT;
	const char *argv[] = {"sleep", "5", NULL};
	int extra[] = {2};
	struct proc p = {.argv = argv, .out = -1, .err = -1, .extra_fds = extra, .n_extra_fds = 1};
	struct err err = {0};

	/* What the child may hold: 0-3, plus what this test process has without
	 * O_CLOEXEC (the harness's). proc's own pipes are not among them. */
	sb_addf(&want, "0 1 2 3 ");
	for (int fd = 4; fd < 1024; fd++) {
		int fl = fcntl(fd, F_GETFD);

		if (fl >= 0 && !(fl & FD_CLOEXEC))
			sb_addf(&want, "%d ", fd);
	}
	REQUIRE(proc_start(&p, &err) == 0);
	/* proc_start returns once the exec happened. */
	fd_list(p.pid, &got);
	proc_signal(&p, SIGKILL);
	REQUIRE(proc_finish(&p, &err) == 0);
	CHECK_STR(sb_str(&got), sb_str(&want));
	CHECK(p.signalled);
}

static int fn_child(void *arg)
{
	return *(int *)arg;
}

TEST(proc_fn_instead_of_exec)
{
	int code = 5;
	struct proc p = {.fn = fn_child, .arg = &code, .new_pgroup = true};
	struct err err = {0};

	REQUIRE(proc_run(&p, &err) == 0);
	CHECK_INT(p.exit_code, 5);
}

static int fn_sleeps(void *arg)
{
	sleep_sec(30);
	return 0;
}

/* A fn child runs on after proc_start returns (the job's workers): start does
 * not wait for it, and a deadline still ends it. */
TEST(proc_fn_start_returns_at_once)
{
	struct proc p = {.fn = fn_sleeps, .new_pgroup = true};
	struct err err = {0};
	double t0 = mono_now();

	REQUIRE(proc_start(&p, &err) == 0);
	CHECK(mono_now() - t0 < 5);
	p.deadline = mono_now() + 0.2;
	REQUIRE(proc_finish(&p, &err) == 0);
	CHECK(p.timed_out);
	CHECK(mono_now() - t0 < 10);
}

static int failing_setup(void *arg)
{
	errno = EPERM;
	return -1;
}

TEST(proc_start_failures_are_errors)
{
	const char *argv[] = {"/nonexistent/rollout-test-prog", NULL};
	struct proc p = {.argv = argv};
	struct err err = {0};

	CHECK(proc_run(&p, &err) < 0);
	CHECK_INT(err.code, ENOENT);
	CHECK(strstr(err.msg, "exec /nonexistent/rollout-test-prog") != NULL);
	CHECK_INT(p.pid, 0);

	const char *ok[] = {"true", NULL};
	struct proc q = {.argv = ok, .dir = "/nonexistent-dir"};

	memset(&err, 0, sizeof(err));
	CHECK(proc_run(&q, &err) < 0);
	CHECK_INT(err.code, ENOENT);

	struct proc s = {.argv = ok, .setup = failing_setup, .out = -1};

	memset(&err, 0, sizeof(err));
	CHECK(proc_run(&s, &err) < 0);
	CHECK_INT(err.code, EPERM);
	CHECK_INT(s.out, -1); /* its pipe closed */
}
