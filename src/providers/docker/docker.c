/* The docker provider: task environments as containers on a Docker daemon, driven
 * through the Engine API (api.c, on util/http.c). Containers sleep under Docker's init
 * with rollout's own binary as the sleeper (helper.c); commands are execs
 * (docker_exec.c); files move through the archive endpoints (docker_archive.c); images come
 * from docker_build.c. A kept environment (preserve_env) has restart policy
 * unless-stopped: that is what `rollout gc` leaves alone. */
#include "providers/docker/docker.h"
#include "providers/probe.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEPT_RESTART_POLICY "unless-stopped"

static const char *const logs_targets[3] = {ENV_AGENT_DIR, ENV_VERIFIER_DIR, ENV_ARTIFACTS_DIR};

static void docker_env_free(struct docker_env *env)
{
	if (!env)
		return;
	docker_client_free(env->client);
	free(env->id);
	free(env->name);
	free(env->image);
	for (int i = 0; i < 3; i++)
		free(env->host_logs[i]);
	free(env);
}

/* ---- errors ---------------------------------------------------------------------- */

int docker_container_gone(struct docker_env *env, struct err *err)
{
	_cleanup_free_ char *path = docker_path(env->client, "/containers/%s/json", env->id);
	_cleanup_json_ cJSON *v = NULL;
	char orig[ERR_MSG_MAX];
	struct err e2 = {0};
	const cJSON *state;
	bool restarted = env->daemon_lost || env->client->pool.lost;
	int status;

	snprintf(orig, sizeof(orig), "%s", err->msg);
	if (docker_call(env->client, "GET", path, NULL, &v, &status, &e2) < 0) {
		if (status == 404)
			return err_set(err, ENOENT,
			               "the container of environment %s no longer exists (removed, "
			               "or lost by the Docker daemon%s)",
			               env->name,
			               restarted ? ", which restarted during the trial" : "");
		if (status == 0)
			return err_set(err, e2.code,
			               "lost the Docker daemon during environment %s "
			               "(stopped or restarting?): %s",
			               env->name, e2.msg);
		return -1;
	}
	state = cJSON_GetObjectItemCaseSensitive(v, "State");
	if (json_get_bool(state, "Running", false) && !json_get_bool(state, "Paused", false))
		return err_set(err, err->code, "%s", orig);
	{
		const char *error = json_get_str(state, "Error");
		const char *finished = json_get_str(state, "FinishedAt");
		bool oom = json_get_bool(state, "OOMKilled", false);
		int code = (int)json_get_num(state, "ExitCode", -1);

		if (json_get_bool(state, "Paused", false))
			return err_set(err, EBUSY, "the container of environment %s is paused",
			               env->name);
		return err_set(err, ESRCH,
		               "the container of environment %s is no longer running: it exited "
		               "with code %d at %s%s%s%s%s",
		               env->name, code, finished ? finished : "?",
		               oom ? " (its main process was OOM-killed)" : "",
		               error && *error ? ": " : "", error ? error : "",
		               restarted
		                   ? "; the connection to the Docker daemon dropped during the "
		                     "trial: the daemon was probably restarted"
		                   : "");
	}
}

int docker_env_error(struct docker_env *env, int status, struct err *err)
{
	if (status == 0) {
		int code = err->code;

		if (code == ECONNREFUSED || code == ENOENT || code == ECONNRESET || code == EPIPE ||
		    code == EPROTO) {
			env->daemon_lost = true;
			return err_wrap(err,
			                "lost the Docker daemon during environment %s "
			                "(stopped or restarting?)",
			                env->name);
		}
		return -1;
	}
	if (status == 404 || status == 409)
		return docker_container_gone(env, err);
	return -1;
}

/* ---- ownership of the /logs files ------------------------------------------------ */

void docker_fix_logs_owner(struct docker_env *env)
{
	_cleanup_free_ char *u = NULL;
	_cleanup_free_ char *g = NULL;
	struct err err = {0};

	/* As root the trial's sanitizing pass hands everything to root on the host
	 * itself, once no process can write there any more. */
	if (geteuid() == 0)
		return;
	u = xasprintf("%u", (unsigned)getuid());
	g = xasprintf("%u", (unsigned)getgid());
	const char *args[] = {"chown",           u,   g, ENV_AGENT_DIR, ENV_VERIFIER_DIR,
	                      ENV_ARTIFACTS_DIR, NULL};

	if (docker_helper_exec(env, "0", args, 60, NULL, &err) < 0)
		log_warn("docker: handing /logs files to uid %s: %s", u, err.msg);
}

/* ---- phase boundaries ---------------------------------------------------------------- */

static int docker_kill_all(struct environment *handle, struct err *err)
{
	struct docker_env *env = docker_env_of(handle);
	_cleanup_sb_ struct strbuf out = STRBUF_INIT;
	const char *args[] = {"kill-all", NULL};
	long n;

	if (docker_helper_exec(env, "0", args, 60, &out, err) < 0)
		return err_wrap(err, "environment %s: kill its processes", env->name);
	n = strtol(sb_str(&out), NULL, 10);
	docker_fix_logs_owner(env);
	return n < 0 ? 0 : (int)n;
}

/* The bind mount cannot change after create: /logs/verifier was writable all
 * along, and the caller emptied its host directory once the agent was gone. */
static int docker_open_verifier_dir(struct environment *env, struct err *err)
{
	(void)env;
	(void)err;
	return 0;
}

/* ---- start ------------------------------------------------------------------------- */

/* Docker container names: [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
static char *container_name(const char *env_name)
{
	struct strbuf sb = STRBUF_INIT;

	if (!((env_name[0] >= 'a' && env_name[0] <= 'z') ||
	      (env_name[0] >= 'A' && env_name[0] <= 'Z') ||
	      (env_name[0] >= '0' && env_name[0] <= '9')))
		sb_addc(&sb, 'r');
	for (const char *p = env_name; *p && sb.len < 200; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';

		sb_addc(&sb, ok ? c : '_');
	}
	return sb_detach(&sb);
}

static void add_mount(cJSON *mounts, const char *source, const char *target, bool ro)
{
	cJSON *m = cJSON_CreateObject();

	cJSON_AddStringToObject(m, "Type", "bind");
	cJSON_AddStringToObject(m, "Source", source);
	cJSON_AddStringToObject(m, "Target", target);
	if (ro)
		cJSON_AddBoolToObject(m, "ReadOnly", true);
	cJSON_AddItemToArray(mounts, m);
}

static void add_owner_labels(cJSON *labels)
{
	char boot[128], pidns[64], host[256], buf[64];
	unsigned long long start = 0;

	docker_owner_identity(boot, sizeof(boot), pidns, sizeof(pidns), host, sizeof(host));
	proc_stat_fields(getpid(), NULL, NULL, NULL, &start);
	cJSON_AddStringToObject(labels, LABEL_OWNER_HOST, host);
	cJSON_AddStringToObject(labels, LABEL_OWNER_BOOT, boot);
	cJSON_AddStringToObject(labels, LABEL_OWNER_PIDNS, pidns);
	snprintf(buf, sizeof(buf), "%d", (int)getpid());
	cJSON_AddStringToObject(labels, LABEL_OWNER_PID, buf);
	snprintf(buf, sizeof(buf), "%llu", start);
	cJSON_AddStringToObject(labels, LABEL_OWNER_START, buf);
}

/* network: the Id of rollout's bridge network, or NULL (no network). */
static cJSON *create_body(const struct env_config *cfg, const char *image, const char *helper,
                          const char *network, char *const host_logs[3])
{
	cJSON *body = cJSON_CreateObject();
	cJSON *hc = cJSON_CreateObject();
	cJSON *labels = cJSON_CreateObject();
	cJSON *mounts = cJSON_CreateArray();
	cJSON *entry = cJSON_CreateArray();
	cJSON *cmd = cJSON_CreateArray();
	cJSON *envs = cJSON_CreateArray();
	char hostname[64];

	snprintf(hostname, sizeof(hostname), "%s", cfg->env_name);
	cJSON_AddStringToObject(body, "Image", image);
	cJSON_AddStringToObject(body, "Hostname", hostname);
	/* The image's entrypoint never runs: the container only sleeps, commands are execs. */
	cJSON_AddItemToArray(entry, cJSON_CreateString(DOCKER_HELPER_PATH));
	cJSON_AddItemToObject(body, "Entrypoint", entry);
	cJSON_AddItemToArray(cmd, cJSON_CreateString("sleep"));
	cJSON_AddItemToObject(body, "Cmd", cmd);
	for (const char *const *e = cfg->env; e && *e; e++)
		cJSON_AddItemToArray(envs, cJSON_CreateString(*e));
	cJSON_AddItemToObject(body, "Env", envs);
	if (cfg->workdir)
		cJSON_AddStringToObject(body, "WorkingDir", cfg->workdir);
	cJSON_AddStringToObject(labels, LABEL_ENV, cfg->env_name);
	cJSON_AddStringToObject(labels, LABEL_JOB, cfg->job_name ? cfg->job_name : "");
	cJSON_AddStringToObject(labels, LABEL_TASK, cfg->task_name ? cfg->task_name : "");
	cJSON_AddStringToObject(labels, LABEL_VERSION, ROLLOUT_VERSION);
	add_owner_labels(labels);
	cJSON_AddItemToObject(body, "Labels", labels);

	/* Not Docker's init: tini forwards an in-container SIGTERM to its child and exits
	 * with it, so an agent could stop its own container. rollout's helper is pid 1
	 * instead (helper_sleep): shielded by the kernel, and it reaps orphans. */
	cJSON_AddBoolToObject(hc, "Init", false);
	/* Not Docker's default bridge: every container on it can reach the others. */
	cJSON_AddStringToObject(hc, "NetworkMode", network ? network : "none");
	for (int i = 0; i < 3; i++)
		if (host_logs[i])
			add_mount(mounts, host_logs[i], logs_targets[i], false);
	add_mount(mounts, helper, DOCKER_HELPER_PATH, true);
	cJSON_AddItemToObject(hc, "Mounts", mounts);
	if (cfg->cpus > 0)
		cJSON_AddNumberToObject(hc, "NanoCpus", (double)(long long)(cfg->cpus * 1e9));
	if (cfg->memory_bytes > 0) {
		/* No swap beyond the limit: a hog is OOM-killed instead of thrashing. */
		cJSON_AddNumberToObject(hc, "Memory", (double)cfg->memory_bytes);
		cJSON_AddNumberToObject(hc, "MemorySwap", (double)cfg->memory_bytes);
	}
	if (cfg->pids_limit > 0)
		cJSON_AddNumberToObject(hc, "PidsLimit", (double)cfg->pids_limit);
	{
		cJSON *rp = cJSON_CreateObject();
		cJSON *lc = cJSON_CreateObject();

		cJSON_AddStringToObject(rp, "Name", "no");
		cJSON_AddItemToObject(hc, "RestartPolicy", rp);
		/* The sleeper prints nothing; no log file to create and rotate. */
		cJSON_AddStringToObject(lc, "Type", "none");
		cJSON_AddItemToObject(hc, "LogConfig", lc);
	}
	cJSON_AddItemToObject(body, "HostConfig", hc);
	return body;
}

static int remove_container(struct docker_client *c, const char *id, struct err *err)
{
	_cleanup_free_ char *path = docker_path(c, "/containers/%s?force=1&v=1", id);
	int status, rc;

	http_cancel_hold();
	rc = docker_call(c, "DELETE", path, NULL, NULL, &status, err);
	http_cancel_release();
	if (rc < 0 && status != 404)
		return -1;
	return 0;
}

static int owner_dead(const cJSON *container);

/* A container of this name whose rollout process is gone (a killed run's trial that
 * resume now runs again under its name, before gc got to it): removed, so that the
 * create can be retried. 1 = removed, 0 = none or still owned, -1 = error. */
static int remove_dead_namesake(struct docker_client *c, const char *name, struct err *err)
{
	_cleanup_free_ char *q = http_query_escape(name);
	_cleanup_free_ char *path = docker_path(c, "/containers/%s/json", q);
	_cleanup_json_ cJSON *info = NULL;
	const cJSON *config, *policy;
	const char *id;
	int status = 0;

	if (docker_call(c, "GET", path, NULL, &info, &status, err) < 0)
		return status == 404 ? 0 : -1;
	config = cJSON_GetObjectItemCaseSensitive(info, "Config");
	policy = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(info, "HostConfig"), "RestartPolicy");
	id = json_get_str(info, "Id");
	if (!id || owner_dead(config) != 1 ||
	    strcmp(json_get_str(policy, "Name") ? json_get_str(policy, "Name") : "",
	           KEPT_RESTART_POLICY) == 0)
		return 0;
	if (remove_container(c, id, err) < 0)
		return -1;
	log_info("docker: removed container %.12s left by a rollout process that is gone", id);
	return 1;
}

static int docker_prepare_image(const struct env_config *cfg, char **ref, struct err *err)
{
	_cleanup_docker_client_ struct docker_client *c = NULL;

	if (docker_client_open(&c, err) < 0 || docker_ensure_image(c, cfg, ref, err) < 0)
		return err_wrap(err, "docker environment %s", cfg->env_name);
	return 0;
}

static int docker_start(const char *ref, const struct env_config *cfg, struct environment **out,
                        struct err *err)
{
	struct docker_env *env = xcalloc(1, sizeof(*env));
	_cleanup_free_ char *helper = NULL;
	_cleanup_free_ char *name = NULL;
	_cleanup_free_ char *path = NULL, *network = NULL;
	_cleanup_json_ cJSON *body = NULL;
	_cleanup_json_ cJSON *resp = NULL;
	const char *host_dirs[3] = {cfg->host_agent_dir, cfg->host_verifier_dir,
	                            cfg->host_artifacts_dir};
	const char *missing[4] = {NULL};
	size_t n_missing = 0;
	int status, rc;

	env->oom_kills = 0; /* a new container's cgroup */
	env->name = xstrdup(cfg->env_name);
	if (docker_client_open(&env->client, err) < 0)
		goto fail;
	if (docker_helper_host_path(&helper, err) < 0)
		goto fail;
	for (int i = 0; i < 3; i++) {
		if (!host_dirs[i]) {
			missing[n_missing++] = logs_targets[i];
			continue;
		}
		env->host_logs[i] = path_real(host_dirs[i]);
		if (!env->host_logs[i] || !path_is_dir(env->host_logs[i])) {
			err_set(err, ENOENT, "host directory %s for %s does not exist",
			        host_dirs[i], logs_targets[i]);
			goto fail;
		}
		/* Commands may run as any user of the image; the host user gets the files
		 * back afterwards (docker_fix_logs_owner). */
		chmod(env->host_logs[i], 0777);
	}
	if (cfg->storage_bytes > 0)
		log_warn_once("docker-storage", "docker: storage limits are not applied (the "
		                                "daemon's storage driver rarely supports them)");
	env->image = xstrdup(ref);
	if (cfg->allow_internet && docker_network_ensure(env->client, &network, err) < 0)
		goto fail;
	name = container_name(cfg->env_name);
	body = create_body(cfg, env->image, helper, network, env->host_logs);
	{
		_cleanup_free_ char *q = http_query_escape(name);

		path = docker_path(env->client, "/containers/create?name=%s", q);
	}
	/* A cancel must not abandon a create the daemon has been asked for: it would
	 * make the container after we stopped waiting, and nobody would know its Id
	 * to remove it. The create is short; the teardown that follows removes it. */
	http_cancel_hold();
	rc = docker_call(env->client, "POST", path, body, &resp, &status, err);
	if (rc < 0 && status == 409) {
		struct err ignored = {0};

		if (remove_dead_namesake(env->client, name, &ignored) == 1) {
			err_clear(err);
			rc = docker_call(env->client, "POST", path, body, &resp, &status, err);
		}
	}
	http_cancel_release();
	if (rc < 0) {
		if (status == 409)
			err_wrap(err,
			         "a container named %s exists already (a kept environment? "
			         "`rollout env rm %s` or `docker rm -f %s` removes it)",
			         name, cfg->env_name, name);
		else if (status == 404)
			err_wrap(err, "image %s", env->image);
		goto fail;
	}
	if (!json_get_str(resp, "Id")) {
		err_set(err, EPROTO, "container create: no Id in the daemon's answer");
		goto fail;
	}
	env->id = xstrdup(json_get_str(resp, "Id"));
	free(path);
	path = docker_path(env->client, "/containers/%s/start", env->id);
	if (docker_call(env->client, "POST", path, NULL, NULL, &status, err) < 0) {
		struct err ignored = {0};

		err_wrap(err, "start container %s", name);
		remove_container(env->client, env->id, &ignored);
		goto fail;
	}
	if (n_missing > 0 && docker_mkdirs(env, missing, err) < 0) {
		struct err ignored = {0};

		remove_container(env->client, env->id, &ignored);
		goto fail;
	}
	log_debug("docker: environment %s: container %.12s from %s", env->name, env->id,
	          env->image);
	*out = &env->base;
	return 0;
fail:
	err_wrap(err, "docker environment %s", cfg->env_name);
	docker_env_free(env);
	return -1;
}

/* ---- stop, open, list, gc ----------------------------------------------------------- */

static int docker_stop(struct environment *handle, bool destroy, struct err *err)
{
	struct docker_env *env = docker_env_of(handle);
	int rc = 0;

	/* Teardown after a cancellation must still remove the container. */
	http_cancel_hold();
	if (destroy) {
		rc = remove_container(env->client, env->id, err);
		if (rc < 0)
			err_wrap(err, "remove the container of environment %s", env->name);
	} else {
		/* Kept: survives daemon restarts, and gc knows not to touch it. */
		_cleanup_free_ char *path =
		    docker_path(env->client, "/containers/%s/update", env->id);
		_cleanup_json_ cJSON *body = cJSON_CreateObject();
		cJSON *rp = cJSON_CreateObject();
		int status;

		cJSON_AddStringToObject(rp, "Name", KEPT_RESTART_POLICY);
		cJSON_AddItemToObject(body, "RestartPolicy", rp);
		rc = docker_call(env->client, "POST", path, body, NULL, &status, err);
		if (rc < 0)
			docker_env_error(env, status, err);
	}
	http_cancel_release();
	docker_env_free(env);
	return rc;
}

static void docker_release(struct environment *env)
{
	docker_env_free(docker_env_of(env));
}

static cJSON *list_containers(struct docker_client *c, const char *label_filter, struct err *err)
{
	_cleanup_free_ char *filter = xasprintf("{\"label\":[\"%s\"]}", label_filter);
	_cleanup_free_ char *q = http_query_escape(filter);
	_cleanup_free_ char *path = docker_path(c, "/containers/json?all=1&filters=%s", q);
	cJSON *v = NULL;

	if (docker_call(c, "GET", path, NULL, &v, NULL, err) < 0)
		return NULL;
	if (!cJSON_IsArray(v)) {
		cJSON_Delete(v);
		err_set(err, EPROTO, "container list: not an array");
		return NULL;
	}
	return v;
}

static const char *label_of(const cJSON *container, const char *key)
{
	return json_get_str(cJSON_GetObjectItemCaseSensitive(container, "Labels"), key);
}

static int docker_open(const char *name, struct environment **out, struct err *err)
{
	struct docker_env *env = xcalloc(1, sizeof(*env));
	_cleanup_free_ char *filter = NULL;
	_cleanup_json_ cJSON *list = NULL;
	const cJSON *c;

	env->oom_kills = -1;
	env->name = xstrdup(name);
	if (docker_client_open(&env->client, err) < 0)
		goto fail;
	if (strchr(name, '"') || strchr(name, '\\')) {
		err_set(err, EINVAL, "invalid environment name");
		goto fail;
	}
	filter = xasprintf("%s=%s", LABEL_ENV, name);
	list = list_containers(env->client, filter, err);
	if (!list)
		goto fail;
	c = cJSON_GetArrayItem(list, 0);
	if (!c || !json_get_str(c, "Id")) {
		err_set(err, ENOENT, "no docker environment named %s", name);
		goto fail;
	}
	env->id = xstrdup(json_get_str(c, "Id"));
	env->image = xstrdup(json_get_str(c, "Image") ? json_get_str(c, "Image") : "");
	/* The bind mounts tell where /logs lives on the host. */
	{
		const cJSON *m;

		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(c, "Mounts"))
		{
			const char *src = json_get_str(m, "Source");
			const char *dst = json_get_str(m, "Destination");

			for (int i = 0; i < 3 && src && dst; i++)
				if (strcmp(dst, logs_targets[i]) == 0 && !env->host_logs[i])
					env->host_logs[i] = xstrdup(src);
		}
	}
	{
		const char *state = json_get_str(c, "State");

		if (state && strcmp(state, "running") != 0) {
			_cleanup_free_ char *path =
			    docker_path(env->client, "/containers/%s/start", env->id);
			int status;

			if (docker_call(env->client, "POST", path, NULL, NULL, &status, err) < 0 &&
			    status != 304) {
				err_wrap(err, "restart the container of environment %s", name);
				goto fail;
			}
		}
	}
	*out = &env->base;
	return 0;
fail:
	docker_env_free(env);
	return -1;
}

static char *state_name(const char *docker_state)
{
	if (!docker_state)
		return xstrdup("unknown");
	if (strcmp(docker_state, "exited") == 0)
		return xstrdup("stopped");
	return xstrdup(docker_state);
}

static int docker_list(struct env_info **out, size_t *n, struct err *err)
{
	_cleanup_docker_client_ struct docker_client *c = NULL;
	_cleanup_json_ cJSON *list = NULL;
	const cJSON *item;
	struct env_info *infos;
	size_t count = 0;

	*out = NULL;
	*n = 0;
	if (docker_client_open(&c, err) < 0)
		return -1;
	list = list_containers(c, LABEL_ENV, err);
	if (!list)
		return -1;
	infos = xcalloc((size_t)cJSON_GetArraySize(list) + 1, sizeof(*infos));
	cJSON_ArrayForEach(item, list)
	{
		const char *name = label_of(item, LABEL_ENV);
		const char *job = label_of(item, LABEL_JOB);
		const char *image = json_get_str(item, "Image");

		if (!name)
			continue;
		infos[count].name = xstrdup(name);
		infos[count].job_name = xstrdup(job ? job : "");
		infos[count].image = xstrdup(image ? image : "");
		infos[count].state = state_name(json_get_str(item, "State"));
		infos[count].created_at = json_get_num(item, "Created", 0);
		count++;
	}
	*out = infos;
	*n = count;
	return 0;
}

/* The rollout process that created a container is gone: same host, and either
 * another boot or no process with that pid and start time. 0 alive, 1 dead,
 * -1 cannot tell (another host or pid namespace). */
static int owner_dead(const cJSON *container)
{
	char boot[128], pidns[64], host[256];
	const char *l_host = label_of(container, LABEL_OWNER_HOST);
	const char *l_boot = label_of(container, LABEL_OWNER_BOOT);
	const char *l_pidns = label_of(container, LABEL_OWNER_PIDNS);
	const char *l_pid = label_of(container, LABEL_OWNER_PID);
	const char *l_start = label_of(container, LABEL_OWNER_START);
	unsigned long long start = 0;
	long pid;

	if (!l_host || !l_boot || !l_pidns || !l_pid || !l_start)
		return -1;
	docker_owner_identity(boot, sizeof(boot), pidns, sizeof(pidns), host, sizeof(host));
	if (strcmp(l_host, host) != 0)
		return -1;
	if (strcmp(l_boot, boot) != 0)
		return 1; /* rebooted since */
	if (strcmp(l_pidns, pidns) != 0)
		return -1;
	pid = strtol(l_pid, NULL, 10);
	if (pid <= 0)
		return -1;
	if (proc_stat_fields((pid_t)pid, NULL, NULL, NULL, &start) < 0)
		return 1;
	return start == strtoull(l_start, NULL, 10) ? 0 : 1;
}

static int docker_gc(struct err *err)
{
	_cleanup_docker_client_ struct docker_client *c = NULL;
	_cleanup_json_ cJSON *list = NULL;
	const cJSON *item;
	int removed = 0;

	if (docker_client_open(&c, err) < 0)
		return -1;
	list = list_containers(c, LABEL_OWNER_PID, err);
	if (!list)
		return -1;
	cJSON_ArrayForEach(item, list)
	{
		const char *id = json_get_str(item, "Id");
		_cleanup_free_ char *path = NULL;
		_cleanup_json_ cJSON *info = NULL;
		const char *policy;
		struct err e = {0};

		if (!id || owner_dead(item) != 1)
			continue;
		path = docker_path(c, "/containers/%s/json", id);
		if (docker_call(c, "GET", path, NULL, &info, NULL, &e) < 0)
			continue;
		policy = json_get_str(
		    cJSON_GetObjectItemCaseSensitive(
		        cJSON_GetObjectItemCaseSensitive(info, "HostConfig"), "RestartPolicy"),
		    "Name");
		if (policy && strcmp(policy, KEPT_RESTART_POLICY) == 0)
			continue; /* kept by preserve_env */
		if (remove_container(c, id, &e) < 0) {
			log_warn("gc: remove container %.12s: %s", id, e.msg);
			continue;
		}
		log_info("gc: removed container %.12s of environment %s (its rollout process is "
		         "gone)",
		         id, label_of(item, LABEL_ENV) ? label_of(item, LABEL_ENV) : "?");
		removed++;
	}
	return removed;
}

/* A reference from a task file goes into a request path: only what references
 * are made of. */
static bool plain_ref(const char *ref)
{
	if (!*ref || strstr(ref, ".."))
		return false;
	for (const char *p = ref; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._-/:@", *p)))
			return false;
	return true;
}

static int docker_has_image(const char *ref, struct err *err)
{
	_cleanup_docker_client_ struct docker_client *c = NULL;
	_cleanup_free_ char *path = NULL;
	int status = 0;

	if (!plain_ref(ref))
		return err_set(err, EINVAL, "'%s' is not an image reference", ref);
	if (docker_client_open(&c, err) < 0)
		return -1;
	path = docker_path(c, "/images/%s/json", ref);
	if (docker_call(c, "GET", path, NULL, NULL, &status, err) == 0)
		return 1;
	if (status != 404)
		return -1;
	err_clear(err);
	return 0;
}

/* A reachable Docker daemon, nothing else of the host. */
static const struct host_needs docker_host_needs = {
    .name = "docker",
    .how = "-e docker",
    .refused = "the docker provider",
    .need = {[PROBE_DOCKER] = NEED_REQ},
};

const struct provider_ops docker_provider = {
    .name = "docker",
    .logs_mounted = true,
    .service = "Docker daemon",
    .gc_must_succeed = true,
    .image_place = "on the Docker daemon",
    .image_provide = {"`docker pull ", "` (or `docker load`)"},
    .host_needs = &docker_host_needs,
    .entry = docker_helper_entry,
    .prepare_image = docker_prepare_image,
    .start = docker_start,
    .exec = docker_provider_exec,
    .upload = docker_provider_upload,
    .download = docker_provider_download,
    .kill_all = docker_kill_all,
    .open_verifier_dir = docker_open_verifier_dir,
    .stop = docker_stop,
    .open = docker_open,
    .release = docker_release,
    .list = docker_list,
    .gc = docker_gc,
    .has_image = docker_has_image,
};
