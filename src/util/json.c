/* cJSON helpers: parse with line/column errors, 4-space pretty printing, atomic writes. */
#include "rollout/json.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_FILE_MAX (256u << 20)

void cleanup_jsonp(cJSON **v)
{
	if (*v)
		cJSON_Delete(*v);
}

int json_parse(const char *text, size_t len, const char *name, cJSON **out, struct err *err)
{
	const char *end = NULL;
	cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);

	if (!v) {
		size_t off = end ? (size_t)(end - text) : 0;
		int line = 1, col = 1;

		if (len == 0)
			return err_set(err, EINVAL, "%s: empty file, expected JSON", name);
		for (size_t i = 0; i < off && i < len; i++) {
			if (text[i] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		return err_set(err, EINVAL, "%s:%d:%d: invalid JSON", name, line, col);
	}
	/* cJSON stops after the first value; anything but whitespace after it is an error. */
	if (end) {
		size_t off = (size_t)(end - text);

		while (off < len && (text[off] == ' ' || text[off] == '\n' || text[off] == '\r' ||
		                     text[off] == '\t'))
			off++;
		if (off < len && text[off] != '\0') {
			int line = 1;

			for (size_t i = 0; i < off; i++)
				line += text[i] == '\n';
			cJSON_Delete(v);
			return err_set(err, EINVAL, "%s:%d: unexpected data after the JSON value",
			               name, line);
		}
	}
	*out = v;
	return 0;
}

int json_load_file(const char *path, cJSON **out, struct err *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len;

	if (read_file(path, JSON_FILE_MAX, &text, &len, err) < 0)
		return -1;
	return json_parse(text, len, path, out, err);
}

static void print_string(const char *s, struct strbuf *out)
{
	sb_addc(out, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			sb_adds(out, "\\\"");
			break;
		case '\\':
			sb_adds(out, "\\\\");
			break;
		case '\n':
			sb_adds(out, "\\n");
			break;
		case '\r':
			sb_adds(out, "\\r");
			break;
		case '\t':
			sb_adds(out, "\\t");
			break;
		case '\b':
			sb_adds(out, "\\b");
			break;
		case '\f':
			sb_adds(out, "\\f");
			break;
		default:
			if (*p < 0x20)
				sb_addf(out, "\\u%04x", *p);
			else
				sb_addc(out, (char)*p);
		}
	}
	sb_addc(out, '"');
}

static void print_number(double d, struct strbuf *out)
{
	char buf[64];

	if (!isfinite(d)) {
		sb_adds(out, "null");
		return;
	}
	if (d == (double)(long long)d && fabs(d) < 1e15) {
		sb_addf(out, "%lld", (long long)d);
		return;
	}
	/* Shortest representation that reads back to the same double. */
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	sb_adds(out, buf);
}

static void indent(struct strbuf *out, int depth)
{
	for (int i = 0; i < depth * 4; i++)
		sb_addc(out, ' ');
}

static void print_value(const cJSON *v, struct strbuf *out, int depth)
{
	const cJSON *c;

	if (cJSON_IsNull(v) || !v)
		sb_adds(out, "null");
	else if (cJSON_IsTrue(v))
		sb_adds(out, "true");
	else if (cJSON_IsFalse(v))
		sb_adds(out, "false");
	else if (cJSON_IsNumber(v))
		print_number(v->valuedouble, out);
	else if (cJSON_IsString(v))
		print_string(v->valuestring ? v->valuestring : "", out);
	else if (cJSON_IsRaw(v))
		sb_adds(out, v->valuestring ? v->valuestring : "null");
	else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
		bool obj = cJSON_IsObject(v);

		if (!v->child) {
			sb_adds(out, obj ? "{}" : "[]");
			return;
		}
		sb_addc(out, obj ? '{' : '[');
		for (c = v->child; c; c = c->next) {
			sb_addc(out, '\n');
			indent(out, depth + 1);
			if (obj) {
				print_string(c->string ? c->string : "", out);
				sb_adds(out, ": ");
			}
			print_value(c, out, depth + 1);
			if (c->next)
				sb_addc(out, ',');
		}
		sb_addc(out, '\n');
		indent(out, depth);
		sb_addc(out, obj ? '}' : ']');
	}
}

void json_print(const cJSON *v, struct strbuf *out)
{
	print_value(v, out, 0);
}

int json_write_file_atomic(const char *path, const cJSON *v, struct err *err)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;

	json_print(v, &sb);
	sb_addc(&sb, '\n');
	return write_file_atomic(path, sb.buf, sb.len, 0644, err);
}

int json_load_at(const struct cdir *dir, const char *rel, cJSON **out, struct err *err)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ char *name = cdir_name(dir, rel);
	size_t len;

	if (cdir_read(dir, rel, JSON_FILE_MAX, &text, &len, err) < 0)
		return -1;
	return json_parse(text, len, name, out, err);
}

int json_write_at(const struct cdir *dir, const char *rel, const cJSON *v, struct err *err)
{
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;

	json_print(v, &sb);
	sb_addc(&sb, '\n');
	return cdir_write_atomic(dir, rel, sb.buf, sb.len, 0644, err);
}

const char *json_get_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

double json_get_num(const cJSON *obj, const char *key, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

bool json_get_bool(const cJSON *obj, const char *key, bool def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

cJSON *json_add_str_or_null(cJSON *obj, const char *key, const char *s)
{
	return s ? cJSON_AddStringToObject(obj, key, s) : cJSON_AddNullToObject(obj, key);
}

void json_strip_terminal(cJSON *v)
{
	/* Iterative over siblings, recursive over depth: result documents are a few
	 * levels deep and built by rollout. */
	for (; v; v = v->next) {
		if (v->string)
			str_strip_terminal(v->string);
		if (cJSON_IsString(v))
			str_strip_terminal(v->valuestring);
		if (v->child)
			json_strip_terminal(v->child);
	}
}
