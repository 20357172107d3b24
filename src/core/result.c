/* Trial results: Harbor's TrialResult JSON, atomic writes, tolerant loads. */
#include "core/result.h"
#include "core/rewards.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/json.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static const char *const phase_keys[PHASE_COUNT] = {
    "environment_setup", "agent_setup",         "agent_execution",
    "verifier",          "artifact_collection", "environment_teardown",
};

const char *trial_phase_key(enum trial_phase p)
{
	return p < PHASE_COUNT ? phase_keys[p] : "unknown";
}

static void random_bytes(void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom((char *)buf + got, n - got, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			abort(); /* the kernel always has getrandom on the kernels we run on */
		}
		got += (size_t)r;
	}
}

void uuid4(char out[37])
{
	unsigned char b[16];

	random_bytes(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
}

char *trial_name_new(const char *task_name)
{
	/* ShortUUID's alphabet (no 0/1/I/O/l), as Harbor's suffixes use. */
	static const char alphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
	const char *slash = strrchr(task_name, '/');
	const char *base = slash ? slash + 1 : task_name;
	size_t n = strnlen(base, 32);
	unsigned char rnd[7];
	char suffix[8];

	while (n > 0 && (base[n - 1] == '_' || base[n - 1] == '-'))
		n--;
	random_bytes(rnd, sizeof(rnd));
	for (int i = 0; i < 7; i++)
		suffix[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
	suffix[7] = '\0';
	return xasprintf("%.*s__%s", (int)n, base, suffix);
}

char *file_uri(const char *path)
{
	_cleanup_free_ char *abs = path_real(path);
	struct strbuf sb = STRBUF_INIT;
	const char *p = abs ? abs : path;

	sb_adds(&sb, "file://");
	for (; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("/-_.~", c))
			sb_addc(&sb, (char)c);
		else
			sb_addf(&sb, "%%%02X", c);
	}
	return sb_detach(&sb);
}

void trial_result_init(struct trial_result *r)
{
	char id[37];

	memset(r, 0, sizeof(*r));
	uuid4(id);
	r->id = xstrdup(id);
}

static void exception_free(struct exception_info *e)
{
	if (!e)
		return;
	free(e->type);
	free(e->message);
	free(e->traceback);
	free(e);
}

void trial_result_free(struct trial_result *r)
{
	free(r->id);
	free(r->task_name);
	free(r->trial_name);
	free(r->trial_uri);
	cJSON_Delete(r->task_id);
	free(r->source);
	free(r->task_checksum);
	cJSON_Delete(r->config);
	free(r->agent_name);
	free(r->agent_version);
	free(r->model_name);
	cJSON_Delete(r->agent_result);
	cJSON_Delete(r->rewards);
	cJSON_Delete(r->integrity);
	exception_free(r->exception);
	memset(r, 0, sizeof(*r));
}

void trial_result_clear_exception(struct trial_result *r)
{
	exception_free(r->exception);
	r->exception = NULL;
}

void trial_result_set_exception(struct trial_result *r, const char *type, const char *fmt, ...)
{
	va_list ap;
	struct exception_info *e;

	if (r->exception)
		return;
	e = xcalloc(1, sizeof(*e));
	e->type = xstrdup(type);
	va_start(ap, fmt);
	e->message = xvasprintf(fmt, ap);
	va_end(ap);
	e->traceback = xasprintf("%s: %s\n", e->type, e->message);
	e->occurred_at = wall_now();
	r->exception = e;
}

static cJSON *time_json(double t)
{
	char buf[ISO8601_LEN];

	if (t <= 0)
		return cJSON_CreateNull();
	iso8601_format(t, buf, sizeof(buf));
	return cJSON_CreateString(buf);
}

static cJSON *dup_or_null(const cJSON *v)
{
	return v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();
}

/* The rewards to write, or NULL. Rewards that rewards_normalize refuses (a non-finite
 * number has no JSON spelling; the reader would refuse the file and the trial would
 * count as a crash) are dropped, and *why says why: the trial then records a
 * VerifierOutputParseError. The verifier's parser never lets such rewards through;
 * this keeps any other path from writing a result that cannot be read back. */
static cJSON *writable_rewards(const struct trial_result *r, struct err *why)
{
	cJSON *rw;

	if (!r->rewards)
		return NULL;
	rw = cJSON_Duplicate(r->rewards, 1);
	if (rewards_normalize(rw, why) == 0)
		return rw;
	cJSON_Delete(rw);
	err_wrap(why, "the rewards were not recorded");
	return NULL;
}

/* A number the way Python prints a float (Harbor's rewards are floats): the
 * shortest text that reads back the same, with ".0" when it would look integral. */
void json_float_text(double v, char *buf, size_t n)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, n, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	if (!strpbrk(buf, ".eEn"))
		strncat(buf, ".0", n - strlen(buf) - 1);
}

/* cJSON_ReplaceItemViaPointer without losing the member's key. */
static void replace_keeping_key(cJSON *parent, cJSON *old, cJSON *with)
{
	if (old->string && !(old->type & cJSON_StringIsConst)) {
		with->string = old->string;
		old->string = NULL;
	}
	cJSON_ReplaceItemViaPointer(parent, old, with);
}

/* Each numeric reward becomes a raw float literal (1 -> 1.0), as Harbor writes it. */
static void rewards_as_floats(cJSON *rewards)
{
	for (cJSON *c = rewards->child, *next; c; c = next) {
		char buf[64];

		next = c->next;
		if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble))
			continue;
		json_float_text(c->valuedouble, buf, sizeof(buf));
		replace_keeping_key(rewards, c, cJSON_CreateRaw(buf));
	}
}

static void add_exception(cJSON *j, const struct exception_info *x)
{
	cJSON *e = cJSON_AddObjectToObject(j, "exception_info");

	json_add_str_or_null(e, "exception_type", x->type);
	json_add_str_or_null(e, "exception_message", x->message);
	json_add_str_or_null(e, "exception_traceback", x->traceback);
	cJSON_AddItemToObject(e, "occurred_at", time_json(x->occurred_at));
}

cJSON *trial_result_to_json(const struct trial_result *r)
{
	cJSON *j = cJSON_CreateObject();
	cJSON *agent_info, *verifier, *rewards;
	struct err why = {0};

	json_add_str_or_null(j, "id", r->id);
	json_add_str_or_null(j, "task_name", r->task_name);
	json_add_str_or_null(j, "trial_name", r->trial_name);
	json_add_str_or_null(j, "trial_uri", r->trial_uri);
	cJSON_AddItemToObject(j, "task_id", dup_or_null(r->task_id));
	json_add_str_or_null(j, "source", r->source);
	json_add_str_or_null(j, "task_checksum", r->task_checksum);
	cJSON_AddItemToObject(j, "config", dup_or_null(r->config));

	agent_info = cJSON_AddObjectToObject(j, "agent_info");
	json_add_str_or_null(agent_info, "name", r->agent_name);
	json_add_str_or_null(agent_info, "version", r->agent_version);
	if (r->model_name) {
		cJSON *mi = cJSON_AddObjectToObject(agent_info, "model_info");
		const char *slash = strchr(r->model_name, '/');

		if (slash) {
			cJSON_AddStringToObject(mi, "name", slash + 1);
			cJSON *prov = cJSON_CreateString("");

			free(prov->valuestring);
			prov->valuestring =
			    xstrndup(r->model_name, (size_t)(slash - r->model_name));
			cJSON_AddItemToObject(mi, "provider", prov);
		} else {
			/* No provider in the name: classic Harbor requires a string here. */
			cJSON_AddStringToObject(mi, "name", r->model_name);
			cJSON_AddStringToObject(mi, "provider", "");
		}
	} else {
		cJSON_AddNullToObject(agent_info, "model_info");
	}
	if (r->agent_result) {
		cJSON_AddItemToObject(j, "agent_result", cJSON_Duplicate(r->agent_result, 1));
	} else {
		cJSON *ar = cJSON_AddObjectToObject(j, "agent_result");

		cJSON_AddNullToObject(ar, "n_input_tokens");
		cJSON_AddNullToObject(ar, "n_cache_tokens");
		cJSON_AddNullToObject(ar, "n_output_tokens");
		cJSON_AddNullToObject(ar, "cost_usd");
		cJSON_AddNullToObject(ar, "rollout_details");
		cJSON_AddNullToObject(ar, "metadata");
	}
	rewards = writable_rewards(r, &why);
	if (rewards) {
		verifier = cJSON_AddObjectToObject(j, "verifier_result");
		cJSON_AddItemToObject(verifier, "rewards", rewards);
	} else {
		cJSON_AddNullToObject(j, "verifier_result");
	}
	if (r->exception) {
		add_exception(j, r->exception);
	} else if (why.msg[0]) {
		_cleanup_free_ char *tb = xasprintf("VerifierOutputParseError: %s\n", why.msg);
		char type[] = "VerifierOutputParseError";
		struct exception_info x = {type, why.msg, tb, wall_now()};

		add_exception(j, &x);
	} else {
		cJSON_AddNullToObject(j, "exception_info");
	}
	cJSON_AddItemToObject(j, "started_at", time_json(r->started_at));
	cJSON_AddItemToObject(j, "finished_at", time_json(r->finished_at));
	/* Harbor >= 0.22: where the verifier ran. rollout runs it in the agent's
	 * environment ("shared"); it has no separate verifier environments. */
	cJSON_AddStringToObject(j, "verifier_environment_mode", "shared");
	{
		cJSON *t = cJSON_AddObjectToObject(j, "timing");

		cJSON_AddNumberToObject(t, "agent_commands_sec", r->agent_commands_sec);
		cJSON_AddNumberToObject(t, "verifier_commands_sec", r->verifier_commands_sec);
	}
	if (r->integrity)
		cJSON_AddItemToObject(j, "integrity", cJSON_Duplicate(r->integrity, 1));
	for (int p = 0; p < PHASE_COUNT; p++) {
		if (r->phases[p].started_at <= 0) {
			cJSON_AddNullToObject(j, phase_keys[p]);
			continue;
		}
		cJSON *t = cJSON_AddObjectToObject(j, phase_keys[p]);

		cJSON_AddItemToObject(t, "started_at", time_json(r->phases[p].started_at));
		cJSON_AddItemToObject(t, "finished_at", time_json(r->phases[p].finished_at));
	}
	return j;
}

/* Reading: a key may be absent or null; any other type mismatch is an error. */
static int get_str(const cJSON *j, const char *key, char **out, struct err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return err_set(err, EINVAL, "key '%s': expected a string", key);
	*out = xstrdup(v->valuestring);
	return 0;
}

static int get_time(const cJSON *j, const char *key, double *out, struct err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	*out = 0;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || iso8601_parse(v->valuestring, out) < 0)
		return err_set(err, EINVAL, "key '%s': expected an ISO-8601 time", key);
	return 0;
}

static cJSON *get_dup(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	return v && !cJSON_IsNull(v) ? cJSON_Duplicate(v, 1) : NULL;
}

int trial_result_from_json(const cJSON *j, struct trial_result *r, struct err *err)
{
	const cJSON *ai, *mi, *vr, *ei;

	memset(r, 0, sizeof(*r));
	if (!cJSON_IsObject(j))
		return err_set(err, EINVAL, "expected a JSON object");
	if (get_str(j, "id", &r->id, err) < 0 || get_str(j, "task_name", &r->task_name, err) < 0 ||
	    get_str(j, "trial_name", &r->trial_name, err) < 0 ||
	    get_str(j, "trial_uri", &r->trial_uri, err) < 0 ||
	    get_str(j, "source", &r->source, err) < 0 ||
	    get_str(j, "task_checksum", &r->task_checksum, err) < 0 ||
	    get_time(j, "started_at", &r->started_at, err) < 0 ||
	    get_time(j, "finished_at", &r->finished_at, err) < 0)
		goto fail;
	r->task_id = get_dup(j, "task_id");
	r->config = get_dup(j, "config");
	r->agent_result = get_dup(j, "agent_result");
	r->integrity = get_dup(j, "integrity");
	ai = cJSON_GetObjectItemCaseSensitive(j, "agent_info");
	if (cJSON_IsObject(ai)) {
		if (get_str(ai, "name", &r->agent_name, err) < 0 ||
		    get_str(ai, "version", &r->agent_version, err) < 0)
			goto fail;
		mi = cJSON_GetObjectItemCaseSensitive(ai, "model_info");
		if (cJSON_IsObject(mi)) {
			const char *name = json_get_str(mi, "name");
			const char *prov = json_get_str(mi, "provider");

			if (name && prov && *prov)
				r->model_name = xasprintf("%s/%s", prov, name);
			else if (name)
				r->model_name = xstrdup(name);
		}
	}
	vr = cJSON_GetObjectItemCaseSensitive(j, "verifier_result");
	if (cJSON_IsObject(vr)) {
		const cJSON *rw = cJSON_GetObjectItemCaseSensitive(vr, "rewards");

		if (rw && !cJSON_IsNull(rw)) {
			r->rewards = cJSON_Duplicate(rw, 1);
			if (rewards_normalize(r->rewards, err) < 0) {
				err_wrap(err, "key 'verifier_result.rewards'");
				goto fail;
			}
		}
	}
	ei = cJSON_GetObjectItemCaseSensitive(j, "exception_info");
	if (cJSON_IsObject(ei)) {
		r->exception = xcalloc(1, sizeof(*r->exception));
		if (get_str(ei, "exception_type", &r->exception->type, err) < 0 ||
		    get_str(ei, "exception_message", &r->exception->message, err) < 0 ||
		    get_str(ei, "exception_traceback", &r->exception->traceback, err) < 0 ||
		    get_time(ei, "occurred_at", &r->exception->occurred_at, err) < 0)
			goto fail;
		if (!r->exception->type)
			r->exception->type = xstrdup("UnknownError");
	}
	{
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "timing");

		r->agent_commands_sec = json_get_num(t, "agent_commands_sec", 0);
		r->verifier_commands_sec = json_get_num(t, "verifier_commands_sec", 0);
	}
	for (int p = 0; p < PHASE_COUNT; p++) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, phase_keys[p]);

		if (!cJSON_IsObject(t))
			continue;
		if (get_time(t, "started_at", &r->phases[p].started_at, err) < 0 ||
		    get_time(t, "finished_at", &r->phases[p].finished_at, err) < 0)
			goto fail;
	}
	return 0;
fail:
	trial_result_free(r);
	return -1;
}

int trial_result_write(const struct cdir *trial, const struct trial_result *r, struct err *err)
{
	_cleanup_json_ cJSON *j = trial_result_to_json(r);
	const char *traceback;

	/* Error text comes from builders, daemons and agents with their terminal
	 * colours: none of that goes into the files. */
	json_strip_terminal(j);
	/* From the JSON, which may carry an exception r lacks (writable_rewards). */
	traceback = json_get_str(cJSON_GetObjectItemCaseSensitive(j, "exception_info"),
	                         "exception_traceback");

	cJSON *rewards = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(j, "verifier_result"), "rewards");

	if (traceback &&
	    cdir_write_atomic(trial, "exception.txt", traceback, strlen(traceback), 0644, err) < 0)
		return -1;
	if (cJSON_IsObject(rewards))
		rewards_as_floats(rewards);
	return json_write_at(trial, "result.json", j, err);
}

enum result_status trial_result_load(const struct cdir *trial, struct trial_result *r,
                                     struct err *why)
{
	_cleanup_json_ cJSON *j = NULL;
	struct err e = {0};

	memset(r, 0, sizeof(*r));
	if (!cdir_exists(trial, "result.json")) {
		err_set(why, ENOENT, "%s: no result.json", trial->path);
		return RESULT_MISSING;
	}
	if (json_load_at(trial, "result.json", &j, &e) < 0) {
		err_set(why, EBADMSG, "%s", e.msg);
		return RESULT_CORRUPT;
	}
	if (trial_result_from_json(j, r, &e) < 0) {
		err_set(why, EBADMSG, "%s/result.json: %s", trial->path, e.msg);
		return RESULT_CORRUPT;
	}
	/* A result without finished_at was written mid-trial (rollout keeps one on disk
	 * from the start), so the trial did not finish. */
	if (r->finished_at <= 0) {
		err_set(why, EBADMSG, "%s/result.json: trial did not finish", trial->path);
		trial_result_free(r);
		return RESULT_CORRUPT;
	}
	return RESULT_OK;
}

/* A copy of v without null members (pydantic's exclude_none), recursively. */
static cJSON *dup_without_nulls(const cJSON *v)
{
	cJSON *out = cJSON_Duplicate(v, 1);
	cJSON *c = out ? out->child : NULL;

	while (c) {
		cJSON *next = c->next;

		if (cJSON_IsNull(c) && cJSON_IsObject(out)) {
			cJSON_Delete(cJSON_DetachItemViaPointer(out, c));
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			replace_keeping_key(out, c, dup_without_nulls(c));
		}
		c = next;
	}
	return out;
}

cJSON *trial_lock_json(const cJSON *trial_config, const char *task_name, const char *checksum)
{
	static const char *const mult[] = {"timeout_multiplier",
	                                   "agent_timeout_multiplier",
	                                   "verifier_timeout_multiplier",
	                                   "agent_setup_timeout_multiplier",
	                                   "environment_build_timeout_multiplier",
	                                   NULL};
	const cJSON *task = cJSON_GetObjectItemCaseSensitive(trial_config, "task");
	const char *git_url = json_get_str(task, "git_url");
	cJSON *lock = cJSON_CreateObject(), *t, *v;

	cJSON_AddNumberToObject(lock, "schema_version", 2);
	t = cJSON_AddObjectToObject(lock, "task");
	cJSON_AddStringToObject(t, "name", task_name ? task_name : "");
	cJSON_AddStringToObject(t, "type", git_url ? "git" : "local");
	{
		_cleanup_free_ char *digest = xasprintf("sha256:%s", checksum ? checksum : "");

		cJSON_AddStringToObject(t, "digest", digest);
	}
	for (const char *const *k =
	         (const char *const[]){"source", "path", "git_url", "git_commit_id", NULL};
	     *k; k++) {
		const char *sv = json_get_str(task, *k);

		if (sv)
			cJSON_AddStringToObject(t, *k, sv);
	}
	cJSON_AddFalseToObject(lock, "install_only");
	for (const char *const *k = mult; *k; k++) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(trial_config, *k);

		if (cJSON_IsNumber(m))
			cJSON_AddNumberToObject(lock, *k, m->valuedouble);
	}
	cJSON_AddItemToObject(
	    lock, "agent",
	    dup_without_nulls(cJSON_GetObjectItemCaseSensitive(trial_config, "agent")));
	cJSON_AddArrayToObject(lock, "skills");
	cJSON_AddItemToObject(
	    lock, "environment",
	    dup_without_nulls(cJSON_GetObjectItemCaseSensitive(trial_config, "environment")));
	v = dup_without_nulls(cJSON_GetObjectItemCaseSensitive(trial_config, "verifier"));
	if (!v)
		v = cJSON_CreateObject();
	cJSON_AddStringToObject(v, "environment_mode", "shared");
	cJSON_AddItemToObject(lock, "verifier", v);
	return lock;
}
