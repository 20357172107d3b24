/* Harbor's task checksum: the `dirhash` sha256 of a directory (dirhash-python with
 * its defaults: every file, names and data, empty directories left out, links
 * followed), so that result.json's task_checksum equals Harbor's. */
#ifndef ROLLOUT_CONFIG_DIRHASH_H
#define ROLLOUT_CONFIG_DIRHASH_H

#include "rollout/sha256.h"

struct err;

/* The dirhash of dir, bottom-up:
 *   file      = sha256(content)
 *   directory = sha256(join("\0\0", sorted(entry descriptors)))
 * where an entry's descriptor is "data:<file hash>\0name:<name>" for a file and
 * "dirhash:<directory hash>\0name:<name>" for a non-empty subdirectory; a
 * directory with no file anywhere below it is left out. Sorting is bytewise
 * (Python's code-point order for UTF-8). Symbolic links are followed as dirhash
 * does, but only to files and directories inside dir: a link leading outside it,
 * a broken link, a link cycle and anything but a file or directory are left out
 * (dirhash would read outside the task or fail). An empty dir is an error, as in
 * dirhash ("Nothing to hash"). */
int task_dirhash(const char *dir, char out[SHA256_HEX_LEN + 1], struct err *err);

#endif
