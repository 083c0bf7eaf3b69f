/*
 * otter: a TLS byte stream for the HTTP range client on POSIX hosts, with
 * mbed TLS over the TCP stream of ota_http_tcp.h: the server's certificate is
 * checked against a CA file and the host name; blocking handshake and send,
 * non-blocking receive, as the client's transport wants.
 */
#ifndef OTA_HTTP_TLS_H
#define OTA_HTTP_TLS_H

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "ota_http_tcp.h"

/** A TLS stream to one host and port (fields private). */
typedef struct ota_http_tls {
    ota_http_tcp_t tcp;
    ota_httpc_transport_t tcp_io;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    uint32_t handshake_ms; /**< longest wait for one handshake step */
    uint32_t handshakes;   /**< handshakes completed */
} ota_http_tls_t;

/**
 * Prepare t for host:port, trusting the CA certificates in ca_pem_path, and
 * give the transport for the client. The stream stays closed until the
 * client opens it (TCP connect, then the handshake).
 * @return OTA_HTTPC_OK; OTA_HTTPC_INVALID_ARG (as ota_http_tcp_init(), an
 *         unreadable CA file); OTA_HTTPC_TRANSPORT (mbed TLS set-up failed).
 *         Call ota_http_tls_free() after either.
 */
ota_httpc_result_t ota_http_tls_init(ota_http_tls_t *t, const char *host, size_t host_len,
                                     uint16_t port, const char *ca_pem_path,
                                     ota_httpc_transport_t *out);

/** Close the stream if open and free mbed TLS's state. */
void ota_http_tls_free(ota_http_tls_t *t);

#endif /* OTA_HTTP_TLS_H */
