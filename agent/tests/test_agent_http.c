/*
 * otter: the agent's HTTP data plane (OTA_HTTP_PLANE builds) against the
 * scripted broker and stream service (agent_harness), an in-memory port
 * (fake_pal) and a scripted HTTP server behind the byte-stream interface: it
 * reads the agent's requests and answers ranges of the file, or what a test
 * asks for (403 on an old URL, 503, a connection cut mid-answer, malformed
 * answers, a server that is down).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_harness.h"
#include "fake_pal.h"
#include "otter/ota_agent.h"

#define V1_0_0 0x01000000u
#define STREAM "AFR_OTA-5f0c2a44-1d2e-4c4b-9e1a-000000000002"
#define BLOCK 1024u
#define BLOCKS 200u
#define FILE_SIZE (BLOCKS * BLOCK - 300u)

/* ---- the scripted HTTP server ---- */

typedef struct peer {
    const uint8_t *file;
    uint32_t size;
    char token[16];     /* the URL's "t=" value the server accepts */
    int down;           /* open fails */
    int fail_5xx;       /* answer 503 to every request */
    uint32_t cut_after; /* close the connection after this many body bytes (0: never) */
    int malformed_at;   /* answer request n (1-based, counted from the setting) badly */
    const char *bad;    /* ... with this answer (a format of first, last, size) */
    int connected;
    char req[4096];
    size_t req_len;
    uint8_t out[1 << 18];
    size_t out_len, out_pos;
    int close_after_out; /* close once out is read */
    uint32_t opens, requests, body_bytes, expired_answers;
    uint16_t served[BLOCKS]; /* times each block's first byte was sent */
} peer_t;

static ota_err_t p_open(void *ctx)
{
    peer_t *p = ctx;
    if (p->down) {
        return OTA_ERR_IO;
    }
    p->opens++;
    p->connected = 1;
    p->req_len = 0;
    p->out_len = p->out_pos = 0;
    p->close_after_out = 0;
    return OTA_OK;
}

static void p_close(void *ctx)
{
    peer_t *p = ctx;
    p->connected = 0;
}

static void p_put(peer_t *p, const void *d, size_t n)
{
    assert_true(p->out_len + n <= sizeof p->out);
    memcpy(p->out + p->out_len, d, n);
    p->out_len += n;
}

/* Answers one request (text of its head). */
static void p_answer(peer_t *p, const char *head)
{
    char line[512], want[32];
    unsigned long first = 0, last = 0;
    const char *range = strstr(head, "\r\nRange: bytes=");
    p->requests++;
    if (range != NULL) {
        assert_int_equal(sscanf(range, "\r\nRange: bytes=%lu-%lu", &first, &last), 2);
    }
    if (p->malformed_at > 0 && --p->malformed_at == 0) {
        snprintf(line, sizeof line, p->bad, first, last, (unsigned)p->size);
        p_put(p, line, strlen(line));
        p->close_after_out = 1;
        return;
    }
    snprintf(want, sizeof want, "t=%s ", p->token);
    if (strstr(head, want) == NULL) {
        const char *a = "HTTP/1.1 403 Forbidden\r\nContent-Length: 11\r\n\r\nURL expired";
        p->expired_answers++;
        p_put(p, a, strlen(a));
        return;
    }
    if (p->fail_5xx) {
        const char *a = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
        p_put(p, a, strlen(a));
        return;
    }
    assert_non_null(range);
    assert_true(first <= last && last < p->size);
    snprintf(line, sizeof line,
             "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %lu-%lu/%u\r\n"
             "Content-Length: %lu\r\nETag: \"f1\"\r\n\r\n",
             first, last, (unsigned)p->size, last - first + 1u);
    p_put(p, line, strlen(line));
    for (unsigned long b = (first + BLOCK - 1u) / BLOCK; b * BLOCK <= last; b++) {
        p->served[b]++;
    }
    if (p->cut_after != 0u && p->body_bytes + (last - first + 1u) > p->cut_after) {
        uint32_t n = p->cut_after - p->body_bytes;
        p_put(p, p->file + first, n);
        p->body_bytes += n;
        p->cut_after = 0;
        p->close_after_out = 1;
        return;
    }
    p_put(p, p->file + first, last - first + 1u);
    p->body_bytes += (uint32_t)(last - first + 1u);
}

static ota_err_t p_send(void *ctx, const uint8_t *data, size_t len)
{
    peer_t *p = ctx;
    char *end;
    if (!p->connected) {
        return OTA_ERR_IO;
    }
    assert_true(p->req_len + len < sizeof p->req);
    memcpy(p->req + p->req_len, data, len);
    p->req_len += len;
    p->req[p->req_len] = '\0';
    while (!p->close_after_out && (end = strstr(p->req, "\r\n\r\n")) != NULL) {
        size_t n = (size_t)(end - p->req) + 4u;
        end[2] = '\0';
        p_answer(p, p->req);
        memmove(p->req, p->req + n, p->req_len - n + 1u);
        p->req_len -= n;
    }
    return OTA_OK;
}

static int32_t p_recv(void *ctx, uint8_t *buf, size_t cap)
{
    peer_t *p = ctx;
    size_t n = p->out_len - p->out_pos;
    if (!p->connected) {
        return -1;
    }
    if (n == 0u) {
        if (p->close_after_out) {
            p->connected = 0;
            return -1;
        }
        p->out_len = p->out_pos = 0;
        return 0;
    }
    if (n > cap) {
        n = cap;
    }
    if (n > 700u) {
        n = 700u; /* reads end anywhere in headers and bodies */
    }
    memcpy(buf, p->out + p->out_pos, n);
    p->out_pos += n;
    return (int32_t)n;
}

/* ---- fixture ---- */

typedef struct fixture {
    fake_pal_t pal;
    uint8_t file[FILE_SIZE];
    uint8_t sig[8];
    peer_t peer;
    harness_t *h;
} fixture_t;

static fixture_t *fixture_new(void)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    ota_agent_config_t cfg;
    assert_non_null(fx);
    fake_pal_init(&fx->pal, 1u << 20);
    for (uint32_t i = 0; i < FILE_SIZE; i++) {
        fx->file[i] = (uint8_t)(i * 13u + (i >> 10));
    }
    fake_pal_sign(fx->file, FILE_SIZE, fx->sig);
    fx->peer.file = fx->file;
    fx->peer.size = FILE_SIZE;
    strcpy(fx->peer.token, "1");
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = BLOCK;
    cfg.http.transport.ctx = &fx->peer;
    cfg.http.transport.open = p_open;
    cfg.http.transport.close = p_close;
    cfg.http.transport.send = p_send;
    cfg.http.transport.recv = p_recv;
    fx->h = h_new(&fx->pal.pal, V1_0_0, &cfg);
    return fx;
}

static void fixture_free(fixture_t *fx)
{
    h_free(fx->h);
    free(fx);
}

/* Replaces the first `from` in s (capacity cap) with `to`. */
static void replace(char *s, size_t cap, const char *from, const char *to)
{
    char *at = strstr(s, from);
    char rest[4096];
    assert_non_null(at);
    snprintf(rest, sizeof rest, "%s", at + strlen(from));
    assert_true((size_t)(at - s) + strlen(to) + strlen(rest) < cap);
    sprintf(at, "%s%s", to, rest);
}

/* The job's document lists protocols (a JSON array's inside) and the URL with token t. */
static void set_job(fixture_t *fx, const char *protocols, const char *t)
{
    char url[96];
    h_set_job(fx->h, "job-1", STREAM, fx->file, FILE_SIZE, fx->sig, sizeof fx->sig, "QUEUED", NULL);
    replace(fx->h->execution, sizeof fx->h->execution, "\"MQTT\"", protocols);
    snprintf(url, sizeof url, "\"http://files.example:8080/files/7?t=%s\"", t);
    replace(fx->h->execution, sizeof fx->h->execution, "null", url);
}

/* The service now hands out URLs with token t, and the server takes only those. */
static void rotate_url(fixture_t *fx, const char *t)
{
    char from[32], to[32];
    snprintf(from, sizeof from, "?t=%s\"", fx->peer.token);
    snprintf(to, sizeof to, "?t=%s\"", t);
    replace(fx->h->execution, sizeof fx->h->execution, from, to);
    snprintf(fx->peer.token, sizeof fx->peer.token, "%s", t);
}

static void start(fixture_t *fx)
{
    assert_int_equal(ota_agent_start(&fx->h->agent, fx->h->now), OTA_OK);
}

static int file_matches(const fixture_t *fx)
{
    return fx->pal.size == FILE_SIZE && memcmp(fx->pal.data, fx->file, FILE_SIZE) == 0;
}

static const ota_agent_stats_t *stats(const fixture_t *fx)
{
    return ota_agent_get_stats(&fx->h->agent);
}

/* Runs until `until` blocks are written (or the time is up). */
static void run_until_blocks(fixture_t *fx, uint32_t until)
{
    for (int i = 0; i < 20000 && fx->h->agent.dl.blocks_done < until; i++) {
        h_run(fx->h, 10, 10, NULL);
    }
}

static uint32_t blocks_served_twice(const fixture_t *fx)
{
    uint32_t n = 0;
    for (uint32_t b = 0; b < BLOCKS; b++) {
        n += fx->peer.served[b] > 1u ? fx->peer.served[b] - 1u : 0u;
    }
    return n;
}

/* 1 if a status update the agent sent holds text. */
static int status_has(fixture_t *fx, const char *text)
{
    h_serve(fx->h);
    for (size_t i = 0; i < fx->h->nstatus; i++) {
        if (strstr(fx->h->status[i], text) != NULL) {
            return 1;
        }
    }
    return 0;
}

/* ---- tests ---- */

/* "HTTP" first: every byte over HTTP, ranges pipelined on one connection, no stream request. */
static void test_http_download(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    set_job(fx, "\"HTTP\",\"MQTT\"", "1");
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->pal.rewrites, 0);
    assert_int_equal(fx->h->requests, 0); /* nothing over MQTT streams */
    assert_int_equal(stats(fx)->bytes_http, FILE_SIZE);
    assert_int_equal(stats(fx)->bytes_mqtt, 0);
    assert_int_equal(stats(fx)->http_bytes, FILE_SIZE);
    assert_int_equal(fx->peer.opens, 1);
    assert_int_equal(blocks_served_twice(fx), 0);
    assert_true(fx->peer.requests > 1u);
    /* the status reports say which plane delivered how much */
    assert_true(status_has(fx, "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":"
                               "\"200/200\",\"planes\":\"mqtt=0,http=204500,now=http\"}}"));
    fixture_free(fx);
}

/* "MQTT" first: the stream plane, even with a URL. */
static void test_mqtt_first(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    set_job(fx, "\"MQTT\",\"HTTP\"", "1");
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->peer.requests, 0);
    assert_int_equal(stats(fx)->bytes_mqtt, FILE_SIZE);
    fixture_free(fx);
}

/* The URL expires mid-download: 403, the job document again, the fresh URL, from the bitmap. */
static void test_expired_url_renewed(void **state)
{
    fixture_t *fx = fixture_new();
    uint32_t next_gets;
    (void)state;
    set_job(fx, "\"HTTP\"", "1");
    start(fx);
    run_until_blocks(fx, 60);
    next_gets = fx->h->next_gets;
    rotate_url(fx, "2");
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->pal.rewrites, 0);
    assert_true(fx->peer.expired_answers >= 1u);
    assert_true(fx->h->next_gets > next_gets);
    assert_int_equal(stats(fx)->url_renewals, 1);
    assert_int_equal(stats(fx)->failovers, 0);
    assert_int_equal(stats(fx)->bytes_http, FILE_SIZE);
    /* what was in flight when the 403 came was asked again, nothing more */
    assert_true(blocks_served_twice(fx) <= OTA_DEFAULT_WINDOW_BLOCKS);
    fixture_free(fx);
}

/* Expired and the document brings no fresh URL: the download goes on over MQTT. */
static void test_expired_no_fresh_url_fails_over(void **state)
{
    fixture_t *fx = fixture_new();
    uint32_t have;
    (void)state;
    set_job(fx, "\"HTTP\",\"MQTT\"", "1");
    start(fx);
    run_until_blocks(fx, 50);
    strcpy(fx->peer.token, "never"); /* the same URL comes back: still 403 */
    have = fx->h->agent.dl.blocks_done;
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->pal.rewrites, 0);
    assert_int_equal(stats(fx)->failovers, 1);
    assert_true(stats(fx)->bytes_http >= have * BLOCK);
    assert_int_equal(stats(fx)->bytes_http + stats(fx)->bytes_mqtt, FILE_SIZE);
    assert_true(status_has(fx, ",now=mqtt\"}}"));
    /* MQTT asked only for what the bitmap lacked */
    assert_true(fx->h->blocks_requested <= BLOCKS - have + OTA_DEFAULT_WINDOW_BLOCKS);
    fixture_free(fx);
}

/* The server answers 503 (or is killed: connections refused): MQTT takes over from the bitmap. */
static void test_server_errors_fail_over(void **state)
{
    for (int killed = 0; killed < 2; killed++) {
        fixture_t *fx = fixture_new();
        uint32_t have;
        (void)state;
        set_job(fx, "\"HTTP\",\"MQTT\"", "1");
        start(fx);
        run_until_blocks(fx, 80);
        have = fx->h->agent.dl.blocks_done;
        if (killed) {
            fx->peer.down = 1;
            fx->peer.connected = 0;
        } else {
            fx->peer.fail_5xx = 1;
        }
        assert_true(h_run(fx->h, 120000, 10, h_stop_activating));
        assert_true(file_matches(fx));
        assert_int_equal(fx->pal.rewrites, 0);
        assert_int_equal(stats(fx)->failovers, 1);
        assert_true(stats(fx)->bytes_http >= have * BLOCK);
        assert_int_equal(stats(fx)->bytes_http + stats(fx)->bytes_mqtt, FILE_SIZE);
        assert_true(fx->h->blocks_requested <= BLOCKS - have + OTA_DEFAULT_WINDOW_BLOCKS);
        fixture_free(fx);
    }
}

/* MQTT refused (throttled by the stream service): HTTP takes over from the bitmap. */
static void test_mqtt_throttled_fails_over(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    set_job(fx, "\"MQTT\",\"HTTP\"", "1");
    fx->h->policy.throttle_first = 1000;
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(stats(fx)->failovers, 1);
    assert_int_equal(stats(fx)->bytes_http, FILE_SIZE);
    assert_true(fx->h->requests >= 1u);
    fixture_free(fx);
}

/* A connection cut in the middle of a range: the block's bytes already written are not
 * written again; the rest comes on a new connection. */
static void test_cut_mid_range(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    set_job(fx, "\"HTTP\"", "1");
    fx->peer.cut_after = 50u * BLOCK + 333u;
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->pal.rewrites, 0);
    assert_true(fx->peer.opens >= 2u);
    assert_int_equal(stats(fx)->failovers, 0);
    assert_true(blocks_served_twice(fx) <= OTA_DEFAULT_WINDOW_BLOCKS);
    fixture_free(fx);
}

/*
 * A range cut in the middle of block 60, then a reboot before the block is asked again. What
 * the plane remembers of a block written in part is one block's count in RAM (part_block,
 * part_len): the reboot forgets it, the checkpoint never named the block, so the port's
 * resume makes it writable again and the resumed download writes it from its first byte.
 * Nothing is written twice over bytes the port kept, nothing before the block is fetched
 * again, and the file verifies.
 */
static void test_reboot_mid_block(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    set_job(fx, "\"HTTP\"", "1");
    fx->peer.cut_after = 60u * BLOCK + 333u;
    start(fx);
    for (int i = 0; i < 20000 && (fx->peer.cut_after != 0u || fx->peer.connected); i++) {
        h_run(fx->h, 1, 1, NULL);
    }
    assert_int_equal(fx->peer.cut_after, 0);
    assert_int_equal(fx->h->agent.dl.blocks_done, 60);
    assert_int_equal(fx->h->agent.http.part_block, 60);
    assert_int_equal(fx->h->agent.http.part_len, 333);
    for (uint32_t i = 0; i < BLOCK; i++) {
        assert_int_equal(fx->pal.written[60u * BLOCK + i], i < 333u);
    }
    h_reboot(fx->h, &fx->pal.pal, V1_0_0);
    assert_int_equal(fx->h->agent.http.part_len, 0);
    set_job(fx, "\"HTTP\"", "1");
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->pal.resumes, 1);
    assert_int_equal(fx->pal.rewrites, 0);
    assert_int_equal(stats(fx)->blocks_resumed, 60);
    assert_int_equal(fx->peer.served[60], 2);
    for (uint32_t b = 0; b < 60u; b++) {
        assert_int_equal(fx->peer.served[b], 1);
    }
    assert_int_equal(stats(fx)->bytes_http, FILE_SIZE - 60u * BLOCK);
    fixture_free(fx);
}

/* Malformed answers: a clear error, nothing written from them, the download goes on. */
static void test_malformed_answers(void **state)
{
    static const struct {
        const char *answer; /* format of first, last, size */
        ota_httpc_result_t error;
    } bad[] = {
        {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %lu-%lu/%u\r\n",
         OTA_HTTPC_CLOSED}, /* headers cut short */
        {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 1%lu-%lu/%u\r\n"
         "Content-Length: 1024\r\n\r\n",
         OTA_HTTPC_WRONG_RANGE},
        {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %lu-%lu/%u\r\n"
         "Transfer-Encoding: chunked\r\n\r\nFFFFF\r\n",
         OTA_HTTPC_CHUNK_TOO_LARGE},
        {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %lu-%lu/%u\r\n"
         "Content-Length: 1\r\n\r\nx",
         OTA_HTTPC_BAD_LENGTH},
        {"SMTP %lu %lu %u ready\r\n\r\n", OTA_HTTPC_MALFORMED},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fixture_t *fx = fixture_new();
        (void)state;
        set_job(fx, "\"HTTP\"", "1");
        start(fx);
        run_until_blocks(fx, 40);
        fx->peer.bad = bad[i].answer;
        fx->peer.malformed_at = 2;
        assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
        assert_true(file_matches(fx));
        assert_int_equal(fx->pal.rewrites, 0);
        assert_string_equal(ota_httpc_result_name(fx->h->agent.http.c.info.last_error),
                            ota_httpc_result_name(bad[i].error));
        assert_int_equal(fx->h->agent.http.c.info.failures, 1);
        assert_int_equal(stats(fx)->bytes_http, FILE_SIZE);
        assert_true(fx->peer.opens >= 2u);
        fixture_free(fx);
    }
}

/* HTTP alone and the server stays down: the job fails with the HTTP error named. */
static void test_http_only_down_fails(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    set_job(fx, "\"HTTP\"", "1");
    fx->peer.down = 1;
    start(fx);
    assert_true(h_run(fx->h, 600000, 50, h_stop_outcome));
    assert_int_equal(fx->h->outcome.status, OTA_OUTCOME_FAILED);
    assert_non_null(strstr(fx->h->outcome_detail, "OTA_HTTPC_TRANSPORT"));
    fixture_free(fx);
}

/* A reboot mid-download over HTTP resumes over MQTT from the checkpoint (and the other way). */
static void test_resume_on_other_plane(void **state)
{
    fixture_t *fx = fixture_new();
    uint32_t have;
    (void)state;
    set_job(fx, "\"HTTP\",\"MQTT\"", "1");
    start(fx);
    run_until_blocks(fx, 70);
    have = fx->h->agent.dl.blocks_done;
    h_reboot(fx->h, &fx->pal.pal, V1_0_0);
    set_job(fx, "\"MQTT\",\"HTTP\"", "1");
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_true(stats(fx)->blocks_resumed >= have - OTA_DEFAULT_WINDOW_BLOCKS);
    assert_true(fx->h->blocks_requested <= BLOCKS - stats(fx)->blocks_resumed);
    fixture_free(fx);
}

/* Documents: "HTTP" alone without a URL is refused; a URL over OTA_HTTP_URL_MAX too. */
static void test_documents(void **state)
{
    fixture_t *fx = fixture_new();
    ota_job_t job;
    ota_job_issue_t issue;
    char msg[6000], url[OTA_HTTP_URL_MAX + 40];
    (void)state;
    set_job(fx, "\"HTTP\",\"MQTT\"", "1");
    snprintf(msg, sizeof msg, "{\"execution\":%s}", fx->h->execution);
    assert_int_equal(ota_job_parse(msg, strlen(msg), &job, &issue), OTA_OK);
    assert_int_equal(job.first_protocol, OTA_PROTO_HTTP);
    assert_string_equal(job.url, "http://files.example:8080/files/7?t=1");
    h_set_job(fx->h, "job-1", STREAM, fx->file, FILE_SIZE, fx->sig, sizeof fx->sig, "QUEUED", NULL);
    replace(fx->h->execution, sizeof fx->h->execution, "\"MQTT\"", "\"HTTP\"");
    snprintf(msg, sizeof msg, "{\"execution\":%s}", fx->h->execution);
    assert_int_equal(ota_job_parse(msg, strlen(msg), &job, &issue), OTA_ERR_UNSUPPORTED);
    assert_int_equal(issue.problem, OTA_JOB_PROBLEM_NO_PROTOCOL);
    assert_string_equal(issue.field, "update_data_url");
    memset(url, 'a', sizeof url);
    memcpy(url, "\"http://x/", 10);
    url[OTA_HTTP_URL_MAX + 2] = '"';
    url[OTA_HTTP_URL_MAX + 3] = '\0';
    replace(fx->h->execution, sizeof fx->h->execution, "null", url);
    snprintf(msg, sizeof msg, "{\"execution\":%s}", fx->h->execution);
    assert_int_equal(ota_job_parse(msg, strlen(msg), &job, &issue), OTA_ERR_BAD_JOB_DOC);
    assert_int_equal(issue.problem, OTA_JOB_PROBLEM_FIELD_TOO_LONG);
    assert_string_equal(issue.field, "update_data_url");
    fixture_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documents),
        cmocka_unit_test(test_http_download),
        cmocka_unit_test(test_mqtt_first),
        cmocka_unit_test(test_expired_url_renewed),
        cmocka_unit_test(test_expired_no_fresh_url_fails_over),
        cmocka_unit_test(test_server_errors_fail_over),
        cmocka_unit_test(test_mqtt_throttled_fails_over),
        cmocka_unit_test(test_cut_mid_range),
        cmocka_unit_test(test_reboot_mid_block),
        cmocka_unit_test(test_malformed_answers),
        cmocka_unit_test(test_http_only_down_fails),
        cmocka_unit_test(test_resume_on_other_plane),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
