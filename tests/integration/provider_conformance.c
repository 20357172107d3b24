/* Provider conformance: the same behaviour from every provider (src/providers/provider.h).
 * Run by test_provider_conformance.sh once per provider with ROLLOUT_TEST_PROVIDER set,
 * on an image holding busybox (WORKDIR /app, root and nobody users). */
#include "harness.h"
#include "providers/probe.h"
#include "providers/provider.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct provider_ops *P;
static char env_name[64];

struct env_opts {
	bool allow_internet;
	long long memory_bytes;
	long long storage_bytes;
	long pids_limit;
	const char *const *env;
};

/* What cannot hold at a provider's isolation level, by test name, and why:
 * those tests are skipped there, saying so (docs/SANDBOX.md, "Isolation
 * levels"). */
static bool no_cgroups(void)
{
	return host_probe(false)->r[PROBE_CGROUPS].state != PROBE_OK;
}

static const struct {
	const char *provider, *test, *why;
	bool (*when)(void); /* NULL: always */
} not_here[] = {
    {"sandbox-chroot", "memory_hog_is_oom_killed_and_reported",
     "--isolation chroot without writable cgroups: memory is each process's RLIMIT_DATA (the "
     "allocation fails; nothing is OOM-killed or reported)",
     no_cgroups},
    {"sandbox-chroot", "fork_bomb_is_contained_by_the_pids_limit",
     "--isolation chroot without writable cgroups: pids is RLIMIT_NPROC, which root ignores "
     "(a fork bomb would reach the host)",
     no_cgroups},
    {"sandbox-chroot", "network_is_loopback_only_when_internet_is_not_allowed",
     "--isolation chroot has no network namespace: environments share the host's network", NULL},
    {"sandbox-chroot", "network_is_available_when_internet_is_allowed",
     "--isolation chroot has no network namespace and no /sys to list it", NULL},
    {"sandbox-chroot", "hostname_is_the_environment_name",
     "--isolation chroot has no uts namespace: `hostname` is the host's ($HOSTNAME and "
     "/etc/hostname are the environment's)",
     NULL},
    {"sandbox-chroot", "limits_are_visible_inside",
     "--isolation chroot mounts nothing: no /sys/fs/cgroup inside", NULL},
    {"sandbox-chroot", "environments_cannot_see_each_others_processes",
     "--isolation chroot shares the host's pid namespace (no /proc inside to list it, but "
     "kill reaches other environments' processes)",
     NULL},
};

static const struct provider_ops *provider(void);

/* Skips the calling test where it cannot hold (not_here). */
#define SKIP_WHERE_IT_CANNOT_HOLD() skip_where_it_cannot_hold(__func__)

static void skip_where_it_cannot_hold(const char *test)
{
	const struct provider_ops *p = provider();

	for (size_t i = 0; p && i < ARRAY_SIZE(not_here); i++)
		if (!strcmp(not_here[i].provider, p->name) && !strcmp(not_here[i].test, test) &&
		    (!not_here[i].when || not_here[i].when()))
			test_skip(not_here[i].why);
}

static const struct provider_ops *provider(void)
{
	const char *name = getenv("ROLLOUT_TEST_PROVIDER");

	if (!name)
		name = "sandbox";
	return provider_find(name);
}

static struct environment *start_with(const struct env_opts *o)
{
	struct env_config cfg = {0};
	struct environment *env = NULL;
	struct err err = {0};
	static int counter;
	const char *image = getenv("ROLLOUT_TEST_IMAGE");

	P = provider();
	if (!P) {
		test_fail_at(__FILE__, __LINE__, "unknown provider");
		return NULL;
	}
	snprintf(env_name, sizeof(env_name), "conformance-%d-%d", (int)getpid(), counter++);
	cfg.env_name = env_name;
	cfg.job_name = "conformance";
	cfg.task_name = "conformance";
	cfg.docker_image = image ? image : "rollout-test/busybox:1";
	cfg.build_timeout_sec = 60;
	cfg.cpus = 1;
	cfg.memory_bytes = o->memory_bytes ? o->memory_bytes : 256LL << 20;
	cfg.pids_limit = o->pids_limit ? o->pids_limit : 512;
	cfg.storage_bytes = o->storage_bytes;
	cfg.allow_internet = o->allow_internet;
	cfg.host_agent_dir = tdir("agent");
	cfg.host_verifier_dir = tdir("verifier");
	cfg.host_artifacts_dir = tdir("artifacts");
	cfg.env = o->env;
	if (env_start(P, &cfg, &env, &err) < 0) {
		if (err.code == ENOSYS) /* a provider whose issue has not landed yet */
			test_skip(err.msg);
		test_fail_at(__FILE__, __LINE__, "start: %s", err.msg);
		return NULL;
	}
	return env;
}

static struct environment *start(void)
{
	struct env_opts o = {0};

	return start_with(&o);
}

static void stop(struct environment *env)
{
	struct err err = {0};

	if (env && env_stop(env, true, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "stop: %s", err.msg);
}

/* Output of one exec, read back from the capture files. */
struct run {
	struct exec_result res;
	char *out;
	char *errout;
	int rc; /* exec() return */
	struct err err;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->errout);
}

static void run_req(struct environment *env, struct exec_request *req, struct run *r)
{
	_cleanup_free_ char *o = path_join(test_tmpdir(), "stdout.txt");
	_cleanup_free_ char *e = path_join(test_tmpdir(), "stderr.txt");
	size_t len;

	int ofd, efd;

	memset(r, 0, sizeof(*r));
	unlink(o);
	unlink(e);
	ofd = open(o, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	efd = open(e, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	req->stdout_fd = ofd;
	req->stderr_fd = req->merge_stderr ? -1 : efd;
	if (req->stdin_fd == 0)
		req->stdin_fd = -1;
	r->rc = env_exec(env, req, &r->res, &r->err);
	close(ofd);
	close(efd);
	if (read_file(o, 64 << 20, &r->out, &len, NULL) < 0)
		r->out = xstrdup("");
	if (read_file(e, 64 << 20, &r->errout, &len, NULL) < 0)
		r->errout = xstrdup("");
}

/* Run `sh -c SCRIPT` with defaults. */
static void sh(struct environment *env, const char *script, struct run *r)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1, .timeout_sec = 60};

	run_req(env, &req, r);
}

static void sh_as(struct environment *env, const char *user, const char *script, struct run *r)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1, .timeout_sec = 60, .user = user};

	run_req(env, &req, r);
}

/* Runs SCRIPT (which prints one line) until it prints WANT or ~10 s pass:
 * processes start and die asynchronously, so tests wait on the condition, not
 * for a while. Returns the last output (heap). */
static char *wait_for_output(struct environment *env, const char *script, const char *want)
{
	struct run r;

	for (int i = 0;; i++) {
		sh(env, script, &r);
		if (strcmp(r.out, want) == 0 || i == 400) {
			free(r.errout);
			return r.out;
		}
		run_free(&r);
		usleep(25000);
	}
}

#define CHECK_RUN_OK(r)                                                                            \
	do {                                                                                       \
		if ((r).rc < 0)                                                                    \
			test_fail_at(__FILE__, __LINE__, "exec failed: %s", (r).err.msg);          \
	} while (0)

TEST(exec_captures_stdout_and_exit_code)
{
	struct environment *env = start();
	struct run r;

	REQUIRE(env);
	sh(env, "echo hello", &r);
	CHECK_RUN_OK(r);
	CHECK_STR(r.out, "hello\n");
	CHECK_INT(r.res.exit_code, 0);
	CHECK(!r.res.timed_out);
	run_free(&r);
	sh(env, "exit 7", &r);
	CHECK_INT(r.res.exit_code, 7);
	run_free(&r);
	sh(env, "no-such-command-here", &r);
	CHECK_INT(r.res.exit_code, 127);
	run_free(&r);
	stop(env);
}

TEST(exec_missing_binary_is_a_nonzero_exit_not_an_error)
{
	struct environment *env = start();
	const char *argv[] = {"/no/such/binary", NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1, .timeout_sec = 30};
	struct run r;

	REQUIRE(env);
	run_req(env, &req, &r);
	CHECK_RUN_OK(r);
	CHECK(r.res.exit_code == 126 || r.res.exit_code == 127);
	run_free(&r);
	stop(env);
}

TEST(exec_separates_stderr)
{
	struct environment *env = start();
	struct run r;

	REQUIRE(env);
	sh(env, "echo out; echo err >&2; echo out2", &r);
	CHECK_STR(r.out, "out\nout2\n");
	CHECK_STR(r.errout, "err\n");
	run_free(&r);
	stop(env);
}

TEST(exec_merges_stderr_in_order)
{
	struct environment *env = start();
	const char *argv[] = {"sh", "-c", "echo a; echo b >&2; echo c", NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1, .merge_stderr = true};
	struct run r;

	REQUIRE(env);
	run_req(env, &req, &r);
	CHECK_STR(r.out, "a\nb\nc\n");
	run_free(&r);
	stop(env);
}

TEST(exec_cwd_defaults_to_workdir_and_can_be_set)
{
	struct environment *env = start();
	const char *argv[] = {"pwd", NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1, .cwd = "/tmp"};
	struct run r;

	REQUIRE(env);
	sh(env, "pwd", &r);
	CHECK_STR(r.out, "/app\n");
	run_free(&r);
	run_req(env, &req, &r);
	CHECK_STR(r.out, "/tmp\n");
	run_free(&r);
	stop(env);
}

TEST(exec_env_merges_image_config_and_request)
{
	const char *cfg_env[] = {"TASK_ENV=fromtask", NULL};
	struct env_opts o = {.env = cfg_env};
	struct environment *env = start_with(&o);
	const char *argv[] = {"sh", "-c", "echo $FOO; echo $TASK_ENV; echo $PATH", NULL};
	const char *req_env[] = {"FOO=bar baz", NULL};
	struct exec_request req = {.argv = argv, .env = req_env, .stdin_fd = -1};
	struct run r;

	REQUIRE(env);
	run_req(env, &req, &r);
	CHECK_CONTAINS(r.out, "bar baz\nfromtask\n");
	CHECK_CONTAINS(r.out, "/bin");
	run_free(&r);
	stop(env);
}

TEST(exec_user_default_root_numeric_and_named)
{
	struct environment *env = start();
	struct run r;

	REQUIRE(env);
	sh(env, "id -u", &r);
	CHECK_STR(r.out, "0\n");
	run_free(&r);
	sh_as(env, "65534", "id -u", &r);
	CHECK_STR(r.out, "65534\n");
	run_free(&r);
	sh_as(env, "nobody", "id -u; id -g", &r);
	CHECK_STR(r.out, "65534\n65534\n");
	run_free(&r);
	sh_as(env, "1234:4321", "id -u; id -g", &r);
	CHECK_STR(r.out, "1234\n4321\n");
	run_free(&r);
	stop(env);
}

TEST(exec_timeout_kills_the_command_and_everything_it_started)
{
	struct environment *env = start();
	const char *argv[] = {"sh", "-c",
	                      "sleep 300 & setsid sleep 301 & nohup sleep 302 >/dev/null 2>&1 & "
	                      "(sleep 303 &); echo started; sleep 304",
	                      NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1, .timeout_sec = 1.5};
	struct run r;

	REQUIRE(env);
	run_req(env, &req, &r);
	CHECK_RUN_OK(r);
	CHECK(r.res.timed_out);
	CHECK(r.res.duration_sec < 15);
	CHECK_STR(r.out, "started\n");
	run_free(&r);
	/* Nothing of that command may remain. */
	{
		_cleanup_free_ char *left =
		    wait_for_output(env, "ps -o args | grep -c '^sleep 30' || true", "0\n");

		CHECK_STR(left, "0\n");
	}
	/* The environment stays usable. */
	sh(env, "echo still-here", &r);
	CHECK_STR(r.out, "still-here\n");
	run_free(&r);
	stop(env);
}

TEST(exec_output_is_capped_and_truncation_recorded)
{
	struct environment *env = start();
	const char *argv[] = {"sh", "-c", "head -c 3000000 /dev/zero; echo done >&2", NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1, .output_cap = 1 << 20};
	struct run r;
	struct stat st;
	_cleanup_free_ char *o = path_join(test_tmpdir(), "stdout.txt");

	REQUIRE(env);
	run_req(env, &req, &r);
	CHECK_RUN_OK(r);
	CHECK_INT(r.res.exit_code, 0);
	CHECK(r.res.stdout_truncated);
	CHECK(!r.res.stderr_truncated);
	CHECK_INT(r.res.stdout_bytes, 3000000);
	REQUIRE(stat(o, &st) == 0);
	CHECK_INT(st.st_size, 1 << 20);
	CHECK_STR(r.errout, "done\n");
	run_free(&r);
	stop(env);
}

TEST(exec_large_output_on_both_streams_does_not_deadlock)
{
	struct environment *env = start();
	struct run r;

	REQUIRE(env);
	sh(env, "head -c 5000000 /dev/zero >&2; head -c 5000000 /dev/zero", &r);
	CHECK_RUN_OK(r);
	CHECK_INT(r.res.stdout_bytes, 5000000);
	CHECK_INT(r.res.stderr_bytes, 5000000);
	run_free(&r);
	stop(env);
}

TEST(exec_feeds_stdin)
{
	struct environment *env = start();
	const char *argv[] = {"cat", NULL};
	_cleanup_free_ char *in = path_join(test_tmpdir(), "stdin.txt");
	struct exec_request req = {.argv = argv};
	struct run r;

	REQUIRE(env);
	REQUIRE(write_file(in, "abc\n", 4, 0644, NULL) == 0);
	req.stdin_fd = open(in, O_RDONLY | O_CLOEXEC);
	REQUIRE(req.stdin_fd >= 0);
	run_req(env, &req, &r);
	close(req.stdin_fd);
	CHECK_STR(r.out, "abc\n");
	run_free(&r);
	stop(env);
}

static void make_tree(const char *root)
{
	_cleanup_free_ char *sub = path_join(root, "sub/deeper");
	_cleanup_free_ char *empty = path_join(root, "empty");

	mkdir_p(sub, 0755, NULL);
	mkdir_p(empty, 0700, NULL);
	write_file(path_join(root, "run.sh"), "#!/bin/sh\necho ran\n", 19, 0755, NULL);
	write_file(path_join(root, "secret"), "s3cret", 6, 0600, NULL);
	write_file(path_join(root, "sub/deeper/data.txt"), "nested\n", 7, 0644, NULL);
	chmod(path_join(root, "run.sh"), 0755);
	chmod(path_join(root, "secret"), 0600);
	symlink("sub/deeper/data.txt", path_join(root, "link"));
}

/* Compare two host trees: same names, types, modes, contents, link targets. */
static void compare_trees(const char *a, const char *b, const char *rel)
{
	_cleanup_free_ char *pa = path_join(a, rel);
	_cleanup_free_ char *pb = path_join(b, rel);
	struct stat sa, sb;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;

	if (lstat(pa, &sa) < 0 || lstat(pb, &sb) < 0) {
		test_fail_at(__FILE__, __LINE__, "missing: %s", rel);
		return;
	}
	if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) {
		test_fail_at(__FILE__, __LINE__, "%s: type differs", rel);
		return;
	}
	if (!S_ISLNK(sa.st_mode) && (sa.st_mode & 07777) != (sb.st_mode & 07777))
		test_fail_at(__FILE__, __LINE__, "%s: mode %o vs %o", rel, sa.st_mode & 07777,
		             sb.st_mode & 07777);
	if (S_ISREG(sa.st_mode)) {
		_cleanup_free_ char *ca = NULL, *cb = NULL;
		size_t la, lb;

		read_file(pa, 1 << 20, &ca, &la, NULL);
		read_file(pb, 1 << 20, &cb, &lb, NULL);
		if (!ca || !cb || la != lb || memcmp(ca, cb, la) != 0)
			test_fail_at(__FILE__, __LINE__, "%s: content differs", rel);
	} else if (S_ISLNK(sa.st_mode)) {
		char ta[256] = "", tb[256] = "";

		readlink(pa, ta, sizeof(ta) - 1);
		readlink(pb, tb, sizeof(tb) - 1);
		if (strcmp(ta, tb) != 0)
			test_fail_at(__FILE__, __LINE__, "%s: link %s vs %s", rel, ta, tb);
	} else if (S_ISDIR(sa.st_mode)) {
		int na = 0, nb = 0;

		d = opendir(pa);
		while (d && (de = readdir(d))) {
			_cleanup_free_ char *child = NULL;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			na++;
			child = *rel ? path_join(rel, de->d_name) : xstrdup(de->d_name);
			compare_trees(a, b, child);
		}
		closedir(d);
		d = opendir(pb);
		while (d && (de = readdir(d)))
			nb += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
		if (na != nb)
			test_fail_at(__FILE__, __LINE__, "%s: %d entries vs %d", rel, na, nb);
	}
}

TEST(upload_and_download_directory_round_trip_keeps_modes)
{
	struct environment *env = start();
	_cleanup_free_ char *src = path_join(test_tmpdir(), "src");
	_cleanup_free_ char *back = path_join(test_tmpdir(), "back");
	struct err err = {0};
	struct run r;

	REQUIRE(env);
	make_tree(src);
	REQUIRE(env_upload_path(env, src, "/data/in", 0, &err) == 0);
	sh(env,
	   "stat -c '%a %s' /data/in/run.sh /data/in/secret; /data/in/run.sh; "
	   "readlink /data/in/link; cat /data/in/link",
	   &r);
	CHECK_STR(r.out, "755 19\n600 6\nran\nsub/deeper/data.txt\nnested\n");
	run_free(&r);
	REQUIRE(env_download_path(env, "/data/in", back, &err) == 0);
	compare_trees(src, back, "");
	stop(env);
}

TEST(upload_single_file_creates_parents)
{
	struct environment *env = start();
	_cleanup_free_ char *f = path_join(test_tmpdir(), "one.sh");
	struct err err = {0};
	struct run r;

	REQUIRE(env);
	REQUIRE(write_file(f, "#!/bin/sh\necho one\n", 19, 0750, NULL) == 0);
	chmod(f, 0750);
	REQUIRE(env_upload_path(env, f, "/new/dir/one.sh", 0, &err) == 0);
	sh(env, "stat -c %a /new/dir/one.sh && /new/dir/one.sh", &r);
	CHECK_STR(r.out, "750\none\n");
	run_free(&r);
	stop(env);
}

TEST(download_single_file_and_missing_path)
{
	struct environment *env = start();
	_cleanup_free_ char *dst = path_join(test_tmpdir(), "got/hosts.txt");
	_cleanup_free_ char *got = NULL;
	struct err err = {0};
	struct run r;
	size_t len;

	REQUIRE(env);
	sh(env, "printf 'line1\\nline2\\n' > /tmp/f.txt", &r);
	run_free(&r);
	REQUIRE(env_download_path(env, "/tmp/f.txt", dst, &err) == 0);
	REQUIRE(read_file(dst, 1024, &got, &len, NULL) == 0);
	CHECK_STR(got, "line1\nline2\n");
	CHECK(env_download_path(env, "/no/such/path", dst, &err) < 0);
	stop(env);
}

TEST(paths_resolve_inside_the_environment_never_on_the_host)
{
	struct environment *env = start();
	_cleanup_free_ char *secret = xasprintf("/tmp/rollout-conf-secret-%d", (int)getpid());
	_cleanup_free_ char *target = xasprintf("/tmp/rollout-conf-target-%d", (int)getpid());
	_cleanup_free_ char *script = NULL;
	_cleanup_free_ char *dst = path_join(test_tmpdir(), "leak.txt");
	_cleanup_free_ char *f = path_join(test_tmpdir(), "payload");
	_cleanup_free_ char *got = NULL;
	struct err err = {0};
	struct run r;
	size_t len;

	REQUIRE(env);
	REQUIRE(write_file(secret, "HOSTSECRET", 10, 0600, NULL) == 0);
	REQUIRE(write_file(f, "payload", 7, 0644, NULL) == 0);
	unlink(target);
	/* Symlinks planted by the agent that point at host paths. */
	script = xasprintf("ln -s %s /tmp/s; ln -s %s /tmp/t; mkdir -p /tmp/d; ln -s / /tmp/d/up",
	                   secret, target);
	sh(env, script, &r);
	run_free(&r);
	if (env_download_path(env, "/tmp/s", dst, &err) == 0 &&
	    read_file(dst, 1024, &got, &len, NULL) == 0)
		CHECK(strstr(got, "HOSTSECRET") == NULL);
	err_clear(&err);
	env_upload_path(env, f, "/tmp/t", 0, &err);
	CHECK(!path_exists(target));
	env_upload_path(env, f, "/tmp/d/up/tmp/../../escape", 0, &err);
	CHECK(!path_exists("/escape"));
	unlink(secret);
	unlink(target);
	stop(env);
}

TEST(logs_directories_exist_and_reach_the_host)
{
	struct environment *env = start();
	_cleanup_free_ char *host_file = NULL;
	_cleanup_free_ char *got = NULL;
	struct err err = {0};
	struct run r;
	struct stat st;
	size_t len;

	REQUIRE(env);
	sh(env,
	   "test -d /logs/agent && test -d /logs/verifier && test -d /logs/artifacts && "
	   "echo hi > /logs/agent/a.txt",
	   &r);
	CHECK_INT(r.res.exit_code, 0);
	run_free(&r);
	/* /logs/verifier is the verifier's: writable once verification starts. */
	REQUIRE(env_kill_all(env, &err) >= 0);
	REQUIRE(env_open_verifier_dir(env, &err) == 0);
	sh(env, "echo v > /logs/verifier/v.txt", &r);
	CHECK_INT(r.res.exit_code, 0);
	run_free(&r);
	host_file = path_join(tdir("agent"), "a.txt");
	if (P->logs_mounted) {
		REQUIRE(read_file(host_file, 1024, &got, &len, NULL) == 0);
		CHECK_STR(got, "hi\n");
		/* Files the environment writes end up owned by the invoking user. */
		REQUIRE(stat(host_file, &st) == 0);
		CHECK_INT(st.st_uid, getuid());
		CHECK(path_is_file(tpath("verifier/v.txt")));
	} else {
		/* Collected by copying them out (the trial's collect phase). */
		REQUIRE(env_download_path(env, "/logs/agent", tpath("dl-agent"), &err) == 0);
		REQUIRE(read_file(tpath("dl-agent/a.txt"), 1024, &got, &len, NULL) == 0);
		CHECK_STR(got, "hi\n");
		free(got);
		got = NULL;
		REQUIRE(env_download_path(env, "/logs/verifier", tpath("dl-v"), &err) == 0);
		CHECK(path_is_file(tpath("dl-v/v.txt")));
	}
	stop(env);
}

/* Where the provider can (the sandbox), the agent cannot write /logs/verifier
 * at all before verification: nothing can be planted there. */
TEST(verifier_logs_are_closed_until_verification)
{
	struct environment *env = start();
	struct run r;

	REQUIRE(env);
	sh(env, "echo 1 > /logs/verifier/reward.txt && echo written", &r);
	if (strcmp(P->name, "sandbox") == 0) {
		CHECK(r.res.exit_code != 0);
		CHECK(!path_exists(tpath("verifier/reward.txt")));
	}
	run_free(&r);
	/* Elsewhere it could be written, but verification starts empty (the
	 * trial empties the host directory first, as here). */
	{
		struct err err = {0};
		struct cdir v = CDIR_INIT;

		REQUIRE(env_kill_all(env, &err) >= 0);
		REQUIRE(cdir_open_trusted(tdir("verifier"), &v, &err) == 0);
		CHECK(cdir_clear(&v, &err) == 0);
		cdir_release(&v);
		REQUIRE(env_open_verifier_dir(env, &err) == 0);
		sh(env, "ls -A /logs/verifier; echo end", &r);
		CHECK_STR(r.out, "end\n");
		run_free(&r);
	}
	stop(env);
}

/* The end of the agent phase: everything the agent left running goes, however
 * it hid (setsid, ignored SIGTERM, double fork); the environment stays usable. */
TEST(kill_all_ends_every_process_but_init)
{
	struct environment *env = start();
	struct err err = {0};
	struct run r;
	int n;

	REQUIRE(env);
	/* Three that stay: a new session ignoring SIGTERM, a double fork, one
	 * ignoring SIGHUP (the image's busybox has no nohup). Their pids are
	 * noted: `kill -0` finds survivors where there is no /proc to list. */
	sh(env,
	   "setsid sh -c 'trap \"\" TERM; while :; do echo x >> /tmp/loop; sleep 0.05; done' "
	   ">/dev/null 2>&1 & echo $! > /tmp/pids; "
	   "(sh -c 'sleep 1007' >/dev/null 2>&1 & echo $! >> /tmp/pids) ; "
	   "sh -c 'trap \"\" HUP; exec sleep 1008' >/dev/null 2>&1 & echo $! >> /tmp/pids; "
	   "echo started",
	   &r);
	CHECK_STR(r.out, "started\n");
	run_free(&r);
	/* All three running (the condition, not a pause) before the boundary;
	 * where there is no /proc (--isolation chroot), alive by their pids. */
	{
		_cleanup_free_ char *seen = wait_for_output(
		    env,
		    "if [ -d /proc/1 ]; then "
		    "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done | "
		    "grep -cE '^(sleep 100[78]|sh -c trap)' || true; "
		    "else for p in $(cat /tmp/pids); do kill -0 $p 2>/dev/null && echo $p; done | "
		    "wc -l; fi",
		    "3\n");

		CHECK_STR(seen, "3\n");
	}
	n = env_kill_all(env, &err);
	if (n < 0)
		test_fail_at(__FILE__, __LINE__, "kill_all: %s", err.msg);
	if (n < 3)
		test_fail_at(__FILE__, __LINE__, "kill_all killed %d processes, expected 3 or more",
		             n);
	sh(env,
	   "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done | "
	   "grep -cE '^(sleep 100[78]|sh -c trap)' || true; "
	   "wc -l < /tmp/pids; for p in $(cat /tmp/pids); do kill -0 $p 2>/dev/null && echo $p; "
	   "done",
	   &r);
	CHECK_STR(r.out, "0\n3\n");
	run_free(&r);
	/* Nothing left: a second call kills nothing. */
	CHECK_INT(env_kill_all(env, &err), 0);
	stop(env);
}

/* UPLOAD_REPLACE: a directory is replaced as a whole (nothing the agent left
 * there is merged in), whatever was in its place (a link, a file). */
TEST(upload_replace_does_not_merge)
{
	struct environment *env = start();
	_cleanup_free_ char *src = path_join(test_tmpdir(), "tests");
	struct err err = {0};
	struct run r;

	REQUIRE(env);
	REQUIRE(mkdir_p(src, 0755, NULL) == 0);
	REQUIRE(write_file(tpath("tests/test.sh"), "real\n", 5, 0755, NULL) == 0);
	sh(env, "mkdir -p /t1 && echo fake > /t1/conftest.py && ln -s /etc /t2 && echo x > /t3",
	   &r);
	run_free(&r);
	REQUIRE(env_upload_path(env, src, "/t1", UPLOAD_REPLACE, &err) == 0);
	REQUIRE(env_upload_path(env, src, "/t2", UPLOAD_REPLACE, &err) == 0);
	REQUIRE(env_upload_path(env, src, "/t3", UPLOAD_REPLACE, &err) == 0);
	sh(env,
	   "ls /t1; cat /t2/test.sh; test -L /t2 || echo notlink; cat /t3/test.sh; "
	   "test -e /etc/test.sh || echo clean",
	   &r);
	CHECK_STR(r.out, "test.sh\nreal\nnotlink\nreal\nclean\n");
	run_free(&r);
	stop(env);
}

/* Downloads never bring setuid bits, devices or links pointing out to the host. */
TEST(download_masks_what_the_environment_hands_back)
{
	struct environment *env = start();
	_cleanup_free_ char *dst = path_join(test_tmpdir(), "dl");
	struct err err = {0};
	struct stat st;
	struct run r;

	REQUIRE(env);
	sh(env,
	   "mkdir -p /out/sub && echo x > /out/suid && chmod 6777 /out/suid && "
	   "chmod 777 /out/sub && ln -s /etc/passwd /out/abs && ln -s ../../x /out/sub/up && "
	   "ln -s suid /out/ok && mkfifo /out/fifo",
	   &r);
	run_free(&r);
	REQUIRE(env_download_path(env, "/out", dst, &err) == 0);
	REQUIRE(lstat(tpath("dl/suid"), &st) == 0);
	CHECK_INT(st.st_mode & 07777, 0755);
	REQUIRE(lstat(tpath("dl/sub"), &st) == 0);
	CHECK_INT(st.st_mode & 07777, 0755);
	CHECK(!path_exists(tpath("dl/abs")));
	CHECK(!path_exists(tpath("dl/sub/up")));
	CHECK(path_exists(tpath("dl/ok")));
	CHECK(!path_exists(tpath("dl/fifo")));
	stop(env);
}

static void check_only_loopback(struct environment *env, bool want_only_lo)
{
	struct run r;

	sh(env, "ls /sys/class/net | tr '\\n' ' '", &r);
	if (want_only_lo)
		CHECK_STR(r.out, "lo ");
	else
		CHECK(strcmp(r.out, "lo ") != 0 && r.out[0]);
	run_free(&r);
}

TEST(network_is_loopback_only_when_internet_is_not_allowed)
{
	struct env_opts o = {.allow_internet = false};
	struct environment *env;
	struct run r;

	SKIP_WHERE_IT_CANNOT_HOLD();
	env = start_with(&o);
	REQUIRE(env);
	check_only_loopback(env, true);
	/* loopback itself works */
	/* Conditions, not pauses: the listener's socket in LISTEN (port 7777 is
	 * 1E61 in /proc/net/tcp, or tcp6 where nc listens on IPv6, state 0A),
	 * then the bytes in the file. */
	sh(env,
	   "nc -l -p 7777 > /tmp/got & "
	   "i=0; while ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ':1E61 0*:0000 0A' "
	   "&& [ $i -lt 400 ]; do "
	   "sleep 0.05; i=$((i+1)); done; "
	   "echo ping | nc 127.0.0.1 7777; "
	   "i=0; while ! grep -q ping /tmp/got && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; "
	   "cat /tmp/got",
	   &r);
	CHECK_CONTAINS(r.out, "ping");
	run_free(&r);
	stop(env);
}

TEST(network_is_available_when_internet_is_allowed)
{
	struct env_opts o = {.allow_internet = true};
	struct environment *env;

	SKIP_WHERE_IT_CANNOT_HOLD();
	env = start_with(&o);
	REQUIRE(env);
	check_only_loopback(env, false);
	stop(env);
}

TEST(hostname_is_the_environment_name)
{
	struct environment *env;
	_cleanup_free_ char *want = NULL;
	struct run r;

	SKIP_WHERE_IT_CANNOT_HOLD();
	env = start();
	REQUIRE(env);
	want = xasprintf("%s\n", env_name);
	sh(env, "hostname", &r);
	CHECK_STR(r.out, want);
	run_free(&r);
	stop(env);
}

/* cgroup v1 shows the limit in memory.limit_in_bytes, v2 in memory.max. */
TEST(limits_are_visible_inside)
{
	struct env_opts o = {.memory_bytes = 200LL << 20, .pids_limit = 100};
	struct environment *env;
	struct run r;

	SKIP_WHERE_IT_CANNOT_HOLD();
	env = start_with(&o);
	REQUIRE(env);
	sh(env,
	   "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
	   "cat /sys/fs/cgroup/memory.max",
	   &r);
	CHECK_STR(r.out, "209715200\n");
	run_free(&r);
	sh(env, "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max", &r);
	CHECK_STR(r.out, "100\n");
	run_free(&r);
	stop(env);
}

/* usage() is optional; where it exists it reports the limit asked for, and
 * bytes in use only where the limit is enforced (a filesystem with project
 * quotas for the sandbox: tests/integration/test_storage.sh). */
TEST(storage_usage_reports_the_limit)
{
	struct env_opts o = {.storage_bytes = 64LL << 20};
	struct environment *env = start_with(&o);
	struct env_usage u;
	struct err err = {0};
	struct run r;

	REQUIRE(env);
	if (!P->usage) {
		stop(env);
		test_skip("this provider does not measure storage");
	}
	sh(env, "dd if=/dev/zero of=/root/four bs=1M count=4 2>&1 && sync", &r);
	CHECK_INT(r.res.exit_code, 0);
	run_free(&r);
	CHECK(env_usage(env, &u, &err) == 0);
	CHECK(u.limit_bytes == 64LL << 20);
	CHECK(!u.limit_hit);
	if (u.enforced)
		CHECK(u.used_bytes >= 4LL << 20 && u.used_bytes < 64LL << 20);
	else
		CHECK(u.used_bytes == -1);
	stop(env);
}

TEST(memory_hog_is_oom_killed_and_reported)
{
	struct env_opts o = {.memory_bytes = 64LL << 20};
	struct environment *env;
	const char *argv[] = {"sh", "-c", "tail /dev/zero", NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1, .timeout_sec = 60};
	struct run r;

	SKIP_WHERE_IT_CANNOT_HOLD();
	env = start_with(&o);
	REQUIRE(env);
	run_req(env, &req, &r);
	CHECK_RUN_OK(r);
	CHECK(!r.res.timed_out);
	CHECK(r.res.oom_killed);
	CHECK_INT(r.res.exit_code, 137);
	run_free(&r);
	sh(env, "echo alive", &r);
	CHECK_STR(r.out, "alive\n");
	run_free(&r);
	stop(env);
}

/* Wherever it holds, however it is done (a cgroup's OOM kill, or at
 * --isolation chroot without cgroups an RLIMIT_DATA that fails the
 * allocation): a command does not get more memory than the limit. */
TEST(memory_hog_does_not_get_more_than_the_limit)
{
	struct env_opts o = {.memory_bytes = 64LL << 20};
	struct environment *env = start_with(&o);
	const char *argv[] = {"sh", "-c", "tail /dev/zero; echo status $?", NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1, .timeout_sec = 60};
	struct run r;

	REQUIRE(env);
	run_req(env, &req, &r);
	CHECK_RUN_OK(r);
	CHECK(!r.res.timed_out);
	CHECK(strstr(r.out, "status 0") == NULL);
	run_free(&r);
	stop(env);
}

TEST(fork_bomb_is_contained_by_the_pids_limit)
{
	struct env_opts o = {.pids_limit = 64};
	struct environment *env;
	const char *argv[] = {"sh", "-c", "f() { f | f & }; f; sleep 30", NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1, .timeout_sec = 3};
	struct run r;

	SKIP_WHERE_IT_CANNOT_HOLD();
	env = start_with(&o);
	REQUIRE(env);
	run_req(env, &req, &r);
	CHECK_RUN_OK(r);
	CHECK(r.res.timed_out);
	run_free(&r);
	/* Everything it started dies with it. Under load the kills land over a few
	 * moments, and while the bomb held every pid even this check may not fork:
	 * ask again until the count is down (bounded). */
	for (int i = 0; i < 200; i++) {
		sh(env, "echo alive; ps -o pid | wc -l", &r);
		if (strstr(r.out, "alive\n") && atoi(strchr(r.out, '\n') + 1) < 10)
			break;
		run_free(&r);
		r.out = NULL;
		usleep(50000);
	}
	CHECK(r.out && strstr(r.out, "alive\n"));
	CHECK(r.out && atoi(strchr(r.out, '\n') + 1) < 10);
	run_free(&r);
	stop(env);
}

TEST(environments_have_files_of_their_own)
{
	struct environment *a = start();
	struct environment *b;
	struct run r;

	REQUIRE(a);
	b = start();
	REQUIRE(b);
	sh(a, "echo a > /app/mine; echo a > /tmp/mine; cat /app/mine", &r);
	CHECK_STR(r.out, "a\n");
	run_free(&r);
	sh(b, "cat /app/mine /tmp/mine 2>/dev/null || echo absent", &r);
	CHECK_STR(r.out, "absent\n");
	run_free(&r);
	stop(a);
	stop(b);
}

TEST(environments_cannot_see_each_others_processes)
{
	struct environment *a, *b;
	struct run r;

	SKIP_WHERE_IT_CANNOT_HOLD();
	a = start();
	REQUIRE(a);
	b = start();
	REQUIRE(b);
	/* a's background process (which outlives its exec) stays in a */
	sh(a, "sleep 99 >/dev/null 2>&1 &", &r);
	run_free(&r);
	{
		/* Running (busybox shows "{exe} sleep 99" until its exec is done). */
		_cleanup_free_ char *seen =
		    wait_for_output(a, "ps -o args | grep -c '^[s]leep 99' || true", "1\n");

		CHECK_STR(seen, "1\n");
	}
	sh(b, "ps -o args | grep -c '^[s]leep 99' || true", &r);
	CHECK_STR(r.out, "0\n");
	run_free(&r);
	stop(a);
	stop(b);
}

TEST(signals_from_inside_cannot_stop_the_environment)
{
	struct environment *env = start();
	struct run r;

	REQUIRE(env);
	/* An agent killing everything it can (its own shell included) */
	sh(env, "kill -TERM 1; kill -KILL 1; kill -HUP 1; kill -INT 1; kill -KILL -1; sleep 1", &r);
	run_free(&r);
	sh(env, "echo alive", &r);
	CHECK_STR(r.out, "alive\n");
	run_free(&r);
	stop(env);
}

TEST(open_list_and_keep)
{
	struct environment *env = start();
	struct environment *again = NULL;
	struct env_info *infos = NULL;
	size_t n = 0;
	bool listed = false;
	struct err err = {0};
	char name[64];
	struct run r;

	REQUIRE(env);
	snprintf(name, sizeof(name), "%s", env_name);
	REQUIRE(P->list(&infos, &n, &err) == 0);
	for (size_t i = 0; i < n; i++)
		listed |= strcmp(infos[i].name, name) == 0;
	env_info_free(infos, n);
	CHECK(listed);
	/* keep: stop(destroy=false) leaves it usable through open() */
	REQUIRE(env_stop(env, false, &err) == 0);
	REQUIRE(env_open(P, name, &again, &err) == 0);
	sh(again, "echo reopened", &r);
	CHECK_STR(r.out, "reopened\n");
	run_free(&r);
	REQUIRE(env_stop(again, true, &err) == 0);
	CHECK(env_open(P, name, &again, &err) < 0);
	listed = false;
	REQUIRE(P->list(&infos, &n, &err) == 0);
	for (size_t i = 0; i < n; i++)
		listed |= strcmp(infos[i].name, name) == 0;
	env_info_free(infos, n);
	CHECK(!listed);
}
