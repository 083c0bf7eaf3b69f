/* otter TEST SUPPORT ONLY: a TCP transport for the device MQTT client. */
#include "mqtt_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static ota_err_t sock_open(void *ctx)
{
    mqtt_socket_t *s = ctx;
    struct sockaddr_in a;
    int one = 1;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0) {
        return OTA_ERR_IO;
    }
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)s->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(s->fd);
        s->fd = -1;
        return OTA_ERR_IO;
    }
    s->opens++;
    return OTA_OK;
}

static void sock_close(void *ctx)
{
    mqtt_socket_t *s = ctx;
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

static ota_err_t sock_send(void *ctx, const uint8_t *data, size_t len)
{
    mqtt_socket_t *s = ctx;
    while (len > 0) {
        ssize_t n = send(s->fd, data, len, MSG_NOSIGNAL);
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

static int32_t sock_recv(void *ctx, uint8_t *buf, size_t cap)
{
    mqtt_socket_t *s = ctx;
    ssize_t n = recv(s->fd, buf, cap, MSG_DONTWAIT);
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    }
    return n == 0 ? -1 : (int32_t)n;
}

ota_mqttc_transport_t mqtt_socket_transport(mqtt_socket_t *s, int port)
{
    ota_mqttc_transport_t t = {s, sock_open, sock_close, sock_send, sock_recv};
    s->port = port;
    s->fd = -1;
    s->opens = 0;
    return t;
}

uint32_t mqtt_socket_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}
