/* .dockerignore: patterns compiled to anchored POSIX regular expressions the way
 * Docker compiles them to Go ones (moby/patternmatcher), matched against a path
 * and each of its parent directories; the last matching pattern wins. */
#include "image/dockerignore.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/strbuf.h"

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IGNORE_FILE (1u << 20)

struct pattern {
	char *text; /* cleaned */
	bool exception;
	regex_t re;
};

struct dockerignore {
	struct pattern *p;
	size_t n;
	bool has_exceptions;
};

/* Go's filepath.Clean for a relative pattern, then Docker's "drop a leading /". */
static char *clean_pattern(const char *s)
{
	struct strv parts = STRV_INIT;
	_cleanup_free_ char *copy = xstrdup(s);
	struct strbuf out = STRBUF_INIT;
	char *save = NULL;

	for (char *tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0 && parts.n > 0 &&
		    strcmp(parts.v[parts.n - 1], "..") != 0) {
			free(parts.v[--parts.n]);
			parts.v[parts.n] = NULL;
			continue;
		}
		/* ".." above an absolute root stays at the root */
		if (strcmp(tok, "..") == 0 && s[0] == '/' && parts.n == 0)
			continue;
		strv_push(&parts, tok);
	}
	for (size_t i = 0; i < parts.n; i++) {
		if (i)
			sb_addc(&out, '/');
		sb_adds(&out, parts.v[i]);
	}
	strv_release(&parts);
	if (out.len == 0)
		sb_adds(&out, s[0] == '/' ? "" : ".");
	return sb_detach(&out);
}

static char *pattern_regex(const char *p)
{
	struct strbuf re = STRBUF_INIT;

	sb_addc(&re, '^');
	for (size_t i = 0; p[i]; i++) {
		char c = p[i];

		if (c == '*') {
			if (p[i + 1] == '*') {
				i++;
				if (p[i + 1] == '/')
					i++;
				sb_adds(&re, p[i + 1] ? "(.*/)?" : ".*");
			} else {
				sb_adds(&re, "[^/]*");
			}
		} else if (c == '?') {
			sb_adds(&re, "[^/]");
		} else if (strchr(".+()|{}$", c)) {
			sb_addc(&re, '\\');
			sb_addc(&re, c);
		} else if (c == '\\') {
			char next = p[i + 1];

			if (!next) {
				sb_adds(&re, "\\\\");
			} else {
				i++;
				if (!isalnum((unsigned char)next))
					sb_addc(&re, '\\');
				sb_addc(&re, next);
			}
		} else {
			sb_addc(&re, c);
		}
	}
	sb_addc(&re, '$');
	return sb_detach(&re);
}

void dockerignore_free(struct dockerignore *di)
{
	if (!di)
		return;
	for (size_t i = 0; i < di->n; i++) {
		regfree(&di->p[i].re);
		free(di->p[i].text);
	}
	free(di->p);
	free(di);
}

int dockerignore_parse(const char *text, size_t len, struct dockerignore **out, struct err *err)
{
	struct dockerignore *di = xcalloc(1, sizeof(*di));
	size_t pos = 0;
	int lineno = 0;

	/* A UTF-8 byte order mark at the start is not part of the first pattern. */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		_cleanup_free_ char *s = xstrndup(line, n);
		_cleanup_free_ char *re = NULL;
		char *p = s, *end;
		bool exception = false;
		int rc;

		pos += n + (nl ? 1 : 0);
		lineno++;
		while (isspace((unsigned char)*p))
			p++;
		end = p + strlen(p);
		while (end > p && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (!*p || *p == '#')
			continue;
		if (*p == '!') {
			exception = true;
			p++;
			while (isspace((unsigned char)*p))
				p++;
			if (!*p) {
				dockerignore_free(di);
				return err_set(err, EINVAL,
				               ".dockerignore:%d: illegal exclusion pattern: \"!\"",
				               lineno);
			}
		}
		di->p = xrealloc(di->p, (di->n + 1) * sizeof(*di->p));
		di->p[di->n].text = clean_pattern(p);
		di->p[di->n].exception = exception;
		re = pattern_regex(di->p[di->n].text);
		rc = regcomp(&di->p[di->n].re, re, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			char msg[128];

			regerror(rc, &di->p[di->n].re, msg, sizeof(msg));
			free(di->p[di->n].text);
			dockerignore_free(di);
			return err_set(err, EINVAL, ".dockerignore:%d: bad pattern '%s': %s",
			               lineno, p, msg);
		}
		di->has_exceptions |= exception;
		di->n++;
	}
	*out = di;
	return 0;
}

int dockerignore_load(const char *context_dir, struct dockerignore **out, struct err *err)
{
	_cleanup_free_ char *path = path_join(context_dir, ".dockerignore");
	_cleanup_free_ char *text = NULL;
	size_t len = 0;

	if (!path_exists(path))
		return dockerignore_parse("", 0, out, err);
	if (read_file(path, MAX_IGNORE_FILE, &text, &len, err) < 0)
		return -1;
	if (dockerignore_parse(text, len, out, err) < 0)
		return err_wrap(err, "%s", path);
	return 0;
}

static bool pattern_match(const struct pattern *p, const char *path)
{
	return regexec(&p->re, path, 0, NULL, 0) == 0;
}

bool dockerignore_excluded(const struct dockerignore *di, const char *path)
{
	bool matched = false;
	_cleanup_free_ char *prefix = NULL;

	if (!di || di->n == 0)
		return false;
	prefix = xstrdup(path);
	for (size_t i = 0; i < di->n; i++) {
		const struct pattern *p = &di->p[i];
		bool m;

		if (p->exception != matched)
			continue;
		m = pattern_match(p, path);
		/* ... or one of its parent directories: "a", "a/b", ... */
		for (char *slash = strchr(prefix, '/'); !m && slash;
		     slash = strchr(slash + 1, '/')) {
			*slash = '\0';
			m = pattern_match(p, prefix);
			*slash = '/';
		}
		if (m)
			matched = !p->exception;
	}
	return matched;
}

bool dockerignore_may_include_below(const struct dockerignore *di, const char *dir)
{
	size_t n = strlen(dir);

	if (!di || !di->has_exceptions)
		return false;
	for (size_t i = 0; i < di->n; i++) {
		const char *t = di->p[i].text;

		/* Docker: strings.HasPrefix(pattern + "/", dir + "/") */
		if (di->p[i].exception && strncmp(t, dir, n) == 0 && (t[n] == '/' || t[n] == '\0'))
			return true;
	}
	return false;
}
