/* libFuzzer target: the YAML and JSON readers and the job config binding
 * (the first byte picks the reader) must never crash, leak or recurse
 * without bound, and a bound config must serialize. */
#include "config/job_config.h"
#include "config/node.h"
#include "rollout/err.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct node *root = NULL;
	struct err err;
	int r;

	if (size < 1)
		return 0;
	if (data[0] == '{' || data[0] == '[' || data[0] == '"')
		r = json_parse_node((const char *)data, size, "fuzz.json", &root, &err);
	else
		r = yaml_parse((const char *)data, size, "fuzz.yaml", &root, &err);
	if (r == 0) {
		struct diags diags = DIAGS_INIT;
		struct strv diff = STRV_INIT;
		struct job_config cfg;
		cJSON *a, *b;

		job_config_init(&cfg);
		job_config_bind(root, "fuzz", &cfg, &diags);
		a = job_config_to_json(&cfg);
		b = node_to_json(root);
		job_config_json_diff(a, b, &diff);
		strv_release(&diff);
		cJSON_Delete(a);
		cJSON_Delete(b);
		job_config_release(&cfg);
		diags_release(&diags);
		node_free(root);
	}
	return 0;
}
