/* libFuzzer target: the WWW-Authenticate parser (image/regauth.c) and the
 * Retry-After parser on arbitrary text: every challenge list must parse or fail
 * cleanly, and what is kept must be freed. */
#include "image/regauth.h"
#include "rollout/alloc.h"
#include "rollout/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct regauth_challenge all[REGAUTH_MAX_CHALLENGES], ch;
	struct err err = {0};
	char *s;
	size_t n, len;

	if (size > 2 * REGAUTH_MAX_HEADER)
		return 0;
	s = xstrndup((const char *)data, size);
	if (regauth_parse_challenges(s, all, REGAUTH_MAX_CHALLENGES, &n, &err) == 0) {
		if (n > REGAUTH_MAX_CHALLENGES)
			abort();
		for (size_t i = 0; i < n; i++)
			regauth_challenge_release(&all[i]);
	}
	if (regauth_pick_challenge(s, &ch, &err) == 0) {
		if (ch.scheme != REGAUTH_BEARER && ch.scheme != REGAUTH_BASIC)
			abort();
		regauth_challenge_release(&ch);
	}
	(void)regauth_retry_after(s, 1e9);
	free(regauth_base64_decode(s, &len));
	free(s);
	return 0;
}
