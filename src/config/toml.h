/* A strict TOML 1.0 reader (task.toml). inih, first considered, cannot read
 * TOML's arrays, inline tables, arrays of tables or multi-line values, all of
 * which occur in real tasks, so the reader is in-tree (docs/CONFIG.md). */
#ifndef ROLLOUT_CONFIG_TOML_H
#define ROLLOUT_CONFIG_TOML_H

#include "config/node.h"

#include <stddef.h>

struct err;

/* Parse a whole document into a NODE_TABLE tree. Every key and value carries its
 * line. The first error stops the parse: "NAME:LINE: what was expected". */
int toml_parse(const char *text, size_t len, const char *name, struct node **out, struct err *err);
int toml_load_file(const char *path, struct node **out, struct err *err);

#endif
