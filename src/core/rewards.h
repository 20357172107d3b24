/* Rewards as a verifier writes them (reward.txt: one number as Python's float()
 * reads it; reward.json: a flat object of numbers) and as trial results carry them:
 * a JSON object of at most REWARD_KEYS_MAX finite numbers. Nothing else gets into a
 * result, so no writer or reader downstream meets NaN, an infinity or a huge object. */
#ifndef ROLLOUT_REWARDS_H
#define ROLLOUT_REWARDS_H

#include <cjson/cJSON.h>
#include <stddef.h>

struct err;

/* Real verifiers write a handful of keys (DeepSWE about ten). The cap bounds what one
 * trial costs the statistics of a whole job, whatever its reward.json holds. */
#define REWARD_KEYS_MAX 1000

/* reward.txt's text -> {"reward": v}. Errors: not one number, or not finite
 * ("nan", "inf", "1e999"). Messages quote at most 80 bytes, control characters
 * replaced. */
int rewards_from_txt(const char *text, size_t len, cJSON **out, struct err *err);
/* reward.json's text -> the object, normalized (rewards_normalize). */
int rewards_from_json(const char *text, size_t len, cJSON **out, struct err *err);
/* Check a rewards object in place, in time linear in its size: an object, at most
 * REWARD_KEYS_MAX keys, every value a finite number. A key given twice keeps its
 * first place and its last value, as Python's json gives Harbor. -1 with err. */
int rewards_normalize(cJSON *rewards, struct err *err);

#endif
