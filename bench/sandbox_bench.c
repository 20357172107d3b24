/* Sandbox provider timings, driven by bench/sandbox_bench.sh:
 *   sandbox_bench cycle N IMAGE [NETS] start an environment, exec /bin/true, destroy;
 *                                   N times per network mode. NETS: comma-separated
 *                                   none (default: allow_internet = false), nat
 *                                   (allow_internet = true as root: a veth pair and
 *                                   rollout's NAT), host (the host's network); the
 *                                   modes take turns, so load affects them alike
 *   sandbox_bench exec N IMAGE      exec /bin/true N times in one running environment
 *   sandbox_bench command N ARGV... run an external command N times (runc, docker)
 *   sandbox_bench netns N           the owner thread's network work alone: a namespace
 *                                   with lo (no internet) and with its veth pair (nat),
 *                                   wall clock and the thread's CPU time, taking turns
 * Each prints "NAME median=MS p10=MS p90=MS n=N" (milliseconds). */
#include "providers/provider.h"
#include "providers/sandbox/net.h"
#include "rollout/err.h"
#include "rollout/timeutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
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

static bool internet;

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
	cfg.allow_internet = internet;
	/* A task's default storage_mb (10240): a project quota per environment
	 * where $ROLLOUT_HOME enforces them, nothing elsewhere. */
	cfg.storage_bytes = 10LL << 30;
	if (env_start(p, &cfg, &env, &err) < 0) {
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

	if (env_exec(env, &req, &res, &err) < 0 || res.exit_code != 0) {
		fprintf(stderr, "exec: %s (exit %d)\n", err.msg, res.exit_code);
		exit(1);
	}
}

static void destroy(const struct provider_ops *p, struct environment *env)
{
	struct err err = {0};

	if (env_stop(env, true, &err) < 0) {
		fprintf(stderr, "destroy: %s\n", err.msg);
		exit(1);
	}
}

#define MAX_NETS 4

/* One cycle in network mode net: total, start, exec and destroy times. */
static void cycle_once(const struct provider_ops *p, const char *image, const char *net, int i,
                       double t[4])
{
	double t0 = mono_now(), t1, t2;
	struct environment *env;

	internet = strcmp(net, "none") != 0;
	if (internet)
		setenv("ROLLOUT_SANDBOX_NETWORK", net, 1);
	env = start(p, image, i);
	t1 = mono_now();
	exec_true(p, env);
	t2 = mono_now();
	destroy(p, env);
	t[0] = mono_now() - t0;
	t[1] = t1 - t0;
	t[2] = t2 - t1;
	t[3] = t[0] - (t2 - t0);
}

static void cycles(const struct provider_ops *p, const char *image, int n, const char *list)
{
	static const char *const parts[4] = {"", "  start", "  exec", "  destroy"};
	char *copy = strdup(list), *save = NULL, name[64];
	const char *nets[MAX_NETS];
	double *v[MAX_NETS][4];
	int k = 0;

	for (char *t = strtok_r(copy, ",", &save); t && k < MAX_NETS;
	     t = strtok_r(NULL, ",", &save))
		nets[k++] = t;
	for (int m = 0; m < k; m++)
		for (int j = 0; j < 4; j++)
			v[m][j] = calloc((size_t)n, sizeof(double));
	for (int i = -WARMUP; i < n; i++)
		for (int m = 0; m < k; m++) {
			double t[4];

			cycle_once(p, image, nets[m], (i + WARMUP) * k + m, t);
			for (int j = 0; i >= 0 && j < 4; j++)
				v[m][j][i] = t[j];
		}
	for (int m = 0; m < k; m++) {
		snprintf(name, sizeof(name), "sandbox_cycle[net=%s]", nets[m]);
		report(name, v[m][0], n);
		/* The parts, each with its own median (they do not add up exactly). */
		for (int j = 1; j < 4; j++)
			report(parts[j], v[m][j], n);
	}
}

/* ---- netns: what the owner's thread does for the network, alone ---- */

struct ns_run {
	bool nat;
	double wall, cpu;
	int fd;
};

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* As on the owner: a thread that moves into the namespace and exits. */
static void *ns_thread(void *arg)
{
	struct ns_run *r = arg;
	double t0 = mono_now(), c0 = thread_cpu();
	struct net_link link;
	struct err err = {0};

	r->fd = r->nat ? net_new_nat_namespace(&link, &err) : net_new_namespace();
	r->wall = mono_now() - t0;
	r->cpu = thread_cpu() - c0;
	if (r->fd < 0) {
		fprintf(stderr, "netns: %s\n", err.msg);
		exit(1);
	}
	return NULL;
}

static void netns_bench(int n)
{
	double *v[2][2];
	pthread_t t;

	for (int m = 0; m < 2; m++)
		for (int j = 0; j < 2; j++)
			v[m][j] = calloc((size_t)n, sizeof(double));
	for (int i = -WARMUP; i < n; i++)
		for (int m = 0; m < 2; m++) {
			struct ns_run r = {.nat = m == 1};

			pthread_create(&t, NULL, ns_thread, &r);
			pthread_join(t, NULL);
			close(r.fd); /* the namespace, and the pair with it, go away */
			if (i >= 0) {
				v[m][0][i] = r.wall;
				v[m][1][i] = r.cpu;
			}
		}
	report("netns[none] wall", v[0][0], n);
	report("netns[none] thread cpu", v[0][1], n);
	report("netns[nat] wall", v[1][0], n);
	report("netns[nat] thread cpu", v[1][1], n);
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

	if (argc == 3 && strcmp(argv[1], "netns") == 0 && n > 0) {
		netns_bench(n);
		return 0;
	}
	if (argc < 4 || n <= 0) {
		fprintf(stderr, "usage: sandbox_bench cycle|exec N IMAGE | command N ARGV...\n");
		return 2;
	}
	v = calloc((size_t)n, sizeof(double));
	if (strcmp(argv[1], "cycle") == 0) {
		cycles(p, argv[3], n, argc > 4 ? argv[4] : "none");
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
