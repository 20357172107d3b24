/* SHA-256 (streaming), hex encoding. */
#ifndef ROLLOUT_SHA256_H
#define ROLLOUT_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t fill;
};

#define SHA256_HEX_LEN 64

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
void sha256_final(struct sha256 *s, uint8_t out[32]);
/* Final digest as 64 lowercase hex chars + NUL. */
void sha256_final_hex(struct sha256 *s, char out[SHA256_HEX_LEN + 1]);
void sha256_hex(const void *data, size_t n, char out[SHA256_HEX_LEN + 1]);
void hex_encode(const uint8_t *in, size_t n, char *out);

#endif
