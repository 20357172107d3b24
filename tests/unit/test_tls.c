/* Unit tests for src/util/tls.c against `openssl s_server` on 127.0.0.1, with a
 * CA and certificates the test makes: TLS 1.2 and 1.3, DNS and IP names, a
 * wrong name, an unknown CA, an expired certificate, a client certificate,
 * SSL_CERT_FILE, insecure mode, a plain-HTTP answer, the handshake deadline. */
#include "harness.h"
#include "providers/docker/api.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/http.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"
#include "rollout/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* The certificates, made once per run in the test directory. */
static const char *pki(void)
{
	static const char *dir;
	static bool failed;
	static const char script[] =
	    "set -e; cd \"$1\"; exec 2>pki.log\n"
	    "o=openssl\n"
	    "$o req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 "
	    "-subj /CN=test-CA -addext basicConstraints=critical,CA:TRUE\n"
	    "$o req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.crt -days 2 "
	    "-subj /CN=other-CA -addext basicConstraints=critical,CA:TRUE\n"
	    "leaf() { # NAME SAN [CA] [EXTRA]\n"
	    "  $o req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key "
	    "-out $1.csr -subj /CN=$1\n"
	    "  printf 'subjectAltName=%s\\n%s\\n' \"$2\" \"$4\" >$1.ext\n"
	    "  $o x509 -req -in $1.csr -CA ${3:-ca}.crt -CAkey ${3:-ca}.key -CAcreateserial "
	    "-days 2 -out $1.crt -extfile $1.ext\n"
	    "}\n"
	    "leaf srv DNS:localhost,IP:127.0.0.1\n"
	    "leaf wrong DNS:wrong.example\n"
	    "leaf stranger DNS:localhost,IP:127.0.0.1 other-ca\n"
	    "leaf client DNS:client ca extendedKeyUsage=clientAuth\n"
	    /* An expired certificate: `openssl ca` takes explicit dates. */
	    "mkdir -p db; : >db/index.txt; echo 01 >db/serial\n"
	    "cat >ca.cnf <<EOF\n"
	    "[ca]\ndefault_ca=d\n[d]\ndatabase=db/index.txt\nnew_certs_dir=db\n"
	    "serial=db/serial\ncertificate=ca.crt\nprivate_key=ca.key\ndefault_md=sha256\n"
	    "policy=p\n[p]\ncommonName=supplied\nEOF\n"
	    "$o req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout old.key "
	    "-out old.csr -subj /CN=old\n"
	    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' >old.ext\n"
	    "$o ca -batch -config ca.cnf -startdate 20200101000000Z -enddate 20200102000000Z "
	    "-in old.csr -out old.crt -extfile old.ext -notext\n";

	if (dir || failed)
		return dir;
	if (tsh("command -v openssl >/dev/null") != 0) {
		failed = true;
		return NULL;
	}
	{
		_cleanup_free_ char *d = xasprintf("%s/pki", test_tmpdir());
		_cleanup_free_ char *s = xasprintf("%s/pki.sh", test_tmpdir());
		FILE *f = fopen(s, "w");

		if (!f || fputs(script, f) < 0 || fclose(f) != 0 ||
		    tsh("mkdir -p %s && sh %s %s", d, s, d) != 0) {
			tsh("cat %s/pki.log >&2", d);
			failed = true;
			return NULL;
		}
		dir = steal_ptr(&d);
	}
	return dir;
}

static const char *pem(const char *name)
{
	return tfmt("%s/%s", pki(), name);
}

#define NEED_PKI()                                                                                 \
	do {                                                                                       \
		if (!pki())                                                                        \
			SKIP("openssl is missing or could not make the certificates");             \
	} while (0)

struct server {
	pid_t pid;
	int port;
};

static void server_stop(struct server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
	}
	s->pid = 0;
}

/* Stopped when the test returns, REQUIRE failures included. */
#define _cleanup_server_ __attribute__((cleanup(server_stop)))

/* `openssl s_server -www` on 127.0.0.1 with a free port; extra: more flags.
 * Its output goes to a file; waits for the "ACCEPT 127.0.0.1:PORT" line. */
static int server_start(struct server *s, const char *name, const char *extra)
{
	static int n;
	_cleanup_free_ char *log = xasprintf("%s/s_server.%d.log", test_tmpdir(), n++);
	_cleanup_free_ char *cmd =
	    xasprintf("exec openssl s_server -www -accept 127.0.0.1:0 -cert %s.crt "
	              "-key %s.key %s >%s 2>&1 </dev/null",
	              name, name, extra ? extra : "", log);
	double deadline = mono_now() + 20;

	s->port = 0;
	s->pid = fork();
	if (s->pid == 0) {
		if (chdir(pki()) < 0)
			_exit(127);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	while (s->pid > 0 && mono_now() < deadline) {
		_cleanup_free_ char *text = NULL;
		size_t len;
		const char *a;
		struct err err = {0};

		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = 0;
			break;
		}
		if (read_file(log, 1 << 20, &text, &len, &err) == 0 &&
		    (a = strstr(text, "ACCEPT 127.0.0.1:")) && strchr(a, '\n')) {
			s->port = atoi(a + strlen("ACCEPT 127.0.0.1:"));
			break;
		}
		poll(NULL, 0, 20); /* the log is a file: check it again shortly */
	}
	if (s->port <= 0) {
		tsh("cat %s >&2", log);
		server_stop(s);
		return -1;
	}
	return 0;
}

/* GET https://host:port/ with cfg; the body on a 200, version: the protocol. */
static int fetch(const char *host, int port, struct tls_config *cfg, struct strbuf *body,
                 char *version, size_t vlen, struct err *err)
{
	_cleanup_free_ char *url = xasprintf("https://%s:%d/", host, port);
	struct http_get g = {.url = url, .timeout = 20, .tls = cfg, .redirects = {.max = 2}};
	int rc;

	if (http_get_open(&g, err) < 0)
		return -1;
	if (version)
		snprintf(version, vlen, "%s", tls_conn_version(g.conn));
	if (g.resp.status != 200) {
		http_get_close(&g);
		return err_set(err, EPROTO, "HTTP %d", g.resp.status);
	}
	rc = http_read_body(&g.resp, body, 1 << 20, g.deadline, err);
	http_get_close(&g);
	return rc;
}

static struct tls_config *config(const char *ca, const char *cert, const char *key, bool insecure)
{
	const char *extra[] = {ca ? pem(ca) : NULL, NULL};
	struct tls_options o = {.ca_file = extra[0], .insecure = insecure};
	struct tls_config *cfg = NULL;
	struct err err = {0};

	if (cert) {
		o.cert_file = xstrdup(pem(cert));
		o.key_file = xstrdup(pem(key));
	}
	if (tls_config_new(&o, &cfg, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "tls_config_new: %s", err.msg);
	free((char *)o.cert_file);
	free((char *)o.key_file);
	return cfg;
}

TEST(tls_1_3_and_1_2_are_negotiated)
{
	NEED_PKI();
	struct tls_config *cfg = config("ca.crt", NULL, NULL, false);
	const char *flags[] = {"-tls1_3", "-tls1_2"};
	const char *want[] = {"TLSv1.3", "TLSv1.2"};

	REQUIRE(cfg);
	CHECK_INT(tls_config_ca_count(cfg), 1);
	for (size_t i = 0; i < 2; i++) {
		_cleanup_server_ struct server s = {0};
		_cleanup_sb_ struct strbuf body = STRBUF_INIT;
		struct err err = {0};
		char version[32] = "";

		REQUIRE(server_start(&s, "srv", flags[i]) == 0);
		if (fetch("localhost", s.port, cfg, &body, version, sizeof(version), &err) < 0)
			test_fail_at(__FILE__, __LINE__, "%s: %s", flags[i], err.msg);
		CHECK_STR(version, want[i]);
		CHECK_CONTAINS(sb_str(&body), want[i]);
		server_stop(&s);
	}
	tls_config_unref(cfg);
}

TEST(tls_ip_san_is_accepted)
{
	NEED_PKI();
	struct tls_config *cfg = config("ca.crt", NULL, NULL, false);
	_cleanup_server_ struct server s = {0};
	_cleanup_sb_ struct strbuf body = STRBUF_INIT;
	struct err err = {0};

	REQUIRE(cfg);
	REQUIRE(server_start(&s, "srv", NULL) == 0);
	if (fetch("127.0.0.1", s.port, cfg, &body, NULL, 0, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	CHECK_CONTAINS(sb_str(&body), "s_server");
	server_stop(&s);
	tls_config_unref(cfg);
}

/* A certificate that fails verification: the reason, host and port. */
static void expect_rejected(const char *cert, const char *host, const char *reason)
{
	struct tls_config *cfg = config("ca.crt", NULL, NULL, false);
	_cleanup_server_ struct server s = {0};
	_cleanup_sb_ struct strbuf body = STRBUF_INIT;
	struct err err = {0};

	REQUIRE(cfg);
	REQUIRE(server_start(&s, cert, NULL) == 0);
	CHECK(fetch(host, s.port, cfg, &body, NULL, 0, &err) < 0);
	CHECK_INT(err.code, EKEYREJECTED);
	CHECK_CONTAINS(err.msg,
	               tfmt("TLS handshake with %s:%d: certificate rejected", host, s.port));
	CHECK_CONTAINS(err.msg, reason);
	server_stop(&s);
	tls_config_unref(cfg);
}

TEST(tls_wrong_name_is_refused)
{
	NEED_PKI();
	expect_rejected("wrong", "localhost", "does not match with the expected CN");
	/* An IP address is checked against IP SANs, not DNS ones. */
	expect_rejected("wrong", "127.0.0.1", "does not match with the expected CN");
}

TEST(tls_unknown_ca_is_refused)
{
	NEED_PKI();
	expect_rejected("stranger", "localhost", "not correctly signed by the trusted CA");
}

TEST(tls_expired_certificate_is_refused)
{
	NEED_PKI();
	expect_rejected("old", "localhost", "has expired");
}

TEST(tls_insecure_skips_verification)
{
	NEED_PKI();
	struct tls_config *cfg = config(NULL, NULL, NULL, true);
	_cleanup_server_ struct server s = {0};
	_cleanup_sb_ struct strbuf body = STRBUF_INIT;
	struct err err = {0};

	REQUIRE(cfg);
	REQUIRE(server_start(&s, "wrong", NULL) == 0);
	if (fetch("localhost", s.port, cfg, &body, NULL, 0, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	server_stop(&s);
	tls_config_unref(cfg);
}

TEST(tls_client_certificate)
{
	NEED_PKI();
	struct tls_config *anon = config("ca.crt", NULL, NULL, false);
	struct tls_config *cert = config("ca.crt", "client.crt", "client.key", false);
	const char *flags[] = {"-tls1_3", "-tls1_2"};

	REQUIRE(anon && cert);
	for (size_t i = 0; i < 2; i++) {
		_cleanup_server_ struct server s = {0};
		_cleanup_sb_ struct strbuf body = STRBUF_INIT;
		struct err err = {0};

		REQUIRE(server_start(&s, "srv",
		                     tfmt("%s -Verify 1 -verify_return_error -CAfile ca.crt",
		                          flags[i])) == 0);
		CHECK(fetch("localhost", s.port, anon, &body, NULL, 0, &err) < 0);
		err_clear(&err);
		if (fetch("localhost", s.port, cert, &body, NULL, 0, &err) < 0)
			test_fail_at(__FILE__, __LINE__, "%s: %s", flags[i], err.msg);
		CHECK_CONTAINS(sb_str(&body), "s_server");
		server_stop(&s);
	}
	tls_config_unref(anon);
	tls_config_unref(cert);
}

TEST(tls_bad_client_files_are_errors)
{
	NEED_PKI();
	struct tls_options o = {.ca_file = pem("ca.crt"), .cert_file = pem("client.crt")};
	struct tls_config *cfg = NULL;
	struct err err = {0};

	CHECK(tls_config_new(&o, &cfg, &err) < 0);
	CHECK_CONTAINS(err.msg, "needs both a certificate and a key");
	o.key_file = pem("client.csr");
	CHECK(tls_config_new(&o, &cfg, &err) < 0);
	CHECK_CONTAINS(err.msg, "client key");
	o.ca_file = "/nonexistent/ca.pem";
	CHECK(tls_config_new(&o, &cfg, &err) < 0);
	CHECK_CONTAINS(err.msg, "CA file /nonexistent/ca.pem: cannot load CA certificates");
}

TEST(tls_ssl_cert_file_is_honoured)
{
	NEED_PKI();
	const char *saved = getenv("SSL_CERT_FILE");
	_cleanup_free_ char *keep = saved ? xstrdup(saved) : NULL;
	struct tls_config *cfg = NULL;
	_cleanup_server_ struct server s = {0};
	_cleanup_sb_ struct strbuf body = STRBUF_INIT;
	struct err err = {0};

	REQUIRE(server_start(&s, "srv", NULL) == 0);
	unsetenv("SSL_CERT_DIR");
	setenv("SSL_CERT_FILE", pem("ca.crt"), 1);
	REQUIRE(tls_config_new(NULL, &cfg, &err) == 0);
	CHECK_INT(tls_config_ca_count(cfg), 1);
	if (fetch("localhost", s.port, cfg, &body, NULL, 0, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	tls_config_unref(cfg);
	/* Another bundle does not know the test CA. */
	setenv("SSL_CERT_FILE", pem("other-ca.crt"), 1);
	REQUIRE(tls_config_new(NULL, &cfg, &err) == 0);
	CHECK(fetch("localhost", s.port, cfg, &body, NULL, 0, &err) < 0);
	CHECK_CONTAINS(err.msg, "not correctly signed by the trusted CA");
	tls_config_unref(cfg);
	setenv("SSL_CERT_FILE", "/nonexistent.pem", 1);
	CHECK(tls_config_new(NULL, &cfg, &err) < 0);
	CHECK_CONTAINS(err.msg, "SSL_CERT_FILE /nonexistent.pem");
	/* SSL_CERT_DIR: a directory of PEM files. */
	unsetenv("SSL_CERT_FILE");
	REQUIRE(tsh("mkdir -p %s/dir && cp %s %s/dir/", pki(), pem("ca.crt"), pki()) == 0);
	setenv("SSL_CERT_DIR", tfmt("/nonexistent:%s/dir", pki()), 1);
	if (tls_config_new(NULL, &cfg, &err) < 0) {
		test_fail_at(__FILE__, __LINE__, "SSL_CERT_DIR: %s", err.msg);
	} else {
		if (fetch("localhost", s.port, cfg, &body, NULL, 0, &err) < 0)
			test_fail_at(__FILE__, __LINE__, "SSL_CERT_DIR: %s", err.msg);
		tls_config_unref(cfg);
	}
	unsetenv("SSL_CERT_DIR");
	if (keep)
		setenv("SSL_CERT_FILE", keep, 1);
	server_stop(&s);
}

/* A listening socket: the kernel completes the TCP handshake, nobody answers. */
static int listener(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	*port = ntohs(sa.sin_port);
	return fd;
}

TEST(tls_handshake_respects_the_deadline)
{
	int port = 0;
	_cleanup_close_ int l = listener(&port);
	_cleanup_free_ char *url = NULL;
	struct http_get g = {.timeout = 1, .redirects = {.max = 0}};
	struct tls_config *cfg = NULL;
	struct err err = {0};
	double t0;

	REQUIRE(l >= 0);
	REQUIRE(tls_config_new(&(struct tls_options){.insecure = true}, &cfg, &err) == 0);
	url = xasprintf("https://127.0.0.1:%d/", port);
	g.url = url;
	g.tls = cfg;
	t0 = mono_now();
	CHECK(http_get_open(&g, &err) < 0);
	CHECK_INT(err.code, ETIMEDOUT);
	CHECK_CONTAINS(err.msg, "no answer within 1 s");
	CHECK(mono_now() - t0 < 5);
	tls_config_unref(cfg);
}

TEST(tls_plain_http_answer_is_named)
{
	int port = 0;
	_cleanup_close_ int l = listener(&port);
	struct http_endpoint ep = {.kind = HTTP_TCP, .tls = true};
	struct http_conn *c = NULL;
	struct err err = {0};
	pid_t pid;

	REQUIRE(l >= 0);
	pid = fork();
	if (pid == 0) {
		int fd = accept(l, NULL, NULL);
		char buf[512];
		static const char answer[] =
		    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

		if (read(fd, buf, sizeof(buf)) < 0 || write(fd, answer, strlen(answer)) < 0)
			_exit(1);
		_exit(0);
	}
	REQUIRE(tls_config_new(&(struct tls_options){.insecure = true}, &ep.tls_config, &err) == 0);
	ep.host = xstrdup("127.0.0.1");
	ep.port = xasprintf("%d", port);
	ep.display = xasprintf("https://127.0.0.1:%d", port);
	CHECK(http_connect(&ep, mono_now() + 10, &c, &err) < 0);
	CHECK_CONTAINS(err.msg, tfmt("TLS handshake with 127.0.0.1:%d", port));
	CHECK_CONTAINS(err.msg, "not TLS");
	http_endpoint_free(&ep);
	waitpid(pid, NULL, 0);
}

/* DOCKER_HOST=tcp://... with DOCKER_TLS_VERIFY=1: DOCKER_CERT_PATH's ca.pem is
 * the only CA and cert.pem/key.pem the client certificate, as a --tlsverify
 * daemon wants (here `openssl s_server -Verify`, which refuses clients without
 * a certificate; starting a second dockerd would take far longer). */
static int ping_endpoint(const struct http_endpoint *ep, struct err *err)
{
	_cleanup_http_conn_ struct http_conn *c = NULL;
	struct http_request req = {.method = "GET", .target = "/"};
	struct http_response r = {0};
	double deadline = mono_now() + 20;
	int rc = -1;

	if (http_connect(ep, deadline, &c, err) < 0 ||
	    http_send_request(c, &req, deadline, err) < 0 ||
	    http_read_response(c, &r, false, deadline, err) < 0)
		goto out;
	rc = r.status == 200 ? 0 : err_set(err, EPROTO, "HTTP %d", r.status);
out:
	http_response_release(&r);
	return rc;
}

TEST(tls_docker_host_with_tls_verify_and_cert_path)
{
	NEED_PKI();
	_cleanup_server_ struct server s = {0};
	struct http_endpoint ep;
	struct err err = {0};
	const char *certs = tdir("docker-certs");

	REQUIRE(tsh("cp %s/ca.crt %s/ca.pem && cp %s/client.crt %s/cert.pem && "
	            "cp %s/client.key %s/key.pem",
	            pki(), certs, pki(), certs, pki(), certs) == 0);
	REQUIRE(server_start(&s, "srv", "-Verify 1 -verify_return_error -CAfile ca.crt") == 0);
	setenv("DOCKER_TLS_VERIFY", "1", 1);
	setenv("DOCKER_CERT_PATH", certs, 1);
	REQUIRE(docker_endpoint_parse(tfmt("tcp://127.0.0.1:%d", s.port), &ep, &err) == 0);
	CHECK(ep.tls);
	REQUIRE(ep.tls_config != NULL);
	CHECK_INT(tls_config_ca_count(ep.tls_config), 1); /* ca.pem only, not the system's */
	if (ping_endpoint(&ep, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	http_endpoint_free(&ep);
	/* the default port is 2376 */
	REQUIRE(docker_endpoint_parse("tcp://127.0.0.1", &ep, &err) == 0);
	CHECK_STR(ep.port, "2376");
	http_endpoint_free(&ep);
	/* without the client certificate the daemon refuses */
	REQUIRE(tsh("rm %s/cert.pem", certs) == 0);
	REQUIRE(docker_endpoint_parse(tfmt("tcp://127.0.0.1:%d", s.port), &ep, &err) == 0);
	CHECK(ping_endpoint(&ep, &err) < 0);
	http_endpoint_free(&ep);
	/* a CA that is not the server's: rejected */
	REQUIRE(tsh("cp %s/other-ca.crt %s/ca.pem", pki(), certs) == 0);
	REQUIRE(docker_endpoint_parse(tfmt("tcp://127.0.0.1:%d", s.port), &ep, &err) == 0);
	CHECK(ping_endpoint(&ep, &err) < 0);
	CHECK_INT(err.code, EKEYREJECTED);
	http_endpoint_free(&ep);
	unsetenv("DOCKER_TLS_VERIFY");
}
