/*
 * otter: the HTTP/1.1 range client (see ota_http_client.h).
 */
#include "otter/ota_http_client.h"

#include <string.h>

#include "ota_http_response.h"

/* Request bytes besides the target and the authority, with two 10-digit numbers. */
static const char req_get[] = "GET ";
static const char req_host[] = " HTTP/1.1\r\nHost: ";
static const char req_range[] = "\r\nRange: bytes=";
static const char req_end[] = "\r\nUser-Agent: otter\r\n\r\n";
#define REQ_FIXED                                                                                  \
    (sizeof(req_get) + sizeof(req_host) + sizeof(req_range) + sizeof(req_end) - 4u + 1u + 20u)

static ota_httpc_result_t use_url(ota_httpc_t *c, const char *url, ota_http_url_t *out)
{
    if (url == NULL || ota_http_url_parse(url, strlen(url), out) != OTA_HTTPC_OK ||
        out->target_len + out->authority_len + REQ_FIXED > c->cfg.tx_size) {
        return OTA_HTTPC_INVALID_ARG;
    }
    return OTA_HTTPC_OK;
}

ota_httpc_result_t ota_httpc_init(ota_httpc_t *c, const ota_httpc_config_t *cfg, const char *url)
{
    if (c == NULL || cfg == NULL || cfg->transport.send == NULL || cfg->transport.recv == NULL ||
        cfg->on_body == NULL || cfg->rx_buf == NULL || cfg->tx_buf == NULL || cfg->rx_size < 128u ||
        cfg->tx_size < 128u) {
        return OTA_HTTPC_INVALID_ARG;
    }
    memset(c, 0, sizeof(*c));
    c->cfg = *cfg;
    if (c->cfg.timeout_ms == 0) {
        c->cfg.timeout_ms = OTA_HTTP_DEFAULT_TIMEOUT_MS;
    }
    return use_url(c, url, &c->url);
}

/* Close the connection and drop every request in flight. */
static void drop(ota_httpc_t *c)
{
    if (c->connected && c->cfg.transport.close != NULL) {
        c->cfg.transport.close(c->cfg.transport.ctx);
    }
    c->connected = 0;
    c->closing = 0;
    c->count = 0;
    c->head = 0;
    c->rx_len = 0;
    ota_http_resp_start(&c->resp);
}

/* Record a failure, close, drop. */
static ota_httpc_result_t fail(ota_httpc_t *c, ota_httpc_result_t res)
{
    c->info.last_error = res;
    c->info.failures++;
    if (c->count > 0) {
        c->info.last_first = c->first[c->head];
        c->info.last_last = c->last[c->head];
    }
    drop(c);
    return res;
}

static int same_server(const ota_http_url_t *a, const ota_http_url_t *b)
{
    return a->tls == b->tls && a->port == b->port && a->host_len == b->host_len &&
           memcmp(a->host, b->host, a->host_len) == 0;
}

ota_httpc_result_t ota_httpc_set_url(ota_httpc_t *c, const char *url)
{
    ota_http_url_t u;
    if (c == NULL || use_url(c, url, &u) != OTA_HTTPC_OK) {
        return OTA_HTTPC_INVALID_ARG;
    }
    if (c->count > 0) {
        return OTA_HTTPC_BUSY;
    }
    if (!same_server(&c->url, &u)) {
        drop(c);
    }
    c->url = u;
    return OTA_HTTPC_OK;
}

static size_t put(uint8_t *buf, size_t at, const char *s, size_t len)
{
    memcpy(buf + at, s, len);
    return at + len;
}

static size_t put_u32(uint8_t *buf, size_t at, uint32_t v)
{
    char digits[10];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    while (n > 0) {
        buf[at++] = (uint8_t)digits[--n];
    }
    return at;
}

/* Open a connection. */
static ota_err_t open_conn(ota_httpc_t *c)
{
    if (c->cfg.transport.open != NULL && c->cfg.transport.open(c->cfg.transport.ctx) != OTA_OK) {
        return OTA_ERR_IO;
    }
    c->connected = 1;
    c->conn_answers = 0;
    c->info.connects++;
    return OTA_OK;
}

/* Build and send the request for first..last. */
static ota_err_t send_range(ota_httpc_t *c, uint32_t first, uint32_t last)
{
    uint8_t *b = c->cfg.tx_buf;
    size_t n = put(b, 0, req_get, sizeof(req_get) - 1u);
    n = put(b, n, c->url.target, c->url.target_len);
    n = put(b, n, req_host, sizeof(req_host) - 1u);
    n = put(b, n, c->url.authority, c->url.authority_len);
    n = put(b, n, req_range, sizeof(req_range) - 1u);
    n = put_u32(b, n, first);
    b[n++] = '-';
    n = put_u32(b, n, last);
    n = put(b, n, req_end, sizeof(req_end) - 1u);
    return c->cfg.transport.send(c->cfg.transport.ctx, b, n);
}

/*
 * A reused keep-alive connection closed before a byte of the awaited answer
 * came (the server timed it out as the requests left): the requests were
 * not processed, and GET may be sent again (RFC 9112 9.3.1). Once per answer.
 */
static int may_resend(const ota_httpc_t *c)
{
    return c->conn_answers > 0 && !c->resent && c->rx_len == 0 && c->resp.header_bytes == 0 &&
           c->resp.state == OTA_HTTP_S_STATUS;
}

/* Open a new connection and send every request in flight again, in order. */
static ota_httpc_result_t resend(ota_httpc_t *c, uint32_t now_ms)
{
    uint32_t i;
    if (c->cfg.transport.close != NULL) {
        c->cfg.transport.close(c->cfg.transport.ctx);
    }
    c->connected = 0;
    c->resent = 1;
    c->info.resends++;
    if (open_conn(c) != OTA_OK) {
        return fail(c, OTA_HTTPC_TRANSPORT);
    }
    for (i = 0; i < c->count; i++) {
        uint32_t k = (c->head + i) % OTA_HTTP_PIPELINE_MAX;
        if (send_range(c, c->first[k], c->last[k]) != OTA_OK) {
            return fail(c, OTA_HTTPC_TRANSPORT);
        }
    }
    c->last_rx_ms = now_ms;
    return OTA_HTTPC_OK;
}

ota_httpc_result_t ota_httpc_request(ota_httpc_t *c, uint32_t first, uint32_t last, uint32_t now_ms)
{
    uint32_t tail;
    if (c == NULL || first > last || last == UINT32_MAX ||
        (c->info.file_size != 0 && last >= c->info.file_size)) {
        return OTA_HTTPC_INVALID_ARG;
    }
    if (c->count >= OTA_HTTP_PIPELINE_MAX || c->closing) {
        return OTA_HTTPC_BUSY;
    }
    if (!c->connected && open_conn(c) != OTA_OK) {
        return fail(c, OTA_HTTPC_TRANSPORT);
    }
    if (c->count == 0) {
        c->last_rx_ms = now_ms; /* the wait for an answer starts now */
    }
    tail = (c->head + c->count) % OTA_HTTP_PIPELINE_MAX;
    c->first[tail] = first;
    c->last[tail] = last;
    c->count++;
    c->info.requests++;
    if (send_range(c, first, last) != OTA_OK) {
        return may_resend(c) ? resend(c, now_ms) : fail(c, OTA_HTTPC_TRANSPORT);
    }
    return OTA_HTTPC_OK;
}

/* Counts the body bytes on their way to the consumer. */
static ota_err_t count_body(void *ctx, uint32_t offset, const uint8_t *data, size_t len)
{
    ota_httpc_t *c = ctx;
    c->info.body_bytes += (uint32_t)len;
    return c->cfg.on_body(c->cfg.cb_ctx, offset, data, len);
}

/* An answer is whole: learn the file's size and ETag, pass the range on. */
static void answered(ota_httpc_t *c)
{
    ota_http_resp_t *r = &c->resp;
    uint32_t first = c->first[c->head], last = c->last[c->head];
    if (c->info.file_size == 0) {
        c->info.file_size = r->cr_total;
    }
    if (c->etag_len == 0 && r->etag_len != 0) {
        memcpy(c->etag, r->etag, r->etag_len);
        c->etag_len = r->etag_len;
    }
    c->head = (uint8_t)((c->head + 1u) % OTA_HTTP_PIPELINE_MAX);
    c->count--;
    c->info.answers++;
    c->conn_answers++;
    c->resent = 0;
    if ((r->flags & OTA_HTTP_F_CLOSE) != 0) {
        drop(c); /* requests sent behind it will not be answered on this connection */
    }
    ota_http_resp_start(r);
    if (c->cfg.on_range != NULL) {
        c->cfg.on_range(c->cfg.cb_ctx, first, last);
    }
}

/* Parse what rx_buf holds; deliver; keep a partial line. */
static ota_httpc_result_t consume(ota_httpc_t *c)
{
    while (c->rx_len > 0 && c->connected) {
        ota_http_want_t w;
        size_t used = 0;
        ota_httpc_result_t res;
        if (c->count == 0) {
            return fail(c, OTA_HTTPC_MALFORMED); /* bytes nobody asked for */
        }
        w.first = c->first[c->head];
        w.last = c->last[c->head];
        w.file_size = c->info.file_size;
        w.etag = c->etag;
        w.etag_len = c->etag_len;
        res = ota_http_resp_parse(&c->resp, &w, c->cfg.rx_buf, c->rx_len, c->cfg.rx_size, &used,
                                  count_body, c, &c->info.consumer_err);
        if (c->resp.status != 0) {
            c->info.last_status = c->resp.status;
        }
        if (res != OTA_HTTPC_OK) {
            return fail(c, res);
        }
        if ((c->resp.flags & OTA_HTTP_F_CLOSE) != 0 && c->resp.state > OTA_HTTP_S_HEADERS) {
            c->closing = 1;
        }
        memmove(c->cfg.rx_buf, c->cfg.rx_buf + used, c->rx_len - used);
        c->rx_len -= (uint32_t)used;
        if (c->resp.state == OTA_HTTP_S_DONE) {
            answered(c);
        } else if (used == 0) {
            break; /* a line waits for its end */
        }
    }
    return OTA_HTTPC_OK;
}

ota_httpc_result_t ota_httpc_poll(ota_httpc_t *c, uint32_t now_ms, uint32_t max_reads)
{
    uint32_t reads = 0;
    if (c == NULL) {
        return OTA_HTTPC_INVALID_ARG;
    }
    while (c->connected && (max_reads == 0 || reads < max_reads)) {
        int32_t n = c->cfg.transport.recv(c->cfg.transport.ctx, c->cfg.rx_buf + c->rx_len,
                                          c->cfg.rx_size - c->rx_len);
        ota_httpc_result_t res;
        reads++;
        if (n < 0 || (uint32_t)n > c->cfg.rx_size - c->rx_len) {
            if (c->count > 0 && may_resend(c)) {
                res = resend(c, now_ms);
                if (res != OTA_HTTPC_OK) {
                    return res;
                }
                continue;
            }
            if (c->count > 0) {
                return fail(c, OTA_HTTPC_CLOSED);
            }
            drop(c); /* an idle keep-alive connection closed by the server */
            return OTA_HTTPC_OK;
        }
        if (n == 0) {
            break;
        }
        c->rx_len += (uint32_t)n;
        c->last_rx_ms = now_ms;
        res = consume(c);
        if (res != OTA_HTTPC_OK) {
            return res;
        }
    }
    if (c->connected && c->count > 0 && now_ms - c->last_rx_ms > c->cfg.timeout_ms) {
        return fail(c, OTA_HTTPC_TIMEOUT);
    }
    return OTA_HTTPC_OK;
}

uint32_t ota_httpc_in_flight(const ota_httpc_t *c)
{
    return c == NULL ? 0u : c->count;
}

void ota_httpc_close(ota_httpc_t *c)
{
    if (c != NULL) {
        drop(c);
    }
}

const ota_httpc_info_t *ota_httpc_info(const ota_httpc_t *c)
{
    return c == NULL ? NULL : &c->info;
}

const char *ota_httpc_result_name(ota_httpc_result_t r)
{
    static const char *const names[] = {
        "OTA_HTTPC_OK",
        "OTA_HTTPC_INVALID_ARG",
        "OTA_HTTPC_BUSY",
        "OTA_HTTPC_TRANSPORT",
        "OTA_HTTPC_CLOSED",
        "OTA_HTTPC_TIMEOUT",
        "OTA_HTTPC_EXPIRED",
        "OTA_HTTPC_NOT_FOUND",
        "OTA_HTTPC_RANGE_REFUSED",
        "OTA_HTTPC_SERVER_ERROR",
        "OTA_HTTPC_STATUS",
        "OTA_HTTPC_MALFORMED",
        "OTA_HTTPC_HEADER_TOO_LARGE",
        "OTA_HTTPC_WRONG_RANGE",
        "OTA_HTTPC_BAD_LENGTH",
        "OTA_HTTPC_CHUNK_TOO_LARGE",
        "OTA_HTTPC_CHANGED",
        "OTA_HTTPC_CONSUMER",
    };
    if ((unsigned)r >= sizeof(names) / sizeof(names[0])) {
        return "OTA_HTTPC_UNKNOWN";
    }
    return names[r];
}
