/*
 * Unit tests of verify/: sig-sha256-ecdsa and sig-sha256-rsa verification.
 *
 * openssl is the oracle: the committed signatures in test-keys/ were made by
 * `openssl dgst -sha256 -sign` (tools/gen-test-keys.sh), and signatures made
 * here at run time are checked with `openssl dgst -sha256 -verify`.
 * Random data comes from a fixed-seed generator, so every case replays; a
 * failing case names its size, chunk length or position.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mbedtls/base64.h"

#include "mbedtls/ecp.h"

#include "ota_p256_comb.h"
#include "ota_test_sign.h"
#include "otter/ota_verify.h"
#include "otter/ota_verify_close.h"

#define KEYS OTA_TEST_KEYS_DIR "/"
#define PEM_CAP 8192u
#define DATA_CAP 16384u
#define SIG_CAP 256u

/* ---- fixture: the committed test material ------------------------------ */

typedef struct blob {
    uint8_t bytes[PEM_CAP];
    size_t len;
} blob_t;

typedef struct fixture {
    blob_t cert, pub, untrusted_cert, rsa_cert, rsa_pub, p384_pub, private_key;
    uint8_t blocks[DATA_CAP];
    size_t blocks_len;
    uint8_t sig[SIG_CAP], bad_sig[SIG_CAP], untrusted_sig[SIG_CAP];
    size_t sig_len, bad_sig_len, untrusted_sig_len;
    char b64[SIG_CAP * 2u];
    size_t b64_len;
} fixture_t;

static fixture_t fx;

static void load(const char *name, uint8_t *buf, size_t cap, size_t *len)
{
    char path[1024];

    snprintf(path, sizeof(path), "%s%s", KEYS, name);
    if (ota_test_read_file(path, buf, cap, len) != 0) {
        fail_msg("cannot read %s (run tools/gen-test-keys.sh)", path);
    }
}

static int group_setup(void **state)
{
    (void)state;
    load("codesign-test.crt", fx.cert.bytes, PEM_CAP, &fx.cert.len);
    load("codesign-test.pub.pem", fx.pub.bytes, PEM_CAP, &fx.pub.len);
    load("untrusted-test.crt", fx.untrusted_cert.bytes, PEM_CAP, &fx.untrusted_cert.len);
    load("rsa-test.crt", fx.rsa_cert.bytes, PEM_CAP, &fx.rsa_cert.len);
    load("rsa-test.pub.pem", fx.rsa_pub.bytes, PEM_CAP, &fx.rsa_pub.len);
    load("p384-test.pub.pem", fx.p384_pub.bytes, PEM_CAP, &fx.p384_pub.len);
    load("codesign-test.key", fx.private_key.bytes, PEM_CAP, &fx.private_key.len);
    load("blocks.bin", fx.blocks, DATA_CAP, &fx.blocks_len);
    load("blocks.sig.der", fx.sig, SIG_CAP, &fx.sig_len);
    load("blocks.bad.sig.der", fx.bad_sig, SIG_CAP, &fx.bad_sig_len);
    load("blocks.untrusted.sig.der", fx.untrusted_sig, SIG_CAP, &fx.untrusted_sig_len);
    load("blocks.sig.b64", (uint8_t *)fx.b64, sizeof(fx.b64) - 1u, &fx.b64_len);
    fx.b64[fx.b64_len] = '\0';
    assert_int_equal(fx.blocks_len, 3u * 1024u + 100u);
    return 0;
}

/* ---- an in-memory file behind the reader callback ---------------------- */

typedef struct mem_file {
    const uint8_t *data;
    uint32_t size;
    uint32_t chunk_len;  /* the chunk buffer's size, to check requests */
    uint32_t next;       /* offset the next read must ask for */
    unsigned reads;      /* reads made */
    unsigned fail_read;  /* 1-based read that fails; 0 = none */
    int32_t fail_ret;    /* what that read returns */
    unsigned after_fail; /* reads made after the failing one */
} mem_file_t;

static int32_t mem_read(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len)
{
    mem_file_t *f = ctx;

    if (f->fail_read != 0u && f->reads >= f->fail_read) {
        f->after_fail++;
    }
    f->reads++;
    /* The reader contract: in order, non-empty, within the chunk and the file. */
    assert_int_equal(offset, f->next);
    assert_true(len >= 1u && len <= f->chunk_len);
    assert_true((uint64_t)offset + len <= f->size);
    if (f->reads == f->fail_read) {
        return f->fail_ret;
    }
    memcpy(buf, f->data + offset, len);
    f->next = offset + len;
    return (int32_t)len;
}

/* Verify data[0..size) with a chunk of chunk_len bytes on the heap (so that
 * ASan sees any write past it). */
static ota_err_t verify_ex(const uint8_t *pem, size_t pem_len, const uint8_t *sig, size_t sig_len,
                           const uint8_t *data, size_t size, uint32_t chunk_len, mem_file_t *f)
{
    uint8_t *chunk = malloc(chunk_len);
    ota_err_t err;

    assert_non_null(chunk);
    memset(f, 0, sizeof(*f));
    f->data = data;
    f->size = (uint32_t)size;
    f->chunk_len = chunk_len;
    err = ota_verify_sha256_ecdsa(pem, pem_len, sig, sig_len, mem_read, f, (uint32_t)size, chunk,
                                  chunk_len);
    free(chunk);
    return err;
}

/* The same check hashed piece by piece (pieces of chunk_len bytes), as a port
 * that hashes blocks while they are written. */
static ota_err_t verify_hashed(const blob_t *signer, const uint8_t *sig, size_t sig_len,
                               const uint8_t *data, size_t size, uint32_t chunk_len)
{
    ota_verify_hash_t hash;
    size_t done = 0;

    ota_verify_hash_start(&hash);
    while (done < size) {
        uint32_t n = size - done < chunk_len ? (uint32_t)(size - done) : chunk_len;
        ota_verify_hash_update(&hash, data + done, n);
        done += n;
    }
    assert_int_equal(hash.length, size);
    return ota_verify_hash_ecdsa(signer->bytes, signer->len, sig, sig_len, &hash);
}

/* Verifies both ways, reading the file back and hashing it piece by piece,
 * and fails the test unless both give the same result. */
static ota_err_t verify(const blob_t *signer, const uint8_t *sig, size_t sig_len,
                        const uint8_t *data, size_t size, uint32_t chunk_len)
{
    mem_file_t f;
    ota_err_t read_back =
        verify_ex(signer->bytes, signer->len, sig, sig_len, data, size, chunk_len, &f);
    ota_err_t hashed = verify_hashed(signer, sig, sig_len, data, size, chunk_len);

    if (read_back != hashed) {
        fail_msg("reading back gives %s, hashing piece by piece %s", ota_err_str(read_back),
                 ota_err_str(hashed));
    }
    return read_back;
}

static void expect(ota_err_t want, ota_err_t got, const char *what)
{
    if (want != got) {
        fail_msg("%s: expected %s, got %s (%d)", what, ota_err_str(want), ota_err_str(got),
                 (int)got);
    }
}

/* Fixed-seed xorshift32, so random cases replay. */
static uint32_t rng_state;

static void fill_random(uint8_t *buf, size_t len, uint32_t seed)
{
    size_t i;

    rng_state = seed != 0u ? seed : 1u;
    for (i = 0; i < len; i++) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 17;
        rng_state ^= rng_state << 5;
        buf[i] = (uint8_t)(rng_state >> 24);
    }
}

/* ---- the committed openssl signature ----------------------------------- */

static void test_committed_sig_with_cert(void **state)
{
    (void)state;
    expect(OTA_OK, verify(&fx.cert, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len, 256u), "cert");
}

static void test_committed_sig_with_public_key(void **state)
{
    (void)state;
    expect(OTA_OK, verify(&fx.pub, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len, 256u),
           "public key");
}

static void test_committed_b64_is_the_der_signature(void **state)
{
    uint8_t der[SIG_CAP];
    size_t der_len = 0;

    (void)state;
    assert_int_equal(mbedtls_base64_decode(der, sizeof(der), &der_len,
                                           (const unsigned char *)fx.b64, fx.b64_len),
                     0);
    assert_int_equal(der_len, fx.sig_len);
    assert_memory_equal(der, fx.sig, der_len);
    /* sig-sha256-ecdsa: DER SEQUENCE{r,s}, 70 to 72 bytes. */
    assert_true(fx.sig_len >= 70u && fx.sig_len <= 72u);
    assert_int_equal(fx.sig[0], 0x30);
}

static void test_pem_need_not_be_nul_terminated(void **state)
{
    static uint8_t buf[PEM_CAP + 64u];
    const blob_t *signers[] = {&fx.cert, &fx.pub};
    size_t i;

    (void)state;
    for (i = 0; i < 2u; i++) {
        const blob_t *s = signers[i];
        mem_file_t f;

        /* Bytes after the PEM are not NUL: the verifier must not read them. */
        memset(buf, 'A', sizeof(buf));
        memcpy(buf, s->bytes, s->len);
        expect(OTA_OK,
               verify_ex(buf, s->len, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len, 100u, &f),
               "PEM followed by non-NUL bytes");
        /* A length that counts a terminating NUL is fine too. */
        buf[s->len] = '\0';
        expect(OTA_OK,
               verify_ex(buf, s->len + 1u, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len, 100u, &f),
               "PEM length counting its NUL");
        /* An exact-size heap copy: ASan catches any read past signer_len. */
        {
            uint8_t *exact = malloc(s->len);

            assert_non_null(exact);
            memcpy(exact, s->bytes, s->len);
            expect(OTA_OK,
                   verify_ex(exact, s->len, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len, 100u, &f),
                   "exact-size PEM");
            free(exact);
        }
    }
}

static void test_pem_with_crlf_line_ends(void **state)
{
    static blob_t crlf;
    size_t i;

    (void)state;
    crlf.len = 0;
    for (i = 0; i < fx.cert.len; i++) {
        if (fx.cert.bytes[i] == '\n') {
            crlf.bytes[crlf.len++] = '\r';
        }
        crlf.bytes[crlf.len++] = fx.cert.bytes[i];
    }
    expect(OTA_OK, verify(&crlf, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len, 512u), "CRLF PEM");
}

static void test_pem_size_limit(void **state)
{
    static blob_t big;

    (void)state;
    /* The certificate padded with blank lines to the largest accepted text. */
    memset(big.bytes, '\n', sizeof(big.bytes));
    memcpy(big.bytes, fx.cert.bytes, fx.cert.len);
    big.len = OTA_VERIFY_MAX_PEM_LEN - 1u;
    expect(OTA_OK, verify(&big, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len, 512u),
           "PEM of OTA_VERIFY_MAX_PEM_LEN - 1 bytes");
    /* Counting a terminating NUL, one more byte is fine. */
    big.bytes[OTA_VERIFY_MAX_PEM_LEN - 1u] = '\0';
    big.len = OTA_VERIFY_MAX_PEM_LEN;
    expect(OTA_OK, verify(&big, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len, 512u),
           "PEM of OTA_VERIFY_MAX_PEM_LEN bytes with its NUL");
    /* One byte of text more is refused. */
    big.bytes[OTA_VERIFY_MAX_PEM_LEN - 1u] = '\n';
    expect(OTA_ERR_BAD_SIGNER_CERT,
           verify(&big, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len, 512u),
           "PEM of OTA_VERIFY_MAX_PEM_LEN bytes of text");
    big.len = sizeof(big.bytes);
    expect(OTA_ERR_BAD_SIGNER_CERT,
           verify(&big, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len, 512u), "8 KiB PEM");
}

/* ---- wrong signatures ---------------------------------------------------- */

static void test_bad_signature(void **state)
{
    (void)state;
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify(&fx.cert, fx.bad_sig, fx.bad_sig_len, fx.blocks, fx.blocks_len, 256u),
           "signature over other bytes, cert");
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify(&fx.pub, fx.bad_sig, fx.bad_sig_len, fx.blocks, fx.blocks_len, 256u),
           "signature over other bytes, public key");
}

static void test_untrusted_signer(void **state)
{
    (void)state;
    /* Signed by the untrusted key, checked against the trusted signer. */
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify(&fx.cert, fx.untrusted_sig, fx.untrusted_sig_len, fx.blocks, fx.blocks_len, 256u),
           "untrusted signature, trusted cert");
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify(&fx.pub, fx.untrusted_sig, fx.untrusted_sig_len, fx.blocks, fx.blocks_len, 256u),
           "untrusted signature, trusted public key");
    /* The trusted signature checked against the untrusted certificate. */
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify(&fx.untrusted_cert, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len, 256u),
           "trusted signature, untrusted cert");
    /* Sanity: the untrusted signature is itself good, for its own key. */
    expect(OTA_OK,
           verify(&fx.untrusted_cert, fx.untrusted_sig, fx.untrusted_sig_len, fx.blocks,
                  fx.blocks_len, 256u),
           "untrusted signature, untrusted cert");
}

static void test_flipped_data_byte(void **state)
{
    static uint8_t data[DATA_CAP];
    const size_t n = fx.blocks_len;
    const size_t pos[] = {0, 1, 1023, 1024, n / 2u, 2047, 2048, 3071, 3072, n - 2u, n - 1u};
    const uint8_t masks[] = {0x01, 0x80, 0xff};
    size_t i, m;

    (void)state;
    for (i = 0; i < sizeof(pos) / sizeof(pos[0]); i++) {
        for (m = 0; m < sizeof(masks); m++) {
            char what[96];

            memcpy(data, fx.blocks, n);
            data[pos[i]] ^= masks[m];
            snprintf(what, sizeof(what), "byte %zu xor 0x%02x", pos[i], masks[m]);
            expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
                   verify(&fx.cert, fx.sig, fx.sig_len, data, n, 1024u), what);
        }
    }
}

static void test_wrong_file_size(void **state)
{
    static uint8_t data[DATA_CAP];

    (void)state;
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify(&fx.cert, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len - 1u, 256u),
           "one byte short");
    memcpy(data, fx.blocks, fx.blocks_len);
    data[fx.blocks_len] = 0;
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify(&fx.cert, fx.sig, fx.sig_len, data, fx.blocks_len + 1u, 256u), "one byte more");
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED, verify(&fx.cert, fx.sig, fx.sig_len, data, 0u, 256u),
           "empty file");
}

static void test_malformed_signature(void **state)
{
    uint8_t der[SIG_CAP];
    const size_t n = fx.sig_len;
    const size_t r_len = fx.sig[3];
    size_t i;
    mem_file_t f;

    (void)state;
    /* Empty: refused before any read. */
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify_ex(fx.cert.bytes, fx.cert.len, NULL, 0u, fx.blocks, fx.blocks_len, 256u, &f),
           "NULL, 0 signature");
    assert_int_equal(f.reads, 0);
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify_ex(fx.cert.bytes, fx.cert.len, fx.sig, 0u, fx.blocks, fx.blocks_len, 256u, &f),
           "zero-length signature");
    assert_int_equal(f.reads, 0);

    /* Every truncation of the good signature. */
    for (i = 1; i < n; i++) {
        char what[64];

        snprintf(what, sizeof(what), "signature truncated to %zu bytes", i);
        expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
               verify(&fx.cert, fx.sig, i, fx.blocks, fx.blocks_len, 4096u), what);
    }
    /* A trailing byte after the DER SEQUENCE. */
    memcpy(der, fx.sig, n);
    der[n] = 0x00;
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify(&fx.cert, der, n + 1u, fx.blocks, fx.blocks_len, 4096u), "trailing byte");
    /* A flipped bit in every byte of the signature (tag, lengths, r, s). */
    for (i = 0; i < n; i++) {
        char what[64];

        memcpy(der, fx.sig, n);
        der[i] ^= 0x01;
        snprintf(what, sizeof(what), "signature byte %zu flipped", i);
        expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
               verify(&fx.cert, der, n, fx.blocks, fx.blocks_len, 4096u), what);
    }
    /* r and s swapped: still well-formed DER. */
    assert_int_equal(fx.sig[2], 0x02);
    {
        const uint8_t *r = &fx.sig[2];
        const uint8_t *s = &fx.sig[4u + r_len];
        const size_t s_len = s[1];

        assert_int_equal(s[0], 0x02);
        memcpy(der, fx.sig, 2);
        memcpy(der + 2, s, 2u + s_len);
        memcpy(der + 4 + s_len, r, 2u + r_len);
        expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
               verify(&fx.cert, der, n, fx.blocks, fx.blocks_len, 4096u), "r and s swapped");
    }
    /* Garbage of signature size, an empty SEQUENCE, a lone INTEGER. */
    {
        static const uint8_t empty_seq[] = {0x30, 0x00};
        static const uint8_t lone_int[] = {0x02, 0x01, 0x01};
        static const uint8_t zero_rs[] = {0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00};
        static const uint8_t one_rs[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};

        memset(der, 0xff, sizeof(der));
        expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
               verify(&fx.cert, der, 72u, fx.blocks, fx.blocks_len, 4096u), "0xff garbage");
        fill_random(der, 72u, 0x5eed0001u);
        der[0] = 0x30;
        der[1] = 70;
        expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
               verify(&fx.cert, der, 72u, fx.blocks, fx.blocks_len, 4096u), "random garbage");
        expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
               verify(&fx.cert, empty_seq, sizeof(empty_seq), fx.blocks, fx.blocks_len, 4096u),
               "empty SEQUENCE");
        expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
               verify(&fx.cert, lone_int, sizeof(lone_int), fx.blocks, fx.blocks_len, 4096u),
               "lone INTEGER");
        expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
               verify(&fx.cert, zero_rs, sizeof(zero_rs), fx.blocks, fx.blocks_len, 4096u),
               "r = s = 0");
        expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
               verify(&fx.cert, one_rs, sizeof(one_rs), fx.blocks, fx.blocks_len, 4096u),
               "r = s = 1");
    }
    /* The base64 text instead of the DER bytes (a decoding step forgotten). */
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify(&fx.cert, (const uint8_t *)fx.b64, fx.b64_len, fx.blocks, fx.blocks_len, 4096u),
           "base64 text as signature");
}

/* ---- unusable signers ---------------------------------------------------- */

static void expect_bad_signer(const uint8_t *pem, size_t len, const char *what)
{
    mem_file_t f;

    expect(OTA_ERR_BAD_SIGNER_CERT,
           verify_ex(pem, len, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len, 256u, &f), what);
    /* The signer is checked before the file is read. */
    assert_int_equal(f.reads, 0);
}

static void test_bad_signer(void **state)
{
    static const char garbage[] = "this is not a certificate\n";
    static const char no_body[] = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
    static const char no_end[] =
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n";
    static uint8_t buf[PEM_CAP];
    static const uint8_t nul = 0;
    size_t i;

    (void)state;
    expect_bad_signer((const uint8_t *)garbage, strlen(garbage), "garbage PEM");
    expect_bad_signer((const uint8_t *)"", 0u, "empty PEM");
    expect_bad_signer(&nul, 1u, "a lone NUL");
    expect_bad_signer((const uint8_t *)no_body, strlen(no_body), "certificate without body");
    expect_bad_signer((const uint8_t *)no_end, strlen(no_end), "public key without end line");
    expect_bad_signer(fx.rsa_cert.bytes, fx.rsa_cert.len, "RSA 2048 certificate");
    expect_bad_signer(fx.rsa_pub.bytes, fx.rsa_pub.len, "RSA 2048 public key");
    expect_bad_signer(fx.p384_pub.bytes, fx.p384_pub.len, "P-384 public key");
    expect_bad_signer(fx.private_key.bytes, fx.private_key.len, "a private key");
    /* The certificate cut short, and with its base64 body damaged. */
    expect_bad_signer(fx.cert.bytes, fx.cert.len / 2u, "half a certificate");
    memcpy(buf, fx.cert.bytes, fx.cert.len);
    for (i = 40; i < fx.cert.len - 40u; i++) {
        if (buf[i] != '\n') {
            buf[i] = '*';
            break;
        }
    }
    expect_bad_signer(buf, fx.cert.len, "certificate with a non-base64 character");
    /* Bad signer wins over a bad signature and over a failing reader. */
    {
        mem_file_t f;
        uint8_t chunk[16];

        memset(&f, 0, sizeof(f));
        f.data = fx.blocks;
        f.size = (uint32_t)fx.blocks_len;
        f.chunk_len = sizeof(chunk);
        f.fail_read = 1;
        f.fail_ret = OTA_ERR_IO;
        expect(OTA_ERR_BAD_SIGNER_CERT,
               ota_verify_sha256_ecdsa(fx.rsa_cert.bytes, fx.rsa_cert.len, NULL, 0u, mem_read, &f,
                                       (uint32_t)fx.blocks_len, chunk, sizeof(chunk)),
               "RSA cert, empty signature, failing reader");
        assert_int_equal(f.reads, 0);
    }
}

/* ---- chunking and the reader ---------------------------------------------- */

static void test_chunk_sizes_agree(void **state)
{
    static uint8_t flipped[DATA_CAP];
    const uint32_t n = (uint32_t)fx.blocks_len;
    const uint32_t chunks[] = {1u, 7u, 64u, 1000u, 1024u, 4096u, n - 1u, n, n + 1u, 2u * n + 5u};
    size_t i;

    (void)state;
    memcpy(flipped, fx.blocks, n);
    flipped[n / 3u] ^= 0x10;
    for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        mem_file_t f;
        char what[96];
        const uint32_t c = chunks[i];

        snprintf(what, sizeof(what), "chunk %u, good signature", (unsigned)c);
        expect(OTA_OK,
               verify_ex(fx.cert.bytes, fx.cert.len, fx.sig, fx.sig_len, fx.blocks, n, c, &f),
               what);
        assert_int_equal(f.reads, (n + c - 1u) / c);
        assert_int_equal(f.next, n);

        snprintf(what, sizeof(what), "chunk %u, public key", (unsigned)c);
        expect(OTA_OK, verify_ex(fx.pub.bytes, fx.pub.len, fx.sig, fx.sig_len, fx.blocks, n, c, &f),
               what);

        snprintf(what, sizeof(what), "chunk %u, bad signature", (unsigned)c);
        expect(
            OTA_ERR_SIGNATURE_CHECK_FAILED,
            verify_ex(fx.cert.bytes, fx.cert.len, fx.bad_sig, fx.bad_sig_len, fx.blocks, n, c, &f),
            what);
        assert_int_equal(f.next, n);

        snprintf(what, sizeof(what), "chunk %u, flipped data", (unsigned)c);
        expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
               verify_ex(fx.cert.bytes, fx.cert.len, fx.sig, fx.sig_len, flipped, n, c, &f), what);
    }
}

/* Run verification of blocks.bin with chunk_len whose read number fail_read
 * returns ret; returns the verdict and fills *f. */
static ota_err_t verify_failing(const uint8_t *sig, size_t sig_len, uint32_t chunk_len,
                                unsigned fail_read, int32_t ret, mem_file_t *f)
{
    uint8_t *chunk = malloc(chunk_len);
    ota_err_t err;

    assert_non_null(chunk);
    memset(f, 0, sizeof(*f));
    f->data = fx.blocks;
    f->size = (uint32_t)fx.blocks_len;
    f->chunk_len = chunk_len;
    f->fail_read = fail_read;
    f->fail_ret = ret;
    err = ota_verify_sha256_ecdsa(fx.cert.bytes, fx.cert.len, sig, sig_len, mem_read, f,
                                  (uint32_t)fx.blocks_len, chunk, chunk_len);
    free(chunk);
    return err;
}

static void test_reader_failure(void **state)
{
    mem_file_t f;
    const uint32_t c = 512u; /* 3172 bytes: 7 reads */

    (void)state;
    /* A negative return is passed through as is, and reading stops. */
    expect(OTA_ERR_IO, verify_failing(fx.sig, fx.sig_len, c, 1u, OTA_ERR_IO, &f), "first read");
    assert_int_equal(f.reads, 1);
    expect(OTA_ERR_FLASH_RULE, verify_failing(fx.sig, fx.sig_len, c, 4u, OTA_ERR_FLASH_RULE, &f),
           "mid-way read");
    assert_int_equal(f.reads, 4);
    assert_int_equal(f.after_fail, 0);
    expect(OTA_ERR_NOT_FOUND, verify_failing(fx.sig, fx.sig_len, c, 7u, OTA_ERR_NOT_FOUND, &f),
           "last read");
    assert_int_equal(f.reads, 7);
    /* The reader's error wins over a bad signature: the file is read first. */
    expect(OTA_ERR_CORRUPT, verify_failing(fx.bad_sig, fx.bad_sig_len, c, 2u, OTA_ERR_CORRUPT, &f),
           "bad signature, failing read");
    /* A count other than the one requested is an I/O error. */
    expect(OTA_ERR_IO, verify_failing(fx.sig, fx.sig_len, c, 3u, (int32_t)c - 1, &f), "short read");
    assert_int_equal(f.reads, 3);
    expect(OTA_ERR_IO, verify_failing(fx.sig, fx.sig_len, c, 3u, 0, &f), "read of 0 bytes");
    expect(OTA_ERR_IO, verify_failing(fx.sig, fx.sig_len, c, 3u, (int32_t)c + 1, &f),
           "over-long read");
    expect(OTA_ERR_IO, verify_failing(fx.sig, fx.sig_len, 1u, 3172u, 2, &f),
           "last 1-byte read returns 2");
    /* Sanity: the same reader without a failure verifies. */
    expect(OTA_OK, verify_failing(fx.sig, fx.sig_len, c, 0u, 0, &f), "no failure");
}

/* ---- signatures made at run time ------------------------------------------ */

static void test_runtime_signed_data(void **state)
{
    static uint8_t data[DATA_CAP];
    const size_t sizes[] = {0u, 1u, 31u, 32u, 33u, 1000u, 4096u, 4097u, 10000u};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        const size_t n = sizes[i];
        const uint32_t seed = 0x07e40000u + (uint32_t)n;
        uint8_t sig[OTA_TEST_SIG_MAX];
        size_t sig_len = 0;
        char what[96];

        fill_random(data, n, seed);
        assert_int_equal(ota_test_sign_sha256_ecdsa(KEYS "codesign-test.key", data, n, sig,
                                                    sizeof(sig), &sig_len),
                         0);
        assert_true(sig_len >= 8u && sig_len <= OTA_TEST_SIG_MAX);

        snprintf(what, sizeof(what), "size %zu seed 0x%08x, cert", n, (unsigned)seed);
        expect(OTA_OK, verify(&fx.cert, sig, sig_len, data, n, 64u), what);
        snprintf(what, sizeof(what), "size %zu seed 0x%08x, public key, chunk 13", n,
                 (unsigned)seed);
        expect(OTA_OK, verify(&fx.pub, sig, sig_len, data, n, 13u), what);
        snprintf(what, sizeof(what), "size %zu seed 0x%08x, untrusted cert", n, (unsigned)seed);
        expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
               verify(&fx.untrusted_cert, sig, sig_len, data, n, 64u), what);
        if (n > 0u) {
            data[n - 1u] ^= 0x01;
            snprintf(what, sizeof(what), "size %zu seed 0x%08x, last byte flipped", n,
                     (unsigned)seed);
            expect(OTA_ERR_SIGNATURE_CHECK_FAILED, verify(&fx.cert, sig, sig_len, data, n, 64u),
                   what);
        }
    }
}

static void test_sign_helper_errors(void **state)
{
    uint8_t sig[OTA_TEST_SIG_MAX];
    uint8_t buf[16];
    size_t len = 0;

    (void)state;
    assert_int_equal(
        ota_test_sign_sha256_ecdsa(KEYS "no-such.key", fx.blocks, 10u, sig, sizeof(sig), &len), -1);
    assert_int_equal(
        ota_test_sign_sha256_ecdsa(KEYS "codesign-test.key", fx.blocks, 10u, sig, 8u, &len), -1);
    assert_int_equal(ota_test_sign_sha256_ecdsa(NULL, fx.blocks, 10u, sig, sizeof(sig), &len), -1);
    assert_int_equal(ota_test_read_file(KEYS "no-such-file", buf, sizeof(buf), &len), -1);
    assert_int_equal(ota_test_read_file(KEYS "blocks.bin", buf, sizeof(buf), &len), -1);
    assert_int_equal(ota_test_read_file(KEYS "blocks.sig.der", buf, sizeof(buf), &len), -1);
    {
        static uint8_t exact[3172];

        assert_int_equal(ota_test_read_file(KEYS "blocks.bin", exact, sizeof(exact), &len), 0);
        assert_int_equal(len, sizeof(exact));
        assert_memory_equal(exact, fx.blocks, sizeof(exact));
    }
}

static int write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (f == NULL) {
        return -1;
    }
    ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Run a shell command, its output discarded; returns its exit status. */
static int run(const char *cmd)
{
    char line[4096];
    int rc;

    snprintf(line, sizeof(line), "%s >/dev/null 2>&1", cmd);
    rc = system(line);
    if (rc == -1 || !WIFEXITED(rc)) {
        fail_msg("cannot run: %s", cmd);
    }
    return WEXITSTATUS(rc);
}

/* openssl as the oracle for signatures made here, and we for openssl's. */
static void test_runtime_signature_cross_checked_with_openssl(void **state)
{
    static uint8_t data[DATA_CAP];
    char dir[] = "/tmp/otter-test-verify-XXXXXX";
    char data_path[256], sig_path[256], osig_path[256], cmd[2048];
    uint8_t sig[OTA_TEST_SIG_MAX], osig[SIG_CAP];
    size_t sig_len = 0, osig_len = 0;
    const size_t n = 5000u;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(data_path, sizeof(data_path), "%s/data.bin", dir);
    snprintf(sig_path, sizeof(sig_path), "%s/data.sig.der", dir);
    snprintf(osig_path, sizeof(osig_path), "%s/data.openssl.sig.der", dir);

    fill_random(data, n, 0xc0ffee01u);
    assert_int_equal(
        ota_test_sign_sha256_ecdsa(KEYS "codesign-test.key", data, n, sig, sizeof(sig), &sig_len),
        0);
    assert_int_equal(write_file(data_path, data, n), 0);
    assert_int_equal(write_file(sig_path, sig, sig_len), 0);

    /* openssl accepts our signature with the public key and the certificate's key. */
    snprintf(cmd, sizeof(cmd), "'%s' dgst -sha256 -verify '%s' -signature '%s' '%s'", OTA_OPENSSL,
             KEYS "codesign-test.pub.pem", sig_path, data_path);
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof(cmd),
             "'%s' x509 -in '%s' -noout -pubkey | '%s' dgst -sha256 -verify /dev/stdin "
             "-signature '%s' '%s'",
             OTA_OPENSSL, KEYS "codesign-test.crt", OTA_OPENSSL, sig_path, data_path);
    assert_int_equal(run(cmd), 0);

    /* openssl signs the same file; we accept its signature. */
    snprintf(cmd, sizeof(cmd), "'%s' dgst -sha256 -sign '%s' -out '%s' '%s'", OTA_OPENSSL,
             KEYS "codesign-test.key", osig_path, data_path);
    assert_int_equal(run(cmd), 0);
    assert_int_equal(ota_test_read_file(osig_path, osig, sizeof(osig), &osig_len), 0);
    expect(OTA_OK, verify(&fx.cert, osig, osig_len, data, n, 777u), "openssl's signature");

    /* Both refuse the signature once one byte of the file changed. */
    data[n / 2u] ^= 0x40;
    assert_int_equal(write_file(data_path, data, n), 0);
    snprintf(cmd, sizeof(cmd), "'%s' dgst -sha256 -verify '%s' -signature '%s' '%s'", OTA_OPENSSL,
             KEYS "codesign-test.pub.pem", sig_path, data_path);
    assert_int_not_equal(run(cmd), 0);
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED, verify(&fx.cert, sig, sig_len, data, n, 777u),
           "our signature, changed file");
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED, verify(&fx.cert, osig, osig_len, data, n, 777u),
           "openssl's signature, changed file");

    unlink(data_path);
    unlink(sig_path);
    unlink(osig_path);
    rmdir(dir);
}

/* ---- arguments ------------------------------------------------------------- */

static void test_null_and_zero_args(void **state)
{
    uint8_t chunk[64];
    mem_file_t f;

    (void)state;
    memset(&f, 0, sizeof(f));
    f.data = fx.blocks;
    f.size = (uint32_t)fx.blocks_len;
    f.chunk_len = sizeof(chunk);
    expect(OTA_ERR_INVALID_ARG,
           ota_verify_sha256_ecdsa(NULL, fx.cert.len, fx.sig, fx.sig_len, mem_read, &f, f.size,
                                   chunk, sizeof(chunk)),
           "NULL signer");
    expect(OTA_ERR_INVALID_ARG,
           ota_verify_sha256_ecdsa(NULL, 0u, fx.sig, fx.sig_len, mem_read, &f, f.size, chunk,
                                   sizeof(chunk)),
           "NULL signer, length 0");
    expect(OTA_ERR_INVALID_ARG,
           ota_verify_sha256_ecdsa(fx.cert.bytes, fx.cert.len, NULL, fx.sig_len, mem_read, &f,
                                   f.size, chunk, sizeof(chunk)),
           "NULL signature with a length");
    expect(OTA_ERR_INVALID_ARG,
           ota_verify_sha256_ecdsa(fx.cert.bytes, fx.cert.len, fx.sig, fx.sig_len, NULL, &f, f.size,
                                   chunk, sizeof(chunk)),
           "NULL reader");
    expect(OTA_ERR_INVALID_ARG,
           ota_verify_sha256_ecdsa(fx.cert.bytes, fx.cert.len, fx.sig, fx.sig_len, mem_read, &f,
                                   f.size, NULL, sizeof(chunk)),
           "NULL chunk");
    expect(OTA_ERR_INVALID_ARG,
           ota_verify_sha256_ecdsa(fx.cert.bytes, fx.cert.len, fx.sig, fx.sig_len, mem_read, &f,
                                   f.size, chunk, 0u),
           "chunk_len 0");
    assert_int_equal(f.reads, 0);
    /* read_ctx is the caller's business: NULL is passed through. */
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           ota_verify_sha256_ecdsa(fx.cert.bytes, fx.cert.len, fx.sig, 0u, mem_read, NULL, f.size,
                                   chunk, sizeof(chunk)),
           "NULL read_ctx, empty signature");
}

/* ---- ota_verify_find_signer --------------------------------------------- */

static void test_hash_null_args(void **state)
{
    ota_verify_hash_t hash;

    (void)state;
    ota_verify_hash_start(NULL);
    ota_verify_hash_update(NULL, fx.blocks, 1);
    assert_int_equal(ota_verify_hash_ecdsa(fx.cert.bytes, fx.cert.len, fx.sig, fx.sig_len, NULL),
                     OTA_ERR_INVALID_ARG);
    ota_verify_hash_start(&hash);
    assert_int_equal(ota_verify_hash_ecdsa(NULL, 0, fx.sig, fx.sig_len, &hash),
                     OTA_ERR_INVALID_ARG);
    /* Data missing from an update fails the check rather than being skipped. */
    ota_verify_hash_start(&hash);
    ota_verify_hash_update(&hash, NULL, 4);
    ota_verify_hash_update(&hash, fx.blocks, (uint32_t)fx.blocks_len);
    assert_int_equal(ota_verify_hash_ecdsa(fx.cert.bytes, fx.cert.len, fx.sig, fx.sig_len, &hash),
                     OTA_ERR_SIGNATURE_CHECK_FAILED);
}

static void test_find_signer(void **state)
{
    const ota_verify_signer_t table[] = {
        {"codesign.crt", fx.cert.bytes, fx.cert.len},
        {NULL, fx.rsa_cert.bytes, fx.rsa_cert.len},
        {"other.crt", fx.untrusted_cert.bytes, fx.untrusted_cert.len},
        {"codesign.pub", fx.pub.bytes, fx.pub.len},
        {"other.crt", fx.rsa_cert.bytes, fx.rsa_cert.len},
    };
    const size_t n = sizeof(table) / sizeof(table[0]);

    (void)state;
    assert_ptr_equal(ota_verify_find_signer(table, n, NULL), &table[0]);
    assert_ptr_equal(ota_verify_find_signer(table, 1u, NULL), &table[0]);
    assert_ptr_equal(ota_verify_find_signer(table, n, "codesign.crt"), &table[0]);
    assert_ptr_equal(ota_verify_find_signer(table, n, "codesign.pub"), &table[3]);
    /* The first of two entries with one name. */
    assert_ptr_equal(ota_verify_find_signer(table, n, "other.crt"), &table[2]);
    /* Exact match only. */
    assert_null(ota_verify_find_signer(table, n, "CODESIGN.CRT"));
    assert_null(ota_verify_find_signer(table, n, "codesign"));
    assert_null(ota_verify_find_signer(table, n, "codesign.crt "));
    assert_null(ota_verify_find_signer(table, n, "codesign.crtx"));
    assert_null(ota_verify_find_signer(table, n, ""));
    assert_null(ota_verify_find_signer(table, n, "missing.crt"));
    /* Only count entries are searched. */
    assert_null(ota_verify_find_signer(table, 3u, "codesign.pub"));
    assert_null(ota_verify_find_signer(table, 0u, NULL));
    assert_null(ota_verify_find_signer(table, 0u, "codesign.crt"));
    assert_null(ota_verify_find_signer(NULL, 0u, NULL));
    assert_null(ota_verify_find_signer(NULL, 3u, "codesign.crt"));
}

static void test_find_signer_then_verify(void **state)
{
    const ota_verify_signer_t table[] = {
        {"codesign.crt", fx.cert.bytes, fx.cert.len},
        {"untrusted.crt", fx.untrusted_cert.bytes, fx.untrusted_cert.len},
        {"rsa.crt", fx.rsa_cert.bytes, fx.rsa_cert.len},
    };
    const ota_verify_signer_t *s;
    mem_file_t f;

    (void)state;
    s = ota_verify_find_signer(table, 3u, "codesign.crt");
    assert_non_null(s);
    expect(OTA_OK,
           verify_ex(s->pem, s->pem_len, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len, 128u, &f),
           "found codesign.crt");
    s = ota_verify_find_signer(table, 3u, "untrusted.crt");
    assert_non_null(s);
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify_ex(s->pem, s->pem_len, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len, 128u, &f),
           "found untrusted.crt");
    s = ota_verify_find_signer(table, 3u, "rsa.crt");
    assert_non_null(s);
    expect(OTA_ERR_BAD_SIGNER_CERT,
           verify_ex(s->pem, s->pem_len, fx.sig, fx.sig_len, fx.blocks, fx.blocks_len, 128u, &f),
           "found rsa.crt");
}

/* Key ids: one per key, whatever wraps it; distinct keys differ; non-P-256 refused. */
static void test_key_id(void **state)
{
    (void)state;
    static uint8_t crt[4096];
    static uint8_t pub[4096];
    static uint8_t other[4096];
    static uint8_t rsa[4096];
    size_t crt_len = 0;
    size_t pub_len = 0;
    size_t other_len = 0;
    size_t rsa_len = 0;
    uint32_t a = 0;
    uint32_t b = 1;
    uint32_t c = 0;
    uint32_t d = 0;
    assert_int_equal(
        ota_test_read_file(OTA_TEST_KEYS_DIR "/codesign-test.crt", crt, sizeof crt, &crt_len), 0);
    assert_int_equal(
        ota_test_read_file(OTA_TEST_KEYS_DIR "/codesign-test.pub.pem", pub, sizeof pub, &pub_len),
        0);
    assert_int_equal(ota_test_read_file(OTA_TEST_KEYS_DIR "/untrusted-test.crt", other,
                                        sizeof other, &other_len),
                     0);
    assert_int_equal(
        ota_test_read_file(OTA_TEST_KEYS_DIR "/rsa-test.crt", rsa, sizeof rsa, &rsa_len), 0);
    assert_int_equal(ota_verify_key_id(crt, crt_len, &a), OTA_OK);
    assert_int_equal(ota_verify_key_id(pub, pub_len, &b), OTA_OK);
    assert_int_equal(a, b); /* certificate and bare key of one key */
    assert_int_equal(ota_verify_key_id(other, other_len, &c), OTA_OK);
    assert_int_not_equal(a, c);
    /* An RSA key has an id of its own (its modulus), the same for its
     * certificate and its public key. */
    assert_int_equal(ota_verify_key_id(rsa, rsa_len, &d), OTA_OK);
    assert_int_not_equal(a, d);
    assert_int_equal(ota_verify_key_id(fx.rsa_pub.bytes, fx.rsa_pub.len, &c), OTA_OK);
    assert_int_equal(c, d);
    assert_int_equal(ota_verify_key_id(fx.p384_pub.bytes, fx.p384_pub.len, &d),
                     OTA_ERR_BAD_SIGNER_CERT);
    assert_int_equal(ota_verify_key_id((const uint8_t *)"garbage", 7, &d), OTA_ERR_BAD_SIGNER_CERT);
    assert_int_equal(ota_verify_key_id(NULL, 10, &d), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_verify_key_id(crt, crt_len, NULL), OTA_ERR_INVALID_ARG);
}

/* ---- close-time verification (ota_verify_close) ------------------------------ */

static ota_pal_file_t close_file_desc(const uint8_t *sig, size_t sig_len)
{
    ota_pal_file_t f;
    memset(&f, 0, sizeof f);
    f.size = (uint32_t)fx.blocks_len;
    f.cert_name = "codesign-test.crt";
    f.sig_method = OTA_SIG_SHA256_ECDSA;
    f.signature = sig;
    f.signature_len = sig_len;
    return f;
}

/* ota_verify_close over blocks.bin read back through mem_read; read number
 * fail_read returns ret (0 = none). */
static ota_err_t close_reading(const ota_pal_file_t *file, const ota_verify_signer_t *signer,
                               unsigned fail_read, int32_t ret, mem_file_t *f)
{
    uint8_t chunk[512];
    const ota_verify_reader_t reader = {mem_read, f, chunk, sizeof chunk};
    memset(f, 0, sizeof(*f));
    f->data = fx.blocks;
    f->size = (uint32_t)fx.blocks_len;
    f->chunk_len = sizeof chunk;
    f->fail_read = fail_read;
    f->fail_ret = ret;
    return ota_verify_close(file, (uint32_t)fx.blocks_len, signer, NULL, NULL, &reader);
}

static void test_close_maps_every_read_error_to_file_close(void **state)
{
    const int32_t errors[] = {OTA_ERR_IO,
                              OTA_ERR_CORRUPT,
                              OTA_ERR_INVALID_ARG,
                              OTA_ERR_FLASH_RULE,
                              OTA_ERR_NULL_FILE_CONTEXT,
                              0,
                              511,
                              513};
    ota_verify_signer_t signer = {"codesign-test.crt", fx.cert.bytes, fx.cert.len};
    ota_pal_file_t file = close_file_desc(fx.sig, fx.sig_len);
    mem_file_t f;
    (void)state;
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        expect(OTA_ERR_FILE_CLOSE, close_reading(&file, &signer, 2u, errors[i], &f), "read error");
    }
    /* Even with a signature that would not verify: the file is read first. */
    file = close_file_desc(fx.bad_sig, fx.bad_sig_len);
    expect(OTA_ERR_FILE_CLOSE, close_reading(&file, &signer, 1u, OTA_ERR_IO, &f), "bad sig");
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED, close_reading(&file, &signer, 0u, 0, &f), "bad sig");
    file = close_file_desc(fx.sig, fx.sig_len);
    expect(OTA_OK, close_reading(&file, &signer, 0u, 0, &f), "good");
}

static void test_close_checks_in_order(void **state)
{
    ota_verify_signer_t signer = {"codesign-test.crt", fx.cert.bytes, fx.cert.len};
    ota_verify_signer_t rsa = {"rsa", fx.rsa_cert.bytes, fx.rsa_cert.len};
    uint8_t long_sig[OTA_PAL_SIGNATURE_MAX + 1u];
    ota_pal_file_t file = close_file_desc(fx.sig, fx.sig_len);
    mem_file_t f;
    uint32_t id = 0;
    uint32_t want = 1;
    (void)state;
    /* The signer first: no read is made. */
    expect(OTA_ERR_BAD_SIGNER_CERT, close_reading(&file, NULL, 1u, OTA_ERR_IO, &f), "no signer");
    assert_int_equal(f.reads, 0);
    file.sig_method = (ota_sig_method_t)0x55;
    expect(OTA_ERR_BAD_SIGNER_CERT, close_reading(&file, NULL, 0u, 0, &f), "no signer, bad method");
    /* Then the method and the signature, before any read. */
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED, close_reading(&file, &signer, 1u, OTA_ERR_IO, &f),
           "unknown method");
    assert_int_equal(f.reads, 0);
    memset(long_sig, 0x30, sizeof long_sig);
    file = close_file_desc(long_sig, sizeof long_sig);
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED, close_reading(&file, &signer, 1u, OTA_ERR_IO, &f),
           "signature too long");
    file = close_file_desc(NULL, 3);
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED, close_reading(&file, &signer, 0u, 0, &f),
           "NULL signature");
    file = close_file_desc(NULL, 0);
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED, close_reading(&file, &signer, 0u, 0, &f),
           "empty signature");
    /* A key id is reported for the signer that verified. */
    uint8_t chunk[64];
    const ota_verify_reader_t reader = {mem_read, &f, chunk, sizeof chunk};
    memset(&f, 0, sizeof f);
    f.data = fx.blocks;
    f.size = (uint32_t)fx.blocks_len;
    f.chunk_len = sizeof chunk;
    file = close_file_desc(fx.sig, fx.sig_len);
    expect(OTA_OK, ota_verify_close(&file, (uint32_t)fx.blocks_len, &signer, &id, NULL, &reader),
           "key id");
    assert_int_equal(ota_verify_key_id(fx.cert.bytes, fx.cert.len, &want), OTA_OK);
    assert_int_equal(id, want);
    /* An RSA signer for an ECDSA signature: refused whether RSA is built in
     * (the method is not the key's) or not (no RSA signer at all). */
    expect(OTA_ERR_BAD_SIGNER_CERT, close_reading(&file, &rsa, 0u, 0, &f), "not a P-256 signer");
    assert_int_equal(f.reads, 0);
    expect(OTA_ERR_INVALID_ARG, ota_verify_close(NULL, 1, &signer, NULL, NULL, &reader),
           "NULL file");
    expect(OTA_ERR_INVALID_ARG, ota_verify_close(&file, 1, &signer, NULL, NULL, NULL), "no reader");
}

/* ---- sig-sha256-rsa: RSA-2048 (test-keys/) and RSA-3072 (made here) ------- */

/* An RSA signer made with openssl at run time, and openssl's signature over blocks.bin. */
typedef struct rsa_case {
    char dir[64];
    blob_t crt, pub;
    uint8_t sig[512];
    size_t sig_len;
} rsa_case_t;

static void rsa_path(const rsa_case_t *c, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", c->dir, name);
}

/* Make an RSA key of bits (0: use test-keys/rsa-test.key), its certificate and
 * public key, and sign blocks.bin with openssl; the oracle is openssl. */
static void rsa_case_make(rsa_case_t *c, unsigned bits)
{
    char key[128], crt[128], pub[128], sig[128], cmd[1024];
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "/tmp/otter-test-rsa-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    rsa_path(c, "key.pem", key, sizeof key);
    rsa_path(c, "crt.pem", crt, sizeof crt);
    rsa_path(c, "pub.pem", pub, sizeof pub);
    rsa_path(c, "blocks.sig", sig, sizeof sig);
    if (bits == 0u) {
        snprintf(key, sizeof key, "%s", KEYS "rsa-test.key");
    } else {
        snprintf(cmd, sizeof cmd,
                 "'%s' genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:%u -out '%s'", OTA_OPENSSL,
                 bits, key);
        assert_int_equal(run(cmd), 0);
    }
    snprintf(cmd, sizeof cmd,
             "'%s' req -new -x509 -key '%s' -subj '/CN=otter rsa test' -days 2 -out '%s'",
             OTA_OPENSSL, key, crt);
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' pkey -in '%s' -pubout -out '%s'", OTA_OPENSSL, key, pub);
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' dgst -sha256 -sign '%s' -out '%s' '%s'", OTA_OPENSSL, key, sig,
             KEYS "blocks.bin");
    assert_int_equal(run(cmd), 0);
    assert_int_equal(ota_test_read_file(crt, c->crt.bytes, PEM_CAP, &c->crt.len), 0);
    assert_int_equal(ota_test_read_file(pub, c->pub.bytes, PEM_CAP, &c->pub.len), 0);
    assert_int_equal(ota_test_read_file(sig, c->sig, sizeof c->sig, &c->sig_len), 0);
    if (bits != 0u) {
        unlink(key);
    }
    unlink(crt);
    unlink(pub);
    unlink(sig);
    rmdir(c->dir);
}

/* ota_verify_sha256 over blocks.bin with method RSA. */
static ota_err_t verify_rsa(const blob_t *signer, const uint8_t *sig, size_t sig_len,
                            const uint8_t *data, ota_sig_method_t method)
{
    mem_file_t f;
    uint8_t chunk[300];
    memset(&f, 0, sizeof f);
    f.data = data;
    f.size = (uint32_t)fx.blocks_len;
    f.chunk_len = sizeof chunk;
    return ota_verify_sha256(signer->bytes, signer->len, method, sig, sig_len, mem_read, &f,
                             (uint32_t)fx.blocks_len, chunk, sizeof chunk);
}

/* The same through a hash made piece by piece. */
static ota_err_t verify_rsa_hashed(const blob_t *signer, const uint8_t *sig, size_t sig_len,
                                   ota_sig_method_t method)
{
    ota_verify_hash_t hash;
    ota_verify_hash_start(&hash);
    ota_verify_hash_update(&hash, fx.blocks, 1000u);
    ota_verify_hash_update(&hash, fx.blocks + 1000u, (uint32_t)fx.blocks_len - 1000u);
    return ota_verify_hash_check(signer->bytes, signer->len, method, sig, sig_len, &hash);
}

static void check_rsa_case(const rsa_case_t *c, size_t want_len, const char *what)
{
    static uint8_t tampered[DATA_CAP];
    uint8_t sig[520];
    ota_sig_method_t m = OTA_SIG_SHA256_ECDSA;

    print_message("%s: %zu-byte signature\n", what, c->sig_len);
    assert_int_equal(c->sig_len, want_len);
    assert_int_equal(ota_verify_signer_method(c->crt.bytes, c->crt.len, &m), OTA_OK);
    assert_int_equal(m, OTA_SIG_SHA256_RSA);
    expect(OTA_OK, verify_rsa(&c->crt, c->sig, c->sig_len, fx.blocks, OTA_SIG_SHA256_RSA), what);
    expect(OTA_OK, verify_rsa(&c->pub, c->sig, c->sig_len, fx.blocks, OTA_SIG_SHA256_RSA), what);
    expect(OTA_OK, verify_rsa_hashed(&c->crt, c->sig, c->sig_len, OTA_SIG_SHA256_RSA), what);

    /* One flipped bit anywhere in the signature, first, middle and last byte. */
    const size_t at[] = {0u, c->sig_len / 2u, c->sig_len - 1u};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        memcpy(sig, c->sig, c->sig_len);
        sig[at[i]] ^= 0x01u;
        expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
               verify_rsa(&c->crt, sig, c->sig_len, fx.blocks, OTA_SIG_SHA256_RSA), "flipped bit");
        expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
               verify_rsa_hashed(&c->crt, sig, c->sig_len, OTA_SIG_SHA256_RSA), "flipped, hashed");
    }
    /* The file changed by one byte. */
    memcpy(tampered, fx.blocks, fx.blocks_len);
    tampered[fx.blocks_len - 7u] ^= 0x80u;
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify_rsa(&c->crt, c->sig, c->sig_len, tampered, OTA_SIG_SHA256_RSA), "tampered file");
    /* Short, long and empty signatures. */
    memcpy(sig, c->sig, c->sig_len);
    sig[c->sig_len] = 0u;
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify_rsa(&c->crt, sig, c->sig_len - 1u, fx.blocks, OTA_SIG_SHA256_RSA), "short");
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify_rsa(&c->crt, sig, c->sig_len + 1u, fx.blocks, OTA_SIG_SHA256_RSA), "long");
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           verify_rsa(&c->crt, sig, 0u, fx.blocks, OTA_SIG_SHA256_RSA), "empty");
    /* The method must be the key's: an RSA key verifies no ECDSA, a P-256 key no RSA. */
    expect(OTA_ERR_BAD_SIGNER_CERT,
           verify_rsa(&c->crt, c->sig, c->sig_len, fx.blocks, OTA_SIG_SHA256_ECDSA),
           "RSA key, ECDSA");
    expect(OTA_ERR_BAD_SIGNER_CERT,
           verify_rsa_hashed(&c->crt, c->sig, c->sig_len, OTA_SIG_SHA256_ECDSA), "hashed, ECDSA");
    expect(OTA_ERR_BAD_SIGNER_CERT,
           verify_rsa(&fx.cert, c->sig, c->sig_len, fx.blocks, OTA_SIG_SHA256_RSA),
           "P-256 key, RSA");
    expect(OTA_ERR_BAD_SIGNER_CERT,
           verify_rsa(&fx.cert, fx.sig, fx.sig_len, fx.blocks, OTA_SIG_SHA256_RSA),
           "ECDSA sig, RSA");
    expect(OTA_ERR_INVALID_ARG,
           verify_rsa(&c->crt, c->sig, c->sig_len, fx.blocks, (ota_sig_method_t)7), "method 7");
}

static void test_rsa_2048(void **state)
{
    static rsa_case_t c;
    (void)state;
    rsa_case_make(&c, 0u); /* test-keys/rsa-test.key */
    check_rsa_case(&c, 256u, "RSA-2048");
    /* Signed at run time by the test signer (mbed TLS) too. */
    uint8_t sig[512];
    size_t sig_len = 0;
    assert_int_equal(ota_test_sign_sha256_ecdsa(KEYS "rsa-test.key", fx.blocks, fx.blocks_len, sig,
                                                sizeof sig, &sig_len),
                     0);
    assert_int_equal(sig_len, 256u);
    expect(OTA_OK, verify_rsa(&fx.rsa_cert, sig, sig_len, fx.blocks, OTA_SIG_SHA256_RSA),
           "mbed TLS signature");
}

/* One RSA-3072 signer for the tests that need one (key generation is slow). */
static const rsa_case_t *rsa_3072(void)
{
    static rsa_case_t c;
    static int made;
    if (!made) {
        rsa_case_make(&c, 3072u);
        made = 1;
    }
    return &c;
}

static void test_rsa_3072(void **state)
{
    (void)state;
    check_rsa_case(rsa_3072(), 384u, "RSA-3072");
}

static void test_rsa_other_sizes_refused(void **state)
{
    static rsa_case_t c;
    const unsigned sizes[] = {1024u, 2040u, 3080u};
    ota_sig_method_t m;
    uint32_t id;
    (void)state;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        rsa_case_make(&c, sizes[i]);
        print_message("RSA-%u refused\n", sizes[i]);
        expect(OTA_ERR_BAD_SIGNER_CERT, ota_verify_signer_method(c.crt.bytes, c.crt.len, &m),
               "method");
        expect(OTA_ERR_BAD_SIGNER_CERT, ota_verify_key_id(c.pub.bytes, c.pub.len, &id), "key id");
        expect(OTA_ERR_BAD_SIGNER_CERT,
               verify_rsa(&c.crt, c.sig, c.sig_len, fx.blocks, OTA_SIG_SHA256_RSA), "verify");
    }
    expect(OTA_ERR_BAD_SIGNER_CERT,
           ota_verify_signer_method(fx.p384_pub.bytes, fx.p384_pub.len, &m), "P-384");
    assert_int_equal(ota_verify_signer_method(fx.cert.bytes, fx.cert.len, &m), OTA_OK);
    assert_int_equal(m, OTA_SIG_SHA256_ECDSA);
    expect(OTA_ERR_INVALID_ARG, ota_verify_signer_method(NULL, 1u, &m), "NULL");
    expect(OTA_ERR_INVALID_ARG, ota_verify_signer_method(fx.cert.bytes, fx.cert.len, NULL), "NULL");
}

/* Close-time verification of an RSA-signed file: accepted only in builds with
 * OTA_SIG_RSA, and only with the method that matches the signer's key. */
static void test_close_rsa(void **state)
{
    const rsa_case_t *c = rsa_3072();
    ota_verify_signer_t rsa = {"rsa.crt", NULL, 0u};
    ota_verify_signer_t ec = {"codesign-test.crt", fx.cert.bytes, fx.cert.len};
    ota_pal_file_t file;
    ota_verify_hash_t hash;
    mem_file_t f;
    uint8_t sig[512];
    uint32_t id = 0, want = 1;
    (void)state;
    rsa.pem = c->crt.bytes;
    rsa.pem_len = c->crt.len;
    file = close_file_desc(c->sig, c->sig_len);
    file.sig_method = OTA_SIG_SHA256_RSA;
    if (!OTA_SIG_RSA) {
        /* ECDSA-only: no RSA signer, no RSA method; nothing is read. */
        expect(OTA_ERR_BAD_SIGNER_CERT, close_reading(&file, &rsa, 0u, 0, &f), "RSA signer");
        assert_int_equal(f.reads, 0);
        expect(OTA_ERR_SIGNATURE_CHECK_FAILED, close_reading(&file, &ec, 0u, 0, &f), "RSA method");
        assert_int_equal(f.reads, 0);
        return;
    }
    expect(OTA_OK, close_reading(&file, &rsa, 0u, 0, &f), "RSA-3072 file");
    ota_verify_hash_start(&hash);
    ota_verify_hash_update(&hash, fx.blocks, (uint32_t)fx.blocks_len);
    expect(OTA_OK, ota_verify_close(&file, (uint32_t)fx.blocks_len, &rsa, &id, &hash, NULL),
           "RSA-3072 hashed");
    assert_int_equal(ota_verify_key_id(c->pub.bytes, c->pub.len, &want), OTA_OK);
    assert_int_equal(id, want);
    /* A tampered signature, and a read error. */
    memcpy(sig, c->sig, c->sig_len);
    sig[10] ^= 0x04u;
    file.signature = sig;
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED, close_reading(&file, &rsa, 0u, 0, &f), "tampered");
    expect(OTA_ERR_FILE_CLOSE, close_reading(&file, &rsa, 2u, OTA_ERR_IO, &f), "read error");
    /* The method against the key, before anything is read. */
    file.signature = c->sig;
    expect(OTA_ERR_BAD_SIGNER_CERT, close_reading(&file, &ec, 0u, 0, &f), "RSA job, P-256 signer");
    assert_int_equal(f.reads, 0);
    file = close_file_desc(fx.sig, fx.sig_len);
    expect(OTA_ERR_BAD_SIGNER_CERT, close_reading(&file, &rsa, 0u, 0, &f), "ECDSA job, RSA signer");
    assert_int_equal(f.reads, 0);
}

static void test_close_uses_a_whole_hash_and_reads_back_otherwise(void **state)
{
    ota_verify_signer_t signer = {"codesign-test.crt", fx.cert.bytes, fx.cert.len};
    ota_pal_file_t file = close_file_desc(fx.sig, fx.sig_len);
    ota_verify_hash_t hash;
    mem_file_t f;
    uint8_t chunk[256];
    const ota_verify_reader_t reader = {mem_read, &f, chunk, sizeof chunk};
    (void)state;
    /* The whole file hashed: no reader needed, nothing read. */
    ota_verify_hash_start(&hash);
    ota_verify_hash_update(&hash, fx.blocks, (uint32_t)fx.blocks_len);
    expect(OTA_OK, ota_verify_close(&file, (uint32_t)fx.blocks_len, &signer, NULL, &hash, NULL),
           "hashed");
    /* A hash of part of the file is discarded and the file read back. */
    memset(&f, 0, sizeof f);
    f.data = fx.blocks;
    f.size = (uint32_t)fx.blocks_len;
    f.chunk_len = sizeof chunk;
    ota_verify_hash_start(&hash);
    ota_verify_hash_update(&hash, fx.blocks, 100);
    expect(OTA_OK, ota_verify_close(&file, (uint32_t)fx.blocks_len, &signer, NULL, &hash, &reader),
           "partly hashed");
    assert_true(f.reads > 0u);
    /* Same verdicts both ways for a bad signature. */
    file = close_file_desc(fx.bad_sig, fx.bad_sig_len);
    ota_verify_hash_start(&hash);
    ota_verify_hash_update(&hash, fx.blocks, (uint32_t)fx.blocks_len);
    expect(OTA_ERR_SIGNATURE_CHECK_FAILED,
           ota_verify_close(&file, (uint32_t)fx.blocks_len, &signer, NULL, &hash, NULL),
           "hashed, bad signature");
    /* A partial hash and no reader: refused, and the hash is released. */
    ota_verify_hash_start(&hash);
    ota_verify_hash_update(&hash, fx.blocks, 10);
    expect(OTA_ERR_INVALID_ARG,
           ota_verify_close(&file, (uint32_t)fx.blocks_len, &signer, NULL, &hash, NULL),
           "partial hash, no reader");
}

#if OTA_P256_COMB
/* The ROM table of G's multiples is the one the linked mbed TLS computes itself. */
static void test_p256_comb_table_is_mbedtls_own(void **state)
{
    (void)state;
    mbedtls_ecp_group grp;
    mbedtls_ecp_point r;
    mbedtls_mpi m;

    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&r);
    mbedtls_mpi_init(&m);
    assert_int_equal(mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1), 0);
    assert_int_equal(mbedtls_mpi_lset(&m, 2), 0);
    /* Multiplying G leaves mbed TLS's table of G in the group. */
    assert_int_equal(mbedtls_ecp_mul(&grp, &r, &m, &grp.G, NULL, NULL), 0);
    assert_non_null(grp.T);
    assert_int_equal(grp.T_size, OTA_P256_COMB_POINTS);
    for (size_t i = 0; i < OTA_P256_COMB_POINTS; i++) {
        const mbedtls_ecp_point *ours = &ota_p256_comb_g[i];
        if (mbedtls_mpi_cmp_mpi(&ours->X, &grp.T[i].X) != 0 ||
            mbedtls_mpi_cmp_mpi(&ours->Y, &grp.T[i].Y) != 0 ||
            mbedtls_mpi_cmp_int(&ours->Z, 1) != 0) {
            fail_msg("entry %u of verify/ota_p256_comb.c is not mbed TLS's: regenerate it with "
                     "ota_p256_comb_gen",
                     (unsigned)i);
        }
        assert_int_equal(mbedtls_ecp_check_pubkey(&grp, ours), 0);
    }
    /* The table with any scalar gives what mbed TLS computes without it. */
    for (int k = 0; k < 8; k++) {
        mbedtls_ecp_group with;
        mbedtls_ecp_point a, b;
        mbedtls_ecp_group_init(&with);
        mbedtls_ecp_point_init(&a);
        mbedtls_ecp_point_init(&b);
        assert_int_equal(mbedtls_ecp_group_load(&with, MBEDTLS_ECP_DP_SECP256R1), 0);
        assert_int_equal(mbedtls_mpi_lset(&m, 1), 0);
        assert_int_equal(mbedtls_mpi_shift_l(&m, (size_t)(31 * k + 7)), 0);
        assert_int_equal(mbedtls_mpi_add_int(&m, &m, 12345 + k), 0);
        with.T = (mbedtls_ecp_point *)ota_p256_comb_g;
        with.T_size = 0;
        assert_int_equal(mbedtls_ecp_mul(&with, &a, &m, &with.G, NULL, NULL), 0);
        with.T = NULL;
        assert_int_equal(mbedtls_ecp_mul(&grp, &b, &m, &grp.G, NULL, NULL), 0);
        assert_int_equal(mbedtls_ecp_point_cmp(&a, &b), 0);
        mbedtls_ecp_point_free(&a);
        mbedtls_ecp_point_free(&b);
        mbedtls_ecp_group_free(&with);
    }
    mbedtls_mpi_free(&m);
    mbedtls_ecp_point_free(&r);
    mbedtls_ecp_group_free(&grp);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_committed_sig_with_cert),
        cmocka_unit_test(test_committed_sig_with_public_key),
        cmocka_unit_test(test_committed_b64_is_the_der_signature),
        cmocka_unit_test(test_pem_need_not_be_nul_terminated),
        cmocka_unit_test(test_pem_with_crlf_line_ends),
        cmocka_unit_test(test_pem_size_limit),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_untrusted_signer),
        cmocka_unit_test(test_flipped_data_byte),
        cmocka_unit_test(test_wrong_file_size),
        cmocka_unit_test(test_malformed_signature),
        cmocka_unit_test(test_bad_signer),
        cmocka_unit_test(test_chunk_sizes_agree),
        cmocka_unit_test(test_reader_failure),
        cmocka_unit_test(test_runtime_signed_data),
        cmocka_unit_test(test_sign_helper_errors),
        cmocka_unit_test(test_runtime_signature_cross_checked_with_openssl),
        cmocka_unit_test(test_null_and_zero_args),
        cmocka_unit_test(test_hash_null_args),
        cmocka_unit_test(test_find_signer),
        cmocka_unit_test(test_find_signer_then_verify),
        cmocka_unit_test(test_key_id),
        cmocka_unit_test(test_close_maps_every_read_error_to_file_close),
        cmocka_unit_test(test_close_checks_in_order),
        cmocka_unit_test(test_close_uses_a_whole_hash_and_reads_back_otherwise),
        cmocka_unit_test(test_rsa_2048),
        cmocka_unit_test(test_rsa_3072),
        cmocka_unit_test(test_rsa_other_sizes_refused),
        cmocka_unit_test(test_close_rsa),
#if OTA_P256_COMB
        cmocka_unit_test(test_p256_comb_table_is_mbedtls_own),
#endif
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
