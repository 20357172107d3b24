/* A string-keyed hash index: string -> size_t in expected constant time, for loops
 * that would otherwise search a list once per item (reward keys, metric groups).
 * Keys are borrowed: each must stay valid and unchanged while the map holds it.
 * The hash is seeded per process, so inputs cannot be crafted to collide. */
#ifndef ROLLOUT_STRMAP_H
#define ROLLOUT_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strmap_slot {
	const char *key; /* NULL: empty */
	uint64_t hash;
	size_t value;
};

struct strmap {
	struct strmap_slot *slots;
	size_t cap, n; /* cap is 0 or a power of two, kept at least twice n */
};

#define STRMAP_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/* The value stored for key, or NULL when absent. */
size_t *strmap_get(const struct strmap *m, const char *key);
/* The value stored for key; when absent, key is added with `value` first and
 * *added (optional) says so. The pointer is valid until the next insertion. */
size_t *strmap_put(struct strmap *m, const char *key, size_t value, bool *added);
void strmap_release(struct strmap *m);

void cleanup_strmapp(struct strmap *m);
#define _cleanup_strmap_ __attribute__((cleanup(cleanup_strmapp)))

#endif
