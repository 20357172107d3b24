/* Minimal unit-test harness: TEST() registers a function; each test runs in its
 * own forked child so a crash fails that test only. Output is TAP. */
#ifndef ROLLOUT_TEST_HARNESS_H
#define ROLLOUT_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void test_register(const char *name, void (*fn)(void));
void test_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void test_skip(const char *reason);
/* Directory holding the repository's testdata/ (from $ROLLOUT_SRCDIR or cwd). */
const char *test_srcdir(void);
/* Per-test scratch directory, removed after the test. */
const char *test_tmpdir(void);
/* test_tmpdir()/rel in a rotating static buffer (8 live at once): no frees needed. */
const char *tpath(const char *rel);
/* tpath(rel), created (mkdir -p, mode 0755) if missing. */
const char *tdir(const char *rel);
/* printf into a rotating static buffer (16 live at once): for paths built inline. */
const char *tfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Runs a printf-built command line with /bin/sh: its exit status, -1 when killed. */
int tsh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define TEST(name)                                                                                 \
	static void name(void);                                                                    \
	__attribute__((constructor)) static void register_##name(void)                             \
	{                                                                                          \
		test_register(#name, name);                                                        \
	}                                                                                          \
	static void name(void)

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			test_fail_at(__FILE__, __LINE__, "CHECK(%s)", #cond);                      \
	} while (0)

/* Stop the test here when the condition fails (later steps depend on it). */
#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			test_fail_at(__FILE__, __LINE__, "REQUIRE(%s)", #cond);                    \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#define CHECK_INT(a, b)                                                                            \
	do {                                                                                       \
		long long a_ = (long long)(a), b_ = (long long)(b);                                \
		if (a_ != b_)                                                                      \
			test_fail_at(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a,    \
			             a_, #b, b_);                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		if (!a_ || !b_ || strcmp(a_, b_) != 0)                                             \
			test_fail_at(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a,      \
			             a_ ? a_ : "(null)", b_ ? b_ : "(null)");                      \
	} while (0)

/* The string contains the substring. */
#define CHECK_CONTAINS(a, sub)                                                                     \
	do {                                                                                       \
		const char *a_ = (a), *s_ = (sub);                                                 \
		if (!a_ || !strstr(a_, s_))                                                        \
			test_fail_at(__FILE__, __LINE__,                                           \
			             "%s == \"%s\", expected to contain \"%s\"", #a,               \
			             a_ ? a_ : "(null)", s_);                                      \
	} while (0)

#define SKIP(reason)                                                                               \
	do {                                                                                       \
		test_skip(reason);                                                                 \
		return;                                                                            \
	} while (0)

#endif
