/* A trial-shaped cycle on a Docker daemon, through rollout's docker provider and
 * through the docker CLI, in the same run: create+start from a built image, three
 * execs, upload a directory, download it, remove. Prints per-operation medians
 * and the ratio of the totals. Run by bench/docker_cycle.sh (which makes sure a
 * daemon and the busybox fixture image exist).
 *   BENCH_N        cycles per side (default 15)
 *   BENCH_IMAGE    image (default rollout-test/busybox:1)
 *   BENCH_DOCKER   docker CLI (default: docker from PATH)
 *   BENCH_TARGET   required ratio of the totals (default 3); BENCH_STRICT=1 makes
 *                  missing it an error exit */
#include "providers/provider.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { OP_START, OP_EXEC1, OP_EXEC2, OP_EXEC3, OP_UPLOAD, OP_DOWNLOAD, OP_REMOVE, OP_TOTAL, N_OPS };
static const char *const op_names[N_OPS] = {"create+start", "exec 1",       "exec 2", "exec 3",
                                            "upload dir",   "download dir", "remove", "total"};

static const char *image, *docker_cli;
static char workdir[256];

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "docker_cycle: %s: %s\n", what, msg);
	exit(1);
}

static const char *wdir(const char *leaf)
{
	static char buf[4][512];
	static int i;
	char *p = buf[i++ % 4];

	snprintf(p, 512, "%s/%s", workdir, leaf);
	return p;
}

/* The tree uploaded and downloaded by both sides. */
static void make_tree(const char *root)
{
	_cleanup_free_ char *sub = path_join(root, "sub/deeper");
	static char blob[256 * 1024];

	memset(blob, 'x', sizeof(blob));
	mkdir_p(sub, 0755, NULL);
	for (int i = 0; i < 8; i++) {
		_cleanup_free_ char *f = xasprintf("%s/file%d.txt", root, i);

		write_file(f, "some task file\n", 15, 0644, NULL);
	}
	write_file(path_join(root, "run.sh"), "#!/bin/sh\necho ran\n", 19, 0755, NULL);
	write_file(path_join(root, "sub/deeper/blob.bin"), blob, sizeof(blob), 0644, NULL);
}

static const char *const exec_scripts[3] = {"echo hello", "ls / > /dev/null; pwd",
                                            "echo $BENCH_VAR >&2"};

static void rollout_cycle(int n, double t[N_OPS])
{
	const struct provider_ops *p = provider_find("docker");
	char name[64];
	struct env_config cfg = {0};
	struct environment *env = NULL;
	struct err err = {0};
	double t0, start;
	_cleanup_free_ char *down = xasprintf("%s/down-rollout-%d", workdir, n);

	snprintf(name, sizeof(name), "bench-rollout-%d-%d", (int)getpid(), n);
	cfg.env_name = name;
	cfg.job_name = "bench";
	cfg.task_name = "bench";
	cfg.docker_image = image;
	cfg.cpus = 1;
	cfg.memory_bytes = 256LL << 20;
	cfg.pids_limit = 512;
	cfg.host_agent_dir = wdir("agent");
	cfg.host_verifier_dir = wdir("verifier");
	cfg.host_artifacts_dir = wdir("artifacts");

	start = t0 = mono_now();
	if (env_start(p, &cfg, &env, &err) < 0)
		die("rollout start", err.msg);
	t[OP_START] = mono_now() - t0;
	for (int i = 0; i < 3; i++) {
		const char *argv[] = {"sh", "-c", exec_scripts[i], NULL};
		const char *envs[] = {"BENCH_VAR=1", NULL};
		struct exec_request req = {.argv = argv,
		                           .env = i == 2 ? envs : NULL,
		                           .cwd = i == 1 ? "/tmp" : NULL,
		                           .stdin_fd = -1,
		                           .timeout_sec = 60,
		                           .stdout_fd = -1,
		                           .stderr_fd = -1};
		struct exec_result res;
		int ofd, efd, rc;

		t0 = mono_now();
		/* As the CLI's shell redirections do: files opened per exec. */
		ofd = open(wdir("exec-out.txt"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		efd = open(wdir("exec-err.txt"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		req.stdout_fd = ofd;
		req.stderr_fd = efd;
		rc = env_exec(env, &req, &res, &err);
		close(ofd);
		close(efd);
		if (rc < 0 || res.exit_code != 0)
			die("rollout exec", err.msg);
		t[OP_EXEC1 + i] = mono_now() - t0;
	}
	t0 = mono_now();
	if (env_upload_path(env, wdir("tree"), "/tmp/in", 0, &err) < 0)
		die("rollout upload", err.msg);
	t[OP_UPLOAD] = mono_now() - t0;
	t0 = mono_now();
	if (env_download_path(env, "/tmp/in", down, &err) < 0)
		die("rollout download", err.msg);
	t[OP_DOWNLOAD] = mono_now() - t0;
	t0 = mono_now();
	if (env_stop(env, true, &err) < 0)
		die("rollout remove", err.msg);
	t[OP_REMOVE] = mono_now() - t0;
	t[OP_TOTAL] = mono_now() - start;
	rm_rf(down, NULL);
}

/* Run the docker CLI; returns its wall time. Output goes to /dev/null. */
static double cli(const char *const *args)
{
	double t0 = mono_now();
	pid_t pid = fork();
	int status;

	if (pid < 0)
		die("fork", strerror(errno));
	if (pid == 0) {
		struct strv argv = STRV_INIT;
		int null = open("/dev/null", O_WRONLY);

		strv_push(&argv, docker_cli);
		for (; *args; args++)
			strv_push(&argv, *args);
		dup2(null, 1);
		dup2(null, 2);
		execvp(docker_cli, strv_array(&argv));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("docker CLI", args[0]);
	return mono_now() - t0;
}

static void cli_cycle(int n, double t[N_OPS])
{
	char name[64];
	_cleanup_free_ char *va = xasprintf("%s:/logs/agent", wdir("agent"));
	_cleanup_free_ char *vv = xasprintf("%s:/logs/verifier", wdir("verifier"));
	_cleanup_free_ char *vr = xasprintf("%s:/logs/artifacts", wdir("artifacts"));
	_cleanup_free_ char *in = NULL, *down = xasprintf("%s/down-cli-%d", workdir, n);
	_cleanup_free_ char *from = NULL;
	double start = mono_now();

	snprintf(name, sizeof(name), "bench-cli-%d-%d", (int)getpid(), n);
	in = xasprintf("%s:/tmp/in", name);
	from = xasprintf("%s:/tmp/in", name);
	{
		const char *a[] = {"run",
		                   "-d",
		                   "--init",
		                   "--name",
		                   name,
		                   "--hostname",
		                   name,
		                   "--network",
		                   "none",
		                   "--cpus",
		                   "1",
		                   "--memory",
		                   "256m",
		                   "--memory-swap",
		                   "256m",
		                   "--pids-limit",
		                   "512",
		                   "--label",
		                   "rollout.job=bench",
		                   "-v",
		                   va,
		                   "-v",
		                   vv,
		                   "-v",
		                   vr,
		                   "--entrypoint",
		                   "sleep",
		                   image,
		                   "infinity",
		                   NULL};

		t[OP_START] = cli(a);
	}
	{
		const char *a1[] = {"exec", name, "sh", "-c", exec_scripts[0], NULL};
		const char *a2[] = {"exec", "-w", "/tmp", name, "sh", "-c", exec_scripts[1], NULL};
		const char *a3[] = {"exec", "-e", "BENCH_VAR=1",   name,
		                    "sh",   "-c", exec_scripts[2], NULL};

		t[OP_EXEC1] = cli(a1);
		t[OP_EXEC2] = cli(a2);
		t[OP_EXEC3] = cli(a3);
	}
	{
		const char *up[] = {"cp", wdir("tree"), in, NULL};
		const char *dn[] = {"cp", from, down, NULL};
		const char *rm[] = {"rm", "-f", "-v", name, NULL};

		t[OP_UPLOAD] = cli(up);
		t[OP_DOWNLOAD] = cli(dn);
		t[OP_REMOVE] = cli(rm);
	}
	t[OP_TOTAL] = mono_now() - start;
	rm_rf(down, NULL);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : getenv("BENCH_N") ? atoi(getenv("BENCH_N")) : 15;
	double target = getenv("BENCH_TARGET") ? atof(getenv("BENCH_TARGET")) : 3.0;
	double *r[N_OPS], *c[N_OPS];
	double ratio;

	image = getenv("BENCH_IMAGE") ? getenv("BENCH_IMAGE") : "rollout-test/busybox:1";
	docker_cli = getenv("BENCH_DOCKER") ? getenv("BENCH_DOCKER") : "docker";
	if (n < 1)
		n = 1;
	log_set_level(LOG_WARN);
	snprintf(workdir, sizeof(workdir), "/tmp/rollout-bench-docker.XXXXXX");
	if (!mkdtemp(workdir))
		die("mkdtemp", strerror(errno));
	chmod(workdir, 0755);
	for (int i = 0; i < 3; i++)
		mkdir_p(wdir(i == 0 ? "agent" : i == 1 ? "verifier" : "artifacts"), 0755, NULL);
	make_tree(wdir("tree"));
	for (int k = 0; k < N_OPS; k++) {
		r[k] = xcalloc((size_t)n, sizeof(double));
		c[k] = xcalloc((size_t)n, sizeof(double));
	}
	/* One warm-up cycle each (page cache, daemon caches), then alternate the order. */
	{
		double w[N_OPS];

		rollout_cycle(-1, w);
		cli_cycle(-1, w);
	}
	for (int i = 0; i < n; i++) {
		double tr[N_OPS], tc[N_OPS];

		if (i % 2) {
			cli_cycle(i, tc);
			rollout_cycle(i, tr);
		} else {
			rollout_cycle(i, tr);
			cli_cycle(i, tc);
		}
		for (int k = 0; k < N_OPS; k++) {
			r[k][i] = tr[k];
			c[k][i] = tc[k];
		}
	}
	printf("docker trial cycle, %d cycles each, image %s, CLI %s\n", n, image, docker_cli);
	printf("%-14s %12s %12s %8s\n", "operation", "rollout ms", "docker CLI ms", "ratio");
	for (int k = 0; k < N_OPS; k++) {
		double mr = median(r[k], n) * 1000, mc = median(c[k], n) * 1000;

		printf("%-14s %12.1f %12.1f %7.2fx\n", op_names[k], mr, mc, mr > 0 ? mc / mr : 0);
	}
	ratio = median(c[OP_TOTAL], n) / median(r[OP_TOTAL], n);
	printf(
	    "rollout is %.2fx faster than the docker CLI over the whole cycle (target %.1fx: %s)\n",
	    ratio, target, ratio >= target ? "met" : "NOT met");
	/* No client can go below the daemon's own create+start and remove. */
	printf("ceiling for any client that creates, starts and removes through this daemon "
	       "(CLI total / rollout create+start+remove): %.2fx\n",
	       median(c[OP_TOTAL], n) / (median(r[OP_START], n) + median(r[OP_REMOVE], n)));
	rm_rf(workdir, NULL);
	return ratio < target && getenv("BENCH_STRICT") ? 1 : 0;
}
