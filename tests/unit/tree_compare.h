/* Test helper: compare two directory trees file by file (type, mode, owner, mtime,
 * content, link target, device numbers, xattrs). Header-only, for unit tests. */
#ifndef ROLLOUT_TEST_TREE_COMPARE_H
#define ROLLOUT_TEST_TREE_COMPARE_H

#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/strbuf.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

enum {
	TREE_CMP_NO_DIR_MTIME = 1 << 0,
	TREE_CMP_NO_OWNER = 1 << 1,
	TREE_CMP_XATTRS = 1 << 2,
};

__attribute__((unused)) static int tree_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

__attribute__((unused)) static void tree_list(const char *dir, struct strv *out)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			strv_push(out, de->d_name);
	closedir(d);
	if (out->n)
		qsort(out->v, out->n, sizeof(char *), tree_cmp_names);
}

__attribute__((unused)) static bool tree_same_content(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	bool same = fa && fb;
	char ba[65536], bb[65536];

	while (same) {
		size_t na = fread(ba, 1, sizeof(ba), fa), nb = fread(bb, 1, sizeof(bb), fb);

		if (na != nb || memcmp(ba, bb, na) != 0)
			same = false;
		if (na == 0)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

__attribute__((unused)) static void tree_xattrs(const char *path, struct strbuf *out)
{
	char names[8192];
	ssize_t n = llistxattr(path, names, sizeof(names));
	struct strv v = STRV_INIT;

	for (char *p = names; n > 0 && p < names + n; p += strlen(p) + 1)
		if (strncmp(p, "security.selinux", 16) != 0)
			strv_push(&v, p);
	if (v.n)
		qsort(v.v, v.n, sizeof(char *), tree_cmp_names);
	for (size_t i = 0; i < v.n; i++) {
		char val[4096];
		ssize_t l = lgetxattr(path, v.v[i], val, sizeof(val));

		sb_addf(out, "%s=%.*s;", v.v[i], l > 0 ? (int)l : 0, val);
	}
	strv_release(&v);
}

/* Appends differences ("rel: what") to diff; returns true when equal. */
__attribute__((unused)) static bool tree_compare(const char *a, const char *b, const char *rel,
                                                 unsigned flags, struct strbuf *diff)
{
	struct stat sa, sb_;
	bool same = true;

	if (lstat(a, &sa) < 0) {
		sb_addf(diff, "%s: missing on the left\n", rel);
		return false;
	}
	if (lstat(b, &sb_) < 0) {
		sb_addf(diff, "%s: missing on the right\n", rel);
		return false;
	}
	if ((sa.st_mode & S_IFMT) != (sb_.st_mode & S_IFMT)) {
		sb_addf(diff, "%s: type %o vs %o\n", rel, sa.st_mode & S_IFMT,
		        sb_.st_mode & S_IFMT);
		return false;
	}
	if (!S_ISLNK(sa.st_mode) && (sa.st_mode & 07777) != (sb_.st_mode & 07777)) {
		sb_addf(diff, "%s: mode %o vs %o\n", rel, sa.st_mode & 07777, sb_.st_mode & 07777);
		same = false;
	}
	if (!(flags & TREE_CMP_NO_OWNER) && (sa.st_uid != sb_.st_uid || sa.st_gid != sb_.st_gid)) {
		sb_addf(diff, "%s: owner %u:%u vs %u:%u\n", rel, sa.st_uid, sa.st_gid, sb_.st_uid,
		        sb_.st_gid);
		same = false;
	}
	if (!(S_ISDIR(sa.st_mode) && (flags & TREE_CMP_NO_DIR_MTIME)) &&
	    sa.st_mtim.tv_sec != sb_.st_mtim.tv_sec) {
		sb_addf(diff, "%s: mtime %ld vs %ld\n", rel, (long)sa.st_mtim.tv_sec,
		        (long)sb_.st_mtim.tv_sec);
		same = false;
	}
	if (flags & TREE_CMP_XATTRS) {
		struct strbuf xa = STRBUF_INIT, xb = STRBUF_INIT;

		tree_xattrs(a, &xa);
		tree_xattrs(b, &xb);
		if (strcmp(sb_str(&xa), sb_str(&xb)) != 0) {
			sb_addf(diff, "%s: xattrs '%s' vs '%s'\n", rel, sb_str(&xa), sb_str(&xb));
			same = false;
		}
		sb_release(&xa);
		sb_release(&xb);
	}
	if (S_ISREG(sa.st_mode)) {
		if (sa.st_size != sb_.st_size || !tree_same_content(a, b)) {
			sb_addf(diff, "%s: content differs\n", rel);
			same = false;
		}
	} else if (S_ISLNK(sa.st_mode)) {
		char la[4096], lb[4096];
		ssize_t na = readlink(a, la, sizeof(la)), nb = readlink(b, lb, sizeof(lb));

		if (na != nb || memcmp(la, lb, (size_t)na) != 0) {
			sb_addf(diff, "%s: link target differs\n", rel);
			same = false;
		}
	} else if (S_ISCHR(sa.st_mode) || S_ISBLK(sa.st_mode)) {
		if (sa.st_rdev != sb_.st_rdev) {
			sb_addf(diff, "%s: device number differs\n", rel);
			same = false;
		}
	} else if (S_ISDIR(sa.st_mode)) {
		struct strv la = STRV_INIT, lb = STRV_INIT;
		size_t i = 0, j = 0;

		tree_list(a, &la);
		tree_list(b, &lb);
		while (i < la.n || j < lb.n) {
			int c = i >= la.n ? 1 : j >= lb.n ? -1 : strcmp(la.v[i], lb.v[j]);
			char *sub = xasprintf("%s/%s", rel, c <= 0 ? la.v[i] : lb.v[j]);

			if (c < 0) {
				sb_addf(diff, "%s: only on the left\n", sub);
				same = false;
				i++;
			} else if (c > 0) {
				sb_addf(diff, "%s: only on the right\n", sub);
				same = false;
				j++;
			} else {
				char *pa = xasprintf("%s/%s", a, la.v[i]);
				char *pb = xasprintf("%s/%s", b, lb.v[j]);

				if (!tree_compare(pa, pb, sub, flags, diff))
					same = false;
				free(pa);
				free(pb);
				i++;
				j++;
			}
			free(sub);
			if (diff->len > 4000)
				break;
		}
		strv_release(&la);
		strv_release(&lb);
	}
	return same;
}

/* Number of entries in a directory (0 when it is empty or missing). */
__attribute__((unused)) static size_t tree_count_entries(const char *dir)
{
	struct strv v = STRV_INIT;
	size_t n;

	tree_list(dir, &v);
	n = v.n;
	strv_release(&v);
	return n;
}

#endif
