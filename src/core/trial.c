/* The six-phase trial executor: setup → install → execute → verify → collect →
 * teardown. Every failure becomes exception_info in result.json (Harbor's exception
 * type names); teardown always runs; result.json is always written. */
#include "core/trial.h"
#include "core/rewards.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REWARD_FILE_MAX (1 << 20)

static double pick(double override, double fallback)
{
	/* Harbor's `override or fallback`: 0 and unset both fall through. */
	return override > 0 ? override : fallback;
}

static double mult(double phase, double global)
{
	return phase >= 0 ? phase : (global >= 0 ? global : 1.0);
}

void trial_timeouts(const struct timeout_inputs *in, struct trial_spec *spec)
{
	double agent = pick(in->agent_override, in->task_agent_timeout);
	double verifier = pick(in->verifier_override, in->task_verifier_timeout);

	if (in->agent_max > 0 && (agent <= 0 || agent > in->agent_max))
		agent = in->agent_max;
	if (in->verifier_max > 0 && (verifier <= 0 || verifier > in->verifier_max))
		verifier = in->verifier_max;
	spec->agent_timeout = agent * mult(in->agent_multiplier, in->multiplier);
	spec->verifier_timeout = verifier * mult(in->verifier_multiplier, in->multiplier);
	spec->install_timeout = pick(in->agent_setup_override, AGENT_SETUP_TIMEOUT_DEFAULT) *
	                        mult(in->agent_setup_multiplier, in->multiplier);
	spec->setup_timeout = in->task_build_timeout * mult(in->build_multiplier, in->multiplier);
}

/* --- rewards ------------------------------------------------------------- */

static int read_reward_file(int dirfd, const char *name, char **text, size_t *len, bool *exists,
                            struct err *err)
{
	_cleanup_close_ int fd =
	    openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	struct stat st;

	*exists = false;
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		*exists = true;
		if (errno == ELOOP)
			return err_set(err, ELOOP, "%s is a symbolic link; not followed", name);
		return err_sys(err, "open %s", name);
	}
	*exists = true;
	if (fstat(fd, &st) < 0)
		return err_sys(err, "stat %s", name);
	if (!S_ISREG(st.st_mode))
		return err_set(err, EINVAL, "%s is not a regular file", name);
	if (st.st_size > REWARD_FILE_MAX)
		return err_set(err, EFBIG, "%s is larger than %d bytes", name, REWARD_FILE_MAX);
	return read_fd(fd, name, REWARD_FILE_MAX, text, len, err);
}

int trial_parse_rewards(const char *verifier_dir, cJSON **rewards, const char **exception_type,
                        struct err *err)
{
	_cleanup_close_ int dirfd = open(verifier_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	bool exists;

	*rewards = NULL;
	*exception_type = "RewardFileNotFoundError";
	if (dirfd < 0)
		return err_sys(err, "open %s", verifier_dir);
	*exception_type = "VerifierOutputParseError";
	if (read_reward_file(dirfd, "reward.txt", &text, &len, &exists, err) < 0)
		return -1;
	if (exists) {
		if (len == 0) {
			*exception_type = "RewardFileEmptyError";
			return err_set(err, ENODATA, "reward.txt is empty");
		}
		return rewards_from_txt(text, len, rewards, err);
	}
	if (read_reward_file(dirfd, "reward.json", &text, &len, &exists, err) < 0)
		return -1;
	if (exists) {
		if (len == 0) {
			*exception_type = "RewardFileEmptyError";
			return err_set(err, ENODATA, "reward.json is empty");
		}
		/* Non-finite numbers, more than REWARD_KEYS_MAX keys: parse errors. */
		return rewards_from_json(text, len, rewards, err);
	}
	*exception_type = "RewardFileNotFoundError";
	return err_set(err, ENOENT, "no reward.txt or reward.json in /logs/verifier");
}

/* --- sanitizing what the environment wrote on the host ------------------- */

static bool link_escapes(const char *target, int depth)
{
	/* A relative target escapes when its ".." steps climb above the link's dir
	 * plus `depth` levels (the link's position under the sanitized root). */
	int level = depth;
	const char *p = target;

	if (target[0] == '/')
		return true;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (--level < 0)
				return true;
		} else if (n > 0 && !(n == 1 && p[0] == '.')) {
			level++;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	return false;
}

static void sanitize_at(int parent, const char *rel, int depth)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd = openat(parent, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);

			if (n < 0)
				continue;
			target[n] = '\0';
			if (link_escapes(target, depth)) {
				log_warn("removed symlink %s -> %s left by the environment",
				         de->d_name, target);
				unlinkat(dirfd(d), de->d_name, 0);
			}
		} else if (S_ISDIR(st.st_mode)) {
			sanitize_at(dirfd(d), de->d_name, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			if (st.st_mode & (S_ISUID | S_ISGID))
				fchmodat(dirfd(d), de->d_name, st.st_mode & 0777, 0);
		} else {
			log_warn("removed special file %s left by the environment", de->d_name);
			unlinkat(dirfd(d), de->d_name, 0);
		}
	}
}

void trial_sanitize_dir(const char *dir)
{
	sanitize_at(AT_FDCWD, dir, 0);
}

/* --- the executor -------------------------------------------------------- */

struct trial_run_state {
	const struct trial_spec *spec;
	struct trial_result *r;
	struct environment *env;
	char *agent_dir, *verifier_dir, *artifacts_dir;
	bool fatal; /* an error that skips the remaining work phases */
};

static void phase_begin(struct trial_run_state *s, enum trial_phase p)
{
	s->r->phases[p].started_at = wall_now();
	log_info("%s: %s", s->spec->trial_name, trial_phase_key(p));
}

static void phase_end(struct trial_run_state *s, enum trial_phase p)
{
	s->r->phases[p].finished_at = wall_now();
	log_debug("%s: %s done in %.3f s", s->spec->trial_name, trial_phase_key(p),
	          s->r->phases[p].finished_at - s->r->phases[p].started_at);
}

/* A cancelled trial did not finish its work: CancelledError replaces any earlier
 * error, so that resume reruns it. */
static void mark_cancelled(struct trial_run_state *s)
{
	if (s->r->exception && strcmp(s->r->exception->type, "CancelledError") == 0)
		return;
	trial_result_clear_exception(s->r);
	trial_result_set_exception(s->r, "CancelledError", "the trial was cancelled");
	log_warn("%s: cancelled", s->spec->trial_name);
	s->fatal = true;
}

/* Record an error (the first one wins); cancellation wins over the provider's
 * own error text. */
static void fail(struct trial_run_state *s, const char *type, const struct err *err)
{
	if (cancel_requested() || (err && err->code == ECANCELED)) {
		mark_cancelled(s);
		return;
	}
	trial_result_set_exception(s->r, type, "%s", err ? err->msg : "");
	log_error("%s: %s: %s", s->spec->trial_name, type, err ? err->msg : "");
	s->fatal = true;
}

static void save(struct trial_run_state *s)
{
	struct err err = {0};

	if (trial_result_write(s->spec->trial_dir, s->r, &err) < 0)
		log_error("%s", err.msg);
}

static void run_setup(struct trial_run_state *s)
{
	const struct trial_spec *spec = s->spec;
	struct env_config cfg = spec->env;
	_cleanup_free_ char *log = path_join(spec->trial_dir, "trial.log");
	struct err err = {0};

	phase_begin(s, PHASE_ENVIRONMENT_SETUP);
	cfg.env_name = spec->trial_name;
	cfg.job_name = spec->job_name;
	cfg.task_name = spec->task_name;
	cfg.host_agent_dir = s->agent_dir;
	cfg.host_verifier_dir = s->verifier_dir;
	cfg.host_artifacts_dir = s->artifacts_dir;
	cfg.build_log_path = log;
	cfg.build_timeout_sec = spec->setup_timeout;
	/* Harbor retries a start that timed out, once. */
	for (int attempt = 0; attempt < 2; attempt++) {
		err_clear(&err);
		if (spec->provider->start(&cfg, &s->env, &err) == 0)
			break;
		s->env = NULL;
		if (err.code != ETIMEDOUT || cancel_requested())
			break;
		log_warn("%s: environment start timed out; retrying once", spec->trial_name);
	}
	if (!s->env)
		fail(s, err.code == ETIMEDOUT ? "EnvironmentStartTimeoutError" : "RuntimeError",
		     &err);
	phase_end(s, PHASE_ENVIRONMENT_SETUP);
}

static void agent_context_init(struct trial_run_state *s, struct agent_context *ctx, double timeout)
{
	const struct trial_spec *spec = s->spec;

	memset(ctx, 0, sizeof(*ctx));
	ctx->provider = spec->provider;
	ctx->env = s->env;
	ctx->env_name = spec->trial_name;
	ctx->trial_dir = spec->trial_dir;
	ctx->agent_dir = s->agent_dir;
	ctx->task_dir = spec->task_dir;
	ctx->instruction = spec->instruction;
	ctx->instruction_path = spec->instruction_path;
	ctx->model_name = spec->model_name;
	ctx->extra_env = spec->agent_env;
	ctx->solution_env = spec->solution_env;
	ctx->kwargs = spec->agent_kwargs;
	ctx->version = spec->agent_version;
	ctx->custom = spec->custom;
	ctx->output_cap = spec->output_cap;
	ctx->deadline = timeout > 0 ? mono_now() + timeout : 0;
}

static void run_install(struct trial_run_state *s)
{
	struct agent_context ctx;
	struct err err = {0};

	phase_begin(s, PHASE_AGENT_SETUP);
	if (s->spec->agent->setup) {
		agent_context_init(s, &ctx, s->spec->install_timeout);
		int rc = s->spec->agent->setup(s->spec->agent, &ctx, &err);

		s->r->agent_commands_sec += ctx.command_sec;
		if (rc < 0)
			fail(s, ctx.exception_type ? ctx.exception_type : "RuntimeError", &err);
		else if (ctx.timed_out) {
			err_set(&err, ETIMEDOUT, "agent setup timed out after %g seconds",
			        s->spec->install_timeout);
			fail(s, "AgentSetupTimeoutError", &err);
		}
	}
	phase_end(s, PHASE_AGENT_SETUP);
}

static void run_execute(struct trial_run_state *s)
{
	struct agent_context ctx;
	struct err err = {0};
	int rc;

	phase_begin(s, PHASE_AGENT_EXECUTION);
	agent_context_init(s, &ctx, s->spec->agent_timeout);
	rc = s->spec->agent->run(s->spec->agent, &ctx, &err);
	s->r->agent_commands_sec += ctx.command_sec;
	if (rc < 0) {
		fail(s, ctx.exception_type ? ctx.exception_type : "RuntimeError", &err);
	} else if (ctx.timed_out) {
		/* Recorded, but not fatal: verification still runs. */
		trial_result_set_exception(s->r, "AgentTimeoutError",
		                           "agent execution timed out after %g seconds",
		                           s->spec->agent_timeout);
		log_warn("%s: AgentTimeoutError after %g s", s->spec->trial_name,
		         s->spec->agent_timeout);
	}
	phase_end(s, PHASE_AGENT_EXECUTION);
}

static void run_verify(struct trial_run_state *s)
{
	const struct trial_spec *spec = s->spec;
	_cleanup_free_ char *tests = path_join(spec->task_dir, "tests");
	_cleanup_free_ char *out = path_join(s->verifier_dir, "test-stdout.txt");
	const char *argv[] = {"sh", "-c", "chmod +x /tests/test.sh; /tests/test.sh", NULL};
	struct exec_request req = {0};
	struct exec_result res = {0};
	struct err err = {0};
	const char *type;

	phase_begin(s, PHASE_VERIFIER);
	if (spec->provider->upload(s->env, tests, ENV_TESTS_DIR, &err) < 0) {
		fail(s, "AddTestsDirError", &err);
		goto out;
	}
	write_file(out, "", 0, 0644, NULL);
	req.argv = argv;
	req.env = spec->verifier_env;
	req.stdout_path = out;
	req.merge_stderr = true;
	req.stdin_fd = -1;
	req.timeout_sec = spec->verifier_timeout;
	req.output_cap = spec->output_cap;
	if (spec->provider->exec(s->env, &req, &res, &err) < 0) {
		fail(s, "RuntimeError", &err);
		goto out;
	}
	s->r->verifier_commands_sec += res.duration_sec;
	if (res.timed_out) {
		err_set(&err, ETIMEDOUT, "verifier timed out after %g seconds",
		        spec->verifier_timeout);
		fail(s, "VerifierTimeoutError", &err);
		goto out;
	}
	if (!spec->provider->logs_mounted &&
	    spec->provider->download(s->env, ENV_VERIFIER_DIR, s->verifier_dir, &err) < 0) {
		fail(s, "DownloadVerifierDirError", &err);
		goto out;
	}
	if (trial_parse_rewards(s->verifier_dir, &s->r->rewards, &type, &err) < 0) {
		fail(s, type, &err);
	} else {
		_cleanup_free_ char *text = cJSON_PrintUnformatted(s->r->rewards);

		log_info("%s: rewards %s", spec->trial_name, text ? text : "");
	}
out:
	phase_end(s, PHASE_VERIFIER);
}

static void collect_artifacts(struct trial_run_state *s)
{
	const struct trial_spec *spec = s->spec;
	_cleanup_json_ cJSON *manifest = cJSON_CreateArray();
	_cleanup_free_ char *manifest_path = path_join(s->artifacts_dir, "manifest.json");
	struct err err = {0};

	if (!spec->artifact_sources || !spec->artifact_sources[0])
		return;
	for (size_t i = 0; spec->artifact_sources[i]; i++) {
		const char *src = spec->artifact_sources[i];
		const char *dest = spec->artifact_dests ? spec->artifact_dests[i] : NULL;
		_cleanup_free_ char *host = NULL;
		cJSON *entry = cJSON_CreateObject();
		bool ok;

		if (!dest || !*dest)
			dest = path_basename(src);
		host = path_join(s->artifacts_dir, dest);
		err_clear(&err);
		ok = s->env && spec->provider->download(s->env, src, host, &err) == 0;
		if (!ok)
			log_warn("%s: artifact %s: %s", spec->trial_name, src,
			         s->env ? err.msg : "no environment");
		cJSON_AddStringToObject(entry, "source", src);
		cJSON_AddStringToObject(entry, "destination", dest);
		cJSON_AddStringToObject(entry, "type", path_is_dir(host) ? "directory" : "file");
		cJSON_AddStringToObject(entry, "status", ok ? "ok" : "failed");
		cJSON_AddItemToArray(manifest, entry);
	}
	if (json_write_file_atomic(manifest_path, manifest, &err) < 0)
		log_warn("%s", err.msg);
}

static void run_collect(struct trial_run_state *s)
{
	const struct trial_spec *spec = s->spec;
	struct err err = {0};

	phase_begin(s, PHASE_ARTIFACT_COLLECTION);
	if (s->env && !spec->provider->logs_mounted) {
		/* best effort, like Harbor: the trial's outcome is already decided */
		if (spec->provider->download(s->env, ENV_AGENT_DIR, s->agent_dir, &err) < 0)
			log_warn("%s: download %s: %s", spec->trial_name, ENV_AGENT_DIR, err.msg);
		if (spec->provider->download(s->env, ENV_ARTIFACTS_DIR, s->artifacts_dir, &err) < 0)
			log_warn("%s: download %s: %s", spec->trial_name, ENV_ARTIFACTS_DIR,
			         err.msg);
	}
	collect_artifacts(s);
	trial_sanitize_dir(s->agent_dir);
	trial_sanitize_dir(s->verifier_dir);
	trial_sanitize_dir(s->artifacts_dir);
	phase_end(s, PHASE_ARTIFACT_COLLECTION);
}

static bool below_max_reward(const cJSON *rewards)
{
	const cJSON *c;

	if (!rewards || !rewards->child)
		return true;
	cJSON_ArrayForEach(c, rewards) if (c->valuedouble < 1.0) return true;
	return false;
}

static void run_teardown(struct trial_run_state *s)
{
	const struct trial_spec *spec = s->spec;
	struct err err = {0};
	bool keep;

	phase_begin(s, PHASE_ENVIRONMENT_TEARDOWN);
	keep = spec->preserve == PRESERVE_ENV_ALWAYS ||
	       (spec->preserve == PRESERVE_ENV_ON_FAILURE &&
	        (s->r->exception || below_max_reward(s->r->rewards)));
	if (s->env) {
		if (spec->provider->stop(s->env, !keep, &err) < 0) {
			log_error("%s: teardown: %s", spec->trial_name, err.msg);
			if (!s->r->exception)
				trial_result_set_exception(s->r, "RuntimeError", "teardown: %s",
				                           err.msg);
		} else if (keep) {
			log_info("%s: environment kept (preserve_env); remove it with `rollout env "
			         "rm %s`",
			         spec->trial_name, spec->trial_name);
		}
		s->env = NULL;
	}
	phase_end(s, PHASE_ENVIRONMENT_TEARDOWN);
}

static void fill_identity(const struct trial_spec *spec, struct trial_result *r)
{
	trial_result_init(r);
	r->task_name = xstrdup(spec->task_name);
	r->trial_name = xstrdup(spec->trial_name);
	r->trial_uri = file_uri(spec->trial_dir);
	r->task_id = spec->task_id ? cJSON_Duplicate(spec->task_id, 1) : NULL;
	r->source = spec->source ? xstrdup(spec->source) : NULL;
	r->task_checksum = spec->task_checksum ? xstrdup(spec->task_checksum) : NULL;
	r->config = spec->config_json ? cJSON_Duplicate(spec->config_json, 1) : NULL;
	r->agent_name = xstrdup(spec->agent_name ? spec->agent_name : spec->agent->name);
	r->agent_version =
	    xstrdup(spec->agent_version ? spec->agent_version : spec->agent->version);
	r->model_name = spec->model_name ? xstrdup(spec->model_name) : NULL;
}

int trial_run(const struct trial_spec *spec, struct trial_result *r, struct err *err)
{
	struct trial_run_state s = {.spec = spec, .r = r};
	_cleanup_free_ char *log_path = path_join(spec->trial_dir, "trial.log");
	_cleanup_free_ char *config_path = path_join(spec->trial_dir, "config.json");
	int log_slot, rc = 0;

	fill_identity(spec, r);
	r->started_at = wall_now();
	s.agent_dir = path_join(spec->trial_dir, "agent");
	s.verifier_dir = path_join(spec->trial_dir, "verifier");
	s.artifacts_dir = path_join(spec->trial_dir, "artifacts");
	if (mkdir_p(s.agent_dir, 0755, err) < 0 || mkdir_p(s.verifier_dir, 0755, err) < 0 ||
	    mkdir_p(s.artifacts_dir, 0755, err) < 0) {
		rc = -1;
		goto out;
	}
	log_slot = log_open_file(log_path);
	if (spec->config_json && json_write_file_atomic(config_path, spec->config_json, err) < 0) {
		rc = -1;
		goto close_log;
	}
	/* No result.json until the trial ends: a trial directory without one is an
	 * unfinished trial to resume (config.json says which). */

	if (!cancel_requested())
		run_setup(&s);
	if (!s.fatal && !cancel_requested())
		run_install(&s);
	if (!s.fatal && !cancel_requested())
		run_execute(&s);
	if (!s.fatal && !spec->verifier_disabled && !cancel_requested())
		run_verify(&s);
	/* Cancelled before the work phases completed: the result is not an outcome.
	 * A cancel that arrives during collect/teardown changes nothing. */
	if (cancel_requested())
		mark_cancelled(&s);
	run_collect(&s);
	run_teardown(&s);
	r->finished_at = wall_now();
	save(&s);
	log_info("%s: finished in %.2f s%s%s", spec->trial_name, r->finished_at - r->started_at,
	         r->exception ? " with " : "", r->exception ? r->exception->type : "");
close_log:
	log_close_file(log_slot);
out:
	free(s.agent_dir);
	free(s.verifier_dir);
	free(s.artifacts_dir);
	return rc;
}
