/*
 * Unit tests of the stream message codec (wire protocol section 4): the
 * spec's exact bytes, malformed input of every kind, buffer sizes, and a
 * randomised cross-check against libcbor in both directions. Randomised
 * cases print "seed S case N" on failure; rerun with OTA_TEST_SEED=S.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cbor.h>

#include "ota_cbor.h"

/* ---- helpers ------------------------------------------------------------ */

/* A hand-built CBOR message, for byte-exact and malformed input. */
typedef struct msg {
    uint8_t b[16384];
    size_t n;
} msg_t;

static void m_raw(msg_t *m, const void *p, size_t n)
{
    assert_true(m->n + n <= sizeof m->b);
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void m_byte(msg_t *m, unsigned b)
{
    uint8_t x = (uint8_t)b;
    m_raw(m, &x, 1);
}

/* Head with argument v in w argument bytes (0 = immediate, 1, 2, 4, 8) or shortest (w < 0). */
static void m_head_w(msg_t *m, unsigned mt, uint64_t v, int w)
{
    if (w < 0) {
        w = v < 24 ? 0 : v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
    }
    if (w == 0) {
        assert_true(v < 24);
        m_byte(m, mt << 5 | (unsigned)v);
        return;
    }
    m_byte(m, mt << 5 | (w == 1 ? 24u : w == 2 ? 25u : w == 4 ? 26u : 27u));
    for (int i = w - 1; i >= 0; i--) {
        m_byte(m, (unsigned)(v >> (8 * i)) & 0xffu);
    }
}

static void m_head(msg_t *m, unsigned mt, uint64_t v)
{
    m_head_w(m, mt, v, -1);
}

static void m_text(msg_t *m, const char *s)
{
    m_head(m, 3, strlen(s));
    m_raw(m, s, strlen(s));
}

static void m_key_uint(msg_t *m, const char *k, uint64_t v)
{
    m_text(m, k);
    m_head(m, 0, v);
}

static void m_key_bytes(msg_t *m, const char *k, const void *p, size_t n)
{
    m_text(m, k);
    m_head(m, 2, n);
    m_raw(m, p, n);
}

static void m_key_text(msg_t *m, const char *k, const char *s)
{
    m_text(m, k);
    m_text(m, s);
}

/* Map head for pairs, then f = 7, i = 3, l = 4, p = "abcd" (4 pairs). */
static void m_data_start(msg_t *m, unsigned pairs)
{
    m->n = 0;
    m_head(m, 5, pairs);
    m_key_uint(m, "f", 7);
    m_key_uint(m, "i", 3);
    m_key_uint(m, "l", 4);
    m_key_bytes(m, "p", "abcd", 4);
}

/* Decoding from a heap copy of exactly len bytes, so that ASan sees any overread. */
static ota_err_t decode_data_exact(const uint8_t *p, size_t len, ota_cbor_data_block_t *out)
{
    uint8_t *copy = malloc(len != 0 ? len : 1);
    ota_cbor_data_block_t tmp;
    ota_err_t err;
    assert_non_null(copy);
    memcpy(copy, p, len);
    err = ota_cbor_decode_data_block(copy, len, &tmp);
    if (err == OTA_OK) {
        /* Pointers must lie inside the message; report them as offsets into p. */
        assert_true(tmp.payload >= copy && tmp.payload + tmp.payload_len <= copy + len);
        assert_int_equal(tmp.payload_len, tmp.block_len);
        tmp.payload = p + (tmp.payload - copy);
        if (tmp.client_token != NULL) {
            const uint8_t *t = (const uint8_t *)tmp.client_token;
            assert_true(t >= copy && t + tmp.client_token_len <= copy + len);
            tmp.client_token = (const char *)(p + (t - copy));
        } else {
            assert_int_equal(tmp.client_token_len, 0);
        }
        if (out != NULL) {
            *out = tmp;
        }
    }
    free(copy);
    return err;
}

static const uint8_t *rebase(const char *s, const uint8_t *copy, size_t len, const uint8_t *p,
                             size_t slen)
{
    const uint8_t *t = (const uint8_t *)s;
    if (s == NULL) {
        assert_int_equal(slen, 0);
        return NULL;
    }
    assert_true(t >= copy && t + slen <= copy + len);
    return p + (t - copy);
}

static ota_err_t decode_rejected_exact(const uint8_t *p, size_t len, ota_cbor_rejected_t *out)
{
    uint8_t *copy = malloc(len != 0 ? len : 1);
    ota_cbor_rejected_t tmp;
    ota_err_t err;
    assert_non_null(copy);
    memcpy(copy, p, len);
    err = ota_cbor_decode_rejected(copy, len, &tmp);
    if (err == OTA_OK) {
        assert_non_null(tmp.code);
        tmp.code = (const char *)rebase(tmp.code, copy, len, p, tmp.code_len);
        tmp.message = (const char *)rebase(tmp.message, copy, len, p, tmp.message_len);
        tmp.client_token =
            (const char *)rebase(tmp.client_token, copy, len, p, tmp.client_token_len);
        if (out != NULL) {
            *out = tmp;
        }
    }
    free(copy);
    return err;
}

static void expect_bad_data(const msg_t *m)
{
    assert_int_equal(decode_data_exact(m->b, m->n, NULL), OTA_ERR_BAD_MESSAGE);
}

static void expect_bad_rejected(const msg_t *m)
{
    assert_int_equal(decode_rejected_exact(m->b, m->n, NULL), OTA_ERR_BAD_MESSAGE);
}

/* Every proper prefix of a valid message is refused, as is every single-byte change that is not
 * accepted. */
static void check_prefixes_and_mutations(const uint8_t *p, size_t len, int data)
{
    uint8_t *mut = malloc(len);
    assert_non_null(mut);
    for (size_t cut = 0; cut < len; cut++) {
        ota_err_t err =
            data ? decode_data_exact(p, cut, NULL) : decode_rejected_exact(p, cut, NULL);
        if (err != OTA_ERR_BAD_MESSAGE) {
            fail_msg("prefix of %zu of %zu bytes gave %d", cut, len, (int)err);
        }
    }
    for (size_t i = 0; i < len; i++) {
        for (unsigned v = 0; v < 256; v++) {
            ota_err_t err;
            memcpy(mut, p, len);
            mut[i] = (uint8_t)v;
            err = data ? decode_data_exact(mut, len, NULL) : decode_rejected_exact(mut, len, NULL);
            if (err != OTA_OK && err != OTA_ERR_BAD_MESSAGE) {
                fail_msg("byte %zu = 0x%02x gave %d", i, v, (int)err);
            }
        }
    }
    free(mut);
}

static ota_cbor_get_stream_t spec_request(void)
{
    static const uint8_t bitmap[] = {0x07};
    ota_cbor_get_stream_t req;
    memset(&req, 0, sizeof req);
    req.client_token = "rdy";
    req.file_id = 0;
    req.block_size = 4096;
    req.block_offset = 0;
    req.bitmap = bitmap;
    req.bitmap_len = sizeof bitmap;
    req.num_blocks = 1;
    return req;
}

/* ---- GetStream encoding --------------------------------------------------- */

static void test_encode_spec_example(void **state)
{
    static const uint8_t expect[] = {0xa6, 0x61, 0x63, 0x63, 0x72, 0x64, 0x79, 0x61, 0x66,
                                     0x00, 0x61, 0x6c, 0x19, 0x10, 0x00, 0x61, 0x6f, 0x00,
                                     0x61, 0x62, 0x41, 0x07, 0x61, 0x6e, 0x01};
    ota_cbor_get_stream_t req = spec_request();
    uint8_t buf[OTA_CBOR_GET_STREAM_MAX_SIZE(1, 3)];
    size_t len = 0;
    (void)state;
    assert_int_equal(ota_cbor_encode_get_stream(&req, buf, sizeof buf, &len), OTA_OK);
    assert_int_equal(len, sizeof expect);
    assert_memory_equal(buf, expect, sizeof expect);
    /* Exactly the needed size is enough. */
    assert_int_equal(ota_cbor_encode_get_stream(&req, buf, sizeof expect, &len), OTA_OK);
    assert_memory_equal(buf, expect, sizeof expect);
}

static void test_encode_spec_bitmaps(void **state)
{
    /* 10 blocks wanted, n = 4: bitmap 42 ff 03. */
    static const uint8_t ten[] = {0xff, 0x03};
    static const uint8_t expect_ten[] = {0xa6, 0x61, 0x63, 0x63, 0x72, 0x64, 0x79, 0x61, 0x66,
                                         0x00, 0x61, 0x6c, 0x19, 0x10, 0x00, 0x61, 0x6f, 0x00,
                                         0x61, 0x62, 0x42, 0xff, 0x03, 0x61, 0x6e, 0x04};
    /* 366 816 bytes at 4096: 90 blocks, ff x 11 then 03. */
    uint8_t ninety[12];
    uint8_t buf[128];
    size_t len = 0;
    ota_cbor_get_stream_t req = spec_request();
    (void)state;
    req.bitmap = ten;
    req.bitmap_len = sizeof ten;
    req.num_blocks = 4;
    assert_int_equal(ota_cbor_encode_get_stream(&req, buf, sizeof buf, &len), OTA_OK);
    assert_int_equal(len, sizeof expect_ten);
    assert_memory_equal(buf, expect_ten, sizeof expect_ten);

    memset(ninety, 0xff, sizeof ninety);
    ninety[11] = 0x03;
    req.bitmap = ninety;
    req.bitmap_len = sizeof ninety;
    req.num_blocks = 90;
    assert_int_equal(ota_cbor_encode_get_stream(&req, buf, sizeof buf, &len), OTA_OK);
    assert_int_equal(len, 20 + 1 + 12 + 4);
    assert_memory_equal(buf, expect_ten, 20);
    assert_int_equal(buf[20], 0x4c);
    assert_memory_equal(buf + 21, ninety, 12);
    assert_int_equal(buf[33], 0x61);
    assert_int_equal(buf[34], 'n');
    assert_int_equal(buf[35], 0x18);
    assert_int_equal(buf[36], 90);
}

static void test_encode_optional_keys(void **state)
{
    /* No token, stream version 2: a6 then s, f, l, o, b, n. */
    static const uint8_t expect[] = {0xa6, 0x61, 0x73, 0x02, 0x61, 0x66, 0x18, 0x2a, 0x61, 0x6c,
                                     0x19, 0x01, 0x00, 0x61, 0x6f, 0x19, 0x01, 0x00, 0x61, 0x62,
                                     0x41, 0x07, 0x61, 0x6e, 0x1a, 0x00, 0x01, 0x00, 0x00};
    /* Token and version: a7, c first, then s. */
    static const uint8_t expect7[] = {0xa7, 0x61, 0x63, 0x60, 0x61, 0x73, 0x1a,
                                      0xff, 0xff, 0xff, 0xff, 0x61, 0x66, 0x17};
    ota_cbor_get_stream_t req = spec_request();
    uint8_t buf[64];
    size_t len = 0;
    (void)state;
    req.client_token = NULL;
    req.has_stream_version = 1;
    req.stream_version = 2;
    req.file_id = 42;
    req.block_size = 256;
    req.block_offset = 256;
    req.num_blocks = 65536;
    assert_int_equal(ota_cbor_encode_get_stream(&req, buf, sizeof buf, &len), OTA_OK);
    assert_int_equal(len, sizeof expect);
    assert_memory_equal(buf, expect, sizeof expect);

    req.client_token = "";
    req.stream_version = UINT32_MAX;
    req.file_id = 23;
    assert_int_equal(ota_cbor_encode_get_stream(&req, buf, sizeof buf, &len), OTA_OK);
    assert_memory_equal(buf, expect7, sizeof expect7);
}

static void test_encode_invalid_args(void **state)
{
    static const uint8_t big_bitmap[OTA_CBOR_BITMAP_MAX + 1] = {0};
    char token[OTA_CBOR_TOKEN_MAX + 2];
    ota_cbor_get_stream_t req = spec_request();
    ota_cbor_get_stream_t bad;
    uint8_t buf[OTA_CBOR_GET_STREAM_MAX_SIZE(OTA_CBOR_BITMAP_MAX + 1, OTA_CBOR_TOKEN_MAX + 1)];
    size_t len = 12345;
    (void)state;
    assert_int_equal(ota_cbor_encode_get_stream(NULL, buf, sizeof buf, &len), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_cbor_encode_get_stream(&req, NULL, sizeof buf, &len), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_cbor_encode_get_stream(&req, buf, sizeof buf, NULL), OTA_ERR_INVALID_ARG);
    bad = req;
    bad.bitmap = NULL;
    assert_int_equal(ota_cbor_encode_get_stream(&bad, buf, sizeof buf, &len), OTA_ERR_INVALID_ARG);
    bad = req;
    bad.bitmap_len = 0;
    assert_int_equal(ota_cbor_encode_get_stream(&bad, buf, sizeof buf, &len), OTA_ERR_INVALID_ARG);
    bad.bitmap = big_bitmap;
    bad.bitmap_len = OTA_CBOR_BITMAP_MAX + 1;
    assert_int_equal(ota_cbor_encode_get_stream(&bad, buf, sizeof buf, &len), OTA_ERR_INVALID_ARG);
    bad = req;
    bad.block_size = OTA_CBOR_BLOCK_SIZE_MIN - 1;
    assert_int_equal(ota_cbor_encode_get_stream(&bad, buf, sizeof buf, &len), OTA_ERR_INVALID_ARG);
    bad.block_size = OTA_CBOR_BLOCK_SIZE_MAX + 1;
    assert_int_equal(ota_cbor_encode_get_stream(&bad, buf, sizeof buf, &len), OTA_ERR_INVALID_ARG);
    bad.block_size = 0;
    assert_int_equal(ota_cbor_encode_get_stream(&bad, buf, sizeof buf, &len), OTA_ERR_INVALID_ARG);
    bad = req;
    bad.num_blocks = 0;
    assert_int_equal(ota_cbor_encode_get_stream(&bad, buf, sizeof buf, &len), OTA_ERR_INVALID_ARG);
    memset(token, 'x', OTA_CBOR_TOKEN_MAX + 1);
    token[OTA_CBOR_TOKEN_MAX + 1] = '\0';
    bad = req;
    bad.client_token = token;
    assert_int_equal(ota_cbor_encode_get_stream(&bad, buf, sizeof buf, &len), OTA_ERR_INVALID_ARG);
    assert_int_equal(len, 12345); /* untouched */

    /* The limits themselves are accepted. */
    token[OTA_CBOR_TOKEN_MAX] = '\0';
    bad.bitmap = big_bitmap;
    bad.bitmap_len = OTA_CBOR_BITMAP_MAX;
    bad.block_size = OTA_CBOR_BLOCK_SIZE_MIN;
    assert_int_equal(ota_cbor_encode_get_stream(&bad, buf, sizeof buf, &len), OTA_OK);
    bad.block_size = OTA_CBOR_BLOCK_SIZE_MAX;
    assert_int_equal(ota_cbor_encode_get_stream(&bad, buf, sizeof buf, &len), OTA_OK);
}

/* The worst case reaches OTA_CBOR_GET_STREAM_MAX_SIZE exactly; every smaller cap fails cleanly. */
static void test_encode_buffer_too_small(void **state)
{
    static uint8_t bitmap[OTA_CBOR_BITMAP_MAX];
    static uint8_t buf[OTA_CBOR_GET_STREAM_MAX_SIZE(OTA_CBOR_BITMAP_MAX, OTA_CBOR_TOKEN_MAX) + 16];
    static uint8_t full[sizeof buf];
    char token[OTA_CBOR_TOKEN_MAX + 1];
    ota_cbor_get_stream_t req;
    size_t need = 0;
    size_t len;
    (void)state;
    memset(token, 't', OTA_CBOR_TOKEN_MAX);
    token[OTA_CBOR_TOKEN_MAX] = '\0';
    for (size_t i = 0; i < sizeof bitmap; i++) {
        bitmap[i] = (uint8_t)(i * 7u + 1u);
    }
    memset(&req, 0, sizeof req);
    req.client_token = token;
    req.file_id = UINT32_MAX;
    req.block_size = OTA_CBOR_BLOCK_SIZE_MAX;
    req.block_offset = 0x10000;
    req.num_blocks = 0xfffffffeu;
    req.has_stream_version = 1;
    req.stream_version = 0x80000000u;
    req.bitmap = bitmap;
    req.bitmap_len = sizeof bitmap;
    assert_int_equal(ota_cbor_encode_get_stream(&req, full, sizeof full, &need), OTA_OK);
    assert_int_equal(need, OTA_CBOR_GET_STREAM_MAX_SIZE(OTA_CBOR_BITMAP_MAX, OTA_CBOR_TOKEN_MAX));

    /* Every cap below the size, for the worst case and for the spec example. */
    for (int round = 0; round < 2; round++) {
        if (round == 1) {
            req = spec_request();
            assert_int_equal(ota_cbor_encode_get_stream(&req, full, sizeof full, &need), OTA_OK);
        }
        for (size_t cap = 0; cap < need; cap++) {
            memset(buf, 0xa5, sizeof buf);
            len = 0;
            if (ota_cbor_encode_get_stream(&req, buf, cap, &len) != OTA_ERR_OUT_OF_MEMORY) {
                fail_msg("cap %zu of %zu not refused", cap, need);
            }
            assert_int_equal(len, need);
            for (size_t i = cap; i < sizeof buf; i++) {
                if (buf[i] != 0xa5) {
                    fail_msg("cap %zu: byte %zu written", cap, i);
                }
            }
        }
        memset(buf, 0xa5, sizeof buf);
        assert_int_equal(ota_cbor_encode_get_stream(&req, buf, need, &len), OTA_OK);
        assert_int_equal(len, need);
        assert_memory_equal(buf, full, need);
        assert_int_equal(buf[need], 0xa5);
    }
}

/* ---- data block decoding ---------------------------------------------------- */

static void test_decode_data_valid(void **state)
{
    /* {"c":"rdy","f":0,"i":2,"l":3,"p":h'010203'} */
    static const uint8_t msg[] = {0xa5, 0x61, 0x63, 0x63, 0x72, 0x64, 0x79, 0x61, 0x66, 0x00, 0x61,
                                  0x69, 0x02, 0x61, 0x6c, 0x03, 0x61, 0x70, 0x43, 0x01, 0x02, 0x03};
    ota_cbor_data_block_t d;
    msg_t m;
    (void)state;
    assert_int_equal(decode_data_exact(msg, sizeof msg, &d), OTA_OK);
    assert_int_equal(d.file_id, 0);
    assert_int_equal(d.block_index, 2);
    assert_int_equal(d.block_len, 3);
    assert_int_equal(d.payload_len, 3);
    assert_ptr_equal(d.payload, msg + 19);
    assert_int_equal(d.client_token_len, 3);
    assert_ptr_equal(d.client_token, (const char *)msg + 4);
    check_prefixes_and_mutations(msg, sizeof msg, 1);

    /* Without a token, in another order, with the largest values. */
    m.n = 0;
    m_head(&m, 5, 4);
    m_key_bytes(&m, "p", "", 0);
    m_key_uint(&m, "i", UINT32_MAX);
    m_key_uint(&m, "l", 0);
    m_key_uint(&m, "f", UINT32_MAX);
    assert_int_equal(decode_data_exact(m.b, m.n, &d), OTA_OK);
    assert_null(d.client_token);
    assert_int_equal(d.client_token_len, 0);
    assert_int_equal(d.file_id, UINT32_MAX);
    assert_int_equal(d.block_index, UINT32_MAX);
    assert_int_equal(d.block_len, 0);
    assert_int_equal(d.payload_len, 0);

    /* NULL arguments. */
    assert_int_equal(ota_cbor_decode_data_block(NULL, 0, &d), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_cbor_decode_data_block(msg, sizeof msg, NULL), OTA_ERR_INVALID_ARG);
}

/* Integers in every argument width, shortest or not, and 8-byte values just over the limit. */
static void test_decode_data_int_widths(void **state)
{
    static const int widths[] = {0, 1, 2, 4, 8};
    ota_cbor_data_block_t d;
    msg_t m;
    (void)state;
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        uint64_t v = widths[w] == 0   ? 23
                     : widths[w] == 8 ? UINT32_MAX
                                      : (1ull << (8 * widths[w])) - 1;
        m.n = 0;
        m_head_w(&m, 5, 4, widths[w] == 8 ? 8 : widths[w]);
        m_text(&m, "f");
        m_head_w(&m, 0, v, widths[w]);
        m_text(&m, "i");
        m_head_w(&m, 0, 5, widths[w] == 0 ? 0 : widths[w]);
        m_text(&m, "l");
        m_head_w(&m, 0, 2, widths[w]);
        m_text(&m, "p");
        m_head_w(&m, 2, 2, widths[w]);
        m_raw(&m, "zz", 2);
        assert_int_equal(decode_data_exact(m.b, m.n, &d), OTA_OK);
        assert_int_equal(d.file_id, v);
        assert_int_equal(d.block_index, 5);
        assert_int_equal(d.block_len, 2);
        assert_memory_equal(d.payload, "zz", 2);
    }
    /* 2^32 and 2^63 do not fit uint32_t, whatever key they are on. */
    static const uint64_t too_big[] = {0x100000000ull, 0x8000000000000000ull, UINT64_MAX,
                                       0x0100000000000001ull};
    static const char *const keys[] = {"f", "i", "l"};
    for (size_t b = 0; b < sizeof too_big / sizeof too_big[0]; b++) {
        for (size_t k = 0; k < 3; k++) {
            m.n = 0;
            m_head(&m, 5, 4);
            for (size_t j = 0; j < 3; j++) {
                m_text(&m, keys[j]);
                if (j == k) {
                    m_head_w(&m, 0, too_big[b], 8);
                } else {
                    m_head(&m, 0, j == 2 ? 1 : 9);
                }
            }
            m_key_bytes(&m, "p", "q", 1);
            expect_bad_data(&m);
        }
    }
}

static void test_decode_data_wrong_types(void **state)
{
    /* For each known key, values of every wrong type. */
    static const uint8_t negint[] = {0x20};
    static const uint8_t negint32[] = {0x3a, 0, 0, 0, 1};
    static const uint8_t text[] = {0x61, 0x31};
    static const uint8_t bytes[] = {0x41, 0x31};
    static const uint8_t arr[] = {0x81, 0x01};
    static const uint8_t map[] = {0xa1, 0x61, 0x61, 0x01};
    static const uint8_t tag[] = {0xc2, 0x41, 0x01};
    static const uint8_t f16[] = {0xf9, 0x3c, 0x00};
    static const uint8_t tru[] = {0xf5};
    static const uint8_t nul[] = {0xf6};
    static const uint8_t uint1[] = {0x01};
    static const struct {
        const uint8_t *p;
        size_t n;
    } vals[] = {{negint, 1}, {negint32, 5}, {text, 2}, {bytes, 2}, {arr, 2},  {map, 4},
                {tag, 3},    {f16, 3},      {tru, 1},  {nul, 1},   {uint1, 1}};
    static const char keys[] = "filpc";
    (void)state;
    for (size_t k = 0; k < 5; k++) {
        for (size_t v = 0; v < sizeof vals / sizeof vals[0]; v++) {
            int right = (k < 3 && vals[v].p == uint1) || (k == 3 && vals[v].p == bytes) ||
                        (k == 4 && vals[v].p == text);
            msg_t m;
            char key[2] = {keys[k], 0};
            m.n = 0;
            m_head(&m, 5, k == 4 ? 5 : 4);
            for (size_t j = 0; j < 5; j++) {
                if (j == 4 && k != 4) {
                    break;
                }
                if (j == k) {
                    m_text(&m, key);
                    m_raw(&m, vals[v].p, vals[v].n);
                } else if (j < 3) {
                    char kj[2] = {keys[j], 0};
                    m_key_uint(&m, kj, 1);
                } else if (j == 3) {
                    m_key_bytes(&m, "p", "1", 1);
                }
            }
            if (right) {
                assert_int_equal(decode_data_exact(m.b, m.n, NULL), OTA_OK);
            } else if (decode_data_exact(m.b, m.n, NULL) != OTA_ERR_BAD_MESSAGE) {
                fail_msg("key %s with value type %zu accepted", key, v);
            }
        }
    }
}

static void test_decode_data_structure(void **state)
{
    static const char *const keys[] = {"f", "i", "l", "p"};
    msg_t m;
    (void)state;
    /* Each required key missing (the map announces 3 pairs, or an unknown key stands in). */
    for (size_t k = 0; k < 4; k++) {
        for (int filler = 0; filler < 2; filler++) {
            m.n = 0;
            m_head(&m, 5, filler ? 4 : 3);
            for (size_t j = 0; j < 4; j++) {
                if (j == k) {
                    if (filler) {
                        m_key_uint(&m, "F", 1);
                    }
                } else if (j == 3) {
                    m_key_bytes(&m, "p", "x", 1);
                } else {
                    m_key_uint(&m, keys[j], 1);
                }
            }
            expect_bad_data(&m);
        }
    }
    /* "p" missing while "l" is 0, so that only the missing key tells. */
    m.n = 0;
    m_head(&m, 5, 3);
    m_key_uint(&m, "f", 1);
    m_key_uint(&m, "i", 1);
    m_key_uint(&m, "l", 0);
    expect_bad_data(&m);
    /* Each known key twice, same value. */
    for (size_t k = 0; k < 5; k++) {
        m_data_start(&m, k == 4 ? 6 : 5);
        if (k == 4) {
            m_key_text(&m, "c", "t");
            m_key_text(&m, "c", "t");
        } else if (k == 3) {
            m_key_bytes(&m, "p", "abcd", 4);
        } else {
            m_key_uint(&m, keys[k], k == 2 ? 4 : 1);
        }
        expect_bad_data(&m);
    }
    /* Unknown keys may repeat. */
    m_data_start(&m, 6);
    m_key_uint(&m, "x", 1);
    m_key_uint(&m, "x", 1);
    assert_int_equal(decode_data_exact(m.b, m.n, NULL), OTA_OK);
    /* l differs from the payload length, both ways. */
    for (int d = -1; d <= 1; d += 2) {
        m.n = 0;
        m_head(&m, 5, 4);
        m_key_uint(&m, "f", 7);
        m_key_uint(&m, "i", 3);
        m_key_uint(&m, "l", (uint64_t)(4 + d));
        m_key_bytes(&m, "p", "abcd", 4);
        expect_bad_data(&m);
    }
    /* Trailing bytes of any kind. */
    static const uint8_t trailers[] = {0x00, 0xff, 0xa0, 0x60};
    for (size_t t = 0; t < sizeof trailers; t++) {
        m_data_start(&m, 4);
        assert_int_equal(decode_data_exact(m.b, m.n, NULL), OTA_OK);
        m_byte(&m, trailers[t]);
        expect_bad_data(&m);
    }
    /* Map announcing more pairs than present, or fewer. */
    m_data_start(&m, 5);
    expect_bad_data(&m);
    m_data_start(&m, 3);
    expect_bad_data(&m);
    /* Not a map at the top. */
    static const uint8_t not_maps[][3] = {{0x80}, {0x40}, {0x60}, {0x00}, {0xf6}, {0xc1, 0xa0}};
    for (size_t i = 0; i < sizeof not_maps / sizeof not_maps[0]; i++) {
        assert_int_equal(decode_data_exact(not_maps[i], i == 5 ? 2 : 1, NULL), OTA_ERR_BAD_MESSAGE);
    }
    assert_int_equal(decode_data_exact(m.b, 0, NULL), OTA_ERR_BAD_MESSAGE);
    /* The data map wrapped in a tag or an array. */
    m.n = 0;
    m_byte(&m, 0xd8);
    m_byte(&m, 0x18);
    {
        msg_t inner;
        m_data_start(&inner, 4);
        m_raw(&m, inner.b, inner.n);
        expect_bad_data(&m);
        m.n = 0;
        m_byte(&m, 0x81);
        m_raw(&m, inner.b, inner.n);
        expect_bad_data(&m);
    }
    /* Keys that are not text: an integer, a byte string "f", an array. */
    static const uint8_t bad_keys[][3] = {{0x01}, {0x41, 'f'}, {0x80}, {0x20}, {0xf6}};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        m_data_start(&m, 5);
        m_raw(&m, bad_keys[i], i == 1 ? 2 : 1);
        m_byte(&m, 0x00);
        expect_bad_data(&m);
    }
    /* Key text length beyond the message. */
    m_data_start(&m, 5);
    m_byte(&m, 0x7a);
    m_raw(&m, "\xff\xff\xff\xff", 4);
    expect_bad_data(&m);
}

static void test_decode_data_unknown_keys(void **state)
{
    /* Every kind of value under an unknown key is skipped. */
    static const uint8_t values[][24] = {
        {1, 0x17},
        {9, 0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* 2^64 - 1 */
        {9, 0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* -2^64 */
        {3, 0x42, 0x00, 0x01},
        {4, 0x63, 'a', 'b', 'c'},
        {1, 0x40},
        {1, 0x60},
        {4, 0x83, 0x01, 0x02, 0x03},
        {1, 0x80},
        {1, 0xa0},
        {6, 0xa2, 0x01, 0x02, 0x61, 'p', 0x00}, /* a nested "p" is not the data */
        {10, 0xdb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00}, /* tag 2^64 - 1 */
        {3, 0xd8, 0x20, 0x60},
        {3, 0xf9, 0x7e, 0x00},
        {5, 0xfa, 0x47, 0xc3, 0x50, 0x00},
        {9, 0xfb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0},
        {1, 0xf4},
        {1, 0xf5},
        {1, 0xf6},
        {1, 0xf7},
        {1, 0xe0},
        {2, 0xf8, 0x20},
        {2, 0xf8, 0xff},
    };
    static const char *const names[] = {"x", "", "ff", "c2", "o", "long key name", "P", "F"};
    ota_cbor_data_block_t d;
    msg_t m;
    (void)state;
    for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            for (int where = 0; where < 3; where++) {
                m.n = 0;
                m_head(&m, 5, 5);
                if (where == 0) {
                    m_text(&m, names[k]);
                    m_raw(&m, values[v] + 1, values[v][0]);
                }
                m_key_uint(&m, "f", 7);
                m_key_uint(&m, "i", 3);
                if (where == 1) {
                    m_text(&m, names[k]);
                    m_raw(&m, values[v] + 1, values[v][0]);
                }
                m_key_uint(&m, "l", 4);
                m_key_bytes(&m, "p", "abcd", 4);
                if (where == 2) {
                    m_text(&m, names[k]);
                    m_raw(&m, values[v] + 1, values[v][0]);
                }
                if (decode_data_exact(m.b, m.n, &d) != OTA_OK) {
                    fail_msg("value %zu under key \"%s\" at %d refused", v, names[k], where);
                }
                assert_int_equal(d.file_id, 7);
                assert_int_equal(d.block_index, 3);
                assert_memory_equal(d.payload, "abcd", 4);
                if (where == 2 && k == 0) {
                    check_prefixes_and_mutations(m.b, m.n, 1);
                }
            }
        }
    }
}

/* Arrays, maps and tags nest up to OTA_CBOR_MAX_DEPTH under an unknown key, no deeper. */
static void test_decode_data_deep_nesting(void **state)
{
    msg_t m;
    (void)state;
    for (unsigned kind = 0; kind < 4; kind++) {
        for (unsigned depth = 1; depth <= OTA_CBOR_MAX_DEPTH + 2; depth++) {
            for (int empty = 0; empty < 2; empty++) {
                m_data_start(&m, 5);
                m_text(&m, "deep");
                int leaf = 1;
                for (unsigned i = 0; i < depth; i++) {
                    unsigned k = kind == 3 ? i % 3 : kind;
                    int last_empty = i + 1 == depth && empty && k != 2;
                    if (k == 0) {
                        m_byte(&m, last_empty ? 0x80 : 0x81);
                    } else if (k == 1) {
                        m_byte(&m, last_empty ? 0xa0 : 0xa1);
                        if (!last_empty) {
                            m_text(&m, "k");
                        }
                    } else {
                        m_byte(&m, 0xc6); /* a tag always holds one item */
                    }
                    leaf = !last_empty;
                }
                if (leaf) {
                    m_byte(&m, 0x01);
                }
                ota_err_t err = decode_data_exact(m.b, m.n, NULL);
                ota_err_t want = depth <= OTA_CBOR_MAX_DEPTH ? OTA_OK : OTA_ERR_BAD_MESSAGE;
                if (err != want) {
                    fail_msg("kind %u depth %u empty %d: %d", kind, depth, empty, (int)err);
                }
            }
        }
    }
    /* Very deep nesting (far past the bound) is refused without trouble. */
    m_data_start(&m, 5);
    m_text(&m, "x");
    for (int i = 0; i < 5000; i++) {
        m_byte(&m, 0x81);
    }
    m_byte(&m, 0x00);
    expect_bad_data(&m);
    /* Wide but shallow is fine. */
    m_data_start(&m, 5);
    m_text(&m, "x");
    m_head(&m, 4, 3000);
    for (int i = 0; i < 3000; i++) {
        m_byte(&m, 0x80 | (i % 2 ? 0x20 : 0));
    }
    assert_int_equal(decode_data_exact(m.b, m.n, NULL), OTA_OK);
    /* A count far beyond the bytes left. */
    static const uint8_t huge[][9] = {{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
                                      {0xbb, 0x80, 0, 0, 0, 0, 0, 0, 0},
                                      {0x9a, 0xff, 0xff, 0xff, 0xff},
                                      {0xba, 0x80, 0x00, 0x00, 0x00},
                                      {0x5b, 0, 0, 0, 1, 0, 0, 0, 0},
                                      {0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0}};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        for (int tail = 0; tail < 2; tail++) {
            m_data_start(&m, 5);
            m_text(&m, "x");
            m_raw(&m, huge[i], (huge[i][0] & 31) == 27 ? 9 : 5);
            if (tail) {
                m_byte(&m, 0x00);
            }
            expect_bad_data(&m);
        }
    }
    /* 8-byte lengths whose low 32 bits alone would look plausible. */
    for (unsigned mt = 2; mt <= 5; mt++) {
        m_data_start(&m, 5);
        m_text(&m, "x");
        m_head_w(&m, mt, 0x100000000ull, 8);
        expect_bad_data(&m);
        m_data_start(&m, 5);
        m_text(&m, "x");
        m_head_w(&m, mt, 0x100000001ull, 8);
        m_byte(&m, 0x00);
        if (mt == 5) {
            m_byte(&m, 0x00);
        }
        expect_bad_data(&m);
    }
    m.n = 0;
    m_head(&m, 5, 4);
    m_key_uint(&m, "f", 7);
    m_key_uint(&m, "i", 3);
    m_key_uint(&m, "l", 0);
    m_text(&m, "p");
    m_head_w(&m, 2, 0x100000000ull, 8);
    expect_bad_data(&m);
    m.n = 0;
    m_head_w(&m, 5, 0x100000004ull, 8);
    m_key_uint(&m, "f", 7);
    m_key_uint(&m, "i", 3);
    m_key_uint(&m, "l", 0);
    m_key_bytes(&m, "p", "", 0);
    expect_bad_data(&m);
}

/* Indefinite lengths, breaks, reserved encodings and bad simple values, anywhere. */
static void test_decode_data_indefinite_and_reserved(void **state)
{
    static const uint8_t items[][6] = {
        {5, 0x5f, 0x41, 0x00, 0xff, 0}, /* indefinite byte string */
        {5, 0x7f, 0x61, 'a', 0xff, 0},  /* indefinite text */
        {3, 0x9f, 0x01, 0xff},          /* indefinite array */
        {4, 0xbf, 0x60, 0x01, 0xff},    /* indefinite map */
        {1, 0xff},                      /* stray break */
        {1, 0x1c},                      /* reserved 28 .. 30 */
        {1, 0x3d},
        {1, 0x5e},
        {1, 0xdc},
        {1, 0xfc},
        {1, 0xfd},
        {1, 0xfe},
        {2, 0xf8, 0x00}, /* two-byte simple values below 32 */
        {2, 0xf8, 0x1f},
        {2, 0xf8, 0x14},
    };
    msg_t m;
    (void)state;
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        /* As the value of an unknown key, nested in an array, and in a tag. */
        for (int wrap = 0; wrap < 3; wrap++) {
            m_data_start(&m, 5);
            m_text(&m, "u");
            if (wrap == 1) {
                m_byte(&m, 0x82);
                m_byte(&m, 0x00);
            } else if (wrap == 2) {
                m_byte(&m, 0xc0);
            }
            m_raw(&m, items[i] + 1, items[i][0]);
            expect_bad_data(&m);
        }
        /* As the value of each known key and as a key. */
        m.n = 0;
        m_head(&m, 5, 4);
        m_text(&m, "f");
        m_raw(&m, items[i] + 1, items[i][0]);
        m_key_uint(&m, "i", 3);
        m_key_uint(&m, "l", 4);
        m_key_bytes(&m, "p", "abcd", 4);
        expect_bad_data(&m);
        m_data_start(&m, 5);
        m_raw(&m, items[i] + 1, items[i][0]);
        m_byte(&m, 0x00);
        expect_bad_data(&m);
    }
    /* Reserved encodings followed by as many bytes as 16, 32 or 64 argument bytes would take. */
    for (unsigned ai = 28; ai <= 30; ai++) {
        for (unsigned mt = 0; mt < 8; mt++) {
            m_data_start(&m, 5);
            m_text(&m, "u");
            m_byte(&m, mt << 5 | ai);
            for (unsigned i = 0; i < (1u << (ai - 24)); i++) {
                m_byte(&m, 0x00);
            }
            expect_bad_data(&m);
        }
    }
    /* Indefinite payload, key, and top-level map. */
    m.n = 0;
    m_head(&m, 5, 4);
    m_key_uint(&m, "f", 7);
    m_key_uint(&m, "i", 3);
    m_key_uint(&m, "l", 4);
    m_text(&m, "p");
    m_raw(&m,
          "\x5f\x44"
          "abcd\xff",
          7);
    expect_bad_data(&m);
    m_data_start(&m, 5);
    m_raw(&m, "\x7f\x61x\xff\x00", 5);
    expect_bad_data(&m);
    {
        msg_t inner;
        m_data_start(&inner, 4);
        m.n = 0;
        m_byte(&m, 0xbf);
        m_raw(&m, inner.b + 1, inner.n - 1);
        m_byte(&m, 0xff);
        expect_bad_data(&m);
    }
}

/* ---- refusal decoding ------------------------------------------------------- */

static void test_decode_rejected(void **state)
{
    /* {"o":"VersionMismatch","m":"stream changed","c":"rdy"} */
    msg_t m;
    ota_cbor_rejected_t r;
    (void)state;
    m.n = 0;
    m_head(&m, 5, 3);
    m_key_text(&m, "o", "VersionMismatch");
    m_key_text(&m, "m", "stream changed");
    m_key_text(&m, "c", "rdy");
    assert_int_equal(decode_rejected_exact(m.b, m.n, &r), OTA_OK);
    assert_int_equal(r.code_len, 15);
    assert_memory_equal(r.code, "VersionMismatch", 15);
    assert_int_equal(r.message_len, 14);
    assert_memory_equal(r.message, "stream changed", 14);
    assert_int_equal(r.client_token_len, 3);
    assert_memory_equal(r.client_token, "rdy", 3);
    check_prefixes_and_mutations(m.b, m.n, 0);

    /* Code only, with unknown keys around it; empty code text. */
    m.n = 0;
    m_head(&m, 5, 3);
    m_key_uint(&m, "f", 1);
    m_key_text(&m, "o", "");
    m_key_bytes(&m, "p", "x", 1);
    assert_int_equal(decode_rejected_exact(m.b, m.n, &r), OTA_OK);
    assert_int_equal(r.code_len, 0);
    assert_non_null(r.code);
    assert_null(r.message);
    assert_int_equal(r.message_len, 0);
    assert_null(r.client_token);
    assert_int_equal(r.client_token_len, 0);

    /* Missing code. */
    m.n = 0;
    m_head(&m, 5, 2);
    m_key_text(&m, "m", "x");
    m_key_text(&m, "c", "x");
    expect_bad_rejected(&m);
    m.n = 0;
    m_head(&m, 5, 0);
    expect_bad_rejected(&m);

    /* Wrong types and duplicates for each key. */
    static const char *const keys[] = {"o", "m", "c"};
    for (size_t k = 0; k < 3; k++) {
        static const uint8_t wrong[][2] = {{0x01}, {0x41, 'x'}, {0x80}, {0xf6}, {0x20}};
        for (size_t w = 0; w < sizeof wrong / sizeof wrong[0]; w++) {
            m.n = 0;
            m_head(&m, 5, 2);
            m_key_text(&m, k == 0 ? "m" : "o", "x");
            m_text(&m, keys[k]);
            m_raw(&m, wrong[w], w == 1 ? 2 : 1);
            expect_bad_rejected(&m);
        }
        m.n = 0;
        m_head(&m, 5, k == 0 ? 2 : 3);
        if (k != 0) {
            m_key_text(&m, "o", "x");
        }
        m_key_text(&m, keys[k], "a");
        m_key_text(&m, keys[k], "a");
        expect_bad_rejected(&m);
    }
    /* Trailing byte; indefinite text. */
    m.n = 0;
    m_head(&m, 5, 1);
    m_key_text(&m, "o", "InternalError");
    assert_int_equal(decode_rejected_exact(m.b, m.n, NULL), OTA_OK);
    m_byte(&m, 0x00);
    expect_bad_rejected(&m);
    m.n = 0;
    m_head(&m, 5, 1);
    m_text(&m, "o");
    m_raw(&m, "\x7f\x61x\xff", 4);
    expect_bad_rejected(&m);

    assert_int_equal(ota_cbor_decode_rejected(NULL, 0, &r), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_cbor_decode_rejected(m.b, m.n, NULL), OTA_ERR_INVALID_ARG);
}

/* ---- cross-check with libcbor ----------------------------------------------- */

static uint32_t rng_state;

static uint32_t rnd(void)
{
    /* xorshift32 */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static uint32_t rnd_below(uint32_t n)
{
    return n == 0 ? 0 : rnd() % n;
}

/* A value that stresses the argument-width boundaries. */
static uint32_t rnd_u32(void)
{
    static const uint32_t edges[] = {0,          1,           23,        24,       255,
                                     256,        65535,       65536,     0xffffff, 0x1000000,
                                     0x7fffffff, 0x80000000u, UINT32_MAX};
    switch (rnd_below(3)) {
    case 0:
        return edges[rnd_below(sizeof edges / sizeof edges[0])];
    case 1:
        return rnd() >> rnd_below(32);
    default:
        return rnd();
    }
}

static uint32_t seed_from_env(void)
{
    const char *s = getenv("OTA_TEST_SEED");
    return s != NULL ? (uint32_t)strtoul(s, NULL, 0) : 0x07a2c0deu;
}

static unsigned min_width(uint64_t v)
{
    return v < 24 ? 0 : v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
}

/* A libcbor unsigned integer of the given width in bytes (1, 2, 4, 8), or a random one that fits.
 */
static cbor_item_t *build_uint(uint64_t v, unsigned width)
{
    if (width == 0) {
        static const unsigned ws[] = {1, 2, 4, 8};
        unsigned lo = min_width(v);
        do {
            width = ws[rnd_below(4)];
        } while (width < lo);
    }
    switch (width) {
    case 1:
        return cbor_build_uint8((uint8_t)v);
    case 2:
        return cbor_build_uint16((uint16_t)v);
    case 4:
        return cbor_build_uint32((uint32_t)v);
    default:
        return cbor_build_uint64(v);
    }
}

static cbor_item_t *build_shortest_uint(uint64_t v)
{
    unsigned w = min_width(v);
    return build_uint(v, w == 0 ? 1 : w);
}

/* A random well-formed value nested at most depth_left containers deep. */
static cbor_item_t *build_value(unsigned depth_left)
{
    unsigned kind = rnd_below(depth_left > 0 ? 14 : 11);
    switch (kind) {
    case 0:
        return build_uint(rnd() | (uint64_t)rnd() << (rnd_below(2) * 32), 0);
    case 1:
        return cbor_build_negint64((uint64_t)rnd() << 32 | rnd());
    case 2: {
        uint8_t b[40];
        size_t n = rnd_below(sizeof b);
        for (size_t i = 0; i < n; i++) {
            b[i] = (uint8_t)rnd();
        }
        return cbor_build_bytestring(b, n);
    }
    case 3: {
        char t[40];
        size_t n = rnd_below(sizeof t);
        for (size_t i = 0; i < n; i++) {
            t[i] = (char)('a' + rnd_below(26));
        }
        return cbor_build_stringn(t, n);
    }
    case 4:
        return cbor_build_float2(1.5f);
    case 5:
        return cbor_build_float4(-3.25f);
    case 6:
        return cbor_build_float8(1e300);
    case 7:
        return cbor_build_bool(rnd_below(2) != 0);
    case 8:
        return rnd_below(2) ? cbor_new_null() : cbor_new_undef();
    case 9:
        return cbor_build_ctrl((uint8_t)(rnd_below(2) ? rnd_below(20) : 32 + rnd_below(224)));
    case 10:
        return cbor_build_negint8((uint8_t)rnd());
    case 11: {
        size_t n = rnd_below(4);
        cbor_item_t *a = cbor_new_definite_array(n);
        for (size_t i = 0; i < n; i++) {
            assert_true(cbor_array_push(a, cbor_move(build_value(depth_left - 1))));
        }
        return a;
    }
    case 12: {
        size_t n = rnd_below(3);
        cbor_item_t *mp = cbor_new_definite_map(n);
        for (size_t i = 0; i < n; i++) {
            struct cbor_pair pr;
            pr.key = cbor_move(build_value(depth_left - 1));
            pr.value = cbor_move(build_value(depth_left - 1));
            assert_true(cbor_map_add(mp, pr));
        }
        return mp;
    }
    default:
        return cbor_build_tag(rnd_below(2) ? rnd_below(300) : (uint64_t)rnd() << 32 | rnd(),
                              cbor_move(build_value(depth_left - 1)));
    }
}

/* An unknown key name for a message whose known keys are the letters of known. */
static cbor_item_t *build_unknown_key(const char *known)
{
    static const char *const names[] = {"", "x", "ff", "pp", "c ", "block", "S", "\xc3\xa9"};
    for (;;) {
        const char *n = names[rnd_below(sizeof names / sizeof names[0])];
        char one[2] = {(char)('a' + rnd_below(26)), 0};
        if (rnd_below(2)) {
            n = one;
        }
        if (strlen(n) != 1 || strchr(known, n[0]) == NULL) {
            return cbor_build_string(n);
        }
    }
}

/* Serialises a map of the given pairs in a random order, with extra unknown keys. */
static uint8_t *serialize_shuffled(struct cbor_pair *pairs, size_t n, const char *known,
                                   size_t *len)
{
    size_t extra = rnd_below(4);
    cbor_item_t *map = cbor_new_definite_map(n + extra);
    struct cbor_pair all[16];
    uint8_t *out = NULL;
    size_t cap = 0;
    assert_true(n + extra <= 16);
    memcpy(all, pairs, n * sizeof *pairs);
    for (size_t i = 0; i < extra; i++) {
        all[n + i].key = cbor_move(build_unknown_key(known));
        all[n + i].value = cbor_move(build_value(OTA_CBOR_MAX_DEPTH));
    }
    for (size_t i = n + extra; i > 1; i--) {
        size_t j = rnd_below((uint32_t)i);
        struct cbor_pair t = all[i - 1];
        all[i - 1] = all[j];
        all[j] = t;
    }
    for (size_t i = 0; i < n + extra; i++) {
        assert_true(cbor_map_add(map, all[i]));
    }
    *len = cbor_serialize_alloc(map, &out, &cap);
    assert_true(*len > 0);
    cbor_decref(&map);
    return out;
}

static void check_libcbor_uint(cbor_item_t *v, uint64_t want, uint32_t seed, unsigned c)
{
    if (!cbor_isa_uint(v) || cbor_get_int(v) != want) {
        fail_msg("seed 0x%08x case %u: integer differs", seed, c);
    }
    /* Shortest form: the width libcbor saw is the smallest that holds the value. */
    unsigned w = min_width(want);
    cbor_int_width iw = cbor_int_get_width(v);
    unsigned got = iw == CBOR_INT_8 ? 1 : iw == CBOR_INT_16 ? 2 : iw == CBOR_INT_32 ? 4 : 8;
    if (got != (w == 0 ? 1 : w)) {
        fail_msg("seed 0x%08x case %u: integer %llu not in shortest form", seed, c,
                 (unsigned long long)want);
    }
}

static void test_libcbor_requests(void **state)
{
    const uint32_t seed = seed_from_env();
    static uint8_t bitmap[OTA_CBOR_BITMAP_MAX];
    static uint8_t buf[OTA_CBOR_GET_STREAM_MAX_SIZE(OTA_CBOR_BITMAP_MAX, OTA_CBOR_TOKEN_MAX)];
    (void)state;
    rng_state = seed;
    for (unsigned c = 0; c < 3000; c++) {
        char token[OTA_CBOR_TOKEN_MAX + 1];
        ota_cbor_get_stream_t req;
        size_t len = 0;
        size_t tlen = rnd_below(OTA_CBOR_TOKEN_MAX + 1);
        memset(&req, 0, sizeof req);
        for (size_t i = 0; i < tlen; i++) {
            token[i] = (char)(0x20 + rnd_below(0x5f));
        }
        token[tlen] = '\0';
        req.client_token = rnd_below(4) ? token : NULL;
        req.file_id = rnd_u32();
        req.block_size = OTA_CBOR_BLOCK_SIZE_MIN +
                         rnd_below(OTA_CBOR_BLOCK_SIZE_MAX - OTA_CBOR_BLOCK_SIZE_MIN + 1);
        req.block_offset = rnd_u32();
        req.num_blocks = rnd_u32() | 1u;
        req.has_stream_version = (uint8_t)rnd_below(2);
        req.stream_version = rnd_u32();
        req.bitmap_len =
            rnd_below(8) == 0 ? 1 + rnd_below(OTA_CBOR_BITMAP_MAX) : 1 + rnd_below(300);
        for (size_t i = 0; i < req.bitmap_len; i++) {
            bitmap[i] = (uint8_t)rnd();
        }
        req.bitmap = bitmap;
        if (ota_cbor_encode_get_stream(&req, buf, sizeof buf, &len) != OTA_OK ||
            len > OTA_CBOR_GET_STREAM_MAX_SIZE(req.bitmap_len, tlen)) {
            fail_msg("seed 0x%08x case %u: encode failed", seed, c);
        }

        /* libcbor reads it back: one definite map, keys in order, every field. */
        struct cbor_load_result res;
        cbor_item_t *item = cbor_load(buf, len, &res);
        if (item == NULL || res.error.code != CBOR_ERR_NONE || res.read != len ||
            !cbor_isa_map(item) || !cbor_map_is_definite(item)) {
            fail_msg("seed 0x%08x case %u: libcbor cannot read the request", seed, c);
        }
        const char *order = req.client_token != NULL
                                ? (req.has_stream_version ? "csflobn" : "cflobn")
                                : (req.has_stream_version ? "sflobn" : "flobn");
        if (cbor_map_size(item) != strlen(order)) {
            fail_msg("seed 0x%08x case %u: %zu pairs", seed, c, cbor_map_size(item));
        }
        struct cbor_pair *pairs = cbor_map_handle(item);
        for (size_t i = 0; i < strlen(order); i++) {
            cbor_item_t *k = pairs[i].key;
            cbor_item_t *v = pairs[i].value;
            if (!cbor_isa_string(k) || cbor_string_length(k) != 1 ||
                cbor_string_handle(k)[0] != (unsigned char)order[i]) {
                fail_msg("seed 0x%08x case %u: key %zu is not '%c'", seed, c, i, order[i]);
            }
            switch (order[i]) {
            case 'c':
                if (!cbor_isa_string(v) || cbor_string_length(v) != tlen ||
                    memcmp(cbor_string_handle(v), token, tlen) != 0) {
                    fail_msg("seed 0x%08x case %u: token differs", seed, c);
                }
                break;
            case 's':
                check_libcbor_uint(v, req.stream_version, seed, c);
                break;
            case 'f':
                check_libcbor_uint(v, req.file_id, seed, c);
                break;
            case 'l':
                check_libcbor_uint(v, req.block_size, seed, c);
                break;
            case 'o':
                check_libcbor_uint(v, req.block_offset, seed, c);
                break;
            case 'n':
                check_libcbor_uint(v, req.num_blocks, seed, c);
                break;
            default:
                if (!cbor_isa_bytestring(v) || cbor_bytestring_length(v) != req.bitmap_len ||
                    memcmp(cbor_bytestring_handle(v), bitmap, req.bitmap_len) != 0) {
                    fail_msg("seed 0x%08x case %u: bitmap differs", seed, c);
                }
                break;
            }
        }

        /* libcbor's own shortest encoding of the same map is byte for byte ours. */
        cbor_item_t *ref = cbor_new_definite_map(strlen(order));
        for (size_t i = 0; i < strlen(order); i++) {
            struct cbor_pair pr;
            char key[2] = {order[i], 0};
            pr.key = cbor_move(cbor_build_string(key));
            switch (order[i]) {
            case 'c':
                pr.value = cbor_move(cbor_build_stringn(token, tlen));
                break;
            case 'b':
                pr.value = cbor_move(cbor_build_bytestring(bitmap, req.bitmap_len));
                break;
            default: {
                uint32_t v = order[i] == 's'   ? req.stream_version
                             : order[i] == 'f' ? req.file_id
                             : order[i] == 'l' ? req.block_size
                             : order[i] == 'o' ? req.block_offset
                                               : req.num_blocks;
                pr.value = cbor_move(build_shortest_uint(v));
                break;
            }
            }
            assert_true(cbor_map_add(ref, pr));
        }
        uint8_t *refbuf = NULL;
        size_t refcap = 0;
        size_t reflen = cbor_serialize_alloc(ref, &refbuf, &refcap);
        if (reflen != len || memcmp(refbuf, buf, len) != 0) {
            fail_msg("seed 0x%08x case %u: bytes differ from libcbor's encoding", seed, c);
        }
        free(refbuf);
        cbor_decref(&ref);
        cbor_decref(&item);
    }
}

/* Ways to spoil a data block message built with libcbor. */
enum spoil {
    SPOIL_NONE,
    SPOIL_DROP,      /* leave out a required key */
    SPOIL_DUP,       /* repeat a known key */
    SPOIL_LEN,       /* l != payload length */
    SPOIL_NEGATIVE,  /* f, i or l negative */
    SPOIL_BIG,       /* f, i or l above UINT32_MAX */
    SPOIL_TYPE,      /* p as text, c as bytes */
    SPOIL_DEEP,      /* an unknown value nested one level too deep */
    SPOIL_TRAILING,  /* a byte after the map */
    SPOIL_TRUNCATE,  /* the message cut short */
    SPOIL_INDEFINITE /* the payload as an indefinite byte string */
};

static cbor_item_t *build_deep(unsigned depth)
{
    cbor_item_t *v = cbor_build_uint8(1);
    for (unsigned i = 0; i < depth; i++) {
        if (rnd_below(2)) {
            cbor_item_t *a = cbor_new_definite_array(1);
            assert_true(cbor_array_push(a, cbor_move(v)));
            v = a;
        } else {
            v = cbor_build_tag(rnd_below(100), cbor_move(v));
        }
    }
    return v;
}

static void test_libcbor_data_blocks(void **state)
{
    const uint32_t seed = seed_from_env() ^ 0x5a5a5a5au;
    (void)state;
    rng_state = seed;
    for (unsigned c = 0; c < 4000; c++) {
        static uint8_t payload[4200];
        char token[OTA_CBOR_TOKEN_MAX];
        struct cbor_pair pairs[8];
        size_t n = 0;
        uint32_t f = rnd_u32();
        uint32_t idx = rnd_u32();
        size_t plen = rnd_below(8) == 0 ? 4096 : rnd_below(300);
        size_t tlen = rnd_below(OTA_CBOR_TOKEN_MAX + 1);
        int with_token = rnd_below(2) != 0;
        enum spoil sp =
            rnd_below(3) == 0 ? (enum spoil)(1 + rnd_below(SPOIL_INDEFINITE)) : SPOIL_NONE;
        unsigned which = rnd_below(3); /* f, i or l for the integer spoils */
        for (size_t i = 0; i < plen; i++) {
            payload[i] = (uint8_t)rnd();
        }
        for (size_t i = 0; i < tlen; i++) {
            token[i] = (char)rnd();
        }
        const uint32_t ints[3] = {f, idx, (uint32_t)plen};
        static const char *const ikeys[3] = {"f", "i", "l"};
        for (unsigned k = 0; k < 3; k++) {
            if (sp == SPOIL_DROP && which == k) {
                continue;
            }
            pairs[n].key = cbor_move(cbor_build_string(ikeys[k]));
            if (sp == SPOIL_NEGATIVE && which == k) {
                pairs[n].value = cbor_move(cbor_build_negint32(ints[k]));
            } else if (sp == SPOIL_BIG && which == k) {
                pairs[n].value = cbor_move(
                    cbor_build_uint64(((uint64_t)1 + rnd_below(UINT32_MAX)) << 32 | ints[k]));
            } else if (sp == SPOIL_LEN && k == 2) {
                pairs[n].value =
                    cbor_move(build_uint(plen + (rnd_below(2) ? 1 : (plen ? (size_t)-1 : 1)), 0));
            } else {
                pairs[n].value = cbor_move(build_uint(ints[k], 0));
            }
            n++;
        }
        /* For SPOIL_DROP with "f" chosen, half the time drop "p" instead and keep "f". */
        if (!(sp == SPOIL_DROP && which == 0 && rnd_below(2))) {
            pairs[n].key = cbor_move(cbor_build_string("p"));
            if (sp == SPOIL_TYPE && !with_token) {
                pairs[n].value = cbor_move(cbor_build_stringn((const char *)payload, plen));
            } else if (sp == SPOIL_INDEFINITE) {
                cbor_item_t *ib = cbor_new_indefinite_bytestring();
                assert_true(
                    cbor_bytestring_add_chunk(ib, cbor_move(cbor_build_bytestring(payload, plen))));
                pairs[n].value = cbor_move(ib);
            } else {
                pairs[n].value = cbor_move(cbor_build_bytestring(payload, plen));
            }
            n++;
        } else {
            pairs[n].key = cbor_move(cbor_build_string("f"));
            pairs[n].value = cbor_move(build_uint(f, 0));
            n++;
        }
        if (with_token) {
            pairs[n].key = cbor_move(cbor_build_string("c"));
            pairs[n].value =
                cbor_move(sp == SPOIL_TYPE ? cbor_build_bytestring((uint8_t *)token, tlen)
                                           : cbor_build_stringn(token, tlen));
            n++;
        }
        if (sp == SPOIL_DUP) {
            static const char *const all[] = {"f", "i", "l", "p", "c"};
            unsigned k = rnd_below(with_token ? 5 : 4);
            pairs[n].key = cbor_move(cbor_build_string(all[k]));
            pairs[n].value = cbor_move(k == 3   ? cbor_build_bytestring(payload, plen)
                                       : k == 4 ? cbor_build_stringn(token, tlen)
                                                : build_uint(ints[k], 0));
            n++;
        }
        if (sp == SPOIL_DEEP) {
            pairs[n].key = cbor_move(build_unknown_key("filpc"));
            pairs[n].value = cbor_move(build_deep(OTA_CBOR_MAX_DEPTH + 1));
            n++;
        }
        size_t len = 0;
        uint8_t *enc = serialize_shuffled(pairs, n, "filpc", &len);
        if (sp == SPOIL_TRAILING) {
            uint8_t *grown = realloc(enc, len + 1);
            assert_non_null(grown);
            enc = grown;
            enc[len++] = (uint8_t)rnd();
        } else if (sp == SPOIL_TRUNCATE) {
            len = rnd_below((uint32_t)len);
        }
        ota_cbor_data_block_t d;
        ota_err_t err = decode_data_exact(enc, len, &d);
        if (sp != SPOIL_NONE) {
            if (err != OTA_ERR_BAD_MESSAGE) {
                fail_msg("seed 0x%08x case %u: spoiled (%d) message gave %d", seed, c, (int)sp,
                         (int)err);
            }
        } else if (err != OTA_OK || d.file_id != f || d.block_index != idx || d.block_len != plen ||
                   d.payload_len != plen || memcmp(d.payload, payload, plen) != 0 ||
                   (with_token
                        ? (d.client_token_len != tlen || memcmp(d.client_token, token, tlen) != 0)
                        : d.client_token != NULL)) {
            fail_msg("seed 0x%08x case %u: decode gave %d or wrong fields", seed, c, (int)err);
        }
        free(enc);
    }
}

static void test_libcbor_rejections(void **state)
{
    static const char *const codes[] = {"InvalidTopic",
                                        "InvalidJson",
                                        "InvalidCbor",
                                        "InvalidRequest",
                                        "Unauthorized",
                                        "BlockSizeOutOfBounds",
                                        "OffsetOutOfBounds",
                                        "BlockCountLimitExceeded",
                                        "BlockBitmapLimitExceeded",
                                        "ResourceNotFound",
                                        "VersionMismatch",
                                        "ETagMismatch",
                                        "InternalError"};
    const uint32_t seed = seed_from_env() ^ 0xc3c3c3c3u;
    (void)state;
    rng_state = seed;
    for (unsigned c = 0; c < 3000; c++) {
        struct cbor_pair pairs[4];
        size_t n = 0;
        const char *code = codes[rnd_below(sizeof codes / sizeof codes[0])];
        char message[300];
        size_t mlen = rnd_below(sizeof message);
        int with_m = rnd_below(2) != 0;
        int with_c = rnd_below(2) != 0;
        int drop_code = rnd_below(5) == 0;
        for (size_t i = 0; i < mlen; i++) {
            message[i] = (char)(0x20 + rnd_below(0x5f));
        }
        if (!drop_code) {
            pairs[n].key = cbor_move(cbor_build_string("o"));
            pairs[n++].value = cbor_move(cbor_build_string(code));
        }
        if (with_m) {
            pairs[n].key = cbor_move(cbor_build_string("m"));
            pairs[n++].value = cbor_move(cbor_build_stringn(message, mlen));
        }
        if (with_c) {
            pairs[n].key = cbor_move(cbor_build_string("c"));
            pairs[n++].value = cbor_move(cbor_build_string("rdy"));
        }
        size_t len = 0;
        uint8_t *enc = serialize_shuffled(pairs, n, "omc", &len);
        ota_cbor_rejected_t r;
        ota_err_t err = decode_rejected_exact(enc, len, &r);
        if (drop_code) {
            if (err != OTA_ERR_BAD_MESSAGE) {
                fail_msg("seed 0x%08x case %u: refusal without code gave %d", seed, c, (int)err);
            }
        } else if (err != OTA_OK || r.code_len != strlen(code) ||
                   memcmp(r.code, code, r.code_len) != 0 ||
                   (with_m ? r.message_len != mlen || memcmp(r.message, message, mlen) != 0
                           : r.message != NULL) ||
                   (with_c ? r.client_token_len != 3 || memcmp(r.client_token, "rdy", 3) != 0
                           : r.client_token != NULL)) {
            fail_msg("seed 0x%08x case %u: decode gave %d or wrong fields", seed, c, (int)err);
        }
        free(enc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_spec_example),
        cmocka_unit_test(test_encode_spec_bitmaps),
        cmocka_unit_test(test_encode_optional_keys),
        cmocka_unit_test(test_encode_invalid_args),
        cmocka_unit_test(test_encode_buffer_too_small),
        cmocka_unit_test(test_decode_data_valid),
        cmocka_unit_test(test_decode_data_int_widths),
        cmocka_unit_test(test_decode_data_wrong_types),
        cmocka_unit_test(test_decode_data_structure),
        cmocka_unit_test(test_decode_data_unknown_keys),
        cmocka_unit_test(test_decode_data_deep_nesting),
        cmocka_unit_test(test_decode_data_indefinite_and_reserved),
        cmocka_unit_test(test_decode_rejected),
        cmocka_unit_test(test_libcbor_requests),
        cmocka_unit_test(test_libcbor_data_blocks),
        cmocka_unit_test(test_libcbor_rejections),
    };
    printf("test_cbor: random seed 0x%08x (set OTA_TEST_SEED to change)\n", seed_from_env());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
