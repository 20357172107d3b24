/* Provider lookup by name. */
#include "providers/provider.h"

#include <stdlib.h>
#include <string.h>

extern const struct provider_ops sandbox_provider;
extern const struct provider_ops docker_provider;

const struct provider_ops *provider_find(const char *name)
{
	if (strcmp(name, "sandbox") == 0)
		return &sandbox_provider;
	if (strcmp(name, "docker") == 0)
		return &docker_provider;
	return NULL;
}

void env_info_free(struct env_info *infos, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(infos[i].name);
		free(infos[i].job_name);
		free(infos[i].image);
		free(infos[i].state);
	}
	free(infos);
}
