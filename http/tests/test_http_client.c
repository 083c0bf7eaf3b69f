/*
 * Unit tests of the HTTP range client over a scripted byte stream: the
 * requests byte for byte, answers fed whole and byte by byte, pipelining,
 * chunked bodies, Connection: close, and every refusal and malformed answer
 * (each must deliver nothing outside the range asked and close the
 * connection).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "otter/ota_http_client.h"

#define FILE_SIZE 5000u

/* ---- scripted transport ---- */

typedef struct script {
    char in[16384]; /* what the server answers */
    size_t in_len, pos;
    size_t piece;     /* bytes per recv (0: as many as fit) */
    int close_at_end; /* recv reports a closed stream once the script is read */
    char in2[4096];   /* what the server answers on the second connection */
    size_t in2_len;
    char sent[8192];
    size_t sent_len;
    int opens, closes, open_fails, send_fails; /* send_fails: sends to refuse */
} script_t;

static ota_err_t s_open(void *ctx)
{
    script_t *s = ctx;
    if (s->open_fails) {
        return OTA_ERR_IO;
    }
    s->opens++;
    if (s->opens == 2 && s->in2_len > 0) {
        memcpy(s->in, s->in2, s->in2_len);
        s->in_len = s->in2_len;
        s->pos = 0;
    }
    return OTA_OK;
}

static void s_close(void *ctx)
{
    ((script_t *)ctx)->closes++;
}

static ota_err_t s_send(void *ctx, const uint8_t *data, size_t len)
{
    script_t *s = ctx;
    if (s->send_fails > 0 || s->sent_len + len > sizeof(s->sent)) {
        s->send_fails--;
        return OTA_ERR_IO;
    }
    memcpy(s->sent + s->sent_len, data, len);
    s->sent_len += len;
    return OTA_OK;
}

static int32_t s_recv(void *ctx, uint8_t *buf, size_t cap)
{
    script_t *s = ctx;
    size_t n = s->in_len - s->pos;
    if (n == 0) {
        return s->close_at_end ? -1 : 0;
    }
    if (s->piece != 0 && n > s->piece) {
        n = s->piece;
    }
    if (n > cap) {
        n = cap;
    }
    memcpy(buf, s->in + s->pos, n);
    s->pos += n;
    return (int32_t)n;
}

static void script_add(script_t *s, const char *text)
{
    size_t n = strlen(text);
    assert_true(s->in_len + n <= sizeof(s->in));
    memcpy(s->in + s->in_len, text, n);
    s->in_len += n;
}

static uint8_t file_byte(uint32_t off)
{
    return (uint8_t)('a' + (off * 7u + off / 26u) % 26u);
}

/* A 206 answer for first..last with extra header lines (each ending in CRLF). */
static void add_206(script_t *s, uint32_t first, uint32_t last, const char *extra)
{
    char head[512];
    uint32_t i;
    snprintf(head, sizeof(head),
             "HTTP/1.1 206 Partial Content\r\nServer: test\r\nContent-Range: bytes %u-%u/%u\r\n"
             "Content-Length: %u\r\nETag: \"abc\"\r\n%s\r\n",
             first, last, FILE_SIZE, last - first + 1u, extra);
    script_add(s, head);
    for (i = first; i <= last; i++) {
        s->in[s->in_len++] = (char)file_byte(i);
    }
}

/* ---- body sink ---- */

typedef struct sink {
    uint8_t file[FILE_SIZE];
    uint8_t got[FILE_SIZE]; /* times each byte was delivered */
    uint32_t next;          /* offset the next delivered byte must have (in order) */
    uint32_t bytes, calls, ranges;
    uint32_t done_first[16], done_last[16];
    int fail; /* return an error from the consumer */
} sink_t;

static ota_err_t on_body(void *ctx, uint32_t offset, const uint8_t *data, size_t len)
{
    sink_t *k = ctx;
    size_t i;
    assert_true(len > 0);
    assert_true(offset + len <= FILE_SIZE);
    if (k->fail) {
        return OTA_ERR_IO;
    }
    for (i = 0; i < len; i++) {
        k->file[offset + i] = data[i];
        k->got[offset + i]++;
    }
    k->bytes += (uint32_t)len;
    k->calls++;
    return OTA_OK;
}

static void on_range(void *ctx, uint32_t first, uint32_t last)
{
    sink_t *k = ctx;
    assert_true(k->ranges < 16);
    k->done_first[k->ranges] = first;
    k->done_last[k->ranges] = last;
    k->ranges++;
}

/* ---- fixture ---- */

typedef struct fx {
    script_t s;
    sink_t k;
    uint8_t rx[OTA_HTTP_RX_BUFFER_SIZE];
    uint8_t tx[OTA_HTTP_TX_BUFFER_SIZE];
    ota_httpc_t c;
} fx_t;

static fx_t g;

static void setup_url(const char *url)
{
    ota_httpc_config_t cfg;
    memset(&g, 0, sizeof(g));
    memset(&cfg, 0, sizeof(cfg));
    cfg.transport.ctx = &g.s;
    cfg.transport.open = s_open;
    cfg.transport.close = s_close;
    cfg.transport.send = s_send;
    cfg.transport.recv = s_recv;
    cfg.on_body = on_body;
    cfg.on_range = on_range;
    cfg.cb_ctx = &g.k;
    cfg.rx_buf = g.rx;
    cfg.rx_size = sizeof(g.rx);
    cfg.tx_buf = g.tx;
    cfg.tx_size = sizeof(g.tx);
    cfg.timeout_ms = 1000;
    assert_int_equal(ota_httpc_init(&g.c, &cfg, url), OTA_HTTPC_OK);
}

static int setup(void **state)
{
    (void)state;
    setup_url("http://files.example:8080/fw/a.bin?exp=123&sig=ab%2F");
    return 0;
}

/* Poll until nothing is in flight or a failure; returns the last result. */
static ota_httpc_result_t run(void)
{
    ota_httpc_result_t r = OTA_HTTPC_OK;
    int i;
    for (i = 0; i < 100000 && ota_httpc_in_flight(&g.c) > 0; i++) {
        r = ota_httpc_poll(&g.c, 0, 1);
        if (r != OTA_HTTPC_OK) {
            break;
        }
        if (g.s.pos == g.s.in_len && !g.s.close_at_end) {
            r = ota_httpc_poll(&g.c, 0, 0);
            break;
        }
    }
    return r;
}

static void assert_delivered(uint32_t first, uint32_t last)
{
    uint32_t i;
    for (i = first; i <= last; i++) {
        assert_int_equal(g.k.got[i], 1);
        assert_int_equal(g.k.file[i], file_byte(i));
    }
}

/* Nothing delivered at all. */
static void assert_nothing(void)
{
    assert_int_equal(g.k.bytes, 0);
    assert_int_equal(g.k.ranges, 0);
}

/* A failure: the code, the connection closed, nothing in flight. */
static void assert_failed(ota_httpc_result_t got, ota_httpc_result_t want)
{
    assert_string_equal(ota_httpc_result_name(got), ota_httpc_result_name(want));
    assert_int_equal(ota_httpc_info(&g.c)->last_error, want);
    assert_int_equal(ota_httpc_in_flight(&g.c), 0);
    assert_int_equal(g.s.closes, g.s.opens);
}

/* ---- tests ---- */

static void test_request_bytes(void **state)
{
    (void)state;
    assert_int_equal(ota_httpc_request(&g.c, 0, 4095, 0), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_request(&g.c, 4096, 4999, 0), OTA_HTTPC_OK);
    g.s.sent[g.s.sent_len] = 0;
    assert_string_equal(g.s.sent, "GET /fw/a.bin?exp=123&sig=ab%2F HTTP/1.1\r\n"
                                  "Host: files.example:8080\r\nRange: bytes=0-4095\r\n"
                                  "User-Agent: otter\r\n\r\n"
                                  "GET /fw/a.bin?exp=123&sig=ab%2F HTTP/1.1\r\n"
                                  "Host: files.example:8080\r\nRange: bytes=4096-4999\r\n"
                                  "User-Agent: otter\r\n\r\n");
    assert_int_equal(g.s.opens, 1);
    assert_int_equal(ota_httpc_in_flight(&g.c), 2);
    assert_int_equal(ota_httpc_info(&g.c)->requests, 2);
}

static void check_one_range(size_t piece)
{
    g.s.piece = piece;
    add_206(&g.s, 100, 1123, "");
    assert_int_equal(ota_httpc_request(&g.c, 100, 1123, 0), OTA_HTTPC_OK);
    assert_int_equal(run(), OTA_HTTPC_OK);
    assert_delivered(100, 1123);
    assert_int_equal(g.k.bytes, 1024);
    assert_int_equal(g.k.ranges, 1);
    assert_int_equal(g.k.done_first[0], 100);
    assert_int_equal(g.k.done_last[0], 1123);
    assert_int_equal(ota_httpc_info(&g.c)->file_size, FILE_SIZE);
    assert_int_equal(ota_httpc_info(&g.c)->last_status, 206);
    assert_int_equal(g.s.closes, 0); /* keep-alive */
}

static void test_one_range_whole(void **state)
{
    (void)state;
    check_one_range(0);
}

static void test_one_range_byte_by_byte(void **state)
{
    (void)state;
    check_one_range(1);
}

static void test_pipelined(void **state)
{
    uint32_t i;
    (void)state;
    for (i = 0; i < OTA_HTTP_PIPELINE_MAX; i++) {
        assert_int_equal(ota_httpc_request(&g.c, i * 1000u, i * 1000u + 999u, 0), OTA_HTTPC_OK);
        add_206(&g.s, i * 1000u, i * 1000u + 999u, "");
    }
    assert_int_equal(ota_httpc_request(&g.c, 4000, 4999, 0), OTA_HTTPC_BUSY);
    g.s.piece = 333;
    assert_int_equal(run(), OTA_HTTPC_OK);
    assert_delivered(0, OTA_HTTP_PIPELINE_MAX * 1000u - 1u);
    assert_int_equal(g.k.ranges, OTA_HTTP_PIPELINE_MAX);
    for (i = 0; i < OTA_HTTP_PIPELINE_MAX; i++) {
        assert_int_equal(g.k.done_first[i], i * 1000u);
    }
    assert_int_equal(g.s.opens, 1);
    /* one more on the same connection; a range beyond the known size is refused */
    assert_int_equal(ota_httpc_request(&g.c, 4000, 5000, 0), OTA_HTTPC_INVALID_ARG);
    assert_int_equal(ota_httpc_request(&g.c, 4000, 4999, 0), OTA_HTTPC_OK);
    add_206(&g.s, 4000, 4999, "");
    assert_int_equal(run(), OTA_HTTPC_OK);
    assert_delivered(0, FILE_SIZE - 1u);
    assert_int_equal(g.s.opens, 1);
}

static void check_chunked(size_t piece)
{
    uint32_t i;
    char head[] = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-59/5000\r\n"
                  "transfer-encoding:  Chunked \r\n\r\n";
    g.s.piece = piece;
    script_add(&g.s, head);
    script_add(&g.s, "0000A;name=value\r\n");
    for (i = 10; i < 20; i++) {
        g.s.in[g.s.in_len++] = (char)file_byte(i);
    }
    script_add(&g.s, "\r\n28\n"); /* bare LF accepted */
    for (i = 20; i < 60; i++) {
        g.s.in[g.s.in_len++] = (char)file_byte(i);
    }
    script_add(&g.s, "\r\n0\r\nX-Trailer: 1\r\n\r\n");
    assert_int_equal(ota_httpc_request(&g.c, 10, 59, 0), OTA_HTTPC_OK);
    assert_int_equal(run(), OTA_HTTPC_OK);
    assert_delivered(10, 59);
    assert_int_equal(g.k.bytes, 50);
    assert_int_equal(g.k.ranges, 1);
    assert_int_equal(g.s.closes, 0);
}

static void test_chunked(void **state)
{
    (void)state;
    check_chunked(0);
}

static void test_chunked_byte_by_byte(void **state)
{
    (void)state;
    check_chunked(1);
}

static void test_informational_skipped(void **state)
{
    (void)state;
    script_add(&g.s, "HTTP/1.1 100 Continue\r\nX: y\r\n\r\n");
    add_206(&g.s, 0, 9, "");
    assert_int_equal(ota_httpc_request(&g.c, 0, 9, 0), OTA_HTTPC_OK);
    assert_int_equal(run(), OTA_HTTPC_OK);
    assert_delivered(0, 9);
}

static void test_connection_close(void **state)
{
    (void)state;
    add_206(&g.s, 0, 99, "Connection: close\r\n");
    assert_int_equal(ota_httpc_request(&g.c, 0, 99, 0), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_request(&g.c, 100, 199, 0), OTA_HTTPC_OK);
    g.s.piece = 50;
    /* the headers are read: no new request goes on a closing connection */
    assert_int_equal(ota_httpc_poll(&g.c, 0, 3), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_request(&g.c, 200, 299, 0), OTA_HTTPC_BUSY);
    assert_int_equal(run(), OTA_HTTPC_OK);
    assert_delivered(0, 99);
    assert_int_equal(g.k.ranges, 1);
    /* the pipelined request behind it is dropped; the next one reconnects */
    assert_int_equal(ota_httpc_in_flight(&g.c), 0);
    assert_int_equal(g.s.closes, 1);
    assert_int_equal(ota_httpc_request(&g.c, 100, 199, 0), OTA_HTTPC_OK);
    add_206(&g.s, 100, 199, "");
    assert_int_equal(run(), OTA_HTTPC_OK);
    assert_delivered(100, 199);
    assert_int_equal(g.s.opens, 2);
    assert_int_equal(ota_httpc_info(&g.c)->connects, 2);
}

static void test_http10_closes(void **state)
{
    (void)state;
    script_add(&g.s, "HTTP/1.0 206 Partial Content\r\nContent-Range: bytes 0-1/5000\r\n"
                     "Content-Length: 2\r\n\r\n");
    g.s.in[g.s.in_len++] = (char)file_byte(0);
    g.s.in[g.s.in_len++] = (char)file_byte(1);
    assert_int_equal(ota_httpc_request(&g.c, 0, 1, 0), OTA_HTTPC_OK);
    assert_int_equal(run(), OTA_HTTPC_OK);
    assert_delivered(0, 1);
    assert_int_equal(g.s.closes, 1);
}

/* Request 0..99, feed text, expect a failure with nothing delivered. */
static void check_refused(const char *answer, ota_httpc_result_t want)
{
    script_add(&g.s, answer);
    assert_int_equal(ota_httpc_request(&g.c, 0, 99, 0), OTA_HTTPC_OK);
    assert_failed(run(), want);
    assert_nothing();
    assert_int_equal(ota_httpc_info(&g.c)->last_first, 0);
    assert_int_equal(ota_httpc_info(&g.c)->last_last, 99);
}

static void test_expired_403(void **state)
{
    (void)state;
    check_refused("HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nexpired\r\n",
                  OTA_HTTPC_EXPIRED);
    assert_int_equal(ota_httpc_info(&g.c)->last_status, 403);
    /* a fresh URL on the same server keeps nothing open; the request goes out on a new connection
     */
    assert_int_equal(ota_httpc_set_url(&g.c, "http://files.example:8080/fw/a.bin?exp=999"),
                     OTA_HTTPC_OK);
    add_206(&g.s, 0, 99, "");
    assert_int_equal(ota_httpc_request(&g.c, 0, 99, 0), OTA_HTTPC_OK);
    assert_int_equal(run(), OTA_HTTPC_OK);
    assert_delivered(0, 99);
    assert_non_null(strstr(g.s.sent, "GET /fw/a.bin?exp=999 HTTP/1.1\r\n"));
}

static void test_statuses(void **state)
{
    static const struct {
        const char *answer;
        ota_httpc_result_t want;
    } cases[] = {
        {"HTTP/1.1 401 Unauthorized\r\n\r\n", OTA_HTTPC_EXPIRED},
        {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", OTA_HTTPC_NOT_FOUND},
        {"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */5000\r\n\r\n",
         OTA_HTTPC_RANGE_REFUSED},
        {"HTTP/1.1 500 Oops\r\n\r\n", OTA_HTTPC_SERVER_ERROR},
        {"HTTP/1.1 503 Slow Down\r\nRetry-After: 1\r\n\r\n", OTA_HTTPC_SERVER_ERROR},
        /* the server ignored Range: the whole file is not delivered as if it were the range */
        {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", OTA_HTTPC_STATUS},
        {"HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n", OTA_HTTPC_STATUS},
        {"HTTP/1.1 101 Switching Protocols\r\n\r\n", OTA_HTTPC_STATUS},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        setup(NULL);
        check_refused(cases[i].answer, cases[i].want);
    }
}

static void test_malformed(void **state)
{
    static const struct {
        const char *answer;
        ota_httpc_result_t want;
    } cases[] = {
        {"HTTP/2 206 x\r\n\r\n", OTA_HTTPC_MALFORMED},
        {"HTTP/1.1 20 x\r\n\r\n", OTA_HTTPC_MALFORMED},
        {"HTTP/1.1 206x\r\n\r\n", OTA_HTTPC_MALFORMED},
        {"ICY 200 OK\r\n\r\n", OTA_HTTPC_MALFORMED},
        {"HTTP/1.1 206 P\r\nContent-Range bytes 0-99/5000\r\n\r\n", OTA_HTTPC_MALFORMED},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/5000\r\n folded\r\n\r\n",
         OTA_HTTPC_MALFORMED},
        {"HTTP/1.1 206 P\r\nA: b\rc\r\n\r\n", OTA_HTTPC_MALFORMED},
        /* wrong or missing Content-Range */
        {"HTTP/1.1 206 P\r\nContent-Length: 100\r\n\r\n", OTA_HTTPC_WRONG_RANGE},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 1-100/5000\r\nContent-Length: 100\r\n\r\n",
         OTA_HTTPC_WRONG_RANGE},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-98/5000\r\nContent-Length: 99\r\n\r\n",
         OTA_HTTPC_WRONG_RANGE},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 1-99/5000\r\nContent-Length: 100\r\n\r\n",
         OTA_HTTPC_WRONG_RANGE},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-98/5000\r\nContent-Length: 100\r\n\r\n",
         OTA_HTTPC_WRONG_RANGE},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/99\r\nContent-Length: 100\r\n\r\n",
         OTA_HTTPC_WRONG_RANGE},
        {"HTTP/1.1 206 P\r\nContent-Range: items 0-99/5000\r\nContent-Length: 100\r\n\r\n",
         OTA_HTTPC_WRONG_RANGE},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/5000\r\nContent-Range: bytes 0-99/5000\r\n"
         "Content-Length: 100\r\n\r\n",
         OTA_HTTPC_WRONG_RANGE},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/99999999999\r\nContent-Length: 100\r\n\r\n",
         OTA_HTTPC_WRONG_RANGE},
        {"HTTP/1.1 206 P\r\nContent-Type: multipart/byteranges; boundary=x\r\n\r\n",
         OTA_HTTPC_WRONG_RANGE},
        /* framing */
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/5000\r\nContent-Length: 101\r\n\r\n",
         OTA_HTTPC_BAD_LENGTH},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/5000\r\n\r\n", OTA_HTTPC_BAD_LENGTH},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/5000\r\nContent-Length: 100\r\n"
         "Content-Length: 99\r\n\r\n",
         OTA_HTTPC_BAD_LENGTH},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/5000\r\nContent-Length: 100\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         OTA_HTTPC_BAD_LENGTH},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/5000\r\nTransfer-Encoding: gzip\r\n\r\n",
         OTA_HTTPC_BAD_LENGTH},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/5000\r\nContent-Length: -100\r\n\r\n",
         OTA_HTTPC_BAD_LENGTH},
        /* chunks larger than the range, or not hex */
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/5000\r\nTransfer-Encoding: chunked\r\n\r\n"
         "65\r\n",
         OTA_HTTPC_CHUNK_TOO_LARGE},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/5000\r\nTransfer-Encoding: chunked\r\n\r\n"
         "fffffffffffffffff\r\n",
         OTA_HTTPC_CHUNK_TOO_LARGE},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/5000\r\nTransfer-Encoding: chunked\r\n\r\n"
         "zz\r\n",
         OTA_HTTPC_MALFORMED},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/5000\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\n\r\n",
         OTA_HTTPC_BAD_LENGTH},
        /* an ETag of over OTA_HTTP_ETAG_MAX bytes */
        {"HTTP/1.1 206 P\r\nETag: \"0123456789012345678901234567890123456789012345678901234567890"
         "123456789\"\r\n\r\n",
         OTA_HTTPC_HEADER_TOO_LARGE},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        setup(NULL);
        check_refused(cases[i].answer, cases[i].want);
    }
}

static void test_oversized_chunk_after_data(void **state)
{
    uint32_t i;
    (void)state;
    script_add(&g.s, "HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/5000\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n3c\r\n");
    for (i = 0; i < 60; i++) {
        g.s.in[g.s.in_len++] = (char)file_byte(i);
    }
    script_add(&g.s, "\r\n29\r\n"); /* 41 > the 40 left */
    assert_int_equal(ota_httpc_request(&g.c, 0, 99, 0), OTA_HTTPC_OK);
    assert_failed(run(), OTA_HTTPC_CHUNK_TOO_LARGE);
    assert_delivered(0, 59);
    assert_int_equal(g.k.bytes, 60);
    assert_int_equal(g.k.ranges, 0);
}

static void test_chunk_end_not_crlf(void **state)
{
    (void)state;
    script_add(&g.s, "HTTP/1.1 206 P\r\nContent-Range: bytes 0-99/5000\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n1\r\naXY\r\n");
    assert_int_equal(ota_httpc_request(&g.c, 0, 99, 0), OTA_HTTPC_OK);
    assert_failed(run(), OTA_HTTPC_MALFORMED);
    assert_int_equal(g.k.bytes, 1);
}

static void test_truncated_headers_then_close(void **state)
{
    (void)state;
    script_add(&g.s, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-99/5000\r\nConte");
    g.s.close_at_end = 1;
    assert_int_equal(ota_httpc_request(&g.c, 0, 99, 0), OTA_HTTPC_OK);
    assert_failed(run(), OTA_HTTPC_CLOSED);
    assert_nothing();
}

static void test_closed_mid_body(void **state)
{
    (void)state;
    add_206(&g.s, 0, 99, "");
    add_206(&g.s, 100, 199, "");
    g.s.in_len -= 30; /* the second answer loses its last 30 bytes */
    g.s.close_at_end = 1;
    assert_int_equal(ota_httpc_request(&g.c, 0, 99, 0), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_request(&g.c, 100, 199, 0), OTA_HTTPC_OK);
    assert_failed(run(), OTA_HTTPC_CLOSED);
    assert_delivered(0, 169);
    assert_int_equal(g.k.bytes, 170);
    assert_int_equal(g.k.ranges, 1);
    assert_int_equal(ota_httpc_info(&g.c)->last_first, 100);
}

static void test_idle_close_is_quiet(void **state)
{
    (void)state;
    add_206(&g.s, 0, 9, "");
    g.s.close_at_end = 1;
    assert_int_equal(ota_httpc_request(&g.c, 0, 9, 0), OTA_HTTPC_OK);
    assert_int_equal(run(), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_poll(&g.c, 0, 0), OTA_HTTPC_OK);
    assert_int_equal(g.s.closes, 1);
    assert_int_equal(ota_httpc_info(&g.c)->failures, 0);
}

/* The second connection's answers: built like the first's, then moved aside. */
static void script_second(script_t *s, uint32_t first, uint32_t last)
{
    size_t keep = s->in_len;
    add_206(s, first, last, "");
    memcpy(s->in2, s->in + keep, s->in_len - keep);
    s->in2_len = s->in_len - keep;
    s->in_len = keep;
}

/* A reused connection closed by the server as the next request left: asked again once. */
static void test_resend_after_idle_close(void **state)
{
    (void)state;
    add_206(&g.s, 0, 99, "");
    script_second(&g.s, 100, 199);
    g.s.close_at_end = 1;
    assert_int_equal(ota_httpc_request(&g.c, 0, 99, 0), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_poll(&g.c, 0, 1), OTA_HTTPC_OK);
    assert_int_equal(g.k.ranges, 1);
    assert_int_equal(ota_httpc_request(&g.c, 100, 199, 0), OTA_HTTPC_OK);
    assert_int_equal(run(), OTA_HTTPC_OK);
    assert_delivered(0, 199);
    assert_int_equal(g.s.opens, 2);
    assert_int_equal(ota_httpc_info(&g.c)->resends, 1);
    assert_int_equal(ota_httpc_info(&g.c)->requests, 2);
    g.s.sent[g.s.sent_len] = 0;
    assert_non_null(strstr(strstr(g.s.sent, "bytes=100-199") + 1, "bytes=100-199"));
}

/* The send itself fails on the reused connection: sent again on a new one. */
static void test_resend_after_send_failure(void **state)
{
    (void)state;
    add_206(&g.s, 0, 99, "");
    script_second(&g.s, 100, 199);
    assert_int_equal(ota_httpc_request(&g.c, 0, 99, 0), OTA_HTTPC_OK);
    assert_int_equal(run(), OTA_HTTPC_OK);
    g.s.send_fails = 1;
    assert_int_equal(ota_httpc_request(&g.c, 100, 199, 0), OTA_HTTPC_OK);
    assert_int_equal(g.s.opens, 2);
    assert_int_equal(run(), OTA_HTTPC_OK);
    assert_delivered(0, 199);
    assert_int_equal(ota_httpc_info(&g.c)->resends, 1);
}

/* Only once, and never on a new connection or once an answer has begun. */
static void test_resend_once(void **state)
{
    (void)state;
    add_206(&g.s, 0, 99, "");
    g.s.close_at_end = 1; /* the second connection closes at once too */
    assert_int_equal(ota_httpc_request(&g.c, 0, 99, 0), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_poll(&g.c, 0, 1), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_request(&g.c, 100, 199, 0), OTA_HTTPC_OK);
    assert_failed(run(), OTA_HTTPC_CLOSED);
    assert_int_equal(g.s.opens, 2);
    assert_int_equal(ota_httpc_info(&g.c)->resends, 1);
    assert_delivered(0, 99);
    assert_int_equal(g.k.bytes, 100);
}

static void test_header_line_over_buffer(void **state)
{
    char line[OTA_HTTP_RX_BUFFER_SIZE + 16];
    (void)state;
    script_add(&g.s, "HTTP/1.1 206 P\r\nX-Long: ");
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = 0;
    script_add(&g.s, line);
    script_add(&g.s, "\r\n\r\n");
    assert_int_equal(ota_httpc_request(&g.c, 0, 99, 0), OTA_HTTPC_OK);
    assert_failed(run(), OTA_HTTPC_HEADER_TOO_LARGE);
    assert_nothing();
}

static void test_headers_over_total(void **state)
{
    uint32_t i;
    (void)state;
    script_add(&g.s, "HTTP/1.1 206 P\r\n");
    for (i = 0; i < OTA_HTTP_HEADER_BYTES_MAX / 16u + 1u; i++) {
        script_add(&g.s, "X-Pad: 12345678\r\n");
    }
    assert_int_equal(ota_httpc_request(&g.c, 0, 99, 0), OTA_HTTPC_OK);
    assert_failed(run(), OTA_HTTPC_HEADER_TOO_LARGE);
    assert_nothing();
}

static void test_etag_changed(void **state)
{
    (void)state;
    add_206(&g.s, 0, 9, "");
    script_add(&g.s, "HTTP/1.1 206 P\r\nContent-Range: bytes 10-19/5000\r\nContent-Length: 10\r\n"
                     "ETag: \"new\"\r\n\r\n0123456789");
    assert_int_equal(ota_httpc_request(&g.c, 0, 9, 0), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_request(&g.c, 10, 19, 0), OTA_HTTPC_OK);
    assert_failed(run(), OTA_HTTPC_CHANGED);
    assert_delivered(0, 9);
    assert_int_equal(g.k.bytes, 10);
}

static void test_other_file_size(void **state)
{
    (void)state;
    add_206(&g.s, 0, 9, "");
    script_add(&g.s, "HTTP/1.1 206 P\r\nContent-Range: bytes 10-19/6000\r\nContent-Length: 10\r\n"
                     "\r\n0123456789");
    assert_int_equal(ota_httpc_request(&g.c, 0, 9, 0), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_request(&g.c, 10, 19, 0), OTA_HTTPC_OK);
    assert_failed(run(), OTA_HTTPC_WRONG_RANGE);
    assert_int_equal(g.k.bytes, 10);
}

static void test_unsolicited_bytes(void **state)
{
    (void)state;
    add_206(&g.s, 0, 9, "");
    script_add(&g.s, "HTTP/1.1 206 P\r\n");
    assert_int_equal(ota_httpc_request(&g.c, 0, 9, 0), OTA_HTTPC_OK);
    assert_failed(run(), OTA_HTTPC_MALFORMED);
    assert_delivered(0, 9);
    assert_int_equal(g.k.ranges, 1);
}

static void test_timeout(void **state)
{
    (void)state;
    script_add(&g.s, "HTTP/1.1 206 P\r\n");
    assert_int_equal(ota_httpc_request(&g.c, 0, 9, 5000), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_poll(&g.c, 5500, 0), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_poll(&g.c, 6500, 0), OTA_HTTPC_OK); /* 1000 ms since the bytes */
    assert_failed(ota_httpc_poll(&g.c, 6501, 0), OTA_HTTPC_TIMEOUT);
}

static void test_consumer_error(void **state)
{
    (void)state;
    g.k.fail = 1;
    add_206(&g.s, 0, 9, "");
    assert_int_equal(ota_httpc_request(&g.c, 0, 9, 0), OTA_HTTPC_OK);
    assert_failed(run(), OTA_HTTPC_CONSUMER);
    assert_int_equal(ota_httpc_info(&g.c)->consumer_err, OTA_ERR_IO);
}

static void test_transport_failures(void **state)
{
    (void)state;
    g.s.open_fails = 1;
    assert_int_equal(ota_httpc_request(&g.c, 0, 9, 0), OTA_HTTPC_TRANSPORT);
    assert_int_equal(ota_httpc_in_flight(&g.c), 0);
    g.s.open_fails = 0;
    assert_int_equal(ota_httpc_request(&g.c, 0, 9, 0), OTA_HTTPC_OK);
    g.s.send_fails = 1;
    assert_int_equal(ota_httpc_request(&g.c, 10, 19, 0), OTA_HTTPC_TRANSPORT);
    assert_int_equal(ota_httpc_in_flight(&g.c), 0);
    assert_int_equal(g.s.closes, 1);
}

static void test_bad_arguments(void **state)
{
    ota_httpc_config_t cfg;
    (void)state;
    assert_int_equal(ota_httpc_request(&g.c, 10, 9, 0), OTA_HTTPC_INVALID_ARG);
    assert_int_equal(ota_httpc_request(&g.c, 0, UINT32_MAX, 0), OTA_HTTPC_INVALID_ARG);
    assert_int_equal(ota_httpc_request(NULL, 0, 1, 0), OTA_HTTPC_INVALID_ARG);
    assert_int_equal(ota_httpc_poll(NULL, 0, 0), OTA_HTTPC_INVALID_ARG);
    cfg = g.c.cfg;
    cfg.on_body = NULL;
    assert_int_equal(ota_httpc_init(&g.c, &cfg, "http://a/b"), OTA_HTTPC_INVALID_ARG);
    cfg = g.c.cfg;
    cfg.tx_size = 127;
    assert_int_equal(ota_httpc_init(&g.c, &cfg, "http://a/b"), OTA_HTTPC_INVALID_ARG);
    cfg.tx_size = 128; /* the request would not fit */
    assert_int_equal(ota_httpc_init(&g.c, &cfg,
                                    "http://a/0123456789012345678901234567890123456789"
                                    "0123456789012345678901234567890123456789"),
                     OTA_HTTPC_INVALID_ARG);
    assert_int_equal(ota_httpc_init(&g.c, &cfg, "http://a/b"), OTA_HTTPC_OK);
    /* a new URL while requests are in flight */
    assert_int_equal(ota_httpc_request(&g.c, 0, 1, 0), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_set_url(&g.c, "http://a/c"), OTA_HTTPC_BUSY);
    assert_int_equal(ota_httpc_set_url(&g.c, "ftp://a/c"), OTA_HTTPC_INVALID_ARG);
}

static void test_set_url_other_host_closes(void **state)
{
    (void)state;
    add_206(&g.s, 0, 9, "");
    assert_int_equal(ota_httpc_request(&g.c, 0, 9, 0), OTA_HTTPC_OK);
    assert_int_equal(run(), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_set_url(&g.c, "http://files.example:8080/other"), OTA_HTTPC_OK);
    assert_int_equal(g.s.closes, 0);
    assert_int_equal(ota_httpc_set_url(&g.c, "http://cdn.example:8080/other"), OTA_HTTPC_OK);
    assert_int_equal(g.s.closes, 1);
}

static void test_url_parse(void **state)
{
    ota_http_url_t u;
    static const char *const bad[] = {
        "ftp://a/b",       "http://",      "http:///x",   "http://a:0/",    "http://a:65536/",
        "http://a:/",      "http://a:8x/", "http://u@a/", "http://a/b c",   "http://a/b\r\nX: y",
        "http://a/b#frag", "http://[::1/", "http://a?q",  "https://a/\x7f",
    };
    size_t i;
    (void)state;
    assert_int_equal(ota_http_url_parse("https://h.example/p?q=1", 23, &u), OTA_HTTPC_OK);
    assert_int_equal(u.tls, 1);
    assert_int_equal(u.port, 443);
    assert_int_equal(u.host_len, 9);
    assert_memory_equal(u.host, "h.example", 9);
    assert_int_equal(u.target_len, 6);
    assert_memory_equal(u.target, "/p?q=1", 6);
    assert_int_equal(ota_http_url_parse("http://[::1]:8080", 17, &u), OTA_HTTPC_OK);
    assert_int_equal(u.tls, 0);
    assert_int_equal(u.port, 8080);
    assert_int_equal(u.host_len, 3);
    assert_memory_equal(u.host, "::1", 3);
    assert_int_equal(u.authority_len, 10);
    assert_int_equal(u.target_len, 1);
    assert_memory_equal(u.target, "/", 1);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ota_http_url_parse(bad[i], strlen(bad[i]), &u), OTA_HTTPC_INVALID_ARG);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_request_bytes, setup),
        cmocka_unit_test_setup(test_one_range_whole, setup),
        cmocka_unit_test_setup(test_one_range_byte_by_byte, setup),
        cmocka_unit_test_setup(test_pipelined, setup),
        cmocka_unit_test_setup(test_chunked, setup),
        cmocka_unit_test_setup(test_chunked_byte_by_byte, setup),
        cmocka_unit_test_setup(test_informational_skipped, setup),
        cmocka_unit_test_setup(test_connection_close, setup),
        cmocka_unit_test_setup(test_http10_closes, setup),
        cmocka_unit_test_setup(test_expired_403, setup),
        cmocka_unit_test_setup(test_statuses, setup),
        cmocka_unit_test_setup(test_malformed, setup),
        cmocka_unit_test_setup(test_oversized_chunk_after_data, setup),
        cmocka_unit_test_setup(test_chunk_end_not_crlf, setup),
        cmocka_unit_test_setup(test_truncated_headers_then_close, setup),
        cmocka_unit_test_setup(test_closed_mid_body, setup),
        cmocka_unit_test_setup(test_idle_close_is_quiet, setup),
        cmocka_unit_test_setup(test_resend_after_idle_close, setup),
        cmocka_unit_test_setup(test_resend_after_send_failure, setup),
        cmocka_unit_test_setup(test_resend_once, setup),
        cmocka_unit_test_setup(test_header_line_over_buffer, setup),
        cmocka_unit_test_setup(test_headers_over_total, setup),
        cmocka_unit_test_setup(test_etag_changed, setup),
        cmocka_unit_test_setup(test_other_file_size, setup),
        cmocka_unit_test_setup(test_unsolicited_bytes, setup),
        cmocka_unit_test_setup(test_timeout, setup),
        cmocka_unit_test_setup(test_consumer_error, setup),
        cmocka_unit_test_setup(test_transport_failures, setup),
        cmocka_unit_test_setup(test_bad_arguments, setup),
        cmocka_unit_test_setup(test_set_url_other_host_closes, setup),
        cmocka_unit_test_setup(test_url_parse, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
