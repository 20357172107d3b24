/* Processes: one way to run a child (argv or a function, env, cwd, fds, process
 * group, deadline, cancellation: every fork of rollout but the namespaced clones
 * goes through proc_start/proc_finish), and killing everything in a pid
 * namespace but its init. */
#include "rollout/proc.h"
#include "rollout/alloc.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define KILL_TRACK_MAX 65536

/* The state letter of /proc/PID/stat ('?' when it cannot be read). */
static char proc_state(long pid)
{
	char path[64], buf[512];
	int fd;
	ssize_t n;
	char *rp;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold anything, ')' included. */
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && rp[2] ? rp[2] : '?';
}

static bool seen_before(const pid_t *seen, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (seen[i] == pid)
			return true;
	return false;
}

/* One scan: signals every live process but 1 and self; returns how many. */
static int signal_all(int sig, pid_t self, pid_t *seen, size_t *n_seen)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int alive = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		char st;

		if (*end || pid <= 1 || pid == self)
			continue;
		st = proc_state(pid);
		if (st == '?' || st == 'Z' || st == 'X' || st == 'x')
			continue;
		kill((pid_t)pid, sig);
		alive++;
		if (sig == SIGKILL && *n_seen < KILL_TRACK_MAX &&
		    !seen_before(seen, *n_seen, (pid_t)pid))
			seen[(*n_seen)++] = (pid_t)pid;
	}
	closedir(d);
	return alive;
}

int proc_kill_all_but_init(double budget_sec)
{
	static pid_t seen[KILL_TRACK_MAX];
	size_t n_seen = 0;
	pid_t self = getpid();
	double end = mono_now() + budget_sec;

	for (int round = 0;; round++) {
		/* Stopped processes cannot fork while the next scan looks. */
		if (signal_all(SIGSTOP, self, seen, &n_seen) < 0)
			return round == 0 ? -1 : (int)n_seen;
		if (signal_all(SIGKILL, self, seen, &n_seen) <= 0)
			break;
		if (mono_now() > end)
			break;
		usleep(round < 20 ? 500 : 5000);
	}
	return (int)n_seen;
}

/* What a child that could not start tells its parent before it ends. */
struct start_report {
	int errno_;
	char what[16]; /* "chdir", "setup", "exec", "fds" */
};

#define STDIO_PIPE (-1)
#define N_STDIO 3

static bool env_same_key(const char *entry, const char *add)
{
	size_t k = strcspn(add, "=");

	return strncmp(entry, add, k) == 0 && (entry[k] == '=' || entry[k] == '\0');
}

/* The child's environment, built before the fork (no malloc after it). */
static void build_env(const struct proc *p, struct strv *out)
{
	const char *const *base = p->env ? p->env : (const char *const *)environ;

	for (const char *const *e = base; e && *e; e++) {
		bool replaced = false;

		for (const char *const *a = p->env_add; a && *a && !replaced; a++)
			replaced = env_same_key(*e, *a);
		if (!replaced)
			strv_push(out, *e);
	}
	for (const char *const *a = p->env_add; a && *a; a++)
		if (strchr(*a, '='))
			strv_push(out, *a);
}

static void close_pair(int fds[2])
{
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

static void child_fail(int report_fd, const char *what)
{
	struct start_report r = {.errno_ = errno};

	strncpy(r.what, what, sizeof(r.what) - 1);
	if (write(report_fd, &r, sizeof(r)) < 0)
		_exit(127);
	_exit(strcmp(what, "exec") == 0 ? 127 : 126);
}

#define MAX_EXTRA_FDS 16

/* Puts each wanted source fd at its place (0, 1, 2, 3 + i). Every source, and the
 * report pipe, first moves above all the targets, so that none sitting on
 * another's target is overwritten; then the originals are closed (a fn child
 * does not exec, so O_CLOEXEC would not close them) and the copies put in place. */
static int child_fds(const struct proc *p, int pipes[N_STDIO][2], int *report_fd)
{
	int n = N_STDIO + (int)p->n_extra_fds, tmp[N_STDIO + MAX_EXTRA_FDS];
	const int given[N_STDIO] = {p->in, p->out, p->err};
	const bool null[N_STDIO] = {p->no_stdin, p->no_stdout, p->no_stderr};

	if (p->n_extra_fds > MAX_EXTRA_FDS)
		return -1;
	int moved = fcntl(*report_fd, F_DUPFD_CLOEXEC, n + 3);

	if (moved < 0)
		_exit(126);
	/* The original must go too: a fn child holding it would keep proc_start
	 * waiting for the report until the child ends. */
	close(*report_fd);
	*report_fd = moved;
	for (int i = 0; i < n; i++) {
		int src = -1;
		bool opened = false;

		tmp[i] = -1;
		if (i >= N_STDIO)
			src = p->extra_fds[i - N_STDIO];
		else if (null[i])
			opened = (src = open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY)) >= 0;
		else if (given[i] == STDIO_PIPE)
			src = pipes[i][i == 0 ? 0 : 1];
		else if (given[i] > 0)
			src = given[i];
		else
			continue; /* inherited */
		if (src < 0 || (tmp[i] = fcntl(src, F_DUPFD_CLOEXEC, n + 3)) < 0)
			return -1;
		if (opened)
			close(src);
	}
	for (int i = 0; i < N_STDIO; i++)
		close_pair(pipes[i]);
	for (int i = 0; i < n; i++) {
		if (tmp[i] < 0)
			continue;
		if (dup2(tmp[i], i) < 0)
			return -1;
		close(tmp[i]);
	}
	return 0;
}

static void __attribute__((noreturn))
child_main(const struct proc *p, int pipes[N_STDIO][2], int report_fd, char **envp)
{
	if (p->new_session)
		setsid();
	else if (p->new_pgroup)
		setpgid(0, 0);
	if (p->default_signals) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
	}
	if (child_fds(p, pipes, &report_fd) < 0)
		child_fail(report_fd, "fds");
	if (p->dir && chdir(p->dir) < 0)
		child_fail(report_fd, "chdir");
	if (p->setup && p->setup(p->arg) != 0)
		child_fail(report_fd, "setup");
	if (p->fn) {
		close(report_fd);
		_exit(p->fn(p->arg));
	}
	execvpe(p->argv[0], (char *const *)p->argv, envp);
	child_fail(report_fd, "exec");
	_exit(127);
}

static void close_parent_ends(struct proc *p)
{
	int *field[N_STDIO] = {&p->in, &p->out, &p->err};

	for (int i = 0; i < N_STDIO; i++)
		if (p->owned[i] && *field[i] >= 0) {
			close(*field[i]);
			*field[i] = -1;
			p->owned[i] = false;
		}
}

static int open_pipes(const struct proc *p, int pipes[N_STDIO][2], struct err *err)
{
	const int given[N_STDIO] = {p->in, p->out, p->err};
	const bool null[N_STDIO] = {p->no_stdin, p->no_stdout, p->no_stderr};

	for (int i = 0; i < N_STDIO; i++)
		if (given[i] == STDIO_PIPE && !null[i] && pipe2(pipes[i], O_CLOEXEC) < 0)
			return err_sys(err, "pipe");
	return 0;
}

static void reap_blocking(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
}

/* After the fork: the child's ends closed, the parent's stored in p. */
static void keep_parent_ends(struct proc *p, int pipes[N_STDIO][2])
{
	int *field[N_STDIO] = {&p->in, &p->out, &p->err};

	for (int i = 0; i < N_STDIO; i++) {
		int mine = i == 0 ? 1 : 0;

		if (pipes[i][0] < 0)
			continue;
		close(pipes[i][1 - mine]);
		fcntl(pipes[i][mine], F_SETFL, O_NONBLOCK);
		*field[i] = pipes[i][mine];
		p->owned[i] = true;
		pipes[i][0] = pipes[i][1] = -1;
	}
}

int proc_start(struct proc *p, struct err *err)
{
	_cleanup_strvs_ struct strv env = STRV_INIT;
	int pipes[N_STDIO][2] = {{-1, -1}, {-1, -1}, {-1, -1}}, report[2] = {-1, -1};
	struct start_report r;
	char **envp = NULL;
	ssize_t n;

	p->pid = 0;
	p->status = p->exit_code = p->term_sig = 0;
	p->signalled = p->timed_out = p->cancelled = false;
	if (!p->fn) {
		build_env(p, &env);
		envp = strv_array(&env);
	}
	if (open_pipes(p, pipes, err) < 0)
		goto fail;
	if (pipe2(report, O_CLOEXEC) < 0) {
		err_sys(err, "pipe");
		goto fail;
	}
	/* What the caller buffered must not be written twice (by a fn child's exit). */
	fflush(stdout);
	fflush(stderr);
	p->pid = fork();
	if (p->pid < 0) {
		p->pid = 0;
		err_sys(err, "fork");
		goto fail;
	}
	if (p->pid == 0) {
		close(report[0]);
		child_main(p, pipes, report[1], envp);
	}
	/* Both sides set the group, so a kill right after the fork reaches it. */
	if (p->new_pgroup && !p->new_session)
		setpgid(p->pid, p->pid);
	close(report[1]);
	report[1] = -1;
	keep_parent_ends(p, pipes);
	do
		n = read(report[0], &r, sizeof(r));
	while (n < 0 && errno == EINTR);
	close(report[0]);
	if (n != (ssize_t)sizeof(r))
		return 0;
	reap_blocking(p->pid, &p->status);
	p->pid = 0;
	close_parent_ends(p);
	r.what[sizeof(r.what) - 1] = '\0';
	errno = r.errno_;
	if (strcmp(r.what, "exec") == 0)
		return err_sys(err, "exec %s", p->argv[0]);
	if (strcmp(r.what, "chdir") == 0)
		return err_sys(err, "chdir %s", p->dir);
	return err_sys(err, "start a child (%s)", r.what);

fail:
	for (int i = 0; i < N_STDIO; i++)
		close_pair(pipes[i]);
	close_pair(report);
	return -1;
}

void proc_set_status(struct proc *p, int status)
{
	p->status = status;
	p->signalled = WIFSIGNALED(status);
	p->term_sig = p->signalled ? WTERMSIG(status) : 0;
	p->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + p->term_sig;
}

void proc_signal(const struct proc *p, int sig)
{
	if (p->pid <= 0)
		return;
	if (p->new_pgroup || p->new_session)
		kill(-p->pid, sig);
	kill(p->pid, sig);
}

/* One read of a pipe to on_output; false at its end (then closed). */
static bool read_pipe(struct proc *p, int stream, int *fd)
{
	char buf[8192];
	ssize_t n = read(*fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0) {
		close(*fd);
		*fd = -1;
		p->owned[stream] = false;
		return false;
	}
	if (p->on_output)
		p->on_output(p->output_ctx, stream, buf, (size_t)n);
	return true;
}

/* The child is gone: what it wrote is all in the pipes already (a write completes
 * into the pipe before the writer can exit); what a descendant writes later is not
 * waited for. */
static void drain_pipes(struct proc *p)
{
	int *field[N_STDIO] = {&p->in, &p->out, &p->err};

	for (int i = 1; i < N_STDIO; i++) {
		int guard = 0;

		if (!p->owned[i])
			continue;
		/* Bounded: a descendant still writing does not keep us here. */
		while (guard++ < 4096 && *field[i] >= 0 && read_pipe(p, i, field[i])) {
			struct pollfd pf = {.fd = *field[i], .events = POLLIN};

			if (poll(&pf, 1, 0) <= 0)
				break;
		}
	}
	close_parent_ends(p);
}

/* Deadline and cancellation: the kills due now; the time until the next one. */
static double enforce(struct proc *p, double *kill_at)
{
	double now = mono_now();

	if (p->cancellable && cancel_requested() && !p->cancelled) {
		p->cancelled = true;
		proc_signal(p, SIGKILL);
	}
	if (p->deadline > 0 && now >= p->deadline && !p->timed_out) {
		p->timed_out = true;
		proc_signal(p, p->kill_grace > 0 ? SIGTERM : SIGKILL);
		*kill_at = p->kill_grace > 0 ? now + p->kill_grace : 0;
	}
	if (*kill_at > 0 && now >= *kill_at) {
		proc_signal(p, SIGKILL);
		*kill_at = 0;
	}
	if (*kill_at > 0)
		return *kill_at - now;
	if (p->deadline > 0 && !p->timed_out)
		return p->deadline - now;
	return 1e9;
}

int proc_finish(struct proc *p, struct err *err)
{
	int pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0), status = 0;
	double kill_at = 0;
	bool failed = false;

	if (p->pid <= 0)
		return err_set(err, EINVAL, "no child to wait for");
	if (p->owned[0]) { /* stdin pipe the caller did not close: EOF now */
		close(p->in);
		p->in = -1;
		p->owned[0] = false;
	}
	for (;;) {
		struct pollfd pf[3];
		nfds_t n = 0;
		pid_t w = waitpid(p->pid, &status, WNOHANG);
		/* Without a pidfd the exit is noticed by polling often. */
		double tick = pidfd >= 0 ? 0.25 : 0.01, next;
		int r;

		if (w == p->pid)
			break;
		if (w < 0 && errno != EINTR) {
			err_sys(err, "wait for %s", p->argv ? p->argv[0] : "a child");
			failed = true;
			proc_signal(p, SIGKILL);
			reap_blocking(p->pid, &status);
			break;
		}
		next = enforce(p, &kill_at);
		if (next < tick)
			tick = next > 0 ? next : 0;
		if (pidfd >= 0)
			pf[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		if (p->owned[1])
			pf[n++] = (struct pollfd){.fd = p->out, .events = POLLIN};
		if (p->owned[2])
			pf[n++] = (struct pollfd){.fd = p->err, .events = POLLIN};
		r = poll(pf, n, (int)(tick * 1000) + 1);
		for (nfds_t i = 0; r > 0 && i < n; i++) {
			if (!pf[i].revents || pf[i].fd == pidfd)
				continue;
			read_pipe(p, pf[i].fd == p->out ? 1 : 2,
			          pf[i].fd == p->out ? &p->out : &p->err);
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	proc_set_status(p, status);
	drain_pipes(p);
	if (p->kill_group_at_exit && (p->new_pgroup || p->new_session))
		kill(-p->pid, SIGKILL);
	p->pid = 0;
	return failed ? -1 : 0;
}

int proc_run(struct proc *p, struct err *err)
{
	if (proc_start(p, err) < 0)
		return -1;
	return proc_finish(p, err);
}
