/* Commands in a docker environment: exec create, a hijacked start whose
 * multiplexed stream is split into capped stdout/stderr sinks, stdin fed through
 * the same socket, and the exit code from exec inspect. On a timeout every
 * process of the command is killed inside the container (see helper.c). */
#include "providers/docker/docker.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/sha256.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define START_TIMEOUT 120.0  /* exec start answer */
#define KILL_GRACE 15.0      /* after killing: wait this long for the stream to end */
#define INSPECT_TIMEOUT 15.0 /* Running:false after the stream ended */
#define HELPER_TIMEOUT 30.0
#define STDIN_BUF (64 * 1024)

struct sink {
	int fd;
	struct strbuf *mem;
	long long cap, bytes, written;
	bool truncated;
};

static int sink_write(struct sink *s, const uint8_t *d, size_t n, struct err *err)
{
	size_t take = n;

	s->bytes += (long long)n;
	if (s->written >= s->cap) {
		s->truncated = s->truncated || n > 0;
		return 0;
	}
	if ((long long)take > s->cap - s->written) {
		take = (size_t)(s->cap - s->written);
		s->truncated = true;
	}
	if (s->fd >= 0 && write_all(s->fd, d, take) < 0)
		return err_sys(err, "write command output");
	if (s->mem)
		sb_add(s->mem, d, take);
	s->written += (long long)take;
	return 0;
}

/* The non-TTY exec stream: frames of [type, 0, 0, 0, len32be] + len bytes. */
struct demux {
	uint8_t hdr[8];
	size_t hdr_have;
	uint32_t left;
	int stream;
};

static int demux_feed(struct demux *dm, const uint8_t *d, size_t n, struct sink *out,
                      struct sink *errs, struct err *err)
{
	while (n > 0) {
		if (dm->left == 0) {
			size_t take = 8 - dm->hdr_have < n ? 8 - dm->hdr_have : n;

			memcpy(dm->hdr + dm->hdr_have, d, take);
			dm->hdr_have += take;
			d += take;
			n -= take;
			if (dm->hdr_have < 8)
				return 0;
			dm->hdr_have = 0;
			if (dm->hdr[0] > 3 || dm->hdr[1] || dm->hdr[2] || dm->hdr[3])
				return err_set(err, EPROTO,
				               "malformed exec output stream (frame "
				               "header %02x %02x %02x %02x)",
				               dm->hdr[0], dm->hdr[1], dm->hdr[2], dm->hdr[3]);
			dm->stream = dm->hdr[0];
			dm->left = (uint32_t)dm->hdr[4] << 24 | (uint32_t)dm->hdr[5] << 16 |
			           (uint32_t)dm->hdr[6] << 8 | dm->hdr[7];
			continue;
		}
		{
			size_t take = dm->left < n ? dm->left : n;
			/* 0 stdin (echoed) and 1 stdout go to stdout; 2 stderr, 3 system errors */
			struct sink *s = dm->stream >= 2 ? errs : out;

			if (sink_write(s, d, take, err) < 0)
				return -1;
			dm->left -= (uint32_t)take;
			d += take;
			n -= take;
		}
	}
	return 0;
}

static void random_hex(char *out, size_t nbytes)
{
	uint8_t buf[32];

	if (nbytes > sizeof(buf))
		nbytes = sizeof(buf);
	if (getrandom(buf, nbytes, 0) != (ssize_t)nbytes) {
		/* Not secret, only unique: time and pid will do. */
		unsigned long long x = (unsigned long long)(mono_now() * 1e9) ^ (unsigned)getpid();

		for (size_t i = 0; i < nbytes; i++, x = x * 6364136223846793005ULL + 1)
			buf[i] = (uint8_t)(x >> 33);
	}
	hex_encode(buf, nbytes, out);
}

static cJSON *str_array(const char *const *v)
{
	cJSON *a = cJSON_CreateArray();

	for (; v && *v; v++)
		cJSON_AddItemToArray(a, cJSON_CreateString(*v));
	return a;
}

/* GET /exec/ID/json: running, exit code, host pid. */
static int exec_inspect(struct docker_env *env, const char *id, bool *running, int *exit_code,
                        long *pid, struct err *err)
{
	_cleanup_free_ char *path = docker_path(env->client, "/exec/%s/json", id);
	_cleanup_json_ cJSON *v = NULL;
	const cJSON *ec;
	int status;

	if (docker_call(env->client, "GET", path, NULL, &v, &status, err) < 0)
		return docker_env_error(env, status, err);
	*running = json_get_bool(v, "Running", false);
	ec = cJSON_GetObjectItemCaseSensitive(v, "ExitCode");
	*exit_code = cJSON_IsNumber(ec) ? ec->valueint : -1;
	if (pid)
		*pid = (long)json_get_num(v, "Pid", 0);
	return 0;
}

/* Kill everything the exec started. As root in the daemon's pid namespace this is
 * done from here; otherwise by the helper inside the container. */
static void kill_exec_held(struct docker_env *env, const char *exec_id, const char *marker,
                           const char *user)
{
	struct err err = {0};
	bool running = false;
	int code;
	long pid = 0;

	if (exec_inspect(env, exec_id, &running, &code, &pid, &err) < 0) {
		log_warn("docker: exec %.12s: inspect before kill: %s", exec_id, err.msg);
		return;
	}
	if (!running)
		return;
	if (geteuid() == 0 && pid > 0 && !getenv("ROLLOUT_DOCKER_NO_HOST_KILL")) {
		_cleanup_free_ char *entry = xasprintf("%s=%s", DOCKER_EXEC_MARKER, marker);

		if (proc_environ_has((pid_t)pid, entry)) {
			int n = docker_kill_marked(marker, (pid_t)pid);

			log_debug("docker: exec %.12s timed out: killed %d processes from the host",
			          exec_id, n);
			if (n >= 0)
				return;
		}
	}
	/* Inside, reading another user's environment needs that user (there is no
	 * CAP_SYS_PTRACE): root first (it may kill anyone), then the exec's user.
	 * The pids cgroup may be full (a fork bomb): retry for a while. */
	for (int attempt = 0; attempt < 10; attempt++) {
		const char *args[] = {"kill", marker, NULL};
		_cleanup_sb_ struct strbuf out = STRBUF_INIT;

		err_clear(&err);
		if (docker_helper_exec(env, "0", args, HELPER_TIMEOUT, &out, &err) == 0 &&
		    (!user || strcmp(user, "0") == 0 || strcmp(user, "root") == 0 ||
		     docker_helper_exec(env, user, args, HELPER_TIMEOUT, &out, &err) == 0)) {
			log_debug("docker: exec %.12s timed out: helper killed %s", exec_id,
			          sb_str(&out));
			return;
		}
		log_debug("docker: kill helper attempt %d: %s", attempt + 1, err.msg);
		sleep_sec(0.2 * (attempt + 1));
	}
	log_warn("docker: could not kill the processes of timed-out exec %.12s: %s", exec_id,
	         err.msg);
}

/* Killing must happen even when the wait was ended by a cancellation. */
static void kill_exec(struct docker_env *env, const char *exec_id, const char *marker,
                      const char *user)
{
	http_cancel_hold();
	kill_exec_held(env, exec_id, marker, user);
	http_cancel_release();
}

/* After an exit status of 137: was it the OOM killer? The container cgroup's
 * oom_kill counter moved since we last looked. */
static bool check_oom(struct docker_env *env)
{
	const char *args[] = {"oom", NULL};
	_cleanup_sb_ struct strbuf out = STRBUF_INIT;
	struct err err = {0};
	long long n, before = env->oom_kills;

	if (docker_helper_exec(env, "0", args, HELPER_TIMEOUT, &out, &err) < 0) {
		log_warn("docker: reading the OOM counter: %s", err.msg);
		return false;
	}
	n = strtoll(sb_str(&out), NULL, 10);
	if (n < 0)
		return false;
	env->oom_kills = n;
	return before < 0 ? n > 0 : n > before;
}

static int exec_create(struct docker_env *env, const struct docker_exec_spec *spec,
                       const char *marker, char **id_out, struct err *err)
{
	_cleanup_json_ cJSON *body = cJSON_CreateObject();
	_cleanup_json_ cJSON *resp = NULL;
	_cleanup_free_ char *path = docker_path(env->client, "/containers/%s/exec", env->id);
	cJSON *envs = str_array(spec->env);
	const char *id;
	int status;

	cJSON_AddBoolToObject(body, "AttachStdin", spec->stdin_fd >= 0);
	cJSON_AddBoolToObject(body, "AttachStdout", true);
	cJSON_AddBoolToObject(body, "AttachStderr", true);
	cJSON_AddBoolToObject(body, "Tty", false);
	cJSON_AddItemToObject(body, "Cmd", str_array(spec->argv));
	cJSON_AddItemToArray(envs, cJSON_CreateString(marker));
	cJSON_AddItemToObject(body, "Env", envs);
	if (spec->cwd)
		cJSON_AddStringToObject(body, "WorkingDir", spec->cwd);
	if (spec->user)
		cJSON_AddStringToObject(body, "User", spec->user);
	if (docker_call(env->client, "POST", path, body, &resp, &status, err) < 0)
		return docker_env_error(env, status, err);
	id = json_get_str(resp, "Id");
	if (!id)
		return err_set(err, EPROTO, "exec create: no Id in the daemon's answer");
	*id_out = xstrdup(id);
	return 0;
}

static int exec_start(struct docker_env *env, const char *id, struct http_conn **out,
                      struct err *err)
{
	static const char body[] = "{\"Detach\":false,\"Tty\":false}";
	_cleanup_free_ char *path = docker_path(env->client, "/exec/%s/start", id);
	struct http_request req = {.method = "POST",
	                           .target = path,
	                           .content_type = "application/json",
	                           .body = body,
	                           .body_len = sizeof(body) - 1,
	                           .upgrade = true};
	double deadline = mono_now() + START_TIMEOUT;
	struct http_conn *conn = NULL;
	struct http_response r;

	if (docker_stream_open(env->client, &req, deadline, &conn, err) < 0)
		return docker_env_error(env, 0, err);
	if (http_read_response(conn, &r, false, deadline, err) < 0) {
		http_conn_close(conn);
		return docker_env_error(env, 0, err);
	}
	/* 101 with Upgrade; 200 from daemons that answer without switching. */
	if (r.status != 101 && r.status != 200) {
		int status = r.status;

		docker_response_error(&r, deadline, err);
		http_response_release(&r);
		http_conn_close(conn);
		return docker_env_error(env, status, err);
	}
	http_response_release(&r);
	*out = conn;
	return 0;
}

int docker_exec_run(struct docker_env *env, const struct docker_exec_spec *spec,
                    struct exec_result *res, struct err *err)
{
	double t0 = mono_now();
	double deadline = spec->timeout_sec > 0 ? t0 + spec->timeout_sec : 0;
	double kill_deadline = 0;
	char marker_hex[33];
	_cleanup_free_ char *marker = NULL;
	_cleanup_free_ char *exec_id = NULL;
	_cleanup_http_conn_ struct http_conn *conn = NULL;
	_cleanup_free_ uint8_t *inbuf = NULL;
	struct sink out = {.fd = spec->out_fd, .mem = spec->out_mem, .cap = spec->cap};
	struct sink errs = {.fd = spec->err_fd, .mem = spec->err_mem, .cap = spec->cap};
	struct demux dm = {0};
	size_t in_have = 0, in_off = 0;
	bool in_eof = spec->stdin_fd < 0, cancelled = false;
	bool running = true;
	int code = -1;

	memset(res, 0, sizeof(*res));
	random_hex(marker_hex, 16);
	marker = xasprintf("%s=%s", DOCKER_EXEC_MARKER, marker_hex);
	if (exec_create(env, spec, marker, &exec_id, err) < 0 ||
	    exec_start(env, exec_id, &conn, err) < 0)
		return -1;
	if (!in_eof)
		inbuf = xmalloc(STDIN_BUF);

	for (;;) {
		struct pollfd pfd[2] = {{.fd = http_conn_fd(conn), .events = POLLIN}, {.fd = -1}};
		double now = mono_now();
		double until = kill_deadline ? kill_deadline : deadline;
		int ms = 500;

		if (!cancelled && http_cancel_pending()) {
			cancelled = true;
			if (!spec->is_helper)
				kill_exec(env, exec_id, marker_hex, spec->user);
			kill_deadline = mono_now() + KILL_GRACE;
			continue;
		}
		if (until > 0 && now >= until) {
			if (kill_deadline || spec->is_helper) {
				if (spec->is_helper)
					return err_set(err, ETIMEDOUT, "helper %s timed out",
					               spec->argv[1]);
				log_warn(
				    "docker: exec %.12s: output still open %.0f s after the kill",
				    exec_id, KILL_GRACE);
				break;
			}
			res->timed_out = true;
			kill_exec(env, exec_id, marker_hex, spec->user);
			kill_deadline = mono_now() + KILL_GRACE;
			continue;
		}
		if (until > 0 && (until - now) * 1000 < ms)
			ms = (int)((until - now) * 1000) + 1;
		if (in_have > in_off)
			pfd[0].events |= POLLOUT;
		else if (!in_eof)
			pfd[1] = (struct pollfd){.fd = spec->stdin_fd, .events = POLLIN};
		if (http_conn_buffered(conn) == 0) {
			int r = poll(pfd, 2, ms);

			if (r < 0 && errno != EINTR)
				return err_sys(err, "poll");
			if (r <= 0)
				continue;
		} else {
			pfd[0].revents = POLLIN;
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			const uint8_t *d;
			ssize_t n = http_raw_next(conn, &d, 0, mono_now() + 5, err);

			if (n < 0) {
				if (err->code == ETIMEDOUT)
					continue;
				env->daemon_lost = true;
				return err_wrap(err, "exec output stream");
			}
			if (n == 0)
				break;
			if (demux_feed(&dm, d, (size_t)n, &out, &errs, err) < 0)
				return -1;
		}
		if (pfd[0].revents & POLLOUT) {
			struct err ignored = {0};
			ssize_t w =
			    http_raw_write_some(conn, inbuf + in_off, in_have - in_off, &ignored);

			if (w < 0) { /* the command no longer reads its input */
				in_have = in_off = 0;
				in_eof = true;
			} else {
				in_off += (size_t)w;
			}
			if (in_off == in_have && in_eof)
				http_raw_close_write(conn, &ignored);
		}
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(spec->stdin_fd, inbuf, STDIN_BUF);

			if (n < 0 && errno == EINTR)
				continue;
			in_off = 0;
			in_have = n > 0 ? (size_t)n : 0;
			if (n <= 0) {
				struct err ignored = {0};

				in_eof = true;
				http_raw_close_write(conn, &ignored);
			}
		}
	}
	http_conn_close(steal_ptr(&conn));
	if (cancelled)
		return err_set(err, ECANCELED, "cancelled");

	/* The stream ends when the command's output is closed, normally as it exits;
	 * the exit code follows shortly. A command that closed its output and runs
	 * on is waited for like any other: up to its deadline, then killed. */
	for (double pause = 0.001, gave_up = 0;;) {
		if (exec_inspect(env, exec_id, &running, &code, NULL, err) < 0)
			return -1;
		if (!running)
			break;
		if (http_cancel_pending()) {
			if (!spec->is_helper)
				kill_exec(env, exec_id, marker_hex, spec->user);
			return err_set(err, ECANCELED, "cancelled");
		}
		if (deadline > 0 && mono_now() >= deadline && !gave_up) {
			if (spec->is_helper)
				return err_set(err, ETIMEDOUT, "helper %s timed out",
				               spec->argv[1]);
			res->timed_out = true;
			kill_exec(env, exec_id, marker_hex, spec->user);
			gave_up = mono_now() + INSPECT_TIMEOUT;
		}
		if (gave_up > 0 && mono_now() > gave_up) {
			log_warn("docker: exec %.12s still running after it was killed", exec_id);
			break;
		}
		sleep_sec(pause);
		pause = pause < 0.25 ? pause * 2 : pause;
	}
	res->exit_code = code < 0 ? 137 : code;
	res->stdout_bytes = out.bytes;
	res->stderr_bytes = errs.bytes;
	res->stdout_truncated = out.truncated;
	res->stderr_truncated = errs.truncated;
	if (!spec->is_helper) {
		if (res->exit_code == 137 && !res->timed_out)
			res->oom_killed = check_oom(env);
	}
	res->duration_sec = mono_now() - t0;
	return 0;
}

int docker_helper_exec(struct docker_env *env, const char *user, const char *const *args,
                       double timeout, struct strbuf *out, struct err *err)
{
	struct strv argv = STRV_INIT;
	struct exec_result res;
	_cleanup_sb_ struct strbuf errs = STRBUF_INIT;
	struct docker_exec_spec spec = {.user = user,
	                                .is_helper = true,
	                                .timeout_sec = timeout,
	                                .stdin_fd = -1,
	                                .out_fd = -1,
	                                .err_fd = -1,
	                                .out_mem = out,
	                                .err_mem = &errs,
	                                .cap = 1 << 20};
	int rc;

	strv_push(&argv, DOCKER_HELPER_PATH);
	for (; *args; args++)
		strv_push(&argv, *args);
	spec.argv = (const char *const *)strv_array(&argv);
	rc = docker_exec_run(env, &spec, &res, err);
	if (rc == 0 && res.exit_code != 0)
		rc = err_set(err, EIO, "helper %s exited with %d: %.300s%.300s", spec.argv[1],
		             res.exit_code, out ? sb_str(out) : "", sb_str(&errs));
	strv_release(&argv);
	return rc;
}

int docker_provider_exec(struct environment *handle, const struct exec_request *req,
                         struct exec_result *res, struct err *err)
{
	struct docker_env *env = docker_env_of(handle);
	struct docker_exec_spec spec = {.argv = req->argv,
	                                .env = req->env,
	                                .cwd = req->cwd,
	                                .user = req->user,
	                                .timeout_sec = req->timeout_sec,
	                                .stdin_fd = req->stdin_fd,
	                                .cap = req->output_cap > 0 ? req->output_cap
	                                                           : EXEC_OUTPUT_CAP_DEFAULT};

	_cleanup_strvs_ struct strv merged = STRV_INIT;

	if (!req->argv || !req->argv[0])
		return err_set(err, EINVAL, "exec: empty command");
	/* Docker reads stdout and stderr from two pipes: their relative order is lost.
	 * For one interleaved stream the helper points stderr at stdout first. */
	if (req->merge_stderr) {
		strv_push(&merged, DOCKER_HELPER_PATH);
		strv_push(&merged, "merge-stderr");
		for (const char *const *a = req->argv; *a; a++)
			strv_push(&merged, *a);
		spec.argv = (const char *const *)strv_array(&merged);
	}
	/* The caller's descriptors, borrowed: written to, never reopened or closed. */
	spec.out_fd = req->stdout_fd > 0 ? req->stdout_fd : -1;
	spec.err_fd = req->merge_stderr ? spec.out_fd : req->stderr_fd > 0 ? req->stderr_fd : -1;
	if (docker_exec_run(env, &spec, res, err) < 0)
		return err_wrap(err, "exec %s in %s", req->argv[0], env->name);
	return 0;
}
