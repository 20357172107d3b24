/* libFuzzer target for the tar reader, the gzip stream and the extractor: any input
 * must be read or rejected without a crash, a leak or a write outside the scratch
 * root; whatever the reader accepts must survive a write/read round trip. */
#include "image/decompress.h"
#include "image/tar.h"
#include "rollout/alloc.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char *scratch, *scratch_parent;

static void remove_scratch(void)
{
	rm_rf(scratch_parent, NULL);
}

static int sb_output(void *ctx, const void *data, size_t n, struct err *err)
{
	sb_add(ctx, data, n);
	return 0;
}

/* Entries the reader returns, written again and read back: same fields. */
static void roundtrip(const uint8_t *data, size_t size)
{
	struct tar_reader *r = tar_reader_new_mem(data, size);
	struct strbuf out = STRBUF_INIT;
	struct tar_output o = {sb_output, &out};
	struct tar_writer *w = tar_writer_new(&o);
	const struct tar_entry *e;
	struct err err;
	char buf[4096];
	int n = 0;

	while (n++ < 64 && tar_reader_next(r, &e, &err) > 0) {
		ssize_t k;

		if (tar_writer_header(w, e, &err) < 0)
			abort(); /* everything readable must be writable */
		while ((k = tar_reader_read(r, buf, sizeof(buf), &err)) > 0)
			if (tar_writer_data(w, buf, (size_t)k, &err) < 0)
				abort();
		if (k < 0)
			break;
	}
	tar_reader_free(r);
	if (tar_writer_finish(w, &err) == 0) {
		struct tar_reader *again = tar_reader_new_mem(out.buf, out.len);

		while (tar_reader_next(again, &e, &err) > 0)
			;
		tar_reader_free(again);
	}
	tar_writer_free(w);
	sb_release(&out);
}

static void extract(const uint8_t *data, size_t size)
{
	struct tar_extract_opts o = {.flags = TAR_X_XATTRS,
	                             .whiteouts = TAR_WHITEOUTS_OVERLAY_USER,
	                             .max_bytes = 1 << 20,
	                             .max_entries = 256};
	struct decompress_opts dopts = {.length = size, .max_output = 4 << 20};
	struct decompress *d = NULL;
	struct tar_reader *r;
	struct tar_input in;
	struct err err;
	int root, fd;

	if (mkdir(scratch, 0755) < 0)
		abort();
	root = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* Through the decompression stream (gzip inputs are inflated). */
	fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	dopts.fd = fd;
	if (decompress_open(&d, &dopts, &err) == 0) {
		in = decompress_tar_input(d);
		r = tar_reader_new(&in);
		if (tar_extract(r, root, &o, NULL, &err) == 0 && tar_reader_drain(r, &err) == 0) {
			struct decompress_result res;

			decompress_finish(d, &res, &err);
		}
		tar_reader_free(r);
		decompress_free(d);
	}
	close(fd);
	close(root);
	rm_rf(scratch, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!scratch) {
		char tmpl[] = "/tmp/fuzz_tar.XXXXXX";

		if (!mkdtemp(tmpl))
			abort();
		scratch_parent = xstrdup(tmpl);
		scratch = xasprintf("%s/root", tmpl);
		atexit(remove_scratch);
	}
	roundtrip(data, size);
	extract(data, size);
	return 0;
}
