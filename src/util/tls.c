/* TLS client transport over Mbed TLS: CA discovery, configurations shared by
 * connections, a non-blocking handshake under the connection's deadline, and
 * the read/write/pending/close ops util/http.c calls instead of the socket's. */
#include "rollout/tls.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/http.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

struct tls_config {
	int refs;
	bool insecure;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca;
	mbedtls_x509_crt own_cert;
	mbedtls_pk_context own_key;
};

/* Per connection. */
struct tls_conn {
	mbedtls_ssl_context ssl;
	struct tls_config *cfg;
	int fd;
	int saved_errno;    /* the socket error behind a failed bio call */
	size_t write_retry; /* bytes of the record a WANT_WRITE left unsent */
};

/* Distribution bundles, in Go's crypto/x509 order of preference. */
static const char *const system_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu, Alpine, Arch */
    "/etc/pki/tls/certs/ca-bundle.crt",                  /* Fedora, RHEL */
    "/etc/ssl/ca-bundle.pem",                            /* openSUSE */
    "/etc/pki/tls/cacert.pem",                           /* OpenELEC */
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* CentOS, RHEL 7 */
    "/etc/ssl/cert.pem",                                 /* Alpine, macOS-style */
};

static void tls_strerror(int rc, char *buf, size_t n)
{
	mbedtls_strerror(rc, buf, n);
}

/* ---- process-wide setup ----------------------------------------------------------- */

static int crypto_ready(struct err *err)
{
	static bool done;
	psa_status_t st;

	if (done)
		return 0;
	st = psa_crypto_init();
	if (st != PSA_SUCCESS)
		return err_set(err, EIO, "TLS: cannot initialise the crypto library (PSA error %d)",
		               (int)st);
	done = true;
	return 0;
}

static int rng(void *ctx, unsigned char *out, size_t n)
{
	return psa_generate_random(out, n) == PSA_SUCCESS ? 0 : MBEDTLS_ERR_SSL_INTERNAL_ERROR;
}

/* ---- configurations --------------------------------------------------------------- */

static bool is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int add_ca_file(struct tls_config *cfg, const char *path, const char *what, struct err *err)
{
	char msg[128];
	int rc = mbedtls_x509_crt_parse_file(&cfg->ca, path);

	/* A positive result counts certificates skipped; the rest were loaded. */
	if (rc >= 0)
		return 0;
	tls_strerror(rc, msg, sizeof(msg));
	return err_set(err, EINVAL, "%s %s: cannot load CA certificates: %s", what, path, msg);
}

static int add_ca_dirs(struct tls_config *cfg, const char *dirs, struct err *err)
{
	_cleanup_free_ char *copy = xstrdup(dirs);
	char *save = NULL;

	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char msg[128];
		struct stat st;
		int rc;

		/* Like OpenSSL, a directory that does not exist is no error. */
		if (stat(d, &st) < 0 && errno == ENOENT)
			continue;
		rc = mbedtls_x509_crt_parse_path(&cfg->ca, d);
		if (rc >= 0)
			continue;
		tls_strerror(rc, msg, sizeof(msg));
		return err_set(err, EINVAL, "SSL_CERT_DIR %s: cannot load CA certificates: %s", d,
		               msg);
	}
	return 0;
}

static int load_system_cas(struct tls_config *cfg, struct err *err)
{
	const char *file = getenv("SSL_CERT_FILE");
	const char *dirs = getenv("SSL_CERT_DIR");
	bool found = false;

	if (file && *file) {
		if (add_ca_file(cfg, file, "SSL_CERT_FILE", err) < 0)
			return -1;
		found = true;
	} else {
		for (size_t i = 0; i < ARRAY_SIZE(system_bundles) && !found; i++) {
			if (!is_file(system_bundles[i]))
				continue;
			if (add_ca_file(cfg, system_bundles[i], "CA bundle", err) < 0)
				return -1;
			found = true;
		}
	}
	if (dirs && *dirs)
		return add_ca_dirs(cfg, dirs, err);
	if (!found && access("/etc/ssl/certs", R_OK) == 0 &&
	    mbedtls_x509_crt_parse_path(&cfg->ca, "/etc/ssl/certs") < 0)
		return err_set(err, EINVAL, "cannot load the CA certificates in /etc/ssl/certs");
	return 0;
}

static int load_client_cert(struct tls_config *cfg, const struct tls_options *o, struct err *err)
{
	char msg[128];
	int rc;

	if (!o->cert_file != !o->key_file)
		return err_set(err, EINVAL,
		               "a TLS client certificate needs both a certificate "
		               "and a key file");
	rc = mbedtls_x509_crt_parse_file(&cfg->own_cert, o->cert_file);
	if (rc != 0) {
		tls_strerror(rc, msg, sizeof(msg));
		return err_set(err, EINVAL, "client certificate %s: %s", o->cert_file,
		               rc > 0 ? "not a PEM or DER certificate" : msg);
	}
	rc = mbedtls_pk_parse_keyfile(&cfg->own_key, o->key_file, NULL, rng, NULL);
	if (rc != 0) {
		tls_strerror(rc, msg, sizeof(msg));
		return err_set(err, EINVAL, "client key %s: %s", o->key_file, msg);
	}
	rc = mbedtls_ssl_conf_own_cert(&cfg->conf, &cfg->own_cert, &cfg->own_key);
	if (rc != 0) {
		tls_strerror(rc, msg, sizeof(msg));
		return err_set(err, EINVAL, "client certificate %s: %s", o->cert_file, msg);
	}
	return 0;
}

static int config_load(struct tls_config *cfg, const struct tls_options *o, struct err *err)
{
	int rc =
	    mbedtls_ssl_config_defaults(&cfg->conf, MBEDTLS_SSL_IS_CLIENT,
	                                MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);

	if (rc != 0)
		return err_set(err, EIO, "TLS: cannot set up a client configuration (%d)", rc);
	mbedtls_ssl_conf_rng(&cfg->conf, rng, NULL);
	mbedtls_ssl_conf_min_tls_version(&cfg->conf, MBEDTLS_SSL_VERSION_TLS1_2);
	cfg->insecure = o->insecure;
	if (o->ca_file) {
		if (add_ca_file(cfg, o->ca_file, "CA file", err) < 0)
			return -1;
	} else if (!o->insecure && load_system_cas(cfg, err) < 0) {
		return -1;
	}
	for (const char *const *f = o->extra_ca_files; f && *f; f++)
		if (add_ca_file(cfg, *f, "CA file", err) < 0)
			return -1;
	if ((o->cert_file || o->key_file) && load_client_cert(cfg, o, err) < 0)
		return -1;
	if (o->insecure) {
		mbedtls_ssl_conf_authmode(&cfg->conf, MBEDTLS_SSL_VERIFY_NONE);
		return 0;
	}
	if (tls_config_ca_count(cfg) == 0)
		return err_set(err, ENOENT,
		               "no trusted CA certificates: none of the system bundles exists "
		               "(/etc/ssl/certs/ca-certificates.crt, ...); install "
		               "ca-certificates or set SSL_CERT_FILE");
	mbedtls_ssl_conf_authmode(&cfg->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(&cfg->conf, &cfg->ca, NULL);
	return 0;
}

int tls_config_new(const struct tls_options *o, struct tls_config **out, struct err *err)
{
	static const struct tls_options none;
	struct tls_config *cfg;

	*out = NULL;
	if (crypto_ready(err) < 0)
		return -1;
	cfg = xcalloc(1, sizeof(*cfg));
	cfg->refs = 1;
	mbedtls_ssl_config_init(&cfg->conf);
	mbedtls_x509_crt_init(&cfg->ca);
	mbedtls_x509_crt_init(&cfg->own_cert);
	mbedtls_pk_init(&cfg->own_key);
	if (config_load(cfg, o ? o : &none, err) < 0) {
		tls_config_unref(cfg);
		return -1;
	}
	*out = cfg;
	return 0;
}

int tls_config_default(struct tls_config **out, struct err *err)
{
	static struct tls_config *def;

	if (!def && tls_config_new(NULL, &def, err) < 0)
		return -1;
	*out = def;
	return 0;
}

struct tls_config *tls_config_ref(struct tls_config *cfg)
{
	cfg->refs++;
	return cfg;
}

void tls_config_unref(struct tls_config *cfg)
{
	if (!cfg || --cfg->refs > 0)
		return;
	mbedtls_ssl_config_free(&cfg->conf);
	mbedtls_x509_crt_free(&cfg->ca);
	mbedtls_x509_crt_free(&cfg->own_cert);
	mbedtls_pk_free(&cfg->own_key);
	free(cfg);
}

int tls_config_ca_count(const struct tls_config *cfg)
{
	int n = 0;

	for (const mbedtls_x509_crt *c = &cfg->ca; c && c->raw.len; c = c->next)
		n++;
	return n;
}

/* ---- the socket under Mbed TLS ----------------------------------------------------- */

static int bio_send(void *ctx, const unsigned char *buf, size_t n)
{
	struct tls_conn *t = ctx;

	for (;;) {
		ssize_t w = send(t->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w >= 0)
			return (int)w;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return MBEDTLS_ERR_SSL_WANT_WRITE;
		t->saved_errno = errno;
		return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
		                                             : MBEDTLS_ERR_NET_SEND_FAILED;
	}
}

static int bio_recv(void *ctx, unsigned char *buf, size_t n)
{
	struct tls_conn *t = ctx;

	for (;;) {
		ssize_t r = read(t->fd, buf, n);

		if (r >= 0)
			return (int)r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return MBEDTLS_ERR_SSL_WANT_READ;
		t->saved_errno = errno;
		return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
		                           : MBEDTLS_ERR_NET_RECV_FAILED;
	}
}

/* An Mbed TLS result as errno for the transport ops (EAGAIN sets c->want). */
static ssize_t tls_fail(struct http_conn *c, struct tls_conn *t, int rc)
{
	switch (rc) {
	case MBEDTLS_ERR_SSL_WANT_READ:
		c->want = POLLIN;
		errno = EAGAIN;
		break;
	case MBEDTLS_ERR_SSL_WANT_WRITE:
		c->want = POLLOUT;
		errno = EAGAIN;
		break;
	case MBEDTLS_ERR_NET_CONN_RESET:
	case MBEDTLS_ERR_NET_SEND_FAILED:
	case MBEDTLS_ERR_NET_RECV_FAILED:
		errno = t->saved_errno ? t->saved_errno : ECONNRESET;
		break;
	default:
		errno = EPROTO;
		break;
	}
	return -1;
}

/* ---- transport ops ------------------------------------------------------------------ */

static ssize_t tls_read(struct http_conn *c, void *buf, size_t n)
{
	struct tls_conn *t = c->tp_data;

	for (;;) {
		int rc = mbedtls_ssl_read(&t->ssl, buf, n);

		if (rc >= 0)
			return rc;
		/* TLS 1.3 tickets arrive after the handshake; rollout keeps no sessions. */
		if (rc == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
			continue;
		/* close_notify, or a close without one (servers ending a close-delimited
		 * body that way are common; the HTTP framing catches truncation). */
		if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || rc == MBEDTLS_ERR_SSL_CONN_EOF)
			return 0;
		return tls_fail(c, t, rc);
	}
}

/* After WANT_WRITE, Mbed TLS holds an encrypted record and must be called again
 * with the same data; the caller retries with its unsent bytes, which start with
 * those (http_transport's contract), so the record's length is what is
 * reported as written once it is out. */
static ssize_t tls_write(struct http_conn *c, const void *buf, size_t n)
{
	struct tls_conn *t = c->tp_data;
	size_t len = t->write_retry ? t->write_retry : n;
	int max = mbedtls_ssl_get_max_out_record_payload(&t->ssl);
	int rc;

	if (max > 0 && len > (size_t)max)
		len = (size_t)max;
	rc = mbedtls_ssl_write(&t->ssl, buf, len);
	if (rc >= 0) {
		t->write_retry = 0;
		return rc;
	}
	if (rc == MBEDTLS_ERR_SSL_WANT_WRITE || rc == MBEDTLS_ERR_SSL_WANT_READ)
		t->write_retry = len;
	return tls_fail(c, t, rc);
}

static size_t tls_pending(const struct http_conn *c)
{
	struct tls_conn *t = c->tp_data;

	return mbedtls_ssl_get_bytes_avail(&t->ssl);
}

static int tls_close_write(struct http_conn *c)
{
	struct tls_conn *t = c->tp_data;

	/* close_notify (best effort: the socket may be full), then the TCP half-close. */
	mbedtls_ssl_close_notify(&t->ssl);
	return shutdown(c->fd, SHUT_WR);
}

static void tls_close(struct http_conn *c)
{
	struct tls_conn *t = c->tp_data;

	if (!t)
		return;
	if (!c->broken && !c->peer_closed)
		mbedtls_ssl_close_notify(&t->ssl);
	mbedtls_ssl_free(&t->ssl);
	tls_config_unref(t->cfg);
	free(t);
	c->tp_data = NULL;
}

static const struct http_transport tls_transport = {
    .name = "tls",
    .read = tls_read,
    .write = tls_write,
    .pending = tls_pending,
    .close_write = tls_close_write,
    .close = tls_close,
};

const char *tls_conn_version(const struct http_conn *c)
{
	struct tls_conn *t = c->tp_data;

	return c->tp == &tls_transport ? mbedtls_ssl_get_version(&t->ssl) : NULL;
}

/* ---- handshake ----------------------------------------------------------------------- */

/* "reason; reason" from mbedtls_x509_crt_verify_info's lines. */
static void verify_reasons(uint32_t flags, struct strbuf *out)
{
	char buf[1024];
	char *save = NULL;

	if (mbedtls_x509_crt_verify_info(buf, sizeof(buf), "", flags) < 0) {
		sb_addf(out, "verification flags 0x%x", (unsigned)flags);
		return;
	}
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (out->len)
			sb_adds(out, "; ");
		sb_adds(out, l);
	}
}

static int handshake_error(struct tls_conn *t, int rc, const char *where, struct err *err)
{
	_cleanup_sb_ struct strbuf why = STRBUF_INIT;
	char msg[160];
	uint32_t flags;

	switch (rc) {
	case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
		flags = mbedtls_ssl_get_verify_result(&t->ssl);
		verify_reasons(flags, &why);
		return err_set(err, EKEYREJECTED, "TLS handshake with %s: certificate rejected: %s",
		               where, sb_str(&why));
	case MBEDTLS_ERR_SSL_CONN_EOF:
		return err_set(err, ECONNRESET,
		               "TLS handshake with %s: the server closed the connection", where);
	case MBEDTLS_ERR_NET_CONN_RESET:
	case MBEDTLS_ERR_NET_SEND_FAILED:
	case MBEDTLS_ERR_NET_RECV_FAILED:
		errno = t->saved_errno ? t->saved_errno : ECONNRESET;
		return err_sys(err, "TLS handshake with %s", where);
	case MBEDTLS_ERR_SSL_INVALID_RECORD:
	case MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION:
		return err_set(err, EPROTO,
		               "TLS handshake with %s: the answer is not TLS (a plain HTTP "
		               "server?)",
		               where);
	default:
		tls_strerror(rc, msg, sizeof(msg));
		return err_set(err, EPROTO, "TLS handshake with %s: %s (-0x%04x)", where, msg,
		               (unsigned)-rc);
	}
}

static int handshake(struct http_conn *c, struct tls_conn *t, const char *where, double deadline,
                     struct err *err)
{
	for (;;) {
		int rc = mbedtls_ssl_handshake(&t->ssl);
		short ev;

		if (rc == 0)
			return 0;
		if (rc == MBEDTLS_ERR_SSL_WANT_READ)
			ev = POLLIN;
		else if (rc == MBEDTLS_ERR_SSL_WANT_WRITE)
			ev = POLLOUT;
		else
			return handshake_error(t, rc, where, err);
		if (http_wait_fd(c->fd, ev, deadline, "TLS handshake", err) < 0)
			return err_wrap(err, "%s", where);
	}
}

int tls_client_start(struct http_conn *c, struct tls_config *cfg, const char *server_name,
                     const char *port, double deadline, struct err *err)
{
	_cleanup_free_ char *where = NULL;
	struct tls_conn *t;
	int rc;

	if (strchr(server_name, ':'))
		where = xasprintf("[%s]:%s", server_name, port ? port : "443");
	else
		where = xasprintf("%s:%s", server_name, port ? port : "443");
	t = xcalloc(1, sizeof(*t));
	t->fd = c->fd;
	t->cfg = tls_config_ref(cfg);
	mbedtls_ssl_init(&t->ssl);
	rc = mbedtls_ssl_setup(&t->ssl, &cfg->conf);
	/* Always set: it is the SNI and the name checked against the certificate. */
	if (rc == 0)
		rc = mbedtls_ssl_set_hostname(&t->ssl, server_name);
	if (rc != 0) {
		handshake_error(t, rc, where, err);
		goto fail;
	}
	mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
	if (handshake(c, t, where, deadline, err) < 0)
		goto fail;
	http_conn_set_transport(c, &tls_transport, t);
	return 0;
fail:
	mbedtls_ssl_free(&t->ssl);
	tls_config_unref(t->cfg);
	free(t);
	return -1;
}
