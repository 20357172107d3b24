/* .dockerignore with Docker's semantics: one pattern per line, '#' comments,
 * a leading '!' re-includes, '*' and '?' stay within a path component, '**'
 * spans components, '[...]' classes and '\' escapes; patterns are cleaned
 * (leading '/', "./", "..") and the last matching pattern decides. A pattern
 * that matches a parent directory matches everything below it. */
#ifndef ROLLOUT_IMAGE_DOCKERIGNORE_H
#define ROLLOUT_IMAGE_DOCKERIGNORE_H

#include <stdbool.h>
#include <stddef.h>

struct err;
struct dockerignore;

/* Parse the text of a .dockerignore (NULL or "" = nothing excluded). */
int dockerignore_parse(const char *text, size_t len, struct dockerignore **out, struct err *err);
/* Read dir/.dockerignore when it exists. */
int dockerignore_load(const char *context_dir, struct dockerignore **out, struct err *err);
void dockerignore_free(struct dockerignore *di);

/* path: relative to the context, '/'-separated, no leading "./". */
bool dockerignore_excluded(const struct dockerignore *di, const char *path);
/* For an excluded directory: may an exception ('!') pattern re-include
 * something below it (Docker's rule: the pattern starts with "dir/")? When
 * not, the walk skips the directory. */
bool dockerignore_may_include_below(const struct dockerignore *di, const char *dir);

#endif
