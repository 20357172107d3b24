/* A layer blob as a stream of tar bytes: reads the blob (a file, a range of one, or a
 * pipe), detects its compression, inflates gzip (multi-member too) or zstd (every
 * frame, skippable ones skipped, windows up to 2 GiB), and hashes the
 * compressed and the uncompressed bytes on the way. With `threaded`, reading,
 * inflating and hashing run on a second thread, ahead of the consumer (the tar
 * extractor), through a small ring of large buffers. */
#ifndef ROLLOUT_IMAGE_DECOMPRESS_H
#define ROLLOUT_IMAGE_DECOMPRESS_H

#include "image/tar.h"
#include "rollout/sha256.h"

#include <stdbool.h>
#include <stdint.h>

struct err;

enum compression {
	COMPRESSION_NONE,
	COMPRESSION_GZIP,
	COMPRESSION_ZSTD,
};

const char *compression_name(enum compression c);
/* From the first bytes of a blob (gzip 1f 8b, zstd 28 b5 2f fd or a skippable
 * frame 5? 2a 4d 18, else none). */
enum compression compression_detect(const uint8_t *data, size_t len);

/* Input length meaning "read() the fd to its end" (pipes). */
#define DECOMPRESS_STREAM UINT64_MAX

struct decompress_opts {
	int fd;          /* not closed */
	uint64_t offset; /* pread from here (ignored when streaming) */
	uint64_t length; /* bytes of blob, or DECOMPRESS_STREAM */
	bool threaded;
	uint64_t max_output; /* uncompressed bytes allowed; 0 = no limit */
};

struct decompress_result {
	enum compression compression;
	uint64_t compressed_size, uncompressed_size;
	/* "sha256:<64 hex>" */
	char compressed_digest[8 + SHA256_HEX_LEN];
	char uncompressed_digest[8 + SHA256_HEX_LEN];
};

struct decompress;

/* Opens the stream and sniffs the compression; errors leave it to the caller
 * to say which layer it was. */
int decompress_open(struct decompress **out, const struct decompress_opts *o, struct err *err);
enum compression decompress_compression(const struct decompress *d);
/* The uncompressed bytes, for tar_reader_new(). Errors (bad gzip, truncation, read
 * errors, output limit) surface through it. */
struct tar_input decompress_tar_input(struct decompress *d);
/* Read whatever the consumer left (call after tar_reader_drain or instead of it),
 * wait for the second thread and fill res. Fails if the stream failed. */
int decompress_finish(struct decompress *d, struct decompress_result *res, struct err *err);
/* Stops the second thread if it still runs. NULL is fine. */
void decompress_free(struct decompress *d);

#endif
