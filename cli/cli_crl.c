/* otter CLI: the revocation list in force on every broker (see cli_crl.h). */
#include "cli_crl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#include "cli_broker.h"
#include "cli_federation.h"

#define PROBE_TIMEOUT_MS 3000
/* How long a broker that got SIGHUP has to refuse the certificate. */
#define RELOAD_WAIT_MS 5000

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
        int rc = fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0
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

cli_crl_probe_t cli_crl_probe(const char *host, unsigned port, const char *cafile,
                              const char *cert_path, const char *key_path)
{
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca, crt;
    mbedtls_pk_context key;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    mbedtls_net_context net;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_x509_crt_init(&ca);
    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&key);
    mbedtls_ssl_config_init(&conf);
    mbedtls_ssl_init(&ssl);
    mbedtls_net_init(&net);
    static const unsigned char pers[] = "otter crl probe";
    int rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, pers, sizeof pers);
    if (rc == 0) {
        rc = mbedtls_x509_crt_parse_file(&ca, cafile);
    }
    if (rc == 0) {
        rc = mbedtls_x509_crt_parse_file(&crt, cert_path);
    }
    if (rc == 0) {
        rc = mbedtls_pk_parse_keyfile(&key, key_path, NULL);
    }
    if (rc == 0) {
        rc = mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT);
    }
    if (rc == 0) {
        /* TLS 1.2, as the brokers' listeners: the server checks the client's
         * certificate before its Finished, so a refusal ends the handshake. */
        mbedtls_ssl_conf_max_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                     MBEDTLS_SSL_MINOR_VERSION_3);
        mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
        mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
        mbedtls_ssl_conf_read_timeout(&conf, PROBE_TIMEOUT_MS);
        rc = mbedtls_ssl_conf_own_cert(&conf, &crt, &key);
    }
    if (rc == 0) {
        rc = mbedtls_ssl_setup(&ssl, &conf);
    }
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
        } else if (rc == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE || rc == MBEDTLS_ERR_NET_CONN_RESET ||
                   rc == MBEDTLS_ERR_SSL_CONN_EOF || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
            out = CLI_CRL_REFUSED;
        }
    }
    mbedtls_net_free(&net);
    mbedtls_ssl_free(&ssl);
    mbedtls_ssl_config_free(&conf);
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&crt);
    mbedtls_x509_crt_free(&ca);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    return out;
}

/* Probes until the broker refuses the certificate, for up to wait_ms (0: once). */
static cli_crl_probe_t probe_until_refused(const cli_login_t *b, const char *cert_path,
                                           const char *key_path, int wait_ms)
{
    cli_crl_probe_t r;
    for (int waited = 0;; waited += 50) {
        r = cli_crl_probe(b->host, b->port, b->cafile, cert_path, key_path);
        if (r == CLI_CRL_REFUSED || waited >= wait_ms) {
            return r;
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* What a broker's check found, for its line. */
static const char *probe_text(cli_crl_probe_t r)
{
    return r == CLI_CRL_REFUSED    ? "refuses the certificate at the TLS handshake"
           : r == CLI_CRL_ACCEPTED ? "STILL ACCEPTS the certificate"
                                   : "not reached, not checked";
}

int cli_crl_in_force(const cli_ctx_t *ctx, const char *cert_path, const char *key_path,
                     const char *again, int *pending)
{
    *pending = 0;
    cli_federation_member_t m[CLI_FEDERATION_MAX];
    size_t nm = cli_federation_members(ctx, m, CLI_FEDERATION_MAX);
    cli_login_t hub;
    char crl_path[CLI_PATH_MAX];
    uint8_t *crl = NULL;
    size_t crl_len = 0;
    int rc = cli_broker_login(ctx, "broker/service.credentials", &hub);
    if (rc == CLI_EXIT_OK &&
        (cli_data_path(ctx, crl_path, sizeof crl_path, "broker/crl.pem") != 0 ||
         cli_read_file(crl_path, &crl, &crl_len) != 0)) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot read '%s/broker/crl.pem'; check the data folder",
                      ctx->data_dir);
    }
    /* Every folder here gets the list first, then the running brokers reread it. */
    for (size_t i = 0; rc == CLI_EXIT_OK && i < nm; i++) {
        char p[CLI_PATH_MAX];
        if (cli_data_path(&m[i].ctx, p, sizeof p, "broker/crl.pem") != 0 ||
            cli_replace_file(p, crl, crl_len, 0644) != 0) {
            rc = cli_fail(CLI_EXIT_FAIL, "cannot write '%s/broker/crl.pem' (%s); check the folder",
                          m[i].data_dir, strerror(errno));
        }
    }
    free(crl);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    long pid = cli_broker_running(ctx);
    cli_crl_probe_t r = CLI_CRL_REFUSED;
    if (pid > 0) {
        r = kill((pid_t)pid, SIGHUP) == 0
                ? probe_until_refused(&hub, cert_path, key_path, RELOAD_WAIT_MS)
                : CLI_CRL_UNKNOWN;
    }
    if (r != CLI_CRL_REFUSED) {
        return cli_fail(CLI_EXIT_FAIL,
                        r == CLI_CRL_ACCEPTED
                            ? "the running broker still accepts the certificate '%s' after "
                              "rereading crl.pem; restart it and try again"
                            : "could not check that the running broker refuses the certificate "
                              "'%s' (no TLS handshake with it and its key); check its log",
                        cert_path);
    }
    if (nm == 0) {
        return CLI_EXIT_OK;
    }
    printf("crl:         broker 1 (hub 1) %s:%u: %s\n", hub.host, hub.port,
           pid > 0 ? "reread crl.pem; refuses the certificate at the TLS handshake"
                   : "not running here; reads crl.pem when it starts");
    for (size_t i = 0; i < nm; i++) {
        cli_login_t b;
        unsigned k = (unsigned)i + 2u;
        if (cli_broker_login(&m[i].ctx, "broker/service.credentials", &b) != CLI_EXIT_OK) {
            (*pending)++;
            fprintf(stderr,
                    "otter: broker %u was not checked (no address): its crl.pem is written in "
                    "'%s/broker'; copy it to that broker's machine and send it SIGHUP\n",
                    k, m[i].data_dir);
            continue;
        }
        long mpid = cli_broker_running(&m[i].ctx);
        int here = mpid > 0 && kill((pid_t)mpid, SIGHUP) == 0;
        cli_crl_probe_t got =
            probe_until_refused(&b, cert_path, key_path, here ? RELOAD_WAIT_MS : 0);
        printf("crl:         broker %u %s:%u: %s%s\n", k, b.host, b.port,
               here ? "runs here, reread crl.pem; " : "", probe_text(got));
        if (got != CLI_CRL_REFUSED) {
            /* The folders are at the same absolute path on every machine. */
            char abs[PATH_MAX];
            const char *dir = realpath(m[i].data_dir, abs) != NULL ? abs : m[i].data_dir;
            (*pending)++;
            fprintf(stderr,
                    "otter: broker %u (%s:%u) is not known to refuse the certificate: copy "
                    "%s/broker/crl.pem to the same path on its machine, then run 'kill -HUP "
                    "$(cat %s/broker/mosquitto.pid)' there (a stopped broker reads it when it "
                    "starts)%s%s%s\n",
                    k, b.host, b.port, dir, dir, again != NULL ? "; then check with '" : "",
                    again != NULL ? again : "", again != NULL ? "'" : "");
        }
    }
    return CLI_EXIT_OK;
}
