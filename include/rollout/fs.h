/* File and directory helpers: whole-file reads, atomic writes, mkdir -p, rm -rf. */
#ifndef ROLLOUT_FS_H
#define ROLLOUT_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct err;

/* Read a whole file (at most max bytes, else EFBIG). *out is NUL-terminated. */
int read_file(const char *path, size_t max, char **out, size_t *len, struct err *err);
int read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len, struct err *err);
/* Read an open fd to EOF (at most max bytes); `name` is for messages. */
int read_fd(int fd, const char *name, size_t max, char **out, size_t *len, struct err *err);
/* Write via temp file + fsync + rename + fsync of the directory: readers see
 * either the old or the new content, never a torn file. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, struct err *err);
int write_file(const char *path, const void *data, size_t len, mode_t mode, struct err *err);

int write_all(int fd, const void *buf, size_t n);
/* Reads until n bytes or EOF; returns bytes read or -1. */
ssize_t read_full(int fd, void *buf, size_t n);

int mkdir_p(const char *path, mode_t mode, struct err *err);
/* openat2(2) with these flags (O_CLOEXEC added), mode (for O_CREAT/O_TMPFILE) and
 * RESOLVE_* bits; EAGAIN (a rename raced with the resolution of "..") is retried.
 * -1 with errno: ENOSYS on kernels before 5.6, EPERM under some seccomp profiles.
 * The one call behind confined.h (RESOLVE_BENEATH) and inroot.h (RESOLVE_IN_ROOT). */
int fs_openat2(int dirfd, const char *path, int flags, mode_t mode, unsigned long long resolve);
/* Marks a directory whose children are unrelated trees (ext2/3/4's "top of
 * directory hierarchy" flag, chattr +T): the allocator spreads its
 * subdirectories over block groups instead of packing them near it. Best effort:
 * other filesystems, or a caller without the right, leave it as it is. */
void dir_mark_topdir(const char *path);
struct strv;
/* The names in the directory open at fd (its own fd stays open and unmoved),
 * without "." and "..", sorted bytewise. -1 with errno set on failure. */
int dir_names_sorted(int fd, struct strv *out);
/* Remove a tree without following symlinks; absent path is not an error. */
int rm_rf(const char *path, struct err *err);
int rm_rf_at(int dirfd, const char *name, struct err *err);

/* Copy a tree (dst must not exist). Symlinks are copied as links, never followed;
 * regular files are hard-linked when `link_files` and the filesystem allows,
 * copied otherwise; modes are kept. */
int copy_tree(const char *src, const char *dst, bool link_files, struct err *err);

bool path_exists(const char *path);
bool path_is_dir(const char *path);
bool path_is_file(const char *path);
/* "a" + "b" -> "a/b" (no doubled slash). Heap string. */
char *path_join(const char *a, const char *b);
/* Lexically clean a relative path: drop "." and empty parts, resolve "..",
 * refuse to climb above the start (returns NULL). Leading '/' is dropped. */
char *path_clean_relative(const char *path);
/* Absolute, symlink-free form of an existing path. Heap string or NULL. */
char *path_real(const char *path);
/* The absolute form of path for comparing two spellings of one place: path_real when
 * it exists; else joined to the current directory with "." and ".." folded (no link
 * resolved). Heap string. */
char *path_resolved(const char *path);
const char *path_basename(const char *path);

#endif
