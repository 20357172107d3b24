/* Dockerfile parser and Docker's word expansion (see dockerfile.h). The rules follow
 * BuildKit's frontend: which lines are directives, comments and continuations, how
 * heredocs are found and read, when an argument is a JSON array, how ENV/LABEL/ARG
 * words split, and the shell-like lexer used for variable substitution. */
#include "image/dockerfile.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/strbuf.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <string.h>

#define DF_MAX_LINES 1000000
#define DF_MAX_DEPTH 32 /* nested ${...} */
/* Characters fnmatch() may be asked to look at for one ${X#pattern} (the shortest
 * or longest match is searched by trying every prefix or suffix). */
#define DF_TRIM_BUDGET (64u << 20)

static const char *const cmd_names[] = {
    [DF_ADD] = "ADD",
    [DF_ARG] = "ARG",
    [DF_CMD] = "CMD",
    [DF_COPY] = "COPY",
    [DF_ENTRYPOINT] = "ENTRYPOINT",
    [DF_ENV] = "ENV",
    [DF_EXPOSE] = "EXPOSE",
    [DF_FROM] = "FROM",
    [DF_HEALTHCHECK] = "HEALTHCHECK",
    [DF_LABEL] = "LABEL",
    [DF_MAINTAINER] = "MAINTAINER",
    [DF_ONBUILD] = "ONBUILD",
    [DF_RUN] = "RUN",
    [DF_SHELL] = "SHELL",
    [DF_STOPSIGNAL] = "STOPSIGNAL",
    [DF_USER] = "USER",
    [DF_VOLUME] = "VOLUME",
    [DF_WORKDIR] = "WORKDIR",
};

const char *df_cmd_name(enum df_cmd cmd)
{
	return (size_t)cmd < ARRAY_SIZE(cmd_names) ? cmd_names[cmd] : "?";
}

static bool is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* ---- the lexer: Docker's shell-like word processing ---- */

struct lex {
	const char *s;
	size_t pos, len;
	char escape;
	const struct df_env *env;
	bool raw_quotes;  /* keep quote characters in the result */
	bool raw_escapes; /* keep escape characters in the result */
	bool skip_quotes; /* quotes are ordinary characters (heredoc contents) */
	int depth;
	size_t max; /* the longest result (DF_MAX_WORD, DF_MAX_HEREDOC) */
	struct err *err;
};

/* Appends a substitution's value: ENV A=$A$A doubles per line, so without a cap
 * 24 lines take a gigabyte. */
static int emit(struct lex *l, struct strbuf *out, const char *s, size_t n)
{
	if (out->len + n > l->max)
		return err_set(l->err, EFBIG, "the value expands to more than %zu bytes", l->max);
	sb_add(out, s, n);
	return 0;
}

/* Words split at unquoted white space, as Docker's wordsStruct does. */
struct words {
	struct strbuf word;
	bool in_word;
	struct strv out;
};

static void words_raw_char(struct words *w, char c)
{
	sb_addc(&w->word, c);
	w->in_word = true;
}

static void words_char(struct words *w, char c)
{
	if (is_space((unsigned char)c)) {
		if (w->in_word && w->word.len) {
			strv_push(&w->out, sb_str(&w->word));
			sb_reset(&w->word);
			w->in_word = false;
		}
	} else {
		words_raw_char(w, c);
	}
}

static void words_string(struct words *w, const char *s, bool raw)
{
	if (raw) {
		sb_adds(&w->word, s);
		w->in_word = true;
		return;
	}
	for (; *s; s++)
		words_char(w, *s);
}

static void words_finish(struct words *w)
{
	if (w->word.len) {
		strv_push(&w->out, sb_str(&w->word));
		sb_reset(&w->word);
		w->in_word = false;
	}
}

static void words_release(struct words *w)
{
	sb_release(&w->word);
	strv_release(&w->out);
}

static int peek(const struct lex *l)
{
	return l->pos < l->len ? (unsigned char)l->s[l->pos] : -1;
}

static int next(struct lex *l)
{
	return l->pos < l->len ? (unsigned char)l->s[l->pos++] : -1;
}

bool df_env_get(const struct df_env *env, const char *key, const char **value)
{
	size_t kl = strlen(key);

	if (!env)
		return false;
	for (size_t i = env->n; i-- > 0;) {
		const char *kv = env->vars[i];

		if (kv && strncmp(kv, key, kl) == 0 && kv[kl] == '=') {
			*value = kv + kl + 1;
			return true;
		}
	}
	return false;
}

static int process_stop_on(struct lex *l, int stop, struct strbuf *out, struct words *w);

static int single_quote(struct lex *l, struct strbuf *out)
{
	int c = next(l);

	if (l->raw_quotes)
		sb_addc(out, (char)c);
	for (;;) {
		c = next(l);
		if (c < 0)
			return err_set(l->err, EINVAL,
			               "unexpected end of statement while looking for matching "
			               "single-quote");
		if (c == '\'') {
			if (l->raw_quotes)
				sb_addc(out, (char)c);
			return 0;
		}
		sb_addc(out, (char)c);
	}
}

static int dollar(struct lex *l, struct strbuf *out);

static int double_quote(struct lex *l, struct strbuf *out)
{
	int c = next(l);

	if (l->raw_quotes)
		sb_addc(out, (char)c);
	for (;;) {
		c = peek(l);
		if (c < 0)
			return err_set(l->err, EINVAL,
			               "unexpected end of statement while looking for matching "
			               "double-quote");
		if (c == '"') {
			next(l);
			if (l->raw_quotes)
				sb_addc(out, '"');
			return 0;
		}
		if (c == '$') {
			if (dollar(l, out) < 0)
				return -1;
			continue;
		}
		c = next(l);
		if (c == l->escape) {
			int n = peek(l);

			if (l->raw_escapes)
				sb_addc(out, (char)c);
			if (n < 0)
				continue;
			/* Only these can be escaped; other escapes stay as written. */
			if (n == '"' || n == '$' || n == l->escape)
				c = next(l);
		}
		sb_addc(out, (char)c);
	}
}

static bool special_param(int c)
{
	return c == '@' || c == '*' || c == '#' || c == '?' || c == '-' || c == '$' || c == '!' ||
	       c == '0';
}

static bool name_char(int c)
{
	return isalnum(c) || c == '_' || c >= 0x80;
}

static char *process_name(struct lex *l)
{
	struct strbuf name = STRBUF_INIT;
	int c;

	sb_adds(&name, "");
	while ((c = peek(l)) >= 0) {
		if (name.len == 0 && isdigit(c)) {
			while ((c = peek(l)) >= 0 && isdigit(c))
				sb_addc(&name, (char)next(l));
			break;
		}
		if (name.len == 0 && special_param(c)) {
			sb_addc(&name, (char)next(l));
			break;
		}
		if (!name_char(c))
			break;
		sb_addc(&name, (char)next(l));
	}
	return sb_detach(&name);
}

/* ${X#pat}, ${X##pat}, ${X%pat}, ${X%%pat}: glob patterns, shortest or longest.
 * Fills *cut with how many bytes go (0: no match). Every prefix or suffix is
 * tried in turn, so the work grows with the square of the value's length: it is
 * bounded (an error beyond DF_TRIM_BUDGET) rather than left to hang a build. */
static int trim_pattern(struct lex *l, const char *value, const char *pat, bool prefix,
                        bool longest, size_t *cut)
{
	size_t n = strlen(value), work = 0;
	_cleanup_free_ char *head = prefix ? xstrdup(value) : NULL;

	*cut = 0;
	if (!strpbrk(pat, "*?[\\")) { /* a plain string: one length can match */
		size_t p = strlen(pat);

		if (p <= n && memcmp(prefix ? value : value + n - p, pat, p) == 0)
			*cut = p;
		return 0;
	}
	for (size_t k = 0; k <= n; k++) {
		size_t take = longest ? n - k : k;
		char saved = 0;
		int m;

		work += take + strlen(pat);
		if (work > DF_TRIM_BUDGET)
			return err_set(l->err, EFBIG,
			               "pattern substitution on a value of %zu bytes is too costly",
			               n);
		if (prefix) { /* the prefix of length take, in place */
			saved = head[take];
			head[take] = '\0';
		}
		m = fnmatch(pat, prefix ? head : value + (n - take), 0);
		if (prefix)
			head[take] = saved;
		if (m == 0) {
			*cut = take;
			return 0;
		}
	}
	return 0;
}

static int dollar(struct lex *l, struct strbuf *out)
{
	_cleanup_free_ char *name = NULL;
	_cleanup_sb_ struct strbuf word = STRBUF_INIT;
	const char *value = NULL;
	bool found, colon = false;
	int c, mod;

	next(l); /* '$' */
	if (peek(l) != '{') {
		name = process_name(l);
		if (!*name) {
			sb_addc(out, '$');
			return 0;
		}
		if (df_env_get(l->env, name, &value))
			return emit(l, out, value, strlen(value));
		return 0;
	}
	next(l); /* '{' */
	c = peek(l);
	if (c < 0)
		return err_set(l->err, EINVAL, "syntax error: missing '}'");
	if (c == '{' || c == '}' || c == ':')
		return err_set(l->err, EINVAL, "syntax error: bad substitution");
	name = process_name(l);
	found = df_env_get(l->env, name, &value);
	if (!value)
		value = "";
	mod = next(l);
	if (mod == '}')
		return emit(l, out, value, strlen(value));
	if (mod == ':') {
		colon = true;
		mod = next(l);
	}
	if (mod != '-' && mod != '+' && mod != '?' && !(!colon && (mod == '#' || mod == '%')))
		return err_set(l->err, EINVAL,
		               mod < 0 ? "syntax error: missing '}'"
		                       : "unsupported modifier (%c) in substitution",
		               mod);
	if (++l->depth > DF_MAX_DEPTH)
		return err_set(l->err, EINVAL, "substitutions nested too deeply");
	if (mod == '#' || mod == '%') {
		bool longest = peek(l) == mod;

		if (longest)
			next(l);
		if (process_stop_on(l, '}', &word, NULL) < 0)
			return -1;
		l->depth--;
		{
			size_t cut, n = strlen(value);

			if (trim_pattern(l, value, sb_str(&word), mod == '#', longest, &cut) < 0)
				return -1;
			return emit(l, out, mod == '#' ? value + cut : value, n - cut);
		}
	}
	if (process_stop_on(l, '}', &word, NULL) < 0)
		return -1;
	l->depth--;
	switch (mod) {
	case '-': {
		const char *v = (colon ? !*value : !found) ? sb_str(&word) : value;

		return emit(l, out, v, strlen(v));
	}
	case '+': {
		const char *v = (colon ? *value != '\0' : found) ? sb_str(&word) : "";

		return emit(l, out, v, strlen(v));
	}
	default: /* '?' */
		if (!found)
			return err_set(l->err, EINVAL, "%s: %s", name,
			               word.len ? word.buf : "is not allowed to be unset");
		if (colon && !*value)
			return err_set(l->err, EINVAL, "%s: %s", name,
			               word.len ? word.buf : "is not allowed to be empty");
		return emit(l, out, value, strlen(value));
	}
}

/* Processes up to stop (-1: the end). w (may be NULL) collects the words. */
static int process_stop_on(struct lex *l, int stop, struct strbuf *out, struct words *w)
{
	int c;

	while ((c = peek(l)) >= 0) {
		if (stop >= 0 && c == stop) {
			next(l);
			return 0;
		}
		if (c == '$' || (!l->skip_quotes && (c == '\'' || c == '"'))) {
			struct strbuf tmp = STRBUF_INIT;
			int rc = c == '$'    ? dollar(l, &tmp)
			         : c == '\'' ? single_quote(l, &tmp)
			                     : double_quote(l, &tmp);

			if (rc == 0)
				rc = emit(l, out, sb_str(&tmp), tmp.len);
			if (rc < 0) {
				sb_release(&tmp);
				return -1;
			}
			if (w)
				words_string(w, sb_str(&tmp), c != '$');
			sb_release(&tmp);
			continue;
		}
		c = next(l);
		if (c == l->escape) {
			if (l->raw_escapes) {
				if (w)
					words_raw_char(w, (char)c);
				sb_addc(out, (char)c);
			}
			c = next(l);
			if (c < 0)
				break;
			if (w)
				words_raw_char(w, (char)c);
		} else if (w) {
			words_char(w, (char)c);
		}
		sb_addc(out, (char)c);
	}
	if (stop >= 0)
		return err_set(l->err, EINVAL,
		               "unexpected end of statement while looking for matching %c", stop);
	return 0;
}

int df_expand_word(const char *word, char escape, const struct df_env *env, char **out,
                   struct err *err)
{
	struct lex l = {.s = word,
	                .len = strlen(word),
	                .escape = escape,
	                .env = env,
	                .max = DF_MAX_WORD,
	                .err = err};
	struct strbuf sb = STRBUF_INIT;

	sb_adds(&sb, "");
	if (process_stop_on(&l, -1, &sb, NULL) < 0 || emit(&l, &sb, "", 0) < 0) {
		sb_release(&sb);
		return -1;
	}
	*out = sb_detach(&sb);
	return 0;
}

int df_expand_heredoc(const char *text, char escape, const struct df_env *env, char **out,
                      struct err *err)
{
	struct lex l = {.s = text,
	                .len = strlen(text),
	                .escape = escape,
	                .env = env,
	                .skip_quotes = true,
	                .max = DF_MAX_HEREDOC,
	                .err = err};
	struct strbuf sb = STRBUF_INIT;

	sb_adds(&sb, "");
	if (process_stop_on(&l, -1, &sb, NULL) < 0 || emit(&l, &sb, "", 0) < 0) {
		sb_release(&sb);
		return -1;
	}
	*out = sb_detach(&sb);
	return 0;
}

/* Splits text into words; raw keeps quotes and escapes (used to find heredocs). */
static int lex_words(const char *text, char escape, const struct df_env *env, bool raw,
                     struct strv *out, struct err *err)
{
	struct lex l = {.s = text,
	                .len = strlen(text),
	                .escape = escape,
	                .env = env,
	                .raw_quotes = raw,
	                .raw_escapes = raw,
	                .max = DF_MAX_WORD,
	                .err = err};
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct words w = {STRBUF_INIT, false, STRV_INIT};

	if (process_stop_on(&l, -1, &sb, &w) < 0) {
		words_release(&w);
		return -1;
	}
	words_finish(&w);
	for (size_t i = 0; i < w.out.n; i++)
		strv_push(out, w.out.v[i]);
	words_release(&w);
	return 0;
}

int df_expand_words(const char *text, char escape, const struct df_env *env, char ***words,
                    size_t *n, struct err *err)
{
	_cleanup_strvs_ struct strv sv = STRV_INIT;

	if (lex_words(text, escape, env, false, &sv, err) < 0)
		return -1;
	for (size_t i = 0; i < sv.n; i++) {
		*words = xrealloc(*words, (*n + 2) * sizeof(char *));
		(*words)[(*n)++] = xstrdup(sv.v[i]);
		(*words)[*n] = NULL;
	}
	return 0;
}

/* ---- heredocs ---- */

bool df_heredoc_word(const char *word, char **name, bool *expand, bool *chomp)
{
	const char *p = word, *rest;
	_cleanup_strvs_ struct strv cooked = STRV_INIT, raw = STRV_INIT;
	size_t quotes_cooked = 0, quotes_raw = 0;
	bool minus;

	while (isdigit((unsigned char)*p))
		p++;
	if (strncmp(p, "<<", 2) != 0)
		return false;
	p += 2;
	minus = *p == '-';
	if (minus)
		p++;
	rest = p;
	if (!*rest || strchr(rest, '<'))
		return false;
	/* The delimiter must be one word; quoting any part of it turns expansion off. */
	if (lex_words(rest, '\\', NULL, false, &cooked, NULL) < 0 || cooked.n != 1 ||
	    lex_words(rest, '\\', NULL, true, &raw, NULL) < 0 || raw.n != 1)
		return false;
	for (const char *c = cooked.v[0]; *c; c++)
		quotes_cooked += *c == '\'' || *c == '"';
	for (const char *c = raw.v[0]; *c; c++)
		quotes_raw += *c == '\'' || *c == '"';
	if (name)
		*name = xstrdup(cooked.v[0]);
	if (expand)
		*expand = quotes_cooked == quotes_raw;
	if (chomp)
		*chomp = minus;
	return true;
}

char *df_heredoc_chomp(const char *content)
{
	struct strbuf sb = STRBUF_INIT;
	bool bol = true;

	sb_adds(&sb, "");
	for (const char *p = content; *p; p++) {
		if (bol && *p == '\t')
			continue;
		bol = *p == '\n';
		sb_addc(&sb, *p);
	}
	return sb_detach(&sb);
}

/* ---- the parser ---- */

struct line {
	const char *s;
	size_t len;
};

struct parser {
	const char *name;
	struct line *lines;
	size_t n_lines;
	size_t cur; /* next line to read */
	char escape;
	struct dockerfile *df;
	struct err *err;
};

static int perr(struct parser *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(struct parser *p, int line, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(p->err, EINVAL, "%s:%d: %s", p->name, line, msg);
}

static void split_lines(struct parser *p, const char *text, size_t len)
{
	size_t cap = 0;
	const char *s = text, *end = text + len;

	/* A UTF-8 byte order mark on the first line is dropped. */
	if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);

		if (p->n_lines == cap) {
			cap = cap ? cap * 2 : 64;
			p->lines = xrealloc(p->lines, cap * sizeof(*p->lines));
		}
		p->lines[p->n_lines].s = s;
		p->lines[p->n_lines].len = n && s[n - 1] == '\r' ? n - 1 : n;
		p->n_lines++;
		s = nl ? nl + 1 : end;
	}
}

static char *line_dup(const struct line *l)
{
	return xstrndup(l->s, l->len);
}

static const char *skip_space(const char *s)
{
	while (is_space((unsigned char)*s))
		s++;
	return s;
}

static bool is_comment(const char *s)
{
	return *skip_space(s) == '#';
}

/* "# key=value" at the top of the file. Returns 1 when it was a directive. */
static int directive(struct parser *p, const char *s, int lineno, bool *seen_escape,
                     bool *seen_syntax)
{
	const char *k, *v;
	size_t kl;
	_cleanup_free_ char *key = NULL, *value = NULL;

	if (*s != '#')
		return 0;
	s = skip_space(s + 1);
	k = s;
	if (!isalpha((unsigned char)*s))
		return 0;
	while (isalnum((unsigned char)*s))
		s++;
	kl = (size_t)(s - k);
	s = skip_space(s);
	if (*s != '=')
		return 0;
	v = skip_space(s + 1);
	if (!*v)
		return 0;
	key = xstrndup(k, kl);
	for (char *c = key; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	value = xstrdup(v);
	for (size_t n = strlen(value); n && is_space((unsigned char)value[n - 1]); n--)
		value[n - 1] = '\0';
	if (strcmp(key, "escape") == 0) {
		if (*seen_escape)
			return perr(p, lineno, "only one escape parser directive can be used");
		*seen_escape = true;
		if (strcmp(value, "\\") != 0 && strcmp(value, "`") != 0)
			return perr(p, lineno, "invalid escape token '%s' does not match ` or \\",
			            value);
		p->escape = value[0];
		return 1;
	}
	if (strcmp(key, "syntax") == 0) {
		if (*seen_syntax)
			return perr(p, lineno, "only one syntax parser directive can be used");
		*seen_syntax = true;
		p->df->syntax = steal_ptr(&value);
		return 1;
	}
	if (strcmp(key, "check") == 0)
		return 1;
	return 0; /* an unknown key makes it a comment, and ends the directives */
}

/* Removes the escape character (and white space after it) that ends a line;
 * returns whether the instruction goes on. */
static bool trim_continuation(struct parser *p, char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n && s[n - 1] == p->escape) {
		s[n - 1] = '\0';
		return true;
	}
	return false;
}

static void add_arg(struct df_instr *in, const char *s, size_t n)
{
	in->args = xrealloc(in->args, (in->n_args + 2) * sizeof(char *));
	in->args[in->n_args++] = xstrndup(s, n);
	in->args[in->n_args] = NULL;
}

/* Leading --flags: words with quotes removed and backslash escapes; "--" alone
 * ends them. Returns where the arguments start. */
static const char *extract_flags(struct df_instr *in, const char *s)
{
	for (;;) {
		struct strbuf w = STRBUF_INIT;
		const char *start;
		char quote = 0;

		s = skip_space(s);
		if (!(s[0] == '-' && s[1] == '-'))
			return s;
		start = s;
		sb_adds(&w, "");
		for (; *s; s++) {
			if (quote) {
				if (*s == quote) {
					quote = 0;
					continue;
				}
			} else if (is_space((unsigned char)*s)) {
				break;
			} else if (*s == '\'' || *s == '"') {
				quote = *s;
				continue;
			}
			if (*s == '\\') {
				if (!s[1])
					continue;
				s++;
			}
			sb_addc(&w, *s);
		}
		(void)start;
		if (strcmp(w.buf, "--") == 0) {
			sb_release(&w);
			return skip_space(s);
		}
		{
			char *eq = strchr(w.buf + 2, '=');
			struct df_flag f;

			f.name =
			    eq ? xstrndup(w.buf + 2, (size_t)(eq - w.buf - 2)) : xstrdup(w.buf + 2);
			f.value = eq ? xstrdup(eq + 1) : NULL;
			in->flags = xrealloc(in->flags, (in->n_flags + 1) * sizeof(*in->flags));
			in->flags[in->n_flags++] = f;
		}
		sb_release(&w);
	}
}

/* Docker's parseWords: white-space separated, quotes and escapes kept in place. */
static void parse_words(const char *s, char escape, struct strv *out)
{
	struct strbuf w = STRBUF_INIT;
	bool in_word = false, blank_ok = false;
	char quote = 0;

	for (;; s++) {
		if (!*s) {
			if (in_word && (blank_ok || w.len))
				strv_push(out, sb_str(&w));
			break;
		}
		if (!in_word) {
			if (is_space((unsigned char)*s))
				continue;
			in_word = true;
		}
		if (quote) {
			if (*s == quote)
				quote = 0;
			else if (*s == escape && quote != '\'') {
				if (!s[1]) {
					quote = 0;
					continue;
				}
				sb_addc(&w, *s++);
			}
			sb_addc(&w, *s);
			continue;
		}
		if (is_space((unsigned char)*s)) {
			if (blank_ok || w.len)
				strv_push(out, sb_str(&w));
			sb_reset(&w);
			in_word = blank_ok = false;
			continue;
		}
		if (*s == '\'' || *s == '"') {
			quote = *s;
			blank_ok = true;
		}
		if (*s == escape) {
			if (!s[1])
				continue;
			sb_addc(&w, *s++);
		}
		sb_addc(&w, *s);
	}
	sb_release(&w);
}

static void split_whitespace(struct df_instr *in, const char *s)
{
	while (*(s = skip_space(s))) {
		const char *e = s;

		while (*e && !is_space((unsigned char)*e))
			e++;
		add_arg(in, s, (size_t)(e - s));
		s = e;
	}
}

/* A JSON array of strings: 1; not JSON: 0 (shell form); non-strings: error. */
static int parse_json(struct parser *p, struct df_instr *in, const char *s)
{
	const char *end = NULL;
	cJSON *arr, *it;

	s = skip_space(s);
	if (*s != '[')
		return 0;
	/* Like Go's json.Decoder, the first value counts; what follows is ignored. */
	arr = cJSON_ParseWithOpts(s, &end, false);
	if (!arr)
		return 0;
	if (!cJSON_IsArray(arr)) {
		cJSON_Delete(arr);
		return 0;
	}
	cJSON_ArrayForEach(it, arr)
	{
		if (!cJSON_IsString(it)) {
			cJSON_Delete(arr);
			return perr(p, in->line,
			            "%s: when using JSON array syntax, arrays must be comprised of "
			            "strings only",
			            df_cmd_name(in->cmd));
		}
	}
	cJSON_ArrayForEach(it, arr) add_arg(in, it->valuestring, strlen(it->valuestring));
	cJSON_Delete(arr);
	in->json = true;
	return 1;
}

static int maybe_json(struct parser *p, struct df_instr *in, const char *rest, bool to_list)
{
	int j = parse_json(p, in, rest);

	if (j != 0)
		return j < 0 ? -1 : 0;
	if (to_list)
		split_whitespace(in, rest);
	else if (*rest)
		add_arg(in, rest, strlen(rest));
	return 0;
}

/* ENV and LABEL: "KEY value..." (legacy) or KEY=VALUE words. */
static int parse_name_val(struct parser *p, struct df_instr *in, const char *rest)
{
	_cleanup_strvs_ struct strv words = STRV_INIT;

	parse_words(rest, p->escape, &words);
	if (words.n == 0)
		return perr(p, in->line, "%s must have two arguments", df_cmd_name(in->cmd));
	if (!strchr(words.v[0], '=')) {
		const char *sp = rest;

		while (*sp && !is_space((unsigned char)*sp))
			sp++;
		if (!*sp || !*skip_space(sp))
			return perr(p, in->line, "%s must have two arguments",
			            df_cmd_name(in->cmd));
		add_arg(in, rest, (size_t)(sp - rest));
		sp = skip_space(sp);
		add_arg(in, sp, strlen(sp));
		return 0;
	}
	for (size_t i = 0; i < words.n; i++) {
		const char *eq = strchr(words.v[i], '=');

		if (!eq)
			return perr(
			    p, in->line,
			    "%s: syntax error - can't find = in \"%s\". Must be of the form: "
			    "name=value",
			    df_cmd_name(in->cmd), words.v[i]);
		if (eq == words.v[i])
			return perr(p, in->line, "%s names can not be blank", df_cmd_name(in->cmd));
		add_arg(in, words.v[i], (size_t)(eq - words.v[i]));
		add_arg(in, eq + 1, strlen(eq + 1));
	}
	return 0;
}

static const struct {
	const char *name;
	enum df_cmd cmd;
} commands[] = {
    {"add", DF_ADD},
    {"arg", DF_ARG},
    {"cmd", DF_CMD},
    {"copy", DF_COPY},
    {"entrypoint", DF_ENTRYPOINT},
    {"env", DF_ENV},
    {"expose", DF_EXPOSE},
    {"from", DF_FROM},
    {"healthcheck", DF_HEALTHCHECK},
    {"label", DF_LABEL},
    {"maintainer", DF_MAINTAINER},
    {"onbuild", DF_ONBUILD},
    {"run", DF_RUN},
    {"shell", DF_SHELL},
    {"stopsignal", DF_STOPSIGNAL},
    {"user", DF_USER},
    {"volume", DF_VOLUME},
    {"workdir", DF_WORKDIR},
};

/* Flags each instruction accepts (BuildKit's). */
static const char *const *known_flags(enum df_cmd cmd)
{
	static const char *const from[] = {"platform", NULL};
	static const char *const run[] = {"network", "mount", "security", NULL};
	static const char *const copy[] = {"from",    "chown",   "chmod", "link",
	                                   "parents", "exclude", NULL};
	static const char *const add[] = {"chown",   "chmod",        "link", "checksum",
	                                  "exclude", "keep-git-dir", NULL};
	static const char *const health[] = {"interval",       "timeout", "start-period",
	                                     "start-interval", "retries", NULL};
	static const char *const none[] = {NULL};

	switch (cmd) {
	case DF_FROM:
		return from;
	case DF_RUN:
		return run;
	case DF_COPY:
		return copy;
	case DF_ADD:
		return add;
	case DF_HEALTHCHECK:
		return health;
	default:
		return none;
	}
}

static int check_flags(struct parser *p, const struct df_instr *in)
{
	const char *const *known = known_flags(in->cmd);

	for (size_t i = 0; i < in->n_flags; i++) {
		bool ok = false;

		for (const char *const *k = known; *k; k++)
			ok = ok || strcmp(*k, in->flags[i].name) == 0;
		if (!ok)
			return perr(p, in->line, "%s: unknown flag: --%s", df_cmd_name(in->cmd),
			            in->flags[i].name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(in->flags[j].name, in->flags[i].name) == 0 &&
			    strcmp(in->flags[i].name, "exclude") != 0)
				return perr(p, in->line, "%s: duplicate flag specified: --%s",
				            df_cmd_name(in->cmd), in->flags[i].name);
	}
	return 0;
}

/* The arguments of one instruction, by its kind. */
static int parse_args(struct parser *p, struct df_instr *in, const char *rest)
{
	switch (in->cmd) {
	case DF_ADD:
	case DF_COPY:
		if (maybe_json(p, in, rest, true) < 0)
			return -1;
		if (in->n_args < 2)
			return perr(p, in->line,
			            "%s requires at least two arguments, but only %s provided. "
			            "Destination could not be determined",
			            df_cmd_name(in->cmd), in->n_args ? "one was" : "none were");
		return 0;
	case DF_VOLUME:
		if (maybe_json(p, in, rest, true) < 0)
			return -1;
		if (in->n_args == 0)
			return perr(p, in->line, "VOLUME requires at least one argument");
		return 0;
	case DF_RUN:
	case DF_CMD:
	case DF_ENTRYPOINT:
	case DF_SHELL:
		if (maybe_json(p, in, rest, false) < 0)
			return -1;
		if (in->cmd == DF_SHELL && !in->json)
			return perr(p, in->line, "SHELL requires the arguments to be in JSON form");
		if ((in->cmd == DF_SHELL || in->cmd == DF_RUN) && in->n_args == 0)
			return perr(p, in->line, "%s requires at least one argument",
			            df_cmd_name(in->cmd));
		return 0;
	case DF_EXPOSE:
	case DF_FROM:
		split_whitespace(in, rest);
		if (in->cmd == DF_EXPOSE && in->n_args == 0)
			return perr(p, in->line, "EXPOSE requires at least one argument");
		if (in->cmd == DF_FROM &&
		    !(in->n_args == 1 || (in->n_args == 3 && strcasecmp(in->args[1], "as") == 0)))
			return perr(p, in->line,
			            "FROM requires either one or three arguments (FROM image [AS "
			            "name])");
		return 0;
	case DF_ENV:
	case DF_LABEL:
		return parse_name_val(p, in, rest);
	case DF_ARG: {
		_cleanup_strvs_ struct strv words = STRV_INIT;

		parse_words(rest, p->escape, &words);
		if (words.n == 0)
			return perr(p, in->line, "ARG requires at least one argument");
		for (size_t i = 0; i < words.n; i++) {
			if (words.v[i][0] == '=')
				return perr(p, in->line, "ARG names can not be blank");
			add_arg(in, words.v[i], strlen(words.v[i]));
		}
		return 0;
	}
	case DF_HEALTHCHECK: {
		const char *sp = rest;

		while (*sp && !is_space((unsigned char)*sp))
			sp++;
		add_arg(in, rest, (size_t)(sp - rest));
		if (strcasecmp(in->args[0], "NONE") == 0) {
			if (*skip_space(sp) || in->n_flags)
				return perr(p, in->line, "HEALTHCHECK NONE takes no arguments");
			return 0;
		}
		if (strcasecmp(in->args[0], "CMD") != 0)
			return perr(p, in->line,
			            "HEALTHCHECK: unknown type '%s' (expected CMD or NONE)",
			            in->args[0]);
		free(in->args[0]);
		in->args[0] = xstrdup("CMD");
		sp = skip_space(sp);
		if (!*sp)
			return perr(p, in->line, "HEALTHCHECK CMD requires a command");
		if (parse_json(p, in, sp) < 0)
			return -1;
		if (!in->json)
			add_arg(in, sp, strlen(sp));
		return 0;
	}
	case DF_ONBUILD: {
		const char *sp = rest;
		_cleanup_free_ char *word = NULL;

		while (*sp && !is_space((unsigned char)*sp))
			sp++;
		word = xstrndup(rest, (size_t)(sp - rest));
		if (!*word)
			return perr(p, in->line, "ONBUILD requires at least one argument");
		if (strcasecmp(word, "ONBUILD") == 0)
			return perr(p, in->line,
			            "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
		if (strcasecmp(word, "FROM") == 0 || strcasecmp(word, "MAINTAINER") == 0)
			return perr(p, in->line, "%s isn't allowed as an ONBUILD trigger", word);
		add_arg(in, rest, strlen(rest));
		return 0;
	}
	default: /* USER WORKDIR STOPSIGNAL MAINTAINER: the rest of the line */
		if (!*rest)
			return perr(p, in->line, "%s requires exactly one argument",
			            df_cmd_name(in->cmd));
		add_arg(in, rest, strlen(rest));
		return 0;
	}
}

/* Heredoc delimiters on the line of a RUN, COPY or ADD, in order. */
static void find_heredocs(struct parser *p, struct df_instr *in, const char *line)
{
	_cleanup_strvs_ struct strv words = STRV_INIT;

	if (!strstr(line, "<<") || lex_words(line, '\\', NULL, true, &words, NULL) < 0)
		return;
	for (size_t i = 0; i < words.n; i++) {
		struct df_heredoc h = {0};

		if (!df_heredoc_word(words.v[i], &h.name, &h.expand, &h.chomp))
			continue;
		in->heredocs = xrealloc(in->heredocs, (in->n_heredocs + 1) * sizeof(*in->heredocs));
		in->heredocs[in->n_heredocs++] = h;
	}
	(void)p;
}

static int read_heredocs(struct parser *p, struct df_instr *in)
{
	for (size_t i = 0; i < in->n_heredocs; i++) {
		struct df_heredoc *h = &in->heredocs[i];
		struct strbuf content = STRBUF_INIT;
		size_t nl = strlen(h->name);
		bool done = false;

		sb_adds(&content, "");
		while (p->cur < p->n_lines) {
			const struct line *l = &p->lines[p->cur++];
			const char *s = l->s;
			size_t n = l->len;

			if (h->chomp)
				while (n && *s == '\t') {
					s++;
					n--;
				}
			if (n == nl && memcmp(s, h->name, nl) == 0) {
				done = true;
				break;
			}
			sb_add(&content, l->s, l->len);
			sb_addc(&content, '\n');
		}
		h->content = sb_detach(&content);
		in->end_line = (int)p->cur;
		if (!done)
			return perr(p, in->line, "unterminated heredoc (no line '%s' ends it)",
			            h->name);
	}
	return 0;
}

static void instr_release(struct df_instr *in)
{
	free(in->text);
	for (size_t i = 0; i < in->n_flags; i++) {
		free(in->flags[i].name);
		free(in->flags[i].value);
	}
	free(in->flags);
	for (size_t i = 0; i < in->n_args; i++)
		free(in->args[i]);
	free(in->args);
	for (size_t i = 0; i < in->n_heredocs; i++) {
		free(in->heredocs[i].name);
		free(in->heredocs[i].content);
	}
	free(in->heredocs);
	memset(in, 0, sizeof(*in));
}

/* One instruction from its joined line. */
static int parse_instruction(struct parser *p, const char *line, int lineno, struct df_instr *in)
{
	const char *s = skip_space(line), *e = s, *rest;
	_cleanup_free_ char *word = NULL;
	size_t n;
	bool found = false;

	while (*e && !is_space((unsigned char)*e))
		e++;
	word = xstrndup(s, (size_t)(e - s));
	memset(in, 0, sizeof(*in));
	in->line = in->end_line = lineno;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcasecmp(word, commands[i].name) == 0) {
			in->cmd = commands[i].cmd;
			found = true;
		}
	if (!found)
		return perr(p, lineno, "unknown instruction '%s'", word);
	in->text = xstrdup(s);
	for (n = strlen(in->text); n && is_space((unsigned char)in->text[n - 1]); n--)
		in->text[n - 1] = '\0';
	rest = skip_space(e);
	/* Trailing white space is not part of the arguments. */
	{
		_cleanup_free_ char *trimmed = xstrdup(rest);

		for (n = strlen(trimmed); n && is_space((unsigned char)trimmed[n - 1]); n--)
			trimmed[n - 1] = '\0';
		rest = in->cmd == DF_ONBUILD ? trimmed : extract_flags(in, trimmed);
		if (check_flags(p, in) < 0 || parse_args(p, in, rest) < 0)
			return -1;
	}
	if (in->cmd == DF_RUN || in->cmd == DF_COPY || in->cmd == DF_ADD)
		find_heredocs(p, in, s);
	return 0;
}

int dockerfile_parse(const char *text, size_t len, const char *name, struct dockerfile **out,
                     struct err *err)
{
	struct parser p = {.name = name ? name : "Dockerfile", .escape = '\\', .err = err};
	struct dockerfile *df = xcalloc(1, sizeof(*df));
	bool directives = true, seen_escape = false, seen_syntax = false;
	size_t cap = 0;

	*out = NULL;
	p.df = df;
	df->name = xstrdup(p.name);
	if (memchr(text, '\0', len)) {
		dockerfile_free(df);
		return err_set(err, EINVAL, "%s: not a text file (contains NUL bytes)", p.name);
	}
	split_lines(&p, text, len);
	if (p.n_lines > DF_MAX_LINES) {
		free(p.lines);
		dockerfile_free(df);
		return err_set(err, EFBIG, "%s: too many lines", p.name);
	}
	while (p.cur < p.n_lines) {
		_cleanup_free_ char *first = line_dup(&p.lines[p.cur]);
		struct strbuf joined = STRBUF_INIT;
		int lineno = (int)++p.cur, rc;
		const char *s = skip_space(first);
		bool more;
		struct df_instr in;

		if (directives) {
			rc = directive(&p, s, lineno, &seen_escape, &seen_syntax);
			if (rc < 0)
				goto fail;
			if (rc > 0)
				continue;
			directives = false;
		}
		if (*s == '#' || !*s)
			continue;
		sb_adds(&joined, s);
		more = trim_continuation(&p, joined.buf);
		joined.len = strlen(joined.buf);
		while (more && p.cur < p.n_lines) {
			_cleanup_free_ char *l = line_dup(&p.lines[p.cur++]);

			if (is_comment(l) || !*skip_space(l))
				continue; /* comments and empty lines inside a continuation */
			more = trim_continuation(&p, l);
			sb_adds(&joined, l);
		}
		if (!*skip_space(sb_str(&joined))) {
			sb_release(&joined);
			continue;
		}
		rc = parse_instruction(&p, joined.buf, lineno, &in);
		sb_release(&joined);
		if (rc == 0) {
			in.end_line = (int)p.cur;
			rc = read_heredocs(&p, &in);
		}
		if (rc < 0) {
			instr_release(&in);
			goto fail;
		}
		if (df->n == cap) {
			cap = cap ? cap * 2 : 16;
			df->v = xrealloc(df->v, cap * sizeof(*df->v));
		}
		df->v[df->n++] = in;
	}
	df->escape = p.escape;
	free(p.lines);
	*out = df;
	return 0;
fail:
	free(p.lines);
	dockerfile_free(df);
	return -1;
}

void dockerfile_free(struct dockerfile *df)
{
	if (!df)
		return;
	for (size_t i = 0; i < df->n; i++)
		instr_release(&df->v[i]);
	free(df->v);
	free(df->name);
	free(df->syntax);
	free(df);
}

const struct df_flag *df_instr_flag(const struct df_instr *in, const char *name)
{
	for (size_t i = 0; i < in->n_flags; i++)
		if (strcmp(in->flags[i].name, name) == 0)
			return &in->flags[i];
	return NULL;
}

/* ---- images a build needs ---- */

static bool in_list_nocase(const struct strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcasecmp(v->v[i], s) == 0)
			return true;
	return false;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* The ARGs before the first FROM, with their defaults, as KEY=VALUE. */
static int global_arg_vars(const struct dockerfile *df, size_t *first_from, struct strv *vars,
                           struct err *err)
{
	size_t i;

	for (i = 0; i < df->n && df->v[i].cmd == DF_ARG; i++) {
		const struct df_instr *in = &df->v[i];

		for (size_t k = 0; k < in->n_args; k++) {
			const char *eq = strchr(in->args[k], '=');
			struct df_env env = {vars->v, vars->n};
			_cleanup_free_ char *raw = NULL, *name = NULL, *value = NULL;

			if (!eq)
				continue; /* no default: unset, expands to "" */
			raw = xstrndup(in->args[k], (size_t)(eq - in->args[k]));
			if (df_expand_word(raw, df->escape, &env, &name, err) < 0 ||
			    df_expand_word(eq + 1, df->escape, &env, &value, err) < 0)
				return -1;
			strv_pushf(vars, "%s=%s", name, value);
		}
	}
	*first_from = i;
	return 0;
}

int dockerfile_each_base_image(const struct dockerfile *df,
                               int (*fn)(const char *ref, int line, void *ctx), void *ctx,
                               struct err *err)
{
	_cleanup_strvs_ struct strv vars = STRV_INIT;
	_cleanup_strvs_ struct strv stages = STRV_INIT;
	size_t first;

	if (global_arg_vars(df, &first, &vars, err) < 0)
		return -1;
	for (size_t i = first; i < df->n; i++) {
		const struct df_instr *in = &df->v[i];
		const struct df_flag *from = df_instr_flag(in, "from");
		struct df_env env = {vars.v, vars.n};
		_cleanup_free_ char *ref = NULL;

		if (in->cmd == DF_FROM && in->n_args >= 1) {
			if (df_expand_word(in->args[0], df->escape, &env, &ref, err) < 0)
				return err_wrap(err, "%s:%d: FROM", df->name, in->line);
		} else if ((in->cmd == DF_COPY || in->cmd == DF_ADD) && from && from->value &&
		           !strchr(from->value, '$')) {
			/* A variable here would be the stage's ARG: not guessed. */
			ref = xstrdup(from->value);
		}
		if (ref && *ref && strcasecmp(ref, "scratch") != 0 && !all_digits(ref) &&
		    !in_list_nocase(&stages, ref) && fn(ref, in->line, ctx) < 0)
			return -1;
		if (in->cmd == DF_FROM && in->n_args == 3)
			strv_push(&stages, in->args[2]);
	}
	return 0;
}

static int push_new(const char *ref, int line, void *ctx)
{
	struct strv *out = ctx;

	if (!strv_contains(out, ref))
		strv_push(out, ref);
	return 0;
}

int dockerfile_base_images(const struct dockerfile *df, struct strv *out, struct err *err)
{
	return dockerfile_each_base_image(df, push_new, out, err);
}
