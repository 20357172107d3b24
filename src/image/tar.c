/* Tar reader and writer: ustar blocks, GNU long names, PAX extended headers,
 * base-256 numbers. The reader is streaming and bounded (tar.h's TAR_MAX_*). */
#include "image/tar.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ustar field offsets and sizes */
#define H_NAME 0
#define H_MODE 100
#define H_UID 108
#define H_GID 116
#define H_SIZE 124
#define H_MTIME 136
#define H_CHKSUM 148
#define H_TYPE 156
#define H_LINK 157
#define H_MAGIC 257
#define H_VERSION 263
#define H_UNAME 265
#define H_GNAME 297
#define H_DEVMAJOR 329
#define H_DEVMINOR 337
#define H_PREFIX 345

#define MAX_EXT_HEADERS_PER_ENTRY 16

const char *tar_type_name(enum tar_type type)
{
	switch (type) {
	case TAR_REG:
		return "file";
	case TAR_HARDLINK:
		return "hardlink";
	case TAR_SYMLINK:
		return "symlink";
	case TAR_CHAR:
		return "char device";
	case TAR_BLOCK:
		return "block device";
	case TAR_DIR:
		return "directory";
	case TAR_FIFO:
		return "fifo";
	}
	return "?";
}

/* ---- inputs --------------------------------------------------------------------- */

#define FD_INPUT_BUF (256 * 1024)

struct fd_input {
	int fd;
	bool seekable;
	uint64_t file_size;
	uint8_t buf[FD_INPUT_BUF];
};

static ssize_t fd_input_next(void *ctx, const uint8_t **data, struct err *err)
{
	struct fd_input *in = ctx;

	for (;;) {
		ssize_t n = read(in->fd, in->buf, sizeof(in->buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys(err, "read");
		*data = in->buf;
		return n;
	}
}

static int fd_input_skip(void *ctx, uint64_t n, struct err *err)
{
	struct fd_input *in = ctx;
	off_t pos = lseek(in->fd, (off_t)n, SEEK_CUR);

	if (pos < 0)
		return err_sys(err, "seek");
	if ((uint64_t)pos > in->file_size)
		return err_set(err, EIO,
		               "truncated archive: entry data ends at offset %jd, file "
		               "has %" PRIu64 " bytes",
		               (intmax_t)pos, in->file_size);
	return 0;
}

struct mem_input {
	const uint8_t *data;
	size_t len;
	bool done;
};

static ssize_t mem_input_next(void *ctx, const uint8_t **data, struct err *err)
{
	struct mem_input *in = ctx;

	if (in->done)
		return 0;
	in->done = true;
	*data = in->data;
	return (ssize_t)in->len;
}

/* ---- reader --------------------------------------------------------------------- */

struct tar_reader {
	struct tar_input in;
	void *owned_input;

	const uint8_t *chunk; /* unconsumed part of the current input chunk */
	size_t avail;
	bool input_eof;
	uint64_t offset;

	uint64_t data_left; /* content of the current entry not yet read */
	uint64_t skip_left; /* content the caller never sees (dumpdir) + padding */
	uint64_t data_offset;
	bool end, failed, draining;
	uint64_t index;

	struct tar_entry e;
	struct strbuf path, link;
	/* extension headers of the entry being assembled */
	struct strbuf ext;
	char *long_path, *long_link; /* GNU 'L'/'K' */
	char *pax_path, *pax_link;
	bool pax_has_size, pax_has_uid, pax_has_gid, pax_has_mtime, pax_has_devmajor,
	    pax_has_devminor;
	uint64_t pax_size, pax_uid, pax_gid, pax_devmajor, pax_devminor;
	int64_t pax_mtime;
	uint32_t pax_mtime_nsec;
	struct tar_xattr *xattrs;
	size_t n_xattrs, cap_xattrs;
	uint8_t hdr[TAR_BLOCK_SIZE];
};

struct tar_reader *tar_reader_new(const struct tar_input *in)
{
	struct tar_reader *r = xcalloc(1, sizeof(*r));

	r->in = *in;
	return r;
}

struct tar_reader *tar_reader_new_fd(int fd)
{
	struct fd_input *in = xmalloc(sizeof(*in));
	struct tar_input ti = {fd_input_next, NULL, in};
	struct stat st;
	struct tar_reader *r;

	in->fd = fd;
	in->seekable = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_CUR) >= 0;
	in->file_size = in->seekable ? (uint64_t)st.st_size : 0;
	if (in->seekable)
		ti.skip = fd_input_skip;
	r = tar_reader_new(&ti);
	r->owned_input = in;
	return r;
}

struct tar_reader *tar_reader_new_mem(const void *data, size_t len)
{
	struct mem_input *in = xcalloc(1, sizeof(*in));
	struct tar_input ti = {mem_input_next, NULL, in};
	struct tar_reader *r;

	in->data = data;
	in->len = len;
	r = tar_reader_new(&ti);
	r->owned_input = in;
	return r;
}

static void clear_ext_state(struct tar_reader *r)
{
	free(r->long_path);
	free(r->long_link);
	free(r->pax_path);
	free(r->pax_link);
	r->long_path = r->long_link = r->pax_path = r->pax_link = NULL;
	r->pax_has_size = r->pax_has_uid = r->pax_has_gid = r->pax_has_mtime = false;
	r->pax_has_devmajor = r->pax_has_devminor = false;
	for (size_t i = 0; i < r->n_xattrs; i++) {
		free(r->xattrs[i].name);
		free(r->xattrs[i].value);
	}
	r->n_xattrs = 0;
}

void tar_reader_free(struct tar_reader *r)
{
	if (!r)
		return;
	clear_ext_state(r);
	free(r->xattrs);
	sb_release(&r->path);
	sb_release(&r->link);
	sb_release(&r->ext);
	free(r->owned_input);
	free(r);
}

uint64_t tar_reader_offset(const struct tar_reader *r)
{
	return r->offset;
}

uint64_t tar_reader_data_offset(const struct tar_reader *r)
{
	return r->data_offset;
}

/* Make at least one byte available. 1 = ok, 0 = end of input, <0 = error. */
static int fill(struct tar_reader *r, struct err *err)
{
	while (r->avail == 0) {
		ssize_t n;

		if (r->input_eof)
			return 0;
		n = r->in.next(r->in.ctx, &r->chunk, err);
		if (n < 0)
			return -1;
		if (n == 0) {
			r->input_eof = true;
			return 0;
		}
		r->avail = (size_t)n;
	}
	return 1;
}

static int fail(struct tar_reader *r)
{
	r->failed = true;
	return -1;
}

static int truncated(struct tar_reader *r, struct err *err)
{
	if (r->e.path)
		err_set(err, EIO,
		        "truncated archive: unexpected end of input at offset %" PRIu64
		        " in entry '%s'",
		        r->offset, r->e.path);
	else
		err_set(err, EIO, "truncated archive: unexpected end of input at offset %" PRIu64,
		        r->offset);
	return fail(r);
}

/* Copy n bytes. 1 = ok, 0 = end of input before the first byte, <0 = error. */
static int read_exact(struct tar_reader *r, void *dst, size_t n, struct err *err)
{
	uint8_t *p = dst;
	size_t got = 0;

	while (got < n) {
		int f = fill(r, err);
		size_t k;

		if (f < 0)
			return fail(r);
		if (f == 0) {
			if (got == 0)
				return 0;
			return truncated(r, err);
		}
		k = n - got < r->avail ? n - got : r->avail;
		memcpy(p + got, r->chunk, k);
		r->chunk += k;
		r->avail -= k;
		r->offset += k;
		got += k;
	}
	return 1;
}

static int skip_bytes(struct tar_reader *r, uint64_t n, struct err *err)
{
	while (n > 0) {
		size_t k;

		if (r->avail == 0 && r->in.skip && !r->input_eof) {
			if (r->in.skip(r->in.ctx, n, err) < 0)
				return fail(r);
			r->offset += n;
			return 0;
		}
		int f = fill(r, err);

		if (f < 0)
			return fail(r);
		if (f == 0)
			return truncated(r, err);
		k = n < r->avail ? (size_t)n : r->avail;
		r->chunk += k;
		r->avail -= k;
		r->offset += k;
		n -= k;
	}
	return 0;
}

ssize_t tar_reader_data(struct tar_reader *r, const uint8_t **data, size_t max, struct err *err)
{
	size_t k;
	int f;

	if (r->failed)
		return err_set(err, EINVAL, "tar reader used after an error");
	if (r->data_left == 0 || max == 0)
		return 0;
	f = fill(r, err);
	if (f < 0)
		return fail(r);
	if (f == 0)
		return truncated(r, err);
	k = r->avail < max ? r->avail : max;
	if (k > r->data_left)
		k = (size_t)r->data_left;
	*data = r->chunk;
	r->chunk += k;
	r->avail -= k;
	r->offset += k;
	r->data_left -= k;
	return (ssize_t)k;
}

ssize_t tar_reader_read(struct tar_reader *r, void *buf, size_t n, struct err *err)
{
	size_t got = 0;

	while (got < n) {
		const uint8_t *p = NULL;
		ssize_t k = tar_reader_data(r, &p, n - got, err);

		if (k < 0)
			return -1;
		if (k == 0)
			break;
		memcpy((uint8_t *)buf + got, p, (size_t)k);
		got += (size_t)k;
	}
	return (ssize_t)got;
}

int tar_reader_drain(struct tar_reader *r, struct err *err)
{
	if (r->failed)
		return err_set(err, EINVAL, "tar reader used after an error");
	r->offset += r->avail;
	r->avail = 0;
	while (!r->input_eof) {
		int f = fill(r, err);

		if (f < 0)
			return fail(r);
		r->offset += r->avail;
		r->avail = 0;
	}
	return 0;
}

/* ---- header fields ---- */

static bool block_is_zero(const uint8_t *b)
{
	for (size_t i = 0; i < TAR_BLOCK_SIZE; i++)
		if (b[i])
			return false;
	return true;
}

/* Octal (NUL/space padded) or base-256 (high bit of the first byte set). */
static int parse_number(const uint8_t *f, size_t len, bool allow_negative, int64_t *out)
{
	if (f[0] & 0x80) {
		bool neg = f[0] & 0x40;
		uint64_t v = 0;

		for (size_t i = 0; i < len; i++) {
			uint8_t c = neg ? (uint8_t)~f[i] : f[i];

			if (i == 0)
				c &= 0x7f;
			if (v >> 55)
				return -1;
			v = v << 8 | c;
		}
		if (v > INT64_MAX)
			return -1;
		if (neg) {
			if (!allow_negative)
				return -1;
			*out = -(int64_t)v - 1;
		} else {
			*out = (int64_t)v;
		}
		return 0;
	}
	size_t i = 0;
	uint64_t v = 0;

	while (i < len && (f[i] == ' ' || f[i] == '\0'))
		i++;
	for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return -1;
		v = v << 3 | (uint64_t)(f[i] - '0');
	}
	for (; i < len; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return -1;
	if (v > INT64_MAX)
		return -1;
	*out = (int64_t)v;
	return 0;
}

static bool checksum_ok(const uint8_t *b)
{
	int64_t want;
	uint64_t usum = 0;
	int64_t ssum = 0;

	if (parse_number(b + H_CHKSUM, 8, false, &want) < 0)
		return false;
	for (size_t i = 0; i < TAR_BLOCK_SIZE; i++) {
		uint8_t c = (i >= H_CHKSUM && i < H_CHKSUM + 8) ? ' ' : b[i];

		usum += c;
		ssum += (signed char)c;
	}
	return (int64_t)usum == want || ssum == want;
}

static char *field_str(const uint8_t *f, size_t len)
{
	return xstrndup((const char *)f, strnlen((const char *)f, len));
}

/* ---- extension headers ---- */

static int read_ext_content(struct tar_reader *r, int64_t size, const char *what, size_t max,
                            struct err *err)
{
	uint64_t padded;
	int ret;

	if (size < 0 || (uint64_t)size > max) {
		err_set(err, EINVAL,
		        "%s header at offset %" PRIu64 " too large (%jd bytes, limit %zu)", what,
		        r->offset - TAR_BLOCK_SIZE, (intmax_t)size, max);
		return fail(r);
	}
	sb_reset(&r->ext);
	sb_grow(&r->ext, (size_t)size + 1);
	ret = read_exact(r, r->ext.buf, (size_t)size, err);
	if (ret == 0 && size > 0)
		return truncated(r, err);
	if (ret < 0)
		return -1;
	r->ext.len = (size_t)size;
	r->ext.buf[size] = '\0';
	padded = ((uint64_t)size + TAR_BLOCK_SIZE - 1) / TAR_BLOCK_SIZE * TAR_BLOCK_SIZE;
	return skip_bytes(r, padded - (uint64_t)size, err);
}

static int parse_decimal_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* "1700000000.123456789", possibly negative. */
static int parse_pax_time(const char *s, size_t n, int64_t *sec, uint32_t *nsec)
{
	bool neg = n > 0 && s[0] == '-';
	const char *dot;
	size_t ilen;
	uint64_t whole;
	uint32_t frac = 0;

	if (neg) {
		s++;
		n--;
	}
	dot = memchr(s, '.', n);
	ilen = dot ? (size_t)(dot - s) : n;
	if (parse_decimal_u64(s, ilen, &whole) < 0 || whole > INT64_MAX / 2)
		return -1;
	if (dot) {
		size_t flen = n - ilen - 1;
		uint32_t scale = 100000000;

		for (size_t i = 0; i < flen; i++) {
			char c = dot[1 + i];

			if (c < '0' || c > '9')
				return -1;
			if (i < 9) {
				frac += (uint32_t)(c - '0') * scale;
				scale /= 10;
			}
		}
	}
	if (neg) {
		*sec = -(int64_t)whole;
		if (frac) {
			*sec -= 1;
			frac = 1000000000 - frac;
		}
	} else {
		*sec = (int64_t)whole;
	}
	*nsec = frac;
	return 0;
}

static int pax_error(struct tar_reader *r, struct err *err, const char *what)
{
	err_set(err, EINVAL, "malformed PAX header before offset %" PRIu64 ": %s", r->offset, what);
	return fail(r);
}

static int add_xattr(struct tar_reader *r, const char *name, size_t nlen, const char *value,
                     size_t vlen, struct err *err)
{
	if (r->n_xattrs >= TAR_MAX_XATTRS)
		return pax_error(r, err, "too many xattrs");
	if (nlen == 0 || nlen > 255 || memchr(name, '\0', nlen))
		return pax_error(r, err, "bad xattr name");
	if (vlen > TAR_MAX_XATTR_VALUE)
		return pax_error(r, err, "xattr value too large");
	/* A later record for the same name replaces the earlier one. */
	for (size_t i = 0; i < r->n_xattrs; i++) {
		if (strlen(r->xattrs[i].name) == nlen &&
		    memcmp(r->xattrs[i].name, name, nlen) == 0) {
			free(r->xattrs[i].value);
			r->xattrs[i].value = xmalloc(vlen + 1);
			memcpy(r->xattrs[i].value, value, vlen);
			r->xattrs[i].len = vlen;
			return 0;
		}
	}
	if (r->n_xattrs == r->cap_xattrs) {
		r->cap_xattrs = r->cap_xattrs ? r->cap_xattrs * 2 : 8;
		r->xattrs = xrealloc(r->xattrs, r->cap_xattrs * sizeof(*r->xattrs));
	}
	r->xattrs[r->n_xattrs].name = xstrndup(name, nlen);
	r->xattrs[r->n_xattrs].value = xmalloc(vlen + 1);
	memcpy(r->xattrs[r->n_xattrs].value, value, vlen);
	r->xattrs[r->n_xattrs].len = vlen;
	r->n_xattrs++;
	return 0;
}

static int set_pax_string(struct tar_reader *r, char **slot, const char *v, size_t vlen,
                          struct err *err)
{
	free(*slot);
	*slot = NULL;
	if (vlen == 0) /* an empty value removes the override */
		return 0;
	if (vlen > TAR_MAX_PATH)
		return pax_error(r, err, "path longer than the limit");
	if (memchr(v, '\0', vlen))
		return pax_error(r, err, "path contains a NUL byte");
	*slot = xstrndup(v, vlen);
	return 0;
}

/* Records are "LEN KEY=VALUE\n", LEN counting the whole record. global: the
 * values of a 'g' header are validated and otherwise ignored. */
static int parse_pax(struct tar_reader *r, bool global, struct err *err)
{
	const char *p = r->ext.buf, *end = r->ext.buf + r->ext.len;

	while (p < end) {
		const char *sp, *eq, *key, *val, *rec_end;
		uint64_t len;
		size_t klen, vlen;

		if (*p == '\0') /* some writers pad with NULs */
			break;
		sp = memchr(p, ' ', (size_t)(end - p));
		if (!sp || parse_decimal_u64(p, (size_t)(sp - p), &len) < 0 ||
		    len < (uint64_t)(sp - p) + 3 || len > (uint64_t)(end - p))
			return pax_error(r, err, "bad record length");
		rec_end = p + len;
		if (rec_end[-1] != '\n')
			return pax_error(r, err, "record does not end with a newline");
		key = sp + 1;
		eq = memchr(key, '=', (size_t)(rec_end - key));
		if (!eq || eq == key)
			return pax_error(r, err, "record without KEY=");
		klen = (size_t)(eq - key);
		val = eq + 1;
		vlen = (size_t)(rec_end - 1 - val);
		p = rec_end;
		if (global)
			continue;

#define KEY_IS(s) (klen == strlen(s) && memcmp(key, s, klen) == 0)
		if (KEY_IS("path")) {
			if (set_pax_string(r, &r->pax_path, val, vlen, err) < 0)
				return -1;
		} else if (KEY_IS("linkpath")) {
			if (set_pax_string(r, &r->pax_link, val, vlen, err) < 0)
				return -1;
		} else if (KEY_IS("size")) {
			if (parse_decimal_u64(val, vlen, &r->pax_size) < 0 ||
			    r->pax_size > INT64_MAX)
				return pax_error(r, err, "bad size");
			r->pax_has_size = true;
		} else if (KEY_IS("uid")) {
			if (parse_decimal_u64(val, vlen, &r->pax_uid) < 0 ||
			    r->pax_uid > UINT32_MAX)
				return pax_error(r, err, "bad uid");
			r->pax_has_uid = true;
		} else if (KEY_IS("gid")) {
			if (parse_decimal_u64(val, vlen, &r->pax_gid) < 0 ||
			    r->pax_gid > UINT32_MAX)
				return pax_error(r, err, "bad gid");
			r->pax_has_gid = true;
		} else if (KEY_IS("mtime")) {
			if (parse_pax_time(val, vlen, &r->pax_mtime, &r->pax_mtime_nsec) < 0)
				return pax_error(r, err, "bad mtime");
			r->pax_has_mtime = true;
		} else if (KEY_IS("SCHILY.devmajor")) {
			if (parse_decimal_u64(val, vlen, &r->pax_devmajor) < 0 ||
			    r->pax_devmajor > UINT32_MAX)
				return pax_error(r, err, "bad devmajor");
			r->pax_has_devmajor = true;
		} else if (KEY_IS("SCHILY.devminor")) {
			if (parse_decimal_u64(val, vlen, &r->pax_devminor) < 0 ||
			    r->pax_devminor > UINT32_MAX)
				return pax_error(r, err, "bad devminor");
			r->pax_has_devminor = true;
		} else if (klen > 13 && memcmp(key, "SCHILY.xattr.", 13) == 0) {
			if (add_xattr(r, key + 13, klen - 13, val, vlen, err) < 0)
				return -1;
		} else if (klen >= 11 && memcmp(key, "GNU.sparse.", 11) == 0) {
			err_set(err, ENOTSUP,
			        "GNU sparse files are not supported (PAX key %.*s before "
			        "offset %" PRIu64 ")",
			        (int)klen, key, r->offset);
			return fail(r);
		}
		/* atime, ctime, uname, gname, comment, charset, ...: not needed. */
#undef KEY_IS
	}
	return 0;
}

static int read_long_name(struct tar_reader *r, int64_t size, char **slot, const char *what,
                          struct err *err)
{
	if (read_ext_content(r, size, what, TAR_MAX_PATH + 1, err) < 0)
		return -1;
	free(*slot);
	/* GNU writes the name NUL-terminated; stop at the first NUL. */
	*slot = xstrndup(r->ext.buf, strnlen(r->ext.buf, r->ext.len));
	if (!**slot) {
		err_set(err, EINVAL, "empty %s at offset %" PRIu64, what, r->offset);
		return fail(r);
	}
	return 0;
}

static int header_error(struct tar_reader *r, uint64_t at, struct err *err, const char *what)
{
	err_set(err, EINVAL, "bad tar header at offset %" PRIu64 ": %s", at, what);
	return fail(r);
}

int tar_reader_next(struct tar_reader *r, const struct tar_entry **entry, struct err *err)
{
	int n_ext = 0;

	if (r->failed)
		return err_set(err, EINVAL, "tar reader used after an error");
	if (r->end)
		return 0;
	if (skip_bytes(r, r->data_left + r->skip_left, err) < 0)
		return -1;
	r->data_left = r->skip_left = 0;
	clear_ext_state(r);
	r->e.path = NULL;

	for (;;) {
		const uint8_t *h = r->hdr;
		uint64_t at = r->offset;
		int64_t size, mode, uid, gid, mtime, major = 0, minor = 0;
		bool posix, has_data;
		uint8_t type;
		int ret = read_exact(r, r->hdr, TAR_BLOCK_SIZE, err);

		if (ret < 0)
			return -1;
		if (ret == 0) {
			/* End of input at a block boundary without the end marker. */
			if (n_ext)
				return truncated(r, err);
			r->end = true;
			return 0;
		}
		if (block_is_zero(h)) {
			if (n_ext)
				return header_error(
				    r, at, err, "end-of-archive marker after an extended header");
			r->end = true;
			return 0;
		}
		if (!checksum_ok(h))
			return header_error(r, at, err, "checksum mismatch (not a tar archive?)");
		posix = memcmp(h + H_MAGIC, "ustar\0", 6) == 0;
		type = h[H_TYPE];
		if (parse_number(h + H_SIZE, 12, false, &size) < 0)
			return header_error(r, at, err, "bad size field");

		if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
			if (++n_ext > MAX_EXT_HEADERS_PER_ENTRY)
				return header_error(r, at, err, "too many extended headers");
			if (type == 'x' || type == 'g') {
				if (read_ext_content(r, size, "PAX", TAR_MAX_EXT_HEADER, err) < 0 ||
				    parse_pax(r, type == 'g', err) < 0)
					return -1;
			} else if (type == 'L') {
				if (read_long_name(r, size, &r->long_path, "GNU long name", err) <
				    0)
					return -1;
			} else {
				if (read_long_name(r, size, &r->long_link, "GNU long link name",
				                   err) < 0)
					return -1;
			}
			continue;
		}

		if (parse_number(h + H_MODE, 8, false, &mode) < 0 ||
		    parse_number(h + H_UID, 8, false, &uid) < 0 ||
		    parse_number(h + H_GID, 8, false, &gid) < 0 ||
		    parse_number(h + H_MTIME, 12, true, &mtime) < 0)
			return header_error(r, at, err, "bad numeric field");
		if ((type == '3' || type == '4') &&
		    (parse_number(h + H_DEVMAJOR, 8, false, &major) < 0 ||
		     parse_number(h + H_DEVMINOR, 8, false, &minor) < 0))
			return header_error(r, at, err, "bad device number");

		/* Path: PAX > GNU long name > ustar prefix + name. */
		sb_reset(&r->path);
		if (r->pax_path) {
			sb_adds(&r->path, r->pax_path);
		} else if (r->long_path) {
			sb_adds(&r->path, r->long_path);
		} else {
			_cleanup_free_ char *name = field_str(h + H_NAME, 100);

			if (posix && h[H_PREFIX]) {
				_cleanup_free_ char *prefix = field_str(h + H_PREFIX, 155);

				sb_adds(&r->path, prefix);
				sb_addc(&r->path, '/');
			}
			sb_adds(&r->path, name);
		}
		if (r->path.len == 0)
			return header_error(r, at, err, "empty name");
		if (r->path.len > TAR_MAX_PATH)
			return header_error(r, at, err, "name longer than 4096 bytes");
		sb_reset(&r->link);
		if (r->pax_link)
			sb_adds(&r->link, r->pax_link);
		else if (r->long_link)
			sb_adds(&r->link, r->long_link);
		else {
			_cleanup_free_ char *link = field_str(h + H_LINK, 100);

			sb_adds(&r->link, link);
		}

		memset(&r->e, 0, sizeof(r->e));
		has_data = false;
		switch (type) {
		case '0':
		case '7':
			r->e.type = TAR_REG;
			has_data = true;
			break;
		case '\0':
			/* Pre-POSIX archives mark directories with a trailing slash only. */
			r->e.type = str_ends_with(r->path.buf, "/") ? TAR_DIR : TAR_REG;
			has_data = r->e.type == TAR_REG;
			break;
		case '1':
			r->e.type = TAR_HARDLINK;
			break;
		case '2':
			r->e.type = TAR_SYMLINK;
			break;
		case '3':
			r->e.type = TAR_CHAR;
			break;
		case '4':
			r->e.type = TAR_BLOCK;
			break;
		case '5':
			r->e.type = TAR_DIR;
			break;
		case 'D': /* GNU dumpdir: a directory followed by a listing we ignore */
			r->e.type = TAR_DIR;
			r->skip_left = (uint64_t)size;
			break;
		case '6':
			r->e.type = TAR_FIFO;
			break;
		case 'S':
			return header_error(r, at, err, "GNU sparse files are not supported");
		case 'M':
		case 'V':
		case 'N':
			return header_error(
			    r, at, err,
			    "multi-volume/volume-label/old GNU entries are not supported");
		default: {
			char what[64];

			if (isprint(type))
				snprintf(what, sizeof(what), "unknown entry type '%c'", type);
			else
				snprintf(what, sizeof(what), "unknown entry type 0x%02x", type);
			return header_error(r, at, err, what);
		}
		}
		if ((r->e.type == TAR_HARDLINK || r->e.type == TAR_SYMLINK)) {
			if (r->link.len == 0)
				return header_error(r, at, err, "link without a target");
			if (r->link.len > TAR_MAX_PATH)
				return header_error(r, at, err,
				                    "link target longer than 4096 bytes");
		}

		r->e.path = r->path.buf;
		r->e.linkpath =
		    (r->e.type == TAR_HARDLINK || r->e.type == TAR_SYMLINK) ? r->link.buf : NULL;
		r->e.mode = (uint32_t)(mode & 07777);
		r->e.uid = r->pax_has_uid ? r->pax_uid : (uint64_t)uid;
		r->e.gid = r->pax_has_gid ? r->pax_gid : (uint64_t)gid;
		if (r->e.uid > UINT32_MAX || r->e.gid > UINT32_MAX)
			return header_error(r, at, err, "uid/gid out of range");
		if (r->pax_has_mtime) {
			r->e.mtime = r->pax_mtime;
			r->e.mtime_nsec = r->pax_mtime_nsec;
		} else {
			r->e.mtime = mtime;
		}
		if (r->pax_has_size)
			size = (int64_t)r->pax_size;
		if (r->pax_has_devmajor)
			major = (int64_t)r->pax_devmajor;
		if (r->pax_has_devminor)
			minor = (int64_t)r->pax_devminor;
		if (major > UINT32_MAX || minor > UINT32_MAX)
			return header_error(r, at, err, "device number out of range");
		r->e.devmajor = (uint32_t)major;
		r->e.devminor = (uint32_t)minor;
		r->e.xattrs = r->n_xattrs ? r->xattrs : NULL;
		r->e.n_xattrs = r->n_xattrs;
		if (has_data) {
			r->e.size = (uint64_t)size;
			r->data_left = (uint64_t)size;
		}
		/* Content (and what the caller never sees) is padded to whole blocks. */
		{
			uint64_t content = has_data ? (uint64_t)size : r->skip_left;

			r->skip_left +=
			    (TAR_BLOCK_SIZE - content % TAR_BLOCK_SIZE) % TAR_BLOCK_SIZE;
		}
		r->data_offset = r->offset;
		r->index++;
		*entry = &r->e;
		return 1;
	}
}

/* ---- writer --------------------------------------------------------------------- */

#define WRITER_BUF (256 * 1024)

struct fd_output {
	int fd;
};

static int fd_output_write(void *ctx, const void *data, size_t n, struct err *err)
{
	struct fd_output *o = ctx;

	if (write_all(o->fd, data, n) < 0)
		return err_sys(err, "write");
	return 0;
}

struct tar_writer {
	struct tar_output out;
	struct fd_output fdo;
	uint8_t *buf;
	size_t len;
	uint64_t offset;
	uint64_t data_left;
	const char *data_path;
	char *cur_path;
	bool failed;
};

struct tar_writer *tar_writer_new(const struct tar_output *out)
{
	struct tar_writer *w = xcalloc(1, sizeof(*w));

	w->out = *out;
	w->buf = xmalloc(WRITER_BUF);
	return w;
}

struct tar_writer *tar_writer_new_fd(int fd)
{
	struct tar_output o = {fd_output_write, NULL};
	struct tar_writer *w = tar_writer_new(&o);

	w->fdo.fd = fd;
	w->out.ctx = &w->fdo;
	return w;
}

void tar_writer_free(struct tar_writer *w)
{
	if (!w)
		return;
	free(w->buf);
	free(w->cur_path);
	free(w);
}

uint64_t tar_writer_offset(const struct tar_writer *w)
{
	return w->offset;
}

static int flush(struct tar_writer *w, struct err *err)
{
	if (w->len == 0)
		return 0;
	if (w->out.write(w->out.ctx, w->buf, w->len, err) < 0) {
		w->failed = true;
		return -1;
	}
	w->len = 0;
	return 0;
}

static int emit(struct tar_writer *w, const void *data, size_t n, struct err *err)
{
	const uint8_t *p = data;

	if (w->failed)
		return err_set(err, EIO, "tar writer used after an error");
	w->offset += n;
	if (n >= WRITER_BUF) {
		if (flush(w, err) < 0)
			return -1;
		if (w->out.write(w->out.ctx, p, n, err) < 0) {
			w->failed = true;
			return -1;
		}
		return 0;
	}
	while (n > 0) {
		size_t k = WRITER_BUF - w->len < n ? WRITER_BUF - w->len : n;

		memcpy(w->buf + w->len, p, k);
		w->len += k;
		p += k;
		n -= k;
		if (w->len == WRITER_BUF && flush(w, err) < 0)
			return -1;
	}
	return 0;
}

static int emit_zeros(struct tar_writer *w, size_t n, struct err *err)
{
	static const uint8_t zeros[TAR_BLOCK_SIZE];

	while (n > 0) {
		size_t k = n < sizeof(zeros) ? n : sizeof(zeros);

		if (emit(w, zeros, k, err) < 0)
			return -1;
		n -= k;
	}
	return 0;
}

static bool fits_octal(int64_t v, size_t len)
{
	return v >= 0 && (uint64_t)v < (1ULL << ((len - 1) * 3));
}

/* Octal if it fits in len-1 digits, else base-256 (GNU). false: neither fits. */
static bool put_number(uint8_t *f, size_t len, int64_t v)
{
	size_t bits = (len - 1) * 8;
	int64_t x = v;

	if (fits_octal(v, len)) {
		snprintf((char *)f, len, "%0*" PRIo64, (int)(len - 1), (uint64_t)v);
		return true;
	}
	if (bits < 64 && (v >= (int64_t)(1ULL << bits) || v < -(int64_t)(1ULL << bits)))
		return false;
	for (size_t i = len; i-- > 1;) {
		f[i] = (uint8_t)((uint64_t)x & 0xff);
		x = x < 0 ? ~(~x >> 8) : x >> 8;
	}
	f[0] = v < 0 ? 0xff : 0x80;
	return true;
}

static void pax_record(struct strbuf *sb, const char *key, const void *val, size_t vlen)
{
	/* The length prefix counts itself: find the fixed point. */
	size_t base = strlen(key) + vlen + 3; /* ' ' '=' '\n' */
	size_t len = base + 1;
	char num[24];

	for (;;) {
		int digits = snprintf(num, sizeof(num), "%zu", len);

		if (base + (size_t)digits == len)
			break;
		len = base + (size_t)digits;
	}
	sb_addf(sb, "%zu %s=", len, key);
	sb_add(sb, val, vlen);
	sb_addc(sb, '\n');
}

static void fill_checksum(uint8_t *h)
{
	unsigned sum = 0;

	memset(h + H_CHKSUM, ' ', 8);
	for (size_t i = 0; i < TAR_BLOCK_SIZE; i++)
		sum += h[i];
	snprintf((char *)h + H_CHKSUM, 8, "%06o", sum);
	h[H_CHKSUM + 7] = ' ';
}

static void ustar_magic(uint8_t *h)
{
	memcpy(h + H_MAGIC, "ustar\0", 6);
	memcpy(h + H_VERSION, "00", 2);
}

/* Split path into ustar prefix (<=155) + name (<=100) at a '/'. */
static bool split_ustar_name(const char *path, size_t *split)
{
	size_t len = strlen(path);

	if (len <= 100) {
		*split = 0;
		return true;
	}
	for (size_t i = len - 1; i > 0; i--) {
		if (path[i] != '/')
			continue;
		if (i <= 155 && len - i - 1 <= 100 && len - i - 1 > 0) {
			*split = i;
			return true;
		}
		if (len - i - 1 > 100)
			return false;
	}
	return false;
}

static char type_char(enum tar_type t)
{
	static const char chars[] = {'0', '1', '2', '3', '4', '5', '6'};

	return chars[t];
}

int tar_writer_header(struct tar_writer *w, const struct tar_entry *e, struct err *err)
{
	uint8_t h[TAR_BLOCK_SIZE];
	_cleanup_sb_ struct strbuf pax = STRBUF_INIT;
	_cleanup_free_ char *path = NULL;
	size_t split = 0;
	uint64_t size = e->type == TAR_REG ? e->size : 0;
	bool is_link = e->type == TAR_HARDLINK || e->type == TAR_SYMLINK;

	if (w->data_left)
		return err_set(err, EINVAL, "tar writer: %" PRIu64 " bytes of '%s' still missing",
		               w->data_left, w->cur_path);
	if (!e->path || !*e->path)
		return err_set(err, EINVAL, "tar writer: entry without a name");
	if (is_link && (!e->linkpath || !*e->linkpath))
		return err_set(err, EINVAL, "tar writer: %s '%s' without a target",
		               tar_type_name(e->type), e->path);
	if (e->type == TAR_DIR && !str_ends_with(e->path, "/"))
		path = xasprintf("%s/", e->path);
	else
		path = xstrdup(e->path);

	memset(h, 0, sizeof(h));
	if (!split_ustar_name(path, &split))
		pax_record(&pax, "path", path, strlen(path));
	if (is_link && strlen(e->linkpath) > 100)
		pax_record(&pax, "linkpath", e->linkpath, strlen(e->linkpath));
	if (!fits_octal((int64_t)size, 12) || size > INT64_MAX) {
		char v[24];

		snprintf(v, sizeof(v), "%" PRIu64, size);
		pax_record(&pax, "size", v, strlen(v));
	}
	if (!fits_octal((int64_t)e->uid, 8)) {
		char v[24];

		snprintf(v, sizeof(v), "%" PRIu64, e->uid);
		pax_record(&pax, "uid", v, strlen(v));
	}
	if (!fits_octal((int64_t)e->gid, 8)) {
		char v[24];

		snprintf(v, sizeof(v), "%" PRIu64, e->gid);
		pax_record(&pax, "gid", v, strlen(v));
	}
	if (e->mtime_nsec || !fits_octal(e->mtime, 12)) {
		char v[48];
		int64_t sec = e->mtime;
		uint32_t ns = e->mtime_nsec;

		if (sec < 0 && ns) { /* -1.25 is sec=-2, nsec=750000000 */
			sec += 1;
			ns = 1000000000 - ns;
			snprintf(v, sizeof(v), "-%" PRId64 ".%09u", -sec, ns);
		} else if (ns) {
			snprintf(v, sizeof(v), "%" PRId64 ".%09u", sec, ns);
		} else {
			snprintf(v, sizeof(v), "%" PRId64, sec);
		}
		if (ns) /* trim trailing zeros of the fraction */
			for (size_t l = strlen(v); v[l - 1] == '0'; l--)
				v[l - 1] = '\0';
		pax_record(&pax, "mtime", v, strlen(v));
	}
	for (size_t i = 0; i < e->n_xattrs; i++) {
		_cleanup_free_ char *key = xasprintf("SCHILY.xattr.%s", e->xattrs[i].name);

		pax_record(&pax, key, e->xattrs[i].value, e->xattrs[i].len);
	}

	if (pax.len) {
		uint8_t ph[TAR_BLOCK_SIZE];
		const char *base = path_basename(str_ends_with(path, "/") ? "dir" : path);
		char pname[101];

		memset(ph, 0, sizeof(ph));
		snprintf(pname, sizeof(pname), "PaxHeaders/%.88s", base);
		memcpy(ph + H_NAME, pname, strlen(pname));
		put_number(ph + H_MODE, 8, 0644);
		put_number(ph + H_UID, 8, 0);
		put_number(ph + H_GID, 8, 0);
		put_number(ph + H_SIZE, 12, (int64_t)pax.len);
		put_number(ph + H_MTIME, 12, fits_octal(e->mtime, 12) ? e->mtime : 0);
		ph[H_TYPE] = 'x';
		ustar_magic(ph);
		fill_checksum(ph);
		if (emit(w, ph, sizeof(ph), err) < 0 || emit(w, pax.buf, pax.len, err) < 0 ||
		    emit_zeros(w, (TAR_BLOCK_SIZE - pax.len % TAR_BLOCK_SIZE) % TAR_BLOCK_SIZE,
		               err) < 0)
			return -1;
	}

	/* The ustar header carries what fits; PAX overrides the rest. */
	if (split) {
		memcpy(h + H_PREFIX, path, split);
		memcpy(h + H_NAME, path + split + 1, strlen(path) - split - 1);
	} else {
		memcpy(h + H_NAME, path, strlen(path) < 100 ? strlen(path) : 100);
	}
	put_number(h + H_MODE, 8, e->mode & 07777);
	if (!put_number(h + H_UID, 8, (int64_t)e->uid))
		put_number(h + H_UID, 8, 0);
	if (!put_number(h + H_GID, 8, (int64_t)e->gid))
		put_number(h + H_GID, 8, 0);
	put_number(h + H_SIZE, 12, (int64_t)size);
	if (!put_number(h + H_MTIME, 12, e->mtime))
		put_number(h + H_MTIME, 12, 0);
	h[H_TYPE] = (uint8_t)type_char(e->type);
	if (is_link)
		memcpy(h + H_LINK, e->linkpath,
		       strlen(e->linkpath) < 100 ? strlen(e->linkpath) : 100);
	ustar_magic(h);
	if (e->type == TAR_CHAR || e->type == TAR_BLOCK) {
		put_number(h + H_DEVMAJOR, 8, e->devmajor);
		put_number(h + H_DEVMINOR, 8, e->devminor);
	}
	fill_checksum(h);
	if (emit(w, h, sizeof(h), err) < 0)
		return -1;
	w->data_left = size;
	free(w->cur_path);
	w->cur_path = steal_ptr(&path);
	return 0;
}

int tar_writer_data(struct tar_writer *w, const void *data, size_t n, struct err *err)
{
	if (n > w->data_left)
		return err_set(err, EINVAL, "tar writer: more data than the size of '%s'",
		               w->cur_path ? w->cur_path : "?");
	if (emit(w, data, n, err) < 0)
		return -1;
	w->data_left -= n;
	if (w->data_left == 0 && w->offset % TAR_BLOCK_SIZE)
		return emit_zeros(w, TAR_BLOCK_SIZE - w->offset % TAR_BLOCK_SIZE, err);
	return 0;
}

int tar_writer_add_file(struct tar_writer *w, const char *path, uint32_t mode, const void *data,
                        size_t len, struct err *err)
{
	struct tar_entry e = {.type = TAR_REG, .path = (char *)path, .mode = mode, .size = len};

	if (tar_writer_header(w, &e, err) < 0)
		return -1;
	return len ? tar_writer_data(w, data, len, err) : 0;
}

int tar_writer_finish(struct tar_writer *w, struct err *err)
{
	if (w->data_left)
		return err_set(err, EINVAL, "tar writer: %" PRIu64 " bytes of '%s' still missing",
		               w->data_left, w->cur_path);
	if (emit_zeros(w, 2 * TAR_BLOCK_SIZE, err) < 0)
		return -1;
	return flush(w, err);
}
