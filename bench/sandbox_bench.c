/* Sandbox provider timings, driven by bench/sandbox_bench.sh:
 *   sandbox_bench cycle N IMAGE     start an environment, exec /bin/true, destroy; N times
 *   sandbox_bench exec N IMAGE      exec /bin/true N times in one running environment
 *   sandbox_bench command N ARGV... run an external command N times (runc, docker)
 * Each prints "NAME median=MS p10=MS p90=MS n=N" (milliseconds, wall clock). */
#include "providers/provider.h"
#include "rollout/err.h"
#include "rollout/timeutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WARMUP 3

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *name, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	printf("%s median=%.3f p10=%.3f p90=%.3f n=%d\n", name, v[n / 2] * 1e3, v[n / 10] * 1e3,
	       v[n * 9 / 10] * 1e3, n);
}

static struct environment *start(const struct provider_ops *p, const char *image, int i)
{
	struct env_config cfg = {0};
	struct environment *env = NULL;
	struct err err = {0};
	char name[64];

	snprintf(name, sizeof(name), "bench-%d-%d", (int)getpid(), i);
	cfg.env_name = name;
	cfg.job_name = "bench";
	cfg.task_name = "bench";
	cfg.docker_image = image;
	cfg.cpus = 1;
	cfg.memory_bytes = 256LL << 20;
	cfg.pids_limit = 256;
	/* A task's default storage_mb (10240): a project quota per environment
	 * where $ROLLOUT_HOME enforces them, nothing elsewhere. */
	cfg.storage_bytes = 10LL << 30;
	if (p->start(&cfg, &env, &err) < 0) {
		fprintf(stderr, "start: %s\n", err.msg);
		exit(1);
	}
	return env;
}

static void exec_true(const struct provider_ops *p, struct environment *env)
{
	const char *argv[] = {"/bin/true", NULL};
	struct exec_request req = {.argv = argv, .stdin_fd = -1};
	struct exec_result res;
	struct err err = {0};

	if (p->exec(env, &req, &res, &err) < 0 || res.exit_code != 0) {
		fprintf(stderr, "exec: %s (exit %d)\n", err.msg, res.exit_code);
		exit(1);
	}
}

static void destroy(const struct provider_ops *p, struct environment *env)
{
	struct err err = {0};

	if (p->stop(env, true, &err) < 0) {
		fprintf(stderr, "destroy: %s\n", err.msg);
		exit(1);
	}
}

static int run_command(char **argv)
{
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);

		dup2(nul, 0);
		dup2(nul, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
	const struct provider_ops *p = provider_find("sandbox");
	int n = argc > 2 ? atoi(argv[2]) : 0;
	double *v;

	if (argc < 4 || n <= 0) {
		fprintf(stderr, "usage: sandbox_bench cycle|exec N IMAGE | command N ARGV...\n");
		return 2;
	}
	v = calloc((size_t)n, sizeof(double));
	if (strcmp(argv[1], "cycle") == 0) {
		double *vs = calloc((size_t)n, sizeof(double)), *ve = calloc((size_t)n, sizeof(double));
		double *vd = calloc((size_t)n, sizeof(double));

		for (int i = -WARMUP; i < n; i++) {
			double t0 = mono_now(), t1, t2;
			struct environment *env = start(p, argv[3], i + WARMUP);

			t1 = mono_now();
			exec_true(p, env);
			t2 = mono_now();
			destroy(p, env);
			if (i >= 0) {
				v[i] = mono_now() - t0;
				vs[i] = t1 - t0;
				ve[i] = t2 - t1;
				vd[i] = v[i] - (t2 - t0);
			}
		}
		report("sandbox_cycle", v, n);
		/* The parts, each with its own median (they do not add up exactly). */
		report("  start", vs, n);
		report("  exec", ve, n);
		report("  destroy", vd, n);
	} else if (strcmp(argv[1], "exec") == 0) {
		struct environment *env = start(p, argv[3], 0);

		for (int i = -WARMUP; i < n; i++) {
			double t0 = mono_now();

			exec_true(p, env);
			if (i >= 0)
				v[i] = mono_now() - t0;
		}
		destroy(p, env);
		report("sandbox_exec", v, n);
	} else if (strcmp(argv[1], "command") == 0) {
		for (int i = -1; i < n; i++) {
			double t0 = mono_now();
			int rc = run_command(argv + 3);

			if (rc != 0) {
				fprintf(stderr, "%s exited with %d\n", argv[3], rc);
				return 1;
			}
			if (i >= 0)
				v[i] = mono_now() - t0;
		}
		report(argv[3], v, n);
	} else {
		fprintf(stderr, "sandbox_bench: unknown mode %s\n", argv[1]);
		return 2;
	}
	free(v);
	return 0;
}
