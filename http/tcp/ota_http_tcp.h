/*
 * otter: a TCP byte stream for the HTTP range client on POSIX hosts (the
 * simulated device, host tests): blocking connect and send, non-blocking
 * receive, TCP_NODELAY so pipelined requests leave at once.
 */
#ifndef OTA_HTTP_TCP_H
#define OTA_HTTP_TCP_H

#include "otter/ota_http_client.h"

/** Longest host name kept. */
#define OTA_HTTP_TCP_HOST_MAX 253u

/** A TCP stream to one host and port; fd is -1 while closed. */
typedef struct ota_http_tcp {
    char host[OTA_HTTP_TCP_HOST_MAX + 1u];
    uint16_t port;
    int fd;
    uint32_t opens; /**< successful opens */
} ota_http_tcp_t;

/**
 * Prepare t for host:port (copied) and give the transport for the client.
 * The stream stays closed until the client opens it.
 * @param t    the stream; must outlive the client.
 * @param host host name or address (host_len bytes, not NUL-terminated).
 * @param port TCP port.
 * @param out  receives the transport.
 * @return OTA_HTTPC_OK; OTA_HTTPC_INVALID_ARG (NULL, empty or too long host).
 */
ota_httpc_result_t ota_http_tcp_init(ota_http_tcp_t *t, const char *host, size_t host_len,
                                     uint16_t port, ota_httpc_transport_t *out);

#endif /* OTA_HTTP_TCP_H */
