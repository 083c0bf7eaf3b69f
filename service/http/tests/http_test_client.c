/*
 * otter TEST SUPPORT ONLY: a small HTTP/1.1 client. See http_test_client.h.
 */
#define _GNU_SOURCE
#include "http_test_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

int http_connect(http_conn_t *c, int port, int rcvbuf)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        return -1;
    }
    if (rcvbuf > 0) {
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

void http_close(http_conn_t *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
}

int http_send(http_conn_t *c, const char *text)
{
    size_t n = strlen(text), done = 0;
    while (done < n) {
        ssize_t w = send(c->fd, text + done, n - done, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        done += (size_t)w;
    }
    return 0;
}

char *http_request(const char *method, const char *target, const char *extra)
{
    char *out = NULL;
    if (asprintf(&out, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: otter-test\r\n%s\r\n",
                 method, target, extra ? extra : "") < 0) {
        return NULL;
    }
    return out;
}

/* Reads more into the buffer; 1 read, 0 end of connection, -1 timeout or error. */
static int fill(http_conn_t *c, int timeout_ms)
{
    if (c->len == sizeof c->buf) {
        return -1;
    }
    struct pollfd p = {c->fd, POLLIN, 0};
    int rc = poll(&p, 1, timeout_ms);
    if (rc <= 0) {
        return -1;
    }
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n < 0) {
        return errno == ECONNRESET ? 0 : -1;
    }
    c->len += (size_t)n;
    return n > 0 ? 1 : 0;
}

static void take(http_conn_t *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Appends up to `want` buffered or received body bytes. */
static void read_body(http_conn_t *c, http_resp_t *r, size_t want, int timeout_ms)
{
    uint8_t *nb = realloc(r->body, r->body_len + want + 1);
    if (nb == NULL) {
        return;
    }
    r->body = nb;
    size_t got = 0;
    while (got < want) {
        if (c->len == 0) {
            int f = fill(c, timeout_ms);
            if (f <= 0) {
                r->truncated = 1;
                break;
            }
        }
        size_t k = c->len < want - got ? c->len : want - got;
        memcpy(r->body + r->body_len, c->buf, k);
        r->body_len += k;
        got += k;
        take(c, k);
    }
}

int http_read(http_conn_t *c, http_resp_t *r, int head, size_t max_body, int timeout_ms)
{
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    char *end = NULL;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
        if (fill(c, timeout_ms) <= 0) {
            return -1;
        }
    }
    size_t hlen = (size_t)(end - (char *)c->buf) + 4;
    if (sscanf((const char *)c->buf, "HTTP/1.1 %d", &r->status) != 1) {
        return -1;
    }
    const char *first_eol = memchr(c->buf, '\n', hlen);
    size_t hl = hlen - (size_t)(first_eol + 1 - (char *)c->buf);
    if (hl >= sizeof r->headers) {
        hl = sizeof r->headers - 1;
    }
    memcpy(r->headers, first_eol + 1, hl);
    r->headers[hl] = '\0';
    take(c, hlen);
    char v[64];
    if (http_header(r, "Content-Length", v, sizeof v) == 0) {
        r->content_length = atoll(v);
    }
    if (!head && r->content_length > 0) {
        size_t want = (size_t)r->content_length;
        read_body(c, r, want < max_body ? want : max_body, timeout_ms);
    }
    return 0;
}

void http_read_rest(http_conn_t *c, http_resp_t *r, int timeout_ms)
{
    if (r->content_length > (long long)r->body_len && !r->truncated) {
        read_body(c, r, (size_t)r->content_length - r->body_len, timeout_ms);
    }
}

int http_header(const http_resp_t *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = r->headers; *p != '\0';) {
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL) {
            break;
        }
        if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ') {
                v++;
            }
            snprintf(out, cap, "%.*s", (int)(eol - v), v);
            return 0;
        }
        p = eol + 2;
    }
    return -1;
}

void http_resp_free(http_resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

const char *http_target(const char *url)
{
    const char *s = strstr(url, "://");
    s = s != NULL ? strchr(s + 3, '/') : NULL;
    return s != NULL ? s : url;
}
