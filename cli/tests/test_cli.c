/*
 * otter CLI tests: the `otter` binary run as a user runs it, with openssl and
 * otter's own verifier as oracles and the store read back through its API.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <mbedtls/base64.h>

#include "cli_test_util.h"
#include "otter/ota_image_header.h"
#include "ota_store.h"
#include "otter/ota_verify.h"

static cli_run_t g_run;
#define R (&g_run)

static int setup(void **state)
{
    (void)state;
    return cli_test_begin();
}

static int teardown(void **state)
{
    (void)state;
    cli_test_end();
    return 0;
}

/* Asserts a successful run, printing stderr when it is not. */
#define assert_ok(code)                                                                            \
    do {                                                                                           \
        int c_ = (code);                                                                           \
        if (c_ != 0) {                                                                             \
            fprintf(stderr, "stderr: %s\n", R->err);                                               \
        }                                                                                          \
        assert_int_equal(c_, 0);                                                                   \
    } while (0)

/* Asserts a failed run with this exit code and one error line. */
#define assert_fails(code, want)                                                                   \
    do {                                                                                           \
        assert_int_equal((code), (want));                                                          \
        assert_true(cli_test_one_error_line(R));                                                   \
    } while (0)

/* Reader over memory for ota_verify. */
struct mem {
    const uint8_t *p;
    size_t n;
};

static int32_t mem_read(void *ctx, uint32_t off, uint8_t *buf, uint32_t len)
{
    const struct mem *m = ctx;
    if ((size_t)off + len > m->n) {
        return OTA_ERR_IO;
    }
    memcpy(buf, m->p + off, len);
    return (int32_t)len;
}

/* Verifies with the device verifier: certificate file, data, DER signature. */
static ota_err_t device_verify(const char *cert_path, const uint8_t *data, size_t len,
                               const uint8_t *sig, size_t sig_len)
{
    size_t pem_len = 0;
    unsigned char *pem = cli_test_read(cert_path, &pem_len);
    assert_non_null(pem);
    struct mem m = {data, len};
    uint8_t chunk[256];
    ota_err_t rc = ota_verify_sha256_ecdsa(pem, pem_len, sig, sig_len, mem_read, &m, (uint32_t)len,
                                           chunk, sizeof chunk);
    free(pem);
    return rc;
}

/* openssl as the oracle: 0 when the signature verifies with the certificate's key. */
static int openssl_verify(const char *cert, const char *file, const char *sig)
{
    const char *pub = cli_test_path("oracle.pub.pem");
    if (cli_test_sh("{ '%s' x509 -in '%s' -pubkey -noout > '%s'; }", OTA_OPENSSL, cert, pub) != 0) {
        return -1;
    }
    return cli_test_sh("'%s' dgst -sha256 -verify '%s' -signature '%s' '%s'", OTA_OPENSSL, pub, sig,
                       file);
}

/* Writes size pseudo-random bytes (no image header) to the test folder. */
static const char *make_firmware(const char *name, size_t size)
{
    uint8_t *b = malloc(size);
    assert_non_null(b);
    uint32_t x = 0x12345678u ^ (uint32_t)size;
    for (size_t i = 0; i < size; i++) {
        x = x * 1103515245u + 12345u;
        b[i] = (uint8_t)(x >> 16);
    }
    b[0] = 0x7f; /* never the image magic */
    const char *p = cli_test_path("%s", name);
    assert_int_equal(cli_test_write(p, b, size), 0);
    free(b);
    return p;
}

/* broker init, things A and B (B in group lab), a signing key. */
static void make_world(void)
{
    assert_ok(cli_test_run(R, "broker", "init", "--port", "18999", NULL));
    assert_ok(cli_test_run(R, "thing", "create", "A", NULL));
    assert_ok(cli_test_run(R, "thing", "create", "B", "--group", "lab", NULL));
    assert_ok(cli_test_run(R, "keygen", "--out", cli_test_path("keys"), NULL));
}

static ota_store_t *open_store(void)
{
    ota_store_t *s = NULL;
    assert_int_equal(ota_store_open(cli_test_data(), &s), OTA_STORE_OK);
    return s;
}

/* Counts rows of a listing. */
static int count_cb(void *ctx, const void *row)
{
    (void)row;
    (*(size_t *)ctx)++;
    return 0;
}
static int count_job(void *ctx, const ota_store_job_t *j)
{
    return count_cb(ctx, j);
}
static int count_stream(void *ctx, const ota_store_stream_t *s)
{
    return count_cb(ctx, s);
}

/* Number of jobs and streams in the store, and files in data/files. */
static void count_store(size_t *jobs, size_t *streams, size_t *files)
{
    ota_store_t *s = open_store();
    *jobs = *streams = 0;
    assert_int_equal(ota_store_job_list(s, count_job, jobs), OTA_STORE_OK);
    assert_int_equal(ota_store_stream_list(s, count_stream, streams), OTA_STORE_OK);
    ota_store_close(s);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A '%s/files' | wc -l", cli_test_data());
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    unsigned long n = 0;
    assert_int_equal(fscanf(p, "%lu", &n), 1);
    pclose(p);
    *files = n;
}

/* ------------------------------------------------------------------------ */

/* keygen + sign: openssl and ota_verify accept; a flipped byte is refused. */
static void test_keygen_sign_oracles(void **state)
{
    (void)state;
    const char *keys = cli_test_path("k");
    assert_ok(
        cli_test_run(R, "keygen", "--out", keys, "--name", "signer", "--cn", "unit test", NULL));
    const char *key = cli_test_path("k/signer.key"), *crt = cli_test_path("k/signer.crt");
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* The certificate: self-signed, codeSigning, CN, about ten years. */
    assert_int_equal(
        cli_test_sh("'%s' x509 -in '%s' -noout -text | grep -q 'Code Signing'", OTA_OPENSSL, crt),
        0);
    assert_int_equal(
        cli_test_sh("'%s' x509 -in '%s' -noout -subject | grep -q 'unit test'", OTA_OPENSSL, crt),
        0);
    assert_int_equal(
        cli_test_sh("'%s' verify -CAfile '%s' -purpose any '%s'", OTA_OPENSSL, crt, crt), 0);
    assert_int_equal(
        cli_test_sh("'%s' x509 -in '%s' -noout -checkend %d", OTA_OPENSSL, crt, 9 * 365 * 86400),
        0);
    assert_int_not_equal(
        cli_test_sh("'%s' x509 -in '%s' -noout -checkend %d", OTA_OPENSSL, crt, 11 * 365 * 86400),
        0);
    /* The key and certificate belong together. */
    assert_int_equal(cli_test_sh("test \"$('%s' pkey -in '%s' -pubout)\" = \"$('%s' x509 -in "
                                 "'%s' -noout -pubkey)\"",
                                 OTA_OPENSSL, key, OTA_OPENSSL, crt),
                     0);

    const char *fw = make_firmware("fw.bin", 5000);
    const char *sig = cli_test_path("fw.sig");
    assert_ok(cli_test_run(R, "sign", "--key", key, fw, "--out", sig, NULL));
    assert_int_equal(openssl_verify(crt, fw, sig), 0);
    size_t len = 0, sig_len = 0;
    unsigned char *data = cli_test_read(fw, &len);
    unsigned char *der = cli_test_read(sig, &sig_len);
    assert_true(sig_len >= 8 && sig_len <= 72 && der[0] == 0x30);
    assert_int_equal(device_verify(crt, data, len, der, sig_len), OTA_OK);

    /* A flipped byte in the file: both oracles refuse. */
    data[1234] ^= 0x01;
    const char *bad = cli_test_path("fw.flipped");
    assert_int_equal(cli_test_write(bad, data, len), 0);
    assert_int_not_equal(openssl_verify(crt, bad, sig), 0);
    assert_int_equal(device_verify(crt, data, len, der, sig_len), OTA_ERR_SIGNATURE_CHECK_FAILED);
    data[1234] ^= 0x01;
    /* A flipped byte in the signature: refused too. */
    der[sig_len - 1] ^= 0x01;
    assert_int_equal(device_verify(crt, data, len, der, sig_len), OTA_ERR_SIGNATURE_CHECK_FAILED);

    /* Without --out: one line of base64 that decodes to a valid signature. */
    assert_ok(cli_test_run(R, "sign", "--key", key, fw, NULL));
    char *nl = strchr(R->out, '\n');
    assert_non_null(nl);
    assert_string_equal(nl, "\n");
    unsigned char dec[128];
    size_t dec_len = 0;
    assert_int_equal(mbedtls_base64_decode(dec, sizeof dec, &dec_len, (unsigned char *)R->out,
                                           (size_t)(nl - R->out)),
                     0);
    assert_int_equal(device_verify(crt, data, len, dec, dec_len), OTA_OK);
    /* The test signer from test-keys/ (PKCS#8 from openssl) signs too. */
    assert_ok(cli_test_run(R, "sign", "--key", OTA_TEST_KEYS_DIR "/codesign-test.key", fw, "--out",
                           cli_test_path("t.sig"), NULL));
    assert_int_equal(
        openssl_verify(OTA_TEST_KEYS_DIR "/codesign-test.crt", fw, cli_test_path("t.sig")), 0);
    free(data);
    free(der);
}

/* keygen never overwrites; sign refuses bad keys and outputs. */
static void test_keygen_sign_refusals(void **state)
{
    (void)state;
    const char *keys = cli_test_path("k");
    assert_ok(cli_test_run(R, "keygen", "--out", keys, NULL));
    size_t before_len = 0;
    unsigned char *before = cli_test_read(cli_test_path("k/codesign.key"), &before_len);
    assert_fails(cli_test_run(R, "keygen", "--out", keys, NULL), 1);
    size_t after_len = 0;
    unsigned char *after = cli_test_read(cli_test_path("k/codesign.key"), &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before);
    free(after);
    /* Only the certificate exists: still refused, and no key is written. */
    assert_int_equal(rename(cli_test_path("k/codesign.key"), cli_test_path("k/moved.key")), 0);
    assert_fails(cli_test_run(R, "keygen", "--out", keys, NULL), 1);
    assert_int_not_equal(access(cli_test_path("k/codesign.key"), F_OK), 0);

    const char *fw = make_firmware("fw.bin", 100);
    assert_fails(cli_test_run(R, "sign", "--key", cli_test_path("nokey.pem"), fw, NULL), 1);
    assert_fails(cli_test_run(R, "sign", "--key", cli_test_path("k/codesign.crt"), fw, NULL), 1);
    /* An RSA key below 2048 bits (made by openssl here) signs nothing. */
    assert_int_equal(cli_test_sh("'%s' genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "
                                 "'%s' 2>/dev/null",
                                 OTA_OPENSSL, cli_test_path("rsa1024.key")),
                     0);
    assert_fails(cli_test_run(R, "sign", "--key", cli_test_path("rsa1024.key"), fw, NULL), 1);
    assert_non_null(strstr(R->err, "is not a P-256, RSA-2048 or RSA-3072 private key"));
    assert_fails(
        cli_test_run(R, "keygen", "--out", keys, "--name", "r", "--type", "rsa-1024", NULL), 2);
    assert_int_not_equal(access(cli_test_path("k/r.key"), F_OK), 0);
    assert_fails(cli_test_run(R, "sign", "--key", cli_test_path("k/moved.key"),
                              cli_test_path("missing.bin"), NULL),
                 1);
    assert_fails(
        cli_test_run(R, "sign", "--key", cli_test_path("k/moved.key"), fw, "--out", fw, NULL), 1);
    assert_fails(cli_test_run(R, "sign", fw, NULL), 2);
    assert_fails(cli_test_run(R, "sign", "--key", cli_test_path("k/moved.key"), NULL), 2);
    assert_fails(cli_test_run(R, "keygen", NULL), 2);
    assert_fails(cli_test_run(R, "keygen", "--out", keys, "--name", "a/b", NULL), 2);
}

/* Reads the stored image of a job: its stream's file 0. */
static unsigned char *job_image(const char *job_id, size_t *len, char *stream_out)
{
    ota_store_t *s = open_store();
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, job_id, &j), OTA_STORE_OK);
    ota_store_stream_t st;
    assert_int_equal(ota_store_stream_get(s, j.stream_id, &st), OTA_STORE_OK);
    assert_int_equal(st.n_files, 1);
    assert_int_equal(st.files[0].file_id, 0);
    unsigned char *img = cli_test_read(st.files[0].path, len);
    assert_non_null(img);
    assert_int_equal(*len, st.files[0].size);
    if (stream_out) {
        strcpy(stream_out, j.stream_id);
    }
    ota_store_stream_free(&st);
    ota_store_job_free(&j);
    ota_store_close(s);
    return img;
}

/* RSA keys: keygen --type makes them, sign and job create sign with them
 * (sig-sha256-rsa in the document, as AWS writes it); openssl is the oracle. */
static void test_rsa_keys(void **state)
{
    (void)state;
    make_world();
    const char *key = cli_test_path("rk/codesign.key"), *crt = cli_test_path("rk/codesign.crt");
    assert_ok(cli_test_run(R, "keygen", "--out", cli_test_path("rk"), "--type", "rsa-2048", NULL));
    assert_int_equal(
        cli_test_sh("'%s' x509 -in '%s' -noout -text | grep -q 'Public-Key: (2048 bit)'",
                    OTA_OPENSSL, crt),
        0);
    const char *fw = make_firmware("fw.bin", 5000);
    assert_ok(cli_test_run(R, "sign", "--key", key, fw, "--out", cli_test_path("fw.sig"), NULL));
    size_t sig_len = 0;
    unsigned char *sig = cli_test_read(cli_test_path("fw.sig"), &sig_len);
    assert_int_equal(sig_len, 256);
    free(sig);
    assert_int_equal(openssl_verify(crt, fw, cli_test_path("fw.sig")), 0);
    /* The committed RSA test key signs too. */
    assert_ok(cli_test_run(R, "sign", "--key", OTA_TEST_KEYS_DIR "/rsa-test.key", fw, "--out",
                           cli_test_path("t.sig"), NULL));
    assert_int_equal(openssl_verify(OTA_TEST_KEYS_DIR "/rsa-test.crt", fw, cli_test_path("t.sig")),
                     0);

    /* job create: the method from the key, checked against the certificate beside it. */
    assert_ok(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.1.0", "--targets", "A",
                           "--key", key, "--job-id", "rsa1", NULL));
    size_t len = 0;
    unsigned char *img = job_image("rsa1", &len, NULL);
    ota_store_t *s = open_store();
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, "rsa1", &j), OTA_STORE_OK);
    cJSON *doc = cJSON_Parse(j.document);
    cJSON *f = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "afr_ota"), "files"),
        0);
    assert_null(cJSON_GetObjectItemCaseSensitive(f, "sig-sha256-ecdsa"));
    cJSON *b64 = cJSON_GetObjectItemCaseSensitive(f, "sig-sha256-rsa");
    assert_true(cJSON_IsString(b64));
    uint8_t dsig[512];
    size_t dlen = 0;
    assert_int_equal(mbedtls_base64_decode(dsig, sizeof dsig, &dlen,
                                           (const unsigned char *)b64->valuestring,
                                           strlen(b64->valuestring)),
                     0);
    assert_int_equal(dlen, 256);
    assert_int_equal(cli_test_write(cli_test_path("doc.sig"), dsig, dlen), 0);
    assert_int_equal(cli_test_write(cli_test_path("doc.img"), img, len), 0);
    assert_int_equal(openssl_verify(crt, cli_test_path("doc.img"), cli_test_path("doc.sig")), 0);
    cJSON_Delete(doc);
    ota_store_job_free(&j);
    ota_store_close(s);

    /* --signature: an RSA signature file, checked against the RSA certificate;
     * against a P-256 certificate it is refused and nothing is created. */
    assert_ok(cli_test_run(R, "job", "create", "--file", cli_test_path("doc.img"), "--version",
                           "1.1.0", "--targets", "A", "--signature", cli_test_path("doc.sig"),
                           "--cert", crt, "--job-id", "rsa2", NULL));
    assert_fails(cli_test_run(R, "job", "create", "--file", cli_test_path("doc.img"), "--version",
                              "1.1.0", "--targets", "A", "--signature", cli_test_path("doc.sig"),
                              "--cert", cli_test_path("keys/codesign.crt"), "--job-id", "rsa3",
                              NULL),
                 1);
    s = open_store();
    assert_int_equal(ota_store_job_get(s, "rsa3", &j), OTA_STORE_NOT_FOUND);
    ota_store_close(s);
    free(img);
}

/* Raw firmware is wrapped with a header; a wrapped image must match --version. */
static void test_image_wrapping_and_versions(void **state)
{
    (void)state;
    make_world();
    const char *key = cli_test_path("keys/codesign.key");
    const char *fw = make_firmware("fw.bin", 3000);
    assert_ok(cli_test_run(R, "job", "create", "--file", fw, "--version", "2.5.300", "--targets",
                           "A", "--key", key, "--job-id", "wrap", NULL));
    assert_string_equal(R->out, "wrap\n");
    size_t len = 0, raw_len = 0;
    unsigned char *img = job_image("wrap", &len, NULL);
    unsigned char *raw = cli_test_read(fw, &raw_len);
    assert_int_equal(len, raw_len + OTA_IMAGE_HEADER_SIZE);
    ota_image_header_t h;
    assert_int_equal(ota_image_header_decode(img, len, &h), OTA_OK);
    assert_int_equal(h.version, (2u << 24) | (5u << 16) | 300u);
    assert_int_equal(h.image_size, len);
    assert_memory_equal(img + OTA_IMAGE_HEADER_SIZE, raw, raw_len);

    /* The wrapped image published again with the same version: used as is. */
    const char *wrapped = cli_test_path("wrapped.bin");
    assert_int_equal(cli_test_write(wrapped, img, len), 0);
    assert_ok(cli_test_run(R, "job", "create", "--file", wrapped, "--version", "2.5.300",
                           "--targets", "A", "--key", key, "--job-id", "asis", NULL));
    size_t len2 = 0;
    unsigned char *img2 = job_image("asis", &len2, NULL);
    assert_int_equal(len2, len);
    assert_memory_equal(img2, img, len);
    /* ... with another version: refused, naming the header's version. */
    assert_fails(cli_test_run(R, "job", "create", "--file", wrapped, "--version", "2.5.301",
                              "--targets", "A", "--key", key, NULL),
                 1);
    assert_non_null(strstr(R->err, "2.5.300"));
    /* A damaged header (CRC): refused. */
    img[9] ^= 0xff;
    const char *damaged = cli_test_path("damaged.bin");
    assert_int_equal(cli_test_write(damaged, img, len), 0);
    assert_fails(cli_test_run(R, "job", "create", "--file", damaged, "--version", "2.5.300",
                              "--targets", "A", "--key", key, NULL),
                 1);
    /* Malformed versions are usage errors. */
    const char *bad[] = {"1.2",    "1.2.3.4", "256.0.0", "0.256.0", "1.2.65536", "a.b.c",
                         "-1.2.3", "1..3",    "1.2.3 ",  "",        "+1.2.3",    "1.2.0x3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_fails(cli_test_run(R, "job", "create", "--file", fw, "--version", bad[i],
                                  "--targets", "A", "--key", key, NULL),
                     2);
    }
    /* Extremes are fine. */
    assert_ok(cli_test_run(R, "job", "create", "--file", fw, "--version", "255.255.65535",
                           "--targets", "A", "--key", key, "--job-id", "max", NULL));
    size_t len3 = 0;
    unsigned char *img3 = job_image("max", &len3, NULL);
    assert_int_equal(ota_image_header_decode(img3, len3, &h), OTA_OK);
    assert_int_equal(h.version, 0xffffffffu);
    free(img);
    free(img2);
    free(img3);
    free(raw);
}

/* Checks that text is a lowercase UUID version 4. */
static void assert_uuid_v4(const char *u)
{
    assert_int_equal(strlen(u), 36);
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            assert_int_equal(u[i], '-');
        } else {
            assert_non_null(strchr("0123456789abcdef", u[i]));
        }
    }
    assert_int_equal(u[14], '4');
    assert_non_null(strchr("89ab", u[19]));
}

/* Parses a job's document and checks every field; returns the DER signature. */
static size_t check_document(const char *job_id, const char *file_path, const char *cert_name,
                             int file_type, uint8_t *sig, const unsigned char *img, size_t len)
{
    ota_store_t *s = open_store();
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, job_id, &j), OTA_STORE_OK);
    cJSON *doc = cJSON_Parse(j.document);
    assert_non_null(doc);
    assert_int_equal(cJSON_GetArraySize(doc), 1);
    cJSON *ota = cJSON_GetObjectItemCaseSensitive(doc, "afr_ota");
    assert_true(cJSON_IsObject(ota));
    assert_int_equal(cJSON_GetArraySize(ota), 3);
    cJSON *protocols = cJSON_GetObjectItemCaseSensitive(ota, "protocols");
    assert_true(cJSON_IsArray(protocols));
    assert_int_equal(cJSON_GetArraySize(protocols), 1);
    assert_string_equal(cJSON_GetArrayItem(protocols, 0)->valuestring, "MQTT");
    cJSON *stream = cJSON_GetObjectItemCaseSensitive(ota, "streamname");
    assert_true(cJSON_IsString(stream));
    assert_int_equal(strlen(stream->valuestring), 44);
    assert_memory_equal(stream->valuestring, "AFR_OTA-", 8);
    assert_uuid_v4(stream->valuestring + 8);
    assert_string_equal(stream->valuestring, j.stream_id);
    cJSON *files = cJSON_GetObjectItemCaseSensitive(ota, "files");
    assert_true(cJSON_IsArray(files));
    assert_int_equal(cJSON_GetArraySize(files), 1);
    cJSON *f = cJSON_GetArrayItem(files, 0);
    /* The keys in AWS's order, then otter's version for a firmware file. */
    assert_int_equal(cJSON_GetArraySize(f), file_type == 0 ? 9 : 8);
    const char *order[] = {"filepath",    "filesize",         "fileid",
                           "certfile",    "fileType",         "update_data_url",
                           "auth_scheme", "sig-sha256-ecdsa", "otterVersion"};
    size_t k = 0;
    for (cJSON *it = f->child; it; it = it->next, k++) {
        assert_string_equal(it->string, order[k]);
    }
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(f, "filepath")->valuestring, file_path);
    cJSON *size = cJSON_GetObjectItemCaseSensitive(f, "filesize");
    assert_true(cJSON_IsNumber(size));
    assert_int_equal((size_t)size->valuedouble, len);
    cJSON *fileid = cJSON_GetObjectItemCaseSensitive(f, "fileid");
    assert_true(cJSON_IsNumber(fileid));
    assert_int_equal(fileid->valueint, 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(f, "certfile")->valuestring, cert_name);
    cJSON *ft = cJSON_GetObjectItemCaseSensitive(f, "fileType");
    assert_true(cJSON_IsNumber(ft));
    assert_int_equal(ft->valueint, file_type);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(f, "update_data_url")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(f, "auth_scheme")));
    cJSON *b64 = cJSON_GetObjectItemCaseSensitive(f, "sig-sha256-ecdsa");
    assert_true(cJSON_IsString(b64));
    size_t sig_len = 0;
    assert_int_equal(mbedtls_base64_decode(sig, 72, &sig_len,
                                           (const unsigned char *)b64->valuestring,
                                           strlen(b64->valuestring)),
                     0);
    assert_true(sig_len >= 8 && sig_len <= 72 && sig[0] == 0x30);
    /* The document is stored compact, exactly as cJSON prints it back. */
    char *again = cJSON_PrintUnformatted(doc);
    assert_string_equal(again, j.document);
    cJSON_free(again);
    (void)img;
    cJSON_Delete(doc);
    ota_store_job_free(&j);
    ota_store_close(s);
    return sig_len;
}

/* The job document, the stream and the executions job create makes. */
static void test_job_document(void **state)
{
    (void)state;
    make_world();
    const char *key = cli_test_path("keys/codesign.key"), *crt = cli_test_path("keys/codesign.crt");
    const char *fw = make_firmware("fw.bin", 10000);
    assert_ok(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.1.0", "--targets",
                           "A,group:lab", "--key", key, "--job-id", "doc1", "--file-path",
                           "/ota/app.bin", "--cert-name", "codesign.crt", "--timeout-minutes", "7",
                           "--rollout-rate", "50", "--abort-failure-percent", "30",
                           "--abort-min-finished", "2", NULL));
    size_t len = 0;
    char stream[160];
    unsigned char *img = job_image("doc1", &len, stream);
    uint8_t sig[72];
    size_t sig_len = check_document("doc1", "/ota/app.bin", "codesign.crt", 0, sig, img, len);
    /* The signature verifies over the stored image with the device verifier and openssl. */
    assert_int_equal(device_verify(crt, img, len, sig, sig_len), OTA_OK);
    const char *sig_path = cli_test_path("doc.sig"), *img_path = cli_test_path("doc.img");
    assert_int_equal(cli_test_write(sig_path, sig, sig_len), 0);
    assert_int_equal(cli_test_write(img_path, img, len), 0);
    assert_int_equal(openssl_verify(crt, img_path, sig_path), 0);

    /* Job settings and one QUEUED execution per target (A, and B through lab). */
    ota_store_t *s = open_store();
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, "doc1", &j), OTA_STORE_OK);
    assert_int_equal(j.in_progress_timeout_min, 7);
    assert_int_equal(j.rollout_per_minute, 50);
    assert_int_equal(j.abort_failure_percent, 30);
    assert_int_equal(j.abort_min_finished, 2);
    assert_int_equal(j.n_executions, 2);
    ota_store_job_free(&j);
    ota_store_execution_t e;
    assert_int_equal(ota_store_execution_get(s, "doc1", "B", &e), OTA_STORE_OK);
    assert_int_equal(e.status, OTA_STORE_EXEC_QUEUED);
    ota_store_execution_free(&e);
    ota_store_stream_t st;
    assert_int_equal(ota_store_stream_get(s, stream, &st), OTA_STORE_OK);
    assert_int_equal(st.version, 1);
    assert_int_equal(st.files[0].size, len);
    ota_store_stream_free(&st);
    ota_store_close(s);

    /* stream describe shows the stream, file id 0 and its size. */
    assert_ok(cli_test_run(R, "stream", "describe", stream, NULL));
    char want[64];
    snprintf(want, sizeof want, "file id 0: %zu bytes", len);
    assert_non_null(strstr(R->out, want));
    assert_non_null(strstr(R->out, "version:     1"));

    /* With --signature: the document carries exactly the given DER, checked
     * against the certificate beside it; a default job id is generated. */
    assert_ok(cli_test_run(R, "sign", "--key", key, img_path, "--out",
                           cli_test_path("keys/img.sig"), NULL));
    size_t given_len = 0;
    unsigned char *given = cli_test_read(cli_test_path("keys/img.sig"), &given_len);
    assert_ok(cli_test_run(R, "job", "create", "--file", img_path, "--version", "1.1.0",
                           "--targets", "B", "--signature", cli_test_path("keys/img.sig"),
                           "--file-type", "0", NULL));
    char id[80];
    snprintf(id, sizeof id, "%.79s", R->out);
    *strchr(id, '\n') = '\0';
    assert_memory_equal(id, "ota-", 4);
    assert_uuid_v4(id + 4);
    size_t len2 = 0;
    unsigned char *img2 = job_image(id, &len2, NULL);
    uint8_t sig2[72];
    size_t sig2_len = check_document(id, "firmware.bin", "codesign.crt", 0, sig2, img2, len2);
    assert_int_equal(sig2_len, given_len);
    assert_memory_equal(sig2, given, given_len);

    /* A data file (fileType 3) is published as given, without a header. */
    assert_ok(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.1.0", "--targets", "A",
                           "--key", key, "--job-id", "data", "--file-type", "3", NULL));
    size_t len3 = 0, raw_len = 0;
    unsigned char *img3 = job_image("data", &len3, NULL);
    unsigned char *raw = cli_test_read(fw, &raw_len);
    assert_int_equal(len3, raw_len);
    assert_memory_equal(img3, raw, raw_len);
    uint8_t sig3[72];
    size_t sig3_len = check_document("data", "firmware.bin", "codesign.crt", 3, sig3, img3, len3);
    assert_int_equal(device_verify(crt, img3, len3, sig3, sig3_len), OTA_OK);
    free(img);
    free(img2);
    free(img3);
    free(raw);
    free(given);
}

/** One bad command line and the exit code it must give. */
struct bad_case {
    int code;
    const char *argv[24];
};

/* Every bad input: one error line, the right exit code, nothing half-created. */
static void test_bad_inputs(void **state)
{
    (void)state;
    make_world();
    const char *fw = make_firmware("fw.bin", 2000);
    const char *key = cli_test_path("keys/codesign.key");
    assert_ok(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.0.1", "--targets", "A",
                           "--key", key, "--job-id", "taken", NULL));
    /* A signature by another key, checked against keys/codesign.crt. */
    assert_ok(cli_test_run(R, "sign", "--key", OTA_TEST_KEYS_DIR "/untrusted-test.key", fw, "--out",
                           cli_test_path("keys/untrusted.sig"), NULL));
    assert_int_equal(cli_test_write(cli_test_path("keys/garbage.sig"), "garbage!", 8), 0);
    assert_int_equal(cli_test_write(cli_test_path("empty.bin"), "", 0), 0);
    char *k = strdup(key), *f = strdup(fw), *missing = strdup(cli_test_path("missing.bin"));
    char *untrusted = strdup(cli_test_path("keys/untrusted.sig"));
    char *garbage = strdup(cli_test_path("keys/garbage.sig"));
    char *empty = strdup(cli_test_path("empty.bin"));
    char *crt = strdup(cli_test_path("keys/codesign.crt"));
#define JC "job", "create", "--file"
    const struct bad_case cases[] = {
        {2, {"frobnicate", NULL}},
        {2, {"job", "frobnicate", NULL}},
        {2, {"job", NULL}},
        {2, {"--verbose", "job", "list", NULL}},
        {2, {"job", "list", "--all", NULL}},
        {2, {"job", "list", "extra", NULL}},
        {2, {JC, f, "--version", "1.0.2", "--targets", "A", "--key", k, "--bogus", NULL}},
        {2, {JC, f, "--version", "1.0.2", "--targets", "A", NULL}},
        {2,
         {JC, f, "--version", "1.0.2", "--targets", "A", "--key", k, "--signature", untrusted,
          NULL}},
        {2, {JC, f, "--version", "1.0.2", "--key", k, NULL}},
        {2, {JC, f, "--version", "1.0", "--targets", "A", "--key", k, NULL}},
        {2,
         {JC, f, "--version", "1.0.2", "--targets", "A", "--key", k, "--job-id", "bad id!", NULL}},
        {2,
         {JC, f, "--version", "1.0.2", "--targets", "A", "--key", k, "--file-type", "256", NULL}},
        {2,
         {JC, f, "--version", "1.0.2", "--targets", "A", "--key", k, "--timeout-minutes", "x",
          NULL}},
        {2,
         {JC, f, "--version", "1.0.2", "--targets", "A", "--key", k, "--abort-failure-percent",
          "20", NULL}},
        {2,
         {JC, f, "--version", "1.0.2", "--targets", "A", "--key", k, "--abort-failure-percent",
          "101", "--abort-min-finished", "1", NULL}},
        {2,
         {JC, f, "--version", "1.0.2", "--targets", "A", "--key", k, "--version", "1.0.3", NULL}},
        {2, {JC, f, "--version", "1.0.2", "--targets", ",", "--key", k, NULL}},
        {2, {JC, f, "--version", "1.0.2", "--targets", "A", "--key", NULL}},
        {1, {JC, missing, "--version", "1.0.2", "--targets", "A", "--key", k, NULL}},
        {1, {JC, empty, "--version", "1.0.2", "--targets", "A", "--key", k, NULL}},
        {1, {JC, f, "--version", "1.0.2", "--targets", "A", "--key", missing, NULL}},
        {1, {JC, f, "--version", "1.0.2", "--targets", "A", "--key", crt, NULL}},
        {1, {JC, f, "--version", "1.0.2", "--targets", "A,nobody", "--key", k, NULL}},
        {1, {JC, f, "--version", "1.0.2", "--targets", "group:nogroup", "--key", k, NULL}},
        {1, {JC, f, "--version", "1.0.2", "--targets", "A", "--key", k, "--job-id", "taken", NULL}},
        {1, {JC, f, "--version", "1.0.2", "--targets", "A", "--signature", untrusted, NULL}},
        {1, {JC, f, "--version", "1.0.2", "--targets", "A", "--signature", garbage, NULL}},
        {1, {JC, f, "--version", "1.0.2", "--targets", "A", "--signature", missing, NULL}},
        {1, {JC, f, "--version", "1.0.2", "--targets", "A", "--key", k, "--cert", missing, NULL}},
        {1,
         {JC, f, "--version", "1.0.2", "--targets", "A", "--key",
          OTA_TEST_KEYS_DIR "/untrusted-test.key", "--cert", crt, NULL}},
        {1, {"job", "show", "nope", NULL}},
        {2, {"job", "show", NULL}},
        {1, {"job", "cancel", "nope", NULL}},
        {1, {"watch", "nope", NULL}},
        {2, {"watch", "taken", "--timeout", "0", NULL}},
        {1, {"stream", "describe", "nope", NULL}},
        {1, {"thing", "show", "nobody", NULL}},
        {1, {"thing", "create", "A", NULL}},
        {2, {"thing", "create", "bad/name", NULL}},
        {2, {"thing", "create", "otter-service", NULL}},
        {2, {"thing", "create", "otter-service-host-1", NULL}},
        {2, {"thing", "create", "otter-admin", NULL}},
        {2, {"thing", "create", "new1", "new1", NULL}},
        {2, {"thing", "create", "new2", "bad/name", NULL}},
        {1, {"thing", "create", "new3", "A", NULL}},
        {2, {"thing", "create", NULL}},
        /* a new name starting with '-' would need `--` in every command after */
        {2, {"thing", "create", "--", "-x", NULL}},
        {2, {"group", "create", "--", "-g", NULL}},
        {1, {"group", "add", "--", "-g", "A", NULL}},
        {2, {JC, f, "--version", "1.0.2", "--targets", "A", "--key", k, "--job-id=-j", NULL}},
        {1, {"broker", "init", "--port", "1884", NULL}},
        {2, {"broker", "init", "--port", "70000", NULL}},
        {2, {"broker", "init", NULL}},
        {2, {"broker", "init", "--port", "1884", "--tls-port", "1885", NULL}},
        {2, {"broker", "init", "--port", "1884", "--bind", "0.0.0.0", NULL}},
        {2, {"broker", "init", "--port", "1884", "--bind", "1.2.3.4;x", NULL}},
        {2, {"broker", "init", "--port", "1884", "--host", "a b", NULL}},
    };
#undef JC
    size_t jobs0, streams0, files0;
    count_store(&jobs0, &streams0, &files0);
    assert_int_equal(jobs0, 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int code = cli_test_runv(R, cases[i].argv);
        if (code != cases[i].code || !cli_test_one_error_line(R)) {
            fprintf(stderr, "case %zu (%s %s ...): exit %d, want %d; stderr [%s]\n", i,
                    cases[i].argv[0], cases[i].argv[1] ? cases[i].argv[1] : "", code, cases[i].code,
                    R->err);
            fail();
        }
        assert_string_equal(R->out, "");
    }
    /* A --cert that is no certificate is named as such, not as a bad signature. */
    assert_int_equal(cli_test_run(R, "job", "create", "--file", f, "--version", "1.0.2",
                                  "--targets", "A", "--key", k, "--cert", f, NULL),
                     1);
    assert_true(cli_test_one_error_line(R));
    assert_non_null(strstr(R->err, "is not a P-256, RSA-2048 or RSA-3072 certificate"));
    size_t jobs, streams, files;
    count_store(&jobs, &streams, &files);
    assert_int_equal(jobs, jobs0);
    assert_int_equal(streams, streams0);
    assert_int_equal(files, files0);
    /* No thing, no credentials and no broker login came from the failures. */
    const char *refused[] = {"otter-service", "new1", "new2", "new3"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_not_equal(access(cli_test_path("data/things/%s.json", refused[i]), F_OK), 0);
    }
    char *ds = (char *)cli_test_read(cli_test_path("data/broker/dynsec.json"), NULL);
    assert_non_null(ds);
    assert_null(strstr(ds, "bad"));
    assert_null(strstr(ds, "new"));
    assert_non_null(strstr(ds, "\"username\":\t\"A\""));
    assert_null(strstr(strstr(ds, "\"username\":\t\"A\"") + 1, "\"username\":\t\"A\""));
    free(ds);
    /* Before broker init, thing create says what to do. */
    cli_test_end();
    assert_int_equal(cli_test_begin(), 0);
    assert_fails(cli_test_run(R, "thing", "create", "early", NULL), 1);
    assert_non_null(strstr(R->err, "broker init"));
    free(k);
    free(f);
    free(missing);
    free(untrusted);
    free(garbage);
    free(empty);
    free(crt);
}

/* Every command answers --help on stdout with exit code 0. */
static void test_help(void **state)
{
    (void)state;
    const char *cmds[][4] = {{"--help", NULL, NULL},           {"keygen", "--help", NULL},
                             {"sign", "--help", NULL},         {"broker", "init", "--help"},
                             {"thing", "create", "--help"},    {"thing", "list", "--help"},
                             {"thing", "show", "--help"},      {"job", "create", "--help"},
                             {"job", "list", "--help"},        {"job", "show", "--help"},
                             {"job", "cancel", "--help"},      {"watch", "--help", NULL},
                             {"stream", "describe", "--help"}, {"job", "--help", NULL},
                             {"job", "delete", "--help"},      {"thing", "set", "--help"},
                             {"thing", "unset", "--help"},     {"thing", "disable", "--help"},
                             {"thing", "enable", "--help"},    {"thing", "rotate", "--help"},
                             {"thing", "delete", "--help"},    {"group", "create", "--help"},
                             {"group", "list", "--help"},      {"group", "show", "--help"},
                             {"group", "add", "--help"},       {"group", "remove", "--help"},
                             {"group", "delete", "--help"},    {"group", "--help", NULL}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        assert_ok(cli_test_runv(R, cmds[i]));
        assert_memory_equal(R->out, "usage: otter", 12);
        assert_string_equal(R->err, "");
        /* Help is printed as is, not through printf: no doubled percent signs. */
        assert_null(strstr(R->out, "%%"));
    }
}

/* Fails naming the first of n lines the broker configuration text lacks. */
static void expect_conf_lines(const char *conf, const char *const *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strstr(conf, lines[i]) == NULL) {
            fail_msg("mosquitto.conf lacks %s", lines[i]);
        }
    }
}

/* broker init writes the config, the logins and roles, and credentials. */
static void test_broker_init_files(void **state)
{
    (void)state;
    assert_ok(cli_test_run(R, "broker", "init", "--port", "18998", "--tls", NULL));
    char *conf = (char *)cli_test_read(cli_test_path("data/broker/mosquitto.conf"), NULL);
    assert_non_null(conf);
    const char *lines[] = {"\nallow_anonymous false\n",
                           "\nlistener 18998 127.0.0.1\n",
                           "\nrequire_certificate true\n",
                           "\nuse_identity_as_username true\n",
                           "\nuse_username_as_clientid true\n",
                           "\ncrlfile /",
                           "\npersistence true\n",
                           "\npersistence_location /",
                           "\nset_tcp_nodelay true\n",
                           "\nmax_packet_size 135168\n",
                           "\nretain_available false\n",
                           "\nmax_queued_messages 100000\n",
                           "\nplugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so\n",
                           "\nplugin_opt_config_file /",
                           "\npid_file /",
                           "\ncafile /",
                           "\ncertfile /",
                           "\nkeyfile /"};
    expect_conf_lines(conf, lines, sizeof lines / sizeof lines[0]);
    assert_null(strstr(conf, "password_file"));
    assert_null(strstr(conf, "acl_file"));
    free(conf);
    char *ds = (char *)cli_test_read(cli_test_path("data/broker/dynsec.json"), NULL);
    cJSON *d = cJSON_Parse(ds);
    free(ds);
    assert_non_null(d);
    const cJSON *def = cJSON_GetObjectItem(d, "defaultACLAccess");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(def, "publishClientSend")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(def, "publishClientReceive")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(def, "subscribe")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "clients")), 2);
    cJSON_Delete(d);
    struct stat st;
    const char *secret[] = {"dynsec.json", "service.credentials", "admin.credentials", "ca.key",
                            "server.key",  "service.key",         "admin.key"};
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++) {
        assert_int_equal(stat(cli_test_path("data/broker/%s", secret[i]), &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    char *creds = (char *)cli_test_read(cli_test_path("data/broker/service.credentials"), NULL);
    cJSON *c = cJSON_Parse(creds);
    free(creds);
    assert_non_null(c);
    assert_string_equal(cJSON_GetObjectItem(c, "username")->valuestring, "otter-service");
    assert_null(cJSON_GetObjectItem(c, "password")); /* the certificate is the login */
    assert_int_equal(cJSON_GetObjectItem(c, "port")->valueint, 18998);
    assert_non_null(strstr(cJSON_GetObjectItem(c, "certfile")->valuestring, "service.crt"));
    assert_non_null(strstr(cJSON_GetObjectItem(c, "keyfile")->valuestring, "service.key"));
    assert_string_equal(cJSON_GetObjectItem(c, "client_id_prefix")->valuestring, "otter-service-");
    cJSON_Delete(c);
    /* Every certificate chains to the CA; the server's names 127.0.0.1 and localhost,
     * the clients' are for clientAuth with their login as common name. */
    const char *certs[] = {"server", "service", "admin"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(cli_test_sh("'%s' verify -CAfile '%s' -purpose %s '%s'", OTA_OPENSSL,
                                     cli_test_path("data/broker/ca.crt"),
                                     i == 0 ? "sslserver" : "sslclient",
                                     cli_test_path("data/broker/%s.crt", certs[i])),
                         0);
    }
    assert_int_equal(
        cli_test_sh("'%s' x509 -in '%s' -noout -subject | grep -q 'CN = otter-service'",
                    OTA_OPENSSL, cli_test_path("data/broker/service.crt")),
        0);
    /* An empty revocation list, signed by the CA. */
    assert_int_equal(cli_test_sh("'%s' crl -in '%s' -CAfile '%s' -noout 2>&1 | grep -q 'verify OK'",
                                 OTA_OPENSSL, cli_test_path("data/broker/crl.pem"),
                                 cli_test_path("data/broker/ca.crt")),
                     0);
    assert_int_equal(cli_test_sh("'%s' x509 -in '%s' -noout -text | grep -q 'IP "
                                 "Address:127.0.0.1'",
                                 OTA_OPENSSL, cli_test_path("data/broker/server.crt")),
                     0);
    assert_int_equal(cli_test_sh("'%s' x509 -in '%s' -noout -text | grep -q 'DNS:localhost'",
                                 OTA_OPENSSL, cli_test_path("data/broker/server.crt")),
                     0);
    /* No temporary folder is left. */
    assert_int_equal(cli_test_sh("ls -A '%s' | grep -q broker-", cli_test_data()), 1);
}

/* The role named `name` in a dynsec tree, or NULL. */
static const cJSON *find_role(const cJSON *d, const char *name)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(d, "roles"))
    {
        if (strcmp(cJSON_GetObjectItem(e, "rolename")->valuestring, name) == 0) {
            return e;
        }
    }
    return NULL;
}

static cJSON *read_dynsec(void)
{
    char *ds = (char *)cli_test_read(cli_test_path("data/broker/dynsec.json"), NULL);
    cJSON *d = cJSON_Parse(ds);
    free(ds);
    assert_non_null(d);
    return d;
}

/*
 * A thing's own role allows sending on and subscribing to its own jobs, streams and shadow
 * topics (6 rules); the rules on the answer topics are in the shared role "things", which
 * its login lists with a higher priority, so that it is checked first; a file without that
 * role (written before it existed) gets it with the next thing.
 */
static void test_thing_roles(void **state)
{
    (void)state;
    assert_ok(cli_test_run(R, "broker", "init", "--port", "18998", NULL));
    assert_ok(cli_test_run(R, "thing", "create", "A", NULL));
    cJSON *d = read_dynsec();
    const cJSON *shared = find_role(d, "things"), *own = find_role(d, "thing:A"), *e;
    assert_non_null(shared);
    assert_non_null(own);
    int denies = 0, receives = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(shared, "acls"))
    {
        const char *type = cJSON_GetObjectItem(e, "acltype")->valuestring;
        assert_true(strncmp(cJSON_GetObjectItem(e, "topic")->valuestring, "$aws/things/+/", 14) ==
                    0);
        if (strcmp(type, "publishClientSend") == 0) {
            assert_true(cJSON_IsFalse(cJSON_GetObjectItem(e, "allow")));
            denies++;
        } else {
            assert_string_equal(type, "publishClientReceive");
            assert_true(cJSON_IsTrue(cJSON_GetObjectItem(e, "allow")));
            receives++;
        }
    }
    assert_int_equal(denies, 13);
    assert_int_equal(receives, 13);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(own, "acls")), 6);
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(own, "acls"))
    {
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(e, "allow")));
        assert_true(strncmp(cJSON_GetObjectItem(e, "topic")->valuestring, "$aws/things/A/", 14) ==
                    0);
    }
    const cJSON *client = NULL;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(d, "clients"))
    {
        if (strcmp(cJSON_GetObjectItem(e, "username")->valuestring, "A") == 0) {
            client = e;
        }
    }
    assert_non_null(client);
    const cJSON *roles = cJSON_GetObjectItem(client, "roles");
    assert_int_equal(cJSON_GetArraySize(roles), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(roles, 0), "rolename")->valuestring,
                        "thing:A");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(roles, 1), "rolename")->valuestring,
                        "things");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(roles, 1), "priority")->valueint, 1);
    /* An older file, without the shared role: the next thing brings it back. */
    while (find_role(d, "things") != NULL) {
        cJSON *r = cJSON_GetObjectItem(d, "roles");
        for (int i = 0; i < cJSON_GetArraySize(r); i++) {
            if (strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(r, i), "rolename")->valuestring,
                       "things") == 0) {
                cJSON_DeleteItemFromArray(r, i);
                break;
            }
        }
    }
    char *text = cJSON_Print(d);
    cJSON_Delete(d);
    FILE *f = fopen(cli_test_path("data/broker/dynsec.json"), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    cJSON_free(text);
    assert_ok(cli_test_run(R, "thing", "create", "B", NULL));
    d = read_dynsec();
    assert_non_null(find_role(d, "things"));
    assert_non_null(find_role(d, "thing:B"));
    cJSON_Delete(d);
}

/* A data folder that does not exist, or is not otter's, is named with the
 * command that sets one up; no command creates anything there. */
static void test_data_dir_missing(void **state)
{
    (void)state;
    const char *missing = cli_test_path("no-such-folder");
    const char *plain = cli_test_path("plain-folder");
    assert_int_equal(mkdir(plain, 0700), 0);
    const char *cmds[][4] = {{"job", "list", NULL},    {"thing", "list", NULL},
                             {"thing", "show", "A"},   {"job", "show", "j1"},
                             {"thing", "create", "A"}, {"stream", "describe", "AFR_OTA-x"},
                             {"job", "cancel", "j1"},  {"watch", "j1", NULL}};
    const char *dirs[] = {missing, plain};
    for (size_t d = 0; d < 2; d++) {
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
            const char *argv[8] = {"--data-dir", dirs[d], cmds[i][0], cmds[i][1], cmds[i][2], NULL};
            int code = cli_test_runv(R, argv);
            if (code != 1 || !cli_test_one_error_line(R) || strstr(R->err, dirs[d]) == NULL ||
                strstr(R->err, "broker init") == NULL) {
                fail_msg("%s %s in %s: exit %d, stderr [%s]", cmds[i][0], cmds[i][1], dirs[d], code,
                         R->err);
            }
        }
    }
    /* Nothing was created: not the folder, not a store. */
    assert_int_not_equal(access(missing, F_OK), 0);
    assert_int_equal(cli_test_sh("ls -A '%s' | grep -q .", plain), 1);
    /* broker init is the command that creates one. */
    assert_ok(cli_test_run(R, "--data-dir", missing, "broker", "init", "--port", "18998", NULL));
    assert_ok(cli_test_run(R, "--data-dir", missing, "job", "list", NULL));
}

/* --shared-streams: the bridge to itself (stream and Jobs API requests), its login and role, a
 * private configuration, and the service's share prefix. */
static void test_broker_init_shared_streams(void **state)
{
    (void)state;
    assert_ok(cli_test_run(R, "broker", "init", "--port", "18998", "--bind", "0.0.0.0", "--host",
                           "otter.lan", "--shared-streams", NULL));
    char *conf = (char *)cli_test_read(cli_test_path("data/broker/mosquitto.conf"), NULL);
    assert_non_null(conf);
    const char *lines[] = {"\nconnection otter-shared-streams\n",
                           "\naddress 127.0.0.1:18998\n",
                           "\nremote_clientid otter-service-bridge\n",
                           "\nremote_username otter-service-bridge\n",
                           "\ncleansession false\n",
                           "\ntopic things/+/streams/+/get/+ in 0 otter/$aws/ $aws/\n",
                           "\ntopic things/+/streams/+/describe/+ in 0 otter/$aws/ $aws/\n",
                           "\ntopic things/+/jobs/get in 1 otter/$aws/ $aws/\n",
                           "\ntopic things/+/jobs/start-next in 1 otter/$aws/ $aws/\n",
                           "\ntopic things/+/jobs/+/get in 1 otter/$aws/ $aws/\n",
                           "\ntopic things/+/jobs/+/update in 1 otter/$aws/ $aws/\n"};
    expect_conf_lines(conf, lines, sizeof lines / sizeof lines[0]);
    const char *pw = strstr(conf, "\nremote_password ");
    assert_non_null(pw);
    assert_int_equal(strcspn(pw + 17, "\n"), 32);
    free(conf);
    struct stat st;
    assert_int_equal(stat(cli_test_path("data/broker/mosquitto.conf"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *text = (char *)cli_test_read(cli_test_path("data/broker/service.credentials"), NULL);
    cJSON *c = cJSON_Parse(text);
    free(text);
    assert_string_equal(cJSON_GetObjectItem(c, "share_prefix")->valuestring, "otter/");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(c, "share_jobs")));
    cJSON_Delete(c);
    /* The bridge's login: bound to its id, reading only the things' requests. */
    text = (char *)cli_test_read(cli_test_path("data/broker/dynsec.json"), NULL);
    cJSON *d = cJSON_Parse(text);
    free(text);
    const cJSON *client = NULL, *role = NULL, *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(d, "clients"))
    {
        if (strcmp(cJSON_GetObjectItem(e, "username")->valuestring, "otter-service-bridge") == 0) {
            client = e;
        }
    }
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(d, "roles"))
    {
        if (strcmp(cJSON_GetObjectItem(e, "rolename")->valuestring, "otter-service-bridge") == 0) {
            role = e;
        }
    }
    assert_non_null(client);
    assert_string_equal(cJSON_GetObjectItem(client, "clientid")->valuestring,
                        "otter-service-bridge");
    assert_non_null(role);
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(role, "acls"))
    {
        const char *type = cJSON_GetObjectItem(e, "acltype")->valuestring;
        const char *topic = cJSON_GetObjectItem(e, "topic")->valuestring;
        assert_true(strcmp(type, "subscribePattern") == 0 ||
                    strcmp(type, "publishClientReceive") == 0);
        assert_true(strcmp(topic, "$aws/things/+/streams/+/get/+") == 0 ||
                    strcmp(topic, "$aws/things/+/streams/+/describe/+") == 0 ||
                    strcmp(topic, "$aws/things/+/jobs/get") == 0 ||
                    strcmp(topic, "$aws/things/+/jobs/start-next") == 0 ||
                    strcmp(topic, "$aws/things/+/jobs/+/get") == 0 ||
                    strcmp(topic, "$aws/things/+/jobs/+/update") == 0);
    }
    cJSON_Delete(d);
    /* The bridge's name is reserved like the service's. */
    assert_int_equal(cli_test_run(R, "thing", "create", "otter-service-bridge", NULL), 2);
}

/* --federate: bad lists refused leaving nothing behind; hub 1's bridge to hub 2, hub 2's
 * folder with the same logins and no bridge of its own; things spread over both with a
 * brokers list (both brokers stopped: the hub's file is edited, broker 2 must run, so the
 * create fails and takes nothing). */
static void test_broker_init_federate(void **state)
{
    (void)state;
    static const char *const bad[] = {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:18997,",
                                      "a b:1883",  ":1883",       "127.0.0.1:18998"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int code = cli_test_run(R, "broker", "init", "--port", "18998", "--federate", bad[i], NULL);
        assert_int_equal(code, 2);
        assert_true(cli_test_one_error_line(R));
        assert_int_not_equal(access(cli_test_path("data/broker"), F_OK), 0);
        assert_int_not_equal(access(cli_test_path("data/federation"), F_OK), 0);
    }
    assert_ok(cli_test_run(R, "broker", "init", "--port", "18998", "--federate", "127.0.0.1:18997",
                           NULL));
    char *conf = (char *)cli_test_read(cli_test_path("data/broker/mosquitto.conf"), NULL);
    assert_non_null(conf);
    const char *lines[] = {"\nconnection otter-federation\n",
                           "\naddress 127.0.0.1:18997\n",
                           "\nlocal_clientid otter-service-federation-local\n",
                           "\nremote_clientid otter-service-federation-1\n",
                           "\nremote_username otter-service-federation-1\n",
                           "\ntry_private true\n",
                           "\ntopic things/+/jobs/# both 1 $aws/ $aws/\n",
                           "\ntopic things/+/streams/# both 0 $aws/ $aws/\n",
                           "\ntopic things/+/shadow/# both 1 $aws/ $aws/\n"};
    expect_conf_lines(conf, lines, sizeof lines / sizeof lines[0]);
    free(conf);
    struct stat st;
    assert_int_equal(stat(cli_test_path("data/broker/mosquitto.conf"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    conf = (char *)cli_test_read(cli_test_path("data/federation/2/broker/mosquitto.conf"), NULL);
    assert_non_null(conf);
    assert_non_null(strstr(conf, "\nlistener 18997 127.0.0.1\n"));
    assert_null(strstr(conf, "\nconnection "));
    free(conf);
    /* The same logins on both, the bridges' one among them. */
    char *d1 = (char *)cli_test_read(cli_test_path("data/broker/dynsec.json"), NULL);
    char *d2 = (char *)cli_test_read(cli_test_path("data/federation/2/broker/dynsec.json"), NULL);
    cJSON *j1 = cJSON_Parse(d1), *j2 = cJSON_Parse(d2);
    free(d1);
    free(d2);
    assert_non_null(j1);
    assert_non_null(j2);
    /* The same roles; the same clients but for the salts and hashes of their passwords. */
    assert_true(
        cJSON_Compare(cJSON_GetObjectItem(j1, "roles"), cJSON_GetObjectItem(j2, "roles"), 1));
    const cJSON *c1 = cJSON_GetObjectItem(j1, "clients"), *c2 = cJSON_GetObjectItem(j2, "clients");
    assert_int_equal(cJSON_GetArraySize(c1), 3); /* admin, service, federation */
    assert_int_equal(cJSON_GetArraySize(c2), cJSON_GetArraySize(c1));
    for (int i = 0; i < cJSON_GetArraySize(c1); i++) {
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetArrayItem(c1, i), "username")->valuestring,
            cJSON_GetObjectItem(cJSON_GetArrayItem(c2, i), "username")->valuestring);
    }
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(c1, 2), "clientid")->valuestring,
                        "otter-service-federation-1");
    cJSON_Delete(j1);
    cJSON_Delete(j2);
    /* Broker 2 does not run: nothing is created, on neither broker nor in the files. */
    assert_int_equal(cli_test_run(R, "thing", "create", "dev1", NULL), 1);
    assert_non_null(strstr(R->err, "federation/2"));
    assert_int_not_equal(access(cli_test_path("data/things/dev1.json"), F_OK), 0);
    d1 = (char *)cli_test_read(cli_test_path("data/broker/dynsec.json"), NULL);
    assert_null(strstr(d1, "\"dev1\""));
    free(d1);
    /* The bridges' name is reserved like the service's. */
    assert_int_equal(cli_test_run(R, "thing", "create", "otter-service-federation", NULL), 2);
}

/* service credentials: refused without a CA (password logins) and for bad names; with --tls
 * (broker stopped) a certificate and a login with the service's role in the file; run again,
 * the certificate is kept and the login not doubled. */
static void test_service_credentials(void **state)
{
    (void)state;
    assert_ok(cli_test_run(R, "broker", "init", "--port", "18998", NULL));
    assert_int_equal(cli_test_run(R, "service", "credentials", "--instance", "a", NULL), 2);
    assert_true(cli_test_one_error_line(R));
    assert_int_equal(access(cli_test_path("data/broker/service-a.crt"), F_OK), -1);
    assert_int_equal(cli_test_sh("rm -rf '%s'", cli_test_path("data")), 0);
    assert_ok(cli_test_run(R, "broker", "init", "--port", "18998", "--tls", NULL));
    static const char *const bad[] = {"", "a/b", "x y", "123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cli_test_run(R, "service", "credentials", "--instance", bad[i], NULL), 2);
        assert_true(cli_test_one_error_line(R));
    }
    assert_int_equal(cli_test_run(R, "service", "credentials", NULL), 2);
    for (int round = 0; round < 2; round++) {
        assert_ok(cli_test_run(R, "service", "credentials", "--instance", "s1", NULL));
        assert_non_null(strstr(R->out, round == 0 ? "(new)" : "(kept)"));
    }
    struct stat st;
    assert_int_equal(stat(cli_test_path("data/broker/service-s1.key"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(cli_test_path("data/broker/service-s1.crt"), &st), 0);
    char *d = (char *)cli_test_read(cli_test_path("data/broker/dynsec.json"), NULL);
    cJSON *j = cJSON_Parse(d);
    free(d);
    int found = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "clients"))
    {
        if (strcmp(cJSON_GetObjectItem(c, "username")->valuestring, "otter-service-s1") == 0) {
            found++;
            assert_string_equal(cJSON_GetObjectItem(c, "clientid")->valuestring,
                                "otter-service-s1");
            const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "roles"), 0);
            assert_string_equal(cJSON_GetObjectItem(r, "rolename")->valuestring, "otter-service");
            assert_null(cJSON_GetObjectItem(c, "password"));
        }
    }
    cJSON_Delete(j);
    assert_int_equal(found, 1);
}

/* --shared-streams with --tls: the bridge logs in with a certificate of its own on the TLS
 * listener and checks the server's; no password anywhere. */
static void test_broker_init_shared_streams_tls(void **state)
{
    (void)state;
    assert_ok(
        cli_test_run(R, "broker", "init", "--port", "18998", "--tls", "--shared-streams", NULL));
    char *conf = (char *)cli_test_read(cli_test_path("data/broker/mosquitto.conf"), NULL);
    assert_non_null(conf);
    char ca[600], crt[600], key[600];
    snprintf(ca, sizeof ca, "\nbridge_cafile %s\n", cli_test_path("data/broker/ca.crt"));
    snprintf(crt, sizeof crt, "\nbridge_certfile %s\n", cli_test_path("data/broker/bridge.crt"));
    snprintf(key, sizeof key, "\nbridge_keyfile %s\n", cli_test_path("data/broker/bridge.key"));
    const char *lines[] = {"\nconnection otter-shared-streams\n",
                           "\naddress 127.0.0.1:18998\n",
                           "\nremote_clientid otter-service-bridge\n",
                           ca,
                           crt,
                           key,
                           "\nbridge_insecure false\n",
                           "\nrequire_certificate true\n",
                           "\ntopic things/+/jobs/+/update in 1 otter/$aws/ $aws/\n"};
    expect_conf_lines(conf, lines, sizeof lines / sizeof lines[0]);
    assert_null(strstr(conf, "remote_password"));
    /* the certificate's name stays the client id (the bridge's too) */
    assert_non_null(strstr(conf, "\nuse_username_as_clientid true\n"));
    free(conf);
    struct stat st;
    assert_int_equal(stat(cli_test_path("data/broker/bridge.key"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(cli_test_path("data/broker/bridge.crt"), &st), 0);
    char *text = (char *)cli_test_read(cli_test_path("data/broker/dynsec.json"), NULL);
    assert_non_null(strstr(text, "\"otter-service-bridge\""));
    free(text);
}

/* --bind picks the listener's address, --host the name clients are given. */
static void test_broker_init_bind_host(void **state)
{
    (void)state;
    assert_ok(cli_test_run(R, "broker", "init", "--port", "18998", "--bind", "0.0.0.0", "--host",
                           "otter.lan", "--tls", NULL));
    assert_non_null(strstr(R->out, "devices connect to otter.lan:18998"));
    char *conf = (char *)cli_test_read(cli_test_path("data/broker/mosquitto.conf"), NULL);
    assert_non_null(strstr(conf, "\nlistener 18998 0.0.0.0\n"));
    assert_null(strstr(conf, "127.0.0.1"));
    free(conf);
    assert_ok(cli_test_run(R, "thing", "create", "lan1", NULL));
    const char *files[] = {"data/broker/service.credentials", "data/things/lan1.json"};
    for (size_t i = 0; i < 2; i++) {
        char *text = (char *)cli_test_read(cli_test_path("%s", files[i]), NULL);
        cJSON *o = cJSON_Parse(text);
        free(text);
        assert_string_equal(cJSON_GetObjectItem(o, "host")->valuestring, "otter.lan");
        assert_int_equal(cJSON_GetObjectItem(o, "port")->valueint, 18998);
        cJSON_Delete(o);
    }
    /* The server certificate names the host clients are told, and the thing's
     * certificate is issued by the same CA for its name. */
    const char *server = cli_test_path("data/broker/server.crt");
    assert_int_equal(cli_test_sh("'%s' x509 -in '%s' -noout -text | grep -q 'DNS:otter.lan'",
                                 OTA_OPENSSL, server),
                     0);
    assert_int_equal(cli_test_sh("'%s' verify -CAfile '%s' -verify_hostname otter.lan '%s'",
                                 OTA_OPENSSL, cli_test_path("data/broker/ca.crt"), server),
                     0);
    assert_int_equal(cli_test_sh("'%s' verify -CAfile '%s' -purpose sslclient '%s'", OTA_OPENSSL,
                                 cli_test_path("data/broker/ca.crt"),
                                 cli_test_path("data/things/lan1.crt")),
                     0);
    assert_int_equal(cli_test_sh("'%s' x509 -in '%s' -noout -subject | grep -q 'CN = lan1'",
                                 OTA_OPENSSL, cli_test_path("data/things/lan1.crt")),
                     0);
}

/* thing create/list/show, job show and job cancel. */
static void test_things_and_cancel(void **state)
{
    (void)state;
    make_world();
    struct stat st;
    assert_int_equal(stat(cli_test_path("data/things/A.json"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *thing_text = (char *)cli_test_read(cli_test_path("data/things/A.json"), NULL);
    cJSON *t = cJSON_Parse(thing_text);
    free(thing_text);
    assert_string_equal(cJSON_GetObjectItem(t, "username")->valuestring, "A");
    assert_string_equal(cJSON_GetObjectItem(t, "host")->valuestring, "127.0.0.1");
    assert_int_equal(cJSON_GetObjectItem(t, "port")->valueint, 18999);
    const char *password = cJSON_GetObjectItem(t, "password")->valuestring;
    assert_int_equal(strlen(password), 32);
    /* thing create printed the same credentials. */
    assert_ok(cli_test_run(R, "thing", "create", "C", NULL));
    assert_non_null(strstr(R->out, "username:    C\n"));
    assert_ok(cli_test_run(R, "thing", "list", NULL));
    assert_non_null(strstr(R->out, "\nA "));
    assert_non_null(strstr(R->out, "\nB "));
    assert_non_null(strstr(R->out, "\nC "));

    const char *fw = make_firmware("fw.bin", 500);
    assert_ok(cli_test_run(R, "job", "create", "--file", fw, "--version", "3.0.0", "--targets",
                           "A,B", "--key", cli_test_path("keys/codesign.key"), "--job-id", "c1",
                           NULL));
    ota_store_t *s = open_store();
    ota_store_exec_update_t upd = {.status = OTA_STORE_EXEC_IN_PROGRESS,
                                   .status_details = "{\"receive\":\"1/4\"}"};
    assert_int_equal(ota_store_execution_update(s, "c1", "A", &upd, ota_store_now_ms(), NULL),
                     OTA_STORE_OK);
    assert_ok(cli_test_run(R, "job", "show", "c1", NULL));
    assert_non_null(strstr(R->out, "status:     IN_PROGRESS"));
    assert_non_null(strstr(R->out, "{\"receive\":\"1/4\"}"));
    assert_non_null(strstr(R->out, "\"afr_ota\""));
    assert_ok(cli_test_run(R, "thing", "show", "A", NULL));
    assert_non_null(strstr(R->out, "c1"));
    assert_non_null(strstr(R->out, "IN_PROGRESS"));
    assert_ok(cli_test_run(R, "thing", "show", "C", NULL));
    assert_non_null(strstr(R->out, "(none)"));

    assert_ok(cli_test_run(R, "job", "cancel", "c1", NULL));
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, "c1", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_CANCELED);
    assert_int_equal(j.n_canceled, 2);
    ota_store_job_free(&j);
    ota_store_close(s);
    assert_ok(cli_test_run(R, "job", "show", "c1", NULL));
    assert_non_null(strstr(R->out, "status:     CANCELED"));
    assert_ok(cli_test_run(R, "job", "list", NULL));
    assert_non_null(strstr(R->out, "CANCELED"));
    assert_fails(cli_test_run(R, "job", "cancel", "c1", NULL), 1);
    assert_non_null(strstr(R->err, "CANCELED"));
    cJSON_Delete(t);
}

/** Where the running watch writes, for device_says(), and whether it is JSON. */
static const char *g_watch_out;
static int g_watch_json;

/* Applies one device update through the store, then waits until the running
 * watch has printed a line for this thing that holds `shows`. */
static void device_says(ota_store_t *s, const char *job, const char *thing,
                        ota_store_exec_status_t status, const char *details, const char *shows)
{
    ota_store_exec_update_t upd = {.status = status, .status_details = details};
    assert_int_equal(ota_store_execution_update(s, job, thing, &upd, ota_store_now_ms(), NULL),
                     OTA_STORE_OK);
    char who[160];
    snprintf(who, sizeof who, g_watch_json ? "\"thing\":\"%s\"" : "%s: ", thing);
    if (cli_test_wait_line(g_watch_out, who, shows, 10000) != 0) {
        fail_msg("watch never showed [%s] for %s", shows, thing);
    }
}

/* Finds the first JSON line of `thing` whose field has this value. */
static int has_json_line(const char *text, const char *thing, const char *field, const char *value)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        cJSON *o = cJSON_ParseWithLength(p, n);
        assert_non_null(o); /* every line is one JSON object */
        const cJSON *t = cJSON_GetObjectItem(o, "thing");
        const cJSON *v = cJSON_GetObjectItem(o, field);
        int hit = t && cJSON_IsString(t) && strcmp(t->valuestring, thing) == 0 && v &&
                  ((cJSON_IsString(v) && strcmp(v->valuestring, value) == 0) ||
                   (cJSON_IsNumber(v) && atol(value) == (long)v->valuedouble));
        cJSON_Delete(o);
        if (hit) {
            return 1;
        }
        p += n + (nl ? 1 : 0);
    }
    return 0;
}

/* watch --json follows executions updated through the store. */
/* The dynsec entry of a login, from the broker's file (the broker is not running). */
static cJSON *dynsec_client(cJSON **root, const char *name)
{
    char *text = (char *)cli_test_read(cli_test_path("data/broker/dynsec.json"), NULL);
    assert_non_null(text);
    *root = cJSON_Parse(text);
    free(text);
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(*root, "clients"))
    {
        if (strcmp(cJSON_GetObjectItem(c, "username")->valuestring, name) == 0) {
            return (cJSON *)c;
        }
    }
    return NULL;
}

/* disable, enable, rotate and delete on a broker that is not running: its file. */
static void test_lifecycle_offline(void **state)
{
    (void)state;
    make_world();
    cJSON *root;
    assert_ok(cli_test_run(R, "thing", "disable", "A", NULL));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(dynsec_client(&root, "A"), "disabled")));
    cJSON_Delete(root);
    assert_ok(cli_test_run(R, "thing", "list", NULL));
    assert_non_null(strstr(R->out, "disabled"));
    /* What the service keeps is not set by hand: the broker would say otherwise. */
    assert_int_equal(cli_test_run(R, "thing", "unset", "A", "disabled", NULL), 2);
    assert_non_null(strstr(R->err, "'disabled' is the broker's word; use 'otter thing disable' "
                                   "or 'otter thing enable'"));
    assert_int_equal(cli_test_run(R, "thing", "set", "B", "disabled=true", NULL), 2);
    assert_int_equal(cli_test_run(R, "thing", "set", "B", "site=x", "lastSeen=99", NULL), 2);
    assert_non_null(strstr(R->err, "'lastSeen' is written by the service"));
    assert_int_equal(cli_test_run(R, "thing", "set", "B", "revoked=true", NULL), 2);
    assert_non_null(strstr(R->err, "otter thing revoke"));
    /* A key given twice is refused, and nothing is written. */
    assert_int_equal(cli_test_run(R, "thing", "set", "B", "a=b", "a=c", NULL), 2);
    assert_non_null(strstr(R->err, "'a' is given twice"));
    assert_ok(cli_test_run(R, "thing", "show", "B", NULL));
    assert_null(strstr(R->out, "site"));
    assert_null(strstr(R->out, "disabled"));
    assert_null(strstr(R->out, "lastSeen"));
    assert_ok(cli_test_run(R, "thing", "list", NULL));
    assert_non_null(strstr(R->out, "disabled"));
    assert_ok(cli_test_run(R, "thing", "enable", "A", NULL));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(dynsec_client(&root, "A"), "disabled")));
    cJSON_Delete(root);
    char old_hash[200];
    snprintf(old_hash, sizeof old_hash, "%s",
             cJSON_GetObjectItem(dynsec_client(&root, "A"), "password")->valuestring);
    cJSON_Delete(root);
    char *before = (char *)cli_test_read(cli_test_path("data/things/A.json"), NULL);
    assert_ok(cli_test_run(R, "thing", "rotate", "A", NULL));
    char *after = (char *)cli_test_read(cli_test_path("data/things/A.json"), NULL);
    assert_string_not_equal(before, after);
    cJSON *t = cJSON_Parse(after);
    assert_non_null(strstr(R->out, cJSON_GetObjectItem(t, "password")->valuestring));
    cJSON_Delete(t);
    free(before);
    free(after);
    assert_string_not_equal(cJSON_GetObjectItem(dynsec_client(&root, "A"), "password")->valuestring,
                            old_hash);
    cJSON_Delete(root);
    assert_ok(cli_test_run(R, "thing", "delete", "A", NULL));
    assert_null(dynsec_client(&root, "A"));
    cJSON_Delete(root);
    assert_int_equal(access(cli_test_path("data/things/A.json"), F_OK), -1);
    assert_int_equal(cli_test_run(R, "thing", "rotate", "A", NULL), 1);
    assert_non_null(strstr(R->err, "unknown thing 'A'"));
    assert_int_equal(cli_test_run(R, "thing", "delete", NULL), 2);
    /* group add makes a missing group, and says so (a typo is seen), once. */
    assert_ok(cli_test_run(R, "group", "add", "nosuch", "B", NULL));
    assert_non_null(strstr(R->out, "group nosuch created (static)\n"));
    assert_ok(cli_test_run(R, "group", "add", "lab", "B", NULL));
    assert_null(strstr(R->out, "created"));
}

/* Revoke: refused with unfinished executions unless --force, which ends them; the thing is
 * then shown revoked and the commands that change a broker login refuse it. */
static void test_revoke_offline(void **state)
{
    (void)state;
    make_world();
    const char *fw = make_firmware("fw.bin", 500);
    assert_ok(cli_test_run(R, "job", "create", "--file", fw, "--version", "3.0.0", "--targets",
                           "A,B", "--key", cli_test_path("keys/codesign.key"), "--job-id", "r1",
                           NULL));
    ota_store_t *s = open_store();
    ota_store_exec_update_t upd = {.status = OTA_STORE_EXEC_IN_PROGRESS,
                                   .status_details = "{\"receive\":\"1/4\"}"};
    assert_int_equal(ota_store_execution_update(s, "r1", "A", &upd, ota_store_now_ms(), NULL),
                     OTA_STORE_OK);
    cJSON *root;
    assert_int_equal(cli_test_run(R, "thing", "revoke", "A", NULL), 1);
    assert_non_null(strstr(R->err, "unfinished job executions; cancel them or add --force"));
    assert_non_null(dynsec_client(&root, "A")); /* nothing changed */
    cJSON_Delete(root);
    assert_ok(cli_test_run(R, "thing", "revoke", "A", "--force", NULL));
    assert_non_null(strstr(R->out, "executions:  1 canceled (thing revoked)"));
    assert_null(dynsec_client(&root, "A"));
    cJSON_Delete(root);
    ota_store_execution_t e;
    assert_int_equal(ota_store_execution_get(s, "r1", "A", &e), OTA_STORE_OK);
    assert_int_equal(e.status, OTA_STORE_EXEC_CANCELED);
    assert_string_equal(e.status_details, "{\"reason\":\"thing revoked\"}");
    ota_store_execution_free(&e);
    assert_int_equal(ota_store_execution_get(s, "r1", "B", &e), OTA_STORE_OK);
    assert_int_equal(e.status, OTA_STORE_EXEC_QUEUED); /* the others go on */
    ota_store_execution_free(&e);
    ota_store_close(s);
    assert_ok(cli_test_run(R, "thing", "list", NULL));
    assert_non_null(strstr(R->out, "revoked"));
    assert_ok(cli_test_run(R, "thing", "list", "--json", NULL));
    assert_non_null(strstr(R->out, "\"state\":\"revoked\""));
    assert_ok(cli_test_run(R, "thing", "show", "A", NULL));
    assert_non_null(strstr(R->out, "revoked:     its credentials are refused"));
    assert_null(strstr(R->out, "credentials: "));
    const char *verbs[] = {"disable", "enable", "rotate"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(cli_test_run(R, "thing", verbs[i], "A", NULL), 1);
        assert_non_null(strstr(R->err, "thing 'A' is revoked"));
        assert_non_null(strstr(R->err, "'otter thing delete A' and 'otter thing create A'"));
    }
    /* Again (as after a broker that was slow to refuse): no unfinished work left, done. */
    assert_ok(cli_test_run(R, "thing", "revoke", "A", NULL));
    assert_ok(cli_test_run(R, "thing", "delete", "A", NULL));
    assert_ok(cli_test_run(R, "thing", "create", "A", NULL));
    assert_ok(cli_test_run(R, "thing", "disable", "A", NULL));
}

static void test_watch_json(void **state)
{
    (void)state;
    make_world();
    const char *fw = make_firmware("fw.bin", 800);
    const char *key = cli_test_path("keys/codesign.key");
    assert_ok(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.0.1", "--targets",
                           "A,B", "--key", key, "--job-id", "w1", NULL));
    const char *argv[] = {"watch", "w1", "--json", "--timeout", "30", NULL};
    const char *out = cli_test_path("watch.out"), *err = cli_test_path("watch.err");
    pid_t pid = cli_test_spawn(argv, out, err);
    assert_true(pid > 0);
    g_watch_out = out;
    g_watch_json = 1;
    ota_store_t *s = open_store();
    assert_int_equal(cli_test_wait_line(out, "\"thing\":\"B\"", "QUEUED", 10000), 0);
    device_says(s, "w1", "A", OTA_STORE_EXEC_IN_PROGRESS, "{\"receive\":\"1/3\"}",
                "\"received\":1,");
    device_says(s, "w1", "A", OTA_STORE_EXEC_IN_PROGRESS, "{\"receive\":\"3/3\"}",
                "\"received\":3,");
    device_says(s, "w1", "A", OTA_STORE_EXEC_IN_PROGRESS,
                "{\"self_test\":\"ready\",\"updatedBy\":\"0x01000000\"}",
                "\"self_test\":\"ready\"");
    device_says(s, "w1", "B", OTA_STORE_EXEC_IN_PROGRESS, "{\"receive\":\"2/3\"}",
                "\"received\":2,");
    device_says(s, "w1", "A", OTA_STORE_EXEC_SUCCEEDED,
                "{\"reason\":\"accepted v1.0.1\",\"updatedBy\":\"0x01000000\"}", "SUCCEEDED");
    device_says(s, "w1", "B", OTA_STORE_EXEC_SUCCEEDED, "{\"reason\":\"accepted v1.0.1\"}",
                "SUCCEEDED");
    assert_int_equal(cli_test_wait(pid, 10000), 0);
    char *text = (char *)cli_test_read(out, NULL);
    assert_non_null(text);
    assert_true(has_json_line(text, "A", "status", "QUEUED"));
    assert_true(has_json_line(text, "A", "received", "1"));
    assert_true(has_json_line(text, "A", "received", "3"));
    assert_true(has_json_line(text, "A", "total", "3"));
    assert_true(has_json_line(text, "A", "self_test", "ready"));
    assert_true(has_json_line(text, "B", "received", "2"));
    assert_true(has_json_line(text, "A", "reason", "accepted v1.0.1"));
    assert_true(has_json_line(text, "B", "status", "SUCCEEDED"));
    /* The last line sums up. */
    char *last = strrchr(text, '{');
    cJSON *sum = cJSON_Parse(last);
    assert_non_null(sum);
    assert_string_equal(cJSON_GetObjectItem(sum, "result")->valuestring, "SUCCEEDED");
    assert_string_equal(cJSON_GetObjectItem(sum, "jobStatus")->valuestring, "COMPLETED");
    assert_int_equal(cJSON_GetObjectItem(sum, "succeeded")->valueint, 2);
    cJSON_Delete(sum);
    free(text);

    /* One failure: exit code 1, the reason shown; plain lines when not JSON. */
    assert_ok(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.0.2", "--targets",
                           "A,B", "--key", key, "--job-id", "w2", NULL));
    const char *argv2[] = {"watch", "w2", "--timeout", "30", NULL};
    pid = cli_test_spawn(argv2, out, err);
    g_watch_json = 0;
    assert_int_equal(cli_test_wait_line(out, "B: ", "QUEUED", 10000), 0);
    device_says(s, "w2", "A", OTA_STORE_EXEC_IN_PROGRESS, "{\"receive\":\"1/2\"}", "receive 1/2");
    device_says(s, "w2", "A", OTA_STORE_EXEC_SUCCEEDED, "{\"reason\":\"accepted v1.0.2\"}",
                "SUCCEEDED");
    device_says(s, "w2", "B", OTA_STORE_EXEC_FAILED, "{\"reason\":\"rejected: 0x00000010\"}",
                "FAILED");
    assert_int_equal(cli_test_wait(pid, 10000), 1);
    text = (char *)cli_test_read(out, NULL);
    assert_non_null(strstr(text, "A: IN_PROGRESS  receive 1/2 (50%)\n"));
    assert_non_null(strstr(text, "B: FAILED       reason \"rejected: 0x00000010\"\n"));
    assert_non_null(strstr(text, "job w2 COMPLETED: 1 of 2 succeeded, 0 skipped (not needed)\n"));
    free(text);

    /* A canceled job ends the watch with exit code 1. */
    assert_ok(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.0.3", "--targets", "A",
                           "--key", key, "--job-id", "w3", NULL));
    const char *argv3[] = {"watch", "w3", "--json", NULL};
    pid = cli_test_spawn(argv3, out, err);
    assert_int_equal(cli_test_wait_line(out, "\"thing\":\"A\"", "QUEUED", 10000), 0);
    assert_ok(cli_test_run(R, "job", "cancel", "w3", NULL));
    assert_int_equal(cli_test_wait(pid, 10000), 1);
    text = (char *)cli_test_read(out, NULL);
    assert_non_null(strstr(text, "\"jobStatus\":\"CANCELED\""));
    free(text);

    /* --timeout ends a watch on a job that does not move: one error line. */
    assert_ok(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.0.4", "--targets", "A",
                           "--key", key, "--job-id", "w4", NULL));
    assert_fails(cli_test_run(R, "watch", "w4", "--timeout", "1", NULL), 1);

    /* What the rollout still held when the job was canceled never reached a device. */
    assert_ok(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.0.5", "--targets",
                           "A,B", "--key", key, "--job-id", "w5", "--rollout-rate", "1", NULL));
    assert_ok(cli_test_run(R, "job", "cancel", "w5", NULL));
    assert_int_equal(cli_test_run(R, "watch", "w5", "--json", NULL), 1);
    assert_non_null(strstr(R->out, "\"thing\":\"B\",\"status\":\"CANCELED\",\"state\":"
                                   "\"CANCELED\",\"released\":false"));
    assert_ok(cli_test_run(R, "job", "show", "w5", NULL));
    assert_null(strstr(R->out, "held"));
    ota_store_close(s);
}

/* Whether text holds a byte a terminal acts on: a C0 control other than the line
 * feed, DEL, or the UTF-8 of a C1 control or a bidi override or isolate. */
static int has_terminal_control(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if ((*p < 0x20 && *p != '\n') || *p == 0x7f ||
            (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) ||
            (*p == 0xe2 && p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae) ||
            (*p == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)) {
            return 1;
        }
    }
    return 0;
}

/* Whether some line of text starts with prefix. */
static int has_line_starting(const char *text, const char *prefix)
{
    for (const char *p = text; p != NULL; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The longest line of text, in bytes. */
static size_t longest_line(const char *text)
{
    size_t best = 0;
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        best = n > best ? n : best;
        p += n + (p[n] == '\n');
    }
    return best;
}

/* A device writes its own statusDetails: escape sequences (OSC 52 clipboard
 * write, cursor up, erase line), line breaks and bidi overrides in them never
 * reach the terminal raw from watch, job show, job history or thing show, no
 * forged line appears, and a long stored value is cut. Block counts beyond the
 * agent's 32-bit ones are not taken as progress. */
static void test_device_text_shown_safely(void **state)
{
    (void)state;
    make_world();
    const char *fw = make_firmware("fw.bin", 800);
    const char *key = cli_test_path("keys/codesign.key");
    assert_ok(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.4.0", "--targets",
                           "A,B", "--key", key, "--job-id", "d1", NULL));
    const char *argv[] = {"watch", "d1", "--timeout", "30", NULL};
    const char *out = cli_test_path("watch.out"), *err = cli_test_path("watch.err");
    pid_t pid = cli_test_spawn(argv, out, err);
    assert_true(pid > 0);
    g_watch_out = out;
    g_watch_json = 0;
    ota_store_t *s = open_store();
    assert_int_equal(cli_test_wait_line(out, "B: ", "QUEUED", 10000), 0);
    const char *attack =
        "{\"receive\":\"3/24\",\"detail\":\"\\u001b]52;c;ZWNobyBwd25lZA==\\u0007\\u001b[1A"
        "\\u001b[2K\\r\\nB: SUCCEEDED    reason \\\"accepted v1.4.0\\\"\\u202e\","
        "\"self_test\":\"\\u001b[31mready\\u009b\",\"reason\":\"x\\ny\\u2066\\u007f\"}";
    device_says(s, "d1", "A", OTA_STORE_EXEC_IN_PROGRESS, attack,
                "detail \"\\x1b]52;c;ZWNobyBwd25lZA==\\x07\\x1b[1A\\x1b[2K\\x0d\\x0aB: SUCCEEDED"
                "    reason \"accepted v1.4.0\"\\u202e\"");
    char *text = (char *)cli_test_read(out, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "A: IN_PROGRESS  receive 3/24 (12%) self_test \\x1b[31mready"
                                 "\\u009b reason \"x\\x0ay\\u2066\\x7f\" detail"));
    assert_false(has_terminal_control(text));
    assert_false(has_line_starting(text, "B: SUCCEEDED"));
    free(text);
    /* Counts as large as a signed long, and above 2^32: no progress; 2^32 itself is taken. */
    device_says(s, "d1", "A", OTA_STORE_EXEC_IN_PROGRESS,
                "{\"receive\":\"9223372036854775807/9223372036854775807\",\"self_test\":\"big\"}",
                "IN_PROGRESS  self_test big");
    device_says(s, "d1", "A", OTA_STORE_EXEC_IN_PROGRESS,
                "{\"receive\":\"4294967297/4294967297\",\"self_test\":\"over\"}",
                "IN_PROGRESS  self_test over");
    device_says(s, "d1", "A", OTA_STORE_EXEC_IN_PROGRESS, "{\"receive\":\"4294967295/4294967296\"}",
                "receive 4294967295/4294967296 (99%)");
    device_says(s, "d1", "B", OTA_STORE_EXEC_SUCCEEDED, "{\"reason\":\"accepted v1.4.0\"}",
                "SUCCEEDED");
    /* Stored text with JSON whitespace between its tokens and a value of 15 KiB (the store
     * takes details up to OTA_STORE_DETAILS_MAX bytes as given). */
    size_t big = 15 * 1024;
    char *stored = malloc(big + 256);
    assert_non_null(stored);
    int n = snprintf(stored, big + 256,
                     "{\r\n\t\"detail\":\n\"forged\\r\\nB  SUCCEEDED\\u202e\",\r\"long\":\"");
    memset(stored + n, 'x', big);
    snprintf(stored + n + big, 256, "\"\n}");
    device_says(s, "d1", "A", OTA_STORE_EXEC_FAILED, stored, "FAILED");
    free(stored);
    assert_int_equal(cli_test_wait(pid, 10000), 1);
    text = (char *)cli_test_read(out, NULL);
    assert_non_null(text);
    assert_false(has_terminal_control(text));
    free(text);
    ota_store_close(s);

    /* Compact again: the JSON escapes stay escapes, the override shows as one. */
    const char *shown = "{\"detail\":\"forged\\r\\nB  SUCCEEDED\\u202e\",\"long\":\"xxx";
    assert_ok(cli_test_run(R, "job", "show", "d1", NULL));
    assert_non_null(strstr(R->out, shown));
    assert_non_null(strstr(R->out, "xxx...(15160 bytes more)\"}"));
    assert_false(has_terminal_control(R->out));
    assert_true(longest_line(R->out) < 600);
    assert_ok(cli_test_run(R, "job", "history", "d1", "A", NULL));
    assert_non_null(strstr(R->out, shown));
    assert_non_null(strstr(R->out, "self_test\":\"\\u001b[31mready\\u009b\""));
    assert_false(has_terminal_control(R->out));
    assert_true(longest_line(R->out) < 600);
    assert_ok(cli_test_run(R, "thing", "show", "A", NULL));
    assert_non_null(strstr(R->out, shown));
    assert_false(has_terminal_control(R->out));
    assert_true(longest_line(R->out) < 600);
    /* --json: the override as a JSON escape, which reads back as the device wrote it. */
    assert_ok(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.4.1", "--targets", "B",
                           "--key", key, "--job-id", "d2", NULL));
    s = open_store();
    ota_store_exec_update_t upd = {.status = OTA_STORE_EXEC_FAILED,
                                   .status_details = "{\"detail\":\"x\\r\\n\\u202ey\"}"};
    assert_int_equal(ota_store_execution_update(s, "d2", "B", &upd, ota_store_now_ms(), NULL),
                     OTA_STORE_OK);
    ota_store_close(s);
    assert_ok(cli_test_run(R, "job", "show", "d2", "--json", NULL));
    assert_false(has_terminal_control(R->out));
    assert_non_null(strstr(R->out, "\"x\\r\\n\\u202ey\""));
    cJSON *doc = cJSON_Parse(R->out);
    assert_non_null(doc);
    const cJSON *d = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "executions"), 0),
                            "statusDetails"),
        "detail");
    assert_true(cJSON_IsString(d));
    assert_string_equal(d->valuestring, "x\r\n\xe2\x80\xaey");
    cJSON_Delete(doc);
    assert_ok(cli_test_run(R, "job", "history", "d1", "A", "--json", NULL));
    assert_false(has_terminal_control(R->out));
    assert_non_null(strstr(R->out, "\\u001b[31mready\\u009b"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keygen_sign_oracles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keygen_sign_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rsa_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_wrapping_and_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_init_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thing_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_init_bind_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_init_shared_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_init_federate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_init_shared_streams_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_dir_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_things_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_text_shown_safely, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_offline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_offline, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
