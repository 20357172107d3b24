/* Running a command in an environment (client side; any rollout process can do
 * it through ctl.sock). The user is resolved from the image's passwd/group, the
 * environment is image Env + task env + request env, the command joins a fresh
 * child cgroup so a timeout kills everything it started, and stdout/stderr come
 * back through pipes, written to the host files up to the cap and counted
 * beyond it. */
#include "providers/sandbox/sandbox.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* After a kill, how long the init may take to report the exit. */
#define KILL_GRACE_SEC 30.0

/* Sets KEY=VALUE in sv, replacing an earlier value of KEY. */
static void env_set(struct strv *sv, const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t kl = eq ? (size_t)(eq - kv) : strlen(kv);

	if (!eq)
		return;
	for (size_t i = 0; i < sv->n; i++)
		if (strncmp(sv->v[i], kv, kl) == 0 && sv->v[i][kl] == '=') {
			free(sv->v[i]);
			sv->v[i] = xstrdup(kv);
			return;
		}
	strv_push(sv, kv);
}

static bool env_has(const struct strv *sv, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < sv->n; i++)
		if (strncmp(sv->v[i], key, kl) == 0 && sv->v[i][kl] == '=')
			return true;
	return false;
}

static void build_env(const struct sandbox_env *env, const struct exec_request *req,
                      const struct sandbox_user *u, struct strv *out)
{
	char buf[512];

	for (char **p = env->image_env; p && *p; p++)
		env_set(out, *p);
	for (char **p = env->cfg_env; p && *p; p++)
		env_set(out, *p);
	for (const char *const *p = req->env; p && *p; p++)
		env_set(out, *p);
	if (!env_has(out, "PATH"))
		env_set(out, "PATH=" DEFAULT_PATH);
	if (!env_has(out, "HOSTNAME")) {
		snprintf(buf, sizeof(buf), "HOSTNAME=%.63s", env->name);
		env_set(out, buf);
	}
	if (!env_has(out, "HOME")) {
		snprintf(buf, sizeof(buf), "HOME=%s", u->home);
		env_set(out, buf);
	}
}

/* One captured stream. */
struct capture {
	int fd;  /* read end of the pipe, -1 at EOF */
	int out; /* host file, -1 to discard */
	long long cap;
	long long total;
	long long written;
	bool failed;
};

static void capture_read(struct capture *c)
{
	char buf[65536];
	ssize_t r = read(c->fd, buf, sizeof(buf));

	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (r <= 0) {
		close(c->fd);
		c->fd = -1;
		return;
	}
	c->total += r;
	if (c->out >= 0 && c->written < c->cap) {
		size_t n = (size_t)r;

		if ((long long)n > c->cap - c->written)
			n = (size_t)(c->cap - c->written);
		if (write_all(c->out, buf, n) < 0)
			c->failed = true;
		c->written += (long long)n;
	}
}

static int send_request(int conn, const struct ctl_exec *h, const int *fds, int nfds,
                        const struct strbuf *payload, struct err *err)
{
	char chunk[CTL_CHUNK + sizeof(uint32_t)];
	uint32_t type = CTL_DATA;

	if (ctl_send(conn, h, sizeof(*h), fds, nfds) < 0)
		return err_sys(err, "send the exec request");
	memcpy(chunk, &type, sizeof(type));
	for (size_t off = 0; off < payload->len;) {
		size_t n = payload->len - off > CTL_CHUNK ? CTL_CHUNK : payload->len - off;

		memcpy(chunk + sizeof(type), payload->buf + off, n);
		if (ctl_send(conn, chunk, sizeof(type) + n, NULL, 0) < 0)
			return err_sys(err, "send the exec request");
		off += n;
	}
	return 0;
}

/* Unique within the process, across handles of the same environment. */
static unsigned exec_seq;

static struct cg_exec *exec_cgroup_new(struct sandbox_env *env, struct err *err)
{
	struct cg_exec *ex = xcalloc(1, sizeof(*ex));
	char leaf[64];

	/* A kept environment may still hold a busy one of an earlier process that
	 * had our pid: take the next name. */
	for (int attempt = 0;; attempt++) {
		snprintf(leaf, sizeof(leaf), "exec.%d.%u", (int)getpid(),
		         __atomic_fetch_add(&exec_seq, 1, __ATOMIC_RELAXED));
		if (cg_exec_create(&env->cg, leaf, ex, err) == 0)
			return ex;
		if (errno != EEXIST || attempt >= 100)
			break;
	}
	free(ex);
	return NULL;
}

void sandbox_env_prepare_exec_cgroup(struct sandbox_env *env)
{
	struct cg_exec *ex;

	if (env->cg.mode == CG_NONE || env->spare_exec)
		return;
	ex = exec_cgroup_new(env, NULL);
	if (ex && !__atomic_compare_exchange_n(&env->spare_exec, &(struct cg_exec *){NULL}, ex,
	                                       false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		cg_exec_finish(ex);
		free(ex);
	}
}

void sandbox_env_drop_exec_cgroup(struct sandbox_env *env)
{
	struct cg_exec *ex = __atomic_exchange_n(&env->spare_exec, NULL, __ATOMIC_ACQ_REL);

	if (ex) {
		cg_exec_finish(ex);
		free(ex);
	}
}

/* After the command: an empty cgroup is kept for the next exec, one still
 * holding background processes is left for the environment's teardown. */
static void exec_cgroup_done(struct sandbox_env *env, struct cg_exec *ex)
{
	char buf[16];
	ssize_t n = -1;

	if (!ex)
		return;
	if (lseek(ex->procs_r, 0, SEEK_SET) == 0)
		n = read(ex->procs_r, buf, sizeof(buf));
	if (n == 0 && __atomic_compare_exchange_n(&env->spare_exec, &(struct cg_exec *){NULL}, ex,
	                                          false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	cg_exec_finish(ex);
	free(ex);
}

int sandbox_exec(struct sandbox_env *env, const struct exec_request *req, struct exec_result *res,
                 struct err *err)
{
	double t0 = mono_now(), deadline, kill_deadline = 0;
	struct sandbox_user u;
	_cleanup_strvs_ struct strv envv = STRV_INIT;
	_cleanup_sb_ struct strbuf payload = STRBUF_INIT;
	_cleanup_close_ int conn = -1, in = -1;
	struct cg_exec *cgx = NULL;
	struct capture cout = {.fd = -1, .out = -1}, cerr = {.fd = -1, .out = -1};
	int po[2] = {-1, -1}, pe[2] = {-1, -1}, fds[CTL_MAX_FDS], nfds = 0;
	struct ctl_exec h = {.type = CTL_EXEC};
	const char *cwd;
	long long oom0, cap;
	int status = -1, rc = -1, root;
	bool killed = false, cancelled = false;

	memset(res, 0, sizeof(*res));
	if (!req->argv || !req->argv[0])
		return err_set(err, EINVAL, "exec: empty command");
	root = sandbox_env_root_fd(env, err);
	if (root < 0)
		return -1;
	if (users_resolve(root, req->user ? req->user : env->image_user, &u, err) < 0)
		return err_wrap(err, "exec in %s", env->name);
	build_env(env, req, &u, &envv);
	cwd = req->cwd && *req->cwd                   ? req->cwd
	      : env->cfg_workdir && *env->cfg_workdir ? env->cfg_workdir
	                                              : env->image_workdir;

	h.uid = u.uid;
	h.gid = u.gid;
	h.ngroups = (uint32_t)u.ngroups;
	for (int i = 0; i < u.ngroups; i++) {
		uint32_t g = u.groups[i];

		sb_add(&payload, &g, sizeof(g));
	}
	sb_add(&payload, cwd, strlen(cwd) + 1);
	for (const char *const *a = req->argv; *a; a++, h.argc++)
		sb_add(&payload, *a, strlen(*a) + 1);
	for (size_t i = 0; i < envv.n; i++, h.envc++)
		sb_add(&payload, envv.v[i], strlen(envv.v[i]) + 1);
	if (payload.len > CTL_MAX_PAYLOAD)
		return err_set(err, E2BIG, "exec: command line and environment too large");
	h.payload_len = (uint32_t)payload.len;

	conn = sandbox_env_connect(env, err);
	if (conn < 0)
		return -1;
	if (env->cg.mode != CG_NONE) {
		cgx = __atomic_exchange_n(&env->spare_exec, NULL, __ATOMIC_ACQ_REL);
		if (!cgx && !(cgx = exec_cgroup_new(env, err)))
			return err_wrap(err, "exec in %s", env->name);
	}
	cap = req->output_cap > 0 ? req->output_cap : EXEC_OUTPUT_CAP_DEFAULT;
	cout.cap = cerr.cap = cap;
	/* The caller's descriptors, borrowed: written to, never reopened or closed. */
	cout.out = req->stdout_fd > 0 ? req->stdout_fd : -1;
	cerr.out = req->merge_stderr || req->stderr_fd <= 0 ? -1 : req->stderr_fd;
	if (pipe2(po, O_CLOEXEC) < 0 || (!req->merge_stderr && pipe2(pe, O_CLOEXEC) < 0)) {
		err_sys(err, "pipe");
		goto out;
	}
	in = req->stdin_fd >= 0 ? dup(req->stdin_fd) : open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		err_sys(err, "exec: stdin");
		goto out;
	}
	fds[nfds++] = in;
	fds[nfds++] = po[1];
	fds[nfds++] = req->merge_stderr ? po[1] : pe[1];
	h.fd_procs_w = h.fd_procs_r = h.fd_freeze = h.fd_kill = -1;
	if (cgx && cgx->procs_w >= 0) {
		h.fd_procs_w = nfds;
		fds[nfds++] = cgx->procs_w;
	}
	if (cgx && cgx->procs_r >= 0) {
		h.fd_procs_r = nfds;
		fds[nfds++] = cgx->procs_r;
	}
	if (cgx && cgx->freeze >= 0) {
		h.fd_freeze = nfds;
		fds[nfds++] = cgx->freeze;
	}
	if (cgx && cgx->kill >= 0) {
		h.fd_kill = nfds;
		fds[nfds++] = cgx->kill;
	}
	h.freeze_v1 = cgx && cgx->v1;
	oom0 = cg_env_oom_kills(&env->cg);
	if (send_request(conn, &h, fds, nfds, &payload, err) < 0)
		goto out;
	close(po[1]);
	po[1] = -1;
	if (pe[1] >= 0) {
		close(pe[1]);
		pe[1] = -1;
	}
	cout.fd = po[0];
	po[0] = -1;
	cerr.fd = pe[0];
	pe[0] = -1;

	deadline = req->timeout_sec > 0 ? t0 + req->timeout_sec : 0;
	for (;;) {
		struct pollfd pf[3];
		int n = 0, timeout = -1, ci = -1, oi = -1, ei = -1;
		double now = mono_now();

		if (status != -1) {
			/* The command is gone; take what its pipes still hold. */
			if (cout.fd >= 0)
				fcntl(cout.fd, F_SETFL, O_NONBLOCK);
			if (cerr.fd >= 0)
				fcntl(cerr.fd, F_SETFL, O_NONBLOCK);
			while (cout.fd >= 0 || cerr.fd >= 0) {
				long long before = cout.total + cerr.total;

				if (cout.fd >= 0)
					capture_read(&cout);
				if (cerr.fd >= 0)
					capture_read(&cerr);
				if (cout.total + cerr.total == before)
					break;
			}
			break;
		}
		if (!killed && (cancel_requested() || (deadline && now >= deadline))) {
			struct ctl_msg k = {.type = CTL_KILL};

			cancelled = cancel_requested();
			res->timed_out = !cancelled;
			killed = true;
			kill_deadline = now + KILL_GRACE_SEC;
			ctl_send(conn, &k, sizeof(k), NULL, 0);
		}
		if (killed && now >= kill_deadline) {
			err_set(err, ETIMEDOUT, "exec in %s: the command did not die after a kill",
			        env->name);
			goto out;
		}
		if (killed)
			timeout = (int)((kill_deadline - now) * 1000) + 1;
		else if (deadline)
			timeout = (int)((deadline - now) * 1000) + 1;
		if (timeout < 0 || timeout > 200)
			timeout = 200; /* to notice cancellation */
		pf[n] = (struct pollfd){.fd = conn, .events = POLLIN};
		ci = n++;
		if (cout.fd >= 0) {
			pf[n] = (struct pollfd){.fd = cout.fd, .events = POLLIN};
			oi = n++;
		}
		if (cerr.fd >= 0) {
			pf[n] = (struct pollfd){.fd = cerr.fd, .events = POLLIN};
			ei = n++;
		}
		if (poll(pf, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			err_sys(err, "poll");
			goto out;
		}
		if (oi >= 0 && pf[oi].revents)
			capture_read(&cout);
		if (ei >= 0 && pf[ei].revents)
			capture_read(&cerr);
		if (pf[ci].revents) {
			struct ctl_msg m;
			ssize_t r = ctl_recv(conn, &m, sizeof(m), NULL, NULL);

			if (r <= 0) {
				err_set(err, EIO, "exec in %s: the environment's init went away",
				        env->name);
				goto out;
			}
			if (m.type == CTL_ERROR) {
				err_set(err, m.value ? m.value : EIO, "exec in %s: %.*s", env->name,
				        (int)sizeof(m.text), m.text);
				goto out;
			}
			if (m.type == CTL_EXIT)
				status = m.value;
		}
	}
	if (cancelled) {
		err_set(err, ECANCELED, "exec in %s: cancelled", env->name);
		goto out;
	}
	if (cout.failed || cerr.failed) {
		err_sys(err, "exec in %s: write output", env->name);
		goto out;
	}
	res->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	{
		long long oom1 = cg_env_oom_kills(&env->cg);

		res->oom_killed = oom0 >= 0 && oom1 > oom0 && !res->timed_out;
	}
	res->stdout_bytes = cout.total;
	res->stderr_bytes = cerr.total;
	res->stdout_truncated = cout.total > cout.written && cout.out >= 0;
	res->stderr_truncated = cerr.total > cerr.written && cerr.out >= 0;
	rc = 0;
out:
	res->duration_sec = mono_now() - t0;
	{
		int *all[] = {&po[0], &po[1], &pe[0], &pe[1], &cout.fd, &cerr.fd};

		for (size_t i = 0; i < ARRAY_SIZE(all); i++)
			if (*all[i] >= 0)
				close(*all[i]);
	}
	exec_cgroup_done(env, cgx);
	return rc;
}
