/*
 * otter-service streams, end to end: a real broker, the real service, a store
 * populated through its API, scripted device clients. GetStream windows,
 * offsets, the short last block, repeated requests, DescribeStream, the JSON
 * variant, every refusal while a second device keeps being served, a broker
 * restart, and a clean stop.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ota_svc_test_fixture.h"
#include "ota_test_net.h"

#define FILE_SIZE 100000u /* 25 blocks of 4096; the last is 1696 bytes */
#define BS 4096u
#define NBLOCKS 25u

static svc_fx_t g_fx;
static ota_test_client_t *g_dev0;
static ota_test_client_t *g_dev1;

static void topic(char *out, size_t cap, const char *thing, const char *stream, const char *op)
{
    snprintf(out, cap, "$aws/things/%s/streams/%s/%s", thing,
             stream != NULL ? stream : g_fx.stream_id, op);
}

/* Subscribes to what the service answers (not to the device's own requests). */
static void subscribe_answers(ota_test_client_t *c, const char *thing)
{
    static const char *const kinds[] = {"data", "rejected", "description"};
    char t[256];
    for (size_t i = 0; i < 3; i++) {
        snprintf(t, sizeof(t), "$aws/things/%s/streams/+/%s/+", thing, kinds[i]);
        assert_int_equal(ota_test_client_subscribe(c, t, 0), 0);
    }
}

static ota_test_client_t *device(const char *thing)
{
    ota_test_client_t *c = ota_test_thing_connect(&g_fx.broker, thing);
    assert_non_null(c);
    subscribe_answers(c, thing);
    return c;
}

static int group_setup(void **state)
{
    (void)state;
    if (svc_fx_setup(&g_fx, FILE_SIZE, 4) != 0 || svc_fx_start_service(&g_fx, NULL) != 0) {
        svc_fx_teardown(&g_fx);
        return -1;
    }
    g_dev0 = device("dev-0");
    g_dev1 = device("dev-1");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ota_test_client_disconnect(g_dev0);
    ota_test_client_disconnect(g_dev1);
    svc_fx_teardown(&g_fx);
    return 0;
}

static void send_get(ota_test_client_t *c, const char *thing, const char *stream, const char *tok,
                     long long f, long long l, long long o, const uint8_t *b, size_t blen,
                     long long n)
{
    char t[256];
    size_t len;
    uint8_t *req = svc_cbor_get(tok, f, l, o, b, blen, n, &len);
    topic(t, sizeof(t), thing, stream, "get/cbor");
    assert_int_equal(ota_test_client_publish(c, t, req, len, 0), 0);
    free(req);
}

/* Takes one data message and checks it is block idx, byte for byte. */
static uint64_t expect_block(ota_test_client_t *c, const char *thing, const char *tok, uint64_t bs)
{
    char t[256];
    svc_block_t b;
    topic(t, sizeof(t), thing, NULL, "data/cbor");
    ota_test_msg_t *m = ota_test_client_expect(c, t, 5000);
    if (m == NULL) {
        svc_fx_dump_log(&g_fx, 0);
    }
    assert_non_null(m);
    assert_int_equal(svc_decode_block(m->payload, m->len, &b), 0);
    uint64_t want = (b.i + 1) * bs <= FILE_SIZE ? bs : FILE_SIZE - b.i * bs;
    assert_int_equal(b.f, 0);
    assert_true(b.i * bs < FILE_SIZE);
    assert_int_equal(b.l, want);
    assert_int_equal(b.plen, want);
    assert_memory_equal(b.p, g_fx.file + b.i * bs, want);
    if (tok != NULL) {
        assert_true(b.has_c);
        assert_string_equal(b.c, tok);
    } else {
        assert_false(b.has_c);
    }
    uint64_t i = b.i;
    ota_test_msg_free(m);
    return i;
}

static void expect_nothing_more(ota_test_client_t *c)
{
    ota_test_msg_t *m = ota_test_client_expect(c, NULL, 300);
    if (m != NULL) {
        fail_msg("unexpected message on %s", m->topic);
    }
}

static void test_whole_file_one_request(void **state)
{
    (void)state;
    uint8_t b[4] = {0xff, 0xff, 0xff, 0x01};
    uint8_t seen[NBLOCKS] = {0};
    send_get(g_dev0, "dev-0", NULL, "rdy", 0, BS, 0, b, sizeof(b), NBLOCKS);
    for (unsigned k = 0; k < NBLOCKS; k++) {
        uint64_t i = expect_block(g_dev0, "dev-0", "rdy", BS);
        assert_false(seen[i]);
        seen[i] = 1;
    }
    expect_nothing_more(g_dev0);
}

static void test_windows_offsets_last_block(void **state)
{
    (void)state;
    /* Window of 4 at offset 8. */
    uint8_t b = 0x0f;
    send_get(g_dev0, "dev-0", NULL, "w", 0, BS, 8, &b, 1, 4);
    for (unsigned k = 0; k < 4; k++) {
        assert_int_equal(expect_block(g_dev0, "dev-0", "w", BS), 8 + k);
    }
    expect_nothing_more(g_dev0);

    /* The short last block through an offset. */
    b = 0x01;
    send_get(g_dev0, "dev-0", NULL, NULL, 0, BS, 24, &b, 1, 1);
    assert_int_equal(expect_block(g_dev0, "dev-0", NULL, BS), 24);

    /* Repeated requests are answered again. */
    for (int rep = 0; rep < 3; rep++) {
        b = 0x05;
        send_get(g_dev0, "dev-0", NULL, "again", 0, BS, 20, &b, 1, 8);
        assert_int_equal(expect_block(g_dev0, "dev-0", "again", BS), 20);
        assert_int_equal(expect_block(g_dev0, "dev-0", "again", BS), 22);
    }
    expect_nothing_more(g_dev0);

    /* n caps a bitmap; blocks beyond the file are ignored. */
    uint8_t all[8];
    memset(all, 0xff, sizeof(all));
    send_get(g_dev0, "dev-0", NULL, "cap", 0, BS, 0, all, sizeof(all), 3);
    for (unsigned k = 0; k < 3; k++) {
        assert_int_equal(expect_block(g_dev0, "dev-0", "cap", BS), k);
    }
    expect_nothing_more(g_dev0);
    send_get(g_dev0, "dev-0", NULL, "tail", 0, BS, 22, all, sizeof(all), 64);
    for (unsigned k = 0; k < 3; k++) {
        assert_int_equal(expect_block(g_dev0, "dev-0", "tail", BS), 22 + k);
    }
    expect_nothing_more(g_dev0);

    /* Without a bitmap: n blocks from o; 1 KiB blocks. */
    send_get(g_dev0, "dev-0", NULL, "nb", 0, 1024, 95, NULL, 0, 10);
    for (unsigned k = 0; k < 3; k++) { /* 98 blocks of 1 KiB: 95, 96, 97 */
        assert_int_equal(expect_block(g_dev0, "dev-0", "nb", 1024), 95 + k);
    }
    expect_nothing_more(g_dev0);
}

static void test_describe(void **state)
{
    (void)state;
    char t[256];
    static const uint8_t req[] = {0xa1, 0x61, 0x63, 0x62, 0x64, 0x31}; /* {"c":"d1"} */
    topic(t, sizeof(t), "dev-0", NULL, "describe/cbor");
    assert_int_equal(ota_test_client_publish(g_dev0, t, req, sizeof(req), 0), 0);
    topic(t, sizeof(t), "dev-0", NULL, "description/cbor");
    ota_test_msg_t *m = ota_test_client_expect(g_dev0, t, 5000);
    assert_non_null(m);
    /* {"c":"d1","s":1,"d":"firmware for the streams tests","r":[{"f":0,"z":100000}]} */
    static const char desc[] = "firmware for the streams tests";
    uint8_t expect[128];
    size_t n = 0;
    static const uint8_t head[] = {0xa4, 0x61, 0x63, 0x62, 0x64, 0x31,
                                   0x61, 0x73, 0x01, 0x61, 0x64};
    memcpy(expect, head, sizeof(head));
    n = sizeof(head);
    expect[n++] = 0x78; /* text, one length byte (30 >= 24) */
    expect[n++] = (uint8_t)(sizeof(desc) - 1);
    memcpy(expect + n, desc, sizeof(desc) - 1);
    n += sizeof(desc) - 1;
    static const uint8_t tail[] = {0x61, 0x72, 0x81, 0xa2, 0x61, 0x66, 0x00,
                                   0x61, 0x7a, 0x1a, 0x00, 0x01, 0x86, 0xa0};
    memcpy(expect + n, tail, sizeof(tail));
    n += sizeof(tail);
    assert_int_equal(m->len, n);
    assert_memory_equal(m->payload, expect, n);
    ota_test_msg_free(m);
}

/* A second device is served correctly right after every refusal. */
static void other_device_served(void)
{
    uint8_t b = 0x03;
    send_get(g_dev1, "dev-1", NULL, "bystander", 0, BS, 23, &b, 1, 2);
    assert_int_equal(expect_block(g_dev1, "dev-1", "bystander", BS), 23);
    assert_int_equal(expect_block(g_dev1, "dev-1", "bystander", BS), 24);
}

static void expect_rejected(ota_test_client_t *c, const char *thing, const char *stream,
                            const char *suffix, const char *code, const char *token)
{
    char t[256];
    char got[64], tok[96];
    topic(t, sizeof(t), thing, stream, suffix);
    ota_test_msg_t *m = ota_test_client_expect(c, t, 5000);
    if (m == NULL) {
        fail_msg("no refusal on %s (wanted %s)", t, code);
    }
    if (strstr(suffix, "json") != NULL) {
        cJSON *o = cJSON_ParseWithLength((const char *)m->payload, m->len);
        assert_non_null(o);
        assert_string_equal(cJSON_GetObjectItem(o, "o")->valuestring, code);
        cJSON *ct = cJSON_GetObjectItem(o, "c");
        if (token != NULL) {
            assert_string_equal(ct->valuestring, token);
        } else {
            assert_null(ct);
        }
        cJSON_Delete(o);
    } else {
        assert_int_equal(
            svc_decode_rejection(m->payload, m->len, got, sizeof(got), tok, sizeof(tok)), 0);
        if (strcmp(got, code) != 0) {
            fail_msg("refusal %s, wanted %s", got, code);
        }
        assert_string_equal(tok, token != NULL ? token : "");
    }
    ota_test_msg_free(m);
    assert_int_equal(ota_test_client_pending(c, NULL), 0);
    other_device_served();
}

static void test_refusals(void **state)
{
    (void)state;
    char t[256];
    uint8_t b = 0x01;

    /* Undecodable CBOR. */
    static const uint8_t garbage[] = {0xff, 0xfe, 0x00, 0x61};
    topic(t, sizeof(t), "dev-0", NULL, "get/cbor");
    assert_int_equal(ota_test_client_publish(g_dev0, t, garbage, sizeof(garbage), 0), 0);
    expect_rejected(g_dev0, "dev-0", NULL, "rejected/cbor", "InvalidCbor", NULL);

    /* Undecodable JSON. */
    topic(t, sizeof(t), "dev-0", NULL, "get/json");
    assert_int_equal(ota_test_client_publish(g_dev0, t, "{\"c\":\"j\",", 9, 0), 0);
    expect_rejected(g_dev0, "dev-0", NULL, "rejected/json", "InvalidJson", NULL);

    /* Missing file id. */
    send_get(g_dev0, "dev-0", NULL, "r1", SVC_ABSENT, BS, 0, &b, 1, 1);
    expect_rejected(g_dev0, "dev-0", NULL, "rejected/cbor", "InvalidRequest", "r1");

    /* Block size out of bounds, both sides. */
    send_get(g_dev0, "dev-0", NULL, "r2", 0, 100, 0, &b, 1, 1);
    expect_rejected(g_dev0, "dev-0", NULL, "rejected/cbor", "BlockSizeOutOfBounds", "r2");
    send_get(g_dev0, "dev-0", NULL, "r3", 0, 131073, 0, &b, 1, 1);
    expect_rejected(g_dev0, "dev-0", NULL, "rejected/cbor", "BlockSizeOutOfBounds", "r3");

    /* Unknown file id. */
    send_get(g_dev0, "dev-0", NULL, "r4", 7, BS, 0, &b, 1, 1);
    expect_rejected(g_dev0, "dev-0", NULL, "rejected/cbor", "ResourceNotFound", "r4");

    /* Bitmap too large. */
    static uint8_t big[12288];
    memset(big, 0xff, sizeof(big));
    send_get(g_dev0, "dev-0", NULL, "r5", 0, BS, 0, big, sizeof(big), 1);
    expect_rejected(g_dev0, "dev-0", NULL, "rejected/cbor", "BlockBitmapLimitExceeded", "r5");

    /* Offset beyond the file. */
    send_get(g_dev0, "dev-0", NULL, "r6", 0, BS, NBLOCKS, &b, 1, 1);
    expect_rejected(g_dev0, "dev-0", NULL, "rejected/cbor", "OffsetOutOfBounds", "r6");

    /* Too many blocks. */
    send_get(g_dev0, "dev-0", NULL, "r7", 0, BS, 0, NULL, 0, 1000000);
    expect_rejected(g_dev0, "dev-0", NULL, "rejected/cbor", "BlockCountLimitExceeded", "r7");

    /* Unknown stream. */
    send_get(g_dev0, "dev-0", "AFR_OTA-no-such-stream", "r8", 0, BS, 0, &b, 1, 1);
    expect_rejected(g_dev0, "dev-0", "AFR_OTA-no-such-stream", "rejected/cbor", "ResourceNotFound",
                    "r8");

    /* A thing without a job on the stream. */
    ota_test_client_t *intruder = device("intruder");
    send_get(intruder, "intruder", NULL, "r9", 0, BS, 0, &b, 1, 1);
    expect_rejected(intruder, "intruder", NULL, "rejected/cbor", "Unauthorized", "r9");
    topic(t, sizeof(t), "intruder", NULL, "describe/cbor");
    assert_int_equal(ota_test_client_publish(intruder, t, "", 0, 0), 0);
    expect_rejected(intruder, "intruder", NULL, "rejected/cbor", "Unauthorized", NULL);
    ota_test_client_disconnect(intruder);

    /* Stream version mismatch: {"c":"r10","s":5,"f":0,"l":4096,"n":1}. */
    static const uint8_t vm[] = {0xa5, 0x61, 0x63, 0x63, 0x72, 0x31, 0x30, 0x61, 0x73, 0x05, 0x61,
                                 0x66, 0x00, 0x61, 0x6c, 0x19, 0x10, 0x00, 0x61, 0x6e, 0x01};
    topic(t, sizeof(t), "dev-0", NULL, "get/cbor");
    assert_int_equal(ota_test_client_publish(g_dev0, t, vm, sizeof(vm), 0), 0);
    expect_rejected(g_dev0, "dev-0", NULL, "rejected/cbor", "VersionMismatch", "r10");

    /* A duplicate key that carries ESC, a line break and a forged log line: the
     * refusal's log line quotes it escaped, and no line of the log is forged. */
    static const char dup[] = "{\"\\u001b[2J\\n2026-12-07T19:59:59Z otter-service[x] ERROR "
                              "forged\":1,\"\\u001b[2J\\n2026-12-07T19:59:59Z otter-service[x] "
                              "ERROR forged\":2}";
    long from = ota_test_log_size(g_fx.svc_log[0]);
    topic(t, sizeof(t), "dev-0", NULL, "get/json");
    assert_int_equal(ota_test_client_publish(g_dev0, t, dup, sizeof(dup) - 1, 0), 0);
    expect_rejected(g_dev0, "dev-0", NULL, "rejected/json", "InvalidJson", NULL);
    assert_int_equal(ota_test_log_wait(g_fx.svc_log[0], from,
                                       "\\x1b[2J\\x0a2026-12-07T19:59:59Z otter-service[x] "
                                       "ERROR forged\" appears twice",
                                       5000),
                     0);
    FILE *log = fopen(g_fx.svc_log[0], "rb");
    assert_non_null(log);
    char line[4096];
    while (fgets(line, sizeof line, log) != NULL) {
        assert_null(strchr(line, 0x1b));
        assert_int_not_equal(strncmp(line, "2026-12-07T19:59:59Z otter-service[x]", 38), 0);
    }
    fclose(log);

    /* JSON refusals carry the token too. */
    static const char jreq[] = "{\"c\":\"j2\",\"f\":0,\"l\":64,\"n\":1}";
    topic(t, sizeof(t), "dev-0", NULL, "get/json");
    assert_int_equal(ota_test_client_publish(g_dev0, t, jreq, sizeof(jreq) - 1, 0), 0);
    expect_rejected(g_dev0, "dev-0", NULL, "rejected/json", "BlockSizeOutOfBounds", "j2");
}

static size_t b64_decode(const char *in, uint8_t *out)
{
    static const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *in != '\0' && *in != '='; in++) {
        const char *p = strchr(alpha, *in);
        assert_non_null(p);
        acc = acc << 6 | (uint32_t)(p - alpha);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}

static void test_json_variant(void **state)
{
    (void)state;
    char t[256];
    static const char req[] = "{\"c\":\"js\",\"f\":0,\"l\":4096,\"o\":22,\"b\":\"0x07\",\"n\":3}";
    topic(t, sizeof(t), "dev-0", NULL, "get/json");
    assert_int_equal(ota_test_client_publish(g_dev0, t, req, sizeof(req) - 1, 0), 0);
    topic(t, sizeof(t), "dev-0", NULL, "data/json");
    static uint8_t bytes[BS];
    for (unsigned k = 0; k < 3; k++) {
        ota_test_msg_t *m = ota_test_client_expect(g_dev0, t, 5000);
        assert_non_null(m);
        cJSON *o = cJSON_ParseWithLength((const char *)m->payload, m->len);
        assert_non_null(o);
        assert_string_equal(cJSON_GetObjectItem(o, "c")->valuestring, "js");
        unsigned i = (unsigned)cJSON_GetObjectItem(o, "i")->valuedouble;
        unsigned l = (unsigned)cJSON_GetObjectItem(o, "l")->valuedouble;
        assert_int_equal(i, 22 + k);
        assert_int_equal(l, i == 24 ? FILE_SIZE - 24 * BS : BS);
        assert_int_equal(b64_decode(cJSON_GetObjectItem(o, "p")->valuestring, bytes), l);
        assert_memory_equal(bytes, g_fx.file + (size_t)i * BS, l);
        cJSON_Delete(o);
        ota_test_msg_free(m);
    }
    expect_nothing_more(g_dev0);
}

static void test_broker_restart(void **state)
{
    (void)state;
    long from = ota_test_log_size(g_fx.svc_log[0]);
    assert_int_equal(ota_test_broker_restart(&g_fx.broker), 0);
    /* The service reconnects and subscribes again. */
    if (ota_test_log_wait(g_fx.svc_log[0], from, OTA_TEST_SERVICE_READY, 15000) != 0) {
        svc_fx_dump_log(&g_fx, 0);
        fail_msg("the service did not resubscribe after the broker restart");
    }
    /* The test clients reconnect by themselves; clean sessions: subscribe again. */
    for (int i = 0;
         i < 500 && !(ota_test_client_connected(g_dev0) && ota_test_client_connected(g_dev1));
         i++) {
        usleep(10000);
    }
    subscribe_answers(g_dev0, "dev-0");
    subscribe_answers(g_dev1, "dev-1");
    uint8_t b = 0x01;
    send_get(g_dev0, "dev-0", NULL, "after", 0, BS, 5, &b, 1, 1);
    assert_int_equal(expect_block(g_dev0, "dev-0", "after", BS), 5);
    other_device_served();
}

static void test_clean_stop(void **state)
{
    (void)state;
    assert_int_equal(svc_fx_stop_service(&g_fx, 0), 0);
    assert_int_equal(ota_test_log_wait(g_fx.svc_log[0], 0, "INFO stopped", 1000), 0);
    assert_true(svc_fx_log_stat(&g_fx, 0, "stream_requests") > 20);
    assert_true(svc_fx_log_stat(&g_fx, 0, "stream_rejected") >= 14);
    assert_int_equal(ota_test_log_wait(g_fx.svc_log[0], 0, "disconnected from", 100), 0);
    /* A summary line per thing and stream. */
    assert_int_equal(ota_test_log_wait(g_fx.svc_log[0], 0, "streams: thing dev-1 stream", 100), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_file_one_request),
        cmocka_unit_test(test_windows_offsets_last_block),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_json_variant),
        cmocka_unit_test(test_broker_restart),
        cmocka_unit_test(test_clean_stop),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
