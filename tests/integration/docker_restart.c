/* The Docker daemon going away under a running trial: restarted, or stopped.
 * Run by test_docker_restart.sh against a private dockerd it controls
 * (DOCKER_HOST; ROLLOUT_TEST_DOCKERD_CTL is a script taking stop|start|restart). */
#include "harness.h"
#include "providers/docker/api.h"
#include "providers/provider.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"

#include <stdlib.h>
#include <unistd.h>

static const struct provider_ops *P;

static struct environment *start(const char *name)
{
	static char env_name[64];
	struct env_config cfg = {0};
	struct environment *env = NULL;
	struct err err = {0};
	_cleanup_free_ char *a = path_join(test_tmpdir(), "agent");
	_cleanup_free_ char *v = path_join(test_tmpdir(), "verifier");
	_cleanup_free_ char *r = path_join(test_tmpdir(), "artifacts");

	P = provider_find("docker");
	mkdir_p(a, 0755, NULL);
	mkdir_p(v, 0755, NULL);
	mkdir_p(r, 0755, NULL);
	snprintf(env_name, sizeof(env_name), "restart-%s-%d", name, (int)getpid());
	cfg.env_name = env_name;
	cfg.job_name = "docker-restart-itest";
	cfg.task_name = "restart";
	cfg.docker_image = "rollout-test/busybox:1";
	cfg.host_agent_dir = a;
	cfg.host_verifier_dir = v;
	cfg.host_artifacts_dir = r;
	if (env_start(P, &cfg, &env, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "start: %s", err.msg);
	return env;
}

static int run(struct environment *env, struct err *err)
{
	const char *argv[] = {"true", NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1, .timeout_sec = 30};
	struct exec_result res;

	return env_exec(env, &req, &res, err);
}

static int ctl(const char *what)
{
	_cleanup_free_ char *cmd = xasprintf("%s %s", getenv("ROLLOUT_TEST_DOCKERD_CTL"), what);

	return system(cmd);
}

static int containers_left(void)
{
	_cleanup_docker_client_ struct docker_client *c = NULL;
	_cleanup_free_ char *q =
	    http_query_escape("{\"label\":[\"rollout.job=docker-restart-itest\"]}");
	_cleanup_free_ char *path = NULL;
	_cleanup_json_ cJSON *v = NULL;
	struct err err = {0};

	if (docker_client_open(&c, &err) < 0)
		return -1;
	path = docker_path(c, "/containers/json?all=1&filters=%s", q);
	if (docker_call(c, "GET", path, NULL, &v, NULL, &err) < 0)
		return -1;
	return cJSON_GetArraySize(v);
}

TEST(daemon_restarted_mid_trial_is_a_clear_error)
{
	struct environment *env;
	struct err err = {0};

	if (!getenv("ROLLOUT_TEST_DOCKERD_CTL"))
		SKIP("needs a private dockerd (test_docker_restart.sh)");
	env = start("restarted");
	REQUIRE(env);
	REQUIRE(run(env, &err) == 0);
	REQUIRE(ctl("restart") == 0);
	CHECK(run(env, &err) < 0);
	printf("# %s\n", err.msg);
	CHECK_CONTAINS(err.msg, "is no longer running");
	CHECK_CONTAINS(err.msg, "the daemon was probably restarted");
	REQUIRE(env_stop(env, true, &err) == 0);
	CHECK_INT(containers_left(), 0);
}

TEST(daemon_stopped_mid_trial_is_a_clear_error)
{
	struct environment *env;
	struct err err = {0};

	if (!getenv("ROLLOUT_TEST_DOCKERD_CTL"))
		SKIP("needs a private dockerd (test_docker_restart.sh)");
	env = start("stopped");
	REQUIRE(env);
	REQUIRE(ctl("stop") == 0);
	CHECK(run(env, &err) < 0);
	printf("# %s\n", err.msg);
	CHECK_CONTAINS(err.msg, "lost the Docker daemon during environment");
	CHECK_CONTAINS(err.msg, "does not exist");
	REQUIRE(ctl("start") == 0);
	REQUIRE(env_stop(env, true, &err) == 0);
	CHECK_INT(containers_left(), 0);
}
