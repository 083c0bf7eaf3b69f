/* otter CLI: the TLS handshake that checks a broker refuses a certificate
 * (see cli_crl.h). */
#include "cli_crl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#define PROBE_TIMEOUT_MS 3000

/* A TCP connection to host:port within PROBE_TIMEOUT_MS; the socket, or -1. */
static int connect_within(const char *host, unsigned port)
{
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, service, &hints, &res) != 0) {
        return -1;
    }
    int fd = -1;
    for (const struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        int flags = fcntl(fd, F_GETFL, 0);
        int rc = flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0
                     ? connect(fd, a->ai_addr, a->ai_addrlen)
                     : -1;
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            int err = 0;
            socklen_t len = sizeof err;
            rc = poll(&p, 1, PROBE_TIMEOUT_MS) == 1 &&
                         getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0
                     ? 0
                     : -1;
        }
        if (rc != 0 || fcntl(fd, F_SETFL, flags) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* Sends without SIGPIPE: a broker that refuses the certificate closes the connection,
 * maybe while the handshake still writes. */
static int send_nosignal(void *vnet, const unsigned char *buf, size_t len)
{
    const mbedtls_net_context *net = vnet;
    ssize_t n = send(net->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) {
        return (int)n;
    }
    return errno == EINTR                          ? MBEDTLS_ERR_SSL_WANT_WRITE
           : errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
                                                   : MBEDTLS_ERR_NET_SEND_FAILED;
}

/* What every attempt of a check shares: the random generator, seeded once, and the CA,
 * certificate and key, read once, in a TLS client configuration. */
typedef struct {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca, crt;
    mbedtls_pk_context key;
    mbedtls_ssl_config conf;
} probe_creds_t;

/* Seeds the generator and reads the files into c->conf; 0, or an mbed TLS error (c is to be
 * freed with creds_free either way). */
static int creds_load(probe_creds_t *c, const char *cafile, const char *cert_path,
                      const char *key_path)
{
    mbedtls_entropy_init(&c->entropy);
    mbedtls_ctr_drbg_init(&c->drbg);
    mbedtls_x509_crt_init(&c->ca);
    mbedtls_x509_crt_init(&c->crt);
    mbedtls_pk_init(&c->key);
    mbedtls_ssl_config_init(&c->conf);
    static const unsigned char pers[] = "otter crl probe";
    int rc = mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func, &c->entropy, pers, sizeof pers);
    if (rc == 0) {
        rc = mbedtls_x509_crt_parse_file(&c->ca, cafile);
    }
    if (rc == 0) {
        rc = mbedtls_x509_crt_parse_file(&c->crt, cert_path);
    }
    if (rc == 0) {
        rc = mbedtls_pk_parse_keyfile(&c->key, key_path, NULL);
    }
    if (rc == 0) {
        rc = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT,
                                         MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    }
    if (rc == 0) {
        /* TLS 1.2, as the brokers' listeners: the server checks the client's
         * certificate before its Finished, so a refusal ends the handshake. */
        mbedtls_ssl_conf_max_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                     MBEDTLS_SSL_MINOR_VERSION_3);
        mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, NULL);
        mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &c->drbg);
        mbedtls_ssl_conf_read_timeout(&c->conf, PROBE_TIMEOUT_MS);
        rc = mbedtls_ssl_conf_own_cert(&c->conf, &c->crt, &c->key);
    }
    return rc;
}

static void creds_free(probe_creds_t *c)
{
    mbedtls_ssl_config_free(&c->conf);
    mbedtls_pk_free(&c->key);
    mbedtls_x509_crt_free(&c->crt);
    mbedtls_x509_crt_free(&c->ca);
    mbedtls_ctr_drbg_free(&c->drbg);
    mbedtls_entropy_free(&c->entropy);
}

/* One attempt: a new connection and handshake with the loaded credentials. */
static cli_crl_probe_t probe_once(const probe_creds_t *c, const char *host, unsigned port)
{
    mbedtls_ssl_context ssl;
    mbedtls_net_context net;
    mbedtls_ssl_init(&ssl);
    mbedtls_net_init(&net);
    int rc = mbedtls_ssl_setup(&ssl, &c->conf);
    /* The server's certificate must come from the CA; its name is checked for a
     * host name (mbed TLS 2.28 matches no IP addresses in certificates). */
    unsigned char ip[16];
    if (rc == 0 && inet_pton(AF_INET, host, ip) != 1 && inet_pton(AF_INET6, host, ip) != 1) {
        rc = mbedtls_ssl_set_hostname(&ssl, host);
    }
    cli_crl_probe_t out = CLI_CRL_UNKNOWN;
    if (rc == 0 && (net.fd = connect_within(host, port)) >= 0) {
        mbedtls_ssl_set_bio(&ssl, &net, send_nosignal, NULL, mbedtls_net_recv_timeout);
        do {
            rc = mbedtls_ssl_handshake(&ssl);
        } while (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE);
        if (rc == 0) {
            out = CLI_CRL_ACCEPTED;
            (void)mbedtls_ssl_close_notify(&ssl);
        } else if ((rc == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE || rc == MBEDTLS_ERR_NET_CONN_RESET ||
                    rc == MBEDTLS_ERR_SSL_CONN_EOF || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) &&
                   ssl.state >= MBEDTLS_SSL_CLIENT_CHANGE_CIPHER_SPEC) {
            /* The broker ended the handshake after it asked for the certificate and got
             * it with the proof of its key (Mosquitto resets the connection there; an
             * alert may not be read first): it refused the certificate. A drop before
             * that (a connection limit, a port that is no TLS listener) says nothing of
             * the revocation, and another CA fails here, on this side. */
            out = CLI_CRL_REFUSED;
        }
    }
    mbedtls_net_free(&net);
    mbedtls_ssl_free(&ssl);
    return out;
}

cli_crl_probe_t cli_crl_probe(const char *host, unsigned port, const char *cafile,
                              const char *cert_path, const char *key_path)
{
    return cli_crl_probe_until_refused(host, port, cafile, cert_path, key_path, 0);
}

/* Milliseconds on the monotonic clock (not moved by a change of the wall clock). */
static long long monotonic_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

cli_crl_probe_t cli_crl_probe_until_refused(const char *host, unsigned port, const char *cafile,
                                            const char *cert_path, const char *key_path,
                                            int wait_ms)
{
    /* The time every probe took counts, not only the pauses between them. */
    const long long start = monotonic_ms();
    probe_creds_t c;
    cli_crl_probe_t r = CLI_CRL_UNKNOWN;
    /* Files that cannot be read now will not be on the next attempt either: not checked. */
    if (creds_load(&c, cafile, cert_path, key_path) == 0) {
        for (;;) {
            r = probe_once(&c, host, port);
            if (r == CLI_CRL_REFUSED || monotonic_ms() - start >= wait_ms) {
                break;
            }
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    creds_free(&c);
    return r;
}
