/* Sandbox-specific integration tests (the shared contract is in
 * provider_conformance.c): teardown leaves nothing on the host, an owner killed
 * by SIGKILL takes its environment down and gc removes the rest, kept
 * environments outlive their owner, the security state of commands, layers,
 * the hostile-agent suite, and the rootless mode (run as an unprivileged user
 * by test_sandbox.sh). Runs on explicit layers (SANDBOX_ITEST_ROOTFS, the
 * busybox fixture unpacked) through sandbox_start_layers, the store's seam. */
#include "harness.h"
#include "providers/provider.h"
#include "providers/sandbox/sandbox.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static const struct provider_ops *P;
static char env_name[64];

struct opts {
	bool internet;
	const char *workdir;      /* image WorkingDir (default /app) */
	const char *top_layer;    /* an extra layer above the fixture */
	const char *second_layer; /* and one above that */
	double cpus;              /* default 1 */
};

static const char *rootfs(void)
{
	const char *r = getenv("SANDBOX_ITEST_ROOTFS");

	if (!r)
		test_skip("SANDBOX_ITEST_ROOTFS not set (run through test_sandbox.sh)");
	return r;
}

static struct environment *start_opts(const struct opts *o)
{
	const char *layers[3];
	const char *env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	                     "IMAGE_VAR=from-image", NULL};
	struct sandbox_image img = {.ref = "itest/busybox", .layers = layers, .env = env};
	struct env_config cfg = {0};
	struct sandbox_env *e = NULL;
	struct err err = {0};
	static int counter;
	size_t n = 0;

	P = provider_find("sandbox");
	layers[n++] = rootfs();
	if (o->top_layer)
		layers[n++] = o->top_layer;
	if (o->second_layer)
		layers[n++] = o->second_layer;
	img.n_layers = n;
	img.workdir = o->workdir ? o->workdir : "/app";
	snprintf(env_name, sizeof(env_name), "sbx-%d-%d", (int)getpid(), counter++);
	cfg.env_name = env_name;
	cfg.job_name = "itest";
	cfg.task_name = "itest";
	cfg.docker_image = img.ref;
	cfg.cpus = o->cpus > 0 ? o->cpus : 1;
	cfg.memory_bytes = 256LL << 20;
	cfg.pids_limit = 256;
	cfg.allow_internet = o->internet;
	cfg.host_agent_dir = tdir("agent");
	cfg.host_verifier_dir = tdir("verifier");
	cfg.host_artifacts_dir = tdir("artifacts");
	if (sandbox_start_layers(&cfg, &img, &e, &err) < 0) {
		test_fail_at(__FILE__, __LINE__, "start: %s", err.msg);
		return NULL;
	}
	e->base.ops = P; /* as env_start() sets it */
	return &e->base;
}

static struct environment *start(void)
{
	struct opts o = {0};

	return start_opts(&o);
}

static void destroy(struct environment *e)
{
	struct err err = {0};

	if (e && env_stop(e, true, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "stop: %s", err.msg);
}

/* Runs sh -c SCRIPT (as user, NULL = image default); returns stdout (heap). */
static char *sh_user(struct environment *e, const char *user, const char *script, int *code)
{
	_cleanup_free_ char *o = path_join(test_tmpdir(), "out.txt");
	_cleanup_close_ int ofd = open(o, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	const char *argv[] = {"sh", "-c", script, NULL};
	struct exec_request req = {.argv = argv,
	                           .stdin_fd = -1,
	                           .timeout_sec = 60,
	                           .user = user,
	                           .stdout_fd = ofd,
	                           .stderr_fd = -1,
	                           .merge_stderr = true};
	struct exec_result res;
	struct err err = {0};
	char *out = NULL;
	size_t len;

	if (env_exec(e, &req, &res, &err) < 0) {
		test_fail_at(__FILE__, __LINE__, "exec: %s", err.msg);
		return xstrdup("");
	}
	if (code)
		*code = res.exit_code;
	if (read_file(o, 16 << 20, &out, &len, NULL) < 0)
		out = xstrdup("");
	return out;
}

static char *sh(struct environment *e, const char *script)
{
	return sh_user(e, NULL, script, NULL);
}

/* Host processes whose command line is exactly argv[0] argv[1]. */
static int count_processes(const char *a0, const char *a1)
{
	_cleanup_closedir_ DIR *d = opendir("/proc");
	struct dirent *de;
	size_t la = strlen(a0) + 1, lb = strlen(a1) + 1;
	int n = 0;

	while (d && (de = readdir(d))) {
		char path[300], buf[256];
		ssize_t r;
		int fd;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		r = read(fd, buf, sizeof(buf));
		close(fd);
		if (r == (ssize_t)(la + lb) && memcmp(buf, a0, la) == 0 &&
		    memcmp(buf + la, a1, lb) == 0)
			n++;
	}
	return n;
}

static bool host_mounts_mention(const char *needle)
{
	_cleanup_free_ char *mi = NULL;
	size_t len;

	return read_file("/proc/self/mountinfo", 4 << 20, &mi, &len, NULL) == 0 &&
	       strstr(mi, needle) != NULL;
}

static bool wait_until_gone(pid_t pid, unsigned long long start, double seconds)
{
	double end = mono_now() + seconds;

	while (mono_now() < end) {
		if (proc_start_time(pid) != start)
			return true;
		sleep_sec(0.02);
	}
	return proc_start_time(pid) != start;
}

/* A background process started by a command may not have exec'd yet. */
static int processes_appear(const char *a0, const char *a1, double seconds)
{
	double end = mono_now() + seconds;

	while (mono_now() < end && count_processes(a0, a1) == 0)
		sleep_sec(0.02);
	return count_processes(a0, a1);
}

static bool processes_gone(const char *a0, const char *a1, double seconds)
{
	double end = mono_now() + seconds;

	while (mono_now() < end && count_processes(a0, a1) > 0)
		sleep_sec(0.02);
	return count_processes(a0, a1) == 0;
}

static void require_root(void)
{
	P = provider_find("sandbox");
	if (geteuid() != 0)
		test_skip("needs root (the rootless cases run as an unprivileged user)");
}

/* ---- Teardown and leftovers ---- */

TEST(teardown_leaves_no_process_mount_cgroup_or_directory)
{
	struct environment *e;
	_cleanup_free_ char *home = sandbox_home(), *dir = NULL, *out = NULL;
	char *cgpaths[CG_MAX] = {0};
	int ncg;
	pid_t init;
	unsigned long long start_time;

	require_root();
	REQUIRE(!host_mounts_mention(home));
	e = start();
	REQUIRE(e);
	out = sh(e, "setsid sleep 1234.5 >/dev/null 2>&1 & sleep 2345.5 >/dev/null 2>&1 & "
	            "(sleep 3456.5 >/dev/null 2>&1 &); echo started");
	CHECK_STR(out, "started\n");
	init = sandbox_env_of(e)->init_pid;
	start_time = sandbox_env_of(e)->init_start;
	dir = xstrdup(sandbox_env_of(e)->dir);
	ncg = sandbox_env_of(e)->cg.n;
	for (int i = 0; i < ncg; i++)
		cgpaths[i] = xstrdup(sandbox_env_of(e)->cg.path[i]);
	CHECK(ncg >=
	      (sandbox_env_of(e)->cg.mode == CG_V1 ? 3 : 1)); /* v1: one per hierarchy; v2: one */
	for (int i = 0; i < ncg; i++)
		CHECK(path_is_dir(cgpaths[i]));
	CHECK(processes_appear("sleep", "1234.5", 5) == 1);
	CHECK(processes_appear("sleep", "3456.5", 5) == 1);
	CHECK(processes_appear("sleep", "2345.5", 5) == 1);
	/* The environment's mounts live in its own namespace only. */
	CHECK(!host_mounts_mention(home)); /* neither the overlay nor its mount point */

	destroy(e);
	CHECK(wait_until_gone(init, start_time, 1));
	CHECK(count_processes("sleep", "1234.5") == 0);
	CHECK(count_processes("sleep", "2345.5") == 0);
	CHECK(count_processes("sleep", "3456.5") == 0);
	for (int i = 0; i < ncg; i++) {
		CHECK(!path_exists(cgpaths[i]));
		free(cgpaths[i]);
	}
	CHECK(!path_exists(dir));
	CHECK(!host_mounts_mention(home));
	errno = 0;
	CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD); /* no zombie either */
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* A trial's worker that is sent Ctrl-C's SIGTERM while it tears down an
 * environment keeps waiting for the init: the signal (no SA_RESTART, like the
 * cancel handler) must not turn a finished trial's teardown into an error. */
TEST(teardown_is_not_cut_short_by_signals)
{
	struct sigaction sa = {.sa_handler = on_alarm}, old;
	struct itimerval tick = {{0, 200}, {0, 200}}, off = {{0, 0}, {0, 0}};
	struct environment *e;
	struct err err = {0};
	_cleanup_free_ char *out = NULL;
	pid_t init;
	unsigned long long start_time;
	int rc;

	require_root();
	e = start();
	REQUIRE(e);
	/* Many processes: the kernel takes a while reaping them after the init. */
	out = sh(e, "i=0; while [ $i -lt 150 ]; do sleep 4567.5 >/dev/null 2>&1 & "
	            "i=$((i+1)); done; echo started");
	CHECK_STR(out, "started\n");
	init = sandbox_env_of(e)->init_pid;
	start_time = sandbox_env_of(e)->init_start;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &old);
	setitimer(ITIMER_REAL, &tick, NULL);
	rc = env_stop(e, true, &err);
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	if (rc < 0)
		test_fail_at(__FILE__, __LINE__, "stop: %s", err.msg);
	CHECK(wait_until_gone(init, start_time, 1));
	CHECK(count_processes("sleep", "4567.5") == 0);
}

/* A frozen process cannot die: an exec cgroup left frozen (say the init was
 * killed between freezing and thawing it) must not hang the teardown. */
TEST(teardown_thaws_a_frozen_exec)
{
	struct environment *e;
	pid_t runner;
	_cleanup_free_ char *freezer = NULL, *dir = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int frozen = 0, st;
	double t0;

	require_root();
	e = start();
	REQUIRE(e);
	if (sandbox_env_of(e)->cg.mode != CG_V1 ||
	    !cg_has_controller(sandbox_env_of(e)->cg.ctrl[sandbox_env_of(e)->cg.exec_idx],
	                       "freezer")) {
		destroy(e);
		SKIP("needs the v1 freezer");
	}
	runner = fork();
	if (runner == 0) {
		struct environment *x = NULL;
		struct err err = {0};
		const char *argv[] = {"sleep", "8765.5", NULL};
		struct exec_request req = {.argv = argv, .stdin_fd = -1};
		struct exec_result res;

		if (env_open(P, env_name, &x, &err) < 0)
			_exit(1);
		_exit(env_exec(x, &req, &res, &err) < 0 ? 0 : 1); /* the init goes away */
	}
	REQUIRE(processes_appear("sleep", "8765.5", 5) == 1);
	freezer = xstrdup(sandbox_env_of(e)->cg.path[sandbox_env_of(e)->cg.exec_idx]);
	d = opendir(freezer);
	while (d && (de = readdir(d))) {
		_cleanup_free_ char *state = NULL;

		if (strncmp(de->d_name, "exec.", 5) != 0)
			continue;
		state = xasprintf("%s/%s/freezer.state", freezer, de->d_name);
		frozen += write_file(state, "FROZEN", 6, 0644, NULL) == 0;
	}
	CHECK(frozen >= 1);
	dir = xstrdup(sandbox_env_of(e)->dir);
	t0 = mono_now();
	destroy(e);
	CHECK(mono_now() - t0 < 10);
	CHECK(processes_gone("sleep", "8765.5", 5));
	CHECK(!path_exists(freezer));
	CHECK(!path_exists(dir));
	waitpid(runner, &st, 0);
}

/* The owner dies by SIGKILL: its environment's init notices and takes every
 * process with it; gc removes the cgroups and directories left behind. */
TEST(owner_killed_by_sigkill_then_gc_removes_the_rest)
{
	int fd[2];
	pid_t owner;
	char name[64];
	_cleanup_free_ char *envs = sandbox_envs_dir(), *dir = NULL;
	struct sandbox_env st = {0};
	struct err err = {0};
	int removed;

	require_root();
	REQUIRE(pipe(fd) == 0);
	owner = fork();
	if (owner == 0) {
		struct environment *e = start();
		_cleanup_free_ char *out = NULL;

		if (!e)
			_exit(1);
		out = sh(e, "setsid sleep 4567.5 >/dev/null 2>&1 & echo ok");
		if (write(fd[1], env_name, strlen(env_name) + 1) < 0)
			_exit(1);
		pause();
		_exit(0);
	}
	close(fd[1]);
	REQUIRE(read(fd[0], name, sizeof(name)) > 0);
	close(fd[0]);
	dir = path_join(envs, name);
	REQUIRE(state_load(dir, &st, &err) == 0);
	CHECK(state_init_alive(&st));
	CHECK(processes_appear("sleep", "4567.5", 5) == 1);
	kill(owner, SIGKILL);
	waitpid(owner, NULL, 0);

	CHECK(wait_until_gone(st.init_pid, st.init_start, 5));
	CHECK(processes_gone("sleep", "4567.5", 5));
	CHECK(path_is_dir(dir)); /* left behind until gc */
	removed = P->gc(&err);
	CHECK(removed >= 1);
	CHECK(!path_exists(dir));
	for (int i = 0; i < st.cg.n; i++)
		CHECK(!path_exists(st.cg.path[i]));
	cg_env_free(&st.cg);
}

TEST(kept_environment_outlives_its_owner_and_gc)
{
	pid_t owner;
	int fd[2], st;
	char name[64];
	struct environment *e = NULL;
	struct env_info *infos = NULL;
	struct err err = {0};
	size_t n = 0;
	bool kept = false;
	_cleanup_free_ char *out = NULL;

	require_root();
	REQUIRE(pipe(fd) == 0);
	owner = fork();
	if (owner == 0) {
		struct environment *x = start();
		struct err e2 = {0};

		if (!x || write(fd[1], env_name, strlen(env_name) + 1) < 0)
			_exit(1);
		_exit(env_stop(x, false, &e2) == 0 ? 0 : 1);
	}
	close(fd[1]);
	REQUIRE(read(fd[0], name, sizeof(name)) > 0);
	close(fd[0]);
	REQUIRE(waitpid(owner, &st, 0) == owner && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(P->gc(&err) >= 0);
	REQUIRE(env_open(P, name, &e, &err) == 0);
	out = sh(e, "echo still-here");
	CHECK_STR(out, "still-here\n");
	REQUIRE(P->list(&infos, &n, &err) == 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(infos[i].name, name) == 0)
			kept = strcmp(infos[i].state, "kept") == 0;
	env_info_free(infos, n);
	CHECK(kept);
	REQUIRE(env_stop(e, true, &err) == 0);
	CHECK(env_open(P, name, &e, &err) < 0);
}

/* rollout env exec: a different process drives the environment. */
TEST(exec_from_another_process)
{
	struct environment *e = start();
	int fd[2], st;
	pid_t pid;
	char buf[256] = "";
	_cleanup_free_ char *want = NULL;

	REQUIRE(e);
	REQUIRE(pipe(fd) == 0);
	pid = fork();
	if (pid == 0) {
		struct environment *x = NULL;
		struct err err = {0};
		_cleanup_free_ char *out = NULL;

		close(fd[0]);
		if (env_open(P, env_name, &x, &err) < 0)
			_exit(1);
		out = sh(x, "echo from-another-process; hostname; cat /etc/hostname");
		if (write(fd[1], out, strlen(out)) < 0)
			_exit(1);
		env_release(x);
		_exit(0);
	}
	close(fd[1]);
	REQUIRE(read_full(fd[0], buf, sizeof(buf) - 1) > 0);
	close(fd[0]);
	waitpid(pid, &st, 0);
	want = xasprintf("from-another-process\n%s\n%s\n", env_name, env_name);
	CHECK_STR(buf, want);
	destroy(e);
}

/* ctl.sock's path does not fit in sockaddr_un (108 bytes) under a long
 * ROLLOUT_HOME: it is bound and reached through /proc/self/fd/N/. */
TEST(long_rollout_home_paths_work)
{
	_cleanup_free_ char *home = NULL, *out = NULL;
	struct environment *e, *again = NULL;
	struct err err = {0};

	home = path_join(test_tmpdir(), "a-rather-long-directory-name-for-rollout-home/"
	                                "and-another-long-component-to-pass-108-bytes");
	REQUIRE(mkdir_p(home, 0755, NULL) == 0);
	setenv("ROLLOUT_HOME", home, 1);
	e = start();
	REQUIRE(e);
	CHECK(strlen(sandbox_env_of(e)->dir) + strlen("/ctl.sock") >= 108);
	REQUIRE(env_open(P, env_name, &again, &err) == 0);
	out = sh(again, "echo reached");
	CHECK_STR(out, "reached\n");
	env_release(again);
	destroy(e);
}

/* ---- What commands run under ---- */

TEST(commands_run_with_dockers_capabilities_no_new_privs_and_seccomp)
{
	struct environment *e = start();
	_cleanup_free_ char *root = NULL, *user = NULL;

	REQUIRE(e);
	root = sh(e, "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "
	             "/proc/self/status | tr -s '\\t' ' '");
	if (geteuid() == 0)
		CHECK_STR(root, "CapInh: 00000000a80425fb\nCapPrm: 00000000a80425fb\n"
		                "CapEff: 00000000a80425fb\nCapBnd: 00000000a80425fb\n"
		                "CapAmb: 0000000000000000\nNoNewPrivs: 1\nSeccomp: 2\n");
	user = sh_user(
	    e, "1000:1000",
	    "grep -E '^(CapInh|CapPrm|CapEff|CapAmb):' /proc/self/status | tr -s '\\t' ' '", NULL);
	CHECK_STR(user, "CapInh: 0000000000000000\nCapPrm: 0000000000000000\n"
	                "CapEff: 0000000000000000\nCapAmb: 0000000000000000\n");
	destroy(e);
}

TEST(pid1_is_rollouts_init_and_out_of_reach)
{
	struct environment *e = start();
	_cleanup_free_ char *a = NULL, *b = NULL;

	REQUIRE(e);
	a = sh(e, "tr '\\0' ' ' </proc/1/cmdline | tr -s ' '; echo; cat /proc/1/environ >/dev/null "
	          "2>&1 || "
	          "echo environ-denied; kill -9 1; sleep 0.1; echo alive");
	CHECK_STR(a, "rollout-init \nenviron-denied\nalive\n");
	b = sh(e, "cat /proc/kcore 2>/dev/null | wc -c; (echo x >/proc/sys/kernel/domainname) "
	          "2>/dev/null || echo ro;"
	          "touch /sys/x 2>/dev/null || echo sys-ro");
	CHECK_STR(b, "0\nro\nsys-ro\n");
	destroy(e);
}

TEST(dev_etc_and_network_files)
{
	struct environment *e = start();
	_cleanup_free_ char *dev = NULL, *etc = NULL, *want = NULL, *net = NULL;

	REQUIRE(e);
	dev = sh(e, "ls /dev | tr '\\n' ' '; echo; head -c 5 /dev/urandom | wc -c; "
	            "echo hi >/dev/null && echo null-ok; test -c /dev/pts/ptmx && echo ptmx");
	CHECK_STR(dev, "core fd full mqueue null ptmx pts random shm stderr stdin stdout tty "
	               "urandom zero \n5\nnull-ok\nptmx\n");
	free(dev);
	/* /dev and / are nodev: a node the agent makes opens nothing (cgroup v2 has
	 * no device controller to refuse it), /dev/null (a bind of the host's) does. */
	dev =
	    sh(e, "mknod /dev/n2 c 1 3 && mknod /tmp/n3 c 1 3 && echo made; "
	          "echo x 2>/dev/null >/dev/n2 || echo dev-denied; "
	          "echo x 2>/dev/null >/tmp/n3 || echo root-denied; echo x >/dev/null && echo ok");
	CHECK_STR(dev, "made\ndev-denied\nroot-denied\nok\n");
	etc = sh(e, "cat /etc/hostname; grep -c localhost /etc/hosts; grep nameserver "
	            "/etc/resolv.conf; echo '10.0.0.1 extra' >>/etc/hosts && tail -1 /etc/hosts");
	want = xasprintf("%s\n2\nnameserver 127.0.0.1\n10.0.0.1 extra\n", env_name);
	CHECK_STR(etc, want);
	net = sh(e, "cat /sys/class/net/lo/operstate /sys/class/net/lo/flags; ls /sys/class/net");
	CHECK_CONTAINS(net, "0x9\nlo\n"); /* IFF_UP|IFF_LOOPBACK, nothing else */
	destroy(e);
}

TEST(image_env_workdir_and_missing_workdir_created)
{
	struct opts o = {.workdir = "/does/not/exist/yet"};
	struct environment *e = start_opts(&o);
	_cleanup_free_ char *out = NULL;

	REQUIRE(e);
	out = sh(e, "pwd; echo $IMAGE_VAR; echo $HOME; echo $HOSTNAME | grep -c sbx-");
	CHECK_STR(out, "/does/not/exist/yet\nfrom-image\n/root\n1\n");
	destroy(e);
}

TEST(layers_stack_in_order_and_stay_untouched)
{
	_cleanup_free_ char *l1 = path_join(test_tmpdir(), "layer1");
	_cleanup_free_ char *l2 = path_join(test_tmpdir(), "layer2");
	_cleanup_free_ char *f1 = NULL, *f2 = NULL, *g = NULL, *out = NULL, *after = NULL;
	struct opts o = {0};
	struct environment *e;
	size_t len;

	f1 = path_join(l1, "etc/issue");
	f2 = path_join(l2, "etc/issue");
	g = path_join(l1, "app/only-in-1");
	mkdir_p(path_join(l1, "etc"), 0755, NULL);
	mkdir_p(path_join(l1, "app"), 0755, NULL);
	mkdir_p(path_join(l2, "etc"), 0755, NULL);
	write_file(f1, "one\n", 4, 0644, NULL);
	write_file(g, "1\n", 2, 0644, NULL);
	write_file(f2, "two\n", 4, 0644, NULL);
	chmod(test_tmpdir(), 0755);
	o.top_layer = l1;
	o.second_layer = l2;
	e = start_opts(&o);
	REQUIRE(e);
	out = sh(e, "cat /etc/issue /app/only-in-1; echo changed >/etc/issue; rm /app/only-in-1; "
	            "cat /etc/issue; ls /app");
	CHECK_STR(out, "two\n1\nchanged\n");
	destroy(e);
	REQUIRE(read_file(f2, 100, &after, &len, NULL) == 0);
	CHECK_STR(after, "two\n");
	CHECK(path_exists(g));
}

TEST(background_process_outlives_its_exec_until_destroy)
{
	struct environment *e = start();
	_cleanup_free_ char *a = NULL, *b = NULL;

	REQUIRE(e);
	a = sh(e, "sleep 5678.5 >/dev/null 2>&1 & echo started");
	CHECK_STR(a, "started\n");
	b = sh(e, "for i in 1 2 3 4 5 6 7 8 9 10; do ps -o args | grep -q '^sleep 5678.5' && break;"
	          " sleep 0.1; done; ps -o args | grep -c '^sleep 5678.5'");
	CHECK_STR(b, "1\n");
	destroy(e);
	CHECK(processes_gone("sleep", "5678.5", 2));
}

TEST(output_without_files_is_counted)
{
	struct environment *e = start();
	const char *argv[] = {"sh", "-c", "head -c 123456 /dev/zero; head -c 789 /dev/zero >&2",
	                      NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1, .output_cap = 1000};
	struct exec_result res;
	struct err err = {0};

	REQUIRE(e);
	REQUIRE(env_exec(e, &req, &res, &err) == 0);
	CHECK_INT(res.stdout_bytes, 123456);
	CHECK_INT(res.stderr_bytes, 789);
	CHECK(!res.stdout_truncated); /* nothing was written, so nothing was cut */
	destroy(e);
}

TEST(exec_errors_are_reported)
{
	struct environment *e = start();
	const char *argv[] = {"pwd", NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1, .user = "nosuchuser"};
	struct exec_result res;
	struct err err = {0};
	int code = 0;
	_cleanup_free_ char *out = NULL;

	REQUIRE(e);
	CHECK(env_exec(e, &req, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "nosuchuser");
	req.user = NULL;
	req.cwd = "/no/such/dir";
	REQUIRE(env_exec(e, &req, &res, &err) == 0);
	CHECK_INT(res.exit_code, 126);
	out = sh_user(e, NULL, "exit 3", &code);
	CHECK_INT(code, 3);
	destroy(e);
}

/* ---- Limits ---- */

/* Sum of utime + stime (clock ticks) of the host processes whose last
 * argument is `marker`, and how many there are. Read from the host's /proc: a
 * scan inside would fork a few programs per process (slow under
 * user-mode-linux). */
static long long cpu_ticks_of(const char *marker, int *count)
{
	_cleanup_closedir_ DIR *d = opendir("/proc");
	struct dirent *de;
	long long ticks = 0;
	int n = 0;

	while (d && (de = readdir(d))) {
		_cleanup_free_ char *cmd = NULL, *stat = NULL;
		char path[300], *p;
		unsigned long long ut, st;
		size_t len;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		if (read_file(path, 4096, &cmd, &len, NULL) < 0 || len < 2 || cmd[len - 1] != '\0')
			continue;
		for (p = cmd + len - 2; p > cmd && p[-1]; p--)
			;
		if (strcmp(p, marker) != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if (read_file(path, 4096, &stat, &len, NULL) < 0 || !(p = strrchr(stat, ')')) ||
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
		           &st) != 2)
			continue;
		ticks += (long long)(ut + st);
		n++;
	}
	*count = n;
	return ticks;
}

static long long cpu_stat(struct environment *e, const char *key)
{
	_cleanup_free_ char *text = NULL;
	size_t len;

	for (int i = 0; i < sandbox_env_of(e)->cg.n; i++) {
		_cleanup_free_ char *p = NULL;

		if (sandbox_env_of(e)->cg.mode == CG_V1 &&
		    !cg_has_controller(sandbox_env_of(e)->cg.ctrl[i], "cpu"))
			continue;
		p = path_join(sandbox_env_of(e)->cg.path[i], "cpu.stat");
		if (read_file(p, 65536, &text, &len, NULL) == 0)
			return cg_keyed_value(text, key);
	}
	return -1;
}

/* cpus = 0.1: 10 ms of CPU per 100 ms period for the whole environment. Two
 * busy loops run until the kernel has throttled the environment's cgroup a few
 * more times (conditions, polled: the loops exist, then the throttling); what
 * they used is then within the quota of the periods counted, give or take a
 * period and the 5 ms slices in flight. Kernel counters on both sides, no wall
 * clock: load can only lower the usage. Unlimited, the loops would take a CPU
 * each. */
TEST(cpu_limit_holds_the_quota)
{
	struct opts o = {.cpus = 0.1};
	struct environment *e;
	_cleanup_free_ char *out = NULL;
	long long base = -1, throttled = -1, periods, ticks, used_us, hz = sysconf(_SC_CLK_TCK);
	int loops = 0;
	double end;
	struct err err = {0};

	e = start_opts(&o);
	REQUIRE(e);
	if (sandbox_env_of(e)->cg.mode == CG_NONE) {
		destroy(e);
		SKIP("no cgroups (an ordinary user on cgroup v1)");
	}
	out = sh(e, "for i in 1 2; do sh -c 'while :; do :; done' cpuhog >/dev/null 2>&1 & done; "
	            "echo started");
	CHECK_STR(out, "started\n");
	for (end = mono_now() + 60; mono_now() < end; sleep_sec(0.05)) {
		if (base < 0 && (cpu_ticks_of("cpuhog", &loops), loops == 2))
			base = cpu_stat(e, "nr_throttled");
		if (base >= 0 && (throttled = cpu_stat(e, "nr_throttled")) >= base + 5)
			break;
	}
	ticks = cpu_ticks_of("cpuhog", &loops);
	periods = cpu_stat(e, "nr_periods");
	CHECK(env_kill_all(e, &err) >= 2);
	CHECK_INT(loops, 2);
	CHECK(base >= 0 && throttled >= base + 5);
	REQUIRE(periods > 0 && hz > 0);
	used_us = ticks * 1000000 / hz;
	if (used_us > (periods + 1) * 10000 + 2 * 5000 + 2 * 1000000 / hz)
		test_fail_at(__FILE__, __LINE__, "the loops used %lld us in %lld periods of 10 ms",
		             used_us, periods);
	destroy(e);
}

/* ---- The hostile-agent suite (testdata/hostile) ---- */

static char *slurp(const char *path)
{
	char *s = NULL;
	size_t len;

	if (read_file(path, 1 << 20, &s, &len, NULL) < 0)
		return xstrdup("");
	return s;
}

/* The names of the loaded modules, one a line: /proc/modules without the use
 * counts and addresses (where overlay is a module, the environment's own
 * mounts count as its users). */
static char *module_names(void)
{
	_cleanup_free_ char *all = slurp("/proc/modules");
	char *names = xstrdup(""), *l, *next;

	for (l = all; l && *l; l = next) {
		char *tmp;

		next = strchr(l, '\n');
		if (next)
			*next++ = '\0';
		tmp = xasprintf("%s%.*s\n", names, (int)strcspn(l, " "), l);
		free(names);
		names = tmp;
	}
	return names;
}

TEST(hostile_agent_is_denied_and_the_host_unchanged)
{
	_cleanup_free_ char *suite = path_join(test_srcdir(), "testdata/hostile");
	_cleanup_free_ char *secret = xasprintf("/tmp/rollout-hostile-secret-%d", (int)getpid());
	_cleanup_free_ char *escape = xasprintf("/tmp/rollout-hostile-escape-%d", (int)getpid());
	_cleanup_free_ char *modules0 = module_names(), *hostname0 = slurp("/etc/hostname");
	_cleanup_free_ char *core0 = slurp("/proc/sys/kernel/core_pattern");
	_cleanup_free_ char *out = NULL, *modules1 = NULL, *core1 = NULL, *hostname1 = NULL;
	_cleanup_free_ char *got = NULL, *back = NULL, *alive = NULL, *payload = NULL;
	char host_shadow_head[64] = "";
	struct environment *e;
	struct err err = {0};
	struct stat st;
	size_t len;
	int code = -1, denied = 0;

	require_root();
	REQUIRE(write_file(secret, "HOSTSECRET-4711", 15, 0600, NULL) == 0);
	e = start();
	REQUIRE(e);
	REQUIRE(env_upload_path(e, suite, "/hostile", 0, &err) == 0);
	out = sh_user(e, NULL, "sh /hostile/run-all.sh", &code);
	for (char *l = out; l && *l;) {
		char *nl = strchr(l, '\n');

		if (strncmp(l, "DENIED ", 7) == 0)
			denied++;
		if (strncmp(l, "ALLOWED ", 8) == 0)
			test_fail_at(__FILE__, __LINE__, "%.*s",
			             nl ? (int)(nl - l) : (int)strlen(l), l);
		l = nl ? nl + 1 : NULL;
	}
	CHECK_INT(code, 0);
	CHECK(denied >= 10);
	CHECK_CONTAINS(out, "PLANTED logs-symlink");
	CHECK_CONTAINS(out, "hostile: 0 allowed");
	CHECK(!strstr(out, "HOSTSECRET"));

	/* The host did not change. */
	modules1 = module_names();
	core1 = slurp("/proc/sys/kernel/core_pattern");
	hostname1 = slurp("/etc/hostname");
	CHECK_STR(modules1, modules0);
	CHECK_STR(core1, core0);
	CHECK_STR(hostname1, hostname0);
	alive = sh(e, "echo alive; cut -d' ' -f2 /proc/1/stat");
	CHECK_STR(alive, "alive\n(rollout-init)\n");

	/* The links planted in /logs/agent are links on the host, never followed
	 * by the provider: a download of the directory leaves out those that point
	 * out of it (a link kept on the host would point at the host's files). */
	{
		_cleanup_free_ char *l = path_join(tdir("agent"), "shadow-link");
		_cleanup_free_ char *copy = path_join(test_tmpdir(), "agent-copy");
		_cleanup_free_ char *copied = path_join(copy, "host-root");
		_cleanup_free_ char *dl = path_join(test_tmpdir(), "shadow-dl");
		_cleanup_free_ char *hard = path_join(tdir("agent"), "hard-passwd");

		REQUIRE(lstat(l, &st) == 0);
		CHECK(S_ISLNK(st.st_mode));
		CHECK(!path_exists(hard));
		REQUIRE(env_download_path(e, "/logs/agent", copy, &err) == 0);
		CHECK(lstat(copied, &st) < 0 && errno == ENOENT);
		CHECK(path_is_dir(copy));
		/* /logs/agent/shadow-link resolves inside the environment (no shadow there) */
		CHECK(env_download_path(e, "/logs/agent/shadow-link", dl, &err) < 0);
		CHECK(!path_exists(dl));
	}
	/* .. in uploaded and downloaded paths stays inside the root. */
	payload = path_join(test_tmpdir(), "payload");
	REQUIRE(write_file(payload, "payload", 7, 0644, NULL) == 0);
	unlink(escape);
	{
		_cleanup_free_ char *up = xasprintf("../../../../../..%s", escape);
		_cleanup_free_ char *down = path_join(test_tmpdir(), "down");
		_cleanup_free_ char *leak = path_join(test_tmpdir(), "leak");

		_cleanup_free_ char *cat = xasprintf("cat %s", escape);
		_cleanup_free_ char *up_secret = xasprintf("../../../..%s", secret);

		env_upload_path(e, payload, up, 0, &err);
		CHECK(!path_exists(escape));
		got = sh(e, cat);
		CHECK_STR(got, "payload"); /* it landed inside, at the clamped path */
		REQUIRE(env_download_path(e, "../../../../../../etc/hostname", down, &err) == 0);
		back = slurp(down);
		CHECK(strstr(back, env_name) != NULL); /* the environment's, not the host's */
		CHECK(env_download_path(e, up_secret, leak, &err) < 0);
		CHECK(!path_exists(leak));
	}
	{
		int fd = open("/etc/shadow", O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			(void)!read(fd, host_shadow_head, sizeof(host_shadow_head) - 1);
			close(fd);
		}
		CHECK(!*host_shadow_head || !strstr(out, host_shadow_head));
	}
	destroy(e);
	unlink(secret);
	unlink(escape);
	(void)len;
}

/* ---- Rootless (test_sandbox.sh runs these as an unprivileged user) ---- */

static void require_rootless(void)
{
	P = provider_find("sandbox");
	if (geteuid() == 0)
		test_skip("runs as an unprivileged user (test_sandbox.sh)");
}

/* SANDBOX_ITEST_SUBIDS=1|0: test_sandbox.sh says whether this user has
 * subordinate ids through newuidmap, so that neither mode silently stands in
 * for the other. Unset: either. SANDBOX_ITEST_CGROUP=v2: the caller's cgroup
 * was delegated to it (test_cgroup_v2.sh), so the limits apply. */
static void check_rootless_mode(struct environment *e)
{
	const char *want = getenv("SANDBOX_ITEST_SUBIDS");
	const char *cg = getenv("SANDBOX_ITEST_CGROUP");

	if (want && *want)
		CHECK_INT(sandbox_env_of(e)->subids, atoi(want) != 0);
	if (cg && strcmp(cg, "v2") == 0) {
		_cleanup_free_ char *lim = sh(
		    e,
		    "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max");

		CHECK_INT(sandbox_env_of(e)->cg.mode, CG_V2);
		CHECK_STR(lim, "268435456\n256\n100000 100000\n");
	} else if (cg_host_get()->mode != CG_V2) {
		CHECK_INT(sandbox_env_of(e)->cg.mode,
		          CG_NONE); /* v1 cannot be delegated: no limits, said once */
	}
}

TEST(rootless_environment_maps_the_caller_to_root)
{
	struct environment *e;
	_cleanup_free_ char *out = NULL, *f = NULL;
	struct stat st;

	require_rootless();
	e = start();
	REQUIRE(e);
	CHECK(sandbox_env_of(e)->rootless);
	check_rootless_mode(e);
	out = sh(e, "id -u; id -g; cat /proc/self/uid_map | tr -s ' '; echo hi >/logs/agent/r.txt; "
	            "hostname; touch /app/new && echo writable");
	CHECK_CONTAINS(out, "0\n0\n 0 ");
	CHECK_CONTAINS(out, "writable\n");
	if (!sandbox_env_of(e)->subids) {
		/* One id each: nobody else exists, so nobody else can run. */
		int code = -1;
		_cleanup_free_ char *maps =
		    sh(e, "wc -l </proc/self/uid_map; cat /proc/self/setgroups");
		_cleanup_free_ char *other = sh_user(e, "nobody", "id -u", &code);

		CHECK_STR(maps, "1\ndeny\n");
		CHECK_INT(code, 126);
	}
	f = path_join(tdir("agent"), "r.txt");
	REQUIRE(stat(f, &st) == 0);
	CHECK_INT(st.st_uid, getuid()); /* root inside is the caller outside */
	destroy(e);
}

TEST(rootless_timeout_kills_everything_it_started)
{
	struct environment *e;
	const char *argv[] = {
	    "sh", "-c",
	    "setsid sleep 6789.5 >/dev/null 2>&1 & (sleep 6790.5 >/dev/null 2>&1 &);"
	    " sleep 6791.5",
	    NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1, .timeout_sec = 1};
	struct exec_result res;
	struct err err = {0};
	_cleanup_free_ char *out = NULL;

	require_rootless();
	e = start();
	REQUIRE(e);
	REQUIRE(env_exec(e, &req, &res, &err) == 0);
	CHECK(res.timed_out);
	CHECK(processes_gone("sleep", "6789.5", 2));
	CHECK(processes_gone("sleep", "6790.5", 2));
	out = sh(e, "echo usable");
	CHECK_STR(out, "usable\n");
	destroy(e);
}

TEST(rootless_teardown_leaves_nothing)
{
	struct environment *e;
	_cleanup_free_ char *dir = NULL, *out = NULL;
	pid_t init;
	unsigned long long start_time;

	require_rootless();
	e = start();
	REQUIRE(e);
	out = sh(e, "sleep 7890.5 >/dev/null 2>&1 & echo ok");
	init = sandbox_env_of(e)->init_pid;
	start_time = sandbox_env_of(e)->init_start;
	dir = xstrdup(sandbox_env_of(e)->dir);
	destroy(e);
	CHECK(proc_start_time(init) != start_time);
	CHECK(processes_gone("sleep", "7890.5", 2));
	CHECK(!path_exists(dir));
}

/* With newuidmap and a subordinate range (test_sandbox.sh sets one up), the
 * image's other users exist, and what they leave in the upper layer is removed
 * from inside a user namespace at teardown. */
TEST(rootless_subordinate_ids_map_other_users)
{
	struct environment *e;
	_cleanup_free_ char *who = NULL, *made = NULL, *maps = NULL, *dir = NULL;

	require_rootless();
	e = start();
	REQUIRE(e);
	check_rootless_mode(e);
	if (!sandbox_env_of(e)->subids) {
		destroy(e);
		SKIP("no subordinate id range for this user (newuidmap, /etc/subuid)");
	}
	maps = sh(e, "wc -l </proc/self/uid_map; wc -l </proc/self/gid_map");
	CHECK_STR(maps, "2\n2\n");
	who = sh_user(e, "nobody", "id -u; id -g", NULL);
	CHECK_STR(who, "65534\n65534\n");
	made = sh(e, "mkdir -p /app/private && touch /app/private/f && chown -R 1000:1000 "
	             "/app/private && chmod 700 /app/private && echo made");
	CHECK_STR(made, "made\n");
	dir = xstrdup(sandbox_env_of(e)->dir);
	destroy(e);
	CHECK(!path_exists(dir));
}
