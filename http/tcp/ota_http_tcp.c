/*
 * otter: a TCP byte stream for the HTTP range client on POSIX hosts.
 */
#include "ota_http_tcp.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static ota_err_t tcp_open(void *ctx)
{
    ota_http_tcp_t *t = ctx;
    struct addrinfo hints, *res = NULL, *ai;
    char port[8];
    int one = 1;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%u", (unsigned)t->port);
    if (getaddrinfo(t->host, port, &hints, &res) != 0) {
        return OTA_ERR_IO;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            t->fd = fd;
            break;
        }
        close(fd);
    }
    freeaddrinfo(res);
    if (t->fd < 0) {
        return OTA_ERR_IO;
    }
    t->opens++;
    return OTA_OK;
}

static void tcp_close(void *ctx)
{
    ota_http_tcp_t *t = ctx;
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
}

static ota_err_t tcp_send(void *ctx, const uint8_t *data, size_t len)
{
    ota_http_tcp_t *t = ctx;
    while (len > 0) {
        ssize_t n = send(t->fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
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

static int32_t tcp_recv(void *ctx, uint8_t *buf, size_t cap)
{
    ota_http_tcp_t *t = ctx;
    ssize_t n;
    if (t->fd < 0) {
        return -1;
    }
    if (cap > INT32_MAX) {
        cap = INT32_MAX;
    }
    do {
        n = recv(t->fd, buf, cap, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    }
    return n == 0 ? -1 : (int32_t)n; /* 0 bytes: the peer closed */
}

ota_httpc_result_t ota_http_tcp_init(ota_http_tcp_t *t, const char *host, size_t host_len,
                                     uint16_t port, ota_httpc_transport_t *out)
{
    if (t == NULL || host == NULL || out == NULL || host_len == 0 ||
        host_len > OTA_HTTP_TCP_HOST_MAX || port == 0) {
        return OTA_HTTPC_INVALID_ARG;
    }
    memset(t, 0, sizeof(*t));
    memcpy(t->host, host, host_len);
    t->port = port;
    t->fd = -1;
    out->ctx = t;
    out->open = tcp_open;
    out->close = tcp_close;
    out->send = tcp_send;
    out->recv = tcp_recv;
    return OTA_HTTPC_OK;
}
