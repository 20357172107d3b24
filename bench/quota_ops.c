/* What the storage limit adds to an environment's start and destroy, alone
 * (bench/quota_ops.sh runs it): on a directory of $ROLLOUT_HOME/envs, N times
 *   setup    mkdir + open the environment's directory and the three /logs
 *            directories, then quota_env_setup (lock, pick an ID, set the
 *            limit, the project on the four directories)
 *   release  quota_dir_hold + quota_dir_release (teardown: read the ID back,
 *            clear the limit), then remove the directories
 * and the same without the quota calls, plus a null system call (getppid) for
 * scale, printed as
 * "NAME median=US p10=US p90=US n=N" in microseconds. */
#include "providers/sandbox/sandbox.h"
#include "rollout/alloc.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/timeutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *name, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	printf("%-16s median=%.1f p10=%.1f p90=%.1f n=%d\n", name, v[n / 2] * 1e6, v[n / 10] * 1e6,
	       v[n * 9 / 10] * 1e6, n);
}

static void make_dirs(const char *envs, int i, struct sandbox_env *env, char **logs)
{
	static const char *const names[] = {"agent", "verifier", "artifacts"};

	env->name = xasprintf("qbench-%d", i);
	env->dir = path_join(envs, env->name);
	if (mkdir(env->dir, 0700) < 0 ||
	    (env->dir_fd = open(env->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		perror(env->dir);
		exit(1);
	}
	for (int k = 0; k < 3; k++) {
		logs[k] = xasprintf("%s.logs/%s-%d", envs, names[k], i);
		if (mkdir(logs[k], 0755) < 0) {
			perror(logs[k]);
			exit(1);
		}
	}
}

static void remove_dirs(struct sandbox_env *env, char **logs)
{
	close(env->dir_fd);
	rmdir(env->dir);
	for (int k = 0; k < 3; k++) {
		rmdir(logs[k]);
		free(logs[k]);
	}
	free(env->name);
	free(env->dir);
}

/* One round of n starts and destroys, with or without the quota calls. */
static void round_(const char *envs, int n, bool quota, double *vs, double *vr)
{
	for (int i = 0; i < n; i++) {
		struct sandbox_env env = {.dir_fd = -1};
		struct env_config cfg = {.storage_bytes = 10LL << 30};
		struct err err = {0};
		char *logs[3];
		double t0 = mono_now(), t1;
		int fd;

		make_dirs(envs, i, &env, logs);
		cfg.host_agent_dir = logs[0];
		cfg.host_verifier_dir = logs[1];
		cfg.host_artifacts_dir = logs[2];
		if (quota && quota_env_setup(&env, &cfg, &err) < 0) {
			fprintf(stderr, "quota_env_setup: %s\n", err.msg);
			exit(1);
		}
		t1 = mono_now();
		vs[i] = t1 - t0;
		fd = quota ? quota_dir_hold(env.dir, env.dir_fd) : -1;
		if (quota)
			quota_dir_release(fd);
		remove_dirs(&env, logs);
		vr[i] = mono_now() - t1;
	}
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 0;
	char *envs = sandbox_envs_dir(), *logs_root;
	double *vs, *vr;
	const char *why;
	struct err err = {0};

	if (n <= 0) {
		fprintf(stderr,
		        "usage: quota_ops N   (ROLLOUT_HOME on the filesystem to measure)\n");
		return 2;
	}
	logs_root = xasprintf("%s.logs", envs);
	if (mkdir_p(envs, 0700, &err) < 0 || mkdir_p(logs_root, 0700, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	if (!quota_available(&why)) {
		printf("project quotas unavailable: %s\n", why);
		return 0;
	}
	vs = calloc((size_t)n, sizeof(double));
	vr = calloc((size_t)n, sizeof(double));
	round_(envs, n, false, vs, vr);
	report("dirs_only_setup", vs, n);
	report("dirs_only_remove", vr, n);
	round_(envs, n, true, vs, vr);
	report("quota_setup", vs, n);
	report("quota_release", vr, n);
	/* For a kernel whose system calls cost more (user-mode-linux): scale. */
	for (int i = 0; i < n; i++) {
		double t0 = mono_now();

		for (int k = 0; k < 100; k++)
			getppid();
		vs[i] = (mono_now() - t0) / 100;
	}
	report("null_syscall", vs, n);
	rm_rf(logs_root, NULL);
	return 0;
}
