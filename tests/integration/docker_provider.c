/* Docker-specific behaviour of the docker provider against a real daemon: image
 * builds (.dockerignore, reuse, force_build, failures, one build at a time),
 * container settings, cleanup, gc of orphans, keep, and the errors users meet.
 * Run by test_docker_provider.sh (dockerd running, rollout-test/busybox:1
 * imported, ROLLOUT_HOME a temp dir). Everything it creates is labelled
 * rollout.job=docker-itest and removed. */
#include "harness.h"
#include "providers/docker/api.h"
#include "providers/docker/docker.h"
#include "providers/provider.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define JOB "docker-itest"
#define BASE_IMAGE "rollout-test/busybox:1"

static const struct provider_ops *P;
static const char *sh_dir; /* where sh() captures output; test_tmpdir() when NULL */

static void base_config(struct env_config *cfg, const char *name)
{
	static char env_name[128];

	memset(cfg, 0, sizeof(*cfg));
	snprintf(env_name, sizeof(env_name), "ditest-%s-%d", name, (int)getpid());
	cfg->env_name = env_name;
	cfg->job_name = JOB;
	cfg->task_name = env_name;
	cfg->docker_image = BASE_IMAGE;
	cfg->build_timeout_sec = 300;
	cfg->host_agent_dir = tdir("agent");
	cfg->host_verifier_dir = tdir("verifier");
	cfg->host_artifacts_dir = tdir("artifacts");
}

static struct environment *start_cfg(const struct env_config *cfg, struct err *err)
{
	struct environment *env = NULL;

	P = provider_find("docker");
	if (env_start(P, cfg, &env, err) < 0)
		return NULL;
	return env;
}

static void stop(struct environment *env)
{
	struct err err = {0};

	if (env && env_stop(env, true, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "stop: %s", err.msg);
}

/* Run a shell script; returns its stdout (heap) and sets *code. */
static char *sh(struct environment *env, const char *script, int *code)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	_cleanup_free_ char *o = path_join(sh_dir ? sh_dir : test_tmpdir(), "out.txt");
	_cleanup_close_ int ofd = open(o, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	struct exec_request req = {
	    .argv = argv, .stdin_fd = -1, .timeout_sec = 60, .stdout_fd = ofd, .stderr_fd = -1};
	struct exec_result res;
	struct err err = {0};
	char *out = NULL;
	size_t len;

	if (env_exec(env, &req, &res, &err) < 0) {
		test_fail_at(__FILE__, __LINE__, "exec: %s", err.msg);
		*code = -1;
		return xstrdup("");
	}
	*code = res.exit_code;
	if (read_file(o, 1 << 20, &out, &len, NULL) < 0)
		out = xstrdup("");
	return out;
}

static struct docker_client *client(void)
{
	struct docker_client *c = NULL;
	struct err err = {0};

	if (docker_client_open(&c, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "client: %s", err.msg);
	return c;
}

/* Containers carrying label=value (all states). */
static int count_containers(const char *label)
{
	_cleanup_docker_client_ struct docker_client *c = client();
	_cleanup_free_ char *f = xasprintf("{\"label\":[\"%s\"]}", label);
	_cleanup_free_ char *q = http_query_escape(f);
	_cleanup_free_ char *path = NULL;
	_cleanup_json_ cJSON *v = NULL;
	struct err err = {0};

	if (!c)
		return -1;
	path = docker_path(c, "/containers/json?all=1&filters=%s", q);
	if (docker_call(c, "GET", path, NULL, &v, NULL, &err) < 0)
		return -1;
	return cJSON_GetArraySize(v);
}

static cJSON *inspect_container_named(const char *env_name)
{
	_cleanup_docker_client_ struct docker_client *c = client();
	_cleanup_free_ char *path = NULL;
	cJSON *v = NULL;
	struct err err = {0};

	if (!c)
		return NULL;
	path = docker_path(c, "/containers/%s/json", env_name);
	if (docker_call(c, "GET", path, NULL, &v, NULL, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "inspect %s: %s", env_name, err.msg);
	return v;
}

static void remove_image(const char *ref)
{
	_cleanup_docker_client_ struct docker_client *c = client();
	_cleanup_free_ char *path = NULL;
	struct err err = {0};

	if (!c)
		return;
	path = docker_path(c, "/images/%s?force=1", ref);
	docker_call(c, "DELETE", path, NULL, NULL, NULL, &err);
}

static void write_text(const char *dir, const char *name, const char *text, mode_t mode)
{
	_cleanup_free_ char *p = path_join(dir, name);
	_cleanup_free_ char *parent = xstrdup(p);

	*strrchr(parent, '/') = '\0';
	mkdir_p(parent, 0755, NULL);
	if (write_file(p, text, strlen(text), mode, NULL) < 0)
		test_fail_at(__FILE__, __LINE__, "write %s", p);
	chmod(p, mode);
}

static size_t count_substr(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static char *read_text(const char *path)
{
	char *s = NULL;
	size_t len;

	if (read_file(path, 16 << 20, &s, &len, NULL) < 0)
		return xstrdup("");
	return s;
}

/* ---- images -------------------------------------------------------------------- */

static void make_context(const char *dir, const char *run)
{
	_cleanup_free_ char *df = xasprintf("FROM " BASE_IMAGE "\n"
	                                    "COPY . /ctx/\n"
	                                    "RUN %s\n"
	                                    "WORKDIR /ctx\n",
	                                    run);

	write_text(dir, "Dockerfile", df, 0644);
	(void)df;
	write_text(dir, ".dockerignore", "secret*\n**/*.tmp\nnode_modules\nlogs\n!logs/keep.log\n",
	           0644);
	write_text(dir, "app.sh", "#!/bin/sh\necho app\n", 0750);
	write_text(dir, "secret.key", "nope", 0600);
	write_text(dir, "sub/deep/x.tmp", "tmp", 0644);
	write_text(dir, "sub/deep/data.txt", "data", 0640);
	write_text(dir, "node_modules/pkg/index.js", "js", 0644);
	write_text(dir, "logs/drop.log", "drop", 0644);
	write_text(dir, "logs/keep.log", "keep", 0644);
}

static void check_build(const char *builder)
{
	struct env_config cfg;
	_cleanup_free_ char *ctx = path_join(test_tmpdir(), "environment");
	_cleanup_free_ char *log = path_join(test_tmpdir(), "build.log");
	_cleanup_free_ char *out = NULL, *text = NULL, *image = NULL, *run = NULL;
	struct environment *env;
	struct err err = {0};
	int code;

	setenv("ROLLOUT_DOCKER_BUILDER", builder, 1);
	base_config(&cfg, builder[0] == '1' ? "build-legacy" : "build-kit");
	cfg.docker_image = NULL;
	cfg.environment_dir = ctx;
	cfg.build_log_path = log;
	/* A nonce: BuildKit's cache outlives the images of earlier runs. */
	run = xasprintf("echo built-marker-$((6*7)) %d-%.0f; ls /ctx > /listing", (int)getpid(),
	                wall_now() * 1000);
	make_context(ctx, run);
	env = start_cfg(&cfg, &err);
	if (!env) {
		test_fail_at(__FILE__, __LINE__, "start: %s", err.msg);
		return;
	}
	image = xstrdup(docker_env_of(env)->image);
	CHECK(str_starts_with(image, "rollout/ditest-build-"));
	out = sh(env,
	         "pwd; tr '\\n' ' ' < /listing; echo; stat -c '%a' app.sh sub/deep/data.txt; "
	         "ls sub/deep logs | tr '\\n' ' '",
	         &code);
	CHECK_INT(code, 0);
	/* excluded: secret*, *.tmp at any depth, node_modules, logs except keep.log */
	CHECK_STR(out, "/ctx\nDockerfile app.sh logs sub \n750\n640\nlogs: keep.log  sub/deep: "
	               "data.txt ");
	text = read_text(log);
	CHECK_CONTAINS(text, "built-marker-42");
	CHECK_CONTAINS(text, builder[0] == '1' ? "builder legacy" : "builder BuildKit");
	stop(env);
	remove_image(image);
}

TEST(build_legacy_honours_dockerignore_and_logs_output)
{
	check_build("1");
}

TEST(build_buildkit_honours_dockerignore_and_logs_output)
{
	check_build("2");
}

static int count_builds(const char *log)
{
	_cleanup_free_ char *text = read_text(log);

	return (int)count_substr(text, "rollout: building ");
}

TEST(build_is_reused_until_the_content_changes_and_force_build_rebuilds)
{
	struct env_config cfg;
	_cleanup_free_ char *ctx = path_join(test_tmpdir(), "environment");
	_cleanup_free_ char *log = path_join(test_tmpdir(), "build.log");
	_cleanup_free_ char *first = NULL, *second = NULL;
	_cleanup_free_ char *app = NULL;
	struct environment *env;
	struct err err = {0};

	base_config(&cfg, "reuse");
	cfg.docker_image = NULL;
	cfg.environment_dir = ctx;
	cfg.build_log_path = log;
	make_context(ctx, "true");
	env = start_cfg(&cfg, &err);
	REQUIRE(env);
	first = xstrdup(docker_env_of(env)->image);
	stop(env);
	CHECK_INT(count_builds(log), 1);

	/* Same content (only times changed): the same image, no build. */
	app = path_join(ctx, "app.sh");
	utimes(app, NULL);
	env = start_cfg(&cfg, &err);
	REQUIRE(env);
	CHECK_STR(docker_env_of(env)->image, first);
	stop(env);
	CHECK_INT(count_builds(log), 1);

	/* force_build: built again, once per process (a new process here), same tag. */
	cfg.force_build = true;
	{
		pid_t pid = fork();
		int status;

		REQUIRE(pid >= 0);
		if (pid == 0) {
			for (int i = 0; i < 2; i++) {
				env = start_cfg(&cfg, &err);
				if (!env || strcmp(docker_env_of(env)->image, first) != 0)
					_exit(1);
				stop(env);
			}
			_exit(0);
		}
		waitpid(pid, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	CHECK_INT(count_builds(log), 2);
	cfg.force_build = false;

	/* Changed content, or a mode change: a new image. */
	write_text(ctx, "app.sh", "#!/bin/sh\necho changed\n", 0750);
	env = start_cfg(&cfg, &err);
	REQUIRE(env);
	second = xstrdup(docker_env_of(env)->image);
	CHECK(strcmp(first, second) != 0);
	stop(env);
	CHECK_INT(count_builds(log), 3);

	/* A file excluded by .dockerignore does not count. */
	write_text(ctx, "secret.key", "changed secret", 0600);
	env = start_cfg(&cfg, &err);
	REQUIRE(env);
	CHECK_STR(docker_env_of(env)->image, second);
	stop(env);

	/* docker_image wins over the Dockerfile unless force_build. */
	cfg.docker_image = BASE_IMAGE;
	env = start_cfg(&cfg, &err);
	REQUIRE(env);
	CHECK_STR(docker_env_of(env)->image, BASE_IMAGE);
	stop(env);
	CHECK_INT(count_builds(log), 3);
	remove_image(first);
	remove_image(second);
}

static void check_build_failure(const char *builder, const char *want)
{
	struct env_config cfg;
	_cleanup_free_ char *ctx = path_join(test_tmpdir(), "environment");
	_cleanup_free_ char *log = path_join(test_tmpdir(), "build.log");
	_cleanup_free_ char *label = NULL;
	struct err err = {0};

	setenv("ROLLOUT_DOCKER_BUILDER", builder, 1);
	base_config(&cfg, builder[0] == '1' ? "fail-legacy" : "fail-kit");
	cfg.docker_image = NULL;
	cfg.environment_dir = ctx;
	cfg.build_log_path = log;
	write_text(ctx, "Dockerfile",
	           "FROM " BASE_IMAGE "\nRUN echo step-one\nRUN echo before-the-failure; exit 3\n"
	           "RUN echo never\n",
	           0644);
	CHECK(start_cfg(&cfg, &err) == NULL);
	CHECK_CONTAINS(err.msg, "failed at");
	CHECK_CONTAINS(err.msg, "exit 3");
	CHECK_CONTAINS(err.msg, want);
	CHECK_CONTAINS(err.msg, "before-the-failure"); /* the last lines of output */
	CHECK_CONTAINS(err.msg, log);
	label = xasprintf("rollout.env=%s", cfg.env_name);
	CHECK_INT(count_containers(label), 0);

	/* Refused before any output: the daemon's message. */
	write_text(ctx, "Dockerfile", "FROM " BASE_IMAGE "\nBOGUS instruction\n", 0644);
	CHECK(start_cfg(&cfg, &err) == NULL);
	CHECK_CONTAINS(err.msg, "unknown instruction");
	unsetenv("ROLLOUT_DOCKER_BUILDER");
}

TEST(build_failure_names_the_step_and_shows_the_output_legacy)
{
	check_build_failure("1", "returned a non-zero code: 3");
}

TEST(build_failure_names_the_step_and_shows_the_output_buildkit)
{
	check_build_failure("2", "exit code: 3");
}

TEST(concurrent_trials_build_an_image_once)
{
	struct env_config cfg;
	_cleanup_free_ char *ctx = path_join(test_tmpdir(), "environment");
	pid_t pids[3];
	int builds = 0, failed = 0;
	_cleanup_free_ char *tagfile = path_join(test_tmpdir(), "tag");
	_cleanup_free_ char *tag = NULL;

	make_context(ctx, "sleep 1");
	for (int i = 0; i < 3; i++) {
		pids[i] = fork();
		REQUIRE(pids[i] >= 0);
		if (pids[i] == 0) {
			char name[32], logname[32];
			struct environment *env;
			struct err err = {0};

			snprintf(name, sizeof(name), "concurrent%d", i);
			snprintf(logname, sizeof(logname), "build%d.log", i);
			base_config(&cfg, name);
			cfg.task_name = "ditest-concurrent";
			cfg.docker_image = NULL;
			cfg.environment_dir = ctx;
			cfg.build_log_path = path_join(test_tmpdir(), logname);
			env = start_cfg(&cfg, &err);
			if (!env) {
				fprintf(stderr, "child %d: %s\n", i, err.msg);
				_exit(1);
			}
			write_file(tagfile, docker_env_of(env)->image,
			           strlen(docker_env_of(env)->image), 0644, NULL);
			_exit(env_stop(env, true, &err) < 0);
		}
	}
	for (int i = 0; i < 3; i++) {
		int status;
		char logname[64];
		_cleanup_free_ char *lp = NULL;

		waitpid(pids[i], &status, 0);
		failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
		snprintf(logname, sizeof(logname), "build%d.log", i);
		lp = path_join(test_tmpdir(), logname);
		builds += count_builds(lp);
	}
	CHECK_INT(failed, 0);
	CHECK_INT(builds, 1);
	tag = read_text(tagfile);
	if (*tag)
		remove_image(tag);
}

/* ---- containers -------------------------------------------------------------------- */

TEST(container_settings_labels_limits_and_mounts)
{
	struct env_config cfg;
	const char *envs[] = {"TASK_VAR=1", NULL};
	struct environment *env;
	struct err err = {0};
	_cleanup_json_ cJSON *v = NULL;
	const cJSON *hc, *config, *labels, *m;
	_cleanup_free_ char *out = NULL;
	int code, binds = 0;

	base_config(&cfg, "settings");
	cfg.cpus = 0.5;
	cfg.memory_bytes = 100LL << 20;
	cfg.pids_limit = 77;
	cfg.env = envs;
	cfg.workdir = "/work/dir";
	env = start_cfg(&cfg, &err);
	REQUIRE(env);
	v = inspect_container_named(cfg.env_name);
	REQUIRE(v);
	hc = cJSON_GetObjectItem(v, "HostConfig");
	config = cJSON_GetObjectItem(v, "Config");
	labels = cJSON_GetObjectItem(config, "Labels");
	CHECK_STR(json_get_str(labels, "rollout.env"), cfg.env_name);
	CHECK_STR(json_get_str(labels, "rollout.job"), JOB);
	CHECK_STR(json_get_str(labels, "rollout.task"), cfg.task_name);
	CHECK_STR(json_get_str(labels, "rollout.version"), ROLLOUT_VERSION);
	CHECK(json_get_str(labels, "rollout.owner.pid") != NULL);
	/* rollout's helper is pid 1, not Docker's init (see src/providers/docker/docker.c) */
	CHECK(!json_get_bool(hc, "Init", true));
	CHECK_STR(json_get_str(hc, "NetworkMode"), "none");
	CHECK_INT(json_get_num(hc, "NanoCpus", 0), 500000000);
	CHECK_INT(json_get_num(hc, "Memory", 0), 100LL << 20);
	CHECK_INT(json_get_num(hc, "PidsLimit", 0), 77);
	CHECK_STR(json_get_str(cJSON_GetObjectItem(hc, "RestartPolicy"), "Name"), "no");
	CHECK_STR(json_get_str(config, "Hostname"), cfg.env_name);
	cJSON_ArrayForEach(m, cJSON_GetObjectItem(v, "Mounts"))
	{
		const char *dst = json_get_str(m, "Destination");

		binds += dst && str_starts_with(dst, "/logs/");
	}
	CHECK_INT(binds, 3);
	out = sh(env,
	         "pwd; echo $TASK_VAR; cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || "
	         "cut -d' ' -f1 /sys/fs/cgroup/cpu.max",
	         &code);
	CHECK_STR(out, "/work/dir\n1\n50000\n");
	stop(env);
}

TEST(image_entrypoint_is_bypassed_and_volumes_removed_with_the_container)
{
	struct env_config cfg;
	_cleanup_free_ char *ctx = path_join(test_tmpdir(), "environment");
	_cleanup_free_ char *image = NULL, *out = NULL, *vol = NULL, *label = NULL;
	struct environment *env;
	struct err err = {0};
	_cleanup_json_ cJSON *v = NULL;
	const cJSON *m;
	int code;

	base_config(&cfg, "entrypoint");
	cfg.docker_image = NULL;
	cfg.environment_dir = ctx;
	write_text(ctx, "Dockerfile",
	           "FROM " BASE_IMAGE "\nVOLUME /vol\nENTRYPOINT [\"/bin/false\"]\nCMD [\"x\"]\n",
	           0644);
	env = start_cfg(&cfg, &err);
	REQUIRE(env);
	image = xstrdup(docker_env_of(env)->image);
	out = sh(env, "echo alive > /vol/f; cat /vol/f", &code);
	CHECK_STR(out, "alive\n");
	v = inspect_container_named(cfg.env_name);
	cJSON_ArrayForEach(m, cJSON_GetObjectItem(v, "Mounts"))
	{
		if (json_get_str(m, "Type") && strcmp(json_get_str(m, "Type"), "volume") == 0)
			vol = xstrdup(json_get_str(m, "Name"));
	}
	REQUIRE(vol);
	stop(env);
	label = xasprintf("rollout.env=%s", cfg.env_name);
	CHECK_INT(count_containers(label), 0);
	{
		_cleanup_docker_client_ struct docker_client *c = client();
		_cleanup_free_ char *path = docker_path(c, "/volumes/%s", vol);
		int status = 0;

		CHECK(docker_call(c, "GET", path, NULL, NULL, &status, &err) < 0);
		CHECK_INT(status, 404);
	}
	remove_image(image);
}

TEST(a_container_that_fails_to_be_created_or_started_is_not_left_behind)
{
	struct env_config cfg;
	_cleanup_free_ char *label = NULL;
	_cleanup_free_ char *ctx = path_join(test_tmpdir(), "environment");
	_cleanup_free_ char *tagfile = path_join(test_tmpdir(), "tag");
	struct err err = {0};

	base_config(&cfg, "nocreate");
	cfg.workdir = "/bin/busybox"; /* a file: refused at create */
	CHECK(start_cfg(&cfg, &err) == NULL);
	CHECK_CONTAINS(err.msg, "not a directory");
	label = xasprintf("rollout.env=%s", cfg.env_name);
	CHECK_INT(count_containers(label), 0);

	/* /.rollout a file in the image: the helper cannot be mounted, start fails. */
	base_config(&cfg, "nostart");
	cfg.docker_image = NULL;
	cfg.environment_dir = ctx;
	write_text(ctx, "Dockerfile", "FROM " BASE_IMAGE "\nRUN touch /.rollout\n", 0644);
	CHECK(start_cfg(&cfg, &err) == NULL);
	CHECK_CONTAINS(err.msg, "start container");
	free(label);
	label = xasprintf("rollout.env=%s", cfg.env_name);
	CHECK_INT(count_containers(label), 0);
	{
		/* the image built for it, found by its label */
		_cleanup_docker_client_ struct docker_client *c = client();
		_cleanup_free_ char *q =
		    http_query_escape("{\"reference\":[\"rollout/ditest-nostart-*\"]}");
		_cleanup_free_ char *path = docker_path(c, "/images/json?filters=%s", q);
		_cleanup_json_ cJSON *v = NULL;
		const cJSON *img;

		REQUIRE(docker_call(c, "GET", path, NULL, &v, NULL, &err) == 0);
		cJSON_ArrayForEach(img, v)
		{
			const cJSON *t =
			    cJSON_GetArrayItem(cJSON_GetObjectItem(img, "RepoTags"), 0);

			if (cJSON_IsString(t))
				remove_image(t->valuestring);
		}
	}
	(void)tagfile;
}

TEST(timeout_kills_everything_through_the_in_container_helper)
{
	struct env_config cfg;
	struct environment *env;
	struct err err = {0};
	const char *argv[] = {"sh", "-c",
	                      "sleep 300 & setsid sleep 301 & nohup sleep 302 >/dev/null 2>&1 & "
	                      "(setsid sh -c 'sleep 303 & sleep 304' &); echo started; sleep 305",
	                      NULL};
	_cleanup_free_ char *o = path_join(test_tmpdir(), "o.txt");
	_cleanup_free_ char *out = NULL;
	_cleanup_close_ int ofd = open(o, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	struct exec_request req = {
	    .argv = argv, .stdin_fd = -1, .timeout_sec = 1.5, .stdout_fd = ofd, .stderr_fd = -1};
	struct exec_result res;
	int code;

	/* Not from the host (as when rollout is not root): the helper does it. */
	setenv("ROLLOUT_DOCKER_NO_HOST_KILL", "1", 1);
	base_config(&cfg, "helperkill");
	env = start_cfg(&cfg, &err);
	REQUIRE(env);
	for (int i = 0; i < 2; i++) {
		req.user = i == 0 ? NULL : "nobody";
		REQUIRE(env_exec(env, &req, &res, &err) == 0);
		CHECK(res.timed_out);
		CHECK(res.duration_sec < 20);
		out = sh(env, "sleep 0.3; ps -o args | grep -c '^sleep 30' || true", &code);
		CHECK_STR(out, "0\n");
		free(out);
	}
	out = sh(env, "echo usable", &code);
	CHECK_STR(out, "usable\n");
	stop(env);
	unsetenv("ROLLOUT_DOCKER_NO_HOST_KILL");
}

/* ---- keep, list, gc ------------------------------------------------------------------ */

/* Start an environment in a child process; the child reports, then waits for a
 * signal (or keeps it and exits when keep is set). */
static pid_t start_in_child(const char *name, bool keep, int *ready_fd)
{
	int p[2];
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		struct env_config cfg;
		struct environment *env;
		struct err err = {0};

		close(p[0]);
		base_config(&cfg, name);
		env = start_cfg(&cfg, &err);
		if (!env)
			_exit(1);
		if (keep) {
			env_stop(env, false, &err);
			(void)!write(p[1], "k", 1);
			_exit(0);
		}
		(void)!write(p[1], "s", 1);
		pause();
		_exit(0);
	}
	close(p[1]);
	*ready_fd = p[0];
	return pid;
}

TEST(gc_removes_orphans_but_not_live_or_kept_environments)
{
	int fd1, fd2;
	char c;
	pid_t orphan_owner = start_in_child("orphan", false, &fd1);
	pid_t keeper = start_in_child("kept", true, &fd2);
	struct env_config live_cfg;
	struct environment *live, *kept = NULL;
	struct err err = {0};
	_cleanup_free_ char *orphan_label = NULL, *kept_label = NULL, *live_label = NULL;
	char kept_name[128];
	struct env_info *infos = NULL;
	size_t n = 0;
	bool listed = false;
	int removed;

	REQUIRE(orphan_owner > 0 && keeper > 0);
	REQUIRE(read(fd1, &c, 1) == 1 && c == 's');
	REQUIRE(read(fd2, &c, 1) == 1 && c == 'k');
	close(fd1);
	close(fd2);
	kill(orphan_owner, SIGKILL); /* a rollout killed without cleaning up */
	waitpid(orphan_owner, NULL, 0);
	waitpid(keeper, NULL, 0);
	/* base_config names use the pid of the process that started them. */
	orphan_label = xasprintf("rollout.env=ditest-orphan-%d", (int)orphan_owner);
	snprintf(kept_name, sizeof(kept_name), "ditest-kept-%d", (int)keeper);
	kept_label = xasprintf("rollout.env=%s", kept_name);
	base_config(&live_cfg, "live");
	live = start_cfg(&live_cfg, &err);
	REQUIRE(live);
	live_label = xasprintf("rollout.env=%s", live_cfg.env_name);
	CHECK_INT(count_containers(orphan_label), 1);

	REQUIRE(P->list(&infos, &n, &err) == 0);
	for (size_t i = 0; i < n; i++)
		listed |= strcmp(infos[i].name, live_cfg.env_name) == 0 &&
		          strcmp(infos[i].job_name, JOB) == 0 &&
		          strcmp(infos[i].state, "running") == 0;
	env_info_free(infos, n);
	CHECK(listed);

	removed = P->gc(&err);
	CHECK(removed >= 1);
	CHECK_INT(count_containers(orphan_label), 0);
	CHECK_INT(count_containers(kept_label), 1);
	CHECK_INT(count_containers(live_label), 1);
	stop(live);
	/* The kept one is found again by name, from this other process. */
	REQUIRE(env_open(P, kept_name, &kept, &err) == 0);
	{
		int code;
		_cleanup_free_ char *out = sh(kept, "echo kept-alive", &code);

		CHECK_STR(out, "kept-alive\n");
	}
	REQUIRE(env_stop(kept, true, &err) == 0);
	CHECK_INT(count_containers(kept_label), 0);
}

/* ---- errors users meet --------------------------------------------------------------- */

static void expect_open_error(const char *docker_host, const char *want)
{
	struct docker_client *c = NULL;
	struct err err = {0};

	setenv("DOCKER_HOST", docker_host, 1);
	if (docker_client_open(&c, &err) == 0) {
		test_fail_at(__FILE__, __LINE__, "%s: connected", docker_host);
		docker_client_free(c);
	} else if (!strstr(err.msg, want)) {
		test_fail_at(__FILE__, __LINE__, "%s: '%s' lacks '%s'", docker_host, err.msg, want);
	}
	unsetenv("DOCKER_HOST");
}

TEST(errors_say_what_is_wrong_with_the_daemon_connection)
{
	expect_open_error("unix:///nonexistent/docker.sock", "does not exist");
	expect_open_error("ssh://user@host", "ssh:// is not supported");
	expect_open_error("tcp://127.0.0.1:1", "connection refused");
	expect_open_error("npipe:////./pipe/docker_engine", "unsupported scheme");
}

/* https:// and DOCKER_TLS_VERIFY speak TLS to the daemon: a listener answering
 * in plain HTTP is a TLS error naming it, never a connection. */
TEST(a_tls_docker_host_speaks_tls)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	char https[64], tcp[64];
	pid_t srv;

	REQUIRE(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	        listen(lfd, 16) == 0 && getsockname(lfd, (struct sockaddr *)&sa, &len) == 0);
	srv = fork();
	REQUIRE(srv >= 0);
	if (srv == 0) {
		static const char answer[] =
		    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

		for (;;) {
			int c = accept(lfd, NULL, NULL);

			if (c >= 0) {
				if (write(c, answer, sizeof(answer) - 1) < 0)
					_exit(1);
				close(c);
			}
		}
	}
	close(lfd);
	snprintf(https, sizeof(https), "https://127.0.0.1:%d", ntohs(sa.sin_port));
	snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%d", ntohs(sa.sin_port));
	setenv("DOCKER_CERT_PATH", test_tmpdir(), 1); /* no ca.pem: the system's CAs */
	expect_open_error(https, "TLS");
	setenv("DOCKER_TLS_VERIFY", "1", 1);
	expect_open_error(tcp, "TLS");
	unsetenv("DOCKER_TLS_VERIFY");
	unsetenv("DOCKER_CERT_PATH");
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0)
		return -1;
	return fd;
}

TEST(permission_denied_on_the_socket_is_reported_as_such)
{
	_cleanup_free_ char *sock = path_join(test_tmpdir(), "root-only.sock");
	int lfd = listen_unix(sock);
	pid_t pid;
	int status;

	if (geteuid() != 0)
		SKIP("needs root to drop to another user");
	REQUIRE(lfd >= 0);
	chmod(test_tmpdir(), 0755);
	chmod(sock, 0600);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(3);
		expect_open_error(xasprintf("unix://%s", sock), "permission denied");
		_exit(0);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(lfd);
}

/* A fake daemon answering /_ping with an old API version. */
TEST(a_daemon_too_old_is_refused)
{
	_cleanup_free_ char *sock = path_join(test_tmpdir(), "old.sock");
	_cleanup_free_ char *host = xasprintf("unix://%s", sock);
	int lfd = listen_unix(sock);
	pid_t pid;

	REQUIRE(lfd >= 0);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		static const char resp[] = "HTTP/1.1 200 OK\r\nApi-Version: 1.24\r\n"
		                           "Server: Docker/1.12.6\r\nContent-Length: 2\r\n\r\nOK";
		int c = accept(lfd, NULL, NULL);
		char buf[4096];

		(void)!read(c, buf, sizeof(buf));
		(void)!write(c, resp, sizeof(resp) - 1);
		sleep(5);
		_exit(0);
	}
	expect_open_error(host, "too old");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(lfd);
}

TEST(a_missing_image_says_how_to_get_it)
{
	struct env_config cfg;
	struct err err = {0};

	base_config(&cfg, "noimage");
	cfg.docker_image = "rollout-test/does-not-exist:0";
	CHECK(start_cfg(&cfg, &err) == NULL);
	CHECK_CONTAINS(err.msg,
	               tfmt("task %s: image rollout-test/does-not-exist:0", cfg.task_name));
	CHECK_CONTAINS(err.msg, "is not on the Docker daemon and not in rollout's image store");
	CHECK_CONTAINS(err.msg,
	               "`rollout image import ROOTFS.tar --tag rollout-test/does-not-exist:0`");
	CHECK_CONTAINS(err.msg, "`docker pull rollout-test/does-not-exist:0`");
}

static void container_action(const char *name, const char *method, const char *what)
{
	_cleanup_docker_client_ struct docker_client *c = client();
	_cleanup_free_ char *path = docker_path(c, "/containers/%s%s", name, what);
	struct err err = {0};

	if (docker_call(c, method, path, NULL, NULL, NULL, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s %s: %s", method, path, err.msg);
}

TEST(a_container_that_died_or_vanished_is_a_clear_error)
{
	struct env_config cfg;
	struct environment *env;
	struct err err = {0};
	const char *argv[] = {"true", NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1};
	struct exec_result res;

	base_config(&cfg, "dies");
	env = start_cfg(&cfg, &err);
	REQUIRE(env);
	container_action(cfg.env_name, "POST", "/kill");
	CHECK(env_exec(env, &req, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "is no longer running");
	CHECK_CONTAINS(err.msg, "exited with code 137");
	container_action(cfg.env_name, "DELETE", "?force=1");
	CHECK(env_exec(env, &req, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "no longer exists");
	CHECK(env_upload_path(env, "/etc/hostname", "/x", 0, &err) < 0);
	CHECK_CONTAINS(err.msg, "no longer exists");
	stop(env); /* removing what is gone is fine */
}

/* ---- transport --------------------------------------------------------------------- */

/* Relay one TCP connection to the daemon's unix socket, both ways, half-closes
 * included. */
static void relay_conn(int a)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = "/var/run/docker.sock"};
	int b = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool a_open = true, b_open = true;
	char buf[65536];

	if (b < 0 || connect(b, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(1);
	while (a_open || b_open) {
		struct pollfd p[2] = {{.fd = a_open ? a : -1, .events = POLLIN},
		                      {.fd = b_open ? b : -1, .events = POLLIN}};

		if (poll(p, 2, -1) < 0)
			_exit(1);
		for (int i = 0; i < 2; i++) {
			int from = i ? b : a, to = i ? a : b;
			ssize_t n;

			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(from, buf, sizeof(buf));
			if (n <= 0) {
				shutdown(to, SHUT_WR);
				if (i)
					b_open = false;
				else
					a_open = false;
				continue;
			}
			if (write_all(to, buf, (size_t)n) < 0)
				_exit(0);
		}
	}
	_exit(0);
}

TEST(tcp_docker_host_works_end_to_end)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	pid_t proxy;
	char host[64];
	struct env_config cfg;
	struct environment *env;
	struct err err = {0};
	_cleanup_free_ char *f = path_join(test_tmpdir(), "up.txt");
	_cleanup_free_ char *back = path_join(test_tmpdir(), "back.txt");
	_cleanup_free_ char *out = NULL, *got = NULL;
	int code;

	REQUIRE(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	        listen(lfd, 16) == 0 && getsockname(lfd, (struct sockaddr *)&sa, &len) == 0);
	proxy = fork();
	REQUIRE(proxy >= 0);
	if (proxy == 0) {
		signal(SIGCHLD, SIG_IGN);
		for (;;) {
			int c = accept(lfd, NULL, NULL);

			if (c >= 0 && fork() == 0)
				relay_conn(c);
			if (c >= 0)
				close(c);
		}
	}
	close(lfd);
	snprintf(host, sizeof(host), "tcp://127.0.0.1:%d", ntohs(sa.sin_port));
	setenv("DOCKER_HOST", host, 1);
	base_config(&cfg, "tcp");
	env = start_cfg(&cfg, &err);
	if (!env)
		test_fail_at(__FILE__, __LINE__, "start over %s: %s", host, err.msg);
	if (env) {
		REQUIRE(write_file(f, "over tcp\n", 9, 0640, NULL) == 0);
		CHECK(env_upload_path(env, f, "/in/up.txt", 0, &err) == 0);
		out = sh(env, "cat /in/up.txt; stat -c %a /in/up.txt; echo err >&2", &code);
		CHECK_STR(out, "over tcp\n640\n");
		CHECK(env_download_path(env, "/in/up.txt", back, &err) == 0);
		got = read_text(back);
		CHECK_STR(got, "over tcp\n");
		stop(env);
	}
	unsetenv("DOCKER_HOST");
	kill(proxy, SIGKILL);
	waitpid(proxy, NULL, 0);
}

TEST(json_calls_reuse_one_kept_alive_connection)
{
	_cleanup_docker_client_ struct docker_client *c = client();
	struct http_conn *first;
	struct err err = {0};

	REQUIRE(c);
	for (int i = 0; i < 5; i++) {
		_cleanup_free_ char *path = docker_path(c, "/version");
		_cleanup_json_ cJSON *v = NULL;

		REQUIRE(docker_call(c, "GET", path, NULL, &v, NULL, &err) == 0);
		CHECK(json_get_str(v, "ApiVersion") != NULL);
	}
	first = http_pool_peek(&c->pool);
	REQUIRE(first);
	CHECK(first->requests >= 5);
	/* The version spoken is the daemon's, capped by the newest rollout knows. */
	CHECK(c->api_major == 1 && c->api_minor >= 40 && c->api_minor <= DOCKER_API_MAX_MINOR);
	CHECK(c->api_minor ==
	      (c->server_minor < DOCKER_API_MAX_MINOR ? c->server_minor : DOCKER_API_MAX_MINOR));
}

/* ---- a user who is not root ---------------------------------------------------------- */

TEST(files_from_the_container_belong_to_a_non_root_user)
{
	struct stat st;
	pid_t pid;
	int status;
	const char *sock = "/var/run/docker.sock";

	if (geteuid() != 0)
		SKIP("needs root to become another user");
	REQUIRE(stat(sock, &st) == 0);
	chmod(test_tmpdir(), 0755);
	for (int i = 0; i < 4; i++) {
		const char *leaf[] = {"agent", "verifier", "artifacts", "home"};

		chown(tdir(leaf[i]), 4242, 4242);
	}
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		gid_t g = st.st_gid; /* the socket's group (docker) */
		struct env_config cfg;
		struct environment *env;
		struct err err = {0};
		_cleanup_free_ char *home = path_join(test_tmpdir(), "home");
		_cleanup_free_ char *f = path_join(test_tmpdir(), "agent/sub/made-by-root.txt");
		struct stat fs;
		int code;

		if (setgroups(1, &g) < 0 || setgid(4242) < 0 || setuid(4242) < 0)
			_exit(3);
		setenv("ROLLOUT_HOME", home, 1);
		sh_dir = home;
		base_config(&cfg, "nonroot");
		env = start_cfg(&cfg, &err);
		if (!env) {
			printf("# start: %s\n", err.msg);
			_exit(4);
		}
		free(sh(env,
		        "mkdir -p /logs/agent/sub && echo x > /logs/agent/sub/made-by-root.txt",
		        &code));
		/* Handed over at the phase boundary, once nothing runs in there. */
		if (env_kill_all(env, &err) < 0) {
			printf("# kill_all: %s\n", err.msg);
			_exit(7);
		}
		memset(&fs, 0, sizeof(fs));
		if (stat(f, &fs) < 0 || fs.st_uid != 4242 || fs.st_gid != 4242) {
			printf("# owner %d:%d\n", (int)fs.st_uid, (int)fs.st_gid);
			env_stop(env, true, &err);
			_exit(5);
		}
		_exit(env_stop(env, true, &err) < 0 ? 6 : 0);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status));
	CHECK_INT(WEXITSTATUS(status), 0);
}

/* ---- more exec and file paths ----------------------------------------------------------- */

TEST(missing_host_logs_dirs_become_directories_in_the_container)
{
	struct env_config cfg;
	struct environment *env;
	struct err err = {0};
	_cleanup_free_ char *out = NULL;
	int code;

	base_config(&cfg, "nologs");
	cfg.host_verifier_dir = NULL;
	cfg.host_artifacts_dir = NULL;
	env = start_cfg(&cfg, &err);
	REQUIRE(env);
	out = sh(env, "test -d /logs/verifier && test -d /logs/artifacts && echo ok", &code);
	CHECK_STR(out, "ok\n");
	stop(env);
}

TEST(large_stdin_and_output_flow_at_the_same_time)
{
	struct env_config cfg;
	struct environment *env;
	struct err err = {0};
	_cleanup_free_ char *in = path_join(test_tmpdir(), "in.bin");
	_cleanup_free_ char *o = path_join(test_tmpdir(), "o.txt");
	_cleanup_free_ char *e = path_join(test_tmpdir(), "e.txt");
	_cleanup_free_ char *big = xmalloc(4 << 20);
	_cleanup_free_ char *got = NULL;
	const char *argv[] = {"sh", "-c", "tee /dev/stderr | wc -c", NULL};
	_cleanup_close_ int ofd = open(o, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	_cleanup_close_ int efd = open(e, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	struct exec_request req = {
	    .argv = argv, .timeout_sec = 60, .stdout_fd = ofd, .stderr_fd = efd};
	struct exec_result res;

	for (size_t i = 0; i < (4 << 20); i++)
		big[i] = (char)('a' + i % 26);
	REQUIRE(write_file(in, big, 4 << 20, 0644, NULL) == 0);
	base_config(&cfg, "stdin");
	env = start_cfg(&cfg, &err);
	REQUIRE(env);
	req.stdin_fd = open(in, O_RDONLY | O_CLOEXEC);
	REQUIRE(req.stdin_fd >= 0);
	REQUIRE(env_exec(env, &req, &res, &err) == 0);
	close(req.stdin_fd);
	CHECK_INT(res.exit_code, 0);
	got = read_text(o);
	CHECK_STR(got, "4194304\n");
	CHECK_INT(res.stderr_bytes, 4 << 20);
	stop(env);
}

static void on_alarm(int sig)
{
	(void)sig;
	rollout_cancel_count++;
}

TEST(cancellation_stops_a_running_command_and_kills_it)
{
	struct env_config cfg;
	struct environment *env;
	struct err err = {0};
	const char *argv[] = {"sh", "-c", "sleep 306 & sleep 307", NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1};
	struct exec_result res;
	struct sigaction sa = {.sa_handler = on_alarm};
	_cleanup_free_ char *out = NULL;
	double t0;
	int code;

	base_config(&cfg, "cancel");
	env = start_cfg(&cfg, &err);
	REQUIRE(env);
	sigaction(SIGALRM, &sa, NULL);
	alarm(1);
	t0 = mono_now();
	CHECK(env_exec(env, &req, &res, &err) < 0);
	CHECK_INT(err.code, ECANCELED);
	CHECK(mono_now() - t0 < 20);
	rollout_cancel_count = 0;
	out = sh(env, "sleep 0.3; ps -o args | grep -c '^sleep 30' || true", &code);
	CHECK_STR(out, "0\n");
	/* Teardown after Ctrl-C still removes the container. */
	rollout_cancel_count = 1;
	stop(env);
	rollout_cancel_count = 0;
	{
		_cleanup_free_ char *label = xasprintf("rollout.env=%s", cfg.env_name);

		CHECK_INT(count_containers(label), 0);
	}
}

TEST(upload_into_the_root_and_over_existing_files)
{
	struct env_config cfg;
	struct environment *env;
	struct err err = {0};
	_cleanup_free_ char *src = path_join(test_tmpdir(), "rootsrc");
	_cleanup_free_ char *out = NULL;
	int code;

	write_text(src, "rootfile.txt", "one\n", 0644);
	write_text(src, "tmp/placed.txt", "two\n", 0600);
	base_config(&cfg, "rootup");
	env = start_cfg(&cfg, &err);
	REQUIRE(env);
	out = sh(env, "stat -c %a /tmp", &code);
	CHECK_STR(out, "1777\n");
	free(out);
	CHECK(env_upload_path(env, src, "/", 0, &err) == 0);
	write_text(src, "rootfile.txt", "three\n", 0644);
	CHECK(env_upload_path(env, src, "/", 0, &err) == 0);
	out = sh(env, "cat /rootfile.txt /tmp/placed.txt; stat -c %a /tmp/placed.txt", &code);
	CHECK_STR(out, "three\ntwo\n600\n");
	stop(env);
}

TEST(a_command_that_closes_its_output_is_waited_for_and_timed_out)
{
	struct env_config cfg;
	struct environment *env;
	struct err err = {0};
	const char *argv1[] = {"sh", "-c", "exec >&- 2>&-; sleep 1; exit 4", NULL};
	const char *argv2[] = {"sh", "-c", "exec >&- 2>&-; sleep 308", NULL};
	struct exec_request req = {.argv = argv1, .stdin_fd = -1, .timeout_sec = 30};
	struct exec_result res;
	_cleanup_free_ char *out = NULL;
	int code;

	base_config(&cfg, "closed");
	env = start_cfg(&cfg, &err);
	REQUIRE(env);
	REQUIRE(env_exec(env, &req, &res, &err) == 0);
	CHECK_INT(res.exit_code, 4);
	CHECK(!res.timed_out);
	req.argv = argv2;
	req.timeout_sec = 1.5;
	REQUIRE(env_exec(env, &req, &res, &err) == 0);
	CHECK(res.timed_out);
	out = sh(env, "sleep 0.3; ps -o args | grep -c '^sleep 308' || true", &code);
	CHECK_STR(out, "0\n");
	stop(env);
}

/* A Terminal-Bench-shaped task on the Debian fixture (bash, python3, pytest): a
 * build, an agent command, tests uploaded to /tests and a reward file. */
TEST(a_debian_task_builds_runs_and_writes_a_reward)
{
	struct env_config cfg;
	struct environment *env;
	struct err err = {0};
	_cleanup_free_ char *ctx = path_join(test_tmpdir(), "environment");
	_cleanup_free_ char *tests = path_join(test_tmpdir(), "tests");
	_cleanup_free_ char *image = NULL, *out = NULL, *reward = NULL, *rpath = NULL;
	int code;

	if (!getenv("ROLLOUT_TEST_DEBIAN"))
		SKIP("the Debian fixture image is not available");
	base_config(&cfg, "debian");
	cfg.docker_image = NULL;
	cfg.environment_dir = ctx;
	write_text(
	    ctx, "Dockerfile",
	    "FROM rollout-test/debian:1\nRUN python3 -c 'print(6*7)' > /answer\nWORKDIR /app\n",
	    0644);
	write_text(tests, "test.sh",
	           "#!/bin/bash\nset -euo pipefail\ncd /tests\npython3 -m pytest -q test_answer.py "
	           "&& echo 1 > /logs/verifier/reward.txt || echo 0 > /logs/verifier/reward.txt\n",
	           0755);
	write_text(tests, "test_answer.py",
	           "def test_answer():\n    assert open('/answer').read().strip() == '42'\n", 0644);
	env = start_cfg(&cfg, &err);
	if (!env)
		test_fail_at(__FILE__, __LINE__, "start: %s", err.msg);
	REQUIRE(env);
	image = xstrdup(docker_env_of(env)->image);
	out = sh(env, "bash -c 'cat /answer; pwd; id -un'", &code);
	CHECK_STR(out, "42\n/app\nroot\n");
	REQUIRE(env_upload_path(env, tests, "/tests", 0, &err) == 0);
	free(out);
	out = sh(env, "/tests/test.sh > /logs/verifier/test-stdout.txt 2>&1; echo $?", &code);
	CHECK_STR(out, "0\n");
	rpath = path_join(tdir("verifier"), "reward.txt");
	reward = read_text(rpath);
	CHECK_STR(reward, "1\n");
	stop(env);
	remove_image(image);
}
