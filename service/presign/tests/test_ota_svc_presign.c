/*
 * Unit tests of presigned URLs: the signature against an independent HMAC,
 * every tampered field, expiry bounds, the secret file, placeholders and
 * document rewriting.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <mbedtls/md.h>

#include "ota_svc_presign.h"

static char g_dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/otter-presign-XXXXXX");
    return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static ota_svc_presign_t *open_signer(void)
{
    char err[256];
    ota_svc_presign_t *p = ota_svc_presign_open(g_dir, err, sizeof err);
    if (p == NULL) {
        fprintf(stderr, "%s\n", err);
    }
    assert_non_null(p);
    return p;
}

/* The secret file: made once, 0600, same secret on every open; a damaged one refused. */
static void test_secret_file(void **state)
{
    (void)state;
    ota_svc_presign_t *a = open_signer();
    ota_svc_presign_t *b = open_signer();
    char sa[65], sb[65];
    assert_int_equal(ota_svc_presign_sign(a, "/files/1", "dev", "job", 40, 100, sa), 0);
    assert_int_equal(ota_svc_presign_sign(b, "/files/1", "dev", "job", 40, 100, sb), 0);
    assert_string_equal(sa, sb);
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, OTA_SVC_PRESIGN_KEY_FILE);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    ota_svc_presign_close(a);
    ota_svc_presign_close(b);
    FILE *f = fopen(path, "ab");
    fputc('x', f);
    fclose(f);
    char err[256] = "";
    assert_null(ota_svc_presign_open(g_dir, err, sizeof err));
    assert_non_null(strstr(err, "32-byte key"));
}

/* The signature is HMAC-SHA256 of the documented text under the file's key. */
static void test_signature_oracle(void **state)
{
    (void)state;
    ota_svc_presign_t *p = open_signer();
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, OTA_SVC_PRESIGN_KEY_FILE);
    uint8_t key[32];
    FILE *f = fopen(path, "rb");
    assert_int_equal(fread(key, 1, 32, f), 32);
    fclose(f);
    const char *text = "OTTER-HMAC-SHA256\n/files/42\ndev-1\nota-7\n1700000000";
    uint8_t m[32];
    assert_int_equal(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, 32,
                                     (const unsigned char *)text, strlen(text), m),
                     0);
    char want[65];
    for (int i = 0; i < 32; i++) {
        snprintf(want + 2 * i, 3, "%02x", m[i]);
    }
    char got[65];
    assert_int_equal(ota_svc_presign_sign(p, "/files/42", "dev-1", "ota-7", -1, 1700000000, got),
                     0);
    assert_string_equal(got, want);
    /* With the issue time, as URLs are made. */
    const char *text2 = "OTTER-HMAC-SHA256\n/files/42\ndev-1\nota-7\n1700000000\n1699998200";
    assert_int_equal(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, 32,
                                     (const unsigned char *)text2, strlen(text2), m),
                     0);
    for (int i = 0; i < 32; i++) {
        snprintf(want + 2 * i, 3, "%02x", m[i]);
    }
    assert_int_equal(
        ota_svc_presign_sign(p, "/files/42", "dev-1", "ota-7", 1699998200, 1700000000, got), 0);
    assert_string_equal(got, want);
    char *url = ota_svc_presign_url(p, "http://h:1", 42, "dev-1", "ota-7", 1699998200, 1700000000);
    char expect[256];
    snprintf(expect, sizeof expect,
             "http://h:1/files/42?thing=dev-1&job=ota-7&expires=1700000000&issued=1699998200"
             "&signature=%s",
             want);
    assert_string_equal(url, expect);
    free(url);
    ota_svc_presign_close(p);
}

/* Every field is covered; syntax is checked; expiry is inclusive. */
static void test_verify(void **state)
{
    (void)state;
    ota_svc_presign_t *p = open_signer();
    char s[65];
    assert_int_equal(ota_svc_presign_sign(p, "/files/9", "dev", "job-1", -1, 5000, s), 0);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", NULL, s, 4999, NULL),
        OTA_SVC_PRESIGN_OK);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", NULL, s, 5000, NULL),
        OTA_SVC_PRESIGN_OK);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", NULL, s, 5001, NULL),
        OTA_SVC_PRESIGN_EXPIRED);
    /* Tampered fields. */
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/8", "dev", "job-1", "5000", NULL, s, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dew", "job-1", "5000", NULL, s, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-2", "5000", NULL, s, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5001", NULL, s, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    for (int i = 0; i < 64; i += 7) {
        char t[65];
        memcpy(t, s, sizeof t);
        t[i] = t[i] == '0' ? '1' : '0';
        assert_int_equal(
            ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", NULL, t, 1, NULL),
            OTA_SVC_PRESIGN_BAD);
    }
    /* Upper-case hex is the same signature. */
    char up[65];
    for (int i = 0; i < 65; i++) {
        up[i] = (char)(s[i] >= 'a' && s[i] <= 'f' ? s[i] - 32 : s[i]);
    }
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", NULL, up, 1, NULL),
        OTA_SVC_PRESIGN_OK);
    /* Syntax: missing, signs, leading zeros, other characters, wrong lengths, traversal. */
    assert_int_equal(ota_svc_presign_verify(p, "/files/9", NULL, "job-1", "5000", NULL, s, 1, NULL),
                     OTA_SVC_PRESIGN_BAD);
    assert_int_equal(ota_svc_presign_verify(p, "/files/9", "dev", "job-1", NULL, NULL, s, 1, NULL),
                     OTA_SVC_PRESIGN_BAD);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", NULL, NULL, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "+5000", NULL, s, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "05000", NULL, s, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/09", "dev", "job-1", "5000", NULL, s, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9/", "dev", "job-1", "5000", NULL, s, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/../otter.db", "dev", "job-1", "5000", NULL, s, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev/x", "job-1", "5000", NULL, s, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    char shortsig[64];
    memcpy(shortsig, s, 63);
    shortsig[63] = '\0';
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", NULL, shortsig, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    char zsig[65];
    memcpy(zsig, s, sizeof zsig);
    zsig[10] = 'g';
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", NULL, zsig, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    ota_svc_presign_close(p);
}

/* The issue time is signed: changed, dropped or added, the URL is refused; it is given back,
 * and a URL without one (an earlier version's) is taken as issued the longest lifetime before
 * its expiry. */
static void test_issued(void **state)
{
    (void)state;
    ota_svc_presign_t *p = open_signer();
    char s[65], legacy[65];
    int64_t iss = 0;
    assert_int_equal(ota_svc_presign_sign(p, "/files/9", "dev", "job-1", 4940, 5000, s), 0);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", "4940", s, 4999, &iss),
        OTA_SVC_PRESIGN_OK);
    assert_int_equal(iss, 4940);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", "4940", s, 5001, &iss),
        OTA_SVC_PRESIGN_EXPIRED);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", "4941", s, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", NULL, s, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", "04940", s, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    /* Issued after its expiry or more than the longest lifetime before it. */
    assert_int_equal(ota_svc_presign_sign(p, "/files/9", "dev", "job-1", 5001, 5000, s), -1);
    assert_int_equal(ota_svc_presign_sign(p, "/files/9", "dev", "job-1", 1399, 5000, s), -1);
    assert_int_equal(ota_svc_presign_sign(p, "/files/9", "dev", "job-1", 1400, 5000, s), 0);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", "1399", s, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    /* Without an issue time. */
    assert_int_equal(ota_svc_presign_sign(p, "/files/9", "dev", "job-1", -1, 5000, legacy), 0);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", NULL, legacy, 1, &iss),
        OTA_SVC_PRESIGN_OK);
    assert_int_equal(iss, 5000 - OTA_SVC_PRESIGN_EXPIRY_MAX);
    assert_int_equal(
        ota_svc_presign_verify(p, "/files/9", "dev", "job-1", "5000", "1400", legacy, 1, NULL),
        OTA_SVC_PRESIGN_BAD);
    assert_null(ota_svc_presign_url(p, "http://h", 9, "dev", "job-1", -1, 5000));
    ota_svc_presign_close(p);
}

static void test_placeholder(void **state)
{
    (void)state;
    char t[64];
    int64_t id, life;
    assert_int_equal(ota_svc_presign_placeholder(12, 1800, t, sizeof t), 0);
    assert_string_equal(t, "${otter:presigned-url:/files/12:1800}");
    assert_int_equal(ota_svc_presign_parse_placeholder(t, &id, &life), 0);
    assert_int_equal(id, 12);
    assert_int_equal(life, 1800);
    assert_int_equal(ota_svc_presign_placeholder(12, 59, t, sizeof t), -1);
    assert_int_equal(ota_svc_presign_placeholder(12, 3601, t, sizeof t), -1);
    assert_int_equal(ota_svc_presign_placeholder(0, 60, t, sizeof t), -1);
    const char *bad[] = {"${otter:presigned-url:/files/12:59}",
                         "${otter:presigned-url:/files/12:3601}",
                         "${otter:presigned-url:/files/12:1800",
                         "${otter:presigned-url:/files/x:1800}",
                         "${otter:presigned-url:/etc/passwd:1800}",
                         "${otter:presigned-url:}",
                         "${otter:presigned-url:}}",
                         "http://example/files/12"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ota_svc_presign_parse_placeholder(bad[i], &id, &life), -1);
    }
}

/* A document's placeholders become URLs for the thing and job, expiring now + lifetime. */
static void test_document(void **state)
{
    (void)state;
    ota_svc_presign_t *p = open_signer();
    const char *doc = "{\"afr_ota\":{\"protocols\":[\"HTTP\",\"MQTT\"],\"streamname\":\"s\","
                      "\"files\":[{\"filepath\":\"f\",\"filesize\":10,\"fileid\":0,"
                      "\"update_data_url\":\"${otter:presigned-url:/files/3:600}\","
                      "\"auth_scheme\":\"aws.s3.presigned\"}]}}";
    char *out = ota_svc_presign_document(p, "https://h:8443", doc, "dev", "job", 1000);
    assert_non_null(out);
    cJSON *root = cJSON_Parse(out);
    cJSON *f =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "afr_ota"), "files"), 0);
    const char *url = cJSON_GetObjectItem(f, "update_data_url")->valuestring;
    char *want = ota_svc_presign_url(p, "https://h:8443", 3, "dev", "job", 1000, 1600);
    assert_string_equal(url, want);
    assert_string_equal(cJSON_GetObjectItem(f, "auth_scheme")->valuestring,
                        OTA_SVC_PRESIGN_AUTH_SCHEME);
    free(want);
    cJSON_Delete(root);
    free(out);
    /* No base URL: null URL and scheme, the rest unchanged. */
    out = ota_svc_presign_document(p, NULL, doc, "dev", "job", 1000);
    root = cJSON_Parse(out);
    f = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "afr_ota"), "files"), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(f, "update_data_url")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(f, "auth_scheme")));
    assert_int_equal(cJSON_GetObjectItem(f, "filesize")->valueint, 10);
    cJSON_Delete(root);
    free(out);
    /* Documents without placeholders are copied byte for byte. */
    const char *mqtt =
        "{\"afr_ota\":{\"protocols\":[\"MQTT\"],\"files\":[{\"update_data_url\":null}]}}";
    out = ota_svc_presign_document(p, "http://h", mqtt, "dev", "job", 1000);
    assert_string_equal(out, mqtt);
    free(out);
    ota_svc_presign_close(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_secret_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signature_oracle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issued, setup, teardown),
        cmocka_unit_test(test_placeholder),
        cmocka_unit_test_setup_teardown(test_document, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
