/* rollout's Mbed TLS 3.6 configuration: appended to the default
 * include/mbedtls/mbedtls_config.h by third_party/build-deps.sh, so the library
 * and every file that includes its headers see the same settings.
 *
 * A TLS 1.2 + 1.3 client for HTTPS (registries, registry.json downloads, a
 * remote Docker daemon): certificate parsing and verification, the usual
 * ECDHE/RSA suites with AES-GCM and ChaCha20-Poly1305, the NIST curves and
 * X25519/X448. No server side, no DTLS, no ALPN (a registry behind ALPN may
 * answer HTTP/2), no PSK key exchanges, no files written by PSA key storage. */

/* server side */
#undef MBEDTLS_SSL_SRV_C
#undef MBEDTLS_SSL_CACHE_C
#undef MBEDTLS_SSL_TICKET_C
#undef MBEDTLS_SSL_COOKIE_C

/* DTLS */
#undef MBEDTLS_SSL_PROTO_DTLS
#undef MBEDTLS_SSL_DTLS_ANTI_REPLAY
#undef MBEDTLS_SSL_DTLS_HELLO_VERIFY
#undef MBEDTLS_SSL_DTLS_CLIENT_PORT_REUSE
#undef MBEDTLS_SSL_DTLS_CONNECTION_ID
#undef MBEDTLS_TIMING_C

/* negotiation features a client of HTTP/1.1 servers does not use */
#undef MBEDTLS_SSL_ALPN
#undef MBEDTLS_SSL_RENEGOTIATION
#undef MBEDTLS_SSL_CONTEXT_SERIALIZATION
#undef MBEDTLS_SSL_KEYING_MATERIAL_EXPORT

/* pre-shared keys (session resumption in TLS 1.3 keeps PSK_EPHEMERAL) */
#undef MBEDTLS_KEY_EXCHANGE_PSK_ENABLED
#undef MBEDTLS_KEY_EXCHANGE_DHE_PSK_ENABLED
#undef MBEDTLS_KEY_EXCHANGE_ECDHE_PSK_ENABLED
#undef MBEDTLS_KEY_EXCHANGE_RSA_PSK_ENABLED
#undef MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_ENABLED

/* rollout does its own sockets; no persistent PSA keys, self tests, debug output */
#undef MBEDTLS_NET_C
#undef MBEDTLS_PSA_CRYPTO_STORAGE_C
#undef MBEDTLS_PSA_ITS_FILE_C
#undef MBEDTLS_SELF_TEST
#undef MBEDTLS_DEBUG_C

/* certificate writing and requests, PKCS#7, LMS, EC J-PAKE */
#undef MBEDTLS_X509_CSR_PARSE_C
#undef MBEDTLS_X509_CREATE_C
#undef MBEDTLS_X509_CRT_WRITE_C
#undef MBEDTLS_X509_CSR_WRITE_C
#undef MBEDTLS_PEM_WRITE_C
#undef MBEDTLS_PKCS7_C
#undef MBEDTLS_LMS_C
#undef MBEDTLS_ECJPAKE_C
