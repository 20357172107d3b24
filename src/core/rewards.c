/* Parsing and checking rewards: reward.txt, reward.json, and the rewards of results. */
#include "core/rewards.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/json.h"
#include "rollout/strmap.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* At most 80 bytes of verifier output for a message, control characters as '?': the
 * message reaches logs and terminals. */
static char *excerpt(const char *s, size_t len)
{
	char *e = xstrndup(s, len < 80 ? len : 80);

	for (char *p = e; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return e;
}

/* Python's float(): surrounding whitespace, optional sign, digits with single
 * underscores between them (inf and nan parse, and are refused by the caller). */
static int parse_python_float(const char *s, double *out)
{
	_cleanup_free_ char *clean = NULL;
	size_t n, j = 0;
	char *end;
	const char *p;

	while (*s && isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0)
		return -1;
	clean = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '_') {
			if (i == 0 || i + 1 == n || !isdigit((unsigned char)s[i - 1]) ||
			    !isdigit((unsigned char)s[i + 1]))
				return -1;
			continue;
		}
		clean[j++] = s[i];
	}
	clean[j] = '\0';
	p = clean;
	if (*p == '+' || *p == '-')
		p++;
	/* strtod also takes hex floats and "0x..."; Python's float() does not. */
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		return -1;
	errno = 0;
	*out = strtod(clean, &end);
	if (*end || end == clean)
		return -1;
	return 0;
}

int rewards_from_txt(const char *text, size_t len, cJSON **out, struct err *err)
{
	_cleanup_free_ char *shown = excerpt(text, len);
	double v;

	*out = NULL;
	if (memchr(text, '\0', len) || parse_python_float(text, &v) < 0)
		return err_set(err, EINVAL, "reward.txt: expected one number, got '%s'", shown);
	/* Python reads "nan", "inf" and "1e999" too; none is an outcome (and JSON has no
	 * spelling for them). */
	if (!isfinite(v))
		return err_set(err, EINVAL, "reward.txt: expected a finite number, got '%s'",
		               shown);
	*out = cJSON_CreateObject();
	cJSON_AddNumberToObject(*out, "reward", v);
	return 0;
}

int rewards_from_json(const char *text, size_t len, cJSON **out, struct err *err)
{
	cJSON *j = NULL;

	*out = NULL;
	if (json_parse(text, len, "reward.json", &j, err) < 0)
		return -1;
	if (rewards_normalize(j, err) < 0) {
		cJSON_Delete(j);
		return err_wrap(err, "reward.json");
	}
	*out = j;
	return 0;
}

int rewards_normalize(cJSON *rewards, struct err *err)
{
	_cleanup_strmap_ struct strmap seen = STRMAP_INIT;
	size_t n = 0;
	cJSON *c, *next;

	if (!cJSON_IsObject(rewards))
		return err_set(err, EINVAL, "expected a flat object of numbers");
	for (c = rewards->child; c; c = next) {
		const char *key = c->string ? c->string : "";
		bool added;
		size_t *first;

		next = c->next;
		if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble)) {
			_cleanup_free_ char *shown = excerpt(key, strlen(key));

			if (!cJSON_IsNumber(c))
				return err_set(err, EINVAL, "key '%s': expected a number", shown);
			return err_set(err, EINVAL, "key '%s': expected a finite number, got %g",
			               shown, c->valuedouble);
		}
		first = strmap_put(&seen, key, (size_t)(uintptr_t)c, &added);
		if (!added) {
			cJSON_SetNumberValue((cJSON *)(uintptr_t)*first, c->valuedouble);
			cJSON_Delete(cJSON_DetachItemViaPointer(rewards, c));
			continue;
		}
		if (++n > REWARD_KEYS_MAX)
			return err_set(err, E2BIG, "more than %d keys (rollout's limit)",
			               REWARD_KEYS_MAX);
	}
	return 0;
}
