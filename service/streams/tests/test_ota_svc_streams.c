/*
 * Unit tests of the streams module: a fake stream source, a recording publish,
 * libcbor and cJSON as oracles.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cbor.h>
#include <cjson/cJSON.h>

#include "ota_svc_streams.h"

/* ---------------------------------------------------------------- fakes -- */

#define MAX_MSGS 4096

typedef struct rec_msg {
    char *topic;
    uint8_t *payload;
    size_t len;
} rec_msg_t;

typedef struct fixture {
    ota_svc_streams_t *s;
    rec_msg_t msgs[MAX_MSGS];
    size_t n_msgs;
    int fail_publish;
    /* the fake store */
    char path_small[64]; /* 10000 bytes */
    char path_big[64];   /* 1 MiB */
    uint8_t *small;
    uint8_t *big;
    ota_svc_stream_file_t files[3];
    int gets, found, releases;
    int get_fails;
    char log[64][512];
    size_t n_log;
} fixture_t;

static int fake_get(void *ctx, const char *stream_id, ota_svc_stream_t *out)
{
    fixture_t *fx = ctx;
    fx->gets++;
    if (fx->get_fails) {
        return -1;
    }
    if (strcmp(stream_id, "AFR_OTA-s1") == 0) {
        out->version = 1;
        out->description = "firmware 1.1.0";
        out->n_files = 2;
        out->files = fx->files;
        fx->found++;
        return 1;
    }
    if (strcmp(stream_id, "broken") == 0) {
        out->version = 7;
        out->description = NULL;
        out->n_files = 1;
        out->files = &fx->files[2];
        fx->found++;
        return 1;
    }
    return 0;
}

static void fake_release(void *ctx, ota_svc_stream_t *stream)
{
    fixture_t *fx = ctx;
    (void)stream;
    fx->releases++;
}

static int fake_may_read(void *ctx, const char *thing, const char *stream_id)
{
    (void)ctx;
    (void)stream_id;
    if (strcmp(thing, "broken-auth") == 0) {
        return -5;
    }
    return strncmp(thing, "dev", 3) == 0;
}

static int rec_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos)
{
    fixture_t *fx = ctx;
    assert_int_equal(qos, 0);
    if (fx->fail_publish) {
        return -1;
    }
    assert_true(fx->n_msgs < MAX_MSGS);
    rec_msg_t *m = &fx->msgs[fx->n_msgs++];
    m->topic = strdup(topic);
    m->payload = malloc(len + 1);
    memcpy(m->payload, payload, len);
    m->payload[len] = 0;
    m->len = len;
    return 0;
}

static void rec_log(void *ctx, int level, const char *line)
{
    fixture_t *fx = ctx;
    (void)level;
    if (fx->n_log < 64) {
        snprintf(fx->log[fx->n_log++], sizeof(fx->log[0]), "%s", line);
    }
}

static void clear_msgs(fixture_t *fx)
{
    for (size_t i = 0; i < fx->n_msgs; i++) {
        free(fx->msgs[i].topic);
        free(fx->msgs[i].payload);
    }
    fx->n_msgs = 0;
}

static uint8_t *write_file(char *path, size_t size, uint32_t seed)
{
    uint8_t *data = malloc(size);
    uint32_t x = seed;
    for (size_t i = 0; i < size; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (uint8_t)(x >> 16);
    }
    snprintf(path, 64, "/tmp/otter-streams-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, size), (ssize_t)size);
    close(fd);
    return data;
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    fx->small = write_file(fx->path_small, 10000, 1);
    fx->big = write_file(fx->path_big, 1u << 20, 2);
    fx->files[0] = (ota_svc_stream_file_t){0, fx->path_small, 10000};
    fx->files[1] = (ota_svc_stream_file_t){3, fx->path_big, 1u << 20};
    fx->files[2] = (ota_svc_stream_file_t){0, "/nonexistent/otter/file.bin", 5000};
    ota_svc_streams_source_t src = {fake_get, fake_release, fake_may_read, fx};
    fx->s = ota_svc_streams_create(&src, rec_publish, fx);
    assert_non_null(fx->s);
    ota_svc_streams_set_log(fx->s, rec_log, fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    /* Every successful lookup was released. */
    assert_int_equal(fx->releases, fx->found);
    ota_svc_streams_destroy(fx->s);
    clear_msgs(fx);
    unlink(fx->path_small);
    unlink(fx->path_big);
    free(fx->small);
    free(fx->big);
    free(fx);
    return 0;
}

/* ------------------------------------------------------------- requests -- */

#define ABSENT (-1)

/* A GetStream CBOR map in the AWS agent's key order c, f, l, o, b, n (absent: ABSENT/NULL). */
static unsigned char *req_cbor(const char *c, long long f, long long l, long long o,
                               const uint8_t *b, size_t blen, long long n, size_t *len)
{
    cbor_item_t *m = cbor_new_indefinite_map();
#define ADD(k, v)                                                                                  \
    assert_true(cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_string(k)), cbor_move(v)}))
    if (c != NULL) {
        ADD("c", cbor_build_string(c));
    }
    if (f != ABSENT) {
        ADD("f", cbor_build_uint64((uint64_t)f));
    }
    if (l != ABSENT) {
        ADD("l", cbor_build_uint64((uint64_t)l));
    }
    if (o != ABSENT) {
        ADD("o", cbor_build_uint64((uint64_t)o));
    }
    if (b != NULL) {
        ADD("b", cbor_build_bytestring(b, blen));
    }
    if (n != ABSENT) {
        ADD("n", cbor_build_uint64((uint64_t)n));
    }
#undef ADD
    /* Re-pack as a definite map, as devices send. */
    size_t np = cbor_map_size(m);
    cbor_item_t *d = cbor_new_definite_map(np);
    for (size_t i = 0; i < np; i++) {
        cbor_map_add(d, cbor_map_handle(m)[i]);
    }
    unsigned char *buf = NULL;
    size_t cap = 0;
    *len = cbor_serialize_alloc(d, &buf, &cap);
    assert_true(*len > 0);
    cbor_decref(&d);
    cbor_decref(&m);
    return buf;
}

static const char *T_GET = "$aws/things/dev-1/streams/AFR_OTA-s1/get/cbor";
static const char *T_GET_JSON = "$aws/things/dev-1/streams/AFR_OTA-s1/get/json";
static const char *T_DATA = "$aws/things/dev-1/streams/AFR_OTA-s1/data/cbor";
static const char *T_REJ = "$aws/things/dev-1/streams/AFR_OTA-s1/rejected/cbor";

static void handle(fixture_t *fx, const char *topic, const void *p, size_t len)
{
    assert_int_equal(ota_svc_streams_handle(fx->s, topic, p, len, 1000), 1);
}

static void get(fixture_t *fx, const char *c, long long f, long long l, long long o,
                const uint8_t *b, size_t blen, long long n)
{
    size_t len;
    unsigned char *p = req_cbor(c, f, l, o, b, blen, n, &len);
    handle(fx, T_GET, p, len);
    free(p);
}

/* Decoded data message. */
typedef struct block {
    int has_c;
    char c[80];
    uint64_t f, i, l;
    const uint8_t *p;
    size_t plen;
    cbor_item_t *root;
} block_t;

static void decode_block(const rec_msg_t *m, block_t *b)
{
    struct cbor_load_result res;
    memset(b, 0, sizeof(*b));
    assert_string_equal(m->topic, T_DATA);
    b->root = cbor_load(m->payload, m->len, &res);
    assert_non_null(b->root);
    assert_int_equal(res.read, m->len);
    assert_true(cbor_isa_map(b->root));
    struct cbor_pair *pr = cbor_map_handle(b->root);
    for (size_t k = 0; k < cbor_map_size(b->root); k++) {
        char key = (char)cbor_string_handle(pr[k].key)[0];
        switch (key) {
        case 'c':
            b->has_c = 1;
            memcpy(b->c, cbor_string_handle(pr[k].value), cbor_string_length(pr[k].value));
            break;
        case 'f':
            b->f = cbor_get_int(pr[k].value);
            break;
        case 'i':
            b->i = cbor_get_int(pr[k].value);
            break;
        case 'l':
            b->l = cbor_get_int(pr[k].value);
            break;
        case 'p':
            b->p = cbor_bytestring_handle(pr[k].value);
            b->plen = cbor_bytestring_length(pr[k].value);
            break;
        default:
            fail_msg("unexpected key %c", key);
        }
    }
}

/* Checks message k is block idx of the file with block size l, correct bytes. */
static void check_block(fixture_t *fx, size_t k, const uint8_t *file, uint64_t fsize, uint64_t l,
                        uint64_t fid, uint64_t idx)
{
    block_t b;
    assert_true(k < fx->n_msgs);
    decode_block(&fx->msgs[k], &b);
    uint64_t expect_len = (idx + 1) * l <= fsize ? l : fsize - idx * l;
    assert_int_equal(b.f, fid);
    assert_int_equal(b.i, idx);
    assert_int_equal(b.l, expect_len);
    assert_int_equal(b.plen, expect_len);
    assert_memory_equal(b.p, file + idx * l, expect_len);
    cbor_decref(&b.root);
}

/* Decodes a rejection and checks code and token. */
static void check_rejected(fixture_t *fx, const char *topic, const char *code, const char *token)
{
    struct cbor_load_result res;
    assert_int_equal(fx->n_msgs, 1);
    assert_string_equal(fx->msgs[0].topic, topic);
    cbor_item_t *root = cbor_load(fx->msgs[0].payload, fx->msgs[0].len, &res);
    assert_non_null(root);
    assert_true(cbor_isa_map(root));
    int seen_o = 0, seen_m = 0, seen_c = 0;
    struct cbor_pair *pr = cbor_map_handle(root);
    for (size_t k = 0; k < cbor_map_size(root); k++) {
        char key = (char)cbor_string_handle(pr[k].key)[0];
        const char *v = (const char *)cbor_string_handle(pr[k].value);
        size_t vl = cbor_string_length(pr[k].value);
        if (key == 'o') {
            seen_o = 1;
            if (vl != strlen(code) || memcmp(v, code, vl) != 0) {
                fail_msg("code %.*s, expected %s", (int)vl, v, code);
            }
        } else if (key == 'm') {
            seen_m = 1;
            assert_true(vl > 0);
        } else if (key == 'c') {
            seen_c = 1;
            assert_non_null(token);
            assert_int_equal(vl, strlen(token));
            assert_memory_equal(v, token, vl);
        }
    }
    assert_true(seen_o && seen_m);
    assert_int_equal(seen_c, token != NULL);
    cbor_decref(&root);
    clear_msgs(fx);
}

/* ---------------------------------------------------------------- tests -- */

static void test_topics(void **state)
{
    fixture_t *fx = *state;
    const char *const *t = ota_svc_streams_topics();
    assert_string_equal(t[0], "$aws/things/+/streams/+/get/cbor");
    assert_string_equal(t[1], "$aws/things/+/streams/+/get/json");
    assert_string_equal(t[2], "$aws/things/+/streams/+/describe/cbor");
    assert_string_equal(t[3], "$aws/things/+/streams/+/describe/json");
    assert_null(t[4]);
    /* Not ours: nothing published. */
    assert_int_equal(ota_svc_streams_handle(fx->s, "$aws/things/dev-1/jobs/$next/get", "{}", 2, 0),
                     0);
    assert_int_equal(
        ota_svc_streams_handle(fx->s, "$aws/things/dev-1/streams/AFR_OTA-s1/data/cbor", "", 0, 0),
        0);
    assert_int_equal(ota_svc_streams_handle(fx->s, "$aws/things/dev-1/streams/x", "", 0, 0), 0);
    assert_int_equal(ota_svc_streams_handle(fx->s, "other/topic", "", 0, 0), 0);
    assert_int_equal(fx->n_msgs, 0);
    /* Ours but unusable names: ignored. */
    char topic[400];
    char longname[200];
    memset(longname, 'a', 129);
    longname[129] = '\0';
    snprintf(topic, sizeof(topic), "$aws/things/%s/streams/AFR_OTA-s1/get/cbor", longname);
    assert_int_equal(ota_svc_streams_handle(fx->s, topic, "", 0, 0), 1);
    assert_int_equal(ota_svc_streams_handle(fx->s, "$aws/things//streams/s/get/cbor", "", 0, 0), 1);
    assert_int_equal(fx->n_msgs, 0);
}

/* The AWS v3 agent's request, byte for byte, and the answer, byte for byte. */
static void test_aws_request_byte_exact(void **state)
{
    fixture_t *fx = *state;
    static const uint8_t req[] = {0xa6, 0x61, 0x63, 0x63, 0x72, 0x64, 0x79, 0x61, 0x66,
                                  0x00, 0x61, 0x6c, 0x19, 0x10, 0x00, 0x61, 0x6f, 0x00,
                                  0x61, 0x62, 0x41, 0x07, 0x61, 0x6e, 0x01};
    static const uint8_t head[] = {0xa5, 0x61, 0x63, 0x63, 0x72, 0x64, 0x79, 0x61,
                                   0x66, 0x00, 0x61, 0x69, 0x00, 0x61, 0x6c, 0x19,
                                   0x10, 0x00, 0x61, 0x70, 0x59, 0x10, 0x00};
    handle(fx, T_GET, req, sizeof(req));
    assert_int_equal(fx->n_msgs, 1);
    assert_string_equal(fx->msgs[0].topic, T_DATA);
    assert_int_equal(fx->msgs[0].len, sizeof(head) + 4096);
    assert_memory_equal(fx->msgs[0].payload, head, sizeof(head));
    assert_memory_equal(fx->msgs[0].payload + sizeof(head), fx->small, 4096);
    clear_msgs(fx);

    /* Last block, short: 10000 - 2 * 4096 = 1808 bytes; no token. */
    static const uint8_t req2[] = {0xa4, 0x61, 0x66, 0x00, 0x61, 0x6c, 0x19, 0x10,
                                   0x00, 0x61, 0x6f, 0x02, 0x61, 0x6e, 0x01};
    static const uint8_t head2[] = {0xa4, 0x61, 0x66, 0x00, 0x61, 0x69, 0x02, 0x61, 0x6c,
                                    0x19, 0x07, 0x10, 0x61, 0x70, 0x59, 0x07, 0x10};
    handle(fx, T_GET, req2, sizeof(req2));
    assert_int_equal(fx->n_msgs, 1);
    assert_int_equal(fx->msgs[0].len, sizeof(head2) + 1808);
    assert_memory_equal(fx->msgs[0].payload, head2, sizeof(head2));
    assert_memory_equal(fx->msgs[0].payload + sizeof(head2), fx->small + 8192, 1808);
    clear_msgs(fx);
}

static void test_window_all_blocks(void **state)
{
    fixture_t *fx = *state;
    uint8_t b = 0x07;
    get(fx, "rdy", 0, 4096, 0, &b, 1, 3);
    assert_int_equal(fx->n_msgs, 3);
    for (size_t k = 0; k < 3; k++) {
        check_block(fx, k, fx->small, 10000, 4096, 0, k);
    }
    block_t blk;
    decode_block(&fx->msgs[0], &blk);
    assert_true(blk.has_c);
    assert_string_equal(blk.c, "rdy");
    cbor_decref(&blk.root);
    clear_msgs(fx);

    /* Repeating the request gives the same answer. */
    for (int rep = 0; rep < 3; rep++) {
        get(fx, "rdy", 0, 4096, 0, &b, 1, 3);
        assert_int_equal(fx->n_msgs, 3);
        for (size_t k = 0; k < 3; k++) {
            check_block(fx, k, fx->small, 10000, 4096, 0, k);
        }
        clear_msgs(fx);
    }
}

static void test_bitmap_sparse_and_offset(void **state)
{
    fixture_t *fx = *state;
    /* Blocks 1 and 2 only (bits 1, 2). */
    uint8_t b = 0x06;
    get(fx, NULL, 0, 4096, 0, &b, 1, 10);
    assert_int_equal(fx->n_msgs, 2);
    check_block(fx, 0, fx->small, 10000, 4096, 0, 1);
    check_block(fx, 1, fx->small, 10000, 4096, 0, 2);
    clear_msgs(fx);

    /* Relative to o: o = 1, bit 1 -> block 2 (the short one). */
    b = 0x02;
    get(fx, NULL, 0, 4096, 1, &b, 1, 10);
    assert_int_equal(fx->n_msgs, 1);
    check_block(fx, 0, fx->small, 10000, 4096, 0, 2);
    clear_msgs(fx);

    /* Big file, l = 1024, o = 300, bitmap bits 0, 9, 17 -> blocks 300, 309, 317. */
    uint8_t bm[3] = {0x01, 0x02, 0x02};
    get(fx, "x", 3, 1024, 300, bm, 3, 100);
    assert_int_equal(fx->n_msgs, 3);
    check_block(fx, 0, fx->big, 1u << 20, 1024, 3, 300);
    check_block(fx, 1, fx->big, 1u << 20, 1024, 3, 309);
    check_block(fx, 2, fx->big, 1u << 20, 1024, 3, 317);
    clear_msgs(fx);

    /* Bits beyond the file are ignored: 16 bits asked, 3 blocks exist. */
    uint8_t all[2] = {0xff, 0xff};
    get(fx, NULL, 0, 4096, 0, all, 2, 16);
    assert_int_equal(fx->n_msgs, 3);
    clear_msgs(fx);

    /* Empty bitmap: nothing asked, nothing sent. */
    get(fx, NULL, 0, 4096, 0, all, 0, 16);
    assert_int_equal(fx->n_msgs, 0);

    /* Block size 256 and 131072 (the bounds) are served. */
    b = 0x01;
    get(fx, NULL, 0, 256, 39, &b, 1, 1); /* block 39 = last, 10000 - 39*256 = 16 bytes */
    assert_int_equal(fx->n_msgs, 1);
    check_block(fx, 0, fx->small, 10000, 256, 0, 39);
    clear_msgs(fx);
    get(fx, NULL, 0, 131072, 0, &b, 1, 1); /* one short block: the whole file */
    assert_int_equal(fx->n_msgs, 1);
    check_block(fx, 0, fx->small, 10000, 131072, 0, 0);
    clear_msgs(fx);
}

static void test_n_without_bitmap(void **state)
{
    fixture_t *fx = *state;
    get(fx, NULL, 3, 4096, 2, NULL, 0, 5);
    assert_int_equal(fx->n_msgs, 5);
    for (size_t k = 0; k < 5; k++) {
        check_block(fx, k, fx->big, 1u << 20, 4096, 3, 2 + k);
    }
    clear_msgs(fx);
    /* Up to the end of the file only. */
    get(fx, NULL, 0, 4096, 1, NULL, 0, 50);
    assert_int_equal(fx->n_msgs, 2);
    check_block(fx, 0, fx->small, 10000, 4096, 0, 1);
    check_block(fx, 1, fx->small, 10000, 4096, 0, 2);
    clear_msgs(fx);
}

static void test_caps(void **state)
{
    fixture_t *fx = *state;
    uint8_t all[16];
    memset(all, 0xff, sizeof(all));

    /* n caps the blocks sent with a bitmap. */
    get(fx, NULL, 3, 4096, 0, all, sizeof(all), 4);
    assert_int_equal(fx->n_msgs, 4);
    for (size_t k = 0; k < 4; k++) {
        check_block(fx, k, fx->big, 1u << 20, 4096, 3, k);
    }
    clear_msgs(fx);

    /* 128 blocks of 4 KiB wanted, no n: 128 KiB cap = 32 blocks. */
    get(fx, NULL, 3, 4096, 0, all, sizeof(all), ABSENT);
    assert_int_equal(fx->n_msgs, 32);
    check_block(fx, 31, fx->big, 1u << 20, 4096, 3, 31);
    clear_msgs(fx);

    /* Same with n = 1000 and without bitmap. */
    get(fx, NULL, 3, 4096, 10, NULL, 0, 1000);
    assert_int_equal(fx->n_msgs, 32);
    check_block(fx, 0, fx->big, 1u << 20, 4096, 3, 10);
    check_block(fx, 31, fx->big, 1u << 20, 4096, 3, 41);
    clear_msgs(fx);

    /* 100000-byte blocks: two would exceed 128 KiB, so one per request. */
    get(fx, NULL, 3, 100000, 0, all, 1, 8);
    assert_int_equal(fx->n_msgs, 1);
    check_block(fx, 0, fx->big, 1u << 20, 100000, 3, 0);
    clear_msgs(fx);

    /* 131072-byte blocks: exactly one. */
    get(fx, NULL, 3, 131072, 2, all, 2, 8);
    assert_int_equal(fx->n_msgs, 1);
    check_block(fx, 0, fx->big, 1u << 20, 131072, 3, 2);
    clear_msgs(fx);

    /* Payload counted per request: a short last block can still fit. */
    uint8_t tail = 0xff;
    get(fx, NULL, 0, 4096, 0, &tail, 1, ABSENT);
    assert_int_equal(fx->n_msgs, 3);
    clear_msgs(fx);
}

/* A valid request still works; used after every malformed one. */
static void still_serving(fixture_t *fx)
{
    uint8_t b = 0x05;
    get(fx, "ok", 0, 4096, 0, &b, 1, 3);
    assert_int_equal(fx->n_msgs, 2);
    check_block(fx, 0, fx->small, 10000, 4096, 0, 0);
    check_block(fx, 1, fx->small, 10000, 4096, 0, 2);
    clear_msgs(fx);
}

static void expect_reject(fixture_t *fx, const char *topic, const void *p, size_t len,
                          const char *rej_topic, const char *code, const char *token)
{
    handle(fx, topic, p, len);
    check_rejected(fx, rej_topic, code, token);
    still_serving(fx);
}

static void expect_reject_req(fixture_t *fx, const char *code, const char *token, const char *c,
                              long long f, long long l, long long o, const uint8_t *b, size_t blen,
                              long long n)
{
    size_t len;
    unsigned char *p = req_cbor(c, f, l, o, b, blen, n, &len);
    expect_reject(fx, T_GET, p, len, T_REJ, code, token);
    free(p);
}

static void test_reject_undecodable(void **state)
{
    fixture_t *fx = *state;
    static const uint8_t garbage[] = {0xff, 0x00, 0x13};
    static const uint8_t truncated[] = {0xa6, 0x61, 0x63, 0x63, 0x72, 0x64};
    static const uint8_t array[] = {0x82, 0x01, 0x02};
    static const uint8_t trailing[] = {0xa0, 0x00};
    static const uint8_t big_len[] = {0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_reject(fx, T_GET, garbage, sizeof(garbage), T_REJ, "InvalidCbor", NULL);
    expect_reject(fx, T_GET, truncated, sizeof(truncated), T_REJ, "InvalidCbor", NULL);
    expect_reject(fx, T_GET, array, sizeof(array), T_REJ, "InvalidCbor", NULL);
    expect_reject(fx, T_GET, trailing, sizeof(trailing), T_REJ, "InvalidCbor", NULL);
    expect_reject(fx, T_GET, big_len, sizeof(big_len), T_REJ, "InvalidCbor", NULL);
    expect_reject(fx, T_GET, "", 0, T_REJ, "InvalidCbor", NULL);
    /* Declared sizes far beyond the input: refused, nothing allocated for them. */
    static const uint8_t huge_map[] = {0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_reject(fx, T_GET, huge_map, sizeof(huge_map), T_REJ, "InvalidCbor", NULL);
    static const uint8_t huge_array_value[] = {0xa2, 0x61, 0x63, 0x61, 0x74, 0x61, 0x78,
                                               0x9a, 0xff, 0xff, 0xff, 0xff, 0x00};
    expect_reject(fx, T_GET, huge_array_value, sizeof(huge_array_value), T_REJ, "InvalidCbor",
                  NULL);
    /* Reserved additional information, a stray break. */
    static const uint8_t reserved[] = {0xa1, 0x61, 0x66, 0x1c};
    expect_reject(fx, T_GET, reserved, sizeof(reserved), T_REJ, "InvalidCbor", NULL);
    static const uint8_t stray_break[] = {0xa1, 0x61, 0x66, 0xff};
    expect_reject(fx, T_GET, stray_break, sizeof(stray_break), T_REJ, "InvalidCbor", NULL);
    /* Deep nesting inside an ignored value. */
    static uint8_t deep_value[4000];
    deep_value[0] = 0xa1;
    deep_value[1] = 0x61;
    deep_value[2] = 0x78;
    memset(deep_value + 3, 0x81, sizeof(deep_value) - 4);
    deep_value[sizeof(deep_value) - 1] = 0x00;
    expect_reject(fx, T_GET, deep_value, sizeof(deep_value), T_REJ, "InvalidCbor", NULL);
    /* A moderately nested ignored value is fine: {"x":[[[0]]],"f":0,"l":4096,"n":1}. */
    static const uint8_t nested_ok[] = {0xa4, 0x61, 0x78, 0x81, 0x81, 0x81, 0x00, 0x61, 0x66,
                                        0x00, 0x61, 0x6c, 0x19, 0x10, 0x00, 0x61, 0x6e, 0x01};
    handle(fx, T_GET, nested_ok, sizeof(nested_ok));
    assert_int_equal(fx->n_msgs, 1);
    clear_msgs(fx);
    /* Deep nesting within the size limit is refused without trouble. */
    static uint8_t deep[16000];
    memset(deep, 0x81, sizeof(deep));
    expect_reject(fx, T_GET, deep, sizeof(deep), T_REJ, "InvalidCbor", NULL);
    /* Above the size limit. */
    static uint8_t huge[70000];
    memset(huge, 0x81, sizeof(huge));
    expect_reject(fx, T_GET, huge, sizeof(huge), T_REJ, "InvalidRequest", NULL);
}

static void test_reject_invalid_request(void **state)
{
    fixture_t *fx = *state;
    uint8_t b = 1;
    expect_reject_req(fx, "InvalidRequest", "t1", "t1", ABSENT, 4096, 0, &b, 1, 1); /* no f */
    expect_reject_req(fx, "InvalidRequest", "t2", "t2", 0, ABSENT, 0, &b, 1, 1);    /* no l */
    expect_reject_req(fx, "InvalidRequest", "t3", "t3", 0, 4096, 0, NULL, 0, ABSENT);
    expect_reject_req(fx, "InvalidRequest", "t4", "t4", 0, 4096, 0, &b, 1, 0); /* n = 0 */
    char longtok[66];
    memset(longtok, 'k', 65);
    longtok[65] = '\0';
    expect_reject_req(fx, "InvalidRequest", NULL, longtok, 0, 4096, 0, &b, 1, 1);
    char tok64[65];
    memset(tok64, 'k', 64);
    tok64[64] = '\0';
    size_t len;
    unsigned char *p = req_cbor(tok64, 0, 4096, 0, &b, 1, 1, &len);
    handle(fx, T_GET, p, len);
    free(p);
    assert_int_equal(fx->n_msgs, 1);
    assert_string_equal(fx->msgs[0].topic, T_DATA);
    clear_msgs(fx);

    /* Wrong types: l as text, c as a number, b as text, f negative. */
    static const uint8_t l_text[] = {0xa3, 0x61, 0x66, 0x00, 0x61, 0x6c,
                                     0x61, 0x31, 0x61, 0x6e, 0x01};
    expect_reject(fx, T_GET, l_text, sizeof(l_text), T_REJ, "InvalidRequest", NULL);
    static const uint8_t c_int[] = {0xa4, 0x61, 0x63, 0x05, 0x61, 0x66, 0x00, 0x61,
                                    0x6c, 0x19, 0x10, 0x00, 0x61, 0x6e, 0x01};
    expect_reject(fx, T_GET, c_int, sizeof(c_int), T_REJ, "InvalidRequest", NULL);
    static const uint8_t b_text[] = {0xa5, 0x61, 0x63, 0x61, 0x7a, 0x61, 0x66, 0x00, 0x61, 0x6c,
                                     0x19, 0x10, 0x00, 0x61, 0x62, 0x61, 0x07, 0x61, 0x6e, 0x01};
    expect_reject(fx, T_GET, b_text, sizeof(b_text), T_REJ, "InvalidRequest", "z");
    static const uint8_t f_neg[] = {0xa3, 0x61, 0x66, 0x20, 0x61, 0x6c,
                                    0x19, 0x10, 0x00, 0x61, 0x6e, 0x01};
    expect_reject(fx, T_GET, f_neg, sizeof(f_neg), T_REJ, "InvalidRequest", NULL);

    /* Unknown keys are ignored, integer keys too. */
    static const uint8_t extra[] = {0xa5, 0x61, 0x66, 0x00, 0x61, 0x6c, 0x19, 0x10, 0x00,
                                    0x61, 0x6e, 0x01, 0x61, 0x78, 0x01, 0x05, 0x06};
    handle(fx, T_GET, extra, sizeof(extra));
    assert_int_equal(fx->n_msgs, 1);
    check_block(fx, 0, fx->small, 10000, 4096, 0, 0);
    clear_msgs(fx);
}

static void test_reject_bounds(void **state)
{
    fixture_t *fx = *state;
    uint8_t b = 1;
    expect_reject_req(fx, "BlockSizeOutOfBounds", "a", "a", 0, 255, 0, &b, 1, 1);
    expect_reject_req(fx, "BlockSizeOutOfBounds", "a", "a", 0, 131073, 0, &b, 1, 1);
    expect_reject_req(fx, "BlockSizeOutOfBounds", "a", "a", 0, 0, 0, &b, 1, 1);
    /* 10000 bytes / 4096 = 3 blocks: offsets 3 and beyond are out. */
    expect_reject_req(fx, "OffsetOutOfBounds", "a", "a", 0, 4096, 3, &b, 1, 1);
    expect_reject_req(fx, "OffsetOutOfBounds", "a", "a", 0, 4096, 1000000, NULL, 0, 1);
    expect_reject_req(fx, "BlockCountLimitExceeded", "a", "a", 0, 4096, 0, NULL, 0, 98305);
    static uint8_t bm[12400];
    memset(bm, 0xff, sizeof(bm));
    expect_reject_req(fx, "BlockBitmapLimitExceeded", "a", "a", 0, 256, 0, bm, 12288, 1);
    expect_reject_req(fx, "BlockBitmapLimitExceeded", "a", "a", 0, 256, 0, bm, 12400, 1);
    /* 12287 bytes is allowed. */
    get(fx, NULL, 3, 256, 0, bm, 12287, 2);
    assert_int_equal(fx->n_msgs, 2);
    clear_msgs(fx);
    /* n = 98304 is allowed (capped by 128 KiB). */
    get(fx, NULL, 3, 4096, 0, NULL, 0, 98304);
    assert_int_equal(fx->n_msgs, 32);
    clear_msgs(fx);
}

static void test_reject_lookup(void **state)
{
    fixture_t *fx = *state;
    uint8_t b = 1;
    size_t len;
    unsigned char *p = req_cbor("tok", 0, 4096, 0, &b, 1, 1, &len);

    /* Unknown stream. */
    expect_reject(fx, "$aws/things/dev-1/streams/nope/get/cbor", p, len,
                  "$aws/things/dev-1/streams/nope/rejected/cbor", "ResourceNotFound", "tok");
    /* Thing without permission. */
    expect_reject(fx, "$aws/things/other/streams/AFR_OTA-s1/get/cbor", p, len,
                  "$aws/things/other/streams/AFR_OTA-s1/rejected/cbor", "Unauthorized", "tok");
    /* Permission check failing. */
    expect_reject(fx, "$aws/things/broken-auth/streams/AFR_OTA-s1/get/cbor", p, len,
                  "$aws/things/broken-auth/streams/AFR_OTA-s1/rejected/cbor", "InternalError",
                  "tok");
    /* File missing on disk. */
    expect_reject(fx, "$aws/things/dev-1/streams/broken/get/cbor", p, len,
                  "$aws/things/dev-1/streams/broken/rejected/cbor", "InternalError", "tok");
    free(p);
    /* Unknown file id. */
    expect_reject_req(fx, "ResourceNotFound", "tok", "tok", 9, 4096, 0, &b, 1, 1);
    /* Lookup failing. */
    fx->get_fails = 1;
    p = req_cbor("tok", 0, 4096, 0, &b, 1, 1, &len);
    handle(fx, T_GET, p, len);
    free(p);
    check_rejected(fx, T_REJ, "InternalError", "tok");
    fx->get_fails = 0;
    still_serving(fx);
}

static void test_version(void **state)
{
    fixture_t *fx = *state;
    /* {c:"v", s:2, f:0, l:4096, n:1} -> VersionMismatch; s:1 -> served. */
    uint8_t req[] = {0xa5, 0x61, 0x63, 0x61, 0x76, 0x61, 0x73, 0x02, 0x61, 0x66,
                     0x00, 0x61, 0x6c, 0x19, 0x10, 0x00, 0x61, 0x6e, 0x01};
    expect_reject(fx, T_GET, req, sizeof(req), T_REJ, "VersionMismatch", "v");
    req[7] = 0x01;
    handle(fx, T_GET, req, sizeof(req));
    assert_int_equal(fx->n_msgs, 1);
    check_block(fx, 0, fx->small, 10000, 4096, 0, 0);
    clear_msgs(fx);
}

static void test_indefinite_encodings(void **state)
{
    fixture_t *fx = *state;
    /* Indefinite map; bitmap as an indefinite byte string of two chunks: 0x01 | 0x01. */
    static const uint8_t req[] = {0xbf, 0x61, 0x66, 0x00, 0x61, 0x6c, 0x19, 0x04, 0x00,
                                  0x61, 0x62, 0x5f, 0x41, 0x01, 0x41, 0x01, 0xff, 0xff};
    handle(fx, T_GET, req, sizeof(req));
    assert_int_equal(fx->n_msgs, 2);
    check_block(fx, 0, fx->small, 10000, 1024, 0, 0);
    check_block(fx, 1, fx->small, 10000, 1024, 0, 8);
    clear_msgs(fx);
}

/* ----------------------------------------------------------------- JSON -- */

static size_t b64_decode(const char *in, uint8_t *out)
{
    static const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *in != '\0' && *in != '='; in++) {
        const char *pos = strchr(alpha, *in);
        assert_non_null(pos);
        acc = acc << 6 | (uint32_t)(pos - alpha);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}

static void check_json_block(fixture_t *fx, size_t k, const char *token, const uint8_t *file,
                             uint64_t fsize, uint64_t l, uint64_t fid, uint64_t idx)
{
    assert_string_equal(fx->msgs[k].topic, "$aws/things/dev-1/streams/AFR_OTA-s1/data/json");
    cJSON *o = cJSON_ParseWithLength((const char *)fx->msgs[k].payload, fx->msgs[k].len);
    assert_non_null(o);
    uint64_t expect_len = (idx + 1) * l <= fsize ? l : fsize - idx * l;
    cJSON *c = cJSON_GetObjectItem(o, "c");
    if (token != NULL) {
        assert_true(cJSON_IsString(c));
        assert_string_equal(c->valuestring, token);
    } else {
        assert_null(c);
    }
    assert_int_equal((uint64_t)cJSON_GetObjectItem(o, "f")->valuedouble, fid);
    assert_int_equal((uint64_t)cJSON_GetObjectItem(o, "i")->valuedouble, idx);
    assert_int_equal((uint64_t)cJSON_GetObjectItem(o, "l")->valuedouble, expect_len);
    const char *p = cJSON_GetObjectItem(o, "p")->valuestring;
    assert_int_equal(strlen(p), 4 * ((expect_len + 2) / 3));
    uint8_t *bytes = malloc(expect_len + 3);
    assert_int_equal(b64_decode(p, bytes), expect_len);
    assert_memory_equal(bytes, file + idx * l, expect_len);
    free(bytes);
    cJSON_Delete(o);
}

static void test_json_variant(void **state)
{
    fixture_t *fx = *state;
    const char *req = "{\"c\":\"j\\\"1\",\"f\":0,\"l\":4096,\"o\":0,\"b\":\"0x07\",\"n\":3}";
    handle(fx, T_GET_JSON, req, strlen(req));
    assert_int_equal(fx->n_msgs, 3);
    for (size_t k = 0; k < 3; k++) {
        check_json_block(fx, k, "j\"1", fx->small, 10000, 4096, 0, k);
    }
    clear_msgs(fx);

    /* Exact bytes of a small answer: 256-byte blocks, block 39 is 16 bytes. */
    req = "{\"f\":0,\"l\":256,\"o\":39,\"n\":1}";
    handle(fx, T_GET_JSON, req, strlen(req));
    assert_int_equal(fx->n_msgs, 1);
    char expect[128];
    char b64[32];
    static const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *t = fx->small + 9984;
    size_t o = 0;
    for (size_t i = 0; i < 15; i += 3) {
        uint32_t v = (uint32_t)t[i] << 16 | (uint32_t)t[i + 1] << 8 | t[i + 2];
        b64[o++] = alpha[v >> 18];
        b64[o++] = alpha[(v >> 12) & 63];
        b64[o++] = alpha[(v >> 6) & 63];
        b64[o++] = alpha[v & 63];
    }
    b64[o++] = alpha[t[15] >> 2];
    b64[o++] = alpha[(t[15] & 3) << 4];
    b64[o++] = '=';
    b64[o++] = '=';
    b64[o] = '\0';
    snprintf(expect, sizeof(expect), "{\"f\":0,\"i\":39,\"l\":16,\"p\":\"%s\"}", b64);
    assert_int_equal(fx->msgs[0].len, strlen(expect));
    assert_memory_equal(fx->msgs[0].payload, expect, strlen(expect));
    clear_msgs(fx);

    /* Multi-byte hex bitmap with offset: "0x0102" -> bits 0 and 9 after o = 10. */
    req = "{\"f\":3,\"l\":1024,\"o\":10,\"b\":\"0x0102\",\"n\":8}";
    handle(fx, T_GET_JSON, req, strlen(req));
    assert_int_equal(fx->n_msgs, 2);
    check_json_block(fx, 0, NULL, fx->big, 1u << 20, 1024, 3, 10);
    check_json_block(fx, 1, NULL, fx->big, 1u << 20, 1024, 3, 19);
    clear_msgs(fx);
}

static void check_json_rejected(fixture_t *fx, const char *code, const char *token)
{
    assert_int_equal(fx->n_msgs, 1);
    assert_string_equal(fx->msgs[0].topic, "$aws/things/dev-1/streams/AFR_OTA-s1/rejected/json");
    cJSON *o = cJSON_ParseWithLength((const char *)fx->msgs[0].payload, fx->msgs[0].len);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "o")->valuestring, code);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "m")));
    cJSON *c = cJSON_GetObjectItem(o, "c");
    if (token != NULL) {
        assert_string_equal(c->valuestring, token);
    } else {
        assert_null(c);
    }
    cJSON_Delete(o);
    clear_msgs(fx);
}

static void test_json_rejections(void **state)
{
    fixture_t *fx = *state;
    static const struct {
        const char *req;
        const char *code;
        const char *token;
    } cases[] = {
        {"{\"c\":\"a\",\"f\":0,", "InvalidJson", NULL},
        {"[1,2,3]", "InvalidJson", NULL},
        {"", "InvalidJson", NULL},
        {"{\"c\":\"a\",\"l\":4096,\"n\":1}", "InvalidRequest", "a"},
        {"{\"c\":\"a\",\"f\":0,\"l\":\"4096\",\"n\":1}", "InvalidRequest", "a"},
        {"{\"c\":\"a\",\"f\":0,\"l\":4096,\"n\":1.5}", "InvalidRequest", "a"},
        {"{\"c\":\"a\",\"f\":-1,\"l\":4096,\"n\":1}", "InvalidRequest", "a"},
        {"{\"c\":\"a\",\"f\":0,\"l\":4096,\"b\":\"0xzz\",\"n\":1}", "InvalidRequest", "a"},
        {"{\"c\":\"a\",\"f\":0,\"l\":4096,\"b\":\"0x123\",\"n\":1}", "InvalidRequest", "a"},
        {"{\"c\":\"a\",\"f\":0,\"l\":4096,\"b\":7,\"n\":1}", "InvalidRequest", "a"},
        {"{\"c\":7,\"f\":0,\"l\":4096,\"n\":1}", "InvalidRequest", NULL},
        {"{\"c\":\"a\",\"f\":0,\"l\":100,\"n\":1}", "BlockSizeOutOfBounds", "a"},
        /* 128 KiB in base64 would not fit in a 128 KiB message: the broker
         * would drop the service's connection for an oversized packet. */
        {"{\"c\":\"a\",\"f\":3,\"l\":131072,\"n\":1}", "BlockSizeOutOfBounds", "a"},
        {"{\"c\":\"a\",\"f\":3,\"l\":97921,\"n\":1}", "BlockSizeOutOfBounds", "a"},
        {"{\"c\":\"a\",\"f\":0,\"l\":4096,\"o\":3,\"n\":1}", "OffsetOutOfBounds", "a"},
        {"{\"c\":\"a\",\"f\":0,\"l\":4096,\"n\":100000}", "BlockCountLimitExceeded", "a"},
        {"{\"c\":\"a\",\"f\":5,\"l\":4096,\"n\":1}", "ResourceNotFound", "a"},
        {"{\"c\":\"a\",\"s\":9,\"f\":0,\"l\":4096,\"n\":1}", "VersionMismatch", "a"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        handle(fx, T_GET_JSON, cases[i].req, strlen(cases[i].req));
        check_json_rejected(fx, cases[i].code, cases[i].token);
        still_serving(fx);
    }
    /* A bitmap of 12288 bytes in hex. */
    size_t cap = 64 + 2 * 12288;
    char *req = malloc(cap);
    int n = snprintf(req, cap, "{\"c\":\"a\",\"f\":0,\"l\":4096,\"n\":1,\"b\":\"0x");
    for (size_t i = 0; i < 12288; i++) {
        memcpy(req + n + 2 * i, "ff", 2);
    }
    snprintf(req + n + 2 * 12288, cap - (size_t)n - 2 * 12288, "\"}");
    handle(fx, T_GET_JSON, req, strlen(req));
    check_json_rejected(fx, "BlockBitmapLimitExceeded", "a");
    free(req);
    still_serving(fx);

    /* The largest JSON block is served, in one message within 128 KiB. */
    static const char largest[] = "{\"c\":\"a\",\"f\":3,\"l\":97920,\"n\":1}";
    handle(fx, T_GET_JSON, largest, strlen(largest));
    assert_int_equal(fx->n_msgs, 1);
    assert_non_null(strstr(fx->msgs[0].topic, "/data/json"));
    assert_true(fx->msgs[0].len > 4u * 97920u / 3u);
    assert_true(fx->msgs[0].len <= 131072u);
    clear_msgs(fx);
}

/* ------------------------------------------------------------- describe -- */

static void test_describe(void **state)
{
    fixture_t *fx = *state;
    static const uint8_t req[] = {0xa1, 0x61, 0x63, 0x62, 0x64, 0x31};
    handle(fx, "$aws/things/dev-1/streams/AFR_OTA-s1/describe/cbor", req, sizeof(req));
    assert_int_equal(fx->n_msgs, 1);
    assert_string_equal(fx->msgs[0].topic, "$aws/things/dev-1/streams/AFR_OTA-s1/description/cbor");
    /* {"c":"d1","s":1,"d":"firmware 1.1.0","r":[{"f":0,"z":10000},{"f":3,"z":1048576}]} */
    static const uint8_t expect[] = {0xa4, 0x61, 0x63, 0x62, 0x64, 0x31, 0x61, 0x73, 0x01, 0x61,
                                     0x64, 0x6e, 'f',  'i',  'r',  'm',  'w',  'a',  'r',  'e',
                                     ' ',  '1',  '.',  '1',  '.',  '0',  0x61, 0x72, 0x82, 0xa2,
                                     0x61, 0x66, 0x00, 0x61, 0x7a, 0x19, 0x27, 0x10, 0xa2, 0x61,
                                     0x66, 0x03, 0x61, 0x7a, 0x1a, 0x00, 0x10, 0x00, 0x00};
    assert_int_equal(fx->msgs[0].len, sizeof(expect));
    assert_memory_equal(fx->msgs[0].payload, expect, sizeof(expect));
    clear_msgs(fx);

    /* Empty payload: no token; description "" for a NULL one. */
    handle(fx, "$aws/things/dev-1/streams/broken/describe/cbor", "", 0);
    assert_int_equal(fx->n_msgs, 1);
    static const uint8_t expect2[] = {0xa3, 0x61, 0x73, 0x07, 0x61, 0x64, 0x60, 0x61, 0x72, 0x81,
                                      0xa2, 0x61, 0x66, 0x00, 0x61, 0x7a, 0x19, 0x13, 0x88};
    assert_int_equal(fx->msgs[0].len, sizeof(expect2));
    assert_memory_equal(fx->msgs[0].payload, expect2, sizeof(expect2));
    clear_msgs(fx);

    handle(fx, "$aws/things/dev-1/streams/nope/describe/cbor", req, sizeof(req));
    check_rejected(fx, "$aws/things/dev-1/streams/nope/rejected/cbor", "ResourceNotFound", "d1");
    handle(fx, "$aws/things/intruder/streams/AFR_OTA-s1/describe/cbor", req, sizeof(req));
    check_rejected(fx, "$aws/things/intruder/streams/AFR_OTA-s1/rejected/cbor", "Unauthorized",
                   "d1");
    static const uint8_t bad[] = {0xa1, 0x61};
    handle(fx, "$aws/things/dev-1/streams/AFR_OTA-s1/describe/cbor", bad, sizeof(bad));
    check_rejected(fx, T_REJ, "InvalidCbor", NULL);
    still_serving(fx);

    ota_svc_streams_stats_t st;
    ota_svc_streams_get_stats(fx->s, &st);
    assert_int_equal(st.describes, 5);
}

/* ---------------------------------------------------- robustness, stats -- */

static void test_random_payloads(void **state)
{
    fixture_t *fx = *state;
    uint32_t x = 12345;
    uint8_t buf[64];
    size_t answered = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)(x % sizeof(buf));
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (uint8_t)(x >> 16);
        }
        /* Half the time, start like a real request so decoding goes deeper. */
        if (iter % 2 == 0 && len > 2) {
            buf[0] = (uint8_t)(0xa0 | (x % 8));
            buf[1] = 0x61;
        }
        const char *topic = iter % 3 == 0   ? T_GET_JSON
                            : iter % 3 == 1 ? T_GET
                                            : "$aws/things/dev-1/streams/AFR_OTA-s1/describe/cbor";
        handle(fx, topic, buf, len);
        answered += fx->n_msgs > 0;
        clear_msgs(fx);
        x = x * 1103515245u + 12345u;
    }
    assert_true(answered > 10000);
    still_serving(fx);
}

static void test_publish_failure(void **state)
{
    fixture_t *fx = *state;
    uint8_t b = 0x07;
    fx->fail_publish = 1;
    get(fx, NULL, 0, 4096, 0, &b, 1, 3);
    fx->fail_publish = 0;
    assert_int_equal(fx->n_msgs, 0);
    still_serving(fx);
}

static void test_stats_and_summary(void **state)
{
    fixture_t *fx = *state;
    uint8_t b = 0xff;
    for (int i = 0; i < 4; i++) {
        get(fx, NULL, 3, 4096, (long long)i * 8, &b, 1, 8);
    }
    clear_msgs(fx);
    b = 1;
    expect_reject_req(fx, "BlockSizeOutOfBounds", NULL, NULL, 0, 1, 0, &b, 1, 1);
    clear_msgs(fx);
    ota_svc_streams_stats_t st;
    ota_svc_streams_get_stats(fx->s, &st);
    assert_int_equal(st.requests, 6);
    assert_int_equal(st.served, 5);
    assert_int_equal(st.blocks, 32 + 2);
    assert_int_equal(st.bytes, 32 * 4096 + 4096 + 1808);
    assert_int_equal(st.rejected, 1);

    /* No summary while active; one line after a 2 s pause. */
    fx->n_log = 0;
    ota_svc_streams_tick(fx->s, 1500);
    size_t lines = 0;
    for (size_t i = 0; i < fx->n_log; i++) {
        lines += strstr(fx->log[i], "requests,") != NULL;
    }
    assert_int_equal(lines, 0);
    ota_svc_streams_tick(fx->s, 3500);
    int found = 0;
    for (size_t i = 0; i < fx->n_log; i++) {
        if (strstr(fx->log[i], "thing dev-1 stream AFR_OTA-s1") != NULL &&
            strstr(fx->log[i], "6 requests") != NULL && strstr(fx->log[i], "1 rejected") != NULL) {
            found = 1;
        }
    }
    if (!found) {
        for (size_t i = 0; i < fx->n_log; i++) {
            print_message("log: %s\n", fx->log[i]);
        }
    }
    assert_true(found);
    /* Forgotten after a minute of silence; nothing left to flush. */
    fx->n_log = 0;
    ota_svc_streams_tick(fx->s, 100000);
    ota_svc_streams_flush_log(fx->s);
    assert_int_equal(fx->n_log, 0);
}

static void test_create_arguments(void **state)
{
    (void)state;
    ota_svc_streams_source_t src = {fake_get, NULL, fake_may_read, NULL};
    assert_null(ota_svc_streams_create(NULL, rec_publish, NULL));
    assert_null(ota_svc_streams_create(&src, NULL, NULL));
    src.get = NULL;
    assert_null(ota_svc_streams_create(&src, rec_publish, NULL));
    ota_svc_streams_destroy(NULL);
}

/* ------------------------------------------------------- input hygiene -- */

/* A definite CBOR map built from raw pairs (each pair: key text, value bytes). */
static size_t raw_map(uint8_t *out, size_t npairs, const char *const *keys,
                      const uint8_t *const *vals, const size_t *vlens)
{
    size_t n = 0;
    out[n++] = (uint8_t)(0xa0 | npairs);
    for (size_t k = 0; k < npairs; k++) {
        out[n++] = (uint8_t)(0x60 | strlen(keys[k]));
        memcpy(out + n, keys[k], strlen(keys[k]));
        n += strlen(keys[k]);
        memcpy(out + n, vals[k], vlens[k]);
        n += vlens[k];
    }
    return n;
}

static void test_cbor_duplicate_keys_refused(void **state)
{
    fixture_t *fx = *state;
    uint8_t buf[64];
    /* {"c":"t1","f":0,"l":1024 (twice: 256 then 1024),"o":0,"n":1} */
    static const uint8_t c_t1[] = {0x62, 't', '1'}, zero[] = {0x00}, one[] = {0x01},
                         l256[] = {0x19, 0x01, 0x00}, l1024[] = {0x19, 0x04, 0x00};
    const char *keys[] = {"c", "f", "l", "l", "o", "n"};
    const uint8_t *vals[] = {c_t1, zero, l256, l1024, zero, one};
    size_t vl[] = {3, 1, 3, 3, 1, 1};
    size_t n = raw_map(buf, 6, keys, vals, vl);
    handle(fx, T_GET, buf, n);
    check_rejected(fx, T_REJ, "InvalidCbor", NULL); /* no block, no token echoed */
    /* the same map without the second l is served */
    const char *keys1[] = {"c", "f", "l", "o", "n"};
    const uint8_t *vals1[] = {c_t1, zero, l1024, zero, one};
    size_t vl1[] = {3, 1, 3, 1, 1};
    n = raw_map(buf, 5, keys1, vals1, vl1);
    handle(fx, T_GET, buf, n);
    assert_int_equal(fx->n_msgs, 1);
    check_block(fx, 0, fx->small, 10000, 1024, 0, 0);
    clear_msgs(fx);
}

static void test_cbor_token_utf8_and_nul(void **state)
{
    fixture_t *fx = *state;
    uint8_t buf[64];
    static const uint8_t zero[] = {0x00}, one[] = {0x01}, l1024[] = {0x19, 0x04, 0x00};
    static const uint8_t bad_utf8[] = {0x63, 'a', 0xc3, 0x28}; /* "a" + broken 2-byte sequence */
    static const uint8_t overlong[] = {0x62, 0xc0, 0xaf};      /* overlong "/" */
    static const uint8_t with_nul[] = {0x63, 'a', 0x00, 'b'};
    const char *keys[] = {"c", "f", "l", "o", "n"};
    const uint8_t *vals[] = {bad_utf8, zero, l1024, zero, one};
    size_t vl[] = {4, 1, 3, 1, 1};
    size_t n = raw_map(buf, 5, keys, vals, vl);
    handle(fx, T_GET, buf, n);
    check_rejected(fx, T_REJ, "InvalidCbor", NULL);
    vals[0] = overlong;
    vl[0] = 3;
    n = raw_map(buf, 5, keys, vals, vl);
    handle(fx, T_GET, buf, n);
    check_rejected(fx, T_REJ, "InvalidCbor", NULL);
    vals[0] = with_nul;
    vl[0] = 4;
    n = raw_map(buf, 5, keys, vals, vl);
    handle(fx, T_GET, buf, n);
    check_rejected(fx, T_REJ, "InvalidRequest", NULL);
}

static void test_json_hygiene(void **state)
{
    fixture_t *fx = *state;
    static const char dup[] = "{\"f\":0,\"l\":256,\"l\":1024,\"o\":0,\"n\":1}";
    static const char nul[] = "{\"c\":\"a\\u0000b\",\"f\":0,\"l\":1024,\"o\":0,\"n\":1}";
    static const char bad[] = "{\"c\":\"a\xff\",\"f\":0,\"l\":1024,\"o\":0,\"n\":1}";
    static const char lone[] = "{\"c\":\"\\ud800\",\"f\":0,\"l\":1024,\"o\":0,\"n\":1}";
    handle(fx, T_GET_JSON, dup, strlen(dup));
    check_json_rejected(fx, "InvalidJson", NULL);
    handle(fx, T_GET_JSON, nul, strlen(nul));
    check_json_rejected(fx, "InvalidJson", NULL);
    handle(fx, T_GET_JSON, bad, strlen(bad));
    check_json_rejected(fx, "InvalidJson", NULL);
    handle(fx, T_GET_JSON, lone, strlen(lone));
    check_json_rejected(fx, "InvalidJson", NULL);
    /* something after the object (cJSON alone stops at the end of the first value) */
    static const char tail[] = "{\"f\":0,\"l\":1024,\"o\":0,\"n\":1} x";
    handle(fx, T_GET_JSON, tail, strlen(tail));
    check_json_rejected(fx, "InvalidJson", NULL);
    /* with the CBOR cases above: a duplicate l, two broken UTF-8 tokens, a NUL in a token;
     * the same map without the duplicate was served */
    printf("security: streams_bad_input: attacks=9 refused=9 honest_answered=1 updates_lost=0\n");
}

static void test_describe_json(void **state)
{
    fixture_t *fx = *state;
    handle(fx, "$aws/things/dev-1/streams/AFR_OTA-s1/describe/json", "{\"c\":\"d1\"}", 10);
    assert_int_equal(fx->n_msgs, 1);
    assert_string_equal(fx->msgs[0].topic, "$aws/things/dev-1/streams/AFR_OTA-s1/description/json");
    cJSON *o = cJSON_Parse((const char *)fx->msgs[0].payload);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "c")->valuestring, "d1");
    assert_int_equal(cJSON_GetObjectItem(o, "s")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItem(o, "d")->valuestring, "firmware 1.1.0");
    cJSON *r = cJSON_GetObjectItem(o, "r");
    assert_int_equal(cJSON_GetArraySize(r), 2);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 1), "f")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 1), "z")->valueint, 1 << 20);
    cJSON_Delete(o);
    clear_msgs(fx);
    /* an unknown stream is refused on rejected/json */
    handle(fx, "$aws/things/dev-1/streams/nope/describe/json", "{}", 2);
    assert_int_equal(fx->n_msgs, 1);
    assert_string_equal(fx->msgs[0].topic, "$aws/things/dev-1/streams/nope/rejected/json");
    clear_msgs(fx);
}

/* ---------------------------------------------------- budgets, turns -- */

static void test_throttle_answer_bytes(void **state)
{
    fixture_t *fx = *state;
    /* 1 request per second sustained, burst 100; 256 KiB burst, 128 KiB per second. */
    ota_svc_budget_config_t cfg = {
        .requests_per_s = 1, .request_burst = 100, .bytes_per_s = 131072, .byte_burst = 262144};
    ota_svc_budget_t *b = ota_svc_budget_create(&cfg);
    assert_non_null(b);
    ota_svc_streams_set_budget(fx->s, b);
    /* A small request for 128 KiB (27 bytes from the AWS agent) costs 128 KiB of answer
     * bytes: two are served, the third is refused although few requests were made. */
    size_t len, slen;
    unsigned char *p = req_cbor("rdy", 3, 131072, 0, NULL, 0, 1, &len);
    unsigned char *small = req_cbor("s", 3, 1024, 0, NULL, 0, 1, &slen);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(ota_svc_streams_handle(fx->s, T_GET, p, len, 1000), 1);
        assert_int_equal(fx->n_msgs, 1);
        check_block(fx, 0, fx->big, 1u << 20, 131072, 3, 0);
        clear_msgs(fx);
    }
    assert_int_equal(ota_svc_streams_handle(fx->s, T_GET, p, len, 1000), 1);
    check_rejected(fx, T_REJ, "RequestThrottled", "rdy");
    /* nothing is left for a small request either */
    assert_int_equal(ota_svc_streams_handle(fx->s, T_GET, small, slen, 1000), 1);
    check_rejected(fx, T_REJ, "RequestThrottled", "s");
    /* one second later 128 KiB more may be sent, and not more */
    assert_int_equal(ota_svc_streams_handle(fx->s, T_GET, p, len, 2000), 1);
    assert_int_equal(fx->n_msgs, 1);
    check_block(fx, 0, fx->big, 1u << 20, 131072, 3, 0);
    clear_msgs(fx);
    assert_int_equal(ota_svc_streams_handle(fx->s, T_GET, small, slen, 2000), 1);
    check_rejected(fx, T_REJ, "RequestThrottled", "s");
    free(p);
    free(small);
    ota_svc_streams_stats_t st;
    ota_svc_streams_get_stats(fx->s, &st);
    assert_int_equal(st.throttled, 3);
    ota_svc_budget_stats_t bs;
    ota_svc_budget_get_stats(b, &bs);
    assert_int_equal(bs.bytes_throttled, 3);
    assert_int_equal(bs.request_throttled, 0);
    ota_svc_streams_set_budget(fx->s, NULL);
    ota_svc_budget_destroy(b);
}

static void test_throttle_requests_and_refusals(void **state)
{
    fixture_t *fx = *state;
    /* 20 at once, 10 per second; no byte budget */
    ota_svc_budget_config_t cfg = {.requests_per_s = 10, .request_burst = 20};
    ota_svc_budget_t *b = ota_svc_budget_create(&cfg);
    ota_svc_streams_set_budget(fx->s, b);
    size_t len;
    unsigned char *p = req_cbor("t", 0, 1024, 0, NULL, 0, 1, &len);
    size_t blocks = 0, refused = 0;
    for (int k = 0; k < 200; k++) {
        assert_int_equal(ota_svc_streams_handle(fx->s, T_GET, p, len, 5000), 1);
    }
    for (size_t k = 0; k < fx->n_msgs; k++) {
        blocks += strcmp(fx->msgs[k].topic, T_DATA) == 0;
        refused += strcmp(fx->msgs[k].topic, T_REJ) == 0;
    }
    assert_int_equal(blocks, 20);
    /* refusals of a flood are budgeted too: 10 per second */
    assert_int_equal(refused, OTA_SVC_BUDGET_REFUSALS_PER_S);
    clear_msgs(fx);
    /* another thing is not affected */
    assert_int_equal(ota_svc_streams_handle(fx->s, "$aws/things/dev-2/streams/AFR_OTA-s1/get/cbor",
                                            p, len, 5000),
                     1);
    assert_int_equal(fx->n_msgs, 1);
    assert_string_equal(fx->msgs[0].topic, "$aws/things/dev-2/streams/AFR_OTA-s1/data/cbor");
    clear_msgs(fx);
    free(p);
    ota_svc_streams_set_budget(fx->s, NULL);
    ota_svc_budget_destroy(b);
}

/*
 * A device whose requests wait longer than its retry timer asks again: the
 * blocks an earlier waiting request will send are taken out of the new one,
 * so each block is sent once; a request with nothing left is dropped.
 */
static void test_waiting_blocks_are_sent_once(void **state)
{
    fixture_t *fx = *state;
    ota_svc_streams_stats_t st;
    size_t len;
    uint8_t first[2] = {0xff, 0x00}; /* blocks 300 .. 307 */
    uint8_t again[2] = {0xff, 0x0f}; /* blocks 300 .. 311: 308 .. 311 are new */
    uint8_t other[1] = {0x01};       /* block 300 in blocks of 2048: another request */
    unsigned char *p1 = req_cbor(NULL, 3, 1024, 300, first, 2, 8, &len);
    ota_svc_streams_set_deferred(fx->s, 1);
    handle(fx, T_GET, p1, len);
    handle(fx, T_GET, p1, len); /* the same again: nothing left */
    assert_int_equal(ota_svc_streams_pending(fx->s), 1);
    free(p1);
    p1 = req_cbor(NULL, 3, 1024, 300, again, 2, 12, &len);
    handle(fx, T_GET, p1, len);
    free(p1);
    p1 = req_cbor(NULL, 3, 2048, 300, other, 1, 1, &len);
    handle(fx, T_GET, p1, len);
    free(p1);
    assert_int_equal(ota_svc_streams_pending(fx->s), 3);
    ota_svc_streams_get_stats(fx->s, &st);
    assert_int_equal(st.wait_max_ms, 0);
    /* Served 250 ms after they came: the longest wait for a first turn is that. */
    while (ota_svc_streams_serve(fx->s, 1250)) {
    }
    assert_int_equal(fx->n_msgs, 13);
    for (size_t k = 0; k < 12; k++) {
        check_block(fx, k, fx->big, 1u << 20, 1024, 3, 300 + k);
    }
    check_block(fx, 12, fx->big, 1u << 20, 2048, 3, 300);
    ota_svc_streams_get_stats(fx->s, &st);
    assert_int_equal(st.merged, 1);
    assert_int_equal(st.blocks, 13);
    assert_int_equal(st.wait_max_ms, 250);
    clear_msgs(fx);
}

static const char *T_GET2 = "$aws/things/dev-2/streams/AFR_OTA-s1/get/cbor";
static const char *T_DATA2 = "$aws/things/dev-2/streams/AFR_OTA-s1/data/cbor";

/* Checks that messages [from, from + count) are blocks first.. on topic, and no more. */
static void check_turn(fixture_t *fx, size_t from, size_t count, const char *topic, uint64_t first)
{
    assert_int_equal(fx->n_msgs, from + count);
    for (size_t k = 0; k < count; k++) {
        rec_msg_t m = fx->msgs[from + k];
        block_t blk;
        assert_string_equal(m.topic, topic);
        m.topic = (char *)T_DATA; /* decode_block checks dev-1's topic */
        decode_block(&m, &blk);
        assert_int_equal(blk.f, 3);
        assert_int_equal(blk.i, first + k);
        assert_int_equal(blk.plen, 1024);
        assert_memory_equal(blk.p, fx->big + (first + k) * 1024u, 1024);
        cbor_decref(&blk.root);
    }
}

/*
 * Requests are answered in turns of OTA_SVC_STREAMS_TURN_BYTES: a thing's
 * large request does not hold another thing's blocks back; a partly sent
 * request keeps its place, its bytes are charged once, and a request again
 * for what it has still to send is dropped.
 */
static void test_turns_split_requests(void **state)
{
    fixture_t *fx = *state;
    ota_svc_streams_stats_t st;
    /* the byte budget holds one 128 KiB answer and refills 1 byte a second */
    ota_svc_budget_config_t cfg = {
        .requests_per_s = 100, .request_burst = 100, .bytes_per_s = 1, .byte_burst = 131072};
    ota_svc_budget_t *b = ota_svc_budget_create(&cfg);
    uint8_t all[16], half[2] = {0xff, 0xff};
    size_t len;
    unsigned char *p;
    const size_t turn = OTA_SVC_STREAMS_TURN_BYTES / 1024u;
    assert_non_null(b);
    assert_int_equal(turn, 16);
    memset(all, 0xff, sizeof all);
    ota_svc_streams_set_budget(fx->s, b);
    ota_svc_streams_set_deferred(fx->s, 1);
    get(fx, NULL, 3, 1024, 0, all, sizeof all, 128);   /* dev-1: 128 blocks, 8 turns */
    p = req_cbor(NULL, 3, 1024, 0, NULL, 0, 20, &len); /* dev-2: 20 blocks, no bitmap */
    assert_int_equal(ota_svc_streams_handle(fx->s, T_GET2, p, len, 1000), 1);
    free(p);
    assert_int_equal(fx->n_msgs, 0);
    assert_int_equal(ota_svc_streams_serve(fx->s, 1000), 1);
    check_turn(fx, 0, turn, T_DATA, 0);
    assert_int_equal(ota_svc_streams_serve(fx->s, 1000), 1);
    check_turn(fx, turn, turn, T_DATA2, 0);
    /* dev-1 asks again for blocks 16 .. 31, still to be sent: dropped */
    get(fx, NULL, 3, 1024, 16, half, sizeof half, 16);
    assert_int_equal(ota_svc_streams_pending(fx->s), 2);
    assert_int_equal(ota_svc_streams_serve(fx->s, 1000), 1);
    check_turn(fx, 2 * turn, turn, T_DATA, turn);
    assert_int_equal(ota_svc_streams_serve(fx->s, 1000), 1);
    check_turn(fx, 3 * turn, 4, T_DATA2, turn); /* the rest of dev-2's request */
    assert_int_equal(ota_svc_streams_pending(fx->s), 1);
    clear_msgs(fx);
    /* dev-1 alone now: the rest of its request, paid for at its first turn */
    for (size_t k = 2; k < 8; k++) {
        assert_int_equal(ota_svc_streams_serve(fx->s, 1000 + (int64_t)k), 1);
        check_turn(fx, (k - 2) * turn, turn, T_DATA, k * turn);
    }
    assert_int_equal(ota_svc_streams_serve(fx->s, 2000), 0);
    assert_int_equal(ota_svc_streams_pending(fx->s), 0);
    ota_svc_streams_get_stats(fx->s, &st);
    assert_int_equal(st.served, 2);
    assert_int_equal(st.blocks, 148);
    assert_int_equal(st.merged, 1);
    assert_int_equal(st.rejected, 0);
    clear_msgs(fx);
    ota_svc_streams_set_budget(fx->s, NULL);
    ota_svc_budget_destroy(b);
}

static void test_turns_are_fair(void **state)
{
    fixture_t *fx = *state;
    ota_svc_streams_set_deferred(fx->s, 1);
    size_t len;
    unsigned char *p = req_cbor("t", 3, 131072, 0, NULL, 0, 1, &len);
    /* dev-1 floods: 16 wait, the 17th and later are refused at once */
    for (int k = 0; k < 20; k++) {
        handle(fx, T_GET, p, len);
    }
    assert_int_equal(ota_svc_streams_pending(fx->s), OTA_SVC_STREAMS_QUEUE_PER_THING);
    assert_int_equal(fx->n_msgs, 4);
    for (size_t k = 0; k < 4; k++) {
        assert_string_equal(fx->msgs[k].topic, T_REJ);
    }
    clear_msgs(fx);
    /* then an honest device asks once: it is answered second, not after the flood */
    unsigned char *h = req_cbor("h", 0, 1024, 0, NULL, 0, 1, &len);
    assert_int_equal(ota_svc_streams_handle(fx->s, "$aws/things/dev-2/streams/AFR_OTA-s1/get/cbor",
                                            h, len, 1000),
                     1);
    assert_int_equal(fx->n_msgs, 0);
    assert_int_equal(ota_svc_streams_serve(fx->s, 1000), 1);
    assert_int_equal(ota_svc_streams_serve(fx->s, 1000), 1);
    assert_int_equal(fx->n_msgs, 2);
    assert_string_equal(fx->msgs[0].topic, T_DATA);
    assert_string_equal(fx->msgs[1].topic, "$aws/things/dev-2/streams/AFR_OTA-s1/data/cbor");
    clear_msgs(fx);
    while (ota_svc_streams_serve(fx->s, 1000)) {
    }
    assert_int_equal(fx->n_msgs, OTA_SVC_STREAMS_QUEUE_PER_THING - 1);
    assert_int_equal(ota_svc_streams_pending(fx->s), 0);
    clear_msgs(fx);
    /* requests still waiting when the module is destroyed are freed (ASan checks) */
    handle(fx, T_GET, p, len);
    free(p);
    free(h);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_topics),
        T(test_aws_request_byte_exact),
        T(test_window_all_blocks),
        T(test_bitmap_sparse_and_offset),
        T(test_n_without_bitmap),
        T(test_caps),
        T(test_reject_undecodable),
        T(test_reject_invalid_request),
        T(test_reject_bounds),
        T(test_reject_lookup),
        T(test_version),
        T(test_indefinite_encodings),
        T(test_json_variant),
        T(test_cbor_duplicate_keys_refused),
        T(test_cbor_token_utf8_and_nul),
        T(test_json_hygiene),
        T(test_describe_json),
        T(test_throttle_answer_bytes),
        T(test_throttle_requests_and_refusals),
        T(test_turns_are_fair),
        T(test_turns_split_requests),
        T(test_waiting_blocks_are_sent_once),
        T(test_json_rejections),
        T(test_describe),
        T(test_random_payloads),
        T(test_publish_failure),
        T(test_stats_and_summary),
        cmocka_unit_test(test_create_arguments),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
