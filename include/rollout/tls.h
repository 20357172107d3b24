/* TLS for rollout's HTTP client (util/tls.c, over Mbed TLS 3.6): a client
 * configuration (trusted CAs, an optional client certificate) and a transport
 * for `struct http_conn` that replaces the socket one once the TCP connection
 * (or a proxy's CONNECT tunnel) is up.
 *
 * Trusted CAs, unless a configuration names its own bundle (ca_file):
 *   - SSL_CERT_FILE, else the first distribution bundle that exists
 *     (/etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt,
 *     /etc/ssl/ca-bundle.pem, /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem,
 *     /etc/pki/tls/cacert.pem, /etc/ssl/cert.pem);
 *   - SSL_CERT_DIR (colon-separated directories of PEM files), else
 *     /etc/ssl/certs when no bundle was found;
 *   - plus the configuration's extra_ca_files (a registry's certs.d ca.crt).
 * The server's name (SNI and the certificate's DNS or IP subjectAltName) is
 * always checked unless the configuration is insecure. TLS 1.2 and 1.3; no ALPN
 * (an HTTP/1.1 client must not be offered HTTP/2).
 *
 * Errors name host:port. A certificate that fails verification is EKEYREJECTED
 * with Mbed TLS's reasons ("the certificate is not correctly signed by the
 * trusted CA", "the certificate Common Name (CN) does not match ..."); other
 * handshake failures are EPROTO. */
#ifndef ROLLOUT_TLS_H
#define ROLLOUT_TLS_H

#include <stdbool.h>

struct err;
struct http_conn;

struct tls_options {
	/* Trust only this PEM bundle instead of the system's (DOCKER_CERT_PATH/ca.pem). */
	const char *ca_file;
	/* More PEM CA files trusted besides the others; NULL-terminated, may be NULL. */
	const char *const *extra_ca_files;
	/* A client certificate (PEM chain) and its key (PEM or DER, unencrypted). */
	const char *cert_file;
	const char *key_file;
	/* No certificate or name verification. Only when a user asked for it. */
	bool insecure;
};

/* A loaded configuration, shared by the connections made with it (reference
 * counted: a pooled connection keeps its configuration alive). */
struct tls_config;

int tls_config_new(const struct tls_options *o, struct tls_config **out, struct err *err);
/* The process-wide configuration with the system CAs, loaded on first use. The
 * reference is borrowed. */
int tls_config_default(struct tls_config **out, struct err *err);
struct tls_config *tls_config_ref(struct tls_config *cfg);
void tls_config_unref(struct tls_config *cfg);
/* How many CA certificates the configuration trusts (tests, messages). */
int tls_config_ca_count(const struct tls_config *cfg);

/* Handshake on c (connected, socket transport) as a client of server_name (a
 * DNS name or an IP address; checked against the certificate) at port (for
 * messages), within deadline (monotonic; 0 = none) and cancellation. On success
 * c's transport is TLS and holds a reference to cfg. */
int tls_client_start(struct http_conn *c, struct tls_config *cfg, const char *server_name,
                     const char *port, double deadline, struct err *err);

/* The negotiated protocol ("TLSv1.2", "TLSv1.3"), NULL when c is not TLS. */
const char *tls_conn_version(const struct http_conn *c);

#endif
