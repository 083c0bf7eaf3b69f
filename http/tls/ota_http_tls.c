/*
 * otter: a TLS byte stream for the HTTP range client (see ota_http_tls.h).
 */
#include "ota_http_tls.h"

#include <poll.h>
#include <string.h>

#include <mbedtls/net_sockets.h>

/* The TCP stream under TLS: whole sends, and receives that say "nothing yet". */
static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    ota_http_tls_t *t = ctx;
    if (t->tcp_io.send(t->tcp_io.ctx, buf, len) != OTA_OK) {
        return MBEDTLS_ERR_NET_SEND_FAILED;
    }
    return (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    ota_http_tls_t *t = ctx;
    int32_t n = t->tcp_io.recv(t->tcp_io.ctx, buf, len);
    if (n < 0) {
        return MBEDTLS_ERR_NET_CONN_RESET;
    }
    return n == 0 ? MBEDTLS_ERR_SSL_WANT_READ : (int)n;
}

static void tls_close(void *ctx)
{
    ota_http_tls_t *t = ctx;
    if (t->tcp.fd >= 0) {
        (void)mbedtls_ssl_close_notify(&t->ssl);
    }
    t->tcp_io.close(t->tcp_io.ctx);
    (void)mbedtls_ssl_session_reset(&t->ssl);
}

static ota_err_t tls_open(void *ctx)
{
    ota_http_tls_t *t = ctx;
    int ret;
    if (t->tcp_io.open(t->tcp_io.ctx) != OTA_OK) {
        return OTA_ERR_IO;
    }
    while ((ret = mbedtls_ssl_handshake(&t->ssl)) != 0) {
        struct pollfd p;
        if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE) {
            tls_close(t);
            return OTA_ERR_IO;
        }
        p.fd = t->tcp.fd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, (int)t->handshake_ms) <= 0) {
            tls_close(t);
            return OTA_ERR_IO; /* the server stopped answering */
        }
    }
    t->handshakes++;
    return OTA_OK;
}

static ota_err_t tls_send(void *ctx, const uint8_t *data, size_t len)
{
    ota_http_tls_t *t = ctx;
    while (len > 0) {
        int n = mbedtls_ssl_write(&t->ssl, data, len);
        if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE) {
            continue;
        }
        if (n <= 0) {
            return OTA_ERR_IO;
        }
        data += n;
        len -= (size_t)n;
    }
    return OTA_OK;
}

static int32_t tls_recv(void *ctx, uint8_t *buf, size_t cap)
{
    ota_http_tls_t *t = ctx;
    int n;
    if (t->tcp.fd < 0) {
        return -1;
    }
    n = mbedtls_ssl_read(&t->ssl, buf, cap > INT32_MAX ? INT32_MAX : cap);
    if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE) {
        return 0;
    }
    return n <= 0 ? -1 : (int32_t)n; /* 0 or close_notify: the peer closed */
}

ota_httpc_result_t ota_http_tls_init(ota_http_tls_t *t, const char *host, size_t host_len,
                                     uint16_t port, const char *ca_pem_path,
                                     ota_httpc_transport_t *out)
{
    static const char pers[] = "otter-http";
    if (t == NULL || ca_pem_path == NULL || out == NULL) {
        return OTA_HTTPC_INVALID_ARG;
    }
    memset(t, 0, sizeof(*t));
    mbedtls_ssl_init(&t->ssl);
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_x509_crt_init(&t->ca);
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    t->handshake_ms = 10000;
    if (ota_http_tcp_init(&t->tcp, host, host_len, port, &t->tcp_io) != OTA_HTTPC_OK ||
        mbedtls_x509_crt_parse_file(&t->ca, ca_pem_path) != 0) {
        return OTA_HTTPC_INVALID_ARG;
    }
    if (mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
                              (const unsigned char *)pers, sizeof(pers) - 1u) != 0 ||
        mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0) {
        return OTA_HTTPC_TRANSPORT;
    }
    mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
    mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3); /* TLS 1.2 or later */
    if (mbedtls_ssl_setup(&t->ssl, &t->conf) != 0 ||
        mbedtls_ssl_set_hostname(&t->ssl, t->tcp.host) != 0) {
        return OTA_HTTPC_TRANSPORT;
    }
    mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
    out->ctx = t;
    out->open = tls_open;
    out->close = tls_close;
    out->send = tls_send;
    out->recv = tls_recv;
    return OTA_HTTPC_OK;
}

void ota_http_tls_free(ota_http_tls_t *t)
{
    if (t == NULL) {
        return;
    }
    if (t->tcp.fd >= 0 && t->tcp_io.close != NULL) {
        tls_close(t);
    }
    mbedtls_ssl_free(&t->ssl);
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_x509_crt_free(&t->ca);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
}
