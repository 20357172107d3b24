/* Dockerfile parsing with BuildKit's syntax: parser directives (syntax, escape),
 * line continuations, comments (also inside continuations), heredocs, JSON (exec)
 * and shell forms, builder flags; and the shell-like word expansion Docker applies
 * to the arguments of ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME,
 * WORKDIR and ARG ($VAR, ${VAR}, ${VAR:-x}, ${VAR:+x}, ${VAR?x}, ${VAR#x}, ${VAR%x},
 * quotes, escapes). Every error names the file and the line. */
#ifndef ROLLOUT_IMAGE_DOCKERFILE_H
#define ROLLOUT_IMAGE_DOCKERFILE_H

#include <stdbool.h>
#include <stddef.h>

struct err;

enum df_cmd {
	DF_ADD,
	DF_ARG,
	DF_CMD,
	DF_COPY,
	DF_ENTRYPOINT,
	DF_ENV,
	DF_EXPOSE,
	DF_FROM,
	DF_HEALTHCHECK,
	DF_LABEL,
	DF_MAINTAINER,
	DF_ONBUILD,
	DF_RUN,
	DF_SHELL,
	DF_STOPSIGNAL,
	DF_USER,
	DF_VOLUME,
	DF_WORKDIR,
};

/* "RUN", "COPY", ... */
const char *df_cmd_name(enum df_cmd cmd);

struct df_heredoc {
	char *name;    /* the delimiter word, unquoted */
	char *content; /* the lines between, each with its '\n' */
	bool expand;   /* the delimiter was not quoted: variables are expanded (COPY/ADD) */
	bool chomp;    /* <<-: leading tabs are stripped from every line */
};

struct df_flag {
	char *name;  /* without "--" */
	char *value; /* NULL for "--flag" with no "=" */
};

struct df_instr {
	enum df_cmd cmd;
	int line;     /* first line */
	int end_line; /* last line (heredocs included) */
	char *text;   /* the instruction as written (continuations joined, heredocs left out) */
	struct df_flag *flags;
	size_t n_flags;
	/* JSON form: the array. Shell form, by instruction:
	 *   RUN CMD ENTRYPOINT USER WORKDIR STOPSIGNAL MAINTAINER ONBUILD: one element,
	 *     the rest of the line;
	 *   COPY ADD VOLUME EXPOSE FROM: whitespace-separated words;
	 *   ENV LABEL: key, value, key, value... (raw words, expanded later);
	 *   ARG: the raw words ("NAME" or "NAME=default");
	 *   HEALTHCHECK: "NONE", or "CMD" followed by the command (JSON per json).
	 * Words are kept raw (quotes and escapes in place) for df_expand_word(). */
	char **args;
	size_t n_args;
	bool json;
	struct df_heredoc *heredocs;
	size_t n_heredocs;
};

struct dockerfile {
	char *name; /* for messages: "Dockerfile" */
	char escape;
	char *syntax; /* the "# syntax=" directive, or NULL */
	struct df_instr *v;
	size_t n;
};

/* Parses a whole Dockerfile. name labels errors ("Dockerfile:12: ..."). */
int dockerfile_parse(const char *text, size_t len, const char *name, struct dockerfile **out,
                     struct err *err);
void dockerfile_free(struct dockerfile *df);

/* The value of flag name ("from", "chown"...), present tells whether it was given. */
const struct df_flag *df_instr_flag(const struct df_instr *in, const char *name);

/* The images a build of df needs besides its own stages: FROM references
 * expanded with the ARGs declared before the first FROM (their defaults), and
 * COPY/ADD --from values that are neither a stage name nor an index; "scratch"
 * left out, each image once, in order. Appended to out (struct strv). */
struct strv;
int dockerfile_base_images(const struct dockerfile *df, struct strv *out, struct err *err);
/* The same images as they occur (repeats included), each with its line; fn's
 * error stops the walk. */
int dockerfile_each_base_image(const struct dockerfile *df,
                               int (*fn)(const char *ref, int line, void *ctx), void *ctx,
                               struct err *err);

/* ---- word expansion ---- */

/* Variables for expansion: KEY=VALUE strings, the last of a key wins. */
struct df_env {
	char *const *vars;
	size_t n;
};
bool df_env_get(const struct df_env *env, const char *key, const char **value);

/* Limits on what expansion may produce (EFBIG beyond, never a partial value): one
 * word (an ENV or LABEL value, a path, an EXPOSE list) and a heredoc's contents. */
#define DF_MAX_WORD (1 << 20)
#define DF_MAX_HEREDOC (16 << 20)

/* Expands one word: variables, quotes removed, escapes applied. An unset variable
 * is empty. `${X:?msg}` of an unset X is an error. Heap string in *out. At most
 * DF_MAX_WORD bytes; `${X#pattern}` and kin on a very long value may fail as too
 * costly rather than run for minutes. */
int df_expand_word(const char *word, char escape, const struct df_env *env, char **out,
                   struct err *err);
/* Like df_expand_word, but splits into words at unquoted white space (what EXPOSE
 * and Docker's ProcessWords do). Appends to *words (a NULL-terminated heap array
 * grown with *n). */
int df_expand_words(const char *text, char escape, const struct df_env *env, char ***words,
                    size_t *n, struct err *err);
/* Expansion for heredoc contents: variables only, quotes stay as written. */
int df_expand_heredoc(const char *text, char escape, const struct df_env *env, char **out,
                      struct err *err);

/* A heredoc word ("<<EOF", "<<-'EOF'", "3<<EOF")? Fills name/expand/chomp
 * (name: heap string) when it is. */
bool df_heredoc_word(const char *word, char **name, bool *expand, bool *chomp);
/* Content with the leading tabs of every line removed (<<-). Heap string. */
char *df_heredoc_chomp(const char *content);

#endif
