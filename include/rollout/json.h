/* cJSON helpers: file load with line numbers, Harbor-style pretty output, atomic write. */
#ifndef ROLLOUT_JSON_H
#define ROLLOUT_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>

struct cdir;
struct err;
struct strbuf;

/* Parse text; on error the message says "NAME:LINE:COL: ..." */
int json_parse(const char *text, size_t len, const char *name, cJSON **out, struct err *err);
int json_load_file(const char *path, cJSON **out, struct err *err);
/* Pretty print with 4-space indent (Python json.dumps(indent=4) style). */
void json_print(const cJSON *v, struct strbuf *out);
int json_write_file_atomic(const char *path, const cJSON *v, struct err *err);
/* The same on a confined directory (rollout/confined.h): job and trial files. */
int json_load_at(const struct cdir *dir, const char *rel, cJSON **out, struct err *err);
int json_write_at(const struct cdir *dir, const char *rel, const cJSON *v, struct err *err);

const char *json_get_str(const cJSON *obj, const char *key);
/* Returns def when the key is missing or not a number. */
double json_get_num(const cJSON *obj, const char *key, double def);
bool json_get_bool(const cJSON *obj, const char *key, bool def);
/* Add a string or null when s is NULL. */
cJSON *json_add_str_or_null(cJSON *obj, const char *key, const char *s);

/* str_strip_terminal on every string (and key) in v. */
void json_strip_terminal(cJSON *v);

void cleanup_jsonp(cJSON **v);
#define _cleanup_json_ __attribute__((cleanup(cleanup_jsonp)))

#endif
