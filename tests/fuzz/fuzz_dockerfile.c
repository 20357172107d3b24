/* libFuzzer target: the Dockerfile parser and the word expansion must never
 * crash, leak or loop, whatever the text; every word of an instruction the parser
 * accepts goes through the expansion the builder applies to it. */
#include "image/dockerfile.h"
#include "rollout/err.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

static void expand_all(const struct dockerfile *df)
{
	static char *const vars[] = {"A=1", "PATH=/usr/bin:/bin", "E=", "S=two words"};
	struct df_env env = {vars, 4};

	for (size_t i = 0; i < df->n; i++) {
		const struct df_instr *in = &df->v[i];

		for (size_t k = 0; k < in->n_args; k++) {
			struct err err;
			char *out = NULL, **words = NULL;
			size_t n = 0;

			if (df_expand_word(in->args[k], df->escape, &env, &out, &err) == 0)
				free(out);
			if (df_expand_words(in->args[k], df->escape, &env, &words, &n, &err) == 0 ||
			    words) {
				for (size_t w = 0; w < n; w++)
					free(words[w]);
				free(words);
			}
		}
		for (size_t k = 0; k < in->n_heredocs; k++) {
			struct err err;
			char *out = NULL, *chomped = df_heredoc_chomp(in->heredocs[k].content);

			if (df_expand_heredoc(chomped, df->escape, &env, &out, &err) == 0)
				free(out);
			free(chomped);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dockerfile *df = NULL;
	struct err err;

	if (dockerfile_parse((const char *)data, size, "Dockerfile", &df, &err) == 0) {
		expand_all(df);
		dockerfile_free(df);
	}
	return 0;
}
