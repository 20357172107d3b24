/* Unit-test runner: forks per test, prints TAP (ok / not ok / # SKIP). */
#include "harness.h"
#include "rollout/err.h"
#include "rollout/fs.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TESTS 1024
#define EXIT_SKIP 77

static struct {
	const char *name;
	void (*fn)(void);
} tests[MAX_TESTS];
static int n_tests;
static int failed;
static char tmpdir[256];

void test_register(const char *name, void (*fn)(void))
{
	if (n_tests < MAX_TESTS) {
		tests[n_tests].name = name;
		tests[n_tests].fn = fn;
		n_tests++;
	}
}

void test_fail_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stdout, "#   %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	failed = 1;
}

void test_skip(const char *reason)
{
	char path[300];
	FILE *f;

	/* The parent prints the TAP line; it reads the reason from here. */
	snprintf(path, sizeof(path), "%s/.skip-reason", tmpdir);
	f = fopen(path, "w");
	if (f) {
		fputs(reason, f);
		fclose(f);
	}
	fflush(stdout);
	exit(EXIT_SKIP);
}

const char *test_srcdir(void)
{
	const char *d = getenv("ROLLOUT_SRCDIR");

	return d ? d : ".";
}

const char *test_tmpdir(void)
{
	return tmpdir;
}

const char *tpath(const char *rel)
{
	static char bufs[8][768];
	static int next;
	char *b = bufs[next++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", tmpdir, rel);
	return b;
}

const char *tdir(const char *rel)
{
	const char *p = tpath(rel);

	mkdir_p(p, 0755, NULL);
	return p;
}

const char *tfmt(const char *fmt, ...)
{
	static char bufs[16][1024];
	static int next;
	char *b = bufs[next++ % 16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof(bufs[0]), fmt, ap);
	va_end(ap);
	return b;
}

/* The filter is a space-separated list of globs; "!glob" excludes. A test runs when
 * it matches no exclusion and (if there are inclusions) at least one inclusion. */
static int selected(const char *filter, const char *name)
{
	char buf[1024], *save = NULL;
	int include_seen = 0, included = 0;

	if (!filter || !*filter)
		return 1;
	snprintf(buf, sizeof(buf), "%s", filter);
	for (char *g = strtok_r(buf, " ", &save); g; g = strtok_r(NULL, " ", &save)) {
		if (g[0] == '!') {
			if (fnmatch(g + 1, name, 0) == 0)
				return 0;
		} else {
			include_seen = 1;
			included |= fnmatch(g, name, 0) == 0;
		}
	}
	return !include_seen || included;
}

int main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : getenv("TEST_FILTER");
	int n = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < n_tests; i++) {
		pid_t pid;
		int status;
		char skip_reason[512] = "";

		if (!selected(filter, tests[i].name))
			continue;
		n++;
		snprintf(tmpdir, sizeof(tmpdir), "%s/rollout-unit.%d.%d",
		         getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
		         (int)getpid(), i);
		mkdir_p(tmpdir, 0755, NULL);
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			failed = 0;
			tests[i].fn();
			fflush(stdout);
			exit(failed ? 1 : 0); /* exit, not _exit: LeakSanitizer reports at exit */
		}
		while (waitpid(pid, &status, 0) < 0)
			;
		{
			char path[300];
			FILE *f;

			snprintf(path, sizeof(path), "%s/.skip-reason", tmpdir);
			f = fopen(path, "r");
			if (f) {
				skip_reason[0] = ' ';
				if (!fgets(skip_reason + 1, sizeof(skip_reason) - 1, f))
					skip_reason[0] = '\0';
				fclose(f);
			}
		}
		rm_rf(tmpdir, NULL);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			printf("ok %d - %s\n", n, tests[i].name);
		else if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SKIP)
			printf("ok %d - %s # SKIP%s\n", n, tests[i].name, skip_reason);
		else if (WIFSIGNALED(status))
			printf("not ok %d - %s (killed by signal %d)\n", n, tests[i].name,
			       WTERMSIG(status));
		else
			printf("not ok %d - %s\n", n, tests[i].name);
	}
	printf("1..%d\n", n);
	return 0;
}

int tsh(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	int rc;

	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0)
		abort();
	va_end(ap);
	rc = system(cmd);
	free(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
