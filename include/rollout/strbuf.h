/* Growable byte buffers and NULL-terminated string vectors. */
#ifndef ROLLOUT_STRBUF_H
#define ROLLOUT_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* buf is always NUL-terminated (when non-NULL), so it doubles as a C string. */
struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
};

#define STRBUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

void sb_grow(struct strbuf *sb, size_t extra);
void sb_add(struct strbuf *sb, const void *data, size_t n);
void sb_adds(struct strbuf *sb, const char *s);
void sb_addc(struct strbuf *sb, char c);
void sb_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vaddf(struct strbuf *sb, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void sb_reset(struct strbuf *sb);
void sb_release(struct strbuf *sb);
/* Hand the buffer to the caller (never NULL) and reset sb. */
char *sb_detach(struct strbuf *sb);
/* A literal string value: "" when empty. */
static inline const char *sb_str(const struct strbuf *sb)
{
	return sb->buf ? sb->buf : "";
}

void cleanup_sbp(struct strbuf *sb);
#define _cleanup_sb_ __attribute__((cleanup(cleanup_sbp)))

/* NULL-terminated vector of heap strings. */
struct strv {
	char **v;
	size_t n;
	size_t cap;
};

#define STRV_INIT                                                                                  \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

void strv_push(struct strv *sv, const char *s); /* copies s */
void strv_push_take(struct strv *sv, char *s);  /* takes ownership of s */
void strv_pushf(struct strv *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strv_release(struct strv *sv);
/* Returns the NULL-terminated array (never NULL, even when empty). */
char **strv_array(struct strv *sv);
bool strv_contains(const struct strv *sv, const char *s);
/* Sorts bytewise (strcmp): the order of names in tars, contexts and listings. */
void strv_sort(struct strv *sv);
/* Frees a NULL-terminated array of heap strings. */
void strv_free(char **v);
size_t strv_len(char *const *v);
char **strv_copy(char *const *v);

void cleanup_strvsp(struct strv *sv);
#define _cleanup_strvs_ __attribute__((cleanup(cleanup_strvsp)))

/* String helpers. */
bool str_starts_with(const char *s, const char *prefix);
bool str_ends_with(const char *s, const char *suffix);
/* Shell single-quote a string for sh -c. Returns a heap string. */
char *shell_quote(const char *s);
/* Remove terminal control from s in place: escape sequences (CSI "ESC [ ... final",
 * OSC "ESC ] ... BEL|ESC \\", other "ESC x"), their 8-bit forms, and every other
 * control character but tab and newline (a lone carriage return becomes a
 * newline, as a terminal would have shown the text). Text for files a person or a
 * viewer reads: the builder's and the daemon's colours stay on the terminal. */
void str_strip_terminal(char *s);

#endif
