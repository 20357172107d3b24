/* libFuzzer target: registry.json parsing, Harbor's version choice and the
 * PEP 440 comparator must never crash or leak, and the comparator must be a
 * consistent order (antisymmetric) over whatever versions the input holds. */
#include "config/registry.h"
#include "rollout/err.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diags diags = DIAGS_INIT;
	struct registry reg;
	struct err err;

	registry_parse((const char *)data, size, "fuzz.json", "/base", &reg, &diags);
	for (size_t i = 0; i < reg.n_datasets; i++) {
		const struct registry_dataset *d = &reg.datasets[i];
		struct pep440 a, b;

		if (d->name)
			registry_find(&reg, d->name, NULL, &err);
		if (!d->version || !pep440_parse(d->version, &a))
			continue;
		for (size_t k = 0; k < reg.n_datasets; k++) {
			const char *v = reg.datasets[k].version;

			if (v && pep440_parse(v, &b) &&
			    pep440_compare(&a, &b) != -pep440_compare(&b, &a))
				abort();
		}
	}
	registry_release(&reg);
	diags_release(&diags);
	return 0;
}
