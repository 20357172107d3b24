/* Host variables read by task templates: collected from the loaded tasks. */
#include "core/hostenv.h"
#include "core/job_run.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/strmap.h"

#include <stdlib.h>
#include <string.h>

struct collect {
	struct host_vars *hv;
	struct strmap index; /* name -> index in hv */
};

static void add_use(struct collect *c, const char *name, const char *task, const char *table)
{
	size_t *i = strmap_get(&c->index, name);
	struct host_var_use *u;

	if (!i) {
		c->hv->v = xrealloc(c->hv->v, (c->hv->n + 1) * sizeof(*c->hv->v));
		u = &c->hv->v[c->hv->n];
		memset(u, 0, sizeof(*u));
		u->name = xstrdup(name);
		i = strmap_put(&c->index, u->name, c->hv->n++, NULL);
	}
	strv_pushf(&c->hv->v[*i].where, "%s [%s]", task, table);
}

static void add_table(struct collect *c, const struct env_list *env, const char *task,
                      const char *table, const struct env_list *replaced)
{
	for (size_t i = 0; i < env->n; i++) {
		const struct env_var *v = &env->v[i];

		if (v->host_var && !(replaced && env_list_get(replaced, v->name)))
			add_use(c, v->host_var, task, table);
	}
}

static bool runs_oracle(const struct job_config *cfg)
{
	for (size_t i = 0; i < cfg->n_agents; i++)
		if (cfg->agents[i].def->kind == AGENT_KIND_ORACLE)
			return true;
	return false;
}

void job_host_vars(const struct job *job, struct host_vars *out)
{
	struct collect c = {out, STRMAP_INIT};
	bool oracle = runs_oracle(job->cfg);

	memset(out, 0, sizeof(*out));
	for (size_t t = 0; t < job->n_tasks; t++) {
		const struct task *task = job->tasks[t].task;
		const struct task_config *tc = &task->config;

		add_table(&c, &tc->environment.env, task->name, "environment.env",
		          &job->cfg->environment.env);
		add_table(&c, &tc->verifier.env, task->name, "verifier.env", NULL);
		if (oracle)
			add_table(&c, &tc->solution.env, task->name, "solution.env", NULL);
	}
	strmap_release(&c.index);
}

void host_vars_drop(struct host_vars *hv, const struct strv *allowed)
{
	size_t n = 0;

	for (size_t i = 0; i < hv->n; i++) {
		if (strv_contains(allowed, hv->v[i].name)) {
			free(hv->v[i].name);
			strv_release(&hv->v[i].where);
		} else {
			hv->v[n++] = hv->v[i];
		}
	}
	hv->n = n;
}

char *host_vars_describe(const struct host_vars *hv, size_t max_where)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < hv->n; i++) {
		const struct strv *w = &hv->v[i].where;

		sb_addf(&sb, "%s%s (", i ? ", " : "", hv->v[i].name);
		for (size_t k = 0; k < w->n && k < max_where; k++)
			sb_addf(&sb, "%s%s", k ? ", " : "", w->v[k]);
		if (w->n > max_where)
			sb_addf(&sb, " and %zu more", w->n - max_where);
		sb_addc(&sb, ')');
	}
	return sb_detach(&sb);
}

void host_vars_release(struct host_vars *hv)
{
	for (size_t i = 0; i < hv->n; i++) {
		free(hv->v[i].name);
		strv_release(&hv->v[i].where);
	}
	free(hv->v);
	memset(hv, 0, sizeof(*hv));
}
