/*
 * otter: splitting an http:// or https:// URL for the range client.
 */
#include "otter/ota_http_client.h"

#include <string.h>

/* Longest host name (DNS: 253 characters). */
#define OTA_HTTP_HOST_MAX 253u

ota_httpc_result_t ota_http_url_parse(const char *url, size_t len, ota_http_url_t *out)
{
    size_t i, start, host_end, auth_end;
    if (url == NULL || out == NULL) {
        return OTA_HTTPC_INVALID_ARG;
    }
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)url[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '#') {
            return OTA_HTTPC_INVALID_ARG;
        }
    }
    memset(out, 0, sizeof(*out));
    if (len >= 7 && memcmp(url, "http://", 7) == 0) {
        start = 7;
        out->port = 80;
    } else if (len >= 8 && memcmp(url, "https://", 8) == 0) {
        start = 8;
        out->port = 443;
        out->tls = 1;
    } else {
        return OTA_HTTPC_INVALID_ARG;
    }
    auth_end = start;
    while (auth_end < len && url[auth_end] != '/' && url[auth_end] != '?') {
        if (url[auth_end] == '@') {
            return OTA_HTTPC_INVALID_ARG; /* no user info */
        }
        auth_end++;
    }
    if (start < len && url[start] == '[') {
        const char *rb = memchr(url + start, ']', auth_end - start);
        if (rb == NULL) {
            return OTA_HTTPC_INVALID_ARG;
        }
        out->host = url + start + 1;
        host_end = (size_t)(rb - url) + 1u;
        out->host_len = host_end - start - 2u;
    } else {
        host_end = start;
        while (host_end < auth_end && url[host_end] != ':') {
            host_end++;
        }
        out->host = url + start;
        out->host_len = host_end - start;
    }
    if (out->host_len == 0 || out->host_len > OTA_HTTP_HOST_MAX) {
        return OTA_HTTPC_INVALID_ARG;
    }
    if (host_end < auth_end) {
        uint32_t port = 0;
        if (url[host_end] != ':' || host_end + 1u == auth_end) {
            return OTA_HTTPC_INVALID_ARG;
        }
        for (i = host_end + 1u; i < auth_end; i++) {
            if (url[i] < '0' || url[i] > '9' || port > 6553u) {
                return OTA_HTTPC_INVALID_ARG;
            }
            port = port * 10u + (uint32_t)(url[i] - '0');
        }
        if (port == 0 || port > 65535u) {
            return OTA_HTTPC_INVALID_ARG;
        }
        out->port = (uint16_t)port;
    }
    out->authority = url + start;
    out->authority_len = auth_end - start;
    if (auth_end == len) {
        out->target = "/";
        out->target_len = 1;
    } else if (url[auth_end] == '?') {
        return OTA_HTTPC_INVALID_ARG; /* a query needs a path in a request line */
    } else {
        out->target = url + auth_end;
        out->target_len = len - auth_end;
    }
    return OTA_HTTPC_OK;
}
