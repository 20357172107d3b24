/* A strict TOML 1.0 reader: text -> struct node tree with line numbers.
 * Follows https://toml.io/en/v1.0.0 including its redefinition rules; the
 * first error ends the parse with "NAME:LINE: what was expected". */
#include "config/toml.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOML_FILE_MAX (16u << 20)

struct key_part {
	char *s;
	size_t len;
};

struct keypath {
	struct key_part *v;
	size_t n, cap;
};

struct parser {
	const char *name;
	const char *p, *end;
	int line;
	struct err *err;
	struct node *root;
	struct node *cur;      /* table that key/value lines go into */
	char *cur_path;        /* its dotted name, for messages ("" for the root) */
	struct strbuf scratch; /* string contents while they are read */
};

static void keypath_release(struct keypath *kp)
{
	for (size_t i = 0; i < kp->n; i++)
		free(kp->v[i].s);
	free(kp->v);
	memset(kp, 0, sizeof(*kp));
}

static void keypath_push(struct keypath *kp, const char *s, size_t len)
{
	if (kp->n == kp->cap) {
		kp->cap = kp->cap ? kp->cap * 2 : 4;
		kp->v = xrealloc(kp->v, kp->cap * sizeof(*kp->v));
	}
	kp->v[kp->n].s = xmalloc(len + 1);
	memcpy(kp->v[kp->n].s, s, len);
	kp->v[kp->n].s[len] = '\0';
	kp->v[kp->n].len = len;
	kp->n++;
}

static bool is_bare_key_char(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

/* Append one key part as it would be written: bare when possible, else quoted. */
static void key_part_write(struct strbuf *sb, const char *s, size_t len)
{
	bool bare = len > 0;

	for (size_t i = 0; i < len; i++)
		bare = bare && is_bare_key_char((unsigned char)s[i]);
	if (bare) {
		sb_add(sb, s, len);
		return;
	}
	sb_addc(sb, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			sb_addf(sb, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			sb_addf(sb, "\\u%04X", c);
		else
			sb_addc(sb, (char)c);
	}
	sb_addc(sb, '"');
}

/* "prefix.k1.k2" for parts [0, n). Heap string. */
static char *keypath_str(const char *prefix, const struct keypath *kp, size_t n)
{
	struct strbuf sb = STRBUF_INIT;

	if (prefix && *prefix)
		sb_adds(&sb, prefix);
	for (size_t i = 0; i < n; i++) {
		if (sb.len)
			sb_addc(&sb, '.');
		key_part_write(&sb, kp->v[i].s, kp->v[i].len);
	}
	return sb_detach(&sb);
}

__attribute__((format(printf, 2, 3))) static int fail(struct parser *ps, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(ps->err, EINVAL, "%s:%d: %s", ps->name, ps->line, msg);
}

static int cur(const struct parser *ps)
{
	return ps->p < ps->end ? (unsigned char)*ps->p : -1;
}

static int peek(const struct parser *ps, size_t k)
{
	return (size_t)(ps->end - ps->p) > k ? (unsigned char)ps->p[k] : -1;
}

/* What the reader found where it expected something else, for messages. */
static const char *found(const struct parser *ps, char buf[32])
{
	int c = cur(ps);

	if (c < 0)
		return "end of file";
	if (c == '\n' || (c == '\r' && peek(ps, 1) == '\n'))
		return "end of line";
	if (c == '\r')
		return "a carriage return without a line feed";
	if (c > 0x20 && c < 0x7f)
		snprintf(buf, 32, "'%c'", c);
	else if (c == ' ')
		snprintf(buf, 32, "' '");
	else
		snprintf(buf, 32, "byte 0x%02X", (unsigned)c);
	return buf;
}

static bool is_control(int c)
{
	return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
		ps->p++;
}

/* At '#': consume the comment up to (not including) the newline. */
static int skip_comment(struct parser *ps)
{
	for (ps->p++; ps->p < ps->end; ps->p++) {
		int c = (unsigned char)*ps->p;

		if (c == '\n' || (c == '\r' && peek(ps, 1) == '\n'))
			return 0;
		if (is_control(c))
			return fail(ps, "control character U+%04X in a comment", (unsigned)c);
	}
	return 0;
}

/* Consume one newline (LF or CRLF) if there is one. 1 = consumed, 0 = none. */
static int eat_newline(struct parser *ps)
{
	if (cur(ps) == '\n') {
		ps->p++;
		ps->line++;
		return 1;
	}
	if (cur(ps) == '\r' && peek(ps, 1) == '\n') {
		ps->p += 2;
		ps->line++;
		return 1;
	}
	return 0;
}

/* Whitespace, comments and newlines, as allowed between array elements. */
static int skip_ws_comments_newlines(struct parser *ps)
{
	for (;;) {
		skip_ws(ps);
		if (cur(ps) == '#' && skip_comment(ps) < 0)
			return -1;
		if (!eat_newline(ps))
			return 0;
	}
}

/* After a key/value pair or a table header: only a comment may follow. */
static int expect_line_end(struct parser *ps, const char *after)
{
	char buf[32];

	skip_ws(ps);
	if (cur(ps) == '#' && skip_comment(ps) < 0)
		return -1;
	if (cur(ps) < 0 || eat_newline(ps))
		return 0;
	return fail(ps, "expected a newline or a comment after %s, found %s", after,
	            found(ps, buf));
}

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* At '\\' inside a basic string; appends the unescaped character. */
static int parse_escape(struct parser *ps, struct strbuf *sb)
{
	int c = peek(ps, 1);
	int ndigits;
	uint32_t cp = 0;
	char utf8[4];

	switch (c) {
	case 'b':
		sb_addc(sb, '\b');
		break;
	case 't':
		sb_addc(sb, '\t');
		break;
	case 'n':
		sb_addc(sb, '\n');
		break;
	case 'f':
		sb_addc(sb, '\f');
		break;
	case 'r':
		sb_addc(sb, '\r');
		break;
	case '"':
		sb_addc(sb, '"');
		break;
	case '\\':
		sb_addc(sb, '\\');
		break;
	case 'u':
	case 'U':
		ndigits = c == 'u' ? 4 : 8;
		for (int i = 0; i < ndigits; i++) {
			int h = hex_value(peek(ps, 2 + (size_t)i));

			if (h < 0)
				return fail(ps,
				            "escape \\%c needs %d hex digits (write a backslash as "
				            "\\\\ or use a 'literal string')",
				            c, ndigits);
			cp = (cp << 4) | (uint32_t)h;
		}
		if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return fail(ps, "escape \\%c%0*X is not a Unicode scalar value", c, ndigits,
			            cp);
		sb_add(sb, utf8, (size_t)utf8_encode(cp, utf8));
		ps->p += 2 + ndigits;
		return 0;
	default:
		if (c > 0x20 && c < 0x7f)
			return fail(ps,
			            "invalid escape sequence '\\%c' in a string (write a backslash "
			            "as \\\\ or use a 'literal string')",
			            c);
		return fail(ps, "invalid escape sequence in a string (a backslash must be followed "
		                "by b, t, n, f, r, \", \\, u or U)");
	}
	ps->p += 2;
	return 0;
}

/* A line-ending backslash in a multi-line basic string: the backslash, then
 * optional whitespace, then a newline; every whitespace and newline after it is
 * trimmed. Returns 1 when it was one, 0 when not (the caller reports it). */
static int try_line_ending_backslash(struct parser *ps)
{
	const char *q = ps->p + 1;

	while (q < ps->end && (*q == ' ' || *q == '\t'))
		q++;
	if (!(q < ps->end && (*q == '\n' || (*q == '\r' && q + 1 < ps->end && q[1] == '\n'))))
		return 0;
	ps->p = q;
	for (;;) {
		skip_ws(ps);
		if (!eat_newline(ps))
			return 1;
	}
}

/* A string of either kind. At the opening quote; leaves the contents in
 * ps->scratch. quote is '"' (basic) or '\'' (literal). */
static int parse_string(struct parser *ps, int quote, bool multiline)
{
	struct strbuf *sb = &ps->scratch;
	int start_line = ps->line;
	const char *what = quote == '"' ? "string" : "literal string";

	sb_reset(sb);
	sb_adds(sb, ""); /* never NULL, even when empty */
	ps->p += multiline ? 3 : 1;
	if (multiline)
		eat_newline(ps); /* a newline right after the opening delimiter is trimmed */
	for (;;) {
		int c = cur(ps);

		if (c < 0) {
			ps->line = start_line;
			return fail(ps, "unterminated %s%s (no closing %s)",
			            multiline ? "multi-line " : "", what,
			            quote == '"' ? (multiline ? "\"\"\"" : "\"")
			                         : (multiline ? "\'\'\'" : "'"));
		}
		if (c == quote) {
			size_t run = 0;

			if (!multiline) {
				ps->p++;
				return 0;
			}
			while (peek(ps, run) == quote)
				run++;
			if (run < 3) {
				sb_add(sb, ps->p, run);
				ps->p += run;
				continue;
			}
			/* Up to two quotes may sit right before the closing delimiter. */
			if (run > 5)
				return fail(ps, "too many quotes at the end of a multi-line %s",
				            what);
			sb_add(sb, ps->p, run - 3);
			ps->p += run;
			return 0;
		}
		if (c == '\\' && quote == '"') {
			if (multiline && try_line_ending_backslash(ps))
				continue;
			if (parse_escape(ps, sb) < 0)
				return -1;
			continue;
		}
		if (c == '\n' || (c == '\r' && peek(ps, 1) == '\n')) {
			if (!multiline)
				return fail(ps,
				            "unterminated %s: newlines are only allowed in "
				            "multi-line strings",
				            what);
			eat_newline(ps);
			sb_addc(sb, '\n');
			continue;
		}
		if (is_control(c))
			return fail(ps, "control character U+%04X in a %s%s", (unsigned)c, what,
			            quote == '"' ? " (write it as an escape)" : "");
		sb_addc(sb, (char)c);
		ps->p++;
	}
}

/* One key part: bare, "basic" or 'literal'. */
static int parse_simple_key(struct parser *ps, struct keypath *kp)
{
	char buf[32];
	int c = cur(ps);

	if (is_bare_key_char(c)) {
		const char *start = ps->p;

		while (is_bare_key_char(cur(ps)))
			ps->p++;
		keypath_push(kp, start, (size_t)(ps->p - start));
		return 0;
	}
	if (c == '"' || c == '\'') {
		if (peek(ps, 1) == c && peek(ps, 2) == c)
			return fail(ps, "a key cannot be a multi-line string");
		if (parse_string(ps, c, false) < 0)
			return -1;
		keypath_push(kp, ps->scratch.buf, ps->scratch.len);
		return 0;
	}
	return fail(ps, "expected a key, found %s", found(ps, buf));
}

/* A possibly dotted key: a.b."c d" (whitespace around dots is allowed). */
static int parse_key(struct parser *ps, struct keypath *kp)
{
	for (;;) {
		if (parse_simple_key(ps, kp) < 0)
			return -1;
		skip_ws(ps);
		if (cur(ps) != '.')
			return 0;
		ps->p++;
		skip_ws(ps);
	}
}

static int parse_value(struct parser *ps, int depth, const char *path, struct node **out);

static int check_depth(struct parser *ps, int depth)
{
	if (depth > NODE_MAX_DEPTH)
		return fail(ps, "nesting deeper than %d levels", NODE_MAX_DEPTH);
	return 0;
}

static struct node *new_table(int line, int depth, unsigned flags)
{
	struct node *t = node_new(NODE_TABLE, line);

	t->depth = depth;
	t->flags = flags;
	return t;
}

/* Why `v` cannot be extended or redefined, for messages. */
static const char *defined_as(const struct node *v)
{
	if (v->type == NODE_TABLE) {
		if (v->flags & NODE_F_INLINE)
			return "an inline table";
		if (v->flags & NODE_F_DOTTED)
			return "a table (by dotted keys)";
		if (v->flags & NODE_F_HEADER)
			return "a table (by a [table] header)";
		return "a table (as the parent of a [table] header)";
	}
	if (v->type == NODE_ARRAY)
		return v->flags & NODE_F_AOT ? "an array of tables" : "an array";
	if (v->type == NODE_INT)
		return "an integer";
	return v->type == NODE_STRING     ? "a string"
	       : v->type == NODE_FLOAT    ? "a float"
	       : v->type == NODE_BOOL     ? "a boolean"
	       : v->type == NODE_DATETIME ? "a date-time"
	                                  : "a value";
}

/* Insert `key = value` (key possibly dotted) into tbl. Dotted keys may create
 * tables and walk into tables they created, never into tables defined by a
 * header or inline table. Takes ownership of value. */
static int insert_keyval(struct parser *ps, struct node *tbl, const char *prefix,
                         const struct keypath *kp, int line, struct node *value)
{
	struct node_member *m;

	for (size_t i = 0; i + 1 < kp->n; i++) {
		m = node_table_find(tbl, kp->v[i].s, kp->v[i].len);
		if (!m) {
			struct node *t = new_table(line, tbl->depth + 1, NODE_F_DOTTED);

			node_table_add(tbl, kp->v[i].s, kp->v[i].len, line, t);
			tbl = t;
			continue;
		}
		if (m->value->type == NODE_TABLE && (m->value->flags & NODE_F_DOTTED) &&
		    !(m->value->flags & NODE_F_INLINE)) {
			tbl = m->value;
			continue;
		}
		{
			_cleanup_free_ char *full = keypath_str(prefix, kp, kp->n);
			_cleanup_free_ char *part = keypath_str(prefix, kp, i + 1);

			node_free(value);
			ps->line = line;
			return fail(
			    ps, "cannot define key '%s': '%s' is already defined as %s on line %d",
			    full, part, defined_as(m->value), m->value->line);
		}
	}
	m = node_table_find(tbl, kp->v[kp->n - 1].s, kp->v[kp->n - 1].len);
	if (m) {
		_cleanup_free_ char *full = keypath_str(prefix, kp, kp->n);

		node_free(value);
		ps->line = line;
		return fail(ps, "duplicate key '%s' (first defined on line %d)", full, m->line);
	}
	node_table_add(tbl, kp->v[kp->n - 1].s, kp->v[kp->n - 1].len, line, value);
	return 0;
}

/* key = value, with the key's table at depth tbl->depth. */
static int parse_keyval(struct parser *ps, struct node *tbl, const char *prefix)
{
	struct keypath kp = {0};
	struct node *value = NULL;
	int line = ps->line;
	char buf[32];
	int ret = -1;

	if (parse_key(ps, &kp) < 0)
		goto out;
	if (cur(ps) != '=') {
		_cleanup_free_ char *k = keypath_str(prefix, &kp, kp.n);

		fail(ps, "expected '=' after key '%s', found %s", k, found(ps, buf));
		goto out;
	}
	ps->p++;
	skip_ws(ps);
	if (check_depth(ps, tbl->depth + (int)kp.n) < 0)
		goto out;
	{
		_cleanup_free_ char *k = keypath_str(prefix, &kp, kp.n);

		if (parse_value(ps, tbl->depth + (int)kp.n, k, &value) < 0)
			goto out;
	}
	ret = insert_keyval(ps, tbl, prefix, &kp, line, value);
out:
	keypath_release(&kp);
	return ret;
}

static int parse_array(struct parser *ps, int depth, const char *path, struct node **out)
{
	_cleanup_node_ struct node *arr = node_new(NODE_ARRAY, ps->line);
	int start_line = ps->line;
	char buf[32];

	arr->depth = depth;
	ps->p++;
	for (;;) {
		struct node *v;

		if (skip_ws_comments_newlines(ps) < 0)
			return -1;
		if (cur(ps) == ']') {
			ps->p++;
			break;
		}
		if (cur(ps) < 0) {
			ps->line = start_line;
			return fail(ps, "unterminated array: expected ']'");
		}
		if (parse_value(ps, depth + 1, path, &v) < 0)
			return -1;
		node_array_push(arr, v);
		if (skip_ws_comments_newlines(ps) < 0)
			return -1;
		if (cur(ps) == ',') {
			ps->p++;
			continue;
		}
		if (cur(ps) == ']') {
			ps->p++;
			break;
		}
		return fail(ps, "expected ',' or ']' in the array, found %s", found(ps, buf));
	}
	*out = steal_ptr(&arr);
	return 0;
}

static int parse_inline_table(struct parser *ps, int depth, const char *path, struct node **out)
{
	_cleanup_node_ struct node *tbl = new_table(ps->line, depth, NODE_F_INLINE);
	char buf[32];

	ps->p++;
	skip_ws(ps);
	if (cur(ps) == '}') {
		ps->p++;
		*out = steal_ptr(&tbl);
		return 0;
	}
	for (;;) {
		if (cur(ps) == '\n' || cur(ps) == '\r')
			return fail(ps,
			            "newline inside an inline table (TOML 1.0 inline tables must "
			            "be on one line)");
		if (parse_keyval(ps, tbl, path) < 0)
			return -1;
		skip_ws(ps);
		if (cur(ps) == ',') {
			ps->p++;
			skip_ws(ps);
			if (cur(ps) == '}')
				return fail(ps, "trailing comma in an inline table");
			continue;
		}
		if (cur(ps) == '}') {
			ps->p++;
			break;
		}
		if (cur(ps) == '\n' || cur(ps) == '\r')
			return fail(ps,
			            "newline inside an inline table (TOML 1.0 inline tables must "
			            "be on one line)");
		return fail(ps, "expected ',' or '}' in the inline table, found %s",
		            found(ps, buf));
	}
	*out = steal_ptr(&tbl);
	return 0;
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Exactly n digits at q; returns their value or -1. */
static int fixed_digits(const char *q, const char *end, int n)
{
	int v = 0;

	if (end - q < n)
		return -1;
	for (int i = 0; i < n; i++) {
		if (!is_digit((unsigned char)q[i]))
			return -1;
		v = v * 10 + (q[i] - '0');
	}
	return v;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

static bool is_value_end(int c)
{
	return c < 0 || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ']' ||
	       c == '}' || c == '#';
}

/* Offset date-time, local date-time, local date or local time (RFC 3339). */
static int parse_datetime(struct parser *ps, struct node **out)
{
	const char *q = ps->p, *end = ps->end;
	struct strbuf sb = STRBUF_INIT;
	bool has_date = false, has_time = false;
	enum node_datetime_kind kind;
	struct node *n;

	if (fixed_digits(q, end, 4) >= 0 && end - q > 4 && q[4] == '-') {
		int y = fixed_digits(q, end, 4), mo = -1, d = -1;

		if (end - q >= 10 && q[7] == '-') {
			mo = fixed_digits(q + 5, end, 2);
			d = fixed_digits(q + 8, end, 2);
		}
		if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) {
			int w = 0;

			while (w < 10 && q + w < end && !is_value_end((unsigned char)q[w]))
				w++;
			return fail(ps, "invalid date '%.*s' (expected YYYY-MM-DD)", w, q);
		}
		sb_add(&sb, q, 10);
		q += 10;
		has_date = true;
		/* A time follows after 'T' (or 't'), or after one space if it looks like a time. */
		if (q < end && (*q == 'T' || *q == 't' || *q == ' ')) {
			bool time_next = end - q > 3 && is_digit((unsigned char)q[1]) &&
			                 is_digit((unsigned char)q[2]) && q[3] == ':';

			if (time_next) {
				q++;
				has_time = true;
			} else if (*q != ' ') {
				sb_release(&sb);
				return fail(
				    ps, "expected a time (HH:MM:SS) after '%c' in a date-time", *q);
			}
		}
	} else {
		has_time = true;
	}
	if (has_time) {
		int h = fixed_digits(q, end, 2), mi = -1, s = -1;

		if (end - q >= 8 && q[2] == ':' && q[5] == ':') {
			mi = fixed_digits(q + 3, end, 2);
			s = fixed_digits(q + 6, end, 2);
		}
		if (h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60) {
			int w = 0;

			while (w < 8 && q + w < end && !is_value_end((unsigned char)q[w]))
				w++;
			sb_release(&sb);
			return fail(ps, "invalid time '%.*s' (expected HH:MM:SS with seconds)", w,
			            q);
		}
		if (has_date)
			sb_addc(&sb, 'T');
		sb_add(&sb, q, 8);
		q += 8;
		if (q < end && *q == '.') {
			const char *f = ++q;

			while (q < end && is_digit((unsigned char)*q))
				q++;
			if (q == f) {
				sb_release(&sb);
				return fail(ps, "expected digits after '.' in a time");
			}
			sb_addc(&sb, '.');
			sb_add(&sb, f, (size_t)(q - f));
		}
		if (has_date && q < end && (*q == 'Z' || *q == 'z')) {
			sb_addc(&sb, 'Z');
			q++;
			kind = NODE_DT_OFFSET;
		} else if (has_date && q < end && (*q == '+' || *q == '-')) {
			int oh = fixed_digits(q + 1, end, 2), om = -1;

			if (end - q >= 6 && q[3] == ':')
				om = fixed_digits(q + 4, end, 2);
			if (oh < 0 || oh > 23 || om < 0 || om > 59) {
				sb_release(&sb);
				return fail(ps, "invalid time zone offset (expected Z or +HH:MM)");
			}
			sb_add(&sb, q, 6);
			q += 6;
			kind = NODE_DT_OFFSET;
		} else {
			kind = has_date ? NODE_DT_LOCAL : NODE_DT_TIME;
		}
	} else {
		kind = NODE_DT_DATE;
	}
	if (!is_value_end(q < end ? (unsigned char)*q : -1)) {
		sb_release(&sb);
		return fail(ps, "invalid date-time: unexpected '%c' after '%.*s'", *q,
		            (int)(q - ps->p), ps->p);
	}
	n = node_new(NODE_DATETIME, ps->line);
	n->dt_kind = kind;
	n->str.len = sb.len;
	n->str.s = sb_detach(&sb);
	ps->p = q;
	*out = n;
	return 0;
}

/* A run of digits of the base with '_' only between two digits. Returns the
 * number of digits, or -1 (error set) on a misplaced underscore. */
static int digit_run(struct parser *ps, const char **q, const char *end, int base,
                     struct strbuf *digits, const char *tok, int toklen)
{
	int n = 0;

	while (*q < end) {
		int c = (unsigned char)**q;
		int v = hex_value(c);

		if (c == '_') {
			if (n == 0 || *q + 1 >= end || hex_value((unsigned char)(*q)[1]) < 0 ||
			    hex_value((unsigned char)(*q)[1]) >= base)
				return fail(ps, "invalid number '%.*s': '_' must be between digits",
				            toklen, tok);
			(*q)++;
			continue;
		}
		if (v < 0 || v >= base)
			break;
		sb_addc(digits, (char)c);
		(*q)++;
		n++;
	}
	return n;
}

static int parse_number(struct parser *ps, struct node **out)
{
	const char *tok = ps->p, *q, *end;
	_cleanup_sb_ struct strbuf num = STRBUF_INIT;
	int toklen, n;
	bool is_float = false, neg = false;
	struct node *node;

	/* The token: everything up to a delimiter. */
	for (end = ps->p; end < ps->end && !is_value_end((unsigned char)*end); end++)
		;
	toklen = (int)(end - tok);
	q = tok;
	if (*q == '+' || *q == '-') {
		neg = *q == '-';
		sb_addc(&num, *q++);
	}
	if ((end - q == 3 && (memcmp(q, "inf", 3) == 0 || memcmp(q, "nan", 3) == 0))) {
		node = node_new(NODE_FLOAT, ps->line);
		node->f = q[0] == 'i' ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
		ps->p = end;
		*out = node;
		return 0;
	}
	if (end - q > 2 && q[0] == '0' && (q[1] == 'x' || q[1] == 'o' || q[1] == 'b')) {
		int base = q[1] == 'x' ? 16 : q[1] == 'o' ? 8 : 2;
		uint64_t v = 0;

		if (q != tok)
			return fail(ps,
			            "invalid number '%.*s': hexadecimal, octal and binary "
			            "integers cannot have a sign",
			            toklen, tok);
		q += 2;
		sb_reset(&num);
		n = digit_run(ps, &q, end, base, &num, tok, toklen);
		if (n < 0)
			return -1;
		if (n == 0 || q != end)
			return fail(ps, "invalid %s integer '%.*s'",
			            base == 16  ? "hexadecimal"
			            : base == 8 ? "octal"
			                        : "binary",
			            toklen, tok);
		for (const char *d = num.buf; *d; d++) {
			uint64_t dv = (uint64_t)hex_value((unsigned char)*d);

			if (v > ((uint64_t)INT64_MAX - dv) / (uint64_t)base)
				return fail(ps, "integer '%.*s' does not fit in 64 bits", toklen,
				            tok);
			v = v * (uint64_t)base + dv;
		}
		node = node_new(NODE_INT, ps->line);
		node->i = (int64_t)v;
		ps->p = end;
		*out = node;
		return 0;
	}
	/* Decimal integer or float: int-part [. frac] [e exp]. */
	if (q >= end || !is_digit((unsigned char)*q)) {
		if (toklen == 0)
			return fail(ps, "expected a value");
		return fail(ps, "invalid value '%.*s' (strings need quotes)", toklen, tok);
	}
	{
		const char *start = q;

		n = digit_run(ps, &q, end, 10, &num, tok, toklen);
		if (n < 0)
			return -1;
		if (*start == '0' && n > 1)
			return fail(ps, "invalid number '%.*s': leading zeros are not allowed",
			            toklen, tok);
	}
	if (q < end && *q == '.') {
		is_float = true;
		sb_addc(&num, '.');
		q++;
		n = digit_run(ps, &q, end, 10, &num, tok, toklen);
		if (n < 0)
			return -1;
		if (n == 0)
			return fail(ps, "invalid float '%.*s': expected digits after '.'", toklen,
			            tok);
	}
	if (q < end && (*q == 'e' || *q == 'E')) {
		is_float = true;
		sb_addc(&num, 'e');
		q++;
		if (q < end && (*q == '+' || *q == '-'))
			sb_addc(&num, *q++);
		n = digit_run(ps, &q, end, 10, &num, tok, toklen);
		if (n < 0)
			return -1;
		if (n == 0)
			return fail(ps, "invalid float '%.*s': expected digits in the exponent",
			            toklen, tok);
	}
	if (q != end)
		return fail(ps, "invalid number '%.*s'", toklen, tok);
	if (is_float) {
		char *e;
		double d;

		errno = 0;
		d = strtod(num.buf, &e);
		if (errno == ERANGE && isinf(d))
			return fail(ps, "float '%.*s' is out of range", toklen, tok);
		node = node_new(NODE_FLOAT, ps->line);
		node->f = d;
	} else {
		char *e;
		long long v;

		errno = 0;
		v = strtoll(num.buf, &e, 10);
		if (errno == ERANGE)
			return fail(ps, "integer '%.*s' does not fit in 64 bits", toklen, tok);
		node = node_new(NODE_INT, ps->line);
		node->i = v;
	}
	ps->p = end;
	*out = node;
	return 0;
}

/* A date, time or date-time starts with "DDDD-" or "DD:". */
static bool looks_like_datetime(const struct parser *ps)
{
	const char *q = ps->p;
	size_t left = (size_t)(ps->end - q);

	if (left >= 5 && is_digit((unsigned char)q[0]) && is_digit((unsigned char)q[1]) &&
	    is_digit((unsigned char)q[2]) && is_digit((unsigned char)q[3]) && q[4] == '-')
		return true;
	return left >= 3 && is_digit((unsigned char)q[0]) && is_digit((unsigned char)q[1]) &&
	       q[2] == ':';
}

static int parse_value(struct parser *ps, int depth, const char *path, struct node **out)
{
	char buf[32];
	int c = cur(ps);

	if (check_depth(ps, depth) < 0)
		return -1;
	if (c < 0 || c == '\n' || c == '\r' || c == '#' || c == ',' || c == ']' || c == '}')
		return fail(ps, "expected a value for key '%s', found %s", path, found(ps, buf));
	if (is_control(c))
		return fail(ps, "expected a value for key '%s', found control character U+%04X",
		            path, (unsigned)c);
	if (c == '"' || c == '\'') {
		bool ml = peek(ps, 1) == c && peek(ps, 2) == c;
		int line = ps->line;

		if (parse_string(ps, c, ml) < 0)
			return -1;
		*out = node_new_string(ps->scratch.buf, ps->scratch.len, line);
		return 0;
	}
	if (c == '[') {
		if (parse_array(ps, depth, path, out) < 0)
			return -1;
		return 0;
	}
	if (c == '{')
		return parse_inline_table(ps, depth, path, out);
	if (c == 't' || c == 'f') {
		const char *q = ps->p;
		size_t len;

		while (q < ps->end && !is_value_end((unsigned char)*q))
			q++;
		len = (size_t)(q - ps->p);
		if ((len == 4 && memcmp(ps->p, "true", 4) == 0) ||
		    (len == 5 && memcmp(ps->p, "false", 5) == 0)) {
			*out = node_new(NODE_BOOL, ps->line);
			(*out)->b = len == 4;
			ps->p = q;
			return 0;
		}
		return fail(ps,
		            "invalid value '%.*s' (booleans are lowercase true/false; strings "
		            "need quotes)",
		            (int)len, ps->p);
	}
	if (looks_like_datetime(ps))
		return parse_datetime(ps, out);
	return parse_number(ps, out);
}

/* [a.b.c] or [[a.b.c]] */
static int parse_header(struct parser *ps)
{
	struct keypath kp = {0};
	bool aot = peek(ps, 1) == '[';
	int line = ps->line;
	struct node *tbl = ps->root;
	struct node_member *m;
	char buf[32];
	int ret = -1;
	char *name = NULL;

	ps->p += aot ? 2 : 1;
	skip_ws(ps);
	if (parse_key(ps, &kp) < 0)
		goto out;
	name = keypath_str(NULL, &kp, kp.n);
	if (aot ? !(cur(ps) == ']' && peek(ps, 1) == ']') : cur(ps) != ']') {
		fail(ps, "expected '%s' to close the table header [%s%s, found %s",
		     aot ? "]]" : "]", aot ? "[" : "", name, found(ps, buf));
		goto out;
	}
	ps->p += aot ? 2 : 1;
	if (check_depth(ps, (int)kp.n + 1) < 0)
		goto out;
	for (size_t i = 0; i + 1 < kp.n; i++) {
		struct node *v;

		m = node_table_find(tbl, kp.v[i].s, kp.v[i].len);
		if (!m) {
			struct node *t = new_table(line, tbl->depth + 1, NODE_F_IMPLICIT);

			node_table_add(tbl, kp.v[i].s, kp.v[i].len, line, t);
			tbl = t;
			continue;
		}
		v = m->value;
		if (v->type == NODE_TABLE && !(v->flags & NODE_F_INLINE)) {
			tbl = v;
			continue;
		}
		if (v->type == NODE_ARRAY && (v->flags & NODE_F_AOT)) {
			tbl = v->arr.v[v->arr.n - 1];
			continue;
		}
		{
			_cleanup_free_ char *part = keypath_str(NULL, &kp, i + 1);

			fail(ps,
			     "cannot define table [%s]: '%s' is already defined as %s on line %d",
			     name, part, defined_as(v), v->line);
			goto out;
		}
	}
	m = node_table_find(tbl, kp.v[kp.n - 1].s, kp.v[kp.n - 1].len);
	if (aot) {
		struct node *arr, *t;

		if (!m) {
			arr = node_new(NODE_ARRAY, line);
			arr->depth = tbl->depth + 1;
			arr->flags = NODE_F_AOT;
			node_table_add(tbl, kp.v[kp.n - 1].s, kp.v[kp.n - 1].len, line, arr);
		} else if (m->value->type == NODE_ARRAY && (m->value->flags & NODE_F_AOT)) {
			arr = m->value;
		} else {
			fail(ps,
			     "cannot define array of tables [[%s]]: '%s' is already defined as %s "
			     "on line %d",
			     name, name, defined_as(m->value), m->value->line);
			goto out;
		}
		t = new_table(line, arr->depth + 1, NODE_F_HEADER);
		node_array_push(arr, t);
		ps->cur = t;
	} else if (!m) {
		struct node *t = new_table(line, tbl->depth + 1, NODE_F_HEADER);

		node_table_add(tbl, kp.v[kp.n - 1].s, kp.v[kp.n - 1].len, line, t);
		ps->cur = t;
	} else if (m->value->type == NODE_TABLE && m->value->flags == NODE_F_IMPLICIT) {
		m->value->flags = NODE_F_HEADER;
		m->value->line = line;
		ps->cur = m->value;
	} else {
		if (m->value->type == NODE_TABLE && (m->value->flags & NODE_F_HEADER))
			fail(ps, "table [%s] is defined twice (first on line %d)", name,
			     m->value->line);
		else
			fail(ps,
			     "cannot define table [%s]: '%s' is already defined as %s on line %d",
			     name, name, defined_as(m->value), m->value->line);
		goto out;
	}
	free(ps->cur_path);
	ps->cur_path = steal_ptr(&name);
	ret = expect_line_end(ps, "a table header");
out:
	free(name);
	keypath_release(&kp);
	return ret;
}

int toml_parse(const char *text, size_t len, const char *name, struct node **out, struct err *err)
{
	struct parser ps = {
	    .name = name,
	    .p = text,
	    .end = text + len,
	    .line = 1,
	    .err = err,
	};
	const char *bad = utf8_invalid(text, len);
	int ret = -1;

	if (bad) {
		for (const char *q = text; q < bad; q++)
			ps.line += *q == '\n';
		return fail(&ps, "invalid UTF-8 (byte 0x%02X)", (unsigned char)*bad);
	}
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		ps.p += 3;
	ps.root = new_table(1, 0, NODE_F_HEADER);
	ps.cur = ps.root;
	ps.cur_path = xstrdup("");
	for (;;) {
		int c;

		skip_ws(&ps);
		c = cur(&ps);
		if (c < 0)
			break;
		if (c == '#') {
			if (expect_line_end(&ps, "a comment") < 0)
				goto out;
		} else if (c == '\n' || c == '\r') {
			if (!eat_newline(&ps)) {
				fail(&ps, "carriage return without a line feed");
				goto out;
			}
		} else if (c == '[') {
			if (parse_header(&ps) < 0)
				goto out;
		} else {
			if (parse_keyval(&ps, ps.cur, ps.cur_path) < 0 ||
			    expect_line_end(&ps, "a value") < 0)
				goto out;
		}
	}
	*out = steal_ptr(&ps.root);
	ret = 0;
out:
	node_free(ps.root);
	free(ps.cur_path);
	sb_release(&ps.scratch);
	return ret;
}

int toml_load_file(const char *path, struct node **out, struct err *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len;

	if (read_file(path, TOML_FILE_MAX, &text, &len, err) < 0)
		return -1;
	return toml_parse(text, len, path, out, err);
}
