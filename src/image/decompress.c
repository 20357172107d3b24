/* Blob -> tar bytes: read, sha256 of the blob, gunzip (all members) or zstd (all
 * frames, skippable ones included), sha256 of the output; optionally on a
 * producer thread feeding a ring of buffers. */
#include "image/decompress.h"
#include "rollout/alloc.h"
#include "rollout/err.h"
#include "rollout/signals.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define IN_BUF (1 << 20)
#define OUT_BUF (1 << 20)
#define RING 4

const char *compression_name(enum compression c)
{
	switch (c) {
	case COMPRESSION_NONE:
		return "none";
	case COMPRESSION_GZIP:
		return "gzip";
	case COMPRESSION_ZSTD:
		return "zstd";
	}
	return "?";
}

enum compression compression_detect(const uint8_t *data, size_t len)
{
	if (len >= 2 && data[0] == 0x1f && data[1] == 0x8b)
		return COMPRESSION_GZIP;
	if (len >= 4 && data[0] == 0x28 && data[1] == 0xb5 && data[2] == 0x2f && data[3] == 0xfd)
		return COMPRESSION_ZSTD;
	/* A zstd skippable frame (magic 0x184D2A50..5F, little-endian) may come first. */
	if (len >= 4 && (data[0] & 0xf0) == 0x50 && data[1] == 0x2a && data[2] == 0x4d &&
	    data[3] == 0x18)
		return COMPRESSION_ZSTD;
	return COMPRESSION_NONE;
}

struct decompress {
	struct decompress_opts o;
	enum compression comp;

	/* input */
	uint8_t *in;
	size_t in_len, in_pos; /* bytes in `in`, and consumed by inflate */
	uint64_t read_total;
	bool in_eof;
	struct sha256 in_hash;

	/* gzip */
	z_stream z;
	bool z_init, member_done;

	/* zstd */
	ZSTD_DCtx *zs;
	bool frame_done; /* the last call ended a frame: the input may end here */

	/* output */
	struct sha256 out_hash;
	uint64_t out_total;
	uint8_t *ring[RING];
	size_t ring_len[RING];
	uint64_t produced, consumed, released; /* buffers */
	bool outstanding;                      /* the consumer holds ring[(consumed-1)%RING] */
	bool done;                             /* producer reached the end (or failed) */
	int failed;                            /* producer error, in perr */
	struct err perr;

	bool threaded, thread_started, cancel;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* ---- producer ---- */

static int read_input(struct decompress *d, struct err *err)
{
	size_t want = IN_BUF;
	ssize_t n;

	if (d->o.length != DECOMPRESS_STREAM && d->o.length - d->read_total < want)
		want = (size_t)(d->o.length - d->read_total);
	if (want == 0) {
		d->in_eof = true;
		d->in_len = d->in_pos = 0;
		return 0;
	}
	do {
		if (d->o.length == DECOMPRESS_STREAM)
			n = read(d->o.fd, d->in, want);
		else
			n = pread(d->o.fd, d->in, want, (off_t)(d->o.offset + d->read_total));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return err_sys(err, "read");
	if (n == 0) {
		if (d->o.length != DECOMPRESS_STREAM)
			return err_set(err, EIO,
			               "unexpected end of file after %" PRIu64 " of %" PRIu64
			               " bytes",
			               d->read_total, d->o.length);
		d->in_eof = true;
	}
	sha256_update(&d->in_hash, d->in, (size_t)n);
	d->read_total += (uint64_t)n;
	d->in_len = (size_t)n;
	d->in_pos = 0;
	return 0;
}

/* After a gzip member: another member follows, or only zero padding (some
 * writers pad the stream to a block size). 0 = next member, 1 = the end. */
static int next_member(struct decompress *d, struct err *err)
{
	bool padding = false;

	for (;;) {
		uint8_t c;

		if (d->in_pos == d->in_len) {
			if (d->in_eof)
				return 1;
			if (read_input(d, err) < 0)
				return -1;
			continue;
		}
		c = d->in[d->in_pos];
		if (c == 0) {
			padding = true;
			d->in_pos++;
			continue;
		}
		if (padding || c != 0x1f)
			return err_set(err, EINVAL,
			               "bad gzip data: trailing garbage after the end of "
			               "the compressed stream");
		if (inflateReset(&d->z) != Z_OK)
			return err_set(err, EINVAL, "bad gzip data: inflateReset failed");
		d->member_done = false;
		return 0;
	}
}

/* zstd into buf: frames follow each other (and skippable frames are skipped) in
 * one ZSTD_decompressStream loop; the input may end only where a frame does. */
static ssize_t produce_zstd(struct decompress *d, uint8_t *buf, size_t cap, struct err *err)
{
	ZSTD_outBuffer ob = {.dst = buf, .size = cap};

	while (ob.pos < ob.size) {
		ZSTD_inBuffer ib;
		size_t before = ob.pos, r;

		if (d->in_pos == d->in_len && !d->in_eof) {
			if (read_input(d, err) < 0)
				return -1;
			continue;
		}
		/* At the end of the input, only a frame cut short leaves work. */
		if (d->in_pos == d->in_len && d->frame_done)
			break;
		ib = (ZSTD_inBuffer){.src = d->in + d->in_pos, .size = d->in_len - d->in_pos};
		r = ZSTD_decompressStream(d->zs, &ob, &ib);
		d->in_pos += ib.pos;
		if (ZSTD_isError(r))
			return err_set(err, EINVAL, "bad zstd data: %s", ZSTD_getErrorName(r));
		if (ib.pos == 0 && ob.pos == before)
			return err_set(err, EIO,
			               "bad zstd data: unexpected end of the compressed stream "
			               "(truncated?)");
		d->frame_done = r == 0;
	}
	return (ssize_t)ob.pos;
}

/* Fill buf with up to cap uncompressed bytes. Returns the count, 0 at the end. */
static ssize_t produce(struct decompress *d, uint8_t *buf, size_t cap, struct err *err)
{
	size_t got = 0;

	if (d->comp == COMPRESSION_ZSTD) {
		ssize_t n = produce_zstd(d, buf, cap, err);

		if (n < 0)
			return -1;
		got = (size_t)n;
	} else if (d->comp == COMPRESSION_NONE) {
		while (got < cap) {
			size_t k;

			if (d->in_pos == d->in_len) {
				if (d->in_eof)
					break;
				if (read_input(d, err) < 0)
					return -1;
				if (d->in_eof)
					break;
			}
			k = d->in_len - d->in_pos < cap - got ? d->in_len - d->in_pos : cap - got;
			memcpy(buf + got, d->in + d->in_pos, k);
			d->in_pos += k;
			got += k;
		}
	} else {
		d->z.next_out = buf;
		d->z.avail_out = (uInt)cap;
		while (d->z.avail_out > 0) {
			int zr;

			if (d->member_done) {
				int m = next_member(d, err);

				if (m < 0)
					return -1;
				if (m > 0)
					break;
			}
			if (d->in_pos == d->in_len) {
				if (d->in_eof)
					return err_set(err, EIO,
					               "bad gzip data: unexpected end of the "
					               "compressed stream (truncated?)");
				if (read_input(d, err) < 0)
					return -1;
				if (d->in_eof)
					continue;
			}
			d->z.next_in = d->in + d->in_pos;
			d->z.avail_in = (uInt)(d->in_len - d->in_pos);
			zr = inflate(&d->z, Z_NO_FLUSH);
			d->in_pos = d->in_len - d->z.avail_in;
			if (zr == Z_STREAM_END) {
				d->member_done = true;
			} else if (zr == Z_BUF_ERROR) {
				/* needs more input: loop reads it */
			} else if (zr != Z_OK) {
				return err_set(err, EINVAL, "bad gzip data: %s",
				               d->z.msg ? d->z.msg : "inflate failed");
			}
		}
		got = cap - d->z.avail_out;
	}
	if (got) {
		/* Uncompressed: both digests are the same; hash once. With a second
		 * thread, the consumer hashes what it takes (next_threaded): inflating is
		 * the slower half. */
		if (d->comp != COMPRESSION_NONE && !d->threaded)
			sha256_update(&d->out_hash, buf, got);
		d->out_total += got;
		if (d->o.max_output && d->out_total > d->o.max_output)
			return err_set(err, EFBIG,
			               "uncompressed size exceeds the limit of %" PRIu64 " bytes",
			               d->o.max_output);
	}
	return (ssize_t)got;
}

static void *producer_main(void *arg)
{
	struct decompress *d = arg;

	for (;;) {
		uint8_t *buf;
		ssize_t n;
		struct err e = {0};

		pthread_mutex_lock(&d->mu);
		while (!d->cancel && d->produced - d->released >= RING)
			pthread_cond_wait(&d->cv, &d->mu);
		if (d->cancel) {
			pthread_mutex_unlock(&d->mu);
			return NULL;
		}
		buf = d->ring[d->produced % RING];
		pthread_mutex_unlock(&d->mu);

		n = produce(d, buf, OUT_BUF, &e);

		pthread_mutex_lock(&d->mu);
		if (n < 0) {
			d->perr = e;
			d->failed = 1;
			d->done = true;
		} else if (n == 0) {
			d->done = true;
		} else {
			d->ring_len[d->produced % RING] = (size_t)n;
			d->produced++;
		}
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->mu);
		if (n <= 0)
			return NULL;
	}
}

/* ---- consumer ---- */

static ssize_t next_threaded(struct decompress *d, const uint8_t **data, struct err *err)
{
	ssize_t ret;

	pthread_mutex_lock(&d->mu);
	if (d->outstanding) {
		d->released++;
		d->outstanding = false;
		pthread_cond_broadcast(&d->cv);
	}
	while (d->consumed == d->produced && !d->done)
		pthread_cond_wait(&d->cv, &d->mu);
	if (d->consumed < d->produced) {
		*data = d->ring[d->consumed % RING];
		ret = (ssize_t)d->ring_len[d->consumed % RING];
		d->consumed++;
		d->outstanding = true;
		pthread_mutex_unlock(&d->mu);
		if (d->comp != COMPRESSION_NONE)
			sha256_update(&d->out_hash, *data, (size_t)ret);
		return ret;
	} else if (d->failed) {
		*err = d->perr;
		ret = -1;
	} else {
		ret = 0;
	}
	pthread_mutex_unlock(&d->mu);
	return ret;
}

static ssize_t next_inline(struct decompress *d, const uint8_t **data, struct err *err)
{
	ssize_t n;

	if (d->failed) {
		*err = d->perr;
		return -1;
	}
	if (d->done)
		return 0;
	n = produce(d, d->ring[0], OUT_BUF, &d->perr);
	if (n < 0) {
		d->failed = 1;
		*err = d->perr;
		return -1;
	}
	if (n == 0)
		d->done = true;
	*data = d->ring[0];
	return n;
}

static ssize_t decompress_next(void *ctx, const uint8_t **data, struct err *err)
{
	struct decompress *d = ctx;

	return d->threaded ? next_threaded(d, data, err) : next_inline(d, data, err);
}

struct tar_input decompress_tar_input(struct decompress *d)
{
	struct tar_input in = {decompress_next, NULL, d};

	return in;
}

enum compression decompress_compression(const struct decompress *d)
{
	return d->comp;
}

int decompress_open(struct decompress **out, const struct decompress_opts *o, struct err *err)
{
	struct decompress *d = xcalloc(1, sizeof(*d));

	d->o = *o;
	d->in = xmalloc(IN_BUF);
	for (int i = 0; i < (o->threaded ? RING : 1); i++)
		d->ring[i] = xmalloc(OUT_BUF);
	sha256_init(&d->in_hash);
	sha256_init(&d->out_hash);
	/* The first chunk decides the format. */
	if (read_input(d, err) < 0) {
		decompress_free(d);
		return -1;
	}
	d->comp = compression_detect(d->in, d->in_len);
	if (d->comp == COMPRESSION_ZSTD) {
		d->zs = ZSTD_createDCtx();
		/* Windows up to 2 GiB (zstd --long=31); the default stops at 128 MiB. */
		if (!d->zs ||
		    ZSTD_isError(ZSTD_DCtx_setParameter(d->zs, ZSTD_d_windowLogMax, 31))) {
			decompress_free(d);
			return err_set(err, ENOMEM, "cannot set up the zstd decompressor");
		}
	}
	if (d->comp == COMPRESSION_GZIP) {
		if (inflateInit2(&d->z, 16 + MAX_WBITS) != Z_OK) {
			decompress_free(d);
			return err_set(err, ENOMEM, "inflateInit2 failed");
		}
		d->z_init = true;
	}
	if (o->threaded) {
		pthread_mutex_init(&d->mu, NULL);
		pthread_cond_init(&d->cv, NULL);
		d->threaded = true;
		if (pthread_create(&d->thread, NULL, producer_main, d) != 0) {
			d->threaded = false;
			decompress_free(d);
			return err_set(err, EAGAIN, "cannot start the decompression thread");
		}
		d->thread_started = true;
	}
	*out = d;
	return 0;
}

int decompress_finish(struct decompress *d, struct decompress_result *res, struct err *err)
{
	const uint8_t *p;
	ssize_t n;
	char hex[SHA256_HEX_LEN + 1];

	while ((n = decompress_next(d, &p, err)) > 0)
		;
	if (n < 0)
		return -1;
	if (d->thread_started) {
		pthread_join(d->thread, NULL);
		d->thread_started = false;
	}
	memset(res, 0, sizeof(*res));
	res->compression = d->comp;
	res->compressed_size = d->read_total;
	res->uncompressed_size = d->out_total;
	sha256_final_hex(&d->in_hash, hex);
	snprintf(res->compressed_digest, sizeof(res->compressed_digest), "sha256:%s", hex);
	if (d->comp != COMPRESSION_NONE)
		sha256_final_hex(&d->out_hash, hex);
	snprintf(res->uncompressed_digest, sizeof(res->uncompressed_digest), "sha256:%s", hex);
	return 0;
}

void decompress_free(struct decompress *d)
{
	if (!d)
		return;
	if (d->thread_started) {
		pthread_mutex_lock(&d->mu);
		d->cancel = true;
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->mu);
		pthread_join(d->thread, NULL);
	}
	if (d->threaded) {
		pthread_mutex_destroy(&d->mu);
		pthread_cond_destroy(&d->cv);
	}
	if (d->z_init)
		inflateEnd(&d->z);
	ZSTD_freeDCtx(d->zs);
	for (int i = 0; i < RING; i++)
		free(d->ring[i]);
	free(d->in);
	free(d);
}
