/* libFuzzer target: the TOML reader must never crash, leak or recurse without
 * bound; a document it accepts must also survive the task.toml binding. */
#include "config/task.h"
#include "config/toml.h"
#include "rollout/err.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct node *root = NULL;
	struct err err;

	if (toml_parse((const char *)data, size, "fuzz.toml", &root, &err) == 0) {
		struct diags diags = DIAGS_INIT;
		struct task_config cfg;
		cJSON *json = node_to_json(root);

		task_config_init(&cfg);
		task_config_bind(root, "fuzz.toml", &cfg, &diags);
		task_config_release(&cfg);
		diags_release(&diags);
		cJSON_Delete(json);
		node_free(root);
	}
	return 0;
}
