/* Unit tests for registry.json (loading, errors with lines, version rules,
 * PEP 440, file:// and http:// URLs) and for git task fetching with the real
 * git against local repositories built by testdata/registry/make_fixture.sh:
 * cache reuse, HEAD moves, pinned commits, filters, flat downloads,
 * concurrent processes, leftovers, timeouts and every error. */
#include "config/registry.h"
#include "config/task.h"
#include "config_testdata.h"
#include "core/fetch.h"
#include "harness.h"
#include "rollout/json.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* --- helpers ------------------------------------------------------------------ */

static bool have_git(void)
{
	return tsh("git --version >/dev/null 2>&1") == 0;
}

struct fixture {
	char *dir;      /* the fixture root */
	char *registry; /* DIR/registry.json */
	char *repo;     /* DIR/repo */
	char *url;      /* file://DIR/repo */
	char *cache;
	char c1[41], c2[41], c3[41];
};

static struct fixture fx;

/* Build the fixture in the scratch dir and point the task cache into it. */
static bool fixture_setup(void)
{
	_cleanup_free_ char *env = NULL;
	struct err err = {0};
	size_t len;

	fx.dir = xstrdup(tpath("fx"));
	if (tsh("sh '%s/testdata/registry/make_fixture.sh' '%s' >/dev/null", test_srcdir(),
	        fx.dir) != 0) {
		test_fail_at(__FILE__, __LINE__, "make_fixture.sh failed");
		return false;
	}
	fx.registry = xasprintf("%s/registry.json", fx.dir);
	fx.repo = xasprintf("%s/repo", fx.dir);
	fx.url = xasprintf("file://%s", fx.repo);
	fx.cache = xstrdup(tpath("cache"));
	setenv("ROLLOUT_TASK_CACHE", fx.cache, 1);
	{
		_cleanup_free_ char *p = xasprintf("%s/commits.env", fx.dir);

		if (read_file(p, 4096, &env, &len, &err) < 0 ||
		    sscanf(env, "C1=%40s C2=%40s C3=%40s", fx.c1, fx.c2, fx.c3) != 3) {
			test_fail_at(__FILE__, __LINE__, "commits.env: %s", err.msg);
			return false;
		}
	}
	return true;
}

#define FIXTURE()                                                                                  \
	do {                                                                                       \
		if (!have_git())                                                                   \
			SKIP("git is not installed (apt-get install git)");                        \
		REQUIRE(fixture_setup());                                                          \
	} while (0)

/* A new commit on the fixture repository that rewrites a task; its hash. */
static void repo_commit_task(const char *task, const char *version, char out[41])
{
	_cleanup_free_ char *head = NULL;
	struct err err = {0};
	size_t len;
	_cleanup_free_ char *p = xasprintf("%s/head.txt", fx.dir);

	if (tsh("cd '%s' && printf '%%s %%s\\n' %s %s > tasks/%s/instruction.md && git commit -q "
	        "-am change && git rev-parse HEAD > '%s'",
	        fx.repo, task, version, task, p) != 0 ||
	    read_file(p, 4096, &head, &len, &err) < 0 || len < 40) {
		test_fail_at(__FILE__, __LINE__, "commit to the fixture repository failed");
		return;
	}
	memcpy(out, head, 40);
	out[40] = '\0';
}

static char *instruction(const char *task_dir)
{
	_cleanup_free_ char *p = path_join(task_dir, "instruction.md");
	char *text = NULL;
	struct err err = {0};
	size_t len;

	if (read_file(p, 4096, &text, &len, &err) < 0)
		return xstrdup("(missing)");
	if (len && text[len - 1] == '\n')
		text[len - 1] = '\0';
	return text;
}

#define CHECK_INSTRUCTION(dir, want)                                                               \
	do {                                                                                       \
		_cleanup_free_ char *got_ = instruction(dir);                                      \
		CHECK_STR(got_, want);                                                             \
	} while (0)

static struct dataset_config registry_dc(const char *name, const char *version)
{
	struct dataset_config dc = {0};

	dc.is_registry = true;
	dc.name = (char *)name;
	dc.version = (char *)version;
	dc.registry_path = fx.registry;
	dc.n_tasks = -1;
	return dc;
}

/* Number of entries in the cache root whose name starts with prefix ("" = the
 * task entries: everything but dot-files). */
static int cache_count(const char *prefix)
{
	_cleanup_closedir_ DIR *d = opendir(fx.cache);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d))) {
		if (*prefix ? str_starts_with(e->d_name, prefix) : e->d_name[0] != '.')
			n++;
	}
	return n;
}

static ino_t inode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* --- PEP 440 ------------------------------------------------------------------ */

TEST(pep440_parses_the_spellings_pep440_allows)
{
	static const char *const valid[] = {"1",
	                                    "1.0",
	                                    "v1.0",
	                                    "V2",
	                                    "1!2.0",
	                                    "2024.01.05",
	                                    "1.0a1",
	                                    "1.0.a.1",
	                                    "1.0-alpha1",
	                                    "1.0_beta_2",
	                                    "1.0c3",
	                                    "1.0rc",
	                                    "1.0pre4",
	                                    "1.0preview",
	                                    "1.0.post1",
	                                    "1.0-1",
	                                    "1.0rev2",
	                                    "1.0r",
	                                    "1.0.dev",
	                                    "1.0.dev3",
	                                    "1.0a1.post2.dev3",
	                                    "1.0+local.7",
	                                    "1.0+ubuntu-1_2",
	                                    " 1.0 ",
	                                    "1.0RC1",
	                                    "1.0-post-3"};
	static const char *const invalid[] = {"",      "head",        "latest",
	                                      "1.",    "1..0",        "a1",
	                                      "1.0+",  "1.0+a..b",    "1.0-",
	                                      "1.0 x", "1.0.rc1.rc2", "1.0post1a1",
	                                      "!1",    "1!",          "99999999999999999999999"};
	struct pep440 v;

	for (size_t i = 0; i < ARRAY_SIZE(valid); i++)
		if (!pep440_parse(valid[i], &v))
			test_fail_at(__FILE__, __LINE__, "'%s' should parse", valid[i]);
	for (size_t i = 0; i < ARRAY_SIZE(invalid); i++)
		if (pep440_parse(invalid[i], &v))
			test_fail_at(__FILE__, __LINE__, "'%s' should not parse", invalid[i]);
	REQUIRE(pep440_parse("1!2.3.4rc5.post6.dev7+AbC.8", &v));
	CHECK_INT(v.epoch, 1);
	CHECK_INT(v.n_release, 3);
	CHECK_INT(v.release[2], 4);
	CHECK_INT(v.pre_kind, 2);
	CHECK_INT(v.pre, 5);
	CHECK(v.has_post);
	CHECK_INT(v.post, 6);
	CHECK(v.has_dev);
	CHECK_INT(v.dev, 7);
	CHECK_STR(v.local, "abc.8");
}

static int vcmp(const char *a, const char *b)
{
	struct pep440 x, y;

	if (!pep440_parse(a, &x) || !pep440_parse(b, &y)) {
		test_fail_at(__FILE__, __LINE__, "'%s' or '%s' does not parse", a, b);
		return 99;
	}
	return pep440_compare(&x, &y);
}

TEST(pep440_orders_versions_like_pep440)
{
	/* Strictly increasing. */
	static const char *const order[] = {
	    "0.9",         "1.0.dev0",  "1.0.dev5", "1.0a1.dev1", "1.0a1",
	    "1.0a1.post1", "1.0a2",     "1.0b1",    "1.0rc1",     "1.0",
	    "1.0+abc",     "1.0+abc.5", "1.0+5",    "1.0+6",      "1.0.post1.dev1",
	    "1.0.post1",   "1.0.post2", "1.0.1",    "1.2",        "1.10",
	    "2.0",         "2024.1",    "1!0.1"};
	static const char *const same[][2] = {
	    {"1.0", "1.0.0"},       {"v1.0", "1.0"},        {"1.0a", "1.0a0"},
	    {"1.0alpha1", "1.0a1"}, {"1.0-1", "1.0.post1"}, {"1.0rev1", "1.0.post1"},
	    {"1.0c1", "1.0rc1"},    {"1.0pre1", "1.0rc1"},  {"1.0.dev", "1.0dev0"},
	    {"1.0RC1", "1.0rc1"},   {"1.0+AbC", "1.0+abc"}, {"1.0+a-b", "1.0+a.b"},
	    {"1.0+007", "1.0+7"},   {"0!1.0", "1.0"}};

	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		for (size_t j = 0; j < ARRAY_SIZE(order); j++) {
			int c = vcmp(order[i], order[j]);
			int want = i < j ? -1 : i > j;

			if (c != want)
				test_fail_at(__FILE__, __LINE__, "compare(%s, %s) = %d, want %d",
				             order[i], order[j], c, want);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(same); i++)
		if (vcmp(same[i][0], same[i][1]) != 0 || vcmp(same[i][1], same[i][0]) != 0)
			test_fail_at(__FILE__, __LINE__, "'%s' and '%s' should be equal",
			             same[i][0], same[i][1]);
}

/* --- registry.json ------------------------------------------------------------ */

static void check_registry_dir(const char *kind, bool want_ok)
{
	_cleanup_free_ char *dir = xasprintf("testdata/registry/%s", kind);
	_cleanup_strvs_ struct strv names = STRV_INIT;

	testdata_chdir();
	testdata_list(dir, ".json", &names);
	REQUIRE(names.n > 0);
	for (size_t i = 0; i < names.n; i++) {
		_cleanup_free_ char *path = xasprintf("%s/%s", dir, names.v[i]);
		_cleanup_free_ char *expected = xasprintf("%s.expected", path);
		_cleanup_free_ char *got = NULL;
		_cleanup_diags_ struct diags d = DIAGS_INIT;
		struct registry reg;
		int r = registry_load_file_diags(path, &reg, &d);

		if ((r == 0) != want_ok)
			test_fail_at(__FILE__, __LINE__, "%s: load returned %d", path, r);
		got = testdata_diags_text(&d);
		testdata_expect(expected, got);
		registry_release(&reg);
	}
}

TEST(registry_testdata_valid_files)
{
	check_registry_dir("valid", true);
}

TEST(registry_testdata_invalid_files_give_every_problem)
{
	check_registry_dir("invalid", false);
}

TEST(registry_reads_fields_and_resolves_local_paths_next_to_the_file)
{
	struct registry reg;
	struct err err = {0};
	const struct registry_dataset *d;

	testdata_chdir();
	REQUIRE(registry_load_file("testdata/registry/valid/local.json", &reg, &err) == 0);
	CHECK_STR(reg.source, "testdata/registry/valid/local.json");
	CHECK_INT(reg.n_datasets, 3);
	d = &reg.datasets[0];
	CHECK_STR(d->name, "local");
	CHECK_STR(d->version, "1.0");
	CHECK_STR(d->description, "tasks next to this file and elsewhere");
	REQUIRE(d->n_tasks == 3);
	CHECK_STR(d->tasks[0].name, "one");
	CHECK_STR(d->tasks[0].path, "testdata/registry/valid/tasks/one");
	CHECK(d->tasks[0].git_url == NULL);
	CHECK_STR(d->tasks[1].name, "two");
	CHECK_STR(d->tasks[1].path, "/srv/tasks/task-2/");
	CHECK_STR(d->tasks[2].path, "x/y/pinned");
	CHECK_STR(d->tasks[2].git_commit_id, "0123456789abcdef0123456789abcdef01234567");
	CHECK_INT(d->tasks[2].line, 9);
	REQUIRE(d->n_metrics == 2);
	CHECK_STR(d->metrics[0].type, "mean");
	CHECK_STR(d->metrics[1].type, "uv-script");
	CHECK_STR(json_get_str(d->metrics[1].kwargs, "script_path"), "m.py");
	CHECK_STR(reg.datasets[1].description, "");
	CHECK_INT(reg.datasets[2].n_metrics, 0);
	d = registry_find(&reg, "local", NULL, &err);
	REQUIRE(d);
	CHECK_STR(d->version, "2.0rc1"); /* pre-releases count, as in Harbor */
	registry_release(&reg);
}

TEST(registry_find_follows_harbors_version_rules)
{
	struct registry reg;
	struct err err = {0};
	const struct registry_dataset *d;

	testdata_chdir();
	REQUIRE(registry_load_file("testdata/registry/versions.json", &reg, &err) == 0);
	d = registry_find(&reg, "with-head", NULL, &err);
	REQUIRE(d);
	CHECK_STR(d->version, "head");
	/* Highest valid PEP 440 version; "latest" is not one and is passed over. */
	d = registry_find(&reg, "pep", NULL, &err);
	REQUIRE(d);
	CHECK_STR(d->version, "1.10");
	/* None valid: the bytewise last. */
	d = registry_find(&reg, "words", NULL, &err);
	REQUIRE(d);
	CHECK_STR(d->version, "gamma");
	d = registry_find(&reg, "one", NULL, &err);
	REQUIRE(d);
	CHECK_STR(d->version, "2024.01");
	d = registry_find(&reg, "pep", "1.10rc1", &err);
	REQUIRE(d);
	CHECK_STR(d->version, "1.10rc1");
	d = registry_find(&reg, "pep", "latest", &err);
	REQUIRE(d);
	CHECK_STR(d->version, "latest");
	/* Exact strings only: 1.2.0 is not looked up as 1.2. */
	CHECK(registry_find(&reg, "pep", "1.2.0", &err) == NULL);
	CHECK_STR(err.msg,
	          "dataset 'pep' has no version '1.2.0' in testdata/registry/versions.json "
	          "(versions: 1.2, 1.10, 1.10rc1, 1.9.post3, latest)");
	CHECK(registry_find(&reg, "nope", NULL, &err) == NULL);
	CHECK_STR(err.msg, "no dataset 'nope' in testdata/registry/versions.json (it has: "
	                   "with-head, pep, words, one)");
	registry_release(&reg);
}

TEST(registry_parse_ref_splits_name_and_version)
{
	char *name, *version;
	struct err err = {0};

	REQUIRE(registry_parse_ref("terminal-bench@2.0", &name, &version, &err) == 0);
	CHECK_STR(name, "terminal-bench");
	CHECK_STR(version, "2.0");
	free(name);
	free(version);
	REQUIRE(registry_parse_ref("demo", &name, &version, &err) == 0);
	CHECK_STR(name, "demo");
	CHECK(version == NULL);
	free(name);
	CHECK(registry_parse_ref("@1.0", &name, &version, &err) < 0);
	CHECK_STR(err.msg, "'@1.0': expected NAME or NAME@VERSION");
	CHECK(registry_parse_ref("demo@", &name, &version, &err) < 0);
	CHECK(registry_parse_ref("", &name, &version, &err) < 0);
}

TEST(registry_open_needs_exactly_one_source)
{
	struct registry reg;
	struct err err = {0};

	CHECK(registry_open(NULL, NULL, &reg, &err) < 0);
	CHECK_CONTAINS(err.msg, "pass --registry-path FILE");
	CHECK(registry_open("a.json", "file:///a.json", &reg, &err) < 0);
	CHECK_STR(err.msg, "give a registry path or a registry URL, not both");
	CHECK(registry_open("/nonexistent/registry.json", NULL, &reg, &err) < 0);
	CHECK_CONTAINS(err.msg, "/nonexistent/registry.json");
	CHECK_CONTAINS(err.msg, "No such file or directory");
}

TEST(registry_url_file_scheme)
{
	_cleanup_free_ char *src = path_real(test_srcdir());
	_cleanup_free_ char *abs = xasprintf("%s/testdata/registry/versions.json", src);
	_cleanup_free_ char *url = xasprintf("file://%s", abs);
	_cleanup_free_ char *url_host = xasprintf("file://localhost%s", abs);
	struct registry reg;
	struct err err = {0};

	REQUIRE(registry_load_url(url, &reg, &err) == 0);
	CHECK_INT(reg.n_datasets, 12);
	registry_release(&reg);
	REQUIRE(registry_load_url(url_host, &reg, &err) == 0);
	registry_release(&reg);
	/* Percent-escapes are decoded. */
	{
		_cleanup_free_ char *dir = xstrdup(tpath("with space"));
		_cleanup_free_ char *file = xasprintf("%s/r.json", dir);
		_cleanup_free_ char *u = xasprintf("file://%s/with%%20space/r.json", test_tmpdir());

		REQUIRE(mkdir(dir, 0755) == 0);
		REQUIRE(write_file(file, "[]", 2, 0644, &err) == 0);
		REQUIRE(registry_load_url(u, &reg, &err) == 0);
		CHECK_INT(reg.n_datasets, 0);
		registry_release(&reg);
	}
	CHECK(registry_load_url("file://example.com/registry.json", &reg, &err) < 0);
	CHECK_CONTAINS(err.msg, "a file URL names a local absolute path");
	CHECK(registry_load_url("ftp://example.com/registry.json", &reg, &err) < 0);
	CHECK_CONTAINS(err.msg, "unsupported registry URL");
}

TEST(registry_url_https_is_fetched_over_tls)
{
	struct registry reg;
	struct err err = {0};

	/* Nothing listens there: the error is the connection's, not a refusal.
	 * (test_tls and tests/integration/test_datasets.sh fetch over TLS.) */
	CHECK(registry_load_url("https://127.0.0.1:1/registry.json", &reg, &err) < 0);
	CHECK_CONTAINS(err.msg, "https://127.0.0.1:1/registry.json: connect to 127.0.0.1:1");
}

/* A one-shot HTTP server on 127.0.0.1: answers connection i with
 * responses[i]. Returns its pid; *port is where it listens. */
static pid_t http_server(const char *const *responses, size_t n, int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pid_t pid;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	*port = ntohs(a.sin_port);
	pid = fork();
	if (pid == 0) {
		for (size_t i = 0; i < n; i++) {
			int c = accept(fd, NULL, NULL);
			char buf[4096];
			size_t got = 0;

			if (c < 0)
				_exit(1);
			while (got < sizeof(buf) - 1) {
				ssize_t r = read(c, buf + got, sizeof(buf) - 1 - got);

				if (r <= 0)
					break;
				got += (size_t)r;
				buf[got] = '\0';
				if (strstr(buf, "\r\n\r\n"))
					break;
			}
			if (write_all(c, responses[i], strlen(responses[i])) < 0)
				_exit(1);
			close(c);
		}
		_exit(0);
	}
	close(fd);
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

TEST(registry_url_http_content_length_chunked_redirects_and_errors)
{
	static const char body[] =
	    "[{\"name\": \"web\", \"version\": \"1\", \"tasks\": [{\"git_url\": "
	    "\"https://example.com/r.git\", \"path\": \"t\"}]}]";
	_cleanup_free_ char *plain = xasprintf(
	    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    strlen(body), body);
	_cleanup_free_ char *chunked =
	    xasprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: "
	              "chunked\r\n\r\n5\r\n%.5s\r\n%zx;ext=1\r\n%s\r\n0\r\n\r\n",
	              body, strlen(body) - 5, body + 5);
	const char *redirect = "HTTP/1.1 302 Found\r\nLocation: /moved/registry.json\r\n"
	                       "Content-Length: 0\r\n\r\n";
	const char *not_found = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found";
	const char *to_https = "HTTP/1.1 301 Moved Permanently\r\nLocation: "
	                       "https://127.0.0.1:1/registry.json\r\n\r\n";
	const char *local_path = "HTTP/1.1 200 OK\r\n\r\n[{\"name\": \"l\", \"version\": \"1\", "
	                         "\"tasks\": [{\"path\": \"tasks/a\"}]}]";
	const char *responses[] = {plain,     chunked,  redirect,  plain,
	                           not_found, to_https, local_path};
	struct registry reg;
	struct err err = {0};
	int port = 0;
	pid_t pid = http_server(responses, ARRAY_SIZE(responses), &port);
	_cleanup_free_ char *url = xasprintf("http://127.0.0.1:%d/registry.json", port);

	REQUIRE(pid > 0);
	REQUIRE(registry_load_url(url, &reg, &err) == 0);
	REQUIRE(reg.n_datasets == 1);
	CHECK_STR(reg.datasets[0].name, "web");
	CHECK_STR(reg.source, url);
	registry_release(&reg);
	REQUIRE(registry_load_url(url, &reg, &err) == 0); /* chunked */
	CHECK_INT(reg.n_datasets, 1);
	registry_release(&reg);
	REQUIRE(registry_load_url(url, &reg, &err) == 0); /* redirect, then plain */
	CHECK_INT(reg.n_datasets, 1);
	CHECK_STR(reg.source, url);
	registry_release(&reg);
	CHECK(registry_load_url(url, &reg, &err) < 0);
	CHECK_CONTAINS(err.msg, "HTTP 404 Not Found");
	CHECK(registry_load_url(url, &reg, &err) < 0);
	CHECK_CONTAINS(err.msg, "https://127.0.0.1:1/registry.json: connect to 127.0.0.1:1");
	/* A registry from a URL has no directory for relative local paths. */
	CHECK(registry_load_url(url, &reg, &err) < 0);
	CHECK_CONTAINS(err.msg, ":1: key '[0].tasks[0].path': relative local path \"tasks/a\" "
	                        "in a registry read from a URL");
	reap(pid);
	/* Nothing listens any more. */
	CHECK(registry_load_url(url, &reg, &err) < 0);
	CHECK_CONTAINS(err.msg, "connect to 127.0.0.1");
}

/* --- fetching ----------------------------------------------------------------- */

TEST(fetch_cache_dir_follows_the_environment)
{
	_cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

	setenv("ROLLOUT_TASK_CACHE", "/x/cache", 1);
	setenv("XDG_CACHE_HOME", "/xdg", 1);
	setenv("HOME", "/home/u", 1);
	a = fetch_cache_dir();
	CHECK_STR(a, "/x/cache");
	unsetenv("ROLLOUT_TASK_CACHE");
	b = fetch_cache_dir();
	CHECK_STR(b, "/xdg/rollout/tasks");
	setenv("XDG_CACHE_HOME", "relative", 1); /* ignored, as the XDG spec says */
	c = fetch_cache_dir();
	CHECK_STR(c, "/home/u/.cache/rollout/tasks");
	unsetenv("XDG_CACHE_HOME");
	d = fetch_cache_dir();
	CHECK_STR(d, "/home/u/.cache/rollout/tasks");
}

TEST(fetch_pinned_dataset_then_reuse_it_without_the_repository)
{
	struct dataset_config dc;
	struct registry_fetch f, g;
	struct err err = {0};
	_cleanup_free_ char *moved = NULL;
	ino_t ino;

	FIXTURE();
	dc = registry_dc("demo", "1.0");
	REQUIRE(fetch_registry_dataset(&dc, 0, &f, &err) == 0);
	CHECK_STR(f.ds.name, "demo");
	CHECK_STR(f.version, "1.0");
	CHECK(f.ds.path == NULL);
	REQUIRE(f.ds.n_tasks == 3);
	CHECK_STR(f.ds.tasks[0].name, "hello");
	CHECK_STR(f.ds.tasks[1].name, "count");
	CHECK_STR(f.ds.tasks[2].name, "other");
	for (size_t i = 0; i < 3; i++) {
		CHECK_STR(f.origins[i].commit, fx.c1);
		CHECK(!f.origins[i].reused);
		CHECK_STR(f.origins[i].git_commit_id, fx.c1);
		CHECK(str_starts_with(f.ds.tasks[i].path, fx.cache));
		CHECK_STR(path_basename(f.ds.tasks[i].path), f.ds.tasks[i].name);
		CHECK_STR(f.origins[i].git_url, fx.url);
		CHECK(task_dir_is_valid(f.ds.tasks[i].path, 0));
	}
	CHECK_STR(f.origins[0].repo_path, "tasks/hello");
	CHECK_INSTRUCTION(f.ds.tasks[0].path, "hello v1");
	CHECK_INSTRUCTION(f.ds.tasks[1].path, "count v1");
	REQUIRE(f.n_metrics == 1);
	CHECK_STR(f.metrics[0].type, "mean");
	/* No git metadata in the task, no temp dirs left. */
	{
		_cleanup_free_ char *git = path_join(f.ds.tasks[0].path, ".git");

		CHECK(!path_exists(git));
	}
	CHECK_INT(cache_count(".tmp-"), 0);
	CHECK_INT(cache_count(""), 3);
	ino = inode_of(f.ds.tasks[0].path);

	/* The repository gone: a pinned dataset comes from the cache alone. */
	moved = xasprintf("%s.away", fx.repo);
	REQUIRE(rename(fx.repo, moved) == 0);
	REQUIRE(fetch_registry_dataset(&dc, 0, &g, &err) == 0);
	REQUIRE(g.ds.n_tasks == 3);
	for (size_t i = 0; i < 3; i++) {
		CHECK(g.origins[i].reused);
		CHECK_STR(g.ds.tasks[i].path, f.ds.tasks[i].path);
	}
	CHECK_INT(inode_of(g.ds.tasks[0].path), ino);
	registry_fetch_release(&g);
	/* overwrite fetches again, which needs the repository. */
	dc.overwrite = true;
	CHECK(fetch_registry_dataset(&dc, 0, &g, &err) < 0);
	CHECK_CONTAINS(err.msg, "does not appear to be a git repository");
	REQUIRE(rename(moved, fx.repo) == 0);
	REQUIRE(fetch_registry_dataset(&dc, 0, &g, &err) == 0);
	CHECK(!g.origins[0].reused);
	CHECK(inode_of(g.ds.tasks[0].path) != ino);
	CHECK_INSTRUCTION(g.ds.tasks[0].path, "hello v1");
	CHECK_INT(cache_count(".tmp-"), 0);
	registry_fetch_release(&g);
	registry_fetch_release(&f);
}

TEST(fetch_pinned_tasks_check_out_exactly_their_commit)
{
	struct dataset_config dc;
	struct registry_fetch f;
	struct err err = {0};
	_cleanup_json_ cJSON *meta = NULL;

	FIXTURE();
	dc = registry_dc("demo", "2.0");
	REQUIRE(fetch_registry_dataset(&dc, 0, &f, &err) == 0);
	REQUIRE(f.ds.n_tasks == 3);
	/* hello changed in C2, count only in C3: C2 has hello v2 and count v1. */
	CHECK_INSTRUCTION(f.ds.tasks[0].path, "hello v2");
	CHECK_INSTRUCTION(f.ds.tasks[1].path, "count v1");
	CHECK_INSTRUCTION(f.ds.tasks[2].path, "late v1");
	CHECK_STR(f.origins[0].commit, fx.c2);
	{
		_cleanup_free_ char *entry = xstrdup(f.ds.tasks[0].path);
		_cleanup_free_ char *meta_path = NULL;

		*strrchr(entry, '/') = '\0';
		meta_path = path_join(entry, "fetch.json");
		REQUIRE(json_load_file(meta_path, &meta, &err) == 0);
		CHECK_STR(json_get_str(meta, "commit"), fx.c2);
		CHECK_STR(json_get_str(meta, "git_commit_id"), fx.c2);
		CHECK_STR(json_get_str(meta, "git_url"), fx.url);
		CHECK_STR(json_get_str(meta, "path"), "tasks/hello");
	}
	/* The same task at another commit is another cache entry. */
	{
		struct dataset_config d1 = registry_dc("demo", "1.0");
		struct registry_fetch g;

		REQUIRE(fetch_registry_dataset(&d1, 0, &g, &err) == 0);
		CHECK(strcmp(g.ds.tasks[0].path, f.ds.tasks[0].path) != 0);
		CHECK_INSTRUCTION(g.ds.tasks[0].path, "hello v1");
		CHECK_INSTRUCTION(f.ds.tasks[0].path, "hello v2");
		registry_fetch_release(&g);
	}
	registry_fetch_release(&f);
}

TEST(fetch_head_tasks_follow_head_and_are_reused_while_it_stays)
{
	struct dataset_config dc;
	struct registry_fetch f, g, h;
	struct err err = {0};
	char c4[41];

	FIXTURE();
	dc = registry_dc("demo", NULL); /* "head" */
	REQUIRE(fetch_registry_dataset(&dc, 0, &f, &err) == 0);
	CHECK_STR(f.version, "head");
	REQUIRE(f.ds.n_tasks == 3);
	CHECK_STR(f.origins[0].commit, fx.c3);
	CHECK(f.origins[0].git_commit_id == NULL); /* the registry's: HEAD */
	CHECK(!f.origins[0].reused);
	CHECK_INSTRUCTION(f.ds.tasks[0].path, "hello v2");
	CHECK_INSTRUCTION(f.ds.tasks[1].path, "count v2");
	REQUIRE(f.n_metrics == 1);
	CHECK_STR(f.metrics[0].type, "max");

	REQUIRE(fetch_registry_dataset(&dc, 0, &g, &err) == 0);
	for (size_t i = 0; i < 3; i++) {
		CHECK(g.origins[i].reused);
		CHECK_STR(g.ds.tasks[i].path, f.ds.tasks[i].path);
	}
	registry_fetch_release(&g);

	repo_commit_task("hello", "v3", c4);
	REQUIRE(fetch_registry_dataset(&dc, 0, &h, &err) == 0);
	for (size_t i = 0; i < 3; i++) {
		CHECK(!h.origins[i].reused);
		CHECK_STR(h.origins[i].commit, c4);
		CHECK(strcmp(h.ds.tasks[i].path, f.ds.tasks[i].path) != 0);
	}
	CHECK_INSTRUCTION(h.ds.tasks[0].path, "hello v3");
	CHECK_INSTRUCTION(h.ds.tasks[1].path, "count v2");
	/* The copy fetched at C3 is intact (a job may still be using it). */
	CHECK_INSTRUCTION(f.ds.tasks[0].path, "hello v2");
	registry_fetch_release(&h);
	registry_fetch_release(&f);
}

TEST(fetch_head_tasks_offline_use_the_last_head_seen)
{
	struct dataset_config dc;
	struct registry_fetch f, g;
	struct err err = {0};
	_cleanup_free_ char *moved = NULL;

	FIXTURE();
	dc = registry_dc("demo", "head");
	moved = xasprintf("%s.away", fx.repo);
	/* Never fetched and unreachable: an error that says why. */
	REQUIRE(rename(fx.repo, moved) == 0);
	CHECK(fetch_registry_dataset(&dc, 0, &f, &err) < 0);
	CHECK_CONTAINS(err.msg, "resolve HEAD of ");
	CHECK_CONTAINS(err.msg, "does not appear to be a git repository");
	REQUIRE(rename(moved, fx.repo) == 0);

	REQUIRE(fetch_registry_dataset(&dc, 0, &f, &err) == 0);
	REQUIRE(rename(fx.repo, moved) == 0);
	REQUIRE(fetch_registry_dataset(&dc, 0, &g, &err) == 0);
	for (size_t i = 0; i < g.ds.n_tasks; i++) {
		CHECK(g.origins[i].reused);
		CHECK_STR(g.origins[i].commit, fx.c3);
		CHECK_STR(g.ds.tasks[i].path, f.ds.tasks[i].path);
	}
	registry_fetch_release(&g);
	registry_fetch_release(&f);
}

TEST(fetch_applies_the_filters_before_fetching)
{
	struct dataset_config dc;
	struct registry_fetch f;
	struct err err = {0};
	char *include[] = {"h*", "late", NULL};
	char *exclude[] = {"count", NULL};
	char *nothing[] = {"zzz*", NULL};
	char *everything[] = {"*", NULL};

	FIXTURE();
	dc = registry_dc("demo", "2.0");
	dc.has_task_names = true;
	dc.task_names.v = include;
	dc.task_names.n = 2;
	REQUIRE(fetch_registry_dataset(&dc, 0, &f, &err) == 0);
	REQUIRE(f.ds.n_tasks == 2);
	CHECK_STR(f.ds.tasks[0].name, "hello");
	CHECK_STR(f.ds.tasks[1].name, "late");
	registry_fetch_release(&f);
	/* Only what was kept was fetched. */
	CHECK_INT(cache_count(""), 2);

	dc = registry_dc("demo", "2.0");
	dc.has_exclude_task_names = true;
	dc.exclude_task_names.v = exclude;
	dc.exclude_task_names.n = 1;
	dc.n_tasks = 1;
	REQUIRE(fetch_registry_dataset(&dc, 0, &f, &err) == 0);
	REQUIRE(f.ds.n_tasks == 1);
	CHECK_STR(f.ds.tasks[0].name, "hello");
	CHECK(f.origins[0].reused);
	registry_fetch_release(&f);

	dc = registry_dc("demo", "2.0");
	dc.has_task_names = true;
	dc.task_names.v = nothing;
	dc.task_names.n = 1;
	CHECK(fetch_registry_dataset(&dc, 0, &f, &err) < 0);
	CHECK_STR(err.msg, "task name pattern 'zzz*' matches no task in demo (hello, count, late)");

	dc = registry_dc("demo", "2.0");
	dc.has_exclude_task_names = true;
	dc.exclude_task_names.v = everything;
	dc.exclude_task_names.n = 1;
	CHECK(fetch_registry_dataset(&dc, 0, &f, &err) < 0);
	CHECK_STR(err.msg, "no task of demo is left after excluding task names");
	CHECK_INT(cache_count(""), 2);
}

TEST(fetch_errors_name_the_dataset_the_task_and_the_cause)
{
	struct dataset_config dc;
	struct registry_fetch f;
	struct err err = {0};
	char *pick[] = {NULL, NULL};

	FIXTURE();
	dc = registry_dc("nope", NULL);
	CHECK(fetch_registry_dataset(&dc, 0, &f, &err) < 0);
	CHECK_CONTAINS(err.msg, "no dataset 'nope' in ");
	CHECK_CONTAINS(err.msg, "(it has: demo, mixed, broken)");
	dc = registry_dc("demo", "3.0");
	CHECK(fetch_registry_dataset(&dc, 0, &f, &err) < 0);
	CHECK_CONTAINS(err.msg, "dataset 'demo' has no version '3.0' in ");
	CHECK_CONTAINS(err.msg, "(versions: 1.0, 2.0, head)");

	dc = registry_dc("broken", NULL);
	dc.has_task_names = true;
	dc.task_names.v = pick;
	dc.task_names.n = 1;
	pick[0] = "no-repo";
	CHECK(fetch_registry_dataset(&dc, 0, &f, &err) < 0);
	CHECK_CONTAINS(err.msg, "dataset broken@1: resolve HEAD of file://");
	CHECK_CONTAINS(err.msg, "no-such-repo' does not appear to be a git repository");
	pick[0] = "no-commit";
	CHECK(fetch_registry_dataset(&dc, 0, &f, &err) < 0);
	CHECK_CONTAINS(err.msg,
	               "dataset broken@1: commit 0123456789abcdef0123456789abcdef01234567 of "
	               "file://");
	CHECK_CONTAINS(err.msg, "not our ref");
	pick[0] = "no-path";
	CHECK(fetch_registry_dataset(&dc, 0, &f, &err) < 0);
	CHECK_CONTAINS(err.msg, "has no directory 'tasks/late' at commit");
	CHECK_CONTAINS(err.msg, fx.c1);
	pick[0] = "no-local";
	CHECK(fetch_registry_dataset(&dc, 0, &f, &err) < 0);
	CHECK_CONTAINS(err.msg, "dataset broken@1: task no-local: local path ");
	CHECK_CONTAINS(err.msg, "/local/missing is not a directory");
	/* Failed fetches leave neither entries nor temp dirs. */
	CHECK_INT(cache_count(""), 0);
	CHECK_INT(cache_count(".tmp-"), 0);

	dc = registry_dc("demo", NULL);
	dc.registry_path = NULL;
	CHECK(fetch_registry_dataset(&dc, 0, &f, &err) < 0);
	CHECK_CONTAINS(err.msg, "dataset 'demo': no registry given");
}

TEST(fetch_into_a_download_dir_uses_a_flat_layout)
{
	struct dataset_config dc;
	struct registry_fetch f, g;
	struct err err = {0};
	_cleanup_free_ char *out = xstrdup(tpath("out"));
	_cleanup_free_ char *hello = path_join(out, "hello");
	_cleanup_free_ char *hello_instr = path_join(hello, "instruction.md");
	_cleanup_free_ char *count = path_join(out, "count");
	ino_t count_ino;

	FIXTURE();
	dc = registry_dc("demo", "1.0");
	dc.download_dir = out;
	REQUIRE(fetch_registry_dataset(&dc, 0, &f, &err) == 0);
	REQUIRE(f.ds.n_tasks == 3);
	CHECK_STR(f.ds.tasks[0].path, hello);
	CHECK_INSTRUCTION(hello, "hello v1");
	CHECK(task_dir_is_valid(hello, 0));
	registry_fetch_release(&f);
	/* The copy is not the cache: editing it leaves the cache alone, and the
	 * next fetch puts back what the commit holds; untouched tasks stay. */
	count_ino = inode_of(count);
	REQUIRE(write_file(hello_instr, "edited\n", 7, 0644, &err) == 0);
	REQUIRE(fetch_registry_dataset(&dc, 0, &g, &err) == 0);
	CHECK_INSTRUCTION(hello, "hello v1");
	CHECK_INT(inode_of(count), count_ino);
	for (size_t i = 0; i < 3; i++)
		CHECK(g.origins[i].reused);
	registry_fetch_release(&g);
	/* Another version replaces the copies in place. */
	dc = registry_dc("demo", "2.0");
	dc.download_dir = out;
	REQUIRE(fetch_registry_dataset(&dc, 0, &g, &err) == 0);
	CHECK_INSTRUCTION(hello, "hello v2");
	registry_fetch_release(&g);
	{
		_cleanup_closedir_ DIR *d = opendir(out);
		struct dirent *e;
		int n = 0;

		while (d && (e = readdir(d)))
			n += e->d_name[0] != '.' || str_starts_with(e->d_name, ".rollout-tmp");
		CHECK_INT(n, 4); /* hello count other late, no temp dir */
	}
}

TEST(fetch_mixed_local_and_git_tasks)
{
	struct dataset_config dc;
	struct registry_fetch f;
	struct err err = {0};
	_cleanup_free_ char *alpha = NULL, *out = xstrdup(tpath("flat"));

	FIXTURE();
	alpha = xasprintf("%s/local/alpha", fx.dir);
	dc = registry_dc("mixed", NULL);
	REQUIRE(fetch_registry_dataset(&dc, 0, &f, &err) == 0);
	REQUIRE(f.ds.n_tasks == 2);
	CHECK_STR(f.ds.tasks[0].name, "alpha");
	CHECK_STR(f.ds.tasks[0].path, alpha);
	CHECK(f.origins[0].git_url == NULL);
	CHECK(f.origins[0].commit == NULL);
	CHECK_STR(f.ds.tasks[1].name, "other");
	CHECK_INSTRUCTION(f.ds.tasks[1].path, "other v1");
	registry_fetch_release(&f);
	/* Only `datasets download -o` copies local tasks. */
	dc.download_dir = out;
	REQUIRE(fetch_registry_dataset(&dc, 0, &f, &err) == 0);
	CHECK_STR(f.ds.tasks[0].path, alpha);
	registry_fetch_release(&f);
	REQUIRE(fetch_registry_dataset(&dc, FETCH_COPY_LOCAL, &f, &err) == 0);
	{
		_cleanup_free_ char *want = path_join(out, "alpha");

		CHECK_STR(f.ds.tasks[0].path, want);
		CHECK_INSTRUCTION(want, "alpha v1");
	}
	registry_fetch_release(&f);
}

TEST(fetch_git_task_for_job_task_entries)
{
	struct task_ref_config t = {0};
	struct err err = {0};
	_cleanup_free_ char *out = xstrdup(tpath("dl"));
	char *dir = NULL;

	FIXTURE();
	t.path = "tasks/count";
	t.git_url = fx.url;
	t.git_commit_id = fx.c1;
	REQUIRE(fetch_git_task(&t, &dir, &err) == 0);
	CHECK_INSTRUCTION(dir, "count v1");
	CHECK_STR(path_basename(dir), "count");
	free(dir);
	t.git_commit_id = NULL; /* HEAD = C3 */
	REQUIRE(fetch_git_task(&t, &dir, &err) == 0);
	CHECK_INSTRUCTION(dir, "count v2");
	free(dir);
	t.download_dir = out;
	REQUIRE(fetch_git_task(&t, &dir, &err) == 0);
	{
		_cleanup_free_ char *want = path_join(out, "count");

		CHECK_STR(dir, want);
	}
	free(dir);
	/* Upper-case hashes are accepted; short ones and names are not. */
	t.download_dir = NULL;
	{
		_cleanup_free_ char *upper = xstrdup(fx.c2);

		for (char *p = upper; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		t.git_commit_id = upper;
		REQUIRE(fetch_git_task(&t, &dir, &err) == 0);
		CHECK_INSTRUCTION(dir, "count v1");
		free(dir);
	}
	t.git_commit_id = "main";
	CHECK(fetch_git_task(&t, &dir, &err) < 0);
	CHECK_CONTAINS(err.msg, "git_commit_id 'main' is not a full commit hash");
	t.git_commit_id = NULL;
	t.path = "../outside";
	CHECK(fetch_git_task(&t, &dir, &err) < 0);
	CHECK_CONTAINS(err.msg, "the path must be a directory inside the repository");
	/* No git_url: the path as it is. */
	t.git_url = NULL;
	t.path = "some/local/task";
	REQUIRE(fetch_git_task(&t, &dir, &err) == 0);
	CHECK_STR(dir, "some/local/task");
	free(dir);
}

TEST(fetch_refuses_a_task_path_through_a_symlink)
{
	struct err err = {0};
	struct fetched_task ft;
	_cleanup_free_ char *repo = NULL, *url = NULL;
	struct git_task link = {0}, via = {0};

	if (!have_git())
		SKIP("git is not installed (apt-get install git)");
	fx.cache = xstrdup(tpath("cache"));
	setenv("ROLLOUT_TASK_CACHE", fx.cache, 1);
	repo = xstrdup(tpath("evil"));
	url = xasprintf("file://%s", repo);
	REQUIRE(tsh("git init -q -b main '%s' && cd '%s' && mkdir real && echo x > real/f && "
	            "ln -s /etc escape && ln -s real alias && git add -A && git -c "
	            "user.email=a@b -c user.name=t commit -q -m evil",
	            repo, repo) == 0);
	/* git's sparse patterns match directories only, so a symlink is not even
	 * checked out; the walk without following links refuses it either way. */
	link = (struct git_task){.git_url = url, .path = "escape"};
	CHECK(fetch_git_tasks(&link, 1, NULL, &ft, &err) < 0);
	CHECK_CONTAINS(err.msg, "'escape'");
	via = (struct git_task){.git_url = url, .path = "alias/f"};
	CHECK(fetch_git_tasks(&via, 1, NULL, &ft, &err) < 0);
	CHECK_CONTAINS(err.msg, "'alias/f'");
	CHECK_INT(cache_count(""), 0);
	via.path = "real";
	REQUIRE(fetch_git_tasks(&via, 1, NULL, &ft, &err) == 0);
	CHECK_STR(path_basename(ft.dir), "real");
	fetched_task_release(&ft);
	/* Names and paths are checked before git runs. */
	via.path = "a/../real";
	CHECK(fetch_git_tasks(&via, 1, NULL, &ft, &err) < 0);
	CHECK_CONTAINS(err.msg, "expected a clean relative path");
	via.path = "real";
	via.name = "..";
	CHECK(fetch_git_tasks(&via, 1, NULL, &ft, &err) < 0);
	CHECK_CONTAINS(err.msg, "'..' cannot be a directory name");
}

TEST(fetch_from_concurrent_processes_into_one_cache)
{
	enum { N = 4 };
	pid_t pids[N];

	FIXTURE();
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		REQUIRE(pids[i] >= 0);
		if (pids[i] == 0) {
			struct dataset_config a = registry_dc(i % 2 ? "demo" : "mixed", NULL);
			struct dataset_config b = registry_dc("demo", "2.0");
			struct registry_fetch f;
			struct err err = {0};

			if (fetch_registry_dataset(&a, 0, &f, &err) < 0) {
				fprintf(stderr, "child %d: %s\n", i, err.msg);
				_exit(1);
			}
			registry_fetch_release(&f);
			if (fetch_registry_dataset(&b, 0, &f, &err) < 0) {
				fprintf(stderr, "child %d: %s\n", i, err.msg);
				_exit(1);
			}
			for (size_t k = 0; k < f.ds.n_tasks; k++)
				if (!task_dir_is_valid(f.ds.tasks[k].path, 0))
					_exit(2);
			registry_fetch_release(&f);
			_exit(0);
		}
	}
	for (int i = 0; i < N; i++) {
		int st;

		REQUIRE(waitpid(pids[i], &st, 0) == pids[i]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	/* demo@head 3 + demo@2.0 3 + mixed's other (C1) 1, each fetched once. */
	CHECK_INT(cache_count(""), 7);
	CHECK_INT(cache_count(".tmp-"), 0);
}

TEST(fetch_waits_for_the_lock_of_another_process)
{
	struct dataset_config dc;
	struct registry_fetch f;
	struct err err = {0};
	_cleanup_free_ char *locks = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *e;
	int held[3], n = 0, pipefd[2];
	pid_t pid;

	FIXTURE();
	dc = registry_dc("demo", "1.0");
	REQUIRE(fetch_registry_dataset(&dc, 0, &f, &err) == 0);
	registry_fetch_release(&f);
	/* Hold every entry's lock, start a fetch, see it wait, release. */
	locks = path_join(fx.cache, ".locks");
	d = opendir(locks);
	while (d && (e = readdir(d)) && n < 3) {
		if (e->d_name[0] == '.')
			continue;
		held[n] = openat(dirfd(d), e->d_name, O_RDWR | O_CLOEXEC);
		REQUIRE(held[n] >= 0 && flock(held[n], LOCK_EX) == 0);
		n++;
	}
	REQUIRE(n == 3);
	REQUIRE(pipe(pipefd) == 0);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		/* Inherited copies would keep the parent's locks alive. */
		for (int i = 0; i < n; i++)
			close(held[i]);
		close(pipefd[0]);
		if (fetch_registry_dataset(&dc, 0, &f, &err) < 0)
			_exit(1);
		(void)!write(pipefd[1], "x", 1);
		_exit(0);
	}
	close(pipefd[1]);
	{
		struct pollfd p = {.fd = pipefd[0], .events = POLLIN};

		/* Still waiting while the locks are held. */
		CHECK(poll(&p, 1, 300) == 0);
	}
	for (int i = 0; i < n; i++)
		close(held[i]);
	{
		char c;
		int st;

		CHECK(read(pipefd[0], &c, 1) == 1);
		REQUIRE(waitpid(pid, &st, 0) == pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	close(pipefd[0]);
}

TEST(fetch_removes_what_an_interrupted_fetch_left)
{
	struct dataset_config dc;
	struct registry_fetch f;
	struct err err = {0};
	_cleanup_free_ char *stale = NULL, *live = NULL, *junk = NULL;
	struct timeval old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
	int live_fd;

	FIXTURE();
	stale = path_join(fx.cache, ".tmp-dead01");
	live = path_join(fx.cache, ".tmp-live01");
	junk = path_join(stale, "repo/tasks/hello");
	REQUIRE(mkdir_p(junk, 0755, &err) == 0);
	REQUIRE(mkdir_p(live, 0755, &err) == 0);
	REQUIRE(utimes(stale, old) == 0);
	REQUIRE(utimes(live, old) == 0);
	/* A temp dir whose owner is alive holds its lock: it stays. */
	live_fd = open(live, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(live_fd >= 0 && flock(live_fd, LOCK_EX) == 0);
	dc = registry_dc("demo", "1.0");
	REQUIRE(fetch_registry_dataset(&dc, 0, &f, &err) == 0);
	registry_fetch_release(&f);
	CHECK(!path_exists(stale));
	CHECK(path_exists(live));
	close(live_fd);
	/* An entry without its metadata (a copy cut short) is fetched again. */
	{
		_cleanup_free_ char *meta = NULL;

		REQUIRE(fetch_registry_dataset(&dc, 0, &f, &err) == 0);
		meta = xasprintf("%.*s/fetch.json",
		                 (int)(strrchr(f.ds.tasks[0].path, '/') - f.ds.tasks[0].path),
		                 f.ds.tasks[0].path);
		CHECK(f.origins[0].reused);
		registry_fetch_release(&f);
		REQUIRE(unlink(meta) == 0);
		REQUIRE(fetch_registry_dataset(&dc, 0, &f, &err) == 0);
		CHECK(!f.origins[0].reused);
		CHECK(f.origins[1].reused);
		CHECK(path_is_file(meta));
		CHECK_INSTRUCTION(f.ds.tasks[0].path, "hello v1");
		registry_fetch_release(&f);
	}
}

TEST(fetch_without_git_says_so)
{
	struct dataset_config dc;
	struct registry_fetch f;
	struct err err = {0};

	FIXTURE();
	setenv("PATH", tpath("empty-bin"), 1);
	dc = registry_dc("demo", "1.0");
	CHECK(fetch_registry_dataset(&dc, 0, &f, &err) < 0);
	CHECK_CONTAINS(err.msg, "git is not installed (no 'git' in PATH)");
	dc = registry_dc("demo", "head");
	CHECK(fetch_registry_dataset(&dc, 0, &f, &err) < 0);
	CHECK_CONTAINS(err.msg, "git is not installed (no 'git' in PATH)");
	CHECK_INT(cache_count(".tmp-"), 0);
}

static bool process_gone(pid_t pid)
{
	_cleanup_free_ char *stat_path = xasprintf("/proc/%d/stat", (int)pid);
	_cleanup_free_ char *text = NULL;
	struct err err = {0};
	size_t len;
	const char *p;

	if (read_file(stat_path, 4096, &text, &len, &err) < 0)
		return true;
	p = strrchr(text, ')');
	return p && (p[2] == 'Z' || p[2] == 'X');
}

TEST(fetch_kills_a_git_that_hangs)
{
	struct dataset_config dc;
	struct registry_fetch f;
	struct err err = {0};
	_cleanup_free_ char *bin = xstrdup(tpath("bin"));
	_cleanup_free_ char *git = path_join(bin, "git");
	_cleanup_free_ char *pids = xstrdup(tpath("pids"));
	_cleanup_free_ char *script =
	    xasprintf("#!/bin/sh\nsleep 300 &\necho $$ $! > '%s'\nwait\n", pids);
	_cleanup_free_ char *text = NULL;
	size_t len;
	int a = 0, b = 0;

	FIXTURE();
	REQUIRE(mkdir_p(bin, 0755, &err) == 0);
	REQUIRE(write_file(git, script, strlen(script), 0755, &err) == 0);
	{
		_cleanup_free_ char *path = xasprintf("%s:/usr/bin:/bin", bin);

		setenv("PATH", path, 1);
	}
	setenv("ROLLOUT_GIT_TIMEOUT_SEC", "1", 1);
	dc = registry_dc("demo", "1.0");
	CHECK(fetch_registry_dataset(&dc, 0, &f, &err) < 0);
	CHECK_INT(err.code, ETIMEDOUT);
	CHECK_CONTAINS(err.msg, "git clone --quiet --filter=blob:none --depth 1 --no-checkout -- ");
	CHECK_CONTAINS(err.msg, "no result after 1 s (ROLLOUT_GIT_TIMEOUT_SEC sets the limit)");
	REQUIRE(read_file(pids, 100, &text, &len, &err) == 0);
	REQUIRE(sscanf(text, "%d %d", &a, &b) == 2);
	/* The whole process group went, the grandchild too. */
	for (int i = 0; i < 50 && !(process_gone(a) && process_gone(b)); i++)
		usleep(20000);
	CHECK(process_gone(a));
	CHECK(process_gone(b));
	CHECK_INT(cache_count(".tmp-"), 0);
}

/* Found by fuzz_registry: a registry that did not load cleanly has datasets
 * without a name or version; a lookup must pass over them. */
TEST(registry_find_passes_over_the_holes_of_a_failed_load)
{
	_cleanup_diags_ struct diags d = DIAGS_INIT;
	struct registry reg;
	struct err err = {0};
	const struct registry_dataset *ds;

	testdata_chdir();
	REQUIRE(registry_load_file_diags("testdata/registry/invalid/fields.json", &reg, &d) < 0);
	REQUIRE(reg.n_datasets == 4);
	CHECK(reg.datasets[0].name == NULL);
	ds = registry_find(&reg, "demo", NULL, &err);
	REQUIRE(ds);
	CHECK_STR(ds->version, "1.0");
	CHECK(registry_find(&reg, "x", NULL, &err) == NULL);
	CHECK_CONTAINS(err.msg, "(it has: demo)");
	registry_release(&reg);
}

TEST(fetch_git_tasks_twins_share_one_entry)
{
	struct git_task t[3];
	struct fetched_task out[3];
	struct err err = {0};

	FIXTURE();
	t[0] = (struct git_task){.git_url = fx.url, .git_commit_id = fx.c1, .path = "tasks/hello"};
	t[1] = t[0];
	t[2] = (struct git_task){.git_url = fx.url, .path = "tasks/hello"}; /* HEAD = C3 */
	REQUIRE(fetch_git_tasks(t, 3, NULL, out, &err) == 0);
	CHECK_STR(out[0].dir, out[1].dir);
	CHECK(!out[0].reused && !out[1].reused);
	CHECK(strcmp(out[0].dir, out[2].dir) != 0);
	CHECK_STR(out[2].commit, fx.c3);
	CHECK_INSTRUCTION(out[0].dir, "hello v1");
	CHECK_INSTRUCTION(out[2].dir, "hello v2");
	CHECK_INT(cache_count(""), 2);
	for (int i = 0; i < 3; i++)
		fetched_task_release(&out[i]);
	REQUIRE(fetch_git_tasks(t, 3, NULL, out, &err) == 0);
	for (int i = 0; i < 3; i++) {
		CHECK(out[i].reused);
		fetched_task_release(&out[i]);
	}
}
