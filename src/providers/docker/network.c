/* The network of docker environments with internet: one bridge network of
 * rollout's, created on first use with inter-container communication disabled
 * (com.docker.network.bridge.enable_icc=false), so that trials running at the
 * same time cannot reach each other. Docker's default bridge lets any two
 * containers on it talk. Creation is race-safe across rollout processes: a
 * create that loses (409) finds the winner's network; should an old daemon
 * have made two of the same name, every process picks the same one (the
 * smallest Id). */
#include "providers/docker/docker.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/json.h"
#include "rollout/log.h"

#include <errno.h>
#include <string.h>

#define ICC_OPTION "com.docker.network.bridge.enable_icc"

static cJSON *list_networks(struct docker_client *c, struct err *err)
{
	_cleanup_free_ char *q = http_query_escape("{\"name\":[\"" DOCKER_NETWORK "\"]}");
	_cleanup_free_ char *path = docker_path(c, "/networks?filters=%s", q);
	cJSON *v = NULL;

	if (docker_call(c, "GET", path, NULL, &v, NULL, err) < 0)
		return NULL;
	if (!cJSON_IsArray(v)) {
		cJSON_Delete(v);
		err_set(err, EPROTO, "network list: not an array");
		return NULL;
	}
	return v;
}

/* The daemon's name filter matches substrings: the exact name, smallest Id. */
static const cJSON *pick(const cJSON *list)
{
	const cJSON *it, *best = NULL;

	cJSON_ArrayForEach(it, list)
	{
		const char *name = json_get_str(it, "Name"), *id = json_get_str(it, "Id");

		if (!name || !id || strcmp(name, DOCKER_NETWORK) != 0)
			continue;
		if (!best || strcmp(id, json_get_str(best, "Id")) < 0)
			best = it;
	}
	return best;
}

/* A network of that name that lets containers talk to each other is refused
 * rather than used. */
static int check_isolated(const cJSON *net, struct err *err)
{
	const cJSON *opts = cJSON_GetObjectItemCaseSensitive(net, "Options");
	const char *icc = json_get_str(opts, ICC_OPTION);
	const char *driver = json_get_str(net, "Driver");

	if (driver && strcmp(driver, "bridge") == 0 && icc && strcmp(icc, "false") == 0)
		return 0;
	return err_set(err, EEXIST,
	               "docker network " DOCKER_NETWORK
	               " exists but is not a bridge with " ICC_OPTION
	               "=false (made by someone else?): remove it "
	               "(docker network rm " DOCKER_NETWORK ") and rollout recreates it");
}

static int create_network(struct docker_client *c, struct err *err)
{
	_cleanup_free_ char *path = docker_path(c, "/networks/create");
	_cleanup_json_ cJSON *body = cJSON_CreateObject();
	cJSON *opts = cJSON_CreateObject(), *labels = cJSON_CreateObject();
	int status;

	cJSON_AddStringToObject(body, "Name", DOCKER_NETWORK);
	cJSON_AddStringToObject(body, "Driver", "bridge");
	/* Ignored by daemons that refuse duplicate names anyway (API >= 1.44). */
	cJSON_AddBoolToObject(body, "CheckDuplicate", true);
	cJSON_AddBoolToObject(body, "EnableIPv6", false);
	cJSON_AddStringToObject(opts, ICC_OPTION, "false");
	cJSON_AddItemToObject(body, "Options", opts);
	cJSON_AddStringToObject(labels, LABEL_NETWORK, "1");
	cJSON_AddStringToObject(labels, LABEL_VERSION, ROLLOUT_VERSION);
	cJSON_AddItemToObject(body, "Labels", labels);
	if (docker_call(c, "POST", path, body, NULL, &status, err) < 0) {
		if (status == 409) {
			err_clear(err); /* another rollout made it first */
			return 0;
		}
		return err_wrap(err, "create docker network " DOCKER_NETWORK);
	}
	log_info("docker: created network " DOCKER_NETWORK " (bridge, " ICC_OPTION "=false)");
	return 0;
}

int docker_network_ensure(struct docker_client *c, char **id, struct err *err)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		_cleanup_json_ cJSON *list = list_networks(c, err);
		const cJSON *net;

		if (!list)
			return err_wrap(err, "docker network " DOCKER_NETWORK);
		if ((net = pick(list))) {
			if (check_isolated(net, err) < 0)
				return -1;
			*id = xstrdup(json_get_str(net, "Id"));
			return 0;
		}
		if (attempt == 0 && create_network(c, err) < 0)
			return -1;
	}
	return err_set(err, ENOENT,
	               "docker network " DOCKER_NETWORK " was created but is not "
	               "listed by the daemon");
}
