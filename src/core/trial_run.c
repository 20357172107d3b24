/* The six-phase trial executor: setup → install → execute → verify → collect →
 * teardown. Every failure becomes exception_info in result.json (Harbor's exception
 * type names); teardown always runs; result.json is always written. */
#include "core/trial_run.h"
#include "config/task.h"
#include "core/rewards.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
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
/* File times are coarse (and a filesystem may round them): a reward file is
 * "written before verification" only when older than this. */
#define REWARD_MTIME_SLACK 2.0

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

/* A reward file as found: absent (fd -1, not an error), or open and checked. */
static int open_reward_file(const struct cdir *dir, const char *name, double not_before,
                            struct reward_file *rf, int *fd, struct err *err)
{
	struct stat st;

	*fd = -1;
	if (cdir_lstat(dir, name, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return err_sys(err, "%s", name);
	}
	*fd = cdir_open_read(dir, name, &st, err);
	if (*fd < 0)
		return -1;
	/* Written before verification started: not the verifier's (a copy kept its
	 * old time, or something outlived the agent phase). Never read. */
	if (not_before > 0 && (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9 <
	                          not_before - REWARD_MTIME_SLACK) {
		rf->ignored = name;
		close(*fd);
		*fd = -1;
		return 0;
	}
	rf->name = name;
	rf->size = st.st_size;
	rf->mtime = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
	if (st.st_size > REWARD_FILE_MAX) {
		close(*fd);
		*fd = -1;
		return err_set(err, EFBIG, "%s is larger than %d bytes", name, REWARD_FILE_MAX);
	}
	return 0;
}

int trial_parse_rewards(const struct cdir *verifier, double not_before, cJSON **rewards,
                        struct reward_file *rf, const char **exception_type, struct err *err)
{
	/* Harbor >= 0.22: reward.json before reward.txt. */
	static const char *const names[] = {"reward.json", "reward.txt"};
	struct reward_file dummy;

	if (!rf)
		rf = &dummy;
	memset(rf, 0, sizeof(*rf));
	*rewards = NULL;
	*exception_type = "VerifierOutputParseError";
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		_cleanup_close_ int fd = -1;
		_cleanup_free_ char *text = NULL;
		size_t len = 0;

		if (open_reward_file(verifier, names[i], not_before, rf, &fd, err) < 0)
			return -1;
		if (fd < 0)
			continue;
		if (read_fd(fd, names[i], REWARD_FILE_MAX, &text, &len, err) < 0)
			return -1;
		if (len == 0) {
			*exception_type = "RewardFileEmptyError";
			return err_set(err, ENODATA, "%s is empty", names[i]);
		}
		/* Non-finite numbers, more than REWARD_KEYS_MAX keys: parse errors. */
		if (i == 0)
			return rewards_from_json(text, len, rewards, err);
		return rewards_from_txt(text, len, rewards, err);
	}
	*exception_type = "RewardFileNotFoundError";
	if (rf->ignored)
		return err_set(err, ENOENT,
		               "%s in /logs/verifier predates verification (not read); no reward "
		               "written during verification",
		               rf->ignored);
	return err_set(err, ENOENT, "no reward.txt or reward.json in /logs/verifier");
}

/* --- the executor -------------------------------------------------------- */

struct trial_run_state {
	const struct trial_spec *spec;
	struct trial_result *r;
	struct environment *env;
	struct cdir trial, agent, verifier, artifacts;
	bool fatal;        /* an error that skips the remaining work phases */
	bool agent_killed; /* the agent phase's boundary was enforced */
	bool idle;         /* no process left since the verifier's end */
	bool oom_agent, oom_verifier, cut_agent, cut_verifier;
	int agent_processes_killed, verifier_processes_killed;
	bool reward_planted;
	struct reward_file reward;
	struct copy_report collected;
	struct sanitize_report cleaned;
	bool logs_clean;
	bool collect_timed_out;
	struct env_usage storage; /* read before teardown (provider_ops.usage) */
};

static void phase_begin(struct trial_run_state *s, enum trial_phase p)
{
	s->r->phases[p].started_at = wall_now();
	log_info("%s: %s", s->spec->trial_name, trial_phase_key(p));
	if (s->spec->on_phase)
		s->spec->on_phase(s->spec->on_phase_ctx, (int)p);
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

	if (trial_result_write(&s->trial, s->r, &err) < 0)
		log_error("%s", err.msg);
}

/* The three directories the environment sees at /logs: writable by any user of
 * the image (the trial directory itself is closed to other host users while
 * the environment runs, and everything is masked again when collecting). */
static int make_log_dirs(struct trial_run_state *s, struct err *err)
{
	static const char *const names[] = {"agent", "verifier", "artifacts"};
	struct cdir *dirs[] = {&s->agent, &s->verifier, &s->artifacts};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (cdir_mkdirs(&s->trial, names[i], 0755, true, dirs[i], err) < 0 ||
		    cdir_chmod(dirs[i], 0777, err) < 0)
			return -1;
	return 0;
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
	cfg.host_agent_dir = s->agent.path;
	cfg.host_verifier_dir = s->verifier.path;
	cfg.host_artifacts_dir = s->artifacts.path;
	cfg.build_log_path = log;
	cfg.build_timeout_sec = spec->setup_timeout;
	/* Harbor retries a start that timed out, once. */
	for (int attempt = 0; attempt < 2; attempt++) {
		err_clear(&err);
		if (env_start(spec->provider, &cfg, &s->env, &err) == 0)
			break;
		s->env = NULL;
		if (err.code != ETIMEDOUT || cancel_requested())
			break;
		log_warn("%s: environment start timed out; retrying once", spec->trial_name);
	}
	if (!s->env) {
		/* Build and start errors come from the builder or the daemon; the trial's
		 * record says which task they are about. */
		err_wrap(&err, "task %s", spec->task_name);
		fail(s, err.code == ETIMEDOUT ? "EnvironmentStartTimeoutError" : "RuntimeError",
		     &err);
	}
	phase_end(s, PHASE_ENVIRONMENT_SETUP);
}

static void agent_context_init(struct trial_run_state *s, struct agent_context *ctx, double timeout)
{
	const struct trial_spec *spec = s->spec;

	memset(ctx, 0, sizeof(*ctx));
	ctx->env = s->env;
	ctx->env_name = spec->trial_name;
	ctx->trial_dir = spec->trial_dir;
	ctx->agent_dir = &s->agent;
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

static void agent_context_done(struct trial_run_state *s, const struct agent_context *ctx)
{
	s->r->agent_commands_sec += ctx->command_sec;
	s->oom_agent |= ctx->oom_killed;
	s->cut_agent |= ctx->output_truncated;
}

static void run_install(struct trial_run_state *s)
{
	struct agent_context ctx;
	struct err err = {0};

	phase_begin(s, PHASE_AGENT_SETUP);
	if (agent_has_setup(s->spec->agent)) {
		agent_context_init(s, &ctx, s->spec->install_timeout);
		int rc = agent_setup(s->spec->agent, &ctx, &err);

		agent_context_done(s, &ctx);
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
	rc = agent_run(s->spec->agent, &ctx, &err);
	agent_context_done(s, &ctx);
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

/* The end of the agent phase, however it ended: nothing the agent started
 * (daemons, setsid'd children, writers left in the background) may outlive it.
 * Without this no score can be trusted, so a failure here is fatal. */
static int end_agent_phase(struct trial_run_state *s)
{
	struct err err = {0};
	int n;

	if (!s->env || s->agent_killed)
		return 0;
	n = env_kill_all(s->env, &err);
	if (n < 0) {
		fail(s, "RuntimeError", &err);
		return -1;
	}
	s->agent_killed = true;
	s->agent_processes_killed = n;
	if (n > 0)
		log_info("%s: %d agent process%s still running at the end of the agent phase: "
		         "killed",
		         s->spec->trial_name, n, n == 1 ? "" : "es");
	return 0;
}

/* /logs/verifier starts empty, owned by us, writable by the verifier's user;
 * whatever the agent managed to leave there is noted and removed. */
static int fresh_verifier_dir(struct trial_run_state *s, struct err *err)
{
	if (cdir_exists(&s->verifier, "reward.txt") || cdir_exists(&s->verifier, "reward.json")) {
		s->reward_planted = true;
		log_warn("%s: a reward file was in /logs/verifier before verification: removed",
		         s->spec->trial_name);
	}
	if (cdir_clear(&s->verifier, err) < 0 || cdir_chmod(&s->verifier, 0777, err) < 0 ||
	    (geteuid() == 0 && fchown(s->verifier.fd, 0, 0) < 0 &&
	     err_sys(err, "chown %s", s->verifier.path) < 0))
		return -1;
	return env_open_verifier_dir(s->env, err);
}

static int upload_tests(struct trial_run_state *s, struct err *err)
{
	/* tests/ is an input: not followed out of the task directory (and checked
	 * again for links leaving it). And /tests is replaced as a whole: nothing
	 * the agent put there is merged in. */
	_cleanup_close_ int tests = task_open_dir(s->spec->task_dir, "tests", err);

	if (tests < 0)
		return -1;
	return env_upload(s->env, tests, ENV_TESTS_DIR, UPLOAD_REPLACE, err);
}

static void run_verify(struct trial_run_state *s)
{
	const struct trial_spec *spec = s->spec;
	/* Absolute paths: an agent's own `sh` or `chmod` earlier on PATH is not used
	 * (an agent that replaced /bin/sh itself is the limit of shared-mode
	 * verification: docs/SANDBOX.md). test.sh's own #! line picks its shell. */
	const char *argv[] = {"/bin/sh", "-c", "/bin/chmod +x /tests/test.sh; exec /tests/test.sh",
	                      NULL};
	struct exec_request req = EXEC_REQUEST_INIT;
	struct exec_result res = {0};
	_cleanup_close_ int out = -1;
	struct err err = {0};
	const char *type;
	double started;

	phase_begin(s, PHASE_VERIFIER);
	started = wall_now();
	if (fresh_verifier_dir(s, &err) < 0) {
		fail(s, "RuntimeError", &err);
		goto out;
	}
	if (upload_tests(s, &err) < 0) {
		fail(s, "AddTestsDirError", &err);
		goto out;
	}
	if ((out = cdir_create(&s->verifier, "test-stdout.txt", 0644, &err)) < 0) {
		fail(s, "RuntimeError", &err);
		goto out;
	}
	req.argv = argv;
	req.env = spec->verifier_env;
	req.stdout_fd = out;
	req.merge_stderr = true;
	req.timeout_sec = spec->verifier_timeout;
	req.output_cap = spec->output_cap;
	if (env_exec(s->env, &req, &res, &err) < 0) {
		fail(s, "RuntimeError", &err);
		goto out;
	}
	s->r->verifier_commands_sec += res.duration_sec;
	s->oom_verifier = res.oom_killed;
	s->cut_verifier = res.stdout_truncated;
	/* Nothing writes /logs/verifier once the verifier is done. */
	s->verifier_processes_killed = env_kill_all(s->env, &err);
	s->idle = s->verifier_processes_killed >= 0;
	if (res.timed_out) {
		err_set(&err, ETIMEDOUT, "verifier timed out after %g seconds",
		        spec->verifier_timeout);
		fail(s, "VerifierTimeoutError", &err);
		goto out;
	}
	if (!env_logs_mounted(s->env) &&
	    env_download(s->env, ENV_VERIFIER_DIR, &s->trial, "verifier", NULL, NULL, &err) < 0) {
		fail(s, "DownloadVerifierDirError", &err);
		goto out;
	}
	if (trial_parse_rewards(&s->verifier, started, &s->r->rewards, &s->reward, &type, &err) <
	    0) {
		fail(s, type, &err);
	} else {
		_cleanup_free_ char *text = cJSON_PrintUnformatted(s->r->rewards);

		log_info("%s: rewards %s (from %s)", spec->trial_name, text ? text : "",
		         s->reward.name);
	}
out:
	phase_end(s, PHASE_VERIFIER);
}

/* Where a declared artifact lands under artifacts/: its destination, else its
 * source path mirrored as Harbor 0.22 does (/app/out.txt -> artifacts/app/out.txt);
 * NULL when that would not stay inside. */
static char *artifact_dest(const char *src, const char *dest)
{
	if (dest && *dest)
		return path_clean_relative(dest);
	while (*src == '/')
		src++;
	return path_clean_relative(src);
}

static void collect_artifacts(struct trial_run_state *s, const struct copy_limits *lim)
{
	const struct trial_spec *spec = s->spec;
	_cleanup_json_ cJSON *manifest = cJSON_CreateArray();
	struct err err = {0};

	if (!spec->artifact_sources || !spec->artifact_sources[0])
		return;
	for (size_t i = 0; spec->artifact_sources[i]; i++) {
		const char *src = spec->artifact_sources[i];
		_cleanup_free_ char *dest =
		    artifact_dest(src, spec->artifact_dests ? spec->artifact_dests[i] : NULL);
		cJSON *entry = cJSON_CreateObject();
		struct stat st;
		bool ok = false;

		err_clear(&err);
		if (!dest || !*dest || strcmp(dest, "manifest.json") == 0)
			err_set(&err, EINVAL, "destination outside artifacts/");
		else if (!s->env)
			err_set(&err, ENOENT, "no environment");
		else
			ok = env_download(s->env, src, &s->artifacts, dest, lim, &s->collected,
			                  &err) == 0;
		if (!ok) {
			log_warn("%s: artifact %s: %s", spec->trial_name, src, err.msg);
			if (err.code == ETIMEDOUT)
				s->collect_timed_out = true;
		}
		cJSON_AddStringToObject(entry, "source", src);
		cJSON_AddStringToObject(entry, "destination", dest ? dest : "");
		cJSON_AddStringToObject(entry, "type",
		                        dest && cdir_lstat(&s->artifacts, dest, &st) == 0 &&
		                                S_ISDIR(st.st_mode)
		                            ? "directory"
		                            : "file");
		cJSON_AddStringToObject(entry, "status", ok ? "ok" : "failed");
		cJSON_AddItemToArray(manifest, entry);
	}
	if (json_write_at(&s->artifacts, "manifest.json", manifest, &err) < 0)
		log_warn("%s", err.msg);
}

/* After this, the trial's directories hold nothing setuid, special or linked
 * out, nothing writable by others, and no more than the caps allow; only then
 * are they opened to other host users. */
static void clean_log_dirs(struct trial_run_state *s, double deadline)
{
	struct cdir *dirs[] = {&s->agent, &s->verifier, &s->artifacts};
	struct sanitize_limits lim = {.max_bytes = s->spec->logs_cap > 0 ? s->spec->logs_cap
	                                                                 : TRIAL_LOGS_CAP_DEFAULT,
	                              .deadline = deadline,
	                              .chown_to_caller = true};
	struct err err = {0};

	s->logs_clean = true;
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		struct sanitize_report rep;

		if (cdir_sanitize(dirs[i], &lim, &rep, &err) < 0 || rep.timed_out) {
			log_error("%s: %s: %s", s->spec->trial_name, dirs[i]->path,
			          rep.timed_out ? "cleaning ran out of time" : err.msg);
			s->logs_clean = false;
		}
		s->cleaned.links_removed += rep.links_removed;
		s->cleaned.special_removed += rep.special_removed;
		s->cleaned.deep_removed += rep.deep_removed;
		s->cleaned.modes_fixed += rep.modes_fixed;
		s->cleaned.files_truncated += rep.files_truncated;
		s->cleaned.bytes += rep.bytes;
		s->cleaned.timed_out |= rep.timed_out;
	}
	if (s->cleaned.links_removed || s->cleaned.special_removed || s->cleaned.deep_removed)
		log_warn("%s: removed from the trial's directories: %ld links pointing out, %ld "
		         "special files, %ld too-deep trees",
		         s->spec->trial_name, s->cleaned.links_removed, s->cleaned.special_removed,
		         s->cleaned.deep_removed);
}

/* What the environment's storage came to, once nothing of it runs. */
static void read_storage_usage(struct trial_run_state *s)
{
	struct err err = {0};

	s->storage =
	    (struct env_usage){.limit_bytes = s->spec->env.storage_bytes, .used_bytes = -1};
	if (!s->env)
		return;
	if (env_usage(s->env, &s->storage, &err) < 0)
		log_warn("%s: %s", s->spec->trial_name, err.msg);
	else if (s->storage.limit_hit)
		log_warn("%s: the environment reached its storage limit (%lld bytes)",
		         s->spec->trial_name, s->storage.limit_bytes);
}

static void run_collect(struct trial_run_state *s)
{
	const struct trial_spec *spec = s->spec;
	double budget = spec->collect_timeout > 0 ? spec->collect_timeout : COLLECT_TIMEOUT_DEFAULT;
	struct copy_limits lim = {.max_bytes = spec->artifacts_cap > 0
	                                           ? spec->artifacts_cap
	                                           : TRIAL_ARTIFACTS_CAP_DEFAULT,
	                          .deadline = mono_now() + budget};
	struct err err = {0};

	phase_begin(s, PHASE_ARTIFACT_COLLECTION);
	/* However the earlier phases ended: no process of the environment is left
	 * while the host reads what it wrote. */
	if (s->env && !s->agent_killed)
		end_agent_phase(s);
	else if (s->env && !s->idle && env_kill_all(s->env, &err) < 0)
		log_warn("%s: %s", spec->trial_name, err.msg);
	read_storage_usage(s);
	if (s->env && !env_logs_mounted(s->env)) {
		/* best effort, like Harbor: the trial's outcome is already decided */
		if (env_download(s->env, ENV_AGENT_DIR, &s->trial, "agent", &lim, &s->collected,
		                 &err) < 0)
			log_warn("%s: download %s: %s", spec->trial_name, ENV_AGENT_DIR, err.msg);
		if (env_download(s->env, ENV_ARTIFACTS_DIR, &s->trial, "artifacts", &lim,
		                 &s->collected, &err) < 0)
			log_warn("%s: download %s: %s", spec->trial_name, ENV_ARTIFACTS_DIR,
			         err.msg);
	}
	collect_artifacts(s, &lim);
	clean_log_dirs(s, lim.deadline + budget);
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
		if (env_stop(s->env, !keep, &err) < 0) {
			log_error("%s: teardown: %s", spec->trial_name, err.msg);
			/* Failed while being cancelled: likely because of it, so the trial
			 * runs again on resume rather than being kept with this error. */
			if (!s->r->exception && cancel_requested())
				mark_cancelled(s);
			else if (!s->r->exception)
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

/* What the trial saw, for a reviewer to audit (result.json "integrity"). */
static cJSON *integrity_json(const struct trial_run_state *s)
{
	cJSON *j = cJSON_CreateObject();
	cJSON *flags = cJSON_CreateArray();
	cJSON *c;

	cJSON_AddNumberToObject(j, "agent_processes_killed", s->agent_processes_killed);
	cJSON_AddNumberToObject(j, "verifier_processes_killed",
	                        s->verifier_processes_killed > 0 ? s->verifier_processes_killed
	                                                         : 0);
	if (s->reward.name) {
		char when[ISO8601_LEN];
		cJSON *rf = cJSON_AddObjectToObject(j, "reward_file");

		iso8601_format(s->reward.mtime, when, sizeof(when));
		cJSON_AddStringToObject(rf, "name", s->reward.name);
		cJSON_AddNumberToObject(rf, "size", (double)s->reward.size);
		cJSON_AddStringToObject(rf, "mtime", when);
	} else {
		cJSON_AddNullToObject(j, "reward_file");
	}
	json_add_str_or_null(j, "reward_file_ignored", s->reward.ignored);
	cJSON_AddBoolToObject(j, "reward_file_planted", s->reward_planted);
	c = cJSON_AddObjectToObject(j, "oom_killed");
	cJSON_AddBoolToObject(c, "agent", s->oom_agent);
	cJSON_AddBoolToObject(c, "verifier", s->oom_verifier);
	c = cJSON_AddObjectToObject(j, "output_truncated");
	cJSON_AddBoolToObject(c, "agent", s->cut_agent);
	cJSON_AddBoolToObject(c, "verifier", s->cut_verifier);
	c = cJSON_AddObjectToObject(j, "collect");
	cJSON_AddNumberToObject(c, "artifact_bytes", (double)s->collected.bytes);
	cJSON_AddBoolToObject(c, "artifacts_truncated", s->collected.truncated);
	cJSON_AddBoolToObject(c, "timed_out", s->collect_timed_out || s->cleaned.timed_out);
	cJSON_AddNumberToObject(c, "log_bytes", (double)s->cleaned.bytes);
	cJSON_AddNumberToObject(c, "log_files_truncated", (double)s->cleaned.files_truncated);
	cJSON_AddNumberToObject(c, "links_removed", (double)s->cleaned.links_removed);
	cJSON_AddNumberToObject(c, "special_files_removed", (double)s->cleaned.special_removed);
	cJSON_AddNumberToObject(c, "deep_trees_removed", (double)s->cleaned.deep_removed);
	cJSON_AddNumberToObject(c, "modes_fixed", (double)s->cleaned.modes_fixed);
	cJSON_AddBoolToObject(c, "clean", s->logs_clean);
	c = cJSON_AddObjectToObject(j, "storage");
	cJSON_AddNumberToObject(c, "limit_bytes", (double)s->storage.limit_bytes);
	cJSON_AddBoolToObject(c, "enforced", s->storage.enforced);
	if (s->storage.used_bytes >= 0)
		cJSON_AddNumberToObject(c, "used_bytes", (double)s->storage.used_bytes);
	else
		cJSON_AddNullToObject(c, "used_bytes");
	cJSON_AddBoolToObject(c, "limit_hit", s->storage.limit_hit);
	if (s->reward_planted)
		cJSON_AddItemToArray(flags, cJSON_CreateString("reward_file_planted"));
	if (s->reward.ignored)
		cJSON_AddItemToArray(flags,
		                     cJSON_CreateString("reward_file_predates_verification"));
	if (s->agent_processes_killed > 0)
		cJSON_AddItemToArray(flags, cJSON_CreateString("agent_processes_killed"));
	cJSON_AddItemToObject(j, "tampering", flags);
	return j;
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

static void state_release(struct trial_run_state *s)
{
	cdir_release(&s->trial);
	cdir_release(&s->agent);
	cdir_release(&s->verifier);
	cdir_release(&s->artifacts);
}

int trial_run(const struct trial_spec *spec, struct trial_result *r, struct err *err)
{
	struct trial_run_state s = {.spec = spec,
	                            .r = r,
	                            .trial = CDIR_INIT,
	                            .agent = CDIR_INIT,
	                            .verifier = CDIR_INIT,
	                            .artifacts = CDIR_INIT};
	int log_slot, rc = 0;

	fill_identity(spec, r);
	r->started_at = wall_now();
	/* Closed to other host users while the environment runs: whatever it writes
	 * into /logs is cleaned before anyone else may look (see run_collect). */
	if (cdir_make_trusted(spec->trial_dir, 0700, &s.trial, err) < 0 ||
	    cdir_chmod(&s.trial, 0700, err) < 0 || make_log_dirs(&s, err) < 0) {
		rc = -1;
		goto out;
	}
	log_slot = log_open_fd(cdir_append(&s.trial, "trial.log", 0644, NULL));
	if (spec->config_json &&
	    json_write_at(&s.trial, "config.json", spec->config_json, err) < 0) {
		rc = -1;
		goto close_log;
	}
	if (spec->config_json) {
		_cleanup_json_ cJSON *lock =
		    trial_lock_json(spec->config_json, spec->task_name, spec->task_checksum);

		if (json_write_at(&s.trial, "lock.json", lock, err) < 0) {
			rc = -1;
			goto close_log;
		}
	}
	/* No result.json until the trial ends: a trial directory without one is an
	 * unfinished trial to resume (config.json says which). */

	if (!cancel_requested())
		run_setup(&s);
	if (!s.fatal && !cancel_requested())
		run_install(&s);
	if (!s.fatal && !cancel_requested())
		run_execute(&s);
	if (!s.fatal && !cancel_requested())
		end_agent_phase(&s);
	if (!s.fatal && !spec->verifier_disabled && !cancel_requested())
		run_verify(&s);
	/* Cancelled before the work phases completed: the result is not an outcome.
	 * A cancel that arrives during collect/teardown changes nothing (unless the
	 * teardown then fails: see run_teardown). */
	if (cancel_requested())
		mark_cancelled(&s);
	run_collect(&s);
	run_teardown(&s);
	r->integrity = integrity_json(&s);
	r->finished_at = wall_now();
	save(&s);
	if (s.logs_clean && cdir_chmod(&s.trial, 0755, err) < 0)
		log_warn("%s", err->msg);
	log_info("%s: finished in %.2f s%s%s", spec->trial_name, r->finished_at - r->started_at,
	         r->exception ? " with " : "", r->exception ? r->exception->type : "");
close_log:
	log_close_file(log_slot);
out:
	state_release(&s);
	return rc;
}
