/* Growable byte buffers, string vectors and small string helpers. */
#include "rollout/strbuf.h"
#include "rollout/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_grow(struct strbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;

	if (need <= sb->cap)
		return;
	if (sb->cap * 2 > need)
		need = sb->cap * 2;
	if (need < 64)
		need = 64;
	sb->buf = xrealloc(sb->buf, need);
	sb->cap = need;
}

void sb_add(struct strbuf *sb, const void *data, size_t n)
{
	sb_grow(sb, n);
	if (n)
		memcpy(sb->buf + sb->len, data, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void sb_adds(struct strbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

void sb_addc(struct strbuf *sb, char c)
{
	sb_add(sb, &c, 1);
}

void sb_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	sb_grow(sb, (size_t)n);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

void sb_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_vaddf(sb, fmt, ap);
	va_end(ap);
}

void sb_reset(struct strbuf *sb)
{
	sb->len = 0;
	if (sb->buf)
		sb->buf[0] = '\0';
}

void sb_release(struct strbuf *sb)
{
	free(sb->buf);
	sb->buf = NULL;
	sb->len = sb->cap = 0;
}

char *sb_detach(struct strbuf *sb)
{
	char *p;

	if (!sb->buf)
		return xstrdup("");
	p = sb->buf;
	sb->buf = NULL;
	sb->len = sb->cap = 0;
	return p;
}

void cleanup_sbp(struct strbuf *sb)
{
	sb_release(sb);
}

static void strv_reserve(struct strv *sv)
{
	if (sv->n + 2 <= sv->cap)
		return;
	sv->cap = sv->cap ? sv->cap * 2 : 8;
	sv->v = xrealloc(sv->v, sv->cap * sizeof(char *));
}

void strv_push_take(struct strv *sv, char *s)
{
	strv_reserve(sv);
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
}

void strv_push(struct strv *sv, const char *s)
{
	strv_push_take(sv, xstrdup(s));
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_sort(struct strv *sv)
{
	if (sv->n > 1)
		qsort(sv->v, sv->n, sizeof(char *), str_cmp);
}

void strv_pushf(struct strv *sv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strv_push_take(sv, xvasprintf(fmt, ap));
	va_end(ap);
}

void strv_release(struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->cap = 0;
}

char **strv_array(struct strv *sv)
{
	strv_reserve(sv);
	sv->v[sv->n] = NULL;
	return sv->v;
}

bool strv_contains(const struct strv *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return true;
	return false;
}

void cleanup_strvsp(struct strv *sv)
{
	strv_release(sv);
}

void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

size_t strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

char **strv_copy(char *const *v)
{
	size_t n = strv_len(v);
	char **out = xcalloc(n + 1, sizeof(char *));

	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(v[i]);
	return out;
}

bool str_starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

char *shell_quote(const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	sb_addc(&sb, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			sb_adds(&sb, "'\\''");
		else
			sb_addc(&sb, *s);
	}
	sb_addc(&sb, '\'');
	return sb_detach(&sb);
}

/* Length of the escape sequence at s (s[0] is ESC or an 8-bit C1 introducer). */
static size_t escape_len(const unsigned char *s)
{
	size_t i = 1;
	bool osc;

	if (s[0] == 0x1b && !s[1])
		return 1;
	osc = s[0] == 0x9d || (s[0] == 0x1b && s[1] == ']');
	if (s[0] == 0x1b && (s[1] == '[' || s[1] == ']' || s[1] == 'P' || s[1] == '_'))
		i = 2;
	if (osc || s[0] == 0x90 || (s[0] == 0x1b && (s[1] == 'P' || s[1] == '_'))) {
		/* String sequences run to BEL or ST (ESC \). */
		for (; s[i]; i++) {
			if (s[i] == 0x07)
				return i + 1;
			if (s[i] == 0x1b && s[i + 1] == '\\')
				return i + 2;
		}
		return i;
	}
	if (s[0] == 0x9b || (s[0] == 0x1b && s[1] == '[')) {
		/* CSI: parameter and intermediate bytes, then one final byte. */
		while (s[i] >= 0x20 && s[i] <= 0x3f)
			i++;
		return s[i] >= 0x40 && s[i] <= 0x7e ? i + 1 : i;
	}
	/* ESC, intermediates (0x20-0x2f), one final byte. */
	while (s[i] >= 0x20 && s[i] <= 0x2f)
		i++;
	return s[i] ? i + 1 : i;
}

void str_strip_terminal(char *s)
{
	unsigned char *r = (unsigned char *)s, *w = r;

	if (!s)
		return;
	while (*r) {
		/* 8-bit C1 introducers arrive UTF-8 encoded: 0xc2 0x9b etc. */
		if (r[0] == 0xc2 && (r[1] == 0x9b || r[1] == 0x9d || r[1] == 0x90)) {
			r += 1 + escape_len(r + 1);
			continue;
		}
		if (*r == 0x1b) {
			r += escape_len(r);
			continue;
		}
		if (*r == '\r') {
			if (r[1] != '\n')
				*w++ = '\n';
			r++;
			continue;
		}
		if ((*r < 0x20 && *r != '\t' && *r != '\n') || *r == 0x7f) {
			r++;
			continue;
		}
		*w++ = *r++;
	}
	*w = '\0';
}
