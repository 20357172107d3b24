/* Helpers for the table-driven config tests over testdata/: each input has a
 * sidecar FILE.expected listing the exact diagnostics ("error: ..." and
 * "warning: ..." lines). ROLLOUT_REGEN_EXPECTED=1 rewrites the sidecars
 * instead of comparing (then review them with git diff). */
#ifndef ROLLOUT_TEST_CONFIG_TESTDATA_H
#define ROLLOUT_TEST_CONFIG_TESTDATA_H

#include "config/diag.h"
#include "harness.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline int testdata_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir that end with suffix ("" = every entry but dotfiles and
 * *.expected). */
static inline void testdata_list(const char *dir, const char *suffix, struct strv *out)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.' || str_ends_with(e->d_name, ".expected"))
			continue;
		if (*suffix && !str_ends_with(e->d_name, suffix))
			continue;
		strv_push(out, e->d_name);
	}
	if (out->n)
		qsort(out->v, out->n, sizeof(char *), testdata_name_cmp);
}

static inline char *testdata_diags_text(const struct diags *d)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < d->n; i++)
		sb_addf(&sb, "%s: %s\n", d->v[i].level == DIAG_ERROR ? "error" : "warning",
		        d->v[i].msg);
	return sb_detach(&sb);
}

/* Compare got with the file's contents (or rewrite it); reports a mismatch. */
static inline bool testdata_expect(const char *expected_path, const char *got)
{
	_cleanup_free_ char *want = NULL;
	struct err err;
	size_t len;

	if (getenv("ROLLOUT_REGEN_EXPECTED")) {
		if (write_file(expected_path, got, strlen(got), 0644, &err) < 0)
			test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return true;
	}
	if (read_file(expected_path, 1 << 20, &want, &len, &err) < 0) {
		test_fail_at(__FILE__, __LINE__, "%s (create it: ROLLOUT_REGEN_EXPECTED=1)",
		             err.msg);
		return false;
	}
	if (strcmp(want, got) != 0) {
		test_fail_at(__FILE__, __LINE__, "%s differs.\n# --- expected:\n%s# --- got:\n%s",
		             expected_path, want, got);
		return false;
	}
	return true;
}

/* Tests refer to testdata/ by paths relative to the repository root, as the
 * messages in the sidecars do. */
static inline void testdata_chdir(void)
{
	if (chdir(test_srcdir()) < 0)
		test_fail_at(__FILE__, __LINE__, "chdir %s failed", test_srcdir());
}

#endif
