/* libFuzzer target for the image metadata parsers: the first byte picks the parser
 * (OCI index, manifest, image config, docker manifest.json, image reference,
 * --change instruction); the rest is its input. */
#include "image/oci.h"
#include "image/store.h"
#include "rollout/alloc.h"
#include "rollout/err.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err err;
	char *text;
	size_t len;

	if (size < 1)
		return 0;
	len = size - 1;
	text = xmalloc(len + 1);
	memcpy(text, data + 1, len);
	text[len] = '\0';
	switch (data[0] % 6) {
	case 0: {
		struct oci_index idx;

		if (oci_parse_index(text, len, "index.json", &idx, &err) == 0) {
			oci_select_platform(&idx, "linux", "amd64", NULL);
			oci_select_platform(&idx, "linux", "arm64", "v8");
			oci_index_release(&idx);
		}
		break;
	}
	case 1: {
		struct oci_manifest m;
		enum compression c;

		if (oci_parse_manifest(text, len, "manifest", &m, &err) == 0) {
			for (size_t i = 0; i < m.n_layers; i++)
				oci_layer_compression(m.layers[i].media_type, &c, &err);
			oci_manifest_release(&m);
		}
		break;
	}
	case 2: {
		struct image_config c;

		if (image_config_parse(text, len, "config.json", &c, &err) == 0) {
			char **chains = xcalloc(c.n_diff_ids + 1, sizeof(char *));

			oci_chain_ids(c.diff_ids, c.n_diff_ids, chains);
			for (size_t i = 0; i < c.n_diff_ids; i++)
				free(chains[i]);
			free(chains);
			image_config_release(&c);
		}
		break;
	}
	case 3: {
		struct docker_manifest_entry *e;
		size_t n;

		if (docker_manifest_parse(text, len, "manifest.json", &e, &n, &err) == 0)
			docker_manifest_release(e, n);
		break;
	}
	case 4:
		free(store_normalize_ref(text, &err));
		break;
	case 5: {
		cJSON *doc = cJSON_Parse("{\"config\":{\"Env\":[\"A=b\"]}}");

		store_apply_change(doc, text, &err);
		free(cJSON_PrintUnformatted(doc));
		cJSON_Delete(doc);
		break;
	}
	}
	free(text);
	return 0;
}
